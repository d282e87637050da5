//! OCPI's tracing headers on every answer, errors included.
//!
//! OCPI 2.2.1 (transport and format, "Request/Response headers"): every request carries an
//! `X-Request-ID` and an `X-Correlation-ID`, and the response carries the same ones. Handlers
//! answer through [`OcpiRequest`](crate::OcpiRequest), but many answers never reach a handler: a
//! bad token (401), a body that is not JSON (2001 from the `JsonConfig` error handler), an unknown
//! path (404) or method (405). A middleware on the whole `/ocpi` scope therefore sets both headers
//! on whatever goes out, and turns actix's bare 404/405 into OCPI envelopes.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode as HttpStatus;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use emsp_ocpi::StatusCode;

use crate::error::OcpiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// A caller's id worth echoing: printable ASCII, not empty, of sane length; otherwise we make one.
fn usable_id(req: &ServiceRequest, name: &HeaderName) -> Option<HeaderValue> {
    let value = req.headers().get(name)?;
    let text = value.to_str().ok()?.trim();
    let usable = !text.is_empty() && text.len() <= 255 && text.bytes().all(|b| b.is_ascii_graphic());
    if !usable {
        return None;
    }
    HeaderValue::from_str(text).ok()
}

fn new_id() -> HeaderValue {
    // A UUID's text is always a valid header value.
    HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).unwrap_or(HeaderValue::from_static("generated"))
}

/// Middleware for the `/ocpi` scope: echoes (or makes) `X-Request-ID` and `X-Correlation-ID` on
/// every response, and answers an unknown method with an OCPI envelope.
pub async fn ocpi_headers(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = usable_id(&req, &REQUEST_ID).unwrap_or_else(new_id);
    let correlation_id = usable_id(&req, &CORRELATION_ID).unwrap_or_else(new_id);
    // Handlers read the ids from the request (`OcpiRequest`): give them the ones we answer with.
    req.headers_mut().insert(REQUEST_ID, request_id.clone());
    req.headers_mut().insert(CORRELATION_ID, correlation_id.clone());
    // Handler and extractor errors arrive here as responses already. (Do not clone the request
    // before routing: the router needs it unshared.)
    let mut response = next.call(req).await?.map_into_boxed_body();
    let bare = !response.headers().contains_key(CONTENT_TYPE);
    if bare && response.status() == HttpStatus::METHOD_NOT_ALLOWED {
        let (request, _) = response.into_parts();
        let envelope = OcpiError::method_not_allowed("method not allowed on this resource").error_response();
        response = ServiceResponse::new(request, envelope);
    }
    let headers = response.headers_mut();
    if !headers.contains_key(REQUEST_ID) {
        headers.insert(REQUEST_ID, request_id);
    }
    headers.insert(CORRELATION_ID, correlation_id);
    Ok(response)
}

/// Default service of the `/ocpi` scope: an unknown path is a 404 with an OCPI envelope.
pub async fn not_found() -> HttpResponse {
    OcpiError::new(HttpStatus::NOT_FOUND, StatusCode::CLIENT_ERROR, "no such OCPI endpoint").error_response()
}
