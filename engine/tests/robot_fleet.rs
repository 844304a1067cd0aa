//! The robot fleet's day on Andorra la Vella: household orders, two depots, robots walking the footpaths in
//! the sidewalk crowd among pedestrians.

mod common;

use glam::Vec2;
use machi::city::City;
use machi::crowd::wander::Wanderers;
use machi::crowd::{AgentSpec, Crowd, CrowdParams, SceneParams, SidewalkScene};
use machi::population::{Population, PopulationParams};
use machi::robots::fleet::{Depot, Fleet, FleetParams, FleetStats, Outcome};
use machi::robots::orders::{household_orders, OrderParams};
use machi::scenario::Scenario;
use std::sync::Arc;

fn andorra() -> City {
    let s = Scenario::load(&common::scenario("andorra/baseline.toml")).expect("scenario loads");
    machi::run::load_city(&s).expect("city imports")
}

/// Runs the fleet from 8:00 to `until_s` with `pedestrians` wanderers; returns the fleet's totals and the
/// order outcomes.
fn run_day(
    city: &City,
    closed_doors: &[u32],
    pedestrians: u32,
    chunks: usize,
    until_s: f64,
) -> (FleetStats, Vec<Outcome>, u64) {
    let population = Population::generate(city, &PopulationParams::default(), 1);
    let orders = household_orders(&population.residents, &OrderParams::default(), 1);
    let footprints = city.buildings.iter().map(|b| b.footprint.clone()).collect();
    let scene = Arc::new(SidewalkScene::new(footprints, &city.footpaths, &SceneParams::default()));
    let mut crowd = Crowd::new(scene, CrowdParams::default());
    crowd.set_parallel_chunks(chunks);
    // Two depots, at the footpath nodes nearest two points of the centre.
    let node_near = |p: Vec2| {
        city.footpaths.nodes().iter().map(|n| n.pos).min_by(|a, b| a.distance(p).total_cmp(&b.distance(p))).unwrap()
    };
    let depots =
        [Vec2::new(0.0, 0.0), Vec2::new(-400.0, -300.0)].map(|p| Depot { at: node_near(p).into(), robots: 6 }).to_vec();
    let params = FleetParams { depots, ..FleetParams::default() };
    let start_s = 8.0 * 3600.0;
    let mut fleet = Fleet::new(city, &mut crowd, params, orders.clone(), start_s).expect("depots on the network");
    // Footpaths into the doors of the chosen buildings are closed (as a flood would).
    let mut closed = vec![false; city.footpaths.links().len()];
    for &b in closed_doors {
        let door = city.buildings[b as usize].centroid;
        for (k, l) in city.footpaths.links().iter().enumerate() {
            let end = city.footpaths.node(l.to).pos;
            if end.distance(door) < 60.0 {
                closed[k] = true;
            }
        }
    }
    fleet.set_closed(&closed);
    let wanderers = Wanderers::new(&city.footpaths, 1);
    let router = machi::city::routing::ContractedRouter::new(&city.footpaths, machi::city::routing::Weight::Length);
    let mut calc = router.calculator();
    let mut walkers = Vec::new();
    for k in 0..pedestrians {
        let id = crowd.add(AgentSpec::pedestrian(wanderers.speed_mps(k)));
        crowd.send(id, wanderers.route(&router, &mut calc, k, 0, wanderers.start(k)).unwrap()).unwrap();
        walkers.push((id, k, 0u64));
    }
    let dt = crowd.params().step_s as f64;
    let mut now = start_s;
    while now < until_s {
        let arrived = crowd.step();
        now += dt;
        for &id in &arrived {
            if let Some(w) = walkers.iter_mut().find(|w| w.0 == id) {
                w.2 += 1;
                let here = city.footpaths.link(*crowd.route(id).last().unwrap()).to;
                if let Some(route) = wanderers.route(&router, &mut calc, w.1, w.2, here) {
                    crowd.send(id, route).unwrap();
                }
            }
        }
        fleet.advance(city, &mut crowd, &arrived, now, dt);
    }
    let close_passes = crowd.stats().close_passes;
    (fleet.stats(), fleet.outcomes().to_vec(), close_passes)
}

#[test]
fn a_morning_of_deliveries_among_pedestrians() {
    let city = andorra();
    let (stats, outcomes, close_passes) = run_day(&city, &[], 300, 2, 12.0 * 3600.0);
    println!("{stats:?}, close passes {close_passes}");
    assert!(stats.orders > 50, "{stats:?}");
    // Every order placed before 10:00 is delivered by noon, nearly all on time.
    let orders = household_orders(
        &Population::generate(&city, &PopulationParams::default(), 1).residents,
        &OrderParams::default(),
        1,
    );
    for (o, outcome) in orders.iter().zip(&outcomes) {
        if o.placed_s < 10.0 * 3600.0 {
            assert!(matches!(outcome, Outcome::Delivered(_)), "order {} placed at {} s: {outcome:?}", o.id, o.placed_s);
        }
    }
    assert_eq!(stats.failed, 0);
    assert!(stats.on_time as f64 >= 0.9 * stats.delivered as f64, "{stats:?}");
    assert!(stats.robot_km > 10.0 && stats.charged_kwh > 0.0, "{stats:?}");
    assert!(stats.cost_per_parcel > 0.0 && stats.kwh_per_parcel > 0.0);
    assert!(close_passes > 0, "robots met pedestrians");
}

#[test]
fn doors_cut_off_by_flooding_fail_and_count_as_flooded() {
    let city = andorra();
    let orders = household_orders(
        &Population::generate(&city, &PopulationParams::default(), 1).residents,
        &OrderParams::default(),
        1,
    );
    let early: Vec<u32> = orders.iter().filter(|o| o.placed_s < 9.0 * 3600.0).map(|o| o.building).take(3).collect();
    let (stats, outcomes, _) = run_day(&city, &early, 0, 1, 11.5 * 3600.0);
    assert!(stats.failed_flooded > 0, "{stats:?}");
    assert!(outcomes.iter().any(|o| matches!(o, Outcome::Failed(machi::robots::fleet::Failure::Flooded))));
    assert!(stats.delivered > 0);
}

#[test]
fn the_fleet_is_deterministic_at_any_chunking() {
    let city = andorra();
    let a = run_day(&city, &[], 100, 1, 9.0 * 3600.0);
    let b = run_day(&city, &[], 100, 3, 9.0 * 3600.0);
    assert_eq!(a, b);
}

#[test]
fn the_robot_scenario_runs_end_to_end_at_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let kpis = |threads: &str| {
        let out = dir.path().join(threads);
        common::run_scenario("andorra/robots.toml", threads, &out);
        let text = std::fs::read_to_string(out.join("kpis.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["robots"].clone()
    };
    let one = kpis("1");
    let two = kpis("2");
    assert_eq!(one, two, "bit-identical KPIs at any thread count");
    let k = |name: &str| one[name].as_f64().unwrap_or_else(|| panic!("KPI {name} in {one}"));
    assert_eq!(k("robots"), 12.0);
    assert!(k("orders_placed") > 400.0, "{one}");
    assert!(k("parcels_delivered") >= 0.9 * k("orders_placed"), "{one}");
    assert!(k("on_time_share") > 0.9 && k("failed_deliveries") == 0.0, "{one}");
    assert!(k("robot_km") > 100.0 && k("energy_per_parcel_kwh") > 0.0 && k("cost_per_parcel") > 0.0, "{one}");
    assert!(k("close_passes_with_pedestrians") > 0.0, "{one}");
}
