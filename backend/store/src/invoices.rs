//! Fleets, their members, and the invoices and credit notes of the monthly runs.
//!
//! A run is saved in one write transaction: the fleet's drafts of that month (and drafts of other
//! months that hold one of its CDRs, a late CDR previewed before) are replaced, and when
//! it issues, each document takes the next number of its series and year from `document_counters`
//! (a conditional increment of one row; PostgreSQL's row lock and SQLite's write lock make
//! concurrent runs take turns, and a run that rolls back gives its number back, so numbers have no
//! gaps). The unique indexes decide races: one invoice per fleet and month, one document per CDR;
//! the loser of a race gets [`StoreError::Conflict`] and leaves nothing behind. Issued documents
//! are kept as the JSON of their [`Document`] and never change (database triggers refuse it).

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use emsp_domain::{Currency, ValidationError};
use emsp_invoicing::{
    Address, BillingPeriod, Customer, Document, DocumentKind, DocumentStatus, PrecedingInvoice, Totals,
};

use crate::accounts::Role;
use crate::database::{DbConnection, Store, per_backend};
use crate::error::{StoreError, StoreResult};
use crate::schema::{document_counters, fleet_members, fleets, invoice_lines, invoices};

/// What a member of a fleet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FleetRole {
    Driver,
    FleetManager,
}

impl FleetRole {
    pub fn as_str(self) -> &'static str {
        match self {
            FleetRole::Driver => "DRIVER",
            FleetRole::FleetManager => "FLEET_MANAGER",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "DRIVER" => Some(FleetRole::Driver),
            "FLEET_MANAGER" => Some(FleetRole::FleetManager),
            _ => None,
        }
    }
}

/// A fleet as stored: the customer data of its invoices.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetRecord {
    pub customer: Customer,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A member of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetMember {
    pub fleet_id: String,
    pub user_id: String,
    pub role: FleetRole,
}

/// An invoice or credit note as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceRecord {
    /// Random and unguessable: download URLs carry it.
    pub id: String,
    pub fleet_id: String,
    pub status: DocumentStatus,
    pub preceding_invoice_id: Option<String>,
    /// The document exactly as issued (its number included).
    pub document: Document,
    pub created_at: NaiveDateTime,
    pub issued_at: Option<NaiveDateTime>,
}

impl InvoiceRecord {
    pub fn kind(&self) -> DocumentKind {
        self.document.kind
    }

    pub fn totals(&self) -> &Totals {
        &self.document.totals
    }
}

/// Whether a saved run stays a draft or is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Replaces the month's drafts; numbers nothing.
    Preview,
    /// Replaces the month's drafts with numbered, issued documents.
    Issue,
}

