//! The canonical model of the EMSP: every protocol (OCPI 2.1.1 / 2.2.1 / 2.3.0, OICP, ...) maps onto
//! these types at its edge, so search, billing and the API never see a protocol version.
//!
//! Pure data and pure logic; this crate does no I/O.

pub mod cdr;
pub mod charging;
pub mod emaid;
mod enums;
pub mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod geo;
pub mod ids;
pub mod location;
pub mod money;
pub mod opening_hours;
pub mod party;
pub mod pricing;
pub mod reservation;
pub mod session;
pub mod tariff;
pub mod token;

pub use cdr::{Cdr, CdrDimension, CdrDimensionType, ChargingPeriod, SignedData, SignedValue};
pub use charging::{
    CdrReport, ChargingEvent, ChargingPhase, ChargingState, CommandResponseType, CommandResultType, FailureReason,
    SessionReport, TransitionError,
};
pub use emaid::Emaid;
pub use error::ValidationError;
pub use geo::GeoPoint;
pub use ids::{CdrId, ConnectorId, CountryCode, EvseUid, LocationId, PartyCode, SessionId, TariffId, TokenUid};
pub use location::{
    BusinessDetails, Capability, Connector, ConnectorFormat, ConnectorStandard, DisplayText, Evse, EvseStatus,
    ExceptionalPeriod, Facility, Hours, Image, Location, ParkingRestriction, ParkingType, PowerType, PublishToken,
    RegularHours, RelatedLocation, StatusSchedule, location_key,
};
pub use money::{Currency, Money, Price};
pub use party::{Party, PartyId, Role};
pub use pricing::{
    CdrCheck, PlannedPeriods, PlannedSession, PriceBreakdown, PricingError, check_cdr, estimate, plan_periods,
    price_cdr, price_periods, price_session,
};
pub use reservation::{CommandFacts, ReservationStatus, reservation_failure_message, reservation_status};
pub use session::{AuthMethod, CdrToken, Session, SessionStatus};
pub use tariff::{
    DayOfWeek, PriceComponent, ReservationRestriction, Tariff, TariffDimension, TariffElement, TariffRestrictions,
    TariffType,
};
pub use token::{AllowedType, Token, TokenType, WhitelistType};
