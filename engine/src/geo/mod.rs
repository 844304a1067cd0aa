//! Coordinates: the city's local metric frame and the projections into it.
//!
//! Every city has one local frame: a transverse Mercator projection (WGS84 ellipsoid, scale 1) centred on the
//! city's origin, so `x` is metres east and `y` metres north of that origin with a scale error under 1e-5
//! within 10 km. File coordinates arrive in WGS84 longitude/latitude (OSM, GeoJSON) or in a projected CRS
//! (UTM zones in GeoTIFF terrain); [`Crs`] names them and [`LocalFrame`] converts both ways. The projection
//! arithmetic is the `proj4rs` crate (a Rust port of PROJ's formulas); this module only chooses the CRS
//! definitions. Planar geometry helpers on the local frame live in [`shapes`].

pub mod shapes;

use proj4rs::proj::Proj;
use serde::{Deserialize, Serialize};
use std::fmt;

pub use glam::Vec2;

/// A coordinate reference system Machi reads from files.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Crs {
    /// Geographic WGS84, longitude/latitude in degrees (EPSG:4326, axis order lon, lat as in GeoJSON).
    Wgs84,
    /// Universal Transverse Mercator on WGS84: `zone` 1–60, `south` for the southern hemisphere
    /// (EPSG:326zz north, 327zz south). Coordinates in metres.
    Utm {
        /// UTM zone, 1–60.
        zone: u8,
        /// Southern hemisphere (false northing 10 000 km).
        south: bool,
    },
}

impl Crs {
    /// The CRS for an EPSG code Machi understands (4326, 32601–32660, 32701–32760).
    pub fn from_epsg(code: u32) -> Option<Crs> {
        match code {
            4326 => Some(Crs::Wgs84),
            32601..=32660 => Some(Crs::Utm { zone: (code - 32600) as u8, south: false }),
            32701..=32760 => Some(Crs::Utm { zone: (code - 32700) as u8, south: true }),
            _ => None,
        }
    }

    /// Parses `EPSG:32631`, `epsg:4326`, `UTM31N`, `UTM 55S` or `WGS84`.
    pub fn parse(text: &str) -> Option<Crs> {
        let t = text.trim().to_ascii_uppercase().replace(' ', "");
        if t == "WGS84" {
            return Some(Crs::Wgs84);
        }
        if let Some(code) = t.strip_prefix("EPSG:") {
            return code.parse().ok().and_then(Crs::from_epsg);
        }
        let rest = t.strip_prefix("UTM")?;
        let (zone, hemi) = rest.split_at(rest.len().checked_sub(1)?);
        let zone: u8 = zone.parse().ok()?;
        if !(1..=60).contains(&zone) {
            return None;
        }
        match hemi {
            "N" => Some(Crs::Utm { zone, south: false }),
            "S" => Some(Crs::Utm { zone, south: true }),
            _ => None,
        }
    }

    /// The EPSG code of this CRS.
    pub fn epsg(&self) -> u32 {
        match *self {
            Crs::Wgs84 => 4326,
            Crs::Utm { zone, south: false } => 32600 + zone as u32,
            Crs::Utm { zone, south: true } => 32700 + zone as u32,
        }
    }

    fn proj_string(&self) -> String {
        match *self {
            Crs::Wgs84 => "+proj=longlat +ellps=WGS84 +datum=WGS84 +no_defs".to_string(),
            Crs::Utm { zone, south } => format!(
                "+proj=utm +zone={zone}{} +ellps=WGS84 +datum=WGS84 +units=m +no_defs",
                if south { " +south" } else { "" }
            ),
        }
    }

    /// Converts a coordinate in this CRS to WGS84 (lon, lat) in degrees.
    pub fn to_lon_lat(&self, x: f64, y: f64) -> Result<(f64, f64), ProjectionError> {
        let err = |reason: String| ProjectionError { crs: *self, x, y, reason };
        if !(x.is_finite() && y.is_finite()) {
            return Err(err("not a finite number".into()));
        }
        match self {
            Crs::Wgs84 => Ok((x, y)),
            _ => {
                let (lon, lat) = proj4rs::adaptors::transform_vertex_2d(&self.proj(), &Crs::Wgs84.proj(), (x, y))
                    .map_err(|e| err(e.to_string()))?;
                Ok((lon.to_degrees(), lat.to_degrees()))
            }
        }
    }

