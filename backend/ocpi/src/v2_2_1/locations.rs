//! OCPI 2.2.1 `Location`, `EVSE`, `Connector` and their classes, and their mapping to the domain.
//!
//! The classes 2.1.1 shares unchanged (display text, business details, images, hours, ...) are
//! defined here once and re-exported by [`crate::v2_1_1::locations`].

use chrono::{DateTime, Datelike, Utc};
use emsp_domain as domain;
use emsp_domain::{
    Capability, ConnectorFormat, ConnectorId, ConnectorStandard, EvseStatus, EvseUid, Facility, LocationId,
    ParkingRestriction, ParkingType, PartyId, PowerType, TariffId,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::lenient;
use crate::mapping::{
    FALLBACK_LAST_UPDATED, MapError, Notes, alpha3, checked, checked_all, coordinate_text, index, join, optional_text,
    plausible, point, required_text, resolve_party, time_of_day, time_text,
};

/// A charging location (2.2.1 `Location` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub party_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_bool")]
    pub publish: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub publish_allowed_to: Vec<PublishTokenType>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub country: Option<String>,
    pub coordinates: GeoLocation,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub related_locations: Vec<AdditionalGeoLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking_type: Option<ParkingType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub evses: Vec<Evse>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub directions: Vec<DisplayText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<BusinessDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suboperator: Option<BusinessDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<BusinessDetails>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub facilities: Vec<Facility>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_times: Option<Hours>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_bool")]
    pub charging_when_closed: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub images: Vec<Image>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_mix: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub last_updated: Option<DateTime<Utc>>,
}

/// One EVSE (2.2.1 `EVSE` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evse {
    /// Required by the specification; a missing one is taken from `evse_id`, else the EVSE is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub evse_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EvseStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub status_schedule: Vec<StatusSchedule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub capabilities: Vec<Capability>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub connectors: Vec<Connector>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub floor_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<GeoLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub physical_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub directions: Vec<DisplayText>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub parking_restrictions: Vec<ParkingRestriction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub images: Vec<Image>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub last_updated: Option<DateTime<Utc>>,
}

/// One connector (2.2.1 `Connector` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connector {
    /// Required by the specification; a missing id becomes the connector's position (1, 2, ...).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    /// Required by the specification; a connector without one is dropped with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard: Option<ConnectorStandard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ConnectorFormat>,
    /// Required by the specification; inferred for DC-only standards, else the connector is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_type: Option<PowerType>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub max_voltage: Option<Decimal>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub max_amperage: Option<Decimal>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub max_electric_power: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub tariff_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub terms_and_conditions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub last_updated: Option<DateTime<Utc>>,
}

/// `GeoLocation`: decimal degrees as strings (numbers are accepted when reading).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoLocation {
    #[serde(deserialize_with = "lenient::string")]
    pub latitude: String,
    #[serde(deserialize_with = "lenient::string")]
    pub longitude: String,
}

/// `AdditionalGeoLocation`: a related point of interest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdditionalGeoLocation {
    #[serde(deserialize_with = "lenient::string")]
    pub latitude: String,
    #[serde(deserialize_with = "lenient::string")]
    pub longitude: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<DisplayText>,
}

/// `PublishTokenType`: who may see an unpublished location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishTokenType {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub uid: Option<String>,
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub visual_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub group_id: Option<String>,
}

/// `DisplayText`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayText {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub text: Option<String>,
}

/// `BusinessDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessDetails {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<Image>,
}

/// `Image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub thumbnail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub category: Option<String>,
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub image_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_u32")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_u32")]
    pub height: Option<u32>,
}

/// `Hours`: opening times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hours {
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub regular_hours: Vec<RegularHours>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_bool")]
    pub twentyfourseven: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub exceptional_openings: Vec<ExceptionalPeriod>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub exceptional_closings: Vec<ExceptionalPeriod>,
}

/// `RegularHours`: one weekday's opening period, `HH:MM` local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegularHours {
    #[serde(deserialize_with = "lenient::u32")]
    pub weekday: u32,
    #[serde(deserialize_with = "lenient::string")]
    pub period_begin: String,
    #[serde(deserialize_with = "lenient::string")]
    pub period_end: String,
}

/// `ExceptionalPeriod`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionalPeriod {
    #[serde(deserialize_with = "lenient::datetime")]
    pub period_begin: DateTime<Utc>,
    #[serde(deserialize_with = "lenient::datetime")]
    pub period_end: DateTime<Utc>,
}

