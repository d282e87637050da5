//! A driver at the charger: the session starts there, not from the app. The CPO checks the card
//! against the tokens the EMSP pushed (a `whitelist: ALWAYS` token charges at once, a `valid: false`
//! one never) and otherwise asks the EMSP in real time (`POST {tokens}/{uid}/authorize`), which is
//! how an EMSP's authorization endpoint gets exercised. An allowed card starts the same simulated
//! session as a remote start, with `auth_method` `WHITELIST` or `AUTH_REQUEST`.

use std::sync::Arc;

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::charging::{StartRequest, begin_session, run_session};
use crate::client::{Call, join, send};
use crate::error::ClientError;
use crate::options::SimVersion;
use crate::state::{SimState, str_field};
use crate::status::set_and_push_status;

/// What happened when the card was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwipeOutcome {
    /// Charging: the session was PUT to the EMSP and runs like a remote-started one.
    Charging { session_id: String },
    /// The EMSP (or our copy of its token) said no: `BLOCKED`, `EXPIRED`, `NO_CREDIT`, `NOT_ALLOWED`.
    Refused { allowed: String },
    /// The card was fine but the EVSE was not (`EVSE_OCCUPIED`, `EVSE_INOPERATIVE`, ...).
    EvseUnavailable { reason: String },
}

/// `LocationReferences`: where the card was presented.
#[derive(Serialize)]
struct LocationReferences {
    location_id: String,
    evse_uids: Vec<String>,
}

pub async fn swipe(
    state: Arc<SimState>,
    uid: &str,
    location_id: &str,
    evse_uid: &str,
) -> Result<SwipeOutcome, ClientError> {
    let stored = {
        let inner = state.inner.lock();
        inner.tokens.values().find(|t| str_field(t, "uid") == Some(uid)).cloned()
    };
    let whitelisted = stored.as_ref().is_some_and(|t| str_field(t, "whitelist") == Some("ALWAYS"));
    let refused_locally = stored.as_ref().is_some_and(|t| t.get("valid").and_then(Value::as_bool) == Some(false));
    if refused_locally {
        return Ok(SwipeOutcome::Refused { allowed: "NOT_ALLOWED".to_owned() });
    }
    let (token, reference, auth_method) = if whitelisted {
        (stored.unwrap_or(Value::Null), None, "WHITELIST")
    } else {
        let info = authorize(&state, uid, location_id, evse_uid).await?;
        let allowed = str_field(&info, "allowed").unwrap_or("NOT_ALLOWED").to_owned();
        if allowed != "ALLOWED" {
            return Ok(SwipeOutcome::Refused { allowed });
        }
        let token = info.get("token").filter(|t| t.is_object()).cloned().or(stored).unwrap_or_else(|| bare_token(uid));
        let reference = str_field(&info, "authorization_reference").map(str::to_owned);
        (token, reference, "AUTH_REQUEST")
    };
    let connector_id = {
        let inner = state.inner.lock();
        inner
            .evse(location_id, evse_uid)
            .and_then(|e| e.get("connectors")?.get(0)?.get("id")?.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let request = StartRequest {
        location_id: location_id.to_owned(),
        evse_uid: evse_uid.to_owned(),
        connector_id,
        token,
        reference,
    };
    let session_id = match begin_session(&state, request, auth_method) {
        Ok(id) => id,
        Err(reason) => return Ok(SwipeOutcome::EvseUnavailable { reason: reason.to_owned() }),
    };
    tracing::info!(%session_id, %location_id, %evse_uid, auth_method, "card accepted at the charger");
    set_and_push_status(&state, location_id, evse_uid, "CHARGING").await;
    let task_state = state.clone();
    let task_id = session_id.clone();
    state.spawn(async move { run_session(task_state, task_id).await });
    Ok(SwipeOutcome::Charging { session_id })
}

/// A token we know nothing about but its uid (2.1.1 authorization answers carry no token).
fn bare_token(uid: &str) -> Value {
    let mut token = serde_json::Map::new();
    for (field, value) in [("uid", uid), ("type", "RFID"), ("contract_id", uid), ("auth_id", uid)] {
        token.insert(field.to_owned(), Value::String(value.to_owned()));
    }
    Value::Object(token)
}

/// `POST {tokens}/{uid}/authorize?type=RFID` with the location; returns the `AuthorizationInfo`.
async fn authorize(state: &SimState, uid: &str, location_id: &str, evse_uid: &str) -> Result<Value, ClientError> {
    let (url, token, to) = {
        let inner = state.inner.lock();
        let Some(peer) = &inner.peer else { return Err(ClientError::NotRegistered) };
        let Some(endpoint) = peer.sender("tokens") else { return Err(ClientError::NoEndpoint("tokens")) };
        let mut url = join(endpoint, &[uid, "authorize"]);
        if state.version == SimVersion::V2_2_1 {
            url.push_str("?type=RFID");
        }
        (url, peer.token_theirs.clone(), peer.country_code.clone().zip(peer.party_id.clone()))
    };
    let body = serde_json::to_value(LocationReferences {
        location_id: location_id.to_owned(),
        evse_uids: vec![evse_uid.to_owned()],
    })
    .unwrap_or(Value::Null);
    let call = Call {
        method: Method::POST,
        url: &url,
        token: &token,
        body: Some(&body),
        to: to.as_ref().map(|(c, p)| (c.as_str(), p.as_str())),
    };
    send(state, call).await?.ok_or(ClientError::Body { url, reason: "no AuthorizationInfo in the answer".to_owned() })
}
