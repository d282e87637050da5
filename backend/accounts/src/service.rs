//! The accounts service: what the server and the GraphQL layer call.
//!
//! Everything but [`Accounts::verify`] and [`Accounts::jwks`] may hash a password or touch the
//! database, so it is synchronous and async callers run it in `spawn_blocking`. `verify` only
//! reads the in-memory key set. The service is a cheap `Clone` (one `Arc`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;

use emsp_store::{NewSigningKey, NewUser, RefreshRotation, Role, Store, StoreError, UserRecord};

use crate::config::AuthConfig;
use crate::error::AuthError;
use crate::keys::{self, KeySet};
use crate::password::{self, Passwords};
use crate::tokens::{self, Claims, LEEWAY_S};

/// How old the in-memory key set may get before a token-issuing call reads the store again, to
/// pick up a rotation made by another replica (and to rotate when due).
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// A user as the API shows it (no password hash, no internal flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<UserRecord> for User {
    fn from(record: UserRecord) -> Self {
        Self {
            id: record.id,
            email: record.email,
            name: record.name,
            role: record.role,
            created_at: record.created_at.and_utc(),
        }
    }
}

/// What a successful register, login or refresh returns. `Debug` hides both tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthPayload {
    /// A JWT for `Authorization: Bearer`, valid for `expires_in` seconds.
    pub access_token: String,
    /// An opaque token for [`Accounts::refresh`] and [`Accounts::logout`]; single use.
    pub refresh_token: String,
    pub expires_in: u64,
    pub user: User,
}

impl std::fmt::Debug for AuthPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPayload")
            .field("access_token", &"***")
            .field("refresh_token", &"***")
            .field("expires_in", &self.expires_in)
            .field("user", &self.user)
            .finish()
    }
}

