//! The `machi` command line: run scenarios, check city imports, inspect resolved scenarios.
//! Errors in the input exit with code 2 and a message naming the file and the place; nothing panics.

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use machi::error::InputError;
use machi::run::{default_out_dir, RunError, RunOptions};
use machi::scenario::{format_duration, Scenario};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The scenario run when none is given, relative to the workspace root.
const DEFAULT_SCENARIO: &str = "scenarios/andorra/baseline.toml";

#[derive(Parser)]
#[command(
    name = "machi",
    version,
    about = "Machi: a digital twin of a city. With no command, runs the default Andorra la Vella scenario."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario headless: writes kpis.json, timeseries.csv and replay.machi.
    Run {
        /// Scenario TOML (default: the Andorra la Vella baseline).
        scenario: Option<PathBuf>,
        /// Output folder (default: runs/<scenario name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Seed (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Import city files and report what was found and what was dropped.
    Import {
        /// OSM PBF, GeoJSON, GeoTIFF or ESRI ASCII grid files, in any mix.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// CRS of a terrain file that does not state it (e.g. EPSG:32631).
        #[arg(long)]
        dem_crs: Option<String>,
    },
    /// Print the fully resolved scenario (after `extends`).
    Inspect { scenario: PathBuf },
    /// Synthesise the distribution grid of a scenario's city from its buildings and streets, solve its
    /// power flow at every building's peak demand, and optionally write it as GeoJSON.
    Grid {
        /// Scenario TOML (default: the Andorra la Vella baseline).
        scenario: Option<PathBuf>,
        /// Write the grid (buses, cables, transformers) as GeoJSON here.
        #[arg(long)]
        geojson: Option<PathBuf>,
    },
    /// Solve the AC power flow of one network (MATPOWER .m or pandapower .json) and print the result.
    Powerflow {
        /// The network file.
        file: PathBuf,
        /// Print every bus and branch result as one JSON object.
        #[arg(long)]
        json: bool,
        /// Largest accepted power mismatch (MVA).
        #[arg(long, default_value_t = 1e-8)]
        tolerance_mva: f64,
        /// Newton–Raphson iterations before giving up.
        #[arg(long, default_value_t = 10)]
        max_iterations: usize,
        /// Use the backward/forward sweep (radial feeders with one slack) instead of Newton–Raphson.
        #[arg(long)]
        sweep: bool,
        /// Solve this many times from a flat start and report the median solve time (for benchmarks).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
    },
    /// Run SUMO demand (.rou.xml) on a SUMO network (.net.xml) with the microscopic (or the queue) model and
    /// print trip statistics in SUMO's terms (duration = arrival − insertion), for comparisons with SUMO.
    Traffic {
        /// The network (`.net.xml`).
        net: PathBuf,
        /// The demand (`.rou.xml`).
        routes: PathBuf,
        /// The vehicle model.
        #[arg(long, value_enum, default_value_t = TrafficModel::Micro)]
        model: TrafficModel,
        /// Time step (s) (default: the model's, 0.5 s micro, 1 s meso).
        #[arg(long)]
        step: Option<f64>,
        /// Stop at this clock time (s) even if vehicles are still driving (default: when all have arrived).
        #[arg(long)]
        until: Option<f64>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Write one CSV row per finished vehicle here.
        #[arg(long)]
        tripinfo: Option<PathBuf>,
    },
    /// Solve a capacitated vehicle routing instance (CVRPLIB format, EUC_2D) with the robots' dispatcher and
    /// print the total distance and the routes.
    Dispatch {
        /// The instance file (`.vrp`).
        file: PathBuf,
        /// Print `{"distance": …, "routes": [[node, …], …], "seconds": …}` (the file's node numbers).
        #[arg(long)]
        json: bool,
        /// Ruin-and-recreate rounds (more: better routes, longer).
        #[arg(long, default_value_t = machi::robots::dispatch::DispatchParams::default().rounds)]
        rounds: usize,
        /// Seed of the dispatcher's random choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// An error and the exit code it deserves.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure { code: 2, error: e.into() }
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        let code = if matches!(e, RunError::Input(_)) { 2 } else { 1 };
        Failure { code, error: e.into() }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure { code: 1, error }
    }
}