/// `StatusSchedule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSchedule {
    #[serde(deserialize_with = "lenient::datetime")]
    pub period_begin: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub period_end: Option<DateTime<Utc>>,
    pub status: EvseStatus,
}

// ---------------------------------------------------------------------------------------------
// Wire → domain
// ---------------------------------------------------------------------------------------------

/// A 2.2.1 location as a domain location. `fallback_party` is used when the object carries no
/// valid `country_code`/`party_id`; without either, an eMI3 EVSE id names the party.
pub fn to_domain(
    wire: &Location,
    fallback_party: Option<&PartyId>,
    notes: &mut Notes,
) -> Result<domain::Location, MapError> {
    let party = resolve_party(
        wire.country_code.as_deref(),
        wire.party_id.as_deref(),
        fallback_party,
        emi3_candidates(&wire.id, &wire.evses),
        notes,
    )?;
    let parts = CommonParts {
        id: &wire.id,
        name: wire.name.as_ref(),
        address: wire.address.as_ref(),
        city: wire.city.as_ref(),
        postal_code: wire.postal_code.as_ref(),
        country: wire.country.as_ref(),
        country_code: wire.country_code.as_deref(),
        coordinates: &wire.coordinates,
        related_locations: &wire.related_locations,
        directions: &wire.directions,
        operator: wire.operator.as_ref(),
        suboperator: wire.suboperator.as_ref(),
        owner: wire.owner.as_ref(),
        facilities: &wire.facilities,
        time_zone: wire.time_zone.as_ref(),
        opening_times: wire.opening_times.as_ref(),
        charging_when_closed: wire.charging_when_closed,
        images: &wire.images,
        energy_mix: wire.energy_mix.as_ref(),
        last_updated: wire.last_updated,
        child_updates: child_updates(&wire.evses),
    };
    let mut location = common_to_domain(party, &parts, notes)?;
    location.publish = wire.publish.unwrap_or(true);
    location.publish_allowed_to = wire.publish_allowed_to.iter().map(publish_token_to_domain).collect();
    location.state = optional_text(wire.state.as_ref());
    location.parking_type = wire.parking_type.as_ref().map(|kind| checked(kind, "parking_type", notes));
    for (position, evse) in wire.evses.iter().enumerate() {
        let path = index("evses", position);
        location.evses.extend(evse_to_domain(evse, &path, location.last_updated, notes)?);
    }
    Ok(location)
}

/// A 2.2.1 EVSE on its own (the body of `PUT /locations/{location_id}/{evse_uid}`). Without its
/// own `last_updated`, children fall back to [`FALLBACK_LAST_UPDATED`] (with a warning).
pub fn evse_to_domain_standalone(wire: &Evse, notes: &mut Notes) -> Result<domain::Evse, MapError> {
    let parent = match wire.last_updated {
        Some(at) => at,
        None => FALLBACK_LAST_UPDATED,
    };
    evse_to_domain(wire, "", parent, notes)?
        .ok_or_else(|| MapError::new("uid", "missing, and no evse_id to use instead"))
}

/// Ids that may carry an eMI3 party prefix, with their paths, most telling first.
fn emi3_candidates<'a>(location_id: &'a str, evses: &'a [Evse]) -> Vec<(String, &'a str)> {
    let mut candidates = Vec::new();
    for (position, evse) in evses.iter().enumerate() {
        if let Some(evse_id) = &evse.evse_id {
            candidates.push((format!("evses[{position}].evse_id"), evse_id.as_str()));
        }
        if let Some(uid) = &evse.uid {
            candidates.push((format!("evses[{position}].uid"), uid.as_str()));
        }
    }
    candidates.push(("id".to_owned(), location_id));
    candidates
}

fn child_updates(evses: &[Evse]) -> Vec<DateTime<Utc>> {
    let mut stamps = Vec::new();
    for evse in evses {
        stamps.extend(evse.last_updated);
        stamps.extend(evse.connectors.iter().filter_map(|c| c.last_updated));
    }
    stamps
}

