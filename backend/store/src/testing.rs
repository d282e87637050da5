//! Throw-away databases for tests: a SQLite file in a temporary folder, or a PostgreSQL schema of
//! its own per test (so PostgreSQL tests run in parallel without sharing state).
//!
//! PostgreSQL is used when `DATABASE_URL` is a `postgres://` URL. Without it the PostgreSQL cases
//! are skipped, unless `EMSP_REQUIRE_POSTGRES=1` (CI) makes that a failure.

use std::path::PathBuf;

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};

use crate::crypto::TokenCipher;
use crate::database::{DatabaseUrl, Store, StoreOptions};

/// The PostgreSQL URL tests should use, if any. Panics when PostgreSQL is required but not given.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok().filter(|url| url.starts_with("postgres"));
    let required = std::env::var("EMSP_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true");
    if url.is_none() && required {
        panic!("EMSP_REQUIRE_POSTGRES is set but DATABASE_URL is not a postgres:// URL");
    }
    url
}

/// A database that disappears when dropped.
pub struct TestDb {
    store: Store,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Folder(PathBuf),
    Schema { admin_url: String, schema: String },
}

impl TestDb {
    /// A migrated SQLite database in a fresh temporary folder.
    pub fn sqlite() -> Self {
        let folder = std::env::temp_dir().join(format!("emsp-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&folder).unwrap_or_else(|e| panic!("cannot create {}: {e}", folder.display()));
        let url = format!("sqlite://{}", folder.join("emsp.sqlite").display());
        let store = open_migrated(&url);
        TestDb { store, url, cleanup: Cleanup::Folder(folder) }
    }

    /// A migrated PostgreSQL schema of its own, or `None` when no PostgreSQL is configured.
    pub fn postgres() -> Option<Self> {
        Some(Self::postgres_at(&postgres_url()?))
    }

    /// A migrated schema of its own in the PostgreSQL database at `admin_url` (benchmarks).
    pub fn postgres_at(admin_url: &str) -> Self {
        let admin_url = admin_url.to_owned();
        let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("PostgreSQL at DATABASE_URL is unreachable: {e}"));
        diesel::sql_query(format!("CREATE SCHEMA \"{schema}\""))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("cannot create schema {schema}: {e}"));
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-csearch_path%3D{schema}");
        let store = open_migrated(&url);
        TestDb { store, url, cleanup: Cleanup::Schema { admin_url, schema } }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The URL of this database, for starting a server on it.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A key for tests; production keys come from `EMSP_SECRET_KEY`.
pub fn test_cipher() -> TokenCipher {
    TokenCipher::from_key(&[7u8; 32])
}

fn open_migrated(url: &str) -> Store {
    let url = DatabaseUrl::parse(url).unwrap_or_else(|e| panic!("bad test database URL: {e}"));
    let mut options = StoreOptions::new(url);
    options.pool_size = 4;
    options.cipher = Some(test_cipher());
    let store = Store::open(options).unwrap_or_else(|e| panic!("cannot open test store: {e}"));
    store.migrate().unwrap_or_else(|e| panic!("cannot migrate test store: {e}"));
    store
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Folder(folder) => {
                let _ = std::fs::remove_dir_all(folder);
            }
            Cleanup::Schema { admin_url, schema } => {
                if let Ok(mut admin) = PgConnection::establish(admin_url) {
                    let _ =
                        diesel::sql_query(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).execute(&mut admin);
                }
            }
        }
    }
}
