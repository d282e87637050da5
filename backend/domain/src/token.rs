//! Tokens: the RFID cards and app identities the EMSP issues (OCPI `Token`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ValidationError;
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

open_enum! {
    /// The answer to a real-time authorization (OCPI `AllowedType`).
    pub enum AllowedType {
        Allowed => "ALLOWED",
        Blocked => "BLOCKED",
        Expired => "EXPIRED",
        NoCredit => "NO_CREDIT",
        NotAllowed => "NOT_ALLOWED",
    }
}

impl Token {
    /// Checks the lengths and forms OCPI sets for a token's fields, naming the field at fault.
    pub fn validate(&self) -> Result<(), ValidationError> {
        fn max_len(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
            if value.chars().count() > max {
                return Err(ValidationError::new(field, format!("longer than {max} characters")));
            }
            Ok(())
        }
        if !self.token_type.is_known() {
            return Err(ValidationError::new("type", format!("{:?} is not a token type", self.token_type.as_str())));
        }
        if !self.whitelist.is_known() {
            return Err(ValidationError::new(
                "whitelist",
                format!("{:?} is not a whitelist type", self.whitelist.as_str()),
            ));
        }
        if self.contract_id.trim().is_empty() {
            return Err(ValidationError::new("contract_id", "must not be empty"));
        }
        max_len("contract_id", &self.contract_id, 36)?;
        if self.issuer.trim().is_empty() {
            return Err(ValidationError::new("issuer", "must not be empty"));
        }
        max_len("issuer", &self.issuer, 64)?;
        if let Some(visual_number) = &self.visual_number {
            max_len("visual_number", visual_number, 64)?;
        }
        if let Some(group_id) = &self.group_id {
            max_len("group_id", group_id, 36)?;
        }
        if let Some(language) = &self.language
            && (language.len() != 2 || !language.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(ValidationError::new("language", format!("{language:?} is not an ISO 639-1 code")));
        }
        if let Some(reason) = &self.blocked_reason {
            max_len("blocked_reason", reason, 255)?;
        }
        Ok(())
    }

    /// Whether the token may charge at `now`, as far as the token itself decides: a token that is
    /// not valid is BLOCKED, one past its expiry EXPIRED. (Credit and location rules are the
    /// caller's.)
    pub fn allowed_at(&self, now: DateTime<Utc>) -> AllowedType {
        if !self.valid || self.blocked_reason.is_some() {
            return AllowedType::Blocked;
        }
        match self.expires_at {
            Some(expires_at) if expires_at <= now => AllowedType::Expired,
            _ => AllowedType::Allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn token() -> Token {
        Token {
            party: PartyId::parse("NL*EMS").unwrap(),
            uid: TokenUid::new("04A1B2").unwrap(),
            token_type: TokenType::Rfid,
            contract_id: "NL-EMS-C00000001-3".into(),
            visual_number: None,
            issuer: "Open EMSP".into(),
            group_id: None,
            valid: true,
            whitelist: WhitelistType::Allowed,
            language: None,
            default_profile_type: None,
            energy_contract: None,
            expires_at: None,
            blocked_reason: None,
            last_updated: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn validity_blocking_and_expiry_decide_the_answer() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let mut t = token();
        assert_eq!(t.allowed_at(now), AllowedType::Allowed);
        t.expires_at = Some(now);
        assert_eq!(t.allowed_at(now), AllowedType::Expired, "expiry is exclusive");
        t.expires_at = Some(now + chrono::Duration::seconds(1));
        assert_eq!(t.allowed_at(now), AllowedType::Allowed);
        t.valid = false;
        assert_eq!(t.allowed_at(now), AllowedType::Blocked);
        t.valid = true;
        t.blocked_reason = Some("lost card".into());
        assert_eq!(t.allowed_at(now), AllowedType::Blocked, "a reason blocks even when valid");
    }

    #[test]
    fn validation_names_the_field() {
        assert!(token().validate().is_ok());
        let mut t = token();
        t.token_type = TokenType::Other("CARD".into());
        assert_eq!(t.validate().unwrap_err().field, "type");
        let mut t = token();
        t.contract_id = " ".into();
        assert_eq!(t.validate().unwrap_err().field, "contract_id");
        let mut t = token();
        t.contract_id = "x".repeat(37);
        assert_eq!(t.validate().unwrap_err().field, "contract_id");
        let mut t = token();
        t.language = Some("nld".into());
        assert_eq!(t.validate().unwrap_err().field, "language");
        let mut t = token();
        t.whitelist = WhitelistType::Other("SOMETIMES".into());
        assert_eq!(t.validate().unwrap_err().field, "whitelist");
    }
}
