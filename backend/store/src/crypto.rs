//! Credentials tokens at rest.
//!
//! Tokens partners use with us are only ever compared, so we keep a SHA-256 digest: they are 256-bit
//! random strings we generate (or long partner-chosen secrets), so a fast hash is enough, unlike
//! passwords. Tokens we use with partners must be sent again, so they are encrypted with AES-256-GCM
//! under a key from the environment (`EMSP_SECRET_KEY`): a stolen database alone reveals none.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{StoreError, StoreResult};

const NONCE_LEN: usize = 12;

/// The hex SHA-256 digest under which a partner's token is stored and looked up.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random credentials token: 32 bytes, URL-safe base64 (43 characters, within OCPI's 64).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Encrypts and decrypts the tokens we hold for partners.
#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCipher(..)")
    }
}

impl TokenCipher {
    /// A cipher from a base64-encoded 32-byte key (`openssl rand -base64 32`).
    pub fn from_base64(key: &str) -> StoreResult<Self> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| StoreError::Config("EMSP_SECRET_KEY is not valid base64".into()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Config("EMSP_SECRET_KEY must decode to exactly 32 bytes".into()))?;
        Ok(Self::from_key(&key))
    }

    pub fn from_key(key: &[u8; 32]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    /// A fresh random key, base64-encoded.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// `nonce || ciphertext+tag`, with a random nonce per message.
    pub fn encrypt(&self, plaintext: &str) -> StoreResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .map_err(|_| StoreError::Crypto("encryption failed".into()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn decrypt(&self, sealed: &[u8]) -> StoreResult<String> {
        if sealed.len() <= NONCE_LEN {
            return Err(StoreError::Crypto("sealed token is too short".into()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| StoreError::Crypto("cannot decrypt a stored token: was EMSP_SECRET_KEY changed?".into()))?;
        String::from_utf8(plaintext).map_err(|_| StoreError::Crypto("decrypted token is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_a_wrong_key() {
        let cipher = TokenCipher::from_base64(&TokenCipher::generate_key()).unwrap();
        let sealed = cipher.encrypt("token-c").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"token-c"), "plaintext must not appear");
        assert_eq!(cipher.decrypt(&sealed).unwrap(), "token-c");
        let other = TokenCipher::from_base64(&TokenCipher::generate_key()).unwrap();
        assert!(other.decrypt(&sealed).is_err());
        assert!(cipher.encrypt("x").unwrap() != cipher.encrypt("x").unwrap(), "nonces differ");
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(TokenCipher::from_base64("not base64!").is_err());
        assert!(TokenCipher::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
