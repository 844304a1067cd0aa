//! The free-flow trip model: each person follows their activity plan, and every trip takes exactly its
//! free-flow travel time on the network — MATSim's "teleported" leg (Horni, Nagel, Axhausen 2016, ch. 12),
//! a real, simple baseline without congestion.
//!
//! Mode choice by distance: a trip whose walking route (footpath graph plus straight-line access and
//! egress) is at most `walk_max_m` is walked at the walking speed; longer trips drive the fastest road route
//! at the speed limits, plus access and egress on foot. A trip neither graph connects is *unroutable*: the
//! person stays where they are for the rest of the day, and the KPIs count it.
//!
//! Event times are exact (ms), independent of the model's step: the step only decides how often states are
//! brought up to date. Each person's update reads and writes only that person, so the parallel tick gives
//! the same result on any number of threads.

use crate::city::graph::{Graph, NodeId};
use crate::city::routing::{Router, Weight};
use crate::city::{BuildingId, City};
use crate::population::{ActivityKind, Departure, Population, PopulationParams};
use crate::sim::{register_domain, CityRes, Finalize, Kpis, Observe, PopulationRes, SimClock, TimeSeries};
use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use glam::Vec2;

/// Name of the domain (its schedule label and KPI section).
pub const DOMAIN: &str = "mobility";

/// How a trip is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Mode {
    /// On foot over the footpath graph.
    Walk = 0,
    /// By car over the road graph.
    Car = 1,
    /// No network path between origin and destination.
    Unroutable = 2,
    /// On a scheduled bus, with the walks to and from its stops ([`super::riders`]).
    Bus = 3,
}

/// A leg of a person's plan with its route evaluated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlannedTrip {
    /// Origin building.
    pub from: BuildingId,
    /// Destination building.
    pub to: BuildingId,
    /// Activity at the destination.
    pub purpose: ActivityKind,
    /// When it departs.
    pub departure: Departure,
    /// Mode chosen by distance.
    pub mode: Mode,
    /// Door-to-door free-flow travel time (ms).
    pub time_ms: u64,
    /// Network length plus access and egress (m).
    pub length_m: f32,
    /// Length of the walking route (footpath graph plus access and egress, m); infinite when the footpath
    /// graph does not connect the two.
    pub walk_m: f32,
}

/// A trip that has happened.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripRecord {
    /// Activity at the destination.
    pub purpose: ActivityKind,
    /// Mode used (or `Unroutable`).
    pub mode: Mode,
    /// Clock times (ms after midnight of day 0).
    pub depart_ms: u64,
    /// Arrival clock time (ms after midnight of day 0).
    pub arrive_ms: u64,
    /// Door-to-door length (m).
    pub length_m: f32,
}

/// The person's identity (index into the population).
#[derive(Component, Clone, Copy, Debug)]
pub struct PersonId(pub u32);

/// The person's evaluated plan.
#[derive(Component, Clone, Debug)]
pub struct Itinerary(pub Vec<PlannedTrip>);

/// Where the person is and what they do.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct PersonState {
    /// The building they are at, or left from when travelling.
    pub at: BuildingId,
    /// What they do there.
    pub activity: ActivityKind,
    /// Index of the next (or current, when travelling) trip in the itinerary.
    pub next_trip: u16,
    /// Clock time of the next departure, if any.
    pub next_departure_ms: Option<u64>,
    /// `Some((depart, arrive))` while travelling (clock ms).
    pub travelling: Option<(u64, u64)>,
    /// How the trip under way (or the last one) is made: its planned mode, unless the model that carries
    /// the person chose another ([`LegStart`]).
    pub mode: Mode,
    /// Door-to-door length of the trip under way (or the last one, m).
    pub length_m: f32,
}

