//! The Tokens module, Sender side: we own the tokens. CPOs list them (`GET /tokens`, paginated),
//! ask us in real time whether one may charge (`POST /tokens/{uid}/authorize`), and get every
//! change pushed (`PUT`, or `PATCH` of `valid` for a block or unblock).
//!
//! Paging: `offset`/`limit` and `date_from` (inclusive) / `date_to` (exclusive) as the transport
//! chapter specifies. The `Link` we give for the next page also carries `after`, the position of
//! the last token sent, and pages continue from there rather than from an offset: a token changed
//! while a CPO pages then moves to the end of the order and comes again, and no other token is
//! skipped, which offsets cannot promise. A request without `after` uses the offset.
//!
//! Authorization: an unknown token is HTTP 404 with 2004; a known one gets `AuthorizationInfo`
//! with ALLOWED, BLOCKED (not valid, or blocked with a reason), EXPIRED (past `expires_at`),
//! NO_CREDIT (the driver's account is disabled: it cannot pay) or NOT_ALLOWED (an AD_HOC_USER
//! token, paid by card for one charge, asked for at another location than its first allowed one).
//! An AD_HOC_USER token needs the location to be decided: without `LocationReferences` the answer
//! is 2002. Every decision is recorded with a fresh `authorization_reference`; the reference is
//! given to the CPO with ALLOWED, and [`emsp_store::Store::get_authorization`] matches it to the
//! sessions and CDRs that carry it.
//!
//! Pushes: [`push_worker`] follows the store's token changes and pushes each changed token to
//! every registered partner with a tokens Receiver endpoint. A failed push is not retried in a
//! loop: the partner is marked (`repush_from` = the change's `last_updated`) and live pushes to it
//! pause; its next pull cycle ([`repush`]) sends every token changed since the mark, in order,
//! and clears the mark. A partner we never pushed to gets every token on its first cycle.

use std::collections::HashMap;

use actix_web::http::StatusCode as HttpStatus;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use emsp_domain::{AllowedType, TokenType};
use emsp_ocpi::{OcpiVersion, StatusCode, v2_1_1, v2_2_1};
use emsp_store::{AuthorizationRecord, NewAuthorization, Partner, PartnerStatus, Store, StoreError, TokenRecord};
use reqwest::Method;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use crate::authorizations::AuthorizationLog;
use crate::token_lookups::Found;

use crate::client::{Target, TokenEncoding};
use crate::error::{OcpiError, RoamingError};
use crate::transport::{OcpiRequest, Roaming};

/// Tokens per page when the CPO asks for none, and the most we give (`X-Limit`).
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

fn version(value: &str) -> Result<OcpiVersion, OcpiError> {
    match OcpiVersion::parse(value) {
        Ok(version @ (OcpiVersion::V2_1_1 | OcpiVersion::V2_2_1)) => Ok(version),
        _ => Err(OcpiError::new(
            HttpStatus::NOT_FOUND,
            StatusCode::UNSUPPORTED_VERSION,
            format!("version {value} is not supported"),
        )),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, OcpiError> {
    web::block(work).await.map_err(|e| OcpiError::internal(&e))?.map_err(OcpiError::from)
}

/// The query of `GET /tokens`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub offset: Option<String>,
    pub limit: Option<String>,
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    /// Our continuation cursor (see the module documentation).
    pub after: Option<String>,
}

fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, OcpiError> {
    let value = value.trim();
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| value.parse::<DateTime<Utc>>())
        // OCPI DateTimes without a zone are UTC.
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f").map(|naive| naive.and_utc()))
        .map_err(|_| OcpiError::invalid(format!("{name} {value:?} is not a DateTime")))
}

fn parse_count(name: &str, value: &str) -> Result<i64, OcpiError> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| OcpiError::invalid(format!("{name} {value:?} is not a non-negative integer")))
}

fn encode_cursor(token: &TokenRecord) -> String {
    let micros = token.token.last_updated.timestamp_micros();
    URL_SAFE_NO_PAD.encode(format!("{micros}|{}", token.key()))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, String), OcpiError> {
    let bad = || OcpiError::invalid("after is not a cursor we gave");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (micros, key) = text.split_once('|').ok_or_else(bad)?;
    let at = micros.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(bad)?;
    Ok((at, key.to_owned()))
}

