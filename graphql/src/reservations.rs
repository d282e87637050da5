//! The driver's reservations: `myReservations`, each with its status derived from the RESERVE_NOW
//! and CANCEL_RESERVATION commands and the clock (`emsp_domain::reservation`). Making and
//! cancelling one are the `reserve` and `cancelReservation` mutations (charging).

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use emsp_domain::{ReservationStatus as Status, reservation_failure_message};
use emsp_roaming::charging::{self as service, Reservation as Record};

use crate::charging::{ChargingFailure, api, charging_error, user_id};
use crate::errors::ApiCode;

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ReservationStatus {
    /// Sent; the charger has not confirmed yet.
    Requested,
    /// The charger holds the EVSE until `expiresAt`.
    Active,
    /// Cancellation sent; the charger has not confirmed yet.
    Cancelling,
    /// Cancelled by the driver or by the operator.
    Cancelled,
    Expired,
    /// Not made (see `failureReason`).
    Failed,
    /// The driver started charging at the reserved charger while it held.
    Used,
}

impl From<Status> for ReservationStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Requested => Self::Requested,
            Status::Active => Self::Active,
            Status::Cancelling => Self::Cancelling,
            Status::Cancelled => Self::Cancelled,
            Status::Expired => Self::Expired,
            Status::Failed => Self::Failed,
            Status::Used => Self::Used,
        }
    }
}

/// A reservation of an EVSE (or of any EVSE of a charger).
#[derive(Debug, Clone, SimpleObject)]
pub struct Reservation {
    /// The id to cancel it with (`cancelReservation`).
    pub id: String,
    /// The RESERVE_NOW command (`chargingCommand`).
    pub command_id: ID,
    /// The charger (`CC*PID*LOCATION`), while we still list it.
    pub charger_id: Option<String>,
    /// The operator's location id.
    pub location_id: String,
    /// The EVSE, when one was reserved rather than any of the charger's.
    pub evse_uid: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub status: ReservationStatus,
    pub failure_reason: Option<ChargingFailure>,
    /// A sentence for the driver when the reservation failed.
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Record> for Reservation {
    fn from(record: Record) -> Self {
        Self {
            id: record.id,
            command_id: ID(record.command_id),
            charger_id: record.location_key,
            location_id: record.location_id,
            evse_uid: record.evse_uid,
            expires_at: record.expires_at,
            status: record.status.into(),
            failure_reason: record.failure.map(Into::into),
            failure_message: record.failure.map(|f| reservation_failure_message(f).to_owned()),
            created_at: record.created_at,
        }
    }
}

#[derive(Default)]
pub struct ReservationQuery;

#[Object]
impl ReservationQuery {
    /// The signed-in driver's reservations, newest first; with `open`, only those that still hold
    /// (or may still hold) an EVSE: REQUESTED, ACTIVE and CANCELLING.
    async fn my_reservations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        open: Option<bool>,
    ) -> async_graphql::Result<Vec<Reservation>> {
        let open = open.unwrap_or(false);
        let user = user_id(ctx)?;
        if !(1..=100).contains(&first) {
            return Err(ApiCode::BadUserInput.error("first must be 1 to 100"));
        }
        let roaming = &api(ctx)?.roaming;
        // Open ones are among the newest (a reservation is open only until its expiry): the
        // last hundred made hold them all unless a driver made a hundred since.
        let limit = if open { 100 } else { i64::from(first) };
        let records = service::reservations(roaming, &user, limit, Utc::now()).await.map_err(charging_error)?;
        let first = usize::try_from(first).unwrap_or(0);
        Ok(records.into_iter().filter(|r| !open || r.status.is_open()).take(first).map(Into::into).collect())
    }
}
