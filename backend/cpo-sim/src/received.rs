//! What the simulator saw and did, for tests to assert on: a snapshot copied out under the lock,
//! so a test never holds the simulator's state while it keeps running.

use serde_json::Value;

use crate::state::{Inner, Peer};

/// A snapshot of what the EMSP sent and what the simulator pushed back.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Tokens pushed by the EMSP (`PUT`/`PATCH /tokens`), as last stored.
    pub tokens: Vec<Value>,
    /// Commands in the order they arrived.
    pub commands: Vec<ReceivedCommand>,
    /// The registered EMSP, when a credentials exchange has completed.
    pub peer: Option<PeerInfo>,
    /// Current state of every simulated session (2.2.1 or 2.1.1 Session objects).
    pub sessions: Vec<Value>,
    /// CDRs the simulator sent (or tried to send) to the EMSP.
    pub cdrs: Vec<Value>,
    /// Status PATCHes delivered to the EMSP's locations receiver, and failed deliveries.
    pub status_pushes: u64,
    pub push_failures: u64,
}

#[derive(Debug, Clone)]
pub struct ReceivedCommand {
    /// `START_SESSION`, `STOP_SESSION`, ...
    pub command: String,
    pub body: Value,
    /// The `result` of our synchronous `CommandResponse`, or `ERROR` when the command was answered
    /// with an OCPI error (unknown location, missing field).
    pub response: String,
    /// The `OCPI-to-country-code` and `OCPI-to-party-id` routing headers, when sent.
    pub to: Option<(String, String)>,
}

/// The EMSP as the credentials exchange left it.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub versions_url: String,
    pub country_code: Option<String>,
    pub party_id: Option<String>,
    /// The token the EMSP uses with us (token C).
    pub token_ours: String,
    /// The token we use with the EMSP (token B).
    pub token_theirs: String,
    /// `(identifier, role, url)` of each endpoint the EMSP offered.
    pub endpoints: Vec<(String, Option<String>, String)>,
}

impl From<&Peer> for PeerInfo {
    fn from(peer: &Peer) -> Self {
        PeerInfo {
            versions_url: peer.versions_url.clone(),
            country_code: peer.country_code.clone(),
            party_id: peer.party_id.clone(),
            token_ours: peer.token_ours.clone(),
            token_theirs: peer.token_theirs.clone(),
            endpoints: peer.endpoints.iter().map(|e| (e.identifier.clone(), e.role.clone(), e.url.clone())).collect(),
        }
    }
}

impl Received {
    pub(crate) fn snapshot(inner: &Inner, session_json: impl Fn(&crate::charging::ChargingSession) -> Value) -> Self {
        Received {
            tokens: inner.tokens.values().cloned().collect(),
            commands: inner.commands.clone(),
            peer: inner.peer.as_ref().map(PeerInfo::from),
            sessions: inner.sessions.values().map(session_json).collect(),
            cdrs: inner.cdrs.clone(),
            status_pushes: inner.status_pushes,
            push_failures: inner.push_failures,
        }
    }
}
