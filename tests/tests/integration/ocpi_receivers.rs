//! CPOs push locations, EVSEs, connectors and tariffs to our receiver endpoints.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use emsp_domain::fixtures::{location, tariff};
use emsp_ocpi::v2_2_1;
use emsp_store::{Endpoint, PartnerParty, Registration};
use emsp_tests::{TestApp, TestBackend};
use serde_json::{Value, json};

const CPO_TOKEN: &str = "token-c-of-the-cpo";

/// A CPO (NL*ABC) registered with us, as after a credentials handshake.
fn registered_cpo(app: &TestApp) {
    let store = app.db().store();
    let (partner, _token_a) = emsp_roaming::invite_partner(store, "Example CPO").unwrap();
    let endpoints: Vec<Endpoint> = vec![];
    store
        .register_partner(
            &partner.id,
            &Registration {
                versions_url: "http://127.0.0.1:1/ocpi/versions",
                version: "2.2.1",
                endpoints: &endpoints,
                incoming_token: CPO_TOKEN,
                outgoing_token: "token-b",
            },
        )
        .unwrap();
    let party = PartnerParty {
        country_code: "NL".into(),
        party_id: "ABC".into(),
        role: "CPO".into(),
        name: None,
        status: "CONNECTED".into(),
    };
    store.set_partner_parties(&partner.id, &[party]).unwrap();
}

