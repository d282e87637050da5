//! The keys that sign access tokens.
//!
//! Ed25519 (JOSE `EdDSA`): small keys and signatures, fast to verify, and no parameter choices to
//! get wrong. Each key has a random `kid` put in every token header, so verification picks the key
//! by id. A rotation makes a new key the signer at once and gives the previous ones a retirement
//! date just past the longest life of a token they signed: until then they stay in the JWKS and
//! keep verifying, so nobody is logged out by a rotation. Private keys are stored sealed under
//! `EMSP_SECRET_KEY` (the store does that); in memory a key set is immutable and replaced whole.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rand::RngCore;
use serde::Serialize;

use emsp_store::SigningKeyRecord;

use crate::error::AuthError;

/// The one algorithm we sign with and accept.
pub(crate) const ALGORITHM: Algorithm = Algorithm::EdDSA;
const ALGORITHM_NAME: &str = "EdDSA";

/// A freshly generated key, in the form the store keeps.
pub(crate) struct GeneratedKey {
    pub(crate) kid: String,
    /// Base64 of the 32-byte Ed25519 seed (sealed by the store).
    pub(crate) private_key: String,
    /// Base64url (no padding) of the 32-byte public key: the JWK `x`.
    pub(crate) public_key: String,
}

pub(crate) fn generate_key() -> GeneratedKey {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let signing = SigningKey::from_bytes(&seed);
    GeneratedKey {
        kid: uuid::Uuid::new_v4().simple().to_string(),
        private_key: STANDARD.encode(seed),
        public_key: URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()),
    }
}

/// A key that verifies tokens.
pub(crate) struct VerifyingKey {
    pub(crate) decoding: DecodingKey,
    /// After this the key no longer verifies (tokens it signed have all expired).
    pub(crate) retire_after: Option<DateTime<Utc>>,
}

/// The signing key and every key that still verifies, with the JWKS that publishes them.
pub(crate) struct KeySet {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, VerifyingKey>,
    jwks: serde_json::Value,
    /// When the signing key was made (for scheduled rotation).
    signing_created_at: NaiveDateTime,
    /// When this set was read from the store (for the periodic reload).
    loaded_at: Instant,
}

#[derive(Serialize)]
struct Jwk<'a> {
    kty: &'static str,
    crv: &'static str,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    kid: &'a str,
    x: &'a str,
}

#[derive(Serialize)]
struct Jwks<'a> {
    keys: Vec<Jwk<'a>>,
}

impl KeySet {
    /// Builds the set from stored keys (newest first, as [`emsp_store::Store::signing_keys`] gives
    /// them). The signer is the newest key without a retirement date.
    pub(crate) fn from_records(records: &[SigningKeyRecord]) -> Result<Self, AuthError> {
        let current = records
            .iter()
            .find(|record| record.retire_after.is_none() && record.algorithm == ALGORITHM_NAME)
            .ok_or_else(|| AuthError::Config("no current token signing key".into()))?;
        let signing = encoding_key(current)?;
        let mut verifying = HashMap::new();
        let mut jwks = Jwks { keys: Vec::new() };
        for record in records {
            if record.algorithm != ALGORITHM_NAME {
                tracing::warn!(kid = %record.kid, algorithm = %record.algorithm, "signing key of an unsupported algorithm ignored");
                continue;
            }
            let public =
                URL_SAFE_NO_PAD.decode(&record.public_key).ok().filter(|bytes| bytes.len() == 32).ok_or_else(|| {
                    AuthError::Config(format!("public key of signing key {} is not 32 bytes", record.kid))
                })?;
            verifying.insert(
                record.kid.clone(),
                VerifyingKey {
                    decoding: DecodingKey::from_ed_der(&public),
                    retire_after: record.retire_after.map(|at| at.and_utc()),
                },
            );
            jwks.keys.push(Jwk {
                kty: "OKP",
                crv: "Ed25519",
                alg: ALGORITHM_NAME,
                use_: "sig",
                kid: &record.kid,
                x: &record.public_key,
            });
        }
        let jwks = serde_json::to_value(&jwks).map_err(|error| AuthError::Config(format!("JWKS: {error}")))?;
        Ok(Self {
            signing_kid: current.kid.clone(),
            signing,
            verifying,
            jwks,
            signing_created_at: current.created_at,
            loaded_at: Instant::now(),
        })
    }

    pub(crate) fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    pub(crate) fn signing_created_at(&self) -> NaiveDateTime {
        self.signing_created_at
    }

    pub(crate) fn age(&self) -> Duration {
        self.loaded_at.elapsed()
    }

    /// The same set as if it had been loaded `by` earlier.
    #[cfg(test)]
    pub(crate) fn aged(mut self, by: Duration) -> Self {
        self.loaded_at = self.loaded_at.checked_sub(by).unwrap_or(self.loaded_at);
        self
    }

    /// Signs `claims` with the current key, `kid` in the header.
    pub(crate) fn sign<C: Serialize>(&self, claims: &C) -> Result<String, AuthError> {
        let mut header = jsonwebtoken::Header::new(ALGORITHM);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing)
            .map_err(|error| AuthError::Config(format!("cannot sign an access token: {error}")))
    }

    pub(crate) fn verifying(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }

    pub(crate) fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }
}

fn encoding_key(record: &SigningKeyRecord) -> Result<EncodingKey, AuthError> {
    let unreadable = || AuthError::Config(format!("private key of signing key {} cannot be read", record.kid));
    let seed: [u8; 32] =
        STANDARD.decode(&record.private_key).map_err(|_| unreadable())?.try_into().map_err(|_| unreadable())?;
    let der = SigningKey::from_bytes(&seed).to_pkcs8_der().map_err(|_| unreadable())?;
    Ok(EncodingKey::from_ed_der(der.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &GeneratedKey, retire_after: Option<NaiveDateTime>) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: key.kid.clone(),
            algorithm: ALGORITHM_NAME.into(),
            private_key: key.private_key.clone(),
            public_key: key.public_key.clone(),
            created_at: Utc::now().naive_utc(),
            retire_after,
        }
    }

    #[test]
    fn the_newest_current_key_signs_and_all_are_published() {
        let (new, old) = (generate_key(), generate_key());
        let retire = Some(Utc::now().naive_utc());
        let set = KeySet::from_records(&[record(&new, None), record(&old, retire)]).unwrap();
        assert_eq!(set.signing_kid(), new.kid);
        let keys = set.jwks()["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0]["kid"], new.kid.as_str());
        assert_eq!(keys[0]["kty"], "OKP");
        assert_eq!(keys[0]["crv"], "Ed25519");
        assert_eq!(keys[0]["alg"], "EdDSA");
        assert!(keys.iter().all(|k| k.get("d").is_none()), "no private part in the JWKS");
        assert!(set.verifying(&old.kid).unwrap().retire_after.is_some());

        let token = set.sign(&serde_json::json!({"sub": "u"})).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(new.kid.as_str()));
    }

    #[test]
    fn a_set_without_a_current_key_is_refused() {
        let key = generate_key();
        let retired = record(&key, Some(Utc::now().naive_utc()));
        assert!(matches!(KeySet::from_records(&[retired]), Err(AuthError::Config(_))));
        let mut broken = record(&key, None);
        broken.private_key = "not base64!".into();
        assert!(KeySet::from_records(&[broken]).is_err());
    }
}
