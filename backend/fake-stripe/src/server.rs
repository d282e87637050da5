//! The fake's HTTP server, state and webhook sender.
//!
//! State lives in memory behind one mutex, held only for in-memory work (never across an
//! `.await`). Webhooks leave through one sender task on the runtime that called
//! [`FakeStripe::start`], in the order events happened, unless faults hold, reorder or
//! duplicate them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::objects::{
    AutomaticPaymentMethods, Charge, Dispute, ErrorBody, Event, EventData, EventObject, EventRequest, Metadata,
    NextAction, PaymentError, PaymentIntent, Refund, RefundList, SetupIntent,
};

/// Stripe's test payment methods the fake understands (anything else authorises like a Visa).
pub const TEST_PAYMENT_METHODS: &[(&str, &str)] = &[
    ("pm_card_visa", "authorises"),
    ("pm_card_chargeDeclined", "declined (generic_decline)"),
    ("pm_card_chargeDeclinedInsufficientFunds", "declined (insufficient_funds)"),
    ("pm_card_threeDSecure2Required", "3-D Secure required, also off-session (authentication_required)"),
    ("pm_card_authenticationRequired", "3-D Secure required, also off-session (authentication_required)"),
];

/// How the fake is set up.
#[derive(Debug, Clone)]
pub struct FakeStripeConfig {
    /// The secret key callers must send as `Authorization: Bearer ...`.
    pub api_key: String,
    /// Where events are POSTed; `None`: events are only kept.
    pub webhook_url: Option<String>,
    /// Endpoint secrets; every delivery carries one `v1` signature per secret (as Stripe does
    /// while an old secret is still valid after a roll).
    pub webhook_secrets: Vec<String>,
}

impl Default for FakeStripeConfig {
    fn default() -> Self {
        FakeStripeConfig {
            api_key: "sk_test_fake".into(),
            webhook_url: None,
            webhook_secrets: vec!["whsec_fake".into()],
        }
    }
}

/// Faults on demand. Counters apply to the next N API requests.
#[derive(Debug, Default)]
pub struct Faults {
    /// Answer 500 without doing anything.
    pub fail_next: AtomicU32,
    /// Do the work (and keep its idempotent result) but answer 500: the caller's answer is lost.
    pub lose_next_answers: AtomicU32,
    /// Do the work, then wait `delay_ms` before answering (the caller times out).
    pub delay_next: AtomicU32,
    pub delay_ms: AtomicU64,
    /// Every confirmation needs 3-D Secure (off-session: declined with `authentication_required`).
    pub require_3ds: AtomicBool,
    /// Decline the next N confirmations (`generic_decline`).
    pub decline_next: AtomicU32,
    /// Keep events instead of sending them, until [`FakeStripe::release_held_webhooks`].
    pub hold_webhooks: AtomicBool,
    /// Send every event twice.
    pub duplicate_webhooks: AtomicBool,
}

fn take(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

/// One webhook delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub event_type: String,
    /// The receiver's HTTP status; 0 when it could not be reached.
    pub status: u16,
}

struct Cached {
    fingerprint: String,
    status: u16,
    body: String,
}

#[derive(Default)]
struct State {
    seq: u64,
    intents: BTreeMap<String, PaymentIntent>,
    /// Off-session intents (may not ask for 3-D Secure) and intents whose 3-D Secure is done.
    off_session: HashSet<String>,
    authenticated: HashSet<String>,
    charges: BTreeMap<String, Charge>,
    setups: BTreeMap<String, SetupIntent>,
    customers: BTreeMap<String, serde_json::Value>,
    idempotency: HashMap<String, Cached>,
    /// Every event ever emitted, in order.
    events: Vec<Event>,
    /// Emitted during the current request, to dispatch after it.
    pending: Vec<Event>,
    held: Vec<Event>,
    deliveries: Vec<Delivery>,
    now: i64,
}

impl State {
    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}_fake{:016}", self.seq)
    }

    fn emit(&mut self, kind: &str, object: EventObject, idempotency_key: Option<&str>) {
        let id = self.next_id("evt");
        let event = Event {
            id,
            object: "event",
            api_version: "2025-09-30.clover",
            created: self.now,
            data: EventData { object },
            livemode: false,
            pending_webhooks: 1,
            request: EventRequest {
                id: idempotency_key.map(|_| format!("req_fake{}", self.seq)),
                idempotency_key: idempotency_key.map(str::to_owned),
            },
            kind: kind.to_owned(),
        };
        self.events.push(event.clone());
        self.pending.push(event);
    }
}

