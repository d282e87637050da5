//! Card payments in the server: building them (or not, without a Stripe key), the Stripe webhook
//! endpoint and the reconciliation schedule. The ad-hoc charging flow is in `adhoc.rs`.
//!
//! The webhook endpoint verifies the `Stripe-Signature` header over the raw body (400 with the
//! reason when it fails: Stripe shows it in its dashboard), then records and applies the event
//! exactly once (a duplicate answers 200, so Stripe stops redelivering it). A database failure
//! answers 503: Stripe delivers the event again later.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use emsp_payments::{NoEstimate, Payments, ReconcilePolicy, SignatureVerifier, StripePort, StripeSettings};
use emsp_roaming::Roaming;
use emsp_store::{Store, WebhookApplied};
use serde::Serialize;
use tokio::sync::watch;

use crate::adhoc::AdHocFlow;
use crate::config::PaymentsConfig;
use crate::error::ErrorCode;

/// What the webhook handler and the charging flow reach.
pub struct PaymentsHandle {
    /// The payment flows; `None` without `EMSP_STRIPE_SECRET_KEY` (no Stripe client is built).
    pub payments: Option<Payments>,
    /// Ad-hoc charging (the API's card payments), when payments are on.
    pub adhoc: Option<Arc<AdHocFlow>>,
    pub verifier: SignatureVerifier,
}

impl PaymentsHandle {
    pub fn enabled(&self) -> bool {
        self.payments.is_some()
    }
}

/// Builds the payment flows on Stripe and the ad-hoc charging flow over them. Without
/// `EMSP_STRIPE_SECRET_KEY` no Stripe client is built: card payments are off (the API answers
/// `PAYMENTS_DISABLED`), with one warning here. `stale_after`: see [`crate::adhoc::stale_after`].
pub fn build(
    config: &PaymentsConfig,
    store: &Store,
    roaming: Arc<Roaming>,
    stale_after: Duration,
) -> anyhow::Result<PaymentsHandle> {
    let verifier = SignatureVerifier::new(config.webhook_secrets.iter().cloned(), config.webhook_tolerance_s);
    let Some(secret_key) = config.stripe_secret_key.clone() else {
        tracing::warn!("EMSP_STRIPE_SECRET_KEY is not set: card payments (ad-hoc charging) are off");
        return Ok(PaymentsHandle { payments: None, adhoc: None, verifier });
    };
    let settings = StripeSettings {
        api_base: config.stripe_api_base.clone(),
        secret_key,
        timeout: Duration::from_secs(config.request_timeout_s.max(1)),
    };
    let port = StripePort::new(&settings).map_err(|e| anyhow::anyhow!("payments: {e}"))?;
    let payments = Payments::new(store.clone(), Arc::new(port), config.max_hold);
    let adhoc = Arc::new(AdHocFlow::new(payments.clone(), roaming, config.max_hold, stale_after));
    Ok(PaymentsHandle { payments: Some(payments), adhoc: Some(adhoc), verifier })
}

#[derive(Serialize)]
struct Received {
    received: bool,
    /// `applied`, `unchanged`, `duplicate` or `unmatched`.
    outcome: &'static str,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorDetail,
}

fn refuse(code: ErrorCode, name: &'static str, message: String) -> HttpResponse {
    HttpResponse::build(code.http_status()).json(ErrorBody { error: ErrorDetail { code: name, message } })
}

/// The customer and card of a `setup_intent.succeeded` event (a verified body), if it is one.
fn saved_card(body: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Setup {
        customer: Option<String>,
        payment_method: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        object: Setup,
    }
    #[derive(serde::Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        data: Data,
    }
    let event: Event = serde_json::from_slice(body).ok()?;
    if event.kind != "setup_intent.succeeded" {
        return None;
    }
    Some((event.data.object.customer?, event.data.object.payment_method?))
}

