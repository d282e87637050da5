//! The cases of the repository suite; each runs on every backend.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::prelude::*;
use emsp_domain::{EvseStatus, EvseUid};
use emsp_store::schema::{connectors, evses, partners};
use emsp_store::{
    ChangeKind, Endpoint, EvseStatusUpdate, NewPartner, PartnerParty, PartnerStatus, Registration, Store, StoreError,
    WriteOutcome,
};

use emsp_domain::fixtures::{at, location, tariff};

pub use super::invoice_cases::*;
pub use crate::charging_cases::*;
pub use crate::fleet_cdr_cases::*;
pub use crate::token_cases::*;

fn feed_kinds(store: &Store) -> Vec<(ChangeKind, String)> {
    store.changes_since(0, 1000).unwrap().into_iter().map(|c| (c.kind, c.entity_key)).collect()
}

pub fn migrations_are_applied_once(store: &Store) {
    assert!(store.pending_migrations().unwrap().is_empty());
    assert!(store.migrate().unwrap().is_empty(), "a second run applies nothing");
}

pub fn location_round_trips_with_evse_order_and_case_insensitive_key(store: &Store) {
    let loc = location("loc-1", 52.3791, 4.9003);
    assert_eq!(store.upsert_location(&loc, None).unwrap(), WriteOutcome::Created);
    let stored = store.get_location("nl*abc*LOC-1").unwrap().expect("found by any case");
    assert_eq!(stored, loc, "every field survives, EVSEs in the partner's order, unknown enum values kept");
    assert_eq!(store.count_locations().unwrap(), 1);
    assert!(store.get_location("NL*ABC*nope").unwrap().is_none());
    let batch = store.get_locations(&["NL*ABC*LOC-1".to_owned(), "NL*ABC*NOPE".to_owned()]).unwrap();
    assert_eq!(batch, vec![loc], "batch reads assemble the same location");
}

pub fn rewriting_the_same_content_is_skipped(store: &Store) {
    let mut loc = location("loc-1", 52.0, 4.0);
    store.upsert_location(&loc, None).unwrap();
    loc.last_updated = at(3600);
    loc.evses[0].last_updated = at(3600);
    assert_eq!(store.upsert_location(&loc, None).unwrap(), WriteOutcome::Unchanged);
    assert_eq!(feed_kinds(store).len(), 1, "no change event for a write that changed nothing");
    loc.name = Some("Renamed".into());
    assert_eq!(store.upsert_location(&loc, None).unwrap(), WriteOutcome::Updated);
    assert_eq!(feed_kinds(store).len(), 2);
    assert_eq!(store.get_location(&loc.key()).unwrap().unwrap().name.as_deref(), Some("Renamed"));
}

pub fn update_replaces_evses_and_connectors(store: &Store) {
    let mut loc = location("loc-1", 52.0, 4.0);
    store.upsert_location(&loc, None).unwrap();
    loc.evses.remove(1);
    loc.evses[0].connectors[0].max_electric_power = Some(300_000);
    store.upsert_location(&loc, None).unwrap();
    let stored = store.get_location(&loc.key()).unwrap().unwrap();
    assert_eq!(stored.evses.len(), 1);
    assert_eq!(stored.max_power_kw(), 300.0);
    let mut conn = store.conn().unwrap();
    let evse_count: i64 = evses::table.count().get_result(&mut *conn).unwrap();
    let connector_rows: Vec<(String, f64)> =
        connectors::table.select((connectors::evse_uid, connectors::max_power_kw)).load(&mut *conn).unwrap();
    assert_eq!(evse_count, 1, "EVSE rows of the old version are gone");
    assert_eq!(connector_rows, vec![("2".to_owned(), 300.0)], "connector rows follow the new version");
}

pub fn a_batch_upsert_keeps_the_good_locations(store: &Store) {
    let mut bad = location("bad", 52.0, 4.0);
    bad.coordinates.latitude = 0.0;
    bad.coordinates.longitude = 0.0;
    let batch = vec![location("a", 52.0, 4.0), bad, location("b", 52.1, 4.1)];
    let outcomes = store.upsert_locations(&batch, None);
    assert!(matches!(outcomes[0], Ok(WriteOutcome::Created)));
    assert!(matches!(outcomes[1], Err(StoreError::Invalid(_))));
    assert!(matches!(outcomes[2], Ok(WriteOutcome::Created)));
    assert_eq!(store.count_locations().unwrap(), 2);
    let again = store.upsert_locations(&batch, None);
    assert!(matches!(again[0], Ok(WriteOutcome::Unchanged)));
    assert_eq!(feed_kinds(store).len(), 2, "one change per stored location");
}

pub fn invalid_location_is_rejected_and_nothing_is_stored(store: &Store) {
    let mut loc = location("loc-1", 52.0, 4.0);
    loc.coordinates.latitude = 0.0;
    loc.coordinates.longitude = 0.0;
    let err = store.upsert_location(&loc, None).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(ref e) if e.field == "coordinates"), "{err}");
    assert_eq!(store.count_locations().unwrap(), 0);
    assert!(feed_kinds(store).is_empty());
}

