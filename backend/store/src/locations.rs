//! Locations with their EVSEs and connectors.
//!
//! A location is stored as three kinds of rows: the location (columns for filters plus its JSON
//! document without EVSEs), one row per EVSE (status and power columns plus the EVSE's document
//! with its connectors) and one row per connector (columns only, for SQL-side filters). A status
//! change then rewrites one small EVSE row, not the whole location.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use emsp_domain::{Evse, EvseStatus, EvseUid, Location};
use serde_json::json;

use crate::change_feed::{self, ChangeKind, NewEntry};
use crate::database::{DbConnection, Store, per_backend};
use crate::documents::{content_hash, from_document, to_document};
use crate::error::{StoreError, StoreResult};
use crate::schema::{connectors, evses, locations};

/// Rows per multi-row statement: well under SQLite's 32,766 and PostgreSQL's 65,535 bound
/// parameters for the widest row (18 columns).
const BATCH_ROWS: usize = 500;

/// A live status for one EVSE (a status-only PATCH from a CPO).
#[derive(Debug, Clone, PartialEq)]
pub struct EvseStatusUpdate {
    pub location_key: String,
    pub evse_uid: EvseUid,
    pub status: EvseStatus,
    pub at: DateTime<Utc>,
}

/// What [`Store::set_evse_statuses`] did: one outcome per update, in order, and the feed
/// position of its last change (`None` when nothing changed).
#[derive(Debug)]
pub struct StatusBatch {
    pub outcomes: Vec<StoreResult<WriteOutcome>>,
    pub last_seq: Option<i64>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Created,
    Updated,
    /// The content was the same as stored (apart from `last_updated`): nothing was written.
    Unchanged,
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = locations)]
struct LocationRow<'a> {
    key: &'a str,
    country_code: &'a str,
    party_id: &'a str,
    location_id: &'a str,
    partner_id: Option<&'a str>,
    name: Option<&'a str>,
    address: &'a str,
    city: &'a str,
    postal_code: Option<&'a str>,
    country: &'a str,
    latitude: f64,
    longitude: f64,
    time_zone: Option<&'a str>,
    publish: bool,
    last_updated: NaiveDateTime,
    content_hash: &'a str,
    document: &'a str,
    stored_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = evses)]
struct EvseRow {
    location_key: String,
    uid: String,
    position: i32,
    evse_id: Option<String>,
    status: String,
    capabilities: String,
    max_power_kw: f64,
    last_updated: NaiveDateTime,
    document: String,
}

#[derive(Insertable)]
#[diesel(table_name = connectors)]
struct ConnectorRow {
    location_key: String,
    evse_uid: String,
    connector_id: String,
    standard: String,
    format: String,
    power_type: String,
    max_voltage: i32,
    max_amperage: i32,
    max_electric_power: Option<i32>,
    max_power_kw: f64,
    tariff_ids: String,
    last_updated: NaiveDateTime,
}

fn evse_rows(location_key: &str, evse_list: &[Evse]) -> StoreResult<(Vec<EvseRow>, Vec<ConnectorRow>)> {
    let mut evse_rows = Vec::with_capacity(evse_list.len());
    let mut connector_rows = Vec::new();
    for (position, evse) in evse_list.iter().enumerate() {
        let uid = evse.uid.key();
        for connector in &evse.connectors {
            connector_rows.push(ConnectorRow {
                location_key: location_key.to_owned(),
                evse_uid: uid.clone(),
                connector_id: connector.id.key(),
                standard: connector.standard.to_string(),
                format: connector.format.to_string(),
                power_type: connector.power_type.to_string(),
                max_voltage: i32::try_from(connector.max_voltage).unwrap_or(i32::MAX),
                max_amperage: i32::try_from(connector.max_amperage).unwrap_or(i32::MAX),
                max_electric_power: connector.max_electric_power.map(|w| i32::try_from(w).unwrap_or(i32::MAX)),
                max_power_kw: connector.max_power_kw(),
                tariff_ids: to_document(&connector.tariff_ids)?,
                last_updated: connector.last_updated.naive_utc(),
            });
        }
        evse_rows.push(EvseRow {
            location_key: location_key.to_owned(),
            uid,
            position: i32::try_from(position).unwrap_or(i32::MAX),
            evse_id: evse.evse_id.clone(),
            status: evse.status.to_string(),
            capabilities: to_document(&evse.capabilities)?,
            max_power_kw: evse.max_power_kw(),
            last_updated: evse.last_updated.naive_utc(),
            document: to_document(evse)?,
        });
    }
    Ok((evse_rows, connector_rows))
}

