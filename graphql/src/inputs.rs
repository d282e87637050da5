//! Inputs of the driver API, and how they become search queries.

use async_graphql::{Enum, InputObject};
use chrono::{DateTime, Utc};
use emsp_domain::{Capability, ConnectorStandard, Currency, Facility, GeoPoint, ParkingType, PartyId};
use emsp_search_index::{Area, Current, Filters, OpenAt, Route, SortBy};
use rust_decimal::Decimal;

use crate::errors::ApiCode;
use crate::tariff_book::{ConnectorFilter, PriceBasis};

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
    /// At most this price for the reference session of `priceBasis` (see `chargers`). Chargers
    /// without a price in this currency do not match.
    pub max_price: Option<MoneyInput>,
}

/// An amount in a currency.
#[derive(Debug, Clone, InputObject)]
pub struct MoneyInput {
    pub amount: Decimal,
    /// ISO 4217 (`EUR`).
    pub currency: String,
}

/// The reference session chargers are priced with for PRICE sorting and `maxPrice`.
#[derive(Debug, Clone, InputObject)]
pub struct PriceBasisInput {
    /// Energy to charge, kWh.
    #[graphql(default = 20.0)]
    pub energy_kwh: f64,
    /// The car's highest charging power, kW; the connector's own maximum when absent.
    pub max_power_kw: Option<f64>,
    /// When the session starts; now when absent.
    pub start_at: Option<DateTime<Utc>>,
    /// ISO 4217; the `maxPrice` currency, else the server's default, when absent.
    pub currency: Option<String>,
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
            max_price: self.max_price.as_ref().map(|money| money.amount),
        })
    }

    /// The connector filters, for choosing which connectors price a charger.
    pub fn connector_filter(&self) -> ConnectorFilter {
        ConnectorFilter {
            standards: self.connector_standards.iter().flatten().map(|s| ConnectorStandard::parse(s)).collect(),
            dc: self.power_type.map(|p| p == PowerTypeFilter::Dc),
            min_power_kw: self.min_power_kw,
            max_power_kw: self.max_power_kw,
        }
    }
}

/// The reference session of a search that needs prices; `None` when it needs none.
pub fn price_basis(
    filter: Option<&ChargerFilter>,
    sort: ChargerSort,
    basis: Option<&PriceBasisInput>,
    default_currency: &str,
) -> async_graphql::Result<Option<PriceBasis>> {
    let max_price = filter.and_then(|f| f.max_price.as_ref());
    if max_price.is_none() && sort != ChargerSort::Price {
        return Ok(None);
    }
    let bad = |message: String| ApiCode::BadUserInput.error(message);
    let named = |field: &str, code: &str| Currency::new(code).map_err(|e| bad(format!("{field}: {e}")));
    let currency = match (max_price.map(|m| &m.currency), basis.and_then(|b| b.currency.as_ref())) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
            return Err(bad(format!(
                "maxPrice is in {a} but priceBasis in {b}: prices in different currencies are not compared"
            )));
        }
        (Some(code), _) => named("maxPrice.currency", code)?,
        (None, Some(code)) => named("priceBasis.currency", code)?,
        (None, None) => named("default currency", default_currency)?,
    };
    if let Some(max) = max_price
        && max.amount.is_sign_negative()
    {
        return Err(bad("maxPrice.amount must not be negative".into()));
    }
    let (energy_kwh, max_power_kw, start) = match basis {
        Some(b) => (b.energy_kwh, b.max_power_kw, b.start_at.unwrap_or_else(Utc::now)),
        None => (20.0, None, Utc::now()),
    };
    PriceBasis::new(energy_kwh, max_power_kw, start, currency).map(Some).map_err(|message| bad(message.to_owned()))
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
