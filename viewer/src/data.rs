//! What a replay holds for drawing: the static scene (buildings, roads, footpaths, rivers, terrain, grid) read
//! once when the replay opens, and the timed streams (agents, flood depth, grid state) read at any time.
//!
//! Everything here is plain data in the city's local metric frame (x east, y north, m) and knows nothing of
//! Bevy, so it is tested without a GPU. Agent positions between two frames are interpolated linearly per agent
//! id; flood depths between two rasters cell by cell.

use anyhow::{anyhow, Context, Result};
use bevy::math::Vec2;
use machi::geo::LocalFrame;
use machi::observe::replay::{
    decode_closures, decode_grid_frame, GridFrame, AGENT_KIND_BUS, KIND_PEDESTRIAN, KIND_ROBOT, ROBOT_WAITING_TO_CROSS,
    STATE_DRIVING, STATE_WALKING, STREAM_CITY, STREAM_CLOSURES, STREAM_FLOOD_DEPTH, STREAM_GRID, STREAM_GRID_NETWORK,
    STREAM_PERSONS, STREAM_SIDEWALK, STREAM_TERRAIN, STREAM_VEHICLES, VEHICLE_STANDING,
};
use machi::replay::{AgentFrame, RasterFrame, ReplayReader};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// A building as drawn: its footprint (closed ring without the repeated first point, m) and height (m).
#[derive(Clone, Debug, PartialEq)]
pub struct Building {
    /// Footprint vertices, local frame, m.
    pub footprint: Vec<Vec2>,
    /// Height above the ground, m.
    pub height_m: f32,
    /// The id in the source data (e.g. the OSM way or the footprint file's feature id).
    pub source_id: String,
    /// Use (residential, commercial, ...), as imported.
    pub building_use: String,
}

/// A line drawn as a ribbon: road, footpath, river or power line.
#[derive(Clone, Debug, PartialEq)]
pub struct Ribbon {
    /// Vertices, local frame, m.
    pub points: Vec<Vec2>,
    /// Width, m.
    pub width_m: f32,
}

/// Width of one traffic lane as drawn, m (the engine's lane width, `docs/replay-format.md`).
pub const LANE_WIDTH_M: f32 = 3.2;
/// Width of a footpath as drawn, m.
pub const FOOTPATH_WIDTH_M: f32 = 2.0;
/// Width of a river as drawn, m.
pub const RIVER_WIDTH_M: f32 = 10.0;
/// Width of a power line as drawn at the closest zoom, m (it grows with the square root of the marker scale).
pub const POWER_LINE_WIDTH_M: f32 = 1.0;

/// The ground: an elevation raster (m), sampled bilinearly between cell centres.
#[derive(Clone, Debug)]
pub struct Terrain {
    /// The raster (values NaN where there is no data).
    pub raster: RasterFrame,
}

impl Terrain {
    /// Elevation at local point `p` (m), bilinear between the four nearest cell centres with valid data;
    /// `None` outside the raster or where no neighbour has data.
    pub fn sample(&self, p: Vec2) -> Option<f32> {
        let r = &self.raster;
        let fx = (p.x - r.origin_x_m) / r.cell_m - 0.5;
        let fy = (p.y - r.origin_y_m) / r.cell_m - 0.5;
        if !(fx > -1.0 && fy > -1.0 && fx < r.width as f32 && fy < r.height as f32) {
            return None;
        }
        let (x0, y0) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - x0, fy - y0);
        let (mut sum, mut weight) = (0.0f32, 0.0f32);
        for (dx, dy, w) in
            [(0, 0, (1.0 - tx) * (1.0 - ty)), (1, 0, tx * (1.0 - ty)), (0, 1, (1.0 - tx) * ty), (1, 1, tx * ty)]
        {
            let (cx, cy) =
                ((x0 as i64 + dx).clamp(0, r.width as i64 - 1), (y0 as i64 + dy).clamp(0, r.height as i64 - 1));
            let v = r.values[cy as usize * r.width as usize + cx as usize];
            if v.is_finite() && w > 0.0 {
                sum += w * v;
                weight += w;
            }
        }
        (weight > 0.0).then(|| sum / weight)
    }

    /// The lowest elevation with data, m.
    pub fn min(&self) -> Option<f32> {
        self.raster.values.iter().copied().filter(|v| v.is_finite()).reduce(f32::min)
    }
}