async fn call(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("Authorization", format!("Token {}", STANDARD.encode(CPO_TOKEN)))
        .header("X-Request-ID", "r1")
        .header("X-Correlation-ID", "c1");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

const LOC: &str = "/ocpi/2.2.1/locations/NL/ABC/LOC1";

async fn receivers(backend: TestBackend) {
    use reqwest::Method;
    let Some(app) = TestApp::start(backend).await else { return };
    registered_cpo(&app);
    let store = app.db().store();
    let wire = serde_json::to_value(v2_2_1::locations::from_domain(&location("LOC1", 52.3791, 4.9003))).unwrap();

    let (status, body) = call(&app, Method::PUT, LOC, Some(wire.clone())).await;
    assert_eq!((status, body["status_code"].as_u64()), (200, Some(1000)), "{body}");
    let stored = store.get_location("NL*ABC*LOC1").unwrap().expect("stored");
    assert_eq!(stored.evses.len(), 2);

    let (status, body) = call(&app, Method::GET, LOC, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["id"], "LOC1");
    assert_eq!(body["data"]["evses"][0]["uid"], "2");

    // The hot path: an EVSE status PATCH.
    let patch = json!({"status": "CHARGING", "last_updated": "2026-01-02T03:04:05Z"});
    let (status, body) = call(&app, Method::PATCH, &format!("{LOC}/2"), Some(patch)).await;
    assert_eq!((status, body["status_code"].as_u64()), (200, Some(1000)), "{body}");
    let (_, evse) = call(&app, Method::GET, &format!("{LOC}/2"), None).await;
    assert_eq!(evse["data"]["status"], "CHARGING");
    let stored = store.get_location("NL*ABC*LOC1").unwrap().unwrap();
    assert_eq!(stored.last_updated.to_rfc3339(), "2026-01-02T03:04:05+00:00", "the parent is bumped");

    // Any other field goes through the full reader; the parents are bumped.
    let patch = json!({"max_electric_power": 350000, "last_updated": "2026-01-03T00:00:00Z"});
    let (status, body) = call(&app, Method::PATCH, &format!("{LOC}/2/1"), Some(patch)).await;
    assert_eq!(status, 200, "{body}");
    let stored = store.get_location("NL*ABC*LOC1").unwrap().unwrap();
    assert_eq!(stored.evses[0].connectors[0].max_electric_power, Some(350_000));
    assert_eq!(stored.evses[0].last_updated.to_rfc3339(), "2026-01-03T00:00:00+00:00");

    // A new EVSE by PUT, then a location PATCH.
    let mut new_evse = wire["evses"][0].clone();
    new_evse["uid"] = json!("3");
    new_evse["evse_id"] = json!("NL*ABC*E3");
    let (status, body) = call(&app, Method::PUT, &format!("{LOC}/3"), Some(new_evse)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) =
        call(&app, Method::PATCH, LOC, Some(json!({"name": "Renamed", "last_updated": "2026-01-04T00:00:00Z"}))).await;
    assert_eq!(status, 200);
    let stored = store.get_location("NL*ABC*LOC1").unwrap().unwrap();
    assert_eq!((stored.evses.len(), stored.name.as_deref()), (3, Some("Renamed")));

    // Bad input: an OCPI envelope with 2001 and nothing stored.
    let (status, body) = call(&app, Method::PATCH, &format!("{LOC}/2"), Some(json!({"status": "AVAILABLE"}))).await;
    assert_eq!((status, body["status_code"].as_u64()), (400, Some(2001)), "PATCH needs last_updated: {body}");
    let mut null_island = wire.clone();
    null_island["id"] = json!("LOC2");
    null_island["coordinates"] = json!({"latitude": "0.0", "longitude": "0.0"});
    let (status, body) = call(&app, Method::PUT, "/ocpi/2.2.1/locations/NL/ABC/LOC2", Some(null_island)).await;
    assert_eq!((status, body["status_code"].as_u64()), (400, Some(2001)), "{body}");
    assert!(store.get_location("NL*ABC*LOC2").unwrap().is_none());
    let (status, body) = call(&app, Method::PUT, "/ocpi/2.2.1/locations/NL/ABC/OTHER", Some(wire.clone())).await;
    assert_eq!((status, body["status_code"].as_u64()), (400, Some(2001)), "id must match the URL: {body}");
    let (status, _) = call(&app, Method::PUT, "/ocpi/2.2.1/locations/DE/XYZ/LOC1", Some(wire.clone())).await;
    assert_eq!(status, 403, "another party's objects cannot be written");
    let (status, body) = call(&app, Method::GET, "/ocpi/2.2.1/locations/NL/ABC/NOPE", None).await;
    assert_eq!((status, body["status_code"].as_u64()), (404, Some(2003)));
    let (status, body) = call(
        &app,
        Method::PATCH,
        "/ocpi/2.2.1/locations/NL/ABC/NOPE/1",
        Some(json!({"status": "AVAILABLE", "last_updated": "2026-01-02T03:04:05Z"})),
    )
    .await;
    assert_eq!((status, body["status_code"].as_u64()), (404, Some(2003)), "{body}");

    // Tariffs.
    let wire_tariff = serde_json::to_value(v2_2_1::tariffs::from_domain(&tariff("T1", "0.39"))).unwrap();
    let (status, body) = call(&app, Method::PUT, "/ocpi/2.2.1/tariffs/NL/ABC/T1", Some(wire_tariff)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&app, Method::GET, "/ocpi/2.2.1/tariffs/NL/ABC/T1", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["elements"][0]["price_components"][0]["price"], 0.39);
    let (status, _) = call(&app, Method::DELETE, "/ocpi/2.2.1/tariffs/NL/ABC/T1", None).await;
    assert_eq!(status, 200);
    assert!(store.get_tariff("NL*ABC*T1").unwrap().is_none());
    let (status, _) = call(&app, Method::DELETE, "/ocpi/2.2.1/tariffs/NL/ABC/T1", None).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn receivers_on_sqlite() {
    receivers(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn receivers_on_postgres() {
    receivers(TestBackend::Postgres).await;
}

/// Token A opens only the handshake.
#[tokio::test]
async fn token_a_is_refused_on_modules() {
    let Some(app) = TestApp::start(TestBackend::Sqlite).await else { return };
    let (_, token_a) = emsp_roaming::invite_partner(app.db().store(), "invited").unwrap();
    let response = app
        .client
        .get(app.url(LOC))
        .header("Authorization", format!("Token {}", STANDARD.encode(&token_a)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_code"], 2000);
    app.stop().await;
}

/// A hub reports its parties with HubClientInfo and may write objects of any of them; a CPO may not
/// push client information.
#[tokio::test]
async fn hub_client_info_and_writes_through_a_hub() {
    use reqwest::Method;
    let Some(app) = TestApp::start(TestBackend::Sqlite).await else { return };
    registered_cpo(&app);
    let info = json!({"party_id": "XYZ", "country_code": "DE", "role": "CPO", "status": "OFFLINE", "last_updated": "2026-01-01T00:00:00Z"});
    let (status, _) = call(&app, Method::PUT, "/ocpi/2.2.1/hubclientinfo/DE/XYZ", Some(info.clone())).await;
    assert_eq!(status, 403, "a CPO is not a hub");

    let store = app.db().store();
    let hub = store.list_partners().unwrap().pop().unwrap();
    let hub_role = PartnerParty {
        country_code: "NL".into(),
        party_id: "HUB".into(),
        role: "HUB".into(),
        name: None,
        status: "CONNECTED".into(),
    };
    store.upsert_partner_party(&hub.id, &hub_role).unwrap();
    let (status, body) = call(&app, Method::PUT, "/ocpi/2.2.1/hubclientinfo/DE/XYZ", Some(info)).await;
    assert_eq!(status, 200, "{body}");
    let parties = store.partner_parties(&hub.id).unwrap();
    assert!(parties.iter().any(|p| p.party_id == "XYZ" && p.status == "OFFLINE"), "{parties:?}");
    let (status, body) = call(&app, Method::GET, "/ocpi/2.2.1/hubclientinfo/DE/XYZ", None).await;
    assert_eq!((status, body["data"]["status"].as_str()), (200, Some("OFFLINE")));

    let mut foreign = location("LOC9", 50.9375, 6.9603);
    foreign.party = emsp_domain::PartyId::parse("DE*XYZ").unwrap();
    let wire = serde_json::to_value(v2_2_1::locations::from_domain(&foreign)).unwrap();
    let (status, body) = call(&app, Method::PUT, "/ocpi/2.2.1/locations/DE/XYZ/LOC9", Some(wire)).await;
    assert_eq!(status, 200, "a hub writes for the parties behind it: {body}");
    assert!(store.get_location("DE*XYZ*LOC9").unwrap().is_some());
    app.stop().await;
}

/// Every OCPI answer carries `X-Request-ID` and `X-Correlation-ID`, errors that never reach a
/// handler included: the caller's ids are echoed, missing ones are made up.
#[tokio::test]
async fn error_answers_carry_the_request_and_correlation_ids() {
    let Some(app) = TestApp::start(TestBackend::Sqlite).await else { return };
    registered_cpo(&app);
    let ids = |response: &reqwest::Response| {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        (header("x-request-id"), header("x-correlation-id"))
    };

    // A bad token: 401 from the extractor.
    let response = app
        .client
        .get(app.url(LOC))
        .header("Authorization", "Token bm90LWEtdG9rZW4=")
        .header("X-Request-ID", "req-401")
        .header("X-Correlation-ID", "corr-401")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(ids(&response), (Some("req-401".into()), Some("corr-401".into())));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_code"], 2000);

    // Malformed JSON: 2001 from the JsonConfig error handler.
    let response = app
        .client
        .put(app.url(LOC))
        .header("Authorization", format!("Token {}", STANDARD.encode(CPO_TOKEN)))
        .header("Content-Type", "application/json")
        .header("X-Request-ID", "req-2001")
        .header("X-Correlation-ID", "corr-2001")
        .body("{\"id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(ids(&response), (Some("req-2001".into()), Some("corr-2001".into())));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_code"], 2001);

    // No ids sent: both are made up, and they are not the same id.
    let response = app
        .client
        .put(app.url(LOC))
        .header("Authorization", format!("Token {}", STANDARD.encode(CPO_TOKEN)))
        .header("Content-Type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    let (request_id, correlation_id) = ids(&response);
    let (request_id, correlation_id) = (request_id.expect("a request id"), correlation_id.expect("a correlation id"));
    assert!(request_id.len() >= 16 && correlation_id.len() >= 16, "{request_id} {correlation_id}");
    assert_ne!(request_id, correlation_id);

    // An unknown path and an unknown method: OCPI envelopes with both ids.
    let response =
        app.client.get(app.url("/ocpi/2.2.1/nonsense/1")).header("X-Correlation-ID", "corr-404").send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(ids(&response).1.as_deref(), Some("corr-404"));
    assert!(ids(&response).0.is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_code"], 2000);
    let response = app
        .client
        .delete(app.url(LOC))
        .header("Authorization", format!("Token {}", STANDARD.encode(CPO_TOKEN)))
        .header("X-Correlation-ID", "corr-405")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(ids(&response).1.as_deref(), Some("corr-405"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_code"], 2000);

    // A success echoes them too.
    let response = app
        .client
        .get(app.url("/ocpi/versions"))
        .header("Authorization", format!("Token {}", STANDARD.encode(CPO_TOKEN)))
        .header("X-Request-ID", "req-ok")
        .header("X-Correlation-ID", "corr-ok")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(ids(&response), (Some("req-ok".into()), Some("corr-ok".into())));
    app.stop().await;
}

const CHARGERS_NEAR_COLOGNE: &str = r#"query($filter: ChargerFilter) {
  chargers(near: {latitude: 50.9375, longitude: 6.9603}, radiusMeters: 2000, filter: $filter, first: 10) {
    totalCount
    edges { node { id stale availability { available total } evses { uid status } } }
  }
}"#;

/// What the driver API shows near Cologne: (all chargers, those with an EVSE available now).
async fn chargers_near_cologne(app: &TestApp) -> (Value, u64) {
    let search = |filter: Value| {
        let request = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({"query": CHARGERS_NEAR_COLOGNE, "variables": {"filter": filter}}));
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            assert!(body.get("errors").is_none(), "{body}");
            body
        }
    };
    let all = search(Value::Null).await;
    let available = search(json!({"minAvailable": 1})).await;
    (all["data"]["chargers"]["edges"][0]["node"].clone(), available["data"]["chargers"]["totalCount"].as_u64().unwrap())
}

async fn eventually_shows(app: &TestApp, expected_stale: bool) -> (Value, u64) {
    let started = std::time::Instant::now();
    loop {
        let (node, available) = chargers_near_cologne(app).await;
        if node["stale"] == json!(expected_stale) {
            return (node, available);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "search never showed stale={expected_stale}: {node}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A hub reports a party OFFLINE: search marks its chargers stale with status UNKNOWN and leaves
/// them out of "available now"; that survives a restart; CONNECTED restores the live statuses.
async fn a_party_reported_offline_is_stale(backend: TestBackend) {
    use reqwest::Method;
    let Some(app) = TestApp::start(backend).await else { return };
    registered_cpo(&app);
    let store = app.db().store();
    let hub = store.list_partners().unwrap().pop().unwrap();
    let hub_role = PartnerParty {
        country_code: "NL".into(),
        party_id: "HUB".into(),
        role: "HUB".into(),
        name: None,
        status: "CONNECTED".into(),
    };
    store.upsert_partner_party(&hub.id, &hub_role).unwrap();
    let client_info = |status: &str| json!({"party_id": "XYZ", "country_code": "DE", "role": "CPO", "status": status, "last_updated": "2026-01-01T00:00:00Z"});
    let (status, body) =
        call(&app, Method::PUT, "/ocpi/2.2.1/hubclientinfo/DE/XYZ", Some(client_info("CONNECTED"))).await;
    assert_eq!(status, 200, "{body}");
    let mut cologne = location("LOC9", 50.9375, 6.9603);
    cologne.party = emsp_domain::PartyId::parse("DE*XYZ").unwrap();
    cologne.evses[0].status = emsp_domain::EvseStatus::Available;
    let wire = serde_json::to_value(v2_2_1::locations::from_domain(&cologne)).unwrap();
    let (status, body) = call(&app, Method::PUT, "/ocpi/2.2.1/locations/DE/XYZ/LOC9", Some(wire)).await;
    assert_eq!(status, 200, "{body}");

    let (node, available) = eventually_shows(&app, false).await;
    assert_eq!(node["id"], "DE*XYZ*LOC9");
    assert_eq!((node["availability"]["available"].as_u64(), available), (Some(1), 1), "{node}");

    let (status, body) =
        call(&app, Method::PUT, "/ocpi/2.2.1/hubclientinfo/DE/XYZ", Some(client_info("OFFLINE"))).await;
    assert_eq!(status, 200, "{body}");
    let (node, available) = eventually_shows(&app, true).await;
    let statuses: Vec<&str> = node["evses"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == "UNKNOWN"), "{node}");
    assert_eq!((node["availability"]["available"].as_u64(), available), (Some(0), 0), "{node}");

    // A restart loads the stored party status.
    let app = app.restart().await;
    let (node, available) = eventually_shows(&app, true).await;
    assert_eq!((node["availability"]["available"].as_u64(), available), (Some(0), 0), "{node}");

    let (status, body) =
        call(&app, Method::PUT, "/ocpi/2.2.1/hubclientinfo/DE/XYZ", Some(client_info("CONNECTED"))).await;
    assert_eq!(status, 200, "{body}");
    let (node, available) = eventually_shows(&app, false).await;
    let statuses: Vec<&str> = node["evses"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert!(statuses.contains(&"AVAILABLE") && !statuses.contains(&"UNKNOWN"), "{node}");
    assert_eq!((node["availability"]["available"].as_u64(), available), (Some(1), 1), "{node}");
    app.stop().await;
}

#[tokio::test]
async fn a_party_reported_offline_is_stale_on_sqlite() {
    a_party_reported_offline_is_stale(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn a_party_reported_offline_is_stale_on_postgres() {
    a_party_reported_offline_is_stale(TestBackend::Postgres).await;
}
