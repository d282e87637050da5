//! Misbehaviour on demand. Real CPOs are slow, fail, send broken JSON and broken pagination; an
//! EMSP's client has to survive all of it, so tests (through `RunningSim::faults`) and CLI users
//! (through `POST /admin/faults`) switch these on while the simulator runs. Faults apply to the
//! OCPI endpoints only, never to `/admin`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// How the `Link` header of a paginated answer is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkFault {
    /// Correct links.
    #[default]
    None,
    /// The `next` link points at the page just served: a client that follows it blindly loops.
    Loop,
    /// The `next` link points at a URL that answers 404.
    NotFound,
}

/// What the commands module does with the next commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOutcome {
    /// Behave: accept what can be done, send the `CommandResult`.
    #[default]
    Normal,
    /// Answer `CommandResponse` with `REJECTED` (no `CommandResult` follows).
    Rejected,
    /// Answer `ACCEPTED` but never send a `CommandResult`: the EMSP must time out.
    NoResult,
    /// Answer `ACCEPTED`, then `CommandResult` `EVSE_OCCUPIED` (`REJECTED` in 2.1.1).
    EvseOccupied,
    /// Answer `ACCEPTED`, then carry the command out only after the time limit the
    /// `CommandResponse` gave has passed: a charger that starts after the EMSP's TIMEOUT.
    Late,
}

/// The live fault switches, shared by the test (or CLI) and the running server.
#[derive(Debug, Default)]
pub struct Faults {
    latency_ms: AtomicU64,
    fail_next: AtomicU32,
    malformed_json: AtomicBool,
    omit_total_count: AtomicBool,
    link: Mutex<LinkFault>,
    command: Mutex<CommandOutcome>,
}

/// The JSON body of `POST /admin/faults` and of `GET /admin/faults`: fields left out are unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsConfig {
    /// Clear every fault first, then apply the other fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_next: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed_json: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit_total_count: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkFault>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandOutcome>,
}

impl Faults {
    /// Every OCPI request waits this long before it is handled.
    pub fn set_latency_ms(&self, ms: u64) {
        self.latency_ms.store(ms, Ordering::Relaxed);
    }

    /// The next `n` OCPI requests fail with HTTP 500 (and are not handled).
    pub fn fail_next(&self, n: u32) {
        self.fail_next.store(n, Ordering::Relaxed);
    }

    /// OCPI response bodies are cut off mid-JSON while this is on.
    pub fn set_malformed_json(&self, on: bool) {
        self.malformed_json.store(on, Ordering::Relaxed);
    }

    /// Paginated answers leave out `X-Total-Count` while this is on.
    pub fn set_omit_total_count(&self, on: bool) {
        self.omit_total_count.store(on, Ordering::Relaxed);
    }

    pub fn set_link(&self, fault: LinkFault) {
        *self.link.lock() = fault;
    }

    pub fn set_command_outcome(&self, outcome: CommandOutcome) {
        *self.command.lock() = outcome;
    }

    /// Back to a well-behaved CPO.
    pub fn reset(&self) {
        self.apply(&FaultsConfig {
            latency_ms: Some(0),
            fail_next: Some(0),
            malformed_json: Some(false),
            omit_total_count: Some(false),
            link: Some(LinkFault::None),
            command: Some(CommandOutcome::Normal),
            reset: None,
        });
    }

    pub fn apply(&self, config: &FaultsConfig) {
        if config.reset == Some(true) {
            self.reset();
        }
        if let Some(ms) = config.latency_ms {
            self.set_latency_ms(ms);
        }
        if let Some(n) = config.fail_next {
            self.fail_next(n);
        }
        if let Some(on) = config.malformed_json {
            self.set_malformed_json(on);
        }
        if let Some(on) = config.omit_total_count {
            self.set_omit_total_count(on);
        }
        if let Some(link) = config.link {
            self.set_link(link);
        }
        if let Some(command) = config.command {
            self.set_command_outcome(command);
        }
    }

    /// The current switches, every field filled.
    pub fn snapshot(&self) -> FaultsConfig {
        FaultsConfig {
            reset: None,
            latency_ms: Some(self.latency_ms()),
            fail_next: Some(self.fail_next.load(Ordering::Relaxed)),
            malformed_json: Some(self.malformed_json()),
            omit_total_count: Some(self.omit_total_count()),
            link: Some(self.link()),
            command: Some(self.command_outcome()),
        }
    }

    pub fn latency_ms(&self) -> u64 {
        self.latency_ms.load(Ordering::Relaxed)
    }

    pub fn malformed_json(&self) -> bool {
        self.malformed_json.load(Ordering::Relaxed)
    }

    pub fn omit_total_count(&self) -> bool {
        self.omit_total_count.load(Ordering::Relaxed)
    }

    pub fn link(&self) -> LinkFault {
        *self.link.lock()
    }

    pub fn command_outcome(&self) -> CommandOutcome {
        *self.command.lock()
    }

    /// Uses up one of the requests `fail_next` asked to fail; true when this request must fail.
    pub(crate) fn take_failure(&self) -> bool {
        self.fail_next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_counts_down_to_zero() {
        let faults = Faults::default();
        faults.fail_next(2);
        assert!(faults.take_failure());
        assert!(faults.take_failure());
        assert!(!faults.take_failure());
    }

    #[test]
    fn admin_json_sets_only_the_given_fields() {
        let faults = Faults::default();
        faults.set_latency_ms(20);
        let config: FaultsConfig = serde_json::from_str(r#"{"link": "loop", "command": "evse_occupied"}"#).unwrap();
        faults.apply(&config);
        assert_eq!(faults.link(), LinkFault::Loop);
        assert_eq!(faults.command_outcome(), CommandOutcome::EvseOccupied);
        assert_eq!(faults.latency_ms(), 20);
        faults.apply(&serde_json::from_str(r#"{"reset": true}"#).unwrap());
        assert_eq!(faults.snapshot(), Faults::default().snapshot());
        assert!(serde_json::from_str::<FaultsConfig>(r#"{"latency": 1}"#).is_err());
    }
}
