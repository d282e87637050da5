//! GraphQL subscriptions over WebSocket: the graphql-transport-ws protocol of `graphql-ws`
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>) on `GET /graphql` with
//! `Upgrade: websocket` and the `graphql-transport-ws` subprotocol.
//!
//! The protocol is implemented here rather than by async-graphql's actor, because that one closes
//! a refused `connection_init` with 1002 instead of 4403, has no initialisation timeout and no
//! limit on subscriptions per connection.
//!
//! - **Authentication** in the `connection_init` payload: `{"Authorization": "Bearer <jwt>"}` or
//!   `{"accessToken": "<jwt>"}`. A token that does not verify closes with 4403; so does an
//!   anonymous connection when anonymous search is off (there is nothing it could subscribe to). A
//!   signed-in connection closes with 4403 when its access token expires: the app reconnects
//!   with a fresh one.
//! - **Protocol errors** close the socket with the protocol's codes: 4400 for a message that is
//!   not one of the protocol's, 4401 for `subscribe` before the `connection_ack`, 4408 when no
//!   `connection_init` came within `EMSP_WS_INIT_TIMEOUT_S`, 4409 for a second subscription with a
//!   live id, 4429 for a second `connection_init`.
//! - **Limits**: at most `EMSP_WS_MAX_CONNECTIONS` open connections (more are answered 503 before
//!   the upgrade), `EMSP_WS_MAX_SUBSCRIPTIONS` per connection (more get an `error` message with
//!   `RATE_LIMITED`), messages of at most 64 KiB. The server pings every `EMSP_WS_KEEPALIVE_S`
//!   and drops a peer it has not heard from for two intervals.
//! - Each subscription is a task on the connection's worker thread; its results go to the
//!   connection through a bounded channel, so a slow client slows only its own subscriptions
//!   (the event bus then lets them lag, see `emsp_events`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::guard::GuardContext;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use async_graphql::Response;
use emsp_accounts::{Accounts, Claims};
use emsp_graphql::{EmspSchema, Viewer};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::ApiConfig;

const SUBPROTOCOL: &str = "graphql-transport-ws";
/// Largest message a client may send.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Open connections and the limits of new ones.
pub struct Sockets {
    open: AtomicUsize,
    max_connections: usize,
    max_subscriptions: usize,
    init_timeout: Duration,
    keepalive: Duration,
    anonymous: bool,
}

impl Sockets {
    pub fn new(config: &ApiConfig) -> Self {
        Self {
            open: AtomicUsize::new(0),
            max_connections: config.ws_max_connections,
            max_subscriptions: config.ws_max_subscriptions.max(1),
            init_timeout: Duration::from_secs(config.ws_init_timeout_s.max(1)),
            keepalive: Duration::from_secs(config.ws_keepalive_s.max(1)),
            anonymous: config.anonymous_search,
        }
    }
}

/// Gives a connection slot back when the connection ends, however it ends.
struct Slot(web::Data<Sockets>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Route guard: a WebSocket upgrade request.
pub fn is_upgrade(ctx: &GuardContext<'_>) -> bool {
    ctx.head().headers().get(header::UPGRADE).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

fn offers_subprotocol(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == SUBPROTOCOL)
}

fn http_error(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))
}

