//! PRICE sorting and the `maxPrice` filter over HTTP, with real French tariffs
//! (`shared/data/ocpi-tariffs`) read by our OCPI feed reader. Every expected amount is worked out
//! by hand beside it: 20 kWh from Monday 2026-07-06 10:00 in Paris (CEST, 08:00 UTC), VAT included
//! where the tariff states it.

use std::time::{Duration, Instant};

use emsp_domain::fixtures::{connector, evse, location};
use emsp_domain::{ConnectorStandard, EvseStatus, Location, PartyId, PowerType, Tariff, TariffId};
use emsp_ocpi::{ImportOptions, parse_tariffs};
use emsp_tests::{TestApp, TestBackend};
use serde_json::{Value, json};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/ocpi-tariffs");
const MORNING: &str = "2026-07-06T08:00:00Z";
const EVENING: &str = "2026-07-06T19:00:00Z";

fn real_tariff(file: &str, id: &str, default_party: &str) -> Tariff {
    let bytes = std::fs::read(format!("{SHARED}/{file}")).unwrap();
    let options = ImportOptions { default_party: Some(PartyId::parse(default_party).unwrap()), version: None };
    let feed = parse_tariffs(&bytes, &options).unwrap();
    feed.items.into_iter().find(|t| t.id.as_str() == id).unwrap_or_else(|| panic!("{file}: no tariff {id}"))
}

/// A French charger of `party` whose EVSEs each have one connector `(DC?, kW, tariff id)`.
fn charger(party: &str, id: &str, n: usize, connectors: &[(bool, u32, &str)]) -> Location {
    let mut loc = location(id, 45.76 + n as f64 * 0.001, 4.83);
    loc.party = PartyId::parse(party).unwrap();
    loc.country = "FRA".into();
    loc.evses = connectors
        .iter()
        .enumerate()
        .map(|(i, (dc, kw, tariff))| {
            let (standard, power_type) = if *dc {
                (ConnectorStandard::Iec62196T2Combo, PowerType::Dc)
            } else {
                (ConnectorStandard::Iec62196T2, PowerType::Ac3Phase)
            };
            let mut c = connector("1", standard, power_type, kw * 1000);
            c.tariff_ids = vec![TariffId::new(*tariff).unwrap()];
            evse(&(i + 1).to_string(), EvseStatus::Available, vec![c])
        })
        .collect();
    loc
}

async fn app() -> Option<TestApp> {
    let db = TestApp::database(TestBackend::Sqlite)?;
    let store = db.store();
    let tariffs = [
        real_tariff("izivia-fr/IZIVIA-24KW-LIMOGES.json", "IZIVIA-24KW-LIMOGES", "FR*IXL"),
        real_tariff("izivia-fr/LYON-my50kW.json", "LYON-my50kW", "FR*GLY"),
        real_tariff("izivia-fr/LYON-my24kW.json", "LYON-my24kW", "FR*GLY"),
        real_tariff("izivia-fr/SIGE-gte-50KW.json", "SIGE-GTE-50KW", "FR*SIG"),
        real_tariff("milence_tariffs_france.json", "NLMILT000005", "NL*MIL"),
        real_tariff("ionity-fr.json", "FR*MC*ADHOC*003", "DE*IOY"),
        real_tariff("driveco-fr.json", "DRV-energy-5", "FR*DRV"),
        real_tariff("electra-fr.json", "d70c8658-2e94-11f1-a364-4fa368184d9e", "FR*ELC"),
    ];
    for tariff in &tariffs {
        store.upsert_tariff(tariff, None).unwrap();
    }
    // The same Milence tariff in Swiss francs at a tenth of the price: never compared with euros.
    let mut francs = tariffs[4].clone();
    francs.id = TariffId::new("CHF-CHEAP").unwrap();
    francs.currency = emsp_domain::Currency::new("CHF").unwrap();
    francs.elements[0].price_components[0].price = "0.0339".parse().unwrap();
    store.upsert_tariff(&francs, None).unwrap();

    let (dc, ac) = (true, false);
    let chargers = [
        charger("FR*IXL", "IXL", 1, &[(ac, 22, "IZIVIA-24KW-LIMOGES")]),
        charger("FR*GLY", "GLY50", 2, &[(dc, 50, "LYON-my50kW")]),
        charger("FR*GLY", "GLYMIX", 3, &[(dc, 50, "LYON-my50kW"), (ac, 22, "LYON-my24kW")]),
        charger("FR*SIG", "SIG", 4, &[(dc, 50, "SIGE-GTE-50KW")]),
        charger("NL*MIL", "MIL", 5, &[(dc, 50, "NLMILT000005")]),
        charger("DE*IOY", "IOY", 6, &[(dc, 50, "FR*MC*ADHOC*003")]),
        charger("FR*DRV", "DRV", 7, &[(dc, 50, "DRV-energy-5")]),
        charger("FR*ELC", "ELC", 8, &[(dc, 50, "d70c8658-2e94-11f1-a364-4fa368184d9e")]),
        charger("NL*MIL", "SWISS", 9, &[(dc, 50, "CHF-CHEAP")]),
        charger("FR*XXX", "UNPRICED", 10, &[(dc, 50, "NO-SUCH-TARIFF")]),
    ];
    for loc in &chargers {
        store.upsert_location(loc, None).unwrap();
    }
    let app = TestApp::start_on(db).await;
    let index = app.index();
    let started = Instant::now();
    while index.stats().locations < chargers.len() {
        assert!(started.elapsed() < Duration::from_secs(15), "index did not load");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(app)
}

const SEARCH: &str = r#"query($filter: ChargerFilter, $basis: PriceBasisInput, $first: Int!, $after: String, $sort: ChargerSort) {
  chargers(near: {latitude: 45.76, longitude: 4.83}, radiusMeters: 5000, filter: $filter, sort: $sort,
           priceBasis: $basis, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id estimatedPrice { amount currency } } }
  }
}"#;

