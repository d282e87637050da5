//! OCPI 2.2.1 `Session`: what a CPO pushes while a driver charges (`PUT`), and its mapping to and
//! from the domain (the CPO simulator sends sessions in tests).

use chrono::{DateTime, Utc};
use emsp_domain as domain;
use emsp_domain::{AuthMethod, ConnectorId, Currency, EvseUid, LocationId, PartyId, SessionId, SessionStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::cdrs::{CdrDimension, CdrToken, ChargingPeriod, token_to_domain};
use super::tariffs::{Price, price_from_domain, price_to_domain};
use crate::lenient;
use crate::mapping::{MapError, Notes, index, join, optional_text, plausible, resolve_party};

/// A charging session (2.2.1 `Session` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub party_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(deserialize_with = "lenient::datetime")]
    pub start_date_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub end_date_time: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub kwh: Decimal,
    pub cdr_token: CdrToken,
    pub auth_method: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub authorization_reference: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub location_id: String,
    #[serde(deserialize_with = "lenient::string")]
    pub evse_uid: String,
    #[serde(deserialize_with = "lenient::string")]
    pub connector_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub meter_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub charging_periods: Vec<ChargingPeriod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_cost: Option<Price>,
    pub status: SessionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub last_updated: Option<DateTime<Utc>>,
}

/// A 2.2.1 session as a domain session; `fallback_party` (the CPO) when the object names none.
pub fn to_domain(
    wire: &Session,
    fallback_party: Option<&PartyId>,
    notes: &mut Notes,
) -> Result<domain::Session, MapError> {
    let party = resolve_party(wire.country_code.as_deref(), wire.party_id.as_deref(), fallback_party, [], notes)?;
    let cdr_token = token_to_domain(&wire.cdr_token, notes)?;
    let parts = CommonSession {
        party,
        id: &wire.id,
        start_date_time: wire.start_date_time,
        end_date_time: wire.end_date_time,
        kwh: wire.kwh,
        cdr_token,
        auth_method: wire.auth_method.clone(),
        location_id: &wire.location_id,
        evse_uid: &wire.evse_uid,
        connector_id: &wire.connector_id,
        meter_id: wire.meter_id.as_ref(),
        currency: &wire.currency,
        charging_periods: &wire.charging_periods,
        total_cost: wire.total_cost.as_ref().map(price_to_domain),
        status: wire.status.clone(),
        last_updated: wire.last_updated,
    };
    let mut session = common_to_domain(parts, notes)?;
    session.authorization_reference = optional_text(wire.authorization_reference.as_ref());
    Ok(session)
}

/// What 2.1.1 and 2.2.1 sessions share, in domain form where the versions differ.
pub(crate) struct CommonSession<'a> {
    pub party: PartyId,
    pub id: &'a str,
    pub start_date_time: DateTime<Utc>,
    pub end_date_time: Option<DateTime<Utc>>,
    pub kwh: Decimal,
    pub cdr_token: domain::CdrToken,
    pub auth_method: AuthMethod,
    pub location_id: &'a str,
    pub evse_uid: &'a str,
    pub connector_id: &'a str,
    pub meter_id: Option<&'a String>,
    pub currency: &'a str,
    pub charging_periods: &'a [ChargingPeriod],
    pub total_cost: Option<domain::Price>,
    pub status: SessionStatus,
    pub last_updated: Option<DateTime<Utc>>,
}

pub(crate) fn common_to_domain(parts: CommonSession<'_>, notes: &mut Notes) -> Result<domain::Session, MapError> {
    let id = SessionId::new(parts.id.trim()).map_err(|e| MapError::new("id", e.reason))?;
    let location_id = LocationId::new(parts.location_id.trim()).map_err(|e| MapError::new("location_id", e.reason))?;
    let evse_uid = EvseUid::new(parts.evse_uid.trim()).map_err(|e| MapError::new("evse_uid", e.reason))?;
    let connector_id =
        ConnectorId::new(parts.connector_id.trim()).map_err(|e| MapError::new("connector_id", e.reason))?;
    let currency = Currency::new(parts.currency.trim()).map_err(|e| MapError::new("currency", e.reason))?;
    if let Some(end) = parts.end_date_time
        && end < parts.start_date_time
    {
        return Err(MapError::new("end_date_time", "is before start_date_time"));
    }
    let mut charging_periods = Vec::new();
    for (position, period) in parts.charging_periods.iter().enumerate() {
        if period.dimensions.is_empty() {
            notes.warn(join(&index("charging_periods", position), "dimensions"), "empty");
        }
        charging_periods.push(domain::ChargingPeriod {
            start_date_time: period.start_date_time,
            dimensions: period
                .dimensions
                .iter()
                .map(|d| domain::CdrDimension { dimension: d.dimension.clone(), volume: d.volume })
                .collect(),
            tariff_id: optional_text(period.tariff_id.as_ref()),
        });
    }
    // A session changes while it runs: without a stated last_updated, its latest known moment.
    let last_updated = match plausible(parts.last_updated, "last_updated", notes) {
        Some(at) => at,
        None => {
            let latest = parts.end_date_time.unwrap_or(parts.start_date_time);
            let latest = parts.charging_periods.iter().map(|p| p.start_date_time).fold(latest, DateTime::max);
            notes.warn("last_updated", "missing, the session's latest timestamp is used");
            latest
        }
    };
    Ok(domain::Session {
        party: parts.party,
        id,
        start_date_time: parts.start_date_time,
        end_date_time: parts.end_date_time,
        kwh: parts.kwh,
        cdr_token: parts.cdr_token,
        auth_method: parts.auth_method,
        authorization_reference: None,
        location_id,
        evse_uid,
        connector_id,
        meter_id: optional_text(parts.meter_id),
        currency,
        charging_periods,
        total_cost: parts.total_cost,
        status: parts.status,
        last_updated,
    })
}

/// A domain session as a 2.2.1 object.
pub fn from_domain(session: &domain::Session) -> Session {
    Session {
        country_code: Some(session.party.country_code.to_string()),
        party_id: Some(session.party.party_id.to_string()),
        id: session.id.to_string(),
        start_date_time: session.start_date_time,
        end_date_time: session.end_date_time,
        kwh: session.kwh,
        cdr_token: CdrToken {
            country_code: Some(session.cdr_token.party.country_code.to_string()),
            party_id: Some(session.cdr_token.party.party_id.to_string()),
            uid: session.cdr_token.uid.to_string(),
            token_type: session.cdr_token.token_type.clone(),
            contract_id: session.cdr_token.contract_id.clone(),
        },
        auth_method: session.auth_method.clone(),
        authorization_reference: session.authorization_reference.clone(),
        location_id: session.location_id.to_string(),
        evse_uid: session.evse_uid.to_string(),
        connector_id: session.connector_id.to_string(),
        meter_id: session.meter_id.clone(),
        currency: session.currency.to_string(),
        charging_periods: session
            .charging_periods
            .iter()
            .map(|period| ChargingPeriod {
                start_date_time: period.start_date_time,
                dimensions: period
                    .dimensions
                    .iter()
                    .map(|d| CdrDimension { dimension: d.dimension.clone(), volume: d.volume })
                    .collect(),
                tariff_id: period.tariff_id.clone(),
            })
            .collect(),
        total_cost: session.total_cost.as_ref().map(price_from_domain),
        status: session.status.clone(),
        last_updated: Some(session.last_updated),
    }
}
