//! Ad-hoc charging paid by card: the flow that joins the payment flows (`emsp-payments`) and the
//! charging commands (`emsp-roaming`), behind the API's [`CardPayments`] port.
//!
//! 1. `startAdHocCharging`: the charger is checked (it exists, its operator takes commands), the
//!    driver's provider customer is made once, an `adhoc_charges` row (AWAITING_HOLD) and the
//!    payment row are written, and the hold is placed (PaymentIntent, manual capture).
//! 2. Once held (at once, or after 3-D Secure: the `amount_capturable_updated` webhook or
//!    `confirmAdHocCharging`), exactly one caller claims the row (AWAITING_HOLD -> STARTING with
//!    a new session id), notes the session on the payment, issues an AD_HOC_USER token bound to
//!    the payment (uid from the payment id; the CPO's real-time authorization binds it to the
//!    location of its first use), sends START_SESSION, and marks the row STARTED.
//! 3. The session decides the hold ([`AdHocFlow::settle_session`]): a CDR captures its total incl.
//!    VAT (at most the hold, more as an off-session difference); a session that failed without
//!    ever being reported by the CPO releases the hold (after a TIMEOUT of ours only once
//!    [`LATE_START_GRACE`] has passed: a charger that starts late revives the session, and its
//!    CDR must still find the hold). Roaming does not know payments: the
//!    change-feed follower forwards every `charging.updated` id here, and a sweep in the
//!    reconciliation schedule repeats the check for every STARTED row whose hold is still open.
//! 4. Crash between hold and START_SESSION ([`AdHocFlow::recover`], at start-up and with every
//!    reconciliation pass): a request left AWAITING_HOLD with a placed (or unknown) hold, or
//!    STARTING without a stored session (or with one whose START_SESSION was never recorded, so
//!    never sent), has its hold released, never a late START_SESSION: the driver has left the
//!    app's flow, and a charger starting minutes later for nobody is worse than asking again.
//!    Recovery only takes requests untouched for [`AdHocFlow::stale_after`] (see
//!    [`stale_after`]): with several replicas, a replica that restarts must not release a hold
//!    another, live replica is just starting.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use emsp_domain::{Money as DomainMoney, Token, TokenType, TokenUid};
use emsp_graphql::{AdHocOutcome, AdHocRequest, AdHocStatus, CardPaymentError, CardPayments, CardSetup, PaymentInfo};
use emsp_payments::{
    Actor, DifferencePhase, HoldOutcome, Money, PaymentError, Payments, Phase, StartHold, Status, view_of,
};
use emsp_roaming::Roaming;
use emsp_roaming::charging::{self as charging, ChargingError};
use emsp_store::{AdHocCharge, AdHocState, ChargingRecord, PaymentRecord, Store, StoreError, TokenRecord};
use tokio::sync::{mpsc, watch};

/// How long a driver's request waits for a START_SESSION another caller is sending.
const START_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Rows looked at per sweep.
const SWEEP_BATCH: i64 = 500;

/// How long a hold outlives a START_SESSION that timed out on our side without any session: a
/// charger may still start (OCPI: a session after a TIMEOUT is still a session), and its CDR must
/// find the hold to capture. After this the sweep releases it.
pub const LATE_START_GRACE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Store calls a live caller makes on one request between two changes of its rows, counted
/// generously (`start`: customer, create, hold record, reads; `advance`: reads, claim, attach,
/// charger, token, session, command, answer, move).
const STORE_CALLS_PER_STEP: u32 = 16;

/// Recovery never takes a request changed more recently than this, whatever the timeouts.
const MIN_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