/// The grid's layout as drawn: branch lines and flood sites, local frame.
#[derive(Clone, Debug, Default)]
pub struct GridLayout {
    /// Branch polylines in branch order (the order of the loadings in a grid frame).
    pub branches: Vec<Vec<Vec2>>,
    /// Substations that can flood, in site order.
    pub sites: Vec<Vec2>,
}

/// The static scene of a replay.
#[derive(Clone, Debug)]
pub struct SceneData {
    /// City name.
    pub city: String,
    /// Scenario name.
    pub scenario: String,
    /// Buildings.
    pub buildings: Vec<Building>,
    /// Road links (width = lanes × lane width).
    pub roads: Vec<Ribbon>,
    /// Footpaths.
    pub footpaths: Vec<Ribbon>,
    /// Open (not covered) waterways.
    pub rivers: Vec<Ribbon>,
    /// The ground, if the replay carries it.
    pub terrain: Option<Terrain>,
    /// The grid, if the run had one.
    pub grid: Option<GridLayout>,
    /// South-west and north-east corners of everything drawn, m.
    pub extent: (Vec2, Vec2),
    /// Time of day at the replay's t = 0, ms since midnight.
    pub start_of_day_ms: u64,
    /// Last time of the replay, ms since its start.
    pub end_ms: u64,
    /// WGS84 longitude and latitude of the local frame's origin, degrees.
    pub origin_lon_lat: (f64, f64),
}

impl SceneData {
    /// Whether `p` is on the terrain (always true without terrain).
    pub fn on_terrain(&self, p: Vec2) -> bool {
        self.terrain.as_ref().is_none_or(|t| t.sample(p).is_some())
    }

    /// Ground elevation at `p` (m), falling back to the lowest ground (or 0 without terrain).
    pub fn ground(&self, p: Vec2) -> f32 {
        match &self.terrain {
            Some(t) => t.sample(p).or_else(|| t.min()).unwrap_or(0.0),
            None => 0.0,
        }
    }

    /// The elevation the scene is drawn relative to (the lowest ground), m; keeps world coordinates small.
    pub fn datum_m(&self) -> f32 {
        self.terrain.as_ref().and_then(Terrain::min).unwrap_or(0.0)
    }
}

/// Which stream an agent was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentLayer {
    /// Persons travelling (stream 2; the population model's drivers and walkers).
    Persons,
    /// Vehicles of the microscopic traffic model (stream 6).
    Vehicles,
    /// Delivery robots and pedestrians on the sidewalks (stream 7).
    Sidewalk,
}

impl AgentLayer {
    /// Every layer, in drawing order.
    pub const ALL: [AgentLayer; 3] = [AgentLayer::Persons, AgentLayer::Vehicles, AgentLayer::Sidewalk];

    /// The replay stream of the layer.
    pub fn stream(self) -> u16 {
        match self {
            AgentLayer::Persons => STREAM_PERSONS,
            AgentLayer::Vehicles => STREAM_VEHICLES,
            AgentLayer::Sidewalk => STREAM_SIDEWALK,
        }
    }
}

/// What an agent is and what it is doing, as the viewer colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentLook {
    /// A car moving.
    CarMoving,
    /// A car standing in a queue.
    CarQueued,
    /// A scheduled bus driving.
    BusMoving,
    /// A scheduled bus standing (at a stop or in a queue).
    BusStanding,
    /// A person walking.
    PedestrianWalking,
    /// A person standing.
    PedestrianStanding,
    /// A robot at its depot, idle.
    RobotIdle,
    /// A robot charging.
    RobotCharging,
    /// A robot carrying parcels or handing one over.
    RobotDelivering,
    /// A robot on its way back to the depot.
    RobotReturning,
    /// A robot plugged in at a depot without supply.
    RobotStranded,
    /// A robot waiting on a kerb to cross a road.
    RobotWaitingToCross,
}

