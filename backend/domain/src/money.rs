//! Money: decimal amounts with a currency. Never `f64`.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// ISO 4217 currency code, upper case (`EUR`, `CHF`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn new(code: &str) -> Result<Self, ValidationError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ValidationError::new("currency", format!("{code:?} is not an ISO 4217 code")));
        }
        Ok(Self(code.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits after the decimal point in the currency's minor unit (ISO 4217).
    pub fn minor_unit_digits(&self) -> u32 {
        match self.0.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
            | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> String {
        value.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount in a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// The amount in the currency's minor unit (cents for EUR), rounded half away from zero.
    pub fn to_minor_units(&self) -> Option<i64> {
        let digits = self.currency.minor_unit_digits();
        let scaled = self.amount.checked_mul(Decimal::from(10_i64.pow(digits)))?;
        let rounded = scaled.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        i64::try_from(rounded).ok()
    }

    /// An amount given in minor units.
    pub fn from_minor_units(minor: i64, currency: Currency) -> Self {
        let amount = Decimal::new(minor, currency.minor_unit_digits());
        Self { amount, currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// A price with and without VAT, as OCPI's `Price` (the currency comes from the tariff, session or CDR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub excl_vat: Decimal,
    /// Absent when the VAT is not known (OCPI 2.2.1 makes it optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incl_vat: Option<Decimal>,
}

impl Price {
    pub fn new(excl_vat: Decimal, incl_vat: Option<Decimal>) -> Self {
        Self { excl_vat, incl_vat }
    }

    pub fn zero() -> Self {
        Self { excl_vat: Decimal::ZERO, incl_vat: Some(Decimal::ZERO) }
    }

    /// Rejects negative amounts and a price whose VAT-inclusive part is below its VAT-exclusive part.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.excl_vat.is_sign_negative() && !self.excl_vat.is_zero() {
            return Err(ValidationError::new("excl_vat", "must not be negative"));
        }
        if let Some(incl) = self.incl_vat
            && incl < self.excl_vat
        {
            return Err(ValidationError::new("incl_vat", "is lower than excl_vat"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn minor_units_round_half_away_from_zero() {
        let eur = Currency::new("eur").unwrap();
        assert_eq!(eur.as_str(), "EUR");
        assert_eq!(Money::new(dec!(12.345), eur.clone()).to_minor_units(), Some(1235));
        assert_eq!(Money::new(dec!(0.004), eur.clone()).to_minor_units(), Some(0));
        assert_eq!(Money::from_minor_units(1999, eur).amount, dec!(19.99));
        let jpy = Currency::new("JPY").unwrap();
        assert_eq!(Money::new(dec!(100.5), jpy).to_minor_units(), Some(101));
    }

    #[test]
    fn decimal_amounts_round_trip_through_json_as_strings() {
        let price = Price::new(dec!(0.25), Some(dec!(0.3025)));
        let json = serde_json::to_string(&price).unwrap();
        assert_eq!(json, r#"{"excl_vat":"0.25","incl_vat":"0.3025"}"#);
        let back: Price = serde_json::from_str(&json).unwrap();
        assert_eq!(back, price);
        let from_number: Price = serde_json::from_str(r#"{"excl_vat":0.1}"#).unwrap();
        assert_eq!(from_number.excl_vat, dec!(0.1), "numbers from partners parse exactly, not through f64");
    }

    #[test]
    fn rejects_bad_currency_and_prices() {
        assert!(Currency::new("EURO").is_err());
        assert!(Price::new(dec!(-1), None).validate().is_err());
        assert!(Price::new(dec!(2), Some(dec!(1))).validate().is_err());
    }
}
