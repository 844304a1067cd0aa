//! Flood solver throughput: one local-inertial step on a 2000 × 2000 grid (f32), all cells wet and moving,
//! with the rows in 1 band (one thread) and in 2 bands (two threads of the engine's pool). Throughput is in
//! cell-updates per second (target ≥ 150 M/s with 2 threads, 2 threads ≥ 1.8× one; the example
//! `flood_scaling` measures the ratio with the two stepped in turns).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use machi_benches::{flood_case, FLOOD_DT_S, FLOOD_SIDE};

fn flood(c: &mut Criterion) {
    machi::sim::init_thread_pool(2);
    let n = FLOOD_SIDE;
    let mut g = c.benchmark_group("flood");
    g.sample_size(10);
    g.throughput(Throughput::Elements((n * n) as u64));
    for bands in [1usize, 2] {
        let mut s = flood_case(bands);
        g.bench_function(format!("step_2000x2000_f32_{bands}_thread{}", if bands > 1 { "s" } else { "" }), |b| {
            b.iter(|| s.step(FLOOD_DT_S))
        });
    }
    g.finish();
}

criterion_group!(benches, flood);
criterion_main!(benches);
