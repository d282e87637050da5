//! The Tokens receiver.

use reqwest::Method;
use serde_json::json;

use crate::emsp::{EmspConfig, TestEmsp};
use crate::helpers::{auth, call, get, module_url, options, register, sim};

pub fn token(uid: &str) -> serde_json::Value {
    json!({"country_code": "DE", "party_id": "TST", "uid": uid, "type": "APP_USER", "contract_id": "DE-TST-C12345678-X",
           "issuer": "Test EMSP", "valid": true, "whitelist": "ALLOWED", "last_updated": "2026-01-01T00:00:00Z"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_stored_patched_and_read_back() {
    let sim = sim(options(2)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let c = register(&sim, &emsp).await;
    let url = format!("{}/DE/TST/app-1?type=APP_USER", module_url(&sim, "tokens"));

    let put = call(Method::PUT, &url, Some(&auth(&c)), Some(&token("app-1"))).await;
    assert_eq!((put.status, put.code()), (200, 1000));
    let read = get(&url, &c).await;
    assert_eq!(read.body["data"]["contract_id"], "DE-TST-C12345678-X");

    let patch = json!({"valid": false, "last_updated": "2026-01-02T00:00:00Z"});
    assert_eq!(call(Method::PATCH, &url, Some(&auth(&c)), Some(&patch)).await.code(), 1000);
    assert_eq!(get(&url, &c).await.body["data"]["valid"], false);
    let received = sim.received().tokens;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["valid"], false);

    // Without `?type=` the token is kept under its own type.
    let untyped = format!("{}/DE/TST/app-2", module_url(&sim, "tokens"));
    assert_eq!(call(Method::PUT, &untyped, Some(&auth(&c)), Some(&token("app-2"))).await.code(), 1000);
    assert_eq!(get(&format!("{untyped}?type=APP_USER"), &c).await.code(), 1000);

    let wrong_uid = call(Method::PUT, &url, Some(&auth(&c)), Some(&token("other"))).await;
    assert_eq!((wrong_uid.status, wrong_uid.code()), (400, 2001));
    let no_stamp = call(Method::PATCH, &url, Some(&auth(&c)), Some(&json!({"valid": true}))).await;
    assert_eq!(no_stamp.code(), 2001);
    let unknown = get(&format!("{}/DE/TST/nobody", module_url(&sim, "tokens")), &c).await;
    assert_eq!((unknown.status, unknown.code()), (404, 2004));
    assert_eq!(call(Method::PUT, &url, Some(&auth(&sim.token_a)), Some(&token("app-1"))).await.status, 401);
    sim.stop().await;
}
