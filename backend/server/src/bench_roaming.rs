//! `emsp bench roaming`: the OCPI intake end to end, in one process, over real HTTP on loopback.
//!
//! 1. A full pull of N generated locations from the CPO simulator: HTTP, parsing, mapping, store,
//!    change feed and search index (the clock stops when search holds every location).
//! 2. EVSE status PATCHes pushed to our receiver by C concurrent clients with the CPO's token:
//!    throughput, latency of the HTTP answer, and how long after that answer search shows the new
//!    status.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use emsp_domain::EvseStatus;
use emsp_roaming::pull::{PullOptions, pull_partner};
use emsp_store::testing::TestDb;
use serde::Serialize;

use crate::app::{self, RunOptions};
use crate::config::Config;

/// What to measure.
#[derive(Debug, Clone)]
pub struct RoamingBenchOptions {
    pub locations: usize,
    /// `postgres://...` to run on PostgreSQL (in a schema of its own, dropped afterwards);
    /// a temporary SQLite file otherwise.
    pub database_url: Option<String>,
    pub pushes: usize,
    pub concurrency: usize,
    pub page_limit: usize,
}

/// The figures.
#[derive(Debug, Serialize)]
pub struct RoamingBenchReport {
    pub database: &'static str,
    pub locations: usize,
    pub evses: usize,
    pub page_limit: usize,
    pub pull_s: f64,
    pub pull_locations_per_s: f64,
    pub pushes: usize,
    pub push_concurrency: usize,
    pub pushes_per_s: f64,
    pub push_p50_ms: f64,
    pub push_p99_ms: f64,
    pub visible_p50_ms: f64,
    pub visible_p99_ms: f64,
    pub visible_max_ms: f64,
    pub push_errors: usize,
}

impl RoamingBenchReport {
    pub fn to_table(&self) -> String {
        format!(
            "database: {}\n\
             full pull: {} locations ({} EVSEs, pages of {}) in {:.2} s = {:.0} locations/s (HTTP, parsing, store, search)\n\
             status PATCH pushes: {} with {} concurrent clients: {:.0}/s, answer p50 {:.2} ms, p99 {:.2} ms, {} errors\n\
             visible in search after the answer: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.database,
            self.locations,
            self.evses,
            self.page_limit,
            self.pull_s,
            self.pull_locations_per_s,
            self.pushes,
            self.push_concurrency,
            self.pushes_per_s,
            self.push_p50_ms,
            self.push_p99_ms,
            self.push_errors,
            self.visible_p50_ms,
            self.visible_p99_ms,
            self.visible_max_ms
        )
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub async fn run(options: &RoamingBenchOptions) -> anyhow::Result<RoamingBenchReport> {
    let db = match &options.database_url {
        Some(url) => {
            let url = url.clone();
            tokio::task::spawn_blocking(move || TestDb::postgres_at(&url)).await?
        }
        None => tokio::task::spawn_blocking(TestDb::sqlite).await?,
    };
    let database = if db.url().starts_with("postgres") { "postgres" } else { "sqlite" };
    let env: HashMap<String, String> = [
        ("EMSP_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", db.url()),
        ("EMSP_OCPI_PULL_INTERVAL_S", "0"),
        ("EMSP_SECRET_KEY", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="),
        ("EMSP_DB_POOL_SIZE", "16"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::load(None, &env)?;
    let server = app::start(config, RunOptions { handle_signals: false }).await?;
    let sim = emsp_cpo_sim::start(emsp_cpo_sim::SimOptions {
        data: emsp_cpo_sim::SimData::Generated { locations: options.locations },
        page_limit: options.page_limit,
        seed: 11,
        ..emsp_cpo_sim::SimOptions::default()
    })
    .await?;
    let outcome =
        emsp_roaming::register_with_partner(&server.roaming, "bench CPO", &sim.versions_url, &sim.token_a).await?;

    let started = Instant::now();
    let report =
        pull_partner(&server.roaming, &outcome.partner_id, &PullOptions { full: true, ..Default::default() }, &|_| {})
            .await?;
    let pulled = report.locations.as_ref().map_or(0, |l| l.created + l.updated + l.unchanged);
    while server.index.stats().locations < pulled {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(3600), "search did not catch up");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let pull_s = started.elapsed().as_secs_f64();
    let evses = server.index.stats().evses;

    let token = sim.received().peer.context("the simulator holds no credentials")?.token_theirs;
    let targets = Arc::new(sim.evses());
    anyhow::ensure!(!targets.is_empty(), "the simulator serves no EVSE");
    let authorization = format!("Token {}", base64::engine::general_purpose::STANDARD.encode(&token));
    let client = reqwest::Client::builder().pool_max_idle_per_host(options.concurrency).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..options.concurrency.max(1) {
        let (client, next, targets, authorization, index) =
            (client.clone(), next.clone(), targets.clone(), authorization.clone(), server.index.clone());
        let base = format!("{}/ocpi/2.2.1/locations/NL/SIM", server.public_url);
        let total = options.pushes;
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut visible, mut errors) = (Vec::new(), Vec::new(), 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return (latencies, visible, errors);
                }
                let (location_id, uid) = &targets[i % targets.len()];
                let key = format!("NL*SIM*{}", location_id.to_ascii_uppercase());
                let target = match index.evse_status(&key, uid) {
                    Some(EvseStatus::Available) => EvseStatus::Charging,
                    _ => EvseStatus::Available,
                };
                let body =
                    serde_json::json!({ "status": target.as_str(), "last_updated": chrono::Utc::now().to_rfc3339() });
                let sent = Instant::now();
                let answer = client
                    .patch(format!("{base}/{location_id}/{uid}"))
                    .header("Authorization", &authorization)
                    .json(&body)
                    .send()
                    .await;
                let answered = Instant::now();
                match answer {
                    Ok(response) if response.status().is_success() => {}
                    _ => {
                        errors += 1;
                        continue;
                    }
                }
                latencies.push((answered - sent).as_secs_f64() * 1000.0);
                while index.evse_status(&key, uid).as_ref() != Some(&target) {
                    if answered.elapsed() > Duration::from_secs(5) {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                visible.push(answered.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let (mut latencies, mut visible, mut push_errors) = (Vec::new(), Vec::new(), 0);
    for worker in workers {
        let (l, v, e) = worker.await?;
        latencies.extend(l);
        visible.extend(v);
        push_errors += e;
    }
    let push_s = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    visible.sort_by(f64::total_cmp);
    sim.stop().await;
    server.stop().await?;
    drop(db);
    Ok(RoamingBenchReport {
        database,
        locations: pulled,
        evses,
        page_limit: options.page_limit,
        pull_s,
        pull_locations_per_s: pulled as f64 / pull_s,
        pushes: options.pushes,
        push_concurrency: options.concurrency,
        pushes_per_s: latencies.len() as f64 / push_s,
        push_p50_ms: percentile(&latencies, 0.5),
        push_p99_ms: percentile(&latencies, 0.99),
        visible_p50_ms: percentile(&visible, 0.5),
        visible_p99_ms: percentile(&visible, 0.99),
        visible_max_ms: visible.last().copied().unwrap_or(0.0),
        push_errors,
    })
}
