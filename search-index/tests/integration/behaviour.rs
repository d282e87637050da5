//! What the API layer relies on: filters, live updates, visibility, text, pages, errors.

use chrono::{NaiveTime, TimeZone, Utc};
use emsp_domain::{
    BusinessDetails, ConnectorStandard, EvseStatus, GeoPoint, Hours, PublishToken, RegularHours, TariffId,
};
use emsp_search_index::{
    Area, ChangeError, ChangeOutcome, Current, CursorError, Filters, IndexChange, LocationView, OpenAt, RejectReason,
    Route, SearchError, SearchIndex, SearchQuery, SortBy, Viewer, encode_polyline,
};
use rust_decimal::Decimal;

use crate::common::location;

const DAM: GeoPoint = GeoPoint { latitude: 52.3731, longitude: 4.8926 };

fn near(radius_m: f64) -> SearchQuery {
    SearchQuery { area: Some(Area::Radius { center: DAM, radius_m }), ..SearchQuery::default() }
}

fn keys(index: &SearchIndex, query: &SearchQuery) -> Vec<String> {
    index.search(query, None).unwrap().hits.iter().map(|hit| hit.location.key.to_string()).collect()
}

/// Three locations 0, ~1.1 and ~2.2 km north of the Dam; the middle one has a 150 kW DC EVSE.
fn three() -> SearchIndex {
    let index = SearchIndex::with_random_secret();
    let report = index.bulk_load([
        location("A", 52.3731, 4.8926, 0),
        location("B", 52.3831, 4.8926, 150),
        location("C", 52.3931, 4.8926, 50),
    ]);
    assert!(report.rejected.is_empty());
    assert!(index.is_ready());
    index
}

#[test]
fn radius_orders_by_distance_and_reports_it() {
    let index = three();
    let page = index.search(&near(1_500.0), None).unwrap();
    let found: Vec<_> = page.hits.iter().map(|h| (h.location.key.to_string(), h.distance_m.unwrap().round())).collect();
    assert_eq!(found, [("NL*ABC*A".to_string(), 0.0), ("NL*ABC*B".to_string(), 1112.0)]);
    assert_eq!(page.hits[1].location.available_evses, 1);
    assert_eq!(page.hits[1].location.total_evses, 2);
    // No area but an origin: everything, nearest first.
    let from_origin =
        SearchQuery { origin: Some(GeoPoint { latitude: 52.40, longitude: 4.8926 }), ..SearchQuery::default() };
    assert_eq!(keys(&index, &from_origin), ["NL*ABC*C", "NL*ABC*B", "NL*ABC*A"]);
}

#[test]
fn status_changes_are_visible_to_the_next_query_without_a_commit() {
    let index = three();
    let dc_available = SearchQuery {
        filters: Filters { current: Some(Current::Dc), min_available: Some(1), ..Filters::default() },
        ..near(5_000.0)
    };
    assert!(keys(&index, &dc_available).is_empty());
    index.set_evse_status("nl*abc*b", "B-2", &EvseStatus::Available).unwrap();
    assert_eq!(keys(&index, &dc_available), ["NL*ABC*B"]);
    let change = IndexChange::EvseStatus {
        location_key: "NL*ABC*B".into(),
        evse_uid: "b-2".into(),
        status: EvseStatus::OutOfOrder,
    };
    assert_eq!(index.apply(change), Ok(ChangeOutcome::StatusChanged));
    assert!(keys(&index, &dc_available).is_empty());
    assert!(matches!(
        index.set_evse_status("NL*ABC*B", "nope", &EvseStatus::Available),
        Err(ChangeError::UnknownEvse { .. })
    ));
}

#[test]
fn connector_filters_hold_on_one_evse() {
    let index = three();
    let ccs_100 = SearchQuery {
        filters: Filters {
            connector_standards: vec![ConnectorStandard::Iec62196T2Combo],
            min_power_kw: Some(100.0),
            ..Filters::default()
        },
        ..near(5_000.0)
    };
    assert_eq!(keys(&index, &ccs_100), ["NL*ABC*B"]);
    // The AC EVSE is the available one, the DC EVSE is charging: no single EVSE is both.
    let available_dc = SearchQuery {
        filters: Filters { current: Some(Current::Dc), min_available: Some(1), ..Filters::default() },
        ..near(5_000.0)
    };
    assert!(keys(&index, &available_dc).is_empty());
    let ac_only = SearchQuery {
        filters: Filters { max_power_kw: Some(22.0), ..Filters::default() },
        sort: SortBy::MaxPower,
        ..near(5_000.0)
    };
    assert_eq!(keys(&index, &ac_only), ["NL*ABC*B", "NL*ABC*C", "NL*ABC*A"]);
}

