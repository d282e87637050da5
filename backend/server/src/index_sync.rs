//! Keeps the in-memory search index equal to the store.
//!
//! At start-up the index is bulk-loaded from the store in pages. The change-feed position is read
//! *before* the load, so a change committed while loading is applied again afterwards (every change
//! is idempotent) instead of being lost. After that a follower applies the feed in order. Because
//! every replica runs its own follower against the same feed, a status change pushed to any replica
//! reaches the search of all of them.
//!
//! A party whose hub reports it not CONNECTED is stale (`ChangeKind::PartyStatus`): the index
//! reports its EVSEs as UNKNOWN until it is back; the bulk load reads the stored party statuses.
//!
//! EVSEs with status REMOVED are kept in the store (a partner may bring them back) but never given
//! to the index: for search they do not exist.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use emsp_domain::{EvseStatus, EvseUid, Location};
use emsp_search_index::{ChangeError, ChangeOutcome, IndexChange, SearchIndex};
use emsp_store::{Change, ChangeKind, Store, StoreResult};
use tokio::sync::watch;

use crate::live::LiveFeed;

/// Locations read per page during the bulk load.
const LOAD_PAGE: i64 = 2_000;
/// Changes applied per poll.
const FEED_BATCH: i64 = 1_000;
/// How often an idle follower looks for changes written by other processes (replicas, the CLI);
/// this process's own writes wake it at once.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Loads every stored location; returns the feed position to follow from.
pub fn bulk_load(store: &Store, index: &SearchIndex) -> StoreResult<i64> {
    let started = Instant::now();
    let from_seq = store.latest_change_seq()?;
    // Marked before the load, so the loaded locations of stale parties come in stale.
    for party in store.stale_parties()? {
        index.set_party_stale(&party, true);
    }
    let mut locations = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.locations_page(after.as_deref(), LOAD_PAGE)?;
        let Some(last) = page.last() else { break };
        after = Some(last.key());
        locations.extend(page.into_iter().map(searchable));
        if locations.len() % (LOAD_PAGE as usize * 25) == 0 {
            tracing::info!(loaded = locations.len(), "loading the search index");
        }
    }
    let report = index.bulk_load(locations);
    for rejected in report.rejected.iter().take(20) {
        tracing::warn!(rejected = ?rejected, "location not indexed");
    }
    index.mark_ready();
    tracing::info!(
        locations = report.locations,
        evses = report.evses,
        rejected = report.rejected.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        from_seq,
        "search index loaded"
    );
    Ok(from_seq)
}

/// Applies every change after `after_seq`; returns the new position.
/// Each applied batch's position is published on `applied` (what status pushes wait for before
/// they answer, see `emsp_roaming::status_pushes`).
pub fn apply_pending(
    store: &Store,
    index: &SearchIndex,
    mut after_seq: i64,
    observer: &LiveFeed,
    applied: &watch::Sender<i64>,
) -> StoreResult<i64> {
    loop {
        let changes = store.changes_since(after_seq, FEED_BATCH)?;
        let Some(last) = changes.last() else { return Ok(after_seq) };
        let last_seq = last.seq;
        // One read for every location upserted in the batch, instead of one per change.
        let mut upserted: Vec<String> =
            changes.iter().filter(|c| c.kind == ChangeKind::LocationUpserted).map(|c| c.entity_key.clone()).collect();
        upserted.sort();
        upserted.dedup();
        let mut fresh: HashMap<String, Location> =
            store.get_locations(&upserted)?.into_iter().map(|location| (location.key(), location)).collect();
        for change in &changes {
            if change.kind == ChangeKind::LocationUpserted {
                let result = match fresh.remove(&change.entity_key) {
                    Some(location) => index.apply(IndexChange::UpsertLocation(Box::new(searchable(location)))),
                    // Gone since, or a second change of the same location in this batch.
                    None => reindex(store, index, &change.entity_key)?,
                };
                if let Err(error) = result {
                    tracing::warn!(seq = change.seq, key = %change.entity_key, %error, "change not applied to the search index");
                }
                continue;
            }
            apply(store, index, change)?;
        }
        // The tariff book and the event bus follow the same feed (`live.rs`).
        observer.applied(store, index, &changes)?;
        after_seq = last_seq;
        applied.send_replace(after_seq);
    }
}

