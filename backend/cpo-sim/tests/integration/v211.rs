//! OCPI 2.1.1 mode: plain tokens, 2.1.1 module list and objects.

use emsp_cpo_sim::{SimOptions, SimVersion};
use reqwest::Method;
use serde_json::json;

use crate::emsp::{EmspConfig, TestEmsp};
use crate::helpers::{call, options, sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_1_1_basics() {
    let sim = sim(SimOptions { version: SimVersion::V2_1_1, ..options(8) }).await;
    let emsp = TestEmsp::start(EmspConfig { version: "2.1.1", ..EmspConfig::default() }).await;
    let plain = |token: &str| format!("Token {token}");

    let versions = call(Method::GET, &sim.versions_url, Some(&plain(&sim.token_a)), None).await;
    assert_eq!(versions.body["data"][0]["version"], "2.1.1");
    let details_url = versions.body["data"][0]["url"].as_str().unwrap().to_owned();
    let details = call(Method::GET, &details_url, Some(&plain(&sim.token_a)), None).await;
    let endpoints = details.body["data"]["endpoints"].as_array().unwrap();
    assert!(endpoints.iter().all(|e| e.get("role").is_none()));
    assert!(endpoints.iter().any(|e| e["identifier"] == "commands"));

    let credentials = json!({"token": emsp.token_b, "url": emsp.versions_url,
        "business_details": {"name": "Old EMSP"}, "party_id": "OLD", "country_code": "DE"});
    let registered =
        call(Method::POST, &format!("{details_url}/credentials"), Some(&plain(&sim.token_a)), Some(&credentials)).await;
    assert_eq!(registered.code(), 1000, "{:?}", registered.body);
    assert_eq!(registered.body["data"]["party_id"], "SIM");
    assert!(registered.body["data"].get("roles").is_none());
    let c = registered.body["data"]["token"].as_str().unwrap().to_owned();
    let callbacks = emsp.matching("GET", "/ocpi/");
    assert_eq!(callbacks[0].header("authorization"), Some(plain(&emsp.token_b).as_str()), "plain token in 2.1.1");

    let locations = call(Method::GET, &format!("{details_url}/locations"), Some(&plain(&c)), None).await;
    let location = &locations.body["data"][0];
    assert!(location.get("party_id").is_none());
    for location in locations.body["data"].as_array().unwrap() {
        crate::contract::assert_fields(location, crate::contract::LOCATION_2_1_1, "2.1.1 Location");
        for evse in location["evses"].as_array().unwrap() {
            for connector in evse["connectors"].as_array().unwrap() {
                crate::contract::assert_fields(connector, crate::contract::CONNECTOR_2_1_1, "2.1.1 Connector");
            }
        }
    }
    assert!(location["evses"][0]["connectors"][0]["voltage"].is_number());
    let tariffs = call(Method::GET, &format!("{details_url}/tariffs"), Some(&plain(&c)), None).await;
    assert!(tariffs.body["data"][0]["elements"][0]["price_components"][0].get("vat").is_none());

    let token = json!({"uid": "rfid-1", "type": "RFID", "auth_id": "DE-OLD-000001", "issuer": "Old EMSP",
        "valid": true, "whitelist": "ALLOWED", "last_updated": "2026-01-01T00:00:00Z"});
    let put = call(Method::PUT, &format!("{details_url}/tokens/DE/OLD/rfid-1"), Some(&plain(&c)), Some(&token)).await;
    assert_eq!(put.code(), 1000);

    let (location_id, evse_uid, _) = crate::helpers::available_evse(&sim);
    let start = json!({"response_url": format!("{}/ocpi/2.1.1/commands/START_SESSION/1", emsp.base),
        "token": token, "location_id": location_id, "evse_uid": evse_uid});
    let response =
        call(Method::POST, &format!("{details_url}/commands/START_SESSION"), Some(&plain(&c)), Some(&start)).await;
    assert_eq!(response.body["data"]["result"], "ACCEPTED");
    assert!(response.body["data"].get("timeout").is_none());
    let result = emsp.wait_for("POST", "/ocpi/2.1.1/commands/START_SESSION/1", 1).await;
    assert_eq!(result[0].body["result"], "ACCEPTED");
    let session = &emsp.wait_for("PUT", "/ocpi/2.1.1/sessions/NL/SIM/", 1).await[0].body;
    crate::contract::assert_fields(session, crate::contract::SESSION_2_1_1, "2.1.1 Session");
    assert_eq!(session["auth_id"], "DE-OLD-000001");
    assert_eq!(session["location"]["evses"].as_array().unwrap().len(), 1);
    assert!(session["total_cost"].is_number());
    sim.stop().await;
    emsp.stop().await;
}
