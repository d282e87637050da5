//! Roaming partners: the platforms we exchange data with, their parties and credentials.
//!
//! One partner is one connection (one set of credentials). Behind it stand one or more parties:
//! a CPO with several party ids, or a hub that fronts many CPOs (filled from HubClientInfo).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::change_feed::{self, ChangeKind};
use crate::crypto::hash_token;
use crate::database::{DbConnection, Store};
use crate::documents::{from_document, to_document};
use crate::error::{StoreError, StoreResult};
use crate::schema::{partner_parties, partners};

/// Where a partner stands in the credentials handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartnerStatus {
    /// We created token A for it; it has not registered yet.
    Invited,
    /// Credentials exchanged; modules may be used.
    Registered,
    /// Credentials deleted by either side.
    Unregistered,
}

impl PartnerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerStatus::Invited => "INVITED",
            PartnerStatus::Registered => "REGISTERED",
            PartnerStatus::Unregistered => "UNREGISTERED",
        }
    }

    fn parse(value: &str) -> StoreResult<Self> {
        match value {
            "INVITED" => Ok(PartnerStatus::Invited),
            "REGISTERED" => Ok(PartnerStatus::Registered),
            "UNREGISTERED" => Ok(PartnerStatus::Unregistered),
            other => {
                Err(StoreError::Corrupt { key: "partners.status".into(), reason: format!("unknown status {other}") })
            }
        }
    }
}

/// A module endpoint a partner offers (OCPI version details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub identifier: String,
    /// `SENDER` or `RECEIVER` (OCPI 2.2+); absent for 2.1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub url: String,
}

/// A partner as stored. The token we use with it stays sealed until [`Store::outgoing_token`].
#[derive(Debug, Clone, PartialEq)]
pub struct Partner {
    pub id: String,
    pub name: String,
    pub status: PartnerStatus,
    pub versions_url: Option<String>,
    pub version: Option<String>,
    pub endpoints: Vec<Endpoint>,
    /// How we send our token: `base64` (OCPI 2.2+) or `plain` (2.1.1); `None` follows the version.
    pub token_encoding: Option<String>,
    pub last_pull_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    has_outgoing_token: bool,
}

impl Partner {
    pub fn has_outgoing_token(&self) -> bool {
        self.has_outgoing_token
    }
}

/// A party behind a partner connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerParty {
    pub country_code: String,
    pub party_id: String,
    pub role: String,
    pub name: Option<String>,
    /// `CONNECTED`, `OFFLINE`, `PLANNED`, `SUSPENDED` (OCPI `ConnectionStatus`).
    pub status: String,
}

/// A partner to create.
#[derive(Debug, Clone)]
pub struct NewPartner<'a> {
    pub name: &'a str,
    pub status: PartnerStatus,
    pub versions_url: Option<&'a str>,
    /// The token the partner will use with us (token A for an invitation); stored hashed.
    pub incoming_token: Option<&'a str>,
    /// The token we use with the partner; stored encrypted.
    pub outgoing_token: Option<&'a str>,
}

/// Registration data learnt in the credentials handshake.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub versions_url: &'a str,
    pub version: &'a str,
    pub endpoints: &'a [Endpoint],
    pub incoming_token: &'a str,
    pub outgoing_token: &'a str,
}

#[derive(Queryable)]
struct PartnerRow {
    id: String,
    name: String,
    status: String,
    versions_url: Option<String>,
    version: Option<String>,
    endpoints: String,
    outgoing_token_enc: Option<Vec<u8>>,
    token_encoding: Option<String>,
    last_pull_at: Option<NaiveDateTime>,
    last_error: Option<String>,
    last_error_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

type PartnerColumns = (
    partners::id,
    partners::name,
    partners::status,
    partners::versions_url,
    partners::version,
    partners::endpoints,
    partners::outgoing_token_enc,
    partners::token_encoding,
    partners::last_pull_at,
    partners::last_error,
    partners::last_error_at,
    partners::created_at,
    partners::updated_at,
);

const PARTNER_COLUMNS: PartnerColumns = (
    partners::id,
    partners::name,
    partners::status,
    partners::versions_url,
    partners::version,
    partners::endpoints,
    partners::outgoing_token_enc,
    partners::token_encoding,
    partners::last_pull_at,
    partners::last_error,
    partners::last_error_at,
    partners::created_at,
    partners::updated_at,
);

impl PartnerRow {
    fn into_partner(self) -> StoreResult<Partner> {
        Ok(Partner {
            endpoints: from_document(&format!("partner {}", self.id), &self.endpoints)?,
            status: PartnerStatus::parse(&self.status)?,
            id: self.id,
            name: self.name,
            versions_url: self.versions_url,
            version: self.version,
            token_encoding: self.token_encoding,
            last_pull_at: self.last_pull_at,
            last_error: self.last_error,
            last_error_at: self.last_error_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            has_outgoing_token: self.outgoing_token_enc.is_some(),
        })
    }
}

impl Store {
    fn seal(&self, token: Option<&str>) -> StoreResult<Option<Vec<u8>>> {
        let Some(token) = token else { return Ok(None) };
        let cipher = self.cipher.as_ref().ok_or_else(|| {
            StoreError::Config("EMSP_SECRET_KEY is not set: tokens for partners cannot be stored".into())
        })?;
        cipher.encrypt(token).map(Some)
    }

