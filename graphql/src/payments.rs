//! Card payments in the driver API: saving a card, ad-hoc charging paid by a card hold, the
//! driver's receipt, and refunds by ops.
//!
//! The API does not know the payment provider: it talks to [`CardPayments`], which the server
//! implements over the payment flows and the charging commands. What the API decides itself is
//! the hold: the tariff's pre-authorization amount when it carries one, else our estimate of the
//! requested energy under the tariff (incl. VAT when the tariff states it), in the tariff's
//! currency, capped by the configured largest hold.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use emsp_domain::{Money, Tariff, TariffType};
use rust_decimal::Decimal;

use crate::accounts::{RoleGuard, viewer};
use crate::charging::ChargingSession;
use crate::errors::{ApiCode, internal, store_error};
use crate::loaders::{LocationLoader, TariffLoader};
use crate::pricing::{estimate_with, max_power, tariff_keys};

/// The smallest hold we place (card networks refuse tiny authorisations; Stripe's minimum for
/// EUR is 0.50).
const MIN_HOLD_MINOR: i64 = 50;

/// The energy a hold is estimated for when the driver names none.
const DEFAULT_ENERGY_KWH: f64 = 20.0;

/// Why a payment request failed, in the API's terms.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CardPaymentError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("card declined: {0}")]
    Declined(String),
    /// The provider did not answer; the same request may be repeated.
    #[error("the payment provider is unavailable; try again")]
    Unavailable,
    /// The payment is not in a state that allows this.
    #[error("{0}")]
    WrongState(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// A payment as the API shows it. Amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentInfo {
    pub id: String,
    pub user_id: Option<String>,
    pub status: PaymentStatus,
    /// ISO 4217, upper case.
    pub currency: String,
    pub held: i64,
    pub captured: i64,
    pub refunded: i64,
    pub amount_due: Option<i64>,
    pub session_id: Option<String>,
    pub decline_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PaymentStatus {
    /// The hold is being placed.
    Held,
    /// The bank asks for 3-D Secure: complete it in the app with the client secret.
    RequiresAction,
    /// The amount is held on the card.
    Capturable,
    Captured,
    PartiallyRefunded,
    Refunded,
    /// The hold was released; nothing was charged.
    Canceled,
    /// The card was declined.
    Failed,
    Disputed,
}

/// What ad-hoc charging did with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum AdHocStatus {
    /// The hold succeeded and START_SESSION was sent: follow `session`.
    Started,
    /// Complete 3-D Secure with `clientSecret`; charging starts once the bank confirms.
    RequiresAction,
    /// The card was declined; nothing is held.
    Declined,
    /// The hold is placed and the session is being started.
    Pending,
}

/// The outcome of `startAdHocCharging` / `confirmAdHocCharging`.
#[derive(Debug, Clone)]
pub struct AdHocOutcome {
    pub status: AdHocStatus,
    pub payment: PaymentInfo,
    /// For 3-D Secure only; never stored.
    pub client_secret: Option<String>,
}

/// A card-saving request for the app: the app completes it with `client_secret`.
#[derive(Debug, Clone, SimpleObject)]
pub struct CardSetup {
    pub setup_intent_id: String,
    pub client_secret: String,
    /// The provider's customer of the driver (the app's SDK needs it).
    pub customer_id: String,
}

/// An ad-hoc charging request, with the hold the API computed.
#[derive(Debug, Clone)]
pub struct AdHocRequest {
    pub user_id: String,
    pub email: String,
    pub charger_id: String,
    pub evse_uid: String,
    pub connector_id: Option<String>,
    pub tariff_id: Option<String>,
    /// Minor units of `currency`.
    pub hold: i64,
    /// ISO 4217, upper case.
    pub currency: String,
    pub payment_method_id: Option<String>,
}

