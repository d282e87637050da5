//! Our tokens (RFID cards, app identities), their audit log, the real-time authorizations we
//! answered, and the state of token pushes per partner.
//!
//! A token's key is `CC*PID*UID` in upper case, so a uid is unique per party in any case; CPOs
//! authorize by uid alone, found through `uid_key`. Every change writes an audit row (who, what,
//! when, the token before and after as JSON) in the same transaction as the change. A driver has
//! at most one APP_USER token: a partial unique index decides, so two first requests of one driver
//! cannot both create one.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use emsp_domain::{AllowedType, Emaid, PartyId, Token, TokenType, TokenUid, WhitelistType};
use rand::Rng;

use crate::database::write_transaction;
use crate::database::{DbConnection, Store, per_backend};
use crate::error::{StoreError, StoreResult};
use crate::schema::{token_audit, token_authorizations, token_push_state, tokens, users};

/// A token as stored: the OCPI token plus whom it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub token: Token,
    /// The driver (a user id) the token belongs to, if any.
    pub user_id: Option<String>,
    /// The fleet the token belongs to, if any (no foreign key yet: fleets come later).
    pub fleet_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl TokenRecord {
    /// The stored key, `CC*PID*UID` in upper case.
    pub fn key(&self) -> String {
        token_key(&self.token.party, self.token.uid.as_str())
    }
}

/// The key of a token: `CC*PID*UID` in upper case.
pub fn token_key(party: &PartyId, uid: &str) -> String {
    format!("{}*{}*{}", party.country_code, party.party_id, uid).to_ascii_uppercase()
}

/// A contract id as compared: upper case, without separators.
pub fn contract_key(contract_id: &str) -> String {
    contract_id
        .chars()
        .filter(|c| *c != '-' && *c != '*' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// A token change committed by this process, announced to [`Store::token_changes`] subscribers
/// (the push to CPOs) after the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenChange {
    /// The key `CC*PID*UID`.
    pub key: String,
    /// The audited action (`ISSUE`, `BLOCK`, ...).
    pub action: String,
}

/// One change to a token, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenAuditEntry {
    pub seq: i64,
    pub token_key: String,
    /// What was done (`ISSUE`, `IMPORT`, `BLOCK`, `UNBLOCK`, `ASSIGN`, ...).
    pub action: String,
    /// Who did it: `ops:<user id>`, `driver:<user id>`, `system`, ...
    pub actor: String,
    /// The token before the change (`None` when it was created).
    pub before: Option<serde_json::Value>,
    /// The token after the change.
    pub after: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// A real-time authorization we answered (OCPI `POST tokens/{uid}/authorize`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationRecord {
    /// The `authorization_reference` we gave the CPO.
    pub reference: String,
    /// The key of the token (`CC*PID*UID`).
    pub token_key: String,
    /// The uid as the CPO sent it.
    pub uid: String,
    /// The partner that asked.
    pub partner_id: Option<String>,
    pub allowed: AllowedType,
    /// The location the CPO named, if any.
    pub location_id: Option<String>,
    /// The EVSEs the CPO named, if any.
    pub evse_uids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl TokenRecord {
    /// A new token of ours for a driver's app or a card payment, with a fresh eMAID: valid, and
    /// whitelist NEVER (OCPI recommends it for app tokens: they start sessions from the app, so a
    /// CPO gains nothing from whitelisting them and must ask us in real time).
    pub fn for_driver(
        issuer: &PartyId,
        uid: TokenUid,
        token_type: TokenType,
        issuer_name: &str,
        user_id: &str,
    ) -> StoreResult<Self> {
        let now = now_micros();
        Ok(TokenRecord {
            token: Token {
                party: issuer.clone(),
                uid,
                token_type,
                contract_id: new_contract_id(issuer)?.to_string(),
                visual_number: None,
                issuer: issuer_name.to_owned(),
                group_id: None,
                valid: true,
                whitelist: WhitelistType::Never,
                language: None,
                default_profile_type: None,
                energy_contract: None,
                expires_at: None,
                blocked_reason: None,
                last_updated: now,
            },
            user_id: Some(user_id.to_owned()),
            fleet_id: None,
            created_at: now,
        })
    }
}

impl AuthorizationRecord {
    /// A decision with a new `authorization_reference` (a UUID without hyphens: 32 characters,
    /// within OCPI's 36), made now; stored by [`Store::record_authorizations`].
    pub fn new(new: &NewAuthorization<'_>) -> Self {
        Self {
            reference: uuid::Uuid::new_v4().simple().to_string(),
            token_key: new.token_key.to_owned(),
            uid: new.uid.to_owned(),
            partner_id: new.partner_id.map(str::to_owned),
            allowed: new.allowed.clone(),
            location_id: new.location_id.map(str::to_owned),
            evse_uids: new.evse_uids.to_vec(),
            created_at: now_micros(),
        }
    }
}

/// An authorization to record.
#[derive(Debug, Clone)]
pub struct NewAuthorization<'a> {
    pub token_key: &'a str,
    pub uid: &'a str,
    pub partner_id: Option<&'a str>,
    pub allowed: &'a AllowedType,
    pub location_id: Option<&'a str>,
    pub evse_uids: &'a [String],
}