fn default_scenario() -> PathBuf {
    let here = PathBuf::from(DEFAULT_SCENARIO);
    if here.exists() {
        return here;
    }
    // Run from elsewhere: the workspace this binary was built from.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(DEFAULT_SCENARIO)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run { scenario: None, out: None, threads: None, seed: None }) {
        Command::Run { scenario, out, threads, seed } => run(scenario, out, threads, seed),
        Command::Import { files, json, dem_crs } => import(&files, json, dem_crs),
        Command::Inspect { scenario } => inspect(&scenario),
        Command::Grid { scenario, geojson } => grid(scenario, geojson),
        Command::Dispatch { file, json, rounds, seed } => dispatch(&file, json, rounds, seed),
        Command::Traffic { net, routes, model, step, until, threads, json, tripinfo } => {
            traffic(&net, &routes, TrafficRun { model, step, until, threads, json, tripinfo })
        }
        Command::Powerflow { file, json, tolerance_mva, max_iterations, sweep, repeat } => {
            powerflow(&file, json, PowerflowRun { tolerance_mva, max_iterations, sweep, repeat })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn run(
    scenario: Option<PathBuf>,
    out: Option<PathBuf>,
    threads: Option<usize>,
    seed: Option<u64>,
) -> Result<(), Failure> {
    let path = scenario.unwrap_or_else(default_scenario);
    let scenario = Scenario::load(&path)?;
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if threads == 0 {
        return Err(anyhow::anyhow!("--threads must be at least 1").into());
    }
    let options = RunOptions { out_dir: out.unwrap_or_else(|| default_out_dir(&scenario)), threads, seed };
    eprintln!("machi: running {} ({}) on {} thread(s)", scenario.name(), path.display(), threads);
    let bar = ProgressBar::new(scenario.duration_ms);
    bar.set_style(ProgressStyle::with_template("{bar:40} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    let started = Instant::now();
    let summary = machi::run::run(&scenario, &options, |now, total| {
        let wall = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(now);
        bar.set_message(format!(
            "{} / {} simulated, {:.0}× real time",
            format_duration(now),
            format_duration(total),
            now as f64 / 1000.0 / wall
        ));
    })?;
    bar.finish();
    let wall = started.elapsed().as_secs_f64();
    let k = &summary.kpis;
    let count = |v: &serde_json::Value| v.as_f64().map_or("no".to_string(), |x| format!("{x:.0}"));
    let mut vehicles = match k["mobility"].get("vehicle_trips_completed") {
        Some(v) => format!(", {} vehicle trips completed", count(v)),
        None => String::new(),
    };
    if let Some(b) = k["mobility"].get("bus_trips_completed") {
        vehicles.push_str(&format!(", {} bus trips completed", count(b)));
    }
    eprintln!(
        "machi: {} simulated in {:.2} s ({:.0}× real time); {} residents, {} trips completed{vehicles}; outputs in {}",
        format_duration(summary.simulated_ms),
        wall,
        summary.simulated_ms as f64 / 1000.0 / wall.max(1e-9),
        k["population"]["residents"],
        count(&k["mobility"]["trips_completed"]),
        summary.out_dir.display()
    );
    Ok(())
}

fn import(files: &[PathBuf], json: bool, dem_crs: Option<String>) -> Result<(), Failure> {
    let crs = match dem_crs {
        Some(text) => Some(machi::geo::Crs::parse(&text).with_context(|| format!("--dem-crs: unknown CRS {text:?}"))?),
        None => None,
    };
    let started = Instant::now();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let name = files.first().and_then(|f| f.file_stem()).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let city = machi::import::load_files(&name, &refs, crs, None)?;
    let seconds = started.elapsed().as_secs_f64();
    let r = &city.report;
    let mut out = String::new();
    if json {
        let mut v = serde_json::to_value(r).context("serialising the import report")?;
        v["import_seconds"] = serde_json::json!(seconds);
        out = serde_json::to_string_pretty(&v).context("serialising the import report")? + "\n";
        return print(&out);
    }
    let names = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
    let _ = writeln!(out, "Imported {names} in {seconds:.3} s");
    let _ = writeln!(
        out,
        "  buildings     {} ({} with a height, {} with floors only, {} with the default height)",
        r.buildings, r.buildings_with_height, r.buildings_with_levels, r.buildings_with_default_height
    );
    let uses = r.buildings_by_use.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
    let _ = writeln!(out, "  by use        {uses}");
    let _ = writeln!(
        out,
        "  roads         {:.1} km ({:.1} lane-km) in {} directed links, {} junctions, {} signals, {} turn restrictions",
        r.road_km, r.lane_km, r.road_links, r.junctions, r.signals, r.turn_restrictions
    );
    let _ = writeln!(out, "  footpaths     {:.1} km", r.footpath_km);
    let _ = writeln!(out, "  bus stops     {}", r.bus_stops);
    let _ = writeln!(out, "  bus routes    {} (one direction of a line each)", r.bus_routes);
    let _ = writeln!(out, "  waterways     {} ({:.1} km)", r.waterways, r.waterway_km);
    let _ = writeln!(out, "  terrain       {}", r.terrain.as_deref().unwrap_or("none"));
    if r.dropped.is_empty() {
        let _ = writeln!(out, "  dropped       nothing");
    } else {
        let _ = writeln!(out, "  dropped:");
        for (reason, n) in &r.dropped {
            let _ = writeln!(out, "    {n:>6}  {reason}");
        }
    }
    print(&out)
}

/// Writes to stdout; a closed pipe (`machi import … | head`) ends quietly instead of panicking.
fn print(text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::from(e).context("writing to stdout").into())
        }
        _ => Ok(()),
    }
}

fn inspect(path: &Path) -> Result<(), Failure> {
    let scenario = Scenario::load(path)?;
    let header = format!("# {} resolved (after extends); scenario hash {:016x}\n", path.display(), scenario.hash());
    print(&(header + &scenario.resolved_toml))
}

/// How `machi powerflow` solves.
struct PowerflowRun {
    tolerance_mva: f64,
    max_iterations: usize,
    sweep: bool,
    repeat: u32,
}

fn powerflow(file: &Path, json: bool, run: PowerflowRun) -> Result<(), Failure> {
    use machi::grid::{Algorithm, PowerFlow, PowerFlowError, PowerFlowOptions};
    let started = Instant::now();
    let net = machi::grid::read_case(file)?;
    let read_s = started.elapsed().as_secs_f64();
    let algorithm = if run.sweep { Algorithm::Sweep } else { Algorithm::Newton };
    let options = PowerFlowOptions {
        algorithm,
        tolerance_mva: run.tolerance_mva,
        max_iterations: run.max_iterations,
        ..PowerFlowOptions::default()
    };
    let prepared = Instant::now();
    let mut pf = PowerFlow::new(&net, options).with_context(|| format!("power flow of {}", file.display()))?;
    let prepare_s = prepared.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(run.repeat as usize);
    let mut solve = || {
        let solved = Instant::now();
        let result = pf.solve(&net);
        times.push(solved.elapsed().as_secs_f64());
        result
    };
    let mut result = solve();
    for _ in 1..run.repeat {
        result = solve();
    }
    times.sort_by(f64::total_cmp);
    let solve_s = times[times.len() / 2];
    if json {
        let mut v = serde_json::json!({
            "file": file.display().to_string(),
            "name": net.name,
            "base_mva": net.base_mva,
            "read_seconds": read_s,
            "prepare_seconds": prepare_s,
            "solve_seconds": solve_s,
            "solves": run.repeat,
        });
        match &result {
            Ok(solution) => {
                v["converged"] = true.into();
                v["iterations"] = solution.iterations.into();
                v["mismatch_mva"] = solution.mismatch_mva.into();
                v["losses_mw"] = solution.losses_mw.into();
                v["buses"] = net
                    .buses
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        serde_json::json!({
                            "id": b.id,
                            "name": b.name.clone().unwrap_or_else(|| b.id.to_string()),
                            "vm_pu": finite(solution.vm_pu[i]),
                            "va_degree": finite(solution.va_deg[i]),
                            "p_mw": finite(solution.p_mw[i]),
                            "q_mvar": finite(solution.q_mvar[i]),
                        })
                    })
                    .collect();
                v["branches"] = net
                    .branches
                    .iter()
                    .enumerate()
                    .map(|(k, b)| {
                        serde_json::json!({
                            "kind": b.kind,
                            "index": b.source_index,
                            "from_bus": net.buses[b.from].id,
                            "to_bus": net.buses[b.to].id,
                            "p_from_mw": finite(solution.p_from_mw[k]),
                            "q_from_mvar": finite(solution.q_from_mvar[k]),
                            "p_to_mw": finite(solution.p_to_mw[k]),
                            "q_to_mvar": finite(solution.q_to_mvar[k]),
                            "loading_percent": finite(solution.loading_percent[k]),
                        })
                    })
                    .collect();
            }
            Err(e) => {
                v["converged"] = false.into();
                v["iterations"] = match e {
                    PowerFlowError::Diverged { iterations, .. } => (*iterations).into(),
                    _ => 0.into(),
                };
                v["error"] = e.to_string().into();
                v["buses"] = serde_json::Value::Array(Vec::new());
            }
        }
        print(&(serde_json::to_string(&v).context("serialising the solution")? + "\n"))?;
        return match result {
            Ok(_) => Ok(()),
            Err(e) => Err(Failure {
                code: 1,
                error: anyhow::Error::new(e).context(format!("power flow of {}", file.display())),
            }),
        };
    }
    let solution = result.with_context(|| format!("power flow of {}", file.display()))?;
    let (mut lo, mut hi) = ((f64::INFINITY, 0), (f64::NEG_INFINITY, 0));
    for (i, &v) in solution.vm_pu.iter().enumerate().filter(|(_, v)| v.is_finite()) {
        if v < lo.0 {
            lo = (v, i);
        }
        if v > hi.0 {
            hi = (v, i);
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} buses, {} branches, {:.3} MW of load; converged in {} iterations (mismatch {:.2e} MVA)",
        file.display(),
        net.buses.len(),
        net.branches.len(),
        net.total_load_mw(),
        solution.iterations,
        solution.mismatch_mva
    );
    let _ = writeln!(
        out,
        "  read {:.3} ms, prepared {:.3} ms, solved {:.3} ms{}",
        read_s * 1e3,
        prepare_s * 1e3,
        solve_s * 1e3,
        if run.repeat > 1 { format!(" (median of {})", run.repeat) } else { String::new() }
    );
    let _ = writeln!(
        out,
        "  voltage  min {:.6} pu at bus {}, max {:.6} pu at bus {}",
        lo.0, net.buses[lo.1].id, hi.0, net.buses[hi.1].id
    );
    let _ = writeln!(out, "  losses   {:.6} MW", solution.losses_mw);
    let mut loaded: Vec<(usize, f64)> =
        solution.loading_percent.iter().copied().enumerate().filter(|(_, l)| l.is_finite()).collect();
    loaded.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (k, l) in loaded.iter().take(5) {
        let b = &net.branches[*k];
        let _ = writeln!(
            out,
            "  loading  {l:7.2} %  {:?} {} (bus {} → {})",
            b.kind, b.source_index, net.buses[b.from].id, net.buses[b.to].id
        );
    }
    print(&out)
}