async fn search(app: &TestApp, variables: Value) -> Value {
    let mut variables = variables;
    variables["sort"] = variables.get("sort").cloned().unwrap_or(json!("PRICE"));
    variables["first"] = variables.get("first").cloned().unwrap_or(json!(20));
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": SEARCH, "variables": variables}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `(id, amount)` in result order; amounts without trailing zeros, `None` when unpriced.
fn priced(body: &Value) -> Vec<(String, Option<String>)> {
    let edges = body["data"]["chargers"]["edges"].as_array().unwrap_or_else(|| panic!("{body}"));
    edges
        .iter()
        .map(|e| {
            let node = &e["node"];
            let amount = node["estimatedPrice"]["amount"].as_str().map(|a| {
                if a.contains('.') { a.trim_end_matches('0').trim_end_matches('.').to_owned() } else { a.to_owned() }
            });
            (node["id"].as_str().unwrap().to_owned(), amount)
        })
        .collect()
}

fn expect(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    pairs.iter().map(|(id, amount)| ((*id).to_owned(), amount.map(str::to_owned))).collect()
}

#[tokio::test]
async fn price_sort_and_max_price_with_real_tariffs() {
    let Some(app) = app().await else { return };
    let morning = json!({"energyKwh": 20, "startAt": MORNING});

    // Morning, any connector. By hand, 20 kWh:
    // GLYMIX: its 22 kW AC connector (LYON-my24kW, day: TIME 4.998/h, 60 s steps): 54 min 33 s
    //         bill 55 min = 4.5815, +20 % = 5.4978 (its DC one costs 9.00, see GLY50).
    // DRV:    DRV-energy-5, 0.325/kWh, no VAT stated: 6.50 (the idle fee needs parking).
    // MIL:    Milence 0.339/kWh, no VAT stated: 6.78.
    // IOY:    IONITY ad hoc 0.2833/kWh + 20 %: 5.666 × 1.2 = 6.7992 (its only tariff).
    // IXL:    IZIVIA Limoges at 22 kW, day: 0.35/kWh + 20 %: 8.40.
    // GLY50:  LYON-my50kW 0.375/kWh + 20 % = 9.00; 24 min charging, the time fee starts at 45 min.
    // ELC:    Electra ad hoc 0.38333/kWh + 20 %: 9.19992 → 9.1999.
    // SIG:    SIGE 0.41/kWh + 20 % = 9.84; time fee from 60 min.
    // SWISS (CHF) and UNPRICED (unknown tariff) have no EUR price: last, by key.
    let body = search(&app, json!({"basis": morning})).await;
    assert_eq!(
        priced(&body),
        expect(&[
            ("FR*GLY*GLYMIX", Some("5.4978")),
            ("FR*DRV*DRV", Some("6.5")),
            ("NL*MIL*MIL", Some("6.78")),
            ("DE*IOY*IOY", Some("6.7992")),
            ("FR*IXL*IXL", Some("8.4")),
            ("FR*GLY*GLY50", Some("9")),
            ("FR*ELC*ELC", Some("9.1999")),
            ("FR*SIG*SIG", Some("9.84")),
            ("FR*XXX*UNPRICED", None),
            ("NL*MIL*SWISS", None),
        ])
    );
    assert_eq!(body["data"]["chargers"]["edges"][0]["node"]["estimatedPrice"]["currency"], "EUR");

    // DC only: GLYMIX is priced by its DC connector (9.00, tied with GLY50: by key), IXL has none.
    let body = search(&app, json!({"basis": morning, "filter": {"powerType": "DC"}})).await;
    let ids: Vec<String> = priced(&body).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        [
            "FR*DRV*DRV",
            "NL*MIL*MIL",
            "DE*IOY*IOY",
            "FR*GLY*GLY50",
            "FR*GLY*GLYMIX",
            "FR*ELC*ELC",
            "FR*SIG*SIG",
            "FR*XXX*UNPRICED",
            "NL*MIL*SWISS"
        ]
    );

    // At most 7 EUR: four chargers, unpriced ones never pass.
    let filter = json!({"maxPrice": {"amount": "7", "currency": "EUR"}});
    let body = search(&app, json!({"basis": morning, "filter": filter, "sort": "DISTANCE"})).await;
    assert_eq!(body["data"]["chargers"]["totalCount"], 4, "{body}");
    let mut ids: Vec<String> = priced(&body).into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, ["DE*IOY*IOY", "FR*DRV*DRV", "FR*GLY*GLYMIX", "NL*MIL*MIL"]);

    // In francs only the Swiss charger has a price: 20 × 0.0339 = 0.678 CHF.
    let filter = json!({"maxPrice": {"amount": "100", "currency": "CHF"}});
    let body = search(&app, json!({"basis": morning, "filter": filter})).await;
    assert_eq!(priced(&body), expect(&[("NL*MIL*SWISS", Some("0.678"))]));
    assert_eq!(body["data"]["chargers"]["edges"][0]["node"]["estimatedPrice"]["currency"], "CHF");

    // Evening (21:00 Paris): the night elements of IZIVIA and LYON-my24kW apply. IXL: the 4.1667
    // session fee + 20 % = 5.0000 (energy is free below 20 kWh charged); GLYMIX's AC: 5.00 + 20 %
    // = 6.00, cheaper than its DC 9.00.
    let evening = json!({"energyKwh": 20, "startAt": EVENING});
    let body = search(&app, json!({"basis": evening, "first": 3})).await;
    assert_eq!(
        priced(&body),
        expect(&[("FR*IXL*IXL", Some("5")), ("FR*GLY*GLYMIX", Some("6")), ("FR*DRV*DRV", Some("6.5"))])
    );

    // Pages follow on in price order.
    let first = search(&app, json!({"basis": morning, "first": 3})).await;
    let after = first["data"]["chargers"]["pageInfo"]["endCursor"].clone();
    let second = search(&app, json!({"basis": morning, "first": 3, "after": after})).await;
    let ids: Vec<String> = priced(&second).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["DE*IOY*IOY", "FR*IXL*IXL", "FR*GLY*GLY50"]);

    // priceEstimate chooses the same tariff and agrees with the sort.
    let estimate = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": "query($at: DateTime) { priceEstimate(chargerId: \"DE*IOY*IOY\", energyKwh: 20, startAt: $at) { tariffId totalInclVat currency } }", "variables": {"at": MORNING}}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(estimate["data"]["priceEstimate"]["tariffId"], "DE*IOY*FR*MC*ADHOC*003", "{estimate}");
    assert_eq!(estimate["data"]["priceEstimate"]["totalInclVat"], "6.7992");

    // A new tariff version arrives through the change feed: Milence at 0.20 = 4.00 comes first.
    let mut cheaper = real_tariff("milence_tariffs_france.json", "NLMILT000005", "NL*MIL");
    cheaper.elements[0].price_components[0].price = "0.20".parse().unwrap();
    app.db().store().upsert_tariff(&cheaper, None).unwrap();
    let started = Instant::now();
    loop {
        let body = search(&app, json!({"basis": morning, "first": 1})).await;
        if priced(&body) == expect(&[("NL*MIL*MIL", Some("4"))]) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the tariff change did not reach prices: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Removed: MIL has no price any more.
    app.db().store().remove_tariff("NL*MIL*NLMILT000005").unwrap();
    let started = Instant::now();
    loop {
        let body =
            search(&app, json!({"basis": morning, "filter": {"maxPrice": {"amount": "7", "currency": "EUR"}}})).await;
        if body["data"]["chargers"]["totalCount"] == 3 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the tariff removal did not reach prices: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn price_inputs_are_checked() {
    let Some(app) = app().await else { return };
    let code = |body: &Value| body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none").to_owned();
    let mixed = json!({"filter": {"maxPrice": {"amount": "7", "currency": "EUR"}}, "basis": {"currency": "CHF"}});
    let body = search(&app, mixed).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("different currencies"));
    for bad in [
        json!({"basis": {"energyKwh": 0}}),
        json!({"basis": {"energyKwh": 20, "maxPowerKw": -3}}),
        json!({"basis": {"currency": "EURO"}}),
        json!({"filter": {"maxPrice": {"amount": "-1", "currency": "EUR"}}}),
    ] {
        let body = search(&app, bad.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{bad}: {body}");
    }
    // Pricing every charger in the world is refused: an area or a text is needed.
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": "{ chargers(near: {latitude: 45.76, longitude: 4.83}, sort: PRICE) { totalCount } }"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(code(&response), "BAD_USER_INPUT", "{response}");
    // Map clusters cannot filter by price.
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": "{ chargerClusters(bbox: {south: 45, west: 4, north: 46, east: 5}, zoom: 10, filter: {maxPrice: {amount: \"5\", currency: \"EUR\"}}) { count } }"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(code(&response), "BAD_USER_INPUT", "{response}");
    app.stop().await;
}
