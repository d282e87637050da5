//! OCPI at the edge of the EMSP: wire types per protocol version, their mapping to and from the
//! domain model, and tolerant parsing of the location, tariff and CDR feeds real CPOs publish.
//!
//! Callers work with [`emsp_domain`] objects: [`feed`] turns a partner's file or page into them, and
//! each version module has `to_domain` / `from_domain` for single objects. The wire types are public
//! only so that our own OCPI endpoints and the CPO simulator can write them; they stop at the HTTP
//! layer. OCPI 2.2 and 2.3.0 objects are read with the 2.2.1 types (their additions are ignored).

pub mod commands;
pub mod envelope;
pub mod feed;
mod lenient;
pub mod mapping;
pub mod v2_1_1;
pub mod v2_2_1;
pub mod version;

pub use envelope::{Envelope, StatusCode};
pub use feed::{
    Feed, FeedError, FeedKind, ImportOptions, Skipped, Warning, detect_kind, locations_of_document, parse_cdrs,
    parse_locations, parse_tariffs, tariffs_of_document,
};
pub use mapping::{MapError, Notes};
pub use version::{OcpiVersion, UnknownVersion};
