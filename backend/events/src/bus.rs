//! A topic-based, typed, in-process event bus over `tokio::sync::broadcast`.
//!
//! # Model
//!
//! - A **channel** is a kind of event with a payload type, declared once by implementing
//!   [`Channel`] on a marker type (`ChargerStatus`, later `ChargingSession`). The bus itself knows
//!   no channel: a new kind of event needs no change here.
//! - A **topic** is one channel and one id (`ChargerStatus` of `NL*ABC*L1`). Each topic that has
//!   subscribers owns one broadcast sender; topics without subscribers hold nothing, and
//!   [`EventBus::publish`] to them costs one map look-up, so publishers may publish every change
//!   without first asking whether anyone listens. [`EventBus::has_subscribers`] lets a publisher
//!   skip building an expensive payload.
//! - Payloads travel as `Arc<C::Event>`: one allocation per publish, whatever the number of
//!   subscribers.
//!
//! # Slow subscribers
//!
//! Each topic buffers `capacity` events. A subscriber that falls further behind is not allowed to
//! hold publishers back: it loses the oldest events and its next [`Subscription::recv`] says
//! [`Received::Lagged`] with how many it missed, then continues with the oldest event still held.
//! Channels should therefore carry **whole states** (all EVSE statuses of a charger, a session as
//! it is now), so that the next event repairs what a lag lost; a channel of deltas must have its
//! subscribers re-read the state on `Lagged`.
//!
//! # Delivery
//!
//! At most once, in publish order per topic, to subscribers that existed when the event was
//! published. Events are not persisted: a subscriber that connects later (or to another replica)
//! reads the current state first. Each replica runs its own bus fed by its own change-feed
//! follower, so an event published on any replica's store reaches subscribers of every replica.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::broadcast;

/// A kind of event: its name and payload type. Implement it on a marker type.
pub trait Channel: 'static {
    /// Unique among channels, e.g. `"charger.status"`.
    const NAME: &'static str;
    type Event: Send + Sync + 'static;
}

type Payload = Arc<dyn Any + Send + Sync>;
type TopicKey = (&'static str, Box<str>);

/// Default number of events a topic buffers for its slowest subscriber.
const DEFAULT_CAPACITY: usize = 64;

/// The bus. Cheap to clone; clones share topics.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    topics: Mutex<HashMap<TopicKey, broadcast::Sender<Payload>>>,
    capacity: usize,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus").field("topics", &self.topic_count()).finish()
    }
}

impl EventBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// A bus whose topics buffer `capacity` events (at least 1) for slow subscribers.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { inner: Arc::new(Inner { topics: Mutex::new(HashMap::new()), capacity: capacity.max(1) }) }
    }

    /// Sends `event` to the current subscribers of `id` on channel `C`; returns how many there
    /// were (0: nobody listens, nothing was kept).
    pub fn publish<C: Channel>(&self, id: &str, event: C::Event) -> usize {
        let mut topics = self.inner.topics.lock();
        let key: TopicKey = (C::NAME, Box::from(id));
        let Some(sender) = topics.get(&key) else { return 0 };
        match sender.send(Arc::new(event)) {
            Ok(receivers) => receivers,
            Err(_) => {
                // Every subscriber has gone: forget the topic.
                topics.remove(&key);
                0
            }
        }
    }

    /// Whether anyone listens to `id` on channel `C`.
    pub fn has_subscribers<C: Channel>(&self, id: &str) -> bool {
        let topics = self.inner.topics.lock();
        topics.get(&(C::NAME, Box::from(id))).is_some_and(|sender| sender.receiver_count() > 0)
    }

    /// Starts listening to `id` on channel `C`: events published from now on.
    pub fn subscribe<C: Channel>(&self, id: &str) -> Subscription<C> {
        let mut topics = self.inner.topics.lock();
        let key: TopicKey = (C::NAME, Box::from(id));
        let receiver = match topics.get(&key) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(self.inner.capacity);
                topics.insert(key.clone(), sender);
                receiver
            }
        };
        Subscription { receiver, bus: self.inner.clone(), key: Some(key), _channel: PhantomData }
    }

    /// The ids of channel `C`'s topics that start with `prefix` (ASCII case-insensitive): who
    /// listens to anything of one party, say.
    pub fn topics_with_prefix<C: Channel>(&self, prefix: &str) -> Vec<String> {
        let topics = self.inner.topics.lock();
        topics
            .keys()
            .filter(|(name, id)| {
                *name == C::NAME
                    && id.len() >= prefix.len()
                    && id.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
            })
            .map(|(_, id)| id.to_string())
            .collect()
    }

    /// Topics with at least one subscriber (for metrics and tests).
    pub fn topic_count(&self) -> usize {
        self.inner.topics.lock().len()
    }
}

