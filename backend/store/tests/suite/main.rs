#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The repository test suite, written once and run on every backend: each case is a function of a
//! `&Store`, instantiated below for SQLite and for PostgreSQL (each test in its own database or
//! schema, so they run in parallel). Without a `postgres://` `DATABASE_URL` the PostgreSQL
//! instances return at once; `EMSP_REQUIRE_POSTGRES=1` turns that into a failure.

mod cases;
mod charging_cases;
mod fleet_cdr_cases;
mod invoice_cases;
mod token_cases;

macro_rules! store_test_suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    let db = emsp_store::testing::TestDb::sqlite();
                    super::cases::$case(db.store());
                }
            )*
        }

        mod postgres {
            $(
                #[test]
                fn $case() {
                    let Some(db) = emsp_store::testing::TestDb::postgres() else { return };
                    super::cases::$case(db.store());
                }
            )*
        }
    };
}

store_test_suite!(
    migrations_are_applied_once,
    location_round_trips_with_evse_order_and_case_insensitive_key,
    rewriting_the_same_content_is_skipped,
    update_replaces_evses_and_connectors,
    a_batch_upsert_keeps_the_good_locations,
    a_batch_upsert_writes_children_and_feeds_each_change,
    party_staleness_is_stored_and_fed,
    invalid_location_is_rejected_and_nothing_is_stored,
    evse_status_change_bumps_the_location_and_feeds_the_index,
    a_batch_of_status_changes_has_one_outcome_each_and_feeds_them_in_order,
    removing_a_location_feeds_the_index,
    locations_page_walks_every_location_once,
    change_feed_is_resumable_and_prunable,
    concurrent_writers_never_let_a_follower_skip_a_change,
    tariff_round_trip_and_unchanged_skip,
    partner_tokens_are_hashed_and_sealed,
    tokens_are_read_many_at_once_with_their_owners_state,
    partner_registration_parties_and_pull_status,
    users_are_found_by_id_and_email_in_any_case,
    a_taken_email_is_a_conflict_not_a_panic,
    refresh_tokens_are_hashed_and_rotate_once,
    a_refresh_token_is_spent_once_under_concurrent_use,
    signing_keys_are_sealed_and_retire,
    fleets_and_their_members_round_trip,
    a_preview_is_replaced_and_an_issued_month_is_never_billed_twice,
    issued_invoices_never_change,
    invoice_numbers_have_no_gaps_when_runs_race,
    a_fleet_manager_sees_only_issued_documents_of_their_fleets,
    a_driver_session_moves_through_its_states_and_is_announced,
    driver_sessions_page_newest_first_per_user,
    sessions_match_by_reference_then_token,
    commands_record_results_once_and_time_out_once,
    reservations_pair_each_reserve_with_its_newest_cancel,
    the_first_reported_session_at_a_charger_is_found_in_a_window,
    location_keys_are_found_for_many_partner_locations_at_once,
    cpo_sessions_keep_the_newest_and_their_link,
    cdrs_are_stored_once_with_their_raw_body_and_price_check,
    tokens_round_trip_and_a_uid_is_unique_per_party_in_any_case,
    the_app_token_is_issued_once_with_an_emaid,
    concurrent_first_requests_issue_one_app_token,
    authorizations_are_found_by_their_reference,
    payments_round_trip_and_are_found_by_intent,
    a_payment_event_is_applied_once,
    concurrent_deliveries_of_one_event_apply_it_once,
    payments_in_phases_are_listed_oldest_first,
    an_ad_hoc_request_is_claimed_once_and_found_by_its_session,
    a_driver_keeps_the_first_payment_customer,
    tokens_are_searched_paged_and_changed_with_an_audit_trail,
    token_push_marks_keep_the_oldest_change_until_a_clean_repush,
    bulk_inserts_are_one_batch,
    a_fleets_cdrs_are_found_through_its_tokens_until_an_issued_document_bills_them,
    cdrs_that_came_before_their_token_join_its_fleet_when_it_is_added,
    a_card_moved_to_another_fleet_leaves_its_earlier_cdrs_behind,
);

#[test]
fn a_store_without_a_key_refuses_to_keep_partner_tokens() {
    let folder = std::env::temp_dir().join(format!("emsp-nokey-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let url = emsp_store::DatabaseUrl::parse(&format!("sqlite://{}", folder.join("db.sqlite").display())).unwrap();
    let store = emsp_store::Store::open(emsp_store::StoreOptions::new(url)).unwrap();
    store.migrate().unwrap();
    let err = store
        .create_partner(&emsp_store::NewPartner {
            name: "cpo",
            status: emsp_store::PartnerStatus::Registered,
            versions_url: None,
            incoming_token: Some("c"),
            outgoing_token: Some("b"),
        })
        .unwrap_err();
    assert!(err.to_string().contains("EMSP_SECRET_KEY"), "{err}");
    std::fs::remove_dir_all(&folder).unwrap();
}

/// The pool hands out a recently used connection without a `SELECT 1`; a connection the server
/// killed must then cost at most the one call that found it, never every call after it.
#[test]
fn a_killed_connection_fails_at_most_the_call_that_found_it() {
    use diesel::{Connection, RunQueryDsl};

    let Some(db) = emsp_store::testing::TestDb::postgres() else { return };
    let name = format!("emsp_pool_{}", uuid::Uuid::new_v4().simple());
    let url = emsp_store::DatabaseUrl::parse(&format!("{}&application_name={name}", db.url())).unwrap();
    let mut options = emsp_store::StoreOptions::new(url);
    options.pool_size = 3;
    let store = emsp_store::Store::open(options).unwrap();
    // Three connections, all in use within the last second.
    let held: Vec<_> = (0..3).map(|_| store.conn().unwrap()).collect();
    drop(held);
    assert!(store.get_token("NOPE").unwrap().is_none());

    let mut admin = diesel::pg::PgConnection::establish(&emsp_store::testing::postgres_url().unwrap()).unwrap();
    let killed = diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
    ))
    .execute(&mut admin)
    .unwrap();
    assert_eq!(killed, 3, "the pool's three connections are killed");

    let results: Vec<_> = (0..6).map(|_| store.get_token("NOPE")).collect();
    let failures = results.iter().filter(|r| r.is_err()).count();
    assert!(failures <= 1, "{failures} calls failed after the kill: {results:?}");
    assert!(results[1..].iter().all(Result::is_ok), "every call after the first works: {results:?}");
}