    fn proj(&self) -> Proj {
        Proj::from_proj_string(&self.proj_string()).expect("Machi's own CRS definitions are valid PROJ strings")
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EPSG:{}", self.epsg())
    }
}

/// Error from a coordinate transform (a point outside the projection's domain).
#[derive(Debug, thiserror::Error)]
#[error("cannot project ({x}, {y}) from {crs}: {reason}")]
pub struct ProjectionError {
    /// The CRS of the input coordinates.
    pub crs: Crs,
    /// First input coordinate.
    pub x: f64,
    /// Second input coordinate.
    pub y: f64,
    /// What the projection library said.
    pub reason: String,
}

/// The city's local metric frame: transverse Mercator centred on `origin_lon_lat`.
pub struct LocalFrame {
    origin_lon_lat: (f64, f64),
    local_definition: String,
    local: Proj,
    wgs84: Proj,
}

impl Clone for LocalFrame {
    fn clone(&self) -> Self {
        LocalFrame::new(self.origin_lon_lat.0, self.origin_lon_lat.1)
    }
}

impl fmt::Debug for LocalFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFrame").field("origin_lon_lat", &self.origin_lon_lat).finish()
    }
}

impl LocalFrame {
    /// A frame whose (0, 0) is at longitude `lon`, latitude `lat` (degrees, WGS84).
    pub fn new(lon: f64, lat: f64) -> LocalFrame {
        let local_definition = format!(
            "+proj=tmerc +lat_0={lat} +lon_0={lon} +k_0=1 +x_0=0 +y_0=0 +ellps=WGS84 +datum=WGS84 +units=m +no_defs"
        );
        let local = Proj::from_proj_string(&local_definition)
            .expect("a transverse Mercator definition from finite degrees is valid");
        LocalFrame { origin_lon_lat: (lon, lat), local_definition, local, wgs84: Crs::Wgs84.proj() }
    }

    /// Origin of the frame, (longitude, latitude) in degrees.
    pub fn origin_lon_lat(&self) -> (f64, f64) {
        self.origin_lon_lat
    }

    /// WGS84 (lon, lat) in degrees → local (x east, y north) in metres.
    pub fn from_lon_lat(&self, lon: f64, lat: f64) -> Result<(f64, f64), ProjectionError> {
        let err = |reason: String| ProjectionError { crs: Crs::Wgs84, x: lon, y: lat, reason };
        if !(lon.is_finite() && lat.is_finite() && (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)) {
            return Err(err("longitude/latitude out of range".into()));
        }
        proj4rs::adaptors::transform_vertex_2d(&self.wgs84, &self.local, (lon.to_radians(), lat.to_radians()))
            .map_err(|e| err(e.to_string()))
    }

    /// Local (x, y) in metres → WGS84 (lon, lat) in degrees.
    pub fn to_lon_lat(&self, x: f64, y: f64) -> Result<(f64, f64), ProjectionError> {
        let (lon, lat) = proj4rs::adaptors::transform_vertex_2d(&self.local, &self.wgs84, (x, y)).map_err(|e| {
            ProjectionError { crs: Crs::Wgs84, x, y, reason: format!("inverse from the local frame: {e}") }
        })?;
        Ok((lon.to_degrees(), lat.to_degrees()))
    }

    /// A converter from `crs` into this frame (built once, used for many points).
    pub fn projector(&self, crs: Crs) -> Projector {
        let dst = Proj::from_proj_string(&self.local_definition).expect("the frame's definition parsed before");
        Projector { crs, src: crs.proj(), dst }
    }
}

/// Converts points from one file CRS into a city's local frame, and back.
pub struct Projector {
    crs: Crs,
    src: Proj,
    dst: Proj,
}

impl Projector {
    /// The source CRS.
    pub fn crs(&self) -> Crs {
        self.crs
    }

