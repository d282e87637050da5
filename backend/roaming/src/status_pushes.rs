//! Group commit of EVSE status pushes, the hot path of the location receiver.
//!
//! A CPO pushes status changes one HTTP request at a time, many at once. Written one transaction
//! each, every push pays for its own round trips and for the change feed's lock (held to the
//! commit, which orders the feed). While [`write_statuses`] runs (the server starts it), a push is
//! queued instead; the writer takes everything queued, writes it in one transaction
//! ([`Store::set_evse_statuses`]) and goes on with the next batch at once, so under load a batch
//! holds what arrived during the previous write and at rest a push waits for nobody.
//!
//! A push is answered once its change is stored *and*, when the server follows the feed into its
//! own search index ([`StatusPushes::follow_index`]), once that index holds it: a CPO's 200 means
//! the driver searching on this replica already sees the new status. Waiting for the index has a
//! bound ([`VISIBLE_WAIT`]): a stuck index delays answers, it does not stop them.
//!
//! Without a writer (tools, tests of the receiver alone, shutdown) a push is written at once.

use std::sync::Mutex;
use std::time::Duration;

use emsp_store::{EvseStatusUpdate, Store, StoreError, WriteOutcome};
use tokio::sync::watch;

use crate::batcher::{Batcher, Pending};

/// Pushes written per transaction at most.
pub const MAX_BATCH: usize = 512;
/// How long an answer waits for the local search index at most.
pub const VISIBLE_WAIT: Duration = Duration::from_secs(2);

type Outcome = Result<WriteOutcome, StoreError>;

/// The queue of status pushes and, when known, the feed position the local index has applied.
#[derive(Default)]
pub struct StatusPushes {
    queue: Batcher<EvseStatusUpdate, Outcome>,
    applied: Mutex<Option<watch::Receiver<i64>>>,
}

impl StatusPushes {
    /// Makes answers wait until the local search index has applied their change: `applied`
    /// carries the feed position the index has reached.
    pub fn follow_index(&self, applied: watch::Receiver<i64>) {
        *self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(applied);
    }

