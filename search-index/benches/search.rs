//! Criterion benchmarks of the engine on a synthetic city-dense dataset (200,000 EVSEs around a
//! grid of European cities). `emsp-bench` runs the full Europe-scale comparison.

// A benchmark with a broken fixture should stop loudly.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use emsp_domain::{
    Connector, ConnectorFormat, ConnectorId, ConnectorStandard, CountryCode, Evse, EvseStatus, EvseUid, GeoPoint,
    Location, LocationId, PartyCode, PartyId, PowerType,
};
use emsp_search_index::{Area, ClusterQuery, Current, Filters, Route, SearchIndex, SearchQuery, SortBy, Viewer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CITIES: &[(f64, f64, &str)] = &[
    (52.37, 4.90, "Amsterdam"),
    (51.92, 4.48, "Rotterdam"),
    (52.52, 13.40, "Berlin"),
    (48.86, 2.35, "Paris"),
    (51.51, -0.13, "London"),
    (48.14, 11.58, "Munich"),
    (50.85, 4.35, "Brussels"),
    (45.46, 9.19, "Milan"),
    (40.42, -3.70, "Madrid"),
    (59.91, 10.75, "Oslo"),
];

fn dataset(evses: usize) -> Vec<Location> {
    let mut rng = StdRng::seed_from_u64(3);
    let party = PartyId::new(CountryCode::new("NL").unwrap(), PartyCode::new("BEN").unwrap());
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    let mut count = 0;
    while count < evses {
        let (lat, lon, city) = CITIES[rng.random_range(0..CITIES.len())];
        let d = 0.3 * rng.random::<f64>().powi(2);
        let angle = rng.random::<f64>() * std::f64::consts::TAU;
        let n = out.len();
        let dc = rng.random_bool(0.25);
        let evse_count = rng.random_range(1..5);
        let evses = (0..evse_count)
            .map(|i| Evse {
                uid: EvseUid::new(format!("E{n}-{i}")).unwrap(),
                evse_id: Some(format!("NL*BEN*E{n}X{i}")),
                status: if rng.random_bool(0.6) { EvseStatus::Available } else { EvseStatus::Charging },
                status_schedule: vec![],
                capabilities: vec![],
                connectors: vec![Connector {
                    id: ConnectorId::new("1").unwrap(),
                    standard: if dc { ConnectorStandard::Iec62196T2Combo } else { ConnectorStandard::Iec62196T2 },
                    format: ConnectorFormat::Cable,
                    power_type: if dc { PowerType::Dc } else { PowerType::Ac3Phase },
                    max_voltage: 400,
                    max_amperage: 32,
                    max_electric_power: Some(if dc { 150_000 } else { 11_000 }),
                    tariff_ids: vec![],
                    terms_and_conditions: None,
                    last_updated: now,
                }],
                floor_level: None,
                coordinates: None,
                physical_reference: None,
                directions: vec![],
                parking_restrictions: vec![],
                images: vec![],
                last_updated: now,
            })
            .collect::<Vec<_>>();
        count += evses.len();
        out.push(Location {
            party: party.clone(),
            id: LocationId::new(format!("L{n}")).unwrap(),
            publish: true,
            publish_allowed_to: vec![],
            name: Some(format!("{city} Parking {}", n % 500)),
            address: format!("Hauptstrasse {}", n % 300),
            city: city.into(),
            postal_code: None,
            state: None,
            country: "NLD".into(),
            coordinates: GeoPoint { latitude: lat + d * angle.cos(), longitude: lon + d * angle.sin() * 1.6 },
            related_locations: vec![],
            parking_type: None,
            evses,
            directions: vec![],
            operator: None,
            suboperator: None,
            owner: None,
            facilities: vec![],
            time_zone: None,
            opening_times: None,
            charging_when_closed: None,
            images: vec![],
            energy_mix: None,
            last_updated: now,
        });
    }
    out
}

fn benches(c: &mut Criterion) {
    let locations = dataset(200_000);
    let index = SearchIndex::with_random_secret();
    c.bench_function("bulk_load_20k_evses", |b| {
        let small: Vec<Location> = locations.iter().take(8_000).cloned().collect();
        b.iter(|| SearchIndex::with_random_secret().bulk_load(small.clone()))
    });
    index.bulk_load(locations.clone());
    let amsterdam = GeoPoint { latitude: 52.37, longitude: 4.90 };
    let radius = SearchQuery {
        area: Some(Area::Radius { center: amsterdam, radius_m: 5_000.0 }),
        filters: Filters {
            connector_standards: vec![ConnectorStandard::Iec62196T2Combo],
            min_available: Some(1),
            ..Filters::default()
        },
        ..SearchQuery::default()
    };
    c.bench_function("radius_5km_2_filters", |b| b.iter(|| index.search(&radius, None).unwrap()));
    let counted = SearchQuery { with_counts: true, ..radius.clone() };
    c.bench_function("radius_5km_2_filters_with_counts", |b| b.iter(|| index.search(&counted, None).unwrap()));
    let knn = SearchQuery {
        area: Some(Area::Nearest { center: amsterdam, k: 10 }),
        filters: Filters { current: Some(Current::Dc), min_available: Some(1), ..Filters::default() },
        ..SearchQuery::default()
    };
    c.bench_function("knn_10_filters", |b| b.iter(|| index.search(&knn, None).unwrap()));
    let text = SearchQuery {
        area: Some(Area::Radius { center: amsterdam, radius_m: 10_000.0 }),
        text: Some("parkng 42".into()),
        sort: SortBy::Relevance,
        ..SearchQuery::default()
    };
    c.bench_function("text_10km", |b| b.iter(|| index.search(&text, None).unwrap()));
    let europe = ClusterQuery {
        south: 35.0,
        west: -11.0,
        north: 71.0,
        east: 40.0,
        zoom: 5,
        filters: None,
        viewer: Viewer::default(),
    };
    c.bench_function("clusters_europe_z5", |b| b.iter(|| index.clusters(&europe).unwrap()));
    let city = ClusterQuery { south: 52.31, west: 4.80, north: 52.43, east: 5.00, zoom: 12, ..europe.clone() };
    c.bench_function("clusters_city_z12", |b| b.iter(|| index.clusters(&city).unwrap()));
    let corridor = SearchQuery {
        area: Some(Area::Corridor {
            route: Route::Points(vec![
                amsterdam,
                GeoPoint { latitude: 50.85, longitude: 4.35 },
                GeoPoint { latitude: 48.86, longitude: 2.35 },
            ]),
            max_distance_m: 2_000.0,
        }),
        sort: SortBy::RoutePosition,
        ..SearchQuery::default()
    };
    c.bench_function("corridor_500km_2km", |b| b.iter(|| index.search(&corridor, None).unwrap()));
    let updates: Vec<(String, String, EvseStatus)> = (0..100_000)
        .map(|n| {
            let i = (n * 7919) % locations.len();
            let status = if n % 2 == 0 { EvseStatus::Available } else { EvseStatus::Charging };
            (format!("NL*BEN*L{i}"), format!("E{i}-0"), status)
        })
        .collect();
    let mut n = 0usize;
    c.bench_function("status_update", |b| {
        b.iter(|| {
            n = (n + 1) % updates.len();
            let (key, uid, status) = &updates[n];
            index.set_evse_status(key, uid, status).unwrap()
        })
    });
}

criterion_group! {
    name = search;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(search);
