//! Required fields (cardinality 1 or +) of the OCPI objects the simulator sends, taken from the
//! specification's object tables (ocpi/ocpi tags 2.2.1 and 2.1.1). The EMSP side parses against the
//! same tables, so a missing field here is a broken contract.

use serde_json::Value;

pub const LOCATION_2_2_1: &[&str] = &[
    "country_code",
    "party_id",
    "id",
    "publish",
    "address",
    "city",
    "country",
    "coordinates",
    "time_zone",
    "last_updated",
];
pub const EVSE_2_2_1: &[&str] = &["uid", "status", "connectors", "last_updated"];
pub const CONNECTOR_2_2_1: &[&str] =
    &["id", "standard", "format", "power_type", "max_voltage", "max_amperage", "last_updated"];
pub const TARIFF_2_2_1: &[&str] = &["country_code", "party_id", "id", "currency", "elements", "last_updated"];
pub const SESSION_2_2_1: &[&str] = &[
    "country_code",
    "party_id",
    "id",
    "start_date_time",
    "kwh",
    "cdr_token",
    "auth_method",
    "location_id",
    "evse_uid",
    "connector_id",
    "currency",
    "status",
    "last_updated",
];
pub const CDR_TOKEN_2_2_1: &[&str] = &["country_code", "party_id", "uid", "type", "contract_id"];
pub const CDR_2_2_1: &[&str] = &[
    "country_code",
    "party_id",
    "id",
    "start_date_time",
    "end_date_time",
    "cdr_token",
    "auth_method",
    "cdr_location",
    "currency",
    "charging_periods",
    "total_cost",
    "total_energy",
    "total_time",
    "last_updated",
];
pub const CDR_LOCATION_2_2_1: &[&str] = &[
    "id",
    "address",
    "city",
    "country",
    "coordinates",
    "evse_uid",
    "evse_id",
    "connector_id",
    "connector_standard",
    "connector_format",
    "connector_power_type",
];
pub const CREDENTIALS_2_2_1: &[&str] = &["token", "url", "roles"];
pub const CREDENTIALS_ROLE_2_2_1: &[&str] = &["role", "business_details", "party_id", "country_code"];

pub const LOCATION_2_1_1: &[&str] =
    &["id", "type", "address", "city", "postal_code", "country", "coordinates", "last_updated"];
pub const CONNECTOR_2_1_1: &[&str] = &["id", "standard", "format", "power_type", "voltage", "amperage", "last_updated"];
pub const SESSION_2_1_1: &[&str] =
    &["id", "start_datetime", "kwh", "auth_id", "auth_method", "location", "currency", "status", "last_updated"];

/// Fails naming the missing (or null) fields.
pub fn assert_fields(object: &Value, required: &[&str], what: &str) {
    let missing: Vec<&&str> = required.iter().filter(|f| object.get(**f).is_none_or(Value::is_null)).collect();
    assert!(missing.is_empty(), "{what} lacks {missing:?}: {object}");
}

/// A 2.2.1 location with every EVSE and connector.
pub fn assert_location_2_2_1(location: &Value) {
    assert_fields(location, LOCATION_2_2_1, "Location");
    for evse in location["evses"].as_array().into_iter().flatten() {
        assert_fields(evse, EVSE_2_2_1, "EVSE");
        for connector in evse["connectors"].as_array().into_iter().flatten() {
            assert_fields(connector, CONNECTOR_2_2_1, "Connector");
        }
    }
}
