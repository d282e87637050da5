//! A deterministic, realistic dataset: jittered copies of real charger positions.
//!
//! Density follows reality because every synthetic location sits near a real charger (most within
//! a few kilometres, a tail out to 20 km), so cities are dense and the countryside sparse. The same
//! seed always yields the same locations, in the same order, so the engine and PostGIS see one
//! dataset and runs can be compared.

use chrono::{DateTime, NaiveTime, Utc};
use emsp_domain::{
    BusinessDetails, Capability, Connector, ConnectorFormat, ConnectorId, ConnectorStandard, CountryCode, Evse,
    EvseStatus, EvseUid, Facility, GeoPoint, Hours, Location, LocationId, ParkingType, PartyCode, PartyId, PowerType,
    RegularHours, TariffId,
};
use emsp_domain::{Currency, PriceComponent, Tariff, TariffDimension, TariffElement, TariffRestrictions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

const SEED_POINTS: &str = include_str!("../data/seed-points.csv");

/// A real charger position from the shipped seed file.
#[derive(Debug, Clone)]
pub struct SeedPoint {
    pub latitude: f64,
    pub longitude: f64,
    pub country: String,
    pub city: String,
}

impl SeedPoint {
    fn is_european(&self) -> bool {
        (34.0..=72.0).contains(&self.latitude) && (-25.0..=45.0).contains(&self.longitude)
    }
}

/// Operators of the synthetic network: (country, party code, name).
const OPERATORS: &[(&str, &str, &str)] = &[
    ("NL", "FAS", "Fastned"),
    ("NL", "VAT", "Vattenfall InCharge"),
    ("NL", "ALL", "Allego"),
    ("DE", "ION", "IONITY"),
    ("DE", "ENB", "EnBW mobility"),
    ("DE", "EWE", "EWE Go"),
    ("FR", "TOT", "TotalEnergies"),
    ("FR", "IZI", "Izivia"),
    ("FR", "ELC", "Electra"),
    ("GB", "BPP", "bp pulse"),
    ("GB", "PDP", "Pod Point"),
    ("GB", "OSP", "Osprey"),
    ("BE", "SHE", "Shell Recharge"),
    ("NO", "REC", "Recharge"),
    ("SE", "ECS", "E.ON Drive"),
    ("ES", "IBD", "Iberdrola"),
    ("IT", "ENX", "Enel X Way"),
    ("PL", "GRN", "GreenWay"),
    ("PT", "EVI", "EVIO"),
    ("TR", "ZES", "ZES"),
    ("US", "TSL", "Tesla"),
    ("US", "CPT", "ChargePoint"),
];

const PLACES: &[&str] = &[
    "Station",
    "Centrum",
    "Markt",
    "Parking",
    "Garage",
    "Hotel",
    "Supermarkt",
    "Mall",
    "Airport",
    "Harbour",
    "Stadion",
    "Rathaus",
    "Bahnhof",
    "Gare",
    "Plaza",
    "Retail Park",
    "Motorway Services",
    "Business Park",
    "University",
    "Hospital",
    "Ziekenhuis",
    "Kerk",
    "Schule",
    "Marina",
    "Park",
    "Tankstelle",
    "Autohof",
];

const STREETS: &[&str] = &[
    "Hauptstrasse",
    "Kerkstraat",
    "Rue de la Paix",
    "High Street",
    "Dorpsstraat",
    "Bahnhofstrasse",
    "Avenue Foch",
    "Station Road",
    "Schulstrasse",
    "Molenweg",
    "Gartenstrasse",
    "Rue Victor Hugo",
    "Church Lane",
    "Marktplein",
    "Via Roma",
    "Calle Mayor",
    "Ulica Polna",
    "Rua Augusta",
    "Industrieweg",
    "Lindenallee",
];

/// The dataset description: seed points and the size to generate.
pub struct Dataset {
    seed: u64,
    target_evses: usize,
    points: Vec<SeedPoint>,
    european: Vec<usize>,
}

/// Key of the n-th generated location; derivable without generating it.
pub fn location_key(n: usize) -> String {
    let (country, party, _) = OPERATORS[n % OPERATORS.len()];
    format!("{country}*{party}*L{n}")
}

pub fn evse_uid(n: usize, index: usize) -> String {
    format!("L{n}-{index}")
}

fn parse_seed_points() -> Vec<SeedPoint> {
    let mut points = Vec::new();
    for line in SEED_POINTS.lines().skip(1) {
        let mut fields = line.splitn(4, ',');
        let (Some(lat), Some(lon), Some(country), Some(city)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(latitude), Ok(longitude)) = (lat.parse::<f64>(), lon.parse::<f64>()) else { continue };
        points.push(SeedPoint { latitude, longitude, country: country.to_owned(), city: city.to_owned() });
    }
    points
}

impl Dataset {
    pub fn new(seed: u64, target_evses: usize) -> Self {
        let points = parse_seed_points();
        let european = points.iter().enumerate().filter(|(_, p)| p.is_european()).map(|(i, _)| i).collect();
        Self { seed, target_evses, points, european }
    }

    pub fn seed_points(&self) -> &[SeedPoint] {
        &self.points
    }

    /// A seed point, European 85% of the time.
    pub fn pick_point<'a>(&'a self, rng: &mut StdRng) -> &'a SeedPoint {
        if !self.european.is_empty() && rng.random_bool(0.85) {
            &self.points[self.european[rng.random_range(0..self.european.len())]]
        } else {
            &self.points[rng.random_range(0..self.points.len())]
        }
    }

    /// A European seed point.
    pub fn pick_european<'a>(&'a self, rng: &mut StdRng) -> &'a SeedPoint {
        match self.european.is_empty() {
            true => &self.points[rng.random_range(0..self.points.len())],
            false => &self.points[self.european[rng.random_range(0..self.european.len())]],
        }
    }

    /// The tariffs the generated connectors name: `{PID}-AC` and `{PID}-DC` of every operator, in
    /// the operator's currency, with the structures real feeds have (kWh prices with VAT, idle
    /// fees after a grace period, cheaper nights, session fees, time fees after 45 minutes).
    pub fn tariffs(&self) -> Vec<Tariff> {
        let now: DateTime<Utc> = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        let mut tariffs = Vec::new();
        for (i, (country, party, _)) in OPERATORS.iter().enumerate() {
            let currency = match *country {
                "GB" => "GBP",
                "NO" => "NOK",
                "SE" => "SEK",
                "PL" => "PLN",
                "TR" => "TRY",
                "US" => "USD",
                _ => "EUR",
            };
            let scale = match currency {
                "NOK" | "SEK" => 10,
                "PLN" => 4,
                "TRY" => 30,
                _ => 1,
            };
            let price = |cents: i64| Decimal::new(cents * scale, 2);
            let component = |dimension: TariffDimension, price: Decimal, step_size: u32| PriceComponent {
                dimension,
                price,
                vat: (i % 5 != 4).then(|| Decimal::new(20, 0)),
                step_size,
            };
            let element = |components: Vec<PriceComponent>, restrictions: Option<TariffRestrictions>| TariffElement {
                price_components: components,
                restrictions,
            };
            let idle_fee = element(
                vec![component(TariffDimension::ParkingTime, price(600), 60)],
                Some(TariffRestrictions { min_duration: Some(3_600), ..TariffRestrictions::default() }),
            );
            let mut ac = vec![
                element(vec![component(TariffDimension::Energy, price(30 + i as i64), 1)], None),
                idle_fee.clone(),
            ];
            if i % 2 == 0 {
                let night = TariffRestrictions {
                    start_time: NaiveTime::from_hms_opt(22, 0, 0),
                    end_time: NaiveTime::from_hms_opt(7, 0, 0),
                    ..TariffRestrictions::default()
                };
                ac.insert(0, element(vec![component(TariffDimension::Energy, price(22 + i as i64), 1)], Some(night)));
            }
            let mut dc = vec![element(vec![component(TariffDimension::Energy, price(45 + 2 * i as i64), 1_000)], None)];
            if i % 3 == 0 {
                dc.push(element(vec![component(TariffDimension::Flat, price(100), 1)], None));
            }
            if i % 3 == 1 {
                let late = TariffRestrictions { min_duration: Some(2_700), ..TariffRestrictions::default() };
                dc.push(element(vec![component(TariffDimension::Time, price(1_000), 60)], Some(late)));
            }
            for (kind, elements) in [("AC", ac), ("DC", dc)] {
                let (Ok(party_id), Ok(id), Ok(currency)) = (
                    PartyId::parse(&format!("{country}*{party}")),
                    TariffId::new(format!("{party}-{kind}")),
                    Currency::new(currency),
                ) else {
                    continue;
                };
                tariffs.push(Tariff {
                    party: party_id,
                    id,
                    currency,
                    tariff_type: None,
                    tariff_alt_text: vec![],
                    tariff_alt_url: None,
                    min_price: None,
                    max_price: None,
                    elements,
                    preauthorize_amount: None,
                    start_date_time: None,
                    end_date_time: None,
                    energy_mix: None,
                    last_updated: now,
                });
            }
        }
        tariffs
    }

    /// The locations, generated lazily, until `target_evses` EVSEs exist.
    pub fn locations(&self) -> impl Iterator<Item = Location> + '_ {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let now: DateTime<Utc> = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        let mut evses = 0;
        let mut n = 0;
        std::iter::from_fn(move || {
            if evses >= self.target_evses || self.points.is_empty() {
                return None;
            }
            let location = self.location(n, &mut rng, now);
            evses += location.evses.len();
            n += 1;
            Some(location)
        })
    }

    fn location(&self, n: usize, rng: &mut StdRng, now: DateTime<Utc>) -> Location {
        let seed = self.pick_point(rng);
        // Most copies within a few km, a tail out to 20 km: u^2 concentrates near the real charger.
        let distance_km = 20.0 * rng.random::<f64>().powi(2);
        let bearing = rng.random::<f64>() * std::f64::consts::TAU;
        let latitude = (seed.latitude + distance_km / 111.2 * bearing.cos()).clamp(-89.9, 89.9);
        let longitude = seed.longitude + distance_km / (111.2 * latitude.to_radians().cos().max(0.05)) * bearing.sin();
        let longitude = (longitude + 180.0).rem_euclid(360.0) - 180.0;
        let (country, party, operator) = OPERATORS[n % OPERATORS.len()];
        let evse_count = *[1usize, 2, 2, 2, 2, 3, 4, 4, 6, 8].get(rng.random_range(0..10)).unwrap_or(&2);
        let fast = rng.random_bool(0.25);
        let mut evses = Vec::with_capacity(evse_count);
        for index in 0..evse_count {
            let (standard, power_type, watts) = if fast {
                match rng.random_range(0..10) {
                    0 => (ConnectorStandard::Chademo, PowerType::Dc, 50_000),
                    1..=4 => (ConnectorStandard::Iec62196T2Combo, PowerType::Dc, 150_000),
                    5..=7 => (ConnectorStandard::Iec62196T2Combo, PowerType::Dc, 300_000),
                    _ => (ConnectorStandard::Iec62196T2Combo, PowerType::Dc, 50_000),
                }
            } else if rng.random_bool(0.7) {
                (ConnectorStandard::Iec62196T2, PowerType::Ac3Phase, 11_000)
            } else {
                (ConnectorStandard::Iec62196T2, PowerType::Ac3Phase, 22_000)
            };
            let status = match rng.random_range(0..10) {
                0..=5 => EvseStatus::Available,
                6..=8 => EvseStatus::Charging,
                _ => EvseStatus::OutOfOrder,
            };
            let mut capabilities = vec![Capability::RfidReader];
            if rng.random_bool(0.8) {
                capabilities.push(Capability::RemoteStartStopCapable);
            }
            if rng.random_bool(0.3) {
                capabilities.push(Capability::CreditCardPayable);
            }
            let connector = Connector {
                id: valid(ConnectorId::new("1")),
                standard,
                format: ConnectorFormat::Cable,
                power_type,
                max_voltage: if fast { 920 } else { 230 },
                max_amperage: if fast { 500 } else { 32 },
                max_electric_power: Some(watts),
                tariff_ids: TariffId::new(format!("{party}-{}", if fast { "DC" } else { "AC" })).into_iter().collect(),
                terms_and_conditions: None,
                last_updated: now,
            };
            let uid = evse_uid(n, index);
            evses.push(Evse {
                evse_id: Some(format!("{country}*{party}*E{n}X{index}")),
                uid: valid(EvseUid::new(uid)),
                status,
                status_schedule: vec![],
                capabilities,
                connectors: vec![connector],
                floor_level: None,
                coordinates: None,
                physical_reference: None,
                directions: vec![],
                parking_restrictions: vec![],
                images: vec![],
                last_updated: now,
            });
        }
        let place = PLACES[rng.random_range(0..PLACES.len())];
        let street = STREETS[rng.random_range(0..STREETS.len())];
        let city = if seed.city.is_empty() { "Springfield".to_owned() } else { seed.city.clone() };
        let opening_times = rng.random_bool(0.1).then(|| Hours {
            twentyfourseven: false,
            regular_hours: (1..=7)
                .map(|weekday| RegularHours {
                    weekday,
                    period_begin: NaiveTime::from_hms_opt(7, 0, 0).unwrap_or_default(),
                    period_end: NaiveTime::from_hms_opt(22, 0, 0).unwrap_or_default(),
                })
                .collect(),
            exceptional_openings: vec![],
            exceptional_closings: vec![],
        });
        let facilities = [Facility::Supermarket, Facility::Restaurant, Facility::Wifi]
            .into_iter()
            .filter(|_| rng.random_bool(0.2))
            .collect();
        Location {
            party: PartyId::new(valid(CountryCode::new(country)), valid(PartyCode::new(party))),
            id: valid(LocationId::new(format!("L{n}"))),
            publish: true,
            publish_allowed_to: vec![],
            name: Some(format!("{operator} {city} {place}")),
            address: format!("{street} {}", 1 + n % 200),
            city,
            postal_code: Some(format!("{:04}", n % 10_000)),
            state: None,
            country: seed.country.clone(),
            coordinates: GeoPoint { latitude, longitude },
            related_locations: vec![],
            parking_type: Some(if fast { ParkingType::AlongMotorway } else { ParkingType::OnStreet }),
            evses,
            directions: vec![],
            operator: Some(BusinessDetails { name: operator.to_owned(), website: None, logo: None }),
            suboperator: None,
            owner: None,
            facilities,
            time_zone: None,
            opening_times,
            charging_when_closed: None,
            images: vec![],
            energy_mix: None,
            last_updated: now,
        }
    }
}

/// The generator builds ids only from constants and numbers, valid by construction; a broken
/// constant is a bug in this file, so it stops the benchmark with the reason.
fn valid<T>(id: Result<T, emsp_domain::ValidationError>) -> T {
    match id {
        Ok(id) => id,
        Err(error) => panic!("the dataset generator built an invalid id: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_valid_and_mostly_european() {
        let dataset = Dataset::new(7, 2_000);
        let first: Vec<Location> = dataset.locations().collect();
        let second: Vec<Location> = dataset.locations().collect();
        assert_eq!(first, second);
        let evses: usize = first.iter().map(|l| l.evses.len()).sum();
        assert!((2_000..2_010).contains(&evses), "{evses}");
        assert!(first.iter().all(|l| l.validate().is_ok()));
        assert_eq!(first[5].key(), location_key(5));
        let european = first.iter().filter(|l| (34.0..72.0).contains(&l.coordinates.latitude)).count();
        assert!(european * 10 > first.len() * 7, "{european} of {}", first.len());
        assert!(dataset.seed_points().len() > 4_000);
    }
}
