//! Fleets and invoices at rest: numbering, reruns, races, immutability (run on every backend).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use emsp_domain::Currency;
use emsp_invoicing::{
    Address, BillingPeriod, Customer, Document, DocumentKind, DocumentStatus, PaymentTerms, RunInput, Supplier,
    UsageRecord, compose_run,
};
use emsp_store::schema::invoices;
use emsp_store::{FleetRole, RunMode, Store, StoreError};
use rust_decimal::Decimal;

pub fn supplier() -> Supplier {
    Supplier {
        name: "Open EMSP GmbH".into(),
        address: Address {
            street: "Torstraße 1".into(),
            additional: None,
            postal_code: "10119".into(),
            city: "Berlin".into(),
            country: "DE".into(),
        },
        vat_id: "DE123456789".into(),
        registration: None,
        contact_name: "Billing".into(),
        phone: "+49 30 1234567".into(),
        email: "billing@open-emsp.example".into(),
        payment: PaymentTerms {
            days: 14,
            iban: "DE02120300000000202051".into(),
            bic: None,
            bank_name: None,
            note: "Payable within 14 days.".into(),
        },
        vat_rates: vec![Decimal::new(19, 0), Decimal::new(7, 0)],
        default_vat_rate: Decimal::new(19, 0),
        invoice_series: "INV".into(),
        credit_note_series: "CN".into(),
    }
}

pub fn fleet(id: &str) -> Customer {
    Customer {
        id: id.into(),
        name: format!("Fleet {id}"),
        address: Address {
            street: "Hafenstraße 12".into(),
            additional: None,
            postal_code: "20457".into(),
            city: "Hamburg".into(),
            country: "DE".into(),
        },
        vat_id: Some("DE987654321".into()),
        time_zone: "Europe/Berlin".into(),
        currency: Currency::new("EUR").unwrap(),
        billing_email: "ap@fleet.example".into(),
        buyer_reference: None,
    }
}

fn october() -> BillingPeriod {
    "2026-10".parse().unwrap()
}

fn usage(fleet: &str, n: u32, net_cents: i64) -> UsageRecord {
    let end: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-10-10T10:00:00Z").unwrap().with_timezone(&Utc)
        + Duration::minutes(i64::from(n));
    UsageRecord {
        cdr_id: format!("DE*CPO*{fleet}-{n}"),
        start: end - Duration::minutes(30),
        end,
        location: "Parkhaus".into(),
        evse: "DE*CPO*E1".into(),
        energy_kwh: Decimal::new(12_500, 3),
        currency: Currency::new("EUR").unwrap(),
        net: Decimal::new(net_cents, 2),
        gross: None,
        credit: false,
        credits_cdr: None,
        issued_at: None,
    }
}

/// Composes the documents of a run over `records`, asking the store what is already billed.
fn compose(store: &Store, fleet: &Customer, records: &[UsageRecord]) -> Vec<Document> {
    let supplier = supplier();
    let mut keys: Vec<String> = records.iter().map(|r| r.cdr_id.clone()).collect();
    keys.extend(records.iter().filter_map(|r| r.credits_cdr.clone()));
    let billed = store.billed_cdrs(&keys).unwrap();
    let input = RunInput {
        customer: fleet,
        supplier: &supplier,
        period: october(),
        issue_date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        late_months: 0,
        billed: &billed,
    };
    let outcome = compose_run(&input, records).unwrap();
    outcome.invoice.into_iter().chain(outcome.credit_notes).collect()
}

pub fn fleets_and_their_members_round_trip(store: &Store) {
    let created = store.create_fleet(&fleet("acme")).unwrap();
    assert_eq!(store.get_fleet("acme").unwrap().unwrap(), created);
    assert!(store.get_fleet("nope").unwrap().is_none());
    assert!(matches!(store.create_fleet(&fleet("acme")), Err(StoreError::Conflict(_))));
    let mut bad = fleet("bad");
    bad.time_zone = "Europe/Atlantis".into();
    assert!(matches!(store.create_fleet(&bad), Err(StoreError::Invalid(_))));

    let manager =
        store.create_user(&super::cases::new_user("boss@acme.example", emsp_store::Role::FleetManager)).unwrap();
    let driver = store.create_user(&super::cases::new_user("ada@acme.example", emsp_store::Role::Driver)).unwrap();
    store.set_fleet_member("acme", &manager.id, FleetRole::FleetManager).unwrap();
    store.set_fleet_member("acme", &driver.id, FleetRole::Driver).unwrap();
    store.set_fleet_member("acme", &driver.id, FleetRole::Driver).unwrap();
    let members = store.fleet_members("acme").unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(store.memberships(&manager.id).unwrap()[0].role, FleetRole::FleetManager);
    assert!(matches!(store.set_fleet_member("nope", &driver.id, FleetRole::Driver), Err(StoreError::NotFound(_))));
    assert_eq!(store.managed_fleets(&manager.id).unwrap(), vec!["acme".to_owned()]);
    assert!(store.managed_fleets(&driver.id).unwrap().is_empty());
    assert!(store.may_see_fleet(&manager.id, emsp_store::Role::FleetManager, "acme").unwrap());
    assert!(!store.may_see_fleet(&driver.id, emsp_store::Role::Driver, "acme").unwrap(), "a driver is no manager");
    assert!(!store.may_see_fleet(&manager.id, emsp_store::Role::FleetManager, "other").unwrap());
    assert!(store.may_see_fleet("anyone", emsp_store::Role::Ops, "other").unwrap());
    assert!(store.remove_fleet_member("acme", &driver.id).unwrap());
    assert_eq!(store.fleet_members("acme").unwrap().len(), 1);
    assert_eq!(store.list_fleets().unwrap().len(), 1);
}

