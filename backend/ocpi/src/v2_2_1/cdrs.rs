//! OCPI 2.2.1 `CDR` and its classes, and their mapping to and from the domain. We are the eMSP, so
//! CDRs come in; the domain → wire direction is for the CPO simulator that sends them in tests.

use chrono::{DateTime, Utc};
use emsp_domain as domain;
use emsp_domain::{
    AuthMethod, CdrDimensionType, CdrId, ConnectorFormat, ConnectorStandard, Currency, PartyId, PowerType, SessionId,
    TokenType, TokenUid,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::locations::GeoLocation;
use super::tariffs::{Price, Tariff, price_to_domain};
use crate::lenient;
use crate::mapping::{FALLBACK_LAST_UPDATED, MapError, Notes, index, join, optional_text, plausible, resolve_party};

/// A charge detail record (2.2.1 `CDR` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cdr {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub party_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(deserialize_with = "lenient::datetime")]
    pub start_date_time: DateTime<Utc>,
    #[serde(deserialize_with = "lenient::datetime")]
    pub end_date_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub session_id: Option<String>,
    pub cdr_token: CdrToken,
    pub auth_method: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub authorization_reference: Option<String>,
    pub cdr_location: CdrLocation,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub meter_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub tariffs: Vec<Tariff>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub charging_periods: Vec<ChargingPeriod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_data: Option<SignedData>,
    pub total_cost: Price,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_fixed_cost: Option<Price>,
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub total_energy: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_energy_cost: Option<Price>,
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub total_time: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_time_cost: Option<Price>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub total_parking_time: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_parking_cost: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_reservation_cost: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub remark: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub invoice_reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_bool")]
    pub credit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub credit_reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_bool")]
    pub home_charging_compensation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub last_updated: Option<DateTime<Utc>>,
}

/// `CdrToken`: the token the session was authorised with; its party is the eMSP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdrToken {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub party_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub uid: String,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    #[serde(deserialize_with = "lenient::string")]
    pub contract_id: String,
}

/// `CdrLocation`: the location, EVSE and connector as they were when the session ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdrLocation {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub country: Option<String>,
    pub coordinates: GeoLocation,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub evse_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub evse_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub connector_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_standard: Option<ConnectorStandard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_format: Option<ConnectorFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_power_type: Option<PowerType>,
}

/// `ChargingPeriod`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargingPeriod {
    #[serde(deserialize_with = "lenient::datetime")]
    pub start_date_time: DateTime<Utc>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub dimensions: Vec<CdrDimension>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub tariff_id: Option<String>,
}

/// `CdrDimension`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdrDimension {
    #[serde(rename = "type")]
    pub dimension: CdrDimensionType,
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub volume: Decimal,
}

/// `SignedData`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedData {
    #[serde(deserialize_with = "lenient::string")]
    pub encoding_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_method_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub public_key: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub signed_values: Vec<SignedValue>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
}

/// `SignedValue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedValue {
    #[serde(deserialize_with = "lenient::string")]
    pub nature: String,
    #[serde(deserialize_with = "lenient::string")]
    pub plain_data: String,
    #[serde(deserialize_with = "lenient::string")]
    pub signed_data: String,
}

// ---------------------------------------------------------------------------------------------
// Wire → domain
// ---------------------------------------------------------------------------------------------

