//! Starting a simulator and speaking OCPI to it the way an EMSP would.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use emsp_cpo_sim::{ChargingOptions, RunningSim, SimData, SimOptions, start};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::emsp::TestEmsp;

pub fn init_logs() {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
}

pub fn options(locations: usize) -> SimOptions {
    SimOptions {
        data: SimData::Generated { locations },
        charging: ChargingOptions {
            tick: Duration::from_millis(100),
            max_duration: Duration::from_secs(60),
            time_scale: 3600.0,
            command_delay: Duration::from_millis(30),
            command_timeout_s: 30,
        },
        ..SimOptions::default()
    }
}

pub async fn sim(options: SimOptions) -> RunningSim {
    init_logs();
    start(options).await.unwrap()
}

pub fn auth(token: &str) -> String {
    format!("Token {}", STANDARD.encode(token))
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn code(&self) -> u64 {
        self.body["status_code"].as_u64().unwrap_or(0)
    }
}

pub async fn call(method: reqwest::Method, url: &str, authorization: Option<&str>, body: Option<&Value>) -> Answer {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

pub async fn get(url: &str, token: &str) -> Answer {
    call(reqwest::Method::GET, url, Some(&auth(token)), None).await
}

/// The EMSP registers with the simulator; returns token C.
pub async fn register(sim: &RunningSim, emsp: &TestEmsp) -> String {
    let url = format!("{}/2.2.1/credentials", sim.versions_url.trim_end_matches("/versions"));
    let answer = call(reqwest::Method::POST, &url, Some(&auth(&sim.token_a)), Some(&emsp.credentials())).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.code(), 1000, "{:?}", answer.body);
    answer.body["data"]["token"].as_str().unwrap().to_owned()
}

/// `http://127.0.0.1:port/ocpi/2.2.1/{module}`.
pub fn module_url(sim: &RunningSim, module: &str) -> String {
    format!("{}/2.2.1/{module}", sim.versions_url.trim_end_matches("/versions"))
}

/// The first (location, EVSE, connector) whose EVSE is AVAILABLE.
pub fn available_evse(sim: &RunningSim) -> (String, String, String) {
    for (location_id, evse_uid) in sim.evses() {
        let location = sim.location(&location_id).unwrap();
        let evse = location["evses"].as_array().unwrap().iter().find(|e| e["uid"] == evse_uid.as_str()).unwrap();
        if evse["status"] == "AVAILABLE" {
            let connector = evse["connectors"][0]["id"].as_str().unwrap().to_owned();
            return (location_id, evse_uid, connector);
        }
    }
    panic!("no available evse");
}
