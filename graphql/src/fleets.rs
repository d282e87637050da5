//! Fleets for their managers (and operations staff): the fleet, its drivers, its tokens, its
//! charging sessions (the CDRs of its tokens), its invoices and credit notes with download links. Who may see what is decided by the store
//! (`may_see_fleet`, `invoice_for_viewer`); a fleet that is not the viewer's is "not found", so ids
//! cannot be probed.

use std::collections::HashMap;

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use emsp_accounts::Role;
use emsp_invoicing::UsageRecord;
use emsp_store::{FleetCdr, FleetCdrFilter, FleetRecord, FleetRole, InvoiceRecord, Store, StoreError, TokenFilter};
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

    /// The fleet's tokens (charge cards and app identities), newest change first.
    async fn tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FleetToken>> {
        let store = ctx.data::<ApiContext>()?.store.clone();
        let fleet_id = self.record.customer.id.clone();
        store_blocking(&store, move |s| {
            let filter = TokenFilter { fleet_id: Some(fleet_id), ..TokenFilter::default() };
            let (records, _) = s.search_tokens(&filter, 0, MAX_FLEET_TOKENS)?;
            let drivers = drivers_of(s, records.iter().filter_map(|r| r.user_id.clone()))?;
            let now = Utc::now();
            Ok(records
                .into_iter()
                .map(|record| {
                    let token = record.token;
                    FleetToken {
                        uid: token.uid.as_str().to_owned(),
                        contract_id: token.contract_id.clone(),
                        token_type: token.token_type.as_str().to_owned(),
                        visual_number: token.visual_number.clone(),
                        driver: record.user_id.as_ref().and_then(|id| drivers.get(id).cloned()),
                        status: token.allowed_at(now).as_str().to_owned(),
                        valid: token.valid,
                        blocked_reason: token.blocked_reason,
                        expires_at: token.expires_at,
                    }
                })
                .collect())
        })
        .await
    }

    /// The fleet's charging sessions (the CDRs of its tokens), latest end first: of one driver
    /// when `driverId` is given, ended between the days `from` and `to` (both included, on the
    /// fleet's clock) when given; `after` is the `endCursor` of the previous page.
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        driver_id: Option<ID>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        #[graphql(default = 20, validator(minimum = 1, maximum = 100))] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<FleetSessionConnection> {
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(ApiCode::BadUserInput.error("from is after to"));
        }
        let tz = self.record.customer.tz().map_err(|e| internal(&e))?;
        let ended_from = from.map(|day| local_midnight(tz, day));
        let ended_before = to.and_then(|day| day.succ_opt()).map(|day| local_midnight(tz, day));
        let store = ctx.data::<ApiContext>()?.store.clone();
        let fleet_id = self.record.customer.id.clone();
        let driver = driver_id.map(|id| id.to_string());
        let (page, drivers, billed) = store_blocking(&store, move |s| {
            let filter = FleetCdrFilter { fleet_id: &fleet_id, user_id: driver.as_deref(), ended_from, ended_before };
            let page = s.fleet_cdrs(&filter, after.as_deref(), i64::from(first) + 1)?;
            let drivers = drivers_of(s, page.iter().filter_map(|c| c.user_id.clone()))?;
            let ids: Vec<String> = page.iter().map(|c| UsageRecord::from(&c.record.cdr).cdr_id).collect();
            let billed = s.billed_cdrs(&ids)?;
            Ok((page, drivers, billed))
        })
        .await?;
        let limit = usize::try_from(first).unwrap_or(0);
        let has_next_page = page.len() > limit;
        let nodes: Vec<FleetSession> =
            page.into_iter().take(limit).map(|cdr| FleetSession::new(cdr, tz, &drivers, &billed)).collect();
        let end_cursor = nodes.last().map(|n| n.id.to_string());
        Ok(FleetSessionConnection { nodes, has_next_page, end_cursor })
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

/// More tokens than any fleet has; the list is not paged.
const MAX_FLEET_TOKENS: i64 = 10_000;

