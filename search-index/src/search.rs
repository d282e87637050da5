//! Query execution: candidates, filters, ordering, pages and counts.
//!
//! Candidates come from the most selective source available: an exact EVSE or location id, the
//! text postings, or the geographic area; the rest of the query is checked per candidate against
//! the compact record, after a dense per-slot summary has ruled out what it can without touching
//! the record. Distance-ordered radius and nearest queries without counts search growing circles
//! nearest-first (the first one sized from the local density) and stop as soon as a page is full,
//! which keeps the common "chargers around me" query in microseconds however dense the city.
//! Everything else collects all matches (needed for counts anyway) and selects one page by
//! (sort key, location key), the same key the cursor holds.

use std::cmp::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use emsp_domain::opening_hours::is_open_at;
use emsp_domain::{ConnectorStandard, GeoPoint};
use rstar::{AABB, SelectionFunction};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::cursor::Position;
use crate::error::SearchError;
use crate::hash::FxHashMap;
use crate::index::{GeoEntry, Hot, Inner, SearchIndex, normalize_evse_id};
use crate::query::{
    Area, Current, Facets, Filters, MAX_CORRIDOR_DISTANCE_M, MAX_PAGE_SIZE, MAX_RADIUS_M, MAX_ROUTE_M, MAX_VERTICES,
    OpenAt, PowerBand, PriceOracle, Route, SearchHit, SearchPage, SearchQuery, SortBy,
};
use crate::record::{
    AVAILABLE, LocationRecord, LocationView, REMOVED, capability_bit, connector_bit, facility_bit, standard_bit,
};
use crate::sphere::{
    LonLatBox, Segment, Vec3, check_point, chord2, chord2_to_m, decode_polyline, dot, m_to_chord2, polygon_contains,
    route_segments, split_box, unit_vector,
};
use crate::text::TextQuery;

/// Filters turned into masks and interned strings, ready to test records.
pub(crate) struct CompiledFilters {
    standards: u64,
    current: Option<Current>,
    min_kw: f32,
    max_kw: f32,
    connector_filter: bool,
    min_available: u32,
    capabilities: u16,
    parties: Vec<Arc<str>>,
    operators: Vec<String>,
    countries: Vec<String>,
    facilities: u32,
    parking_types: Vec<u8>,
    open_at: Option<DateTime<Utc>>,
    /// A filter value no location can have (an unknown party, an unknown facility).
    impossible: bool,
    /// Facets are counted, so the standard and power filters must not rule candidates out early.
    counts_facets: bool,
}

impl CompiledFilters {
    pub fn compile(filters: &Filters, inner: &Inner, now: DateTime<Utc>) -> Result<Self, SearchError> {
        let min_kw = filters.min_power_kw.unwrap_or(0.0);
        let max_kw = filters.max_power_kw.unwrap_or(f64::INFINITY);
        if min_kw.is_nan() || max_kw.is_nan() || min_kw < 0.0 || max_kw < min_kw {
            return Err(SearchError::InvalidPowerRange { min_kw, max_kw });
        }
        let mut impossible = false;
        let parties: Vec<Arc<str>> =
            filters.parties.iter().filter_map(|party| inner.strings.get(&party.to_string())).collect();
        if !filters.parties.is_empty() && parties.is_empty() {
            impossible = true;
        }
        let mut facilities = 0;
        for facility in &filters.facilities {
            let bit = facility_bit(facility);
            impossible |= bit == 0;
            facilities |= bit;
        }
        let mut capabilities = 0;
        for capability in &filters.capabilities {
            let bit = capability_bit(capability);
            impossible |= bit == 0;
            capabilities |= bit;
        }
        let standards = filters.connector_standards.iter().map(standard_bit).fold(0, |mask, bit| mask | bit);
        let connector_filter = standards != 0
            || filters.current.is_some()
            || filters.min_power_kw.is_some()
            || filters.max_power_kw.is_some();
        Ok(Self {
            standards,
            current: filters.current,
            min_kw: min_kw as f32,
            max_kw: max_kw as f32,
            connector_filter,
            min_available: filters.min_available.unwrap_or(0),
            capabilities,
            parties,
            operators: filters.operators.iter().map(|name| name.to_lowercase()).collect(),
            countries: filters.countries.iter().map(|code| code.to_ascii_uppercase()).collect(),
            facilities,
            parking_types: filters
                .parking_types
                .iter()
                .map(|kind| {
                    emsp_domain::ParkingType::KNOWN.iter().position(|k| k == kind).map_or(u8::MAX - 1, |i| i as u8)
                })
                .collect(),
            open_at: filters.open.map(|open| match open {
                OpenAt::Now => now,
                OpenAt::At(at) => at,
            }),
            impossible,
            counts_facets: false,
        })
    }

