//! Accounts in the API: who is asking, and the types of sign-up and login.

use async_graphql::{Context, Enum, SimpleObject};
use chrono::{DateTime, Utc};
use emsp_accounts::{AuthError, Role};

use crate::context::{ApiContext, Viewer};
use crate::errors::{ApiCode, internal, store_error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "Role")]
pub enum RoleValue {
    Driver,
    FleetManager,
    Ops,
}

impl From<Role> for RoleValue {
    fn from(role: Role) -> Self {
        match role {
            Role::Driver => RoleValue::Driver,
            Role::FleetManager => RoleValue::FleetManager,
            Role::Ops => RoleValue::Ops,
        }
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: RoleValue,
    pub created_at: DateTime<Utc>,
}

impl From<emsp_accounts::User> for User {
    fn from(user: emsp_accounts::User) -> Self {
        Self { id: user.id, email: user.email, name: user.name, role: user.role.into(), created_at: user.created_at }
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct AuthPayload {
    /// A JWT for `Authorization: Bearer ...`.
    pub access_token: String,
    /// Single use: trade it for a new pair with `refreshToken`.
    pub refresh_token: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    pub user: User,
}

impl From<emsp_accounts::AuthPayload> for AuthPayload {
    fn from(payload: emsp_accounts::AuthPayload) -> Self {
        Self {
            access_token: payload.access_token,
            refresh_token: payload.refresh_token,
            expires_in: payload.expires_in,
            user: payload.user.into(),
        }
    }
}

/// An account error in the API's terms; internal detail stays in the log.
pub fn auth_error(error: AuthError) -> async_graphql::Error {
    match error {
        AuthError::InvalidCredentials | AuthError::InvalidToken(_) | AuthError::RefreshReused | AuthError::Disabled => {
            ApiCode::Unauthenticated.error(error.to_string())
        }
        AuthError::EmailTaken | AuthError::WeakPassword(_) | AuthError::InvalidEmail | AuthError::InvalidName => {
            ApiCode::BadUserInput.error(error.to_string())
        }
        AuthError::Store(error) => store_error(error),
        AuthError::Config(_) => internal(&error),
    }
}

/// The signed-in user, or UNAUTHENTICATED.
pub fn viewer<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Viewer> {
    ctx.data_opt::<Viewer>()
        .ok_or_else(|| ApiCode::Unauthenticated.error("sign in first: send Authorization: Bearer <access token>"))
}

/// Search is anonymous unless configured otherwise.
pub fn may_search(ctx: &Context<'_>) -> async_graphql::Result<()> {
    let api = ctx.data::<ApiContext>()?;
    if api.anonymous_search || ctx.data_opt::<Viewer>().is_some() {
        return Ok(());
    }
    Err(ApiCode::Unauthenticated.error("searching needs a signed-in user here"))
}

/// Runs blocking account work (argon2, the database) off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> async_graphql::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| internal(&e))?.map_err(auth_error)
}

/// Lets only users of one role through (OPS is let through everywhere).
pub struct RoleGuard(pub Role);

impl async_graphql::Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let claims = &viewer(ctx)?.0;
        if claims.role == self.0 || claims.role == Role::Ops {
            return Ok(());
        }
        Err(ApiCode::Forbidden.error(format!("this needs the {} role", self.0.as_str())))
    }
}
