#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The example objects of the OCPI 2.2.1 specification parse, and locations and tariffs survive a
//! domain → wire → domain round trip in 2.2.1 (unchanged) and 2.1.1 (minus what 2.1.1 cannot say).

use std::path::PathBuf;

use emsp_domain::{Location, PartyId, Tariff};
use emsp_ocpi::{
    FeedKind, ImportOptions, Notes, OcpiVersion, detect_kind, parse_cdrs, parse_locations, parse_tariffs, v2_1_1,
    v2_2_1,
};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/ocpi-spec-examples/2.2.1");

fn examples(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(EXAMPLES)
        .unwrap_or_else(|e| panic!("{EXAMPLES}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
        .collect()
}

/// Whole location objects (the other `location_*` examples are hours, energy mixes and PATCH bodies).
fn location_examples() -> Vec<(String, Vec<u8>)> {
    examples("location_example")
}

fn tariff_examples() -> Vec<(String, Vec<u8>)> {
    let mut all = examples("tariff_");
    all.extend(examples("tariffrestriction_example"));
    all
}

fn one_location(bytes: &[u8], options: &ImportOptions) -> Location {
    let feed = parse_locations(bytes, options).unwrap();
    assert!(feed.skipped.is_empty(), "{:?}", feed.skipped);
    assert!(feed.warnings.is_empty(), "spec examples need no tolerance: {:?}", feed.warnings);
    assert_eq!(feed.items.len(), 1);
    feed.items.into_iter().next().unwrap()
}

fn one_tariff(bytes: &[u8], options: &ImportOptions) -> Tariff {
    let feed = parse_tariffs(bytes, options).unwrap();
    assert!(feed.skipped.is_empty(), "{:?}", feed.skipped);
    // `tariff_put_example` of 2.2.1 has no `last_updated` (required): the fixed fallback applies.
    let tolerated = |w: &emsp_ocpi::Warning| w.path == "[0].last_updated" && w.id.as_deref() == Some("12");
    assert!(feed.warnings.iter().all(tolerated), "spec examples need no tolerance: {:?}", feed.warnings);
    assert_eq!(feed.items.len(), 1);
    feed.items.into_iter().next().unwrap()
}

#[test]
fn location_examples_parse_and_round_trip_through_2_2_1() {
    let files = location_examples();
    assert!(files.len() >= 6, "{} location examples", files.len());
    for (file, bytes) in files {
        assert_eq!(detect_kind(&bytes), FeedKind::Locations, "{file}");
        let location = one_location(&bytes, &ImportOptions::default());
        assert!(!location.evses.is_empty() || file.contains("uc3"), "{file}: no EVSEs");
        let wire = serde_json::to_vec(&v2_2_1::locations::from_domain(&location)).unwrap();
        let back = one_location(&wire, &ImportOptions { version: Some(OcpiVersion::V2_2_1), ..Default::default() });
        assert_eq!(back, location, "{file}");
    }
}

#[test]
fn location_examples_round_trip_through_2_1_1_minus_what_it_cannot_say() {
    for (file, bytes) in location_examples() {
        let location = one_location(&bytes, &ImportOptions::default());
        let wire = serde_json::to_value(v2_1_1::locations::from_domain(&location)).unwrap();
        assert!(wire.get("country_code").is_none() && wire.get("type").is_some(), "{file}: {wire}");
        let options = ImportOptions { default_party: Some(location.party.clone()), version: Some(OcpiVersion::V2_1_1) };
        let back = one_location(wire.to_string().as_bytes(), &options);
        let mut expected = location.clone();
        expected.publish = true;
        expected.publish_allowed_to.clear();
        expected.state = None;
        for evse in &mut expected.evses {
            for connector in &mut evse.connectors {
                connector.max_electric_power = None;
                connector.tariff_ids.truncate(1);
            }
        }
        assert_eq!(back, expected, "{file}");
    }
}

#[test]
fn the_evse_example_parses_on_its_own() {
    let (_, bytes) = examples("location_put_example_add_evse").pop().unwrap();
    let wire: v2_2_1::locations::Evse = serde_json::from_slice(&bytes).unwrap();
    let mut notes = Notes::new();
    let evse = v2_2_1::locations::evse_to_domain_standalone(&wire, &mut notes).unwrap();
    assert_eq!(Some(evse.uid.as_str()), wire.uid.as_deref());
    let again = v2_2_1::locations::evse_from_domain(&evse);
    assert_eq!(v2_2_1::locations::evse_to_domain_standalone(&again, &mut Notes::new()).unwrap(), evse);
}

#[test]
fn tariff_examples_parse_and_round_trip() {
    let files = tariff_examples();
    assert!(files.len() >= 20, "{} tariff examples", files.len());
    for (file, bytes) in files {
        assert_eq!(detect_kind(&bytes), FeedKind::Tariffs, "{file}");
        let tariff = one_tariff(&bytes, &ImportOptions::default());
        let wire = serde_json::to_vec(&v2_2_1::tariffs::from_domain(&tariff)).unwrap();
        assert_eq!(one_tariff(&wire, &ImportOptions::default()), tariff, "{file} through 2.2.1");

        let options = ImportOptions { default_party: Some(tariff.party.clone()), version: Some(OcpiVersion::V2_1_1) };
        let wire = serde_json::to_vec(&v2_1_1::tariffs::from_domain(&tariff)).unwrap();
        let back = one_tariff(&wire, &options);
        let mut expected = tariff.clone();
        expected.tariff_type = None;
        expected.min_price = None;
        expected.max_price = None;
        expected.start_date_time = None;
        expected.end_date_time = None;
        for element in &mut expected.elements {
            for component in &mut element.price_components {
                component.vat = None;
            }
            if let Some(restrictions) = &mut element.restrictions {
                restrictions.min_current = None;
                restrictions.max_current = None;
                restrictions.reservation = None;
            }
        }
        assert_eq!(back, expected, "{file} through 2.1.1");
    }
}

#[test]
fn the_cdr_example_parses_and_its_token_names_the_emsp() {
    let (_, bytes) = examples("cdr_example").pop().unwrap();
    assert_eq!(detect_kind(&bytes), FeedKind::Cdrs);
    let feed = parse_cdrs(&bytes, &ImportOptions::default()).unwrap();
    assert!(feed.skipped.is_empty(), "{:?}", feed.skipped);
    let cdr = &feed.items[0];
    assert_eq!(cdr.party, PartyId::parse("BE*BEC").unwrap());
    assert_eq!(cdr.id.as_str(), "12345");
    assert_eq!(cdr.total_cost.incl_vat, Some("4.40".parse().unwrap()));
    assert_eq!(cdr.tariffs.len(), 1);
    assert_eq!(cdr.cdr_location["evse_uid"], "3256");
    // The example's cdr_token lacks country_code/party_id (required in 2.2.1): the eMA-ID names the eMSP.
    assert_eq!(cdr.cdr_token.party, PartyId::parse("DE*8AC").unwrap());
    assert!(feed.warnings.iter().any(|w| w.path == "[0].cdr_token.country_code"), "{:?}", feed.warnings);

    let wire = serde_json::to_vec(&v2_2_1::cdrs::from_domain(cdr).unwrap()).unwrap();
    let again = parse_cdrs(&wire, &ImportOptions::default()).unwrap();
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    assert_eq!(&again.items[0], cdr, "a CDR round-trips through 2.2.1");
}

#[test]
fn a_2_1_1_cdr_maps_to_the_same_domain_shape() {
    let cdr = r#"{
      "id": "12345", "start_date_time": "2015-06-29T21:39:09Z", "stop_date_time": "2015-06-29T23:37:32Z",
      "auth_id": "DE8ACC12E46L89", "auth_method": "WHITELIST",
      "location": {"id": "LOC1", "type": "ON_STREET", "name": "Gent Zuid", "address": "F.Rooseveltlaan 3A",
        "city": "Gent", "postal_code": "9000", "country": "BEL",
        "coordinates": {"latitude": "3.729944", "longitude": "51.047599"},
        "evses": [{"uid": "3256", "evse_id": "BE*BEC*E041503003", "status": "AVAILABLE",
          "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_1_PHASE",
            "voltage": 230, "amperage": 64, "tariff_id": "11", "last_updated": "2015-06-29T21:39:01Z"}],
          "last_updated": "2015-06-29T21:39:01Z"}],
        "last_updated": "2015-06-29T21:39:01Z"},
      "currency": "EUR",
      "tariffs": [{"id": "12", "currency": "EUR", "elements": [{"price_components": [{"type": "TIME", "price": "2.00", "step_size": 300}]}],
        "last_updated": "2015-02-02T14:15:01Z"}],
      "charging_periods": [{"start_date_time": "2015-06-29T21:39:09Z", "dimensions": [{"type": "TIME", "volume": 1.973}]}],
      "total_cost": 4.00, "total_energy": 15.342, "total_time": 1.973, "total_parking_time": 0,
      "last_updated": "2015-06-29T22:01:13Z"}"#;
    let feed = parse_cdrs(cdr.as_bytes(), &ImportOptions::default()).unwrap();
    assert!(feed.skipped.is_empty(), "{:?}", feed.skipped);
    let cdr = &feed.items[0];
    assert_eq!(cdr.party, PartyId::parse("BE*BEC").unwrap(), "from the EVSE's eMI3 id");
    assert_eq!(cdr.cdr_token.party, PartyId::parse("DE*8AC").unwrap());
    assert_eq!(cdr.cdr_token.contract_id, "DE8ACC12E46L89");
    assert_eq!(cdr.total_cost.excl_vat, "4".parse().unwrap());
    assert_eq!(cdr.total_cost.incl_vat, None);
    assert_eq!(cdr.cdr_location["connector_standard"], "IEC_62196_T2");
    assert_eq!(cdr.tariffs[0].party, cdr.party);
    assert_eq!(cdr.tariffs[0].elements[0].price_components[0].vat, None);
}

