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
    tokens (key) {
        key -> Text,
        country_code -> Text,
        party_id -> Text,
        uid -> Text,
        uid_key -> Text,
        token_type -> Text,
        contract_id -> Text,
        contract_key -> Text,
        visual_number -> Nullable<Text>,
        issuer -> Text,
        group_id -> Nullable<Text>,
        valid -> Bool,
        whitelist -> Text,
        language -> Nullable<Text>,
        default_profile_type -> Nullable<Text>,
        energy_contract -> Nullable<Text>,
        expires_at -> Nullable<Timestamp>,
        blocked_reason -> Nullable<Text>,
        user_id -> Nullable<Text>,
        fleet_id -> Nullable<Text>,
        created_at -> Timestamp,
        last_updated -> Timestamp,
    }
}

diesel::table! {
    token_audit (seq) {
        seq -> BigInt,
        token_key -> Text,
        action -> Text,
        actor -> Text,
        before -> Nullable<Text>,
        after -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    token_authorizations (authorization_reference) {
        authorization_reference -> Text,
        token_key -> Text,
        uid -> Text,
        partner_id -> Nullable<Text>,
        allowed -> Text,
        location_id -> Nullable<Text>,
        evse_uids -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    token_push_state (partner_id) {
        partner_id -> Text,
        repush_from -> Nullable<Timestamp>,
        last_push_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    fleets (id) {
        id -> Text,
        name -> Text,
        street -> Text,
        additional_address -> Nullable<Text>,
        postal_code -> Text,
        city -> Text,
        country -> Text,
        vat_id -> Nullable<Text>,
        time_zone -> Text,
        currency -> Text,
        billing_email -> Text,
        buyer_reference -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    fleet_members (fleet_id, user_id) {
        fleet_id -> Text,
        user_id -> Text,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    document_counters (series, year) {
        series -> Text,
        year -> Integer,
        last_number -> BigInt,
    }
}

diesel::table! {
    invoices (id) {
        id -> Text,
        fleet_id -> Text,
        kind -> Text,
        status -> Text,
        series -> Text,
        year -> Nullable<Integer>,
        number -> Nullable<BigInt>,
        display_number -> Nullable<Text>,
        period -> Text,
        issue_date -> Date,
        due_date -> Nullable<Date>,
        currency -> Text,
        net_total -> Text,
        vat_total -> Text,
        gross_total -> Text,
        preceding_invoice_id -> Nullable<Text>,
        document -> Text,
        created_at -> Timestamp,
        issued_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    invoice_lines (invoice_id, position) {
        invoice_id -> Text,
        position -> Integer,
        cdr_id -> Text,
        credit -> Bool,
        ended_at -> Timestamp,
        net -> Text,
        vat_rate -> Text,
        vat -> Text,
    }
}

diesel::joinable!(partner_parties -> partners (partner_id));
diesel::joinable!(evses -> locations (location_key));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(tokens -> users (user_id));
diesel::joinable!(token_push_state -> partners (partner_id));
diesel::joinable!(fleet_members -> fleets (fleet_id));
diesel::joinable!(fleet_members -> users (user_id));
diesel::joinable!(invoices -> fleets (fleet_id));
diesel::joinable!(invoice_lines -> invoices (invoice_id));

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
    signing_keys,
    tokens,
    token_audit,
    token_authorizations,
    token_push_state,
    fleets,
    fleet_members,
    document_counters,
    invoices,
    invoice_lines,
    payments,
    payment_webhook_events,
    payment_actions,
    cdrs,
    payment_customers,
    adhoc_charges,
);

diesel::table! {
    charging_sessions (id) {
        id -> Text,
        user_id -> Text,
        partner_id -> Text,
        location_key -> Text,
        evse_uid -> Text,
        connector_id -> Nullable<Text>,
        token_uid -> Text,
        contract_id -> Text,
        authorization_reference -> Text,
        phase -> Text,
        failure -> Nullable<Text>,
        session_key -> Nullable<Text>,
        cdr_key -> Nullable<Text>,
        state -> Text,
        preferences -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    charge_commands (id) {
        id -> Text,
        partner_id -> Text,
        user_id -> Nullable<Text>,
        charging_id -> Nullable<Text>,
        command -> Text,
        reservation_id -> Nullable<Text>,
        request -> Text,
        response -> Nullable<Text>,
        result -> Nullable<Text>,
        timed_out_at -> Nullable<Timestamp>,
        deadline -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    cpo_sessions (key) {
        key -> Text,
        country_code -> Text,
        party_id -> Text,
        session_id -> Text,
        partner_id -> Text,
        charging_id -> Nullable<Text>,
        authorization_reference -> Nullable<Text>,
        token_uid -> Text,
        status -> Text,
        last_updated -> Timestamp,
        document -> Text,
        version -> Text,
        stored_at -> Timestamp,
    }
}

diesel::table! {
    cdrs (key) {
        key -> Text,
        country_code -> Text,
        party_id -> Text,
        cdr_id -> Text,
        partner_id -> Text,
        session_key -> Nullable<Text>,
        charging_id -> Nullable<Text>,
        token_uid -> Text,
        currency -> Text,
        total_cost_excl -> Text,
        total_cost_incl -> Nullable<Text>,
        our_cost_excl -> Nullable<Text>,
        our_cost_incl -> Nullable<Text>,
        price_check -> Text,
        price_note -> Nullable<Text>,
        document -> Text,
        raw -> Text,
        version -> Text,
        received_at -> Timestamp,
        token_key -> Nullable<Text>,
        ended_at -> Timestamp,
        credit -> Bool,
        billing_at -> Timestamp,
        fleet_id -> Nullable<Text>,
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

diesel::table! {
    payment_customers (user_id) {
        user_id -> Text,
        customer_id -> Text,
        payment_method_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    adhoc_charges (payment_id) {
        payment_id -> Text,
        user_id -> Text,
        location_key -> Text,
        evse_uid -> Text,
        connector_id -> Nullable<Text>,
        tariff_id -> Nullable<Text>,
        state -> Text,
        charging_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}
