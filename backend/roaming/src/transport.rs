//! How a partner's request is authenticated and answered.
//!
//! One extractor, [`OcpiRequest`], reads the token and the OCPI headers once for every handler
//! (instead of a handful of parameters on each). Tokens arrive Base64-encoded (OCPI 2.2+) or plain
//! (2.1.1, and 2.2 peers that never adopted the encoding): both are tried, whatever the route's
//! version, because the two forms of one real token cannot both be valid tokens of ours.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use emsp_domain::PartyId;
use emsp_ocpi::Envelope;
use emsp_store::{Partner, PartnerParty, PartnerStatus, Store, hash_token};
use serde::Serialize;

use crate::client::OcpiClient;
use crate::config::RoamingConfig;
use crate::error::OcpiError;

/// What the OCPI handlers share.
pub struct Roaming {
    pub store: Store,
    pub client: OcpiClient,
    pub config: Arc<RoamingConfig>,
    /// Partners by token, so the hot path (status pushes) does not read the partner tables for
    /// every request.
    pub partners: PartnerCache,
    /// Real-time authorization decisions waiting to be stored (see [`crate::authorizations`]).
    pub authorizations: Arc<crate::authorizations::AuthorizationLog>,
    /// EVSE status pushes waiting to be stored together (see [`crate::status_pushes`]).
    pub status_pushes: Arc<crate::status_pushes::StatusPushes>,
    /// Token reads of real-time authorization, read together (see [`crate::token_lookups`]).
    pub token_lookups: Arc<crate::token_lookups::TokenLookups>,
}

impl Roaming {
    pub fn new(store: Store, client: OcpiClient, config: Arc<RoamingConfig>) -> Self {
        Self {
            store,
            client,
            config,
            partners: PartnerCache::default(),
            authorizations: Arc::default(),
            status_pushes: Arc::default(),
            token_lookups: Arc::default(),
        }
    }
}

/// How long a cached partner is trusted. Registration changes made by this process clear the
/// cache at once; a change made on another replica (or by the CLI) takes effect within this time.
const PARTNER_CACHE_TTL: Duration = Duration::from_secs(10);

/// A partner and the parties behind it, as of when it was cached.
#[derive(Debug, Clone)]
pub struct CachedPartner {
    pub partner: Partner,
    pub parties: Vec<PartnerParty>,
    pub token: String,
}

/// Partners by the SHA-256 of their token.
#[derive(Default)]
pub struct PartnerCache {
    entries: Mutex<HashMap<String, (Instant, Arc<CachedPartner>)>>,
}

impl PartnerCache {
    fn get(&self, token_hash: &str) -> Option<Arc<CachedPartner>> {
        let entries = self.entries.lock().ok()?;
        let (at, cached) = entries.get(token_hash)?;
        (at.elapsed() < PARTNER_CACHE_TTL).then(|| cached.clone())
    }

    fn put(&self, token_hash: String, cached: Arc<CachedPartner>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                entries.clear();
            }
            entries.insert(token_hash, (Instant::now(), cached));
        }
    }

    /// Forgets everything: call after any change of partners, tokens or parties.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// An authenticated partner request.
#[derive(Debug, Clone)]
pub struct OcpiRequest {
    pub partner: Partner,
    /// The parties behind the partner (credentials roles, hub clients).
    pub parties: Vec<PartnerParty>,
    /// The token as the partner holds it (decoded).
    pub token: String,
    pub request_id: String,
    pub correlation_id: String,
    /// `OCPI-from-*`: the party that sent the request (behind a hub, the original sender).
    pub from: Option<PartyId>,
    /// `OCPI-to-*`: the party the request is meant for.
    pub to: Option<PartyId>,
}

impl OcpiRequest {
    /// Modules other than versions and credentials need a completed registration: token A opens
    /// only the handshake.
    pub fn require_registered(&self) -> Result<(), OcpiError> {
        if self.partner.status == PartnerStatus::Registered {
            return Ok(());
        }
        Err(OcpiError::unauthorized("this token may only be used for versions and credentials"))
    }

