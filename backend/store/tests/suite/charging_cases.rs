//! Charging at rest: driver sessions and their state machine, commands, CPO sessions and CDRs.

use chrono::{Duration, Utc};
use emsp_domain::fixtures::{at, party};
use emsp_domain::{
    AuthMethod, Cdr, CdrId, CdrToken, ChargingEvent, ChargingPhase, CommandResultType, ConnectorId, Currency, EvseUid,
    LocationId, PartyId, Price, Session, SessionId, SessionReport, SessionStatus, TokenType, TokenUid,
};
use emsp_store::{NewCdr, NewCharging, NewCommand, PriceCheck, Store, WriteOutcome};
use rust_decimal::Decimal;

fn new_charging<'a>(id: &'a str, user: &'a str, reference: &'a str, token: &'a str) -> NewCharging<'a> {
    NewCharging {
        id,
        user_id: user,
        partner_id: "partner-1",
        location_key: "NL*ABC*LOC-1",
        evse_uid: "E1",
        connector_id: Some("1"),
        token_uid: token,
        contract_id: "NL-EMS-C00000001-X",
        authorization_reference: reference,
    }
}

/// The CPO reports a session as ACTIVE with 1 kWh.
fn active_report(session_key: &str) -> SessionReport {
    SessionReport {
        session_key: session_key.into(),
        status: SessionStatus::Active,
        kwh: Decimal::ONE,
        cost: None,
        currency: Currency::new("EUR").unwrap(),
        start: at(0),
        end: None,
        last_updated: at(1),
    }
}

fn cpo() -> PartyId {
    party()
}

fn session(id: &str, reference: Option<&str>, kwh: i64, second: i64) -> Session {
    Session {
        party: cpo(),
        id: SessionId::new(id).unwrap(),
        start_date_time: at(0),
        end_date_time: None,
        kwh: Decimal::new(kwh, 0),
        cdr_token: CdrToken {
            party: PartyId::parse("NLEMS").unwrap(),
            uid: TokenUid::new("APP1").unwrap(),
            token_type: TokenType::AppUser,
            contract_id: "NL-EMS-C00000001-X".into(),
        },
        auth_method: AuthMethod::Command,
        authorization_reference: reference.map(str::to_owned),
        location_id: LocationId::new("LOC-1").unwrap(),
        evse_uid: EvseUid::new("E1").unwrap(),
        connector_id: ConnectorId::new("1").unwrap(),
        meter_id: None,
        currency: Currency::new("EUR").unwrap(),
        charging_periods: vec![],
        total_cost: None,
        status: SessionStatus::Active,
        last_updated: at(second),
    }
}

fn cdr(id: &str, session_id: &str) -> Cdr {
    let s = session(session_id, None, 10, 100);
    Cdr {
        party: cpo(),
        id: CdrId::new(id).unwrap(),
        start_date_time: at(0),
        end_date_time: at(3600),
        session_id: Some(s.id.clone()),
        cdr_token: s.cdr_token.clone(),
        auth_method: AuthMethod::Command,
        authorization_reference: None,
        cdr_location: serde_json::json!({"id": "LOC-1"}),
        meter_id: None,
        currency: s.currency.clone(),
        tariffs: vec![],
        charging_periods: vec![],
        signed_data: None,
        total_cost: Price { excl_vat: Decimal::new(500, 2), incl_vat: Some(Decimal::new(605, 2)) },
        total_fixed_cost: None,
        total_energy: Decimal::new(10, 0),
        total_energy_cost: None,
        total_time: Decimal::ONE,
        total_time_cost: None,
        total_parking_time: None,
        total_parking_cost: None,
        total_reservation_cost: None,
        remark: None,
        invoice_reference_id: None,
        credit: None,
        credit_reference_id: None,
        home_charging_compensation: None,
        last_updated: at(3600),
    }
}