/// The fields of a location both 2.1.1 and 2.2.1 carry the same way.
pub(crate) struct CommonParts<'a> {
    pub id: &'a str,
    pub name: Option<&'a String>,
    pub address: Option<&'a String>,
    pub city: Option<&'a String>,
    pub postal_code: Option<&'a String>,
    pub country: Option<&'a String>,
    pub country_code: Option<&'a str>,
    pub coordinates: &'a GeoLocation,
    pub related_locations: &'a [AdditionalGeoLocation],
    pub directions: &'a [DisplayText],
    pub operator: Option<&'a BusinessDetails>,
    pub suboperator: Option<&'a BusinessDetails>,
    pub owner: Option<&'a BusinessDetails>,
    pub facilities: &'a [Facility],
    pub time_zone: Option<&'a String>,
    pub opening_times: Option<&'a Hours>,
    pub charging_when_closed: Option<bool>,
    pub images: &'a [Image],
    pub energy_mix: Option<&'a serde_json::Value>,
    pub last_updated: Option<DateTime<Utc>>,
    pub child_updates: Vec<DateTime<Utc>>,
}

/// A domain location without EVSEs from the fields 2.1.1 and 2.2.1 share.
pub(crate) fn common_to_domain(
    party: PartyId,
    parts: &CommonParts<'_>,
    notes: &mut Notes,
) -> Result<domain::Location, MapError> {
    let id = LocationId::new(parts.id.trim()).map_err(|e| MapError::new("id", e.reason))?;
    if parts.id.trim() != parts.id {
        notes.warn("id", "has leading or trailing white space, trimmed");
    }
    let coordinates = point(&parts.coordinates.latitude, &parts.coordinates.longitude, "coordinates", notes)?;
    let country = match optional_text(parts.country) {
        Some(country) => country,
        None => match parts.country_code.and_then(alpha3) {
            Some(three) => {
                notes.warn("country", format!("missing, {three} taken from country_code"));
                three.to_owned()
            }
            None => required_text(None, "country", notes),
        },
    };
    let last_updated = match plausible(parts.last_updated, "last_updated", notes) {
        Some(at) => at,
        None => {
            match parts.child_updates.iter().filter(|at| at.year() >= crate::mapping::EARLIEST_PLAUSIBLE_YEAR).max() {
                Some(latest) => {
                    notes.warn("last_updated", "missing, the latest last_updated of its EVSEs and connectors is used");
                    *latest
                }
                None => {
                    notes.warn(
                        "last_updated",
                        format!("missing, the fixed fallback {} is used", FALLBACK_LAST_UPDATED.to_rfc3339()),
                    );
                    FALLBACK_LAST_UPDATED
                }
            }
        }
    };
    let time_zone = optional_text(parts.time_zone).and_then(|zone| time_zone(&zone, notes));
    let opening_times = match parts.opening_times {
        Some(hours) => hours_to_domain(hours, "opening_times", notes),
        None => None,
    };
    let mut related_locations = Vec::new();
    for (position, related) in parts.related_locations.iter().enumerate() {
        let path = index("related_locations", position);
        match point(&related.latitude, &related.longitude, &path, notes) {
            Ok(point) => related_locations.push(domain::RelatedLocation {
                point,
                name: related.name.as_ref().and_then(|n| display_text_to_domain(n, &join(&path, "name"), notes)),
            }),
            Err(e) => notes.warn(e.path, format!("{}; related location dropped", e.reason)),
        }
    }
    Ok(domain::Location {
        party,
        id,
        publish: true,
        publish_allowed_to: Vec::new(),
        name: optional_text(parts.name),
        address: required_text(parts.address, "address", notes),
        city: required_text(parts.city, "city", notes),
        postal_code: optional_text(parts.postal_code),
        state: None,
        country,
        coordinates,
        related_locations,
        parking_type: None,
        evses: Vec::new(),
        directions: display_texts_to_domain(parts.directions, "directions", notes),
        operator: parts.operator.and_then(|b| business_to_domain(b, "operator", notes)),
        suboperator: parts.suboperator.and_then(|b| business_to_domain(b, "suboperator", notes)),
        owner: parts.owner.and_then(|b| business_to_domain(b, "owner", notes)),
        facilities: checked_all(parts.facilities, "facilities", notes),
        time_zone,
        opening_times,
        charging_when_closed: parts.charging_when_closed,
        images: images_to_domain(parts.images, "images", notes),
        energy_mix: parts.energy_mix.cloned(),
        last_updated,
    })
}

