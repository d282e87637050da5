//! The engine: charging periods and a tariff in, a priced breakdown out (rules in the module doc).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use super::restrictions::{self, PeriodContext, Verdict};
use super::{AMOUNT_DECIMALS, PricingError, VOLUME_DECIMALS};
use crate::cdr::{CdrDimensionType, ChargingPeriod};
use crate::money::{Currency, Price};
use crate::tariff::{PriceComponent, ReservationRestriction, Tariff, TariffDimension};

/// What a line of the bill is for. Reservation costs are kept apart because OCPI reports them in
/// their own total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BilledDimension {
    Flat,
    Energy,
    Time,
    ParkingTime,
    ReservationFlat,
    ReservationTime,
}

impl BilledDimension {
    /// Size of one `step_size` unit in the dimension's volume unit: Wh per kWh, seconds per hour.
    fn step_units_per_volume_unit(self) -> Option<Decimal> {
        match self {
            BilledDimension::Energy => Some(Decimal::ONE_THOUSAND),
            BilledDimension::Time | BilledDimension::ParkingTime | BilledDimension::ReservationTime => {
                Some(Decimal::from(3600))
            }
            BilledDimension::Flat | BilledDimension::ReservationFlat => None,
        }
    }
}

/// Whether a period is part of the charging session or of a reservation before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeriodKind {
    Charging,
    Reservation,
}

/// One price component applied in one period: which element won, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedComponent {
    pub dimension: BilledDimension,
    /// Index of the winning element in `tariff.elements`.
    pub element_index: usize,
    /// Price per unit (kWh, hour, or once), excluding VAT.
    pub price: Decimal,
    pub vat: Option<Decimal>,
    pub step_size: u32,
    /// Volume measured in this period (kWh or hours; 1 for FLAT).
    pub volume: Decimal,
    /// Volume billed: the measured one, plus the `step_size` round-up in the last period that priced
    /// this dimension.
    pub billed_volume: Decimal,
    pub cost: Price,
}

/// One charging period as priced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodPrice {
    pub index: usize,
    pub kind: PeriodKind,
    pub start_date_time: DateTime<Utc>,
    pub end_date_time: DateTime<Utc>,
    /// The start in the location's time zone, as the restrictions saw it (RFC 3339 with offset).
    pub local_start: String,
    /// kWh.
    pub energy: Decimal,
    /// Hours.
    pub charging_time: Decimal,
    /// Hours.
    pub parking_time: Decimal,
    /// Hours.
    pub reservation_time: Decimal,
    pub components: Vec<AppliedComponent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LimitKind {
    MinPrice,
    MaxPrice,
}

/// A `min_price` or `max_price` that changed the total, with the total it replaced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceLimit {
    pub kind: LimitKind,
    pub total_before_limit: Price,
}

/// The price of a session and why. Amounts are rounded to [`AMOUNT_DECIMALS`], volumes to
/// [`VOLUME_DECIMALS`]; `incl_vat` is `None` where a component without VAT contributed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceBreakdown {
    /// `CC*PID*ID` of the tariff used.
    pub tariff: String,
    pub currency: Currency,
    pub time_zone: String,
    pub start_date_time: DateTime<Utc>,
    pub end_date_time: DateTime<Utc>,
    pub total_cost: Price,
    /// FLAT components outside reservations (start fees).
    pub total_fixed_cost: Price,
    pub total_energy_cost: Price,
    pub total_time_cost: Price,
    pub total_parking_cost: Price,
    pub total_reservation_cost: Price,
    /// Set when `min_price` or `max_price` changed `total_cost`.
    pub price_limit: Option<PriceLimit>,
    /// kWh.
    pub total_energy: Decimal,
    /// Hours of the charging session, charging plus parking (OCPI `total_time`).
    pub total_time: Decimal,
    /// Hours.
    pub total_charging_time: Decimal,
    /// Hours.
    pub total_parking_time: Decimal,
    /// Hours.
    pub total_reservation_time: Decimal,
    /// kWh billed by ENERGY components after `step_size`.
    pub billed_energy: Decimal,
    /// Hours billed by TIME components after `step_size`.
    pub billed_charging_time: Decimal,
    /// Hours billed by PARKING_TIME components after `step_size`.
    pub billed_parking_time: Decimal,
    /// Hours billed by reservation TIME components after `step_size`.
    pub billed_reservation_time: Decimal,
    pub periods: Vec<PeriodPrice>,
    /// Things operations should know: restrictions that could not be evaluated, derived volumes,
    /// components we do not understand, a session outside the tariff's validity.
    pub warnings: Vec<String>,
}

