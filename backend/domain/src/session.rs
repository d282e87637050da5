//! Charging sessions reported by CPOs (OCPI `Session`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::cdr::ChargingPeriod;
use crate::enums::open_enum;
use crate::ids::{ConnectorId, EvseUid, LocationId, SessionId, TokenUid};
use crate::money::{Currency, Price};
use crate::party::PartyId;
use crate::token::TokenType;

/// A session as the CPO reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The CPO running the session.
    pub party: PartyId,
    pub id: SessionId,
    pub start_date_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<DateTime<Utc>>,
    pub kwh: Decimal,
    pub cdr_token: CdrToken,
    pub auth_method: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_reference: Option<String>,
    pub location_id: LocationId,
    pub evse_uid: EvseUid,
    pub connector_id: ConnectorId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_id: Option<String>,
    pub currency: Currency,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charging_periods: Vec<ChargingPeriod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_cost: Option<Price>,
    pub status: SessionStatus,
    pub last_updated: DateTime<Utc>,
}

/// The token a session or CDR was authorised with (OCPI `CdrToken`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdrToken {
    /// The EMSP that owns the token.
    pub party: PartyId,
    pub uid: TokenUid,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    pub contract_id: String,
}

open_enum! {
    /// How a session was authorised (OCPI `AuthMethod`).
    pub enum AuthMethod {
        AuthRequest => "AUTH_REQUEST",
        Command => "COMMAND",
        Whitelist => "WHITELIST",
    }
}

open_enum! {
    /// A session's status as the CPO reports it (OCPI `SessionStatus`).
    pub enum SessionStatus {
        Active => "ACTIVE",
        Completed => "COMPLETED",
        Invalid => "INVALID",
        Pending => "PENDING",
        Reservation => "RESERVATION",
    }
}
