//! `GET /invoices/{id}.pdf|.csv|.xml`: a stored invoice or credit note, rendered from the
//! document kept at issue (so it is the same file every time). The caller signs in with a bearer
//! token; operations staff get any document, a fleet manager the issued documents of their own
//! fleets. Anything else, including a document of another fleet, is 404 as if it did not exist:
//! ids are random and cannot be told apart from guesses.

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, web};
use emsp_accounts::Accounts;
use serde_json::json;

use crate::app::AppState;

fn error(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": { "code": code, "message": message } }))
}

fn bearer(http: &HttpRequest) -> Option<&str> {
    let value = http.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

pub async fn download(
    http: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    accounts: web::Data<Accounts>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let not_found = || error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such invoice");
    let Some((id, format)) = path.rsplit_once('.') else { return not_found() };
    let (content_type, format) = match format {
        "pdf" => ("application/pdf", "pdf"),
        "csv" => ("text/csv; charset=utf-8", "csv"),
        "xml" => ("application/xml; charset=utf-8", "xml"),
        _ => return not_found(),
    };
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return not_found();
    }
    let Some(token) = bearer(&http) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "sign in first: send Authorization: Bearer <access token>",
        );
    };
    let claims = match accounts.verify(token) {
        Ok(claims) => claims,
        Err(_) => return error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "invalid or expired access token"),
    };
    let store = state.store.clone();
    let id = id.to_owned();
    let rendered = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<(String, Vec<u8>)>> {
        let Some(record) = store.invoice_for_viewer(&id, &claims.sub, claims.role)? else { return Ok(None) };
        let bytes = match format {
            "pdf" => emsp_invoicing::render_pdf(&record.document)?,
            "csv" => emsp_invoicing::render_csv(&record.document)?,
            _ => emsp_invoicing::render_ubl(&record.document)?,
        };
        Ok(Some((record.document.display_number().to_owned(), bytes)))
    })
    .await;
    match rendered {
        Ok(Ok(Some((number, bytes)))) => HttpResponse::Ok()
            .content_type(content_type)
            .insert_header(header::CacheControl(vec![header::CacheDirective::Private, header::CacheDirective::NoStore]))
            .insert_header(ContentDisposition {
                disposition: DispositionType::Attachment,
                parameters: vec![DispositionParam::Filename(format!("{number}.{format}"))],
            })
            .body(bytes),
        Ok(Ok(None)) => not_found(),
        Ok(Err(failure)) => {
            tracing::error!(error = %format!("{failure:#}"), "invoice download failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")
        }
        Err(failure) => {
            tracing::error!(error = %failure, "invoice download task failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")
        }
    }
}