/// Larger volumes or prices are data errors, and refusing them keeps `Decimal` arithmetic far from
/// overflow.
const MAX_VOLUME: Decimal = Decimal::from_parts(10_000_000, 0, 0, false, 0);
const MAX_PRICE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// Prices `periods` (ordered by start; the last one ends at `session_end`) under `tariff`, with
/// restrictions evaluated in `time_zone`, the location's.
pub fn price_periods(
    tariff: &Tariff,
    periods: &[ChargingPeriod],
    session_end: DateTime<Utc>,
    time_zone: Tz,
) -> Result<PriceBreakdown, PricingError> {
    let Some(first) = periods.first() else {
        return Err(PricingError::NoPeriods);
    };
    for (index, pair) in periods.windows(2).enumerate() {
        if pair[1].start_date_time < pair[0].start_date_time {
            return Err(PricingError::PeriodsOutOfOrder { index: index + 1 });
        }
    }
    if periods.last().is_some_and(|last| last.start_date_time > session_end) {
        return Err(PricingError::EndBeforeLastPeriod);
    }
    let mut warnings = Warnings::default();
    check_tariff(tariff, first.start_date_time, &mut warnings)?;

    let session_start = first.start_date_time;
    let charging_start = periods.iter().find(|p| !is_reservation(p)).map(|p| p.start_date_time);
    let reservation_expired = charging_start.is_none();

    let mut energy_so_far = Decimal::ZERO;
    let mut total_charging_time = Decimal::ZERO;
    let mut total_parking_time = Decimal::ZERO;
    let mut total_reservation_time = Decimal::ZERO;
    let mut flat_charged = false;
    let mut reservation_flat_charged = false;
    let mut lines: Vec<Line> = Vec::new();
    let mut priced_periods: Vec<PeriodPrice> = Vec::with_capacity(periods.len());

    for (index, period) in periods.iter().enumerate() {
        let start = period.start_date_time;
        let end = periods.get(index + 1).map_or(session_end, |next| next.start_date_time);
        let wall_hours = hours_between(start, end);
        let measured = Measured::read(index, period)?;
        let kind = if is_reservation(period) { PeriodKind::Reservation } else { PeriodKind::Charging };
        if let Some(id) = &period.tariff_id
            && !id.eq_ignore_ascii_case(tariff.id.as_str())
        {
            warnings.push(format!(
                "period {index} names tariff {id:?}, priced with tariff {:?} anyway",
                tariff.id.as_str()
            ));
        }

        let (charging_time, parking_time) = match (kind, measured.time, measured.parking) {
            (PeriodKind::Reservation, _, _) => (Decimal::ZERO, Decimal::ZERO),
            (PeriodKind::Charging, None, None) => {
                if measured.energy_stated && measured.energy.is_zero() {
                    warnings
                        .push(format!("period {index} has no TIME or PARKING_TIME: its duration counts as parking"));
                    (Decimal::ZERO, wall_hours)
                } else {
                    warnings
                        .push(format!("period {index} has no TIME or PARKING_TIME: its duration counts as charging"));
                    (wall_hours, Decimal::ZERO)
                }
            }
            (PeriodKind::Charging, time, parking) => (time.unwrap_or_default(), parking.unwrap_or_default()),
        };
        if kind == PeriodKind::Charging && charging_time + parking_time > wall_hours + Decimal::new(1, 2) {
            warnings.push(format!(
                "period {index}: TIME + PARKING_TIME ({}) is longer than the period ({} h)",
                (charging_time + parking_time).round_dp(VOLUME_DECIMALS),
                wall_hours.round_dp(VOLUME_DECIMALS)
            ));
        }
        let reservation_time = match kind {
            PeriodKind::Reservation => measured.reservation.unwrap_or(wall_hours),
            PeriodKind::Charging => Decimal::ZERO,
        };
        let energy = match kind {
            PeriodKind::Charging => measured.energy,
            PeriodKind::Reservation => Decimal::ZERO,
        };

        let average_power = if charging_time > Decimal::ZERO {
            Some(energy / charging_time)
        } else if energy.is_zero() {
            Some(Decimal::ZERO)
        } else {
            None
        };
        // A period without charging draws no current, whatever the CPO wrote (or did not).
        let idle_current = (energy.is_zero() && charging_time.is_zero()).then_some(Decimal::ZERO);
        let since = match kind {
            PeriodKind::Charging => charging_start.unwrap_or(session_start),
            PeriodKind::Reservation => session_start,
        };
        let local = start.with_timezone(&time_zone);
        let ctx = PeriodContext {
            local_start: local.naive_local(),
            energy_so_far,
            duration_so_far: Decimal::from((start - since).num_milliseconds()) / Decimal::ONE_THOUSAND,
            max_power: measured.max_power.or(measured.power).or(average_power),
            min_power: measured.min_power.or(measured.power).or(average_power),
            max_current: measured.max_current.or(measured.current).or(idle_current),
            min_current: measured.min_current.or(measured.current).or(idle_current),
        };

        let active = active_elements(tariff, kind, reservation_expired, &ctx, index, &mut warnings);
        let wanted: Vec<(BilledDimension, TariffDimension, Decimal)> = match kind {
            PeriodKind::Charging => vec![
                (BilledDimension::Flat, TariffDimension::Flat, if flat_charged { Decimal::ZERO } else { Decimal::ONE }),
                (BilledDimension::Energy, TariffDimension::Energy, energy),
                (BilledDimension::Time, TariffDimension::Time, charging_time),
                (BilledDimension::ParkingTime, TariffDimension::ParkingTime, parking_time),
            ],
            PeriodKind::Reservation => vec![
                (
                    BilledDimension::ReservationFlat,
                    TariffDimension::Flat,
                    if reservation_flat_charged { Decimal::ZERO } else { Decimal::ONE },
                ),
                (BilledDimension::ReservationTime, TariffDimension::Time, reservation_time),
            ],
        };
        for (billed, dimension, volume) in wanted {
            if volume <= Decimal::ZERO {
                continue;
            }
            let Some((element_index, component)) = first_component(tariff, &active, &dimension) else {
                continue;
            };
            match billed {
                BilledDimension::Flat => flat_charged = true,
                BilledDimension::ReservationFlat => reservation_flat_charged = true,
                _ => {}
            }
            lines.push(Line {
                period: index,
                dimension: billed,
                element_index,
                component,
                volume,
                billed_volume: volume,
            });
        }
        energy_so_far += energy;
        total_charging_time += charging_time;
        total_parking_time += parking_time;
        total_reservation_time += reservation_time;

        priced_periods.push(PeriodPrice {
            index,
            kind,
            start_date_time: start,
            end_date_time: end,
            local_start: local.to_rfc3339(),
            energy: energy.round_dp(VOLUME_DECIMALS).normalize(),
            charging_time: charging_time.round_dp(VOLUME_DECIMALS).normalize(),
            parking_time: parking_time.round_dp(VOLUME_DECIMALS).normalize(),
            reservation_time: reservation_time.round_dp(VOLUME_DECIMALS).normalize(),
            components: Vec::new(),
        });
    }

    apply_step_sizes(&mut lines);

    let mut fixed = Sum::default();
    let mut energy_cost = Sum::default();
    let mut time_cost = Sum::default();
    let mut parking_cost = Sum::default();
    let mut reservation_cost = Sum::default();
    let mut billed = [Decimal::ZERO; 4];
    for line in &lines {
        let excl = line.billed_volume * line.component.price;
        let incl = line.component.vat.map(|vat| excl * (Decimal::ONE + vat / Decimal::ONE_HUNDRED));
        let (sum, billed_slot) = match line.dimension {
            BilledDimension::Flat => (&mut fixed, None),
            BilledDimension::Energy => (&mut energy_cost, Some(0)),
            BilledDimension::Time => (&mut time_cost, Some(1)),
            BilledDimension::ParkingTime => (&mut parking_cost, Some(2)),
            BilledDimension::ReservationFlat => (&mut reservation_cost, None),
            BilledDimension::ReservationTime => (&mut reservation_cost, Some(3)),
        };
        sum.add(excl, incl);
        if let Some(slot) = billed_slot {
            billed[slot] += line.billed_volume;
        }
        if let Some(period) = priced_periods.get_mut(line.period) {
            period.components.push(AppliedComponent {
                dimension: line.dimension,
                element_index: line.element_index,
                price: line.component.price,
                vat: line.component.vat,
                step_size: line.component.step_size,
                volume: volume_out(line.volume),
                billed_volume: volume_out(line.billed_volume),
                cost: Sum { excl, incl }.rounded(),
            });
        }
    }

    let mut total = Sum::default();
    for part in [&fixed, &energy_cost, &time_cost, &parking_cost, &reservation_cost] {
        total.add(part.excl, part.incl);
    }
    let (limited, limit_kind) = apply_limits(&total, tariff.min_price.as_ref(), tariff.max_price.as_ref());
    let price_limit = limit_kind.map(|kind| PriceLimit { kind, total_before_limit: total.rounded() });

    Ok(PriceBreakdown {
        tariff: tariff.key(),
        currency: tariff.currency.clone(),
        time_zone: time_zone.name().to_owned(),
        start_date_time: session_start,
        end_date_time: session_end,
        total_cost: limited.rounded(),
        total_fixed_cost: fixed.rounded(),
        total_energy_cost: energy_cost.rounded(),
        total_time_cost: time_cost.rounded(),
        total_parking_cost: parking_cost.rounded(),
        total_reservation_cost: reservation_cost.rounded(),
        price_limit,
        total_energy: volume_out(energy_so_far),
        total_time: volume_out(total_charging_time + total_parking_time),
        total_charging_time: volume_out(total_charging_time),
        total_parking_time: volume_out(total_parking_time),
        total_reservation_time: volume_out(total_reservation_time),
        billed_energy: volume_out(billed[0]),
        billed_charging_time: volume_out(billed[1]),
        billed_parking_time: volume_out(billed[2]),
        billed_reservation_time: volume_out(billed[3]),
        periods: priced_periods,
        warnings: warnings.into_inner(),
    })
}

