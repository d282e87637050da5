//! Charging in the driver API: start and stop, reservations, unlocking, charging preferences, the
//! driver's sessions with their CDR costs, and a live `chargingSession` subscription.
//!
//! Resolvers are thin: the service functions of `emsp_roaming::charging` check ownership (another
//! driver's session is NOT_FOUND, exactly like one that does not exist) and talk to the CPO. Live
//! updates come through [`SessionUpdates`], a small interface over whatever broadcasts "this driver
//! session changed" (today the store's in-process announcements).

use std::sync::Arc;

use async_graphql::futures_util::stream::{self, BoxStream, Stream, StreamExt};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use emsp_domain::{ChargingPhase, FailureReason};
use emsp_events::{ChargingSession as SessionChannel, EventBus, Received};
use emsp_roaming::Roaming;
use emsp_roaming::charging::{self as service, ChargingError};
use emsp_store::{CdrRecord, ChargingRecord, CommandRecord, PriceCheck, Store};
use rust_decimal::Decimal;

use crate::accounts::{RoleGuard, viewer};
use crate::errors::{ApiCode, internal, store_error};

/// Tells when a driver session changed: one item per change of session `id`.
pub trait SessionUpdates: Send + Sync {
    fn subscribe(&self, id: &str) -> BoxStream<'static, ()>;
}

/// The event bus, fed by the change feed: changes made on any replica reach this one's subscribers.
pub struct BusUpdates(pub EventBus);

impl SessionUpdates for BusUpdates {
    fn subscribe(&self, id: &str) -> BoxStream<'static, ()> {
        let subscription = self.0.subscribe::<SessionChannel>(id);
        stream::unfold(subscription, |mut subscription| async move {
            match subscription.recv().await {
                // A lag loses nothing: the subscriber re-reads the session either way.
                Received::Event(_) | Received::Lagged(_) => Some(((), subscription)),
                Received::Closed => None,
            }
        })
        .boxed()
    }
}

/// The store's in-process announcements (one process only; for tests and tools without a bus).
pub struct StoreUpdates(pub Store);

