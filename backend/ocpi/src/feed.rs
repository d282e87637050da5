//! Tolerant reading of location, tariff and CDR feeds: a file a partner sent, or one page of a
//! `GET /locations` answer.
//!
//! Real CPO feeds deviate from the specification, and one bad object must never cost us the other
//! thousand. So the input is read in stages, and each stage fails as narrowly as it can:
//!
//! 1. **Bytes → text.** A UTF-8 BOM is dropped. Bytes that are not UTF-8 are decoded as
//!    Windows-1252 (a superset of Latin-1 for printable text), with a document-level warning.
//! 2. **Text → JSON.** Not JSON at all is a [`FeedError`], the only way the whole input fails
//!    besides having no list of objects.
//! 3. **JSON → list of objects.** An envelope `{status_code, data: [...]}`, a bare array, or a
//!    single object are accepted.
//! 4. **Per object**, each failure skips that object only, with its index, id and JSON path
//!    ([`Skipped`]): camelCase keys are renamed to the specification's snake_case, fields of the
//!    other version's spelling are renamed (a 2.2 location with 2.1.1 `voltage`), the object is
//!    read with the wire types of its version (given, or detected per object), mapped to the
//!    domain (see [`crate::mapping`] for what is tolerated there), and validated by the domain.
//!
//! Every tolerated deviation is a [`Warning`] with the JSON path of the field, so operations can
//! tell partners what to fix. Warnings about the whole document have index 0, no id and path `$`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use emsp_domain::{Cdr, Location, PartyId, Tariff};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::mapping::{MapError, Notes};
use crate::version::OcpiVersion;
use crate::{v2_1_1, v2_2_1};

/// How to read a feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The party that owns objects which name none (always the case in 2.1.1). Objects that name
    /// their own valid party keep it.
    pub default_party: Option<PartyId>,
    /// The version of every object; `None` detects it per object.
    pub version: Option<OcpiVersion>,
}

/// What a feed gave: the objects that made it, and why the others did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed<T> {
    pub items: Vec<T>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<Warning>,
}

impl<T> Default for Feed<T> {
    fn default() -> Self {
        Self { items: Vec::new(), skipped: Vec::new(), warnings: Vec::new() }
    }
}

/// An object that was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Position of the object in the feed's list.
    pub index: usize,
    /// Its `id`, when it has a readable one.
    pub id: Option<String>,
    /// JSON path of the problem, from the list: `[12].evses[0].connectors[1].standard`.
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{} (id {id:?}): {}", self.path, self.reason),
            None => write!(f, "{}: {}", self.path, self.reason),
        }
    }
}

/// A deviation that was tolerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub index: usize,
    pub id: Option<String>,
    /// JSON path of the field, from the list (`[12].evses[0].connectors[1].max_electric_power`),
    /// or `$` for the whole document.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{} (id {id:?}): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// The input as a whole could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("the OCPI response carries no data (status_code {status_code}{})", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    NoData { status_code: String, message: Option<String> },
    #[error("no list of {expected} found: {found}")]
    NotAFeed { expected: &'static str, found: String },
}

/// What kind of objects a feed holds, judged from its first object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    Locations,
    Tariffs,
    Cdrs,
    Unknown,
}

/// Guesses the kind of a feed without importing it (for `emsp import FILE`).
pub fn detect_kind(bytes: &[u8]) -> FeedKind {
    let Ok((document, _)) = read_document(bytes) else {
        return FeedKind::Unknown;
    };
    let Ok(objects) = objects_of(document, "objects") else {
        return FeedKind::Unknown;
    };
    let Some(first) = objects.iter().find_map(Value::as_object) else {
        return FeedKind::Unknown;
    };
    kind_of(first)
}

fn kind_of(object: &Map<String, Value>) -> FeedKind {
    let has = |key: &str| object.contains_key(key);
    if has("cdr_token") || has("auth_id") || has("charging_periods") || has("total_cost") || has("cdr_location") {
        FeedKind::Cdrs
    } else if has("coordinates") || has("evses") {
        FeedKind::Locations
    } else if has("elements") || (has("currency") && has("id")) {
        FeedKind::Tariffs
    } else {
        FeedKind::Unknown
    }
}