pub fn a_preview_is_replaced_and_an_issued_month_is_never_billed_twice(store: &Store) {
    let acme = fleet("acme");
    store.create_fleet(&acme).unwrap();
    let records: Vec<UsageRecord> = (0..3).map(|n| usage("acme", n, 1000 + i64::from(n))).collect();

    let preview = store.save_run("acme", october(), &compose(store, &acme, &records[..2]), RunMode::Preview).unwrap();
    assert_eq!(preview.len(), 1);
    assert_eq!(preview[0].status, DocumentStatus::Draft);
    assert_eq!(preview[0].document.number, None);
    let again = store.save_run("acme", october(), &compose(store, &acme, &records), RunMode::Preview).unwrap();
    let month = store.invoices_of_period("acme", october()).unwrap();
    assert_eq!(month.len(), 1, "a second preview replaces the first");
    assert_eq!(month[0].id, again[0].id);
    assert_eq!(month[0].document.lines.len(), 3);
    assert!(store.billed_cdrs(&[records[0].cdr_id.clone()]).unwrap().is_empty(), "drafts bill nothing");

    let issued = store.save_run("acme", october(), &compose(store, &acme, &records), RunMode::Issue).unwrap();
    assert_eq!(issued[0].status, DocumentStatus::Issued);
    assert_eq!(issued[0].document.number.as_deref(), Some("INV-2026-000001"));
    assert_eq!(store.get_invoice(&issued[0].id).unwrap().unwrap(), issued[0]);
    assert_eq!(store.invoices_of_period("acme", october()).unwrap(), issued, "the draft is gone");
    let billed = store.billed_cdrs(&records.iter().map(|r| r.cdr_id.clone()).collect::<Vec<_>>()).unwrap();
    assert_eq!(billed.len(), 3);
    assert_eq!(billed[&records[0].cdr_id].number, "INV-2026-000001");

    // The same month again: every CDR is billed, nothing is composed, nothing is stored.
    assert!(compose(store, &acme, &records).is_empty());
    // A run that still brings an invoice for the month (composed before the issue) is refused whole.
    let stale = issued[0].document.clone();
    assert!(matches!(store.save_run("acme", october(), &[stale], RunMode::Issue), Err(StoreError::Conflict(_))));
    assert_eq!(store.invoices_of_period("acme", october()).unwrap().len(), 1);

    // A credit of an issued CDR: a credit note that refers to the invoice, numbered in its own series.
    let mut credit = usage("acme", 99, -500);
    credit.credit = true;
    credit.credits_cdr = Some(records[1].cdr_id.clone());
    let notes = store.save_run("acme", october(), &compose(store, &acme, &[credit]), RunMode::Issue).unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].kind(), DocumentKind::CreditNote);
    assert_eq!(notes[0].document.number.as_deref(), Some("CN-2026-000001"));
    assert_eq!(notes[0].preceding_invoice_id.as_deref(), Some(issued[0].id.as_str()));
    assert_eq!(notes[0].document.preceding.as_ref().unwrap().number, "INV-2026-000001");

    let listed = store.list_invoices("acme", 10, None, true).unwrap();
    assert_eq!(listed.len(), 2);
    let page = store.list_invoices("acme", 1, None, true).unwrap();
    let next = store.list_invoices("acme", 1, Some(&page[0].id), true).unwrap();
    assert_eq!(next.len(), 1);
    assert_ne!(page[0].id, next[0].id);
    assert!(store.list_invoices("other", 10, None, true).unwrap().is_empty());
}

