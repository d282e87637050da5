//! HubClientInfo (OCPI 2.2.1, Receiver): a hub tells us which parties it connects and whether they
//! are reachable. `emsp partner list` shows them; writes of a party are allowed through the hub.

use actix_web::{HttpResponse, web};
use emsp_domain::PartyId;
use emsp_store::PartnerParty;
use serde::{Deserialize, Serialize};

use crate::error::OcpiError;
use crate::transport::{OcpiRequest, Roaming};

/// OCPI `ClientInfo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientInfo {
    pub party_id: String,
    pub country_code: String,
    pub role: String,
    /// `CONNECTED`, `OFFLINE`, `PLANNED` or `SUSPENDED`.
    pub status: String,
    pub last_updated: String,
}

const STATUSES: [&str; 4] = ["CONNECTED", "OFFLINE", "PLANNED", "SUSPENDED"];

/// `GET /ocpi/2.2.1/hubclientinfo/{cc}/{pid}`.
pub async fn get(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, OcpiError> {
    req.require_registered()?;
    let (cc, pid) = path.into_inner();
    let store = roaming.store.clone();
    let partner_id = req.partner.id.clone();
    let parties =
        web::block(move || store.partner_parties(&partner_id)).await.map_err(|e| OcpiError::internal(&e))??;
    let party = parties
        .into_iter()
        .find(|p| p.country_code.eq_ignore_ascii_case(&cc) && p.party_id.eq_ignore_ascii_case(&pid))
        .ok_or_else(|| {
            OcpiError::new(actix_web::http::StatusCode::NOT_FOUND, emsp_ocpi::StatusCode::CLIENT_ERROR, "unknown party")
        })?;
    Ok(req.ok(ClientInfo {
        party_id: party.party_id,
        country_code: party.country_code,
        role: party.role,
        status: party.status,
        last_updated: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }))
}

/// `PUT /ocpi/2.2.1/hubclientinfo/{cc}/{pid}`: only a partner with the HUB role may push these.
pub async fn put(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<(String, String)>,
    body: web::Json<ClientInfo>,
) -> Result<HttpResponse, OcpiError> {
    req.require_registered()?;
    let (cc, pid) = path.into_inner();
    let info = body.into_inner();
    let party = PartyId::parse(&format!("{}{}", info.country_code, info.party_id))
        .map_err(|e| OcpiError::invalid(format!("ClientInfo: {e}")))?;
    if !party.country_code.as_str().eq_ignore_ascii_case(&cc) || !party.party_id.as_str().eq_ignore_ascii_case(&pid) {
        return Err(OcpiError::invalid("the ClientInfo names another party than the URL"));
    }
    let status = info.status.to_ascii_uppercase();
    if !STATUSES.contains(&status.as_str()) {
        return Err(OcpiError::invalid(format!("status {} is not one of {STATUSES:?}", info.status)));
    }
    let store = roaming.store.clone();
    let partner_id = req.partner.id.clone();
    let role = info.role.to_ascii_uppercase();
    web::block(move || {
        let parties = store.partner_parties(&partner_id)?;
        if !parties.iter().any(|p| p.role.eq_ignore_ascii_case("HUB")) {
            return Ok(Err(OcpiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                emsp_ocpi::StatusCode::CLIENT_ERROR,
                "only a hub may push client information",
            )));
        }
        let party = PartnerParty {
            country_code: party.country_code.to_string(),
            party_id: party.party_id.to_string(),
            role,
            name: None,
            status,
        };
        store.upsert_partner_party(&partner_id, &party).map(Ok)
    })
    .await
    .map_err(|e| OcpiError::internal(&e))???;
    roaming.partners.clear();
    Ok(req.ok_empty())
}
