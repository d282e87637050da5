//! Provider webhooks: verifying the `Stripe-Signature` header and reading the events we act on.
//!
//! The header is `t=<unix seconds>,v1=<hex>,v1=<hex>...` (other schemes such as `v0` are ignored).
//! A payload is genuine when one `v1` equals HMAC-SHA256 over `"{t}.{payload}"` under one of our
//! endpoint secrets (several during a rotation), compared in constant time, and `t` lies within the
//! tolerance of our clock (a replayed old delivery is refused).

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::state::PaymentEvent;

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook was refused. The texts are safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    Missing,
    #[error("malformed Stripe-Signature header")]
    Malformed,
    #[error("no v1 signature in Stripe-Signature header")]
    NoSignature,
    #[error("signature timestamp outside the tolerance")]
    Stale,
    #[error("no signature matches the payload")]
    Mismatch,
}

/// Checks `Stripe-Signature` headers against the configured endpoint secrets.
#[derive(Clone)]
pub struct SignatureVerifier {
    secrets: Vec<Vec<u8>>,
    tolerance_s: i64,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("secrets", &self.secrets.len())
            .field("tolerance_s", &self.tolerance_s)
            .finish()
    }
}

impl SignatureVerifier {
    /// `secrets`: every secret currently valid (the new one and, during a rotation, the old one).
    pub fn new(secrets: impl IntoIterator<Item = String>, tolerance_s: i64) -> Self {
        SignatureVerifier {
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).map(String::into_bytes).collect(),
            tolerance_s,
        }
    }

    pub fn has_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// Verifies `header` for `payload` at `now` (unix seconds).
    pub fn verify(&self, header: Option<&str>, payload: &[u8], now: i64) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let mut timestamp: Option<i64> = None;
        let mut signatures: Vec<Vec<u8>> = Vec::new();
        for part in header.split(',') {
            let Some((key, value)) = part.trim().split_once('=') else { return Err(SignatureError::Malformed) };
            match key {
                "t" => {
                    if timestamp.is_some() {
                        return Err(SignatureError::Malformed);
                    }
                    timestamp = Some(value.parse().map_err(|_| SignatureError::Malformed)?);
                }
                // A v1 that is not hex cannot match; it does not spoil the others.
                "v1" => signatures.extend(hex::decode(value).ok().filter(|s| s.len() == 32)),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        if signatures.is_empty() {
            return Err(SignatureError::NoSignature);
        }
        if (now - timestamp).abs() > self.tolerance_s {
            return Err(SignatureError::Stale);
        }
        for secret in &self.secrets {
            let Ok(mut mac) = HmacSha256::new_from_slice(secret) else { continue };
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(payload);
            for signature in &signatures {
                // `verify_slice` compares in constant time.
                if mac.clone().verify_slice(signature).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(SignatureError::Mismatch)
    }
}

/// The `Stripe-Signature` header value for `payload` signed with `secret` at `timestamp`
/// (for tests and tools that play the provider).
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else { return format!("t={timestamp}") };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why an event body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable event: {0}")]
pub struct EventError(pub String);

/// A provider event, reduced to what the state model needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: String,
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    /// Our payment id from the intent's metadata, when the object carries it.
    pub payment_id: Option<String>,
    /// The PaymentIntent the event concerns.
    pub intent_id: Option<String>,
    /// What the event means for the payment; `None` for events we do not act on.
    pub effect: Option<PaymentEvent>,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    data: EnvelopeData,
}

#[derive(Deserialize)]
struct EnvelopeData {
    object: serde_json::Value,
}

#[derive(Deserialize)]
struct IntentObject {
    id: String,
    #[serde(default)]
    amount_capturable: i64,
    #[serde(default)]
    amount_received: i64,
    #[serde(default)]
    metadata: HashMap<String, String>,
    last_payment_error: Option<PaymentErrorObject>,
}

#[derive(Deserialize)]
struct PaymentErrorObject {
    code: Option<String>,
    decline_code: Option<String>,
}

#[derive(Deserialize)]
struct ChargeObject {
    payment_intent: Option<String>,
    #[serde(default)]
    amount_captured: i64,
    #[serde(default)]
    amount_refunded: i64,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

#[derive(Deserialize)]
struct DisputeObject {
    payment_intent: Option<String>,
}

/// The metadata keys we put on every intent.
pub const METADATA_PAYMENT_ID: &str = "emsp_payment_id";
/// `hold` or `difference`.
pub const METADATA_ROLE: &str = "emsp_role";

fn object<T: for<'de> Deserialize<'de>>(value: serde_json::Value, event_type: &str) -> Result<T, EventError> {
    serde_json::from_value(value).map_err(|e| EventError(format!("{event_type}: {e}")))
}

/// Reads an event body (after its signature was verified).
pub fn parse_event(payload: &[u8]) -> Result<WebhookEvent, EventError> {
    let envelope: Envelope = serde_json::from_slice(payload).map_err(|e| EventError(e.to_string()))?;
    let mut event = WebhookEvent {
        id: envelope.id,
        event_type: envelope.event_type,
        created: envelope.created,
        payment_id: None,
        intent_id: None,
        effect: None,
    };
    if event.id.is_empty() {
        return Err(EventError("event without id".into()));
    }
    let kind = event.event_type.clone();
    if let Some(intent_event) = kind.strip_prefix("payment_intent.") {
        let intent: IntentObject = object(envelope.data.object, &kind)?;
        let difference = intent.metadata.get(METADATA_ROLE).is_some_and(|r| r == "difference");
        let reason = intent
            .last_payment_error
            .map(|e| e.decline_code.or(e.code).unwrap_or_else(|| "payment_failed".into()))
            .unwrap_or_else(|| "payment_failed".into());
        event.effect = match (intent_event, difference) {
            ("amount_capturable_updated", false) => {
                Some(PaymentEvent::Authorized { amount_capturable: intent.amount_capturable })
            }
            ("requires_action", false) => Some(PaymentEvent::ActionRequired),
            ("succeeded", false) => Some(PaymentEvent::Captured { amount_received: intent.amount_received }),
            ("payment_failed", false) => Some(PaymentEvent::AuthorizationFailed { reason }),
            ("canceled", false) => Some(PaymentEvent::Canceled),
            ("succeeded", true) => Some(PaymentEvent::DifferenceSucceeded { amount_received: intent.amount_received }),
            ("payment_failed", true) => Some(PaymentEvent::DifferenceFailed { reason }),
            _ => None,
        };
        event.payment_id = intent.metadata.get(METADATA_PAYMENT_ID).cloned();
        event.intent_id = Some(intent.id);
    } else if kind == "charge.refunded" {
        let charge: ChargeObject = object(envelope.data.object, &kind)?;
        let difference = charge.metadata.get(METADATA_ROLE).is_some_and(|r| r == "difference");
        // Refunds of the difference charge are not part of the hold's totals (ops refund the
        // hold's charge); they are recorded as events without effect.
        if !difference {
            event.effect = Some(PaymentEvent::Refunded {
                amount_captured: charge.amount_captured,
                amount_refunded: charge.amount_refunded,
            });
        }
        event.payment_id = charge.metadata.get(METADATA_PAYMENT_ID).cloned();
        event.intent_id = charge.payment_intent;
    } else if kind == "charge.dispute.created" {
        let dispute: DisputeObject = object(envelope.data.object, &kind)?;
        event.effect = Some(PaymentEvent::Disputed);
        event.intent_id = dispute.payment_intent;
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &[u8] = br#"{"id":"evt_1","object":"event"}"#;
    const T: i64 = 1_700_000_000;
    // Computed independently: HMAC-SHA256(key, "1700000000." + PAYLOAD), hex.
    const SIG_TEST: &str = "0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd";
    const SIG_ROTATED: &str = "443d952004499c253336135326bfaef55fed4b9099dfbcff6d4aec5017c5185d";

    fn verifier(secrets: &[&str]) -> SignatureVerifier {
        SignatureVerifier::new(secrets.iter().map(|s| s.to_string()), 300)
    }

    #[test]
    fn a_known_vector_verifies_and_sign_reproduces_it() {
        let header = format!("t={T},v1={SIG_TEST}");
        assert_eq!(verifier(&["whsec_test_secret"]).verify(Some(&header), PAYLOAD, T + 10), Ok(()));
        assert_eq!(sign("whsec_test_secret", T, PAYLOAD), header);
    }

    #[test]
    fn any_v1_matches_and_other_schemes_are_ignored() {
        let header = format!("t={T},v0=abcd,v1={},v1={SIG_ROTATED}", "00".repeat(32));
        assert_eq!(verifier(&["whsec_rotated"]).verify(Some(&header), PAYLOAD, T), Ok(()));
    }

    #[test]
    fn every_configured_secret_is_tried_during_rotation() {
        let header = format!("t={T},v1={SIG_TEST}");
        assert_eq!(verifier(&["whsec_rotated", "whsec_test_secret"]).verify(Some(&header), PAYLOAD, T), Ok(()));
        assert_eq!(verifier(&["whsec_rotated"]).verify(Some(&header), PAYLOAD, T), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_changed_payload_or_an_old_timestamp_is_refused() {
        let header = format!("t={T},v1={SIG_TEST}");
        let v = verifier(&["whsec_test_secret"]);
        assert_eq!(v.verify(Some(&header), br#"{"id":"evt_2","object":"event"}"#, T), Err(SignatureError::Mismatch));
        assert_eq!(v.verify(Some(&header), PAYLOAD, T + 301), Err(SignatureError::Stale));
        assert_eq!(v.verify(Some(&header), PAYLOAD, T - 301), Err(SignatureError::Stale));
        // The timestamp is part of what is signed: a fresh t with an old signature fails.
        let moved = format!("t={},v1={SIG_TEST}", T + 1);
        assert_eq!(v.verify(Some(&moved), PAYLOAD, T), Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_headers_are_refused_with_their_reason() {
        let v = verifier(&["whsec_test_secret"]);
        assert_eq!(v.verify(None, PAYLOAD, T), Err(SignatureError::Missing));
        assert_eq!(v.verify(Some("garbage"), PAYLOAD, T), Err(SignatureError::Malformed));
        assert_eq!(v.verify(Some(&format!("v1={SIG_TEST}")), PAYLOAD, T), Err(SignatureError::Malformed));
        assert_eq!(v.verify(Some("t=abc,v1=00"), PAYLOAD, T), Err(SignatureError::Malformed));
        assert_eq!(v.verify(Some(&format!("t={T},t={T},v1={SIG_TEST}")), PAYLOAD, T), Err(SignatureError::Malformed));
        assert_eq!(v.verify(Some(&format!("t={T},v0={SIG_TEST}")), PAYLOAD, T), Err(SignatureError::NoSignature));
        assert_eq!(v.verify(Some(&format!("t={T},v1=zz")), PAYLOAD, T), Err(SignatureError::NoSignature));
    }

    #[test]
    fn payment_intent_events_map_to_the_model() {
        let body = br#"{"id":"evt_9","object":"event","type":"payment_intent.amount_capturable_updated","created":1700000000,
            "data":{"object":{"id":"pi_1","object":"payment_intent","amount":5000,"amount_capturable":5000,"amount_received":0,
            "metadata":{"emsp_payment_id":"pay-1","emsp_role":"hold"},"last_payment_error":null}}}"#;
        let event = parse_event(body).unwrap();
        assert_eq!(event.id, "evt_9");
        assert_eq!(event.payment_id.as_deref(), Some("pay-1"));
        assert_eq!(event.intent_id.as_deref(), Some("pi_1"));
        assert_eq!(event.effect, Some(PaymentEvent::Authorized { amount_capturable: 5000 }));

        let failed = br#"{"id":"evt_10","type":"payment_intent.payment_failed","created":1,
            "data":{"object":{"id":"pi_2","metadata":{"emsp_payment_id":"pay-2","emsp_role":"difference"},
            "last_payment_error":{"code":"card_declined","decline_code":"insufficient_funds"}}}}"#;
        let event = parse_event(failed).unwrap();
        assert_eq!(event.effect, Some(PaymentEvent::DifferenceFailed { reason: "insufficient_funds".into() }));
    }

    #[test]
    fn charge_events_map_to_the_model_and_others_have_no_effect() {
        let refunded = br#"{"id":"evt_3","type":"charge.refunded","created":1,
            "data":{"object":{"id":"ch_1","payment_intent":"pi_1","amount_captured":4000,"amount_refunded":1500,"metadata":{}}}}"#;
        let event = parse_event(refunded).unwrap();
        assert_eq!(event.intent_id.as_deref(), Some("pi_1"));
        assert_eq!(event.effect, Some(PaymentEvent::Refunded { amount_captured: 4000, amount_refunded: 1500 }));

        let dispute = br#"{"id":"evt_4","type":"charge.dispute.created","created":1,
            "data":{"object":{"id":"dp_1","charge":"ch_1","payment_intent":"pi_1"}}}"#;
        assert_eq!(parse_event(dispute).unwrap().effect, Some(PaymentEvent::Disputed));

        let other = br#"{"id":"evt_5","type":"plan.created","created":1,"data":{"object":{"id":"price_1"}}}"#;
        assert_eq!(parse_event(other).unwrap().effect, None);
    }

    #[test]
    fn hostile_bodies_are_errors_not_panics() {
        for body in [
            &b"not json"[..],
            b"{}",
            br#"{"id":"","type":"x","created":1,"data":{"object":{}}}"#,
            br#"{"id":"e","type":"payment_intent.succeeded","created":1,"data":{"object":{"amount_received":"lots"}}}"#,
        ] {
            assert!(parse_event(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }
}