/// One component billed in one period, before amounts are computed.
struct Line<'t> {
    period: usize,
    dimension: BilledDimension,
    element_index: usize,
    component: &'t PriceComponent,
    volume: Decimal,
    billed_volume: Decimal,
}

/// `step_size` applies once per session to ENERGY, once to TIME and PARKING_TIME together, and
/// once to reservation time: to the dimension of the last period of the group that was priced, whose
/// session total is rounded up to that period's step, the difference billed in that period at its
/// price. Charging time followed by paid parking is therefore billed exactly (`mod_cdrs`).
fn apply_step_sizes(lines: &mut [Line<'_>]) {
    let groups: [&[BilledDimension]; 3] = [
        &[BilledDimension::Energy],
        &[BilledDimension::Time, BilledDimension::ParkingTime],
        &[BilledDimension::ReservationTime],
    ];
    for group in groups {
        let Some(last) = lines.iter().rposition(|l| group.contains(&l.dimension)) else { continue };
        let dimension = lines[last].dimension;
        let Some(units) = dimension.step_units_per_volume_unit() else { continue };
        let total: Decimal = lines.iter().filter(|l| l.dimension == dimension).map(|l| l.volume).sum();
        let line = &mut lines[last];
        let step = Decimal::from(line.component.step_size.max(1));
        // Rounding at 6 decimals first drops representation noise (0.0333… h is 120 s, not 121).
        let total_units = (total * units).round_dp(VOLUME_DECIMALS);
        let billed_units = (total_units / step).ceil() * step;
        let extra = billed_units / units - total;
        if extra > Decimal::ZERO {
            line.billed_volume += extra;
        }
    }
}

/// Elements that may price this period, in the order they compete: the first one with a component
/// of a dimension wins it.
fn active_elements(
    tariff: &Tariff,
    kind: PeriodKind,
    reservation_expired: bool,
    ctx: &PeriodContext,
    period: usize,
    warnings: &mut Warnings,
) -> Vec<usize> {
    let reservation_of = |index: usize| {
        tariff.elements.get(index).and_then(|e| e.restrictions.as_ref()).and_then(|r| r.reservation.clone())
    };
    let all = 0..tariff.elements.len();
    let candidates: Vec<usize> = match kind {
        PeriodKind::Charging => all.filter(|&i| reservation_of(i).is_none()).collect(),
        PeriodKind::Reservation if reservation_expired => {
            let expires =
                all.clone().filter(|&i| reservation_of(i) == Some(ReservationRestriction::ReservationExpires));
            let reservation = all.filter(|&i| reservation_of(i) == Some(ReservationRestriction::Reservation));
            expires.chain(reservation).collect()
        }
        PeriodKind::Reservation => {
            all.filter(|&i| reservation_of(i) == Some(ReservationRestriction::Reservation)).collect()
        }
    };
    let mut active = Vec::with_capacity(candidates.len());
    for index in candidates {
        let Some(element) = tariff.elements.get(index) else { continue };
        let verdict = match &element.restrictions {
            None => Verdict::Applies,
            Some(restrictions) => restrictions::check(restrictions, ctx),
        };
        match verdict {
            Verdict::Applies => active.push(index),
            Verdict::DoesNotApply => {}
            Verdict::Unknown(why) => {
                warnings.push(format!("period {period}: element {index} skipped, {why} and none was measured"))
            }
        }
    }
    active
}

fn first_component<'t>(
    tariff: &'t Tariff,
    active: &[usize],
    dimension: &TariffDimension,
) -> Option<(usize, &'t PriceComponent)> {
    active.iter().find_map(|&index| {
        let element = tariff.elements.get(index)?;
        element.price_components.iter().find(|c| &c.dimension == dimension).map(|c| (index, c))
    })
}