impl AgentLook {
    /// Every look, in a fixed order (instanced meshes are made per look).
    pub const ALL: [AgentLook; 12] = [
        AgentLook::CarMoving,
        AgentLook::CarQueued,
        AgentLook::BusMoving,
        AgentLook::BusStanding,
        AgentLook::PedestrianWalking,
        AgentLook::PedestrianStanding,
        AgentLook::RobotIdle,
        AgentLook::RobotCharging,
        AgentLook::RobotDelivering,
        AgentLook::RobotReturning,
        AgentLook::RobotStranded,
        AgentLook::RobotWaitingToCross,
    ];

    /// The look of an agent of `layer` with the replay's kind and state codes; `None` for agents not drawn
    /// (persons at an activity are inside a building).
    pub fn of(layer: AgentLayer, kind: u8, state: u8) -> Option<AgentLook> {
        match layer {
            AgentLayer::Persons => match state {
                STATE_DRIVING => Some(AgentLook::CarMoving),
                STATE_WALKING => Some(AgentLook::PedestrianWalking),
                // Persons travelling by bus are seen as the buses of the vehicle layer.
                _ => None,
            },
            AgentLayer::Vehicles if kind == AGENT_KIND_BUS => {
                Some(if state == VEHICLE_STANDING { AgentLook::BusStanding } else { AgentLook::BusMoving })
            }
            AgentLayer::Vehicles => {
                Some(if state == VEHICLE_STANDING { AgentLook::CarQueued } else { AgentLook::CarMoving })
            }
            AgentLayer::Sidewalk if kind == KIND_ROBOT => Some(match state {
                0 => AgentLook::RobotIdle,
                1 => AgentLook::RobotCharging,
                2 | 3 => AgentLook::RobotDelivering,
                4 => AgentLook::RobotReturning,
                ROBOT_WAITING_TO_CROSS => AgentLook::RobotWaitingToCross,
                _ => AgentLook::RobotStranded,
            }),
            AgentLayer::Sidewalk if kind == KIND_PEDESTRIAN => Some(match state {
                0 => AgentLook::PedestrianWalking,
                _ => AgentLook::PedestrianStanding,
            }),
            AgentLayer::Sidewalk => None,
        }
    }

    /// Whether the look is a vehicle (drawn as a car body).
    pub fn is_car(self) -> bool {
        matches!(self, AgentLook::CarMoving | AgentLook::CarQueued)
    }

    /// Whether the look is a bus.
    pub fn is_bus(self) -> bool {
        matches!(self, AgentLook::BusMoving | AgentLook::BusStanding)
    }

    /// Whether the look is a person.
    pub fn is_pedestrian(self) -> bool {
        matches!(self, AgentLook::PedestrianWalking | AgentLook::PedestrianStanding)
    }
}

/// One agent as drawn at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawnAgent {
    /// The stream it came from.
    pub layer: AgentLayer,
    /// Its id in that stream.
    pub id: u32,
    /// Its look.
    pub look: AgentLook,
    /// Position, local frame, m.
    pub pos: Vec2,
    /// Heading (unit vector of its motion; +x when standing still or unknown).
    pub heading: Vec2,
}

/// The run's KPI time series (`timeseries.csv`, written by `machi run` beside the replay).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeSeries {
    /// Column names after `time_s` (e.g. `flood_flooded_area_m2`).
    pub columns: Vec<String>,
    /// Rows: time (ms since the run's start) and a value per column (`None` where the cell is empty).
    pub rows: Vec<(u64, Vec<Option<f64>>)>,
}

