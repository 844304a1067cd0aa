//! AC power flow (Newton–Raphson, sparse LU with the symbolic factorisation reused): one full solve from a
//! flat start per iteration of the bench, on the shipped networks: the IEEE European LV feeder (pandapower
//! JSON) and the MATPOWER cases from 9 to 9241 buses as pandapower ships them.

use criterion::{criterion_group, criterion_main, Criterion};
use machi::grid::{PowerFlow, PowerFlowOptions};

fn powerflow(c: &mut Criterion) {
    let mut g = c.benchmark_group("powerflow");
    g.sample_size(20);
    let cases = [
        "grid/ieee-european-lv.pandapower.json",
        "grid/pandapower/case9.json",
        "grid/pandapower/case118.json",
        "grid/pandapower/case1354pegase.json",
        "grid/pandapower/case9241pegase.json",
    ];
    for rel in cases {
        let path = machi_benches::data(rel);
        if !path.exists() {
            continue;
        }
        let net = machi::grid::read_case(&path).expect("a shipped network reads");
        let options = PowerFlowOptions { max_iterations: 30, ..PowerFlowOptions::default() };
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        // Prepared once (topology, symbolic factorisation), as a time series does; then solved repeatedly.
        let mut pf = PowerFlow::new(&net, options).expect("a shipped network has a slack");
        g.bench_function(format!("solve_{name}"), |b| b.iter(|| pf.solve(&net).expect("converges")));
        g.bench_function(format!("prepare_and_solve_{name}"), |b| {
            b.iter(|| PowerFlow::new(&net, options).and_then(|mut pf| pf.solve(&net)).expect("converges"))
        });
    }
    g.finish();
}

criterion_group!(benches, powerflow);
criterion_main!(benches);
