//! The tariff book: every stored tariff in memory, and the price function of PRICE sorting and the
//! `maxPrice` filter.
//!
//! # What a charger costs, for sorting
//!
//! A search prices a **reference session** at every candidate charger: `energyKwh` (default 20)
//! charged from the current minute (or `startAt`), at the connector's power, capped by the car's
//! `maxPowerKw` when given, with no parking, in the location's time zone, by the same engine that
//! checks CDRs ([`emsp_domain::pricing::estimate`]). A charger's price is that of its cheapest
//! connector among those that pass the query's connector filters (standard, AC/DC, power range).
//! The amount includes VAT when the tariff states it, and is the tariff's amount otherwise (OCPI
//! 2.2.1 reads a missing VAT as "no VAT applicable").
//!
//! A connector's tariff is the first of its `tariff_ids` that the book holds, is valid at the
//! session start (`start_date_time`/`end_date_time`) and is not `AD_HOC_PAYMENT` (our drivers pay
//! with their contract); an ad-hoc tariff only when the connector has nothing else. `priceEstimate`
//! chooses the same way.
//!
//! # Currencies
//!
//! Amounts of different currencies are never compared: a search prices in one currency (the
//! `maxPrice` currency, else `priceBasis.currency`, else the server's default) and a connector whose
//! tariff is in another currency has no price for that search, like a connector without a known
//! tariff. Chargers without a price sort after all priced ones and never pass `maxPrice`.
//!
//! # Cost
//!
//! The book is read under a shared lock held for one search. Prices are cached twice: per search by
//! (party, tariff id, power, time zone) as the index hands them out, with interned strings compared
//! by address, so a tariff shared by a thousand chargers is looked up once; and per tariff across
//! searches by (power, time zone, basis, start minute), where the start minute is left out for
//! tariffs whose price cannot depend on the time (no time, date or weekday restriction, no validity
//! window). A changed tariff replaces its entry and with it its cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use chrono_tz::Tz;
use emsp_domain::pricing::{PlannedSession, estimate};
use emsp_domain::{ConnectorStandard, Currency, Tariff, TariffType};
use emsp_search_index::{LocationView, PriceOracle};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use rust_decimal::Decimal;

/// Largest number of cached prices per tariff; the cache starts over when full.
const CACHE_PER_TARIFF: usize = 4_096;

/// Every stored tariff by key (`CC*PID*ID`, upper case), kept current from the change feed.
#[derive(Default)]
pub struct TariffBook {
    tariffs: RwLock<HashMap<Box<str>, Arc<BookTariff>>>,
    loaded: AtomicBool,
}

struct BookTariff {
    tariff: Tariff,
    /// The price of a session cannot depend on when it starts.
    timeless: bool,
    cache: Mutex<HashMap<CacheKey, Option<Decimal>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CacheKey {
    power_w: u32,
    zone: Tz,
    energy_wh: u64,
    /// Minutes since the epoch; 0 for timeless tariffs.
    start_minute: i64,
}

impl BookTariff {
    fn new(tariff: Tariff) -> Self {
        let timeless = tariff.start_date_time.is_none()
            && tariff.end_date_time.is_none()
            && tariff.elements.iter().filter_map(|e| e.restrictions.as_ref()).all(|r| {
                r.start_time.is_none()
                    && r.end_time.is_none()
                    && r.start_date.is_none()
                    && r.end_date.is_none()
                    && r.day_of_week.is_empty()
            });
        Self { tariff, timeless, cache: Mutex::new(HashMap::new()) }
    }

    fn valid_at(&self, at: DateTime<Utc>) -> bool {
        self.tariff.start_date_time.is_none_or(|start| start <= at)
            && self.tariff.end_date_time.is_none_or(|end| at < end)
    }

