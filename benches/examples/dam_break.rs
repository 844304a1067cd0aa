//! One 1D dam break run by Machi's flood solver, for side-by-side comparison with ANUGA
//! (`benches/peers/anuga_dam_break.py` calls this). Prints one JSON object: the set-up, the wall time, the
//! relative L1 depth error against Ritter's (dry bed) or Stoker's (wet bed) analytic solution, and the
//! depth profile.
//!
//! ```text
//! cargo run --release -p machi-benches --example dam_break -- H0 H1 LENGTH_M DX_M T_S
//! ```

use machi::flood::analytic::dam_break;
use std::time::Instant;

fn main() {
    let args: Vec<f64> =
        std::env::args().skip(1).map(|a| a.parse().unwrap_or_else(|_| usage(&format!("not a number: {a}")))).collect();
    let [h0, h1, length, dx, t] = args[..] else { usage("expected 5 numbers") };
    if !(h0 > h1 && h1 >= 0.0 && length > 0.0 && dx > 0.0 && t > 0.0) {
        usage("need H0 > H1 ≥ 0 and positive LENGTH_M, DX_M, T_S");
    }
    machi::sim::init_thread_pool(1);
    let started = Instant::now();
    let run = dam_break(h0, h1, length, dx, t);
    let wall_s = started.elapsed().as_secs_f64();
    let (nx, l1) = (run.x_m.len(), run.l1());
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.6}")).collect::<Vec<_>>().join(",");
    println!(
        "{{\"model\":\"machi\",\"h0\":{h0},\"h1\":{h1},\"length_m\":{length},\"dx_m\":{dx},\"t_s\":{t},\
         \"cells\":{nx},\"steps\":{},\"wall_s\":{wall_s:.6},\"l1\":{l1:.6},\"x\":[{}],\"depth\":[{}]}}",
        run.steps,
        list(&run.x_m),
        list(&run.depth_m),
    );
}

fn usage(why: &str) -> ! {
    eprintln!("dam_break: {why}\nusage: dam_break H0 H1 LENGTH_M DX_M T_S");
    std::process::exit(2)
}
