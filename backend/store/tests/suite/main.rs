#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The repository test suite, written once and run on every backend: each case is a function of a
//! `&Store`, instantiated below for SQLite and for PostgreSQL (each test in its own database or
//! schema, so they run in parallel). Without a `postgres://` `DATABASE_URL` the PostgreSQL
//! instances return at once; `EMSP_REQUIRE_POSTGRES=1` turns that into a failure.

mod cases;

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
    removing_a_location_feeds_the_index,
    locations_page_walks_every_location_once,
    change_feed_is_resumable_and_prunable,
    concurrent_writers_never_let_a_follower_skip_a_change,
    tariff_round_trip_and_unchanged_skip,
    partner_tokens_are_hashed_and_sealed,
    partner_registration_parties_and_pull_status,
    users_are_found_by_id_and_email_in_any_case,
    a_taken_email_is_a_conflict_not_a_panic,
    refresh_tokens_are_hashed_and_rotate_once,
    a_refresh_token_is_spent_once_under_concurrent_use,
    signing_keys_are_sealed_and_retire,
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