/// What [`Subscription::recv`] gives.
#[derive(Debug)]
pub enum Received<T> {
    Event(Arc<T>),
    /// The subscriber fell behind and lost this many events; the next ones follow.
    Lagged(u64),
    /// The bus is gone; no more events will come.
    Closed,
}

/// One subscriber of one topic. Dropping it unsubscribes; the topic is forgotten with its last
/// subscriber.
pub struct Subscription<C: Channel> {
    receiver: broadcast::Receiver<Payload>,
    bus: Arc<Inner>,
    key: Option<TopicKey>,
    _channel: PhantomData<fn() -> C>,
}

impl<C: Channel> Subscription<C> {
    /// The next event, waiting for it.
    pub async fn recv(&mut self) -> Received<C::Event> {
        loop {
            match self.receiver.recv().await {
                Ok(payload) => match payload.downcast::<C::Event>() {
                    Ok(event) => return Received::Event(event),
                    // Two channels with one name and different payload types: a programming
                    // error, never a reason to stop; such events are skipped.
                    Err(_) => continue,
                },
                Err(broadcast::error::RecvError::Lagged(missed)) => return Received::Lagged(missed),
                Err(broadcast::error::RecvError::Closed) => return Received::Closed,
            }
        }
    }
}

impl<C: Channel> Drop for Subscription<C> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut topics = self.bus.topics.lock();
        // This receiver still counts until it is dropped, after this function.
        if topics.get(&key).is_some_and(|sender| sender.receiver_count() <= 1) {
            topics.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    struct Numbers;
    impl Channel for Numbers {
        const NAME: &'static str = "test.numbers";
        type Event = u32;
    }

    struct Words;
    impl Channel for Words {
        const NAME: &'static str = "test.words";
        type Event = String;
    }

    async fn next(subscription: &mut Subscription<Numbers>) -> u32 {
        match subscription.recv().await {
            Received::Event(value) => *value,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn events_reach_the_subscribers_of_their_topic_only() {
        let bus = EventBus::new();
        assert_eq!(bus.publish::<Numbers>("a", 1), 0, "nobody listens yet");
        let mut a1 = bus.subscribe::<Numbers>("a");
        let mut a2 = bus.subscribe::<Numbers>("a");
        let mut b = bus.subscribe::<Numbers>("b");
        let mut words = bus.subscribe::<Words>("a");
        assert_eq!(bus.publish::<Numbers>("a", 2), 2);
        assert_eq!(bus.publish::<Numbers>("b", 3), 1);
        assert_eq!(bus.publish::<Words>("a", "hello".into()), 1);
        assert_eq!(next(&mut a1).await, 2);
        assert_eq!(next(&mut a2).await, 2);
        assert_eq!(next(&mut b).await, 3);
        match words.recv().await {
            Received::Event(word) => assert_eq!(word.as_str(), "hello"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn topics_are_found_by_prefix_per_channel() {
        let bus = EventBus::new();
        let _one = bus.subscribe::<Numbers>("NL*ABC*1");
        let _two = bus.subscribe::<Numbers>("NL*ABC*2");
        let _other = bus.subscribe::<Numbers>("NL*XYZ*1");
        let _word = bus.subscribe::<Words>("NL*ABC*3");
        let mut found = bus.topics_with_prefix::<Numbers>("nl*abc*");
        found.sort();
        assert_eq!(found, vec!["NL*ABC*1".to_owned(), "NL*ABC*2".to_owned()]);
        assert!(bus.topics_with_prefix::<Numbers>("DE*").is_empty());
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_and_then_continues() {
        let bus = EventBus::with_capacity(4);
        let mut slow = bus.subscribe::<Numbers>("a");
        for value in 0..10 {
            bus.publish::<Numbers>("a", value);
        }
        match slow.recv().await {
            Received::Lagged(missed) => assert_eq!(missed, 6),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert_eq!(next(&mut slow).await, 6, "the oldest event still buffered follows");
    }

    #[tokio::test]
    async fn topics_are_forgotten_with_their_last_subscriber() {
        let bus = EventBus::new();
        let first = bus.subscribe::<Numbers>("a");
        let second = bus.subscribe::<Numbers>("a");
        assert!(bus.has_subscribers::<Numbers>("a"));
        assert!(!bus.has_subscribers::<Words>("a"), "another channel, same id");
        drop(first);
        assert_eq!(bus.topic_count(), 1);
        drop(second);
        assert_eq!(bus.topic_count(), 0);
        assert!(!bus.has_subscribers::<Numbers>("a"));
        assert_eq!(bus.publish::<Numbers>("a", 1), 0);
    }
}
