//! The payment state model: pure, no I/O.
//!
//! A payment is a hold (a card authorisation with manual capture) that is later captured,
//! cancelled or refunded, plus at most one off-session charge of the difference when the session
//! cost more than the hold. Facts arrive from two sources in any order and any number of times:
//! the answers to our own API calls and the provider's webhooks. The model is built so that
//! applying the same facts in any order, any number of times, ends in the same state:
//!
//! - the [`Phase`] only moves forward in its rank (`Held` < `RequiresAction` < `Failed` <
//!   `Capturable` < `Captured` = `Canceled`); an event that would move it back is a no-op, and of
//!   the two final phases the first one to arrive stays;
//! - amounts carried by events are the provider's cumulative totals (`amount_received`,
//!   `amount_refunded`), merged with `max`, never added;
//! - `disputed` only ever turns on.
//!
//! The public [`Status`] (held, requires_action, capturable, captured, partially refunded,
//! refunded, canceled, failed, disputed) is derived from these.

use serde::Serialize;

/// How far the hold has come. Ordered by rank; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// Stored and sent to the provider; no answer yet.
    Held,
    /// The bank asks for 3-D Secure; the app must complete it with the client secret.
    RequiresAction,
    /// The authorisation was declined or 3-D Secure failed.
    Failed,
    /// Authorised: funds are held and can be captured.
    Capturable,
    /// Captured (`amount_captured`); refunds and disputes may follow.
    Captured,
    /// The hold was released without capture.
    Canceled,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Held => "HELD",
            Phase::RequiresAction => "REQUIRES_ACTION",
            Phase::Failed => "FAILED",
            Phase::Capturable => "CAPTURABLE",
            Phase::Captured => "CAPTURED",
            Phase::Canceled => "CANCELED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "HELD" => Phase::Held,
            "REQUIRES_ACTION" => Phase::RequiresAction,
            "FAILED" => Phase::Failed,
            "CAPTURABLE" => Phase::Capturable,
            "CAPTURED" => Phase::Captured,
            "CANCELED" => Phase::Canceled,
            _ => return None,
        })
    }

    fn rank(self) -> u8 {
        match self {
            Phase::Held => 0,
            Phase::RequiresAction => 1,
            Phase::Failed => 2,
            Phase::Capturable => 3,
            Phase::Captured | Phase::Canceled => 4,
        }
    }

    /// Captured or canceled: nothing moves the hold any more.
    pub fn is_final(self) -> bool {
        self.rank() == 4
    }
}

/// The off-session charge of the difference between the amount due and the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DifferencePhase {
    /// Requested; no answer yet.
    Pending,
    /// Declined (for example because the bank wants the cardholder present).
    Failed,
    Succeeded,
}

impl DifferencePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            DifferencePhase::Pending => "PENDING",
            DifferencePhase::Failed => "FAILED",
            DifferencePhase::Succeeded => "SUCCEEDED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "PENDING" => DifferencePhase::Pending,
            "FAILED" => DifferencePhase::Failed,
            "SUCCEEDED" => DifferencePhase::Succeeded,
            _ => return None,
        })
    }

    fn rank(self) -> u8 {
        match self {
            DifferencePhase::Pending => 0,
            DifferencePhase::Failed => 1,
            DifferencePhase::Succeeded => 2,
        }
    }
}

/// What the driver and ops see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Held,
    RequiresAction,
    Capturable,
    Captured,
    PartiallyRefunded,
    Refunded,
    Canceled,
    Failed,
    Disputed,
}

/// A fact about a payment, from an API answer or a webhook. Amounts are the provider's
/// cumulative totals in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    /// The hold needs 3-D Secure (`requires_action`).
    ActionRequired,
    /// The hold is authorised (`requires_capture`, `payment_intent.amount_capturable_updated`).
    Authorized { amount_capturable: i64 },
    /// The authorisation failed (`payment_intent.payment_failed`, a card error).
    AuthorizationFailed { reason: String },
    /// The hold was captured (`succeeded`, `payment_intent.succeeded`).
    Captured { amount_received: i64 },
    /// The hold was released (`canceled`, `payment_intent.canceled`).
    Canceled,
    /// Refunds of the captured charge add up to `amount_refunded` (`charge.refunded`).
    Refunded { amount_captured: i64, amount_refunded: i64 },
    /// The cardholder disputed the charge (`charge.dispute.created`).
    Disputed,
    /// The difference charge succeeded.
    DifferenceSucceeded { amount_received: i64 },
    /// The difference charge was declined.
    DifferenceFailed { reason: String },
}