/// How long a request must stay untouched before recovery may take it over: safely above the
/// longest a live caller can still be working on it. Between two changes of a request's rows
/// (the row created, the hold's answer or webhook recorded on the payment, the claim), a live
/// caller makes at most one Stripe call (the hold, bounded by `stripe_timeout`; the provider
/// port does not retry by itself), one OCPI call (START_SESSION, bounded by `ocpi_timeout`; a
/// POST is never retried) and [`STORE_CALLS_PER_STEP`] store calls, each waiting at most
/// `store_wait` for a connection. Twice that (slow queries, clock skew between replicas), and
/// at least [`MIN_STALE_AFTER`]. The CPO's command timeout does not count: `advance` only waits
/// for the synchronous answer; the asynchronous result is the session's business.
pub fn stale_after(
    stripe_timeout: std::time::Duration,
    ocpi_timeout: std::time::Duration,
    store_wait: std::time::Duration,
) -> std::time::Duration {
    let longest = stripe_timeout + ocpi_timeout + store_wait * STORE_CALLS_PER_STEP;
    (longest * 2).max(MIN_STALE_AFTER)
}

/// The ad-hoc charging flow.
pub struct AdHocFlow {
    payments: Payments,
    roaming: Arc<Roaming>,
    max_hold: i64,
    /// See [`stale_after`].
    stale_after: chrono::Duration,
}

fn store_failed(error: StoreError) -> CardPaymentError {
    tracing::error!(%error, "store error in ad-hoc charging");
    CardPaymentError::Internal("store error".into())
}

fn payment_failed(error: PaymentError) -> CardPaymentError {
    match error {
        PaymentError::Invalid(message) => CardPaymentError::Invalid(message),
        PaymentError::NotFound(_) => CardPaymentError::NotFound("payment".into()),
        PaymentError::Declined(reason) => CardPaymentError::Declined(reason),
        PaymentError::WrongState { status, what, .. } => {
            CardPaymentError::WrongState(format!("the payment is {}: {what}", status_name(status)))
        }
        PaymentError::Unavailable(detail) => {
            tracing::warn!(%detail, "payment provider unavailable");
            CardPaymentError::Unavailable
        }
        PaymentError::Provider(detail) => {
            tracing::warn!(%detail, "payment provider refused a request");
            CardPaymentError::Invalid("the payment provider refused the request".into())
        }
        PaymentError::Store(error) => store_failed(error),
    }
}

fn charging_failed(error: ChargingError) -> CardPaymentError {
    match error {
        ChargingError::NotFound(what) => CardPaymentError::NotFound(what.into()),
        ChargingError::Invalid(message) | ChargingError::Unsupported(message) => CardPaymentError::Invalid(message),
        ChargingError::Refused(refused) => CardPaymentError::WrongState(refused.to_string()),
        ChargingError::Store(error) => store_failed(error),
        ChargingError::Internal(message) => CardPaymentError::Internal(message),
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Held => "being held",
        Status::RequiresAction => "waiting for 3-D Secure",
        Status::Capturable => "held",
        Status::Captured => "captured",
        Status::PartiallyRefunded => "partially refunded",
        Status::Refunded => "refunded",
        Status::Canceled => "canceled",
        Status::Failed => "declined",
        Status::Disputed => "disputed",
    }
}

fn api_status(status: Status) -> emsp_graphql::PaymentStatus {
    use emsp_graphql::PaymentStatus as Api;
    match status {
        Status::Held => Api::Held,
        Status::RequiresAction => Api::RequiresAction,
        Status::Capturable => Api::Capturable,
        Status::Captured => Api::Captured,
        Status::PartiallyRefunded => Api::PartiallyRefunded,
        Status::Refunded => Api::Refunded,
        Status::Canceled => Api::Canceled,
        Status::Failed => Api::Failed,
        Status::Disputed => Api::Disputed,
    }
}

fn info_of(record: &PaymentRecord) -> Result<PaymentInfo, CardPaymentError> {
    let view = view_of(record).map_err(store_failed)?;
    Ok(PaymentInfo {
        id: view.id,
        user_id: record.user_id.clone(),
        status: api_status(view.status),
        currency: view.currency.to_ascii_uppercase(),
        held: view.held,
        captured: view.captured,
        refunded: view.refunded,
        amount_due: view.amount_due,
        session_id: view.session_id,
        decline_reason: (view.status == Status::Failed).then(|| record.last_error.clone()).flatten(),
        created_at: view.created_at.and_utc(),
    })
}

