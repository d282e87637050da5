//! Our versions endpoints: `GET /ocpi/versions` and `GET /ocpi/{version}`.
//!
//! Only modules that are implemented are listed: partners decide what to call from this list.

use actix_web::{HttpResponse, web};
use emsp_ocpi::StatusCode;
use serde::Serialize;

use crate::error::OcpiError;
use crate::transport::{OcpiRequest, Roaming};

/// The versions we speak, newest first.
pub const SUPPORTED: [&str; 2] = ["2.2.1", "2.1.1"];

/// Modules we implement with our role in them (OCPI 2.2.1 `InterfaceRole`).
const MODULES: &[(&str, &str)] = &[
    ("cdrs", "RECEIVER"),
    ("commands", "SENDER"),
    ("credentials", "RECEIVER"),
    ("credentials", "SENDER"),
    ("locations", "RECEIVER"),
    ("sessions", "RECEIVER"),
    ("tariffs", "RECEIVER"),
    ("tokens", "SENDER"),
];

#[derive(Debug, Serialize)]
struct Version {
    version: &'static str,
    url: String,
}

#[derive(Debug, Serialize)]
struct Endpoint {
    identifier: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    url: String,
}

#[derive(Debug, Serialize)]
struct VersionDetails {
    version: &'static str,
    endpoints: Vec<Endpoint>,
}

/// `GET /ocpi/versions`.
pub async fn list(roaming: web::Data<Roaming>, req: OcpiRequest) -> HttpResponse {
    let versions: Vec<Version> =
        SUPPORTED.iter().map(|version| Version { version, url: roaming.config.version_url(version) }).collect();
    req.ok(versions)
}

/// `GET /ocpi/{version}`.
pub async fn details(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    version: web::Path<String>,
) -> Result<HttpResponse, OcpiError> {
    let Some(version) = SUPPORTED.iter().copied().find(|v| *v == version.as_str()) else {
        return Err(OcpiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            StatusCode::UNSUPPORTED_VERSION,
            format!("version {version} is not supported; see /ocpi/versions"),
        ));
    };
    let base = roaming.config.version_url(version);
    let endpoints = if version == "2.1.1" {
        let mut seen = Vec::new();
        MODULES
            .iter()
            .filter(|(identifier, _)| {
                let first = !seen.contains(identifier);
                seen.push(*identifier);
                first
            })
            .map(|(identifier, _)| Endpoint { identifier, role: None, url: format!("{base}/{identifier}") })
            .collect()
    } else {
        MODULES
            .iter()
            .map(|(identifier, role)| Endpoint { identifier, role: Some(role), url: format!("{base}/{identifier}") })
            .collect()
    };
    Ok(req.ok(VersionDetails { version, endpoints }))
}
