//! The search index follows the store: locations present at start-up are bulk-loaded, later writes
//! arrive through the change feed, on both backends.

use std::time::{Duration, Instant};

use emsp_domain::fixtures::{at, location};
use emsp_domain::{EvseStatus, EvseUid, GeoPoint};
use emsp_search_index::{Area, SearchIndex, SearchQuery};
use emsp_tests::{TestApp, TestBackend};

/// The available-EVSE count of every location within 1 km of `center`, by key.
fn around(index: &SearchIndex, latitude: f64, longitude: f64) -> Vec<(String, u32)> {
    let query = SearchQuery {
        area: Some(Area::Radius { center: GeoPoint::new(latitude, longitude).unwrap(), radius_m: 1_000.0 }),
        ..SearchQuery::default()
    };
    let page = index.search(&query, None).unwrap();
    page.hits.iter().map(|hit| (hit.location.key.to_string(), hit.location.available_evses)).collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(15), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn index_follows_the_store(backend: TestBackend) {
    let Some(db) = TestApp::database(backend) else { return };
    db.store().upsert_location(&location("before-start", 52.3791, 4.9003), None).unwrap();
    let app = TestApp::start_on(db).await;
    let index = app.index();

    eventually("bulk load", || index.is_ready()).await;
    assert_eq!(around(&index, 52.3791, 4.9003), vec![("NL*ABC*BEFORE-START".to_owned(), 1)]);
    assert_eq!(app.get("/ready").await.status(), 200);

    let store = app.db().store();
    store.upsert_location(&location("after-start", 48.8566, 2.3522), None).unwrap();
    eventually("a new location", || around(&index, 48.8566, 2.3522).len() == 1).await;

    store.set_evse_status("NL*ABC*BEFORE-START", &EvseUid::new("1").unwrap(), &EvseStatus::Available, at(60)).unwrap();
    eventually("a status change", || around(&index, 52.3791, 4.9003) == vec![("NL*ABC*BEFORE-START".to_owned(), 2)])
        .await;

    // REMOVED takes an EVSE out of search; a later status brings it back.
    let removed = EvseUid::new("2").unwrap();
    store.set_evse_status("NL*ABC*BEFORE-START", &removed, &EvseStatus::Removed, at(120)).unwrap();
    eventually("an EVSE removed", || around(&index, 52.3791, 4.9003) == vec![("NL*ABC*BEFORE-START".to_owned(), 1)])
        .await;
    let total_evses = || index.stats().evses;
    assert_eq!(total_evses(), 1 + 2, "the removed EVSE is not counted");
    store.set_evse_status("NL*ABC*BEFORE-START", &removed, &EvseStatus::Available, at(180)).unwrap();
    eventually("an EVSE back", || around(&index, 52.3791, 4.9003) == vec![("NL*ABC*BEFORE-START".to_owned(), 2)]).await;

    assert!(store.remove_location("NL*ABC*AFTER-START").unwrap());
    eventually("a removal", || around(&index, 48.8566, 2.3522).is_empty()).await;

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("emsp_search_index_locations 1"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn index_follows_the_store_on_sqlite() {
    index_follows_the_store(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn index_follows_the_store_on_postgres() {
    index_follows_the_store(TestBackend::Postgres).await;
}
