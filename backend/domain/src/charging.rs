//! A driver's charging session as the app shows it: the state machine that turns what we sent
//! (commands) and what the CPO told us (command responses and results, Session pushes, the CDR)
//! into one phase a driver understands.
//!
//! ```text
//! REQUESTED --result ACCEPTED--> ACCEPTED --session ACTIVE--> CHARGING --stop--> STOPPING
//!     |                              |                            |                 |
//!     +-- REJECTED / TIMEOUT / ...   +-- session COMPLETED / CDR -+-----------------+--> COMPLETED
//!         --> FAILED (reason)
//! ```
//!
//! Messages arrive late, twice and out of order, so every transition is decided from the message
//! and the current state alone:
//! - the CPO is the authority on sessions: a Session push moves a FAILED request (our own TIMEOUT, a
//!   lost result) back to CHARGING, and a session report before the `CommandResult` skips ACCEPTED;
//! - a command result that arrives after the session is already known changes nothing;
//! - a Session push older than the last one applied (`last_updated`) is ignored, an equal one is a
//!   duplicate;
//! - the CDR completes the session whatever came before it (a CDR may overtake the final PATCH);
//!   after it, only a different CDR (a credit or correction) changes the cost.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Price};
use crate::session::SessionStatus;

/// Where a charging session stands, for the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChargingPhase {
    /// We asked the CPO to start; no answer from the charger yet.
    Requested,
    /// The charger accepted the start; the CPO has not reported a session yet.
    Accepted,
    /// The CPO reports a running session.
    Charging,
    /// We asked the CPO to stop.
    Stopping,
    /// The session ended.
    Completed,
    /// The session did not start (see [`FailureReason`]).
    Failed,
}

impl ChargingPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargingPhase::Requested => "REQUESTED",
            ChargingPhase::Accepted => "ACCEPTED",
            ChargingPhase::Charging => "CHARGING",
            ChargingPhase::Stopping => "STOPPING",
            ChargingPhase::Completed => "COMPLETED",
            ChargingPhase::Failed => "FAILED",
        }
    }

    /// Whether the session can still change without a new CPO message revising it.
    pub fn is_final(self) -> bool {
        matches!(self, ChargingPhase::Completed | ChargingPhase::Failed)
    }
}

/// Why a session did not start, in words a driver understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureReason {
    /// The CPO or the charger refused (token not accepted, charger offline, ...).
    Rejected,
    /// No answer from the charger in time.
    Timeout,
    /// Someone else is using the charger.
    EvseOccupied,
    /// The charger is out of order.
    EvseInoperative,
    /// The operator's system could not be reached.
    CpoUnreachable,
    /// The operator does not support starting from the app.
    NotSupported,
    /// The CPO reports the session as invalid.
    Invalid,
    /// The charger failed for another reason.
    Failed,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Rejected => "REJECTED",
            FailureReason::Timeout => "TIMEOUT",
            FailureReason::EvseOccupied => "EVSE_OCCUPIED",
            FailureReason::EvseInoperative => "EVSE_INOPERATIVE",
            FailureReason::CpoUnreachable => "CPO_UNREACHABLE",
            FailureReason::NotSupported => "NOT_SUPPORTED",
            FailureReason::Invalid => "INVALID",
            FailureReason::Failed => "FAILED",
        }
    }

    /// A sentence for the app.
    pub fn message(self) -> &'static str {
        match self {
            FailureReason::Rejected => "The operator refused to start charging.",
            FailureReason::Timeout => "The charger did not answer in time.",
            FailureReason::EvseOccupied => "The charger is in use by someone else.",
            FailureReason::EvseInoperative => "The charger is out of order.",
            FailureReason::CpoUnreachable => "The charger's operator cannot be reached right now.",
            FailureReason::NotSupported => "This charger cannot be started from the app.",
            FailureReason::Invalid => "The operator declared the session invalid.",
            FailureReason::Failed => "The charger could not start charging.",
        }
    }
}

