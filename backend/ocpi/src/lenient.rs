//! Serde helpers that accept what real CPO feeds send where the specification is stricter, when the
//! meaning is not in doubt: numbers written as strings (`"230"`), ids written as numbers (`17`),
//! `null` for an empty list, timestamps without a zone designator (UTC, as the specification says)
//! or with a space instead of `T`. Anything else still fails, with its path, in the caller.
//!
//! Wire types serialise exactly as the specification writes them; only reading is lenient.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::de::{self, DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;

fn scalar<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_array() || value.is_object() {
        return Err(de::Error::custom(format!("expected a scalar, found {}", kind(&value))));
    }
    Ok(value)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string; numbers and booleans become their text (ids that partners send as numbers).
pub fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match scalar(deserializer)? {
        Value::String(text) => Ok(text),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        other => Err(de::Error::custom(format!("expected a string, found {}", kind(&other)))),
    }
}

/// An optional string; `null` is absent.
pub fn opt_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match scalar(deserializer)? {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::Bool(flag) => Ok(Some(flag.to_string())),
        other => Err(de::Error::custom(format!("expected a string, found {}", kind(&other)))),
    }
}

fn number_text(value: Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::String(text) if text.trim().is_empty() => Ok(None),
        Value::String(text) => Ok(Some(text.trim().to_owned())),
        other => Err(format!("expected a number, found {}", kind(&other))),
    }
}

/// An optional non-negative integer: a JSON integer, an integral float (`230.0`) or a numeric string.
pub fn opt_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let Some(text) = number_text(scalar(deserializer)?).map_err(de::Error::custom)? else {
        return Ok(None);
    };
    if let Ok(integer) = text.parse::<u32>() {
        return Ok(Some(integer));
    }
    let decimal = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| de::Error::custom(format!("{text:?} is not a number")))?;
    if decimal.fract().is_zero()
        && let Some(integer) = decimal.to_u32()
    {
        return Ok(Some(integer));
    }
    Err(de::Error::custom(format!("{text} is not a whole number from 0 to {}", u32::MAX)))
}

/// A required non-negative integer (see [`opt_u32`]).
pub fn u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    opt_u32(deserializer)?.ok_or_else(|| de::Error::custom("expected a number, found null"))
}

/// An optional decimal from a JSON number or a numeric string, read exactly (no `f64` on the way).
pub fn opt_decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
    let Some(text) = number_text(scalar(deserializer)?).map_err(de::Error::custom)? else {
        return Ok(None);
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(|d| Some(d.normalize()))
        .map_err(|_| de::Error::custom(format!("{text:?} is not a decimal number")))
}

/// A required decimal (see [`opt_decimal`]).
pub fn decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    opt_decimal(deserializer)?.ok_or_else(|| de::Error::custom("expected a number, found null"))
}

/// Writes a decimal as a JSON number, as OCPI's `number` type wants (the domain writes strings).
pub fn serialize_decimal<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract().is_zero()
        && let Some(integer) = value.to_i64()
    {
        return serializer.serialize_i64(integer);
    }
    match value.to_f64() {
        Some(float) => serializer.serialize_f64(float),
        None => Err(serde::ser::Error::custom(format!("{value} does not fit a JSON number"))),
    }
}

/// [`serialize_decimal`] for an `Option` (used with `skip_serializing_if = "Option::is_none"`).
pub fn serialize_opt_decimal<S: Serializer>(value: &Option<Decimal>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serialize_decimal(value, serializer),
        None => serializer.serialize_none(),
    }
}

/// An optional boolean; `"true"`/`"false"` strings are accepted.
pub fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    match scalar(deserializer)? {
        Value::Null => Ok(None),
        Value::Bool(flag) => Ok(Some(flag)),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(Some(false)),
        other => Err(de::Error::custom(format!("expected a boolean, found {}", kind(&other)))),
    }
}

