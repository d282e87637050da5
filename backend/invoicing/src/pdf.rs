//! The printable invoice: an A4 PDF with the supplier and customer blocks, the document's number,
//! dates and supply period, one table row per session, the VAT summary, the totals and the payment
//! terms, and a footer with our legal details on every page.
//!
//! Built with `pdf-writer` (the low-level writer of the typst project: no dependencies of its own)
//! on the PDF standard fonts Helvetica and Helvetica-Bold in WinAnsi encoding, so nothing is
//! embedded and the file stays small. Text is measured with the fonts' published metrics to
//! right-align amounts and to shorten long location names. The output is deterministic: the same
//! document renders to the same bytes.

use pdf_writer::{Content, Date, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use rust_decimal::Decimal;

use crate::compose::money_digits;
use crate::error::InvoicingError;
use crate::model::{Document, DocumentKind};
use crate::ubl::{fixed, payment_note};

const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const LEFT: f32 = 50.0;
const RIGHT: f32 = 545.0;
/// Lowest baseline of table rows; below is the footer.
const BOTTOM: f32 = 95.0;
const ROW: f32 = 22.0;

#[derive(Clone, Copy)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn name(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
        }
    }
}

struct Canvas {
    pages: Vec<Content>,
    y: f32,
}

impl Canvas {
    fn page(&mut self) -> &mut Content {
        if self.pages.is_empty() {
            self.pages.push(Content::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = PAGE_HEIGHT - 60.0;
    }

    fn text(&mut self, x: f32, y: f32, font: Font, size: f32, text: &str) {
        let bytes = win_ansi(text);
        let page = self.page();
        page.begin_text();
        page.set_font(font.name(), size);
        page.next_line(x, y);
        page.show(Str(&bytes));
        page.end_text();
    }

    fn text_right(&mut self, right: f32, y: f32, font: Font, size: f32, text: &str) {
        self.text(right - width(text, font, size), y, font, size, text);
    }

    fn fill(&mut self, x: f32, y: f32, w: f32, h: f32, gray: f32) {
        let page = self.page();
        page.set_fill_gray(gray);
        page.rect(x, y, w, h);
        page.fill_nonzero();
        page.set_fill_gray(0.0);
    }

    fn rule(&mut self, x1: f32, x2: f32, y: f32, line_width: f32) {
        let page = self.page();
        page.set_line_width(line_width);
        page.set_stroke_gray(0.5);
        page.move_to(x1, y);
        page.line_to(x2, y);
        page.stroke();
    }

    /// Makes room for `height` below the cursor, starting a page when needed.
    fn room(&mut self, height: f32) -> bool {
        if self.y - height < BOTTOM {
            self.new_page();
            return true;
        }
        false
    }
}

/// A decimal with thousands separators: `1,234.50`.
fn amount(value: Decimal, digits: u32) -> String {
    let plain = fixed(value, digits);
    let (sign, plain) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (whole, fraction) = match plain.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (plain, None),
    };
    let mut grouped = String::new();
    for (index, ch) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn percent(rate: Decimal) -> String {
    format!("{} %", rate.normalize())
}

/// Renders the document as PDF.
pub fn render_pdf(document: &Document) -> Result<Vec<u8>, InvoicingError> {
    let digits = money_digits(&document.currency);
    let currency = document.currency.as_str();
    let supplier = &document.supplier;
    let customer = &document.customer;
    let tz = customer.tz()?;
    let mut canvas = Canvas { pages: Vec::new(), y: 0.0 };
    canvas.new_page();

    // Letterhead.
    canvas.text(LEFT, 790.0, Font::Bold, 16.0, &supplier.name);
    let mut y = 776.0;
    for line in supplier.address.lines() {
        canvas.text(LEFT, y, Font::Regular, 9.0, &line);
        y -= 11.0;
    }
    let title = match (document.kind, document.number.is_some()) {
        (DocumentKind::Invoice, true) => "INVOICE",
        (DocumentKind::Invoice, false) => "INVOICE (DRAFT)",
        (DocumentKind::CreditNote, true) => "CREDIT NOTE",
        (DocumentKind::CreditNote, false) => "CREDIT NOTE (DRAFT)",
    };
    canvas.text_right(RIGHT, 790.0, Font::Bold, 20.0, title);

    // Customer block, under a one-line sender address (window envelopes).
    let sender = format!(
        "{} - {} - {} {}",
        supplier.name, supplier.address.street, supplier.address.postal_code, supplier.address.city
    );
    canvas.text(LEFT, 700.0, Font::Regular, 7.0, &fit(&sender, Font::Regular, 7.0, 250.0));
    canvas.rule(LEFT, LEFT + 250.0, 696.0, 0.3);
    canvas.text(LEFT, 682.0, Font::Bold, 11.0, &fit(&customer.name, Font::Bold, 11.0, 250.0));
    let mut y = 668.0;
    for line in customer.address.lines() {
        canvas.text(LEFT, y, Font::Regular, 10.0, &fit(&line, Font::Regular, 10.0, 250.0));
        y -= 13.0;
    }

    // Document details.
    let number_label = match document.kind {
        DocumentKind::Invoice => "Invoice number",
        DocumentKind::CreditNote => "Credit note number",
    };
    let mut details =
        vec![(number_label, document.display_number().to_owned()), ("Issue date", document.issue_date.to_string())];
    if let Some(due) = document.due_date {
        details.push(("Due date", due.to_string()));
    }
    details.push(("Supply period", format!("{} to {}", document.period_start, document.period_end)));
    if let Some(preceding) = &document.preceding {
        details.push(("Corrects invoice", format!("{} of {}", preceding.number, preceding.issue_date)));
    }
    details.push(("Customer number", customer.id.clone()));
    details.push(("Your reference", customer.buyer_reference().to_owned()));
    if let Some(vat_id) = &customer.vat_id {
        details.push(("Your VAT ID", vat_id.clone()));
    }
    details.push(("Our VAT ID", supplier.vat_id.clone()));
    let mut y = 690.0;
    for (label, value) in &details {
        canvas.text(340.0, y, Font::Regular, 9.0, label);
        canvas.text_right(RIGHT, y, Font::Bold, 9.0, &fit(value, Font::Bold, 9.0, 110.0));
        y -= 13.0;
    }

    let intro = match document.kind {
        DocumentKind::Invoice => format!("Charging sessions of your fleet in {}, in {currency}.", document.period),
        DocumentKind::CreditNote => format!("We credit the following charging sessions, in {currency}."),
    };
    canvas.text(LEFT, 565.0, Font::Regular, 10.0, &intro);

    // The table.
    let header = |canvas: &mut Canvas| {
        let y = canvas.y;
        canvas.fill(LEFT - 4.0, y - 5.0, RIGHT - LEFT + 8.0, 16.0, 0.88);
        canvas.text(LEFT, y, Font::Bold, 8.0, "Date");
        canvas.text(105.0, y, Font::Bold, 8.0, "Location / EVSE");
        canvas.text_right(345.0, y, Font::Bold, 8.0, "kWh");
        canvas.text_right(395.0, y, Font::Bold, 8.0, "Minutes");
        canvas.text_right(455.0, y, Font::Bold, 8.0, "Net");
        canvas.text_right(495.0, y, Font::Bold, 8.0, "VAT rate");
        canvas.text_right(RIGHT, y, Font::Bold, 8.0, "VAT");
        canvas.y -= 20.0;
    };
    canvas.y = 540.0;
    header(&mut canvas);
    for line in &document.lines {
        if canvas.room(ROW) {
            header(&mut canvas);
        }
        let y = canvas.y;
        let local_start = line.start.with_timezone(&tz);
        canvas.text(LEFT, y, Font::Regular, 8.0, &line.date.format("%d.%m.%Y").to_string());
        canvas.text(LEFT, y - 9.0, Font::Regular, 7.0, &local_start.format("from %H:%M").to_string());
        let place = match (line.credit, line.late) {
            (true, true) => format!("Credit (late): {}", line.location),
            (true, false) => format!("Credit: {}", line.location),
            (false, true) => format!("Late: {}", line.location),
            (false, false) => line.location.clone(),
        };
        canvas.text(105.0, y, Font::Regular, 8.0, &fit(&place, Font::Regular, 8.0, 200.0));
        canvas.text(105.0, y - 9.0, Font::Regular, 7.0, &fit(&line.evse, Font::Regular, 7.0, 200.0));
        canvas.text_right(345.0, y, Font::Regular, 8.0, &amount(line.energy_kwh, 3));
        canvas.text_right(395.0, y, Font::Regular, 8.0, &line.duration_minutes.to_string());
        canvas.text_right(455.0, y, Font::Regular, 8.0, &amount(line.net, digits));
        canvas.text_right(495.0, y, Font::Regular, 8.0, &percent(line.vat_rate));
        canvas.text_right(RIGHT, y, Font::Regular, 8.0, &amount(line.vat, digits));
        canvas.rule(LEFT, RIGHT, y - 13.0, 0.2);
        canvas.y -= ROW + 2.0;
    }

    // VAT summary and totals.
    let summary_height = 30.0 + 12.0 * document.vat_groups.len() as f32 + 60.0;
    canvas.room(summary_height);
    canvas.y -= 6.0;
    let y = canvas.y;
    canvas.text(LEFT, y, Font::Bold, 9.0, "VAT summary");
    canvas.text_right(200.0, y, Font::Bold, 8.0, "Net");
    canvas.text_right(260.0, y, Font::Bold, 8.0, "VAT rate");
    canvas.text_right(320.0, y, Font::Bold, 8.0, "VAT");
    let mut y = y - 13.0;
    for group in &document.vat_groups {
        canvas.text(LEFT, y, Font::Regular, 8.0, if group.category == "Z" { "Zero rated" } else { "Standard rate" });
        canvas.text_right(200.0, y, Font::Regular, 8.0, &amount(group.taxable, digits));
        canvas.text_right(260.0, y, Font::Regular, 8.0, &percent(group.rate));
        canvas.text_right(320.0, y, Font::Regular, 8.0, &amount(group.vat, digits));
        y -= 12.0;
    }
    let totals = [
        ("Total without VAT", amount(document.totals.net, digits), Font::Regular),
        ("VAT", amount(document.totals.vat, digits), Font::Regular),
        ("Total with VAT", amount(document.totals.gross, digits), Font::Bold),
    ];
    let mut ty = canvas.y;
    for (label, value, font) in totals {
        canvas.text(380.0, ty, font, 9.0, label);
        canvas.text_right(RIGHT, ty, font, 9.0, &format!("{value} {currency}"));
        ty -= 13.0;
    }
    canvas.rule(380.0, RIGHT, ty + 8.0, 0.6);
    let due_label = match document.kind {
        DocumentKind::Invoice => "Amount due",
        DocumentKind::CreditNote => "Amount credited",
    };
    canvas.text(380.0, ty - 4.0, Font::Bold, 10.0, due_label);
    canvas.text_right(
        RIGHT,
        ty - 4.0,
        Font::Bold,
        10.0,
        &format!("{} {currency}", amount(document.totals.payable, digits)),
    );
    canvas.y = y.min(ty - 4.0) - 24.0;

    // Payment terms.
    let mut terms = vec![payment_note(document)];
    if document.kind == DocumentKind::Invoice {
        let mut bank = format!("Please transfer to {}, IBAN {}", supplier.name, supplier.payment.iban);
        if let Some(bic) = &supplier.payment.bic {
            bank.push_str(&format!(", BIC {bic}"));
        }
        if let Some(name) = &supplier.payment.bank_name {
            bank.push_str(&format!(" ({name})"));
        }
        terms.push(bank);
        terms.push(format!("Payment reference: {}", document.display_number()));
    }
    canvas.room(14.0 * terms.len() as f32 + 14.0);
    canvas.text(LEFT, canvas.y, Font::Bold, 9.0, "Payment terms");
    canvas.y -= 13.0;
    for term in &terms {
        canvas.text(LEFT, canvas.y, Font::Regular, 9.0, &fit(term, Font::Regular, 9.0, RIGHT - LEFT));
        canvas.y -= 12.0;
    }

    // Footer on every page, now that the page count is known.
    let mut footer = vec![supplier.name.clone(), supplier.address.lines().join(", ")];
    footer.push(format!("VAT ID {}", supplier.vat_id));
    if let Some(registration) = &supplier.registration {
        footer.push(registration.clone());
    }
    let footer = footer.join(" - ");
    let contact = format!("{} - {} - {}", supplier.contact_name, supplier.phone, supplier.email);
    let count = canvas.pages.len();
    for index in 0..count {
        let page_label = format!("{} {} - page {} of {count}", title, document.display_number(), index + 1);
        canvas.pages.swap(index, count - 1);
        canvas.rule(LEFT, RIGHT, 62.0, 0.3);
        canvas.text(LEFT, 50.0, Font::Regular, 7.0, &fit(&footer, Font::Regular, 7.0, RIGHT - LEFT));
        canvas.text(LEFT, 41.0, Font::Regular, 7.0, &fit(&contact, Font::Regular, 7.0, 300.0));
        canvas.text_right(RIGHT, 41.0, Font::Regular, 7.0, &page_label);
        canvas.pages.swap(index, count - 1);
    }

    // Assemble.
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let mut next = 6;
    let mut page_refs = Vec::with_capacity(count);
    for _ in 0..count {
        page_refs.push((Ref::new(next), Ref::new(next + 1)));
        next += 2;
    }
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_refs.iter().map(|(page, _)| *page)).count(i32::try_from(count).unwrap_or(i32::MAX));
    for ((page_ref, content_ref), content) in page_refs.iter().zip(canvas.pages) {
        let mut page = pdf.page(*page_ref);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
        page.parent(tree);
        page.contents(*content_ref);
        page.resources().fonts().pair(Font::Regular.name(), regular).pair(Font::Bold.name(), bold);
        page.finish();
        let data = content.finish();
        pdf.stream(*content_ref, data.as_slice());
    }
    pdf.type1_font(regular).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    let title_text = format!("{} {}", title, document.display_number());
    let issue = document.issue_date;
    use chrono::Datelike;
    let date = Date::new(u16::try_from(issue.year()).unwrap_or(2000))
        .month(u8::try_from(issue.month()).unwrap_or(1))
        .day(u8::try_from(issue.day()).unwrap_or(1));
    pdf.document_info(info)
        .title(TextStr(&title_text))
        .author(TextStr(&supplier.name))
        .creator(TextStr("emsp"))
        .creation_date(date);
    Ok(pdf.finish())
}

/// The text in WinAnsi (Windows-1252) bytes; characters it lacks become `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            'Š' => 0x8a,
            'š' => 0x9a,
            'Ž' => 0x8e,
            'ž' => 0x9e,
            'Œ' => 0x8c,
            'œ' => 0x9c,
            'Ÿ' => 0x9f,
            _ => b'?',
        })
        .collect()
}

