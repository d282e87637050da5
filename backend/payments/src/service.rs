//! The payment flows over the store and the port: hold, capture (with the off-session charge of
//! a difference), cancel, refund, saving a card, and applying webhooks.
//!
//! Crash safety: a payment row is written before the provider is called, every call's idempotency
//! key derives from the row, and every answer is applied through the same idempotent state model
//! as webhooks. Running any flow again after a crash, a timeout or a lost answer repeats the same
//! calls with the same keys and converges on the same state; nothing is ever charged twice.

use std::sync::Arc;

use chrono::NaiveDateTime;
use emsp_store::{NewWebhookEvent, PaymentChange, PaymentLookup, PaymentRecord, Store, StoreError, WebhookApplied};
use serde::Serialize;

use crate::port::{HoldRequest, IntentSnapshot, IntentStatus, Money, PaymentPort, PortError, SetupSnapshot, keys};
use crate::state::{DifferencePhase, PaymentEvent, PaymentState, Phase, Status};
use crate::webhook::WebhookEvent;

/// Errors of the payment flows. The texts are for logs; the API maps the variants to codes.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The request is wrong (amount, currency, a refund larger than what is left).
    #[error("invalid payment request: {0}")]
    Invalid(String),
    #[error("payment not found: {0}")]
    NotFound(String),
    /// The card was declined.
    #[error("card declined: {0}")]
    Declined(String),
    /// The payment is not in a state that allows this (capture before authorisation, ...).
    #[error("payment {id} is {status:?}: {what}")]
    WrongState { id: String, status: Status, what: String },
    /// The provider did not answer; the same call may be repeated (same idempotency key).
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the call, or our provider configuration is wrong.
    #[error("payment provider refused: {0}")]
    Provider(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who acts, for the action log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Api,
    Reconcile,
    Ops,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Api => "api",
            Actor::Reconcile => "reconcile",
            Actor::Ops => "ops",
        }
    }
}

/// A hold to place for an ad-hoc charging session.
#[derive(Debug, Clone)]
pub struct StartHold {
    /// Our id of the payment (a new UUID per `startAdHocCharging` request; repeating the request
    /// with the same id repeats the same hold, never a second one).
    pub payment_id: String,
    pub user_id: Option<String>,
    pub money: Money,
    pub customer_id: Option<String>,
    pub payment_method_id: String,
}

/// The outcome of [`Payments::start_hold`].
#[derive(Debug, Clone)]
pub enum HoldOutcome {
    /// Funds are held: issue the AD_HOC_USER token and send START_SESSION.
    Held(PaymentView),
    /// The bank asks for 3-D Secure: the app completes it with `client_secret`; the
    /// `payment_intent.amount_capturable_updated` webhook then moves the payment to capturable.
    RequiresAction {
        payment: PaymentView,
        client_secret: String,
    },
    Declined {
        payment: PaymentView,
        reason: String,
    },
}

/// A payment as the driver (receipt) and ops see it. Amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentView {
    pub id: String,
    pub session_id: Option<String>,
    pub status: Status,
    pub currency: String,
    pub held: i64,
    pub captured: i64,
    pub refunded: i64,
    pub amount_due: Option<i64>,
    pub difference: Option<DifferencePhase>,
    pub created_at: NaiveDateTime,
}

/// A record's state in the model's terms.
pub fn state_of(record: &PaymentRecord) -> Result<PaymentState, StoreError> {
    let corrupt = |field: &str, value: &str| StoreError::Corrupt {
        key: format!("payments.{field} of {}", record.id),
        reason: format!("unknown value {value}"),
    };
    let phase = Phase::parse(&record.phase).ok_or_else(|| corrupt("phase", &record.phase))?;
    let difference = match &record.difference_phase {
        Some(text) => Some(DifferencePhase::parse(text).ok_or_else(|| corrupt("difference_phase", text))?),
        None => None,
    };
    Ok(PaymentState {
        phase,
        hold_amount: record.hold_amount,
        amount_capturable: record.amount_capturable,
        amount_captured: record.amount_captured,
        amount_refunded: record.amount_refunded,
        disputed: record.disputed,
        difference,
        difference_captured: record.difference_captured,
        last_error: record.last_error.clone(),
    })
}

