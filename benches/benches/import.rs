//! Import time of each shipped city: file → indexed City (targets: Monaco PBF < 0.3 s; Andorra GeoJSON +
//! terrain < 0.2 s).

use criterion::{criterion_group, criterion_main, Criterion};
use machi::scenario::Scenario;
use machi_benches::{data, scenario};
use std::hint::black_box;

fn import(c: &mut Criterion) {
    let mut g = c.benchmark_group("import");
    g.sample_size(10);
    let monaco = data("monaco/monaco.osm.pbf");
    g.bench_function("monaco_pbf_to_city", |b| {
        b.iter(|| black_box(machi::import::load_files("Monaco", &[&monaco], None, None).expect("Monaco imports")))
    });
    let kotka = data("kotka/kotka-karhula.osm.pbf");
    g.bench_function("kotka_pbf_to_city", |b| {
        b.iter(|| black_box(machi::import::load_files("Kotka", &[&kotka], None, None).expect("Kotka imports")))
    });
    let andorra = Scenario::load(&scenario("andorra/baseline.toml")).expect("the Andorra scenario loads");
    g.bench_function("andorra_geojson_terrain_to_city", |b| {
        b.iter(|| black_box(machi::run::load_city(&andorra).expect("Andorra imports")))
    });
    let raster =
        machi::import::terrain::read_geotiff(&data("andorra-la-vella/elevation.tif"), None).expect("the DEM reads");
    let frame = machi::geo::LocalFrame::new(1.52, 42.507);
    for cell_m in [5.0f32, 2.0] {
        g.bench_function(format!("andorra_dem_resample_{cell_m}m"), |b| {
            b.iter(|| {
                black_box(machi::import::terrain::resample_to_local(&raster, &frame, cell_m, None).expect("resamples"))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, import);
criterion_main!(benches);
