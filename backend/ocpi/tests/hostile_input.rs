#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Input from partners is untrusted: whatever arrives, parsing returns a `FeedError` or skips
//! objects, and never panics.

use emsp_domain::PartyId;
use emsp_ocpi::{FeedError, FeedKind, ImportOptions, detect_kind, parse_cdrs, parse_locations, parse_tariffs};

fn all_parsers(bytes: &[u8]) {
    let options = ImportOptions::default();
    let _ = detect_kind(bytes);
    let _ = parse_locations(bytes, &options);
    let _ = parse_tariffs(bytes, &options);
    let _ = parse_cdrs(bytes, &options);
}

#[test]
fn not_json_is_a_feed_error() {
    for input in [&b""[..], b"<html>502 Bad Gateway</html>", b"\xff\xfe\x00\x01", b"{\"data\": [", b"NaN", b"[1,2,]"] {
        let error = parse_locations(input, &ImportOptions::default()).unwrap_err();
        assert!(matches!(error, FeedError::NotJson(_)), "{input:?}: {error}");
        assert_eq!(detect_kind(input), FeedKind::Unknown);
        all_parsers(input);
    }
}

#[test]
fn json_without_a_list_of_objects_is_a_feed_error() {
    for input in ["42", "\"locations\"", "null", "{\"foo\": 1}", "{\"data\": 5, \"status_code\": 1000}"] {
        let error = parse_locations(input.as_bytes(), &ImportOptions::default()).unwrap_err();
        assert!(matches!(error, FeedError::NotAFeed { .. }), "{input}: {error}");
    }
    let error = parse_locations(
        br#"{"status_code": 2001, "status_message": "Missing field", "timestamp": "2015-06-30T21:59:59Z"}"#,
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("2001") && error.to_string().contains("Missing field"), "{error}");
}

