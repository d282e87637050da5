//! The compact per-location record the index keeps instead of a domain `Location`.
//!
//! A million EVSEs must fit in well under a gigabyte, so the record keeps only what search, filters
//! and a result card need: repeated strings (cities, operators, parties, tariff ids, connector ids)
//! are interned `Arc<str>`s shared by every location, enums are bytes and bit masks, and each EVSE's
//! live status is an `AtomicU8` so a status change is one store, visible to the very next query.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU16, Ordering};

use chrono_tz::Tz;
use emsp_domain::opening_hours;
use emsp_domain::{
    Capability, ConnectorStandard, EvseStatus, Facility, GeoPoint, Hours, Location, ParkingType, PowerType,
};

use crate::error::RejectReason;

/// Strings shared between records. It never forgets a string: the set of cities, operators and
/// tariff ids only grows slowly, and forgetting would need reference counting on every removal.
#[derive(Default)]
pub struct Interner {
    strings: HashSet<Arc<str>>,
}

impl Interner {
    pub fn intern(&mut self, value: &str) -> Arc<str> {
        if let Some(existing) = self.strings.get(value) {
            return existing.clone();
        }
        let shared: Arc<str> = Arc::from(value);
        self.strings.insert(shared.clone());
        shared
    }

    pub fn get(&self, value: &str) -> Option<Arc<str>> {
        self.strings.get(value).cloned()
    }
}

/// Index of a known enum value, or `OTHER` for values outside the specification.
pub const OTHER: u8 = u8::MAX;

fn position<T: PartialEq>(known: &[T], value: &T) -> u8 {
    known.iter().position(|candidate| candidate == value).map_or(OTHER, |index| index as u8)
}

/// Bit of a connector standard in a 64-bit mask; unknown standards share the top bit.
pub fn standard_bit(standard: &ConnectorStandard) -> u64 {
    let index = position(ConnectorStandard::KNOWN, standard);
    if usize::from(index) < 63 { 1 << index } else { 1 << 63 }
}

/// Bit of a connector's stored standard index, matching [`standard_bit`].
pub fn connector_bit(standard: u8) -> u64 {
    if standard < 63 { 1 << standard } else { 1 << 63 }
}

pub fn capability_bit(capability: &Capability) -> u16 {
    let index = position(Capability::KNOWN, capability);
    if usize::from(index) < 16 { 1 << index } else { 0 }
}

pub fn facility_bit(facility: &Facility) -> u32 {
    let index = position(Facility::KNOWN, facility);
    if usize::from(index) < 32 { 1 << index } else { 0 }
}

pub fn status_code(status: &EvseStatus) -> u8 {
    let code = position(EvseStatus::KNOWN, status);
    if code == OTHER { position(EvseStatus::KNOWN, &EvseStatus::Unknown) } else { code }
}

pub fn status_from_code(code: u8) -> EvseStatus {
    EvseStatus::KNOWN.get(usize::from(code)).cloned().unwrap_or(EvseStatus::Unknown)
}

pub const AVAILABLE: u8 = 0;
pub const REMOVED: u8 = 6;

pub struct ConnectorRecord {
    pub id: Arc<str>,
    pub standard: u8,
    pub dc: bool,
    pub power_kw: f32,
    pub tariff_ids: Box<[Arc<str>]>,
}

/// An EVSE uid, kept inside the EVSE record when short (nearly all are), so a status update
/// compares it without following a pointer to another cache line.
pub enum Uid {
    Inline { len: u8, bytes: [u8; Uid::INLINE] },
    Shared(Arc<str>),
}

impl Uid {
    const INLINE: usize = 22;

    pub fn new(value: &str) -> Self {
        if value.len() <= Self::INLINE {
            let mut bytes = [0u8; Self::INLINE];
            bytes[..value.len()].copy_from_slice(value.as_bytes());
            Uid::Inline { len: value.len() as u8, bytes }
        } else {
            Uid::Shared(Arc::from(value))
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // Built from a &str above, so always valid UTF-8.
            Uid::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            Uid::Shared(shared) => shared,
        }
    }

    pub(crate) fn eq_ignore_ascii_case(&self, other: &str) -> bool {
        match self {
            Uid::Inline { len, bytes } => bytes[..usize::from(*len)].eq_ignore_ascii_case(other.as_bytes()),
            Uid::Shared(shared) => shared.eq_ignore_ascii_case(other),
        }
    }
}

pub struct EvseRecord {
    pub uid: Uid,
    /// Hash of the upper-case uid: status updates compare it before reading the uid's text.
    pub uid_hash: u32,
    pub evse_id: Option<Box<str>>,
    pub status: AtomicU8,
    pub capabilities: u16,
    /// Range of this EVSE's connectors in the location's connector list.
    pub connectors: std::ops::Range<u16>,
}

