//! A driver's reservation of an EVSE, as the app shows it, derived from the two commands that
//! make and end it (OCPI RESERVE_NOW and CANCEL_RESERVATION) and the clock:
//!
//! ```text
//! REQUESTED --ACCEPTED result--> ACTIVE --expiry--> EXPIRED
//!     |                            |
//!     |                            +--CANCEL_RESERVATION sent--> CANCELLING --ACCEPTED--> CANCELLED
//!     |                            +--CANCELED_RESERVATION result (the CPO ended it)-----> CANCELLED
//!     +--refused / failed / no answer in time--> FAILED (reason)
//!     +--expiry without an answer------------> EXPIRED
//! ACTIVE / CANCELLING --the driver's session starts there before the expiry--> USED
//! ```
//!
//! Late and out-of-order answers: an ACCEPTED that arrives after our own time limit still makes
//! the reservation ACTIVE (the charger holds the EVSE whatever our clock said); a cancellation that
//! the CPO refused or never confirmed leaves the reservation as it was (the driver may try again);
//! a cancellation confirmed after the expiry still reads CANCELLED (the driver's own act wins).

use chrono::{DateTime, Utc};

use crate::charging::{CommandResponseType, CommandResultType, FailureReason};

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservationStatus {
    /// RESERVE_NOW sent; the charger has not confirmed yet.
    Requested,
    /// The charger holds the EVSE for the driver until the expiry.
    Active,
    /// The driver asked to cancel; the charger has not confirmed yet.
    Cancelling,
    /// Cancelled by the driver, or by the operator.
    Cancelled,
    /// The expiry passed.
    Expired,
    /// The reservation was not made (see [`FailureReason`]).
    Failed,
    /// The driver started charging at the reserved charger: the reservation served its purpose.
    Used,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "REQUESTED",
            Self::Active => "ACTIVE",
            Self::Cancelling => "CANCELLING",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
            Self::Failed => "FAILED",
            Self::Used => "USED",
        }
    }

    /// Whether the reservation still holds (or may still hold) an EVSE.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Requested | Self::Active | Self::Cancelling)
    }
}

/// What we know of one command: its result (the charger's asynchronous `CommandResult`; for a
/// command the CPO refused at once or that never reached it, that refusal or `NOT_DELIVERED`), and
/// whether our own time limit passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandFacts<'a> {
    pub result: Option<&'a str>,
    pub timed_out: bool,
}

impl CommandFacts<'_> {
    /// ACCEPTED by the charger (a late one included).
    fn accepted(&self) -> bool {
        self.result.and_then(CommandResultType::parse) == Some(CommandResultType::Accepted)
    }

    /// Why the command did not go through, once that is known.
    fn failure(&self) -> Option<FailureReason> {
        if let Some(result) = self.result {
            return match (CommandResultType::parse(result), CommandResponseType::parse(result)) {
                (Some(result), _) => result.start_failure(),
                (None, Some(CommandResponseType::NotSupported)) => Some(FailureReason::NotSupported),
                (None, Some(_)) => Some(FailureReason::Rejected),
                // NOT_DELIVERED, or anything else we recorded without the CPO's word.
                (None, None) => Some(FailureReason::CpoUnreachable),
            };
        }
        self.timed_out.then_some(FailureReason::Timeout)
    }
}

/// A sentence for the app about a reservation that failed.
pub fn reservation_failure_message(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::Rejected | FailureReason::Invalid => "The operator refused the reservation.",
        FailureReason::Timeout => "The charger did not confirm the reservation in time.",
        FailureReason::EvseOccupied => "The charger is in use by someone else.",
        FailureReason::EvseInoperative => "The charger is out of order.",
        FailureReason::CpoUnreachable => "The charger's operator cannot be reached right now.",
        FailureReason::NotSupported => "This charger cannot be reserved from the app.",
        FailureReason::Failed => "The charger could not make the reservation.",
    }
}

