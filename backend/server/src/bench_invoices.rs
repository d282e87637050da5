//! `emsp bench invoices`: one large fleet's month, from CDRs to an issued invoice and its three
//! renderings: how long composing, checking, storing and rendering take, and how big the files are.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use emsp_invoicing::{Address, BillingPeriod, Customer, PaymentTerms, RunInput, Supplier, UsageRecord};
use emsp_store::RunMode;
use emsp_store::testing::TestDb;
use rust_decimal::Decimal;
use serde::Serialize;

/// The figures (milliseconds and bytes).
#[derive(Debug, Serialize)]
pub struct InvoiceBenchReport {
    pub database: &'static str,
    pub lines: usize,
    pub compose_ms: f64,
    pub xml_ms: f64,
    pub xml_bytes: usize,
    pub en16931_check_ms: f64,
    pub pdf_ms: f64,
    pub pdf_bytes: usize,
    pub pdf_pages: usize,
    pub csv_ms: f64,
    pub csv_bytes: usize,
    pub issue_in_store_ms: f64,
}

impl InvoiceBenchReport {
    pub fn to_table(&self) -> String {
        format!(
            "invoice of {} lines ({})\n  compose          {:>9.1} ms\n  UBL XML          {:>9.1} ms  {} bytes\n  EN 16931 check   {:>9.1} ms\n  PDF              {:>9.1} ms  {} bytes, {} pages\n  CSV              {:>9.1} ms  {} bytes\n  issue (store)    {:>9.1} ms",
            self.lines,
            self.database,
            self.compose_ms,
            self.xml_ms,
            self.xml_bytes,
            self.en16931_check_ms,
            self.pdf_ms,
            self.pdf_bytes,
            self.pdf_pages,
            self.csv_ms,
            self.csv_bytes,
            self.issue_in_store_ms
        )
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn sample_supplier() -> Supplier {
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
        invoice_series: "BENCH".into(),
        credit_note_series: "BENCHCN".into(),
    }
}

/// Runs the benchmark on a temporary SQLite database, or on PostgreSQL at `postgres_url` (in a
/// schema of its own, dropped afterwards).
pub fn run(lines: usize, postgres_url: Option<&str>) -> anyhow::Result<InvoiceBenchReport> {
    let db = match postgres_url {
        Some(url) => TestDb::postgres_at(url),
        None => TestDb::sqlite(),
    };
    let store = db.store();
    let customer = Customer {
        id: "bench-fleet".into(),
        name: "Bench Logistics AG".into(),
        address: Address {
            street: "Hafenstraße 12".into(),
            additional: None,
            postal_code: "20457".into(),
            city: "Hamburg".into(),
            country: "DE".into(),
        },
        vat_id: Some("DE987654321".into()),
        time_zone: "Europe/Berlin".into(),
        currency: emsp_domain::Currency::new("EUR")?,
        billing_email: "ap@bench.example".into(),
        buyer_reference: None,
    };
    store.create_fleet(&customer)?;
    let supplier = sample_supplier();
    let period: BillingPeriod = "2026-10".parse()?;
    let (from, _) = period.bounds(customer.tz()?);
    let seconds_in_month = 30 * 24 * 3600;
    let records: Vec<UsageRecord> = (0..lines)
        .map(|i| {
            let offset = i64::try_from(i).unwrap_or(0) * seconds_in_month / i64::try_from(lines.max(1)).unwrap_or(1);
            let end: DateTime<Utc> = from + Duration::seconds(offset + 3600);
            let cents = 500 + i64::try_from(i % 5000).unwrap_or(0);
            UsageRecord {
                cdr_id: format!("DE*CPO*bench-{i}"),
                start: end - Duration::minutes(35 + i64::try_from(i % 50).unwrap_or(0)),
                end,
                location: format!("Ladepark {}, Hauptstraße {}, Köln", i % 97, i % 300),
                evse: format!("DE*CPO*E{}*1", i % 1000),
                energy_kwh: Decimal::new(i64::try_from(5_000 + i % 60_000).unwrap_or(0), 3),
                currency: customer.currency.clone(),
                net: Decimal::new(cents * 1001, 5),
                gross: Some(Decimal::new(cents * 1001 * if i % 10 == 0 { 107 } else { 119 }, 7)),
                credit: false,
                credits_cdr: None,
                issued_at: None,
            }
        })
        .collect();
    let billed = HashMap::new();
    let input = RunInput {
        customer: &customer,
        supplier: &supplier,
        period,
        issue_date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default(),
        late_months: 0,
        billed: &billed,
    };
    let started = Instant::now();
    let outcome = emsp_invoicing::compose_run(&input, &records)?;
    let compose_ms = ms(started);
    let mut invoice = outcome.invoice.ok_or_else(|| anyhow::anyhow!("nothing composed"))?;

    let started = Instant::now();
    let saved = store.save_run(&customer.id, period, std::slice::from_ref(&invoice), RunMode::Issue)?;
    let issue_in_store_ms = ms(started);
    invoice = saved.into_iter().next().map(|r| r.document).unwrap_or(invoice);

    let started = Instant::now();
    let xml = emsp_invoicing::render_ubl(&invoice)?;
    let xml_ms = ms(started);
    let started = Instant::now();
    let violations = emsp_invoicing::en16931::check(&xml)?;
    let en16931_check_ms = ms(started);
    if let Some(first) = violations.first() {
        anyhow::bail!("the benchmark invoice breaks {}: {}", first.rule, first.message);
    }
    let started = Instant::now();
    let pdf = emsp_invoicing::render_pdf(&invoice)?;
    let pdf_ms = ms(started);
    let pdf_pages = page_count(&pdf);
    let started = Instant::now();
    let csv = emsp_invoicing::render_csv(&invoice)?;
    let csv_ms = ms(started);
    Ok(InvoiceBenchReport {
        database: if postgres_url.is_some() { "postgresql" } else { "sqlite" },
        lines: invoice.lines.len(),
        compose_ms,
        xml_ms,
        xml_bytes: xml.len(),
        en16931_check_ms,
        pdf_ms,
        pdf_bytes: pdf.len(),
        pdf_pages,
        csv_ms,
        csv_bytes: csv.len(),
        issue_in_store_ms,
    })
}

/// The `/Count` of the PDF's page tree.
fn page_count(pdf: &[u8]) -> usize {
    let Some(at) = pdf.windows(7).position(|w| w == b"/Count ") else { return 0 };
    pdf[at + 7..].iter().take_while(|b| b.is_ascii_digit()).fold(0, |n, b| n * 10 + usize::from(b - b'0'))
}
