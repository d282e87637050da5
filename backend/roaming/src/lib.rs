//! The EMSP side of OCPI: how partners reach us (transport, versions, credentials, receivers) and
//! how we reach them (the client, registration, pulls). Wire types come from `emsp-ocpi`; what
//! leaves this crate is domain objects and store records.

pub mod authorizations;
pub mod batcher;
pub mod charging;
mod client;
mod config;
pub mod credentials;
mod error;
mod headers;
pub mod hubclientinfo;
pub mod pull;
pub mod receivers;
pub mod sessions;
pub mod status_pushes;
pub mod token_lookups;
pub mod tokens;
mod transport;
pub mod versions;

pub use client::{OcpiClient, TokenEncoding};
pub use config::RoamingConfig;
pub use credentials::{RegisterOutcome, invite_partner, register_with_partner};
pub use error::{OcpiError, RoamingError, json_config};
pub use headers::{not_found, ocpi_headers};
pub use transport::{OcpiRequest, Roaming};
