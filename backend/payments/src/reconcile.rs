//! The reconciliation job: a pass over the payments that need a nudge, as a plain function of the
//! store, the port and the time (the caller's clock, so tests move time freely).
//!
//! - A hold without a session after `unstarted_after` is released (the session never started).
//! - A hold near the end of its authorisation (cards: 7 days) is captured with the best known
//!   amount: the amount due when the CDR came, else what the charging flow estimates, else the
//!   hold itself.
//! - A payment with an amount due that is not collected yet (a capture or difference call that
//!   failed or was never answered) is settled again, with the same idempotency keys.
//!
//! Every action lands in the payment's action log with actor `reconcile`.

use chrono::{DateTime, Duration, Utc};
use emsp_store::PaymentRecord;

use crate::service::{Actor, PaymentError, Payments, state_of};
use crate::state::{DifferencePhase, Phase};

/// When the job acts.
#[derive(Debug, Clone)]
pub struct ReconcilePolicy {
    /// A hold with no session after this long is released.
    pub unstarted_after: Duration,
    /// A hold this old is captured before the card network drops it (7 days for cards).
    pub capture_after: Duration,
    /// Payments looked at per pass and kind.
    pub batch: i64,
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        ReconcilePolicy {
            unstarted_after: Duration::minutes(15),
            capture_after: Duration::hours(6 * 24 + 12),
            batch: 500,
        }
    }
}

/// The charging flow's best estimate of what a running session costs so far.
pub trait AmountEstimate: Send + Sync {
    fn best_known_amount(&self, payment: &PaymentRecord) -> Option<i64>;
}

/// No estimate: a hold near expiry without a CDR is captured in full.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEstimate;

impl AmountEstimate for NoEstimate {
    fn best_known_amount(&self, _: &PaymentRecord) -> Option<i64> {
        None
    }
}

/// What one pass did, by payment id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub released: Vec<String>,
    pub captured_near_expiry: Vec<String>,
    pub settled: Vec<String>,
    /// Payments whose step failed, with the reason (they are tried again next pass).
    pub failed: Vec<(String, String)>,
}

/// One pass of the job at `now`.
pub async fn reconcile(
    payments: &Payments,
    policy: &ReconcilePolicy,
    estimate: &dyn AmountEstimate,
    now: DateTime<Utc>,
) -> Result<ReconcileReport, PaymentError> {
    let mut report = ReconcileReport::default();
    let open =
        [Phase::Held.as_str(), Phase::RequiresAction.as_str(), Phase::Capturable.as_str(), Phase::Captured.as_str()];
    let store = payments.store().clone();
    let batch = policy.batch;
    let before = (now - policy.unstarted_after).naive_utc();
    let candidates = tokio::task::spawn_blocking(move || store.payments_in_phases(&open, before, batch))
        .await
        .map_err(|e| PaymentError::Unavailable(format!("store task failed: {e}")))??;

    for record in candidates {
        let state = state_of(&record)?;
        let age = now.naive_utc() - record.created_at;
        let id = record.id.clone();
        let outcome = match (state.phase, record.amount_due) {
            // An amount is due: collect it (a failed or unanswered capture, a pending difference).
            (Phase::Capturable, Some(_)) => Some(("settled", payments.settle(&id, Actor::Reconcile).await)),
            (Phase::Captured, Some(due))
                if state.captured_total() < due && state.difference != Some(DifferencePhase::Failed) =>
            {
                Some(("settled", payments.settle(&id, Actor::Reconcile).await))
            }
            // No session ever started on this hold.
            (Phase::Held | Phase::RequiresAction | Phase::Capturable, None) if record.session_id.is_none() => {
                Some(("released", payments.cancel(&id, Actor::Reconcile).await))
            }
            // A session runs (or ran) but no CDR came, and the authorisation is about to lapse.
            (Phase::Capturable, None) if age >= policy.capture_after => {
                let amount =
                    estimate.best_known_amount(&record).unwrap_or(record.hold_amount).clamp(0, record.hold_amount);
                Some(("captured_near_expiry", payments.capture(&id, amount, Actor::Reconcile).await))
            }
            _ => None,
        };
        match outcome {
            Some((_, Err(error))) => report.failed.push((id, error.to_string())),
            Some(("released", Ok(_))) => report.released.push(id),
            Some(("captured_near_expiry", Ok(_))) => report.captured_near_expiry.push(id),
            Some((_, Ok(_))) => report.settled.push(id),
            None => {}
        }
    }
    Ok(report)
}
