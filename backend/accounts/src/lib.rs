//! Driver and staff accounts of the EMSP: sign-up and login with argon2id passwords, short-lived
//! EdDSA access tokens (JWTs) checked without the database, and rotating refresh tokens whose
//! reuse revokes the whole login. The server and the GraphQL layer call [`Accounts`].

mod config;
mod error;
mod keys;
mod password;
mod service;
mod tokens;

pub use config::AuthConfig;
pub use emsp_store::Role;
pub use error::AuthError;
pub use service::{Accounts, AuthPayload, User};
pub use tokens::Claims;
