//! Estimates: the price of a session that has not happened yet.
//!
//! The planner writes the charging periods a CPO would send for the session (constant power, then
//! optional parking) and prices them with the engine, so an estimate can only differ from the bill
//! where the real session differs from the plan. Like a CPO, it opens a new period wherever the
//! tariff could switch elements: at every `start_time`/`end_time` of the tariff and every local
//! midnight (both converted per day, so DST days are right), at every DST change, where the energy
//! charged crosses a `min/max_kwh`, where the duration crosses a `min/max_duration`, and where
//! charging stops.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, NaiveTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::engine::{PriceBreakdown, price_periods};
use super::{PricingError, VOLUME_DECIMALS};
use crate::cdr::{CdrDimension, CdrDimensionType, ChargingPeriod};
use crate::tariff::Tariff;

/// A session to estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSession {
    pub start: DateTime<Utc>,
    /// kWh to charge.
    pub energy_kwh: Decimal,
    /// Constant charging power, kW: the lower of the car's and the EVSE's maximum.
    pub max_power_kw: Decimal,
    /// Time the car stays plugged in after charging (idle or parking time).
    pub parking: TimeDelta,
    /// Charging current summed over phases, A, when known; without it, elements restricted on
    /// current do not apply (and the estimate says so in its warnings).
    pub current_a: Option<Decimal>,
}

impl PlannedSession {
    pub fn new(start: DateTime<Utc>, energy_kwh: Decimal, max_power_kw: Decimal) -> Self {
        Self { start, energy_kwh, max_power_kw, parking: TimeDelta::zero(), current_a: None }
    }

    pub fn with_parking(mut self, parking: TimeDelta) -> Self {
        self.parking = parking;
        self
    }

    pub fn with_current(mut self, current_a: Decimal) -> Self {
        self.current_a = Some(current_a);
        self
    }
}

/// The synthesised periods and the session's end.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedPeriods {
    pub periods: Vec<ChargingPeriod>,
    pub end_date_time: DateTime<Utc>,
}

/// Longer plans are input errors (and would make the planner walk many days of boundaries).
const MAX_SESSION_DAYS: i64 = 31;
const MS_PER_HOUR: i64 = 3_600_000;

/// Prices `session` under `tariff` in the location's `time_zone`.
pub fn estimate(tariff: &Tariff, session: &PlannedSession, time_zone: Tz) -> Result<PriceBreakdown, PricingError> {
    let plan = plan_periods(tariff, session, time_zone)?;
    price_periods(tariff, &plan.periods, plan.end_date_time, time_zone)
}

