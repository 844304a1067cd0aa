//! The flood domain in the simulation: `[flood]` scenario settings, the [`FloodPlugin`] that advances the
//! solver every domain step (adaptive sub-steps land exactly on the sync point), gauges, maxima, time series,
//! depth rasters into the replay, and the flood KPIs.

use super::grid::{FloodGrid, LandCover, ManningTable, RIVER_WIDTH_M};
use super::interventions::{self, Basin, Hydrograph, Inflow, Levee, LossArea, Pump};
use super::solver::{Boundaries, Boundary, FloodSolver, GridPump};
use crate::city::City;
use crate::error::{InputError, InputResult};
use crate::scenario::duration_ms;
use crate::sim::{register_domain, DomainTick, Finalize, Kpis, Observe, SimClock, TimeSeries};
use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Name of the domain.
pub const DOMAIN: &str = "flood";

/// A rainfall hyetograph, uniform over the domain: `mm_per_h[k]` falls during interval k after `start`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rain {
    /// Clock time the series starts (`"14:00"`).
    pub start: String,
    /// Length of each interval (`"10min"`).
    pub interval: String,
    /// Rain intensity in each interval (mm/h).
    pub mm_per_h: Vec<f64>,
    /// Where it falls: a polygon in the local frame (m); everywhere when absent. Zones let a convective
    /// cell rain on one part of town only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<Vec<interventions::Point>>,
}

impl Rain {
    /// Intensity (m/s) at `clock_ms` (clock time of day since midnight of day 0).
    pub fn intensity_mps(&self, clock_ms: u64) -> f64 {
        let (Ok(start), Ok(interval)) = (duration_ms(&self.start), duration_ms(&self.interval)) else { return 0.0 };
        if clock_ms < start || interval == 0 {
            return 0.0;
        }
        self.mm_per_h.get(((clock_ms - start) / interval) as usize).copied().unwrap_or(0.0) / 1000.0 / 3600.0
    }
}

/// A virtual gauge (like the river-level sensors cities deploy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gauge {
    /// Name in `gauges.csv`.
    pub name: String,
    /// Position in the local frame, metres east and north of the city origin.
    pub x_m: f32,
    /// See `x_m`.
    pub y_m: f32,
}

/// Edge condition of the flood domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// No flow through the edges.
    Closed,
    /// Water leaves freely (normal-depth condition with `boundary_slope`).
    Free,
    /// The water level beyond the edges is held at `boundary_level_m` (a lake or the sea): water enters
    /// where the ground at the edge is below it and leaves where the water inside stands above it.
    Fixed,
}

/// `[flood]`: the surface-flooding domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FloodSection {
    /// Cell size of the flood raster (m).
    pub resolution_m: f32,
    /// Domain step: how often the flood meets the other domains (`"60s"`); the solver sub-steps inside it.
    pub step: String,
    /// Manning's n overrides by land cover.
    pub manning_n: ManningTable,
    /// Depth (m) of the river channel carved into the terrain along the waterways (0: not carved): 2 m, the
    /// bankfull depth of a mountain river 10–20 m wide (hydraulic geometry of Leopold & Maddock 1953, depth
    /// ≈ width/8 for gravel-bed rivers); the Gran Valira runs between walls 2–4 m high.
    pub river_channel_depth_m: f64,
    /// Edges: `"free"` outflow (default) or `"closed"`.
    pub boundary: EdgeKind,
    /// Water-surface slope beyond free edges (m/m).
    pub boundary_slope: f64,
    /// Water level beyond the edges (m above the terrain's datum) when `boundary = "fixed"`.
    pub boundary_level_m: Option<f64>,
    /// Infiltration capacity of open ground (mm/h): 10 mm/h, the steady rate of a sandy loam (Rawls,
    /// Brakensiek & Saxton 1982); streets, buildings and water infiltrate nothing.
    pub infiltration_green_mm_per_h: f64,
    /// Street drainage capacity (mm/h over street cells): 20 mm/h, inlets sized for a frequent (2–5 year)
    /// storm, a common European design level (EN 752).
    pub drainage_road_mm_per_h: f64,
    /// Rain hyetographs (summed where they overlap).
    pub rain: Vec<Rain>,
    /// Virtual gauges.
    pub gauges: Vec<Gauge>,
    /// A cell counts as flooded above this depth (m): 0.1 m, the threshold of the KPIs.
    pub flooded_depth_m: f64,
    /// Buildings count as flooded when water beside them exceeds this depth (m).
    pub building_depth_m: f64,
    /// Road links close to cars above this depth (m): 0.3 m, the threshold for cars (vehicles lose
    /// stability from about this depth; Kramer et al. 2016).
    pub road_closure_depth_m: f64,
    /// Footpath links close to people and robots above this depth (m): 0.1 m.
    pub footpath_closure_depth_m: f64,
    /// Interval between depth rasters in the replay (`"5min"`).
    pub raster_interval: String,
    /// Levees (interventions).
    pub levees: Vec<Levee>,
    /// Retention basins.
    pub basins: Vec<Basin>,
    /// Permeable paving areas (infiltration capacity).
    pub permeable: Vec<LossArea>,
    /// Drainage upgrades (drainage capacity).
    pub drainage: Vec<LossArea>,
    /// Pump stations.
    pub pumps: Vec<Pump>,
    /// Inflow hydrographs (e.g. the river entering the domain).
    pub inflows: Vec<Inflow>,
    /// Initial water depths (m): a GeoTIFF or ESRI ASCII raster resampled onto the flood grid (path
    /// relative to the scenario file), e.g. a reservoir for a dam-break study; dry when absent.
    pub initial_depth: Option<std::path::PathBuf>,
    /// CRS of `initial_depth` when its file does not say (as `[city] dem_crs`: `"EPSG:32631"`, …).
    pub initial_depth_crs: Option<String>,
}

