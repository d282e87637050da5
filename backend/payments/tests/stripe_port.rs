#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The Stripe implementation of the payment port against the fake Stripe, over real HTTP.

use std::sync::atomic::Ordering;
use std::time::Duration;

use emsp_fake_stripe::{FakeStripe, FakeStripeConfig};
use emsp_payments::{HoldRequest, IntentStatus, Money, PaymentPort, PortError, StripePort, StripeSettings, keys};

async fn fake() -> FakeStripe {
    FakeStripe::start(FakeStripeConfig::default()).await.unwrap()
}

fn port(fake: &FakeStripe, timeout: Duration) -> StripePort {
    StripePort::new(&StripeSettings { api_base: fake.base_url(), secret_key: fake.api_key().to_owned(), timeout })
        .unwrap()
}

fn hold(payment_id: &str, amount: i64, method: &str) -> HoldRequest {
    HoldRequest {
        payment_id: payment_id.to_owned(),
        money: Money { amount, currency: "eur".into() },
        customer_id: Some("cus_driver".into()),
        payment_method_id: method.to_owned(),
        idempotency_key: keys::hold(payment_id),
    }
}

#[tokio::test]
async fn a_hold_is_authorised_and_captured_for_less() {
    let fake = fake().await;
    let port = port(&fake, Duration::from_secs(5));
    let held = port.hold(&hold("pay-1", 5000, "pm_card_visa")).await.unwrap();
    assert_eq!(held.status, IntentStatus::RequiresCapture);
    assert_eq!((held.amount, held.amount_capturable, held.amount_received), (5000, 5000, 0));
    assert_eq!(held.currency, "eur");
    assert_eq!(held.customer_id.as_deref(), Some("cus_driver"));
    let stored = fake.intent(&held.intent_id).unwrap();
    assert_eq!(stored.capture_method, "manual", "a hold is a PaymentIntent with manual capture");
    assert_eq!(stored.setup_future_usage.as_deref(), Some("off_session"), "the card is kept for a difference");
    assert_eq!(stored.metadata.get("emsp_payment_id").map(String::as_str), Some("pay-1"));

    let captured = port.capture(&held.intent_id, 3120, &keys::capture("pay-1", 0)).await.unwrap();
    assert_eq!(captured.status, IntentStatus::Succeeded);
    assert_eq!((captured.amount_received, captured.amount_capturable), (3120, 0));
    assert_eq!(fake.captured_total(), 3120);
    fake.stop().await;
}

#[tokio::test]
async fn three_d_secure_hands_the_app_a_client_secret() {
    let fake = fake().await;
    let port = port(&fake, Duration::from_secs(5));
    let held = port.hold(&hold("pay-3ds", 2000, "pm_card_threeDSecure2Required")).await.unwrap();
    assert_eq!(held.status, IntentStatus::RequiresAction);
    let secret = held.client_secret.clone().unwrap();
    assert!(secret.starts_with(&format!("{}_secret_", held.intent_id)), "{secret}");
    // Nothing can be captured before the cardholder completed 3-D Secure.
    let err = port.capture(&held.intent_id, 2000, &keys::capture("pay-3ds", 0)).await.unwrap_err();
    assert!(matches!(err, PortError::Rejected(_)), "{err:?}");
    fake.stop().await;
}

#[tokio::test]
async fn a_declined_card_is_declined_with_its_code_and_intent() {
    let fake = fake().await;
    let port = port(&fake, Duration::from_secs(5));
    let err = port.hold(&hold("pay-declined", 2000, "pm_card_chargeDeclinedInsufficientFunds")).await.unwrap_err();
    let PortError::Declined { code, intent } = err else { panic!("{err:?}") };
    assert_eq!(code, "insufficient_funds");
    let intent = intent.expect("the decline carries the intent");
    assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(fake.captured_total(), 0);
    fake.stop().await;
}

#[tokio::test]
async fn repeating_a_call_with_its_key_never_charges_twice() {
    let fake = fake().await;
    let port = port(&fake, Duration::from_secs(5));
    let first = port.hold(&hold("pay-2", 4000, "pm_card_visa")).await.unwrap();
    let again = port.hold(&hold("pay-2", 4000, "pm_card_visa")).await.unwrap();
    assert_eq!(first.intent_id, again.intent_id, "the same key answers the same intent");
    assert_eq!(fake.intents().len(), 1);

    // The capture happens but its answer is lost; the retry with the same key replays it.
    fake.faults().lose_next_answers.store(1, Ordering::SeqCst);
    let key = keys::capture("pay-2", 0);
    let lost = port.capture(&first.intent_id, 4000, &key).await.unwrap_err();
    assert!(lost.is_retryable(), "{lost:?}");
    assert_eq!(fake.captured_total(), 4000, "the capture did happen");
    let replayed = port.capture(&first.intent_id, 4000, &key).await.unwrap();
    assert_eq!(replayed.amount_received, 4000);
    assert_eq!(fake.captured_total(), 4000, "and only once");

    // The off-session difference, answer lost, then repeated: one charge.
    fake.faults().lose_next_answers.store(1, Ordering::SeqCst);
    let money = Money { amount: 700, currency: "eur".into() };
    let key = keys::difference("pay-2", 0);
    assert!(
        port.charge_off_session("pay-2", &money, "cus_driver", "pm_card_visa", &key).await.unwrap_err().is_retryable()
    );
    let difference = port.charge_off_session("pay-2", &money, "cus_driver", "pm_card_visa", &key).await.unwrap();
    assert_eq!(difference.status, IntentStatus::Succeeded);
    assert_eq!(fake.intents().len(), 2);
    assert_eq!(fake.captured_total(), 4700);
    fake.stop().await;
}