fn query_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true).replace('+', "%2B")
}

/// `GET /ocpi/{version}/tokens`: our tokens, paginated.
pub async fn list(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, OcpiError> {
    req.require_registered()?;
    let version_text = path.into_inner();
    let version = version(&version_text)?;
    let date_from = query.date_from.as_deref().map(|v| parse_time("date_from", v)).transpose()?;
    let date_to = query.date_to.as_deref().map(|v| parse_time("date_to", v)).transpose()?;
    let offset = query.offset.as_deref().map(|v| parse_count("offset", v)).transpose()?.unwrap_or(0);
    let limit = query.limit.as_deref().map(|v| parse_count("limit", v)).transpose()?.unwrap_or(DEFAULT_LIMIT);
    let limit = limit.clamp(1, MAX_LIMIT);
    let after = query.after.as_deref().map(decode_cursor).transpose()?;

    let store = roaming.store.clone();
    let (tokens, total) = blocking(move || {
        let (_, total) = store.tokens_page(date_from, date_to, 0, 0)?;
        let tokens = match &after {
            Some((at, key)) => store.tokens_after(date_from, date_to, Some((*at, key)), limit)?,
            None => store.tokens_page(date_from, date_to, offset, limit)?.0,
        };
        Ok((tokens, total))
    })
    .await?;

    let now = Utc::now();
    let data: Vec<serde_json::Value> = tokens
        .iter()
        .map(|record| match version {
            OcpiVersion::V2_1_1 => serde_json::to_value(v2_1_1::tokens::from_domain(&record.token, now)),
            _ => serde_json::to_value(v2_2_1::tokens::from_domain(&record.token, now)),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| OcpiError::internal(&e))?;

    let mut response = req.ok(data);
    let headers = response.headers_mut();
    let header = |value: String| HeaderValue::from_str(&value).map_err(|e| OcpiError::internal(&e));
    headers.insert(HeaderName::from_static("x-total-count"), header(total.to_string())?);
    headers.insert(HeaderName::from_static("x-limit"), header(MAX_LIMIT.to_string())?);
    // A full page may have more behind it; the next request says so (an empty last page at
    // worst), which is cheaper than counting what lies after a cursor.
    let next_offset = offset + i64::try_from(tokens.len()).unwrap_or(i64::MAX);
    let more = match query.after {
        Some(_) => tokens.len() as i64 == limit,
        None => next_offset < total,
    };
    if more && let Some(last) = tokens.last() {
        let mut url = format!(
            "{}/tokens?offset={next_offset}&limit={limit}&after={}",
            roaming.config.version_url(&version_text),
            encode_cursor(last)
        );
        if let Some(from) = date_from {
            url.push_str(&format!("&date_from={}", query_time(from)));
        }
        if let Some(to) = date_to {
            url.push_str(&format!("&date_to={}", query_time(to)));
        }
        headers.insert(HeaderName::from_static("link"), header(format!("<{url}>; rel=\"next\""))?);
    }
    Ok(response)
}

/// The query of `POST /tokens/{uid}/authorize`.
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeQuery {
    #[serde(rename = "type")]
    pub token_type: Option<String>,
}

/// A decision on a real-time authorization, before it is written in a protocol version.
#[derive(Debug, Clone)]
pub struct Decision {
    pub token: TokenRecord,
    pub allowed: AllowedType,
    /// Given to the CPO with ALLOWED.
    pub reference: String,
    /// Why, in words for the driver, when not ALLOWED.
    pub info: Option<&'static str>,
}

/// Why no decision could be made.
#[derive(Debug)]
pub enum Undecided {
    UnknownToken,
    /// The token needs a location to be decided (2002).
    NeedsLocation,
    Store(StoreError),
}

impl From<StoreError> for Undecided {
    fn from(error: StoreError) -> Self {
        Undecided::Store(error)
    }
}

/// The question of one real-time authorization.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub uid: &'a str,
    /// The `?type=` the CPO sent; a token of another type is unknown. Without it any type
    /// matches (the specification's default RFID would refuse every app token of a CPO that
    /// leaves the parameter out).
    pub token_type: Option<&'a TokenType>,
    pub location: Option<&'a v2_2_1::tokens::LocationReferences>,
    pub partner_id: Option<&'a str>,
}

/// Whether [`decide`] may touch the database for this token (then call it from a blocking
/// thread): an AD_HOC_USER token reads and writes its decisions at once, and without a running
/// writer every decision is written at once.
pub fn decision_needs_store(log: &AuthorizationLog, found: &Found) -> bool {
    !log.queueing() || found.as_ref().is_some_and(|(record, _)| record.token.token_type == TokenType::AdHocUser)
}

/// Decides and records a real-time authorization of the token `found` for `question` (see
/// [`decision_needs_store`] for when this blocks).
pub fn decide(
    store: &Store,
    log: &AuthorizationLog,
    found: Found,
    question: Question<'_>,
    now: DateTime<Utc>,
) -> Result<Decision, Undecided> {
    let Question { uid, token_type, location, partner_id } = question;
    let (record, owner_disabled) = found.ok_or(Undecided::UnknownToken)?;
    if token_type.is_some_and(|wanted| wanted != &record.token.token_type) {
        return Err(Undecided::UnknownToken);
    }
    let mut allowed = record.token.allowed_at(now);
    let mut info = match allowed {
        AllowedType::Blocked => Some("This card or app account is blocked."),
        AllowedType::Expired => Some("This card has expired."),
        _ => None,
    };
    if allowed == AllowedType::Allowed && owner_disabled == Some(true) {
        allowed = AllowedType::NoCredit;
        info = Some("Your account cannot pay for charging at the moment.");
    }
    if allowed == AllowedType::Allowed && record.token.token_type == TokenType::AdHocUser {
        let Some(location) = location else { return Err(Undecided::NeedsLocation) };
        if let Some(first) = store.first_allowed_authorization(&record.key())?
            && !first.location_id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(&location.location_id))
        {
            allowed = AllowedType::NotAllowed;
            info = Some("This one-time payment is for another charger.");
        }
    }
    let authorization = AuthorizationRecord::new(&NewAuthorization {
        token_key: &record.key(),
        uid,
        partner_id,
        allowed: &allowed,
        location_id: location.map(|l| l.location_id.as_str()),
        evse_uids: location.map(|l| l.evse_uids.as_slice()).unwrap_or_default(),
    });
    let reference = authorization.reference.clone();
    if record.token.token_type == TokenType::AdHocUser {
        // Its next decision reads this one (the first allowed location): stored before answering.
        store.record_authorizations(std::slice::from_ref(&authorization))?;
    } else {
        log.keep(store, authorization)?;
    }
    Ok(Decision { token: record, allowed, reference, info })
}