pub fn issued_invoices_never_change(store: &Store) {
    let acme = fleet("acme");
    store.create_fleet(&acme).unwrap();
    let issued =
        store.save_run("acme", october(), &compose(store, &acme, &[usage("acme", 1, 999)]), RunMode::Issue).unwrap();
    let id = issued[0].id.clone();
    let mut conn = store.conn().unwrap();
    let tampered = diesel::update(invoices::table.find(&id)).set(invoices::gross_total.eq("0")).execute(&mut *conn);
    assert!(tampered.is_err(), "the database refuses to change an issued invoice");
    let deleted = diesel::delete(invoices::table.find(&id)).execute(&mut *conn);
    assert!(deleted.is_err(), "or to delete it");
    let lines = diesel::delete(emsp_store::schema::invoice_lines::table).execute(&mut *conn);
    assert!(lines.is_err(), "or its lines");
    drop(conn);
    assert!(store.set_invoice_status(&id, DocumentStatus::Paid).unwrap());
    assert!(!store.set_invoice_status(&id, DocumentStatus::Void).unwrap(), "only an issued invoice is marked");
    assert!(store.set_invoice_status(&id, DocumentStatus::Draft).is_err());
    let stored = store.get_invoice(&id).unwrap().unwrap();
    assert_eq!(stored.status, DocumentStatus::Paid);
    assert_eq!(stored.document, issued[0].document, "the document is as issued");
}

pub fn invoice_numbers_have_no_gaps_when_runs_race(store: &Store) {
    // Eight fleets, each run by two racing workers: 16 attempts, 8 invoices, numbers 1..=8.
    let fleets: Vec<Customer> = (0..8).map(|i| fleet(&format!("fleet-{i}"))).collect();
    for fleet in &fleets {
        store.create_fleet(fleet).unwrap();
    }
    let barrier = Arc::new(Barrier::new(fleets.len() * 2));
    let handles: Vec<_> = (0..fleets.len() * 2)
        .map(|worker| {
            let store = store.clone();
            let fleet = fleets[worker % fleets.len()].clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let records: Vec<UsageRecord> = (0..3).map(|n| usage(&fleet.id, n, 2500)).collect();
                let documents = compose(&store, &fleet, &records);
                barrier.wait();
                store.save_run(&fleet.id, october(), &documents, RunMode::Issue)
            })
        })
        .collect();
    let mut issued = 0;
    let mut conflicts = 0;
    for handle in handles {
        match handle.join().unwrap() {
            Ok(records) => issued += records.len(),
            Err(StoreError::Conflict(_)) => conflicts += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((issued, conflicts), (8, 8), "one invoice per fleet, the other run of each refused");
    let mut conn = store.conn().unwrap();
    let numbers: Vec<Option<i64>> = invoices::table.select(invoices::number).load(&mut *conn).unwrap();
    let numbers: BTreeSet<i64> = numbers.into_iter().map(Option::unwrap).collect();
    assert_eq!(numbers, (1..=8).collect::<BTreeSet<i64>>(), "gapless and unique");
    let per_fleet: HashMap<String, i64> = invoices::table
        .group_by(invoices::fleet_id)
        .select((invoices::fleet_id, diesel::dsl::count_star()))
        .load::<(String, i64)>(&mut *conn)
        .unwrap()
        .into_iter()
        .collect();
    assert!(per_fleet.values().all(|&n| n == 1), "{per_fleet:?}");
}

pub fn a_fleet_manager_sees_only_issued_documents_of_their_fleets(store: &Store) {
    use emsp_store::Role;
    let (acme, other) = (fleet("acme"), fleet("other"));
    store.create_fleet(&acme).unwrap();
    store.create_fleet(&other).unwrap();
    let boss = store.create_user(&super::cases::new_user("boss@acme.example", Role::FleetManager)).unwrap();
    store.set_fleet_member("acme", &boss.id, FleetRole::FleetManager).unwrap();

    let draft =
        store.save_run("acme", october(), &compose(store, &acme, &[usage("acme", 1, 100)]), RunMode::Preview).unwrap();
    assert!(store.invoice_for_viewer(&draft[0].id, &boss.id, Role::FleetManager).unwrap().is_none(), "drafts are ops'");
    assert!(store.invoice_for_viewer(&draft[0].id, "ops", Role::Ops).unwrap().is_some());
    assert!(store.list_invoices("acme", 10, None, false).unwrap().is_empty());

    let mine =
        store.save_run("acme", october(), &compose(store, &acme, &[usage("acme", 1, 100)]), RunMode::Issue).unwrap();
    let theirs =
        store.save_run("other", october(), &compose(store, &other, &[usage("other", 1, 100)]), RunMode::Issue).unwrap();
    assert_eq!(store.invoice_for_viewer(&mine[0].id, &boss.id, Role::FleetManager).unwrap().unwrap().id, mine[0].id);
    assert!(store.invoice_for_viewer(&theirs[0].id, &boss.id, Role::FleetManager).unwrap().is_none());
    assert!(store.invoice_for_viewer("inv_guessed", &boss.id, Role::FleetManager).unwrap().is_none());
    assert_eq!(store.list_invoices("acme", 10, None, false).unwrap().len(), 1);
    assert_eq!(theirs[0].document.number.as_deref(), Some("INV-2026-000002"), "one series across fleets");
}
