//! The invoice model: who bills whom, for what, with which VAT. A [`Document`] is everything a
//! rendering needs; it is stored as JSON beside the invoice row, so the PDF, CSV and XML of an issued
//! invoice are regenerated identically years later, whatever the configuration says by then.

use chrono::{DateTime, NaiveDate, Utc};
use emsp_domain::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::InvoicingError;
use crate::period::BillingPeriod;

/// A postal address (EN 16931 BG-5 / BG-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street and number (BT-35 / BT-50).
    pub street: String,
    /// A second address line (BT-36 / BT-51).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional: Option<String>,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2, upper case (BT-40 / BT-55).
    pub country: String,
}

impl Address {
    pub fn validate(&self, field: &'static str) -> Result<(), InvoicingError> {
        if self.street.trim().is_empty() || self.city.trim().is_empty() || self.postal_code.trim().is_empty() {
            return Err(InvoicingError::invalid(field, "street, postal code and city are required"));
        }
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(InvoicingError::invalid(
                field,
                format!("country {:?} is not ISO 3166-1 alpha-2", self.country),
            ));
        }
        Ok(())
    }

    /// The address as printed lines.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.street.clone()];
        if let Some(more) = &self.additional {
            lines.push(more.clone());
        }
        lines.push(format!("{} {}", self.postal_code, self.city));
        lines.push(self.country.clone());
        lines
    }
}

/// How and when the customer pays (BG-16, BT-20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentTerms {
    /// Days from the issue date to the due date.
    pub days: u32,
    /// The payee's IBAN (BT-84).
    pub iban: String,
    /// The payee's BIC (BT-86).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_name: Option<String>,
    /// Free text printed and sent as BT-20, e.g. "Payable within 14 days without deduction."
    pub note: String,
}

/// Us: the EMSP that issues the invoices (from configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Supplier {
    /// Legal name (BT-27).
    pub name: String,
    pub address: Address,
    /// VAT identifier with country prefix (BT-31), e.g. `DE123456789`.
    pub vat_id: String,
    /// Trade register entry, printed in the footer (BT-30 / BT-33).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
    /// Contact (BG-6): XRechnung requires a name, a telephone number and an email address.
    pub contact_name: String,
    pub phone: String,
    pub email: String,
    pub payment: PaymentTerms,
    /// The VAT rates (percent) we charge; a CDR's rate is matched to the nearest of them.
    pub vat_rates: Vec<Decimal>,
    /// The rate of a CDR that carries no VAT-inclusive amount.
    pub default_vat_rate: Decimal,
    /// Number series of invoices and credit notes (the prefix of their numbers).
    pub invoice_series: String,
    pub credit_note_series: String,
}

impl Supplier {
    pub fn validate(&self) -> Result<(), InvoicingError> {
        if self.name.trim().is_empty() {
            return Err(InvoicingError::invalid("supplier.name", "is required"));
        }
        self.address.validate("supplier.address")?;
        if self.vat_id.trim().len() < 4 {
            return Err(InvoicingError::invalid("supplier.vat_id", "is required"));
        }
        if self.payment.iban.trim().is_empty() {
            return Err(InvoicingError::invalid("supplier.payment.iban", "is required"));
        }
        if self.email.trim().is_empty() || self.phone.trim().is_empty() || self.contact_name.trim().is_empty() {
            return Err(InvoicingError::invalid("supplier.contact", "name, phone and email are required"));
        }
        for rate in self.vat_rates.iter().chain([&self.default_vat_rate]) {
            if rate.is_sign_negative() || *rate >= Decimal::ONE_HUNDRED {
                return Err(InvoicingError::invalid("supplier.vat_rates", format!("{rate} is not a percentage")));
            }
        }
        if self.invoice_series.trim().is_empty() || self.credit_note_series.trim().is_empty() {
            return Err(InvoicingError::invalid("supplier.series", "is required"));
        }
        Ok(())
    }
}

/// The fleet we bill (the buyer, BG-7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Our fleet id.
    pub id: String,
    pub name: String,
    pub address: Address,
    /// VAT identifier (BT-48); absent for a buyer without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_id: Option<String>,
    /// IANA time zone name: the calendar the fleet's months are counted in.
    pub time_zone: String,
    pub currency: Currency,
    /// Where invoices go; also the buyer's electronic address (BT-49).
    pub billing_email: String,
    /// The buyer reference (BT-10, the Leitweg-ID of German public buyers); the fleet id when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_reference: Option<String>,
}

