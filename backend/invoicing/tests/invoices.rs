#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The monthly run, its arithmetic and its three renderings.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use emsp_domain::Currency;
use emsp_invoicing::{
    Address, BillingPeriod, CSV_HEADER, Customer, Document, DocumentKind, PaymentTerms, PrecedingInvoice, RunInput,
    Supplier, UsageRecord, compose_run, en16931, render_csv, render_pdf, render_ubl,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn supplier() -> Supplier {
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
        registration: Some("Amtsgericht Charlottenburg HRB 123456".into()),
        contact_name: "Billing team".into(),
        phone: "+49 30 1234567".into(),
        email: "billing@open-emsp.example".into(),
        payment: PaymentTerms {
            days: 14,
            iban: "DE02120300000000202051".into(),
            bic: Some("BYLADEM1001".into()),
            bank_name: Some("Deutsche Kreditbank".into()),
            note: "Payable within 14 days without deduction.".into(),
        },
        vat_rates: vec![dec!(19), dec!(7), dec!(0)],
        default_vat_rate: dec!(19),
        invoice_series: "INV".into(),
        credit_note_series: "CN".into(),
    }
}

fn customer() -> Customer {
    Customer {
        id: "fleet-acme".into(),
        name: "ACME Logistik AG".into(),
        address: Address {
            street: "Hafenstraße 12".into(),
            additional: Some("Fuhrpark".into()),
            postal_code: "20457".into(),
            city: "Hamburg".into(),
            country: "DE".into(),
        },
        vat_id: Some("DE987654321".into()),
        time_zone: "Europe/Berlin".into(),
        currency: Currency::new("EUR").unwrap(),
        billing_email: "ap@acme.example".into(),
        buyer_reference: Some("04011000-12345-34".into()),
    }
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// A session of 40 minutes ending at `end`, with `net` and `gross` as the CPO billed them.
fn record(id: &str, end: &str, net: Decimal, gross: Option<Decimal>) -> UsageRecord {
    let end = utc(end);
    UsageRecord {
        cdr_id: format!("DE*CPO*{id}"),
        start: end - Duration::minutes(40),
        end,
        location: "Parkhaus Mitte, Hauptstraße 5, Köln".into(),
        evse: "DE*CPO*E1234*1".into(),
        energy_kwh: dec!(21.4567),
        currency: Currency::new("EUR").unwrap(),
        net,
        gross,
        credit: false,
        credits_cdr: None,
        issued_at: None,
    }
}

fn october() -> BillingPeriod {
    "2026-10".parse().unwrap()
}

fn run(records: &[UsageRecord], billed: &HashMap<String, PrecedingInvoice>) -> emsp_invoicing::RunOutcome {
    let (supplier, customer) = (supplier(), customer());
    let input = RunInput {
        customer: &customer,
        supplier: &supplier,
        period: october(),
        issue_date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        late_months: 0,
        billed,
    };
    compose_run(&input, records).unwrap()
}

fn numbered(mut document: Document, number: &str) -> Document {
    document.number = Some(number.into());
    document
}

#[test]
fn vat_is_computed_per_rate_group_and_lines_share_it_exactly() {
    let records = vec![
        // Three 0.13 lines at 19 %: 0.0247 each would round to 0.02 (0.06 in all), but the group's
        // VAT is 0.39 × 19 % = 0.0741 -> 0.07 (BR-CO-17). The lines' shares are 0.03, 0.02, 0.02.
        record("a", "2026-10-03T10:00:00Z", dec!(0.13), Some(dec!(0.15))),
        record("b", "2026-10-04T10:00:00Z", dec!(0.13), Some(dec!(0.15))),
        record("c", "2026-10-05T10:00:00Z", dec!(0.13), Some(dec!(0.15))),
        // 7 %: 10.045 rounds half away from zero to 10.05; with 3.37: 13.42 × 7 % = 0.9394 -> 0.94.
        record("d", "2026-10-06T10:00:00Z", dec!(10.045), Some(dec!(10.75))),
        record("e", "2026-10-07T10:00:00Z", dec!(3.37), Some(dec!(3.61))),
        // No VAT-inclusive amount: the default rate (19 %).
        record("f", "2026-10-08T10:00:00Z", dec!(20), None),
        // Zero rated.
        record("g", "2026-10-09T10:00:00Z", dec!(5.50), Some(dec!(5.50))),
    ];
    // Rates are matched, not divided out: 0.05 -> 0.06 is 19 % (0.0095), a CPO's 10 % is none of
    // ours and gets the default.
    let small = run(&[record("s", "2026-10-03T10:00:00Z", dec!(0.05), Some(dec!(0.06)))], &HashMap::new());
    assert_eq!(small.invoice.unwrap().lines[0].vat_rate, dec!(19));
    let foreign = run(&[record("f", "2026-10-03T10:00:00Z", dec!(4.00), Some(dec!(4.40)))], &HashMap::new());
    assert_eq!(foreign.invoice.unwrap().lines[0].vat_rate, dec!(19));
    let seven = run(&[record("7", "2026-10-03T10:00:00Z", dec!(1000), Some(dec!(1070.04)))], &HashMap::new());
    assert_eq!(seven.invoice.unwrap().lines[0].vat_rate, dec!(7), "within rounding of 7 %");
    let outcome = run(&records, &HashMap::new());
    let invoice = outcome.invoice.expect("an invoice");
    assert!(outcome.credit_notes.is_empty() && outcome.skipped.is_empty());

    let rates: Vec<Decimal> = invoice.lines.iter().map(|l| l.vat_rate).collect();
    assert_eq!(rates, vec![dec!(19), dec!(19), dec!(19), dec!(7), dec!(7), dec!(19), dec!(0)]);
    assert_eq!(invoice.lines[3].net, dec!(10.05));
    assert_eq!(invoice.lines[3].net.to_string(), "10.05");

    let groups: Vec<(String, Decimal, Decimal, Decimal)> =
        invoice.vat_groups.iter().map(|g| (g.category.clone(), g.rate, g.taxable, g.vat)).collect();
    assert_eq!(
        groups,
        vec![
            ("Z".into(), dec!(0), dec!(5.50), dec!(0.00)),
            ("S".into(), dec!(7), dec!(13.42), dec!(0.94)),
            ("S".into(), dec!(19), dec!(20.39), dec!(3.87)),
        ]
    );
    // 20.39 × 19 % = 3.8741 -> 3.87 (per line it would be 0.02 × 3 + 3.80 = 3.86).
    assert_eq!(invoice.totals.net, dec!(39.31));
    assert_eq!(invoice.totals.vat, dec!(4.81));
    assert_eq!(invoice.totals.gross, dec!(44.12));
    assert_eq!(invoice.totals.payable, dec!(44.12));

    for group in &invoice.vat_groups {
        let shared: Decimal = invoice.lines.iter().filter(|l| l.vat_rate == group.rate).map(|l| l.vat).sum();
        assert_eq!(shared, group.vat, "the lines' VAT adds up to the group's at {} %", group.rate);
    }
    for line in &invoice.lines {
        let exact = line.net * line.vat_rate / dec!(100);
        assert!(
            (line.vat - exact).abs() < dec!(0.01),
            "line {} VAT {} is within a cent of {exact}",
            line.position,
            line.vat
        );
    }
    let small: Vec<Decimal> = invoice.lines[..3].iter().map(|l| l.vat).collect();
    assert_eq!(small.iter().copied().sum::<Decimal>(), dec!(0.07));
    assert_eq!(invoice.due_date, Some(NaiveDate::from_ymd_opt(2026, 11, 16).unwrap()));
    assert_eq!(invoice.lines[0].energy_kwh.to_string(), "21.457");
    assert_eq!(invoice.lines[0].duration_minutes, 40);
}

#[test]
fn a_session_belongs_to_the_month_it_ended_in_on_the_fleets_clock() {
    let records = vec![
        // 1 October 00:30 in Berlin (summer time, UTC+2): October, though it is still September in UTC.
        record("starts-october", "2026-09-30T22:30:00Z", dec!(1), None),
        // 30 September 23:30 in Berlin: September.
        record("september", "2026-09-30T21:30:00Z", dec!(1), None),
        // 31 October 23:30 in Berlin (winter time since 25 October, UTC+1): October.
        record("last-evening", "2026-10-31T22:30:00Z", dec!(1), None),
        // 1 November 00:30 in Berlin, though still 31 October in UTC: November.
        record("november", "2026-10-31T23:30:00Z", dec!(1), None),
        // The repeated hour of 25 October (02:30 CEST and 02:30 CET): both October.
        record("first-0230", "2026-10-25T00:30:00Z", dec!(1), None),
        record("second-0230", "2026-10-25T01:30:00Z", dec!(1), None),
    ];
    let outcome = run(&records, &HashMap::new());
    let billed: Vec<&str> = outcome.invoice.as_ref().unwrap().lines.iter().map(|l| l.cdr_id.as_str()).collect();
    assert_eq!(billed, vec!["DE*CPO*starts-october", "DE*CPO*first-0230", "DE*CPO*second-0230", "DE*CPO*last-evening"]);
    let skipped: Vec<&str> = outcome.skipped.iter().map(|s| s.cdr_id.as_str()).collect();
    assert_eq!(skipped, vec!["DE*CPO*september", "DE*CPO*november"]);
    assert!(outcome.skipped.iter().all(|s| s.reason == "outside the period"));
    let invoice = outcome.invoice.unwrap();
    assert_eq!(invoice.lines[0].date, NaiveDate::from_ymd_opt(2026, 10, 1).unwrap());
    assert_eq!(invoice.lines[3].date, NaiveDate::from_ymd_opt(2026, 10, 31).unwrap());
    assert_eq!(
        (invoice.period_start.to_string(), invoice.period_end.to_string()),
        ("2026-10-01".into(), "2026-10-31".into())
    );

    // The same instants in another zone land elsewhere: New York is still in October at 23:30 UTC.
    let (from, to) = october().bounds("America/New_York".parse().unwrap());
    assert_eq!(
        (from.to_rfc3339(), to.to_rfc3339()),
        ("2026-10-01T04:00:00+00:00".into(), "2026-11-01T04:00:00+00:00".into())
    );
}

#[test]
fn credits_become_negative_lines_or_a_credit_note_for_an_issued_invoice() {
    let mut credit_of_issued = record("credit-1", "2026-10-10T10:00:00Z", dec!(-8.40), Some(dec!(-10.00)));
    credit_of_issued.credit = true;
    credit_of_issued.credits_cdr = Some("DE*CPO*sept-1".into());
    // A credit flagged but sent with positive amounts (as some CPOs do) of a CDR not billed yet.
    let mut credit_of_open = record("credit-2", "2026-10-11T10:00:00Z", dec!(4.20), Some(dec!(5.00)));
    credit_of_open.credit = true;
    credit_of_open.credits_cdr = Some("DE*CPO*open".into());
    let records =
        vec![record("open", "2026-10-09T10:00:00Z", dec!(4.20), Some(dec!(5.00))), credit_of_open, credit_of_issued];
    let preceding = PrecedingInvoice {
        number: "INV-2026-000007".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(),
    };
    let billed = HashMap::from([("DE*CPO*sept-1".to_owned(), preceding.clone())]);
    let outcome = run(&records, &billed);

    let invoice = outcome.invoice.unwrap();
    assert_eq!(invoice.lines.len(), 2);
    assert!(invoice.lines[1].credit);
    assert_eq!(invoice.lines[1].net, dec!(-4.20));
    assert_eq!(invoice.lines[1].vat, dec!(-0.80));
    assert_eq!(invoice.totals.net, dec!(0.00));
    assert_eq!(invoice.totals.vat, dec!(0.00));

    assert_eq!(outcome.credit_notes.len(), 1);
    let note = &outcome.credit_notes[0];
    assert_eq!(note.kind, DocumentKind::CreditNote);
    assert_eq!(note.preceding.as_ref(), Some(&preceding));
    assert_eq!(note.due_date, None);
    assert_eq!(note.lines[0].net, dec!(8.40), "a credit note shows the credit as a positive amount");
    assert_eq!(note.totals.vat, dec!(1.60));
    assert_eq!(note.totals.payable, dec!(10.00));
}

#[test]
fn a_credit_is_billed_in_the_month_the_cpo_issued_it() {
    // A credit of a September session, issued by the CPO on 2 October: October's, as a credit note
    // of September's invoice; without its issue time it would fall in the (closed) September.
    let mut credit = record("credit-late", "2026-09-20T10:00:00Z", dec!(-5.00), Some(dec!(-5.95)));
    credit.credit = true;
    credit.credits_cdr = Some("DE*CPO*sept-1".into());
    credit.issued_at = Some(utc("2026-10-02T08:00:00Z"));
    let preceding = PrecedingInvoice {
        number: "INV-2026-000007".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
    };
    let billed = HashMap::from([("DE*CPO*sept-1".to_owned(), preceding)]);
    let outcome = run(std::slice::from_ref(&credit), &billed);
    assert!(outcome.invoice.is_none());
    assert_eq!(outcome.credit_notes.len(), 1);
    assert_eq!(
        outcome.credit_notes[0].lines[0].date,
        NaiveDate::from_ymd_opt(2026, 9, 20).unwrap(),
        "the session's day"
    );
    credit.issued_at = None;
    assert_eq!(run(&[credit], &billed).skipped[0].reason, "outside the period");
    // A charge is billed by its end, whenever it was issued.
    let mut late = record("late-charge", "2026-09-30T10:00:00Z", dec!(1), None);
    late.issued_at = Some(utc("2026-10-05T00:00:00Z"));
    assert!(run(&[late], &HashMap::new()).invoice.is_none());
}

#[test]
fn a_run_with_a_look_back_bills_late_records_marked_late_and_nothing_later() {
    let records = vec![
        record("october", "2026-10-05T10:00:00Z", dec!(10.00), Some(dec!(11.90))),
        // Ended in September (Berlin), not billed yet: late on October's invoice.
        record("september", "2026-09-30T21:30:00Z", dec!(2.00), Some(dec!(2.38))),
        // Too old for a look-back of two months, and after the period: skipped.
        record("july", "2026-07-31T10:00:00Z", dec!(3.00), None),
        record("november", "2026-10-31T23:30:00Z", dec!(4.00), None),
    ];
    let (supplier, customer) = (supplier(), customer());
    let billed = HashMap::new();
    let input = RunInput {
        customer: &customer,
        supplier: &supplier,
        period: october(),
        issue_date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        late_months: 2,
        billed: &billed,
    };
    let outcome = compose_run(&input, &records).unwrap();
    let invoice = outcome.invoice.unwrap();
    let lines: Vec<(&str, bool)> = invoice.lines.iter().map(|l| (l.cdr_id.as_str(), l.late)).collect();
    assert_eq!(lines, vec![("DE*CPO*september", true), ("DE*CPO*october", false)]);
    assert_eq!(invoice.lines[0].date, NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(), "its real date");
    assert_eq!(invoice.period, october());
    assert_eq!(invoice.totals.net, dec!(12.00));
    let skipped: Vec<&str> = outcome.skipped.iter().map(|s| s.cdr_id.as_str()).collect();
    assert_eq!(skipped, vec!["DE*CPO*july", "DE*CPO*november"]);

    // The outputs say so; a late line is still a valid EN 16931 line.
    let invoice = numbered(invoice, "INV-2026-000042");
    let (text, _) = pdf_text(&render_pdf(&invoice).unwrap());
    assert!(text.contains("Late: Parkhaus Mitte"), "{text}");
    let xml = render_ubl(&invoice).unwrap();
    assert!(String::from_utf8_lossy(&xml).contains("Late charging session 2026-09-30"));
    assert!(en16931::check(&xml).unwrap().is_empty());
    let json = serde_json::to_value(&invoice).unwrap();
    assert_eq!(json["lines"][0]["late"], true);
    assert!(json["lines"][1].get("late").is_none(), "documents without late lines keep their JSON");

    // Billed already: a late record is skipped like any other.
    let issued = PrecedingInvoice {
        number: "INV-2026-000041".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(),
    };
    let billed = HashMap::from([("DE*CPO*september".to_owned(), issued)]);
    let input = RunInput { billed: &billed, ..input };
    let again = compose_run(&input, &records).unwrap();
    assert_eq!(again.invoice.unwrap().lines.len(), 1);
}

#[test]
fn a_second_run_bills_nothing_twice() {
    let records = vec![
        record("a", "2026-10-03T10:00:00Z", dec!(12.00), Some(dec!(14.28))),
        record("a", "2026-10-03T10:00:00Z", dec!(12.00), Some(dec!(14.28))),
        record("b", "2026-10-04T10:00:00Z", dec!(1.00), Some(dec!(1.19))),
    ];
    let first = run(&records, &HashMap::new());
    assert_eq!(first.invoice.as_ref().unwrap().lines.len(), 2);
    assert_eq!(first.skipped[0].reason, "listed twice");

    let issued = PrecedingInvoice {
        number: "INV-2026-000001".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
    };
    let billed: HashMap<String, PrecedingInvoice> =
        first.invoice.unwrap().lines.iter().map(|l| (l.cdr_id.clone(), issued.clone())).collect();
    let second = run(&records, &billed);
    assert!(second.invoice.is_none() && second.credit_notes.is_empty());
    assert!(second.skipped.iter().filter(|s| s.reason == "already billed").count() == 2);
}

#[test]
fn foreign_currency_and_implausible_records_are_skipped_not_billed() {
    let mut chf = record("chf", "2026-10-03T10:00:00Z", dec!(10), None);
    chf.currency = Currency::new("CHF").unwrap();
    let huge = record("huge", "2026-10-03T10:00:00Z", Decimal::MAX, None);
    let mut backwards = record("backwards", "2026-10-03T10:00:00Z", dec!(1), None);
    backwards.start = backwards.end + Duration::hours(1);
    let outcome = run(&[chf, huge, backwards], &HashMap::new());
    assert!(outcome.invoice.is_none());
    let reasons: Vec<&str> = outcome.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(
        reasons,
        vec!["currency CHF is not the fleet's EUR", "implausible amounts or times", "implausible amounts or times"]
    );
}

#[test]
fn a_run_reads_the_fleets_cdrs_of_the_period_from_its_source() {
    let source: Vec<(String, UsageRecord)> = vec![
        ("fleet-acme".into(), record("mine", "2026-10-03T10:00:00Z", dec!(2), None)),
        ("fleet-other".into(), record("theirs", "2026-10-03T10:00:00Z", dec!(3), None)),
        ("fleet-acme".into(), record("later", "2026-11-03T10:00:00Z", dec!(4), None)),
    ];
    let (supplier, customer) = (supplier(), customer());
    let billed = HashMap::new();
    let input = RunInput {
        customer: &customer,
        supplier: &supplier,
        period: october(),
        issue_date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        late_months: 0,
        billed: &billed,
    };
    let outcome = input.run(&source).unwrap();
    let ids: Vec<String> = outcome.invoice.unwrap().lines.into_iter().map(|l| l.cdr_id).collect();
    assert_eq!(ids, vec!["DE*CPO*mine"]);

    let mut bad = customer.clone();
    bad.time_zone = "Mars/Olympus".into();
    let input = RunInput { customer: &bad, ..input };
    assert!(input.run(&source).unwrap_err().to_string().contains("Mars/Olympus"));
}

fn sample_invoice() -> Document {
    let mut credit = record("credit", "2026-10-20T10:00:00Z", dec!(-2.00), Some(dec!(-2.38)));
    credit.credit = true;
    let mut hostile = record("hostile", "2026-10-21T10:00:00Z", dec!(3.33), Some(dec!(3.96)));
    hostile.location = "=HYPERLINK(\"http://x\") <b>&amp; \"Tank & Rast\"".into();
    let records = vec![
        record("a", "2026-10-03T10:00:00Z", dec!(1234.565), Some(dec!(1469.13))),
        record("b", "2026-10-04T10:00:00Z", dec!(0.13), Some(dec!(0.15))),
        record("c", "2026-10-06T10:00:00Z", dec!(10.045), Some(dec!(10.75))),
        credit,
        hostile,
    ];
    numbered(run(&records, &HashMap::new()).invoice.unwrap(), "INV-2026-000042")
}

fn pdf_text(pdf: &[u8]) -> (String, usize) {
    let document = lopdf::Document::load_mem(pdf).expect("a readable PDF");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    (document.extract_text(&pages).expect("text"), pages.len())
}

#[test]
fn the_pdf_shows_the_number_the_lines_and_the_totals() {
    let invoice = sample_invoice();
    let pdf = render_pdf(&invoice).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert_eq!(render_pdf(&invoice).unwrap(), pdf, "rendering is deterministic");
    let (text, pages) = pdf_text(&pdf);
    assert_eq!(pages, 1);
    assert_eq!(invoice.totals.gross, dec!(1481.63));
    for expected in [
        "INVOICE",
        "INV-2026-000042",
        "Open EMSP GmbH",
        "ACME Logistik AG",
        "DE987654321",
        "2026-10-01 to 2026-10-31",
        "2026-11-16",
        "1,246.08",
        "235.55",
        "1,481.63 EUR",
        "Köln",
        "DE02120300000000202051",
        "Payable within 14 days",
        "page 1 of 1",
    ] {
        assert!(text.contains(expected), "the PDF text lacks {expected:?}:\n{text}");
    }
}

#[test]
fn a_long_invoice_breaks_over_pages_with_the_totals_on_the_last() {
    let records: Vec<UsageRecord> = (0..80)
        .map(|i| {
            record(
                &format!("s{i:03}"),
                &format!("2026-10-{:02}T{:02}:00:00Z", 1 + i / 4, 8 + i % 4),
                dec!(7.77),
                Some(dec!(9.25)),
            )
        })
        .collect();
    let invoice = numbered(run(&records, &HashMap::new()).invoice.unwrap(), "INV-2026-000043");
    let (text, pages) = pdf_text(&render_pdf(&invoice).unwrap());
    assert!(pages >= 3, "{pages} pages");
    assert!(text.contains(&format!("page {pages} of {pages}")));
    assert!(text.contains("621.60"), "net 80 × 7.77");
    assert!(text.contains("739.70 EUR"), "gross with VAT 621.60 × 19 % = 118.10");
}

#[test]
fn the_xml_is_a_well_formed_xrechnung_invoice_that_keeps_the_en16931_rules() {
    let invoice = sample_invoice();
    let xml = render_ubl(&invoice).unwrap();
    let violations = en16931::check(&xml).unwrap();
    assert!(violations.is_empty(), "{violations:#?}\n{}", String::from_utf8_lossy(&xml));
    let text = String::from_utf8(xml).unwrap();
    for expected in [
        "<cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0</cbc:CustomizationID>",
        "<cbc:ID>INV-2026-000042</cbc:ID>",
        "<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>",
        "<cbc:BuyerReference>04011000-12345-34</cbc:BuyerReference>",
        "<cbc:DueDate>2026-11-16</cbc:DueDate>",
        "<cbc:PayableAmount currencyID=\"EUR\">1481.63</cbc:PayableAmount>",
        "<cbc:InvoicedQuantity unitCode=\"C62\">-1</cbc:InvoicedQuantity>",
        "&lt;b&gt;&amp;amp; &quot;Tank &amp; Rast&quot;",
    ] {
        assert!(text.contains(expected), "the XML lacks {expected}:\n{text}");
    }
}

#[test]
fn a_credit_note_is_a_ubl_credit_note_referring_to_the_invoice() {
    let mut credit = record("credit", "2026-10-10T10:00:00Z", dec!(-8.40), Some(dec!(-10.00)));
    credit.credit = true;
    credit.credits_cdr = Some("DE*CPO*sept-1".into());
    let preceding = PrecedingInvoice {
        number: "INV-2026-000007".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(),
    };
    let billed = HashMap::from([("DE*CPO*sept-1".to_owned(), preceding)]);
    let note = numbered(run(&[credit], &billed).credit_notes.remove(0), "CN-2026-000001");
    let xml = render_ubl(&note).unwrap();
    assert!(en16931::check(&xml).unwrap().is_empty(), "{}", String::from_utf8_lossy(&xml));
    let text = String::from_utf8(xml).unwrap();
    assert!(text.contains("<ubl:CreditNote xmlns:ubl=\"urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2\""));
    assert!(text.contains("<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>"));
    assert!(text.contains("<cbc:ID>INV-2026-000007</cbc:ID>"));
    assert!(text.contains("<cbc:CreditedQuantity unitCode=\"C62\">1</cbc:CreditedQuantity>"));
    assert!(!text.contains("DueDate"));
    let (pdf, _) = pdf_text(&render_pdf(&note).unwrap());
    assert!(pdf.contains("CREDIT NOTE") && pdf.contains("CN-2026-000001") && pdf.contains("INV-2026-000007"), "{pdf}");
    assert!(pdf.contains("10.00 EUR"));
}

#[test]
fn the_checker_finds_broken_sums_and_missing_elements() {
    let xml = String::from_utf8(render_ubl(&sample_invoice()).unwrap()).unwrap();
    let rules = |xml: &str| -> Vec<&'static str> {
        en16931::check(xml.as_bytes()).unwrap().into_iter().map(|v| v.rule).collect()
    };

    let wrong_due = xml.replace(">1481.63</cbc:PayableAmount>", ">1481.64</cbc:PayableAmount>");
    assert_eq!(rules(&wrong_due), vec!["BR-CO-16"]);
    let wrong_vat = xml.replacen(
        "<cbc:TaxAmount currencyID=\"EUR\">235.55</cbc:TaxAmount>",
        "<cbc:TaxAmount currencyID=\"EUR\">235.54</cbc:TaxAmount>",
        1,
    );
    assert!(rules(&wrong_vat).contains(&"BR-CO-14"), "{:?}", rules(&wrong_vat));
    let no_buyer_reference = xml.replace("<cbc:BuyerReference>04011000-12345-34</cbc:BuyerReference>", "");
    assert_eq!(rules(&no_buyer_reference), vec!["BR-DE-15"]);
    let three_decimals = xml.replace(">1481.63</cbc:PayableAmount>", ">1481.630</cbc:PayableAmount>");
    assert_eq!(rules(&three_decimals), vec!["BR-DEC"]);
    let no_seller_name = xml.replace("<cbc:RegistrationName>Open EMSP GmbH</cbc:RegistrationName>", "");
    assert_eq!(rules(&no_seller_name), vec!["BR-06"]);
    let moved_line = xml.replacen(
        "<cbc:LineExtensionAmount currencyID=\"EUR\">0.13</cbc:LineExtensionAmount>",
        "<cbc:LineExtensionAmount currencyID=\"EUR\">0.14</cbc:LineExtensionAmount>",
        1,
    );
    let moved = rules(&moved_line);
    assert!(
        moved.contains(&"BR-CO-10") && moved.contains(&"BR-S-08") && moved.contains(&"PEPPOL-EN16931-R120"),
        "{moved:?}"
    );
    assert!(en16931::check(b"<ubl:Invoice><cbc:ID>1</cbc:ID>").is_err(), "not well-formed");
    assert!(en16931::check(b"<a></b>").is_err());
}

