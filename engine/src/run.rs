//! One run of a scenario, start to finish: load the City, generate the population, build the World with
//! every domain's plugin, tick it to the end while the replay writer streams frames on its own thread,
//! then write `kpis.json`, `timeseries.csv` and `replay.machi` into the run folder (each atomically).

use crate::city::City;
use crate::coupling::crossings::crossings_of;
use crate::coupling::{robot_depot_chargers, CouplingPlugin, CouplingSeed};
use crate::crowd::crossings::CrossingParams;
use crate::error::InputError;
use crate::flood::plugin::{FloodPlugin, FloodState};
use crate::grid::plugin::{GridPlugin, GridState};
use crate::mobility::teleport::{TeleportMobilityPlugin, TeleportSettings};
use crate::mobility::traffic::{TrafficState, VehicleMobilityPlugin};
use crate::observe::replay::{ReplayObserverPlugin, ReplaySettings};
use crate::output::write_atomic;
use crate::population::Population;
use crate::robots::plugin::{RobotsPlugin, RobotsState};
use crate::scenario::Scenario;
use crate::sim::{CityRes, Kpis, PopulationRes, Sim, SimConfig, TimeSeries};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of `machi run`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Output folder (created if missing).
    pub out_dir: PathBuf,
    /// Threads that compute (≥ 1; see [`crate::sim::init_thread_pool`]). The pool is per process: the first
    /// run in a process sizes it.
    pub threads: usize,
    /// Seed override (else the scenario's).
    pub seed: Option<u64>,
}

