//! Benchmarks of the charge point search engine at Europe scale, optionally against PostGIS:
//! `run_search_bench` is what `emsp bench search` calls.

mod dataset;
mod postgis;
mod report;
mod runner;

pub use dataset::{Dataset, SeedPoint};
pub use report::{QueryFigures, SearchBenchReport};
pub use runner::{SearchBenchOptions, run_search_bench};