/// Reads a location feed.
pub fn parse_locations(bytes: &[u8], options: &ImportOptions) -> Result<Feed<Location>, FeedError> {
    parse_with(bytes, options, "locations", import_location, Location::key)
}

/// Reads a tariff feed.
pub fn parse_tariffs(bytes: &[u8], options: &ImportOptions) -> Result<Feed<Tariff>, FeedError> {
    parse_with(bytes, options, "tariffs", import_tariff, Tariff::key)
}

/// Reads a CDR feed.
pub fn parse_cdrs(bytes: &[u8], options: &ImportOptions) -> Result<Feed<Cdr>, FeedError> {
    parse_with(bytes, options, "CDRs", import_cdr, |cdr: &Cdr| format!("{}*{}", cdr.party, cdr.id.key()))
}

/// Reads a location feed already parsed as JSON (a page a partner answered): the same as
/// [`parse_locations`] without writing the JSON out and reading it again.
pub fn locations_of_document(document: Value, options: &ImportOptions) -> Result<Feed<Location>, FeedError> {
    read_objects(document, None, options, "locations", import_location, Location::key)
}

/// [`locations_of_document`] for tariffs.
pub fn tariffs_of_document(document: Value, options: &ImportOptions) -> Result<Feed<Tariff>, FeedError> {
    read_objects(document, None, options, "tariffs", import_tariff, Tariff::key)
}

/// One object's outcome: the domain object, or where and why it failed.
type Imported<T> = Result<T, MapError>;

/// Reads one object into a domain object, noting what it had to tolerate.
type Importer<T> = fn(Map<String, Value>, &ImportOptions, &mut Notes) -> Imported<T>;

fn parse_with<T>(
    bytes: &[u8],
    options: &ImportOptions,
    expected: &'static str,
    import: Importer<T>,
    key: fn(&T) -> String,
) -> Result<Feed<T>, FeedError> {
    let (document, decoding_warning) = read_document(bytes)?;
    read_objects(document, decoding_warning, options, expected, import, key)
}

fn read_objects<T>(
    document: Value,
    decoding_warning: Option<String>,
    options: &ImportOptions,
    expected: &'static str,
    import: Importer<T>,
    key: fn(&T) -> String,
) -> Result<Feed<T>, FeedError> {
    let objects = objects_of(document, expected)?;
    let mut feed = Feed::default();
    let mut first_index: HashMap<String, usize> = HashMap::new();
    if let Some(message) = decoding_warning {
        feed.warnings.push(Warning { index: 0, id: None, path: "$".to_owned(), message });
    }
    for (index, value) in objects.into_iter().enumerate() {
        let Value::Object(mut object) = value else {
            feed.skipped.push(Skipped {
                index,
                id: None,
                path: format!("[{index}]"),
                reason: format!("not a JSON object but {}", kind_name(&value)),
            });
            continue;
        };
        let mut notes = Notes::new();
        normalise_keys(&mut object, "", &mut notes, &mut HashSet::new());
        let id = object.get("id").and_then(id_text);
        let outcome = import(object, options, &mut notes);
        for note in notes.items {
            feed.warnings.push(Warning { index, id: id.clone(), path: at(index, &note.path), message: note.message });
        }
        match outcome {
            Ok(item) => {
                // Both are kept (a store upsert lets the later one win), but the partner should know.
                if let Some(first) = first_index.insert(key(&item), index) {
                    let message = format!("the same object as [{first}] (same party and id)");
                    feed.warnings.push(Warning { index, id, path: at(index, "id"), message });
                }
                feed.items.push(item);
            }
            Err(e) => feed.skipped.push(Skipped { index, id, path: at(index, &e.path), reason: e.reason }),
        }
    }
    Ok(feed)
}

fn at(index: usize, path: &str) -> String {
    if path.is_empty() || path == "." { format!("[{index}]") } else { format!("[{index}].{path}") }
}

fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Stages 1 and 2: bytes to a JSON document, with a warning when the bytes were not UTF-8.
fn read_document(bytes: &[u8]) -> Result<(Value, Option<String>), FeedError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let (text, warning) = match std::str::from_utf8(bytes) {
        Ok(text) => (std::borrow::Cow::Borrowed(text), None),
        Err(e) => {
            let offset = e.valid_up_to();
            let warning = format!("not UTF-8 (first bad byte at offset {offset}): decoded as Windows-1252");
            (std::borrow::Cow::Owned(decode_windows_1252(bytes)), Some(warning))
        }
    };
    let document: Value = serde_json::from_str(&text).map_err(|e| FeedError::NotJson(e.to_string()))?;
    Ok((document, warning))
}

/// Windows-1252: Latin-1 plus printable characters in 0x80..0x9F (€, ‚, ƒ, „, …, quotes, dashes).
fn decode_windows_1252(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{02C6}',
        '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}', '\u{017D}', '\u{8F}', '\u{90}', '\u{2018}',
        '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}',
        '\u{203A}', '\u{0153}', '\u{9D}', '\u{017E}', '\u{0178}',
    ];
    bytes
        .iter()
        .map(|&byte| match byte {
            0x80..=0x9F => HIGH[usize::from(byte - 0x80)],
            _ => char::from(byte),
        })
        .collect()
}

/// Stage 3: the list of objects of an envelope, a bare array or a single object.
fn objects_of(document: Value, expected: &'static str) -> Result<Vec<Value>, FeedError> {
    match document {
        Value::Array(items) => Ok(items),
        Value::Object(mut object) => {
            if let Some(data) = object.remove("data") {
                return match data {
                    Value::Array(items) => Ok(items),
                    Value::Object(single) => Ok(vec![Value::Object(single)]),
                    Value::Null => Err(FeedError::NoData {
                        status_code: object.get("status_code").map_or_else(|| "absent".to_owned(), ToString::to_string),
                        message: object.get("status_message").and_then(Value::as_str).map(str::to_owned),
                    }),
                    other => Err(FeedError::NotAFeed { expected, found: format!("data is {}", kind_name(&other)) }),
                };
            }
            if object.contains_key("id") {
                return Ok(vec![Value::Object(object)]);
            }
            if object.contains_key("status_code") {
                return Err(FeedError::NoData {
                    status_code: object.get("status_code").map_or_else(|| "absent".to_owned(), ToString::to_string),
                    message: object.get("status_message").and_then(Value::as_str).map(str::to_owned),
                });
            }
            Err(FeedError::NotAFeed { expected, found: "an object without data or id".to_owned() })
        }
        other => Err(FeedError::NotAFeed { expected, found: kind_name(&other).to_owned() }),
    }
}

/// camelCase keys (`lastUpdated`, `evseId`) to the specification's snake_case, recursively. One
/// warning per distinct key and object, at its first path. A key that exists in both spellings
/// keeps the snake_case value.
fn normalise_keys(object: &mut Map<String, Value>, path: &str, notes: &mut Notes, seen: &mut HashSet<String>) {
    let renames: Vec<(String, String)> =
        object.keys().filter(|key| is_camel_case(key)).map(|key| (key.clone(), snake_case(key))).collect();
    for (from, to) in renames {
        if object.contains_key(&to) {
            continue;
        }
        if let Some(value) = object.remove(&from) {
            if seen.insert(from.clone()) {
                notes.warn(crate::mapping::join(path, &from), format!("camelCase key, read as {to:?}"));
            }
            object.insert(to, value);
        }
    }
    for (key, value) in object.iter_mut() {
        let child = crate::mapping::join(path, key);
        normalise_value(value, &child, notes, seen);
    }
}

fn normalise_value(value: &mut Value, path: &str, notes: &mut Notes, seen: &mut HashSet<String>) {
    match value {
        Value::Object(object) => normalise_keys(object, path, notes, seen),
        Value::Array(items) => {
            for (position, item) in items.iter_mut().enumerate() {
                normalise_value(item, &format!("{path}[{position}]"), notes, seen);
            }
        }
        _ => {}
    }
}

