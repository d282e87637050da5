//! Connections: which database, how to reach it, the pool, migrations.
//!
//! One diesel codebase serves both backends through `#[derive(MultiConnection)]`. Where SQL really
//! differs (upserts, the change-feed lock) the code matches on [`DbConnection`] and runs the
//! backend's own dialect. Connections come from our own r2d2 manager rather than the derive's
//! `establish`, which tries every backend in turn and hides the real error (a PostgreSQL URL
//! would otherwise be opened as a SQLite file named `postgres:`).

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{Pool, PooledConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::crypto::TokenCipher;
use crate::error::{StoreError, StoreResult};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Runs `$body` with `$c` bound to the backend's own connection, for SQL that the multi-backend
/// connection cannot express (upserts): the query is type-checked once per backend.
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::database::DbConnection::Sqlite($c) => $body,
            $crate::database::DbConnection::Postgres($c) => $body,
        }
    };
}

pub(crate) use per_backend;

/// Runs `work` in a transaction meant to write. On SQLite it begins with `BEGIN IMMEDIATE`: a
/// deferred transaction that reads first and then writes fails at once with "database is locked"
/// when another writer got there in between (SQLite cannot wait there without risking deadlock),
/// while an immediate one takes the write lock up front and waits for it with the busy timeout.
pub(crate) fn write_transaction<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Sqlite = SqliteConnection;

    if let DbConnection::Postgres(_) = conn {
        return conn.transaction(work);
    }
    if let DbConnection::Sqlite(sqlite) = conn {
        AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    }
    let result = work(conn);
    if let DbConnection::Sqlite(sqlite) = conn {
        match &result {
            Ok(_) => <AnsiTransactionManager as TransactionManager<Sqlite>>::commit_transaction(sqlite)?,
            Err(_) => <AnsiTransactionManager as TransactionManager<Sqlite>>::rollback_transaction(sqlite)?,
        }
    }
    result
}