/// The uid of the AD_HOC_USER token of a payment: derived from the payment id, so issuing it
/// again (a retry, another replica) finds the same token.
fn ad_hoc_uid(payment_id: &str) -> String {
    let compact: String = payment_id.chars().filter(char::is_ascii_alphanumeric).take(32).collect();
    format!("AH{}", compact.to_ascii_uppercase())
}

impl AdHocFlow {
    /// `stale_after`: see [`stale_after`].
    pub fn new(payments: Payments, roaming: Arc<Roaming>, max_hold: i64, stale_after: std::time::Duration) -> Self {
        let stale_after = chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
        AdHocFlow { payments, roaming, max_hold, stale_after }
    }

    /// How long a request stays untouched before recovery takes it over.
    pub fn stale_after(&self) -> chrono::Duration {
        self.stale_after
    }

    fn store(&self) -> &Store {
        self.payments.store()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CardPaymentError> {
        let store = self.store().clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| CardPaymentError::Internal(format!("store task failed: {e}")))?
            .map_err(store_failed)
    }

    async fn record(&self, payment_id: &str) -> Result<PaymentRecord, CardPaymentError> {
        let id = payment_id.to_owned();
        self.blocking(move |s| s.get_payment(&id)).await?.ok_or_else(|| CardPaymentError::NotFound("payment".into()))
    }

    async fn adhoc(&self, payment_id: &str) -> Result<Option<AdHocCharge>, CardPaymentError> {
        let id = payment_id.to_owned();
        self.blocking(move |s| s.get_adhoc(&id)).await
    }

    async fn move_adhoc(
        &self,
        payment_id: &str,
        from: AdHocState,
        to: AdHocState,
        charging_id: Option<String>,
    ) -> Result<bool, CardPaymentError> {
        let id = payment_id.to_owned();
        self.blocking(move |s| s.move_adhoc(&id, from, to, charging_id.as_deref())).await
    }

    /// The outcome the API shows for a request as it stands now.
    async fn outcome(&self, payment_id: &str, client_secret: Option<String>) -> Result<AdHocOutcome, CardPaymentError> {
        let record = self.record(payment_id).await?;
        let state = self.adhoc(payment_id).await?.and_then(|a| a.state());
        let info = info_of(&record)?;
        let status = match (state, info.status) {
            (Some(AdHocState::Started), _) => AdHocStatus::Started,
            (_, emsp_graphql::PaymentStatus::Failed) => AdHocStatus::Declined,
            (_, emsp_graphql::PaymentStatus::RequiresAction) => AdHocStatus::RequiresAction,
            _ => AdHocStatus::Pending,
        };
        let client_secret = if status == AdHocStatus::RequiresAction { client_secret } else { None };
        Ok(AdHocOutcome { status, payment: info, client_secret })
    }

