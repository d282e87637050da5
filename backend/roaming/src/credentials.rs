//! The credentials module and registration, in both directions.
//!
//! A partner registers with us: ops run `emsp partner invite`, which stores a partner with token A
//! (hashed) and prints our versions URL. The partner POSTs its credentials (its token B and its
//! versions URL) with token A; we fetch its versions with B, choose the highest common version,
//! store its endpoints, and answer with our credentials carrying a new token C. From then on C is
//! the only token the partner can use with us; token A is gone.
//!
//! We register with a partner: ops run `emsp partner register --versions-url URL --token A`. We
//! store a partner whose token for us is a new token B, fetch its versions with A, POST our
//! credentials (B and our versions URL) and keep the token C it answers with.

use actix_web::http::StatusCode as HttpStatus;
use actix_web::{HttpResponse, web};
use emsp_domain::PartyId;
use emsp_ocpi::{OcpiVersion, StatusCode};
use emsp_store::{Endpoint, NewPartner, Partner, PartnerParty, PartnerStatus, Registration, generate_token};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Target, TokenEncoding};
use crate::error::{OcpiError, RoamingError};
use crate::transport::{OcpiRequest, Roaming};
use crate::versions::SUPPORTED;

/// `BusinessDetails` as in credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessDetails {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<serde_json::Value>,
}

/// A role in OCPI 2.2.1 credentials (`CredentialsRole`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialsRole {
    pub role: String,
    pub business_details: BusinessDetails,
    pub party_id: String,
    pub country_code: String,
}

/// OCPI 2.2.1 `Credentials`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    pub token: String,
    pub url: String,
    pub roles: Vec<CredentialsRole>,
}

/// OCPI 2.1.1 `Credentials`: one party, no roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credentials211 {
    pub token: String,
    pub url: String,
    pub business_details: BusinessDetails,
    pub party_id: String,
    pub country_code: String,
}

impl Credentials211 {
    fn into_roles(self, role: &str) -> Credentials {
        Credentials {
            token: self.token,
            url: self.url,
            roles: vec![CredentialsRole {
                role: role.to_owned(),
                business_details: self.business_details,
                party_id: self.party_id,
                country_code: self.country_code,
            }],
        }
    }
}

#[derive(Debug, Deserialize)]
struct VersionEntry {
    version: String,
    url: String,
}

#[derive(Debug, Deserialize)]
struct VersionDetails {
    #[serde(default)]
    endpoints: Vec<Endpoint>,
}

/// What a completed registration learnt.
#[derive(Debug, Clone)]
pub struct RegisterOutcome {
    pub partner_id: String,
    pub version: String,
    pub endpoints: Vec<Endpoint>,
    pub parties: Vec<PartnerParty>,
}

/// Our credentials in the shape of `version`, with `token`.
fn our_credentials(roaming: &Roaming, token: &str, version: &str) -> serde_json::Value {
    let config = &roaming.config;
    let business_details =
        BusinessDetails { name: config.business_name.clone(), website: config.website.clone(), logo: None };
    if version == "2.1.1" {
        let credentials = Credentials211 {
            token: token.to_owned(),
            url: config.versions_url(),
            business_details,
            party_id: config.party.party_id.to_string(),
            country_code: config.party.country_code.to_string(),
        };
        return serde_json::to_value(credentials).unwrap_or_default();
    }
    let credentials = Credentials {
        token: token.to_owned(),
        url: config.versions_url(),
        roles: vec![CredentialsRole {
            role: "EMSP".into(),
            business_details,
            party_id: config.party.party_id.to_string(),
            country_code: config.party.country_code.to_string(),
        }],
    };
    serde_json::to_value(credentials).unwrap_or_default()
}

/// Reads credentials in the shape of `version`; 2.1.1 credentials come from a CPO.
fn parse_credentials(body: serde_json::Value, version: &str) -> Result<Credentials, String> {
    let credentials = if version == "2.1.1" {
        serde_json::from_value::<Credentials211>(body).map(|c| c.into_roles("CPO")).map_err(|e| e.to_string())?
    } else {
        serde_json::from_value::<Credentials>(body).map_err(|e| e.to_string())?
    };
    if credentials.token.trim().is_empty() || credentials.token.len() > 64 {
        return Err("token must be 1 to 64 characters".into());
    }
    if !(credentials.url.starts_with("http://") || credentials.url.starts_with("https://")) {
        return Err(format!("url {:?} is not an http(s) URL", credentials.url));
    }
    for role in &credentials.roles {
        PartyId::parse(&format!("{}{}", role.country_code, role.party_id)).map_err(|e| e.to_string())?;
    }
    Ok(credentials)
}