struct Shared {
    config: FakeStripeConfig,
    /// Settable after start: the receiver's address is often known only later.
    webhook_url: Mutex<Option<String>>,
    faults: Arc<Faults>,
    state: Mutex<State>,
    outbox: mpsc::UnboundedSender<Event>,
}

/// A running fake Stripe.
pub struct FakeStripe {
    addr: SocketAddr,
    handle: ServerHandle,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

type Answer = Result<(u16, String), (u16, PaymentError)>;

fn invalid(message: impl Into<String>, code: Option<&str>) -> (u16, PaymentError) {
    (
        400,
        PaymentError {
            kind: "invalid_request_error".into(),
            code: code.map(str::to_owned),
            decline_code: None,
            message: message.into(),
            payment_intent: None,
        },
    )
}

fn not_found(what: &str, id: &str) -> (u16, PaymentError) {
    (
        404,
        PaymentError {
            kind: "invalid_request_error".into(),
            code: Some("resource_missing".into()),
            decline_code: None,
            message: format!("No such {what}: '{id}'"),
            payment_intent: None,
        },
    )
}

fn json<T: serde::Serialize>(value: &T) -> Answer {
    serde_json::to_string(value).map(|body| (200, body)).map_err(|e| (500, api_error(e.to_string())))
}

fn api_error(message: String) -> PaymentError {
    PaymentError { kind: "api_error".into(), code: None, decline_code: None, message, payment_intent: None }
}

/// Form parameters as Stripe reads them (`a[b]=c` kept as the flat key `a[b]`).
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn amount(&self, key: &str) -> Result<Option<i64>, (u16, PaymentError)> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(invalid(format!("Invalid positive integer: {key}"), Some("parameter_invalid_integer"))),
            },
        }
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }

    fn metadata(&self) -> Metadata {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("metadata[")
                    .and_then(|rest| rest.strip_suffix(']'))
                    .map(|key| (key.to_owned(), v.clone()))
            })
            .collect()
    }

    fn fingerprint(&self, method: &str, path: &str) -> String {
        let mut pairs = self.0.clone();
        pairs.sort();
        format!("{method} {path} {pairs:?}")
    }
}