impl PersonState {
    /// At home, with the first departure at `first_departure_ms`.
    pub fn at_home(home: BuildingId, first_departure_ms: Option<u64>) -> PersonState {
        PersonState {
            at: home,
            activity: ActivityKind::Home,
            next_trip: 0,
            next_departure_ms: first_departure_ms,
            travelling: None,
            mode: Mode::Walk,
            length_m: 0.0,
        }
    }
}

/// How a car trip that starts is made, as the model driving [`advance_with`] decides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LegStart {
    /// As planned, at its free-flow time.
    AsPlanned,
    /// Another model carries the person (a vehicle, a bus) and sets the arrival later, in
    /// [`PersonState::travelling`].
    Carried {
        /// The mode it is made by.
        mode: Mode,
        /// Its door-to-door length as planned (m); the carrying model may correct it at arrival.
        length_m: f32,
    },
    /// On foot instead (a person without a car whom no bus serves).
    Walked {
        /// Door-to-door walking time (ms).
        time_ms: u64,
        /// Door-to-door walking length (m).
        length_m: f32,
    },
}

/// Trips the person has made (and unroutable attempts).
#[derive(Component, Clone, Debug, Default)]
pub struct TripLog(pub Vec<TripRecord>);

/// Settings of this model, from the scenario.
#[derive(Resource, Clone, Debug)]
pub struct TeleportSettings {
    /// Population parameters (mode choice, step).
    pub params: PopulationParams,
    /// Threads for the up-front route evaluation.
    pub threads: usize,
}

/// The plugin: spawns persons with evaluated itineraries, ticks them, observes them.
pub struct TeleportMobilityPlugin;

impl Plugin for TeleportMobilityPlugin {
    fn build(&self, app: &mut App) {
        let settings = app.world().resource::<TeleportSettings>().clone();
        spawn_persons(app, &settings);
        let step = settings.params.step_ms().unwrap_or(10_000);
        register_domain(app, DOMAIN, step);
        app.add_systems(crate::sim::DomainTick(DOMAIN), advance_persons);
        app.add_systems(Observe, sample_states);
        app.add_systems(Finalize, trip_kpis);
    }
}

/// Spawns every person of the population with their evaluated itinerary; returns their entities in person
/// order.
pub(crate) fn spawn_persons(app: &mut App, settings: &TeleportSettings) -> Vec<Entity> {
    let city = app.world().resource::<CityRes>().0.clone();
    let population = app.world().resource::<PopulationRes>().0.clone();
    let itineraries = plan_trips(&city, &population, &settings.params, settings.threads);
    let world = app.world_mut();
    population
        .persons
        .iter()
        .zip(itineraries)
        .map(|(person, trips)| {
            let first = trips.first().map(|t| match t.departure {
                Departure::At(c) => c,
                Departure::After(d) => d,
            });
            world
                .spawn((
                    PersonId(person.id),
                    PersonState::at_home(person.home, first),
                    Itinerary(trips),
                    TripLog::default(),
                ))
                .id()
        })
        .collect()
}

/// How a destination is reached from an origin building.
#[derive(Clone, Copy, Debug)]
struct Reach {
    to: BuildingId,
    mode: Mode,
    /// Door-to-door free-flow time (s).
    time_s: f32,
    /// Door-to-door length (m).
    length_m: f32,
    /// Door-to-door walking length (m; infinite without a footpath route).
    walk_m: f32,
}

/// Nearest node of `graph` to a point, through its nearest link, with the straight-line access distance.
pub(crate) fn attach(city: &City, graph: &Graph, footpaths: bool, p: Vec2) -> Option<(NodeId, f32)> {
    let (link, _) = if footpaths { city.nearest_footpath(p)? } else { city.nearest_road(p)? };
    let l = graph.link(link);
    let (a, b) = (graph.node(l.from).pos.distance(p), graph.node(l.to).pos.distance(p));
    Some(if a <= b { (l.from, a) } else { (l.to, b) })
}

