//! Property-based robustness: random and mutated bytes fed to every importer and the scenario loader must
//! give an error or a result, never a panic.

mod common;

use machi::city::CityBuilder;
use proptest::prelude::*;
use std::path::PathBuf;

fn sample(rel: &str) -> Vec<u8> {
    std::fs::read(common::data(rel)).unwrap()
}

/// Flips, overwrites or truncates bytes of `base` as the strategy says.
fn mutate(base: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(at, byte) in edits {
        if !v.is_empty() {
            let i = at % v.len();
            v[i] = byte;
        }
    }
    if let Some(c) = cut {
        v.truncate(c % (v.len() + 1));
    }
    v
}

fn write_temp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (dir, p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn pbf_importer_never_panics(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in prop::option::of(any::<usize>())) {
        let bytes = mutate(&sample("kotka/kotka-karhula.osm.pbf"), &edits, cut);
        let (_d, p) = write_temp("m.osm.pbf", &bytes);
        let mut b = CityBuilder::new("fuzz", Default::default());
        if machi::import::osm::read_pbf(&p, &mut b).is_ok() {
            let _ = b.build();
        }
    }

    #[test]
    fn pbf_importer_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (_d, p) = write_temp("r.osm.pbf", &bytes);
        let mut b = CityBuilder::new("fuzz", Default::default());
        let _ = machi::import::osm::read_pbf(&p, &mut b);
    }

    #[test]
    fn geojson_importers_never_panic(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in prop::option::of(any::<usize>())) {
        for (rel, name) in [("andorra-la-vella/river.geojson", "r.geojson"), ("andorra-la-vella/buildings.geojson", "b.geojson")] {
            let bytes = mutate(&sample(rel), &edits, cut);
            let (_d, p) = write_temp(name, &bytes);
            let mut b = CityBuilder::new("fuzz", Default::default());
            if machi::import::geojson::read_any(&p, &mut b).is_ok() {
                let _ = b.build();
            }
            let _ = machi::import::geojson::read_streets(&p, &mut CityBuilder::new("fuzz", Default::default()));
        }
    }

    #[test]
    fn scenario_loader_never_panics(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6), cut in prop::option::of(any::<usize>()), text in ".{0,64}") {
        let base = std::fs::read(common::scenario("monaco/baseline.toml")).unwrap();
        for bytes in [mutate(&base, &edits, cut), text.into_bytes()] {
            let (_d, p) = write_temp("s.toml", &bytes);
            let _ = machi::scenario::Scenario::load(&p);
        }
    }
}
