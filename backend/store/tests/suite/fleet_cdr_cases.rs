//! A fleet's CDRs at rest: found through the fleet's tokens (by party and uid, by uid, by contract
//! id), by billing instant until an issued document bills them, and paged for fleet managers.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use emsp_domain::{
    AuthMethod, Cdr, CdrId, CdrToken, Currency, PartyId, Price, Token, TokenType, TokenUid, WhitelistType,
};
use emsp_invoicing::{BillingPeriod, RunInput, UsageRecord, compose_run};
use emsp_store::{FleetCdrFilter, NewCdr, PriceCheck, RunMode, Store, StoreError, TokenRecord};
use rust_decimal::Decimal;

use super::invoice_cases::{fleet, supplier};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn card(uid: &str, contract_id: &str, fleet_id: &str, user_id: Option<&str>) -> TokenRecord {
    let at = utc("2026-09-01T08:00:00Z");
    TokenRecord {
        token: Token {
            party: PartyId::parse("NL*EMS").unwrap(),
            uid: TokenUid::new(uid).unwrap(),
            token_type: TokenType::Rfid,
            contract_id: contract_id.into(),
            visual_number: None,
            issuer: "Open EMSP".into(),
            group_id: None,
            valid: true,
            whitelist: WhitelistType::Allowed,
            language: None,
            default_profile_type: None,
            energy_contract: None,
            expires_at: None,
            blocked_reason: None,
            last_updated: at,
        },
        user_id: user_id.map(str::to_owned),
        fleet_id: Some(fleet_id.into()),
        created_at: at,
    }
}

/// A CDR of a 40-minute session ending at `end`, charged on the token `(party, uid)`.
fn cdr(id: &str, token: (&str, &str), end: &str, net_cents: i64) -> Cdr {
    let end = utc(end);
    Cdr {
        party: PartyId::parse("DE*CPO").unwrap(),
        id: CdrId::new(id).unwrap(),
        start_date_time: end - Duration::minutes(40),
        end_date_time: end,
        session_id: None,
        cdr_token: CdrToken {
            party: PartyId::parse(token.0).unwrap(),
            uid: TokenUid::new(token.1).unwrap(),
            token_type: TokenType::Rfid,
            contract_id: token.1.into(),
        },
        auth_method: AuthMethod::Whitelist,
        authorization_reference: None,
        cdr_location: serde_json::json!({"id": "LOC-1", "name": "Parkhaus", "evse_id": "DE*CPO*E1"}),
        meter_id: None,
        currency: Currency::new("EUR").unwrap(),
        tariffs: vec![],
        charging_periods: vec![],
        signed_data: None,
        total_cost: Price { excl_vat: Decimal::new(net_cents, 2), incl_vat: None },
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
        last_updated: end,
    }
}

fn store_cdr(store: &Store, cdr: &Cdr) {
    let new = NewCdr {
        cdr,
        partner_id: "partner-1",
        version: "2.2.1",
        session_key: None,
        charging_id: None,
        raw: "{}",
        our_cost: None,
        price_check: PriceCheck::Unchecked,
        price_note: None,
    };
    assert!(store.insert_cdr(&new).unwrap());
}

fn ids_of(records: &[emsp_store::CdrRecord]) -> Vec<&str> {
    records.iter().map(|r| r.cdr.id.as_str()).collect()
}

