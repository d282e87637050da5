//! `emsp bench api`: the driver API's near-me query under load, over real HTTP on loopback.
//!
//! The server runs in this process with its search index loaded from the generated dataset of
//! `emsp bench search` (real charger coordinates, jittered; default 1,000,000 EVSEs). Clients post
//! a "chargers near me, DC, at least one available, 20 results" query around random real charger
//! positions for a fixed time; with `--price` the same query sorted by PRICE (a 20 kWh reference
//! session priced at every candidate with the dataset's tariffs, which are stored before the
//! server starts so its tariff book loads them). With `--serve` it only serves, for external load
//! tools (`infra/load/near-me.sh` drives it with wrk).
//!
//! CPU time is read from `/proc` (Linux; 100 ticks per second assumed): the whole process, and the
//! HTTP worker threads alone (`actix-server worker N`), per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use emsp_bench::Dataset;
use emsp_store::testing::TestDb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::app::{self, RunOptions};

/// Name prefix of actix-web's worker threads.
const WORKER_THREADS: &str = "actix-server w";
use crate::config::Config;

#[derive(Debug, Clone)]
pub struct ApiBenchOptions {
    pub evses: usize,
    pub duration: Duration,
    pub concurrency: usize,
    pub listen: String,
    pub serve_only: bool,
    /// Sort by PRICE instead of distance.
    pub price_sort: bool,
    pub workers: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct ApiBenchReport {
    pub evses: usize,
    pub locations: usize,
    pub load_s: f64,
    pub concurrency: usize,
    pub requests: usize,
    pub errors: usize,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub query: &'static str,
    /// CPU time of the whole process (server and load client) per request, µs.
    pub process_cpu_us_per_request: Option<f64>,
    /// CPU time of the HTTP worker threads per request, µs.
    pub server_cpu_us_per_request: Option<f64>,
}

impl ApiBenchReport {
    pub fn to_table(&self) -> String {
        format!(
            "index: {} EVSEs in {} locations, loaded in {:.1} s\n\
             {} with {} concurrent clients:\n\
             {} requests, {} errors, {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms\n\
             CPU per request: {} µs process (server + client), {} µs HTTP workers",
            self.evses,
            self.locations,
            self.load_s,
            self.query,
            self.concurrency,
            self.requests,
            self.errors,
            self.requests_per_s,
            self.p50_ms,
            self.p99_ms,
            self.process_cpu_us_per_request.map_or("?".to_owned(), |us| format!("{us:.0}")),
            self.server_cpu_us_per_request.map_or("?".to_owned(), |us| format!("{us:.0}")),
        )
    }
}

const NEAR_ME: &str = "query($lat: Float!, $lon: Float!) { chargers(near: {latitude: $lat, longitude: $lon}, radiusMeters: 10000, filter: {powerType: DC, minAvailable: 1}, first: 20) { totalCount edges { node { id name distanceMeters maxPowerKw availability { available total } } } } }";
const NEAR_ME_PRICE: &str = "query($lat: Float!, $lon: Float!) { chargers(near: {latitude: $lat, longitude: $lon}, radiusMeters: 10000, filter: {powerType: DC, minAvailable: 1}, sort: PRICE, priceBasis: {energyKwh: 20}, first: 20) { totalCount edges { node { id name distanceMeters maxPowerKw estimatedPrice { amount currency } availability { available total } } } } }";

/// CPU ticks (1/100 s) of this process, and of its threads whose name starts with `prefix`.
fn cpu_ticks(prefix: &str) -> Option<(u64, u64)> {
    fn ticks(stat: &str) -> Option<u64> {
        // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }
    let process = ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut threads = 0;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if name.starts_with(prefix) {
            threads += std::fs::read_to_string(entry.path().join("stat")).ok().and_then(|s| ticks(&s)).unwrap_or(0);
        }
    }
    Some((process, threads))
}

pub async fn run(options: &ApiBenchOptions) -> anyhow::Result<Option<ApiBenchReport>> {
    let db = tokio::task::spawn_blocking(TestDb::sqlite).await?;
    if options.price_sort {
        let store = db.store().clone();
        tokio::task::spawn_blocking(move || {
            for tariff in Dataset::new(7, 0).tariffs() {
                store.upsert_tariff(&tariff, None)?;
            }
            Ok::<(), emsp_store::StoreError>(())
        })
        .await??;
    }
    let workers = options.workers.map(|w| w.to_string());
    let mut env: HashMap<String, String> = [
        ("EMSP_LISTEN", options.listen.as_str()),
        ("DATABASE_URL", db.url()),
        ("EMSP_OCPI_PULL_INTERVAL_S", "0"),
        ("EMSP_RATE_LIMIT_PER_MINUTE", "0"),
        ("EMSP_SECRET_KEY", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(workers) = workers {
        env.insert("EMSP_WORKERS".into(), workers);
    }
    let server = app::start(Config::load(None, &env)?, RunOptions { handle_signals: options.serve_only }).await?;
    while !server.index.is_ready() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let (index, evses) = (server.index.clone(), options.evses);
    let points: Vec<(f64, f64)> = tokio::task::spawn_blocking(move || {
        let dataset = Dataset::new(7, evses);
        index.bulk_load(dataset.locations());
        dataset.seed_points().iter().map(|p| (p.latitude, p.longitude)).collect()
    })
    .await?;
    let load_s = started.elapsed().as_secs_f64();
    let stats = server.index.stats();
    let url = format!("{}/graphql", server.public_url);
    if options.serve_only {
        crate::cli::say(&format!(
            "serving {} EVSEs in {} locations at {url} (loaded in {load_s:.1} s); Ctrl-C stops",
            stats.evses, stats.locations
        ));
        return server.wait().await.map(|()| None);
    }

    let client = reqwest::Client::builder().pool_max_idle_per_host(options.concurrency).build()?;
    let points = Arc::new(points);
    let query = if options.price_sort { NEAR_ME_PRICE } else { NEAR_ME };
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..options.concurrency.max(1) {
        let (client, points, stop, url) = (client.clone(), points.clone(), stop.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(worker as u64);
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while !stop.load(Ordering::Relaxed) {
                let (lat, lon) = points[rng.random_range(0..points.len())];
                let body = serde_json::json!({ "query": query, "variables": { "lat": lat + rng.random_range(-0.05..0.05), "lon": lon + rng.random_range(-0.05..0.05) } });
                let sent = Instant::now();
                let ok = match client.post(&url).json(&body).send().await {
                    Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let measuring = Instant::now();
    let cpu_before = cpu_ticks(WORKER_THREADS);
    tokio::time::sleep(options.duration).await;
    let cpu_after = cpu_ticks(WORKER_THREADS);
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (l, e) = worker.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = measuring.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pick = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    let report = ApiBenchReport {
        evses: stats.evses,
        locations: stats.locations,
        load_s,
        concurrency: options.concurrency,
        requests: latencies.len(),
        errors,
        requests_per_s: latencies.len() as f64 / elapsed,
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        query: if options.price_sort {
            "near-me query sorted by PRICE (radius 10 km, DC, >= 1 available, 20 kWh, first 20)"
        } else {
            "near-me query (radius 10 km, DC, >= 1 available, first 20)"
        },
        process_cpu_us_per_request: None,
        server_cpu_us_per_request: None,
    };
    let mut report = report;
    if let (Some(before), Some(after)) = (cpu_before, cpu_after)
        && report.requests > 0
    {
        let per_request = |ticks: u64| ticks as f64 * 10_000.0 / report.requests as f64;
        report.process_cpu_us_per_request = Some(per_request(after.0.saturating_sub(before.0)));
        report.server_cpu_us_per_request = Some(per_request(after.1.saturating_sub(before.1)));
    }
    server.stop().await?;
    drop(db);
    Ok(Some(report))
}
