//! Ad-hoc charging paid by card: each driver's payment-provider customer, and the request that
//! joins a card hold to the charging session it pays for.
//!
//! An ad-hoc request moves `AWAITING_HOLD` -> `STARTING` -> `STARTED`, or to `ABANDONED`. Every
//! move is one conditional `UPDATE ... WHERE state = <expected>`, so of several callers that try
//! the same move (the mutation, a webhook, the confirm mutation, start-up recovery) exactly one
//! wins: a session is started at most once per hold.

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;

use crate::database::{Store, per_backend};
use crate::error::StoreResult;
use crate::payments::PaymentRecord;
use crate::schema::{adhoc_charges, payment_customers, payments};

/// Where an ad-hoc request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdHocState {
    /// The hold is being placed (or waits for 3-D Secure).
    AwaitingHold,
    /// Claimed by one caller: the token is issued and START_SESSION is being sent.
    Starting,
    /// START_SESSION was sent; the charging session decides what happens to the hold.
    Started,
    /// No session will start: the hold failed or was released.
    Abandoned,
}

impl AdHocState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdHocState::AwaitingHold => "AWAITING_HOLD",
            AdHocState::Starting => "STARTING",
            AdHocState::Started => "STARTED",
            AdHocState::Abandoned => "ABANDONED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "AWAITING_HOLD" => AdHocState::AwaitingHold,
            "STARTING" => AdHocState::Starting,
            "STARTED" => AdHocState::Started,
            "ABANDONED" => AdHocState::Abandoned,
            _ => return None,
        })
    }
}

