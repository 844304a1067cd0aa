//! Flood solver throughput: one local-inertial step on a 2000 × 2000 grid (f32), all cells wet and moving,
//! with the rows in 1 band (one thread) and in 2 bands (two threads of the engine's pool). Throughput is in
//! cell-updates per second (target ≥ 150 M/s with 2 threads, 2 threads ≥ 1.8× one).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use machi::flood::solver::{Boundaries, Boundary, FloodSolver};

fn flood(c: &mut Criterion) {
    machi::sim::init_thread_pool(2);
    let n = 2000;
    let z: Vec<f64> = (0..n * n)
        .map(|k| {
            let (x, y) = ((k % n) as f64, (k / n) as f64);
            0.002 * x + 0.3 * (x * 0.05).sin() * (y * 0.07).cos()
        })
        .collect();
    let mut g = c.benchmark_group("flood");
    g.sample_size(10);
    g.throughput(Throughput::Elements((n * n) as u64));
    for bands in [1usize, 2] {
        let mut s = FloodSolver::<f32>::new(
            n,
            n,
            2.0,
            &z,
            &vec![0.03; n * n],
            vec![false; n * n],
            Boundaries::all(Boundary::FreeOutflow { slope: 0.002 }),
        );
        s.bands = bands;
        s.set_depths(&z.iter().map(|b| (5.0 - b).max(0.0)).collect::<Vec<_>>());
        // Spin up so fluxes are non-zero everywhere.
        for _ in 0..5 {
            s.step(0.2);
        }
        g.bench_function(format!("step_2000x2000_f32_{bands}_thread{}", if bands > 1 { "s" } else { "" }), |b| {
            b.iter(|| s.step(0.2))
        });
    }
    g.finish();
}

criterion_group!(benches, flood);
criterion_main!(benches);
