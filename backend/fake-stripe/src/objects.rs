//! Stripe's objects as the fake answers them: the field sets of Stripe's published fixtures
//! (`payment_intent`, `charge`, `refund`, `setup_intent`, `dispute`, `event`), with the fields
//! the fake does not model left at their fixture values or `null`.

use std::collections::BTreeMap;

use serde::Serialize;

pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, Clone, Serialize)]
pub struct PaymentError {
    #[serde(rename = "type")]
    pub kind: String,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<Box<PaymentIntent>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NextAction {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AutomaticPaymentMethods {
    pub enabled: bool,
    pub allow_redirects: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentIntent {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub application: Option<String>,
    pub application_fee_amount: Option<i64>,
    pub automatic_payment_methods: Option<AutomaticPaymentMethods>,
    pub canceled_at: Option<i64>,
    pub cancellation_reason: Option<String>,
    pub capture_method: String,
    pub client_secret: String,
    pub confirmation_method: &'static str,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub last_payment_error: Option<PaymentError>,
    pub latest_charge: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub next_action: Option<NextAction>,
    pub on_behalf_of: Option<String>,
    pub payment_method: Option<String>,
    pub payment_method_types: Vec<String>,
    pub processing: Option<String>,
    pub receipt_email: Option<String>,
    pub review: Option<String>,
    pub setup_future_usage: Option<String>,
    pub shipping: Option<String>,
    pub statement_descriptor: Option<String>,
    pub statement_descriptor_suffix: Option<String>,
    pub status: String,
    pub transfer_data: Option<String>,
    pub transfer_group: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefundList {
    pub object: &'static str,
    pub data: Vec<Refund>,
    pub has_more: bool,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Charge {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub balance_transaction: Option<String>,
    pub captured: bool,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub disputed: bool,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub paid: bool,
    pub payment_intent: String,
    pub payment_method: Option<String>,
    pub refunded: bool,
    pub refunds: RefundList,
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub balance_transaction: Option<String>,
    pub charge: String,
    pub created: i64,
    pub currency: String,
    pub metadata: Metadata,
    pub payment_intent: String,
    pub reason: Option<String>,
    pub receipt_number: Option<String>,
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SetupIntent {
    pub id: String,
    pub object: &'static str,
    pub application: Option<String>,
    pub cancellation_reason: Option<String>,
    pub client_secret: String,
    pub created: i64,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub last_setup_error: Option<PaymentError>,
    pub latest_attempt: Option<String>,
    pub livemode: bool,
    pub mandate: Option<String>,
    pub metadata: Metadata,
    pub next_action: Option<NextAction>,
    pub on_behalf_of: Option<String>,
    pub payment_method: Option<String>,
    pub payment_method_types: Vec<String>,
    pub single_use_mandate: Option<String>,
    pub status: &'static str,
    pub usage: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dispute {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub charge: String,
    pub created: i64,
    pub currency: String,
    pub is_charge_refundable: bool,
    pub livemode: bool,
    pub metadata: Metadata,
    pub payment_intent: String,
    pub reason: &'static str,
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EventObject {
    PaymentIntent(Box<PaymentIntent>),
    Charge(Box<Charge>),
    Refund(Box<Refund>),
    Dispute(Box<Dispute>),
    SetupIntent(Box<SetupIntent>),
}

#[derive(Debug, Clone, Serialize)]
pub struct EventData {
    pub object: EventObject,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRequest {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    pub object: &'static str,
    pub api_version: &'static str,
    pub created: i64,
    pub data: EventData,
    pub livemode: bool,
    pub pending_webhooks: i64,
    pub request: EventRequest,
    #[serde(rename = "type")]
    pub kind: String,
}

/// The body of an error answer: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub error: PaymentError,
}
