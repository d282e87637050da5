//! Configuration: one typed struct per concern.
//!
//! Sources, later ones winning: built-in defaults, an optional TOML file (`--config FILE` or
//! `EMSP_CONFIG`), environment variables. Unknown keys in the file are rejected. Secrets
//! (`DATABASE_URL`, which may hold a password, and `EMSP_SECRET_KEY`) are read from the environment
//! only: the file has no field for them, so putting one there is an "unknown field" error.
//!
//! | variable | file key | default | meaning |
//! |---|---|---|---|
//! | `EMSP_LISTEN` | `server.listen` | `127.0.0.1:8080` | address the HTTP server binds |
//! | `EMSP_PUBLIC_URL` | `server.public_url` | `http://` + listen | base URL partners and apps reach us at |
//! | `EMSP_WORKERS` | `server.workers` | number of CPUs | HTTP worker threads |
//! | `EMSP_SHUTDOWN_TIMEOUT_S` | `server.shutdown_timeout_s` | `30` | grace period for in-flight requests on SIGTERM/SIGINT |
//! | `EMSP_MAX_BODY_BYTES` | `server.max_body_bytes` | `1048576` | largest accepted request body |
//! | `DATABASE_URL` | (env only) | `sqlite://$EMSP_DATA_DIR/emsp.sqlite` | `sqlite://PATH` or `postgres://...` |
//! | `EMSP_DATA_DIR` | `database.data_dir` | `./data` | folder of the default SQLite database (created if missing) |
//! | `EMSP_DB_POOL_SIZE` | `database.pool_size` | `10` | largest number of database connections |
//! | `EMSP_DB_CONNECT_TIMEOUT_S` | `database.connect_timeout_s` | `5` | wait for one connection before the database counts as down |
//! | `EMSP_DB_STARTUP_TIMEOUT_S` | `database.startup_timeout_s` | `60` | how long start-up retries an unreachable database before giving up |
//! | `EMSP_SECRET_KEY` | (env only) | none | base64 of 32 bytes; encrypts the tokens we hold for partners |
//! | `EMSP_PARTY` | `ocpi.party` | `NL*EMS` | our country code and party id in roaming (`CC*PID`) |
//! | `EMSP_BUSINESS_NAME` | `ocpi.business_name` | `Open EMSP` | our company name in OCPI credentials |
//! | `EMSP_WEBSITE` | `ocpi.website` | none | our website in OCPI credentials |
//! | `EMSP_OCPI_TIMEOUT_S` | `ocpi.request_timeout_s` | `30` | time limit of every call to a roaming partner |
//! | `EMSP_OCPI_PULL_INTERVAL_S` | `ocpi.pull_interval_s` | `900` | how often locations and tariffs are pulled from partners (0: never) |
//! | `EMSP_GRAPHIQL` | `api.graphiql` | `false` (`true` in the demo) | serve GraphiQL at `GET /graphql` |
//! | `EMSP_GRAPHQL_INTROSPECTION` | `api.introspection` | `false` (`true` in the demo) | allow schema introspection |
//! | `EMSP_RATE_LIMIT_PER_MINUTE` | `api.rate_limit_per_minute` | `1200` | GraphQL requests per signed-in user, or per IP when anonymous, per minute (0: no limit) |
//! | `EMSP_ANONYMOUS_SEARCH` | `api.anonymous_search` | `true` | whether searching chargers works without signing in |
//! | `EMSP_DEFAULT_CURRENCY` | `api.default_currency` | `EUR` | currency of PRICE sorting when the query names none (ISO 4217) |
//! | `EMSP_WS_MAX_CONNECTIONS` | `api.ws_max_connections` | `10000` | open GraphQL WebSocket connections at most (more get 503) |
//! | `EMSP_WS_MAX_SUBSCRIPTIONS` | `api.ws_max_subscriptions` | `20` | subscriptions per WebSocket connection at most |
//! | `EMSP_WS_INIT_TIMEOUT_S` | `api.ws_init_timeout_s` | `10` | time a client has to send `connection_init` (then close 4408) |
//! | `EMSP_WS_KEEPALIVE_S` | `api.ws_keepalive_s` | `15` | WebSocket ping interval; a peer silent for two intervals is dropped |
//! | `RUST_LOG` or `EMSP_LOG` | `log.filter` | `info` | log filter, `RUST_LOG` syntax (`info,emsp_store=debug`) |
//! | `EMSP_LOG_FORMAT` | `log.format` | `json` | `json` (one object per line) or `text` |
//! | (file only) | `invoicing.supplier` | none | our company on fleet invoices: name, address, VAT id, contact, bank, payment terms, VAT rates, number series (see the README) |
//! | `EMSP_STRIPE_SECRET_KEY` | (env only) | none | Stripe secret key; card payments are off without it |
//! | `EMSP_STRIPE_WEBHOOK_SECRETS` | (env only) | none | Stripe webhook endpoint secrets, comma-separated (several during a rotation) |
//! | `EMSP_STRIPE_API_BASE` | `payments.stripe_api_base` | `https://api.stripe.com/` | Stripe's API address (tests point it at the fake) |
//! | `EMSP_STRIPE_TIMEOUT_S` | `payments.request_timeout_s` | `20` | time limit of every call to Stripe |
//! | `EMSP_STRIPE_WEBHOOK_TOLERANCE_S` | `payments.webhook_tolerance_s` | `300` | largest age of a webhook signature |
//! | `EMSP_PAYMENTS_MAX_HOLD` | `payments.max_hold` | `15000` | largest card hold, in minor units |
//! | `EMSP_PAYMENTS_UNSTARTED_AFTER_S` | `payments.unstarted_after_s` | `900` | a hold with no session after this long is released |
//! | `EMSP_PAYMENTS_RECONCILE_INTERVAL_S` | `payments.reconcile_interval_s` | `60` | how often reconciliation runs (0: never) |

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The whole configuration of a process.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub ocpi: OcpiConfig,
    pub api: ApiConfig,
    pub log: LogConfig,
    pub invoicing: InvoicingConfig,
    pub payments: PaymentsConfig,
}

