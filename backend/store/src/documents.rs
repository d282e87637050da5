//! Stored JSON documents and their content hashes.
//!
//! Partners bump `last_updated` without changing anything; the hash leaves every `last_updated`
//! out, so such a write is recognised as unchanged and skipped (no row written, no change event).

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::{StoreError, StoreResult};

pub(crate) fn to_document<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt { key: "new document".into(), reason: e.to_string() })
}

pub(crate) fn from_document<T: DeserializeOwned>(key: &str, document: &str) -> StoreResult<T> {
    serde_json::from_str(document).map_err(|e| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() })
}

/// SHA-256 over the canonical JSON of `value` without `last_updated` fields (object keys sorted).
pub(crate) fn content_hash<T: Serialize>(value: &T) -> StoreResult<String> {
    let mut json = serde_json::to_value(value)
        .map_err(|e| StoreError::Corrupt { key: "new document".into(), reason: e.to_string() })?;
    strip_last_updated(&mut json);
    // serde_json's map is ordered by key, so the text is canonical.
    Ok(hex::encode(Sha256::digest(json.to_string().as_bytes())))
}

fn strip_last_updated(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("last_updated");
            map.values_mut().for_each(strip_last_updated);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_last_updated),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn hash_ignores_last_updated_at_every_depth_and_key_order() {
        let a =
            json!({"id": "1", "last_updated": "2024-01-01T00:00:00Z", "evses": [{"uid": "E1", "last_updated": "x"}]});
        let b =
            json!({"evses": [{"last_updated": "y", "uid": "E1"}], "last_updated": "2025-01-01T00:00:00Z", "id": "1"});
        assert_eq!(content_hash(&a).unwrap(), content_hash(&b).unwrap());
        let c = json!({"id": "1", "evses": [{"uid": "E2"}]});
        assert_ne!(content_hash(&a).unwrap(), content_hash(&c).unwrap());
    }
}