    /// When another caller (a webhook that overtook the provider's answer) claimed the request,
    /// waits a little for its START_SESSION, so the driver's answer shows the session; after
    /// [`START_WAIT`] the answer says PENDING and the app follows the payment.
    async fn wait_while_starting(&self, payment_id: &str) -> Result<(), CardPaymentError> {
        let deadline = tokio::time::Instant::now() + START_WAIT;
        while tokio::time::Instant::now() < deadline {
            let state = self.adhoc(payment_id).await?.and_then(|a| a.state());
            if state != Some(AdHocState::Starting) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Gives up on a request that will start no session and releases its hold (best effort:
    /// what fails here, reconciliation releases later, as the payment has no session).
    async fn abandon(&self, payment_id: &str, from: AdHocState, why: &str) -> Result<(), CardPaymentError> {
        self.move_adhoc(payment_id, from, AdHocState::Abandoned, None).await?;
        tracing::info!(payment_id, why, "ad-hoc charging abandoned; releasing the hold");
        if let Err(error) = self.payments.cancel(payment_id, Actor::Api).await {
            tracing::warn!(payment_id, %error, "hold not released yet; reconciliation will");
        }
        Ok(())
    }

    /// Step 2: once the hold is placed, starts the session, exactly once per payment. Safe to
    /// call from the mutation, a webhook and the confirm mutation at the same time.
    pub async fn advance(&self, payment_id: &str) -> Result<(), CardPaymentError> {
        let Some(adhoc) = self.adhoc(payment_id).await? else { return Ok(()) };
        if adhoc.state() != Some(AdHocState::AwaitingHold) {
            return Ok(());
        }
        let record = self.record(payment_id).await?;
        match view_of(&record).map_err(store_failed)?.status {
            Status::Capturable => {}
            Status::Failed | Status::Canceled => {
                self.move_adhoc(payment_id, AdHocState::AwaitingHold, AdHocState::Abandoned, None).await?;
                return Ok(());
            }
            _ => return Ok(()),
        }
        let charging_id = uuid::Uuid::new_v4().to_string();
        if !self
            .move_adhoc(payment_id, AdHocState::AwaitingHold, AdHocState::Starting, Some(charging_id.clone()))
            .await?
        {
            return Ok(()); // Another caller claimed it.
        }
        // From here on the payment names its session: reconciliation's "no session" release no
        // longer applies, and the session's outcome decides the hold.
        let attached = self.payments.attach_session(payment_id, &charging_id).await.map_err(payment_failed)?;
        if attached.status != Status::Capturable {
            return self.abandon(payment_id, AdHocState::Starting, "the hold was released meanwhile").await;
        }
        let charger = match charging::startable(
            &self.roaming,
            &adhoc.location_key,
            &adhoc.evse_uid,
            adhoc.connector_id.as_deref(),
        )
        .await
        {
            Ok(charger) => charger,
            Err(error) => {
                tracing::warn!(payment_id, %error, "charger no longer startable");
                return self.abandon(payment_id, AdHocState::Starting, "charger no longer startable").await;
            }
        };
        let token = self.issue_token(payment_id, &adhoc.user_id).await?;
        let started = charging::start_with(&self.roaming, &adhoc.user_id, &charger, &charging_id, token).await;
        if !self.move_adhoc(payment_id, AdHocState::Starting, AdHocState::Started, None).await? {
            // Only recovery moves a STARTING request, and only one untouched for longer than a
            // live caller can take: the limits behind `stale_after` were exceeded.
            tracing::error!(payment_id, charging_id, "ad-hoc request taken over by recovery while starting");
        }
        match started {
            Ok(record) => {
                tracing::info!(payment_id, charging_id, phase = ?record.state.phase, "ad-hoc session requested");
                self.settle_session(&record, Utc::now()).await
            }
            Err(error) => {
                // The session row may exist (FAILED by the next sweep) or not: settle decides.
                tracing::warn!(payment_id, %error, "START_SESSION of an ad-hoc session failed");
                self.settle_charging_id(&charging_id, Utc::now()).await
            }
        }
    }

    /// The AD_HOC_USER token of a payment (issued once; whitelist NEVER, so the CPO asks us).
    async fn issue_token(&self, payment_id: &str, user_id: &str) -> Result<Token, CardPaymentError> {
        let uid = ad_hoc_uid(payment_id);
        let (party, issuer) = (self.roaming.config.party.clone(), self.roaming.config.business_name.clone());
        let user = user_id.to_owned();
        let record = self
            .blocking(move |s| {
                if let Some(existing) = s.get_party_token(&party, &uid)? {
                    return Ok(existing);
                }
                let token_uid = TokenUid::new(uid.clone())?;
                let record = TokenRecord::for_driver(&party, token_uid, TokenType::AdHocUser, &issuer, &user)?;
                match s.insert_token(&record, "ISSUE", &format!("driver:{user}")) {
                    Err(StoreError::Conflict(_)) => s
                        .get_party_token(&party, &uid)?
                        .ok_or_else(|| StoreError::Conflict(format!("ad-hoc token {uid}"))),
                    other => other,
                }
            })
            .await?;
        Ok(record.token)
    }

    async fn settle_charging_id(&self, charging_id: &str, now: DateTime<Utc>) -> Result<(), CardPaymentError> {
        let id = charging_id.to_owned();
        match self.blocking(move |s| s.get_charging(&id)).await? {
            Some(record) => self.settle_session(&record, now).await,
            None => {
                let id = charging_id.to_owned();
                let adhoc = self.blocking(move |s| s.adhoc_for_charging(&id)).await?;
                if let Some(adhoc) = adhoc {
                    // No session was ever stored: nothing can start on this hold.
                    if let Err(error) = self.payments.cancel(&adhoc.payment_id, Actor::Api).await {
                        tracing::warn!(payment_id = adhoc.payment_id, %error, "hold not released yet");
                    }
                }
                Ok(())
            }
        }
    }

    /// Step 3: what a session means for its hold. A CDR: collect its total incl. VAT. Failed
    /// without the CPO ever reporting a session (REJECTED, TIMEOUT, CPO down): release. Anything
    /// else: wait. Safe to repeat (the payment flows are idempotent).
    pub async fn settle_session(&self, session: &ChargingRecord, now: DateTime<Utc>) -> Result<(), CardPaymentError> {
        let id = session.id.clone();
        let Some(payment) = self.blocking(move |s| s.payment_for_session(&id)).await? else { return Ok(()) };
        let view = view_of(&payment).map_err(store_failed)?;
        if let Some(cdr_key) = session.state.cdr_key.clone() {
            let Some(cdr) = self.blocking(move |s| s.get_cdr(&cdr_key)).await? else { return Ok(()) };
            let cdr = cdr.cdr;
            if !cdr.currency.as_str().eq_ignore_ascii_case(&payment.currency) {
                tracing::error!(
                    payment_id = payment.id,
                    cdr_currency = %cdr.currency,
                    payment_currency = payment.currency,
                    "the CDR is in another currency than the hold; ops must collect it"
                );
                return Ok(());
            }
            let total = cdr.total_cost.incl_vat.unwrap_or(cdr.total_cost.excl_vat);
            let Some(due) = DomainMoney::new(total, cdr.currency.clone()).to_minor_units().filter(|d| *d >= 0) else {
                tracing::error!(payment_id = payment.id, %total, "the CDR's total cannot be charged");
                return Ok(());
            };
            if view.amount_due == Some(due) && view.captured >= due {
                return Ok(());
            }
            self.payments.capture(&payment.id, due, Actor::Api).await.map_err(payment_failed)?;
            tracing::info!(payment_id = payment.id, due, "ad-hoc session collected");
            return Ok(());
        }
        let never_started =
            session.state.phase == emsp_domain::ChargingPhase::Failed && session.state.session_key.is_none();
        if never_started && matches!(view.status, Status::Held | Status::RequiresAction | Status::Capturable) {
            let grace = chrono::Duration::from_std(LATE_START_GRACE).unwrap_or(chrono::Duration::MAX);
            if session.state.failure == Some(emsp_domain::FailureReason::Timeout) && now < session.updated_at + grace {
                tracing::info!(payment_id = payment.id, "start timed out; the hold waits for a late session");
                return Ok(());
            }
            self.payments.cancel(&payment.id, Actor::Api).await.map_err(payment_failed)?;
            tracing::info!(payment_id = payment.id, failure = ?session.state.failure, "session never started; hold released");
        }
        Ok(())
    }

    /// Step 4, at start-up and with every reconciliation pass: requests a crash left between
    /// hold and START_SESSION, untouched since `now - stale_after`, are released (or, once
    /// START_SESSION went out, handed to their session). Returns how many were released; a
    /// request that fails is logged and tried again next pass.
    pub async fn recover(&self, now: chrono::DateTime<Utc>) -> Result<usize, CardPaymentError> {
        let cutoff = (now - self.stale_after).naive_utc();
        let mut released = 0;
        let waiting = self.blocking(move |s| s.adhoc_stale(AdHocState::AwaitingHold, cutoff, SWEEP_BATCH)).await?;
        let starting = self.blocking(move |s| s.adhoc_stale(AdHocState::Starting, cutoff, SWEEP_BATCH)).await?;
        for adhoc in waiting {
            match self.recover_waiting(&adhoc, cutoff).await {
                Ok(true) => released += 1,
                Ok(false) => {}
                Err(error) => tracing::warn!(payment_id = adhoc.payment_id, %error, "ad-hoc recovery failed; retried"),
            }
        }
        for adhoc in starting {
            match self.recover_starting(&adhoc, now).await {
                Ok(true) => released += 1,
                Ok(false) => {}
                Err(error) => tracing::warn!(payment_id = adhoc.payment_id, %error, "ad-hoc recovery failed; retried"),
            }
        }
        Ok(released)
    }

    /// An AWAITING_HOLD request nobody advanced: its hold is released. True when released.
    async fn recover_waiting(&self, adhoc: &AdHocCharge, cutoff: NaiveDateTime) -> Result<bool, CardPaymentError> {
        let id = adhoc.payment_id.clone();
        let Some(record) = self.blocking(move |s| s.get_payment(&id)).await? else {
            // The crash came before the payment was written, so before anything was held.
            self.move_adhoc(&adhoc.payment_id, AdHocState::AwaitingHold, AdHocState::Abandoned, None).await?;
            return Ok(false);
        };
        if record.updated_at >= cutoff {
            // The hold moved recently (an answer, a webhook, 3-D Secure done): a live caller
            // may be advancing it right now.
            return Ok(false);
        }
        match Phase::parse(&record.phase) {
            Some(Phase::Held | Phase::Capturable) => {
                self.abandon(&adhoc.payment_id, AdHocState::AwaitingHold, "crash before START_SESSION").await?;
                Ok(true)
            }
            // Declined or released, but the request was never closed.
            Some(Phase::Failed | Phase::Canceled) => {
                self.move_adhoc(&adhoc.payment_id, AdHocState::AwaitingHold, AdHocState::Abandoned, None).await?;
                Ok(false)
            }
            // A hold waiting for 3-D Secure stays: the driver may still complete it (and
            // reconciliation releases it if they do not).
            _ => Ok(false),
        }
    }

    /// A STARTING request whose caller stopped: without a sent START_SESSION its hold is
    /// released, else its session decides. True when released.
    async fn recover_starting(&self, adhoc: &AdHocCharge, now: DateTime<Utc>) -> Result<bool, CardPaymentError> {
        let lookup = adhoc.charging_id.clone().unwrap_or_default();
        let Some(session) = self.blocking(move |s| s.get_charging(&lookup)).await? else {
            self.abandon(&adhoc.payment_id, AdHocState::Starting, "crash before START_SESSION").await?;
            return Ok(true);
        };
        let (user, id) = (session.user_id.clone(), session.id.clone());
        let sent = self.blocking(move |s| s.charging_has_command(&user, &id)).await?;
        let unsent = !sent && session.state.phase == emsp_domain::ChargingPhase::Requested;
        let session = if unsent {
            // The session was stored but its START_SESSION never recorded, so never sent: it
            // cannot start, and nothing else would ever end it. It fails as unreachable (the
            // CPO never heard of it), which releases the hold below.
            let id = session.id.clone();
            let event = emsp_domain::ChargingEvent::CpoUnreachable;
            match self.blocking(move |s| s.apply_charging_event(&id, &event)).await? {
                Some(applied) => applied.record,
                None => session,
            }
        } else {
            session
        };
        // From here the session decides (START_SESSION was recorded and perhaps sent, or the
        // session just failed).
        self.move_adhoc(&adhoc.payment_id, AdHocState::Starting, AdHocState::Started, None).await?;
        self.settle_session(&session, now).await?;
        Ok(unsent)
    }

    /// The safety net: every STARTED request whose hold is still open is settled again (a CDR
    /// or a failure whose change-feed notice was missed), and so is every one whose hold was
    /// captured but whose amount due is not collected in full (a capture whose answer was lost,
    /// so the difference was never asked for, or a difference call that failed).
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, CardPaymentError> {
        let open = [Phase::Held.as_str(), Phase::RequiresAction.as_str(), Phase::Capturable.as_str()];
        let (captured, pending) = (Phase::Captured.as_str(), DifferencePhase::Pending.as_str());
        let rows = self
            .blocking(move |s| {
                let mut rows = s.adhoc_with_payment_in(AdHocState::Started, &open, SWEEP_BATCH)?;
                rows.extend(s.adhoc_owing(AdHocState::Started, captured, pending, SWEEP_BATCH)?);
                Ok(rows)
            })
            .await?;
        let count = rows.len();
        for adhoc in rows {
            let Some(charging_id) = adhoc.charging_id else { continue };
            if let Err(error) = self.settle_charging_id(&charging_id, now).await {
                tracing::warn!(payment_id = adhoc.payment_id, %error, "ad-hoc settlement failed; retried next sweep");
            }
        }
        Ok(count)
    }

    /// Settles the sessions whose ids the change-feed follower forwards, until shutdown.
    pub async fn follow(
        self: Arc<Self>,
        mut changed: mpsc::UnboundedReceiver<String>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let id = tokio::select! {
                id = changed.recv() => match id { Some(id) => id, None => return },
                _ = stop.changed() => return,
            };
            let lookup = id.clone();
            let record = match self.blocking(move |s| s.get_charging(&lookup)).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(charging_id = id, %error, "ad-hoc settlement skipped; the sweep retries");
                    continue;
                }
            };
            if let Err(error) = self.settle_session(&record, Utc::now()).await {
                tracing::warn!(charging_id = id, %error, "ad-hoc settlement failed; the sweep retries");
            }
        }
    }
}

