//! The robot fleet's day on Andorra la Vella: household orders, two depots, robots walking the footpaths in
//! the sidewalk crowd among pedestrians.

mod common;

use glam::Vec2;
use machi::city::City;
use machi::crowd::wander::Wanderers;
use machi::crowd::{AgentSpec, Crowd, CrowdParams, SceneParams, SidewalkScene};
use machi::population::{Population, PopulationParams};
use machi::robots::fleet::{Depot, Fleet, FleetParams, FleetStats, Outcome, RobotParams};
use machi::robots::orders::{household_orders, OrderParams};
use machi::scenario::Scenario;
use std::sync::Arc;

fn andorra() -> City {
    let s = Scenario::load(&common::scenario("andorra/baseline.toml")).expect("scenario loads");
    machi::run::load_city(&s).expect("city imports")
}

/// Runs the fleet of `robot`s from 8:00 to `until_s` with `pedestrians` wanderers, footpaths to
/// `closed_doors` closed and the depots marked `false` in `supply` without supply; returns the fleet's totals, the order outcomes,
/// the close passes and the energy charged per depot.
fn run_day(
    city: &City,
    robot: RobotParams,
    closed_doors: &[u32],
    supply: &[bool],
    pedestrians: u32,
    chunks: usize,
    until_s: f64,
) -> (FleetStats, Vec<Outcome>, u64, Vec<f64>) {
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
    let params = FleetParams { depots, robot, ..FleetParams::default() };
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
    fleet.set_depot_supply(supply);
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
    (fleet.stats(), fleet.outcomes().to_vec(), close_passes, fleet.depot_charged_kwh().to_vec())
}

#[test]
fn a_morning_of_deliveries_among_pedestrians() {
    let city = andorra();
    let (stats, outcomes, close_passes, _) = run_day(&city, RobotParams::default(), &[], &[], 300, 2, 12.0 * 3600.0);
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
    let (stats, outcomes, _, _) = run_day(&city, RobotParams::default(), &early, &[], 0, 1, 11.5 * 3600.0);
    assert!(stats.failed_flooded > 0, "{stats:?}");
    assert!(outcomes.iter().any(|o| matches!(o, Outcome::Failed(machi::robots::fleet::Failure::Flooded))));
    assert!(stats.delivered > 0);
}

#[test]
fn the_fleet_is_deterministic_at_any_chunking() {
    let city = andorra();
    let a = run_day(&city, RobotParams::default(), &[], &[], 100, 1, 9.0 * 3600.0);
    let b = run_day(&city, RobotParams::default(), &[], &[], 100, 3, 9.0 * 3600.0);
    assert_eq!(a, b);
}

#[test]
fn robots_standing_still_on_their_way_replan_round_the_footpath_now_and_then() {
    // Robots crawling at 1 mm/s stand still as far as the crowd can tell (under 1 cm a step): each one out
    // tries a detour round the link it is on every `replan_after_s`.
    let city = andorra();
    let robot = RobotParams { speed_mps: 0.001, ..RobotParams::default() };
    let replan_after_s = robot.replan_after_s;
    let (stats, _, _, _) = run_day(&city, robot, &[], &[], 0, 1, 8.0 * 3600.0 + 1800.0);
    assert!(stats.replans_when_blocked > 0, "{stats:?}");
    let most = (stats.robots as f64 * 1800.0 / replan_after_s).ceil() as usize;
    assert!(stats.replans_when_blocked <= most, "{} replans, at most {most}", stats.replans_when_blocked);
    assert_eq!(stats.delivered, 0);
    let (normal, _, _, _) = run_day(&city, RobotParams::default(), &[], &[], 0, 1, 8.0 * 3600.0 + 1800.0);
    assert_eq!(normal.replans_when_blocked, 0, "robots that walk are not blocked");
}

#[test]
fn a_depot_without_supply_does_not_charge_its_robots() {
    let city = andorra();
    let (stats, _, _, by_depot) = run_day(&city, RobotParams::default(), &[], &[false, true], 0, 1, 11.0 * 3600.0);
    assert_eq!(by_depot[0], 0.0, "{stats:?}");
    assert!(by_depot[1] > 0.0, "{by_depot:?}");
    assert!((stats.charged_kwh - by_depot[1]).abs() < 1e-9);
    assert!(stats.robot_hours_without_supply > 0.0, "robots came back to the dark depot: {stats:?}");
    let (powered, _, _, _) = run_day(&city, RobotParams::default(), &[], &[], 0, 1, 11.0 * 3600.0);
    assert_eq!(powered.robot_hours_without_supply, 0.0);
    assert!(powered.charged_kwh > stats.charged_kwh);
}

