//! OCPI 2.2.1 `Tariff` and its classes, and their mapping to the domain.

use chrono::{DateTime, Utc};
use emsp_domain as domain;
use emsp_domain::{Currency, DayOfWeek, PartyId, ReservationRestriction, TariffDimension, TariffId, TariffType};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::locations::{DisplayText, display_text_from_domain, display_texts_to_domain};
use crate::lenient;
use crate::mapping::{
    FALLBACK_LAST_UPDATED, MapError, Notes, date, date_text, index, join, optional_text, plausible, resolve_party,
    time_of_day, time_text,
};

/// A tariff (2.2.1 `Tariff` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tariff {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub party_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(deserialize_with = "lenient::string")]
    pub currency: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub tariff_type: Option<TariffType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub tariff_alt_text: Vec<DisplayText>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub tariff_alt_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<Price>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub elements: Vec<TariffElement>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub start_date_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub end_date_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_mix: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub last_updated: Option<DateTime<Utc>>,
}

/// `Price`: an amount excluding and (optionally) including VAT.
///
/// Also reads the OCPI 2.3.0 form `{before_taxes, taxes: [{name, amount}]}`: `before_taxes` is the
/// amount excluding VAT, and with taxes listed, their sum added to it is the amount including them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PriceInput")]
pub struct Price {
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub excl_vat: Decimal,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub incl_vat: Option<Decimal>,
}

/// What a price may look like on the wire, 2.2.1 or 2.3.0.
#[derive(Deserialize)]
struct PriceInput {
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    excl_vat: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    incl_vat: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    before_taxes: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::vec")]
    taxes: Vec<TaxAmount>,
}

/// OCPI 2.3.0 `TaxAmount` (only the amount matters here).
#[derive(Deserialize)]
struct TaxAmount {
    #[serde(deserialize_with = "lenient::decimal")]
    amount: Decimal,
}

impl TryFrom<PriceInput> for Price {
    type Error = String;

    fn try_from(input: PriceInput) -> Result<Self, String> {
        if let Some(excl_vat) = input.excl_vat {
            return Ok(Price { excl_vat, incl_vat: input.incl_vat });
        }
        let Some(before_taxes) = input.before_taxes else {
            return Err("missing field `excl_vat`".to_owned());
        };
        let mut incl_vat = None;
        if !input.taxes.is_empty() {
            let mut total = before_taxes;
            for tax in &input.taxes {
                total = total.checked_add(tax.amount).ok_or("taxes overflow the amount")?;
            }
            incl_vat = Some(total);
        }
        Ok(Price { excl_vat: before_taxes, incl_vat })
    }
}

/// `TariffElement`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TariffElement {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub price_components: Vec<PriceComponent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrictions: Option<TariffRestrictions>,
}

/// `PriceComponent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceComponent {
    #[serde(rename = "type")]
    pub dimension: TariffDimension,
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub price: Decimal,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub vat: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_u32")]
    pub step_size: Option<u32>,
}

/// `TariffRestrictions`: times `HH:MM`, dates `YYYY-MM-DD`, local to the location.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TariffRestrictions {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub end_date: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub min_kwh: Option<Decimal>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub max_kwh: Option<Decimal>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub min_current: Option<Decimal>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub max_current: Option<Decimal>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub min_power: Option<Decimal>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_decimal",
        serialize_with = "lenient::serialize_opt_decimal"
    )]
    pub max_power: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_u32")]
    pub min_duration: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_u32")]
    pub max_duration: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub day_of_week: Vec<DayOfWeek>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<ReservationRestriction>,
}

// ---------------------------------------------------------------------------------------------
// Wire → domain
// ---------------------------------------------------------------------------------------------

/// A 2.2.1 tariff as a domain tariff; `fallback_party` when the object names no valid party.
pub fn to_domain(
    wire: &Tariff,
    fallback_party: Option<&PartyId>,
    notes: &mut Notes,
) -> Result<domain::Tariff, MapError> {
    let party = resolve_party(
        wire.country_code.as_deref(),
        wire.party_id.as_deref(),
        fallback_party,
        [("id".to_owned(), wire.id.as_str())],
        notes,
    )?;
    let id = TariffId::new(wire.id.trim()).map_err(|e| MapError::new("id", e.reason))?;
    let currency = Currency::new(wire.currency.trim()).map_err(|e| MapError::new("currency", e.reason))?;
    let mut elements = Vec::new();
    for (position, element) in wire.elements.iter().enumerate() {
        elements.push(element_to_domain(element, &index("elements", position), notes)?);
    }
    let last_updated = match plausible(wire.last_updated, "last_updated", notes) {
        Some(at) => at,
        None => {
            let fallback = FALLBACK_LAST_UPDATED.to_rfc3339();
            notes.warn("last_updated", format!("missing, the fixed fallback {fallback} is used"));
            FALLBACK_LAST_UPDATED
        }
    };
    Ok(domain::Tariff {
        party,
        id,
        currency,
        tariff_type: wire.tariff_type.clone(),
        tariff_alt_text: display_texts_to_domain(&wire.tariff_alt_text, "tariff_alt_text", notes),
        tariff_alt_url: optional_text(wire.tariff_alt_url.as_ref()),
        min_price: wire.min_price.as_ref().map(price_to_domain),
        max_price: wire.max_price.as_ref().map(price_to_domain),
        elements,
        preauthorize_amount: None,
        start_date_time: wire.start_date_time,
        end_date_time: wire.end_date_time,
        energy_mix: wire.energy_mix.clone(),
        last_updated,
    })
}