#[derive(Insertable, AsChangeset, Queryable, Selectable)]
#[diesel(table_name = tokens)]
#[diesel(treat_none_as_null = true)]
struct TokenRow {
    key: String,
    country_code: String,
    party_id: String,
    uid: String,
    uid_key: String,
    token_type: String,
    contract_id: String,
    contract_key: String,
    visual_number: Option<String>,
    issuer: String,
    group_id: Option<String>,
    valid: bool,
    whitelist: String,
    language: Option<String>,
    default_profile_type: Option<String>,
    energy_contract: Option<String>,
    expires_at: Option<NaiveDateTime>,
    blocked_reason: Option<String>,
    user_id: Option<String>,
    fleet_id: Option<String>,
    created_at: NaiveDateTime,
    last_updated: NaiveDateTime,
}

impl TokenRow {
    /// What [`crate::charging::adopt_orphan_cdrs`] matches CDRs on.
    fn adoption(&self) -> crate::charging::Adoption {
        crate::charging::Adoption {
            key: self.key.clone(),
            uid_key: self.uid_key.clone(),
            contract_key: self.contract_key.clone(),
            fleet_id: self.fleet_id.clone(),
        }
    }

    fn from_record(record: &TokenRecord) -> StoreResult<Self> {
        let token = &record.token;
        let energy_contract = match &token.energy_contract {
            Some(value) => Some(serde_json::to_string(value).map_err(|error| StoreError::Corrupt {
                key: token_key(&token.party, token.uid.as_str()),
                reason: error.to_string(),
            })?),
            None => None,
        };
        Ok(Self {
            key: record.key(),
            country_code: token.party.country_code.as_str().to_owned(),
            party_id: token.party.party_id.as_str().to_owned(),
            uid: token.uid.as_str().to_owned(),
            uid_key: token.uid.key(),
            token_type: token.token_type.as_str().to_owned(),
            contract_id: token.contract_id.clone(),
            contract_key: contract_key(&token.contract_id),
            visual_number: token.visual_number.clone(),
            issuer: token.issuer.clone(),
            group_id: token.group_id.clone(),
            valid: token.valid,
            whitelist: token.whitelist.as_str().to_owned(),
            language: token.language.clone(),
            default_profile_type: token.default_profile_type.clone(),
            energy_contract,
            expires_at: token.expires_at.map(|at| at.naive_utc()),
            blocked_reason: token.blocked_reason.clone(),
            user_id: record.user_id.clone(),
            fleet_id: record.fleet_id.clone(),
            created_at: record.created_at.naive_utc(),
            last_updated: token.last_updated.naive_utc(),
        })
    }

    fn into_record(self) -> StoreResult<TokenRecord> {
        let corrupt = |reason: String| StoreError::Corrupt { key: format!("tokens {}", self.key), reason };
        let party =
            PartyId::parse(&format!("{}*{}", self.country_code, self.party_id)).map_err(|e| corrupt(e.to_string()))?;
        let uid = TokenUid::new(self.uid.clone()).map_err(|e| corrupt(e.to_string()))?;
        let energy_contract = match &self.energy_contract {
            Some(text) => Some(serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?),
            None => None,
        };
        Ok(TokenRecord {
            token: Token {
                party,
                uid,
                token_type: TokenType::parse(&self.token_type),
                contract_id: self.contract_id,
                visual_number: self.visual_number,
                issuer: self.issuer,
                group_id: self.group_id,
                valid: self.valid,
                whitelist: WhitelistType::parse(&self.whitelist),
                language: self.language,
                default_profile_type: self.default_profile_type,
                energy_contract,
                expires_at: self.expires_at.map(|at| at.and_utc()),
                blocked_reason: self.blocked_reason,
                last_updated: self.last_updated.and_utc(),
            },
            user_id: self.user_id,
            fleet_id: self.fleet_id,
            created_at: self.created_at.and_utc(),
        })
    }
}

fn token_json(record: &TokenRecord) -> StoreResult<String> {
    let mut value = serde_json::to_value(&record.token)
        .map_err(|error| StoreError::Corrupt { key: record.key(), reason: error.to_string() })?;
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("user_id".into(), record.user_id.clone().into());
        map.insert("fleet_id".into(), record.fleet_id.clone().into());
    }
    Ok(value.to_string())
}