#[tokio::test]
async fn a_key_reused_with_other_parameters_is_refused() {
    let fake = fake().await;
    let port = port(&fake, Duration::from_secs(5));
    port.hold(&hold("pay-4", 1000, "pm_card_visa")).await.unwrap();
    let mut other = hold("pay-4", 1500, "pm_card_visa");
    other.idempotency_key = keys::hold("pay-4");
    let err = port.hold(&other).await.unwrap_err();
    let PortError::Rejected(text) = &err else { panic!("{err:?}") };
    assert!(text.contains("idempotency_error"), "{text}");
    assert_eq!(fake.intents().len(), 1);
    fake.stop().await;
}

#[tokio::test]
async fn a_500_is_retryable_and_the_retry_succeeds() {
    let fake = fake().await;
    let port = port(&fake, Duration::from_secs(5));
    fake.faults().fail_next.store(1, Ordering::SeqCst);
    let err = port.hold(&hold("pay-5", 1000, "pm_card_visa")).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(fake.intents().is_empty(), "a 500 before the work did nothing");
    let held = port.hold(&hold("pay-5", 1000, "pm_card_visa")).await.unwrap();
    assert_eq!(held.status, IntentStatus::RequiresCapture);
    fake.stop().await;
}

#[tokio::test]
async fn a_slow_answer_times_out_and_the_retry_finds_the_same_hold() {
    let fake = fake().await;
    let port = port(&fake, Duration::from_millis(300));
    fake.faults().delay_ms.store(1_500, Ordering::SeqCst);
    fake.faults().delay_next.store(1, Ordering::SeqCst);
    let err = port.hold(&hold("pay-6", 1000, "pm_card_visa")).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let held = port.hold(&hold("pay-6", 1000, "pm_card_visa")).await.unwrap();
    assert_eq!(fake.intents().len(), 1, "one hold, not two");
    assert_eq!(held.status, IntentStatus::RequiresCapture);
    fake.stop().await;
}

#[tokio::test]
async fn cancel_and_refunds_in_part_and_in_full() {
    let fake = fake().await;
    let port = port(&fake, Duration::from_secs(5));
    let unused = port.hold(&hold("pay-7", 3000, "pm_card_visa")).await.unwrap();
    let canceled = port.cancel(&unused.intent_id, &keys::cancel("pay-7")).await.unwrap();
    assert_eq!(canceled.status, IntentStatus::Canceled);
    assert!(matches!(
        port.capture(&unused.intent_id, 3000, &keys::capture("pay-7", 0)).await,
        Err(PortError::Rejected(_))
    ));

    let used = port.hold(&hold("pay-8", 3000, "pm_card_visa")).await.unwrap();
    port.capture(&used.intent_id, 2500, &keys::capture("pay-8", 0)).await.unwrap();
    let part = port.refund(&used.intent_id, Some(1000), &keys::refund("pay-8", "r1")).await.unwrap();
    assert_eq!((part.amount, part.status.as_str()), (1000, "succeeded"));
    let again = port.refund(&used.intent_id, Some(1000), &keys::refund("pay-8", "r1")).await.unwrap();
    assert_eq!(again.refund_id, part.refund_id, "a repeated refund request refunds once");
    let rest = port.refund(&used.intent_id, None, &keys::refund("pay-8", "r2")).await.unwrap();
    assert_eq!(rest.amount, 1500, "a refund without amount refunds what is left");
    assert_eq!(fake.refunded_total(), 2500);
    let err = port.refund(&used.intent_id, Some(1), &keys::refund("pay-8", "r3")).await.unwrap_err();
    assert!(matches!(err, PortError::Rejected(_)), "{err:?}");
    fake.stop().await;
}

#[tokio::test]
async fn off_session_a_card_that_wants_3ds_is_declined() {
    let fake = fake().await;
    let port = port(&fake, Duration::from_secs(5));
    let money = Money { amount: 900, currency: "eur".into() };
    let err = port
        .charge_off_session(
            "pay-9",
            &money,
            "cus_driver",
            "pm_card_authenticationRequired",
            &keys::difference("pay-9", 0),
        )
        .await
        .unwrap_err();
    let PortError::Declined { code, .. } = err else { panic!("{err:?}") };
    assert_eq!(code, "authentication_required");
    fake.stop().await;
}

#[tokio::test]
async fn a_card_is_saved_with_a_setup_intent() {
    let fake = fake().await;
    let port = port(&fake, Duration::from_secs(5));
    let setup = port.setup_card("cus_driver", &keys::setup("setup-1")).await.unwrap();
    assert!(setup.setup_intent_id.starts_with("seti_"));
    assert!(setup.client_secret.starts_with(&format!("{}_secret_", setup.setup_intent_id)));
    assert_eq!(setup.status, "requires_payment_method");
    fake.stop().await;
}

#[tokio::test]
async fn a_wrong_key_is_a_configuration_error() {
    let fake = fake().await;
    let port = StripePort::new(&StripeSettings {
        api_base: fake.base_url(),
        secret_key: "sk_test_wrong".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let err = port.hold(&hold("pay-10", 1000, "pm_card_visa")).await.unwrap_err();
    assert!(matches!(err, PortError::Config(_)), "{err:?}");
    fake.stop().await;
}