#[test]
fn upserts_replace_and_removals_remove() {
    let index = three();
    let moved = location("A", 52.0, 5.0, 0);
    assert_eq!(index.apply(IndexChange::UpsertLocation(Box::new(moved))), Ok(ChangeOutcome::Replaced));
    assert_eq!(keys(&index, &near(1_500.0)), ["NL*ABC*B"]);
    assert_eq!(index.apply(IndexChange::RemoveLocation { key: "nl*abc*b".into() }), Ok(ChangeOutcome::Removed));
    assert!(keys(&index, &near(1_500.0)).is_empty());
    assert_eq!(index.remove("NL*ABC*B"), ChangeOutcome::NotFound);
    assert_eq!(index.stats().locations, 2);
}

#[test]
fn impossible_coordinates_are_rejected_with_a_reason() {
    let index = SearchIndex::with_random_secret();
    for (lat, lon) in [(0.0, 0.0), (f64::NAN, 4.0), (95.0, 4.0), (52.0, 181.0)] {
        let result = index.upsert(&location("X", lat, lon, 0));
        assert!(
            matches!(result, Err(ChangeError::Rejected { reason: RejectReason::Coordinates(_), .. })),
            "{lat},{lon}: {result:?}"
        );
    }
    assert_eq!(index.stats().locations, 0);
}

#[test]
fn unpublished_locations_show_only_to_listed_tokens() {
    let index = three();
    let mut hidden = location("H", 52.3732, 4.8927, 0);
    hidden.publish = false;
    hidden.publish_allowed_to = vec![PublishToken {
        uid: Some("TOKEN1".into()),
        token_type: None,
        visual_number: None,
        issuer: None,
        group_id: None,
    }];
    index.upsert(&hidden).unwrap();
    assert!(!keys(&index, &near(100.0)).contains(&"NL*ABC*H".to_string()));
    let as_owner = SearchQuery { viewer: Viewer { token_uid: Some("token1".into()), group_id: None }, ..near(100.0) };
    assert!(keys(&index, &as_owner).contains(&"NL*ABC*H".to_string()));
}

#[test]
fn text_is_typo_tolerant_and_combines_with_areas() {
    let index = three();
    let mut named = location("D", 52.3700, 4.9000, 0);
    named.name = Some("Parkeergarage Waterlooplein".into());
    named.operator = Some(BusinessDetails { name: "Vattenfall InCharge".into(), website: None, logo: None });
    index.upsert(&named).unwrap();
    let text = |text: &str| SearchQuery { text: Some(text.into()), sort: SortBy::Relevance, ..SearchQuery::default() };
    assert_eq!(keys(&index, &text("waterloplein")), ["NL*ABC*D"]);
    assert_eq!(keys(&index, &text("vatenfall parkeer")), ["NL*ABC*D"]);
    assert_eq!(keys(&index, &text("Amsterdma")).len(), 4);
    let far = SearchQuery {
        area: Some(Area::Radius { center: GeoPoint { latitude: 48.85, longitude: 2.35 }, radius_m: 10_000.0 }),
        ..text("waterlooplein")
    };
    assert!(keys(&index, &far).is_empty());
    // EVSE ids, with or without separators, any case.
    for spelling in ["NL*ABC*ED-1", "nlabced1", "nl-abc-eD-1"] {
        let by_id = SearchQuery { evse_id: Some(spelling.into()), sort: SortBy::MaxPower, ..SearchQuery::default() };
        assert_eq!(keys(&index, &by_id), ["NL*ABC*D"], "{spelling}");
        assert_eq!(keys(&index, &text(spelling))[0], "NL*ABC*D", "{spelling}");
    }
    let by_location = SearchQuery { location_id: Some("c".into()), sort: SortBy::MaxPower, ..SearchQuery::default() };
    assert_eq!(keys(&index, &by_location), ["NL*ABC*C"]);
}