impl TimeSeries {
    /// Reads `path`; the error names the file and the line.
    pub fn read(path: &Path) -> Result<TimeSeries> {
        let mut reader = csv::Reader::from_path(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let header = reader.headers().with_context(|| format!("{}: no header line", path.display()))?.clone();
        if header.get(0) != Some("time_s") {
            return Err(anyhow!("{}: line 1: the first column must be time_s", path.display()));
        }
        let columns = header.iter().skip(1).map(str::to_string).collect();
        let mut rows = Vec::new();
        for (k, record) in reader.records().enumerate() {
            let line = k + 2;
            let record = record.with_context(|| format!("{}: line {line}", path.display()))?;
            let number = |text: &str, what: &str| -> Result<f64> {
                text.trim()
                    .parse::<f64>()
                    .map_err(|_| anyhow!("{}: line {line}: {what} '{text}' is not a number", path.display()))
            };
            let t = number(record.get(0).unwrap_or(""), "time_s")?;
            let values = record
                .iter()
                .skip(1)
                .map(|v| if v.trim().is_empty() { Ok(None) } else { number(v, "value").map(Some) })
                .collect::<Result<Vec<_>>>()?;
            rows.push(((t * 1000.0).round() as u64, values));
        }
        Ok(TimeSeries { columns, rows })
    }

    /// The last row at or before `t_ms`, with its time.
    pub fn at(&self, t_ms: u64) -> Option<(u64, &[Option<f64>])> {
        let after = self.rows.partition_point(|(t, _)| *t <= t_ms);
        after.checked_sub(1).map(|i| (self.rows[i].0, self.rows[i].1.as_slice()))
    }
}

/// Links closed from a time on: indices into the scene's roads and footpaths.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Closures {
    /// When this set of closures began, ms since the replay's start.
    pub since_ms: u64,
    /// Road links closed to vehicles.
    pub roads: Vec<u32>,
    /// Footpaths closed by flooding.
    pub footpaths: Vec<u32>,
}

/// An open replay: the scene and access to its timed streams.
pub struct ReplayData {
    reader: ReplayReader,
    /// The static scene.
    pub scene: SceneData,
    /// The run's KPI time series, if `timeseries.csv` sits beside the replay.
    pub timeseries: Option<TimeSeries>,
    /// Times of the flood depth rasters, ms ascending.
    pub flood_times: Vec<u64>,
    /// The last flood rasters read, by time (seeking back and forth between two rasters reads each once).
    flood_cache: Vec<RasterFrame>,
}

impl ReplayData {
    /// Opens the replay at `path` and reads its static scene; the error names the file and what is wrong.
    pub fn open(path: &Path) -> Result<ReplayData> {
        let reader = ReplayReader::open(path).with_context(|| format!("{}: cannot open the replay", path.display()))?;
        let scene =
            read_scene(&reader).with_context(|| format!("{}: cannot read the replay's scene", path.display()))?;
        let flood_times = reader.raster_times(STREAM_FLOOD_DEPTH);
        let csv = path.with_file_name("timeseries.csv");
        let timeseries = if csv.is_file() { Some(TimeSeries::read(&csv)?) } else { None };
        Ok(ReplayData { reader, scene, timeseries, flood_times, flood_cache: Vec::new() })
    }

    /// The underlying reader.
    pub fn reader(&self) -> &ReplayReader {
        &self.reader
    }

    /// Every agent to draw at `t_ms` (ms since the replay's start), positions interpolated between the frame
    /// at or before `t_ms` and the next one.
    pub fn agents_at(&self, t_ms: u64) -> Result<Vec<DrawnAgent>> {
        let mut out = Vec::new();
        for layer in AgentLayer::ALL {
            let stream = layer.stream();
            let Some(before) = self.reader.agent_frame_at(stream, t_ms)? else { continue };
            let after = self.reader.agent_frame_after(stream, t_ms)?;
            interpolate(layer, &before, after.as_ref(), t_ms, &mut out);
        }
        Ok(out)
    }

    /// Flood depth above the ground (m) at `t_ms`, interpolated cell by cell between the raster at or before
    /// `t_ms` and the next one; `None` before the first raster or without a flood.
    pub fn flood_at(&mut self, t_ms: u64) -> Result<Option<RasterFrame>> {
        let after = self.flood_times.partition_point(|&t| t <= t_ms);
        let Some(t0) = after.checked_sub(1).map(|i| self.flood_times[i]) else { return Ok(None) };
        let a = self.flood_raster(t0)?;
        let Some(&t1) = self.flood_times.get(after) else { return Ok(Some(a)) };
        let b = self.flood_raster(t1)?;
        if (a.width, a.height) != (b.width, b.height) || t1 <= t0 {
            return Ok(Some(a));
        }
        let w = (t_ms - t0) as f32 / (t1 - t0) as f32;
        let values = a.values.iter().zip(&b.values).map(|(&x, &y)| x + (y - x) * w).collect();
        Ok(Some(RasterFrame { t_ms, values, ..a }))
    }