/// The payment side of ad-hoc charging, as the server implements it.
#[async_trait::async_trait]
pub trait CardPayments: Send + Sync {
    /// The configured largest hold, in minor units.
    fn max_hold(&self) -> i64;
    /// Starts saving a card; creates the driver's provider customer once.
    async fn setup_card(&self, user_id: &str, email: &str) -> Result<CardSetup, CardPaymentError>;
    /// Checks the charger, holds the amount, and once held issues an AD_HOC_USER token and sends
    /// START_SESSION. Only called with a driver's own request.
    async fn start(&self, request: AdHocRequest) -> Result<AdHocOutcome, CardPaymentError>;
    /// Reads the hold from the provider and starts the session if it is now held (after 3-D
    /// Secure). `user_id`: only that driver's payments are found.
    async fn confirm(&self, user_id: &str, payment_id: &str) -> Result<AdHocOutcome, CardPaymentError>;
    /// Refunds `amount` (all that is left when `None`) of a captured payment (ops).
    async fn refund(
        &self,
        ops_user_id: &str,
        payment_id: &str,
        amount: Option<i64>,
        reason: &str,
    ) -> Result<PaymentInfo, CardPaymentError>;
    /// A payment; `None` when it does not exist.
    async fn payment(&self, payment_id: &str) -> Result<Option<PaymentInfo>, CardPaymentError>;
    /// The payment of a charging session, if it was paid by card.
    async fn payment_for_session(&self, session_id: &str) -> Result<Option<PaymentInfo>, CardPaymentError>;
}

/// The payment side as the schema holds it; absent when card payments are off.
#[derive(Clone)]
pub struct CardPaymentsApi(pub Arc<dyn CardPayments>);

fn payments<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Arc<dyn CardPayments>> {
    ctx.data_opt::<CardPaymentsApi>().map(|api| &api.0).ok_or_else(|| {
        ApiCode::PaymentsDisabled.error("card payments are not available on this server; charge with your contract")
    })
}

fn payment_error(error: CardPaymentError) -> async_graphql::Error {
    match error {
        CardPaymentError::NotFound(what) => ApiCode::NotFound.error(format!("{what} not found")),
        CardPaymentError::Invalid(message) => ApiCode::BadUserInput.error(message),
        CardPaymentError::Declined(reason) => ApiCode::PaymentDeclined.error(format!("card declined: {reason}")),
        CardPaymentError::Unavailable => ApiCode::PaymentUnavailable.error(error.to_string()),
        CardPaymentError::WrongState(message) => ApiCode::Conflict.error(message),
        CardPaymentError::Internal(message) => internal(&message),
    }
}

/// A payment the viewer may see: their own, or any for ops. Anyone else's is NOT_FOUND.
fn visible(ctx: &Context<'_>, payment: Option<PaymentInfo>) -> async_graphql::Result<Option<PaymentInfo>> {
    let claims = &viewer(ctx)?.0;
    Ok(payment.filter(|p| claims.role == emsp_accounts::Role::Ops || p.user_id.as_deref() == Some(&claims.sub)))
}

/// A payment: the driver's receipt.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex, name = "Payment")]
pub struct PaymentObject {
    pub id: ID,
    pub status: PaymentStatus,
    pub currency: String,
    /// Held on the card, in minor units (cents).
    pub held_minor: i64,
    /// Charged, in minor units (the hold's capture plus any difference charged afterwards).
    pub captured_minor: i64,
    pub refunded_minor: i64,
    /// What the session cost (the CDR's total incl. VAT), once known.
    pub amount_due_minor: Option<i64>,
    pub decline_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub session_id: Option<String>,
}

impl From<PaymentInfo> for PaymentObject {
    fn from(info: PaymentInfo) -> Self {
        PaymentObject {
            id: ID(info.id),
            status: info.status,
            currency: info.currency,
            held_minor: info.held,
            captured_minor: info.captured,
            refunded_minor: info.refunded,
            amount_due_minor: info.amount_due,
            decline_reason: info.decline_reason,
            created_at: info.created_at,
            session_id: info.session_id,
        }
    }
}

/// What the CDR billed, by component (the tariff breakdown on the receipt).
#[derive(Debug, Clone, SimpleObject)]
pub struct CostBreakdown {
    pub currency: String,
    pub total_excl_vat: Decimal,
    pub total_incl_vat: Option<Decimal>,
    pub energy_kwh: Decimal,
    pub energy_excl_vat: Option<Decimal>,
    pub time_hours: Decimal,
    pub time_excl_vat: Option<Decimal>,
    pub parking_excl_vat: Option<Decimal>,
    pub fixed_excl_vat: Option<Decimal>,
    pub reservation_excl_vat: Option<Decimal>,
    /// The tariffs the operator applied (`CC*PID*ID`).
    pub tariff_ids: Vec<String>,
}