fn parties(credentials: &Credentials) -> Vec<PartnerParty> {
    credentials
        .roles
        .iter()
        .map(|role| PartnerParty {
            country_code: role.country_code.to_ascii_uppercase(),
            party_id: role.party_id.to_ascii_uppercase(),
            role: role.role.clone(),
            name: Some(role.business_details.name.clone()),
            status: "CONNECTED".into(),
        })
        .collect()
}

/// Fetches a partner's versions and the details of the highest version we share.
async fn negotiate(
    roaming: &Roaming,
    versions_url: &str,
    token: &str,
    encoding: TokenEncoding,
) -> Result<(String, Vec<Endpoint>), RoamingError> {
    let target = Target { token, encoding, to: None };
    let offered: Vec<VersionEntry> = roaming.client.get(versions_url, &target).await?.data;
    let chosen = SUPPORTED
        .iter()
        .find_map(|ours| {
            offered.iter().find(|theirs| OcpiVersion::parse(&theirs.version).is_ok_and(|v| v.as_str() == *ours))
        })
        .ok_or_else(|| RoamingError::NoCommonVersion {
            offered: offered.iter().map(|v| v.version.clone()).collect(),
        })?;
    let version = OcpiVersion::parse(&chosen.version)
        .map_err(|e| RoamingError::Malformed { url: versions_url.to_owned(), reason: e.to_string() })?;
    let target = Target { token, encoding: TokenEncoding::choose(None, Some(version)), to: None };
    let details: VersionDetails = roaming.client.get(&chosen.url, &target).await?.data;
    if !details.endpoints.iter().any(|e| e.identifier == "credentials") {
        return Err(RoamingError::MissingEndpoints("credentials".into()));
    }
    Ok((version.as_str().to_owned(), details.endpoints))
}

fn handshake_error(error: RoamingError) -> OcpiError {
    tracing::warn!(%error, "credentials handshake failed");
    let code = match &error {
        RoamingError::NoCommonVersion { .. } => StatusCode::UNSUPPORTED_VERSION,
        RoamingError::MissingEndpoints(_) => StatusCode::NO_MATCHING_ENDPOINTS,
        RoamingError::Store(_) => return OcpiError::internal(&error),
        _ => StatusCode::UNABLE_TO_USE_CLIENT_API,
    };
    OcpiError::server(code, error.to_string())
}

/// Completes a registration the partner started (POST) or renews (PUT); returns token C.
async fn accept(
    roaming: &Roaming,
    partner: &Partner,
    credentials: Credentials,
    route_version: &str,
) -> Result<String, OcpiError> {
    let encoding = TokenEncoding::choose(partner.token_encoding.as_deref(), OcpiVersion::parse(route_version).ok());
    let (version, endpoints) =
        negotiate(roaming, &credentials.url, &credentials.token, encoding).await.map_err(handshake_error)?;
    let token_c = generate_token();
    let store = roaming.store.clone();
    let partner_id = partner.id.clone();
    let parties = parties(&credentials);
    let stored_token = token_c.clone();
    web::block(move || -> Result<(), emsp_store::StoreError> {
        store.register_partner(
            &partner_id,
            &Registration {
                versions_url: &credentials.url,
                version: &version,
                endpoints: &endpoints,
                incoming_token: &stored_token,
                outgoing_token: &credentials.token,
            },
        )?;
        store.set_partner_parties(&partner_id, &parties)
    })
    .await
    .map_err(|e| OcpiError::internal(&e))??;
    roaming.partners.clear();
    tracing::info!(partner = %partner.id, "partner registered with us");
    Ok(token_c)
}

fn body_credentials(body: serde_json::Value, version: &str) -> Result<Credentials, OcpiError> {
    parse_credentials(body, version).map_err(|reason| OcpiError::invalid(format!("credentials: {reason}")))
}

