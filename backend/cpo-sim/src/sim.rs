//! Starting and stopping a simulator, and the handle tests and the CLI hold while it runs.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::charging::session_json;
use crate::credentials::new_token;
use crate::faults::Faults;
use crate::options::{SimData, SimOptions, SimVersion, StatusSource};
use crate::received::Received;
use crate::replay::{REPLAY_SAMPLE, parse_replay};
use crate::state::{Inner, SimState};
use crate::status::{Source, run_pusher};
use crate::{files, generator, routes, v211};

/// A running simulator. Dropping it leaves the server running until the runtime ends; call `stop`.
pub struct RunningSim {
    pub addr: SocketAddr,
    /// `GET` it with `token_a` to start registering.
    pub versions_url: String,
    /// The credentials token A to hand to the EMSP.
    pub token_a: String,
    state: Arc<SimState>,
    server: ServerHandle,
}

/// Loads or generates the data, binds `options.listen` and serves until `stop`.
pub async fn start(options: SimOptions) -> anyhow::Result<RunningSim> {
    let rt = tokio::runtime::Handle::try_current().context("the simulator needs a tokio runtime")?;
    let (locations, tariffs) = load_data(&options)?;
    let listener = TcpListener::bind(options.listen).with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    let base_url = options.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let base_url = base_url.trim_end_matches('/').to_owned();
    let token_a = options.token_a.clone().unwrap_or_else(new_token);
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .context("cannot build the http client")?;
    let mut inner = Inner { original_token_a: token_a.clone(), token_a: Some(token_a.clone()), ..Inner::default() };
    let (location_count, tariff_count) = (locations.len(), tariffs.len());
    inner.set_locations(locations);
    inner.tariffs = tariffs;
    let state = Arc::new(SimState {
        version: options.version,
        party: options.party.clone(),
        base_url,
        page_limit: options.page_limit.max(1),
        charging: options.charging.clone(),
        faults: Arc::new(Faults::default()),
        rt,
        http,
        inner: parking_lot::Mutex::new(inner),
    });

    let data = web::Data::from(state.clone());
    let version = options.version.as_str();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
            .wrap(routes::normalize_path())
            .configure(|cfg| routes::configure(cfg, version))
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .context("cannot start the http server")?
    .run();
    let handle = server.handle();
    tokio::spawn(server);

    if options.status_rate_per_s > 0.0 {
        let source = match &options.status_source {
            StatusSource::Random => Source::random(options.seed),
            StatusSource::Replay(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the replay file {}", path.display()))?;
                Source::replay(parse_replay(&text)?, state.inner.lock().evse_keys().len())
            }
            StatusSource::ReplaySample => {
                Source::replay(parse_replay(REPLAY_SAMPLE)?, state.inner.lock().evse_keys().len())
            }
        };
        let pusher_state = state.clone();
        state.spawn(run_pusher(pusher_state, options.status_rate_per_s, source));
    }
    let versions_url = state.versions_url();
    tracing::info!(
        %addr,
        %versions_url,
        version = options.version.as_str(),
        locations = location_count,
        tariffs = tariff_count,
        "cpo simulator listening"
    );
    Ok(RunningSim { addr, versions_url, token_a, state, server: handle })
}

fn load_data(options: &SimOptions) -> anyhow::Result<(Vec<serde_json::Value>, Vec<serde_json::Value>)> {
    match &options.data {
        SimData::Generated { locations } => {
            let generated = generator::generate(*locations, options.seed, &options.party);
            Ok(match options.version {
                SimVersion::V2_2_1 => (generated.locations, generated.tariffs),
                SimVersion::V2_1_1 => (
                    generated.locations.iter().map(v211::location).collect(),
                    generated.tariffs.iter().map(v211::tariff).collect(),
                ),
            })
        }
        SimData::Files(paths) => {
            let loaded = files::load(paths, &options.party, options.version)?;
            Ok((loaded.locations, loaded.tariffs))
        }
    }
}

