//! The structured e-invoice: UBL 2.1 `Invoice` (type 380) or `CreditNote` (type 381) following
//! EN 16931 with the XRechnung 3.0 CIUS, so German B2B buyers can read it without a PDF.
//!
//! Element order follows the UBL 2.1 schemas (order matters to their validators). Every amount
//! carries the document currency and the currency's digits (at most two, BR-DEC-*). A line is one
//! charging session: quantity 1 (`C62`, "one"), price = its net amount; a credit on an invoice is
//! quantity -1 at a positive price (BR-27 forbids negative prices).

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use rust_decimal::Decimal;

use crate::compose::money_digits;
use crate::error::InvoicingError;
use crate::model::{Address, Document, DocumentKind};

/// XRechnung 3.0 on EN 16931 (BT-24).
pub const CUSTOMIZATION_ID: &str = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0";
/// The business process (BT-23): PEPPOL billing.
pub const PROFILE_ID: &str = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0";

const NS_INVOICE: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const NS_CREDIT_NOTE: &str = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
const NS_CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
const NS_CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";

struct Xml {
    writer: Writer<Vec<u8>>,
}

type XmlResult = Result<(), InvoicingError>;

fn render_error(error: impl std::fmt::Display) -> InvoicingError {
    InvoicingError::Render(error.to_string())
}

impl Xml {
    fn open(&mut self, name: &str, attributes: &[(&str, &str)]) -> XmlResult {
        let mut start = BytesStart::new(name);
        for attribute in attributes {
            start.push_attribute(*attribute);
        }
        self.writer.write_event(Event::Start(start)).map_err(render_error)
    }

    fn close(&mut self, name: &str) -> XmlResult {
        self.writer.write_event(Event::End(BytesEnd::new(name))).map_err(render_error)
    }

    fn leaf_with(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) -> XmlResult {
        self.open(name, attributes)?;
        self.writer.write_event(Event::Text(BytesText::new(text))).map_err(render_error)?;
        self.close(name)
    }

    fn leaf(&mut self, name: &str, text: &str) -> XmlResult {
        self.leaf_with(name, &[], text)
    }

    fn amount(&mut self, name: &str, amount: Decimal, currency: &str, digits: u32) -> XmlResult {
        self.leaf_with(name, &[("currencyID", currency)], &fixed(amount, digits))
    }

    fn address(&mut self, address: &Address) -> XmlResult {
        self.open("cac:PostalAddress", &[])?;
        self.leaf("cbc:StreetName", &address.street)?;
        if let Some(more) = &address.additional {
            self.leaf("cbc:AdditionalStreetName", more)?;
        }
        self.leaf("cbc:CityName", &address.city)?;
        self.leaf("cbc:PostalZone", &address.postal_code)?;
        self.open("cac:Country", &[])?;
        self.leaf("cbc:IdentificationCode", &address.country)?;
        self.close("cac:Country")?;
        self.close("cac:PostalAddress")
    }

    fn vat_scheme(&mut self) -> XmlResult {
        self.open("cac:TaxScheme", &[])?;
        self.leaf("cbc:ID", "VAT")?;
        self.close("cac:TaxScheme")
    }
}

