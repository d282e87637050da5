//! Who we are in the roaming network and how we talk to partners.

use std::time::Duration;

use emsp_domain::PartyId;

/// The roaming settings the server hands over from its configuration.
#[derive(Debug, Clone)]
pub struct RoamingConfig {
    /// Base URL partners reach us at, without a trailing slash (`EMSP_PUBLIC_URL`).
    pub public_url: String,
    /// Our country code and party id (`EMSP_PARTY`, e.g. `NL*EMS`).
    pub party: PartyId,
    /// Our company name in credentials (`EMSP_BUSINESS_NAME`).
    pub business_name: String,
    /// Our website in credentials, if any.
    pub website: Option<String>,
    /// Time limit of every call to a partner.
    pub request_timeout: Duration,
}

impl RoamingConfig {
    /// `{public_url}/ocpi/versions`: what partners are given to start a registration.
    pub fn versions_url(&self) -> String {
        format!("{}/ocpi/versions", self.public_url)
    }

    /// `{public_url}/ocpi/{version}`.
    pub fn version_url(&self, version: &str) -> String {
        format!("{}/ocpi/{version}", self.public_url)
    }
}
