//! Persistence of the EMSP: diesel on SQLite (the embedded default) and PostgreSQL, the embedded
//! migrations of both, the repositories, and the change feed the search index follows.

mod accounts;
mod adhoc;
mod change_feed;
mod charging;
mod crypto;
mod database;
mod documents;
mod error;
mod fleet_cdrs;
mod invoices;
mod locations;
mod partners;
mod payments;
pub mod schema;
mod tariffs;
pub mod testing;
mod tokens;

pub use accounts::{NewSigningKey, NewUser, RefreshRotation, Role, SigningKeyRecord, UserRecord};
pub use adhoc::{AdHocCharge, AdHocState};
pub use change_feed::{Change, ChangeKind};
pub use charging::{
    Applied, CdrRecord, ChargingRecord, ChargingUpdate, CommandRecord, NewCdr, NewCharging, NewCommand, PriceCheck,
    ReportedCharging, SessionRecord, object_key,
};
pub use crypto::{TokenCipher, generate_token, hash_token};
pub use database::{
    Backend, ConnectionManager, DatabaseUrl, DbConnection, PoolConnection, PoolStats, Store, StoreConnection,
    StoreOptions,
};
pub use diesel::result::Error as DieselError;
pub use error::{StoreError, StoreResult};
pub use fleet_cdrs::{FleetCdr, FleetCdrFilter};
pub use invoices::{FleetMember, FleetRecord, FleetRole, InvoiceRecord, RunMode, format_number};
pub use locations::{EvseStatusUpdate, StatusBatch, WriteOutcome};
pub use partners::{Endpoint, NewPartner, Partner, PartnerParty, PartnerStatus, Registration};
pub use payments::{NewWebhookEvent, PaymentAction, PaymentChange, PaymentLookup, PaymentRecord, WebhookApplied};
pub use tokens::{
    AuditFilter, AuthorizationRecord, NewAuthorization, TokenAuditEntry, TokenChange, TokenFilter, TokenPushState,
    TokenRecord, contract_key, new_contract_id, token_key,
};
