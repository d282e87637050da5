//! The driver API: an async-graphql schema over the search index (lists, maps, corridors: no SQL
//! on that path), the store (a charger's details and tariffs, through data loaders) and the tariff
//! engine (price estimates).

mod accounts;
mod charger;
mod context;
mod errors;
mod inputs;
mod loaders;
mod mutation;
mod pricing;
mod query;
mod schema;
mod tokens;

pub use context::{ApiContext, TokenIssuer, Viewer};
pub use errors::ApiCode;
pub use schema::{ApiLimits, EmspSchema, build_schema, sdl};
