//! Pricing what CPOs report: a CDR, checked against the totals it billed, and a session in progress.
//!
//! [`CdrCheck`] is what `emsp tariff price --tariff T.json --cdr C.json --time-zone Z` prints, and
//! what billing uses to flag CDRs whose totals the tariff does not explain.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use super::PricingError;
use super::engine::{PriceBreakdown, price_periods};
use crate::cdr::Cdr;
use crate::money::{Currency, Price};
use crate::session::Session;
use crate::tariff::Tariff;

/// Prices a session from the charging periods its CPO reported so far: up to its end when it has
/// one, else up to `now` (the running cost shown to the driver).
pub fn price_session(
    tariff: &Tariff,
    session: &Session,
    now: DateTime<Utc>,
    time_zone: Tz,
) -> Result<PriceBreakdown, PricingError> {
    if tariff.currency != session.currency {
        return Err(PricingError::CurrencyMismatch {
            tariff: tariff.currency.to_string(),
            cdr: session.currency.to_string(),
        });
    }
    let end = session.end_date_time.unwrap_or(now);
    price_periods(tariff, &session.charging_periods, end, time_zone)
}

/// Prices a CDR's charging periods (ending at its `end_date_time`) under `tariff`.
pub fn price_cdr(tariff: &Tariff, cdr: &Cdr, time_zone: Tz) -> Result<PriceBreakdown, PricingError> {
    if tariff.currency != cdr.currency {
        return Err(PricingError::CurrencyMismatch {
            tariff: tariff.currency.to_string(),
            cdr: cdr.currency.to_string(),
        });
    }
    price_periods(tariff, &cdr.charging_periods, cdr.end_date_time, time_zone)
}

/// Prices `cdr` and compares the result with its own totals.
pub fn check_cdr(tariff: &Tariff, cdr: &Cdr, time_zone: Tz) -> Result<CdrCheck, PricingError> {
    let breakdown = price_cdr(tariff, cdr, time_zone)?;
    Ok(CdrCheck::new(cdr, breakdown))
}

/// Ours minus the CDR's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceDifference {
    pub excl_vat: Decimal,
    /// `None` when either side does not know its VAT-inclusive amount.
    pub incl_vat: Option<Decimal>,
}

/// One cost total, ours beside the CDR's. A total the CDR leaves out counts as zero, as OCPI makes
/// the partial totals optional.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostCheck {
    pub ours: Price,
    pub cdr: Option<Price>,
    pub difference: PriceDifference,
    /// Whether both differences that can be computed are below the tolerance.
    pub matches: bool,
}

impl CostCheck {
    fn new(ours: &Price, cdr: Option<&Price>, tolerance: Decimal) -> Self {
        let theirs = cdr.cloned().unwrap_or_else(Price::zero);
        let difference = PriceDifference {
            excl_vat: ours.excl_vat - theirs.excl_vat,
            incl_vat: ours.incl_vat.zip(theirs.incl_vat).map(|(ours, theirs)| ours - theirs),
        };
        let within = |d: Decimal| d.abs() < tolerance;
        let matches = within(difference.excl_vat) && difference.incl_vat.is_none_or(within);
        Self { ours: ours.clone(), cdr: cdr.cloned(), difference, matches }
    }
}

/// A volume (kWh or hours), ours beside the CDR's; informative, not part of `matches`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeCheck {
    pub ours: Decimal,
    pub cdr: Option<Decimal>,
    pub difference: Option<Decimal>,
}

impl VolumeCheck {
    fn new(ours: Decimal, cdr: Option<Decimal>) -> Self {
        Self { ours, cdr, difference: cdr.map(|cdr| ours - cdr) }
    }
}

/// Our price of a CDR beside the CDR's own totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdrCheck {
    /// `CC*PID*ID` of the CDR.
    pub cdr: String,
    pub currency: Currency,
    /// Largest difference still taken as a match: one minor unit of the currency (exclusive), since
    /// CPOs round their totals to it and we keep 4 decimals.
    pub tolerance: Decimal,
    /// Whether every cost total matches.
    pub matches: bool,
    pub total_cost: CostCheck,
    pub total_fixed_cost: CostCheck,
    pub total_energy_cost: CostCheck,
    pub total_time_cost: CostCheck,
    pub total_parking_cost: CostCheck,
    pub total_reservation_cost: CostCheck,
    pub total_energy: VolumeCheck,
    pub total_time: VolumeCheck,
    pub total_parking_time: VolumeCheck,
    /// Our full breakdown, to see why.
    pub breakdown: PriceBreakdown,
}

impl CdrCheck {
    pub fn new(cdr: &Cdr, breakdown: PriceBreakdown) -> Self {
        let tolerance = Decimal::new(1, cdr.currency.minor_unit_digits());
        let b = &breakdown;
        let total_cost = CostCheck::new(&b.total_cost, Some(&cdr.total_cost), tolerance);
        let total_fixed_cost = CostCheck::new(&b.total_fixed_cost, cdr.total_fixed_cost.as_ref(), tolerance);
        let total_energy_cost = CostCheck::new(&b.total_energy_cost, cdr.total_energy_cost.as_ref(), tolerance);
        let total_time_cost = CostCheck::new(&b.total_time_cost, cdr.total_time_cost.as_ref(), tolerance);
        let total_parking_cost = CostCheck::new(&b.total_parking_cost, cdr.total_parking_cost.as_ref(), tolerance);
        let total_reservation_cost =
            CostCheck::new(&b.total_reservation_cost, cdr.total_reservation_cost.as_ref(), tolerance);
        let matches = [
            &total_cost,
            &total_fixed_cost,
            &total_energy_cost,
            &total_time_cost,
            &total_parking_cost,
            &total_reservation_cost,
        ]
        .iter()
        .all(|check| check.matches);
        Self {
            cdr: format!("{}*{}", cdr.party, cdr.id.as_str()),
            currency: cdr.currency.clone(),
            tolerance,
            matches,
            total_cost,
            total_fixed_cost,
            total_energy_cost,
            total_time_cost,
            total_parking_cost,
            total_reservation_cost,
            total_energy: VolumeCheck::new(b.total_energy, Some(cdr.total_energy)),
            total_time: VolumeCheck::new(b.total_time, Some(cdr.total_time)),
            total_parking_time: VolumeCheck::new(b.total_parking_time, cdr.total_parking_time),
            breakdown,
        }
    }
}