/// Case-insensitive hash of an EVSE uid (FNV-1a over upper-case bytes).
pub fn uid_hash(uid: &str) -> u32 {
    uid.bytes()
        .fold(0x811c_9dc5u32, |hash, byte| (hash ^ u32::from(byte.to_ascii_uppercase())).wrapping_mul(0x0100_0193))
}

impl EvseRecord {
    /// Whether this is the EVSE with `uid` (any case), `hash` being [`uid_hash`] of it.
    pub fn is(&self, uid: &str, hash: u32) -> bool {
        self.uid_hash == hash && self.uid.eq_ignore_ascii_case(uid)
    }

    pub fn status(&self) -> u8 {
        self.status.load(Ordering::Relaxed)
    }
}

/// Opening hours that are not simply "always open".
pub struct OpeningHours {
    pub hours: Hours,
    pub zone: Tz,
}

pub struct LocationRecord {
    pub key: Arc<str>,
    pub party: Arc<str>,
    pub name: Option<Arc<str>>,
    pub address: Arc<str>,
    pub city: Arc<str>,
    pub postal_code: Option<Arc<str>>,
    pub country: Arc<str>,
    pub operator: Option<Arc<str>>,
    pub latitude: f64,
    pub longitude: f64,
    /// Web Mercator position at zoom 32, for map clustering.
    pub mercator: (u32, u32),
    /// Indices of this location's cells in the cluster pyramid, one per level.
    pub cells: [u32; crate::cluster::LEVELS],
    pub publish: bool,
    /// Token uids and group ids (upper case) that may see an unpublished location.
    pub allowed: Box<[Box<str>]>,
    pub parking_type: u8,
    pub facilities: u32,
    pub hours: Option<Box<OpeningHours>>,
    /// The location's own zone, else its country's single zone, else UTC (tariff times are local).
    pub time_zone: Tz,
    pub charging_when_closed: bool,
    pub evses: Box<[EvseRecord]>,
    pub connectors: Box<[ConnectorRecord]>,
    /// EVSEs whose status is AVAILABLE, kept in step with the status bytes; 0 while stale.
    pub available: AtomicU16,
    /// The party's data is stale (its hub reports it not CONNECTED): statuses read as UNKNOWN and
    /// nothing counts as available. Changed only under the index's write lock.
    pub stale: bool,
    /// Union of the connector standards and the highest power, over EVSEs not REMOVED at upsert.
    pub standards: u64,
    pub max_power_kw: f32,
}

/// Highest count a location may hold (EVSE and connector ranges are stored in 16 bits).
const MAX_PER_LOCATION: usize = u16::MAX as usize;