/// Initial depths beyond this (m) are refused as a likely unit error (a raster in mm or cm): deeper than any
/// reservoir a city's dam-break study starts from.
const MAX_INITIAL_DEPTH_M: f32 = 500.0;

impl Default for FloodSection {
    fn default() -> Self {
        FloodSection {
            resolution_m: 5.0,
            step: "60s".into(),
            manning_n: ManningTable::default(),
            river_channel_depth_m: 2.0,
            boundary: EdgeKind::Free,
            boundary_slope: 0.01,
            boundary_level_m: None,
            infiltration_green_mm_per_h: 10.0,
            drainage_road_mm_per_h: 20.0,
            rain: Vec::new(),
            gauges: Vec::new(),
            flooded_depth_m: 0.1,
            building_depth_m: 0.5,
            road_closure_depth_m: 0.3,
            footpath_closure_depth_m: 0.1,
            raster_interval: "5min".into(),
            levees: Vec::new(),
            basins: Vec::new(),
            permeable: Vec::new(),
            drainage: Vec::new(),
            pumps: Vec::new(),
            inflows: Vec::new(),
            initial_depth: None,
            initial_depth_crs: None,
        }
    }
}

impl FloodSection {
    /// Checks values; on error returns (key below `flood.`, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        use crate::scenario::check::{non_negative, positive};
        positive("resolution_m", self.resolution_m as f64)?;
        positive("manning_n.road", self.manning_n.road)?;
        positive("manning_n.green", self.manning_n.green)?;
        positive("manning_n.water", self.manning_n.water)?;
        non_negative("boundary_slope", self.boundary_slope)?;
        match (self.boundary, self.boundary_level_m) {
            (EdgeKind::Fixed, None) => {
                return Err(("boundary_level_m".into(), "is needed with boundary = \"fixed\"".into()))
            }
            (_, Some(level)) if !level.is_finite() => {
                return Err(("boundary_level_m".into(), format!("{level} is not a water level in m")))
            }
            _ => {}
        }
        non_negative("river_channel_depth_m", self.river_channel_depth_m)?;
        non_negative("infiltration_green_mm_per_h", self.infiltration_green_mm_per_h)?;
        non_negative("drainage_road_mm_per_h", self.drainage_road_mm_per_h)?;
        for (k, v) in [
            ("flooded_depth_m", self.flooded_depth_m),
            ("building_depth_m", self.building_depth_m),
            ("road_closure_depth_m", self.road_closure_depth_m),
            ("footpath_closure_depth_m", self.footpath_closure_depth_m),
        ] {
            positive(k, v)?;
        }
        for key in ["step", "raster_interval"] {
            let v = if key == "step" { &self.step } else { &self.raster_interval };
            match duration_ms(v) {
                Ok(0) => return Err((key.into(), "must be longer than zero".into())),
                Ok(_) => {}
                Err(m) => return Err((key.into(), m)),
            }
        }
        for (i, l) in self.levees.iter().enumerate() {
            if l.line.len() < 2 {
                return Err((format!("levees[{i}].line"), "needs at least two points".into()));
            }
            positive(&format!("levees[{i}].height_m"), l.height_m as f64)?;
        }
        for (i, b) in self.basins.iter().enumerate() {
            if b.polygon.len() < 3 {
                return Err((format!("basins[{i}].polygon"), "needs at least three points".into()));
            }
            positive(&format!("basins[{i}].volume_m3"), b.volume_m3 as f64)?;
        }
        for (name, areas) in [("permeable", &self.permeable), ("drainage", &self.drainage)] {
            for (i, a) in areas.iter().enumerate() {
                if a.polygon.len() < 3 {
                    return Err((format!("{name}[{i}].polygon"), "needs at least three points".into()));
                }
                non_negative(&format!("{name}[{i}].mm_per_h"), a.mm_per_h)?;
            }
        }
        for (i, p) in self.pumps.iter().enumerate() {
            if p.sump.len() < 3 {
                return Err((format!("pumps[{i}].sump"), "needs at least three points".into()));
            }
            positive(&format!("pumps[{i}].capacity_m3_per_s"), p.capacity_m3_per_s)?;
        }
        for (i, r) in self.rain.iter().enumerate() {
            duration_ms(&r.start).map_err(|m| (format!("rain[{i}].start"), m))?;
            if duration_ms(&r.interval).map_err(|m| (format!("rain[{i}].interval"), m))? == 0 {
                return Err((format!("rain[{i}].interval"), "must be longer than zero".into()));
            }
            if let Some(v) = r.mm_per_h.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err((format!("rain[{i}].mm_per_h"), format!("{v} is not a rain intensity in mm/h")));
            }
            if r.zone.as_ref().is_some_and(|z| z.len() < 3) {
                return Err((format!("rain[{i}].zone"), "needs at least three points".into()));
            }
        }
        Ok(())
    }

    /// The solver's condition on the domain's edges.
    pub fn edge_boundary(&self) -> Boundary {
        match self.boundary {
            EdgeKind::Closed => Boundary::Closed,
            EdgeKind::Free => Boundary::FreeOutflow { slope: self.boundary_slope },
            EdgeKind::Fixed => Boundary::FixedLevel { level_m: self.boundary_level_m.unwrap_or(0.0) },
        }
    }

    /// Rain intensity (m/s) at clock time `clock_ms`.
    pub fn rain_mps(&self, clock_ms: u64) -> f64 {
        self.rain.iter().map(|r| r.intensity_mps(clock_ms)).sum()
    }
}

