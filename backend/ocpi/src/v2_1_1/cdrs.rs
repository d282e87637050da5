//! OCPI 2.1.1 `CDR`. The domain keeps the 2.2.1 shape, so the 2.1.1 `location` becomes a 2.2.1
//! `CdrLocation` (its first EVSE and connector) and `auth_id` becomes the token's uid and contract id.

use chrono::{DateTime, Utc};
use emsp_domain as domain;
use emsp_domain::{AuthMethod, PartyId, TokenType, TokenUid};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::locations::Location;
use super::tariffs::Tariff;
use crate::lenient;
use crate::mapping::{MapError, Notes, index, join, resolve_party};
use crate::v2_2_1::cdrs::{CdrLocation, ChargingPeriod, CommonCdr, common_to_domain, party_from_contract_id};

/// A charge detail record (2.1.1 `CDR` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cdr {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(deserialize_with = "lenient::datetime")]
    pub start_date_time: DateTime<Utc>,
    #[serde(deserialize_with = "lenient::datetime")]
    pub stop_date_time: DateTime<Utc>,
    #[serde(deserialize_with = "lenient::string")]
    pub auth_id: String,
    pub auth_method: AuthMethod,
    pub location: Location,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub meter_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub tariffs: Vec<Tariff>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub charging_periods: Vec<ChargingPeriod>,
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub total_cost: Decimal,
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub total_energy: Decimal,
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub total_time: Decimal,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub total_parking_time: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub remark: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub last_updated: Option<DateTime<Utc>>,
}

/// A 2.1.1 CDR as a domain CDR; `party` is the CPO the CDR came from. The token's eMSP is read from
/// the eMA-ID in `auth_id`; its type is unknown in 2.1.1 and recorded as `OTHER`.
pub fn to_domain(wire: &Cdr, party: Option<&PartyId>, notes: &mut Notes) -> Result<domain::Cdr, MapError> {
    let evse = wire.location.evses.first();
    let connector = evse.and_then(|e| e.connectors.first());
    let mut candidates = Vec::new();
    if let Some(evse_id) = evse.and_then(|e| e.evse_id.as_deref()) {
        candidates.push(("location.evses[0].evse_id".to_owned(), evse_id));
    }
    let party = resolve_party(None, None, party, candidates, notes)?;
    if wire.location.evses.len() != 1 || evse.is_some_and(|e| e.connectors.len() != 1) {
        notes.warn(
            "location.evses",
            "a CDR location should hold exactly one EVSE with one connector; the first is used",
        );
    }
    let token_party = party_from_contract_id(&wire.auth_id)
        .ok_or_else(|| MapError::new("auth_id", format!("{:?} is not an eMA-ID naming the eMSP", wire.auth_id)))?;
    let uid = TokenUid::new(wire.auth_id.trim()).map_err(|e| MapError::new("auth_id", e.reason))?;
    let cdr_token = domain::CdrToken {
        party: token_party,
        uid,
        token_type: TokenType::OtherType,
        contract_id: wire.auth_id.clone(),
    };
    let cdr_location = CdrLocation {
        id: wire.location.id.clone(),
        name: wire.location.name.clone(),
        address: wire.location.address.clone(),
        city: wire.location.city.clone(),
        postal_code: wire.location.postal_code.clone(),
        state: None,
        country: wire.location.country.clone(),
        coordinates: wire.location.coordinates.clone(),
        evse_uid: evse.and_then(|e| e.uid.clone()),
        evse_id: evse.and_then(|e| e.evse_id.clone()),
        connector_id: connector.and_then(|c| c.id.clone()),
        connector_standard: connector.and_then(|c| c.standard.clone()),
        connector_format: connector.and_then(|c| c.format.clone()),
        connector_power_type: connector.and_then(|c| c.power_type.clone()),
    };
    let cdr_location =
        serde_json::to_value(&cdr_location).map_err(|e| MapError::new("location", format!("cannot be kept: {e}")))?;
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
    common_to_domain(
        CommonCdr {
            party,
            id: &wire.id,
            start_date_time: wire.start_date_time,
            end_date_time: wire.stop_date_time,
            cdr_token,
            auth_method: wire.auth_method.clone(),
            cdr_location,
            meter_id: wire.meter_id.as_ref(),
            currency: &wire.currency,
            tariffs,
            charging_periods: &wire.charging_periods,
            total_cost: domain::Price { excl_vat: wire.total_cost, incl_vat: None },
            total_energy: wire.total_energy,
            total_time: wire.total_time,
            total_parking_time: wire.total_parking_time,
            remark: wire.remark.as_ref(),
            last_updated: wire.last_updated,
        },
        notes,
    )
}
