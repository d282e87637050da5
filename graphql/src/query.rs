//! The queries of the driver API.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use emsp_search_index::{ClusterQuery, MapFeature, SearchIndex, SearchQuery};

use crate::accounts::{RoleGuard, User, blocking, may_search, viewer};
use crate::charger::{Availability, Charger, GeoPoint};
use crate::errors::{ApiCode, search_error};
use crate::inputs::{
    self, BoundingBoxInput, ChargerFilter, ChargerSort, GeoPointInput, PriceBasisInput, RouteInput, area,
};
use crate::loaders::{LocationLoader, TariffLoader};
use crate::pricing::{PriceEstimate, estimate_with, max_power, tariff_keys};
use crate::tariff_book::choose_tariff;

pub struct QueryRoot;

/// A roaming connection.
#[derive(SimpleObject)]
pub struct RoamingPartner {
    pub id: String,
    pub name: String,
    /// INVITED, REGISTERED or UNREGISTERED.
    pub status: String,
    pub version: Option<String>,
    pub last_pull_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// A page of chargers (Relay connection).
#[derive(SimpleObject)]
pub struct ChargerConnection {
    pub edges: Vec<ChargerEdge>,
    pub page_info: PageInfo,
    /// Every match, on all pages.
    pub total_count: Option<u64>,
    /// Counts for the filter chips: each computed with every filter but its own.
    pub facets: Option<Facets>,
}

#[derive(SimpleObject)]
pub struct ChargerEdge {
    pub cursor: String,
    pub node: Charger,
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct Facets {
    pub connector_standards: Vec<FacetCount>,
    pub power_bands: Vec<FacetCount>,
}

#[derive(SimpleObject)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// A marker on the map: several chargers, or one.
#[derive(SimpleObject)]
pub struct ChargerCluster {
    /// Pass to `chargerClusterLeaves`; absent for a single charger.
    pub cluster_id: Option<ID>,
    pub count: u32,
    pub centroid: GeoPoint,
    pub availability: Availability,
    pub max_power_kw: f64,
    /// The zoom at which the cluster splits; absent when its chargers share one position.
    pub expansion_zoom: Option<u8>,
    /// The charger, when the marker is a single one.
    pub charger: Option<Charger>,
}

fn band_name(band: emsp_search_index::PowerBand) -> &'static str {
    match band {
        emsp_search_index::PowerBand::UpTo11 => "UP_TO_11_KW",
        emsp_search_index::PowerBand::From11To50 => "FROM_11_TO_50_KW",
        emsp_search_index::PowerBand::From50To150 => "FROM_50_TO_150_KW",
        emsp_search_index::PowerBand::Above150 => "ABOVE_150_KW",
    }
}

#[Object]
impl QueryRoot {
    /// Our tokens, newest change first (operations staff only).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn tokens(
        &self,
        ctx: &Context<'_>,
        search: Option<crate::tokens::TokenSearch>,
        offset: Option<i32>,
        first: Option<i32>,
    ) -> async_graphql::Result<crate::tokens::TokenPage> {
        crate::tokens::search(ctx, search, offset, first).await
    }