/// The flood state in the World.
#[derive(Resource)]
pub struct FloodState {
    /// The raster.
    pub grid: FloodGrid,
    /// The solver (f32 state).
    pub solver: FloodSolver<f32>,
    /// Settings.
    pub settings: FloodSection,
    /// Maximum depth per cell so far (m).
    pub max_depth_m: Vec<f32>,
    /// Maximum speed per cell so far (m/s).
    pub max_speed_mps: Vec<f32>,
    /// Maximum depth × speed per cell so far (m²/s), the flood hazard rating's core term.
    pub max_hazard_m2ps: Vec<f32>,
    /// Gauge cells (index into the grid, or None when outside).
    pub gauge_cells: Vec<Option<usize>>,
    /// Gauge readings: (time since start ms, gauge index, depth m, level m).
    pub gauge_rows: Vec<(u64, usize, f64, f64)>,
    /// Peak flooded area (m²) and when (ms since start).
    pub peak_flooded: (f64, u64),
    /// Rain volume that fell on roofs (m³): it leaves through the buildings' downpipes into the drains.
    pub roof_rain_m3: f64,
    /// Roof area (m²) under each hyetograph.
    roof_area_m2: Vec<f64>,
    /// Cells under each hyetograph (None: everywhere).
    rain_zones: Vec<Option<Vec<usize>>>,
    /// Each hyetograph's intensity (m/s) as last put on the grid.
    rain_now_mps: Vec<f64>,
    /// Interval between depth rasters in the replay (ms).
    pub raster_interval_ms: u64,
    /// Inflows placed on the grid: (cell, hydrograph).
    pub inflows: Vec<(usize, Hydrograph)>,
}

