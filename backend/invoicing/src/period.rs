//! Billing periods: calendar months in the fleet's time zone. A session belongs to the month in
//! which it ended, as the fleet's clock shows it, so a session from 31 October 23:30 to 1 November
//! 00:30 (Berlin) is November's, and the month boundaries move with daylight saving time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::InvoicingError;

/// A calendar month, written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BillingPeriod {
    year: i32,
    month: u32,
}

impl BillingPeriod {
    pub fn new(year: i32, month: u32) -> Result<Self, InvoicingError> {
        if !(2000..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(InvoicingError::Period(format!("{year:04}-{month:02}")));
        }
        Ok(Self { year, month })
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn month(&self) -> u32 {
        self.month
    }

    pub fn first_day(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    pub fn next(&self) -> Self {
        if self.month == 12 {
            Self { year: self.year + 1, month: 1 }
        } else {
            Self { year: self.year, month: self.month + 1 }
        }
    }

    /// The month `months` before this one (never before the year 2000).
    pub fn months_before(&self, months: u32) -> Self {
        let index = (self.year * 12 + self.month as i32 - 1 - months.min(12 * 8000) as i32).max(2000 * 12);
        Self { year: index / 12, month: (index % 12) as u32 + 1 }
    }

    pub fn last_day(&self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or(NaiveDate::MIN)
    }

    /// The half-open interval `[start, end)` of instants in this month on the fleet's clock.
    pub fn bounds(&self, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        (local_midnight(tz, self.first_day()), local_midnight(tz, self.next().first_day()))
    }

    /// The month in which `instant` falls on the fleet's clock.
    pub fn containing(instant: DateTime<Utc>, tz: Tz) -> Self {
        let local = instant.with_timezone(&tz);
        Self { year: local.year(), month: local.month() }
    }
}

/// The first instant of `day` in `tz`. Where midnight does not exist (a zone that springs forward at
/// midnight) the day starts at the first local time that does.
fn local_midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let mut local = day.and_time(NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(instant) = tz.from_local_datetime(&local).earliest() {
            return instant.with_timezone(&Utc);
        }
        local += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
}

impl FromStr for BillingPeriod {
    type Err = InvoicingError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let bad = || InvoicingError::Period(value.to_owned());
        let (year, month) = value.trim().split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let month: u32 = month.parse().map_err(|_| bad())?;
        Self::new(year, month).map_err(|_| bad())
    }
}

impl TryFrom<String> for BillingPeriod {
    type Error = InvoicingError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<BillingPeriod> for String {
    fn from(value: BillingPeriod) -> String {
        value.to_string()
    }
}

impl fmt::Display for BillingPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn months_before_cross_years() {
        let march: BillingPeriod = "2027-03".parse().unwrap();
        assert_eq!(march.months_before(0), march);
        assert_eq!(march.months_before(2).to_string(), "2027-01");
        assert_eq!(march.months_before(3).to_string(), "2026-12");
        assert_eq!(march.months_before(12).to_string(), "2026-03");
        assert_eq!(march.months_before(27).to_string(), "2024-12");
        assert_eq!(march.months_before(u32::MAX).to_string(), "2000-01");
    }

    #[test]
    fn parses_and_prints_months() {
        let p: BillingPeriod = "2026-10".parse().unwrap();
        assert_eq!(p.to_string(), "2026-10");
        assert_eq!(p.last_day(), NaiveDate::from_ymd_opt(2026, 10, 31).unwrap());
        assert_eq!("2026-12".parse::<BillingPeriod>().unwrap().next().to_string(), "2027-01");
        for bad in ["2026-13", "2026-00", "26-10", "2026/10", "2026-1", "", "abcd-ef"] {
            assert!(bad.parse::<BillingPeriod>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bounds_follow_daylight_saving_time() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // October 2026: starts in summer time (UTC+2), ends in winter time (UTC+1; clocks go back 25 Oct).
        let (start, end) = "2026-10".parse::<BillingPeriod>().unwrap().bounds(tz);
        assert_eq!(start.to_rfc3339(), "2026-09-30T22:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-10-31T23:00:00+00:00");
        assert_eq!((end - start).num_hours(), 31 * 24 + 1, "the month has the extra hour");
        // March 2026: clocks go forward on 29 March, the month is an hour short.
        let (start, end) = "2026-03".parse::<BillingPeriod>().unwrap().bounds(tz);
        assert_eq!((end - start).num_hours(), 31 * 24 - 1);
    }

    #[test]
    fn a_zone_without_midnight_starts_the_day_at_its_first_hour() {
        let tz: Tz = "America/Havana".parse().unwrap();
        // Havana springs forward at 00:00 on the second Sunday of March: 2026-03-08.
        let start = local_midnight(tz, NaiveDate::from_ymd_opt(2026, 3, 8).unwrap());
        assert_eq!(start.with_timezone(&tz).time(), NaiveTime::from_hms_opt(1, 0, 0).unwrap());
    }
}
