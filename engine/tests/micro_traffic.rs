//! The microscopic model as a scenario's mobility domain, end to end through `machi run`:
//! - SUMO's grid network and demand (`[city] sumo_net`, `[mobility] sumo_routes`): every vehicle arrives,
//!   the mean trip time is within 10 % of SUMO's on the same files, and the run is byte-identical at 1 and 2
//!   threads;
//! - Andorra la Vella's weekday with `[mobility] model = "micro"`: every car trip of the population drives
//!   through the day's traffic and arrives, at least as slow as at free flow; identical at 1 and 2 threads.

mod common;

use std::path::Path;

fn run(scenario: &str, threads: &str, out: &Path) -> serde_json::Value {
    common::run_scenario(scenario, threads, out);
    serde_json::from_slice(&std::fs::read(out.join("kpis.json")).unwrap()).unwrap()
}

#[test]
fn sumo_demand_on_a_sumo_network_runs_like_sumo_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("t1"), dir.path().join("t2"));
    let kpis = run("sumo-grid/grid-hour.toml", "1", &a);
    run("sumo-grid/grid-hour.toml", "2", &b);
    for f in ["kpis.json", "timeseries.csv", "replay.machi"] {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        assert!(x == y, "{f} differs between 1 and 2 threads");
    }
    let m = &kpis["mobility"];
    assert_eq!(m["vehicle_trips_completed"].as_f64(), Some(3600.0), "{m}");
    assert_eq!(m["vehicle_trips_teleported"].as_f64(), Some(0.0));
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::data("mobility/sumo-grid/reference.json")).unwrap())
            .unwrap();
    // SUMO's duration counts from insertion; every vehicle here is inserted when due (no insertion delay
    // in either tool on this demand), so the mean trip time compares directly.
    let ratio = m["mean_vehicle_trip_time_s"].as_f64().unwrap() / reference["mean_duration_s"].as_f64().unwrap();
    assert!((ratio - 1.0).abs() <= 0.10, "{ratio}");
    assert!(m["co2_t"].as_f64().unwrap() > 0.0 && m["total_delay_veh_h"].as_f64().unwrap() > 0.0);
    // Vehicle positions every second in the replay, on the network, as many as the time series counts.
    use machi::observe::replay::STREAM_VEHICLES;
    let r = machi::replay::ReplayReader::open(a.join("replay.machi")).unwrap();
    let csv = std::fs::read_to_string(a.join("timeseries.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "vehicles_on_network").unwrap();
    for t_s in [600u64, 1800, 1801, 2700] {
        let frame = r.agent_frame_at(STREAM_VEHICLES, t_s * 1000).unwrap().unwrap();
        assert_eq!(frame.t_ms, t_s * 1000, "a frame every second");
        assert!(frame.agents.len() > 50, "vehicles on the road at {t_s} s");
        for a in &frame.agents {
            assert!(a.kind == 1 && (-20.0..1820.0).contains(&a.x_m) && (-20.0..1820.0).contains(&a.y_m), "{a:?}");
        }
        if let Some(row) = csv.lines().find(|l| l.starts_with(&format!("{},", t_s))) {
            let counted: f64 = row.split(',').nth(column).unwrap().parse().unwrap();
            assert_eq!(counted as usize, frame.agents.len(), "at {t_s} s");
        }
    }
}

#[test]
fn the_andorra_day_drives_every_car_trip() {
    let dir = tempfile::tempdir().unwrap();
    let micro = run("andorra/micro-traffic.toml", "2", &dir.path().join("micro"));
    run("andorra/micro-traffic.toml", "1", &dir.path().join("micro1"));
    for f in ["kpis.json", "timeseries.csv", "replay.machi"] {
        let x = std::fs::read(dir.path().join("micro").join(f)).unwrap();
        let y = std::fs::read(dir.path().join("micro1").join(f)).unwrap();
        assert!(x == y, "{f} differs between 1 and 2 threads");
    }
    let free = run("andorra/baseline.toml", "2", &dir.path().join("free"));
    let (m, f) = (&micro["mobility"], &free["mobility"]);
    // The same persons make the same trips; every car trip is driven and arrives.
    assert_eq!(m["trips_car"], f["trips_car"]);
    let cars = m["trips_car"].as_f64().unwrap();
    assert!(cars > 1000.0, "{m}");
    assert_eq!(m["vehicle_trips_completed"].as_f64(), Some(cars), "{m}");
    assert_eq!(m["vehicle_trips_teleported"].as_f64(), Some(0.0));
    assert_eq!(m["vehicle_trips_stuck_at_end"].as_f64(), Some(0.0));
    // Driving in traffic, through signals and junctions, is slower than free flow — but a small town's
    // traffic is light.
    let (tm, tf) = (m["mean_trip_time_car_s"].as_f64().unwrap(), f["mean_trip_time_car_s"].as_f64().unwrap());
    eprintln!("mean car trip: {tm:.1} s driven, {tf:.1} s at free flow");
    assert!(tm > tf && tm < 1.5 * tf, "{tm} vs {tf}");
    assert!(m["total_delay_veh_h"].as_f64().unwrap() > 0.0);
}

#[test]
fn flooded_streets_close_to_traffic_and_every_car_trip_is_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let kpis = run("andorra/river-flood-traffic.toml", "2", &dir.path().join("flood"));
    let (m, f) = (&kpis["mobility"], &kpis["flood"]);
    let num = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k}: {v}"));
    assert!(num(f, "road_km_closed_at_some_time") > 1.0, "{f}");
    // Streets close under vehicles and in front of them: vehicles re-route, some wait or are teleported.
    assert!(num(m, "reroutes") > 0.0 && num(m, "vehicles_caught_on_closed_links") > 0.0, "{m}");
    // Every vehicle trip started ends in exactly one count.
    let started =
        num(m, "vehicle_trips_completed") + num(m, "vehicle_trips_teleported") + num(m, "vehicle_trips_stuck_at_end");
    let driving_persons = num(m, "trips_car") + num(m, "trips_in_progress_at_end");
    assert!(started > 0.9 * driving_persons && started <= driving_persons + 1.0, "{started} vs {driving_persons}: {m}");
}

#[test]
fn a_closed_street_is_driven_around_while_closed() {
    let dir = tempfile::tempdir().unwrap();
    let open = run("sumo-grid/grid-hour.toml", "2", &dir.path().join("open"));
    let closed = run("sumo-grid/grid-hour-closure.toml", "2", &dir.path().join("closed"));
    let (o, c) = (&open["mobility"], &closed["mobility"]);
    assert_eq!(o["reroutes"].as_f64(), Some(0.0));
    assert!(c["reroutes"].as_f64().unwrap() > 0.0, "{c}");
    // Everyone still arrives; the closure changed how (on a grid a detour round a block can be as long).
    assert_eq!(c["vehicle_trips_completed"].as_f64(), Some(3600.0), "{c}");
    assert_ne!(c["mean_vehicle_trip_time_s"], o["mean_vehicle_trip_time_s"]);
}
