-- Charging: the driver's sessions (our state machine), the commands we send to CPOs, and the
-- sessions and CDRs CPOs send us. Amounts are decimal strings (exact on both backends); documents
-- are JSON text. A CDR keeps its body exactly as received (`raw`), signed meter data included.

CREATE TABLE charging_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    location_key TEXT NOT NULL,
    evse_uid TEXT NOT NULL,
    connector_id TEXT,
    token_uid TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    authorization_reference TEXT NOT NULL,
    phase TEXT NOT NULL,
    failure TEXT,
    session_key TEXT,
    cdr_key TEXT,
    state TEXT NOT NULL,
    preferences TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX charging_sessions_reference ON charging_sessions (authorization_reference);
CREATE INDEX charging_sessions_user ON charging_sessions (user_id, created_at);
CREATE INDEX charging_sessions_session ON charging_sessions (session_key);
CREATE INDEX charging_sessions_token ON charging_sessions (token_uid, created_at);

CREATE TABLE charge_commands (
    id TEXT PRIMARY KEY NOT NULL,
    partner_id TEXT NOT NULL,
    user_id TEXT,
    charging_id TEXT,
    command TEXT NOT NULL,
    reservation_id TEXT,
    request TEXT NOT NULL,
    response TEXT,
    result TEXT,
    timed_out_at TIMESTAMP,
    deadline TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX charge_commands_pending ON charge_commands (deadline) WHERE result IS NULL;
CREATE INDEX charge_commands_user ON charge_commands (user_id, created_at);

CREATE TABLE cpo_sessions (
    key TEXT PRIMARY KEY NOT NULL,
    country_code TEXT NOT NULL,
    party_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    charging_id TEXT,
    authorization_reference TEXT,
    token_uid TEXT NOT NULL,
    status TEXT NOT NULL,
    last_updated TIMESTAMP NOT NULL,
    document TEXT NOT NULL,
    version TEXT NOT NULL,
    stored_at TIMESTAMP NOT NULL
);
CREATE INDEX cpo_sessions_charging ON cpo_sessions (charging_id);

CREATE TABLE cdrs (
    key TEXT PRIMARY KEY NOT NULL,
    country_code TEXT NOT NULL,
    party_id TEXT NOT NULL,
    cdr_id TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    session_key TEXT,
    charging_id TEXT,
    token_uid TEXT NOT NULL,
    currency TEXT NOT NULL,
    total_cost_excl TEXT NOT NULL,
    total_cost_incl TEXT,
    our_cost_excl TEXT,
    our_cost_incl TEXT,
    price_check TEXT NOT NULL,
    price_note TEXT,
    document TEXT NOT NULL,
    raw TEXT NOT NULL,
    version TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX cdrs_charging ON cdrs (charging_id);
CREATE INDEX cdrs_price_check ON cdrs (price_check, received_at);
