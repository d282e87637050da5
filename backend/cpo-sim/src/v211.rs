//! OCPI 2.1.1 shapes of the objects the generator makes in 2.2.1. A 2.1.1 CPO has no owner fields
//! on its objects, one `tariff_id` per connector, `voltage`/`amperage` instead of `max_*`, a
//! location `type` instead of `parking_type`, and no VAT on price components.

use serde_json::{Map, Value};

pub fn location(v221: &Value) -> Value {
    let mut location = v221.clone();
    let Some(map) = location.as_object_mut() else { return location };
    for field in ["country_code", "party_id", "publish", "publish_allowed_to", "parking_type"] {
        map.remove(field);
    }
    let kind = match v221.get("parking_type").and_then(Value::as_str) {
        Some("ON_STREET") => "ON_STREET",
        Some("PARKING_GARAGE") => "PARKING_GARAGE",
        Some("UNDERGROUND_GARAGE") => "UNDERGROUND_GARAGE",
        Some("PARKING_LOT") => "PARKING_LOT",
        Some(_) => "OTHER",
        None => "UNKNOWN",
    };
    map.insert("type".to_owned(), Value::String(kind.to_owned()));
    if let Some(evses) = map.get_mut("evses").and_then(Value::as_array_mut) {
        for evse in evses {
            let Some(connectors) = evse.get_mut("connectors").and_then(Value::as_array_mut) else { continue };
            for connector in connectors {
                if let Some(connector) = connector.as_object_mut() {
                    downgrade_connector(connector);
                }
            }
        }
    }
    location
}

fn downgrade_connector(connector: &mut Map<String, Value>) {
    if let Some(volts) = connector.remove("max_voltage") {
        connector.insert("voltage".to_owned(), volts);
    }
    if let Some(amps) = connector.remove("max_amperage") {
        connector.insert("amperage".to_owned(), amps);
    }
    connector.remove("max_electric_power");
    if let Some(Value::Array(ids)) = connector.remove("tariff_ids")
        && let Some(first) = ids.into_iter().next()
    {
        connector.insert("tariff_id".to_owned(), first);
    }
}

pub fn tariff(v221: &Value) -> Value {
    let mut tariff = v221.clone();
    let Some(map) = tariff.as_object_mut() else { return tariff };
    for field in ["country_code", "party_id", "type", "min_price", "max_price", "start_date_time", "end_date_time"] {
        map.remove(field);
    }
    if let Some(elements) = map.get_mut("elements").and_then(Value::as_array_mut) {
        for element in elements {
            let Some(components) = element.get_mut("price_components").and_then(Value::as_array_mut) else {
                continue;
            };
            for component in components {
                if let Some(component) = component.as_object_mut() {
                    component.remove("vat");
                }
            }
        }
    }
    tariff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_objects_lose_their_2_2_1_fields() {
        let generated = crate::generator::generate(5, 1, &("NL".to_owned(), "SIM".to_owned()));
        let location = location(&generated.locations[0]);
        assert!(location.get("country_code").is_none());
        assert!(location.get("type").is_some());
        let connector = &location["evses"][0]["connectors"][0];
        assert!(connector.get("voltage").is_some() && connector.get("max_voltage").is_none());
        assert!(connector["tariff_id"].is_string());
        let tariff = tariff(&generated.tariffs[0]);
        assert!(tariff.get("party_id").is_none());
        assert!(tariff["elements"][0]["price_components"][0].get("vat").is_none());
    }
}
