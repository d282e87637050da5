//! The change feed (outbox): every change to searchable data, in commit order.
//!
//! Rows are appended in the same transaction as the change they describe, so a consumer (the search
//! index of this and every other replica) that applies them in `seq` order ends up with what the
//! database holds. On PostgreSQL a `BIGSERIAL` alone would not do: two transactions can take numbers
//! 7 and 8 and commit 8 first, and a reader at 8 would skip 7 for ever. Appending under a
//! transaction-scoped advisory lock makes numbers visible in commit order. SQLite has one writer.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::database::{DbConnection, Store};
use crate::error::{StoreError, StoreResult};
use crate::schema::change_feed;

/// Arbitrary, fixed key of the advisory lock that orders change-feed appends.
const CHANGE_FEED_LOCK: i64 = 0x454d_5350_4645_4544; // "EMSPFEED"

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    LocationUpserted,
    LocationRemoved,
    EvseStatus,
    TariffUpserted,
    TariffRemoved,
    /// A driver's charging session changed (entity: its id; payload: `user_id`).
    ChargingUpdated,
    /// A party's data became stale (its hub reports it not CONNECTED) or fresh again;
    /// `entity_key` is `CC*PID`, the payload `{"stale": bool}`.
    PartyStatus,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::LocationUpserted => "location.upserted",
            ChangeKind::LocationRemoved => "location.removed",
            ChangeKind::EvseStatus => "evse.status",
            ChangeKind::TariffUpserted => "tariff.upserted",
            ChangeKind::TariffRemoved => "tariff.removed",
            ChangeKind::ChargingUpdated => "charging.updated",
            ChangeKind::PartyStatus => "party.status",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            ChangeKind::LocationUpserted,
            ChangeKind::LocationRemoved,
            ChangeKind::EvseStatus,
            ChangeKind::TariffUpserted,
            ChangeKind::TariffRemoved,
            ChangeKind::ChargingUpdated,
            ChangeKind::PartyStatus,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }
}

/// One entry of the feed. `entity_key` is the location or tariff key; `payload` carries what a
/// consumer needs beyond re-reading the entity (for a status change: the EVSE uid and status).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub seq: i64,
    pub kind: ChangeKind,
    pub entity_key: String,
    pub payload: serde_json::Value,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = change_feed)]
struct NewChange<'a> {
    kind: &'a str,
    entity_key: &'a str,
    payload: String,
    created_at: NaiveDateTime,
}

#[derive(Queryable)]
struct ChangeRow {
    seq: i64,
    kind: String,
    entity_key: String,
    payload: String,
    created_at: NaiveDateTime,
}

/// [`append_many`], then the feed position of the last entry appended (`None` for no entry).
/// Read under the feed lock (PostgreSQL) or the write lock (SQLite), so it is this
/// transaction's own last entry.
pub(crate) fn append_many_returning_last(
    conn: &mut DbConnection,
    entries: &[NewEntry<'_>],
) -> StoreResult<Option<i64>> {
    if entries.is_empty() {
        return Ok(None);
    }
    append_many(conn, entries)?;
    let last: Option<i64> = crate::database::per_backend!(conn, |c| change_feed::table
        .select(diesel::dsl::max(change_feed::seq))
        .first(c))?;
    Ok(last)
}

/// A change to append.
pub(crate) struct NewEntry<'a> {
    pub kind: ChangeKind,
    pub entity_key: &'a str,
    pub payload: serde_json::Value,
}

/// Appends a change; call inside the transaction that makes the change. On PostgreSQL the lock,
/// the row and the NOTIFY are one statement: the lock is held from there to the commit, so every
/// round trip saved inside that window is throughput for every writer.
pub(crate) fn append(
    conn: &mut DbConnection,
    kind: ChangeKind,
    entity_key: &str,
    payload: serde_json::Value,
) -> StoreResult<()> {
    let created_at = Utc::now().naive_utc();
    match conn {
        DbConnection::Postgres(pg) => {
            use diesel::sql_types::{Text, Timestamp};
            // MATERIALIZED: the lock (and the NOTIFY, delivered at commit) is taken once, before
            // the row draws its sequence number.
            diesel::sql_query(format!(
                "WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock({CHANGE_FEED_LOCK}), pg_notify('emsp_changes', '')) \
                 INSERT INTO change_feed (kind, entity_key, payload, created_at) SELECT $1, $2, $3, $4 FROM locked"
            ))
            .bind::<Text, _>(kind.as_str())
            .bind::<Text, _>(entity_key)
            .bind::<Text, _>(payload.to_string())
            .bind::<Timestamp, _>(created_at)
            .execute(pg)?;
        }
        DbConnection::Sqlite(_) => {
            let row = NewChange { kind: kind.as_str(), entity_key, payload: payload.to_string(), created_at };
            diesel::insert_into(change_feed::table).values(&row).execute(conn)?;
        }
    }
    Ok(())
}

/// Appends several changes in order with one lock, multi-row inserts and one NOTIFY; call inside
/// the transaction that makes the changes.
pub(crate) fn append_many(conn: &mut DbConnection, entries: &[NewEntry<'_>]) -> StoreResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({CHANGE_FEED_LOCK})")).execute(pg)?;
    }
    let created_at = Utc::now().naive_utc();
    let rows: Vec<NewChange<'_>> = entries
        .iter()
        .map(|entry| NewChange {
            kind: entry.kind.as_str(),
            entity_key: entry.entity_key,
            payload: entry.payload.to_string(),
            created_at,
        })
        .collect();
    // Four columns: 1,000 rows stay far below either backend's bound-parameter limit.
    for chunk in rows.chunks(1_000) {
        crate::database::per_backend!(conn, |c| diesel::insert_into(change_feed::table).values(chunk).execute(c))?;
    }
    if let DbConnection::Postgres(pg) = conn {
        // Delivered at commit: replicas listening on the channel wake up instead of polling.
        diesel::sql_query("NOTIFY emsp_changes").execute(pg)?;
    }
    Ok(())
}

impl Store {
    /// Changes after `after_seq`, oldest first, at most `limit`.
    pub fn changes_since(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<Change>> {
        let mut conn = self.conn()?;
        let rows: Vec<ChangeRow> = change_feed::table
            .filter(change_feed::seq.gt(after_seq))
            .order(change_feed::seq.asc())
            .limit(limit)
            .load(&mut *conn)?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let kind = ChangeKind::parse(&row.kind).ok_or_else(|| StoreError::Corrupt {
                key: format!("change {}", row.seq),
                reason: format!("unknown kind {}", row.kind),
            })?;
            let payload = serde_json::from_str(&row.payload)
                .map_err(|e| StoreError::Corrupt { key: format!("change {}", row.seq), reason: e.to_string() })?;
            changes.push(Change {
                seq: row.seq,
                kind,
                entity_key: row.entity_key,
                payload,
                created_at: row.created_at,
            });
        }
        Ok(changes)
    }

    /// The newest sequence number, 0 for an empty feed: where a consumer that just bulk-loaded starts.
    pub fn latest_change_seq(&self) -> StoreResult<i64> {
        let mut conn = self.conn()?;
        let latest: Option<i64> = change_feed::table.select(diesel::dsl::max(change_feed::seq)).first(&mut *conn)?;
        Ok(latest.unwrap_or(0))
    }

    /// Deletes changes up to and including `seq` (every consumer has applied them).
    pub fn prune_changes(&self, up_to_seq: i64) -> StoreResult<usize> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(change_feed::table.filter(change_feed::seq.le(up_to_seq))).execute(&mut *conn)?)
    }
}
