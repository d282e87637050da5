//! The schema, its protections, and its checked-in SDL.

use std::sync::Arc;

use async_graphql::Schema;
use async_graphql::dataloader::DataLoader;

use crate::context::ApiContext;
use crate::loaders::{LocationLoader, TariffLoader};
use crate::mutation::MutationRoot;
use crate::query::QueryRoot;
use crate::subscription::SubscriptionRoot;

pub type EmspSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

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
    let mut builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(DataLoader::new(LocationLoader(context.store.clone()), tokio::spawn))
        .data(DataLoader::new(TariffLoader(context.store.clone()), tokio::spawn))
        .data(Arc::clone(&context.index))
        .data(context)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The SDL of the schema, as checked in at `graphql/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot).finish().sdl()
}