    fn flood_raster(&mut self, t: u64) -> Result<RasterFrame> {
        if let Some(r) = self.flood_cache.iter().find(|r| r.t_ms == t) {
            return Ok(r.clone());
        }
        let r = self.reader.raster_at(STREAM_FLOOD_DEPTH, t)?.ok_or_else(|| anyhow!("no flood raster at {t} ms"))?;
        if self.flood_cache.len() >= 3 {
            self.flood_cache.remove(0);
        }
        self.flood_cache.push(r.clone());
        Ok(r)
    }

    /// The links closed at `t_ms` (the last change at or before it), or `None`.
    pub fn closures_at(&self, t_ms: u64) -> Result<Option<Closures>> {
        match self.reader.custom_at(STREAM_CLOSURES, t_ms)? {
            Some((t, payload)) => decode_closures(&payload)
                .map(|(roads, footpaths)| Some(Closures { since_ms: t, roads, footpaths }))
                .map_err(|e| anyhow!("{}: closures at {t} ms: {e}", self.reader.path().display())),
            None => Ok(None),
        }
    }

    /// The grid's state at `t_ms` (the last power flow at or before it) and the time that power flow started
    /// (ms), or `None`.
    pub fn grid_at(&self, t_ms: u64) -> Result<Option<(u64, GridFrame)>> {
        match self.reader.custom_at(STREAM_GRID, t_ms)? {
            Some((t, payload)) => decode_grid_frame(&payload)
                .map(|frame| Some((t, frame)))
                .map_err(|e| anyhow!("{}: grid state at {t} ms: {e}", self.reader.path().display())),
            None => Ok(None),
        }
    }
}

/// Adds the agents of `before` to `out`, moved towards their position in `after` by the fraction of the
/// interval `t_ms` has passed.
fn interpolate(
    layer: AgentLayer,
    before: &AgentFrame,
    after: Option<&AgentFrame>,
    t_ms: u64,
    out: &mut Vec<DrawnAgent>,
) {
    let next: HashMap<u32, Vec2> = match after {
        Some(f) => f.agents.iter().map(|a| (a.id, Vec2::new(a.x_m, a.y_m))).collect(),
        None => HashMap::new(),
    };
    let w = match after {
        Some(f) if f.t_ms > before.t_ms => (t_ms.saturating_sub(before.t_ms)) as f32 / (f.t_ms - before.t_ms) as f32,
        _ => 0.0,
    };
    for a in &before.agents {
        let Some(look) = AgentLook::of(layer, a.kind, a.state) else { continue };
        let p0 = Vec2::new(a.x_m, a.y_m);
        let p1 = next.get(&a.id).copied().unwrap_or(p0);
        let heading = (p1 - p0).try_normalize().unwrap_or(Vec2::X);
        out.push(DrawnAgent { layer, id: a.id, look, pos: p0 + (p1 - p0) * w.clamp(0.0, 1.0), heading });
    }
}

fn points(v: &Value) -> Vec<Vec2> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some(Vec2::new(p.get(0)?.as_f64()? as f32, p.get(1)?.as_f64()? as f32)))
        .collect()
}