/// Errors of a run: bad input (exit code 2) or failure to write outputs.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A scenario or city file is wrong (exit code 2).
    #[error(transparent)]
    Input(#[from] InputError),
    /// An output file could not be written.
    #[error("writing {}: {source}", path.display())]
    Output {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The replay could not be written.
    #[error("replay: {0}")]
    Replay(#[from] crate::replay::ReplayError),
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Where the outputs are.
    pub out_dir: PathBuf,
    /// The KPI document written to `kpis.json`.
    pub kpis: serde_json::Value,
    /// Simulated time (ms).
    pub simulated_ms: u64,
}

/// Loads the City of a scenario (every importer it names).
pub fn load_city(scenario: &Scenario) -> Result<City, InputError> {
    crate::import::load_city(&scenario.file.city, &scenario.path)
}

/// Runs `scenario` with `options`, calling `progress(now_ms, total_ms)` as time advances.
pub fn run(
    scenario: &Scenario,
    options: &RunOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<RunSummary, RunError> {
    // The pool first: import, set-up and the domains' solvers all size their work by it.
    crate::sim::init_thread_pool(options.threads);
    let seed = options.seed.unwrap_or(scenario.file.seed);
    let city = Arc::new(load_city(scenario)?);
    let params = scenario.file.population.clone();
    let population = Arc::new(Population::generate(&city, &params, seed));
    let replay_path = options.out_dir.join("replay.machi");
    std::fs::create_dir_all(&options.out_dir)
        .map_err(|source| RunError::Output { path: options.out_dir.clone(), source })?;
    let observe_interval = gcd(scenario.frame_interval_ms, scenario.timeseries_interval_ms);
    let replay = ReplaySettings::open(&replay_path, scenario, seed, &city, &population)?;
    let settings = TeleportSettings { params, threads: options.threads };
    let config = SimConfig {
        threads: options.threads,
        duration_ms: scenario.duration_ms,
        start_of_day_ms: scenario.start_ms,
        observe_interval_ms: observe_interval,
    };
    let flood = match &scenario.file.flood {
        Some(section) => Some(FloodState::new(&city, section, &scenario.path)?),
        None => None,
    };
    // With a robot fleet, its depots are grid chargers (the coupling's set-up).
    let (grid_section, depot_chargers) = match (&scenario.file.grid, &scenario.file.robots) {
        (Some(grid), Some(robots)) => {
            let (grid, depots) = robot_depot_chargers(grid, robots);
            (Some(grid), Some(depots))
        }
        (grid, _) => (grid.clone(), None),
    };
    let grid = match &grid_section {
        Some(section) => Some(GridState::new(&city, section, seed, &scenario.path)?),
        None => None,
    };
    let mut traffic = match scenario.file.mobility.vehicle_model() {
        Some(_) => Some(TrafficState::new(
            &city,
            &scenario.file.mobility,
            scenario.vehicle_frame_interval_ms,
            &scenario.path,
            seed,
        )?),
        None => None,
    };
    let mut robots = match &scenario.file.robots {
        Some(section) => Some(RobotsState::new(
            &city,
            &population,
            section,
            seed,
            scenario.start_ms as f64 / 1000.0,
            scenario.sidewalk_frame_interval_ms,
            &scenario.path,
        )?),
        None => None,
    };
    // Walkers wait at crossings for the lights and the gaps in traffic (the coupling's set-up).
    let crossing_traffic = robots.as_mut().map(|robots| {
        let (crossings, road_side) = crossings_of(&city, &scenario.file.mobility.signals, CrossingParams::default());
        robots.crowd.set_crossings(crossings);
        if let Some(traffic) = traffic.as_mut() {
            traffic.arrivals.watch(road_side.watched(), city.roads.links().len());
        }
        road_side
    });
    let mobility = match traffic.is_some() {
        true => Sim::plugin(VehicleMobilityPlugin),
        false => Sim::plugin(TeleportMobilityPlugin),
    };
    let mut plugins = vec![mobility, Sim::plugin(ReplayObserverPlugin)];
    if flood.is_some() {
        plugins.push(Sim::plugin(FloodPlugin));
    }
    if grid.is_some() {
        plugins.push(Sim::plugin(GridPlugin));
    }
    if robots.is_some() {
        plugins.push(Sim::plugin(RobotsPlugin));
    }
    plugins.push(Sim::plugin(CouplingPlugin));
    let (c, p) = (city.clone(), population.clone());
    let timeseries_interval_ms = scenario.timeseries_interval_ms;
    let mut sim = Sim::new(
        config,
        move |world| {
            world.insert_resource(CityRes(c));
            world.insert_resource(PopulationRes(p));
            world.insert_resource(settings);
            world.insert_resource(TimeSeries { interval_ms: timeseries_interval_ms, ..TimeSeries::default() });
            world.insert_resource(CouplingSeed(seed));
            world.insert_resource(replay);
            if let Some(traffic) = traffic {
                world.insert_resource(traffic);
            }
            if let Some(flood) = flood {
                world.insert_resource(flood);
            }
            if let Some(robots) = robots {
                world.insert_resource(robots);
            }
            if let Some(grid) = grid {
                world.insert_resource(grid);
            }
            if let Some(crossing_traffic) = crossing_traffic {
                world.insert_resource(crossing_traffic);
            }
            if let Some(depots) = depot_chargers {
                world.insert_resource(depots);
            }
        },
        plugins,
    );
    sim.run(|now| progress(now, scenario.duration_ms));
    let replay_summary = sim.world_mut().resource_mut::<ReplaySettings>().finish()?;

    let kpis = sim.world().resource::<Kpis>().clone();
    let series = sim.world().resource::<TimeSeries>().clone();
    let (workers, students, others) = population.role_counts();
    let mut doc = json!({
        "scenario": scenario.name(),
        "scenario_hash": format!("{:016x}", scenario.hash()),
        "seed": seed,
        "duration_s": scenario.duration_ms as f64 / 1000.0,
        "city": {
            "name": city.name,
            "buildings": city.buildings.len(),
            "road_km": city.report.road_km,
            "footpath_km": city.report.footpath_km,
        },
        "population": {
            "residents": population.persons.len(),
            "jobs": population.jobs.iter().map(|&j| j as u64).sum::<u64>(),
            "workers": workers,
            "students": students,
            "others": others,
        },
        "replay": { "frames": replay_summary.agent_frames, "chunks": replay_summary.chunks },
    });
    for (domain, values) in &kpis.0 {
        doc[domain] = values.iter().map(|(k, &v)| (k.clone(), kpi_json(v))).collect::<serde_json::Map<_, _>>().into();
    }
    let write = |name: &str, bytes: &[u8]| {
        let path = options.out_dir.join(name);
        write_atomic(&path, bytes).map_err(|source| RunError::Output { path, source })
    };
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    write("kpis.json", text.as_bytes())?;
    write("timeseries.csv", series.to_csv().as_bytes())?;
    if let Some(traffic) = sim.world().get_resource::<crate::mobility::traffic::TrafficState>() {
        write("link_volumes.csv", traffic.link_volumes_csv().as_bytes())?;
        if let Some(geojson) = traffic.link_volumes_geojson(&city) {
            write("link_volumes.geojson", (serde_json::to_string(&geojson).unwrap_or_default() + "\n").as_bytes())?;
        }
    }
    if let Some(flood) = sim.world().get_resource::<FloodState>() {
        write("gauges.csv", crate::flood::output::gauges_csv(flood).as_bytes())?;
        for (name, values) in [
            ("max_depth.tif", &flood.max_depth_m),
            ("max_velocity.tif", &flood.max_speed_mps),
            ("hazard.tif", &flood.max_hazard_m2ps),
        ] {
            write(name, &crate::flood::output::geotiff(&flood.grid, &city.frame, values))?;
        }
    }
    Ok(RunSummary { out_dir: options.out_dir.clone(), kpis: doc, simulated_ms: scenario.duration_ms })
}

/// A KPI as JSON: whole numbers as integers (counts), others as they are.
fn kpi_json(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The default output folder of a scenario: `runs/<name>`.
pub fn default_out_dir(scenario: &Scenario) -> PathBuf {
    Path::new("runs").join(scenario.name())
}
