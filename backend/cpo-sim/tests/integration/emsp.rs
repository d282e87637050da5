//! A tiny EMSP for the tests: serves versions and version details, answers a CPO's credentials
//! POST (calling the CPO's versions back with the offered token, as a real EMSP does), and records
//! every request the simulator sends (pushes, command results, CDRs) for assertions.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use parking_lot::Mutex;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
pub struct EmspConfig {
    /// The OCPI version the EMSP offers.
    pub version: &'static str,
    /// Offer only the credentials module (to provoke 3003).
    pub only_credentials: bool,
}

impl Default for EmspConfig {
    fn default() -> Self {
        EmspConfig { version: "2.2.1", only_credentials: false }
    }
}

struct Shared {
    base: String,
    config: EmspConfig,
    /// Token B: what the CPO must use with us.
    token_b: String,
    /// Token A we hand the CPO for `register_with`.
    token_a: String,
    requests: Mutex<Vec<Recorded>>,
    /// When the CPO registered with us: the HTTP status of our call back to its versions URL.
    callback_status: Mutex<Option<u16>>,
}

pub struct TestEmsp {
    pub versions_url: String,
    pub base: String,
    pub token_b: String,
    pub token_a: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl TestEmsp {
    pub async fn start(config: EmspConfig) -> TestEmsp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            base: base.clone(),
            config,
            token_b: format!("emsp-token-b-{}", uuid::Uuid::new_v4()),
            token_a: format!("emsp-token-a-{}", uuid::Uuid::new_v4()),
            requests: Mutex::new(Vec::new()),
            callback_status: Mutex::new(None),
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)
            .unwrap()
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        TestEmsp {
            versions_url: format!("{base}/ocpi/versions"),
            base,
            token_b: shared.token_b.clone(),
            token_a: shared.token_a.clone(),
            shared,
            handle,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().clone()
    }

    pub fn matching(&self, method: &str, path_prefix: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method == method && r.path.starts_with(path_prefix)).collect()
    }

    pub fn callback_status(&self) -> Option<u16> {
        *self.shared.callback_status.lock()
    }

    /// Polls until `count` requests match, or fails after 10 s.
    pub async fn wait_for(&self, method: &str, path_prefix: &str, count: usize) -> Vec<Recorded> {
        for _ in 0..500 {
            let found = self.matching(method, path_prefix);
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no {count} × {method} {path_prefix} at the test emsp; got {:#?}", self.requests());
    }

    /// The credentials body an EMSP posts to the simulator.
    pub fn credentials(&self) -> Value {
        json!({
            "token": self.token_b,
            "url": self.versions_url,
            "roles": [{"role": "EMSP", "party_id": "TST", "country_code": "DE",
                       "business_details": {"name": "Test EMSP"}}]
        })
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

fn envelope(data: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({"data": data, "status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"}))
}

async fn handle(shared: web::Data<Shared>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let recorded = Recorded {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    shared.requests.lock().push(recorded.clone());
    let auth = recorded.header("authorization").unwrap_or_default().to_owned();
    let token = auth.strip_prefix("Token ").unwrap_or_default();
    let decoded = STANDARD.decode(token).ok().and_then(|b| String::from_utf8(b).ok());
    let known = [shared.token_b.as_str(), shared.token_a.as_str()];
    if !known.contains(&token) && !decoded.as_deref().is_some_and(|d| known.contains(&d)) {
        return HttpResponse::Unauthorized().finish();
    }
    let version = shared.config.version;
    let base = &shared.base;
    match (recorded.method.as_str(), recorded.path.as_str()) {
        ("GET", "/ocpi/versions") => envelope(json!([{"version": version, "url": format!("{base}/ocpi/{version}")}])),
        ("GET", path) if path == format!("/ocpi/{version}") => {
            let module = |id: &str, role: &str| {
                let url = format!("{base}/ocpi/{version}/{id}");
                if version == "2.1.1" {
                    json!({"identifier": id, "url": url})
                } else {
                    json!({"identifier": id, "role": role, "url": url})
                }
            };
            let mut endpoints = vec![module("credentials", "SENDER"), module("credentials", "RECEIVER")];
            if !shared.config.only_credentials {
                endpoints.extend([
                    module("locations", "RECEIVER"),
                    module("tariffs", "RECEIVER"),
                    module("sessions", "RECEIVER"),
                    module("cdrs", "RECEIVER"),
                    module("tokens", "SENDER"),
                    module("commands", "SENDER"),
                ]);
            }
            envelope(json!({"version": version, "endpoints": endpoints}))
        }
        ("POST", path) if path.ends_with("/credentials") => {
            // The CPO registers with us: check its token opens its versions before answering.
            let cpo_token = recorded.body["token"].as_str().unwrap_or_default().to_owned();
            let cpo_versions = recorded.body["url"].as_str().unwrap_or_default().to_owned();
            let header = if version == "2.1.1" { cpo_token } else { STANDARD.encode(&cpo_token) };
            let status = reqwest::Client::new()
                .get(&cpo_versions)
                .header("Authorization", format!("Token {header}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            *shared.callback_status.lock() = Some(status);
            envelope(json!({
                "token": shared.token_b,
                "url": format!("{base}/ocpi/versions"),
                "roles": [{"role": "EMSP", "party_id": "TST", "country_code": "DE",
                           "business_details": {"name": "Test EMSP"}}]
            }))
        }
        ("POST", path) if path.ends_with("/authorize") => {
            // Real-time authorization: cards whose uid starts with `ok` are allowed.
            let uid = path.trim_end_matches("/authorize").rsplit('/').next().unwrap_or_default().to_owned();
            if uid.starts_with("ok") {
                envelope(json!({"allowed": "ALLOWED", "authorization_reference": format!("auth-{uid}"),
                    "token": {"country_code": "DE", "party_id": "TST", "uid": uid, "type": "RFID",
                              "contract_id": "DE-TST-C00000042-Z", "issuer": "Test EMSP", "valid": true,
                              "whitelist": "ALLOWED", "last_updated": "2026-01-01T00:00:00Z"}}))
            } else {
                envelope(json!({"allowed": "BLOCKED"}))
            }
        }
        _ => envelope(Value::Null),
    }
}
