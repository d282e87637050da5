//! The real OCPI feeds of `../shared/data/ocpi-locations`, through a small, tolerant loader.
//!
//! The OCPI mapping layer does not exist yet, so this maps just the fields search needs, accepting
//! the dialects found in the wild: an envelope or a bare array, a UTF-8 BOM, numbers as strings,
//! 2.1.1 `voltage`/`amperage` beside 2.2.1 `max_voltage`/`max_amperage`, camelCase keys, and
//! `max_electric_power` in kW where it should be W.

use std::collections::HashSet;

use chrono::Utc;
use emsp_domain::{
    BusinessDetails, Capability, Connector, ConnectorFormat, ConnectorId, ConnectorStandard, CountryCode, Evse,
    EvseStatus, EvseUid, GeoPoint, Location, LocationId, PartyCode, PartyId, PowerType,
};
use emsp_search_index::{Area, SearchIndex, SearchQuery, SortBy, normalize_evse_id};
use serde_json::Value;

const FEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/ocpi-locations");

fn field<'a>(object: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| object.get(*name).filter(|v| !v.is_null()))
}

fn text(object: &Value, names: &[&str]) -> Option<String> {
    match field(object, names)? {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(object: &Value, names: &[&str]) -> Option<f64> {
    match field(object, names)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn connector(value: &Value, index: usize) -> Option<Connector> {
    let power_type = PowerType::parse(&text(value, &["power_type", "powerType"]).unwrap_or("AC_3_PHASE".into()));
    let watts = number(value, &["max_electric_power", "maxElectricPower"])
        .map(|p| if p > 0.0 && p < 1000.0 { p * 1000.0 } else { p });
    Some(Connector {
        id: ConnectorId::new(text(value, &["id"]).unwrap_or_else(|| (index + 1).to_string())).ok()?,
        standard: ConnectorStandard::parse(&text(value, &["standard"])?),
        format: ConnectorFormat::parse(&text(value, &["format"]).unwrap_or("SOCKET".into())),
        power_type,
        max_voltage: number(value, &["max_voltage", "voltage", "maxVoltage"]).unwrap_or(0.0) as u32,
        max_amperage: number(value, &["max_amperage", "amperage", "maxAmperage"]).unwrap_or(0.0) as u32,
        max_electric_power: watts.filter(|w| *w > 0.0).map(|w| w as u32),
        tariff_ids: vec![],
        terms_and_conditions: None,
        last_updated: Utc::now(),
    })
}

fn evse(value: &Value, index: usize) -> Option<Evse> {
    let uid = text(value, &["uid", "evse_uid"]).or_else(|| text(value, &["evse_id", "evseId"]))?;
    let connectors = field(value, &["connectors"])?.as_array()?;
    let mut seen = HashSet::new();
    let connectors = connectors
        .iter()
        .enumerate()
        .filter_map(|(i, c)| connector(c, i))
        .filter(|c| seen.insert(c.id.key()))
        .collect();
    Some(Evse {
        uid: EvseUid::new(uid).ok().or_else(|| EvseUid::new(format!("EVSE{index}")).ok())?,
        evse_id: text(value, &["evse_id", "evseId"]),
        status: EvseStatus::parse(&text(value, &["status"]).unwrap_or("UNKNOWN".into())),
        status_schedule: vec![],
        capabilities: field(value, &["capabilities"])
            .and_then(Value::as_array)
            .map(|caps| caps.iter().filter_map(Value::as_str).map(Capability::parse).collect())
            .unwrap_or_default(),
        connectors,
        floor_level: None,
        coordinates: None,
        physical_reference: None,
        directions: vec![],
        parking_restrictions: vec![],
        images: vec![],
        last_updated: Utc::now(),
    })
}

fn location(value: &Value, default_party: &PartyId) -> Option<Location> {
    let party = match (text(value, &["country_code"]), text(value, &["party_id"])) {
        (Some(country), Some(code)) => match (CountryCode::new(&country), PartyCode::new(&code)) {
            (Ok(country), Ok(code)) => PartyId::new(country, code),
            _ => default_party.clone(),
        },
        _ => default_party.clone(),
    };
    let coordinates = field(value, &["coordinates"])?;
    let mut seen = HashSet::new();
    let evses = field(value, &["evses"])
        .and_then(Value::as_array)
        .map(|evses| {
            evses.iter().enumerate().filter_map(|(i, e)| evse(e, i)).filter(|e| seen.insert(e.uid.key())).collect()
        })
        .unwrap_or_default();
    Some(Location {
        party,
        id: LocationId::new(text(value, &["id"])?).ok()?,
        publish: field(value, &["publish"]).and_then(Value::as_bool).unwrap_or(true),
        publish_allowed_to: vec![],
        name: text(value, &["name"]),
        address: text(value, &["address"]).unwrap_or_default(),
        city: text(value, &["city"]).unwrap_or_default(),
        postal_code: text(value, &["postal_code", "postalCode"]),
        state: None,
        country: text(value, &["country"]).unwrap_or_default(),
        coordinates: GeoPoint {
            latitude: number(coordinates, &["latitude"]).unwrap_or(f64::NAN),
            longitude: number(coordinates, &["longitude"]).unwrap_or(f64::NAN),
        },
        related_locations: vec![],
        parking_type: None,
        evses,
        directions: vec![],
        operator: field(value, &["operator"]).and_then(|op| text(op, &["name"])).map(|name| BusinessDetails {
            name,
            website: None,
            logo: None,
        }),
        suboperator: None,
        owner: None,
        facilities: vec![],
        time_zone: text(value, &["time_zone"]),
        opening_times: None,
        charging_when_closed: None,
        images: vec![],
        energy_mix: None,
        last_updated: Utc::now(),
    })
}

/// What the index accepts: valid, except that a misspelt time zone is tolerated.
fn indexable(location: &Location) -> bool {
    let mut without_zone = location.clone();
    without_zone.time_zone = None;
    without_zone.validate().is_ok()
}

/// Every location of every feed, with the number of objects that could not be read at all.
fn load_feeds() -> (Vec<Location>, usize) {
    let mut out = Vec::new();
    let mut unreadable = 0;
    let mut paths: Vec<_> = std::fs::read_dir(FEEDS).unwrap().map(|entry| entry.unwrap().path()).collect();
    paths.sort();
    for path in paths {
        let raw = std::fs::read_to_string(&path).unwrap();
        let json: Value = serde_json::from_str(raw.trim_start_matches('\u{feff}')).unwrap();
        let data = match json.get("data") {
            Some(data) => data.clone(),
            None => json,
        };
        let objects = match data {
            Value::Array(items) => items,
            object => vec![object],
        };
        let stem = path.file_stem().unwrap().to_string_lossy().to_ascii_uppercase();
        let vendor: String = stem.chars().rev().filter(char::is_ascii_alphabetic).take(3).collect();
        let default_party = PartyId::new(CountryCode::new("ZZ").unwrap(), PartyCode::new(&vendor).unwrap());
        for object in &objects {
            match location(object, &default_party) {
                Some(location) => out.push(location),
                None => unreadable += 1,
            }
        }
    }
    (out, unreadable)
}

#[test]
fn real_feeds_load_and_every_location_is_found_where_it_is() {
    let (locations, unreadable) = load_feeds();
    assert!(locations.len() >= 4_000, "{} locations, {unreadable} unreadable", locations.len());
    let index = SearchIndex::with_random_secret();
    let report = index.bulk_load(locations.clone());
    // Feeds carry some broken positions (missing, 0,0): those, and only those, are rejected.
    for (key, reason) in &report.rejected {
        println!("rejected {key}: {reason}");
    }
    assert!(report.rejected.len() < locations.len() / 20, "{} rejected", report.rejected.len());

    // The last copy of a key wins, as in the store.
    let mut accepted = std::collections::HashMap::new();
    let rejected: HashSet<&str> = report.rejected.iter().map(|(key, _)| key.as_str()).collect();
    for location in &locations {
        if indexable(location) {
            accepted.insert(location.key(), location);
        } else {
            assert!(rejected.contains(location.key().as_str()));
        }
    }
    assert_eq!(index.stats().locations, accepted.len());
    assert_eq!(index.stats().evses, accepted.values().map(|l| l.evses.len()).sum::<usize>());
    println!("{} locations, {} EVSEs indexed", accepted.len(), index.stats().evses);

    for (key, location) in &accepted {
        let query = SearchQuery {
            area: Some(Area::Radius { center: location.coordinates, radius_m: 25.0 }),
            location_id: Some(key.clone()),
            ..SearchQuery::default()
        };
        let page = index.search(&query, None).unwrap();
        assert_eq!(page.hits.len(), usize::from(location.publish), "{key}");
        if let Some(hit) = page.hits.first() {
            assert!(hit.distance_m.unwrap() < 0.01);
            assert_eq!(
                hit.location.total_evses as usize,
                location.evses.iter().filter(|e| e.status != EvseStatus::Removed).count()
            );
        }
    }

    // A world-wide count equals the published locations.
    let world = SearchQuery {
        area: Some(Area::BoundingBox { south: -90.0, west: -180.0, north: 90.0, east: 180.0 }),
        sort: SortBy::MaxPower,
        with_counts: true,
        ..SearchQuery::default()
    };
    let published = accepted.values().filter(|l| l.publish).count();
    assert_eq!(index.search(&world, None).unwrap().total, Some(published));
}

#[test]
fn real_evse_ids_are_found_in_any_spelling() {
    let (locations, _) = load_feeds();
    let index = SearchIndex::with_random_secret();
    index.bulk_load(locations.clone());
    // EVSE ids unique across the feeds (some CPOs reuse them), of published, valid locations.
    let mut owners: std::collections::HashMap<String, HashSet<String>> = std::collections::HashMap::new();
    for location in locations.iter().filter(|l| indexable(l)) {
        for evse in &location.evses {
            if let Some(id) = &evse.evse_id {
                owners.entry(normalize_evse_id(id)).or_default().insert(location.key());
            }
        }
    }
    let mut checked = 0;
    for location in locations.iter().filter(|l| indexable(l) && l.publish) {
        for evse in &location.evses {
            let Some(id) = &evse.evse_id else { continue };
            let normalized = normalize_evse_id(id);
            if normalized.is_empty() || owners[&normalized].len() != 1 {
                continue;
            }
            let spelled = id.to_lowercase().replace('*', "-");
            let query =
                SearchQuery { evse_id: Some(spelled.clone()), sort: SortBy::MaxPower, ..SearchQuery::default() };
            let page = index.search(&query, None).unwrap();
            let keys: Vec<String> = page.hits.iter().map(|h| h.location.key.to_string()).collect();
            assert_eq!(keys, [location.key()], "{spelled}");
            checked += 1;
        }
    }
    assert!(checked > 5_000, "{checked}");
}

#[test]
fn real_feeds_answer_text_queries_with_typos() {
    let (locations, _) = load_feeds();
    let index = SearchIndex::with_random_secret();
    index.bulk_load(locations.clone());
    // Fastned stations (2.1.1 feed) are named after their site; search with a typo near Arnhem.
    let arnhem = GeoPoint { latitude: 51.9851, longitude: 5.8987 };
    let query = SearchQuery {
        area: Some(Area::Radius { center: arnhem, radius_m: 30_000.0 }),
        text: Some("Arnhme".into()),
        sort: SortBy::Relevance,
        with_counts: true,
        ..SearchQuery::default()
    };
    let page = index.search(&query, None).unwrap();
    let expected = locations
        .iter()
        .filter(|l| indexable(l) && l.publish && arnhem.distance_m(&l.coordinates) <= 30_000.0)
        .filter(|l| {
            [&l.city, &l.address].iter().any(|t| t.to_lowercase().contains("arnhem"))
                || l.name.as_deref().is_some_and(|n| n.to_lowercase().contains("arnhem"))
        })
        .count();
    assert!(expected > 0);
    assert!(page.total.unwrap() >= expected, "{:?} < {expected}", page.total);
}
