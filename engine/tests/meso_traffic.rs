//! The mesoscopic queue model as a scenario's mobility domain, end to end through `machi run`:
//! - Andorra la Vella's weekday with `[mobility] model = "meso"`: every car trip of the population is driven
//!   through the queues and arrives, the same persons make the same trips as at free flow, the day costs
//!   about what the microscopic model says it costs, and the run is byte-identical at 1 and 2 threads;
//!   its link volumes are written for every road link (CSV) and as lines of the links used (GeoJSON);
//! - SUMO's grid network and demand in the queue model: every vehicle arrives, none faster than free flow;
//! - twelve cars listed one by one with their routes (`[mobility] routes`) drive beside the population;
//! - the valley road closed through the morning peak: the free-flow detours jam, and drivers who re-plan on
//!   the travel times they meet (`[mobility.rerouting]`) cut the day's delay, deterministically.

mod common;

use std::path::Path;

fn run(scenario: &str, threads: &str, out: &Path) -> serde_json::Value {
    common::run_scenario(scenario, threads, out);
    serde_json::from_slice(&std::fs::read(out.join("kpis.json")).unwrap()).unwrap()
}

fn num(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k}: {v}"))
}

#[test]
fn the_andorra_day_in_the_queue_model_drives_every_car_trip_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("meso2"), dir.path().join("meso1"));
    let meso = run("andorra/meso-traffic.toml", "2", &a);
    run("andorra/meso-traffic.toml", "1", &b);
    for f in ["kpis.json", "timeseries.csv", "replay.machi", "link_volumes.csv", "link_volumes.geojson"] {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        assert!(x == y, "{f} differs between 1 and 2 threads");
    }
    let free = run("andorra/baseline.toml", "2", &dir.path().join("free"));
    let (m, f) = (&meso["mobility"], &free["mobility"]);
    assert_eq!(m["trips_car"], f["trips_car"]);
    let cars = num(m, "trips_car");
    assert!(cars > 1000.0, "{m}");
    assert_eq!(num(m, "vehicle_trips_completed"), cars, "{m}");
    assert_eq!(num(m, "vehicle_trips_teleported"), 0.0);
    assert_eq!(num(m, "vehicle_trips_stuck_at_end"), 0.0);
    // Queues at the busiest links cost some time; a small town's traffic is light.
    let (tm, tf) = (num(m, "mean_trip_time_car_s"), num(f, "mean_trip_time_car_s"));
    eprintln!("mean car trip: {tm:.1} s in the queue model, {tf:.1} s at free flow");
    assert!(tm >= tf && tm < 1.5 * tf, "{tm} vs {tf}");
    assert!(num(m, "total_delay_veh_h") > 0.0);
    // Vehicles are in the replay while they drive.
    use machi::observe::replay::STREAM_VEHICLES;
    let r = machi::replay::ReplayReader::open(a.join("replay.machi")).unwrap();
    let frame = r.agent_frame_at(STREAM_VEHICLES, 8 * 3600 * 1000).unwrap().unwrap();
    assert!(!frame.agents.is_empty(), "vehicles on the road at 08:00");
    // Link volumes for planners: every road link in the CSV, the used ones as lines in QGIS's GeoJSON.
    let mut csv = csv::Reader::from_path(a.join("link_volumes.csv")).unwrap();
    let volumes: Vec<u32> = csv.deserialize::<LinkRow>().map(|r| r.unwrap().vehicles).collect();
    assert!(volumes.len() > 1000, "{} links", volumes.len());
    assert_eq!(volumes.iter().filter(|&&v| v > 0).count() as f64, num(m, "links_used"));
    assert_eq!(volumes.iter().copied().max().unwrap() as f64, num(m, "max_link_volume_veh"));
    let geojson: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("link_volumes.geojson")).unwrap()).unwrap();
    let features = geojson["features"].as_array().unwrap();
    assert_eq!(features.len() as f64, num(m, "links_used"));
    for f in features {
        assert!(f["properties"]["vehicles"].as_u64().unwrap() > 0);
        for p in f["geometry"]["coordinates"].as_array().unwrap() {
            let (lon, lat) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
            assert!((1.4..1.7).contains(&lon) && (42.4..42.6).contains(&lat), "{lon}, {lat}: not in Andorra");
        }
    }
}

/// A row of `link_volumes.csv` (the columns a test reads).
#[derive(serde::Deserialize)]
struct LinkRow {
    vehicles: u32,
}

