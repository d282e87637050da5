//! Receiver interfaces: CPOs push their locations (with EVSEs and connectors) and tariffs to us.
//!
//! Every write goes through the same path as a pull: the object is turned into wire JSON, parsed by
//! the tolerant OCPI reader into a domain object, validated and upserted (an unchanged object is not
//! written). A PUT or PATCH of an EVSE or connector is applied to the stored location's wire form,
//! so the one reader checks the result. The hot path, an EVSE status PATCH, skips all that and
//! updates the status row directly.
//!
//! Ownership: the `{country_code}/{party_id}` of the URL must be a party behind the sending partner
//! (from its credentials roles or its hub's client list), and the object must name the same party.

use actix_web::http::StatusCode as HttpStatus;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use emsp_domain::{EvseStatus, EvseUid, Location, PartyId, Tariff};
use emsp_ocpi::{ImportOptions, OcpiVersion, StatusCode, v2_1_1, v2_2_1};
use emsp_store::{EvseStatusUpdate, Partner, Store, StoreError};
use serde_json::{Map, Value};

use crate::error::OcpiError;
use crate::transport::{OcpiRequest, Roaming};

/// Path of a location: version, country code, party id, location id.
pub type LocationPath = (String, String, String, String);
/// Path of an EVSE.
pub type EvsePath = (String, String, String, String, String);
/// Path of a connector.
pub type ConnectorPath = (String, String, String, String, String, String);

pub(crate) fn version(value: &str) -> Result<OcpiVersion, OcpiError> {
    match OcpiVersion::parse(value) {
        Ok(version @ (OcpiVersion::V2_1_1 | OcpiVersion::V2_2_1)) => Ok(version),
        _ => Err(OcpiError::new(
            HttpStatus::NOT_FOUND,
            StatusCode::UNSUPPORTED_VERSION,
            format!("version {value} is not supported"),
        )),
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, OcpiError> {
    web::block(work).await.map_err(|e| OcpiError::internal(&e))?.map_err(OcpiError::from)
}

/// Checks that the sending partner may write objects of `country_code`/`party_id`.
pub(crate) fn owner(req: &OcpiRequest, country_code: &str, party_id: &str) -> Result<PartyId, OcpiError> {
    req.require_registered()?;
    let party = PartyId::parse(&format!("{country_code}{party_id}"))
        .map_err(|e| OcpiError::invalid(format!("party in the URL: {e}")))?;
    let parties = &req.parties;
    let is_hub = parties.iter().any(|p| p.role.eq_ignore_ascii_case("HUB"));
    let listed = parties.iter().any(|p| {
        p.country_code.eq_ignore_ascii_case(party.country_code.as_str())
            && p.party_id.eq_ignore_ascii_case(party.party_id.as_str())
    });
    if is_hub || listed {
        return Ok(party);
    }
    Err(OcpiError::new(
        HttpStatus::FORBIDDEN,
        StatusCode::CLIENT_ERROR,
        format!("{party} is not a party of this connection"),
    ))
}

fn unknown_location(key: &str) -> OcpiError {
    OcpiError::new(HttpStatus::NOT_FOUND, StatusCode::UNKNOWN_LOCATION, format!("unknown location {key}"))
}

fn location_key(party: &PartyId, location_id: &str) -> String {
    format!("{}*{}*{}", party.country_code, party.party_id, location_id.to_ascii_uppercase())
}

/// The stored location in the wire form of `version`.
fn wire_location(location: &Location, version: OcpiVersion) -> Result<Value, OcpiError> {
    let value = if version.is_2_1_1() {
        serde_json::to_value(v2_1_1::locations::from_domain(location))
    } else {
        serde_json::to_value(v2_2_1::locations::from_domain(location))
    };
    value.map_err(|e| OcpiError::internal(&e))
}

/// Reads one wire location through the tolerant reader; a rejected object is a 2001 with the reason.
fn read_location(value: &Value, party: &PartyId, version: OcpiVersion) -> Result<Location, OcpiError> {
    let bytes = serde_json::to_vec(value).map_err(|e| OcpiError::internal(&e))?;
    let options = ImportOptions { default_party: Some(party.clone()), version: Some(version) };
    let mut feed = emsp_ocpi::parse_locations(&bytes, &options).map_err(|e| OcpiError::invalid(e.to_string()))?;
    if let Some(skipped) = feed.skipped.first() {
        return Err(OcpiError::invalid(format!("{}: {}", skipped.path.trim_start_matches("[0]"), skipped.reason)));
    }
    for warning in &feed.warnings {
        tracing::warn!(path = %warning.path, message = %warning.message, "tolerated a deviation in a pushed location");
    }
    feed.items.pop().ok_or_else(|| OcpiError::invalid("no location in the body"))
}

fn check_identity(location: &Location, party: &PartyId, location_id: &str) -> Result<(), OcpiError> {
    if &location.party != party {
        return Err(OcpiError::invalid(format!("the object belongs to {}, the URL names {party}", location.party)));
    }
    if !location.id.as_str().eq_ignore_ascii_case(location_id) {
        return Err(OcpiError::invalid(format!(
            "the object's id {} differs from the URL's {location_id}",
            location.id
        )));
    }
    Ok(())
}

async fn store_location(roaming: &Roaming, partner: &Partner, location: Location) -> Result<(), OcpiError> {
    let store = roaming.store.clone();
    let partner_id = partner.id.clone();
    blocking(move || store.upsert_location(&location, Some(&partner_id))).await?;
    Ok(())
}

async fn load(store: &Store, key: String) -> Result<Option<Location>, OcpiError> {
    let store = store.clone();
    blocking(move || store.get_location(&key)).await
}

/// For a location URL: its version, the party (which the sender must own), the key and the
/// stored location (2003 when unknown).
async fn stored(
    roaming: &Roaming,
    req: &OcpiRequest,
    (v, cc, pid, id): (&str, &str, &str, &str),
) -> Result<(OcpiVersion, PartyId, String, Location), OcpiError> {
    let version = version(v)?;
    let party = owner(req, cc, pid)?;
    let key = location_key(&party, id);
    let location = load(&roaming.store, key.clone()).await?.ok_or_else(|| unknown_location(&key))?;
    Ok((version, party, key, location))
}

fn body_object(body: Value) -> Result<Map<String, Value>, OcpiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(OcpiError::invalid("the body must be a JSON object")),
    }
}