    fn location_matches(&self, record: &LocationRecord) -> bool {
        if self.impossible {
            return false;
        }
        if !self.parties.is_empty() && !self.parties.iter().any(|party| Arc::ptr_eq(party, &record.party)) {
            return false;
        }
        if !self.operators.is_empty() {
            let Some(operator) = record.operator.as_deref() else { return false };
            if !self.operators.iter().any(|name| name == &operator.to_lowercase()) {
                return false;
            }
        }
        if !self.countries.is_empty() && !self.countries.iter().any(|code| **code == *record.country) {
            return false;
        }
        if record.facilities & self.facilities != self.facilities {
            return false;
        }
        if !self.parking_types.is_empty() && !self.parking_types.contains(&record.parking_type) {
            return false;
        }
        if let Some(at) = self.open_at
            && !record.charging_when_closed
            && let Some(hours) = &record.hours
            && !is_open_at(Some(&hours.hours), hours.zone, at)
        {
            return false;
        }
        true
    }

    /// Whether enough EVSEs match the EVSE-level filters; `with_connectors: false` ignores the
    /// standard and power filters (for facets).
    fn evses_match(&self, record: &LocationRecord, with_connectors: bool) -> bool {
        let connector_filter = with_connectors && self.connector_filter;
        let needed =
            if connector_filter || self.capabilities != 0 { self.min_available.max(1) } else { self.min_available };
        if needed == 0 {
            return true;
        }
        if self.min_available > 0 && record.available() < self.min_available {
            return false;
        }
        let mut found = 0;
        for evse in record.evses.iter() {
            let status = evse.status();
            if status == REMOVED || (self.min_available > 0 && status != AVAILABLE) {
                continue;
            }
            if evse.capabilities & self.capabilities != self.capabilities {
                continue;
            }
            if connector_filter && !record.connectors_of(evse).iter().any(|c| self.connector_matches(c, true)) {
                continue;
            }
            if !connector_filter
                && self.current.is_some()
                && !record.connectors_of(evse).iter().any(|c| self.connector_matches(c, false))
            {
                continue;
            }
            found += 1;
            if found >= needed {
                return true;
            }
        }
        false
    }

    fn connector_matches(&self, connector: &crate::record::ConnectorRecord, with_standard_power: bool) -> bool {
        let current_ok = match self.current {
            None => true,
            Some(Current::Dc) => connector.dc,
            Some(Current::Ac) => !connector.dc,
        };
        if !with_standard_power {
            return current_ok;
        }
        current_ok
            && (self.standards == 0 || self.standards & connector_bit(connector.standard) != 0)
            && connector.power_kw >= self.min_kw
            && connector.power_kw <= self.max_kw
    }

    /// False when the location's static summary already rules it out (never false for a match).
    /// Facets ignore the standard and power filters, so this is skipped when counting them.
    fn may_match(&self, hot: &Hot) -> bool {
        if !self.counts_facets && !self.connectors_may_match(hot) {
            return false;
        }
        match self.current {
            Some(Current::Dc) => hot.has_dc,
            Some(Current::Ac) => hot.has_ac,
            None => true,
        }
    }

    /// The standard and power part of [`may_match`](Self::may_match).
    fn connectors_may_match(&self, hot: &Hot) -> bool {
        !self.connector_filter
            || ((self.standards == 0 || hot.standards & self.standards != 0) && hot.max_power_kw >= self.min_kw)
    }

    pub fn matches(&self, record: &LocationRecord) -> bool {
        self.location_matches(record) && self.evses_match(record, true)
    }
}

/// The "where" of a query, validated and converted for the R-tree.
enum Region {
    Everywhere,
    Radius {
        center: Vec3,
        chord2: f64,
    },
    Nearest {
        center: Vec3,
        k: usize,
    },
    Boxes(Vec<LonLatBox>),
    /// A ring with longitudes unwrapped to be continuous (they may pass 180 or -180), and the
    /// boxes (split at the antimeridian) that hold it.
    Polygon {
        ring: Vec<GeoPoint>,
        boxes: Vec<LonLatBox>,
    },
    Corridor {
        segments: Vec<Segment>,
        max_distance_m: f64,
    },
}