#[async_trait::async_trait]
impl CardPayments for AdHocFlow {
    fn max_hold(&self) -> i64 {
        self.max_hold
    }

    async fn setup_card(&self, user_id: &str, email: &str) -> Result<CardSetup, CardPaymentError> {
        let customer = self.payments.ensure_customer(user_id, Some(email)).await.map_err(payment_failed)?;
        let setup_id = uuid::Uuid::new_v4().to_string();
        let setup = self.payments.setup_card(&customer, &setup_id).await.map_err(payment_failed)?;
        Ok(CardSetup {
            setup_intent_id: setup.setup_intent_id,
            client_secret: setup.client_secret,
            customer_id: customer,
        })
    }

    async fn start(&self, request: AdHocRequest) -> Result<AdHocOutcome, CardPaymentError> {
        let payment_method_id = match request.payment_method_id.clone() {
            Some(method) => method,
            None => {
                let user = request.user_id.clone();
                self.blocking(move |s| s.saved_card(&user)).await?.ok_or_else(|| {
                    CardPaymentError::Invalid(
                        "no saved card: give paymentMethodId or save a card with setupCard first".into(),
                    )
                })?
            }
        };
        // Nothing is held for a charger we cannot start.
        let charger =
            charging::startable(&self.roaming, &request.charger_id, &request.evse_uid, request.connector_id.as_deref())
                .await
                .map_err(charging_failed)?;
        let customer =
            self.payments.ensure_customer(&request.user_id, Some(&request.email)).await.map_err(payment_failed)?;
        let payment_id = uuid::Uuid::new_v4().to_string();
        let row = AdHocCharge {
            payment_id: payment_id.clone(),
            user_id: request.user_id.clone(),
            location_key: charger.key().to_owned(),
            evse_uid: charger.evse_uid().to_owned(),
            connector_id: charger.connector_id().map(str::to_owned),
            tariff_id: request.tariff_id.clone(),
            state: AdHocState::AwaitingHold.as_str().to_owned(),
            charging_id: None,
            created_at: Utc::now().naive_utc(),
            updated_at: Utc::now().naive_utc(),
        };
        self.blocking(move |s| s.create_adhoc(&row)).await?;
        let hold = StartHold {
            payment_id: payment_id.clone(),
            user_id: Some(request.user_id.clone()),
            money: Money { amount: request.hold, currency: request.currency.to_ascii_lowercase() },
            customer_id: Some(customer),
            payment_method_id,
        };
        match self.payments.start_hold(hold).await {
            Ok(HoldOutcome::Held(_)) => {
                self.advance(&payment_id).await?;
                self.wait_while_starting(&payment_id).await?;
                self.outcome(&payment_id, None).await
            }
            Ok(HoldOutcome::RequiresAction { client_secret, .. }) => {
                self.outcome(&payment_id, Some(client_secret)).await
            }
            Ok(HoldOutcome::Declined { reason, .. }) => {
                tracing::info!(payment_id, reason, "ad-hoc hold declined");
                self.move_adhoc(&payment_id, AdHocState::AwaitingHold, AdHocState::Abandoned, None).await?;
                self.outcome(&payment_id, None).await
            }
            Err(error) => {
                // The driver gets an error: no session may start from this hold later.
                let failure = payment_failed(error);
                self.abandon(&payment_id, AdHocState::AwaitingHold, "the hold call failed").await?;
                Err(failure)
            }
        }
    }