fn replace_children(conn: &mut DbConnection, key: &str, evse_list: &[Evse]) -> StoreResult<()> {
    diesel::delete(connectors::table.filter(connectors::location_key.eq(key))).execute(conn)?;
    diesel::delete(evses::table.filter(evses::location_key.eq(key))).execute(conn)?;
    let (evse_rows, connector_rows) = evse_rows(key, evse_list)?;
    // Bounded batches: SQLite allows at most 32,766 bound parameters per statement.
    for chunk in evse_rows.chunks(BATCH_ROWS) {
        per_backend!(conn, |c| diesel::insert_into(evses::table).values(chunk).execute(c))?;
    }
    for chunk in connector_rows.chunks(BATCH_ROWS) {
        per_backend!(conn, |c| diesel::insert_into(connectors::table).values(chunk).execute(c))?;
    }
    Ok(())
}

/// The stored form of a location: its document holds everything but the EVSEs.
fn location_document(location: &Location) -> StoreResult<String> {
    let mut bare = location.clone();
    bare.evses.clear();
    to_document(&bare)
}

#[derive(Queryable)]
struct StoredLocation {
    key: String,
    last_updated: NaiveDateTime,
    document: String,
}

fn assemble(row: StoredLocation, evse_documents: Vec<(String, String)>) -> StoreResult<Location> {
    let mut location: Location = from_document(&row.key, &row.document)?;
    location.last_updated = DateTime::from_naive_utc_and_offset(row.last_updated, Utc);
    location.evses = Vec::with_capacity(evse_documents.len());
    for (uid, document) in evse_documents {
        location.evses.push(from_document(&format!("{}/{uid}", row.key), &document)?);
    }
    Ok(location)
}

/// A location checked and serialised, ready to write.
struct Prepared<'a> {
    location: &'a Location,
    key: String,
    hash: String,
    document: String,
}

impl<'a> Prepared<'a> {
    fn new(location: &'a Location) -> StoreResult<Self> {
        location.validate()?;
        Ok(Self {
            location,
            key: location.key(),
            hash: content_hash(location)?,
            document: location_document(location)?,
        })
    }
}

fn location_row<'a>(prepared: &'a Prepared<'_>, partner_id: Option<&'a str>, now: NaiveDateTime) -> LocationRow<'a> {
    let location = prepared.location;
    LocationRow {
        key: &prepared.key,
        country_code: location.party.country_code.as_str(),
        party_id: location.party.party_id.as_str(),
        location_id: location.id.as_str(),
        partner_id,
        name: location.name.as_deref(),
        address: &location.address,
        city: &location.city,
        postal_code: location.postal_code.as_deref(),
        country: &location.country,
        latitude: location.coordinates.latitude,
        longitude: location.coordinates.longitude,
        time_zone: location.time_zone.as_deref(),
        publish: location.publish,
        last_updated: location.last_updated.naive_utc(),
        content_hash: &prepared.hash,
        document: &prepared.document,
        stored_at: now,
    }
}

fn upsert_prepared(
    conn: &mut DbConnection,
    prepared: &Prepared<'_>,
    partner_id: Option<&str>,
) -> StoreResult<WriteOutcome> {
    let row = location_row(prepared, partner_id, Utc::now().naive_utc());
    let stored_hash: Option<String> =
        locations::table.find(&prepared.key).select(locations::content_hash).first(conn).optional()?;
    let outcome = match stored_hash {
        Some(stored) if stored == prepared.hash => return Ok(WriteOutcome::Unchanged),
        Some(_) => WriteOutcome::Updated,
        None => WriteOutcome::Created,
    };
    // A native upsert: two writers of the same new location must not both insert.
    per_backend!(conn, |c| diesel::insert_into(locations::table)
        .values(&row)
        .on_conflict(locations::key)
        .do_update()
        .set(&row)
        .execute(c))?;
    replace_children(conn, &prepared.key, &prepared.location.evses)?;
    change_feed::append(conn, ChangeKind::LocationUpserted, &prepared.key, json!({}))?;
    Ok(outcome)
}