impl FloodState {
    /// Builds the state for `city`, applying the interventions. Errors name `scenario` and the key when the
    /// city has no terrain or a point lies outside the flood grid, or a hydrograph file when it is wrong.
    pub fn new(city: &City, settings: &FloodSection, scenario: &Path) -> InputResult<FloodState> {
        let key_err = |key: String, m: String| InputError::new(scenario, format!("key flood{key}"), m);
        let mut grid = FloodGrid::from_city(city, settings.resolution_m)
            .ok_or_else(|| key_err(String::new(), "the city has no terrain to flood (set [city] dem)".into()))?;
        grid.carve_channels(city.waterways.iter().map(|w| &w.line[..]), RIVER_WIDTH_M, settings.river_channel_depth_m);
        interventions::apply_levees(&mut grid, &settings.levees);
        interventions::apply_basins(&mut grid, &settings.basins);
        let s = settings;
        let edge = s.edge_boundary();
        let mut solver = FloodSolver::new(
            grid.nx,
            grid.ny,
            grid.cell_m as f64,
            &grid.z_m,
            &grid.manning(&s.manning_n),
            grid.blocked(),
            Boundaries::all(edge),
        );
        let mm_h = |v: f64| (v / 1000.0 / 3600.0) as f32;
        let losses = solver.loss_rates_mut();
        for (loss, cover) in losses.iter_mut().zip(&grid.cover) {
            *loss = match cover {
                LandCover::Green => mm_h(s.infiltration_green_mm_per_h),
                LandCover::Road => mm_h(s.drainage_road_mm_per_h),
                _ => 0.0,
            };
        }
        for areas in [&s.permeable, &s.drainage] {
            for a in areas {
                for c in interventions::cells_in_polygon(&grid, &a.polygon) {
                    losses[c] = losses[c].max(mm_h(a.mm_per_h));
                }
            }
        }
        let locate = |key: String, p: [f32; 2]| {
            grid.cell_at(glam::Vec2::new(p[0], p[1])).filter(|&c| !grid.is_blocked(c)).ok_or_else(|| {
                key_err(key, format!("point ({}, {}) m is outside the flood grid or inside a building", p[0], p[1]))
            })
        };
        for (i, p) in s.pumps.iter().enumerate() {
            let sump = interventions::cells_in_polygon(&grid, &p.sump);
            if sump.is_empty() {
                return Err(key_err(
                    format!(".pumps[{i}].sump"),
                    "the sump polygon covers no open cell of the flood grid".into(),
                ));
            }
            let outlet = p.outlet.map(|o| locate(format!(".pumps[{i}].outlet"), o)).transpose()?;
            solver.pumps.push(GridPump { sump, capacity_m3_per_s: p.capacity_m3_per_s, outlet });
        }
        let mut inflows = Vec::new();
        for (i, f) in s.inflows.iter().enumerate() {
            inflows.push((locate(format!(".inflows[{i}].at"), f.at)?, Hydrograph::read(&f.hydrograph)?));
        }
        let cells = grid.nx * grid.ny;
        let initial = match &s.initial_depth {
            Some(path) => initial_depths(city, &grid, path, s.initial_depth_crs.as_deref(), scenario)?,
            None => vec![0.0; cells],
        };
        solver.set_depths(&initial);
        // Where each hyetograph falls: its zone's cells (roofs included, for the roof-rain book), or all.
        let rain_zones: Vec<Option<Vec<usize>>> = s
            .rain
            .iter()
            .map(|r| {
                r.zone.as_ref().map(|zone| {
                    let ring: Vec<glam::Vec2> = zone.iter().map(|p| glam::Vec2::new(p[0], p[1])).collect();
                    (0..cells).filter(|&c| crate::geo::shapes::contains(&ring, grid.centre(c))).collect()
                })
            })
            .collect();
        let mut gauge_cells = Vec::new();
        for (i, g) in s.gauges.iter().enumerate() {
            let cell = grid.cell_at(glam::Vec2::new(g.x_m, g.y_m));
            if cell.is_none_or(|c| grid.is_blocked(c)) {
                let (lo, hi) =
                    (grid.origin, grid.origin + glam::Vec2::new(grid.nx as f32, grid.ny as f32) * grid.cell_m);
                return Err(key_err(
                    format!(".gauges[{i}]"),
                    format!(
                        "gauge {:?} at ({}, {}) m is outside the flood grid (x {:.0}…{:.0} m, y {:.0}…{:.0} m) or inside a building",
                        g.name, g.x_m, g.y_m, lo.x, hi.x, lo.y, hi.y
                    ),
                ));
            }
            gauge_cells.push(cell);
        }
        let cell_area = (grid.cell_m as f64).powi(2);
        let is_roof = |c: usize| grid.cover[c] == LandCover::Building;
        let roof_area_m2 = rain_zones
            .iter()
            .map(|zone| match zone {
                Some(cells) => cells.iter().filter(|&&c| is_roof(c)).count() as f64 * cell_area,
                None => (0..cells).filter(|&c| is_roof(c)).count() as f64 * cell_area,
            })
            .collect();
        Ok(FloodState {
            max_depth_m: vec![0.0; cells],
            max_speed_mps: vec![0.0; cells],
            max_hazard_m2ps: vec![0.0; cells],
            gauge_cells,
            gauge_rows: Vec::new(),
            peak_flooded: (0.0, 0),
            roof_rain_m3: 0.0,
            roof_area_m2,
            rain_zones,
            rain_now_mps: Vec::new(),
            raster_interval_ms: duration_ms(&s.raster_interval).unwrap_or(300_000).max(1),
            inflows,
            settings: settings.clone(),
            grid,
            solver,
        })
    }