pub fn evse_status_change_bumps_the_location_and_feeds_the_index(store: &Store) {
    let loc = location("loc-1", 52.0, 4.0);
    store.upsert_location(&loc, None).unwrap();
    let uid = EvseUid::new("2").unwrap();
    let outcome = store.set_evse_status("nl*abc*loc-1", &uid, &EvseStatus::Charging, at(60)).unwrap();
    assert_eq!(outcome, WriteOutcome::Updated);
    let stored = store.get_location(&loc.key()).unwrap().unwrap();
    assert_eq!(stored.evses[0].status, EvseStatus::Charging);
    assert_eq!(stored.evses[0].last_updated, at(60));
    assert_eq!(stored.last_updated, at(60), "a child's change bumps its parent");

    let last = store.changes_since(0, 100).unwrap().pop().unwrap();
    assert_eq!(last.kind, ChangeKind::EvseStatus);
    assert_eq!(last.entity_key, "NL*ABC*LOC-1");
    assert_eq!(last.payload["evse_uid"], "2");
    assert_eq!(last.payload["status"], "CHARGING");

    let again = store.set_evse_status(&loc.key(), &uid, &EvseStatus::Charging, at(120)).unwrap();
    assert_eq!(again, WriteOutcome::Unchanged);
    let err =
        store.set_evse_status(&loc.key(), &EvseUid::new("9").unwrap(), &EvseStatus::Available, at(1)).unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

pub fn a_batch_of_status_changes_has_one_outcome_each_and_feeds_them_in_order(store: &Store) {
    store.upsert_location(&location("loc-1", 52.0, 4.0), None).unwrap();
    store.upsert_location(&location("loc-2", 52.1, 4.1), None).unwrap();
    let before = store.latest_change_seq().unwrap();
    let update = |key: &str, uid: &str, status: EvseStatus, secs: i64| EvseStatusUpdate {
        location_key: key.to_owned(),
        evse_uid: EvseUid::new(uid).unwrap(),
        status,
        at: at(secs),
    };
    let batch = store
        .set_evse_statuses(&[
            update("nl*abc*loc-1", "1", EvseStatus::Blocked, 60),
            update("NL*ABC*LOC-2", "9", EvseStatus::Charging, 61),
            update("NL*ABC*LOC-2", "2", EvseStatus::Available, 62),
            update("NL*ABC*LOC-1", "1", EvseStatus::Charging, 63),
            update("NL*ABC*LOC-1", "1", EvseStatus::Charging, 64),
        ])
        .unwrap();
    let outcomes: Vec<_> = batch.outcomes.iter().map(|o| o.as_ref().map_err(|e| e.to_string())).collect();
    assert_eq!(outcomes[0], Ok(&WriteOutcome::Updated));
    assert!(outcomes[1].as_ref().is_err_and(|e| e.contains("EVSE 9")), "an unknown EVSE fails alone: {outcomes:?}");
    assert_eq!(outcomes[2], Ok(&WriteOutcome::Unchanged), "loc-2/2 was AVAILABLE already");
    assert_eq!(outcomes[3], Ok(&WriteOutcome::Updated), "a second change of the same EVSE in one batch");
    assert_eq!(outcomes[4], Ok(&WriteOutcome::Unchanged));

    let loc1 = store.get_location("NL*ABC*LOC-1").unwrap().unwrap();
    let evse = loc1.evses.iter().find(|e| e.uid.as_str() == "1").unwrap();
    assert_eq!((evse.status.clone(), evse.last_updated), (EvseStatus::Charging, at(63)));
    assert_eq!(loc1.last_updated, at(63), "the location is bumped to its newest child change");
    let changes = store.changes_since(before, 100).unwrap();
    let feed: Vec<(&str, &str)> =
        changes.iter().map(|c| (c.entity_key.as_str(), c.payload["status"].as_str().unwrap())).collect();
    assert_eq!(feed, vec![("NL*ABC*LOC-1", "BLOCKED"), ("NL*ABC*LOC-1", "CHARGING")], "in push order");
    assert_eq!(batch.last_seq, Some(changes.last().unwrap().seq), "the batch's own last position");

    let nothing = store.set_evse_statuses(&[update("NL*ABC*LOC-1", "1", EvseStatus::Charging, 70)]).unwrap();
    assert_eq!(nothing.last_seq, None, "no change, no position");
}

pub fn removing_a_location_feeds_the_index(store: &Store) {
    let loc = location("loc-1", 52.0, 4.0);
    store.upsert_location(&loc, None).unwrap();
    assert!(store.remove_location("NL*ABC*loc-1").unwrap());
    assert!(!store.remove_location("NL*ABC*loc-1").unwrap());
    assert!(store.get_location(&loc.key()).unwrap().is_none());
    let mut conn = store.conn().unwrap();
    let left: i64 = evses::table.count().get_result(&mut *conn).unwrap();
    assert_eq!(left, 0);
    let kinds: Vec<ChangeKind> = feed_kinds(store).into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(kinds, vec![ChangeKind::LocationUpserted, ChangeKind::LocationRemoved]);
}

pub fn locations_page_walks_every_location_once(store: &Store) {
    for i in 0..23 {
        store.upsert_location(&location(&format!("L{i:02}"), 50.0 + f64::from(i) / 100.0, 4.0), None).unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.locations_page(after.as_deref(), 5).unwrap();
        if page.is_empty() {
            break;
        }
        for loc in &page {
            assert_eq!(loc.evses.len(), 2, "each location comes with its own EVSEs");
        }
        after = page.last().map(|loc| loc.key());
        seen.extend(page.into_iter().map(|loc| loc.key()));
    }
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), 23);
    assert_eq!(unique.len(), 23);
}

pub fn change_feed_is_resumable_and_prunable(store: &Store) {
    for i in 0..5 {
        store.upsert_location(&location(&format!("L{i}"), 51.0, 4.0 + f64::from(i) / 10.0), None).unwrap();
    }
    let all = store.changes_since(0, 100).unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "strictly increasing");
    assert_eq!(store.latest_change_seq().unwrap(), all[4].seq);
    let rest = store.changes_since(all[1].seq, 100).unwrap();
    assert_eq!(rest.iter().map(|c| c.seq).collect::<Vec<_>>(), all[2..].iter().map(|c| c.seq).collect::<Vec<_>>());
    assert_eq!(store.changes_since(all[1].seq, 2).unwrap().len(), 2, "limit is honoured");
    assert_eq!(store.prune_changes(all[2].seq).unwrap(), 3);
    assert_eq!(store.changes_since(0, 100).unwrap().len(), 2);
    assert_eq!(store.latest_change_seq().unwrap(), all[4].seq);
}

