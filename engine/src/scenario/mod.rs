//! Scenarios: TOML files that say which city to load and how to run it.
//!
//! A scenario file may `extends = "other.toml"` (a path relative to itself): the other file is loaded first
//! and this file's tables are merged over it key by key, so an intervention file lists only what changes.
//! After merging, the document is checked against [`ScenarioFile`] with `deny_unknown_fields`, so a typo is
//! an error naming the file and the key path. Units are in key names (`resolution_m`, `walk_max_m`) or in
//! the value (`duration = "24h"`, parsed by [`duration_ms`]). Paths in `[city]` are relative to the file
//! that wrote them.

pub mod check;
mod duration;

pub use duration::{duration_ms, format_duration};

use crate::error::{InputError, InputResult};
use crate::import::tags::TagDefaults;
use crate::population::PopulationParams;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The scenario document after `extends` is resolved.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Short name; the default output folder is `runs/<name>`.
    pub name: String,
    /// What the scenario is about, for people.
    #[serde(default)]
    pub description: String,
    /// Seed for every random draw of the run.
    #[serde(default)]
    pub seed: u64,
    /// Simulated duration, e.g. `"24h"`.
    pub duration: String,
    /// Simulated clock time at the start, e.g. `"00:00"` is midnight (default); `"6h"` starts at 06:00.
    #[serde(default)]
    pub start: Option<String>,
    /// Where the city's data comes from.
    pub city: CitySection,
    /// Synthetic population parameters.
    #[serde(default)]
    pub population: PopulationParams,
    /// Output intervals.
    #[serde(default)]
    pub output: OutputSection,
    /// Surface flooding; absent = no flood domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood: Option<crate::flood::plugin::FloodSection>,
    /// The mobility model (default: free flow).
    #[serde(default)]
    pub mobility: crate::mobility::traffic::MobilitySection,
    /// The electricity grid; absent = no grid domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<crate::grid::plugin::GridSection>,
    /// A delivery-robot fleet; absent = no robot domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robots: Option<crate::robots::plugin::RobotsSection>,
    /// Resolved from `extends`; not a key users write after resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
}

/// `[city]`: where the city's data comes from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CitySection {
    /// Display name of the city.
    pub name: String,
    /// OpenStreetMap PBF files (roads, footpaths, buildings, stops, waterways).
    #[serde(default)]
    pub osm: Vec<PathBuf>,
    /// GeoJSON building footprints.
    #[serde(default)]
    pub buildings: Vec<PathBuf>,
    /// GeoJSON street centre lines with OSM-style properties.
    #[serde(default)]
    pub streets: Vec<PathBuf>,
    /// GeoJSON watercourse centre lines.
    #[serde(default)]
    pub waterways: Vec<PathBuf>,
    /// Terrain model: GeoTIFF (`.tif`) or ESRI ASCII grid (`.asc`).
    #[serde(default)]
    pub dem: Option<PathBuf>,
    /// CRS of the terrain when the file does not say (`"EPSG:32631"`, `"UTM 31N"`).
    #[serde(default)]
    pub dem_crs: Option<String>,
    /// A SUMO network (`.net.xml`) as the road network, instead of roads from OSM or GeoJSON (its
    /// coordinates are taken as the local frame's).
    #[serde(default)]
    pub sumo_net: Option<PathBuf>,
    /// A GTFS feed (`.zip` or folder): its stops become the city's bus stops, and `[mobility.transit]` runs
    /// its buses.
    #[serde(default)]
    pub gtfs: Option<PathBuf>,
    /// Roads made from the GTFS feed's shapes (for a city known only from its bus network), with the
    /// class, speed limit and lanes they are given.
    #[serde(default)]
    pub gtfs_roads: Option<crate::import::gtfs::ShapeRoads>,
    /// Cell size (m) of the terrain grid in the local frame; default: the file's own cell size.
    #[serde(default)]
    pub terrain_resolution_m: Option<f32>,
    /// Origin of the local frame as [longitude°, latitude°]; default: centre of the vector data.
    #[serde(default)]
    pub origin: Option<[f64; 2]>,
    /// Overrides of the tag defaults (storey height, default floors, walking speed).
    #[serde(default)]
    pub defaults: TagDefaults,
}

