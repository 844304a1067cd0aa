//! Importers: real city files → the pieces a [`crate::city::City`] is built from.
//!
//! Each importer reads one file format with a well-kept crate (osmpbf, geojson, tiff) and hands WGS84
//! features to a [`crate::city::CityBuilder`]; the interpretation of OpenStreetMap tags is shared in [`tags`].

pub mod geojson;
pub mod gtfs;
pub mod osm;
pub mod sumo;
pub mod tags;
pub mod terrain;

use crate::city::{City, CityBuilder};
use crate::error::{InputError, InputResult};
use crate::geo::Crs;
use crate::scenario::CitySection;
use std::path::Path;

/// What kind of city file a path is, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `.osm.pbf` / `.pbf`
    OsmPbf,
    /// `.geojson` / `.json`: buildings, streets or waterways, told apart by geometry and properties.
    GeoJson,
    /// `.tif` / `.tiff` / `.asc`
    Terrain,
}

/// The kind of a city file, or an error naming it.
pub fn file_kind(path: &Path) -> InputResult<FileKind> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if name.ends_with(".pbf") {
        Ok(FileKind::OsmPbf)
    } else if name.ends_with(".geojson") || name.ends_with(".json") {
        Ok(FileKind::GeoJson)
    } else if name.ends_with(".tif") || name.ends_with(".tiff") || name.ends_with(".asc") {
        Ok(FileKind::Terrain)
    } else {
        Err(InputError::file(path, "unknown file type: expected .osm.pbf, .geojson, .tif/.tiff or .asc"))
    }
}

/// Imports any list of city files (as `machi import` does) into one City.
pub fn load_files(
    name: &str,
    files: &[&Path],
    dem_crs: Option<Crs>,
    terrain_resolution_m: Option<f32>,
) -> InputResult<City> {
    let mut builder = CityBuilder::new(name, Default::default());
    for &f in files {
        match file_kind(f)? {
            FileKind::OsmPbf => osm::read_pbf(f, &mut builder)?,
            FileKind::GeoJson => geojson::read_any(f, &mut builder)?,
            FileKind::Terrain => builder.set_terrain(f, terrain::read_terrain(f, dem_crs)?, terrain_resolution_m),
        }
        builder.sources.push(f.to_path_buf());
    }
    builder.build()
}

/// Imports the City a scenario's `[city]` section names; `scenario_path` is named in errors about keys.
pub fn load_city(section: &CitySection, scenario_path: &Path) -> InputResult<City> {
    let mut builder = CityBuilder::new(section.name.clone(), section.defaults.clone());
    builder.origin_lon_lat = section.origin.map(|[lon, lat]| (lon, lat));
    type Reader = fn(&Path, &mut CityBuilder) -> InputResult<()>;
    let readers: [(&[std::path::PathBuf], Reader); 4] = [
        (&section.osm, osm::read_pbf),
        (&section.buildings, geojson::read_buildings),
        (&section.streets, geojson::read_streets),
        (&section.waterways, geojson::read_waterways),
    ];
    for (files, read) in readers {
        for f in files {
            read(f, &mut builder)?;
            builder.sources.push(f.clone());
        }
    }
    if let Some(feed_path) = &section.gtfs {
        let feed = gtfs::Feed::read(feed_path)?;
        feed.add_stops(&mut builder);
        if let Some(roads) = section.gtfs_roads {
            feed.shape_ways(roads, &mut builder);
        }
        builder.gtfs_feed = Some(feed_path.clone());
        builder.sources.push(feed_path.clone());
    }
    if let Some(net) = &section.sumo_net {
        builder.road_network = Some(sumo::read_net(net)?);
        builder.sources.push(net.clone());
    }
    if let Some(dem) = &section.dem {
        let crs =
            match &section.dem_crs {
                Some(text) => Some(Crs::parse(text).ok_or_else(|| {
                    InputError::new(scenario_path, "key city.dem_crs", format!("unknown CRS {text:?}"))
                })?),
                None => None,
            };
        let raster = terrain::read_terrain(dem, crs)?;
        builder.set_terrain(dem, raster, section.terrain_resolution_m);
    }
    builder.build()
}
