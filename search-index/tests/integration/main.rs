//! One integration-test binary for the search engine: behaviour, properties against a brute-force
//! model, and the real OCPI feeds in `../shared/data`.

// Test helpers outside `#[test]` functions panic on bad fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod behaviour;
mod clusters;
mod common;
mod concurrency;
mod ocpi_feeds;
mod properties;
mod status_replay;