impl LocationRecord {
    /// Builds the record, rejecting locations the index must not hold.
    pub fn build(location: &Location, strings: &mut Interner) -> Result<Self, RejectReason> {
        let mut checked = location.validate();
        if checked.as_ref().is_err_and(|error| error.field == "time_zone") {
            // A misspelt zone is no reason to hide a charger: hours fall back to the country's zone.
            let mut without_zone = location.clone();
            without_zone.time_zone = None;
            checked = without_zone.validate();
        }
        if let Err(error) = checked {
            return Err(if error.field.starts_with("coordinates") {
                RejectReason::Coordinates(error)
            } else {
                RejectReason::Invalid(error)
            });
        }
        let connector_count: usize = location.evses.iter().map(|evse| evse.connectors.len()).sum();
        if location.evses.len() >= MAX_PER_LOCATION || connector_count >= MAX_PER_LOCATION {
            return Err(RejectReason::TooLarge { evses: location.evses.len(), connectors: connector_count });
        }
        let mut connectors = Vec::with_capacity(connector_count);
        let mut evses = Vec::with_capacity(location.evses.len());
        let (mut standards, mut max_power_kw, mut available) = (0u64, 0f32, 0u16);
        for evse in &location.evses {
            let start = connectors.len() as u16;
            let status = status_code(&evse.status);
            for connector in &evse.connectors {
                let power_kw = connector.max_power_kw() as f32;
                if status != REMOVED {
                    standards |= standard_bit(&connector.standard);
                    max_power_kw = max_power_kw.max(power_kw);
                }
                connectors.push(ConnectorRecord {
                    id: strings.intern(connector.id.as_str()),
                    standard: position(ConnectorStandard::KNOWN, &connector.standard),
                    dc: connector.power_type == PowerType::Dc,
                    power_kw,
                    tariff_ids: connector.tariff_ids.iter().map(|id| strings.intern(id.as_str())).collect(),
                });
            }
            if status == AVAILABLE {
                available += 1;
            }
            evses.push(EvseRecord {
                uid: Uid::new(evse.uid.as_str()),
                uid_hash: uid_hash(evse.uid.as_str()),
                evse_id: evse.evse_id.as_deref().map(Box::from),
                status: AtomicU8::new(status),
                capabilities: evse.capabilities.iter().map(capability_bit).fold(0, |mask, bit| mask | bit),
                connectors: start..connectors.len() as u16,
            });
        }
        let hours = location.opening_times.as_ref().and_then(|hours| {
            let always =
                hours.twentyfourseven && hours.exceptional_closings.is_empty() && hours.exceptional_openings.is_empty();
            (!always).then(|| {
                Box::new(OpeningHours { hours: hours.clone(), zone: opening_hours::location_time_zone(location) })
            })
        });
        let allowed = location
            .publish_allowed_to
            .iter()
            .flat_map(|token| [token.uid.as_deref(), token.group_id.as_deref()])
            .flatten()
            .map(|id| Box::from(id.to_ascii_uppercase().as_str()))
            .collect();
        let party = location.party.to_string();
        let operator = location.operator.as_ref().map(|details| strings.intern(&details.name));
        Ok(Self {
            key: Arc::from(location.key().as_str()),
            party: strings.intern(&party),
            name: location.name.as_deref().map(Arc::from),
            address: Arc::from(location.address.as_str()),
            city: strings.intern(&location.city),
            postal_code: location.postal_code.as_deref().map(|code| strings.intern(code)),
            country: strings.intern(&location.country.to_ascii_uppercase()),
            operator,
            latitude: location.coordinates.latitude,
            longitude: location.coordinates.longitude,
            mercator: crate::sphere::mercator(location.coordinates.latitude, location.coordinates.longitude),
            cells: [crate::cluster::NO_CELL; crate::cluster::LEVELS],
            publish: location.publish,
            allowed,
            parking_type: location.parking_type.as_ref().map_or(OTHER, |kind| position(ParkingType::KNOWN, kind)),
            facilities: location.facilities.iter().map(facility_bit).fold(0, |mask, bit| mask | bit),
            hours,
            time_zone: opening_hours::location_time_zone(location),
            charging_when_closed: location.charging_when_closed == Some(true),
            evses: evses.into_boxed_slice(),
            connectors: connectors.into_boxed_slice(),
            available: AtomicU16::new(available),
            stale: false,
            standards,
            max_power_kw,
        })
    }

    pub fn unit_vector(&self) -> crate::sphere::Vec3 {
        crate::sphere::unit_vector(self.latitude, self.longitude)
    }

    /// Moves the EVSE and connector lists and the record's own strings to fresh allocations, so
    /// that records attached in map order also have these next to each other in memory.
    pub fn relocate(&mut self) {
        // The strings a result card shows, too: a page of neighbours then reads neighbouring memory.
        self.key = Arc::from(&*self.key);
        self.name = self.name.as_deref().map(Arc::from);
        self.address = Arc::from(&*self.address);
        let evses: Vec<EvseRecord> = std::mem::take(&mut self.evses).into_vec();
        let mut fresh = Vec::with_capacity(evses.len());
        fresh.extend(evses);
        self.evses = fresh.into_boxed_slice();
        let connectors: Vec<ConnectorRecord> = std::mem::take(&mut self.connectors).into_vec();
        let mut fresh = Vec::with_capacity(connectors.len());
        fresh.extend(connectors);
        self.connectors = fresh.into_boxed_slice();
    }

    pub fn available(&self) -> u32 {
        u32::from(self.available.load(Ordering::Relaxed))
    }

    /// EVSEs whose status byte says AVAILABLE, whether or not the record is stale.
    pub fn count_available(&self) -> u16 {
        self.evses.iter().filter(|evse| evse.status() == AVAILABLE).count() as u16
    }

    /// The live status search reports: UNKNOWN for every EVSE of a stale party, else the status byte.
    pub fn reported_status(&self, evse: &EvseRecord) -> EvseStatus {
        let status = status_from_code(evse.status());
        if self.stale && status != EvseStatus::Removed { EvseStatus::Unknown } else { status }
    }

    /// EVSEs not REMOVED, read from the live status bytes.
    pub fn total_evses(&self) -> u32 {
        self.evses.iter().filter(|evse| evse.status() != REMOVED).count() as u32
    }

    pub fn connectors_of(&self, evse: &EvseRecord) -> &[ConnectorRecord] {
        let range = usize::from(evse.connectors.start)..usize::from(evse.connectors.end);
        self.connectors.get(range).unwrap_or(&[])
    }

