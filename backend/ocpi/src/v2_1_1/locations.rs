//! OCPI 2.1.1 `Location`, `EVSE` and `Connector`, and their mapping to and from the domain.

use chrono::{DateTime, Utc};
use emsp_domain as domain;
use emsp_domain::{
    Capability, ConnectorFormat, ConnectorStandard, EvseStatus, Facility, ParkingRestriction, ParkingType, PartyId,
    PowerType,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::lenient;
use crate::mapping::{MapError, Notes, checked, checked_all, index, join, optional_text, point, resolve_party};
pub use crate::v2_2_1::locations::{
    AdditionalGeoLocation, BusinessDetails, DisplayText, ExceptionalPeriod, GeoLocation, Hours, Image, RegularHours,
    StatusSchedule,
};
use crate::v2_2_1::locations::{
    CommonParts, ConnectorParts, business_from_domain, common_to_domain, connector_to_domain, display_text_from_domain,
    display_texts_to_domain, evse_uid, geo_from_domain, hours_from_domain, image_from_domain, images_to_domain,
    inherited, related_from_domain, status_schedule_from_domain,
};

/// A charging location (2.1.1 `Location` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    /// `LocationType`: ON_STREET, PARKING_GARAGE, UNDERGROUND_GARAGE, PARKING_LOT, OTHER, UNKNOWN.
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub location_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub country: Option<String>,
    pub coordinates: GeoLocation,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub related_locations: Vec<AdditionalGeoLocation>,
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

/// One EVSE (2.1.1 `EVSE` object).
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

/// One connector (2.1.1 `Connector` object).
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
    pub voltage: Option<Decimal>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub amperage: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub tariff_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub terms_and_conditions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub last_updated: Option<DateTime<Utc>>,
}

/// A 2.1.1 location as a domain location. 2.1.1 objects name no party: `party` is the partner the
/// feed came from; without it, an eMI3 EVSE id (`FR*DRV*E1`) names the party.
pub fn to_domain(wire: &Location, party: Option<&PartyId>, notes: &mut Notes) -> Result<domain::Location, MapError> {
    let mut candidates = Vec::new();
    for (position, evse) in wire.evses.iter().enumerate() {
        if let Some(evse_id) = &evse.evse_id {
            candidates.push((format!("evses[{position}].evse_id"), evse_id.as_str()));
        }
        if let Some(uid) = &evse.uid {
            candidates.push((format!("evses[{position}].uid"), uid.as_str()));
        }
    }
    candidates.push(("id".to_owned(), wire.id.as_str()));
    let party = resolve_party(None, None, party, candidates, notes)?;
    let mut child_updates = Vec::new();
    for evse in &wire.evses {
        child_updates.extend(evse.last_updated);
        child_updates.extend(evse.connectors.iter().filter_map(|c| c.last_updated));
    }
    let parts = CommonParts {
        id: &wire.id,
        name: wire.name.as_ref(),
        address: wire.address.as_ref(),
        city: wire.city.as_ref(),
        postal_code: wire.postal_code.as_ref(),
        country: wire.country.as_ref(),
        country_code: Some(party.country_code.as_str()),
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
        child_updates,
    };
    let mut location = common_to_domain(party.clone(), &parts, notes)?;
    location.parking_type = parking_type_from_location_type(wire.location_type.as_deref());
    for (position, evse) in wire.evses.iter().enumerate() {
        let path = index("evses", position);
        location.evses.extend(evse_to_domain(evse, &path, location.last_updated, notes)?);
    }
    Ok(location)
}

/// 2.1.1 `type` → 2.2.1 `parking_type`: UNKNOWN (or nothing) is no parking type; OTHER and values
/// outside the specification are kept as `Other`.
fn parking_type_from_location_type(location_type: Option<&str>) -> Option<ParkingType> {
    let value = location_type?.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("UNKNOWN") {
        return None;
    }
    Some(ParkingType::parse(value))
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
    let status = wire.status.clone().unwrap_or_else(|| {
        notes.warn(join(path, "status"), "missing, UNKNOWN assumed");
        EvseStatus::Unknown
    });
    let mut connectors = Vec::new();
    for (position, connector) in wire.connectors.iter().enumerate() {
        let connector_path = index(&join(path, "connectors"), position);
        let tariff_ids: Vec<String> = connector.tariff_id.iter().cloned().collect();
        let parts = ConnectorParts {
            position,
            id: connector.id.as_deref(),
            standard: connector.standard.as_ref(),
            format: connector.format.as_ref(),
            power_type: connector.power_type.as_ref(),
            voltage: (connector.voltage, "voltage"),
            amperage: (connector.amperage, "amperage"),
            max_electric_power: None,
            tariff_ids: &tariff_ids,
            terms_and_conditions: connector.terms_and_conditions.as_ref(),
            last_updated: connector.last_updated,
        };
        connectors.extend(connector_to_domain(&parts, &connector_path, last_updated, notes)?);
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
    let status = checked(&status, &join(path, "status"), notes);
    Ok(Some(domain::Evse {
        uid,
        evse_id: optional_text(wire.evse_id.as_ref()),
        status,
        status_schedule: wire
            .status_schedule
            .iter()
            .map(|s| domain::StatusSchedule {
                period_begin: s.period_begin,
                period_end: s.period_end,
                status: s.status.clone(),
            })
            .collect(),
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

/// A domain location as a 2.1.1 object. Lost on the way: `publish`/`publish_allowed_to`, `state`,
/// connector `max_electric_power` and all but the first tariff id of a connector (2.1.1 has one).
pub fn from_domain(location: &domain::Location) -> Location {
    Location {
        id: location.id.to_string(),
        location_type: Some(location.parking_type.as_ref().map_or("UNKNOWN", |t| t.as_str()).to_owned()),
        name: location.name.clone(),
        address: Some(location.address.clone()),
        city: Some(location.city.clone()),
        postal_code: location.postal_code.clone(),
        country: Some(location.country.clone()),
        coordinates: geo_from_domain(&location.coordinates),
        related_locations: location.related_locations.iter().map(related_from_domain).collect(),
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

/// A domain EVSE as a 2.1.1 object.
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

/// A domain connector as a 2.1.1 object.
pub fn connector_from_domain(connector: &domain::Connector) -> Connector {
    Connector {
        id: Some(connector.id.to_string()),
        standard: Some(connector.standard.clone()),
        format: Some(connector.format.clone()),
        power_type: Some(connector.power_type.clone()),
        voltage: Some(Decimal::from(connector.max_voltage)),
        amperage: Some(Decimal::from(connector.max_amperage)),
        tariff_id: connector.tariff_ids.first().map(ToString::to_string),
        terms_and_conditions: connector.terms_and_conditions.clone(),
        last_updated: Some(connector.last_updated),
    }
}