/// Accounts and tokens. Clone it freely.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: AuthConfig,
    passwords: Passwords,
    validation: jsonwebtoken::Validation,
    keys: RwLock<Arc<KeySet>>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Accounts {
    /// Checks the configuration and loads the signing keys, creating the first one on a new
    /// database and rotating one older than `key_rotation`. Needs the store's cipher
    /// (`EMSP_SECRET_KEY`). Hashes one dummy password (for unknown-email logins).
    pub fn new(store: Store, config: AuthConfig) -> Result<Self, AuthError> {
        config.validate()?;
        let passwords = Passwords::new()?;
        let validation = tokens::validation(&config);
        let records = store.signing_keys(Utc::now())?;
        if !records.iter().any(|record| record.retire_after.is_none()) {
            add_key(&store, &config)?;
        }
        let keys = load_keys(&store)?;
        let accounts =
            Self { inner: Arc::new(Inner { store, config, passwords, validation, keys: RwLock::new(Arc::new(keys)) }) };
        accounts.rotate_keys_if_due()?;
        Ok(accounts)
    }

    /// Creates a driver account and logs it in.
    pub fn register(&self, email: &str, password: &str, name: Option<&str>) -> Result<AuthPayload, AuthError> {
        let record = self.create_record(email, password, name, Role::Driver)?;
        tracing::info!(user_id = %record.id, "driver registered");
        self.issue(User::from(record))
    }

    /// Creates an account with any role, without logging it in (`emsp user create --role ops`).
    pub fn create_user(&self, email: &str, password: &str, name: Option<&str>, role: Role) -> Result<User, AuthError> {
        let record = self.create_record(email, password, name, role)?;
        tracing::info!(user_id = %record.id, role = %role, "user created");
        Ok(User::from(record))
    }

    fn create_record(
        &self,
        email: &str,
        password: &str,
        name: Option<&str>,
        role: Role,
    ) -> Result<UserRecord, AuthError> {
        let email = password::normalize_email(email)?;
        let name = password::normalize_name(name)?;
        let password_hash = self.inner.passwords.hash_new(password)?;
        let new = NewUser { email: &email, name: name.as_deref(), password_hash: &password_hash, role };
        match self.inner.store.create_user(&new) {
            Ok(record) => Ok(record),
            Err(StoreError::Conflict(_)) => Err(AuthError::EmailTaken),
            Err(error) => Err(error.into()),
        }
    }

    /// Checks email and password and starts a session (a new refresh-token family). An unknown
    /// email and a wrong password fail alike, after the same hashing work.
    pub fn login(&self, email: &str, password: &str) -> Result<AuthPayload, AuthError> {
        let passwords = &self.inner.passwords;
        let record = match password::normalize_email(email) {
            Ok(email) => self.inner.store.find_user_by_email(&email)?,
            Err(_) => None,
        };
        let Some(record) = record else {
            passwords.verify_dummy(password);
            return Err(AuthError::InvalidCredentials);
        };
        if !passwords.verify(password, &record.password_hash) {
            tracing::info!(user_id = %record.id, "login with a wrong password");
            return Err(AuthError::InvalidCredentials);
        }
        // Only after the right password: a disabled account is not revealed to guessers.
        if record.disabled {
            return Err(AuthError::Disabled);
        }
        if passwords.needs_rehash(&record.password_hash) {
            self.rehash(&record.id, password);
        }
        self.issue(User::from(record))
    }

    /// Stronger parameters than the stored hash's: store a new hash. A failure only delays it.
    fn rehash(&self, user_id: &str, password: &str) {
        let outcome = self
            .inner
            .passwords
            .hash_new(password)
            .and_then(|hash| self.inner.store.set_password_hash(user_id, &hash).map_err(AuthError::from));
        if let Err(error) = outcome {
            tracing::warn!(user_id, %error, "password rehash failed");
        }
    }

    /// Spends a refresh token and returns a new pair. A token presented a second time revokes
    /// its whole family (every session descended from that login) and fails with
    /// [`AuthError::RefreshReused`]: one of the two holders is a thief, and we cannot tell which.
    pub fn refresh(&self, refresh_token: &str) -> Result<AuthPayload, AuthError> {
        let now = Utc::now();
        let replacement = emsp_store::generate_token();
        let expires_at = now + chrono_duration(self.inner.config.refresh_ttl);
        let outcome = self.inner.store.rotate_refresh_token(refresh_token, &replacement, expires_at, now)?;
        let (user_id, family_id) = match outcome {
            RefreshRotation::Rotated { user_id, family_id } => (user_id, family_id),
            RefreshRotation::Reused { user_id, family_id } => {
                tracing::warn!(%user_id, %family_id, "spent refresh token presented again; session revoked");
                return Err(AuthError::RefreshReused);
            }
            RefreshRotation::Revoked => return Err(AuthError::InvalidToken("refresh token revoked".into())),
            RefreshRotation::Expired => return Err(AuthError::InvalidToken("refresh token expired".into())),
            RefreshRotation::Unknown => return Err(AuthError::InvalidToken("unknown refresh token".into())),
        };
        let record = self.inner.store.get_user(&user_id)?;
        let Some(record) = record.filter(|record| !record.disabled) else {
            tracing::info!(%user_id, %family_id, "refresh for a disabled or deleted user refused");
            self.inner.store.revoke_refresh_family(&replacement)?;
            return Err(AuthError::Disabled);
        };
        let access_token = self.sign_access_token(&record.id, record.role, &record.email, now)?;
        Ok(AuthPayload {
            access_token,
            refresh_token: replacement,
            expires_in: self.inner.config.access_ttl.as_secs(),
            user: User::from(record),
        })
    }

    /// Ends the session of this refresh token (its whole family). Unknown tokens are ignored, so
    /// logging out twice is harmless. Access tokens already issued live on until they expire.
    pub fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        self.inner.store.revoke_refresh_family(refresh_token)?;
        Ok(())
    }

    /// Checks an access token (signature, key, algorithm, issuer, audience, expiry) without the
    /// database and returns its claims.
    pub fn verify(&self, access_token: &str) -> Result<Claims, AuthError> {
        let keys = self.inner.keys.read().clone();
        tokens::verify(access_token, &keys, &self.inner.validation)
    }

    pub fn user(&self, id: &str) -> Result<Option<User>, AuthError> {
        Ok(self.inner.store.get_user(id)?.map(User::from))
    }

    /// Disables or enables a user; `false` when there is no such user. Disabling revokes the
    /// user's refresh tokens; its access tokens expire within `access_ttl`.
    pub fn set_disabled(&self, id: &str, disabled: bool) -> Result<bool, AuthError> {
        Ok(self.inner.store.set_user_disabled(id, disabled)?)
    }

    /// The public keys for `GET /.well-known/jwks.json`: the signing key and every previous key
    /// that still verifies.
    pub fn jwks(&self) -> serde_json::Value {
        self.inner.keys.read().jwks().clone()
    }

    /// Makes a new key the signer from now on. Previous keys keep verifying (and stay in the JWKS)
    /// until every token they signed has expired.
    pub fn rotate_keys(&self) -> Result<(), AuthError> {
        let kid = add_key(&self.inner.store, &self.inner.config)?;
        tracing::info!(%kid, "token signing key rotated");
        self.reload_keys()
    }

    /// Rotates when the signing key is older than `key_rotation`; returns whether it did. The
    /// server calls this on a schedule.
    pub fn rotate_keys_if_due(&self) -> Result<bool, AuthError> {
        let created_at = self.inner.keys.read().signing_created_at().and_utc();
        if Utc::now() - created_at < chrono_duration(self.inner.config.key_rotation) {
            return Ok(false);
        }
        self.rotate_keys()?;
        Ok(true)
    }

    /// Reads the keys from the store again: another replica may have rotated them. Logins and
    /// refreshes do this by themselves once a minute; a replica that only verifies should be
    /// reloaded on a schedule (every minute), since until then it refuses tokens signed by a key
    /// it has not seen.
    pub fn reload_keys(&self) -> Result<(), AuthError> {
        let keys = load_keys(&self.inner.store)?;
        *self.inner.keys.write() = Arc::new(keys);
        Ok(())
    }

    /// Deletes refresh tokens that expired over a day ago (they can only be refused anyway);
    /// returns how many. For a daily maintenance task.
    pub fn prune_expired_refresh_tokens(&self) -> Result<usize, AuthError> {
        Ok(self.inner.store.prune_refresh_tokens(Utc::now() - chrono::Duration::days(1))?)
    }

    /// The id of the key that signs new tokens.
    pub fn signing_kid(&self) -> String {
        self.inner.keys.read().signing_kid().to_owned()
    }

    fn issue(&self, user: User) -> Result<AuthPayload, AuthError> {
        let now = Utc::now();
        let refresh_token = emsp_store::generate_token();
        let expires_at = now + chrono_duration(self.inner.config.refresh_ttl);
        self.inner.store.create_refresh_token(&user.id, &refresh_token, expires_at)?;
        let access_token = self.sign_access_token(&user.id, user.role, &user.email, now)?;
        Ok(AuthPayload { access_token, refresh_token, expires_in: self.inner.config.access_ttl.as_secs(), user })
    }

    /// Signs with the current key. Only token-issuing calls, which touch the database anyway, may
    /// refresh a stale key set here; `verify` never does.
    fn sign_access_token(
        &self,
        user_id: &str,
        role: Role,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<String, AuthError> {
        if self.inner.keys.read().age() >= KEY_RELOAD_INTERVAL {
            self.reload_keys()?;
            self.rotate_keys_if_due()?;
        }
        let claims = Claims::new(&self.inner.config, user_id, role, email, now);
        self.inner.keys.read().sign(&claims)
    }
}

