//! Liveness, readiness and metrics endpoints.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::app::AppState;

#[derive(Serialize)]
struct ReadyReport {
    status: &'static str,
    database: &'static str,
    search_index: &'static str,
}

/// How long `/ready` waits for a database connection: short, so probes get an answer in time.
const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: the process is alive. No dependency is checked.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "alive" }))
}

/// `GET /ready`: 200 when the database answers and the search index is loaded, 503 otherwise.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.clone();
    let database_ok = match web::block(move || store.ping(READY_DB_TIMEOUT)).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: database unavailable");
            false
        }
        Err(error) => {
            tracing::error!(%error, "readiness: database check did not run");
            false
        }
    };
    let index_ok = state.index.is_ready();
    let report = ReadyReport {
        status: if database_ok && index_ok { "ready" } else { "unavailable" },
        database: if database_ok { "ok" } else { "unavailable" },
        search_index: if index_ok { "ok" } else { "loading" },
    };
    if database_ok && index_ok {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&state.store, &state.index))
}
