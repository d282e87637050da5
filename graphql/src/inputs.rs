//! Inputs of the driver API, and how they become search queries.

use async_graphql::{Enum, InputObject};
use chrono::{DateTime, Utc};
use emsp_domain::{Capability, ConnectorStandard, Facility, GeoPoint, ParkingType, PartyId};
use emsp_search_index::{Area, Current, Filters, OpenAt, Route, SortBy};
use rust_decimal::Decimal;

use crate::errors::ApiCode;

#[derive(Debug, Clone, Copy, InputObject)]
pub struct GeoPointInput {
    pub latitude: f64,
    pub longitude: f64,
}

impl GeoPointInput {
    pub fn point(&self, what: &str) -> async_graphql::Result<GeoPoint> {
        GeoPoint::new(self.latitude, self.longitude).map_err(|e| ApiCode::BadUserInput.error(format!("{what}: {e}")))
    }
}

/// A box on the map; `west > east` crosses the antimeridian.
#[derive(Debug, Clone, Copy, InputObject)]
pub struct BoundingBoxInput {
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
}

/// A route: a Google encoded polyline or points, and how far from it chargers may be.
#[derive(Debug, Clone, InputObject)]
pub struct RouteInput {
    pub polyline: Option<String>,
    pub points: Option<Vec<GeoPointInput>>,
    /// Width of the corridor: chargers at most half of it from the route.
    pub width_meters: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PowerTypeFilter {
    Ac,
    Dc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ChargerSort {
    Distance,
    Relevance,
    Power,
    Price,
}

/// Every filter of the search engine. Lists match any of their values, except `facilities` and
/// `capabilities`, which must all hold.
#[derive(Debug, Clone, Default, InputObject)]
pub struct ChargerFilter {
    /// OCPI connector standards (`IEC_62196_T2_COMBO`, `CHADEMO`, ...).
    pub connector_standards: Option<Vec<String>>,
    pub power_type: Option<PowerTypeFilter>,
    pub min_power_kw: Option<f64>,
    pub max_power_kw: Option<f64>,
    /// At least this many EVSEs (with the other connector filters) available now.
    pub min_available: Option<u32>,
    /// CPOs as `CC*PID`.
    pub operators: Option<Vec<String>>,
    /// Operator names.
    pub operator_names: Option<Vec<String>>,
    /// ISO 3166-1 alpha-3.
    pub countries: Option<Vec<String>>,
    pub facilities: Option<Vec<String>>,
    pub parking_types: Option<Vec<String>>,
    /// EVSE capabilities (`REMOTE_START_STOP_CAPABLE`, `CREDIT_CARD_PAYABLE`, `RESERVABLE`, ...).
    pub capabilities: Option<Vec<String>>,
    pub open_now: Option<bool>,
    pub open_at: Option<DateTime<Utc>>,
    /// At most this estimated price (currency of the tariff) for a reference session.
    pub max_price: Option<Decimal>,
}

impl ChargerFilter {
    pub fn filters(&self) -> async_graphql::Result<Filters> {
        let parties = self
            .operators
            .iter()
            .flatten()
            .map(|p| PartyId::parse(p).map_err(|e| ApiCode::BadUserInput.error(format!("operators: {e}"))))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let open = match (self.open_at, self.open_now) {
            (Some(at), _) => Some(OpenAt::At(at)),
            (None, Some(true)) => Some(OpenAt::Now),
            _ => None,
        };
        Ok(Filters {
            connector_standards: self
                .connector_standards
                .iter()
                .flatten()
                .map(|s| ConnectorStandard::parse(s))
                .collect(),
            current: self.power_type.map(|p| match p {
                PowerTypeFilter::Ac => Current::Ac,
                PowerTypeFilter::Dc => Current::Dc,
            }),
            min_power_kw: self.min_power_kw,
            max_power_kw: self.max_power_kw,
            min_available: self.min_available,
            parties,
            operators: self.operator_names.clone().unwrap_or_default(),
            countries: self.countries.clone().unwrap_or_default(),
            facilities: self.facilities.iter().flatten().map(|s| Facility::parse(s)).collect(),
            parking_types: self.parking_types.iter().flatten().map(|s| ParkingType::parse(s)).collect(),
            capabilities: self.capabilities.iter().flatten().map(|s| Capability::parse(s)).collect(),
            open,
            max_price: self.max_price,
        })
    }
}

impl ChargerSort {
    pub fn sort_by(self) -> SortBy {
        match self {
            ChargerSort::Distance => SortBy::Distance,
            ChargerSort::Relevance => SortBy::Relevance,
            ChargerSort::Power => SortBy::MaxPower,
            ChargerSort::Price => SortBy::Price,
        }
    }
}

/// The one "where" of a chargers query.
pub fn area(
    near: Option<GeoPointInput>,
    radius_meters: Option<f64>,
    bbox: Option<BoundingBoxInput>,
    route: Option<RouteInput>,
) -> async_graphql::Result<(Option<Area>, Option<GeoPoint>)> {
    let given = usize::from(bbox.is_some()) + usize::from(route.is_some()) + usize::from(radius_meters.is_some());
    if given > 1 {
        return Err(ApiCode::BadUserInput.error("give at most one of radiusMeters (with near), bbox and route"));
    }
    let origin = near.map(|n| n.point("near")).transpose()?;
    if let Some(radius_m) = radius_meters {
        let center = origin.ok_or_else(|| ApiCode::BadUserInput.error("radiusMeters needs near"))?;
        return Ok((Some(Area::Radius { center, radius_m }), origin));
    }
    if let Some(b) = bbox {
        return Ok((Some(Area::BoundingBox { south: b.south, west: b.west, north: b.north, east: b.east }), origin));
    }
    if let Some(route) = route {
        let line = match (route.polyline, route.points) {
            (Some(polyline), None) => Route::Encoded(polyline),
            (None, Some(points)) => {
                Route::Points(points.iter().map(|p| p.point("route.points")).collect::<async_graphql::Result<_>>()?)
            }
            _ => return Err(ApiCode::BadUserInput.error("route needs either polyline or points")),
        };
        return Ok((Some(Area::Corridor { route: line, max_distance_m: route.width_meters / 2.0 }), origin));
    }
    Ok((None, origin))
}
