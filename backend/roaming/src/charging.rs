//! Charging from the app, on the OCPI side: the commands we send (START_SESSION, STOP_SESSION,
//! RESERVE_NOW, CANCEL_RESERVATION, UNLOCK_CONNECTOR), their results posted back to us, our own
//! time limit when no result comes, and the driver's charging preferences.
//!
//! Every command is recorded before it is sent, under a fresh id that is the last segment of its
//! `response_url` (`{public}/ocpi/{version}/commands/{COMMAND}/{id}`); a result is accepted only from
//! the partner the command went to. The driver's session follows from each answer through the
//! domain state machine ([`emsp_domain::ChargingState`]), applied in the store.
//!
//! Ownership (a driver sees and steers only their own sessions) is checked here, so every caller
//! gets it: a session of someone else is "not found", exactly like one that does not exist.

use std::time::Duration;

use chrono::{DateTime, Utc};
use emsp_domain::{
    ChargingEvent, ChargingPhase, CommandFacts, CommandResponseType, CommandResultType, FailureReason, PartyId,
    ReservationStatus, Token, TransitionError, reservation_status,
};
use emsp_ocpi::OcpiVersion;
use emsp_ocpi::commands::{ChargingPreferences, CommandRequest, CommandResponse, CommandResult, CommandType};
use emsp_store::{
    ChargingRecord, CommandRecord, NewCharging, NewCommand, Partner, PartnerStatus, ReportedCharging, Store, StoreError,
};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::watch;

use crate::client::{Target, TokenEncoding};
use crate::error::{OcpiError, RoamingError};
use crate::transport::Roaming;

/// How long we wait for a command's result when the CPO names no time (2.1.1 never does).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Bounds on the time a CPO may ask us to wait.
const COMMAND_TIMEOUT_RANGE: (u64, u64) = (1, 600);
/// How often the time limits of pending commands are checked.
const TIMEOUT_SWEEP: Duration = Duration::from_secs(1);

/// Why a driver's request could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ChargingError {
    /// The charger, session or reservation does not exist, or is not the driver's.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request does not fit (bad input, a session not yet known to the CPO).
    #[error("{0}")]
    Invalid(String),
    /// The charger's operator cannot be steered from the app (no roaming connection, no commands).
    #[error("{0}")]
    Unsupported(String),
    /// The session is not in a state that allows this.
    #[error(transparent)]
    Refused(#[from] TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ChargingError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ChargingError::Internal(e.to_string()))?.map_err(Into::into)
}

/// A partner we can send commands to, and the party (CPO) a command is for: the owner of the
/// location or session, named in the `OCPI-to-*` routing headers so that a hub fronting many
/// CPOs can route it.
struct CommandTarget {
    partner: Partner,
    token: String,
    version: OcpiVersion,
    encoding: TokenEncoding,
    to: Option<PartyId>,
}

impl CommandTarget {
    fn target(&self) -> Target<'_> {
        Target { token: &self.token, encoding: self.encoding, to: self.to.as_ref() }
    }

    /// The partner's endpoint of `module` in the role the CPO plays there (`RECEIVER` for
    /// commands, `SENDER` for sessions); 2.1.1 endpoints have no role.
    fn endpoint(&self, module: &str, role: &str) -> Option<&str> {
        self.partner
            .endpoints
            .iter()
            .find(|e| {
                e.identifier.eq_ignore_ascii_case(module)
                    && e.role.as_deref().is_none_or(|r| r.eq_ignore_ascii_case(role))
            })
            .map(|e| e.url.as_str())
    }
}

async fn command_target(
    roaming: &Roaming,
    partner_id: &str,
    to: Option<PartyId>,
) -> Result<CommandTarget, ChargingError> {
    let store = roaming.store.clone();
    let id = partner_id.to_owned();
    let (partner, token) = blocking(move || Ok((store.get_partner(&id)?, store.outgoing_token(&id)?))).await?;
    let unsupported = || ChargingError::Unsupported("this charger's operator cannot be reached from the app".into());
    let partner = partner.ok_or_else(unsupported)?;
    let token = token.ok_or_else(unsupported)?;
    if partner.status != PartnerStatus::Registered {
        return Err(unsupported());
    }
    let version = partner.version.as_deref().and_then(|v| OcpiVersion::parse(v).ok()).ok_or_else(unsupported)?;
    let encoding = TokenEncoding::choose(partner.token_encoding.as_deref(), Some(version));
    Ok(CommandTarget { partner, token, version, encoding, to })
}