/// Upserts prepared locations in the caller's transaction with a handful of statements for the
/// whole batch, whatever its size: one query reads the stored hashes, multi-row statements write
/// the changed locations and their children, and the change feed gets one multi-row append (one
/// advisory lock, one NOTIFY). Rows are written in key order, so two batches that overlap lock
/// their rows in the same order and cannot deadlock. A key that appears twice in one batch is
/// written by the sequential path (a multi-row upsert may not touch one row twice).
fn upsert_batch(
    conn: &mut DbConnection,
    items: &[&Prepared<'_>],
    partner_id: Option<&str>,
) -> StoreResult<Vec<WriteOutcome>> {
    let mut keys: Vec<&str> = items.iter().map(|item| item.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() != items.len() {
        return items.iter().map(|item| upsert_prepared(conn, item, partner_id)).collect();
    }
    let mut stored: HashMap<String, String> = HashMap::with_capacity(items.len());
    for chunk in keys.chunks(BATCH_ROWS) {
        let rows: Vec<(String, String)> = locations::table
            .filter(locations::key.eq_any(chunk))
            .select((locations::key, locations::content_hash))
            .load(conn)?;
        stored.extend(rows);
    }
    let outcomes: Vec<WriteOutcome> = items
        .iter()
        .map(|item| match stored.get(&item.key) {
            Some(hash) if *hash == item.hash => WriteOutcome::Unchanged,
            Some(_) => WriteOutcome::Updated,
            None => WriteOutcome::Created,
        })
        .collect();
    let mut changed: Vec<(&Prepared<'_>, WriteOutcome)> = items
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| **outcome != WriteOutcome::Unchanged)
        .map(|(item, outcome)| (*item, *outcome))
        .collect();
    if changed.is_empty() {
        return Ok(outcomes);
    }
    changed.sort_unstable_by(|a, b| a.0.key.cmp(&b.0.key));
    let now = Utc::now().naive_utc();
    let rows: Vec<LocationRow<'_>> = changed.iter().map(|(item, _)| location_row(item, partner_id, now)).collect();
    match conn {
        // A round trip per statement is what costs on PostgreSQL: one multi-row upsert per chunk.
        DbConnection::Postgres(pg) => {
            for chunk in rows.chunks(BATCH_ROWS) {
                diesel::insert_into(locations::table)
                    .values(chunk)
                    .on_conflict(locations::key)
                    .do_update()
                    .set((
                        locations::country_code.eq(excluded(locations::country_code)),
                        locations::party_id.eq(excluded(locations::party_id)),
                        locations::location_id.eq(excluded(locations::location_id)),
                        locations::partner_id.eq(excluded(locations::partner_id)),
                        locations::name.eq(excluded(locations::name)),
                        locations::address.eq(excluded(locations::address)),
                        locations::city.eq(excluded(locations::city)),
                        locations::postal_code.eq(excluded(locations::postal_code)),
                        locations::country.eq(excluded(locations::country)),
                        locations::latitude.eq(excluded(locations::latitude)),
                        locations::longitude.eq(excluded(locations::longitude)),
                        locations::time_zone.eq(excluded(locations::time_zone)),
                        locations::publish.eq(excluded(locations::publish)),
                        locations::last_updated.eq(excluded(locations::last_updated)),
                        locations::content_hash.eq(excluded(locations::content_hash)),
                        locations::document.eq(excluded(locations::document)),
                        locations::stored_at.eq(excluded(locations::stored_at)),
                    ))
                    .execute(pg)?;
            }
        }
        // SQLite runs in-process (no round trips) and diesel has no multi-row upsert for it.
        DbConnection::Sqlite(sqlite) => {
            for row in &rows {
                diesel::insert_into(locations::table)
                    .values(row)
                    .on_conflict(locations::key)
                    .do_update()
                    .set(row)
                    .execute(sqlite)?;
            }
        }
    }
    // Only locations that existed can have children to replace.
    let replaced: Vec<&str> = changed
        .iter()
        .filter(|(_, outcome)| *outcome == WriteOutcome::Updated)
        .map(|(item, _)| item.key.as_str())
        .collect();
    for chunk in replaced.chunks(BATCH_ROWS) {
        diesel::delete(connectors::table.filter(connectors::location_key.eq_any(chunk))).execute(conn)?;
        diesel::delete(evses::table.filter(evses::location_key.eq_any(chunk))).execute(conn)?;
    }
    let (mut all_evses, mut all_connectors) = (Vec::new(), Vec::new());
    for (item, _) in &changed {
        let (evse_rows, connector_rows) = evse_rows(&item.key, &item.location.evses)?;
        all_evses.extend(evse_rows);
        all_connectors.extend(connector_rows);
    }
    for chunk in all_evses.chunks(BATCH_ROWS) {
        per_backend!(conn, |c| diesel::insert_into(evses::table).values(chunk).execute(c))?;
    }
    for chunk in all_connectors.chunks(BATCH_ROWS) {
        per_backend!(conn, |c| diesel::insert_into(connectors::table).values(chunk).execute(c))?;
    }
    let entries: Vec<NewEntry<'_>> = changed
        .iter()
        .map(|(item, _)| NewEntry { kind: ChangeKind::LocationUpserted, entity_key: &item.key, payload: json!({}) })
        .collect();
    change_feed::append_many(conn, &entries)?;
    Ok(outcomes)
}

impl Store {
    /// Creates or replaces a location with its EVSEs and connectors, and records the change in the
    /// feed. A location whose content equals what is stored is not written at all.
    pub fn upsert_location(&self, location: &Location, partner_id: Option<&str>) -> StoreResult<WriteOutcome> {
        let prepared = Prepared::new(location)?;
        self.write(|conn| upsert_prepared(conn, &prepared, partner_id))
    }

    /// Upserts a page of locations in one transaction with a few multi-row statements (see
    /// [`upsert_batch`]): what makes a pull fast, above all on PostgreSQL where every commit waits
    /// for the disk. Each location gets its own outcome: an invalid one is refused alone. When the
    /// transaction itself fails, every location is tried on its own, so one bad row never costs
    /// the others.
    pub fn upsert_locations(&self, batch: &[Location], partner_id: Option<&str>) -> Vec<StoreResult<WriteOutcome>> {
        let prepared: Vec<StoreResult<Prepared<'_>>> = batch.iter().map(Prepared::new).collect();
        let valid: Vec<&Prepared<'_>> = prepared.iter().filter_map(|item| item.as_ref().ok()).collect();
        let together =
            if valid.is_empty() { Ok(Vec::new()) } else { self.write(|conn| upsert_batch(conn, &valid, partner_id)) };
        match together {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                prepared
                    .into_iter()
                    .map(|item| match item {
                        Err(error) => Err(error),
                        Ok(item) => outcomes.next().ok_or(StoreError::NotFound(item.key)),
                    })
                    .collect()
            }
            Err(error) => {
                tracing::warn!(%error, "batch upsert failed, retrying location by location");
                batch.iter().map(|location| self.upsert_location(location, partner_id)).collect()
            }
        }
    }

    /// A location with its EVSEs, by key (`CC*PID*ID`, any case).
    pub fn get_location(&self, key: &str) -> StoreResult<Option<Location>> {
        let key = key.to_ascii_uppercase();
        let mut conn = self.conn()?;
        let row: Option<StoredLocation> = locations::table
            .find(&key)
            .select((locations::key, locations::last_updated, locations::document))
            .first(&mut *conn)
            .optional()?;
        let Some(row) = row else { return Ok(None) };
        let evse_documents: Vec<(String, String)> = evses::table
            .filter(evses::location_key.eq(&key))
            .order(evses::position.asc())
            .select((evses::uid, evses::document))
            .load(&mut *conn)?;
        assemble(row, evse_documents).map(Some)
    }

    /// Several locations by key (upper case, as stored), for data loaders; missing ones are absent.
    pub fn get_locations(&self, keys: &[String]) -> StoreResult<Vec<Location>> {
        let mut found = Vec::with_capacity(keys.len());
        let mut conn = self.conn()?;
        for chunk in keys.chunks(500) {
            let rows: Vec<StoredLocation> = locations::table
                .filter(locations::key.eq_any(chunk))
                .select((locations::key, locations::last_updated, locations::document))
                .load(&mut *conn)?;
            let chunk_keys: Vec<&str> = rows.iter().map(|row| row.key.as_str()).collect();
            let evse_rows: Vec<(String, String, String)> = evses::table
                .filter(evses::location_key.eq_any(&chunk_keys))
                .order((evses::location_key.asc(), evses::position.asc()))
                .select((evses::location_key, evses::uid, evses::document))
                .load(&mut *conn)?;
            let mut by_location: std::collections::HashMap<String, Vec<(String, String)>> =
                std::collections::HashMap::new();
            for (location_key, uid, document) in evse_rows {
                by_location.entry(location_key).or_default().push((uid, document));
            }
            for row in rows {
                let own = by_location.remove(&row.key).unwrap_or_default();
                found.push(assemble(row, own)?);
            }
        }
        Ok(found)
    }

    /// Locations ordered by key, after `after_key`: pages for the search index's bulk load.
    pub fn locations_page(&self, after_key: Option<&str>, limit: i64) -> StoreResult<Vec<Location>> {
        let mut conn = self.conn()?;
        let mut query = locations::table
            .select((locations::key, locations::last_updated, locations::document))
            .order(locations::key.asc())
            .limit(limit)
            .into_boxed();
        if let Some(after) = after_key {
            query = query.filter(locations::key.gt(after.to_owned()));
        }
        let rows: Vec<StoredLocation> = query.load(&mut *conn)?;
        let keys: Vec<&str> = rows.iter().map(|row| row.key.as_str()).collect();
        let mut evse_documents: Vec<(String, String, String)> = Vec::new();
        // Bounded IN lists keep every statement under the bound-parameter limits.
        for chunk in keys.chunks(500) {
            let mut part: Vec<(String, String, String)> = evses::table
                .filter(evses::location_key.eq_any(chunk))
                .order((evses::location_key.asc(), evses::position.asc()))
                .select((evses::location_key, evses::uid, evses::document))
                .load(&mut *conn)?;
            evse_documents.append(&mut part);
        }
        let mut evse_iter = evse_documents.into_iter().peekable();
        let mut page = Vec::with_capacity(rows.len());
        for row in rows {
            let mut own = Vec::new();
            while let Some((location_key, _, _)) = evse_iter.peek() {
                if *location_key != row.key {
                    break;
                }
                if let Some((_, uid, document)) = evse_iter.next() {
                    own.push((uid, document));
                }
            }
            page.push(assemble(row, own)?);
        }
        Ok(page)
    }

    pub fn count_locations(&self) -> StoreResult<i64> {
        let mut conn = self.conn()?;
        Ok(locations::table.count().get_result(&mut *conn)?)
    }

    /// Deletes a location and its EVSEs; `false` when there was none.
    pub fn remove_location(&self, key: &str) -> StoreResult<bool> {
        let key = key.to_ascii_uppercase();
        self.write(|conn| {
            diesel::delete(connectors::table.filter(connectors::location_key.eq(&key))).execute(conn)?;
            diesel::delete(evses::table.filter(evses::location_key.eq(&key))).execute(conn)?;
            let deleted = diesel::delete(locations::table.find(&key)).execute(conn)?;
            if deleted == 0 {
                return Ok(false);
            }
            change_feed::append(conn, ChangeKind::LocationRemoved, &key, json!({}))?;
            Ok(true)
        })
    }

    /// Sets an EVSE's live status. Bumps the EVSE's and the location's `last_updated` (a child's
    /// change is a change of its parent). Writes nothing when the status is already the same.
    pub fn set_evse_status(
        &self,
        location_key: &str,
        evse_uid: &EvseUid,
        status: &EvseStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<WriteOutcome> {
        let update = EvseStatusUpdate {
            location_key: location_key.to_owned(),
            evse_uid: evse_uid.clone(),
            status: status.clone(),
            at,
        };
        let mut batch = self.set_evse_statuses(std::slice::from_ref(&update))?;
        batch.outcomes.pop().unwrap_or(Ok(WriteOutcome::Unchanged))
    }

    /// Sets the live status of several EVSEs in one transaction (group commit of status pushes):
    /// one read of the EVSE rows, one update per changed EVSE, one `last_updated` bump per
    /// location and one append to the change feed. Each update has its own outcome (an unknown
    /// EVSE fails alone, the others are written); updates of the same EVSE apply in order.
    pub fn set_evse_statuses(&self, updates: &[EvseStatusUpdate]) -> StoreResult<StatusBatch> {
        if updates.is_empty() {
            return Ok(StatusBatch { outcomes: Vec::new(), last_seq: None });
        }
        let mut keys: Vec<String> = updates.iter().map(|u| u.location_key.to_ascii_uppercase()).collect();
        keys.sort();
        keys.dedup();
        self.write_ephemeral(|conn| {
            let mut stored: HashMap<(String, String), (String, String)> = HashMap::new();
            for chunk in keys.chunks(BATCH_ROWS) {
                let rows: Vec<(String, String, String, String)> = evses::table
                    .filter(evses::location_key.eq_any(chunk))
                    .select((evses::location_key, evses::uid, evses::status, evses::document))
                    .load(conn)?;
                stored.extend(rows.into_iter().map(|(key, uid, status, doc)| ((key, uid), (status, doc))));
            }
            let mut outcomes = Vec::with_capacity(updates.len());
            // Ordered maps: rows are updated in key order, as every batch writer does, so two
            // concurrent batches cannot deadlock on each other's rows.
            let mut changed: BTreeMap<(String, String), Evse> = BTreeMap::new();
            let mut bumps: BTreeMap<String, NaiveDateTime> = BTreeMap::new();
            let mut entries = Vec::new();
            for update in updates {
                let id = (update.location_key.to_ascii_uppercase(), update.evse_uid.key());
                let Some((stored_status, document)) = stored.get_mut(&id) else {
                    outcomes.push(Err(StoreError::NotFound(format!("EVSE {} of location {}", id.1, id.0))));
                    continue;
                };
                if stored_status.as_str() == update.status.as_str() {
                    outcomes.push(Ok(WriteOutcome::Unchanged));
                    continue;
                }
                let mut evse: Evse = match changed.remove(&id) {
                    Some(evse) => evse,
                    None => match from_document(&format!("{}/{}", id.0, id.1), document) {
                        Ok(evse) => evse,
                        Err(error) => {
                            outcomes.push(Err(error));
                            continue;
                        }
                    },
                };
                evse.status = update.status.clone();
                evse.last_updated = update.at;
                update.status.as_str().clone_into(stored_status);
                let at = update.at.naive_utc();
                let bump = bumps.entry(id.0.clone()).or_insert(at);
                *bump = (*bump).max(at);
                entries
                    .push((id.0.clone(), json!({ "evse_uid": evse.uid.as_str(), "status": update.status.as_str() })));
                changed.insert(id, evse);
                outcomes.push(Ok(WriteOutcome::Updated));
            }
            for ((key, uid), evse) in &changed {
                diesel::update(evses::table.find((key, uid)))
                    .set((
                        evses::status.eq(evse.status.as_str()),
                        evses::last_updated.eq(evse.last_updated.naive_utc()),
                        evses::document.eq(to_document(evse)?),
                    ))
                    .execute(conn)?;
            }
            for (key, at) in &bumps {
                diesel::update(locations::table.find(key).filter(locations::last_updated.lt(at)))
                    .set(locations::last_updated.eq(at))
                    .execute(conn)?;
            }
            let entries: Vec<NewEntry<'_>> = entries
                .iter()
                .map(|(key, payload)| NewEntry {
                    kind: ChangeKind::EvseStatus,
                    entity_key: key,
                    payload: payload.clone(),
                })
                .collect();
            let last_seq = change_feed::append_many_returning_last(conn, &entries)?;
            Ok(StatusBatch { outcomes, last_seq })
        })
    }
}
