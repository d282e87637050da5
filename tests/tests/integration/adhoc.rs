//! Ad-hoc charging paid by card, end to end: the driver API, the fake Stripe (over HTTP, with
//! signed webhooks to `POST /webhooks/stripe`) and the CPO simulator (OCPI over HTTP). Happy path
//! with duplicate webhooks (hold, START_SESSION with an AD_HOC_USER token, CDR, capture == the
//! CDR's price, receipt), 3-D Secure, decline, a session that never starts, a CDR above the hold
//! (the difference charged once), reordered webhooks, partial and full refunds by ops, restart
//! recovery, and a server without a Stripe key.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use emsp_cpo_sim::{CommandOutcome, RunningSim};
use emsp_fake_stripe::{FakeStripe, FakeStripeConfig};
use emsp_payments::{HoldOutcome, Money, StartHold, Status};
use emsp_store::{AdHocCharge, AdHocState};
use emsp_tests::{TestApp, TestBackend};
use serde_json::{Value, json};

const SECRET: &str = "whsec_adhoc";

pub(crate) struct Setup {
    pub(crate) app: TestApp,
    pub(crate) fake: FakeStripe,
    pub(crate) cpo: RunningSim,
    pub(crate) driver: String,
    pub(crate) driver_id: String,
    pub(crate) charger: String,
    pub(crate) evse: String,
    pub(crate) connector: String,
}

pub(crate) async fn gql(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    app.client
        .post(app.url("/graphql"))
        .header("Authorization", format!("Bearer {token}"))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none")
}

async fn register(app: &TestApp, email: &str) -> (String, String) {
    let query = "mutation($e: String!) { register(email: $e, password: \"correct horse battery\") { accessToken user { id } } }";
    let body: Value = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": query, "variables": {"e": email}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payload = &body["data"]["register"];
    (payload["accessToken"].as_str().unwrap().to_owned(), payload["user"]["id"].as_str().unwrap().to_owned())
}

async fn ops(app: &TestApp) -> String {
    let store = app.db().store().clone();
    tokio::task::spawn_blocking(move || {
        let accounts = emsp_accounts::Accounts::new(store, emsp_accounts::AuthConfig::default()).unwrap();
        accounts.create_user("ops@example.com", "operations password", None, emsp_accounts::Role::Ops).unwrap();
    })
    .await
    .unwrap();
    let login = "mutation { login(email: \"ops@example.com\", password: \"operations password\") { accessToken } }";
    let body: Value =
        app.client.post(app.url("/graphql")).json(&json!({"query": login})).send().await.unwrap().json().await.unwrap();
    body["data"]["login"]["accessToken"].as_str().unwrap().to_owned()
}

