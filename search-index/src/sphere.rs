//! Geometry on the sphere: unit vectors, great-circle distances, boxes, polygons, routes, Web Mercator.
//!
//! Points are indexed as 3D unit vectors (ECEF on a unit sphere) rather than lon/lat. The straight
//! line (chord) between two unit vectors grows monotonically with their great-circle distance, so a
//! Euclidean R-tree answers radius and k-nearest queries exactly, with no seam at the antimeridian and
//! no distortion near the poles. Lon/lat boxes become 3D boxes that enclose them, refined exactly.

use emsp_domain::GeoPoint;
use emsp_domain::geo::EARTH_RADIUS_M;

use crate::error::SearchError;

/// A point on the unit sphere.
pub type Vec3 = [f64; 3];

pub fn unit_vector(latitude: f64, longitude: f64) -> Vec3 {
    let (lat, lon) = (latitude.to_radians(), longitude.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

pub fn dot(a: &Vec3, b: &Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: &Vec3, b: &Vec3) -> Vec3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn norm(a: &Vec3) -> f64 {
    dot(a, a).sqrt()
}

fn normalize(a: &Vec3) -> Option<Vec3> {
    let n = norm(a);
    (n > 1e-15).then(|| [a[0] / n, a[1] / n, a[2] / n])
}

/// Squared chord length between two unit vectors.
pub fn chord2(a: &Vec3, b: &Vec3) -> f64 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

/// Great-circle distance in metres for a squared chord length.
pub fn chord2_to_m(chord2: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * (chord2.sqrt() / 2.0).min(1.0).asin()
}

/// Squared chord length for a great-circle distance in metres.
pub fn m_to_chord2(metres: f64) -> f64 {
    let angle = (metres / EARTH_RADIUS_M).min(std::f64::consts::PI);
    let chord = 2.0 * (angle / 2.0).sin();
    chord * chord
}

/// Angle between two unit vectors in radians, accurate for tiny and near-antipodal angles.
fn angle(a: &Vec3, b: &Vec3) -> f64 {
    norm(&cross(a, b)).atan2(dot(a, b))
}

/// Great-circle distance in metres between two unit vectors.
#[cfg(test)]
pub fn distance_m(a: &Vec3, b: &Vec3) -> f64 {
    chord2_to_m(chord2(a, b))
}

pub fn check_point(point: &GeoPoint, what: &'static str) -> Result<(), SearchError> {
    if point.latitude.is_finite()
        && point.longitude.is_finite()
        && (-90.0..=90.0).contains(&point.latitude)
        && (-180.0..=180.0).contains(&point.longitude)
    {
        Ok(())
    } else {
        Err(SearchError::InvalidCoordinates { what, latitude: point.latitude, longitude: point.longitude })
    }
}

/// A lon/lat box that does not cross the antimeridian (`west <= east`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LonLatBox {
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
}

impl LonLatBox {
    pub fn contains(&self, latitude: f64, longitude: f64) -> bool {
        (self.south..=self.north).contains(&latitude) && (self.west..=self.east).contains(&longitude)
    }

    /// The smallest axis-aligned 3D box holding every unit vector of this lon/lat box.
    ///
    /// x = cos(lat)·cos(lon), with cos(lat) >= 0, so its extremes come from the extremes of each
    /// factor; the same holds for y with sin(lon). A small pad absorbs rounding.
    pub fn enclosing_3d(&self) -> (Vec3, Vec3) {
        let (s, n) = (self.south.to_radians(), self.north.to_radians());
        let (w, e) = (self.west.to_radians(), self.east.to_radians());
        let cos_lat_min = s.cos().min(n.cos());
        let cos_lat_max = if self.south <= 0.0 && self.north >= 0.0 { 1.0 } else { s.cos().max(n.cos()) };
        let contains_lon = |deg: f64| self.west <= deg && deg <= self.east;
        let mut cos_lon = (w.cos().min(e.cos()), w.cos().max(e.cos()));
        if contains_lon(0.0) {
            cos_lon.1 = 1.0;
        }
        if contains_lon(180.0) || contains_lon(-180.0) {
            cos_lon.0 = -1.0;
        }
        let mut sin_lon = (w.sin().min(e.sin()), w.sin().max(e.sin()));
        if contains_lon(90.0) {
            sin_lon.1 = 1.0;
        }
        if contains_lon(-90.0) {
            sin_lon.0 = -1.0;
        }
        let scale = |(low, high): (f64, f64)| {
            let min = if low < 0.0 { cos_lat_max * low } else { cos_lat_min * low };
            let max = if high > 0.0 { cos_lat_max * high } else { cos_lat_min * high };
            (min, max)
        };
        let (x, y) = (scale(cos_lon), scale(sin_lon));
        const PAD: f64 = 1e-9;
        ([x.0 - PAD, y.0 - PAD, s.sin() - PAD], [x.1 + PAD, y.1 + PAD, n.sin() + PAD])
    }
}

/// A validated bounding box, split in two when it crosses the antimeridian (`west > east`).
pub fn split_box(south: f64, west: f64, north: f64, east: f64) -> Result<Vec<LonLatBox>, SearchError> {
    for (value, limit) in [(south, 90.0), (north, 90.0), (west, 180.0), (east, 180.0)] {
        if !value.is_finite() || value.abs() > limit {
            return Err(SearchError::InvalidBoundingBox("coordinates must be finite, within -90..90 and -180..180"));
        }
    }
    if south > north {
        return Err(SearchError::InvalidBoundingBox("south is north of north"));
    }
    if south == north || west == east {
        return Err(SearchError::InvalidBoundingBox("the box is empty"));
    }
    if west < east {
        return Ok(vec![LonLatBox { south, west, north, east }]);
    }
    Ok(vec![LonLatBox { south, west, north, east: 180.0 }, LonLatBox { south, west: -180.0, north, east }])
}

/// Whether a point lies inside a polygon, by ray casting in the lon/lat plane.
pub fn polygon_contains(ring: &[GeoPoint], latitude: f64, longitude: f64) -> bool {
    let mut inside = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let (a, b) = (&ring[i], &ring[j]);
        if (a.latitude > latitude) != (b.latitude > latitude) {
            let t = (latitude - a.latitude) / (b.latitude - a.latitude);
            if longitude < a.longitude + t * (b.longitude - a.longitude) {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// Decodes a Google encoded polyline (precision 5).
pub fn decode_polyline(encoded: &str) -> Result<Vec<GeoPoint>, SearchError> {
    let bytes = encoded.as_bytes();
    let mut index = 0;
    let mut values = [0i64; 2];
    let mut points = Vec::new();
    while index < bytes.len() {
        for value in &mut values {
            let mut shift = 0;
            let mut result: i64 = 0;
            loop {
                let Some(&byte) = bytes.get(index) else {
                    return Err(SearchError::InvalidPolyline(format!("truncated at byte {index}")));
                };
                if !(63..=126).contains(&byte) {
                    return Err(SearchError::InvalidPolyline(format!("invalid character at byte {index}")));
                }
                index += 1;
                let chunk = i64::from(byte - 63);
                result |= (chunk & 0x1f) << shift;
                shift += 5;
                if chunk < 0x20 {
                    break;
                }
                if shift > 35 {
                    return Err(SearchError::InvalidPolyline(format!("value too long at byte {index}")));
                }
            }
            *value += if result & 1 == 1 { !(result >> 1) } else { result >> 1 };
        }
        let point = GeoPoint { latitude: values[0] as f64 / 1e5, longitude: values[1] as f64 / 1e5 };
        if check_point(&point, "polyline point").is_err() {
            return Err(SearchError::InvalidPolyline(format!("point {} is out of range", points.len())));
        }
        points.push(point);
    }
    Ok(points)
}

/// Encodes points as a Google polyline (precision 5); the inverse of [`decode_polyline`].
pub fn encode_polyline(points: &[GeoPoint]) -> String {
    let mut out = String::new();
    let mut previous = [0i64; 2];
    for point in points {
        let current = [(point.latitude * 1e5).round() as i64, (point.longitude * 1e5).round() as i64];
        for axis in 0..2 {
            let delta = current[axis] - previous[axis];
            let mut value = if delta < 0 { !(delta << 1) } else { delta << 1 };
            while value >= 0x20 {
                out.push(char::from((0x20 | (value & 0x1f)) as u8 + 63));
                value >>= 5;
            }
            out.push(char::from(value as u8 + 63));
        }
        previous = current;
    }
    out
}

/// One great-circle segment of a route, with its offset from the route start.
#[derive(Debug, Clone)]
pub struct Segment {
    pub a: Vec3,
    pub b: Vec3,
    /// Unit normal of the plane through a and b; `None` for a zero-length segment.
    normal: Option<Vec3>,
    pub start_m: f64,
    pub length_m: f64,
}

impl Segment {
    pub fn new(a: Vec3, b: Vec3, start_m: f64) -> Self {
        let normal = normalize(&cross(&a, &b));
        Self { a, b, normal, start_m, length_m: angle(&a, &b) * EARTH_RADIUS_M }
    }

    /// Unit normal of the segment's great-circle plane; `None` for a zero-length segment.
    pub fn normal(&self) -> Option<Vec3> {
        self.normal
    }

    /// Distance of `p` from the segment and the position of its closest point along the route.
    pub fn distance_and_offset(&self, p: &Vec3) -> (f64, f64) {
        let to_a = angle(p, &self.a) * EARTH_RADIUS_M;
        let to_b = angle(p, &self.b) * EARTH_RADIUS_M;
        let endpoint = if to_a <= to_b { (to_a, self.start_m) } else { (to_b, self.start_m + self.length_m) };
        let Some(n) = self.normal else {
            return endpoint;
        };
        let off_plane = dot(p, &n);
        let projected = [p[0] - off_plane * n[0], p[1] - off_plane * n[1], p[2] - off_plane * n[2]];
        let Some(foot) = normalize(&projected) else {
            return endpoint;
        };
        // The foot lies on the segment when it is on the a->b side of a and the b<-a side of b.
        if dot(&cross(&self.a, &foot), &n) >= 0.0 && dot(&cross(&foot, &self.b), &n) >= 0.0 {
            let cross_track = off_plane.clamp(-1.0, 1.0).asin().abs() * EARTH_RADIUS_M;
            let along = angle(&self.a, &foot) * EARTH_RADIUS_M;
            return (cross_track, self.start_m + along);
        }
        endpoint
    }
}

/// Splits a route into segments no longer than `max_len_m`, interpolating along great circles.
pub fn route_segments(points: &[GeoPoint], max_len_m: f64) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut offset = 0.0;
    for pair in points.windows(2) {
        let a = unit_vector(pair[0].latitude, pair[0].longitude);
        let b = unit_vector(pair[1].latitude, pair[1].longitude);
        let total = angle(&a, &b);
        let pieces = ((total * EARTH_RADIUS_M / max_len_m).ceil() as usize).max(1);
        let mut previous = a;
        for piece in 1..=pieces {
            let next = if piece == pieces { b } else { slerp(&a, &b, total, piece as f64 / pieces as f64) };
            let segment = Segment::new(previous, next, offset);
            offset += segment.length_m;
            segments.push(segment);
            previous = next;
        }
    }
    segments
}

fn slerp(a: &Vec3, b: &Vec3, total: f64, t: f64) -> Vec3 {
    let sin_total = total.sin();
    if sin_total.abs() < 1e-12 {
        return *a;
    }
    let (wa, wb) = (((1.0 - t) * total).sin() / sin_total, (t * total).sin() / sin_total);
    let v = [wa * a[0] + wb * b[0], wa * a[1] + wb * b[1], wa * a[2] + wb * b[2]];
    normalize(&v).unwrap_or(*a)
}

/// Web Mercator position scaled to the full u32 range on both axes (the world at zoom 32).
pub fn mercator(latitude: f64, longitude: f64) -> (u32, u32) {
    const MAX_LAT: f64 = 85.051_128_779_806_59;
    let lat = latitude.clamp(-MAX_LAT, MAX_LAT).to_radians();
    let x = (longitude + 180.0) / 360.0;
    let y = 0.5 - (lat.tan() + 1.0 / lat.cos()).ln() / (2.0 * std::f64::consts::PI);
    let scale = |v: f64| (v.clamp(0.0, 1.0) * 4_294_967_296.0).min(4_294_967_295.0) as u32;
    (scale(x), scale(y))
}

/// Inverse of [`mercator`] for fractional world coordinates in 0..1.
pub fn unmercator(x: f64, y: f64) -> GeoPoint {
    let longitude = x * 360.0 - 180.0;
    let n = std::f64::consts::PI * (1.0 - 2.0 * y);
    let latitude = n.sinh().atan().to_degrees();
    GeoPoint { latitude, longitude }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(latitude: f64, longitude: f64) -> GeoPoint {
        GeoPoint { latitude, longitude }
    }

    #[test]
    fn chord_distance_matches_haversine() {
        let (a, b) = (p(52.3676, 4.9041), p(48.8566, 2.3522));
        let ours = distance_m(&unit_vector(a.latitude, a.longitude), &unit_vector(b.latitude, b.longitude));
        assert!((ours - a.distance_m(&b)).abs() < 0.01, "{ours}");
        assert!((chord2_to_m(m_to_chord2(5_000.0)) - 5_000.0).abs() < 1e-6);
    }

    #[test]
    fn boxes_enclose_their_points_even_across_the_antimeridian() {
        let boxes = split_box(-10.0, 170.0, 10.0, -170.0).unwrap();
        assert_eq!(boxes.len(), 2);
        for (lat, lon) in [(0.0, 179.9), (5.0, -179.0), (-10.0, 170.0), (9.9, -170.0)] {
            let v = unit_vector(lat, lon);
            let inside = boxes.iter().any(|b| {
                let (lo, hi) = b.enclosing_3d();
                b.contains(lat, lon) && (0..3).all(|i| lo[i] <= v[i] && v[i] <= hi[i])
            });
            assert!(inside, "{lat},{lon}");
        }
        assert!(split_box(10.0, 0.0, -10.0, 5.0).is_err());
        assert!(split_box(10.0, 5.0, 10.0, 6.0).is_err());
        assert!(split_box(f64::NAN, 5.0, 10.0, 6.0).is_err());
    }

    #[test]
    fn polyline_round_trip_and_google_example() {
        // The example of Google's documentation.
        let points = decode_polyline("_p~iF~ps|U_ulLnnqC_mqNvxq`@").unwrap();
        assert_eq!(points.len(), 3);
        assert!((points[0].latitude - 38.5).abs() < 1e-9 && (points[0].longitude + 120.2).abs() < 1e-9);
        assert!((points[2].latitude - 43.252).abs() < 1e-9 && (points[2].longitude + 126.453).abs() < 1e-9);
        assert_eq!(encode_polyline(&points), "_p~iF~ps|U_ulLnnqC_mqNvxq`@");
        assert!(decode_polyline("_p~iF~ps|U_").is_err());
        assert!(decode_polyline("abc def").is_err());
    }

    #[test]
    fn segment_distance_is_cross_track_inside_and_endpoint_outside() {
        let segments = route_segments(&[p(0.0, 0.0), p(0.0, 1.0)], 1e9);
        let seg = &segments[0];
        let (d, along) = seg.distance_and_offset(&unit_vector(0.01, 0.5));
        assert!((d - 1_111.95).abs() < 1.0, "{d}");
        assert!((along - 55_597.5).abs() < 5.0, "{along}");
        let (d, along) = seg.distance_and_offset(&unit_vector(0.0, -0.01));
        assert!((d - 1_111.95).abs() < 1.0 && along == 0.0, "{d} {along}");
        let pieces = route_segments(&[p(0.0, 0.0), p(0.0, 1.0)], 10_000.0);
        assert_eq!(pieces.len(), 12);
        let total: f64 = pieces.iter().map(|s| s.length_m).sum();
        assert!((total - seg.length_m).abs() < 1e-3);
    }

    #[test]
    fn mercator_round_trip() {
        let (x, y) = mercator(52.37, 4.89);
        let back = unmercator(f64::from(x) / 4_294_967_296.0, f64::from(y) / 4_294_967_296.0);
        assert!((back.latitude - 52.37).abs() < 1e-6 && (back.longitude - 4.89).abs() < 1e-6);
    }

    #[test]
    fn polygon_contains_points_inside_only() {
        let square = [p(0.0, 0.0), p(0.0, 1.0), p(1.0, 1.0), p(1.0, 0.0)];
        assert!(polygon_contains(&square, 0.5, 0.5));
        assert!(!polygon_contains(&square, 1.5, 0.5));
    }
}