fn apply(store: &Store, index: &SearchIndex, change: &Change) -> StoreResult<()> {
    let result = match change.kind {
        // Re-read rather than trust an old payload: the row holds the newest version, and a
        // location removed since is removed from the index too.
        ChangeKind::LocationUpserted => reindex(store, index, &change.entity_key)?,
        ChangeKind::LocationRemoved => index.apply(IndexChange::RemoveLocation { key: change.entity_key.clone() }),
        ChangeKind::EvseStatus => {
            let uid = change.payload["evse_uid"].as_str().and_then(|uid| EvseUid::new(uid).ok());
            let status = change.payload["status"].as_str().map(EvseStatus::parse);
            match (uid, status) {
                // Into or out of REMOVED changes which EVSEs exist for search: index the location anew.
                (Some(_), Some(EvseStatus::Removed)) => reindex(store, index, &change.entity_key)?,
                (Some(uid), Some(status)) => match index.set_evse_status(&change.entity_key, uid.as_str(), &status) {
                    Ok(()) => Ok(ChangeOutcome::StatusChanged),
                    // An EVSE coming back from REMOVED is not in the index yet.
                    Err(_) => reindex(store, index, &change.entity_key)?,
                },
                _ => {
                    tracing::error!(seq = change.seq, payload = %change.payload, "malformed status change in the feed");
                    return Ok(());
                }
            }
        }
        ChangeKind::PartyStatus => match change.payload["stale"].as_bool() {
            Some(stale) => {
                let changed = index.set_party_stale(&change.entity_key, stale);
                tracing::info!(party = %change.entity_key, stale, locations = changed, "party staleness changed");
                Ok(ChangeOutcome::PartyStaleness(changed))
            }
            None => {
                tracing::error!(seq = change.seq, payload = %change.payload, "malformed party change in the feed");
                return Ok(());
            }
        },
        // The index holds tariff references, not tariffs; pricing reads tariffs on its own.
        ChangeKind::TariffUpserted | ChangeKind::TariffRemoved | ChangeKind::ChargingUpdated => return Ok(()),
    };
    if let Err(error) = result {
        // A location the index rejects (impossible coordinates) or a status for an EVSE it does not
        // hold: logged, never a reason to stop following the feed.
        tracing::warn!(seq = change.seq, key = %change.entity_key, %error, "change not applied to the search index");
    }
    Ok(())
}

/// A location as search sees it: without its REMOVED EVSEs.
fn searchable(mut location: Location) -> Location {
    location.evses.retain(|evse| evse.status != EvseStatus::Removed);
    location
}

/// Replaces the index's copy of a location with the stored one (or drops it when it is gone).
fn reindex(store: &Store, index: &SearchIndex, key: &str) -> StoreResult<Result<ChangeOutcome, ChangeError>> {
    Ok(match store.get_location(key)? {
        Some(location) => index.apply(IndexChange::UpsertLocation(Box::new(searchable(location)))),
        None => index.apply(IndexChange::RemoveLocation { key: key.to_owned() }),
    })
}

/// Follows the feed until `shutdown` turns true. A database outage pauses the follower, which
/// resumes from where it was.
pub async fn follow(
    store: Store,
    index: Arc<SearchIndex>,
    mut after_seq: i64,
    mut shutdown: watch::Receiver<bool>,
    observer: Arc<LiveFeed>,
    applied: Arc<watch::Sender<i64>>,
) {
    applied.send_replace(after_seq);
    loop {
        let (store_now, index_now, observer_now, applied_now) =
            (store.clone(), index.clone(), observer.clone(), applied.clone());
        let apply = move || apply_pending(&store_now, &index_now, after_seq, &observer_now, &applied_now);
        match tokio::task::spawn_blocking(apply).await {
            Ok(Ok(seq)) => after_seq = seq,
            Ok(Err(error)) => tracing::warn!(%error, after_seq, "change feed unavailable, retrying"),
            Err(error) => tracing::error!(%error, "change feed follower panicked, retrying"),
        }
        tokio::select! {
            _ = store.local_changes().notified() => {}
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