/// The party of a stored key (`CC*PID*ID`).
fn party_of_key(key: &str) -> Option<PartyId> {
    let mut parts = key.splitn(3, '*');
    let (country, party) = (parts.next()?, parts.next()?);
    PartyId::parse(&format!("{country}*{party}")).ok()
}

/// The token a driver charges with from the app: their APP_USER token, issued on first use. A
/// blocked or invalid token cannot start anything.
async fn driver_token(roaming: &Roaming, user_id: &str) -> Result<Token, ChargingError> {
    let store = roaming.store.clone();
    let (user, party, name) = (user_id.to_owned(), roaming.config.party.clone(), roaming.config.business_name.clone());
    let record = blocking(move || store.ensure_app_token(&user, &party, &name)).await?;
    let token = record.token;
    if !token.valid || token.blocked_reason.is_some() {
        return Err(ChargingError::Invalid("your app token is blocked; contact support".into()));
    }
    if token.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ChargingError::Invalid("your app token has expired; contact support".into()));
    }
    Ok(token)
}

/// What sending a command gave: its id and the CPO's synchronous answer (or why there was none).
struct Sent {
    id: String,
    response: Result<CommandResponse, RoamingError>,
}

/// Records and sends a command; the synchronous answer is recorded too. A command that gets no
/// ACCEPTED will get no result either, so it is closed with its answer as result.
async fn send_command(
    roaming: &Roaming,
    target: &CommandTarget,
    request: &CommandRequest,
    user_id: Option<&str>,
    charging_id: Option<&str>,
    reservation_id: Option<&str>,
) -> Result<Sent, ChargingError> {
    let command = request.command();
    if !command.exists_in(target.version) {
        return Err(ChargingError::Unsupported(format!(
            "{} does not exist in OCPI {}",
            command.as_str(),
            target.version.as_str()
        )));
    }
    let endpoint = target
        .endpoint("commands", "RECEIVER")
        .ok_or_else(|| ChargingError::Unsupported("this charger's operator takes no commands from the app".into()))?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let response_url =
        format!("{}/commands/{}/{id}", roaming.config.version_url(target.version.as_str()), command.as_str());
    let body = request.to_wire(target.version, &response_url);
    let deadline = Utc::now() + DEFAULT_COMMAND_TIMEOUT;
    let store = roaming.store.clone();
    let new = (
        id.clone(),
        target.partner.id.clone(),
        user_id.map(str::to_owned),
        charging_id.map(str::to_owned),
        reservation_id.map(str::to_owned),
        body.to_string(),
    );
    blocking(move || {
        store.create_command(&NewCommand {
            id: &new.0,
            partner_id: &new.1,
            user_id: new.2.as_deref(),
            charging_id: new.3.as_deref(),
            command: command.as_str(),
            reservation_id: new.4.as_deref(),
            request: &new.5,
            deadline,
        })
    })
    .await?;
    let url = format!("{}/{}", endpoint.trim_end_matches('/'), command.as_str());
    let answer =
        roaming.client.send::<Value, CommandResponse>(Method::POST, &url, &target.target(), &body).await.and_then(
            |data| {
                data.ok_or_else(|| RoamingError::Malformed { url: url.clone(), reason: "no CommandResponse".into() })
            },
        );
    let (response_text, deadline, closed) = match &answer {
        Ok(response) => {
            let seconds = response.timeout.map(u64::from).unwrap_or(DEFAULT_COMMAND_TIMEOUT.as_secs());
            let seconds = seconds.clamp(COMMAND_TIMEOUT_RANGE.0, COMMAND_TIMEOUT_RANGE.1);
            let accepted = response.response_type() == CommandResponseType::Accepted;
            let deadline = Utc::now() + Duration::from_secs(seconds);
            (response.response_type().as_str().to_owned(), deadline, !accepted)
        }
        Err(error) => {
            tracing::warn!(%error, partner = %target.partner.id, command = command.as_str(), "command not delivered");
            ("NOT_DELIVERED".to_owned(), Utc::now(), true)
        }
    };
    let store = roaming.store.clone();
    let command_id = id.clone();
    blocking(move || {
        store.set_command_response(&command_id, &response_text, deadline)?;
        if closed {
            store.set_command_result(&command_id, &response_text)?;
        }
        Ok(())
    })
    .await?;
    tracing::info!(partner = %target.partner.id, command = command.as_str(), id = %id, ok = answer.is_ok(), "command sent");
    Ok(Sent { id, response: answer })
}

