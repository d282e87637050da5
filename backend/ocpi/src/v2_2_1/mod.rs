//! OCPI 2.2.1 objects (`mod_locations`, `mod_tariffs`, `mod_sessions`, `mod_cdrs`), also used to read
//! 2.2 and 2.3.0: their objects differ from 2.2.1 mostly by added fields, which these types ignore;
//! the one reshaped class, 2.3.0's `Price` (`before_taxes` + `taxes`), is read as well.
//!
//! Reading is lenient where real CPOs deviate harmlessly (see the crate's `lenient` helpers):
//! fields the specification requires but that we can fill in (`last_updated`, `format`,
//! `max_voltage`, ...) are `Option` here and the mapping decides, with a warning. Writing follows the
//! specification: [`locations::from_domain`] and [`tariffs::from_domain`] fill every required field.

pub mod cdrs;
pub mod locations;
pub mod sessions;
pub mod tariffs;
pub mod tokens;