/// A reservation's status and, when it failed, why. `used_at`: when a session of the driver
/// that the CPO reported started at the reserved charger after the reservation was made, if one
/// did (a session before the charger confirmed still uses it: the confirmation may be late).
pub fn reservation_status(
    reserve: CommandFacts<'_>,
    cancel: Option<CommandFacts<'_>>,
    expiry: DateTime<Utc>,
    now: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
) -> (ReservationStatus, Option<FailureReason>) {
    let reserve_result = reserve.result.and_then(CommandResultType::parse);
    if reserve_result == Some(CommandResultType::CanceledReservation) {
        return (ReservationStatus::Cancelled, None);
    }
    if cancel.is_some_and(|c| c.accepted()) {
        return (ReservationStatus::Cancelled, None);
    }
    if reserve.accepted() && used_at.is_some_and(|at| at < expiry) {
        return (ReservationStatus::Used, None);
    }
    if !reserve.accepted()
        && let Some(reason) = reserve.failure()
    {
        return (ReservationStatus::Failed, Some(reason));
    }
    if now >= expiry {
        return (ReservationStatus::Expired, None);
    }
    if !reserve.accepted() {
        return (ReservationStatus::Requested, None);
    }
    let cancelling = cancel.is_some_and(|c| c.result.is_none() && !c.timed_out);
    if cancelling { (ReservationStatus::Cancelling, None) } else { (ReservationStatus::Active, None) }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 10, minute, 0).unwrap()
    }

    fn facts(result: Option<&str>, timed_out: bool) -> CommandFacts<'_> {
        CommandFacts { result, timed_out }
    }

    const EXPIRY_MINUTE: u32 = 30;

    fn status(reserve: CommandFacts<'_>, cancel: Option<CommandFacts<'_>>, now: u32) -> ReservationStatus {
        reservation_status(reserve, cancel, at(EXPIRY_MINUTE), at(now), None).0
    }

    #[test]
    fn a_reservation_is_requested_then_active_then_expired() {
        let sent = facts(None, false);
        assert_eq!(status(sent, None, 1), ReservationStatus::Requested);
        let confirmed = facts(Some("ACCEPTED"), false);
        assert_eq!(status(confirmed, None, 1), ReservationStatus::Active);
        assert_eq!(status(confirmed, None, EXPIRY_MINUTE), ReservationStatus::Expired, "the expiry is exclusive");
        assert_eq!(status(sent, None, 45), ReservationStatus::Expired, "unanswered until the expiry");
    }

    #[test]
    fn a_refused_or_lost_reservation_fails_with_a_reason() {
        for (result, reason) in [
            ("REJECTED", FailureReason::Rejected),
            ("UNKNOWN_SESSION", FailureReason::Rejected),
            ("NOT_SUPPORTED", FailureReason::NotSupported),
            ("NOT_DELIVERED", FailureReason::CpoUnreachable),
            ("EVSE_OCCUPIED", FailureReason::EvseOccupied),
            ("EVSE_INOPERATIVE", FailureReason::EvseInoperative),
            ("TIMEOUT", FailureReason::Timeout),
            ("FAILED", FailureReason::Failed),
        ] {
            let got = reservation_status(facts(Some(result), false), None, at(EXPIRY_MINUTE), at(1), None);
            assert_eq!(got, (ReservationStatus::Failed, Some(reason)), "{result}");
        }
        let unanswered = reservation_status(facts(None, true), None, at(EXPIRY_MINUTE), at(5), None);
        assert_eq!(unanswered, (ReservationStatus::Failed, Some(FailureReason::Timeout)));
        let later = reservation_status(facts(None, true), None, at(EXPIRY_MINUTE), at(40), None);
        assert_eq!(later.0, ReservationStatus::Failed, "a failure stays a failure after the expiry");
    }

    #[test]
    fn a_late_acceptance_still_makes_the_reservation_active() {
        let late = facts(Some("ACCEPTED"), true);
        assert_eq!(status(late, None, 5), ReservationStatus::Active);
    }

    #[test]
    fn cancelling_waits_for_the_charger_and_a_refused_cancel_keeps_the_reservation() {
        let active = facts(Some("ACCEPTED"), false);
        assert_eq!(status(active, Some(facts(None, false)), 5), ReservationStatus::Cancelling);
        assert_eq!(status(active, Some(facts(Some("ACCEPTED"), false)), 5), ReservationStatus::Cancelled);
        assert_eq!(status(active, Some(facts(Some("REJECTED"), false)), 5), ReservationStatus::Active);
        assert_eq!(status(active, Some(facts(None, true)), 5), ReservationStatus::Active);
        assert_eq!(
            status(active, Some(facts(Some("ACCEPTED"), false)), 45),
            ReservationStatus::Cancelled,
            "a confirmed cancel reads as such after the expiry too"
        );
        assert_eq!(status(active, Some(facts(None, false)), 45), ReservationStatus::Expired);
    }

    #[test]
    fn a_session_at_the_reserved_charger_uses_the_reservation() {
        let active = facts(Some("ACCEPTED"), false);
        let used = |reserve, cancel, now, started: u32| {
            reservation_status(reserve, cancel, at(EXPIRY_MINUTE), at(now), Some(at(started))).0
        };
        assert_eq!(used(active, None, 12, 10), ReservationStatus::Used);
        assert_eq!(used(active, None, 45, 10), ReservationStatus::Used, "used, not expired, after the expiry");
        assert_eq!(used(active, Some(facts(None, false)), 12, 10), ReservationStatus::Used, "a pending cancel");
        assert_eq!(used(active, None, 45, EXPIRY_MINUTE), ReservationStatus::Expired, "a session after the expiry");
        assert_eq!(used(facts(Some("ACCEPTED"), true), None, 12, 10), ReservationStatus::Used, "a late acceptance");
        assert_eq!(used(facts(None, false), None, 12, 10), ReservationStatus::Requested, "never confirmed");
        assert_eq!(
            used(active, Some(facts(Some("ACCEPTED"), false)), 12, 10),
            ReservationStatus::Cancelled,
            "the driver's confirmed cancel wins"
        );
        assert!(!ReservationStatus::Used.is_open());
    }

    #[test]
    fn the_operator_can_end_a_reservation() {
        let ended = facts(Some("CANCELED_RESERVATION"), false);
        assert_eq!(status(ended, None, 5), ReservationStatus::Cancelled);
        assert!(!ReservationStatus::Cancelled.is_open());
        assert!(ReservationStatus::Cancelling.is_open());
    }
}
