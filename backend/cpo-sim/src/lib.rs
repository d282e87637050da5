//! A CPO simulator that speaks OCPI 2.2.1 (and 2.1.1) over real HTTP: the counterparty EMSPs test
//! their integrations against, and the partner of our own end-to-end tests and demos.
//!
//! It depends on no OCPI crate of ours on purpose: its JSON follows the specification, so it checks
//! our EMSP side against the contract rather than against our own reading of it.

mod charging;
mod client;
mod credentials;
mod envelope;
mod error;
mod faults;
mod files;
mod generator;
mod locations;
mod options;
mod paging;
mod received;
mod replay;
mod routes;
mod sim;
mod state;
mod status;
mod swipe;
mod tokens;
mod transport;
mod v211;

pub use error::{ClientError, DataError, SimError};
pub use faults::{CommandOutcome, Faults, FaultsConfig, LinkFault};
pub use options::{ChargingOptions, SimData, SimOptions, SimVersion, StatusSource};
pub use received::{PeerInfo, Received, ReceivedCommand};
pub use replay::{REPLAY_SAMPLE, ReplayEvent, parse_replay};
pub use sim::{RunningSim, start};
pub use swipe::SwipeOutcome;
