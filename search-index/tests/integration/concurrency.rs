//! Readers, status writers and upserts at once: nothing blocks for long, and the derived counts
//! (available EVSEs per location and per map cluster) end up equal to the statuses last written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use emsp_domain::{EvseStatus, GeoPoint};
use emsp_search_index::{Area, ClusterQuery, MapFeature, SearchIndex, SearchQuery, Viewer};

use crate::common::location;

#[test]
fn status_updates_upserts_and_queries_run_together_and_counts_stay_exact() {
    let index = SearchIndex::with_random_secret();
    index.bulk_load(
        (0..400)
            .map(|i| location(&format!("L{i}"), 50.0 + f64::from(i % 20) * 0.01, 8.0 + f64::from(i / 20) * 0.01, 50)),
    );
    let stop = AtomicBool::new(false);
    let final_status: HashMap<(usize, usize), bool> = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let query = SearchQuery {
                area: Some(Area::Radius { center: GeoPoint { latitude: 50.1, longitude: 8.1 }, radius_m: 20_000.0 }),
                with_counts: true,
                ..SearchQuery::default()
            };
            let mut pages = 0;
            while !stop.load(Ordering::Relaxed) {
                let page = index.search(&query, None).unwrap();
                assert!(page.total.unwrap() >= 380, "{:?}", page.total);
                pages += 1;
            }
            pages
        });
        let upserter = scope.spawn(|| {
            // Locations 380..400 are moved back and forth; their statuses are reset by each upsert.
            for round in 0..50 {
                for i in 380..400 {
                    let shift = if round % 2 == 0 { 0.001 } else { 0.0 };
                    let loc = location(
                        &format!("L{i}"),
                        50.0 + f64::from(i % 20) * 0.01 + shift,
                        8.0 + f64::from(i / 20) * 0.01,
                        50,
                    );
                    index.upsert(&loc).unwrap();
                }
            }
        });
        let mut last = HashMap::new();
        for n in 0..100_000usize {
            let i = (n * 7_919) % 380;
            let evse = 1 + n % 2;
            let available = n % 3 == 0;
            let status = if available { EvseStatus::Available } else { EvseStatus::Charging };
            index.set_evse_status(&format!("NL*ABC*L{i}"), &format!("L{i}-{evse}"), &status).unwrap();
            last.insert((i, evse), available);
        }
        upserter.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        last
    });

    // Per location: the index's available count equals the statuses written last.
    let mut expected_total = 0;
    for i in 0..400usize {
        let expected = if i < 380 {
            // Untouched EVSEs keep the fixture's status: EVSE 1 available, EVSE 2 charging.
            let one = final_status.get(&(i, 1)).copied().unwrap_or(true);
            let two = final_status.get(&(i, 2)).copied().unwrap_or(false);
            u32::from(one) + u32::from(two)
        } else {
            1
        };
        expected_total += expected;
        let query = SearchQuery {
            location_id: Some(format!("NL*ABC*L{i}")),
            sort: emsp_search_index::SortBy::MaxPower,
            ..SearchQuery::default()
        };
        let page = index.search(&query, None).unwrap();
        assert_eq!(page.hits[0].location.available_evses, expected, "L{i}");
    }
    // And the map pyramid agrees with the sum.
    let world = ClusterQuery {
        south: -80.0,
        west: -179.0,
        north: 80.0,
        east: 179.0,
        zoom: 3,
        filters: None,
        viewer: Viewer::default(),
    };
    let clustered: u32 = index
        .clusters(&world)
        .unwrap()
        .iter()
        .map(|f| match f {
            MapFeature::Cluster(c) => c.available_evses,
            MapFeature::Location(l) => l.available_evses,
        })
        .sum();
    assert_eq!(clustered, expected_total);
}