/// Fleet invoicing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvoicingConfig {
    /// `invoicing.supplier` (file only): us, as invoices name us. Invoice runs refuse to start without it.
    pub supplier: Option<emsp_invoicing::Supplier>,
}

/// Card payments (Stripe).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// `EMSP_STRIPE_API_BASE`.
    pub stripe_api_base: String,
    /// `EMSP_STRIPE_TIMEOUT_S`.
    pub request_timeout_s: u64,
    /// `EMSP_STRIPE_WEBHOOK_TOLERANCE_S`.
    pub webhook_tolerance_s: i64,
    /// `EMSP_PAYMENTS_MAX_HOLD`, minor units.
    pub max_hold: i64,
    /// `EMSP_PAYMENTS_UNSTARTED_AFTER_S`.
    pub unstarted_after_s: u64,
    /// `EMSP_PAYMENTS_RECONCILE_INTERVAL_S`: 0 turns the job off.
    pub reconcile_interval_s: u64,
    /// `EMSP_STRIPE_SECRET_KEY` (environment only).
    #[serde(skip_deserializing, serialize_with = "redacted")]
    pub stripe_secret_key: Option<String>,
    /// `EMSP_STRIPE_WEBHOOK_SECRETS` (environment only).
    #[serde(skip_deserializing, serialize_with = "redacted_list")]
    pub webhook_secrets: Vec<String>,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            stripe_api_base: "https://api.stripe.com/".into(),
            request_timeout_s: 20,
            webhook_tolerance_s: 300,
            max_hold: 15_000,
            unstarted_after_s: 900,
            reconcile_interval_s: 60,
            stripe_secret_key: None,
            webhook_secrets: Vec::new(),
        }
    }
}