/// Generates a key and stores it as the signer; the keys it replaces retire once every token
/// they may have signed has expired (access lifetime plus the verification leeway, plus a minute).
fn add_key(store: &Store, config: &AuthConfig) -> Result<String, AuthError> {
    let key = keys::generate_key();
    let retire_after =
        Utc::now() + chrono_duration(config.access_ttl) + chrono_duration(Duration::from_secs(LEEWAY_S + 60));
    let new =
        NewSigningKey { kid: &key.kid, algorithm: "EdDSA", private_key: &key.private_key, public_key: &key.public_key };
    store.add_signing_key(&new, retire_after)?;
    Ok(key.kid)
}

fn load_keys(store: &Store) -> Result<KeySet, AuthError> {
    KeySet::from_records(&store.signing_keys(Utc::now())?)
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use emsp_store::testing::TestDb;
    use serde_json::json;

    use super::*;

    fn accounts(db: &TestDb) -> Accounts {
        Accounts::new(db.store().clone(), AuthConfig::default()).unwrap()
    }

    /// Signs arbitrary claims with the service's current key (what a forger cannot do).
    fn sign(accounts: &Accounts, claims: &serde_json::Value) -> String {
        accounts.inner.keys.read().sign(claims).unwrap()
    }

    fn claims(accounts: &Accounts) -> serde_json::Value {
        let now = Utc::now().timestamp();
        let config = &accounts.inner.config;
        json!({
            "sub": "user-1", "role": "DRIVER", "email": "ada@example.com",
            "iss": config.issuer, "aud": config.audience,
            "exp": now + 600, "nbf": now, "iat": now, "jti": "j1",
        })
    }

    fn refused_because(accounts: &Accounts, token: &str) -> String {
        match accounts.verify(token) {
            Err(AuthError::InvalidToken(reason)) => reason,
            other => panic!("expected an invalid token, got {other:?}"),
        }
    }

    #[test]
    fn a_well_formed_token_verifies() {
        let db = TestDb::sqlite();
        let accounts = accounts(&db);
        let verified = accounts.verify(&sign(&accounts, &claims(&accounts))).unwrap();
        assert_eq!(verified.sub, "user-1");
        assert_eq!(verified.role, Role::Driver);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let db = TestDb::sqlite();
        let accounts = accounts(&db);
        let mut expired = claims(&accounts);
        let past = Utc::now().timestamp() - 3600;
        expired["exp"] = json!(past);
        expired["nbf"] = json!(past - 900);
        expired["iat"] = json!(past - 900);
        assert_eq!(refused_because(&accounts, &sign(&accounts, &expired)), "expired");
        let mut just_expired = claims(&accounts);
        just_expired["exp"] = json!(Utc::now().timestamp() - 5);
        assert!(accounts.verify(&sign(&accounts, &just_expired)).is_ok(), "within the clock-skew leeway");
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let db = TestDb::sqlite();
        let accounts = accounts(&db);
        let mut early = claims(&accounts);
        early["nbf"] = json!(Utc::now().timestamp() + 600);
        assert_eq!(refused_because(&accounts, &sign(&accounts, &early)), "not valid yet");
    }

    #[test]
    fn required_claims_must_be_present() {
        let db = TestDb::sqlite();
        let accounts = accounts(&db);
        for claim in ["exp", "nbf", "iss", "aud", "sub"] {
            let mut partial = claims(&accounts);
            partial.as_object_mut().unwrap().remove(claim);
            let reason = refused_because(&accounts, &sign(&accounts, &partial));
            // Refused by the claim check or, for claims `Claims` needs, already when reading it.
            assert!(reason.contains("missing") && reason.contains(claim), "{claim}: {reason}");
        }
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        let db = TestDb::sqlite();
        let accounts = accounts(&db);
        let mut other_audience = claims(&accounts);
        other_audience["aud"] = json!("another-api");
        assert_eq!(refused_because(&accounts, &sign(&accounts, &other_audience)), "wrong audience");
        let mut other_issuer = claims(&accounts);
        other_issuer["iss"] = json!("https://evil.example");
        assert_eq!(refused_because(&accounts, &sign(&accounts, &other_issuer)), "wrong issuer");
    }

    fn unsigned(header: &serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn alg_none_and_hs256_with_the_public_key_are_refused() {
        let db = TestDb::sqlite();
        let accounts = accounts(&db);
        let kid = accounts.signing_kid();
        let none = unsigned(&json!({"alg": "none", "typ": "JWT", "kid": kid}), &claims(&accounts), b"");
        assert!(refused_because(&accounts, &none).starts_with("malformed"), "alg none does not even parse");

        // The classic confusion attack: HMAC keyed with the (public) verification key.
        let public = accounts.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid);
        let forged = jsonwebtoken::encode(
            &header,
            &claims(&accounts),
            &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert_eq!(refused_because(&accounts, &forged), "algorithm HS256 is not accepted");
    }

    #[test]
    fn tokens_without_or_with_an_unknown_key_id_are_refused() {
        let db = TestDb::sqlite();
        let accounts = accounts(&db);
        let token = sign(&accounts, &claims(&accounts));
        let (_, rest) = token.split_once('.').unwrap();
        let no_kid = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA"}).to_string()));
        assert_eq!(refused_because(&accounts, &no_kid), "no key id");
        let other_kid = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA", "kid": "k0"}).to_string()));
        assert_eq!(refused_because(&accounts, &other_kid), "unknown key id k0");
        assert!(refused_because(&accounts, "not.a.token").starts_with("malformed"));
        assert!(refused_because(&accounts, "").starts_with("malformed"));
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let db = TestDb::sqlite();
        let accounts = accounts(&db);
        let token = sign(&accounts, &claims(&accounts));
        let parts: Vec<&str> = token.split('.').collect();
        let mut elevated = claims(&accounts);
        elevated["role"] = json!("OPS");
        let payload = URL_SAFE_NO_PAD.encode(elevated.to_string());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_eq!(refused_because(&accounts, &tampered), "bad signature");
    }

    #[test]
    fn a_key_past_its_retirement_no_longer_verifies() {
        let db = TestDb::sqlite();
        let accounts = accounts(&db);
        let old_token = sign(&accounts, &claims(&accounts));
        accounts.rotate_keys().unwrap();
        assert!(accounts.verify(&old_token).is_ok());
        // Age the retirement date as if the tokens of the old key had all expired.
        {
            let mut keys = accounts.inner.keys.write();
            let mut records = db.store().signing_keys(Utc::now()).unwrap();
            for record in &mut records {
                if record.retire_after.is_some() {
                    record.retire_after = Some((Utc::now() - chrono::Duration::seconds(1)).naive_utc());
                }
            }
            *keys = Arc::new(KeySet::from_records(&records).unwrap());
        }
        assert!(refused_because(&accounts, &old_token).ends_with("is retired"));
    }

    #[test]
    fn an_old_signing_key_is_rotated_at_start() {
        let db = TestDb::sqlite();
        let config = AuthConfig { key_rotation: Duration::from_secs(16 * 60), ..AuthConfig::default() };
        let first = Accounts::new(db.store().clone(), config.clone()).unwrap();
        assert!(!first.rotate_keys_if_due().unwrap(), "a fresh key is not due");
        let again = Accounts::new(db.store().clone(), config).unwrap();
        assert_eq!(again.signing_kid(), first.signing_kid(), "a second start reuses the stored key");
    }

    #[test]
    fn issuing_tokens_picks_up_a_rotation_made_by_another_replica() {
        let db = TestDb::sqlite();
        let rotating = accounts(&db);
        let replica = accounts(&db);
        replica.register("ada@example.com", "correct horse battery", None).unwrap();
        rotating.rotate_keys().unwrap();
        let fresh = rotating.login("ada@example.com", "correct horse battery").unwrap();
        assert!(replica.verify(&fresh.access_token).is_err(), "the replica has not seen the new key yet");

        // A minute later the replica's next login reads the keys again.
        {
            let mut keys = replica.inner.keys.write();
            let mut before_rotation = db.store().signing_keys(Utc::now()).unwrap().remove(1);
            before_rotation.retire_after = None;
            *keys = Arc::new(KeySet::from_records(&[before_rotation]).unwrap().aged(KEY_RELOAD_INTERVAL));
        }
        let login = replica.login("ada@example.com", "correct horse battery").unwrap();
        assert_eq!(replica.signing_kid(), rotating.signing_kid());
        assert!(replica.verify(&fresh.access_token).is_ok());
        assert!(rotating.verify(&login.access_token).is_ok());
    }

    #[test]
    fn a_signing_key_older_than_the_rotation_period_is_replaced() {
        let db = TestDb::sqlite();
        let config = AuthConfig {
            access_ttl: Duration::from_secs(1),
            key_rotation: Duration::from_secs(2),
            ..AuthConfig::default()
        };
        let first = Accounts::new(db.store().clone(), config.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(2100));
        let restarted = Accounts::new(db.store().clone(), config).unwrap();
        assert_ne!(restarted.signing_kid(), first.signing_kid(), "rotated at start");
        assert_eq!(restarted.jwks()["keys"].as_array().unwrap().len(), 2, "the old key is still published");
        assert!(!restarted.rotate_keys_if_due().unwrap());
    }

    #[test]
    fn a_hash_with_weaker_parameters_is_redone_at_login() {
        use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
        let db = TestDb::sqlite();
        let accounts = accounts(&db);
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 1, 1, None).unwrap());
        let old_hash = weak.hash_password(b"correct horse battery").unwrap().to_string();
        let new = NewUser { email: "ada@example.com", name: None, password_hash: &old_hash, role: Role::Driver };
        let user = db.store().create_user(&new).unwrap();
        accounts.login("ada@example.com", "correct horse battery").unwrap();
        let stored = db.store().get_user(&user.id).unwrap().unwrap().password_hash;
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        accounts.login("ada@example.com", "correct horse battery").unwrap();
    }

    #[test]
    fn an_expired_refresh_token_is_refused() {
        let db = TestDb::sqlite();
        let config = AuthConfig {
            access_ttl: Duration::from_secs(1),
            refresh_ttl: Duration::from_secs(2),
            ..AuthConfig::default()
        };
        let accounts = Accounts::new(db.store().clone(), config).unwrap();
        let login = accounts.register("ada@example.com", "correct horse battery", None).unwrap();
        assert_eq!(login.expires_in, 1);
        std::thread::sleep(Duration::from_millis(2100));
        assert!(matches!(
            accounts.refresh(&login.refresh_token),
            Err(AuthError::InvalidToken(reason)) if reason == "refresh token expired"
        ));
    }

    #[test]
    fn a_store_without_a_secret_key_cannot_keep_signing_keys() {
        let folder = std::env::temp_dir().join(format!("emsp-accounts-nokey-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&folder).unwrap();
        let url = emsp_store::DatabaseUrl::parse(&format!("sqlite://{}", folder.join("db.sqlite").display())).unwrap();
        let store = Store::open(emsp_store::StoreOptions::new(url)).unwrap();
        store.migrate().unwrap();
        let err = Accounts::new(store, AuthConfig::default()).unwrap_err();
        assert!(err.to_string().contains("EMSP_SECRET_KEY"), "{err}");
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
