//! Tariffs: what charging costs (OCPI `Tariff`). Pricing logic lives beside them in the domain crate.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::enums::open_enum;
use crate::ids::TariffId;
use crate::location::DisplayText;
use crate::money::{Currency, Price};
use crate::party::PartyId;

/// A tariff of a CPO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tariff {
    pub party: PartyId,
    pub id: TariffId,
    pub currency: Currency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff_type: Option<TariffType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tariff_alt_text: Vec<DisplayText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff_alt_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<Price>,
    pub elements: Vec<TariffElement>,
    /// OCPI 2.3.0: the amount a payment terminal or card hold reserves before charging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preauthorize_amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_mix: Option<serde_json::Value>,
    pub last_updated: DateTime<Utc>,
}

impl Tariff {
    /// `CC*PID*ID`, upper case.
    pub fn key(&self) -> String {
        format!("{}*{}*{}", self.party.country_code, self.party.party_id, self.id.key())
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.elements.is_empty() {
            return Err(ValidationError::new("elements", "a tariff needs at least one element"));
        }
        for (index, element) in self.elements.iter().enumerate() {
            element.validate().map_err(|e| e.within(&format!("elements[{index}]")))?;
        }
        if let Some(min) = &self.min_price {
            min.validate().map_err(|e| e.within("min_price"))?;
        }
        if let Some(max) = &self.max_price {
            max.validate().map_err(|e| e.within("max_price"))?;
        }
        if let (Some(min), Some(max)) = (&self.min_price, &self.max_price)
            && min.excl_vat > max.excl_vat
        {
            return Err(ValidationError::new("min_price", "is above max_price"));
        }
        if let (Some(start), Some(end)) = (self.start_date_time, self.end_date_time)
            && end < start
        {
            return Err(ValidationError::new("end_date_time", "is before start_date_time"));
        }
        Ok(())
    }
}

open_enum! {
    /// Who a tariff is for (OCPI `TariffType`).
    pub enum TariffType {
        AdHocPayment => "AD_HOC_PAYMENT",
        ProfileCheap => "PROFILE_CHEAP",
        ProfileFast => "PROFILE_FAST",
        ProfileGreen => "PROFILE_GREEN",
        Regular => "REGULAR",
    }
}

/// Price components that apply together under one set of restrictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TariffElement {
    pub price_components: Vec<PriceComponent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrictions: Option<TariffRestrictions>,
}

impl TariffElement {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.price_components.is_empty() {
            return Err(ValidationError::new("price_components", "an element needs at least one price component"));
        }
        for (index, component) in self.price_components.iter().enumerate() {
            component.validate().map_err(|e| e.within(&format!("price_components[{index}]")))?;
        }
        if let Some(restrictions) = &self.restrictions {
            restrictions.validate().map_err(|e| e.within("restrictions"))?;
        }
        Ok(())
    }
}

open_enum! {
    /// What a price component charges for (OCPI `TariffDimensionType`).
    pub enum TariffDimension {
        Energy => "ENERGY",
        Flat => "FLAT",
        ParkingTime => "PARKING_TIME",
        Time => "TIME",
    }
}

/// One price (OCPI `PriceComponent`): per kWh, per hour, or per session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceComponent {
    #[serde(rename = "type")]
    pub dimension: TariffDimension,
    /// Excluding VAT, per unit (kWh, hour, or once for FLAT).
    pub price: Decimal,
    /// VAT percentage; absent when not applicable or unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat: Option<Decimal>,
    /// Billing step: Wh for ENERGY, seconds for TIME and PARKING_TIME.
    #[serde(default = "one")]
    pub step_size: u32,
}

fn one() -> u32 {
    1
}

impl PriceComponent {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.price.is_sign_negative() && !self.price.is_zero() {
            return Err(ValidationError::new("price", "must not be negative"));
        }
        if let Some(vat) = self.vat
            && (vat.is_sign_negative() || vat > Decimal::ONE_HUNDRED)
        {
            return Err(ValidationError::new("vat", format!("{vat} is not a percentage")));
        }
        if self.step_size == 0 && self.dimension != TariffDimension::Flat {
            return Err(ValidationError::new("step_size", "must be at least 1"));
        }
        Ok(())
    }
}

open_enum! {
    /// ISO weekday names used by tariff restrictions.
    pub enum DayOfWeek {
        Monday => "MONDAY",
        Tuesday => "TUESDAY",
        Wednesday => "WEDNESDAY",
        Thursday => "THURSDAY",
        Friday => "FRIDAY",
        Saturday => "SATURDAY",
        Sunday => "SUNDAY",
    }
}

open_enum! {
    /// Whether an element prices a reservation (OCPI `ReservationRestrictionType`).
    pub enum ReservationRestriction {
        Reservation => "RESERVATION",
        ReservationExpires => "RESERVATION_EXPIRES",
    }
}

/// When a tariff element applies (OCPI `TariffRestrictions`). Times and dates are local to the
/// location; energy in kWh, current in A, power in kW, durations in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TariffRestrictions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<NaiveTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<NaiveTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kwh: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_kwh: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_current: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_current: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_power: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_power: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub day_of_week: Vec<DayOfWeek>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<ReservationRestriction>,
}

impl TariffRestrictions {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let pairs = [
            ("kwh", self.min_kwh, self.max_kwh),
            ("current", self.min_current, self.max_current),
            ("power", self.min_power, self.max_power),
        ];
        for (name, min, max) in pairs {
            if let (Some(min), Some(max)) = (min, max)
                && min > max
            {
                return Err(ValidationError::new(format!("min_{name}"), format!("is above max_{name}")));
            }
        }
        if let (Some(min), Some(max)) = (self.min_duration, self.max_duration)
            && min > max
        {
            return Err(ValidationError::new("min_duration", "is above max_duration"));
        }
        Ok(())
    }
}
