//! Map clustering: hierarchical grid clusters in Web Mercator.
//!
//! Each zoom level z divides the world into 2^(z+2) x 2^(z+2) cells (64-pixel cells on 256-pixel
//! tiles); locations in one cell form one cluster, and the cells of level z+1 nest exactly inside
//! those of level z, which gives a hierarchy for free: a cluster's children are its four sub-cells.
//!
//! Why a grid and not supercluster's greedy radius merging: greedy clusters depend on insertion
//! order and must be rebuilt when a location changes; grid cells are updated in place. For zooms
//! 0..=[`PYRAMID_MAX_ZOOM`] the index keeps a precomputed pyramid of cell aggregates (count, EVSEs,
//! centroid sums, highest power, available EVSEs as atomics that status changes adjust), so a map of
//! Europe at zoom 5 reads a few hundred cells instead of a million points. The pyramid stops at
//! zoom 14 (cells of about 400 m), where a million EVSEs cost about 60 bytes each in cells; deeper
//! views hold few locations, so the R-tree answers them quickly. Filtered maps are computed from
//! the R-tree on demand, as a pyramid cannot know every filter combination. The price of a grid is
//! artefacts (two close locations on both sides of a cell border are not merged), acceptable for a
//! charger map.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};

use chrono::Utc;
use emsp_domain::GeoPoint;
use rstar::AABB;

use crate::error::SearchError;
use crate::hash::FxHashMap;
use crate::index::{Inner, SearchIndex};
use crate::query::{Filters, MAX_PAGE_SIZE, Viewer};
use crate::record::{LocationRecord, LocationSummary};
use crate::search::CompiledFilters;
use crate::sphere::{LonLatBox, split_box, unmercator};

/// Deepest zoom kept precomputed.
pub const PYRAMID_MAX_ZOOM: u8 = 14;
/// Deepest zoom a map asks for.
pub const MAX_ZOOM: u8 = 20;
const CELL_BITS: u32 = 2;

fn cell_of(mercator: (u32, u32), zoom: u8) -> (u32, u32) {
    let shift = 32 - (u32::from(zoom) + CELL_BITS);
    (mercator.0 >> shift, mercator.1 >> shift)
}

fn cell_key(cell: (u32, u32)) -> u64 {
    (u64::from(cell.0) << 32) | u64::from(cell.1)
}

/// Cluster ids encode zoom and cell, so they stay valid as long as the cell has locations.
fn cluster_id(zoom: u8, cell: (u32, u32)) -> u64 {
    (u64::from(zoom) << 50) | (u64::from(cell.0) << 25) | u64::from(cell.1)
}

fn decode_cluster_id(id: u64) -> Result<(u8, (u32, u32)), SearchError> {
    let zoom = (id >> 50) as u8;
    if id >> 55 != 0 || zoom > MAX_ZOOM {
        return Err(SearchError::UnknownCluster(id));
    }
    let cell = (((id >> 25) & 0x1ff_ffff) as u32, (id & 0x1ff_ffff) as u32);
    let cells = 1u64 << (u32::from(zoom) + CELL_BITS);
    if u64::from(cell.0) >= cells || u64::from(cell.1) >= cells || id >> 55 != 0 {
        return Err(SearchError::UnknownCluster(id));
    }
    Ok((zoom, cell))
}

/// The lon/lat box of a cell, padded by a hair so border points are not lost to rounding.
fn cell_box(zoom: u8, cell: (u32, u32)) -> LonLatBox {
    let cells = f64::from(1u32 << (u32::from(zoom) + CELL_BITS));
    let north_west = unmercator(f64::from(cell.0) / cells, f64::from(cell.1) / cells);
    let south_east = unmercator(f64::from(cell.0 + 1) / cells, f64::from(cell.1 + 1) / cells);
    const PAD: f64 = 1e-7;
    LonLatBox {
        south: (south_east.latitude - PAD).max(-90.0),
        west: (north_west.longitude - PAD).max(-180.0),
        north: (north_west.latitude + PAD).min(90.0),
        east: (south_east.longitude + PAD).min(180.0),
    }
}

/// The ranges of cell columns and rows of `zoom` that a box touches.
fn cell_ranges(area: &LonLatBox, zoom: u8) -> (std::ops::RangeInclusive<u32>, std::ops::RangeInclusive<u32>) {
    let north_west = cell_of(crate::sphere::mercator(area.north, area.west), zoom);
    let south_east = cell_of(crate::sphere::mercator(area.south, area.east), zoom);
    (north_west.0..=south_east.0, north_west.1..=south_east.1)
}

