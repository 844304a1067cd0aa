//! The robots' dispatcher: a 1 000-stop CVRP (`data/vrp/random-n1000-s1.vrp`) solved with the default
//! settings (savings, local search, 3 000 ruin-and-recreate rounds). `benches/peers/ortools_cvrp.py` compares
//! its distances with OR-Tools'.

use criterion::{criterion_group, criterion_main, Criterion};
use machi::robots::dispatch::{solve, DispatchParams};
use machi::robots::vrp::Cvrp;

fn dispatch(c: &mut Criterion) {
    let p = Cvrp::read(&machi_benches::data("vrp/random-n1000-s1.vrp")).expect("the instance reads");
    let mut g = c.benchmark_group("dispatch");
    g.sample_size(10);
    g.bench_function("cvrp_1000_stops", |b| b.iter(|| solve(&p, &DispatchParams::default()).distance));
    g.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
