//! Against the CPO simulator over real HTTP: registration both ways, paginated full and incremental
//! pulls, a partner that fails (nothing lost), broken Link headers, and status pushes into search.

use std::time::{Duration, Instant};

use emsp_cpo_sim::{LinkFault, RunningSim, SimData, SimOptions};
use emsp_roaming::pull::{PullOptions, pull_partner};
use emsp_roaming::{RoamingError, register_with_partner};
use emsp_store::{ChangeKind, PartnerStatus};
use emsp_tests::{TestApp, TestBackend};

async fn sim(locations: usize, page_limit: usize, status_rate_per_s: f64) -> RunningSim {
    emsp_cpo_sim::start(SimOptions {
        data: SimData::Generated { locations },
        page_limit,
        status_rate_per_s,
        seed: 7,
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn registered(app: &TestApp, sim: &RunningSim) -> String {
    let outcome =
        register_with_partner(&app.roaming(), "simulated CPO", &sim.versions_url, &sim.token_a).await.unwrap();
    assert_eq!(outcome.version, "2.2.1");
    assert!(outcome.endpoints.iter().any(|e| e.identifier == "locations"), "{:?}", outcome.endpoints);
    assert!(outcome.parties.iter().any(|p| p.party_id == "SIM" && p.role == "CPO"), "{:?}", outcome.parties);
    outcome.partner_id
}

async fn pulls(backend: TestBackend) {
    let Some(app) = TestApp::start(backend).await else { return };
    let cpo = sim(120, 25, 0.0).await;
    let partner = registered(&app, &cpo).await;
    assert!(cpo.received().peer.is_some(), "the simulator holds our credentials");

    let report = pull_partner(&app.roaming(), &partner, &PullOptions { full: true, ..Default::default() }, &|_| {})
        .await
        .unwrap();
    let locations = report.locations.unwrap();
    assert_eq!(locations.pages, 5, "120 locations in pages of 25: {locations:?}");
    assert_eq!((locations.received, locations.created, locations.skipped), (120, 120, 0));
    assert_eq!(locations.total_count, Some(120));
    assert!(report.tariffs.unwrap().created > 0);
    let store = app.db().store();
    assert_eq!(store.count_locations().unwrap(), 120);
    let index = app.index();
    eventually("every pulled location searchable", || index.stats().locations == 120).await;

    // Incremental: only what changed since the start of the last pull.
    let again = pull_partner(&app.roaming(), &partner, &PullOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(again.locations.unwrap().received, 0, "date_from asks for changes only");
    let full_again = pull_partner(&app.roaming(), &partner, &PullOptions { full: true, ..Default::default() }, &|_| {})
        .await
        .unwrap();
    let full_again = full_again.locations.unwrap();
    assert_eq!(
        (full_again.received, full_again.unchanged, full_again.created),
        (120, 120, 0),
        "unchanged writes skipped"
    );

    // A partner that fails: the pull errs, the last success stays, the next cycle catches up.
    let before = store.get_partner(&partner).unwrap().unwrap().last_pull_at;
    cpo.faults().fail_next(1);
    let failed = pull_partner(&app.roaming(), &partner, &PullOptions::default(), &|_| {}).await;
    assert!(matches!(failed, Err(RoamingError::Http { status: 500, .. })), "{failed:?}");
    let after = store.get_partner(&partner).unwrap().unwrap();
    assert_eq!(after.last_pull_at, before, "a failed pull does not move date_from");
    assert!(after.last_error.is_some());
    pull_partner(&app.roaming(), &partner, &PullOptions::default(), &|_| {}).await.unwrap();
    assert!(store.get_partner(&partner).unwrap().unwrap().last_error.is_none());

    cpo.faults().set_malformed_json(true);
    let malformed = pull_partner(&app.roaming(), &partner, &PullOptions::default(), &|_| {}).await;
    assert!(matches!(malformed, Err(RoamingError::Malformed { .. })), "{malformed:?}");
    cpo.faults().reset();

    // A Link header that points back at the same page stops the pull instead of looping.
    cpo.faults().set_link(LinkFault::Loop);
    let looped = pull_partner(&app.roaming(), &partner, &PullOptions { full: true, ..Default::default() }, &|_| {})
        .await
        .unwrap();
    let looped = looped.locations.unwrap();
    // The first URL is the bare endpoint, the looping link its explicit form: at most two pages.
    assert!(looped.pages <= 2, "{looped:?}");
    assert!(looped.cut_short.is_some_and(|why| why.contains("points back")));
    assert_eq!(store.count_locations().unwrap(), 120, "nothing lost");
    cpo.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn pulls_on_sqlite() {
    pulls(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn pulls_on_postgres() {
    pulls(TestBackend::Postgres).await;
}

/// The other direction: the CPO registers with us using the token A we gave it.
#[tokio::test]
async fn the_simulator_registers_with_us() {
    let Some(app) = TestApp::start(TestBackend::Sqlite).await else { return };
    let cpo = sim(10, 50, 0.0).await;
    let (invited, token_a) = emsp_roaming::invite_partner(app.db().store(), "CPO registering with us").unwrap();
    cpo.register_with(&app.url("/ocpi/versions"), &token_a).await.unwrap();
    let partner = app.db().store().get_partner(&invited.id).unwrap().unwrap();
    assert_eq!(partner.status, PartnerStatus::Registered);
    assert_eq!(partner.version.as_deref(), Some("2.2.1"));
    assert_eq!(partner.versions_url.as_deref(), Some(cpo.versions_url.as_str()));
    let parties = app.db().store().partner_parties(&invited.id).unwrap();
    assert!(parties.iter().any(|p| p.party_id == "SIM"), "{parties:?}");
    // And we can pull from it with the token it gave us.
    let report = pull_partner(&app.roaming(), &invited.id, &PullOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(report.locations.unwrap().created, 10);
    cpo.stop().await;
    app.stop().await;
}

/// EVSE status PATCHes pushed by the CPO reach the store and the search index.
#[tokio::test]
async fn status_pushes_reach_search() {
    let Some(app) = TestApp::start(TestBackend::Sqlite).await else { return };
    let cpo = sim(20, 50, 40.0).await;
    let partner = registered(&app, &cpo).await;
    pull_partner(&app.roaming(), &partner, &PullOptions { full: true, ..Default::default() }, &|_| {}).await.unwrap();
    // Pushes for locations we had not pulled yet are refused (2003), rightly; after the pull, none.
    let failures_before = cpo.received().push_failures;
    let pushes_before = cpo.received().status_pushes;
    let store = app.db().store();
    eventually("status pushes delivered", || cpo.received().status_pushes >= pushes_before + 20).await;
    let snapshot: Vec<(String, String, Option<String>)> = cpo
        .evses()
        .into_iter()
        .map(|(location, uid)| {
            let status = cpo.location(&location).and_then(|l| {
                l["evses"].as_array()?.iter().find(|e| e["uid"] == uid.as_str())?["status"].as_str().map(str::to_owned)
            });
            (location, uid, status)
        })
        .collect();
    let received = cpo.received();
    cpo.stop().await;
    assert_eq!(received.push_failures, failures_before, "no push fails once the locations are known");
    let changes = store.changes_since(0, 100_000).unwrap();
    assert!(changes.iter().filter(|c| c.kind == ChangeKind::EvseStatus).count() >= 5, "status changes in the feed");

    // Our store follows the CPO (a push in flight when the snapshot was taken may differ).
    let mut same = 0;
    for (location, uid, status) in &snapshot {
        let ours = store.get_location(&format!("NL*SIM*{}", location.to_ascii_uppercase())).unwrap().unwrap();
        let evse = ours.evses.iter().find(|e| e.uid.as_str().eq_ignore_ascii_case(uid)).unwrap();
        if Some(evse.status.as_str()) == status.as_deref() {
            same += 1;
        }
    }
    assert!(same * 10 >= snapshot.len() * 9, "{same} of {} EVSEs agree", snapshot.len());

    // And search follows the store.
    let index = app.index();
    let latest = store.latest_change_seq().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.latest_change_seq().unwrap(), latest);
    for location in store.locations_page(None, 1000).unwrap() {
        let available = location.evses.iter().filter(|e| e.status == emsp_domain::EvseStatus::Available).count();
        let query = emsp_search_index::SearchQuery {
            location_id: Some(location.key()),
            sort: emsp_search_index::SortBy::MaxPower,
            ..Default::default()
        };
        let hits = index.search(&query, None).unwrap().hits;
        assert_eq!(hits.len(), 1, "{}", location.key());
        assert_eq!(hits[0].location.available_evses as usize, available, "{}", location.key());
    }
    app.stop().await;
}

/// OCPI 2.1.1 peers are still common: plain tokens, 2.1.1 objects without party fields.
#[tokio::test]
async fn an_ocpi_2_1_1_cpo() {
    let Some(app) = TestApp::start(TestBackend::Sqlite).await else { return };
    let cpo = emsp_cpo_sim::start(SimOptions {
        party: ("DE".into(), "OLD".into()),
        version: emsp_cpo_sim::SimVersion::V2_1_1,
        data: SimData::Generated { locations: 30 },
        page_limit: 10,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let outcome = register_with_partner(&app.roaming(), "old CPO", &cpo.versions_url, &cpo.token_a).await.unwrap();
    assert_eq!(outcome.version, "2.1.1");
    assert!(outcome.endpoints.iter().all(|e| e.role.is_none()), "2.1.1 endpoints have no roles");
    let report = pull_partner(&app.roaming(), &outcome.partner_id, &PullOptions::default(), &|_| {}).await.unwrap();
    let locations = report.locations.unwrap();
    assert_eq!((locations.pages, locations.created, locations.skipped), (3, 30, 0));
    let stored = app.db().store().locations_page(None, 100).unwrap();
    assert!(stored.iter().all(|l| l.party.to_string() == "DE*OLD"), "the party comes from the connection");
    cpo.stop().await;
    app.stop().await;
}
