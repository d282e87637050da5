#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every real CPO feed in `../shared/data` imports, and keeps importing at least as much as it did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use emsp_domain::PartyId;
use emsp_ocpi::{Feed, FeedKind, ImportOptions, detect_kind, parse_locations, parse_tariffs};

const LOCATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/ocpi-locations");
const TARIFFS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/ocpi-tariffs");

fn json_files(dir: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::from(dir)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Objects in a feed, counted independently of the parser.
fn object_count(bytes: &[u8]) -> usize {
    let text = String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).into_owned();
    match serde_json::from_str::<serde_json::Value>(&text).unwrap() {
        serde_json::Value::Array(items) => items.len(),
        serde_json::Value::Object(object) => match object.get("data") {
            Some(serde_json::Value::Array(items)) => items.len(),
            _ => 1,
        },
        _ => 0,
    }
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The most frequent reasons, with digits and quoted values folded so that one cause counts once.
fn top<'a>(reasons: impl Iterator<Item = &'a str>, n: usize) -> Vec<(usize, String)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for reason in reasons {
        let folded: String =
            reason.split('"').enumerate().map(|(i, part)| if i % 2 == 1 { "…" } else { part }).collect();
        let folded: String = folded.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
        *counts.entry(folded).or_default() += 1;
    }
    let mut ranked: Vec<(usize, String)> = counts.into_iter().map(|(reason, count)| (count, reason)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.truncate(n);
    ranked
}

fn report<T>(file: &str, feed: &Feed<T>) {
    println!("{file}: {} imported, {} skipped, {} warnings", feed.items.len(), feed.skipped.len(), feed.warnings.len());
    for (count, reason) in top(feed.skipped.iter().map(|s| s.reason.as_str()), 3) {
        println!("    skipped {count:>5} x {reason}");
    }
    if let Some(first) = feed.skipped.first() {
        println!("    e.g. {} (id {:?}): {}", first.path, first.id, first.reason);
    }
    let warnings = feed.warnings.iter().map(|w| {
        let field = w.path.rsplit('.').next().unwrap_or("");
        let field = field.split('[').next().unwrap_or(field);
        Box::leak(format!("{field}: {}", w.message).into_boxed_str()) as &str
    });
    for (count, reason) in top(warnings, 4) {
        println!("    warning {count:>5} x {reason}");
    }
}

/// Feeds whose objects name no party and carry no eMI3 id to derive one from: an operator imports
/// them with `--party`. These codes are chosen for the test (the feeds do not say theirs).
const PARTIES: &[(&str, &str)] = &[
    ("ocpi_2_2_1_locations-ev24.json", "PL*E24"),
    ("ocpi_locations-voltrelli.json", "RO*VLT"),
    ("driveco-fr.json", "FR*DRV"),
    ("evzen-fr.json", "FR*EVZ"),
    ("plenitude_tariffs_france.json", "FR*PLE"),
];

fn options_for(file: &str) -> ImportOptions {
    let party = PARTIES.iter().find(|(f, _)| *f == file).map(|(_, party)| PartyId::parse(party).unwrap());
    ImportOptions { default_party: party, version: None }
}

/// Imported locations per feed must not fall below these: the counts observed on 2026-11-24 (the
/// skips left are real defects of the feed, listed by the test's output). A parser change that
/// loses locations fails here.
const LOCATION_FLOORS: &[(&str, usize)] = &[
    ("ocpi_2_1_1_locations-fastned.json", 105),
    ("ocpi_2_2_1_locations-ev24.json", 11),
    ("ocpi_2_2_1_locations-ezvolt.json", 91),
    ("ocpi_2_2_1_locations-greems.json", 80),
    ("ocpi_2_2_1_locations-itcharge.json", 1149),
    ("ocpi_2_2_1_locations-punkt.json", 489),
    ("ocpi_2_2_1_locations-sitronics.json", 65),
    ("ocpi_2_2_1_locations-tesla-fr.json", 273),
    ("ocpi_2_2_1_locations-toger.json", 41),
    ("ocpi_2_2_locations-chargesini.json", 448),
    ("ocpi_2_2_locations-driveco-fr.json", 378),
    ("ocpi_2_2_locations-electricera.json", 3),
    ("ocpi_2_2_locations-evio.json", 21),
    ("ocpi_2_2_locations-gaia.json", 4),
    ("ocpi_2_2_locations-otopriz.json", 500),
    ("ocpi_2_2_locations-zepto.json", 10),
    ("ocpi_2_2_locations_powergo.json", 489),
    ("ocpi_3_0_0_location_example.json", 1),
    ("ocpi_locations-voltrelli.json", 307),
];

/// Tariffs per file must not fall below these (observed 2026-11-24).
const TARIFF_FLOOR_TOTAL: usize = 400;

#[test]
fn every_real_location_feed_imports() {
    let files = json_files(LOCATIONS);
    assert!(files.len() >= 19, "expected the 19 real feeds in {LOCATIONS}, found {}", files.len());
    let (mut locations, mut evses, mut skipped) = (0, 0, 0);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let file = name(path);
        assert_eq!(detect_kind(&bytes), FeedKind::Locations, "{file}");
        let feed = parse_locations(&bytes, &options_for(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        report(&file, &feed);
        locations += feed.items.len();
        evses += feed.items.iter().map(|l| l.evses.len()).sum::<usize>();
        skipped += feed.skipped.len();
        let (_, floor) = LOCATION_FLOORS.iter().find(|(f, _)| *f == file).unwrap_or_else(|| panic!("{file}: no floor"));
        assert!(feed.items.len() >= *floor, "{file}: {} imported, the floor is {floor}", feed.items.len());
        assert_eq!(
            feed.items.len() + feed.skipped.len(),
            object_count(&bytes),
            "{file}: every object is imported or skipped"
        );
    }
    println!("total: {locations} locations with {evses} EVSEs imported, {skipped} skipped");
    // The README counts 4,500 locations with 13,395 EVSEs in these feeds.
    assert_eq!(locations + skipped, 4_500, "every location is accounted for");
    assert!(locations >= 4_400, "{locations} locations imported");
    assert!((13_300..=13_395).contains(&evses), "{evses} EVSEs imported");
}

#[test]
fn every_real_tariff_file_parses() {
    let mut total = 0;
    for path in json_files(TARIFFS) {
        let bytes = std::fs::read(&path).unwrap();
        let file = name(&path);
        let feed = parse_tariffs(&bytes, &options_for(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        report(&file, &feed);
        assert!(feed.skipped.is_empty(), "{file}: {:?}", feed.skipped);
        assert_eq!(feed.items.len(), object_count(&bytes), "{file}");
        total += feed.items.len();
    }
    println!("total: {total} tariffs");
    assert!(total >= TARIFF_FLOOR_TOTAL, "{total} tariffs");
}