impl FakeStripe {
    /// Starts the fake on a free loopback port.
    pub async fn start(config: FakeStripeConfig) -> std::io::Result<FakeStripe> {
        let (outbox, inbox) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            webhook_url: Mutex::new(config.webhook_url.clone()),
            config,
            faults: Arc::new(Faults::default()),
            state: Mutex::new(State::default()),
            outbox,
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(api)))
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))?;
        let addr = server.addrs().first().copied().ok_or_else(|| std::io::Error::other("no address bound"))?;
        let server = server.run();
        let handle = server.handle();
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::warn!(%error, "fake stripe stopped");
            }
        })];
        tasks.push(tokio::spawn(deliver(shared.clone(), inbox)));
        Ok(FakeStripe { addr, handle, shared, tasks })
    }

    /// The base URL to configure as the Stripe API base (`http://127.0.0.1:PORT/`).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Where events go from now on.
    pub fn set_webhook_url(&self, url: &str) {
        *self.shared.webhook_url.lock() = Some(url.to_owned());
    }

    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// How many customers were created (idempotent replays create none).
    pub fn customer_count(&self) -> usize {
        self.shared.state.lock().customers.len()
    }

    pub fn intent(&self, id: &str) -> Option<PaymentIntent> {
        self.shared.state.lock().intents.get(id).cloned()
    }

    pub fn intents(&self) -> Vec<PaymentIntent> {
        self.shared.state.lock().intents.values().cloned().collect()
    }

    /// Everything captured so far, over all intents (minus nothing: refunds are separate).
    pub fn captured_total(&self) -> i64 {
        self.shared.state.lock().intents.values().map(|i| i.amount_received).sum()
    }

    pub fn refunded_total(&self) -> i64 {
        self.shared.state.lock().charges.values().map(|c| c.amount_refunded).sum()
    }

    pub fn events(&self) -> Vec<Event> {
        self.shared.state.lock().events.clone()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.state.lock().deliveries.clone()
    }

    /// Sends the held events, in reverse order when `reverse`.
    pub fn release_held_webhooks(&self, reverse: bool) {
        let mut held = std::mem::take(&mut self.shared.state.lock().held);
        if reverse {
            held.reverse();
        }
        for event in held {
            let _ = self.shared.outbox.send(event);
        }
    }

    /// Sends `event_id` again (a redelivery).
    pub fn resend(&self, event_id: &str) -> bool {
        let event = self.shared.state.lock().events.iter().find(|e| e.id == event_id).cloned();
        event.is_some_and(|e| self.shared.outbox.send(e).is_ok())
    }

    /// Waits until at least `count` deliveries were attempted, up to `limit`.
    pub async fn wait_for_deliveries(&self, count: usize, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.shared.state.lock().deliveries.len() >= count {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The cardholder disputes the charge of `intent_id` (`charge.dispute.created`).
    pub fn dispute(&self, intent_id: &str) -> bool {
        let mut state = self.shared.state.lock();
        state.now = now();
        let Some(charge) = state.intents.get(intent_id).and_then(|i| i.latest_charge.clone()) else { return false };
        let Some(charge) = state.charges.get_mut(&charge) else { return false };
        charge.disputed = true;
        let dispute = Dispute {
            id: String::new(),
            object: "dispute",
            amount: charge.amount_captured,
            charge: charge.id.clone(),
            created: 0,
            currency: charge.currency.clone(),
            is_charge_refundable: false,
            livemode: false,
            metadata: Metadata::new(),
            payment_intent: intent_id.to_owned(),
            reason: "fraudulent",
            status: "needs_response",
        };
        let id = state.next_id("dp");
        let created = state.now;
        state.emit("charge.dispute.created", EventObject::Dispute(Box::new(Dispute { id, created, ..dispute })), None);
        dispatch(&self.shared, &mut state);
        true
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        for task in self.tasks {
            task.abort();
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Sends the events of the current request to the sender, or holds them.
fn dispatch(shared: &Shared, state: &mut State) {
    let pending = std::mem::take(&mut state.pending);
    if shared.faults.hold_webhooks.load(Ordering::SeqCst) {
        state.held.extend(pending);
        return;
    }
    for event in pending {
        let _ = shared.outbox.send(event);
    }
}

/// Stripe's signature header: `t=...,v1=...` with one `v1` per endpoint secret.
fn signature_header(secrets: &[String], timestamp: i64, payload: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { continue };
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(payload);
        header.push_str(&format!(",v1={}", hex::encode(mac.finalize().into_bytes())));
    }
    header
}

async fn deliver(shared: Arc<Shared>, mut inbox: mpsc::UnboundedReceiver<Event>) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "fake stripe cannot send webhooks");
            return;
        }
    };
    while let Some(event) = inbox.recv().await {
        let Some(url) = shared.webhook_url.lock().clone() else { continue };
        let Ok(payload) = serde_json::to_vec(&event) else { continue };
        let copies = if shared.faults.duplicate_webhooks.load(Ordering::SeqCst) { 2 } else { 1 };
        for _ in 0..copies {
            // Stripe retries failed deliveries for days; the fake tries three times.
            for attempt in 0..3u64 {
                let header = signature_header(&shared.config.webhook_secrets, now(), &payload);
                let sent = client
                    .post(&url)
                    .header("Content-Type", "application/json; charset=utf-8")
                    .header("Stripe-Signature", header)
                    .body(payload.clone())
                    .send()
                    .await;
                let status = sent.map(|r| r.status().as_u16()).unwrap_or(0);
                shared.state.lock().deliveries.push(Delivery {
                    event_id: event.id.clone(),
                    event_type: event.kind.clone(),
                    status,
                });
                if (200..300).contains(&status) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
            }
        }
    }
}

fn respond(status: u16, body: String, replayed: bool) -> HttpResponse {
    let mut response = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    response.content_type("application/json");
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.body(body)
}

fn error_response((status, error): (u16, PaymentError)) -> (u16, String) {
    let body = serde_json::to_string(&ErrorBody { error }).unwrap_or_else(|_| "{}".into());
    (status, body)
}

