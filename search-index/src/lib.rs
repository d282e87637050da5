//! In-memory charge point search (issue 3): geographic, text and filtered queries over live EVSE
//! status, map clusters, signed pagination cursors. Knows nothing of HTTP or SQL.

mod cluster;
mod cursor;
mod error;
mod hash;
mod index;
mod lookup;
mod query;
mod record;
mod search;
mod sphere;
mod text;

pub use cluster::{Cluster, ClusterQuery, MAX_ZOOM, MapFeature, PYRAMID_MAX_ZOOM};
pub use error::{ChangeError, CursorError, RejectReason, SearchError};
pub use index::{
    BulkLoadReport, ChangeOutcome, DEFAULT_CURSOR_TTL_S, IndexChange, IndexStats, SearchIndex, normalize_evse_id,
};
pub use query::{
    Area, Current, DEFAULT_PAGE_SIZE, Facets, Filters, MAX_CORRIDOR_DISTANCE_M, MAX_PAGE_SIZE, MAX_RADIUS_M,
    MAX_ROUTE_M, MAX_VERTICES, OpenAt, PowerBand, PriceOracle, Route, SearchHit, SearchPage, SearchQuery, SortBy,
    Viewer,
};
pub use record::{ConnectorView, EvseView, LocationSummary, LocationView};
pub use sphere::{decode_polyline, encode_polyline};