#[ComplexObject]
impl PaymentObject {
    /// The charging session paid for, once it started.
    async fn session(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ChargingSession>> {
        let Some(id) = self.session_id.clone() else { return Ok(None) };
        let store = ctx.data::<crate::context::ApiContext>()?.store.clone();
        let record = tokio::task::spawn_blocking(move || store.get_charging(&id))
            .await
            .map_err(|e| internal(&e))?
            .map_err(store_error)?;
        Ok(record.map(Into::into))
    }

    /// The CDR's costs by component, once the CDR arrived.
    async fn breakdown(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CostBreakdown>> {
        let Some(id) = self.session_id.clone() else { return Ok(None) };
        let store = ctx.data::<crate::context::ApiContext>()?.store.clone();
        let cdr = tokio::task::spawn_blocking(move || {
            let Some(record) = store.get_charging(&id)? else { return Ok(None) };
            let Some(key) = record.state.cdr_key else { return Ok(None) };
            store.get_cdr(&key)
        })
        .await
        .map_err(|e| internal(&e))?
        .map_err(store_error)?;
        Ok(cdr.map(|record| {
            let cdr = record.cdr;
            CostBreakdown {
                currency: cdr.currency.to_string(),
                total_excl_vat: cdr.total_cost.excl_vat,
                total_incl_vat: cdr.total_cost.incl_vat,
                energy_kwh: cdr.total_energy,
                energy_excl_vat: cdr.total_energy_cost.map(|p| p.excl_vat),
                time_hours: cdr.total_time,
                time_excl_vat: cdr.total_time_cost.map(|p| p.excl_vat),
                parking_excl_vat: cdr.total_parking_cost.map(|p| p.excl_vat),
                fixed_excl_vat: cdr.total_fixed_cost.map(|p| p.excl_vat),
                reservation_excl_vat: cdr.total_reservation_cost.map(|p| p.excl_vat),
                tariff_ids: cdr.tariffs.iter().map(Tariff::key).collect(),
            }
        }))
    }
}

/// The answer to `startAdHocCharging` and `confirmAdHocCharging`.
#[derive(Debug, Clone, SimpleObject)]
pub struct AdHocCharging {
    pub status: AdHocStatus,
    pub payment: PaymentObject,
    /// For 3-D Secure (`REQUIRES_ACTION`): what the app's payment SDK needs to complete it.
    pub client_secret: Option<String>,
}

impl From<AdHocOutcome> for AdHocCharging {
    fn from(outcome: AdHocOutcome) -> Self {
        AdHocCharging { status: outcome.status, payment: outcome.payment.into(), client_secret: outcome.client_secret }
    }
}

/// The tariff an ad-hoc payer pays: an `AD_HOC_PAYMENT` tariff valid now when the connector has
/// one, else the one `priceEstimate` uses.
fn ad_hoc_tariff<'t>(candidates: &[&'t Tariff], at: DateTime<Utc>) -> Option<&'t Tariff> {
    let valid = |tariff: &&Tariff| {
        tariff.start_date_time.is_none_or(|start| start <= at) && tariff.end_date_time.is_none_or(|end| at < end)
    };
    candidates
        .iter()
        .copied()
        .filter(valid)
        .find(|t| t.tariff_type == Some(TariffType::AdHocPayment))
        .or_else(|| crate::tariff_book::choose_tariff(candidates.iter().copied(), at))
}

/// The hold for a request: the tariff's pre-authorization amount, else the estimate (incl. VAT
/// when known), at least [`MIN_HOLD_MINOR`], at most `max_hold`; all in minor units.
pub fn hold_amount(tariff: &Tariff, estimate: Option<Price>, max_hold: i64) -> async_graphql::Result<i64> {
    let amount = match (tariff.preauthorize_amount, estimate) {
        (Some(preauthorize), _) => preauthorize,
        (None, Some(price)) => price.incl_vat.unwrap_or(price.excl_vat),
        (None, None) => return Err(ApiCode::BadUserInput.error("this charger's tariff cannot be estimated")),
    };
    let minor = Money::new(amount, tariff.currency.clone())
        .to_minor_units()
        .ok_or_else(|| ApiCode::BadUserInput.error("the hold amount is out of range"))?;
    Ok(minor.clamp(MIN_HOLD_MINOR, max_hold.max(MIN_HOLD_MINOR)))
}

