//! Typed identifiers.
//!
//! OCPI ids are `CiString`s: compared case-insensitively, kept as the partner sent them. The ids here
//! keep the original text for display and for echoing back to the partner, and compare, hash and
//! order by their ASCII-upper-case form, so `nl*abc*e1` and `NL*ABC*E1` are one EVSE.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::ValidationError;

macro_rules! ci_id {
    ($(#[$meta:meta])* $name:ident, $max:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The longest id the specification allows.
            pub const MAX_LEN: usize = $max;

            /// Validates length and characters (printable ASCII, no spaces at the ends).
            pub fn new(value: impl Into<String>) -> Result<Self, ValidationError> {
                let value = value.into();
                validate_ci_string(stringify!($name), &value, $max)?;
                Ok(Self(value))
            }

            /// The id as the partner sent it.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The case-folded form used for keys and comparisons.
            pub fn key(&self) -> String {
                self.0.to_ascii_uppercase()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.eq_ignore_ascii_case(&other.0)
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                for byte in self.0.bytes() {
                    state.write_u8(byte.to_ascii_uppercase());
                }
                state.write_u8(0xff);
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> Ordering {
                let left = self.0.bytes().map(|b| b.to_ascii_uppercase());
                let right = other.0.bytes().map(|b| b.to_ascii_uppercase());
                left.cmp(right)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ValidationError;
            fn try_from(value: &str) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn validate_ci_string(kind: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(kind, "must not be empty"));
    }
    if value.len() > max {
        return Err(ValidationError::new(kind, format!("longer than {max} characters")));
    }
    if value.trim() != value {
        return Err(ValidationError::new(kind, "has leading or trailing white space"));
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii() || c.is_ascii_control()) {
        return Err(ValidationError::new(
            kind,
            format!("contains the character {bad:?}, only printable ASCII is allowed"),
        ));
    }
    Ok(())
}

ci_id!(
    /// A location id, unique per CPO (OCPI `CiString(36)`).
    LocationId, 36
);
ci_id!(
    /// An EVSE's uid, unique within its CPO (OCPI `CiString(36)`); not the printed EVSE id.
    EvseUid, 36
);
ci_id!(
    /// A connector id, unique within its EVSE (OCPI `CiString(36)`).
    ConnectorId, 36
);
ci_id!(
    /// A tariff id, unique per CPO (OCPI `CiString(36)`).
    TariffId, 36
);
ci_id!(
    /// A charging session id, unique per CPO (OCPI `CiString(36)`).
    SessionId, 36
);
ci_id!(
    /// A token's uid: an RFID UID or an app-issued id (OCPI `CiString(36)`).
    TokenUid, 36
);
ci_id!(
    /// A CDR id, unique per CPO (OCPI `CiString(39)`).
    CdrId, 39
);

/// ISO 3166-1 alpha-2 country code of a party, stored upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

impl CountryCode {
    pub fn new(value: &str) -> Result<Self, ValidationError> {
        if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ValidationError::new(
                "country_code",
                format!("{value:?} is not two letters (ISO 3166-1 alpha-2)"),
            ));
        }
        Ok(Self(value.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CountryCode {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<CountryCode> for String {
    fn from(value: CountryCode) -> String {
        value.0
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for CountryCode {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The three-character party id (ISO 15118 operator / provider id), stored upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartyCode(String);

impl PartyCode {
    pub fn new(value: &str) -> Result<Self, ValidationError> {
        if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ValidationError::new("party_id", format!("{value:?} is not three letters or digits")));
        }
        Ok(Self(value.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PartyCode {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<PartyCode> for String {
    fn from(value: PartyCode) -> String {
        value.0
    }
}

impl fmt::Display for PartyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ci_ids_compare_and_hash_case_insensitively() {
        let lower = EvseUid::new("nl*abc*e1").unwrap();
        let upper = EvseUid::new("NL*ABC*E1").unwrap();
        assert_eq!(lower, upper);
        assert_eq!(lower.as_str(), "nl*abc*e1", "the original spelling is kept");
        let set: HashSet<_> = [lower, upper].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn ci_ids_reject_bad_input() {
        assert!(LocationId::new("").is_err());
        assert!(LocationId::new(" padded").is_err());
        assert!(LocationId::new("x".repeat(37)).is_err());
        assert!(LocationId::new("caf\u{e9}").is_err());
        assert!(LocationId::new("LOC-1").is_ok());
        assert!(serde_json::from_str::<LocationId>("\"\"").is_err());
    }

    #[test]
    fn party_codes_are_normalised() {
        assert_eq!(CountryCode::new("nl").unwrap().as_str(), "NL");
        assert!(CountryCode::new("NLD").is_err());
        assert_eq!(PartyCode::new("abc").unwrap().as_str(), "ABC");
        assert!(PartyCode::new("AB").is_err());
        assert!(PartyCode::new("A-C").is_err());
    }
}
