//! Pulling locations and tariffs from CPOs that offer them (OCPI Sender interfaces).
//!
//! A pull follows `Link: <...>; rel="next"` exactly as given until there is none, stopping on a
//! link loop or after a page cap. One bad object is skipped (logged with the partner, object id and
//! JSON path), never the page. Incremental pulls ask for `date_from` = the start of the last
//! successful pull of the partner, recorded only when every module succeeded: a partner that is
//! down or slow is simply asked for the same window again in the next cycle, so nothing is lost.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use emsp_domain::PartyId;
use emsp_ocpi::{ImportOptions, OcpiVersion};
use emsp_store::{Partner, PartnerStatus, WriteOutcome};
use rand::Rng;
use serde_json::Value;
use tokio::sync::watch;

use crate::client::{Target, TokenEncoding};
use crate::error::RoamingError;
use crate::transport::Roaming;

/// Modules we pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    Locations,
    Tariffs,
}

impl Module {
    pub fn identifier(self) -> &'static str {
        match self {
            Module::Locations => "locations",
            Module::Tariffs => "tariffs",
        }
    }
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Everything, ignoring the last successful pull.
    pub full: bool,
    /// Pages at most per module; a partner that never stops is cut off here.
    pub max_pages: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self { full: false, max_pages: 10_000 }
    }
}

/// Figures of one module's pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleReport {
    pub pages: usize,
    pub received: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub rejected: usize,
    pub warnings: usize,
    /// `X-Total-Count` of the first page, when the partner sends it.
    pub total_count: Option<u64>,
    /// Why the pull stopped before the last page (a link loop, the page cap).
    pub cut_short: Option<String>,
}

/// Progress of a pull, for progress bars and logs.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub module: Module,
    pub pages: usize,
    pub received: usize,
    pub total_count: Option<u64>,
}

/// What a pull of one partner did.
#[derive(Debug, Clone, Default)]
pub struct PullReport {
    pub partner_id: String,
    pub locations: Option<ModuleReport>,
    pub tariffs: Option<ModuleReport>,
    pub elapsed: Duration,
}

fn endpoint(partner: &Partner, module: Module) -> Option<String> {
    partner
        .endpoints
        .iter()
        .find(|e| {
            e.identifier == module.identifier()
                && e.role.as_deref().is_none_or(|role| role.eq_ignore_ascii_case("SENDER"))
        })
        .map(|e| e.url.clone())
}

/// Pulls every module the partner offers; records the pull as the partner's last success only when
/// all of them succeeded.
pub async fn pull_partner(
    roaming: &Roaming,
    partner_id: &str,
    options: &PullOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<PullReport, RoamingError> {
    let started = Instant::now();
    let started_at = Utc::now();
    let store = roaming.store.clone();
    let id = partner_id.to_owned();
    let (partner, token, parties) = tokio::task::spawn_blocking(move || {
        let partner = store.get_partner(&id)?;
        let token = store.outgoing_token(&id)?;
        let parties = store.partner_parties(&id)?;
        Ok::<_, emsp_store::StoreError>((partner, token, parties))
    })
    .await
    .map_err(|e| RoamingError::Unreachable { url: String::new(), reason: e.to_string() })??;
    let partner = partner.ok_or_else(|| RoamingError::MissingEndpoints(format!("no partner {partner_id}")))?;
    let token = token
        .ok_or_else(|| RoamingError::MissingEndpoints(format!("partner {partner_id} has no token for us to use")))?;
    if partner.status != PartnerStatus::Registered {
        return Err(RoamingError::MissingEndpoints(format!("partner {partner_id} is not registered")));
    }
    let version = partner.version.as_deref().and_then(|v| OcpiVersion::parse(v).ok());
    let default_party = parties
        .iter()
        .find(|p| p.role.eq_ignore_ascii_case("CPO"))
        .and_then(|p| PartyId::parse(&format!("{}{}", p.country_code, p.party_id)).ok());
    let date_from = if options.full { None } else { partner.last_pull_at.map(|t| t.and_utc()) };
    let context = Context {
        roaming,
        partner: &partner,
        token: &token,
        encoding: TokenEncoding::choose(partner.token_encoding.as_deref(), version),
        import: ImportOptions { default_party, version },
        date_from,
        options,
        progress,
    };
    let mut report = PullReport { partner_id: partner.id.clone(), ..PullReport::default() };
    let result = async {
        if let Some(url) = endpoint(&partner, Module::Locations) {
            report.locations = Some(context.pull(Module::Locations, &url).await?);
        }
        if let Some(url) = endpoint(&partner, Module::Tariffs) {
            report.tariffs = Some(context.pull(Module::Tariffs, &url).await?);
        }
        Ok::<(), RoamingError>(())
    }
    .await;
    let store = roaming.store.clone();
    let id = partner.id.clone();
    let outcome = match &result {
        Ok(()) => tokio::task::spawn_blocking(move || store.record_pull_success(&id, started_at)).await,
        Err(error) => {
            let message = error.to_string();
            tokio::task::spawn_blocking(move || store.record_partner_error(&id, &message)).await
        }
    };
    if let Ok(Err(error)) = outcome {
        tracing::error!(%error, partner = %partner.id, "could not record the pull");
    }
    result?;
    report.elapsed = started.elapsed();
    Ok(report)
}

struct Context<'a> {
    roaming: &'a Roaming,
    partner: &'a Partner,
    token: &'a str,
    encoding: TokenEncoding,
    import: ImportOptions,
    date_from: Option<DateTime<Utc>>,
    options: &'a PullOptions,
    progress: &'a (dyn Fn(Progress) + Send + Sync),
}

