//! Accounts at rest: users, their refresh tokens, and the keys that sign access tokens.
//!
//! Passwords arrive here already hashed (argon2id, in `emsp-accounts`); this module never sees one.
//! Refresh tokens are long random strings, so, like partner tokens, a SHA-256 digest is enough to
//! look them up without keeping them. Their rotation is one conditional `UPDATE ... WHERE used_at
//! IS NULL` inside a write transaction: the database, not the caller, decides which of two
//! concurrent uses of the same token wins, so a token is spent exactly once. Private signing keys
//! are sealed with the store's [`TokenCipher`](crate::TokenCipher) before they touch the disk.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::{Deserialize, Serialize};

use crate::crypto::hash_token;
use crate::database::{DbConnection, Store};
use crate::error::{StoreError, StoreResult};
use crate::schema::{refresh_tokens, signing_keys, users};

/// What a user may do. Stored as its [`Role::as_str`] text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// A driver using the app: their own sessions, cards and payments.
    Driver,
    /// Manages the drivers and invoices of one fleet.
    FleetManager,
    /// Our own operations staff.
    Ops,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Driver => "DRIVER",
            Role::FleetManager => "FLEET_MANAGER",
            Role::Ops => "OPS",
        }
    }

    /// Reads a role as stored or typed (`ops`, `fleet-manager` and `FLEET_MANAGER` are all accepted).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "DRIVER" => Some(Role::Driver),
            "FLEET_MANAGER" => Some(Role::FleetManager),
            "OPS" => Some(Role::Ops),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user as stored, with the password hash (never leaves `emsp-accounts`).
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: String,
    /// Lower-cased.
    pub email: String,
    pub name: Option<String>,
    /// A PHC string (`$argon2id$v=19$m=...`).
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Stored lower-cased; a second user with the same email is a [`StoreError::Conflict`].
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: Role,
}

/// What became of a presented refresh token in [`Store::rotate_refresh_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshRotation {
    /// The token was live: it is now spent and the new one is stored in the same family.
    Rotated {
        user_id: String,
        family_id: String,
    },
    /// The token had already been spent: somebody replays it (a stolen copy, or the thief's
    /// original after the owner rotated it). The whole family has just been revoked.
    Reused {
        user_id: String,
        family_id: String,
    },
    /// The token (or its family) was revoked, by logout or after a reuse.
    Revoked,
    Expired,
    /// No such token.
    Unknown,
}

/// A signing key as stored, the private half already unsealed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// The JOSE algorithm name, `EdDSA`.
    pub algorithm: String,
    /// The private key as the accounts service encoded it (before sealing).
    pub private_key: String,
    /// The public key as published in the JWKS.
    pub public_key: String,
    pub created_at: NaiveDateTime,
    /// After this instant the key neither signs nor verifies; `None` while it is current.
    pub retire_after: Option<NaiveDateTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key", &"***")
            .field("public_key", &self.public_key)
            .field("created_at", &self.created_at)
            .field("retire_after", &self.retire_after)
            .finish()
    }
}

/// A signing key to store.
#[derive(Debug, Clone)]
pub struct NewSigningKey<'a> {
    pub kid: &'a str,
    pub algorithm: &'a str,
    /// Sealed with the store's cipher before it is written.
    pub private_key: &'a str,
    pub public_key: &'a str,
}

#[derive(Queryable)]
struct UserRow {
    id: String,
    email: String,
    name: Option<String>,
    password_hash: String,
    role: String,
    disabled: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl UserRow {
    fn into_record(self) -> StoreResult<UserRecord> {
        let role = Role::parse(&self.role).ok_or_else(|| StoreError::Corrupt {
            key: format!("users.role of {}", self.id),
            reason: format!("unknown role {}", self.role),
        })?;
        Ok(UserRecord {
            id: self.id,
            email: self.email,
            name: self.name,
            password_hash: self.password_hash,
            role,
            disabled: self.disabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Queryable)]
struct RefreshRow {
    user_id: String,
    family_id: String,
    used_at: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
}

#[derive(Queryable)]
struct SigningKeyRow {
    kid: String,
    algorithm: String,
    private_key_enc: Vec<u8>,
    public_key: String,
    created_at: NaiveDateTime,
    retire_after: Option<NaiveDateTime>,
}

type UserColumns = (
    users::id,
    users::email,
    users::name,
    users::password_hash,
    users::role,
    users::disabled,
    users::created_at,
    users::updated_at,
);

const USER_COLUMNS: UserColumns = (
    users::id,
    users::email,
    users::name,
    users::password_hash,
    users::role,
    users::disabled,
    users::created_at,
    users::updated_at,
);

/// Turns the database's unique-constraint error into [`StoreError::Conflict`]; other errors pass.
fn conflict_on_unique(error: DieselError, what: &str) -> StoreError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Conflict(what.to_owned()),
        other => StoreError::Database(other),
    }
}

fn insert_refresh_token(
    conn: &mut DbConnection,
    user_id: &str,
    family_id: &str,
    token: &str,
    expires_at: DateTime<Utc>,
    now: NaiveDateTime,
) -> StoreResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(uuid::Uuid::new_v4().to_string()),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::family_id.eq(family_id),
            refresh_tokens::token_hash.eq(hash_token(token)),
            refresh_tokens::created_at.eq(now),
            refresh_tokens::expires_at.eq(expires_at.naive_utc()),
        ))
        .execute(conn)
        .map_err(|error| conflict_on_unique(error, "refresh token already stored"))?;
    Ok(())
}

