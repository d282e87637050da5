//! The in-process event bus: publishers (the change-feed follower, the session receivers) tell
//! subscribers (GraphQL subscriptions over WebSocket) what changed, by topic.

mod bus;
mod channels;

pub use bus::{Channel, EventBus, Received, Subscription};
pub use channels::{ChargerStatus, ChargerStatusEvent, ChargingSession, ChargingSessionChanged};
