//! OCPI Commands (we are the Sender: the eMSP asks, the CPO's charger acts) and the charging
//! preferences of Smart Charging, for 2.2.1 and 2.1.1.
//!
//! - A command is a POST to `{commands endpoint}/{COMMAND}` with the bodies below; the CPO answers at
//!   once with a `CommandResponse` (`result`, in 2.2.1 also a `timeout` in seconds).
//! - The outcome is POSTed later to our `response_url`: a `CommandResult` in 2.2.1, a second
//!   `CommandResponse` in 2.1.1 (whose results are a subset of 2.2.1's).
//! - 2.1.1 START_SESSION has no `connector_id` and no `authorization_reference`, RESERVE_NOW has an
//!   integer `reservation_id`, and CANCEL_RESERVATION does not exist.
//! - The Token object a START_SESSION or RESERVE_NOW carries differs by version: 2.2.1 names its
//!   party and has `contract_id`; 2.1.1 has `auth_id` instead.

use chrono::{DateTime, Utc};
use emsp_domain::{CommandResponseType, CommandResultType, Token};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lenient;
use crate::version::OcpiVersion;

/// The commands of the module (2.2.1 `CommandType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandType {
    CancelReservation,
    ReserveNow,
    StartSession,
    StopSession,
    UnlockConnector,
}

impl CommandType {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandType::CancelReservation => "CANCEL_RESERVATION",
            CommandType::ReserveNow => "RESERVE_NOW",
            CommandType::StartSession => "START_SESSION",
            CommandType::StopSession => "STOP_SESSION",
            CommandType::UnlockConnector => "UNLOCK_CONNECTOR",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.to_ascii_uppercase().as_str() {
            "CANCEL_RESERVATION" => CommandType::CancelReservation,
            "RESERVE_NOW" => CommandType::ReserveNow,
            "START_SESSION" => CommandType::StartSession,
            "STOP_SESSION" => CommandType::StopSession,
            "UNLOCK_CONNECTOR" => CommandType::UnlockConnector,
            _ => return None,
        })
    }

    /// Whether the version has this command (2.1.1 cannot cancel a reservation).
    pub fn exists_in(self, version: OcpiVersion) -> bool {
        !(version.is_2_1_1() && self == CommandType::CancelReservation)
    }
}

/// What a command asks, version-neutral; [`CommandRequest::to_wire`] writes the version's body.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandRequest {
    StartSession {
        token: Token,
        location_id: String,
        evse_uid: Option<String>,
        connector_id: Option<String>,
        authorization_reference: Option<String>,
    },
    StopSession {
        session_id: String,
    },
    ReserveNow {
        token: Token,
        expiry_date: DateTime<Utc>,
        /// Digits only, so that 2.1.1's integer form holds it too.
        reservation_id: String,
        location_id: String,
        evse_uid: Option<String>,
        authorization_reference: Option<String>,
    },
    CancelReservation {
        reservation_id: String,
    },
    UnlockConnector {
        location_id: String,
        evse_uid: String,
        connector_id: String,
    },
}

impl CommandRequest {
    pub fn command(&self) -> CommandType {
        match self {
            CommandRequest::StartSession { .. } => CommandType::StartSession,
            CommandRequest::StopSession { .. } => CommandType::StopSession,
            CommandRequest::ReserveNow { .. } => CommandType::ReserveNow,
            CommandRequest::CancelReservation { .. } => CommandType::CancelReservation,
            CommandRequest::UnlockConnector { .. } => CommandType::UnlockConnector,
        }
    }