/// `GET /graphql` with `Upgrade: websocket`.
pub async fn upgrade(
    request: HttpRequest,
    body: web::Payload,
    schema: web::Data<EmspSchema>,
    accounts: web::Data<Accounts>,
    sockets: web::Data<Sockets>,
) -> actix_web::Result<HttpResponse> {
    if !offers_subprotocol(&request) {
        return Ok(http_error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "WebSocket clients must offer the graphql-transport-ws subprotocol",
        ));
    }
    if sockets.open.fetch_add(1, Ordering::Relaxed) >= sockets.max_connections {
        sockets.open.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!(limit = sockets.max_connections, "websocket connection refused: limit reached");
        return Ok(http_error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "RATE_LIMITED",
            "too many open connections, retry later",
        ));
    }
    let slot = Slot(sockets.clone());
    let (mut response, session, stream) = actix_ws::handle(&request, body)?;
    response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
    let stream =
        stream.max_frame_size(MAX_MESSAGE_BYTES).aggregate_continuations().max_continuation_size(MAX_MESSAGE_BYTES);
    let connection = Connection {
        schema: schema.into_inner(),
        accounts: accounts.into_inner(),
        sockets: sockets.into_inner(),
        session,
        viewer: None,
        init: Init::Waiting,
        subscriptions: HashMap::new(),
    };
    actix_web::rt::spawn(async move {
        let _slot = slot;
        connection.run(stream).await;
    });
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        #[allow(dead_code)]
        payload: Option<Value>,
    },
    Pong {
        #[serde(default)]
        #[allow(dead_code)]
        payload: Option<Value>,
    },
    Subscribe {
        id: String,
        payload: Box<async_graphql::Request>,
    },
    Complete {
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Init {
    Waiting,
    Acknowledged,
}

/// What subscription tasks tell their connection.
enum Outgoing {
    Message(String),
    /// The subscription ended; `complete` says whether to send `complete` (not after `error`).
    Finished {
        id: String,
        complete: bool,
    },
}

struct Connection {
    schema: std::sync::Arc<EmspSchema>,
    accounts: std::sync::Arc<Accounts>,
    sockets: std::sync::Arc<Sockets>,
    session: Session,
    viewer: Option<Claims>,
    init: Init,
    subscriptions: HashMap<String, JoinHandle<()>>,
}

fn close(code: u16, description: &str) -> CloseReason {
    CloseReason { code: CloseCode::Other(code), description: Some(description.to_owned()) }
}

/// The access token of a `connection_init` payload, if it names one.
fn token_of(payload: Option<&Value>) -> Option<&str> {
    let payload = payload?.as_object()?;
    if let Some(token) = payload.get("accessToken").and_then(Value::as_str) {
        return Some(token.trim());
    }
    let header = payload
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str())?;
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

impl Connection {
    async fn run(mut self, mut stream: actix_ws::AggregatedMessageStream) {
        let (outgoing, mut results) = mpsc::channel::<Outgoing>(64);
        let init_deadline = tokio::time::sleep(self.sockets.init_timeout);
        tokio::pin!(init_deadline);
        // Far in the future until a token says otherwise.
        let expiry = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
        tokio::pin!(expiry);
        let keepalive = self.sockets.keepalive;
        let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        let mut last_heard = Instant::now();
        let reason: Option<CloseReason> = loop {
            tokio::select! {
                () = &mut init_deadline, if self.init == Init::Waiting => {
                    break Some(close(4408, "Connection initialisation timeout"));
                }
                () = &mut expiry => break Some(close(4403, "Forbidden: the access token expired")),
                _ = pings.tick() => {
                    if last_heard.elapsed() > keepalive * 2 {
                        tracing::debug!("websocket peer silent, dropped");
                        break None;
                    }
                    if self.session.ping(b"").await.is_err() {
                        break None;
                    }
                }
                Some(result) = results.recv() => match result {
                    Outgoing::Message(text) => {
                        if self.session.text(text).await.is_err() {
                            break None;
                        }
                    }
                    Outgoing::Finished { id, complete } => {
                        if self.subscriptions.remove(&id).is_some()
                            && complete
                            && self.session.text(json!({ "id": id, "type": "complete" }).to_string()).await.is_err()
                        {
                            break None;
                        }
                    }
                },
                message = stream.recv() => {
                    last_heard = Instant::now();
                    match message {
                        None | Some(Ok(AggregatedMessage::Close(_))) => break None,
                        Some(Err(error)) => {
                            tracing::debug!(%error, "websocket protocol error");
                            break Some(close(4400, "Invalid message"));
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            if self.session.pong(&bytes).await.is_err() {
                                break None;
                            }
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Binary(_))) => break Some(close(4400, "Invalid message: text only")),
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            match self.handle(&text, &outgoing).await {
                                Ok(Some(expires_at)) => expiry.as_mut().reset(expires_at),
                                Ok(None) => {}
                                Err(reason) => break reason,
                            }
                        }
                    }
                }
            }
        };
        for (_, task) in self.subscriptions.drain() {
            task.abort();
        }
        let _ = self.session.close(reason).await;
    }

    /// Handles one client message. `Ok(Some(instant))`: the connection's token expires then;
    /// `Err`: close the connection (with this reason).
    async fn handle(
        &mut self,
        text: &str,
        outgoing: &mpsc::Sender<Outgoing>,
    ) -> Result<Option<tokio::time::Instant>, Option<CloseReason>> {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, "invalid graphql-transport-ws message");
                return Err(Some(close(4400, "Invalid message")));
            }
        };
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.init == Init::Acknowledged {
                    return Err(Some(close(4429, "Too many initialisation requests")));
                }
                let expires_at = match token_of(payload.as_ref()) {
                    Some(token) => match self.accounts.verify(token) {
                        Ok(claims) => {
                            let left = claims.exp.saturating_sub(chrono::Utc::now().timestamp()).max(0);
                            self.viewer = Some(claims);
                            Some(tokio::time::Instant::now() + Duration::from_secs(left as u64))
                        }
                        Err(error) => {
                            tracing::info!(%error, "websocket refused an access token");
                            return Err(Some(close(4403, "Forbidden: invalid or expired access token")));
                        }
                    },
                    None if self.sockets.anonymous => None,
                    None => return Err(Some(close(4403, "Forbidden: sign in first (accessToken in connection_init)"))),
                };
                self.init = Init::Acknowledged;
                self.send(json!({ "type": "connection_ack" })).await?;
                Ok(expires_at)
            }
            ClientMessage::Ping { .. } => {
                self.send(json!({ "type": "pong" })).await?;
                Ok(None)
            }
            ClientMessage::Pong { .. } => Ok(None),
            ClientMessage::Subscribe { id, payload } => {
                if self.init != Init::Acknowledged {
                    return Err(Some(close(4401, "Unauthorized")));
                }
                if self.subscriptions.contains_key(&id) {
                    return Err(Some(close(4409, &format!("Subscriber for {id} already exists"))));
                }
                if self.subscriptions.len() >= self.sockets.max_subscriptions {
                    let message = format!(
                        "too many subscriptions on this connection (at most {})",
                        self.sockets.max_subscriptions
                    );
                    let payload = json!([{ "message": message, "extensions": { "code": "RATE_LIMITED" } }]);
                    self.send(json!({ "id": id, "type": "error", "payload": payload })).await?;
                    return Ok(None);
                }
                let mut request = *payload;
                if let Some(claims) = &self.viewer {
                    request = request.data(Viewer(claims.clone()));
                }
                let task = spawn_subscription(&self.schema, request, id.clone(), outgoing.clone());
                self.subscriptions.insert(id, task);
                Ok(None)
            }
            ClientMessage::Complete { id } => {
                if let Some(task) = self.subscriptions.remove(&id) {
                    task.abort();
                }
                Ok(None)
            }
        }
    }

    async fn send(&mut self, message: Value) -> Result<(), Option<CloseReason>> {
        self.session.text(message.to_string()).await.map_err(|_| None)
    }
}