/// Advance widths of ASCII 32..=126 in thousandths of the font size (Adobe's Helvetica metrics).
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833,
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556,
    556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334,
    260, 334, 584,
];
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833,
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611,
    556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389,
    280, 389, 584,
];

/// Width of `text` in points; characters outside ASCII count as a digit's width.
fn width(text: &str, font: Font, size: f32) -> f32 {
    let table = match font {
        Font::Regular => &HELVETICA,
        Font::Bold => &HELVETICA_BOLD,
    };
    let units: u32 = text
        .chars()
        .map(|c| match c {
            ' '..='~' => u32::from(table[c as usize - 32]),
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0
}

/// `text`, shortened with `...` to fit `max` points.
fn fit(text: &str, font: Font, size: f32, max: f32) -> String {
    if width(text, font, size) <= max {
        return text.to_owned();
    }
    let mut shortened: String = text.to_owned();
    while !shortened.is_empty() && width(&shortened, font, size) + width("...", font, size) > max {
        shortened.pop();
    }
    format!("{}...", shortened.trim_end())
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn amounts_have_thousands_separators() {
        assert_eq!(amount(dec!(1234567.5), 2), "1,234,567.50");
        assert_eq!(amount(dec!(-1234.5), 2), "-1,234.50");
        assert_eq!(amount(dec!(12), 0), "12");
        assert_eq!(amount(dec!(0.004), 2), "0.00");
    }

    #[test]
    fn long_text_is_shortened_to_fit() {
        let long = "Parkhaus am Hauptbahnhof, Willy-Brandt-Platz 1, Frankfurt am Main";
        let short = fit(long, Font::Regular, 8.0, 120.0);
        assert!(short.ends_with("...") && width(&short, Font::Regular, 8.0) <= 120.0, "{short}");
        assert_eq!(fit("Köln", Font::Regular, 8.0, 120.0), "Köln");
        assert_eq!(win_ansi("Köln €"), vec![b'K', 0xf6, b'l', b'n', b' ', 0x80]);
    }
}