    pub fn create_partner(&self, new: &NewPartner<'_>) -> StoreResult<Partner> {
        let now = Utc::now().naive_utc();
        let id = uuid::Uuid::new_v4().to_string();
        let sealed = self.seal(new.outgoing_token)?;
        let mut conn = self.conn()?;
        diesel::insert_into(partners::table)
            .values((
                partners::id.eq(&id),
                partners::name.eq(new.name),
                partners::status.eq(new.status.as_str()),
                partners::versions_url.eq(new.versions_url),
                partners::endpoints.eq("[]"),
                partners::incoming_token_hash.eq(new.incoming_token.map(hash_token)),
                partners::outgoing_token_enc.eq(sealed),
                partners::created_at.eq(now),
                partners::updated_at.eq(now),
            ))
            .execute(&mut *conn)?;
        drop(conn);
        self.get_partner(&id)?.ok_or_else(|| StoreError::NotFound(format!("partner {id} right after insert")))
    }

    pub fn get_partner(&self, id: &str) -> StoreResult<Option<Partner>> {
        let mut conn = self.conn()?;
        let row: Option<PartnerRow> = partners::table.find(id).select(PARTNER_COLUMNS).first(&mut *conn).optional()?;
        row.map(PartnerRow::into_partner).transpose()
    }

    /// The partner that authenticates with this token, if any.
    pub fn find_partner_by_token(&self, token: &str) -> StoreResult<Option<Partner>> {
        let mut conn = self.conn()?;
        let row: Option<PartnerRow> = partners::table
            .filter(partners::incoming_token_hash.eq(hash_token(token)))
            .select(PARTNER_COLUMNS)
            .first(&mut *conn)
            .optional()?;
        row.map(PartnerRow::into_partner).transpose()
    }

    pub fn list_partners(&self) -> StoreResult<Vec<Partner>> {
        let mut conn = self.conn()?;
        let rows: Vec<PartnerRow> =
            partners::table.select(PARTNER_COLUMNS).order(partners::created_at.asc()).load(&mut *conn)?;
        rows.into_iter().map(PartnerRow::into_partner).collect()
    }

    /// The token we use with a partner, decrypted.
    pub fn outgoing_token(&self, partner_id: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn()?;
        let sealed: Option<Option<Vec<u8>>> =
            partners::table.find(partner_id).select(partners::outgoing_token_enc).first(&mut *conn).optional()?;
        let Some(Some(sealed)) = sealed else { return Ok(None) };
        let cipher = self.cipher.as_ref().ok_or_else(|| {
            StoreError::Config("EMSP_SECRET_KEY is not set: stored partner tokens cannot be read".into())
        })?;
        cipher.decrypt(&sealed).map(Some)
    }

    /// Stores the outcome of a credentials handshake (first registration, update, token rotation).
    pub fn register_partner(&self, partner_id: &str, registration: &Registration<'_>) -> StoreResult<()> {
        let sealed = self.seal(Some(registration.outgoing_token))?;
        let endpoints = to_document(&registration.endpoints)?;
        let mut conn = self.conn()?;
        let updated = diesel::update(partners::table.find(partner_id))
            .set((
                partners::status.eq(PartnerStatus::Registered.as_str()),
                partners::versions_url.eq(registration.versions_url),
                partners::version.eq(registration.version),
                partners::endpoints.eq(endpoints),
                partners::incoming_token_hash.eq(hash_token(registration.incoming_token)),
                partners::outgoing_token_enc.eq(sealed),
                partners::updated_at.eq(Utc::now().naive_utc()),
            ))
            .execute(&mut *conn)?;
        if updated == 0 {
            return Err(StoreError::NotFound(format!("partner {partner_id}")));
        }
        Ok(())
    }

