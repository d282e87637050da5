//! Whether a tariff element's restrictions hold at the start of a charging period.
//!
//! Kept apart from the engine so each restriction kind can be tested on its own, and so the planner
//! can ask which instants could change the answer.

use chrono::{Datelike, NaiveDateTime, NaiveTime, Weekday};
use rust_decimal::Decimal;

use crate::tariff::{DayOfWeek, TariffRestrictions};

/// What is known at the start of a charging period, in the units of the restrictions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeriodContext {
    /// The period's start in the location's local time.
    pub local_start: NaiveDateTime,
    /// kWh charged before this period.
    pub energy_so_far: Decimal,
    /// Seconds from the session's start to this period's start.
    pub duration_so_far: Decimal,
    /// Highest and lowest power (kW) reached in the period, when known.
    pub max_power: Option<Decimal>,
    pub min_power: Option<Decimal>,
    /// Highest and lowest current (A, summed over phases) in the period, when known.
    pub max_current: Option<Decimal>,
    pub min_current: Option<Decimal>,
}

/// The outcome of checking one element against one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Applies,
    DoesNotApply,
    /// The restriction needs a measurement the period does not have; the element does not apply.
    Unknown(&'static str),
}

/// Checks every restriction except `reservation`, which selects candidate elements instead (the
/// engine does that, since it depends on the whole session).
pub(crate) fn check(restrictions: &TariffRestrictions, ctx: &PeriodContext) -> Verdict {
    let local_time = ctx.local_start.time();
    let local_date = ctx.local_start.date();

    if !time_window_contains(restrictions.start_time, restrictions.end_time, local_time) {
        return Verdict::DoesNotApply;
    }
    if restrictions.start_date.is_some_and(|start| local_date < start) {
        return Verdict::DoesNotApply;
    }
    if restrictions.end_date.is_some_and(|end| local_date >= end) {
        return Verdict::DoesNotApply;
    }
    if !restrictions.day_of_week.is_empty() {
        let today = day_of_week(local_date.weekday());
        if !restrictions.day_of_week.contains(&today) {
            return Verdict::DoesNotApply;
        }
    }
    if restrictions.min_kwh.is_some_and(|min| ctx.energy_so_far < min) {
        return Verdict::DoesNotApply;
    }
    if restrictions.max_kwh.is_some_and(|max| ctx.energy_so_far >= max) {
        return Verdict::DoesNotApply;
    }
    if restrictions.min_duration.is_some_and(|min| ctx.duration_so_far < Decimal::from(min)) {
        return Verdict::DoesNotApply;
    }
    if restrictions.max_duration.is_some_and(|max| ctx.duration_so_far >= Decimal::from(max)) {
        return Verdict::DoesNotApply;
    }
    let measured = [
        (restrictions.min_power, ctx.min_power, Bound::AtLeast, "min_power needs the period's power"),
        (restrictions.max_power, ctx.max_power, Bound::Below, "max_power needs the period's power"),
        (restrictions.min_current, ctx.min_current, Bound::AtLeast, "min_current needs the period's current"),
        (restrictions.max_current, ctx.max_current, Bound::Below, "max_current needs the period's current"),
    ];
    for (limit, value, bound, missing) in measured {
        let Some(limit) = limit else { continue };
        let Some(value) = value else { return Verdict::Unknown(missing) };
        let holds = match bound {
            Bound::AtLeast => value >= limit,
            Bound::Below => value < limit,
        };
        if !holds {
            return Verdict::DoesNotApply;
        }
    }
    Verdict::Applies
}

enum Bound {
    AtLeast,
    Below,
}

/// `start_time` inclusive, `end_time` exclusive; `end_time` before `start_time` wraps past midnight,
/// and an `end_time` of 00:00 means the end of the day (the specification's own advice).
pub(crate) fn time_window_contains(start: Option<NaiveTime>, end: Option<NaiveTime>, time: NaiveTime) -> bool {
    let end = end.filter(|end| *end != NaiveTime::MIN);
    match (start, end) {
        (None, None) => true,
        (Some(start), None) => time >= start,
        (None, Some(end)) => time < end,
        (Some(start), Some(end)) if start < end => time >= start && time < end,
        (Some(start), Some(end)) if start > end => time >= start || time < end,
        // Equal start and end: a window of the whole day is the only reading that is not empty.
        (Some(_), Some(_)) => true,
    }
}