/// A follower that tails the feed by sequence number while writers commit concurrently must see
/// every change: on PostgreSQL this fails without the advisory lock around appends.
pub fn concurrent_writers_never_let_a_follower_skip_a_change(store: &Store) {
    let writers: u32 = 4;
    let per_writer: u32 = 25;
    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let store = store.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut last = 0;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = store.changes_since(last, 1000).unwrap();
                if let Some(change) = batch.last() {
                    last = change.seq;
                }
                seen.extend(batch.into_iter().map(|c| c.seq));
                if finished {
                    return seen;
                }
            }
        })
    };
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..per_writer {
                    let loc = location(&format!("W{w}-{i}"), 48.0 + f64::from(w), 2.0 + f64::from(i) / 100.0);
                    store.upsert_location(&loc, None).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = follower.join().unwrap();
    let all: Vec<i64> = store.changes_since(0, 10_000).unwrap().into_iter().map(|c| c.seq).collect();
    assert_eq!(all.len(), (writers * per_writer) as usize);
    assert_eq!(seen, all, "the follower saw every change, in order, exactly once");
}

pub fn tariff_round_trip_and_unchanged_skip(store: &Store) {
    let mut t = tariff("t-1", "0.35");
    assert_eq!(store.upsert_tariff(&t, None).unwrap(), WriteOutcome::Created);
    assert_eq!(store.get_tariff("NL*ABC*T-1").unwrap().unwrap(), t);
    t.last_updated = at(99);
    assert_eq!(store.upsert_tariff(&t, None).unwrap(), WriteOutcome::Unchanged);
    let t2 = tariff("t-1", "0.39");
    assert_eq!(store.upsert_tariff(&t2, None).unwrap(), WriteOutcome::Updated);
    assert_eq!(
        store.get_tariff("nl*abc*t-1").unwrap().unwrap().elements[0].price_components[0].price.to_string(),
        "0.39"
    );
    assert_eq!(store.tariffs_page(None, 10).unwrap().len(), 1);
    assert_eq!(store.get_tariffs(&["NL*ABC*T-1".to_owned(), "NL*ABC*X".to_owned()]).unwrap().len(), 1);
    assert!(store.remove_tariff("NL*ABC*T-1").unwrap());
    assert!(store.get_tariff("NL*ABC*T-1").unwrap().is_none());
    let kinds: Vec<ChangeKind> = feed_kinds(store).into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(kinds, vec![ChangeKind::TariffUpserted, ChangeKind::TariffUpserted, ChangeKind::TariffRemoved]);
}

pub fn partner_tokens_are_hashed_and_sealed(store: &Store) {
    let partner = store
        .create_partner(&NewPartner {
            name: "Example CPO",
            status: PartnerStatus::Invited,
            versions_url: None,
            incoming_token: Some("token-a-secret"),
            outgoing_token: Some("token-b-secret"),
        })
        .unwrap();
    assert_eq!(partner.status, PartnerStatus::Invited);
    assert!(partner.has_outgoing_token());
    assert_eq!(store.find_partner_by_token("token-a-secret").unwrap().unwrap().id, partner.id);
    assert!(store.find_partner_by_token("TOKEN-A-SECRET").unwrap().is_none(), "tokens are case-sensitive");
    assert_eq!(store.outgoing_token(&partner.id).unwrap().as_deref(), Some("token-b-secret"));

    let mut conn = store.conn().unwrap();
    let (hash, sealed): (Option<String>, Option<Vec<u8>>) = partners::table
        .find(&partner.id)
        .select((partners::incoming_token_hash, partners::outgoing_token_enc))
        .first(&mut *conn)
        .unwrap();
    let hash = hash.unwrap();
    let sealed = sealed.unwrap();
    assert_eq!(hash.len(), 64);
    assert!(!hash.contains("token-a"));
    assert!(!sealed.windows(14).any(|w| w == b"token-b-secret"), "stored encrypted, not in plain text");
}

