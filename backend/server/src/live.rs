//! What follows the change feed besides the search index: the tariff book (PRICE sorting and
//! `maxPrice`) and the event bus (GraphQL subscriptions).
//!
//! The follower in `index_sync.rs` calls [`LiveFeed::applied`] after each batch it applied to the
//! index, from its blocking thread, so reading the store here is fine. The start-up load of the
//! tariff book runs after the index's bulk load has read the feed position, so a tariff change
//! committed meanwhile is applied again by the follower rather than lost.

use std::sync::Arc;

use emsp_events::{ChargerStatus, ChargingSession, ChargingSessionChanged, EventBus};
use emsp_graphql::{TariffBook, publish_charger_status};
use emsp_search_index::SearchIndex;
use emsp_store::{Change, ChangeKind, Store, StoreResult};

/// Tariffs read per page at start-up.
const TARIFF_PAGE: i64 = 2_000;

pub struct LiveFeed {
    pub tariffs: Arc<TariffBook>,
    pub events: EventBus,
    /// Receives the id of every changed charging session (the ad-hoc payment settlement);
    /// `None` when card payments are off.
    pub charging_changes: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl LiveFeed {
    /// Loads every stored tariff into the book.
    pub fn load_tariffs(&self, store: &Store) -> StoreResult<usize> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.tariffs_page(after.as_deref(), TARIFF_PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key());
            all.extend(page);
        }
        let count = all.len();
        self.tariffs.replace_all(all);
        Ok(count)
    }

    /// Brings the tariff book up to date with a batch of changes and tells subscribers of the
    /// chargers whose statuses may have changed.
    pub fn applied(&self, store: &Store, index: &SearchIndex, changes: &[Change]) -> StoreResult<()> {
        let mut upserted: Vec<String> = Vec::new();
        let mut chargers: Vec<String> = Vec::new();
        for change in changes {
            match change.kind {
                ChangeKind::TariffUpserted => upserted.push(change.entity_key.clone()),
                ChangeKind::TariffRemoved => self.tariffs.remove(&change.entity_key),
                ChangeKind::EvseStatus | ChangeKind::LocationUpserted | ChangeKind::LocationRemoved => {
                    chargers.push(change.entity_key.clone());
                }
                ChangeKind::PartyStatus => {
                    // Every charger of the party now reports UNKNOWN (or its real status again).
                    let prefix = format!("{}*", change.entity_key);
                    chargers.extend(self.events.topics_with_prefix::<ChargerStatus>(&prefix));
                }
                ChangeKind::ChargingUpdated => {
                    let user_id = change.payload["user_id"].as_str().unwrap_or_default().to_owned();
                    let event = ChargingSessionChanged { id: change.entity_key.clone(), user_id };
                    self.events.publish::<ChargingSession>(&change.entity_key, event);
                    if let Some(changes) = &self.charging_changes {
                        // Closed only at shutdown; the settlement sweep covers what is missed.
                        let _ = changes.send(change.entity_key.clone());
                    }
                }
            }
        }
        if !upserted.is_empty() {
            upserted.sort();
            upserted.dedup();
            let found = store.get_tariffs(&upserted)?;
            for key in &upserted {
                // Removed again later in the batch (or since): the store no longer has it.
                if !found.iter().any(|tariff| tariff.key() == *key) {
                    self.tariffs.remove(key);
                }
            }
            for tariff in found {
                self.tariffs.upsert(tariff);
            }
        }
        chargers.sort_unstable();
        chargers.dedup();
        for key in &chargers {
            publish_charger_status(&self.events, index, key);
        }
        Ok(())
    }
}