fn compile_area(area: Option<&Area>) -> Result<Region, SearchError> {
    let Some(area) = area else { return Ok(Region::Everywhere) };
    Ok(match area {
        Area::Radius { center, radius_m } => {
            check_point(center, "center")?;
            if !radius_m.is_finite() || *radius_m <= 0.0 || *radius_m > MAX_RADIUS_M {
                return Err(SearchError::InvalidRadius { radius_m: *radius_m, max_m: MAX_RADIUS_M });
            }
            Region::Radius { center: unit_vector(center.latitude, center.longitude), chord2: m_to_chord2(*radius_m) }
        }
        Area::Nearest { center, k } => {
            check_point(center, "center")?;
            if *k == 0 || *k > MAX_PAGE_SIZE {
                return Err(SearchError::InvalidK { k: *k, max: MAX_PAGE_SIZE });
            }
            Region::Nearest { center: unit_vector(center.latitude, center.longitude), k: *k }
        }
        Area::BoundingBox { south, west, north, east } => Region::Boxes(split_box(*south, *west, *north, *east)?),
        Area::Polygon(ring) => {
            if ring.len() < 3 {
                return Err(SearchError::InvalidPolygon("it needs at least 3 vertices"));
            }
            if ring.len() > MAX_VERTICES {
                return Err(SearchError::InvalidPolygon("it has too many vertices"));
            }
            for point in ring {
                check_point(point, "polygon vertex")?;
            }
            // An edge spanning more than 180 degrees of longitude is taken to cross the
            // antimeridian, as on a map: unwrap the longitudes so the ring is continuous.
            let mut unwrapped: Vec<GeoPoint> = Vec::with_capacity(ring.len());
            for point in ring {
                let longitude = match unwrapped.last() {
                    None => point.longitude,
                    Some(previous) => {
                        let mut step = point.longitude - previous.longitude.rem_euclid(360.0);
                        step = (step + 540.0).rem_euclid(360.0) - 180.0;
                        previous.longitude + step
                    }
                };
                unwrapped.push(GeoPoint { latitude: point.latitude, longitude });
            }
            let fold = |pick: fn(&GeoPoint) -> f64, init: f64, f: fn(f64, f64) -> f64| {
                unwrapped.iter().map(pick).fold(init, f)
            };
            let (south, north) = (fold(|p| p.latitude, 90.0, f64::min), fold(|p| p.latitude, -90.0, f64::max));
            let (west, east) =
                (fold(|p| p.longitude, f64::INFINITY, f64::min), fold(|p| p.longitude, f64::NEG_INFINITY, f64::max));
            if south == north || west == east {
                return Err(SearchError::InvalidPolygon("it has no area"));
            }
            if east - west >= 360.0 {
                return Err(SearchError::InvalidPolygon("it wraps around the globe"));
            }
            let boxes = if west < -180.0 {
                vec![
                    LonLatBox { south, west: west + 360.0, north, east: 180.0 },
                    LonLatBox { south, west: -180.0, north, east },
                ]
            } else if east > 180.0 {
                vec![
                    LonLatBox { south, west, north, east: 180.0 },
                    LonLatBox { south, west: -180.0, north, east: east - 360.0 },
                ]
            } else {
                vec![LonLatBox { south, west, north, east }]
            };
            Region::Polygon { ring: unwrapped, boxes }
        }
        Area::Corridor { route, max_distance_m } => {
            if !max_distance_m.is_finite() || *max_distance_m <= 0.0 || *max_distance_m > MAX_CORRIDOR_DISTANCE_M {
                return Err(SearchError::InvalidCorridorDistance {
                    distance_m: *max_distance_m,
                    max_m: MAX_CORRIDOR_DISTANCE_M,
                });
            }
            let points = match route {
                Route::Encoded(encoded) => decode_polyline(encoded)?,
                Route::Points(points) => {
                    for point in points {
                        check_point(point, "route point")
                            .map_err(|_| SearchError::InvalidPolyline("a route point is out of range".into()))?;
                    }
                    points.clone()
                }
            };
            if points.len() < 2 {
                return Err(SearchError::InvalidPolyline("a route needs at least 2 points".into()));
            }
            if points.len() > MAX_VERTICES {
                return Err(SearchError::InvalidPolyline("the route has too many points".into()));
            }
            // Pieces about as long as the corridor is wide keep each R-tree probe tight.
            let segments = route_segments(&points, (2.0 * max_distance_m).max(2_000.0));
            let length: f64 = segments.iter().map(|s| s.length_m).sum();
            if length > MAX_ROUTE_M {
                return Err(SearchError::RouteTooLong { max_m: MAX_ROUTE_M });
            }
            Region::Corridor { segments, max_distance_m: *max_distance_m }
        }
    })
}