fn with_state(record: &PaymentRecord, state: &PaymentState) -> PaymentRecord {
    PaymentRecord {
        phase: state.phase.as_str().to_owned(),
        amount_capturable: state.amount_capturable,
        amount_captured: state.amount_captured,
        amount_refunded: state.amount_refunded,
        disputed: state.disputed,
        difference_phase: state.difference.map(|d| d.as_str().to_owned()),
        difference_captured: state.difference_captured,
        last_error: state.last_error.clone(),
        ..record.clone()
    }
}

pub fn view_of(record: &PaymentRecord) -> Result<PaymentView, StoreError> {
    let state = state_of(record)?;
    Ok(PaymentView {
        id: record.id.clone(),
        session_id: record.session_id.clone(),
        status: state.status(),
        currency: record.currency.clone(),
        held: record.hold_amount,
        captured: state.captured_total(),
        refunded: state.amount_refunded,
        amount_due: record.amount_due,
        difference: state.difference,
        created_at: record.created_at,
    })
}

/// The event an API answer about the hold intent stands for.
fn hold_event(intent: &IntentSnapshot) -> Option<PaymentEvent> {
    match intent.status {
        IntentStatus::RequiresAction => Some(PaymentEvent::ActionRequired),
        IntentStatus::RequiresCapture => Some(PaymentEvent::Authorized { amount_capturable: intent.amount_capturable }),
        IntentStatus::Succeeded => Some(PaymentEvent::Captured { amount_received: intent.amount_received }),
        IntentStatus::Canceled => Some(PaymentEvent::Canceled),
        IntentStatus::RequiresPaymentMethod if intent.last_error.is_some() => {
            Some(PaymentEvent::AuthorizationFailed { reason: intent.last_error.clone().unwrap_or_default() })
        }
        _ => None,
    }
}

fn difference_event(intent: &IntentSnapshot) -> Option<PaymentEvent> {
    match intent.status {
        IntentStatus::Succeeded => Some(PaymentEvent::DifferenceSucceeded { amount_received: intent.amount_received }),
        IntentStatus::RequiresPaymentMethod | IntentStatus::RequiresAction | IntentStatus::Canceled => {
            Some(PaymentEvent::DifferenceFailed {
                reason: intent.last_error.clone().unwrap_or_else(|| "not completed".into()),
            })
        }
        _ => None,
    }
}

/// The change that `event` makes to `record`, if any; `edit` may also set fields outside the
/// state model (provider ids, attempt counters).
fn change_for(
    record: &PaymentRecord,
    event: Option<&PaymentEvent>,
    action: &str,
    detail: String,
    edit: impl FnOnce(&mut PaymentRecord),
) -> Result<Option<PaymentChange>, StoreError> {
    let state = state_of(record)?;
    let next_state = event.and_then(|e| state.apply(e));
    let mut next = match &next_state {
        Some(s) => with_state(record, s),
        None => record.clone(),
    };
    edit(&mut next);
    if next == *record {
        return Ok(None);
    }
    Ok(Some(PaymentChange { record: next, action: action.to_owned(), detail }))
}

fn validate(money: &Money, max_hold: i64) -> Result<(), PaymentError> {
    if money.amount <= 0 {
        return Err(PaymentError::Invalid("the amount must be positive".into()));
    }
    if money.amount > max_hold {
        return Err(PaymentError::Invalid(format!("the hold may be at most {max_hold} minor units")));
    }
    if money.currency.len() != 3 || !money.currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(PaymentError::Invalid("the currency must be an ISO 4217 code".into()));
    }
    Ok(())
}

