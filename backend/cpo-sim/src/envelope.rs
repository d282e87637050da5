//! The OCPI response envelope and DateTime formatting, shared by every endpoint and by the client.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// `{data, status_code, status_message, timestamp}` of every OCPI response.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    pub status_code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub timestamp: String,
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Envelope { data: Some(data), status_code: 1000, status_message: Some("Success".to_owned()), timestamp: now() }
    }

    pub fn ok_empty() -> Self {
        Envelope { data: None, status_code: 1000, status_message: Some("Success".to_owned()), timestamp: now() }
    }

    pub fn error(status_code: u32, message: String) -> Self {
        Envelope { data: None, status_code, status_message: Some(message), timestamp: now() }
    }
}

/// OCPI DateTime: UTC, seconds precision, `Z` suffix.
pub fn format_datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn now() -> String {
    format_datetime(Utc::now())
}

/// Parses an OCPI DateTime. The spec says UTC with `Z`, but peers send offsets or no zone at all
/// (which OCPI then defines as UTC), so all three are read.
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_with_and_without_zone_parse_as_utc() {
        let z = parse_datetime("2020-03-09T10:17:09Z").unwrap();
        assert_eq!(parse_datetime("2020-03-09T10:17:09").unwrap(), z);
        assert_eq!(parse_datetime("2020-03-09T11:17:09+01:00").unwrap(), z);
        assert_eq!(parse_datetime("2020-03-09T10:17:09.250Z").unwrap().timestamp(), z.timestamp());
        assert_eq!(format_datetime(z), "2020-03-09T10:17:09Z");
        assert!(parse_datetime("yesterday").is_none());
    }
}
