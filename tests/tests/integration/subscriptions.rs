//! GraphQL subscriptions over a real WebSocket (graphql-transport-ws): an EVSE status pushed by
//! the CPO simulator reaches a `chargerStatus` subscriber; authentication in `connection_init`;
//! the protocol's close codes; the limits.

use std::time::{Duration, Instant};

use emsp_cpo_sim::{SimData, SimOptions};
use emsp_roaming::pull::{PullOptions, pull_partner};
use emsp_roaming::register_with_partner;
use emsp_tests::{TestApp, TestBackend};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const STATUS: &str = "subscription($id: ID!) { chargerStatus(id: $id) { chargerId evses { uid status } } }";

async fn connect(app: &TestApp) -> Socket {
    let url = app.url("/graphql").replace("http://", "ws://");
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-transport-ws");
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.unwrap();
}

/// The next protocol message (skipping WebSocket pings), within 10 s.
async fn receive(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("no message within 10 s")
            .expect("the socket closed")
            .unwrap();
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// The close code the server ends the connection with, within `within`.
async fn closed_with(socket: &mut Socket, within: Duration) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, socket.next()).await.expect("the server did not close in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("socket error before the close frame: {error}"),
        }
    }
}

async fn sign_up(app: &TestApp) -> String {
    let query = "mutation { register(email: \"ws@example.com\", password: \"correct horse battery\") { accessToken } }";
    let body: Value =
        app.client.post(app.url("/graphql")).json(&json!({"query": query})).send().await.unwrap().json().await.unwrap();
    body["data"]["register"]["accessToken"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
}

#[tokio::test]
async fn a_status_pushed_by_the_cpo_reaches_the_subscriber() {
    let Some(app) = TestApp::start(TestBackend::Sqlite).await else { return };
    let cpo = emsp_cpo_sim::start(SimOptions {
        data: SimData::Generated { locations: 5 },
        status_rate_per_s: 0.0,
        seed: 11,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let outcome =
        register_with_partner(&app.roaming(), "simulated CPO", &cpo.versions_url, &cpo.token_a).await.unwrap();
    pull_partner(&app.roaming(), &outcome.partner_id, &PullOptions { full: true, ..Default::default() }, &|_| {})
        .await
        .unwrap();
    let index = app.index();
    let started = Instant::now();
    while index.stats().locations < 5 {
        assert!(started.elapsed() < Duration::from_secs(15), "pulled locations not searchable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (location_id, uid) = cpo.evses().into_iter().next().unwrap();
    let key = format!("NL*SIM*{}", location_id.to_ascii_uppercase());

    // Signed in with the Authorization form of the payload.
    let token = sign_up(&app).await;
    let mut socket = connect(&app).await;
    send(&mut socket, json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}))
        .await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(receive(&mut socket).await["type"], "pong");
    send(&mut socket, json!({"id": "s1", "type": "subscribe", "payload": {"query": STATUS, "variables": {"id": key}}}))
        .await;
    let first = receive(&mut socket).await;
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(first["id"], "s1");
    let update = &first["payload"]["data"]["chargerStatus"];
    assert_eq!(update["chargerId"], key.as_str());
    let now = update["evses"].as_array().unwrap().iter().find(|e| e["uid"] == uid.as_str()).unwrap()["status"]
        .as_str()
        .unwrap()
        .to_owned();
    let wanted = if now == "AVAILABLE" { "CHARGING" } else { "AVAILABLE" };

    // The CPO pushes a status change (OCPI PATCH to our receiver): store, feed, index, bus, socket.
    assert!(cpo.push_status(&location_id, &uid, wanted).await);
    let next = receive(&mut socket).await;
    assert_eq!(next["type"], "next", "{next}");
    let evse = next["payload"]["data"]["chargerStatus"]["evses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uid"] == uid.as_str())
        .cloned();
    assert_eq!(evse.unwrap()["status"], wanted, "{next}");

    // A charger that does not exist: one `error` message for that subscription, no `complete`.
    send(
        &mut socket,
        json!({"id": "s2", "type": "subscribe", "payload": {"query": STATUS, "variables": {"id": "NL*SIM*NOPE"}}}),
    )
    .await;
    let error = receive(&mut socket).await;
    assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("s2")), "{error}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "NOT_FOUND");

    // Completing from the client stops the updates; the connection stays usable.
    send(&mut socket, json!({"id": "s1", "type": "complete"})).await;
    assert!(cpo.push_status(&location_id, &uid, &now).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(&mut socket, json!({"type": "ping"})).await;
    let answer = receive(&mut socket).await;
    assert_eq!(answer["type"], "pong", "no update after complete: {answer}");
    socket.close(None).await.unwrap();
    cpo.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn authentication_and_protocol_errors_close_with_the_protocol_codes() {
    let Some(db) = TestApp::database(TestBackend::Sqlite) else { return };
    let app = TestApp::start_configured(
        db,
        &[("EMSP_WS_INIT_TIMEOUT_S", "1"), ("EMSP_WS_MAX_SUBSCRIPTIONS", "1"), ("EMSP_GRAPHIQL", "true")],
    )
    .await;

    // A token that does not verify: 4403.
    let mut socket = connect(&app).await;
    send(&mut socket, json!({"type": "connection_init", "payload": {"accessToken": "not.a.jwt"}})).await;
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4403);

    // No connection_init in time: 4408.
    let mut socket = connect(&app).await;
    let started = Instant::now();
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4408);
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the timeout");

    // Subscribing before the acknowledgement: 4401.
    let mut socket = connect(&app).await;
    send(&mut socket, json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { chargerStatus(id: \"X\") { chargerId } }"}})).await;
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4401);

    // Not a protocol message: 4400. A second connection_init: 4429.
    let mut socket = connect(&app).await;
    send(&mut socket, json!({"type": "hello"})).await;
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4400);
    let mut socket = connect(&app).await;
    send(&mut socket, json!({"type": "connection_init"})).await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    send(&mut socket, json!({"type": "connection_init"})).await;
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4429);

    // One subscription per connection here: the second is refused with an error, a reused id
    // closes with 4409. (A charger that does not exist still holds its id until it ends.)
    let index = app.index();
    let mut charger = emsp_domain::fixtures::location("WS1", 52.0, 4.0);
    charger.evses.truncate(1);
    index.upsert(&charger).unwrap();
    let mut socket = connect(&app).await;
    send(&mut socket, json!({"type": "connection_init", "payload": {}})).await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    let subscribe = |id: &str| json!({"id": id, "type": "subscribe", "payload": {"query": STATUS, "variables": {"id": "NL*ABC*WS1"}}});
    send(&mut socket, subscribe("a")).await;
    assert_eq!(receive(&mut socket).await["type"], "next");
    send(&mut socket, subscribe("b")).await;
    let refused = receive(&mut socket).await;
    assert_eq!((refused["type"].as_str(), refused["id"].as_str()), (Some("error"), Some("b")), "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    send(&mut socket, subscribe("a")).await;
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4409);

    // Without the subprotocol there is no upgrade; a plain GET still serves GraphiQL.
    let url = app.url("/graphql").replace("http://", "ws://");
    assert!(tokio_tungstenite::connect_async(url).await.is_err(), "the subprotocol is required");
    let page = app.get("/graphql").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
    app.stop().await;
}

#[tokio::test]
async fn anonymous_connections_need_anonymous_search() {
    let Some(db) = TestApp::database(TestBackend::Sqlite) else { return };
    let app = TestApp::start_configured(db, &[("EMSP_ANONYMOUS_SEARCH", "false")]).await;
    let mut socket = connect(&app).await;
    send(&mut socket, json!({"type": "connection_init"})).await;
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4403);
    // A signed-in driver may, with the accessToken form.
    let token = sign_up(&app).await;
    let mut socket = connect(&app).await;
    send(&mut socket, json!({"type": "connection_init", "payload": {"accessToken": token}})).await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    app.stop().await;
}