/// Writes an audit row for a change of `key` (inside the caller's transaction).
pub(crate) fn audit(
    conn: &mut DbConnection,
    key: &str,
    action: &str,
    actor: &str,
    before: Option<&TokenRecord>,
    after: Option<&TokenRecord>,
    now: NaiveDateTime,
) -> StoreResult<()> {
    let before = before.map(token_json).transpose()?;
    let after = after.map(token_json).transpose()?;
    diesel::insert_into(token_audit::table)
        .values((
            token_audit::token_key.eq(key),
            token_audit::action.eq(action),
            token_audit::actor.eq(actor),
            token_audit::before.eq(before),
            token_audit::after.eq(after),
            token_audit::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The current instant as both backends store it (microseconds), so a returned record equals the
/// one read back.
pub(crate) fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A new eMA instance: `C` and eight random letters and digits (36^8, about 2.8e12, values).
fn random_instance() -> String {
    const CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::rng();
    let mut instance = String::with_capacity(9);
    instance.push('C');
    for _ in 0..8 {
        instance.push(char::from(CHARS[rng.random_range(0..CHARS.len())]));
    }
    instance
}

/// A new contract id of ours: an eMAID with our country code and party id as provider id.
pub fn new_contract_id(party: &PartyId) -> StoreResult<Emaid> {
    Ok(Emaid::new(party.country_code.as_str(), party.party_id.as_str(), &random_instance())?)
}

fn is_unique_violation(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)))
}

fn load_one(conn: &mut DbConnection, key: &str) -> StoreResult<Option<TokenRecord>> {
    let row: Option<TokenRow> = tokens::table.find(key).select(TokenRow::as_select()).first(conn).optional()?;
    row.map(TokenRow::into_record).transpose()
}

impl Store {
    /// Token changes committed by this process from now on. A subscriber that falls more than
    /// 4,096 changes behind gets `Lagged` and must catch up from the store.
    pub fn token_changes(&self) -> tokio::sync::broadcast::Receiver<TokenChange> {
        self.token_events.subscribe()
    }

    fn announce_token(&self, key: &str, action: &str) {
        // No subscriber (no push configured, tests) is fine.
        let _ = self.token_events.send(TokenChange { key: key.to_owned(), action: action.to_owned() });
    }

