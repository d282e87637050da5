//! Error policy. `SimError` is what a request handler can fail with; each variant fixes the HTTP
//! status and the OCPI `status_code` of the envelope (server-side 3xxx errors travel as HTTP 200, as
//! OCPI peers expect). Its text is written for the peer: details of what went wrong inside (a
//! peer's unreachable URL, a JSON error) are logged, never sent. `ClientError` is what a call we make
//! to the EMSP can fail with. `DataError` is bad input data (OCPI files, replay CSV). `anyhow` is
//! used only at the edge: `start` and the `RunningSim` methods, whose callers just report the error.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::envelope::Envelope;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("missing or unknown credentials token")]
    Unauthorized,
    #[error("{0}")]
    MethodNotAllowed(&'static str),
    #[error("unknown location")]
    UnknownLocation,
    #[error("unknown token")]
    UnknownToken,
    #[error("unknown object")]
    NotFound,
    #[error("invalid or missing parameters: {0}")]
    InvalidParameters(String),
    #[error("unable to use the client's api")]
    ClientApi,
    #[error("unsupported version")]
    UnsupportedVersion,
    #[error("no matching endpoints or expected endpoints missing")]
    NoMatchingEndpoints,
    #[error("internal error")]
    Internal,
}

impl SimError {
    /// The OCPI `status_code` of the envelope.
    pub fn ocpi_code(&self) -> u32 {
        match self {
            SimError::Unauthorized | SimError::MethodNotAllowed(_) | SimError::NotFound => 2000,
            SimError::InvalidParameters(_) => 2001,
            SimError::UnknownLocation => 2003,
            SimError::UnknownToken => 2004,
            SimError::ClientApi => 3001,
            SimError::UnsupportedVersion => 3002,
            SimError::NoMatchingEndpoints => 3003,
            SimError::Internal => 3000,
        }
    }
}

impl ResponseError for SimError {
    fn status_code(&self) -> StatusCode {
        match self {
            SimError::Unauthorized => StatusCode::UNAUTHORIZED,
            SimError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            SimError::UnknownLocation | SimError::UnknownToken | SimError::NotFound => StatusCode::NOT_FOUND,
            SimError::InvalidParameters(_) => StatusCode::BAD_REQUEST,
            SimError::ClientApi | SimError::UnsupportedVersion | SimError::NoMatchingEndpoints => StatusCode::OK,
            SimError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body: Envelope<()> = Envelope::error(self.ocpi_code(), self.to_string());
        HttpResponse::build(self.status_code()).json(body)
    }
}

/// A call the simulator made to the EMSP failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered OCPI status {code}: {message}")]
    Ocpi { url: String, code: u32, message: String },
    #[error("{url} sent a body that is not the expected OCPI JSON: {reason}")]
    Body { url: String, reason: String },
    #[error("the EMSP is not registered (no credentials exchanged yet)")]
    NotRegistered,
    #[error("the EMSP offers no `{0}` endpoint")]
    NoEndpoint(&'static str),
    #[error("the EMSP supports none of our versions ({0})")]
    NoCommonVersion(&'static str),
}

/// Data given to the simulator (OCPI files, replay CSV) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not JSON: {source}")]
    Json { path: String, source: serde_json::Error },
    #[error("{path}: expected an OCPI envelope, an array or one object")]
    Shape { path: String },
    #[error("replay line {line}: {reason}")]
    Replay { line: usize, reason: String },
}
