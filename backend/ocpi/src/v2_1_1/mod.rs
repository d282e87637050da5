//! OCPI 2.1.1 objects. What differs from 2.2.1 and why it matters for mapping:
//! - objects carry no `country_code`/`party_id`: the owning party is the partner we talk to, so the
//!   caller passes it in (or the feed layer derives it from an eMI3 id);
//! - a location has a `type` (with OTHER/UNKNOWN) instead of the optional `parking_type`, and no
//!   `publish`; connectors have `voltage`/`amperage` and a single `tariff_id`;
//! - tariffs have no VAT, no type, no min/max price and no current or reservation restrictions;
//! - a CDR has `stop_date_time`, `auth_id` (no token object), the whole `location`, a plain-number
//!   `total_cost` (excl. VAT) and `total_parking_time`.
//!
//! The classes that did not change (hours, images, business details, ...) are the 2.2.1 ones.

pub mod cdrs;
pub mod locations;
pub mod sessions;
pub mod tariffs;
pub mod tokens;