/// PATCH bodies must carry `last_updated` (OCPI 2.2.1); it becomes the parents' `last_updated` too.
fn patch_time(patch: &Map<String, Value>) -> Result<DateTime<Utc>, OcpiError> {
    let value = patch
        .get("last_updated")
        .and_then(Value::as_str)
        .ok_or_else(|| OcpiError::invalid("a PATCH must contain last_updated"))?;
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| value.parse::<DateTime<Utc>>())
        .map_err(|_| OcpiError::invalid(format!("last_updated {value:?} is not a timestamp")))
}

fn merge(target: &mut Value, patch: Map<String, Value>) {
    if let Value::Object(object) = target {
        for (key, value) in patch {
            object.insert(key, value);
        }
    }
}

fn set_last_updated(target: &mut Value, at: DateTime<Utc>) {
    if let Value::Object(object) = target {
        object.insert("last_updated".into(), Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
    }
}

fn find_child<'a>(list: &'a mut Value, key: &str, id: &str) -> Option<&'a mut Value> {
    list.as_array_mut()?
        .iter_mut()
        .find(|item| item.get(key).and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(id)))
}

fn children<'a>(parent: &'a mut Value, key: &str) -> Result<&'a mut Vec<Value>, OcpiError> {
    let object = parent.as_object_mut().ok_or_else(|| OcpiError::internal(&"stored object is not a JSON object"))?;
    let list = object.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
    list.as_array_mut().ok_or_else(|| OcpiError::internal(&"stored list is not a JSON array"))
}

/// `GET /ocpi/{version}/locations/{cc}/{pid}/{location_id}`: what we hold.
pub async fn get_location(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<LocationPath>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id) = path.into_inner();
    let (version, _, _, location) = stored(&roaming, &req, (&v, &cc, &pid, &id)).await?;
    Ok(req.ok(wire_location(&location, version)?))
}

/// `GET .../{location_id}/{evse_uid}`.
pub async fn get_evse(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<EvsePath>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id, uid) = path.into_inner();
    let (version, _, key, location) = stored(&roaming, &req, (&v, &cc, &pid, &id)).await?;
    let mut wire = wire_location(&location, version)?;
    let evse = find_child(&mut wire["evses"], "uid", &uid).ok_or_else(|| unknown_location(&format!("{key}/{uid}")))?;
    Ok(req.ok(evse.take()))
}

/// `GET .../{location_id}/{evse_uid}/{connector_id}`.
pub async fn get_connector(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<ConnectorPath>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id, uid, connector_id) = path.into_inner();
    let (version, _, key, location) = stored(&roaming, &req, (&v, &cc, &pid, &id)).await?;
    let mut wire = wire_location(&location, version)?;
    let missing = || unknown_location(&format!("{key}/{uid}/{connector_id}"));
    let evse = find_child(&mut wire["evses"], "uid", &uid).ok_or_else(missing)?;
    let connector = find_child(&mut evse["connectors"], "id", &connector_id).ok_or_else(missing)?;
    Ok(req.ok(connector.take()))
}

