//! The monthly run: from a fleet's CDRs to an invoice (and credit notes), with EN 16931 arithmetic.
//!
//! Rounding, chosen to satisfy the EN 16931 business rules exactly rather than within a tolerance:
//!
//! 1. Each line's net amount (BT-131) is the CDR's cost without VAT rounded to the currency's minor
//!    unit (at most two decimals, BR-DEC-23), half away from zero.
//! 2. VAT is computed once per VAT group, not per line: a group's taxable amount (BT-116) is the sum
//!    of its lines' rounded net amounts (BR-S-08), its VAT (BT-117) is `taxable × rate / 100` rounded
//!    half away from zero to cents (BR-CO-17, BR-S-09). Rounding per line and summing would drift
//!    from BR-CO-17 by up to half a cent per line.
//! 3. The document's VAT (BT-110) is the sum of the groups' VAT (BR-CO-14), its net (BT-109) the sum
//!    of the lines (BR-CO-10, BR-CO-13), its gross (BT-112) net + VAT (BR-CO-15), and the amount due
//!    (BT-115) the gross (BR-CO-16: nothing prepaid, no rounding amount).
//! 4. The VAT shown on a line (for the fleet's own accounting, not part of EN 16931) is the group's
//!    VAT shared out over its lines by largest remainder: each line's share is within one cent of
//!    its own exact VAT, and the shares add up to the group's VAT, so the CSV sums to the invoice.
//!
//! VAT rate of a line: our rate for the supply, matched from the CDR. A CDR with a VAT-inclusive cost
//! gets the configured rate whose VAT matches the CPO's (`incl - excl`) within rounding; a CDR
//! without one, or whose VAT matches none of our rates (a CPO abroad), gets the configured default.
//! Matching instead of dividing keeps tiny amounts (0.05 -> 0.06 is "20 %") on a real rate.
//!
//! Credits are billed in the month the CPO issued them (a charge in the month it ended).
//!
//! Late CDRs: with `late_months` > 0 a run also bills the records of up to that many earlier
//! months that no issued document bills yet (a CDR that arrived after its month was invoiced, or
//! that an earlier run did not see). Their lines keep their real dates and are marked late; an
//! issued invoice is never touched.
//! A credit CDR (flagged `credit`, or with a negative cost) whose original CDR is already on
//! an issued invoice becomes a line of a credit note that refers to that invoice (one credit note per
//! corrected invoice, positive amounts); any other credit is a negative line on this month's invoice.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Duration, NaiveDate};
use emsp_domain::Currency;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::InvoicingError;
use crate::model::{Customer, Document, DocumentKind, Line, PrecedingInvoice, Supplier, Totals, VatGroup};
use crate::period::BillingPeriod;
use crate::usage::{CdrSource, UsageRecord};

/// Amounts beyond this (in the currency's major unit) are refused as implausible for one session;
/// it also keeps every sum far from `Decimal`'s range.
const LARGEST_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
const LARGEST_ENERGY_KWH: Decimal = Decimal::from_parts(10_000_000, 0, 0, false, 0);

/// What a run needs.
#[derive(Debug, Clone)]
pub struct RunInput<'a> {
    pub customer: &'a Customer,
    pub supplier: &'a Supplier,
    pub period: BillingPeriod,
    pub issue_date: NaiveDate,
    /// How many months before `period` this run reaches back for records not billed yet (late
    /// CDRs); 0 bills the period's records only.
    pub late_months: u32,
    /// Every CDR already on an issued document of this fleet, with that document. Such CDRs are
    /// never billed twice; credits of them become credit notes.
    pub billed: &'a HashMap<String, PrecedingInvoice>,
}

/// A CDR the run left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub cdr_id: String,
    pub reason: String,
}

/// The documents of one run, unnumbered (drafts).
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// `None` when nothing is to be invoiced.
    pub invoice: Option<Document>,
    pub credit_notes: Vec<Document>,
    pub skipped: Vec<Skipped>,
}

impl RunInput<'_> {
    /// Reads the fleet's CDRs of the period from `source` and composes the documents.
    pub fn run(&self, source: &dyn CdrSource) -> Result<RunOutcome, InvoicingError> {
        let (from, to) = self.period.bounds(self.customer.tz()?);
        let records = source.usage(&self.customer.id, from, to)?;
        compose_run(self, &records)
    }
}

