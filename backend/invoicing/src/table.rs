//! The CSV of a document's lines, for the fleet's own accounting: one row per session, amounts with
//! a decimal point and no thousands separator, RFC 4180 quoting, UTF-8.

use crate::error::InvoicingError;
use crate::model::Document;

/// The columns, in order.
pub const CSV_HEADER: [&str; 16] = [
    "document_number",
    "line",
    "cdr_id",
    "credit",
    "date",
    "start",
    "end",
    "location",
    "evse",
    "energy_kwh",
    "duration_minutes",
    "net_amount",
    "vat_rate",
    "vat_amount",
    "gross_amount",
    "currency",
];

/// The document's lines as CSV. Start and end are RFC 3339 in UTC; `date` is the day the session
/// ended in the fleet's time zone.
pub fn render_csv(document: &Document) -> Result<Vec<u8>, InvoicingError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let render = |e: csv::Error| InvoicingError::Render(e.to_string());
    writer.write_record(CSV_HEADER).map_err(render)?;
    for line in &document.lines {
        writer
            .write_record([
                document.display_number().to_owned(),
                line.position.to_string(),
                cell(&line.cdr_id),
                line.credit.to_string(),
                line.date.to_string(),
                line.start.to_rfc3339(),
                line.end.to_rfc3339(),
                cell(&line.location),
                cell(&line.evse),
                line.energy_kwh.to_string(),
                line.duration_minutes.to_string(),
                line.net.to_string(),
                line.vat_rate.to_string(),
                line.vat.to_string(),
                line.gross().to_string(),
                document.currency.to_string(),
            ])
            .map_err(render)?;
    }
    writer.into_inner().map_err(|e| InvoicingError::Render(e.to_string()))
}

/// Text from CPOs goes into spreadsheets: a cell that starts like a formula is prefixed with `'`
/// so that a spreadsheet shows it instead of evaluating it.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() }
}
