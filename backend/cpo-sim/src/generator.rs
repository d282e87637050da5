//! Seeded OCPI 2.2.1 locations and tariffs that look like a real network: sites jittered around
//! real charger coordinates (`backend/bench/data/seed-points.csv`, embedded), a realistic mix of AC
//! street chargers, 50 kW DC sites and high-power motorway hubs, the country's time zone and
//! currency, and a few tariffs per currency that the connectors reference. The same seed gives the
//! same data, byte for byte: timestamps count back from a fixed instant, not from "now".

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;

use crate::envelope::format_datetime;

const SEED_POINTS: &str = include_str!("../../bench/data/seed-points.csv");

/// Generated objects, as 2.2.1 JSON.
pub struct Generated {
    pub locations: Vec<Value>,
    pub tariffs: Vec<Value>,
}

struct SeedPoint {
    latitude: f64,
    longitude: f64,
    country: &'static str,
    city: &'static str,
}

fn seed_points() -> Vec<SeedPoint> {
    let mut points = Vec::new();
    for line in SEED_POINTS.lines().skip(1) {
        let mut fields = line.split(',');
        let (Some(lat), Some(lon), Some(country), city) = (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(latitude), Ok(longitude)) = (lat.parse::<f64>(), lon.parse::<f64>()) else { continue };
        let country = match country {
            "RU" => "RUS",
            "BY" => "BLR",
            other if other.len() == 3 => other,
            _ => continue,
        };
        points.push(SeedPoint { latitude, longitude, country, city: city.unwrap_or("").trim() });
    }
    points
}

/// The city of a point, or of the nearest point in the same country that has one (about half the
/// seed points have no city). Looked up once per point: large runs reuse the same points.
fn city_of(points: &[SeedPoint], index: usize, cache: &mut HashMap<usize, String>) -> String {
    let Some(point) = points.get(index) else { return "Centre".to_owned() };
    if !point.city.is_empty() {
        return point.city.to_owned();
    }
    cache.entry(index).or_insert_with(|| nearest_city(points, point)).clone()
}

fn nearest_city(points: &[SeedPoint], point: &SeedPoint) -> String {
    let mut best: Option<(f64, &str)> = None;
    for other in points.iter().filter(|p| p.country == point.country && !p.city.is_empty()) {
        let d = (other.latitude - point.latitude).powi(2) + (other.longitude - point.longitude).powi(2);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, other.city));
        }
    }
    best.map(|(_, city)| city.to_owned()).unwrap_or_else(|| "Centre".to_owned())
}

fn time_zone(country: &str, longitude: f64) -> &'static str {
    match country {
        "NLD" => "Europe/Amsterdam",
        "BEL" => "Europe/Brussels",
        "DEU" => "Europe/Berlin",
        "DNK" => "Europe/Copenhagen",
        "ESP" => "Europe/Madrid",
        "FRA" => "Europe/Paris",
        "GBR" => "Europe/London",
        "NOR" => "Europe/Oslo",
        "POL" => "Europe/Warsaw",
        "TUR" => "Europe/Istanbul",
        "ISR" => "Asia/Jerusalem",
        "MYS" => "Asia/Kuala_Lumpur",
        "ARM" => "Asia/Yerevan",
        "BLR" => "Europe/Minsk",
        "BRA" if longitude < -54.0 => "America/Manaus",
        "BRA" => "America/Sao_Paulo",
        "RUS" if longitude < 50.0 => "Europe/Moscow",
        "RUS" if longitude < 66.0 => "Asia/Yekaterinburg",
        "RUS" if longitude < 82.0 => "Asia/Novosibirsk",
        "RUS" if longitude < 106.0 => "Asia/Krasnoyarsk",
        "RUS" if longitude < 127.0 => "Asia/Irkutsk",
        "RUS" => "Asia/Vladivostok",
        "USA" | "CAN" if longitude > -87.0 => "America/New_York",
        "USA" | "CAN" if longitude > -101.0 => "America/Chicago",
        "USA" | "CAN" if longitude > -114.0 => "America/Denver",
        "USA" | "CAN" => "America/Los_Angeles",
        _ => "UTC",
    }
}

