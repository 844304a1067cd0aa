//! Import counts for the shipped cities, checked against independently known figures:
//! Monaco's PBF holds 1283 building areas and 2852 highway ways (counted by osmium/quackosm, see
//! data/ATTRIBUTION.md's sources); Kotka's holds 2171 buildings (pyrosm's test data); Andorra's GeoJSON has
//! 731 footprints, 198 with a height, and 1694 street segments.

mod common;

use common::data;
use machi::import::load_files;

#[test]
fn monaco_imports_every_building_and_a_connected_road_network() {
    let city = load_files("Monaco", &[&data("monaco/monaco.osm.pbf")], None, None).unwrap();
    let r = &city.report;
    assert_eq!(r.buildings, 1283, "{r:#?}");
    assert_eq!(r.buildings_with_height + r.buildings_with_levels + r.buildings_with_default_height, 1283);
    assert!(r.buildings_with_levels + r.buildings_with_height >= 462, "{r:#?}");
    assert_eq!(r.bus_stops, 76, "{r:#?}");
    assert!(r.road_km > 50.0 && r.road_km < 200.0, "road km {}", r.road_km);
    assert!(r.footpath_km > 30.0, "footpath km {}", r.footpath_km);
    assert!(r.signals > 0 && r.junctions > 100, "{r:#?}");
    // Every road link has positive length and speed, geometry from its from-node to its to-node.
    for l in city.roads.links() {
        assert!(l.length_m > 0.0 && l.speed_mps > 0.0 && l.lanes >= 1);
        assert_eq!(*l.geometry.first().unwrap(), city.roads.node(l.from).pos);
        assert_eq!(*l.geometry.last().unwrap(), city.roads.node(l.to).pos);
    }
    // Monaco is about 2 km²: the local frame puts everything within a few km of the origin.
    let (lo, hi) = city.bounds().unwrap();
    assert!(lo.x > -3000.0 && hi.x < 3000.0 && lo.y > -3000.0 && hi.y < 3000.0);
}

#[test]
fn monaco_highway_ways_are_all_accounted_for() {
    // 2852 highway ways: each is imported as road and/or footpath, or dropped with a reason.
    let mut builder = machi::city::CityBuilder::new("Monaco", Default::default());
    machi::import::osm::read_pbf(&data("monaco/monaco.osm.pbf"), &mut builder).unwrap();
    let dropped_highways: usize =
        builder.report.dropped.iter().filter(|(k, _)| k.starts_with("highway")).map(|(_, v)| v).sum();
    assert_eq!(builder.ways.len() + dropped_highways, 2852, "{:#?}", builder.report.dropped);
}

#[test]
fn kotka_imports_its_buildings() {
    let city = load_files("Kotka", &[&data("kotka/kotka-karhula.osm.pbf")], None, None).unwrap();
    assert_eq!(city.report.buildings, 2171, "{:#?}", city.report);
    assert!(city.report.road_km > 10.0);
}

fn street_drops(r: &machi::city::ImportReport) -> usize {
    r.dropped.iter().filter(|(k, _)| k.starts_with("street")).map(|(_, v)| v).sum()
}

#[test]
fn andorra_geojson_and_terrain() {
    let files = [
        data("andorra-la-vella/buildings.geojson"),
        data("andorra-la-vella/streets.geojson"),
        data("andorra-la-vella/river.geojson"),
        data("andorra-la-vella/elevation.tif"),
    ];
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let city = load_files("Andorra la Vella", &refs, None, Some(5.0)).unwrap();
    let r = &city.report;
    // 731 footprints, of which 5 are under 1 m² (pillars, kiosks drawn as polygons) and dropped as such.
    assert_eq!(r.buildings, 726, "{r:#?}");
    assert_eq!(r.dropped.values().sum::<usize>() - street_drops(r), 5, "{r:#?}");
    assert_eq!(r.buildings_with_height, 198, "{r:#?}");
    assert!(r.waterways > 0 && r.waterway_km > 1.0, "{r:#?}");
    let terrain = city.terrain.as_ref().expect("terrain imported");
    assert_eq!(terrain.cell_m, 5.0);
    // The valley floor of Andorra la Vella is at about 1000–1100 m; the DEM spans slopes above it.
    let z = terrain.sample(city.buildings[0].centroid).expect("buildings lie on the terrain");
    assert!((950.0..1300.0).contains(&z), "elevation {z}");
    // Streets: 1694 segments, of which some footways only; the road graph is substantial.
    assert!(r.road_km > 20.0 && r.footpath_km > 20.0, "{r:#?}");
}
