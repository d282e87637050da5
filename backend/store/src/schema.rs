//! The diesel schema, shared by SQLite and PostgreSQL: only portable types (Text, BigInt, Integer,
//! Double, Bool, Binary, Timestamp). JSON documents are Text so both backends read them alike.
//! Kept by hand beside `migrations/{sqlite,postgres}`; `schema_matches_migrations` in the test suite
//! checks every column here exists on both backends.

diesel::table! {
    partners (id) {
        id -> Text,
        name -> Text,
        status -> Text,
        versions_url -> Nullable<Text>,
        version -> Nullable<Text>,
        endpoints -> Text,
        incoming_token_hash -> Nullable<Text>,
        outgoing_token_enc -> Nullable<Binary>,
        token_encoding -> Nullable<Text>,
        last_pull_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    partner_parties (partner_id, country_code, party_id, role) {
        partner_id -> Text,
        country_code -> Text,
        party_id -> Text,
        role -> Text,
        name -> Nullable<Text>,
        status -> Text,
        last_updated -> Timestamp,
    }
}

diesel::table! {
    locations (key) {
        key -> Text,
        country_code -> Text,
        party_id -> Text,
        location_id -> Text,
        partner_id -> Nullable<Text>,
        name -> Nullable<Text>,
        address -> Text,
        city -> Text,
        postal_code -> Nullable<Text>,
        country -> Text,
        latitude -> Double,
        longitude -> Double,
        time_zone -> Nullable<Text>,
        publish -> Bool,
        last_updated -> Timestamp,
        content_hash -> Text,
        document -> Text,
        stored_at -> Timestamp,
    }
}

diesel::table! {
    evses (location_key, uid) {
        location_key -> Text,
        uid -> Text,
        position -> Integer,
        evse_id -> Nullable<Text>,
        status -> Text,
        capabilities -> Text,
        max_power_kw -> Double,
        last_updated -> Timestamp,
        document -> Text,
    }
}

diesel::table! {
    connectors (location_key, evse_uid, connector_id) {
        location_key -> Text,
        evse_uid -> Text,
        connector_id -> Text,
        standard -> Text,
        format -> Text,
        power_type -> Text,
        max_voltage -> Integer,
        max_amperage -> Integer,
        max_electric_power -> Nullable<Integer>,
        max_power_kw -> Double,
        tariff_ids -> Text,
        last_updated -> Timestamp,
    }
}

diesel::table! {
    tariffs (key) {
        key -> Text,
        country_code -> Text,
        party_id -> Text,
        tariff_id -> Text,
        partner_id -> Nullable<Text>,
        currency -> Text,
        last_updated -> Timestamp,
        content_hash -> Text,
        document -> Text,
        stored_at -> Timestamp,
    }
}

diesel::table! {
    change_feed (seq) {
        seq -> BigInt,
        kind -> Text,
        entity_key -> Text,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Nullable<Text>,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        user_id -> Text,
        family_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        private_key_enc -> Binary,
        public_key -> Text,
        created_at -> Timestamp,
        retire_after -> Nullable<Timestamp>,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        currency -> Text,
        hold_amount -> BigInt,
        phase -> Text,
        amount_capturable -> BigInt,
        amount_captured -> BigInt,
        amount_refunded -> BigInt,
        disputed -> Bool,
        amount_due -> Nullable<BigInt>,
        intent_id -> Nullable<Text>,
        customer_id -> Nullable<Text>,
        payment_method_id -> Nullable<Text>,
        capture_attempt -> Integer,
        difference_phase -> Nullable<Text>,
        difference_amount -> BigInt,
        difference_captured -> BigInt,
        difference_intent_id -> Nullable<Text>,
        difference_attempt -> Integer,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payment_webhook_events (event_id) {
        event_id -> Text,
        event_type -> Text,
        payment_id -> Nullable<Text>,
        outcome -> Text,
        event_created_at -> Timestamp,
        received_at -> Timestamp,
    }
}

diesel::table! {
    payment_actions (seq) {
        seq -> BigInt,
        payment_id -> Text,
        actor -> Text,
        action -> Text,
        detail -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(partner_parties -> partners (partner_id));
diesel::joinable!(evses -> locations (location_key));
diesel::joinable!(refresh_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    partners,
    partner_parties,
    locations,
    evses,
    connectors,
    tariffs,
    change_feed,
    users,
    refresh_tokens,
    signing_keys
);