fn dispatch(file: &Path, json: bool, rounds: usize, seed: u64) -> Result<(), Failure> {
    use machi::robots::dispatch::{solve, DispatchParams};
    use machi::robots::vrp::Cvrp;
    let problem = Cvrp::read(file)?;
    let started = Instant::now();
    let routes = solve(&problem, &DispatchParams { rounds, seed, ..DispatchParams::default() });
    let seconds = started.elapsed().as_secs_f64();
    let ids: Vec<Vec<u32>> = routes.routes.iter().map(|r| r.iter().map(|&c| problem.node_ids[c]).collect()).collect();
    if json {
        let v = serde_json::json!({
            "file": file.display().to_string(),
            "name": problem.name,
            "customers": problem.len() - 1,
            "capacity": problem.capacity,
            "distance": routes.distance,
            "routes": ids,
            "seconds": seconds,
        });
        return print(&(serde_json::to_string(&v).context("serialising the routes")? + "\n"));
    }
    let mut out = format!(
        "{}: {} customers, capacity {}: distance {} on {} routes ({:.3} s)\n",
        problem.name,
        problem.len() - 1,
        problem.capacity,
        routes.distance,
        routes.routes.len(),
        seconds
    );
    for (k, r) in ids.iter().enumerate() {
        let stops: Vec<String> = r.iter().map(u32::to_string).collect();
        let _ = writeln!(out, "Route #{}: {}", k + 1, stops.join(" "));
    }
    print(&out)
}

