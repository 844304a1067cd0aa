//! Scheduled buses from a real GTFS feed, end to end through `machi run`: Cairns's weekday timetable
//! (data/gtfs/cairns-gtfs.zip) on the bus network its shapes make.
//! - in the queue model: every scheduled trip is mapped onto the roads, runs and arrives, none teleported;
//!   every stop it can reach is made; the buses keep their timetable (most departures on time); the run is
//!   byte-identical at 1 and 2 threads; buses are in the replay as their own agent kind;
//! - in the microscopic model: the same trips arrive, later on average than in the queue model (buses
//!   brake into and pull out of every stop);
//! - Monaco's OpenStreetMap bus routes on a headway timetable carry the persons without a car: most board
//!   and arrive, few give up waiting, byte-identical at 1 and 2 threads, and they are in the replay.

mod common;

use std::path::Path;

fn run(scenario: &Path, threads: &str, out: &Path) -> serde_json::Value {
    common::run_scenario(scenario.to_str().unwrap(), threads, out);
    serde_json::from_slice(&std::fs::read(out.join("kpis.json")).unwrap()).unwrap()
}

/// Runs a scenario at 2 threads into `two` and at 1 into `one`, checks the outputs are byte-identical, and
/// returns the KPIs.
fn run_at_one_and_two_threads(scenario: &Path, two: &Path, one: &Path) -> serde_json::Value {
    let kpis = run(scenario, "2", two);
    run(scenario, "1", one);
    for f in ["kpis.json", "timeseries.csv", "replay.machi"] {
        let (x, y) = (std::fs::read(two.join(f)).unwrap(), std::fs::read(one.join(f)).unwrap());
        assert!(x == y, "{f} differs between 1 and 2 threads");
    }
    kpis
}

fn num(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k}: {v}"))
}

#[test]
fn the_cairns_weekday_buses_keep_their_timetable_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("two");
    let kpis = run_at_one_and_two_threads(&common::scenario("cairns/buses.toml"), &a, &dir.path().join("one"));
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

#[test]
fn monaco_persons_without_a_car_ride_its_osm_bus_routes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("two");
    let kpis = run_at_one_and_two_threads(&common::scenario("monaco/buses.toml"), &a, &dir.path().join("one"));
    let m = &kpis["mobility"];
    // The routes mapped in OSM, each every 15 min from 06:00 to 21:00: most are matched onto the roads
    // (some regional routes only graze the extract) and complete their runs.
    let (scheduled, run_) = (num(m, "bus_trips_scheduled"), num(m, "bus_trips_run"));
    assert!(scheduled > 1000.0 && run_ > 0.9 * scheduled, "{m}");
    assert!(num(m, "bus_trips_teleported") < 0.05 * run_, "{m}");
    assert_eq!(num(m, "bus_stops_without_road"), 0.0);
    // Passengers: thousands of trips by bus; nearly all board and arrive; a full bus is rare.
    let journeys = num(m, "bus_journeys_started");
    let (boarded, gave_up) = (num(m, "bus_boardings"), num(m, "bus_passengers_gave_up"));
    eprintln!(
        "{journeys} journeys, {boarded} boardings, {gave_up} gave up, mean wait {:.0} s, mean load {:.2}, \
         mean trip by bus {:.0} s",
        num(m, "bus_mean_wait_s"),
        num(m, "bus_mean_load"),
        num(m, "mean_trip_time_bus_s")
    );
    assert!(journeys > 2000.0, "{m}");
    assert!(boarded > 0.9 * journeys && gave_up < 0.1 * journeys, "{m}");
    // Every journey ends by bus, or on foot after giving up, or is still under way (or its last walk ends
    // after the day).
    let (trips_bus, under_way) = (num(m, "trips_bus"), num(m, "bus_passengers_under_way_at_end"));
    let accounted = trips_bus + gave_up + under_way;
    assert!(accounted <= journeys && accounted > 0.99 * journeys, "{m}");
    assert_eq!(trips_bus, boarded, "everyone who boarded got off: {m}");
    // Waits of minutes on a 15 min headway; trips of a quarter of an hour or so across a 2 km city.
    assert!((30.0..900.0).contains(&num(m, "bus_mean_wait_s")), "{m}");
    assert!((300.0..3600.0).contains(&num(m, "mean_trip_time_bus_s")), "{m}");
    assert!(num(m, "bus_mean_load") > 0.3 && num(m, "bus_passenger_km_ridden") > 1000.0, "{m}");
    // Persons without a car whom no bus serves sooner walk.
    assert!(num(m, "carless_trips_walked") > 0.0, "{m}");
    // Persons by bus are in the replay's persons stream at 08:30.
    use machi::observe::replay::{STATE_BY_BUS, STREAM_PERSONS};
    let r = machi::replay::ReplayReader::open(a.join("replay.machi")).unwrap();
    let frame = r.agent_frame_at(STREAM_PERSONS, 8 * 3600 * 1000 + 1_800_000).unwrap().unwrap();
    assert!(frame.agents.iter().any(|x| x.state == STATE_BY_BUS), "nobody by bus at 08:30");
}
