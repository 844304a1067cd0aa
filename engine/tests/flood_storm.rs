//! The Andorra storm floods plausibly: water collects low in the valley and along the river, not on the
//! slopes; volumes balance; gauges and GeoTIFF outputs are written and read back.

mod common;

use machi::run::{run, RunOptions};
use machi::scenario::Scenario;

#[test]
fn andorra_storm_floods_the_valley_not_the_slopes() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::scenario("andorra/storm.toml");
    // The storm window only, on a 10 m grid, to keep the test quick.
    let p = dir.path().join("storm-test.toml");
    std::fs::write(
        &p,
        format!(
            "extends = {:?}\nname = \"storm-test\"\nstart = \"14:30\"\nduration = \"3h\"\n[flood]\nresolution_m = 10.0\n",
            base.to_str().unwrap()
        ),
    )
    .unwrap();
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
}
