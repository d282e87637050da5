//! Prometheus metrics: requests and latencies per route, the database pool, build information.
//!
//! Routes are labelled with their pattern (`/ocpi/{version}/locations/{id}`), never the raw path,
//! so the number of series stays bounded whatever clients send.

use std::time::{Duration, Instant};

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tracing::Instrument;

use emsp_search_index::SearchIndex;
use emsp_store::Store;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The metrics of one process.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    index_locations: IntGauge,
    index_evses: IntGauge,
}

impl Metrics {
    pub fn new(database_backend: &str) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("emsp_http_requests_total", "HTTP requests by method, route pattern and status"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "emsp_http_request_duration_seconds",
                "HTTP request latency by method and route pattern",
            )
            .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["method", "route"],
        )?;
        let pool_connections = IntGauge::new("emsp_db_pool_connections", "open database connections")?;
        let pool_idle = IntGauge::new("emsp_db_pool_idle_connections", "idle database connections")?;
        let pool_max = IntGauge::new("emsp_db_pool_max_connections", "largest number of database connections")?;
        let index_locations = IntGauge::new("emsp_search_index_locations", "locations in the search index")?;
        let index_evses = IntGauge::new("emsp_search_index_evses", "EVSEs in the search index")?;
        let build = IntGaugeVec::new(Opts::new("emsp_build_info", "build information"), &["version", "database"])?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION"), database_backend]).set(1);
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_idle.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(index_locations.clone()))?;
        registry.register(Box::new(index_evses.clone()))?;
        registry.register(Box::new(build))?;
        Ok(Self { registry, requests, latency, pool_connections, pool_idle, pool_max, index_locations, index_evses })
    }

    fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests.with_label_values(&[method, route, &status.to_string()]).inc();
        self.latency.with_label_values(&[method, route]).observe(elapsed.as_secs_f64());
    }

    /// The text exposition format, with pool and index gauges read now.
    pub fn render(&self, store: &Store, index: &SearchIndex) -> String {
        let index_stats = index.stats();
        self.index_locations.set(i64::try_from(index_stats.locations).unwrap_or(i64::MAX));
        self.index_evses.set(i64::try_from(index_stats.evses).unwrap_or(i64::MAX));
        let stats = store.pool_stats();
        self.pool_connections.set(i64::from(stats.connections));
        self.pool_idle.set(i64::from(stats.idle));
        self.pool_max.set(i64::from(stats.max_size));
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "cannot encode metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// The request id of the request being handled, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Takes a well-formed `X-Request-ID` from the client (OCPI partners send one) or makes one.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Middleware: a span with the request id around the request, the id echoed in the response,
/// one log line per request, and the request counted in the metrics.
pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    // Inner layers (the OCPI scope echoes and logs the id) see the id we answer with.
    if let Ok(value) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(REQUEST_ID, value);
    }
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let state = req.app_data::<actix_web::web::Data<crate::app::AppState>>().cloned();
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);
    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let _entered = span.enter();
    match result {
        Ok(mut response) => {
            let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
            let status = response.status().as_u16();
            if let Some(state) = state {
                state.metrics.observe(&method, &route, status, elapsed);
            }
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            tracing::info!(route = %route, status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request");
            Ok(response)
        }
        Err(error) => {
            tracing::warn!(%error, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request failed");
            Err(error)
        }
    }
}