pub fn a_driver_session_moves_through_its_states_and_is_announced(store: &Store) {
    let mut updates = store.charging_updates();
    let created = store.create_charging(&new_charging("c1", "user-1", "ref-1", "APP1")).unwrap();
    assert_eq!(created.state.phase, ChargingPhase::Requested);
    assert_eq!(updates.try_recv().unwrap().id, "c1");
    let applied =
        store.apply_charging_event("c1", &ChargingEvent::StartResult(CommandResultType::Accepted)).unwrap().unwrap();
    assert!(applied.changed);
    assert_eq!(applied.record.state.phase, ChargingPhase::Accepted);
    let again =
        store.apply_charging_event("c1", &ChargingEvent::StartResult(CommandResultType::Accepted)).unwrap().unwrap();
    assert!(!again.changed, "a duplicate result changes nothing");
    let updated = updates.try_recv().unwrap();
    assert_eq!((updated.id.as_str(), updated.user_id.as_str()), ("c1", "user-1"));
    assert!(updates.try_recv().is_err(), "no announcement for the duplicate");

    let refused = store.apply_charging_event("c1", &ChargingEvent::StartTimedOut).unwrap().unwrap();
    assert!(!refused.changed);
    let stop = store.apply_charging_event("c1", &ChargingEvent::StopRequested).unwrap().unwrap();
    assert_eq!(stop.record.state.phase, ChargingPhase::Stopping);
    let twice = store.apply_charging_event("c1", &ChargingEvent::StopRequested).unwrap().unwrap();
    assert!(twice.refused.is_some(), "a second stop is refused, not an error of the store");
    assert!(store.apply_charging_event("nope", &ChargingEvent::StartTimedOut).unwrap().is_none());
    assert_eq!(store.get_charging("c1").unwrap().unwrap().state.phase, ChargingPhase::Stopping);
}

pub fn driver_sessions_page_newest_first_per_user(store: &Store) {
    for i in 0..5 {
        let id = format!("c{i}");
        let reference = format!("ref-{i}");
        store.create_charging(&new_charging(&id, "user-1", &reference, "APP1")).unwrap();
    }
    store.create_charging(&new_charging("other", "user-2", "ref-x", "APP2")).unwrap();
    let first = store.charging_of_user("user-1", None, 2).unwrap();
    assert_eq!(first.len(), 2);
    let last = first.last().unwrap();
    let rest = store.charging_of_user("user-1", Some((last.created_at, &last.id)), 10).unwrap();
    assert_eq!(rest.len(), 3);
    let mut seen: Vec<String> = first.iter().chain(rest.iter()).map(|r| r.id.clone()).collect();
    seen.sort();
    assert_eq!(seen, ["c0", "c1", "c2", "c3", "c4"], "every session once, none of another user");
}

pub fn sessions_match_by_reference_then_token(store: &Store) {
    store.create_charging(&new_charging("c1", "user-1", "ref-1", "APP1")).unwrap();
    store.create_charging(&new_charging("c2", "user-1", "ref-2", "APP9")).unwrap();
    let by_ref = store.match_charging("partner-1", Some("ref-2"), None, ("APP1", "x")).unwrap().unwrap();
    assert_eq!(by_ref.id, "c2", "the reference wins over the token");
    let by_token = store.match_charging("partner-1", None, None, ("APP1", "x")).unwrap().unwrap();
    assert_eq!(by_token.id, "c1");
    let by_contract = store.match_charging("partner-1", None, None, ("?", "NL-EMS-C00000001-X")).unwrap().unwrap();
    assert_eq!(by_contract.id, "c2", "2.1.1 knows the contract id only; the newest open request");
    assert!(store.match_charging("partner-2", None, None, ("APP1", "x")).unwrap().is_none(), "other CPO");
    assert!(store.match_charging("partner-1", Some("unknown"), None, ("nobody", "none")).unwrap().is_none());

    // Once linked to a CPO session, the session key finds it and the token no longer does.
    store.apply_charging_event("c1", &ChargingEvent::SessionReport(active_report("NL*ABC*S1"))).unwrap();
    assert_eq!(store.match_charging("partner-1", None, Some("NL*ABC*S1"), ("z", "z")).unwrap().unwrap().id, "c1");
    assert!(store.match_charging("partner-1", None, None, ("APP1", "x")).unwrap().is_none());
}