/// The synchronous answer to a command (OCPI `CommandResponseType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandResponseType {
    NotSupported,
    Rejected,
    Accepted,
    UnknownSession,
}

impl CommandResponseType {
    /// Reads a wire value; unknown values are `None`.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.trim().to_ascii_uppercase().as_str() {
            "NOT_SUPPORTED" => Self::NotSupported,
            "REJECTED" => Self::Rejected,
            "ACCEPTED" => Self::Accepted,
            "UNKNOWN_SESSION" => Self::UnknownSession,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotSupported => "NOT_SUPPORTED",
            Self::Rejected => "REJECTED",
            Self::Accepted => "ACCEPTED",
            Self::UnknownSession => "UNKNOWN_SESSION",
        }
    }
}

/// The asynchronous outcome of a command (OCPI 2.2.1 `CommandResultType`; 2.1.1's asynchronous
/// `CommandResponse` values are a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandResultType {
    Accepted,
    CanceledReservation,
    EvseOccupied,
    EvseInoperative,
    Failed,
    NotSupported,
    Rejected,
    Timeout,
    UnknownReservation,
    /// 2.1.1 only: the session the command named is unknown.
    UnknownSession,
}

impl CommandResultType {
    /// Reads a wire value; unknown values are `None`.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.trim().to_ascii_uppercase().as_str() {
            "ACCEPTED" => Self::Accepted,
            "CANCELED_RESERVATION" => Self::CanceledReservation,
            "EVSE_OCCUPIED" => Self::EvseOccupied,
            "EVSE_INOPERATIVE" => Self::EvseInoperative,
            "FAILED" => Self::Failed,
            "NOT_SUPPORTED" => Self::NotSupported,
            "REJECTED" => Self::Rejected,
            "TIMEOUT" => Self::Timeout,
            "UNKNOWN_RESERVATION" => Self::UnknownReservation,
            "UNKNOWN_SESSION" => Self::UnknownSession,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "ACCEPTED",
            Self::CanceledReservation => "CANCELED_RESERVATION",
            Self::EvseOccupied => "EVSE_OCCUPIED",
            Self::EvseInoperative => "EVSE_INOPERATIVE",
            Self::Failed => "FAILED",
            Self::NotSupported => "NOT_SUPPORTED",
            Self::Rejected => "REJECTED",
            Self::Timeout => "TIMEOUT",
            Self::UnknownReservation => "UNKNOWN_RESERVATION",
            Self::UnknownSession => "UNKNOWN_SESSION",
        }
    }

    /// Why a start failed, when this result means it did.
    pub fn start_failure(self) -> Option<FailureReason> {
        match self {
            Self::Accepted => None,
            Self::EvseOccupied => Some(FailureReason::EvseOccupied),
            Self::EvseInoperative => Some(FailureReason::EvseInoperative),
            Self::NotSupported => Some(FailureReason::NotSupported),
            Self::Timeout => Some(FailureReason::Timeout),
            Self::Rejected | Self::UnknownSession | Self::UnknownReservation | Self::CanceledReservation => {
                Some(FailureReason::Rejected)
            }
            Self::Failed => Some(FailureReason::Failed),
        }
    }
}

/// Something that happened to a charging session.
#[derive(Debug, Clone, PartialEq)]
pub enum ChargingEvent {
    /// The CPO's synchronous answer to our START_SESSION.
    StartResponse(CommandResponseType),
    /// The charger's answer to our START_SESSION.
    StartResult(CommandResultType),
    /// Our own time limit for the start passed without a result.
    StartTimedOut,
    /// The CPO could not be reached with the START_SESSION.
    CpoUnreachable,
    /// The CPO pushed (or we pulled) the session.
    SessionReport(SessionReport),
    /// The driver asked to stop (the STOP_SESSION is about to be sent).
    StopRequested,
    /// The CPO's synchronous answer to our STOP_SESSION.
    StopResponse(CommandResponseType),
    /// The charger's answer to our STOP_SESSION.
    StopResult(CommandResultType),
    /// Our own time limit for the stop passed without a result.
    StopTimedOut,
    /// The CPO's CDR for the session arrived.
    Cdr(CdrReport),
}

