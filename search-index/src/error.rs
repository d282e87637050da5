//! Errors of the search engine.
//!
//! Policy: every way a caller can get a query wrong is its own variant with the offending value, so
//! the API layer can answer with a clear message (GraphQL `BAD_USER_INPUT`) without parsing text.
//! None of these carries internal state worth hiding; all are the caller's input.

use emsp_domain::ValidationError;

/// A query the engine refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    #[error("{what}: invalid coordinates {latitude},{longitude}")]
    InvalidCoordinates { what: &'static str, latitude: f64, longitude: f64 },
    #[error("radius must be more than 0 and at most {max_m} m, got {radius_m}")]
    InvalidRadius { radius_m: f64, max_m: f64 },
    #[error("k must be 1 to {max}, got {k}")]
    InvalidK { k: usize, max: usize },
    #[error("invalid bounding box: {0}")]
    InvalidBoundingBox(&'static str),
    #[error("invalid polygon: {0}")]
    InvalidPolygon(&'static str),
    #[error("invalid polyline: {0}")]
    InvalidPolyline(String),
    #[error("corridor distance must be more than 0 and at most {max_m} m, got {distance_m}")]
    InvalidCorridorDistance { distance_m: f64, max_m: f64 },
    #[error("the route is longer than {max_m} m")]
    RouteTooLong { max_m: f64 },
    #[error("filtering or sorting by price needs a price function")]
    PriceUnavailable,
    #[error("page size must be 1 to {max}, got {size}")]
    InvalidPageSize { size: usize, max: usize },
    #[error("zoom must be 0 to {max}, got {zoom}")]
    InvalidZoom { zoom: u8, max: u8 },
    #[error("sorting by {0} needs an origin: a radius or nearest query, or an explicit origin")]
    SortNeedsOrigin(&'static str),
    #[error("sorting by route position needs a corridor query")]
    SortNeedsCorridor,
    #[error("invalid power range: min {min_kw} kW, max {max_kw} kW")]
    InvalidPowerRange { min_kw: f64, max_kw: f64 },
    #[error("the query text is empty or too long")]
    InvalidText,
    #[error("{0}")]
    Cursor(#[from] CursorError),
    #[error("unknown cluster id {0}")]
    UnknownCluster(u64),
}

/// Why a pagination cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is malformed")]
    Malformed,
    #[error("the cursor was not issued by this service")]
    Forged,
    #[error("the cursor has expired; start again from the first page")]
    Expired,
    #[error("the cursor belongs to a different query")]
    WrongQuery,
}

/// Why a location was not indexed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    #[error("missing or impossible coordinates: {0}")]
    Coordinates(ValidationError),
    #[error("invalid location: {0}")]
    Invalid(ValidationError),
    #[error("{evses} EVSEs or {connectors} connectors is more than one location can hold")]
    TooLarge { evses: usize, connectors: usize },
}

/// A change the index could not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("location {key} rejected: {reason}")]
    Rejected { key: String, reason: RejectReason },
    #[error("unknown location {0}")]
    UnknownLocation(String),
    #[error("location {location_key} has no EVSE {evse_uid}")]
    UnknownEvse { location_key: String, evse_uid: String },
    #[error("EVSE {evse_uid} of location {location_key} has no connector {connector_id}")]
    UnknownConnector { location_key: String, evse_uid: String, connector_id: String },
}