/// `lastUpdated`, not `DC` or `AC_3_PHASE` (vendor maps keyed by enum values stay as they are).
fn is_camel_case(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_lowercase()) && key.chars().any(|c| c.is_ascii_uppercase())
}

fn snake_case(key: &str) -> String {
    let mut snake = String::with_capacity(key.len() + 4);
    let mut previous_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else {
            snake.push(c);
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    // Words the specification writes as one.
    match snake.as_str() {
        "sub_operator" => "suboperator".to_owned(),
        "twenty_four_seven" => "twentyfourseven".to_owned(),
        _ => snake,
    }
}

/// Reads an object with wire type `W`; a failure carries the path serde reached.
fn read<W: DeserializeOwned>(object: Map<String, Value>) -> Result<W, MapError> {
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        MapError::new(path, e.into_inner().to_string())
    })
}

/// The version of a location, tariff or CDR object when the caller did not fix it.
fn detect_location_version(object: &Map<String, Value>) -> OcpiVersion {
    let has = |key: &str| object.contains_key(key);
    if has("country_code") || has("party_id") || has("publish") || has("parking_type") {
        return OcpiVersion::V2_2_1;
    }
    let old_connector_fields = connectors(object).any(|c| c.contains_key("voltage") || c.contains_key("amperage"));
    if has("type") || old_connector_fields { OcpiVersion::V2_1_1 } else { OcpiVersion::V2_2_1 }
}

