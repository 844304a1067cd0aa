//! The Andorra storm floods plausibly: water collects low in the valley and along the river, not on the
//! slopes; volumes balance; gauges and GeoTIFF outputs are written and read back; and the storm gives
//! byte-identical outputs with 1 and 2 threads.

mod common;

use machi::run::{run, RunOptions};
use machi::scenario::Scenario;

/// Writes the storm window only (3 h from 14:30), on a 10 m grid to keep tests quick, into `dir`.
fn storm_window(dir: &std::path::Path) -> std::path::PathBuf {
    let base = common::scenario("andorra/storm.toml");
    let p = dir.join("storm-test.toml");
    std::fs::write(
        &p,
        format!(
            "extends = {:?}\nname = \"storm-test\"\nstart = \"14:30\"\nduration = \"3h\"\n[flood]\nresolution_m = 10.0\n",
            base.to_str().unwrap()
        ),
    )
    .unwrap();
    p
}

#[test]
fn the_storm_is_identical_with_1_and_2_threads() {
    // Separate processes, so the task pool really has 1 and 2 threads (the flood's bands and its team,
    // the traffic's pieces).
    let dir = tempfile::tempdir().unwrap();
    let p = storm_window(dir.path());
    let (a, b) = (dir.path().join("t1"), dir.path().join("t2"));
    common::run_scenario_file(&p, "1", &a);
    common::run_scenario_file(&p, "2", &b);
    for f in ["kpis.json", "timeseries.csv", "gauges.csv", "replay.machi", "max_depth.tif"] {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        assert!(x == y, "{f} differs between 1 and 2 threads");
    }
    let kpis: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("kpis.json")).unwrap()).unwrap();
    assert!(kpis["flood"]["solver_steps"].as_f64().unwrap() > 100.0, "{}", kpis["flood"]);
}

