//! Versions, version details and the credentials handshake, both ways.
//!
//! The EMSP registers with us: it POSTs its credentials with our token A; we call its versions URL
//! back with its token B, pick our version, read its endpoints, then answer with token C. Token A
//! is dead from then on (it comes back only after `DELETE`, so a test can register again).
//! We register with the EMSP (`register_with`): the same dance in the other direction, using the
//! token A the EMSP gave us; while our POST is in flight, the token we offered already opens our
//! versions and credentials endpoints, because the EMSP calls them before it answers.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{Call, send};
use crate::envelope::Envelope;
use crate::error::{ClientError, SimError};
use crate::options::SimVersion;
use crate::state::{Endpoint, Peer, SimState};
use crate::transport::{Caller, authorize};

#[derive(Debug, Serialize, Deserialize)]
struct Version {
    version: String,
    url: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct VersionDetails {
    version: String,
    endpoints: Vec<EndpointJson>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EndpointJson {
    identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    url: String,
}

#[derive(Debug, Serialize)]
struct BusinessDetails {
    name: String,
}

#[derive(Debug, Serialize)]
struct CredentialsRole {
    role: &'static str,
    party_id: String,
    country_code: String,
    business_details: BusinessDetails,
}

/// 2.2.1 credentials.
#[derive(Debug, Serialize)]
struct Credentials {
    token: String,
    url: String,
    roles: Vec<CredentialsRole>,
}

/// 2.1.1 credentials: one party, no roles.
#[derive(Debug, Serialize)]
struct Credentials211 {
    token: String,
    url: String,
    business_details: BusinessDetails,
    party_id: String,
    country_code: String,
}

/// What we need from the other side's credentials, read leniently from either version's shape.
struct TheirCredentials {
    token: String,
    url: String,
    party: Option<(String, String)>,
}

impl TheirCredentials {
    fn parse(value: &Value) -> Option<Self> {
        let token = value.get("token")?.as_str()?.to_owned();
        let url = value.get("url")?.as_str()?.to_owned();
        let party_of =
            |v: &Value| Some((v.get("country_code")?.as_str()?.to_owned(), v.get("party_id")?.as_str()?.to_owned()));
        let party = match value.get("roles").and_then(Value::as_array) {
            Some(roles) => roles
                .iter()
                .find(|r| r.get("role").and_then(Value::as_str) == Some("EMSP"))
                .or_else(|| roles.first())
                .and_then(party_of),
            None => party_of(value),
        };
        Some(TheirCredentials { token, url, party })
    }
}

fn our_credentials(state: &SimState, token: String) -> Value {
    let name = format!("{} {} CPO simulator", state.party.0, state.party.1);
    let result = match state.version {
        SimVersion::V2_2_1 => serde_json::to_value(Credentials {
            token,
            url: state.versions_url(),
            roles: vec![CredentialsRole {
                role: "CPO",
                party_id: state.party.1.clone(),
                country_code: state.party.0.clone(),
                business_details: BusinessDetails { name },
            }],
        }),
        SimVersion::V2_1_1 => serde_json::to_value(Credentials211 {
            token,
            url: state.versions_url(),
            business_details: BusinessDetails { name },
            party_id: state.party.1.clone(),
            country_code: state.party.0.clone(),
        }),
    };
    result.unwrap_or(Value::Null)
}

pub async fn versions(state: web::Data<SimState>, req: HttpRequest) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, true)?;
    let versions = vec![Version { version: state.version.as_str().to_owned(), url: state.version_url() }];
    Ok(HttpResponse::Ok().json(Envelope::ok(versions)))
}