pub fn partner_registration_parties_and_pull_status(store: &Store) {
    let partner = store
        .create_partner(&NewPartner {
            name: "Hub",
            status: PartnerStatus::Invited,
            versions_url: None,
            incoming_token: Some("a"),
            outgoing_token: None,
        })
        .unwrap();
    let endpoints = vec![Endpoint {
        identifier: "locations".into(),
        role: Some("SENDER".into()),
        url: "https://cpo.example/ocpi/2.2.1/locations".into(),
    }];
    store
        .register_partner(
            &partner.id,
            &Registration {
                versions_url: "https://cpo.example/ocpi/versions",
                version: "2.2.1",
                endpoints: &endpoints,
                incoming_token: "c",
                outgoing_token: "b",
            },
        )
        .unwrap();
    assert!(store.find_partner_by_token("a").unwrap().is_none(), "token A stops working once C is issued");
    let registered = store.find_partner_by_token("c").unwrap().unwrap();
    assert_eq!(registered.status, PartnerStatus::Registered);
    assert_eq!(registered.version.as_deref(), Some("2.2.1"));
    assert_eq!(registered.endpoints, endpoints);

    let parties = vec![
        PartnerParty {
            country_code: "nl".into(),
            party_id: "abc".into(),
            role: "CPO".into(),
            name: None,
            status: "CONNECTED".into(),
        },
        PartnerParty {
            country_code: "DE".into(),
            party_id: "XYZ".into(),
            role: "CPO".into(),
            name: Some("X".into()),
            status: "OFFLINE".into(),
        },
    ];
    store.set_partner_parties(&partner.id, &parties).unwrap();
    let stored = store.partner_parties(&partner.id).unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!((stored[1].country_code.as_str(), stored[1].party_id.as_str()), ("NL", "ABC"), "normalised upper case");

    let offline = PartnerParty { status: "OFFLINE".into(), ..parties[0].clone() };
    store.upsert_partner_party(&partner.id, &offline).unwrap();
    let hub_client = PartnerParty {
        country_code: "FR".into(),
        party_id: "NEW".into(),
        role: "CPO".into(),
        name: None,
        status: "PLANNED".into(),
    };
    store.upsert_partner_party(&partner.id, &hub_client).unwrap();
    let stored = store.partner_parties(&partner.id).unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored.iter().find(|p| p.party_id == "ABC").unwrap().status, "OFFLINE", "updated in place");

    store.record_partner_error(&partner.id, "timeout after 30 s").unwrap();
    let failed = store.get_partner(&partner.id).unwrap().unwrap();
    assert_eq!(failed.last_error.as_deref(), Some("timeout after 30 s"));
    assert!(failed.last_pull_at.is_none());
    store.record_pull_success(&partner.id, at(42)).unwrap();
    let ok = store.get_partner(&partner.id).unwrap().unwrap();
    assert_eq!(ok.last_pull_at, Some(at(42).naive_utc()), "the start of the pull, not its end");
    assert!(ok.last_error.is_none());

    assert!(store.set_token_encoding(&partner.id, Some("plain")).unwrap());
    assert_eq!(store.get_partner(&partner.id).unwrap().unwrap().token_encoding.as_deref(), Some("plain"));
    assert!(store.set_token_encoding(&partner.id, Some("rot13")).is_err());
    assert!(store.set_token_encoding(&partner.id, None).unwrap());
    assert!(store.get_partner(&partner.id).unwrap().unwrap().token_encoding.is_none());

    assert!(store.unregister_partner(&partner.id).unwrap());
    assert!(store.find_partner_by_token("c").unwrap().is_none());
    assert_eq!(store.outgoing_token(&partner.id).unwrap(), None);
    assert_eq!(store.list_partners().unwrap().len(), 1);
}

pub(crate) fn new_user<'a>(email: &'a str, role: emsp_store::Role) -> emsp_store::NewUser<'a> {
    emsp_store::NewUser {
        email,
        name: Some("Ada"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        role,
    }
}

pub fn users_are_found_by_id_and_email_in_any_case(store: &Store) {
    let user = store.create_user(&new_user(" Ada@Example.COM ", emsp_store::Role::FleetManager)).unwrap();
    assert_eq!(user.email, "ada@example.com", "stored trimmed and lower-cased");
    assert_eq!(store.get_user(&user.id).unwrap().unwrap(), user);
    let found = store.find_user_by_email("ADA@example.com").unwrap().unwrap();
    assert_eq!(found.id, user.id);
    assert_eq!(found.role, emsp_store::Role::FleetManager);
    assert!(!found.disabled);
    assert!(store.find_user_by_email("bob@example.com").unwrap().is_none());
    assert!(store.get_user("no-such-id").unwrap().is_none());

    assert!(store.set_password_hash(&user.id, "$argon2id$new").unwrap());
    assert_eq!(store.get_user(&user.id).unwrap().unwrap().password_hash, "$argon2id$new");
    assert!(store.set_user_disabled(&user.id, true).unwrap());
    assert!(store.get_user(&user.id).unwrap().unwrap().disabled);
    assert!(!store.set_user_disabled("no-such-id", true).unwrap());
}

pub fn a_taken_email_is_a_conflict_not_a_panic(store: &Store) {
    store.create_user(&new_user("ada@example.com", emsp_store::Role::Driver)).unwrap();
    let err = store.create_user(&new_user("ADA@EXAMPLE.COM", emsp_store::Role::Ops)).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // The store is still usable after the failed insert (no poisoned connection or transaction).
    store.create_user(&new_user("bob@example.com", emsp_store::Role::Driver)).unwrap();
}

pub fn refresh_tokens_are_hashed_and_rotate_once(store: &Store) {
    use emsp_store::RefreshRotation;
    let user = store.create_user(&new_user("ada@example.com", emsp_store::Role::Driver)).unwrap();
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::days(30);
    let family = store.create_refresh_token(&user.id, "first-token", later).unwrap();

    let mut conn = store.conn().unwrap();
    let hashes: Vec<String> = emsp_store::schema::refresh_tokens::table
        .select(emsp_store::schema::refresh_tokens::token_hash)
        .load(&mut *conn)
        .unwrap();
    drop(conn);
    assert_eq!(hashes, vec![emsp_store::hash_token("first-token")], "only the digest is stored");

    let rotated = store.rotate_refresh_token("first-token", "second-token", later, now).unwrap();
    assert_eq!(rotated, RefreshRotation::Rotated { user_id: user.id.clone(), family_id: family.clone() });
    assert_eq!(store.rotate_refresh_token("nope", "x", later, now).unwrap(), RefreshRotation::Unknown);

    // Replaying the spent token revokes the family: the newer token stops working too.
    let reused = store.rotate_refresh_token("first-token", "third-token", later, now).unwrap();
    assert_eq!(reused, RefreshRotation::Reused { user_id: user.id.clone(), family_id: family });
    assert_eq!(store.rotate_refresh_token("second-token", "x", later, now).unwrap(), RefreshRotation::Revoked);
    assert_eq!(
        store.rotate_refresh_token("third-token", "x", later, now).unwrap(),
        RefreshRotation::Unknown,
        "nothing was stored for the replay"
    );

    store.create_refresh_token(&user.id, "short-lived", now + chrono::Duration::seconds(1)).unwrap();
    let after_expiry = now + chrono::Duration::seconds(2);
    assert_eq!(store.rotate_refresh_token("short-lived", "x", later, after_expiry).unwrap(), RefreshRotation::Expired);
    assert_eq!(store.prune_refresh_tokens(now + chrono::Duration::minutes(1)).unwrap(), 1);

    store.create_refresh_token(&user.id, "logged-in", later).unwrap();
    assert!(store.revoke_refresh_family("logged-in").unwrap());
    assert!(!store.revoke_refresh_family("unknown").unwrap());
    assert_eq!(store.rotate_refresh_token("logged-in", "x", later, now).unwrap(), RefreshRotation::Revoked);

    store.create_refresh_token(&user.id, "before-disable", later).unwrap();
    store.set_user_disabled(&user.id, true).unwrap();
    assert_eq!(
        store.rotate_refresh_token("before-disable", "x", later, now).unwrap(),
        RefreshRotation::Revoked,
        "disabling a user revokes its refresh tokens"
    );
}

