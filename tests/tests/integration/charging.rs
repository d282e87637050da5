//! Charging from the app against the CPO simulator over real HTTP: start, command result, live
//! session updates through the subscription, stop, CDR and its cost; REJECTED, EVSE_OCCUPIED,
//! our own TIMEOUT followed by a late session, a CPO that is down, a duplicate CDR, a CDR for an
//! unknown session, and drivers who only see their own sessions.

use std::time::{Duration, Instant};

use async_graphql::futures_util::StreamExt;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use emsp_cpo_sim::{ChargingOptions, CommandOutcome, RunningSim, SimData, SimOptions};
use emsp_roaming::pull::{PullOptions, pull_partner};
use emsp_roaming::register_with_partner;
use emsp_store::PriceCheck;
use emsp_tests::{TestApp, TestBackend};
use serde_json::{Value, json};

struct Setup {
    app: TestApp,
    cpo: RunningSim,
    driver: Driver,
    charger: String,
    evse: String,
    connector: String,
}

struct Driver {
    token: String,
    id: String,
    email: String,
}

async fn gql(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("Authorization", format!("Bearer {token}"))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none")
}

async fn driver(app: &TestApp, email: &str) -> Driver {
    let body = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({
            "query": "mutation($e: String!) { register(email: $e, password: \"correct horse battery\") { accessToken user { id } } }",
            "variables": {"e": email},
        }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let payload = &body["data"]["register"];
    Driver {
        token: payload["accessToken"].as_str().unwrap().to_owned(),
        id: payload["user"]["id"].as_str().unwrap().to_owned(),
        email: email.to_owned(),
    }
}

/// A charging CPO simulator registered with `app` and pulled, and an EVSE of it that is free, with
/// a connector that has a tariff (so the CDR has a price to check): `(cpo, location id, EVSE uid,
/// connector id)`.
pub(crate) async fn charging_cpo(app: &TestApp) -> (RunningSim, String, String, String) {
    let cpo = emsp_cpo_sim::start(SimOptions {
        data: SimData::Generated { locations: 8 },
        seed: 11,
        charging: ChargingOptions {
            tick: Duration::from_millis(250),
            max_duration: Duration::from_secs(60),
            time_scale: 200.0,
            command_delay: Duration::from_millis(300),
            command_timeout_s: 2,
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let outcome =
        register_with_partner(&app.roaming(), "simulated CPO", &cpo.versions_url, &cpo.token_a).await.unwrap();
    pull_partner(&app.roaming(), &outcome.partner_id, &PullOptions { full: true, ..Default::default() }, &|_| {})
        .await
        .unwrap();
    let (location, evse, connector) = cpo
        .evses()
        .into_iter()
        .find_map(|(location_id, uid)| {
            let location = cpo.location(&location_id)?;
            let evse = location["evses"].as_array()?.iter().find(|e| e["uid"] == uid.as_str())?.clone();
            let connector = evse["connectors"].as_array()?.iter().find(|c| c["tariff_ids"][0].is_string())?.clone();
            (evse["status"] == "AVAILABLE").then(|| (location_id, uid, connector["id"].as_str().unwrap().to_owned()))
        })
        .expect("a free EVSE");
    (cpo, location, evse, connector)
}

async fn setup(backend: TestBackend) -> Option<Setup> {
    let app = TestApp::start(backend).await?;
    let (cpo, location, evse, connector) = charging_cpo(&app).await;
    let driver = driver(&app, "driver@example.com").await;
    Some(Setup { app, cpo, driver, charger: format!("NL*SIM*{location}"), evse, connector })
}

const START: &str = "mutation($c: ID!, $e: String!, $k: String) { startCharging(chargerId: $c, evseUid: $e, connectorId: $k) { id status failureReason failureMessage } }";
const SESSION: &str = "query($id: ID!) { chargingSession(id: $id) { id status failureReason energyKwh costExclVat costInclVat currency stopFailed cdr { id totalCostExclVat totalCostInclVat totalEnergyKwh currency } } }";
const STOP: &str = "mutation($id: ID!) { stopCharging(sessionId: $id) { id status } }";
const SUBSCRIBE: &str = "subscription($id: ID!) { chargingSession(id: $id) { id status energyKwh costExclVat cdr { totalCostExclVat totalEnergyKwh } } }";

async fn start(setup: &Setup, token: &str) -> Value {
    gql(&setup.app, token, START, json!({"c": setup.charger, "e": setup.evse, "k": setup.connector})).await
}

/// Polls the session until `check` holds.
async fn session_until(setup: &Setup, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let body = gql(&setup.app, &setup.driver.token, SESSION, json!({"id": id})).await;
        let session = body["data"]["chargingSession"].clone();
        if check(&session) {
            return session;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting for {what}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn claims(driver: &Driver) -> emsp_accounts::Claims {
    let now = chrono::Utc::now().timestamp();
    emsp_accounts::Claims {
        sub: driver.id.clone(),
        role: emsp_accounts::Role::Driver,
        email: driver.email.clone(),
        iss: "test".into(),
        aud: "emsp-api".into(),
        exp: now + 600,
        nbf: now,
        iat: now,
        jti: "test".into(),
    }
}

/// Sends what a CPO would, with the token the simulator uses with us.
async fn as_cpo(setup: &Setup, method: reqwest::Method, path: &str, body: &Value) -> reqwest::Response {
    let token = setup.cpo.received().peer.unwrap().token_theirs;
    setup
        .app
        .client
        .request(method, setup.app.url(path))
        .header("Authorization", format!("Token {}", STANDARD.encode(token)))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn start_live_stop_cdr(backend: TestBackend) {
    let Some(setup) = setup(backend).await else { return };
    let body = start(&setup, &setup.driver.token).await;
    let started = &body["data"]["startCharging"];
    // Usually REQUESTED (the CPO took the command, the charger has not answered yet); the result
    // may overtake the synchronous answer on a busy machine.
    assert!(["REQUESTED", "ACCEPTED", "CHARGING"].contains(&started["status"].as_str().unwrap()), "{body}");
    let id = started["id"].as_str().unwrap().to_owned();

    // Live updates through the subscription, in-process on the server's own schema.
    let request = async_graphql::Request::new(SUBSCRIBE)
        .variables(async_graphql::Variables::from_json(json!({"id": id})))
        .data(emsp_graphql::Viewer(claims(&setup.driver)));
    let mut stream = setup.app.schema().execute_stream(request);
    let mut statuses = Vec::new();
    let mut energies = Vec::new();
    let mut stopped = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Value::Null;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(15), stream.next()).await;
        let Ok(next) = next else {
            panic!("no update for 15 s after {statuses:?} {last}; the simulator has {:?}", setup.cpo.received().cdrs);
        };
        let Some(response) = next else { break };
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let session = response.data.into_json().unwrap()["chargingSession"].clone();
        let status = session["status"].as_str().unwrap().to_owned();
        if statuses.last() != Some(&status) {
            statuses.push(status.clone());
        }
        let kwh: f64 = session["energyKwh"].as_str().unwrap().parse().unwrap();
        energies.push(kwh);
        if status == "CHARGING" && kwh > 0.0 && !stopped && energies.iter().filter(|e| **e > 0.0).count() >= 2 {
            // Smart charging: the driver's preferences reach the CPO.
            let preferences = "mutation($id: ID!) { setChargingPreferences(sessionId: $id, preferences: {profile: GREEN, energyNeedKwh: 20.5, departureTime: \"2030-01-01T08:00:00Z\"}) }";
            let body = gql(&setup.app, &setup.driver.token, preferences, json!({"id": id})).await;
            assert_eq!(body["data"]["setChargingPreferences"], "ACCEPTED", "{body}");
            let sent = setup.cpo.received().commands.into_iter().find(|c| c.command == "CHARGING_PREFERENCES").unwrap();
            assert_eq!(sent.body["profile_type"], "GREEN");
            assert_eq!(sent.body["energy_need"], 20.5);
            assert_eq!(sent.body["departure_time"], "2030-01-01T08:00:00Z");
            let body = gql(&setup.app, &setup.driver.token, STOP, json!({"id": id})).await;
            assert_eq!(body["data"]["stopCharging"]["status"], "STOPPING", "{body}");
            stopped = true;
        }
        last = session;
        assert!(Instant::now() < deadline, "the session did not complete: {statuses:?}");
    }
    // The stream ended by itself once the session was completed with its CDR.
    assert_ne!(statuses.first().map(String::as_str), Some("COMPLETED"), "{statuses:?}");
    assert!(statuses.contains(&"CHARGING".to_owned()) && statuses.contains(&"STOPPING".to_owned()), "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("COMPLETED"), "{statuses:?}");
    assert!(energies.windows(2).all(|w| w[0] <= w[1]), "kWh never goes back: {energies:?}");

    // The CDR the simulator sent is the session's final cost.
    let received = setup.cpo.received();
    let cdr = received.cdrs.first().expect("the simulator sent a CDR");
    let session = session_until(&setup, &id, "the CDR", |s| s["cdr"].is_object()).await;
    let cost: f64 = session["cdr"]["totalCostExclVat"].as_str().unwrap().parse().unwrap();
    assert!((cost - cdr["total_cost"]["excl_vat"].as_f64().unwrap()).abs() < 1e-9, "{session} vs {cdr}");
    assert_eq!(session["costExclVat"], session["cdr"]["totalCostExclVat"]);
    assert_eq!(session["currency"], "EUR");
    assert_eq!(last["cdr"]["totalCostExclVat"], session["cdr"]["totalCostExclVat"]);
    let start_command = received.commands.iter().find(|c| c.command == "START_SESSION").unwrap();
    let response_url = start_command.body["response_url"].as_str().unwrap();
    assert!(response_url.starts_with(&setup.app.url("/ocpi/2.2.1/commands/START_SESSION/")), "{response_url}");
    assert!(start_command.body["authorization_reference"].is_string());
    assert_eq!(start_command.body["token"]["type"], "APP_USER");
    // Every command names the location's owner in the routing headers (a hub needs them).
    let sim_party = Some(("NL".to_owned(), "SIM".to_owned()));
    assert!(received.commands.len() >= 3, "{:?}", received.commands);
    assert!(received.commands.iter().all(|c| c.to == sim_party), "{:?}", received.commands);

    // Priced with our engine: the simulator's price agrees with ours.
    let store = setup.app.roaming().store.clone();
    let stored = store.get_cdr(&format!("NL*SIM*{}", cdr["id"].as_str().unwrap())).unwrap().unwrap();
    assert_eq!(stored.charging_id.as_deref(), Some(id.as_str()));
    assert_eq!(stored.price_check, PriceCheck::Match, "{:?}", stored.price_note);

    // mySessions lists it with its cost; another driver sees nothing of it.
    let body = gql(
        &setup.app,
        &setup.driver.token,
        "{ mySessions(first: 10) { nodes { id status cdr { totalCostExclVat } } hasNextPage } }",
        json!({}),
    )
    .await;
    let nodes = body["data"]["mySessions"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{body}");
    assert_eq!(nodes[0]["id"], id.as_str());
    assert_eq!(nodes[0]["cdr"]["totalCostExclVat"], session["cdr"]["totalCostExclVat"]);
    let other = driver(&setup.app, "other@example.com").await;
    let body = gql(&setup.app, &other.token, SESSION, json!({"id": id})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = gql(&setup.app, &other.token, STOP, json!({"id": id})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = gql(&setup.app, &other.token, "{ mySessions { nodes { id } } }", json!({})).await;
    assert_eq!(body["data"]["mySessions"]["nodes"], json!([]));
    let request = async_graphql::Request::new(SUBSCRIBE)
        .variables(async_graphql::Variables::from_json(json!({"id": id})))
        .data(emsp_graphql::Viewer(claims(&other)));
    let first = setup.app.schema().execute_stream(request).next().await.unwrap();
    assert_eq!(first.errors[0].extensions.as_ref().unwrap().get("code").unwrap().to_string(), "\"NOT_FOUND\"");
    // Stopping a completed session is refused.
    let body = gql(&setup.app, &setup.driver.token, STOP, json!({"id": id})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");

    // The same CDR again is a duplicate: same answer, nothing new.
    let path = "/ocpi/2.2.1/cdrs";
    let first_location = {
        let response = as_cpo(&setup, reqwest::Method::POST, path, cdr).await;
        assert_eq!(response.status(), 200);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status_code"], 1000, "{body}");
        location
    };
    assert_eq!(first_location, setup.app.url(&format!("/ocpi/2.2.1/cdrs/NL/SIM/{}", cdr["id"].as_str().unwrap())));
    let again = store.get_cdr(&stored.key).unwrap().unwrap();
    assert_eq!(again.received_at, stored.received_at, "not stored twice");
    // GET on the Location gives the CDR back as received.
    let token = setup.cpo.received().peer.unwrap().token_theirs;
    let fetched: Value = setup
        .app
        .client
        .get(&first_location)
        .header("Authorization", format!("Token {}", STANDARD.encode(token)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(&fetched["data"], cdr);

    // Pulling the CPO's sessions and CDRs finds the same ones: nothing new is stored.
    let partner = store.get_cdr(&stored.key).unwrap().unwrap().partner_id;
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let cdrs = emsp_roaming::sessions::pull_charging(&setup.app.roaming(), &partner, "cdrs", since).await.unwrap();
    assert_eq!((cdrs.received, cdrs.stored, cdrs.skipped), (1, 0, 0), "{cdrs:?}");
    let sessions =
        emsp_roaming::sessions::pull_charging(&setup.app.roaming(), &partner, "sessions", since).await.unwrap();
    assert_eq!((sessions.received, sessions.skipped), (1, 0), "{sessions:?}");
    let session = session_until(&setup, &id, "still completed", |s| s["status"] == "COMPLETED").await;
    assert_eq!(session["cdr"]["totalCostExclVat"], last["cdr"]["totalCostExclVat"]);

    // A CDR whose push never reached us is fetched by the next scheduled pull cycle.
    {
        use diesel::prelude::*;
        use emsp_store::schema::cdrs;
        let mut conn = store.conn().unwrap();
        let deleted = diesel::delete(cdrs::table.filter(cdrs::key.eq(&stored.key))).execute(&mut *conn).unwrap();
        assert_eq!(deleted, 1);
    }
    assert!(store.get_cdr(&stored.key).unwrap().is_none());
    emsp_roaming::pull::pull_all(&setup.app.roaming()).await;
    let pulled = store.get_cdr(&stored.key).unwrap().expect("the pull cycle brings the lost CDR back");
    assert_eq!(pulled.partner_id, partner);

    setup.cpo.stop().await;
    setup.app.stop().await;
}

#[tokio::test]
async fn start_live_stop_cdr_on_sqlite() {
    start_live_stop_cdr(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn start_live_stop_cdr_on_postgres() {
    start_live_stop_cdr(TestBackend::Postgres).await;
}

#[tokio::test]
async fn refused_starts_say_why() {
    let Some(setup) = setup(TestBackend::Sqlite).await else { return };
    // REJECTED in the synchronous answer.
    setup.cpo.faults().set_command_outcome(CommandOutcome::Rejected);
    let body = start(&setup, &setup.driver.token).await;
    assert_eq!(body["data"]["startCharging"]["status"], "FAILED", "{body}");
    assert_eq!(body["data"]["startCharging"]["failureReason"], "REJECTED");
    assert!(body["data"]["startCharging"]["failureMessage"].as_str().unwrap().contains("refused"));

    // EVSE_OCCUPIED in the asynchronous result.
    setup.cpo.faults().set_command_outcome(CommandOutcome::EvseOccupied);
    let body = start(&setup, &setup.driver.token).await;
    let id = body["data"]["startCharging"]["id"].as_str().unwrap().to_owned();
    let session = session_until(&setup, &id, "EVSE_OCCUPIED", |s| s["status"] == "FAILED").await;
    assert_eq!(session["failureReason"], "EVSE_OCCUPIED", "{session}");

    // Unknown chargers and EVSEs.
    let body =
        gql(&setup.app, &setup.driver.token, START, json!({"c": "NL*SIM*NOPE", "e": setup.evse, "k": null})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = gql(&setup.app, &setup.driver.token, START, json!({"c": setup.charger, "e": "NOPE", "k": null})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = gql(&setup.app, "", START, json!({"c": setup.charger, "e": setup.evse, "k": null})).await;
    assert_ne!(code(&body), "none", "anonymous starts are refused: {body}");

    // A CPO that is down.
    setup.cpo.faults().reset();
    let Setup { app, cpo, driver, charger, evse, connector } = setup;
    cpo.stop().await;
    let body = gql(&app, &driver.token, START, json!({"c": charger, "e": evse, "k": connector})).await;
    assert_eq!(body["data"]["startCharging"]["status"], "FAILED", "{body}");
    assert_eq!(body["data"]["startCharging"]["failureReason"], "CPO_UNREACHABLE");
    app.stop().await;
}

#[tokio::test]
async fn a_session_after_our_timeout_is_still_shown() {
    let Some(setup) = setup(TestBackend::Sqlite).await else { return };
    setup.cpo.faults().set_command_outcome(CommandOutcome::NoResult);
    let body = start(&setup, &setup.driver.token).await;
    let id = body["data"]["startCharging"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["data"]["startCharging"]["status"], "REQUESTED");
    let session = session_until(&setup, &id, "our TIMEOUT", |s| s["status"] == "FAILED").await;
    assert_eq!(session["failureReason"], "TIMEOUT", "{session}");

    // The CPO starts the session anyway and pushes it: accepted and shown.
    let command = setup.cpo.received().commands.into_iter().find(|c| c.command == "START_SESSION").unwrap();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let location_id = setup.charger.trim_start_matches("NL*SIM*").to_owned();
    let mut session = json!({
        "country_code": "NL", "party_id": "SIM", "id": "LATE-1",
        "start_date_time": now, "kwh": 1.5,
        "cdr_token": {"country_code": "NL", "party_id": "EMS", "uid": command.body["token"]["uid"], "type": "APP_USER", "contract_id": command.body["token"]["contract_id"]},
        "auth_method": "COMMAND", "authorization_reference": command.body["authorization_reference"],
        "location_id": location_id, "evse_uid": setup.evse, "connector_id": setup.connector,
        "currency": "EUR", "total_cost": {"excl_vat": 0.9, "incl_vat": 1.09},
        "status": "ACTIVE", "last_updated": now,
    });
    let response = as_cpo(&setup, reqwest::Method::PUT, "/ocpi/2.2.1/sessions/NL/SIM/LATE-1", &session).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_code"], 1000, "{body}");
    let shown = session_until(&setup, &id, "the late session", |s| s["status"] == "CHARGING").await;
    assert_eq!(shown["energyKwh"], "1.5");
    assert_eq!(shown["failureReason"], Value::Null);

    // A PATCH appends charging periods; an older PUT afterwards does not roll it back.
    let later = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = json!({"kwh": 3.0, "last_updated": later, "charging_periods": [{"start_date_time": now, "dimensions": [{"type": "ENERGY", "volume": 1.5}]}]});
    let body: Value = as_cpo(&setup, reqwest::Method::PATCH, "/ocpi/2.2.1/sessions/NL/SIM/LATE-1", &patch)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status_code"], 1000, "{body}");
    let patch = json!({"last_updated": later, "charging_periods": [{"start_date_time": later, "dimensions": [{"type": "ENERGY", "volume": 1.5}]}]});
    as_cpo(&setup, reqwest::Method::PATCH, "/ocpi/2.2.1/sessions/NL/SIM/LATE-1", &patch).await;
    let stored = setup.app.roaming().store.get_cpo_session("NL*SIM*LATE-1").unwrap().unwrap();
    assert_eq!(stored.session.charging_periods.len(), 2, "appended");
    session["kwh"] = json!(0.5);
    as_cpo(&setup, reqwest::Method::PUT, "/ocpi/2.2.1/sessions/NL/SIM/LATE-1", &session).await;
    let shown = session_until(&setup, &id, "kWh after the PATCH", |s| s["energyKwh"] == "3").await;
    assert_eq!(shown["status"], "CHARGING");
    let fetched: Value = as_cpo(&setup, reqwest::Method::GET, "/ocpi/2.2.1/sessions/NL/SIM/LATE-1", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["data"]["kwh"], 3.0, "{fetched}");

    // A PATCH of a session we never saw, and a session of a party that is not the sender's.
    let body: Value =
        as_cpo(&setup, reqwest::Method::PATCH, "/ocpi/2.2.1/sessions/NL/SIM/NOPE", &patch).await.json().await.unwrap();
    assert_eq!(body["status_code"], 2000, "{body}");
    let response = as_cpo(&setup, reqwest::Method::PUT, "/ocpi/2.2.1/sessions/DE/XYZ/LATE-1", &session).await;
    assert_eq!(response.status(), 403);

    // A CDR for a session nobody knows is stored for ops and answered normally.
    let cdr = json!({
        "country_code": "NL", "party_id": "SIM", "id": "CDR-ORPHAN", "start_date_time": now, "end_date_time": later,
        "session_id": "UNKNOWN-SESSION",
        "cdr_token": {"country_code": "NL", "party_id": "EMS", "uid": "SOMEONE", "type": "RFID", "contract_id": "NL-EMS-C99999999-X"},
        "auth_method": "WHITELIST",
        "cdr_location": {"id": location_id, "address": "a", "city": "c", "country": "NLD", "coordinates": {"latitude": "52.0", "longitude": "4.0"}, "evse_uid": setup.evse, "evse_id": "NL*SIM*E1", "connector_id": "1", "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE"},
        "currency": "EUR", "charging_periods": [{"start_date_time": now, "dimensions": [{"type": "ENERGY", "volume": 2}]}],
        "signed_data": {"encoding_method": "OCMF", "signed_values": [{"nature": "Start", "plain_data": "OCMF|{}", "signed_data": "MEUCIQ=="}]},
        "total_cost": {"excl_vat": 1.0, "incl_vat": 1.21}, "total_energy": 2, "total_time": 0.5, "last_updated": later,
    });
    let raw = cdr.to_string();
    let response = setup
        .app
        .client
        .post(setup.app.url("/ocpi/2.2.1/cdrs"))
        .header("Authorization", format!("Token {}", STANDARD.encode(setup.cpo.received().peer.unwrap().token_theirs)))
        .header("Content-Type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("location"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_code"], 1000, "{body}");
    let stored = setup.app.roaming().store.get_cdr("NL*SIM*CDR-ORPHAN").unwrap().unwrap();
    assert_eq!(stored.charging_id, None, "linked to no driver");
    assert_eq!(stored.raw, raw, "kept byte for byte, signed data included");
    assert_eq!(stored.price_check, PriceCheck::Unchecked, "{:?}", stored.price_note);
    // A CDR whose totals our tariff engine does not confirm is flagged.
    let mut wrong = cdr.clone();
    wrong["id"] = json!("CDR-WRONG");
    wrong["charging_periods"][0]["tariff_id"] = json!("AC-EUR");
    wrong["total_cost"] = json!({"excl_vat": 9.99, "incl_vat": 12.09});
    let body: Value = as_cpo(&setup, reqwest::Method::POST, "/ocpi/2.2.1/cdrs", &wrong).await.json().await.unwrap();
    assert_eq!(body["status_code"], 1000, "{body}");
    let flagged = setup.app.roaming().store.get_cdr("NL*SIM*CDR-WRONG").unwrap().unwrap();
    assert_eq!(flagged.price_check, PriceCheck::Mismatch, "{:?}", flagged.price_note);
    assert!(flagged.our_cost.is_some());

    // Ops review CDRs we could not confirm; drivers may not.
    let review = "{ cdrsToReview(check: UNCHECKED) { id priceCheck priceNote partnerId totalCostExclVat } }";
    let body = gql(&setup.app, &setup.driver.token, review, json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let store = setup.app.roaming().store.clone();
    tokio::task::spawn_blocking(move || {
        let accounts = emsp_accounts::Accounts::new(store, emsp_accounts::AuthConfig::default()).unwrap();
        accounts.create_user("ops@example.com", "operations password", None, emsp_accounts::Role::Ops).unwrap();
    })
    .await
    .unwrap();
    let login = "mutation { login(email: \"ops@example.com\", password: \"operations password\") { accessToken } }";
    let body: Value = setup
        .app
        .client
        .post(setup.app.url("/graphql"))
        .json(&json!({"query": login}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ops = body["data"]["login"]["accessToken"].as_str().unwrap().to_owned();
    let body = gql(&setup.app, &ops, review, json!({})).await;
    let listed = body["data"]["cdrsToReview"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["id"], "NL*SIM*CDR-ORPHAN");
    assert_eq!(listed[0]["priceCheck"], "UNCHECKED");
    assert!(listed[0]["priceNote"].is_string());

    // The driver's session is untouched by it.
    let shown = session_until(&setup, &id, "unchanged", |s| s["status"] == "CHARGING").await;
    assert_eq!(shown["cdr"], Value::Null);
    // A broken CDR is a 2001.
    let body: Value =
        as_cpo(&setup, reqwest::Method::POST, "/ocpi/2.2.1/cdrs", &json!({"id": "X"})).await.json().await.unwrap();
    assert_eq!(body["status_code"], 2001, "{body}");

    // A command result from the CPO for a command id we never issued.
    let body: Value = as_cpo(
        &setup,
        reqwest::Method::POST,
        "/ocpi/2.2.1/commands/START_SESSION/deadbeef",
        &json!({"result": "ACCEPTED"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["status_code"], 2000, "{body}");

    setup.cpo.stop().await;
    setup.app.stop().await;
}

/// The same session followed by an app over a real WebSocket (graphql-transport-ws): every
/// change arrives as `next`, and `complete` follows the CDR.
#[tokio::test]
async fn live_updates_over_a_websocket() {
    use super::subscriptions::{connect, receive, send};

    let Some(setup) = setup(TestBackend::Sqlite).await else { return };
    let body = start(&setup, &setup.driver.token).await;
    let id = body["data"]["startCharging"]["id"].as_str().unwrap().to_owned();
    let mut socket = connect(&setup.app).await;
    let auth =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", setup.driver.token)}});
    send(&mut socket, auth).await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    send(
        &mut socket,
        json!({"id": "c1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"id": id}}}),
    )
    .await;
    let mut statuses: Vec<String> = Vec::new();
    let mut stopped = false;
    loop {
        let message = receive(&mut socket).await;
        if message["type"] == "complete" {
            assert_eq!(message["id"], "c1");
            break;
        }
        assert_eq!(message["type"], "next", "{message}");
        let session = &message["payload"]["data"]["chargingSession"];
        let status = session["status"].as_str().unwrap().to_owned();
        let kwh: f64 = session["energyKwh"].as_str().unwrap().parse().unwrap();
        if status == "CHARGING" && kwh > 0.0 && !stopped {
            let body = gql(&setup.app, &setup.driver.token, STOP, json!({"id": id})).await;
            assert_eq!(body["data"]["stopCharging"]["status"], "STOPPING", "{body}");
            stopped = true;
        }
        if status == "COMPLETED" && session["cdr"].is_object() {
            assert_eq!(session["costExclVat"], session["cdr"]["totalCostExclVat"]);
        }
        if statuses.last() != Some(&status) {
            statuses.push(status);
        }
        assert!(statuses.len() <= 6, "{statuses:?}");
    }
    assert!(statuses.contains(&"STOPPING".to_owned()), "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("COMPLETED"), "{statuses:?}");

    // Another driver's session over the socket: NOT_FOUND, like over HTTP.
    let other = driver(&setup.app, "nosy@example.com").await;
    let mut socket = connect(&setup.app).await;
    let auth = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", other.token)}});
    send(&mut socket, auth).await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    send(
        &mut socket,
        json!({"id": "x", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"id": id}}}),
    )
    .await;
    let error = receive(&mut socket).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "NOT_FOUND");
    setup.cpo.stop().await;
    setup.app.stop().await;
}

const COMMAND: &str = "query($id: ID!) { chargingCommand(id: $id) { id command response result reservationId } }";

async fn command_until(setup: &Setup, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let body = gql(&setup.app, &setup.driver.token, COMMAND, json!({"id": id})).await;
        let command = body["data"]["chargingCommand"].clone();
        if check(&command) {
            return command;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "timed out: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A reservation the driver charges on reads USED (and is no longer open).
#[tokio::test]
async fn a_reservation_is_used_when_the_driver_charges_there() {
    let Some(setup) = setup(TestBackend::Sqlite).await else { return };
    let until = (chrono::Utc::now() + chrono::Duration::minutes(15)).to_rfc3339();
    let body = gql(
        &setup.app,
        &setup.driver.token,
        "mutation($c: ID!, $e: String, $u: DateTime!) { reserve(chargerId: $c, evseUid: $e, until: $u) { id reservationId } }",
        json!({"c": setup.charger, "e": setup.evse, "u": until}),
    )
    .await;
    let reserved = &body["data"]["reserve"];
    let done = command_until(&setup, reserved["id"].as_str().unwrap(), |c| c["result"] != "PENDING").await;
    assert_eq!(done["result"], "ACCEPTED", "{done}");
    const RESERVATIONS: &str = "query($open: Boolean) { myReservations(open: $open) { id status } }";
    let body = gql(&setup.app, &setup.driver.token, RESERVATIONS, json!({})).await;
    assert_eq!(body["data"]["myReservations"][0]["status"], "ACTIVE", "{body}");

    let started = start(&setup, &setup.driver.token).await;
    let id = started["data"]["startCharging"]["id"].as_str().unwrap_or_else(|| panic!("{started}")).to_owned();
    session_until(&setup, &id, "charging on the reserved EVSE", |s| s["status"] == "CHARGING").await;
    let body = gql(&setup.app, &setup.driver.token, RESERVATIONS, json!({})).await;
    assert_eq!(body["data"]["myReservations"][0]["id"], reserved["reservationId"], "{body}");
    assert_eq!(body["data"]["myReservations"][0]["status"], "USED", "{body}");
    let body = gql(&setup.app, &setup.driver.token, RESERVATIONS, json!({"open": true})).await;
    assert_eq!(body["data"]["myReservations"], json!([]), "a used reservation is not open: {body}");
    setup.cpo.stop().await;
    setup.app.stop().await;
}

/// Reservations and unlocking: RESERVE_NOW, CANCEL_RESERVATION (an unknown one too) and
/// UNLOCK_CONNECTOR, each with its result from the charger.
#[tokio::test]
async fn reserve_cancel_and_unlock() {
    let Some(setup) = setup(TestBackend::Sqlite).await else { return };
    let until = (chrono::Utc::now() + chrono::Duration::minutes(15)).to_rfc3339();
    let body = gql(
        &setup.app,
        &setup.driver.token,
        "mutation($c: ID!, $e: String, $u: DateTime!) { reserve(chargerId: $c, evseUid: $e, until: $u) { id command response result reservationId } }",
        json!({"c": setup.charger, "e": setup.evse, "u": until}),
    )
    .await;
    let reserved = &body["data"]["reserve"];
    assert_eq!(
        (reserved["command"].as_str(), reserved["response"].as_str()),
        (Some("RESERVE_NOW"), Some("ACCEPTED")),
        "{body}"
    );
    let reservation = reserved["reservationId"].as_str().unwrap().to_owned();
    let done = command_until(&setup, reserved["id"].as_str().unwrap(), |c| c["result"] != "PENDING").await;
    assert_eq!(done["result"], "ACCEPTED", "{done}");
    let sent = setup.cpo.received().commands.into_iter().find(|c| c.command == "RESERVE_NOW").unwrap();
    assert_eq!(sent.body["reservation_id"], reservation.as_str());
    assert_eq!(sent.body["evse_uid"], setup.evse.as_str());

    const RESERVATIONS: &str = "query($open: Boolean) { myReservations(open: $open) { id commandId chargerId locationId evseUid expiresAt status failureReason failureMessage } }";
    let body = gql(&setup.app, &setup.driver.token, RESERVATIONS, json!({"open": true})).await;
    let listed = body["data"]["myReservations"].as_array().unwrap_or_else(|| panic!("{body}")).clone();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(
        (listed[0]["id"].as_str(), listed[0]["status"].as_str(), listed[0]["chargerId"].as_str()),
        (Some(reservation.as_str()), Some("ACTIVE"), Some(setup.charger.as_str())),
        "{body}"
    );
    assert_eq!(listed[0]["evseUid"], setup.evse.as_str());
    let expires = chrono::DateTime::parse_from_rfc3339(listed[0]["expiresAt"].as_str().unwrap()).unwrap();
    let asked = chrono::DateTime::parse_from_rfc3339(&until).unwrap();
    assert!((expires - asked).num_seconds().abs() <= 1, "{expires} vs {asked}");
    let other = driver(&setup.app, "nosy@example.com").await;
    let body = gql(&setup.app, &other.token, RESERVATIONS, json!({})).await;
    assert_eq!(body["data"]["myReservations"], json!([]), "another driver sees none: {body}");

    let cancel = "mutation($r: String!) { cancelReservation(reservationId: $r) { id command response result } }";
    let body = gql(&setup.app, &setup.driver.token, cancel, json!({"r": reservation})).await;
    let cancelled = &body["data"]["cancelReservation"];
    assert_eq!(cancelled["response"], "ACCEPTED", "{body}");
    let done = command_until(&setup, cancelled["id"].as_str().unwrap(), |c| c["result"] != "PENDING").await;
    assert_eq!(done["result"], "ACCEPTED", "{done}");
    let body = gql(&setup.app, &setup.driver.token, RESERVATIONS, json!({})).await;
    assert_eq!(body["data"]["myReservations"][0]["status"], "CANCELLED", "{body}");
    let body = gql(&setup.app, &setup.driver.token, RESERVATIONS, json!({"open": true})).await;
    assert_eq!(body["data"]["myReservations"], json!([]), "a cancelled reservation is not open: {body}");
    let body = gql(&setup.app, &setup.driver.token, cancel, json!({"r": "999"})).await;
    assert_eq!(code(&body), "NOT_FOUND", "not a reservation of this driver: {body}");
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let body = gql(
        &setup.app,
        &setup.driver.token,
        "mutation($c: ID!, $u: DateTime!) { reserve(chargerId: $c, until: $u) { id } }",
        json!({"c": setup.charger, "u": past}),
    )
    .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");

    let body = gql(
        &setup.app,
        &setup.driver.token,
        "mutation($c: ID!, $e: String!, $k: String!) { unlockConnector(chargerId: $c, evseUid: $e, connectorId: $k) { id response result } }",
        json!({"c": setup.charger, "e": setup.evse, "k": setup.connector}),
    )
    .await;
    let unlock = &body["data"]["unlockConnector"];
    let done = command_until(&setup, unlock["id"].as_str().unwrap(), |c| c["result"] != "PENDING").await;
    assert_eq!(done["result"], "ACCEPTED", "{done}");
    let other = driver(&setup.app, "someone@example.com").await;
    let body = gql(&setup.app, &other.token, COMMAND, json!({"id": unlock["id"]})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    // RESERVE_NOW, CANCEL_RESERVATION and UNLOCK_CONNECTOR are routed to the location's owner.
    let commands = setup.cpo.received().commands;
    let routed: Vec<(&str, Option<(String, String)>)> =
        commands.iter().map(|c| (c.command.as_str(), c.to.clone())).collect();
    let sim = Some(("NL".to_owned(), "SIM".to_owned()));
    for name in ["RESERVE_NOW", "CANCEL_RESERVATION", "UNLOCK_CONNECTOR"] {
        assert!(routed.iter().any(|(c, _)| *c == name), "{name} sent: {routed:?}");
    }
    assert!(routed.iter().all(|(_, to)| *to == sim), "{routed:?}");
    setup.cpo.stop().await;
    setup.app.stop().await;
}

/// An OCPI 2.1.1 CPO: its START_SESSION has no connector or reference, its results are
/// CommandResponses, its sessions and CDRs name the driver by contract id only.
#[tokio::test]
async fn charging_at_an_ocpi_2_1_1_cpo() {
    let Some(app) = TestApp::start(TestBackend::Sqlite).await else { return };
    let cpo = emsp_cpo_sim::start(SimOptions {
        party: ("DE".into(), "OLD".into()),
        version: emsp_cpo_sim::SimVersion::V2_1_1,
        data: SimData::Generated { locations: 5 },
        seed: 5,
        charging: ChargingOptions {
            tick: Duration::from_millis(250),
            max_duration: Duration::from_millis(1500),
            time_scale: 200.0,
            command_delay: Duration::from_millis(200),
            command_timeout_s: 2,
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let outcome = register_with_partner(&app.roaming(), "old CPO", &cpo.versions_url, &cpo.token_a).await.unwrap();
    assert_eq!(outcome.version, "2.1.1");
    pull_partner(&app.roaming(), &outcome.partner_id, &PullOptions { full: true, ..Default::default() }, &|_| {})
        .await
        .unwrap();
    let (location, evse) = cpo
        .evses()
        .into_iter()
        .find(|(location_id, uid)| {
            cpo.location(location_id).is_some_and(|l| {
                l["evses"].as_array().unwrap().iter().any(|e| e["uid"] == uid.as_str() && e["status"] == "AVAILABLE")
            })
        })
        .unwrap();
    let driver = driver(&app, "old@example.com").await;
    let body = gql(&app, &driver.token, START, json!({"c": format!("DE*OLD*{location}"), "e": evse, "k": null})).await;
    let id = body["data"]["startCharging"]["id"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    let command = cpo.received().commands.into_iter().find(|c| c.command == "START_SESSION").unwrap();
    assert!(command.body.get("authorization_reference").is_none(), "{}", command.body);
    assert!(command.body["token"]["auth_id"].is_string(), "{}", command.body);
    // The session runs out by itself (max_duration) and the CDR completes it.
    let started = Instant::now();
    let session = loop {
        let body = gql(&app, &driver.token, SESSION, json!({"id": id})).await;
        let session = body["data"]["chargingSession"].clone();
        if session["cdr"].is_object() {
            break session;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no CDR: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(session["status"], "COMPLETED");
    let cdr = cpo.received().cdrs.first().cloned().unwrap();
    let ours: f64 = session["cdr"]["totalCostExclVat"].as_str().unwrap().parse().unwrap();
    assert!((ours - cdr["total_cost"].as_f64().unwrap()).abs() < 1e-9, "{session} vs {cdr}");
    cpo.stop().await;
    app.stop().await;
}
