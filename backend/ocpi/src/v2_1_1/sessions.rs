//! OCPI 2.1.1 `Session`: `start_datetime`/`end_datetime` (no underscore between date and time),
//! `auth_id` instead of a token object, the whole `location` (with the one EVSE and connector in
//! use) instead of ids, and a plain-number `total_cost` excluding VAT.

use chrono::{DateTime, Utc};
use emsp_domain as domain;
use emsp_domain::{AuthMethod, PartyId, SessionStatus, TokenType, TokenUid};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::locations::Location;
use crate::lenient;
use crate::mapping::{MapError, Notes, resolve_party};
use crate::v2_2_1::cdrs::{ChargingPeriod, party_from_contract_id};
use crate::v2_2_1::sessions::{CommonSession, common_to_domain};

/// A charging session (2.1.1 `Session` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(deserialize_with = "lenient::datetime")]
    pub start_datetime: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub end_datetime: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub kwh: Decimal,
    #[serde(deserialize_with = "lenient::string")]
    pub auth_id: String,
    pub auth_method: AuthMethod,
    pub location: Location,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub meter_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub charging_periods: Vec<ChargingPeriod>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub total_cost: Option<Decimal>,
    pub status: SessionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub last_updated: Option<DateTime<Utc>>,
}

/// A 2.1.1 session as a domain session; `party` is the CPO it came from. As for 2.1.1 CDRs, the
/// token's eMSP comes from the eMA-ID in `auth_id` and its type is unknown (`OTHER`).
pub fn to_domain(wire: &Session, party: Option<&PartyId>, notes: &mut Notes) -> Result<domain::Session, MapError> {
    let evse = wire.location.evses.first();
    let mut candidates = Vec::new();
    if let Some(evse_id) = evse.and_then(|e| e.evse_id.as_deref()) {
        candidates.push(("location.evses[0].evse_id".to_owned(), evse_id));
    }
    let party = resolve_party(None, None, party, candidates, notes)?;
    let evse = evse.ok_or_else(|| MapError::new("location.evses", "no EVSE: the session's EVSE is unknown"))?;
    let evse_uid = evse
        .uid
        .as_deref()
        .or(evse.evse_id.as_deref())
        .ok_or_else(|| MapError::new("location.evses[0].uid", "missing"))?;
    let connector = evse.connectors.first().and_then(|c| c.id.as_deref()).ok_or_else(|| {
        MapError::new("location.evses[0].connectors", "no connector id: the session's connector is unknown")
    })?;
    let token_party = party_from_contract_id(&wire.auth_id)
        .ok_or_else(|| MapError::new("auth_id", format!("{:?} is not an eMA-ID naming the eMSP", wire.auth_id)))?;
    let cdr_token = domain::CdrToken {
        party: token_party,
        uid: TokenUid::new(wire.auth_id.trim()).map_err(|e| MapError::new("auth_id", e.reason))?,
        token_type: TokenType::OtherType,
        contract_id: wire.auth_id.clone(),
    };
    common_to_domain(
        CommonSession {
            party,
            id: &wire.id,
            start_date_time: wire.start_datetime,
            end_date_time: wire.end_datetime,
            kwh: wire.kwh,
            cdr_token,
            auth_method: wire.auth_method.clone(),
            location_id: &wire.location.id,
            evse_uid,
            connector_id: connector,
            meter_id: wire.meter_id.as_ref(),
            currency: &wire.currency,
            charging_periods: &wire.charging_periods,
            total_cost: wire.total_cost.map(|excl_vat| domain::Price { excl_vat, incl_vat: None }),
            status: wire.status.clone(),
            last_updated: wire.last_updated,
        },
        notes,
    )
}