async fn api(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let expected = format!("Bearer {}", shared.config.api_key);
    let authorized = req.headers().get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if !authorized {
        let (status, body) = error_response((
            401,
            PaymentError {
                kind: "invalid_request_error".into(),
                code: None,
                decline_code: None,
                message: "Invalid API Key provided".into(),
                payment_intent: None,
            },
        ));
        return respond(status, body, false);
    }
    if take(&shared.faults.fail_next) {
        let (status, body) = error_response((500, api_error("An unknown error occurred".into())));
        return respond(status, body, false);
    }
    let params = match serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
        Ok(pairs) => Params(pairs),
        Err(_) => {
            let (status, body) = error_response(invalid("Invalid request body", None));
            return respond(status, body, false);
        }
    };
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    let key = req.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let fingerprint = params.fingerprint(&method, &path);

    let (status, body, replayed) = {
        let mut state = shared.state.lock();
        state.now = now();
        let cached = key.as_ref().filter(|_| method == "POST").and_then(|k| state.idempotency.get(k));
        match cached {
            Some(cached) if cached.fingerprint == fingerprint => (cached.status, cached.body.clone(), true),
            Some(_) => {
                let message = "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than the one you used.";
                let (status, body) = error_response((
                    400,
                    PaymentError {
                        kind: "idempotency_error".into(),
                        code: None,
                        decline_code: None,
                        message: message.into(),
                        payment_intent: None,
                    },
                ));
                (status, body, false)
            }
            None => {
                let answer = route(&shared, &mut state, &method, &path, &params, key.as_deref());
                let (status, body) = match answer {
                    Ok(ok) => ok,
                    Err(error) => error_response(error),
                };
                if let (Some(key), "POST") = (&key, method.as_str()) {
                    state.idempotency.insert(key.clone(), Cached { fingerprint, status, body: body.clone() });
                }
                dispatch(&shared, &mut state);
                (status, body, false)
            }
        }
    };
    if take(&shared.faults.lose_next_answers) {
        let (status, body) = error_response((500, api_error("An unknown error occurred".into())));
        return respond(status, body, false);
    }
    if take(&shared.faults.delay_next) {
        tokio::time::sleep(Duration::from_millis(shared.faults.delay_ms.load(Ordering::SeqCst))).await;
    }
    respond(status, body, replayed)
}

fn route(shared: &Shared, state: &mut State, method: &str, path: &str, params: &Params, key: Option<&str>) -> Answer {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["v1", "payment_intents"]) => create_intent(shared, state, params, key),
        ("GET", ["v1", "payment_intents", id]) => {
            state.intents.get(*id).map_or_else(|| Err(not_found("payment_intent", id)), json)
        }
        ("POST", ["v1", "payment_intents", id, "confirm"]) => confirm_intent(shared, state, id, params, key, true),
        ("POST", ["v1", "payment_intents", id, "capture"]) => capture_intent(state, id, params, key),
        ("POST", ["v1", "payment_intents", id, "cancel"]) => cancel_intent(state, id, key),
        ("POST", ["v1", "refunds"]) => create_refund(state, params, key),
        ("POST", ["v1", "setup_intents"]) => create_setup(state, params),
        ("POST", ["v1", "setup_intents", id, "confirm"]) => confirm_setup(state, id, params, key),
        ("POST", ["v1", "customers"]) => create_customer(state, params),
        ("GET", ["v1", "customers", id]) => {
            state.customers.get(*id).map_or_else(|| Err(not_found("customer", id)), json)
        }
        ("GET", ["v1", "setup_intents", id]) => {
            state.setups.get(*id).map_or_else(|| Err(not_found("setup_intent", id)), json)
        }
        _ => Err((
            404,
            PaymentError {
                kind: "invalid_request_error".into(),
                code: None,
                decline_code: None,
                message: format!("Unrecognized request URL ({method}: {path})."),
                payment_intent: None,
            },
        )),
    }
}