pub async fn version_details(state: web::Data<SimState>, req: HttpRequest) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, true)?;
    let base = state.version_url();
    let modules: &[(&str, Option<&str>)] = match state.version {
        SimVersion::V2_2_1 => &[
            ("credentials", Some("SENDER")),
            ("credentials", Some("RECEIVER")),
            ("locations", Some("SENDER")),
            ("tariffs", Some("SENDER")),
            ("tokens", Some("RECEIVER")),
            ("commands", Some("RECEIVER")),
            ("sessions", Some("SENDER")),
            ("cdrs", Some("SENDER")),
        ],
        SimVersion::V2_1_1 => &[
            ("credentials", None),
            ("locations", None),
            ("tariffs", None),
            ("tokens", None),
            ("commands", None),
            ("sessions", None),
            ("cdrs", None),
        ],
    };
    let endpoints = modules
        .iter()
        .map(|(identifier, role)| EndpointJson {
            identifier: (*identifier).to_owned(),
            role: role.map(str::to_owned),
            url: format!("{base}/{identifier}"),
        })
        .collect();
    Ok(HttpResponse::Ok().json(Envelope::ok(VersionDetails { version: state.version.as_str().to_owned(), endpoints })))
}

pub async fn get_credentials(state: web::Data<SimState>, req: HttpRequest) -> Result<HttpResponse, SimError> {
    let caller = authorize(&state, &req, true)?;
    let token = {
        let inner = state.inner.lock();
        match (caller, &inner.peer) {
            (Caller::Peer, Some(peer)) => peer.token_ours.clone(),
            _ => inner.token_a.clone().unwrap_or_default(),
        }
    };
    Ok(HttpResponse::Ok().json(Envelope::ok(our_credentials(&state, token))))
}

pub async fn post_credentials(
    state: web::Data<SimState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, SimError> {
    let caller = authorize(&state, &req, true)?;
    if caller == Caller::Peer {
        return Err(SimError::MethodNotAllowed("already registered: use PUT to update the credentials"));
    }
    let theirs = parse_body(&body)?;
    let peer = run_handshake(state.clone().into_inner(), theirs).await?;
    let token_c = new_token();
    {
        let mut inner = state.inner.lock();
        if inner.peer.is_some() {
            return Err(SimError::MethodNotAllowed("already registered: use PUT to update the credentials"));
        }
        inner.token_a = None;
        inner.peer = Some(Peer { token_ours: token_c.clone(), ..peer });
    }
    tracing::info!(versions_url = %state.versions_url(), "emsp registered; token a retired");
    Ok(HttpResponse::Ok().json(Envelope::ok(our_credentials(&state, token_c))))
}

pub async fn put_credentials(
    state: web::Data<SimState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, SimError> {
    if authorize(&state, &req, true)? != Caller::Peer {
        return Err(SimError::MethodNotAllowed("not registered: use POST to register"));
    }
    let theirs = parse_body(&body)?;
    let peer = run_handshake(state.clone().into_inner(), theirs).await?;
    let token_c = new_token();
    state.inner.lock().peer = Some(Peer { token_ours: token_c.clone(), ..peer });
    tracing::info!("emsp updated its credentials; new token c issued");
    Ok(HttpResponse::Ok().json(Envelope::ok(our_credentials(&state, token_c))))
}

pub async fn delete_credentials(state: web::Data<SimState>, req: HttpRequest) -> Result<HttpResponse, SimError> {
    if authorize(&state, &req, true)? != Caller::Peer {
        return Err(SimError::MethodNotAllowed("not registered"));
    }
    {
        let mut inner = state.inner.lock();
        inner.peer = None;
        inner.token_a = Some(inner.original_token_a.clone());
    }
    tracing::info!("emsp unregistered; token a valid again");
    Ok(HttpResponse::Ok().json(Envelope::<()>::ok_empty()))
}

fn parse_body(body: &[u8]) -> Result<TheirCredentials, SimError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| SimError::InvalidParameters("body is not a credentials object".to_owned()))?;
    TheirCredentials::parse(&value)
        .ok_or_else(|| SimError::InvalidParameters("credentials need `token` and `url`".to_owned()))
}

pub fn new_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs the handshake on the simulator's runtime (where its HTTP client lives).
async fn run_handshake(state: Arc<SimState>, theirs: TheirCredentials) -> Result<Peer, SimError> {
    let task_state = state.clone();
    match state.rt.spawn(async move { handshake(&task_state, theirs).await }).await {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(%error, "credentials handshake task failed");
            Err(SimError::Internal)
        }
    }
}

