//! Real-time authorization decisions are answered first and stored a few milliseconds later, many
//! at a time: per request the database then sees one read (the token) instead of a read and a
//! three-round-trip transaction, which on a small machine is what limits the requests per second.
//!
//! While [`write_authorizations`] runs (the server starts it), [`AuthorizationLog::keep`] queues a
//! decision; the writer stores the queue every [`FLUSH_EVERY`] (or at once when it reaches
//! [`FLUSH_AT`]) in one transaction. Without a writer (tools, tests of the store alone) or for an
//! AD_HOC_USER token (whose next decision reads the first one) the decision is written at once.
//! At shutdown the server calls [`AuthorizationLog::close`], which stores what is queued.
//!
//! What can be lost: the decisions of the last few milliseconds if the process dies hard, as with
//! the asynchronous commit already chosen for them. A lost decision only costs the match of a
//! session or CDR by `authorization_reference`; they still match by token.

use std::sync::Mutex;
use std::time::Duration;

use emsp_store::{AuthorizationRecord, Store, StoreError};
use tokio::sync::{Notify, watch};

/// How long a decision waits in the queue at most.
pub const FLUSH_EVERY: Duration = Duration::from_millis(5);
/// A queue this long is written at once.
pub const FLUSH_AT: usize = 256;
/// A queue that cannot be written (the database is down) keeps at most this many decisions.
const MAX_QUEUED: usize = 100_000;

#[derive(Default)]
struct Queue {
    writer_running: bool,
    records: Vec<AuthorizationRecord>,
}

/// The queue of decisions not stored yet.
#[derive(Default)]
pub struct AuthorizationLog {
    queue: Mutex<Queue>,
    full: Notify,
}

impl AuthorizationLog {
    /// Keeps a decision: queued while the writer runs, else written now. Blocking.
    pub fn keep(&self, store: &Store, record: AuthorizationRecord) -> Result<(), StoreError> {
        {
            let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if queue.writer_running {
                queue.records.push(record);
                if queue.records.len() >= FLUSH_AT {
                    self.full.notify_one();
                }
                return Ok(());
            }
        }
        store.record_authorizations(std::slice::from_ref(&record))
    }

    /// Whether decisions are queued (a writer runs): [`AuthorizationLog::keep`] then does not
    /// touch the database, except in the moment the writer stops at shutdown.
    pub fn queueing(&self) -> bool {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).writer_running
    }

    /// Decisions queued and not yet stored.
    pub fn queued(&self) -> usize {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).records.len()
    }

    fn start(&self) {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).writer_running = true;
    }

    fn take(&self, keep_running: bool) -> Vec<AuthorizationRecord> {
        let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        queue.writer_running = keep_running;
        std::mem::take(&mut queue.records)
    }

    /// Puts back a batch that could not be written, ahead of newer ones, within [`MAX_QUEUED`].
    fn put_back(&self, mut batch: Vec<AuthorizationRecord>) {
        let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        batch.append(&mut queue.records);
        if batch.len() > MAX_QUEUED {
            let dropped = batch.len() - MAX_QUEUED;
            tracing::error!(dropped, "authorization decisions could not be stored and are dropped");
            batch.drain(..dropped);
        }
        queue.records = batch;
    }

    /// Stops queueing and stores what is queued (at shutdown, after the last request).
    pub async fn close(&self, store: &Store) {
        let batch = self.take(false);
        if batch.is_empty() {
            return;
        }
        let count = batch.len();
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.record_authorizations(&batch)).await {
            Ok(Ok(())) => tracing::debug!(count, "stored the last authorization decisions"),
            outcome => tracing::error!(count, ?outcome, "the last authorization decisions could not be stored"),
        }
    }
}

/// Stores queued decisions until `shutdown` (then [`AuthorizationLog::close`] stores the rest).
pub async fn write_authorizations(log: &AuthorizationLog, store: &Store, mut shutdown: watch::Receiver<bool>) {
    log.start();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => {}
            _ = log.full.notified() => {}
            _ = shutdown.changed() => {
                log.close(store).await;
                return;
            }
        }
        let batch = log.take(true);
        if batch.is_empty() {
            continue;
        }
        let writing = store.clone();
        let (batch, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = writing.record_authorizations(&batch);
            (batch, outcome)
        })
        .await
        .unwrap_or_else(|e| (Vec::new(), Err(StoreError::Unavailable(e.to_string()))));
        if let Err(error) = outcome {
            tracing::warn!(%error, count = batch.len(), "authorization decisions not stored yet; retrying");
            log.put_back(batch);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use emsp_domain::AllowedType;
    use emsp_store::NewAuthorization;
    use emsp_store::testing::TestDb;

    use super::*;

    fn decision(uid: &str) -> AuthorizationRecord {
        AuthorizationRecord::new(&NewAuthorization {
            token_key: &format!("NL*EMS*{uid}"),
            uid,
            partner_id: Some("p1"),
            allowed: &AllowedType::Allowed,
            location_id: Some("LOC1"),
            evse_uids: &["E1".to_owned()],
        })
    }

    #[tokio::test]
    async fn decisions_are_queued_while_the_writer_runs_and_all_stored_by_shutdown() {
        let db = TestDb::sqlite();
        let store = db.store().clone();
        let log = std::sync::Arc::new(AuthorizationLog::default());

        // No writer: stored at once.
        let first = decision("A");
        log.keep(&store, first.clone()).unwrap();
        assert_eq!(store.get_authorization(&first.reference).unwrap(), Some(first));

        let (stop, stopped) = watch::channel(false);
        let writer = {
            let (log, store) = (log.clone(), store.clone());
            tokio::spawn(async move { write_authorizations(&log, &store, stopped).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let queued = decision("B");
        log.keep(&store, queued.clone()).unwrap();
        let mut waited = 0;
        while store.get_authorization(&queued.reference).unwrap().is_none() {
            assert!(waited < 200, "a queued decision is stored within a few flush intervals");
            tokio::time::sleep(Duration::from_millis(5)).await;
            waited += 1;
        }

        // A burst bigger than FLUSH_AT, then shutdown: every decision is stored, none twice.
        let burst: Vec<_> = (0..FLUSH_AT * 2 + 7).map(|n| decision(&format!("C{n}"))).collect();
        for record in &burst {
            log.keep(&store, record.clone()).unwrap();
        }
        stop.send(true).unwrap();
        writer.await.unwrap();
        assert_eq!(log.queued(), 0);
        for record in &burst {
            assert_eq!(store.get_authorization(&record.reference).unwrap().as_ref(), Some(record));
        }
        // After shutdown, decisions are stored at once again.
        let late = decision("D");
        log.keep(&store, late.clone()).unwrap();
        assert!(store.get_authorization(&late.reference).unwrap().is_some());
    }
}