    /// Stores a new token and its audit row; a token with the same party and uid (in any case)
    /// is a [`StoreError::Conflict`], as is a second APP_USER token for one driver.
    pub fn insert_token(&self, record: &TokenRecord, action: &str, actor: &str) -> StoreResult<TokenRecord> {
        record.token.validate()?;
        // Both backends keep microseconds (and paging cursors carry them): store what we return.
        let mut record = record.clone();
        record.token.last_updated = record.token.last_updated.trunc_subsecs(6);
        record.token.expires_at = record.token.expires_at.map(|at| at.trunc_subsecs(6));
        record.created_at = record.created_at.trunc_subsecs(6);
        let record = &record;
        let row = TokenRow::from_record(record)?;
        let now = Utc::now().naive_utc();
        let result = self.write(|conn| {
            diesel::insert_into(tokens::table).values(&row).execute(conn)?;
            audit(conn, &row.key, action, actor, None, Some(record), now)?;
            crate::charging::adopt_orphan_cdrs(conn, &[row.adoption()])?;
            Ok(())
        });
        match result {
            Ok(()) => {
                self.announce_token(&row.key, action);
                Ok(record.clone())
            }
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::Conflict(format!("token {} already exists", record.token.uid)))
            }
            Err(error) => Err(error),
        }
    }

    /// Stores many new tokens in one transaction, with their audit rows (bulk loads and
    /// benchmarks; an existing key fails the whole batch with [`StoreError::Conflict`]).
    pub fn insert_tokens(&self, records: &[TokenRecord], action: &str, actor: &str) -> StoreResult<usize> {
        let mut rows = Vec::with_capacity(records.len());
        let mut audits = Vec::with_capacity(records.len());
        let now = Utc::now().naive_utc();
        for record in records {
            record.token.validate()?;
            let mut record = record.clone();
            record.token.last_updated = record.token.last_updated.trunc_subsecs(6);
            record.created_at = record.created_at.trunc_subsecs(6);
            let row = TokenRow::from_record(&record)?;
            audits.push((
                token_audit::token_key.eq(row.key.clone()),
                token_audit::action.eq(action.to_owned()),
                token_audit::actor.eq(actor.to_owned()),
                token_audit::before.eq(None::<String>),
                token_audit::after.eq(Some(token_json(&record)?)),
                token_audit::created_at.eq(now),
            ));
            rows.push(row);
        }
        let result = self.write(|conn| {
            for chunk in rows.chunks(500) {
                per_backend!(conn, |c| diesel::insert_into(tokens::table).values(chunk).execute(c))?;
            }
            for chunk in audits.chunks(500) {
                per_backend!(conn, |c| diesel::insert_into(token_audit::table).values(chunk).execute(c))?;
            }
            let adoptions: Vec<crate::charging::Adoption> = rows.iter().map(TokenRow::adoption).collect();
            crate::charging::adopt_orphan_cdrs(conn, &adoptions)?;
            Ok(rows.len())
        });
        match result {
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::Conflict("a token of the batch already exists".into()))
            }
            other => other,
        }
    }

    /// The token with this uid (in any case). Uids are unique per party; should two of our
    /// parties share one, the first by key is returned (see [`Store::get_party_token`]).
    pub fn get_token(&self, uid: &str) -> StoreResult<Option<TokenRecord>> {
        let mut conn = self.conn()?;
        let row: Option<TokenRow> = tokens::table
            .filter(tokens::uid_key.eq(uid.to_ascii_uppercase()))
            .order(tokens::key.asc())
            .select(TokenRow::as_select())
            .first(&mut *conn)
            .optional()?;
        row.map(TokenRow::into_record).transpose()
    }

    /// [`Store::get_token`] with whether its driver's account is disabled (`None` without a
    /// driver), in one query: the real-time authorization needs both on every request.
    pub fn get_token_and_owner_disabled(&self, uid: &str) -> StoreResult<Option<(TokenRecord, Option<bool>)>> {
        let uid = uid.to_ascii_uppercase();
        Ok(self.get_tokens_and_owners_disabled(std::slice::from_ref(&uid))?.remove(&uid))
    }

    /// [`Store::get_token_and_owner_disabled`] for several uids in one query (the real-time
    /// authorizations of many CPOs at once): by upper-case uid, each uid's first token by key.
    pub fn get_tokens_and_owners_disabled(
        &self,
        uids: &[String],
    ) -> StoreResult<HashMap<String, (TokenRecord, Option<bool>)>> {
        let keys: Vec<String> = uids.iter().map(|uid| uid.to_ascii_uppercase()).collect();
        let mut conn = self.conn()?;
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(1_000) {
            let rows: Vec<(TokenRow, Option<bool>)> = tokens::table
                .left_join(users::table)
                .filter(tokens::uid_key.eq_any(chunk))
                .order(tokens::key.asc())
                .select((TokenRow::as_select(), users::disabled.nullable()))
                .load(&mut *conn)?;
            for (row, disabled) in rows {
                if let std::collections::hash_map::Entry::Vacant(slot) = found.entry(row.uid_key.clone()) {
                    slot.insert((row.into_record()?, disabled));
                }
            }
        }
        Ok(found)
    }

    /// The token of `party` with this uid (in any case).
    pub fn get_party_token(&self, party: &PartyId, uid: &str) -> StoreResult<Option<TokenRecord>> {
        let mut conn = self.conn()?;
        load_one(&mut conn, &token_key(party, uid))
    }

    /// The token with this key (`CC*PID*UID`, any case).
    pub fn get_token_by_key(&self, key: &str) -> StoreResult<Option<TokenRecord>> {
        let mut conn = self.conn()?;
        load_one(&mut conn, &key.to_ascii_uppercase())
    }

    /// Every token of a driver, oldest first.
    pub fn tokens_of_user(&self, user_id: &str) -> StoreResult<Vec<TokenRecord>> {
        let mut conn = self.conn()?;
        let rows: Vec<TokenRow> = tokens::table
            .filter(tokens::user_id.eq(user_id))
            .order((tokens::created_at.asc(), tokens::key.asc()))
            .select(TokenRow::as_select())
            .load(&mut *conn)?;
        rows.into_iter().map(TokenRow::into_record).collect()
    }

    /// The driver's APP_USER token, created on the first call (uid a UUID, contract id a fresh
    /// eMAID of `issuer`, whitelist NEVER) and the same one on every later call. Safe under
    /// concurrent calls for one driver: the unique index lets one insert win, the others read it.
    /// An unknown user is [`StoreError::NotFound`].
    pub fn ensure_app_token(&self, user_id: &str, issuer: &PartyId, issuer_name: &str) -> StoreResult<TokenRecord> {
        if let Some(existing) = self.app_token_of(user_id)? {
            return Ok(existing);
        }
        if self.get_user(user_id)?.is_none() {
            return Err(StoreError::NotFound(format!("user {user_id}")));
        }
        let uid = TokenUid::new(uuid::Uuid::new_v4().to_string())?;
        let record = TokenRecord::for_driver(issuer, uid, TokenType::AppUser, issuer_name, user_id)?;
        match self.insert_token(&record, "ISSUE", &format!("driver:{user_id}")) {
            Ok(created) => Ok(created),
            // Another request of this driver created it first.
            Err(StoreError::Conflict(_)) => {
                self.app_token_of(user_id)?.ok_or_else(|| StoreError::Conflict(format!("app token of user {user_id}")))
            }
            Err(error) => Err(error),
        }
    }

    fn app_token_of(&self, user_id: &str) -> StoreResult<Option<TokenRecord>> {
        let mut conn = self.conn()?;
        let row: Option<TokenRow> = tokens::table
            .filter(tokens::user_id.eq(user_id))
            .filter(tokens::token_type.eq(TokenType::AppUser.as_str()))
            .select(TokenRow::as_select())
            .first(&mut *conn)
            .optional()?;
        row.map(TokenRow::into_record).transpose()
    }

    /// The audit log of one token (by key `CC*PID*UID`), oldest first.
    pub fn token_audit_of(&self, key: &str) -> StoreResult<Vec<TokenAuditEntry>> {
        let mut conn = self.conn()?;
        let rows: Vec<AuditRow> = token_audit::table
            .filter(token_audit::token_key.eq(key.to_ascii_uppercase()))
            .order(token_audit::seq.asc())
            .select(AUDIT_COLUMNS)
            .load(&mut *conn)?;
        rows.into_iter().map(AuditRow::into_entry).collect()
    }

    /// Records a real-time authorization and returns its new `authorization_reference` (a
    /// UUID without hyphens: 32 characters, within OCPI's 36).
    pub fn record_authorization(&self, new: &NewAuthorization<'_>) -> StoreResult<AuthorizationRecord> {
        let record = AuthorizationRecord::new(new);
        self.record_authorizations(std::slice::from_ref(&record))?;
        Ok(record)
    }

    /// Stores decisions made already (see [`AuthorizationRecord::new`]), in one transaction with
    /// multi-row inserts: the real-time authorization endpoint answers first and writes its
    /// decisions a few milliseconds later, many at a time.
    pub fn record_authorizations(&self, records: &[AuthorizationRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(records.len());
        for record in records {
            let evse_uids = if record.evse_uids.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&record.evse_uids).map_err(|error| StoreError::Corrupt {
                    key: format!("authorization {}", record.reference),
                    reason: error.to_string(),
                })?)
            };
            rows.push((
                token_authorizations::authorization_reference.eq(record.reference.clone()),
                token_authorizations::token_key.eq(record.token_key.clone()),
                token_authorizations::uid.eq(record.uid.clone()),
                token_authorizations::partner_id.eq(record.partner_id.clone()),
                token_authorizations::allowed.eq(record.allowed.as_str().to_owned()),
                token_authorizations::location_id.eq(record.location_id.clone()),
                token_authorizations::evse_uids.eq(evse_uids),
                token_authorizations::created_at.eq(record.created_at.naive_utc()),
            ));
        }
        // Committed without waiting for the disk (see `ephemeral_write_transaction`): a decision
        // lost in a database crash only costs the match by reference (sessions and CDRs still
        // match by token), while a synchronous commit makes every batch wait for an fsync.
        let mut conn = self.conn()?;
        crate::database::ephemeral_write_transaction(&mut conn, |conn| {
            for chunk in rows.chunks(500) {
                per_backend!(conn, |c| diesel::insert_into(token_authorizations::table).values(chunk).execute(c))?;
            }
            Ok(())
        })
    }

    /// The authorization we answered with this `authorization_reference` (as CPOs echo it in
    /// sessions and CDRs), if any.
    pub fn get_authorization(&self, reference: &str) -> StoreResult<Option<AuthorizationRecord>> {
        let mut conn = self.conn()?;
        let row: Option<AuthorizationRow> = token_authorizations::table
            .find(reference)
            .select((
                token_authorizations::authorization_reference,
                token_authorizations::token_key,
                token_authorizations::uid,
                token_authorizations::partner_id,
                token_authorizations::allowed,
                token_authorizations::location_id,
                token_authorizations::evse_uids,
                token_authorizations::created_at,
            ))
            .first(&mut *conn)
            .optional()?;
        row.map(AuthorizationRow::into_record).transpose()
    }
}

