//! Card payments end to end: the server's payment flows call the fake Stripe over HTTP, the fake
//! signs its webhooks and sends them to `POST /webhooks/stripe`, which verifies, records and
//! applies them (duplicates and reordered deliveries included), on both backends.

use std::sync::atomic::Ordering;
use std::time::Duration;

use emsp_fake_stripe::{FakeStripe, FakeStripeConfig};
use emsp_payments::{Actor, HoldOutcome, Money, StartHold, Status};
use emsp_tests::{TestApp, TestBackend};
use serde_json::Value;

const SECRET: &str = "whsec_e2e_current";

async fn start(backend: TestBackend) -> Option<(TestApp, FakeStripe)> {
    let db = TestApp::database(backend)?;
    let fake = FakeStripe::start(FakeStripeConfig {
        webhook_secrets: vec!["whsec_e2e_retired".into(), SECRET.into()],
        ..FakeStripeConfig::default()
    })
    .await
    .unwrap();
    let base = fake.base_url();
    let app = TestApp::start_configured(
        db,
        &[
            ("EMSP_STRIPE_SECRET_KEY", fake.api_key()),
            ("EMSP_STRIPE_API_BASE", &base),
            // The server knows only the current secret; the fake also signs with a retired one.
            ("EMSP_STRIPE_WEBHOOK_SECRETS", SECRET),
            ("EMSP_STRIPE_TIMEOUT_S", "5"),
            ("EMSP_PAYMENTS_RECONCILE_INTERVAL_S", "0"),
        ],
    )
    .await;
    fake.set_webhook_url(&app.url("/webhooks/stripe"));
    Some((app, fake))
}

fn hold(id: &str, amount: i64) -> StartHold {
    StartHold {
        payment_id: id.to_owned(),
        user_id: None,
        money: Money { amount, currency: "eur".into() },
        customer_id: Some("cus_e2e".into()),
        payment_method_id: "pm_card_visa".into(),
    }
}

async fn signed_webhooks_are_verified_recorded_and_applied_once(backend: TestBackend) {
    let Some((app, fake)) = start(backend).await else { return };
    let payments = app.payments();

    // Every event is delivered twice.
    fake.faults().duplicate_webhooks.store(true, Ordering::SeqCst);
    let HoldOutcome::Held(_) = payments.start_hold(hold("e2e-1", 5000)).await.unwrap() else { panic!("not held") };
    payments.attach_session("e2e-1", "session-e2e").await.unwrap();
    payments.capture("e2e-1", 3300, Actor::Api).await.unwrap();
    payments.refund("e2e-1", Some(500), "ops-1", Actor::Ops).await.unwrap();
    let events = fake.events();
    assert!(fake.wait_for_deliveries(events.len() * 2, Duration::from_secs(10)).await);
    let deliveries = fake.deliveries();
    assert!(deliveries.iter().all(|d| d.status == 200), "{deliveries:?}");
    let store = app.db().store();
    for event in &events {
        assert!(store.payment_event_outcome(&event.id).unwrap().is_some(), "{} recorded", event.kind);
    }
    let view = payments.payment("e2e-1").await.unwrap();
    assert_eq!((view.status, view.captured, view.refunded), (Status::PartiallyRefunded, 3300, 500));
    let webhook_lines = store.payment_actions("e2e-1").unwrap().into_iter().filter(|a| a.actor == "webhook").count();
    assert!(webhook_lines >= 1, "the refund total came by webhook");

    // Held back and delivered newest first: the same end state.
    fake.faults().duplicate_webhooks.store(false, Ordering::SeqCst);
    fake.faults().hold_webhooks.store(true, Ordering::SeqCst);
    let before = fake.deliveries().len();
    payments.start_hold(hold("e2e-2", 4000)).await.unwrap();
    payments.capture("e2e-2", 0, Actor::Api).await.unwrap();
    let held = fake.events().len() - events.len();
    fake.release_held_webhooks(true);
    assert!(fake.wait_for_deliveries(before + held, Duration::from_secs(10)).await);
    assert_eq!(payments.payment("e2e-2").await.unwrap().status, Status::Canceled, "nothing due: released");
    assert_eq!(fake.captured_total(), 3300);

    // A redelivery of an applied event is a 200 no-op.
    assert!(fake.resend(&events[1].id));
    assert!(fake.wait_for_deliveries(before + held + 1, Duration::from_secs(10)).await);
    assert_eq!(fake.deliveries().last().unwrap().status, 200);
    app.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_are_verified_recorded_and_applied_once_on_sqlite() {
    signed_webhooks_are_verified_recorded_and_applied_once(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_are_verified_recorded_and_applied_once_on_postgres() {
    signed_webhooks_are_verified_recorded_and_applied_once(TestBackend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_is_refused_with_its_reason() {
    let Some((app, fake)) = start(TestBackend::Sqlite).await else { return };
    let body = r#"{"id":"evt_forged","object":"event","type":"payment_intent.succeeded","created":1,"data":{"object":{"id":"pi_x","amount_received":99999,"metadata":{}}}}"#;
    let now = chrono::Utc::now().timestamp();
    let post = |signature: Option<String>| {
        let mut request = app.client.post(app.url("/webhooks/stripe")).body(body);
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        request.send()
    };

    let missing = post(None).await.unwrap();
    assert_eq!(missing.status(), 400);
    let answer: Value = missing.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "BAD_SIGNATURE");
    assert_eq!(answer["error"]["message"], "missing Stripe-Signature header");

    let forged = post(Some(emsp_payments::sign("whsec_guess", now, body.as_bytes()))).await.unwrap();
    assert_eq!(forged.status(), 400);
    assert_eq!(forged.json::<Value>().await.unwrap()["error"]["message"], "no signature matches the payload");

    let replayed = post(Some(emsp_payments::sign(SECRET, now - 3600, body.as_bytes()))).await.unwrap();
    assert_eq!(replayed.status(), 400);
    assert_eq!(
        replayed.json::<Value>().await.unwrap()["error"]["message"],
        "signature timestamp outside the tolerance"
    );

    let genuine = post(Some(emsp_payments::sign(SECRET, now, body.as_bytes()))).await.unwrap();
    assert_eq!(genuine.status(), 200, "a genuine event about nobody is recorded and acknowledged");
    assert_eq!(genuine.json::<Value>().await.unwrap()["outcome"], "unmatched");
    assert_eq!(app.db().store().payment_event_outcome("evt_forged").unwrap().as_deref(), Some("UNMATCHED"));
    app.stop().await;
    fake.stop().await;
}