impl std::fmt::Debug for PaymentsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsConfig")
            .field("stripe_api_base", &self.stripe_api_base)
            .field("request_timeout_s", &self.request_timeout_s)
            .field("webhook_tolerance_s", &self.webhook_tolerance_s)
            .field("max_hold", &self.max_hold)
            .field("unstarted_after_s", &self.unstarted_after_s)
            .field("reconcile_interval_s", &self.reconcile_interval_s)
            .field("stripe_secret_key", &self.stripe_secret_key.as_ref().map(|_| "***"))
            .field("webhook_secrets", &self.webhook_secrets.len())
            .finish()
    }
}

fn redacted<S: serde::Serializer>(value: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if value.is_some() { "***" } else { "" })
}

fn redacted_list<S: serde::Serializer>(value: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("{} secret(s)", value.len()))
}

impl PaymentsConfig {
    /// Reads the payment variables of `var`.
    fn apply_env<'a>(&mut self, var: impl Fn(&str) -> Option<&'a String>) -> Result<(), ConfigError> {
        if let Some(value) = var("EMSP_STRIPE_API_BASE") {
            self.stripe_api_base = value.clone();
        }
        if let Some(value) = var("EMSP_STRIPE_TIMEOUT_S") {
            self.request_timeout_s = parse_env("EMSP_STRIPE_TIMEOUT_S", value)?;
        }
        if let Some(value) = var("EMSP_STRIPE_WEBHOOK_TOLERANCE_S") {
            self.webhook_tolerance_s = parse_env("EMSP_STRIPE_WEBHOOK_TOLERANCE_S", value)?;
        }
        if let Some(value) = var("EMSP_PAYMENTS_MAX_HOLD") {
            self.max_hold = parse_env("EMSP_PAYMENTS_MAX_HOLD", value)?;
        }
        if let Some(value) = var("EMSP_PAYMENTS_UNSTARTED_AFTER_S") {
            self.unstarted_after_s = parse_env("EMSP_PAYMENTS_UNSTARTED_AFTER_S", value)?;
        }
        if let Some(value) = var("EMSP_PAYMENTS_RECONCILE_INTERVAL_S") {
            self.reconcile_interval_s = parse_env("EMSP_PAYMENTS_RECONCILE_INTERVAL_S", value)?;
        }
        self.stripe_secret_key = var("EMSP_STRIPE_SECRET_KEY").cloned();
        self.webhook_secrets = var("EMSP_STRIPE_WEBHOOK_SECRETS")
            .map(|value| value.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        if !(self.stripe_api_base.starts_with("http://") || self.stripe_api_base.starts_with("https://")) {
            return Err(ConfigError::Env {
                name: "EMSP_STRIPE_API_BASE".into(),
                value: self.stripe_api_base.clone(),
                message: "must start with http:// or https://".into(),
            });
        }
        if self.max_hold <= 0 {
            return Err(ConfigError::Env {
                name: "EMSP_PAYMENTS_MAX_HOLD".into(),
                value: self.max_hold.to_string(),
                message: "must be positive".into(),
            });
        }
        Ok(())
    }
}

/// The driver API (GraphQL).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `EMSP_GRAPHIQL`.
    pub graphiql: bool,
    /// `EMSP_GRAPHQL_INTROSPECTION`.
    pub introspection: bool,
    /// `EMSP_RATE_LIMIT_PER_MINUTE`: 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// `EMSP_ANONYMOUS_SEARCH`.
    pub anonymous_search: bool,
    /// `EMSP_DEFAULT_CURRENCY`: prices in other currencies are not compared with it.
    pub default_currency: String,
    /// `EMSP_WS_MAX_CONNECTIONS`.
    pub ws_max_connections: usize,
    /// `EMSP_WS_MAX_SUBSCRIPTIONS`.
    pub ws_max_subscriptions: usize,
    /// `EMSP_WS_INIT_TIMEOUT_S`.
    pub ws_init_timeout_s: u64,
    /// `EMSP_WS_KEEPALIVE_S`.
    pub ws_keepalive_s: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            graphiql: false,
            introspection: false,
            rate_limit_per_minute: 1_200,
            anonymous_search: true,
            default_currency: "EUR".into(),
            ws_max_connections: 10_000,
            ws_max_subscriptions: 20,
            ws_init_timeout_s: 10,
            ws_keepalive_s: 15,
        }
    }
}

