//! The robots' dispatcher: a 1 000-stop CVRP (`data/vrp/random-n1000-s1.vrp`) solved with the default
//! settings (savings, local search, 3 000 ruin-and-recreate rounds), and a dispatch round of the fleet on
//! Andorra la Vella: 1 000 waiting orders to 50 robots at one depot (payload 20), footpath distances by
//! Dijkstra from every door included (issue 6's target: under 2 s). `benches/peers/ortools_cvrp.py`
//! compares the dispatcher's distances with OR-Tools'.

use criterion::{criterion_group, criterion_main, Criterion};
use machi::crowd::{Crowd, CrowdParams, SceneParams, SidewalkScene};
use machi::robots::dispatch::{solve, DispatchParams};
use machi::robots::fleet::{Depot, Fleet, FleetParams, RobotParams};
use machi::robots::orders::Order;
use machi::robots::vrp::Cvrp;
use machi::scenario::Scenario;
use std::sync::Arc;

/// Orders in the fleet's dispatch round.
const ORDERS: u32 = 1000;
/// Robots at the depot.
const ROBOTS: u32 = 50;

fn dispatch(c: &mut Criterion) {
    let p = Cvrp::read(&machi_benches::data("vrp/random-n1000-s1.vrp")).expect("the instance reads");
    let mut g = c.benchmark_group("dispatch");
    g.sample_size(10);
    g.bench_function("cvrp_1000_stops", |b| b.iter(|| solve(&p, &DispatchParams::default()).distance));

    let scenario = Scenario::load(&machi_benches::scenario("andorra/robots.toml")).expect("scenario loads");
    let city = machi::run::load_city(&scenario).expect("city imports");
    let footprints = city.buildings.iter().map(|b| b.footprint.clone()).collect();
    let scene = Arc::new(SidewalkScene::new(footprints, &city.footpaths, &SceneParams::default()));
    // 1 000 orders to buildings spread over the city (every k-th building, round robin), all waiting at 8:00.
    let n = city.buildings.len() as u32;
    let orders: Vec<Order> = (0..ORDERS)
        .map(|i| Order { id: i, building: (i * 7919) % n, placed_s: 8.0 * 3600.0, due_s: 10.0 * 3600.0 })
        .collect();
    let params = FleetParams {
        depots: vec![Depot { at: [0.0, 0.0], robots: ROBOTS }],
        robot: RobotParams { payload_parcels: 20, ..RobotParams::default() },
        ..FleetParams::default()
    };
    let round = || {
        let mut crowd = Crowd::new(scene.clone(), CrowdParams::default());
        let mut fleet = Fleet::new(&city, &mut crowd, params.clone(), orders.clone(), 8.0 * 3600.0).expect("fleet");
        fleet.advance(&city, &mut crowd, &[], 8.0 * 3600.0, 0.25);
        let assigned = fleet.outcomes().iter().filter(|o| matches!(o, machi::robots::fleet::Outcome::Assigned));
        (assigned.count(), fleet.robots().filter(|r| r.1 == machi::robots::fleet::RobotState::Delivering).count())
    };
    let (assigned, out) = round();
    println!("fleet round: {assigned} of {ORDERS} orders on {out} robots that set off");
    g.bench_function("fleet_round_1000_orders_50_robots", |b| b.iter(round));
    g.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
