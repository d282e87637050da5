//! Charging locations, their EVSEs and connectors.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::enums::open_enum;
use crate::geo::GeoPoint;
use crate::ids::{ConnectorId, EvseUid, LocationId, TariffId};
use crate::party::PartyId;

/// A charging location of a CPO (OCPI `Location`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// The CPO that owns the location.
    pub party: PartyId,
    pub id: LocationId,
    /// `false`: shown only to the tokens in `publish_allowed_to`.
    #[serde(default = "default_true")]
    pub publish: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish_allowed_to: Vec<PublishToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub address: String,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// ISO 3166-1 alpha-3 country of the address.
    pub country: String,
    pub coordinates: GeoPoint,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_locations: Vec<RelatedLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking_type: Option<ParkingType>,
    #[serde(default)]
    pub evses: Vec<Evse>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directions: Vec<DisplayText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<BusinessDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suboperator: Option<BusinessDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<BusinessDetails>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facilities: Vec<Facility>,
    /// IANA time zone of the location (`Europe/Oslo`); opening hours are local to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_times: Option<Hours>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_when_closed: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_mix: Option<serde_json::Value>,
    pub last_updated: DateTime<Utc>,
}

fn default_true() -> bool {
    true
}

impl Location {
    /// `CC*PID*ID`, upper case: the key a location is stored and indexed under.
    pub fn key(&self) -> String {
        location_key(&self.party, &self.id)
    }

    /// The EVSE with this uid.
    pub fn evse(&self, uid: &EvseUid) -> Option<&Evse> {
        self.evses.iter().find(|evse| &evse.uid == uid)
    }

    /// The highest power any connector of the location offers, in kW.
    pub fn max_power_kw(&self) -> f64 {
        self.evses.iter().filter(|e| e.status != EvseStatus::Removed).map(Evse::max_power_kw).fold(0.0, f64::max)
    }

    /// Checks the rules that protocol parsing cannot: coordinates, time zone, unique EVSE and
    /// connector ids, plausible electrical values.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.coordinates.validate().map_err(|e| e.within("coordinates"))?;
        if self.coordinates.latitude == 0.0 && self.coordinates.longitude == 0.0 {
            return Err(ValidationError::new("coordinates", "0,0 is a missing position, not a charger"));
        }
        if let Some(zone) = &self.time_zone
            && zone.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(ValidationError::new("time_zone", format!("{zone:?} is not an IANA time zone")));
        }
        if let Some(hours) = &self.opening_times {
            hours.validate().map_err(|e| e.within("opening_times"))?;
        }
        for (index, evse) in self.evses.iter().enumerate() {
            evse.validate().map_err(|e| e.within(&format!("evses[{index}]")))?;
            if self.evses[..index].iter().any(|earlier| earlier.uid == evse.uid) {
                return Err(ValidationError::new(format!("evses[{index}].uid"), format!("{} appears twice", evse.uid)));
            }
        }
        Ok(())
    }
}

/// The key of a location: `CC*PID*ID`, upper case.
pub fn location_key(party: &PartyId, id: &LocationId) -> String {
    format!("{}*{}*{}", party.country_code, party.party_id, id.key())
}

/// One charging station unit (OCPI `EVSE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evse {
    pub uid: EvseUid,
    /// The printed EVSE id (`NL*ABC*E123`), eMI3 form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evse_id: Option<String>,
    pub status: EvseStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_schedule: Vec<StatusSchedule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub connectors: Vec<Connector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<GeoPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directions: Vec<DisplayText>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parking_restrictions: Vec<ParkingRestriction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    pub last_updated: DateTime<Utc>,
}

impl Evse {
    /// The highest power of its connectors, in kW.
    pub fn max_power_kw(&self) -> f64 {
        self.connectors.iter().map(Connector::max_power_kw).fold(0.0, f64::max)
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(point) = &self.coordinates {
            point.validate().map_err(|e| e.within("coordinates"))?;
        }
        for (index, connector) in self.connectors.iter().enumerate() {
            connector.validate().map_err(|e| e.within(&format!("connectors[{index}]")))?;
            if self.connectors[..index].iter().any(|earlier| earlier.id == connector.id) {
                return Err(ValidationError::new(
                    format!("connectors[{index}].id"),
                    format!("{} appears twice", connector.id),
                ));
            }
        }
        Ok(())
    }
}