/// Like [`write_transaction`], for ephemeral data only (live EVSE status): on PostgreSQL the commit
/// does not wait for its WAL to reach the disk (`synchronous_commit = off` for this transaction
/// alone, set in the same round trip as `BEGIN`). The trade-off: if the PostgreSQL server itself
/// crashes, status changes acknowledged in its last moments (up to three `wal_writer_delay`s,
/// 600 ms by default) can be lost; the database stays consistent (the status row and its change
/// feed entry are lost together), and the CPO's next push or our next pull brings the status back.
/// Why it matters: change-feed appends hold an advisory lock until commit, so a commit that waits
/// for the disk would serialise every status push behind one fsync. Everything else (locations,
/// tariffs, partners) keeps durable commits.
pub(crate) fn ephemeral_write_transaction<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};

    let DbConnection::Postgres(pg) = conn else { return write_transaction(conn, work) };
    AnsiTransactionManager::begin_transaction_sql(pg, "BEGIN; SET LOCAL synchronous_commit TO OFF")?;
    let result = work(conn);
    if let DbConnection::Postgres(pg) = conn {
        match &result {
            Ok(_) => <AnsiTransactionManager as TransactionManager<PgConnection>>::commit_transaction(pg)?,
            Err(_) => <AnsiTransactionManager as TransactionManager<PgConnection>>::rollback_transaction(pg)?,
        }
    }
    result
}

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A parsed `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://path/to/file.sqlite` (relative) or `sqlite:///absolute/path.sqlite`.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`, passed to libpq as given.
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// Parses and checks a URL. An unknown scheme, or a SQLite file whose folder does not exist,
    /// is an error: we never create an empty database somewhere the operator did not mean.
    pub fn parse(url: &str) -> StoreResult<Self> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Self::sqlite(Path::new(path));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
        Err(StoreError::Config(format!(
            "DATABASE_URL scheme {scheme:?} is not supported: use sqlite://PATH (sqlite:///ABSOLUTE/PATH) or postgres://USER@HOST/DB"
        )))
    }

    /// A SQLite database file; its folder must exist.
    pub fn sqlite(path: &Path) -> StoreResult<Self> {
        if path.as_os_str().is_empty() {
            return Err(StoreError::Config("sqlite:// needs a file path".into()));
        }
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(StoreError::Config(format!(
                "the folder {} of the SQLite database does not exist; create it or point DATABASE_URL elsewhere",
                folder.display()
            )));
        }
        Ok(DatabaseUrl::Sqlite(path.to_owned()))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL without its password, for logs.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => redact_password(url),
        }
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// `url` with `sslmode=disable` added when it names a server on this machine and says nothing of
/// TLS. libpq's default (`prefer`) encrypts even on the loopback interface, where nothing can be
/// overheard; the encryption costs server and database CPU on every round trip. A URL that sets
/// `sslmode` (or `sslrootcert`, ...) is left as it is, so a local TLS proxy can still be used.
fn loopback_without_tls(url: &str) -> String {
    if url.contains("ssl") {
        return url.to_owned();
    }
    let Some((_, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        // No host at all: libpq uses the local Unix socket, which never uses TLS anyway.
        || host.is_empty();
    if !loopback {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

/// Opens connections for the pool, each set up for its backend.
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    connect_timeout: Duration,
}

impl ConnectionManager {
    fn connect_pg(&self, url: &str) -> diesel::ConnectionResult<PgConnection> {
        // libpq waits for the OS TCP timeout when a host does not answer; bound it.
        let url = if url.contains("connect_timeout=") {
            url.to_owned()
        } else {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}connect_timeout={}", self.connect_timeout.as_secs().max(1))
        };
        PgConnection::establish(&loopback_without_tls(&url))
    }
}

/// A connection of the pool, with what the pool needs to skip its liveness check.
///
/// Checking every connection out with a `SELECT 1` costs a round trip per store call: at a few
/// store calls per request that was a third of the database round trips of a real-time
/// authorization. A connection that was in use within the last [`FRESH_FOR`] and has seen no lost
/// connection since it was last checked is handed out without a check, as connection pools such
/// as HikariCP do. A lost connection anywhere (the server restarted, a proxy cut it) counts in
/// [`LOST_CONNECTIONS`]; every connection is then checked again on its next checkout, so the one
/// that failed is discarded and a restart costs at most the requests that were already running.
pub struct PoolConnection {
    conn: DbConnection,
    used_at: Instant,
    lost_seen: u64,
}

/// How long after its last use a connection is trusted without a check.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// Lost connections seen by this process (see [`PoolConnection`]).
static LOST_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// Counts `error` when it says the connection itself is gone.
pub(crate) fn note_error(error: &diesel::result::Error) {
    use diesel::result::{DatabaseErrorKind, Error};
    if matches!(
        error,
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)
            | Error::BrokenTransactionManager
    ) {
        LOST_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    }
}

impl Deref for PoolConnection {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl DerefMut for PoolConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// A connection checked out of the store's pool; back in the pool when dropped.
pub struct StoreConnection(PooledConnection<ConnectionManager>);

impl Deref for StoreConnection {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.0.conn
    }
}

impl DerefMut for StoreConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.0.conn
    }
}

impl PoolConnection {
    fn new(conn: DbConnection) -> Self {
        Self { conn, used_at: Instant::now(), lost_seen: LOST_CONNECTIONS.load(Ordering::Relaxed) }
    }

    /// Whether the pool may hand this connection out without a check.
    fn trusted(&self) -> bool {
        self.used_at.elapsed() < FRESH_FOR && self.lost_seen == LOST_CONNECTIONS.load(Ordering::Relaxed)
    }
}

impl diesel::r2d2::ManageConnection for ConnectionManager {
    type Connection = PoolConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PoolConnection, Self::Error> {
        let conn = match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_string_lossy();
                let mut conn = SqliteConnection::establish(&path).map_err(diesel::r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the one writer; the busy timeout makes a second
                // writer wait instead of failing at once; foreign keys are off by default in SQLite.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?;
                DbConnection::Sqlite(conn)
            }
            DatabaseUrl::Postgres(url) => {
                DbConnection::Postgres(self.connect_pg(url).map_err(diesel::r2d2::Error::ConnectionError)?)
            }
        };
        Ok(PoolConnection::new(conn))
    }

    fn is_valid(&self, conn: &mut PoolConnection) -> Result<(), Self::Error> {
        if conn.trusted() {
            return Ok(());
        }
        // Read the count before the check: a loss reported while it runs is checked next time.
        let lost_seen = LOST_CONNECTIONS.load(Ordering::Relaxed);
        conn.conn.ping().map_err(diesel::r2d2::Error::QueryError)?;
        conn.used_at = Instant::now();
        conn.lost_seen = lost_seen;
        Ok(())
    }

    fn has_broken(&self, conn: &mut PoolConnection) -> bool {
        // Back from a checkout: it was in use just now. A loss during that use moved the count
        // past `lost_seen`, so the next checkout still checks it.
        conn.used_at = Instant::now();
        conn.conn.is_broken()
    }
}

/// Logs pool errors (a database going away) once per failure at debug level: readiness and the
/// request that needed a connection report the outage; the pool's own retries would only repeat it.
#[derive(Debug)]
struct PoolErrorLogger;

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for PoolErrorLogger {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::debug!(%error, "database pool could not open a connection");
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: DatabaseUrl,
    /// Largest number of open connections.
    pub pool_size: u32,
    /// How long a caller waits for a connection before the database counts as unavailable.
    pub connect_timeout: Duration,
    /// Encrypts the tokens we use with partners. Without it those tokens cannot be stored.
    pub cipher: Option<TokenCipher>,
}

impl StoreOptions {
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url, pool_size: 10, connect_timeout: Duration::from_secs(5), cipher: None }
    }
}

/// The store: a connection pool and the repositories (implemented in the sibling modules).
#[derive(Clone)]
pub struct Store {
    pool: Pool<ConnectionManager>,
    backend: Backend,
    url: DatabaseUrl,
    pub(crate) cipher: Option<TokenCipher>,
    changes: Arc<tokio::sync::Notify>,
    pub(crate) charging_updates: tokio::sync::broadcast::Sender<crate::charging::ChargingUpdate>,
    /// Token changes committed by this process, for the push to CPOs (see [`Store::token_changes`]).
    pub(crate) token_events: tokio::sync::broadcast::Sender<crate::tokens::TokenChange>,
}

/// Pool figures for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub connections: u32,
    pub idle: u32,
    pub max_size: u32,
}

impl Store {
    /// Builds the pool without connecting: start-up decides how long to wait for the database
    /// (see [`Store::ping`]), and a store whose database is down still serves `/ready` as 503.
    pub fn open(options: StoreOptions) -> StoreResult<Self> {
        let backend = options.url.backend();
        // SQLite allows one writer at a time; more than a few connections only adds lock waits.
        let pool_size = match backend {
            Backend::Sqlite => options.pool_size.clamp(1, 8),
            Backend::Postgres => options.pool_size.max(1),
        };
        let manager = ConnectionManager { url: options.url.clone(), connect_timeout: options.connect_timeout };
        let pool = Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout)
            .test_on_check_out(true)
            .error_handler(Box::new(PoolErrorLogger))
            .build_unchecked(manager);
        Ok(Self {
            pool,
            backend,
            url: options.url,
            cipher: options.cipher,
            changes: Arc::new(tokio::sync::Notify::new()),
            charging_updates: tokio::sync::broadcast::channel(1024).0,
            token_events: tokio::sync::broadcast::channel(4096).0,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Signalled after every committed write of this process (and of its clones), so the one
    /// change-feed follower applies a local change at once instead of at its next poll (a signal
    /// while it is busy is kept for its next wait). Writes of other processes are found by polling.
    pub fn local_changes(&self) -> &tokio::sync::Notify {
        &self.changes
    }

    /// Runs `work` in a write transaction on a pooled connection, then wakes change followers.
    pub(crate) fn write<T>(&self, work: impl FnOnce(&mut DbConnection) -> StoreResult<T>) -> StoreResult<T> {
        let mut pooled = self.conn()?;
        let result = write_transaction(&mut pooled, work);
        if result.is_ok() {
            self.changes.notify_one();
        }
        result
    }

    /// [`Store::write`] for ephemeral data (see [`ephemeral_write_transaction`]).
    pub(crate) fn write_ephemeral<T>(&self, work: impl FnOnce(&mut DbConnection) -> StoreResult<T>) -> StoreResult<T> {
        let mut pooled = self.conn()?;
        let result = ephemeral_write_transaction(&mut pooled, work);
        if result.is_ok() {
            self.changes.notify_one();
        }
        result
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A pooled connection, waiting at most the configured timeout.
    pub fn conn(&self) -> StoreResult<StoreConnection> {
        Ok(StoreConnection(self.pool.get()?))
    }

    /// Checks that the database answers, waiting at most `timeout` for a connection.
    pub fn ping(&self, timeout: Duration) -> StoreResult<()> {
        let mut conn = self.pool.get_timeout(timeout)?;
        diesel::sql_query("SELECT 1").execute(&mut **conn)?;
        Ok(())
    }

    /// Applies pending migrations of this backend; returns the names of those applied.
    pub fn migrate(&self) -> StoreResult<Vec<String>> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            DbConnection::Sqlite(conn) => conn.run_pending_migrations(SQLITE_MIGRATIONS),
            DbConnection::Postgres(conn) => conn.run_pending_migrations(POSTGRES_MIGRATIONS),
        }
        .map_err(|error| StoreError::Migration(error.to_string()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    }

    /// Migrations not yet applied.
    pub fn pending_migrations(&self) -> StoreResult<Vec<String>> {
        let mut conn = self.conn()?;
        let pending = match &mut *conn {
            DbConnection::Sqlite(conn) => conn.pending_migrations(SQLITE_MIGRATIONS).map(migration_names),
            DbConnection::Postgres(conn) => conn.pending_migrations(POSTGRES_MIGRATIONS).map(migration_names),
        }
        .map_err(|error| StoreError::Migration(error.to_string()))?;
        Ok(pending)
    }

    pub fn pool_stats(&self) -> PoolStats {
        let state = self.pool.state();
        PoolStats { connections: state.connections, idle: state.idle_connections, max_size: self.pool.max_size() }
    }
}

fn migration_names<DB: diesel::backend::Backend>(
    pending: Vec<Box<dyn diesel::migration::Migration<DB>>>,
) -> Vec<String> {
    pending.iter().map(|migration| migration.name().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_supported_urls() {
        assert_eq!(DatabaseUrl::parse("postgres://postgres@127.0.0.1/test").unwrap().backend(), Backend::Postgres);
        assert_eq!(DatabaseUrl::parse("postgresql://u:p@h/db").unwrap().backend(), Backend::Postgres);
        let dir = std::env::temp_dir();
        let url = format!("sqlite://{}/emsp.sqlite", dir.display());
        assert_eq!(DatabaseUrl::parse(&url).unwrap(), DatabaseUrl::Sqlite(dir.join("emsp.sqlite")));
    }

    #[test]
    fn tls_is_left_off_only_for_servers_on_this_machine() {
        assert_eq!(
            loopback_without_tls("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
        );
        assert_eq!(
            loopback_without_tls("postgres://u:p@localhost/db?connect_timeout=5"),
            "postgres://u:p@localhost/db?connect_timeout=5&sslmode=disable"
        );
        assert_eq!(loopback_without_tls("postgres://[::1]:5432/db"), "postgres://[::1]:5432/db?sslmode=disable");
        for kept in [
            "postgres://u@db.example.com/emsp",
            "postgres://u@10.0.0.5:5432/emsp",
            "postgres://u@127.0.0.1/emsp?sslmode=require",
            "postgres://u@localhost.evil.example/emsp",
        ] {
            assert_eq!(loopback_without_tls(kept), kept);
        }
    }

    #[test]
    fn rejects_unknown_schemes_and_missing_folders() {
        let err = DatabaseUrl::parse("mysql://root@localhost/emsp").unwrap_err().to_string();
        assert!(err.contains("\"mysql\" is not supported"), "{err}");
        assert!(DatabaseUrl::parse("/var/lib/emsp.sqlite").is_err(), "a bare path has no scheme");
        let err = DatabaseUrl::parse("sqlite:///no/such/folder/emsp.sqlite").unwrap_err().to_string();
        assert!(err.contains("/no/such/folder") && err.contains("does not exist"), "{err}");
    }

    #[test]
    fn redacts_passwords() {
        let url = DatabaseUrl::parse("postgres://emsp:s3cret@db:5432/emsp").unwrap();
        assert_eq!(url.redacted(), "postgres://emsp:***@db:5432/emsp");
        assert!(!format!("{url:?}").contains("s3cret"));
    }
}
