-- Ad-hoc charging paid by card: what joins a payment (hold) to the charging session it pays for.
-- `payment_customers`: the payment provider's customer of each driver, created once, and the
-- provider's id of the card saved last (`setup_intent.succeeded`); cards stay with the provider.
-- `adhoc_charges`: one row per startAdHocCharging request, written with the payment row, before
-- the provider is called. `state` moves AWAITING_HOLD -> STARTING (claimed by exactly one caller:
-- the mutation, a webhook, or the confirm mutation) -> STARTED (START_SESSION sent), or to
-- ABANDONED (the hold failed, or recovery released it); `charging_id` is the driver session.

CREATE TABLE payment_customers (
    user_id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    payment_method_id TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX payment_customers_customer ON payment_customers (customer_id);

CREATE TABLE adhoc_charges (
    payment_id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    location_key TEXT NOT NULL,
    evse_uid TEXT NOT NULL,
    connector_id TEXT,
    tariff_id TEXT,
    state TEXT NOT NULL,
    charging_id TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX adhoc_charges_state ON adhoc_charges (state, created_at);
CREATE UNIQUE INDEX adhoc_charges_charging ON adhoc_charges (charging_id);
CREATE INDEX adhoc_charges_user ON adhoc_charges (user_id, created_at);