impl RunningSim {
    /// Stops the HTTP server and every background task (status pushes, sessions).
    pub async fn stop(self) {
        let tasks = std::mem::take(&mut self.state.inner.lock().tasks);
        for task in tasks {
            task.abort();
        }
        self.server.stop(true).await;
        tracing::info!(addr = %self.addr, "cpo simulator stopped");
    }

    /// The live fault switches.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// A snapshot of what the simulator received and sent so far.
    pub fn received(&self) -> Received {
        let inner = self.state.inner.lock();
        Received::snapshot(&inner, |session| session_json(&self.state, session))
    }

    /// The current state of one location as the simulator serves it (pushed statuses included).
    pub fn location(&self, id: &str) -> Option<serde_json::Value> {
        self.state.inner.lock().location(id).cloned()
    }

    /// Every `(location id, EVSE uid)` the simulator serves, in order.
    pub fn evses(&self) -> Vec<(String, String)> {
        self.state.inner.lock().evse_keys()
    }

    /// Changes an EVSE's status now, as a charger would, and pushes it to the registered EMSP (for
    /// tests that need one status change at a known moment). False when the EVSE does not exist.
    pub async fn push_status(&self, location_id: &str, evse_uid: &str, status: &str) -> bool {
        if self.state.inner.lock().evse(location_id, evse_uid).is_none() {
            return false;
        }
        let state = self.state.clone();
        let (location_id, evse_uid, status) = (location_id.to_owned(), evse_uid.to_owned(), status.to_owned());
        let task = self.state.rt.spawn(async move {
            crate::status::set_and_push_status(&state, &location_id, &evse_uid, &status).await;
        });
        task.await.is_ok()
    }

    /// PUTs location `id` as we serve it to the EMSP's locations receiver
    /// (`{locations}/{cc}/{pid}/{id}`). `Ok(false)` when we serve no such location.
    pub async fn push_location(&self, id: &str) -> anyhow::Result<bool> {
        self.push_object("locations", id).await
    }

    /// PUTs tariff `id` to the EMSP's tariffs receiver (`{tariffs}/{cc}/{pid}/{id}`).
    pub async fn push_tariff(&self, id: &str) -> anyhow::Result<bool> {
        self.push_object("tariffs", id).await
    }

    async fn push_object(&self, module: &'static str, id: &str) -> anyhow::Result<bool> {
        let state = self.state.clone();
        let id = id.to_owned();
        let task = self.state.rt.spawn(async move { crate::status::push_object(&state, module, &id).await });
        match task.await.context("push task failed")? {
            None => Ok(false),
            Some(true) => Ok(true),
            Some(false) => anyhow::bail!("the emsp did not take the {module} object (see the log)"),
        }
    }

    /// A driver presents card `uid` at an EVSE: charging starts if our copy of the token is
    /// whitelisted `ALWAYS`, or if the EMSP allows it in real time (`POST {tokens}/{uid}/authorize`).
    pub async fn swipe(&self, uid: &str, location_id: &str, evse_uid: &str) -> anyhow::Result<crate::SwipeOutcome> {
        let state = self.state.clone();
        let (uid, location_id, evse_uid) = (uid.to_owned(), location_id.to_owned(), evse_uid.to_owned());
        let task = self.state.rt.spawn(async move { crate::swipe::swipe(state, &uid, &location_id, &evse_uid).await });
        task.await.context("swipe task failed")?.context("real-time authorization failed")
    }

    /// The CPO registers with an EMSP (POSTs our credentials to the EMSP's credentials endpoint
    /// using the token A the EMSP handed out).
    pub async fn register_with(&self, versions_url: &str, token_a: &str) -> anyhow::Result<()> {
        let state = self.state.clone();
        let (url, token) = (versions_url.to_owned(), token_a.to_owned());
        let task = self.state.rt.spawn(async move { crate::credentials::register_with(&state, &url, &token).await });
        task.await.context("registration task failed")?.with_context(|| format!("cannot register with {versions_url}"))
    }
}
