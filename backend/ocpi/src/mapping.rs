//! What wire → domain mapping shares across versions: the error and warning types, party
//! resolution, and the parsing of values OCPI carries as strings (coordinates, times of day, dates).
//!
//! Mapping is where the tolerance policy lives (the serde layer in `lenient` only fixes spelling):
//! - a missing or broken *decorative* part (an image without URL, a business without name, an
//!   unknown time zone) is dropped with a warning, the object is kept;
//! - a missing *identity or safety* part (ids, coordinates, connector standard) is a [`MapError`];
//!   the feed layer then skips that one object;
//! - a missing `last_updated` is inherited from the parent object (EVSE from location, connector
//!   from EVSE), a location without one takes the latest of its EVSEs and connectors, a CDR its
//!   `end_date_time`, and with none of these the fixed [`FALLBACK_LAST_UPDATED`]
//!   (1970-01-01T00:00:00Z), always with a warning. Never the current time: a feed read twice must
//!   map to the same objects, and an epoch timestamp sorts before every real update, so the next
//!   real `last_updated` from the partner wins. Years before 2000 (`0001-01-01` .NET defaults) count
//!   as missing.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use emsp_domain::{CountryCode, GeoPoint, PartyCode, PartyId};

/// The `last_updated` of an object that states none, neither directly nor through its children.
pub const FALLBACK_LAST_UPDATED: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// Years before this are placeholders (`0001-01-01T00:00:00` from .NET defaults), not timestamps.
pub(crate) const EARLIEST_PLAUSIBLE_YEAR: i32 = 2000;

/// Why an object cannot become a domain object. `path` is relative to the object
/// (`evses[0].connectors[1].standard`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct MapError {
    pub path: String,
    pub reason: String,
}

impl MapError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { path: path.into(), reason: reason.into() }
    }
}

/// A tolerated deviation, with the path of the field (relative to the object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub path: String,
    pub message: String,
}

/// Warnings collected while mapping one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    pub items: Vec<Note>,
}

impl Notes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.items.push(Note { path: path.into(), message: message.into() });
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The domain's open enums, seen alike so values outside the specification are handled in one place.
pub(crate) trait OpenEnum: Clone {
    fn known(&self) -> bool;
    fn text(&self) -> &str;
    fn from_text(text: &str) -> Self;
}

macro_rules! open_enums {
    ($($name:ident),+) => {
        $(impl OpenEnum for emsp_domain::$name {
            fn known(&self) -> bool {
                self.is_known()
            }
            fn text(&self) -> &str {
                self.as_str()
            }
            fn from_text(text: &str) -> Self {
                Self::parse(text)
            }
        })+
    };
}

open_enums!(
    Capability,
    ConnectorFormat,
    ConnectorStandard,
    EvseStatus,
    Facility,
    ParkingRestriction,
    ParkingType,
    PowerType
);

/// A value of an open enum: a known one as is; one that is known once trimmed (`"CHARGING "`) read as
/// that, with a warning; anything else kept as received (`Other`), with a warning.
pub(crate) fn checked<T: OpenEnum>(value: &T, path: &str, notes: &mut Notes) -> T {
    if value.known() {
        return value.clone();
    }
    let trimmed = T::from_text(value.text().trim());
    if trimmed.known() {
        notes.warn(path, format!("{:?} read as {:?}", value.text(), trimmed.text()));
        return trimmed;
    }
    notes.warn(path, format!("{:?} is not a value of the specification, kept as received", value.text()));
    value.clone()
}

/// [`checked`] for each element of a list.
pub(crate) fn checked_all<T: OpenEnum>(values: &[T], path: &str, notes: &mut Notes) -> Vec<T> {
    values.iter().enumerate().map(|(position, value)| checked(value, &index(path, position), notes)).collect()
}

/// `parent.child`, or `child` at the top.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() { child.to_owned() } else { format!("{parent}.{child}") }
}