/// The R-tree probe of one corridor segment: inside a sphere around the segment and inside the slab
/// around its great-circle plane. Pruning whole nodes by the slab, not only by the sphere, keeps a
/// probe to about the corridor's own area instead of a disk several times larger.
struct Capsule {
    mid: Vec3,
    reach: f64,
    normal: Option<Vec3>,
    sin_reach: f64,
}

impl SelectionFunction<GeoEntry> for Capsule {
    fn should_unpack_parent(&self, envelope: &AABB<[f64; 3]>) -> bool {
        if envelope.distance_2(&self.mid) > self.reach {
            return false;
        }
        let Some(n) = self.normal else { return true };
        let (low, high) = (envelope.lower(), envelope.upper());
        let mut centre = 0.0;
        let mut spread = 0.0;
        for axis in 0..3 {
            centre += n[axis] * (low[axis] + high[axis]) / 2.0;
            spread += n[axis].abs() * (high[axis] - low[axis]) / 2.0;
        }
        centre - spread <= self.sin_reach + 1e-12 && centre + spread >= -self.sin_reach - 1e-12
    }

    fn should_unpack_leaf(&self, leaf: &GeoEntry) -> bool {
        let p = leaf.geom();
        chord2(&self.mid, p) <= self.reach && self.normal.is_none_or(|n| dot(p, &n).abs() <= self.sin_reach + 1e-12)
    }
}

/// Distance from the origin or route, and position along the route, when a source knows them.
type Placement = (f64, Option<f64>);

/// One match before paging.
struct Match<'a> {
    slot: u32,
    key: &'a str,
    sort_key: f64,
    distance_m: Option<f64>,
    route_position_m: Option<f64>,
    relevance: Option<f32>,
    price: Option<Decimal>,
}

/// Everything needed to test and order one candidate.
struct Plan<'a> {
    inner: &'a Inner,
    query: &'a SearchQuery,
    region: Region,
    filters: CompiledFilters,
    text: Option<TextQuery>,
    /// Slots found by an exact id in the text, ranked above every word match.
    exact: Vec<u32>,
    origin: Option<Vec3>,
    prices: Option<&'a dyn PriceOracle>,
    needs_price: bool,
}

const EXACT_SCORE: f32 = 1_000.0;
const MAX_TEXT_LEN: usize = 256;

impl<'a> Plan<'a> {
    fn new(
        inner: &'a Inner,
        query: &'a SearchQuery,
        prices: Option<&'a dyn PriceOracle>,
        now: DateTime<Utc>,
    ) -> Result<Self, SearchError> {
        let region = compile_area(query.area.as_ref())?;
        let mut filters = CompiledFilters::compile(&query.filters, inner, now)?;
        filters.counts_facets = query.with_counts && !query.skip_facets;
        if let Some(origin) = &query.origin {
            check_point(origin, "origin")?;
        }
        let origin = match &region {
            Region::Radius { center, .. } | Region::Nearest { center, .. } => Some(*center),
            _ => query.origin.map(|p| unit_vector(p.latitude, p.longitude)),
        };
        let is_corridor = matches!(region, Region::Corridor { .. });
        match query.sort {
            SortBy::Distance if origin.is_none() && !is_corridor => {
                return Err(SearchError::SortNeedsOrigin("distance"));
            }
            SortBy::RoutePosition if !is_corridor => return Err(SearchError::SortNeedsCorridor),
            _ => {}
        }
        let needs_price = query.filters.max_price.is_some() || query.sort == SortBy::Price;
        if needs_price && prices.is_none() {
            return Err(SearchError::PriceUnavailable);
        }
        let (text, exact) = match &query.text {
            None => (None, Vec::new()),
            Some(text) => {
                if text.len() > MAX_TEXT_LEN {
                    return Err(SearchError::InvalidText);
                }
                let parsed = inner.text.parse(text).ok_or(SearchError::InvalidText)?;
                let mut exact = lookup_evse_id(inner, text);
                exact.extend(lookup_location_id(inner, text.trim()));
                (Some(parsed), exact)
            }
        };
        Ok(Self { inner, query, region, filters, text, exact, origin, prices, needs_price })
    }

