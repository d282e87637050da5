//! Fleet invoicing in the server: a monthly run reads a fleet's CDRs through a [`CdrSource`],
//! composes the documents (`emsp-invoicing`), checks each against the EN 16931 rules, and saves
//! them as drafts (preview) or issued, numbered documents (`emsp-store`).
//!
//! The source is [`StoredCdrs`], the CDRs CPOs sent us (one store query per run: CDRs whose token
//! has the fleet's `fleet_id`, by billing instant, without those an issued document bills), or
//! [`OcpiFileCdrs`] for an OCPI CDR export given on the command line.
//!
//! Late CDRs (a CDR that arrives after its month was invoiced): a run of month P bills every CDR
//! of the fleet not billed yet whose billing instant lies before the end of P and at most
//! [`LATE_CDR_MONTHS`] months before P; those of earlier months are marked late on their lines and
//! keep their real dates. A month whose invoice is issued is closed: running it again issues
//! nothing, so the issued invoice never changes and what arrived since goes on the next month's.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use emsp_invoicing::{BillingPeriod, CdrSource, Customer, RunInput, Skipped, SourceError, Supplier, UsageRecord};
use emsp_invoicing::{DocumentKind, DocumentStatus};
use emsp_store::{InvoiceRecord, RunMode, Store};

/// How many months before the period a run reaches back for CDRs not billed yet.
pub const LATE_CDR_MONTHS: u32 = 12;

/// The CDRs CPOs sent us (`cdrs`), a fleet's found through their tokens. CDRs already on an issued
/// document are left out by the query itself, so the look-back of a run costs nothing for months
/// that are billed.
#[derive(Clone)]
pub struct StoredCdrs {
    store: Store,
}