fn route_version(version: &str) -> Result<&'static str, OcpiError> {
    SUPPORTED.iter().copied().find(|v| *v == version).ok_or_else(|| {
        OcpiError::new(
            HttpStatus::NOT_FOUND,
            StatusCode::UNSUPPORTED_VERSION,
            format!("version {version} is not supported"),
        )
    })
}

/// `GET /ocpi/{version}/credentials`: our credentials, with the token the partner used.
pub async fn get(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    version: web::Path<String>,
) -> Result<HttpResponse, OcpiError> {
    let version = route_version(&version)?;
    Ok(req.ok(our_credentials(&roaming, &req.token, version)))
}

/// `POST /ocpi/{version}/credentials`: the partner registers with token A.
pub async fn post(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    version: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, OcpiError> {
    let version = route_version(&version)?;
    if req.partner.status == PartnerStatus::Registered {
        return Err(OcpiError::method_not_allowed("already registered: use PUT to update or DELETE to unregister"));
    }
    let credentials = body_credentials(body.into_inner(), version)?;
    let token_c = accept(&roaming, &req.partner, credentials, version).await?;
    Ok(req.ok(our_credentials(&roaming, &token_c, version)))
}

/// `PUT /ocpi/{version}/credentials`: a registered partner updates its credentials or version; we
/// answer with a new token C.
pub async fn put(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    version: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, OcpiError> {
    let version = route_version(&version)?;
    if req.partner.status != PartnerStatus::Registered {
        return Err(OcpiError::method_not_allowed("not registered: POST credentials first"));
    }
    let credentials = body_credentials(body.into_inner(), version)?;
    let token_c = accept(&roaming, &req.partner, credentials, version).await?;
    Ok(req.ok(our_credentials(&roaming, &token_c, version)))
}

/// `DELETE /ocpi/{version}/credentials`: the partner unregisters; its tokens stop working.
pub async fn delete(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    version: web::Path<String>,
) -> Result<HttpResponse, OcpiError> {
    route_version(&version)?;
    if req.partner.status != PartnerStatus::Registered {
        return Err(OcpiError::method_not_allowed("not registered"));
    }
    let store = roaming.store.clone();
    let partner_id = req.partner.id.clone();
    web::block(move || store.unregister_partner(&partner_id)).await.map_err(|e| OcpiError::internal(&e))??;
    roaming.partners.clear();
    tracing::info!(partner = %req.partner.id, "partner unregistered");
    Ok(req.ok_empty())
}

/// Creates a partner that may register with us; returns it and its token A.
pub fn invite_partner(store: &emsp_store::Store, name: &str) -> Result<(Partner, String), emsp_store::StoreError> {
    let token_a = generate_token();
    let partner = store.create_partner(&NewPartner {
        name,
        status: PartnerStatus::Invited,
        versions_url: None,
        incoming_token: Some(&token_a),
        outgoing_token: None,
    })?;
    Ok((partner, token_a))
}

/// Registers us with a partner whose versions URL and token A ops were given. Our server must be
/// running (the partner calls our versions endpoint back with the token B we send it).
pub async fn register_with_partner(
    roaming: &Roaming,
    name: &str,
    versions_url: &str,
    token_a: &str,
) -> Result<RegisterOutcome, RoamingError> {
    let token_b = generate_token();
    let store = roaming.store.clone();
    let partner = {
        let (name, url, token_a, token_b) =
            (name.to_owned(), versions_url.to_owned(), token_a.to_owned(), token_b.clone());
        tokio::task::spawn_blocking(move || {
            store.create_partner(&NewPartner {
                name: &name,
                status: PartnerStatus::Invited,
                versions_url: Some(&url),
                incoming_token: Some(&token_b),
                outgoing_token: Some(&token_a),
            })
        })
        .await
        .map_err(|e| RoamingError::Unreachable { url: versions_url.to_owned(), reason: e.to_string() })??
    };
    let result = handshake_out(roaming, &partner, versions_url, token_a, &token_b).await;
    if let Err(error) = &result {
        let store = roaming.store.clone();
        let (id, message) = (partner.id.clone(), error.to_string());
        let _ = tokio::task::spawn_blocking(move || store.record_partner_error(&id, &message)).await;
    }
    result
}

async fn handshake_out(
    roaming: &Roaming,
    partner: &Partner,
    versions_url: &str,
    token_a: &str,
    token_b: &str,
) -> Result<RegisterOutcome, RoamingError> {
    // The version is not known yet: try the 2.2 form first, then the 2.1.1 form.
    let (version, endpoints) = match negotiate(roaming, versions_url, token_a, TokenEncoding::Base64).await {
        Err(RoamingError::Http { status: 401, .. }) => {
            negotiate(roaming, versions_url, token_a, TokenEncoding::Plain).await?
        }
        other => other?,
    };
    let credentials_url = endpoints
        .iter()
        .find(|e| e.identifier == "credentials")
        .map(|e| e.url.clone())
        .ok_or_else(|| RoamingError::MissingEndpoints("credentials".into()))?;
    let encoding = TokenEncoding::choose(None, OcpiVersion::parse(&version).ok());
    let target = Target { token: token_a, encoding, to: None };
    let ours = our_credentials(roaming, token_b, &version);
    let answer: Option<serde_json::Value> = roaming.client.send(Method::POST, &credentials_url, &target, &ours).await?;
    let answer = answer.ok_or_else(|| RoamingError::Malformed {
        url: credentials_url.clone(),
        reason: "the credentials answer has no data".into(),
    })?;
    let theirs = parse_credentials(answer, &version)
        .map_err(|reason| RoamingError::Malformed { url: credentials_url.clone(), reason })?;
    let parties = parties(&theirs);
    let store = roaming.store.clone();
    let (id, versions_url_owned, version_owned, endpoints_owned, token_b_owned, parties_owned) = (
        partner.id.clone(),
        versions_url.to_owned(),
        version.clone(),
        endpoints.clone(),
        token_b.to_owned(),
        parties.clone(),
    );
    tokio::task::spawn_blocking(move || -> Result<(), emsp_store::StoreError> {
        store.register_partner(
            &id,
            &Registration {
                versions_url: &versions_url_owned,
                version: &version_owned,
                endpoints: &endpoints_owned,
                incoming_token: &token_b_owned,
                outgoing_token: &theirs.token,
            },
        )?;
        store.set_partner_parties(&id, &parties_owned)
    })
    .await
    .map_err(|e| RoamingError::Unreachable { url: versions_url.to_owned(), reason: e.to_string() })??;
    roaming.partners.clear();
    tracing::info!(partner = %partner.id, version, "registered with partner");
    Ok(RegisterOutcome { partner_id: partner.id.clone(), version, endpoints, parties })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_credential_shapes() {
        let v221 = serde_json::json!({
            "token": "ebf3b399-779f-4497-9b9d-ac6ad3cc44d2",
            "url": "https://example.com/ocpi/versions/",
            "roles": [{"role": "CPO", "party_id": "EXA", "country_code": "NL", "business_details": {"name": "Example Operator"}}]
        });
        let parsed = parse_credentials(v221, "2.2.1").unwrap();
        assert_eq!(parties(&parsed)[0].party_id, "EXA");
        let v211 = serde_json::json!({
            "token": "t", "url": "https://example.com/ocpi/cpo/versions",
            "business_details": {"name": "Example"}, "party_id": "EXA", "country_code": "NL"
        });
        assert_eq!(parse_credentials(v211, "2.1.1").unwrap().roles[0].role, "CPO");
    }

    #[test]
    fn rejects_bad_credentials() {
        let no_url = serde_json::json!({"token": "t", "url": "ftp://x", "roles": []});
        assert!(parse_credentials(no_url, "2.2.1").unwrap_err().contains("http"));
        let long_token = serde_json::json!({"token": "x".repeat(65), "url": "https://x", "roles": []});
        assert!(parse_credentials(long_token, "2.2.1").is_err());
        let bad_party = serde_json::json!({"token": "t", "url": "https://x", "roles": [
            {"role": "CPO", "party_id": "TOOLONG", "country_code": "NL", "business_details": {"name": "x"}}]});
        assert!(parse_credentials(bad_party, "2.2.1").is_err());
    }
}