/// Parses an OCPI `DateTime`: RFC 3339, or without a zone designator (UTC by the specification),
/// with `T` or a space between date and time, with or without fractions of a second.
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(with_zone) = DateTime::parse_from_rfc3339(text) {
        return Some(with_zone.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc());
        }
    }
    if let Some(without_z) = text.strip_suffix(['Z', 'z']) {
        return parse_datetime(without_z);
    }
    if let Ok(with_zone) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(with_zone.with_timezone(&Utc));
    }
    None
}

/// An optional timestamp (see [`parse_datetime`]); `null` and `""` are absent.
pub fn opt_datetime<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match scalar(deserializer)? {
        Value::Null => Ok(None),
        Value::String(text) if text.trim().is_empty() => Ok(None),
        Value::String(text) => parse_datetime(&text)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("{text:?} is not an RFC 3339 timestamp"))),
        other => Err(de::Error::custom(format!("expected a timestamp string, found {}", kind(&other)))),
    }
}

/// A required timestamp (see [`parse_datetime`]).
pub fn datetime<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    opt_datetime(deserializer)?.ok_or_else(|| de::Error::custom("expected a timestamp, found null"))
}

/// A list where `null` means empty. Elements are read in place, so an error inside one keeps its
/// index in the error path.
pub fn vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    struct ListVisitor<T>(PhantomData<T>);

    impl<'de, T: DeserializeOwned> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a list or null")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(item) = seq.next_element::<T>()? {
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_any(ListVisitor(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "opt_u32")]
        int: Option<u32>,
        #[serde(default, deserialize_with = "opt_decimal")]
        dec: Option<Decimal>,
        #[serde(default, deserialize_with = "opt_datetime")]
        at: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "vec")]
        list: Vec<u8>,
        #[serde(default, deserialize_with = "opt_string")]
        id: Option<String>,
    }

    fn probe(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn numbers_may_be_strings_and_integral_floats() {
        assert_eq!(probe(r#"{"int":"230"}"#).unwrap().int, Some(230));
        assert_eq!(probe(r#"{"int":230.0}"#).unwrap().int, Some(230));
        assert!(probe(r#"{"int":7.4}"#).is_err());
        assert!(probe(r#"{"int":-1}"#).is_err());
        assert!(probe(r#"{"int":"NaN"}"#).is_err());
        assert!(probe(r#"{"int":1e30}"#).is_err());
        assert_eq!(probe(r#"{"dec":"0.25"}"#).unwrap().dec, Some(dec("0.25")));
        assert_eq!(probe(r#"{"dec":0.1}"#).unwrap().dec, Some(dec("0.1")));
        assert!(probe(r#"{"dec":"Infinity"}"#).is_err());
        assert_eq!(probe(r#"{"id":17}"#).unwrap().id.as_deref(), Some("17"));
    }

    #[test]
    fn timestamps_without_zone_are_utc() {
        let expected = parse_datetime("2025-10-27T12:45:42Z").unwrap();
        assert_eq!(probe(r#"{"at":"2025-10-27T12:45:42"}"#).unwrap().at, Some(expected));
        assert_eq!(probe(r#"{"at":"2025-10-27 12:45:42"}"#).unwrap().at, Some(expected));
        assert_eq!(probe(r#"{"at":"2025-10-27T14:45:42+02:00"}"#).unwrap().at, Some(expected));
        assert!(probe(r#"{"at":"2025-10-27T12:45:42.123456"}"#).unwrap().at.is_some());
        assert!(probe(r#"{"at":"yesterday"}"#).is_err());
    }

    #[test]
    fn null_lists_are_empty() {
        assert!(probe(r#"{"list":null}"#).unwrap().list.is_empty());
        assert_eq!(probe(r#"{"list":[1,2]}"#).unwrap().list, vec![1, 2]);
        assert!(probe(r#"{"list":"x"}"#).is_err());
    }

    #[test]
    fn decimals_serialise_as_json_numbers() {
        let mut out = Vec::new();
        serialize_decimal(&dec("0.25"), &mut serde_json::Serializer::new(&mut out)).unwrap();
        assert_eq!(out, b"0.25");
        let mut out = Vec::new();
        serialize_decimal(&dec("2.00"), &mut serde_json::Serializer::new(&mut out)).unwrap();
        assert_eq!(out, b"2");
    }
}