/// An IANA zone name; `Asia/Kuala Lumpur` (space for underscore) is repaired, anything else
/// unknown is dropped: the domain would reject the whole location for it.
fn time_zone(zone: &str, notes: &mut Notes) -> Option<String> {
    if zone.parse::<chrono_tz::Tz>().is_ok() {
        return Some(zone.to_owned());
    }
    let repaired = zone.trim().replace(' ', "_");
    if repaired.parse::<chrono_tz::Tz>().is_ok() {
        notes.warn("time_zone", format!("{zone:?} is not an IANA time zone, read as {repaired:?}"));
        return Some(repaired);
    }
    // `Amsterdam`, `The Netherlands/Amsterdam`: the one zone named after that city.
    let city = repaired.rsplit('/').next().unwrap_or(&repaired);
    let mut matches = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).filter(|name| {
        name.rsplit('/').next().is_some_and(|last| last.eq_ignore_ascii_case(city)) && name.contains('/')
    });
    if let (Some(only), None) = (matches.next(), matches.next()) {
        notes.warn("time_zone", format!("{zone:?} is not an IANA time zone, read as {only:?}"));
        return Some(only.to_owned());
    }
    notes.warn("time_zone", format!("{zone:?} is not an IANA time zone, dropped"));
    None
}

/// An EVSE's uid: its `uid`, else its `evse_id` (with a warning), else `None` (with a warning):
/// an EVSE without identity cannot receive status updates, so it is dropped, not the location.
pub(crate) fn evse_uid(
    uid: Option<&str>,
    evse_id: Option<&str>,
    path: &str,
    notes: &mut Notes,
) -> Result<Option<EvseUid>, MapError> {
    let field = join(path, "uid");
    if let Some(uid) = uid.map(str::trim).filter(|uid| !uid.is_empty()) {
        return EvseUid::new(uid).map(Some).map_err(|e| MapError::new(field, e.reason));
    }
    if let Some(evse_id) = evse_id.map(str::trim).filter(|id| !id.is_empty()) {
        notes.warn(&field, format!("missing, the evse_id {evse_id:?} is used"));
        return EvseUid::new(evse_id).map(Some).map_err(|e| MapError::new(field, e.reason));
    }
    notes.warn(field, "missing and no evse_id: the EVSE is dropped");
    Ok(None)
}

/// A child's `last_updated`: its own when plausible, else its parent's (with a warning).
pub(crate) fn inherited(
    own: Option<DateTime<Utc>>,
    parent: DateTime<Utc>,
    path: &str,
    notes: &mut Notes,
) -> DateTime<Utc> {
    let field = join(path, "last_updated");
    match plausible(own, &field, notes) {
        Some(at) => at,
        None => {
            notes.warn(field, "missing, inherited from the parent object");
            parent
        }
    }
}

fn evse_to_domain(
    wire: &Evse,
    path: &str,
    parent_updated: DateTime<Utc>,
    notes: &mut Notes,
) -> Result<Option<domain::Evse>, MapError> {
    let Some(uid) = evse_uid(wire.uid.as_deref(), wire.evse_id.as_deref(), path, notes)? else {
        return Ok(None);
    };
    let last_updated = inherited(wire.last_updated, parent_updated, path, notes);
    let status = match &wire.status {
        Some(status) => status.clone(),
        None => {
            notes.warn(join(path, "status"), "missing, UNKNOWN assumed");
            EvseStatus::Unknown
        }
    };
    let mut connectors = Vec::new();
    for (position, connector) in wire.connectors.iter().enumerate() {
        let connector_path = index(&join(path, "connectors"), position);
        let parts = ConnectorParts {
            position,
            id: connector.id.as_deref(),
            standard: connector.standard.as_ref(),
            format: connector.format.as_ref(),
            power_type: connector.power_type.as_ref(),
            voltage: (connector.max_voltage, "max_voltage"),
            amperage: (connector.max_amperage, "max_amperage"),
            max_electric_power: connector.max_electric_power,
            tariff_ids: &connector.tariff_ids,
            terms_and_conditions: connector.terms_and_conditions.as_ref(),
            last_updated: connector.last_updated,
        };
        connectors.extend(connector_to_domain(&parts, &connector_path, last_updated, notes)?);
    }
    if connectors.is_empty() && status != EvseStatus::Removed {
        notes.warn(join(path, "connectors"), "an EVSE without connectors");
    }
    let coordinates = match &wire.coordinates {
        Some(c) => match point(&c.latitude, &c.longitude, &join(path, "coordinates"), notes) {
            Ok(point) if point.latitude == 0.0 && point.longitude == 0.0 => None,
            Ok(point) => Some(point),
            Err(e) => {
                notes.warn(e.path, format!("{}; EVSE coordinates dropped", e.reason));
                None
            }
        },
        None => None,
    };
    let mut status_schedule = Vec::new();
    for schedule in &wire.status_schedule {
        status_schedule.push(domain::StatusSchedule {
            period_begin: schedule.period_begin,
            period_end: schedule.period_end,
            status: schedule.status.clone(),
        });
    }
    let status = checked(&status, &join(path, "status"), notes);
    Ok(Some(domain::Evse {
        uid,
        evse_id: optional_text(wire.evse_id.as_ref()),
        status,
        status_schedule,
        capabilities: checked_all(&wire.capabilities, &join(path, "capabilities"), notes),
        connectors,
        floor_level: optional_text(wire.floor_level.as_ref()),
        coordinates,
        physical_reference: optional_text(wire.physical_reference.as_ref()),
        directions: display_texts_to_domain(&wire.directions, &join(path, "directions"), notes),
        parking_restrictions: checked_all(&wire.parking_restrictions, &join(path, "parking_restrictions"), notes),
        images: images_to_domain(&wire.images, &join(path, "images"), notes),
        last_updated,
    }))
}

