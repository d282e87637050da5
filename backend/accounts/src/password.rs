//! Passwords and emails: what we accept and how passwords are hashed.
//!
//! Argon2id with OWASP's first recommended setting (19 MiB memory, 2 passes, 1 lane): memory-hard,
//! so guessing stolen hashes on GPUs is slow, yet one hash costs a server only tens of
//! milliseconds. Passwords are 10 to 128 characters: no composition rules (OWASP, NIST 800-63B),
//! and the upper bound keeps hashing cost bounded for hostile input. Checking an unknown email
//! still hashes once against a dummy hash, so response time does not tell who has an account.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::error::AuthError;

pub(crate) const MIN_PASSWORD_CHARS: usize = 10;
pub(crate) const MAX_PASSWORD_CHARS: usize = 128;
const MAX_EMAIL_LEN: usize = 254;
const MAX_NAME_CHARS: usize = 200;

/// OWASP Password Storage Cheat Sheet, argon2id: m=19456 KiB, t=2, p=1.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// Hashes and checks passwords; holds the dummy hash for unknown emails.
#[derive(Clone)]
pub(crate) struct Passwords {
    argon2: Argon2<'static>,
    params: Params,
    dummy_hash: String,
}

impl Passwords {
    pub(crate) fn new() -> Result<Self, AuthError> {
        let params = Params::new(MEMORY_KIB, PASSES, LANES, Some(Params::DEFAULT_OUTPUT_LEN))
            .map_err(|error| AuthError::Config(format!("argon2 parameters: {error}")))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut passwords = Self { argon2, params, dummy_hash: String::new() };
        passwords.dummy_hash = passwords.hash(&emsp_store::generate_token())?;
        Ok(passwords)
    }

    /// Checks the policy (length) and returns the PHC string to store.
    pub(crate) fn hash_new(&self, password: &str) -> Result<String, AuthError> {
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(AuthError::WeakPassword(format!("use at least {MIN_PASSWORD_CHARS} characters")));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(AuthError::WeakPassword(format!("use at most {MAX_PASSWORD_CHARS} characters")));
        }
        self.hash(password)
    }

    fn hash(&self, password: &str) -> Result<String, AuthError> {
        let hash: PasswordHash = self
            .argon2
            .hash_password(password.as_bytes())
            .map_err(|error| AuthError::Config(format!("password hashing failed: {error}")))?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches `stored` (a PHC string). An unreadable stored hash counts as a
    /// mismatch and is logged: the user cannot log in, but nothing leaks to the caller.
    pub(crate) fn verify(&self, password: &str, stored: &str) -> bool {
        if password.chars().count() > MAX_PASSWORD_CHARS {
            return false;
        }
        let parsed = match PasswordHash::new(stored) {
            Ok(parsed) => parsed,
            Err(error) => {
                tracing::error!(%error, "stored password hash cannot be read");
                return false;
            }
        };
        self.argon2.verify_password(password.as_bytes(), &parsed).is_ok()
    }

    /// Spends one hash on nothing, as long as a real check takes (for unknown emails).
    pub(crate) fn verify_dummy(&self, password: &str) {
        let _ = self.verify(password, &self.dummy_hash);
    }

    /// Whether `stored` was made with other parameters than ours (then it is rehashed at login).
    pub(crate) fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else { return true };
        let same_algorithm = parsed.algorithm.as_str() == "argon2id";
        match Params::try_from(&parsed) {
            Ok(params) => {
                !same_algorithm
                    || params.m_cost() != self.params.m_cost()
                    || params.t_cost() != self.params.t_cost()
                    || params.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }
}

/// Trims and lower-cases an email and checks its shape: `local@domain.tld`, no spaces, at most
/// 254 characters. Whether the address receives mail is for a confirmation mail to find out.
pub(crate) fn normalize_email(email: &str) -> Result<String, AuthError> {
    let email = email.trim().to_lowercase();
    if email.len() > MAX_EMAIL_LEN || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::InvalidEmail);
    }
    let Some((local, domain)) = email.split_once('@') else { return Err(AuthError::InvalidEmail) };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(AuthError::InvalidEmail);
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-'))
    {
        return Err(AuthError::InvalidEmail);
    }
    Ok(email)
}

/// Trims a display name; blank means none.
pub(crate) fn normalize_name(name: Option<&str>) -> Result<Option<String>, AuthError> {
    let Some(name) = name.map(str::trim).filter(|name| !name.is_empty()) else { return Ok(None) };
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AuthError::InvalidName);
    }
    Ok(Some(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_salted() {
        let passwords = Passwords::new().unwrap();
        let hash = passwords.hash_new("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert_ne!(hash, passwords.hash_new("correct horse battery").unwrap(), "a fresh salt each time");
        assert!(passwords.verify("correct horse battery", &hash));
        assert!(!passwords.verify("correct horse battery!", &hash));
        assert!(!passwords.verify("anything", "not a phc string"));
        assert!(!passwords.needs_rehash(&hash));
        let weaker = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 1, 1, None).unwrap());
        let old: PasswordHash = weaker.hash_password(b"correct horse battery").unwrap();
        assert!(passwords.needs_rehash(&old.to_string()));
        assert!(passwords.verify("correct horse battery", &old.to_string()), "old hashes still verify");
    }

    #[test]
    fn password_length_is_bounded_both_ways() {
        let passwords = Passwords::new().unwrap();
        assert!(matches!(passwords.hash_new("short"), Err(AuthError::WeakPassword(m)) if m.contains("10")));
        assert!(passwords.hash_new(&"ä".repeat(10)).is_ok(), "characters, not bytes");
        assert!(matches!(passwords.hash_new(&"x".repeat(129)), Err(AuthError::WeakPassword(m)) if m.contains("128")));
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Ada.Lovelace@Example.COM ").unwrap(), "ada.lovelace@example.com");
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a@b@example.com", "ada@.com"]
        {
            assert!(matches!(normalize_email(bad), Err(AuthError::InvalidEmail)), "{bad:?}");
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(normalize_name(Some("  Ada ")).unwrap().as_deref(), Some("Ada"));
        assert_eq!(normalize_name(Some("   ")).unwrap(), None);
        assert_eq!(normalize_name(None).unwrap(), None);
        assert!(matches!(normalize_name(Some(&"n".repeat(201))), Err(AuthError::InvalidName)));
    }
}