impl PaymentEvent {
    /// A short name for logs and the action log.
    pub fn name(&self) -> &'static str {
        match self {
            PaymentEvent::ActionRequired => "action_required",
            PaymentEvent::Authorized { .. } => "authorized",
            PaymentEvent::AuthorizationFailed { .. } => "authorization_failed",
            PaymentEvent::Captured { .. } => "captured",
            PaymentEvent::Canceled => "canceled",
            PaymentEvent::Refunded { .. } => "refunded",
            PaymentEvent::Disputed => "disputed",
            PaymentEvent::DifferenceSucceeded { .. } => "difference_succeeded",
            PaymentEvent::DifferenceFailed { .. } => "difference_failed",
        }
    }
}

/// The state of one payment, as far as the model is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub phase: Phase,
    pub hold_amount: i64,
    pub amount_capturable: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub disputed: bool,
    pub difference: Option<DifferencePhase>,
    pub difference_captured: i64,
    /// The reason of the latest failure, for ops.
    pub last_error: Option<String>,
}

impl PaymentState {
    /// A hold just requested.
    pub fn new(hold_amount: i64) -> Self {
        PaymentState {
            phase: Phase::Held,
            hold_amount,
            amount_capturable: 0,
            amount_captured: 0,
            amount_refunded: 0,
            disputed: false,
            difference: None,
            difference_captured: 0,
            last_error: None,
        }
    }

    /// Everything captured: the hold's capture and the difference charge.
    pub fn captured_total(&self) -> i64 {
        self.amount_captured + self.difference_captured
    }

    pub fn status(&self) -> Status {
        if self.disputed {
            return Status::Disputed;
        }
        match self.phase {
            Phase::Held => Status::Held,
            Phase::RequiresAction => Status::RequiresAction,
            Phase::Failed => Status::Failed,
            Phase::Capturable => Status::Capturable,
            Phase::Canceled => Status::Canceled,
            Phase::Captured if self.amount_refunded > 0 && self.amount_refunded >= self.amount_captured => {
                Status::Refunded
            }
            Phase::Captured if self.amount_refunded > 0 => Status::PartiallyRefunded,
            Phase::Captured => Status::Captured,
        }
    }

    /// The state after `event`, or `None` when the event changes nothing (a duplicate, or a fact
    /// older than what is already known).
    pub fn apply(&self, event: &PaymentEvent) -> Option<PaymentState> {
        let mut next = self.clone();
        match event {
            PaymentEvent::ActionRequired => {
                next.advance(Phase::RequiresAction);
            }
            PaymentEvent::Authorized { amount_capturable } => {
                if next.advance(Phase::Capturable) {
                    next.amount_capturable = (*amount_capturable).max(0);
                }
            }
            PaymentEvent::AuthorizationFailed { reason } => {
                if next.advance(Phase::Failed) {
                    next.last_error = Some(reason.clone());
                }
            }
            PaymentEvent::Captured { amount_received } => {
                next.advance(Phase::Captured);
                if next.phase == Phase::Captured {
                    next.amount_captured = next.amount_captured.max(*amount_received);
                    next.amount_capturable = 0;
                }
            }
            PaymentEvent::Canceled => {
                if next.advance(Phase::Canceled) {
                    next.amount_capturable = 0;
                }
            }
            PaymentEvent::Refunded { amount_captured, amount_refunded } => {
                // A refund implies a capture, even when its event has not arrived yet.
                next.advance(Phase::Captured);
                if next.phase == Phase::Captured {
                    next.amount_captured = next.amount_captured.max(*amount_captured);
                    next.amount_refunded = next.amount_refunded.max(*amount_refunded);
                    next.amount_capturable = 0;
                }
            }
            PaymentEvent::Disputed => next.disputed = true,
            PaymentEvent::DifferenceSucceeded { amount_received } => {
                if next.advance_difference(DifferencePhase::Succeeded) {
                    next.difference_captured = (*amount_received).max(0);
                }
            }
            PaymentEvent::DifferenceFailed { reason } => {
                if next.advance_difference(DifferencePhase::Failed) {
                    next.last_error = Some(reason.clone());
                }
            }
        }
        (next != *self).then_some(next)
    }

    /// Moves to `phase` when it ranks above the current phase; `true` when it moved.
    fn advance(&mut self, phase: Phase) -> bool {
        if phase.rank() > self.phase.rank() {
            self.phase = phase;
            true
        } else {
            false
        }
    }

    fn advance_difference(&mut self, phase: DifferencePhase) -> bool {
        match self.difference {
            Some(current) if current.rank() >= phase.rank() => false,
            _ => {
                self.difference = Some(phase);
                true
            }
        }
    }

