//! Charging at rest: the driver's sessions with their state machine, the commands we send to CPOs,
//! and the sessions and CDRs CPOs send us.
//!
//! Every change of a driver's session goes through [`Store::apply_charging_event`]: it reads the
//! stored state, applies the event with the domain's state machine and writes the result in one
//! write transaction, so two messages about one session (a CommandResult and a Session PUT arriving
//! together) never overwrite each other. A committed change is appended to the change feed
//! (`charging.updated`, so every replica's subscribers hear of it) and announced on
//! [`Store::charging_updates`] in this process.
//!
//! CDRs are immutable in OCPI: a second POST of a known CDR is a duplicate and changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use emsp_domain::{Cdr, CdrToken, ChargingEvent, ChargingState, Price, Session, TransitionError};
use rust_decimal::Decimal;

use crate::change_feed::{self, ChangeKind};
use crate::database::{DbConnection, Store};
use crate::documents::{from_document, to_document};
use crate::error::{StoreError, StoreResult};
use crate::locations::WriteOutcome;
use crate::schema::{cdrs, charge_commands, charging_sessions, cpo_sessions, locations, tokens};
use crate::tokens::{contract_key, token_key};

/// Announced after a driver's session changed: subscriptions reload it by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargingUpdate {
    pub id: String,
    pub user_id: String,
}

/// A driver's session to create (before its START_SESSION is sent).
#[derive(Debug, Clone)]
pub struct NewCharging<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub partner_id: &'a str,
    pub location_key: &'a str,
    pub evse_uid: &'a str,
    pub connector_id: Option<&'a str>,
    pub token_uid: &'a str,
    pub contract_id: &'a str,
    /// Unique: the CPO repeats it in the session and the CDR.
    pub authorization_reference: &'a str,
}

/// A session of a driver that the CPO reported, as reservations need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedCharging {
    pub location_key: String,
    pub evse_uid: String,
    pub requested_at: DateTime<Utc>,
}

/// A driver's session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargingRecord {
    pub id: String,
    pub user_id: String,
    pub partner_id: String,
    pub location_key: String,
    pub evse_uid: String,
    pub connector_id: Option<String>,
    pub token_uid: String,
    pub contract_id: String,
    pub authorization_reference: String,
    pub state: ChargingState,
    /// The driver's last charging preferences (JSON), if any were set.
    pub preferences: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What [`Store::apply_charging_event`] did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub record: ChargingRecord,
    /// Whether the state changed (false for late, duplicate or superseded messages).
    pub changed: bool,
    /// The event does not apply to the session as it stands (a driver's request only).
    pub refused: Option<TransitionError>,
}

#[derive(Queryable)]
struct ChargingRow {
    id: String,
    user_id: String,
    partner_id: String,
    location_key: String,
    evse_uid: String,
    connector_id: Option<String>,
    token_uid: String,
    contract_id: String,
    authorization_reference: String,
    _phase: String,
    _failure: Option<String>,
    _session_key: Option<String>,
    _cdr_key: Option<String>,
    state: String,
    preferences: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl ChargingRow {
    fn into_record(self) -> StoreResult<ChargingRecord> {
        let state = from_document(&self.id, &self.state)?;
        Ok(ChargingRecord {
            id: self.id,
            user_id: self.user_id,
            partner_id: self.partner_id,
            location_key: self.location_key,
            evse_uid: self.evse_uid,
            connector_id: self.connector_id,
            token_uid: self.token_uid,
            contract_id: self.contract_id,
            authorization_reference: self.authorization_reference,
            state,
            preferences: self.preferences,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
        })
    }
}

/// A command to record before it is sent.
#[derive(Debug, Clone)]
pub struct NewCommand<'a> {
    /// The `{uid}` of its `response_url`.
    pub id: &'a str,
    pub partner_id: &'a str,
    pub user_id: Option<&'a str>,
    pub charging_id: Option<&'a str>,
    /// `START_SESSION`, `STOP_SESSION`, ...
    pub command: &'a str,
    pub reservation_id: Option<&'a str>,
    /// The JSON body sent.
    pub request: &'a str,
    /// When we stop waiting for its result.
    pub deadline: DateTime<Utc>,
}

/// A command as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct CommandRecord {
    pub id: String,
    pub partner_id: String,
    pub user_id: Option<String>,
    pub charging_id: Option<String>,
    pub command: String,
    pub reservation_id: Option<String>,
    pub request: String,
    /// The CPO's synchronous `CommandResponseType`.
    pub response: Option<String>,
    /// The asynchronous result (`CommandResultType`).
    pub result: Option<String>,
    /// Set when our own time limit passed without a result.
    pub timed_out_at: Option<NaiveDateTime>,
    pub deadline: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A CPO's session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub key: String,
    pub partner_id: String,
    pub charging_id: Option<String>,
    /// The OCPI version it was received in.
    pub version: String,
    pub session: Session,
}

