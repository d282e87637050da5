//! The channels of the product. Add one per kind of live update (the charging-session channel
//! goes here too); publishers and subscribers share these types.

use emsp_domain::EvseStatus;

use crate::bus::Channel;

/// The EVSE statuses of one charger; topic id: the location key `CC*PID*ID` in upper case.
/// Published by the change-feed follower after it applied a status change or a new version of
/// the location; carries the whole state, so a subscriber that lagged loses nothing that matters.
pub struct ChargerStatus;

#[derive(Debug, Clone, PartialEq)]
pub struct ChargerStatusEvent {
    pub charger_id: String,
    /// Uid and live status of every EVSE that is not REMOVED, in the location's order; empty when
    /// the location is gone.
    pub evses: Vec<(String, EvseStatus)>,
}

impl Channel for ChargerStatus {
    const NAME: &'static str = "charger.status";
    type Event = ChargerStatusEvent;
}

/// A driver's charging session changed; topic id: the session's id. Published by the change-feed
/// follower for every `charging.updated` change. Subscribers re-read the session (which also
/// checks that it is theirs), so a lag loses nothing.
pub struct ChargingSession;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargingSessionChanged {
    pub id: String,
    pub user_id: String,
}

impl Channel for ChargingSession {
    const NAME: &'static str = "charging.session";
    type Event = ChargingSessionChanged;
}