fn revoke_family(conn: &mut DbConnection, family_id: &str, now: NaiveDateTime) -> StoreResult<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?)
}

impl Store {
    /// Creates a user. The email is stored lower-cased; one already taken (in any case) is a
    /// [`StoreError::Conflict`], decided by the unique index, so concurrent sign-ups are safe.
    pub fn create_user(&self, new: &NewUser<'_>) -> StoreResult<UserRecord> {
        // PostgreSQL keeps microseconds: the returned record must equal the stored one.
        let now = Utc::now().naive_utc().trunc_subsecs(6);
        let record = UserRecord {
            id: uuid::Uuid::new_v4().to_string(),
            email: new.email.trim().to_lowercase(),
            name: new.name.map(str::to_owned),
            password_hash: new.password_hash.to_owned(),
            role: new.role,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.conn()?;
        diesel::insert_into(users::table)
            .values((
                users::id.eq(&record.id),
                users::email.eq(&record.email),
                users::name.eq(&record.name),
                users::password_hash.eq(&record.password_hash),
                users::role.eq(record.role.as_str()),
                users::disabled.eq(false),
                users::created_at.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(&mut *conn)
            .map_err(|error| conflict_on_unique(error, "email already registered"))?;
        Ok(record)
    }

    pub fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        let mut conn = self.conn()?;
        let row: Option<UserRow> = users::table.find(id).select(USER_COLUMNS).first(&mut *conn).optional()?;
        row.map(UserRow::into_record).transpose()
    }

    /// The users with these ids (unknown ids are left out), in no particular order (one query per 500 ids).
    pub fn users_by_ids(&self, ids: &[String]) -> StoreResult<Vec<UserRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn()?;
        let mut users = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows: Vec<UserRow> =
                users::table.filter(users::id.eq_any(chunk)).select(USER_COLUMNS).load(&mut *conn)?;
            for row in rows {
                users.push(row.into_record()?);
            }
        }
        Ok(users)
    }