    /// Tests a candidate; `geo` carries what the candidate source already knows of its position.
    fn evaluate(
        &self,
        slot: u32,
        geo: Option<Placement>,
        for_facets: &mut Option<&mut FacetCounter>,
    ) -> Option<Match<'a>> {
        let hot = self.inner.hot.get(slot as usize);
        if hot.is_some_and(|hot| !self.filters.may_match(hot)) {
            return None;
        }
        let record = self.inner.record(slot)?;
        if !record.visible_to(&self.query.viewer) {
            return None;
        }
        let (distance_m, route_position_m) = match geo {
            Some((distance, position)) => (Some(distance), position),
            None => self.locate(record)?,
        };
        let relevance = match &self.text {
            None => None,
            Some(text) => {
                let exact = self.exact.contains(&slot).then_some(EXACT_SCORE);
                Some(exact.or_else(|| self.inner.text.score(text, slot))?)
            }
        };
        if let Some(evse_id) = &self.query.evse_id
            && lookup_evse_id(self.inner, evse_id).first() != Some(&slot)
        {
            return None;
        }
        if let Some(location_id) = &self.query.location_id
            && !lookup_location_id(self.inner, location_id).contains(&slot)
        {
            return None;
        }
        if !self.filters.location_matches(record) {
            return None;
        }
        let price = match (self.needs_price, self.prices) {
            (true, Some(oracle)) => oracle.price(&LocationView { record }),
            _ => None,
        };
        if let Some(max) = self.query.filters.max_price
            && price.is_none_or(|price| price > max)
        {
            return None;
        }
        if let Some(counter) = for_facets.as_deref_mut()
            && self.filters.evses_match(record, false)
        {
            counter.add(record);
        }
        if self.filters.counts_facets && hot.is_some_and(|hot| !self.filters.connectors_may_match(hot)) {
            return None;
        }
        if !self.filters.evses_match(record, true) {
            return None;
        }
        let sort_key = match self.query.sort {
            SortBy::Distance => distance_m.unwrap_or(f64::INFINITY),
            SortBy::Relevance => -f64::from(relevance.unwrap_or(0.0)),
            SortBy::MaxPower => -f64::from(record.max_power_kw),
            SortBy::Price => price.and_then(|p| p.to_f64()).unwrap_or(f64::INFINITY),
            SortBy::RoutePosition => route_position_m.unwrap_or(f64::INFINITY),
        };
        Some(Match { slot, key: &record.key, sort_key, distance_m, route_position_m, relevance, price })
    }

    /// Whether the record lies in the region, with its distance from the origin or route.
    fn locate(&self, record: &LocationRecord) -> Option<(Option<f64>, Option<f64>)> {
        let point = record.unit_vector();
        let from_origin = self.origin.map(|origin| chord2_to_m(chord2(&origin, &point)));
        match &self.region {
            Region::Everywhere | Region::Nearest { .. } => Some((from_origin, None)),
            Region::Radius { center, chord2: limit } => {
                (chord2(center, &point) <= *limit).then_some((from_origin, None))
            }
            Region::Boxes(boxes) => {
                boxes.iter().any(|b| b.contains(record.latitude, record.longitude)).then_some((from_origin, None))
            }
            Region::Polygon { ring, boxes } => {
                let (latitude, longitude) = (record.latitude, record.longitude);
                let inside = boxes.iter().any(|b| b.contains(latitude, longitude))
                    && [longitude, longitude + 360.0, longitude - 360.0]
                        .into_iter()
                        .any(|lon| polygon_contains(ring, latitude, lon));
                inside.then_some((from_origin, None))
            }
            Region::Corridor { segments, max_distance_m } => {
                let best = segments
                    .iter()
                    .map(|segment| segment.distance_and_offset(&point))
                    .min_by(|a, b| a.0.total_cmp(&b.0))?;
                (best.0 <= *max_distance_m).then_some((Some(best.0), Some(best.1)))
            }
        }
    }

    /// Slots the region holds (a superset for boxes), with the distance and route position when known.
    fn region_candidates(&self) -> Vec<(u32, Option<Placement>)> {
        let rtree = &self.inner.rtree;
        match &self.region {
            Region::Everywhere | Region::Nearest { .. } => {
                self.inner.live_records().map(|(slot, _)| (slot, None)).collect()
            }
            Region::Radius { center, chord2: limit } => rtree
                .locate_within_distance(*center, *limit)
                .map(|entry| {
                    let distance = chord2_to_m(chord2(center, entry.geom()));
                    (entry.data, Some((distance, None)))
                })
                .collect(),
            Region::Boxes(boxes) | Region::Polygon { boxes, .. } => {
                let mut out = Vec::new();
                for area in boxes {
                    let (low, high) = area.enclosing_3d();
                    out.extend(
                        rtree.locate_in_envelope(&AABB::from_corners(low, high)).map(|entry| (entry.data, None)),
                    );
                }
                if boxes.len() > 1 {
                    // A point on the antimeridian itself lies in both halves.
                    out.sort_unstable_by_key(|(slot, _)| *slot);
                    out.dedup_by_key(|(slot, _)| *slot);
                }
                out
            }
            Region::Corridor { segments, max_distance_m } => {
                let mut best: FxHashMap<u32, (f64, f64)> = FxHashMap::default();
                let sin_reach = (max_distance_m / emsp_domain::geo::EARTH_RADIUS_M).sin();
                for segment in segments {
                    let mid = [segment.a[0] + segment.b[0], segment.a[1] + segment.b[1], segment.a[2] + segment.b[2]];
                    let length = (mid[0] * mid[0] + mid[1] * mid[1] + mid[2] * mid[2]).sqrt();
                    if length < 1e-12 {
                        continue;
                    }
                    let mid = [mid[0] / length, mid[1] / length, mid[2] / length];
                    let reach = m_to_chord2(segment.length_m / 2.0 + max_distance_m + 1.0);
                    let capsule = Capsule { mid, reach, normal: segment.normal(), sin_reach };
                    for entry in rtree.locate_with_selection_function(capsule) {
                        let (distance, position) = segment.distance_and_offset(entry.geom());
                        if distance > *max_distance_m {
                            continue;
                        }
                        let slot = best.entry(entry.data).or_insert((distance, position));
                        if distance < slot.0 {
                            *slot = (distance, position);
                        }
                    }
                }
                best.into_iter().map(|(slot, (distance, position))| (slot, Some((distance, Some(position))))).collect()
            }
        }
    }

    fn candidates(&self) -> Vec<(u32, Option<Placement>)> {
        if let Some(evse_id) = &self.query.evse_id {
            return lookup_evse_id(self.inner, evse_id).into_iter().map(|slot| (slot, None)).collect();
        }
        if let Some(location_id) = &self.query.location_id {
            return lookup_location_id(self.inner, location_id).into_iter().map(|slot| (slot, None)).collect();
        }
        if let Some(text) = &self.text {
            // Corridors test each point against many segments, so let the R-tree go first there.
            let geo_first = matches!(self.region, Region::Corridor { .. })
                || (matches!(self.region, Region::Radius { .. }) && self.inner.text.candidate_estimate(text) > 50_000);
            if !geo_first {
                let units = &self.inner.units;
                let within = |slot: u32| match self.region {
                    Region::Radius { center, chord2: limit } => {
                        units.get(slot as usize).is_some_and(|unit| chord2(&center, unit) <= limit)
                    }
                    _ => true,
                };
                let mut slots = self.inner.text.candidates(text, within);
                if !self.exact.is_empty() {
                    slots.extend(self.exact.iter().copied().filter(|slot| within(*slot)));
                    slots.sort_unstable();
                    slots.dedup();
                }
                if let Region::Radius { center, .. } = self.region {
                    return slots
                        .into_iter()
                        .filter_map(|slot| {
                            let distance2 = chord2(&center, units.get(slot as usize)?);
                            Some((slot, Some((chord2_to_m(distance2), None))))
                        })
                        .collect();
                }
                return slots.into_iter().map(|slot| (slot, None)).collect();
            }
        }
        if let Region::Nearest { center, k } = self.region {
            return expanding(self, center, f64::INFINITY, k, |found| found.len() >= k)
                .into_iter()
                .map(|m| (m.slot, m.distance_m.map(|d| (d, None))))
                .collect();
        }
        self.region_candidates()
    }
}

