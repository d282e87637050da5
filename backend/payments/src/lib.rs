//! Card payments for ad-hoc charging: the payment port and its Stripe implementation, webhook
//! verification, the payment state model, the payment flows over the store, and reconciliation.

mod port;
mod reconcile;
mod service;
mod state;
mod stripe;
mod webhook;

pub use port::{
    HoldRequest, IntentSnapshot, IntentStatus, Money, PaymentPort, PortError, PortResult, RefundSnapshot,
    SetupSnapshot, keys,
};
pub use reconcile::{AmountEstimate, NoEstimate, ReconcilePolicy, ReconcileReport, reconcile};
pub use service::{Actor, HoldOutcome, PaymentError, PaymentView, Payments, StartHold, state_of, view_of};
pub use state::{DifferencePhase, PaymentEvent, PaymentState, Phase, Status};
pub use stripe::{StripePort, StripeSettings};
pub use webhook::{
    EventError, METADATA_PAYMENT_ID, METADATA_ROLE, SignatureError, SignatureVerifier, WebhookEvent, parse_event, sign,
};