/// Reads the EMSP's versions and endpoints with its token; the returned peer still needs our token.
async fn handshake(state: &SimState, theirs: TheirCredentials) -> Result<Peer, SimError> {
    let to = theirs.party.as_ref().map(|(c, p)| (c.as_str(), p.as_str()));
    let endpoints = match discover(state, &theirs.url, &theirs.token, to).await {
        Ok(endpoints) => endpoints,
        Err(ClientError::NoCommonVersion(_)) => return Err(SimError::UnsupportedVersion),
        Err(error) => {
            tracing::warn!(%error, "cannot read the emsp's versions during registration");
            return Err(SimError::ClientApi);
        }
    };
    if !endpoints.iter().any(|e| !e.identifier.eq_ignore_ascii_case("credentials")) {
        tracing::warn!(url = %theirs.url, "emsp offers no module besides credentials");
        return Err(SimError::NoMatchingEndpoints);
    }
    let (country_code, party_id) = theirs.party.unzip();
    Ok(Peer {
        token_ours: String::new(),
        token_theirs: theirs.token,
        versions_url: theirs.url,
        country_code,
        party_id,
        endpoints,
    })
}

/// GET versions, pick ours, GET its details.
async fn discover(
    state: &SimState,
    versions_url: &str,
    token: &str,
    to: Option<(&str, &str)>,
) -> Result<Vec<Endpoint>, ClientError> {
    let call = Call { method: Method::GET, url: versions_url, token, body: None, to };
    let data = send(state, call).await?.unwrap_or(Value::Null);
    let versions: Vec<Version> = serde_json::from_value(data)
        .map_err(|error| ClientError::Body { url: versions_url.to_owned(), reason: error.to_string() })?;
    let ours = state.version.as_str();
    let Some(version) = versions.into_iter().find(|v| v.version == ours) else {
        return Err(ClientError::NoCommonVersion(ours));
    };
    let call = Call { method: Method::GET, url: &version.url, token, body: None, to };
    let data = send(state, call).await?.unwrap_or(Value::Null);
    let details: VersionDetails = serde_json::from_value(data)
        .map_err(|error| ClientError::Body { url: version.url.clone(), reason: error.to_string() })?;
    Ok(details.endpoints.into_iter().map(|e| Endpoint { identifier: e.identifier, role: e.role, url: e.url }).collect())
}

/// The CPO registers with an EMSP, using the token A the EMSP handed out.
pub async fn register_with(state: &SimState, versions_url: &str, token_a: &str) -> Result<(), ClientError> {
    let endpoints = discover(state, versions_url, token_a, None).await?;
    let Some(credentials_url) = endpoints
        .iter()
        .find(|e| {
            e.identifier.eq_ignore_ascii_case("credentials")
                && e.role.as_deref().is_none_or(|r| r.eq_ignore_ascii_case("RECEIVER"))
        })
        .or_else(|| endpoints.iter().find(|e| e.identifier.eq_ignore_ascii_case("credentials")))
        .map(|e| e.url.clone())
    else {
        return Err(ClientError::NoEndpoint("credentials"));
    };
    let token_ours = new_token();
    state.inner.lock().pending_token = Some(token_ours.clone());
    let body = our_credentials(state, token_ours.clone());
    let call = Call { method: Method::POST, url: &credentials_url, token: token_a, body: Some(&body), to: None };
    let answer = send(state, call).await;
    state.inner.lock().pending_token = None;
    let data = answer?.unwrap_or(Value::Null);
    let Some(theirs) = TheirCredentials::parse(&data) else {
        return Err(ClientError::Body { url: credentials_url, reason: "no credentials in the answer".to_owned() });
    };
    let (country_code, party_id) = theirs.party.unzip();
    let mut inner = state.inner.lock();
    inner.token_a = None;
    inner.peer = Some(Peer {
        token_ours,
        token_theirs: theirs.token,
        versions_url: versions_url.to_owned(),
        country_code,
        party_id,
        endpoints,
    });
    tracing::info!(%versions_url, "registered with the emsp");
    Ok(())
}