    /// The JSON body in `version`, with our `response_url`.
    pub fn to_wire(&self, version: OcpiVersion, response_url: &str) -> Value {
        let v211 = version.is_2_1_1();
        let mut body = serde_json::Map::new();
        body.insert("response_url".into(), Value::from(response_url));
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                body.insert(key.to_owned(), value);
            }
        };
        match self {
            CommandRequest::StartSession { token, location_id, evse_uid, connector_id, authorization_reference } => {
                put("token", Some(token_to_wire(token, version)));
                put("location_id", Some(Value::from(location_id.as_str())));
                put("evse_uid", evse_uid.as_deref().map(Value::from));
                if !v211 {
                    put("connector_id", connector_id.as_deref().map(Value::from));
                    put("authorization_reference", authorization_reference.as_deref().map(Value::from));
                }
            }
            CommandRequest::StopSession { session_id } => put("session_id", Some(Value::from(session_id.as_str()))),
            CommandRequest::ReserveNow {
                token,
                expiry_date,
                reservation_id,
                location_id,
                evse_uid,
                authorization_reference,
            } => {
                put("token", Some(token_to_wire(token, version)));
                put("expiry_date", Some(Value::from(format_datetime(*expiry_date))));
                let id = if v211 {
                    reservation_id
                        .parse::<u64>()
                        .map(Value::from)
                        .unwrap_or_else(|_| Value::from(reservation_id.as_str()))
                } else {
                    Value::from(reservation_id.as_str())
                };
                put("reservation_id", Some(id));
                put("location_id", Some(Value::from(location_id.as_str())));
                put("evse_uid", evse_uid.as_deref().map(Value::from));
                if !v211 {
                    put("authorization_reference", authorization_reference.as_deref().map(Value::from));
                }
            }
            CommandRequest::CancelReservation { reservation_id } => {
                put("reservation_id", Some(Value::from(reservation_id.as_str())));
            }
            CommandRequest::UnlockConnector { location_id, evse_uid, connector_id } => {
                put("location_id", Some(Value::from(location_id.as_str())));
                put("evse_uid", Some(Value::from(evse_uid.as_str())));
                put("connector_id", Some(Value::from(connector_id.as_str())));
            }
        }
        Value::Object(body)
    }
}

fn format_datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A token as a command carries it.
pub fn token_to_wire(token: &Token, version: OcpiVersion) -> Value {
    let mut object = serde_json::Map::new();
    let mut put = |key: &str, value: Value| {
        object.insert(key.to_owned(), value);
    };
    if !version.is_2_1_1() {
        put("country_code", Value::from(token.party.country_code.as_str()));
        put("party_id", Value::from(token.party.party_id.as_str()));
    }
    put("uid", Value::from(token.uid.as_str()));
    put("type", Value::from(token.token_type.as_str()));
    if version.is_2_1_1() {
        put("auth_id", Value::from(token.contract_id.as_str()));
    } else {
        put("contract_id", Value::from(token.contract_id.as_str()));
    }
    if let Some(visual) = &token.visual_number {
        put("visual_number", Value::from(visual.as_str()));
    }
    put("issuer", Value::from(token.issuer.as_str()));
    if let Some(group) = token.group_id.as_ref().filter(|_| !version.is_2_1_1()) {
        put("group_id", Value::from(group.as_str()));
    }
    put("valid", Value::from(token.valid));
    put("whitelist", Value::from(token.whitelist.as_str()));
    if let Some(language) = &token.language {
        put("language", Value::from(language.as_str()));
    }
    put("last_updated", Value::from(format_datetime(token.last_updated)));
    Value::Object(object)
}

/// The CPO's synchronous answer (`CommandResponse`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CommandResponse {
    #[serde(deserialize_with = "lenient::string")]
    pub result: String,
    /// Seconds to wait for the result (2.2.1).
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub timeout: Option<u32>,
}

impl CommandResponse {
    /// The result; an unknown value counts as a rejection.
    pub fn response_type(&self) -> CommandResponseType {
        CommandResponseType::parse(&self.result).unwrap_or(CommandResponseType::Rejected)
    }
}

/// The asynchronous outcome POSTed to our `response_url` (2.2.1 `CommandResult`, 2.1.1
/// `CommandResponse`; both have `result`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CommandResult {
    #[serde(deserialize_with = "lenient::string")]
    pub result: String,
}

impl CommandResult {
    pub fn result_type(&self) -> Option<CommandResultType> {
        CommandResultType::parse(&self.result)
    }
}

/// The driver's wish for a running session (2.2.1 `ChargingPreferences`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargingPreferences {
    /// `CHEAP`, `FAST`, `GREEN` or `REGULAR` (`ProfileType`).
    pub profile_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure_time: Option<DateTime<Utc>>,
    /// kWh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_need: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discharge_allowed: Option<bool>,
}

