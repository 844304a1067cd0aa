//! Shared helpers for the criterion benches and the bench examples: paths to the shipped data and scenarios,
//! the flood solver's benchmark case.

use std::path::PathBuf;

/// The workspace root (benches run with the package folder as the working directory).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A path under `data/`.
pub fn data(rel: &str) -> PathBuf {
    workspace().join("data").join(rel)
}

/// A path under `scenarios/`.
pub fn scenario(rel: &str) -> PathBuf {
    workspace().join("scenarios").join(rel)
}

/// The flood benchmark case: a 2000 × 2000 f32 grid of 2 m cells on a gently sloping, wavy bed under a 5 m
/// water level, free outflow on every edge, spun up 5 steps of [`FLOOD_DT_S`] so every face carries flow;
/// its rows in `bands` bands.
pub fn flood_case(bands: usize) -> machi::flood::solver::FloodSolver<f32> {
    use machi::flood::solver::{Boundaries, Boundary, FloodSolver};
    let n = FLOOD_SIDE;
    let z: Vec<f64> = (0..n * n)
        .map(|k| {
            let (x, y) = ((k % n) as f64, (k / n) as f64);
            0.002 * x + 0.3 * (x * 0.05).sin() * (y * 0.07).cos()
        })
        .collect();
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
    for _ in 0..5 {
        s.step(FLOOD_DT_S);
    }
    s
}

/// Side of the flood benchmark case (cells).
pub const FLOOD_SIDE: usize = 2000;
/// Time step of the flood benchmark case (s), under the CFL limit for its 5 m of water.
pub const FLOOD_DT_S: f64 = 0.2;