/// `PUT .../{location_id}`: a whole location, created or replaced.
pub async fn put_location(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<LocationPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id) = path.into_inner();
    let version = version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let mut body = body.into_inner();
    if version.is_2_1_1() {
        // 2.1.1 objects name no party: the URL does.
        merge(
            &mut body,
            Map::from_iter([("country_code".into(), Value::from(cc)), ("party_id".into(), Value::from(pid))]),
        );
    }
    let location = read_location(&body, &party, version)?;
    check_identity(&location, &party, &id)?;
    store_location(&roaming, &req.partner, location).await?;
    Ok(req.ok_empty())
}

/// `PUT .../{location_id}/{evse_uid}`: one EVSE of a known location, created or replaced.
pub async fn put_evse(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<EvsePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id, uid) = path.into_inner();
    let (version, party, _, stored) = stored(&roaming, &req, (&v, &cc, &pid, &id)).await?;
    let evse = body.into_inner();
    if !evse.get("uid").and_then(Value::as_str).is_some_and(|u| u.eq_ignore_ascii_case(&uid)) {
        return Err(OcpiError::invalid(format!("the EVSE's uid must be {uid}, as in the URL")));
    }
    let at = evse.get("last_updated").and_then(Value::as_str).map(str::to_owned);
    let mut wire = wire_location(&stored, version)?;
    let list = children(&mut wire, "evses")?;
    match list.iter_mut().find(|e| e.get("uid").and_then(Value::as_str).is_some_and(|u| u.eq_ignore_ascii_case(&uid))) {
        Some(existing) => *existing = evse,
        None => list.push(evse),
    }
    if let Some(at) = at {
        wire["last_updated"] = Value::String(at);
    }
    let location = read_location(&wire, &party, version)?;
    store_location(&roaming, &req.partner, location).await?;
    Ok(req.ok_empty())
}

/// `PUT .../{location_id}/{evse_uid}/{connector_id}`: one connector of a known EVSE.
pub async fn put_connector(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<ConnectorPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id, uid, connector_id) = path.into_inner();
    let (version, party, key, stored) = stored(&roaming, &req, (&v, &cc, &pid, &id)).await?;
    let connector = body.into_inner();
    if !connector.get("id").and_then(Value::as_str).is_some_and(|c| c.eq_ignore_ascii_case(&connector_id)) {
        return Err(OcpiError::invalid(format!("the connector's id must be {connector_id}, as in the URL")));
    }
    let at = connector.get("last_updated").and_then(Value::as_str).map(str::to_owned);
    let mut wire = wire_location(&stored, version)?;
    let evse = find_child(&mut wire["evses"], "uid", &uid).ok_or_else(|| unknown_location(&format!("{key}/{uid}")))?;
    let list = children(evse, "connectors")?;
    match list
        .iter_mut()
        .find(|c| c.get("id").and_then(Value::as_str).is_some_and(|i| i.eq_ignore_ascii_case(&connector_id)))
    {
        Some(existing) => *existing = connector,
        None => list.push(connector),
    }
    if let Some(at) = at {
        evse["last_updated"] = Value::String(at.clone());
        wire["last_updated"] = Value::String(at);
    }
    let location = read_location(&wire, &party, version)?;
    store_location(&roaming, &req.partner, location).await?;
    Ok(req.ok_empty())
}

/// `PATCH .../{location_id}`: changed fields of a location.
pub async fn patch_location(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<LocationPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id) = path.into_inner();
    let version = version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let patch = body_object(body.into_inner())?;
    patch_time(&patch)?;
    let key = location_key(&party, &id);
    let stored = load(&roaming.store, key.clone()).await?.ok_or_else(|| unknown_location(&key))?;
    let mut wire = wire_location(&stored, version)?;
    merge(&mut wire, patch);
    let location = read_location(&wire, &party, version)?;
    check_identity(&location, &party, &id)?;
    store_location(&roaming, &req.partner, location).await?;
    Ok(req.ok_empty())
}

/// `PATCH .../{location_id}/{evse_uid}`: changed fields of an EVSE; a status alone takes the fast path.
pub async fn patch_evse(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<EvsePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id, uid) = path.into_inner();
    let version = version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let patch = body_object(body.into_inner())?;
    let at = patch_time(&patch)?;
    let key = location_key(&party, &id);
    let status_only = patch.keys().all(|k| k == "status" || k == "last_updated");
    if let (true, Some(status)) = (status_only, patch.get("status").and_then(Value::as_str)) {
        let status = EvseStatus::parse(status);
        let evse_uid = EvseUid::new(uid.as_str()).map_err(|e| OcpiError::invalid(e.to_string()))?;
        let update = EvseStatusUpdate { location_key: key, evse_uid, status, at };
        return match roaming.status_pushes.set_status(&roaming.store, update).await {
            Ok(_) => Ok(req.ok_empty()),
            Err(StoreError::NotFound(what)) => Err(unknown_location(&what)),
            Err(error) => Err(error.into()),
        };
    }
    let stored = load(&roaming.store, key.clone()).await?.ok_or_else(|| unknown_location(&key))?;
    let mut wire = wire_location(&stored, version)?;
    let evse = find_child(&mut wire["evses"], "uid", &uid).ok_or_else(|| unknown_location(&format!("{key}/{uid}")))?;
    merge(evse, patch);
    set_last_updated(&mut wire, at);
    let location = read_location(&wire, &party, version)?;
    store_location(&roaming, &req.partner, location).await?;
    Ok(req.ok_empty())
}