/// How our price of a CDR compares with the CPO's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceCheck {
    Match,
    /// Ops should look: our price differs from the CPO's.
    Mismatch,
    /// We could not price it (no tariff, unsupported tariff).
    Unchecked,
}

impl PriceCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceCheck::Match => "MATCH",
            PriceCheck::Mismatch => "MISMATCH",
            PriceCheck::Unchecked => "UNCHECKED",
        }
    }

    pub fn parse(value: &str) -> Self {
        match value {
            "MATCH" => PriceCheck::Match,
            "MISMATCH" => PriceCheck::Mismatch,
            _ => PriceCheck::Unchecked,
        }
    }
}

/// A CDR to store.
#[derive(Debug, Clone)]
pub struct NewCdr<'a> {
    pub cdr: &'a Cdr,
    pub partner_id: &'a str,
    pub version: &'a str,
    pub session_key: Option<&'a str>,
    pub charging_id: Option<&'a str>,
    /// The body exactly as received (signed meter data included).
    pub raw: &'a str,
    pub our_cost: Option<&'a Price>,
    pub price_check: PriceCheck,
    pub price_note: Option<&'a str>,
}

/// A CDR as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CdrRecord {
    pub key: String,
    pub partner_id: String,
    pub session_key: Option<String>,
    pub charging_id: Option<String>,
    pub version: String,
    pub cdr: Cdr,
    pub raw: String,
    pub our_cost: Option<Price>,
    pub price_check: PriceCheck,
    pub price_note: Option<String>,
    pub received_at: DateTime<Utc>,
}

#[derive(Queryable)]
pub(crate) struct CdrRow {
    pub(crate) key: String,
    _country_code: String,
    _party_id: String,
    _cdr_id: String,
    partner_id: String,
    session_key: Option<String>,
    charging_id: Option<String>,
    _token_uid: String,
    _currency: String,
    _total_cost_excl: String,
    _total_cost_incl: Option<String>,
    our_cost_excl: Option<String>,
    our_cost_incl: Option<String>,
    price_check: String,
    price_note: Option<String>,
    document: String,
    raw: String,
    version: String,
    received_at: NaiveDateTime,
    _token_key: Option<String>,
    _ended_at: NaiveDateTime,
    _credit: bool,
    _billing_at: NaiveDateTime,
    _fleet_id: Option<String>,
}

impl CdrRow {
    pub(crate) fn into_record(self) -> StoreResult<CdrRecord> {
        let cdr: Cdr = from_document(&self.key, &self.document)?;
        let decimal = |text: &str| {
            text.parse::<Decimal>().map_err(|e| StoreError::Corrupt { key: self.key.clone(), reason: e.to_string() })
        };
        let our_cost = match &self.our_cost_excl {
            Some(excl) => Some(Price {
                excl_vat: decimal(excl)?,
                incl_vat: self.our_cost_incl.as_deref().map(decimal).transpose()?,
            }),
            None => None,
        };
        Ok(CdrRecord {
            key: self.key,
            partner_id: self.partner_id,
            session_key: self.session_key,
            charging_id: self.charging_id,
            version: self.version,
            cdr,
            raw: self.raw,
            our_cost,
            price_check: PriceCheck::parse(&self.price_check),
            price_note: self.price_note,
            received_at: self.received_at.and_utc(),
        })
    }
}

/// A credit CDR: flagged so, or with a negative cost (as `emsp_invoicing::UsageRecord::is_credit`).
pub(crate) fn is_credit(cdr: &Cdr) -> bool {
    cdr.credit == Some(true) || cdr.total_cost.excl_vat.is_sign_negative() && !cdr.total_cost.excl_vat.is_zero()
}

/// The key of our token a CDR was charged on, if it is one of ours: the token of the CDR's
/// `cdr_token` party and uid; else the token with that uid of any of our parties; else (2.1.1 CDRs
/// carry the contract id as the uid) the token with that contract id. Three indexed look-ups.
/// With the token's fleet, which the CDR keeps (see migration 000010).
fn cdr_token_key(conn: &mut DbConnection, token: &CdrToken) -> StoreResult<Option<(String, Option<String>)>> {
    let exact = token_key(&token.party, token.uid.as_str());
    let found = tokens::table.find(&exact).select((tokens::key, tokens::fleet_id)).first(conn).optional()?;
    if found.is_some() {
        return Ok(found);
    }
    let by_uid = tokens::table
        .filter(tokens::uid_key.eq(token.uid.as_str().to_ascii_uppercase()))
        .order(tokens::key.asc())
        .select((tokens::key, tokens::fleet_id))
        .first(conn)
        .optional()?;
    if by_uid.is_some() {
        return Ok(by_uid);
    }
    let contract = contract_key(&token.contract_id);
    if contract.is_empty() {
        return Ok(None);
    }
    Ok(tokens::table
        .filter(tokens::contract_key.eq(contract))
        .order(tokens::key.asc())
        .select((tokens::key, tokens::fleet_id))
        .first(conn)
        .optional()?)
}