fn port_error(error: PortError) -> PaymentError {
    match error {
        PortError::Declined { code, .. } => PaymentError::Declined(code),
        PortError::Unavailable(text) => PaymentError::Unavailable(text),
        PortError::Rejected(text) | PortError::Config(text) => PaymentError::Provider(text),
    }
}

/// The payment flows.
#[derive(Clone)]
pub struct Payments {
    store: Store,
    port: Arc<dyn PaymentPort>,
    max_hold: i64,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments").field("max_hold", &self.max_hold).finish()
    }
}

impl Payments {
    /// `max_hold`: the largest hold in minor units (configuration caps every estimate).
    pub fn new(store: Store, port: Arc<dyn PaymentPort>, max_hold: i64) -> Self {
        Payments { store, port, max_hold }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs a store call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, PaymentError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| PaymentError::Store(StoreError::Unavailable(format!("store task failed: {e}"))))?
            .map_err(PaymentError::from)
    }

    async fn load(&self, id: &str) -> Result<PaymentRecord, PaymentError> {
        let key = id.to_owned();
        self.blocking(move |s| s.get_payment(&key)).await?.ok_or_else(|| PaymentError::NotFound(id.to_owned()))
    }

    pub async fn payment(&self, id: &str) -> Result<PaymentView, PaymentError> {
        Ok(view_of(&self.load(id).await?)?)
    }

    /// Applies a fact learned from an API answer (or a provider read) to payment `id`.
    async fn record(
        &self,
        id: &str,
        actor: Actor,
        event: Option<PaymentEvent>,
        detail: String,
        edit: impl FnOnce(&mut PaymentRecord) + Send + 'static,
    ) -> Result<PaymentRecord, PaymentError> {
        let key = id.to_owned();
        let action = event.as_ref().map_or("updated", PaymentEvent::name).to_owned();
        let updated = self
            .blocking(move |s| {
                s.update_payment(&key, actor.as_str(), |record| {
                    change_for(record, event.as_ref(), &action, detail, edit)
                })
            })
            .await?;
        updated.map(|(record, _)| record).ok_or_else(|| PaymentError::NotFound(id.to_owned()))
    }

    async fn log(&self, id: &str, actor: Actor, action: &str, detail: String) -> Result<(), PaymentError> {
        let (key, action) = (id.to_owned(), action.to_owned());
        self.blocking(move |s| s.log_payment_action(&key, actor.as_str(), &action, &detail)).await
    }

    /// Places the hold for an ad-hoc session (see [`HoldOutcome`]). Repeating it with the same
    /// payment id (after a timeout or a crash) repeats the same provider call with the same key.
    pub async fn start_hold(&self, request: StartHold) -> Result<HoldOutcome, PaymentError> {
        let money = Money { amount: request.money.amount, currency: request.money.currency.to_ascii_lowercase() };
        validate(&money, self.max_hold)?;
        let id = request.payment_id.clone();
        let existing = {
            let key = id.clone();
            self.blocking(move |s| s.get_payment(&key)).await?
        };
        let record = match existing {
            Some(record) => record,
            None => {
                let now = chrono::Utc::now().naive_utc();
                let record = PaymentRecord {
                    id: id.clone(),
                    user_id: request.user_id.clone(),
                    session_id: None,
                    currency: money.currency.clone(),
                    hold_amount: money.amount,
                    phase: Phase::Held.as_str().to_owned(),
                    amount_capturable: 0,
                    amount_captured: 0,
                    amount_refunded: 0,
                    disputed: false,
                    amount_due: None,
                    intent_id: None,
                    customer_id: request.customer_id.clone(),
                    payment_method_id: Some(request.payment_method_id.clone()),
                    capture_attempt: 0,
                    difference_phase: None,
                    difference_amount: 0,
                    difference_captured: 0,
                    difference_intent_id: None,
                    difference_attempt: 0,
                    last_error: None,
                    created_at: now,
                    updated_at: now,
                };
                let detail = format!("hold of {} {} requested", money.amount, money.currency);
                self.blocking(move |s| s.create_payment(&record, "api", "hold_requested", &detail)).await?
            }
        };
        if record.hold_amount != money.amount || record.currency != money.currency {
            return Err(PaymentError::Invalid(format!("payment {id} already exists with another amount")));
        }
        self.place_hold(&record, Actor::Api).await
    }

    /// Calls the provider for the hold of `record` (first time or replay) and applies the answer.
    async fn place_hold(&self, record: &PaymentRecord, actor: Actor) -> Result<HoldOutcome, PaymentError> {
        let hold = HoldRequest {
            payment_id: record.id.clone(),
            money: Money { amount: record.hold_amount, currency: record.currency.clone() },
            customer_id: record.customer_id.clone(),
            payment_method_id: record.payment_method_id.clone().unwrap_or_default(),
            idempotency_key: keys::hold(&record.id),
        };
        match self.port.hold(&hold).await {
            Ok(intent) => {
                let event = hold_event(&intent);
                let secret = intent.client_secret.clone();
                let detail = format!("intent {} is {:?}", intent.intent_id, intent.status);
                let updated = self.record(&record.id, actor, event, detail, move |r| set_intent(r, &intent)).await?;
                let view = view_of(&updated)?;
                Ok(match view.status {
                    Status::RequiresAction => {
                        HoldOutcome::RequiresAction { payment: view, client_secret: secret.unwrap_or_default() }
                    }
                    Status::Failed => {
                        HoldOutcome::Declined { reason: updated.last_error.clone().unwrap_or_default(), payment: view }
                    }
                    _ => HoldOutcome::Held(view),
                })
            }
            Err(PortError::Declined { code, intent }) => {
                let event = PaymentEvent::AuthorizationFailed { reason: code.clone() };
                let updated = self
                    .record(&record.id, actor, Some(event), format!("declined: {code}"), move |r| {
                        if let Some(intent) = intent {
                            set_intent(r, &intent);
                        }
                    })
                    .await?;
                Ok(HoldOutcome::Declined { payment: view_of(&updated)?, reason: code })
            }
            Err(error) => {
                self.log(&record.id, actor, "hold_call_failed", error.to_string()).await?;
                Err(port_error(error))
            }
        }
    }

    /// Notes the charging session a payment pays for (once START_SESSION was accepted).
    pub async fn attach_session(&self, id: &str, session_id: &str) -> Result<PaymentView, PaymentError> {
        let session = session_id.to_owned();
        let record = self
            .record(id, Actor::Api, None, format!("session {session_id}"), move |r| r.session_id = Some(session))
            .await?;
        Ok(view_of(&record)?)
    }

    /// At the CDR: collect `amount_due` (what the session cost). Captures at most the hold; more
    /// is charged off-session as the difference; zero releases the hold. Repeating it is safe.
    pub async fn capture(&self, id: &str, amount_due: i64, actor: Actor) -> Result<PaymentView, PaymentError> {
        if amount_due < 0 {
            return Err(PaymentError::Invalid("the amount due cannot be negative".into()));
        }
        let record = self.load(id).await?;
        match record.amount_due {
            Some(due) if due != amount_due => {
                return Err(PaymentError::Invalid(format!("payment {id} is already due {due}, not {amount_due}")));
            }
            Some(_) => {}
            None => {
                self.record(id, actor, None, format!("amount due {amount_due}"), move |r| {
                    r.amount_due = Some(amount_due)
                })
                .await?;
            }
        }
        self.settle(id, actor).await
    }

    /// Takes the next steps towards collecting the amount due, until it is collected or a step
    /// cannot be taken now (the error says why; the reconciliation job retries).
    pub async fn settle(&self, id: &str, actor: Actor) -> Result<PaymentView, PaymentError> {
        // Each step moves the payment forward; three steps (capture, difference, done) suffice.
        for _ in 0..4 {
            let record = self.load(id).await?;
            let Some(due) = record.amount_due else { return Ok(view_of(&record)?) };
            let state = state_of(&record)?;
            let wrong = |what: &str| PaymentError::WrongState {
                id: id.to_owned(),
                status: state.status(),
                what: what.to_owned(),
            };
            match state.phase {
                Phase::Held | Phase::RequiresAction | Phase::Failed => return Err(wrong("the hold is not authorised")),
                Phase::Canceled if due == 0 => return Ok(view_of(&record)?),
                Phase::Canceled => return Err(wrong("the hold was released before capture")),
                Phase::Capturable if due == 0 => {
                    self.release(&record, actor).await?;
                }
                Phase::Capturable => {
                    let amount = due.min(state.amount_capturable);
                    self.capture_hold(&record, amount, actor).await?;
                }
                Phase::Captured => {
                    if state.captured_total() >= due || state.difference == Some(DifferencePhase::Succeeded) {
                        return Ok(view_of(&record)?);
                    }
                    if state.difference == Some(DifferencePhase::Failed) {
                        return Err(wrong("the difference charge was declined; ops must collect it"));
                    }
                    self.charge_difference(&record, &state, due, actor).await?;
                }
            }
        }
        Ok(view_of(&self.load(id).await?)?)
    }

    async fn capture_hold(&self, record: &PaymentRecord, amount: i64, actor: Actor) -> Result<(), PaymentError> {
        let intent_id = record.intent_id.clone().ok_or_else(|| PaymentError::WrongState {
            id: record.id.clone(),
            status: Status::Capturable,
            what: "the hold's intent is not known yet".into(),
        })?;
        let key = keys::capture(&record.id, record.capture_attempt);
        match self.port.capture(&intent_id, amount, &key).await {
            Ok(intent) => {
                let event = hold_event(&intent);
                let detail = format!("captured {} of intent {intent_id} ({key})", intent.amount_received);
                self.record(&record.id, actor, event, detail, |_| {}).await?;
                Ok(())
            }
            Err(error) if error.is_retryable() => {
                self.log(&record.id, actor, "capture_call_failed", format!("{key}: {error}")).await?;
                Err(port_error(error))
            }
            Err(error) => {
                // Refused for good: the provider may know better (already captured or canceled
                // elsewhere). Read the intent and apply what it says; a new attempt gets a new key.
                let detail = format!("{key}: {error}");
                let fresh = self.port.get_intent(&intent_id).await.ok();
                let event = fresh.as_ref().and_then(hold_event);
                let attempt = record.capture_attempt + 1;
                let reason = error.to_string();
                self.record(&record.id, actor, event, detail, move |r| {
                    r.capture_attempt = attempt;
                    r.last_error = Some(reason);
                })
                .await?;
                Err(port_error(error))
            }
        }
    }

    async fn charge_difference(
        &self,
        record: &PaymentRecord,
        state: &PaymentState,
        due: i64,
        actor: Actor,
    ) -> Result<(), PaymentError> {
        let (Some(customer), Some(method)) = (record.customer_id.clone(), record.payment_method_id.clone()) else {
            return Err(PaymentError::WrongState {
                id: record.id.clone(),
                status: state.status(),
                what: "no saved card to charge the difference".into(),
            });
        };
        // The amount is fixed the first time and kept: a retry asks for exactly the same charge.
        let amount =
            if record.difference_phase.is_some() { record.difference_amount } else { due - state.amount_captured };
        if record.difference_phase.is_none() {
            let pending = state.request_difference();
            self.record(&record.id, actor, None, format!("difference of {amount} requested"), move |r| {
                r.difference_amount = amount;
                if let Some(p) = pending {
                    r.difference_phase = p.difference.map(|d| d.as_str().to_owned());
                }
            })
            .await?;
        }
        let key = keys::difference(&record.id, record.difference_attempt);
        let money = Money { amount, currency: record.currency.clone() };
        match self.port.charge_off_session(&record.id, &money, &customer, &method, &key).await {
            Ok(intent) => {
                let event = difference_event(&intent);
                let detail = format!("difference intent {} is {:?}", intent.intent_id, intent.status);
                let intent_id = intent.intent_id.clone();
                self.record(&record.id, actor, event, detail, move |r| r.difference_intent_id = Some(intent_id))
                    .await?;
                Ok(())
            }
            Err(PortError::Declined { code, intent }) => {
                let event = PaymentEvent::DifferenceFailed { reason: code.clone() };
                self.record(&record.id, actor, Some(event), format!("difference declined: {code}"), move |r| {
                    if let Some(intent) = intent {
                        r.difference_intent_id = Some(intent.intent_id.clone());
                    }
                })
                .await?;
                Err(PaymentError::Declined(code))
            }
            Err(error) => {
                self.log(&record.id, actor, "difference_call_failed", format!("{key}: {error}")).await?;
                Err(port_error(error))
            }
        }
    }

    async fn release(&self, record: &PaymentRecord, actor: Actor) -> Result<(), PaymentError> {
        let record = match record.intent_id {
            Some(_) => record.clone(),
            // The hold's answer was lost: replay the hold (same key: the same intent) to learn it.
            None => {
                self.place_hold(record, actor).await?;
                self.load(&record.id).await?
            }
        };
        let Some(intent_id) = record.intent_id.clone() else {
            return Err(PaymentError::Unavailable("the hold's intent is not known".into()));
        };
        if state_of(&record)?.phase.is_final() {
            return Ok(());
        }
        let key = keys::cancel(&record.id);
        match self.port.cancel(&intent_id, &key).await {
            Ok(intent) => {
                let detail = format!("intent {intent_id} is {:?}", intent.status);
                self.record(&record.id, actor, hold_event(&intent), detail, |_| {}).await?;
                Ok(())
            }
            Err(error) => {
                self.log(&record.id, actor, "cancel_call_failed", format!("{key}: {error}")).await?;
                if !error.is_retryable() {
                    // Perhaps captured or canceled meanwhile: apply what the provider knows.
                    if let Ok(intent) = self.port.get_intent(&intent_id).await {
                        self.record(&record.id, actor, hold_event(&intent), "read after refused cancel".into(), |_| {})
                            .await?;
                    }
                }
                Err(port_error(error))
            }
        }
    }

    /// Releases the hold of a session that never started. Safe to repeat; a no-op once the hold
    /// was captured or released.
    pub async fn cancel(&self, id: &str, actor: Actor) -> Result<PaymentView, PaymentError> {
        let record = self.load(id).await?;
        let state = state_of(&record)?;
        if !state.phase.is_final() && state.phase != Phase::Failed {
            self.release(&record, actor).await?;
        }
        Ok(view_of(&self.load(id).await?)?)
    }

    /// Refunds `amount` (`None`: all that is left) of a captured payment. `request_id` names
    /// the refund request: repeating it refunds once. The totals follow from `charge.refunded`.
    pub async fn refund(
        &self,
        id: &str,
        amount: Option<i64>,
        request_id: &str,
        actor: Actor,
    ) -> Result<i64, PaymentError> {
        let record = self.load(id).await?;
        let state = state_of(&record)?;
        if state.phase != Phase::Captured {
            return Err(PaymentError::WrongState {
                id: id.to_owned(),
                status: state.status(),
                what: "only a captured payment can be refunded".into(),
            });
        }
        let left = state.amount_captured - state.amount_refunded;
        if let Some(amount) = amount
            && (amount <= 0 || amount > left)
        {
            return Err(PaymentError::Invalid(format!("a refund must be between 1 and {left}")));
        }
        let intent_id = record.intent_id.clone().unwrap_or_default();
        let key = keys::refund(id, request_id);
        match self.port.refund(&intent_id, amount, &key).await {
            Ok(refund) => {
                self.log(
                    id,
                    actor,
                    "refund_requested",
                    format!("{} refunded ({}, {key})", refund.amount, refund.refund_id),
                )
                .await?;
                Ok(refund.amount)
            }
            Err(error) => {
                self.log(id, actor, "refund_call_failed", format!("{key}: {error}")).await?;
                Err(port_error(error))
            }
        }
    }

    /// The provider customer of driver `user_id`: the stored one, else a new one (created with
    /// the key `customer:{user_id}`, so a retry after a lost answer or a race of two requests
    /// gets the same customer from the provider, and the store keeps the first).
    pub async fn ensure_customer(&self, user_id: &str, email: Option<&str>) -> Result<String, PaymentError> {
        let user = user_id.to_owned();
        if let Some(existing) = self.blocking(move |s| s.payment_customer(&user)).await? {
            return Ok(existing);
        }
        let created = self.port.create_customer(user_id, email, &keys::customer(user_id)).await.map_err(port_error)?;
        let user = user_id.to_owned();
        self.blocking(move |s| s.keep_payment_customer(&user, &created)).await
    }

    /// Starts saving a card for `customer_id`; the app completes it with the client secret.
    pub async fn setup_card(&self, customer_id: &str, setup_id: &str) -> Result<SetupSnapshot, PaymentError> {
        self.port.setup_card(customer_id, &keys::setup(setup_id)).await.map_err(port_error)
    }

    /// Records and applies a verified webhook event, exactly once.
    pub async fn apply_webhook(&self, event: WebhookEvent) -> Result<WebhookApplied, PaymentError> {
        self.blocking(move |s| {
            let created_at = chrono::DateTime::from_timestamp(event.created, 0).unwrap_or_default().naive_utc();
            let new = NewWebhookEvent { event_id: &event.id, event_type: &event.event_type, created_at };
            let lookup =
                PaymentLookup { payment_id: event.payment_id.as_deref(), intent_id: event.intent_id.as_deref() };
            let intent_id = event.intent_id.clone();
            let is_difference = matches!(
                event.effect,
                Some(PaymentEvent::DifferenceSucceeded { .. } | PaymentEvent::DifferenceFailed { .. })
            );
            let detail = format!("{} {}", event.event_type, event.id);
            s.apply_payment_event(&new, lookup, |record| {
                let action = event.effect.as_ref().map_or("ignored", PaymentEvent::name).to_owned();
                change_for(record, event.effect.as_ref(), &action, detail, move |r| {
                    // A webhook that overtook our own API answer tells us the intent id first.
                    if is_difference {
                        if r.difference_intent_id.is_none() {
                            r.difference_intent_id = intent_id;
                        }
                    } else if r.intent_id.is_none() {
                        r.intent_id = intent_id;
                    }
                })
            })
        })
        .await
    }

    /// Reads the hold intent from the provider and applies what it says (reconciliation).
    pub async fn refresh(&self, id: &str, actor: Actor) -> Result<PaymentView, PaymentError> {
        let record = self.load(id).await?;
        let Some(intent_id) = record.intent_id.clone() else { return Ok(view_of(&record)?) };
        let intent = self.port.get_intent(&intent_id).await.map_err(port_error)?;
        let detail = format!("intent {intent_id} read: {:?}", intent.status);
        let record = self.record(id, actor, hold_event(&intent), detail, |_| {}).await?;
        Ok(view_of(&record)?)
    }
}

fn set_intent(record: &mut PaymentRecord, intent: &IntentSnapshot) {
    if record.intent_id.is_none() {
        record.intent_id = Some(intent.intent_id.clone());
    }
    if record.customer_id.is_none() {
        record.customer_id = intent.customer_id.clone();
    }
}
