//! A charger (an OCPI location) as the app shows it. List fields come from the search index; the
//! details (EVSEs, hours, tariffs) are loaded from the store on demand, in batches.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::Utc;
use emsp_domain::opening_hours::{can_charge_at, location_time_zone};
use emsp_domain::{Location, Tariff, TariffDimension};
use emsp_search_index::{LocationSummary, SearchIndex};
use rust_decimal::Decimal;

use crate::loaders::{LocationLoader, TariffLoader};

/// A point on the map.
#[derive(Debug, Clone, Copy, SimpleObject)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

impl From<emsp_domain::GeoPoint> for GeoPoint {
    fn from(point: emsp_domain::GeoPoint) -> Self {
        Self { latitude: point.latitude, longitude: point.longitude }
    }
}

/// EVSEs that can be used now out of all.
#[derive(Debug, Clone, Copy, SimpleObject)]
pub struct Availability {
    pub available: u32,
    pub total: u32,
}

/// A charger in a result.
#[derive(Clone)]
pub struct Charger {
    pub summary: LocationSummary,
    pub distance_m: Option<f64>,
    pub route_position_m: Option<f64>,
    /// The search's price of the reference session, and its currency.
    pub price: Option<(Decimal, Arc<str>)>,
}

/// An amount of money.
#[derive(Debug, Clone, SimpleObject)]
pub struct Money {
    pub amount: Decimal,
    /// ISO 4217.
    pub currency: String,
}

impl Charger {
    async fn location(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Arc<Location>>> {
        let loader = ctx.data::<DataLoader<LocationLoader>>()?;
        loader.load_one(self.summary.key.to_string()).await
    }
}

#[Object]
impl Charger {
    /// `CC*PID*ID`: the CPO and its location id.
    async fn id(&self) -> ID {
        ID(self.summary.key.to_string())
    }

    async fn name(&self) -> Option<&str> {
        self.summary.name.as_deref()
    }

    async fn address(&self) -> &str {
        &self.summary.address
    }

    async fn city(&self) -> &str {
        &self.summary.city
    }

    async fn postal_code(&self) -> Option<&str> {
        self.summary.postal_code.as_deref()
    }

    /// ISO 3166-1 alpha-3.
    async fn country(&self) -> &str {
        &self.summary.country
    }

    async fn coordinates(&self) -> GeoPoint {
        self.summary.coordinates.into()
    }

    /// From the point searched around, or from the route of a corridor search.
    async fn distance_meters(&self) -> Option<f64> {
        self.distance_m
    }

    /// Along the route from its start, for corridor searches.
    async fn route_position_meters(&self) -> Option<f64> {
        self.route_position_m
    }

    /// The CPO, `CC*PID`.
    async fn party(&self) -> &str {
        &self.summary.party
    }

    async fn operator(&self) -> Option<&str> {
        self.summary.operator.as_deref()
    }

    async fn max_power_kw(&self) -> f64 {
        self.summary.max_power_kw
    }

    /// The CPO's roaming hub reports it not connected: the live statuses are UNKNOWN and nothing
    /// counts as available until it is back.
    async fn stale(&self) -> bool {
        self.summary.stale
    }

    async fn availability(&self) -> Availability {
        Availability { available: self.summary.available_evses, total: self.summary.total_evses }
    }

    async fn parking_type(&self) -> Option<String> {
        self.summary.parking_type.as_ref().map(ToString::to_string)
    }

    /// The price of the search's reference session (`priceBasis`) at this charger's cheapest
    /// matching connector, VAT included when the tariff states it; only when the search priced
    /// chargers (PRICE sort or `maxPrice`) and knows the price in the search's currency.
    async fn estimated_price(&self) -> Option<Money> {
        self.price.as_ref().map(|(amount, currency)| Money { amount: *amount, currency: currency.to_string() })
    }

    /// IANA time zone of the location (opening hours are local to it).
    async fn time_zone(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.location(ctx).await?.map(|l| location_time_zone(&l).name().to_owned()))
    }

