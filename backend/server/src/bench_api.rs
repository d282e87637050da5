//! `emsp bench api`: the driver API's near-me query under load, over real HTTP on loopback.
//!
//! The server runs in this process with its search index loaded from the generated dataset of
//! `emsp bench search` (real charger coordinates, jittered; default 1,000,000 EVSEs). Clients post
//! a "chargers near me, DC, at least one available, 20 results" query around random real charger
//! positions for a fixed time. With `--serve` it only serves, for external load tools
//! (`infra/load/near-me.sh` drives it with wrk).

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
use crate::config::Config;

#[derive(Debug, Clone)]
pub struct ApiBenchOptions {
    pub evses: usize,
    pub duration: Duration,
    pub concurrency: usize,
    pub listen: String,
    pub serve_only: bool,
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
}

impl ApiBenchReport {
    pub fn to_table(&self) -> String {
        format!(
            "index: {} EVSEs in {} locations, loaded in {:.1} s\n\
             near-me query (radius 10 km, DC, >= 1 available, first 20) with {} concurrent clients:\n\
             {} requests, {} errors, {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
            self.evses,
            self.locations,
            self.load_s,
            self.concurrency,
            self.requests,
            self.errors,
            self.requests_per_s,
            self.p50_ms,
            self.p99_ms
        )
    }
}

const NEAR_ME: &str = "query($lat: Float!, $lon: Float!) { chargers(near: {latitude: $lat, longitude: $lon}, radiusMeters: 10000, filter: {powerType: DC, minAvailable: 1}, first: 20) { totalCount edges { node { id name distanceMeters maxPowerKw availability { available total } } } } }";

pub async fn run(options: &ApiBenchOptions) -> anyhow::Result<Option<ApiBenchReport>> {
    let db = tokio::task::spawn_blocking(TestDb::sqlite).await?;
    let env: HashMap<String, String> = [
        ("EMSP_LISTEN", options.listen.as_str()),
        ("DATABASE_URL", db.url()),
        ("EMSP_OCPI_PULL_INTERVAL_S", "0"),
        ("EMSP_RATE_LIMIT_PER_MINUTE", "0"),
        ("EMSP_SECRET_KEY", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
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
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..options.concurrency.max(1) {
        let (client, points, stop, url) = (client.clone(), points.clone(), stop.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(worker as u64);
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while !stop.load(Ordering::Relaxed) {
                let (lat, lon) = points[rng.random_range(0..points.len())];
                let body = serde_json::json!({ "query": NEAR_ME, "variables": { "lat": lat + rng.random_range(-0.05..0.05), "lon": lon + rng.random_range(-0.05..0.05) } });
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
    tokio::time::sleep(options.duration).await;
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
    };
    server.stop().await?;
    drop(db);
    Ok(Some(report))
}
