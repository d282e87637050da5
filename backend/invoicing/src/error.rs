//! Errors of the invoicing logic. Messages name the offending input (a fleet's time zone, a CDR id)
//! for operators; they hold no secrets.

#[derive(Debug, thiserror::Error)]
pub enum InvoicingError {
    /// A billing period that is not `YYYY-MM` or out of range.
    #[error("invalid period {0:?}: expected YYYY-MM")]
    Period(String),
    /// A fleet's time zone that is not an IANA name.
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    /// Configuration or fleet data an invoice requires is missing or malformed.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The CDR source failed.
    #[error("reading the CDRs failed: {0}")]
    Source(#[from] crate::usage::SourceError),
    /// An amount overflowed decimal arithmetic (absurd input).
    #[error("amount out of range in {0}")]
    Overflow(String),
    /// Rendering a document failed (a bug, never the caller's input).
    #[error("rendering failed: {0}")]
    Render(String),
}

impl InvoicingError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        InvoicingError::Invalid { field, reason: reason.into() }
    }
}