/// Many threads present the same refresh token at once: exactly one may rotate it, the others
/// see a reuse (and the family is revoked); no error, no second rotation.
pub fn a_refresh_token_is_spent_once_under_concurrent_use(store: &Store) {
    use emsp_store::RefreshRotation;
    let user = store.create_user(&new_user("ada@example.com", emsp_store::Role::Driver)).unwrap();
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    store.create_refresh_token(&user.id, "contended", later).unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                store.rotate_refresh_token("contended", &format!("next-{i}"), later, chrono::Utc::now()).unwrap()
            })
        })
        .collect();
    let outcomes: Vec<RefreshRotation> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let rotated = outcomes.iter().filter(|o| matches!(o, RefreshRotation::Rotated { .. })).count();
    assert_eq!(rotated, 1, "exactly one winner: {outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            RefreshRotation::Rotated { .. } | RefreshRotation::Reused { .. } | RefreshRotation::Revoked
        )),
        "{outcomes:?}"
    );
    let mut conn = store.conn().unwrap();
    let rows: i64 = emsp_store::schema::refresh_tokens::table.count().get_result(&mut *conn).unwrap();
    assert_eq!(rows, 2, "the original and the one replacement");
}

pub fn signing_keys_are_sealed_and_retire(store: &Store) {
    let now = chrono::Utc::now();
    let first =
        emsp_store::NewSigningKey { kid: "k1", algorithm: "EdDSA", private_key: "private-one", public_key: "pub1" };
    store.add_signing_key(&first, now).unwrap();
    let keys = store.signing_keys(now).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].private_key, "private-one");
    assert_eq!(keys[0].retire_after, None);
    assert!(!format!("{:?}", keys[0]).contains("private-one"), "Debug hides the private key");

    let mut conn = store.conn().unwrap();
    let sealed: Vec<u8> = emsp_store::schema::signing_keys::table
        .find("k1")
        .select(emsp_store::schema::signing_keys::private_key_enc)
        .first(&mut *conn)
        .unwrap();
    drop(conn);
    assert!(!sealed.windows(11).any(|w| w == b"private-one"), "stored sealed");

    let retire_at = now + chrono::Duration::minutes(16);
    let second =
        emsp_store::NewSigningKey { kid: "k2", algorithm: "EdDSA", private_key: "private-two", public_key: "pub2" };
    store.add_signing_key(&second, retire_at).unwrap();
    let keys = store.signing_keys(now).unwrap();
    let kids: Vec<(&str, bool)> = keys.iter().map(|k| (k.kid.as_str(), k.retire_after.is_some())).collect();
    assert_eq!(kids, vec![("k2", false), ("k1", true)], "newest first; the old one retires later");
    let after = store.signing_keys(retire_at + chrono::Duration::seconds(1)).unwrap();
    assert_eq!(after.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), vec!["k2"]);
    let err = store.add_signing_key(&second, retire_at).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

fn payment(id: &str) -> emsp_store::PaymentRecord {
    let at = chrono::Utc::now().naive_utc();
    emsp_store::PaymentRecord {
        id: id.to_owned(),
        user_id: Some("driver-1".into()),
        session_id: None,
        currency: "eur".into(),
        hold_amount: 5000,
        phase: "HELD".into(),
        amount_capturable: 0,
        amount_captured: 0,
        amount_refunded: 0,
        disputed: false,
        amount_due: None,
        intent_id: None,
        customer_id: Some("cus_1".into()),
        payment_method_id: Some("pm_card_visa".into()),
        capture_attempt: 0,
        difference_phase: None,
        difference_amount: 0,
        difference_captured: 0,
        difference_intent_id: None,
        difference_attempt: 0,
        last_error: None,
        created_at: at,
        updated_at: at,
    }
}

fn change(record: &emsp_store::PaymentRecord, phase: &str, action: &str) -> emsp_store::PaymentChange {
    emsp_store::PaymentChange {
        record: emsp_store::PaymentRecord { phase: phase.into(), ..record.clone() },
        action: action.into(),
        detail: format!("to {phase}"),
    }
}