#[test]
fn cursors_walk_every_page_and_refuse_tampering() {
    let index = SearchIndex::with_random_secret();
    index.bulk_load((0..25).map(|i| location(&format!("L{i:02}"), 52.0 + f64::from(i) * 0.001, 5.0, 0)));
    let mut query = SearchQuery {
        area: Some(Area::Radius { center: GeoPoint { latitude: 52.0, longitude: 5.0 }, radius_m: 50_000.0 }),
        page_size: 10,
        with_counts: true,
        ..SearchQuery::default()
    };
    let mut seen = Vec::new();
    let mut expected_total = 25;
    loop {
        let page = index.search(&query, None).unwrap();
        assert_eq!(page.total, Some(expected_total));
        expected_total = 24;
        seen.extend(page.hits.iter().map(|h| h.location.key.to_string()));
        // A change between pages neither repeats nor skips the locations already paged.
        index.remove("NL*ABC*L24");
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    let expected: Vec<String> = (0..24).map(|i| format!("NL*ABC*L{i:02}")).collect();
    assert_eq!(seen, expected);

    let mut forged = query.clone();
    forged.cursor = Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    assert!(matches!(
        index.search(&forged, None),
        Err(SearchError::Cursor(CursorError::Malformed | CursorError::Forged))
    ));
    query.cursor = None;
    let first = index.search(&query, None).unwrap();
    let other_query = SearchQuery { cursor: first.next_cursor, sort: SortBy::MaxPower, ..query.clone() };
    assert_eq!(index.search(&other_query, None), Err(SearchError::Cursor(CursorError::WrongQuery)));
    let other_replica = SearchIndex::new(b"another secret");
    other_replica.bulk_load([location("L00", 52.0, 5.0, 0)]);
    let replayed = SearchQuery { cursor: index.search(&query, None).unwrap().next_cursor, ..query.clone() };
    assert_eq!(other_replica.search(&replayed, None), Err(SearchError::Cursor(CursorError::Forged)));
}

#[test]
fn bad_input_gets_typed_errors() {
    let index = three();
    let search = |query: SearchQuery| index.search(&query, None);
    assert!(matches!(search(near(0.0)), Err(SearchError::InvalidRadius { .. })));
    assert!(matches!(search(near(1_000_001.0)), Err(SearchError::InvalidRadius { .. })));
    let nan = SearchQuery {
        area: Some(Area::Radius { center: GeoPoint { latitude: f64::NAN, longitude: 0.0 }, radius_m: 1.0 }),
        ..SearchQuery::default()
    };
    assert!(matches!(search(nan), Err(SearchError::InvalidCoordinates { .. })));
    let bbox = |south, west, north, east| SearchQuery {
        area: Some(Area::BoundingBox { south, west, north, east }),
        sort: SortBy::MaxPower,
        ..SearchQuery::default()
    };
    assert!(matches!(search(bbox(53.0, 4.0, 52.0, 5.0)), Err(SearchError::InvalidBoundingBox(_))));
    assert!(matches!(search(bbox(52.0, 4.0, 52.0, 5.0)), Err(SearchError::InvalidBoundingBox(_))));
    assert!(matches!(search(SearchQuery { page_size: 101, ..near(10.0) }), Err(SearchError::InvalidPageSize { .. })));
    let corridor =
        |route| SearchQuery { area: Some(Area::Corridor { route, max_distance_m: 1_000.0 }), ..SearchQuery::default() };
    assert!(matches!(search(corridor(Route::Encoded("_p~iF~ps|U_".into()))), Err(SearchError::InvalidPolyline(_))));
    assert!(matches!(search(corridor(Route::Points(vec![DAM]))), Err(SearchError::InvalidPolyline(_))));
    let nearest = SearchQuery { area: Some(Area::Nearest { center: DAM, k: 0 }), ..SearchQuery::default() };
    assert!(matches!(search(nearest), Err(SearchError::InvalidK { .. })));
    let no_origin = bbox(52.0, 4.0, 53.0, 5.0);
    assert!(matches!(
        search(SearchQuery { sort: SortBy::Distance, ..no_origin }),
        Err(SearchError::SortNeedsOrigin(_))
    ));
    let priced = SearchQuery { filters: Filters { max_price: Some(Decimal::ONE), ..Filters::default() }, ..near(10.0) };
    assert_eq!(search(priced), Err(SearchError::PriceUnavailable));
}

#[test]
fn bounding_boxes_cross_the_antimeridian_and_polygons_cut_exactly() {
    let index = SearchIndex::with_random_secret();
    index.bulk_load([
        location("FJ", -17.0, 179.9, 0),
        location("WS", -13.8, -171.8, 0),
        location("AU", -33.9, 151.2, 0),
    ]);
    let query = SearchQuery {
        area: Some(Area::BoundingBox { south: -20.0, west: 170.0, north: -10.0, east: -170.0 }),
        sort: SortBy::MaxPower,
        with_counts: true,
        ..SearchQuery::default()
    };
    let page = index.search(&query, None).unwrap();
    assert_eq!(page.total, Some(2));
    // A triangle that holds FJ but not WS, whose bounding box holds both.
    let triangle = vec![
        GeoPoint { latitude: -20.0, longitude: 179.0 },
        GeoPoint { latitude: -10.0, longitude: 179.99 },
        GeoPoint { latitude: -10.0, longitude: 179.0 },
    ];
    let query = SearchQuery { area: Some(Area::Polygon(triangle)), sort: SortBy::MaxPower, ..SearchQuery::default() };
    assert!(keys(&index, &query).is_empty());
    let square = vec![
        GeoPoint { latitude: -18.0, longitude: 179.5 },
        GeoPoint { latitude: -18.0, longitude: 180.0 },
        GeoPoint { latitude: -16.0, longitude: 180.0 },
        GeoPoint { latitude: -16.0, longitude: 179.5 },
    ];
    let query = SearchQuery { area: Some(Area::Polygon(square)), sort: SortBy::MaxPower, ..SearchQuery::default() };
    assert_eq!(keys(&index, &query), ["NL*ABC*FJ"]);
    // A polygon across the antimeridian holds Fiji and Samoa, not Sydney.
    let across = vec![
        GeoPoint { latitude: -20.0, longitude: 170.0 },
        GeoPoint { latitude: -20.0, longitude: -170.0 },
        GeoPoint { latitude: -10.0, longitude: -170.0 },
        GeoPoint { latitude: -10.0, longitude: 170.0 },
    ];
    let query = SearchQuery {
        area: Some(Area::Polygon(across)),
        sort: SortBy::MaxPower,
        with_counts: true,
        ..SearchQuery::default()
    };
    let mut found = keys(&index, &query);
    found.sort();
    assert_eq!(found, ["NL*ABC*FJ", "NL*ABC*WS"]);
    // A location on the antimeridian itself is found once.
    index.upsert(&location("AM", -15.0, 180.0, 0)).unwrap();
    let page = index.search(&query, None).unwrap();
    assert_eq!(page.total, Some(3));
    assert_eq!(page.hits.len(), 3);
}

#[test]
fn corridors_report_distance_from_and_position_along_the_route() {
    let index = SearchIndex::with_random_secret();
    // Amsterdam -> Utrecht is about 35 km due south-east; one charger beside it, one far off.
    index.bulk_load([location("MID", 52.2300, 5.0000, 50), location("OFF", 52.2300, 5.3000, 50)]);
    let route =
        vec![GeoPoint { latitude: 52.3731, longitude: 4.8926 }, GeoPoint { latitude: 52.0907, longitude: 5.1214 }];
    for route in [Route::Points(route.clone()), Route::Encoded(encode_polyline(&route))] {
        let query = SearchQuery {
            area: Some(Area::Corridor { route, max_distance_m: 2_000.0 }),
            sort: SortBy::RoutePosition,
            ..SearchQuery::default()
        };
        let page = index.search(&query, None).unwrap();
        assert_eq!(page.hits.len(), 1);
        let hit = &page.hits[0];
        assert_eq!(&*hit.location.key, "NL*ABC*MID");
        let distance = hit.distance_m.unwrap();
        let position = hit.route_position_m.unwrap();
        assert!(distance < 2_000.0, "{distance}");
        assert!((15_000.0..20_000.0).contains(&position), "{position}");
    }
}

#[test]
fn opening_hours_are_evaluated_in_the_location_time_zone() {
    let index = three();
    let mut garage = location("G", 52.3732, 4.8927, 0);
    garage.opening_times = Some(Hours {
        twentyfourseven: false,
        regular_hours: (1..=7)
            .map(|weekday| RegularHours {
                weekday,
                period_begin: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                period_end: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            })
            .collect(),
        exceptional_openings: vec![],
        exceptional_closings: vec![],
    });
    index.upsert(&garage).unwrap();
    let at = |hour| SearchQuery {
        filters: Filters {
            open: Some(OpenAt::At(Utc.with_ymd_and_hms(2026, 7, 1, hour, 0, 0).unwrap())),
            ..Filters::default()
        },
        ..near(100.0)
    };
    // 06:00 UTC is 08:00 in Amsterdam summer time.
    assert!(keys(&index, &at(6)).contains(&"NL*ABC*G".to_string()));
    assert!(!keys(&index, &at(5)).contains(&"NL*ABC*G".to_string()));
    assert!(!keys(&index, &at(18)).contains(&"NL*ABC*G".to_string()));
    garage.charging_when_closed = Some(true);
    index.upsert(&garage).unwrap();
    assert!(keys(&index, &at(18)).contains(&"NL*ABC*G".to_string()));
}

#[test]
fn prices_come_from_the_callers_function_and_follow_tariff_changes() {
    let index = three();
    let price = |view: &LocationView<'_>| -> Option<Decimal> {
        let tariff = view.evses().flat_map(|evse| evse.connectors().flat_map(|c| c.tariff_ids().next())).next()?;
        match tariff {
            "CHEAP" => Some(Decimal::new(25, 2)),
            "T1" => Some(Decimal::new(59, 2)),
            _ => None,
        }
    };
    let cheap = SearchQuery {
        filters: Filters { max_price: Some(Decimal::new(30, 2)), ..Filters::default() },
        sort: SortBy::Price,
        ..near(5_000.0)
    };
    assert!(index.search(&cheap, Some(&price)).unwrap().hits.is_empty());
    let change = IndexChange::ConnectorTariffs {
        location_key: "NL*ABC*C".into(),
        evse_uid: "C-1".into(),
        connector_id: "1".into(),
        tariff_ids: vec![TariffId::new("CHEAP").unwrap()],
    };
    assert_eq!(index.apply(change), Ok(ChangeOutcome::TariffsChanged));
    let page = index.search(&cheap, Some(&price)).unwrap();
    assert_eq!(page.hits.len(), 1);
    assert_eq!(page.hits[0].price, Some(Decimal::new(25, 2)));
    let by_price = SearchQuery { filters: Filters::default(), ..cheap };
    let order: Vec<_> =
        index.search(&by_price, Some(&price)).unwrap().hits.iter().map(|h| h.location.key.to_string()).collect();
    assert_eq!(order, ["NL*ABC*C", "NL*ABC*A", "NL*ABC*B"]);
}