/// The event a START_SESSION's synchronous outcome means for the driver's session.
fn start_event(response: &Result<CommandResponse, RoamingError>) -> ChargingEvent {
    match response {
        Ok(response) => ChargingEvent::StartResponse(response.response_type()),
        // The CPO answered, with an OCPI error (unknown location, bad token...): a refusal.
        Err(RoamingError::Ocpi { .. }) => ChargingEvent::StartResponse(CommandResponseType::Rejected),
        Err(_) => ChargingEvent::CpoUnreachable,
    }
}

async fn apply(roaming: &Roaming, id: &str, event: ChargingEvent) -> Result<ChargingRecord, ChargingError> {
    let store = roaming.store.clone();
    let id = id.to_owned();
    let applied = blocking(move || store.apply_charging_event(&id, &event)).await?;
    let applied = applied.ok_or(ChargingError::NotFound("charging session"))?;
    if let Some(refused) = applied.refused {
        return Err(ChargingError::Refused(refused));
    }
    Ok(applied.record)
}

/// A driver's own session, or NotFound.
pub async fn own_charging(store: &Store, user_id: &str, id: &str) -> Result<ChargingRecord, ChargingError> {
    let store = store.clone();
    let key = id.to_owned();
    let record = blocking(move || store.get_charging(&key)).await?;
    record.filter(|r| r.user_id == user_id).ok_or(ChargingError::NotFound("charging session"))
}

/// Starts charging at a charger (`CC*PID*LOCATION` key), an EVSE and optionally a connector: the
/// session is recorded as REQUESTED, the START_SESSION sent with the driver's token and a fresh
/// `authorization_reference`, and the CPO's answer applied. A CPO that cannot be reached gives a
/// FAILED session (CPO_UNREACHABLE), not an error.
pub async fn start_charging(
    roaming: &Roaming,
    user_id: &str,
    location_key: &str,
    evse_uid: &str,
    connector_id: Option<&str>,
) -> Result<ChargingRecord, ChargingError> {
    let charger = startable(roaming, location_key, evse_uid, connector_id).await?;
    let token = driver_token(roaming, user_id).await?;
    let id = uuid::Uuid::new_v4().to_string();
    start_with(roaming, user_id, &charger, &id, token).await
}

/// A charger, EVSE and connector that a START_SESSION can be sent for: it exists and its
/// operator takes commands from us. Checked before anything is spent on a session (a card hold).
pub struct Startable {
    location: emsp_domain::Location,
    key: String,
    evse_uid: String,
    connector_id: Option<String>,
    target: CommandTarget,
}

impl Startable {
    pub fn location(&self) -> &emsp_domain::Location {
        &self.location
    }

    /// `CC*PID*LOCATION` in upper case.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The EVSE's uid as the CPO spells it.
    pub fn evse_uid(&self) -> &str {
        &self.evse_uid
    }

    pub fn connector_id(&self) -> Option<&str> {
        self.connector_id.as_deref()
    }
}

/// Checks that a session can be started at this charger, EVSE and connector (see [`Startable`]).
pub async fn startable(
    roaming: &Roaming,
    location_key: &str,
    evse_uid: &str,
    connector_id: Option<&str>,
) -> Result<Startable, ChargingError> {
    let store = roaming.store.clone();
    let key = location_key.to_ascii_uppercase();
    let lookup = key.clone();
    let (location, partner_id) =
        blocking(move || Ok((store.get_location(&lookup)?, store.location_partner(&lookup)?))).await?;
    let location = location.ok_or(ChargingError::NotFound("charger"))?;
    let evse = location
        .evses
        .iter()
        .find(|e| e.uid.as_str().eq_ignore_ascii_case(evse_uid))
        .ok_or(ChargingError::NotFound("EVSE"))?;
    let connector = match connector_id {
        Some(id) => Some(
            evse.connectors
                .iter()
                .find(|c| c.id.as_str().eq_ignore_ascii_case(id))
                .ok_or(ChargingError::NotFound("connector"))?
                .id
                .to_string(),
        ),
        None => None,
    };
    let evse_uid = evse.uid.to_string();
    let partner_id = partner_id
        .ok_or_else(|| ChargingError::Unsupported("this charger's operator cannot be reached from the app".into()))?;
    let target = command_target(roaming, &partner_id, Some(location.party.clone())).await?;
    Ok(Startable { location, key, evse_uid, connector_id: connector, target })
}

