//! The driver API over HTTP: `POST /graphql` (one operation per request: batches are refused),
//! `GET /graphql` (GraphiQL when enabled), and a per-IP rate limit answering 429 with a GraphQL
//! error `RATE_LIMITED`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use async_graphql::http::GraphiQLSource;
use async_graphql_actix_web::{GraphQLRequest, GraphQLResponse};
use emsp_graphql::EmspSchema;

use crate::app::AppState;

/// `POST /graphql`.
pub async fn execute(schema: web::Data<EmspSchema>, request: GraphQLRequest) -> GraphQLResponse {
    schema.execute(request.into_inner()).await.into()
}

/// `GET /graphql`: GraphiQL, or 404 when it is off.
pub async fn graphiql(state: web::Data<AppState>) -> HttpResponse {
    if !state.config.api.graphiql {
        return HttpResponse::NotFound()
            .json(serde_json::json!({ "error": "GraphiQL is disabled (EMSP_GRAPHIQL=true enables it)" }));
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(GraphiQLSource::build().endpoint("/graphql").finish())
}

/// Requests per client in fixed one-minute windows. Small and exact enough for abuse control; a
/// replica counts alone.
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl RateLimiter {
    /// Whether one more request of `client` fits in `limit` per minute.
    pub fn allow(&self, client: IpAddr, limit: u32) -> bool {
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else { return true };
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = windows.entry(client).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= limit
    }
}

/// Middleware on `/graphql`.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let limiter = req.app_data::<web::Data<RateLimiter>>().cloned();
    if let (Some(state), Some(limiter)) = (state, limiter) {
        let limit = state.config.api.rate_limit_per_minute;
        let client = req.peer_addr().map(|addr| addr.ip());
        if let Some(client) = client
            && limit > 0
            && !limiter.allow(client, limit)
        {
            let body = serde_json::json!({
                "errors": [{ "message": "too many requests, slow down", "extensions": { "code": "RATE_LIMITED" } }]
            });
            let response = HttpResponse::TooManyRequests().insert_header(("Retry-After", "60")).json(body);
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_client() {
        let limiter = RateLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!((0..3).all(|_| limiter.allow(a, 3)));
        assert!(!limiter.allow(a, 3));
        assert!(limiter.allow(b, 3), "another client has its own budget");
    }
}
