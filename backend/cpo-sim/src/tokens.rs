//! The Tokens receiver: the EMSP pushes its drivers' tokens (`PUT` whole, `PATCH` fields) and may
//! read back what we hold. Kept in memory and shown to tests through `RunningSim::received`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;

use crate::envelope::Envelope;
use crate::error::SimError;
use crate::options::SimVersion;
use crate::state::{SimState, str_field};
use crate::transport::authorize;

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

type TokenPath = web::Path<(String, String, String)>;

fn key(path: (String, String, String), query: &TokenQuery) -> (String, String, String, String) {
    let (country_code, party_id, uid) = path;
    let kind = query.kind.clone().unwrap_or_else(|| "RFID".to_owned());
    (country_code.to_ascii_uppercase(), party_id.to_ascii_uppercase(), uid, kind)
}

pub async fn get_token(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: TokenPath,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let key = key(path.into_inner(), &query);
    let inner = state.inner.lock();
    let token = inner.tokens.get(&key).ok_or(SimError::UnknownToken)?;
    Ok(HttpResponse::Ok().json(Envelope::ok(token)))
}

pub async fn put_token(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: TokenPath,
    query: web::Query<TokenQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let token: Value = serde_json::from_slice(&body)
        .map_err(|_| SimError::InvalidParameters("body is not a Token object".to_owned()))?;
    if !token.is_object() {
        return Err(SimError::InvalidParameters("body is not a Token object".to_owned()));
    }
    // Without `?type=` the token is kept under its own type, so a later GET with `?type=` finds it.
    let url_type = query.kind.clone();
    let kept_as = TokenQuery { kind: url_type.clone().or_else(|| str_field(&token, "type").map(str::to_owned)) };
    let key = key(path.into_inner(), &kept_as);
    if str_field(&token, "uid") != Some(key.2.as_str()) {
        return Err(SimError::InvalidParameters("`uid` differs from the URL".to_owned()));
    }
    if state.version == SimVersion::V2_2_1 {
        for (field, expected) in [("country_code", &key.0), ("party_id", &key.1)] {
            if !str_field(&token, field).is_some_and(|v| v.eq_ignore_ascii_case(expected)) {
                return Err(SimError::InvalidParameters(format!("`{field}` differs from the URL")));
            }
        }
        if url_type.is_some() && str_field(&token, "type") != Some(key.3.as_str()) {
            return Err(SimError::InvalidParameters("`type` differs from the URL".to_owned()));
        }
    }
    if str_field(&token, "last_updated").is_none() {
        return Err(SimError::InvalidParameters("`last_updated` is missing".to_owned()));
    }
    tracing::info!(uid = %key.2, "token received");
    state.inner.lock().tokens.insert(key, token);
    Ok(HttpResponse::Ok().json(Envelope::<()>::ok_empty()))
}

pub async fn patch_token(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: TokenPath,
    query: web::Query<TokenQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let key = key(path.into_inner(), &query);
    let patch: Value = serde_json::from_slice(&body)
        .map_err(|_| SimError::InvalidParameters("body is not a JSON object".to_owned()))?;
    let Some(fields) = patch.as_object() else {
        return Err(SimError::InvalidParameters("body is not a JSON object".to_owned()));
    };
    if !fields.get("last_updated").is_some_and(Value::is_string) {
        return Err(SimError::InvalidParameters("`last_updated` is missing".to_owned()));
    }
    let mut inner = state.inner.lock();
    let token = inner.tokens.get_mut(&key).ok_or(SimError::UnknownToken)?;
    if let Some(stored) = token.as_object_mut() {
        for (field, value) in fields {
            stored.insert(field.clone(), value.clone());
        }
    }
    tracing::info!(uid = %key.2, "token patched");
    Ok(HttpResponse::Ok().json(Envelope::<()>::ok_empty()))
}