/// `parent[index]`.
pub(crate) fn index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The owning party of an object: its own `country_code` + `party_id` when both are valid, else the
/// caller's `fallback`, else the first eMI3 id (`FR*DRV*E123`) among `emi3_candidates`
/// (`(path, id)` pairs). Fails when none of these gives a party.
pub(crate) fn resolve_party<'a>(
    country_code: Option<&str>,
    party_id: Option<&str>,
    fallback: Option<&PartyId>,
    emi3_candidates: impl IntoIterator<Item = (String, &'a str)>,
    notes: &mut Notes,
) -> Result<PartyId, MapError> {
    match (country_code, party_id) {
        (Some(country), Some(party)) => match (CountryCode::new(country.trim()), PartyCode::new(party.trim())) {
            (Ok(country), Ok(party)) => return Ok(PartyId::new(country, party)),
            (Err(e), _) | (_, Err(e)) => {
                notes.warn(e.field.clone(), format!("{}; the party is taken from elsewhere", e.reason))
            }
        },
        (Some(_), None) => notes.warn("party_id", "missing while country_code is present"),
        (None, Some(_)) => notes.warn("country_code", "missing while party_id is present"),
        (None, None) => {}
    }
    if let Some(party) = fallback {
        return Ok(party.clone());
    }
    for (path, candidate) in emi3_candidates {
        if let Some(party) = party_from_emi3(candidate) {
            notes.warn(path, format!("no country_code/party_id: party {party} derived from the eMI3 id {candidate:?}"));
            return Ok(party);
        }
    }
    Err(MapError::new(
        "country_code",
        "no country_code/party_id, no default party given, and no eMI3 id (CC*PID*...) to derive one from",
    ))
}

/// The operator of an eMI3 EVSE id: `FR*DRV*E123` or the compact `NLFASE3100201` (country, operator,
/// then the `E` that starts the outlet id) → `FR*DRV`, `NL*FAS`. Other shapes are not trusted.
pub fn party_from_emi3(id: &str) -> Option<PartyId> {
    let id = id.trim();
    let mut parts = id.split('*');
    let (country, party) = match (parts.next(), parts.next(), parts.next()) {
        (Some(country), Some(party), Some(_)) => (country, party),
        _ => {
            // Compact form: upper-case letters and digits only, so UUIDs (`deabce12-...`) never match.
            if id.len() <= 6 || !id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
                return None;
            }
            let compact = &id[..6];
            if &compact[5..] != "E" {
                return None;
            }
            (&compact[..2], &compact[2..5])
        }
    };
    let country = CountryCode::new(country).ok()?;
    let party = PartyCode::new(party).ok()?;
    Some(PartyId::new(country, party))
}

/// One coordinate from its OCPI string (or number) form; a decimal comma is accepted with a warning.
pub(crate) fn coordinate(text: &str, path: &str, notes: &mut Notes) -> Result<f64, MapError> {
    let trimmed = text.trim();
    if let Ok(value) = trimmed.parse::<f64>()
        && value.is_finite()
    {
        return Ok(value);
    }
    if trimmed.contains(',')
        && let Ok(value) = trimmed.replace(',', ".").parse::<f64>()
        && value.is_finite()
    {
        notes.warn(path, format!("{text:?} uses a decimal comma"));
        return Ok(value);
    }
    Err(MapError::new(path, format!("{text:?} is not a coordinate")))
}

/// A point from OCPI's latitude/longitude strings.
pub(crate) fn point(latitude: &str, longitude: &str, path: &str, notes: &mut Notes) -> Result<GeoPoint, MapError> {
    let lat = coordinate(latitude, &join(path, "latitude"), notes)?;
    let lon = coordinate(longitude, &join(path, "longitude"), notes)?;
    if lat == lon && lat != 0.0 {
        notes.warn(path, format!("latitude equals longitude ({lat}): probably a copy error at the CPO"));
    }
    GeoPoint::new(lat, lon).map_err(|e| MapError::new(join(path, &e.field), e.reason))
}

