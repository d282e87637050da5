//! Runs the benchmark: load, memory, status updates under query load, each query kind, PostGIS.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use emsp_domain::{ConnectorStandard, EvseStatus, GeoPoint};
use emsp_search_index::{Area, ClusterQuery, Current, Filters, Route, SearchIndex, SearchQuery, SortBy, Viewer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dataset::{Dataset, evse_uid, location_key};
use crate::postgis;
use crate::report::{QueryFigures, SearchBenchReport};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchBenchOptions {
    /// EVSEs to generate (default 1,000,000).
    pub evses: usize,
    /// Seed of the dataset and of the queries.
    pub seed: u64,
    /// `postgres://...` of a PostgreSQL with PostGIS to compare against.
    pub postgis_url: Option<String>,
    /// Queries timed per kind.
    pub queries_per_kind: usize,
}

impl Default for SearchBenchOptions {
    fn default() -> Self {
        Self { evses: 1_000_000, seed: 42, postgis_url: None, queries_per_kind: 2_000 }
    }
}

/// One prepared query.
pub(crate) enum Probe {
    Search(SearchQuery),
    Clusters(ClusterQuery),
}

const EARTH_RADIUS_KM: f64 = 6_371.008_8;

/// The point `distance_km` from `start` along `bearing` (radians), on a great circle.
fn destination(start: &GeoPoint, bearing: f64, distance_km: f64) -> GeoPoint {
    let (lat1, lon1) = (start.latitude.to_radians(), start.longitude.to_radians());
    let angle = distance_km / EARTH_RADIUS_KM;
    let lat2 = (lat1.sin() * angle.cos() + lat1.cos() * angle.sin() * bearing.cos()).asin();
    let lon2 = lon1 + (bearing.sin() * angle.sin() * lat1.cos()).atan2(angle.cos() - lat1.sin() * lat2.sin());
    let longitude = (lon2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    GeoPoint { latitude: lat2.to_degrees(), longitude }
}

/// A position near a real charger, where users search.
fn near_charger(dataset: &Dataset, rng: &mut StdRng) -> GeoPoint {
    let seed = dataset.pick_european(rng);
    destination(
        &GeoPoint { latitude: seed.latitude, longitude: seed.longitude },
        rng.random::<f64>() * std::f64::consts::TAU,
        rng.random::<f64>() * 3.0,
    )
}

const TEXT_WORDS: &[&str] =
    &["fastned", "allego", "ionity", "vattenfal", "station", "parking", "hotel", "bahnhof", "supermarkt", "garage"];

pub(crate) const KINDS: &[&str] = &[
    "radius_5km_2_filters",
    "knn_10_filters",
    "text_10km",
    "clusters_europe_z5",
    "clusters_city_z12",
    "corridor_500km_2km",
    "bbox",
];

fn probe(kind: &str, dataset: &Dataset, rng: &mut StdRng) -> Probe {
    let center = near_charger(dataset, rng);
    match kind {
        "radius_5km_2_filters" => Probe::Search(SearchQuery {
            area: Some(Area::Radius { center, radius_m: 5_000.0 }),
            filters: Filters {
                connector_standards: vec![ConnectorStandard::Iec62196T2, ConnectorStandard::Iec62196T2Combo],
                min_available: Some(1),
                ..Filters::default()
            },
            page_size: 20,
            ..SearchQuery::default()
        }),
        "knn_10_filters" => Probe::Search(SearchQuery {
            area: Some(Area::Nearest { center, k: 10 }),
            filters: Filters { current: Some(Current::Dc), min_available: Some(1), ..Filters::default() },
            page_size: 10,
            ..SearchQuery::default()
        }),
        "text_10km" => Probe::Search(SearchQuery {
            area: Some(Area::Radius { center, radius_m: 10_000.0 }),
            text: Some(TEXT_WORDS[rng.random_range(0..TEXT_WORDS.len())].to_owned()),
            sort: SortBy::Relevance,
            page_size: 20,
            ..SearchQuery::default()
        }),
        "clusters_europe_z5" => Probe::Clusters(ClusterQuery {
            south: 35.0,
            west: -11.0,
            north: 71.0,
            east: 40.0,
            zoom: 5,
            filters: None,
            viewer: Viewer::default(),
        }),
        "clusters_city_z12" => Probe::Clusters(ClusterQuery {
            south: center.latitude - 0.06,
            west: center.longitude - 0.1,
            north: center.latitude + 0.06,
            east: center.longitude + 0.1,
            zoom: 12,
            filters: None,
            viewer: Viewer::default(),
        }),
        "corridor_500km_2km" => {
            let bearing = rng.random::<f64>() * std::f64::consts::TAU;
            // A route polyline with a point every 5 km, as a router would return.
            let route: Vec<GeoPoint> = (0..=100).map(|i| destination(&center, bearing, f64::from(i) * 5.0)).collect();
            Probe::Search(SearchQuery {
                area: Some(Area::Corridor { route: Route::Points(route), max_distance_m: 2_000.0 }),
                sort: SortBy::RoutePosition,
                page_size: 20,
                ..SearchQuery::default()
            })
        }
        _ => {
            let south_west = destination(&center, 225f64.to_radians(), 10.0);
            let north_east = destination(&center, 45f64.to_radians(), 10.0);
            Probe::Search(SearchQuery {
                area: Some(Area::BoundingBox {
                    south: south_west.latitude,
                    west: south_west.longitude,
                    north: north_east.latitude,
                    east: north_east.longitude,
                }),
                sort: SortBy::MaxPower,
                page_size: 20,
                ..SearchQuery::default()
            })
        }
    }
}

fn run_probe(index: &SearchIndex, probe: &Probe) -> anyhow::Result<usize> {
    Ok(match probe {
        Probe::Search(query) => index.search(query, None)?.hits.len(),
        Probe::Clusters(query) => index.clusters(query)?.len(),
    })
}

/// Median, 99th percentile (µs) and queries per second of timed runs.
pub(crate) fn figures(name: &str, mut durations: Vec<Duration>) -> QueryFigures {
    durations.sort_unstable();
    let total: Duration = durations.iter().sum();
    let at = |q: f64| {
        let index = ((durations.len() as f64 - 1.0) * q).round() as usize;
        durations.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    QueryFigures {
        name: name.to_owned(),
        p50_us: at(0.5),
        p99_us: at(0.99),
        qps: durations.len() as f64 / total.as_secs_f64().max(1e-9),
        postgis_p50_us: None,
        ratio: None,
    }
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Applies status updates on this thread while another thread queries; returns updates per second
/// and the figures of batches of 1,000 (per update).
fn status_updates(
    index: &SearchIndex,
    dataset: &Dataset,
    locations: usize,
    seed: u64,
) -> anyhow::Result<(f64, QueryFigures)> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5747);
    let updates: Vec<(String, String, EvseStatus)> = (0..200_000)
        .map(|_| {
            let n = rng.random_range(0..locations.max(1));
            let status = if rng.random_bool(0.5) { EvseStatus::Available } else { EvseStatus::Charging };
            (location_key(n), evse_uid(n, 0), status)
        })
        .collect();
    let probes: Vec<Probe> = (0..256).map(|_| probe("radius_5km_2_filters", dataset, &mut rng)).collect();
    let stop = AtomicBool::new(false);
    let queries = AtomicU64::new(0);
    let mut applied = 0u64;
    let mut elapsed = Duration::ZERO;
    const BATCH: usize = 1_000;
    let mut batches = Vec::new();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let reader = scope.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                if run_probe(index, &probes[i % probes.len()]).is_ok() {
                    queries.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        });
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            for batch in updates.chunks(BATCH) {
                let batch_start = Instant::now();
                for (key, uid, status) in batch {
                    index.set_evse_status(key, uid, status).context("status update")?;
                }
                batches.push(batch_start.elapsed() / batch.len() as u32);
                applied += batch.len() as u64;
            }
        }
        elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        reader.join().map_err(|_| anyhow::anyhow!("the query thread panicked"))?;
        Ok(())
    })?;
    let per_second = applied as f64 / elapsed.as_secs_f64().max(1e-9);
    let mut per_update = figures("status_update", batches);
    per_update.qps = per_second;
    Ok((per_second, per_update))
}