/// A decimal with exactly `digits` decimals.
pub(crate) fn fixed(amount: Decimal, digits: u32) -> String {
    let mut value = amount.round_dp_with_strategy(digits, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    value.rescale(digits);
    value.to_string()
}

/// The document as UBL 2.1 XML (UTF-8). A draft (no number yet) renders with the number `DRAFT`.
pub fn render_ubl(document: &Document) -> Result<Vec<u8>, InvoicingError> {
    let mut xml = Xml { writer: Writer::new_with_indent(Vec::new(), b' ', 2) };
    let currency = document.currency.as_str();
    let digits = money_digits(&document.currency);
    let (root, namespace, type_code_element, line_element, quantity_element) = match document.kind {
        DocumentKind::Invoice => {
            ("ubl:Invoice", NS_INVOICE, "cbc:InvoiceTypeCode", "cac:InvoiceLine", "cbc:InvoicedQuantity")
        }
        DocumentKind::CreditNote => {
            ("ubl:CreditNote", NS_CREDIT_NOTE, "cbc:CreditNoteTypeCode", "cac:CreditNoteLine", "cbc:CreditedQuantity")
        }
    };
    xml.writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None))).map_err(render_error)?;
    xml.open(root, &[("xmlns:ubl", namespace), ("xmlns:cac", NS_CAC), ("xmlns:cbc", NS_CBC)])?;
    xml.leaf("cbc:CustomizationID", CUSTOMIZATION_ID)?;
    xml.leaf("cbc:ProfileID", PROFILE_ID)?;
    xml.leaf("cbc:ID", document.display_number())?;
    xml.leaf("cbc:IssueDate", &document.issue_date.to_string())?;
    if let (DocumentKind::Invoice, Some(due)) = (document.kind, document.due_date) {
        xml.leaf("cbc:DueDate", &due.to_string())?;
    }
    xml.leaf(type_code_element, document.kind.type_code())?;
    xml.leaf("cbc:Note", &format!("Charging sessions {}", document.period))?;
    xml.leaf("cbc:DocumentCurrencyCode", currency)?;
    xml.leaf("cbc:BuyerReference", document.customer.buyer_reference())?;
    xml.open("cac:InvoicePeriod", &[])?;
    xml.leaf("cbc:StartDate", &document.period_start.to_string())?;
    xml.leaf("cbc:EndDate", &document.period_end.to_string())?;
    xml.close("cac:InvoicePeriod")?;
    if let Some(preceding) = &document.preceding {
        xml.open("cac:BillingReference", &[])?;
        xml.open("cac:InvoiceDocumentReference", &[])?;
        xml.leaf("cbc:ID", &preceding.number)?;
        xml.leaf("cbc:IssueDate", &preceding.issue_date.to_string())?;
        xml.close("cac:InvoiceDocumentReference")?;
        xml.close("cac:BillingReference")?;
    }

    let supplier = &document.supplier;
    xml.open("cac:AccountingSupplierParty", &[])?;
    xml.open("cac:Party", &[])?;
    xml.leaf_with("cbc:EndpointID", &[("schemeID", "EM")], &supplier.email)?;
    xml.open("cac:PartyName", &[])?;
    xml.leaf("cbc:Name", &supplier.name)?;
    xml.close("cac:PartyName")?;
    xml.address(&supplier.address)?;
    xml.open("cac:PartyTaxScheme", &[])?;
    xml.leaf("cbc:CompanyID", &supplier.vat_id)?;
    xml.vat_scheme()?;
    xml.close("cac:PartyTaxScheme")?;
    xml.open("cac:PartyLegalEntity", &[])?;
    xml.leaf("cbc:RegistrationName", &supplier.name)?;
    if let Some(registration) = &supplier.registration {
        xml.leaf("cbc:CompanyID", registration)?;
    }
    xml.close("cac:PartyLegalEntity")?;
    xml.open("cac:Contact", &[])?;
    xml.leaf("cbc:Name", &supplier.contact_name)?;
    xml.leaf("cbc:Telephone", &supplier.phone)?;
    xml.leaf("cbc:ElectronicMail", &supplier.email)?;
    xml.close("cac:Contact")?;
    xml.close("cac:Party")?;
    xml.close("cac:AccountingSupplierParty")?;

    let customer = &document.customer;
    xml.open("cac:AccountingCustomerParty", &[])?;
    xml.open("cac:Party", &[])?;
    xml.leaf_with("cbc:EndpointID", &[("schemeID", "EM")], &customer.billing_email)?;
    xml.open("cac:PartyIdentification", &[])?;
    xml.leaf("cbc:ID", &customer.id)?;
    xml.close("cac:PartyIdentification")?;
    xml.open("cac:PartyName", &[])?;
    xml.leaf("cbc:Name", &customer.name)?;
    xml.close("cac:PartyName")?;
    xml.address(&customer.address)?;
    if let Some(vat_id) = &customer.vat_id {
        xml.open("cac:PartyTaxScheme", &[])?;
        xml.leaf("cbc:CompanyID", vat_id)?;
        xml.vat_scheme()?;
        xml.close("cac:PartyTaxScheme")?;
    }
    xml.open("cac:PartyLegalEntity", &[])?;
    xml.leaf("cbc:RegistrationName", &customer.name)?;
    xml.close("cac:PartyLegalEntity")?;
    xml.close("cac:Party")?;
    xml.close("cac:AccountingCustomerParty")?;

    xml.open("cac:PaymentMeans", &[])?;
    match document.kind {
        DocumentKind::Invoice => {
            // 58: SEPA credit transfer, to our account (BG-17), the invoice number as remittance.
            xml.leaf("cbc:PaymentMeansCode", "58")?;
            xml.leaf("cbc:PaymentID", document.display_number())?;
            xml.open("cac:PayeeFinancialAccount", &[])?;
            xml.leaf("cbc:ID", &supplier.payment.iban)?;
            xml.leaf("cbc:Name", &supplier.name)?;
            if let Some(bic) = &supplier.payment.bic {
                xml.open("cac:FinancialInstitutionBranch", &[])?;
                xml.leaf("cbc:ID", bic)?;
                xml.close("cac:FinancialInstitutionBranch")?;
            }
            xml.close("cac:PayeeFinancialAccount")?;
        }
        DocumentKind::CreditNote => {
            // 1: not defined; we refund or set off, the buyer pays nothing.
            xml.leaf("cbc:PaymentMeansCode", "1")?;
            xml.leaf("cbc:PaymentID", document.display_number())?;
        }
    }
    xml.close("cac:PaymentMeans")?;
    xml.open("cac:PaymentTerms", &[])?;
    xml.leaf("cbc:Note", &payment_note(document))?;
    xml.close("cac:PaymentTerms")?;

    xml.open("cac:TaxTotal", &[])?;
    xml.amount("cbc:TaxAmount", document.totals.vat, currency, digits)?;
    for group in &document.vat_groups {
        xml.open("cac:TaxSubtotal", &[])?;
        xml.amount("cbc:TaxableAmount", group.taxable, currency, digits)?;
        xml.amount("cbc:TaxAmount", group.vat, currency, digits)?;
        xml.open("cac:TaxCategory", &[])?;
        xml.leaf("cbc:ID", &group.category)?;
        xml.leaf("cbc:Percent", &fixed(group.rate, 2))?;
        xml.vat_scheme()?;
        xml.close("cac:TaxCategory")?;
        xml.close("cac:TaxSubtotal")?;
    }
    xml.close("cac:TaxTotal")?;

    xml.open("cac:LegalMonetaryTotal", &[])?;
    xml.amount("cbc:LineExtensionAmount", document.totals.net, currency, digits)?;
    xml.amount("cbc:TaxExclusiveAmount", document.totals.net, currency, digits)?;
    xml.amount("cbc:TaxInclusiveAmount", document.totals.gross, currency, digits)?;
    xml.amount("cbc:PayableAmount", document.totals.payable, currency, digits)?;
    xml.close("cac:LegalMonetaryTotal")?;

    for line in &document.lines {
        let quantity = if line.net.is_sign_negative() && !line.net.is_zero() { "-1" } else { "1" };
        let category = if line.vat_rate.is_zero() { "Z" } else { "S" };
        xml.open(line_element, &[])?;
        xml.leaf("cbc:ID", &line.position.to_string())?;
        xml.leaf("cbc:Note", &format!("{} kWh, {} min, CDR {}", line.energy_kwh, line.duration_minutes, line.cdr_id))?;
        xml.leaf_with(quantity_element, &[("unitCode", "C62")], quantity)?;
        xml.amount("cbc:LineExtensionAmount", line.net, currency, digits)?;
        xml.open("cac:InvoicePeriod", &[])?;
        let tz = document.customer.tz()?;
        xml.leaf("cbc:StartDate", &line.start.with_timezone(&tz).date_naive().to_string())?;
        xml.leaf("cbc:EndDate", &line.date.to_string())?;
        xml.close("cac:InvoicePeriod")?;
        xml.open("cac:Item", &[])?;
        let place =
            if line.evse.is_empty() { line.location.clone() } else { format!("{}, EVSE {}", line.location, line.evse) };
        xml.leaf("cbc:Description", &place)?;
        let name = match (line.credit, line.late) {
            (true, true) => "Credit for late charging session",
            (true, false) => "Credit for charging session",
            (false, true) => "Late charging session",
            (false, false) => "Charging session",
        };
        xml.leaf("cbc:Name", &format!("{name} {}", line.date))?;
        xml.open("cac:SellersItemIdentification", &[])?;
        xml.leaf("cbc:ID", &line.cdr_id)?;
        xml.close("cac:SellersItemIdentification")?;
        xml.open("cac:ClassifiedTaxCategory", &[])?;
        xml.leaf("cbc:ID", category)?;
        xml.leaf("cbc:Percent", &fixed(line.vat_rate, 2))?;
        xml.vat_scheme()?;
        xml.close("cac:ClassifiedTaxCategory")?;
        xml.close("cac:Item")?;
        xml.open("cac:Price", &[])?;
        xml.amount("cbc:PriceAmount", line.net.abs(), currency, digits)?;
        xml.close("cac:Price")?;
        xml.close(line_element)?;
    }
    xml.close(root)?;
    Ok(xml.writer.into_inner())
}

/// The payment terms as one sentence (BT-20), also printed on the PDF.
pub(crate) fn payment_note(document: &Document) -> String {
    match (document.kind, document.due_date) {
        (DocumentKind::Invoice, Some(due)) => format!("{} Due date: {due}.", document.supplier.payment.note),
        (DocumentKind::Invoice, None) => document.supplier.payment.note.clone(),
        (DocumentKind::CreditNote, _) => "The amount will be refunded or set off against the next invoice.".to_owned(),
    }
}