impl StoredCdrs {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl CdrSource for StoredCdrs {
    fn usage(&self, fleet_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageRecord>, SourceError> {
        let stored = self.store.unbilled_fleet_cdrs(fleet_id, from, to).map_err(|e| SourceError(e.to_string()))?;
        let mut records = Vec::with_capacity(stored.len());
        for cdr in &stored {
            let mut record = UsageRecord::from(&cdr.cdr);
            // A credit is billed by its receipt (what the query selected by), not by the CPO's clock.
            record.issued_at = Some(cdr.received_at);
            records.push(record);
        }
        Ok(records)
    }
}

/// CDRs read from OCPI CDR JSON files (a CPO's export), all taken as one fleet's: the source until
/// CDRs are stored, and for operators who bill an imported export.
pub struct OcpiFileCdrs {
    fleet_id: String,
    records: Vec<UsageRecord>,
}

impl OcpiFileCdrs {
    /// Reads every file; a CDR that cannot be read fails the whole source (a bill must be complete).
    pub fn read(fleet_id: &str, files: &[impl AsRef<Path>]) -> anyhow::Result<Self> {
        let options = emsp_ocpi::ImportOptions::default();
        let mut records = Vec::new();
        for file in files {
            let file = file.as_ref();
            let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let feed = emsp_ocpi::parse_cdrs(&bytes, &options).with_context(|| format!("{}", file.display()))?;
            if let Some(skipped) = feed.skipped.first() {
                anyhow::bail!("{}: a CDR cannot be read: {skipped}", file.display());
            }
            records.extend(feed.items.iter().map(UsageRecord::from));
        }
        Ok(Self { fleet_id: fleet_id.to_owned(), records })
    }
}

impl CdrSource for OcpiFileCdrs {
    fn usage(&self, fleet_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageRecord>, SourceError> {
        if fleet_id != self.fleet_id {
            return Ok(Vec::new());
        }
        Ok(self
            .records
            .iter()
            .filter(|r| {
                let instant = r.billing_instant();
                instant >= from && instant < to
            })
            .cloned()
            .collect())
    }
}

/// What one fleet's run did.
#[derive(Debug)]
pub struct FleetRun {
    pub fleet_id: String,
    pub documents: Vec<InvoiceRecord>,
    pub skipped: Vec<Skipped>,
    /// The month's invoice was issued before: nothing was billed (late CDRs wait for the next month).
    pub closed: bool,
}

/// Runs `period` for `fleet`: compose, check, save (see the module documentation for late CDRs and
/// closed months). Blocking (store calls): call it from `spawn_blocking` in async code.
pub fn run_fleet(
    store: &Store,
    supplier: &Supplier,
    fleet: &Customer,
    period: BillingPeriod,
    issue_date: NaiveDate,
    mode: RunMode,
    source: &dyn CdrSource,
) -> anyhow::Result<FleetRun> {
    let tz = fleet.tz()?;
    let closed = store
        .invoices_of_period(&fleet.id, period)?
        .iter()
        .any(|r| r.document.kind == DocumentKind::Invoice && r.status != DocumentStatus::Draft);
    if closed {
        tracing::info!(fleet = %fleet.id, period = %period, "invoice run: the month is already invoiced");
        return Ok(FleetRun { fleet_id: fleet.id.clone(), documents: Vec::new(), skipped: Vec::new(), closed: true });
    }
    let (from, _) = period.months_before(LATE_CDR_MONTHS).bounds(tz);
    let (_, to) = period.bounds(tz);
    let records = source.usage(&fleet.id, from, to)?;
    let mut keys: Vec<String> = records.iter().map(|r| r.cdr_id.clone()).collect();
    keys.extend(records.iter().filter_map(|r| r.credits_cdr.clone()));
    let billed = store.billed_cdrs(&keys)?;
    let input =
        RunInput { customer: fleet, supplier, period, issue_date, late_months: LATE_CDR_MONTHS, billed: &billed };
    let outcome = emsp_invoicing::compose_run(&input, &records)?;
    let documents: Vec<_> = outcome.invoice.into_iter().chain(outcome.credit_notes).collect();
    for document in &documents {
        let violations = emsp_invoicing::en16931::check(&emsp_invoicing::render_ubl(document)?)?;
        if let Some(first) = violations.first() {
            anyhow::bail!("fleet {}: the document breaks {}: {}", fleet.id, first.rule, first.message);
        }
    }
    let saved = if documents.is_empty() { Vec::new() } else { store.save_run(&fleet.id, period, &documents, mode)? };
    tracing::info!(
        fleet = %fleet.id,
        period = %period,
        documents = saved.len(),
        skipped = outcome.skipped.len(),
        issued = mode == RunMode::Issue,
        "invoice run"
    );
    Ok(FleetRun { fleet_id: fleet.id.clone(), documents: saved, skipped: outcome.skipped, closed: false })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ocpi_cdr_files_are_one_fleets_cdrs_of_the_period() {
        let example =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/ocpi-spec-examples/2.2.1/cdr_example.json");
        let source = OcpiFileCdrs::read("acme", &[example]).unwrap();
        let june: BillingPeriod = "2015-06".parse().unwrap();
        let (from, to) = june.bounds(chrono_tz::Europe::Brussels);
        let records = source.usage("acme", from, to).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].cdr_id, "BE*BEC*12345");
        assert_eq!(records[0].net, "4.00".parse().unwrap());
        assert!(source.usage("other", from, to).unwrap().is_empty(), "another fleet has none of them");
        let (from, to) = june.next().bounds(chrono_tz::Europe::Brussels);
        assert!(source.usage("acme", from, to).unwrap().is_empty(), "July has none");

        let broken = std::env::temp_dir().join(format!("emsp-broken-cdr-{}.json", std::process::id()));
        std::fs::write(&broken, br#"[{"id": "x"}]"#).unwrap();
        assert!(OcpiFileCdrs::read("acme", &[&broken]).is_err(), "a CDR that cannot be read fails the run");
        std::fs::remove_file(broken).unwrap();
    }
}