pub fn payments_round_trip_and_are_found_by_intent(store: &Store) {
    let created = store.create_payment(&payment("pay-1"), "api", "hold_requested", "hold of 5000 eur").unwrap();
    assert_eq!(store.get_payment("pay-1").unwrap(), Some(created.clone()), "every field survives");
    assert!(matches!(
        store.create_payment(&payment("pay-1"), "api", "hold_requested", "again"),
        Err(StoreError::Conflict(_))
    ));
    let (updated, changed) = store
        .update_payment("pay-1", "api", |current| {
            let mut next = change(current, "CAPTURABLE", "authorized");
            next.record.intent_id = Some("pi_1".into());
            next.record.amount_capturable = 5000;
            Ok(Some(next))
        })
        .unwrap()
        .unwrap();
    assert!(changed);
    assert_eq!(store.find_payment_by_intent("pi_1").unwrap(), Some(updated.clone()));
    assert_eq!(store.find_payment_by_intent("pi_other").unwrap(), None);
    let (same, changed) = store.update_payment("pay-1", "api", |_| Ok(None)).unwrap().unwrap();
    assert!(!changed);
    assert_eq!(same, updated);
    assert!(store.update_payment("nope", "api", |_| Ok(None)).unwrap().is_none());
    let actions: Vec<(String, String)> =
        store.payment_actions("pay-1").unwrap().into_iter().map(|a| (a.actor, a.action)).collect();
    assert_eq!(actions, vec![("api".into(), "hold_requested".into()), ("api".into(), "authorized".into())]);
}

pub fn a_payment_event_is_applied_once(store: &Store) {
    store.create_payment(&payment("pay-2"), "api", "hold_requested", "").unwrap();
    let event = emsp_store::NewWebhookEvent {
        event_id: "evt_1",
        event_type: "payment_intent.amount_capturable_updated",
        created_at: chrono::Utc::now().naive_utc(),
    };
    let lookup = emsp_store::PaymentLookup { payment_id: Some("pay-2"), intent_id: Some("pi_2") };
    let applied =
        store.apply_payment_event(&event, lookup, |p| Ok(Some(change(p, "CAPTURABLE", "authorized")))).unwrap();
    let emsp_store::WebhookApplied::Applied { record, changed: true } = applied else { panic!("{applied:?}") };
    assert_eq!(record.phase, "CAPTURABLE");
    let again = store.apply_payment_event(&event, lookup, |_| panic!("a duplicate is never decided")).unwrap();
    assert_eq!(again, emsp_store::WebhookApplied::Duplicate);
    assert_eq!(store.payment_event_outcome("evt_1").unwrap().as_deref(), Some("APPLIED"));

    // An event about nobody is recorded, so its redeliveries stop at the id.
    let stray = emsp_store::NewWebhookEvent { event_id: "evt_stray", ..event.clone() };
    let nobody = emsp_store::PaymentLookup { payment_id: None, intent_id: Some("pi_unknown") };
    assert_eq!(store.apply_payment_event(&stray, nobody, |_| Ok(None)).unwrap(), emsp_store::WebhookApplied::Unmatched);
    assert_eq!(store.apply_payment_event(&stray, nobody, |_| Ok(None)).unwrap(), emsp_store::WebhookApplied::Duplicate);

    // A change that fails records nothing: the next delivery tries again.
    let failing = emsp_store::NewWebhookEvent { event_id: "evt_2", ..event.clone() };
    let err = store
        .apply_payment_event(&failing, lookup, |_| Err(StoreError::Corrupt { key: "k".into(), reason: "r".into() }))
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }));
    assert_eq!(store.payment_event_outcome("evt_2").unwrap(), None);
    let retried = store.apply_payment_event(&failing, lookup, |p| Ok(Some(change(p, "CAPTURED", "captured")))).unwrap();
    assert!(matches!(retried, emsp_store::WebhookApplied::Applied { changed: true, .. }));
    let webhook_lines = store.payment_actions("pay-2").unwrap().into_iter().filter(|a| a.actor == "webhook").count();
    assert_eq!(webhook_lines, 2);
}

pub fn concurrent_deliveries_of_one_event_apply_it_once(store: &Store) {
    store.create_payment(&payment("pay-3"), "api", "hold_requested", "").unwrap();
    let applied = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let event = emsp_store::NewWebhookEvent {
                    event_id: "evt_race",
                    event_type: "charge.refunded",
                    created_at: chrono::Utc::now().naive_utc(),
                };
                let lookup = emsp_store::PaymentLookup { payment_id: Some("pay-3"), intent_id: None };
                let outcome = store
                    .apply_payment_event(&event, lookup, |p| {
                        let mut next = change(p, "CAPTURED", "refunded");
                        next.record.amount_refunded = p.amount_refunded + 100;
                        Ok(Some(next))
                    })
                    .unwrap();
                if outcome != emsp_store::WebhookApplied::Duplicate {
                    applied.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(applied.load(Ordering::SeqCst), 1);
    assert_eq!(store.get_payment("pay-3").unwrap().unwrap().amount_refunded, 100, "applied exactly once");
}

pub fn payments_in_phases_are_listed_oldest_first(store: &Store) {
    for id in ["old-held", "old-captured", "old-canceled"] {
        store.create_payment(&payment(id), "api", "hold_requested", "").unwrap();
    }
    store.update_payment("old-captured", "api", |p| Ok(Some(change(p, "CAPTURED", "captured")))).unwrap();
    store.update_payment("old-canceled", "api", |p| Ok(Some(change(p, "CANCELED", "canceled")))).unwrap();
    let later = chrono::Utc::now().naive_utc() + chrono::Duration::minutes(1);
    let open: Vec<String> =
        store.payments_in_phases(&["HELD", "CAPTURED"], later, 10).unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(open, vec!["old-held".to_owned(), "old-captured".to_owned()]);
    let earlier = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1);
    assert!(store.payments_in_phases(&["HELD"], earlier, 10).unwrap().is_empty());
}