#[test]
fn the_csv_parses_back_and_adds_up_to_the_invoice() {
    let invoice = sample_invoice();
    let csv = render_csv(&invoice).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), CSV_HEADER.to_vec());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), invoice.lines.len());
    let column = |name: &str| CSV_HEADER.iter().position(|h| *h == name).unwrap();
    let sum = |name: &str| rows.iter().map(|r| r[column(name)].parse::<Decimal>().unwrap()).sum::<Decimal>();
    assert_eq!(sum("net_amount"), invoice.totals.net);
    assert_eq!(sum("vat_amount"), invoice.totals.vat);
    assert_eq!(sum("gross_amount"), invoice.totals.gross);
    assert!(rows.iter().all(|r| &r[column("document_number")] == "INV-2026-000042"));
    let hostile = rows.iter().find(|r| r[column("cdr_id")].ends_with("hostile")).unwrap();
    assert!(hostile[column("location")].starts_with("'=HYPERLINK"), "a formula is defused");
    let credit = rows.iter().find(|r| &r[column("credit")] == "true").unwrap();
    assert_eq!(&credit[column("net_amount")], "-2.00");
    assert_eq!(&rows[0][column("date")], "2026-10-03");
}

#[test]
fn a_stored_document_renders_the_same_after_a_json_round_trip() {
    let invoice = sample_invoice();
    let json = serde_json::to_string(&invoice).unwrap();
    let back: Document = serde_json::from_str(&json).unwrap();
    assert_eq!(back, invoice);
    assert_eq!(render_pdf(&back).unwrap(), render_pdf(&invoice).unwrap());
    assert_eq!(render_ubl(&back).unwrap(), render_ubl(&invoice).unwrap());
}