pub fn a_fleets_cdrs_are_found_through_its_tokens_until_an_issued_document_bills_them(store: &Store) {
    let driver = store
        .create_user(&emsp_store::NewUser {
            email: "ada@fleet.example",
            name: Some("Ada"),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            role: emsp_store::Role::Driver,
        })
        .unwrap()
        .id;
    let (fleet_a, fleet_b) = (fleet("fleet-a"), fleet("fleet-b"));
    store.create_fleet(&fleet_a).unwrap();
    store.create_fleet(&fleet_b).unwrap();
    store.insert_token(&card("CARD-A1", "NL-EMS-C00000001-X", "fleet-a", Some(&driver)), "ISSUE", "ops:t").unwrap();
    store.insert_token(&card("CARD-A2", "NL-EMS-C00000002-Y", "fleet-a", None), "ISSUE", "ops:t").unwrap();
    store.insert_token(&card("CARD-B1", "NL-EMS-C00000003-Z", "fleet-b", None), "ISSUE", "ops:t").unwrap();

    // By party and uid; by uid alone (another spelling of our party); by contract id (a 2.1.1
    // CDR names the contract id as its uid); another fleet's; a token that is none of ours.
    store_cdr(store, &cdr("exact", ("NL*EMS", "CARD-A1"), "2026-10-10T10:00:00Z", 1_000));
    store_cdr(store, &cdr("by-uid", ("NL*XYZ", "card-a1"), "2026-09-15T10:00:00Z", 200));
    store_cdr(store, &cdr("by-contract", ("NL*EMS", "NL-EMS-C00000002-Y"), "2026-10-20T10:00:00Z", 300));
    store_cdr(store, &cdr("theirs", ("NL*EMS", "CARD-B1"), "2026-10-11T10:00:00Z", 5_000));
    store_cdr(store, &cdr("stranger", ("NL*EMS", "NOBODY"), "2026-10-12T10:00:00Z", 700));
    // A credit of a session of October, received now: billed by its receipt.
    let mut credit = cdr("credit", ("NL*EMS", "CARD-A1"), "2026-10-10T12:00:00Z", -400);
    credit.credit = Some(true);
    store_cdr(store, &credit);
    let received = Utc::now();

    let tz = fleet_a.tz().unwrap();
    let october: BillingPeriod = "2026-10".parse().unwrap();
    let (from, to) = october.bounds(tz);
    assert_eq!(ids_of(&store.unbilled_fleet_cdrs("fleet-a", from, to).unwrap()), vec!["exact", "by-contract"]);
    let (september, _) = october.months_before(1).bounds(tz);
    assert_eq!(
        ids_of(&store.unbilled_fleet_cdrs("fleet-a", september, to).unwrap()),
        vec!["by-uid", "exact", "by-contract"],
        "oldest first"
    );
    assert_eq!(ids_of(&store.unbilled_fleet_cdrs("fleet-b", from, to).unwrap()), vec!["theirs"]);
    let around_now = (received - Duration::hours(1), received + Duration::hours(1));
    assert_eq!(ids_of(&store.unbilled_fleet_cdrs("fleet-a", around_now.0, around_now.1).unwrap()), vec!["credit"]);

    // A draft bills nothing yet; an issued invoice does.
    let records: Vec<UsageRecord> =
        store.unbilled_fleet_cdrs("fleet-a", from, to).unwrap().iter().map(|r| UsageRecord::from(&r.cdr)).collect();
    let supplier = supplier();
    let billed = store.billed_cdrs(&[]).unwrap();
    let input = RunInput {
        customer: &fleet_a,
        supplier: &supplier,
        period: october,
        issue_date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        late_months: 0,
        billed: &billed,
    };
    let draft = compose_run(&input, &records).unwrap().invoice.unwrap();
    store.save_run("fleet-a", october, std::slice::from_ref(&draft), RunMode::Preview).unwrap();
    assert_eq!(store.unbilled_fleet_cdrs("fleet-a", from, to).unwrap().len(), 2, "drafts bill nothing");
    let only_exact = compose_run(&input, &records[..1]).unwrap().invoice.unwrap();
    store.save_run("fleet-a", october, &[only_exact], RunMode::Issue).unwrap();
    assert_eq!(ids_of(&store.unbilled_fleet_cdrs("fleet-a", september, to).unwrap()), vec!["by-uid", "by-contract"]);

    // A late CDR previewed in November and then in December is on one draft only: the later.
    let late: Vec<UsageRecord> = store
        .unbilled_fleet_cdrs("fleet-a", september, to)
        .unwrap()
        .iter()
        .map(|r| UsageRecord::from(&r.cdr))
        .collect();
    let november = october.next();
    let preview = |period: BillingPeriod| {
        let input = RunInput { period, late_months: 12, ..input.clone() };
        let draft = compose_run(&input, &late).unwrap().invoice.unwrap();
        assert!(draft.lines.iter().all(|l| l.late));
        store.save_run("fleet-a", period, &[draft], RunMode::Preview).unwrap();
    };
    preview(november);
    preview(november.next());
    assert!(store.invoices_of_period("fleet-a", november).unwrap().is_empty(), "the stale preview is gone");
    assert_eq!(store.invoices_of_period("fleet-a", november.next()).unwrap().len(), 1);

    // Fleet managers page through the sessions, latest end first, by driver and by end.
    let all = FleetCdrFilter { fleet_id: "fleet-a", ..FleetCdrFilter::default() };
    let first = store.fleet_cdrs(&all, None, 2).unwrap();
    let ids: Vec<&str> = first.iter().map(|c| c.record.cdr.id.as_str()).collect();
    assert_eq!(ids, vec!["by-contract", "credit"]);
    assert_eq!(first[0].token_key, "NL*EMS*CARD-A2");
    assert_eq!(first[1].user_id.as_deref(), Some(driver.as_str()));
    assert_eq!(first[1].contract_id, "NL-EMS-C00000001-X");
    let second = store.fleet_cdrs(&all, Some(&first[1].record.key), 2).unwrap();
    let ids: Vec<&str> = second.iter().map(|c| c.record.cdr.id.as_str()).collect();
    assert_eq!(ids, vec!["exact", "by-uid"]);
    assert!(store.fleet_cdrs(&all, Some(&second[1].record.key), 2).unwrap().is_empty());
    let ada_in_october =
        FleetCdrFilter { fleet_id: "fleet-a", user_id: Some(&driver), ended_from: Some(from), ended_before: Some(to) };
    let ids: Vec<String> =
        store.fleet_cdrs(&ada_in_october, None, 10).unwrap().into_iter().map(|c| c.record.key).collect();
    assert_eq!(ids, vec!["DE*CPO*CREDIT", "DE*CPO*EXACT"]);
    let theirs = store.fleet_cdrs(&FleetCdrFilter { fleet_id: "fleet-b", ..FleetCdrFilter::default() }, None, 10);
    assert_eq!(theirs.unwrap().len(), 1, "the stranger's CDR is no fleet's");
    for cursor in ["DE*CPO*NOPE", "DE*CPO*THEIRS"] {
        let refused = store.fleet_cdrs(&all, Some(cursor), 2).unwrap_err();
        assert!(matches!(refused, StoreError::Invalid(_)), "{cursor}: {refused}");
    }
}