/// The drivers (users) with these ids, by id: one query.
fn drivers_of(store: &Store, ids: impl Iterator<Item = String>) -> Result<HashMap<String, FleetDriver>, StoreError> {
    let mut ids: Vec<String> = ids.collect();
    ids.sort();
    ids.dedup();
    Ok(store
        .users_by_ids(&ids)?
        .into_iter()
        .map(|u| (u.id.clone(), FleetDriver { id: ID(u.id), email: u.email, name: u.name }))
        .collect())
}

/// The first instant of `day` on the fleet's clock (the first hour that exists, where midnight
/// is skipped by daylight saving time).
fn local_midnight(tz: chrono_tz::Tz, day: NaiveDate) -> DateTime<Utc> {
    let mut time = day.and_time(chrono::NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(instant) = tz.from_local_datetime(&time).earliest() {
            return instant.with_timezone(&Utc);
        }
        time += chrono::Duration::minutes(30);
    }
    time.and_utc()
}

/// A token (charge card or app identity) of a fleet.
#[derive(SimpleObject)]
pub struct FleetToken {
    pub uid: String,
    /// The eMAID on the card or in the app.
    pub contract_id: String,
    /// RFID, APP_USER, AD_HOC_USER or OTHER.
    #[graphql(name = "type")]
    pub token_type: String,
    /// The number printed on the card.
    pub visual_number: Option<String>,
    /// The driver it is given to, if any.
    pub driver: Option<FleetDriver>,
    /// What a charger asking now would be told: ALLOWED, BLOCKED or EXPIRED.
    pub status: String,
    /// False when blocked.
    pub valid: bool,
    pub blocked_reason: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A charging session of a fleet's token, as its CDR tells it.
#[derive(SimpleObject)]
pub struct FleetSession {
    /// The CDR's key (`CC*PID*ID` of the CPO); also the `after` cursor of the next page.
    pub id: ID,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The day the session ended, in the fleet's time zone.
    pub date: NaiveDate,
    pub driver: Option<FleetDriver>,
    pub token_uid: String,
    pub contract_id: String,
    /// Location name and address.
    pub location: String,
    /// The EVSE id.
    pub evse: String,
    pub energy_kwh: Decimal,
    pub duration_minutes: i64,
    /// The CPO's cost without VAT (negative for a credit).
    pub cost_excl_vat: Decimal,
    pub cost_incl_vat: Option<Decimal>,
    pub currency: String,
    pub credit: bool,
    /// The number of the issued document that bills it, once billed.
    pub invoice_number: Option<String>,
}

impl FleetSession {
    fn new(
        fleet_cdr: FleetCdr,
        tz: chrono_tz::Tz,
        drivers: &HashMap<String, FleetDriver>,
        billed: &HashMap<String, emsp_invoicing::PrecedingInvoice>,
    ) -> Self {
        let cdr = &fleet_cdr.record.cdr;
        let usage = UsageRecord::from(cdr);
        let seconds = (cdr.end_date_time - cdr.start_date_time).num_seconds().max(0);
        FleetSession {
            id: ID(fleet_cdr.record.key.clone()),
            start: cdr.start_date_time,
            end: cdr.end_date_time,
            date: cdr.end_date_time.with_timezone(&tz).date_naive(),
            driver: fleet_cdr.user_id.as_ref().and_then(|id| drivers.get(id).cloned()),
            token_uid: fleet_cdr.token_uid,
            contract_id: fleet_cdr.contract_id,
            invoice_number: billed.get(&usage.cdr_id).map(|p| p.number.clone()),
            credit: usage.is_credit(),
            location: usage.location,
            evse: usage.evse,
            energy_kwh: cdr.total_energy,
            duration_minutes: (seconds + 30) / 60,
            cost_excl_vat: cdr.total_cost.excl_vat,
            cost_incl_vat: cdr.total_cost.incl_vat,
            currency: cdr.currency.to_string(),
        }
    }
}

/// A page of a fleet's sessions.
#[derive(SimpleObject)]
pub struct FleetSessionConnection {
    pub nodes: Vec<FleetSession>,
    pub has_next_page: bool,
    /// The `after` of the next page.
    pub end_cursor: Option<String>,
}

/// A driver of a fleet.
#[derive(SimpleObject, Clone)]
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
