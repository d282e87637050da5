//! Parties in the roaming network: CPOs, EMSPs, hubs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::enums::open_enum;
use crate::ids::{CountryCode, PartyCode};
use crate::location::BusinessDetails;

/// The identity of a party: country code plus party id (`NL` + `ABC`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartyId {
    pub country_code: CountryCode,
    pub party_id: PartyCode,
}

impl PartyId {
    pub fn new(country_code: CountryCode, party_id: PartyCode) -> Self {
        Self { country_code, party_id }
    }

    /// Parses `NL*ABC`, `NL-ABC` or `NLABC`.
    pub fn parse(value: &str) -> Result<Self, crate::ValidationError> {
        let compact: String = value.chars().filter(|c| *c != '*' && *c != '-').collect();
        if compact.len() != 5 {
            return Err(crate::ValidationError::new("party", format!("{value:?} is not a country code and party id")));
        }
        Ok(Self { country_code: CountryCode::new(&compact[..2])?, party_id: PartyCode::new(&compact[2..])? })
    }
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}*{}", self.country_code, self.party_id)
    }
}

open_enum! {
    /// The role a party plays (OCPI `Role`).
    pub enum Role {
        Cpo => "CPO",
        Emsp => "EMSP",
        Hub => "HUB",
        Nap => "NAP",
        Nsp => "NSP",
        OtherRole => "OTHER",
        Scsp => "SCSP",
        /// OCPI 2.3.0 payment terminal provider.
        Ptp => "PTP",
    }
}

/// A party with its role, as listed in credentials or by a hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Party {
    pub id: PartyId,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_details: Option<BusinessDetails>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_party_ids_in_every_spelling() {
        for spelling in ["NL*ABC", "nl-abc", "NLABC"] {
            let party = PartyId::parse(spelling).unwrap();
            assert_eq!(party.to_string(), "NL*ABC");
        }
        assert!(PartyId::parse("NL*AB").is_err());
    }

    #[test]
    fn unknown_roles_are_kept() {
        let role: Role = serde_json::from_str("\"ROAMING_PLATFORM\"").unwrap();
        assert_eq!(role, Role::Other("ROAMING_PLATFORM".into()));
        assert_eq!(serde_json::to_string(&role).unwrap(), "\"ROAMING_PLATFORM\"");
        assert_eq!(Role::parse("cpo"), Role::Cpo);
    }
}