const EXAMPLES_2_3_0: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/ocpi-spec-examples/2.3.0");

/// OCPI 2.3.0 objects are read with the 2.2.1 types: what 2.3.0 added is ignored, nothing is lost
/// that the domain keeps.
#[test]
fn the_2_3_0_examples_parse_with_the_2_2_1_types() {
    let mut counts = (0, 0, 0);
    let mut files: Vec<PathBuf> = std::fs::read_dir(EXAMPLES_2_3_0).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let options = ImportOptions { default_party: None, version: Some(OcpiVersion::V2_3_0) };
        if file.starts_with("location_example") {
            let feed = parse_locations(&bytes, &options).unwrap();
            assert_eq!((feed.items.len(), feed.skipped.len()), (1, 0), "{file}: {:?}", feed.skipped);
            counts.0 += 1;
        } else if file.starts_with("tariff_") || file.starts_with("tariffrestriction_example") {
            let feed = parse_tariffs(&bytes, &options).unwrap();
            assert_eq!((feed.items.len(), feed.skipped.len()), (1, 0), "{file}: {:?}", feed.skipped);
            counts.1 += 1;
        } else if file.starts_with("cdr_example") {
            let feed = parse_cdrs(&bytes, &options).unwrap();
            assert_eq!((feed.items.len(), feed.skipped.len()), (1, 0), "{file}: {:?}", feed.skipped);
            // 2.3.0 prices are `{before_taxes, taxes}`: 4.00 + 0.40 VAT.
            let total = &feed.items[0].total_cost;
            assert_eq!((total.excl_vat, total.incl_vat), ("4".parse().unwrap(), Some("4.4".parse().unwrap())));
            counts.2 += 1;
        }
    }
    assert_eq!(counts, (6, 22, 1), "locations, tariffs, CDRs among the 2.3.0 examples");
}

