//! Tokens: the RFID cards and app identities the EMSP issues (OCPI `Token`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::enums::open_enum;
use crate::ids::TokenUid;
use crate::party::PartyId;

/// A token of ours, as served to CPOs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// The EMSP that issued it.
    pub party: PartyId,
    pub uid: TokenUid,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// The contract id (eMAID, `NL-ABC-C12345678-X`).
    pub contract_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visual_number: Option<String>,
    /// The issuing company's name, printed on the card.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<String>,
    pub last_updated: DateTime<Utc>,
}

open_enum! {
    /// The kind of token (OCPI `TokenType`).
    pub enum TokenType {
        AdHocUser => "AD_HOC_USER",
        AppUser => "APP_USER",
        Email => "EMAIL",
        OtherType => "OTHER",
        Rfid => "RFID",
    }
}

open_enum! {
    /// How a CPO may authorise a token without asking us (OCPI `WhitelistType`).
    pub enum WhitelistType {
        Always => "ALWAYS",
        Allowed => "ALLOWED",
        AllowedOffline => "ALLOWED_OFFLINE",
        Never => "NEVER",
    }
}
