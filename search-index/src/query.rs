//! What a caller can ask, and what it gets back.
//!
//! A query is one optional "where" ([`Area`]), optional text or exact id lookups, [`Filters`], a
//! [`SortBy`] and a page. Everything is plain data so the GraphQL layer can build it field by field;
//! [`SearchIndex::search`](crate::SearchIndex::search) validates it and says what is wrong.

use chrono::{DateTime, Utc};
use emsp_domain::{Capability, ConnectorStandard, Facility, GeoPoint, ParkingType, PartyId};
use rust_decimal::Decimal;

use crate::record::{LocationSummary, LocationView};

/// Largest radius a query may ask for.
pub const MAX_RADIUS_M: f64 = 1_000_000.0;
/// Largest page, and largest k of a nearest query.
pub const MAX_PAGE_SIZE: usize = 100;
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// Farthest a corridor query reaches from its route.
pub const MAX_CORRIDOR_DISTANCE_M: f64 = 50_000.0;
/// Longest route a corridor query may follow.
pub const MAX_ROUTE_M: f64 = 5_000_000.0;
/// Most vertices a polygon or a route may have.
pub const MAX_VERTICES: usize = 10_000;

/// Where to search.
#[derive(Debug, Clone, PartialEq)]
pub enum Area {
    /// Within `radius_m` metres (great circle) of `center`.
    Radius { center: GeoPoint, radius_m: f64 },
    /// The `k` nearest matches to `center`.
    Nearest { center: GeoPoint, k: usize },
    /// A lon/lat box; `west > east` crosses the antimeridian.
    BoundingBox { south: f64, west: f64, north: f64, east: f64 },
    /// A simple polygon in lon/lat, closed implicitly; an edge spanning more than 180 degrees of
    /// longitude crosses the antimeridian. Polygons around a pole are not supported.
    Polygon(Vec<GeoPoint>),
    /// Within `max_distance_m` of a route, on either side (the corridor is twice as wide).
    Corridor { route: Route, max_distance_m: f64 },
}

/// A route: a Google encoded polyline (precision 5) or points.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Encoded(String),
    Points(Vec<GeoPoint>),
}

/// Coarse power classes for the filter chips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerBand {
    /// Up to 11 kW.
    UpTo11,
    /// More than 11, up to 50 kW.
    From11To50,
    /// More than 50, up to 150 kW.
    From50To150,
    /// More than 150 kW.
    Above150,
}

impl PowerBand {
    pub const ALL: [PowerBand; 4] =
        [PowerBand::UpTo11, PowerBand::From11To50, PowerBand::From50To150, PowerBand::Above150];

    pub fn of(power_kw: f64) -> Self {
        if power_kw <= 11.0 {
            PowerBand::UpTo11
        } else if power_kw <= 50.0 {
            PowerBand::From11To50
        } else if power_kw <= 150.0 {
            PowerBand::From50To150
        } else {
            PowerBand::Above150
        }
    }
}

/// AC or DC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Current {
    Ac,
    Dc,
}

/// When the location must be open (or allow charging when closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAt {
    /// At the time the query runs.
    Now,
    At(DateTime<Utc>),
}

/// Filters; every one that is set must hold. Connector and availability filters hold for the same
/// EVSE: "2 available CCS of 50 kW" means two EVSEs that are available and have such a connector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Any of these standards.
    pub connector_standards: Vec<ConnectorStandard>,
    pub current: Option<Current>,
    pub min_power_kw: Option<f64>,
    pub max_power_kw: Option<f64>,
    /// At least this many matching EVSEs AVAILABLE right now.
    pub min_available: Option<u32>,
    /// Any of these CPOs.
    pub parties: Vec<PartyId>,
    /// Any of these operator names (case-insensitive).
    pub operators: Vec<String>,
    /// Any of these countries (ISO 3166-1 alpha-3, case-insensitive).
    pub countries: Vec<String>,
    /// All of these facilities.
    pub facilities: Vec<Facility>,
    /// Any of these parking types.
    pub parking_types: Vec<ParkingType>,
    /// All of these on one EVSE.
    pub capabilities: Vec<Capability>,
    pub open: Option<OpenAt>,
    /// At most this price, as computed by the caller's [`PriceOracle`]; unknown prices do not match.
    pub max_price: Option<Decimal>,
}

/// Who is asking: unpublished locations are shown only to the tokens they list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    pub token_uid: Option<String>,
    pub group_id: Option<String>,
}

/// Result order; ties are broken by location key, so pages are stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortBy {
    /// Nearest first: from the radius or nearest centre, the explicit origin, or the route (corridor).
    #[default]
    Distance,
    /// Best text match first.
    Relevance,
    /// Most powerful first.
    MaxPower,
    /// Cheapest first; locations without a price last.
    Price,
    /// Along a corridor's route, from its start.
    RoutePosition,
}

impl SortBy {
    pub fn name(&self) -> &'static str {
        match self {
            SortBy::Distance => "distance",
            SortBy::Relevance => "relevance",
            SortBy::MaxPower => "max power",
            SortBy::Price => "price",
            SortBy::RoutePosition => "route position",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub area: Option<Area>,
    /// Free text, typo tolerant. A text that is an EVSE id or a location id also finds that exactly.
    pub text: Option<String>,
    /// Exact EVSE id (`NL*ABC*E123`, separators and case ignored).
    pub evse_id: Option<String>,
    /// Exact location id, or a full key `CC*PID*ID`.
    pub location_id: Option<String>,
    pub filters: Filters,
    pub viewer: Viewer,
    pub sort: SortBy,
    /// Where distances are measured from when the area has no centre.
    pub origin: Option<GeoPoint>,
    pub page_size: usize,
    pub cursor: Option<String>,
    /// Count all matches and facets (costs a pass over every match, not just one page).
    pub with_counts: bool,
    /// With `with_counts`, count the matches but not the facets: cheaper, as the standard and
    /// power filters can then rule candidates out before their record is read.
    pub skip_facets: bool,
}

impl Default for SearchQuery {
    fn default() -> Self {
        Self {
            area: None,
            text: None,
            evse_id: None,
            location_id: None,
            filters: Filters::default(),
            viewer: Viewer::default(),
            sort: SortBy::Distance,
            origin: None,
            page_size: DEFAULT_PAGE_SIZE,
            cursor: None,
            with_counts: false,
            skip_facets: false,
        }
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub location: LocationSummary,
    /// From the origin, or from the route for a corridor query.
    pub distance_m: Option<f64>,
    /// Metres from the route start to the closest point of the route (corridor queries).
    pub route_position_m: Option<f64>,
    pub relevance: Option<f32>,
    pub price: Option<Decimal>,
}

/// Counts for the filter chips. Standards and power bands are counted with every filter applied
/// except the connector standard and power filters, so a chip shows what selecting it would give.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facets {
    pub connector_standards: Vec<(ConnectorStandard, usize)>,
    pub power_bands: Vec<(PowerBand, usize)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// All matches (when `with_counts`).
    pub total: Option<usize>,
    pub facets: Option<Facets>,
}

/// Prices a location for the max-price filter and the price sort; the engine owns no tariff logic.
pub trait PriceOracle: Sync {
    fn price(&self, location: &LocationView<'_>) -> Option<Decimal>;
}

impl<F> PriceOracle for F
where
    F: Fn(&LocationView<'_>) -> Option<Decimal> + Sync,
{
    fn price(&self, location: &LocationView<'_>) -> Option<Decimal> {
        self(location)
    }
}