/// A socket or cable (OCPI `Connector`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connector {
    pub id: ConnectorId,
    pub standard: ConnectorStandard,
    pub format: ConnectorFormat,
    pub power_type: PowerType,
    /// Volts.
    pub max_voltage: u32,
    /// Amperes.
    pub max_amperage: u32,
    /// Watts, when the CPO states it (it may be lower than volts x amperes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_electric_power: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tariff_ids: Vec<TariffId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_and_conditions: Option<String>,
    pub last_updated: DateTime<Utc>,
}

/// Highest plausible connector voltage (megawatt charging runs at up to 1,250 V).
const MAX_VOLTAGE: u32 = 2_000;
/// Highest plausible connector current (MCS goes up to 3,000 A).
const MAX_AMPERAGE: u32 = 4_000;

impl Connector {
    /// Power in kW: `max_electric_power` when given, otherwise volts x amperes x phases (OCPI gives
    /// the line-to-neutral voltage for three-phase AC, so 230 V x 32 A x 3 = 22 kW).
    pub fn max_power_kw(&self) -> f64 {
        if let Some(watts) = self.max_electric_power {
            return f64::from(watts) / 1000.0;
        }
        let volts = f64::from(self.max_voltage);
        let amps = f64::from(self.max_amperage);
        let phases = match self.power_type {
            PowerType::Ac3Phase => 3.0,
            _ => 1.0,
        };
        phases * volts * amps / 1000.0
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.max_voltage > MAX_VOLTAGE {
            return Err(ValidationError::new("max_voltage", format!("{} V is not plausible", self.max_voltage)));
        }
        if self.max_amperage > MAX_AMPERAGE {
            return Err(ValidationError::new("max_amperage", format!("{} A is not plausible", self.max_amperage)));
        }
        Ok(())
    }
}

open_enum! {
    /// Live status of an EVSE (OCPI `Status`).
    pub enum EvseStatus {
        Available => "AVAILABLE",
        Blocked => "BLOCKED",
        Charging => "CHARGING",
        Inoperative => "INOPERATIVE",
        OutOfOrder => "OUTOFORDER",
        Planned => "PLANNED",
        Removed => "REMOVED",
        Reserved => "RESERVED",
        Unknown => "UNKNOWN",
    }
}

/// A planned status change (OCPI `StatusSchedule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSchedule {
    pub period_begin: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<DateTime<Utc>>,
    pub status: EvseStatus,
}

open_enum! {
    /// What an EVSE can do (OCPI `Capability`).
    pub enum Capability {
        ChargingProfileCapable => "CHARGING_PROFILE_CAPABLE",
        ChargingPreferencesCapable => "CHARGING_PREFERENCES_CAPABLE",
        ChipCardSupport => "CHIP_CARD_SUPPORT",
        ContactlessCardSupport => "CONTACTLESS_CARD_SUPPORT",
        CreditCardPayable => "CREDIT_CARD_PAYABLE",
        DebitCardPayable => "DEBIT_CARD_PAYABLE",
        PedTerminal => "PED_TERMINAL",
        RemoteStartStopCapable => "REMOTE_START_STOP_CAPABLE",
        Reservable => "RESERVABLE",
        RfidReader => "RFID_READER",
        StartSessionConnectorRequired => "START_SESSION_CONNECTOR_REQUIRED",
        TokenGroupCapable => "TOKEN_GROUP_CAPABLE",
        UnlockCapable => "UNLOCK_CAPABLE",
    }
}

open_enum! {
    /// Plug and socket standards (OCPI `ConnectorType`).
    pub enum ConnectorStandard {
        Chademo => "CHADEMO",
        Chaoji => "CHAOJI",
        DomesticA => "DOMESTIC_A",
        DomesticB => "DOMESTIC_B",
        DomesticC => "DOMESTIC_C",
        DomesticD => "DOMESTIC_D",
        DomesticE => "DOMESTIC_E",
        DomesticF => "DOMESTIC_F",
        DomesticG => "DOMESTIC_G",
        DomesticH => "DOMESTIC_H",
        DomesticI => "DOMESTIC_I",
        DomesticJ => "DOMESTIC_J",
        DomesticK => "DOMESTIC_K",
        DomesticL => "DOMESTIC_L",
        DomesticM => "DOMESTIC_M",
        DomesticN => "DOMESTIC_N",
        DomesticO => "DOMESTIC_O",
        GbtAc => "GBT_AC",
        GbtDc => "GBT_DC",
        Iec603092Single16 => "IEC_60309_2_single_16",
        Iec603092Three16 => "IEC_60309_2_three_16",
        Iec603092Three32 => "IEC_60309_2_three_32",
        Iec603092Three64 => "IEC_60309_2_three_64",
        Iec62196T1 => "IEC_62196_T1",
        Iec62196T1Combo => "IEC_62196_T1_COMBO",
        Iec62196T2 => "IEC_62196_T2",
        Iec62196T2Combo => "IEC_62196_T2_COMBO",
        Iec62196T3A => "IEC_62196_T3A",
        Iec62196T3C => "IEC_62196_T3C",
        Nema520 => "NEMA_5_20",
        Nema630 => "NEMA_6_30",
        Nema650 => "NEMA_6_50",
        Nema1030 => "NEMA_10_30",
        Nema1050 => "NEMA_10_50",
        Nema1430 => "NEMA_14_30",
        Nema1450 => "NEMA_14_50",
        PantographBottomUp => "PANTOGRAPH_BOTTOM_UP",
        PantographTopDown => "PANTOGRAPH_TOP_DOWN",
        SaeJ3400 => "SAE_J3400",
        TeslaR => "TESLA_R",
        TeslaS => "TESLA_S",
        Mcs => "MCS",
    }
}

