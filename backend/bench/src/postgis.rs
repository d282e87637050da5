//! The same data and queries on PostGIS, for comparison.
//!
//! Everything happens in a fresh schema that is dropped at the end, whether the run succeeds or
//! not, so pointing the benchmark at a shared database leaves nothing behind.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use emsp_search_index::{Area, Current};
use postgres::{Client, NoTls};

use crate::dataset::Dataset;
use crate::runner::{Probe, figures};

/// Median latency (µs) per query kind that PostGIS can answer alike.
pub(crate) fn compare(
    url: &str,
    dataset: &Dataset,
    probes: &[(String, Vec<Probe>)],
    per_kind: usize,
) -> anyhow::Result<Vec<(String, f64)>> {
    let mut client =
        Client::connect(url, NoTls).with_context(|| "cannot connect to PostgreSQL for the PostGIS comparison")?;
    let schema = format!("emsp_bench_{}_{}", std::process::id(), chrono::Utc::now().timestamp_millis());
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .context("cannot create a scratch schema for the PostGIS comparison")?;
    let result = run(&mut client, &schema, dataset, probes, per_kind);
    let dropped = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
    let timings = result?;
    dropped.context("cannot drop the scratch schema")?;
    Ok(timings)
}

fn run(
    client: &mut Client,
    schema: &str,
    dataset: &Dataset,
    probes: &[(String, Vec<Probe>)],
    per_kind: usize,
) -> anyhow::Result<Vec<(String, f64)>> {
    client.batch_execute("CREATE EXTENSION IF NOT EXISTS postgis").context(
        "the PostGIS extension is not available on this server (install postgresql-<version>-postgis-3, \
         or give a database where CREATE EXTENSION postgis is allowed)",
    )?;
    client.batch_execute(&format!(
        "CREATE TABLE {schema}.chargers (key text PRIMARY KEY, geog geography(Point, 4326) NOT NULL, \
         max_kw real NOT NULL, available int NOT NULL, dc boolean NOT NULL, standards text NOT NULL)"
    ))?;
    let mut writer = client.copy_in(&format!("COPY {schema}.chargers FROM STDIN WITH (FORMAT csv)"))?;
    for location in dataset.locations() {
        let available = location.evses.iter().filter(|e| e.status == emsp_domain::EvseStatus::Available).count();
        let dc = location.evses.iter().any(|e| e.connectors.iter().any(|c| c.power_type.is_dc()));
        let standards: Vec<&str> =
            location.evses.iter().flat_map(|e| e.connectors.iter().map(|c| c.standard.as_str())).collect();
        writeln!(
            writer,
            "{},SRID=4326;POINT({} {}),{},{},{},{}",
            location.key(),
            location.coordinates.longitude,
            location.coordinates.latitude,
            location.max_power_kw(),
            available,
            dc,
            standards.join(" ")
        )?;
    }
    writer.finish().context("COPY of the benchmark data failed")?;
    client.batch_execute(&format!("CREATE INDEX ON {schema}.chargers USING gist (geog); ANALYZE {schema}.chargers"))?;

    let radius = client.prepare(&format!(
        "SELECT key, ST_Distance(geog, p) AS d FROM {schema}.chargers, \
         (SELECT ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography AS p) q \
         WHERE ST_DWithin(geog, p, $3) AND available >= 1 \
         AND (standards LIKE '%IEC_62196_T2%') ORDER BY d, key LIMIT 20"
    ))?;
    let nearest = client.prepare(&format!(
        "SELECT key FROM {schema}.chargers WHERE dc AND available >= 1 \
         ORDER BY geog <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography LIMIT 10"
    ))?;
    let bbox = client.prepare(&format!(
        "SELECT key FROM {schema}.chargers WHERE geog && ST_MakeEnvelope($1, $2, $3, $4, 4326)::geography \
         ORDER BY max_kw DESC, key LIMIT 20"
    ))?;

    let mut out = Vec::new();
    for (name, kind_probes) in probes {
        let mut durations: Vec<Duration> = Vec::new();
        for probe in kind_probes.iter().take(per_kind) {
            let Probe::Search(query) = probe else { continue };
            let start = Instant::now();
            match (name.as_str(), &query.area) {
                ("radius_5km_2_filters", Some(Area::Radius { center, radius_m })) => {
                    client.query(&radius, &[&center.longitude, &center.latitude, radius_m])?;
                }
                ("knn_10_filters", Some(Area::Nearest { center, .. })) => {
                    debug_assert_eq!(query.filters.current, Some(Current::Dc));
                    client.query(&nearest, &[&center.longitude, &center.latitude])?;
                }
                ("bbox", Some(Area::BoundingBox { south, west, north, east })) => {
                    client.query(&bbox, &[west, south, east, north])?;
                }
                _ => continue,
            }
            durations.push(start.elapsed());
        }
        if !durations.is_empty() {
            out.push((name.clone(), figures(name, durations).p50_us));
        }
    }
    Ok(out)
}