fn connectors(object: &Map<String, Value>) -> impl Iterator<Item = &Map<String, Value>> {
    object
        .get("evses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(|evse| evse.get("connectors").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object)
}

/// Renames connector and location fields spelled as in the other version, with a warning.
fn align_location_fields(object: &mut Map<String, Value>, version: OcpiVersion, notes: &mut Notes) {
    let renames: &[(&str, &str)] = if version.is_2_1_1() {
        &[("max_voltage", "voltage"), ("max_amperage", "amperage")]
    } else {
        &[("voltage", "max_voltage"), ("amperage", "max_amperage")]
    };
    if !version.is_2_1_1()
        && !object.contains_key("parking_type")
        && let Some(kind) = object.remove("type")
    {
        let usable =
            kind.as_str().is_some_and(|k| !k.eq_ignore_ascii_case("UNKNOWN") && !k.eq_ignore_ascii_case("OTHER"));
        if usable {
            notes.warn("type", "2.1.1 field in a 2.2 object, read as parking_type");
            object.insert("parking_type".to_owned(), kind);
        }
    }
    let Some(Value::Array(evses)) = object.get_mut("evses") else {
        return;
    };
    for (evse_index, evse) in evses.iter_mut().enumerate() {
        let Some(Value::Array(connectors)) = evse.get_mut("connectors") else {
            continue;
        };
        for (connector_index, connector) in connectors.iter_mut().enumerate() {
            let Value::Object(connector) = connector else {
                continue;
            };
            let path = format!("evses[{evse_index}].connectors[{connector_index}]");
            for (from, to) in renames {
                if !connector.contains_key(*to)
                    && let Some(value) = connector.remove(*from)
                {
                    notes.warn(format!("{path}.{from}"), format!("field of the other OCPI version, read as {to}"));
                    connector.insert((*to).to_owned(), value);
                }
            }
            if version.is_2_1_1() {
                let first = match connector.get("tariff_id") {
                    None => {
                        connector.remove("tariff_ids").and_then(|ids| ids.as_array().and_then(|a| a.first().cloned()))
                    }
                    Some(_) => None,
                };
                if let Some(first) = first {
                    notes.warn(
                        format!("{path}.tariff_ids"),
                        "2.2 field in a 2.1.1 object, the first is read as tariff_id",
                    );
                    connector.insert("tariff_id".to_owned(), first);
                }
            } else {
                let single = match connector.get("tariff_ids") {
                    None => connector.remove("tariff_id").filter(|id| !id.is_null()),
                    Some(_) => None,
                };
                if let Some(id) = single {
                    notes.warn(format!("{path}.tariff_id"), "2.1.1 field in a 2.2 object, read as tariff_ids");
                    connector.insert("tariff_ids".to_owned(), Value::Array(vec![id]));
                }
            }
        }
    }
}

fn import_location(mut object: Map<String, Value>, options: &ImportOptions, notes: &mut Notes) -> Imported<Location> {
    let version = options.version.unwrap_or_else(|| detect_location_version(&object));
    align_location_fields(&mut object, version, notes);
    let party = own_party(&object, options, notes);
    let location = if version.is_2_1_1() {
        let wire: v2_1_1::locations::Location = read(object)?;
        v2_1_1::locations::to_domain(&wire, party.as_ref(), notes)?
    } else {
        let wire: v2_2_1::locations::Location = read(object)?;
        v2_2_1::locations::to_domain(&wire, party.as_ref(), notes)?
    };
    location.validate().map_err(|e| MapError::new(e.field, e.reason))?;
    Ok(location)
}

/// For 2.1.1-read objects that still carry a valid `country_code`/`party_id` (hybrids), that party;
/// else the caller's default.
fn own_party(object: &Map<String, Value>, options: &ImportOptions, notes: &mut Notes) -> Option<PartyId> {
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    if let (Some(country), Some(party)) = (text("country_code"), text("party_id"))
        && let Ok(party) = PartyId::parse(&format!("{}*{}", country.trim(), party.trim()))
    {
        if options.default_party.as_ref().is_some_and(|default| default != &party) {
            notes.warn(
                "party_id",
                format!("the object names party {party}, not the default party: the object's is used"),
            );
        }
        return Some(party);
    }
    options.default_party.clone()
}

fn import_tariff(object: Map<String, Value>, options: &ImportOptions, notes: &mut Notes) -> Imported<Tariff> {
    let party = own_party(&object, options, notes);
    // 2.2.1 tariffs are a superset of 2.1.1 ones, so only an explicit 2.1.1 uses the 2.1.1 types.
    let tariff = if options.version.is_some_and(OcpiVersion::is_2_1_1) {
        let wire: v2_1_1::tariffs::Tariff = read(object)?;
        v2_1_1::tariffs::to_domain(&wire, party.as_ref(), notes)?
    } else {
        let wire: v2_2_1::tariffs::Tariff = read(object)?;
        v2_2_1::tariffs::to_domain(&wire, party.as_ref(), notes)?
    };
    tariff.validate().map_err(|e| MapError::new(e.field, e.reason))?;
    Ok(tariff)
}

fn import_cdr(object: Map<String, Value>, options: &ImportOptions, notes: &mut Notes) -> Imported<Cdr> {
    let old =
        object.contains_key("auth_id") || object.contains_key("stop_date_time") || object.contains_key("location");
    let version = options.version.unwrap_or(if old { OcpiVersion::V2_1_1 } else { OcpiVersion::V2_2_1 });
    let party = own_party(&object, options, notes);
    if version.is_2_1_1() {
        let wire: v2_1_1::cdrs::Cdr = read(object)?;
        v2_1_1::cdrs::to_domain(&wire, party.as_ref(), notes)
    } else {
        let wire: v2_2_1::cdrs::Cdr = read(object)?;
        v2_2_1::cdrs::to_domain(&wire, party.as_ref(), notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCATION: &str = r#"{"country_code":"NL","party_id":"ABC","id":"LOC1","address":"Straat 1","city":"Arnhem",
        "country":"NLD","coordinates":{"latitude":"51.984240","longitude":"5.870263"},"time_zone":"Europe/Amsterdam",
        "last_updated":"2024-05-01T10:00:00Z","evses":[{"uid":"E1","evse_id":"NL*ABC*E1","status":"AVAILABLE",
        "connectors":[{"id":"1","standard":"IEC_62196_T2","format":"SOCKET","power_type":"AC_3_PHASE",
        "max_voltage":230,"max_amperage":32,"max_electric_power":22,"last_updated":"2024-05-01T10:00:00Z"}],
        "last_updated":"2024-05-01T10:00:00Z"}]}"#;

    fn options() -> ImportOptions {
        ImportOptions::default()
    }

    #[test]
    fn envelope_bare_array_and_single_object_give_the_same_location() {
        let envelope = format!(r#"{{"status_code":1000,"timestamp":"2024-05-01T10:00:00Z","data":[{LOCATION}]}}"#);
        let bare = format!("[{LOCATION}]");
        let from_envelope = parse_locations(envelope.as_bytes(), &options()).unwrap();
        let from_array = parse_locations(bare.as_bytes(), &options()).unwrap();
        let from_object = parse_locations(LOCATION.as_bytes(), &options()).unwrap();
        assert_eq!(from_envelope.items.len(), 1);
        assert_eq!(from_envelope.items, from_array.items);
        assert_eq!(from_array.items, from_object.items);
        assert_eq!(detect_kind(envelope.as_bytes()), FeedKind::Locations);
    }

    #[test]
    fn a_bom_is_dropped_and_latin_1_is_decoded_with_a_warning() {
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), LOCATION.as_bytes()].concat();
        let feed = parse_locations(&with_bom, &options()).unwrap();
        assert_eq!(feed.items.len(), 1);
        assert!(feed.warnings.iter().all(|w| w.path != "$"));

        let latin = LOCATION.replace("Arnhem", "Ar\u{e9}nhem \u{20ac}");
        let latin: Vec<u8> = latin
            .chars()
            .map(|c| match c {
                '\u{e9}' => 0xE9,
                '\u{20ac}' => 0x80,
                other => u8::try_from(u32::from(other)).unwrap(),
            })
            .collect();
        let feed = parse_locations(&latin, &options()).unwrap();
        assert_eq!(feed.items[0].city, "Ar\u{e9}nhem \u{20ac}");
        let warning = feed.warnings.iter().find(|w| w.path == "$").unwrap();
        assert!(warning.message.contains("Windows-1252"), "{warning:?}");
    }

    #[test]
    fn warnings_carry_the_json_path_and_kilowatts_are_repaired() {
        let feed = parse_locations(format!("[{LOCATION},{LOCATION}]").as_bytes(), &options()).unwrap();
        let connector = &feed.items[1].evses[0].connectors[0];
        assert_eq!(connector.max_electric_power, Some(22_000));
        let warning = feed.warnings.iter().find(|w| w.index == 1).unwrap();
        assert_eq!(warning.path, "[1].evses[0].connectors[0].max_electric_power");
        assert_eq!(warning.id.as_deref(), Some("LOC1"));
    }

    #[test]
    fn null_island_is_skipped_with_the_validation_reason() {
        let zero =
            LOCATION.replace(r#""latitude":"51.984240","longitude":"5.870263""#, r#""latitude":"0","longitude":"0""#);
        let feed = parse_locations(format!("[{zero},{LOCATION}]").as_bytes(), &options()).unwrap();
        assert_eq!(feed.items.len(), 1);
        let skipped = &feed.skipped[0];
        assert_eq!((skipped.index, skipped.id.as_deref(), skipped.path.as_str()), (0, Some("LOC1"), "[0].coordinates"));
        assert!(skipped.reason.contains("missing position"), "{skipped:?}");
    }

    #[test]
    fn a_missing_party_comes_from_the_options_or_an_emi3_id_or_skips() {
        let anonymous = LOCATION.replace(r#""country_code":"NL","party_id":"ABC","#, "");
        let derived = parse_locations(anonymous.as_bytes(), &options()).unwrap();
        assert_eq!(derived.items[0].party.to_string(), "NL*ABC");
        assert_eq!(derived.warnings[0].path, "[0].evses[0].evse_id");

        let no_emi3 = anonymous.replace("NL*ABC*E1", "12345");
        let skipped = parse_locations(no_emi3.as_bytes(), &options()).unwrap();
        assert!(skipped.items.is_empty());
        assert!(skipped.skipped[0].reason.contains("no default party"), "{:?}", skipped.skipped);

        let given = ImportOptions { default_party: Some(PartyId::parse("DE*XYZ").unwrap()), version: None };
        let feed = parse_locations(no_emi3.as_bytes(), &given).unwrap();
        assert_eq!(feed.items[0].party.to_string(), "DE*XYZ");
    }

    #[test]
    fn a_missing_last_updated_is_inherited_or_fixed_never_now() {
        let without = LOCATION.replace(r#""last_updated":"2024-05-01T10:00:00Z""#, r#""last_updated":null"#);
        let first = parse_locations(without.as_bytes(), &options()).unwrap();
        let second = parse_locations(without.as_bytes(), &options()).unwrap();
        assert_eq!(first.items, second.items, "reading twice gives the same objects");
        assert_eq!(first.items[0].last_updated, crate::mapping::FALLBACK_LAST_UPDATED);
        assert!(first.warnings.iter().any(|w| w.path == "[0].last_updated"));

        let only_location = LOCATION.replacen(r#""last_updated":"2024-05-01T10:00:00Z","evses""#, r#""evses""#, 1);
        let feed = parse_locations(only_location.as_bytes(), &options()).unwrap();
        assert_eq!(feed.items[0].last_updated.to_rfc3339(), "2024-05-01T10:00:00+00:00", "the latest child's");
    }

    #[test]
    fn camel_case_keys_and_2_1_1_field_names_are_read() {
        let camel = r#"[{"id":"L1","type":"ON_STREET","name":"x","address":"a","city":"c","postalCode":"1234",
            "country":"ROU","coordinates":{"latitude":47.1,"longitude":26.6},"timeZone":"Europe/Bucharest",
            "lastUpdated":"2025-03-12 10:54:38","evses":[{"uid":"U1","evseId":"RO*VLT*E1","status":"AVAILABLE",
            "connectors":[{"id":"1","standard":"CHADEMO","format":"CABLE","powerType":"DC","voltage":400,
            "amperage":"125","tariffId":"T1","lastUpdated":"2025-03-12 10:54:38"}]}],
            "vendor":{"DC":1,"AC_3_PHASE":2}}]"#;
        let feed = parse_locations(camel.as_bytes(), &options()).unwrap();
        assert!(feed.skipped.is_empty(), "{:?}", feed.skipped);
        let location = &feed.items[0];
        assert_eq!(location.postal_code.as_deref(), Some("1234"));
        assert_eq!(location.party.to_string(), "RO*VLT");
        assert_eq!(location.parking_type, Some(emsp_domain::ParkingType::OnStreet));
        let connector = &location.evses[0].connectors[0];
        assert_eq!((connector.max_voltage, connector.max_amperage), (400, 125));
        assert_eq!(connector.tariff_ids[0].as_str(), "T1");
        assert!(feed.warnings.iter().any(|w| w.path == "[0].evses[0].evseId"));
        assert!(!feed.warnings.iter().any(|w| w.path.contains("vendor.")), "enum-keyed vendor maps are left alone");
    }

    #[test]
    fn one_unknown_connector_is_dropped_not_the_location() {
        let broken = LOCATION.replace(
            r#""connectors":[{"id":"1","#,
            r#""connectors":[{"id":"9","standard":null,"power_type":null},{"id":"1","#,
        );
        let feed = parse_locations(broken.as_bytes(), &options()).unwrap();
        assert_eq!(feed.items[0].evses[0].connectors.len(), 1);
        assert!(feed.warnings.iter().any(|w| w.path == "[0].evses[0].connectors[0].standard"));
    }

    #[test]
    fn duplicates_are_kept_with_a_warning() {
        let feed = parse_locations(format!("[{LOCATION},{LOCATION}]").as_bytes(), &options()).unwrap();
        assert_eq!(feed.items.len(), 2);
        let duplicate = feed.warnings.iter().find(|w| w.path == "[1].id").unwrap();
        assert_eq!(duplicate.to_string(), "[1].id (id \"LOC1\"): the same object as [0] (same party and id)");
    }

    #[test]
    fn windows_1252_covers_the_printable_high_range() {
        assert_eq!(decode_windows_1252(b"\x80\x93\xe9\xff"), "\u{20ac}\u{201c}\u{e9}\u{ff}");
        assert_eq!(snake_case("subOperator"), "suboperator");
        assert_eq!(snake_case("evseId"), "evse_id");
        assert!(!is_camel_case("AC_3_PHASE"));
    }
}
