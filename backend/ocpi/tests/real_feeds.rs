#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every real CPO feed in `../shared/data` imports, and keeps importing at least as much as it did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Imported locations per feed must not fall below these (observed counts, 2026-11-24).
const LOCATION_FLOORS: &[(&str, usize)] = &[];

#[test]
fn every_real_location_feed_imports() {
    let files = json_files(LOCATIONS);
    assert!(files.len() >= 19, "expected the 19 real feeds in {LOCATIONS}, found {}", files.len());
    let (mut locations, mut evses, mut skipped) = (0, 0, 0);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let file = name(path);
        assert_eq!(detect_kind(&bytes), FeedKind::Locations, "{file}");
        let feed = parse_locations(&bytes, &ImportOptions::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        report(&file, &feed);
        locations += feed.items.len();
        evses += feed.items.iter().map(|l| l.evses.len()).sum::<usize>();
        skipped += feed.skipped.len();
        if let Some((_, floor)) = LOCATION_FLOORS.iter().find(|(f, _)| *f == file) {
            assert!(feed.items.len() >= *floor, "{file}: {} imported, the floor is {floor}", feed.items.len());
        }
    }
    println!("total: {locations} locations with {evses} EVSEs imported, {skipped} skipped");
}

#[test]
fn every_real_tariff_file_parses() {
    let mut total = 0;
    for path in json_files(TARIFFS) {
        let bytes = std::fs::read(&path).unwrap();
        let file = name(&path);
        let feed = parse_tariffs(&bytes, &ImportOptions::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        report(&file, &feed);
        total += feed.items.len();
    }
    println!("total: {total} tariffs");
}
