//! Subscriptions: live updates over WebSocket (graphql-transport-ws, served by the server crate),
//! fed by the event bus ([`emsp_events`]).

use std::sync::Arc;

use async_graphql::{Context, ID, SimpleObject, Subscription};
use emsp_events::{ChargerStatus, ChargerStatusEvent, EventBus, Received};
use emsp_search_index::SearchIndex;
use futures_util::Stream;

use crate::accounts::may_search;
use crate::context::ApiContext;
use crate::errors::ApiCode;

pub struct SubscriptionRoot;

/// The live statuses of a charger's EVSEs.
#[derive(Debug, Clone, PartialEq, SimpleObject)]
pub struct ChargerStatusUpdate {
    pub charger_id: ID,
    /// Every EVSE (REMOVED ones left out); empty when the charger is gone.
    pub evses: Vec<EvseStatusUpdate>,
}

#[derive(Debug, Clone, PartialEq, SimpleObject)]
pub struct EvseStatusUpdate {
    pub uid: String,
    /// AVAILABLE, CHARGING, BLOCKED, RESERVED, OUTOFORDER, INOPERATIVE, PLANNED, UNKNOWN.
    pub status: String,
}

fn update(key: &str, evses: &[(String, emsp_domain::EvseStatus)]) -> ChargerStatusUpdate {
    ChargerStatusUpdate {
        charger_id: ID(key.to_owned()),
        evses: evses
            .iter()
            .map(|(uid, status)| EvseStatusUpdate { uid: uid.clone(), status: status.to_string() })
            .collect(),
    }
}

#[Subscription]
impl SubscriptionRoot {
    /// A charger's EVSE statuses: first as they are now, then each time one changes (pushed by
    /// the CPO, or a new version of the charger). A client that falls behind skips to the newest.
    async fn charger_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ChargerStatusUpdate> + use<>> {
        may_search(ctx)?;
        let api = ctx.data::<ApiContext>()?;
        let key = id.to_ascii_uppercase();
        // Subscribe before reading, so a change between the two is not lost.
        let subscription = api.events.subscribe::<ChargerStatus>(&key);
        let index: Arc<SearchIndex> = api.index.clone();
        let Some(now) = index.evse_statuses(&key) else {
            return Err(ApiCode::NotFound.error(format!("no charger {}", id.as_str())));
        };
        let first = update(&key, &now);
        let state = (subscription, index, key, None::<ChargerStatusUpdate>, Some(first));
        Ok(futures_util::stream::unfold(state, |(mut subscription, index, key, mut last, mut pending)| async move {
            loop {
                let next = match pending.take() {
                    Some(next) => next,
                    None => match subscription.recv().await {
                        Received::Event(event) => update(&key, &event.evses),
                        // Whole states travel on this channel: the newest one repairs a lag.
                        Received::Lagged(_) => update(&key, &index.evse_statuses(&key).unwrap_or_default()),
                        Received::Closed => return None,
                    },
                };
                if last.as_ref() == Some(&next) {
                    continue;
                }
                last = Some(next.clone());
                return Some((next, (subscription, index, key, last, pending)));
            }
        }))
    }
}

/// Publishes a charger's statuses as the index holds them now, when anyone listens.
pub fn publish_charger_status(events: &EventBus, index: &SearchIndex, key: &str) {
    if !events.has_subscribers::<ChargerStatus>(key) {
        return;
    }
    let evses = index.evse_statuses(key).unwrap_or_default();
    events.publish::<ChargerStatus>(key, ChargerStatusEvent { charger_id: key.to_owned(), evses });
}
