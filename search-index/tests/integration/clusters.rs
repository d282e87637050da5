//! Map clusters: counts add up, ids lead to their leaves, status changes reach the clusters.

use emsp_domain::EvseStatus;
use emsp_search_index::{ClusterQuery, Filters, MapFeature, SearchIndex, Viewer};
use proptest::prelude::*;

use crate::common::location;

/// 200 locations around Amsterdam and 100 around Paris.
fn index() -> SearchIndex {
    let index = SearchIndex::with_random_secret();
    let mut locations = Vec::new();
    for i in 0..200 {
        let (dy, dx) = (f64::from(i % 20) * 0.002, f64::from(i / 20) * 0.003);
        locations.push(location(&format!("AMS{i}"), 52.35 + dy, 4.85 + dx, if i % 2 == 0 { 50 } else { 0 }));
    }
    for i in 0..100 {
        let (dy, dx) = (f64::from(i % 10) * 0.002, f64::from(i / 10) * 0.003);
        locations.push(location(&format!("PAR{i}"), 48.85 + dy, 2.33 + dx, 0));
    }
    index.bulk_load(locations);
    index
}

fn europe(zoom: u8, filters: Option<Filters>) -> ClusterQuery {
    ClusterQuery { south: 35.0, west: -11.0, north: 71.0, east: 40.0, zoom, filters, viewer: Viewer::default() }
}

fn count(features: &[MapFeature]) -> u32 {
    features.iter().map(|f| if let MapFeature::Cluster(c) = f { c.count } else { 1 }).sum()
}

#[test]
fn low_zoom_gives_few_clusters_that_add_up() {
    let index = index();
    let features = index.clusters(&europe(5, None)).unwrap();
    assert_eq!(features.len(), 2, "{features:?}");
    assert_eq!(count(&features), 300);
    // The same view computed from points (a filter that every location passes) agrees.
    let all = Filters { min_power_kw: Some(0.0), ..Filters::default() };
    let from_points = index.clusters(&europe(5, Some(all))).unwrap();
    assert_eq!(count(&from_points), 300);
    assert_eq!(from_points.len(), 2);
    for zoom in [0, 3, 8, 10, 11, 14, 20] {
        assert_eq!(count(&index.clusters(&europe(zoom, None)).unwrap()), 300, "zoom {zoom}");
    }
}

#[test]
fn clusters_lead_to_their_leaves_and_split_deeper() {
    let index = index();
    let features = index.clusters(&europe(5, None)).unwrap();
    let MapFeature::Cluster(amsterdam) =
        features.iter().find(|f| matches!(f, MapFeature::Cluster(c) if c.count == 200)).unwrap()
    else {
        unreachable!()
    };
    assert!((amsterdam.centroid.latitude - 52.369).abs() < 0.01, "{:?}", amsterdam.centroid);
    assert_eq!(amsterdam.total_evses, 300);
    assert_eq!(amsterdam.available_evses, 200);
    assert_eq!(amsterdam.max_power_kw, 50.0);
    let expansion = amsterdam.expansion_zoom.unwrap();
    assert!(expansion > 5);
    let from_points = index.cluster_expansion_zoom(amsterdam.id, None, &Viewer::default()).unwrap();
    assert_eq!(from_points, Some(expansion));
    let leaves = index.cluster_leaves(amsterdam.id, None, &Viewer::default(), 100, 150).unwrap();
    assert_eq!(leaves.len(), 50);
    assert!(leaves.iter().all(|leaf| leaf.key.starts_with("NL*ABC*AMS")));
    assert!(index.cluster_leaves(u64::MAX, None, &Viewer::default(), 10, 0).is_err());
    let deeper = index.clusters(&europe(expansion, None)).unwrap();
    assert!(deeper.len() > 2);
}

#[test]
fn status_changes_and_removals_reach_the_pyramid() {
    let index = index();
    let available = |index: &SearchIndex| -> u32 {
        index
            .clusters(&europe(5, None))
            .unwrap()
            .iter()
            .map(|f| match f {
                MapFeature::Cluster(c) => c.available_evses,
                MapFeature::Location(l) => l.available_evses,
            })
            .sum()
    };
    assert_eq!(available(&index), 300);
    index.set_evse_status("NL*ABC*AMS0", "AMS0-1", &EvseStatus::Charging).unwrap();
    index.set_evse_status("NL*ABC*AMS0", "AMS0-2", &EvseStatus::Available).unwrap();
    index.set_evse_status("NL*ABC*AMS2", "AMS2-1", &EvseStatus::Charging).unwrap();
    assert_eq!(available(&index), 299);
    for i in (0..200).step_by(2) {
        index.remove(&format!("NL*ABC*AMS{i}"));
    }
    let features = index.clusters(&europe(5, None)).unwrap();
    assert_eq!(count(&features), 200);
    let max_power: f64 = features
        .iter()
        .map(|f| match f {
            MapFeature::Cluster(c) => c.max_power_kw,
            MapFeature::Location(l) => l.max_power_kw,
        })
        .fold(0.0, f64::max);
    assert_eq!(max_power, 11.0, "the 50 kW locations are gone, so the highest power must drop");
}

