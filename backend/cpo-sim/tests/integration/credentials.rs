//! The credentials handshake both ways, and what each token opens.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::json;

use crate::emsp::{EmspConfig, TestEmsp};
use crate::helpers::{auth, call, get, module_url, options, register, sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emsp_registers_then_token_a_is_refused_and_a_second_post_is_405() {
    let sim = sim(options(5)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;

    // Token A opens versions and credentials, nothing else.
    let versions = get(&sim.versions_url, &sim.token_a).await;
    assert_eq!(versions.status, 200);
    assert_eq!(versions.body["data"][0]["version"], "2.2.1");
    let details = get(versions.body["data"][0]["url"].as_str().unwrap(), &sim.token_a).await;
    let endpoints = details.body["data"]["endpoints"].as_array().unwrap().clone();
    for (identifier, role) in [
        ("credentials", "SENDER"),
        ("locations", "SENDER"),
        ("tariffs", "SENDER"),
        ("tokens", "RECEIVER"),
        ("commands", "RECEIVER"),
        ("sessions", "SENDER"),
        ("cdrs", "SENDER"),
    ] {
        assert!(
            endpoints.iter().any(|e| e["identifier"] == identifier && e["role"] == role),
            "{identifier} {role} missing in {endpoints:?}"
        );
    }
    assert_eq!(get(&module_url(&sim, "locations"), &sim.token_a).await.status, 401);

    let token_c = register(&sim, &emsp).await;
    assert_ne!(token_c, sim.token_a);

    // The simulator read our versions and details with token B, Base64 encoded, with the headers.
    let callbacks = emsp.matching("GET", "/ocpi/");
    assert_eq!(callbacks.len(), 2, "{callbacks:?}");
    for request in &callbacks {
        assert_eq!(request.header("authorization"), Some(auth(&emsp.token_b).as_str()));
        assert!(request.header("x-request-id").is_some());
        assert!(request.header("x-correlation-id").is_some());
        assert_eq!(request.header("ocpi-from-country-code"), Some("NL"));
        assert_eq!(request.header("ocpi-from-party-id"), Some("SIM"));
        assert_eq!(request.header("ocpi-to-party-id"), Some("TST"));
    }
    let peer = sim.received().peer.unwrap();
    assert_eq!(peer.token_ours, token_c);
    assert_eq!(peer.token_theirs, emsp.token_b);
    assert_eq!(peer.party_id.as_deref(), Some("TST"));
    assert!(peer.endpoints.iter().any(|(id, role, _)| id == "sessions" && role.as_deref() == Some("RECEIVER")));

    // Token C works (encoded, and plain as some peers send it); token A is dead.
    assert_eq!(get(&module_url(&sim, "locations"), &token_c).await.status, 200);
    let plain = call(Method::GET, &module_url(&sim, "locations"), Some(&format!("Token {token_c}")), None).await;
    assert_eq!(plain.status, 200);
    assert_eq!(get(&sim.versions_url, &sim.token_a).await.status, 401);
    let credentials_url = module_url(&sim, "credentials");
    let again_with_a = call(Method::POST, &credentials_url, Some(&auth(&sim.token_a)), Some(&emsp.credentials())).await;
    assert_eq!(again_with_a.status, 401);
    let again_with_c = call(Method::POST, &credentials_url, Some(&auth(&token_c)), Some(&emsp.credentials())).await;
    assert_eq!(again_with_c.status, 405);

    // GET shows our credentials with the caller's token; PUT rotates token C.
    let ours = get(&credentials_url, &token_c).await;
    assert_eq!(ours.body["data"]["token"], token_c.as_str());
    crate::contract::assert_fields(&ours.body["data"], crate::contract::CREDENTIALS_2_2_1, "Credentials");
    crate::contract::assert_fields(&ours.body["data"]["roles"][0], crate::contract::CREDENTIALS_ROLE_2_2_1, "Role");
    assert_eq!(ours.body["data"]["roles"][0]["role"], "CPO");
    assert_eq!(ours.body["data"]["roles"][0]["country_code"], "NL");
    assert_eq!(ours.body["data"]["url"], sim.versions_url.as_str());
    let updated = call(Method::PUT, &credentials_url, Some(&auth(&token_c)), Some(&emsp.credentials())).await;
    assert_eq!(updated.code(), 1000);
    let new_c = updated.body["data"]["token"].as_str().unwrap().to_owned();
    assert_ne!(new_c, token_c);
    assert_eq!(get(&module_url(&sim, "locations"), &token_c).await.status, 401);
    assert_eq!(get(&module_url(&sim, "locations"), &new_c).await.status, 200);

    // DELETE unregisters: token C dies, token A comes back for a new registration.
    let deleted = call(Method::DELETE, &credentials_url, Some(&auth(&new_c)), None).await;
    assert_eq!(deleted.code(), 1000);
    assert_eq!(get(&module_url(&sim, "locations"), &new_c).await.status, 401);
    assert_eq!(call(Method::DELETE, &credentials_url, Some(&auth(&sim.token_a)), None).await.status, 405);
    assert_eq!(
        call(Method::PUT, &credentials_url, Some(&auth(&sim.token_a)), Some(&emsp.credentials())).await.status,
        405
    );
    register(&sim, &emsp).await;
    sim.stop().await;
    emsp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unknown_tokens_are_401() {
    let sim = sim(options(2)).await;
    assert_eq!(call(Method::GET, &sim.versions_url, None, None).await.status, 401);
    assert_eq!(get(&sim.versions_url, "not-a-token").await.status, 401);
    assert_eq!(call(Method::GET, &sim.versions_url, Some("Bearer x"), None).await.status, 401);
    let answer = get(&module_url(&sim, "tariffs"), "nope").await;
    assert_eq!(answer.status, 401);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_problems_answer_3001_3002_3003() {
    let sim = sim(options(2)).await;
    let credentials_url = module_url(&sim, "credentials");
    let post = |body: serde_json::Value| {
        let url = credentials_url.clone();
        let token = sim.token_a.clone();
        async move { call(Method::POST, &url, Some(&auth(&token)), Some(&body)).await }
    };

    let unreachable = post(json!({"token": "b", "url": "http://127.0.0.1:9/ocpi/versions", "roles": []})).await;
    assert_eq!((unreachable.status, unreachable.code()), (200, 3001));

    let old_emsp = TestEmsp::start(EmspConfig { version: "2.1.1", ..EmspConfig::default() }).await;
    let unsupported = post(old_emsp.credentials()).await;
    assert_eq!(unsupported.code(), 3002);

    let bare_emsp = TestEmsp::start(EmspConfig { only_credentials: true, ..EmspConfig::default() }).await;
    let no_modules = post(bare_emsp.credentials()).await;
    assert_eq!(no_modules.code(), 3003);

    let garbage = post(json!({"url": 3})).await;
    assert_eq!((garbage.status, garbage.code()), (400, 2001));

    // None of that registered anything: token A still works.
    assert_eq!(get(&sim.versions_url, &sim.token_a).await.status, 200);
    assert!(sim.received().peer.is_none());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpo_registers_with_an_emsp() {
    let sim = sim(options(2)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    sim.register_with(&emsp.versions_url, &emsp.token_a).await.unwrap();

    // The simulator used the EMSP's token A to read versions and to POST its credentials.
    let posted = emsp.matching("POST", "/ocpi/2.2.1/credentials");
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].header("authorization").unwrap(), format!("Token {}", STANDARD.encode(&emsp.token_a)));
    let offered = posted[0].body["token"].as_str().unwrap().to_owned();
    assert_eq!(posted[0].body["url"], sim.versions_url.as_str());
    assert_eq!(posted[0].body["roles"][0]["role"], "CPO");
    // While its POST was in flight, the offered token already opened the simulator's versions.
    assert_eq!(emsp.callback_status(), Some(200));

    let peer = sim.received().peer.unwrap();
    assert_eq!(peer.token_theirs, emsp.token_b);
    assert_eq!(peer.token_ours, offered);
    assert_eq!(get(&module_url(&sim, "locations"), &offered).await.status, 200);
    assert_eq!(get(&sim.versions_url, &sim.token_a).await.status, 401, "token a retired");

    // Registering against an EMSP that does not speak our version fails clearly.
    let old_emsp = TestEmsp::start(EmspConfig { version: "2.1.1", ..EmspConfig::default() }).await;
    let error = sim.register_with(&old_emsp.versions_url, &old_emsp.token_a).await.unwrap_err();
    assert!(format!("{error:#}").contains("none of our versions"), "{error:#}");
    sim.stop().await;
    emsp.stop().await;
}

/// Callers' tests often use the default current-thread runtime: the simulator's call-backs run on
/// it while the test awaits, so nothing deadlocks.
#[tokio::test]
async fn works_on_a_current_thread_runtime() {
    let sim = sim(options(3)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token_c = register(&sim, &emsp).await;
    assert_eq!(get(&module_url(&sim, "locations"), &token_c).await.status, 200);
    let (location_id, evse_uid) = sim.evses().into_iter().next().unwrap();
    assert!(sim.push_status(&location_id, &evse_uid, "CHARGING").await);
    sim.stop().await;
    emsp.stop().await;
}