fn create_intent(shared: &Shared, state: &mut State, params: &Params, key: Option<&str>) -> Answer {
    let Some(amount) = params.amount("amount")? else {
        return Err(invalid("Missing required param: amount.", Some("parameter_missing")));
    };
    let Some(currency) = params.get("currency").filter(|c| c.len() == 3) else {
        return Err(invalid("Missing required param: currency.", Some("parameter_missing")));
    };
    let capture_method = params.get("capture_method").unwrap_or("automatic_async").to_owned();
    if !["automatic", "automatic_async", "manual"].contains(&capture_method.as_str()) {
        return Err(invalid(format!("Invalid capture_method: {capture_method}"), Some("parameter_invalid_string")));
    }
    let off_session = params.flag("off_session");
    if off_session && params.get("customer").is_none() {
        return Err(invalid("off_session payments need a customer", Some("parameter_missing")));
    }
    let id = state.next_id("pi");
    let intent = PaymentIntent {
        id: id.clone(),
        object: "payment_intent",
        amount,
        amount_capturable: 0,
        amount_received: 0,
        application: None,
        application_fee_amount: None,
        automatic_payment_methods: Some(AutomaticPaymentMethods {
            enabled: params.get("automatic_payment_methods[enabled]") != Some("false"),
            allow_redirects: params.get("automatic_payment_methods[allow_redirects]").map(str::to_owned),
        }),
        canceled_at: None,
        cancellation_reason: None,
        capture_method,
        client_secret: format!("{id}_secret_fake{}", state.seq),
        confirmation_method: "automatic",
        created: state.now,
        currency: currency.to_ascii_lowercase(),
        customer: params.get("customer").map(str::to_owned),
        description: params.get("description").map(str::to_owned),
        last_payment_error: None,
        latest_charge: None,
        livemode: false,
        metadata: params.metadata(),
        next_action: None,
        on_behalf_of: None,
        payment_method: params.get("payment_method").map(str::to_owned),
        payment_method_types: vec!["card".into()],
        processing: None,
        receipt_email: None,
        review: None,
        setup_future_usage: params.get("setup_future_usage").map(str::to_owned),
        shipping: None,
        statement_descriptor: None,
        statement_descriptor_suffix: None,
        status: "requires_payment_method".into(),
        transfer_data: None,
        transfer_group: None,
    };
    state.intents.insert(id.clone(), intent.clone());
    if off_session {
        state.off_session.insert(id.clone());
    }
    state.emit("payment_intent.created", EventObject::PaymentIntent(Box::new(intent)), key);
    if params.flag("confirm") {
        return confirm_intent(shared, state, &id, params, key, false);
    }
    json(&state.intents[&id])
}

/// Confirms an intent; `by_cardholder`: the app completed 3-D Secure.
fn confirm_intent(
    shared: &Shared,
    state: &mut State,
    id: &str,
    params: &Params,
    key: Option<&str>,
    by_cardholder: bool,
) -> Answer {
    let Some(mut intent) = state.intents.get(id).cloned() else { return Err(not_found("payment_intent", id)) };
    if let Some(method) = params.get("payment_method") {
        intent.payment_method = Some(method.to_owned());
    }
    let Some(method) = intent.payment_method.clone() else {
        return Err(invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            Some("payment_intent_unexpected_state"),
        ));
    };
    if !["requires_payment_method", "requires_confirmation", "requires_action"].contains(&intent.status.as_str()) {
        return Err(invalid(
            format!("This PaymentIntent's status is {}.", intent.status),
            Some("payment_intent_unexpected_state"),
        ));
    }
    if by_cardholder {
        state.authenticated.insert(id.to_owned());
    }
    let off_session = state.off_session.contains(id);
    let needs_3ds = shared.faults.require_3ds.load(Ordering::SeqCst)
        || method == "pm_card_threeDSecure2Required"
        || method == "pm_card_authenticationRequired";
    let decline = if method == "pm_card_chargeDeclined" || take(&shared.faults.decline_next) {
        Some(("card_declined", "generic_decline", "Your card was declined."))
    } else if method == "pm_card_chargeDeclinedInsufficientFunds" {
        Some(("card_declined", "insufficient_funds", "Your card has insufficient funds."))
    } else if needs_3ds && off_session {
        Some((
            "authentication_required",
            "authentication_required",
            "Your card was declined. This transaction requires authentication.",
        ))
    } else {
        None
    };
    if let Some((code, decline_code, message)) = decline {
        let error = PaymentError {
            kind: "card_error".into(),
            code: Some(code.into()),
            decline_code: Some(decline_code.into()),
            message: message.into(),
            payment_intent: None,
        };
        intent.status = "requires_payment_method".into();
        intent.next_action = None;
        intent.last_payment_error = Some(error.clone());
        state.intents.insert(id.to_owned(), intent.clone());
        state.emit("payment_intent.payment_failed", EventObject::PaymentIntent(Box::new(intent.clone())), key);
        return Err((402, PaymentError { payment_intent: Some(Box::new(intent)), ..error }));
    }
    if needs_3ds && !state.authenticated.contains(id) {
        intent.status = "requires_action".into();
        intent.next_action = Some(NextAction { kind: "use_stripe_sdk".into() });
        state.intents.insert(id.to_owned(), intent.clone());
        state.emit("payment_intent.requires_action", EventObject::PaymentIntent(Box::new(intent.clone())), key);
        return json(&intent);
    }
    // Authorised: a charge exists from now on.
    let charge_id = state.next_id("ch");
    let manual = intent.capture_method == "manual";
    let charge = Charge {
        id: charge_id.clone(),
        object: "charge",
        amount: intent.amount,
        amount_captured: if manual { 0 } else { intent.amount },
        amount_refunded: 0,
        balance_transaction: None,
        captured: !manual,
        created: state.now,
        currency: intent.currency.clone(),
        customer: intent.customer.clone(),
        disputed: false,
        failure_code: None,
        failure_message: None,
        livemode: false,
        metadata: intent.metadata.clone(),
        paid: true,
        payment_intent: id.to_owned(),
        payment_method: Some(method),
        refunded: false,
        refunds: RefundList {
            object: "list",
            data: Vec::new(),
            has_more: false,
            url: format!("/v1/charges/{charge_id}/refunds"),
        },
        status: "succeeded",
    };
    state.charges.insert(charge_id.clone(), charge.clone());
    intent.latest_charge = Some(charge_id);
    intent.next_action = None;
    intent.last_payment_error = None;
    if manual {
        intent.status = "requires_capture".into();
        intent.amount_capturable = intent.amount;
        state.intents.insert(id.to_owned(), intent.clone());
        state.emit(
            "payment_intent.amount_capturable_updated",
            EventObject::PaymentIntent(Box::new(intent.clone())),
            key,
        );
    } else {
        intent.status = "succeeded".into();
        intent.amount_received = intent.amount;
        state.intents.insert(id.to_owned(), intent.clone());
        state.emit("charge.succeeded", EventObject::Charge(Box::new(charge)), key);
        state.emit("payment_intent.succeeded", EventObject::PaymentIntent(Box::new(intent.clone())), key);
    }
    json(&intent)
}