pub(crate) async fn setup(backend: TestBackend, settings: &[(&str, &str)]) -> Option<Setup> {
    let db = TestApp::database(backend)?;
    let fake =
        FakeStripe::start(FakeStripeConfig { webhook_secrets: vec![SECRET.into()], ..FakeStripeConfig::default() })
            .await
            .unwrap();
    let base = fake.base_url();
    let mut all = vec![
        ("EMSP_STRIPE_SECRET_KEY", fake.api_key()),
        ("EMSP_STRIPE_API_BASE", base.as_str()),
        ("EMSP_STRIPE_WEBHOOK_SECRETS", SECRET),
        ("EMSP_STRIPE_TIMEOUT_S", "5"),
        ("EMSP_PAYMENTS_RECONCILE_INTERVAL_S", "1"),
    ];
    all.extend_from_slice(settings);
    let app = TestApp::start_configured(db, &all).await;
    fake.set_webhook_url(&app.url("/webhooks/stripe"));
    let (cpo, location, evse, connector) = crate::charging::charging_cpo(&app).await;
    // The tariff book fills from the change feed: wait until the charger can be priced.
    let (driver, driver_id) = register(&app, "driver@example.com").await;
    let charger = format!("NL*SIM*{location}");
    let estimate =
        "query($c: ID!, $e: String) { priceEstimate(chargerId: $c, evseUid: $e, energyKwh: 10) { totalExclVat } }";
    let started = Instant::now();
    loop {
        let body = gql(&app, &driver, estimate, json!({"c": charger, "e": evse})).await;
        if body["data"]["priceEstimate"].is_object() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the charger was never priced: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(Setup { app, fake, cpo, driver, driver_id, charger, evse, connector })
}

const START: &str = "mutation($c: ID!, $e: String!, $k: String, $pm: String, $kwh: Float) { startAdHocCharging(chargerId: $c, evseUid: $e, connectorId: $k, energyKwh: $kwh, paymentMethodId: $pm) { status clientSecret payment { id status currency heldMinor capturedMinor session { id status } } } }";
const PAYMENT: &str = "query($id: ID!) { payment(id: $id) { id status currency heldMinor capturedMinor refundedMinor amountDueMinor declineReason session { id status } breakdown { currency totalExclVat totalInclVat energyKwh energyExclVat tariffIds } } }";
pub(crate) const STOP: &str = "mutation($id: ID!) { stopCharging(sessionId: $id) { id status } }";
const SESSION: &str = "query($id: ID!) { chargingSession(id: $id) { id status failureReason costExclVat payment { id status capturedMinor } } }";
const REFUND: &str = "mutation($id: ID!, $a: Int, $r: String!) { refundPayment(paymentId: $id, amountMinor: $a, reason: $r) { id status refundedMinor } }";

async fn start_ad_hoc(setup: &Setup, method: &str) -> Value {
    let variables = json!({"c": setup.charger, "e": setup.evse, "k": setup.connector, "pm": method, "kwh": 40.0});
    let body = gql(&setup.app, &setup.driver, START, variables).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["startAdHocCharging"].clone()
}

/// Polls the payment until `check` holds.
async fn payment_until(setup: &Setup, token: &str, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let body = gql(&setup.app, token, PAYMENT, json!({"id": id})).await;
        let payment = body["data"]["payment"].clone();
        if check(&payment) {
            return payment;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting for {what}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the driver's session until `check` holds.
async fn session_until(setup: &Setup, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let body = gql(&setup.app, &setup.driver, SESSION, json!({"id": id})).await;
        let session = body["data"]["chargingSession"].clone();
        if check(&session) {
            return session;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting for {what}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops the session once it charges and has cost at least `min_cost` (excl. VAT), and waits
/// for the payment to be collected.
async fn charge_and_stop(setup: &Setup, payment_id: &str, session_id: &str, min_cost: f64) -> Value {
    let started = Instant::now();
    loop {
        let body = gql(&setup.app, &setup.driver, SESSION, json!({"id": session_id})).await;
        let status = body["data"]["chargingSession"]["status"].as_str().unwrap_or_default().to_owned();
        let cost: f64 =
            body["data"]["chargingSession"]["costExclVat"].as_str().and_then(|c| c.parse().ok()).unwrap_or(0.0);
        if status == "CHARGING" && cost >= min_cost {
            let stop = gql(&setup.app, &setup.driver, STOP, json!({"id": session_id})).await;
            assert!(stop["errors"].is_null(), "{stop}");
            break;
        }
        assert_ne!(status, "FAILED", "{body}");
        assert!(started.elapsed() < Duration::from_secs(30), "never charged: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    payment_until(setup, &setup.driver, payment_id, "the capture", |p| {
        p["status"] == "CAPTURED" && p["amountDueMinor"].is_i64() && p["capturedMinor"] == p["amountDueMinor"]
    })
    .await
}

/// The CDR's total incl. VAT (else excl.) in cents, as the CPO sent it.
fn cdr_total_minor(setup: &Setup) -> i64 {
    let received = setup.cpo.received();
    let cdr = received.cdrs.last().expect("a CDR");
    let total = cdr["total_cost"]["incl_vat"].as_f64().or_else(|| cdr["total_cost"]["excl_vat"].as_f64()).unwrap();
    (total * 100.0).round() as i64
}

async fn happy_path_with_duplicate_webhooks_and_refunds(backend: TestBackend) {
    let Some(setup) = setup(backend, &[]).await else { return };
    setup.fake.faults().duplicate_webhooks.store(true, Ordering::SeqCst);
    let started = start_ad_hoc(&setup, "pm_card_visa").await;
    assert_eq!(started["status"], "STARTED", "{started}");
    assert_eq!(started["clientSecret"], Value::Null);
    let payment = &started["payment"];
    assert_eq!(payment["status"], "CAPTURABLE");
    assert_eq!(payment["currency"], "EUR");
    let held = payment["heldMinor"].as_i64().unwrap();
    assert!((50..=15_000).contains(&held), "{payment}");
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    let session_id = payment["session"]["id"].as_str().unwrap().to_owned();

    // START_SESSION went out with an AD_HOC_USER token, one per payment.
    let received = setup.cpo.received();
    let start = received.commands.iter().find(|c| c.command == "START_SESSION").unwrap();
    assert_eq!(start.body["token"]["type"], "AD_HOC_USER", "{}", start.body);
    assert!(start.body["token"]["uid"].as_str().unwrap().starts_with("AH"));
    // The hold on the fake: one intent, manual capture, for the held amount.
    let holds: Vec<_> = setup.fake.intents().into_iter().filter(|i| i.capture_method == "manual").collect();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].amount, held);
    assert!(holds[0].customer.is_some(), "the driver's customer keeps the card for a difference");

    // Enough energy that a refund of 10 cents is a partial one.
    let collected = charge_and_stop(&setup, &payment_id, &session_id, 0.3).await;
    let due = cdr_total_minor(&setup);
    assert_eq!(collected["amountDueMinor"], due, "{collected}");
    assert_eq!(collected["capturedMinor"], due);
    assert!(due <= held, "the test tariff keeps this session under the hold ({due} > {held})");
    assert_eq!(setup.fake.captured_total(), due, "captured once, exactly the CDR's price");
    let breakdown = &collected["breakdown"];
    assert_eq!(breakdown["currency"], "EUR");
    assert!(
        !breakdown["tariffIds"].as_array().unwrap().is_empty() || breakdown["energyKwh"].is_string(),
        "{breakdown}"
    );
    // The session shows its payment too; another driver sees neither.
    let body = gql(&setup.app, &setup.driver, SESSION, json!({"id": session_id})).await;
    assert_eq!(body["data"]["chargingSession"]["payment"]["id"], payment_id.as_str());
    let (other, _) = register(&setup.app, "other@example.com").await;
    let body = gql(&setup.app, &other, PAYMENT, json!({"id": payment_id})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");

    // Every duplicate webhook was acknowledged and changed nothing twice.
    let events = setup.fake.events().len();
    assert!(setup.fake.wait_for_deliveries(events * 2, Duration::from_secs(10)).await);
    assert!(setup.fake.deliveries().iter().all(|d| d.status == 200));
    assert_eq!(setup.fake.captured_total(), due);

    // Refunds: drivers may not; ops refund part, then the rest; too much is refused.
    let body = gql(&setup.app, &setup.driver, REFUND, json!({"id": payment_id, "a": 10, "r": "goodwill"})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let ops = ops(&setup.app).await;
    let body = gql(&setup.app, &ops, REFUND, json!({"id": payment_id, "a": due + 1, "r": "too much"})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let body = gql(&setup.app, &ops, REFUND, json!({"id": payment_id, "a": 0, "r": "nothing"})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let body = gql(&setup.app, &ops, REFUND, json!({"id": payment_id, "a": 10, "r": " "})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let body = gql(&setup.app, &ops, REFUND, json!({"id": "no-such-payment", "a": 10, "r": "x"})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = gql(&setup.app, &ops, REFUND, json!({"id": payment_id, "a": 10, "r": "charger fault"})).await;
    assert!(body["errors"].is_null(), "{body}");
    payment_until(&setup, &ops, &payment_id, "the partial refund", |p| {
        p["status"] == "PARTIALLY_REFUNDED" && p["refundedMinor"] == 10
    })
    .await;
    let body = gql(&setup.app, &ops, REFUND, json!({"id": payment_id, "r": "session failed"})).await;
    assert!(body["errors"].is_null(), "{body}");
    let refunded =
        payment_until(&setup, &setup.driver, &payment_id, "the full refund", |p| p["status"] == "REFUNDED").await;
    assert_eq!(refunded["refundedMinor"], due);
    assert_eq!(setup.fake.refunded_total(), due);
    let body = gql(&setup.app, &ops, REFUND, json!({"id": payment_id, "r": "again"})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "nothing is left to refund: {body}");
    setup.app.stop().await;
    setup.fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_happy_path_with_duplicate_webhooks_and_refunds_on_sqlite() {
    happy_path_with_duplicate_webhooks_and_refunds(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_happy_path_with_duplicate_webhooks_and_refunds_on_postgres() {
    happy_path_with_duplicate_webhooks_and_refunds(TestBackend::Postgres).await;
}

async fn three_d_secure_then_webhook_starts_the_session(backend: TestBackend) {
    let Some(setup) = setup(backend, &[]).await else { return };
    let started = start_ad_hoc(&setup, "pm_card_threeDSecure2Required").await;
    assert_eq!(started["status"], "REQUIRES_ACTION", "{started}");
    let secret = started["clientSecret"].as_str().unwrap();
    assert!(secret.contains("_secret_"), "{secret}");
    let payment_id = started["payment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(started["payment"]["session"], Value::Null);
    assert!(setup.cpo.received().commands.iter().all(|c| c.command != "START_SESSION"), "nothing starts before 3DS");
    // Confirming before the bank did changes nothing.
    let confirm =
        "mutation($id: ID!) { confirmAdHocCharging(paymentId: $id) { status payment { status session { id } } } }";
    let body = gql(&setup.app, &setup.driver, confirm, json!({"id": payment_id})).await;
    assert_eq!(body["data"]["confirmAdHocCharging"]["status"], "REQUIRES_ACTION", "{body}");
    // Another driver cannot confirm it.
    let (other, _) = register(&setup.app, "other@example.com").await;
    let body = gql(&setup.app, &other, confirm, json!({"id": payment_id})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");

    // The app completes 3-D Secure with Stripe; the webhook starts the session.
    let intent = setup.fake.intents().into_iter().find(|i| i.status == "requires_action").unwrap();
    let confirmed = setup
        .app
        .client
        .post(format!("{}v1/payment_intents/{}/confirm", setup.fake.base_url(), intent.id))
        .bearer_auth(setup.fake.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let payment = payment_until(&setup, &setup.driver, &payment_id, "the session after 3DS", |p| {
        p["status"] == "CAPTURABLE" && p["session"]["id"].is_string()
    })
    .await;
    // confirmAdHocCharging now reports it started, and starting again is not possible.
    let body = gql(&setup.app, &setup.driver, confirm, json!({"id": payment_id})).await;
    assert_eq!(body["data"]["confirmAdHocCharging"]["status"], "STARTED", "{body}");
    assert_eq!(body["data"]["confirmAdHocCharging"]["payment"]["session"]["id"], payment["session"]["id"]);
    let starts = setup.cpo.received().commands.iter().filter(|c| c.command == "START_SESSION").count();
    assert_eq!(starts, 1, "one START_SESSION per hold");
    setup.app.stop().await;
    setup.fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_three_d_secure_then_webhook_starts_the_session_on_sqlite() {
    three_d_secure_then_webhook_starts_the_session(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_three_d_secure_then_webhook_starts_the_session_on_postgres() {
    three_d_secure_then_webhook_starts_the_session(TestBackend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_decline_starts_nothing() {
    let Some(setup) = setup(TestBackend::Sqlite, &[]).await else { return };
    let started = start_ad_hoc(&setup, "pm_card_chargeDeclined").await;
    assert_eq!(started["status"], "DECLINED", "{started}");
    assert_eq!(started["payment"]["status"], "FAILED");
    assert_eq!(started["payment"]["session"], Value::Null);
    let payment_id = started["payment"]["id"].as_str().unwrap();
    let body = gql(&setup.app, &setup.driver, PAYMENT, json!({"id": payment_id})).await;
    assert_eq!(body["data"]["payment"]["declineReason"], "generic_decline", "{body}");
    assert!(setup.cpo.received().commands.iter().all(|c| c.command != "START_SESSION"));
    let body = gql(&setup.app, &setup.driver, PAYMENT, json!({"id": "no-such-payment"})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    // Bad input is refused before anything is held.
    let missing = json!({"c": setup.charger, "e": setup.evse, "k": setup.connector});
    let body = gql(&setup.app, &setup.driver, START, missing).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let unknown = json!({"c": "NL*SIM*NOPE", "e": setup.evse, "pm": "pm_card_visa"});
    let body = gql(&setup.app, &setup.driver, START, unknown).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    assert_eq!(setup.fake.intents().len(), 1, "only the declined hold");
    setup.app.stop().await;
    setup.fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_session_that_never_starts_releases_the_hold() {
    let Some(setup) = setup(TestBackend::Sqlite, &[]).await else { return };
    setup.cpo.faults().set_command_outcome(CommandOutcome::Rejected);
    let started = start_ad_hoc(&setup, "pm_card_visa").await;
    assert_eq!(started["status"], "STARTED", "{started}");
    let payment_id = started["payment"]["id"].as_str().unwrap().to_owned();
    let payment = payment_until(&setup, &setup.driver, &payment_id, "the release", |p| p["status"] == "CANCELED").await;
    assert_eq!(payment["session"]["status"], "FAILED");
    assert_eq!(payment["capturedMinor"], 0);
    assert_eq!(setup.fake.captured_total(), 0);
    assert!(setup.fake.intents().iter().all(|i| i.status == "canceled"));
    // Nothing was captured, so there is nothing to refund.
    let ops = ops(&setup.app).await;
    let body = gql(&setup.app, &ops, REFUND, json!({"id": payment_id, "r": "driver complaint"})).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    setup.app.stop().await;
    setup.fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_command_timeout_without_a_session_releases_the_hold() {
    let Some(setup) = setup(TestBackend::Sqlite, &[]).await else { return };
    // The CPO accepts START_SESSION but no result and no session ever come: our time limit ends it.
    setup.cpo.faults().set_command_outcome(CommandOutcome::NoResult);
    let started = start_ad_hoc(&setup, "pm_card_visa").await;
    assert_eq!(started["status"], "STARTED", "{started}");
    assert_eq!(started["payment"]["status"], "CAPTURABLE");
    let payment_id = started["payment"]["id"].as_str().unwrap().to_owned();
    let session = started["payment"]["session"]["id"].as_str().unwrap().to_owned();
    session_until(&setup, &session, "our TIMEOUT", |s| s["failureReason"] == "TIMEOUT").await;
    // The charger may still start: the hold waits (the sweep runs every second meanwhile) ...
    setup.app.adhoc().sweep(chrono::Utc::now()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let body = gql(&setup.app, &setup.driver, PAYMENT, json!({"id": payment_id})).await;
    assert_eq!(body["data"]["payment"]["status"], "CAPTURABLE", "kept for a late start: {body}");
    // ... until the grace has passed; then the sweep releases it.
    let later = chrono::Utc::now() + chrono::Duration::from_std(emsp_server::adhoc::LATE_START_GRACE).unwrap();
    setup.app.adhoc().sweep(later + chrono::Duration::seconds(1)).await.unwrap();
    let payment = payment_until(&setup, &setup.driver, &payment_id, "the release", |p| p["status"] == "CANCELED").await;
    assert_eq!(payment["capturedMinor"], 0);
    assert_eq!(setup.fake.captured_total(), 0);
    setup.app.stop().await;
    setup.fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_session_that_starts_after_our_timeout_is_still_paid() {
    let Some(setup) = setup(TestBackend::Sqlite, &[]).await else { return };
    // The CPO accepts START_SESSION, and the charger starts after our time limit has passed.
    setup.cpo.faults().set_command_outcome(CommandOutcome::Late);
    let started = start_ad_hoc(&setup, "pm_card_visa").await;
    assert_eq!(started["status"], "STARTED", "{started}");
    let payment_id = started["payment"]["id"].as_str().unwrap().to_owned();
    let session_id = started["payment"]["session"]["id"].as_str().unwrap().to_owned();
    session_until(&setup, &session_id, "our TIMEOUT first", |s| s["failureReason"] == "TIMEOUT").await;
    setup.cpo.faults().set_command_outcome(CommandOutcome::Normal);
    // The late session revives the driver's session; its CDR is collected from the kept hold.
    let revived = session_until(&setup, &session_id, "the late session", |s| s["status"] == "CHARGING").await;
    assert_eq!(revived["payment"]["status"], "CAPTURABLE", "{revived}");
    let collected = charge_and_stop(&setup, &payment_id, &session_id, 0.3).await;
    let due = cdr_total_minor(&setup);
    assert!(due > 0);
    assert_eq!((collected["amountDueMinor"].as_i64(), collected["capturedMinor"].as_i64()), (Some(due), Some(due)));
    assert_eq!(setup.fake.captured_total(), due, "captured once, the CDR's price");
    setup.app.stop().await;
    setup.fake.stop().await;
}

async fn cdr_above_the_hold_charges_the_difference_once(backend: TestBackend) {
    // A hold of at most 0.60 EUR: any real session costs more.
    let Some(setup) = setup(backend, &[("EMSP_PAYMENTS_MAX_HOLD", "60")]).await else { return };
    // Webhooks arrive held back and newest first.
    setup.fake.faults().hold_webhooks.store(true, Ordering::SeqCst);
    let started = start_ad_hoc(&setup, "pm_card_visa").await;
    assert_eq!(started["status"], "STARTED", "{started}");
    assert_eq!(started["payment"]["heldMinor"], 60);
    let payment_id = started["payment"]["id"].as_str().unwrap().to_owned();
    let session_id = started["payment"]["session"]["id"].as_str().unwrap().to_owned();
    let collected = charge_and_stop(&setup, &payment_id, &session_id, 1.0).await;
    let due = cdr_total_minor(&setup);
    assert!(due > 60, "the session must cost more than the hold: {due}");
    assert_eq!(collected["capturedMinor"], due);
    setup.fake.release_held_webhooks(true);
    let events = setup.fake.events().len();
    assert!(setup.fake.wait_for_deliveries(events, Duration::from_secs(10)).await);
    // Reconciliation runs every second meanwhile: still one difference, nothing more.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let differences: Vec<_> = setup.fake.intents().into_iter().filter(|i| i.capture_method != "manual").collect();
    assert_eq!(differences.len(), 1, "one off-session difference");
    assert_eq!(differences[0].amount, due - 60);
    assert_eq!(setup.fake.captured_total(), due, "hold + difference == the CDR's price");
    let payment = payment_until(&setup, &setup.driver, &payment_id, "settled", |p| p["status"] == "CAPTURED").await;
    assert_eq!(payment["capturedMinor"], due);
    setup.app.stop().await;
    setup.fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_cdr_above_the_hold_charges_the_difference_once_on_sqlite() {
    cdr_above_the_hold_charges_the_difference_once(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_cdr_above_the_hold_charges_the_difference_once_on_postgres() {
    cdr_above_the_hold_charges_the_difference_once(TestBackend::Postgres).await;
}

async fn crash_between_hold_and_start_session_releases_the_hold_on_restart(backend: TestBackend) {
    let Some(setup) = setup(backend, &[]).await else { return };
    let Setup { app, fake, cpo, driver_id, charger, evse, .. } = setup;
    // What a crash leaves: the request recorded and the hold placed, START_SESSION never sent
    // (the webhook that would continue it is held back, as if it had not arrived yet).
    fake.faults().hold_webhooks.store(true, Ordering::SeqCst);
    let store = app.db().store().clone();
    let row = |payment_id: &str| AdHocCharge {
        payment_id: payment_id.into(),
        user_id: driver_id.clone(),
        location_key: charger.to_ascii_uppercase(),
        evse_uid: evse.clone(),
        connector_id: None,
        tariff_id: None,
        state: AdHocState::AwaitingHold.as_str().into(),
        charging_id: None,
        created_at: chrono::Utc::now().naive_utc(),
        updated_at: chrono::Utc::now().naive_utc(),
    };
    // crashed-1: held, never claimed; crashed-2: claimed (STARTING, session noted on the payment)
    // but the process died before the session was stored; crashed-3: claimed and its session
    // stored, but the process died before its START_SESSION was recorded (so before it was sent).
    let crashed = ["crashed-1", "crashed-2", "crashed-3"];
    for id in crashed {
        let (create, row) = (store.clone(), row(id));
        tokio::task::spawn_blocking(move || create.create_adhoc(&row)).await.unwrap().unwrap();
        let hold = StartHold {
            payment_id: id.into(),
            user_id: Some(driver_id.clone()),
            money: Money { amount: 2000, currency: "eur".into() },
            customer_id: None,
            payment_method_id: "pm_card_visa".into(),
        };
        let HoldOutcome::Held(_) = app.payments().start_hold(hold).await.unwrap() else { panic!("not held") };
    }
    // crashed-0: the process died before even the payment was written (nothing held).
    let (create, unpaid) = (store.clone(), row("crashed-0"));
    tokio::task::spawn_blocking(move || create.create_adhoc(&unpaid)).await.unwrap().unwrap();
    let claim = store.clone();
    let claimed = tokio::task::spawn_blocking(move || {
        claim.move_adhoc("crashed-2", AdHocState::AwaitingHold, AdHocState::Starting, Some("never-stored"))
    })
    .await
    .unwrap()
    .unwrap();
    assert!(claimed);
    app.payments().attach_session("crashed-2", "never-stored").await.unwrap();
    let (claim, user, key, evse_uid) = (store.clone(), driver_id.clone(), charger.to_ascii_uppercase(), evse.clone());
    tokio::task::spawn_blocking(move || {
        assert!(
            claim.move_adhoc("crashed-3", AdHocState::AwaitingHold, AdHocState::Starting, Some("never-sent")).unwrap()
        );
        let partner = claim.location_partner(&key).unwrap().unwrap();
        claim
            .create_charging(&emsp_store::NewCharging {
                id: "never-sent",
                user_id: &user,
                partner_id: &partner,
                location_key: &key,
                evse_uid: &evse_uid,
                connector_id: None,
                token_uid: "AHNEVERSENT",
                contract_id: "NL-TNM-CNEVERSENT",
                authorization_reference: "never-sent-reference",
            })
            .unwrap();
    })
    .await
    .unwrap();
    app.payments().attach_session("crashed-3", "never-sent").await.unwrap();

    let app = app.restart().await;
    fake.set_webhook_url(&app.url("/webhooks/stripe"));
    let payments = app.payments();
    // Recovery (at start-up and with every reconciliation pass) leaves requests changed less
    // than `stale_after` ago alone: on another replica, a live caller may be starting them.
    let adhoc = app.adhoc();
    assert_eq!(adhoc.recover(chrono::Utc::now()).await.unwrap(), 0);
    let states = |store: emsp_store::Store| async move {
        tokio::task::spawn_blocking(move || crashed.map(|id| store.get_adhoc(id).unwrap().unwrap().state().unwrap()))
            .await
            .unwrap()
    };
    let fresh = [AdHocState::AwaitingHold, AdHocState::Starting, AdHocState::Starting];
    assert_eq!(states(app.db().store().clone()).await, fresh, "fresh requests are left alone");
    for id in crashed {
        assert_eq!(payments.payment(id).await.unwrap().status, Status::Capturable, "{id}");
    }
    // Once they are older than that (the clock moved on), they are released.
    let later = chrono::Utc::now() + adhoc.stale_after() + chrono::Duration::seconds(1);
    assert_eq!(adhoc.recover(later).await.unwrap(), 3, "crashed-0 held nothing");
    let unpaid = app.db().store().clone();
    let unpaid = tokio::task::spawn_blocking(move || unpaid.get_adhoc("crashed-0")).await.unwrap().unwrap().unwrap();
    assert_eq!(unpaid.state(), Some(AdHocState::Abandoned), "closed, not retried every pass");
    assert_eq!(
        states(app.db().store().clone()).await,
        [AdHocState::Abandoned, AdHocState::Abandoned, AdHocState::Started],
        "crashed-3 stays with its session, which failed"
    );
    let lookup = app.db().store().clone();
    let session =
        tokio::task::spawn_blocking(move || lookup.get_charging("never-sent")).await.unwrap().unwrap().unwrap();
    assert_eq!(session.state.phase, emsp_domain::ChargingPhase::Failed);
    for id in crashed {
        let started = Instant::now();
        while payments.payment(id).await.unwrap().status != Status::Canceled {
            assert!(started.elapsed() < Duration::from_secs(10), "{id}: the hold was not released after the restart");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The late webhook (authorised) starts nothing: the request was abandoned.
    fake.faults().hold_webhooks.store(false, Ordering::SeqCst);
    fake.release_held_webhooks(false);
    let events = fake.events().len();
    assert!(fake.wait_for_deliveries(events, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let expected = [AdHocState::Abandoned, AdHocState::Abandoned, AdHocState::Started];
    assert_eq!(states(app.db().store().clone()).await, expected);
    for id in crashed {
        assert_eq!(payments.payment(id).await.unwrap().status, Status::Canceled, "{id}");
    }
    assert!(cpo.received().commands.iter().all(|c| c.command != "START_SESSION"));
    assert_eq!(fake.captured_total(), 0);
    app.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_crash_between_hold_and_start_session_releases_the_hold_on_restart_on_sqlite() {
    crash_between_hold_and_start_session_releases_the_hold_on_restart(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_hoc_crash_between_hold_and_start_session_releases_the_hold_on_restart_on_postgres() {
    crash_between_hold_and_start_session_releases_the_hold_on_restart(TestBackend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stripe_key_card_payments_answer_payments_disabled() {
    let Some(app) = TestApp::start(TestBackend::Sqlite).await else { return };
    let (driver, _) = register(&app, "driver@example.com").await;
    let variables = json!({"c": "NL*SIM*L1", "e": "E1", "pm": "pm_card_visa"});
    let body = gql(&app, &driver, START, variables).await;
    assert_eq!(code(&body), "PAYMENTS_DISABLED", "{body}");
    let body = gql(&app, &driver, "mutation { setupCard { clientSecret } }", json!({})).await;
    assert_eq!(code(&body), "PAYMENTS_DISABLED", "{body}");
    let body = gql(&app, &driver, PAYMENT, json!({"id": "p1"})).await;
    assert_eq!(code(&body), "PAYMENTS_DISABLED", "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_card_creates_the_customer_once_and_the_saved_card_pays() {
    let Some(setup) = setup(TestBackend::Sqlite, &[]).await else { return };
    let query = "mutation { setupCard { setupIntentId clientSecret customerId } }";
    let first = gql(&setup.app, &setup.driver, query, json!({})).await;
    let second = gql(&setup.app, &setup.driver, query, json!({})).await;
    let (first, second) = (&first["data"]["setupCard"], &second["data"]["setupCard"]);
    assert!(first["clientSecret"].as_str().unwrap().contains("_secret_"), "{first}");
    assert_eq!(first["customerId"], second["customerId"], "one customer per driver");
    assert_ne!(first["setupIntentId"], second["setupIntentId"]);
    assert_eq!(setup.fake.customer_count(), 1);
    let store = setup.app.db().store().clone();
    let driver = setup.driver_id.clone();
    let kept = tokio::task::spawn_blocking(move || store.payment_customer(&driver)).await.unwrap().unwrap();
    assert_eq!(kept.as_deref(), first["customerId"].as_str());

    // Without a saved card, ad-hoc charging needs a card.
    let variables = json!({"c": setup.charger, "e": setup.evse, "k": setup.connector});
    let body = gql(&setup.app, &setup.driver, START, variables.clone()).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    // The app completes the SetupIntent with Stripe; the webhook notes the saved card, which
    // ad-hoc charging then uses.
    let confirmed = setup
        .app
        .client
        .post(format!(
            "{}v1/setup_intents/{}/confirm",
            setup.fake.base_url(),
            second["setupIntentId"].as_str().unwrap()
        ))
        .bearer_auth(setup.fake.api_key())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("payment_method=pm_card_visa")
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let started = Instant::now();
    let store = setup.app.db().store().clone();
    loop {
        let (store, driver) = (store.clone(), setup.driver_id.clone());
        let card = tokio::task::spawn_blocking(move || store.saved_card(&driver)).await.unwrap().unwrap();
        if card.is_some() {
            assert_eq!(card.as_deref(), Some("pm_card_visa"));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the saved card never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = gql(&setup.app, &setup.driver, START, variables).await;
    assert_eq!(body["data"]["startAdHocCharging"]["status"], "STARTED", "{body}");
    let hold = setup.fake.intents().into_iter().find(|i| i.capture_method == "manual").unwrap();
    assert_eq!(hold.payment_method.as_deref(), Some("pm_card_visa"));
    setup.app.stop().await;
    setup.fake.stop().await;
}