    /// The reference session's price, cached.
    fn price(&self, basis: &PriceBasis, power_kw: f64, zone: Tz) -> Option<Decimal> {
        let power_w = (power_kw * 1_000.0).round();
        if !(power_w >= 1.0 && power_w <= f64::from(u32::MAX)) {
            return None;
        }
        let key = CacheKey {
            power_w: power_w as u32,
            zone,
            energy_wh: basis.energy_wh,
            start_minute: if self.timeless { 0 } else { basis.start.timestamp() / 60 },
        };
        if let Some(price) = self.cache.lock().get(&key) {
            return *price;
        }
        let session =
            PlannedSession::new(basis.start, basis.energy_kwh, Decimal::from(key.power_w) / Decimal::ONE_THOUSAND);
        let price = match estimate(&self.tariff, &session, zone) {
            Ok(breakdown) => Some(breakdown.total_cost.incl_vat.unwrap_or(breakdown.total_cost.excl_vat)),
            Err(error) => {
                tracing::debug!(tariff = %self.tariff.key(), %error, "tariff cannot price the reference session");
                None
            }
        };
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_PER_TARIFF {
            cache.clear();
        }
        cache.insert(key, price);
        price
    }
}

impl std::fmt::Debug for TariffBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TariffBook").field("tariffs", &self.len()).finish()
    }
}

impl TariffBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the whole book (the start-up load) and marks it loaded.
    pub fn replace_all(&self, tariffs: impl IntoIterator<Item = Tariff>) {
        let fresh: HashMap<Box<str>, Arc<BookTariff>> = tariffs
            .into_iter()
            .map(|tariff| (Box::from(tariff.key().as_str()), Arc::new(BookTariff::new(tariff))))
            .collect();
        *self.tariffs.write() = fresh;
        self.loaded.store(true, Ordering::Release);
    }

    /// Adds or replaces one tariff.
    pub fn upsert(&self, tariff: Tariff) {
        let key = Box::from(tariff.key().as_str());
        let entry = Arc::new(BookTariff::new(tariff));
        self.tariffs.write().insert(key, entry);
    }

    /// Forgets a tariff (any case).
    pub fn remove(&self, key: &str) {
        self.tariffs.write().remove(key.to_ascii_uppercase().as_str());
    }

    pub fn get(&self, key: &str) -> Option<Tariff> {
        self.tariffs.read().get(key.to_ascii_uppercase().as_str()).map(|entry| entry.tariff.clone())
    }

    pub fn len(&self) -> usize {
        self.tariffs.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the start-up load has happened (before it, every price is unknown).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// The price function for one search. It holds the book's shared lock: drop it when the
    /// search is done.
    pub fn pricer(&self, basis: PriceBasis, connectors: ConnectorFilter) -> Pricer<'_> {
        Pricer { book: self.tariffs.read(), basis, connectors, memo: Mutex::new(HashMap::new()) }
    }
}

/// The reference session of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceBasis {
    pub energy_kwh: Decimal,
    energy_wh: u64,
    /// The car's highest charging power, kW.
    pub max_power_kw: Option<f64>,
    /// Whole minute.
    pub start: DateTime<Utc>,
    pub currency: Currency,
}

impl PriceBasis {
    /// A basis of `energy_kwh` (rounded to Wh, more than 0 and at most 1,000) starting at the
    /// minute of `start`.
    pub fn new(
        energy_kwh: f64,
        max_power_kw: Option<f64>,
        start: DateTime<Utc>,
        currency: Currency,
    ) -> Result<Self, &'static str> {
        if !(energy_kwh.is_finite() && energy_kwh > 0.0 && energy_kwh <= 1_000.0) {
            return Err("energyKwh must be more than 0 and at most 1000");
        }
        if max_power_kw.is_some_and(|kw| !(kw.is_finite() && kw > 0.0 && kw <= 2_000.0)) {
            return Err("maxPowerKw must be more than 0 and at most 2000");
        }
        let energy_wh = (energy_kwh * 1_000.0).round().max(1.0) as u64;
        let start = start.duration_trunc(TimeDelta::minutes(1)).map_err(|_| "startAt is out of range")?;
        Ok(Self {
            energy_kwh: Decimal::from(energy_wh) / Decimal::ONE_THOUSAND,
            energy_wh,
            max_power_kw,
            start,
            currency,
        })
    }
}

/// Which connectors of a charger count for its price: the query's connector filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectorFilter {
    /// Any of these; empty: any standard.
    pub standards: Vec<ConnectorStandard>,
    /// `Some(true)`: DC only; `Some(false)`: AC only.
    pub dc: Option<bool>,
    pub min_power_kw: Option<f64>,
    pub max_power_kw: Option<f64>,
}

impl ConnectorFilter {
    fn admits(&self, standard: Option<&ConnectorStandard>, dc: bool, power_kw: f64) -> bool {
        (self.standards.is_empty() || standard.is_some_and(|s| self.standards.contains(s)))
            && self.dc.is_none_or(|want| want == dc)
            && self.min_power_kw.is_none_or(|min| power_kw >= min)
            && self.max_power_kw.is_none_or(|max| power_kw <= max)
    }
}

