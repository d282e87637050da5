//! Is a location open at an instant, in its own time zone?
//!
//! OCPI gives regular hours as local wall-clock times per weekday (a period may wrap past
//! midnight: `22:00`-`02:00` belongs to the weekday it starts on), and exceptional openings and
//! closings as UTC instants. Evaluating on the local wall clock makes daylight-saving days come out
//! right without special cases: a shop open `08:00`-`20:00` opens at 07:00 UTC in winter and 06:00
//! UTC in summer in Amsterdam. Exceptional closings win over everything, then exceptional openings,
//! then `twentyfourseven`, then the regular hours.

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

use crate::location::{Hours, Location};

/// Whether a location with these hours is open at `at`; no hours at all means always open.
pub fn is_open_at(hours: Option<&Hours>, zone: Tz, at: DateTime<Utc>) -> bool {
    let Some(hours) = hours else {
        return true;
    };
    let within = |begin: DateTime<Utc>, end: DateTime<Utc>| begin <= at && at < end;
    if hours.exceptional_closings.iter().any(|period| within(period.period_begin, period.period_end)) {
        return false;
    }
    if hours.exceptional_openings.iter().any(|period| within(period.period_begin, period.period_end)) {
        return true;
    }
    if hours.twentyfourseven {
        return true;
    }
    let local = at.with_timezone(&zone);
    let today = local.weekday().number_from_monday() as u8;
    let yesterday = if today == 1 { 7 } else { today - 1 };
    // Seconds are dropped: OCPI hours have minute resolution and "until 20:00" means closed at 20:00:30.
    let now = NaiveTime::from_hms_opt(local.hour(), local.minute(), 0).unwrap_or(NaiveTime::MIN);
    hours.regular_hours.iter().any(|period| {
        let (begin, end) = (period.period_begin, period.period_end);
        if begin < end {
            period.weekday == today && begin <= now && now < end
        } else {
            // Wraps past midnight (or, when begin == end, lasts the whole day and into the next).
            (period.weekday == today && now >= begin) || (period.weekday == yesterday && now < end)
        }
    })
}

/// Whether drivers can charge at the location at `at`: open, or explicitly charging when closed.
///
/// A missing `charging_when_closed` counts as "no": telling a driver a closed garage is usable on a
/// guess is worse than hiding it.
pub fn can_charge_at(location: &Location, at: DateTime<Utc>) -> bool {
    if location.charging_when_closed == Some(true) {
        return true;
    }
    is_open_at(location.opening_times.as_ref(), location_time_zone(location), at)
}

/// The location's time zone: its own, else the one zone of its country, else UTC.
pub fn location_time_zone(location: &Location) -> Tz {
    location
        .time_zone
        .as_deref()
        .and_then(|zone| zone.parse::<Tz>().ok())
        .or_else(|| country_time_zone(&location.country))
        .unwrap_or(Tz::UTC)
}