pub(crate) fn price_to_domain(wire: &Price) -> domain::Price {
    domain::Price { excl_vat: wire.excl_vat, incl_vat: wire.incl_vat }
}

fn element_to_domain(wire: &TariffElement, path: &str, notes: &mut Notes) -> Result<domain::TariffElement, MapError> {
    let mut price_components = Vec::new();
    for (position, component) in wire.price_components.iter().enumerate() {
        let component_path = index(&join(path, "price_components"), position);
        let step_size = match component.step_size {
            Some(step) => step,
            None => {
                notes.warn(join(&component_path, "step_size"), "missing, 1 assumed");
                1
            }
        };
        price_components.push(domain::PriceComponent {
            dimension: component.dimension.clone(),
            price: component.price,
            vat: component.vat,
            step_size,
        });
    }
    let restrictions = match &wire.restrictions {
        Some(restrictions) => Some(restrictions_to_domain(restrictions, &join(path, "restrictions"))?),
        None => None,
    };
    Ok(domain::TariffElement { price_components, restrictions })
}

fn restrictions_to_domain(wire: &TariffRestrictions, path: &str) -> Result<domain::TariffRestrictions, MapError> {
    let time =
        |value: &Option<String>, field: &str| value.as_deref().map(|t| time_of_day(t, &join(path, field))).transpose();
    let day = |value: &Option<String>, field: &str| value.as_deref().map(|d| date(d, &join(path, field))).transpose();
    Ok(domain::TariffRestrictions {
        start_time: time(&wire.start_time, "start_time")?,
        end_time: time(&wire.end_time, "end_time")?,
        start_date: day(&wire.start_date, "start_date")?,
        end_date: day(&wire.end_date, "end_date")?,
        min_kwh: wire.min_kwh,
        max_kwh: wire.max_kwh,
        min_current: wire.min_current,
        max_current: wire.max_current,
        min_power: wire.min_power,
        max_power: wire.max_power,
        min_duration: wire.min_duration,
        max_duration: wire.max_duration,
        day_of_week: wire.day_of_week.clone(),
        reservation: wire.reservation.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// Domain → wire
// ---------------------------------------------------------------------------------------------

/// A domain tariff as a 2.2.1 object. The 2.3.0 `preauthorize_amount` has no 2.2.1 field and is left out.
pub fn from_domain(tariff: &domain::Tariff) -> Tariff {
    Tariff {
        country_code: Some(tariff.party.country_code.to_string()),
        party_id: Some(tariff.party.party_id.to_string()),
        id: tariff.id.to_string(),
        currency: tariff.currency.to_string(),
        tariff_type: tariff.tariff_type.clone(),
        tariff_alt_text: tariff.tariff_alt_text.iter().map(display_text_from_domain).collect(),
        tariff_alt_url: tariff.tariff_alt_url.clone(),
        min_price: tariff.min_price.as_ref().map(price_from_domain),
        max_price: tariff.max_price.as_ref().map(price_from_domain),
        elements: tariff.elements.iter().map(element_from_domain).collect(),
        start_date_time: tariff.start_date_time,
        end_date_time: tariff.end_date_time,
        energy_mix: tariff.energy_mix.clone(),
        last_updated: Some(tariff.last_updated),
    }
}

pub(crate) fn price_from_domain(price: &domain::Price) -> Price {
    Price { excl_vat: price.excl_vat, incl_vat: price.incl_vat }
}

pub(crate) fn element_from_domain(element: &domain::TariffElement) -> TariffElement {
    TariffElement {
        price_components: element
            .price_components
            .iter()
            .map(|c| PriceComponent {
                dimension: c.dimension.clone(),
                price: c.price,
                vat: c.vat,
                step_size: Some(c.step_size),
            })
            .collect(),
        restrictions: element.restrictions.as_ref().map(restrictions_from_domain),
    }
}

pub(crate) fn restrictions_from_domain(restrictions: &domain::TariffRestrictions) -> TariffRestrictions {
    TariffRestrictions {
        start_time: restrictions.start_time.map(time_text),
        end_time: restrictions.end_time.map(time_text),
        start_date: restrictions.start_date.map(date_text),
        end_date: restrictions.end_date.map(date_text),
        min_kwh: restrictions.min_kwh,
        max_kwh: restrictions.max_kwh,
        min_current: restrictions.min_current,
        max_current: restrictions.max_current,
        min_power: restrictions.min_power,
        max_power: restrictions.max_power,
        min_duration: restrictions.min_duration,
        max_duration: restrictions.max_duration,
        day_of_week: restrictions.day_of_week.clone(),
        reservation: restrictions.reservation.clone(),
    }
}
