//! Re-routing on measured travel times (`[mobility.rerouting]`), in both vehicle models: a road forks into a
//! short branch with a one-lane bottleneck and a longer branch of two lanes. Every trip is planned on the
//! short branch (the free-flow optimum); the demand is more than the bottleneck carries. Without re-routing
//! the queue grows all the run; with it, vehicles that meet the queue switch to the long branch and trips get
//! faster. Results are the same at any number of parallel pieces.

use machi::city::graph::{Graph, GraphBuilder, LinkId, NodeId};
use machi::import::tags::WayClass;
use machi::mobility::idm::DriverParams;
use machi::mobility::junctions::{Junctions, SignalParams};
use machi::mobility::meso::{QueueParams, QueueTraffic};
use machi::mobility::micro::{MicroParams, Traffic};
use machi::mobility::rerouting::ReroutingParams;
use machi::mobility::vehicles::{Trip, TripResult, VehicleModel};
use std::sync::Arc;

/// Speed on every link (m/s): 50 km/h.
const SPEED_MPS: f32 = 50.0 / 3.6;

/// The fork; returns the graph and the planned (short) route.
fn fork() -> (Graph, Vec<LinkId>) {
    let mut b = GraphBuilder::new();
    let p = |x: f32, y: f32| glam::Vec2::new(x, y);
    let n: Vec<NodeId> = [
        p(-500.0, 0.0),
        p(0.0, 0.0),
        p(400.0, 0.0),
        p(800.0, 0.0),
        p(1200.0, 0.0),
        p(1700.0, 0.0),
        p(400.0, 300.0),
        p(800.0, 300.0),
    ]
    .iter()
    .enumerate()
    .map(|(k, &q)| b.node(k as i64, q, false))
    .collect();
    let road = |b: &mut GraphBuilder, x: usize, y: usize, lanes: u8, class: WayClass| {
        b.straight(n[x], n[y], SPEED_MPS, lanes, class)
    };
    let entry = road(&mut b, 0, 1, 2, WayClass::Primary);
    let short_a = road(&mut b, 1, 2, 2, WayClass::Primary);
    // The bottleneck: one lane of a residential street (600 veh/h in the queue model).
    let bottleneck = road(&mut b, 2, 3, 1, WayClass::Residential);
    let short_b = road(&mut b, 3, 4, 2, WayClass::Primary);
    let exit = road(&mut b, 4, 5, 2, WayClass::Primary);
    road(&mut b, 1, 6, 2, WayClass::Primary);
    road(&mut b, 6, 7, 2, WayClass::Primary);
    road(&mut b, 7, 4, 2, WayClass::Primary);
    (b.build(), vec![entry, short_a, bottleneck, short_b, exit])
}

/// `count` trips on the short route, one every `headway_s`.
fn demand(route: &[LinkId], count: usize, headway_s: f64) -> Vec<Trip> {
    (0..count).map(|k| Trip { id: k as u64, depart_s: k as f64 * headway_s, route: route.to_vec(), class: 0 }).collect()
}

/// Runs a model to the end (at most three hours); the finished trips and the travel-time re-routings.
fn run(mut model: Box<dyn VehicleModel>) -> (Vec<TripResult>, u64) {
    model.run_until(3.0 * 3600.0);
    assert!(model.is_done(), "every trip finishes");
    let mut done = model.finished().to_vec();
    done.sort_by_key(|r| r.id);
    (done, model.stats().reroutes_for_travel_time)
}

fn mean_time_s(done: &[TripResult]) -> f64 {
    done.iter().map(|r| r.arrive_s - r.depart_s).sum::<f64>() / done.len() as f64
}

/// Trips that took the long branch (longer than the short route).
fn on_long_branch(done: &[TripResult], short_m: f64) -> usize {
    done.iter().filter(|r| r.length_m > short_m + 1.0).count()
}

fn micro(graph: &Arc<Graph>, trips: Vec<Trip>, rerouting: bool, chunks: usize) -> Box<dyn VehicleModel> {
    let junctions = Junctions::generate(graph, &SignalParams::default());
    let params = MicroParams { step_s: 1.0, ..MicroParams::default() };
    let mut m = Traffic::new(graph.clone(), junctions, vec![DriverParams::CAR], params, trips, 0.0).unwrap();
    m.set_parallel_chunks(chunks);
    if rerouting {
        m.enable_rerouting(ReroutingParams::default());
    }
    Box::new(m)
}

fn meso(graph: &Arc<Graph>, trips: Vec<Trip>, rerouting: bool) -> Box<dyn VehicleModel> {
    let params = QueueParams { step_s: 1.0, ..QueueParams::default() };
    let mut m = QueueTraffic::new(graph.clone(), vec![DriverParams::CAR], params, trips, 0.0).unwrap();
    if rerouting {
        m.enable_rerouting(ReroutingParams::default());
    }
    Box::new(m)
}

#[test]
fn vehicles_meeting_a_queue_take_the_other_branch_in_the_microscopic_model() {
    let (graph, route) = fork();
    let short_m: f64 = route.iter().map(|&l| graph.link(l).length_m as f64).sum();
    let graph = Arc::new(graph);
    // 2 400 veh/h for 40 minutes: more than one lane carries (about 1 800–2 000 veh/h).
    let trips = demand(&route, 1600, 1.5);
    let (plain, none) = run(micro(&graph, trips.clone(), false, 1));
    let (smart, switched) = run(micro(&graph, trips.clone(), true, 1));
    assert_eq!(none, 0);
    assert_eq!(on_long_branch(&plain, short_m), 0);
    let (before, after) = (mean_time_s(&plain), mean_time_s(&smart));
    println!(
        "micro: mean trip {before:.1} s without re-routing, {after:.1} s with; {switched} re-routings, {} on the long branch",
        on_long_branch(&smart, short_m)
    );
    assert!(switched > 0 && on_long_branch(&smart, short_m) > 0);
    assert_eq!(smart.iter().map(|r| r.reroutes as u64).sum::<u64>(), switched);
    assert!(after < 0.8 * before, "re-routing should cut the mean trip time: {before:.1} s → {after:.1} s");
    // The same at any split of the parallel phases (and re-planning on the pool).
    let (split, switched_split) = run(micro(&graph, trips, true, 7));
    assert_eq!((split, switched_split), (smart, switched));
}

#[test]
fn vehicles_meeting_a_queue_take_the_other_branch_in_the_queue_model() {
    let (graph, route) = fork();
    let short_m: f64 = route.iter().map(|&l| graph.link(l).length_m as f64).sum();
    let graph = Arc::new(graph);
    // 1 200 veh/h for 40 minutes against a 600 veh/h bottleneck.
    let trips = demand(&route, 800, 3.0);
    let (plain, none) = run(meso(&graph, trips.clone(), false));
    let (smart, switched) = run(meso(&graph, trips.clone(), true));
    assert_eq!(none, 0);
    assert_eq!(on_long_branch(&plain, short_m), 0);
    let (before, after) = (mean_time_s(&plain), mean_time_s(&smart));
    println!(
        "meso: mean trip {before:.1} s without re-routing, {after:.1} s with; {switched} re-routings, {} on the long branch",
        on_long_branch(&smart, short_m)
    );
    assert!(switched > 0 && on_long_branch(&smart, short_m) > 0);
    assert!(after < 0.8 * before, "re-routing should cut the mean trip time: {before:.1} s → {after:.1} s");
    assert!(smart.iter().all(|r| !r.teleported));
    let (again, switched_again) = run(meso(&graph, trips, true));
    assert_eq!((again, switched_again), (smart, switched));
}
