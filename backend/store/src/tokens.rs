//! Our tokens (RFID cards, app identities), their audit log, the real-time authorizations we
//! answered, and the state of token pushes per partner.
//!
//! A token's key is `CC*PID*UID` in upper case, so a uid is unique per party in any case; CPOs
//! authorize by uid alone, found through `uid_key`. Every change writes an audit row (who, what,
//! when, the token before and after as JSON) in the same transaction as the change. A driver has
//! at most one APP_USER token: a partial unique index decides, so two first requests of one driver
//! cannot both create one.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use emsp_domain::{AllowedType, Emaid, PartyId, Token, TokenType, TokenUid, WhitelistType};
use rand::Rng;

use crate::database::{DbConnection, Store};
use crate::error::{StoreError, StoreResult};
use crate::schema::{token_audit, token_authorizations, tokens};

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
    /// Stores a new token and its audit row; a token with the same party and uid (in any case)
    /// is a [`StoreError::Conflict`], as is a second APP_USER token for one driver.
    pub fn insert_token(&self, record: &TokenRecord, action: &str, actor: &str) -> StoreResult<TokenRecord> {
        record.token.validate()?;
        let row = TokenRow::from_record(record)?;
        let now = Utc::now().naive_utc();
        let result = self.write(|conn| {
            diesel::insert_into(tokens::table).values(&row).execute(conn)?;
            audit(conn, &row.key, action, actor, None, Some(record), now)?;
            Ok(())
        });
        match result {
            Ok(()) => Ok(record.clone()),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::Conflict(format!("token {} already exists", record.token.uid)))
            }
            Err(error) => Err(error),
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

    /// The token of `party` with this uid (in any case).
    pub fn get_party_token(&self, party: &PartyId, uid: &str) -> StoreResult<Option<TokenRecord>> {
        let mut conn = self.conn()?;
        load_one(&mut conn, &token_key(party, uid))
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
    /// eMAID of `issuer`, whitelist ALLOWED) and the same one on every later call. Safe under
    /// concurrent calls for one driver: the unique index lets one insert win, the others read it.
    /// An unknown user is [`StoreError::NotFound`].
    pub fn ensure_app_token(&self, user_id: &str, issuer: &PartyId, issuer_name: &str) -> StoreResult<TokenRecord> {
        if let Some(existing) = self.app_token_of(user_id)? {
            return Ok(existing);
        }
        if self.get_user(user_id)?.is_none() {
            return Err(StoreError::NotFound(format!("user {user_id}")));
        }
        let now = now_micros();
        let uid = TokenUid::new(uuid::Uuid::new_v4().to_string())?;
        let record = TokenRecord {
            token: Token {
                party: issuer.clone(),
                uid,
                token_type: TokenType::AppUser,
                contract_id: new_contract_id(issuer)?.to_string(),
                visual_number: None,
                issuer: issuer_name.to_owned(),
                group_id: None,
                valid: true,
                whitelist: WhitelistType::Allowed,
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
        };
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
        let reference = uuid::Uuid::new_v4().simple().to_string();
        let now = now_micros();
        let evse_uids = if new.evse_uids.is_empty() {
            None
        } else {
            Some(serde_json::to_string(new.evse_uids).map_err(|error| StoreError::Corrupt {
                key: format!("authorization {reference}"),
                reason: error.to_string(),
            })?)
        };
        let mut conn = self.conn()?;
        diesel::insert_into(token_authorizations::table)
            .values((
                token_authorizations::authorization_reference.eq(&reference),
                token_authorizations::token_key.eq(new.token_key),
                token_authorizations::uid.eq(new.uid),
                token_authorizations::partner_id.eq(new.partner_id),
                token_authorizations::allowed.eq(new.allowed.as_str()),
                token_authorizations::location_id.eq(new.location_id),
                token_authorizations::evse_uids.eq(evse_uids),
                token_authorizations::created_at.eq(now.naive_utc()),
            ))
            .execute(&mut *conn)?;
        Ok(AuthorizationRecord {
            reference,
            token_key: new.token_key.to_owned(),
            uid: new.uid.to_owned(),
            partner_id: new.partner_id.map(str::to_owned),
            allowed: new.allowed.clone(),
            location_id: new.location_id.map(str::to_owned),
            evse_uids: new.evse_uids.to_vec(),
            created_at: now,
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