fn read_scene(reader: &ReplayReader) -> Result<SceneData> {
    let header = reader.header();
    let payload = reader.static_payload(STREAM_CITY)?.ok_or_else(|| anyhow!("the replay has no city stream"))?;
    let city: Value = serde_json::from_slice(&payload).context("the city stream is not JSON")?;
    let mut buildings = Vec::new();
    for b in city["buildings"].as_array().into_iter().flatten() {
        let mut footprint = points(&b["footprint"]);
        if footprint.len() > 1 && footprint.first() == footprint.last() {
            footprint.pop();
        }
        let height_m = b["height_m"].as_f64().unwrap_or(0.0) as f32;
        if footprint.len() >= 3 && height_m > 0.0 {
            let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            buildings.push(Building { footprint, height_m, source_id: text(&b["id"]), building_use: text(&b["use"]) });
        }
    }
    let roads = city["roads"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| Ribbon {
            points: points(&r["geometry"]),
            width_m: r["lanes"].as_f64().unwrap_or(1.0).max(1.0) as f32 * LANE_WIDTH_M,
        })
        .collect();
    let footpaths = city["footpaths"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| Ribbon { points: points(l), width_m: FOOTPATH_WIDTH_M })
        .collect();
    let rivers = city["waterways"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| !w["covered"].as_bool().unwrap_or(false))
        .map(|w| Ribbon { points: points(&w["line"]), width_m: RIVER_WIDTH_M })
        .collect();
    let origin = &city["origin_lon_lat"];
    let origin_lon_lat = (origin[0].as_f64().unwrap_or(0.0), origin[1].as_f64().unwrap_or(0.0));
    let terrain = reader.static_raster(STREAM_TERRAIN)?.map(|raster| Terrain { raster });
    let grid = match reader.static_payload(STREAM_GRID_NETWORK)? {
        Some(payload) => Some(read_grid(&payload, origin_lon_lat)?),
        None => None,
    };
    let mut scene = SceneData {
        city: header.city.clone(),
        scenario: header.scenario.clone(),
        buildings,
        roads,
        footpaths,
        rivers,
        terrain,
        grid,
        extent: (Vec2::ZERO, Vec2::ZERO),
        start_of_day_ms: header.extra["start_of_day_ms"].as_u64().unwrap_or(0),
        end_ms: reader.time_range().map(|(_, b)| b).unwrap_or(header.end_ms),
        origin_lon_lat,
    };
    scene.extent = extent(&scene);
    Ok(scene)
}