fn check_tariff(tariff: &Tariff, session_start: DateTime<Utc>, warnings: &mut Warnings) -> Result<(), PricingError> {
    for (element, tariff_element) in tariff.elements.iter().enumerate() {
        for component in &tariff_element.price_components {
            if component.price.abs() > MAX_PRICE {
                return Err(PricingError::ImplausiblePrice { element, price: component.price });
            }
            if !component.dimension.is_known() {
                warnings.push(format!(
                    "element {element}: price component type {} is not OCPI 2.2.1 and was ignored",
                    component.dimension
                ));
            }
        }
        let reservation = tariff_element.restrictions.as_ref().and_then(|r| r.reservation.as_ref());
        if let Some(reservation) = reservation
            && !reservation.is_known()
        {
            warnings
                .push(format!("element {element}: reservation restriction {reservation} is unknown, never applies"));
        }
    }
    if tariff.start_date_time.is_some_and(|from| session_start < from)
        || tariff.end_date_time.is_some_and(|until| session_start >= until)
    {
        warnings.push("the session starts outside the tariff's start_date_time..end_date_time".to_owned());
    }
    Ok(())
}

/// The dimensions of one period, summed per type (a partner may split a type over two entries).
#[derive(Default)]
struct Measured {
    energy: Decimal,
    energy_stated: bool,
    time: Option<Decimal>,
    parking: Option<Decimal>,
    reservation: Option<Decimal>,
    power: Option<Decimal>,
    max_power: Option<Decimal>,
    min_power: Option<Decimal>,
    current: Option<Decimal>,
    max_current: Option<Decimal>,
    min_current: Option<Decimal>,
}

