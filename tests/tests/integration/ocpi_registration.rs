//! OCPI registration over real HTTP between two running servers: one invites, the other registers
//! with it (the credentials handshake in both directions at once, since each calls the other).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use emsp_roaming::{invite_partner, register_with_partner};
use emsp_store::PartnerStatus;
use emsp_tests::{TestApp, TestBackend};
use serde_json::{Value, json};

fn token(value: &str) -> String {
    format!("Token {}", STANDARD.encode(value))
}

async fn ocpi(app: &TestApp, method: reqwest::Method, path: &str, auth: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).header("Authorization", auth);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

async fn registration(backend: TestBackend) {
    let Some(cpo) = TestApp::start(backend).await else { return };
    let Some(us) = TestApp::start(backend).await else { return };

    let (invited, token_a) = invite_partner(cpo.db().store(), "our EMSP").unwrap();
    assert_eq!(invited.status, PartnerStatus::Invited);

    // Token A opens versions and credentials only.
    let (status, body) = ocpi(&cpo, reqwest::Method::GET, "/ocpi/versions", &token(&token_a), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status_code"], 1000);
    assert_eq!(body["data"][0]["version"], "2.2.1");
    let (status, body) = ocpi(&cpo, reqwest::Method::GET, "/ocpi/versions", "Token not-a-token", None).await;
    assert_eq!((status, body["status_code"].as_u64()), (401, Some(2000)));
    let (status, body) =
        ocpi(&cpo, reqwest::Method::PUT, "/ocpi/2.2.1/credentials", &token(&token_a), Some(json!({}))).await;
    assert_eq!(status, 405, "PUT before registration: {body}");

    let outcome = register_with_partner(&us.roaming(), "the CPO", &cpo.url("/ocpi/versions"), &token_a).await.unwrap();
    assert_eq!(outcome.version, "2.2.1");
    assert!(outcome.endpoints.iter().any(|e| e.identifier == "credentials"));
    assert_eq!(outcome.parties.len(), 1);

    let on_cpo = cpo.db().store().get_partner(&invited.id).unwrap().unwrap();
    assert_eq!(on_cpo.status, PartnerStatus::Registered);
    assert_eq!(on_cpo.version.as_deref(), Some("2.2.1"));
    assert_eq!(on_cpo.versions_url.as_deref(), Some(us.url("/ocpi/versions").as_str()));
    let on_us = us.db().store().get_partner(&outcome.partner_id).unwrap().unwrap();
    assert_eq!(on_us.status, PartnerStatus::Registered);
    let token_c = us.db().store().outgoing_token(&outcome.partner_id).unwrap().unwrap();
    assert_ne!(token_c, token_a);

    // Token A is gone; token C works, Base64-encoded or plain.
    let (status, _) = ocpi(&cpo, reqwest::Method::GET, "/ocpi/versions", &token(&token_a), None).await;
    assert_eq!(status, 401, "token A no longer works after registration");
    let (status, body) = ocpi(&cpo, reqwest::Method::GET, "/ocpi/2.2.1/credentials", &token(&token_c), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["token"], token_c.as_str());
    assert_eq!(body["data"]["roles"][0]["role"], "EMSP");
    let (status, _) = ocpi(&cpo, reqwest::Method::GET, "/ocpi/2.2.1", &format!("Token {token_c}"), None).await;
    assert_eq!(status, 200, "plain tokens of 2.1.1-style peers are accepted");

    // A second POST is refused; a malformed body gets an OCPI envelope.
    let credentials = json!({"token": "x", "url": us.url("/ocpi/versions"), "roles": []});
    let (status, _) =
        ocpi(&cpo, reqwest::Method::POST, "/ocpi/2.2.1/credentials", &token(&token_c), Some(credentials)).await;
    assert_eq!(status, 405);
    let response = cpo
        .client
        .put(cpo.url("/ocpi/2.2.1/credentials"))
        .header("Authorization", token(&token_c))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_code"], 2001, "{body}");
    assert!(cpo.db().store().get_partner(&invited.id).unwrap().unwrap().status == PartnerStatus::Registered);

    // Unregistering revokes token C.
    let (status, body) = ocpi(&cpo, reqwest::Method::DELETE, "/ocpi/2.2.1/credentials", &token(&token_c), None).await;
    assert_eq!((status, body["status_code"].as_u64()), (200, Some(1000)), "{body}");
    let (status, _) = ocpi(&cpo, reqwest::Method::GET, "/ocpi/versions", &token(&token_c), None).await;
    assert_eq!(status, 401);

    us.stop().await;
    cpo.stop().await;
}

#[tokio::test]
async fn registration_on_sqlite() {
    registration(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn registration_on_postgres() {
    registration(TestBackend::Postgres).await;
}

/// A partner whose versions endpoint cannot be reached gets 3001 and stays unregistered.
#[tokio::test]
async fn unreachable_partner_versions_give_3001() {
    let Some(cpo) = TestApp::start(TestBackend::Sqlite).await else { return };
    let (invited, token_a) = invite_partner(cpo.db().store(), "unreachable").unwrap();
    let credentials = json!({
        "token": "token-b",
        "url": "http://127.0.0.1:1/ocpi/versions",
        "roles": [{"role": "EMSP", "party_id": "XYZ", "country_code": "DE", "business_details": {"name": "X"}}]
    });
    let (status, body) =
        ocpi(&cpo, reqwest::Method::POST, "/ocpi/2.2.1/credentials", &token(&token_a), Some(credentials)).await;
    assert_eq!((status, body["status_code"].as_u64()), (200, Some(3001)), "{body}");
    assert_eq!(cpo.db().store().get_partner(&invited.id).unwrap().unwrap().status, PartnerStatus::Invited);
    let bad_version = ocpi(&cpo, reqwest::Method::GET, "/ocpi/9.9/credentials", &token(&token_a), None).await;
    assert_eq!(bad_version.0, 404);
    cpo.stop().await;
}

/// A partner that speaks no version we do gets 3002, and our own registration attempt says why.
#[tokio::test]
async fn no_common_version_gives_3002() {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let Some(app) = TestApp::start(TestBackend::Sqlite).await else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let versions = move || async move {
        HttpResponse::Ok().json(json!({
            "data": [{"version": "2.0", "url": format!("http://{addr}/ocpi/2.0")}],
            "status_code": 1000,
            "timestamp": "2026-01-01T00:00:00Z"
        }))
    };
    let server = HttpServer::new(move || App::new().route("/ocpi/versions", web::get().to(versions)))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    tokio::spawn(server);

    let (_, token_a) = invite_partner(app.db().store(), "future partner").unwrap();
    let credentials = json!({
        "token": "token-b",
        "url": format!("http://{addr}/ocpi/versions"),
        "roles": [{"role": "CPO", "party_id": "NEW", "country_code": "DE", "business_details": {"name": "X"}}]
    });
    let (status, body) =
        ocpi(&app, reqwest::Method::POST, "/ocpi/2.2.1/credentials", &token(&token_a), Some(credentials)).await;
    assert_eq!((status, body["status_code"].as_u64()), (200, Some(3002)), "{body}");

    let error = register_with_partner(&app.roaming(), "future", &format!("http://{addr}/ocpi/versions"), "a")
        .await
        .unwrap_err();
    assert!(matches!(error, emsp_roaming::RoamingError::NoCommonVersion { .. }), "{error}");
    let failed = app.db().store().list_partners().unwrap().into_iter().find(|p| p.name == "future").unwrap();
    assert!(failed.last_error.unwrap().contains("no common OCPI version"), "the failure is shown in partner list");
    handle.stop(true).await;
    app.stop().await;
}