open_enum! {
    /// Socket on the charger or cable attached (OCPI `ConnectorFormat`).
    pub enum ConnectorFormat {
        Socket => "SOCKET",
        Cable => "CABLE",
    }
}

open_enum! {
    /// AC single phase, AC three phase, DC (OCPI `PowerType`).
    pub enum PowerType {
        Ac1Phase => "AC_1_PHASE",
        Ac2Phase => "AC_2_PHASE",
        Ac2PhaseSplit => "AC_2_PHASE_SPLIT",
        Ac3Phase => "AC_3_PHASE",
        Dc => "DC",
    }
}

impl PowerType {
    pub fn is_dc(&self) -> bool {
        matches!(self, PowerType::Dc)
    }
}

open_enum! {
    /// What is around the location (OCPI `Facility`).
    pub enum Facility {
        Hotel => "HOTEL",
        Restaurant => "RESTAURANT",
        Cafe => "CAFE",
        Mall => "MALL",
        Supermarket => "SUPERMARKET",
        Sport => "SPORT",
        RecreationArea => "RECREATION_AREA",
        Nature => "NATURE",
        Museum => "MUSEUM",
        BikeSharing => "BIKE_SHARING",
        BusStop => "BUS_STOP",
        TaxiStand => "TAXI_STAND",
        TramStop => "TRAM_STOP",
        MetroStation => "METRO_STATION",
        TrainStation => "TRAIN_STATION",
        Airport => "AIRPORT",
        ParkingLot => "PARKING_LOT",
        CarpoolParking => "CARPOOL_PARKING",
        FuelStation => "FUEL_STATION",
        Wifi => "WIFI",
    }
}

open_enum! {
    /// Kind of parking (OCPI `ParkingType`).
    pub enum ParkingType {
        AlongMotorway => "ALONG_MOTORWAY",
        ParkingGarage => "PARKING_GARAGE",
        ParkingLot => "PARKING_LOT",
        OnDriveway => "ON_DRIVEWAY",
        OnStreet => "ON_STREET",
        UndergroundGarage => "UNDERGROUND_GARAGE",
    }
}

open_enum! {
    /// Who may park at an EVSE (OCPI `ParkingRestriction`).
    pub enum ParkingRestriction {
        EvOnly => "EV_ONLY",
        Plugged => "PLUGGED",
        Disabled => "DISABLED",
        Customers => "CUSTOMERS",
        Motorcycles => "MOTORCYCLES",
    }
}

/// A token (or group) allowed to see a location that is not published (OCPI `PublishTokenType`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visual_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

/// A nearby point of interest (OCPI `AdditionalGeoLocation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelatedLocation {
    pub point: GeoPoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<DisplayText>,
}

/// Text in a language (OCPI `DisplayText`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayText {
    /// ISO 639-1 language code.
    pub language: String,
    pub text: String,
}

/// A company (OCPI `BusinessDetails`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessDetails {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<Image>,
}

/// A picture (OCPI `Image`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    pub category: String,
    #[serde(rename = "type")]
    pub image_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// Opening hours (OCPI `Hours`), local to the location's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hours {
    pub twentyfourseven: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regular_hours: Vec<RegularHours>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptional_openings: Vec<ExceptionalPeriod>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptional_closings: Vec<ExceptionalPeriod>,
}

impl Hours {
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (index, hours) in self.regular_hours.iter().enumerate() {
            if !(1..=7).contains(&hours.weekday) {
                return Err(ValidationError::new(
                    format!("regular_hours[{index}].weekday"),
                    "must be 1 (Monday) to 7 (Sunday)",
                ));
            }
        }
        for (index, period) in self.exceptional_openings.iter().chain(&self.exceptional_closings).enumerate() {
            if period.period_end < period.period_begin {
                return Err(ValidationError::new(format!("exceptional periods[{index}]"), "ends before it begins"));
            }
        }
        Ok(())
    }
}