/// Digits of amounts in `currency` on an invoice: its minor unit, at most two (BR-DEC-*).
pub fn money_digits(currency: &Currency) -> u32 {
    currency.minor_unit_digits().min(2)
}

/// Rounds an amount to `digits` decimals, half away from zero.
pub fn round_money(amount: Decimal, digits: u32) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(digits, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(digits);
    rounded
}

/// Composes the documents of one run from `records` (which may include CDRs outside the period or
/// already billed: those are skipped, so a rerun bills nothing twice).
pub fn compose_run(input: &RunInput<'_>, records: &[UsageRecord]) -> Result<RunOutcome, InvoicingError> {
    input.supplier.validate()?;
    input.customer.validate()?;
    let tz = input.customer.tz()?;
    let currency = &input.customer.currency;
    let digits = money_digits(currency);

    let mut skipped = Vec::new();
    let mut seen = HashSet::new();
    let mut invoice_records = Vec::new();
    let mut credit_records: BTreeMap<String, (PrecedingInvoice, Vec<&UsageRecord>)> = BTreeMap::new();
    for record in records {
        let skip = |reason: &str| Skipped { cdr_id: record.cdr_id.clone(), reason: reason.to_owned() };
        if !seen.insert(record.cdr_id.as_str()) {
            skipped.push(skip("listed twice"));
            continue;
        }
        let month = BillingPeriod::containing(record.billing_instant(), tz);
        if month > input.period || month < input.period.months_before(input.late_months) {
            skipped.push(skip("outside the period"));
            continue;
        }
        if input.billed.contains_key(&record.cdr_id) {
            skipped.push(skip("already billed"));
            continue;
        }
        if &record.currency != currency {
            skipped.push(skip(&format!("currency {} is not the fleet's {}", record.currency, currency)));
            continue;
        }
        if record.net.abs() > LARGEST_AMOUNT
            || record.gross.is_some_and(|g| g.abs() > LARGEST_AMOUNT)
            || record.energy_kwh.abs() > LARGEST_ENERGY_KWH
            || record.end < record.start
        {
            skipped.push(skip("implausible amounts or times"));
            continue;
        }
        let is_credit = record.is_credit();
        let corrected = record.credits_cdr.as_ref().and_then(|id| input.billed.get(id));
        match corrected {
            Some(preceding) if is_credit => {
                credit_records
                    .entry(preceding.number.clone())
                    .or_insert_with(|| (preceding.clone(), Vec::new()))
                    .1
                    .push(record);
            }
            _ => invoice_records.push(record),
        }
    }

    let compose = |kind: DocumentKind, records: Vec<&UsageRecord>, preceding: Option<PrecedingInvoice>| {
        let mut lines = Vec::with_capacity(records.len());
        let mut sorted = records;
        sorted.sort_by(|a, b| a.end.cmp(&b.end).then_with(|| a.cdr_id.cmp(&b.cdr_id)));
        for record in sorted {
            let late = BillingPeriod::containing(record.billing_instant(), tz) < input.period;
            lines.push(line_of(record, input.supplier, tz, digits, kind, late));
        }
        for (index, line) in lines.iter_mut().enumerate() {
            line.position = u32::try_from(index + 1).unwrap_or(u32::MAX);
        }
        let vat_groups = vat_groups(&mut lines, digits);
        let net: Decimal = lines.iter().map(|l| l.net).sum();
        let vat: Decimal = vat_groups.iter().map(|g| g.vat).sum();
        let gross = net + vat;
        Document {
            kind,
            number: None,
            issue_date: input.issue_date,
            due_date: match kind {
                DocumentKind::Invoice => {
                    Some(input.issue_date + Duration::days(i64::from(input.supplier.payment.days)))
                }
                DocumentKind::CreditNote => None,
            },
            period: input.period,
            period_start: input.period.first_day(),
            period_end: input.period.last_day(),
            currency: currency.clone(),
            supplier: input.supplier.clone(),
            customer: input.customer.clone(),
            lines,
            vat_groups,
            totals: Totals { net, vat, gross, payable: gross },
            preceding,
        }
    };

    let invoice = (!invoice_records.is_empty()).then(|| compose(DocumentKind::Invoice, invoice_records, None));
    let credit_notes = credit_records
        .into_values()
        .map(|(preceding, records)| compose(DocumentKind::CreditNote, records, Some(preceding)))
        .collect();
    Ok(RunOutcome { invoice, credit_notes, skipped })
}

