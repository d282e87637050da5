//! Commands and the sessions they start: CommandResult, Session PUT/PATCH, CDR, and the command
//! faults.

use std::time::Duration;

use emsp_cpo_sim::{CommandOutcome, RunningSim, SimOptions, SwipeOutcome};
use reqwest::Method;
use serde_json::{Value, json};

use crate::contract;
use crate::emsp::{EmspConfig, TestEmsp};
use crate::helpers::{Answer, auth, available_evse, call, module_url, options, register, sim};
use crate::tokens::token;

async fn command(sim: &RunningSim, token_c: &str, name: &str, body: Value) -> Answer {
    let url = format!("{}/{name}", module_url(sim, "commands"));
    call(Method::POST, &url, Some(&auth(token_c)), Some(&body)).await
}

fn start_body(emsp: &TestEmsp, sim: &RunningSim, reference: &str) -> Value {
    let (location_id, evse_uid, connector_id) = available_evse(sim);
    json!({
        "response_url": format!("{}/ocpi/2.2.1/commands/START_SESSION/{reference}", emsp.base),
        "token": token("app-1"),
        "location_id": location_id,
        "evse_uid": evse_uid,
        "connector_id": connector_id,
        "authorization_reference": reference,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_session_to_cdr() {
    let sim = sim(options(10)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let c = register(&sim, &emsp).await;
    let body = start_body(&emsp, &sim, "ref-1");
    let (location_id, evse_uid) =
        (body["location_id"].as_str().unwrap().to_owned(), body["evse_uid"].as_str().unwrap().to_owned());

    let response = command(&sim, &c, "START_SESSION", body).await;
    assert_eq!(response.code(), 1000);
    assert_eq!(response.body["data"]["result"], "ACCEPTED");
    assert_eq!(response.body["data"]["timeout"], 30);

    let results = emsp.wait_for("POST", "/ocpi/2.2.1/commands/START_SESSION/ref-1", 1).await;
    assert_eq!(results[0].body["result"], "ACCEPTED");
    let puts = emsp.wait_for("PUT", "/ocpi/2.2.1/sessions/NL/SIM/", 1).await;
    let session = &puts[0].body;
    let session_id = session["id"].as_str().unwrap().to_owned();
    assert_eq!(puts[0].path, format!("/ocpi/2.2.1/sessions/NL/SIM/{session_id}"));
    assert_eq!(session["status"], "ACTIVE");
    contract::assert_fields(session, contract::SESSION_2_2_1, "Session");
    contract::assert_fields(&session["cdr_token"], contract::CDR_TOKEN_2_2_1, "CdrToken");
    assert_eq!(session["location_id"], location_id.as_str());
    assert_eq!(session["evse_uid"], evse_uid.as_str());
    assert_eq!(session["cdr_token"]["uid"], "app-1");
    assert_eq!(session["cdr_token"]["contract_id"], "DE-TST-C12345678-X");
    assert_eq!(session["auth_method"], "COMMAND");
    assert_eq!(session["authorization_reference"], "ref-1");
    assert_eq!(puts[0].header("ocpi-to-party-id"), Some("TST"));

    // The EVSE is CHARGING, pushed and served.
    let pushed = emsp.wait_for("PATCH", &format!("/ocpi/2.2.1/locations/NL/SIM/{location_id}/{evse_uid}"), 1).await;
    assert_eq!(pushed[0].body["status"], "CHARGING");
    let served = sim.location(&location_id).unwrap();
    let evse = served["evses"].as_array().unwrap().iter().find(|e| e["uid"] == evse_uid.as_str()).unwrap();
    assert_eq!(evse["status"], "CHARGING");

    let patches = emsp.wait_for("PATCH", &format!("/ocpi/2.2.1/sessions/NL/SIM/{session_id}"), 3).await;
    let kwh: Vec<f64> = patches.iter().map(|p| p.body["kwh"].as_f64().unwrap()).collect();
    assert!(kwh.windows(2).all(|w| w[1] > w[0]), "kWh grows: {kwh:?}");
    for patch in &patches {
        assert_eq!(patch.body["charging_periods"].as_array().unwrap().len(), 1, "one new period per PATCH");
        assert!(patch.body["last_updated"].is_string());
        assert!(patch.body["total_cost"]["excl_vat"].is_number());
    }

    let stop = command(
        &sim,
        &c,
        "STOP_SESSION",
        json!({"response_url": format!("{}/ocpi/2.2.1/commands/STOP_SESSION/stop-1", emsp.base), "session_id": session_id}),
    )
    .await;
    assert_eq!(stop.body["data"]["result"], "ACCEPTED");
    let results = emsp.wait_for("POST", "/ocpi/2.2.1/commands/STOP_SESSION/stop-1", 1).await;
    assert_eq!(results[0].body["result"], "ACCEPTED");
    let cdrs = emsp.wait_for("POST", "/ocpi/2.2.1/cdrs", 1).await;
    let cdr = &cdrs[0].body;
    let all_patches = emsp.matching("PATCH", &format!("/ocpi/2.2.1/sessions/NL/SIM/{session_id}"));
    let last = &all_patches.last().unwrap().body;
    assert_eq!(last["status"], "COMPLETED");
    assert!(last["end_date_time"].is_string());

    contract::assert_fields(cdr, contract::CDR_2_2_1, "CDR");
    contract::assert_fields(&cdr["cdr_location"], contract::CDR_LOCATION_2_2_1, "CdrLocation");
    contract::assert_fields(&cdr["cdr_token"], contract::CDR_TOKEN_2_2_1, "CdrToken");
    assert_eq!(cdr["session_id"], session_id.as_str());
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(cdr["end_date_time"].as_str().unwrap() <= now.as_str(), "no timestamps in the future");
    assert!(cdr["start_date_time"].as_str().unwrap() <= cdr["end_date_time"].as_str().unwrap());
    assert_eq!(cdr["country_code"], "NL");
    assert_eq!(cdr["cdr_location"]["id"], location_id.as_str());
    assert_eq!(cdr["cdr_location"]["evse_uid"], evse_uid.as_str());
    assert!(cdr["cdr_location"]["connector_standard"].is_string());
    let energy = cdr["total_energy"].as_f64().unwrap();
    assert_eq!(energy, last["kwh"].as_f64().unwrap());
    assert!(energy > 0.0);
    let tariff = &cdr["tariffs"][0];
    let per_kwh = tariff["elements"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["price_components"].as_array().unwrap().clone())
        .find(|c| c["type"] == "ENERGY")
        .unwrap()["price"]
        .as_f64()
        .unwrap();
    let energy_cost = cdr["total_energy_cost"]["excl_vat"].as_f64().unwrap();
    assert!((energy_cost - energy * per_kwh).abs() < 0.01, "{energy_cost} vs {energy} × {per_kwh}");
    assert!(cdr["total_cost"]["excl_vat"].as_f64().unwrap() >= energy_cost);
    assert_eq!(cdr["currency"], tariff["currency"]);

    // The EVSE is free again, and the session is visible to tests and to GET /sessions.
    let pushed = emsp.wait_for("PATCH", &format!("/ocpi/2.2.1/locations/NL/SIM/{location_id}/{evse_uid}"), 2).await;
    assert_eq!(pushed.last().unwrap().body["status"], "AVAILABLE");
    let received = sim.received();
    assert_eq!(received.sessions[0]["status"], "COMPLETED");
    assert_eq!(received.cdrs.len(), 1);
    assert_eq!(
        received.commands.iter().map(|c| c.command.as_str()).collect::<Vec<_>>(),
        ["START_SESSION", "STOP_SESSION"]
    );
    let listed = crate::helpers::get(&module_url(&sim, "sessions"), &c).await;
    assert_eq!(listed.body["data"][0]["id"], session_id.as_str());

    // The session is gone for a second STOP.
    let again = command(
        &sim,
        &c,
        "STOP_SESSION",
        json!({"response_url": format!("{}/ocpi/2.2.1/commands/STOP_SESSION/stop-2", emsp.base), "session_id": session_id}),
    )
    .await;
    assert_eq!(again.body["data"]["result"], "UNKNOWN_SESSION");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_nobody_stops_end_after_max_duration() {
    let mut options = options(5);
    options.charging.max_duration = Duration::from_millis(350);
    let sim = sim(options).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let c = register(&sim, &emsp).await;
    let response = command(&sim, &c, "START_SESSION", start_body(&emsp, &sim, "auto")).await;
    assert_eq!(response.body["data"]["result"], "ACCEPTED");
    let cdrs = emsp.wait_for("POST", "/ocpi/2.2.1/cdrs", 1).await;
    assert!(cdrs[0].body["total_energy"].as_f64().unwrap() > 0.0);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_faults_rejected_no_result_and_evse_occupied() {
    let sim = sim(SimOptions { ..options(5) }).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let c = register(&sim, &emsp).await;

    sim.faults().set_command_outcome(CommandOutcome::Rejected);
    let rejected = command(&sim, &c, "START_SESSION", start_body(&emsp, &sim, "rejected")).await;
    assert_eq!(rejected.body["data"]["result"], "REJECTED");

    sim.faults().set_command_outcome(CommandOutcome::NoResult);
    let silent = command(&sim, &c, "START_SESSION", start_body(&emsp, &sim, "silent")).await;
    assert_eq!(silent.body["data"]["result"], "ACCEPTED");

    sim.faults().set_command_outcome(CommandOutcome::EvseOccupied);
    let occupied = command(&sim, &c, "START_SESSION", start_body(&emsp, &sim, "occupied")).await;
    assert_eq!(occupied.body["data"]["result"], "ACCEPTED");
    let results = emsp.wait_for("POST", "/ocpi/2.2.1/commands/START_SESSION/occupied", 1).await;
    assert_eq!(results[0].body["result"], "EVSE_OCCUPIED");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(emsp.matching("POST", "/ocpi/2.2.1/commands/START_SESSION/rejected").is_empty());
    assert!(emsp.matching("POST", "/ocpi/2.2.1/commands/START_SESSION/silent").is_empty());
    assert!(emsp.matching("PUT", "/ocpi/2.2.1/sessions").is_empty(), "no session was started");

    sim.faults().reset();
    let unknown = command(
        &sim,
        &c,
        "START_SESSION",
        json!({"response_url": "http://x", "token": token("a"), "location_id": "NOPE"}),
    )
    .await;
    assert_eq!((unknown.status, unknown.code()), (404, 2003));
    let missing = command(&sim, &c, "STOP_SESSION", json!({"session_id": "x"})).await;
    assert_eq!(missing.code(), 2001);
    let other = command(&sim, &c, "SET_CHARGING_PROFILE", json!({"response_url": "http://x"})).await;
    assert_eq!(other.body["data"]["result"], "NOT_SUPPORTED");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tokens_reservations_and_unlock() {
    let sim = sim(options(5)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let c = register(&sim, &emsp).await;

    // A token the EMSP pushed as invalid is refused by the "charger".
    let mut blocked = token("blocked");
    blocked["valid"] = json!(false);
    let url = format!("{}/DE/TST/blocked?type=APP_USER", module_url(&sim, "tokens"));
    assert_eq!(call(Method::PUT, &url, Some(&auth(&c)), Some(&blocked)).await.code(), 1000);
    let mut body = start_body(&emsp, &sim, "blocked");
    body["token"] = blocked;
    assert_eq!(command(&sim, &c, "START_SESSION", body).await.body["data"]["result"], "ACCEPTED");
    let results = emsp.wait_for("POST", "/ocpi/2.2.1/commands/START_SESSION/blocked", 1).await;
    assert_eq!(results[0].body["result"], "REJECTED");

    let (location_id, evse_uid, connector_id) = available_evse(&sim);
    let reserve = json!({"response_url": format!("{}/ocpi/2.2.1/commands/RESERVE_NOW/r1", emsp.base),
        "token": token("app-1"), "expiry_date": "2030-01-01T00:00:00Z", "reservation_id": "r1",
        "location_id": location_id, "evse_uid": evse_uid});
    assert_eq!(command(&sim, &c, "RESERVE_NOW", reserve).await.body["data"]["result"], "ACCEPTED");
    assert_eq!(emsp.wait_for("POST", "/ocpi/2.2.1/commands/RESERVE_NOW/r1", 1).await[0].body["result"], "ACCEPTED");
    let pushed = emsp.wait_for("PATCH", &format!("/ocpi/2.2.1/locations/NL/SIM/{location_id}/{evse_uid}"), 1).await;
    assert_eq!(pushed[0].body["status"], "RESERVED");
    let cancel = json!({"response_url": format!("{}/ocpi/2.2.1/commands/CANCEL_RESERVATION/r1", emsp.base), "reservation_id": "r1"});
    assert_eq!(command(&sim, &c, "CANCEL_RESERVATION", cancel.clone()).await.body["data"]["result"], "ACCEPTED");
    assert_eq!(
        emsp.wait_for("POST", "/ocpi/2.2.1/commands/CANCEL_RESERVATION/r1", 1).await[0].body["result"],
        "ACCEPTED"
    );
    command(&sim, &c, "CANCEL_RESERVATION", cancel).await;
    let twice = emsp.wait_for("POST", "/ocpi/2.2.1/commands/CANCEL_RESERVATION/r1", 2).await;
    assert_eq!(twice[1].body["result"], "UNKNOWN_RESERVATION");

    let unlock = json!({"response_url": format!("{}/ocpi/2.2.1/commands/UNLOCK_CONNECTOR/u1", emsp.base),
        "location_id": location_id, "evse_uid": evse_uid, "connector_id": connector_id});
    assert_eq!(command(&sim, &c, "UNLOCK_CONNECTOR", unlock).await.body["data"]["result"], "ACCEPTED");
    assert_eq!(
        emsp.wait_for("POST", "/ocpi/2.2.1/commands/UNLOCK_CONNECTOR/u1", 1).await[0].body["result"],
        "ACCEPTED"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_at_the_charger_is_authorized_in_real_time_or_whitelisted() {
    let sim = sim(options(10)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let c = register(&sim, &emsp).await;

    let (location_id, evse_uid, _) = available_evse(&sim);
    let refused = sim.swipe("stolen-card", &location_id, &evse_uid).await.unwrap();
    assert_eq!(refused, SwipeOutcome::Refused { allowed: "BLOCKED".to_owned() });
    let asked = emsp.matching("POST", "/ocpi/2.2.1/tokens/stolen-card/authorize");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].body["location_id"], location_id.as_str());
    assert_eq!(asked[0].body["evse_uids"][0], evse_uid.as_str());
    assert!(emsp.matching("PUT", "/ocpi/2.2.1/sessions").is_empty());

    let SwipeOutcome::Charging { session_id } = sim.swipe("ok-card", &location_id, &evse_uid).await.unwrap() else {
        panic!("an allowed card charges");
    };
    let put = &emsp.wait_for("PUT", &format!("/ocpi/2.2.1/sessions/NL/SIM/{session_id}"), 1).await[0].body;
    assert_eq!(put["auth_method"], "AUTH_REQUEST");
    assert_eq!(put["authorization_reference"], "auth-ok-card");
    assert_eq!(put["cdr_token"]["contract_id"], "DE-TST-C00000042-Z");
    let busy = sim.swipe("ok-other", &location_id, &evse_uid).await.unwrap();
    assert_eq!(busy, SwipeOutcome::EvseUnavailable { reason: "EVSE_OCCUPIED".to_owned() });

    // A token pushed with whitelist ALWAYS charges without asking.
    let mut always = token("fleet-1");
    always["whitelist"] = json!("ALWAYS");
    let url = format!("{}/DE/TST/fleet-1?type=APP_USER", module_url(&sim, "tokens"));
    assert_eq!(call(Method::PUT, &url, Some(&auth(&c)), Some(&always)).await.code(), 1000);
    let (location_id, evse_uid, _) = available_evse(&sim);
    let SwipeOutcome::Charging { session_id } = sim.swipe("fleet-1", &location_id, &evse_uid).await.unwrap() else {
        panic!("a whitelisted card charges");
    };
    assert!(emsp.matching("POST", "/ocpi/2.2.1/tokens/fleet-1/authorize").is_empty());
    let put = &emsp.wait_for("PUT", &format!("/ocpi/2.2.1/sessions/NL/SIM/{session_id}"), 1).await[0].body;
    assert_eq!(put["auth_method"], "WHITELIST");
    sim.stop().await;
}
