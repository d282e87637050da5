//! The payment port on Stripe, through async-stripe (1.0 release candidate, pinned exactly).
//!
//! Every mutating request carries our idempotency key (`Idempotency-Key`); the client never
//! retries by itself (the caller decides, with the same key). Each attempt has a time limit.
//! The base URL comes from configuration so tests point it at the fake Stripe.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::customer::CreateCustomer;
use stripe_core::payment_intent::{
    CancelPaymentIntent, CapturePaymentIntent, CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, CreatePaymentIntentOffSession, RetrievePaymentIntent,
};
use stripe_core::refund::CreateRefund;
use stripe_core::setup_intent::{CreateSetupIntent, CreateSetupIntentUsage};
use stripe_core::{PaymentIntentCaptureMethod, PaymentIntentSetupFutureUsage};
use stripe_shared::{ApiErrorsType, PaymentIntent};

use crate::port::{
    HoldRequest, IntentSnapshot, IntentStatus, Money, PaymentPort, PortError, PortResult, RefundSnapshot, SetupSnapshot,
};
use crate::webhook::{METADATA_PAYMENT_ID, METADATA_ROLE};

/// How to reach Stripe.
#[derive(Clone)]
pub struct StripeSettings {
    /// `https://api.stripe.com/` in production; the fake's address in tests.
    pub api_base: String,
    /// `sk_live_...` / `sk_test_...`, from the environment only.
    pub secret_key: String,
    /// Time limit of one request.
    pub timeout: Duration,
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings")
            .field("api_base", &self.api_base)
            .field("secret_key", &"***")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// [`PaymentPort`] on Stripe.
#[derive(Clone, Debug)]
pub struct StripePort {
    client: Client,
}

impl StripePort {
    pub fn new(settings: &StripeSettings) -> PortResult<Self> {
        let mut base = settings.api_base.clone();
        if !base.ends_with('/') {
            base.push('/');
        }
        let client = ClientBuilder::new(settings.secret_key.clone())
            .url(base)
            .timeout(settings.timeout)
            .request_strategy(RequestStrategy::Once)
            .app_info("emsp", Some(env!("CARGO_PKG_VERSION").to_owned()), None)
            .build()
            .map_err(|e| PortError::Config(e.to_string()))?;
        Ok(StripePort { client })
    }
}

fn idempotent(key: &str) -> PortResult<RequestStrategy> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| PortError::Config(format!("idempotency key {key}: {e}")))
}

fn currency(code: &str) -> PortResult<stripe_types::Currency> {
    stripe_types::Currency::from_str(&code.to_ascii_lowercase())
        .map_err(|_| PortError::Rejected(format!("unknown currency {code}")))
}

fn snapshot(intent: &PaymentIntent) -> IntentSnapshot {
    IntentSnapshot {
        intent_id: intent.id.as_str().to_owned(),
        status: IntentStatus::parse(intent.status.as_str()).unwrap_or(IntentStatus::Processing),
        amount: intent.amount,
        amount_capturable: intent.amount_capturable,
        amount_received: intent.amount_received,
        currency: intent.currency.to_string(),
        client_secret: intent.client_secret.clone(),
        customer_id: intent.customer.as_ref().map(|c| c.id().as_str().to_owned()),
        payment_method_id: intent.payment_method.as_ref().map(|p| p.id().as_str().to_owned()),
        last_error: intent.last_payment_error.as_ref().map(|e| {
            e.decline_code.clone().or_else(|| e.code.as_ref().map(|c| c.as_str().to_owned())).unwrap_or_default()
        }),
    }
}

/// Sorts Stripe's answers into what the caller can do about them.
fn classify(error: StripeError) -> PortError {
    match error {
        StripeError::Stripe(api, status) => {
            let message = api.message.clone().unwrap_or_default();
            if matches!(api.type_, ApiErrorsType::CardError) {
                let code = api
                    .decline_code
                    .clone()
                    .or_else(|| api.code.as_ref().map(|c| c.as_str().to_owned()))
                    .unwrap_or_else(|| "card_declined".into());
                return PortError::Declined {
                    code,
                    intent: api.payment_intent.as_ref().map(|i| Box::new(snapshot(i))),
                };
            }
            // 409: a concurrent request with the same key is still running; 429: rate limited.
            if status >= 500 || status == 409 || status == 429 {
                return PortError::Unavailable(format!("stripe answered {status}: {message}"));
            }
            if status == 401 || status == 403 {
                return PortError::Config(format!("stripe answered {status}: {message}"));
            }
            PortError::Rejected(format!("stripe answered {status} ({}): {message}", api.type_.as_str()))
        }
        StripeError::Timeout => PortError::Unavailable("stripe did not answer in time".into()),
        StripeError::ClientError(text) => PortError::Unavailable(text),
        // An answer we cannot read: the call may have happened; the same key replays it.
        StripeError::JSONDeserialize(text) => PortError::Unavailable(format!("unreadable answer: {text}")),
        StripeError::ConfigError(text) => PortError::Config(text),
    }
}

