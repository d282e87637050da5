//! Builders for domain locations.

use chrono::Utc;
use emsp_domain::{
    Capability, Connector, ConnectorFormat, ConnectorId, ConnectorStandard, CountryCode, Evse, EvseStatus, EvseUid,
    GeoPoint, Location, LocationId, PartyCode, PartyId, PowerType, TariffId,
};

pub fn party(country: &str, code: &str) -> PartyId {
    PartyId::new(CountryCode::new(country).unwrap(), PartyCode::new(code).unwrap())
}

pub fn connector(id: &str, standard: ConnectorStandard, power_type: PowerType, kw: u32) -> Connector {
    Connector {
        id: ConnectorId::new(id).unwrap(),
        standard,
        format: ConnectorFormat::Cable,
        power_type,
        max_voltage: 400,
        max_amperage: 32,
        max_electric_power: Some(kw * 1000),
        tariff_ids: vec![TariffId::new("T1").unwrap()],
        terms_and_conditions: None,
        last_updated: Utc::now(),
    }
}

pub fn evse(uid: &str, status: EvseStatus, connectors: Vec<Connector>) -> Evse {
    Evse {
        uid: EvseUid::new(uid).unwrap(),
        evse_id: Some(format!("NL*ABC*E{uid}")),
        status,
        status_schedule: vec![],
        capabilities: vec![Capability::RemoteStartStopCapable],
        connectors,
        floor_level: None,
        coordinates: None,
        physical_reference: None,
        directions: vec![],
        parking_restrictions: vec![],
        images: vec![],
        last_updated: Utc::now(),
    }
}

/// A published Dutch location with one AC and, when `dc_kw` > 0, one DC EVSE.
pub fn location(id: &str, latitude: f64, longitude: f64, dc_kw: u32) -> Location {
    let mut evses = vec![evse(
        &format!("{id}-1"),
        EvseStatus::Available,
        vec![connector("1", ConnectorStandard::Iec62196T2, PowerType::Ac3Phase, 11)],
    )];
    if dc_kw > 0 {
        evses.push(evse(
            &format!("{id}-2"),
            EvseStatus::Charging,
            vec![connector("1", ConnectorStandard::Iec62196T2Combo, PowerType::Dc, dc_kw)],
        ));
    }
    Location {
        party: party("NL", "ABC"),
        id: LocationId::new(id).unwrap(),
        publish: true,
        publish_allowed_to: vec![],
        name: Some(format!("Charger {id}")),
        address: "Damrak 1".into(),
        city: "Amsterdam".into(),
        postal_code: Some("1012 LG".into()),
        state: None,
        country: "NLD".into(),
        coordinates: GeoPoint { latitude, longitude },
        related_locations: vec![],
        parking_type: None,
        evses,
        directions: vec![],
        operator: None,
        suboperator: None,
        owner: None,
        facilities: vec![],
        time_zone: Some("Europe/Amsterdam".into()),
        opening_times: None,
        charging_when_closed: None,
        images: vec![],
        energy_mix: None,
        last_updated: Utc::now(),
    }
}
