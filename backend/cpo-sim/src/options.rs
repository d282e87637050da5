//! What a simulator run is made of. The field names are the contract with the `emsp` CLI and the
//! end-to-end tests, so they stay stable; everything has a default that gives a working demo.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The OCPI version the simulator speaks (one per run, as a real CPO deployment would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimVersion {
    #[default]
    V2_2_1,
    V2_1_1,
}

impl SimVersion {
    /// The version string of the versions endpoint and of the URL path.
    pub fn as_str(self) -> &'static str {
        match self {
            SimVersion::V2_2_1 => "2.2.1",
            SimVersion::V2_1_1 => "2.1.1",
        }
    }
}

/// Where locations and tariffs come from.
#[derive(Debug, Clone)]
pub enum SimData {
    /// A seeded generator around real charger coordinates (`backend/bench/data/seed-points.csv`).
    Generated { locations: usize },
    /// OCPI Location and Tariff JSON files: an envelope `{data: [...]}`, a bare array or one object;
    /// a UTF-8 BOM is tolerated. Served as given except `country_code`/`party_id`, which become ours.
    Files(Vec<PathBuf>),
}

/// What drives the status pushes.
#[derive(Debug, Clone)]
pub enum StatusSource {
    /// Plausible random transitions (AVAILABLE <-> CHARGING, now and then OUTOFORDER).
    Random,
    /// Real status changes from a `id;status;parkingsensor_status;timestamp` CSV file.
    Replay(PathBuf),
    /// The sample of real status changes shipped with the crate (`data/status-sample.csv`).
    ReplaySample,
}

/// How simulated charging sessions behave.
#[derive(Debug, Clone)]
pub struct ChargingOptions {
    /// Time between two Session PATCHes of a running session.
    pub tick: Duration,
    /// A session that nobody stops is finished (CDR sent) after this long.
    pub max_duration: Duration,
    /// Energy speed-up: kWh per real hour = power × `time_scale`, so a demo shows kWh growing
    /// quickly (1.0 = real power). Timestamps and durations stay real, never in the future.
    pub time_scale: f64,
    /// Delay between a command's synchronous answer and its asynchronous `CommandResult`.
    pub command_delay: Duration,
    /// The `timeout` (seconds) announced in `CommandResponse`.
    pub command_timeout_s: u32,
}

impl Default for ChargingOptions {
    fn default() -> Self {
        ChargingOptions {
            tick: Duration::from_secs(10),
            max_duration: Duration::from_secs(2 * 3600),
            time_scale: 1.0,
            command_delay: Duration::from_millis(500),
            command_timeout_s: 30,
        }
    }
}

/// Everything a run needs. `SimOptions::default()` listens on a free loopback port and generates
/// 100 locations for party NL/SIM.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub listen: SocketAddr,
    /// Base URL peers reach us at; `http://` + the bound address when `None`.
    pub public_url: Option<String>,
    /// Our `(country_code, party_id)`, e.g. `("NL", "SIM")`.
    pub party: (String, String),
    pub version: SimVersion,
    /// The credentials token A we hand to the EMSP out of band; a random one when `None`.
    pub token_a: Option<String>,
    pub data: SimData,
    /// EVSE status pushes per second to the registered EMSP; 0 turns them off.
    pub status_rate_per_s: f64,
    pub status_source: StatusSource,
    /// Largest page served (`X-Limit`); a client's larger `limit` is capped to it.
    pub page_limit: usize,
    /// Seed of the generator and of random status changes: same seed, same data.
    pub seed: u64,
    pub charging: ChargingOptions,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            public_url: None,
            party: ("NL".to_owned(), "SIM".to_owned()),
            version: SimVersion::default(),
            token_a: None,
            data: SimData::Generated { locations: 100 },
            status_rate_per_s: 0.0,
            status_source: StatusSource::Random,
            page_limit: 50,
            seed: 1,
            charging: ChargingOptions::default(),
        }
    }
}