/// The charging periods a CPO would report for `session`.
pub fn plan_periods(tariff: &Tariff, session: &PlannedSession, time_zone: Tz) -> Result<PlannedPeriods, PricingError> {
    let energy = session.energy_kwh;
    let power = session.max_power_kw;
    if energy < Decimal::ZERO {
        return Err(PricingError::InvalidPlan("energy must not be negative"));
    }
    if energy > Decimal::ZERO && power <= Decimal::ZERO {
        return Err(PricingError::InvalidPlan("charging needs a positive power"));
    }
    if session.parking < TimeDelta::zero() {
        return Err(PricingError::InvalidPlan("parking time must not be negative"));
    }
    let too_long = || PricingError::InvalidPlan("the session would last more than 31 days");
    let charging_ms = if energy.is_zero() { 0 } else { ceil_ms(energy, power).ok_or_else(too_long)? };
    let max_ms = MAX_SESSION_DAYS * 24 * MS_PER_HOUR;
    if charging_ms > max_ms || session.parking.num_milliseconds() > max_ms - charging_ms {
        return Err(too_long());
    }

    let start = session.start;
    let out_of_range = || PricingError::InvalidPlan("the session would end after the last representable date");
    let charge_end = after(start, TimeDelta::milliseconds(charging_ms)).ok_or_else(out_of_range)?;
    let end = after(charge_end, session.parking).ok_or_else(out_of_range)?;

    let mut cuts = BTreeSet::from([start, charge_end, end]);
    local_time_boundaries(tariff, start, end, time_zone, &mut cuts);
    offset_changes(start, end, time_zone, &mut cuts);
    for restrictions in tariff.elements.iter().filter_map(|e| e.restrictions.as_ref()) {
        for threshold in [restrictions.min_kwh, restrictions.max_kwh].into_iter().flatten() {
            if threshold > Decimal::ZERO
                && threshold < energy
                && let Some(cut) = ceil_ms(threshold, power).and_then(|ms| after(start, TimeDelta::milliseconds(ms)))
            {
                cuts.insert(cut);
            }
        }
        for seconds in [restrictions.min_duration, restrictions.max_duration].into_iter().flatten() {
            cuts.extend(after(start, TimeDelta::seconds(i64::from(seconds))));
        }
    }
    let cuts: Vec<DateTime<Utc>> = cuts.into_iter().filter(|t| *t >= start && *t <= end).collect();

    // Energy charged by an instant, from the start, so period energies add up to exactly the plan
    // and a threshold crossing (placed by rounding up) is never seen as just below the threshold.
    let energy_at = |t: DateTime<Utc>| {
        if t >= charge_end {
            return energy;
        }
        let elapsed = Decimal::from((t - start).num_milliseconds());
        (power * elapsed / Decimal::from(MS_PER_HOUR)).round_dp(VOLUME_DECIMALS)
    };
    let tariff_id = Some(tariff.id.as_str().to_owned());
    let mut periods = Vec::with_capacity(cuts.len());
    for pair in cuts.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let hours = Decimal::from((to - from).num_milliseconds()) / Decimal::from(MS_PER_HOUR);
        let dimensions = if from < charge_end {
            let mut dimensions = vec![
                dimension(CdrDimensionType::Energy, energy_at(to) - energy_at(from)),
                dimension(CdrDimensionType::Time, hours),
                dimension(CdrDimensionType::MaxPower, power),
                dimension(CdrDimensionType::MinPower, power),
            ];
            if let Some(current) = session.current_a {
                dimensions.push(dimension(CdrDimensionType::MaxCurrent, current));
                dimensions.push(dimension(CdrDimensionType::MinCurrent, current));
            }
            dimensions
        } else {
            vec![dimension(CdrDimensionType::Energy, Decimal::ZERO), dimension(CdrDimensionType::ParkingTime, hours)]
        };
        periods.push(ChargingPeriod { start_date_time: from, dimensions, tariff_id: tariff_id.clone() });
    }
    if periods.is_empty() {
        // Nothing to charge and no parking: one empty period still carries the FLAT fee.
        periods.push(ChargingPeriod {
            start_date_time: start,
            dimensions: vec![
                dimension(CdrDimensionType::Energy, Decimal::ZERO),
                dimension(CdrDimensionType::Time, Decimal::ZERO),
            ],
            tariff_id,
        });
    }
    Ok(PlannedPeriods { periods, end_date_time: end })
}

fn after(instant: DateTime<Utc>, delta: TimeDelta) -> Option<DateTime<Utc>> {
    instant.checked_add_signed(delta)
}

fn dimension(dimension: CdrDimensionType, volume: Decimal) -> CdrDimension {
    CdrDimension { dimension, volume }
}

/// Milliseconds to charge `energy` kWh at `power` kW, rounded up.
fn ceil_ms(energy: Decimal, power: Decimal) -> Option<i64> {
    let ms = energy.checked_mul(Decimal::from(MS_PER_HOUR))?.checked_div(power)?.ceil();
    i64::try_from(ms).ok()
}

/// Local midnights and every `start_time`/`end_time` of the tariff on each local day of the
/// session, converted one by one: a time inside a DST gap has no instant (the DST change itself
/// is a boundary), a time repeated by the autumn change has two.
fn local_time_boundaries(
    tariff: &Tariff,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    time_zone: Tz,
    cuts: &mut BTreeSet<DateTime<Utc>>,
) {
    let mut times = BTreeSet::from([NaiveTime::MIN]);
    for restrictions in tariff.elements.iter().filter_map(|e| e.restrictions.as_ref()) {
        times.extend(restrictions.start_time);
        times.extend(restrictions.end_time);
    }
    let first_day = start.with_timezone(&time_zone).date_naive();
    let last_day = end.with_timezone(&time_zone).date_naive();
    let mut day = first_day;
    while day <= last_day {
        for time in &times {
            let local = day.and_time(*time);
            for instant in time_zone
                .from_local_datetime(&local)
                .earliest()
                .into_iter()
                .chain(time_zone.from_local_datetime(&local).latest())
            {
                let instant = instant.with_timezone(&Utc);
                if instant > start && instant < end {
                    cuts.insert(instant);
                }
            }
        }
        let Some(next) = day.checked_add_days(Days::new(1)) else { break };
        day = next;
    }
}