/// `[output]`: what the run writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    /// Interval between replay frames, e.g. `"60s"`.
    pub frame_interval: String,
    /// Interval between time-series rows, e.g. `"15min"`.
    pub timeseries_interval: String,
    /// Interval between vehicle frames of the microscopic model, e.g. `"1s"` (SUMO's FCD output default).
    pub vehicle_frame_interval: String,
    /// Interval between frames of the sidewalk agents (delivery robots and the pedestrians among them),
    /// e.g. `"1s"`.
    pub sidewalk_frame_interval: String,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection {
            frame_interval: "60s".into(),
            timeseries_interval: "15min".into(),
            vehicle_frame_interval: "1s".into(),
            sidewalk_frame_interval: "1s".into(),
        }
    }
}

/// A loaded, validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The resolved, validated document.
    pub file: ScenarioFile,
    /// Simulated duration (ms).
    pub duration_ms: u64,
    /// Clock time of day at the start (ms after midnight).
    pub start_ms: u64,
    /// Replay frame interval (ms).
    pub frame_interval_ms: u64,
    /// Vehicle frame interval of the microscopic model (ms).
    pub vehicle_frame_interval_ms: u64,
    /// Frame interval of the sidewalk agents (ms).
    pub sidewalk_frame_interval_ms: u64,
    /// Time-series interval (ms).
    pub timeseries_interval_ms: u64,
    /// The resolved document as TOML text (what `machi inspect` prints; hashed into the replay header).
    pub resolved_toml: String,
}

/// Maximum depth of `extends` chains (a guard against cycles).
const MAX_EXTENDS_DEPTH: usize = 16;