/// Builds the dataset, measures the engine, and PostGIS when `postgis_url` is set.
pub fn run_search_bench(opts: &SearchBenchOptions) -> anyhow::Result<SearchBenchReport> {
    anyhow::ensure!(opts.evses > 0, "evses must be more than 0");
    anyhow::ensure!(opts.queries_per_kind > 0, "queries per kind must be more than 0");
    let dataset = Dataset::new(opts.seed, opts.evses);

    // Generating the domain objects is not the index's work: time it alone and subtract it.
    let generate_start = Instant::now();
    let generated = dataset.locations().count();
    let generate_s = generate_start.elapsed().as_secs_f64();

    let index = SearchIndex::new(&opts.seed.to_be_bytes());
    let before = resident_bytes();
    let load_start = Instant::now();
    let report = index.bulk_load(dataset.locations());
    let bulk_load_s = (load_start.elapsed().as_secs_f64() - generate_s).max(0.0);
    let after = resident_bytes();
    anyhow::ensure!(report.rejected.is_empty(), "the generator produced {} invalid locations", report.rejected.len());
    anyhow::ensure!(report.locations == generated, "{} of {generated} locations indexed", report.locations);
    let bytes_per_evse = match (before, after) {
        (Some(before), Some(after)) => after.saturating_sub(before) as f64 / report.evses as f64,
        _ => f64::NAN,
    };

    let (status_updates_per_s, status_figures) = status_updates(&index, &dataset, report.locations, opts.seed)?;

    let mut queries = Vec::new();
    let mut all_probes = Vec::new();
    for (offset, kind) in KINDS.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_add(offset as u64 + 1));
        let probes: Vec<Probe> = (0..opts.queries_per_kind).map(|_| probe(kind, &dataset, &mut rng)).collect();
        for probe in probes.iter().take(20) {
            run_probe(&index, probe).with_context(|| format!("warm-up of {kind}"))?;
        }
        let mut durations = Vec::with_capacity(probes.len());
        for probe in &probes {
            let start = Instant::now();
            let hits = run_probe(&index, probe).with_context(|| format!("query {kind}"))?;
            durations.push(start.elapsed());
            std::hint::black_box(hits);
        }
        queries.push(figures(kind, durations));
        all_probes.push((kind.to_string(), probes));
    }

    queries.push(status_figures);

    if let Some(url) = &opts.postgis_url {
        let timings = postgis::compare(url, &dataset, &all_probes, opts.queries_per_kind.min(500))?;
        for (name, p50) in timings {
            if let Some(figures) = queries.iter_mut().find(|q| q.name == name) {
                figures.postgis_p50_us = Some(p50);
                figures.ratio = Some(p50 / figures.p50_us.max(1e-9));
            }
        }
    }

    Ok(SearchBenchReport { evses: report.evses, bulk_load_s, bytes_per_evse, status_updates_per_s, queries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_run_reports_every_kind() {
        let report =
            run_search_bench(&SearchBenchOptions { evses: 5_000, seed: 1, postgis_url: None, queries_per_kind: 30 })
                .unwrap();
        assert!(report.evses >= 5_000);
        let names: Vec<&str> = report.queries.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names[..KINDS.len()], *KINDS);
        assert_eq!(names.last(), Some(&"status_update"));
        assert!(report.status_updates_per_s > 0.0);
        assert!(report.queries.iter().all(|q| q.p50_us > 0.0 && q.p99_us >= q.p50_us && q.postgis_p50_us.is_none()));
    }

    #[test]
    fn destination_goes_the_right_distance() {
        let start = GeoPoint { latitude: 52.0, longitude: 5.0 };
        let end = destination(&start, 1.0, 500.0);
        assert!((start.distance_m(&end) / 1000.0 - 500.0).abs() < 0.5);
    }
}