fn day_of_week(weekday: Weekday) -> DayOfWeek {
    match weekday {
        Weekday::Mon => DayOfWeek::Monday,
        Weekday::Tue => DayOfWeek::Tuesday,
        Weekday::Wed => DayOfWeek::Wednesday,
        Weekday::Thu => DayOfWeek::Thursday,
        Weekday::Fri => DayOfWeek::Friday,
        Weekday::Sat => DayOfWeek::Saturday,
        Weekday::Sun => DayOfWeek::Sunday,
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use rust_decimal_macros::dec;

    use super::*;

    fn at(date: &str, time: &str) -> PeriodContext {
        let local_start = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap().and_time(hm(time));
        PeriodContext {
            local_start,
            energy_so_far: Decimal::ZERO,
            duration_so_far: Decimal::ZERO,
            max_power: None,
            min_power: None,
            max_current: None,
            min_current: None,
        }
    }

    fn hm(value: &str) -> NaiveTime {
        value.parse().unwrap()
    }

    #[test]
    fn time_window_is_start_inclusive_end_exclusive() {
        let window = |t: &str| time_window_contains(Some(hm("09:00")), Some(hm("18:00")), hm(t));
        assert!(!window("08:59"));
        assert!(window("09:00"));
        assert!(window("17:59"));
        assert!(!window("18:00"));
    }

    #[test]
    fn time_window_wraps_past_midnight() {
        let night = |t: &str| time_window_contains(Some(hm("20:00")), Some(hm("08:00")), hm(t));
        assert!(night("20:00"));
        assert!(night("23:59"));
        assert!(night("00:00"));
        assert!(night("07:59"));
        assert!(!night("08:00"));
        assert!(!night("12:00"));
        assert!(!night("19:59"));
    }

    #[test]
    fn end_time_midnight_means_end_of_day() {
        let evening = |t: &str| time_window_contains(Some(hm("20:00")), Some(hm("00:00")), hm(t));
        assert!(evening("20:00"));
        assert!(evening("23:59"));
        assert!(!evening("00:00"));
        assert!(!evening("19:59"));
        assert!(time_window_contains(None, Some(hm("00:00")), hm("12:00")));
        assert!(time_window_contains(Some(hm("00:00")), Some(hm("17:00")), hm("00:00")));
    }

    #[test]
    fn open_ended_time_windows() {
        assert!(time_window_contains(Some(hm("17:00")), None, hm("17:00")));
        assert!(!time_window_contains(Some(hm("17:00")), None, hm("16:59")));
        assert!(time_window_contains(None, Some(hm("17:00")), hm("16:59")));
        assert!(!time_window_contains(None, Some(hm("17:00")), hm("17:00")));
    }

    #[test]
    fn dates_are_start_inclusive_end_exclusive() {
        let r = TariffRestrictions {
            start_date: Some(NaiveDate::from_ymd_opt(2025, 12, 24).unwrap()),
            end_date: Some(NaiveDate::from_ymd_opt(2025, 12, 27).unwrap()),
            ..Default::default()
        };
        assert_eq!(check(&r, &at("2025-12-23", "23:59")), Verdict::DoesNotApply);
        assert_eq!(check(&r, &at("2025-12-24", "00:00")), Verdict::Applies);
        assert_eq!(check(&r, &at("2025-12-26", "23:59")), Verdict::Applies);
        assert_eq!(check(&r, &at("2025-12-27", "00:00")), Verdict::DoesNotApply);
    }

    #[test]
    fn day_of_week_uses_the_local_date() {
        let r = TariffRestrictions { day_of_week: vec![DayOfWeek::Saturday, DayOfWeek::Sunday], ..Default::default() };
        // 2025-11-22 is a Saturday, 2025-11-24 a Monday.
        assert_eq!(check(&r, &at("2025-11-22", "10:00")), Verdict::Applies);
        assert_eq!(check(&r, &at("2025-11-23", "23:59")), Verdict::Applies);
        assert_eq!(check(&r, &at("2025-11-24", "00:00")), Verdict::DoesNotApply);
        let unknown_only =
            TariffRestrictions { day_of_week: vec![DayOfWeek::Other("HOLIDAY".into())], ..Default::default() };
        assert_eq!(check(&unknown_only, &at("2025-11-22", "10:00")), Verdict::DoesNotApply);
    }

    #[test]
    fn day_of_week_is_the_day_of_the_instant_even_in_a_wrapped_window() {
        // Friday nights 22:00–06:00: the early hours belong to Saturday, so they do not match.
        let r = TariffRestrictions {
            start_time: Some(hm("22:00")),
            end_time: Some(hm("06:00")),
            day_of_week: vec![DayOfWeek::Friday],
            ..Default::default()
        };
        assert_eq!(check(&r, &at("2025-11-28", "23:00")), Verdict::Applies);
        assert_eq!(check(&r, &at("2025-11-29", "02:00")), Verdict::DoesNotApply);
        assert_eq!(check(&r, &at("2025-11-28", "02:00")), Verdict::Applies, "Friday's own early hours");
    }

    #[test]
    fn kwh_min_inclusive_max_exclusive_on_energy_so_far() {
        let r = TariffRestrictions { min_kwh: Some(dec!(1)), max_kwh: Some(dec!(20)), ..Default::default() };
        let with = |kwh| PeriodContext { energy_so_far: kwh, ..at("2025-11-24", "10:00") };
        assert_eq!(check(&r, &with(dec!(0.999))), Verdict::DoesNotApply);
        assert_eq!(check(&r, &with(dec!(1))), Verdict::Applies);
        assert_eq!(check(&r, &with(dec!(19.999))), Verdict::Applies);
        assert_eq!(check(&r, &with(dec!(20))), Verdict::DoesNotApply);
    }

    #[test]
    fn duration_min_inclusive_max_exclusive_on_duration_so_far() {
        let r = TariffRestrictions { min_duration: Some(1800), max_duration: Some(3600), ..Default::default() };
        let with = |seconds| PeriodContext { duration_so_far: seconds, ..at("2025-11-24", "10:00") };
        assert_eq!(check(&r, &with(dec!(1799))), Verdict::DoesNotApply);
        assert_eq!(check(&r, &with(dec!(1800))), Verdict::Applies);
        assert_eq!(check(&r, &with(dec!(3599.9))), Verdict::Applies);
        assert_eq!(check(&r, &with(dec!(3600))), Verdict::DoesNotApply);
    }

    #[test]
    fn power_uses_the_extremes_of_the_period() {
        let r = TariffRestrictions { min_power: Some(dec!(16)), max_power: Some(dec!(32)), ..Default::default() };
        let with = |min, max| PeriodContext { min_power: Some(min), max_power: Some(max), ..at("2025-11-24", "10:00") };
        assert_eq!(check(&r, &with(dec!(16), dec!(31.9))), Verdict::Applies);
        assert_eq!(check(&r, &with(dec!(15.9), dec!(20))), Verdict::DoesNotApply, "dipped below min_power");
        assert_eq!(check(&r, &with(dec!(20), dec!(32))), Verdict::DoesNotApply, "max_power is exclusive");
        assert!(matches!(check(&r, &at("2025-11-24", "10:00")), Verdict::Unknown(_)));
    }

    #[test]
    fn current_without_a_measurement_is_unknown() {
        let r = TariffRestrictions { max_current: Some(dec!(32)), ..Default::default() };
        assert!(matches!(check(&r, &at("2025-11-24", "10:00")), Verdict::Unknown(_)));
        let ctx =
            PeriodContext { max_current: Some(dec!(16)), min_current: Some(dec!(16)), ..at("2025-11-24", "10:00") };
        assert_eq!(check(&r, &ctx), Verdict::Applies);
        let min = TariffRestrictions { min_current: Some(dec!(32)), ..Default::default() };
        assert_eq!(check(&min, &ctx), Verdict::DoesNotApply);
    }

    #[test]
    fn all_restrictions_must_hold() {
        let r = TariffRestrictions {
            start_time: Some(hm("09:00")),
            end_time: Some(hm("18:00")),
            day_of_week: vec![DayOfWeek::Monday],
            ..Default::default()
        };
        assert_eq!(check(&r, &at("2025-11-24", "10:00")), Verdict::Applies);
        assert_eq!(check(&r, &at("2025-11-25", "10:00")), Verdict::DoesNotApply);
        assert_eq!(check(&r, &at("2025-11-24", "19:00")), Verdict::DoesNotApply);
    }
}
