//! Opaque, signed pagination cursors.
//!
//! A cursor is the sort key and location key of the last hit of a page (keyset pagination, so a
//! location inserted or removed elsewhere never shifts a page), plus a fingerprint of the query it
//! belongs to and the time it was issued, signed with HMAC-SHA256. Forged or edited cursors fail the
//! signature, cursors of another query fail the fingerprint, old ones expire. Replicas that share a
//! secret accept each other's cursors.

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::CursorError;
use crate::query::SearchQuery;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub sort_key: f64,
    pub location_key: String,
}

/// Fingerprint of everything in a query that decides which hits come in which order.
pub fn fingerprint(query: &SearchQuery) -> [u8; 8] {
    // The Debug text of the query parts is streamed into the hash rather than built as a String.
    let mut hasher = HashWriter(Sha256::new());
    let _ = write!(
        hasher,
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        query.area, query.text, query.evse_id, query.location_id, query.filters, query.viewer, query.sort, query.origin
    );
    let digest = hasher.0.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

struct HashWriter(Sha256);

impl std::fmt::Write for HashWriter {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0.update(text.as_bytes());
        Ok(())
    }
}

pub struct CursorCodec {
    secret: Vec<u8>,
    ttl_s: u64,
}

impl CursorCodec {
    pub fn new(secret: &[u8], ttl_s: u64) -> Self {
        Self { secret: secret.to_vec(), ttl_s }
    }

    fn tag(&self, body: &[u8]) -> Result<[u8; TAG_LEN], CursorError> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).map_err(|_| CursorError::Forged)?;
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&full[..TAG_LEN]);
        Ok(out)
    }

    pub fn encode(&self, query: &SearchQuery, position: &Position, now_s: u64) -> String {
        let mut body = Vec::with_capacity(40 + position.location_key.len());
        body.push(VERSION);
        body.extend_from_slice(&fingerprint(query));
        body.extend_from_slice(&now_s.to_be_bytes());
        body.extend_from_slice(&position.sort_key.to_bits().to_be_bytes());
        body.extend_from_slice(position.location_key.as_bytes());
        // An HMAC key of any length is valid, so this cannot fail; an empty tag would only make the
        // cursor unusable, never wrongly accepted.
        let tag = self.tag(&body).unwrap_or([0; TAG_LEN]);
        body.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(body)
    }

    pub fn decode(&self, query: &SearchQuery, cursor: &str, now_s: u64) -> Result<Position, CursorError> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| CursorError::Malformed)?;
        if bytes.len() < 1 + 8 + 8 + 8 + TAG_LEN || bytes[0] != VERSION {
            return Err(CursorError::Malformed);
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).map_err(|_| CursorError::Forged)?;
        mac.update(body);
        mac.verify_truncated_left(tag).map_err(|_| CursorError::Forged)?;
        if body[1..9] != fingerprint(query) {
            return Err(CursorError::WrongQuery);
        }
        let read_u64 = |at: usize| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&body[at..at + 8]);
            u64::from_be_bytes(raw)
        };
        let issued = read_u64(9);
        if now_s.saturating_sub(issued) > self.ttl_s || issued > now_s + 300 {
            return Err(CursorError::Expired);
        }
        let sort_key = f64::from_bits(read_u64(17));
        let location_key = String::from_utf8(body[25..].to_vec()).map_err(|_| CursorError::Malformed)?;
        Ok(Position { sort_key, location_key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let codec = CursorCodec::new(b"secret", 3600);
        let query = SearchQuery::default();
        let position = Position { sort_key: 12.5, location_key: "NL*ABC*L1".into() };
        let cursor = codec.encode(&query, &position, 1_000);
        assert_eq!(codec.decode(&query, &cursor, 1_010), Ok(position));

        let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        let at = bytes.len() - TAG_LEN - 1;
        bytes[at] ^= 1;
        assert_eq!(codec.decode(&query, &URL_SAFE_NO_PAD.encode(&bytes), 1_010), Err(CursorError::Forged));
        assert_eq!(CursorCodec::new(b"other", 3600).decode(&query, &cursor, 1_010), Err(CursorError::Forged));
        assert_eq!(codec.decode(&query, "not a cursor!", 1_010), Err(CursorError::Malformed));
        assert_eq!(codec.decode(&query, &cursor, 1_000 + 3_601), Err(CursorError::Expired));
        let other = SearchQuery { text: Some("x".into()), ..SearchQuery::default() };
        assert_eq!(codec.decode(&other, &cursor, 1_010), Err(CursorError::WrongQuery));
    }
}
