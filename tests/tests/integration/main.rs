//! The end-to-end suite: one test binary, the real server over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod adhoc;
mod adhoc_property;
mod charging;
mod fleet_cdrs;
mod graphql;
mod health;
mod invoices;
mod ocpi_receivers;
mod ocpi_registration;
mod ocpi_sim;
mod payments;
mod price_search;
mod search_feed;
mod subscriptions;
mod tokens;
