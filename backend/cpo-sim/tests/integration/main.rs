#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One integration-test binary: the simulator over real HTTP on loopback, with reqwest or a tiny
//! actix EMSP (`emsp.rs`) on the other side.

mod charging;
mod contract;
mod credentials;
mod emsp;
mod faults;
mod helpers;
mod locations;
mod real_feeds;
mod status;
mod tokens;
mod v211;
