//! Bad input gives a clear error naming the file and the place, exit code 2, no panic and no half-written
//! output — checked through the real `machi` binary.

mod common;

use std::path::Path;
use std::process::Command;

fn machi(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_machi")).args(args).current_dir(cwd).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs a scenario that extends `parent` with `body` and asserts it is refused with exit 2, an error that
/// contains `key`, and no panic.
fn assert_refused(dir: &Path, parent: &Path, body: &str, key: &str) {
    let p = dir.join("variant.toml");
    std::fs::write(&p, format!("extends = {:?}\nname = \"variant\"\n{body}", parent.to_str().unwrap())).unwrap();
    let out = dir.join("out");
    let (code, err) = machi(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap()], dir);
    assert_eq!(code, 2, "{body}: {err}");
    assert!(err.contains(key), "{body}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn truncated_pbf_names_the_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(common::data("monaco/monaco.osm.pbf")).unwrap();
    let p = dir.path().join("cut.osm.pbf");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let (code, err) = machi(&["import", p.to_str().unwrap()], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cut.osm.pbf") && err.contains("blob"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn invalid_geojson_geometry_names_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b.geojson");
    std::fs::write(&p, r#"{"type":"FeatureCollection","features":[{"type":"Feature","id":"x1","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1]]]}}]}"#).unwrap();
    let (code, err) = machi(&["import", p.to_str().unwrap()], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("b.geojson") && err.contains("feature 0") && err.contains("x1"), "{err}");
}

#[test]
fn unsupported_tiff_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.tif");
    std::fs::write(&p, b"II*\0garbage").unwrap();
    let (code, err) = machi(&["import", p.to_str().unwrap()], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("t.tif"), "{err}");
    let (code, err) = machi(&["import", "nowhere.osm.pbf"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nowhere.osm.pbf") && err.contains("not found"), "{err}");
}

#[test]
fn unknown_scenario_key_names_the_key_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::scenario("andorra/baseline.toml");
    let p = dir.path().join("typo.toml");
    std::fs::write(
        &p,
        format!("extends = {:?}\nname = \"typo\"\n[population]\nworker_shar = 0.4\n", base.to_str().unwrap()),
    )
    .unwrap();
    let out = dir.path().join("out");
    let (code, err) = machi(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap()], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("typo.toml") && err.contains("population.worker_shar"), "{err}");
    assert!(!out.exists(), "no output folder for a scenario that failed to load");
}

#[test]
fn a_failed_run_keeps_the_previous_outputs_whole() {
    // A scenario whose terrain file is corrupt fails after validation: earlier outputs stay as they were.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("kpis.json"), b"{\"previous\": true}\n").unwrap();
    std::fs::write(dir.path().join("bad.tif"), b"II*\0\x08\0\0\0").unwrap();
    let base = common::scenario("andorra/baseline.toml");
    let p = dir.path().join("s.toml");
    std::fs::write(&p, format!("extends = {:?}\nname = \"s\"\n[city]\ndem = \"bad.tif\"\n", base.to_str().unwrap()))
        .unwrap();
    let (code, err) = machi(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap()], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.tif"), "{err}");
    assert_eq!(std::fs::read(out.join("kpis.json")).unwrap(), b"{\"previous\": true}\n");
    assert!(!out.join("replay.machi").exists());
}

#[test]
fn a_gauge_outside_the_flood_grid_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::scenario("andorra/storm.toml");
    let p = dir.path().join("g.toml");
    std::fs::write(
        &p,
        format!(
            "extends = {:?}\nname = \"g\"\n[[flood.gauges]]\nname = \"far\"\nx_m = 9000.0\ny_m = 0.0\n",
            base.to_str().unwrap()
        ),
    )
    .unwrap();
    let (code, err) = machi(&["run", p.to_str().unwrap(), "--out", dir.path().join("o").to_str().unwrap()], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("g.toml") && err.contains("key flood.gauges[0]") && err.contains("outside the flood grid"),
        "{err}"
    );
}

