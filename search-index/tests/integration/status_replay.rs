//! Replays the real chargecloud status stream of Cologne (`../shared/data/status-events`) into the
//! index and checks, event after event, that searches see exactly the statuses last written.

use std::collections::HashMap;

use chrono::Utc;
use emsp_domain::{
    BusinessDetails, Connector, ConnectorFormat, ConnectorId, ConnectorStandard, EvseStatus, EvseUid, GeoPoint,
    Location, LocationId, PowerType,
};
use emsp_search_index::{Area, Filters, SearchIndex, SearchQuery, SortBy};

use crate::common::{evse, party};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/status-events");

fn rows(file: &str) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(format!("{DATA}/{file}")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(';').map(str::to_owned).collect();
    lines
        .map(|line| header.iter().cloned().zip(line.split(';').map(|v| v.trim_matches('"').to_owned())).collect())
        .collect()
}

/// Stations as locations, their charge points as EVSEs (uid = chargecloud id, evse_id = printed id).
fn locations() -> (Vec<Location>, HashMap<String, (String, String)>) {
    let mut connectors: HashMap<String, Vec<Connector>> = HashMap::new();
    for row in rows("connectors.csv") {
        let kw: f64 = row["max_power"].parse().unwrap_or(11.0);
        let list = connectors.entry(row["id_cp"].clone()).or_default();
        list.push(Connector {
            id: ConnectorId::new((list.len() + 1).to_string()).unwrap(),
            standard: ConnectorStandard::parse(&row["standard"]),
            format: ConnectorFormat::parse(&row["format"]),
            power_type: PowerType::parse(&row["power_type"]),
            max_voltage: row["voltage"].parse().unwrap_or(400),
            max_amperage: row["ampere"].parse().unwrap_or(32),
            max_electric_power: Some((kw * 1000.0) as u32),
            tariff_ids: vec![],
            terms_and_conditions: None,
            last_updated: Utc::now(),
        });
    }
    let mut evses: HashMap<String, Vec<emsp_domain::Evse>> = HashMap::new();
    let mut owners = HashMap::new();
    for row in rows("charging_points.csv") {
        let mut e = evse(&row["uid"], EvseStatus::Unknown, connectors.remove(&row["id"]).unwrap_or_default());
        e.uid = EvseUid::new(row["uid"].clone()).unwrap();
        e.evse_id = Some(row["id"].clone());
        owners.insert(row["id"].clone(), (format!("DE*REK*{}", row["id_cs"]), row["uid"].clone()));
        evses.entry(row["id_cs"].clone()).or_default().push(e);
    }
    let mut out = Vec::new();
    for row in rows("charging_stations.csv") {
        let (Ok(latitude), Ok(longitude)) = (row["latitude"].parse::<f64>(), row["longitude"].parse::<f64>()) else {
            continue;
        };
        let mut location = crate::common::location(&row["id"], latitude, longitude, 0);
        location.party = party("DE", "REK");
        location.id = LocationId::new(row["id"].clone()).unwrap();
        location.name = Some(row["name"].clone());
        location.address = row["address"].clone();
        location.city = row["city"].clone();
        location.postal_code = Some(row["postal_code"].clone());
        location.country = "DEU".into();
        location.time_zone = Some("Europe/Berlin".into());
        location.operator = Some(BusinessDetails { name: row["operator_name"].clone(), website: None, logo: None });
        location.evses = evses.remove(&row["id"]).unwrap_or_default();
        out.push(location);
    }
    (out, owners)
}

#[test]
fn replayed_status_stream_is_visible_to_the_next_query() {
    let (locations, owners) = locations();
    let index = SearchIndex::with_random_secret();
    let report = index.bulk_load(locations.clone());
    assert!(report.locations > 1_000, "{report:?}");
    let cologne = GeoPoint { latitude: 50.9375, longitude: 6.9603 };
    let available_near_cologne = |index: &SearchIndex| -> Vec<String> {
        let query = SearchQuery {
            area: Some(Area::Radius { center: cologne, radius_m: 30_000.0 }),
            filters: Filters { min_available: Some(1), ..Filters::default() },
            sort: SortBy::MaxPower,
            page_size: 100,
            with_counts: true,
            ..SearchQuery::default()
        };
        let mut keys = Vec::new();
        let mut query = query;
        loop {
            let page = index.search(&query, None).unwrap();
            keys.extend(page.hits.iter().map(|h| h.location.key.to_string()));
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        keys.sort();
        keys
    };

    let mut events = rows("status_cps.csv");
    events.sort_by(|a, b| a["timestamp"].cmp(&b["timestamp"]));
    let mut model: HashMap<String, bool> = HashMap::new();
    let mut applied = 0;
    for (n, event) in events.iter().enumerate() {
        let Some((key, uid)) = owners.get(&event["id"]) else { continue };
        if index.set_evse_status(key, uid, &EvseStatus::parse(&event["status"])).is_err() {
            continue;
        }
        applied += 1;
        model.insert(event["id"].clone(), event["status"] == "AVAILABLE");
        if n % 1_000 == 0 || n + 1 == events.len() {
            let mut expected: Vec<String> = owners
                .iter()
                .filter(|(evse_id, (key, _))| {
                    model.get(*evse_id) == Some(&true)
                        && locations.iter().any(|l| &l.key() == key && cologne.distance_m(&l.coordinates) <= 30_000.0)
                })
                .map(|(_, (key, _))| key.clone())
                .collect();
            expected.sort();
            expected.dedup();
            assert_eq!(available_near_cologne(&index), expected, "after event {n}");
        }
    }
    assert!(applied > 7_000, "{applied}");
    assert!(available_near_cologne(&index).len() > 100);
}
