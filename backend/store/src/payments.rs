//! Card payments at rest: one row per charging payment, the provider events already processed,
//! and the log of what was done to each payment.
//!
//! The rules of the payment state live in `emsp-payments`; this module only keeps rows and
//! guarantees two things the rules rely on:
//! - a read-modify-write of one payment runs in one write transaction with the row locked
//!   (`SELECT ... FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), so an API result and a
//!   webhook for the same payment cannot overwrite each other's change;
//! - a provider event id is recorded in the same transaction as the change it causes: a
//!   redelivered event (same id) is reported as a duplicate and changes nothing, and a change that
//!   fails leaves the id unrecorded, so the provider's next delivery tries again.

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::database::{DbConnection, Store, per_backend};
use crate::error::{StoreError, StoreResult};
use crate::schema::{payment_actions, payment_webhook_events, payments};

/// A payment as stored. Amounts are in minor units of `currency`. `phase` and `difference_phase`
/// are the text forms of the state model in `emsp-payments`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = payments, treat_none_as_null = true)]
pub struct PaymentRecord {
    pub id: String,
    pub user_id: Option<String>,
    /// The charging session paid for, once it is known.
    pub session_id: Option<String>,
    /// ISO 4217, lower case as the provider writes it.
    pub currency: String,
    pub hold_amount: i64,
    pub phase: String,
    pub amount_capturable: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub disputed: bool,
    /// What the session cost, set at the CDR; the payment is settled when this much is captured.
    pub amount_due: Option<i64>,
    /// The provider's id of the hold (a PaymentIntent id).
    pub intent_id: Option<String>,
    pub customer_id: Option<String>,
    pub payment_method_id: Option<String>,
    /// Bumped only after a capture was definitively refused, so a retry of an unanswered capture
    /// reuses its idempotency key.
    pub capture_attempt: i32,
    pub difference_phase: Option<String>,
    pub difference_amount: i64,
    pub difference_captured: i64,
    pub difference_intent_id: Option<String>,
    pub difference_attempt: i32,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// One line of a payment's action log.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct PaymentAction {
    pub seq: i64,
    pub payment_id: String,
    /// `api`, `webhook`, `reconcile` or `ops`.
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub created_at: NaiveDateTime,
}

/// A provider event about to be processed.
#[derive(Debug, Clone)]
pub struct NewWebhookEvent<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    /// The provider's creation time of the event.
    pub created_at: NaiveDateTime,
}

/// How to find the payment an event is about: our id (from the intent's metadata) first, then
/// the provider's intent id.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentLookup<'a> {
    pub payment_id: Option<&'a str>,
    pub intent_id: Option<&'a str>,
}

/// A change to write: the payment's new state and the log line that explains it.
#[derive(Debug, Clone)]
pub struct PaymentChange {
    pub record: PaymentRecord,
    pub action: String,
    pub detail: String,
}

/// What [`Store::apply_payment_event`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookApplied {
    /// The event id was already recorded: nothing changed.
    Duplicate,
    /// No payment of ours matches; the event id is recorded so redeliveries stop here.
    Unmatched,
    /// The event was recorded; `changed` tells whether the payment changed (an event older than
    /// the payment's state is recorded without changing it).
    Applied { record: Box<PaymentRecord>, changed: bool },
}