#[derive(Queryable)]
struct FleetRow {
    id: String,
    name: String,
    street: String,
    additional_address: Option<String>,
    postal_code: String,
    city: String,
    country: String,
    vat_id: Option<String>,
    time_zone: String,
    currency: String,
    billing_email: String,
    buyer_reference: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl FleetRow {
    fn into_record(self) -> StoreResult<FleetRecord> {
        let currency = Currency::new(&self.currency)
            .map_err(|e| StoreError::Corrupt { key: format!("fleet {}", self.id), reason: e.to_string() })?;
        Ok(FleetRecord {
            customer: Customer {
                id: self.id,
                name: self.name,
                address: Address {
                    street: self.street,
                    additional: self.additional_address,
                    postal_code: self.postal_code,
                    city: self.city,
                    country: self.country,
                },
                vat_id: self.vat_id,
                time_zone: self.time_zone,
                currency,
                billing_email: self.billing_email,
                buyer_reference: self.buyer_reference,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Queryable)]
struct InvoiceRow {
    id: String,
    fleet_id: String,
    status: String,
    preceding_invoice_id: Option<String>,
    document: String,
    created_at: NaiveDateTime,
    issued_at: Option<NaiveDateTime>,
}

type InvoiceColumns = (
    invoices::id,
    invoices::fleet_id,
    invoices::status,
    invoices::preceding_invoice_id,
    invoices::document,
    invoices::created_at,
    invoices::issued_at,
);

const INVOICE_COLUMNS: InvoiceColumns = (
    invoices::id,
    invoices::fleet_id,
    invoices::status,
    invoices::preceding_invoice_id,
    invoices::document,
    invoices::created_at,
    invoices::issued_at,
);

impl InvoiceRow {
    fn into_record(self) -> StoreResult<InvoiceRecord> {
        let corrupt = |reason: String| StoreError::Corrupt { key: format!("invoice {}", self.id), reason };
        let status = DocumentStatus::parse(&self.status).ok_or_else(|| corrupt(format!("status {}", self.status)))?;
        let document: Document = serde_json::from_str(&self.document).map_err(|e| corrupt(e.to_string()))?;
        Ok(InvoiceRecord {
            id: self.id,
            fleet_id: self.fleet_id,
            status,
            preceding_invoice_id: self.preceding_invoice_id,
            document,
            created_at: self.created_at,
            issued_at: self.issued_at,
        })
    }
}

fn conflict_on_unique(error: DieselError, what: &str) -> StoreError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Conflict(what.to_owned()),
        other => StoreError::Database(other),
    }
}

fn now() -> NaiveDateTime {
    // PostgreSQL keeps microseconds: records read back must equal the ones returned.
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// Takes the next number of `series` in `year`. Must run inside the issuing write transaction.
fn next_number(conn: &mut DbConnection, series: &str, year: i32) -> StoreResult<i64> {
    per_backend!(conn, |c| diesel::insert_into(document_counters::table)
        .values((
            document_counters::series.eq(series),
            document_counters::year.eq(year),
            document_counters::last_number.eq(0_i64),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    diesel::update(document_counters::table.find((series, year)))
        .set(document_counters::last_number.eq(document_counters::last_number + 1_i64))
        .execute(conn)?;
    Ok(document_counters::table.find((series, year)).select(document_counters::last_number).first(conn)?)
}

/// The printed number: `INV-2026-000042`.
pub fn format_number(series: &str, year: i32, number: i64) -> String {
    format!("{series}-{year}-{number:06}")
}

impl Store {
    /// Creates a fleet. Its data must make a valid invoice customer; a taken id is a conflict.
    pub fn create_fleet(&self, fleet: &Customer) -> StoreResult<FleetRecord> {
        fleet.validate().map_err(|e| StoreError::Invalid(ValidationError::new("fleet", e.to_string())))?;
        if fleet.id.trim().is_empty() {
            return Err(StoreError::Invalid(ValidationError::new("fleet.id", "is required")));
        }
        let now = now();
        let record = FleetRecord { customer: fleet.clone(), created_at: now, updated_at: now };
        self.write(|conn| {
            diesel::insert_into(fleets::table)
                .values((
                    fleets::id.eq(&fleet.id),
                    fleets::name.eq(&fleet.name),
                    fleets::street.eq(&fleet.address.street),
                    fleets::additional_address.eq(&fleet.address.additional),
                    fleets::postal_code.eq(&fleet.address.postal_code),
                    fleets::city.eq(&fleet.address.city),
                    fleets::country.eq(&fleet.address.country),
                    fleets::vat_id.eq(&fleet.vat_id),
                    fleets::time_zone.eq(&fleet.time_zone),
                    fleets::currency.eq(fleet.currency.as_str()),
                    fleets::billing_email.eq(&fleet.billing_email),
                    fleets::buyer_reference.eq(&fleet.buyer_reference),
                    fleets::created_at.eq(now),
                    fleets::updated_at.eq(now),
                ))
                .execute(conn)
                .map_err(|e| conflict_on_unique(e, "a fleet with this id exists"))?;
            Ok(())
        })?;
        Ok(record)
    }

    pub fn get_fleet(&self, id: &str) -> StoreResult<Option<FleetRecord>> {
        let mut conn = self.conn()?;
        let row: Option<FleetRow> = fleets::table.find(id).first(&mut *conn).optional()?;
        row.map(FleetRow::into_record).transpose()
    }

    /// Every fleet, by id.
    pub fn list_fleets(&self) -> StoreResult<Vec<FleetRecord>> {
        let mut conn = self.conn()?;
        let rows: Vec<FleetRow> = fleets::table.order(fleets::id.asc()).load(&mut *conn)?;
        rows.into_iter().map(FleetRow::into_record).collect()
    }

    /// Adds a user to a fleet, or changes their role in it.
    pub fn set_fleet_member(&self, fleet_id: &str, user_id: &str, role: FleetRole) -> StoreResult<()> {
        let now = now();
        self.write(|conn| {
            let updated = diesel::update(fleet_members::table.find((fleet_id, user_id)))
                .set(fleet_members::role.eq(role.as_str()))
                .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(fleet_members::table)
                    .values((
                        fleet_members::fleet_id.eq(fleet_id),
                        fleet_members::user_id.eq(user_id),
                        fleet_members::role.eq(role.as_str()),
                        fleet_members::created_at.eq(now),
                    ))
                    .execute(conn)
                    .map_err(|e| match e {
                        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                            StoreError::NotFound(format!("fleet {fleet_id} or user {user_id}"))
                        }
                        other => StoreError::Database(other),
                    })?;
            }
            Ok(())
        })
    }

    pub fn remove_fleet_member(&self, fleet_id: &str, user_id: &str) -> StoreResult<bool> {
        self.write(|conn| Ok(diesel::delete(fleet_members::table.find((fleet_id, user_id))).execute(conn)? > 0))
    }

    /// The members of a fleet, by user id.
    pub fn fleet_members(&self, fleet_id: &str) -> StoreResult<Vec<FleetMember>> {
        let mut conn = self.conn()?;
        let rows: Vec<(String, String, String)> = fleet_members::table
            .filter(fleet_members::fleet_id.eq(fleet_id))
            .order(fleet_members::user_id.asc())
            .select((fleet_members::fleet_id, fleet_members::user_id, fleet_members::role))
            .load(&mut *conn)?;
        rows.into_iter().map(member).collect()
    }

    /// The fleets a user belongs to, with their role in each.
    pub fn memberships(&self, user_id: &str) -> StoreResult<Vec<FleetMember>> {
        let mut conn = self.conn()?;
        let rows: Vec<(String, String, String)> = fleet_members::table
            .filter(fleet_members::user_id.eq(user_id))
            .order(fleet_members::fleet_id.asc())
            .select((fleet_members::fleet_id, fleet_members::user_id, fleet_members::role))
            .load(&mut *conn)?;
        rows.into_iter().map(member).collect()
    }

    /// Of `cdr_ids`, those already on an issued (or paid, or void) document, with that document.
    pub fn billed_cdrs(&self, cdr_ids: &[String]) -> StoreResult<HashMap<String, PrecedingInvoice>> {
        let mut conn = self.conn()?;
        let mut billed = HashMap::new();
        for chunk in cdr_ids.chunks(500) {
            let rows: Vec<(String, Option<String>, NaiveDate)> = invoice_lines::table
                .inner_join(invoices::table)
                .filter(invoice_lines::cdr_id.eq_any(chunk))
                .filter(invoices::status.ne(DocumentStatus::Draft.as_str()))
                .select((invoice_lines::cdr_id, invoices::display_number, invoices::issue_date))
                .load(&mut *conn)?;
            for (cdr_id, number, issue_date) in rows {
                if let Some(number) = number {
                    billed.insert(cdr_id, PrecedingInvoice { number, issue_date });
                }
            }
        }
        Ok(billed)
    }

    /// Saves the documents of one run of `period` for `fleet_id` (see the module documentation).
    /// Documents of a credit note must name their preceding invoice by number; it is looked up.
    /// Returns the stored records in the order given.
    pub fn save_run(
        &self,
        fleet_id: &str,
        period: BillingPeriod,
        documents: &[Document],
        mode: RunMode,
    ) -> StoreResult<Vec<InvoiceRecord>> {
        let period_text = period.to_string();
        let now = now();
        self.write(|conn| {
            // Drafts of this month are replaced: lines first, credit notes before the invoice they name.
            let mut drafts: Vec<String> = invoices::table
                .filter(invoices::fleet_id.eq(fleet_id))
                .filter(invoices::period.eq(&period_text))
                .filter(invoices::status.eq(DocumentStatus::Draft.as_str()))
                .select(invoices::id)
                .load(conn)?;
            // So are drafts of other months that hold a CDR of this run (a late CDR previewed in an
            // earlier month's run): a preview is stale once the CDR goes on another document.
            let cdr_ids: Vec<&str> = documents.iter().flat_map(|d| d.lines.iter().map(|l| l.cdr_id.as_str())).collect();
            for chunk in cdr_ids.chunks(500) {
                let stale: Vec<String> = invoice_lines::table
                    .inner_join(invoices::table)
                    .filter(invoices::fleet_id.eq(fleet_id))
                    .filter(invoices::status.eq(DocumentStatus::Draft.as_str()))
                    .filter(invoice_lines::cdr_id.eq_any(chunk))
                    .select(invoices::id)
                    .distinct()
                    .load(conn)?;
                drafts.extend(stale);
            }
            drafts.sort();
            drafts.dedup();
            diesel::delete(invoice_lines::table.filter(invoice_lines::invoice_id.eq_any(&drafts))).execute(conn)?;
            diesel::delete(invoices::table.filter(invoices::id.eq_any(&drafts))).execute(conn)?;

            let mut records = Vec::with_capacity(documents.len());
            for document in documents {
                if document.customer.id != fleet_id || document.period != period {
                    return Err(StoreError::Invalid(ValidationError::new(
                        "document",
                        "belongs to another fleet or month",
                    )));
                }
                let mut document = document.clone();
                let series = match document.kind {
                    DocumentKind::Invoice => document.supplier.invoice_series.clone(),
                    DocumentKind::CreditNote => document.supplier.credit_note_series.clone(),
                };
                let year = document.issue_date.year();
                let (status, number, issued_at) = match mode {
                    RunMode::Preview => {
                        document.number = None;
                        (DocumentStatus::Draft, None, None)
                    }
                    RunMode::Issue => {
                        let number = next_number(conn, &series, year)?;
                        document.number = Some(format_number(&series, year, number));
                        (DocumentStatus::Issued, Some(number), Some(now))
                    }
                };
                let preceding_invoice_id: Option<String> = match &document.preceding {
                    None => None,
                    Some(preceding) => invoices::table
                        .filter(invoices::fleet_id.eq(fleet_id))
                        .filter(invoices::display_number.eq(&preceding.number))
                        .select(invoices::id)
                        .first(conn)
                        .optional()?,
                };
                let json = serde_json::to_string(&document)
                    .map_err(|e| StoreError::Invalid(ValidationError::new("document", e.to_string())))?;
                let id = format!("inv_{}", uuid::Uuid::new_v4().simple());
                diesel::insert_into(invoices::table)
                    .values((
                        invoices::id.eq(&id),
                        invoices::fleet_id.eq(fleet_id),
                        invoices::kind.eq(document.kind.as_str()),
                        invoices::status.eq(status.as_str()),
                        invoices::series.eq(&series),
                        invoices::year.eq(number.map(|_| year)),
                        invoices::number.eq(number),
                        invoices::display_number.eq(&document.number),
                        invoices::period.eq(&period_text),
                        invoices::issue_date.eq(document.issue_date),
                        invoices::due_date.eq(document.due_date),
                        invoices::currency.eq(document.currency.as_str()),
                        invoices::net_total.eq(document.totals.net.to_string()),
                        invoices::vat_total.eq(document.totals.vat.to_string()),
                        invoices::gross_total.eq(document.totals.gross.to_string()),
                        invoices::preceding_invoice_id.eq(&preceding_invoice_id),
                        invoices::document.eq(&json),
                        invoices::created_at.eq(now),
                        invoices::issued_at.eq(issued_at),
                        invoices::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .map_err(|e| conflict_on_unique(e, "this month is already invoiced for the fleet"))?;
                // In batches: one statement per 500 lines (4,000 parameters, under SQLite's limit).
                let rows: Vec<_> = document
                    .lines
                    .iter()
                    .map(|line| {
                        (
                            invoice_lines::invoice_id.eq(id.clone()),
                            invoice_lines::position.eq(i32::try_from(line.position).unwrap_or(i32::MAX)),
                            invoice_lines::cdr_id.eq(line.cdr_id.clone()),
                            invoice_lines::credit.eq(line.credit),
                            invoice_lines::ended_at.eq(line.end.naive_utc()),
                            invoice_lines::net.eq(line.net.to_string()),
                            invoice_lines::vat_rate.eq(line.vat_rate.to_string()),
                            invoice_lines::vat.eq(line.vat.to_string()),
                        )
                    })
                    .collect();
                for chunk in rows.chunks(500) {
                    per_backend!(&mut *conn, |c| diesel::insert_into(invoice_lines::table).values(chunk).execute(c))
                        .map_err(|e| conflict_on_unique(e, "a CDR of this run is already billed"))?;
                }
                records.push(InvoiceRecord {
                    id,
                    fleet_id: fleet_id.to_owned(),
                    status,
                    preceding_invoice_id,
                    document,
                    created_at: now,
                    issued_at,
                });
            }
            Ok(records)
        })
    }

    pub fn get_invoice(&self, id: &str) -> StoreResult<Option<InvoiceRecord>> {
        let mut conn = self.conn()?;
        let row: Option<InvoiceRow> = invoices::table.find(id).select(INVOICE_COLUMNS).first(&mut *conn).optional()?;
        row.map(InvoiceRow::into_record).transpose()
    }

    /// A fleet's documents, newest first, `first` at most, after the one with id `after`; drafts
    /// only when `include_drafts`.
    pub fn list_invoices(
        &self,
        fleet_id: &str,
        first: i64,
        after: Option<&str>,
        include_drafts: bool,
    ) -> StoreResult<Vec<InvoiceRecord>> {
        let mut conn = self.conn()?;
        let mut query = invoices::table
            .filter(invoices::fleet_id.eq(fleet_id))
            .select(INVOICE_COLUMNS)
            .order((invoices::created_at.desc(), invoices::id.desc()))
            .limit(first.clamp(0, 500))
            .into_boxed();
        if !include_drafts {
            query = query.filter(invoices::status.ne(DocumentStatus::Draft.as_str()));
        }
        if let Some(after) = after {
            let cursor: Option<(NaiveDateTime, String)> = invoices::table
                .filter(invoices::fleet_id.eq(fleet_id))
                .filter(invoices::id.eq(after))
                .select((invoices::created_at, invoices::id))
                .first(&mut *conn)
                .optional()?;
            let Some((created_at, id)) = cursor else { return Ok(Vec::new()) };
            query = query.filter(
                invoices::created_at.lt(created_at).or(invoices::created_at.eq(created_at).and(invoices::id.lt(id))),
            );
        }
        let rows: Vec<InvoiceRow> = query.load(&mut *conn)?;
        rows.into_iter().map(InvoiceRow::into_record).collect()
    }

    /// The fleets `user_id` manages.
    pub fn managed_fleets(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let mut conn = self.conn()?;
        Ok(fleet_members::table
            .filter(fleet_members::user_id.eq(user_id))
            .filter(fleet_members::role.eq(FleetRole::FleetManager.as_str()))
            .order(fleet_members::fleet_id.asc())
            .select(fleet_members::fleet_id)
            .load(&mut *conn)?)
    }

    /// Whether `user_id` (with account role `role`) may see `fleet_id`: operations staff see every
    /// fleet, a fleet manager the fleets they manage, nobody else any.
    pub fn may_see_fleet(&self, user_id: &str, role: Role, fleet_id: &str) -> StoreResult<bool> {
        if role == Role::Ops {
            return Ok(true);
        }
        let mut conn = self.conn()?;
        let managed: i64 = fleet_members::table
            .filter(fleet_members::user_id.eq(user_id))
            .filter(fleet_members::fleet_id.eq(fleet_id))
            .filter(fleet_members::role.eq(FleetRole::FleetManager.as_str()))
            .count()
            .get_result(&mut *conn)?;
        Ok(managed > 0)
    }

    /// The document `invoice_id` if `user_id` may see it: operations staff any, a fleet manager the
    /// issued (not draft) documents of their fleets. `None` both when it does not exist and when it
    /// is not theirs, so ids cannot be probed.
    pub fn invoice_for_viewer(
        &self,
        invoice_id: &str,
        user_id: &str,
        role: Role,
    ) -> StoreResult<Option<InvoiceRecord>> {
        let Some(record) = self.get_invoice(invoice_id)? else { return Ok(None) };
        if role == Role::Ops {
            return Ok(Some(record));
        }
        if record.status == DocumentStatus::Draft || !self.may_see_fleet(user_id, role, &record.fleet_id)? {
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// The fleet's documents of one month (drafts included).
    pub fn invoices_of_period(&self, fleet_id: &str, period: BillingPeriod) -> StoreResult<Vec<InvoiceRecord>> {
        let mut conn = self.conn()?;
        let rows: Vec<InvoiceRow> = invoices::table
            .filter(invoices::fleet_id.eq(fleet_id))
            .filter(invoices::period.eq(period.to_string()))
            .select(INVOICE_COLUMNS)
            .order((invoices::kind.desc(), invoices::created_at.asc(), invoices::id.asc()))
            .load(&mut *conn)?;
        rows.into_iter().map(InvoiceRow::into_record).collect()
    }

    /// Marks an issued document paid or void; its contents stay as they are. Returns whether it changed.
    pub fn set_invoice_status(&self, id: &str, status: DocumentStatus) -> StoreResult<bool> {
        if !matches!(status, DocumentStatus::Paid | DocumentStatus::Void) {
            return Err(StoreError::Invalid(ValidationError::new("status", "only PAID or VOID can be set")));
        }
        let now = now();
        self.write(|conn| {
            let changed =
                diesel::update(invoices::table.find(id).filter(invoices::status.eq(DocumentStatus::Issued.as_str())))
                    .set((invoices::status.eq(status.as_str()), invoices::updated_at.eq(now)))
                    .execute(conn)?;
            Ok(changed > 0)
        })
    }
}

fn member((fleet_id, user_id, role): (String, String, String)) -> StoreResult<FleetMember> {
    let role = FleetRole::parse(&role).ok_or_else(|| StoreError::Corrupt {
        key: format!("fleet member {fleet_id}/{user_id}"),
        reason: role.clone(),
    })?;
    Ok(FleetMember { fleet_id, user_id, role })
}
