//! AC power flow (Newton–Raphson, sparse LU refactorised with kept pivots): one full solve from a flat start
//! per iteration of the bench, on the shipped networks: the IEEE European LV feeder (pandapower JSON) and
//! the MATPOWER case files from 9 to 9241 buses. Then a year of hourly steps on the LV feeder (8 760 power
//! flows: H0 households of 3 500 kWh/a, warm starts), the time-series target.

use criterion::{criterion_group, criterion_main, Criterion};
use machi::grid::profiles::BdewProfiles;
use machi::grid::solar::RooftopPv;
use machi::grid::timeseries::{Consumer, GridSeries, SeriesParams, StepInputs, StepTime};
use machi::grid::{PowerFlow, PowerFlowOptions};

fn powerflow(c: &mut Criterion) {
    let mut g = c.benchmark_group("powerflow");
    g.sample_size(20);
    let cases = [
        "grid/ieee-european-lv.pandapower.json",
        "grid/matpower/case9.m",
        "grid/matpower/case118.m",
        "grid/matpower/case1354pegase.m",
        "grid/matpower/case2869pegase.m",
        "grid/matpower/case9241pegase.m",
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

/// A year of hourly steps on the IEEE European LV feeder: every load an H0 household of 3 500 kWh/a.
fn year_of_hourly_steps(c: &mut Criterion) {
    let net = machi::grid::read_case(&machi_benches::data("grid/ieee-european-lv.pandapower.json"))
        .expect("the LV feeder reads");
    let profiles = BdewProfiles::read(&machi_benches::data("profiles/bdew-slp.csv")).expect("profiles read");
    let params = SeriesParams {
        lat_lon_deg: (52.5, -1.5), // the feeder is British
        cloud_factor: vec![1.0],
        pv: RooftopPv::default(),
        power_factor: 0.95,
        co2_g_per_kwh: 0.0,
        voltage_band_pu: (0.9, 1.1),
        holidays: Vec::new(),
    };
    let consumers = Consumer::from_loads(&net, "H0", 3500.0);
    let mut g = c.benchmark_group("timeseries");
    g.sample_size(10);
    g.bench_function("ieee_european_lv_year_hourly", |b| {
        b.iter(|| {
            let mut series =
                GridSeries::new(net.clone(), consumers.clone(), Vec::new(), profiles.clone(), params.clone())
                    .expect("H0 is in the table");
            for hour in 0..8760u32 {
                let time = StepTime {
                    year: 2026,
                    day_of_year: hour / 24 + 1,
                    local_hours: (hour % 24) as f64,
                    utc_offset_h: 0.0,
                };
                series.step(&time, 3600.0, &StepInputs::default()).expect("converges");
            }
            series.totals.load_kwh
        })
    });
    g.finish();
}

criterion_group!(benches, powerflow, year_of_hourly_steps);
criterion_main!(benches);
