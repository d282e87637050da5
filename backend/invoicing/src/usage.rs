//! The input of a run: one [`UsageRecord`] per CDR of the fleet's tokens, and the [`CdrSource`]
//! that finds them. The server's source reads stored CDRs (joined to tokens by `fleet_id`); tests
//! use an in-memory one.

use chrono::{DateTime, Utc};
use emsp_domain::{Cdr, Currency};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What an invoice line needs of a CDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// A key unique across CPOs: `country*party*cdr id`.
    pub cdr_id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Location name and address, as printed.
    pub location: String,
    /// The EVSE id (eMI3 form when the CPO sent one, else its uid).
    pub evse: String,
    pub energy_kwh: Decimal,
    pub currency: Currency,
    /// The CDR's total cost without VAT; negative or `credit` for a credit CDR.
    pub net: Decimal,
    /// The CDR's total cost with VAT, when the CPO sent it: tells which VAT rate applies.
    pub gross: Option<Decimal>,
    pub credit: bool,
    /// For a credit CDR: the key of the CDR it credits (same form as `cdr_id`).
    pub credits_cdr: Option<String>,
    /// When the CPO issued the CDR (OCPI `last_updated`). A credit is billed in the month it was
    /// issued, so a credit of a session of an already invoiced month lands in the next run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
}

impl UsageRecord {
    /// The instant that decides a record's billing month: a charge's end; a credit's issue (its
    /// end when the issue time is unknown).
    pub fn billing_instant(&self) -> DateTime<Utc> {
        match (self.is_credit(), self.issued_at) {
            (true, Some(issued)) => issued,
            _ => self.end,
        }
    }

    /// A credit CDR: flagged so, or with a negative cost.
    pub fn is_credit(&self) -> bool {
        self.credit || self.net.is_sign_negative() && !self.net.is_zero()
    }
}

impl From<&Cdr> for UsageRecord {
    fn from(cdr: &Cdr) -> Self {
        let party = format!("{}*{}", cdr.party.country_code.as_str(), cdr.party.party_id.as_str());
        let location = &cdr.cdr_location;
        let text = |key: &str| location.get(key).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty());
        let mut place = Vec::new();
        for key in ["name", "address", "city"] {
            if let Some(part) = text(key) {
                place.push(part.to_owned());
            }
        }
        // OCPI 2.2.1 CdrLocation has evse_id/evse_uid; a 2.1.1 CDR carries a Location with one EVSE.
        let first_evse = location.get("evses").and_then(|e| e.get(0));
        let evse = text("evse_id")
            .or_else(|| text("evse_uid"))
            .or_else(|| first_evse.and_then(|e| e.get("evse_id")).and_then(|v| v.as_str()))
            .or_else(|| first_evse.and_then(|e| e.get("uid")).and_then(|v| v.as_str()))
            .unwrap_or("")
            .to_owned();
        let credit = cdr.credit == Some(true);
        Self {
            cdr_id: format!("{party}*{}", cdr.id.as_str()),
            start: cdr.start_date_time,
            end: cdr.end_date_time,
            location: if place.is_empty() { text("id").unwrap_or("").to_owned() } else { place.join(", ") },
            evse,
            energy_kwh: cdr.total_energy,
            currency: cdr.currency.clone(),
            net: cdr.total_cost.excl_vat,
            gross: cdr.total_cost.incl_vat,
            credit,
            credits_cdr: cdr.credit_reference_id.as_ref().filter(|_| credit).map(|id| format!("{party}*{id}")),
            issued_at: Some(cdr.last_updated),
        }
    }
}

/// A failure of a [`CdrSource`] (the store was down, ...); the text is for operators.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Where a run finds the CDRs of a fleet.
pub trait CdrSource {
    /// Every CDR of the fleet's tokens whose [`UsageRecord::billing_instant`] lies in `[from, to)`:
    /// charges that ended then, credits issued then. A source may leave out CDRs already on an
    /// issued document (the stored source does): a run would skip them anyway.
    fn usage(&self, fleet_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageRecord>, SourceError>;
}

/// A fixed list of records per fleet (tests, imports).
impl CdrSource for Vec<(String, UsageRecord)> {
    fn usage(&self, fleet_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageRecord>, SourceError> {
        Ok(self
            .iter()
            .filter(|(fleet, record)| {
                let instant = record.billing_instant();
                fleet == fleet_id && instant >= from && instant < to
            })
            .map(|(_, record)| record.clone())
            .collect())
    }
}
