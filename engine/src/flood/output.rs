//! Flood outputs for planners: `gauges.csv` and GeoTIFF rasters (max depth, max velocity, hazard) that QGIS
//! opens. The rasters are in the city's local frame, described with user-defined GeoTIFF keys as a
//! transverse Mercator projection (WGS84, scale 1, origin at the city origin): GeoTIFF 1.1 (OGC 19-008r4)
//! keys 1024–3092. Cells outside the terrain and inside buildings are NaN (GDAL_NODATA "nan").

use super::grid::FloodGrid;
use super::plugin::FloodState;
use crate::geo::LocalFrame;
use crate::sim::format_number;
use std::fmt::Write as _;
use tiff::encoder::{colortype::Gray32Float, TiffEncoder};
use tiff::tags::Tag;

/// `gauges.csv`: `time_s,gauge,depth_m,level_m`, one row per gauge per observation.
pub fn gauges_csv(state: &FloodState) -> String {
    let mut out = String::from("time_s,gauge,depth_m,level_m\n");
    for &(t, g, depth, level) in &state.gauge_rows {
        let name = &state.settings.gauges[g].name;
        let _ = writeln!(out, "{},{},{},{}", format_number(t as f64 / 1000.0), name, depth as f32, level as f32);
    }
    out
}

/// GeoKey ids and codes used (GeoTIFF 1.1).
mod key {
    pub const MODEL_TYPE: u16 = 1024;
    pub const RASTER_TYPE: u16 = 1025;
    pub const GEOGRAPHIC_TYPE: u16 = 2048;
    pub const PROJECTED_CS_TYPE: u16 = 3072;
    pub const PROJECTION: u16 = 3074;
    pub const COORD_TRANS: u16 = 3075;
    pub const LINEAR_UNITS: u16 = 3076;
    pub const NAT_ORIGIN_LONG: u16 = 3080;
    pub const NAT_ORIGIN_LAT: u16 = 3081;
    pub const FALSE_EASTING: u16 = 3082;
    pub const FALSE_NORTHING: u16 = 3083;
    pub const SCALE_AT_NAT_ORIGIN: u16 = 3092;
    pub const MODEL_PROJECTED: u16 = 1;
    pub const PIXEL_IS_AREA: u16 = 1;
    pub const WGS84: u16 = 4326;
    pub const USER_DEFINED: u16 = 32767;
    pub const TRANSVERSE_MERCATOR: u16 = 1;
    pub const METRE: u16 = 9001;
    pub const DOUBLE_PARAMS_TAG: u16 = 34736;
}

/// A single-band f32 GeoTIFF of `values` (one per grid cell, rows from the south) in the local frame.
pub fn geotiff(grid: &FloodGrid, frame: &LocalFrame, values: &[f32]) -> Vec<u8> {
    let (nx, ny) = (grid.nx, grid.ny);
    // TIFF rows run from the north; blocked cells are nodata.
    let mut data = Vec::with_capacity(nx * ny);
    for row in (0..ny).rev() {
        for i in 0..nx {
            let c = row * nx + i;
            data.push(if grid.is_blocked(c) { f32::NAN } else { values[c] });
        }
    }
    let (lon0, lat0) = frame.origin_lon_lat();
    let cell = grid.cell_m as f64;
    let north = grid.origin.y as f64 + ny as f64 * cell;
    let keys: Vec<u16> = {
        use key::*;
        let mut k = vec![1, 1, 0, 0];
        let entries: [(u16, u16, u16, u16); 12] = [
            (MODEL_TYPE, 0, 1, MODEL_PROJECTED),
            (RASTER_TYPE, 0, 1, PIXEL_IS_AREA),
            (GEOGRAPHIC_TYPE, 0, 1, WGS84),
            (PROJECTED_CS_TYPE, 0, 1, USER_DEFINED),
            (PROJECTION, 0, 1, USER_DEFINED),
            (COORD_TRANS, 0, 1, TRANSVERSE_MERCATOR),
            (LINEAR_UNITS, 0, 1, METRE),
            (NAT_ORIGIN_LONG, DOUBLE_PARAMS_TAG, 1, 0),
            (NAT_ORIGIN_LAT, DOUBLE_PARAMS_TAG, 1, 1),
            (FALSE_EASTING, DOUBLE_PARAMS_TAG, 1, 2),
            (FALSE_NORTHING, DOUBLE_PARAMS_TAG, 1, 3),
            (SCALE_AT_NAT_ORIGIN, DOUBLE_PARAMS_TAG, 1, 4),
        ];
        k[3] = entries.len() as u16;
        for (id, loc, count, value) in entries {
            k.extend([id, loc, count, value]);
        }
        k
    };
    let doubles = [lon0, lat0, 0.0, 0.0, 1.0];
    let mut bytes = std::io::Cursor::new(Vec::new());
    let result = (|| -> tiff::TiffResult<()> {
        let mut enc = TiffEncoder::new(&mut bytes)?;
        let mut image = enc.new_image::<Gray32Float>(nx as u32, ny as u32)?;
        let e = image.encoder();
        e.write_tag(Tag::ModelPixelScaleTag, &[cell, cell, 0.0][..])?;
        e.write_tag(Tag::ModelTiepointTag, &[0.0, 0.0, 0.0, grid.origin.x as f64, north, 0.0][..])?;
        e.write_tag(Tag::GeoKeyDirectoryTag, &keys[..])?;
        e.write_tag(Tag::GeoDoubleParamsTag, &doubles[..])?;
        e.write_tag(Tag::GdalNodata, "nan")?;
        image.write_data(&data)
    })();
    // Encoding into memory only fails on sizes TIFF cannot hold (over 4 GiB), which a flood grid capped
    // at 10^8 cells never reaches.
    result.expect("a flood raster always encodes");
    bytes.into_inner()
}