type Price = emsp_domain::Price;

#[derive(Default)]
pub struct PaymentsQuery;

#[Object]
impl PaymentsQuery {
    /// A payment (the driver's receipt): the driver's own, or any for ops; NOT_FOUND otherwise.
    async fn payment(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<PaymentObject> {
        viewer(ctx)?;
        let found = payments(ctx)?.payment(&id).await.map_err(payment_error)?;
        visible(ctx, found)?.map(Into::into).ok_or_else(|| ApiCode::NotFound.error("payment not found"))
    }
}

#[derive(Default)]
pub struct PaymentsMutation;

#[Object]
impl PaymentsMutation {
    /// Starts saving a card for later use (a SetupIntent): complete it in the app with the
    /// client secret; the card stays with the payment provider.
    async fn setup_card(&self, ctx: &Context<'_>) -> async_graphql::Result<CardSetup> {
        let claims = viewer(ctx)?.0.clone();
        payments(ctx)?.setup_card(&claims.sub, &claims.email).await.map_err(payment_error)
    }

    /// Charges at an EVSE without a contract, paid by card: holds the estimated cost (the
    /// tariff's pre-authorization amount, else the price of `energyKwh`, capped), then starts the
    /// session. `paymentMethodId` is the card the app's payment SDK returned; without it the
    /// driver's saved card is used. With 3-D Secure the answer is REQUIRES_ACTION with a client
    /// secret; charging starts once the bank confirms (or call `confirmAdHocCharging`).
    async fn start_ad_hoc_charging(
        &self,
        ctx: &Context<'_>,
        charger_id: ID,
        evse_uid: String,
        connector_id: Option<String>,
        #[graphql(desc = "The energy the hold is estimated for (default 20 kWh).")] energy_kwh: Option<f64>,
        payment_method_id: Option<String>,
    ) -> async_graphql::Result<AdHocCharging> {
        let claims = viewer(ctx)?.0.clone();
        let payments = payments(ctx)?;
        let energy_kwh = energy_kwh.unwrap_or(DEFAULT_ENERGY_KWH);
        if let Some(method) = &payment_method_id
            && (method.is_empty() || method.len() > 255 || !method.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ApiCode::BadUserInput.error("paymentMethodId is not a payment method id"));
        }
        let locations = ctx.data::<DataLoader<LocationLoader>>()?;
        let Some(location) = locations.load_one(charger_id.to_ascii_uppercase()).await? else {
            return Err(ApiCode::NotFound.error(format!("no charger {}", charger_id.as_str())));
        };
        let mut keys = tariff_keys(&location, Some(&evse_uid))?;
        // The connector's own tariffs first, when the driver chose one.
        if let Some(connector) = &connector_id {
            let own: Vec<String> = location
                .evses
                .iter()
                .filter(|e| e.uid.as_str().eq_ignore_ascii_case(&evse_uid))
                .flat_map(|e| &e.connectors)
                .filter(|c| c.id.as_str().eq_ignore_ascii_case(connector))
                .flat_map(|c| &c.tariff_ids)
                .map(|id| format!("{}*{}*{}", location.party.country_code, location.party.party_id, id.key()))
                .collect();
            if !own.is_empty() {
                keys = own;
            }
        }
        let tariffs = ctx.data::<DataLoader<TariffLoader>>()?;
        let found = tariffs.load_many(keys.clone()).await?;
        let now = Utc::now();
        let candidates: Vec<&Tariff> = keys.iter().filter_map(|key| found.get(key)).map(|t| &**t).collect();
        let Some(tariff) = ad_hoc_tariff(&candidates, now) else {
            return Err(ApiCode::BadUserInput.error("this charger has no known tariff; it cannot be paid by card"));
        };
        let estimate = match tariff.preauthorize_amount {
            Some(_) => None,
            None => {
                let power = max_power(&location, Some(&evse_uid));
                let estimate = estimate_with(&location, tariff, energy_kwh, now, power)?;
                Some(Price { excl_vat: estimate.total_excl_vat, incl_vat: estimate.total_incl_vat })
            }
        };
        let hold = hold_amount(tariff, estimate, payments.max_hold())?;
        let request = AdHocRequest {
            user_id: claims.sub.clone(),
            email: claims.email.clone(),
            charger_id: location.key(),
            evse_uid,
            connector_id,
            tariff_id: Some(tariff.key()),
            hold,
            currency: tariff.currency.to_string(),
            payment_method_id,
        };
        payments.start(request).await.map(Into::into).map_err(payment_error)
    }

