//! Token management for operations staff: search, issue in bulk, import RFID cards from CSV,
//! block, unblock, assign to a driver or fleet, and the audit log of all of it. Every change is
//! written with its audit row (actor `ops:<user id>`) by the store, which also announces it to
//! the push to CPOs.

use std::collections::HashSet;

use async_graphql::{Context, Enum, InputObject, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use emsp_domain::{Emaid, Token, TokenType, TokenUid, WhitelistType};
use emsp_store::{AuditFilter, Store, StoreError, TokenAuditEntry, TokenFilter, TokenRecord};

use crate::context::{ApiContext, TokenIssuer, Viewer};
use crate::errors::{ApiCode, internal, store_error};

/// Most tokens issued, or CSV rows imported, in one request.
pub const MAX_BATCH: usize = 10_000;
/// Most items of one page.
pub const MAX_PAGE: i32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "TokenType")]
pub enum TokenTypeValue {
    Rfid,
    AppUser,
    AdHocUser,
    Other,
}

impl TokenTypeValue {
    fn domain(self) -> TokenType {
        match self {
            TokenTypeValue::Rfid => TokenType::Rfid,
            TokenTypeValue::AppUser => TokenType::AppUser,
            TokenTypeValue::AdHocUser => TokenType::AdHocUser,
            TokenTypeValue::Other => TokenType::OtherType,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "WhitelistType")]
pub enum WhitelistValue {
    Always,
    Allowed,
    AllowedOffline,
    Never,
}

impl WhitelistValue {
    fn domain(self) -> WhitelistType {
        match self {
            WhitelistValue::Always => WhitelistType::Always,
            WhitelistValue::Allowed => WhitelistType::Allowed,
            WhitelistValue::AllowedOffline => WhitelistType::AllowedOffline,
            WhitelistValue::Never => WhitelistType::Never,
        }
    }
}

/// A token as ops see it.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Token")]
pub struct TokenView {
    pub country_code: String,
    pub party_id: String,
    pub uid: String,
    /// RFID, APP_USER, AD_HOC_USER or OTHER.
    #[graphql(name = "type")]
    pub token_type: String,
    pub contract_id: String,
    pub visual_number: Option<String>,
    pub issuer: String,
    pub group_id: Option<String>,
    pub valid: bool,
    /// ALWAYS, ALLOWED, ALLOWED_OFFLINE or NEVER.
    pub whitelist: String,
    pub language: Option<String>,
    pub default_profile_type: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub blocked_reason: Option<String>,
    /// What a CPO asking now would be told of the token itself: ALLOWED, BLOCKED or EXPIRED.
    pub status: String,
    pub user_id: Option<String>,
    pub fleet_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
}

impl From<TokenRecord> for TokenView {
    fn from(record: TokenRecord) -> Self {
        let status = record.token.allowed_at(Utc::now()).as_str().to_owned();
        let token = record.token;
        Self {
            country_code: token.party.country_code.as_str().to_owned(),
            party_id: token.party.party_id.as_str().to_owned(),
            uid: token.uid.as_str().to_owned(),
            token_type: token.token_type.as_str().to_owned(),
            contract_id: token.contract_id,
            visual_number: token.visual_number,
            issuer: token.issuer,
            group_id: token.group_id,
            valid: token.valid,
            whitelist: token.whitelist.as_str().to_owned(),
            language: token.language,
            default_profile_type: token.default_profile_type,
            expires_at: token.expires_at,
            blocked_reason: token.blocked_reason,
            status,
            user_id: record.user_id,
            fleet_id: record.fleet_id,
            created_at: record.created_at,
            last_updated: token.last_updated,
        }
    }
}

/// A page of tokens.
#[derive(Debug, Clone, SimpleObject)]
pub struct TokenPage {
    pub items: Vec<TokenView>,
    /// Every match, on all pages.
    pub total_count: i64,
    pub offset: i32,
}

/// What to search tokens by; every given field must match.
#[derive(Debug, Clone, Default, InputObject)]
pub struct TokenSearch {
    /// The uid in any case; a trailing `*` matches a prefix.
    pub uid: Option<String>,
    /// The contract id in any case, with or without hyphens; a trailing `*` matches a prefix.
    pub contract_id: Option<String>,
    /// The driver (user id).
    pub user_id: Option<String>,
    pub fleet_id: Option<String>,
    #[graphql(name = "type")]
    pub token_type: Option<TokenTypeValue>,
    pub valid: Option<bool>,
}

/// Tokens to issue: fresh uids and fresh eMAIDs of ours.
#[derive(Debug, Clone, InputObject)]
pub struct IssueTokensInput {
    /// APP_USER (the default), AD_HOC_USER or OTHER; RFID cards are imported (`importRfidTokens`).
    #[graphql(name = "type")]
    pub token_type: Option<TokenTypeValue>,
    /// How many, when no `userIds` are given (1 to 10,000).
    pub count: Option<i32>,
    /// One token for each of these drivers, assigned to them.
    pub user_ids: Option<Vec<String>>,
    pub fleet_id: Option<String>,
    pub group_id: Option<String>,
    /// Default: NEVER (OCPI's advice for app tokens).
    pub whitelist: Option<WhitelistValue>,
    pub language: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What became of one CSV row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ImportRowStatus {
    Created,
    /// The uid is already a token of ours, or came earlier in the file.
    Duplicate,
    Invalid,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct ImportRow {
    /// The line in the file (the header is line 1).
    pub line: i32,
    pub uid: Option<String>,
    pub status: ImportRowStatus,
    /// What is wrong, for DUPLICATE and INVALID.
    pub message: Option<String>,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct ImportReport {
    pub created: i32,
    pub duplicates: i32,
    pub invalid: i32,
    /// One entry per data row, in file order.
    pub rows: Vec<ImportRow>,
}

/// One change in the audit log.
#[derive(Debug, Clone, SimpleObject)]
pub struct TokenAuditEntryView {
    pub seq: i64,
    /// `CC*PID*UID`.
    pub token_key: String,
    /// ISSUE, IMPORT, BLOCK, UNBLOCK, ASSIGN.
    pub action: String,
    /// `ops:<user id>`, `driver:<user id>`, ...
    pub actor: String,
    /// The token before the change, as JSON (absent when it was created).
    pub before: Option<String>,
    /// The token after the change, as JSON.
    pub after: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<TokenAuditEntry> for TokenAuditEntryView {
    fn from(entry: TokenAuditEntry) -> Self {
        Self {
            seq: entry.seq,
            token_key: entry.token_key,
            action: entry.action,
            actor: entry.actor,
            before: entry.before.map(|v| v.to_string()),
            after: entry.after.map(|v| v.to_string()),
            created_at: entry.created_at,
        }
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct TokenAuditPage {
    pub items: Vec<TokenAuditEntryView>,
    pub total_count: i64,
    pub offset: i32,
}

/// What to search the audit log by.
#[derive(Debug, Clone, Default, InputObject)]
pub struct TokenAuditSearch {
    /// The token's uid (our party).
    pub uid: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

fn actor(ctx: &Context<'_>) -> async_graphql::Result<String> {
    let viewer = ctx.data_opt::<Viewer>().ok_or_else(|| ApiCode::Unauthenticated.error("sign in first"))?;
    Ok(format!("ops:{}", viewer.0.sub))
}

async fn run<T: Send + 'static>(
    work: impl FnOnce() -> async_graphql::Result<T> + Send + 'static,
) -> async_graphql::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| internal(&e))?
}

fn page_bounds(offset: Option<i32>, first: Option<i32>) -> async_graphql::Result<(i32, i32)> {
    let offset = offset.unwrap_or(0);
    let first = first.unwrap_or(50);
    if offset < 0 {
        return Err(ApiCode::BadUserInput.error("offset must not be negative"));
    }
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(ApiCode::BadUserInput.error(format!("first must be 1 to {MAX_PAGE}")));
    }
    Ok((offset, first))
}

fn blank_to_none(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `tokens(search, offset, first)`.
pub async fn search(
    ctx: &Context<'_>,
    search: Option<TokenSearch>,
    offset: Option<i32>,
    first: Option<i32>,
) -> async_graphql::Result<TokenPage> {
    let (offset, first) = page_bounds(offset, first)?;
    let search = search.unwrap_or_default();
    let filter = TokenFilter {
        uid: blank_to_none(search.uid),
        contract_id: blank_to_none(search.contract_id),
        user_id: blank_to_none(search.user_id),
        fleet_id: blank_to_none(search.fleet_id),
        token_type: search.token_type.map(TokenTypeValue::domain),
        valid: search.valid,
    };
    let store = ctx.data::<ApiContext>()?.store.clone();
    let (records, total) =
        run(move || store.search_tokens(&filter, offset.into(), first.into()).map_err(store_error)).await?;
    Ok(TokenPage { items: records.into_iter().map(Into::into).collect(), total_count: total, offset })
}

/// A token of ours, by uid, or NOT_FOUND.
fn find(store: &Store, issuer: &TokenIssuer, uid: &str) -> async_graphql::Result<TokenRecord> {
    let found = match store.get_party_token(&issuer.party, uid).map_err(store_error)? {
        Some(record) => Some(record),
        None => store.get_token(uid).map_err(store_error)?,
    };
    found.ok_or_else(|| ApiCode::NotFound.error(format!("no token {uid}")))
}

fn update_error(error: StoreError) -> async_graphql::Error {
    match error {
        StoreError::Conflict(message) => ApiCode::BadUserInput.error(message),
        other => store_error(other),
    }
}

/// Applies `change` to the token `uid`, audited as `action` by the viewer.
async fn change_token(
    ctx: &Context<'_>,
    uid: String,
    action: &'static str,
    change: impl FnOnce(&Store, &mut TokenRecord) -> Result<(), StoreError> + Send + 'static,
) -> async_graphql::Result<TokenView> {
    let actor = actor(ctx)?;
    let api = ctx.data::<ApiContext>()?;
    let (store, issuer) = (api.store.clone(), api.issuer.clone());
    run(move || {
        let record = find(&store, &issuer, &uid)?;
        let checker = store.clone();
        let updated = store
            .update_token(&record.key(), action, &actor, |token| change(&checker, token))
            .map_err(update_error)?
            .ok_or_else(|| ApiCode::NotFound.error(format!("no token {uid}")))?;
        Ok(updated.1.into())
    })
    .await
}

/// `blockToken(uid, reason)`.
pub async fn block(ctx: &Context<'_>, uid: String, reason: String) -> async_graphql::Result<TokenView> {
    let reason = reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 255 {
        return Err(ApiCode::BadUserInput.error("reason must be 1 to 255 characters"));
    }
    change_token(ctx, uid, "BLOCK", move |_, record| {
        record.token.valid = false;
        record.token.blocked_reason = Some(reason);
        Ok(())
    })
    .await
}

/// `unblockToken(uid)`.
pub async fn unblock(ctx: &Context<'_>, uid: String) -> async_graphql::Result<TokenView> {
    change_token(ctx, uid, "UNBLOCK", |_, record| {
        record.token.valid = true;
        record.token.blocked_reason = None;
        Ok(())
    })
    .await
}

/// `assignToken(uid, userId, fleetId)`: both as given (absent clears).
pub async fn assign(
    ctx: &Context<'_>,
    uid: String,
    user_id: Option<String>,
    fleet_id: Option<String>,
) -> async_graphql::Result<TokenView> {
    let user_id = blank_to_none(user_id);
    let fleet_id = blank_to_none(fleet_id);
    if fleet_id.as_ref().is_some_and(|f| f.len() > 36) {
        return Err(ApiCode::BadUserInput.error("fleetId must be at most 36 characters"));
    }
    if let Some(user) = &user_id {
        let store = ctx.data::<ApiContext>()?.store.clone();
        let id = user.clone();
        if run(move || store.get_user(&id).map_err(store_error)).await?.is_none() {
            return Err(ApiCode::BadUserInput.error(format!("no user {user}")));
        }
    }
    change_token(ctx, uid, "ASSIGN", move |_, record| {
        record.user_id = user_id;
        record.fleet_id = fleet_id;
        Ok(())
    })
    .await
}

/// `issueTokens(input)`: fresh uids (UUIDs) and eMAIDs of our party.
pub async fn issue(ctx: &Context<'_>, input: IssueTokensInput) -> async_graphql::Result<Vec<TokenView>> {
    let actor = actor(ctx)?;
    let token_type = input.token_type.unwrap_or(TokenTypeValue::AppUser);
    if token_type == TokenTypeValue::Rfid {
        return Err(ApiCode::BadUserInput.error("RFID cards carry their own uid: import them with importRfidTokens"));
    }
    let user_ids: Vec<Option<String>> = match (&input.user_ids, input.count) {
        (Some(users), _) if !users.is_empty() => users.iter().map(|u| Some(u.trim().to_owned())).collect(),
        (_, Some(count)) if count >= 1 && usize::try_from(count).is_ok_and(|c| c <= MAX_BATCH) => {
            vec![None; usize::try_from(count).unwrap_or(0)]
        }
        _ => return Err(ApiCode::BadUserInput.error(format!("give userIds, or a count of 1 to {MAX_BATCH}"))),
    };
    if user_ids.len() > MAX_BATCH {
        return Err(ApiCode::BadUserInput.error(format!("at most {MAX_BATCH} tokens at once")));
    }
    let api = ctx.data::<ApiContext>()?;
    let (store, issuer) = (api.store.clone(), api.issuer.clone());
    let fleet_id = blank_to_none(input.fleet_id);
    let template = Token {
        party: issuer.party.clone(),
        uid: TokenUid::new("template").map_err(|e| internal(&e))?,
        token_type: token_type.domain(),
        contract_id: String::new(),
        visual_number: None,
        issuer: issuer.name.clone(),
        group_id: blank_to_none(input.group_id),
        valid: true,
        whitelist: input.whitelist.unwrap_or(WhitelistValue::Never).domain(),
        language: blank_to_none(input.language).map(|l| l.to_ascii_lowercase()),
        default_profile_type: None,
        energy_contract: None,
        expires_at: input.expires_at,
        blocked_reason: None,
        last_updated: Utc::now(),
    };
    run(move || {
        let mut issued = Vec::with_capacity(user_ids.len());
        for user_id in user_ids {
            if let Some(user) = &user_id
                && store.get_user(user).map_err(store_error)?.is_none()
            {
                return Err(ApiCode::BadUserInput.error(format!("no user {user}")));
            }
            let now = Utc::now();
            let mut token = template.clone();
            token.uid = TokenUid::new(uuid_v4()).map_err(|e| internal(&e))?;
            token.contract_id = emsp_store::new_contract_id(&issuer.party).map_err(store_error)?.to_string();
            token.last_updated = now;
            let record = TokenRecord { token, user_id, fleet_id: fleet_id.clone(), created_at: now };
            let stored = store.insert_token(&record, "ISSUE", &actor).map_err(|error| match error {
                StoreError::Conflict(_) => ApiCode::BadUserInput.error("a driver has at most one app token"),
                other => store_error(other),
            })?;
            issued.push(stored.into());
        }
        Ok(issued)
    })
    .await
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `importRfidTokens(csv | file)`.
pub async fn import(
    ctx: &Context<'_>,
    csv: Option<String>,
    file: Option<Upload>,
) -> async_graphql::Result<ImportReport> {
    let actor = actor(ctx)?;
    let text = match (csv, file) {
        (Some(text), None) => text,
        (None, Some(upload)) => {
            let mut content = Vec::new();
            let value = upload.value(ctx).map_err(|_| ApiCode::BadUserInput.error("the upload cannot be read"))?;
            std::io::Read::read_to_end(&mut value.into_read(), &mut content)
                .map_err(|_| ApiCode::BadUserInput.error("the upload cannot be read"))?;
            String::from_utf8(content).map_err(|_| ApiCode::BadUserInput.error("the file is not UTF-8 text"))?
        }
        _ => return Err(ApiCode::BadUserInput.error("give either csv (text) or file (an upload)")),
    };
    let api = ctx.data::<ApiContext>()?;
    let (store, issuer) = (api.store.clone(), api.issuer.clone());
    run(move || import_csv(&store, &issuer, &actor, &text)).await
}

/// The columns an import reads; `uid` is required, the others optional.
const COLUMNS: [&str; 9] =
    ["uid", "contract_id", "visual_number", "group_id", "user_id", "fleet_id", "whitelist", "language", "expires_at"];

fn import_csv(store: &Store, issuer: &TokenIssuer, actor: &str, text: &str) -> async_graphql::Result<ImportReport> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ApiCode::BadUserInput.error(format!("the header line cannot be read: {e}")))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    if column("uid").is_none() {
        return Err(
            ApiCode::BadUserInput.error(format!("the header needs a uid column (known: {})", COLUMNS.join(", ")))
        );
    }
    if let Some(unknown) = headers.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        return Err(ApiCode::BadUserInput.error(format!("unknown column {unknown:?} (known: {})", COLUMNS.join(", "))));
    }
    let mut report = ImportReport { created: 0, duplicates: 0, invalid: 0, rows: Vec::new() };
    let mut seen = HashSet::new();
    for (index, record) in reader.records().enumerate() {
        let line = i32::try_from(index + 2).unwrap_or(i32::MAX);
        if report.rows.len() >= MAX_BATCH {
            return Err(ApiCode::BadUserInput.error(format!("at most {MAX_BATCH} rows per import")));
        }
        let row = match record {
            Ok(row) => row,
            Err(error) => {
                report.invalid += 1;
                report.rows.push(ImportRow {
                    line,
                    uid: None,
                    status: ImportRowStatus::Invalid,
                    message: Some(format!("unreadable row: {error}")),
                });
                continue;
            }
        };
        let field = |name: &str| {
            column(name).and_then(|i| row.get(i)).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
        };
        let uid = field("uid");
        let outcome = import_row(store, issuer, actor, &field, &mut seen);
        let (status, message) = match outcome {
            Ok(()) => {
                report.created += 1;
                (ImportRowStatus::Created, None)
            }
            Err(RowError::Duplicate(message)) => {
                report.duplicates += 1;
                (ImportRowStatus::Duplicate, Some(message))
            }
            Err(RowError::Invalid(message)) => {
                report.invalid += 1;
                (ImportRowStatus::Invalid, Some(message))
            }
            Err(RowError::Store(error)) => return Err(store_error(error)),
        };
        report.rows.push(ImportRow { line, uid, status, message });
    }
    Ok(report)
}

enum RowError {
    Duplicate(String),
    Invalid(String),
    Store(StoreError),
}

fn import_row(
    store: &Store,
    issuer: &TokenIssuer,
    actor: &str,
    field: &dyn Fn(&str) -> Option<String>,
    seen: &mut HashSet<String>,
) -> Result<(), RowError> {
    let uid = field("uid").ok_or_else(|| RowError::Invalid("uid is empty".into()))?;
    let uid = TokenUid::new(uid).map_err(|e| RowError::Invalid(e.to_string()))?;
    if !seen.insert(uid.key()) {
        return Err(RowError::Duplicate(format!("uid {uid} comes earlier in the file")));
    }
    let contract_id = match field("contract_id") {
        // A card without a contract id gets a fresh eMAID of ours.
        None => emsp_store::new_contract_id(&issuer.party).map_err(RowError::Store)?.to_string(),
        Some(given) => {
            let looks_like_emaid = given.len() >= 14 && given.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if looks_like_emaid && given.starts_with(|c: char| c.is_ascii_alphabetic()) {
                Emaid::parse(&given).map_err(|e| RowError::Invalid(e.to_string()))?.to_string()
            } else {
                given
            }
        }
    };
    let whitelist = match field("whitelist") {
        None => WhitelistType::Allowed,
        Some(text) => {
            let parsed = WhitelistType::parse(&text);
            if !parsed.is_known() {
                return Err(RowError::Invalid(format!(
                    "whitelist {text:?} is not ALWAYS, ALLOWED, ALLOWED_OFFLINE or NEVER"
                )));
            }
            parsed
        }
    };
    let expires_at = match field("expires_at") {
        None => None,
        Some(text) => Some(
            DateTime::parse_from_rfc3339(&text)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                })
                .map_err(|_| RowError::Invalid(format!("expires_at {text:?} is not a date or timestamp")))?,
        ),
    };
    let user_id = field("user_id");
    if let Some(user) = &user_id
        && store.get_user(user).map_err(RowError::Store)?.is_none()
    {
        return Err(RowError::Invalid(format!("no user {user}")));
    }
    let now = Utc::now();
    let record = TokenRecord {
        token: Token {
            party: issuer.party.clone(),
            uid,
            token_type: TokenType::Rfid,
            contract_id,
            visual_number: field("visual_number"),
            issuer: issuer.name.clone(),
            group_id: field("group_id"),
            valid: true,
            whitelist,
            language: field("language").map(|l| l.to_ascii_lowercase()),
            default_profile_type: None,
            energy_contract: None,
            expires_at,
            blocked_reason: None,
            last_updated: now,
        },
        user_id,
        fleet_id: field("fleet_id"),
        created_at: now,
    };
    match store.insert_token(&record, "IMPORT", actor) {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict(_)) => {
            Err(RowError::Duplicate(format!("uid {} is already a token", record.token.uid)))
        }
        Err(StoreError::Invalid(invalid)) => Err(RowError::Invalid(invalid.to_string())),
        Err(other) => Err(RowError::Store(other)),
    }
}

/// `tokenAudit(search, offset, first)`.
pub async fn audit(
    ctx: &Context<'_>,
    search: Option<TokenAuditSearch>,
    offset: Option<i32>,
    first: Option<i32>,
) -> async_graphql::Result<TokenAuditPage> {
    let (offset, first) = page_bounds(offset, first)?;
    let search = search.unwrap_or_default();
    let api = ctx.data::<ApiContext>()?;
    let (store, issuer) = (api.store.clone(), api.issuer.clone());
    run(move || {
        let token_key = match blank_to_none(search.uid) {
            Some(uid) => Some(find(&store, &issuer, &uid)?.key()),
            None => None,
        };
        let filter = AuditFilter {
            token_key,
            actor: blank_to_none(search.actor),
            action: blank_to_none(search.action),
            from: search.from,
            to: search.to,
        };
        let (entries, total) = store.token_audit(&filter, offset.into(), first.into()).map_err(store_error)?;
        Ok(TokenAuditPage { items: entries.into_iter().map(Into::into).collect(), total_count: total, offset })
    })
    .await
}
