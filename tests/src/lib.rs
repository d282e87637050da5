//! The end-to-end test harness: a [`TestApp`] runs the real server on a free loopback port against
//! a throw-away database, and [`TcpProxy`] stands between it and PostgreSQL so a test can cut the
//! database off and bring it back.

mod app;
mod proxy;

pub use app::{TestApp, TestBackend};
pub use proxy::TcpProxy;