impl Customer {
    pub fn validate(&self) -> Result<(), InvoicingError> {
        if self.name.trim().is_empty() {
            return Err(InvoicingError::invalid("fleet.name", "is required"));
        }
        self.address.validate("fleet.address")?;
        self.tz()?;
        if !self.billing_email.contains('@') {
            return Err(InvoicingError::invalid("fleet.billing_email", "is not an email address"));
        }
        Ok(())
    }

    pub fn tz(&self) -> Result<chrono_tz::Tz, InvoicingError> {
        self.time_zone.parse().map_err(|_| InvoicingError::TimeZone(self.time_zone.clone()))
    }

    pub fn buyer_reference(&self) -> &str {
        self.buyer_reference.as_deref().unwrap_or(&self.id)
    }
}

/// Invoice (UBL `Invoice`, type code 380) or credit note (UBL `CreditNote`, type code 381).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DocumentKind {
    Invoice,
    CreditNote,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Invoice => "INVOICE",
            DocumentKind::CreditNote => "CREDIT_NOTE",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "INVOICE" => Some(DocumentKind::Invoice),
            "CREDIT_NOTE" => Some(DocumentKind::CreditNote),
            _ => None,
        }
    }

    /// UNTDID 1001 document type code (BT-3).
    pub fn type_code(self) -> &'static str {
        match self {
            DocumentKind::Invoice => "380",
            DocumentKind::CreditNote => "381",
        }
    }
}

/// Where a document is in its life. Only a draft changes; an issued document is corrected by a
/// credit note, never edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DocumentStatus {
    Draft,
    Issued,
    Paid,
    Void,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Draft => "DRAFT",
            DocumentStatus::Issued => "ISSUED",
            DocumentStatus::Paid => "PAID",
            DocumentStatus::Void => "VOID",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "DRAFT" => Some(DocumentStatus::Draft),
            "ISSUED" => Some(DocumentStatus::Issued),
            "PAID" => Some(DocumentStatus::Paid),
            "VOID" => Some(DocumentStatus::Void),
            _ => None,
        }
    }
}

/// The invoice a credit note corrects (BG-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrecedingInvoice {
    pub number: String,
    pub issue_date: NaiveDate,
}

/// One charging session on the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// 1-based position (BT-126).
    pub position: u32,
    /// The CDR billed (or credited) by this line.
    pub cdr_id: String,
    /// A credit of an earlier session: negative amounts on an invoice.
    pub credit: bool,
    /// A late CDR: it belongs to an earlier month (its date says which) but arrived after that
    /// month was invoiced, or was not yet billed when it ran.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The day the session ended, in the fleet's time zone.
    pub date: NaiveDate,
    pub location: String,
    pub evse: String,
    /// kWh, three decimals.
    pub energy_kwh: Decimal,
    pub duration_minutes: i64,
    /// Net amount (BT-131), rounded to the currency's cents.
    pub net: Decimal,
    /// VAT rate in percent (BT-152).
    pub vat_rate: Decimal,
    /// This line's share of its VAT group's amount (informative; EN 16931 carries VAT per group).
    pub vat: Decimal,
}

impl Line {
    pub fn gross(&self) -> Decimal {
        self.net + self.vat
    }
}

/// One VAT breakdown entry (BG-23).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatGroup {
    /// UNCL 5305 category: `S` (standard) or `Z` (zero rated).
    pub category: String,
    pub rate: Decimal,
    /// BT-116: sum of the net amounts of the lines at this rate.
    pub taxable: Decimal,
    /// BT-117: `taxable × rate / 100`, rounded to cents.
    pub vat: Decimal,
}

/// Document totals (BG-22).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// BT-106 = BT-109 (no document-level allowances or charges).
    pub net: Decimal,
    /// BT-110 = sum of BT-117.
    pub vat: Decimal,
    /// BT-112 = BT-109 + BT-110.
    pub gross: Decimal,
    /// BT-115 = BT-112 (nothing prepaid, no rounding amount).
    pub payable: Decimal,
}

/// An invoice or credit note, complete enough to render every output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub kind: DocumentKind,
    /// The number (BT-1); `None` while a draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    pub issue_date: NaiveDate,
    /// BT-9; invoices only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    pub period: BillingPeriod,
    /// Supply period (BG-14), first and last day of the month.
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub currency: emsp_domain::Currency,
    pub supplier: Supplier,
    pub customer: Customer,
    pub lines: Vec<Line>,
    pub vat_groups: Vec<VatGroup>,
    pub totals: Totals,
    /// Credit notes: the invoice they correct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preceding: Option<PrecedingInvoice>,
}

impl Document {
    /// The number, or `DRAFT` before issue.
    pub fn display_number(&self) -> &str {
        self.number.as_deref().unwrap_or("DRAFT")
    }
}