/// Memo key of one search: interned party and tariff-id strings by address, power, zone.
type MemoKey = (usize, usize, u32, Tz);

/// The price function of one search (a [`PriceOracle`]).
pub struct Pricer<'a> {
    book: RwLockReadGuard<'a, HashMap<Box<str>, Arc<BookTariff>>>,
    basis: PriceBasis,
    connectors: ConnectorFilter,
    memo: Mutex<HashMap<MemoKey, Option<Decimal>>>,
}

impl Pricer<'_> {
    pub fn basis(&self) -> &PriceBasis {
        &self.basis
    }

    /// The tariff a connector is charged by, among its tariff ids: see the module documentation.
    fn choose<'t>(&'t self, party: &str, tariff_ids: &mut dyn Iterator<Item = &str>) -> Option<&'t BookTariff> {
        let mut ad_hoc = None;
        for id in tariff_ids {
            let key = format!("{party}*{}", id.to_ascii_uppercase());
            let Some(entry) = self.book.get(key.as_str()) else { continue };
            if !entry.valid_at(self.basis.start) {
                continue;
            }
            if entry.tariff.tariff_type == Some(TariffType::AdHocPayment) {
                ad_hoc = ad_hoc.or(Some(&**entry));
                continue;
            }
            return Some(entry);
        }
        ad_hoc
    }

    fn connector_price(&self, party: &str, tariff_ids: &[&str], power_kw: f64, zone: Tz) -> Option<Decimal> {
        let power_kw = self.basis.max_power_kw.map_or(power_kw, |car| car.min(power_kw));
        let power_w = (power_kw * 1_000.0).round();
        if !(power_w >= 1.0 && power_w <= f64::from(u32::MAX)) {
            return None;
        }
        let first = tariff_ids.first()?;
        // Interned strings: the same tariff id of the same party is the same address everywhere.
        let memo_key = (party.as_ptr() as usize, first.as_ptr() as usize, power_w as u32, zone);
        let single = tariff_ids.len() == 1;
        if single && let Some(price) = self.memo.lock().get(&memo_key) {
            return *price;
        }
        let price = self.choose(party, &mut tariff_ids.iter().copied()).and_then(|entry| {
            if entry.tariff.currency != self.basis.currency {
                return None;
            }
            entry.price(&self.basis, power_kw, zone)
        });
        if single {
            self.memo.lock().insert(memo_key, price);
        }
        price
    }
}

impl PriceOracle for Pricer<'_> {
    fn price(&self, location: &LocationView<'_>) -> Option<Decimal> {
        let party = location.party();
        let zone = location.time_zone();
        let mut best: Option<Decimal> = None;
        let mut ids: Vec<&str> = Vec::new();
        for evse in location.evses() {
            for connector in evse.connectors() {
                if !self.connectors.admits(connector.standard(), connector.is_dc(), connector.max_power_kw()) {
                    continue;
                }
                ids.clear();
                ids.extend(connector.tariff_ids());
                if let Some(price) = self.connector_price(party, &ids, connector.max_power_kw(), zone) {
                    best = Some(best.map_or(price, |b| b.min(price)));
                }
            }
        }
        best
    }
}