/// Evaluates every leg of every plan: mode, door-to-door time and length. Origins are processed in
/// parallel (one road tree and one footpath tree per origin building); the result does not depend on
/// `threads`.
pub fn plan_trips(
    city: &City,
    population: &Population,
    params: &PopulationParams,
    threads: usize,
) -> Vec<Vec<PlannedTrip>> {
    let n = city.buildings.len();
    let walk_speed = city.defaults.walk_speed_mps;
    let road_attach: Vec<Option<(NodeId, f32)>> =
        city.buildings.iter().map(|b| attach(city, &city.roads, false, b.centroid)).collect();
    let foot_attach: Vec<Option<(NodeId, f32)>> =
        city.buildings.iter().map(|b| attach(city, &city.footpaths, true, b.centroid)).collect();
    // Which buildings are origins of some leg.
    let mut legs_from: Vec<Vec<(u32, usize)>> = vec![Vec::new(); n];
    for p in &population.persons {
        let mut at = p.home;
        for (k, leg) in p.plan.iter().enumerate() {
            legs_from[at as usize].push((p.id, k));
            at = leg.to;
        }
    }
    let origins: Vec<u32> = (0..n as u32).filter(|&b| !legs_from[b as usize].is_empty()).collect();
    // Per origin building: (destination building → (mode, time s, length m)), computed in parallel.
    let evaluate = |origin: u32, road: &mut Router, foot: &mut Router, buf: &mut [Vec<f32>; 4]| -> Vec<Reach> {
        let [road_cost, road_len, foot_cost, foot_len] = buf;
        let ro = road_attach[origin as usize];
        let fo = foot_attach[origin as usize];
        if let Some((node, _)) = ro {
            road.tree_with_lengths(node, Weight::TravelTime, road_cost, road_len);
        }
        if let Some((node, _)) = fo {
            foot.tree_with_lengths(node, Weight::Length, foot_cost, foot_len);
        }
        let mut dests: Vec<u32> = Vec::new();
        for &(pid, k) in &legs_from[origin as usize] {
            dests.push(population.persons[pid as usize].plan[k].to);
        }
        dests.sort_unstable();
        dests.dedup();
        dests
            .into_iter()
            .map(|d| {
                if d == origin {
                    return Reach { to: d, mode: Mode::Walk, time_s: 0.0, length_m: 0.0, walk_m: 0.0 };
                }
                let walk = match (fo, foot_attach[d as usize]) {
                    (Some((_, a)), Some((dn, e))) if foot_len[dn.0 as usize].is_finite() => {
                        Some(foot_len[dn.0 as usize] + a + e)
                    }
                    _ => None,
                };
                let car = match (ro, road_attach[d as usize]) {
                    (Some((_, a)), Some((dn, e))) if road_cost[dn.0 as usize].is_finite() => {
                        Some((road_cost[dn.0 as usize] + (a + e) / walk_speed, road_len[dn.0 as usize] + a + e))
                    }
                    _ => None,
                };
                let walk_m = walk.unwrap_or(f32::INFINITY);
                let reach = |mode, time_s, length_m| Reach { to: d, mode, time_s, length_m, walk_m };
                match (walk, car) {
                    (Some(w), _) if w <= params.walk_max_m => reach(Mode::Walk, w / walk_speed, w),
                    (_, Some((t, l))) => reach(Mode::Car, t, l),
                    (Some(w), None) => reach(Mode::Walk, w / walk_speed, w),
                    (None, None) => reach(Mode::Unroutable, 0.0, 0.0),
                }
            })
            .collect()
    };
    let threads = threads.max(1).min(origins.len().max(1));
    let chunk = origins.len().div_ceil(threads).max(1);
    let results: Vec<Vec<(u32, Vec<Reach>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = origins
            .chunks(chunk)
            .map(|part| {
                let evaluate = &evaluate;
                s.spawn(move || {
                    let mut road = Router::new(&city.roads);
                    let mut foot = Router::new(&city.footpaths);
                    let mut buf = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
                    part.iter().map(|&o| (o, evaluate(o, &mut road, &mut foot, &mut buf))).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("route evaluation does not panic")).collect()
    });
    let mut table: Vec<Vec<Reach>> = vec![Vec::new(); n];
    for (o, dests) in results.into_iter().flatten() {
        table[o as usize] = dests;
    }
    population
        .persons
        .iter()
        .map(|p| {
            let mut at = p.home;
            p.plan
                .iter()
                .map(|leg| {
                    let row = &table[at as usize];
                    let r = row[row.partition_point(|e| e.to < leg.to)];
                    let trip = PlannedTrip {
                        from: at,
                        to: leg.to,
                        purpose: leg.purpose,
                        departure: leg.departure,
                        mode: r.mode,
                        time_ms: (r.time_s as f64 * 1000.0).round() as u64,
                        length_m: r.length_m,
                        walk_m: r.walk_m,
                    };
                    at = leg.to;
                    trip
                })
                .collect()
        })
        .collect()
}

/// Brings every person's state up to the end of this step.
fn advance_persons(clock: Res<SimClock>, mut persons: Query<(&Itinerary, &mut PersonState, &mut TripLog)>) {
    let t_end = clock.start_of_day_ms + clock.now_ms + clock.step_ms;
    // In one pass: most persons have nothing to do in a step, and handing out pieces (bevy's `par_iter_mut`
    // or collecting the query for our fork–join) cost more than the work itself.
    for (itinerary, mut state, mut log) in &mut persons {
        advance(&itinerary.0, &mut state, &mut log.0, t_end);
    }
}

/// Processes the events of one person strictly before `t_end` (clock ms), every trip at its free-flow time.
pub fn advance(trips: &[PlannedTrip], state: &mut PersonState, log: &mut Vec<TripRecord>, t_end: u64) {
    advance_with(trips, state, log, t_end, |_, _, _| LegStart::AsPlanned)
}

/// As [`advance`], but a car trip that starts is first offered to `drive(trip index, trip, departure ms)`,
/// which says how it is made ([`LegStart`]): when another model carries the person, they travel until it
/// sets the arrival in [`PersonState::travelling`] (it stays [`crate::mobility::traffic::PENDING_ARRIVAL`]
/// meanwhile).
pub fn advance_with(
    trips: &[PlannedTrip],
    state: &mut PersonState,
    log: &mut Vec<TripRecord>,
    t_end: u64,
    mut drive: impl FnMut(usize, &PlannedTrip, u64) -> LegStart,
) {
    loop {
        let Some(trip) = trips.get(state.next_trip as usize) else { return };
        match state.travelling {
            None => {
                let Some(dep) = state.next_departure_ms else { return };
                if dep >= t_end {
                    return;
                }
                if trip.mode == Mode::Unroutable {
                    log.push(TripRecord {
                        purpose: trip.purpose,
                        mode: Mode::Unroutable,
                        depart_ms: dep,
                        arrive_ms: dep,
                        length_m: 0.0,
                    });
                    state.next_departure_ms = None;
                    return;
                }
                let start = match trip.mode {
                    Mode::Car => drive(state.next_trip as usize, trip, dep),
                    _ => LegStart::AsPlanned,
                };
                let (mode, length_m, arrive) = match start {
                    LegStart::AsPlanned => (trip.mode, trip.length_m, dep + trip.time_ms),
                    LegStart::Carried { mode, length_m } => (mode, length_m, crate::mobility::traffic::PENDING_ARRIVAL),
                    LegStart::Walked { time_ms, length_m } => (Mode::Walk, length_m, dep + time_ms),
                };
                state.mode = mode;
                state.length_m = length_m;
                state.travelling = Some((dep, arrive));
            }
            Some((dep, arrive)) => {
                if arrive >= t_end {
                    return;
                }
                log.push(TripRecord {
                    purpose: trip.purpose,
                    mode: state.mode,
                    depart_ms: dep,
                    arrive_ms: arrive,
                    length_m: state.length_m,
                });
                state.travelling = None;
                state.at = trip.to;
                state.activity = trip.purpose;
                state.next_trip += 1;
                state.next_departure_ms = trips.get(state.next_trip as usize).map(|next| match next.departure {
                    Departure::At(c) => c.max(arrive),
                    Departure::After(d) => arrive + d,
                });
            }
        }
    }
}

/// Time-series sample: persons by what they are doing, trips completed so far.
pub(crate) fn sample_states(
    clock: Res<SimClock>,
    mut series: ResMut<TimeSeries>,
    persons: Query<(&TripLog, &PersonState)>,
) {
    let now = clock.now_ms;
    if !series.due(now, clock.end_ms) {
        return;
    }
    let mut counts = [0u64; 7];
    let mut completed = 0u64;
    for (log, s) in &persons {
        completed += log.0.iter().filter(|r| r.mode != Mode::Unroutable).count() as u64;
        let slot = match s.travelling {
            Some(_) => match s.mode {
                Mode::Car => 4,
                Mode::Bus => 6,
                _ => 5,
            },
            None => s.activity as usize,
        };
        counts[slot] += 1;
    }
    let names = ["at_home", "at_work", "at_school", "at_shop", "driving", "walking", "by_bus"];
    for (name, v) in names.iter().zip(counts) {
        series.record(now, &format!("persons_{name}"), v as f64);
    }
    series.record(now, "trips_completed", completed as f64);
}

/// Mobility KPIs from every person's trip log.
pub(crate) fn trip_kpis(mut kpis: ResMut<Kpis>, persons: Query<(&PersonId, &Itinerary, &PersonState, &TripLog)>) {
    let mut all: Vec<(u32, TripRecord)> = Vec::new();
    let mut planned = 0usize;
    let mut in_progress = 0usize;
    for (id, itinerary, state, log) in &persons {
        planned += itinerary.0.len();
        in_progress += state.travelling.is_some() as usize;
        all.extend(log.0.iter().map(|r| (id.0, *r)));
    }
    all.sort_by_key(|(id, r)| (*id, r.depart_ms));
    let done: Vec<&TripRecord> = all.iter().map(|(_, r)| r).filter(|r| r.mode != Mode::Unroutable).collect();
    let unroutable = all.len() - done.len();
    let d = DOMAIN;
    kpis.set(d, "trips_planned", planned as f64);
    kpis.set(d, "trips_completed", done.len() as f64);
    kpis.set(d, "trips_unroutable", unroutable as f64);
    kpis.set(d, "trips_in_progress_at_end", in_progress as f64);
    kpis.set(d, "trips_not_started", (planned - all.len() - in_progress) as f64);
    for (name, mode) in [("car", Some(Mode::Car)), ("walk", Some(Mode::Walk)), ("bus", Some(Mode::Bus)), ("all", None)]
    {
        let mut times: Vec<f64> = done
            .iter()
            .filter(|r| mode.is_none_or(|m| r.mode == m))
            .map(|r| (r.arrive_ms - r.depart_ms) as f64 / 1000.0)
            .collect();
        times.sort_by(f64::total_cmp);
        kpis.set(d, &format!("trips_{name}"), times.len() as f64);
        kpis.set(
            d,
            &format!("mean_trip_time_{name}_s"),
            if times.is_empty() { 0.0 } else { times.iter().sum::<f64>() / times.len() as f64 },
        );
        kpis.set(d, &format!("p95_trip_time_{name}_s"), percentile(&times, 0.95));
    }
    let commutes: Vec<&&TripRecord> =
        done.iter().filter(|r| matches!(r.purpose, ActivityKind::Work | ActivityKind::School)).collect();
    let under_30 = commutes.iter().filter(|r| r.arrive_ms - r.depart_ms < 30 * 60 * 1000).count();
    kpis.set(d, "commutes", commutes.len() as f64);
    kpis.set(
        d,
        "share_commutes_under_30min",
        if commutes.is_empty() { 0.0 } else { under_30 as f64 / commutes.len() as f64 },
    );
    let km = |m: Mode| done.iter().filter(|r| r.mode == m).map(|r| r.length_m as f64).sum::<f64>() / 1000.0;
    kpis.set(d, "vehicle_km", km(Mode::Car));
    kpis.set(d, "walk_km", km(Mode::Walk));
    // Door to door, with the walks to and from the stops (the distance ridden is `bus_passenger_km_ridden`).
    kpis.set(d, "bus_trip_km", km(Mode::Bus));
    let hours = done.iter().map(|r| (r.arrive_ms - r.depart_ms) as f64).sum::<f64>() / 3.6e6;
    kpis.set(d, "person_hours_travelling", hours);
}

/// The `q` quantile of sorted values by the nearest-rank method; 0 for no values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trip(dep: Departure, time_ms: u64, purpose: ActivityKind, mode: Mode) -> PlannedTrip {
        PlannedTrip { from: 0, to: 1, purpose, departure: dep, mode, time_ms, length_m: 100.0, walk_m: 100.0 }
    }

    #[test]
    fn events_are_exact_whatever_the_step() {
        let trips = vec![
            trip(Departure::At(8 * 3_600_000), 600_000, ActivityKind::Work, Mode::Car),
            trip(Departure::After(8 * 3_600_000), 600_000, ActivityKind::Home, Mode::Car),
        ];
        let mut results = Vec::new();
        for step in [1_000u64, 7_000, 60_000, 3_600_000] {
            let mut s = PersonState::at_home(0, Some(8 * 3_600_000));
            let mut log = Vec::new();
            let mut t = 0;
            while t < 86_400_000 {
                t += step;
                advance(&trips, &mut s, &mut log, t);
            }
            results.push(log.iter().map(|r| (r.depart_ms, r.arrive_ms)).collect::<Vec<_>>());
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(results[0], vec![(28_800_000, 29_400_000), (58_200_000, 58_800_000)]);
    }

    #[test]
    fn unroutable_trips_strand_the_person_and_are_logged() {
        let trips = vec![trip(Departure::At(1000), 0, ActivityKind::Work, Mode::Unroutable)];
        let mut s = PersonState::at_home(0, Some(1000));
        let mut log = Vec::new();
        advance(&trips, &mut s, &mut log, 10_000);
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].mode, Mode::Unroutable);
        assert_eq!(s.at, 0);
        assert_eq!(s.next_departure_ms, None);
    }

    #[test]
    fn trip_evaluation_is_independent_of_threads_and_picks_modes_by_distance() {
        let city = crate::population::tests::town();
        let params = PopulationParams::default();
        let pop = Population::generate(&city, &params, 3);
        let one = plan_trips(&city, &pop, &params, 1);
        let three = plan_trips(&city, &pop, &params, 3);
        assert_eq!(one, three);
        let trips: Vec<&PlannedTrip> = one.iter().flatten().collect();
        assert!(!trips.is_empty());
        for t in &trips {
            let straight = city.buildings[t.from as usize].centroid.distance(city.buildings[t.to as usize].centroid);
            assert_ne!(t.mode, Mode::Unroutable, "the grid town is connected");
            assert!(t.length_m + 1.0 >= straight, "network length {} < straight line {straight}", t.length_m);
            match t.mode {
                Mode::Walk => assert!(t.length_m <= params.walk_max_m),
                Mode::Car => {
                    // 36 km/h = 10 m/s on the streets, plus walking access and egress.
                    assert!(t.length_m > params.walk_max_m * 0.5);
                    assert!(t.time_ms as f32 >= t.length_m / 10.0 * 1000.0 * 0.99);
                }
                Mode::Unroutable | Mode::Bus => {}
            }
        }
        assert!(trips.iter().any(|t| t.mode == Mode::Car) && trips.iter().any(|t| t.mode == Mode::Walk));
    }

    #[test]
    fn nearest_rank_percentile() {
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.95), 4.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