impl Measured {
    fn read(index: usize, period: &ChargingPeriod) -> Result<Self, PricingError> {
        let mut measured = Measured::default();
        for dimension in &period.dimensions {
            let volume = dimension.volume;
            if volume.abs() > MAX_VOLUME {
                return Err(PricingError::ImplausibleVolume {
                    index,
                    dimension: dimension.dimension.to_string(),
                    volume,
                });
            }
            let summed = |slot: Option<Decimal>| Some(slot.unwrap_or_default() + volume);
            match dimension.dimension {
                CdrDimensionType::Energy => {
                    measured.energy += volume;
                    measured.energy_stated = true;
                }
                CdrDimensionType::Time => measured.time = summed(measured.time),
                CdrDimensionType::ParkingTime => measured.parking = summed(measured.parking),
                CdrDimensionType::ReservationTime => measured.reservation = summed(measured.reservation),
                CdrDimensionType::Power => measured.power = Some(volume),
                CdrDimensionType::MaxPower => measured.max_power = Some(volume),
                CdrDimensionType::MinPower => measured.min_power = Some(volume),
                CdrDimensionType::Current => measured.current = Some(volume),
                CdrDimensionType::MaxCurrent => measured.max_current = Some(volume),
                CdrDimensionType::MinCurrent => measured.min_current = Some(volume),
                // Import/export split the same energy again; state of charge does not price anything.
                _ => {}
            }
        }
        let volumes = [
            ("ENERGY", Some(measured.energy)),
            ("TIME", measured.time),
            ("PARKING_TIME", measured.parking),
            ("RESERVATION_TIME", measured.reservation),
        ];
        for (name, volume) in volumes {
            if let Some(volume) = volume
                && volume < Decimal::ZERO
            {
                return Err(PricingError::NegativeVolume { index, dimension: name.to_owned(), volume });
            }
        }
        Ok(measured)
    }
}