/// One ad-hoc charging request as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = adhoc_charges)]
pub struct AdHocCharge {
    /// Also the id of the payment (`payments.id`).
    pub payment_id: String,
    pub user_id: String,
    pub location_key: String,
    pub evse_uid: String,
    pub connector_id: Option<String>,
    /// The tariff the hold was computed from (`CC*PID*ID`), if one was known.
    pub tariff_id: Option<String>,
    /// [`AdHocState`] as text.
    pub state: String,
    /// The driver's charging session, from the moment the request was claimed.
    pub charging_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl AdHocCharge {
    pub fn state(&self) -> Option<AdHocState> {
        AdHocState::parse(&self.state)
    }
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

impl Store {
    /// The provider customer of `user_id`, if one was created.
    pub fn payment_customer(&self, user_id: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn()?;
        Ok(payment_customers::table
            .find(user_id)
            .select(payment_customers::customer_id)
            .first(&mut *conn)
            .optional()?)
    }

    /// Keeps `customer_id` as the provider customer of `user_id` unless one is kept already;
    /// returns the one that is kept (the first writer wins).
    pub fn keep_payment_customer(&self, user_id: &str, customer_id: &str) -> StoreResult<String> {
        self.write(|conn| {
            let values = (
                payment_customers::user_id.eq(user_id),
                payment_customers::customer_id.eq(customer_id),
                payment_customers::created_at.eq(now()),
            );
            per_backend!(conn, |c| diesel::insert_into(payment_customers::table)
                .values(values)
                .on_conflict_do_nothing()
                .execute(c))?;
            Ok(payment_customers::table.find(user_id).select(payment_customers::customer_id).first(conn)?)
        })
    }

    /// Notes `payment_method_id` as the card customer `customer_id` saved last. False when the
    /// customer is not one of ours.
    pub fn set_saved_card(&self, customer_id: &str, payment_method_id: &str) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let updated = diesel::update(payment_customers::table.filter(payment_customers::customer_id.eq(customer_id)))
            .set(payment_customers::payment_method_id.eq(payment_method_id))
            .execute(&mut *conn)?;
        Ok(updated == 1)
    }

    /// The card driver `user_id` saved last, if any.
    pub fn saved_card(&self, user_id: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn()?;
        Ok(payment_customers::table
            .find(user_id)
            .select(payment_customers::payment_method_id)
            .first::<Option<String>>(&mut *conn)
            .optional()?
            .flatten())
    }

    /// Records a new ad-hoc request (state `AWAITING_HOLD`). Recording the same payment id again
    /// keeps the first row.
    pub fn create_adhoc(&self, charge: &AdHocCharge) -> StoreResult<AdHocCharge> {
        let mut charge = charge.clone();
        charge.state = AdHocState::AwaitingHold.as_str().to_owned();
        charge.charging_id = None;
        charge.created_at = now();
        charge.updated_at = charge.created_at;
        self.write(|conn| {
            per_backend!(conn, |c| diesel::insert_into(adhoc_charges::table)
                .values(&charge)
                .on_conflict_do_nothing()
                .execute(c))?;
            Ok(adhoc_charges::table.find(&charge.payment_id).first(conn)?)
        })
    }

    pub fn get_adhoc(&self, payment_id: &str) -> StoreResult<Option<AdHocCharge>> {
        let mut conn = self.conn()?;
        Ok(adhoc_charges::table.find(payment_id).first(&mut *conn).optional()?)
    }

    /// The ad-hoc request a charging session was started for.
    pub fn adhoc_for_charging(&self, charging_id: &str) -> StoreResult<Option<AdHocCharge>> {
        let mut conn = self.conn()?;
        Ok(adhoc_charges::table.filter(adhoc_charges::charging_id.eq(charging_id)).first(&mut *conn).optional()?)
    }

    /// Moves request `payment_id` from `from` to `to` if it is still in `from`, setting the
    /// charging id when one is given. True when this call made the move (exactly one of several
    /// concurrent callers does).
    pub fn move_adhoc(
        &self,
        payment_id: &str,
        from: AdHocState,
        to: AdHocState,
        charging_id: Option<&str>,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let target = adhoc_charges::table
                .filter(adhoc_charges::payment_id.eq(payment_id))
                .filter(adhoc_charges::state.eq(from.as_str()));
            let moved = match charging_id {
                Some(charging) => diesel::update(target)
                    .set((
                        adhoc_charges::state.eq(to.as_str()),
                        adhoc_charges::charging_id.eq(charging),
                        adhoc_charges::updated_at.eq(now()),
                    ))
                    .execute(conn)?,
                None => diesel::update(target)
                    .set((adhoc_charges::state.eq(to.as_str()), adhoc_charges::updated_at.eq(now())))
                    .execute(conn)?,
            };
            Ok(moved == 1)
        })
    }

    /// Requests in `state` whose last change (creation or move) is older than `updated_before`,
    /// least recently changed first: those no live caller is working on any more (recovery).
    pub fn adhoc_stale(
        &self,
        state: AdHocState,
        updated_before: NaiveDateTime,
        limit: i64,
    ) -> StoreResult<Vec<AdHocCharge>> {
        let mut conn = self.conn()?;
        Ok(adhoc_charges::table
            .filter(adhoc_charges::state.eq(state.as_str()))
            .filter(adhoc_charges::updated_at.lt(updated_before))
            .order((adhoc_charges::updated_at.asc(), adhoc_charges::payment_id.asc()))
            .limit(limit)
            .load(&mut *conn)?)
    }

    /// Requests in `state` whose payment is in one of `payment_phases`, oldest first: the
    /// sessions whose hold still waits for its outcome (the settlement sweep).
    pub fn adhoc_with_payment_in(
        &self,
        state: AdHocState,
        payment_phases: &[&str],
        limit: i64,
    ) -> StoreResult<Vec<AdHocCharge>> {
        let mut conn = self.conn()?;
        let open = payments::table.filter(payments::phase.eq_any(payment_phases)).select(payments::id);
        Ok(adhoc_charges::table
            .filter(adhoc_charges::state.eq(state.as_str()))
            .filter(adhoc_charges::payment_id.eq_any(open))
            .order((adhoc_charges::created_at.asc(), adhoc_charges::payment_id.asc()))
            .limit(limit)
            .load(&mut *conn)?)
    }

    /// Requests in `state` whose payment, in `phase`, collected less than its amount due, with
    /// no difference charge or one still `pending_difference`, oldest first: a capture or a
    /// difference whose call failed or whose answer was lost (the settlement sweep).
    pub fn adhoc_owing(
        &self,
        state: AdHocState,
        phase: &str,
        pending_difference: &str,
        limit: i64,
    ) -> StoreResult<Vec<AdHocCharge>> {
        let mut conn = self.conn()?;
        let owing = payments::table
            .filter(payments::phase.eq(phase))
            .filter((payments::amount_captured + payments::difference_captured).nullable().lt(payments::amount_due))
            .filter(payments::difference_phase.is_null().or(payments::difference_phase.eq(pending_difference)))
            .select(payments::id);
        Ok(adhoc_charges::table
            .filter(adhoc_charges::state.eq(state.as_str()))
            .filter(adhoc_charges::payment_id.eq_any(owing))
            .order((adhoc_charges::created_at.asc(), adhoc_charges::payment_id.asc()))
            .limit(limit)
            .load(&mut *conn)?)
    }

    /// The payment of a charging session, if one pays for it.
    pub fn payment_for_session(&self, session_id: &str) -> StoreResult<Option<PaymentRecord>> {
        let mut conn = self.conn()?;
        Ok(payments::table.filter(payments::session_id.eq(session_id)).first(&mut *conn).optional()?)
    }
}
