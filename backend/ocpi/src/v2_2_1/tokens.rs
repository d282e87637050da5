//! OCPI 2.2.1 `mod_tokens`: the `Token` we own and send to CPOs (pushed with PUT/PATCH, served
//! with GET), the `LocationReferences` a CPO may send with a real-time authorization, and our
//! answer, `AuthorizationInfo`.

use chrono::{DateTime, Utc};
use emsp_domain as domain;
use emsp_domain::{AllowedType, TokenType, WhitelistType};
use serde::{Deserialize, Serialize};

use crate::lenient;

/// A token (2.2.1 `Token` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub country_code: String,
    pub party_id: String,
    pub uid: String,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    pub contract_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visual_number: Option<String>,
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    pub valid: bool,
    pub whitelist: WhitelistType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_contract: Option<serde_json::Value>,
    pub last_updated: DateTime<Utc>,
}

/// Our token in 2.2.1 form. `blocked_reason` and `expires_at` are ours only: a blocked or
/// expired token travels as `valid: false`.
pub fn from_domain(token: &domain::Token, now: DateTime<Utc>) -> Token {
    Token {
        country_code: token.party.country_code.as_str().to_owned(),
        party_id: token.party.party_id.as_str().to_owned(),
        uid: token.uid.as_str().to_owned(),
        token_type: token.token_type.clone(),
        contract_id: token.contract_id.clone(),
        visual_number: token.visual_number.clone(),
        issuer: token.issuer.clone(),
        group_id: token.group_id.clone(),
        valid: token.allowed_at(now) == AllowedType::Allowed,
        whitelist: token.whitelist.clone(),
        language: token.language.clone(),
        default_profile_type: token.default_profile_type.clone(),
        energy_contract: token.energy_contract.clone(),
        last_updated: token.last_updated,
    }
}

/// The fields a PATCH of a token's validity carries (`last_updated` is required in every PATCH).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidityPatch {
    pub valid: bool,
    pub last_updated: DateTime<Utc>,
}

/// Where a CPO asks to charge (2.2.1 `LocationReferences`; `connector_ids` is 2.1.1's, read too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationReferences {
    #[serde(deserialize_with = "lenient::string")]
    pub location_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub evse_uids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub connector_ids: Vec<String>,
}

/// A short text for the driver (OCPI `DisplayText`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisplayText {
    pub language: String,
    pub text: String,
}

/// Our answer to a real-time authorization (2.2.1 `AuthorizationInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationInfo {
    pub allowed: AllowedType,
    pub token: Token,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationReferences>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<DisplayText>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full RFID example of the specification (`token_example_2_full_rfid.json`) reads, and
    /// writes back with the same fields.
    #[test]
    fn the_specification_example_round_trips() {
        let example = serde_json::json!({
            "country_code": "DE",
            "party_id": "TNM",
            "uid": "12345678905880",
            "type": "RFID",
            "contract_id": "DE8ACC12E46L89",
            "visual_number": "DF000-2001-8999-1",
            "issuer": "TheNewMotion",
            "group_id": "DF000-2001-8999",
            "valid": true,
            "whitelist": "ALLOWED",
            "language": "it",
            "default_profile_type": "GREEN",
            "energy_contract": {"supplier_name": "Greenpeace Energy eG", "contract_id": "0123456789"},
            "last_updated": "2018-12-10T17:25:10Z"
        });
        let token: Token = serde_json::from_value(example.clone()).unwrap();
        assert_eq!(token.token_type, TokenType::Rfid);
        assert_eq!(serde_json::to_value(&token).unwrap(), example);
    }

    #[test]
    fn location_references_are_read_leniently() {
        let refs: LocationReferences = serde_json::from_str(r#"{"location_id": 42, "evse_uids": null}"#).unwrap();
        assert_eq!(refs.location_id, "42");
        assert!(refs.evse_uids.is_empty());
        assert!(serde_json::from_str::<LocationReferences>(r#"{"evse_uids": ["A"]}"#).is_err());
    }
}