    /// The user with this email, in any case.
    pub fn find_user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let mut conn = self.conn()?;
        let row: Option<UserRow> = users::table
            .filter(users::email.eq(email.trim().to_lowercase()))
            .select(USER_COLUMNS)
            .first(&mut *conn)
            .optional()?;
        row.map(UserRow::into_record).transpose()
    }

    /// Disables or enables a user; `false` when there is no such user. Disabling also revokes
    /// every refresh token of the user, so no session outlives it by more than an access token.
    pub fn set_user_disabled(&self, id: &str, disabled: bool) -> StoreResult<bool> {
        let now = Utc::now().naive_utc();
        self.write(|conn| {
            let updated = diesel::update(users::table.find(id))
                .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
                .execute(conn)?;
            if disabled {
                diesel::update(
                    refresh_tokens::table
                        .filter(refresh_tokens::user_id.eq(id))
                        .filter(refresh_tokens::revoked_at.is_null()),
                )
                .set(refresh_tokens::revoked_at.eq(now))
                .execute(conn)?;
            }
            Ok(updated > 0)
        })
    }

    /// Replaces a user's password hash (a rehash with stronger parameters, a password change).
    pub fn set_password_hash(&self, id: &str, password_hash: &str) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let updated = diesel::update(users::table.find(id))
            .set((users::password_hash.eq(password_hash), users::updated_at.eq(Utc::now().naive_utc())))
            .execute(&mut *conn)?;
        Ok(updated > 0)
    }

    /// Stores the first refresh token of a new family (a login); returns the family id.
    pub fn create_refresh_token(&self, user_id: &str, token: &str, expires_at: DateTime<Utc>) -> StoreResult<String> {
        let family_id = uuid::Uuid::new_v4().to_string();
        let now = Utc::now().naive_utc();
        let mut conn = self.conn()?;
        insert_refresh_token(&mut conn, user_id, &family_id, token, expires_at, now)?;
        Ok(family_id)
    }

    /// Spends `presented` and stores `replacement` in its family, atomically; a token can be spent
    /// once only, even by concurrent callers. Presenting an already spent token revokes its whole
    /// family (committed, not rolled back) and reports [`RefreshRotation::Reused`].
    pub fn rotate_refresh_token(
        &self,
        presented: &str,
        replacement: &str,
        replacement_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<RefreshRotation> {
        let presented_hash = hash_token(presented);
        let now = now.naive_utc();
        self.write(|conn| {
            // The conditional update is the decision: of two concurrent uses one updates a row,
            // the other (blocked on the row lock on PostgreSQL, on the write lock on SQLite)
            // re-reads `used_at` as set and updates nothing.
            let spent = diesel::update(
                refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&presented_hash))
                    .filter(refresh_tokens::used_at.is_null())
                    .filter(refresh_tokens::revoked_at.is_null())
                    .filter(refresh_tokens::expires_at.gt(now)),
            )
            .set(refresh_tokens::used_at.eq(now))
            .execute(conn)?;

            let row: Option<RefreshRow> = refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&presented_hash))
                .select((
                    refresh_tokens::user_id,
                    refresh_tokens::family_id,
                    refresh_tokens::used_at,
                    refresh_tokens::revoked_at,
                ))
                .first(conn)
                .optional()?;
            let Some(RefreshRow { user_id, family_id, used_at, revoked_at }) = row else {
                return Ok(RefreshRotation::Unknown);
            };
            if spent == 1 {
                insert_refresh_token(conn, &user_id, &family_id, replacement, replacement_expires_at, now)?;
                return Ok(RefreshRotation::Rotated { user_id, family_id });
            }
            if revoked_at.is_some() {
                return Ok(RefreshRotation::Revoked);
            }
            if used_at.is_some() {
                revoke_family(conn, &family_id, now)?;
                return Ok(RefreshRotation::Reused { user_id, family_id });
            }
            // Neither used nor revoked: the `expires_at > now` condition is what failed.
            Ok(RefreshRotation::Expired)
        })
    }

    /// Revokes the family of `token` (logout); `false` when the token is unknown.
    pub fn revoke_refresh_family(&self, token: &str) -> StoreResult<bool> {
        let hash = hash_token(token);
        let now = Utc::now().naive_utc();
        self.write(|conn| {
            let family: Option<String> = refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&hash))
                .select(refresh_tokens::family_id)
                .first(conn)
                .optional()?;
            let Some(family) = family else { return Ok(false) };
            revoke_family(conn, &family, now)?;
            Ok(true)
        })
    }

    /// Deletes refresh tokens that expired before `before`; returns how many.
    pub fn prune_refresh_tokens(&self, before: DateTime<Utc>) -> StoreResult<usize> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before.naive_utc())))
            .execute(&mut *conn)?)
    }

    /// Stores a new signing key, its private half sealed, and gives every other key without a
    /// retirement date `retire_others_after`, in one transaction: from now on the new key signs.
    pub fn add_signing_key(&self, key: &NewSigningKey<'_>, retire_others_after: DateTime<Utc>) -> StoreResult<()> {
        let cipher = self.cipher.as_ref().ok_or_else(|| {
            StoreError::Config("EMSP_SECRET_KEY is not set: token signing keys cannot be stored".into())
        })?;
        let sealed = cipher.encrypt(key.private_key)?;
        let now = Utc::now().naive_utc();
        self.write(|conn| {
            diesel::update(signing_keys::table.filter(signing_keys::retire_after.is_null()))
                .set(signing_keys::retire_after.eq(retire_others_after.naive_utc()))
                .execute(conn)?;
            diesel::insert_into(signing_keys::table)
                .values((
                    signing_keys::kid.eq(key.kid),
                    signing_keys::algorithm.eq(key.algorithm),
                    signing_keys::private_key_enc.eq(sealed),
                    signing_keys::public_key.eq(key.public_key),
                    signing_keys::created_at.eq(now),
                ))
                .execute(conn)
                .map_err(|error| conflict_on_unique(error, "signing key id already used"))?;
            Ok(())
        })
    }

    /// Signing keys not retired at `now`, newest first, private halves unsealed.
    pub fn signing_keys(&self, now: DateTime<Utc>) -> StoreResult<Vec<SigningKeyRecord>> {
        let cipher = self.cipher.as_ref().ok_or_else(|| {
            StoreError::Config("EMSP_SECRET_KEY is not set: token signing keys cannot be read".into())
        })?;
        let mut conn = self.conn()?;
        let rows: Vec<SigningKeyRow> = signing_keys::table
            .filter(signing_keys::retire_after.is_null().or(signing_keys::retire_after.gt(now.naive_utc())))
            .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
            .select((
                signing_keys::kid,
                signing_keys::algorithm,
                signing_keys::private_key_enc,
                signing_keys::public_key,
                signing_keys::created_at,
                signing_keys::retire_after,
            ))
            .load(&mut *conn)?;
        let mut keys = Vec::with_capacity(rows.len());
        for SigningKeyRow { kid, algorithm, private_key_enc, public_key, created_at, retire_after } in rows {
            let private_key = cipher.decrypt(&private_key_enc)?;
            keys.push(SigningKeyRecord { kid, algorithm, private_key, public_key, created_at, retire_after });
        }
        Ok(keys)
    }
}
