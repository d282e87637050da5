//! The OCPI response envelope: every OCPI response body is `{data, status_code, status_message,
//! timestamp}`, also errors, which travel as HTTP 200 with a 2xxx/3xxx `status_code`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An OCPI status code (`status_codes` of the specification). A plain number on the wire, so
/// custom codes of partners (19xx, 29xx, 39xx, hub 4xxx) survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// Generic success.
    pub const SUCCESS: Self = Self(1000);
    /// Generic client error.
    pub const CLIENT_ERROR: Self = Self(2000);
    /// Invalid or missing parameters.
    pub const INVALID_PARAMETERS: Self = Self(2001);
    /// Not enough information (an authorization request with too little information).
    pub const NOT_ENOUGH_INFORMATION: Self = Self(2002);
    /// Unknown location.
    pub const UNKNOWN_LOCATION: Self = Self(2003);
    /// Unknown token.
    pub const UNKNOWN_TOKEN: Self = Self(2004);
    /// Generic server error.
    pub const SERVER_ERROR: Self = Self(3000);
    /// Unable to use the client's API.
    pub const UNABLE_TO_USE_CLIENT_API: Self = Self(3001);
    /// Unsupported version.
    pub const UNSUPPORTED_VERSION: Self = Self(3002);
    /// No matching endpoints or expected endpoints missing between parties.
    pub const NO_MATCHING_ENDPOINTS: Self = Self(3003);
    /// Not defined by the published texts of 2.1.1, 2.2.1 or 2.3.0 (they stop at 3003); reserved
    /// here for "the server is temporarily unable to answer" so callers share one constant.
    pub const SERVER_UNAVAILABLE: Self = Self(3004);

    /// 1xxx.
    pub fn is_success(self) -> bool {
        (1000..2000).contains(&self.0)
    }

    /// 2xxx: the caller sent something we cannot process.
    pub fn is_client_error(self) -> bool {
        (2000..3000).contains(&self.0)
    }

    /// 3xxx: the server could not process a valid request.
    pub fn is_server_error(self) -> bool {
        (3000..4000).contains(&self.0)
    }
}

/// A response body. `data` is absent on most errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    pub status_code: StatusCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub timestamp: DateTime<Utc>,
}

impl<T> Envelope<T> {
    /// A 1000 response carrying `data`.
    pub fn success(data: T, timestamp: DateTime<Utc>) -> Self {
        Self { data: Some(data), status_code: StatusCode::SUCCESS, status_message: None, timestamp }
    }

    /// An error response without data.
    pub fn error(status_code: StatusCode, message: impl Into<String>, timestamp: DateTime<Utc>) -> Self {
        Self { data: None, status_code, status_message: Some(message.into()), timestamp }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn envelopes_match_the_specification_shape() {
        let at = Utc.with_ymd_and_hms(2015, 6, 30, 21, 59, 59).unwrap();
        let error: Envelope<()> = Envelope::error(StatusCode::INVALID_PARAMETERS, "Missing required field: type", at);
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status_code": 2001, "status_message": "Missing required field: type", "timestamp": "2015-06-30T21:59:59Z"})
        );
        let back: Envelope<()> = serde_json::from_value(json).unwrap();
        assert_eq!(back, error);
        assert!(StatusCode(1900).is_success());
        assert!(StatusCode::UNKNOWN_TOKEN.is_client_error());
        assert!(StatusCode::UNSUPPORTED_VERSION.is_server_error());
    }

    #[test]
    fn data_can_be_a_list() {
        let body = r#"{"data":[1,2],"status_code":1000,"timestamp":"2015-06-30T21:59:59Z"}"#;
        let envelope: Envelope<Vec<u8>> = serde_json::from_str(body).unwrap();
        assert_eq!(envelope.data, Some(vec![1, 2]));
        assert_eq!(envelope.status_code, StatusCode::SUCCESS);
    }
}