/// A batch writes created and updated locations with their children, skips unchanged ones, and
/// feeds one change per written location; a key twice in one batch ends as its last version.
pub fn a_batch_upsert_writes_children_and_feeds_each_change(store: &Store) {
    let first = vec![location("a", 52.0, 4.0), location("b", 52.1, 4.1), location("c", 52.2, 4.2)];
    let outcomes: Vec<WriteOutcome> = store.upsert_locations(&first, None).into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes, vec![WriteOutcome::Created; 3]);
    let mut second = first.clone();
    second[0].evses.remove(1);
    second[0].evses[0].connectors[0].max_electric_power = Some(300_000);
    second[1].last_updated = at(7200);
    second.push(location("d", 52.3, 4.3));
    let outcomes: Vec<WriteOutcome> = store.upsert_locations(&second, None).into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        vec![WriteOutcome::Updated, WriteOutcome::Unchanged, WriteOutcome::Unchanged, WriteOutcome::Created]
    );
    for expected in [&second[0], &second[2], &second[3]] {
        assert_eq!(&store.get_location(&expected.key()).unwrap().unwrap(), expected);
    }
    let mut conn = store.conn().unwrap();
    let evse_rows: i64 = evses::table.count().get_result(&mut *conn).unwrap();
    let connector_rows: i64 = connectors::table.count().get_result(&mut *conn).unwrap();
    drop(conn);
    assert_eq!((evse_rows, connector_rows), (7, 10), "old children of the updated location are gone");
    let keys: Vec<String> = feed_kinds(store).into_iter().map(|(_, key)| key).collect();
    assert_eq!(keys, ["NL*ABC*A", "NL*ABC*B", "NL*ABC*C", "NL*ABC*A", "NL*ABC*D"]);

    let mut renamed = location("e", 52.4, 4.4);
    renamed.name = Some("Last".into());
    let twice = vec![location("e", 52.4, 4.4), renamed.clone()];
    let outcomes: Vec<WriteOutcome> = store.upsert_locations(&twice, None).into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes, vec![WriteOutcome::Created, WriteOutcome::Updated]);
    assert_eq!(store.get_location("NL*ABC*E").unwrap().unwrap(), renamed);
}

/// A party its hub reports not CONNECTED is stale; the change travels in the feed, only when the
/// staleness changes, and a direct connection that says CONNECTED keeps it fresh.
pub fn party_staleness_is_stored_and_fed(store: &Store) {
    let party = |country_code: &str, party_id: &str, status: &str| PartnerParty {
        country_code: country_code.into(),
        party_id: party_id.into(),
        role: "CPO".into(),
        name: None,
        status: status.into(),
    };
    let hub = store
        .create_partner(&NewPartner {
            name: "hub",
            status: PartnerStatus::Registered,
            versions_url: None,
            incoming_token: None,
            outgoing_token: None,
        })
        .unwrap();
    let party_changes = |store: &Store| -> Vec<(String, serde_json::Value)> {
        store
            .changes_since(0, 1000)
            .unwrap()
            .into_iter()
            .filter(|c| c.kind == ChangeKind::PartyStatus)
            .map(|c| (c.entity_key, c.payload))
            .collect()
    };
    store.upsert_partner_party(&hub.id, &party("DE", "XYZ", "CONNECTED")).unwrap();
    assert!(party_changes(store).is_empty(), "a connected party is not stale");
    store.upsert_partner_party(&hub.id, &party("de", "xyz", "OFFLINE")).unwrap();
    store.upsert_partner_party(&hub.id, &party("DE", "XYZ", "SUSPENDED")).unwrap();
    store.upsert_partner_party(&hub.id, &party("FR", "NEW", "PLANNED")).unwrap();
    assert_eq!(store.stale_parties().unwrap(), vec!["DE*XYZ".to_owned(), "FR*NEW".to_owned()]);
    assert_eq!(
        party_changes(store),
        vec![
            ("DE*XYZ".to_owned(), serde_json::json!({"stale": true})),
            ("FR*NEW".to_owned(), serde_json::json!({"stale": true})),
        ],
        "OFFLINE to SUSPENDED changes nothing for search"
    );
    store.upsert_partner_party(&hub.id, &party("DE", "XYZ", "CONNECTED")).unwrap();
    assert_eq!(store.stale_parties().unwrap(), vec!["FR*NEW".to_owned()]);
    assert_eq!(party_changes(store).last().unwrap(), &("DE*XYZ".to_owned(), serde_json::json!({"stale": false})));

    // FR*NEW also connected directly: fresh, whatever the hub says; replacing the direct parties
    // without it makes it stale again.
    let direct = store
        .create_partner(&NewPartner {
            name: "direct",
            status: PartnerStatus::Registered,
            versions_url: None,
            incoming_token: None,
            outgoing_token: None,
        })
        .unwrap();
    store.set_partner_parties(&direct.id, &[party("FR", "NEW", "CONNECTED")]).unwrap();
    assert!(store.stale_parties().unwrap().is_empty());
    store.set_partner_parties(&direct.id, &[]).unwrap();
    assert_eq!(store.stale_parties().unwrap(), vec!["FR*NEW".to_owned()]);
    assert_eq!(party_changes(store).len(), 5);
}

fn adhoc(payment_id: &str) -> emsp_store::AdHocCharge {
    let at = chrono::Utc::now().naive_utc();
    emsp_store::AdHocCharge {
        payment_id: payment_id.to_owned(),
        user_id: "driver-1".into(),
        location_key: "NL*SIM*L1".into(),
        evse_uid: "E1".into(),
        connector_id: Some("1".into()),
        tariff_id: Some("NL*SIM*T1".into()),
        // Whatever the caller says, a new request starts AWAITING_HOLD without a session.
        state: "STARTED".into(),
        charging_id: Some("ignored".into()),
        created_at: at,
        updated_at: at,
    }
}

