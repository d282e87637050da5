//! Errors of the accounts service.
//!
//! Policy: the variant is what a client may learn. Login failures are one
//! [`AuthError::InvalidCredentials`] whether the email is unknown or the password wrong, so the
//! answer does not reveal who has an account. [`AuthError::InvalidToken`] carries the reason for
//! logs; the edge shows clients only that the token was refused. [`AuthError::Store`] and
//! [`AuthError::Config`] are internal: their text never reaches a client.

use emsp_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("this email is already registered")]
    EmailTaken,
    /// Why the password is refused (too short, too long), to show the user.
    #[error("password not accepted: {0}")]
    WeakPassword(String),
    #[error("not a valid email address")]
    InvalidEmail,
    /// The display name is empty after trimming or too long.
    #[error("not a valid name")]
    InvalidName,
    /// An access or refresh token that is expired, forged, for another audience or issuer, signed
    /// with another algorithm or an unknown key, revoked, or malformed. The reason is for logs.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// A refresh token that had already been used came back: its whole family is now revoked and
    /// the user must log in again.
    #[error("refresh token reused; the session has been revoked")]
    RefreshReused,
    #[error("account disabled")]
    Disabled,
    /// The service is set up wrongly (a token lifetime out of range, no `EMSP_SECRET_KEY`, ...).
    #[error("accounts configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