/// A `token_push_state` row: partner, repush_from, last_push_at, last_error, last_error_at.
type PushStateRow = (String, Option<NaiveDateTime>, Option<NaiveDateTime>, Option<String>, Option<NaiveDateTime>);

#[derive(Queryable)]
struct AuditRow {
    seq: i64,
    token_key: String,
    action: String,
    actor: String,
    before: Option<String>,
    after: Option<String>,
    created_at: NaiveDateTime,
}

type AuditColumns = (
    token_audit::seq,
    token_audit::token_key,
    token_audit::action,
    token_audit::actor,
    token_audit::before,
    token_audit::after,
    token_audit::created_at,
);

pub(crate) const AUDIT_COLUMNS: AuditColumns = (
    token_audit::seq,
    token_audit::token_key,
    token_audit::action,
    token_audit::actor,
    token_audit::before,
    token_audit::after,
    token_audit::created_at,
);

impl AuditRow {
    fn into_entry(self) -> StoreResult<TokenAuditEntry> {
        let parse = |text: Option<String>| -> StoreResult<Option<serde_json::Value>> {
            text.map(|text| {
                serde_json::from_str(&text).map_err(|error| StoreError::Corrupt {
                    key: format!("token_audit {}", self.seq),
                    reason: error.to_string(),
                })
            })
            .transpose()
        };
        Ok(TokenAuditEntry {
            seq: self.seq,
            before: parse(self.before.clone())?,
            after: parse(self.after.clone())?,
            token_key: self.token_key,
            action: self.action,
            actor: self.actor,
            created_at: self.created_at.and_utc(),
        })
    }
}

