//! Side by side with SUMO: the microscopic model on SUMO's own network and demand (a `netgenerate` 10×10
//! signalised grid, 200 m blocks, 2 lanes; one hour of `randomTrips`/`duarouter` trips; IDM vehicles), read
//! from the SUMO files, against SUMO 1.28's results on the same files (`data/mobility/sumo-grid/`, made by
//! `benches/peers/sumo_grid.py --generate`). The issue asks: mean travel time within 10 % of SUMO's, and
//! the same vehicles arrive.

mod common;

use machi::import::sumo::{read_net, read_routes};
use machi::mobility::junctions::SignalParams;
use machi::mobility::micro::{MicroParams, Traffic};
use machi::mobility::vehicles::VehicleModel;

#[test]
fn the_sumo_grid_hour_matches_sumo() {
    let net = read_net(&common::data("mobility/sumo-grid/grid.net.xml")).unwrap();
    let demand = read_routes(&common::data("mobility/sumo-grid/grid.rou.xml"), &net).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::data("mobility/sumo-grid/reference.json")).unwrap())
            .unwrap();
    assert_eq!(net.control.plans.len(), 100, "every junction has SUMO's program");
    // SUMO's default step, as SUMO ran.
    let params = MicroParams { step_s: 1.0, ..MicroParams::default() };
    let mut sim = Traffic::from_sumo(&net, &demand, &SignalParams::default(), params).unwrap();
    while !sim.is_done() && sim.now_s() < 3.0 * 3600.0 {
        sim.step();
    }
    let done = sim.finished();
    let mut arrived: Vec<&str> =
        done.iter().filter(|r| !r.teleported).map(|r| demand.vehicles[r.id as usize].id.as_str()).collect();
    arrived.sort_unstable();
    let sumo_arrived: Vec<&str> =
        reference["arrived_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(arrived, sumo_arrived, "the same vehicles arrive");
    let mean = done.iter().map(|r| r.arrive_s - r.inserted_s).sum::<f64>() / done.len() as f64;
    let sumo_mean = reference["mean_duration_s"].as_f64().unwrap();
    let ratio = mean / sumo_mean;
    eprintln!("mean trip duration: Machi {mean:.1} s, SUMO {sumo_mean:.1} s ({ratio:.3})");
    assert!((ratio - 1.0).abs() <= 0.10, "{ratio}");
}