#[test]
fn andorra_storm_floods_the_valley_not_the_slopes() {
    let dir = tempfile::tempdir().unwrap();
    let p = storm_window(dir.path());
    let scenario = Scenario::load(&p).unwrap();
    let out = dir.path().join("out");
    let summary = run(&scenario, &RunOptions { out_dir: out.clone(), threads: 2, seed: None }, |_, _| {}).unwrap();
    let f = &summary.kpis["flood"];
    assert!(f["volume_balance_relative_error"].as_f64().unwrap() < 1e-6, "{f}");
    assert!(f["peak_flooded_area_m2"].as_f64().unwrap() > 10_000.0, "{f}");
    assert!(f["rain_on_ground_m3"].as_f64().unwrap() > 10_000.0, "{f}");

    // Read the max-depth raster back (user-defined transverse Mercator: give the reader a CRS to accept it).
    let raster =
        machi::import::terrain::read_geotiff(&out.join("max_depth.tif"), Some(machi::geo::Crs::Wgs84)).unwrap();
    let depths: Vec<f32> = raster.data.clone();
    // The bed under each cell, from the city terrain at the same cells.
    let city = machi::run::load_city(&scenario).unwrap();
    let terrain = city.terrain.as_ref().unwrap();
    let mut flooded = Vec::new();
    let mut all = Vec::new();
    for row in 0..raster.height {
        for col in 0..raster.width {
            let d = depths[row * raster.width + col];
            if d.is_nan() {
                continue;
            }
            let (x, y) = raster.cell_centre(col, row);
            let Some(z) = terrain.sample(glam::Vec2::new(x as f32, y as f32)) else { continue };
            let near_river = city.waterways.iter().any(|w| {
                machi::geo::shapes::distance2_to_polyline(&w.line, glam::Vec2::new(x as f32, y as f32)) < 60.0 * 60.0
            });
            all.push((z, near_river));
            if d > 0.3 {
                flooded.push((z, near_river));
            }
        }
    }
    let mean = |v: &[(f32, bool)]| v.iter().map(|p| p.0 as f64).sum::<f64>() / v.len() as f64;
    let river_share = |v: &[(f32, bool)]| v.iter().filter(|p| p.1).count() as f64 / v.len() as f64;
    eprintln!(
        "flooded cells (> 0.3 m): {} of {}; mean bed {:.1} m vs {:.1} m for all; within 60 m of the river {:.0}% vs {:.0}%",
        flooded.len(),
        all.len(),
        mean(&flooded),
        mean(&all),
        100.0 * river_share(&flooded),
        100.0 * river_share(&all)
    );
    assert!(!flooded.is_empty());
    assert!(mean(&flooded) < mean(&all) - 10.0, "water collects low in the valley");
    assert!(river_share(&flooded) > river_share(&all), "water collects along the river");

    let gauges = std::fs::read_to_string(out.join("gauges.csv")).unwrap();
    assert!(gauges.starts_with("time_s,gauge,depth_m,level_m\n"));
    let rows = gauges.lines().count() - 1;
    assert_eq!(rows, 2 * 181, "two gauges every minute for 3 hours, both ends included");
    // Depth rasters are in the replay.
    let replay = machi::replay::ReplayReader::open(out.join("replay.machi")).unwrap();
    let r = replay.raster_at(machi::observe::replay::STREAM_FLOOD_DEPTH, 3_600_000).unwrap().unwrap();
    assert_eq!(r.t_ms, 3_600_000);
    assert_eq!(r.values.len(), (r.width * r.height) as usize);
    // The ground the viewer draws: the city's terrain grid, value for value.
    let ground = replay.static_raster(machi::observe::replay::STREAM_TERRAIN).unwrap().unwrap();
    assert_eq!((ground.width as usize, ground.height as usize), (terrain.width, terrain.height));
    assert_eq!(
        (ground.origin_x_m, ground.origin_y_m, ground.cell_m),
        (terrain.origin.x, terrain.origin.y, terrain.cell_m)
    );
    assert!(ground.values.iter().zip(&terrain.elevation_m).all(|(a, b)| a.to_bits() == b.to_bits()));
    // Closed links: none at the start; the roads the flood closed at some time appear in the stream.
    let closures = machi::observe::replay::STREAM_CLOSURES;
    let (t0, first) = replay.custom_at(closures, 0).unwrap().unwrap();
    assert_eq!((t0, machi::observe::replay::decode_closures(&first).unwrap()), (0, (vec![], vec![])));
    let mut ever_closed = std::collections::BTreeSet::new();
    for t in (0..=3 * 3_600_000).step_by(60_000) {
        let (_, payload) = replay.custom_at(closures, t).unwrap().unwrap();
        ever_closed.extend(machi::observe::replay::decode_closures(&payload).unwrap().0);
    }
    let closed_km: f64 =
        ever_closed.iter().map(|&l| city.roads.links()[l as usize].length_m as f64).sum::<f64>() / 1000.0;
    let kpi = f["road_km_closed_at_some_time"].as_f64().unwrap();
    assert!(kpi > 0.0, "the storm closes some road");
    assert!((closed_km - kpi).abs() < 1e-6 * kpi.max(1.0), "replay {closed_km} km vs KPI {kpi} km");
}

/// Runs `storm.toml` for a short window on a 10 m grid with `extra` TOML appended; returns the flood KPIs.
fn short_storm(dir: &std::path::Path, name: &str, duration: &str, extra: &str) -> serde_json::Value {
    let base = common::scenario("andorra/storm.toml");
    let p = dir.join(format!("{name}.toml"));
    let text = format!(
        "extends = {:?}\nname = {name:?}\nstart = \"15:00\"\nduration = {duration:?}\n{extra}",
        base.to_str().unwrap()
    );
    std::fs::write(&p, text).unwrap();
    let scenario = Scenario::load(&p).unwrap();
    let out = dir.join(name);
    let summary = run(&scenario, &RunOptions { out_dir: out, threads: 2, seed: None }, |_, _| {}).unwrap();
    summary.kpis["flood"].clone()
}

