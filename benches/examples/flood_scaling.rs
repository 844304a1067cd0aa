//! Thread scaling of the flood solver, measured so machine noise hits both sides alike: the criterion bench's
//! case (a 2000 × 2000 f32 grid, every cell wet and moving) in 1 band and in 2 bands (two threads of the
//! engine's pool), stepped in turns — a sample of 1 band, then a sample of 2 bands, and so on — and the
//! medians compared.
//!
//! `cargo run --release -p machi-benches --example flood_scaling [SAMPLES] [STEPS_PER_SAMPLE]` (60, 5).

use machi::flood::solver::FloodSolver;
use machi_benches::{flood_case, FLOOD_DT_S, FLOOD_SIDE};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let samples = args.first().copied().unwrap_or(60).max(1);
    let steps = args.get(1).copied().unwrap_or(5).max(1);
    machi::sim::init_thread_pool(2);
    let mut one = flood_case(1);
    let mut two = flood_case(2);
    let (mut t1, mut t2) = (Vec::new(), Vec::new());
    let time = |s: &mut FloodSolver<f32>| {
        let t = Instant::now();
        for _ in 0..steps {
            s.step(FLOOD_DT_S);
        }
        t.elapsed().as_secs_f64() / steps as f64
    };
    for _ in 0..samples {
        t1.push(time(&mut one));
        t2.push(time(&mut two));
    }
    // Both runs did the same steps: the results must agree bit for bit.
    assert!(one.depths() == two.depths(), "1 and 2 bands differ");
    let (m1, m2) = (median(t1), median(t2));
    let cells = (FLOOD_SIDE * FLOOD_SIDE) as f64;
    println!(
        "flood step {FLOOD_SIDE}x{FLOOD_SIDE} f32, {samples} samples of {steps} steps: 1 thread {:.2} ms ({:.0} M cells/s), \
         2 threads {:.2} ms ({:.0} M cells/s), speed-up {:.2}x",
        m1 * 1e3,
        cells / m1 / 1e6,
        m2 * 1e3,
        cells / m2 / 1e6,
        m1 / m2
    );
}
