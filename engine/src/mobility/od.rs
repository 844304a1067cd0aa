//! Origin–destination demand (`[mobility.od]`): car trips from a planner's OD matrix, for cities whose
//! traffic counts or survey tables say more than the synthetic population does.
//!
//! - **Zones**: a GeoJSON file of polygons (WGS84, RFC 7946), each with a `zone` property (a name or a
//!   number). A zone's trips start and end at the road junctions inside it.
//! - **Matrix**: a CSV file with the header `origin,destination,from,until,trips`: zone names, a departure
//!   window as clock times (`07:00`) or durations from midnight (`7h`), and the number of trips in it
//!   (a real number: the fraction is one more trip with that probability).
//! - **Draws**: each trip departs at a uniform time in its window, from a uniform junction of its origin zone
//!   to a uniform junction of its destination zone, drawn again (up to [`JUNCTION_REDRAWS`] times) while the
//!   two are the same junction or the road graph has no route between them (one-way pockets, cul-de-sacs
//!   cut off by turn rules); all from the scenario's seed and the row's index, so a run repeats exactly and
//!   a row's trips do not depend on the other rows.

use crate::city::graph::{Graph, LinkId, NodeId};
use crate::city::City;
use crate::error::{InputError, InputResult};
use crate::geo::shapes;
use crate::rng::{self, Purpose};
use glam::Vec2;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Draws of a junction pair before a trip is given up (and counted).
pub const JUNCTION_REDRAWS: usize = 16;

/// `[mobility.od]`: the zones and the matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OdSection {
    /// GeoJSON polygons with a `zone` property.
    pub zones: PathBuf,
    /// CSV `origin,destination,from,until,trips`.
    pub matrix: PathBuf,
}

/// A zone: its name and the road junctions inside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    /// The `zone` property.
    pub name: String,
    /// Junctions of the road graph inside the zone (with at least one link out and one in).
    pub nodes: Vec<NodeId>,
}

/// One row of the matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct OdRow {
    /// Index into the zones.
    pub origin: usize,
    /// Index into the zones.
    pub destination: usize,
    /// Departure window (s after midnight).
    pub from_s: f64,
    /// End of the window (s after midnight), after `from_s`.
    pub until_s: f64,
    /// Trips in the window.
    pub trips: f64,
}

/// A drawn trip: departure (s after midnight), its end junctions and its route.
#[derive(Clone, Debug, PartialEq)]
pub struct OdTrip {
    /// Departure (s after midnight).
    pub depart_s: f64,
    /// Origin junction.
    pub from: NodeId,
    /// Destination junction.
    pub to: NodeId,
    /// The route `route_of` gave.
    pub route: Vec<LinkId>,
}

/// Reads the zones and finds the junctions in each. Errors name the file and the feature.
pub fn read_zones(path: &Path, city: &City) -> InputResult<Vec<Zone>> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError::io(path, e))?;
    let collection: geojson::FeatureCollection =
        text.parse().map_err(|e| InputError::file(path, format!("not a GeoJSON FeatureCollection: {e}")))?;
    let roads = &city.roads;
    let mut zones: Vec<Zone> = Vec::new();
    for (k, feature) in collection.features.iter().enumerate() {
        let place = format!("feature {k}");
        let name = match feature.property("zone") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return Err(InputError::new(path, place, "needs a `zone` property (a name or a number)")),
        };
        use geojson::GeometryValue;
        let outer: Vec<&Vec<geojson::Position>> = match feature.geometry.as_ref().map(|g| &g.value) {
            Some(GeometryValue::Polygon { coordinates }) => coordinates.iter().take(1).collect(),
            Some(GeometryValue::MultiPolygon { coordinates }) => coordinates.iter().filter_map(|p| p.first()).collect(),
            _ => return Err(InputError::new(path, place, format!("zone {name:?} is not a polygon"))),
        };
        let mut local: Vec<Vec<Vec2>> = Vec::new();
        for points in outer {
            let bad = |m: String| InputError::new(path, &place, format!("zone {name:?}: {m}"));
            let mut pts = Vec::with_capacity(points.len());
            for (lon, lat) in crate::import::geojson::ring(points).map_err(bad)? {
                let (x, y) = city.frame.from_lon_lat(lon, lat).map_err(|e| bad(e.to_string()))?;
                pts.push(Vec2::new(x as f32, y as f32));
            }
            local.push(pts);
        }
        if zones.iter().any(|z| z.name == name) {
            return Err(InputError::new(path, place, format!("zone {name:?} appears twice")));
        }
        let nodes: Vec<NodeId> = (0..roads.nodes().len() as u32)
            .map(NodeId)
            .filter(|&n| is_junction(roads, n) && local.iter().any(|r| shapes::contains(r, roads.node(n).pos)))
            .collect();
        if nodes.is_empty() {
            return Err(InputError::new(path, place, format!("zone {name:?} contains no road junction")));
        }
        zones.push(Zone { name, nodes });
    }
    if zones.is_empty() {
        return Err(InputError::file(path, "no zones"));
    }
    Ok(zones)
}

