//! Pulling locations and tariffs: pagination, date windows, single objects, determinism.

use std::collections::BTreeSet;

use emsp_cpo_sim::SimOptions;
use serde_json::Value;

use crate::emsp::{EmspConfig, TestEmsp};
use crate::helpers::{Answer, get, module_url, options, register, sim};

/// Follows `Link: <...>; rel="next"` from `url` and returns every page.
async fn pages(url: &str, token: &str) -> Vec<Answer> {
    let mut pages = Vec::new();
    let mut next = Some(url.to_owned());
    while let Some(url) = next.take() {
        let page = get(&url, token).await;
        assert_eq!(page.status, 200, "{url}: {:?}", page.body);
        next = page.header("link").map(|link| {
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            link.trim_start_matches('<').split('>').next().unwrap().to_owned()
        });
        pages.push(page);
        assert!(pages.len() < 100, "link loop");
    }
    pages
}

fn ids(pages: &[Answer]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.body["data"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_all_locations_via_links_has_no_duplicates_or_gaps() {
    let sim = sim(SimOptions { page_limit: 20, ..options(137) }).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token = register(&sim, &emsp).await;

    let pages = pages(&format!("{}?limit=50", module_url(&sim, "locations")), &token).await;
    assert_eq!(pages.len(), 7, "137 locations in pages of 20");
    for page in &pages {
        for location in page.body["data"].as_array().unwrap() {
            crate::contract::assert_location_2_2_1(location);
        }
        assert_eq!(page.header("x-limit"), Some("20"), "limit capped at page_limit");
        assert_eq!(page.header("x-total-count"), Some("137"));
        assert_eq!(page.code(), 1000);
        assert!(page.body["timestamp"].is_string());
    }
    let ids = ids(&pages);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 137);
    assert_eq!(unique.len(), 137);
    let expected: BTreeSet<String> = sim.evses().into_iter().map(|(location, _)| location).collect();
    assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), expected);

    // An offset past the end is an empty page without a link.
    let past = get(&format!("{}?offset=500", module_url(&sim, "locations")), &token).await;
    assert_eq!(past.body["data"].as_array().unwrap().len(), 0);
    assert!(past.header("link").is_none());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_from_is_inclusive_and_date_to_exclusive() {
    let sim = sim(SimOptions { page_limit: 1000, ..options(120) }).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token = register(&sim, &emsp).await;
    let url = module_url(&sim, "locations");
    let all = get(&url, &token).await.body["data"].as_array().unwrap().clone();
    let mut stamps: Vec<&str> = all.iter().map(|l| l["last_updated"].as_str().unwrap()).collect();
    stamps.sort();
    let pivot = stamps[stamps.len() / 2];
    let at_or_after = stamps.iter().filter(|s| **s >= pivot).count();

    let from = get(&format!("{url}?date_from={pivot}"), &token).await;
    assert_eq!(from.body["data"].as_array().unwrap().len(), at_or_after);
    assert_eq!(from.header("x-total-count").unwrap(), at_or_after.to_string());
    let to = get(&format!("{url}?date_to={pivot}"), &token).await;
    assert_eq!(to.body["data"].as_array().unwrap().len(), all.len() - at_or_after);
    assert!(to.body["data"].as_array().unwrap().iter().all(|l| l["last_updated"].as_str().unwrap() < pivot));

    // The window travels in the next links.
    let paged = pages(&format!("{url}?date_from={pivot}&limit=7"), &token).await;
    assert_eq!(ids(&paged).len(), at_or_after);
    let bad = get(&format!("{url}?date_from=yesterday"), &token).await;
    assert_eq!((bad.status, bad.code()), (400, 2001));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_location_evse_connector_and_tariffs() {
    let sim = sim(options(30)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token = register(&sim, &emsp).await;
    let url = module_url(&sim, "locations");
    let (location_id, evse_uid) = sim.evses().into_iter().next().unwrap();

    let location = get(&format!("{url}/{location_id}"), &token).await;
    assert_eq!(location.body["data"]["id"], location_id.as_str());
    assert_eq!(location.body["data"]["country_code"], "NL");
    assert_eq!(location.body["data"]["party_id"], "SIM");
    let evse = get(&format!("{url}/{location_id}/{evse_uid}"), &token).await;
    assert_eq!(evse.body["data"]["uid"], evse_uid.as_str());
    let connector_id = evse.body["data"]["connectors"][0]["id"].as_str().unwrap().to_owned();
    let connector = get(&format!("{url}/{location_id}/{evse_uid}/{connector_id}"), &token).await;
    assert_eq!(connector.body["data"]["id"], connector_id.as_str());
    let trailing = get(&format!("{url}/{location_id}/"), &token).await;
    assert_eq!(trailing.status, 200, "a trailing slash is fine");

    let unknown = get(&format!("{url}/NOPE"), &token).await;
    assert_eq!((unknown.status, unknown.code()), (404, 2003));
    assert_eq!(get(&format!("{url}/{location_id}/NOPE"), &token).await.code(), 2003);

    // Every tariff a connector references is served.
    let tariffs = get(&module_url(&sim, "tariffs"), &token).await;
    for tariff in tariffs.body["data"].as_array().unwrap() {
        crate::contract::assert_fields(tariff, crate::contract::TARIFF_2_2_1, "Tariff");
    }
    let tariff_ids: BTreeSet<&str> =
        tariffs.body["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    let all = get(&format!("{url}?limit=50"), &token).await;
    for location in all.body["data"].as_array().unwrap() {
        for evse in location["evses"].as_array().unwrap() {
            for connector in evse["connectors"].as_array().unwrap() {
                let id = connector["tariff_ids"][0].as_str().unwrap();
                assert!(tariff_ids.contains(id), "{id}");
            }
        }
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_serves_the_same_locations() {
    let fetch = |seed: u64| async move {
        let sim = sim(SimOptions { seed, page_limit: 100, ..options(40) }).await;
        let emsp = TestEmsp::start(EmspConfig::default()).await;
        let token = register(&sim, &emsp).await;
        let body: Value = get(&module_url(&sim, "locations"), &token).await.body["data"].clone();
        sim.stop().await;
        body
    };
    assert_eq!(fetch(11).await, fetch(11).await);
    assert_ne!(fetch(11).await, fetch(12).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocpi_files_are_served_with_our_owner() {
    let dir = std::env::temp_dir().join(format!("cpo-sim-it-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("locations.json");
    let example = r#"{"country_code":"BE","party_id":"BEC","id":"LOC1","publish":true,"address":"F.Rooseveltlaan 3A",
        "city":"Gent","country":"BEL","coordinates":{"latitude":"51.047599","longitude":"3.729944"},
        "evses":[{"uid":"3256","evse_id":"BE*BEC*E041503001","status":"AVAILABLE","connectors":[{"id":"1",
        "standard":"IEC_62196_T2","format":"CABLE","power_type":"AC_3_PHASE","max_voltage":220,"max_amperage":16,
        "last_updated":"2015-03-16T10:10:02Z"}],"last_updated":"2015-06-28T08:12:01Z"}],
        "time_zone":"Europe/Brussels","last_updated":"2015-06-29T20:39:09Z","x_vendor":"kept"}"#;
    std::fs::write(&path, format!("\u{feff}{{\"status_code\":1000,\"data\":[{example}]}}")).unwrap();
    let sim = sim(SimOptions { data: emsp_cpo_sim::SimData::Files(vec![path]), ..options(0) }).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token = register(&sim, &emsp).await;
    let answer = get(&module_url(&sim, "locations"), &token).await;
    let location = &answer.body["data"][0];
    assert_eq!(location["party_id"], "SIM");
    assert_eq!(location["x_vendor"], "kept", "served as given");
    assert_eq!(location["evses"][0]["evse_id"], "BE*BEC*E041503001");
    sim.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