fn capture_intent(state: &mut State, id: &str, params: &Params, key: Option<&str>) -> Answer {
    let Some(mut intent) = state.intents.get(id).cloned() else { return Err(not_found("payment_intent", id)) };
    if intent.status != "requires_capture" {
        return Err(invalid(
            format!(
                "This PaymentIntent could not be captured because it has a status of {}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                intent.status
            ),
            Some("payment_intent_unexpected_state"),
        ));
    }
    let amount = params.amount("amount_to_capture")?.unwrap_or(intent.amount_capturable);
    if amount > intent.amount_capturable {
        return Err(invalid(
            "The amount to capture must be less than or equal to the amount capturable.",
            Some("amount_too_large"),
        ));
    }
    intent.status = "succeeded".into();
    intent.amount_received = amount;
    intent.amount_capturable = 0;
    if let Some(charge) = intent.latest_charge.as_ref().and_then(|c| state.charges.get_mut(c)) {
        charge.amount_captured = amount;
        charge.captured = true;
        let charge = charge.clone();
        state.emit("charge.captured", EventObject::Charge(Box::new(charge)), key);
    }
    state.intents.insert(id.to_owned(), intent.clone());
    state.emit("payment_intent.succeeded", EventObject::PaymentIntent(Box::new(intent.clone())), key);
    json(&intent)
}

fn cancel_intent(state: &mut State, id: &str, key: Option<&str>) -> Answer {
    let Some(mut intent) = state.intents.get(id).cloned() else { return Err(not_found("payment_intent", id)) };
    if !["requires_payment_method", "requires_capture", "requires_confirmation", "requires_action"]
        .contains(&intent.status.as_str())
    {
        return Err(invalid(
            format!("You cannot cancel this PaymentIntent because it has a status of {}.", intent.status),
            Some("payment_intent_unexpected_state"),
        ));
    }
    intent.status = "canceled".into();
    intent.amount_capturable = 0;
    intent.canceled_at = Some(state.now);
    intent.next_action = None;
    state.intents.insert(id.to_owned(), intent.clone());
    state.emit("payment_intent.canceled", EventObject::PaymentIntent(Box::new(intent.clone())), key);
    json(&intent)
}

