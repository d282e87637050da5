//! Error policy of the server.
//!
//! - Library crates return their own `thiserror` enums; `anyhow` is used only outside request
//!   handling (start-up, the CLI).
//! - At the edge every error becomes one [`ErrorCode`], which fixes the HTTP status, the GraphQL
//!   `extensions.code` and the OCPI `status_code` together, so the three protocols never disagree.
//! - A client never sees an internal error's text: `Internal` and `Unavailable` carry a generic
//!   message, and the detail goes to the log with the request id.
//! - A database error is never turned into "not found": repositories return `Ok(None)` for a
//!   missing row and `Err` for a failure.

use actix_web::http::StatusCode;
use emsp_store::StoreError;

/// The one classification of errors shown to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadUserInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    /// A dependency (database, partner) is down; the client may retry.
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The GraphQL `extensions.code`.
    pub fn graphql_code(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The OCPI envelope `status_code`: 2xxx client errors, 3xxx server errors (which OCPI sends
    /// with HTTP 200; the HTTP status of an OCPI answer is chosen by the OCPI layer).
    pub fn ocpi_status_code(self) -> u16 {
        match self {
            ErrorCode::BadUserInput | ErrorCode::Conflict => 2001,
            ErrorCode::Unauthenticated | ErrorCode::Forbidden | ErrorCode::RateLimited => 2000,
            ErrorCode::NotFound => 2004,
            ErrorCode::Unavailable | ErrorCode::Internal => 3000,
        }
    }

    /// The message a client sees for errors whose detail must stay internal.
    pub fn public_message(self) -> &'static str {
        match self {
            ErrorCode::Unavailable => "a service we depend on is unavailable, try again shortly",
            ErrorCode::Internal => "internal error",
            _ => "request failed",
        }
    }
}

impl From<&StoreError> for ErrorCode {
    fn from(error: &StoreError) -> Self {
        match error {
            StoreError::Invalid(_) => ErrorCode::BadUserInput,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::Conflict(_) => ErrorCode::Conflict,
            StoreError::Unavailable(_) => ErrorCode::Unavailable,
            StoreError::Config(_)
            | StoreError::Database(_)
            | StoreError::Migration(_)
            | StoreError::Corrupt { .. }
            | StoreError::Crypto(_) => ErrorCode::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_agree_on_each_code() {
        assert_eq!(ErrorCode::RateLimited.http_status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(ErrorCode::RateLimited.graphql_code(), "RATE_LIMITED");
        assert_eq!(ErrorCode::Internal.ocpi_status_code(), 3000);
        assert_eq!(ErrorCode::BadUserInput.ocpi_status_code(), 2001);
    }

    #[test]
    fn store_errors_never_become_not_found_unless_they_are() {
        let db = StoreError::Database(diesel_error());
        assert_eq!(ErrorCode::from(&db), ErrorCode::Internal);
        let down = StoreError::Unavailable("timed out".into());
        assert_eq!(ErrorCode::from(&down), ErrorCode::Unavailable);
        assert_eq!(ErrorCode::from(&StoreError::NotFound("x".into())), ErrorCode::NotFound);
    }

    fn diesel_error() -> emsp_store::DieselError {
        emsp_store::DieselError::NotFound
    }
}