/// The connector fields of 2.1.1 and 2.2.1 under their version's names.
pub(crate) struct ConnectorParts<'a> {
    /// Position in the EVSE's list, the id of a connector that states none.
    pub position: usize,
    pub id: Option<&'a str>,
    pub standard: Option<&'a ConnectorStandard>,
    pub format: Option<&'a ConnectorFormat>,
    pub power_type: Option<&'a PowerType>,
    /// The value and the field name it came from (`max_voltage` or 2.1.1 `voltage`).
    pub voltage: (Option<Decimal>, &'static str),
    pub amperage: (Option<Decimal>, &'static str),
    pub max_electric_power: Option<Decimal>,
    pub tariff_ids: &'a [String],
    pub terms_and_conditions: Option<&'a String>,
    pub last_updated: Option<DateTime<Utc>>,
}

/// Below this a stated `max_electric_power` is taken to be in kW, not W: no public connector
/// delivers less than 1 kW, and feeds that send `22` for a 22 kW socket exist.
const KILOWATT_SUSPICION_W: u32 = 1_000;

/// Standards that only exist as DC connectors, so a missing `power_type` is not in doubt.
fn dc_only(standard: &ConnectorStandard) -> bool {
    matches!(
        standard,
        ConnectorStandard::Chademo
            | ConnectorStandard::Chaoji
            | ConnectorStandard::GbtDc
            | ConnectorStandard::Iec62196T1Combo
            | ConnectorStandard::Iec62196T2Combo
            | ConnectorStandard::Mcs
    )
}

/// A whole, non-negative number of volts, amperes or watts; fractions are rounded with a warning.
fn whole(value: Decimal, path: &str, notes: &mut Notes) -> Option<u32> {
    if value.is_sign_negative() && !value.is_zero() {
        notes.warn(path, format!("{value} is negative, treated as unknown"));
        return None;
    }
    let rounded = value.round();
    if rounded != value {
        notes.warn(path, format!("{value} is not a whole number, rounded to {rounded}"));
    }
    match rounded.to_u32() {
        Some(whole) => Some(whole),
        None => {
            notes.warn(path, format!("{value} is out of range, treated as unknown"));
            None
        }
    }
}

/// A connector, or `None` (with a warning) when it cannot be described: no standard, or no power
/// type that the standard implies. Dropping one such connector keeps the location on the map.
pub(crate) fn connector_to_domain(
    parts: &ConnectorParts<'_>,
    path: &str,
    parent_updated: DateTime<Utc>,
    notes: &mut Notes,
) -> Result<Option<domain::Connector>, MapError> {
    let id = match parts.id.map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => ConnectorId::new(id).map_err(|e| MapError::new(join(path, "id"), e.reason))?,
        None => {
            let position = (parts.position + 1).to_string();
            notes.warn(join(path, "id"), format!("missing, its position {position} is used"));
            ConnectorId::new(position).map_err(|e| MapError::new(join(path, "id"), e.reason))?
        }
    };
    let Some(standard) = parts.standard else {
        notes.warn(join(path, "standard"), "missing: the connector is dropped");
        return Ok(None);
    };
    let power_type = match parts.power_type {
        Some(power_type) => power_type.clone(),
        None if dc_only(standard) => {
            notes.warn(join(path, "power_type"), format!("missing, DC assumed from the standard {standard}"));
            PowerType::Dc
        }
        None => {
            notes.warn(
                join(path, "power_type"),
                format!("missing and {standard} can be AC or DC: the connector is dropped"),
            );
            return Ok(None);
        }
    };
    let format = match parts.format {
        Some(format) => format.clone(),
        None => {
            // DC connectors are tethered; an AC connector without a stated cable is most often a socket.
            let guess = if power_type.is_dc() { ConnectorFormat::Cable } else { ConnectorFormat::Socket };
            notes.warn(join(path, "format"), format!("missing, {guess} assumed from the power type"));
            guess
        }
    };
    let mut electrical = |(value, field): (Option<Decimal>, &'static str)| match value {
        Some(value) => whole(value, &join(path, field), notes).unwrap_or(0),
        None => {
            notes.warn(join(path, field), "missing, 0 (unknown) used");
            0
        }
    };
    let max_voltage = electrical(parts.voltage);
    let max_amperage = electrical(parts.amperage);
    if power_type == PowerType::Ac3Phase && (380..=480).contains(&max_voltage) && parts.max_electric_power.is_none() {
        notes.warn(
            join(path, parts.voltage.1),
            format!("{max_voltage} V on AC_3_PHASE looks line-to-line; OCPI wants line-to-neutral (230 V), so power from volts x amperes is too high"),
        );
    }
    let power_path = join(path, "max_electric_power");
    let max_electric_power = match parts.max_electric_power {
        None => None,
        Some(value) if value.is_zero() => {
            notes.warn(power_path, "0 W, treated as unknown");
            None
        }
        Some(value) if value < Decimal::from(KILOWATT_SUSPICION_W) => {
            let watts = value * Decimal::ONE_THOUSAND;
            notes.warn(&power_path, format!("{value} looks like kW, not W: read as {watts} W"));
            whole(watts, &power_path, notes)
        }
        Some(value) => whole(value, &power_path, notes),
    };
    let mut tariff_ids = Vec::new();
    for (position, tariff) in parts.tariff_ids.iter().enumerate() {
        match TariffId::new(tariff.trim()) {
            Ok(id) => tariff_ids.push(id),
            Err(e) => notes.warn(index(&join(path, "tariff_ids"), position), format!("{}; dropped", e.reason)),
        }
    }
    Ok(Some(domain::Connector {
        id,
        standard: checked(standard, &join(path, "standard"), notes),
        format: checked(&format, &join(path, "format"), notes),
        power_type: checked(&power_type, &join(path, "power_type"), notes),
        max_voltage,
        max_amperage,
        max_electric_power,
        tariff_ids,
        terms_and_conditions: optional_text(parts.terms_and_conditions),
        last_updated: inherited(parts.last_updated, parent_updated, path, notes),
    }))
}

