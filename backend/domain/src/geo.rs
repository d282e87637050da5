//! Coordinates.

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A WGS 84 point in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

/// Mean Earth radius in metres (IUGG), used for great-circle distances.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

impl GeoPoint {
    /// A point with finite coordinates inside [-90, 90] x [-180, 180].
    pub fn new(latitude: f64, longitude: f64) -> Result<Self, ValidationError> {
        if !latitude.is_finite() || !(-90.0..=90.0).contains(&latitude) {
            return Err(ValidationError::new("latitude", format!("{latitude} is not within -90..90")));
        }
        if !longitude.is_finite() || !(-180.0..=180.0).contains(&longitude) {
            return Err(ValidationError::new("longitude", format!("{longitude} is not within -180..180")));
        }
        Ok(Self { latitude, longitude })
    }

    /// Checks a point that was built field by field (for instance by deserialisation).
    pub fn validate(&self) -> Result<(), ValidationError> {
        Self::new(self.latitude, self.longitude).map(|_| ())
    }

    /// Great-circle (haversine) distance in metres.
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.longitude - self.longitude).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_impossible_coordinates() {
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
        assert!(GeoPoint::new(91.0, 0.0).is_err());
        assert!(GeoPoint::new(0.0, 180.5).is_err());
        assert!(GeoPoint::new(52.37, 4.89).is_ok());
    }

    #[test]
    fn distance_across_the_antimeridian_is_short() {
        let west = GeoPoint::new(0.0, 179.9).unwrap();
        let east = GeoPoint::new(0.0, -179.9).unwrap();
        let d = west.distance_m(&east);
        assert!((d - 22_239.0).abs() < 50.0, "{d}");
    }

    #[test]
    fn amsterdam_to_paris() {
        let amsterdam = GeoPoint::new(52.3676, 4.9041).unwrap();
        let paris = GeoPoint::new(48.8566, 2.3522).unwrap();
        let km = amsterdam.distance_m(&paris) / 1000.0;
        assert!((km - 430.0).abs() < 5.0, "{km}");
    }
}
