//! Errors of the roaming layer and how they travel in OCPI.
//!
//! OCPI answers client errors (2xxx) and server errors (3xxx) inside the envelope; the HTTP status
//! is 200 for most, except authentication (401) and method-not-allowed situations the spec names
//! (405 for a second credentials POST). Internal error text never reaches the partner.

use actix_web::http::StatusCode as HttpStatus;
use actix_web::{HttpResponse, ResponseError};
use chrono::Utc;
use emsp_ocpi::{Envelope, StatusCode};
use emsp_store::StoreError;

/// An error answered to a partner in OCPI form.
#[derive(Debug, thiserror::Error)]
#[error("{message} (OCPI {code:?}, HTTP {http})")]
pub struct OcpiError {
    pub http: HttpStatus,
    pub code: StatusCode,
    pub message: String,
}

impl OcpiError {
    pub fn new(http: HttpStatus, code: StatusCode, message: impl Into<String>) -> Self {
        Self { http, code, message: message.into() }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(HttpStatus::UNAUTHORIZED, StatusCode::CLIENT_ERROR, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(HttpStatus::BAD_REQUEST, StatusCode::INVALID_PARAMETERS, message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(HttpStatus::METHOD_NOT_ALLOWED, StatusCode::CLIENT_ERROR, message)
    }

    pub fn server(code: StatusCode, message: impl Into<String>) -> Self {
        Self::new(HttpStatus::OK, code, message)
    }

    /// A failure of ours whose detail stays in the log.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error answering a partner");
        Self::new(HttpStatus::INTERNAL_SERVER_ERROR, StatusCode::SERVER_ERROR, "internal error")
    }
}

impl From<StoreError> for OcpiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Invalid(invalid) => OcpiError::invalid(invalid.to_string()),
            StoreError::Unavailable(_) => {
                tracing::warn!(%error, "database unavailable answering a partner");
                OcpiError::new(HttpStatus::SERVICE_UNAVAILABLE, StatusCode::SERVER_ERROR, "temporarily unavailable")
            }
            other => OcpiError::internal(&other),
        }
    }
}

impl ResponseError for OcpiError {
    fn status_code(&self) -> HttpStatus {
        self.http
    }

    fn error_response(&self) -> HttpResponse {
        let body: Envelope<()> = Envelope::error(self.code, self.message.clone(), Utc::now());
        HttpResponse::build(self.http).json(body)
    }
}

/// Errors of our own calls to partners (registration, pulls).
#[derive(Debug, thiserror::Error)]
pub enum RoamingError {
    #[error("partner unreachable at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("partner answered {url} with HTTP {status}: {body}")]
    Http { url: String, status: u16, body: String },
    #[error("partner answered {url} with OCPI status {code}: {message}")]
    Ocpi { url: String, code: u16, message: String },
    #[error("partner answered {url} with a body we cannot read: {reason}")]
    Malformed { url: String, reason: String },
    #[error("no common OCPI version: the partner offers {offered:?}, we speak 2.2.1 and 2.1.1")]
    NoCommonVersion { offered: Vec<String> },
    #[error("the partner lacks required endpoints: {0}")]
    MissingEndpoints(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// JSON body settings for OCPI routes: a body that is not valid JSON of the expected shape is
/// answered with an OCPI envelope (2001), like every other OCPI error.
pub fn json_config(limit: usize) -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(limit)
        .error_handler(|error, _req| OcpiError::invalid(format!("request body: {error}")).into())
}