/// A lon/lat box covering every cell of `zoom` that a box touches.
fn whole_cells(area: &LonLatBox, zoom: u8) -> LonLatBox {
    let (x_range, y_range) = cell_ranges(area, zoom);
    let north_west = cell_box(zoom, (*x_range.start(), *y_range.start()));
    let south_east = cell_box(zoom, (*x_range.end(), *y_range.end()));
    LonLatBox { south: south_east.south, west: north_west.west, north: north_west.north, east: south_east.east }
}

#[derive(Default)]
struct Cell {
    count: u32,
    evses: u32,
    available: AtomicI32,
    sum_x: f64,
    sum_y: f64,
    max_power: f32,
    max_power_count: u32,
    /// XOR of member slots: when one member is left, this is its slot.
    slot_xor: u32,
}

/// Levels of the pyramid.
pub(crate) const LEVELS: usize = PYRAMID_MAX_ZOOM as usize + 1;
/// A record's cell index when it is not in the pyramid.
pub(crate) const NO_CELL: u32 = u32::MAX;

/// Precomputed cell aggregates of published locations for zooms 0..=PYRAMID_MAX_ZOOM.
///
/// Cells live in one slab; each level maps a cell position to its slab index, and each record
/// keeps the indices of its cells, so a status change adjusts its cells' atomics without hashing.
pub(crate) struct Pyramid {
    levels: Vec<FxHashMap<u64, u32>>,
    cells: Vec<Cell>,
    free: Vec<u32>,
}

impl Default for Pyramid {
    fn default() -> Self {
        Self { levels: (0..LEVELS).map(|_| FxHashMap::default()).collect(), cells: Vec::new(), free: Vec::new() }
    }
}

impl Pyramid {
    /// Adds a location and records its cell indices in it.
    pub fn add(&mut self, slot: u32, record: &mut LocationRecord) {
        let evses = record.total_evses();
        let available = record.available() as i32;
        for zoom in 0..LEVELS {
            let key = cell_key(cell_of(record.mercator, zoom as u8));
            let index = match self.levels[zoom].get(&key) {
                Some(index) => *index,
                None => {
                    let index = match self.free.pop() {
                        Some(index) => {
                            self.cells[index as usize] = Cell::default();
                            index
                        }
                        None => {
                            self.cells.push(Cell::default());
                            (self.cells.len() - 1) as u32
                        }
                    };
                    self.levels[zoom].insert(key, index);
                    index
                }
            };
            record.cells[zoom] = index;
            let cell = &mut self.cells[index as usize];
            cell.count += 1;
            cell.evses += evses;
            *cell.available.get_mut() += available;
            cell.sum_x += f64::from(record.mercator.0);
            cell.sum_y += f64::from(record.mercator.1);
            cell.slot_xor ^= slot;
            if record.max_power_kw > cell.max_power {
                cell.max_power = record.max_power_kw;
                cell.max_power_count = 1;
            } else if record.max_power_kw == cell.max_power {
                cell.max_power_count += 1;
            }
        }
    }

    /// Removes a location; returns the cells whose highest power must be recomputed.
    pub fn remove(&mut self, slot: u32, record: &LocationRecord) -> Vec<(u8, (u32, u32))> {
        let evses = record.total_evses();
        let available = record.available() as i32;
        let mut stale = Vec::new();
        for zoom in 0..LEVELS {
            let index = record.cells[zoom];
            let Some(cell) = self.cells.get_mut(index as usize) else { continue };
            let position = cell_of(record.mercator, zoom as u8);
            cell.count = cell.count.saturating_sub(1);
            if cell.count == 0 {
                self.levels[zoom].remove(&cell_key(position));
                self.free.push(index);
                continue;
            }
            cell.evses = cell.evses.saturating_sub(evses);
            *cell.available.get_mut() -= available;
            cell.sum_x -= f64::from(record.mercator.0);
            cell.sum_y -= f64::from(record.mercator.1);
            cell.slot_xor ^= slot;
            if record.max_power_kw == cell.max_power {
                cell.max_power_count = cell.max_power_count.saturating_sub(1);
                if cell.max_power_count == 0 {
                    stale.push((zoom as u8, position));
                }
            }
        }
        stale
    }