#[test]
fn session_examples_parse_and_round_trip() {
    let files = examples("session_example");
    assert_eq!(files.len(), 2);
    for (file, bytes) in files {
        let wire: v2_2_1::sessions::Session = serde_json::from_slice(&bytes).unwrap();
        let mut notes = Notes::new();
        let session = v2_2_1::sessions::to_domain(&wire, None, &mut notes).unwrap();
        let cpo = if file.contains("example_1") { "NL*STK" } else { "BE*BEC" };
        assert_eq!(session.party, PartyId::parse(cpo).unwrap(), "{file}");
        // The examples' cdr_token lacks country_code/party_id: the eMA-ID names the eMSP.
        assert_eq!(session.cdr_token.party, PartyId::parse("NL*TST").unwrap(), "{file}");
        let again = serde_json::to_value(v2_2_1::sessions::from_domain(&session)).unwrap();
        let again: v2_2_1::sessions::Session = serde_json::from_value(again).unwrap();
        assert_eq!(v2_2_1::sessions::to_domain(&again, None, &mut Notes::new()).unwrap(), session, "{file}");
    }
}

#[test]
fn a_2_1_1_session_names_its_evse_through_its_location() {
    let session = r#"{"id": "101", "start_datetime": "2015-06-29T22:39:09Z", "kwh": "0.00",
      "auth_id": "FA54320", "auth_method": "WHITELIST",
      "location": {"id": "LOC1", "type": "ON_STREET", "address": "F.Rooseveltlaan 3A", "city": "Gent",
        "postal_code": "9000", "country": "BEL", "coordinates": {"latitude": "3.729944", "longitude": "51.047599"},
        "evses": [{"uid": "3256", "evse_id": "BE*BEC*E041503003", "status": "AVAILABLE",
          "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
            "voltage": 220, "amperage": 16, "last_updated": "2015-03-16T10:10:02Z"}],
          "last_updated": "2015-03-16T10:10:02Z"}],
        "last_updated": "2015-03-16T10:10:02Z"},
      "currency": "EUR", "total_cost": 2.5, "status": "ACTIVE", "last_updated": "2015-06-29T22:39:09Z"}"#;
    let wire: v2_1_1::sessions::Session = serde_json::from_str(session).unwrap();
    let mut notes = Notes::new();
    // "FA54320" is not an eMA-ID: the 2.1.1 session cannot name its eMSP.
    assert_eq!(v2_1_1::sessions::to_domain(&wire, None, &mut notes).unwrap_err().path, "auth_id");
    let wire: v2_1_1::sessions::Session =
        serde_json::from_str(&session.replace("FA54320", "NL-TST-C12345678-S")).unwrap();
    let session = v2_1_1::sessions::to_domain(&wire, None, &mut notes).unwrap();
    assert_eq!(session.party, PartyId::parse("BE*BEC").unwrap());
    assert_eq!((session.evse_uid.as_str(), session.connector_id.as_str()), ("3256", "1"));
    assert_eq!(session.total_cost.unwrap().incl_vat, None);
}
