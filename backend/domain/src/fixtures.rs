//! Builders of realistic domain objects for tests (feature `fixtures`): a DC fast-charging location
//! in Amsterdam with two EVSEs, and a simple energy tariff.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};

use crate::*;

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + seconds, 0).single().unwrap()
}

pub fn party() -> PartyId {
    PartyId::parse("NL*ABC").unwrap()
}

pub fn connector(id: &str, standard: ConnectorStandard, power_type: PowerType, watts: u32) -> Connector {
    Connector {
        id: ConnectorId::new(id).unwrap(),
        standard,
        format: ConnectorFormat::Cable,
        power_type,
        max_voltage: 400,
        max_amperage: 125,
        max_electric_power: Some(watts),
        tariff_ids: vec![TariffId::new("T1").unwrap()],
        terms_and_conditions: None,
        last_updated: at(0),
    }
}

pub fn evse(uid: &str, status: EvseStatus, connectors: Vec<Connector>) -> Evse {
    Evse {
        uid: EvseUid::new(uid).unwrap(),
        evse_id: Some(format!("NL*ABC*E{uid}")),
        status,
        status_schedule: vec![],
        capabilities: vec![Capability::RemoteStartStopCapable, Capability::Other("SOLAR_POWERED".into())],
        connectors,
        floor_level: None,
        coordinates: None,
        physical_reference: None,
        directions: vec![],
        parking_restrictions: vec![],
        images: vec![],
        last_updated: at(0),
    }
}

pub fn location(id: &str, latitude: f64, longitude: f64) -> Location {
    Location {
        party: party(),
        id: LocationId::new(id).unwrap(),
        publish: true,
        publish_allowed_to: vec![],
        name: Some(format!("Station {id}")),
        address: "Stationsplein 1".into(),
        city: "Amsterdam".into(),
        postal_code: Some("1012 AB".into()),
        state: None,
        country: "NLD".into(),
        coordinates: GeoPoint::new(latitude, longitude).unwrap(),
        related_locations: vec![],
        parking_type: Some(ParkingType::ParkingLot),
        evses: vec![
            evse(
                "2",
                EvseStatus::Available,
                vec![connector("1", ConnectorStandard::Iec62196T2Combo, PowerType::Dc, 150_000)],
            ),
            evse(
                "1",
                EvseStatus::Charging,
                vec![
                    connector("1", ConnectorStandard::Iec62196T2, PowerType::Ac3Phase, 22_000),
                    connector("2", ConnectorStandard::Other("NACS_V2".into()), PowerType::Dc, 250_000),
                ],
            ),
        ],
        directions: vec![],
        operator: Some(BusinessDetails { name: "Fast Charging BV".into(), website: None, logo: None }),
        suboperator: None,
        owner: None,
        facilities: vec![Facility::Cafe],
        time_zone: Some("Europe/Amsterdam".into()),
        opening_times: None,
        charging_when_closed: None,
        images: vec![],
        energy_mix: None,
        last_updated: at(0),
    }
}

pub fn tariff(id: &str, price: &str) -> Tariff {
    Tariff {
        party: party(),
        id: TariffId::new(id).unwrap(),
        currency: Currency::new("EUR").unwrap(),
        tariff_type: None,
        tariff_alt_text: vec![],
        tariff_alt_url: None,
        min_price: None,
        max_price: None,
        elements: vec![TariffElement {
            price_components: vec![PriceComponent {
                dimension: TariffDimension::Energy,
                price: price.parse().unwrap(),
                vat: Some("21".parse().unwrap()),
                step_size: 1,
            }],
            restrictions: None,
        }],
        preauthorize_amount: None,
        start_date_time: None,
        end_date_time: None,
        energy_mix: None,
        last_updated: at(0),
    }
}