    /// A 1000 answer carrying `data`, with the correlation id echoed.
    pub fn ok<T: Serialize>(&self, data: T) -> HttpResponse {
        self.respond(Envelope::success(data, Utc::now()))
    }

    /// A 1000 answer without data.
    pub fn ok_empty(&self) -> HttpResponse {
        let envelope: Envelope<()> = Envelope {
            data: None,
            status_code: emsp_ocpi::StatusCode::SUCCESS,
            status_message: None,
            timestamp: Utc::now(),
        };
        self.respond(envelope)
    }

    fn respond<T: Serialize>(&self, envelope: Envelope<T>) -> HttpResponse {
        let mut response = HttpResponse::Ok().json(envelope);
        if let Ok(value) = HeaderValue::from_str(&self.correlation_id) {
            response.headers_mut().insert(HeaderName::from_static("x-correlation-id"), value);
        }
        response
    }
}

/// The token candidates of an `Authorization: Token ...` header: as sent, and Base64-decoded.
fn token_candidates(header: &str) -> Result<Vec<String>, OcpiError> {
    let mut parts = header.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let value = parts.next().map(str::trim).unwrap_or_default();
    if !scheme.eq_ignore_ascii_case("token") || value.is_empty() {
        return Err(OcpiError::unauthorized("expected an Authorization header of the form 'Token <token>'"));
    }
    let mut candidates = Vec::with_capacity(2);
    if let Ok(bytes) = STANDARD.decode(value)
        && let Ok(decoded) = String::from_utf8(bytes)
        && !decoded.is_empty()
        && decoded.chars().all(|c| c.is_ascii_graphic())
    {
        candidates.push(decoded);
    }
    candidates.push(value.to_owned());
    Ok(candidates)
}

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

fn party_header(req: &HttpRequest, direction: &str) -> Option<PartyId> {
    let country = header(req, &format!("ocpi-{direction}-country-code"))?;
    let party = header(req, &format!("ocpi-{direction}-party-id"))?;
    PartyId::parse(&format!("{country}{party}")).ok()
}

impl FromRequest for OcpiRequest {
    type Error = OcpiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let roaming = req
                .app_data::<web::Data<Roaming>>()
                .cloned()
                .ok_or_else(|| OcpiError::internal(&"roaming state is not configured"))?;
            let authorization =
                header(&req, "authorization").ok_or_else(|| OcpiError::unauthorized("missing Authorization header"))?;
            let candidates = token_candidates(&authorization)?;
            let cached = candidates.iter().find_map(|token| roaming.partners.get(&hash_token(token)));
            let found = match cached {
                Some(cached) => Some(cached),
                None => {
                    let store = roaming.store.clone();
                    let found = web::block(move || -> Result<Option<CachedPartner>, emsp_store::StoreError> {
                        for token in candidates {
                            if let Some(partner) = store.find_partner_by_token(&token)? {
                                let parties = store.partner_parties(&partner.id)?;
                                return Ok(Some(CachedPartner { partner, parties, token }));
                            }
                        }
                        Ok(None)
                    })
                    .await
                    .map_err(|e| OcpiError::internal(&e))??;
                    found.map(|found| {
                        let found = Arc::new(found);
                        roaming.partners.put(hash_token(&found.token), found.clone());
                        found
                    })
                }
            };
            let Some(found) = found else {
                return Err(OcpiError::unauthorized("unknown token"));
            };
            let (partner, parties, token) = (found.partner.clone(), found.parties.clone(), found.token.clone());
            let request_id = header(&req, "x-request-id").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let correlation_id = header(&req, "x-correlation-id").unwrap_or_else(|| request_id.clone());
            Ok(OcpiRequest {
                partner,
                parties,
                token,
                request_id,
                correlation_id,
                from: party_header(&req, "from"),
                to: party_header(&req, "to"),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_base64_and_plain_tokens() {
        assert_eq!(token_candidates("Token YWJj").unwrap(), vec!["abc".to_owned(), "YWJj".to_owned()]);
        assert_eq!(token_candidates("token plain-token-1").unwrap(), vec!["plain-token-1".to_owned()]);
        assert!(token_candidates("Bearer abc").is_err());
        assert!(token_candidates("Token ").is_err());
    }
}