/// Instants in `(start, end)` where the zone's UTC offset changes. Checked hour by hour (changes
/// are hours apart at least), then narrowed to the whole second the change happens at.
fn offset_changes(start: DateTime<Utc>, end: DateTime<Utc>, time_zone: Tz, cuts: &mut BTreeSet<DateTime<Utc>>) {
    let offset_at = |second: i64| {
        DateTime::from_timestamp(second, 0).map(|t| time_zone.offset_from_utc_datetime(&t.naive_utc()).fix())
    };
    let last = end.timestamp();
    let mut from = start.timestamp();
    while from < last {
        let to = (from + 3600).min(last);
        if offset_at(from) != offset_at(to) {
            // Invariant: `earlier` has the old offset, `later` the new one.
            let (mut earlier, mut later) = (from, to);
            while later - earlier > 1 {
                let middle = earlier + (later - earlier) / 2;
                if offset_at(middle) == offset_at(earlier) {
                    earlier = middle;
                } else {
                    later = middle;
                }
            }
            if let Some(change) = DateTime::from_timestamp(later, 0)
                && change > start
                && change < end
            {
                cuts.insert(change);
            }
        }
        from = to;
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use serde_json::json;

    use super::*;

    fn tariff(elements: serde_json::Value) -> Tariff {
        serde_json::from_value(json!({
            "party": { "country_code": "FR", "party_id": "TST" },
            "id": "PLAN",
            "currency": "EUR",
            "elements": elements,
            "last_updated": "2025-01-01T00:00:00Z",
        }))
        .unwrap()
    }

    fn volume(period: &ChargingPeriod, dimension: CdrDimensionType) -> Option<Decimal> {
        period.dimensions.iter().find(|d| d.dimension == dimension).map(|d| d.volume)
    }

    #[test]
    fn periods_add_up_to_the_plan() {
        let t = tariff(json!([
            { "price_components": [{ "type": "ENERGY", "price": 0.3, "step_size": 1 }],
              "restrictions": { "start_time": "18:00", "end_time": "20:00", "max_kwh": 12.5, "min_duration": 1234 } },
            { "price_components": [{ "type": "PARKING_TIME", "price": 6, "step_size": 60 }] } ]));
        // 17:30 Paris = 16:30 UTC; 33 kWh at 7.4 kW is 4 h 27 min 34.054 s of charging, then 50 min.
        let start: DateTime<Utc> = "2025-11-24T16:30:00Z".parse().unwrap();
        let session =
            PlannedSession::new(start, dec!(33), dec!(7.4)).with_parking(TimeDelta::minutes(50)).with_current(dec!(32));
        let plan = plan_periods(&t, &session, chrono_tz::Europe::Paris).unwrap();

        let energy: Decimal = plan.periods.iter().filter_map(|p| volume(p, CdrDimensionType::Energy)).sum();
        assert_eq!(energy, dec!(33));
        let charging: Decimal = plan.periods.iter().filter_map(|p| volume(p, CdrDimensionType::Time)).sum();
        let parking: Decimal = plan.periods.iter().filter_map(|p| volume(p, CdrDimensionType::ParkingTime)).sum();
        assert_eq!((charging * dec!(3600)).round_dp(3), dec!(16054.055));
        assert_eq!((parking * dec!(60)).round_dp(6), dec!(50));
        assert_eq!(plan.end_date_time, start + TimeDelta::milliseconds(16_054_055) + TimeDelta::minutes(50));
        // Cuts: start, +1234 s, 18:00 local, 12.5 kWh, 20:00 local, end of charging.
        assert_eq!(plan.periods.len(), 6);
        assert!(plan.periods.windows(2).all(|w| w[0].start_date_time < w[1].start_date_time));
        let charging_period = &plan.periods[0];
        assert_eq!(volume(charging_period, CdrDimensionType::MaxCurrent), Some(dec!(32)));
        assert_eq!(volume(charging_period, CdrDimensionType::MaxPower), Some(dec!(7.4)));
        assert_eq!(plan.periods[5].tariff_id.as_deref(), Some("PLAN"));
    }
}
