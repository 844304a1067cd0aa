//! The microscopic model's load test: a `netgenerate`-style signalised grid with random trips over one hour,
//! run once on one piece (one thread) and once split for the pool's threads; prints the vehicle updates per
//! second of each and checks they agree. `cargo run --release -p machi-benches --example traffic_grid --
//! [junctions per side] [trips] [1|2]` (default 40 and 50 000, both configurations).

use machi::city::graph::Graph;
use machi::mobility::junctions::{Junctions, SignalParams};
use machi::mobility::micro::{MicroParams, Traffic};
use machi::mobility::vehicles::{random_trips, VehicleModel};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let side = args.first().copied().unwrap_or(40);
    let count = args.get(1).copied().unwrap_or(50_000);
    let threads = machi::sim::init_thread_pool(2);
    let graph = Arc::new(Graph::grid(side, 200.0, 2, 50.0 / 3.6));
    let junctions = Junctions::generate(&graph, &SignalParams::default());
    let trips = random_trips(&graph, count, 3600.0, 1);
    let params = MicroParams { step_s: 1.0, ..MicroParams::default() };
    let mut results = Vec::new();
    // A third argument 1 or 2 runs only that configuration (for profiling).
    let only = args.get(2).copied();
    let configurations: Vec<Option<usize>> = match only {
        Some(1) => vec![Some(1)],
        Some(_) => vec![None],
        None => vec![Some(1), None],
    };
    for chunks in configurations {
        let mut t = Traffic::new(
            graph.clone(),
            junctions.clone(),
            vec![machi::mobility::idm::DriverParams::CAR],
            params.clone(),
            trips.clone(),
            0.0,
        )
        .expect("valid trips");
        if let Some(c) = chunks {
            t.set_parallel_chunks(c);
        }
        let started = Instant::now();
        let mut peak = 0;
        while !t.is_done() && t.now_s() < 4.0 * 3600.0 {
            t.step();
            peak = peak.max(t.on_network());
        }
        let s = started.elapsed().as_secs_f64();
        let st = t.stats();
        let done = t.finished();
        let mean = done.iter().map(|r| r.arrive_s - r.inserted_s).sum::<f64>() / done.len().max(1) as f64;
        println!(
            "{}: {} trips on a {side}x{side} grid: {} finished ({} teleported) by {:.0} s, peak {peak} on the network, mean duration {mean:.1} s; {:.2} s, {} updates, {:.2} M updates/s",
            if chunks.is_some() { "1 thread " } else { "2 threads" },
            count,
            done.len(),
            st.teleports,
            t.now_s(),
            s,
            st.vehicle_updates,
            st.vehicle_updates as f64 / s / 1e6
        );
        results.push((s, done.to_vec()));
    }
    if let [one, two] = &results[..] {
        assert_eq!(one.1, two.1, "results identical on 1 and {threads} threads");
        println!("2 threads / 1 thread speed-up: {:.2}", one.0 / two.0);
    }
}
