//! The payment port: what the product needs from a card payment provider, in our own terms.
//!
//! Amounts are in minor units with their currency; no card data ever passes through here (the app
//! hands the card to the provider's SDK and gives us a payment method id). Every mutating call
//! carries an idempotency key derived from our own ids ([`keys`]), so repeating a call whose
//! answer was lost can never create a second hold or charge.

use async_trait::async_trait;

/// An amount in minor units (cents) of an ISO 4217 currency (lower case, as the provider writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

/// A request to hold funds on a card.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    /// Our payment id: sent as metadata, and the source of the idempotency key.
    pub payment_id: String,
    pub money: Money,
    /// The provider's customer the card belongs to (needed to charge a difference off-session).
    pub customer_id: Option<String>,
    /// The provider's payment method id (`pm_...`) the app obtained from the provider's SDK.
    pub payment_method_id: String,
    pub idempotency_key: String,
}

/// The provider's view of a PaymentIntent, reduced to what we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentSnapshot {
    pub intent_id: String,
    pub status: IntentStatus,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub currency: String,
    /// Handed to the app when the bank asks for 3-D Secure; never stored or logged.
    pub client_secret: Option<String>,
    pub customer_id: Option<String>,
    pub payment_method_id: Option<String>,
    /// Code and message of the last payment error (a decline), if any.
    pub last_error: Option<String>,
}

/// The statuses of a PaymentIntent (`status` in Stripe's API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
}

impl IntentStatus {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "requires_payment_method" => IntentStatus::RequiresPaymentMethod,
            "requires_confirmation" => IntentStatus::RequiresConfirmation,
            "requires_action" => IntentStatus::RequiresAction,
            "processing" => IntentStatus::Processing,
            "requires_capture" => IntentStatus::RequiresCapture,
            "canceled" => IntentStatus::Canceled,
            "succeeded" => IntentStatus::Succeeded,
            _ => return None,
        })
    }
}

/// A refund as the provider answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundSnapshot {
    pub refund_id: String,
    pub amount: i64,
    pub status: String,
}

/// A SetupIntent for saving a card: the app completes it with the client secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupSnapshot {
    pub setup_intent_id: String,
    pub client_secret: String,
    pub status: String,
}

/// Why a provider call failed. The distinction that matters is whether repeating the same call
/// (same idempotency key) may succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The card was declined (or needs the cardholder, off-session). Definitive for this call.
    #[error("card declined: {code}")]
    Declined {
        code: String,
        /// The intent the decline belongs to, when the provider created one.
        intent: Option<Box<IntentSnapshot>>,
    },
    /// The provider refused the request (invalid state, bad amount, idempotency key reused with
    /// other parameters). Definitive: repeating it gives the same answer.
    #[error("rejected by the provider: {0}")]
    Rejected(String),
    /// No answer, a timeout, a 5xx or a rate limit: the call may or may not have happened.
    /// Repeat it with the same idempotency key.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// Our configuration is wrong (bad key, bad base URL).
    #[error("payment configuration: {0}")]
    Config(String),
}

impl PortError {
    /// Whether the same call (same key) may be repeated.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PortError::Unavailable(_))
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// A card payment provider.
#[async_trait]
pub trait PaymentPort: Send + Sync {
    /// Holds `money` on the card: a PaymentIntent with manual capture, confirmed at once. The
    /// answer is `requires_capture` (held), `requires_action` (3-D Secure: the app needs the
    /// client secret) or a [`PortError::Declined`]. The card is kept for off-session use.
    async fn hold(&self, request: &HoldRequest) -> PortResult<IntentSnapshot>;

    /// Captures `amount` (at most what is capturable) of a held intent.
    async fn capture(&self, intent_id: &str, amount: i64, idempotency_key: &str) -> PortResult<IntentSnapshot>;

    /// Charges `money` off-session (the driver is not there) on a saved card: the difference
    /// between what a session cost and what was held.
    async fn charge_off_session(
        &self,
        payment_id: &str,
        money: &Money,
        customer_id: &str,
        payment_method_id: &str,
        idempotency_key: &str,
    ) -> PortResult<IntentSnapshot>;

    /// Releases a hold.
    async fn cancel(&self, intent_id: &str, idempotency_key: &str) -> PortResult<IntentSnapshot>;

    /// Refunds `amount` (`None`: everything not yet refunded) of a captured intent.
    async fn refund(&self, intent_id: &str, amount: Option<i64>, idempotency_key: &str) -> PortResult<RefundSnapshot>;

    /// Starts saving a card for off-session use.
    async fn setup_card(&self, customer_id: &str, idempotency_key: &str) -> PortResult<SetupSnapshot>;

    /// Creates the provider's customer of one of our drivers (`user_id` goes into its metadata).
    /// Saved cards and off-session charges belong to a customer. Returns the customer id.
    async fn create_customer(&self, user_id: &str, email: Option<&str>, idempotency_key: &str) -> PortResult<String>;

    /// Reads an intent (reconciliation after a lost answer).
    async fn get_intent(&self, intent_id: &str) -> PortResult<IntentSnapshot>;
}

/// Idempotency keys, derived from our own ids only: the same logical call always has the same key.
pub mod keys {
    pub fn hold(payment_id: &str) -> String {
        format!("hold:{payment_id}")
    }

    /// `attempt` changes only after the provider definitively refused the previous attempt.
    pub fn capture(payment_id: &str, attempt: i32) -> String {
        format!("capture:{payment_id}:{attempt}")
    }

    pub fn difference(payment_id: &str, attempt: i32) -> String {
        format!("difference:{payment_id}:{attempt}")
    }

    pub fn cancel(payment_id: &str) -> String {
        format!("cancel:{payment_id}")
    }

    /// `request_id` names the refund request (ops give one; repeating it refunds once).
    pub fn refund(payment_id: &str, request_id: &str) -> String {
        format!("refund:{payment_id}:{request_id}")
    }

    /// One customer per driver: the key is the driver's id.
    pub fn customer(user_id: &str) -> String {
        format!("customer:{user_id}")
    }

    pub fn setup(setup_id: &str) -> String {
        format!("setup:{setup_id}")
    }
}
