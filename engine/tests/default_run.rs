//! The default scenario runs end to end, and runs are deterministic: `--threads 1` and `--threads 2` give
//! byte-identical `kpis.json`, `timeseries.csv` and replay.

mod common;

fn run(threads: &str, out: &std::path::Path) {
    common::run_scenario("andorra/baseline.toml", threads, out);
}

#[test]
fn default_run_is_complete_plausible_and_identical_at_1_and_2_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("t1"), dir.path().join("t2"));
    run("1", &a);
    run("2", &b);
    for f in ["kpis.json", "timeseries.csv", "replay.machi"] {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        assert!(x == y, "{f} differs between 1 and 2 threads");
    }
    let kpis: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("kpis.json")).unwrap()).unwrap();
    let residents = kpis["population"]["residents"].as_f64().unwrap();
    // Andorra la Vella has about 22 000 inhabitants; the footprints cover the centre of the parish.
    assert!((5_000.0..40_000.0).contains(&residents), "{residents}");
    let m = &kpis["mobility"];
    let planned = m["trips_planned"].as_f64().unwrap();
    let done = m["trips_completed"].as_f64().unwrap();
    assert!(done > 0.9 * planned, "{m}");
    assert!(m["trips_in_progress_at_end"].as_f64().unwrap() < 0.01 * planned, "{m}");
    let mean = m["mean_trip_time_all_s"].as_f64().unwrap();
    assert!((60.0..1800.0).contains(&mean), "mean trip {mean} s");
    assert!(m["vehicle_km"].as_f64().unwrap() > 0.0);
    // The replay opens and seeks.
    let r = machi::replay::ReplayReader::open(a.join("replay.machi")).unwrap();
    let noon = r.agent_frame_at(machi::observe::replay::STREAM_PERSONS, 12 * 3_600_000).unwrap().unwrap();
    assert_eq!(noon.t_ms, 12 * 3_600_000);
    assert!(noon.agents.len() as f64 > 0.2 * residents, "most workers and students are out at noon");
    let csv = std::fs::read_to_string(a.join("timeseries.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 24 * 4 + 1, "a header, a row every 15 min and the end");
}