fn unknown_token(uid: &str) -> OcpiError {
    OcpiError::new(HttpStatus::NOT_FOUND, StatusCode::UNKNOWN_TOKEN, format!("unknown token {uid}"))
}

/// `POST /ocpi/{version}/tokens/{uid}/authorize[?type=]` with an optional `LocationReferences`.
pub async fn authorize(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<(String, String)>,
    query: web::Query<AuthorizeQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, OcpiError> {
    req.require_registered()?;
    let (version_text, uid) = path.into_inner();
    let version = version(&version_text)?;
    if uid.is_empty() || uid.len() > emsp_domain::TokenUid::MAX_LEN {
        return Err(unknown_token(&uid));
    }
    let token_type = match query.token_type.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(text) => {
            let parsed = TokenType::parse(text);
            if !parsed.is_known() {
                return Err(OcpiError::invalid(format!("type {text:?} is not a token type")));
            }
            Some(parsed)
        }
    };
    let text = std::str::from_utf8(&body).map_err(|_| OcpiError::invalid("the body is not UTF-8"))?.trim();
    let location: Option<v2_2_1::tokens::LocationReferences> = if text.is_empty() || text == "null" {
        None
    } else {
        Some(
            serde_json::from_str(text)
                .map_err(|e| OcpiError::invalid(format!("the body is not LocationReferences: {e}")))?,
        )
    };
    if let Some(location) = &location
        && (location.location_id.trim().is_empty() || location.location_id.len() > 36)
    {
        return Err(OcpiError::invalid("location_id must be 1 to 36 characters"));
    }

    let found = roaming.token_lookups.lookup(&roaming.store, &uid).await?;
    let (store, log) = (roaming.store.clone(), roaming.authorizations.clone());
    let outcome = if decision_needs_store(&log, &found) {
        let partner_id = req.partner.id.clone();
        let (asked, refs) = (uid.clone(), location.clone());
        web::block(move || {
            let question = Question {
                uid: &asked,
                token_type: token_type.as_ref(),
                location: refs.as_ref(),
                partner_id: Some(&partner_id),
            };
            decide(&store, &log, found, question, Utc::now())
        })
        .await
        .map_err(|e| OcpiError::internal(&e))?
    } else {
        // Decided here: the token is read, and the decision only queued.
        let question = Question {
            uid: &uid,
            token_type: token_type.as_ref(),
            location: location.as_ref(),
            partner_id: Some(&req.partner.id),
        };
        decide(&store, &log, found, question, Utc::now())
    };
    let decision = match outcome {
        Ok(decision) => decision,
        Err(Undecided::UnknownToken) => return Err(unknown_token(&uid)),
        Err(Undecided::NeedsLocation) => {
            return Err(OcpiError::server(
                StatusCode::NOT_ENOUGH_INFORMATION,
                "this token can only be authorized for a given location: send LocationReferences",
            ));
        }
        Err(Undecided::Store(error)) => return Err(error.into()),
    };
    let allowed = decision.allowed == AllowedType::Allowed;
    let info = decision.info.map(|text| v2_2_1::tokens::DisplayText { language: "en".into(), text: text.into() });
    // The location comes back only when the driver may charge there (with the EVSEs asked for).
    let location = if allowed { location } else { None };
    let now = Utc::now();
    Ok(match version {
        OcpiVersion::V2_1_1 => req.ok(v2_1_1::tokens::AuthorizationInfo { allowed: decision.allowed, location, info }),
        _ => req.ok(v2_2_1::tokens::AuthorizationInfo {
            allowed: decision.allowed,
            token: v2_2_1::tokens::from_domain(&decision.token.token, now),
            location,
            authorization_reference: allowed.then_some(decision.reference),
            info,
        }),
    })
}