    /// Who changed which token, when, from what to what; newest first (operations staff only).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn token_audit(
        &self,
        ctx: &Context<'_>,
        search: Option<crate::tokens::TokenAuditSearch>,
        offset: Option<i32>,
        first: Option<i32>,
    ) -> async_graphql::Result<crate::tokens::TokenAuditPage> {
        crate::tokens::audit(ctx, search, offset, first).await
    }

    /// Roaming partners and how their connections are doing (operations staff only).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn partners(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoamingPartner>> {
        let store = ctx.data::<crate::context::ApiContext>()?.store.clone();
        let partners = tokio::task::spawn_blocking(move || store.list_partners())
            .await
            .map_err(|e| crate::errors::internal(&e))?
            .map_err(crate::errors::store_error)?;
        Ok(partners
            .into_iter()
            .map(|p| RoamingPartner {
                id: p.id,
                name: p.name,
                status: p.status.as_str().to_owned(),
                version: p.version,
                last_pull_at: p.last_pull_at.map(|t| t.and_utc()),
                last_error: p.last_error,
            })
            .collect())
    }

    /// A fleet: the viewer's own when `id` is absent (fleet managers; operations staff name one).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::FleetManager)")]
    async fn fleet(&self, ctx: &Context<'_>, id: Option<ID>) -> async_graphql::Result<crate::fleets::Fleet> {
        crate::fleets::fleet(ctx, id).await
    }

    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let claims = viewer(ctx)?.0.clone();
        let accounts = ctx.data::<crate::context::ApiContext>()?.accounts.clone();
        let user = blocking(move || accounts.user(&claims.sub)).await?;
        user.map(Into::into).ok_or_else(|| ApiCode::Unauthenticated.error("the account no longer exists"))
    }

    /// Chargers near a point (with `radiusMeters`, or nearest first without it), in a box, along a
    /// route, or by name; filtered and sorted. At most 100 per page; pass `after` for the next.
    ///
    /// PRICE sorting and `filter.maxPrice` price a reference session at every charger
    /// (`priceBasis`: 20 kWh from now at the connector's power unless told otherwise) with its
    /// cheapest connector that passes the connector filters, VAT included when the tariff states
    /// it. Prices are compared in one currency (the `maxPrice` one, else `priceBasis.currency`,
    /// else the server's default): chargers priced in another currency, or without a known
    /// tariff, sort last and never pass `maxPrice`. Both need `radiusMeters`, `bbox`, `route` or
    /// `text`.
    #[allow(clippy::too_many_arguments)]
    async fn chargers(
        &self,
        ctx: &Context<'_>,
        near: Option<GeoPointInput>,
        radius_meters: Option<f64>,
        bbox: Option<BoundingBoxInput>,
        route: Option<RouteInput>,
        text: Option<String>,
        filter: Option<ChargerFilter>,
        sort: Option<ChargerSort>,
        price_basis: Option<PriceBasisInput>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<ChargerConnection> {
        may_search(ctx)?;
        let api = ctx.data::<crate::context::ApiContext>()?;
        let index = &api.index;
        if !(1..=100).contains(&first) {
            return Err(ApiCode::BadUserInput.error("first must be 1 to 100"));
        }
        let (area, origin) = area(near, radius_meters, bbox, route)?;
        let sort = sort.unwrap_or(match (&text, &area, origin) {
            (Some(_), None, None) => ChargerSort::Relevance,
            _ => ChargerSort::Distance,
        });
        if sort == ChargerSort::Distance && area.is_none() && origin.is_none() {
            return Err(ApiCode::BadUserInput
                .error("sorting by distance needs near, bbox or route; or sort by RELEVANCE or POWER"));
        }
        let basis = inputs::price_basis(filter.as_ref(), sort, price_basis.as_ref(), &api.default_currency)?;
        if basis.is_some() && area.is_none() && text.is_none() {
            return Err(ApiCode::BadUserInput
                .error("sorting or filtering by price needs radiusMeters (with near), bbox, route or text"));
        }
        let filter = filter.unwrap_or_default();
        let filters = filter.filters()?;
        let look_ahead = ctx.look_ahead();
        let (wants_total, wants_facets) =
            (look_ahead.field("totalCount").exists(), look_ahead.field("facets").exists());
        let query = SearchQuery {
            area,
            text,
            filters,
            sort: sort.sort_by(),
            origin,
            page_size: usize::try_from(first).unwrap_or(20),
            cursor: after,
            // Counting costs a pass over every match: only when the client asks.
            with_counts: wants_total || wants_facets,
            skip_facets: !wants_facets,
            ..SearchQuery::default()
        };
        let currency: Option<Arc<str>> = basis.as_ref().map(|b| Arc::from(b.currency.as_str()));
        let page = match basis {
            Some(basis) => {
                let pricer = api.tariffs.pricer(basis, filter.connector_filter());
                index.search(&query, Some(&pricer)).map_err(search_error)?
            }
            None => index.search(&query, None).map_err(search_error)?,
        };
        let end_cursor = page.next_cursor.clone();
        let edges = page
            .hits
            .into_iter()
            .map(|hit| ChargerEdge {
                cursor: end_cursor.clone().unwrap_or_default(),
                node: Charger {
                    summary: hit.location,
                    distance_m: hit.distance_m,
                    route_position_m: hit.route_position_m,
                    price: hit.price.zip(currency.clone()),
                },
            })
            .collect();
        Ok(ChargerConnection {
            edges,
            page_info: PageInfo { has_next_page: end_cursor.is_some(), end_cursor },
            total_count: page.total.map(|t| t as u64),
            facets: page.facets.map(|f| Facets {
                connector_standards: f
                    .connector_standards
                    .into_iter()
                    .map(|(standard, count)| FacetCount { value: standard.to_string(), count: count as u64 })
                    .collect(),
                power_bands: f
                    .power_bands
                    .into_iter()
                    .map(|(band, count)| FacetCount { value: band_name(band).to_owned(), count: count as u64 })
                    .collect(),
            }),
        })
    }

    /// One charger by id (`CC*PID*ID`).
    async fn charger(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Charger>> {
        may_search(ctx)?;
        let index = ctx.data::<Arc<SearchIndex>>()?;
        let query = SearchQuery {
            location_id: Some(id.to_ascii_uppercase()),
            sort: emsp_search_index::SortBy::MaxPower,
            page_size: 1,
            ..SearchQuery::default()
        };
        let page = index.search(&query, None).map_err(search_error)?;
        Ok(page.hits.into_iter().find(|hit| hit.location.key.eq_ignore_ascii_case(&id)).map(|hit| Charger {
            summary: hit.location,
            distance_m: None,
            route_position_m: None,
            price: None,
        }))
    }

    /// Map markers for a box at a zoom level (0 to 20): clusters with counts, or single chargers.
    async fn charger_clusters(
        &self,
        ctx: &Context<'_>,
        bbox: BoundingBoxInput,
        zoom: i32,
        filter: Option<ChargerFilter>,
    ) -> async_graphql::Result<Vec<ChargerCluster>> {
        may_search(ctx)?;
        let index = ctx.data::<Arc<SearchIndex>>()?;
        let zoom = u8::try_from(zoom).map_err(|_| ApiCode::BadUserInput.error("zoom must be 0 to 20"))?;
        if filter.as_ref().is_some_and(|f| f.max_price.is_some()) {
            return Err(ApiCode::BadUserInput.error("maxPrice works in chargers, not on map clusters"));
        }
        let filters = filter.map(|f| f.filters()).transpose()?;
        let query = ClusterQuery {
            south: bbox.south,
            west: bbox.west,
            north: bbox.north,
            east: bbox.east,
            zoom,
            filters,
            viewer: Default::default(),
        };
        let features = index.clusters(&query).map_err(search_error)?;
        Ok(features
            .into_iter()
            .map(|feature| match feature {
                MapFeature::Cluster(cluster) => ChargerCluster {
                    cluster_id: Some(ID(cluster.id.to_string())),
                    count: cluster.count,
                    centroid: cluster.centroid.into(),
                    availability: Availability { available: cluster.available_evses, total: cluster.total_evses },
                    max_power_kw: cluster.max_power_kw,
                    expansion_zoom: cluster.expansion_zoom,
                    charger: None,
                },
                MapFeature::Location(summary) => ChargerCluster {
                    cluster_id: None,
                    count: 1,
                    centroid: summary.coordinates.into(),
                    availability: Availability { available: summary.available_evses, total: summary.total_evses },
                    max_power_kw: summary.max_power_kw,
                    expansion_zoom: None,
                    charger: Some(Charger { summary, distance_m: None, route_position_m: None, price: None }),
                },
            })
            .collect())
    }

    /// What charging `energyKwh` at a charger would cost under its tariff, starting now or at
    /// `startAt`, at up to `maxPowerKw`: the first tariff of the EVSE's (or charger's) connectors
    /// valid at the start, an `AD_HOC_PAYMENT` one only when there is no other.
    async fn price_estimate(
        &self,
        ctx: &Context<'_>,
        charger_id: ID,
        evse_uid: Option<String>,
        energy_kwh: f64,
        start_at: Option<DateTime<Utc>>,
        max_power_kw: Option<f64>,
    ) -> async_graphql::Result<Option<PriceEstimate>> {
        may_search(ctx)?;
        let locations = ctx.data::<DataLoader<LocationLoader>>()?;
        let Some(location) = locations.load_one(charger_id.to_ascii_uppercase()).await? else {
            return Err(ApiCode::NotFound.error(format!("no charger {}", charger_id.as_str())));
        };
        let keys = tariff_keys(&location, evse_uid.as_deref())?;
        let tariffs = ctx.data::<DataLoader<TariffLoader>>()?;
        let found = tariffs.load_many(keys.clone()).await?;
        let start = start_at.unwrap_or_else(Utc::now);
        let candidates = keys.iter().filter_map(|key| found.get(key)).map(|tariff| &**tariff);
        let Some(tariff) = choose_tariff(candidates, start) else {
            return Ok(None);
        };
        let power = max_power_kw.unwrap_or_else(|| max_power(&location, evse_uid.as_deref()));
        estimate_with(&location, tariff, energy_kwh, start, power).map(Some)
    }
}
