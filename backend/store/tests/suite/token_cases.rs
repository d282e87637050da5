//! Cases of the repository suite for tokens; each runs on every backend.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use diesel::prelude::*;
use emsp_domain::{AllowedType, Emaid, PartyId, Token, TokenType, TokenUid, WhitelistType};
use emsp_store::{NewAuthorization, Store, StoreError, TokenRecord};

fn party(value: &str) -> PartyId {
    PartyId::parse(value).unwrap()
}

fn driver(store: &Store, email: &str) -> String {
    store
        .create_user(&emsp_store::NewUser {
            email,
            name: None,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            role: emsp_store::Role::Driver,
        })
        .unwrap()
        .id
}

fn rfid(party_id: &str, uid: &str) -> TokenRecord {
    let at = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
    TokenRecord {
        token: Token {
            party: party(party_id),
            uid: TokenUid::new(uid).unwrap(),
            token_type: TokenType::Rfid,
            contract_id: "NL-EMS-C00000001-3".into(),
            visual_number: Some("EMS 0000 0001".into()),
            issuer: "Open EMSP".into(),
            group_id: Some("fleet-7".into()),
            valid: true,
            whitelist: WhitelistType::AllowedOffline,
            language: Some("nl".into()),
            default_profile_type: Some("GREEN".into()),
            energy_contract: Some(serde_json::json!({"supplier_name": "Greenchoice", "contract_id": "GC-1"})),
            expires_at: Some(Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap()),
            blocked_reason: None,
            last_updated: at,
        },
        user_id: None,
        fleet_id: Some("fleet-7".into()),
        created_at: at,
    }
}

pub fn tokens_round_trip_and_a_uid_is_unique_per_party_in_any_case(store: &Store) {
    let card = rfid("NL*EMS", "04A1B2C3D4");
    store.insert_token(&card, "IMPORT", "ops:u1").unwrap();
    assert_eq!(store.get_token("04a1b2c3d4").unwrap().unwrap(), card, "every field survives, found in any case");
    assert_eq!(store.get_party_token(&party("nl*ems"), "04A1B2C3D4").unwrap().unwrap(), card);
    assert!(store.get_token("unknown").unwrap().is_none());
    assert!(store.get_party_token(&party("DE*EMS"), "04A1B2C3D4").unwrap().is_none());

    let err = store.insert_token(&rfid("NL*EMS", "04a1b2c3d4"), "IMPORT", "ops:u1").unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "same uid, other case: {err}");
    store.insert_token(&rfid("DE*EMS", "04A1B2C3D4"), "IMPORT", "ops:u1").unwrap();

    let mut invalid = rfid("NL*EMS", "X1");
    invalid.token.language = Some("dutch".into());
    let err = store.insert_token(&invalid, "IMPORT", "ops:u1").unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(store.get_token("X1").unwrap().is_none());

    let audit = store.token_audit_of("nl*ems*04a1b2c3d4").unwrap();
    assert_eq!(audit.len(), 1, "one entry for the one successful write: {audit:?}");
    assert_eq!((audit[0].action.as_str(), audit[0].actor.as_str()), ("IMPORT", "ops:u1"));
    assert_eq!(audit[0].before, None);
    let after = audit[0].after.as_ref().unwrap();
    assert_eq!(after["uid"], "04A1B2C3D4");
    assert_eq!(after["fleet_id"], "fleet-7");
}

