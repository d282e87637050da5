//! Charge detail records: the CPO's bill for one session (OCPI `CDR`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::enums::open_enum;
use crate::ids::{CdrId, SessionId};
use crate::money::{Currency, Price};
use crate::party::PartyId;
use crate::session::{AuthMethod, CdrToken};
use crate::tariff::Tariff;

/// A CDR as received from a CPO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cdr {
    pub party: PartyId,
    pub id: CdrId,
    pub start_date_time: DateTime<Utc>,
    pub end_date_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    pub cdr_token: CdrToken,
    pub auth_method: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_reference: Option<String>,
    /// The location as it was at charging time (kept as received: CDR locations are snapshots).
    pub cdr_location: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_id: Option<String>,
    pub currency: Currency,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tariffs: Vec<Tariff>,
    pub charging_periods: Vec<ChargingPeriod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_data: Option<SignedData>,
    pub total_cost: Price,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_fixed_cost: Option<Price>,
    pub total_energy: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_energy_cost: Option<Price>,
    /// Hours.
    pub total_time: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_time_cost: Option<Price>,
    /// Hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_parking_time: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_parking_cost: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_reservation_cost: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_charging_compensation: Option<bool>,
    pub last_updated: DateTime<Utc>,
}

/// A period of constant charging conditions (OCPI `ChargingPeriod`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargingPeriod {
    pub start_date_time: DateTime<Utc>,
    pub dimensions: Vec<CdrDimension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff_id: Option<String>,
}

/// One measured value of a charging period (OCPI `CdrDimension`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdrDimension {
    #[serde(rename = "type")]
    pub dimension: CdrDimensionType,
    pub volume: Decimal,
}

open_enum! {
    /// What a CDR dimension measures (OCPI `CdrDimensionType`).
    pub enum CdrDimensionType {
        Current => "CURRENT",
        Energy => "ENERGY",
        EnergyExport => "ENERGY_EXPORT",
        EnergyImport => "ENERGY_IMPORT",
        MaxCurrent => "MAX_CURRENT",
        MinCurrent => "MIN_CURRENT",
        MaxPower => "MAX_POWER",
        MinPower => "MIN_POWER",
        ParkingTime => "PARKING_TIME",
        Power => "POWER",
        ReservationTime => "RESERVATION_TIME",
        StateOfCharge => "STATE_OF_CHARGE",
        Time => "TIME",
    }
}

/// Signed meter values (OCPI `SignedData`), stored exactly as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedData {
    pub encoding_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_method_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub signed_values: Vec<SignedValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One signed meter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedValue {
    pub nature: String,
    pub plain_data: String,
    pub signed_data: String,
}