/// A 2.2.1 CDR as a domain CDR; `fallback_party` (the CPO) when the object names no valid party.
pub fn to_domain(wire: &Cdr, fallback_party: Option<&PartyId>, notes: &mut Notes) -> Result<domain::Cdr, MapError> {
    let mut candidates = Vec::new();
    if let Some(evse_id) = &wire.cdr_location.evse_id {
        candidates.push(("cdr_location.evse_id".to_owned(), evse_id.as_str()));
    }
    candidates.push(("id".to_owned(), wire.id.as_str()));
    let party =
        resolve_party(wire.country_code.as_deref(), wire.party_id.as_deref(), fallback_party, candidates, notes)?;
    let cdr_token = token_to_domain(&wire.cdr_token, notes)?;
    let cdr_location = serde_json::to_value(&wire.cdr_location)
        .map_err(|e| MapError::new("cdr_location", format!("cannot be kept: {e}")))?;
    let mut tariffs = Vec::new();
    for (position, tariff) in wire.tariffs.iter().enumerate() {
        let path = index("tariffs", position);
        let mut tariff_notes = Notes::new();
        let tariff = super::tariffs::to_domain(tariff, Some(&party), &mut tariff_notes)
            .map_err(|e| MapError::new(join(&path, &e.path), e.reason))?;
        for note in tariff_notes.items {
            notes.warn(join(&path, &note.path), note.message);
        }
        tariffs.push(tariff);
    }
    let mut cdr = common_to_domain(
        CommonCdr {
            party,
            id: &wire.id,
            start_date_time: wire.start_date_time,
            end_date_time: wire.end_date_time,
            cdr_token,
            auth_method: wire.auth_method.clone(),
            cdr_location,
            meter_id: wire.meter_id.as_ref(),
            currency: &wire.currency,
            tariffs,
            charging_periods: &wire.charging_periods,
            total_cost: price_to_domain(&wire.total_cost),
            total_energy: wire.total_energy,
            total_time: wire.total_time,
            total_parking_time: wire.total_parking_time,
            remark: wire.remark.as_ref(),
            last_updated: wire.last_updated,
        },
        notes,
    )?;
    cdr.session_id = match wire.session_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => match SessionId::new(id) {
            Ok(id) => Some(id),
            Err(e) => {
                notes.warn("session_id", format!("{}; dropped", e.reason));
                None
            }
        },
        None => None,
    };
    cdr.authorization_reference = optional_text(wire.authorization_reference.as_ref());
    cdr.signed_data = wire.signed_data.as_ref().map(signed_data_to_domain);
    cdr.total_fixed_cost = wire.total_fixed_cost.as_ref().map(price_to_domain);
    cdr.total_energy_cost = wire.total_energy_cost.as_ref().map(price_to_domain);
    cdr.total_time_cost = wire.total_time_cost.as_ref().map(price_to_domain);
    cdr.total_parking_cost = wire.total_parking_cost.as_ref().map(price_to_domain);
    cdr.total_reservation_cost = wire.total_reservation_cost.as_ref().map(price_to_domain);
    cdr.invoice_reference_id = optional_text(wire.invoice_reference_id.as_ref());
    cdr.credit = wire.credit;
    cdr.credit_reference_id = optional_text(wire.credit_reference_id.as_ref());
    cdr.home_charging_compensation = wire.home_charging_compensation;
    Ok(cdr)
}

pub(crate) fn token_to_domain(wire: &CdrToken, notes: &mut Notes) -> Result<domain::CdrToken, MapError> {
    let mut token_notes = Notes::new();
    let party = resolve_party(wire.country_code.as_deref(), wire.party_id.as_deref(), None, [], &mut token_notes)
        .or_else(|_| {
            party_from_contract_id(&wire.contract_id)
                .inspect(|party| {
                    token_notes.warn(
                        "country_code",
                        format!("no country_code/party_id: eMSP {party} derived from the contract id"),
                    )
                })
                .ok_or_else(|| {
                    MapError::new("country_code", "no country_code/party_id and the contract id names no eMSP")
                })
        })
        .map_err(|e| MapError::new(join("cdr_token", &e.path), e.reason))?;
    for note in token_notes.items {
        notes.warn(join("cdr_token", &note.path), note.message);
    }
    let uid = TokenUid::new(wire.uid.trim()).map_err(|e| MapError::new("cdr_token.uid", e.reason))?;
    Ok(domain::CdrToken { party, uid, token_type: wire.token_type.clone(), contract_id: wire.contract_id.clone() })
}

/// The eMSP of an eMA-ID (`NL-ABC-C12345678-X`, `NLABCC12345678X`): its first two letters and the
/// three characters after them (ISO 15118 country code + provider id).
pub(crate) fn party_from_contract_id(contract_id: &str) -> Option<PartyId> {
    let compact: String = contract_id.chars().filter(|c| *c != '-' && *c != '*').collect();
    if compact.len() < 9 || !compact.is_ascii() {
        return None;
    }
    PartyId::parse(&compact[..5]).ok()
}

/// What 2.1.1 and 2.2.1 CDRs share, already in domain form where the versions differ.
pub(crate) struct CommonCdr<'a> {
    pub party: PartyId,
    pub id: &'a str,
    pub start_date_time: DateTime<Utc>,
    pub end_date_time: DateTime<Utc>,
    pub cdr_token: domain::CdrToken,
    pub auth_method: AuthMethod,
    pub cdr_location: serde_json::Value,
    pub meter_id: Option<&'a String>,
    pub currency: &'a str,
    pub tariffs: Vec<domain::Tariff>,
    pub charging_periods: &'a [ChargingPeriod],
    pub total_cost: domain::Price,
    pub total_energy: Decimal,
    pub total_time: Decimal,
    pub total_parking_time: Option<Decimal>,
    pub remark: Option<&'a String>,
    pub last_updated: Option<DateTime<Utc>>,
}

