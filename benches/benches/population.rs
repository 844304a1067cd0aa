//! Synthetic population generation and trip evaluation on the shipped cities, and the whole default run
//! (target: the 24-hour Andorra population run in under 5 s on 2 cores).

use criterion::{criterion_group, criterion_main, Criterion};
use machi::population::Population;
use machi::run::{run, RunOptions};
use machi::scenario::Scenario;
use machi_benches::scenario;
use std::hint::black_box;

fn population(c: &mut Criterion) {
    let mut g = c.benchmark_group("population");
    g.sample_size(10);
    for name in ["andorra", "monaco"] {
        let s = Scenario::load(&scenario(&format!("{name}/baseline.toml"))).expect("scenario loads");
        let city = machi::run::load_city(&s).expect("city imports");
        g.bench_function(format!("{name}_generate"), |b| {
            b.iter(|| black_box(Population::generate(&city, &s.file.population, s.file.seed)))
        });
        let pop = Population::generate(&city, &s.file.population, s.file.seed);
        g.bench_function(format!("{name}_plan_trips_2_threads"), |b| {
            b.iter(|| black_box(machi::mobility::teleport::plan_trips(&city, &pop, &s.file.population, 2)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("run");
    g.sample_size(10);
    let s = Scenario::load(&scenario("andorra/baseline.toml")).expect("scenario loads");
    let out = std::env::temp_dir().join("machi-bench-run");
    g.bench_function("andorra_24h_default_run", |b| {
        b.iter(|| {
            run(&s, &RunOptions { out_dir: out.clone(), threads: 2, seed: None }, |_, _| {})
                .expect("the default run completes")
        })
    });
    g.finish();
}

criterion_group!(benches, population);
criterion_main!(benches);
