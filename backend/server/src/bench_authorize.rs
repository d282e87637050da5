//! `emsp bench authorize`: OCPI real-time authorization (`POST /ocpi/2.2.1/tokens/{uid}/authorize`)
//! under load, over real HTTP on loopback, against PostgreSQL (or a temporary SQLite file).
//!
//! The server runs in this process on a database holding `--tokens` RFID tokens (5 % of them
//! blocked) and one registered CPO. Clients authorize random tokens with a `LocationReferences`
//! body for a fixed time; every answer is checked (ALLOWED or BLOCKED as seeded) and every
//! decision is written with its authorization reference, as in production.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use emsp_domain::{PartyId, Token, TokenType, TokenUid, WhitelistType};
use emsp_store::testing::TestDb;
use emsp_store::{Endpoint, Registration, TokenRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::app::{self, RunOptions};
use crate::config::Config;

#[derive(Debug, Clone)]
pub struct AuthorizeBenchOptions {
    pub tokens: usize,
    pub database_url: Option<String>,
    pub duration: Duration,
    pub concurrency: usize,
    pub pool_size: u32,
    /// Only serve (seeded database and server), for an external load generator; stop with Ctrl-C.
    pub serve_only: bool,
    /// Where to listen (default: a free port on loopback).
    pub listen: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AuthorizeBenchReport {
    pub database: &'static str,
    pub tokens: usize,
    pub seed_s: f64,
    pub concurrency: usize,
    pub pool_size: u32,
    pub requests: usize,
    pub errors: usize,
    pub wrong_answers: usize,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl AuthorizeBenchReport {
    pub fn to_table(&self) -> String {
        format!(
            "{} with {} tokens (seeded in {:.1} s), pool {} connections\n\
             POST /ocpi/2.2.1/tokens/{{uid}}/authorize with {} concurrent clients:\n\
             {} requests, {} errors, {} wrong answers, {:.0} requests/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.database,
            self.tokens,
            self.seed_s,
            self.pool_size,
            self.concurrency,
            self.requests,
            self.errors,
            self.wrong_answers,
            self.requests_per_s,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms
        )
    }
}

const CPO_TOKEN: &str = "bench-cpo-token-c";

fn uid(n: usize) -> String {
    format!("04{n:010X}")
}

fn seed(db: &TestDb, tokens: usize) -> anyhow::Result<()> {
    let store = db.store();
    let party = PartyId::parse("NL*EMS")?;
    let now = Utc::now();
    let mut batch = Vec::with_capacity(10_000);
    for n in 0..tokens {
        let blocked = n % 20 == 0;
        batch.push(TokenRecord {
            token: Token {
                party: party.clone(),
                uid: TokenUid::new(uid(n))?,
                token_type: TokenType::Rfid,
                contract_id: emsp_store::new_contract_id(&party)?.to_string(),
                visual_number: None,
                issuer: "Open EMSP".into(),
                group_id: None,
                valid: !blocked,
                whitelist: WhitelistType::Allowed,
                language: None,
                default_profile_type: None,
                energy_contract: None,
                expires_at: None,
                blocked_reason: blocked.then(|| "benchmark".to_owned()),
                last_updated: now,
            },
            user_id: None,
            fleet_id: None,
            created_at: now,
        });
        if batch.len() == batch.capacity() {
            store.insert_tokens(&batch, "IMPORT", "bench")?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.insert_tokens(&batch, "IMPORT", "bench")?;
    }
    let (partner, _) = emsp_roaming::invite_partner(store, "bench CPO")?;
    let endpoints: Vec<Endpoint> = Vec::new();
    store.register_partner(
        &partner.id,
        &Registration {
            versions_url: "http://127.0.0.1:1/ocpi/versions",
            version: "2.2.1",
            endpoints: &endpoints,
            incoming_token: CPO_TOKEN,
            outgoing_token: "unused",
        },
    )?;
    Ok(())
}

/// Runs the benchmark; with `serve_only`, serves until Ctrl-C and returns `None`.
pub async fn run(options: &AuthorizeBenchOptions) -> anyhow::Result<Option<AuthorizeBenchReport>> {
    let db = match &options.database_url {
        Some(url) => {
            let url = url.clone();
            tokio::task::spawn_blocking(move || TestDb::postgres_at(&url)).await?
        }
        None => tokio::task::spawn_blocking(TestDb::sqlite).await?,
    };
    let database = if db.url().starts_with("postgres") { "postgres" } else { "sqlite" };
    let started = Instant::now();
    let tokens = options.tokens.max(1);
    let db = tokio::task::spawn_blocking(move || seed(&db, tokens).map(|()| db)).await??;
    let seed_s = started.elapsed().as_secs_f64();

    let pool_size = options.pool_size.to_string();
    let env: HashMap<String, String> = [
        ("EMSP_LISTEN", options.listen.as_deref().unwrap_or("127.0.0.1:0")),
        ("DATABASE_URL", db.url()),
        ("EMSP_OCPI_PULL_INTERVAL_S", "0"),
        ("EMSP_DB_POOL_SIZE", pool_size.as_str()),
        ("EMSP_LOG", "warn"),
        ("EMSP_SECRET_KEY", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let server = app::start(Config::load(None, &env)?, RunOptions { handle_signals: options.serve_only }).await?;
    let base = format!("{}/ocpi/2.2.1/tokens", server.public_url);
    let authorization = format!("Token {}", STANDARD.encode(CPO_TOKEN));
    if options.serve_only {
        crate::cli::say(&format!(
            "serving {tokens} tokens ({database}, seeded in {seed_s:.1} s) at {base}/{{uid}}/authorize, \
             uids 04{{n:010X}} for n < {tokens} (every 20th blocked), header \"Authorization: {authorization}\"; Ctrl-C stops"
        ));
        server.wait().await?;
        drop(db);
        return Ok(None);
    }

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .timeout(Duration::from_secs(10))
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..options.concurrency.max(1) {
        let (client, stop, base, authorization) = (client.clone(), stop.clone(), base.clone(), authorization.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(worker as u64);
            let (mut latencies, mut errors, mut wrong) = (Vec::new(), 0usize, 0usize);
            while !stop.load(Ordering::Relaxed) {
                let n = rng.random_range(0..tokens);
                let expected = if n % 20 == 0 { "BLOCKED" } else { "ALLOWED" };
                let url = format!("{base}/{}/authorize?type=RFID", uid(n));
                let body = serde_json::json!({ "location_id": format!("LOC-{}", rng.random_range(0..1000)), "evse_uids": ["E1"] });
                let sent = Instant::now();
                let answer = match client.post(&url).header("Authorization", &authorization).json(&body).send().await {
                    Ok(response) if response.status().is_success() => response.json::<serde_json::Value>().await.ok(),
                    _ => None,
                };
                let elapsed = sent.elapsed().as_secs_f64() * 1000.0;
                match answer {
                    Some(answer) => {
                        latencies.push(elapsed);
                        if answer["data"]["allowed"] != expected {
                            wrong += 1;
                        }
                    }
                    None => errors += 1,
                }
            }
            (latencies, errors, wrong)
        }));
    }
    // A short warm-up is part of the run; connections open on first use.
    let measuring = Instant::now();
    tokio::time::sleep(options.duration).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut errors, mut wrong_answers) = (Vec::new(), 0, 0);
    for worker in workers {
        let (l, e, w) = worker.await?;
        latencies.extend(l);
        errors += e;
        wrong_answers += w;
    }
    let elapsed = measuring.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pick = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    let report = AuthorizeBenchReport {
        database,
        tokens,
        seed_s,
        concurrency: options.concurrency,
        pool_size: options.pool_size,
        requests: latencies.len(),
        errors,
        wrong_answers,
        requests_per_s: latencies.len() as f64 / elapsed,
        p50_ms: pick(0.5),
        p90_ms: pick(0.9),
        p99_ms: pick(0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
    };
    server.stop().await?;
    drop(db);
    Ok(Some(report))
}
