//! Each fault, switched on through `RunningSim::faults` or `POST /admin/faults`.

use std::time::{Duration, Instant};

use emsp_cpo_sim::{LinkFault, SimOptions};
use reqwest::Method;
use serde_json::json;

use crate::emsp::{EmspConfig, TestEmsp};
use crate::helpers::{auth, call, get, module_url, options, register, sim};

fn next_link(answer: &crate::helpers::Answer) -> String {
    let link = answer.header("link").unwrap();
    link.trim_start_matches('<').split('>').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_http_500_and_malformed_json() {
    let sim = sim(options(3)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token = register(&sim, &emsp).await;
    let url = module_url(&sim, "locations");

    sim.faults().set_latency_ms(300);
    let started = Instant::now();
    assert_eq!(get(&url, &token).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.faults().set_latency_ms(0);

    sim.faults().fail_next(2);
    assert_eq!(get(&url, &token).await.status, 500);
    assert_eq!(get(&sim.versions_url, &token).await.status, 500);
    assert_eq!(get(&url, &token).await.status, 200);

    sim.faults().set_malformed_json(true);
    let broken = get(&url, &token).await;
    assert_eq!(broken.status, 200);
    assert!(broken.body.is_string(), "body must not parse as JSON: {:?}", broken.body);
    sim.faults().set_malformed_json(false);
    assert_eq!(get(&url, &token).await.code(), 1000);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_links_and_missing_total_count() {
    let sim = sim(SimOptions { page_limit: 5, ..options(12) }).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token = register(&sim, &emsp).await;
    let url = format!("{}?offset=5&limit=5", module_url(&sim, "locations"));

    sim.faults().set_link(LinkFault::Loop);
    let page = get(&url, &token).await;
    assert!(next_link(&page).contains("offset=5&"), "loops to itself: {}", next_link(&page));
    let again = get(&next_link(&page), &token).await;
    assert_eq!(again.body["data"], page.body["data"]);

    sim.faults().set_link(LinkFault::NotFound);
    let page = get(&url, &token).await;
    assert_eq!(get(&next_link(&page), &token).await.status, 404);

    sim.faults().set_link(LinkFault::None);
    sim.faults().set_omit_total_count(true);
    let page = get(&url, &token).await;
    assert!(page.header("x-total-count").is_none());
    assert!(page.header("x-limit").is_some());
    sim.faults().reset();
    assert_eq!(get(&url, &token).await.header("x-total-count"), Some("12"));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoint_sets_faults_and_ids_are_echoed() {
    let sim = sim(SimOptions { page_limit: 2, ..options(5) }).await;
    let admin = format!("http://{}/admin/faults", sim.addr);
    let set = call(Method::POST, &admin, None, Some(&json!({"link": "loop", "omit_total_count": true}))).await;
    assert_eq!(set.status, 200);
    assert_eq!(set.body["link"], "loop");
    assert_eq!(sim.faults().link(), LinkFault::Loop);
    assert!(sim.faults().omit_total_count());
    let unknown = call(Method::POST, &admin, None, Some(&json!({"explode": true}))).await;
    assert_eq!(unknown.status, 400);
    // Faults never hit /admin.
    sim.faults().fail_next(1);
    assert_eq!(call(Method::GET, &admin, None, None).await.status, 200);
    sim.faults().reset();

    let answer = reqwest::Client::new()
        .get(&sim.versions_url)
        .header("Authorization", auth(&sim.token_a))
        .header("X-Request-ID", "req-1")
        .header("X-Correlation-ID", "corr-1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["x-request-id"], "req-1");
    assert_eq!(answer.headers()["x-correlation-id"], "corr-1");
    let fresh = get(&sim.versions_url, &sim.token_a).await;
    assert!(!fresh.header("x-request-id").unwrap().is_empty(), "an id is made when none is sent");
    sim.stop().await;
}