#[derive(Queryable)]
struct AuthorizationRow {
    reference: String,
    token_key: String,
    uid: String,
    partner_id: Option<String>,
    allowed: String,
    location_id: Option<String>,
    evse_uids: Option<String>,
    created_at: NaiveDateTime,
}

impl AuthorizationRow {
    fn into_record(self) -> StoreResult<AuthorizationRecord> {
        let evse_uids = match &self.evse_uids {
            Some(text) => serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
                key: format!("token_authorizations {}", self.reference),
                reason: error.to_string(),
            })?,
            None => Vec::new(),
        };
        Ok(AuthorizationRecord {
            allowed: AllowedType::parse(&self.allowed),
            reference: self.reference,
            token_key: self.token_key,
            uid: self.uid,
            partner_id: self.partner_id,
            location_id: self.location_id,
            evse_uids,
            created_at: self.created_at.and_utc(),
        })
    }
}

/// What ops search tokens by; every given field must match.
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    /// The uid, in any case; a trailing `*` matches a prefix.
    pub uid: Option<String>,
    /// The contract id, in any case, with or without separators; a trailing `*` matches a prefix.
    pub contract_id: Option<String>,
    pub user_id: Option<String>,
    pub fleet_id: Option<String>,
    pub token_type: Option<TokenType>,
    pub valid: Option<bool>,
}

/// What the audit log is searched by.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The token key `CC*PID*UID` (any case).
    pub token_key: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Entries at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Entries before this instant.
    pub to: Option<DateTime<Utc>>,
}

/// The state of token pushes to one partner.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenPushState {
    pub partner_id: String,
    /// Tokens changed at or after this instant still have to reach the partner.
    pub repush_from: Option<DateTime<Utc>>,
    pub last_push_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// A `LIKE` pattern for a value with an optional trailing `*`, `%` and `_` escaped.
fn like_pattern(value: &str) -> (String, bool) {
    let (value, prefix) = match value.strip_suffix('*') {
        Some(stripped) => (stripped, true),
        None => (value, false),
    };
    let escaped: String = value
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            other => vec![other],
        })
        .collect();
    (escaped, prefix)
}

type BoxedTokens<'a> = tokens::BoxedQuery<'a, crate::database::MultiBackend>;

fn filtered(filter: &TokenFilter) -> BoxedTokens<'static> {
    let mut query = tokens::table.into_boxed();
    if let Some(uid) = &filter.uid {
        let (pattern, prefix) = like_pattern(&uid.trim().to_ascii_uppercase());
        query = if prefix {
            query.filter(tokens::uid_key.like(format!("{pattern}%")).escape('\\'))
        } else {
            query.filter(tokens::uid_key.eq(uid.trim().to_ascii_uppercase()))
        };
    }
    if let Some(contract) = &filter.contract_id {
        let key = contract_key(contract.trim().trim_end_matches('*'));
        query = if contract.trim().ends_with('*') {
            let (pattern, _) = like_pattern(&key);
            query.filter(tokens::contract_key.like(format!("{pattern}%")).escape('\\'))
        } else {
            query.filter(tokens::contract_key.eq(key))
        };
    }
    if let Some(user_id) = &filter.user_id {
        query = query.filter(tokens::user_id.eq(user_id.clone()));
    }
    if let Some(fleet_id) = &filter.fleet_id {
        query = query.filter(tokens::fleet_id.eq(fleet_id.clone()));
    }
    if let Some(token_type) = &filter.token_type {
        query = query.filter(tokens::token_type.eq(token_type.as_str().to_owned()));
    }
    if let Some(valid) = filter.valid {
        query = query.filter(tokens::valid.eq(valid));
    }
    query
}

fn window(date_from: Option<DateTime<Utc>>, date_to: Option<DateTime<Utc>>) -> BoxedTokens<'static> {
    let mut query = tokens::table.into_boxed();
    if let Some(from) = date_from {
        query = query.filter(tokens::last_updated.ge(from.naive_utc()));
    }
    if let Some(to) = date_to {
        query = query.filter(tokens::last_updated.lt(to.naive_utc()));
    }
    query
}

impl Store {
    /// Tokens matching `filter`, newest change first, and how many match in all.
    pub fn search_tokens(&self, filter: &TokenFilter, offset: i64, limit: i64) -> StoreResult<(Vec<TokenRecord>, i64)> {
        let mut conn = self.conn()?;
        let total: i64 = filtered(filter).count().get_result(&mut *conn)?;
        let rows: Vec<TokenRow> = filtered(filter)
            .order((tokens::last_updated.desc(), tokens::key.asc()))
            .offset(offset.max(0))
            .limit(limit.max(0))
            .select(TokenRow::as_select())
            .load(&mut *conn)?;
        let records = rows.into_iter().map(TokenRow::into_record).collect::<StoreResult<Vec<_>>>()?;
        Ok((records, total))
    }