#[test]
fn bad_network_files_name_the_place_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // A MATPOWER case with a letter in a number, a pandapower network whose line names a missing bus, an
    // unknown format: each names the file and where, exit code 2, no panic.
    let m = dir.path().join("broken.m");
    std::fs::write(
        &m,
        "mpc.baseMVA = 100;\nmpc.bus = [\n 1 3 0 0 0 0 1 1 0 20 1 1.1 0.9;\n 2 1 1O 0 0 0 1 1 0 20 1 1.1 0.9;\n];\n",
    )
    .unwrap();
    let (code, err) = machi(&["powerflow", m.to_str().unwrap()], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("broken.m") && err.contains("line 4") && err.contains("1O"), "{err}");
    let text = std::fs::read_to_string(common::data("grid/pandapower/case9.json")).unwrap();
    let j = dir.path().join("orphan.json");
    let mut bad: serde_json::Value = serde_json::from_str(&text).unwrap();
    let line = bad["_object"]["line"]["_object"].as_str().unwrap().to_string();
    let mut frame: serde_json::Value = serde_json::from_str(&line).unwrap();
    let col = frame["columns"].as_array().unwrap().iter().position(|c| c == "to_bus").unwrap();
    frame["data"][0][col] = serde_json::json!(99);
    bad["_object"]["line"]["_object"] = serde_json::Value::String(frame.to_string());
    std::fs::write(&j, bad.to_string()).unwrap();
    let (code, err) = machi(&["powerflow", j.to_str().unwrap()], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("orphan.json") && err.contains("line[0].to_bus") && err.contains("no bus 99"), "{err}");
    let x = dir.path().join("net.xml");
    std::fs::write(&x, "<net/>").unwrap();
    let (code, err) = machi(&["powerflow", x.to_str().unwrap()], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("net.xml") && err.contains("unknown network format"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_grid_keys_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::scenario("andorra/baseline.toml");
    for (body, key) in [
        ("[grid]\ndate = \"2026-02-30\"\n", "key grid.date"),
        ("[grid]\npv_share = 1.5\n", "key grid.pv_share"),
        ("[grid.battery]\ndispatch = \"arbitrage\"\n", "grid.battery.dispatch"),
        ("[grid]\ncloud_factor = [0.5, 0.6]\n", "key grid.cloud_factor"),
        ("[grid]\npv_shares = 0.1\n", "pv_shares"),
    ] {
        let p = dir.path().join("grid.toml");
        std::fs::write(&p, format!("extends = {:?}\nname = \"grid\"\n{body}", base.to_str().unwrap())).unwrap();
        let out = dir.path().join("out");
        let (code, err) = machi(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap()], dir.path());
        assert_eq!(code, 2, "{body}: {err}");
        assert!(err.contains("grid.toml") && err.contains(key), "{body}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_bad_vrp_file_names_the_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::data("vrp/random-n100-s1.vrp")).unwrap();
    let p = dir.path().join("bad.vrp");
    std::fs::write(&p, text.replace("EUC_2D", "GEO")).unwrap();
    let (code, err) = machi(&["dispatch", p.to_str().unwrap()], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.vrp") && err.contains("line 5") && err.contains("EUC_2D"), "{err}");
}

#[test]
fn bad_mobility_keys_and_sumo_files_name_the_place_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::scenario("andorra/baseline.toml");
    let sumo = common::scenario("sumo-grid/grid-hour.toml");
    let buses = common::scenario("cairns/buses.toml");
    let od = common::scenario("andorra/od-traffic.toml");
    let zones = common::scenario("andorra/od-zones.geojson").to_str().unwrap().to_string();
    let bad_matrix = dir.path().join("bad-od.csv");
    std::fs::write(
        &bad_matrix,
        "origin,destination,from,until,trips\nnorth,south,07:00,08:00,5\nnorth,airport,07:00,08:00,5\n",
    )
    .unwrap();
    let bad_listed = dir.path().join("bad-routes.csv");
    std::fs::write(&bad_listed, "id,depart,via\ncar-1,07:00,9697277856 12452948530\ncar-2,07:05,9697277856 42\n")
        .unwrap();
    let routes = common::data("mobility/sumo-grid/grid.rou.xml");
    let bad_routes = dir.path().join("bad.rou.xml");
    let text = std::fs::read_to_string(&routes).unwrap();
    std::fs::write(&bad_routes, text.replacen("depart=\"5.00\"", "depart=\"soon\"", 1)).unwrap();
    for (parent, body, key) in [
        (&base, "[mobility]\nmodel = \"macro\"\n", "mobility.model"),
        (&base, "[mobility.micro]\nstep_s = 0.0\n", "key mobility.micro.step_s"),
        (&base, "[mobility.signals]\ncycle_s = 20.0\n", "key mobility.signals.cycle_s"),
        (&base, "[mobility]\nmodel = \"meso\"\n[mobility.meso]\nstep_s = 0.0005\n", "key mobility.meso.step_s"),
        (&base, "[mobility]\nmodel = \"meso\"\n[mobility.meso.capacity]\nprimary = -1500.0\n", "key mobility.meso.capacity.primary"),
        (&base, "[mobility]\nmodel = \"meso\"\n[mobility.meso]\nlane_capacity = 1800.0\n", "lane_capacity"),
        (&base, "[mobility]\nsumo_routes = \"x.rou.xml\"\n", "key mobility.sumo_routes"),
        (&base, "[[mobility.closures]]\nstreet = \"Avinguda Meritxell\"\n", "key mobility.closures"),
        (&base, "[mobility]\nmodel = \"micro\"\n[[mobility.closures]]\nstreet = \"Nowhere Street\"\n", "key mobility.closures[0]"),
        (&base, "[mobility]\nmodel = \"micro\"\n[[mobility.closures]]\nstreet = \"Avinguda Meritxell\"\nfrom = \"10:00\"\nuntil = \"09:00\"\n", "key mobility.closures[0]"),
        (&sumo, &format!("[mobility]\nsumo_routes = {:?}\n", bad_routes.to_str().unwrap()), "bad.rou.xml: line"),
        (&base, "[mobility]\nmodel = \"meso\"\n[mobility.transit]\n", "key mobility.transit"),
        (&buses, "[mobility.transit]\ndate = \"10/06/2014\"\n", "key mobility.transit.date"),
        (&buses, "[mobility.transit]\nmin_dwell_s = -5.0\n", "key mobility.transit.min_dwell_s"),
        (&buses, "[mobility.transit]\nno_car_share = 1.5\n", "key mobility.transit.no_car_share"),
        (&buses, "[mobility.transit]\nwalk_circuity = 0.5\n", "key mobility.transit.walk_circuity"),
        (&buses, "[mobility.transit.osm_service]\nlast_departure = \"05:00\"\n", "key mobility.transit.osm_service.last_departure"),
        (&buses, "[mobility.transit.osm_service]\nheadway = 600\n", "headway"),
        (&buses, "[mobility.transit.osm_service]\nheadway_s = 1.0\n", "key mobility.transit.osm_service.headway_s"),
        (&buses, "[mobility]\nmodel = \"free_flow\"\n", "key mobility.transit"),
        (&buses, "[city.gtfs_roads]\nspeed_kmh = 0.0\n", "key city.gtfs_roads.speed_kmh"),
        (&buses, "[city]\ngtfs = \"nowhere.zip\"\n", "nowhere.zip"),
        (&od, "[mobility]\nmodel = \"free_flow\"\n", "key mobility.od"),
        (&od, "[mobility.rerouting]\nperiod_s = 0.0\n", "key mobility.rerouting.period_s"),
        (&od, "[mobility.rerouting]\nmin_saving_share = 1.5\n", "key mobility.rerouting.min_saving_share"),
        (&od, "[mobility.rerouting]\nevery = 300\n", "every"),
        (&base, "[mobility.rerouting]\n", "key mobility.rerouting"),
        (&base, "[mobility]\nroutes = \"listed-routes.csv\"\n", "key mobility.routes"),
        (&od, &format!("[mobility]\nroutes = {:?}\n", bad_listed.to_str().unwrap()), "bad-routes.csv: line 3"),
        (&od, &format!("[mobility.od]\nzones = {zones:?}\nmatrix = {:?}\n", bad_matrix.to_str().unwrap()), "bad-od.csv: line 3"),
    ] {
        assert_refused(dir.path(), parent, body, key);
    }
}

#[test]
fn bad_robot_keys_and_order_files_name_the_place_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::scenario("andorra/robots.toml");
    let orders = dir.path().join("orders.csv");
    std::fs::write(&orders, "time_s,building\n30000,1\n31000,999999\n").unwrap();
    let depot = "depots = [{ at = [0.0, 0.0], robots = 2 }]\n";
    for (body, key) in [
        ("[robots]\ndepots = []\n".to_string(), "key robots.depots"),
        ("[robots]\ndepots = [{ at = [0.0, 0.0], robots = 0 }]\n".into(), "key robots.depots[0].robots"),
        (format!("[robots]\n{depot}wheels = 6\n"), "wheels"),
        (format!("[robots]\n{depot}[robots.robot]\nbattery_wh = -5.0\n"), "key robots.robot.battery_wh"),
        (format!("[robots]\n{depot}[robots.robot]\nreserve_share = 0.6\n"), "key robots.robot.reserve_share"),
        (format!("[robots]\n{depot}step = \"2s\"\n"), "key robots.step"),
        (format!("[robots]\n{depot}dispatch_interval = \"soon\"\n"), "key robots.dispatch_interval"),
        (format!("[robots]\n{depot}pedestrian_jam_time = \"0s\"\n"), "key robots.pedestrian_jam_time"),
        (format!("[robots]\n{depot}[robots.robot]\nreplan_after_s = 0.0\n"), "key robots.robot.replan_after_s"),
        (format!("[robots]\n{depot}orders_csv = {:?}\n", orders.to_str().unwrap()), "orders.csv: line 3"),
    ] {
        assert_refused(dir.path(), &base, &body, key);
    }
}