pub(crate) fn display_text_to_domain(wire: &DisplayText, path: &str, notes: &mut Notes) -> Option<domain::DisplayText> {
    let Some(text) = optional_text(wire.text.as_ref()) else {
        notes.warn(join(path, "text"), "missing, display text dropped");
        return None;
    };
    let language = match optional_text(wire.language.as_ref()) {
        Some(language) => language,
        None => {
            notes.warn(join(path, "language"), "missing, \"en\" assumed");
            "en".to_owned()
        }
    };
    Some(domain::DisplayText { language, text })
}

pub(crate) fn display_texts_to_domain(wire: &[DisplayText], path: &str, notes: &mut Notes) -> Vec<domain::DisplayText> {
    let mut texts = Vec::new();
    for (position, text) in wire.iter().enumerate() {
        texts.extend(display_text_to_domain(text, &index(path, position), notes));
    }
    texts
}

fn business_to_domain(wire: &BusinessDetails, path: &str, notes: &mut Notes) -> Option<domain::BusinessDetails> {
    let Some(name) = optional_text(wire.name.as_ref()) else {
        notes.warn(join(path, "name"), "missing, business details dropped");
        return None;
    };
    Some(domain::BusinessDetails {
        name,
        website: optional_text(wire.website.as_ref()),
        logo: wire.logo.as_ref().and_then(|logo| image_to_domain(logo, &join(path, "logo"), notes)),
    })
}

fn image_to_domain(wire: &Image, path: &str, notes: &mut Notes) -> Option<domain::Image> {
    let Some(url) = optional_text(wire.url.as_ref()) else {
        notes.warn(join(path, "url"), "missing, image dropped");
        return None;
    };
    let category = optional_text(wire.category.as_ref()).unwrap_or_else(|| {
        notes.warn(join(path, "category"), "missing, OTHER assumed");
        "OTHER".to_owned()
    });
    let image_type = optional_text(wire.image_type.as_ref()).unwrap_or_else(|| {
        let extension =
            url.rsplit('.').next().filter(|e| e.len() <= 4 && !e.contains('/')).unwrap_or("").to_ascii_lowercase();
        notes.warn(join(path, "type"), format!("missing, {extension:?} taken from the URL"));
        extension
    });
    Some(domain::Image {
        url,
        thumbnail: optional_text(wire.thumbnail.as_ref()),
        category,
        image_type,
        width: wire.width,
        height: wire.height,
    })
}