/// A partner that receives our tokens, with what we need to call it.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub partner: Partner,
    pub url: String,
    pub token: String,
    pub encoding: TokenEncoding,
    pub version: OcpiVersion,
}

/// The tokens endpoint a partner receives on: `RECEIVER` (2.2.1) or unroled (2.1.1).
fn receiver_endpoint(partner: &Partner) -> Option<String> {
    partner
        .endpoints
        .iter()
        .find(|e| {
            e.identifier == "tokens" && e.role.as_deref().is_none_or(|role| role.eq_ignore_ascii_case("RECEIVER"))
        })
        .map(|e| e.url.trim_end_matches('/').to_owned())
}

/// Registered partners with a tokens Receiver endpoint (blocking).
pub fn receivers(store: &Store) -> Result<Vec<Receiver>, StoreError> {
    let mut receivers = Vec::new();
    for partner in store.list_partners()? {
        if partner.status != PartnerStatus::Registered {
            continue;
        }
        let Some(url) = receiver_endpoint(&partner) else { continue };
        let Some(token) = store.outgoing_token(&partner.id)? else { continue };
        let version =
            partner.version.as_deref().and_then(|v| OcpiVersion::parse(v).ok()).unwrap_or(OcpiVersion::V2_2_1);
        let encoding = TokenEncoding::choose(partner.token_encoding.as_deref(), Some(version));
        receivers.push(Receiver { partner, url, token, encoding, version });
    }
    Ok(receivers)
}