    /// How we send our token to this partner: `Some("base64")`, `Some("plain")`, or `None` to follow
    /// the negotiated version (for peers that implement the other form).
    pub fn set_token_encoding(&self, partner_id: &str, encoding: Option<&str>) -> StoreResult<bool> {
        if let Some(value) = encoding
            && value != "base64"
            && value != "plain"
        {
            return Err(StoreError::Invalid(emsp_domain::ValidationError::new(
                "token_encoding",
                "must be base64 or plain",
            )));
        }
        let mut conn = self.conn()?;
        let updated = diesel::update(partners::table.find(partner_id))
            .set((partners::token_encoding.eq(encoding), partners::updated_at.eq(Utc::now().naive_utc())))
            .execute(&mut *conn)?;
        Ok(updated > 0)
    }

    /// Marks a partner unregistered and forgets its tokens.
    pub fn unregister_partner(&self, partner_id: &str) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let updated = diesel::update(partners::table.find(partner_id))
            .set((
                partners::status.eq(PartnerStatus::Unregistered.as_str()),
                partners::incoming_token_hash.eq(None::<String>),
                partners::outgoing_token_enc.eq(None::<Vec<u8>>),
                partners::updated_at.eq(Utc::now().naive_utc()),
            ))
            .execute(&mut *conn)?;
        Ok(updated > 0)
    }

    /// Replaces the parties behind a partner (from credentials roles or HubClientInfo).
    pub fn set_partner_parties(&self, partner_id: &str, parties: &[PartnerParty]) -> StoreResult<()> {
        let now = Utc::now().naive_utc();
        self.write(|conn| {
            let mut touched: BTreeSet<(String, String)> = partner_parties::table
                .filter(partner_parties::partner_id.eq(partner_id))
                .select((partner_parties::country_code, partner_parties::party_id))
                .load::<(String, String)>(conn)?
                .into_iter()
                .collect();
            touched
                .extend(parties.iter().map(|p| (p.country_code.to_ascii_uppercase(), p.party_id.to_ascii_uppercase())));
            let before = staleness(conn, &touched)?;
            diesel::delete(partner_parties::table.filter(partner_parties::partner_id.eq(partner_id))).execute(conn)?;
            for party in parties {
                diesel::insert_into(partner_parties::table)
                    .values((
                        partner_parties::partner_id.eq(partner_id),
                        partner_parties::country_code.eq(party.country_code.to_ascii_uppercase()),
                        partner_parties::party_id.eq(party.party_id.to_ascii_uppercase()),
                        partner_parties::role.eq(&party.role),
                        partner_parties::name.eq(&party.name),
                        partner_parties::status.eq(&party.status),
                        partner_parties::last_updated.eq(now),
                    ))
                    .execute(conn)?;
            }
            record_staleness_changes(conn, &before)
        })
    }