impl Context<'_> {
    async fn pull(&self, module: Module, endpoint: &str) -> Result<ModuleReport, RoamingError> {
        let mut report = ModuleReport::default();
        let mut url = match self.date_from {
            Some(from) => {
                let separator = if endpoint.contains('?') { '&' } else { '?' };
                format!(
                    "{endpoint}{separator}date_from={}",
                    from.to_rfc3339_opts(SecondsFormat::Secs, true).replace('+', "%2B")
                )
            }
            None => endpoint.to_owned(),
        };
        let mut visited = HashSet::new();
        let target = Target { token: self.token, encoding: self.encoding, to: None };
        // The page being stored while the next one is fetched: the partner's and our HTTP work
        // overlaps the database's. Pages are still stored one after the other, in order.
        let mut storing: Option<StoreTask> = None;
        loop {
            visited.insert(url.clone());
            let page = self.roaming.client.get::<Value>(&url, &target).await?;
            report.pages += 1;
            if report.pages == 1 {
                report.total_count = page.total_count;
            }
            if let Some(task) = storing.take() {
                self.finish_page(module, task, &mut report).await?;
            }
            storing = Some(self.start_page(module, page.data, &mut report)?);
            (self.progress)(Progress {
                module,
                pages: report.pages,
                received: report.received,
                total_count: report.total_count,
            });
            if report.pages % 20 == 0 {
                tracing::info!(partner = %self.partner.id, module = module.identifier(), pages = report.pages, received = report.received, total = ?report.total_count, "pulling");
            }
            let Some(next) = page.next else { break };
            if visited.contains(&next) {
                report.cut_short = Some(format!("the Link header points back to {next}"));
                tracing::warn!(partner = %self.partner.id, module = module.identifier(), next, "link loop, pull stopped");
                break;
            }
            if report.pages >= self.options.max_pages {
                report.cut_short = Some(format!("stopped after {} pages", report.pages));
                tracing::warn!(partner = %self.partner.id, module = module.identifier(), pages = report.pages, "page cap reached, pull stopped");
                break;
            }
            url = next;
        }
        if let Some(task) = storing.take() {
            self.finish_page(module, task, &mut report).await?;
        }
        tracing::info!(partner = %self.partner.id, module = module.identifier(), ?report, "pull finished");
        Ok(report)
    }

    /// Parses and stores one page on the blocking pool (one transaction for its locations).
    fn start_page(&self, module: Module, data: Value, report: &mut ModuleReport) -> Result<StoreTask, RoamingError> {
        report.received += data.as_array().map_or(0, Vec::len);
        let partner_id = self.partner.id.clone();
        let store = self.roaming.store.clone();
        let import = self.import.clone();
        Ok(tokio::task::spawn_blocking(move || -> Result<PageOutcome, String> {
            let mut results = Vec::new();
            let (skipped, warnings) = match module {
                Module::Locations => {
                    let feed = emsp_ocpi::locations_of_document(data, &import).map_err(|e| e.to_string())?;
                    // One transaction per page: a commit per location costs a disk flush each.
                    let outcomes = store.upsert_locations(&feed.items, Some(&partner_id));
                    for (location, outcome) in feed.items.iter().zip(outcomes) {
                        results.push(outcome.map_err(|e| format!("{}: {e}", location.key())));
                    }
                    (feed.skipped, feed.warnings.len())
                }
                Module::Tariffs => {
                    let feed = emsp_ocpi::tariffs_of_document(data, &import).map_err(|e| e.to_string())?;
                    for tariff in &feed.items {
                        results.push(
                            store
                                .upsert_tariff(tariff, Some(&partner_id))
                                .map_err(|e| format!("{}: {e}", tariff.key())),
                        );
                    }
                    (feed.skipped, feed.warnings.len())
                }
            };
            Ok(PageOutcome { results, skipped, warnings })
        }))
    }

    /// Waits for a page's store and counts (and logs) what it did.
    async fn finish_page(
        &self,
        module: Module,
        task: StoreTask,
        report: &mut ModuleReport,
    ) -> Result<(), RoamingError> {
        let outcome = task.await.map_err(|e| RoamingError::Malformed { url: String::new(), reason: e.to_string() })?;
        let page = outcome.map_err(|reason| RoamingError::Malformed { url: String::new(), reason })?;
        report.warnings += page.warnings;
        for skipped in page.skipped {
            report.skipped += 1;
            let id = skipped.id.unwrap_or_default();
            tracing::warn!(partner = %self.partner.id, module = module.identifier(), object = %id, path = %skipped.path, reason = %skipped.reason, "object skipped");
        }
        for result in page.results {
            match result {
                Ok(WriteOutcome::Created) => report.created += 1,
                Ok(WriteOutcome::Updated) => report.updated += 1,
                Ok(WriteOutcome::Unchanged) => report.unchanged += 1,
                Err(reason) if reason.contains("database unavailable") => {
                    return Err(RoamingError::Store(emsp_store::StoreError::Unavailable(reason)));
                }
                Err(reason) => {
                    report.rejected += 1;
                    tracing::warn!(partner = %self.partner.id, module = module.identifier(), %reason, "object rejected");
                }
            }
        }
        Ok(())
    }
}