/// Starts a session at a checked charger with a given token (an AD_HOC_USER token of a card
/// payment, or the driver's APP_USER token) under a session id the caller chose (so it can note
/// the id, for instance on a payment, before anything is sent).
pub async fn start_with(
    roaming: &Roaming,
    user_id: &str,
    charger: &Startable,
    id: &str,
    token: Token,
) -> Result<ChargingRecord, ChargingError> {
    let reference = uuid::Uuid::new_v4().simple().to_string();
    let store = roaming.store.clone();
    let new = (
        id.to_owned(),
        user_id.to_owned(),
        charger.target.partner.id.clone(),
        charger.key.clone(),
        charger.evse_uid.clone(),
        charger.connector_id.clone(),
        token.uid.to_string(),
        token.contract_id.clone(),
        reference.clone(),
    );
    blocking(move || {
        store.create_charging(&NewCharging {
            id: &new.0,
            user_id: &new.1,
            partner_id: &new.2,
            location_key: &new.3,
            evse_uid: &new.4,
            connector_id: new.5.as_deref(),
            token_uid: &new.6,
            contract_id: &new.7,
            authorization_reference: &new.8,
        })
    })
    .await?;
    let request = CommandRequest::StartSession {
        token,
        location_id: charger.location.id.to_string(),
        evse_uid: Some(charger.evse_uid.clone()),
        connector_id: charger.connector_id.clone(),
        authorization_reference: Some(reference),
    };
    let sent = send_command(roaming, &charger.target, &request, Some(user_id), Some(id), None).await?;
    apply(roaming, id, start_event(&sent.response)).await
}

/// Stops a driver's running session: STOP_SESSION with the CPO's session id.
pub async fn stop_charging(roaming: &Roaming, user_id: &str, id: &str) -> Result<ChargingRecord, ChargingError> {
    let record = own_charging(&roaming.store, user_id, id).await?;
    let phase = record.state.phase;
    if !matches!(phase, ChargingPhase::Accepted | ChargingPhase::Charging) {
        return Err(ChargingError::Refused(TransitionError { action: "stop", phase }));
    }
    let session_key = record.state.session_key.clone().ok_or_else(|| {
        ChargingError::Invalid("the operator has not reported the session yet; try again in a moment".into())
    })?;
    let store = roaming.store.clone();
    let session = blocking(move || store.get_cpo_session(&session_key)).await?;
    let session = session.ok_or_else(|| ChargingError::Internal("linked CPO session is missing".into()))?;
    let target = command_target(roaming, &record.partner_id, Some(session.session.party.clone())).await?;
    apply(roaming, id, ChargingEvent::StopRequested).await?;
    let request = CommandRequest::StopSession { session_id: session.session.id.to_string() };
    let sent = send_command(roaming, &target, &request, Some(user_id), Some(id), None).await;
    let event = match &sent {
        Ok(Sent { response: Ok(response), .. }) => ChargingEvent::StopResponse(response.response_type()),
        _ => ChargingEvent::StopResponse(CommandResponseType::Rejected),
    };
    let record = apply(roaming, id, event).await?;
    sent?;
    Ok(record)
}

/// The partner and location of a charger, for commands that do not start a session.
async fn charger(
    roaming: &Roaming,
    location_key: &str,
    evse_uid: Option<&str>,
) -> Result<(CommandTarget, String, Option<String>), ChargingError> {
    let store = roaming.store.clone();
    let key = location_key.to_ascii_uppercase();
    let (location, partner_id) =
        blocking(move || Ok((store.get_location(&key)?, store.location_partner(&key)?))).await?;
    let location = location.ok_or(ChargingError::NotFound("charger"))?;
    let evse = match evse_uid {
        Some(uid) => Some(
            location
                .evses
                .iter()
                .find(|e| e.uid.as_str().eq_ignore_ascii_case(uid))
                .map(|e| e.uid.to_string())
                .ok_or(ChargingError::NotFound("EVSE"))?,
        ),
        None => None,
    };
    let partner_id = partner_id
        .ok_or_else(|| ChargingError::Unsupported("this charger's operator cannot be reached from the app".into()))?;
    let target = command_target(roaming, &partner_id, Some(location.party.clone())).await?;
    Ok((target, location.id.to_string(), evse))
}

