//! Settings of token issuing. Access tokens cannot be revoked (they are checked without the
//! database), so their lifetime is capped at 15 minutes: that is how long a logged-out or
//! disabled user may still be let in.

use std::time::Duration;

use crate::error::AuthError;

/// The longest access-token lifetime accepted.
pub const MAX_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);

/// How access and refresh tokens are issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `iss` of every access token, checked on verification (our public URL).
    pub issuer: String,
    /// `aud` of every access token, checked on verification (the driver API).
    pub audience: String,
    /// Lifetime of access tokens; at most 15 minutes, default 15 minutes.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token from its issue; each rotation starts a new one. Default 30 days.
    pub refresh_ttl: Duration,
    /// Age at which the signing key is replaced by [`crate::Accounts::rotate_keys_if_due`]. Default
    /// 30 days.
    pub key_rotation: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "emsp".into(),
            audience: "emsp-api".into(),
            access_ttl: MAX_ACCESS_TTL,
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            key_rotation: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl AuthConfig {
    pub(crate) fn validate(&self) -> Result<(), AuthError> {
        if self.issuer.trim().is_empty() || self.audience.trim().is_empty() {
            return Err(AuthError::Config("issuer and audience must not be empty".into()));
        }
        if self.access_ttl < Duration::from_secs(1) || self.access_ttl > MAX_ACCESS_TTL {
            return Err(AuthError::Config(format!(
                "access token lifetime must be between 1 s and {} s, not {} s",
                MAX_ACCESS_TTL.as_secs(),
                self.access_ttl.as_secs()
            )));
        }
        if self.refresh_ttl <= self.access_ttl {
            return Err(AuthError::Config("refresh token lifetime must exceed the access token lifetime".into()));
        }
        if self.key_rotation <= self.access_ttl {
            return Err(AuthError::Config("key rotation period must exceed the access token lifetime".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_limits_hold() {
        assert!(AuthConfig::default().validate().is_ok());
        let long = AuthConfig { access_ttl: Duration::from_secs(16 * 60), ..AuthConfig::default() };
        assert!(matches!(long.validate(), Err(AuthError::Config(_))));
        let zero = AuthConfig { access_ttl: Duration::ZERO, ..AuthConfig::default() };
        assert!(zero.validate().is_err());
        let no_issuer = AuthConfig { issuer: " ".into(), ..AuthConfig::default() };
        assert!(no_issuer.validate().is_err());
    }
}