fn create_refund(state: &mut State, params: &Params, key: Option<&str>) -> Answer {
    let Some(intent_id) = params.get("payment_intent") else {
        return Err(invalid("Missing required param: payment_intent.", Some("parameter_missing")));
    };
    let Some(intent) = state.intents.get(intent_id).cloned() else {
        return Err(not_found("payment_intent", intent_id));
    };
    let Some(charge_id) = intent.latest_charge.clone().filter(|_| intent.status == "succeeded") else {
        return Err(invalid(
            format!("This PaymentIntent ({intent_id}) does not have a successful charge to refund."),
            Some("charge_not_refundable"),
        ));
    };
    let refund_id = state.next_id("re");
    let created = state.now;
    let Some(charge) = state.charges.get_mut(&charge_id) else { return Err(not_found("charge", &charge_id)) };
    let left = charge.amount_captured - charge.amount_refunded;
    let amount = params.amount("amount")?.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(invalid(
            format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"),
            Some("amount_too_large"),
        ));
    }
    let refund = Refund {
        id: refund_id,
        object: "refund",
        amount,
        balance_transaction: None,
        charge: charge_id,
        created,
        currency: charge.currency.clone(),
        metadata: params.metadata(),
        payment_intent: intent_id.to_owned(),
        reason: params.get("reason").map(str::to_owned),
        receipt_number: None,
        status: "succeeded",
    };
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded == charge.amount_captured;
    charge.refunds.data.insert(0, refund.clone());
    let charge = charge.clone();
    state.emit("refund.created", EventObject::Refund(Box::new(refund.clone())), key);
    state.emit("charge.refunded", EventObject::Charge(Box::new(charge)), key);
    json(&refund)
}

/// The app confirms a SetupIntent with a card (as Stripe's SDK does): the card is saved.
fn confirm_setup(state: &mut State, id: &str, params: &Params, key: Option<&str>) -> Answer {
    let Some(mut setup) = state.setups.get(id).cloned() else { return Err(not_found("setup_intent", id)) };
    let Some(method) = params.get("payment_method").map(str::to_owned).or(setup.payment_method.clone()) else {
        return Err(invalid("Missing required param: payment_method.", Some("parameter_missing")));
    };
    if setup.status != "requires_payment_method" && setup.status != "requires_confirmation" {
        return Err(invalid(
            format!("This SetupIntent's status is {}.", setup.status),
            Some("setup_intent_unexpected_state"),
        ));
    }
    setup.payment_method = Some(method);
    setup.status = "succeeded";
    state.setups.insert(id.to_owned(), setup.clone());
    state.emit("setup_intent.succeeded", EventObject::SetupIntent(Box::new(setup.clone())), key);
    json(&setup)
}

/// A customer with Stripe's fields (those we do not keep are `null`).
fn create_customer(state: &mut State, params: &Params) -> Answer {
    let id = state.next_id("cus");
    let customer = serde_json::json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "business_name": null,
        "created": state.now,
        "currency": null,
        "customer_account": null,
        "default_source": null,
        "delinquent": false,
        "description": params.get("description"),
        "discount": null,
        "email": params.get("email"),
        "individual_name": null,
        "invoice_prefix": null,
        "invoice_settings": null,
        "livemode": false,
        "metadata": params.metadata(),
        "name": params.get("name"),
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    });
    state.customers.insert(id, customer.clone());
    json(&customer)
}

fn create_setup(state: &mut State, params: &Params) -> Answer {
    let id = state.next_id("seti");
    let setup = SetupIntent {
        id: id.clone(),
        object: "setup_intent",
        application: None,
        cancellation_reason: None,
        client_secret: format!("{id}_secret_fake{}", state.seq),
        created: state.now,
        customer: params.get("customer").map(str::to_owned),
        description: None,
        last_setup_error: None,
        latest_attempt: None,
        livemode: false,
        mandate: None,
        metadata: params.metadata(),
        next_action: None,
        on_behalf_of: None,
        payment_method: params.get("payment_method").map(str::to_owned),
        payment_method_types: vec!["card".into()],
        single_use_mandate: None,
        status: "requires_payment_method",
        usage: params.get("usage").unwrap_or("off_session").to_owned(),
    };
    state.setups.insert(id, setup.clone());
    json(&setup)
}