fn line_of(
    record: &UsageRecord,
    supplier: &Supplier,
    tz: chrono_tz::Tz,
    digits: u32,
    kind: DocumentKind,
    late: bool,
) -> Line {
    let credit = record.is_credit();
    let magnitude = round_money(record.net.abs(), digits);
    // On an invoice a credit is negative; on a credit note every line is a credit, shown positive.
    let net = if credit && kind == DocumentKind::Invoice { -magnitude } else { magnitude };
    let seconds = (record.end - record.start).num_seconds().max(0);
    Line {
        position: 0,
        cdr_id: record.cdr_id.clone(),
        credit,
        late,
        start: record.start,
        end: record.end,
        date: record.end.with_timezone(&tz).date_naive(),
        location: record.location.clone(),
        evse: record.evse.clone(),
        energy_kwh: {
            let mut kwh = record.energy_kwh.abs().round_dp_with_strategy(3, RoundingStrategy::MidpointAwayFromZero);
            kwh.rescale(3);
            kwh
        },
        duration_minutes: (seconds + 30) / 60,
        net,
        vat_rate: vat_rate(supplier, record.net.abs(), record.gross.map(|g| g.abs())),
        vat: Decimal::ZERO,
    }
}

/// Our configured rate whose VAT on `net` matches the CPO's VAT (`gross - net`), within rounding
/// (a cent, or half a percentage point of the rate on large amounts); the default rate when none
/// matches (a CPO abroad with a rate we do not charge) or the CDR carries no VAT-inclusive cost.
fn vat_rate(supplier: &Supplier, net: Decimal, gross: Option<Decimal>) -> Decimal {
    let Some(gross) = gross else { return supplier.default_vat_rate.normalize() };
    if net.is_zero() {
        return supplier.default_vat_rate.normalize();
    }
    let cpo_vat = gross - net;
    let tolerance = Decimal::new(1, 2).max(net * Decimal::new(5, 3));
    let mut best: Option<(Decimal, Decimal)> = None;
    for &rate in &supplier.vat_rates {
        let gap = (net * rate / Decimal::ONE_HUNDRED - cpo_vat).abs();
        if gap <= tolerance && best.is_none_or(|(_, best_gap)| gap < best_gap) {
            best = Some((rate, gap));
        }
    }
    best.map_or(supplier.default_vat_rate, |(rate, _)| rate).normalize()
}

/// The VAT breakdown, and each line's share of its group's VAT (largest remainder).
fn vat_groups(lines: &mut [Line], digits: u32) -> Vec<VatGroup> {
    let mut by_rate: BTreeMap<Decimal, Vec<usize>> = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        by_rate.entry(line.vat_rate.normalize()).or_default().push(index);
    }
    let unit = Decimal::new(1, digits);
    let mut groups = Vec::with_capacity(by_rate.len());
    for (rate, members) in by_rate {
        let mut taxable: Decimal = members.iter().map(|&i| lines[i].net).sum();
        taxable.rescale(digits);
        let vat = round_money(taxable * rate / Decimal::ONE_HUNDRED, digits);

        let mut remainders = Vec::with_capacity(members.len());
        let mut shared = Decimal::ZERO;
        for &i in &members {
            let exact = lines[i].net * rate / Decimal::ONE_HUNDRED;
            let rounded = round_money(exact, digits);
            lines[i].vat = rounded;
            shared += rounded;
            remainders.push((exact - rounded, i));
        }
        // Under-shared: give a unit to the most under-rounded lines; over-shared: take from the
        // most over-rounded. Each line moves by one unit at most.
        let mut gap = vat - shared;
        if !gap.is_zero() {
            let up = gap.is_sign_positive();
            remainders.sort_by(|a, b| if up { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) });
            for &(_, i) in remainders.iter().cycle().take(members.len() * 2) {
                if gap.is_zero() {
                    break;
                }
                let step = if up { unit } else { -unit };
                lines[i].vat += step;
                gap -= step;
            }
        }
        groups.push(VatGroup {
            category: if rate.is_zero() { "Z".to_owned() } else { "S".to_owned() },
            rate,
            taxable,
            vat,
        });
    }
    groups
}
