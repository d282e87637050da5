//! Our HTTP client for partners: authentication per version, OCPI headers, the envelope, paging
//! headers, and a time limit on every call.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use emsp_domain::PartyId;
use emsp_ocpi::{Envelope, OcpiVersion};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::RoamingError;

/// Longest piece of a partner's error body kept in an error message.
const BODY_EXCERPT: usize = 300;

/// How the token goes into `Authorization: Token ...`: OCPI 2.2+ Base64-encodes it, 2.1.1 does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEncoding {
    Base64,
    Plain,
}

impl TokenEncoding {
    /// The encoding the version prescribes, unless the partner's setting (`base64`/`plain`) overrides it.
    pub fn choose(setting: Option<&str>, version: Option<OcpiVersion>) -> Self {
        match setting.map(str::to_ascii_lowercase).as_deref() {
            Some("plain") => TokenEncoding::Plain,
            Some("base64") => TokenEncoding::Base64,
            _ => match version {
                Some(OcpiVersion::V2_1_1) => TokenEncoding::Plain,
                _ => TokenEncoding::Base64,
            },
        }
    }

    pub fn header_value(self, token: &str) -> String {
        match self {
            TokenEncoding::Base64 => format!("Token {}", STANDARD.encode(token)),
            TokenEncoding::Plain => format!("Token {token}"),
        }
    }
}

/// Who we call and with which credentials.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub token: &'a str,
    pub encoding: TokenEncoding,
    /// The party the request is for (routing headers through a hub).
    pub to: Option<&'a PartyId>,
}

/// A successful answer: the envelope's data and the paging headers.
#[derive(Debug)]
pub struct Page<T> {
    pub data: T,
    pub next: Option<String>,
    pub total_count: Option<u64>,
    pub limit: Option<u64>,
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OcpiClient {
    http: reqwest::Client,
    from: PartyId,
}

impl OcpiClient {
    pub fn new(timeout: Duration, from: PartyId) -> Result<Self, RoamingError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("emsp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RoamingError::Unreachable { url: String::new(), reason: e.to_string() })?;
        Ok(Self { http, from })
    }

    /// `GET url` and the envelope's data.
    pub async fn get<T: DeserializeOwned>(&self, url: &str, target: &Target<'_>) -> Result<Page<T>, RoamingError> {
        let (headers, envelope) = self.call::<(), T>(Method::GET, url, target, None).await?;
        let data = envelope.data.ok_or_else(|| RoamingError::Malformed {
            url: url.to_owned(),
            reason: "the envelope has no data".into(),
        })?;
        Ok(Page {
            data,
            next: next_link(&headers),
            total_count: header_number(&headers, "x-total-count"),
            limit: header_number(&headers, "x-limit"),
        })
    }

    /// Sends `body` with `method`; returns the envelope's data, if any.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        target: &Target<'_>,
        body: &B,
    ) -> Result<Option<T>, RoamingError> {
        let (_, envelope) = self.call(method, url, target, Some(body)).await?;
        Ok(envelope.data)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        target: &Target<'_>,
        body: Option<&B>,
    ) -> Result<(HeaderMap, Envelope<T>), RoamingError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut request = self
            .http
            .request(method.clone(), url)
            .header("Authorization", target.encoding.header_value(target.token))
            .header("X-Request-ID", &request_id)
            .header("X-Correlation-ID", &request_id)
            .header("OCPI-from-country-code", self.from.country_code.as_str())
            .header("OCPI-from-party-id", self.from.party_id.as_str());
        if let Some(to) = target.to {
            request = request
                .header("OCPI-to-country-code", to.country_code.as_str())
                .header("OCPI-to-party-id", to.party_id.as_str());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        tracing::debug!(%method, url, request_id, "calling partner");
        // A kept-alive connection the partner closed just as we reused it fails before the
        // request reached it: an idempotent request is sent once more, on a new connection.
        let again = if is_idempotent(&method) { request.try_clone() } else { None };
        let response = match (request.send().await, again) {
            (Ok(response), _) => response,
            (Err(error), Some(again)) if is_stale_connection(&error_chain(&error)) => {
                tracing::debug!(%method, url, request_id, error = %error_chain(&error), "connection was closed; sending again");
                again
                    .send()
                    .await
                    .map_err(|e| RoamingError::Unreachable { url: url.to_owned(), reason: error_chain(&e) })?
            }
            (Err(error), _) => {
                return Err(RoamingError::Unreachable { url: url.to_owned(), reason: error_chain(&error) });
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RoamingError::Unreachable { url: url.to_owned(), reason: error_chain(&e) })?;
        if !status.is_success() {
            return Err(RoamingError::Http { url: url.to_owned(), status: status.as_u16(), body: excerpt(&bytes) });
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let envelope: Envelope<T> = serde_json::from_slice(bytes)
            .map_err(|e| RoamingError::Malformed { url: url.to_owned(), reason: e.to_string() })?;
        if !envelope.status_code.is_success() {
            return Err(RoamingError::Ocpi {
                url: url.to_owned(),
                code: envelope.status_code.0,
                message: envelope.status_message.clone().unwrap_or_default(),
            });
        }
        Ok((headers, envelope))
    }
}

/// GET, PUT and DELETE may be sent twice (HTTP semantics; OCPI's PUTs replace whole objects).
fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::PUT | Method::DELETE)
}