/// `POST /webhooks/stripe`.
pub async fn stripe_webhook(req: HttpRequest, body: web::Bytes, handle: web::Data<PaymentsHandle>) -> HttpResponse {
    let Some(payments) = handle.payments.as_ref() else {
        return refuse(ErrorCode::Unavailable, "UNAVAILABLE", "card payments are not configured".into());
    };
    if !handle.verifier.has_secrets() {
        return refuse(ErrorCode::Unavailable, "UNAVAILABLE", "stripe webhooks are not configured".into());
    }
    let header = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if let Err(error) = handle.verifier.verify(header, &body, now) {
        tracing::warn!(%error, "stripe webhook refused");
        return refuse(ErrorCode::BadUserInput, "BAD_SIGNATURE", error.to_string());
    }
    if let Some((customer, card)) = saved_card(&body) {
        // A card saved with `setupCard`: the driver's card for ad-hoc charging without a
        // `paymentMethodId`. Idempotent (a redelivery writes the same value).
        let store = payments.store().clone();
        let saved = tokio::task::spawn_blocking(move || store.set_saved_card(&customer, &card)).await;
        if !matches!(saved, Ok(Ok(_))) {
            tracing::error!("saved card not recorded; stripe will deliver the event again");
            return refuse(ErrorCode::Unavailable, "UNAVAILABLE", ErrorCode::Unavailable.public_message().into());
        }
    }
    let event = match emsp_payments::parse_event(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "stripe webhook unreadable");
            return refuse(ErrorCode::BadUserInput, "BAD_USER_INPUT", "unreadable event".into());
        }
    };
    let (event_id, event_type) = (event.id.clone(), event.event_type.clone());
    match payments.apply_webhook(event).await {
        Ok(applied) => {
            // A hold that just became capturable (3-D Secure done): start its ad-hoc session.
            // Not awaited: START_SESSION may take the CPO's time, longer than Stripe waits.
            if let (WebhookApplied::Applied { record, changed: true }, Some(adhoc)) = (&applied, &handle.adhoc)
                && record.phase == emsp_payments::Phase::Capturable.as_str()
            {
                let (adhoc, id) = (adhoc.clone(), record.id.clone());
                tokio::spawn(async move {
                    if let Err(error) = adhoc.advance(&id).await {
                        tracing::warn!(payment_id = id, %error, "ad-hoc session not started after the hold");
                    }
                });
            }
            let outcome = match applied {
                WebhookApplied::Duplicate => "duplicate",
                WebhookApplied::Unmatched => "unmatched",
                WebhookApplied::Applied { changed: true, .. } => "applied",
                WebhookApplied::Applied { changed: false, .. } => "unchanged",
            };
            tracing::info!(event_id, event_type, outcome, "stripe webhook");
            HttpResponse::Ok().json(Received { received: true, outcome })
        }
        Err(error) => {
            tracing::error!(event_id, event_type, %error, "stripe webhook not applied");
            refuse(ErrorCode::Unavailable, "UNAVAILABLE", ErrorCode::Unavailable.public_message().into())
        }
    }
}

/// Runs reconciliation every `interval` until shutdown, with the ad-hoc settlement sweep and
/// the recovery of ad-hoc requests a crash (of this or another replica) left behind.
pub async fn schedule(
    handle: web::Data<PaymentsHandle>,
    policy: ReconcilePolicy,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let Some(payments) = handle.payments.clone() else { return };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if let Some(adhoc) = &handle.adhoc {
            match adhoc.recover(chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(released) => tracing::info!(released, "ad-hoc holds of interrupted requests released"),
                Err(error) => tracing::warn!(%error, "ad-hoc recovery failed"),
            }
            if let Err(error) = adhoc.sweep(chrono::Utc::now()).await {
                tracing::warn!(%error, "ad-hoc settlement sweep failed");
            }
        }
        match emsp_payments::reconcile(&payments, &policy, &NoEstimate, chrono::Utc::now()).await {
            Ok(report) => {
                if report != emsp_payments::ReconcileReport::default() {
                    tracing::info!(
                        released = report.released.len(),
                        captured_near_expiry = report.captured_near_expiry.len(),
                        settled = report.settled.len(),
                        failed = report.failed.len(),
                        "payments reconciled"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "payments reconciliation failed"),
        }
    }
}