    /// Flooded area now (m²): cells deeper than the threshold.
    pub fn flooded_area_m2(&self) -> f64 {
        let t = self.settings.flooded_depth_m as f32;
        let wet = self.solver.depths().iter().enumerate().filter(|&(c, &h)| self.grid.above_ground(c, h) > t).count();
        wet as f64 * (self.grid.cell_m as f64).powi(2)
    }
}

/// The `[flood] initial_depth` raster resampled onto the flood grid (m; 0 where it has no data). Errors
/// name the file (unreadable, wrong CRS, a negative or implausibly deep value) or the scenario key.
fn initial_depths(
    city: &City,
    grid: &FloodGrid,
    path: &Path,
    crs: Option<&str>,
    scenario: &Path,
) -> InputResult<Vec<f64>> {
    use crate::import::terrain::{read_terrain, resample_to_local};
    let crs = match crs {
        Some(text) => Some(crate::geo::Crs::parse(text).ok_or_else(|| {
            InputError::new(scenario, "key flood.initial_depth_crs", format!("unknown CRS {text:?}"))
        })?),
        None => None,
    };
    let raster = read_terrain(path, crs)?;
    let extent = glam::Vec2::new(grid.nx as f32, grid.ny as f32) * grid.cell_m;
    let local = resample_to_local(&raster, &city.frame, grid.cell_m, Some((grid.origin, grid.origin + extent)))
        .map_err(|e| InputError::new(path, "raster", e.to_string()))?;
    (0..grid.nx * grid.ny)
        .map(|c| match local.sample(grid.centre(c)).filter(|d| d.is_finite()) {
            None => Ok(0.0),
            Some(d) if (0.0..=MAX_INITIAL_DEPTH_M).contains(&d) => Ok(d as f64),
            Some(d) => {
                let p = grid.centre(c);
                Err(InputError::new(
                    path,
                    format!("cell at ({:.0}, {:.0}) m", p.x, p.y),
                    format!("initial depth {d} m is not a depth in metres (0 to {MAX_INITIAL_DEPTH_M} m)"),
                ))
            }
        })
        .collect()
}

/// Links under water now, published for the coupling: a road link is closed to cars when water on any
/// of its points exceeds `road_closure_depth_m` (0.3 m); a footpath link to people and robots above
/// `footpath_closure_depth_m` (0.1 m). Indexed like `City::roads` / `City::footpaths` links.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct FloodedLinks {
    /// Per road link: closed now.
    pub roads: Vec<bool>,
    /// Per footpath link: closed now.
    pub footpaths: Vec<bool>,
    /// Per road link: total time closed so far (s).
    pub road_closed_s: Vec<f64>,
}