/// Roaming (OCPI).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcpiConfig {
    /// `EMSP_PARTY`: our country code and party id, `CC*PID`.
    pub party: String,
    /// `EMSP_BUSINESS_NAME`.
    pub business_name: String,
    /// `EMSP_WEBSITE`.
    pub website: Option<String>,
    /// `EMSP_OCPI_TIMEOUT_S`.
    pub request_timeout_s: u64,
    /// `EMSP_OCPI_PULL_INTERVAL_S`: 0 turns scheduled pulls off.
    pub pull_interval_s: u64,
}

impl Default for OcpiConfig {
    fn default() -> Self {
        Self {
            party: "NL*EMS".into(),
            business_name: "Open EMSP".into(),
            website: None,
            request_timeout_s: 30,
            pull_interval_s: 900,
        }
    }
}

/// The HTTP server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `EMSP_LISTEN`: address to bind.
    pub listen: SocketAddr,
    /// `EMSP_PUBLIC_URL`: the base URL others reach us at; `None` means `http://` + `listen`.
    pub public_url: Option<String>,
    /// `EMSP_WORKERS`: HTTP worker threads; `None` means one per CPU.
    pub workers: Option<usize>,
    /// `EMSP_SHUTDOWN_TIMEOUT_S`: seconds in-flight requests get to finish on shutdown.
    pub shutdown_timeout_s: u64,
    /// `EMSP_MAX_BODY_BYTES`: largest request body accepted.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            workers: None,
            shutdown_timeout_s: 30,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl ServerConfig {
    /// The public base URL without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// The database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `DATABASE_URL` (environment only): `None` means the SQLite file in `data_dir`.
    #[serde(skip)]
    pub url: Option<String>,
    /// `EMSP_DATA_DIR`: folder of the default SQLite database.
    pub data_dir: PathBuf,
    /// `EMSP_DB_POOL_SIZE`.
    pub pool_size: u32,
    /// `EMSP_DB_CONNECT_TIMEOUT_S`.
    pub connect_timeout_s: u64,
    /// `EMSP_DB_STARTUP_TIMEOUT_S`.
    pub startup_timeout_s: u64,
    /// `EMSP_SECRET_KEY` (environment only).
    #[serde(skip)]
    pub secret_key: Option<String>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            data_dir: PathBuf::from("./data"),
            pool_size: 10,
            connect_timeout_s: 5,
            startup_timeout_s: 60,
            secret_key: None,
        }
    }
}

impl DatabaseConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_s.max(1))
    }

    pub fn startup_timeout(&self) -> Duration {
        Duration::from_secs(self.startup_timeout_s)
    }

    /// The default SQLite file when no `DATABASE_URL` is given.
    pub fn default_sqlite_path(&self) -> PathBuf {
        self.data_dir.join("emsp.sqlite")
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `RUST_LOG` / `EMSP_LOG`: filter directives.
    pub filter: String,
    /// `EMSP_LOG_FORMAT`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { filter: "info".into(), format: LogFormat::Json }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "text" | "pretty" => Ok(LogFormat::Text),
            other => Err(format!("{other:?} is not a log format (json or text)")),
        }
    }
}

/// The part of the configuration a TOML file may set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    server: ServerConfig,
    database: DatabaseConfig,
    ocpi: OcpiConfig,
    api: ApiConfig,
    log: LogConfig,
    invoicing: InvoicingConfig,
    payments: PaymentsConfig,
}

/// A configuration problem, naming the source that was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?}: {message}")]
    Env { name: String, value: String, message: String },
}