/// The vehicle model `machi traffic` runs.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum TrafficModel {
    /// The microscopic model (IDM, MOBIL, signals).
    Micro,
    /// The mesoscopic queue model.
    Meso,
}

struct TrafficRun {
    model: TrafficModel,
    step: Option<f64>,
    until: Option<f64>,
    threads: Option<usize>,
    json: bool,
    tripinfo: Option<PathBuf>,
}

fn traffic(net_path: &Path, routes_path: &Path, run: TrafficRun) -> Result<(), Failure> {
    use machi::import::sumo;
    use machi::mobility::junctions::SignalParams;
    use machi::mobility::meso::{QueueParams, QueueTraffic};
    use machi::mobility::micro::{MicroParams, Traffic};
    use machi::mobility::vehicles::VehicleModel;
    let threads = machi::sim::init_thread_pool(
        run.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
    );
    let started = Instant::now();
    let net = sumo::read_net(net_path)?;
    let demand = sumo::read_routes(routes_path, &net)?;
    let read_s = started.elapsed().as_secs_f64();
    let bad = |e: String| InputError::file(routes_path, e);
    let (mut sim, step_s): (Box<dyn VehicleModel>, f64) = match run.model {
        TrafficModel::Micro => {
            let step_s = run.step.unwrap_or(MicroParams::default().step_s);
            let params = MicroParams { step_s, ..MicroParams::default() };
            (Box::new(Traffic::from_sumo(&net, &demand, &SignalParams::default(), params).map_err(bad)?), step_s)
        }
        TrafficModel::Meso => {
            let step_s = run.step.unwrap_or(QueueParams::default().step_s);
            let params = QueueParams { step_s, ..QueueParams::default() };
            (Box::new(QueueTraffic::from_sumo(&net, &demand, &SignalParams::default(), params).map_err(bad)?), step_s)
        }
    };
    let started = Instant::now();
    match run.until {
        Some(t) => sim.run_until(t),
        None => {
            while !sim.is_done() {
                sim.step();
            }
        }
    }
    let sim_s = started.elapsed().as_secs_f64();
    let done = sim.finished();
    let n = done.len().max(1) as f64;
    let mean = |f: &dyn Fn(&machi::mobility::vehicles::TripResult) -> f64| done.iter().map(f).sum::<f64>() / n;
    let duration = mean(&|r| r.arrive_s - r.inserted_s);
    let time_loss = mean(&|r| r.arrive_s - r.inserted_s - r.free_flow_s);
    let depart_delay = mean(&|r| r.inserted_s - r.depart_s);
    let route_length = mean(&|r| r.length_m);
    let stats = sim.stats();
    if let Some(path) = &run.tripinfo {
        let mut csv =
            String::from("id,depart_s,inserted_s,arrive_s,duration_s,route_length_m,time_loss_s,teleported,reroutes\n");
        for r in done {
            let _ = writeln!(
                csv,
                "{},{},{},{},{:.3},{:.2},{:.3},{},{}",
                demand.vehicles[r.id as usize].id,
                r.depart_s,
                r.inserted_s,
                r.arrive_s,
                r.arrive_s - r.inserted_s,
                r.length_m,
                r.arrive_s - r.inserted_s - r.free_flow_s,
                r.teleported,
                r.reroutes
            );
        }
        machi::output::write_atomic(path, csv.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    let v = serde_json::json!({
        "network": net_path.display().to_string(),
        "routes": routes_path.display().to_string(),
        "model": format!("{:?}", run.model).to_lowercase(),
        "step_s": step_s,
        "threads": threads,
        "vehicles": demand.vehicles.len(),
        "arrived": done.iter().filter(|r| !r.teleported).count(),
        "teleported": stats.teleports,
        "running_at_end": sim.on_network(),
        "waiting_to_enter_at_end": sim.waiting_to_enter() + sim.not_yet_departed(),
        "mean_duration_s": duration,
        "mean_time_loss_s": time_loss,
        "mean_depart_delay_s": depart_delay,
        "mean_route_length_m": route_length,
        "end_time_s": sim.now_s(),
        "vehicle_updates": stats.vehicle_updates,
        "lane_changes": stats.lane_changes,
        "read_s": read_s,
        "simulate_s": sim_s,
        "updates_per_s": stats.vehicle_updates as f64 / sim_s.max(1e-9),
    });
    if run.json {
        return print(&(serde_json::to_string(&v).context("serialising the statistics")? + "\n"));
    }
    let out = format!(
        "{} vehicles on {} links: {} arrived, {} teleported, {} still driving at {:.0} s\n  \
         mean duration {duration:.2} s, time loss {time_loss:.2} s, depart delay {depart_delay:.2} s, route {route_length:.1} m\n  \
         read {:.2} s, simulated in {sim_s:.3} s ({} vehicle updates, {:.2} M/s on {threads} threads), {} lane changes\n",
        demand.vehicles.len(),
        net.graph.links().len(),
        done.iter().filter(|r| !r.teleported).count(),
        stats.teleports,
        sim.on_network(),
        sim.now_s(),
        read_s,
        stats.vehicle_updates,
        stats.vehicle_updates as f64 / sim_s.max(1e-9) / 1e6,
        stats.lane_changes,
    );
    print(&out)
}

/// A number for JSON: null where it is not finite (de-energised buses, branches without a rating).
fn finite(x: f64) -> serde_json::Value {
    if x.is_finite() {
        x.into()
    } else {
        serde_json::Value::Null
    }
}

fn grid(scenario: Option<PathBuf>, geojson: Option<PathBuf>) -> Result<(), Failure> {
    use machi::grid::synthesis::{synthesise, SynthesisParams};
    use machi::grid::{PowerFlow, PowerFlowOptions};
    let path = scenario.unwrap_or_else(default_scenario);
    let scenario = Scenario::load(&path)?;
    let city = machi::run::load_city(&scenario)?;
    let started = Instant::now();
    let grid = synthesise(&city, &SynthesisParams::default())
        .with_context(|| format!("{}: the city has no streets or no building with demand", path.display()))?;
    let synth_s = started.elapsed().as_secs_f64();
    let net = &grid.network;
    let solved = Instant::now();
    let sol = PowerFlow::new(net, PowerFlowOptions::default())
        .and_then(|mut pf| pf.solve(net))
        .context("power flow of the synthesised grid at peak demand")?;
    let solve_s = solved.elapsed().as_secs_f64();
    let cable_km = |kv: f64| -> f64 {
        net.branches
            .iter()
            .enumerate()
            .filter(|(_, b)| b.kind == machi::grid::network::BranchKind::Line && net.buses[b.from].vn_kv == kv)
            .map(|(k, _)| grid.branch_path[k].windows(2).map(|w| w[0].distance(w[1]) as f64).sum::<f64>())
            .sum::<f64>()
            / 1000.0
    };
    let vmin = sol.vm_pu.iter().copied().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
    let worst_trafo = grid.substations.iter().map(|&(_, t)| sol.loading_percent[t]).fold(0.0, f64::max);
    let worst_line = net
        .branches
        .iter()
        .enumerate()
        .filter(|(_, b)| b.kind == machi::grid::network::BranchKind::Line)
        .map(|(k, _)| sol.loading_percent[k])
        .fold(0.0, f64::max);
    let mut out = String::new();
    let _ =
        writeln!(out, "{}: synthesised grid in {:.3} s, power flow at peak in {:.3} s", city.name, synth_s, solve_s);
    let _ = writeln!(
        out,
        "  {} buses, {} branches, {} MV/LV substations, {:.1} km MV cable, {:.1} km LV cable",
        net.buses.len(),
        net.branches.len(),
        grid.substations.len(),
        cable_km(20.0),
        cable_km(0.4)
    );
    let _ = writeln!(
        out,
        "  peak load {:.2} MW; losses {:.3} MW; lowest voltage {:.4} pu; highest transformer loading {:.1} %, cable {:.1} %",
        net.total_load_mw(),
        sol.losses_mw,
        vmin,
        worst_trafo,
        worst_line
    );
    if let Some(file) = geojson {
        let text = serde_json::to_string(&grid.to_geojson(&city)).context("serialising the grid")?;
        machi::output::write_atomic(&file, text.as_bytes()).with_context(|| format!("writing {}", file.display()))?;
        let _ = writeln!(out, "  wrote {}", file.display());
    }
    print(&out)
}