/// The tariff `priceEstimate` uses among several (valid now, not ad hoc unless nothing else).
pub fn choose_tariff<'t>(candidates: impl IntoIterator<Item = &'t Tariff>, at: DateTime<Utc>) -> Option<&'t Tariff> {
    let mut ad_hoc = None;
    for tariff in candidates {
        let valid =
            tariff.start_date_time.is_none_or(|start| start <= at) && tariff.end_date_time.is_none_or(|end| at < end);
        if !valid {
            continue;
        }
        if tariff.tariff_type == Some(TariffType::AdHocPayment) {
            ad_hoc = ad_hoc.or(Some(tariff));
            continue;
        }
        return Some(tariff);
    }
    ad_hoc
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use emsp_domain::fixtures::{connector, evse, location, tariff};
    use emsp_domain::{ConnectorStandard, EvseStatus, PowerType, TariffId};
    use emsp_search_index::{SearchIndex, SearchQuery, SortBy};
    use rust_decimal_macros::dec;

    use super::*;

    fn eur() -> Currency {
        Currency::new("EUR").unwrap()
    }

    #[test]
    fn cheapest_admitted_connector_in_the_search_currency() {
        let book = TariffBook::new();
        let mut cheap = tariff("CHEAP", "0.30");
        cheap.elements[0].price_components[0].vat = None;
        book.upsert(cheap);
        book.upsert(tariff("DEAR", "0.60"));
        let mut francs = tariff("CHF", "0.10");
        francs.currency = Currency::new("CHF").unwrap();
        book.upsert(francs);

        let index = SearchIndex::with_random_secret();
        let with = |id: &str, tariffs: &[&str], power_type: PowerType, watts: u32, lat: f64| {
            let mut loc = location(id, lat, 4.0);
            let mut c = connector("1", ConnectorStandard::Iec62196T2Combo, power_type, watts);
            c.tariff_ids = tariffs.iter().map(|t| TariffId::new(*t).unwrap()).collect();
            loc.evses = vec![evse("1", EvseStatus::Available, vec![c])];
            loc
        };
        index.upsert(&with("A", &["dear"], PowerType::Dc, 50_000, 52.0)).unwrap();
        index.upsert(&with("B", &["CHEAP"], PowerType::Ac3Phase, 22_000, 52.001)).unwrap();
        index.upsert(&with("C", &["CHF"], PowerType::Dc, 50_000, 52.002)).unwrap();
        index.upsert(&with("D", &["NOPE"], PowerType::Dc, 50_000, 52.003)).unwrap();

        let basis = PriceBasis::new(20.0, None, Utc::now(), eur()).unwrap();
        let query = SearchQuery { sort: SortBy::Price, page_size: 10, ..SearchQuery::default() };
        let pricer = book.pricer(basis.clone(), ConnectorFilter::default());
        let page = index.search(&query, Some(&pricer)).unwrap();
        drop(pricer);
        let order: Vec<_> = page.hits.iter().map(|h| (h.location.key.to_string(), h.price)).collect();
        // The fixture tariff's components carry 21 % VAT unless removed: 20 × 0.60 × 1.21 = 14.52;
        // CHEAP has no VAT: 20 × 0.30 = 6.00. CHF and unknown tariffs have no EUR price.
        assert_eq!(order[0], ("NL*ABC*B".to_owned(), Some(dec!(6.00))));
        assert_eq!(order[1], ("NL*ABC*A".to_owned(), Some(dec!(14.52))));
        assert_eq!(order[2].1, None);
        assert_eq!(order[3].1, None);

        // DC only leaves out the cheap AC charger.
        let dc = ConnectorFilter { dc: Some(true), ..ConnectorFilter::default() };
        let pricer = book.pricer(basis, dc);
        let page = index.search(&query, Some(&pricer)).unwrap();
        assert_eq!(page.hits[0].location.key.as_ref(), "NL*ABC*A");
        assert_eq!(page.hits.iter().find(|h| h.location.key.as_ref() == "NL*ABC*B").unwrap().price, None);
    }

    #[test]
    fn ad_hoc_and_expired_tariffs_are_chosen_last() {
        let now = Utc::now();
        let mut ad_hoc = tariff("ADHOC", "0.20");
        ad_hoc.tariff_type = Some(TariffType::AdHocPayment);
        let mut expired = tariff("OLD", "0.10");
        expired.end_date_time = Some(now - TimeDelta::days(1));
        let regular = tariff("REG", "0.40");
        let chosen = choose_tariff([&ad_hoc, &expired, &regular], now).unwrap();
        assert_eq!(chosen.id.as_str(), "REG");
        assert_eq!(choose_tariff([&ad_hoc, &expired], now).unwrap().id.as_str(), "ADHOC");
        assert!(choose_tariff([&expired], now).is_none());
    }

    #[test]
    fn basis_is_validated_and_whole_minutes() {
        assert!(PriceBasis::new(0.0, None, Utc::now(), eur()).is_err());
        assert!(PriceBasis::new(f64::NAN, None, Utc::now(), eur()).is_err());
        assert!(PriceBasis::new(20.0, Some(-1.0), Utc::now(), eur()).is_err());
        let basis = PriceBasis::new(20.0004, None, Utc::now(), eur()).unwrap();
        assert_eq!(basis.energy_kwh, dec!(20));
        assert_eq!(basis.start.timestamp() % 60, 0);
    }
}