/// What a Session push tells the driver.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionReport {
    /// `CC*PID*ID` of the CPO's session.
    pub session_key: String,
    pub status: SessionStatus,
    pub kwh: Decimal,
    pub cost: Option<Price>,
    pub currency: Currency,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub last_updated: DateTime<Utc>,
}

/// What a CDR tells the driver.
#[derive(Debug, Clone, PartialEq)]
pub struct CdrReport {
    /// `CC*PID*ID` of the CDR.
    pub cdr_key: String,
    pub kwh: Decimal,
    pub cost: Price,
    pub currency: Currency,
    pub end: DateTime<Utc>,
}

/// A driver's charging session: the phase and what the driver sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargingState {
    pub phase: ChargingPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
    /// The CPO's session, once reported (`CC*PID*ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    pub kwh: Decimal,
    /// Cost so far as the CPO reports it (final once the CDR came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// `last_updated` of the newest session report applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<DateTime<Utc>>,
    /// The CDR, once received (`CC*PID*ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdr_key: Option<String>,
    /// The last stop attempt failed (the session goes on); cleared by the next stop.
    #[serde(default)]
    pub stop_failed: bool,
}

/// An event that does not apply to the session as it stands (the driver's own request: stopping a
/// session that does not run). Messages from the CPO never fail: what does not apply is ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a session that is {}", phase.as_str().to_ascii_lowercase())]
pub struct TransitionError {
    pub action: &'static str,
    pub phase: ChargingPhase,
}

impl Default for ChargingState {
    fn default() -> Self {
        Self::new()
    }
}

impl ChargingState {
    /// A start we are about to request.
    pub fn new() -> Self {
        Self {
            phase: ChargingPhase::Requested,
            failure: None,
            session_key: None,
            kwh: Decimal::ZERO,
            cost: None,
            currency: None,
            started_at: None,
            ended_at: None,
            reported_at: None,
            cdr_key: None,
            stop_failed: false,
        }
    }

    fn fail(&mut self, reason: FailureReason) {
        self.phase = ChargingPhase::Failed;
        self.failure = Some(reason);
    }

    /// Applies `event`; `Ok(true)` when the state changed, `Ok(false)` for a message that changes
    /// nothing (late, duplicate, superseded).
    pub fn apply(&mut self, event: &ChargingEvent) -> Result<bool, TransitionError> {
        let before = self.clone();
        use ChargingPhase as P;
        match event {
            ChargingEvent::StartResponse(response) => {
                if self.phase == P::Requested && *response != CommandResponseType::Accepted {
                    self.fail(match response {
                        CommandResponseType::NotSupported => FailureReason::NotSupported,
                        _ => FailureReason::Rejected,
                    });
                }
            }
            ChargingEvent::StartResult(result) => match (self.phase, result.start_failure()) {
                (P::Requested, None) => self.phase = P::Accepted,
                (P::Requested, Some(reason)) => self.fail(reason),
                // A late ACCEPTED after our own timeout: the charger did start after all.
                (P::Failed, None) if self.failure == Some(FailureReason::Timeout) && self.session_key.is_none() => {
                    self.phase = P::Accepted;
                    self.failure = None;
                }
                _ => {}
            },
            ChargingEvent::StartTimedOut => {
                if self.phase == P::Requested {
                    self.fail(FailureReason::Timeout);
                }
            }
            ChargingEvent::CpoUnreachable => {
                if self.phase == P::Requested {
                    self.fail(FailureReason::CpoUnreachable);
                }
            }
            ChargingEvent::SessionReport(report) => self.apply_report(report),
            ChargingEvent::StopRequested => match self.phase {
                P::Accepted | P::Charging => {
                    self.phase = P::Stopping;
                    self.stop_failed = false;
                }
                phase => return Err(TransitionError { action: "stop", phase }),
            },
            ChargingEvent::StopResponse(response) => {
                if self.phase == P::Stopping && *response != CommandResponseType::Accepted {
                    self.stop_failed_back();
                }
            }
            ChargingEvent::StopResult(result) => {
                if self.phase == P::Stopping && *result != CommandResultType::Accepted {
                    self.stop_failed_back();
                }
            }
            ChargingEvent::StopTimedOut => {
                if self.phase == P::Stopping {
                    self.stop_failed_back();
                }
            }
            ChargingEvent::Cdr(cdr) => {
                if self.cdr_key.is_none() || self.cdr_key.as_deref() != Some(cdr.cdr_key.as_str()) {
                    self.phase = P::Completed;
                    self.failure = None;
                    self.cdr_key = Some(cdr.cdr_key.clone());
                    self.kwh = cdr.kwh;
                    self.cost = Some(cdr.cost.clone());
                    self.currency = Some(cdr.currency.clone());
                    self.ended_at = Some(cdr.end);
                    self.stop_failed = false;
                }
            }
        }
        Ok(*self != before)
    }

