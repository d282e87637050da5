//! Card payments in the server: the Stripe webhook endpoint and the reconciliation schedule.
//!
//! The webhook endpoint verifies the `Stripe-Signature` header over the raw body (400 with the
//! reason when it fails: Stripe shows it in its dashboard), then records and applies the event
//! exactly once (a duplicate answers 200, so Stripe stops redelivering it). A database failure
//! answers 503: Stripe delivers the event again later.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use emsp_payments::{NoEstimate, Payments, ReconcilePolicy, SignatureVerifier, StripePort, StripeSettings};
use emsp_store::{Store, WebhookApplied};
use serde::Serialize;
use tokio::sync::watch;

use crate::config::PaymentsConfig;
use crate::error::ErrorCode;

/// What the webhook handler and the charging flow reach.
pub struct PaymentsHandle {
    pub payments: Payments,
    pub verifier: SignatureVerifier,
    pub enabled: bool,
}

/// Builds the payment flows on Stripe. Without `EMSP_STRIPE_SECRET_KEY` the handle is built but
/// marked disabled (calls to Stripe would be refused).
pub fn build(config: &PaymentsConfig, store: &Store) -> anyhow::Result<PaymentsHandle> {
    let settings = StripeSettings {
        api_base: config.stripe_api_base.clone(),
        secret_key: config.stripe_secret_key.clone().unwrap_or_default(),
        timeout: Duration::from_secs(config.request_timeout_s.max(1)),
    };
    let port = StripePort::new(&settings).map_err(|e| anyhow::anyhow!("payments: {e}"))?;
    Ok(PaymentsHandle {
        payments: Payments::new(store.clone(), Arc::new(port), config.max_hold),
        verifier: SignatureVerifier::new(config.webhook_secrets.iter().cloned(), config.webhook_tolerance_s),
        enabled: config.stripe_secret_key.is_some(),
    })
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

/// `POST /webhooks/stripe`.
pub async fn stripe_webhook(req: HttpRequest, body: web::Bytes, handle: web::Data<PaymentsHandle>) -> HttpResponse {
    if !handle.verifier.has_secrets() {
        return refuse(ErrorCode::Unavailable, "UNAVAILABLE", "stripe webhooks are not configured".into());
    }
    let header = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if let Err(error) = handle.verifier.verify(header, &body, now) {
        tracing::warn!(%error, "stripe webhook refused");
        return refuse(ErrorCode::BadUserInput, "BAD_SIGNATURE", error.to_string());
    }
    let event = match emsp_payments::parse_event(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "stripe webhook unreadable");
            return refuse(ErrorCode::BadUserInput, "BAD_USER_INPUT", "unreadable event".into());
        }
    };
    let (event_id, event_type) = (event.id.clone(), event.event_type.clone());
    match handle.payments.apply_webhook(event).await {
        Ok(applied) => {
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

/// Runs reconciliation every `interval` until shutdown.
pub async fn schedule(
    handle: web::Data<PaymentsHandle>,
    policy: ReconcilePolicy,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        match emsp_payments::reconcile(&handle.payments, &policy, &NoEstimate, chrono::Utc::now()).await {
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