/// Whether a trip can start and end at node `n`: a link leaves it and one reaches it.
fn is_junction(roads: &Graph, n: NodeId) -> bool {
    !roads.out_links(n).is_empty() && roads.links().iter().any(|l| l.to == n)
}

/// Reads the matrix against the zones. Errors name the file and the line.
pub fn read_matrix(path: &Path, zones: &[Zone]) -> InputResult<Vec<OdRow>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(path).map_err(|e| match e.kind() {
        csv::ErrorKind::Io(io) => InputError::file(path, io.to_string()),
        _ => InputError::file(path, e.to_string()),
    })?;
    let header = reader.headers().map_err(|e| InputError::new(path, "line 1", e.to_string()))?.clone();
    let expected = ["origin", "destination", "from", "until", "trips"];
    if header.iter().collect::<Vec<_>>() != expected {
        return Err(InputError::new(path, "line 1", format!("the header must be {}", expected.join(","))));
    }
    let zone = |name: &str, line: &str| {
        zones
            .iter()
            .position(|z| z.name == name)
            .ok_or_else(|| InputError::new(path, line, format!("zone {name:?} is not in the zones file")))
    };
    let mut rows = Vec::new();
    for (k, record) in reader.records().enumerate() {
        let line = format!("line {}", k + 2);
        let r = record.map_err(|e| InputError::new(path, &line, e.to_string()))?;
        let clock = |i: usize| {
            crate::scenario::duration_ms(&r[i])
                .map(|ms| ms as f64 / 1000.0)
                .map_err(|m| InputError::new(path, &line, format!("{}: {m}", expected[i])))
        };
        let (from_s, until_s) = (clock(2)?, clock(3)?);
        if until_s <= from_s {
            return Err(InputError::new(path, &line, "`until` must be after `from`"));
        }
        let trips: f64 = r[4]
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| InputError::new(path, &line, format!("trips {:?}: not a number of trips", &r[4])))?;
        rows.push(OdRow { origin: zone(&r[0], &line)?, destination: zone(&r[1], &line)?, from_s, until_s, trips });
    }
    Ok(rows)
}

