//! The OCPI versions we read and write.
//!
//! Partners announce their version as a string in `GET /versions`; everything inside the crate works
//! with this enum so a typo in a version string fails once, at the edge.

use std::fmt;
use std::str::FromStr;

/// A protocol version of OCPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OcpiVersion {
    V2_1_1,
    V2_2,
    V2_2_1,
    V2_3_0,
}

/// A version string we do not speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported OCPI version {0:?}")]
pub struct UnknownVersion(pub String);

impl OcpiVersion {
    /// Every version, oldest first.
    pub const ALL: [OcpiVersion; 4] = [Self::V2_1_1, Self::V2_2, Self::V2_2_1, Self::V2_3_0];

    /// Parses the version string of `GET /versions` (`"2.2.1"`); a leading `v` is accepted.
    pub fn parse(value: &str) -> Result<Self, UnknownVersion> {
        let trimmed = value.trim();
        let bare = trimmed.strip_prefix(['v', 'V']).unwrap_or(trimmed);
        match bare {
            "2.1.1" => Ok(Self::V2_1_1),
            "2.2" => Ok(Self::V2_2),
            "2.2.1" => Ok(Self::V2_2_1),
            "2.3.0" | "2.3" => Ok(Self::V2_3_0),
            _ => Err(UnknownVersion(value.to_owned())),
        }
    }

    /// The version string as OCPI writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2_1_1 => "2.1.1",
            Self::V2_2 => "2.2",
            Self::V2_2_1 => "2.2.1",
            Self::V2_3_0 => "2.3.0",
        }
    }

    /// Whether objects of this version are read with the 2.1.1 wire types (no `country_code` and
    /// `party_id` on objects); 2.2, 2.2.1 and 2.3.0 share the 2.2.1 types.
    pub fn is_2_1_1(self) -> bool {
        self == Self::V2_1_1
    }
}

impl fmt::Display for OcpiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OcpiVersion {
    type Err = UnknownVersion;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_through_their_strings() {
        for version in OcpiVersion::ALL {
            assert_eq!(OcpiVersion::parse(version.as_str()), Ok(version));
        }
        assert_eq!(OcpiVersion::parse("v2.3.0"), Ok(OcpiVersion::V2_3_0));
        assert!(OcpiVersion::parse("3.0").is_err());
        assert!(OcpiVersion::V2_1_1 < OcpiVersion::V2_2_1);
    }
}
