//! Start-up and shutdown of the server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use emsp_store::{DatabaseUrl, Store, StoreOptions, TokenCipher};

use emsp_events::EventBus;
use emsp_search_index::SearchIndex;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::config::{Config, DatabaseConfig};
use crate::index_sync;
use crate::live::LiveFeed;
use crate::metrics::{self, Metrics};
use crate::router;

/// The roaming layer as handlers (and tests) hold it.
pub type RoamingHandle = web::Data<emsp_roaming::Roaming>;

/// What every handler can reach. Passed as `web::Data<AppState>`, never a global.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Metrics,
    pub index: Arc<SearchIndex>,
}

/// How to run, beyond the configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop gracefully on SIGTERM/SIGINT. Off in tests that run servers inside the test process.
    pub handle_signals: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { handle_signals: true }
    }
}

/// A server that accepts connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub public_url: String,
    pub store: Store,
    pub index: Arc<SearchIndex>,
    /// The bus subscriptions listen on.
    pub events: EventBus,
    pub roaming: web::Data<emsp_roaming::Roaming>,
    /// The driver API as served (tests run subscriptions on it in-process).
    pub schema: web::Data<emsp_graphql::EmspSchema>,
    /// Card payments: the flows the charging flow calls (`start_hold`, `capture`, `cancel`).
    pub payments: web::Data<crate::payments::PaymentsHandle>,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: watch::Sender<bool>,
}

impl RunningServer {
    /// Waits until the server stops (on a signal, or after [`RunningServer::stop`]).
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.task.await;
        // Background jobs stop with the server, whatever ended it.
        let _ = self.shutdown.send(true);
        // Decisions answered but not stored yet are stored now, after the last request.
        self.roaming.authorizations.close(&self.store).await;
        served.context("server task panicked")?.context("server failed")?;
        tracing::info!("stopped");
        Ok(())
    }

    /// Stops accepting connections and lets in-flight requests finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        self.wait().await
    }
}

/// Opens the store the configuration names; the default SQLite file's folder is created.
pub fn open_store(config: &DatabaseConfig) -> anyhow::Result<Store> {
    let url = match &config.url {
        Some(url) => DatabaseUrl::parse(url)?,
        None => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
            DatabaseUrl::sqlite(&config.default_sqlite_path())?
        }
    };
    let cipher = match &config.secret_key {
        Some(key) => Some(TokenCipher::from_base64(key)?),
        None => None,
    };
    let mut options = StoreOptions::new(url);
    options.pool_size = config.pool_size;
    options.connect_timeout = config.connect_timeout();
    options.cipher = cipher;
    Ok(Store::open(options)?)
}