/// The trips of every row, drawn from `seed` and routed by `route_of` (`None`: no route), ordered by
/// departure (then row, then draw). Trips that find no routable pair of distinct junctions are left out;
/// their number is returned too.
pub fn draw_trips(
    zones: &[Zone],
    rows: &[OdRow],
    seed: u64,
    mut route_of: impl FnMut(NodeId, NodeId) -> Option<Vec<LinkId>>,
) -> (Vec<OdTrip>, usize) {
    let mut trips = Vec::new();
    let mut undrawn = 0;
    for (k, row) in rows.iter().enumerate() {
        let mut rng = rng::stream(seed, Purpose::OdDemand, k as u64, 0);
        let whole = row.trips.floor();
        let count = whole as u64 + u64::from(rng.random::<f64>() < row.trips - whole);
        let (origin, destination) = (&zones[row.origin].nodes, &zones[row.destination].nodes);
        for _ in 0..count {
            let depart_s = row.from_s + rng.random::<f64>() * (row.until_s - row.from_s);
            let drawn = (0..JUNCTION_REDRAWS).find_map(|_| {
                let from = origin[rng.random_range(0..origin.len())];
                let to = destination[rng.random_range(0..destination.len())];
                if from == to {
                    return None;
                }
                route_of(from, to).map(|route| OdTrip { depart_s, from, to, route })
            });
            match drawn {
                Some(trip) => trips.push((k, trip)),
                None => undrawn += 1,
            }
        }
    }
    trips.sort_by(|a, b| a.1.depart_s.total_cmp(&b.1.depart_s).then(a.0.cmp(&b.0)));
    (trips.into_iter().map(|(_, t)| t).collect(), undrawn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Two zones splitting the test town west and east of its centre.
    fn zones_geojson(city: &City) -> String {
        let (lo, hi) = city.bounds().unwrap();
        // Off the grid's node columns, so that no junction lies on the border.
        let mid = lo.x + 0.4 * (hi.x - lo.x);
        let corner = |x: f32, y: f32| {
            let (lon, lat) = city.frame.to_lon_lat(x as f64, y as f64).unwrap();
            format!("[{lon},{lat}]")
        };
        let poly = |name: &str, x0: f32, x1: f32| {
            let ring = [(x0, lo.y - 1.0), (x1, lo.y - 1.0), (x1, hi.y + 1.0), (x0, hi.y + 1.0), (x0, lo.y - 1.0)]
                .iter()
                .map(|&(x, y)| corner(x, y))
                .collect::<Vec<_>>()
                .join(",");
            format!(
                r#"{{"type":"Feature","properties":{{"zone":"{name}"}},"geometry":{{"type":"Polygon","coordinates":[[{ring}]]}}}}"#
            )
        };
        format!(
            r#"{{"type":"FeatureCollection","features":[{},{}]}}"#,
            poly("west", lo.x - 1.0, mid),
            poly("east", mid, hi.x + 1.0)
        )
    }

    #[test]
    fn a_matrix_becomes_its_trips_in_their_windows_and_zones_repeatably() {
        let city = crate::population::tests::town();
        let dir = tempfile::tempdir().unwrap();
        let zones = read_zones(&write(dir.path(), "z.geojson", &zones_geojson(&city)), &city).unwrap();
        assert_eq!(zones.len(), 2);
        assert!(zones.iter().all(|z| !z.nodes.is_empty()));
        let matrix = "origin,destination,from,until,trips\nwest,east,07:00,08:00,40\neast,west,7h30min,09:00,12.5\n";
        let rows = read_matrix(&write(dir.path(), "od.csv", matrix), &zones).unwrap();
        assert_eq!(rows.len(), 2);
        let mut router = crate::city::routing::Router::new(&city.roads);
        let mut route_of = |a, b| router.route(a, b, crate::city::routing::Weight::TravelTime).map(|r| r.links);
        let (trips, undrawn) = draw_trips(&zones, &rows, 7, &mut route_of);
        assert_eq!(undrawn, 0);
        assert!(trips.len() == 52 || trips.len() == 53, "{}", trips.len());
        let west_east = trips.iter().filter(|t| zones[0].nodes.contains(&t.from)).count();
        assert_eq!(west_east, 40);
        for t in &trips {
            let (o, d) = if zones[0].nodes.contains(&t.from) { (0, 1) } else { (1, 0) };
            assert!(zones[o].nodes.contains(&t.from) && zones[d].nodes.contains(&t.to));
            let window = if o == 0 { 7.0 * 3600.0..8.0 * 3600.0 } else { 7.5 * 3600.0..9.0 * 3600.0 };
            assert!(window.contains(&t.depart_s), "{t:?}");
        }
        assert!(trips.windows(2).all(|w| w[0].depart_s <= w[1].depart_s));
        for t in &trips {
            let (first, last) = (city.roads.link(t.route[0]), city.roads.link(*t.route.last().unwrap()));
            assert_eq!((first.from, last.to), (t.from, t.to));
        }
        assert_eq!(draw_trips(&zones, &rows, 7, &mut route_of).0, trips, "the same seed draws the same trips");
        assert_ne!(draw_trips(&zones, &rows, 8, &mut route_of).0, trips);
        // With no routes at all, every trip is left out and counted.
        let (none, left_out) = draw_trips(&zones, &rows, 7, |_, _| None);
        assert!(none.is_empty() && left_out == trips.len());
    }

    #[test]
    fn bad_zones_and_rows_are_named_by_file_and_line() {
        let city = crate::population::tests::town();
        let dir = tempfile::tempdir().unwrap();
        let zones = read_zones(&write(dir.path(), "z.geojson", &zones_geojson(&city)), &city).unwrap();
        let header = "origin,destination,from,until,trips\n";
        for (body, place, words) in [
            ("west,north,07:00,08:00,5\n", "line 2", "zone \"north\""),
            ("west,east,08:00,07:00,5\n", "line 2", "until"),
            ("west,east,07:00,08:00,5\nwest,east,07:00,08:00,-1\n", "line 3", "trips"),
            ("west,east,7 o'clock,08:00,5\n", "line 2", "from"),
        ] {
            let e = read_matrix(&write(dir.path(), "bad.csv", &format!("{header}{body}")), &zones).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("bad.csv") && text.contains(place) && text.contains(words), "{text}");
        }
        let e = read_matrix(&write(dir.path(), "h.csv", "from,to,trips\n"), &zones).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let no_zone = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}"#;
        let e = read_zones(&write(dir.path(), "nz.geojson", no_zone), &city).unwrap_err();
        assert!(e.to_string().contains("feature 0") && e.to_string().contains("zone"), "{e}");
    }
}
