//! Status pushes, random and replayed, and the simulator's own state staying consistent.

use emsp_cpo_sim::{SimOptions, StatusSource};

use crate::emsp::{EmspConfig, TestEmsp};
use crate::helpers::{get, module_url, options, register, sim};

const STATUSES: [&str; 9] =
    ["AVAILABLE", "BLOCKED", "CHARGING", "INOPERATIVE", "OUTOFORDER", "PLANNED", "REMOVED", "RESERVED", "UNKNOWN"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_status_pushes_reach_the_emsp_receiver() {
    let sim = sim(SimOptions { status_rate_per_s: 50.0, ..options(20) }).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    register(&sim, &emsp).await;
    let pushes = emsp.wait_for("PATCH", "/ocpi/2.2.1/locations/NL/SIM/", 5).await;
    let evses = sim.evses();
    for push in &pushes {
        let rest = push.path.trim_start_matches("/ocpi/2.2.1/locations/NL/SIM/");
        let (location_id, evse_uid) = rest.split_once('/').unwrap();
        assert!(evses.contains(&(location_id.to_owned(), evse_uid.to_owned())), "{rest}");
        assert!(STATUSES.contains(&push.body["status"].as_str().unwrap()));
        assert!(push.body["last_updated"].is_string());
        assert_eq!(push.body.as_object().unwrap().len(), 2, "status and last_updated only");
    }
    // The simulator counts a push once the EMSP's answer is back, a moment after the EMSP saw it.
    for _ in 0..100 {
        if sim.received().status_pushes >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(sim.received().status_pushes >= 5);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_statuses_map_round_robin_and_a_get_shows_them() {
    let dir = std::env::temp_dir().join(format!("cpo-sim-replay-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("status.csv");
    std::fs::write(&file, "id;status;parkingsensor_status;timestamp\nDE*X*1;OUTOFORDER;-;2022-01-11 21:58:22+01:00\n")
        .unwrap();
    let sim =
        sim(SimOptions { status_rate_per_s: 40.0, status_source: StatusSource::Replay(file), ..options(3) }).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token = register(&sim, &emsp).await;
    let (location_id, evse_uid) = sim.evses().into_iter().next().unwrap();
    let pushes = emsp.wait_for("PATCH", &format!("/ocpi/2.2.1/locations/NL/SIM/{location_id}/{evse_uid}"), 2).await;
    assert!(pushes.iter().all(|p| p.body["status"] == "OUTOFORDER"));
    let evse = get(&format!("{}/{location_id}/{evse_uid}", module_url(&sim, "locations")), &token).await;
    assert_eq!(evse.body["data"]["status"], "OUTOFORDER");
    let last_push = emsp.matching("PATCH", &format!("/ocpi/2.2.1/locations/NL/SIM/{location_id}/{evse_uid}"));
    assert!(evse.body["data"]["last_updated"].as_str().unwrap() >= pushes[0].body["last_updated"].as_str().unwrap());
    assert!(!last_push.is_empty());
    // The location's last_updated moved too, so a date_from pull picks the change up.
    let location = get(&format!("{}/{location_id}", module_url(&sim, "locations")), &token).await;
    assert!(location.body["data"]["last_updated"].as_str().unwrap() > "2026-01-01T00:00:00Z");
    sim.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_sample_replays_from_its_first_event() {
    let sim =
        sim(SimOptions { status_rate_per_s: 50.0, status_source: StatusSource::ReplaySample, ..options(50) }).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    register(&sim, &emsp).await;
    let pushes = emsp.wait_for("PATCH", "/ocpi/2.2.1/locations/NL/SIM/", 3).await;
    let evses = sim.evses();
    // Sample rows 1-3: E00025*001 RESERVED, E00025*002 RESERVED, E00095*001 CHARGING -> EVSEs 0, 1, 2.
    let expected = [("RESERVED", 0), ("RESERVED", 1), ("CHARGING", 2)];
    for (push, (status, index)) in pushes.iter().zip(expected) {
        let (location_id, evse_uid) = &evses[index];
        assert_eq!(push.path, format!("/ocpi/2.2.1/locations/NL/SIM/{location_id}/{evse_uid}"));
        assert_eq!(push.body["status"], status);
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_pushed_on_demand_reaches_the_emsp_and_the_served_location() {
    let sim = sim(options(4)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    let token = register(&sim, &emsp).await;
    let (location_id, evse_uid) = sim.evses().into_iter().last().unwrap();
    assert!(sim.push_status(&location_id, &evse_uid, "BLOCKED").await);
    assert!(!sim.push_status(&location_id, "nope", "BLOCKED").await);
    let pushed = emsp.matching("PATCH", &format!("/ocpi/2.2.1/locations/NL/SIM/{location_id}/{evse_uid}"));
    assert_eq!(pushed.len(), 1, "delivered before push_status returns");
    assert_eq!(pushed[0].body["status"], "BLOCKED");
    assert_eq!(pushed[0].header("authorization"), Some(crate::helpers::auth(&emsp.token_b).as_str()));
    let evse = get(&format!("{}/{location_id}/{evse_uid}", module_url(&sim, "locations")), &token).await;
    assert_eq!(evse.body["data"]["status"], "BLOCKED");
    assert_eq!(evse.body["data"]["last_updated"], pushed[0].body["last_updated"]);
    assert_eq!(sim.received().status_pushes, 1);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_locations_and_tariffs_are_put_on_demand() {
    let sim = sim(options(3)).await;
    let emsp = TestEmsp::start(EmspConfig::default()).await;
    register(&sim, &emsp).await;
    let (location_id, _) = sim.evses().into_iter().next().unwrap();
    assert!(sim.push_location(&location_id).await.unwrap());
    assert!(!sim.push_location("NOPE").await.unwrap());
    let put = emsp.matching("PUT", &format!("/ocpi/2.2.1/locations/NL/SIM/{location_id}"));
    assert_eq!(put.len(), 1);
    assert_eq!(put[0].body, sim.location(&location_id).unwrap());
    let tariff_id =
        sim.location(&location_id).unwrap()["evses"][0]["connectors"][0]["tariff_ids"][0].as_str().unwrap().to_owned();
    assert!(sim.push_tariff(&tariff_id).await.unwrap());
    let put = emsp.matching("PUT", &format!("/ocpi/2.2.1/tariffs/NL/SIM/{tariff_id}"));
    assert_eq!(put[0].body["id"], tariff_id.as_str());
    sim.stop().await;
}