/// Retries an unreachable database with exponential backoff, then gives up with a clear error.
pub async fn wait_for_database(store: &Store, config: &DatabaseConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        let probe = store.clone();
        let timeout = config.connect_timeout();
        let result =
            tokio::task::spawn_blocking(move || probe.ping(timeout)).await.context("database probe panicked")?;
        let error = match result {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        if started.elapsed() >= config.startup_timeout() {
            anyhow::bail!(
                "database {} is unreachable after {} attempts in {} s: {error}",
                store.url().redacted(),
                attempt,
                started.elapsed().as_secs()
            );
        }
        tracing::warn!(attempt, retry_in_ms = delay.as_millis() as u64, %error, database = %store.url().redacted(), "database unreachable, retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
        attempt += 1;
    }
}

/// Connects to the database (retrying), migrates it, loads what must be in memory, and starts
/// serving HTTP. Returns once the server accepts connections.
pub async fn start(mut config: Config, options: RunOptions) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(config.server.listen)
        .with_context(|| format!("cannot listen on {} (EMSP_LISTEN)", config.server.listen))?;
    let addr = listener.local_addr()?;
    if config.server.public_url.is_none() && config.server.listen.port() == 0 {
        // Tests and ad-hoc runs on a free port: the real port is only known now.
        config.server.public_url = Some(format!("http://{addr}"));
    }
    let config = Arc::new(config);
    let store = open_store(&config.database)?;
    tracing::info!(database = %store.url().redacted(), "connecting to the database");
    wait_for_database(&store, &config.database).await?;
    let migrating = store.clone();
    let applied = tokio::task::spawn_blocking(move || migrating.migrate()).await.context("migration panicked")??;
    tracing::info!(applied = ?applied, "database migrated");

    let index = Arc::new(SearchIndex::new(&cursor_secret(&config.database)));
    let roaming = web::Data::new(roaming(&config, &store)?);
    let roaming_for_app = roaming.clone();
    // Loading (or creating) the signing keys reads the database: not on an async thread.
    let (accounts_config, accounts_store) = (config.clone(), store.clone());
    let accounts = tokio::task::spawn_blocking(move || accounts(&accounts_config, &accounts_store))
        .await
        .context("accounts panicked")??;
    let accounts_for_app = web::Data::new(accounts.clone());
    let stale_after = crate::adhoc::stale_after(
        Duration::from_secs(config.payments.request_timeout_s.max(1)),
        Duration::from_secs(config.ocpi.request_timeout_s.max(1)),
        config.database.connect_timeout(),
    );
    let payments =
        web::Data::new(crate::payments::build(&config.payments, &store, roaming.clone().into_inner(), stale_after)?);
    let (charging_changes, charging_changed) = tokio::sync::mpsc::unbounded_channel();
    let live = Arc::new(LiveFeed {
        tariffs: Arc::new(emsp_graphql::TariffBook::new()),
        events: EventBus::new(),
        charging_changes: payments.enabled().then_some(charging_changes),
    });
    let schema = web::Data::new(emsp_graphql::build_schema(
        emsp_graphql::ApiContext {
            index: index.clone(),
            store: store.clone(),
            accounts: accounts.clone(),
            tariffs: live.tariffs.clone(),
            events: live.events.clone(),
            anonymous_search: config.api.anonymous_search,
            charging: Some(emsp_graphql::ChargingApi {
                roaming: roaming.clone().into_inner(),
                updates: Arc::new(emsp_graphql::BusUpdates(live.events.clone())),
            }),
            payments: payments
                .adhoc
                .clone()
                .map(|flow| emsp_graphql::CardPaymentsApi(flow as Arc<dyn emsp_graphql::CardPayments>)),
            default_currency: config.api.default_currency.clone(),
            issuer: emsp_graphql::TokenIssuer {
                party: roaming.config.party.clone(),
                name: roaming.config.business_name.clone(),
            },
        },
        &emsp_graphql::ApiLimits { introspection: config.api.introspection, ..emsp_graphql::ApiLimits::default() },
    ));
    let schema_handle = schema.clone();
    let payments_for_app = payments.clone();
    let limiter = web::Data::new(crate::api::RateLimiter::default());
    let sockets = web::Data::new(crate::ws::Sockets::new(&config.api));
    let documents = web::Data::new(crate::api::DocumentCache::default());
    let metrics = Metrics::new(store.backend().as_str()).context("cannot register metrics")?;
    let state =
        web::Data::new(AppState { config: config.clone(), store: store.clone(), metrics, index: index.clone() });
    let max_body = config.server.max_body_bytes;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(roaming_for_app.clone())
            .app_data(schema.clone())
            .app_data(accounts_for_app.clone())
            .app_data(limiter.clone())
            .app_data(sockets.clone())
            .app_data(payments_for_app.clone())
            .app_data(documents.clone())
            .app_data(web::JsonConfig::default().limit(max_body))
            .app_data(web::PayloadConfig::new(max_body))
            .wrap(from_fn(metrics::observe))
            .configure(|cfg| router::routes(cfg, max_body))
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(config.server.shutdown_timeout_s)
    .listen(listener)?;
    if let Some(workers) = config.server.workers {
        server = server.workers(workers.max(1));
    }
    if !options.handle_signals {
        server = server.disable_signals();
    }
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    let public_url = config.server.public_url();
    tracing::info!(%addr, public_url = %public_url, "listening");

    // The index loads while the server already answers: `/ready` says 503 until it is done.
    let (shutdown, shutdown_rx) = watch::channel(false);
    tokio::spawn(crate::api::account_upkeep(accounts.clone(), shutdown_rx.clone()));
    {
        let (pushes, stop) = (roaming.clone(), shutdown_rx.clone());
        tokio::spawn(async move { emsp_roaming::tokens::push_worker(&pushes, stop).await });
        let (statuses, stop) = (roaming.clone(), shutdown_rx.clone());
        tokio::spawn(async move {
            emsp_roaming::status_pushes::write_statuses(&statuses.status_pushes, &statuses.store, stop).await;
        });
        let (lookups, stop) = (roaming.clone(), shutdown_rx.clone());
        tokio::spawn(async move {
            emsp_roaming::token_lookups::serve_lookups(&lookups.token_lookups, &lookups.store, stop).await;
        });
        let (decisions, stop) = (roaming.clone(), shutdown_rx.clone());
        tokio::spawn(async move {
            emsp_roaming::authorizations::write_authorizations(&decisions.authorizations, &decisions.store, stop).await;
        });
    }
    if config.ocpi.pull_interval_s > 0 {
        let (pulls, stop) = (roaming.clone(), shutdown_rx.clone());
        let interval = Duration::from_secs(config.ocpi.pull_interval_s);
        tokio::spawn(async move { emsp_roaming::pull::schedule(&pulls, interval, stop).await });
    }
    let (timeouts, stop) = (roaming.clone(), shutdown_rx.clone());
    tokio::spawn(async move { emsp_roaming::charging::watch_command_timeouts(&timeouts, stop).await });
    let (loader_store, loader_index, loader_live) = (store.clone(), index.clone(), live.clone());
    let statuses = roaming.status_pushes.clone();
    if let Some(adhoc) = payments.adhoc.clone() {
        // Crash between a hold and its START_SESSION: holds of requests left untouched for long
        // enough are released (see `adhoc.rs`; the reconciliation schedule repeats it); then
        // sessions' changes settle their holds.
        let stop = shutdown_rx.clone();
        tokio::spawn(async move {
            match adhoc.recover(chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(released) => tracing::info!(released, "ad-hoc holds of interrupted requests released"),
                Err(error) => tracing::warn!(%error, "ad-hoc recovery failed; reconciliation releases them later"),
            }
            adhoc.follow(charging_changed, stop).await;
        });
    }
    if payments.enabled() && config.payments.reconcile_interval_s > 0 {
        let policy = emsp_payments::ReconcilePolicy {
            unstarted_after: chrono::Duration::seconds(config.payments.unstarted_after_s as i64),
            ..emsp_payments::ReconcilePolicy::default()
        };
        let interval = Duration::from_secs(config.payments.reconcile_interval_s);
        tokio::spawn(crate::payments::schedule(payments.clone(), policy, interval, shutdown_rx.clone()));
    }
    tokio::spawn(async move {
        let (load_store, load_index, load_live) = (loader_store.clone(), loader_index.clone(), loader_live.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let from_seq = index_sync::bulk_load(&load_store, &load_index)?;
            // After the feed position was read: a tariff change from now on is replayed.
            match load_live.load_tariffs(&load_store) {
                Ok(tariffs) => tracing::info!(tariffs, "tariff book loaded"),
                Err(error) => tracing::error!(%error, "tariff book could not be loaded; prices stay unknown"),
            }
            Ok::<i64, emsp_store::StoreError>(from_seq)
        })
        .await;
        match loaded {
            Ok(Ok(from_seq)) => {
                // From here on the index follows the feed: status pushes answer once it holds them.
                let (applied, applied_rx) = watch::channel(from_seq);
                statuses.follow_index(applied_rx);
                let applied = Arc::new(applied);
                index_sync::follow(loader_store, loader_index, from_seq, shutdown_rx, loader_live, applied).await;
            }
            Ok(Err(error)) => tracing::error!(%error, "search index could not be loaded; /ready stays 503"),
            Err(error) => tracing::error!(%error, "search index load panicked; /ready stays 503"),
        }
    });
    let events = live.events.clone();
    Ok(RunningServer {
        addr,
        public_url,
        store,
        index,
        events,
        roaming,
        schema: schema_handle,
        payments,
        handle,
        task,
        shutdown,
    })
}

