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
use tokio::sync::{mpsc, oneshot, watch};

/// Pushes written per transaction at most.
pub const MAX_BATCH: usize = 512;
/// How long an answer waits for the local search index at most.
pub const VISIBLE_WAIT: Duration = Duration::from_secs(2);
/// Pushes waiting for the writer at most; beyond that a push is written on its own.
const QUEUE: usize = 8_192;

type Reply = oneshot::Sender<Result<WriteOutcome, StoreError>>;

/// The queue of status pushes and, when known, the feed position the local index has applied.
#[derive(Default)]
pub struct StatusPushes {
    queue: Mutex<Option<mpsc::Sender<(EvseStatusUpdate, Reply)>>>,
    applied: Mutex<Option<watch::Receiver<i64>>>,
}

impl StatusPushes {
    /// Makes answers wait until the local search index has applied their change: `applied`
    /// carries the feed position the index has reached.
    pub fn follow_index(&self, applied: watch::Receiver<i64>) {
        *self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(applied);
    }

    fn sender(&self) -> Option<mpsc::Sender<(EvseStatusUpdate, Reply)>> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn applied(&self) -> Option<watch::Receiver<i64>> {
        self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Stores one status: through the writer while it runs, else at once.
    pub async fn set_status(&self, store: &Store, update: EvseStatusUpdate) -> Result<WriteOutcome, StoreError> {
        if let Some(queue) = self.sender() {
            let (reply, answer) = oneshot::channel();
            // Kept: a push the writer never got to (shutdown) is written here instead; one it did
            // write is then written again, which is a no-op (the same status).
            let copy = update.clone();
            if queue.try_send((copy, reply)).is_ok()
                && let Ok(outcome) = answer.await
            {
                return outcome;
            }
        }
        self.write_now(store, update).await
    }

    async fn write_now(&self, store: &Store, update: EvseStatusUpdate) -> Result<WriteOutcome, StoreError> {
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
pub async fn write_statuses(pushes: &StatusPushes, store: &Store, mut shutdown: watch::Receiver<bool>) {
    let (queue, mut queued) = mpsc::channel(QUEUE);
    *pushes.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(queue);
    let mut batch: Vec<(EvseStatusUpdate, Reply)> = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            count = queued.recv_many(&mut batch, MAX_BATCH) => if count == 0 { break },
            _ = shutdown.changed() => break,
        }
        let (updates, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        let writing = store.clone();
        let written = tokio::task::spawn_blocking(move || writing.set_evse_statuses(&updates))
            .await
            .unwrap_or_else(|e| Err(StoreError::Unavailable(e.to_string())));
        // Answered apart, so the next batch is written while this one waits for the index.
        let applied = pushes.applied();
        tokio::spawn(async move {
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
        });
    }
    // From now on pushes are written at once; the ones still queued are answered by their
    // senders writing them themselves (their reply channel closes here).
    pushes.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    drop(queued);
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
        while pushes.sender().is_none() {
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
