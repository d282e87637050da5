//! EVSE status changes: the simulator's own state first (so a later GET agrees), then a PATCH to
//! the EMSP's locations receiver. The pusher drives them at `status_rate_per_s` from random
//! plausible transitions or from a replay of real events; charging sessions and reservations use
//! the same path. Whole objects can be PUT on demand (`push_object`) to exercise an EMSP's
//! receiver with full Locations and Tariffs.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::client::push;
use crate::envelope::format_datetime;
use crate::replay::{ReplayEvent, round_robin};
use crate::state::{SimState, str_field};

#[derive(Serialize)]
struct StatusPatch<'a> {
    status: &'a str,
    last_updated: String,
}

/// Sets the status in our state and PATCHes `{locations}/{cc}/{pid}/{location}/{evse}` when an EMSP
/// is registered. Delivery failures are counted, not retried: the EMSP catches up by pulling.
pub async fn set_and_push_status(state: &SimState, location_id: &str, evse_uid: &str, status: &str) {
    let now = Utc::now();
    let (known, registered) = {
        let mut inner = state.inner.lock();
        (inner.set_evse_status(location_id, evse_uid, status, now), inner.peer.is_some())
    };
    if !known || !registered {
        return;
    }
    let body = serde_json::to_value(StatusPatch { status, last_updated: format_datetime(now) }).unwrap_or(Value::Null);
    let segments = [state.party.0.as_str(), state.party.1.as_str(), location_id, evse_uid];
    let delivered = push(state, "locations", Method::PATCH, &segments, &body).await.is_ok();
    let mut inner = state.inner.lock();
    if delivered {
        inner.status_pushes += 1;
    } else {
        inner.push_failures += 1;
    }
}

/// Where the next status change comes from.
pub enum Source {
    Random(Box<StdRng>),
    Replay { events: Vec<ReplayEvent>, mapping: Vec<usize>, next: usize },
}

impl Source {
    pub fn random(seed: u64) -> Self {
        Source::Random(Box::new(StdRng::seed_from_u64(seed ^ 0x0051_57a7_u64)))
    }

    pub fn replay(events: Vec<ReplayEvent>, evse_count: usize) -> Self {
        let mapping = round_robin(&events, evse_count);
        Source::Replay { events, mapping, next: 0 }
    }

    /// The next `(EVSE index, new status)`, given the current status of every EVSE.
    fn next(&mut self, current: &[String]) -> Option<(usize, String)> {
        if current.is_empty() {
            return None;
        }
        match self {
            Source::Random(rng) => {
                let index = rng.random_range(0..current.len());
                Some((index, random_transition(rng, &current[index]).to_owned()))
            }
            Source::Replay { events, mapping, next } => {
                let at = *next % events.len().max(1);
                *next = at + 1;
                let event = events.get(at)?;
                Some((mapping.get(at).copied().unwrap_or(0) % current.len(), event.status.clone()))
            }
        }
    }
}

/// AVAILABLE <-> CHARGING most of the time; now and then a fault and its repair.
fn random_transition(rng: &mut StdRng, current: &str) -> &'static str {
    let roll = rng.random::<f64>();
    match current {
        "AVAILABLE" if roll < 0.95 => "CHARGING",
        "AVAILABLE" => "OUTOFORDER",
        "CHARGING" if roll < 0.97 => "AVAILABLE",
        "CHARGING" => "OUTOFORDER",
        _ if roll < 0.8 => "AVAILABLE",
        _ => "CHARGING",
    }
}

/// Runs until aborted: one status change per `1 / rate` seconds, from the moment an EMSP is
/// registered (so a replay starts at its first event for whoever listens). EVSEs in a simulated
/// session or under a reservation are left alone so the pusher never contradicts them.
pub async fn run_pusher(state: Arc<SimState>, rate_per_s: f64, mut source: Source) {
    let period = Duration::from_secs_f64(1.0 / rate_per_s.max(0.001));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let (keys, statuses, busy) = {
            let inner = state.inner.lock();
            if inner.peer.is_none() {
                continue;
            }
            let keys = inner.evse_keys();
            let statuses: Vec<String> = keys
                .iter()
                .map(|(l, e)| {
                    inner.evse(l, e).and_then(|evse| str_field(evse, "status")).unwrap_or("UNKNOWN").to_owned()
                })
                .collect();
            let mut busy: Vec<(String, String)> = inner
                .sessions
                .values()
                .filter(|s| !s.completed)
                .map(|s| (s.location_id.clone(), s.evse_uid.clone()))
                .collect();
            busy.extend(inner.reservations.values().cloned());
            (keys, statuses, busy)
        };
        let Some((index, status)) = source.next(&statuses) else { continue };
        let Some((location_id, evse_uid)) = keys.get(index) else { continue };
        if busy.iter().any(|(l, e)| l == location_id && e == evse_uid) {
            continue;
        }
        tracing::debug!(%location_id, %evse_uid, %status, "status change");
        set_and_push_status(&state, location_id, evse_uid, &status).await;
    }
}

/// PUTs a whole object we serve to the EMSP's receiver: `{module}/{cc}/{pid}/{id}`. None when we
/// serve no such object; otherwise whether the EMSP took it.
pub async fn push_object(state: &SimState, module: &'static str, id: &str) -> Option<bool> {
    let object = {
        let inner = state.inner.lock();
        match module {
            "locations" => inner.location(id).cloned(),
            _ => inner.tariffs.iter().find(|t| str_field(t, "id") == Some(id)).cloned(),
        }
    }?;
    let segments = [state.party.0.as_str(), state.party.1.as_str(), id];
    Some(push(state, module, Method::PUT, &segments, &object).await.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::parse_replay;

    #[test]
    fn replay_source_walks_the_events_in_order_and_loops() {
        let events = parse_replay("A;CHARGING;-;1\nB;AVAILABLE;-;2\n").unwrap();
        let mut source = Source::replay(events, 3);
        let current = vec!["AVAILABLE".to_owned(); 3];
        assert_eq!(source.next(&current), Some((0, "CHARGING".to_owned())));
        assert_eq!(source.next(&current), Some((1, "AVAILABLE".to_owned())));
        assert_eq!(source.next(&current), Some((0, "CHARGING".to_owned())));
    }

    #[test]
    fn random_source_is_deterministic_and_plausible() {
        let current = vec!["AVAILABLE".to_owned(), "CHARGING".to_owned()];
        let run = |seed| {
            let mut source = Source::random(seed);
            (0..50).map(|_| source.next(&current)).collect::<Vec<_>>()
        };
        assert_eq!(run(4), run(4));
        for (index, status) in run(4).into_iter().flatten() {
            assert_ne!(current[index], status, "a change changes something");
        }
    }
}