#[test]
fn sumo_demand_runs_in_the_queue_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("meso");
    let kpis = run("sumo-grid/grid-hour-meso.toml", "2", &out);
    let m = &kpis["mobility"];
    // Link volumes as CSV; no GeoJSON, since a SUMO network's coordinates are not georeferenced here.
    assert!(out.join("link_volumes.csv").exists() && !out.join("link_volumes.geojson").exists());
    assert_eq!(num(m, "vehicle_trips_completed"), 3600.0, "{m}");
    assert_eq!(num(m, "vehicle_trips_teleported"), 0.0);
    assert!(num(m, "total_delay_veh_h") >= 0.0);
    // Free flow over the mean SUMO route (1 627 m at 13.9 m/s) is 117 s; no one drives faster than the limit.
    let mean = num(m, "mean_vehicle_trip_time_s");
    let free_flow_mean_s = num(m, "vehicle_km_driven") * 1000.0 / 3600.0 / 13.89;
    assert!(mean >= free_flow_mean_s * 0.999, "{mean} vs {free_flow_mean_s}");
    // With each signalised movement's mean red wait, the queue model's mean trip is within 10 % of what
    // SUMO's microscopic model gives on the same files (reference.json, made by benches/peers/sumo_grid.py).
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(common::data("mobility/sumo-grid/reference.json")).unwrap()).unwrap();
    let sumo = num(&reference, "mean_duration_s");
    eprintln!("mean trip: {mean:.1} s in the queue model, {sumo:.1} s in SUMO");
    assert!((mean - sumo).abs() < 0.1 * sumo, "{mean} vs SUMO {sumo}");
}

#[test]
fn an_od_matrix_adds_its_trips_beside_the_population() {
    let dir = tempfile::tempdir().unwrap();
    let od = run("andorra/od-traffic.toml", "2", &dir.path().join("od"));
    let base = run("andorra/meso-traffic.toml", "2", &dir.path().join("base"));
    let (m, b) = (&od["mobility"], &base["mobility"]);
    // od-matrix.csv: 1 900 trips in ten rows; every one finds a route and arrives.
    let rows = std::fs::read_to_string(common::scenario("andorra/od-matrix.csv")).unwrap();
    let listed: f64 = rows.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap()).sum();
    assert_eq!(num(m, "od_trips_drawn"), listed, "{m}");
    assert_eq!(num(m, "od_trips_left_out"), 0.0);
    assert_eq!(num(m, "od_trips_completed"), listed);
    // The population's trips are the same ones; the OD trips come on top of them.
    assert_eq!(m["trips_car"], b["trips_car"]);
    assert_eq!(num(m, "vehicle_trips_completed"), num(b, "vehicle_trips_completed") + listed);
    assert!(num(m, "total_delay_veh_h") > num(b, "total_delay_veh_h"), "more traffic, more delay: {m}");
}

#[test]
fn listed_routes_add_their_vehicles_beside_the_population() {
    let dir = tempfile::tempdir().unwrap();
    let listed = run("andorra/listed-routes.toml", "2", &dir.path().join("listed"));
    let base = run("andorra/meso-traffic.toml", "2", &dir.path().join("base"));
    let (m, b) = (&listed["mobility"], &base["mobility"]);
    let rows = std::fs::read_to_string(common::scenario("andorra/listed-routes.csv")).unwrap();
    let count = rows.lines().skip(1).filter(|l| !l.trim().is_empty()).count() as f64;
    assert_eq!(num(m, "listed_trips"), count, "{m}");
    assert_eq!(num(m, "listed_trips_completed"), count, "{m}");
    assert_eq!(num(m, "listed_trips_teleported"), 0.0);
    assert_eq!(m["trips_car"], b["trips_car"]);
    assert_eq!(num(m, "vehicle_trips_completed"), num(b, "vehicle_trips_completed") + count);
    assert!(num(m, "vehicle_km_driven") > num(b, "vehicle_km_driven"));
}

#[test]
fn drivers_who_re_plan_on_travel_times_relieve_the_jams_of_a_closed_valley_road() {
    let dir = tempfile::tempdir().unwrap();
    let closed = run("andorra/closure.toml", "2", &dir.path().join("closed"));
    let (a, b) = (dir.path().join("smart2"), dir.path().join("smart1"));
    let smart = run("andorra/closure-rerouting.toml", "2", &a);
    run("andorra/closure-rerouting.toml", "1", &b);
    for f in ["kpis.json", "replay.machi"] {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        assert!(x == y, "{f} differs between 1 and 2 threads");
    }
    let (c, s) = (&closed["mobility"], &smart["mobility"]);
    // The closure makes some vehicles detour in both; only the second re-plans on travel times.
    assert!(num(c, "reroutes") > 0.0 && num(s, "reroutes") > 0.0);
    assert_eq!(num(c, "reroutes_for_travel_time"), 0.0);
    assert!(num(s, "reroutes_for_travel_time") > 0.0, "{s}");
    // Every trip is accounted for in both.
    for m in [c, s] {
        let done = num(m, "vehicle_trips_completed") + num(m, "vehicle_trips_teleported");
        assert_eq!(done + num(m, "vehicle_trips_stuck_at_end") + num(m, "vehicle_trips_not_started"), 10_071.0);
    }
    let (dc, ds) = (num(c, "total_delay_veh_h"), num(s, "total_delay_veh_h"));
    eprintln!(
        "valley road closed: delay {dc:.1} veh·h, {} teleported; with re-routing {ds:.1} veh·h, {} teleported",
        num(c, "vehicle_trips_teleported"),
        num(s, "vehicle_trips_teleported")
    );
    assert!(ds < 0.6 * dc, "re-routing should relieve the jams: {dc:.1} → {ds:.1} veh·h");
    assert!(num(s, "vehicle_trips_teleported") < num(c, "vehicle_trips_teleported"));
}