async fn command_record(roaming: &Roaming, id: String) -> Result<CommandRecord, ChargingError> {
    let store = roaming.store.clone();
    blocking(move || store.get_command(&id)).await?.ok_or_else(|| ChargingError::Internal("command vanished".into()))
}

/// A driver's own command, or NotFound.
pub async fn own_command(store: &Store, user_id: &str, id: &str) -> Result<CommandRecord, ChargingError> {
    let store = store.clone();
    let key = id.to_owned();
    let record = blocking(move || store.get_command(&key)).await?;
    record.filter(|r| r.user_id.as_deref() == Some(user_id)).ok_or(ChargingError::NotFound("command"))
}

/// RESERVE_NOW for the driver until `expiry`. The reservation id is new digits (2.1.1 wants an
/// integer). Returns the command as recorded (its result arrives later).
pub async fn reserve(
    roaming: &Roaming,
    user_id: &str,
    location_key: &str,
    evse_uid: Option<&str>,
    expiry: DateTime<Utc>,
) -> Result<CommandRecord, ChargingError> {
    if expiry <= Utc::now() {
        return Err(ChargingError::Invalid("the reservation must end in the future".into()));
    }
    let (target, location_id, evse_uid) = charger(roaming, location_key, evse_uid).await?;
    let token = driver_token(roaming, user_id).await?;
    let reservation_id = (u64::from(rand::random::<u32>()) + 1).to_string();
    let request = CommandRequest::ReserveNow {
        token,
        expiry_date: expiry,
        reservation_id: reservation_id.clone(),
        location_id,
        evse_uid,
        authorization_reference: None,
    };
    let sent = send_command(roaming, &target, &request, Some(user_id), None, Some(&reservation_id)).await?;
    command_record(roaming, sent.id).await
}

/// CANCEL_RESERVATION of one of the driver's reservations.
pub async fn cancel_reservation(
    roaming: &Roaming,
    user_id: &str,
    reservation_id: &str,
) -> Result<CommandRecord, ChargingError> {
    let store = roaming.store.clone();
    let (user, reservation) = (user_id.to_owned(), reservation_id.to_owned());
    let reserved = blocking(move || store.reservation_command(&user, &reservation)).await?;
    let reserved = reserved.ok_or(ChargingError::NotFound("reservation"))?;
    // The reservation's location names the CPO it is for.
    let location_id = serde_json::from_str::<Value>(&reserved.request)
        .ok()
        .and_then(|request| request["location_id"].as_str().map(str::to_owned));
    let (store, partner_id) = (roaming.store.clone(), reserved.partner_id.clone());
    let location_key = match location_id {
        Some(location_id) => blocking(move || store.location_key_of_partner(&partner_id, &location_id)).await?,
        None => None,
    };
    let to = location_key.as_deref().and_then(party_of_key);
    let target = command_target(roaming, &reserved.partner_id, to).await?;
    let request = CommandRequest::CancelReservation { reservation_id: reservation_id.to_owned() };
    let sent = send_command(roaming, &target, &request, Some(user_id), None, Some(reservation_id)).await?;
    command_record(roaming, sent.id).await
}

/// A driver's reservation, as the app shows it (see [`emsp_domain::reservation`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    /// The reservation id we gave the CPO.
    pub id: String,
    /// The RESERVE_NOW command.
    pub command_id: String,
    pub partner_id: String,
    pub location_id: String,
    /// Our key of the charger, when we still have its location.
    pub location_key: Option<String>,
    pub evse_uid: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub status: ReservationStatus,
    pub failure: Option<FailureReason>,
    pub created_at: DateTime<Utc>,
}

