//! The simulation core: a bevy_app [`App`] driven headless on an integer-millisecond clock.
//!
//! Each domain is a bevy `Plugin` that registers a [`DomainStep`] (its name and step, ms) and adds its
//! systems to the schedule [`DomainTick`]`(name)`. [`Sim::run`] advances time from sync point to sync point:
//! at time t it first runs [`Observe`] if an observation is due (state *at* t), then every domain whose next
//! step is due at t, in registration order, each advancing its state over [t, t + step). Domains with
//! different steps therefore meet exactly at the common multiples of their steps. At the end [`Finalize`]
//! runs once so observers can write KPIs.
//!
//! Parallelism: one bevy task pool (`ComputeTaskPool`) for the whole engine, sized by `threads`
//! ([`init_thread_pool`]: N − 1 workers plus the thread that runs the simulation). Schedules run their
//! systems in order on the simulation's thread; systems and models split their hot loops into pieces
//! with [`fork_join`] (results in piece order, whoever ran them; a team for loops of many short phases),
//! and the simulation's thread works through the pieces with the workers. Each piece writes only its own
//! entities or cells, so results do not depend on the thread count.

pub mod fork_join;

pub use fork_join::{par_chunks_mut, par_map_ranges, run_pieces, with_team};

use crate::city::City;
use crate::population::Population;
use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use bevy_ecs::schedule::{ScheduleLabel, SingleThreadedExecutor};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The schedule of one domain's tick.
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct DomainTick(pub &'static str);

/// Observers: sample state into time series and replay frames.
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Observe;

/// Runs once after the last tick: observers compute KPIs.
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Finalize;

/// The City, shared read-only by every domain.
#[derive(Resource, Clone)]
pub struct CityRes(pub Arc<City>);

/// The population, shared read-only.
#[derive(Resource, Clone)]
pub struct PopulationRes(pub Arc<Population>);

/// The clock, read by every system.
#[derive(Resource, Clone, Copy, Debug, Default)]
pub struct SimClock {
    /// Simulated time since the run started (ms).
    pub now_ms: u64,
    /// Time of day at the run's start (ms after midnight); clock time = `start_of_day_ms + now_ms`.
    pub start_of_day_ms: u64,
    /// Step (ms) of the domain currently ticking: it advances state over [now, now + step).
    pub step_ms: u64,
    /// End of the run (ms since start).
    pub end_ms: u64,
}

impl SimClock {
    /// Clock time (ms after midnight of the first day) now.
    pub fn clock_ms(&self) -> u64 {
        self.start_of_day_ms + self.now_ms
    }
}

/// A domain's registration: its name (also its schedule label) and step.
#[derive(Clone, Copy, Debug)]
pub struct DomainStep {
    /// Domain name: its schedule label and KPI section.
    pub name: &'static str,
    /// Step (ms), > 0.
    pub step_ms: u64,
}

/// Domains registered by plugins, in registration order.
#[derive(Resource, Default, Debug)]
pub struct Domains(pub Vec<DomainStep>);

/// Registers a domain with its step; plugins call this from `build`.
pub fn register_domain(app: &mut App, name: &'static str, step_ms: u64) {
    app.init_schedule(DomainTick(name));
    app.world_mut().get_resource_or_insert_with(Domains::default).0.push(DomainStep { name, step_ms: step_ms.max(1) });
}

/// Time series: one row per observation, named columns (written as CSV with columns in name order).
#[derive(Resource, Default, Debug, Clone)]
pub struct TimeSeries {
    /// (time since start, ms) → column → value.
    pub rows: BTreeMap<u64, BTreeMap<String, f64>>,
    /// Interval between rows (ms; the scenario's `output.timeseries_interval`); 0 = every observation.
    pub interval_ms: u64,
}

impl TimeSeries {
    /// Whether observers should record a row at `now_ms`: on the interval, and at the run's end `end_ms`.
    pub fn due(&self, now_ms: u64, end_ms: u64) -> bool {
        self.interval_ms == 0 || now_ms.is_multiple_of(self.interval_ms) || now_ms == end_ms
    }

    /// Records `value` in column `column` at `t_ms`.
    pub fn record(&mut self, t_ms: u64, column: &str, value: f64) {
        self.rows.entry(t_ms).or_default().insert(column.to_string(), value);
    }

    /// CSV text: `time_s` then every column seen, sorted; empty cells where a row lacks a column.
    pub fn to_csv(&self) -> String {
        let mut columns: Vec<&String> = self.rows.values().flat_map(|r| r.keys()).collect();
        columns.sort();
        columns.dedup();
        let mut out = String::from("time_s");
        for c in &columns {
            out.push(',');
            out.push_str(c);
        }
        out.push('\n');
        for (t, row) in &self.rows {
            out.push_str(&format!("{}", *t as f64 / 1000.0));
            for c in &columns {
                out.push(',');
                if let Some(v) = row.get(*c) {
                    out.push_str(&format_number(*v));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Prints a number exactly (shortest round-trip form), integers without a fraction.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// KPIs by domain: domain → name → value. Observers fill it in [`Finalize`].
#[derive(Resource, Default, Debug, Clone)]
pub struct Kpis(pub BTreeMap<String, BTreeMap<String, f64>>);

impl Kpis {
    /// Sets KPI `name` of `domain`.
    pub fn set(&mut self, domain: &str, name: &str, value: f64) {
        self.0.entry(domain.to_string()).or_default().insert(name.to_string(), value);
    }
}

/// How to run: threads and observation intervals.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// Threads that compute (≥ 1): the pool gets N − 1 workers, the simulation's thread is the N-th.
    pub threads: usize,
    /// Run length (ms).
    pub duration_ms: u64,
    /// Clock time at the start (ms after midnight).
    pub start_of_day_ms: u64,
    /// Interval between observations (ms): time-series rows and replay frames are taken at multiples.
    pub observe_interval_ms: u64,
}

/// The engine's thread count as set by the first [`init_thread_pool`] (the calling thread included).
static ENGINE_THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Initialises the engine's one task pool so that `threads` threads compute: the thread that runs the
/// simulation works through every parallel phase itself (bevy's `scope` ticks the pool's executor while
/// it waits), so the pool gets `threads − 1` workers. A pool of `threads` workers would put one more
/// runnable thread than cores on the machine and slow every phase down by time-slicing. The pool is
/// process-wide: the first call decides its size; returns the thread count in force.
pub fn init_thread_pool(threads: usize) -> usize {
    let threads = threads.max(1);
    let mut initialised_here = false;
    bevy_tasks::ComputeTaskPool::get_or_init(|| {
        initialised_here = true;
        bevy_tasks::TaskPoolBuilder::new().num_threads(threads - 1).thread_name("machi-worker".into()).build()
    });
    if initialised_here {
        let _ = ENGINE_THREADS.set(threads);
    }
    pool_threads()
}

/// Threads that compute in parallel phases (at least 1): the count given to [`init_thread_pool`], or, if
/// something else made the pool first, its workers.
pub fn pool_threads() -> usize {
    match ENGINE_THREADS.get() {
        Some(&threads) => threads,
        None => bevy_tasks::ComputeTaskPool::get_or_init(bevy_tasks::TaskPool::default).thread_num().max(1),
    }
}

/// Something that adds systems and resources to the App (a plugin, usually via [`Sim::plugin`]).
pub type PluginFn = Box<dyn FnOnce(&mut App)>;

/// A headless simulation.
pub struct Sim {
    app: App,
    config: SimConfig,
    schedule_order: Vec<DomainStep>,
    next_due: Vec<u64>,
    next_observe: u64,
    last_observed: Option<u64>,
    finished: bool,
}

impl Sim {
    /// A Sim with the given plugins (each domain's, plus observers). Resources a plugin needs (the City,
    /// the Population, the scenario) are inserted by the caller before the plugins build.
    pub fn new(config: SimConfig, resources: impl FnOnce(&mut World), plugins: Vec<PluginFn>) -> Sim {
        init_thread_pool(config.threads);
        let mut app = App::empty();
        app.init_schedule(Observe);
        app.init_schedule(Finalize);
        app.insert_resource(SimClock {
            now_ms: 0,
            start_of_day_ms: config.start_of_day_ms,
            step_ms: 0,
            end_ms: config.duration_ms,
        });
        app.init_resource::<TimeSeries>();
        app.init_resource::<Kpis>();
        app.init_resource::<Domains>();
        resources(app.world_mut());
        for p in plugins {
            p(&mut app);
        }
        app.finish();
        app.cleanup();
        let domains = app.world().resource::<Domains>().0.clone();
        // Systems run in order on this thread, which also works through every parallel phase they start
        // (bevy's multi-threaded executor would leave it idle and run the systems on the pool's N − 1
        // workers only).
        fn single(app: &mut App, label: impl ScheduleLabel) {
            app.edit_schedule(label, |s| {
                s.set_executor(SingleThreadedExecutor::new());
            });
        }
        for d in &domains {
            single(&mut app, DomainTick(d.name));
        }
        single(&mut app, Observe);
        single(&mut app, Finalize);
        Sim {
            next_due: vec![0; domains.len()],
            schedule_order: domains,
            app,
            config,
            next_observe: 0,
            last_observed: None,
            finished: false,
        }
    }

    /// Adds a plugin-like builder (for tests composing their own sims).
    pub fn plugin<P: Plugin>(plugin: P) -> PluginFn {
        Box::new(move |app: &mut App| {
            app.add_plugins(plugin);
        })
    }

    /// The ECS world (read results, or inspect state in tests).
    pub fn world(&self) -> &World {
        self.app.world()
    }

    /// Mutable access to the ECS world.
    pub fn world_mut(&mut self) -> &mut World {
        self.app.world_mut()
    }

    /// Current simulated time (ms since start).
    pub fn now_ms(&self) -> u64 {
        self.app.world().resource::<SimClock>().now_ms
    }

    /// Advances to the next sync point; returns false once the run is over (after [`Finalize`] ran).
    pub fn step(&mut self) -> bool {
        if self.finished {
            return false;
        }
        let end = self.config.duration_ms;
        let t = self.next_due.iter().copied().chain([self.next_observe, end]).min().unwrap_or(end);
        self.app.world_mut().resource_mut::<SimClock>().now_ms = t;
        if t == self.next_observe || (t >= end && self.last_observed != Some(t)) {
            // At `end` the final state is always observed, whether or not `end` is on the grid.
            self.app.world_mut().run_schedule(Observe);
            self.last_observed = Some(t);
            if t == self.next_observe {
                self.next_observe = self.next_observe.saturating_add(self.config.observe_interval_ms.max(1));
            }
        }
        if t >= end {
            self.app.world_mut().run_schedule(Finalize);
            self.finished = true;
            return false;
        }
        for i in 0..self.schedule_order.len() {
            if self.next_due[i] == t {
                let d = self.schedule_order[i];
                let step = d.step_ms.min(end - t);
                self.app.world_mut().resource_mut::<SimClock>().step_ms = step;
                self.app.world_mut().run_schedule(DomainTick(d.name));
                self.next_due[i] = t + step;
            }
        }
        true
    }

    /// Runs to the end, calling `progress(now_ms)` after each sync point.
    pub fn run(&mut self, mut progress: impl FnMut(u64)) {
        while self.step() {
            progress(self.now_ms());
        }
        progress(self.config.duration_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Times at which each domain ticked, and observations.
    #[derive(Resource, Default)]
    struct Log(Vec<(&'static str, u64, u64)>);

    struct Recorder(&'static str, u64);

    impl Plugin for Recorder {
        fn is_unique(&self) -> bool {
            false
        }

        fn build(&self, app: &mut App) {
            let name = self.0;
            register_domain(app, name, self.1);
            app.add_systems(DomainTick(name), move |clock: Res<SimClock>, mut log: ResMut<Log>| {
                log.0.push((name, clock.now_ms, clock.step_ms));
            });
        }
    }

    fn observe(clock: Res<SimClock>, mut log: ResMut<Log>, mut series: ResMut<TimeSeries>) {
        log.0.push(("observe", clock.now_ms, 0));
        series.record(clock.now_ms, "t", clock.now_ms as f64);
    }

    fn finalize(mut kpis: ResMut<Kpis>, log: Res<Log>) {
        kpis.set("test", "events", log.0.len() as f64);
    }

    #[test]
    fn domains_meet_at_sync_points_and_observers_see_each_interval() {
        let config = SimConfig { threads: 1, duration_ms: 1000, start_of_day_ms: 0, observe_interval_ms: 400 };
        let mut sim = Sim::new(
            config,
            |w| w.insert_resource(Log::default()),
            vec![
                Sim::plugin(Recorder("a", 300)),
                Sim::plugin(Recorder("b", 500)),
                Box::new(|app: &mut App| {
                    app.add_systems(Observe, observe);
                    app.add_systems(Finalize, finalize);
                }),
            ],
        );
        let mut seen = Vec::new();
        sim.run(|t| seen.push(t));
        let log = &sim.world().resource::<Log>().0;
        let times = |name: &str| log.iter().filter(|e| e.0 == name).map(|e| (e.1, e.2)).collect::<Vec<_>>();
        // The last step of `a` is cut short to end exactly at 1000 ms.
        assert_eq!(times("a"), vec![(0, 300), (300, 300), (600, 300), (900, 100)]);
        assert_eq!(times("b"), vec![(0, 500), (500, 500)]);
        // Observations on the 400 ms grid plus the final state at 1000 ms.
        assert_eq!(times("observe").iter().map(|t| t.0).collect::<Vec<_>>(), vec![0, 400, 800, 1000]);
        // At a shared sync point, observers run first, then domains in registration order.
        let at0: Vec<&str> = log.iter().filter(|e| e.1 == 0).map(|e| e.0).collect();
        assert_eq!(at0, vec!["observe", "a", "b"]);
        assert_eq!(sim.world().resource::<Kpis>().0["test"]["events"], log.len() as f64);
        assert_eq!(*seen.last().unwrap(), 1000);
        assert!(!sim.step(), "a finished sim stays finished");
        let csv = sim.world().resource::<TimeSeries>().to_csv();
        assert_eq!(csv, "time_s,t\n0,0\n0.4,400\n0.8,800\n1,1000\n");
    }
}