/// The cells under each link of a network: its geometry sampled every cell length, each cell once, in
/// compressed rows (link `i`'s cells are `cells[offsets[i]..offsets[i + 1]]`). Found once, then every flood
/// step only reads depths.
struct CellsUnderLinks {
    offsets: Vec<usize>,
    cells: Vec<u32>,
}

impl CellsUnderLinks {
    fn new<'a>(grid: &FloodGrid, geometries: impl Iterator<Item = &'a [glam::Vec2]>) -> CellsUnderLinks {
        let mut under = CellsUnderLinks { offsets: vec![0], cells: Vec::new() };
        let mut link_cells = Vec::new();
        for geometry in geometries {
            link_cells.clear();
            for w in geometry.windows(2) {
                let n = (w[0].distance(w[1]) / grid.cell_m).ceil().max(1.0) as usize;
                link_cells.extend((0..=n).filter_map(|k| grid.cell_at(w[0].lerp(w[1], k as f32 / n as f32))));
            }
            link_cells.sort_unstable();
            link_cells.dedup();
            under.cells.extend(link_cells.iter().map(|&c| c as u32));
            under.offsets.push(under.cells.len());
        }
        under
    }

    /// Per link: whether water stands deeper than `depth_m` (m) above the ground of any cell under it.
    /// `depths` are the solver's, per cell of `grid` (m).
    fn flooded(&self, grid: &FloodGrid, depths: &[f32], depth_m: f32) -> Vec<bool> {
        self.offsets
            .windows(2)
            .map(|range| {
                self.cells[range[0]..range[1]]
                    .iter()
                    .any(|&c| grid.above_ground(c as usize, depths[c as usize]) > depth_m)
            })
            .collect()
    }
}

fn publish_flooded_links(
    clock: Res<SimClock>,
    state: Res<FloodState>,
    city: Res<crate::sim::CityRes>,
    mut links: ResMut<FloodedLinks>,
    mut under: Local<Option<(CellsUnderLinks, CellsUnderLinks)>>,
) {
    let roads = city.0.roads.links();
    let (under_roads, under_paths) = under.get_or_insert_with(|| {
        let paths = city.0.footpaths.links();
        (
            CellsUnderLinks::new(&state.grid, roads.iter().map(|l| l.geometry.as_slice())),
            CellsUnderLinks::new(&state.grid, paths.iter().map(|l| l.geometry.as_slice())),
        )
    });
    let (r, f) = (state.settings.road_closure_depth_m as f32, state.settings.footpath_closure_depth_m as f32);
    let links = &mut *links;
    let depths = state.solver.depths();
    links.roads = under_roads.flooded(&state.grid, depths, r);
    links.footpaths = under_paths.flooded(&state.grid, depths, f);
    links.road_closed_s.resize(roads.len(), 0.0);
    let step_s = clock.step_ms as f64 / 1000.0;
    for (t, closed) in links.road_closed_s.iter_mut().zip(&links.roads) {
        if *closed {
            *t += step_s;
        }
    }
}

/// The plugin: needs a [`FloodState`] resource inserted by the caller.
pub struct FloodPlugin;

impl Plugin for FloodPlugin {
    fn build(&self, app: &mut App) {
        let step = app.world().resource::<FloodState>().settings.step.clone();
        register_domain(app, DOMAIN, duration_ms(&step).unwrap_or(60_000));
        app.init_resource::<FloodedLinks>();
        app.add_systems(DomainTick(DOMAIN), (advance_flood, publish_flooded_links).chain());
        app.add_systems(Observe, observe_flood);
        app.add_systems(Finalize, flood_kpis);
    }
}