    async fn opening_hours(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<OpeningHours>> {
        Ok(self.location(ctx).await?.map(|l| OpeningHours::of(&l)))
    }

    /// Whether one can charge now: open, or charging allowed while closed.
    async fn open_now(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<bool>> {
        Ok(self.location(ctx).await?.map(|l| can_charge_at(&l, Utc::now())))
    }

    async fn facilities(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(self
            .location(ctx)
            .await?
            .map(|l| l.facilities.iter().map(ToString::to_string).collect())
            .unwrap_or_default())
    }

    /// EVSEs with their live status (REMOVED ones are left out).
    async fn evses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Evse>> {
        let Some(location) = self.location(ctx).await? else { return Ok(Vec::new()) };
        let index = ctx.data::<Arc<SearchIndex>>()?;
        let key = location.key();
        Ok(location
            .evses
            .iter()
            .filter(|evse| evse.status != emsp_domain::EvseStatus::Removed)
            .map(|evse| Evse {
                uid: evse.uid.to_string(),
                evse_id: evse.evse_id.clone(),
                status: index.evse_status(&key, evse.uid.as_str()).unwrap_or_else(|| evse.status.clone()).to_string(),
                capabilities: evse.capabilities.iter().map(ToString::to_string).collect(),
                connectors: evse
                    .connectors
                    .iter()
                    .map(|c| Connector {
                        id: c.id.to_string(),
                        standard: c.standard.to_string(),
                        format: c.format.to_string(),
                        power_type: c.power_type.to_string(),
                        max_power_kw: c.max_power_kw(),
                        tariff_ids: c.tariff_ids.iter().map(ToString::to_string).collect(),
                    })
                    .collect(),
            })
            .collect())
    }

    /// The tariffs the connectors refer to, with a readable summary.
    async fn tariffs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TariffInfo>> {
        let Some(location) = self.location(ctx).await? else { return Ok(Vec::new()) };
        let mut keys: Vec<String> = location
            .evses
            .iter()
            .flat_map(|e| &e.connectors)
            .flat_map(|c| &c.tariff_ids)
            .map(|id| format!("{}*{}*{}", location.party.country_code, location.party.party_id, id.key()))
            .collect();
        keys.sort();
        keys.dedup();
        let loader = ctx.data::<DataLoader<TariffLoader>>()?;
        let found = loader.load_many(keys.clone()).await?;
        Ok(keys.iter().filter_map(|key| found.get(key)).map(|tariff| TariffInfo::of(tariff)).collect())
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct Evse {
    pub uid: String,
    /// The printed id (`NL*ABC*E123`).
    pub evse_id: Option<String>,
    /// Live status: AVAILABLE, CHARGING, BLOCKED, RESERVED, OUTOFORDER, INOPERATIVE, PLANNED, UNKNOWN.
    pub status: String,
    pub capabilities: Vec<String>,
    pub connectors: Vec<Connector>,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct Connector {
    pub id: String,
    pub standard: String,
    /// SOCKET or CABLE.
    pub format: String,
    /// AC_1_PHASE, AC_3_PHASE, DC, ...
    pub power_type: String,
    pub max_power_kw: f64,
    pub tariff_ids: Vec<String>,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct OpeningHours {
    pub twentyfourseven: bool,
    pub regular_hours: Vec<RegularHours>,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct RegularHours {
    /// 1 = Monday ... 7 = Sunday.
    pub weekday: u8,
    /// Local `HH:MM`.
    pub period_begin: String,
    pub period_end: String,
}

impl OpeningHours {
    fn of(location: &Location) -> Self {
        match &location.opening_times {
            None => Self { twentyfourseven: true, regular_hours: Vec::new() },
            Some(hours) => Self {
                twentyfourseven: hours.twentyfourseven,
                regular_hours: hours
                    .regular_hours
                    .iter()
                    .map(|h| RegularHours {
                        weekday: h.weekday,
                        period_begin: h.period_begin.format("%H:%M").to_string(),
                        period_end: h.period_end.format("%H:%M").to_string(),
                    })
                    .collect(),
            },
        }
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct TariffInfo {
    /// `CC*PID*ID`.
    pub id: String,
    pub currency: String,
    /// For example `0.39 EUR/kWh · 2.40 EUR/h · 1.00 EUR per session (VAT 21 % incl.)`.
    pub summary: String,
}

impl TariffInfo {
    fn of(tariff: &Tariff) -> Self {
        Self { id: tariff.key(), currency: tariff.currency.to_string(), summary: summary(tariff) }
    }
}

/// A one-line summary: the components of the first element without restrictions (the base
/// price), or of the first element, prices including VAT when known.
pub fn summary(tariff: &Tariff) -> String {
    let element = tariff.elements.iter().find(|e| e.restrictions.is_none()).or_else(|| tariff.elements.first());
    let Some(element) = element else { return String::new() };
    let currency = tariff.currency.as_str();
    let mut parts = Vec::new();
    for component in &element.price_components {
        let price = match component.vat {
            Some(vat) => component.price * (Decimal::ONE + vat / Decimal::ONE_HUNDRED),
            None => component.price,
        }
        .round_dp(2);
        parts.push(match &component.dimension {
            TariffDimension::Energy => format!("{price} {currency}/kWh"),
            TariffDimension::Time => format!("{price} {currency}/h charging"),
            TariffDimension::ParkingTime => format!("{price} {currency}/h parking"),
            TariffDimension::Flat => format!("{price} {currency} per session"),
            TariffDimension::Other(other) => format!("{price} {currency} ({other})"),
        });
    }
    let restricted = tariff.elements.len() > 1;
    let mut text = parts.join(" · ");
    if restricted {
        text.push_str(" · other prices at some times");
    }
    text
}
