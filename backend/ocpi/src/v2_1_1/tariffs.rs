//! OCPI 2.1.1 `Tariff`: no party, no VAT, no tariff type, no min/max price, no current or
//! reservation restrictions. Mapping goes through the 2.2.1 element types, which are a superset.

use chrono::{DateTime, Utc};
use emsp_domain as domain;
use emsp_domain::{DayOfWeek, PartyId, TariffDimension};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::lenient;
use crate::mapping::{MapError, Notes, resolve_party};
pub use crate::v2_2_1::locations::DisplayText;
use crate::v2_2_1::locations::display_text_from_domain;
use crate::v2_2_1::tariffs as v221;

/// A tariff (2.1.1 `Tariff` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tariff {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(deserialize_with = "lenient::string")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::vec")]
    pub tariff_alt_text: Vec<DisplayText>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_string")]
    pub tariff_alt_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub elements: Vec<TariffElement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_mix: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_datetime")]
    pub last_updated: Option<DateTime<Utc>>,
}

/// `TariffElement`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TariffElement {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub price_components: Vec<PriceComponent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrictions: Option<TariffRestrictions>,
}

/// `PriceComponent` (no VAT in 2.1.1: prices exclude it, its rate is unknown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceComponent {
    #[serde(rename = "type")]
    pub dimension: TariffDimension,
    #[serde(deserialize_with = "lenient::decimal", serialize_with = "lenient::serialize_decimal")]
    pub price: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_u32")]
    pub step_size: Option<u32>,
}

/// `TariffRestrictions` of 2.1.1.
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
}

impl TariffElement {
    /// The same element in 2.2.1 form (a superset).
    fn to_v2_2_1(&self) -> v221::TariffElement {
        v221::TariffElement {
            price_components: self
                .price_components
                .iter()
                .map(|c| v221::PriceComponent {
                    dimension: c.dimension.clone(),
                    price: c.price,
                    vat: None,
                    step_size: c.step_size,
                })
                .collect(),
            restrictions: self.restrictions.as_ref().map(|r| v221::TariffRestrictions {
                start_time: r.start_time.clone(),
                end_time: r.end_time.clone(),
                start_date: r.start_date.clone(),
                end_date: r.end_date.clone(),
                min_kwh: r.min_kwh,
                max_kwh: r.max_kwh,
                min_current: None,
                max_current: None,
                min_power: r.min_power,
                max_power: r.max_power,
                min_duration: r.min_duration,
                max_duration: r.max_duration,
                day_of_week: r.day_of_week.clone(),
                reservation: None,
            }),
        }
    }
}

/// A 2.1.1 tariff as a domain tariff; `party` is the partner the tariff came from. Component VAT
/// is unknown (`None`), which the price engine treats as "total incl. VAT unknown".
pub fn to_domain(wire: &Tariff, party: Option<&PartyId>, notes: &mut Notes) -> Result<domain::Tariff, MapError> {
    let party = resolve_party(None, None, party, [("id".to_owned(), wire.id.as_str())], notes)?;
    let wide = v221::Tariff {
        country_code: Some(party.country_code.to_string()),
        party_id: Some(party.party_id.to_string()),
        id: wire.id.clone(),
        currency: wire.currency.clone(),
        tariff_type: None,
        tariff_alt_text: wire.tariff_alt_text.clone(),
        tariff_alt_url: wire.tariff_alt_url.clone(),
        min_price: None,
        max_price: None,
        elements: wire.elements.iter().map(TariffElement::to_v2_2_1).collect(),
        start_date_time: None,
        end_date_time: None,
        energy_mix: wire.energy_mix.clone(),
        last_updated: wire.last_updated,
    };
    v221::to_domain(&wide, None, notes)
}

/// A domain tariff as a 2.1.1 object. Lost on the way: VAT, tariff type, min/max price, validity
/// dates, current and reservation restrictions (2.1.1 cannot say them).
pub fn from_domain(tariff: &domain::Tariff) -> Tariff {
    Tariff {
        id: tariff.id.to_string(),
        currency: tariff.currency.to_string(),
        tariff_alt_text: tariff.tariff_alt_text.iter().map(display_text_from_domain).collect(),
        tariff_alt_url: tariff.tariff_alt_url.clone(),
        elements: tariff
            .elements
            .iter()
            .map(|element| {
                let wide = v221::element_from_domain(element);
                TariffElement {
                    price_components: wide
                        .price_components
                        .into_iter()
                        .map(|c| PriceComponent { dimension: c.dimension, price: c.price, step_size: c.step_size })
                        .collect(),
                    restrictions: wide.restrictions.map(|r| TariffRestrictions {
                        start_time: r.start_time,
                        end_time: r.end_time,
                        start_date: r.start_date,
                        end_date: r.end_date,
                        min_kwh: r.min_kwh,
                        max_kwh: r.max_kwh,
                        min_power: r.min_power,
                        max_power: r.max_power,
                        min_duration: r.min_duration,
                        max_duration: r.max_duration,
                        day_of_week: r.day_of_week,
                    }),
                }
            })
            .collect(),
        energy_mix: tariff.energy_mix.clone(),
        last_updated: Some(tariff.last_updated),
    }
}