/// Runs one operation and forwards its results as `next` messages. An operation that fails
/// before it produced anything (a validation error, a charger that does not exist) is answered
/// with one `error` message, as the protocol asks.
fn spawn_subscription(
    schema: &EmspSchema,
    request: async_graphql::Request,
    id: String,
    outgoing: mpsc::Sender<Outgoing>,
) -> JoinHandle<()> {
    let mut results = schema.execute_stream(request);
    actix_web::rt::spawn(async move {
        let mut first = true;
        while let Some(response) = results.next().await {
            if first && failed_before_data(&response) {
                let errors = serde_json::to_value(&response.errors).unwrap_or_else(|_| json!([]));
                let message = json!({ "id": id, "type": "error", "payload": errors }).to_string();
                let _ = outgoing.send(Outgoing::Message(message)).await;
                let _ = outgoing.send(Outgoing::Finished { id, complete: false }).await;
                return;
            }
            first = false;
            let payload = serde_json::to_value(&response).unwrap_or_else(|_| json!({}));
            let message = json!({ "id": id, "type": "next", "payload": payload }).to_string();
            if outgoing.send(Outgoing::Message(message)).await.is_err() {
                return;
            }
        }
        let _ = outgoing.send(Outgoing::Finished { id, complete: true }).await;
    })
}

fn failed_before_data(response: &Response) -> bool {
    !response.errors.is_empty() && matches!(response.data, async_graphql::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_from_either_payload_form() {
        assert_eq!(token_of(Some(&json!({"Authorization": "Bearer abc"}))), Some("abc"));
        assert_eq!(token_of(Some(&json!({"authorization": "bearer  abc "}))), Some("abc"));
        assert_eq!(token_of(Some(&json!({"accessToken": "xyz"}))), Some("xyz"));
        assert_eq!(token_of(Some(&json!({"Authorization": "Basic abc"}))), None);
        assert_eq!(token_of(Some(&json!({}))), None);
        assert_eq!(token_of(None), None);
    }
}