/// A page being parsed and stored on the blocking pool.
type StoreTask = tokio::task::JoinHandle<Result<PageOutcome, String>>;

/// What storing one page did: a result per object, the objects the reader skipped, its warnings.
struct PageOutcome {
    results: Vec<Result<WriteOutcome, String>>,
    skipped: Vec<emsp_ocpi::Skipped>,
    warnings: usize,
}

/// Pulls every registered partner that offers locations or tariffs, once.
pub async fn pull_all(roaming: &Roaming) {
    let store = roaming.store.clone();
    let partners = match tokio::task::spawn_blocking(move || store.list_partners()).await {
        Ok(Ok(partners)) => partners,
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot list partners to pull");
            return;
        }
        Err(error) => {
            tracing::error!(%error, "listing partners panicked");
            return;
        }
    };
    for partner in &partners {
        let offers = endpoint(partner, Module::Locations).is_some() || endpoint(partner, Module::Tariffs).is_some();
        if partner.status != PartnerStatus::Registered || !offers {
            continue;
        }
        if let Err(error) = pull_partner(roaming, &partner.id, &PullOptions::default(), &|_| {}).await {
            tracing::warn!(partner = %partner.id, %error, "pull failed; retried next cycle");
        }
    }
    for partner in &partners {
        if partner.status == PartnerStatus::Registered {
            pull_charging_of(roaming, partner).await;
        }
    }
    // Tokens whose push failed since the last cycle (and every token, to a new partner).
    crate::tokens::repush(roaming).await;
}

/// Sessions and CDRs a partner offers as Sender, since its last successful pull (the last day for
/// a partner never pulled): what its pushes may have missed. Each object takes the push path, so
/// what is already stored changes nothing.
async fn pull_charging_of(roaming: &Roaming, partner: &Partner) {
    let since = partner.last_pull_at.map(|t| t.and_utc()).unwrap_or_else(|| Utc::now() - chrono::Duration::days(1));
    for module in ["sessions", "cdrs"] {
        if crate::sessions::sender_endpoint(partner, module).is_none() {
            continue;
        }
        match crate::sessions::pull_charging(roaming, &partner.id, module, since).await {
            Ok(report) => {
                tracing::info!(partner = %partner.id, module, received = report.received, stored = report.stored, "charging pull done");
            }
            Err(error) => {
                tracing::warn!(partner = %partner.id, module, %error, "charging pull failed; retried next cycle")
            }
        }
    }
}

/// Pulls every partner every `interval` (with up to 10 % jitter so replicas and partners do not
/// synchronise) until `shutdown` turns true.
pub async fn schedule(roaming: &Roaming, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        let jitter = rand::rng().random_range(0.0..0.1);
        let wait = interval.mul_f64(1.0 + jitter);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        pull_all(roaming).await;
    }
}