/// Whether an error says a reused connection was closed under the request (hyper's words).
fn is_stale_connection(chain: &str) -> bool {
    ["connection closed before message completed", "connection reset", "broken pipe"]
        .iter()
        .any(|needle| chain.to_ascii_lowercase().contains(needle))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(BODY_EXCERPT).collect()
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The `rel="next"` URL of a `Link` header, exactly as given.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all("link") {
        let Ok(value) = value.to_str() else { continue };
        for link in value.split(',') {
            let mut parts = link.split(';');
            let Some(target) = parts.next() else { continue };
            let is_next = parts.any(|param| {
                let param = param.trim().to_ascii_lowercase();
                param == "rel=\"next\"" || param == "rel=next"
            });
            let target = target.trim();
            if is_next && target.starts_with('<') && target.ends_with('>') {
                return Some(target[1..target.len() - 1].to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn token_encoding_follows_version_unless_overridden() {
        assert_eq!(TokenEncoding::choose(None, Some(OcpiVersion::V2_2_1)), TokenEncoding::Base64);
        assert_eq!(TokenEncoding::choose(None, Some(OcpiVersion::V2_1_1)), TokenEncoding::Plain);
        assert_eq!(TokenEncoding::choose(Some("plain"), Some(OcpiVersion::V2_2_1)), TokenEncoding::Plain);
        assert_eq!(TokenEncoding::Base64.header_value("abc"), "Token YWJj");
        assert_eq!(TokenEncoding::Plain.header_value("abc"), "Token abc");
    }

    /// A server whose first connection reads the request and closes without answering (a
    /// keep-alive connection closed under us); later connections get an OCPI answer.
    async fn closes_first_connection() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ocpi/2.2.1/locations", listener.local_addr().unwrap());
        let connections = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let mut buffer = vec![0u8; 8192];
                let _ = socket.read(&mut buffer).await;
                if n == 0 {
                    drop(socket);
                    continue;
                }
                let body = r#"{"data":[],"status_code":1000,"timestamp":"2026-11-24T10:00:00Z"}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, connections)
    }

    #[tokio::test]
    async fn an_idempotent_request_is_sent_again_when_its_connection_closed_under_it() {
        use std::sync::atomic::Ordering;

        let client = OcpiClient::new(Duration::from_secs(5), PartyId::parse("NLEMS").unwrap()).unwrap();
        let target = Target { token: "t", encoding: TokenEncoding::Base64, to: None };
        let (url, connections) = closes_first_connection().await;
        let page: Page<Vec<serde_json::Value>> = client.get(&url, &target).await.unwrap();
        assert!(page.data.is_empty());
        assert_eq!(connections.load(Ordering::SeqCst), 2, "sent once more on a new connection");

        let (url, connections) = closes_first_connection().await;
        let error = client.send::<_, serde_json::Value>(Method::POST, &url, &target, &serde_json::json!({})).await;
        assert!(matches!(error, Err(RoamingError::Unreachable { .. })), "a POST is never sent twice: {error:?}");
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn finds_the_next_link_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            "link",
            HeaderValue::from_static("<https://cpo.example/ocpi/2.2.1/locations?offset=0>; rel=\"prev\", <https://cpo.example/ocpi/2.2.1/locations?offset=50&limit=50>; rel=\"next\""),
        );
        assert_eq!(next_link(&headers).as_deref(), Some("https://cpo.example/ocpi/2.2.1/locations?offset=50&limit=50"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