    /// After 3-D Secure: reads the hold and starts charging once it is held. Repeating it is safe.
    async fn confirm_ad_hoc_charging(&self, ctx: &Context<'_>, payment_id: ID) -> async_graphql::Result<AdHocCharging> {
        let user = viewer(ctx)?.0.sub.clone();
        payments(ctx)?.confirm(&user, &payment_id).await.map(Into::into).map_err(payment_error)
    }

    /// Ops: refunds `amountMinor` (everything not yet refunded when absent) of a captured
    /// payment, for `reason` (kept in the payment's log).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn refund_payment(
        &self,
        ctx: &Context<'_>,
        payment_id: ID,
        amount_minor: Option<i64>,
        reason: String,
    ) -> async_graphql::Result<PaymentObject> {
        let ops = viewer(ctx)?.0.sub.clone();
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 500 {
            return Err(ApiCode::BadUserInput.error("reason must be 1 to 500 characters"));
        }
        if amount_minor.is_some_and(|a| a <= 0) {
            return Err(ApiCode::BadUserInput.error("amountMinor must be positive"));
        }
        let payments = payments(ctx)?;
        payments.refund(&ops, &payment_id, amount_minor, reason).await.map(Into::into).map_err(payment_error)
    }
}

/// The `payment` field of a charging session.
pub async fn payment_of_session(ctx: &Context<'_>, session_id: &str) -> async_graphql::Result<Option<PaymentObject>> {
    let Some(api) = ctx.data_opt::<CardPaymentsApi>() else { return Ok(None) };
    let found = api.0.payment_for_session(session_id).await.map_err(payment_error)?;
    Ok(visible(ctx, found)?.map(Into::into))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use emsp_domain::fixtures::tariff;
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn the_hold_is_the_preauthorization_amount_else_the_estimate_within_bounds() {
        let mut t = tariff("T1", "0.30");
        let estimate = Some(Price { excl_vat: dec!(10.00), incl_vat: Some(dec!(11.90)) });
        assert_eq!(hold_amount(&t, estimate.clone(), 15_000).unwrap(), 1190, "incl. VAT when known");
        let excl_only = Some(Price { excl_vat: dec!(10.004), incl_vat: None });
        assert_eq!(hold_amount(&t, excl_only, 15_000).unwrap(), 1000);
        assert_eq!(hold_amount(&t, estimate.clone(), 1000).unwrap(), 1000, "capped");
        let tiny = Some(Price { excl_vat: dec!(0.10), incl_vat: None });
        assert_eq!(hold_amount(&t, tiny, 15_000).unwrap(), MIN_HOLD_MINOR, "at least the minimum");
        t.preauthorize_amount = Some(dec!(25));
        assert_eq!(hold_amount(&t, estimate, 15_000).unwrap(), 2500, "the tariff's amount wins");
        assert!(hold_amount(&tariff("T2", "0.30"), None, 15_000).is_err());
    }

    #[test]
    fn an_ad_hoc_payer_pays_the_ad_hoc_tariff_when_there_is_one() {
        let now = Utc::now();
        let regular = tariff("REGULAR", "0.30");
        let mut ad_hoc = tariff("ADHOC", "0.59");
        ad_hoc.tariff_type = Some(TariffType::AdHocPayment);
        let mut expired = tariff("EXPIRED", "0.10");
        expired.tariff_type = Some(TariffType::AdHocPayment);
        expired.end_date_time = Some(now - chrono::Duration::days(1));
        let chosen = ad_hoc_tariff(&[&regular, &expired, &ad_hoc], now).unwrap();
        assert_eq!(chosen.id.as_str(), "ADHOC");
        let chosen = ad_hoc_tariff(&[&regular, &expired], now).unwrap();
        assert_eq!(chosen.id.as_str(), "REGULAR", "no valid ad-hoc tariff: the usual choice");
        assert!(ad_hoc_tariff(&[&expired], now).is_none());
    }
}
