//! What resolvers reach: shared services, put into the schema's data once.

use std::sync::Arc;

use emsp_accounts::{Accounts, Claims};
use emsp_search_index::SearchIndex;
use emsp_store::Store;

/// The services behind the API.
#[derive(Clone)]
pub struct ApiContext {
    pub index: Arc<SearchIndex>,
    pub store: Store,
    pub accounts: Accounts,
    /// Whether searching chargers needs a signed-in user.
    pub anonymous_search: bool,
    /// Who issues our tokens: our party (`EMSP_PARTY`) and company name (`EMSP_BUSINESS_NAME`).
    pub issuer: TokenIssuer,
}

/// The issuer of the tokens we create (the party of their eMAIDs, the name printed on cards).
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    pub party: emsp_domain::PartyId,
    pub name: String,
}

/// Who sent a request: the claims of a verified access token, added to the request's data by the
/// HTTP layer. Absent for anonymous requests.
#[derive(Debug, Clone)]
pub struct Viewer(pub Claims);