fn now() -> NaiveDateTime {
    // PostgreSQL keeps microseconds: a returned record must equal the stored one.
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// Reads a payment for update: on PostgreSQL the row is locked until the transaction ends; on
/// SQLite the write transaction (`BEGIN IMMEDIATE`) already holds the database's write lock.
fn lock_payment(conn: &mut DbConnection, lookup: PaymentLookup<'_>) -> StoreResult<Option<PaymentRecord>> {
    if let Some(id) = lookup.payment_id {
        let query = payments::table.filter(payments::id.eq(id));
        let found: Option<PaymentRecord> = match conn {
            DbConnection::Sqlite(c) => query.first(c).optional()?,
            DbConnection::Postgres(c) => query.for_update().first(c).optional()?,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    let Some(intent) = lookup.intent_id else { return Ok(None) };
    let query = payments::table.filter(payments::intent_id.eq(intent).or(payments::difference_intent_id.eq(intent)));
    Ok(match conn {
        DbConnection::Sqlite(c) => query.first(c).optional()?,
        DbConnection::Postgres(c) => query.for_update().first(c).optional()?,
    })
}

fn insert_action(
    conn: &mut DbConnection,
    payment_id: &str,
    actor: &str,
    action: &str,
    detail: &str,
) -> StoreResult<()> {
    diesel::insert_into(payment_actions::table)
        .values((
            payment_actions::payment_id.eq(payment_id),
            payment_actions::actor.eq(actor),
            payment_actions::action.eq(action),
            payment_actions::detail.eq(detail),
            payment_actions::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Writes `change` over the locked row `current` (unless it changes nothing) and logs it.
fn write_change(
    conn: &mut DbConnection,
    current: PaymentRecord,
    change: Option<PaymentChange>,
    actor: &str,
) -> StoreResult<(PaymentRecord, bool)> {
    let Some(mut change) = change else { return Ok((current, false)) };
    if change.record.id != current.id {
        return Err(StoreError::Conflict(format!(
            "a change of payment {} names payment {}",
            current.id, change.record.id
        )));
    }
    change.record.created_at = current.created_at;
    change.record.updated_at = now();
    diesel::update(payments::table.find(&current.id)).set(&change.record).execute(conn)?;
    insert_action(conn, &current.id, actor, &change.action, &change.detail)?;
    Ok((change.record, true))
}

fn conflict_on_unique(error: DieselError, what: &str) -> StoreError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Conflict(what.to_owned()),
        other => StoreError::Database(other),
    }
}

impl Store {
    /// Stores a new payment (before the provider is called) and logs `action`. A second payment
    /// with the same id is a [`StoreError::Conflict`].
    pub fn create_payment(
        &self,
        record: &PaymentRecord,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> StoreResult<PaymentRecord> {
        let mut record = record.clone();
        let at = now();
        record.created_at = at;
        record.updated_at = at;
        self.write(|conn| {
            diesel::insert_into(payments::table)
                .values(&record)
                .execute(conn)
                .map_err(|error| conflict_on_unique(error, "payment already exists"))?;
            insert_action(conn, &record.id, actor, action, detail)?;
            Ok(())
        })?;
        Ok(record)
    }

    pub fn get_payment(&self, id: &str) -> StoreResult<Option<PaymentRecord>> {
        let mut conn = self.conn()?;
        Ok(payments::table.find(id).first(&mut *conn).optional()?)
    }

    /// The payment whose hold or difference charge is this provider intent.
    pub fn find_payment_by_intent(&self, intent_id: &str) -> StoreResult<Option<PaymentRecord>> {
        let mut conn = self.conn()?;
        Ok(payments::table
            .filter(payments::intent_id.eq(intent_id).or(payments::difference_intent_id.eq(intent_id)))
            .first(&mut *conn)
            .optional()?)
    }

    /// Payments in any of `phases` created before `created_before`, oldest first (reconciliation).
    pub fn payments_in_phases(
        &self,
        phases: &[&str],
        created_before: NaiveDateTime,
        limit: i64,
    ) -> StoreResult<Vec<PaymentRecord>> {
        let mut conn = self.conn()?;
        Ok(payments::table
            .filter(payments::phase.eq_any(phases))
            .filter(payments::created_at.lt(created_before))
            .order((payments::created_at.asc(), payments::id.asc()))
            .limit(limit)
            .load(&mut *conn)?)
    }

    /// Reads payment `id` locked, lets `decide` compute its change from the current row, and
    /// writes that change with its log line, all in one transaction. `Ok(None)` when there is no
    /// such payment; otherwise the payment as it is now and whether it changed.
    pub fn update_payment(
        &self,
        id: &str,
        actor: &str,
        decide: impl FnOnce(&PaymentRecord) -> StoreResult<Option<PaymentChange>>,
    ) -> StoreResult<Option<(PaymentRecord, bool)>> {
        self.write(|conn| {
            let lookup = PaymentLookup { payment_id: Some(id), intent_id: None };
            let Some(current) = lock_payment(conn, lookup)? else { return Ok(None) };
            let change = decide(&current)?;
            write_change(conn, current, change, actor).map(Some)
        })
    }

    /// Processes a provider event exactly once: records its id and applies the change `decide`
    /// computes for the payment it concerns, in one transaction. A recorded id is a
    /// [`WebhookApplied::Duplicate`]; an error from `decide` or the database records nothing.
    pub fn apply_payment_event(
        &self,
        event: &NewWebhookEvent<'_>,
        lookup: PaymentLookup<'_>,
        decide: impl FnOnce(&PaymentRecord) -> StoreResult<Option<PaymentChange>>,
    ) -> StoreResult<WebhookApplied> {
        self.write(|conn| {
            let received_at = now();
            let current = lock_payment(conn, lookup)?;
            let outcome = match &current {
                Some(_) => "APPLIED",
                None => "UNMATCHED",
            };
            let values = (
                payment_webhook_events::event_id.eq(event.event_id),
                payment_webhook_events::event_type.eq(event.event_type),
                payment_webhook_events::payment_id.eq(current.as_ref().map(|p| p.id.as_str())),
                payment_webhook_events::outcome.eq(outcome),
                payment_webhook_events::event_created_at.eq(event.created_at),
                payment_webhook_events::received_at.eq(received_at),
            );
            // ON CONFLICT DO NOTHING: a concurrent delivery of the same event waits for the
            // first one's transaction and then inserts nothing, instead of aborting ours.
            let inserted = per_backend!(conn, |c| diesel::insert_into(payment_webhook_events::table)
                .values(values)
                .on_conflict_do_nothing()
                .execute(c))?;
            if inserted == 0 {
                return Ok(WebhookApplied::Duplicate);
            }
            let Some(current) = current else { return Ok(WebhookApplied::Unmatched) };
            let change = decide(&current)?;
            let (record, changed) = write_change(conn, current, change, "webhook")?;
            Ok(WebhookApplied::Applied { record: Box::new(record), changed })
        })
    }

    /// The outcome recorded for a provider event (`APPLIED`, `UNMATCHED`), if it was processed.
    pub fn payment_event_outcome(&self, event_id: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn()?;
        Ok(payment_webhook_events::table
            .find(event_id)
            .select(payment_webhook_events::outcome)
            .first(&mut *conn)
            .optional()?)
    }

    /// Adds a line to a payment's action log (for actions that change no state: a failed call).
    pub fn log_payment_action(&self, payment_id: &str, actor: &str, action: &str, detail: &str) -> StoreResult<()> {
        self.write(|conn| insert_action(conn, payment_id, actor, action, detail))
    }

    /// A payment's action log, oldest first.
    pub fn payment_actions(&self, payment_id: &str) -> StoreResult<Vec<PaymentAction>> {
        let mut conn = self.conn()?;
        Ok(payment_actions::table
            .filter(payment_actions::payment_id.eq(payment_id))
            .order(payment_actions::seq.asc())
            .load(&mut *conn)?)
    }
}
