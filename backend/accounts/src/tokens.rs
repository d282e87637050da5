//! Access tokens: the claims we put in them and the rules a token must pass.
//!
//! Verification is pure CPU (one Ed25519 check) against the in-memory key set: no database on
//! the hot path. The algorithm is pinned: the header must say `EdDSA`, so `alg: none`, HS256 with
//! the public key as the secret, or any other algorithm is refused before any key is used. `iss`,
//! `aud`, `exp`, `nbf` and `sub` must be present and right; a small leeway absorbs clock skew
//! between replicas.

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::error::AuthError;
use crate::keys::{ALGORITHM, KeySet};
use emsp_store::Role;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub(crate) const LEEWAY_S: u64 = 30;

/// What an access token says, as checked by [`crate::Accounts::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub role: Role,
    pub email: String,
    pub iss: String,
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// A unique id of this token (for logs and, later, a deny list).
    pub jti: String,
}

impl Claims {
    pub(crate) fn new(config: &AuthConfig, user_id: &str, role: Role, email: &str, now: DateTime<Utc>) -> Self {
        let iat = now.timestamp();
        let ttl = i64::try_from(config.access_ttl.as_secs()).unwrap_or(i64::MAX);
        Self {
            sub: user_id.to_owned(),
            role,
            email: email.to_owned(),
            iss: config.issuer.clone(),
            aud: config.audience.clone(),
            exp: iat.saturating_add(ttl),
            nbf: iat,
            iat,
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// The checks every access token must pass, built once.
pub(crate) fn validation(config: &AuthConfig) -> Validation {
    let mut validation = Validation::new(ALGORITHM);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_S;
    validation
}

/// Checks `token` against the key set and the rules; returns its claims.
pub(crate) fn verify(token: &str, keys: &KeySet, validation: &Validation) -> Result<Claims, AuthError> {
    let header: Header = jsonwebtoken::decode_header(token).map_err(|error| refused(&error))?;
    if header.alg != ALGORITHM {
        return Err(AuthError::InvalidToken(format!("algorithm {:?} is not accepted", header.alg)));
    }
    let kid = header.kid.ok_or_else(|| AuthError::InvalidToken("no key id".into()))?;
    let key = keys.verifying(&kid).ok_or_else(|| AuthError::InvalidToken(format!("unknown key id {kid}")))?;
    if key.retire_after.is_some_and(|retire_after| retire_after < Utc::now()) {
        return Err(AuthError::InvalidToken(format!("key {kid} is retired")));
    }
    let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, validation).map_err(|error| refused(&error))?;
    Ok(data.claims)
}

fn refused(error: &jsonwebtoken::errors::Error) -> AuthError {
    let reason = match error.kind() {
        ErrorKind::ExpiredSignature => "expired".to_owned(),
        ErrorKind::ImmatureSignature => "not valid yet".to_owned(),
        ErrorKind::InvalidSignature => "bad signature".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience".to_owned(),
        ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "algorithm not accepted".to_owned()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        ErrorKind::InvalidClaimFormat(claim) => format!("malformed claim {claim}"),
        _ => format!("malformed ({error})"),
    };
    AuthError::InvalidToken(reason)
}