    /// Source coordinates (degrees for WGS84, metres for UTM) → local metres.
    pub fn to_local(&self, x: f64, y: f64) -> Result<(f64, f64), ProjectionError> {
        let input = match self.crs {
            Crs::Wgs84 => (x.to_radians(), y.to_radians()),
            Crs::Utm { .. } => (x, y),
        };
        if !(x.is_finite() && y.is_finite()) {
            return Err(ProjectionError { crs: self.crs, x, y, reason: "not a finite number".into() });
        }
        proj4rs::adaptors::transform_vertex_2d(&self.src, &self.dst, input).map_err(|e| ProjectionError {
            crs: self.crs,
            x,
            y,
            reason: e.to_string(),
        })
    }

    /// Local metres → source coordinates (degrees for WGS84, metres for UTM).
    pub fn from_local(&self, x: f64, y: f64) -> Result<(f64, f64), ProjectionError> {
        let (a, b) = proj4rs::adaptors::transform_vertex_2d(&self.dst, &self.src, (x, y))
            .map_err(|e| ProjectionError { crs: self.crs, x, y, reason: e.to_string() })?;
        Ok(match self.crs {
            Crs::Wgs84 => (a.to_degrees(), b.to_degrees()),
            Crs::Utm { .. } => (a, b),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crs_names() {
        assert_eq!(Crs::parse("EPSG:32631"), Some(Crs::Utm { zone: 31, south: false }));
        assert_eq!(Crs::parse("utm 55s"), Some(Crs::Utm { zone: 55, south: true }));
        assert_eq!(Crs::parse("wgs84"), Some(Crs::Wgs84));
        assert_eq!(Crs::parse("UTM61N"), None);
        assert_eq!(Crs::parse("EPSG:2154"), None);
        assert_eq!(Crs::Utm { zone: 55, south: true }.epsg(), 32755);
    }

    #[test]
    fn local_frame_round_trips_and_measures_metres() {
        let frame = LocalFrame::new(1.52, 42.51);
        let (x, y) = frame.from_lon_lat(1.52, 42.51).unwrap();
        assert!(x.abs() < 1e-6 && y.abs() < 1e-6);
        // One arc-minute of latitude is about 1852 m (1 nautical mile); at 42.5°N it is 1851.6 m on WGS84.
        let (_, y) = frame.from_lon_lat(1.52, 42.51 + 1.0 / 60.0).unwrap();
        assert!((y - 1851.6).abs() < 2.0, "{y}");
        let (lon, lat) = frame.to_lon_lat(1234.5, -987.25).unwrap();
        let (x, y) = frame.from_lon_lat(lon, lat).unwrap();
        assert!((x - 1234.5).abs() < 1e-6 && (y + 987.25).abs() < 1e-6);
    }

    #[test]
    fn utm_north_and_south_agree_with_known_points() {
        // Andorra la Vella's DEM corner and a point in Cairns (UTM 55S), each checked both ways.
        for (lon, lat, crs) in
            [(1.52, 42.507, Crs::Utm { zone: 31, south: false }), (145.77, -16.92, Crs::Utm { zone: 55, south: true })]
        {
            let frame = LocalFrame::new(lon, lat);
            let p = frame.projector(crs);
            let (e, n) = p.from_local(0.0, 0.0).unwrap();
            let (x, y) = p.to_local(e, n).unwrap();
            assert!(x.abs() < 1e-5 && y.abs() < 1e-5, "{x} {y}");
            assert!((100_000.0..900_000.0).contains(&e), "easting {e}");
            if lat < 0.0 {
                assert!(n > 8_000_000.0, "southern false northing: {n}");
            }
        }
        // The central meridian of zone 31 is 3°E: a point on it has easting 500 000 m exactly.
        let frame = LocalFrame::new(3.0, 42.0);
        let (e, _) = frame.projector(Crs::Utm { zone: 31, south: false }).from_local(0.0, 0.0).unwrap();
        assert!((e - 500_000.0).abs() < 1e-3, "{e}");
    }
}
