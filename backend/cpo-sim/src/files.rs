//! OCPI Location and Tariff JSON files as the data of a run. Real feeds come as an envelope, a bare
//! array or a single object, sometimes with a UTF-8 BOM; all are read. Objects are served as given:
//! only `country_code`/`party_id` (2.2.1) are set to ours, since the EMSP checks that the data it
//! pulls belongs to the party it registered with, and a missing `last_updated` is filled so date
//! filters work. What cannot be classified is skipped with a warning, never the whole file.

use std::path::Path;

use serde_json::Value;

use crate::envelope::now;
use crate::error::DataError;
use crate::options::SimVersion;

#[derive(Debug, Default)]
pub struct Loaded {
    pub locations: Vec<Value>,
    pub tariffs: Vec<Value>,
}

pub fn load(paths: &[impl AsRef<Path>], party: &(String, String), version: SimVersion) -> Result<Loaded, DataError> {
    let mut loaded = Loaded::default();
    let mut location_ids = std::collections::HashSet::new();
    for path in paths {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Read { path: shown.clone(), source })?;
        let objects = parse_document(&text, &shown)?;
        let (mut locations, mut tariffs, mut skipped) = (0usize, 0usize, 0usize);
        for (index, mut object) in objects.into_iter().enumerate() {
            let Some(map) = object.as_object_mut() else {
                tracing::warn!(file = %shown, path = %format!("$[{index}]"), "not an object, skipped");
                skipped += 1;
                continue;
            };
            if version == SimVersion::V2_2_1 {
                for (field, ours) in [("country_code", &party.0), ("party_id", &party.1)] {
                    match map.get(field).and_then(Value::as_str) {
                        Some(theirs) if theirs.eq_ignore_ascii_case(ours) => {}
                        Some(theirs) => {
                            tracing::debug!(file = %shown, field, theirs, ours = %ours, "owner replaced by ours");
                            map.insert(field.to_owned(), Value::String(ours.clone()));
                        }
                        None => {
                            map.insert(field.to_owned(), Value::String(ours.clone()));
                        }
                    }
                }
            }
            if !map.get("last_updated").is_some_and(Value::is_string) {
                tracing::warn!(file = %shown, path = %format!("$[{index}].last_updated"), "missing, set to now");
                map.insert("last_updated".to_owned(), Value::String(now()));
            }
            if map.contains_key("evses") || map.contains_key("coordinates") {
                let id = map.get("id").and_then(Value::as_str).map(str::to_owned);
                match id {
                    Some(id) if location_ids.insert(id.clone()) => {
                        loaded.locations.push(object);
                        locations += 1;
                    }
                    Some(id) => {
                        tracing::warn!(file = %shown, %id, "duplicate location id, skipped");
                        skipped += 1;
                    }
                    None => {
                        tracing::warn!(file = %shown, path = %format!("$[{index}].id"), "location without id, skipped");
                        skipped += 1;
                    }
                }
            } else if map.contains_key("elements") {
                loaded.tariffs.push(object);
                tariffs += 1;
            } else {
                tracing::warn!(file = %shown, path = %format!("$[{index}]"), "neither a location nor a tariff, skipped");
                skipped += 1;
            }
        }
        tracing::info!(file = %shown, locations, tariffs, skipped, "loaded ocpi file");
    }
    Ok(loaded)
}

/// The objects of one document: `{data: [...]}`, `{data: {...}}`, `[...]` or `{...}`.
fn parse_document(text: &str, path: &str) -> Result<Vec<Value>, DataError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value =
        serde_json::from_str(text).map_err(|source| DataError::Json { path: path.to_owned(), source })?;
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(mut map) => match map.remove("data") {
            Some(Value::Array(items)) => Ok(items),
            Some(object @ Value::Object(_)) => Ok(vec![object]),
            Some(_) => Err(DataError::Shape { path: path.to_owned() }),
            None => Ok(vec![Value::Object(map)]),
        },
        _ => Err(DataError::Shape { path: path.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_array_object_and_bom_are_read() {
        assert_eq!(parse_document(r#"{"status_code":1000,"data":[{"id":"1"},{"id":"2"}]}"#, "x").unwrap().len(), 2);
        assert_eq!(parse_document("\u{feff}[{\"id\":\"1\"}]", "x").unwrap().len(), 1);
        assert_eq!(parse_document(r#"{"id":"1","evses":[]}"#, "x").unwrap().len(), 1);
        assert!(parse_document("42", "x").is_err());
        assert!(parse_document("{", "x").is_err());
    }

    #[test]
    fn spec_examples_load_with_our_owner() {
        let dir = std::env::temp_dir().join(format!("cpo-sim-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let location = dir.join("location.json");
        std::fs::write(
            &location,
            "\u{feff}{\"data\":[{\"country_code\":\"BE\",\"party_id\":\"BEC\",\"id\":\"LOC1\",\"evses\":[],\
             \"last_updated\":\"2015-06-29T20:39:09Z\"},{\"id\":\"LOC1\",\"evses\":[]},{\"name\":\"x\"}]}",
        )
        .unwrap();
        let tariff = dir.join("tariff.json");
        std::fs::write(&tariff, r#"[{"id":"12","currency":"EUR","elements":[]}]"#).unwrap();
        let party = ("NL".to_owned(), "SIM".to_owned());
        let loaded = load(&[location, tariff], &party, SimVersion::V2_2_1).unwrap();
        assert_eq!(loaded.locations.len(), 1, "duplicate and unknown objects are skipped");
        assert_eq!(loaded.locations[0]["country_code"], "NL");
        assert_eq!(loaded.locations[0]["party_id"], "SIM");
        assert_eq!(loaded.locations[0]["last_updated"], "2015-06-29T20:39:09Z");
        assert_eq!(loaded.tariffs[0]["party_id"], "SIM");
        assert!(loaded.tariffs[0]["last_updated"].is_string());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