fn advance_flood(clock: Res<SimClock>, mut state: ResMut<FloodState>) {
    let state = &mut *state;
    let rain: Vec<f64> = state.settings.rain.iter().map(|r| r.intensity_mps(clock.clock_ms())).collect();
    if rain != state.rain_now_mps {
        let sources = state.solver.source_rates_mut();
        sources.fill(0.0);
        for (r, zone) in rain.iter().zip(&state.rain_zones) {
            let r = *r as f32;
            match zone {
                Some(cells) => cells.iter().for_each(|&c| sources[c] += r),
                None => sources.iter_mut().for_each(|s| *s += r),
            }
        }
        // Rain on roofs goes down the buildings' pipes into the drains: booked, not put on the grid.
        for (s, cover) in sources.iter_mut().zip(&state.grid.cover) {
            if matches!(cover, LandCover::Building | LandCover::NoData) {
                *s = 0.0;
            }
        }
        state.rain_now_mps = rain;
    }
    let step_s = clock.step_ms as f64 / 1000.0;
    state.roof_rain_m3 +=
        state.rain_now_mps.iter().zip(&state.roof_area_m2).map(|(r, a)| *r as f32 as f64 * a).sum::<f64>() * step_s;
    let t_end = (clock.now_ms + clock.step_ms) as f64 / 1000.0;
    let t0 = clock.now_ms as f64 / 1000.0;
    // Each inflow enters at its mean rate over the step, so the step's volume is the hydrograph's exactly.
    let flows: Vec<(usize, f64)> =
        state.inflows.iter().map(|(c, h)| (*c, h.volume(t0, t_end) / step_s.max(1e-9))).collect();
    state.solver.point_flows = flows;
    state.solver.advance_to(t_end);
    let solver = &state.solver;
    // Maxima of the water above the ground (over the banks in the river channel), as flood maps show it.
    for (c, &h) in solver.depths().iter().enumerate() {
        let h = state.grid.above_ground(c, h);
        if h > state.max_depth_m[c] {
            state.max_depth_m[c] = h;
        }
        if h as f64 > solver.params.min_flow_depth_m {
            let v = solver.speed_mps(c) as f32;
            state.max_speed_mps[c] = state.max_speed_mps[c].max(v);
            state.max_hazard_m2ps[c] = state.max_hazard_m2ps[c].max(v * h);
        }
    }
}

fn observe_flood(clock: Res<SimClock>, mut state: ResMut<FloodState>, mut series: ResMut<TimeSeries>) {
    let now = clock.now_ms;
    let area = state.flooded_area_m2();
    if area > state.peak_flooded.0 {
        state.peak_flooded = (area, now);
    }
    let depths = state.solver.depths();
    let rows: Vec<(u64, usize, f64, f64)> = state
        .gauge_cells
        .iter()
        .enumerate()
        .filter_map(|(g, c)| c.map(|c| (now, g, depths[c] as f64, (depths[c] + state.solver.bed()[c]) as f64)))
        .collect();
    state.gauge_rows.extend(rows);
    if !series.due(now, clock.end_ms) {
        return;
    }
    series.record(now, "flood_flooded_area_m2", area);
    series.record(now, "flood_volume_m3", state.solver.volume_m3());
    series.record(now, "flood_rain_mm_per_h", state.settings.rain_mps(clock.clock_ms()) * 3.6e6);
}

