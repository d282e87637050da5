//! GraphQL errors carry `extensions.code`; internal detail never reaches the client.

use async_graphql::{Error, ErrorExtensions};
use emsp_search_index::SearchError;
use emsp_store::StoreError;

/// The codes a client can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    RateLimited,
    /// The request conflicts with the object's state (a refund of a payment not captured).
    Conflict,
    /// Card payments are not configured on this server.
    PaymentsDisabled,
    /// The card was declined.
    PaymentDeclined,
    /// The payment provider did not answer; the request may be repeated.
    PaymentUnavailable,
    Internal,
}

impl ApiCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiCode::Unauthenticated => "UNAUTHENTICATED",
            ApiCode::Forbidden => "FORBIDDEN",
            ApiCode::NotFound => "NOT_FOUND",
            ApiCode::BadUserInput => "BAD_USER_INPUT",
            ApiCode::RateLimited => "RATE_LIMITED",
            ApiCode::Conflict => "CONFLICT",
            ApiCode::PaymentsDisabled => "PAYMENTS_DISABLED",
            ApiCode::PaymentDeclined => "PAYMENT_DECLINED",
            ApiCode::PaymentUnavailable => "PAYMENT_UNAVAILABLE",
            ApiCode::Internal => "INTERNAL",
        }
    }

    /// An error with this code and a message meant for the client.
    pub fn error(self, message: impl Into<String>) -> Error {
        Error::new(message.into()).extend_with(|_, extensions| extensions.set("code", self.as_str()))
    }
}

/// Search rejects a query: the message says what to change.
pub fn search_error(error: SearchError) -> Error {
    ApiCode::BadUserInput.error(error.to_string())
}

/// A store failure: logged with its detail, shown as a generic internal error.
pub fn store_error(error: StoreError) -> Error {
    if let StoreError::Invalid(invalid) = &error {
        return ApiCode::BadUserInput.error(invalid.to_string());
    }
    tracing::error!(%error, "store error in a GraphQL resolver");
    ApiCode::Internal.error("internal error")
}

/// A failure without a client-facing meaning (a task that panicked, ...).
pub fn internal(error: &dyn std::fmt::Display) -> Error {
    tracing::error!(%error, "internal error in a GraphQL resolver");
    ApiCode::Internal.error("internal error")
}