fn metadata(payment_id: &str, role: &str) -> HashMap<String, String> {
    HashMap::from([
        (METADATA_PAYMENT_ID.to_owned(), payment_id.to_owned()),
        (METADATA_ROLE.to_owned(), role.to_owned()),
    ])
}

fn cards_only() -> CreatePaymentIntentAutomaticPaymentMethods {
    let mut methods = CreatePaymentIntentAutomaticPaymentMethods::new(true);
    // We confirm on the server: no redirect-based method that would need a return URL.
    methods.allow_redirects = Some(CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects::Never);
    methods
}

#[async_trait]
impl PaymentPort for StripePort {
    async fn hold(&self, request: &HoldRequest) -> PortResult<IntentSnapshot> {
        let mut create = CreatePaymentIntent::new(request.money.amount, currency(&request.money.currency)?)
            .capture_method(PaymentIntentCaptureMethod::Manual)
            .confirm(true)
            .automatic_payment_methods(cards_only())
            .payment_method(request.payment_method_id.clone())
            .metadata(metadata(&request.payment_id, "hold"));
        if let Some(customer) = &request.customer_id {
            // Keeps the card for an off-session charge of the difference.
            create = create.customer(customer.clone()).setup_future_usage(PaymentIntentSetupFutureUsage::OffSession);
        }
        let intent = create
            .customize()
            .request_strategy(idempotent(&request.idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(snapshot(&intent))
    }

    async fn capture(&self, intent_id: &str, amount: i64, idempotency_key: &str) -> PortResult<IntentSnapshot> {
        let intent = CapturePaymentIntent::new(intent_id)
            .amount_to_capture(amount)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(snapshot(&intent))
    }

    async fn charge_off_session(
        &self,
        payment_id: &str,
        money: &Money,
        customer_id: &str,
        payment_method_id: &str,
        idempotency_key: &str,
    ) -> PortResult<IntentSnapshot> {
        let intent = CreatePaymentIntent::new(money.amount, currency(&money.currency)?)
            .confirm(true)
            .off_session(CreatePaymentIntentOffSession::Bool(true))
            .automatic_payment_methods(cards_only())
            .customer(customer_id)
            .payment_method(payment_method_id)
            .metadata(metadata(payment_id, "difference"))
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(snapshot(&intent))
    }

    async fn cancel(&self, intent_id: &str, idempotency_key: &str) -> PortResult<IntentSnapshot> {
        let intent = CancelPaymentIntent::new(intent_id)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(snapshot(&intent))
    }

    async fn refund(&self, intent_id: &str, amount: Option<i64>, idempotency_key: &str) -> PortResult<RefundSnapshot> {
        let mut create = CreateRefund::new().payment_intent(intent_id);
        if let Some(amount) = amount {
            create = create.amount(amount);
        }
        let refund = create
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(RefundSnapshot {
            refund_id: refund.id.as_str().to_owned(),
            amount: refund.amount,
            status: refund.status.clone().unwrap_or_default(),
        })
    }

    async fn setup_card(&self, customer_id: &str, idempotency_key: &str) -> PortResult<SetupSnapshot> {
        let setup = CreateSetupIntent::new()
            .customer(customer_id)
            .usage(CreateSetupIntentUsage::OffSession)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(SetupSnapshot {
            setup_intent_id: setup.id.as_str().to_owned(),
            client_secret: setup.client_secret.clone().unwrap_or_default(),
            status: setup.status.as_str().to_owned(),
        })
    }

    async fn create_customer(&self, user_id: &str, email: Option<&str>, idempotency_key: &str) -> PortResult<String> {
        let mut create =
            CreateCustomer::new().metadata(HashMap::from([("emsp_user_id".to_owned(), user_id.to_owned())]));
        if let Some(email) = email {
            create = create.email(email);
        }
        let customer = create
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(customer.id.as_str().to_owned())
    }

    async fn get_intent(&self, intent_id: &str) -> PortResult<IntentSnapshot> {
        let intent = RetrievePaymentIntent::new(intent_id).send(&self.client).await.map_err(classify)?;
        Ok(snapshot(&intent))
    }
}
