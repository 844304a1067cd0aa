//! One 1D dam break run by Machi's flood solver, for side-by-side comparison with ANUGA
//! (`benches/peers/anuga_dam_break.py` calls this). Prints one JSON object: the set-up, the wall time, the
//! relative L1 depth error against Ritter's (dry bed) or Stoker's (wet bed) analytic solution, and the
//! depth profile.
//!
//! ```text
//! cargo run --release -p machi-benches --example dam_break -- H0 H1 LENGTH_M DX_M T_S
//! ```

use machi::flood::analytic::{ritter_depth, stoker_depth};
use machi::flood::solver::{Boundaries, Boundary, FloodSolver};
use std::time::Instant;

/// Gravitational acceleration (m/s²), the value the solver uses.
const G: f64 = 9.81;

fn main() {
    let args: Vec<f64> =
        std::env::args().skip(1).map(|a| a.parse().unwrap_or_else(|_| usage(&format!("not a number: {a}")))).collect();
    let [h0, h1, length, dx, t] = args[..] else { usage("expected 5 numbers") };
    if !(h0 > h1 && h1 >= 0.0 && length > 0.0 && dx > 0.0 && t > 0.0) {
        usage("need H0 > H1 ≥ 0 and positive LENGTH_M, DX_M, T_S");
    }
    machi::sim::init_thread_pool(1);
    let nx = (length / dx).round() as usize;
    let x = |i: usize| (i as f64 + 0.5) * dx - length / 2.0;
    let started = Instant::now();
    // A frictionless horizontal channel one cell wide with closed ends: the 1D problem exactly.
    let mut s = FloodSolver::<f64>::new(
        nx,
        1,
        dx,
        &vec![0.0; nx],
        &vec![0.0; nx],
        vec![false; nx],
        Boundaries::all(Boundary::Closed),
    );
    s.set_depths(&(0..nx).map(|i| if x(i) < 0.0 { h0 } else { h1 }).collect::<Vec<_>>());
    s.advance_to(t);
    let wall_s = started.elapsed().as_secs_f64();
    let exact: Vec<f64> = (0..nx)
        .map(|i| if h1 > 0.0 { stoker_depth(h0, h1, G, x(i), t) } else { ritter_depth(h0, G, x(i), t) })
        .collect();
    let h = s.depths();
    let l1 = h.iter().zip(&exact).map(|(a, b)| (a - b).abs()).sum::<f64>() / exact.iter().sum::<f64>();
    let list = |v: &mut dyn Iterator<Item = f64>| v.map(|x| format!("{x:.6}")).collect::<Vec<_>>().join(",");
    println!(
        "{{\"model\":\"machi\",\"h0\":{h0},\"h1\":{h1},\"length_m\":{length},\"dx_m\":{dx},\"t_s\":{t},\
         \"cells\":{nx},\"steps\":{},\"wall_s\":{wall_s:.6},\"l1\":{l1:.6},\"x\":[{}],\"depth\":[{}]}}",
        s.steps,
        list(&mut (0..nx).map(x)),
        list(&mut h.iter().copied()),
    );
}

fn usage(why: &str) -> ! {
    eprintln!("dam_break: {why}\nusage: dam_break H0 H1 LENGTH_M DX_M T_S");
    std::process::exit(2)
}