pub(crate) fn common_to_domain(parts: CommonCdr<'_>, notes: &mut Notes) -> Result<domain::Cdr, MapError> {
    let id = CdrId::new(parts.id.trim()).map_err(|e| MapError::new("id", e.reason))?;
    let currency = Currency::new(parts.currency.trim()).map_err(|e| MapError::new("currency", e.reason))?;
    if parts.end_date_time < parts.start_date_time {
        return Err(MapError::new("end_date_time", "is before start_date_time"));
    }
    if parts.charging_periods.is_empty() {
        notes.warn("charging_periods", "empty: the CDR cannot be re-priced");
    }
    let mut charging_periods = Vec::new();
    for (position, period) in parts.charging_periods.iter().enumerate() {
        let path = index("charging_periods", position);
        if period.dimensions.is_empty() {
            notes.warn(join(&path, "dimensions"), "empty");
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
    let last_updated = match plausible(parts.last_updated, "last_updated", notes) {
        Some(at) => at,
        None => {
            notes.warn("last_updated", "missing, end_date_time used");
            parts.end_date_time.max(FALLBACK_LAST_UPDATED)
        }
    };
    Ok(domain::Cdr {
        party: parts.party,
        id,
        start_date_time: parts.start_date_time,
        end_date_time: parts.end_date_time,
        session_id: None,
        cdr_token: parts.cdr_token,
        auth_method: parts.auth_method,
        authorization_reference: None,
        cdr_location: parts.cdr_location,
        meter_id: optional_text(parts.meter_id),
        currency,
        tariffs: parts.tariffs,
        charging_periods,
        signed_data: None,
        total_cost: parts.total_cost,
        total_fixed_cost: None,
        total_energy: parts.total_energy,
        total_energy_cost: None,
        total_time: parts.total_time,
        total_time_cost: None,
        total_parking_time: parts.total_parking_time,
        total_parking_cost: None,
        total_reservation_cost: None,
        remark: optional_text(parts.remark),
        invoice_reference_id: None,
        credit: None,
        credit_reference_id: None,
        home_charging_compensation: None,
        last_updated,
    })
}

fn signed_data_to_domain(wire: &SignedData) -> domain::SignedData {
    domain::SignedData {
        encoding_method: wire.encoding_method.clone(),
        encoding_method_version: wire.encoding_method_version,
        public_key: wire.public_key.clone(),
        signed_values: wire
            .signed_values
            .iter()
            .map(|v| domain::SignedValue {
                nature: v.nature.clone(),
                plain_data: v.plain_data.clone(),
                signed_data: v.signed_data.clone(),
            })
            .collect(),
        url: wire.url.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Domain → wire
// ---------------------------------------------------------------------------------------------

/// A domain CDR as a 2.2.1 object. Fails only when the stored `cdr_location` (kept as received)
/// is not a 2.2.1 `CdrLocation`.
pub fn from_domain(cdr: &domain::Cdr) -> Result<Cdr, MapError> {
    let cdr_location: CdrLocation = serde_json::from_value(cdr.cdr_location.clone())
        .map_err(|e| MapError::new("cdr_location", format!("is not a 2.2.1 CdrLocation: {e}")))?;
    let price = |price: &Option<domain::Price>| price.as_ref().map(super::tariffs::price_from_domain);
    Ok(Cdr {
        country_code: Some(cdr.party.country_code.to_string()),
        party_id: Some(cdr.party.party_id.to_string()),
        id: cdr.id.to_string(),
        start_date_time: cdr.start_date_time,
        end_date_time: cdr.end_date_time,
        session_id: cdr.session_id.as_ref().map(ToString::to_string),
        cdr_token: CdrToken {
            country_code: Some(cdr.cdr_token.party.country_code.to_string()),
            party_id: Some(cdr.cdr_token.party.party_id.to_string()),
            uid: cdr.cdr_token.uid.to_string(),
            token_type: cdr.cdr_token.token_type.clone(),
            contract_id: cdr.cdr_token.contract_id.clone(),
        },
        auth_method: cdr.auth_method.clone(),
        authorization_reference: cdr.authorization_reference.clone(),
        cdr_location,
        meter_id: cdr.meter_id.clone(),
        currency: cdr.currency.to_string(),
        tariffs: cdr.tariffs.iter().map(super::tariffs::from_domain).collect(),
        charging_periods: cdr
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
        signed_data: cdr.signed_data.as_ref().map(|signed| SignedData {
            encoding_method: signed.encoding_method.clone(),
            encoding_method_version: signed.encoding_method_version,
            public_key: signed.public_key.clone(),
            signed_values: signed
                .signed_values
                .iter()
                .map(|v| SignedValue {
                    nature: v.nature.clone(),
                    plain_data: v.plain_data.clone(),
                    signed_data: v.signed_data.clone(),
                })
                .collect(),
            url: signed.url.clone(),
        }),
        total_cost: super::tariffs::price_from_domain(&cdr.total_cost),
        total_fixed_cost: price(&cdr.total_fixed_cost),
        total_energy: cdr.total_energy,
        total_energy_cost: price(&cdr.total_energy_cost),
        total_time: cdr.total_time,
        total_time_cost: price(&cdr.total_time_cost),
        total_parking_time: cdr.total_parking_time,
        total_parking_cost: price(&cdr.total_parking_cost),
        total_reservation_cost: price(&cdr.total_reservation_cost),
        remark: cdr.remark.clone(),
        invoice_reference_id: cdr.invoice_reference_id.clone(),
        credit: cdr.credit,
        credit_reference_id: cdr.credit_reference_id.clone(),
        home_charging_compensation: cdr.home_charging_compensation,
        last_updated: Some(cdr.last_updated),
    })
}