pub fn the_app_token_is_issued_once_with_an_emaid(store: &Store) {
    let user = driver(store, "ada@example.com");
    let ours = party("NL*EMS");
    let first = store.ensure_app_token(&user, &ours, "Open EMSP").unwrap();
    assert_eq!(first.token.token_type, TokenType::AppUser);
    assert_eq!(first.user_id.as_deref(), Some(user.as_str()));
    assert_eq!(first.token.party, ours);
    assert!(first.token.valid);
    let emaid = Emaid::parse(&first.token.contract_id).unwrap();
    assert_eq!((emaid.country_code(), emaid.provider_id()), ("NL", "EMS"));
    assert!(emaid.instance().starts_with('C'));
    assert_eq!(first.token.contract_id, emaid.to_string(), "written with hyphens");

    let again = store.ensure_app_token(&user, &ours, "Open EMSP").unwrap();
    assert_eq!(again, first, "the same token on every later call");
    assert_eq!(store.get_token(first.token.uid.as_str()).unwrap().unwrap(), first);

    let mut card = rfid("NL*EMS", "CARD-1");
    card.user_id = Some(user.clone());
    store.insert_token(&card, "IMPORT", "ops:u1").unwrap();
    let mine: Vec<String> = store.tokens_of_user(&user).unwrap().into_iter().map(|t| t.token.uid.to_string()).collect();
    assert_eq!(mine.len(), 2);
    assert!(mine.contains(&first.token.uid.to_string()) && mine.contains(&"CARD-1".to_owned()), "{mine:?}");
    assert!(store.tokens_of_user("nobody").unwrap().is_empty());

    let other = driver(store, "bob@example.com");
    let bobs = store.ensure_app_token(&other, &ours, "Open EMSP").unwrap();
    assert_ne!(bobs.token.uid, first.token.uid);
    assert_ne!(bobs.token.contract_id, first.token.contract_id);

    let err = store.ensure_app_token("no-such-user", &ours, "Open EMSP").unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");

    let audit = store.token_audit_of(&first.key()).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].action.as_str(), audit[0].actor.clone()), ("ISSUE", format!("driver:{user}")));
}

/// Many first requests of one driver at once: one token is created, every caller gets it.
pub fn concurrent_first_requests_issue_one_app_token(store: &Store) {
    let user = driver(store, "ada@example.com");
    let barrier = Arc::new(std::sync::Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            let barrier = barrier.clone();
            let user = user.clone();
            std::thread::spawn(move || {
                barrier.wait();
                store.ensure_app_token(&user, &party("NL*EMS"), "Open EMSP").unwrap()
            })
        })
        .collect();
    let tokens: Vec<TokenRecord> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    let mut conn = store.conn().unwrap();
    let rows: i64 = emsp_store::schema::tokens::table.count().get_result(&mut *conn).unwrap();
    assert_eq!(rows, 1);
    let audits: i64 = emsp_store::schema::token_audit::table.count().get_result(&mut *conn).unwrap();
    assert_eq!(audits, 1, "the losers' rolled-back inserts left no audit rows");
}

pub fn authorizations_are_found_by_their_reference(store: &Store) {
    let card = rfid("NL*EMS", "04A1B2C3D4");
    store.insert_token(&card, "IMPORT", "ops:u1").unwrap();
    let evses = vec!["EVSE-1".to_owned(), "EVSE-2".to_owned()];
    let recorded = store
        .record_authorization(&NewAuthorization {
            token_key: &card.key(),
            uid: "04a1b2c3d4",
            partner_id: Some("partner-1"),
            allowed: &AllowedType::Allowed,
            location_id: Some("LOC-1"),
            evse_uids: &evses,
        })
        .unwrap();
    assert!(recorded.reference.len() <= 36 && !recorded.reference.is_empty());
    assert_eq!(store.get_authorization(&recorded.reference).unwrap().unwrap(), recorded);

    let refused = store
        .record_authorization(&NewAuthorization {
            token_key: &card.key(),
            uid: "04A1B2C3D4",
            partner_id: None,
            allowed: &AllowedType::Blocked,
            location_id: None,
            evse_uids: &[],
        })
        .unwrap();
    assert_ne!(refused.reference, recorded.reference);
    let found = store.get_authorization(&refused.reference).unwrap().unwrap();
    assert_eq!(found.allowed, AllowedType::Blocked);
    assert!(found.evse_uids.is_empty() && found.location_id.is_none());
    assert!(store.get_authorization("unknown").unwrap().is_none());
}

fn card(uid: &str, minute: u32) -> TokenRecord {
    let mut record = rfid("NL*EMS", uid);
    record.token.last_updated = Utc.with_ymd_and_hms(2026, 11, 24, 10, minute, 0).unwrap();
    record.token.contract_id = format!("NL-EMS-C0000000{minute}-X");
    record.fleet_id = None;
    record
}