/// OCPI writes coordinates as strings with up to 7 decimals (2.2.1: `-?[0-9]{1,2}\.[0-9]{5,7}`).
pub(crate) fn coordinate_text(value: f64) -> String {
    let text = format!("{value:.7}");
    let trimmed = text.trim_end_matches('0');
    // Keep at least 6 decimals, as 2.1.1 requires and 2.2.1 accepts.
    let decimals = trimmed.split('.').nth(1).map_or(0, str::len);
    if decimals < 6 { format!("{value:.6}") } else { trimmed.to_owned() }
}

/// A time of day, `HH:MM` (seconds tolerated); `24:00` is the end of the day, written 00:00.
pub(crate) fn time_of_day(text: &str, path: &str) -> Result<NaiveTime, MapError> {
    let trimmed = text.trim();
    if trimmed == "24:00" || trimmed == "24:00:00" {
        return Ok(NaiveTime::MIN);
    }
    NaiveTime::parse_from_str(trimmed, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(trimmed, "%H:%M:%S"))
        .map_err(|_| MapError::new(path, format!("{text:?} is not a time of day (HH:MM)")))
}

/// `HH:MM`.
pub(crate) fn time_text(time: NaiveTime) -> String {
    time.format("%H:%M").to_string()
}

/// A date, `YYYY-MM-DD`.
pub(crate) fn date(text: &str, path: &str) -> Result<NaiveDate, MapError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| MapError::new(path, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// `YYYY-MM-DD`.
pub(crate) fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A stated `last_updated`, unless it is a placeholder such as year 1.
pub(crate) fn plausible(at: Option<DateTime<Utc>>, path: &str, notes: &mut Notes) -> Option<DateTime<Utc>> {
    let at = at?;
    if at.year() < EARLIEST_PLAUSIBLE_YEAR {
        notes.warn(path, format!("{} is a placeholder, treated as missing", at.to_rfc3339()));
        return None;
    }
    Some(at)
}

/// Text that must be present in the domain but that partners leave out (address, city): empty,
/// with a warning.
pub(crate) fn required_text(value: Option<&String>, path: &str, notes: &mut Notes) -> String {
    match value {
        Some(text) if !text.trim().is_empty() => text.clone(),
        _ => {
            notes.warn(path, "missing, left empty");
            String::new()
        }
    }
}

/// Optional text; blank strings are absent.
pub(crate) fn optional_text(value: Option<&String>) -> Option<String> {
    value.filter(|text| !text.trim().is_empty()).cloned()
}

/// ISO 3166-1 alpha-2 → alpha-3, for locations that omit `country` but have a `country_code`.
pub(crate) fn alpha3(alpha2: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("AD", "AND"),
        ("AE", "ARE"),
        ("AL", "ALB"),
        ("AM", "ARM"),
        ("AR", "ARG"),
        ("AT", "AUT"),
        ("AU", "AUS"),
        ("AZ", "AZE"),
        ("BA", "BIH"),
        ("BE", "BEL"),
        ("BG", "BGR"),
        ("BR", "BRA"),
        ("BY", "BLR"),
        ("CA", "CAN"),
        ("CH", "CHE"),
        ("CL", "CHL"),
        ("CN", "CHN"),
        ("CO", "COL"),
        ("CY", "CYP"),
        ("CZ", "CZE"),
        ("DE", "DEU"),
        ("DK", "DNK"),
        ("EE", "EST"),
        ("ES", "ESP"),
        ("FI", "FIN"),
        ("FR", "FRA"),
        ("GB", "GBR"),
        ("GE", "GEO"),
        ("GR", "GRC"),
        ("HR", "HRV"),
        ("HU", "HUN"),
        ("IE", "IRL"),
        ("IL", "ISR"),
        ("IN", "IND"),
        ("IS", "ISL"),
        ("IT", "ITA"),
        ("JP", "JPN"),
        ("KR", "KOR"),
        ("KZ", "KAZ"),
        ("LI", "LIE"),
        ("LT", "LTU"),
        ("LU", "LUX"),
        ("LV", "LVA"),
        ("MA", "MAR"),
        ("MC", "MCO"),
        ("MD", "MDA"),
        ("ME", "MNE"),
        ("MK", "MKD"),
        ("MT", "MLT"),
        ("MX", "MEX"),
        ("MY", "MYS"),
        ("NL", "NLD"),
        ("NO", "NOR"),
        ("NZ", "NZL"),
        ("PE", "PER"),
        ("PL", "POL"),
        ("PT", "PRT"),
        ("RO", "ROU"),
        ("RS", "SRB"),
        ("RU", "RUS"),
        ("SA", "SAU"),
        ("SE", "SWE"),
        ("SG", "SGP"),
        ("SI", "SVN"),
        ("SK", "SVK"),
        ("TH", "THA"),
        ("TR", "TUR"),
        ("UA", "UKR"),
        ("US", "USA"),
        ("UZ", "UZB"),
        ("ZA", "ZAF"),
    ];
    let upper = alpha2.trim().to_ascii_uppercase();
    TABLE.iter().find(|(two, _)| *two == upper).map(|(_, three)| *three)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_come_from_the_object_the_caller_or_an_emi3_id() {
        let mut notes = Notes::new();
        let own = resolve_party(Some("nl"), Some("abc"), None, [], &mut notes).unwrap();
        assert_eq!(own.to_string(), "NL*ABC");
        let fallback = PartyId::parse("DE*XYZ").unwrap();
        let given = resolve_party(None, None, Some(&fallback), [], &mut notes).unwrap();
        assert_eq!(given, fallback);
        assert!(notes.is_empty());
        let derived =
            resolve_party(None, None, None, [("evses[0].evse_id".to_owned(), "FR*DRV*E123")], &mut notes).unwrap();
        assert_eq!(derived.to_string(), "FR*DRV");
        assert_eq!(notes.items[0].path, "evses[0].evse_id");
        let err = resolve_party(None, None, None, [("id".to_owned(), "1234")], &mut notes).unwrap_err();
        assert_eq!(err.path, "country_code");
    }

    #[test]
    fn strings_of_the_wire_parse() {
        let mut notes = Notes::new();
        assert_eq!(coordinate(" 51.98424 ", "lat", &mut notes).unwrap(), 51.98424);
        assert_eq!(coordinate("51,5", "lat", &mut notes).unwrap(), 51.5);
        assert_eq!(notes.items.len(), 1);
        assert!(coordinate("NaN", "lat", &mut notes).is_err());
        assert!(coordinate("inf", "lat", &mut notes).is_err());
        assert_eq!(coordinate_text(4.9), "4.900000");
        assert_eq!(coordinate_text(-126.1049651), "-126.1049651");
        assert_eq!(time_of_day("24:00", "t").unwrap(), NaiveTime::MIN);
        assert!(time_of_day("25:61", "t").is_err());
        assert_eq!(alpha3("pt"), Some("PRT"));
    }

    #[test]
    fn emi3_ids_name_their_operator() {
        assert_eq!(party_from_emi3("FR*DRV*E123").unwrap().to_string(), "FR*DRV");
        assert_eq!(party_from_emi3("NLFASE3100201").unwrap().to_string(), "NL*FAS");
        assert!(party_from_emi3("PL-97453").is_none());
        assert!(party_from_emi3("EVSE-005c2958").is_none());
        assert!(party_from_emi3("NLFASE").is_none());
        assert!(party_from_emi3("deabce12-0000-4000-8000-000000000000").is_none());
        assert!(party_from_emi3("DEABCE12-0000-4000-8000-000000000000").is_none());
        assert!(party_from_emi3("\u{e9}\u{e9}\u{e9}").is_none());
    }
}