    /// Creates or updates one party behind a partner (a hub's `ClientInfo` push).
    pub fn upsert_partner_party(&self, partner_id: &str, party: &PartnerParty) -> StoreResult<()> {
        let now = Utc::now().naive_utc();
        let (country_code, party_id) = (party.country_code.to_ascii_uppercase(), party.party_id.to_ascii_uppercase());
        self.write(|conn| {
            let before = staleness(conn, &BTreeSet::from([(country_code.clone(), party_id.clone())]))?;
            let key = partner_parties::table.find((partner_id, &country_code, &party_id, &party.role));
            let updated = diesel::update(key)
                .set((
                    partner_parties::name.eq(&party.name),
                    partner_parties::status.eq(&party.status),
                    partner_parties::last_updated.eq(now),
                ))
                .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(partner_parties::table)
                    .values((
                        partner_parties::partner_id.eq(partner_id),
                        partner_parties::country_code.eq(&country_code),
                        partner_parties::party_id.eq(&party_id),
                        partner_parties::role.eq(&party.role),
                        partner_parties::name.eq(&party.name),
                        partner_parties::status.eq(&party.status),
                        partner_parties::last_updated.eq(now),
                    ))
                    .execute(conn)?;
            }
            record_staleness_changes(conn, &before)
        })
    }

    /// Parties whose data is stale (`CC*PID`, upper case), for the search index's bulk load.
    pub fn stale_parties(&self) -> StoreResult<Vec<String>> {
        let mut conn = self.conn()?;
        let rows: Vec<(String, String, String)> = partner_parties::table
            .select((partner_parties::country_code, partner_parties::party_id, partner_parties::status))
            .load(&mut *conn)?;
        Ok(stale_of(rows).into_iter().filter(|(_, stale)| *stale).map(|(party, _)| party).collect())
    }

    pub fn partner_parties(&self, partner_id: &str) -> StoreResult<Vec<PartnerParty>> {
        let mut conn = self.conn()?;
        let rows: Vec<(String, String, String, Option<String>, String)> = partner_parties::table
            .filter(partner_parties::partner_id.eq(partner_id))
            .order((partner_parties::country_code.asc(), partner_parties::party_id.asc()))
            .select((
                partner_parties::country_code,
                partner_parties::party_id,
                partner_parties::role,
                partner_parties::name,
                partner_parties::status,
            ))
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .map(|(country_code, party_id, role, name, status)| PartnerParty {
                country_code,
                party_id,
                role,
                name,
                status,
            })
            .collect())
    }

    /// Records a successful pull that started at `started_at`: the next incremental pull asks for
    /// changes since then, so nothing changed during this pull is missed. Clears the last error.
    pub fn record_pull_success(&self, partner_id: &str, started_at: DateTime<Utc>) -> StoreResult<()> {
        let mut conn = self.conn()?;
        diesel::update(partners::table.find(partner_id))
            .set((partners::last_pull_at.eq(started_at.naive_utc()), partners::last_error.eq(None::<String>)))
            .execute(&mut *conn)?;
        Ok(())
    }

    /// Records a failure talking to a partner; the last successful pull stays as it was.
    pub fn record_partner_error(&self, partner_id: &str, error: &str) -> StoreResult<()> {
        let mut conn = self.conn()?;
        diesel::update(partners::table.find(partner_id))
            .set((partners::last_error.eq(error), partners::last_error_at.eq(Utc::now().naive_utc())))
            .execute(&mut *conn)?;
        Ok(())
    }
}

/// Whether a party's data is stale: some connection lists it (a hub's client list) and none reports
/// it `CONNECTED`. A CPO that is offline behind a hub but also connected to us directly is not stale.
fn stale_of(rows: Vec<(String, String, String)>) -> BTreeMap<String, bool> {
    let mut stale: BTreeMap<String, bool> = BTreeMap::new();
    for (country_code, party_id, status) in rows {
        let connected = status.eq_ignore_ascii_case("CONNECTED");
        let entry = stale.entry(format!("{country_code}*{party_id}")).or_insert(true);
        *entry &= !connected;
    }
    stale
}

/// Staleness of these parties (`(CC, PID)`, upper case) as the connection's transaction sees it;
/// a party no connection lists is not stale.
fn staleness(conn: &mut DbConnection, parties: &BTreeSet<(String, String)>) -> StoreResult<BTreeMap<String, bool>> {
    let mut found: BTreeMap<String, bool> =
        parties.iter().map(|(country_code, party_id)| (format!("{country_code}*{party_id}"), false)).collect();
    let country_codes: BTreeSet<&str> = parties.iter().map(|(country_code, _)| country_code.as_str()).collect();
    let rows: Vec<(String, String, String)> = partner_parties::table
        .filter(partner_parties::country_code.eq_any(country_codes))
        .select((partner_parties::country_code, partner_parties::party_id, partner_parties::status))
        .load(conn)?;
    let relevant = rows
        .into_iter()
        .filter(|(country_code, party_id, _)| parties.contains(&(country_code.clone(), party_id.clone())));
    for (party, stale) in stale_of(relevant.collect()) {
        found.insert(party, stale);
    }
    Ok(found)
}

/// Appends a change-feed entry for every party whose staleness differs from `before`, in the
/// transaction that changed it, so every replica's search index follows.
fn record_staleness_changes(conn: &mut DbConnection, before: &BTreeMap<String, bool>) -> StoreResult<()> {
    let parties: BTreeSet<(String, String)> = before
        .keys()
        .filter_map(|party| party.split_once('*'))
        .map(|(country_code, party_id)| (country_code.to_owned(), party_id.to_owned()))
        .collect();
    let after = staleness(conn, &parties)?;
    for (party, stale) in after {
        if before.get(&party).copied().unwrap_or(false) != stale {
            change_feed::append(conn, ChangeKind::PartyStatus, &party, serde_json::json!({ "stale": stale }))?;
        }
    }
    Ok(())
}
