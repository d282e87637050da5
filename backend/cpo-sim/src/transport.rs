//! OCPI transport rules on our server side: credentials tokens in the `Authorization` header, the
//! request/correlation ids echoed on every answer, and the faults that act on the whole request
//! (latency, HTTP 500, malformed bodies). Handlers call `authorize` once and get on with their work.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::envelope::Envelope;
use crate::error::SimError;
use crate::options::SimVersion;
use crate::state::SimState;

pub const REQUEST_ID: &str = "x-request-id";
pub const CORRELATION_ID: &str = "x-correlation-id";

/// A body cut off mid-JSON, served while the `malformed_json` fault is on.
const MALFORMED_BODY: &str = r#"{"status_code": 1000, "data": [{"id": "LOC"#;

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// With token A: only versions and credentials are open to it.
    Registering,
    /// The registered EMSP.
    Peer,
}

/// The credentials token of a request as sent (after `Token `), before any decoding.
fn presented_token(req: &HttpRequest) -> Option<&str> {
    let header = req.headers().get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("token").then_some(token.trim())
}

/// 2.2.1 sends the token Base64 encoded, 2.1.1 (and peers that never adopted the encoding) plain;
/// the spec lets a receiver accept both, so both are compared.
pub fn token_matches(presented: &str, expected: &str) -> bool {
    if presented == expected {
        return true;
    }
    STANDARD.decode(presented).ok().is_some_and(|decoded| decoded == expected.as_bytes())
}

/// The `Authorization` header value we send with a token.
pub fn authorization(version: SimVersion, token: &str) -> String {
    match version {
        SimVersion::V2_2_1 => format!("Token {}", STANDARD.encode(token)),
        SimVersion::V2_1_1 => format!("Token {token}"),
    }
}

/// Checks the credentials token: token C of the registered EMSP always, token A only where
/// `token_a_allowed` (versions and credentials). Anything else is 401, as the spec requires.
pub fn authorize(state: &SimState, req: &HttpRequest, token_a_allowed: bool) -> Result<Caller, SimError> {
    let Some(presented) = presented_token(req) else {
        return Err(SimError::Unauthorized);
    };
    let inner = state.inner.lock();
    if let Some(peer) = &inner.peer
        && token_matches(presented, &peer.token_ours)
    {
        return Ok(Caller::Peer);
    }
    if token_a_allowed {
        let registering = inner.token_a.iter().chain(inner.pending_token.iter());
        for token in registering {
            if token_matches(presented, token) {
                return Ok(Caller::Registering);
            }
        }
    }
    Err(SimError::Unauthorized)
}

/// Middleware of the `/ocpi` scope: faults first, then the handler, then the ids on the answer.
pub async fn ocpi_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = header_or_new(&req, REQUEST_ID);
    let correlation_id = header_or_new(&req, CORRELATION_ID);
    let state = req.app_data::<web::Data<SimState>>().cloned();
    let (latency, fail, malformed) = match &state {
        Some(state) => (state.faults.latency_ms(), state.faults.take_failure(), state.faults.malformed_json()),
        None => (0, false, false),
    };
    tracing::debug!(method = %req.method(), path = %req.path(), %request_id, "ocpi request");
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let mut res = if fail {
        tracing::info!(path = %req.path(), "fault: failing request with http 500");
        let body: Envelope<()> = Envelope::error(3000, "simulated failure".to_owned());
        req.into_response(HttpResponse::InternalServerError().json(body))
    } else {
        next.call(req).await?.map_into_boxed_body()
    };
    if malformed {
        let (req, old) = res.into_parts();
        let fresh =
            HttpResponse::build(old.status()).insert_header((CONTENT_TYPE, "application/json")).body(MALFORMED_BODY);
        res = ServiceResponse::new(req, fresh);
    }
    let headers = res.headers_mut();
    for (name, value) in [(REQUEST_ID, request_id), (CORRELATION_ID, correlation_id)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    Ok(res)
}

fn header_or_new(req: &ServiceRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 255)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_plain_and_base64() {
        assert!(token_matches("abc-123", "abc-123"));
        assert!(token_matches(&STANDARD.encode("abc-123"), "abc-123"));
        assert!(!token_matches("abc-124", "abc-123"));
        assert_eq!(authorization(SimVersion::V2_1_1, "t"), "Token t");
        assert_eq!(authorization(SimVersion::V2_2_1, "t"), "Token dA==");
    }
}
