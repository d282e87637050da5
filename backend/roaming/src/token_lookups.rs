//! Token reads of real-time authorization, coalesced: while [`serve_lookups`] runs (the server
//! starts it), the uids CPOs ask about at the same time are read in one query
//! ([`Store::get_tokens_and_owners_disabled`]) instead of one query, one pooled connection and one
//! blocking-thread hand-off each. At most [`IN_FLIGHT`] queries run at once; what arrives
//! meanwhile makes the next batch. Without it (tools, tests of the module alone) a lookup reads
//! on its own.

use std::sync::Arc;

use emsp_store::{Store, StoreError, TokenRecord};
use tokio::sync::{Semaphore, watch};

use crate::batcher::{Batcher, Pending};

/// Uids read per query at most.
pub const MAX_BATCH: usize = 256;
/// Queries running at once at most (one per core of a small machine).
pub const IN_FLIGHT: usize = 2;

/// A token with whether its driver's account is disabled (`None` without a driver).
pub type Found = Option<(TokenRecord, Option<bool>)>;

type Answer = Result<Found, StoreError>;

/// The queue of token lookups.
#[derive(Default)]
pub struct TokenLookups {
    queue: Batcher<String, Answer>,
}

impl TokenLookups {
    /// The token with this uid (any case) and its owner's state.
    pub async fn lookup(&self, store: &Store, uid: &str) -> Answer {
        let uid = match self.queue.submit(uid.to_ascii_uppercase()).await {
            Ok(answer) => return answer,
            Err(uid) => uid,
        };
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.get_token_and_owner_disabled(&uid))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

/// Answers queued lookups in batches until `shutdown`; then lookups read on their own.
pub async fn serve_lookups(lookups: &TokenLookups, store: &Store, shutdown: watch::Receiver<bool>) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    lookups
        .queue
        .run(MAX_BATCH, shutdown, |pending: Vec<Pending<String, Answer>>| {
            let (store, in_flight) = (store.clone(), in_flight.clone());
            async move {
                // Waiting for a free slot is what lets the next batch grow.
                let Ok(permit) = in_flight.acquire_owned().await else { return };
                tokio::spawn(async move {
                    let uids: Vec<String> = pending.iter().map(|(uid, _)| uid.clone()).collect();
                    let read = tokio::task::spawn_blocking(move || store.get_tokens_and_owners_disabled(&uids))
                        .await
                        .unwrap_or_else(|e| Err(StoreError::Unavailable(e.to_string())));
                    drop(permit);
                    match read {
                        Ok(found) => {
                            for (uid, reply) in pending {
                                // Cloned: a uid asked twice in one batch gets its token both times.
                                let _ = reply.send(Ok(found.get(&uid).cloned()));
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, count = pending.len(), "token lookups failed");
                            for (_, reply) in pending {
                                let _ = reply.send(Err(StoreError::Unavailable(error.to_string())));
                            }
                        }
                    }
                });
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use emsp_domain::{PartyId, TokenType, TokenUid};
    use emsp_store::testing::TestDb;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_are_read_together_and_each_gets_its_token() {
        let db = TestDb::sqlite();
        let store = db.store().clone();
        let issuer = PartyId::parse("NL*EMS").unwrap();
        for uid in ["APP-1", "APP-2", "APP-3"] {
            let uid = TokenUid::new(uid).unwrap();
            let mut record = TokenRecord::for_driver(&issuer, uid, TokenType::AppUser, "Open EMSP", "-").unwrap();
            record.user_id = None;
            store.insert_token(&record, "issued", "ops").unwrap();
        }
        let lookups = Arc::new(TokenLookups::default());
        let alone = lookups.lookup(&store, "app-1").await.unwrap().unwrap();
        assert_eq!(alone.0.key(), "NL*EMS*APP-1", "without the server: read on its own");

        let (stop, stopped) = watch::channel(false);
        let server = {
            let (lookups, store) = (lookups.clone(), store.clone());
            tokio::spawn(async move { serve_lookups(&lookups, &store, stopped).await })
        };
        while !lookups.queue.running() {
            tokio::task::yield_now().await;
        }
        let asked: Vec<_> = (0..60)
            .map(|n| {
                let (lookups, store) = (lookups.clone(), store.clone());
                let uid = ["app-1", "APP-2", "App-3", "unknown"][n % 4];
                tokio::spawn(async move { (uid, lookups.lookup(&store, uid).await.unwrap()) })
            })
            .collect();
        for ask in asked {
            let (uid, found) = ask.await.unwrap();
            match found {
                Some((record, _)) => assert_eq!(record.token.uid.key(), uid.to_ascii_uppercase()),
                None => assert_eq!(uid, "unknown"),
            }
        }
        stop.send(true).unwrap();
        server.await.unwrap();
        assert!(lookups.lookup(&store, "APP-2").await.unwrap().is_some(), "after shutdown: read on its own");
    }
}