fn load_table(path: &Path, depth: usize) -> InputResult<toml::Table> {
    if depth > MAX_EXTENDS_DEPTH {
        return Err(InputError::new(
            path,
            "key extends",
            format!("more than {MAX_EXTENDS_DEPTH} levels of extends (a cycle?)"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| InputError::io(path, e))?;
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let place = e.span().map(|s| line_col(&text, s.start)).unwrap_or_else(|| "file".into());
        InputError::new(path, place, e.message().to_string())
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    rebase_paths(&mut table, dir);
    let Some(parent) = table.remove("extends") else { return Ok(table) };
    let Some(parent) = parent.as_str() else {
        return Err(InputError::new(path, "key extends", "must be a string (a path to another scenario file)"));
    };
    let mut base = load_table(&dir.join(parent), depth + 1)?;
    merge(&mut base, table);
    Ok(base)
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    format!("line {line}, column {col}")
}

/// Makes file paths relative to the working directory, since each file's paths are relative to that file:
/// `[city]` data files, `[mobility] sumo_routes` and `routes`, `[flood] initial_depth` and `[[flood.inflows]]` hydrographs.
fn rebase_paths(table: &mut toml::Table, dir: &Path) {
    if let Some(toml::Value::Table(city)) = table.get_mut("city") {
        for key in ["osm", "buildings", "streets", "waterways", "dem", "sumo_net", "gtfs"] {
            match city.get_mut(key) {
                Some(toml::Value::String(s)) => *s = join(dir, s),
                Some(toml::Value::Array(items)) => {
                    for it in items {
                        if let toml::Value::String(s) = it {
                            *s = join(dir, s);
                        }
                    }
                }
                _ => {}
            }
        }
        // A single file is accepted where a list is expected.
        for key in ["osm", "buildings", "streets", "waterways"] {
            if let Some(v @ toml::Value::String(_)) = city.get_mut(key) {
                *v = toml::Value::Array(vec![v.clone()]);
            }
        }
    }
    if let Some(toml::Value::Table(mobility)) = table.get_mut("mobility") {
        for key in ["sumo_routes", "routes"] {
            if let Some(toml::Value::String(s)) = mobility.get_mut(key) {
                *s = join(dir, s);
            }
        }
        if let Some(toml::Value::Table(od)) = mobility.get_mut("od") {
            for key in ["zones", "matrix"] {
                if let Some(toml::Value::String(s)) = od.get_mut(key) {
                    *s = join(dir, s);
                }
            }
        }
    }
    if let Some(toml::Value::Table(flood)) = table.get_mut("flood") {
        if let Some(toml::Value::String(s)) = flood.get_mut("initial_depth") {
            *s = join(dir, s);
        }
        if let Some(toml::Value::Array(inflows)) = flood.get_mut("inflows") {
            for f in inflows {
                if let Some(toml::Value::String(s)) = f.get_mut("hydrograph") {
                    *s = join(dir, s);
                }
            }
        }
    }
}

fn join(dir: &Path, p: &str) -> String {
    let path = Path::new(p);
    if path.is_absolute() {
        p.to_string()
    } else {
        normalize(&dir.join(path)).to_string_lossy().into_owned()
    }
}

/// Removes `.` and `name/..` pairs lexically, so paths in errors and `inspect` read cleanly.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Merges `over` into `base`: tables recursively, everything else replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Scenario {
    /// Loads `path`, resolves `extends`, validates every key and value.
    pub fn load(path: &Path) -> InputResult<Scenario> {
        let table = load_table(path, 0)?;
        let resolved_toml = toml::to_string(&table).map_err(|e| InputError::file(path, e.to_string()))?;
        // serde_path_to_error names the key of a wrong value; for an unknown key it names the table, and
        // the key is found in the resolved text.
        let file: ScenarioFile = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let at = e.path().to_string();
            let message = e.inner().message().to_string();
            let key =
                unknown_key_path(&resolved_toml, &message).or_else(|| (at != ".").then_some(at)).unwrap_or_default();
            InputError::new(path, if key.is_empty() { "file".to_string() } else { format!("key {key}") }, message)
        })?;
        let dur = |key: &str, v: &str| duration_ms(v).map_err(|m| InputError::new(path, format!("key {key}"), m));
        let duration_ms = dur("duration", &file.duration)?;
        if duration_ms == 0 {
            return Err(InputError::new(path, "key duration", "must be longer than zero"));
        }
        let start_ms = match &file.start {
            Some(s) => dur("start", s)?,
            None => 0,
        };
        let frame_interval_ms = dur("output.frame_interval", &file.output.frame_interval)?;
        let timeseries_interval_ms = dur("output.timeseries_interval", &file.output.timeseries_interval)?;
        let vehicle_frame_interval_ms = dur("output.vehicle_frame_interval", &file.output.vehicle_frame_interval)?;
        let sidewalk_frame_interval_ms = dur("output.sidewalk_frame_interval", &file.output.sidewalk_frame_interval)?;
        for (key, v) in [
            ("output.frame_interval", frame_interval_ms),
            ("output.timeseries_interval", timeseries_interval_ms),
            ("output.vehicle_frame_interval", vehicle_frame_interval_ms),
            ("output.sidewalk_frame_interval", sidewalk_frame_interval_ms),
        ] {
            if v == 0 {
                return Err(InputError::new(path, format!("key {key}"), "must be longer than zero"));
            }
        }
        file.population.validate().map_err(|(key, m)| InputError::new(path, format!("key population.{key}"), m))?;
        if let Some(flood) = &file.flood {
            flood.validate().map_err(|(key, m)| InputError::new(path, format!("key flood.{key}"), m))?;
            if file.city.dem.is_none() {
                return Err(InputError::new(path, "key flood", "the flood domain needs a terrain: set [city] dem"));
            }
        }
        if let Some(grid) = &file.grid {
            grid.validate().map_err(|(key, m)| InputError::new(path, format!("key grid.{key}"), m))?;
        }
        if let Some(robots) = &file.robots {
            robots.validate().map_err(|(key, m)| InputError::new(path, format!("key robots.{key}"), m))?;
        }
        let c = &file.city;
        if c.osm.is_empty()
            && c.buildings.is_empty()
            && c.streets.is_empty()
            && c.sumo_net.is_none()
            && c.gtfs_roads.is_none()
        {
            return Err(InputError::new(
                path,
                "key city",
                "names no data: give `osm`, or `buildings` and `streets`, or a `sumo_net`, or `gtfs` with `gtfs_roads`",
            ));
        }
        if c.gtfs_roads.is_some() && c.gtfs.is_none() {
            return Err(InputError::new(
                path,
                "key city.gtfs_roads",
                "roads from GTFS shapes need a feed: set [city] gtfs",
            ));
        }
        if let Some(r) = &c.gtfs_roads {
            let checks = [
                crate::scenario::check::positive("speed_kmh", r.speed_kmh as f64),
                crate::scenario::check::positive("lanes", r.lanes as f64),
            ];
            for check in checks {
                check.map_err(|(key, m)| InputError::new(path, format!("key city.gtfs_roads.{key}"), m))?;
            }
        }
        if file.mobility.transit.is_some() && c.gtfs.is_none() && c.osm.is_empty() {
            return Err(InputError::new(
                path,
                "key mobility.transit",
                "buses need a timetable: set [city] gtfs, or an OpenStreetMap file (`osm`) that maps bus routes",
            ));
        }
        if file.mobility.sumo_routes.is_some() && c.sumo_net.is_none() {
            return Err(InputError::new(
                path,
                "key mobility.sumo_routes",
                "SUMO demand needs a SUMO network: set [city] sumo_net",
            ));
        }
        file.mobility.validate(path)?;
        if let Some(r) = c.terrain_resolution_m {
            if !(r.is_finite() && r > 0.0) {
                return Err(InputError::new(
                    path,
                    "key city.terrain_resolution_m",
                    "must be a positive number of metres",
                ));
            }
        }
        if let Some(crs) = &c.dem_crs {
            if crate::geo::Crs::parse(crs).is_none() {
                return Err(InputError::new(
                    path,
                    "key city.dem_crs",
                    format!("unknown CRS {crs:?}: use EPSG:4326, EPSG:326zz/327zz or \"UTM 31N\""),
                ));
            }
        }
        Ok(Scenario {
            path: path.to_path_buf(),
            file,
            duration_ms,
            start_ms,
            frame_interval_ms,
            timeseries_interval_ms,
            vehicle_frame_interval_ms,
            sidewalk_frame_interval_ms,
            resolved_toml,
        })
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.file.name
    }

    /// A stable 64-bit hash (FNV-1a) of the resolved scenario text, recorded in outputs and the replay.
    pub fn hash(&self) -> u64 {
        fnv1a(self.resolved_toml.as_bytes())
    }
}

