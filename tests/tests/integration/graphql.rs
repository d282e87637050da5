//! The driver API over HTTP: search with filters and sorts, pagination, clusters, corridors,
//! details, price estimates, and the protections (limits, errors with codes, rate limit).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use emsp_domain::fixtures::{connector, evse, location, tariff};
use emsp_domain::{ConnectorStandard, EvseStatus, Location, PowerType};
use emsp_tests::{TestApp, TestBackend};
use serde_json::{Value, json};

const ROWS: usize = 15;

/// 225 chargers on a grid over Amsterdam: every third a 150 kW CCS, every third a 22 kW Type 2,
/// every third a 50 kW CHAdeMO; one in four occupied.
fn grid() -> Vec<Location> {
    let mut locations = Vec::new();
    for row in 0..ROWS {
        for column in 0..ROWS {
            let i = row * ROWS + column;
            let mut loc = location(&format!("G{i:03}"), 52.30 + row as f64 * 0.01, 4.80 + column as f64 * 0.012);
            let (standard, power_type, watts) = match i % 3 {
                0 => (ConnectorStandard::Iec62196T2Combo, PowerType::Dc, 150_000),
                1 => (ConnectorStandard::Iec62196T2, PowerType::Ac3Phase, 22_000),
                _ => (ConnectorStandard::Chademo, PowerType::Dc, 50_000),
            };
            let status = if i.is_multiple_of(4) { EvseStatus::Charging } else { EvseStatus::Available };
            loc.evses = vec![evse("1", status, vec![connector("1", standard, power_type, watts)])];
            loc.name = Some(format!("Grid {i} {}", if i.is_multiple_of(5) { "Supermarket" } else { "Street" }));
            locations.push(loc);
        }
    }
    locations
}

async fn app_with_grid(backend: TestBackend, settings: &[(&str, &str)]) -> Option<TestApp> {
    let db = TestApp::database(backend)?;
    for loc in grid() {
        db.store().upsert_location(&loc, None).unwrap();
    }
    db.store().upsert_tariff(&tariff("T1", "0.39"), None).unwrap();
    let app = TestApp::start_configured(db, settings).await;
    let index = app.index();
    let started = Instant::now();
    while index.stats().locations < ROWS * ROWS {
        assert!(started.elapsed() < Duration::from_secs(15), "index did not load");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(app)
}

async fn gql(app: &TestApp, query: &str, variables: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none")
}

const NEAR: &str = r#"query($first: Int!, $after: String, $filter: ChargerFilter) {
  chargers(near: {latitude: 52.37, longitude: 4.88}, radiusMeters: 5000, filter: $filter, first: $first, after: $after) {
    totalCount
    facets { connectorStandards { value count } powerBands { value count } }
    pageInfo { hasNextPage endCursor }
    edges { node { id distanceMeters maxPowerKw availability { available total } } }
  }
}"#;