/// The CPO's answer to charging preferences (`ChargingPreferencesResponse`), as sent.
pub const CHARGING_PREFERENCES_RESPONSES: [&str; 5] =
    ["ACCEPTED", "DEPARTURE_REQUIRED", "ENERGY_NEED_REQUIRED", "NOT_POSSIBLE", "PROFILE_TYPE_NOT_SUPPORTED"];

#[cfg(test)]
mod tests {
    use emsp_domain::{PartyId, TokenType, TokenUid, WhitelistType};

    use super::*;

    fn token() -> Token {
        Token {
            party: PartyId::parse("NLEMS").unwrap(),
            uid: TokenUid::new("APP-1").unwrap(),
            token_type: TokenType::AppUser,
            contract_id: "NL-EMS-C12345678-X".into(),
            visual_number: None,
            issuer: "Open EMSP".into(),
            group_id: Some("FLEET".into()),
            valid: true,
            whitelist: WhitelistType::Allowed,
            language: None,
            default_profile_type: None,
            energy_contract: None,
            expires_at: None,
            blocked_reason: None,
            last_updated: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn start_session_per_version() {
        let request = CommandRequest::StartSession {
            token: token(),
            location_id: "LOC1".into(),
            evse_uid: Some("E1".into()),
            connector_id: Some("1".into()),
            authorization_reference: Some("REF1".into()),
        };
        let v221 = request.to_wire(OcpiVersion::V2_2_1, "https://emsp/ocpi/2.2.1/commands/START_SESSION/u1");
        assert_eq!(v221["response_url"], "https://emsp/ocpi/2.2.1/commands/START_SESSION/u1");
        assert_eq!(v221["token"]["country_code"], "NL");
        assert_eq!(v221["token"]["contract_id"], "NL-EMS-C12345678-X");
        assert_eq!(v221["token"]["group_id"], "FLEET");
        assert_eq!(v221["connector_id"], "1");
        assert_eq!(v221["authorization_reference"], "REF1");
        let v211 = request.to_wire(OcpiVersion::V2_1_1, "u");
        assert_eq!(v211["token"]["auth_id"], "NL-EMS-C12345678-X");
        assert!(v211["token"].get("country_code").is_none());
        assert!(v211.get("connector_id").is_none() && v211.get("authorization_reference").is_none());
        assert_eq!(v211["evse_uid"], "E1");
    }

    #[test]
    fn reservation_ids_are_integers_in_2_1_1() {
        let request = CommandRequest::ReserveNow {
            token: token(),
            expiry_date: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            reservation_id: "42".into(),
            location_id: "LOC1".into(),
            evse_uid: None,
            authorization_reference: None,
        };
        assert_eq!(request.to_wire(OcpiVersion::V2_1_1, "u")["reservation_id"], 42);
        assert_eq!(request.to_wire(OcpiVersion::V2_2_1, "u")["reservation_id"], "42");
        assert_eq!(request.to_wire(OcpiVersion::V2_2_1, "u")["expiry_date"], "2023-11-14T22:13:20Z");
        assert!(!CommandType::CancelReservation.exists_in(OcpiVersion::V2_1_1));
        assert!(CommandType::CancelReservation.exists_in(OcpiVersion::V2_2_1));
    }

    #[test]
    fn reads_responses_and_results_tolerantly() {
        let response: CommandResponse = serde_json::from_str(r#"{"result":"ACCEPTED","timeout":"30"}"#).unwrap();
        assert_eq!((response.response_type(), response.timeout), (CommandResponseType::Accepted, Some(30)));
        let odd: CommandResponse = serde_json::from_str(r#"{"result":"MAYBE"}"#).unwrap();
        assert_eq!(odd.response_type(), CommandResponseType::Rejected);
        let result: CommandResult = serde_json::from_str(r#"{"result":"EVSE_OCCUPIED","message":[]}"#).unwrap();
        assert_eq!(result.result_type(), Some(CommandResultType::EvseOccupied));
    }
}
