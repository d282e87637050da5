//! Checks of a UBL 2.1 invoice or credit note against the EN 16931 business rules that can be
//! checked without the official schematron: mandatory elements (BR-01..BR-27), the sums (BR-CO-10,
//! -13, -14, -15, -16, -17), the VAT breakdown (BR-S-*, BR-Z-*), decimals (BR-DEC-*), the XRechnung
//! rules (BR-DE-*) and two PEPPOL rules we follow (electronic addresses, line net = quantity × price).
//!
//! Our own documents are checked before they are stored and in the tests. The sums are checked
//! exactly: the schematron allows a cent of slack in BR-CO-17, our arithmetic needs none.

use std::collections::BTreeMap;
use std::str::FromStr;

use quick_xml::Reader;
use quick_xml::events::Event;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::InvoicingError;
use crate::ubl::CUSTOMIZATION_ID;

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
}

/// An element of the parsed document: local name (prefix dropped), attributes, text, children.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at a `/`-separated path of local names.
    fn at(&self, path: &str) -> Option<&Element> {
        let mut current = self;
        for step in path.split('/') {
            current = current.child(step)?;
        }
        Some(current)
    }

    fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path).map(|e| e.text.trim()).filter(|t| !t.is_empty())
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.rsplit_once(':') {
        Some((_, local)) => local.to_owned(),
        None => name.into_owned(),
    }
}