    pub fn set_max_power(&mut self, zoom: u8, cell: (u32, u32), (power, count): (f32, u32)) {
        let index = self.levels.get(usize::from(zoom)).and_then(|level| level.get(&cell_key(cell)));
        if let Some(cell) = index.and_then(|index| self.cells.get_mut(*index as usize)) {
            cell.max_power = power;
            cell.max_power_count = count;
        }
    }

    /// Highest power and how many locations have it, from the four child cells; `None` at the
    /// deepest level, which has no children.
    pub fn max_power_of_children(&self, zoom: u8, cell: (u32, u32)) -> Option<(f32, u32)> {
        if zoom >= PYRAMID_MAX_ZOOM {
            return None;
        }
        let mut best = (0.0f32, 0u32);
        for (dx, dy) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let Some(child) = self.get(zoom + 1, (cell.0 * 2 + dx, cell.1 * 2 + dy)) else { continue };
            if child.max_power > best.0 {
                best = (child.max_power, child.max_power_count);
            } else if child.max_power == best.0 {
                best.1 += child.max_power_count;
            }
        }
        Some(best)
    }

    pub fn adjust_available(&self, record: &LocationRecord, delta: i32) {
        for index in record.cells {
            if let Some(cell) = self.cells.get(index as usize) {
                cell.available.fetch_add(delta, Ordering::Relaxed);
            }
        }
    }

    /// Published locations per square metre around a point, from its zoom-13 cell (about 1 km
    /// across), or its zoom-10 cell (about 10 km) where the first holds too few to tell; a cheap
    /// estimate to size the first circle of a nearest-first search.
    pub fn density_near(&self, latitude: f64, longitude: f64) -> f64 {
        let position = crate::sphere::mercator(latitude, longitude);
        let mut density = 0.0;
        for zoom in [13u8, 10] {
            let count = self.get(zoom, cell_of(position, zoom)).map_or(0, |cell| cell.count);
            let cells_per_world = f64::from(1u32 << (u32::from(zoom) + CELL_BITS));
            let width_m =
                2.0 * std::f64::consts::PI * emsp_domain::geo::EARTH_RADIUS_M * latitude.to_radians().cos().max(0.01)
                    / cells_per_world;
            density = f64::from(count) / (width_m * width_m);
            if count >= 8 {
                break;
            }
        }
        density
    }

    fn get(&self, zoom: u8, cell: (u32, u32)) -> Option<&Cell> {
        let index = self.levels.get(usize::from(zoom))?.get(&cell_key(cell))?;
        self.cells.get(*index as usize)
    }
}

/// A map request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterQuery {
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
    /// 0..=20.
    pub zoom: u8,
    /// `None`: every visible location (served from the precomputed pyramid up to zoom 14).
    pub filters: Option<Filters>,
    pub viewer: Viewer,
}

/// Several locations shown as one marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Pass to [`SearchIndex::cluster_leaves`] and [`SearchIndex::cluster_expansion_zoom`].
    pub id: u64,
    pub count: u32,
    pub centroid: GeoPoint,
    pub available_evses: u32,
    pub total_evses: u32,
    pub max_power_kw: f64,
    /// The zoom at which the cluster splits; `None` when its locations share one position.
    pub expansion_zoom: Option<u8>,
}

/// One marker of the map.
#[derive(Debug, Clone, PartialEq)]
pub enum MapFeature {
    Cluster(Cluster),
    Location(LocationSummary),
}

#[derive(Default)]
struct Agg {
    count: u32,
    evses: u32,
    available: i64,
    sum_x: f64,
    sum_y: f64,
    max_power: f32,
    slot_xor: u32,
    /// Members, when computed from points (needed for the expansion zoom).
    slots: Vec<u32>,
}

impl Agg {
    fn add(&mut self, slot: u32, record: &LocationRecord, keep_slot: bool) {
        self.count += 1;
        self.evses += record.total_evses();
        self.available += i64::from(record.available());
        self.sum_x += f64::from(record.mercator.0);
        self.sum_y += f64::from(record.mercator.1);
        self.max_power = self.max_power.max(record.max_power_kw);
        self.slot_xor ^= slot;
        if keep_slot {
            self.slots.push(slot);
        }
    }
}

const WORLD: f64 = 4_294_967_296.0;

fn check_zoom(zoom: u8) -> Result<(), SearchError> {
    if zoom > MAX_ZOOM {
        return Err(SearchError::InvalidZoom { zoom, max: MAX_ZOOM });
    }
    Ok(())
}