pub fn commands_record_results_once_and_time_out_once(store: &Store) {
    let deadline = Utc::now() - Duration::seconds(1);
    assert!(!store.charging_has_command("user-1", "c1").unwrap(), "nothing recorded yet");
    for id in ["cmd-1", "cmd-2"] {
        store
            .create_command(&NewCommand {
                id,
                partner_id: "partner-1",
                user_id: Some("user-1"),
                charging_id: Some("c1"),
                command: "START_SESSION",
                reservation_id: None,
                request: "{}",
                deadline,
            })
            .unwrap();
    }
    assert!(store.charging_has_command("user-1", "c1").unwrap());
    assert!(!store.charging_has_command("user-2", "c1").unwrap(), "another driver's session");
    assert!(!store.charging_has_command("user-1", "c2").unwrap());
    store.set_command_response("cmd-1", "ACCEPTED", deadline).unwrap();
    let (record, first) = store.set_command_result("cmd-1", "ACCEPTED").unwrap().unwrap();
    assert!(first);
    assert_eq!((record.response.as_deref(), record.result.as_deref()), (Some("ACCEPTED"), Some("ACCEPTED")));
    let (_, again) = store.set_command_result("cmd-1", "ACCEPTED").unwrap().unwrap();
    assert!(!again, "a repeated result is a duplicate");
    assert!(store.set_command_result("nope", "ACCEPTED").unwrap().is_none());

    let timed_out = store.time_out_commands(Utc::now()).unwrap();
    assert_eq!(timed_out.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["cmd-2"], "only the one without result");
    assert!(store.time_out_commands(Utc::now()).unwrap().is_empty(), "each command times out once");
    // A result after our time limit is still recorded.
    let (late, changed) = store.set_command_result("cmd-2", "ACCEPTED").unwrap().unwrap();
    assert!(changed && late.timed_out_at.is_some());
}

pub fn cpo_sessions_keep_the_newest_and_their_link(store: &Store) {
    let s = session("S1", Some("ref-1"), 1, 10);
    assert_eq!(store.upsert_cpo_session(&s, "partner-1", "2.2.1", Some("c1")).unwrap(), WriteOutcome::Created);
    assert_eq!(store.upsert_cpo_session(&s, "partner-1", "2.2.1", None).unwrap(), WriteOutcome::Unchanged);
    let older = session("S1", Some("ref-1"), 0, 5);
    assert_eq!(store.upsert_cpo_session(&older, "partner-1", "2.2.1", None).unwrap(), WriteOutcome::Unchanged);
    let newer = session("S1", Some("ref-1"), 3, 20);
    assert_eq!(store.upsert_cpo_session(&newer, "partner-1", "2.2.1", None).unwrap(), WriteOutcome::Updated);
    let stored = store.get_cpo_session("nl*abc*s1").unwrap().unwrap();
    assert_eq!(stored.session, newer);
    assert_eq!(stored.charging_id.as_deref(), Some("c1"), "the link survives an update without one");
    assert_eq!(stored.version, "2.2.1");
    assert!(store.get_cpo_session("NL*ABC*S2").unwrap().is_none());
}

pub fn cdrs_are_stored_once_with_their_raw_body_and_price_check(store: &Store) {
    let c = cdr("CDR-1", "S1");
    let raw = r#"{"id":"CDR-1", "signed_data": {"encoding_method":"OCMF","signed_values":[{"nature":"Start","plain_data":"a","signed_data":"MEUCIQ=="}]},  "total_cost":{"excl_vat":5.00}}"#;
    let ours = Price { excl_vat: Decimal::new(520, 2), incl_vat: Some(Decimal::new(629, 2)) };
    let new = NewCdr {
        cdr: &c,
        partner_id: "partner-1",
        version: "2.2.1",
        session_key: Some("NL*ABC*S1"),
        charging_id: Some("c1"),
        raw,
        our_cost: Some(&ours),
        price_check: PriceCheck::Mismatch,
        price_note: Some("ours 5.20, theirs 5.00"),
    };
    assert!(store.insert_cdr(&new).unwrap());
    assert!(!store.insert_cdr(&new).unwrap(), "a duplicate POST stores nothing");
    let stored = store.get_cdr("nl*abc*cdr-1").unwrap().unwrap();
    assert_eq!(stored.cdr, c);
    assert_eq!(stored.raw, raw, "byte for byte");
    assert_eq!(stored.our_cost, Some(ours));
    assert_eq!(stored.price_check, PriceCheck::Mismatch);
    assert_eq!(store.cdrs_of_charging("c1").unwrap().len(), 1);
    assert_eq!(store.cdrs_with_price_check(PriceCheck::Mismatch, 10).unwrap().len(), 1);
    assert!(store.cdrs_with_price_check(PriceCheck::Match, 10).unwrap().is_empty());
}

