-- Tokens: the RFID cards and app identities we issue (we are the token owner in OCPI), the audit
-- log of every change to them, the authorizations we answered in real time, and per partner the
-- state of the token pushes.
-- `key` is `CC*PID*UID` in upper case: a uid is unique per party in any case. `uid_key` is the
-- upper-case uid (CPOs authorize by uid alone), `contract_key` the contract id in upper case
-- without separators (`NL-ABC-C12345678-X` and `nlabcc12345678x` are one contract). A driver has at
-- most one APP_USER token (the partial unique index), which makes issuing it on first use safe
-- under concurrent requests. `fleet_id` has no foreign key: fleets come later.

CREATE TABLE tokens (
    key TEXT PRIMARY KEY NOT NULL,
    country_code TEXT NOT NULL,
    party_id TEXT NOT NULL,
    uid TEXT NOT NULL,
    uid_key TEXT NOT NULL,
    token_type TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    contract_key TEXT NOT NULL,
    visual_number TEXT,
    issuer TEXT NOT NULL,
    group_id TEXT,
    valid BOOLEAN NOT NULL,
    whitelist TEXT NOT NULL,
    language TEXT,
    default_profile_type TEXT,
    energy_contract TEXT,
    expires_at TIMESTAMP,
    blocked_reason TEXT,
    user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    fleet_id TEXT,
    created_at TIMESTAMP NOT NULL,
    last_updated TIMESTAMP NOT NULL
);
-- (uid_key, key): `get_token` filters by uid and orders by key; with the key in the index the
-- planner never walks the primary key in order filtering rows (a full scan at 100k tokens).
CREATE INDEX tokens_uid ON tokens (uid_key, key);
CREATE INDEX tokens_contract ON tokens (contract_key);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_fleet ON tokens (fleet_id);
CREATE INDEX tokens_last_updated ON tokens (last_updated, key);
CREATE UNIQUE INDEX tokens_app_user ON tokens (user_id) WHERE token_type = 'APP_USER' AND user_id IS NOT NULL;

-- Who changed which token, when, and how: `before`/`after` are the token's JSON (NULL for a
-- token that did not exist before). Never updated, never deleted with the token.
CREATE TABLE token_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    token_key TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    before TEXT,
    after TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX token_audit_token ON token_audit (token_key, seq);
CREATE INDEX token_audit_created ON token_audit (created_at);

-- Real-time authorizations (OCPI `POST tokens/{uid}/authorize`): the reference we gave the CPO,
-- so the sessions and CDRs it later sends can be matched to the token, driver and decision.
CREATE TABLE token_authorizations (
    authorization_reference TEXT PRIMARY KEY NOT NULL,
    token_key TEXT NOT NULL,
    uid TEXT NOT NULL,
    partner_id TEXT,
    allowed TEXT NOT NULL,
    location_id TEXT,
    evse_uids TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX token_authorizations_token ON token_authorizations (token_key, created_at);

-- Token pushes per partner: a failed push sets `repush_from` (the oldest change not delivered);
-- the partner's next pull cycle pushes every token changed since then and clears it.
CREATE TABLE token_push_state (
    partner_id TEXT PRIMARY KEY NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    repush_from TIMESTAMP,
    last_push_at TIMESTAMP,
    last_error TEXT,
    last_error_at TIMESTAMP
);