impl Config {
    /// Reads the configuration from the process environment and `file`.
    pub fn from_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load(file, &env)
    }

    /// Defaults, then `file`, then `env`.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let file_path = file.map(Path::to_path_buf).or_else(|| env.get("EMSP_CONFIG").map(PathBuf::from));
        let parsed = match &file_path {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    message: explain_file_error(&e.to_string()),
                })?
            }
            None => FileConfig::default(),
        };
        let mut config = Config {
            server: parsed.server,
            database: parsed.database,
            ocpi: parsed.ocpi,
            api: parsed.api,
            log: parsed.log,
            invoicing: parsed.invoicing,
            payments: parsed.payments,
        };
        let var = |name: &str| env.get(name).filter(|value| !value.trim().is_empty());

        if let Some(value) = var("EMSP_LISTEN") {
            config.server.listen = parse_env("EMSP_LISTEN", value)?;
        }
        if let Some(value) = var("EMSP_PUBLIC_URL") {
            config.server.public_url = Some(value.clone());
        }
        if let Some(value) = var("EMSP_WORKERS") {
            config.server.workers = Some(parse_env("EMSP_WORKERS", value)?);
        }
        if let Some(value) = var("EMSP_SHUTDOWN_TIMEOUT_S") {
            config.server.shutdown_timeout_s = parse_env("EMSP_SHUTDOWN_TIMEOUT_S", value)?;
        }
        if let Some(value) = var("EMSP_MAX_BODY_BYTES") {
            config.server.max_body_bytes = parse_env("EMSP_MAX_BODY_BYTES", value)?;
        }
        config.database.url = var("DATABASE_URL").cloned();
        if let Some(value) = var("EMSP_DATA_DIR") {
            config.database.data_dir = PathBuf::from(value);
        }
        if let Some(value) = var("EMSP_DB_POOL_SIZE") {
            config.database.pool_size = parse_env("EMSP_DB_POOL_SIZE", value)?;
        }
        if let Some(value) = var("EMSP_DB_CONNECT_TIMEOUT_S") {
            config.database.connect_timeout_s = parse_env("EMSP_DB_CONNECT_TIMEOUT_S", value)?;
        }
        if let Some(value) = var("EMSP_DB_STARTUP_TIMEOUT_S") {
            config.database.startup_timeout_s = parse_env("EMSP_DB_STARTUP_TIMEOUT_S", value)?;
        }
        config.database.secret_key = var("EMSP_SECRET_KEY").cloned();
        if let Some(value) = var("EMSP_PARTY") {
            config.ocpi.party = value.clone();
        }
        if let Some(value) = var("EMSP_BUSINESS_NAME") {
            config.ocpi.business_name = value.clone();
        }
        if let Some(value) = var("EMSP_WEBSITE") {
            config.ocpi.website = Some(value.clone());
        }
        if let Some(value) = var("EMSP_OCPI_TIMEOUT_S") {
            config.ocpi.request_timeout_s = parse_env("EMSP_OCPI_TIMEOUT_S", value)?;
        }
        if let Some(value) = var("EMSP_OCPI_PULL_INTERVAL_S") {
            config.ocpi.pull_interval_s = parse_env("EMSP_OCPI_PULL_INTERVAL_S", value)?;
        }
        if let Err(error) = emsp_domain::PartyId::parse(&config.ocpi.party) {
            return Err(ConfigError::Env {
                name: "EMSP_PARTY".into(),
                value: config.ocpi.party.clone(),
                message: error.to_string(),
            });
        }
        if let Some(value) = var("EMSP_GRAPHIQL") {
            config.api.graphiql = parse_env("EMSP_GRAPHIQL", value)?;
        }
        if let Some(value) = var("EMSP_GRAPHQL_INTROSPECTION") {
            config.api.introspection = parse_env("EMSP_GRAPHQL_INTROSPECTION", value)?;
        }
        if let Some(value) = var("EMSP_RATE_LIMIT_PER_MINUTE") {
            config.api.rate_limit_per_minute = parse_env("EMSP_RATE_LIMIT_PER_MINUTE", value)?;
        }
        if let Some(value) = var("EMSP_ANONYMOUS_SEARCH") {
            config.api.anonymous_search = parse_env("EMSP_ANONYMOUS_SEARCH", value)?;
        }
        if let Some(value) = var("EMSP_DEFAULT_CURRENCY") {
            config.api.default_currency = value.clone();
        }
        if let Err(error) = emsp_domain::Currency::new(&config.api.default_currency) {
            return Err(ConfigError::Env {
                name: "EMSP_DEFAULT_CURRENCY".into(),
                value: config.api.default_currency.clone(),
                message: error.to_string(),
            });
        }
        if let Some(value) = var("EMSP_WS_MAX_CONNECTIONS") {
            config.api.ws_max_connections = parse_env("EMSP_WS_MAX_CONNECTIONS", value)?;
        }
        if let Some(value) = var("EMSP_WS_MAX_SUBSCRIPTIONS") {
            config.api.ws_max_subscriptions = parse_env("EMSP_WS_MAX_SUBSCRIPTIONS", value)?;
        }
        if let Some(value) = var("EMSP_WS_INIT_TIMEOUT_S") {
            config.api.ws_init_timeout_s = parse_env("EMSP_WS_INIT_TIMEOUT_S", value)?;
        }
        if let Some(value) = var("EMSP_WS_KEEPALIVE_S") {
            config.api.ws_keepalive_s = parse_env("EMSP_WS_KEEPALIVE_S", value)?;
        }
        if let Some(value) = var("EMSP_LOG").or_else(|| var("RUST_LOG")) {
            config.log.filter = value.clone();
        }
        if let Some(value) = var("EMSP_LOG_FORMAT") {
            config.log.format = parse_env("EMSP_LOG_FORMAT", value)?;
        }
        if let Some(url) = &config.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Env {
                name: "EMSP_PUBLIC_URL".into(),
                value: url.clone(),
                message: "must start with http:// or https://".into(),
            });
        }
        config.payments.apply_env(var)?;
        if config.database.pool_size == 0 {
            return Err(ConfigError::Env {
                name: "EMSP_DB_POOL_SIZE".into(),
                value: "0".into(),
                message: "must be at least 1".into(),
            });
        }
        if let Some(supplier) = &config.invoicing.supplier
            && let Err(error) = supplier.validate()
        {
            return Err(ConfigError::File {
                path: file_path.clone().unwrap_or_default(),
                message: format!("invoicing.supplier: {error}"),
            });
        }
        Ok(config)
    }
}