#[test]
fn a_cdr_maps_to_a_usage_record() {
    let cdr: emsp_domain::Cdr = serde_json::from_value(serde_json::json!({
        "party": {"country_code": "DE", "party_id": "CPO"},
        "id": "CDR-1",
        "start_date_time": "2026-10-03T09:00:00Z",
        "end_date_time": "2026-10-03T10:00:00Z",
        "cdr_token": {"party": {"country_code": "DE", "party_id": "EMS"}, "uid": "AB12", "type": "RFID", "contract_id": "DE-EMS-C12345678-X"},
        "auth_method": "WHITELIST",
        "cdr_location": {"id": "L1", "name": "Parkhaus", "address": "Hauptstraße 5", "city": "Köln", "evse_uid": "E1", "evse_id": "DE*CPO*E1"},
        "currency": "EUR",
        "charging_periods": [],
        "total_cost": {"excl_vat": "-8.40", "incl_vat": "-10.00"},
        "total_energy": "21.5",
        "total_time": "1",
        "credit": true,
        "credit_reference_id": "CDR-0",
        "last_updated": "2026-10-03T10:05:00Z"
    }))
    .unwrap();
    let record = UsageRecord::from(&cdr);
    assert_eq!(record.cdr_id, "DE*CPO*CDR-1");
    assert_eq!(record.location, "Parkhaus, Hauptstraße 5, Köln");
    assert_eq!(record.evse, "DE*CPO*E1");
    assert_eq!(record.net, dec!(-8.40));
    assert_eq!(record.gross, Some(dec!(-10.00)));
    assert!(record.credit);
    assert_eq!(record.credits_cdr.as_deref(), Some("DE*CPO*CDR-0"));
    assert_eq!(record.issued_at, Some(utc("2026-10-03T10:05:00Z")));
}
