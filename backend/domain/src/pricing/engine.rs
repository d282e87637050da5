//! The engine: charging periods and a tariff in, a priced breakdown out (rules in the module doc).

use chrono::{DateTime, NaiveTime, Utc};
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

    let mut so_far = Volumes::default();
    let mut flat_charged = false;
    let mut reservation_flat_charged = false;
    let mut lines: Vec<Line> = Vec::new();
    let mut priced_periods: Vec<PeriodPrice> = Vec::with_capacity(periods.len());

    for (index, period) in periods.iter().enumerate() {
        let start = period.start_date_time;
        let end = periods.get(index + 1).map_or(session_end, |next| next.start_date_time);
        let kind = if is_reservation(period) { PeriodKind::Reservation } else { PeriodKind::Charging };
        if let Some(id) = &period.tariff_id
            && !id.eq_ignore_ascii_case(tariff.id.as_str())
        {
            warnings.push(format!(
                "period {index} names tariff {id:?}, priced with tariff {:?} anyway",
                tariff.id.as_str()
            ));
        }
        let measured = Measured::read(index, period)?;
        let volumes = Volumes::of(index, kind, &measured, hours_between(start, end), &mut warnings);
        let since = match kind {
            PeriodKind::Charging => charging_start.unwrap_or(session_start),
            PeriodKind::Reservation => session_start,
        };
        let local = start.with_timezone(&time_zone);
        let extremes = measured.extremes(&volumes);
        let ctx = PeriodContext {
            local_start: local.naive_local(),
            energy_so_far: so_far.energy,
            duration_so_far: Decimal::from((start - since).num_milliseconds()) / Decimal::ONE_THOUSAND,
            max_power: extremes.max_power,
            min_power: extremes.min_power,
            max_current: extremes.max_current,
            min_current: extremes.min_current,
        };

        let active = active_elements(tariff, kind, reservation_expired, &ctx, index, &mut warnings);
        let once = |charged: bool| if charged { Decimal::ZERO } else { Decimal::ONE };
        let wanted = match kind {
            PeriodKind::Charging => vec![
                (BilledDimension::Flat, TariffDimension::Flat, once(flat_charged)),
                (BilledDimension::Energy, TariffDimension::Energy, volumes.energy),
                (BilledDimension::Time, TariffDimension::Time, volumes.charging_time),
                (BilledDimension::ParkingTime, TariffDimension::ParkingTime, volumes.parking_time),
            ],
            PeriodKind::Reservation => vec![
                (BilledDimension::ReservationFlat, TariffDimension::Flat, once(reservation_flat_charged)),
                (BilledDimension::ReservationTime, TariffDimension::Time, volumes.reservation_time),
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
        so_far.add(&volumes);

        priced_periods.push(PeriodPrice {
            index,
            kind,
            start_date_time: start,
            end_date_time: end,
            local_start: local.to_rfc3339(),
            energy: volume_out(volumes.energy),
            charging_time: volume_out(volumes.charging_time),
            parking_time: volume_out(volumes.parking_time),
            reservation_time: volume_out(volumes.reservation_time),
            components: Vec::new(),
        });
    }

    apply_step_sizes(&mut lines);

    let mut costs = Costs::default();
    let mut billed = Volumes::default();
    for line in &lines {
        let excl = line.billed_volume * line.component.price;
        let incl = line.component.vat.map(|vat| excl * (Decimal::ONE + vat / Decimal::ONE_HUNDRED));
        costs.add(line.dimension, excl, incl);
        billed.add_billed(line.dimension, line.billed_volume);
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

    let total = costs.total();
    let (limited, limit_kind) = apply_limits(&total, tariff.min_price.as_ref(), tariff.max_price.as_ref());
    let price_limit = limit_kind.map(|kind| PriceLimit { kind, total_before_limit: total.rounded() });

    Ok(PriceBreakdown {
        tariff: tariff.key(),
        currency: tariff.currency.clone(),
        time_zone: time_zone.name().to_owned(),
        start_date_time: session_start,
        end_date_time: session_end,
        total_cost: limited.rounded(),
        total_fixed_cost: costs.fixed.rounded(),
        total_energy_cost: costs.energy.rounded(),
        total_time_cost: costs.time.rounded(),
        total_parking_cost: costs.parking.rounded(),
        total_reservation_cost: costs.reservation.rounded(),
        price_limit,
        total_energy: volume_out(so_far.energy),
        total_time: volume_out(so_far.charging_time + so_far.parking_time),
        total_charging_time: volume_out(so_far.charging_time),
        total_parking_time: volume_out(so_far.parking_time),
        total_reservation_time: volume_out(so_far.reservation_time),
        billed_energy: volume_out(billed.energy),
        billed_charging_time: volume_out(billed.charging_time),
        billed_parking_time: volume_out(billed.parking_time),
        billed_reservation_time: volume_out(billed.reservation_time),
        periods: priced_periods,
        warnings: warnings.into_inner(),
    })
}

/// The volumes of a period (or a sum of periods) in the tariff's units: kWh and hours.
#[derive(Debug, Clone, Default)]
struct Volumes {
    energy: Decimal,
    charging_time: Decimal,
    parking_time: Decimal,
    reservation_time: Decimal,
}

/// TIME + PARKING_TIME may exceed a period's wall-clock length by this much (36 s, in hours) before
/// we warn: CDRs round their hours.
const DURATION_SLACK_HOURS: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

impl Volumes {
    fn of(index: usize, kind: PeriodKind, measured: &Measured, wall_hours: Decimal, warnings: &mut Warnings) -> Self {
        if kind == PeriodKind::Reservation {
            let reservation_time = measured.reservation.unwrap_or(wall_hours);
            return Self { reservation_time, ..Self::default() };
        }
        let (charging_time, parking_time) = match (measured.time, measured.parking) {
            (None, None) if measured.energy_stated && measured.energy.is_zero() => {
                warnings.push(format!("period {index} has no TIME or PARKING_TIME: its duration counts as parking"));
                (Decimal::ZERO, wall_hours)
            }
            (None, None) => {
                warnings.push(format!("period {index} has no TIME or PARKING_TIME: its duration counts as charging"));
                (wall_hours, Decimal::ZERO)
            }
            (time, parking) => (time.unwrap_or_default(), parking.unwrap_or_default()),
        };
        if charging_time + parking_time > wall_hours + DURATION_SLACK_HOURS {
            warnings.push(format!(
                "period {index}: TIME + PARKING_TIME ({} h) is longer than the period ({} h)",
                volume_out(charging_time + parking_time),
                volume_out(wall_hours)
            ));
        }
        Self { energy: measured.energy, charging_time, parking_time, reservation_time: Decimal::ZERO }
    }

    fn add(&mut self, other: &Volumes) {
        self.energy += other.energy;
        self.charging_time += other.charging_time;
        self.parking_time += other.parking_time;
        self.reservation_time += other.reservation_time;
    }

    fn add_billed(&mut self, dimension: BilledDimension, volume: Decimal) {
        match dimension {
            BilledDimension::Energy => self.energy += volume,
            BilledDimension::Time => self.charging_time += volume,
            BilledDimension::ParkingTime => self.parking_time += volume,
            BilledDimension::ReservationTime => self.reservation_time += volume,
            BilledDimension::Flat | BilledDimension::ReservationFlat => {}
        }
    }
}

/// Exact costs per OCPI total.
#[derive(Default)]
struct Costs {
    fixed: Sum,
    energy: Sum,
    time: Sum,
    parking: Sum,
    reservation: Sum,
}

impl Costs {
    fn add(&mut self, dimension: BilledDimension, excl: Decimal, incl: Option<Decimal>) {
        let sum = match dimension {
            BilledDimension::Flat => &mut self.fixed,
            BilledDimension::Energy => &mut self.energy,
            BilledDimension::Time => &mut self.time,
            BilledDimension::ParkingTime => &mut self.parking,
            BilledDimension::ReservationFlat | BilledDimension::ReservationTime => &mut self.reservation,
        };
        sum.add(excl, incl);
    }

    fn total(&self) -> Sum {
        let mut total = Sum::default();
        for part in [&self.fixed, &self.energy, &self.time, &self.parking, &self.reservation] {
            total.add(part.excl, part.incl);
        }
        total
    }
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
        // Real feeds write 23:59 for "end of day"; OCPI's end_time is exclusive and says 00:00.
        if tariff_element.restrictions.as_ref().and_then(|r| r.end_time) == NaiveTime::from_hms_opt(23, 59, 0) {
            warnings
                .push(format!("element {element}: end_time 23:59 leaves 23:59-00:00 out (OCPI ends a day with 00:00)"));
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

    /// Power and current as the restrictions read them: the period's highest value for a `max_*`,
    /// its lowest for a `min_*`, falling back to the average; a period without charging is at 0.
    fn extremes(&self, volumes: &Volumes) -> Extremes {
        let idle = volumes.energy.is_zero() && volumes.charging_time.is_zero();
        let average_power = if volumes.charging_time > Decimal::ZERO {
            Some(volumes.energy / volumes.charging_time)
        } else {
            idle.then_some(Decimal::ZERO)
        };
        let idle_current = idle.then_some(Decimal::ZERO);
        Extremes {
            max_power: self.max_power.or(self.power).or(average_power),
            min_power: self.min_power.or(self.power).or(average_power),
            max_current: self.max_current.or(self.current).or(idle_current),
            min_current: self.min_current.or(self.current).or(idle_current),
        }
    }
}

struct Extremes {
    max_power: Option<Decimal>,
    min_power: Option<Decimal>,
    max_current: Option<Decimal>,
    min_current: Option<Decimal>,
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

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use rust_decimal_macros::dec;
    use serde_json::{Value, json};

    use super::*;
    use crate::cdr::CdrDimension;

    const TZ: Tz = chrono_tz::Europe::Amsterdam;

    fn tariff(elements: Value) -> Tariff {
        tariff_with(elements, json!({}))
    }

    fn tariff_with(elements: Value, extra: Value) -> Tariff {
        let mut value = json!({
            "party": { "country_code": "NL", "party_id": "TST" },
            "id": "T1",
            "currency": "EUR",
            "elements": elements,
            "last_updated": "2025-01-01T00:00:00Z",
        });
        if let (Some(object), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            object.extend(extra.clone());
        }
        serde_json::from_value(value).unwrap()
    }

    /// 2025-11-24 (a Monday) at `hh:mm` in Amsterdam.
    fn at(time: &str) -> DateTime<Utc> {
        let local = format!("2025-11-24T{time}:00+01:00");
        DateTime::parse_from_rfc3339(&local).unwrap().with_timezone(&Utc)
    }

    fn period(start: DateTime<Utc>, dimensions: &[(CdrDimensionType, Decimal)]) -> ChargingPeriod {
        ChargingPeriod {
            start_date_time: start,
            dimensions: dimensions.iter().map(|(d, v)| CdrDimension { dimension: d.clone(), volume: *v }).collect(),
            tariff_id: None,
        }
    }

    fn charging(start: DateTime<Utc>, minutes: i64, kwh: Decimal) -> ChargingPeriod {
        period(start, &[(CdrDimensionType::Energy, kwh), (CdrDimensionType::Time, Decimal::from(minutes) / dec!(60))])
    }

    fn parking(start: DateTime<Utc>, minutes: i64) -> ChargingPeriod {
        period(start, &[(CdrDimensionType::ParkingTime, Decimal::from(minutes) / dec!(60))])
    }

    fn minutes(start: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        start + TimeDelta::minutes(minutes)
    }

    fn price(excl: Decimal, incl: Option<Decimal>) -> Price {
        Price::new(excl, incl)
    }

    #[test]
    fn charging_time_followed_by_parking_is_not_rounded() {
        // mod_cdrs: both steps 5 min; 21 min charging then 7 min parking bill 21 and 10 minutes.
        // 21/60 × 1.00 = 0.35; 10/60 × 2.00 = 0.3333…
        let t = tariff(json!([{ "price_components": [
            { "type": "TIME", "price": 1, "step_size": 300 },
            { "type": "PARKING_TIME", "price": 2, "step_size": 300 } ] }]));
        let start = at("10:00");
        let periods = [charging(start, 21, dec!(5)), parking(minutes(start, 21), 7)];
        let b = price_periods(&t, &periods, minutes(start, 28), TZ).unwrap();
        assert_eq!(b.total_time_cost, price(dec!(0.35), None));
        assert_eq!(b.total_parking_cost, price(dec!(0.3333), None));
        assert_eq!(b.billed_charging_time, dec!(0.35));
        assert_eq!(b.billed_parking_time, dec!(0.166667));

        // mod_cdrs: both steps 10 min; 21 min charging, 16 min parking → parking 20 min.
        let t = tariff(json!([{ "price_components": [
            { "type": "TIME", "price": 1, "step_size": 600 },
            { "type": "PARKING_TIME", "price": 2, "step_size": 600 } ] }]));
        let periods = [charging(start, 21, dec!(5)), parking(minutes(start, 21), 16)];
        let b = price_periods(&t, &periods, minutes(start, 37), TZ).unwrap();
        assert_eq!(b.billed_charging_time, dec!(0.35));
        assert_eq!(b.billed_parking_time, dec!(0.333333), "20 min, shown to the µh");
    }

    #[test]
    fn energy_step_rounds_the_session_total_in_the_last_element() {
        // mod_cdrs: 0.20/kWh before 17:00, 0.27 after, both per 500 Wh. 4.3 + 1.1 = 5.4 → 5.5 kWh:
        // 4.3 × 0.20 = 0.86 + 1.2 × 0.27 = 0.324 → 1.184. Not 1.5 kWh after 17:00.
        let t = tariff(json!([
            { "price_components": [{ "type": "ENERGY", "price": 0.20, "step_size": 500 }],
              "restrictions": { "end_time": "17:00" } },
            { "price_components": [{ "type": "ENERGY", "price": 0.27, "step_size": 500 }] } ]));
        let periods = [charging(at("16:00"), 60, dec!(4.3)), charging(at("17:00"), 20, dec!(1.1))];
        let b = price_periods(&t, &periods, at("17:20"), TZ).unwrap();
        assert_eq!(b.total_energy_cost, price(dec!(1.184), None));
        assert_eq!(b.billed_energy, dec!(5.5));
        assert_eq!(b.periods[1].components[0].billed_volume, dec!(1.2));
    }

    #[test]
    fn time_step_rounds_the_session_total_in_the_last_element() {
        // mod_cdrs: 5.00/h before 17:00, 7.00/h after, both per 10 min. 6 + 22 = 28 → 30 min, so 24
        // after 17:00: 6/60 × 5 = 0.50 + 24/60 × 7 = 2.80 → 3.30.
        let t = tariff(json!([
            { "price_components": [{ "type": "TIME", "price": 5, "step_size": 600 }],
              "restrictions": { "end_time": "17:00" } },
            { "price_components": [{ "type": "TIME", "price": 7, "step_size": 600 }] } ]));
        let periods = [charging(at("16:54"), 6, dec!(1)), charging(at("17:00"), 22, dec!(4))];
        let b = price_periods(&t, &periods, at("17:22"), TZ).unwrap();
        assert_eq!(b.total_time_cost, price(dec!(3.30), None));
    }

    #[test]
    fn time_volumes_lose_their_representation_noise_before_rounding() {
        // 2 minutes as 1/30 h (0.0333…) bill 120 s per second, not 121; a CDR's 0.0333 h (119.88 s)
        // bills 120 s per minute. 120 s × 3.60/h = 0.12.
        let t = tariff(json!([{ "price_components": [{ "type": "TIME", "price": 3.6, "step_size": 1 }] }]));
        let start = at("10:00");
        let b = price_periods(&t, &[charging(start, 2, dec!(1))], minutes(start, 2), TZ).unwrap();
        assert_eq!(b.total_cost, price(dec!(0.12), None));
        let t = tariff(json!([{ "price_components": [{ "type": "TIME", "price": 3.6, "step_size": 60 }] }]));
        let cdr_like = period(start, &[(CdrDimensionType::Time, dec!(0.0333))]);
        let b = price_periods(&t, &[cdr_like], minutes(start, 2), TZ).unwrap();
        assert_eq!(b.total_cost, price(dec!(0.12), None));
    }

    #[test]
    fn flat_is_charged_once_in_the_first_period_it_applies() {
        let t = tariff(json!([{ "price_components": [
            { "type": "FLAT", "price": 1, "vat": 21, "step_size": 1 },
            { "type": "ENERGY", "price": 0.3, "vat": 21, "step_size": 1 } ] }]));
        let periods =
            [charging(at("10:00"), 10, dec!(1)), charging(at("10:10"), 10, dec!(1)), parking(at("10:20"), 10)];
        let b = price_periods(&t, &periods, at("10:30"), TZ).unwrap();
        assert_eq!(b.total_fixed_cost, price(dec!(1), Some(dec!(1.21))));
        // 1.00 + 2 × 0.30 = 1.60; incl. × 1.21 = 1.936.
        assert_eq!(b.total_cost, price(dec!(1.60), Some(dec!(1.936))));
        assert_eq!(b.periods[0].components[0].dimension, BilledDimension::Flat);
        assert!(b.periods[1].components.iter().all(|c| c.dimension != BilledDimension::Flat));

        // An evening-only start fee is charged in the first period that starts in the evening.
        let t = tariff(json!([
            { "price_components": [{ "type": "FLAT", "price": 2, "step_size": 1 }],
              "restrictions": { "start_time": "20:00", "end_time": "06:00" } },
            { "price_components": [{ "type": "ENERGY", "price": 0.3, "step_size": 1 }] } ]));
        let periods = [
            charging(at("19:30"), 30, dec!(5)),
            charging(at("20:00"), 30, dec!(5)),
            charging(at("20:30"), 30, dec!(5)),
        ];
        let b = price_periods(&t, &periods, at("21:00"), TZ).unwrap();
        assert_eq!(b.total_fixed_cost.excl_vat, dec!(2));
        assert_eq!(b.periods[1].components[0].dimension, BilledDimension::Flat);
    }

    #[test]
    fn first_matching_element_per_dimension_wins() {
        // The 0.50 element applies to ENERGY; TIME falls through to the second element.
        let t = tariff(json!([
            { "price_components": [{ "type": "ENERGY", "price": 0.5, "step_size": 1 }] },
            { "price_components": [
                { "type": "ENERGY", "price": 0.1, "step_size": 1 },
                { "type": "TIME", "price": 1, "step_size": 1 } ] } ]));
        let b = price_periods(&t, &[charging(at("10:00"), 60, dec!(10))], at("11:00"), TZ).unwrap();
        assert_eq!(b.total_energy_cost.excl_vat, dec!(5));
        assert_eq!(b.total_time_cost.excl_vat, dec!(1));
        let elements: Vec<(BilledDimension, usize)> =
            b.periods[0].components.iter().map(|c| (c.dimension, c.element_index)).collect();
        assert_eq!(elements, [(BilledDimension::Energy, 0), (BilledDimension::Time, 1)]);
    }

    #[test]
    fn unknown_vat_makes_the_inclusive_total_unknown() {
        let t = tariff(json!([{ "price_components": [
            { "type": "FLAT", "price": 1, "vat": 20, "step_size": 1 },
            { "type": "ENERGY", "price": 0.3, "step_size": 1 } ] }]));
        let b = price_periods(&t, &[charging(at("10:00"), 60, dec!(10))], at("11:00"), TZ).unwrap();
        assert_eq!(b.total_fixed_cost, price(dec!(1), Some(dec!(1.2))));
        assert_eq!(b.total_energy_cost, price(dec!(3), None));
        assert_eq!(b.total_cost, price(dec!(4), None));
    }

    #[test]
    fn max_price_without_vat_keeps_the_effective_vat_rate() {
        // 20 kWh × 0.50 = 10.00, incl. 12.00; max 8.00 excl. only: 8.00 and 12.00 × 0.8 = 9.60.
        let t = tariff_with(
            json!([{ "price_components": [{ "type": "ENERGY", "price": 0.5, "vat": 20, "step_size": 1 }] }]),
            json!({ "max_price": { "excl_vat": 8 } }),
        );
        let b = price_periods(&t, &[charging(at("10:00"), 60, dec!(20))], at("11:00"), TZ).unwrap();
        assert_eq!(b.total_cost, price(dec!(8), Some(dec!(9.6))));
        assert_eq!(b.price_limit.unwrap().total_before_limit, price(dec!(10), Some(dec!(12))));
    }

    #[test]
    fn limits_apply_to_the_inclusive_total_on_their_own() {
        // 10 kWh × 0.50 = 5.00, incl. 6.00. max 6.00 / 5.90: only the inclusive total is capped.
        let t = tariff_with(
            json!([{ "price_components": [{ "type": "ENERGY", "price": 0.5, "vat": 20, "step_size": 1 }] }]),
            json!({ "max_price": { "excl_vat": 6, "incl_vat": 5.9 } }),
        );
        let b = price_periods(&t, &[charging(at("10:00"), 60, dec!(10))], at("11:00"), TZ).unwrap();
        assert_eq!(b.total_cost, price(dec!(5), Some(dec!(5.9))));
        // A minimum without incl_vat over a zero total cannot know the inclusive amount.
        let t = tariff_with(
            json!([{ "price_components": [{ "type": "ENERGY", "price": 0.5, "vat": 20, "step_size": 1 }] }]),
            json!({ "min_price": { "excl_vat": 1 } }),
        );
        let b = price_periods(&t, &[parking(at("10:00"), 5)], at("10:05"), TZ).unwrap();
        assert_eq!(b.total_cost, price(dec!(1), None));
    }

    #[test]
    fn amounts_round_to_four_decimals_half_away_from_zero_each_from_its_exact_value() {
        // 1 kWh × 0.12345 = 0.12345 → 0.1235 (banker's rounding would give 0.1234).
        let t = tariff(json!([{ "price_components": [{ "type": "ENERGY", "price": 0.12345, "step_size": 1 }] }]));
        let b = price_periods(&t, &[charging(at("10:00"), 60, dec!(1))], at("11:00"), TZ).unwrap();
        assert_eq!(b.total_cost.excl_vat, dec!(0.1235));
        // Parts 0.10004 and 0.10004 show as 0.1000 each; the total 0.20008 shows as 0.2001.
        let t = tariff(json!([{ "price_components": [
            { "type": "FLAT", "price": 0.10004, "step_size": 1 },
            { "type": "ENERGY", "price": 0.10004, "step_size": 1 } ] }]));
        let b = price_periods(&t, &[charging(at("10:00"), 60, dec!(1))], at("11:00"), TZ).unwrap();
        assert_eq!(b.total_fixed_cost.excl_vat, dec!(0.1000));
        assert_eq!(b.total_energy_cost.excl_vat, dec!(0.1000));
        assert_eq!(b.total_cost.excl_vat, dec!(0.2001));
    }

    #[test]
    fn periods_without_time_dimensions_count_their_duration() {
        let t = tariff(json!([{ "price_components": [
            { "type": "TIME", "price": 1, "step_size": 1 },
            { "type": "PARKING_TIME", "price": 2, "step_size": 1 } ] }]));
        let periods = [
            period(at("10:00"), &[(CdrDimensionType::Energy, dec!(5))]),
            period(at("10:30"), &[(CdrDimensionType::Energy, dec!(0))]),
        ];
        let b = price_periods(&t, &periods, at("11:00"), TZ).unwrap();
        assert_eq!(b.total_time_cost.excl_vat, dec!(0.5));
        assert_eq!(b.total_parking_cost.excl_vat, dec!(1));
        assert_eq!(b.warnings.len(), 2, "{:?}", b.warnings);
    }

    #[test]
    fn unknown_parts_of_a_tariff_are_ignored_with_a_warning() {
        let t = tariff(json!([
            { "price_components": [{ "type": "CONGESTION_TIME", "price": 30, "step_size": 60 }] },
            { "price_components": [{ "type": "ENERGY", "price": 0.3, "step_size": 1 }],
              "restrictions": { "reservation": "RESERVATION_LATER" } },
            { "price_components": [{ "type": "ENERGY", "price": 0.29, "step_size": 1 }] } ]));
        let mut first = charging(at("10:00"), 60, dec!(10));
        first.tariff_id = Some("OTHER".into());
        let b = price_periods(&t, &[first], at("11:00"), TZ).unwrap();
        assert_eq!(b.total_cost.excl_vat, dec!(2.9));
        assert_eq!(b.warnings.len(), 3, "{:?}", b.warnings);
    }

    #[test]
    fn rejects_what_cannot_be_priced() {
        let t = tariff(json!([{ "price_components": [{ "type": "ENERGY", "price": 0.3, "step_size": 1 }] }]));
        assert_eq!(price_periods(&t, &[], at("11:00"), TZ), Err(PricingError::NoPeriods));
        let out_of_order = [charging(at("10:30"), 30, dec!(1)), charging(at("10:00"), 30, dec!(1))];
        assert_eq!(
            price_periods(&t, &out_of_order, at("11:00"), TZ),
            Err(PricingError::PeriodsOutOfOrder { index: 1 })
        );
        assert_eq!(
            price_periods(&t, &[charging(at("10:30"), 30, dec!(1))], at("10:00"), TZ),
            Err(PricingError::EndBeforeLastPeriod)
        );
        let negative = [charging(at("10:00"), 30, dec!(-1))];
        assert!(matches!(price_periods(&t, &negative, at("11:00"), TZ), Err(PricingError::NegativeVolume { .. })));
        let huge = [charging(at("10:00"), 30, dec!(100000000))];
        assert!(matches!(price_periods(&t, &huge, at("11:00"), TZ), Err(PricingError::ImplausibleVolume { .. })));
    }

    #[test]
    fn breakdown_serialises_for_the_cli() {
        let t =
            tariff(json!([{ "price_components": [{ "type": "ENERGY", "price": 0.25, "vat": 10, "step_size": 1 }] }]));
        let b = price_periods(&t, &[charging(at("10:00"), 60, dec!(20))], at("11:00"), TZ).unwrap();
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(json["total_cost"], json!({ "excl_vat": "5", "incl_vat": "5.5" }));
        assert_eq!(json["tariff"], json!("NL*TST*T1"));
        assert_eq!(json["periods"][0]["components"][0]["dimension"], json!("ENERGY"));
        assert_eq!(json["periods"][0]["local_start"], json!("2025-11-24T10:00:00+01:00"));
    }
}