/// `PATCH .../{location_id}/{evse_uid}/{connector_id}`: changed fields of a connector.
pub async fn patch_connector(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<ConnectorPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id, uid, connector_id) = path.into_inner();
    let version = version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let patch = body_object(body.into_inner())?;
    let at = patch_time(&patch)?;
    let key = location_key(&party, &id);
    let stored = load(&roaming.store, key.clone()).await?.ok_or_else(|| unknown_location(&key))?;
    let mut wire = wire_location(&stored, version)?;
    let missing = || unknown_location(&format!("{key}/{uid}/{connector_id}"));
    let evse = find_child(&mut wire["evses"], "uid", &uid).ok_or_else(missing)?;
    set_last_updated(evse, at);
    let connector = find_child(&mut evse["connectors"], "id", &connector_id).ok_or_else(missing)?;
    merge(connector, patch);
    set_last_updated(&mut wire, at);
    let location = read_location(&wire, &party, version)?;
    store_location(&roaming, &req.partner, location).await?;
    Ok(req.ok_empty())
}

/// Path of a tariff: version, country code, party id, tariff id.
pub type TariffPath = (String, String, String, String);

fn tariff_key(party: &PartyId, tariff_id: &str) -> String {
    format!("{}*{}*{}", party.country_code, party.party_id, tariff_id.to_ascii_uppercase())
}

fn unknown_tariff(key: &str) -> OcpiError {
    OcpiError::new(HttpStatus::NOT_FOUND, StatusCode::CLIENT_ERROR, format!("unknown tariff {key}"))
}

/// `GET /ocpi/{version}/tariffs/{cc}/{pid}/{tariff_id}`.
pub async fn get_tariff(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<TariffPath>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id) = path.into_inner();
    let version = version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let key = tariff_key(&party, &id);
    let store = roaming.store.clone();
    let lookup = key.clone();
    let tariff = blocking(move || store.get_tariff(&lookup)).await?.ok_or_else(|| unknown_tariff(&key))?;
    let wire = if version.is_2_1_1() {
        serde_json::to_value(v2_1_1::tariffs::from_domain(&tariff))
    } else {
        serde_json::to_value(v2_2_1::tariffs::from_domain(&tariff))
    }
    .map_err(|e| OcpiError::internal(&e))?;
    Ok(req.ok(wire))
}

/// `PUT .../tariffs/{cc}/{pid}/{tariff_id}`.
pub async fn put_tariff(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<TariffPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id) = path.into_inner();
    let version = version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let bytes = serde_json::to_vec(&body.into_inner()).map_err(|e| OcpiError::internal(&e))?;
    let options = ImportOptions { default_party: Some(party.clone()), version: Some(version) };
    let mut feed = emsp_ocpi::parse_tariffs(&bytes, &options).map_err(|e| OcpiError::invalid(e.to_string()))?;
    if let Some(skipped) = feed.skipped.first() {
        return Err(OcpiError::invalid(format!("{}: {}", skipped.path.trim_start_matches("[0]"), skipped.reason)));
    }
    let tariff: Tariff = feed.items.pop().ok_or_else(|| OcpiError::invalid("no tariff in the body"))?;
    if tariff.party != party || !tariff.id.as_str().eq_ignore_ascii_case(&id) {
        return Err(OcpiError::invalid(format!(
            "the tariff is {}*{}, the URL names {party}*{id}",
            tariff.party, tariff.id
        )));
    }
    let store = roaming.store.clone();
    let partner_id = req.partner.id.clone();
    blocking(move || store.upsert_tariff(&tariff, Some(&partner_id))).await?;
    Ok(req.ok_empty())
}

/// `DELETE .../tariffs/{cc}/{pid}/{tariff_id}`.
pub async fn delete_tariff(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<TariffPath>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id) = path.into_inner();
    version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let key = tariff_key(&party, &id);
    let store = roaming.store.clone();
    let removing = key.clone();
    if !blocking(move || store.remove_tariff(&removing)).await? {
        return Err(unknown_tariff(&key));
    }
    Ok(req.ok_empty())
}