#[test]
fn the_robot_scenario_runs_end_to_end_at_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let run = |threads: &str| {
        let out = dir.path().join(threads);
        common::run_scenario("andorra/robots.toml", threads, &out);
        let text = std::fs::read_to_string(out.join("kpis.json")).unwrap();
        (serde_json::from_str::<serde_json::Value>(&text).unwrap(), out)
    };
    let (one, out_one) = run("1");
    let (two, out_two) = run("2");
    assert_eq!(one, two, "bit-identical KPIs at any thread count");
    let replay_one = std::fs::read(out_one.join("replay.machi")).unwrap();
    assert!(replay_one == std::fs::read(out_two.join("replay.machi")).unwrap(), "bit-identical replays");
    let robots = &one["robots"];
    let k = |name: &str| robots[name].as_f64().unwrap_or_else(|| panic!("KPI {name} in {robots}"));
    assert_eq!(k("robots"), 12.0);
    assert!(k("orders_placed") > 400.0, "{robots}");
    assert!(k("parcels_delivered") >= 0.9 * k("orders_placed"), "{robots}");
    assert!(k("on_time_share") > 0.9 && k("failed_deliveries") == 0.0, "{robots}");
    assert!(k("robot_km") > 100.0 && k("energy_per_parcel_kwh") > 0.0 && k("cost_per_parcel") > 0.0, "{robots}");
    assert!(k("close_passes_with_pedestrians") > 0.0, "{robots}");
    // The depots' charging is a grid load: the grid's chargers drew what the fleet charged, less at most the
    // last grid step's (the grid sees each step's charging one step later): 12 robots x 0.5 kW x 15 min.
    let charged = k("energy_charged_kwh");
    let drawn = one["grid"]["charger_kwh"].as_f64().unwrap();
    assert!(charged > 5.0, "{robots}");
    assert!(
        drawn <= charged + 1e-9 && drawn >= charged - 12.0 * 0.5 * 0.25,
        "grid drew {drawn} kWh, fleet charged {charged}"
    );
    assert_eq!(k("robot_hours_without_supply"), 0.0, "no outage on a dry day");

    // The replay holds every robot (at its depot too) and the pedestrians, each second.
    let replay = machi::replay::ReplayReader::open(out_one.join("replay.machi")).unwrap();
    let stream = machi::observe::replay::STREAM_SIDEWALK;
    let (mut frames, mut delivering, mut last_t) = (0u64, 0u64, None);
    for frame in replay.agent_frames(stream) {
        let frame = frame.unwrap();
        let robots: Vec<_> = frame.agents.iter().filter(|a| a.kind == machi::observe::replay::KIND_ROBOT).collect();
        assert_eq!(robots.len(), 12, "at {} ms", frame.t_ms);
        delivering += robots.iter().filter(|a| a.state == 2).count() as u64;
        assert!(frame.agents.iter().any(|a| a.kind == machi::observe::replay::KIND_PEDESTRIAN));
        if let Some(t) = last_t {
            assert_eq!(frame.t_ms, t + 1000, "one frame a second");
        }
        last_t = Some(frame.t_ms);
        frames += 1;
    }
    assert_eq!(frames, 13 * 3600, "13 h of frames");
    assert!(delivering > 0);
}

#[test]
fn a_flooded_substation_stops_the_charging_at_its_depot() {
    // The river flood day with the second depot moved next to substations the flood trips (15:45 on).
    let dir = tempfile::tempdir().unwrap();
    let variant = dir.path().join("dark-depot.toml");
    let base = common::scenario("andorra/river-flood-robots.toml");
    let text = format!(
        "extends = {:?}\nname = \"dark-depot\"\n[robots]\n\
         depots = [{{ at = [0.0, 0.0], robots = 6 }}, {{ at = [-425.0, -167.0], robots = 6 }}]\npedestrians = 0\n",
        base.to_str().unwrap()
    );
    std::fs::write(&variant, text).unwrap();
    let out = dir.path().join("out");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_machi"))
        .args(["run", variant.to_str().unwrap(), "--threads", "2", "--out", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let kpis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("kpis.json")).unwrap()).unwrap();
    assert!(kpis["grid"]["sites_tripped"].as_f64().unwrap() > 0.0);
    let dark = kpis["robots"]["robot_hours_without_supply"].as_f64().unwrap();
    assert!(dark > 1.0, "robots waited at the dark depot: {}", kpis["robots"]);
    // The replay shows them plugged in without supply.
    let replay = machi::replay::ReplayReader::open(out.join("replay.machi")).unwrap();
    let frame = replay.agent_frame_at(machi::observe::replay::STREAM_SIDEWALK, 20 * 3_600_000).unwrap().unwrap();
    assert!(frame.agents.iter().any(|a| a.kind == machi::observe::replay::KIND_ROBOT && a.state == 5), "{frame:?}");
}

#[test]
fn robots_and_pedestrians_wait_at_crossings_for_gaps_in_the_car_traffic() {
    // The first two hours of the robot day with the car trips in the microscopic model (Andorra's data
    // maps no signals: every wait is for a gap), at 1 and 2 threads.
    let dir = tempfile::tempdir().unwrap();
    let variant = dir.path().join("morning.toml");
    let base = common::scenario("andorra/robots-traffic.toml");
    std::fs::write(
        &variant,
        format!("extends = {:?}\nname = \"morning\"\nduration = \"2h\"\n", base.to_str().unwrap()),
    )
    .unwrap();
    let run = |threads: &str| {
        let out = dir.path().join(threads);
        common::run_scenario_file(&variant, threads, &out);
        let text = std::fs::read_to_string(out.join("kpis.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let (one, two) = (run("1"), run("2"));
    assert_eq!(one, two, "bit-identical KPIs at any thread count");
    let robots = &one["robots"];
    let k = |name: &str| robots[name].as_f64().unwrap_or_else(|| panic!("KPI {name} in {robots}"));
    assert!(k("crossings") > 100.0, "{robots}");
    assert!(k("robot_crossing_waits") > 0.0 && k("crossing_waits") > k("robot_crossing_waits"), "{robots}");
    // A gap comes within seconds on Andorra's streets, not minutes.
    let mean = k("crossing_wait_mean_s");
    assert!(mean > 0.25 && mean < 60.0, "{robots}");
    assert!(k("parcels_delivered") > 0.0, "{robots}");
    assert!(one["mobility"]["vehicle_trips_completed"].as_f64().unwrap() > 100.0, "{}", one["mobility"]);
}
