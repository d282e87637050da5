//! What resolvers reach: shared services, put into the schema's data once.

use std::sync::Arc;

use emsp_search_index::SearchIndex;
use emsp_store::Store;

/// The services behind the API.
#[derive(Clone)]
pub struct ApiContext {
    pub index: Arc<SearchIndex>,
    pub store: Store,
}
