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
use actix_web::{Either, HttpMessage, HttpRequest, HttpResponse, web};
use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::ExecutableDocument;
use async_graphql_actix_web::{GraphQLRequest, GraphQLResponse};
use emsp_accounts::Accounts;
use emsp_graphql::{EmspSchema, Viewer};

use crate::app::AppState;

/// `POST /graphql`. A bearer token, when sent, must verify: a wrong or expired one is answered
/// with 401 and `UNAUTHENTICATED` rather than silently treated as anonymous.
pub async fn execute(
    schema: web::Data<EmspSchema>,
    accounts: web::Data<Accounts>,
    documents: web::Data<DocumentCache>,
    http: HttpRequest,
    request: GraphQLRequest,
) -> Either<GraphQLResponse, HttpResponse> {
    let mut request = request.into_inner();
    documents.prepare(&mut request);
    // The rate limit verified the token already, unless it is off.
    let checked = http.extensions().get::<BearerCheck>().cloned();
    match checked.or_else(|| check_bearer(&http, &accounts)) {
        None => {}
        Some(check) => match check {
            BearerCheck::Valid(claims) => request = request.data(Viewer(*claims)),
            BearerCheck::Invalid => {
                let body = serde_json::json!({
                    "errors": [{ "message": "invalid or expired access token: refresh it or sign in again", "extensions": { "code": "UNAUTHENTICATED" } }]
                });
                return Either::Right(HttpResponse::Unauthorized().json(body));
            }
        },
    }
    Either::Left(schema.execute(request).await.into())
}

/// A request's bearer token, verified once per request (by the rate limit, or by the handler).
#[derive(Clone)]
enum BearerCheck {
    Valid(Box<emsp_accounts::Claims>),
    Invalid,
}

/// `None` without a bearer token.
fn check_bearer(http: &HttpRequest, accounts: &Accounts) -> Option<BearerCheck> {
    let token = bearer(http)?;
    Some(match accounts.verify(token) {
        Ok(claims) => BearerCheck::Valid(Box::new(claims)),
        Err(error) => {
            tracing::info!(%error, "refused an access token");
            BearerCheck::Invalid
        }
    })
}

fn bearer(http: &HttpRequest) -> Option<&str> {
    let value = http.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// `GET /.well-known/jwks.json`: the public keys access tokens are signed with.
pub async fn jwks(accounts: web::Data<Accounts>) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "max-age=300")).json(accounts.jwks())
}

/// Reloads signing keys every minute (a rotation by another replica is picked up, a due
/// rotation happens) and prunes expired refresh tokens every day.
pub async fn account_upkeep(accounts: Accounts, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut minutes = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.changed() => return,
        }
        minutes += 1;
        let upkeep = accounts.clone();
        let prune = minutes.is_multiple_of(24 * 60);
        let result = tokio::task::spawn_blocking(move || {
            upkeep.rotate_keys_if_due()?;
            upkeep.reload_keys()?;
            if prune {
                let pruned = upkeep.prune_expired_refresh_tokens()?;
                tracing::info!(pruned, "expired refresh tokens pruned");
            }
            Ok::<(), emsp_accounts::AuthError>(())
        })
        .await;
        if let Ok(Err(error)) = result {
            tracing::warn!(%error, "account upkeep failed; retried in a minute");
        }
    }
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

/// Parsed documents of the query texts seen most recently. Apps send a handful of query texts
/// with different variables; parsing one (a PEG parser) costs more than copying its tree, so a
/// repeated text skips the parser. Validation still runs on every request (it depends on the
/// variables). Bounded: when full, it starts over.
#[derive(Default)]
pub struct DocumentCache {
    documents: Mutex<HashMap<Box<str>, ExecutableDocument>>,
}

/// Texts longer than this are parsed every time (and never fill the cache).
const MAX_CACHED_QUERY_BYTES: usize = 8 * 1024;
const MAX_CACHED_QUERIES: usize = 512;

impl DocumentCache {
    /// Gives `request` its parsed document, from the cache or by parsing it (a text that does not
    /// parse is left for the executor, which reports the error).
    pub fn prepare(&self, request: &mut async_graphql::Request) {
        if request.query.len() > MAX_CACHED_QUERY_BYTES {
            return;
        }
        if let Some(document) = self.documents.lock().ok().and_then(|d| d.get(request.query.as_str()).cloned()) {
            request.set_parsed_query(document);
            return;
        }
        let Ok(document) = request.parsed_query().cloned() else { return };
        if let Ok(mut documents) = self.documents.lock() {
            if documents.len() >= MAX_CACHED_QUERIES {
                documents.clear();
            }
            documents.insert(Box::from(request.query.as_str()), document);
        }
    }
}

/// Who a rate limit counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    User(String),
    Address(IpAddr),
}

/// Requests per client in fixed one-minute windows. Small and exact enough for abuse control; a
/// replica counts alone.
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<Client, (Instant, u32)>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl RateLimiter {
    /// Whether one more request of `client` fits in `limit` per minute.
    pub fn allow(&self, client: Client, limit: u32) -> bool {
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
    let accounts = req.app_data::<web::Data<Accounts>>().cloned();
    if let (Some(state), Some(limiter)) = (state, limiter)
        && state.config.api.rate_limit_per_minute > 0
    {
        let limit = state.config.api.rate_limit_per_minute;
        // A signed-in user has a budget of its own wherever it comes from; anonymous clients
        // share their address's. The handler reuses this verification.
        let check = accounts.and_then(|accounts| check_bearer(req.request(), &accounts));
        let client = match &check {
            Some(BearerCheck::Valid(claims)) => Some(Client::User(claims.sub.clone())),
            _ => req.peer_addr().map(|addr| Client::Address(addr.ip())),
        };
        if let Some(check) = check {
            req.extensions_mut().insert(check);
        }
        if let Some(client) = client
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
    fn repeated_queries_skip_the_parser() {
        let cache = DocumentCache::default();
        let text = "query($a: Int) { chargers(first: $a) { totalCount } }";
        let mut first = async_graphql::Request::new(text);
        cache.prepare(&mut first);
        assert_eq!(cache.documents.lock().unwrap().len(), 1);
        let mut second = async_graphql::Request::new(text);
        cache.prepare(&mut second);
        let (a, b) = (format!("{:?}", first.parsed_query().unwrap()), format!("{:?}", second.parsed_query().unwrap()));
        assert_eq!(a, b);
        let mut broken = async_graphql::Request::new("{ chargers(");
        cache.prepare(&mut broken);
        assert_eq!(cache.documents.lock().unwrap().len(), 1, "texts that do not parse are not kept");
    }

    #[test]
    fn limits_per_client() {
        let limiter = RateLimiter::default();
        let a = Client::Address("10.0.0.1".parse().unwrap());
        let b = Client::Address("10.0.0.2".parse().unwrap());
        assert!((0..3).all(|_| limiter.allow(a.clone(), 3)));
        assert!(!limiter.allow(a, 3));
        assert!(limiter.allow(b, 3), "another client has its own budget");
        assert!(limiter.allow(Client::User("u1".into()), 3), "a user has its own budget");
    }
}