pub(crate) fn images_to_domain(wire: &[Image], path: &str, notes: &mut Notes) -> Vec<domain::Image> {
    let mut images = Vec::new();
    for (position, image) in wire.iter().enumerate() {
        images.extend(image_to_domain(image, &index(path, position), notes));
    }
    images
}

/// Opening hours; a broken regular period drops the whole `opening_times` (with a warning), since
/// partial hours would show a location as closed when it is open.
fn hours_to_domain(wire: &Hours, path: &str, notes: &mut Notes) -> Option<domain::Hours> {
    let mut regular_hours = Vec::new();
    for (position, hours) in wire.regular_hours.iter().enumerate() {
        let hours_path = index(&join(path, "regular_hours"), position);
        let parsed = (|| {
            let weekday = u8::try_from(hours.weekday).ok().filter(|day| (1..=7).contains(day)).ok_or_else(|| {
                MapError::new(join(&hours_path, "weekday"), format!("{} is not 1 to 7", hours.weekday))
            })?;
            let period_begin = time_of_day(&hours.period_begin, &join(&hours_path, "period_begin"))?;
            let period_end = time_of_day(&hours.period_end, &join(&hours_path, "period_end"))?;
            Ok::<_, MapError>(domain::RegularHours { weekday, period_begin, period_end })
        })();
        match parsed {
            Ok(hours) => regular_hours.push(hours),
            Err(e) => {
                notes.warn(e.path, format!("{}; opening_times dropped", e.reason));
                return None;
            }
        }
    }
    let twentyfourseven = match wire.twentyfourseven {
        Some(flag) => flag,
        None => {
            let assumed = regular_hours.is_empty();
            notes.warn(join(path, "twentyfourseven"), format!("missing, {assumed} assumed"));
            assumed
        }
    };
    let periods = |list: &[ExceptionalPeriod]| {
        list.iter()
            .map(|p| domain::ExceptionalPeriod { period_begin: p.period_begin, period_end: p.period_end })
            .collect()
    };
    let hours = domain::Hours {
        twentyfourseven,
        regular_hours,
        exceptional_openings: periods(&wire.exceptional_openings),
        exceptional_closings: periods(&wire.exceptional_closings),
    };
    if let Err(e) = hours.validate() {
        notes.warn(join(path, &e.field), format!("{}; opening_times dropped", e.reason));
        return None;
    }
    Some(hours)
}

