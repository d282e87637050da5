//! Requests the simulator makes to the EMSP: the credentials handshake, pushes to its receiver
//! interfaces and command results. Every request carries the credentials token the EMSP gave us
//! (Base64 in 2.2.1), and in 2.2.1 fresh `X-Request-ID`/`X-Correlation-ID` and the
//! `OCPI-from/to-*` routing headers. Answers are unwrapped from the envelope; anything but HTTP 2xx
//! with a 1xxx status code is an error.

use reqwest::Method;
use serde_json::Value;

use crate::envelope::Envelope;
use crate::error::ClientError;
use crate::options::SimVersion;
use crate::state::SimState;
use crate::transport::authorization;

/// One request to the EMSP.
pub struct Call<'a> {
    pub method: Method,
    pub url: &'a str,
    pub token: &'a str,
    pub body: Option<&'a Value>,
    /// The EMSP's `(country_code, party_id)` when known, for the `OCPI-to-*` headers.
    pub to: Option<(&'a str, &'a str)>,
}

/// Sends the call and returns the envelope's `data` (`None` when there is none).
pub async fn send(state: &SimState, call: Call<'_>) -> Result<Option<Value>, ClientError> {
    let url = call.url;
    let mut request =
        state.http.request(call.method.clone(), url).header("Authorization", authorization(state.version, call.token));
    if state.version == SimVersion::V2_2_1 {
        let request_id = uuid::Uuid::new_v4().to_string();
        request = request
            .header("X-Request-ID", &request_id)
            .header("X-Correlation-ID", &request_id)
            .header("OCPI-from-country-code", &state.party.0)
            .header("OCPI-from-party-id", &state.party.1);
        if let Some((country_code, party_id)) = call.to {
            request = request.header("OCPI-to-country-code", country_code).header("OCPI-to-party-id", party_id);
        }
    }
    if let Some(body) = call.body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(|source| ClientError::Http { url: url.to_owned(), source })?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|source| ClientError::Http { url: url.to_owned(), source })?;
    if !status.is_success() {
        tracing::debug!(%url, status = status.as_u16(), body = %String::from_utf8_lossy(&bytes), "emsp refused");
        return Err(ClientError::Status { url: url.to_owned(), status: status.as_u16() });
    }
    let envelope: Envelope<Value> = serde_json::from_slice(&bytes)
        .map_err(|error| ClientError::Body { url: url.to_owned(), reason: error.to_string() })?;
    if !(1000..2000).contains(&envelope.status_code) {
        return Err(ClientError::Ocpi {
            url: url.to_owned(),
            code: envelope.status_code,
            message: envelope.status_message.unwrap_or_default(),
        });
    }
    Ok(envelope.data.filter(|data| !data.is_null()))
}

/// `base` and path segments joined with single slashes (endpoint URLs come with and without a
/// trailing slash).
pub fn join(base: &str, segments: &[&str]) -> String {
    let mut url = base.trim_end_matches('/').to_owned();
    for segment in segments {
        url.push('/');
        url.push_str(segment.trim_matches('/'));
    }
    url
}

/// Sends to a module of the registered EMSP: `{endpoint}/{segments...}`. Counts and logs failures
/// so a test can see them; the simulator carries on either way, as a CPO would.
pub async fn push(
    state: &SimState,
    module: &'static str,
    method: Method,
    segments: &[&str],
    body: &Value,
) -> Result<Option<Value>, ClientError> {
    let (url, token, to) = {
        let inner = state.inner.lock();
        let Some(peer) = &inner.peer else {
            tracing::debug!(module, "no emsp registered; push skipped");
            return Err(ClientError::NotRegistered);
        };
        let Some(endpoint) = peer.receiver(module) else {
            tracing::debug!(module, "the emsp has no receiver for this module; push skipped");
            return Err(ClientError::NoEndpoint(module));
        };
        let to = peer.country_code.clone().zip(peer.party_id.clone());
        (join(endpoint, segments), peer.token_theirs.clone(), to)
    };
    let call = Call {
        method: method.clone(),
        url: &url,
        token: &token,
        body: Some(body),
        to: to.as_ref().map(|(c, p)| (c.as_str(), p.as_str())),
    };
    let result = send(state, call).await;
    if let Err(error) = &result {
        tracing::warn!(%error, module, %method, "push to emsp failed");
    }
    result
}

/// POSTs a command result to the `response_url` the EMSP gave with the command.
pub async fn post_to(state: &SimState, url: &str, body: &Value) -> Result<Option<Value>, ClientError> {
    let (token, to) = {
        let inner = state.inner.lock();
        let Some(peer) = &inner.peer else { return Err(ClientError::NotRegistered) };
        (peer.token_theirs.clone(), peer.country_code.clone().zip(peer.party_id.clone()))
    };
    let call = Call {
        method: Method::POST,
        url,
        token: &token,
        body: Some(body),
        to: to.as_ref().map(|(c, p)| (c.as_str(), p.as_str())),
    };
    send(state, call).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_uses_single_slashes() {
        assert_eq!(join("http://e/ocpi/sessions/", &["NL", "SIM", "1"]), "http://e/ocpi/sessions/NL/SIM/1");
        assert_eq!(join("http://e/ocpi/cdrs", &[]), "http://e/ocpi/cdrs");
    }
}