fn parse(xml: &[u8]) -> Result<Element, InvoicingError> {
    let text = std::str::from_utf8(xml).map_err(|e| InvoicingError::invalid("xml", e.to_string()))?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let bad = |e: &dyn std::fmt::Display| InvoicingError::invalid("xml", e.to_string());
    loop {
        match reader.read_event().map_err(|e| bad(&e))? {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(InvoicingError::invalid("xml", "content after the root element"));
            }
            Event::Start(start) => {
                let mut element = Element { name: local(start.name().as_ref()), ..Element::default() };
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| bad(&e))?;
                    let value = attribute.unescape_value().map_err(|e| bad(&e))?;
                    element.attributes.push((local(attribute.key.as_ref()), value.into_owned()));
                }
                if element.name.is_empty() {
                    return Err(InvoicingError::invalid("xml", "empty element name"));
                }
                stack.push(element);
            }
            Event::Empty(start) => {
                let mut element = Element { name: local(start.name().as_ref()), ..Element::default() };
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| bad(&e))?;
                    let value = attribute.unescape_value().map_err(|e| bad(&e))?;
                    element.attributes.push((local(attribute.key.as_ref()), value.into_owned()));
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&text.decode().map_err(|e| bad(&e))?);
                }
            }
            Event::GeneralRef(reference) => {
                // quick-xml reports entity references (`&amp;`) apart from the text around them.
                if let Some(current) = stack.last_mut() {
                    let name = reference.decode().map_err(|e| bad(&e))?;
                    let resolved = match name.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        other => return Err(InvoicingError::invalid("xml", format!("unknown entity &{other};"))),
                    };
                    current.text.push_str(resolved);
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(InvoicingError::invalid("xml", "unbalanced end tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(InvoicingError::invalid("xml", "unclosed elements at the end"));
    }
    root.ok_or_else(|| InvoicingError::invalid("xml", "no root element"))
}

fn decimal(text: Option<&str>) -> Option<Decimal> {
    text.and_then(|t| Decimal::from_str(t).ok())
}

fn round2(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Checks a UBL invoice or credit note. `Err` when it is not well-formed XML; otherwise the broken
/// rules (empty when none).
pub fn check(xml: &[u8]) -> Result<Vec<Violation>, InvoicingError> {
    let root = parse(xml)?;
    let mut violations = Vec::new();
    let mut fail = |rule: &'static str, message: String| violations.push(Violation { rule, message });

    let (line_name, quantity_name, type_name, allowed_types): (&str, &str, &str, &[&str]) = match root.name.as_str() {
        "Invoice" => {
            ("InvoiceLine", "InvoicedQuantity", "InvoiceTypeCode", &["380", "381", "384", "389", "875", "876", "877"])
        }
        "CreditNote" => {
            ("CreditNoteLine", "CreditedQuantity", "CreditNoteTypeCode", &["381", "261", "262", "296", "308", "532"])
        }
        other => {
            fail("UBL", format!("root element {other} is neither Invoice nor CreditNote"));
            return Ok(violations);
        }
    };
    let expected_ns = if root.name == "Invoice" {
        "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
    } else {
        "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
    };
    if !root.attributes.iter().any(|(_, v)| v == expected_ns) {
        fail("UBL", format!("the root element is not in the namespace {expected_ns}"));
    }

    // Mandatory elements.
    match root.text_at("CustomizationID") {
        None => fail("BR-01", "specification identifier (BT-24) missing".into()),
        Some(id) if id != CUSTOMIZATION_ID => {
            fail("BR-DE-21", format!("specification identifier {id} is not XRechnung 3.0"))
        }
        Some(_) => {}
    }
    if root.text_at("ID").is_none() {
        fail("BR-02", "invoice number (BT-1) missing".into());
    }
    if root.text_at("IssueDate").and_then(|d| chrono::NaiveDate::from_str(d).ok()).is_none() {
        fail("BR-03", "issue date (BT-2) missing or not YYYY-MM-DD".into());
    }
    match root.text_at(type_name) {
        Some(code) if allowed_types.contains(&code) => {}
        other => fail("BR-04", format!("type code (BT-3) {other:?} missing or not allowed")),
    }
    let Some(currency) = root.text_at("DocumentCurrencyCode").map(str::to_owned) else {
        fail("BR-05", "document currency (BT-5) missing".into());
        return Ok(violations);
    };
    if root.text_at("BuyerReference").is_none() {
        fail("BR-DE-15", "buyer reference (BT-10) missing".into());
    }
    if let (Some(start), Some(end)) = (root.text_at("InvoicePeriod/StartDate"), root.text_at("InvoicePeriod/EndDate"))
        && end < start
    {
        fail("BR-29", "invoicing period ends before it starts".into());
    }
    for reference in root.children("BillingReference") {
        if reference.text_at("InvoiceDocumentReference/ID").is_none() {
            fail("BR-55", "preceding invoice reference (BT-25) missing".into());
        }
    }

    let seller = root.at("AccountingSupplierParty/Party");
    let buyer = root.at("AccountingCustomerParty/Party");
    if seller.and_then(|p| p.text_at("PartyLegalEntity/RegistrationName")).is_none() {
        fail("BR-06", "seller name (BT-27) missing".into());
    }
    if buyer.and_then(|p| p.text_at("PartyLegalEntity/RegistrationName")).is_none() {
        fail("BR-07", "buyer name (BT-44) missing".into());
    }
    match seller.and_then(|p| p.child("PostalAddress")) {
        None => fail("BR-08", "seller postal address (BG-5) missing".into()),
        Some(address) => {
            if address.text_at("Country/IdentificationCode").is_none() {
                fail("BR-09", "seller country code (BT-40) missing".into());
            }
            if address.text_at("CityName").is_none() || address.text_at("PostalZone").is_none() {
                fail("BR-DE-3", "seller city (BT-37) or post code (BT-38) missing".into());
            }
        }
    }
    match buyer.and_then(|p| p.child("PostalAddress")) {
        None => fail("BR-10", "buyer postal address (BG-8) missing".into()),
        Some(address) => {
            if address.text_at("Country/IdentificationCode").is_none() {
                fail("BR-11", "buyer country code (BT-55) missing".into());
            }
            if address.text_at("CityName").is_none() || address.text_at("PostalZone").is_none() {
                fail("BR-DE-8", "buyer city (BT-52) or post code (BT-53) missing".into());
            }
        }
    }
    if seller.and_then(|p| p.text_at("EndpointID")).is_none() {
        fail("PEPPOL-EN16931-R020", "seller electronic address (BT-34) missing".into());
    }
    if buyer.and_then(|p| p.text_at("EndpointID")).is_none() {
        fail("PEPPOL-EN16931-R010", "buyer electronic address (BT-49) missing".into());
    }
    match seller.and_then(|p| p.child("Contact")) {
        None => fail("BR-DE-2", "seller contact (BG-6) missing".into()),
        Some(contact) => {
            if contact.text_at("Name").is_none() {
                fail("BR-DE-5", "seller contact point (BT-41) missing".into());
            }
            if contact.text_at("Telephone").is_none() {
                fail("BR-DE-6", "seller contact telephone (BT-42) missing".into());
            }
            if contact.text_at("ElectronicMail").is_none() {
                fail("BR-DE-7", "seller contact email (BT-43) missing".into());
            }
        }
    }
    match root.child("PaymentMeans") {
        None => fail("BR-DE-1", "payment instructions (BG-16) missing".into()),
        Some(means) => match means.text_at("PaymentMeansCode") {
            None => fail("BR-49", "payment means type code (BT-81) missing".into()),
            Some("30" | "58") if means.text_at("PayeeFinancialAccount/ID").is_none() => {
                fail("BR-DE-23", "credit transfer without the payee's account (BT-84)".into())
            }
            Some(_) => {}
        },
    }

    // Amounts: currency and decimals everywhere.
    fn walk<'a>(element: &'a Element, found: &mut Vec<&'a Element>) {
        if element.attribute("currencyID").is_some() {
            found.push(element);
        }
        for child in &element.children {
            walk(child, found);
        }
    }
    let mut amounts = Vec::new();
    walk(&root, &mut amounts);
    for amount in amounts {
        if amount.attribute("currencyID") != Some(currency.as_str()) && amount.name != "TaxAmount" {
            fail("PEPPOL-EN16931-R051", format!("{} is not in the document currency", amount.name));
        }
        match Decimal::from_str(amount.text.trim()) {
            Err(_) => fail("BR-DEC", format!("{} is not a number: {:?}", amount.name, amount.text)),
            Ok(value) if value.scale() > 2 => fail("BR-DEC", format!("{} has more than two decimals", amount.name)),
            Ok(_) => {}
        }
    }

    // Lines.
    let lines: Vec<&Element> = root.children(line_name).collect();
    if lines.is_empty() {
        fail("BR-16", "no invoice line (BG-25)".into());
    }
    let mut line_sum = Decimal::ZERO;
    let mut net_by_rate: BTreeMap<(String, Decimal), Decimal> = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        let at = index + 1;
        if line.text_at("ID").is_none() {
            fail("BR-21", format!("line {at}: identifier (BT-126) missing"));
        }
        let quantity = decimal(line.text_at(quantity_name));
        if quantity.is_none() {
            fail("BR-22", format!("line {at}: quantity (BT-129) missing"));
        }
        if line.child(quantity_name).and_then(|q| q.attribute("unitCode")).is_none() {
            fail("BR-23", format!("line {at}: unit of measure (BT-130) missing"));
        }
        let net = decimal(line.text_at("LineExtensionAmount"));
        match net {
            None => fail("BR-24", format!("line {at}: net amount (BT-131) missing")),
            Some(net) => line_sum += net,
        }
        if line.text_at("Item/Name").is_none() {
            fail("BR-25", format!("line {at}: item name (BT-153) missing"));
        }
        let price = decimal(line.text_at("Price/PriceAmount"));
        match price {
            None => fail("BR-26", format!("line {at}: item net price (BT-146) missing")),
            Some(p) if p.is_sign_negative() && !p.is_zero() => {
                fail("BR-27", format!("line {at}: item net price (BT-146) is negative"))
            }
            Some(_) => {}
        }
        if let (Some(q), Some(p), Some(n)) = (quantity, price, net)
            && round2(q * p) != n
        {
            fail("PEPPOL-EN16931-R120", format!("line {at}: net amount {n} is not quantity {q} × price {p}"));
        }
        if let (Some(start), Some(end)) =
            (line.text_at("InvoicePeriod/StartDate"), line.text_at("InvoicePeriod/EndDate"))
            && end < start
        {
            fail("BR-30", format!("line {at}: period ends before it starts"));
        }
        let category = line.text_at("Item/ClassifiedTaxCategory/ID");
        let rate = decimal(line.text_at("Item/ClassifiedTaxCategory/Percent"));
        match (category, rate) {
            (None, _) => fail("BR-CO-4", format!("line {at}: VAT category (BT-151) missing")),
            (Some("S"), Some(r)) if r > Decimal::ZERO => {}
            (Some("S"), _) => fail("BR-S-05", format!("line {at}: standard rated line without a rate above zero")),
            (Some("Z"), Some(r)) if r.is_zero() => {}
            (Some("Z"), _) => fail("BR-Z-05", format!("line {at}: zero rated line with a rate other than 0")),
            (Some(_), _) => {}
        }
        if let (Some(category), Some(rate), Some(net)) = (category, rate, net) {
            *net_by_rate.entry((category.to_owned(), rate.normalize())).or_default() += net;
        }
    }

    // Totals.
    let total = |name: &str| decimal(root.text_at(&format!("LegalMonetaryTotal/{name}")));
    let line_total = total("LineExtensionAmount");
    let tax_exclusive = total("TaxExclusiveAmount");
    let tax_inclusive = total("TaxInclusiveAmount");
    let payable = total("PayableAmount");
    for (rule, name, value) in [
        ("BR-12", "sum of line net amounts (BT-106)", line_total),
        ("BR-13", "total without VAT (BT-109)", tax_exclusive),
        ("BR-14", "total with VAT (BT-112)", tax_inclusive),
        ("BR-15", "amount due (BT-115)", payable),
    ] {
        if value.is_none() {
            fail(rule, format!("{name} missing"));
        }
    }
    if let Some(line_total) = line_total
        && line_total != line_sum
    {
        fail("BR-CO-10", format!("sum of line net amounts is {line_total}, the lines add up to {line_sum}"));
    }
    let allowances = total("AllowanceTotalAmount").unwrap_or_default();
    let charges = total("ChargeTotalAmount").unwrap_or_default();
    if let (Some(line_total), Some(tax_exclusive)) = (line_total, tax_exclusive)
        && tax_exclusive != line_total - allowances + charges
    {
        fail("BR-CO-13", format!("total without VAT {tax_exclusive} is not {line_total} - allowances + charges"));
    }

    // VAT breakdown.
    let tax_totals: Vec<&Element> = root
        .children("TaxTotal")
        .filter(|t| t.child("TaxAmount").and_then(|a| a.attribute("currencyID")) == Some(currency.as_str()))
        .collect();
    let mut vat_total = None;
    match tax_totals.as_slice() {
        [tax_total] => {
            vat_total = decimal(tax_total.text_at("TaxAmount"));
            let subtotals: Vec<&Element> = tax_total.children("TaxSubtotal").collect();
            if subtotals.is_empty() {
                fail("BR-CO-18", "no VAT breakdown (BG-23)".into());
            }
            let mut sum = Decimal::ZERO;
            let mut seen = BTreeMap::new();
            for subtotal in subtotals {
                let taxable = decimal(subtotal.text_at("TaxableAmount"));
                let amount = decimal(subtotal.text_at("TaxAmount"));
                let category = subtotal.text_at("TaxCategory/ID").unwrap_or_default().to_owned();
                let rate = decimal(subtotal.text_at("TaxCategory/Percent"));
                let (Some(taxable), Some(amount), Some(rate)) = (taxable, amount, rate) else {
                    fail("BR-45", "a VAT breakdown lacks its taxable amount, VAT amount or rate".into());
                    continue;
                };
                sum += amount;
                if round2(taxable * rate / Decimal::ONE_HUNDRED) != amount {
                    fail(
                        "BR-CO-17",
                        format!("VAT {amount} of category {category} {rate} % is not {taxable} × rate, rounded"),
                    );
                }
                let key = (category.clone(), rate.normalize());
                if seen.insert(key.clone(), ()).is_some() {
                    fail("BR-S-08", format!("category {category} {rate} % is broken down twice"));
                }
                let lines_net = net_by_rate.get(&key).copied().unwrap_or_default();
                if lines_net != taxable {
                    let rule = if category == "Z" { "BR-Z-08" } else { "BR-S-08" };
                    fail(
                        rule,
                        format!("taxable amount {taxable} of {category} {rate} % is not the lines' {lines_net}"),
                    );
                }
            }
            for key in net_by_rate.keys() {
                if !seen.contains_key(key) {
                    fail("BR-CO-18", format!("lines of category {} {} % have no VAT breakdown", key.0, key.1));
                }
            }
            if vat_total != Some(sum) {
                fail("BR-CO-14", format!("total VAT {vat_total:?} is not the sum of the breakdown {sum}"));
            }
        }
        [] => fail("BR-CO-18", "no VAT total in the document currency".into()),
        _ => fail("BR-CO-14", "more than one VAT total in the document currency".into()),
    }
    if net_by_rate.keys().any(|(category, _)| category == "S")
        && seller.and_then(|p| p.text_at("PartyTaxScheme/CompanyID")).is_none()
    {
        fail("BR-S-02", "standard rated lines without the seller's VAT identifier (BT-31)".into());
    }
    if let (Some(tax_exclusive), Some(tax_inclusive)) = (tax_exclusive, tax_inclusive)
        && tax_inclusive != tax_exclusive + vat_total.unwrap_or_default()
    {
        fail("BR-CO-15", format!("total with VAT {tax_inclusive} is not {tax_exclusive} + VAT"));
    }
    if let (Some(tax_inclusive), Some(payable)) = (tax_inclusive, payable) {
        let prepaid = total("PrepaidAmount").unwrap_or_default();
        let rounding = total("PayableRoundingAmount").unwrap_or_default();
        if payable != tax_inclusive - prepaid + rounding {
            fail("BR-CO-16", format!("amount due {payable} is not {tax_inclusive} - prepaid + rounding"));
        }
    }
    Ok(violations)
}