fn lookup_evse_id(inner: &Inner, value: &str) -> Vec<u32> {
    let normalized = normalize_evse_id(value);
    inner.by_evse_id.get(normalized.as_str()).map(|(slot, _)| vec![*slot]).unwrap_or_default()
}

fn lookup_location_id(inner: &Inner, value: &str) -> Vec<u32> {
    let upper = value.to_ascii_uppercase();
    if let Some(slot) = inner.by_key.get(upper.as_str()) {
        return vec![*slot];
    }
    inner.by_id.get(upper.as_str()).cloned().unwrap_or_default()
}

struct FacetCounter {
    standards: [usize; 64],
    bands: [usize; 4],
}

impl FacetCounter {
    fn add(&mut self, record: &LocationRecord) {
        let mut mask = record.standards;
        while mask != 0 {
            let bit = mask.trailing_zeros() as usize;
            self.standards[bit] += 1;
            mask &= mask - 1;
        }
        let band = PowerBand::of(f64::from(record.max_power_kw));
        if let Some(index) = PowerBand::ALL.iter().position(|b| *b == band) {
            self.bands[index] += 1;
        }
    }

    fn finish(&self) -> Facets {
        let connector_standards = ConnectorStandard::KNOWN
            .iter()
            .enumerate()
            .filter(|(index, _)| *index < 63 && self.standards[*index] > 0)
            .map(|(index, standard)| (standard.clone(), self.standards[index]))
            .collect();
        let power_bands = PowerBand::ALL.iter().zip(self.bands).map(|(band, count)| (*band, count)).collect();
        Facets { connector_standards, power_bands }
    }
}