/// The grid layout from the grid stream's JSON (GeoJSON in WGS84, sites in the local frame).
fn read_grid(payload: &[u8], origin_lon_lat: (f64, f64)) -> Result<GridLayout> {
    let grid: Value = serde_json::from_slice(payload).context("the grid stream is not JSON")?;
    let frame = LocalFrame::new(origin_lon_lat.0, origin_lon_lat.1);
    let mut branches = Vec::new();
    for f in grid["geojson"]["features"].as_array().into_iter().flatten() {
        if f["geometry"]["type"] != "LineString" {
            continue;
        }
        let mut line = Vec::new();
        for p in points(&f["geometry"]["coordinates"]) {
            let (x, y) = frame.from_lon_lat(p.x as f64, p.y as f64).map_err(|e| anyhow!("grid branch: {e}"))?;
            line.push(Vec2::new(x as f32, y as f32));
        }
        branches.push(line);
    }
    let sites = grid["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some(Vec2::new(s["x_m"].as_f64()? as f32, s["y_m"].as_f64()? as f32)))
        .collect();
    Ok(GridLayout { branches, sites })
}

/// Corners of the buildings, roads and rivers, within the terrain's if there is terrain (streets often
/// reach out of it).
fn extent(scene: &SceneData) -> (Vec2, Vec2) {
    let (lo, hi) = drawn_extent(scene);
    match &scene.terrain {
        Some(t) => {
            let r = &t.raster;
            let t_lo = Vec2::new(r.origin_x_m, r.origin_y_m);
            let t_hi = t_lo + Vec2::new(r.width as f32, r.height as f32) * r.cell_m;
            let (a, b) = (lo.max(t_lo), hi.min(t_hi));
            if a.x < b.x && a.y < b.y {
                (a, b)
            } else {
                (t_lo, t_hi)
            }
        }
        None => (lo, hi),
    }
}

fn drawn_extent(scene: &SceneData) -> (Vec2, Vec2) {
    let pts = scene
        .buildings
        .iter()
        .flat_map(|b| b.footprint.iter())
        .chain(scene.roads.iter().chain(&scene.rivers).flat_map(|r| r.points.iter()));
    let (mut lo, mut hi) = (Vec2::splat(f32::INFINITY), Vec2::splat(f32::NEG_INFINITY));
    for p in pts {
        lo = lo.min(*p);
        hi = hi.max(*p);
    }
    if lo.x > hi.x {
        (Vec2::splat(-100.0), Vec2::splat(100.0))
    } else {
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use machi::observe::replay::PEDESTRIAN_WAITING_TO_CROSS;
    use machi::replay::AgentState;

    fn frame(t_ms: u64, agents: &[(u32, u8, f32, f32)]) -> AgentFrame {
        AgentFrame {
            t_ms,
            agents: agents.iter().map(|&(id, state, x_m, y_m)| AgentState { id, kind: 1, state, x_m, y_m }).collect(),
        }
    }

    #[test]
    fn agents_move_linearly_between_frames_by_id() {
        let a = frame(1000, &[(1, 0, 0.0, 0.0), (2, 1, 10.0, 10.0), (3, 0, 5.0, 5.0)]);
        let b = frame(2000, &[(2, 1, 10.0, 10.0), (1, 0, 10.0, 0.0)]);
        let mut out = Vec::new();
        interpolate(AgentLayer::Vehicles, &a, Some(&b), 1250, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].pos, Vec2::new(2.5, 0.0));
        assert_eq!(out[0].heading, Vec2::X);
        assert_eq!(out[0].look, AgentLook::CarMoving);
        assert_eq!(out[1].look, AgentLook::CarQueued);
        assert_eq!(out[1].pos, Vec2::new(10.0, 10.0));
        // Agent 3 is gone in the next frame: it stays where it was last seen.
        assert_eq!(out[2].pos, Vec2::new(5.0, 5.0));
        // At the frame's own time, the frame's positions; without a next frame too.
        out.clear();
        interpolate(AgentLayer::Vehicles, &a, None, 1900, &mut out);
        assert_eq!(out[0].pos, Vec2::ZERO);
    }

    /// Seeking anywhere in a 24-hour replay returns the frames around that time, interpolated: persons every
    /// 60 s (agent `i` at x = t/s + i, drawn at every time exactly there), flood depth every 5 min (depth =
    /// hours since the start), grid states every 15 min.
    #[test]
    fn seeking_anywhere_in_a_day_returns_the_right_frame() {
        use machi::replay::{ReplayHeader, ReplayWriter};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("day.machi");
        let header = ReplayHeader {
            city: "synthetic".into(),
            scenario: "day".into(),
            end_ms: 86_400_000,
            frame_interval_ms: 60_000,
            extra: serde_json::json!({"start_of_day_ms": 0}),
            ..ReplayHeader::default()
        };
        let mut w = ReplayWriter::create(&path, &header).unwrap();
        let city = serde_json::json!({"origin_lon_lat": [1.52, 42.51], "buildings": [], "roads": [], "footpaths": [], "waterways": []});
        w.write_static(STREAM_CITY, &serde_json::to_vec(&city).unwrap()).unwrap();
        for t_s in (0..=86_400u64).step_by(60) {
            let agents = (0..50u32)
                .map(|i| machi::replay::AgentState {
                    id: i,
                    kind: 0,
                    state: STATE_DRIVING,
                    x_m: (t_s + i as u64) as f32,
                    y_m: i as f32,
                })
                .collect();
            w.push_agent_frame(STREAM_PERSONS, &AgentFrame { t_ms: t_s * 1000, agents }).unwrap();
            if t_s % 300 == 0 {
                let depth = t_s as f32 / 3600.0;
                let raster = RasterFrame {
                    t_ms: t_s * 1000,
                    width: 4,
                    height: 3,
                    cell_m: 5.0,
                    values: vec![depth; 12],
                    ..Default::default()
                };
                w.write_raster(STREAM_FLOOD_DEPTH, &raster).unwrap();
            }
            if t_s % 900 == 0 {
                let frame = machi::observe::replay::encode_grid_frame(&[1.0], &[t_s as f64 / 864.0], &[]);
                w.write_custom(STREAM_GRID, t_s * 1000, t_s * 1000, &frame).unwrap();
            }
        }
        w.finish().unwrap();
        let mut data = ReplayData::open(&path).unwrap();
        assert_eq!(data.scene.end_ms, 86_400_000);
        // Times spread over the day, in a scrambled order (seeking back and forth).
        let mut t = 7_919u64;
        for _ in 0..400 {
            t = (t * 7_919 + 104_729) % 86_400_001;
            let agents = data.agents_at(t).unwrap();
            assert_eq!(agents.len(), 50, "{t}");
            for a in &agents {
                let want = t as f64 / 1000.0 + a.id as f64;
                // Positions are stored to the centimetre and interpolated in f32.
                assert!((a.pos.x as f64 - want).abs() < 0.02, "t = {t} ms: agent {} at {} not {want}", a.id, a.pos.x);
            }
            let depth = data.flood_at(t).unwrap().unwrap();
            assert!((depth.values[0] as f64 - t as f64 / 3_600_000.0).abs() < 1e-4, "t = {t}: {}", depth.values[0]);
            let (t0, grid) = data.grid_at(t).unwrap().unwrap();
            assert_eq!(t0, t - t % 900_000);
            assert!((grid.loading_percent[0] as f64 - t0 as f64 / 864_000.0).abs() < 1e-3);
        }
    }

    #[test]
    fn the_time_series_is_read_by_time_and_bad_cells_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("timeseries.csv");
        std::fs::write(&p, "time_s,a,b\n0,1,\n900,2,5.5\n").unwrap();
        let ts = TimeSeries::read(&p).unwrap();
        assert_eq!(ts.columns, ["a", "b"]);
        assert_eq!(ts.at(899_999), Some((0, &[Some(1.0), None][..])));
        assert_eq!(ts.at(5_000_000).unwrap().0, 900_000);
        std::fs::write(&p, "time_s,a\n0,1\n900,lots\n").unwrap();
        let e = format!("{:#}", TimeSeries::read(&p).unwrap_err());
        assert!(e.contains("timeseries.csv") && e.contains("line 3") && e.contains("lots"), "{e}");
    }

    #[test]
    fn looks_follow_the_replay_codes() {
        assert_eq!(AgentLook::of(AgentLayer::Persons, 0, STATE_DRIVING), Some(AgentLook::CarMoving));
        assert_eq!(AgentLook::of(AgentLayer::Persons, 0, 1), None, "at work: inside a building");
        assert_eq!(AgentLook::of(AgentLayer::Sidewalk, KIND_ROBOT, 5), Some(AgentLook::RobotStranded));
        assert_eq!(AgentLook::of(AgentLayer::Vehicles, AGENT_KIND_BUS, VEHICLE_STANDING), Some(AgentLook::BusStanding));
        assert_eq!(AgentLook::of(AgentLayer::Vehicles, 1, VEHICLE_STANDING), Some(AgentLook::CarQueued));
        assert_eq!(AgentLook::of(AgentLayer::Sidewalk, KIND_ROBOT, 3), Some(AgentLook::RobotDelivering));
        assert_eq!(AgentLook::of(AgentLayer::Sidewalk, KIND_PEDESTRIAN, 1), Some(AgentLook::PedestrianStanding));
        assert_eq!(
            AgentLook::of(AgentLayer::Sidewalk, KIND_ROBOT, ROBOT_WAITING_TO_CROSS),
            Some(AgentLook::RobotWaitingToCross)
        );
        assert_eq!(
            AgentLook::of(AgentLayer::Sidewalk, KIND_PEDESTRIAN, PEDESTRIAN_WAITING_TO_CROSS),
            Some(AgentLook::PedestrianStanding)
        );
    }

    #[test]
    fn terrain_samples_bilinearly_and_skips_nodata() {
        let raster = RasterFrame {
            t_ms: 0,
            width: 2,
            height: 2,
            origin_x_m: 0.0,
            origin_y_m: 0.0,
            cell_m: 10.0,
            values: vec![0.0, 10.0, 20.0, f32::NAN],
        };
        let t = Terrain { raster };
        assert_eq!(t.sample(Vec2::new(5.0, 5.0)), Some(0.0));
        assert_eq!(t.sample(Vec2::new(10.0, 5.0)), Some(5.0));
        // Next to the nodata cell, weights renormalise over the valid ones.
        let v = t.sample(Vec2::new(12.5, 12.5)).unwrap();
        assert!((v - 0.1875 * 30.0 / 0.4375).abs() < 1e-4, "{v}");
        assert_eq!(t.sample(Vec2::new(15.0, 15.0)), None, "the centre of the nodata cell");
        assert_eq!(t.sample(Vec2::new(-20.0, 5.0)), None);
        assert_eq!(t.min(), Some(0.0));
    }
}
