//! The simulator's memory, shared by the HTTP workers and the background tasks. Everything lives
//! behind one mutex: the simulator is small, a lock is held only for in-memory work (never across
//! an `.await`), and one lock keeps location state, sessions and the registration consistent.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;

use crate::charging::ChargingSession;
use crate::envelope::format_datetime;
use crate::faults::Faults;
use crate::options::{ChargingOptions, SimVersion};
use crate::received::ReceivedCommand;

pub struct SimState {
    pub version: SimVersion,
    /// Our `(country_code, party_id)`.
    pub party: (String, String),
    /// Public base URL without a trailing slash.
    pub base_url: String,
    pub page_limit: usize,
    pub charging: ChargingOptions,
    pub faults: Arc<Faults>,
    /// The runtime of the caller of `start`: outgoing HTTP and background tasks run there, not on
    /// the actix worker threads, so they outlive a request and share one connection pool.
    pub rt: tokio::runtime::Handle,
    pub http: reqwest::Client,
    pub inner: Mutex<Inner>,
}

/// The registered EMSP.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The token the EMSP uses with us (token C, or the one we sent in `register_with`).
    pub token_ours: String,
    /// The token we use with the EMSP (token B, or the EMSP's answer to `register_with`).
    pub token_theirs: String,
    pub versions_url: String,
    pub country_code: Option<String>,
    pub party_id: Option<String>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub identifier: String,
    /// `SENDER`/`RECEIVER` in 2.2.1; absent in 2.1.1.
    pub role: Option<String>,
    pub url: String,
}

impl Peer {
    /// The EMSP's receiver interface of a module (2.1.1 has no roles: any endpoint of the module).
    pub fn receiver(&self, identifier: &str) -> Option<&str> {
        self.endpoints
            .iter()
            .find(|e| {
                e.identifier.eq_ignore_ascii_case(identifier)
                    && e.role.as_deref().is_none_or(|role| role.eq_ignore_ascii_case("RECEIVER"))
            })
            .map(|e| e.url.as_str())
    }

    /// The EMSP's sender interface of a module (any endpoint of the module in 2.1.1).
    pub fn sender(&self, identifier: &str) -> Option<&str> {
        self.endpoints
            .iter()
            .find(|e| {
                e.identifier.eq_ignore_ascii_case(identifier)
                    && e.role.as_deref().is_none_or(|role| role.eq_ignore_ascii_case("SENDER"))
            })
            .map(|e| e.url.as_str())
    }
}

#[derive(Default)]
pub struct Inner {
    /// The token A handed out at start; it comes back into force after `DELETE /credentials`.
    pub original_token_a: String,
    /// Valid until a registration completes.
    pub token_a: Option<String>,
    /// The token we offered in an in-flight `register_with`: the EMSP calls our versions with it
    /// before it answers.
    pub pending_token: Option<String>,
    pub peer: Option<Peer>,
    pub locations: Vec<Value>,
    pub location_index: HashMap<String, usize>,
    pub tariffs: Vec<Value>,
    /// Tokens pushed by the EMSP, keyed by `(country_code, party_id, uid, type)`.
    pub tokens: BTreeMap<(String, String, String, String), Value>,
    pub commands: Vec<ReceivedCommand>,
    pub sessions: BTreeMap<String, ChargingSession>,
    /// Reservation id -> (location id, EVSE uid).
    pub reservations: BTreeMap<String, (String, String)>,
    pub cdrs: Vec<Value>,
    pub status_pushes: u64,
    pub push_failures: u64,
    pub tasks: Vec<tokio::task::AbortHandle>,
}

impl Inner {
    pub fn set_locations(&mut self, locations: Vec<Value>) {
        self.location_index = locations
            .iter()
            .enumerate()
            .filter_map(|(i, location)| Some((location.get("id")?.as_str()?.to_owned(), i)))
            .collect();
        self.locations = locations;
    }

    pub fn location(&self, id: &str) -> Option<&Value> {
        self.location_index.get(id).and_then(|&i| self.locations.get(i))
    }

    pub fn evse(&self, location_id: &str, evse_uid: &str) -> Option<&Value> {
        self.location(location_id)?.get("evses")?.as_array()?.iter().find(|e| str_field(e, "uid") == Some(evse_uid))
    }

    /// Every `(location id, EVSE uid)` in location order, then EVSE order.
    pub fn evse_keys(&self) -> Vec<(String, String)> {
        let mut keys = Vec::new();
        for location in &self.locations {
            let Some(location_id) = str_field(location, "id") else { continue };
            let Some(evses) = location.get("evses").and_then(Value::as_array) else { continue };
            for evse in evses {
                if let Some(uid) = str_field(evse, "uid") {
                    keys.push((location_id.to_owned(), uid.to_owned()));
                }
            }
        }
        keys
    }

    /// Sets an EVSE's status and bumps `last_updated` of the EVSE and its location, so a later GET
    /// and a `date_from` pull both see the change. False when the EVSE does not exist.
    pub fn set_evse_status(&mut self, location_id: &str, evse_uid: &str, status: &str, at: DateTime<Utc>) -> bool {
        let Some(&index) = self.location_index.get(location_id) else { return false };
        let Some(location) = self.locations.get_mut(index) else { return false };
        let stamp = Value::String(format_datetime(at));
        let Some(evse) = location
            .get_mut("evses")
            .and_then(Value::as_array_mut)
            .and_then(|evses| evses.iter_mut().find(|e| str_field(e, "uid") == Some(evse_uid)))
        else {
            return false;
        };
        if let Some(object) = evse.as_object_mut() {
            object.insert("status".to_owned(), Value::String(status.to_owned()));
            object.insert("last_updated".to_owned(), stamp.clone());
        }
        if let Some(object) = location.as_object_mut() {
            object.insert("last_updated".to_owned(), stamp);
        }
        true
    }
}

impl SimState {
    /// Runs a background task on the caller's runtime; `RunningSim::stop` aborts what is left.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = self.rt.spawn(task);
        let mut inner = self.inner.lock();
        inner.tasks.retain(|task| !task.is_finished());
        inner.tasks.push(handle.abort_handle());
    }

    /// URL prefix of our OCPI modules, e.g. `http://127.0.0.1:8080/ocpi/2.2.1`.
    pub fn version_url(&self) -> String {
        format!("{}/ocpi/{}", self.base_url, self.version.as_str())
    }

    pub fn versions_url(&self) -> String {
        format!("{}/ocpi/versions", self.base_url)
    }
}

pub fn str_field<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str)
}