impl SessionUpdates for StoreUpdates {
    fn subscribe(&self, id: &str) -> BoxStream<'static, ()> {
        let receiver = self.0.charging_updates();
        let id = id.to_owned();
        stream::unfold(receiver, move |mut receiver| {
            let id = id.clone();
            async move {
                loop {
                    match receiver.recv().await {
                        Ok(update) if update.id == id => return Some(((), receiver)),
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return Some(((), receiver)),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed()
    }
}

/// What charging resolvers need; absent in a schema built without roaming (then charging
/// operations answer INTERNAL).
#[derive(Clone)]
pub struct ChargingApi {
    pub roaming: Arc<Roaming>,
    pub updates: Arc<dyn SessionUpdates>,
}

pub(crate) fn api<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a ChargingApi> {
    ctx.data_opt::<ChargingApi>().ok_or_else(|| internal(&"charging is not configured in this schema"))
}

pub(crate) fn user_id(ctx: &Context<'_>) -> async_graphql::Result<String> {
    Ok(viewer(ctx)?.0.sub.clone())
}

/// A service error in the API's terms.
pub(crate) fn charging_error(error: ChargingError) -> async_graphql::Error {
    match error {
        ChargingError::NotFound(what) => ApiCode::NotFound.error(format!("{what} not found")),
        ChargingError::Invalid(message) => ApiCode::BadUserInput.error(message),
        ChargingError::Unsupported(message) => ApiCode::BadUserInput.error(message),
        ChargingError::Refused(refused) => ApiCode::BadUserInput.error(refused.to_string()),
        ChargingError::Store(error) => store_error(error),
        ChargingError::Internal(message) => internal(&message),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, emsp_store::StoreError> + Send + 'static,
) -> async_graphql::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| internal(&e))?.map_err(store_error)
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ChargingStatus {
    /// We asked the operator to start.
    Requested,
    /// The charger accepted; waiting for the operator to report the session.
    Accepted,
    Charging,
    Stopping,
    Completed,
    Failed,
}

impl From<ChargingPhase> for ChargingStatus {
    fn from(phase: ChargingPhase) -> Self {
        match phase {
            ChargingPhase::Requested => ChargingStatus::Requested,
            ChargingPhase::Accepted => ChargingStatus::Accepted,
            ChargingPhase::Charging => ChargingStatus::Charging,
            ChargingPhase::Stopping => ChargingStatus::Stopping,
            ChargingPhase::Completed => ChargingStatus::Completed,
            ChargingPhase::Failed => ChargingStatus::Failed,
        }
    }
}

/// Why a session did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ChargingFailure {
    Rejected,
    Timeout,
    EvseOccupied,
    EvseInoperative,
    CpoUnreachable,
    NotSupported,
    Invalid,
    Failed,
}

impl From<FailureReason> for ChargingFailure {
    fn from(reason: FailureReason) -> Self {
        match reason {
            FailureReason::Rejected => ChargingFailure::Rejected,
            FailureReason::Timeout => ChargingFailure::Timeout,
            FailureReason::EvseOccupied => ChargingFailure::EvseOccupied,
            FailureReason::EvseInoperative => ChargingFailure::EvseInoperative,
            FailureReason::CpoUnreachable => ChargingFailure::CpoUnreachable,
            FailureReason::NotSupported => ChargingFailure::NotSupported,
            FailureReason::Invalid => ChargingFailure::Invalid,
            FailureReason::Failed => ChargingFailure::Failed,
        }
    }
}

/// A driver's charging session.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct ChargingSession {
    pub id: ID,
    /// The charger (`CC*PID*LOCATION`).
    pub charger_id: String,
    pub evse_uid: String,
    pub connector_id: Option<String>,
    pub status: ChargingStatus,
    pub failure_reason: Option<ChargingFailure>,
    /// A sentence for the driver when the session failed.
    pub failure_message: Option<String>,
    pub energy_kwh: Decimal,
    /// Cost so far as the operator reports it; final once the CDR arrived.
    pub cost_excl_vat: Option<Decimal>,
    pub cost_incl_vat: Option<Decimal>,
    pub currency: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The last stop did not go through; the session goes on.
    pub stop_failed: bool,
    pub requested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub cdr_key: Option<String>,
}

impl From<ChargingRecord> for ChargingSession {
    fn from(record: ChargingRecord) -> Self {
        let state = record.state;
        Self {
            id: ID(record.id),
            charger_id: record.location_key,
            evse_uid: record.evse_uid,
            connector_id: record.connector_id,
            status: state.phase.into(),
            failure_reason: state.failure.map(Into::into),
            failure_message: state.failure.map(|f| f.message().to_owned()),
            energy_kwh: state.kwh,
            cost_excl_vat: state.cost.as_ref().map(|c| c.excl_vat),
            cost_incl_vat: state.cost.as_ref().and_then(|c| c.incl_vat),
            currency: state.currency.map(|c| c.to_string()),
            started_at: state.started_at,
            ended_at: state.ended_at,
            stop_failed: state.stop_failed,
            requested_at: record.created_at,
            updated_at: record.updated_at,
            cdr_key: state.cdr_key,
        }
    }
}

#[ComplexObject]
impl ChargingSession {
    /// The operator's bill, once it arrived.
    async fn cdr(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ChargeRecord>> {
        let Some(key) = self.cdr_key.clone() else { return Ok(None) };
        let store = api(ctx)?.roaming.store.clone();
        Ok(blocking(move || store.get_cdr(&key)).await?.map(Into::into))
    }

    /// The card payment of an ad-hoc session (held, captured, refunded, the CDR's breakdown).
    async fn payment(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<crate::payments::PaymentObject>> {
        crate::payments::payment_of_session(ctx, &self.id).await
    }
}

/// A CDR: what the operator billed.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct ChargeRecord {
    /// `CC*PID*ID`.
    pub id: ID,
    pub currency: String,
    pub total_cost_excl_vat: Decimal,
    pub total_cost_incl_vat: Option<Decimal>,
    pub total_energy_kwh: Decimal,
    /// Hours.
    pub total_time_hours: Decimal,
    pub start_at: DateTime<Utc>,
    pub end_at: DateTime<Utc>,
    #[graphql(skip)]
    pub record: CdrRecord,
}

impl From<CdrRecord> for ChargeRecord {
    fn from(record: CdrRecord) -> Self {
        let cdr = &record.cdr;
        Self {
            id: ID(record.key.clone()),
            currency: cdr.currency.to_string(),
            total_cost_excl_vat: cdr.total_cost.excl_vat,
            total_cost_incl_vat: cdr.total_cost.incl_vat,
            total_energy_kwh: cdr.total_energy,
            total_time_hours: cdr.total_time,
            start_at: cdr.start_date_time,
            end_at: cdr.end_date_time,
            record,
        }
    }
}

/// How our price of a CDR compares with the operator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PriceCheckResult {
    Match,
    Mismatch,
    Unchecked,
}

impl From<PriceCheck> for PriceCheckResult {
    fn from(check: PriceCheck) -> Self {
        match check {
            PriceCheck::Match => PriceCheckResult::Match,
            PriceCheck::Mismatch => PriceCheckResult::Mismatch,
            PriceCheck::Unchecked => PriceCheckResult::Unchecked,
        }
    }
}

#[ComplexObject]
impl ChargeRecord {
    /// Ops only: whether our tariff engine agrees with the operator's totals.
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn price_check(&self) -> PriceCheckResult {
        self.record.price_check.into()
    }

    /// Ops only: our total excluding VAT.
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn our_cost_excl_vat(&self) -> Option<Decimal> {
        self.record.our_cost.as_ref().map(|p| p.excl_vat)
    }

    /// Ops only: why the check did not match or could not be made.
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn price_note(&self) -> Option<String> {
        self.record.price_note.clone()
    }

    /// Ops only: the partner that sent it.
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn partner_id(&self) -> String {
        self.record.partner_id.clone()
    }
}

/// A command sent to a charger's operator.
#[derive(Debug, Clone, SimpleObject)]
pub struct ChargingCommand {
    pub id: ID,
    /// `RESERVE_NOW`, `CANCEL_RESERVATION`, `UNLOCK_CONNECTOR`, ...
    pub command: String,
    /// The operator's immediate answer (`ACCEPTED`, `REJECTED`, `NOT_SUPPORTED`, `NOT_DELIVERED`, ...).
    pub response: Option<String>,
    /// The charger's outcome: `PENDING` until it arrives, `TIMEOUT` when it did not in time.
    pub result: String,
    pub reservation_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<CommandRecord> for ChargingCommand {
    fn from(record: CommandRecord) -> Self {
        Self {
            result: service::command_status(&record).to_owned(),
            id: ID(record.id),
            command: record.command,
            response: record.response,
            reservation_id: record.reservation_id,
            created_at: record.created_at.and_utc(),
        }
    }
}

/// A driver's preferences for smart charging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ChargingProfile {
    Cheap,
    Fast,
    Green,
    Regular,
}

#[derive(Debug, Clone, InputObject)]
pub struct ChargingPreferencesInput {
    pub profile: ChargingProfile,
    pub departure_time: Option<DateTime<Utc>>,
    /// kWh.
    pub energy_need_kwh: Option<f64>,
    pub discharge_allowed: Option<bool>,
}

/// A page of sessions, newest first.
#[derive(SimpleObject)]
pub struct ChargingSessionConnection {
    pub nodes: Vec<ChargingSession>,
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

fn cursor_of(record: &ChargingRecord) -> String {
    format!("{}:{}", record.created_at.timestamp_micros(), record.id)
}

fn parse_cursor(cursor: &str) -> async_graphql::Result<(DateTime<Utc>, String)> {
    let bad = || ApiCode::BadUserInput.error("after is not a cursor of mySessions");
    let (micros, id) = cursor.split_once(':').ok_or_else(bad)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((at, id.to_owned()))
}

#[derive(Default)]
pub struct ChargingQuery;

#[Object]
impl ChargingQuery {
    /// The signed-in driver's sessions, newest first, with their CDR costs.
    async fn my_sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<ChargingSessionConnection> {
        let user = user_id(ctx)?;
        if !(1..=100).contains(&first) {
            return Err(ApiCode::BadUserInput.error("first must be 1 to 100"));
        }
        let after = after.as_deref().map(parse_cursor).transpose()?;
        let store = api(ctx)?.roaming.store.clone();
        let limit = i64::from(first) + 1;
        let mut records =
            blocking(move || store.charging_of_user(&user, after.as_ref().map(|(at, id)| (*at, id.as_str())), limit))
                .await?;
        let has_next_page = records.len() > usize::try_from(first).unwrap_or(0);
        records.truncate(usize::try_from(first).unwrap_or(0));
        let end_cursor = records.last().map(cursor_of);
        Ok(ChargingSessionConnection {
            nodes: records.into_iter().map(Into::into).collect(),
            has_next_page,
            end_cursor,
        })
    }

    /// One of the signed-in driver's sessions (NOT_FOUND for anyone else's).
    async fn charging_session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ChargingSession> {
        let user = user_id(ctx)?;
        let store = &api(ctx)?.roaming.store;
        service::own_charging(store, &user, &id).await.map(Into::into).map_err(charging_error)
    }

    /// One of the signed-in driver's commands (reservations, unlocking), with its result.
    async fn charging_command(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ChargingCommand> {
        let user = user_id(ctx)?;
        let store = &api(ctx)?.roaming.store;
        service::own_command(store, &user, &id).await.map(Into::into).map_err(charging_error)
    }

    /// Ops only: CDRs whose price differs from our tariff engine's (or could not be checked).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn cdrs_to_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        #[graphql(default_with = "PriceCheckResult::Mismatch")] check: PriceCheckResult,
    ) -> async_graphql::Result<Vec<ChargeRecord>> {
        if !(1..=100).contains(&first) {
            return Err(ApiCode::BadUserInput.error("first must be 1 to 100"));
        }
        let check = match check {
            PriceCheckResult::Match => PriceCheck::Match,
            PriceCheckResult::Mismatch => PriceCheck::Mismatch,
            PriceCheckResult::Unchecked => PriceCheck::Unchecked,
        };
        let store = api(ctx)?.roaming.store.clone();
        let records = blocking(move || store.cdrs_with_price_check(check, i64::from(first))).await?;
        Ok(records.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct ChargingMutation;

#[Object]
impl ChargingMutation {
    /// Starts charging at an EVSE of a charger; the session starts REQUESTED (or FAILED when the
    /// operator cannot be reached). Follow it with the `chargingSession` subscription.
    async fn start_charging(
        &self,
        ctx: &Context<'_>,
        charger_id: ID,
        evse_uid: String,
        connector_id: Option<String>,
    ) -> async_graphql::Result<ChargingSession> {
        let user = user_id(ctx)?;
        let roaming = &api(ctx)?.roaming;
        service::start_charging(roaming, &user, &charger_id, &evse_uid, connector_id.as_deref())
            .await
            .map(Into::into)
            .map_err(charging_error)
    }

    /// Asks the operator to stop one of the driver's sessions.
    async fn stop_charging(&self, ctx: &Context<'_>, session_id: ID) -> async_graphql::Result<ChargingSession> {
        let user = user_id(ctx)?;
        let roaming = &api(ctx)?.roaming;
        service::stop_charging(roaming, &user, &session_id).await.map(Into::into).map_err(charging_error)
    }

    /// Reserves an EVSE (or any EVSE of the charger) until `until`.
    async fn reserve(
        &self,
        ctx: &Context<'_>,
        charger_id: ID,
        evse_uid: Option<String>,
        until: DateTime<Utc>,
    ) -> async_graphql::Result<ChargingCommand> {
        let user = user_id(ctx)?;
        let roaming = &api(ctx)?.roaming;
        service::reserve(roaming, &user, &charger_id, evse_uid.as_deref(), until)
            .await
            .map(Into::into)
            .map_err(charging_error)
    }

    async fn cancel_reservation(
        &self,
        ctx: &Context<'_>,
        reservation_id: String,
    ) -> async_graphql::Result<ChargingCommand> {
        let user = user_id(ctx)?;
        let roaming = &api(ctx)?.roaming;
        service::cancel_reservation(roaming, &user, &reservation_id).await.map(Into::into).map_err(charging_error)
    }

    /// Unlocks a connector (a cable stuck after charging).
    async fn unlock_connector(
        &self,
        ctx: &Context<'_>,
        charger_id: ID,
        evse_uid: String,
        connector_id: String,
    ) -> async_graphql::Result<ChargingCommand> {
        let user = user_id(ctx)?;
        let roaming = &api(ctx)?.roaming;
        service::unlock_connector(roaming, &user, &charger_id, &evse_uid, &connector_id)
            .await
            .map(Into::into)
            .map_err(charging_error)
    }

    /// Smart charging: forwards the driver's preferences to the operator. Returns the operator's
    /// answer (`ACCEPTED`, `DEPARTURE_REQUIRED`, `ENERGY_NEED_REQUIRED`, `NOT_POSSIBLE`,
    /// `PROFILE_TYPE_NOT_SUPPORTED`).
    async fn set_charging_preferences(
        &self,
        ctx: &Context<'_>,
        session_id: ID,
        preferences: ChargingPreferencesInput,
    ) -> async_graphql::Result<String> {
        let user = user_id(ctx)?;
        let roaming = &api(ctx)?.roaming;
        let profile = match preferences.profile {
            ChargingProfile::Cheap => "CHEAP",
            ChargingProfile::Fast => "FAST",
            ChargingProfile::Green => "GREEN",
            ChargingProfile::Regular => "REGULAR",
        };
        let wire = emsp_ocpi::commands::ChargingPreferences {
            profile_type: profile.to_owned(),
            departure_time: preferences.departure_time,
            energy_need: preferences.energy_need_kwh,
            discharge_allowed: preferences.discharge_allowed,
        };
        service::set_charging_preferences(roaming, &user, &session_id, wire).await.map_err(charging_error)
    }
}

#[derive(Default)]
pub struct ChargingSubscription;

#[Subscription]
impl ChargingSubscription {
    /// The driver's session now and after every change, until it is completed with its CDR.
    async fn charging_session(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ChargingSession>> + use<>> {
        let user = user_id(ctx)?;
        let api = api(ctx)?.clone();
        // Subscribe before reading, so a change between the two is not lost.
        let updates = api.updates.subscribe(&id);
        let first = service::own_charging(&api.roaming.store, &user, &id).await.map_err(charging_error)?;
        let id = id.to_string();
        let done = |record: &ChargingRecord| record.state.phase.is_final() && record.state.cdr_key.is_some();
        let finished = done(&first);
        let store = api.roaming.store.clone();
        let changes = updates
            .then(move |()| {
                let (store, user, id) = (store.clone(), user.clone(), id.clone());
                async move { service::own_charging(&store, &user, &id).await.map_err(charging_error) }
            })
            .boxed();
        // Ends right after the update that completed the session with its CDR.
        let later = stream::unfold((changes, finished), move |(mut changes, ended)| async move {
            if ended {
                return None;
            }
            let next = changes.next().await?;
            let ended = matches!(&next, Ok(record) if done(record));
            Some((next.map(Into::into), (changes, ended)))
        });
        let first: async_graphql::Result<ChargingSession> = Ok(first.into());
        Ok(stream::once(std::future::ready(first)).chain(later))
    }
}