pub fn tokens_are_searched_paged_and_changed_with_an_audit_trail(store: &Store) {
    use emsp_store::{AuditFilter, TokenFilter};
    for (i, uid) in ["A1", "A2", "B1", "B2", "C1"].iter().enumerate() {
        store.insert_token(&card(uid, u32::try_from(i).unwrap()), "IMPORT", "ops:u1").unwrap();
    }
    let prefix = TokenFilter { uid: Some("a*".into()), ..TokenFilter::default() };
    let (found, total) = store.search_tokens(&prefix, 0, 10).unwrap();
    assert_eq!(total, 2);
    assert_eq!(found.iter().map(|t| t.token.uid.to_string()).collect::<Vec<_>>(), ["A2", "A1"], "newest first");
    let exact = TokenFilter { contract_id: Some("nlemsc00000002x".into()), ..TokenFilter::default() };
    assert_eq!(store.search_tokens(&exact, 0, 10).unwrap().0[0].token.uid.as_str(), "B1");
    let wild = TokenFilter { uid: Some("%".into()), ..TokenFilter::default() };
    assert_eq!(store.search_tokens(&wild, 0, 10).unwrap().1, 0, "LIKE wildcards are plain characters");

    // OCPI windows: date_from inclusive, date_to exclusive, stable order.
    let at = |minute| Utc.with_ymd_and_hms(2026, 11, 24, 10, minute, 0).unwrap();
    let (page, total) = store.tokens_page(Some(at(1)), Some(at(3)), 0, 10).unwrap();
    assert_eq!((page.len(), total), (2, 2));
    assert_eq!(page[0].token.uid.as_str(), "A2");
    let (page, total) = store.tokens_page(None, None, 2, 2).unwrap();
    assert_eq!((page.len(), total), (2, 5));
    assert_eq!(page[0].token.uid.as_str(), "B1");

    // Cursor paging: a token changed after it was sent comes again at the end, nothing is skipped.
    let first = store.tokens_after(None, None, None, 2).unwrap();
    let last = first.last().unwrap();
    let changed = store
        .update_token("nl*ems*a1", "ASSIGN", "ops:u2", |t| {
            t.fleet_id = Some("fleet-1".into());
            Ok(())
        })
        .unwrap()
        .unwrap();
    assert!(changed.1.token.last_updated > changed.0.token.last_updated);
    let rest = store.tokens_after(None, None, Some((last.token.last_updated, &last.key())), 10).unwrap();
    let uids: Vec<String> = rest.iter().map(|t| t.token.uid.to_string()).collect();
    assert_eq!(uids, ["B1", "B2", "C1", "A1"]);

    // A change that alters nothing is neither written nor audited; an invalid one is refused.
    let same = store.update_token("NL*EMS*B1", "ASSIGN", "ops:u2", |_| Ok(())).unwrap().unwrap();
    assert_eq!(same.0, same.1);
    let err = store
        .update_token("NL*EMS*B1", "ASSIGN", "ops:u2", |t| {
            t.token.language = Some("xyz".into());
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(store.update_token("NL*EMS*NOPE", "BLOCK", "ops:u2", |_| Ok(())).unwrap().is_none());

    let (entries, total) = store
        .token_audit(&AuditFilter { token_key: Some("nl*ems*a1".into()), ..AuditFilter::default() }, 0, 10)
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!((entries[0].action.as_str(), entries[0].actor.as_str()), ("ASSIGN", "ops:u2"));
    assert_eq!(entries[0].before.as_ref().unwrap()["fleet_id"], serde_json::Value::Null);
    assert_eq!(entries[0].after.as_ref().unwrap()["fleet_id"], "fleet-1");
    let by_actor = AuditFilter { actor: Some("ops:u2".into()), ..AuditFilter::default() };
    assert_eq!(store.token_audit(&by_actor, 0, 10).unwrap().1, 1);

    // A second app token for one driver is a conflict, also through an update.
    let user = driver(store, "ada@example.com");
    store.ensure_app_token(&user, &party("NL*EMS"), "Open EMSP").unwrap();
    let mut other_app = card("APP-2", 9);
    other_app.token.token_type = TokenType::AppUser;
    store.insert_token(&other_app, "ISSUE", "ops:u1").unwrap();
    let err = store
        .update_token(&other_app.key(), "ASSIGN", "ops:u1", |t| {
            t.user_id = Some(user.clone());
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

pub fn token_push_marks_keep_the_oldest_change_until_a_clean_repush(store: &Store) {
    let partner = store
        .create_partner(&emsp_store::NewPartner {
            name: "cpo",
            status: emsp_store::PartnerStatus::Registered,
            versions_url: None,
            incoming_token: Some("c"),
            outgoing_token: Some("b"),
        })
        .unwrap();
    let at = |minute| Utc.with_ymd_and_hms(2026, 11, 24, 10, minute, 0).unwrap();
    store.record_token_push(&partner.id, None).unwrap();
    assert_eq!(store.token_push_states().unwrap()[0].repush_from, None);
    store.mark_token_repush(&partner.id, at(5), "down").unwrap();
    store.mark_token_repush(&partner.id, at(3), "down").unwrap();
    store.mark_token_repush(&partner.id, at(7), "down").unwrap();
    let state = &store.token_push_states().unwrap()[0];
    assert_eq!((state.repush_from, state.last_error.as_deref()), (Some(at(3)), Some("down")), "the oldest change");
    // A live push does not clear the mark; a re-push that started after the last failure does.
    store.record_token_push(&partner.id, None).unwrap();
    assert_eq!(store.token_push_states().unwrap()[0].repush_from, Some(at(3)));
    store.record_token_push(&partner.id, Some(Utc::now() - chrono::Duration::hours(1))).unwrap();
    assert_eq!(store.token_push_states().unwrap()[0].repush_from, Some(at(3)), "a failure came after it started");
    store.record_token_push(&partner.id, Some(Utc::now() + chrono::Duration::seconds(1))).unwrap();
    assert_eq!(store.token_push_states().unwrap()[0].repush_from, None);
}

pub fn bulk_inserts_are_one_batch(store: &Store) {
    let batch: Vec<TokenRecord> = (0..1200).map(|n| card(&format!("BULK-{n}"), 1)).collect();
    assert_eq!(store.insert_tokens(&batch, "IMPORT", "bench").unwrap(), 1200);
    assert_eq!(store.tokens_page(None, None, 0, 0).unwrap().1, 1200);
    let err = store.insert_tokens(&batch[..2], "IMPORT", "bench").unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.tokens_page(None, None, 0, 0).unwrap().1, 1200, "the failed batch left nothing");
    assert_eq!(store.get_token("bulk-7").unwrap().unwrap().token.uid.as_str(), "BULK-7");
}

pub fn tokens_are_read_many_at_once_with_their_owners_state(store: &Store) {
    let alice = driver(store, "alice@example.com");
    let mut first = rfid("NL*EMS", "BATCH-1");
    first.user_id = Some(alice.clone());
    store.insert_token(&first, "issued", "ops").unwrap();
    // The same uid under a second party: the first by key answers, as for one uid.
    store.insert_token(&rfid("NL*ZZZ", "batch-1"), "issued", "ops").unwrap();
    store.insert_token(&rfid("NL*EMS", "BATCH-2"), "issued", "ops").unwrap();
    assert!(store.set_user_disabled(&alice, true).unwrap());

    let asked: Vec<String> = ["batch-1", "BATCH-2", "nope", "Batch-2"].iter().map(|s| (*s).to_owned()).collect();
    let found = store.get_tokens_and_owners_disabled(&asked).unwrap();
    assert_eq!(found.len(), 2, "by upper-case uid: {:?}", found.keys().collect::<Vec<_>>());
    let (one, disabled) = &found["BATCH-1"];
    assert_eq!((one.key(), *disabled), ("NL*EMS*BATCH-1".to_owned(), Some(true)));
    let (two, disabled) = &found["BATCH-2"];
    assert_eq!((two.key(), *disabled), ("NL*EMS*BATCH-2".to_owned(), None), "no driver: no owner state");
    assert_eq!(store.get_token_and_owner_disabled("Batch-1").unwrap().as_ref(), Some(&found["BATCH-1"]));
    assert!(store.get_tokens_and_owners_disabled(&[]).unwrap().is_empty());
}
