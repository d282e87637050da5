//! The OCPI 2.2.1 tariff price engine: what a session costs under a [`Tariff`](crate::Tariff).
//!
//! One engine ([`price_periods`]) prices a list of OCPI charging periods. Everything else feeds it:
//! [`price_cdr`] hands it a CDR's periods so billing can check the CPO's totals ([`CdrCheck`]),
//! [`price_session`] a running session's periods for the driver's running cost, and
//! the [planner](plan_periods) synthesises periods for a session that has not happened yet, so the
//! driver app's estimate and PRICE sorting use exactly the rules the bill will use.
//!
//! # Rules, from the specification (`mod_tariffs` and `mod_cdrs`, OCPI 2.2.1)
//!
//! - Per charging period and per dimension (FLAT, ENERGY, TIME, PARKING_TIME), the **first** tariff
//!   element whose restrictions all hold and which has a price component of that dimension applies.
//!   No such element means that dimension is free in that period.
//! - Restrictions are evaluated at the **start** of each charging period, because the CPO must open a
//!   new period whenever a different element could become active: times, dates and weekdays in the
//!   location's local time (`end_time` before `start_time` wraps past midnight, `end_time` 00:00 is
//!   the end of the day, `end_date` is exclusive), `min/max_kwh` against the energy charged before
//!   the period, `min/max_duration` against the session duration before the period (min inclusive,
//!   max exclusive), power and current against what the period measured (see below).
//! - `step_size` applies once per session for ENERGY and once for TIME and PARKING_TIME combined
//!   (`mod_cdrs`): the session's total volume of the dimension of the **last** priced period of the
//!   group is rounded up to that period's step, and the extra volume is billed in that period at its
//!   price. So 4.3 + 1.1 kWh bill 5.5 kWh with a 500 Wh step, and 21 minutes of charging followed by
//!   7 of parking bill 21 and 10 with 5-minute steps: charging followed by paid parking is never
//!   rounded. (The `tariff_14` examples of 2.2.1 round charging plus parking together instead; OCPI
//!   2.3.0 rewrote them to round the parking alone, as here.) Reservation time rounds on its own.
//! - FLAT is charged once: in the first period where an element with a FLAT component applies.
//! - Reservation periods (those with a `RESERVATION_TIME` dimension) are priced only by elements with
//!   a `reservation` restriction; charging periods only by elements without. When the session has no
//!   charging period, the reservation expired: `RESERVATION_EXPIRES` elements come first, then
//!   `RESERVATION` ones (so a tariff can add an expiry fee or replace the hourly price).
//! - `min_price` and `max_price` bound the total, excluding and including VAT independently.
//!
//! # Choices where the specification is silent
//!
//! - A `max_power`/`max_current` restriction is checked against the highest value the period reached
//!   (`MAX_*`, else `POWER`/`CURRENT`, else for power the period's average ENERGY / TIME), a `min_*`
//!   one against the lowest (`MIN_*`, else the same fallbacks), so an element applies only if the
//!   whole period was within its range. A period that neither charged nor measured current cannot
//!   satisfy a current restriction; the breakdown then carries a warning so operations see why.
//!   A period without charging counts as 0 kW and 0 A.
//! - `day_of_week` is the weekday of the period's local start, also inside a window that wrapped past
//!   midnight.
//! - A period with neither TIME nor PARKING_TIME is taken as charging time for its wall-clock duration
//!   (parking time if it states zero energy), with a warning.
//! - VAT is per component. A component without `vat` has unknown VAT (the 2.2.1 text says "no VAT
//!   applicable", its own `tariff_7` example says the total incl. VAT cannot be computed; we follow the
//!   example): any total it contributes a non-zero amount to has `incl_vat: None`.
//! - FLAT components of reservation elements count as reservation cost, the others as fixed cost.
//! - Session duration (for `min/max_duration`) counts from the first charging period, so a
//!   reservation before it does not use up a "first hour free".
//! - What we price with is what we were given: a session outside the tariff's
//!   `start_date_time..end_date_time`, a period naming another `tariff_id`, a price component type
//!   OCPI 2.2.1 does not define (ignored), or an `end_time` of 23:59 (which leaves a minute unpriced)
//!   each add a warning rather than an error.
//! - When `min_price`/`max_price` changes the total, the per-dimension totals stay as computed and
//!   [`PriceBreakdown::price_limit`] records the total before the limit. A limit without `incl_vat`
//!   scales the VAT-inclusive total by the same factor as the exclusive one.
//!
//! # Rounding policy
//!
//! Arithmetic is exact (`Decimal`, never `f64`) and unrounded inside the engine. Volumes are cleaned
//! of representation noise at 6 decimals (µWh, µs) before `step_size` rounding, so that 2 minutes
//! written as 0.0333… hours bill 120 seconds, not 121. Every amount in a [`PriceBreakdown`] is then
//! rounded **once**, to 4 decimals, half away from zero, the precision OCPI totals are usually given
//! in (`12.375`). Each total is rounded from its exact value, not summed from rounded parts, so a
//! total can differ from the sum of its parts by 0.0001. Invoicing rounds to the currency's minor
//! unit with [`Money::to_minor_units`](crate::Money::to_minor_units); [`CdrCheck`] accepts a
//! difference below one minor unit as a match, because CPOs round their CDR totals that way.

mod cdr_check;
mod engine;
mod planner;
mod restrictions;

use rust_decimal::Decimal;

pub use cdr_check::{CdrCheck, CostCheck, PriceDifference, VolumeCheck, check_cdr, price_cdr, price_session};
pub use engine::{
    AppliedComponent, BilledDimension, LimitKind, PeriodKind, PeriodPrice, PriceBreakdown, PriceLimit, price_periods,
};
pub use planner::{PlannedPeriods, PlannedSession, estimate, plan_periods};

/// Why a session could not be priced. Partners' quirks that still allow a price (an unknown
/// dimension, a restriction that cannot be evaluated) are warnings in the breakdown, not errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("no charging periods to price")]
    NoPeriods,
    #[error("charging period {index} starts before the period before it")]
    PeriodsOutOfOrder { index: usize },
    #[error("the session ends before its last charging period starts")]
    EndBeforeLastPeriod,
    #[error("charging period {index}: {dimension} volume {volume} is negative")]
    NegativeVolume { index: usize, dimension: String, volume: Decimal },
    #[error("charging period {index}: {dimension} volume {volume} is implausibly large")]
    ImplausibleVolume { index: usize, dimension: String, volume: Decimal },
    #[error("tariff element {element}: price {price} is implausibly large")]
    ImplausiblePrice { element: usize, price: Decimal },
    #[error("the CDR or session is in {cdr} but the tariff is in {tariff}")]
    CurrencyMismatch { tariff: String, cdr: String },
    #[error("planned session: {0}")]
    InvalidPlan(&'static str),
}

/// Amounts leave the engine with this many decimals (see the rounding policy above).
pub const AMOUNT_DECIMALS: u32 = 4;
/// Volumes (kWh, hours) leave the engine with this many decimals.
pub const VOLUME_DECIMALS: u32 = 6;