/// FNV-1a, 64 bit (Fowler, Noll, Vo): a stable hash for identifying inputs (not for security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// For an "unknown field `x`" error, find the table path of `x` in the resolved text (first occurrence).
fn unknown_key_path(resolved: &str, message: &str) -> Option<String> {
    let field = message.strip_prefix("unknown field `")?.split('`').next()?;
    let mut table = String::new();
    for line in resolved.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            table = name.trim_matches(|c| c == '[' || c == ']').to_string();
        } else if t.split('=').next().map(str::trim) == Some(field) {
            return Some(if table.is_empty() { field.to_string() } else { format!("{table}.{field}") });
        }
    }
    Some(field.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const BASE: &str = r#"
name = "base"
seed = 7
duration = "24h"
[city]
name = "Test"
streets = "data/streets.geojson"
[population]
worker_share = 0.5
"#;

    #[test]
    fn extends_merges_and_rebases_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        write(dir.path(), "base.toml", BASE);
        let child = write(
            &dir.path().join("sub"),
            "child.toml",
            "extends = \"../base.toml\"\nname = \"child\"\n[population]\nworker_share = 0.6\n",
        );
        let s = Scenario::load(&child).unwrap();
        assert_eq!(s.name(), "child");
        assert_eq!(s.file.seed, 7);
        assert_eq!(s.file.population.worker_share, 0.6);
        assert_eq!(s.duration_ms, 86_400_000);
        assert_eq!(s.file.city.streets[0], dir.path().join("data/streets.geojson"));
        assert!(s.resolved_toml.contains("child"));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.toml", &BASE.replace("worker_share = 0.5", "worker_shares = 0.5"));
        let e = Scenario::load(&p).unwrap_err();
        assert_eq!(e.place, "key population.worker_shares", "{e}");
        let p = write(dir.path(), "b.toml", &BASE.replace("\"24h\"", "\"24 parsecs\""));
        let e = Scenario::load(&p).unwrap_err();
        assert_eq!(e.place, "key duration", "{e}");
        let p = write(dir.path(), "c.toml", &BASE.replace("worker_share = 0.5", "worker_share = 1.5"));
        assert_eq!(Scenario::load(&p).unwrap_err().place, "key population.worker_share");
        let p = write(dir.path(), "d.toml", "name = \n");
        assert!(Scenario::load(&p).unwrap_err().place.starts_with("line 1"));
        let p = write(dir.path(), "e.toml", "extends = \"e.toml\"\n");
        assert!(Scenario::load(&p).unwrap_err().message.contains("cycle"));
        assert_eq!(Scenario::load(&dir.path().join("missing.toml")).unwrap_err().message, "file not found");
    }
}