    /// A stop that did not go through: the session runs on (as far as we know).
    fn stop_failed_back(&mut self) {
        self.phase = if self.session_key.is_some() { ChargingPhase::Charging } else { ChargingPhase::Accepted };
        self.stop_failed = true;
    }

    fn apply_report(&mut self, report: &SessionReport) {
        use ChargingPhase as P;
        // After the CDR, the CDR's figures stand.
        if self.cdr_key.is_some() {
            return;
        }
        if let Some(seen) = self.reported_at
            && report.last_updated < seen
        {
            return;
        }
        self.session_key = Some(report.session_key.clone());
        self.reported_at = Some(report.last_updated);
        self.kwh = report.kwh;
        if report.cost.is_some() {
            self.cost = report.cost.clone();
        }
        self.currency = Some(report.currency.clone());
        self.started_at = Some(report.start);
        if report.end.is_some() {
            self.ended_at = report.end;
        }
        match report.status {
            SessionStatus::Completed => {
                self.phase = P::Completed;
                self.failure = None;
            }
            SessionStatus::Invalid => self.fail(FailureReason::Invalid),
            // ACTIVE, PENDING, RESERVATION and unknown values: the session exists and is not over.
            _ => match self.phase {
                // The CPO is the authority: a session after our TIMEOUT (or any failure) runs.
                P::Requested | P::Accepted | P::Failed => {
                    self.phase = P::Charging;
                    self.failure = None;
                }
                // A stop in progress stays in progress; a completed session is not reopened by a
                // late, older-looking report that still says ACTIVE.
                P::Charging | P::Stopping | P::Completed => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    use super::*;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, second).single().unwrap()
    }

    fn report(status: SessionStatus, kwh: Decimal, second: u32) -> ChargingEvent {
        ChargingEvent::SessionReport(SessionReport {
            session_key: "NL*SIM*S1".into(),
            status,
            kwh,
            cost: Some(Price { excl_vat: kwh * dec!(0.5), incl_vat: None }),
            currency: Currency::new("EUR").unwrap(),
            start: at(0),
            end: None,
            last_updated: at(second),
        })
    }

    fn cdr(key: &str, kwh: Decimal) -> ChargingEvent {
        ChargingEvent::Cdr(CdrReport {
            cdr_key: key.into(),
            kwh,
            cost: Price { excl_vat: dec!(5), incl_vat: Some(dec!(6.05)) },
            currency: Currency::new("EUR").unwrap(),
            end: at(59),
        })
    }

    fn state_after(events: &[ChargingEvent]) -> ChargingState {
        let mut state = ChargingState::new();
        for event in events {
            state.apply(event).unwrap();
        }
        state
    }

    #[test]
    fn the_happy_path() {
        let mut state = ChargingState::new();
        assert_eq!(state.phase, ChargingPhase::Requested);
        assert!(!state.apply(&ChargingEvent::StartResponse(CommandResponseType::Accepted)).unwrap());
        assert_eq!(state.phase, ChargingPhase::Requested, "a sync ACCEPTED only says the CPO took the command");
        assert!(state.apply(&ChargingEvent::StartResult(CommandResultType::Accepted)).unwrap());
        assert_eq!(state.phase, ChargingPhase::Accepted);
        assert!(state.apply(&report(SessionStatus::Active, dec!(0), 1)).unwrap());
        assert_eq!(state.phase, ChargingPhase::Charging);
        assert!(state.apply(&report(SessionStatus::Active, dec!(2.5), 2)).unwrap());
        assert_eq!(state.kwh, dec!(2.5));
        assert_eq!(state.cost.as_ref().unwrap().excl_vat, dec!(1.25));
        assert!(state.apply(&ChargingEvent::StopRequested).unwrap());
        assert_eq!(state.phase, ChargingPhase::Stopping);
        assert!(!state.apply(&ChargingEvent::StopResponse(CommandResponseType::Accepted)).unwrap());
        assert!(!state.apply(&ChargingEvent::StopResult(CommandResultType::Accepted)).unwrap());
        assert_eq!(state.phase, ChargingPhase::Stopping);
        assert!(state.apply(&report(SessionStatus::Completed, dec!(3), 3)).unwrap());
        assert_eq!(state.phase, ChargingPhase::Completed);
        assert!(state.apply(&cdr("NL*SIM*CDR1", dec!(3.001))).unwrap());
        assert_eq!(state.phase, ChargingPhase::Completed);
        assert_eq!(state.kwh, dec!(3.001), "the CDR's energy is final");
        assert_eq!(state.cost.as_ref().unwrap().incl_vat, Some(dec!(6.05)));
        assert_eq!(state.cdr_key.as_deref(), Some("NL*SIM*CDR1"));
    }

    #[test]
    fn a_refused_start_fails_with_the_reason() {
        for (response, reason) in [
            (CommandResponseType::Rejected, FailureReason::Rejected),
            (CommandResponseType::NotSupported, FailureReason::NotSupported),
            (CommandResponseType::UnknownSession, FailureReason::Rejected),
        ] {
            let state = state_after(&[ChargingEvent::StartResponse(response)]);
            assert_eq!((state.phase, state.failure), (ChargingPhase::Failed, Some(reason)), "{response:?}");
        }
        for (result, reason) in [
            (CommandResultType::Rejected, FailureReason::Rejected),
            (CommandResultType::EvseOccupied, FailureReason::EvseOccupied),
            (CommandResultType::EvseInoperative, FailureReason::EvseInoperative),
            (CommandResultType::Failed, FailureReason::Failed),
            (CommandResultType::Timeout, FailureReason::Timeout),
            (CommandResultType::NotSupported, FailureReason::NotSupported),
        ] {
            let state = state_after(&[ChargingEvent::StartResult(result)]);
            assert_eq!((state.phase, state.failure), (ChargingPhase::Failed, Some(reason)), "{result:?}");
        }
        let state = state_after(&[ChargingEvent::CpoUnreachable]);
        assert_eq!(state.failure, Some(FailureReason::CpoUnreachable));
        assert!(FailureReason::EvseOccupied.message().contains("in use"));
    }

    #[test]
    fn our_timeout_then_a_late_session_is_still_shown() {
        let mut state = state_after(&[ChargingEvent::StartTimedOut]);
        assert_eq!((state.phase, state.failure), (ChargingPhase::Failed, Some(FailureReason::Timeout)));
        assert!(state.apply(&report(SessionStatus::Active, dec!(0.4), 5)).unwrap());
        assert_eq!((state.phase, state.failure), (ChargingPhase::Charging, None));
        assert_eq!(state.session_key.as_deref(), Some("NL*SIM*S1"));
    }

    #[test]
    fn a_late_accepted_result_after_our_timeout_revives_the_start() {
        let mut state = state_after(&[ChargingEvent::StartTimedOut]);
        assert!(state.apply(&ChargingEvent::StartResult(CommandResultType::Accepted)).unwrap());
        assert_eq!((state.phase, state.failure), (ChargingPhase::Accepted, None));
        // A late refusal after a timeout changes nothing: the start failed either way.
        let mut state = state_after(&[ChargingEvent::StartTimedOut]);
        assert!(!state.apply(&ChargingEvent::StartResult(CommandResultType::Rejected)).unwrap());
        assert_eq!(state.failure, Some(FailureReason::Timeout));
    }

    #[test]
    fn a_timeout_after_the_result_changes_nothing() {
        let mut state = state_after(&[ChargingEvent::StartResult(CommandResultType::Accepted)]);
        assert!(!state.apply(&ChargingEvent::StartTimedOut).unwrap());
        assert!(!state.apply(&ChargingEvent::CpoUnreachable).unwrap());
        assert!(!state.apply(&ChargingEvent::StartResponse(CommandResponseType::Rejected)).unwrap());
        assert_eq!(state.phase, ChargingPhase::Accepted);
    }

    #[test]
    fn a_session_before_the_command_result() {
        let mut state = state_after(&[report(SessionStatus::Active, dec!(0.1), 1)]);
        assert_eq!(state.phase, ChargingPhase::Charging);
        assert!(!state.apply(&ChargingEvent::StartResult(CommandResultType::Accepted)).unwrap());
        assert!(!state.apply(&ChargingEvent::StartResult(CommandResultType::Failed)).unwrap());
        assert!(!state.apply(&ChargingEvent::StartTimedOut).unwrap());
        assert_eq!(state.phase, ChargingPhase::Charging);
    }

    #[test]
    fn duplicate_and_older_session_reports_are_ignored() {
        let mut state = state_after(&[report(SessionStatus::Active, dec!(1), 10)]);
        assert!(!state.apply(&report(SessionStatus::Active, dec!(1), 10)).unwrap(), "duplicate");
        assert!(!state.apply(&report(SessionStatus::Active, dec!(0.5), 5)).unwrap(), "older");
        assert_eq!(state.kwh, dec!(1));
        assert!(state.apply(&report(SessionStatus::Active, dec!(2), 11)).unwrap());
        assert_eq!(state.kwh, dec!(2));
    }

    #[test]
    fn a_cdr_before_the_final_session_patch() {
        let mut state = state_after(&[report(SessionStatus::Active, dec!(1), 1), cdr("NL*SIM*C1", dec!(4))]);
        assert_eq!(state.phase, ChargingPhase::Completed);
        assert!(!state.apply(&report(SessionStatus::Completed, dec!(3.9), 2)).unwrap(), "the CDR stands");
        assert!(!state.apply(&report(SessionStatus::Active, dec!(3.9), 3)).unwrap());
        assert_eq!((state.phase, state.kwh), (ChargingPhase::Completed, dec!(4)));
        assert!(!state.apply(&cdr("NL*SIM*C1", dec!(4))).unwrap(), "duplicate CDR");
        assert!(state.apply(&cdr("NL*SIM*C1-CREDIT", dec!(4))).unwrap(), "a correcting CDR replaces the cost");
    }

    #[test]
    fn a_cdr_completes_a_session_in_any_phase() {
        for start in [
            vec![],
            vec![ChargingEvent::StartTimedOut],
            vec![ChargingEvent::StartResult(CommandResultType::Accepted)],
            vec![report(SessionStatus::Active, dec!(1), 1), ChargingEvent::StopRequested],
        ] {
            let mut state = state_after(&start);
            assert!(state.apply(&cdr("NL*SIM*C1", dec!(4))).unwrap());
            assert_eq!((state.phase, state.failure), (ChargingPhase::Completed, None), "{start:?}");
        }
    }

    #[test]
    fn stopping_only_a_running_session() {
        for phase_events in [vec![], vec![ChargingEvent::StartTimedOut], vec![cdr("NL*SIM*C1", dec!(1))]] {
            let mut state = state_after(&phase_events);
            let before = state.clone();
            let error = state.apply(&ChargingEvent::StopRequested).unwrap_err();
            assert_eq!(error.action, "stop");
            assert_eq!(state, before, "a refused request changes nothing");
        }
        let mut accepted = state_after(&[ChargingEvent::StartResult(CommandResultType::Accepted)]);
        assert!(accepted.apply(&ChargingEvent::StopRequested).unwrap());
        assert_eq!(accepted.phase, ChargingPhase::Stopping);
        let mut stopping = state_after(&[report(SessionStatus::Active, dec!(1), 1), ChargingEvent::StopRequested]);
        assert_eq!(stopping.apply(&ChargingEvent::StopRequested).unwrap_err().phase, ChargingPhase::Stopping);
    }

    #[test]
    fn a_failed_stop_goes_back_to_charging() {
        for failure in [
            ChargingEvent::StopResponse(CommandResponseType::Rejected),
            ChargingEvent::StopResponse(CommandResponseType::UnknownSession),
            ChargingEvent::StopResult(CommandResultType::Failed),
            ChargingEvent::StopTimedOut,
        ] {
            let mut state = state_after(&[report(SessionStatus::Active, dec!(1), 1), ChargingEvent::StopRequested]);
            assert!(state.apply(&failure).unwrap());
            assert_eq!(state.phase, ChargingPhase::Charging, "{failure:?}");
            assert!(state.stop_failed);
            assert!(state.apply(&ChargingEvent::StopRequested).unwrap(), "the driver may try again");
            assert!(!state.stop_failed);
        }
        let mut state =
            state_after(&[ChargingEvent::StartResult(CommandResultType::Accepted), ChargingEvent::StopRequested]);
        state.apply(&ChargingEvent::StopTimedOut).unwrap();
        assert_eq!(state.phase, ChargingPhase::Accepted, "no session reported yet");
    }

    #[test]
    fn an_active_report_keeps_a_stop_in_progress_and_completion_final() {
        let mut state = state_after(&[report(SessionStatus::Active, dec!(1), 1), ChargingEvent::StopRequested]);
        assert!(state.apply(&report(SessionStatus::Active, dec!(1.5), 2)).unwrap());
        assert_eq!((state.phase, state.kwh), (ChargingPhase::Stopping, dec!(1.5)));
        assert!(state.apply(&report(SessionStatus::Completed, dec!(1.6), 3)).unwrap());
        assert_eq!(state.phase, ChargingPhase::Completed);
        state.apply(&report(SessionStatus::Active, dec!(1.6), 4)).unwrap();
        assert_eq!(state.phase, ChargingPhase::Completed, "a completed session is not reopened");
        // After completion, stop-related late messages change nothing either.
        assert!(!state.apply(&ChargingEvent::StopResult(CommandResultType::Failed)).unwrap());
    }

    #[test]
    fn an_invalid_session_fails() {
        let state =
            state_after(&[report(SessionStatus::Active, dec!(1), 1), report(SessionStatus::Invalid, dec!(1), 2)]);
        assert_eq!((state.phase, state.failure), (ChargingPhase::Failed, Some(FailureReason::Invalid)));
    }

    #[test]
    fn wire_values_round_trip() {
        for value in ["ACCEPTED", "REJECTED", "NOT_SUPPORTED", "UNKNOWN_SESSION"] {
            assert_eq!(CommandResponseType::parse(value).unwrap().as_str(), value);
        }
        assert_eq!(CommandResponseType::parse("accepted"), Some(CommandResponseType::Accepted));
        assert_eq!(CommandResponseType::parse("MAYBE"), None);
        for value in ["ACCEPTED", "CANCELED_RESERVATION", "EVSE_OCCUPIED", "EVSE_INOPERATIVE", "FAILED", "TIMEOUT"] {
            assert_eq!(CommandResultType::parse(value).unwrap().as_str(), value);
        }
        let json = serde_json::to_string(&state_after(&[ChargingEvent::StartTimedOut])).unwrap();
        let back: ChargingState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.failure, Some(FailureReason::Timeout));
    }
}
