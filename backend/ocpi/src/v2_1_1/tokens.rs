//! OCPI 2.1.1 `mod_tokens`: the `Token` (no party fields, `auth_id` for the contract id), the
//! `LocationReferences` of an authorization request and `AuthorizationInfo` (no token and no
//! authorization reference in 2.1.1).

use chrono::{DateTime, Utc};
use emsp_domain as domain;
use emsp_domain::{AllowedType, TokenType, WhitelistType};
use serde::{Deserialize, Serialize};

pub use crate::v2_2_1::tokens::{DisplayText, LocationReferences, ValidityPatch};

/// A token (2.1.1 `Token` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub uid: String,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// The contract id (eMAID).
    pub auth_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visual_number: Option<String>,
    pub issuer: String,
    pub valid: bool,
    pub whitelist: WhitelistType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub last_updated: DateTime<Utc>,
}

/// Our token in 2.1.1 form (a blocked or expired token travels as `valid: false`).
pub fn from_domain(token: &domain::Token, now: DateTime<Utc>) -> Token {
    Token {
        uid: token.uid.as_str().to_owned(),
        token_type: token.token_type.clone(),
        auth_id: token.contract_id.clone(),
        visual_number: token.visual_number.clone(),
        issuer: token.issuer.clone(),
        valid: token.allowed_at(now) == AllowedType::Allowed,
        whitelist: token.whitelist.clone(),
        language: token.language.clone(),
        last_updated: token.last_updated,
    }
}

/// Our answer to a real-time authorization (2.1.1 `AuthorizationInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationInfo {
    pub allowed: AllowedType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationReferences>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<DisplayText>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2.1.1 specification's token example reads and writes back unchanged.
    #[test]
    fn the_specification_example_round_trips() {
        let example = serde_json::json!({
            "uid": "012345678",
            "type": "RFID",
            "auth_id": "FA54320",
            "visual_number": "DF000-2001-8999",
            "issuer": "TheNewMotion",
            "valid": true,
            "whitelist": "ALLOWED",
            "last_updated": "2015-06-29T22:39:09Z"
        });
        let token: Token = serde_json::from_value(example.clone()).unwrap();
        assert_eq!(serde_json::to_value(&token).unwrap(), example);
    }
}