fn publish_token_to_domain(wire: &PublishTokenType) -> domain::PublishToken {
    domain::PublishToken {
        uid: wire.uid.clone(),
        token_type: wire.token_type.clone(),
        visual_number: wire.visual_number.clone(),
        issuer: wire.issuer.clone(),
        group_id: wire.group_id.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Domain → wire
// ---------------------------------------------------------------------------------------------

/// A domain location as a 2.2.1 object, every required field filled.
pub fn from_domain(location: &domain::Location) -> Location {
    Location {
        country_code: Some(location.party.country_code.to_string()),
        party_id: Some(location.party.party_id.to_string()),
        id: location.id.to_string(),
        publish: Some(location.publish),
        publish_allowed_to: location.publish_allowed_to.iter().map(publish_token_from_domain).collect(),
        name: location.name.clone(),
        address: Some(location.address.clone()),
        city: Some(location.city.clone()),
        postal_code: location.postal_code.clone(),
        state: location.state.clone(),
        country: Some(location.country.clone()),
        coordinates: geo_from_domain(&location.coordinates),
        related_locations: location.related_locations.iter().map(related_from_domain).collect(),
        parking_type: location.parking_type.clone(),
        evses: location.evses.iter().map(evse_from_domain).collect(),
        directions: location.directions.iter().map(display_text_from_domain).collect(),
        operator: location.operator.as_ref().map(business_from_domain),
        suboperator: location.suboperator.as_ref().map(business_from_domain),
        owner: location.owner.as_ref().map(business_from_domain),
        facilities: location.facilities.clone(),
        time_zone: location.time_zone.clone(),
        opening_times: location.opening_times.as_ref().map(hours_from_domain),
        charging_when_closed: location.charging_when_closed,
        images: location.images.iter().map(image_from_domain).collect(),
        energy_mix: location.energy_mix.clone(),
        last_updated: Some(location.last_updated),
    }
}

/// A domain EVSE as a 2.2.1 object (`PUT /locations/{id}/{evse_uid}`).
pub fn evse_from_domain(evse: &domain::Evse) -> Evse {
    Evse {
        uid: Some(evse.uid.to_string()),
        evse_id: evse.evse_id.clone(),
        status: Some(evse.status.clone()),
        status_schedule: evse.status_schedule.iter().map(status_schedule_from_domain).collect(),
        capabilities: evse.capabilities.clone(),
        connectors: evse.connectors.iter().map(connector_from_domain).collect(),
        floor_level: evse.floor_level.clone(),
        coordinates: evse.coordinates.as_ref().map(geo_from_domain),
        physical_reference: evse.physical_reference.clone(),
        directions: evse.directions.iter().map(display_text_from_domain).collect(),
        parking_restrictions: evse.parking_restrictions.clone(),
        images: evse.images.iter().map(image_from_domain).collect(),
        last_updated: Some(evse.last_updated),
    }
}

/// A domain connector as a 2.2.1 object.
pub fn connector_from_domain(connector: &domain::Connector) -> Connector {
    Connector {
        id: Some(connector.id.to_string()),
        standard: Some(connector.standard.clone()),
        format: Some(connector.format.clone()),
        power_type: Some(connector.power_type.clone()),
        max_voltage: Some(Decimal::from(connector.max_voltage)),
        max_amperage: Some(Decimal::from(connector.max_amperage)),
        max_electric_power: connector.max_electric_power.map(Decimal::from),
        tariff_ids: connector.tariff_ids.iter().map(ToString::to_string).collect(),
        terms_and_conditions: connector.terms_and_conditions.clone(),
        last_updated: Some(connector.last_updated),
    }
}

pub(crate) fn status_schedule_from_domain(schedule: &domain::StatusSchedule) -> StatusSchedule {
    StatusSchedule {
        period_begin: schedule.period_begin,
        period_end: schedule.period_end,
        status: schedule.status.clone(),
    }
}

pub(crate) fn geo_from_domain(point: &domain::GeoPoint) -> GeoLocation {
    GeoLocation { latitude: coordinate_text(point.latitude), longitude: coordinate_text(point.longitude) }
}

pub(crate) fn related_from_domain(related: &domain::RelatedLocation) -> AdditionalGeoLocation {
    AdditionalGeoLocation {
        latitude: coordinate_text(related.point.latitude),
        longitude: coordinate_text(related.point.longitude),
        name: related.name.as_ref().map(display_text_from_domain),
    }
}

pub(crate) fn display_text_from_domain(text: &domain::DisplayText) -> DisplayText {
    DisplayText { language: Some(text.language.clone()), text: Some(text.text.clone()) }
}

pub(crate) fn business_from_domain(business: &domain::BusinessDetails) -> BusinessDetails {
    BusinessDetails {
        name: Some(business.name.clone()),
        website: business.website.clone(),
        logo: business.logo.as_ref().map(image_from_domain),
    }
}

pub(crate) fn image_from_domain(image: &domain::Image) -> Image {
    Image {
        url: Some(image.url.clone()),
        thumbnail: image.thumbnail.clone(),
        category: Some(image.category.clone()),
        image_type: Some(image.image_type.clone()),
        width: image.width,
        height: image.height,
    }
}

pub(crate) fn hours_from_domain(hours: &domain::Hours) -> Hours {
    let periods = |list: &[domain::ExceptionalPeriod]| {
        list.iter().map(|p| ExceptionalPeriod { period_begin: p.period_begin, period_end: p.period_end }).collect()
    };
    Hours {
        regular_hours: hours
            .regular_hours
            .iter()
            .map(|h| RegularHours {
                weekday: u32::from(h.weekday),
                period_begin: time_text(h.period_begin),
                period_end: time_text(h.period_end),
            })
            .collect(),
        twentyfourseven: Some(hours.twentyfourseven),
        exceptional_openings: periods(&hours.exceptional_openings),
        exceptional_closings: periods(&hours.exceptional_closings),
    }
}

fn publish_token_from_domain(token: &domain::PublishToken) -> PublishTokenType {
    PublishTokenType {
        uid: token.uid.clone(),
        token_type: token.token_type.clone(),
        visual_number: token.visual_number.clone(),
        issuer: token.issuer.clone(),
        group_id: token.group_id.clone(),
    }
}