impl Inner {
    /// Slots whose Mercator position lies in a cell (published or not).
    pub(crate) fn slots_in_cell(&self, zoom: u8, cell: (u32, u32)) -> Vec<u32> {
        let area = cell_box(zoom, cell);
        let (low, high) = area.enclosing_3d();
        self.rtree
            .locate_in_envelope(&AABB::from_corners(low, high))
            .map(|entry| entry.data)
            .filter(|slot| self.record(*slot).is_some_and(|record| cell_of(record.mercator, zoom) == cell))
            .collect()
    }

    /// Zoom at which locations at these Mercator positions stop sharing one cell.
    fn expansion_from_points(&self, zoom: u8, slots: &[u32]) -> Option<u8> {
        let positions: Vec<(u32, u32)> =
            slots.iter().filter_map(|slot| self.record(*slot)).map(|record| record.mercator).collect();
        let first = *positions.first()?;
        ((zoom + 1)..=MAX_ZOOM).find(|z| positions.iter().any(|position| cell_of(*position, *z) != cell_of(first, *z)))
    }

    /// Expansion zoom of a pyramid cell: walk down while only one child cell is occupied.
    fn expansion_from_pyramid(&self, zoom: u8, cell: (u32, u32)) -> Option<u8> {
        let mut current = cell;
        for child_zoom in (zoom + 1)..=PYRAMID_MAX_ZOOM {
            let children: Vec<(u32, u32)> = [(0, 0), (0, 1), (1, 0), (1, 1)]
                .into_iter()
                .map(|(dx, dy)| (current.0 * 2 + dx, current.1 * 2 + dy))
                .filter(|child| self.pyramid.get(child_zoom, *child).is_some())
                .collect();
            match children.as_slice() {
                [only] => current = *only,
                _ => return Some(child_zoom),
            }
        }
        let members = self.slots_in_cell(PYRAMID_MAX_ZOOM, current);
        let published: Vec<u32> =
            members.into_iter().filter(|slot| self.record(*slot).is_some_and(|r| r.publish)).collect();
        self.expansion_from_points(PYRAMID_MAX_ZOOM, &published)
    }

    fn clusters(&self, query: &ClusterQuery) -> Result<Vec<MapFeature>, SearchError> {
        check_zoom(query.zoom)?;
        let boxes = split_box(query.south, query.west, query.north, query.east)?;
        let zoom = query.zoom;
        let filters = match &query.filters {
            Some(filters) if filters != &Filters::default() => {
                Some(CompiledFilters::compile(filters, self, Utc::now())?)
            }
            _ => None,
        };
        let mut cells: HashMap<(u32, u32), Agg> = HashMap::new();
        let from_pyramid = filters.is_none() && zoom <= PYRAMID_MAX_ZOOM;
        if from_pyramid {
            for area in &boxes {
                self.pyramid_cells(zoom, area, &mut cells);
            }
            for slot in &self.unpublished {
                let Some(record) = self.record(*slot) else { continue };
                let cell = cell_of(record.mercator, zoom);
                let in_view = boxes.iter().any(|area| {
                    let (x_range, y_range) = cell_ranges(area, zoom);
                    x_range.contains(&cell.0) && y_range.contains(&cell.1)
                });
                if in_view && record.visible_to(&query.viewer) {
                    cells.entry(cell).or_default().add(*slot, record, false);
                }
            }
        } else {
            // Whole cells, as the pyramid counts them: a cell at the edge of the view shows all of
            // its locations, not only those inside the view. The halves of a split view cover
            // disjoint cell ranges, so no location is counted twice.
            for area in &boxes {
                let (x_range, y_range) = cell_ranges(area, zoom);
                let (low, high) = whole_cells(area, zoom).enclosing_3d();
                for entry in self.rtree.locate_in_envelope(&AABB::from_corners(low, high)) {
                    let Some(record) = self.record(entry.data) else { continue };
                    let cell = cell_of(record.mercator, zoom);
                    if !x_range.contains(&cell.0) || !y_range.contains(&cell.1) || !record.visible_to(&query.viewer) {
                        continue;
                    }
                    if filters.as_ref().is_some_and(|f| !f.matches(record)) {
                        continue;
                    }
                    cells.entry(cell).or_default().add(entry.data, record, true);
                }
            }
        }
        let mut features = Vec::with_capacity(cells.len());
        for (cell, agg) in cells {
            if agg.count == 1 {
                if let Some(record) = self.record(agg.slot_xor) {
                    features.push(MapFeature::Location(record.summary()));
                }
                continue;
            }
            let expansion_zoom = if from_pyramid {
                self.expansion_from_pyramid(zoom, cell)
            } else {
                self.expansion_from_points(zoom, &agg.slots)
            };
            let count = f64::from(agg.count);
            features.push(MapFeature::Cluster(Cluster {
                id: cluster_id(zoom, cell),
                count: agg.count,
                centroid: unmercator(agg.sum_x / count / WORLD, agg.sum_y / count / WORLD),
                available_evses: agg.available.max(0) as u32,
                total_evses: agg.evses,
                max_power_kw: f64::from(agg.max_power),
                expansion_zoom,
            }));
        }
        Ok(features)
    }