/// Accounts: access tokens name our public URL as issuer and the driver API as audience. Their
/// signing keys are sealed with `EMSP_SECRET_KEY`, so a server needs one.
pub fn accounts(config: &Config, store: &Store) -> anyhow::Result<emsp_accounts::Accounts> {
    let auth = emsp_accounts::AuthConfig {
        issuer: config.server.public_url(),
        audience: "emsp-api".into(),
        ..emsp_accounts::AuthConfig::default()
    };
    emsp_accounts::Accounts::new(store.clone(), auth).map_err(|error| match error {
        emsp_accounts::AuthError::Config(reason) => anyhow::anyhow!("accounts: {reason} (set EMSP_SECRET_KEY)"),
        other => anyhow::anyhow!("accounts: {other}"),
    })
}

/// The roaming layer's view of the configuration. `EMSP_PUBLIC_URL` must be where partners reach
/// us: it is what we send them in credentials.
pub fn roaming(config: &Config, store: &Store) -> anyhow::Result<emsp_roaming::Roaming> {
    let party = emsp_domain::PartyId::parse(&config.ocpi.party)?;
    let roaming_config = emsp_roaming::RoamingConfig {
        public_url: config.server.public_url(),
        party: party.clone(),
        business_name: config.ocpi.business_name.clone(),
        website: config.ocpi.website.clone(),
        request_timeout: Duration::from_secs(config.ocpi.request_timeout_s.max(1)),
    };
    let client = emsp_roaming::OcpiClient::new(roaming_config.request_timeout, party)?;
    Ok(emsp_roaming::Roaming::new(store.clone(), client, Arc::new(roaming_config)))
}

/// The key that signs search cursors. Derived from `EMSP_SECRET_KEY` so that a cursor issued by one
/// replica is accepted by every other and after a restart; random (cursors die with the process)
/// when no key is configured.
fn cursor_secret(config: &DatabaseConfig) -> Vec<u8> {
    match &config.secret_key {
        Some(key) => {
            Sha256::new().chain_update(b"emsp search cursor v1\0").chain_update(key.as_bytes()).finalize().to_vec()
        }
        None => rand_secret(),
    }
}

fn rand_secret() -> Vec<u8> {
    uuid::Uuid::new_v4().as_bytes().iter().chain(uuid::Uuid::new_v4().as_bytes()).copied().collect()
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({ "error": "not found" }))
}