    async fn confirm(&self, user_id: &str, payment_id: &str) -> Result<AdHocOutcome, CardPaymentError> {
        let adhoc = self.adhoc(payment_id).await?.filter(|a| a.user_id == user_id);
        if adhoc.is_none() {
            return Err(CardPaymentError::NotFound("payment".into()));
        }
        self.payments.refresh(payment_id, Actor::Api).await.map_err(payment_failed)?;
        self.advance(payment_id).await?;
        self.wait_while_starting(payment_id).await?;
        self.outcome(payment_id, None).await
    }

    async fn refund(
        &self,
        ops_user_id: &str,
        payment_id: &str,
        amount: Option<i64>,
        reason: &str,
    ) -> Result<PaymentInfo, CardPaymentError> {
        let record = self.record(payment_id).await?;
        // The request's name: a retry of the same request (before its refund is reflected)
        // reuses the idempotency key; a deliberate second refund comes after the first is known.
        let request_id =
            format!("{}:{}:{}", record.amount_refunded, amount.map_or("all".into(), |a| a.to_string()), ops_user_id);
        let detail = format!(
            "refund of {} requested by ops:{ops_user_id}: {reason}",
            amount.map_or("all".into(), |a| a.to_string())
        );
        let id = payment_id.to_owned();
        self.blocking(move |s| s.log_payment_action(&id, "ops", "refund_reason", &detail)).await?;
        self.payments.refund(payment_id, amount, &request_id, Actor::Ops).await.map_err(payment_failed)?;
        info_of(&self.record(payment_id).await?)
    }

