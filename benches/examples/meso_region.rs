//! The mesoscopic queue model's region test: a square grid of two-lane secondary streets (200 m blocks) and
//! a weekday of random trips between its junctions, departing on a two-peak daily profile; free-flow routes
//! by one Dijkstra search per origin on two threads, then 24 simulated hours in the queue model. Prints the routing
//! time, the simulation time, link traversals per second, trips finished and teleported, and the peak
//! number of vehicles on the network.
//! `cargo run --release -p machi-benches --example meso_region -- [junctions per side] [trips]`
//! (default 80 and 1 000 000).

use machi::city::graph::{Graph, NodeId};
use machi::city::routing::{Router, Weight};
use machi::mobility::idm::DriverParams;
use machi::mobility::meso::{QueueParams, QueueTraffic};
use machi::mobility::vehicles::{Trip, VehicleModel};
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Instant;

/// Share of a weekday's car trips starting in each hour (00–01 … 23–24): a morning peak at 07–09 and a
/// wider evening peak at 16–19, the shape of weekday trip-start profiles in household travel surveys. A
/// load-test input, not a calibrated profile.
const HOURLY_SHARE: [f64; 24] = [
    0.5, 0.3, 0.2, 0.2, 0.4, 1.2, 3.5, 8.0, 8.5, 5.5, 4.5, 4.8, 5.5, 5.5, 5.0, 5.5, 7.0, 8.5, 8.0, 5.5, 3.5, 2.5, 1.5,
    0.9,
];

/// Seed of the trip draw.
const SEED: u64 = 2026;

/// Block length (m), lanes per direction and speed limit (m/s, 50 km/h) of the grid's streets.
const BLOCK_M: f32 = 200.0;
const LANES: u8 = 2;
const SPEED_MPS: f32 = 50.0 / 3.6;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let side = args.first().copied().unwrap_or(80);
    let count = args.get(1).copied().unwrap_or(1_000_000);
    let graph = Arc::new(Graph::grid(side, BLOCK_M, LANES, SPEED_MPS));
    println!(
        "{side}x{side} grid ({:.1} km a side): {} junctions, {} links; {count} trips",
        (side - 1) as f32 * BLOCK_M / 1000.0,
        graph.nodes().len(),
        graph.links().len()
    );

    // Origins, destinations and departure times, drawn up front so routing times routing only.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let total: f64 = HOURLY_SHARE.iter().sum();
    let cumulative: Vec<f64> = HOURLY_SHARE
        .iter()
        .scan(0.0, |acc, s| {
            *acc += s / total;
            Some(*acc)
        })
        .collect();
    let nodes = graph.nodes().len() as u32;
    let draws: Vec<(u32, u32, f64)> = (0..count)
        .map(|_| {
            let a = rng.random_range(0..nodes);
            let b = (a + rng.random_range(1..nodes)) % nodes;
            let u: f64 = rng.random();
            let hour = cumulative.partition_point(|&c| c < u).min(23);
            (a, b, (hour as f64 + rng.random::<f64>()) * 3600.0)
        })
        .collect();

    // Trips grouped by origin: one Dijkstra search per origin routes all its trips.
    let started = Instant::now();
    let mut by_origin: Vec<Vec<usize>> = vec![Vec::new(); nodes as usize];
    for (k, &(a, _, _)) in draws.iter().enumerate() {
        by_origin[a as usize].push(k);
    }
    let threads = 2;
    let mut trips: Vec<Trip> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let (graph, draws, by_origin) = (&graph, &draws, &by_origin);
                scope.spawn(move || {
                    let mut router = Router::new(graph);
                    let mut out = Vec::new();
                    for origin in (w..by_origin.len()).step_by(threads) {
                        let group = &by_origin[origin];
                        let targets: Vec<NodeId> = group.iter().map(|&k| NodeId(draws[k].1)).collect();
                        let routes = router.routes_from(NodeId(origin as u32), &targets, Weight::TravelTime);
                        for (&k, route) in group.iter().zip(routes) {
                            let route = route.expect("a grid is connected");
                            out.push(Trip { id: k as u64, depart_s: draws[k].2, route: route.links, class: 0 });
                        }
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("routing thread")).collect()
    });
    trips.sort_by(|a, b| a.depart_s.total_cmp(&b.depart_s).then(a.id.cmp(&b.id)));
    let routing_s = started.elapsed().as_secs_f64();
    let links_per_trip = trips.iter().map(|t| t.route.len()).sum::<usize>() as f64 / count as f64;
    println!(
        "routing: {count} routes, one search per origin, on {threads} threads {routing_s:.2} s ({links_per_trip:.1} links a route)"
    );

    let started = Instant::now();
    let mut model = QueueTraffic::new(graph.clone(), vec![DriverParams::CAR], QueueParams::default(), trips, 0.0)
        .expect("valid routes");
    let built_s = started.elapsed().as_secs_f64();
    let mut peak = 0;
    let day_s = 24.0 * 3600.0;
    while model.now_s() < day_s {
        let next = (model.now_s() + 60.0).min(day_s);
        model.run_until(next);
        peak = peak.max(model.on_network());
    }
    let simulated_s = started.elapsed().as_secs_f64();
    let stats = model.stats();
    let done = model.finished();
    let mean_s = done.iter().map(|r| r.arrive_s - r.depart_s).sum::<f64>() / done.len().max(1) as f64;
    let delay_h = done.iter().map(|r| (r.arrive_s - r.depart_s - r.free_flow_s).max(0.0)).sum::<f64>() / 3600.0;
    println!(
        "simulation: built {built_s:.2} s, 24 h simulated in {simulated_s:.2} s ({:.0}× real time); {} link traversals ({:.1} M/s)",
        day_s / simulated_s,
        stats.vehicle_updates,
        stats.vehicle_updates as f64 / simulated_s / 1e6
    );
    println!(
        "trips: {} finished ({} teleported), {} still on the network or waiting at 24:00; peak {peak} on the network; mean trip {mean_s:.0} s, delay {delay_h:.0} veh·h",
        done.len(),
        stats.teleports,
        count - done.len()
    );
    println!("total (routing + simulation): {:.2} s", routing_s + simulated_s);
}