#[test]
fn a_stale_party_reports_unknown_and_counts_nothing_available() {
    use emsp_search_index::{Area, SearchQuery};
    let index = index();
    let available = |index: &SearchIndex| -> u32 {
        index
            .clusters(&europe(5, None))
            .unwrap()
            .iter()
            .map(|f| match f {
                MapFeature::Cluster(c) => c.available_evses,
                MapFeature::Location(l) => l.available_evses,
            })
            .sum()
    };
    let available_now = |index: &SearchIndex| -> (usize, bool) {
        let query = SearchQuery {
            area: Some(Area::Radius {
                center: emsp_domain::GeoPoint { latitude: 52.37, longitude: 4.87 },
                radius_m: 20_000.0,
            }),
            filters: Filters { min_available: Some(1), ..Filters::default() },
            page_size: 100,
            with_counts: true,
            ..SearchQuery::default()
        };
        let all = SearchQuery { filters: Filters::default(), ..query.clone() };
        let page = index.search(&query, None).unwrap();
        let any = index.search(&all, None).unwrap();
        (page.total.unwrap_or(0), any.hits.first().is_some_and(|hit| hit.location.stale))
    };
    assert_eq!(available(&index), 300);
    assert_eq!(available_now(&index), (200, false));

    assert_eq!(index.set_party_stale("nl*abc", true), 300);
    assert_eq!(available(&index), 0, "a stale party's EVSEs are not available on the map");
    assert_eq!(available_now(&index), (0, true), "nor in an 'available now' search, and hits say stale");
    assert_eq!(index.evse_status("NL*ABC*AMS1", "AMS1-1"), Some(EvseStatus::Unknown));
    // Statuses still arrive while stale; they count again once the party is back.
    index.set_evse_status("NL*ABC*AMS1", "AMS1-1", &EvseStatus::Charging).unwrap();
    assert_eq!(available(&index), 0);
    // A location upserted while its party is stale is stale too, and a bulk load keeps the mark.
    index.upsert(&location("AMS999", 52.36, 4.86, 0)).unwrap();
    assert_eq!(index.evse_status("NL*ABC*AMS999", "AMS999-1"), Some(EvseStatus::Unknown));
    assert_eq!(available(&index), 0);
    assert_eq!(index.stale_parties(), vec!["NL*ABC".to_owned()]);

    assert_eq!(index.set_party_stale("NL*ABC", false), 301);
    assert_eq!(available(&index), 300, "300 + the new one - the one that started charging");
    assert_eq!(index.evse_status("NL*ABC*AMS1", "AMS1-1"), Some(EvseStatus::Charging));
    assert!(!available_now(&index).1);
    assert_eq!(index.set_party_stale("NL*ABC", false), 0, "clearing twice changes nothing");

    index.set_party_stale("NL*ABC", true);
    index.bulk_load(vec![location("AMS0", 52.35, 4.85, 50)]);
    assert_eq!(index.evse_status("NL*ABC*AMS0", "AMS0-1"), Some(EvseStatus::Unknown));
    assert_eq!(available(&index), 0);
}

#[test]
fn bad_zoom_and_boxes_are_refused() {
    let index = index();
    assert!(index.clusters(&europe(21, None)).is_err());
    let inverted = ClusterQuery { south: 50.0, north: 40.0, ..europe(5, None) };
    assert!(index.clusters(&inverted).is_err());
}

/// Cluster counts and ids, sorted, for comparing two ways of computing one view.
fn summary(features: &[MapFeature]) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = features
        .iter()
        .map(|f| match f {
            MapFeature::Cluster(c) => (c.id.to_string(), c.count),
            MapFeature::Location(l) => (l.key.to_string(), 1),
        })
        .collect();
    out.sort_unstable();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The precomputed pyramid and the on-demand computation from points agree on every view.
    #[test]
    fn pyramid_and_points_agree(
        points in prop::collection::vec((-2.0..2.0f64, -3.0..3.0f64), 1..200),
        view in (-2.5..2.0f64, -3.5..3.0f64, 0.05..3.0f64, 0.05..4.0f64),
        zoom in 0u8..=14,
    ) {
        let index = SearchIndex::with_random_secret();
        index.bulk_load(points.iter().enumerate().map(|(i, (dy, dx))| location(&format!("P{i}"), 50.0 + dy, 8.0 + dx, 0)));
        let (south, west, height, width) = view;
        let query = ClusterQuery {
            south: 50.0 + south,
            west: 8.0 + west,
            north: 50.0 + south + height,
            east: 8.0 + west + width,
            zoom,
            filters: None,
            viewer: Viewer::default(),
        };
        let from_pyramid = index.clusters(&query).unwrap();
        let all = Filters { min_power_kw: Some(0.0), ..Filters::default() };
        let from_points = index.clusters(&ClusterQuery { filters: Some(all), ..query }).unwrap();
        prop_assert_eq!(summary(&from_pyramid), summary(&from_points));
    }
}