    /// Records that a difference charge was requested (before the call, so a crash leaves a
    /// trace); a no-op when one is already known.
    pub fn request_difference(&self) -> Option<PaymentState> {
        let mut next = self.clone();
        if next.difference.is_none() {
            next.difference = Some(DifferencePhase::Pending);
        }
        (next != *self).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorized() -> PaymentState {
        PaymentState::new(5000).apply(&PaymentEvent::Authorized { amount_capturable: 5000 }).unwrap()
    }

    #[test]
    fn a_hold_moves_forward_through_its_phases() {
        let state = PaymentState::new(5000);
        assert_eq!(state.status(), Status::Held);
        let state = state.apply(&PaymentEvent::ActionRequired).unwrap();
        assert_eq!(state.status(), Status::RequiresAction);
        let state = state.apply(&PaymentEvent::Authorized { amount_capturable: 5000 }).unwrap();
        assert_eq!(state.status(), Status::Capturable);
        assert_eq!(state.amount_capturable, 5000);
        let state = state.apply(&PaymentEvent::Captured { amount_received: 3120 }).unwrap();
        assert_eq!((state.status(), state.amount_captured, state.amount_capturable), (Status::Captured, 3120, 0));
    }

    #[test]
    fn an_event_older_than_the_state_is_a_no_op() {
        let captured = authorized().apply(&PaymentEvent::Captured { amount_received: 3000 });
        let captured = captured.unwrap();
        assert_eq!(captured.apply(&PaymentEvent::Authorized { amount_capturable: 5000 }), None);
        assert_eq!(captured.apply(&PaymentEvent::ActionRequired), None);
        assert_eq!(captured.apply(&PaymentEvent::AuthorizationFailed { reason: "late".into() }), None);
        assert_eq!(captured.apply(&PaymentEvent::Canceled), None, "the first final phase stays");
        assert_eq!(captured.apply(&PaymentEvent::Captured { amount_received: 3000 }), None, "a duplicate");
    }

    #[test]
    fn a_refund_before_its_capture_event_implies_the_capture() {
        let state = authorized();
        let refunded = state.apply(&PaymentEvent::Refunded { amount_captured: 4000, amount_refunded: 1000 });
        let refunded = refunded.unwrap();
        assert_eq!(refunded.status(), Status::PartiallyRefunded);
        assert_eq!(refunded.amount_captured, 4000);
        // The capture event arrives late: nothing changes.
        assert_eq!(refunded.apply(&PaymentEvent::Captured { amount_received: 4000 }), None);
        // An older refund total never lowers the newer one.
        assert_eq!(refunded.apply(&PaymentEvent::Refunded { amount_captured: 4000, amount_refunded: 500 }), None);
        let full = refunded.apply(&PaymentEvent::Refunded { amount_captured: 4000, amount_refunded: 4000 });
        assert_eq!(full.map(|s| s.status()), Some(Status::Refunded));
    }

    #[test]
    fn a_refund_never_reopens_a_canceled_hold() {
        let canceled = authorized().apply(&PaymentEvent::Canceled).unwrap();
        assert_eq!(canceled.status(), Status::Canceled);
        assert_eq!(canceled.apply(&PaymentEvent::Refunded { amount_captured: 10, amount_refunded: 10 }), None);
    }

    #[test]
    fn a_dispute_shows_over_everything_and_stays() {
        let captured = authorized().apply(&PaymentEvent::Captured { amount_received: 3000 }).unwrap();
        let disputed = captured.apply(&PaymentEvent::Disputed).unwrap();
        assert_eq!(disputed.status(), Status::Disputed);
        assert_eq!(disputed.apply(&PaymentEvent::Disputed), None);
    }

    #[test]
    fn a_failed_hold_can_still_be_authorized_after_the_app_retries() {
        let failed = PaymentState::new(100).apply(&PaymentEvent::AuthorizationFailed { reason: "3ds failed".into() });
        let failed = failed.unwrap();
        assert_eq!(failed.status(), Status::Failed);
        assert_eq!(failed.apply(&PaymentEvent::ActionRequired), None, "a stale requires_action");
        let retried = failed.apply(&PaymentEvent::Authorized { amount_capturable: 100 });
        assert_eq!(retried.map(|s| s.status()), Some(Status::Capturable));
    }

    #[test]
    fn the_difference_succeeds_once() {
        let captured = authorized().apply(&PaymentEvent::Captured { amount_received: 5000 }).unwrap();
        let pending = captured.request_difference().unwrap();
        assert_eq!(pending.difference, Some(DifferencePhase::Pending));
        assert_eq!(pending.request_difference(), None);
        let done = pending.apply(&PaymentEvent::DifferenceSucceeded { amount_received: 700 }).unwrap();
        assert_eq!(done.captured_total(), 5700);
        assert_eq!(done.apply(&PaymentEvent::DifferenceSucceeded { amount_received: 700 }), None);
        assert_eq!(done.apply(&PaymentEvent::DifferenceFailed { reason: "late".into() }), None);
    }

    #[test]
    fn text_forms_round_trip() {
        for phase in
            [Phase::Held, Phase::RequiresAction, Phase::Failed, Phase::Capturable, Phase::Captured, Phase::Canceled]
        {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
        }
        for phase in [DifferencePhase::Pending, DifferencePhase::Failed, DifferencePhase::Succeeded] {
            assert_eq!(DifferencePhase::parse(phase.as_str()), Some(phase));
        }
        assert_eq!(Phase::parse("held"), None);
    }
}