/// Sends one token to one partner: a PATCH of `valid` when only the validity changed (falling
/// back to PUT if the partner does not know the token), else a PUT.
pub async fn push_one(
    roaming: &Roaming,
    receiver: &Receiver,
    record: &TokenRecord,
    validity_only: bool,
) -> Result<(), RoamingError> {
    let token = &record.token;
    let url = format!(
        "{}/{}/{}/{}?type={}",
        receiver.url,
        token.party.country_code,
        token.party.party_id,
        url_segment(token.uid.as_str()),
        token.token_type
    );
    let target = Target { token: &receiver.token, encoding: receiver.encoding, to: None };
    let now = Utc::now();
    if validity_only {
        let patch = v2_2_1::tokens::ValidityPatch {
            valid: token.allowed_at(now) == AllowedType::Allowed,
            last_updated: token.last_updated,
        };
        match roaming.client.send::<_, serde_json::Value>(Method::PATCH, &url, &target, &patch).await {
            Ok(_) => return Ok(()),
            Err(error) => {
                tracing::debug!(partner = %receiver.partner.id, %error, "token patch refused, sending the whole token");
            }
        }
    }
    let result = match receiver.version {
        OcpiVersion::V2_1_1 => {
            let body = v2_1_1::tokens::from_domain(token, now);
            roaming.client.send::<_, serde_json::Value>(Method::PUT, &url, &target, &body).await
        }
        _ => {
            let body = v2_2_1::tokens::from_domain(token, now);
            roaming.client.send::<_, serde_json::Value>(Method::PUT, &url, &target, &body).await
        }
    };
    result.map(|_| ())
}

/// Percent-encodes what may not stand in a path segment (uids are printable ASCII).
fn url_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Pushes every token change of this process to every receiving partner until `shutdown`.
pub async fn push_worker(roaming: &Roaming, mut shutdown: watch::Receiver<bool>) {
    let mut changes = roaming.store.token_changes();
    let mut last_seen = Utc::now();
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = shutdown.changed() => return,
        };
        let change = match change {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                // Too many changes at once: let the next cycle send everything since the last one seen.
                tracing::warn!(missed, "token pushes fell behind; partners are marked for a re-push");
                let store = roaming.store.clone();
                let from = last_seen;
                let marked = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
                    for receiver in receivers(&store)? {
                        store.mark_token_repush(&receiver.partner.id, from, "token pushes fell behind")?;
                    }
                    Ok(())
                })
                .await;
                if !matches!(marked, Ok(Ok(()))) {
                    tracing::error!(?marked, "could not mark partners for a token re-push");
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let store = roaming.store.clone();
        let key = change.key.clone();
        // Read afresh for every change: a partner that registered a moment ago gets it too.
        let loaded = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let token = store.get_token_by_key(&key)?;
            let list = receivers(&store)?;
            let paused: HashMap<String, bool> = store
                .token_push_states()?
                .into_iter()
                .map(|state| (state.partner_id, state.repush_from.is_some()))
                .collect();
            Ok((token, list, paused))
        })
        .await;
        let (token, list, paused) = match loaded {
            Ok(Ok(loaded)) => loaded,
            other => {
                tracing::error!(?other, key = %change.key, "could not load a changed token to push");
                continue;
            }
        };
        let Some(token) = token else { continue };
        last_seen = last_seen.max(token.token.last_updated);
        let validity_only = matches!(change.action.as_str(), "BLOCK" | "UNBLOCK");
        for receiver in &list {
            if paused.get(&receiver.partner.id).copied().unwrap_or(false) {
                // Marked for a re-push: its next cycle sends this change too, in order.
                continue;
            }
            match push_one(roaming, receiver, &token, validity_only).await {
                Ok(()) => {
                    let store = roaming.store.clone();
                    let id = receiver.partner.id.clone();
                    if let Ok(Err(error)) =
                        tokio::task::spawn_blocking(move || store.record_token_push(&id, None)).await
                    {
                        tracing::error!(%error, "could not record a token push");
                    }
                }
                Err(error) => {
                    tracing::warn!(partner = %receiver.partner.id, uid = %token.token.uid, %error, "token push failed; re-pushed next cycle");
                    let store = roaming.store.clone();
                    let id = receiver.partner.id.clone();
                    let from = token.token.last_updated;
                    let message = error.to_string();
                    if let Ok(Err(error)) =
                        tokio::task::spawn_blocking(move || store.mark_token_repush(&id, from, &message)).await
                    {
                        tracing::error!(%error, "could not mark a partner for a token re-push");
                    }
                }
            }
        }
    }
}

/// What a re-push did for one partner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepushReport {
    pub partner_id: String,
    pub pushed: usize,
    /// Why it stopped early, if it did (the mark stays for the next cycle).
    pub failed: Option<String>,
}