pub fn reservations_pair_each_reserve_with_its_newest_cancel(store: &Store) {
    let deadline = Utc::now() + Duration::seconds(30);
    let command = |id: &'static str, user: &'static str, command: &'static str, reservation: &'static str| {
        store
            .create_command(&NewCommand {
                id,
                partner_id: "partner-1",
                user_id: Some(user),
                charging_id: None,
                command,
                reservation_id: Some(reservation),
                request: "{}",
                deadline,
            })
            .unwrap();
        // Distinct creation times, so "newest" is well defined.
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    command("r-1", "user-1", "RESERVE_NOW", "11");
    command("r-2", "user-1", "RESERVE_NOW", "22");
    command("c-1a", "user-1", "CANCEL_RESERVATION", "11");
    command("c-1b", "user-1", "CANCEL_RESERVATION", "11");
    command("r-3", "user-2", "RESERVE_NOW", "33");
    command("c-3", "user-2", "CANCEL_RESERVATION", "22");

    let mine = store.reservations_of_user("user-1", 10).unwrap();
    let pairs: Vec<_> = mine.iter().map(|(r, c)| (r.id.as_str(), c.as_ref().map(|c| c.id.as_str()))).collect();
    assert_eq!(pairs, [("r-2", None), ("r-1", Some("c-1b"))], "newest first; another driver's cancel is not mine");
    assert_eq!(store.reservations_of_user("user-1", 1).unwrap().len(), 1);
    assert!(store.reservations_of_user("nobody", 10).unwrap().is_empty());
}

pub fn the_first_reported_session_at_a_charger_is_found_in_a_window(store: &Store) {
    let before = Utc::now() - Duration::minutes(1);
    // Requested only (the CPO never reported it): does not count.
    store.create_charging(&new_charging("c1", "user-1", "ref-1", "APP1")).unwrap();
    assert_eq!(store.reported_chargings_of_user("user-1", before).unwrap(), vec![]);
    let created = store.create_charging(&new_charging("c2", "user-1", "ref-2", "APP1")).unwrap();
    store.apply_charging_event("c2", &ChargingEvent::SessionReport(active_report("NL*ABC*S2"))).unwrap();
    let reported = store.reported_chargings_of_user("user-1", before).unwrap();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!((reported[0].location_key.as_str(), reported[0].evse_uid.as_str()), ("NL*ABC*LOC-1", "E1"));
    assert_eq!(reported[0].requested_at.timestamp_micros(), created.created_at.timestamp_micros());
    assert!(store.reported_chargings_of_user("user-2", before).unwrap().is_empty(), "another driver's");
    let later = Utc::now() + Duration::minutes(1);
    assert!(store.reported_chargings_of_user("user-1", later).unwrap().is_empty(), "before the window");
}

pub fn location_keys_are_found_for_many_partner_locations_at_once(store: &Store) {
    let partner = |name: &str| {
        let new = emsp_store::NewPartner {
            name,
            status: emsp_store::PartnerStatus::Registered,
            versions_url: None,
            incoming_token: None,
            outgoing_token: None,
        };
        store.create_partner(&new).unwrap().id
    };
    let (one, two) = (partner("CPO one"), partner("CPO two"));
    let asked = vec![(one.clone(), "LOC-1".to_owned()), (one.clone(), "NOPE".to_owned())];
    assert!(store.location_keys_of_partners(&asked).unwrap().is_empty(), "no locations yet");
    store.upsert_location(&emsp_domain::fixtures::location("LOC-1", 52.0, 4.0), Some(&one)).unwrap();
    store.upsert_location(&emsp_domain::fixtures::location("LOC-2", 52.1, 4.1), Some(&one)).unwrap();
    let found = store.location_keys_of_partners(&asked).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[&asked[0]], "NL*ABC*LOC-1");
    let other = vec![(two, "LOC-1".to_owned())];
    assert!(store.location_keys_of_partners(&other).unwrap().is_empty(), "another partner's location id");
}
