//! Tariffs of CPOs, stored whole as documents.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use emsp_domain::Tariff;
use serde_json::json;

use crate::change_feed::{self, ChangeKind};
use crate::database::{Store, per_backend};
use crate::documents::{content_hash, from_document, to_document};
use crate::error::StoreResult;
use crate::locations::WriteOutcome;
use crate::schema::tariffs;

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = tariffs)]
struct TariffRow<'a> {
    key: &'a str,
    country_code: &'a str,
    party_id: &'a str,
    tariff_id: &'a str,
    partner_id: Option<&'a str>,
    currency: &'a str,
    last_updated: NaiveDateTime,
    content_hash: &'a str,
    document: &'a str,
    stored_at: NaiveDateTime,
}

impl Store {
    /// Creates or replaces a tariff; a tariff whose content is unchanged is not written.
    pub fn upsert_tariff(&self, tariff: &Tariff, partner_id: Option<&str>) -> StoreResult<WriteOutcome> {
        tariff.validate()?;
        let key = tariff.key();
        let hash = content_hash(tariff)?;
        let document = to_document(tariff)?;
        let row = TariffRow {
            key: &key,
            country_code: tariff.party.country_code.as_str(),
            party_id: tariff.party.party_id.as_str(),
            tariff_id: tariff.id.as_str(),
            partner_id,
            currency: tariff.currency.as_str(),
            last_updated: tariff.last_updated.naive_utc(),
            content_hash: &hash,
            document: &document,
            stored_at: Utc::now().naive_utc(),
        };
        self.write(|conn| {
            let stored_hash: Option<String> =
                tariffs::table.find(&key).select(tariffs::content_hash).first(conn).optional()?;
            let outcome = match stored_hash {
                Some(stored) if stored == hash => return Ok(WriteOutcome::Unchanged),
                Some(_) => WriteOutcome::Updated,
                None => WriteOutcome::Created,
            };
            per_backend!(conn, |c| diesel::insert_into(tariffs::table)
                .values(&row)
                .on_conflict(tariffs::key)
                .do_update()
                .set(&row)
                .execute(c))?;
            change_feed::append(conn, ChangeKind::TariffUpserted, &key, json!({}))?;
            Ok(outcome)
        })
    }

    /// A tariff by key (`CC*PID*ID`, any case).
    pub fn get_tariff(&self, key: &str) -> StoreResult<Option<Tariff>> {
        let key = key.to_ascii_uppercase();
        let mut conn = self.conn()?;
        let row: Option<(NaiveDateTime, String)> = tariffs::table
            .find(&key)
            .select((tariffs::last_updated, tariffs::document))
            .first(&mut *conn)
            .optional()?;
        let Some((last_updated, document)) = row else { return Ok(None) };
        let mut tariff: Tariff = from_document(&key, &document)?;
        tariff.last_updated = DateTime::from_naive_utc_and_offset(last_updated, Utc);
        Ok(Some(tariff))
    }

    /// Several tariffs by key (upper case, as stored), for data loaders; missing ones are absent.
    pub fn get_tariffs(&self, keys: &[String]) -> StoreResult<Vec<Tariff>> {
        let mut conn = self.conn()?;
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let rows: Vec<(String, NaiveDateTime, String)> = tariffs::table
                .filter(tariffs::key.eq_any(chunk))
                .select((tariffs::key, tariffs::last_updated, tariffs::document))
                .load(&mut *conn)?;
            for (key, last_updated, document) in rows {
                let mut tariff: Tariff = from_document(&key, &document)?;
                tariff.last_updated = DateTime::from_naive_utc_and_offset(last_updated, Utc);
                found.push(tariff);
            }
        }
        Ok(found)
    }

    /// Tariffs ordered by key, after `after_key`.
    pub fn tariffs_page(&self, after_key: Option<&str>, limit: i64) -> StoreResult<Vec<Tariff>> {
        let mut conn = self.conn()?;
        let mut query = tariffs::table
            .select((tariffs::key, tariffs::document))
            .order(tariffs::key.asc())
            .limit(limit)
            .into_boxed();
        if let Some(after) = after_key {
            query = query.filter(tariffs::key.gt(after.to_owned()));
        }
        let rows: Vec<(String, String)> = query.load(&mut *conn)?;
        rows.iter().map(|(key, document)| from_document(key, document)).collect()
    }

    /// Deletes a tariff; `false` when there was none.
    pub fn remove_tariff(&self, key: &str) -> StoreResult<bool> {
        let key = key.to_ascii_uppercase();
        self.write(|conn| {
            if diesel::delete(tariffs::table.find(&key)).execute(conn)? == 0 {
                return Ok(false);
            }
            change_feed::append(conn, ChangeKind::TariffRemoved, &key, json!({}))?;
            Ok(true)
        })
    }
}