    async fn payment(&self, payment_id: &str) -> Result<Option<PaymentInfo>, CardPaymentError> {
        let id = payment_id.to_owned();
        match self.blocking(move |s| s.get_payment(&id)).await? {
            Some(record) => Ok(Some(info_of(&record)?)),
            None => Ok(None),
        }
    }

    async fn payment_for_session(&self, session_id: &str) -> Result<Option<PaymentInfo>, CardPaymentError> {
        let id = session_id.to_owned();
        match self.blocking(move |s| s.payment_for_session(&id)).await? {
            Some(record) => Ok(Some(info_of(&record)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ad_hoc_token_uid_is_derived_from_the_payment_id() {
        let uid = ad_hoc_uid("0b6f1c2e-8f5a-4c1e-9a7e-1234567890ab");
        assert_eq!(uid, "AH0B6F1C2E8F5A4C1E9A7E1234567890AB");
        assert_eq!(uid, ad_hoc_uid("0b6f1c2e-8f5a-4c1e-9a7e-1234567890ab"), "the same payment, the same token");
        assert!(uid.len() <= 36, "OCPI uids are at most 36 characters");
    }

    #[test]
    fn recovery_waits_twice_the_longest_step_a_live_caller_can_take() {
        let s = std::time::Duration::from_secs;
        // The defaults: Stripe 20 s, OCPI 30 s, 5 s per store connection.
        assert_eq!(stale_after(s(20), s(30), s(5)), s(2 * (20 + 30 + 16 * 5)));
        assert_eq!(stale_after(s(1), s(1), s(1)), MIN_STALE_AFTER, "never less than two minutes");
        assert!(stale_after(s(20), s(300), s(5)) > s(600), "a slow partner's time limit counts");
    }
}