    /// One page of the tokens whose `last_updated` lies in `[date_from, date_to)`, in the stable
    /// order (`last_updated`, key) OCPI pagination needs, and how many lie in the window.
    pub fn tokens_page(
        &self,
        date_from: Option<DateTime<Utc>>,
        date_to: Option<DateTime<Utc>>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<TokenRecord>, i64)> {
        let mut conn = self.conn()?;
        let total: i64 = window(date_from, date_to).count().get_result(&mut *conn)?;
        let rows: Vec<TokenRow> = window(date_from, date_to)
            .order((tokens::last_updated.asc(), tokens::key.asc()))
            .offset(offset.max(0))
            .limit(limit.max(0))
            .select(TokenRow::as_select())
            .load(&mut *conn)?;
        let records = rows.into_iter().map(TokenRow::into_record).collect::<StoreResult<Vec<_>>>()?;
        Ok((records, total))
    }

    /// Like [`Store::tokens_page`], but continuing after the token `(last_updated, key)` instead
    /// of at an offset: a token changed while a CPO pages moves to the end of the order and comes
    /// again, and no other token is skipped (with offsets, every later token would shift by one).
    pub fn tokens_after(
        &self,
        date_from: Option<DateTime<Utc>>,
        date_to: Option<DateTime<Utc>>,
        after: Option<(DateTime<Utc>, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<TokenRecord>> {
        let mut conn = self.conn()?;
        let mut query = window(date_from, date_to);
        if let Some((at, key)) = after {
            let at = at.naive_utc();
            let key = key.to_ascii_uppercase();
            query = query.filter(tokens::last_updated.gt(at).or(tokens::last_updated.eq(at).and(tokens::key.gt(key))));
        }
        let rows: Vec<TokenRow> = query
            .order((tokens::last_updated.asc(), tokens::key.asc()))
            .limit(limit.max(0))
            .select(TokenRow::as_select())
            .load(&mut *conn)?;
        rows.into_iter().map(TokenRow::into_record).collect()
    }

    /// Changes one token (by key `CC*PID*UID`, any case) in a write transaction: `change` edits a
    /// copy of the stored record, which is validated, stamped with a new `last_updated` and written
    /// with an audit row. Returns the record before and after; `None` when there is no such token.
    /// A change that alters nothing is not written and not audited (`before == after`).
    pub fn update_token(
        &self,
        key: &str,
        action: &str,
        actor: &str,
        change: impl FnOnce(&mut TokenRecord) -> StoreResult<()>,
    ) -> StoreResult<Option<(TokenRecord, TokenRecord)>> {
        let key = key.to_ascii_uppercase();
        let now = now_micros();
        let result = self.write(|conn| {
            let Some(before) = load_one(conn, &key)? else { return Ok(None) };
            let mut after = before.clone();
            change(&mut after)?;
            if after == before {
                return Ok(Some((before, after)));
            }
            after.token.last_updated = now.max(before.token.last_updated + chrono::Duration::microseconds(1));
            after.token.validate()?;
            let row = TokenRow::from_record(&after)?;
            diesel::update(tokens::table.find(&key)).set(&row).execute(conn)?;
            audit(conn, &key, action, actor, Some(&before), Some(&after), now.naive_utc())?;
            if let Some(fleet) = after.fleet_id.as_deref().filter(|_| after.fleet_id != before.fleet_id) {
                crate::charging::give_fleet_to_unattached_cdrs(conn, &key, fleet)?;
            }
            Ok(Some((before, after)))
        });
        if let Ok(Some((before, after))) = &result
            && before != after
        {
            self.announce_token(&key, action);
        }
        match result {
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::Conflict("the driver already has an app token".into()))
            }
            other => other,
        }
    }

    /// Audit entries matching `filter`, newest first, and how many match in all.
    pub fn token_audit(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<TokenAuditEntry>, i64)> {
        let build = || {
            let mut query = token_audit::table.into_boxed::<crate::database::MultiBackend>();
            if let Some(key) = &filter.token_key {
                query = query.filter(token_audit::token_key.eq(key.to_ascii_uppercase()));
            }
            if let Some(actor) = &filter.actor {
                query = query.filter(token_audit::actor.eq(actor.clone()));
            }
            if let Some(action) = &filter.action {
                query = query.filter(token_audit::action.eq(action.to_ascii_uppercase()));
            }
            if let Some(from) = filter.from {
                query = query.filter(token_audit::created_at.ge(from.naive_utc()));
            }
            if let Some(to) = filter.to {
                query = query.filter(token_audit::created_at.lt(to.naive_utc()));
            }
            query
        };
        let mut conn = self.conn()?;
        let total: i64 = build().count().get_result(&mut *conn)?;
        let rows: Vec<AuditRow> = build()
            .order(token_audit::seq.desc())
            .offset(offset.max(0))
            .limit(limit.max(0))
            .select(AUDIT_COLUMNS)
            .load(&mut *conn)?;
        let entries = rows.into_iter().map(AuditRow::into_entry).collect::<StoreResult<Vec<_>>>()?;
        Ok((entries, total))
    }