    fn applied(&self) -> Option<watch::Receiver<i64>> {
        self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Stores one status: through the writer while it runs, else at once. A push the writer
    /// stopped before answering (shutdown) is written here; if the writer did write it, writing the
    /// same status again is a no-op.
    pub async fn set_status(&self, store: &Store, update: EvseStatusUpdate) -> Outcome {
        let update = match self.queue.submit(update).await {
            Ok(outcome) => return outcome,
            Err(update) => update,
        };
        let store = store.clone();
        let batch = tokio::task::spawn_blocking(move || store.set_evse_statuses(std::slice::from_ref(&update)))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        let last_seq = batch.last_seq;
        let outcome = batch.outcomes.into_iter().next().unwrap_or(Ok(WriteOutcome::Unchanged));
        if let (Some(seq), Some(applied)) = (last_seq, self.applied()) {
            wait_visible(applied, seq).await;
        }
        outcome
    }
}

/// Waits (within [`VISIBLE_WAIT`]) until the index has applied the feed up to `seq`.
async fn wait_visible(mut applied: watch::Receiver<i64>, seq: i64) {
    let reached = tokio::time::timeout(VISIBLE_WAIT, applied.wait_for(|at| *at >= seq)).await;
    if !matches!(reached, Ok(Ok(_))) {
        tracing::warn!(seq, "status push answered before the search index applied it");
    }
}

/// Writes queued status pushes in batches until `shutdown`; then pushes are written one by one.
pub async fn write_statuses(pushes: &StatusPushes, store: &Store, shutdown: watch::Receiver<bool>) {
    pushes
        .queue
        .run(MAX_BATCH, shutdown, |pending: Vec<Pending<EvseStatusUpdate, Outcome>>| async move {
            let (updates, replies): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
            let writing = store.clone();
            let written = tokio::task::spawn_blocking(move || writing.set_evse_statuses(&updates))
                .await
                .unwrap_or_else(|e| Err(StoreError::Unavailable(e.to_string())));
            // Answered apart, so the next batch is written while this one waits for the index.
            let applied = pushes.applied();
            tokio::spawn(answer(written, replies, applied));
        })
        .await;
}

async fn answer(
    written: Result<emsp_store::StatusBatch, StoreError>,
    replies: Vec<tokio::sync::oneshot::Sender<Outcome>>,
    applied: Option<watch::Receiver<i64>>,
) {
    match written {
        Ok(batch) => {
            // What changed nothing (or failed) has nothing to wait for.
            let (changed, rest): (Vec<_>, Vec<_>) = replies
                .into_iter()
                .zip(batch.outcomes)
                .partition(|(_, outcome)| matches!(outcome, Ok(WriteOutcome::Updated)));
            for (reply, outcome) in rest {
                let _ = reply.send(outcome);
            }
            if let (Some(seq), Some(applied)) = (batch.last_seq, applied) {
                wait_visible(applied, seq).await;
            }
            for (reply, outcome) in changed {
                let _ = reply.send(outcome);
            }
        }
        Err(error) => {
            tracing::warn!(%error, count = replies.len(), "status pushes not stored");
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable(error.to_string())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use emsp_domain::fixtures::{at, location};
    use emsp_domain::{EvseStatus, EvseUid};
    use emsp_store::testing::TestDb;

    use super::*;

    fn update(location: usize, uid: &str, status: EvseStatus, secs: i64) -> EvseStatusUpdate {
        EvseStatusUpdate {
            location_key: format!("NL*ABC*LOC-{location}"),
            evse_uid: EvseUid::new(uid).unwrap(),
            status,
            at: at(secs),
        }
    }

    fn status(store: &Store, location: usize, uid: &str) -> EvseStatus {
        let location = store.get_location(&format!("NL*ABC*LOC-{location}")).unwrap().unwrap();
        location.evses.into_iter().find(|e| e.uid.as_str() == uid).unwrap().status
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushes_are_written_together_and_answered_once_the_index_has_them() {
        let db = TestDb::sqlite();
        let store = db.store().clone();
        for n in 0..20 {
            store.upsert_location(&location(&format!("loc-{n}"), 52.0 + n as f64 / 100.0, 4.0), None).unwrap();
        }
        let pushes = Arc::new(StatusPushes::default());

        // No writer: written at once.
        let first = pushes.set_status(&store, update(0, "1", EvseStatus::OutOfOrder, 10)).await.unwrap();
        assert_eq!(first, WriteOutcome::Updated);
        assert_eq!(status(&store, 0, "1"), EvseStatus::OutOfOrder);

        let (applied_tx, applied) = watch::channel(store.latest_change_seq().unwrap());
        pushes.follow_index(applied);
        let (stop, stopped) = watch::channel(false);
        let writer = {
            let (pushes, store) = (pushes.clone(), store.clone());
            tokio::spawn(async move { write_statuses(&pushes, &store, stopped).await })
        };
        while !pushes.queue.running() {
            tokio::task::yield_now().await;
        }
        // A burst of 40 changes: each gets its own outcome, none before the index has it.
        let before = store.latest_change_seq().unwrap();
        let mut answers = Vec::new();
        for n in 0..20 {
            for uid in ["1", "2"] {
                let (pushes, store) = (pushes.clone(), store.clone());
                let push = update(n, uid, EvseStatus::Blocked, 20 + n as i64);
                answers.push(tokio::spawn(async move { pushes.set_status(&store, push).await }));
            }
        }
        let unknown = pushes.set_status(&store, update(3, "9", EvseStatus::Charging, 30)).await.unwrap_err();
        assert!(matches!(unknown, StoreError::NotFound(_)), "an unknown EVSE fails alone, at once: {unknown}");
        let mut waited = 0;
        while store.latest_change_seq().unwrap() < before + 40 {
            assert!(waited < 1_000, "the burst is stored");
            tokio::time::sleep(Duration::from_millis(5)).await;
            waited += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(n) = answers.iter().position(tokio::task::JoinHandle::is_finished) {
            let answer = answers.remove(n).await.unwrap();
            panic!("stored, but not in the index yet: no answer; {n} answered {answer:?}");
        }
        applied_tx.send_replace(store.latest_change_seq().unwrap());
        for answer in answers {
            assert_eq!(answer.await.unwrap().unwrap(), WriteOutcome::Updated);
        }
        assert_eq!((status(&store, 7, "1"), status(&store, 7, "2")), (EvseStatus::Blocked, EvseStatus::Blocked));
        // A push that changes nothing has nothing to wait for.
        let same = pushes.set_status(&store, update(7, "1", EvseStatus::Blocked, 80)).await.unwrap();
        assert_eq!(same, WriteOutcome::Unchanged);

        // After shutdown, pushes are written at once again.
        stop.send(true).unwrap();
        writer.await.unwrap();
        applied_tx.send_replace(i64::MAX);
        let late = pushes.set_status(&store, update(7, "1", EvseStatus::Available, 90)).await.unwrap();
        assert_eq!(late, WriteOutcome::Updated);
        assert_eq!(status(&store, 7, "1"), EvseStatus::Available);
    }
}
