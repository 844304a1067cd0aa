//! Scheduled buses from a real GTFS feed, end to end through `machi run`: Cairns's weekday timetable
//! (data/gtfs/cairns-gtfs.zip) on the bus network its shapes make.
//! - in the queue model: every scheduled trip is mapped onto the roads, runs and arrives, none teleported;
//!   every stop it can reach is made; the buses keep their timetable (most departures on time); the run is
//!   byte-identical at 1 and 2 threads; buses are in the replay as their own agent kind;
//! - in the microscopic model: the same trips arrive, later on average than in the queue model (buses
//!   brake into and pull out of every stop).

mod common;

use std::path::Path;

fn run(scenario: &Path, threads: &str, out: &Path) -> serde_json::Value {
    common::run_scenario(scenario.to_str().unwrap(), threads, out);
    serde_json::from_slice(&std::fs::read(out.join("kpis.json")).unwrap()).unwrap()
}

fn num(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k}: {v}"))
}

#[test]
fn the_cairns_weekday_buses_keep_their_timetable_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = common::scenario("cairns/buses.toml");
    let (a, b) = (dir.path().join("two"), dir.path().join("one"));
    let kpis = run(&scenario, "2", &a);
    run(&scenario, "1", &b);
    for f in ["kpis.json", "timeseries.csv", "replay.machi"] {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        assert!(x == y, "{f} differs between 1 and 2 threads");
    }
    let m = &kpis["mobility"];
    // calendar.txt: 622 trips of the weekday service run on Tuesday 2014-06-10.
    assert_eq!(num(m, "bus_trips_scheduled"), 622.0, "{m}");
    assert_eq!(num(m, "bus_trips_not_mapped"), 0.0);
    assert_eq!(num(m, "bus_trips_run"), 622.0);
    assert_eq!(num(m, "bus_trips_completed"), 622.0, "{m}");
    assert_eq!(num(m, "bus_trips_teleported"), 0.0);
    assert_eq!(num(m, "bus_stops_skipped"), 0.0);
    // The day has 17 091 stop calls. One stop of the feed lies beyond reach of every shape; a call on the
    // same road link as the one before merges into it (a few per cent); every other call is made.
    assert!(num(m, "bus_stops_without_road") <= 1.0, "{m}");
    let (made, merged) = (num(m, "bus_stops_made"), num(m, "bus_stop_calls_merged"));
    assert!(merged < 0.05 * 17_091.0 && made + merged > 0.99 * 17_091.0, "{m}");
    let (mean, on_time) = (num(m, "bus_mean_delay_s"), num(m, "bus_on_time_share"));
    eprintln!("queue model: mean delay {mean:.1} s, on time {:.1} %", on_time * 100.0);
    // Holding at timepoints keeps buses from running early; 50 km/h streets cost some lateness.
    assert!((0.0..180.0).contains(&mean), "{m}");
    assert!(on_time > 0.9, "{m}");
    // 22 routes from the city to the northern beaches and southern suburbs: some 20 km a run.
    let km_per_run = num(m, "bus_km_driven") / 622.0;
    assert!((10.0..40.0).contains(&km_per_run), "{km_per_run} km a run");
    // Buses are in the replay at 08:00, as buses.
    use machi::observe::replay::{AGENT_KIND_BUS, STREAM_VEHICLES};
    let r = machi::replay::ReplayReader::open(a.join("replay.machi")).unwrap();
    let frame = r.agent_frame_at(STREAM_VEHICLES, 8 * 3600 * 1000).unwrap().unwrap();
    let buses = frame.agents.iter().filter(|x| x.kind == AGENT_KIND_BUS).count();
    assert!(buses > 10 && buses == frame.agents.len(), "{buses} buses of {} vehicles", frame.agents.len());
}

#[test]
fn the_cairns_buses_run_in_the_microscopic_model_too() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::scenario("cairns/buses.toml")).unwrap();
    let micro = dir.path().join("micro.toml");
    let feed = common::data("gtfs/cairns-gtfs.zip");
    let text = text
        .replace("model = \"meso\"", "model = \"micro\"")
        .replace("\"../../data/gtfs/cairns-gtfs.zip\"", &format!("{:?}", feed.to_str().unwrap()));
    std::fs::write(&micro, text).unwrap();
    let m = &run(&micro, "2", &dir.path().join("micro"))["mobility"];
    let q = &run(&common::scenario("cairns/buses.toml"), "2", &dir.path().join("meso"))["mobility"];
    assert_eq!(num(m, "bus_trips_completed"), 622.0, "{m}");
    assert_eq!(num(m, "bus_trips_teleported"), 0.0);
    assert_eq!(m["bus_stops_made"], q["bus_stops_made"]);
    let (dm, dq) = (num(m, "bus_mean_delay_s"), num(q, "bus_mean_delay_s"));
    eprintln!("mean delay at stops: {dm:.1} s microscopic, {dq:.1} s queue model");
    assert!(dm > dq, "accelerating and braking at stops costs time: {dm} vs {dq}");
    assert!(num(m, "bus_on_time_share") > 0.85, "{m}");
}