    /// The first ALLOWED authorization of a token, if any (an AD_HOC_USER token is bound to the
    /// location of its first one).
    pub fn first_allowed_authorization(&self, token_key: &str) -> StoreResult<Option<AuthorizationRecord>> {
        let mut conn = self.conn()?;
        let row: Option<AuthorizationRow> = token_authorizations::table
            .filter(token_authorizations::token_key.eq(token_key.to_ascii_uppercase()))
            .filter(token_authorizations::allowed.eq(AllowedType::Allowed.as_str()))
            .order((token_authorizations::created_at.asc(), token_authorizations::authorization_reference.asc()))
            .select((
                token_authorizations::authorization_reference,
                token_authorizations::token_key,
                token_authorizations::uid,
                token_authorizations::partner_id,
                token_authorizations::allowed,
                token_authorizations::location_id,
                token_authorizations::evse_uids,
                token_authorizations::created_at,
            ))
            .first(&mut *conn)
            .optional()?;
        row.map(AuthorizationRow::into_record).transpose()
    }

    /// Marks a partner for a re-push of every token changed at or after `from` (a push failed).
    /// An earlier mark is kept: the re-push then starts at the older change.
    pub fn mark_token_repush(&self, partner_id: &str, from: DateTime<Utc>, error: &str) -> StoreResult<()> {
        let now = Utc::now().naive_utc();
        let from = from.naive_utc();
        let error: String = error.chars().take(1000).collect();
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| {
            let current: Option<Option<NaiveDateTime>> = token_push_state::table
                .find(partner_id)
                .select(token_push_state::repush_from)
                .first(conn)
                .optional()?;
            match current {
                None => {
                    diesel::insert_into(token_push_state::table)
                        .values((
                            token_push_state::partner_id.eq(partner_id),
                            token_push_state::repush_from.eq(Some(from)),
                            token_push_state::last_error.eq(Some(&error)),
                            token_push_state::last_error_at.eq(Some(now)),
                        ))
                        .execute(conn)?;
                }
                Some(existing) => {
                    let from = existing.map_or(from, |existing| existing.min(from));
                    diesel::update(token_push_state::table.find(partner_id))
                        .set((
                            token_push_state::repush_from.eq(Some(from)),
                            token_push_state::last_error.eq(Some(&error)),
                            token_push_state::last_error_at.eq(Some(now)),
                        ))
                        .execute(conn)?;
                }
            }
            Ok(())
        })
    }

    /// Records a good push to a partner. For a re-push that started at `repush_started` and
    /// delivered every token changed since the mark, the mark is cleared, unless a push failed
    /// after the re-push started (that failure's mark stays for the next cycle).
    pub fn record_token_push(&self, partner_id: &str, repush_started: Option<DateTime<Utc>>) -> StoreResult<()> {
        let now = Utc::now().naive_utc();
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| {
            let current: Option<(Option<NaiveDateTime>, Option<NaiveDateTime>)> = token_push_state::table
                .find(partner_id)
                .select((token_push_state::repush_from, token_push_state::last_error_at))
                .first(conn)
                .optional()?;
            let Some((mark, last_error_at)) = current else {
                diesel::insert_into(token_push_state::table)
                    .values((token_push_state::partner_id.eq(partner_id), token_push_state::last_push_at.eq(Some(now))))
                    .execute(conn)?;
                return Ok(());
            };
            let keep = match repush_started {
                Some(started) if last_error_at.is_none_or(|at| at < started.naive_utc()) => None,
                _ => mark,
            };
            diesel::update(token_push_state::table.find(partner_id))
                .set((token_push_state::repush_from.eq(keep), token_push_state::last_push_at.eq(Some(now))))
                .execute(conn)?;
            Ok(())
        })
    }

    /// The token push state of every partner that has one.
    pub fn token_push_states(&self) -> StoreResult<Vec<TokenPushState>> {
        let mut conn = self.conn()?;
        let rows: Vec<PushStateRow> = token_push_state::table
            .order(token_push_state::partner_id.asc())
            .select((
                token_push_state::partner_id,
                token_push_state::repush_from,
                token_push_state::last_push_at,
                token_push_state::last_error,
                token_push_state::last_error_at,
            ))
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .map(|(partner_id, repush_from, last_push_at, last_error, last_error_at)| TokenPushState {
                partner_id,
                repush_from: repush_from.map(|t| t.and_utc()),
                last_push_at: last_push_at.map(|t| t.and_utc()),
                last_error,
                last_error_at: last_error_at.map(|t| t.and_utc()),
            })
            .collect())
    }
}