fn is_reservation(period: &ChargingPeriod) -> bool {
    period.dimensions.iter().any(|d| d.dimension == CdrDimensionType::ReservationTime)
}

fn hours_between(start: DateTime<Utc>, end: DateTime<Utc>) -> Decimal {
    Decimal::from((end - start).num_milliseconds()) / Decimal::from(3_600_000)
}

/// An exact amount excluding and including VAT; including is `None` once an amount of unknown VAT
/// has been added.
#[derive(Debug, Clone, PartialEq)]
struct Sum {
    excl: Decimal,
    incl: Option<Decimal>,
}

impl Default for Sum {
    fn default() -> Self {
        Self { excl: Decimal::ZERO, incl: Some(Decimal::ZERO) }
    }
}

impl Sum {
    fn add(&mut self, excl: Decimal, incl: Option<Decimal>) {
        self.excl += excl;
        self.incl = match (self.incl, incl) {
            (Some(sum), Some(incl)) => Some(sum + incl),
            // Nothing charged: its unknown VAT rate does not matter.
            (Some(sum), None) if excl.is_zero() => Some(sum),
            _ => None,
        };
    }

    fn rounded(&self) -> Price {
        Price { excl_vat: amount_out(self.excl), incl_vat: self.incl.map(amount_out) }
    }
}

/// Bounds the total by `min_price` and `max_price`, excluding and including VAT separately, as the
/// specification asks. A limit without `incl_vat` keeps the total's effective VAT rate.
fn apply_limits(total: &Sum, min: Option<&Price>, max: Option<&Price>) -> (Sum, Option<LimitKind>) {
    let mut excl = total.excl;
    let mut incl = total.incl;
    let mut kind = None;
    if let Some(max) = max {
        if excl > max.excl_vat {
            if max.incl_vat.is_none() && excl > Decimal::ZERO {
                incl = incl.map(|i| i * max.excl_vat / excl);
            }
            excl = max.excl_vat;
            kind = Some(LimitKind::MaxPrice);
        }
        if let (Some(i), Some(limit)) = (incl, max.incl_vat)
            && i > limit
        {
            incl = Some(limit);
            kind = Some(LimitKind::MaxPrice);
        }
    }
    if let Some(min) = min {
        if excl < min.excl_vat {
            if min.incl_vat.is_none() {
                incl = if excl > Decimal::ZERO { incl.map(|i| i * min.excl_vat / excl) } else { None };
            }
            excl = min.excl_vat;
            kind = Some(LimitKind::MinPrice);
        }
        if let (Some(i), Some(limit)) = (incl, min.incl_vat)
            && i < limit
        {
            incl = Some(limit);
            kind = Some(LimitKind::MinPrice);
        }
    }
    (Sum { excl, incl }, kind)
}

fn amount_out(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(AMOUNT_DECIMALS, RoundingStrategy::MidpointAwayFromZero).normalize()
}

fn volume_out(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(VOLUME_DECIMALS, RoundingStrategy::MidpointAwayFromZero).normalize()
}

/// Warnings in first-seen order, each once.
#[derive(Default)]
struct Warnings(Vec<String>);

impl Warnings {
    fn push(&mut self, warning: String) {
        if !self.0.contains(&warning) {
            self.0.push(warning);
        }
    }

    fn into_inner(self) -> Vec<String> {
        self.0
    }
}