/// The re-push of a pull cycle: for every receiving partner that is marked (or was never pushed
/// to), sends every token changed since the mark, oldest first; clears the mark when all went
/// through, else moves it to the token that failed.
pub async fn repush(roaming: &Roaming) -> Vec<RepushReport> {
    let store = roaming.store.clone();
    let loaded = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        let states: HashMap<String, Option<DateTime<Utc>>> =
            store.token_push_states()?.into_iter().map(|s| (s.partner_id, s.repush_from)).collect();
        Ok((receivers(&store)?, states))
    })
    .await;
    let (list, states) = match loaded {
        Ok(Ok(loaded)) => loaded,
        other => {
            tracing::warn!(?other, "cannot list partners for the token re-push");
            return Vec::new();
        }
    };
    let mut reports = Vec::new();
    for receiver in list {
        let from = match states.get(&receiver.partner.id) {
            Some(Some(from)) => Some(*from),
            Some(None) => continue,
            // Never pushed to: every token.
            None => None,
        };
        reports.push(repush_partner(roaming, &receiver, from).await);
    }
    reports
}

async fn repush_partner(roaming: &Roaming, receiver: &Receiver, from: Option<DateTime<Utc>>) -> RepushReport {
    let started = Utc::now();
    let mut report = RepushReport { partner_id: receiver.partner.id.clone(), ..RepushReport::default() };
    let mut after: Option<(DateTime<Utc>, String)> = None;
    loop {
        let store = roaming.store.clone();
        let cursor = after.clone();
        let page = tokio::task::spawn_blocking(move || {
            store.tokens_after(from, None, cursor.as_ref().map(|(at, key)| (*at, key.as_str())), 200)
        })
        .await;
        let page = match page {
            Ok(Ok(page)) => page,
            other => {
                report.failed = Some(format!("cannot read tokens: {other:?}"));
                return report;
            }
        };
        let Some(last) = page.last() else { break };
        after = Some((last.token.last_updated, last.key()));
        for record in &page {
            if let Err(error) = push_one(roaming, receiver, record, false).await {
                let message = error.to_string();
                tracing::warn!(partner = %receiver.partner.id, uid = %record.token.uid, %error, "token re-push failed; retried next cycle");
                let store = roaming.store.clone();
                let id = receiver.partner.id.clone();
                let at = record.token.last_updated;
                let text = message.clone();
                if let Ok(Err(error)) =
                    tokio::task::spawn_blocking(move || store.mark_token_repush(&id, at, &text)).await
                {
                    tracing::error!(%error, "could not mark a partner for a token re-push");
                }
                report.failed = Some(message);
                return report;
            }
            report.pushed += 1;
        }
    }
    let store = roaming.store.clone();
    let id = receiver.partner.id.clone();
    if let Ok(Err(error)) = tokio::task::spawn_blocking(move || store.record_token_push(&id, Some(started))).await {
        tracing::error!(%error, "could not record a token re-push");
    }
    tracing::info!(partner = %receiver.partner.id, pushed = report.pushed, "tokens re-pushed");
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let encoded = URL_SAFE_NO_PAD.encode(format!("{}|NL*EMS*ABC", at.timestamp_micros()));
        assert_eq!(decode_cursor(&encoded).unwrap(), (at, "NL*EMS*ABC".to_owned()));
        assert!(decode_cursor("not a cursor").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("x|y")).is_err());
    }

    #[test]
    fn times_are_read_with_and_without_zone() {
        assert_eq!(parse_time("date_from", "2026-11-24T10:00:00Z").unwrap().to_rfc3339(), "2026-11-24T10:00:00+00:00");
        assert_eq!(parse_time("date_from", "2026-11-24T10:00:00").unwrap().to_rfc3339(), "2026-11-24T10:00:00+00:00");
        assert_eq!(
            parse_time("date_from", "2026-11-24T12:00:00+02:00").unwrap().to_rfc3339(),
            "2026-11-24T10:00:00+00:00"
        );
        assert!(parse_time("date_from", "yesterday").is_err());
        assert!(parse_count("offset", "-1").is_err());
        assert_eq!(parse_count("limit", " 20 ").unwrap(), 20);
    }

    #[test]
    fn uids_are_escaped_in_paths() {
        assert_eq!(url_segment("04A1-b2"), "04A1-b2");
        assert_eq!(url_segment("a/b c"), "a%2Fb%20c");
    }
}