/// The driver's reservations, newest first (at most `limit`), each with its status at `now`.
pub async fn reservations(
    roaming: &Roaming,
    user_id: &str,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Reservation>, ChargingError> {
    let store = roaming.store.clone();
    let user = user_id.to_owned();
    blocking(move || {
        let pairs = store.reservations_of_user(&user, limit)?;
        let mut reservations = Vec::with_capacity(pairs.len());
        for (reserve, cancel) in &pairs {
            match reservation_of(reserve, cancel.as_ref(), now, None) {
                Some(reservation) => reservations.push((reservation, reserve, cancel.as_ref())),
                None => tracing::warn!(command = %reserve.id, "a stored RESERVE_NOW cannot be read; left out"),
            }
        }
        // Two queries for the whole list: the chargers' keys, and the driver's sessions since the
        // oldest reservation that may have been used.
        let wanted: Vec<(String, String)> =
            reservations.iter().map(|(r, _, _)| (r.partner_id.clone(), r.location_id.clone())).collect();
        let keys = store.location_keys_of_partners(&wanted)?;
        let usable = |r: &Reservation| {
            matches!(r.status, ReservationStatus::Active | ReservationStatus::Cancelling | ReservationStatus::Expired)
        };
        let since = reservations.iter().filter(|(r, _, _)| usable(r)).map(|(r, _, _)| r.created_at).min();
        let sessions = match since {
            Some(since) => store.reported_chargings_of_user(&user, since)?,
            None => Vec::new(),
        };
        Ok(reservations
            .into_iter()
            .map(|(reservation, reserve, cancel)| {
                let location_key =
                    keys.get(&(reservation.partner_id.clone(), reservation.location_id.clone())).cloned();
                let used_at = match &location_key {
                    Some(key) if usable(&reservation) => used_at(&reservation, key, &sessions),
                    _ => None,
                };
                let reservation = match used_at {
                    Some(_) => reservation_of(reserve, cancel, now, used_at).unwrap_or(reservation),
                    None => reservation,
                };
                Reservation { location_key, ..reservation }
            })
            .collect())
    })
    .await
}

/// When the first of the driver's reported sessions at the reserved charger (and EVSE, when one
/// was reserved) was requested while the reservation held, if one was.
fn used_at(reservation: &Reservation, location_key: &str, sessions: &[ReportedCharging]) -> Option<DateTime<Utc>> {
    sessions
        .iter()
        .filter(|s| s.location_key.eq_ignore_ascii_case(location_key))
        .filter(|s| reservation.evse_uid.as_deref().is_none_or(|uid| uid.eq_ignore_ascii_case(&s.evse_uid)))
        .map(|s| s.requested_at)
        .find(|at| *at >= reservation.created_at && *at < reservation.expires_at)
}

fn facts(command: &CommandRecord) -> CommandFacts<'_> {
    CommandFacts { result: command.result.as_deref(), timed_out: command.timed_out_at.is_some() }
}

/// Reads a RESERVE_NOW command (the body we sent, in either version) into a reservation.
fn reservation_of(
    reserve: &CommandRecord,
    cancel: Option<&CommandRecord>,
    now: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
) -> Option<Reservation> {
    let body: Value = serde_json::from_str(&reserve.request).ok()?;
    let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
    let expires_at = DateTime::parse_from_rfc3339(&text("expiry_date")?).ok()?.with_timezone(&Utc);
    let (status, failure) = reservation_status(facts(reserve), cancel.map(facts), expires_at, now, used_at);
    Some(Reservation {
        id: reserve.reservation_id.clone().or_else(|| text("reservation_id"))?,
        command_id: reserve.id.clone(),
        partner_id: reserve.partner_id.clone(),
        location_id: text("location_id")?,
        location_key: None,
        evse_uid: text("evse_uid"),
        expires_at,
        status,
        failure,
        created_at: reserve.created_at.and_utc(),
    })
}

/// UNLOCK_CONNECTOR at a charger.
pub async fn unlock_connector(
    roaming: &Roaming,
    user_id: &str,
    location_key: &str,
    evse_uid: &str,
    connector_id: &str,
) -> Result<CommandRecord, ChargingError> {
    let (target, location_id, evse_uid) = charger(roaming, location_key, Some(evse_uid)).await?;
    let request = CommandRequest::UnlockConnector {
        location_id,
        evse_uid: evse_uid.unwrap_or_default(),
        connector_id: connector_id.to_owned(),
    };
    let sent = send_command(roaming, &target, &request, Some(user_id), None, None).await?;
    command_record(roaming, sent.id).await
}

