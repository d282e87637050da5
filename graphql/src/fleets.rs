//! Fleets for their managers (and operations staff): the fleet, its drivers, its invoices and
//! credit notes with download links. Who may see what is decided by the store
//! (`may_see_fleet`, `invoice_for_viewer`); a fleet that is not the viewer's is "not found", so ids
//! cannot be probed.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::NaiveDate;
use emsp_accounts::Role;
use emsp_store::{FleetRecord, FleetRole, InvoiceRecord, Store, StoreError};
use rust_decimal::Decimal;

use crate::accounts::viewer;
use crate::context::ApiContext;
use crate::errors::{ApiCode, internal, store_error};

/// Runs blocking store work off the async threads.
async fn store_blocking<T: Send + 'static>(
    store: &Store,
    work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> async_graphql::Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || work(&store)).await.map_err(|e| internal(&e))?.map_err(store_error)
}

/// The fleet `id`, or the viewer's own fleet when absent.
pub async fn fleet(ctx: &Context<'_>, id: Option<ID>) -> async_graphql::Result<Fleet> {
    let claims = viewer(ctx)?.0.clone();
    let store = ctx.data::<ApiContext>()?.store.clone();
    let not_found = || ApiCode::NotFound.error("no such fleet");
    let fleet_id = match id {
        Some(id) => id.to_string(),
        None => {
            let user = claims.sub.clone();
            let managed = store_blocking(&store, move |s| s.managed_fleets(&user)).await?;
            managed.into_iter().next().ok_or_else(|| ApiCode::NotFound.error("you manage no fleet"))?
        }
    };
    let (user, role, wanted) = (claims.sub.clone(), claims.role, fleet_id.clone());
    let record = store_blocking(&store, move |s| {
        if !s.may_see_fleet(&user, role, &wanted)? {
            return Ok(None);
        }
        s.get_fleet(&wanted)
    })
    .await?
    .ok_or_else(not_found)?;
    Ok(Fleet { record, include_drafts: claims.role == Role::Ops })
}

/// A company whose drivers charge on our contract.
pub struct Fleet {
    record: FleetRecord,
    include_drafts: bool,
}

#[Object]
impl Fleet {
    async fn id(&self) -> ID {
        ID(self.record.customer.id.clone())
    }

    async fn name(&self) -> &str {
        &self.record.customer.name
    }

    /// IANA time zone: the calendar of the fleet's billing months.
    async fn time_zone(&self) -> &str {
        &self.record.customer.time_zone
    }

    async fn currency(&self) -> &str {
        self.record.customer.currency.as_str()
    }

    async fn billing_email(&self) -> &str {
        &self.record.customer.billing_email
    }

    /// The fleet's drivers.
    async fn drivers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FleetDriver>> {
        let store = ctx.data::<ApiContext>()?.store.clone();
        let fleet_id = self.record.customer.id.clone();
        store_blocking(&store, move |s| {
            let mut drivers = Vec::new();
            for member in s.fleet_members(&fleet_id)? {
                if member.role != FleetRole::Driver {
                    continue;
                }
                if let Some(user) = s.get_user(&member.user_id)? {
                    drivers.push(FleetDriver { id: ID(user.id), email: user.email, name: user.name });
                }
            }
            Ok(drivers)
        })
        .await
    }

    /// Invoices and credit notes, newest first; `after` is the id of the last one of the previous page.
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, validator(minimum = 1, maximum = 100))] first: i32,
        after: Option<ID>,
    ) -> async_graphql::Result<Vec<Invoice>> {
        let store = ctx.data::<ApiContext>()?.store.clone();
        let fleet_id = self.record.customer.id.clone();
        let include_drafts = self.include_drafts;
        let records = store_blocking(&store, move |s| {
            s.list_invoices(&fleet_id, i64::from(first), after.as_ref().map(|a| a.as_str()), include_drafts)
        })
        .await?;
        Ok(records.into_iter().map(Invoice::from).collect())
    }
}

