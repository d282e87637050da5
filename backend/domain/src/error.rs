//! Validation errors of the domain model.
//!
//! Every constructor that takes outside input validates it and names the field that was wrong, so
//! a protocol edge can answer in its own format (OCPI 2001, GraphQL `BAD_USER_INPUT`) with a reason.

/// A value that breaks a rule of the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The field (a dotted path such as `evses[2].connectors[0].max_voltage`).
    pub field: String,
    /// What is wrong with it, in words an operator understands.
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }

    /// The same error, seen from a parent object: `evses[2]` + `uid` -> `evses[2].uid`.
    pub fn within(self, parent: &str) -> Self {
        Self { field: format!("{parent}.{}", self.field), reason: self.reason }
    }
}