/// Forwards the driver's preferences to the CPO (`PUT {sessions}/{session_id}/charging_preferences`,
/// OCPI 2.2.1 only) and keeps them; returns the CPO's `ChargingPreferencesResponse`.
pub async fn set_charging_preferences(
    roaming: &Roaming,
    user_id: &str,
    id: &str,
    preferences: ChargingPreferences,
) -> Result<String, ChargingError> {
    let record = own_charging(&roaming.store, user_id, id).await?;
    if !matches!(record.state.phase, ChargingPhase::Charging | ChargingPhase::Accepted) {
        return Err(ChargingError::Refused(TransitionError {
            action: "set preferences of",
            phase: record.state.phase,
        }));
    }
    if !["CHEAP", "FAST", "GREEN", "REGULAR"].contains(&preferences.profile_type.as_str()) {
        return Err(ChargingError::Invalid("profile must be CHEAP, FAST, GREEN or REGULAR".into()));
    }
    if preferences.energy_need.is_some_and(|kwh| !(0.0..=1000.0).contains(&kwh)) {
        return Err(ChargingError::Invalid("energy need must be between 0 and 1000 kWh".into()));
    }
    let session_key = record.state.session_key.clone().ok_or_else(|| {
        ChargingError::Invalid("the operator has not reported the session yet; try again in a moment".into())
    })?;
    let target = command_target(roaming, &record.partner_id, party_of_key(&session_key)).await?;
    if target.version.is_2_1_1() {
        return Err(ChargingError::Unsupported("this operator does not take charging preferences".into()));
    }
    let endpoint = target
        .endpoint("sessions", "SENDER")
        .ok_or_else(|| ChargingError::Unsupported("this operator does not take charging preferences".into()))?;
    let store = roaming.store.clone();
    let session = blocking(move || store.get_cpo_session(&session_key)).await?;
    let session = session.ok_or_else(|| ChargingError::Internal("linked CPO session is missing".into()))?;
    let url = format!("{}/{}/charging_preferences", endpoint.trim_end_matches('/'), session.session.id);
    let answer: Option<Value> =
        roaming.client.send(Method::PUT, &url, &target.target(), &preferences).await.map_err(|error| {
            tracing::warn!(%error, partner = %target.partner.id, "charging preferences not delivered");
            ChargingError::Unsupported("the operator could not take the preferences right now".into())
        })?;
    let response = answer.as_ref().and_then(Value::as_str).unwrap_or("NOT_POSSIBLE").to_owned();
    let json = serde_json::to_string(&preferences).map_err(|e| ChargingError::Internal(e.to_string()))?;
    let store = roaming.store.clone();
    let key = id.to_owned();
    blocking(move || store.set_charging_preferences(&key, &json)).await?;
    Ok(response)
}

/// `POST /ocpi/{version}/commands/{command}/{id}`: a command's result, from the partner it went to.
pub async fn receive_result(
    roaming: &Roaming,
    partner_id: &str,
    command: &str,
    id: &str,
    body: &Value,
) -> Result<(), OcpiError> {
    let unknown = || {
        OcpiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            emsp_ocpi::StatusCode::CLIENT_ERROR,
            format!("unknown command {command}/{id}"),
        )
    };
    let kind = CommandType::parse(command).ok_or_else(unknown)?;
    let result: CommandResult =
        serde_json::from_value(body.clone()).map_err(|e| OcpiError::invalid(format!("not a CommandResult: {e}")))?;
    let result_type =
        result.result_type().ok_or_else(|| OcpiError::invalid(format!("unknown result {:?}", result.result)))?;
    let store = roaming.store.clone();
    let key = id.to_owned();
    let record = crate::receivers::blocking(move || store.get_command(&key)).await?;
    let record = record.filter(|r| r.partner_id == partner_id && r.command == kind.as_str()).ok_or_else(unknown)?;
    let store = roaming.store.clone();
    let key = id.to_owned();
    let outcome = crate::receivers::blocking(move || store.set_command_result(&key, result_type.as_str())).await?;
    let changed = outcome.is_some_and(|(_, changed)| changed);
    tracing::info!(command = kind.as_str(), %id, result = result_type.as_str(), duplicate = !changed, "command result");
    if let (true, Some(charging_id)) = (changed, record.charging_id) {
        let event = match kind {
            CommandType::StartSession => Some(ChargingEvent::StartResult(result_type)),
            CommandType::StopSession => Some(ChargingEvent::StopResult(result_type)),
            _ => None,
        };
        if let Some(event) = event {
            let store = roaming.store.clone();
            crate::receivers::blocking(move || store.apply_charging_event(&charging_id, &event)).await?;
        }
    }
    Ok(())
}

