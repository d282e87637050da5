//! The index: its state, how changes reach it, and how readers and writers share it.
//!
//! Locking: all structure (records, R-tree, text postings, cluster pyramid, lookup maps) sits behind
//! one `parking_lot::RwLock`. Queries take the read lock for their few microseconds. EVSE status
//! changes also take only the *read* lock: a status is an `AtomicU8` in the record, and the counts
//! derived from it (available EVSEs per location and per map cell) are atomics too, so status updates
//! run in parallel with queries and with each other, and are visible to the very next query.
//! Upserts and removals take the write lock for one record's worth of work (an R-tree insert, a few
//! posting lists), so readers wait microseconds at most. A bulk load builds a whole new state without
//! any lock and swaps it in.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use emsp_domain::{EvseStatus, Location, TariffId};
use parking_lot::RwLock;
use rstar::primitives::GeomWithData;
use rstar::{RStarInsertionStrategy, RTree, RTreeParams};

use crate::cluster::Pyramid;
use crate::cursor::CursorCodec;
use crate::error::{ChangeError, RejectReason};
use crate::hash::FxHashMap;
use crate::record::{AVAILABLE, Interner, LocationRecord, connector_bit, status_code, uid_hash};
use crate::text::TextIndex;

/// An R-tree entry: a unit vector and the slot of its location.
pub(crate) type GeoEntry = GeomWithData<[f64; 3], u32>;

/// Wider nodes than rstar's default (6): range queries over dense cities touch fewer, fuller
/// nodes, which matters more here than the slightly dearer inserts.
pub(crate) struct TreeParams;

impl RTreeParams for TreeParams {
    const MIN_SIZE: usize = 8;
    const MAX_SIZE: usize = 24;
    const REINSERTION_COUNT: usize = 6;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// One change from the store's change feed.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexChange {
    /// Insert or replace a location (with its EVSEs, connectors and tariff references).
    UpsertLocation(Box<Location>),
    /// Remove a location by key (`CC*PID*ID`, any case).
    RemoveLocation { key: String },
    /// A live EVSE status change.
    EvseStatus { location_key: String, evse_uid: String, status: EvseStatus },
    /// New tariff references of one connector.
    ConnectorTariffs { location_key: String, evse_uid: String, connector_id: String, tariff_ids: Vec<TariffId> },
    /// A party's data became stale (`CC*PID`, any case) or fresh again.
    PartyStale { party: String, stale: bool },
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    Inserted,
    Replaced,
    Removed,
    /// A removal of a location the index did not hold.
    NotFound,
    StatusChanged,
    TariffsChanged,
    /// How many locations of the party changed staleness.
    PartyStaleness(usize),
}

/// The result of a bulk load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkLoadReport {
    pub locations: usize,
    pub evses: usize,
    /// Locations not indexed, by key, with the reason.
    pub rejected: Vec<(String, RejectReason)>,
}

/// Index size, for metrics and health checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub locations: usize,
    pub evses: usize,
}

#[derive(Default)]
pub(crate) struct Inner {
    /// Slot -> record. Slots are never reused, so postings stay sorted by insertion.
    pub slots: Vec<Option<LocationRecord>>,
    pub by_key: FxHashMap<Arc<str>, u32>,
    /// Upper-case location id (the part after `CC*PID*`) -> slots.
    pub by_id: HashMap<Box<str>, Vec<u32>>,
    /// Normalised EVSE id -> (slot, EVSE index).
    pub by_evse_id: FxHashMap<Box<str>, (u32, u16)>,
    pub rtree: RTree<GeoEntry, TreeParams>,
    /// Slot -> unit vector: a dense column, so text candidates are cut to an area without
    /// touching their records.
    pub units: Vec<[f64; 3]>,
    /// Slot -> what filters can rule out without reading the record (another dense column).
    pub hot: Vec<Hot>,
    pub text: TextIndex,
    pub pyramid: Pyramid,
    pub strings: Interner,
    /// Slots of unpublished locations, added to map clusters per viewer.
    pub unpublished: BTreeSet<u32>,
    /// Parties (`CC*PID`, upper case) whose data is stale; their locations are marked on attach.
    pub stale_parties: BTreeSet<Box<str>>,
    pub stats: IndexStats,
}

