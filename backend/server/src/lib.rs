//! The `emsp` server: configuration, command line, HTTP wiring, health and metrics, background jobs.

pub mod adhoc;
mod api;
pub mod app;
mod bench_api;
mod bench_authorize;
mod bench_invoices;
mod bench_roaming;
pub mod cli;
pub mod config;
mod demo;
pub mod error;
mod health;
mod index_sync;
mod invoice_downloads;
pub mod invoicing;
mod live;
pub mod metrics;
pub mod payments;
mod router;
pub mod telemetry;
mod ws;

pub use app::{RunOptions, RunningServer, start};
pub use config::Config;