/// Opening hours of one weekday; a period past midnight has `period_end` before `period_begin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegularHours {
    /// 1 = Monday ... 7 = Sunday.
    pub weekday: u8,
    pub period_begin: NaiveTime,
    pub period_end: NaiveTime,
}

/// A period of exceptional opening or closing, in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionalPeriod {
    pub period_begin: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

/// Dates without time, used by tariff restrictions and reports.
pub type Date = NaiveDate;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CountryCode, PartyCode};

    fn connector(power_type: PowerType, volts: u32, amps: u32, watts: Option<u32>) -> Connector {
        Connector {
            id: ConnectorId::new("1").unwrap(),
            standard: ConnectorStandard::Iec62196T2,
            format: ConnectorFormat::Socket,
            power_type,
            max_voltage: volts,
            max_amperage: amps,
            max_electric_power: watts,
            tariff_ids: vec![],
            terms_and_conditions: None,
            last_updated: Utc::now(),
        }
    }

    fn location(lat: f64, lon: f64) -> Location {
        Location {
            party: PartyId::new(CountryCode::new("NL").unwrap(), PartyCode::new("ABC").unwrap()),
            id: LocationId::new("loc1").unwrap(),
            publish: true,
            publish_allowed_to: vec![],
            name: None,
            address: "Street 1".into(),
            city: "Amsterdam".into(),
            postal_code: None,
            state: None,
            country: "NLD".into(),
            coordinates: GeoPoint { latitude: lat, longitude: lon },
            related_locations: vec![],
            parking_type: None,
            evses: vec![],
            directions: vec![],
            operator: None,
            suboperator: None,
            owner: None,
            facilities: vec![],
            time_zone: Some("Europe/Amsterdam".into()),
            opening_times: None,
            charging_when_closed: None,
            images: vec![],
            energy_mix: None,
            last_updated: Utc::now(),
        }
    }

    #[test]
    fn connector_power_from_electric_power_or_volts_and_amps() {
        assert_eq!(connector(PowerType::Dc, 920, 500, Some(350_000)).max_power_kw(), 350.0);
        assert_eq!(connector(PowerType::Ac3Phase, 230, 32, None).max_power_kw(), 22.08);
        assert_eq!(connector(PowerType::Ac1Phase, 230, 16, None).max_power_kw(), 3.68);
    }

    #[test]
    fn location_keys_fold_case() {
        let mut loc = location(52.0, 4.0);
        loc.id = LocationId::new("Loc-7").unwrap();
        assert_eq!(loc.key(), "NL*ABC*LOC-7");
    }

    #[test]
    fn validation_rejects_null_island_bad_zones_and_duplicate_ids() {
        assert!(location(52.0, 4.0).validate().is_ok());
        let err = location(0.0, 0.0).validate().unwrap_err();
        assert_eq!(err.field, "coordinates");
        assert!(location(f64::NAN, 4.0).validate().is_err());

        let mut loc = location(52.0, 4.0);
        loc.time_zone = Some("Mars/Olympus".into());
        assert_eq!(loc.validate().unwrap_err().field, "time_zone");

        let mut loc = location(52.0, 4.0);
        let evse = Evse {
            uid: EvseUid::new("E1").unwrap(),
            evse_id: None,
            status: EvseStatus::Available,
            status_schedule: vec![],
            capabilities: vec![],
            connectors: vec![connector(PowerType::Dc, 400, 125, None), connector(PowerType::Dc, 400, 125, None)],
            floor_level: None,
            coordinates: None,
            physical_reference: None,
            directions: vec![],
            parking_restrictions: vec![],
            images: vec![],
            last_updated: Utc::now(),
        };
        loc.evses.push(evse);
        assert_eq!(loc.validate().unwrap_err().field, "evses[0].connectors[1].id");
    }

    #[test]
    fn unknown_enum_values_survive_a_round_trip() {
        let standard: ConnectorStandard = serde_json::from_str("\"NACS_V2\"").unwrap();
        assert!(!standard.is_known());
        assert_eq!(serde_json::to_string(&standard).unwrap(), "\"NACS_V2\"");
        let known: ConnectorStandard = serde_json::from_str("\"IEC_62196_T2_COMBO\"").unwrap();
        assert_eq!(known, ConnectorStandard::Iec62196T2Combo);
    }
}