async fn search_and_pages(backend: TestBackend) {
    let Some(app) = app_with_grid(backend, &[]).await else { return };

    // A filter: DC, at least one available, at least 100 kW.
    let filter = json!({"powerType": "DC", "minAvailable": 1, "minPowerKw": 100});
    let (status, body) = gql(&app, NEAR, json!({"first": 100, "filter": filter})).await;
    assert_eq!(status, 200, "{body}");
    let found = &body["data"]["chargers"];
    let edges = found["edges"].as_array().unwrap();
    assert!(!edges.is_empty());
    let mut last = 0.0;
    for edge in edges {
        let node = &edge["node"];
        assert_eq!(node["maxPowerKw"], 150.0);
        assert!(node["availability"]["available"].as_u64().unwrap() >= 1);
        let distance = node["distanceMeters"].as_f64().unwrap();
        assert!(distance <= 5000.0 && distance >= last, "sorted by distance within the radius");
        last = distance;
    }
    // The same by brute force over the grid.
    let center = emsp_domain::GeoPoint::new(52.37, 4.88).unwrap();
    let expected = grid()
        .iter()
        .enumerate()
        .filter(|(i, l)| i % 3 == 0 && i % 4 != 0 && l.coordinates.distance_m(&center) <= 5000.0)
        .count();
    assert_eq!(found["totalCount"], expected as u64);
    assert_eq!(edges.len(), expected);

    // Every page, without duplicates or gaps.
    let (_, first_page) = gql(&app, NEAR, json!({"first": 7})).await;
    let total = first_page["data"]["chargers"]["totalCount"].as_u64().unwrap() as usize;
    let facets = &first_page["data"]["chargers"]["facets"];
    let standards: u64 =
        facets["connectorStandards"].as_array().unwrap().iter().map(|f| f["count"].as_u64().unwrap()).sum();
    assert_eq!(standards as usize, total, "one standard per charger here");
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let (_, page) = gql(&app, NEAR, json!({"first": 7, "after": after})).await;
        let chargers = &page["data"]["chargers"];
        seen.extend(chargers["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()));
        if !chargers["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = chargers["pageInfo"]["endCursor"].clone();
    }
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (total, total));

    // Text, sorted by power; and a charger's details with its tariff.
    let (_, body) = gql(
        &app,
        r#"{ chargers(text: "supermarkt", sort: POWER, first: 50) { totalCount edges { node { name maxPowerKw } } } }"#,
        json!({}),
    )
    .await;
    let names: Vec<&str> = body["data"]["chargers"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    assert!(!names.is_empty() && names.iter().all(|n| n.contains("Supermarket")), "typo-tolerant: {names:?}");
    let detail = r#"{ charger(id: "nl*abc*g000") { id evses { uid status connectors { standard maxPowerKw tariffIds } } tariffs { id summary } openNow timeZone } }"#;
    let (_, body) = gql(&app, detail, json!({})).await;
    let charger = &body["data"]["charger"];
    assert_eq!(charger["id"], "NL*ABC*G000", "{body}");
    assert_eq!(charger["evses"][0]["status"], "CHARGING");
    assert_eq!(charger["tariffs"][0]["summary"], "0.47 EUR/kWh", "0.39 + 21 % VAT");
    assert_eq!(charger["timeZone"], "Europe/Amsterdam");
    assert_eq!(charger["openNow"], true);
    let (_, body) = gql(&app, r#"{ charger(id: "NL*ABC*NOPE") { id } }"#, json!({})).await;
    assert!(body["data"]["charger"].is_null());

    // A price estimate: 30 kWh at 0.39 = 11.70, with 21 % VAT 14.157.
    let (_, body) = gql(
        &app,
        r#"{ priceEstimate(chargerId: "NL*ABC*G000", energyKwh: 30) { totalExclVat totalInclVat currency tariffId } }"#,
        json!({}),
    )
    .await;
    let estimate = &body["data"]["priceEstimate"];
    let amount = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
    assert_eq!(amount(&estimate["totalExclVat"]), 11.70, "{body}");
    assert_eq!(amount(&estimate["totalInclVat"]), 14.157);
    assert_eq!(estimate["currency"], "EUR");
    app.stop().await;
}

#[tokio::test]
async fn search_and_pages_on_sqlite() {
    search_and_pages(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn search_and_pages_on_postgres() {
    search_and_pages(TestBackend::Postgres).await;
}

#[tokio::test]
async fn maps_and_routes() {
    let Some(app) = app_with_grid(TestBackend::Sqlite, &[]).await else { return };
    let clusters = r#"{ chargerClusters(bbox: {south: 52.0, west: 4.0, north: 53.0, east: 6.0}, zoom: 8) { clusterId count availability { available total } expansionZoom charger { id } } }"#;
    let (_, body) = gql(&app, clusters, json!({})).await;
    let features = body["data"]["chargerClusters"].as_array().unwrap();
    assert!(features.len() < 20, "zoomed out, the grid collapses into a few markers: {}", features.len());
    let counted: u64 = features.iter().map(|f| f["count"].as_u64().unwrap()).sum();
    assert_eq!(counted as usize, ROWS * ROWS, "every charger in exactly one marker");
    let (_, body) = gql(&app, &clusters.replace("zoom: 8", "zoom: 18"), json!({})).await;
    assert_eq!(body["data"]["chargerClusters"].as_array().unwrap().len(), ROWS * ROWS, "zoomed in, one marker each");

    let corridor = r#"{ chargers(route: {points: [{latitude: 52.30, longitude: 4.80}, {latitude: 52.44, longitude: 4.80}], widthMeters: 400}, sort: DISTANCE, first: 100) { totalCount edges { node { id distanceMeters routePositionMeters } } } }"#;
    let (_, body) = gql(&app, corridor, json!({})).await;
    let chargers = &body["data"]["chargers"];
    assert_eq!(chargers["totalCount"], ROWS as u64, "the first column of the grid lies on the route: {body}");
    for edge in chargers["edges"].as_array().unwrap() {
        assert!(edge["node"]["distanceMeters"].as_f64().unwrap() < 200.0);
        assert!(edge["node"]["routePositionMeters"].as_f64().is_some());
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_input_and_protections() {
    let Some(app) = app_with_grid(TestBackend::Sqlite, &[("EMSP_RATE_LIMIT_PER_MINUTE", "12")]).await else { return };
    let (_, body) = gql(
        &app,
        r#"{ chargers(near: {latitude: 52.37, longitude: 4.88}, radiusMeters: 0) { totalCount } }"#,
        json!({}),
    )
    .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let (_, body) = gql(&app, r#"{ chargers(near: {latitude: 91, longitude: 4.88}) { totalCount } }"#, json!({})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let (_, body) =
        gql(&app, r#"{ chargers(near: {latitude: 52.37, longitude: 4.88}, first: 101) { totalCount } }"#, json!({}))
            .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let (_, body) = gql(&app, r#"{ chargers(text: "x", after: "forged-cursor") { totalCount } }"#, json!({})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let (_, body) =
        gql(&app, r#"{ priceEstimate(chargerId: "NL*ABC*NOPE", energyKwh: 10) { totalExclVat } }"#, json!({})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let (_, body) = gql(&app, r#"{ __schema { types { name } } }"#, json!({})).await;
    assert!(body["data"]["__schema"].is_null(), "introspection is off by default: {body}");

    // One operation per request: a batch is refused.
    let batch = json!([{"query": "{ charger(id: \"NL*ABC*G000\") { id } }"}, {"query": "{ charger(id: \"NL*ABC*G001\") { id } }"}]);
    let response = app.client.post(app.url("/graphql")).json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 400);

    // GraphiQL is off unless configured.
    assert_eq!(app.client.get(app.url("/graphql")).send().await.unwrap().status(), 404);

    // The rate limit: 12 per minute from one address, the 13th is refused with RATE_LIMITED.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let (status, body) = gql(&app, r#"{ charger(id: "NL*ABC*G000") { id } }"#, json!({})).await;
        statuses.push((status, code(&body).to_owned()));
    }
    assert_eq!(statuses.last().unwrap(), &(429, "RATE_LIMITED".to_owned()), "{statuses:?}");
    app.stop().await;
}
