//! Price estimates for a planned session, with the same engine that checks CDRs.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use emsp_domain::opening_hours::location_time_zone;
use emsp_domain::pricing::{PlannedSession, estimate};
use emsp_domain::{Location, Tariff};
use rust_decimal::Decimal;

use crate::errors::ApiCode;

/// What a planned session would cost.
#[derive(Debug, Clone, SimpleObject)]
pub struct PriceEstimate {
    /// `CC*PID*ID` of the tariff used.
    pub tariff_id: String,
    pub currency: String,
    pub energy_kwh: Decimal,
    pub start_at: DateTime<Utc>,
    pub end_at: DateTime<Utc>,
    pub total_excl_vat: Decimal,
    /// Absent when the tariff does not state its VAT.
    pub total_incl_vat: Option<Decimal>,
    pub energy_cost_excl_vat: Decimal,
    pub time_cost_excl_vat: Decimal,
    pub parking_cost_excl_vat: Decimal,
    pub fixed_cost_excl_vat: Decimal,
    /// Notes on how the estimate was made (restrictions that could not be evaluated, ...).
    pub warnings: Vec<String>,
}

/// The tariff keys of an EVSE's connectors (or of the whole location), in order, without repeats.
pub fn tariff_keys(location: &Location, evse_uid: Option<&str>) -> async_graphql::Result<Vec<String>> {
    let evses: Vec<_> = match evse_uid {
        Some(uid) => {
            let evse = location
                .evses
                .iter()
                .find(|e| e.uid.as_str().eq_ignore_ascii_case(uid))
                .ok_or_else(|| ApiCode::NotFound.error(format!("charger {} has no EVSE {uid}", location.key())))?;
            vec![evse]
        }
        None => location.evses.iter().collect(),
    };
    let mut keys = Vec::new();
    for connector in evses.iter().flat_map(|e| &e.connectors) {
        for id in &connector.tariff_ids {
            let key = format!("{}*{}*{}", location.party.country_code, location.party.party_id, id.key());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

/// The highest power an EVSE (or the location) offers, in kW.
pub fn max_power(location: &Location, evse_uid: Option<&str>) -> f64 {
    location
        .evses
        .iter()
        .filter(|e| evse_uid.is_none_or(|uid| e.uid.as_str().eq_ignore_ascii_case(uid)))
        .map(emsp_domain::Evse::max_power_kw)
        .fold(0.0, f64::max)
}

pub fn estimate_with(
    location: &Location,
    tariff: &Tariff,
    energy_kwh: f64,
    start: DateTime<Utc>,
    max_power_kw: f64,
) -> async_graphql::Result<PriceEstimate> {
    if !(energy_kwh.is_finite() && energy_kwh > 0.0 && energy_kwh <= 1_000.0) {
        return Err(ApiCode::BadUserInput.error("energyKwh must be more than 0 and at most 1000"));
    }
    if !(max_power_kw.is_finite() && max_power_kw > 0.0 && max_power_kw <= 2_000.0) {
        return Err(ApiCode::BadUserInput.error("maxPowerKw must be more than 0 and at most 2000"));
    }
    let energy = Decimal::from_f64_retain(energy_kwh).unwrap_or_default().round_dp(3);
    let power = Decimal::from_f64_retain(max_power_kw).unwrap_or_default().round_dp(3);
    let planned = PlannedSession::new(start, energy, power);
    let breakdown = estimate(tariff, &planned, location_time_zone(location))
        .map_err(|e| ApiCode::BadUserInput.error(format!("cannot price this session: {e}")))?;
    Ok(PriceEstimate {
        tariff_id: breakdown.tariff.clone(),
        currency: breakdown.currency.to_string(),
        energy_kwh: breakdown.total_energy,
        start_at: breakdown.start_date_time,
        end_at: breakdown.end_date_time,
        total_excl_vat: breakdown.total_cost.excl_vat,
        total_incl_vat: breakdown.total_cost.incl_vat,
        energy_cost_excl_vat: breakdown.total_energy_cost.excl_vat,
        time_cost_excl_vat: breakdown.total_time_cost.excl_vat,
        parking_cost_excl_vat: breakdown.total_parking_cost.excl_vat,
        fixed_cost_excl_vat: breakdown.total_fixed_cost.excl_vat,
        warnings: breakdown.warnings,
    })
}
