//! Liveness, readiness, metrics and request ids, on both backends.

use std::time::{Duration, Instant};

use emsp_tests::{TcpProxy, TestApp, TestBackend};
use serde_json::Value;

async fn health_ready_and_metrics(backend: TestBackend) {
    let Some(app) = TestApp::start(backend).await else { return };

    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"), "every response carries a request id");
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "alive");

    // The index loads in the background after start: ready once it is in.
    wait_for_ready_status(&app, 200).await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["search_index"], "ok");

    let echoed = app.client.get(app.url("/health")).header("X-Request-ID", "req-42").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "req-42", "a partner's request id is kept");

    assert_eq!(app.get("/no/such/route/123").await.status(), 404);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"emsp_http_requests_total{method="GET",route="/health",status="200"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"route="unmatched",status="404""#), "unknown paths share one label: {metrics}");
    assert!(!metrics.contains("/no/such/route"), "raw paths never become labels");
    assert!(metrics.contains("emsp_http_request_duration_seconds_bucket"), "{metrics}");
    assert!(metrics.contains("emsp_db_pool_max_connections"), "{metrics}");
    let backend_label = match backend {
        TestBackend::Sqlite => "sqlite",
        TestBackend::Postgres => "postgres",
    };
    assert!(metrics.contains(&format!(r#"emsp_build_info{{database="{backend_label}""#)), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn health_ready_and_metrics_on_sqlite() {
    health_ready_and_metrics(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn health_ready_and_metrics_on_postgres() {
    health_ready_and_metrics(TestBackend::Postgres).await;
}

async fn ready_status(app: &TestApp) -> u16 {
    app.get("/ready").await.status().as_u16()
}

async fn wait_for_ready_status(app: &TestApp, wanted: u16) -> Duration {
    let started = Instant::now();
    loop {
        let status = ready_status(app).await;
        if status == wanted {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "/ready stayed {status}, wanted {wanted}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// PostgreSQL going away turns `/ready` into 503 (while `/health` stays 200 and nothing crashes),
/// and its return turns it back into 200.
#[tokio::test]
async fn ready_follows_postgres_going_away_and_coming_back() {
    let Some(db) = emsp_store::testing::TestDb::postgres() else { return };
    let target = postgres_addr(db.url());
    let proxy = TcpProxy::start(target).await.unwrap();
    let proxied_url = db.url().replacen(&host_port(db.url()), &proxy.addr.to_string(), 1);
    let app = TestApp::start_with_url(db, &proxied_url).await;
    wait_for_ready_status(&app, 200).await;

    proxy.cut().await;
    wait_for_ready_status(&app, 503).await;
    assert_eq!(app.get("/health").await.status(), 200, "liveness does not depend on the database");
    let body: Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(body["database"], "unavailable");

    proxy.restore().await.unwrap();
    wait_for_ready_status(&app, 200).await;
    app.stop().await;
}

/// `host:port` of a `postgres://user@host:port/db?...` URL.
fn host_port(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let after_user = after_scheme.rsplit_once('@').map_or(after_scheme, |(_, rest)| rest);
    let host_port = after_user.split(['/', '?']).next().unwrap_or(after_user);
    if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") }
}

fn postgres_addr(url: &str) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    host_port(url).to_socket_addrs().unwrap().next().unwrap()
}