/// One pass over commands whose time is up: each is marked once and its session told.
pub async fn time_out_commands(roaming: &Roaming) -> Result<usize, ChargingError> {
    time_out_commands_at(roaming, Utc::now()).await
}

/// [`time_out_commands`] as of `now` (tests move the clock).
pub async fn time_out_commands_at(roaming: &Roaming, now: DateTime<Utc>) -> Result<usize, ChargingError> {
    let store = roaming.store.clone();
    let expired = blocking(move || store.time_out_commands(now)).await?;
    let count = expired.len();
    for command in expired {
        tracing::info!(command = %command.command, id = %command.id, partner = %command.partner_id, "command timed out");
        let event = match command.command.as_str() {
            "START_SESSION" => ChargingEvent::StartTimedOut,
            "STOP_SESSION" => ChargingEvent::StopTimedOut,
            _ => continue,
        };
        if let Some(charging_id) = command.charging_id {
            let store = roaming.store.clone();
            blocking(move || store.apply_charging_event(&charging_id, &event)).await?;
        }
    }
    Ok(count)
}

/// Checks command time limits every second until `shutdown` turns true.
pub async fn watch_command_timeouts(roaming: &Roaming, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TIMEOUT_SWEEP) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if let Err(error) = time_out_commands(roaming).await {
            tracing::warn!(%error, "checking command time limits failed; retried in a second");
        }
    }
}

/// The result of a command as a driver sees it.
pub fn command_status(record: &CommandRecord) -> &str {
    match (&record.result, &record.response, record.timed_out_at) {
        (Some(result), _, _) => result,
        (None, _, Some(_)) => CommandResultType::Timeout.as_str(),
        (None, Some(_), None) | (None, None, None) => "PENDING",
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;

    use super::*;

    fn command(response: Option<&str>, result: Option<&str>, timed_out: bool) -> CommandRecord {
        let at = NaiveDateTime::default();
        CommandRecord {
            id: "c".into(),
            partner_id: "p".into(),
            user_id: None,
            charging_id: None,
            command: "UNLOCK_CONNECTOR".into(),
            reservation_id: None,
            request: "{}".into(),
            response: response.map(str::to_owned),
            result: result.map(str::to_owned),
            timed_out_at: timed_out.then_some(at),
            deadline: at,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn a_command_is_pending_until_its_result_or_our_timeout() {
        assert_eq!(command_status(&command(None, None, false)), "PENDING");
        assert_eq!(command_status(&command(Some("ACCEPTED"), None, false)), "PENDING");
        assert_eq!(command_status(&command(Some("ACCEPTED"), None, true)), "TIMEOUT");
        assert_eq!(
            command_status(&command(Some("ACCEPTED"), Some("ACCEPTED"), true)),
            "ACCEPTED",
            "a late result wins"
        );
        assert_eq!(command_status(&command(Some("REJECTED"), Some("REJECTED"), false)), "REJECTED");
    }

    #[test]
    fn the_synchronous_answer_decides_the_start_event() {
        let accepted = Ok(CommandResponse { result: "ACCEPTED".into(), timeout: Some(30) });
        assert_eq!(start_event(&accepted), ChargingEvent::StartResponse(CommandResponseType::Accepted));
        let refused = Err(RoamingError::Ocpi { url: String::new(), code: 2003, message: "unknown location".into() });
        assert_eq!(start_event(&refused), ChargingEvent::StartResponse(CommandResponseType::Rejected));
        let down = Err(RoamingError::Unreachable { url: String::new(), reason: "connection refused".into() });
        assert_eq!(start_event(&down), ChargingEvent::CpoUnreachable);
        let broken = Err(RoamingError::Http { url: String::new(), status: 502, body: String::new() });
        assert_eq!(start_event(&broken), ChargingEvent::CpoUnreachable);
    }
}
