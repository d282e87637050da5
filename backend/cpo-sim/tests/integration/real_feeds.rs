//! Real CPO feeds from `../shared/data` (CI has it beside the checkout): 19 location feeds in
//! three OCPI dialects with their quirks, and French tariffs, served and paged without loss.

use std::collections::BTreeSet;
use std::path::PathBuf;

use emsp_cpo_sim::{SimData, SimOptions};

use crate::emsp::{EmspConfig, TestEmsp};
use crate::helpers::{get, module_url, options, register, sim};

fn shared_data() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    dir.is_dir().then_some(dir)
}

fn json_files(dir: &PathBuf) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(json_files(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_location_and_tariff_feeds_are_served_and_paged() {
    let Some(data) = shared_data() else {
        eprintln!("../shared/data not found: real feed test skipped");
        return;
    };
    let mut files = json_files(&data.join("ocpi-locations"));
    files.extend(json_files(&data.join("ocpi-tariffs")));
    let sim = sim(SimOptions { data: SimData::Files(files), page_limit: 1000, ..options(0) }).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token = register(&sim, &emsp).await;

    let mut ids = Vec::new();
    let mut next = Some(module_url(&sim, "locations"));
    while let Some(url) = next.take() {
        let page = get(&url, &token).await;
        assert_eq!(page.status, 200);
        for location in page.body["data"].as_array().unwrap() {
            assert_eq!(location["party_id"], "SIM");
            ids.push(location["id"].as_str().unwrap().to_owned());
        }
        next = page.header("link").map(|l| l.trim_start_matches('<').split('>').next().unwrap().to_owned());
    }
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates across pages");
    assert!(ids.len() > 4400, "{} of 4,500 real locations (ids repeated across feeds are served once)", ids.len());

    let tariffs = get(&module_url(&sim, "tariffs"), &token).await;
    let total: usize = tariffs.header("x-total-count").unwrap().parse().unwrap();
    assert!(total > 300, "{total} tariffs");
    sim.stop().await;
}

/// The specification's own example objects are served, and a session on its example location
/// (Gent Zuid, EVSE 3256) ends in a CDR that carries that location.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_example_locations_and_tariffs_run_a_session() {
    let Some(data) = shared_data() else {
        eprintln!("../shared/data not found: spec example test skipped");
        return;
    };
    let files: Vec<PathBuf> = json_files(&data.join("ocpi-spec-examples/2.2.1"))
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("location_") || name.starts_with("tariff_")
        })
        .collect();
    let sim = sim(SimOptions { data: SimData::Files(files), ..options(0) }).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token = register(&sim, &emsp).await;
    let locations = get(&module_url(&sim, "locations"), &token).await;
    assert_eq!(locations.header("x-total-count"), Some("5"), "patches skipped, the repeated id served once");
    let tariffs = get(&module_url(&sim, "tariffs"), &token).await;
    assert_eq!(tariffs.header("x-total-count"), Some("19"));

    let start = serde_json::json!({
        "response_url": format!("{}/ocpi/2.2.1/commands/START_SESSION/spec", emsp.base),
        "token": crate::tokens::token("app-1"),
        "location_id": "LOC1", "evse_uid": "3256", "connector_id": "2",
    });
    let url = format!("{}/START_SESSION", module_url(&sim, "commands"));
    let answer =
        crate::helpers::call(reqwest::Method::POST, &url, Some(&crate::helpers::auth(&token)), Some(&start)).await;
    assert_eq!(answer.body["data"]["result"], "ACCEPTED");
    let session = &emsp.wait_for("PUT", "/ocpi/2.2.1/sessions/NL/SIM/", 1).await[0].body;
    let stop = serde_json::json!({
        "response_url": format!("{}/ocpi/2.2.1/commands/STOP_SESSION/spec", emsp.base),
        "session_id": session["id"],
    });
    let url = format!("{}/STOP_SESSION", module_url(&sim, "commands"));
    crate::helpers::call(reqwest::Method::POST, &url, Some(&crate::helpers::auth(&token)), Some(&stop)).await;
    let cdr = &emsp.wait_for("POST", "/ocpi/2.2.1/cdrs", 1).await[0].body;
    assert_eq!(cdr["cdr_location"]["address"], "F.Rooseveltlaan 3A");
    assert_eq!(cdr["cdr_location"]["evse_id"], "BE*BEC*E041503001");
    assert_eq!(cdr["cdr_location"]["connector_format"], "SOCKET");
    assert_eq!(cdr["tariffs"][0]["id"], "13");
    crate::contract::assert_fields(cdr, crate::contract::CDR_2_2_1, "CDR");
    sim.stop().await;
}
