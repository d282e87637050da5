//! A fleet's CDRs: those charged on its cards while they were its. Each CDR records, when it
//! arrives, the key of our token it was charged on (`cdrs.token_key`) and that token's fleet
//! (`cdrs.fleet_id`): a card moved to another fleet leaves its earlier sessions with the fleet
//! that had it; a CDR that came while its card had no fleet joins the first fleet the card is
//! given (`Store::update_token`). A fleet's CDRs are one query, never a look-up per CDR.
//!
//! The monthly run reads [`Store::unbilled_fleet_cdrs`] (by billing instant, without the CDRs an
//! issued document already bills); fleet managers page through [`Store::fleet_cdrs`] (by end).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use emsp_domain::ValidationError;
use emsp_invoicing::DocumentStatus;

use crate::charging::{CdrRecord, CdrRow};
use crate::database::Store;
use crate::error::{StoreError, StoreResult};
use crate::schema::{cdrs, invoice_lines, invoices, tokens};

/// A CDR of a fleet, with the token it was charged on.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetCdr {
    pub record: CdrRecord,
    /// Our token's key, `CC*PID*UID`.
    pub token_key: String,
    pub token_uid: String,
    pub contract_id: String,
    /// The driver the token belongs to, if any.
    pub user_id: Option<String>,
}

/// Which of a fleet's CDRs to list.
#[derive(Debug, Clone, Default)]
pub struct FleetCdrFilter<'a> {
    pub fleet_id: &'a str,
    /// Only the CDRs of this driver's tokens.
    pub user_id: Option<&'a str>,
    /// Sessions that ended at or after this instant.
    pub ended_from: Option<DateTime<Utc>>,
    /// Sessions that ended before this instant.
    pub ended_before: Option<DateTime<Utc>>,
}

impl Store {
    /// The CDRs of `fleet_id` (its cards' CDRs while they were its) whose billing instant (a charge's end, a credit's receipt)
    /// lies in `[from, to)` and that no issued (or paid, or void) document bills yet; CDRs on drafts
    /// are included, since a run replaces its drafts. Oldest first. One query.
    pub fn unbilled_fleet_cdrs(
        &self,
        fleet_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<CdrRecord>> {
        let mut conn = self.conn()?;
        // Invoice lines name a CDR as `country*party*id` in the CPO's spelling, as its columns keep it.
        let line_id = cdrs::country_code.concat("*").concat(cdrs::party_id).concat("*").concat(cdrs::cdr_id);
        let rows: Vec<CdrRow> = cdrs::table
            .left_join(invoice_lines::table.on(invoice_lines::cdr_id.eq(line_id)))
            .left_join(invoices::table.on(invoices::id.eq(invoice_lines::invoice_id)))
            .filter(cdrs::fleet_id.eq(fleet_id))
            .filter(cdrs::billing_at.ge(from.naive_utc()))
            .filter(cdrs::billing_at.lt(to.naive_utc()))
            .filter(invoices::id.nullable().is_null().or(invoices::status.eq(DocumentStatus::Draft.as_str())))
            .order((cdrs::billing_at.asc(), cdrs::key.asc()))
            .select(cdrs::all_columns)
            .load(&mut *conn)?;
        // A CDR on two drafts (a preview of two months) comes once per draft: keep one.
        let mut rows = rows;
        rows.dedup_by(|a, b| a.key == b.key);
        rows.into_iter().map(CdrRow::into_record).collect()
    }

    /// One page of a fleet's CDRs, latest end first, after the CDR with key `after` (the last of
    /// the previous page); an `after` that is not a CDR of the fleet is invalid. One query (two with `after`).
    pub fn fleet_cdrs(
        &self,
        filter: &FleetCdrFilter<'_>,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<FleetCdr>> {
        let mut conn = self.conn()?;
        let mut query = cdrs::table
            .inner_join(tokens::table.on(cdrs::token_key.eq(tokens::key.nullable())))
            .filter(cdrs::fleet_id.eq(filter.fleet_id))
            .order((cdrs::ended_at.desc(), cdrs::key.desc()))
            .limit(limit.max(0))
            .select((cdrs::all_columns, tokens::key, tokens::uid, tokens::contract_id, tokens::user_id))
            .into_boxed();
        if let Some(user_id) = filter.user_id {
            query = query.filter(tokens::user_id.eq(user_id.to_owned()));
        }
        if let Some(from) = filter.ended_from {
            query = query.filter(cdrs::ended_at.ge(from.naive_utc()));
        }
        if let Some(before) = filter.ended_before {
            query = query.filter(cdrs::ended_at.lt(before.naive_utc()));
        }
        if let Some(after) = after {
            let key = after.to_ascii_uppercase();
            // Only a CDR of this fleet is a cursor: another fleet's CDR ids cannot be probed.
            let ended: Option<NaiveDateTime> = cdrs::table
                .filter(cdrs::key.eq(&key))
                .filter(cdrs::fleet_id.eq(filter.fleet_id))
                .select(cdrs::ended_at)
                .first(&mut *conn)
                .optional()?;
            let Some(ended) = ended else {
                return Err(StoreError::Invalid(ValidationError::new("after", "no such session")));
            };
            query = query.filter(cdrs::ended_at.lt(ended).or(cdrs::ended_at.eq(ended).and(cdrs::key.lt(key))));
        }
        let rows: Vec<(CdrRow, String, String, String, Option<String>)> = query.load(&mut *conn)?;
        let mut page = Vec::with_capacity(rows.len());
        for (row, token_key, token_uid, contract_id, user_id) in rows {
            page.push(FleetCdr { record: row.into_record()?, token_key, token_uid, contract_id, user_id });
        }
        Ok(page)
    }
}