/// Currency and how many units of it a euro buys (to keep prices plausible everywhere).
fn currency(country: &str) -> (&'static str, f64) {
    match country {
        "DNK" => ("DKK", 7.45),
        "NOR" => ("NOK", 11.5),
        "POL" => ("PLN", 4.3),
        "TUR" => ("TRY", 35.0),
        "ISR" => ("ILS", 4.0),
        "MYS" => ("MYR", 5.0),
        "ARM" => ("AMD", 420.0),
        "BLR" => ("BYN", 3.5),
        "RUS" => ("RUB", 95.0),
        "USA" => ("USD", 1.08),
        "CAN" => ("CAD", 1.5),
        "BRA" => ("BRL", 5.8),
        "GBR" => ("GBP", 0.85),
        _ => ("EUR", 1.0),
    }
}

fn streets(country: &str) -> &'static [&'static str] {
    match country {
        "NLD" | "BEL" => &["Stationsweg", "Kerkstraat", "Dorpsstraat", "Marktplein", "Industrieweg", "Havenkade"],
        "DEU" => &["Hauptstraße", "Bahnhofstraße", "Marktplatz", "Industriestraße", "Gartenstraße"],
        "FRA" => &["Rue de la Gare", "Avenue de la République", "Place du Marché", "Rue Victor Hugo"],
        "DNK" | "NOR" => &["Stationsvej", "Hovedgaden", "Torvet", "Havnegade"],
        "ESP" => &["Calle Mayor", "Avenida de la Estación", "Plaza Mayor"],
        _ => &["Main Street", "Station Road", "Market Square", "Park Avenue", "Harbour Road", "Industrial Road"],
    }
}

const PLACES: [&str; 12] = [
    "Centrum",
    "Station",
    "Market",
    "Park & Ride",
    "Retail Park",
    "Hospital",
    "Town Hall",
    "Harbour",
    "Business Park",
    "Supermarket",
    "Sports Centre",
    "Library",
];

#[derive(Serialize)]
struct Location {
    country_code: String,
    party_id: String,
    id: String,
    publish: bool,
    name: String,
    address: String,
    city: String,
    postal_code: String,
    country: &'static str,
    coordinates: GeoLocation,
    parking_type: &'static str,
    evses: Vec<Evse>,
    operator: BusinessDetails,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    facilities: Vec<&'static str>,
    time_zone: &'static str,
    opening_times: Hours,
    last_updated: String,
}

#[derive(Serialize)]
struct GeoLocation {
    latitude: String,
    longitude: String,
}

#[derive(Serialize)]
struct BusinessDetails {
    name: String,
}

#[derive(Serialize)]
struct Hours {
    twentyfourseven: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    regular_hours: Vec<RegularHours>,
}

#[derive(Serialize)]
struct RegularHours {
    weekday: u8,
    period_begin: &'static str,
    period_end: &'static str,
}

#[derive(Serialize)]
struct Evse {
    uid: String,
    evse_id: String,
    status: &'static str,
    capabilities: Vec<&'static str>,
    connectors: Vec<Connector>,
    physical_reference: String,
    last_updated: String,
}

#[derive(Serialize)]
struct Connector {
    id: String,
    standard: &'static str,
    format: &'static str,
    power_type: &'static str,
    max_voltage: u32,
    max_amperage: u32,
    max_electric_power: u32,
    tariff_ids: Vec<String>,
    last_updated: String,
}

#[derive(Serialize)]
struct Tariff {
    country_code: String,
    party_id: String,
    id: String,
    currency: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    tariff_alt_text: Vec<DisplayText>,
    elements: Vec<TariffElement>,
    last_updated: String,
}

#[derive(Serialize)]
struct DisplayText {
    language: &'static str,
    text: String,
}

#[derive(Serialize)]
struct TariffElement {
    price_components: Vec<PriceComponent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restrictions: Option<Restrictions>,
}

#[derive(Serialize)]
struct PriceComponent {
    #[serde(rename = "type")]
    kind: &'static str,
    price: f64,
    vat: f64,
    step_size: u32,
}

#[derive(Serialize, Default)]
struct Restrictions {
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_duration: Option<u32>,
}

#[derive(Clone, Copy, PartialEq)]
enum SiteKind {
    Ac,
    Dc,
    Hpc,
}

impl SiteKind {
    fn tariff_prefix(self) -> &'static str {
        match self {
            SiteKind::Ac => "AC",
            SiteKind::Dc => "DC",
            SiteKind::Hpc => "HPC",
        }
    }
}