/// The time zone of a country that has only one (ISO 3166-1 alpha-3, or alpha-2); `None` for
/// countries spanning several zones, where guessing would be wrong for part of them.
pub fn country_time_zone(country: &str) -> Option<Tz> {
    let zone = match country.to_ascii_uppercase().as_str() {
        "NLD" | "NL" => Tz::Europe__Amsterdam,
        "DEU" | "DE" => Tz::Europe__Berlin,
        "BEL" | "BE" => Tz::Europe__Brussels,
        "LUX" | "LU" => Tz::Europe__Luxembourg,
        "FRA" | "FR" => Tz::Europe__Paris,
        "GBR" | "GB" => Tz::Europe__London,
        "IRL" | "IE" => Tz::Europe__Dublin,
        "ITA" | "IT" => Tz::Europe__Rome,
        "AUT" | "AT" => Tz::Europe__Vienna,
        "CHE" | "CH" => Tz::Europe__Zurich,
        "DNK" | "DK" => Tz::Europe__Copenhagen,
        "NOR" | "NO" => Tz::Europe__Oslo,
        "SWE" | "SE" => Tz::Europe__Stockholm,
        "FIN" | "FI" => Tz::Europe__Helsinki,
        "POL" | "PL" => Tz::Europe__Warsaw,
        "CZE" | "CZ" => Tz::Europe__Prague,
        "SVK" | "SK" => Tz::Europe__Bratislava,
        "HUN" | "HU" => Tz::Europe__Budapest,
        "SVN" | "SI" => Tz::Europe__Ljubljana,
        "HRV" | "HR" => Tz::Europe__Zagreb,
        "ROU" | "RO" => Tz::Europe__Bucharest,
        "BGR" | "BG" => Tz::Europe__Sofia,
        "GRC" | "GR" => Tz::Europe__Athens,
        "TUR" | "TR" => Tz::Europe__Istanbul,
        "EST" | "EE" => Tz::Europe__Tallinn,
        "LVA" | "LV" => Tz::Europe__Riga,
        "LTU" | "LT" => Tz::Europe__Vilnius,
        "MNE" | "ME" => Tz::Europe__Podgorica,
        "SRB" | "RS" => Tz::Europe__Belgrade,
        "ARM" | "AM" => Tz::Asia__Yerevan,
        "ISR" | "IL" => Tz::Asia__Jerusalem,
        "MYS" | "MY" => Tz::Asia__Kuala_Lumpur,
        "PER" | "PE" => Tz::America__Lima,
        _ => return None,
    };
    Some(zone)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::location::{ExceptionalPeriod, RegularHours};

    fn time(hour: u32, minute: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(hour, minute, 0).unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn every_day(begin: NaiveTime, end: NaiveTime) -> Hours {
        Hours {
            twentyfourseven: false,
            regular_hours: (1..=7)
                .map(|weekday| RegularHours { weekday, period_begin: begin, period_end: end })
                .collect(),
            exceptional_openings: vec![],
            exceptional_closings: vec![],
        }
    }

    const AMSTERDAM: Tz = Tz::Europe__Amsterdam;

    #[test]
    fn missing_hours_mean_always_open() {
        assert!(is_open_at(None, AMSTERDAM, utc(2026, 1, 1, 3, 0)));
    }

    #[test]
    fn regular_hours_are_local_time() {
        let hours = every_day(time(8, 0), time(20, 0));
        // Winter, UTC+1: 07:30 UTC is 08:30 local.
        assert!(is_open_at(Some(&hours), AMSTERDAM, utc(2026, 1, 14, 7, 30)));
        assert!(!is_open_at(Some(&hours), AMSTERDAM, utc(2026, 1, 14, 6, 30)));
        // 19:00 UTC is 20:00 local: closing time is exclusive.
        assert!(!is_open_at(Some(&hours), AMSTERDAM, utc(2026, 1, 14, 19, 0)));
    }

    #[test]
    fn spring_forward_day_opens_an_hour_earlier_in_utc() {
        let hours = every_day(time(8, 0), time(20, 0));
        // 2026-03-29: clocks go 02:00 -> 03:00 at 01:00 UTC. 06:30 UTC is then 08:30 CEST.
        assert!(is_open_at(Some(&hours), AMSTERDAM, utc(2026, 3, 29, 6, 30)));
        // The day before, 06:30 UTC was 07:30 CET: closed.
        assert!(!is_open_at(Some(&hours), AMSTERDAM, utc(2026, 3, 28, 6, 30)));
        // A period inside the skipped hour on the same day never matches, but the next one does.
        let night = every_day(time(2, 0), time(3, 0));
        assert!(!is_open_at(Some(&night), AMSTERDAM, utc(2026, 3, 29, 1, 0)));
    }

    #[test]
    fn fall_back_day_repeats_the_local_hour() {
        let hours = every_day(time(2, 0), time(3, 0));
        // 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC; local 02:xx happens twice.
        assert!(is_open_at(Some(&hours), AMSTERDAM, utc(2026, 10, 25, 0, 30)));
        assert!(is_open_at(Some(&hours), AMSTERDAM, utc(2026, 10, 25, 1, 30)));
        assert!(!is_open_at(Some(&hours), AMSTERDAM, utc(2026, 10, 25, 2, 30)));
    }

    #[test]
    fn periods_wrapping_past_midnight_belong_to_their_start_day() {
        // Friday only, 22:00 -> 02:00.
        let hours = Hours {
            twentyfourseven: false,
            regular_hours: vec![RegularHours { weekday: 5, period_begin: time(22, 0), period_end: time(2, 0) }],
            exceptional_openings: vec![],
            exceptional_closings: vec![],
        };
        // 2026-01-16 is a Friday. 21:30 UTC = 22:30 local Friday.
        assert!(is_open_at(Some(&hours), AMSTERDAM, utc(2026, 1, 16, 21, 30)));
        // Saturday 01:30 local = 00:30 UTC Saturday.
        assert!(is_open_at(Some(&hours), AMSTERDAM, utc(2026, 1, 17, 0, 30)));
        // Saturday 22:30 local: the period is Friday's only.
        assert!(!is_open_at(Some(&hours), AMSTERDAM, utc(2026, 1, 17, 21, 30)));
        // Friday 01:30 local: belongs to Thursday, which has no period.
        assert!(!is_open_at(Some(&hours), AMSTERDAM, utc(2026, 1, 16, 0, 30)));
    }

    #[test]
    fn exceptional_closings_win_then_openings() {
        let mut hours = every_day(time(8, 0), time(20, 0));
        hours.twentyfourseven = true;
        hours
            .exceptional_closings
            .push(ExceptionalPeriod { period_begin: utc(2026, 12, 25, 0, 0), period_end: utc(2026, 12, 26, 0, 0) });
        assert!(!is_open_at(Some(&hours), AMSTERDAM, utc(2026, 12, 25, 12, 0)));
        assert!(is_open_at(Some(&hours), AMSTERDAM, utc(2026, 12, 26, 0, 0)));

        let mut hours = every_day(time(8, 0), time(20, 0));
        hours
            .exceptional_openings
            .push(ExceptionalPeriod { period_begin: utc(2026, 1, 14, 22, 0), period_end: utc(2026, 1, 15, 2, 0) });
        assert!(is_open_at(Some(&hours), AMSTERDAM, utc(2026, 1, 14, 23, 0)));
        assert!(!is_open_at(Some(&hours), AMSTERDAM, utc(2026, 1, 15, 3, 0)));
    }

    #[test]
    fn country_zones_cover_single_zone_countries_only() {
        assert_eq!(country_time_zone("NLD"), Some(AMSTERDAM));
        assert_eq!(country_time_zone("de"), Some(Tz::Europe__Berlin));
        assert_eq!(country_time_zone("USA"), None);
    }
}
