//! The server under test.

use std::collections::HashMap;

use emsp_server::{Config, RunOptions, RunningServer};
use emsp_store::testing::TestDb;

/// Which database a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A running server and its database; both go away when dropped or stopped.
pub struct TestApp {
    server: Option<RunningServer>,
    db: TestDb,
    pub base_url: String,
    pub client: reqwest::Client,
    /// The extra configuration it was started with (kept for restarts).
    settings: Vec<(String, String)>,
}

impl TestApp {
    /// Starts a server on `backend`, or returns `None` for PostgreSQL when none is configured.
    pub async fn start(backend: TestBackend) -> Option<Self> {
        let db = Self::database(backend)?;
        Some(Self::start_on(db).await)
    }

    /// A fresh database of `backend` to fill before starting, or `None` for PostgreSQL when none
    /// is configured.
    pub fn database(backend: TestBackend) -> Option<TestDb> {
        match backend {
            TestBackend::Sqlite => Some(TestDb::sqlite()),
            TestBackend::Postgres => TestDb::postgres(),
        }
    }

    /// Starts a server on a database prepared by the test.
    pub async fn start_on(db: TestDb) -> Self {
        let url = db.url().to_owned();
        Self::start_with_url(db, &url).await
    }

    /// Starts a server on a database prepared by the test, with extra configuration.
    pub async fn start_configured(db: TestDb, settings: &[(&str, &str)]) -> Self {
        let url = db.url().to_owned();
        Self::launch(db, &url, settings).await
    }

    /// Starts a server whose `DATABASE_URL` is `url` (for instance through a [`crate::TcpProxy`]);
    /// `db` is kept alive for the app's lifetime.
    pub async fn start_with_url(db: TestDb, url: &str) -> Self {
        Self::launch(db, url, &[]).await
    }

    async fn launch(db: TestDb, url: &str, settings: &[(&str, &str)]) -> Self {
        let mut env: HashMap<String, String> = [
            ("EMSP_LISTEN", "127.0.0.1:0"),
            ("EMSP_WORKERS", "2"),
            ("EMSP_SHUTDOWN_TIMEOUT_S", "2"),
            ("EMSP_DB_CONNECT_TIMEOUT_S", "1"),
            ("EMSP_DB_STARTUP_TIMEOUT_S", "5"),
            ("EMSP_SECRET_KEY", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="),
            ("DATABASE_URL", url),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let config = Config::load(None, &env).unwrap_or_else(|e| panic!("test config: {e}"));
        let server = emsp_server::start(config, RunOptions { handle_signals: false })
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e:#}"));
        let base_url = format!("http://{}", server.addr);
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_else(|e| panic!("http client: {e}"));
        let settings = settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Self { server: Some(server), db, base_url, client, settings }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// The server's roaming layer, to act as ops would from the command line.
    pub fn roaming(&self) -> emsp_server::app::RoamingHandle {
        match &self.server {
            Some(server) => server.roaming.clone(),
            None => panic!("the server was stopped"),
        }
    }

    /// The server's search index, to check what the change feed delivered.
    pub fn index(&self) -> std::sync::Arc<emsp_search_index::SearchIndex> {
        match &self.server {
            Some(server) => server.index.clone(),
            None => panic!("the server was stopped"),
        }
    }

    /// The server's driver API, to run subscriptions in-process.
    pub fn schema(&self) -> actix_web::web::Data<emsp_graphql::EmspSchema> {
        match &self.server {
            Some(server) => server.schema.clone(),
            None => panic!("the server was stopped"),
        }
    }

    /// The server's payment flows, to act as the charging flow will.
    pub fn payments(&self) -> emsp_payments::Payments {
        match &self.server {
            Some(server) => server.payments.payments.clone().unwrap_or_else(|| panic!("payments are off")),
            None => panic!("the server was stopped"),
        }
    }

    /// The server's ad-hoc charging flow (card payments), to drive it as the API does.
    pub fn adhoc(&self) -> std::sync::Arc<emsp_server::adhoc::AdHocFlow> {
        match &self.server {
            Some(server) => server.payments.adhoc.clone().unwrap_or_else(|| panic!("payments are off")),
            None => panic!("the server was stopped"),
        }
    }

    /// Stops the server and starts a new one on the same database, configuration and address
    /// (partners keep reaching it at the URL they were given): what a process restart sees.
    pub async fn restart(mut self) -> Self {
        let listen = match &self.server {
            Some(server) => server.addr.to_string(),
            None => panic!("the server was stopped"),
        };
        if let Some(server) = self.server.take() {
            server.stop().await.unwrap_or_else(|e| panic!("server did not stop cleanly: {e:#}"));
        }
        let url = self.db.url().to_owned();
        let mut settings = std::mem::take(&mut self.settings);
        settings.retain(|(k, _)| k != "EMSP_LISTEN" && k != "EMSP_PUBLIC_URL");
        settings.push(("EMSP_LISTEN".to_owned(), listen));
        settings.push(("EMSP_PUBLIC_URL".to_owned(), self.base_url.clone()));
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Self::launch(self.db, &url, &settings).await
    }

    /// Stops gracefully and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.unwrap_or_else(|e| panic!("server did not stop cleanly: {e:#}"));
        }
    }
}
