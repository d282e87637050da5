//! The driver API: an async-graphql schema over the search index (lists, maps, corridors: no SQL
//! on that path), the store (a charger's details and tariffs, through data loaders) and the tariff
//! engine (price estimates, PRICE sorting through the in-memory tariff book); subscriptions over
//! the event bus.

mod accounts;
mod charger;
mod charging;
mod context;
mod errors;
mod fleets;
mod inputs;
mod loaders;
mod mutation;
mod payments;
mod pricing;
mod query;
mod reservations;
mod schema;
mod subscription;
mod tariff_book;
mod tokens;

pub use charging::{BusUpdates, ChargingApi, SessionUpdates, StoreUpdates};
pub use context::{ApiContext, TokenIssuer, Viewer};
pub use errors::ApiCode;
pub use payments::{
    AdHocOutcome, AdHocRequest, AdHocStatus, CardPaymentError, CardPayments, CardPaymentsApi, CardSetup, PaymentInfo,
    PaymentStatus,
};
pub use schema::{ApiLimits, EmspSchema, build_schema, sdl};
pub use subscription::publish_charger_status;
pub use tariff_book::{ConnectorFilter, PriceBasis, Pricer, TariffBook, choose_tariff};