#[test]
fn facets_ignore_the_connector_filters_they_describe() {
    let index = three();
    let query = SearchQuery {
        filters: Filters { connector_standards: vec![ConnectorStandard::Iec62196T2Combo], ..Filters::default() },
        with_counts: true,
        ..near(5_000.0)
    };
    let page = index.search(&query, None).unwrap();
    assert_eq!(page.total, Some(2));
    let facets = page.facets.unwrap();
    let count =
        |standard: ConnectorStandard| facets.connector_standards.iter().find(|(s, _)| *s == standard).map(|(_, n)| *n);
    assert_eq!(count(ConnectorStandard::Iec62196T2), Some(3));
    assert_eq!(count(ConnectorStandard::Iec62196T2Combo), Some(2));
    let bands: Vec<usize> = facets.power_bands.iter().map(|(_, n)| *n).collect();
    assert_eq!(bands, [1, 1, 1, 0]);
    // Counting without facets finds the same matches, and no facets.
    let counted = index.search(&SearchQuery { skip_facets: true, ..query }, None).unwrap();
    assert_eq!((counted.total, counted.facets), (Some(2), None));
    assert_eq!(counted.hits.len(), page.hits.len());
}

#[test]
fn nearest_returns_k_matches() {
    let index = three();
    let query = SearchQuery {
        area: Some(Area::Nearest { center: GeoPoint { latitude: 52.40, longitude: 4.8926 }, k: 2 }),
        filters: Filters { min_power_kw: Some(40.0), ..Filters::default() },
        ..SearchQuery::default()
    };
    assert_eq!(keys(&index, &query), ["NL*ABC*C", "NL*ABC*B"]);
    let with_counts = SearchQuery { with_counts: true, ..query };
    let page = index.search(&with_counts, None).unwrap();
    assert_eq!(page.total, Some(2));
}