#[test]
fn zoned_rain_falls_only_in_its_zone() {
    let dir = tempfile::tempdir().unwrap();
    let rain = |zone: &str| {
        format!("[flood]\nresolution_m = 10.0\n[[flood.rain]]\nstart = \"15:00\"\ninterval = \"30min\"\nmm_per_h = [40.0]\n{zone}")
    };
    let everywhere = short_storm(dir.path(), "rain-everywhere", "30min", &rain(""));
    // The western half of the town (x < 0 in the local frame), as a polygon well beyond the grid's edges.
    let west = short_storm(
        dir.path(),
        "rain-west",
        "30min",
        &rain("zone = [[-5000.0, -5000.0], [0.0, -5000.0], [0.0, 5000.0], [-5000.0, 5000.0]]"),
    );
    let ground = |k: &serde_json::Value| k["rain_on_ground_m3"].as_f64().unwrap();
    let roofs = |k: &serde_json::Value| k["rain_on_roofs_m3"].as_f64().unwrap();
    let share = ground(&west) / ground(&everywhere);
    eprintln!(
        "zoned rain: {:.0} m³ on the western half vs {:.0} m³ everywhere ({share:.2})",
        ground(&west),
        ground(&everywhere)
    );
    assert!(share > 0.2 && share < 0.8, "a part, not all nor nothing: {share}");
    assert!(roofs(&west) < roofs(&everywhere) && roofs(&west) > 0.0);
    assert!(west["volume_balance_relative_error"].as_f64().unwrap() < 1e-6);
}

#[test]
fn an_initial_depth_raster_puts_water_on_the_grid_and_a_depth_in_millimetres_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A 1 m deep pool, 200 m square, centred on the city origin, as a WGS84 ESRI ASCII grid.
    let scenario = Scenario::load(&common::scenario("andorra/storm.toml")).unwrap();
    let city = machi::run::load_city(&scenario).unwrap();
    let (lon, lat) = city.frame.origin_lon_lat();
    let (dlon, dlat) = (100.0 / (111_320.0 * lat.to_radians().cos()), 100.0 / 110_540.0);
    let write = |name: &str, value: f64| {
        let n = 20;
        let mut text = format!(
            "ncols {n}\nnrows {n}\nxllcorner {}\nyllcorner {}\ncellsize {}\nNODATA_value -9999\n",
            lon - dlon,
            lat - dlat,
            2.0 * dlat / n as f64
        );
        for _ in 0..n {
            text += &vec![format!("{value}"); n].join(" ");
            text += "\n";
        }
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let pool = write("pool.asc", 1.0);
    let extra = |path: &std::path::Path| {
        format!(
            "[flood]\nresolution_m = 10.0\nrain = []\ninitial_depth = {:?}\ninitial_depth_crs = \"WGS84\"\n",
            path.to_str().unwrap()
        )
    };
    let k = short_storm(dir.path(), "pool", "1min", &extra(&pool));
    let water = k["stored_at_end_m3"].as_f64().unwrap()
        + k["outflow_m3"].as_f64().unwrap()
        + k["infiltrated_and_drained_m3"].as_f64().unwrap();
    eprintln!("initial depth raster: {water:.0} m³ of water from a 1 m pool about 200 m × 150 m (open cells only)");
    assert!(water > 10_000.0 && water < 40_000.0, "{k}");
    assert_eq!(k["rain_on_ground_m3"].as_f64().unwrap(), 0.0);

    // The same pool written in millimetres: refused, naming the file.
    let mm = write("pool-mm.asc", 1000.0);
    let p = dir.path().join("pool-mm.toml");
    let base = common::scenario("andorra/storm.toml");
    std::fs::write(&p, format!("extends = {:?}\nname = \"pool-mm\"\n{}", base.to_str().unwrap(), extra(&mm))).unwrap();
    let scenario = Scenario::load(&p).unwrap();
    let err = run(&scenario, &RunOptions { out_dir: dir.path().join("mm"), threads: 1, seed: None }, |_, _| {})
        .expect_err("a depth of 1000 m is refused");
    let msg = err.to_string();
    assert!(msg.contains("pool-mm.asc") && msg.contains("not a depth in metres"), "{msg}");
}