pub fn cdrs_that_came_before_their_token_join_its_fleet_when_it_is_added(store: &Store) {
    store.create_fleet(&fleet("fleet-a")).unwrap();
    // Cards in use at CPOs before they were imported here: their CDRs match no token yet.
    store_cdr(store, &cdr("early-uid", ("NL*EMS", "early-card"), "2026-10-10T10:00:00Z", 1_000));
    store_cdr(store, &cdr("early-contract", ("NL*EMS", "NL-EMS-C00000009-Q"), "2026-10-11T10:00:00Z", 500));
    store_cdr(store, &cdr("stranger", ("NL*EMS", "NOBODY"), "2026-10-12T10:00:00Z", 700));
    let october: BillingPeriod = "2026-10".parse().unwrap();
    let (from, to) = october.bounds(fleet("fleet-a").tz().unwrap());
    assert!(store.unbilled_fleet_cdrs("fleet-a", from, to).unwrap().is_empty());

    // One card alone, and one in a bulk import: each takes its CDRs (by uid in any case; by
    // contract id, which 2.1.1 CDRs name as the uid); the stranger's stays alone.
    store.insert_token(&card("EARLY-CARD", "NL-EMS-C00000008-P", "fleet-a", None), "IMPORT", "ops:t").unwrap();
    let bulk = [
        card("OTHER-CARD", "NL-EMS-C00000009-Q", "fleet-a", None),
        card("SPARE", "NL-EMS-C00000010-R", "fleet-a", None),
    ];
    assert_eq!(store.insert_tokens(&bulk, "IMPORT", "ops:t").unwrap(), 2);
    assert_eq!(ids_of(&store.unbilled_fleet_cdrs("fleet-a", from, to).unwrap()), vec!["early-uid", "early-contract"]);
}

pub fn a_card_moved_to_another_fleet_leaves_its_earlier_cdrs_behind(store: &Store) {
    store.create_fleet(&fleet("fleet-a")).unwrap();
    store.create_fleet(&fleet("fleet-b")).unwrap();
    let october: BillingPeriod = "2026-10".parse().unwrap();
    let (from, to) = october.bounds(fleet("fleet-a").tz().unwrap());
    let unbilled = |fleet_id: &str| {
        let records = store.unbilled_fleet_cdrs(fleet_id, from, to).unwrap();
        records.iter().map(|r| r.cdr.id.as_str().to_owned()).collect::<Vec<_>>()
    };
    let move_to = |fleet_id: Option<&str>| {
        let fleet_id = fleet_id.map(str::to_owned);
        store.update_token("NL*EMS*MOVER", "ASSIGN", "ops:t", |r| {
            r.fleet_id = fleet_id;
            Ok(())
        })
    };
    // No fleet yet: its CDR waits for the first fleet the card is given.
    let mut loose = card("MOVER", "NL-EMS-C00000011-S", "fleet-a", None);
    loose.fleet_id = None;
    store.insert_token(&loose, "ISSUE", "ops:t").unwrap();
    store_cdr(store, &cdr("before-any", ("NL*EMS", "MOVER"), "2026-10-02T10:00:00Z", 100));
    move_to(Some("fleet-a")).unwrap().unwrap();
    store_cdr(store, &cdr("in-a", ("NL*EMS", "MOVER"), "2026-10-05T10:00:00Z", 200));
    move_to(Some("fleet-b")).unwrap().unwrap();
    store_cdr(store, &cdr("in-b", ("NL*EMS", "MOVER"), "2026-10-20T10:00:00Z", 300));
    assert_eq!(unbilled("fleet-a"), vec!["before-any", "in-a"], "fleet A keeps what the card did while it was A's");
    assert_eq!(unbilled("fleet-b"), vec!["in-b"]);
    // Taking the card out of every fleet and back does not move what is attributed.
    move_to(None).unwrap().unwrap();
    move_to(Some("fleet-b")).unwrap().unwrap();
    assert_eq!(unbilled("fleet-a"), vec!["before-any", "in-a"]);
}