fn compare(a: (f64, &str), b: (f64, &str)) -> Ordering {
    a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

impl SearchIndex {
    /// Runs a query. `prices` is needed only for the max-price filter and the price sort.
    pub fn search(&self, query: &SearchQuery, prices: Option<&dyn PriceOracle>) -> Result<SearchPage, SearchError> {
        if query.page_size == 0 || query.page_size > MAX_PAGE_SIZE {
            return Err(SearchError::InvalidPageSize { size: query.page_size, max: MAX_PAGE_SIZE });
        }
        let now = Utc::now();
        let now_s = now.timestamp().max(0) as u64;
        let after = match &query.cursor {
            Some(cursor) => Some(self.cursors.decode(query, cursor, now_s)?),
            None => None,
        };
        let inner = self.inner.read();
        let plan = Plan::new(&inner, query, prices, now)?;
        let nearest_first = query.sort == SortBy::Distance
            && !query.with_counts
            && plan.text.is_none()
            && query.evse_id.is_none()
            && query.location_id.is_none()
            && (matches!(plan.region, Region::Radius { .. } | Region::Nearest { .. })
                || (matches!(plan.region, Region::Everywhere) && plan.origin.is_some()));
        let (mut matches, total, facets) = if nearest_first {
            (nearest_matches(&plan, after.as_ref()), None, None)
        } else {
            all_matches(&plan, after.as_ref())
        };
        let page = query.page_size;
        if matches.len() > page + 1 {
            matches.select_nth_unstable_by(page, |a, b| compare((a.sort_key, a.key), (b.sort_key, b.key)));
            matches.truncate(page + 1);
        }
        matches.sort_by(|a, b| compare((a.sort_key, a.key), (b.sort_key, b.key)));
        let has_more = matches.len() > page;
        matches.truncate(page);
        let next_cursor = match (has_more, matches.last()) {
            (true, Some(last)) => {
                let position = Position { sort_key: last.sort_key, location_key: last.key.to_owned() };
                Some(self.cursors.encode(query, &position, now_s))
            }
            _ => None,
        };
        let hits = matches
            .into_iter()
            .filter_map(|m| {
                let record = inner.record(m.slot)?;
                Some(SearchHit {
                    location: record.summary(),
                    distance_m: m.distance_m,
                    route_position_m: m.route_position_m,
                    relevance: m.relevance,
                    price: m.price,
                })
            })
            .collect();
        Ok(SearchPage { hits, next_cursor, total, facets })
    }
}

fn is_after(m: &Match<'_>, key: &str, after: Option<&Position>) -> bool {
    after.is_none_or(|p| compare((m.sort_key, key), (p.sort_key, &p.location_key)) == Ordering::Greater)
}

/// Smallest first circle of a nearest-first search; each circle that falls short doubles it.
const FIRST_RING_M: f64 = 50.0;
/// First circles are sized to hold about this many candidates per wanted match.
const CANDIDATES_PER_MATCH: f64 = 3.0;

/// A first circle expected to hold enough candidates for `wanted` matches, from the local density,
/// so that sparse regions do not pay for many small, empty circles.
fn first_ring_m(plan: &Plan<'_>, center: &Vec3, wanted: usize) -> f64 {
    let latitude = center[2].clamp(-1.0, 1.0).asin().to_degrees();
    let longitude = center[1].atan2(center[0]).to_degrees();
    let density = plan.inner.pyramid.density_near(latitude, longitude);
    if density <= 0.0 {
        return 5_000.0;
    }
    let area = CANDIDATES_PER_MATCH * wanted as f64 / density;
    (area / std::f64::consts::PI).sqrt().clamp(FIRST_RING_M, 50_000.0)
}

/// Ring candidates put in order at a time.
const RING_BATCH: usize = 64;

/// Finds matches nearest-first in growing circles, until `enough` holds for the matches so far
/// and the next candidate is farther than the last match (so ties are never cut), or `max_chord2`
/// is covered. Each circle's new points are sorted by distance from their R-tree entries alone and
/// evaluated in that order, so only about as many records are read as there are results: reading
/// a record is a cache miss, computing a distance is not. A circle query is also much cheaper per
/// point than rstar's incremental nearest-neighbour walk.
fn expanding<'a>(
    plan: &Plan<'a>,
    center: Vec3,
    max_chord2: f64,
    wanted: usize,
    mut enough: impl FnMut(&[Match<'a>]) -> bool,
) -> Vec<Match<'a>> {
    let mut matches: Vec<Match<'a>> = Vec::new();
    let mut inner_chord2 = -1.0;
    let mut radius_m = first_ring_m(plan, &center, wanted);
    let mut ring: Vec<(f64, u32)> = Vec::with_capacity(256);
    let mut last_match = f64::NEG_INFINITY;
    let mut satisfied = false;
    loop {
        let ring_chord2 = m_to_chord2(radius_m).min(max_chord2);
        ring.clear();
        for entry in plan.inner.rtree.locate_within_distance(center, ring_chord2) {
            let distance2 = chord2(&center, entry.geom());
            if distance2 > inner_chord2 {
                ring.push((distance2, entry.data));
            }
        }
        // Order the ring a batch at a time: a dense city puts thousands of points in one ring, of
        // which only the nearest few dozen are usually read.
        let mut rest = ring.as_mut_slice();
        while !rest.is_empty() {
            let batch = rest.len().min(RING_BATCH);
            if batch < rest.len() {
                rest.select_nth_unstable_by(batch - 1, |a, b| a.0.total_cmp(&b.0));
            }
            let (head, tail) = rest.split_at_mut(batch);
            head.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            for (distance2, slot) in head.iter() {
                if satisfied && *distance2 > last_match {
                    return matches;
                }
                if let Some(found) = plan.evaluate(*slot, Some((chord2_to_m(*distance2), None)), &mut None) {
                    matches.push(found);
                    last_match = *distance2;
                    satisfied = satisfied || enough(&matches);
                }
            }
            rest = tail;
        }
        let whole_earth = radius_m >= std::f64::consts::PI * emsp_domain::geo::EARTH_RADIUS_M;
        if ring_chord2 >= max_chord2 || whole_earth || satisfied {
            return matches;
        }
        inner_chord2 = ring_chord2;
        radius_m *= 2.0;
    }
}

/// Distance-ordered radius and nearest queries without counts: grow a circle until one page
/// (plus one, to know there is a next) lies after the cursor, or k matches are found.
fn nearest_matches<'a>(plan: &Plan<'a>, after: Option<&Position>) -> Vec<Match<'a>> {
    let wanted = plan.query.page_size + 1;
    // No area but an origin: everything, nearest first.
    let from_origin;
    let region = match (&plan.region, plan.origin) {
        (Region::Everywhere, Some(center)) => {
            from_origin = Region::Radius { center, chord2: f64::INFINITY };
            &from_origin
        }
        (region, _) => region,
    };
    match *region {
        Region::Radius { center, chord2: limit } => {
            let mut after_cursor = 0;
            let mut matches = expanding(plan, center, limit, wanted, |found| {
                if found.last().is_some_and(|m| is_after(m, m.key, after)) {
                    after_cursor += 1;
                }
                after_cursor >= wanted
            });
            matches.retain(|m| is_after(m, m.key, after));
            matches
        }
        Region::Nearest { center, k } => {
            let mut matches = expanding(plan, center, f64::INFINITY, k, |found| found.len() >= k);
            keep_nearest(&mut matches, k);
            matches.retain(|m| is_after(m, m.key, after));
            matches
        }
        _ => Vec::new(),
    }
}

/// Keeps the k nearest, ties at the edge resolved by key.
fn keep_nearest(matches: &mut Vec<Match<'_>>, k: usize) {
    matches.sort_by(|a, b| compare((a.distance_m.unwrap_or(0.0), a.key), (b.distance_m.unwrap_or(0.0), b.key)));
    matches.truncate(k);
}

/// Collects every match, with the total and facets when asked.
fn all_matches<'a>(plan: &Plan<'a>, after: Option<&Position>) -> (Vec<Match<'a>>, Option<usize>, Option<Facets>) {
    let mut counter = FacetCounter { standards: [0; 64], bands: [0; 4] };
    let with_facets = plan.query.with_counts && !plan.query.skip_facets;
    let mut facets = with_facets.then_some(&mut counter);
    let mut all = Vec::new();
    for (slot, geo) in plan.candidates() {
        if let Some(found) = plan.evaluate(slot, geo, &mut facets) {
            all.push(found);
        }
    }
    if let Region::Nearest { k, .. } = plan.region {
        keep_nearest(&mut all, k);
    }
    let total = plan.query.with_counts.then_some(all.len());
    let facets = with_facets.then(|| counter.finish());
    all.retain(|m| is_after(m, m.key, after));
    (all, total, facets)
}
