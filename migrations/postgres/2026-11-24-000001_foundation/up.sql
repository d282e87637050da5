-- Foundation: roaming partners, locations with their EVSEs and connectors, tariffs, change feed.
-- Timestamps are UTC. Ids of partner objects are stored in the case-folded key form `CC*PID*ID`.

CREATE TABLE partners (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    versions_url TEXT,
    version TEXT,
    endpoints TEXT NOT NULL DEFAULT '[]',
    incoming_token_hash TEXT,
    outgoing_token_enc BYTEA,
    token_encoding TEXT,
    last_pull_at TIMESTAMP,
    last_error TEXT,
    last_error_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX partners_incoming_token_hash ON partners (incoming_token_hash);

CREATE TABLE partner_parties (
    partner_id TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    country_code TEXT NOT NULL,
    party_id TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT,
    status TEXT NOT NULL,
    last_updated TIMESTAMP NOT NULL,
    PRIMARY KEY (partner_id, country_code, party_id, role)
);
CREATE INDEX partner_parties_party ON partner_parties (country_code, party_id);

CREATE TABLE locations (
    key TEXT PRIMARY KEY NOT NULL,
    country_code TEXT NOT NULL,
    party_id TEXT NOT NULL,
    location_id TEXT NOT NULL,
    partner_id TEXT REFERENCES partners (id) ON DELETE SET NULL,
    name TEXT,
    address TEXT NOT NULL,
    city TEXT NOT NULL,
    postal_code TEXT,
    country TEXT NOT NULL,
    latitude DOUBLE PRECISION NOT NULL,
    longitude DOUBLE PRECISION NOT NULL,
    time_zone TEXT,
    publish BOOLEAN NOT NULL,
    last_updated TIMESTAMP NOT NULL,
    content_hash TEXT NOT NULL,
    document TEXT NOT NULL,
    stored_at TIMESTAMP NOT NULL
);
CREATE INDEX locations_party ON locations (country_code, party_id);
CREATE INDEX locations_last_updated ON locations (last_updated);

CREATE TABLE evses (
    location_key TEXT NOT NULL REFERENCES locations (key) ON DELETE CASCADE,
    uid TEXT NOT NULL,
    position INTEGER NOT NULL,
    evse_id TEXT,
    status TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    max_power_kw DOUBLE PRECISION NOT NULL,
    last_updated TIMESTAMP NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (location_key, uid)
);
CREATE INDEX evses_evse_id ON evses (evse_id);

CREATE TABLE connectors (
    location_key TEXT NOT NULL,
    evse_uid TEXT NOT NULL,
    connector_id TEXT NOT NULL,
    standard TEXT NOT NULL,
    format TEXT NOT NULL,
    power_type TEXT NOT NULL,
    max_voltage INTEGER NOT NULL,
    max_amperage INTEGER NOT NULL,
    max_electric_power INTEGER,
    max_power_kw DOUBLE PRECISION NOT NULL,
    tariff_ids TEXT NOT NULL,
    last_updated TIMESTAMP NOT NULL,
    PRIMARY KEY (location_key, evse_uid, connector_id),
    FOREIGN KEY (location_key, evse_uid) REFERENCES evses (location_key, uid) ON DELETE CASCADE
);
CREATE INDEX connectors_standard ON connectors (standard);

CREATE TABLE tariffs (
    key TEXT PRIMARY KEY NOT NULL,
    country_code TEXT NOT NULL,
    party_id TEXT NOT NULL,
    tariff_id TEXT NOT NULL,
    partner_id TEXT REFERENCES partners (id) ON DELETE SET NULL,
    currency TEXT NOT NULL,
    last_updated TIMESTAMP NOT NULL,
    content_hash TEXT NOT NULL,
    document TEXT NOT NULL,
    stored_at TIMESTAMP NOT NULL
);
CREATE INDEX tariffs_party ON tariffs (country_code, party_id);

-- The outbox: every change to searchable data, in commit order. BIGSERIAL: a sequence
-- number is never reused. Writers take an advisory lock before appending (see the store crate),
-- so sequence numbers become visible in commit order and a reader tailing by seq misses nothing.
CREATE TABLE change_feed (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
