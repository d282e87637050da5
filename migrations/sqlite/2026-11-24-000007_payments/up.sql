-- Card payments (ad-hoc charging paid by card through the payment provider, Stripe).
-- One payments row per charging payment: the hold (a PaymentIntent with manual capture) and, when
-- the session cost more than the hold, the off-session charge of the difference. Amounts are in
-- minor units of `currency`; no card data is ever stored, only the provider's ids.
-- The row is written before the provider is called, so a webhook that arrives before our own call
-- returned finds it (the provider echoes our id in the intent's metadata).

CREATE TABLE payments (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT,
    session_id TEXT,
    currency TEXT NOT NULL,
    hold_amount BIGINT NOT NULL CHECK (hold_amount > 0),
    phase TEXT NOT NULL,
    amount_capturable BIGINT NOT NULL DEFAULT 0,
    amount_captured BIGINT NOT NULL DEFAULT 0,
    amount_refunded BIGINT NOT NULL DEFAULT 0,
    disputed BOOLEAN NOT NULL DEFAULT 0,
    amount_due BIGINT,
    intent_id TEXT,
    customer_id TEXT,
    payment_method_id TEXT,
    capture_attempt INTEGER NOT NULL DEFAULT 0,
    difference_phase TEXT,
    difference_amount BIGINT NOT NULL DEFAULT 0,
    difference_captured BIGINT NOT NULL DEFAULT 0,
    difference_intent_id TEXT,
    difference_attempt INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX payments_intent ON payments (intent_id);
CREATE UNIQUE INDEX payments_difference_intent ON payments (difference_intent_id);
CREATE INDEX payments_phase ON payments (phase, created_at);
CREATE INDEX payments_session ON payments (session_id);

-- Provider events already processed, recorded in the same transaction as the change they caused:
-- a redelivered event finds its id here and changes nothing.
CREATE TABLE payment_webhook_events (
    event_id TEXT PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    payment_id TEXT,
    outcome TEXT NOT NULL,
    event_created_at TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL
);

-- What was done to a payment, by whom (api, webhook, reconcile, ops), for operations.
CREATE TABLE payment_actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_actions_payment ON payment_actions (payment_id, seq);