#[test]
fn deeply_nested_junk_is_refused_without_overflowing_the_stack() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_locations(deep.as_bytes(), &ImportOptions::default()).is_err());
    let deep_object = format!("[{{\"id\":\"x\",\"evses\":{}1{}}}]", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    all_parsers(deep_object.as_bytes());
    // Nesting below serde_json's limit, inside an object, only costs that object.
    let nested = format!(
        r#"[{{"id":"a","coordinates":{{"latitude":"52.1","longitude":"4.1"}},"address":"x","city":"y","country":"NLD","country_code":"NL","party_id":"ABC","evses":{}[]{}}}]"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let feed = parse_locations(nested.as_bytes(), &ImportOptions::default()).unwrap();
    assert_eq!(feed.items.len() + feed.skipped.len(), 1);
}

#[test]
fn wrong_types_huge_numbers_and_nan_strings_skip_only_their_object() {
    let good = r#"{"country_code":"NL","party_id":"ABC","id":"OK","address":"a","city":"c","country":"NLD",
        "coordinates":{"latitude":"52.1","longitude":"4.1"},"last_updated":"2024-01-01T00:00:00Z","evses":[]}"#;
    let bad = [
        r#"{"id":"A","coordinates":{"latitude":"NaN","longitude":"4"}}"#,
        r#"{"id":"B","coordinates":{"latitude":"1e400","longitude":"4"}}"#,
        r#"{"id":"C","coordinates":{"latitude":"Infinity","longitude":"-Infinity"}}"#,
        r#"{"id":"D","coordinates":"52.1,4.1"}"#,
        r#"{"id":["E"],"coordinates":{"latitude":"52.1","longitude":"4.1"}}"#,
        r#"{"id":"F","coordinates":{"latitude":"52.1","longitude":"4.1"},"evses":{"uid":"1"}}"#,
        r#"{"id":"G","coordinates":{"latitude":"52.1","longitude":"4.1"},"evses":[{"uid":"1","connectors":[{"id":"1","standard":"IEC_62196_T2","power_type":"AC_3_PHASE","max_voltage":1e300}]}]}"#,
        r#"{"id":"H","coordinates":{"latitude":"52.1","longitude":"4.1"},"evses":[{"uid":"1","connectors":[{"id":"1","standard":7,"power_type":"DC"}]}]}"#,
        r#"{"id":"I","coordinates":{"latitude":"99","longitude":"4.1"}}"#,
        r#"{"id":"","coordinates":{"latitude":"52.1","longitude":"4.1"}}"#,
        r#"{"id":"K","coordinates":{"latitude":"52.1","longitude":"4.1"},"last_updated":"last tuesday"}"#,
        r#""just a string""#,
        r#"null"#,
        r#"12345678901234567890123456789012345678901234567890"#,
    ];
    let feed_text = format!("[{good},{}]", bad.join(","));
    let options = ImportOptions { default_party: Some(PartyId::parse("NL*ABC").unwrap()), version: None };
    let feed = parse_locations(feed_text.as_bytes(), &options).unwrap();
    for skipped in &feed.skipped {
        println!("{} {:?}: {}", skipped.path, skipped.id, skipped.reason);
        assert!(!skipped.path.contains("country_code"), "skipped for the party, not the junk: {skipped:?}");
    }
    assert_eq!(
        feed.items.len(),
        1,
        "only the good object: {:?}",
        feed.items.iter().map(|l| l.id.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(feed.skipped.len(), bad.len());
    for (position, skipped) in feed.skipped.iter().enumerate() {
        assert_eq!(skipped.index, position + 1);
        assert!(skipped.path.starts_with(&format!("[{}]", position + 1)), "{skipped:?}");
        assert!(!skipped.reason.is_empty());
    }
    all_parsers(feed_text.as_bytes());
}

#[test]
fn huge_prices_and_volumes_do_not_panic() {
    let tariff = r#"[{"country_code":"NL","party_id":"ABC","id":"T","currency":"EUR","last_updated":"2024-01-01T00:00:00Z",
        "elements":[{"price_components":[{"type":"ENERGY","price":79228162514264337593543950336,"step_size":1}]}]},
        {"country_code":"NL","party_id":"ABC","id":"U","currency":"EUR","last_updated":"2024-01-01T00:00:00Z",
        "elements":[{"price_components":[{"type":"ENERGY","price":"1e-40","step_size":4294967296}]}]},
        {"country_code":"NL","party_id":"ABC","id":"V","currency":"EUR","last_updated":"2024-01-01T00:00:00Z",
        "elements":[{"price_components":[{"type":"ENERGY","price":-0.0,"step_size":-1}]}]}]"#;
    let feed = parse_tariffs(tariff.as_bytes(), &ImportOptions::default()).unwrap();
    assert_eq!(feed.items.len() + feed.skipped.len(), 3);
    let cdr = r#"[{"id":"C","start_date_time":"2024-01-01T00:00:00Z","end_date_time":"2023-01-01T00:00:00Z",
        "cdr_token":{"uid":"X","type":"RFID","contract_id":"x"},"auth_method":"WHITELIST",
        "cdr_location":{"id":"L","coordinates":{"latitude":"1","longitude":"1"}},"currency":"EUR",
        "total_cost":{"excl_vat":1e308},"total_energy":"NaN","total_time":1}]"#;
    let feed = parse_cdrs(cdr.as_bytes(), &ImportOptions::default()).unwrap();
    assert_eq!(feed.skipped.len(), 1);
}

#[test]
fn random_bytes_never_panic() {
    // A small deterministic generator: the test must not depend on a random seed to reproduce.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = br#"{}[]:,"0123456789.-eE truefalsnul\idcoraptseg_"#;
    for _ in 0..2_000 {
        let length = (next() % 200) as usize;
        let bytes: Vec<u8> = (0..length).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
        all_parsers(&bytes);
        let wrapped = [b"[{\"id\":\"x\",\"coordinates\":".as_slice(), &bytes, b"}]"].concat();
        all_parsers(&wrapped);
    }
}
