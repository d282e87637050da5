//! Errors of the store.
//!
//! Policy: every function returns [`StoreError`]. A missing row is `Ok(None)` (diesel's
//! `.optional()?`), never an error turned into "not found" and never a database error turned into
//! `None`. Messages are for logs and operators; the server maps variants to client-facing codes and
//! never shows the text of `Database` or `Pool` to a client.

use emsp_domain::ValidationError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The configuration names a database we cannot use (bad URL, missing folder, bad key).
    #[error("configuration: {0}")]
    Config(String),
    /// No connection could be had in time: the database is down or overloaded.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A stored document no longer parses: a bug or a manual edit, never the caller's fault.
    #[error("corrupt stored document {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The object breaks a rule of the domain model.
    #[error("invalid: {0}")]
    Invalid(#[from] ValidationError),
    /// A write refers to something that does not exist (an EVSE of an unknown location, ...).
    #[error("not found: {0}")]
    NotFound(String),
    /// The write would break a uniqueness rule (an email already registered, ...). Raised from
    /// the database's own unique constraint, so two concurrent writers cannot both get through.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("crypto: {0}")]
    Crypto(String),
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> Self {
        crate::database::note_error(&error);
        StoreError::Database(error)
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

impl From<diesel::ConnectionError> for StoreError {
    fn from(error: diesel::ConnectionError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
