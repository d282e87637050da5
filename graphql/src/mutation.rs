//! The mutations of the driver API.

use async_graphql::{Context, Object};

use crate::accounts::{AuthPayload, blocking};
use crate::context::ApiContext;

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// A new driver account; signs in at once.
    async fn register(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        name: Option<String>,
    ) -> async_graphql::Result<AuthPayload> {
        let accounts = ctx.data::<ApiContext>()?.accounts.clone();
        blocking(move || accounts.register(&email, &password, name.as_deref())).await.map(Into::into)
    }

    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> async_graphql::Result<AuthPayload> {
        let accounts = ctx.data::<ApiContext>()?.accounts.clone();
        blocking(move || accounts.login(&email, &password)).await.map(Into::into)
    }

    /// A new token pair for a refresh token, which is spent. Using a spent one again signs out
    /// every device of that login.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<AuthPayload> {
        let accounts = ctx.data::<ApiContext>()?.accounts.clone();
        blocking(move || accounts.refresh(&refresh_token)).await.map(Into::into)
    }

    /// Ends the login the refresh token belongs to.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<bool> {
        let accounts = ctx.data::<ApiContext>()?.accounts.clone();
        blocking(move || accounts.logout(&refresh_token)).await.map(|()| true)
    }
}