fn flood_kpis(
    state: Res<FloodState>,
    links: Res<FloodedLinks>,
    city: Res<crate::sim::CityRes>,
    mut kpis: ResMut<Kpis>,
) {
    let d = DOMAIN;
    let s = &*state;
    let cell_area = (s.grid.cell_m as f64).powi(2);
    let flooded = s.settings.flooded_depth_m as f32;
    kpis.set(d, "peak_flooded_area_m2", s.peak_flooded.0);
    kpis.set(d, "time_of_peak_flooded_area_s", s.peak_flooded.1 as f64 / 1000.0);
    kpis.set(d, "max_flooded_area_m2", s.max_depth_m.iter().filter(|&&h| h > flooded).count() as f64 * cell_area);
    kpis.set(d, "max_depth_m", s.max_depth_m.iter().copied().fold(0.0, f32::max) as f64);
    let b_depth = s.settings.building_depth_m as f32;
    let wet_buildings = city
        .0
        .buildings
        .iter()
        .filter(|b| s.grid.cells_around(&b.footprint).iter().any(|&c| s.max_depth_m[c] > b_depth))
        .count();
    kpis.set(d, "buildings_with_water_over_threshold", wet_buildings as f64);
    let closed_m: f64 = city
        .0
        .roads
        .links()
        .iter()
        .zip(&links.road_closed_s)
        .filter(|(_, t)| **t > 0.0)
        .map(|(l, _)| l.length_m as f64)
        .sum();
    kpis.set(d, "road_km_closed_at_some_time", closed_m / 1000.0);
    let km_h: f64 = city
        .0
        .roads
        .links()
        .iter()
        .zip(&links.road_closed_s)
        .map(|(l, t)| l.length_m as f64 / 1000.0 * t / 3600.0)
        .sum();
    kpis.set(d, "road_km_hours_closed", km_h);
    let b = s.solver.balance;
    kpis.set(d, "rain_on_ground_m3", b.sources_m3);
    kpis.set(d, "rain_on_roofs_m3", s.roof_rain_m3);
    kpis.set(d, "infiltrated_and_drained_m3", b.losses_m3);
    kpis.set(d, "outflow_m3", b.boundary_out_m3);
    kpis.set(d, "inflow_m3", b.boundary_in_m3 + b.inflows_m3);
    kpis.set(d, "stored_at_end_m3", s.solver.volume_m3());
    let throughput = b.sources_m3 + b.inflows_m3 + b.boundary_in_m3 + b.initial_m3;
    let err = if throughput > 0.0 { (s.solver.volume_m3() - b.expected_m3()).abs() / throughput } else { 0.0 };
    kpis.set(d, "volume_balance_relative_error", err);
    kpis.set(d, "solver_steps", s.solver.steps as f64);
    for (p, pumped) in s.settings.pumps.iter().zip(&s.solver.pumped_m3) {
        kpis.set(d, &format!("pump_{}_pumped_m3", p.name), *pumped);
    }
    for (g, gauge) in s.settings.gauges.iter().enumerate() {
        let peak =
            s.gauge_rows
                .iter()
                .filter(|r| r.1 == g)
                .fold((f64::MIN, 0u64), |acc, r| if r.3 > acc.0 { (r.3, r.0) } else { acc });
        if peak.0 > f64::MIN {
            kpis.set(d, &format!("gauge_{}_peak_level_m", gauge.name), peak.0);
            kpis.set(d, &format!("gauge_{}_time_to_peak_s", gauge.name), peak.1 as f64 / 1000.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_level_edge_needs_its_level() {
        let mut f = FloodSection { boundary: EdgeKind::Fixed, ..FloodSection::default() };
        assert_eq!(f.validate().unwrap_err().0, "boundary_level_m");
        f.boundary_level_m = Some(1012.5);
        assert!(f.validate().is_ok());
        assert_eq!(f.edge_boundary(), Boundary::FixedLevel { level_m: 1012.5 });
        let free = FloodSection::default();
        assert_eq!(free.edge_boundary(), Boundary::FreeOutflow { slope: 0.01 });
    }

    #[test]
    fn a_link_is_flooded_when_water_stands_deeper_than_the_threshold_in_any_cell_under_it() {
        let (nx, ny, cell_m) = (10, 4, 5.0);
        let grid = FloodGrid {
            nx,
            ny,
            cell_m,
            origin: glam::Vec2::ZERO,
            z_m: vec![0.0; nx * ny],
            cover: vec![LandCover::Road; nx * ny],
            carved_m: vec![0.0; nx * ny],
        };
        // Along row 1 across the grid (and beyond its east edge), along row 3, and a link outside the grid.
        let along_row_1 = [glam::Vec2::new(2.5, 7.5), glam::Vec2::new(30.0, 7.5), glam::Vec2::new(70.0, 7.5)];
        let along_row_3 = [glam::Vec2::new(2.5, 17.5), glam::Vec2::new(47.5, 17.5)];
        let outside = [glam::Vec2::new(-50.0, -50.0), glam::Vec2::new(-10.0, -50.0)];
        let links = [&along_row_1[..], &along_row_3[..], &outside[..]];
        let under = CellsUnderLinks::new(&grid, links.iter().copied());
        // Every cell of row 1 once, in order; all of row 3; none for the link outside.
        assert_eq!(&under.cells[under.offsets[0]..under.offsets[1]], &(10..20).collect::<Vec<u32>>()[..]);
        assert_eq!(&under.cells[under.offsets[1]..under.offsets[2]], &(30..40).collect::<Vec<u32>>()[..]);
        assert_eq!(under.offsets[2], under.offsets[3]);
        let mut depths = vec![0.05_f32; nx * ny];
        assert_eq!(under.flooded(&grid, &depths, 0.1), vec![false, false, false]);
        depths[17] = 0.31;
        assert_eq!(under.flooded(&grid, &depths, 0.3), vec![true, false, false]);
        assert_eq!(under.flooded(&grid, &depths, 0.31), vec![false, false, false], "deeper than, not as deep as");
    }
}