    fn pyramid_cells(&self, zoom: u8, area: &LonLatBox, out: &mut HashMap<(u32, u32), Agg>) {
        let Some(level) = self.pyramid.levels.get(usize::from(zoom)) else { return };
        let (x_range, y_range) = cell_ranges(area, zoom);
        let span = u64::from(x_range.end() - x_range.start() + 1) * u64::from(y_range.end() - y_range.start() + 1);
        let cells = &self.pyramid.cells;
        let mut take = |position: (u32, u32), index: u32| {
            let Some(cell) = cells.get(index as usize) else { return };
            let agg = out.entry(position).or_default();
            agg.count += cell.count;
            agg.evses += cell.evses;
            agg.available += i64::from(cell.available.load(Ordering::Relaxed));
            agg.sum_x += cell.sum_x;
            agg.sum_y += cell.sum_y;
            agg.max_power = agg.max_power.max(cell.max_power);
            agg.slot_xor ^= cell.slot_xor;
        };
        if span <= level.len() as u64 {
            for x in x_range {
                for y in y_range.clone() {
                    if let Some(index) = level.get(&cell_key((x, y))) {
                        take((x, y), *index);
                    }
                }
            }
        } else {
            for (key, index) in level {
                let position = ((key >> 32) as u32, *key as u32);
                if x_range.contains(&position.0) && y_range.contains(&position.1) {
                    take(position, *index);
                }
            }
        }
    }

    /// Visible, filtered members of a cluster, by key.
    fn cluster_members(
        &self,
        id: u64,
        filters: Option<&Filters>,
        viewer: &Viewer,
    ) -> Result<(u8, Vec<u32>), SearchError> {
        let (zoom, cell) = decode_cluster_id(id)?;
        let filters = match filters {
            Some(filters) => Some(CompiledFilters::compile(filters, self, Utc::now())?),
            None => None,
        };
        let mut members: Vec<u32> = self
            .slots_in_cell(zoom, cell)
            .into_iter()
            .filter(|slot| {
                self.record(*slot).is_some_and(|record| {
                    record.visible_to(viewer) && filters.as_ref().is_none_or(|f| f.matches(record))
                })
            })
            .collect();
        members.sort_by(|a, b| {
            let key = |slot: &u32| self.record(*slot).map(|record| record.key.clone());
            key(a).cmp(&key(b))
        });
        Ok((zoom, members))
    }
}

impl SearchIndex {
    /// Clusters and single locations of a map view.
    pub fn clusters(&self, query: &ClusterQuery) -> Result<Vec<MapFeature>, SearchError> {
        self.inner.read().clusters(query)
    }

    /// The locations of a cluster, ordered by key; pass the query's filters and viewer.
    pub fn cluster_leaves(
        &self,
        cluster_id: u64,
        filters: Option<&Filters>,
        viewer: &Viewer,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<LocationSummary>, SearchError> {
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(SearchError::InvalidPageSize { size: limit, max: MAX_PAGE_SIZE });
        }
        let inner = self.inner.read();
        let (_, members) = inner.cluster_members(cluster_id, filters, viewer)?;
        if members.is_empty() {
            return Err(SearchError::UnknownCluster(cluster_id));
        }
        Ok(members
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|slot| inner.record(*slot))
            .map(|r| r.summary())
            .collect())
    }

    /// The zoom at which a cluster splits; `None` when its locations share one position.
    pub fn cluster_expansion_zoom(
        &self,
        cluster_id: u64,
        filters: Option<&Filters>,
        viewer: &Viewer,
    ) -> Result<Option<u8>, SearchError> {
        let inner = self.inner.read();
        let (zoom, members) = inner.cluster_members(cluster_id, filters, viewer)?;
        if members.is_empty() {
            return Err(SearchError::UnknownCluster(cluster_id));
        }
        Ok(inner.expansion_from_points(zoom, &members))
    }
}
