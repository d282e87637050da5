//! Pagination of the Sender interfaces as the transport chapter specifies: `offset`, `limit`
//! (capped at our `X-Limit`), `date_from` inclusive and `date_to` exclusive on `last_updated`, and
//! `Link: <url>; rel="next"` plus `X-Total-Count` on every page. The link and count faults are
//! applied here, where the headers are made.

use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::envelope::{Envelope, parse_datetime};
use crate::error::SimError;
use crate::faults::LinkFault;
use crate::state::SimState;

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub offset: Option<usize>,
    pub limit: Option<usize>,
    pub date_from: Option<String>,
    pub date_to: Option<String>,
}

struct Window {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Window {
    fn parse(query: &PageQuery) -> Result<Self, SimError> {
        let parse = |name: &str, text: &Option<String>| match text {
            None => Ok(None),
            Some(text) => parse_datetime(text)
                .map(Some)
                .ok_or_else(|| SimError::InvalidParameters(format!("`{name}` is not a DateTime"))),
        };
        Ok(Window { from: parse("date_from", &query.date_from)?, to: parse("date_to", &query.date_to)? })
    }

    /// Objects without a readable `last_updated` match only when no window is asked for.
    fn contains(&self, object: &Value) -> bool {
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        let Some(at) = object.get("last_updated").and_then(Value::as_str).and_then(parse_datetime) else {
            return false;
        };
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at < to)
    }
}

/// One page of `objects` as an OCPI response with the paging headers.
pub fn page(
    state: &SimState,
    req: &HttpRequest,
    query: &PageQuery,
    objects: &[Value],
) -> Result<HttpResponse, SimError> {
    let window = Window::parse(query)?;
    let matching: Vec<&Value> = objects.iter().filter(|o| window.contains(o)).collect();
    let total = matching.len();
    let limit = match query.limit {
        Some(limit) if limit > 0 => limit.min(state.page_limit),
        _ => state.page_limit,
    };
    let offset = query.offset.unwrap_or(0);
    let data: Vec<Value> = matching.into_iter().skip(offset).take(limit).cloned().collect();
    let mut response = HttpResponse::Ok();
    response.insert_header(("X-Limit", limit.to_string()));
    if !state.faults.omit_total_count() {
        response.insert_header(("X-Total-Count", total.to_string()));
    }
    let next_offset = offset.saturating_add(limit);
    if next_offset < total {
        let (path, link_offset) = match state.faults.link() {
            LinkFault::None => (req.path().to_owned(), next_offset),
            LinkFault::Loop => (req.path().to_owned(), offset),
            LinkFault::NotFound => (format!("/ocpi/{}/no-such-page", state.version.as_str()), next_offset),
        };
        let mut url = format!("{}{}?offset={}&limit={}", state.base_url, path, link_offset, limit);
        if let Some(from) = window.from {
            url.push_str(&format!("&date_from={}", link_datetime(from)));
        }
        if let Some(to) = window.to {
            url.push_str(&format!("&date_to={}", link_datetime(to)));
        }
        response.insert_header(("Link", format!("<{url}>; rel=\"next\"")));
    }
    Ok(response.json(Envelope::ok(data)))
}

/// A window bound as it goes into a `next` link: UTC with `Z` (no `+` to escape), keeping the
/// client's sub-second precision so the window does not move between pages.
fn link_datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