/// A new token, as [`adopt_orphan_cdrs`] matches CDRs to it.
pub(crate) struct Adoption {
    pub key: String,
    pub uid_key: String,
    pub contract_key: String,
    pub fleet_id: Option<String>,
}

/// A token given a fleet: its CDRs that have none (they arrived while it had none) join it.
/// Call in the transaction that changes the token.
pub(crate) fn give_fleet_to_unattached_cdrs(
    conn: &mut DbConnection,
    token_key: &str,
    fleet_id: &str,
) -> StoreResult<usize> {
    Ok(diesel::update(cdrs::table.filter(cdrs::token_key.eq(token_key)).filter(cdrs::fleet_id.is_null()))
        .set(cdrs::fleet_id.eq(fleet_id))
        .execute(conn)?)
}

diesel::define_sql_function! {
    /// SQL `UPPER`, on both backends.
    fn upper(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

diesel::define_sql_function! {
    /// SQL `REPLACE`, on both backends.
    fn replace(
        text: diesel::sql_types::Text,
        from: diesel::sql_types::Text,
        to: diesel::sql_types::Text,
    ) -> diesel::sql_types::Text;
}

/// CDRs that arrived before their token existed (no `token_key`: a card in use at CPOs before
/// it was imported here) are given the new tokens, matched as [`cdr_token_key`] would have: by uid
/// (any case), else by contract id (2.1.1 CDRs name it as the uid). Call in the transaction that
/// inserts the tokens. Returns how many were adopted.
pub(crate) fn adopt_orphan_cdrs(conn: &mut DbConnection, tokens: &[Adoption]) -> StoreResult<usize> {
    let mut adopted = 0;
    for chunk in tokens.chunks(400) {
        let mut by_uid: HashMap<&str, &Adoption> = HashMap::new();
        let mut by_contract: HashMap<&str, &Adoption> = HashMap::new();
        for token in chunk {
            by_uid.entry(token.uid_key.as_str()).or_insert(token);
            if !token.contract_key.is_empty() {
                by_contract.entry(token.contract_key.as_str()).or_insert(token);
            }
        }
        let uids: Vec<&str> = by_uid.keys().copied().collect();
        let contracts: Vec<&str> = by_contract.keys().copied().collect();
        // `contract_key` in SQL (without its whitespace rule: contract ids carry none).
        let uid_as_contract = upper(replace(replace(cdrs::token_uid, "-", ""), "*", ""));
        let orphans: Vec<(String, String)> = cdrs::table
            .filter(cdrs::token_key.is_null())
            .filter(upper(cdrs::token_uid).eq_any(&uids).or(uid_as_contract.eq_any(&contracts)))
            .select((cdrs::key, cdrs::token_uid))
            .load(conn)?;
        for (cdr_key, token_uid) in orphans {
            let uid = token_uid.to_ascii_uppercase();
            let Some(token) = by_uid.get(uid.as_str()).or_else(|| by_contract.get(contract_key(&uid).as_str())) else {
                continue;
            };
            adopted += diesel::update(cdrs::table.find(&cdr_key).filter(cdrs::token_key.is_null()))
                .set((cdrs::token_key.eq(&token.key), cdrs::fleet_id.eq(&token.fleet_id)))
                .execute(conn)?;
        }
    }
    Ok(adopted)
}

/// `CC*PID*ID` in upper case, the key of sessions and CDRs.
pub fn object_key(party: &emsp_domain::PartyId, id: &str) -> String {
    format!("{}*{}*{}", party.country_code, party.party_id, id).to_ascii_uppercase()
}

fn load_charging(conn: &mut DbConnection, id: &str) -> StoreResult<Option<ChargingRecord>> {
    let row: Option<ChargingRow> =
        charging_sessions::table.find(id).select(charging_sessions::all_columns).first(conn).optional()?;
    row.map(ChargingRow::into_record).transpose()
}

fn save_state(conn: &mut DbConnection, id: &str, state: &ChargingState, now: NaiveDateTime) -> StoreResult<()> {
    diesel::update(charging_sessions::table.find(id))
        .set((
            charging_sessions::phase.eq(state.phase.as_str()),
            charging_sessions::failure.eq(state.failure.map(|f| f.as_str())),
            charging_sessions::session_key.eq(state.session_key.as_deref()),
            charging_sessions::cdr_key.eq(state.cdr_key.as_deref()),
            charging_sessions::state.eq(to_document(state)?),
            charging_sessions::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

impl Store {
    /// Announcements of changed driver sessions (this process only).
    pub fn charging_updates(&self) -> tokio::sync::broadcast::Receiver<ChargingUpdate> {
        self.charging_updates.subscribe()
    }

    fn announce_charging(&self, record: &ChargingRecord) {
        // No subscriber is not an error.
        let _ = self.charging_updates.send(ChargingUpdate { id: record.id.clone(), user_id: record.user_id.clone() });
    }

    /// The partner a location came from (`None` for imported locations and unknown keys).
    pub fn location_partner(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_ascii_uppercase();
        let mut conn = self.conn()?;
        let partner: Option<Option<String>> =
            locations::table.find(&key).select(locations::partner_id).first(&mut *conn).optional()?;
        Ok(partner.flatten())
    }

    /// Records a driver's session in phase REQUESTED.
    pub fn create_charging(&self, new: &NewCharging<'_>) -> StoreResult<ChargingRecord> {
        let state = ChargingState::new();
        let document = to_document(&state)?;
        let now = Utc::now().naive_utc();
        let record = self.write(|conn| {
            diesel::insert_into(charging_sessions::table)
                .values((
                    charging_sessions::id.eq(new.id),
                    charging_sessions::user_id.eq(new.user_id),
                    charging_sessions::partner_id.eq(new.partner_id),
                    charging_sessions::location_key.eq(new.location_key),
                    charging_sessions::evse_uid.eq(new.evse_uid),
                    charging_sessions::connector_id.eq(new.connector_id),
                    charging_sessions::token_uid.eq(new.token_uid),
                    charging_sessions::contract_id.eq(new.contract_id),
                    charging_sessions::authorization_reference.eq(new.authorization_reference),
                    charging_sessions::phase.eq(state.phase.as_str()),
                    charging_sessions::state.eq(&document),
                    charging_sessions::created_at.eq(now),
                    charging_sessions::updated_at.eq(now),
                ))
                .execute(conn)?;
            change_feed::append(
                conn,
                ChangeKind::ChargingUpdated,
                new.id,
                serde_json::json!({"user_id": new.user_id}),
            )?;
            load_charging(conn, new.id)?.ok_or_else(|| StoreError::NotFound(new.id.to_owned()))
        })?;
        self.announce_charging(&record);
        Ok(record)
    }

    pub fn get_charging(&self, id: &str) -> StoreResult<Option<ChargingRecord>> {
        let mut conn = self.conn()?;
        load_charging(&mut conn, id)
    }

    /// Applies `event` to the driver's session `id` in one transaction; `None` when there is no
    /// such session. Announces the change when there was one.
    pub fn apply_charging_event(&self, id: &str, event: &ChargingEvent) -> StoreResult<Option<Applied>> {
        let applied = self.write(|conn| {
            let Some(mut record) = load_charging(conn, id)? else { return Ok(None) };
            let (changed, refused) = match record.state.apply(event) {
                Ok(changed) => (changed, None),
                Err(error) => (false, Some(error)),
            };
            if changed {
                let now = Utc::now();
                save_state(conn, id, &record.state, now.naive_utc())?;
                change_feed::append(
                    conn,
                    ChangeKind::ChargingUpdated,
                    id,
                    serde_json::json!({"user_id": record.user_id}),
                )?;
                record.updated_at = now;
            }
            Ok(Some(Applied { record, changed, refused }))
        })?;
        if let Some(applied) = &applied
            && applied.changed
        {
            self.announce_charging(&applied.record);
        }
        Ok(applied)
    }

    /// Stores the driver's charging preferences (JSON) of a session.
    pub fn set_charging_preferences(&self, id: &str, preferences: &str) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let updated = diesel::update(charging_sessions::table.find(id))
            .set(charging_sessions::preferences.eq(preferences))
            .execute(&mut *conn)?;
        Ok(updated == 1)
    }

    /// A driver's sessions, newest first, after the `(created_at, id)` of the last one seen.
    pub fn charging_of_user(
        &self,
        user_id: &str,
        after: Option<(DateTime<Utc>, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<ChargingRecord>> {
        let mut conn = self.conn()?;
        let mut query = charging_sessions::table
            .filter(charging_sessions::user_id.eq(user_id))
            .select(charging_sessions::all_columns)
            .order((charging_sessions::created_at.desc(), charging_sessions::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some((at, id)) = after {
            let at = at.naive_utc();
            query = query.filter(
                charging_sessions::created_at
                    .lt(at)
                    .or(charging_sessions::created_at.eq(at).and(charging_sessions::id.lt(id.to_owned()))),
            );
        }
        let rows: Vec<ChargingRow> = query.load(&mut *conn)?;
        rows.into_iter().map(ChargingRow::into_record).collect()
    }

    /// The driver's session a CPO session or CDR belongs to: by our `authorization_reference`, else
    /// by the CPO session already linked, else by the token (uid or contract id) among this
    /// partner's sessions of the last day that have no CPO session yet, newest first.
    pub fn match_charging(
        &self,
        partner_id: &str,
        authorization_reference: Option<&str>,
        session_key: Option<&str>,
        token: (&str, &str),
    ) -> StoreResult<Option<ChargingRecord>> {
        let mut conn = self.conn()?;
        if let Some(reference) = authorization_reference {
            let row: Option<ChargingRow> = charging_sessions::table
                .filter(charging_sessions::authorization_reference.eq(reference))
                .select(charging_sessions::all_columns)
                .first(&mut *conn)
                .optional()?;
            if let Some(row) = row {
                return row.into_record().map(Some);
            }
        }
        if let Some(key) = session_key {
            let row: Option<ChargingRow> = charging_sessions::table
                .filter(charging_sessions::session_key.eq(key))
                .select(charging_sessions::all_columns)
                .first(&mut *conn)
                .optional()?;
            if let Some(row) = row {
                return row.into_record().map(Some);
            }
        }
        let (uid, contract_id) = token;
        let since = (Utc::now() - Duration::days(1)).naive_utc();
        let row: Option<ChargingRow> = charging_sessions::table
            .filter(charging_sessions::partner_id.eq(partner_id))
            .filter(charging_sessions::session_key.is_null())
            .filter(charging_sessions::created_at.gt(since))
            .filter(
                charging_sessions::token_uid
                    .eq(uid)
                    .or(charging_sessions::contract_id.eq(contract_id))
                    .or(charging_sessions::token_uid.eq(contract_id)),
            )
            .select(charging_sessions::all_columns)
            .order(charging_sessions::created_at.desc())
            .first(&mut *conn)
            .optional()?;
        row.map(ChargingRow::into_record).transpose()
    }

    /// For a CDR that names no session we know (2.1.1 CDRs name none): the newest session of this
    /// partner at this charger with this token (uid or contract id) that has no CDR yet.
    pub fn match_charging_without_cdr(
        &self,
        partner_id: &str,
        location_key: &str,
        token: (&str, &str),
    ) -> StoreResult<Option<ChargingRecord>> {
        let (uid, contract_id) = token;
        let mut conn = self.conn()?;
        let row: Option<ChargingRow> = charging_sessions::table
            .filter(charging_sessions::partner_id.eq(partner_id))
            .filter(charging_sessions::location_key.eq(location_key.to_ascii_uppercase()))
            .filter(charging_sessions::cdr_key.is_null())
            .filter(
                charging_sessions::token_uid
                    .eq(uid)
                    .or(charging_sessions::contract_id.eq(contract_id))
                    .or(charging_sessions::token_uid.eq(contract_id)),
            )
            .select(charging_sessions::all_columns)
            .order(charging_sessions::created_at.desc())
            .first(&mut *conn)
            .optional()?;
        row.map(ChargingRow::into_record).transpose()
    }

    pub fn create_command(&self, new: &NewCommand<'_>) -> StoreResult<()> {
        let now = Utc::now().naive_utc();
        let mut conn = self.conn()?;
        diesel::insert_into(charge_commands::table)
            .values((
                charge_commands::id.eq(new.id),
                charge_commands::partner_id.eq(new.partner_id),
                charge_commands::user_id.eq(new.user_id),
                charge_commands::charging_id.eq(new.charging_id),
                charge_commands::command.eq(new.command),
                charge_commands::reservation_id.eq(new.reservation_id),
                charge_commands::request.eq(new.request),
                charge_commands::deadline.eq(new.deadline.naive_utc()),
                charge_commands::created_at.eq(now),
                charge_commands::updated_at.eq(now),
            ))
            .execute(&mut *conn)?;
        Ok(())
    }

    /// Whether any command of driver `user_id` was recorded for charging session `charging_id`
    /// (a START_SESSION is recorded before it is sent: without one, nothing was sent). By user
    /// first, which is indexed.
    pub fn charging_has_command(&self, user_id: &str, charging_id: &str) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let found: Option<String> = charge_commands::table
            .filter(charge_commands::user_id.eq(user_id))
            .filter(charge_commands::charging_id.eq(charging_id))
            .select(charge_commands::id)
            .first(&mut *conn)
            .optional()?;
        Ok(found.is_some())
    }

    pub fn get_command(&self, id: &str) -> StoreResult<Option<CommandRecord>> {
        let mut conn = self.conn()?;
        Ok(charge_commands::table.find(id).select(charge_commands::all_columns).first(&mut *conn).optional()?)
    }

    /// Records the CPO's synchronous answer and the deadline it implies.
    pub fn set_command_response(&self, id: &str, response: &str, deadline: DateTime<Utc>) -> StoreResult<()> {
        let mut conn = self.conn()?;
        diesel::update(charge_commands::table.find(id))
            .set((
                charge_commands::response.eq(response),
                charge_commands::deadline.eq(deadline.naive_utc()),
                charge_commands::updated_at.eq(Utc::now().naive_utc()),
            ))
            .execute(&mut *conn)?;
        Ok(())
    }

    /// Records the asynchronous result; `Ok(None)` for an unknown command, `Ok(Some((record,
    /// false)))` for a duplicate of the stored result.
    pub fn set_command_result(&self, id: &str, result: &str) -> StoreResult<Option<(CommandRecord, bool)>> {
        self.write(|conn| {
            let Some(mut record): Option<CommandRecord> =
                charge_commands::table.find(id).select(charge_commands::all_columns).first(conn).optional()?
            else {
                return Ok(None);
            };
            if record.result.as_deref() == Some(result) {
                return Ok(Some((record, false)));
            }
            let now = Utc::now().naive_utc();
            diesel::update(charge_commands::table.find(id))
                .set((charge_commands::result.eq(result), charge_commands::updated_at.eq(now)))
                .execute(conn)?;
            record.result = Some(result.to_owned());
            Ok(Some((record, true)))
        })
    }

    /// Marks commands whose deadline passed without a result as timed out, each once, and returns
    /// them. Safe with several replicas: the conditional update decides who marks a command.
    pub fn time_out_commands(&self, now: DateTime<Utc>) -> StoreResult<Vec<CommandRecord>> {
        let now = now.naive_utc();
        let mut conn = self.conn()?;
        let due: Vec<CommandRecord> = charge_commands::table
            .filter(charge_commands::result.is_null())
            .filter(charge_commands::timed_out_at.is_null())
            .filter(charge_commands::deadline.lt(now))
            .select(charge_commands::all_columns)
            .limit(500)
            .load(&mut *conn)?;
        let mut marked = Vec::new();
        for mut command in due {
            let updated = diesel::update(
                charge_commands::table
                    .find(&command.id)
                    .filter(charge_commands::result.is_null())
                    .filter(charge_commands::timed_out_at.is_null()),
            )
            .set((charge_commands::timed_out_at.eq(now), charge_commands::updated_at.eq(now)))
            .execute(&mut *conn)?;
            if updated == 1 {
                command.timed_out_at = Some(now);
                marked.push(command);
            }
        }
        Ok(marked)
    }

    /// The latest RESERVE_NOW of a user by its reservation id.
    pub fn reservation_command(&self, user_id: &str, reservation_id: &str) -> StoreResult<Option<CommandRecord>> {
        let mut conn = self.conn()?;
        Ok(charge_commands::table
            .filter(charge_commands::user_id.eq(user_id))
            .filter(charge_commands::reservation_id.eq(reservation_id))
            .filter(charge_commands::command.eq("RESERVE_NOW"))
            .select(charge_commands::all_columns)
            .order(charge_commands::created_at.desc())
            .first(&mut *conn)
            .optional()?)
    }

    /// A driver's reservations, newest first: each RESERVE_NOW command with the newest
    /// CANCEL_RESERVATION the driver sent for the same reservation, if any. Two queries.
    pub fn reservations_of_user(
        &self,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<(CommandRecord, Option<CommandRecord>)>> {
        let mut conn = self.conn()?;
        let reservations: Vec<CommandRecord> = charge_commands::table
            .filter(charge_commands::user_id.eq(user_id))
            .filter(charge_commands::command.eq("RESERVE_NOW"))
            .select(charge_commands::all_columns)
            .order((charge_commands::created_at.desc(), charge_commands::id.desc()))
            .limit(limit)
            .load(&mut *conn)?;
        let ids: Vec<&str> = reservations.iter().filter_map(|r| r.reservation_id.as_deref()).collect();
        let cancels: Vec<CommandRecord> = if ids.is_empty() {
            Vec::new()
        } else {
            charge_commands::table
                .filter(charge_commands::user_id.eq(user_id))
                .filter(charge_commands::command.eq("CANCEL_RESERVATION"))
                .filter(charge_commands::reservation_id.eq_any(&ids))
                .select(charge_commands::all_columns)
                .order(charge_commands::created_at.asc())
                .load(&mut *conn)?
        };
        // The newest cancel per (partner, reservation id) wins: later rows overwrite earlier ones.
        let mut newest: std::collections::HashMap<(&str, &str), &CommandRecord> = std::collections::HashMap::new();
        for cancel in &cancels {
            if let Some(id) = cancel.reservation_id.as_deref() {
                newest.insert((cancel.partner_id.as_str(), id), cancel);
            }
        }
        Ok(reservations
            .iter()
            .map(|reserve| {
                let cancel = reserve
                    .reservation_id
                    .as_deref()
                    .and_then(|id| newest.get(&(reserve.partner_id.as_str(), id)))
                    .map(|c| (*c).clone());
                (reserve.clone(), cancel)
            })
            .collect())
    }

    /// The driver's sessions requested since `since` that the CPO reported (they started at the
    /// charger), oldest first: what uses up the driver's reservations. One query.
    pub fn reported_chargings_of_user(
        &self,
        user_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<ReportedCharging>> {
        let mut conn = self.conn()?;
        let rows: Vec<(String, String, NaiveDateTime)> = charging_sessions::table
            .filter(charging_sessions::user_id.eq(user_id))
            .filter(charging_sessions::session_key.is_not_null())
            .filter(charging_sessions::created_at.ge(since.naive_utc()))
            .select((charging_sessions::location_key, charging_sessions::evse_uid, charging_sessions::created_at))
            .order(charging_sessions::created_at.asc())
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .map(|(location_key, evse_uid, created_at)| ReportedCharging {
                location_key,
                evse_uid,
                requested_at: created_at.and_utc(),
            })
            .collect())
    }

    /// [`Store::location_key_of_partner`] for several `(partner_id, location_id)` pairs in one
    /// query; pairs without a location are left out.
    pub fn location_keys_of_partners(
        &self,
        pairs: &[(String, String)],
    ) -> StoreResult<HashMap<(String, String), String>> {
        let mut found = HashMap::new();
        if pairs.is_empty() {
            return Ok(found);
        }
        let mut partners: Vec<&str> = pairs.iter().map(|(partner, _)| partner.as_str()).collect();
        partners.sort_unstable();
        partners.dedup();
        let mut conn = self.conn()?;
        for chunk in pairs.chunks(500) {
            let ids: Vec<&str> = chunk.iter().map(|(_, id)| id.as_str()).collect();
            let rows: Vec<(Option<String>, String, String)> = locations::table
                .filter(locations::partner_id.eq_any(&partners))
                .filter(locations::location_id.eq_any(&ids))
                .select((locations::partner_id, locations::location_id, locations::key))
                .order(locations::key.asc())
                .load(&mut *conn)?;
            for (partner, id, key) in rows {
                if let Some(partner) = partner {
                    found.entry((partner, id)).or_insert(key);
                }
            }
        }
        found.retain(|pair, _| pairs.contains(pair));
        Ok(found)
    }

    /// The key of the location `location_id` that `partner_id` sent us (any case), if we have it.
    pub fn location_key_of_partner(&self, partner_id: &str, location_id: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn()?;
        Ok(locations::table
            .filter(locations::partner_id.eq(partner_id))
            .filter(locations::location_id.eq(location_id))
            .select(locations::key)
            .order(locations::key.asc())
            .first(&mut *conn)
            .optional()?)
    }

    /// Creates or replaces a CPO's session. A session older than the stored one (`last_updated`)
    /// is not written (`Unchanged`), so a late PUT never rolls the session back. A link to a
    /// driver's session, once made, is kept.
    pub fn upsert_cpo_session(
        &self,
        session: &Session,
        partner_id: &str,
        version: &str,
        charging_id: Option<&str>,
    ) -> StoreResult<WriteOutcome> {
        let key = object_key(&session.party, session.id.as_str());
        let document = to_document(session)?;
        let now = Utc::now().naive_utc();
        self.write(|conn| {
            let stored: Option<(NaiveDateTime, String, Option<String>)> = cpo_sessions::table
                .find(&key)
                .select((cpo_sessions::last_updated, cpo_sessions::document, cpo_sessions::charging_id))
                .first(conn)
                .optional()?;
            let outcome = match &stored {
                Some((at, doc, _)) if *doc == document || at.and_utc() > session.last_updated => {
                    return Ok(WriteOutcome::Unchanged);
                }
                Some(_) => WriteOutcome::Updated,
                None => WriteOutcome::Created,
            };
            let charging_id = stored.and_then(|(_, _, linked)| linked).or(charging_id.map(str::to_owned));
            diesel::delete(cpo_sessions::table.find(&key)).execute(conn)?;
            diesel::insert_into(cpo_sessions::table)
                .values((
                    cpo_sessions::key.eq(&key),
                    cpo_sessions::country_code.eq(session.party.country_code.as_str()),
                    cpo_sessions::party_id.eq(session.party.party_id.as_str()),
                    cpo_sessions::session_id.eq(session.id.as_str()),
                    cpo_sessions::partner_id.eq(partner_id),
                    cpo_sessions::charging_id.eq(charging_id),
                    cpo_sessions::authorization_reference.eq(session.authorization_reference.as_deref()),
                    cpo_sessions::token_uid.eq(session.cdr_token.uid.as_str()),
                    cpo_sessions::status.eq(session.status.as_str()),
                    cpo_sessions::last_updated.eq(session.last_updated.naive_utc()),
                    cpo_sessions::document.eq(&document),
                    cpo_sessions::version.eq(version),
                    cpo_sessions::stored_at.eq(now),
                ))
                .execute(conn)?;
            Ok(outcome)
        })
    }

    pub fn get_cpo_session(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        let key = key.to_ascii_uppercase();
        let mut conn = self.conn()?;
        let row: Option<(String, Option<String>, String, String)> = cpo_sessions::table
            .find(&key)
            .select((
                cpo_sessions::partner_id,
                cpo_sessions::charging_id,
                cpo_sessions::version,
                cpo_sessions::document,
            ))
            .first(&mut *conn)
            .optional()?;
        let Some((partner_id, charging_id, version, document)) = row else { return Ok(None) };
        let session = from_document(&key, &document)?;
        Ok(Some(SessionRecord { key, partner_id, charging_id, version, session }))
    }

    /// Stores a CDR; `false` when a CDR with its key is already stored (a duplicate POST).
    /// Records the token of ours it was charged on (see [`cdr_token_key`]), so fleet invoicing
    /// finds it by `tokens.fleet_id`, and the instant that decides its billing month: the session's
    /// end for a charge, now (its receipt) for a credit.
    pub fn insert_cdr(&self, new: &NewCdr<'_>) -> StoreResult<bool> {
        let cdr = new.cdr;
        let key = object_key(&cdr.party, cdr.id.as_str());
        let document = to_document(cdr)?;
        let now = Utc::now().naive_utc();
        let credit = is_credit(cdr);
        let ended_at = cdr.end_date_time.naive_utc();
        let billing_at = if credit { now } else { ended_at };
        self.write(|conn| {
            let exists: Option<String> = cdrs::table.find(&key).select(cdrs::key).first(conn).optional()?;
            if exists.is_some() {
                return Ok(false);
            }
            let (token, fleet) = cdr_token_key(conn, &cdr.cdr_token)?.unzip();
            diesel::insert_into(cdrs::table)
                .values((
                    cdrs::key.eq(&key),
                    cdrs::country_code.eq(cdr.party.country_code.as_str()),
                    cdrs::party_id.eq(cdr.party.party_id.as_str()),
                    cdrs::cdr_id.eq(cdr.id.as_str()),
                    cdrs::partner_id.eq(new.partner_id),
                    cdrs::session_key.eq(new.session_key),
                    cdrs::charging_id.eq(new.charging_id),
                    cdrs::token_uid.eq(cdr.cdr_token.uid.as_str()),
                    cdrs::currency.eq(cdr.currency.as_str()),
                    cdrs::total_cost_excl.eq(cdr.total_cost.excl_vat.to_string()),
                    cdrs::total_cost_incl.eq(cdr.total_cost.incl_vat.map(|d| d.to_string())),
                    cdrs::our_cost_excl.eq(new.our_cost.map(|p| p.excl_vat.to_string())),
                    cdrs::our_cost_incl.eq(new.our_cost.and_then(|p| p.incl_vat).map(|d| d.to_string())),
                    cdrs::price_check.eq(new.price_check.as_str()),
                    cdrs::price_note.eq(new.price_note),
                    cdrs::document.eq(&document),
                    cdrs::raw.eq(new.raw),
                    cdrs::version.eq(new.version),
                    cdrs::received_at.eq(now),
                    cdrs::token_key.eq(token),
                    cdrs::ended_at.eq(ended_at),
                    cdrs::credit.eq(credit),
                    cdrs::billing_at.eq(billing_at),
                    cdrs::fleet_id.eq(fleet.flatten()),
                ))
                .execute(conn)?;
            Ok(true)
        })
    }

    pub fn get_cdr(&self, key: &str) -> StoreResult<Option<CdrRecord>> {
        let key = key.to_ascii_uppercase();
        let mut conn = self.conn()?;
        let row: Option<CdrRow> = cdrs::table.find(&key).select(cdrs::all_columns).first(&mut *conn).optional()?;
        row.map(CdrRow::into_record).transpose()
    }

    /// The CDRs of a driver's session, oldest first.
    pub fn cdrs_of_charging(&self, charging_id: &str) -> StoreResult<Vec<CdrRecord>> {
        let mut conn = self.conn()?;
        let rows: Vec<CdrRow> = cdrs::table
            .filter(cdrs::charging_id.eq(charging_id))
            .select(cdrs::all_columns)
            .order(cdrs::received_at.asc())
            .load(&mut *conn)?;
        rows.into_iter().map(CdrRow::into_record).collect()
    }

    /// CDRs whose price we could not confirm, newest first (for ops).
    pub fn cdrs_with_price_check(&self, check: PriceCheck, limit: i64) -> StoreResult<Vec<CdrRecord>> {
        let mut conn = self.conn()?;
        let rows: Vec<CdrRow> = cdrs::table
            .filter(cdrs::price_check.eq(check.as_str()))
            .select(cdrs::all_columns)
            .order(cdrs::received_at.desc())
            .limit(limit)
            .load(&mut *conn)?;
        rows.into_iter().map(CdrRow::into_record).collect()
    }
}