pub fn an_ad_hoc_request_is_claimed_once_and_found_by_its_session(store: &Store) {
    use emsp_store::AdHocState;
    let created = store.create_adhoc(&adhoc("pay-a")).unwrap();
    assert_eq!(created.state(), Some(AdHocState::AwaitingHold));
    assert_eq!(created.charging_id, None);
    assert_eq!(store.create_adhoc(&adhoc("pay-a")).unwrap(), created, "recording it again keeps the first row");

    // Of several claims, exactly one wins, and its session id sticks.
    let store = Arc::new(store.clone());
    let claims: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let store = store.clone();
                scope.spawn(move || {
                    let session = format!("session-{n}");
                    store.move_adhoc("pay-a", AdHocState::AwaitingHold, AdHocState::Starting, Some(&session)).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(claims.iter().filter(|won| **won).count(), 1, "{claims:?}");
    let claimed = store.get_adhoc("pay-a").unwrap().unwrap();
    assert_eq!(claimed.state(), Some(AdHocState::Starting));
    let session = claimed.charging_id.clone().unwrap();
    assert_eq!(store.adhoc_for_charging(&session).unwrap(), Some(claimed));
    assert!(!store.move_adhoc("pay-a", AdHocState::AwaitingHold, AdHocState::Abandoned, None).unwrap());
    assert!(store.move_adhoc("pay-a", AdHocState::Starting, AdHocState::Started, None).unwrap());
    assert_eq!(store.get_adhoc("pay-a").unwrap().unwrap().charging_id.as_deref(), Some(session.as_str()));

    // Listed by state and time of their last change, and by the phase of their payment.
    store.create_adhoc(&adhoc("pay-b")).unwrap();
    let later = chrono::Utc::now().naive_utc() + chrono::Duration::seconds(1);
    let waiting = store.adhoc_stale(AdHocState::AwaitingHold, later, 10).unwrap();
    assert_eq!(waiting.iter().map(|a| a.payment_id.as_str()).collect::<Vec<_>>(), ["pay-b"]);
    assert!(store.adhoc_stale(AdHocState::AwaitingHold, waiting[0].updated_at, 10).unwrap().is_empty());
    // A move is a change: what was created long ago but moved just now is not stale.
    store.create_adhoc(&adhoc("pay-c")).unwrap();
    let created = store.get_adhoc("pay-c").unwrap().unwrap().created_at;
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(store.move_adhoc("pay-c", AdHocState::AwaitingHold, AdHocState::Starting, Some("session-c")).unwrap());
    let moved = store.get_adhoc("pay-c").unwrap().unwrap();
    assert!(moved.updated_at > created, "{moved:?}");
    assert!(store.adhoc_stale(AdHocState::Starting, moved.updated_at, 10).unwrap().is_empty());
    let stale = store.adhoc_stale(AdHocState::Starting, later, 10).unwrap();
    assert_eq!(stale.iter().map(|a| a.payment_id.as_str()).collect::<Vec<_>>(), ["pay-c"]);
    let mut held = payment("pay-a");
    held.phase = "CAPTURABLE".into();
    held.session_id = Some(session.clone());
    store.create_payment(&held, "api", "hold_requested", "").unwrap();
    assert_eq!(store.adhoc_with_payment_in(AdHocState::Started, &["CAPTURABLE"], 10).unwrap().len(), 1);
    assert!(store.adhoc_with_payment_in(AdHocState::Started, &["CAPTURED"], 10).unwrap().is_empty());
    assert_eq!(store.payment_for_session(&session).unwrap().map(|p| p.id), Some("pay-a".to_owned()));
    assert_eq!(store.payment_for_session("no-session").unwrap(), None);

    // Owing: captured below the amount due, with no difference or a pending one.
    let owing = |store: &Store| {
        let rows = store.adhoc_owing(AdHocState::Started, "CAPTURED", "PENDING", 10).unwrap();
        rows.into_iter().map(|a| a.payment_id).collect::<Vec<_>>()
    };
    assert!(owing(&store).is_empty(), "capturable, nothing due yet");
    let set = |captured: i64, difference: Option<&str>, difference_captured: i64| {
        let difference = difference.map(str::to_owned);
        store
            .update_payment("pay-a", "test", move |record| {
                let mut next = change(record, "CAPTURED", "captured");
                next.record.amount_due = Some(137);
                next.record.amount_captured = captured;
                next.record.difference_phase = difference;
                next.record.difference_captured = difference_captured;
                Ok(Some(next))
            })
            .unwrap();
    };
    set(60, None, 0);
    assert_eq!(owing(&store), ["pay-a"], "the hold captured, the difference never asked for");
    set(60, Some("PENDING"), 0);
    assert_eq!(owing(&store), ["pay-a"], "the difference asked for, not confirmed");
    set(60, Some("FAILED"), 0);
    assert!(owing(&store).is_empty(), "a declined difference is for ops");
    set(60, Some("SUCCEEDED"), 77);
    assert!(owing(&store).is_empty(), "collected in full");
    set(137, None, 0);
    assert!(owing(&store).is_empty(), "collected in full by the hold");
}

pub fn a_driver_keeps_the_first_payment_customer(store: &Store) {
    assert_eq!(store.payment_customer("driver-1").unwrap(), None);
    assert_eq!(store.keep_payment_customer("driver-1", "cus_first").unwrap(), "cus_first");
    assert_eq!(store.keep_payment_customer("driver-1", "cus_second").unwrap(), "cus_first", "the first writer wins");
    assert_eq!(store.payment_customer("driver-1").unwrap().as_deref(), Some("cus_first"));
    assert_eq!(store.keep_payment_customer("driver-2", "cus_other").unwrap(), "cus_other");
    assert_eq!(store.saved_card("driver-1").unwrap(), None);
    assert!(store.set_saved_card("cus_first", "pm_1").unwrap());
    assert!(!store.set_saved_card("cus_unknown", "pm_2").unwrap(), "not our customer");
    assert_eq!(store.saved_card("driver-1").unwrap().as_deref(), Some("pm_1"));
    assert_eq!(store.saved_card("driver-2").unwrap(), None);
}
