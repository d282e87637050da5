//! The index against a brute-force model over random points: same hits, same order, same counts,
//! including near the poles and across the antimeridian, and through every page of a cursor walk.

use emsp_domain::{EvseStatus, GeoPoint, Location};
use emsp_search_index::{Area, Current, Filters, SearchIndex, SearchQuery, SortBy};
use proptest::prelude::*;

use crate::common::location;

#[derive(Debug, Clone)]
struct Point {
    latitude: f64,
    longitude: f64,
    dc_kw: u32,
    available: bool,
}

fn wrap(longitude: f64) -> f64 {
    let wrapped = (longitude + 180.0).rem_euclid(360.0) - 180.0;
    if wrapped == -180.0 { 180.0 } else { wrapped }
}

/// A cloud of points around a centre that may sit on a pole or the antimeridian.
fn cloud() -> impl Strategy<Value = (GeoPoint, Vec<Point>)> {
    let centre = prop_oneof![
        (-60.0..70.0f64, -180.0..180.0f64),
        (85.0..89.99f64, -180.0..180.0f64),
        (-30.0..30.0f64, 179.0..180.0f64),
    ];
    (centre, 0.01..3.0f64).prop_flat_map(|((lat, lon), spread)| {
        let point = (-1.0..1.0f64, -1.0..1.0f64, prop_oneof![Just(0u32), Just(50), Just(150)], any::<bool>()).prop_map(
            move |(dy, dx, dc_kw, available)| Point {
                latitude: (lat + dy * spread).clamp(-89.999, 89.999),
                longitude: wrap(lon + dx * spread * 3.0),
                dc_kw,
                available,
            },
        );
        (Just(GeoPoint { latitude: lat, longitude: lon }), prop::collection::vec(point, 1..120))
    })
}

fn locations(points: &[Point]) -> Vec<Location> {
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| !(p.latitude == 0.0 && p.longitude == 0.0))
        .map(|(i, p)| {
            let mut loc = location(&format!("P{i:03}"), p.latitude, p.longitude, p.dc_kw);
            if !p.available {
                loc.evses[0].status = EvseStatus::Charging;
            }
            loc
        })
        .collect()
}

/// The model: every location, filtered one by one, sorted by (distance, key).
fn brute_force(
    all: &[Location],
    origin: &GeoPoint,
    inside: impl Fn(&Location) -> bool,
    filters: &Filters,
) -> Vec<(String, f64)> {
    let mut hits: Vec<(String, f64)> = all
        .iter()
        .filter(|loc| inside(loc))
        .filter(|loc| {
            let wants_dc = filters.current == Some(Current::Dc);
            let evses = loc.evses.iter().filter(|evse| {
                let dc = evse.connectors.iter().any(|c| c.power_type.is_dc());
                (!wants_dc || dc) && (filters.min_available.is_none() || evse.status == EvseStatus::Available)
            });
            let needed = filters.min_available.unwrap_or(u32::from(wants_dc)) as usize;
            evses.count() >= needed
        })
        .map(|loc| (loc.key(), origin.distance_m(&loc.coordinates)))
        .collect();
    hits.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    hits
}

fn filters_strategy() -> impl Strategy<Value = Filters> {
    (any::<bool>(), prop_oneof![Just(None), Just(Some(1u32))]).prop_map(|(dc, min_available)| Filters {
        current: dc.then_some(Current::Dc),
        min_available,
        ..Filters::default()
    })
}

