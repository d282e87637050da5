//! The schema, its protections, and its checked-in SDL.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, MergedSubscription, Schema};

use crate::charging::{ChargingMutation, ChargingQuery, ChargingSubscription};
use crate::context::ApiContext;
use crate::loaders::{LocationLoader, TariffLoader};
use crate::mutation::MutationRoot;
use crate::payments::{PaymentsMutation, PaymentsQuery};
use crate::query::QueryRoot;
use crate::reservations::ReservationQuery;
use crate::subscription::SubscriptionRoot;

/// Every query: the root and each area's own.
#[derive(MergedObject)]
pub struct Query(QueryRoot, ChargingQuery, ReservationQuery, PaymentsQuery);

/// Every mutation.
#[derive(MergedObject)]
pub struct Mutation(MutationRoot, ChargingMutation, PaymentsMutation);

/// Every subscription.
#[derive(MergedSubscription)]
pub struct Subscription(SubscriptionRoot, ChargingSubscription);

pub type EmspSchema = Schema<Query, Mutation, Subscription>;

/// Limits against expensive or hostile queries.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub introspection: bool,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self { max_depth: 12, max_complexity: 2_000, introspection: false }
    }
}

pub fn build_schema(context: ApiContext, limits: &ApiLimits) -> EmspSchema {
    let mut builder = Schema::build(
        Query(QueryRoot, ChargingQuery, ReservationQuery, PaymentsQuery),
        Mutation(MutationRoot, ChargingMutation, PaymentsMutation),
        Subscription(SubscriptionRoot, ChargingSubscription),
    )
    .data(DataLoader::new(LocationLoader(context.store.clone()), tokio::spawn))
    .data(DataLoader::new(TariffLoader(context.store.clone()), tokio::spawn))
    .data(Arc::clone(&context.index));
    if let Some(charging) = context.charging.clone() {
        builder = builder.data(charging);
    }
    if let Some(payments) = context.payments.clone() {
        builder = builder.data(payments);
    }
    builder = builder.data(context).limit_depth(limits.max_depth).limit_complexity(limits.max_complexity);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The SDL of the schema, as checked in at `graphql/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        Query(QueryRoot, ChargingQuery, ReservationQuery, PaymentsQuery),
        Mutation(MutationRoot, ChargingMutation, PaymentsMutation),
        Subscription(SubscriptionRoot, ChargingSubscription),
    )
    .finish()
    .sdl()
}