    pub fn visible_to(&self, viewer: &crate::query::Viewer) -> bool {
        if self.publish {
            return true;
        }
        [viewer.token_uid.as_deref(), viewer.group_id.as_deref()]
            .into_iter()
            .flatten()
            .any(|id| self.allowed.iter().any(|allowed| allowed.eq_ignore_ascii_case(id)))
    }

    pub fn summary(&self) -> LocationSummary {
        LocationSummary {
            key: self.key.clone(),
            party: self.party.clone(),
            name: self.name.clone(),
            address: self.address.clone(),
            city: self.city.clone(),
            postal_code: self.postal_code.clone(),
            country: self.country.clone(),
            operator: self.operator.clone(),
            coordinates: GeoPoint { latitude: self.latitude, longitude: self.longitude },
            max_power_kw: f64::from(self.max_power_kw),
            available_evses: self.available(),
            total_evses: self.total_evses(),
            stale: self.stale,
            standards_mask: self.standards,
            parking_type: ParkingType::KNOWN.get(usize::from(self.parking_type)).cloned(),
        }
    }
}

/// What a search result shows of a location; strings are shared with the index, so cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationSummary {
    /// `CC*PID*ID`, the key to fetch the full location from the store.
    pub key: Arc<str>,
    /// `CC*PID` of the CPO.
    pub party: Arc<str>,
    pub name: Option<Arc<str>>,
    pub address: Arc<str>,
    pub city: Arc<str>,
    pub postal_code: Option<Arc<str>>,
    /// ISO 3166-1 alpha-3, upper case.
    pub country: Arc<str>,
    pub operator: Option<Arc<str>>,
    pub coordinates: GeoPoint,
    pub max_power_kw: f64,
    pub available_evses: u32,
    /// EVSEs not REMOVED.
    pub total_evses: u32,
    /// The CPO's hub reports it not CONNECTED: live statuses are UNKNOWN, nothing is available.
    pub stale: bool,
    standards_mask: u64,
    pub parking_type: Option<ParkingType>,
}

impl LocationSummary {
    /// The connector standards the location offers (known ones, in specification order).
    pub fn connector_standards(&self) -> Vec<ConnectorStandard> {
        ConnectorStandard::KNOWN
            .iter()
            .filter(|standard| self.standards_mask & standard_bit(standard) != 0)
            .cloned()
            .collect()
    }
}

/// Read-only view of an indexed location, handed to a caller's price function.
pub struct LocationView<'a> {
    pub(crate) record: &'a LocationRecord,
}

impl<'a> LocationView<'a> {
    pub fn key(&self) -> &'a str {
        &self.record.key
    }

    pub fn party(&self) -> &'a str {
        &self.record.party
    }

    pub fn country(&self) -> &'a str {
        &self.record.country
    }

    pub fn max_power_kw(&self) -> f64 {
        f64::from(self.record.max_power_kw)
    }

    /// The zone tariff restrictions are read in: the location's own, else its country's single
    /// zone, else UTC.
    pub fn time_zone(&self) -> Tz {
        self.record.time_zone
    }

    /// EVSEs that are not REMOVED.
    pub fn evses(&self) -> impl Iterator<Item = EvseView<'a>> + use<'a> {
        let record = self.record;
        record.evses.iter().filter(|evse| evse.status() != REMOVED).map(move |evse| EvseView { record, evse })
    }
}

pub struct EvseView<'a> {
    record: &'a LocationRecord,
    evse: &'a EvseRecord,
}

impl<'a> EvseView<'a> {
    pub fn uid(&self) -> &'a str {
        self.evse.uid.as_str()
    }

    /// The live status; UNKNOWN for a stale party.
    pub fn status(&self) -> EvseStatus {
        self.record.reported_status(self.evse)
    }

    pub fn connectors(&self) -> impl Iterator<Item = ConnectorView<'a>> + use<'a> {
        let (record, evse) = (self.record, self.evse);
        record.connectors_of(evse).iter().map(|connector| ConnectorView { connector })
    }
}

pub struct ConnectorView<'a> {
    connector: &'a ConnectorRecord,
}

impl<'a> ConnectorView<'a> {
    pub fn id(&self) -> &'a str {
        &self.connector.id
    }

    /// The standard, or `None` for one outside the specification.
    pub fn standard(&self) -> Option<&'static ConnectorStandard> {
        ConnectorStandard::KNOWN.get(usize::from(self.connector.standard))
    }

    pub fn is_dc(&self) -> bool {
        self.connector.dc
    }

    pub fn max_power_kw(&self) -> f64 {
        f64::from(self.connector.power_kw)
    }

    pub fn tariff_ids(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let connector = self.connector;
        connector.tariff_ids.iter().map(|id| &**id)
    }
}