/// The static part of a location that most filters test first: 16 bytes in slot order, so ruling a
/// candidate out costs no cache miss on its record.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Hot {
    pub standards: u64,
    pub max_power_kw: f32,
    pub has_dc: bool,
    pub has_ac: bool,
}

impl Hot {
    fn of(record: &LocationRecord) -> Self {
        // Over every connector, REMOVED EVSEs included: a status change may bring one back, and a
        // superset can only let through candidates that the full test then rejects.
        let mut hot = Self::default();
        for connector in record.connectors.iter() {
            hot.standards |= connector_bit(connector.standard);
            hot.max_power_kw = hot.max_power_kw.max(connector.power_kw);
            hot.has_dc |= connector.dc;
            hot.has_ac |= !connector.dc;
        }
        hot
    }
}

/// An EVSE id reduced to upper-case letters and digits: `nl-abc-e123` and `NL*ABC*E123` are one id.
pub fn normalize_evse_id(value: &str) -> String {
    value.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

/// Interleaves the bits of a Mercator position (a Z-order curve key).
fn morton((x, y): (u32, u32)) -> u64 {
    fn spread(value: u32) -> u64 {
        let mut v = u64::from(value);
        v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
        v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
        v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        v = (v | (v << 1)) & 0x5555_5555_5555_5555;
        v
    }
    spread(x) | (spread(y) << 1)
}

fn id_part(key: &str) -> &str {
    key.splitn(3, '*').nth(2).unwrap_or(key)
}

impl Inner {
    pub fn record(&self, slot: u32) -> Option<&LocationRecord> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn live_records(&self) -> impl Iterator<Item = (u32, &LocationRecord)> {
        self.slots.iter().enumerate().filter_map(|(slot, record)| record.as_ref().map(|r| (slot as u32, r)))
    }

    fn upsert(&mut self, location: &Location, bulk: bool) -> Result<ChangeOutcome, RejectReason> {
        let record = LocationRecord::build(location, &mut self.strings)?;
        let (slot, outcome) = match self.by_key.get(&*record.key) {
            Some(slot) => {
                let slot = *slot;
                self.detach(slot, bulk);
                (slot, ChangeOutcome::Replaced)
            }
            None => {
                let slot = self.slots.len() as u32;
                self.slots.push(None);
                self.by_key.insert(record.key.clone(), slot);
                self.by_id.entry(Box::from(id_part(&record.key))).or_default().push(slot);
                (slot, ChangeOutcome::Inserted)
            }
        };
        self.attach(slot, record, bulk);
        Ok(outcome)
    }

    fn remove(&mut self, key: &str) -> ChangeOutcome {
        let key = key.to_ascii_uppercase();
        let Some(slot) = self.by_key.remove(key.as_str()) else {
            return ChangeOutcome::NotFound;
        };
        self.detach(slot, false);
        if let Some(slots) = self.by_id.get_mut(id_part(&key)) {
            slots.retain(|other| *other != slot);
            if slots.is_empty() {
                self.by_id.remove(id_part(&key));
            }
        }
        ChangeOutcome::Removed
    }

    fn attach(&mut self, slot: u32, mut record: LocationRecord, bulk: bool) {
        if self.stale_parties.contains(record.party.to_ascii_uppercase().as_str()) {
            record.stale = true;
            *record.available.get_mut() = 0;
        }
        let unit = record.unit_vector();
        if !bulk {
            self.rtree.insert(GeoEntry::new(unit, slot));
        }
        if self.units.len() <= slot as usize {
            self.units.resize(slot as usize + 1, [0.0; 3]);
            self.hot.resize(slot as usize + 1, Hot::default());
        }
        self.units[slot as usize] = unit;
        self.hot[slot as usize] = Hot::of(&record);
        self.text.insert(slot, &record);
        if record.publish {
            self.pyramid.add(slot, &mut record);
        } else {
            self.unpublished.insert(slot);
        }
        for (index, evse) in record.evses.iter().enumerate() {
            if let Some(evse_id) = &evse.evse_id {
                let normalized = normalize_evse_id(evse_id);
                if !normalized.is_empty() {
                    self.by_evse_id.insert(Box::from(normalized.as_str()), (slot, index as u16));
                }
            }
        }
        self.stats.locations += 1;
        self.stats.evses += record.evses.len();
        self.slots[slot as usize] = Some(record);
    }

    fn detach(&mut self, slot: u32, bulk: bool) {
        let Some(record) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        if !bulk {
            self.rtree.remove(&GeoEntry::new(record.unit_vector(), slot));
        }
        self.text.remove(slot);
        if record.publish {
            let stale = self.pyramid.remove(slot, &record);
            // Deepest first (the list is by zoom): the deepest cell is recomputed from its few
            // locations, every coarser one from its four children, so no removal ever scans a
            // continent under the lock.
            for (zoom, cell) in stale.into_iter().rev() {
                let power = match self.pyramid.max_power_of_children(zoom, cell) {
                    Some(power) => power,
                    None => self.max_power_in_cell(zoom, cell),
                };
                self.pyramid.set_max_power(zoom, cell, power);
            }
        } else {
            self.unpublished.remove(&slot);
        }
        for evse in record.evses.iter() {
            if let Some(evse_id) = &evse.evse_id {
                let normalized = normalize_evse_id(evse_id);
                if self.by_evse_id.get(normalized.as_str()).is_some_and(|(owner, _)| *owner == slot) {
                    self.by_evse_id.remove(normalized.as_str());
                }
            }
        }
        self.stats.locations -= 1;
        self.stats.evses -= record.evses.len();
    }

    /// Highest power and how many published locations have it, in one pyramid cell.
    fn max_power_in_cell(&self, zoom: u8, cell: (u32, u32)) -> (f32, u32) {
        let mut best = (0.0f32, 0u32);
        for slot in self.slots_in_cell(zoom, cell) {
            let Some(record) = self.record(slot) else { continue };
            if !record.publish {
                continue;
            }
            if record.max_power_kw > best.0 {
                best = (record.max_power_kw, 1);
            } else if record.max_power_kw == best.0 {
                best.1 += 1;
            }
        }
        best
    }

    fn set_status(&self, location_key: &str, evse_uid: &str, status: &EvseStatus) -> Result<(), ChangeError> {
        let slot = self.slot_of(location_key)?;
        let record = self.record(slot).ok_or_else(|| ChangeError::UnknownLocation(location_key.to_owned()))?;
        let hash = uid_hash(evse_uid);
        let evse = record.evses.iter().find(|evse| evse.is(evse_uid, hash)).ok_or_else(|| {
            ChangeError::UnknownEvse { location_key: location_key.to_owned(), evse_uid: evse_uid.to_owned() }
        })?;
        let new = status_code(status);
        let old = evse.status.swap(new, Ordering::Relaxed);
        if record.stale {
            // Counted again from the status bytes when the party is fresh again.
            return Ok(());
        }
        let delta: i32 = match (old == AVAILABLE, new == AVAILABLE) {
            (false, true) => 1,
            (true, false) => -1,
            _ => return Ok(()),
        };
        if delta > 0 {
            record.available.fetch_add(1, Ordering::Relaxed);
        } else {
            record.available.fetch_sub(1, Ordering::Relaxed);
        }
        if record.publish {
            self.pyramid.adjust_available(record, delta);
        }
        Ok(())
    }

    /// Marks every location of `party` stale or fresh, moving their available EVSEs out of (or back
    /// into) the counts of locations and map cells.
    fn set_party_stale(&mut self, party: &str, stale: bool) -> usize {
        let party = party.to_ascii_uppercase();
        if stale {
            self.stale_parties.insert(Box::from(party.as_str()));
        } else {
            self.stale_parties.remove(party.as_str());
        }
        let Inner { slots, pyramid, .. } = self;
        let mut changed = 0;
        for record in slots.iter_mut().flatten() {
            if record.stale == stale || !record.party.eq_ignore_ascii_case(&party) {
                continue;
            }
            let before = i32::from(*record.available.get_mut());
            let after = if stale { 0 } else { record.count_available() };
            *record.available.get_mut() = after;
            record.stale = stale;
            if record.publish {
                pyramid.adjust_available(record, i32::from(after) - before);
            }
            changed += 1;
        }
        changed
    }

    fn slot_of(&self, location_key: &str) -> Result<u32, ChangeError> {
        let found = match self.by_key.get(location_key) {
            Some(slot) => Some(*slot),
            None => self.by_key.get(location_key.to_ascii_uppercase().as_str()).copied(),
        };
        found.ok_or_else(|| ChangeError::UnknownLocation(location_key.to_owned()))
    }

    fn set_tariffs(
        &mut self,
        location_key: &str,
        evse_uid: &str,
        connector_id: &str,
        tariff_ids: &[TariffId],
    ) -> Result<(), ChangeError> {
        let slot = self.slot_of(location_key)?;
        let ids: Box<[Arc<str>]> = tariff_ids.iter().map(|id| self.strings.intern(id.as_str())).collect();
        let record = self
            .slots
            .get_mut(slot as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| ChangeError::UnknownLocation(location_key.to_owned()))?;
        let hash = uid_hash(evse_uid);
        let evse = record.evses.iter().find(|evse| evse.is(evse_uid, hash)).ok_or_else(|| {
            ChangeError::UnknownEvse { location_key: location_key.to_owned(), evse_uid: evse_uid.to_owned() }
        })?;
        let range = usize::from(evse.connectors.start)..usize::from(evse.connectors.end);
        let connector = record
            .connectors
            .get_mut(range)
            .and_then(|connectors| connectors.iter_mut().find(|c| c.id.eq_ignore_ascii_case(connector_id)))
            .ok_or_else(|| ChangeError::UnknownConnector {
                location_key: location_key.to_owned(),
                evse_uid: evse_uid.to_owned(),
                connector_id: connector_id.to_owned(),
            })?;
        connector.tariff_ids = ids;
        Ok(())
    }
}

/// How long a pagination cursor stays valid.
pub const DEFAULT_CURSOR_TTL_S: u64 = 3_600;

/// The charge point search engine. Share it as `Arc<SearchIndex>`; every method takes `&self`.
pub struct SearchIndex {
    pub(crate) inner: RwLock<Inner>,
    ready: AtomicBool,
    pub(crate) cursors: CursorCodec,
}

impl SearchIndex {
    /// An empty index that signs cursors with `cursor_secret` (share it between replicas).
    pub fn new(cursor_secret: &[u8]) -> Self {
        Self::with_cursor_ttl(cursor_secret, DEFAULT_CURSOR_TTL_S)
    }

    pub fn with_cursor_ttl(cursor_secret: &[u8], ttl_s: u64) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            ready: AtomicBool::new(false),
            cursors: CursorCodec::new(cursor_secret, ttl_s),
        }
    }

    /// An index with a random cursor secret, for a single process and tests.
    pub fn with_random_secret() -> Self {
        let secret: [u8; 32] = rand::random();
        Self::new(&secret)
    }

    /// Whether the start-up bulk load has finished (or [`mark_ready`](Self::mark_ready) was called).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn stats(&self) -> IndexStats {
        self.inner.read().stats
    }

    /// Replaces the whole content with these locations, built without holding any lock, then marks
    /// the index ready. Invalid locations are reported, not indexed; a later duplicate key wins.
    /// Changes applied while it runs are overwritten by the snapshot: consume the change feed from
    /// the point the snapshot was read at.
    pub fn bulk_load(&self, locations: impl IntoIterator<Item = Location>) -> BulkLoadReport {
        // Staleness is per party, not per location: the new content keeps the parties marked so far.
        let mut inner = Inner { stale_parties: self.inner.read().stale_parties.clone(), ..Inner::default() };
        let mut rejected = Vec::new();
        let mut records: Vec<LocationRecord> = Vec::new();
        let mut positions: HashMap<Arc<str>, usize> = HashMap::new();
        for location in locations {
            match LocationRecord::build(&location, &mut inner.strings) {
                Ok(record) => match positions.get(&record.key) {
                    Some(at) => records[*at] = record,
                    None => {
                        positions.insert(record.key.clone(), records.len());
                        records.push(record);
                    }
                },
                Err(reason) => rejected.push((location.key(), reason)),
            }
        }
        drop(positions);
        // Slots in Z-order of the map: neighbours on the map are neighbours in memory, so a query
        // touching a few hundred nearby records reads a few cache lines each, not a page each.
        records.sort_by_cached_key(|record| morton(record.mercator));
        for mut record in records {
            record.relocate();
            let slot = inner.slots.len() as u32;
            inner.slots.push(None);
            inner.by_key.insert(record.key.clone(), slot);
            inner.by_id.entry(Box::from(id_part(&record.key))).or_default().push(slot);
            inner.attach(slot, record, true);
        }
        let entries: Vec<GeoEntry> =
            inner.live_records().map(|(slot, record)| GeoEntry::new(record.unit_vector(), slot)).collect();
        inner.rtree = RTree::bulk_load_with_params(entries);
        let report = BulkLoadReport { locations: inner.stats.locations, evses: inner.stats.evses, rejected };
        // Swap under the lock, free the old content after it: dropping a million records takes
        // longer than readers should wait.
        let old = std::mem::replace(&mut *self.inner.write(), inner);
        drop(old);
        self.mark_ready();
        report
    }

    /// Inserts or replaces a location.
    pub fn upsert(&self, location: &Location) -> Result<ChangeOutcome, ChangeError> {
        // Built under the lock because the record interns into the shared strings; that is a few
        // microseconds, far below what would justify a second lock.
        self.inner
            .write()
            .upsert(location, false)
            .map_err(|reason| ChangeError::Rejected { key: location.key(), reason })
    }

    pub fn remove(&self, location_key: &str) -> ChangeOutcome {
        self.inner.write().remove(location_key)
    }

    /// Changes an EVSE's live status; takes only the shared lock.
    pub fn set_evse_status(&self, location_key: &str, evse_uid: &str, status: &EvseStatus) -> Result<(), ChangeError> {
        self.inner.read().set_status(location_key, evse_uid, status)
    }

    pub fn set_connector_tariffs(
        &self,
        location_key: &str,
        evse_uid: &str,
        connector_id: &str,
        tariff_ids: &[TariffId],
    ) -> Result<(), ChangeError> {
        self.inner.write().set_tariffs(location_key, evse_uid, connector_id, tariff_ids)
    }

    /// Marks a party's data stale (its hub reports it not CONNECTED) or fresh again: its EVSEs
    /// report status UNKNOWN and count as unavailable while stale. Also applies to its locations
    /// upserted or bulk-loaded later, until cleared. Returns how many locations changed.
    pub fn set_party_stale(&self, party: &str, stale: bool) -> usize {
        self.inner.write().set_party_stale(party, stale)
    }

    /// Parties marked stale (`CC*PID`, upper case).
    pub fn stale_parties(&self) -> Vec<String> {
        self.inner.read().stale_parties.iter().map(|party| party.to_string()).collect()
    }

    /// Applies one change of the store's change feed.
    pub fn apply(&self, change: IndexChange) -> Result<ChangeOutcome, ChangeError> {
        match change {
            IndexChange::UpsertLocation(location) => self.upsert(&location),
            IndexChange::RemoveLocation { key } => Ok(self.remove(&key)),
            IndexChange::EvseStatus { location_key, evse_uid, status } => {
                self.set_evse_status(&location_key, &evse_uid, &status).map(|()| ChangeOutcome::StatusChanged)
            }
            IndexChange::ConnectorTariffs { location_key, evse_uid, connector_id, tariff_ids } => self
                .set_connector_tariffs(&location_key, &evse_uid, &connector_id, &tariff_ids)
                .map(|()| ChangeOutcome::TariffsChanged),
            IndexChange::PartyStale { party, stale } => {
                Ok(ChangeOutcome::PartyStaleness(self.set_party_stale(&party, stale)))
            }
        }
    }
}