fn parse_env<T: FromStr>(name: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e: T::Err| ConfigError::Env {
        name: name.into(),
        value: value.into(),
        message: e.to_string(),
    })
}

/// Points operators who put a secret in the file to the environment variable.
fn explain_file_error(message: &str) -> String {
    if message.contains("unknown field `url`") {
        return format!(
            "{message}\nthe database URL may hold a password: set it in the DATABASE_URL environment variable"
        );
    }
    if message.contains("unknown field `secret_key`") {
        return format!("{message}\nsecrets are read from the environment only: set EMSP_SECRET_KEY");
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn write_file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("emsp-config-{}.toml", uuid_like()));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn uuid_like() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    }

    #[test]
    fn defaults() {
        let config = Config::load(None, &env(&[])).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.server.public_url(), "http://127.0.0.1:8080");
        assert_eq!(config.database.default_sqlite_path(), PathBuf::from("./data/emsp.sqlite"));
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn environment_wins_over_the_file() {
        let path =
            write_file("[server]\nlisten = \"0.0.0.0:9000\"\nshutdown_timeout_s = 5\n[log]\nformat = \"text\"\n");
        let config = Config::load(
            Some(&path),
            &env(&[("EMSP_LISTEN", "127.0.0.1:7000"), ("RUST_LOG", "debug"), ("DATABASE_URL", "postgres://x@y/z")]),
        )
        .unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.server.shutdown_timeout_s, 5, "the file sets what the environment does not");
        assert_eq!(config.log.format, LogFormat::Text);
        assert_eq!(config.log.filter, "debug");
        assert_eq!(config.database.url.as_deref(), Some("postgres://x@y/z"));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn unknown_keys_and_secrets_in_the_file_are_rejected() {
        let typo = write_file("[server]\nlisen = \"0.0.0.0:9000\"\n");
        let err = Config::load(Some(&typo), &env(&[])).unwrap_err().to_string();
        assert!(err.contains("unknown field `lisen`"), "{err}");
        let secret = write_file("[database]\nurl = \"postgres://u:pw@h/db\"\n");
        let err = Config::load(Some(&secret), &env(&[])).unwrap_err().to_string();
        assert!(err.contains("DATABASE_URL environment variable"), "{err}");
        std::fs::remove_file(typo).unwrap();
        std::fs::remove_file(secret).unwrap();
    }

    #[test]
    fn the_invoicing_supplier_comes_from_the_file_and_is_checked() {
        let supplier = r#"
[invoicing.supplier]
name = "Open EMSP GmbH"
vat_id = "DE123456789"
contact_name = "Billing"
phone = "+49 30 1234567"
email = "billing@open-emsp.example"
vat_rates = ["19", "7"]
default_vat_rate = "19"
invoice_series = "INV"
credit_note_series = "CN"
[invoicing.supplier.address]
street = "Torstrasse 1"
postal_code = "10119"
city = "Berlin"
country = "DE"
[invoicing.supplier.payment]
days = 14
iban = "DE02120300000000202051"
note = "Payable within 14 days."
"#;
        let good = write_file(supplier);
        let config = Config::load(Some(&good), &env(&[])).unwrap();
        let loaded = config.invoicing.supplier.unwrap();
        assert_eq!(loaded.vat_rates.len(), 2);
        assert_eq!(loaded.payment.days, 14);
        let bad = write_file(&supplier.replace("country = \"DE\"", "country = \"Germany\""));
        let err = Config::load(Some(&bad), &env(&[])).unwrap_err().to_string();
        assert!(err.contains("invoicing.supplier") && err.contains("country"), "{err}");
        assert!(Config::load(None, &env(&[])).unwrap().invoicing.supplier.is_none());
        std::fs::remove_file(good).unwrap();
        std::fs::remove_file(bad).unwrap();
    }

    #[test]
    fn payment_secrets_come_from_the_environment_only() {
        let config = Config::load(
            None,
            &env(&[
                ("EMSP_STRIPE_SECRET_KEY", "sk_test_123"),
                ("EMSP_STRIPE_WEBHOOK_SECRETS", "whsec_new, whsec_old"),
                ("EMSP_STRIPE_API_BASE", "http://127.0.0.1:12111/"),
            ]),
        )
        .unwrap();
        assert_eq!(config.payments.stripe_secret_key.as_deref(), Some("sk_test_123"));
        assert_eq!(config.payments.webhook_secrets, vec!["whsec_new".to_owned(), "whsec_old".to_owned()]);
        assert_eq!(config.payments.stripe_api_base, "http://127.0.0.1:12111/");
        assert!(!format!("{:?}", config.payments).contains("sk_test_123"), "secrets are redacted");
        let file = write_file("[payments]\nstripe_secret_key = \"sk_live_oops\"\n");
        let err = Config::load(Some(&file), &env(&[])).unwrap_err().to_string();
        assert!(err.contains("stripe_secret_key"), "{err}");
        std::fs::remove_file(file).unwrap();
        let err = Config::load(None, &env(&[("EMSP_STRIPE_API_BASE", "api.stripe.com")])).unwrap_err().to_string();
        assert!(err.contains("EMSP_STRIPE_API_BASE"), "{err}");
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let err = Config::load(None, &env(&[("EMSP_LISTEN", "localhost")])).unwrap_err().to_string();
        assert!(err.contains("EMSP_LISTEN"), "{err}");
        let err = Config::load(None, &env(&[("EMSP_PUBLIC_URL", "emsp.example")])).unwrap_err().to_string();
        assert!(err.contains("http://"), "{err}");
        let err = Config::load(None, &env(&[("EMSP_LOG_FORMAT", "xml")])).unwrap_err().to_string();
        assert!(err.contains("EMSP_LOG_FORMAT"), "{err}");
    }
}