/// The fixed instant generated `last_updated` values count back from.
fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default()
}

/// `count` locations for party `(country_code, party_id)`, deterministic by `seed`.
pub fn generate(count: usize, seed: u64, party: &(String, String)) -> Generated {
    let points = seed_points();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut locations = Vec::with_capacity(count);
    let mut currencies: Vec<(&'static str, f64)> = Vec::new();
    let mut cities = HashMap::new();
    for n in 0..count {
        let index = rng.random_range(0..points.len().max(1));
        let Some(point) = points.get(index) else { break };
        let kind = match rng.random::<f64>() {
            x if x < 0.62 => SiteKind::Ac,
            x if x < 0.90 => SiteKind::Dc,
            _ => SiteKind::Hpc,
        };
        let (currency_code, rate) = currency(point.country);
        if !currencies.iter().any(|(c, _)| *c == currency_code) {
            currencies.push((currency_code, rate));
        }
        let city = city_of(&points, index, &mut cities);
        let location = site(&mut rng, party, n, point, city, kind, currency_code);
        match serde_json::to_value(location) {
            Ok(value) => locations.push(value),
            Err(error) => tracing::error!(%error, "generated location does not serialise"),
        }
    }
    currencies.sort_by(|a, b| a.0.cmp(b.0));
    let mut tariffs = Vec::new();
    for (code, rate) in currencies {
        for tariff in tariffs_for(party, code, rate) {
            match serde_json::to_value(tariff) {
                Ok(value) => tariffs.push(value),
                Err(error) => tracing::error!(%error, "generated tariff does not serialise"),
            }
        }
    }
    Generated { locations, tariffs }
}

fn site(
    rng: &mut StdRng,
    party: &(String, String),
    n: usize,
    point: &SeedPoint,
    city: String,
    kind: SiteKind,
    currency_code: &str,
) -> Location {
    let (cc, pid) = party;
    let id = format!("LOC{:05}", n + 1);
    let updated = format_datetime(epoch() - Duration::seconds(rng.random_range(0..60 * 86_400)));
    let north_america = matches!(point.country, "USA" | "CAN");
    let evse_count = match kind {
        SiteKind::Ac => [1, 2, 2, 2, 3, 4][rng.random_range(0..6)],
        SiteKind::Dc => rng.random_range(1..=4),
        SiteKind::Hpc => rng.random_range(2..=8),
    };
    let tariff_id = format!("{}-{}", kind.tariff_prefix(), currency_code);
    let ac_amps = if rng.random_bool(0.6) { 16 } else { 32 };
    let hpc_kw = [150, 300, 350][rng.random_range(0..3)];
    let with_chademo = kind == SiteKind::Dc && rng.random_bool(0.4);
    let mut evses = Vec::with_capacity(evse_count);
    for e in 1..=evse_count {
        let mut connectors = Vec::new();
        let connector = |id: usize, standard, format, power_type, volts: u32, amps: u32| Connector {
            id: id.to_string(),
            standard,
            format,
            power_type,
            max_voltage: volts,
            max_amperage: amps,
            max_electric_power: match power_type {
                "AC_3_PHASE" => 3 * volts * amps,
                _ => volts * amps,
            },
            tariff_ids: vec![tariff_id.clone()],
            last_updated: updated.clone(),
        };
        match kind {
            SiteKind::Ac if north_america => {
                connectors.push(connector(1, "IEC_62196_T1", "CABLE", "AC_1_PHASE", 240, 32));
            }
            SiteKind::Ac => connectors.push(connector(1, "IEC_62196_T2", "SOCKET", "AC_3_PHASE", 230, ac_amps)),
            SiteKind::Dc => {
                let ccs = if north_america { "IEC_62196_T1_COMBO" } else { "IEC_62196_T2_COMBO" };
                connectors.push(connector(1, ccs, "CABLE", "DC", 500, 100));
                if with_chademo {
                    connectors.push(connector(2, "CHADEMO", "CABLE", "DC", 500, 100));
                }
            }
            SiteKind::Hpc => {
                let ccs = if north_america { "IEC_62196_T1_COMBO" } else { "IEC_62196_T2_COMBO" };
                connectors.push(connector(1, ccs, "CABLE", "DC", 920, hpc_kw * 1000 / 920));
            }
        }
        let mut capabilities = vec!["RFID_READER", "REMOTE_START_STOP_CAPABLE"];
        if kind != SiteKind::Ac {
            capabilities.push("CREDIT_CARD_PAYABLE");
        }
        if kind == SiteKind::Ac {
            capabilities.push("UNLOCK_CAPABLE");
        }
        if rng.random_bool(0.3) {
            capabilities.push("RESERVABLE");
        }
        let status = match rng.random::<f64>() {
            x if x < 0.78 => "AVAILABLE",
            x if x < 0.96 => "CHARGING",
            _ => "OUTOFORDER",
        };
        evses.push(Evse {
            uid: format!("{id}-{e}"),
            evse_id: format!("{cc}*{pid}*E{:05}{:02}", n + 1, e),
            status,
            capabilities,
            connectors,
            physical_reference: e.to_string(),
            last_updated: updated.clone(),
        });
    }
    let street_names = streets(point.country);
    let street = street_names[rng.random_range(0..street_names.len())];
    let name = match kind {
        SiteKind::Hpc => format!("{city} Fast Charging Hub"),
        _ => format!("{city} {}", PLACES[rng.random_range(0..PLACES.len())]),
    };
    let postal_code = match point.country {
        "NLD" => format!("{} {}{}", rng.random_range(1000..10000), letter(rng), letter(rng)),
        _ => format!("{:05}", rng.random_range(1000..99999)),
    };
    let parking_type = match kind {
        SiteKind::Hpc => ["ALONG_MOTORWAY", "PARKING_LOT"][rng.random_range(0..2)],
        SiteKind::Dc => ["PARKING_LOT", "PARKING_LOT", "PARKING_GARAGE"][rng.random_range(0..3)],
        SiteKind::Ac => ["ON_STREET", "ON_STREET", "PARKING_LOT", "PARKING_GARAGE"][rng.random_range(0..4)],
    };
    let facilities = match kind {
        SiteKind::Hpc => vec!["RESTAURANT", "CAFE", "WIFI"],
        SiteKind::Dc if rng.random_bool(0.5) => vec!["SUPERMARKET"],
        _ => Vec::new(),
    };
    let twentyfourseven = kind == SiteKind::Hpc || rng.random_bool(0.85);
    let regular_hours = if twentyfourseven {
        Vec::new()
    } else {
        (1..=6).map(|weekday| RegularHours { weekday, period_begin: "07:00", period_end: "22:00" }).collect()
    };
    let jitter = |rng: &mut StdRng| rng.random_range(-0.008..0.008);
    Location {
        country_code: cc.clone(),
        party_id: pid.clone(),
        id,
        publish: true,
        name,
        address: format!("{street} {}", rng.random_range(1..200)),
        city,
        postal_code,
        country: point.country,
        coordinates: GeoLocation {
            latitude: format!("{:.6}", (point.latitude + jitter(rng)).clamp(-90.0, 90.0)),
            longitude: format!("{:.6}", (point.longitude + jitter(rng)).clamp(-180.0, 180.0)),
        },
        parking_type,
        evses,
        operator: BusinessDetails { name: format!("{pid} Charging") },
        facilities,
        time_zone: time_zone(point.country, point.longitude),
        opening_times: Hours { twentyfourseven, regular_hours },
        last_updated: updated,
    }
}

fn letter(rng: &mut StdRng) -> char {
    char::from(b'A' + rng.random_range(0..26u8))
}

fn price(euros: f64, rate: f64) -> f64 {
    (euros * rate * 100.0).round() / 100.0
}

fn component(kind: &'static str, euros: f64, rate: f64, step_size: u32) -> PriceComponent {
    PriceComponent { kind, price: price(euros, rate), vat: 21.0, step_size }
}

/// Three tariffs per currency: AC (energy + parking), DC (start fee + energy + time after 45
/// minutes) and HPC (peak-hour energy 16:00-20:00, off-peak energy, daytime parking).
fn tariffs_for(party: &(String, String), currency: &'static str, rate: f64) -> Vec<Tariff> {
    let (cc, pid) = party;
    let updated = format_datetime(epoch() - Duration::days(90));
    let tariff = |prefix: &str, text: String, elements| Tariff {
        country_code: cc.clone(),
        party_id: pid.clone(),
        id: format!("{prefix}-{currency}"),
        currency,
        kind: "REGULAR",
        tariff_alt_text: vec![DisplayText { language: "en", text }],
        elements,
        last_updated: updated.clone(),
    };
    vec![
        tariff(
            "AC",
            format!("{} {currency}/kWh, parking {} {currency}/hour", price(0.39, rate), price(1.2, rate)),
            vec![
                TariffElement { price_components: vec![component("ENERGY", 0.39, rate, 1)], restrictions: None },
                TariffElement { price_components: vec![component("PARKING_TIME", 1.2, rate, 300)], restrictions: None },
            ],
        ),
        tariff(
            "DC",
            format!(
                "{} {currency} per session, {} {currency}/kWh, {} {currency}/hour after 45 minutes",
                price(0.5, rate),
                price(0.59, rate),
                price(6.0, rate)
            ),
            vec![
                TariffElement {
                    price_components: vec![component("FLAT", 0.5, rate, 1), component("ENERGY", 0.59, rate, 1)],
                    restrictions: None,
                },
                TariffElement {
                    price_components: vec![component("TIME", 6.0, rate, 60)],
                    restrictions: Some(Restrictions { min_duration: Some(2700), ..Restrictions::default() }),
                },
            ],
        ),
        tariff(
            "HPC",
            format!(
                "{} {currency}/kWh 16:00-20:00, {} {currency}/kWh otherwise, parking {} {currency}/hour 07:00-22:00",
                price(0.69, rate),
                price(0.55, rate),
                price(12.0, rate)
            ),
            vec![
                TariffElement {
                    price_components: vec![component("ENERGY", 0.69, rate, 1)],
                    restrictions: Some(Restrictions {
                        start_time: Some("16:00"),
                        end_time: Some("20:00"),
                        ..Restrictions::default()
                    }),
                },
                TariffElement { price_components: vec![component("ENERGY", 0.55, rate, 1)], restrictions: None },
                TariffElement {
                    price_components: vec![component("PARKING_TIME", 12.0, rate, 60)],
                    restrictions: Some(Restrictions {
                        start_time: Some("07:00"),
                        end_time: Some("22:00"),
                        ..Restrictions::default()
                    }),
                },
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party() -> (String, String) {
        ("NL".to_owned(), "SIM".to_owned())
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = generate(200, 7, &party());
        let b = generate(200, 7, &party());
        let c = generate(200, 8, &party());
        assert_eq!(serde_json::to_string(&a.locations).unwrap(), serde_json::to_string(&b.locations).unwrap());
        assert_eq!(serde_json::to_string(&a.tariffs).unwrap(), serde_json::to_string(&b.tariffs).unwrap());
        assert_ne!(serde_json::to_string(&a.locations).unwrap(), serde_json::to_string(&c.locations).unwrap());
    }

    #[test]
    fn every_connector_references_a_generated_tariff_and_sites_are_plausible() {
        let generated = generate(300, 3, &party());
        assert_eq!(generated.locations.len(), 300);
        let tariff_ids: Vec<&str> = generated.tariffs.iter().map(|t| t["id"].as_str().unwrap()).collect();
        for location in &generated.locations {
            let evses = location["evses"].as_array().unwrap();
            assert!((1..=8).contains(&evses.len()));
            assert!(!location["time_zone"].as_str().unwrap().is_empty());
            assert_eq!(location["country"].as_str().unwrap().len(), 3);
            let lat: f64 = location["coordinates"]["latitude"].as_str().unwrap().parse().unwrap();
            assert!((-90.0..=90.0).contains(&lat));
            for evse in evses {
                for connector in evse["connectors"].as_array().unwrap() {
                    let tariff = connector["tariff_ids"][0].as_str().unwrap();
                    assert!(tariff_ids.contains(&tariff), "{tariff} not generated");
                    let kw = connector["max_electric_power"].as_u64().unwrap() / 1000;
                    assert!((7..=350).contains(&kw), "{kw} kW");
                }
            }
        }
        let hours: Vec<bool> =
            generated.locations.iter().map(|l| l["opening_times"]["twentyfourseven"].as_bool().unwrap()).collect();
        assert!(hours.iter().filter(|open| **open).count() > hours.len() * 2 / 3);
        assert!(generated.tariffs.iter().any(|t| t["elements"][0]["restrictions"]["start_time"] == "16:00"));
    }
}
