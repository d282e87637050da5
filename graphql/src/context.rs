//! What resolvers reach: shared services, put into the schema's data once.

use std::sync::Arc;

use emsp_accounts::{Accounts, Claims};
use emsp_events::EventBus;
use emsp_search_index::SearchIndex;
use emsp_store::Store;

use crate::tariff_book::TariffBook;

/// The services behind the API.
#[derive(Clone)]
pub struct ApiContext {
    pub index: Arc<SearchIndex>,
    pub store: Store,
    pub accounts: Accounts,
    /// Every tariff in memory, for PRICE sorting and `maxPrice`.
    pub tariffs: Arc<TariffBook>,
    /// Live updates for subscriptions.
    pub events: EventBus,
    /// Whether searching chargers needs a signed-in user.
    pub anonymous_search: bool,
    /// Charging from the app (commands to CPOs, live session updates); `None` turns it off.
    pub charging: Option<crate::charging::ChargingApi>,
    /// Card payments (ad-hoc charging, receipts, refunds); `None`: off (`PAYMENTS_DISABLED`).
    pub payments: Option<crate::payments::CardPaymentsApi>,
    /// ISO 4217 code searches price in when they name no currency.
    pub default_currency: String,
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
