//! The microscopic traffic model.
//!
//! - `sumo_grid_hour`: SUMO's 10×10 signalised grid with one hour of random trips (3 600 vehicles, IDM),
//!   read from the SUMO files in `data/mobility/sumo-grid/`, run to the last arrival at a 1 s step (SUMO's
//!   default). `benches/peers/sumo_grid.py` runs SUMO on the same files for the speed ratio.
//! - `grid40_50k_hour_{1_thread,2_threads}`: the load target — a 40×40 signalised grid (200 m, 2 lanes)
//!   with 50 000 random trips departing within one hour, run until all have arrived, on one piece (one
//!   thread) and split for the two threads of the pool. Throughput is in vehicle updates per second
//!   (target ≥ 5 M/s with 2 threads, 2 threads ≥ 1.7× one); the results of the two are identical (tested
//!   in the engine).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use machi::city::graph::Graph;
use machi::import::sumo::{read_net, read_routes};
use machi::mobility::idm::DriverParams;
use machi::mobility::junctions::{Junctions, SignalParams};
use machi::mobility::micro::{MicroParams, Traffic};
use machi::mobility::vehicles::{random_trips, VehicleModel};
use std::sync::Arc;

fn run(mut t: Traffic) -> u64 {
    while !t.is_done() && t.now_s() < 6.0 * 3600.0 {
        t.step();
    }
    t.stats().vehicle_updates
}

fn traffic(c: &mut Criterion) {
    machi::sim::init_thread_pool(2);
    let params = MicroParams { step_s: 1.0, ..MicroParams::default() };
    let mut g = c.benchmark_group("traffic");
    g.sample_size(10);

    let net = read_net(&machi_benches::data("mobility/sumo-grid/grid.net.xml")).expect("the network reads");
    let demand = read_routes(&machi_benches::data("mobility/sumo-grid/grid.rou.xml"), &net).expect("the routes read");
    let make = || Traffic::from_sumo(&net, &demand, &SignalParams::default(), params.clone()).unwrap();
    g.throughput(Throughput::Elements(run(make())));
    g.bench_function("sumo_grid_hour", |b| b.iter_batched(make, run, BatchSize::LargeInput));

    let graph = Arc::new(Graph::grid(40, 200.0, 2, 50.0 / 3.6));
    let junctions = Junctions::generate(&graph, &SignalParams::default());
    let trips = random_trips(&graph, 50_000, 3600.0, 1);
    let make = |chunks: Option<usize>| {
        let mut t =
            Traffic::new(graph.clone(), junctions.clone(), vec![DriverParams::CAR], params.clone(), trips.clone(), 0.0)
                .unwrap();
        if let Some(c) = chunks {
            t.set_parallel_chunks(c);
        }
        t
    };
    g.throughput(Throughput::Elements(run(make(None))));
    g.bench_function("grid40_50k_hour_1_thread", |b| b.iter_batched(|| make(Some(1)), run, BatchSize::LargeInput));
    g.bench_function("grid40_50k_hour_2_threads", |b| b.iter_batched(|| make(None), run, BatchSize::LargeInput));
    g.finish();
}

criterion_group!(benches, traffic);
criterion_main!(benches);