/// Walks every page; returns the keys with distances, and the total of the first page.
fn walk(index: &SearchIndex, mut query: SearchQuery) -> (Vec<(String, f64)>, Option<usize>) {
    let mut out = Vec::new();
    let mut total = None;
    for _ in 0..1_000 {
        let page = index.search(&query, None).unwrap();
        total = total.or(page.total);
        out.extend(page.hits.iter().map(|h| (h.location.key.to_string(), h.distance_m.unwrap_or(f64::NAN))));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    (out, total)
}

fn same(found: &[(String, f64)], expected: &[(String, f64)]) -> Result<(), TestCaseError> {
    let found_keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    let expected_keys: Vec<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
    prop_assert_eq!(found_keys, expected_keys);
    for ((_, a), (_, b)) in found.iter().zip(expected) {
        if a.is_finite() {
            prop_assert!((a - b).abs() < 0.01, "{} vs {}", a, b);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn radius_matches_brute_force(
        (centre, points) in cloud(),
        radius_km in 1.0..400.0f64,
        filters in filters_strategy(),
        with_counts: bool,
        page_size in 1..15usize,
    ) {
        let all = locations(&points);
        let index = SearchIndex::with_random_secret();
        index.bulk_load(all.clone());
        let radius_m = radius_km * 1000.0;
        let expected = brute_force(&all, &centre, |loc| centre.distance_m(&loc.coordinates) <= radius_m, &filters);
        let query = SearchQuery {
            area: Some(Area::Radius { center: centre, radius_m }),
            filters: filters.clone(),
            page_size,
            with_counts,
            ..SearchQuery::default()
        };
        let (found, total) = walk(&index, query);
        same(&found, &expected)?;
        if with_counts {
            prop_assert_eq!(total, Some(expected.len()));
        }
    }

    #[test]
    fn nearest_matches_brute_force((centre, points) in cloud(), k in 1..30usize, filters in filters_strategy(), with_counts: bool) {
        let all = locations(&points);
        let index = SearchIndex::with_random_secret();
        index.bulk_load(all.clone());
        let mut expected = brute_force(&all, &centre, |_| true, &filters);
        expected.truncate(k);
        let query = SearchQuery {
            area: Some(Area::Nearest { center: centre, k }),
            filters,
            page_size: 7,
            with_counts,
            ..SearchQuery::default()
        };
        let (found, total) = walk(&index, query);
        same(&found, &expected)?;
        if with_counts {
            prop_assert_eq!(total, Some(expected.len()));
        }
    }

    #[test]
    fn bounding_box_matches_brute_force(
        (centre, points) in cloud(),
        half_height in 0.05..3.0f64,
        half_width in 0.05..6.0f64,
        filters in filters_strategy(),
    ) {
        let all = locations(&points);
        let index = SearchIndex::with_random_secret();
        index.bulk_load(all.clone());
        let south = (centre.latitude - half_height).max(-90.0);
        let north = (centre.latitude + half_height).min(90.0);
        let (west, east) = (wrap(centre.longitude - half_width), wrap(centre.longitude + half_width));
        let inside_lon = |lon: f64| if west <= east { west <= lon && lon <= east } else { lon >= west || lon <= east };
        let expected = brute_force(
            &all,
            &centre,
            |loc| (south..=north).contains(&loc.coordinates.latitude) && inside_lon(loc.coordinates.longitude),
            &filters,
        );
        let query = SearchQuery {
            area: Some(Area::BoundingBox { south, west, north, east }),
            origin: Some(centre),
            sort: SortBy::Distance,
            filters,
            page_size: 9,
            with_counts: true,
            ..SearchQuery::default()
        };
        let (found, total) = walk(&index, query);
        same(&found, &expected)?;
        prop_assert_eq!(total, Some(expected.len()));
    }
}

/// The point a fraction `t` of the way from `a` to `b` along the great circle (spherical slerp).
fn great_circle_point(a: &GeoPoint, b: &GeoPoint, t: f64) -> GeoPoint {
    let vector = |p: &GeoPoint| {
        let (lat, lon) = (p.latitude.to_radians(), p.longitude.to_radians());
        [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
    };
    let (va, vb) = (vector(a), vector(b));
    let angle = (va[0] * vb[0] + va[1] * vb[1] + va[2] * vb[2]).clamp(-1.0, 1.0).acos();
    if angle < 1e-12 {
        return *a;
    }
    let (wa, wb) = (((1.0 - t) * angle).sin() / angle.sin(), (t * angle).sin() / angle.sin());
    let v = [wa * va[0] + wb * vb[0], wa * va[1] + wb * vb[1], wa * va[2] + wb * vb[2]];
    GeoPoint { latitude: v[2].atan2(v[0].hypot(v[1])).to_degrees(), longitude: v[1].atan2(v[0]).to_degrees() }
}

/// Distance from a route by brute force: haversine to points sampled every few metres along it.
fn sampled_route_distance(route: &[GeoPoint], point: &GeoPoint) -> f64 {
    let mut best = f64::INFINITY;
    for pair in route.windows(2) {
        let length = pair[0].distance_m(&pair[1]);
        let steps = (length / 5.0).ceil().max(1.0) as usize;
        for step in 0..=steps {
            let t = step as f64 / steps as f64;
            let sample = great_circle_point(&pair[0], &pair[1], t);
            best = best.min(sample.distance_m(point));
        }
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn corridor_matches_brute_force(
        points in prop::collection::vec((-0.3..0.3f64, -0.3..0.3f64), 1..150),
        route in prop::collection::vec((-0.25..0.25f64, -0.25..0.25f64), 2..5),
        max_distance_m in 500.0..5_000.0f64,
    ) {
        let (lat0, lon0) = (48.0, 11.0);
        let all: Vec<Location> = points
            .iter()
            .enumerate()
            .map(|(i, (dy, dx))| location(&format!("P{i:03}"), lat0 + dy, lon0 + dx, 50))
            .collect();
        let route: Vec<GeoPoint> =
            route.iter().map(|(dy, dx)| GeoPoint { latitude: lat0 + dy, longitude: lon0 + dx }).collect();
        let index = SearchIndex::with_random_secret();
        index.bulk_load(all.clone());
        let query = SearchQuery {
            area: Some(Area::Corridor { route: emsp_search_index::Route::Points(route.clone()), max_distance_m }),
            sort: SortBy::MaxPower,
            page_size: 100,
            with_counts: true,
            ..SearchQuery::default()
        };
        let page = index.search(&query, None).unwrap();
        let found: std::collections::HashMap<String, f64> =
            page.hits.iter().map(|h| (h.location.key.to_string(), h.distance_m.unwrap())).collect();
        for loc in &all {
            let expected = sampled_route_distance(&route, &loc.coordinates);
            // Points within a few metres of the edge may fall either way (sampling, lon/lat lines).
            if (expected - max_distance_m).abs() < 10.0 {
                continue;
            }
            match found.get(&loc.key()) {
                Some(distance) => {
                    prop_assert!(expected < max_distance_m, "{} found but {} m away", loc.key(), expected);
                    prop_assert!((distance - expected).abs() < 10.0, "{} vs {}", distance, expected);
                }
                None => prop_assert!(expected > max_distance_m, "{} missed at {} m", loc.key(), expected),
            }
        }
    }
}