/// A driver of a fleet.
#[derive(SimpleObject)]
pub struct FleetDriver {
    pub id: ID,
    pub email: String,
    pub name: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceKind {
    Invoice,
    CreditNote,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Draft,
    Issued,
    Paid,
    Void,
}

/// An invoice or credit note.
#[derive(SimpleObject)]
pub struct Invoice {
    /// Unguessable; also the `after` cursor of the next page.
    pub id: ID,
    pub kind: InvoiceKind,
    /// Absent while a draft.
    pub number: Option<String>,
    /// The billed month, `YYYY-MM`.
    pub period: String,
    pub status: InvoiceStatus,
    pub issue_date: NaiveDate,
    pub due_date: Option<NaiveDate>,
    pub currency: String,
    pub totals: InvoiceTotals,
    pub vat_breakdown: Vec<VatBreakdown>,
    pub lines: Vec<InvoiceLine>,
    /// Credit notes: the number of the invoice they correct.
    pub corrects: Option<String>,
    pub pdf_url: String,
    pub csv_url: String,
    pub xml_url: String,
}

#[derive(SimpleObject)]
pub struct InvoiceTotals {
    pub net: Decimal,
    pub vat: Decimal,
    pub gross: Decimal,
    pub payable: Decimal,
}

#[derive(SimpleObject)]
pub struct VatBreakdown {
    pub rate: Decimal,
    pub taxable: Decimal,
    pub vat: Decimal,
}

/// One charging session on an invoice.
#[derive(SimpleObject)]
pub struct InvoiceLine {
    pub position: u32,
    /// The day the session ended, in the fleet's time zone.
    pub date: NaiveDate,
    pub location: String,
    pub evse: String,
    pub energy_kwh: Decimal,
    pub duration_minutes: i64,
    pub net: Decimal,
    pub vat_rate: Decimal,
    pub vat: Decimal,
    pub credit: bool,
}

impl From<InvoiceRecord> for Invoice {
    fn from(record: InvoiceRecord) -> Self {
        let document = record.document;
        let url = |ext: &str| format!("/invoices/{}.{ext}", record.id);
        Invoice {
            pdf_url: url("pdf"),
            csv_url: url("csv"),
            xml_url: url("xml"),
            id: ID(record.id.clone()),
            kind: match document.kind {
                emsp_invoicing::DocumentKind::Invoice => InvoiceKind::Invoice,
                emsp_invoicing::DocumentKind::CreditNote => InvoiceKind::CreditNote,
            },
            number: document.number.clone(),
            period: document.period.to_string(),
            status: match record.status {
                emsp_invoicing::DocumentStatus::Draft => InvoiceStatus::Draft,
                emsp_invoicing::DocumentStatus::Issued => InvoiceStatus::Issued,
                emsp_invoicing::DocumentStatus::Paid => InvoiceStatus::Paid,
                emsp_invoicing::DocumentStatus::Void => InvoiceStatus::Void,
            },
            issue_date: document.issue_date,
            due_date: document.due_date,
            currency: document.currency.to_string(),
            totals: InvoiceTotals {
                net: document.totals.net,
                vat: document.totals.vat,
                gross: document.totals.gross,
                payable: document.totals.payable,
            },
            vat_breakdown: document
                .vat_groups
                .iter()
                .map(|g| VatBreakdown { rate: g.rate, taxable: g.taxable, vat: g.vat })
                .collect(),
            lines: document
                .lines
                .iter()
                .map(|l| InvoiceLine {
                    position: l.position,
                    date: l.date,
                    location: l.location.clone(),
                    evse: l.evse.clone(),
                    energy_kwh: l.energy_kwh,
                    duration_minutes: l.duration_minutes,
                    net: l.net,
                    vat_rate: l.vat_rate,
                    vat: l.vat,
                    credit: l.credit,
                })
                .collect(),
            corrects: document.preceding.map(|p| p.number),
        }
    }
}
