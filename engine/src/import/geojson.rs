//! GeoJSON (RFC 7946) importer: building footprints, street centre lines with OSM-style properties, and
//! watercourses, all in WGS84 longitude/latitude, parsed by the `geojson` crate.
//!
//! Buildings: `Polygon`/`MultiPolygon` features; `height` (m) and `num_floors` (or OSM's `building:levels`),
//! use from `class`/`building`/`amenity`/`shop`; `is_underground = true` features are skipped.
//! Streets: `LineString`/`MultiLineString` features with OSM tags as properties (`highway` may be a list, as
//! OSMnx writes merged ways: the most important class is taken); `u`/`v` give the OSM node ids of the ends,
//! else ends are joined by coordinate (to 1e-7°). Waterways: line features, kind from `waterway`.
//! Invalid geometry (coordinates out of range, rings not closed, too few points) is an error naming the
//! feature; footprints that are merely degenerate are dropped and counted.

use super::osm::interpret_way;
use super::tags::{self, BuildingUse};
use crate::city::{CityBuilder, RawBuilding, RawWaterway};

/// A polygon as (outer ring, inner rings), (lon°, lat°).
type Rings = (Vec<(f64, f64)>, Vec<Vec<(f64, f64)>>);
use crate::error::{read_file, InputError, InputResult};
use geojson::{Feature, FeatureCollection, GeometryValue, JsonValue, Position};
use std::path::Path;

fn load(path: &Path) -> InputResult<FeatureCollection> {
    let bytes = read_file(path)?;
    serde_json::from_slice::<FeatureCollection>(&bytes).map_err(|e| {
        InputError::new(
            path,
            format!("line {}, column {}", e.line(), e.column()),
            format!("not a GeoJSON FeatureCollection: {e}"),
        )
    })
}

/// A property as text: strings as they are, numbers and booleans printed, lists by their first element.
fn prop(f: &Feature, key: &str) -> Option<String> {
    fn text(v: &JsonValue) -> Option<String> {
        match v {
            JsonValue::String(s) => Some(s.clone()),
            JsonValue::Number(n) => Some(n.to_string()),
            JsonValue::Bool(b) => Some(if *b { "yes".into() } else { "no".into() }),
            JsonValue::Array(a) => a.first().and_then(text),
            _ => None,
        }
    }
    f.properties.as_ref()?.get(key).and_then(text)
}

/// All values of a property that may be a list.
fn prop_list(f: &Feature, key: &str) -> Vec<String> {
    match f.properties.as_ref().and_then(|p| p.get(key)) {
        Some(JsonValue::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(JsonValue::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn feature_place(index: usize, f: &Feature) -> String {
    let id = f.id.as_ref().map(|id| match id {
        geojson::feature::Id::String(s) => s.clone(),
        geojson::feature::Id::Number(n) => n.to_string(),
    });
    match id.or_else(|| prop(f, "id")).or_else(|| prop(f, "osmid")) {
        Some(id) => format!("feature {index} (id {id:?})"),
        None => format!("feature {index}"),
    }
}

fn lon_lat(p: &Position) -> Result<(f64, f64), String> {
    let s = p.as_slice();
    if s.len() < 2 {
        return Err("a position with fewer than 2 coordinates".into());
    }
    let (lon, lat) = (s[0], s[1]);
    if !(lon.is_finite() && lat.is_finite() && (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)) {
        return Err(format!("coordinate ({lon}, {lat}) is not a WGS84 longitude/latitude (RFC 7946 requires them)"));
    }
    Ok((lon, lat))
}

fn line(points: &[Position]) -> Result<Vec<(f64, f64)>, String> {
    if points.len() < 2 {
        return Err(format!("a line with {} position(s); at least 2 are needed", points.len()));
    }
    points.iter().map(lon_lat).collect()
}

/// The positions of a closed polygon ring as (lon°, lat°), checked (RFC 7946).
pub(crate) fn ring(points: &[Position]) -> Result<Vec<(f64, f64)>, String> {
    let r = line(points)?;
    if r.len() < 4 || r.first() != r.last() {
        return Err("a polygon ring that is not closed or has fewer than 4 positions (RFC 7946 §3.1.6)".into());
    }
    Ok(r)
}

/// Reads building footprints into `builder`.
pub fn read_buildings(path: &Path, builder: &mut CityBuilder) -> InputResult<()> {
    let fc = load(path)?;
    for (i, f) in fc.features.iter().enumerate() {
        building(path, i, f, builder)?;
    }
    Ok(())
}

/// Reads any mix of features: polygons are buildings, lines with `highway` are streets, other lines are
/// waterways (points are ignored and counted as dropped).
pub fn read_any(path: &Path, builder: &mut CityBuilder) -> InputResult<()> {
    let fc = load(path)?;
    let mut interior_id = i64::MIN;
    for (i, f) in fc.features.iter().enumerate() {
        match f.geometry.as_ref().map(|g| &g.value) {
            Some(GeometryValue::Polygon { .. } | GeometryValue::MultiPolygon { .. }) => building(path, i, f, builder)?,
            Some(GeometryValue::LineString { .. } | GeometryValue::MultiLineString { .. }) => {
                if prop(f, "highway").is_some() {
                    street(path, i, f, builder, &mut interior_id)?
                } else {
                    waterway(path, i, f, builder)?
                }
            }
            _ => builder.report.drop("GeoJSON feature that is neither a polygon nor a line"),
        }
    }
    Ok(())
}

fn building(path: &Path, i: usize, f: &Feature, builder: &mut CityBuilder) -> InputResult<()> {
    {
        let err = |m: String| InputError::new(path, feature_place(i, f), m);
        if prop(f, "is_underground").as_deref() == Some("yes") {
            builder.report.drop("underground building");
            return Ok(());
        }
        let polygons: Vec<&Vec<Vec<Position>>> = match f.geometry.as_ref().map(|g| &g.value) {
            Some(GeometryValue::Polygon { coordinates }) => vec![coordinates],
            Some(GeometryValue::MultiPolygon { coordinates }) => coordinates.iter().collect(),
            Some(_) => return Err(err("a building must be a Polygon or MultiPolygon".into())),
            None => {
                builder.report.drop("building feature without geometry");
                return Ok(());
            }
        };
        // One building per feature: the polygon with the largest outer ring.
        let mut best: Option<Rings> = None;
        for poly in polygons {
            let Some(outer) = poly.first() else { return Err(err("a polygon without rings".into())) };
            let outer = ring(outer).map_err(&err)?;
            let inner = poly[1..].iter().map(|r| ring(r)).collect::<Result<Vec<_>, _>>().map_err(&err)?;
            if best.as_ref().is_none_or(|(b, _)| span(&outer) > span(b)) {
                best = Some((outer, inner));
            }
        }
        let Some((outer, inner)) = best else {
            builder.report.drop("building with an empty MultiPolygon");
            return Ok(());
        };
        let number = |k: &str| prop(f, k).and_then(|v| v.parse::<f32>().ok()).filter(|v| v.is_finite() && *v > 0.0);
        let class = prop(f, "class").or_else(|| prop(f, "building"));
        builder.buildings.push(RawBuilding {
            source_id: feature_place(i, f),
            outer,
            inner,
            height_m: prop(f, "height").and_then(|h| tags::parse_height_m(&h)),
            levels: number("num_floors").or_else(|| number("building:levels")),
            building_use: BuildingUse::from_tags(
                class.as_deref(),
                prop(f, "amenity").as_deref(),
                prop(f, "shop").as_deref(),
                prop(f, "office").as_deref(),
                prop(f, "tourism").as_deref(),
            ),
        });
    }
    Ok(())
}

fn span(r: &[(f64, f64)]) -> f64 {
    let (mut lo, mut hi) = ((f64::MAX, f64::MAX), (f64::MIN, f64::MIN));
    for &(x, y) in r {
        lo = (lo.0.min(x), lo.1.min(y));
        hi = (hi.0.max(x), hi.1.max(y));
    }
    (hi.0 - lo.0) * (hi.1 - lo.1)
}

/// Node id for a line end without `u`/`v`: its coordinate to 1e-7° (negative, so never an OSM id).
fn coordinate_node_id((lon, lat): (f64, f64)) -> i64 {
    let x = (lon * 1e7).round() as i64 + 1_800_000_000;
    let y = (lat * 1e7).round() as i64 + 900_000_000;
    -1 - (y * 3_600_000_001 + x)
}

fn lines_of(f: &Feature) -> Result<Vec<&Vec<Position>>, String> {
    match f.geometry.as_ref().map(|g| &g.value) {
        Some(GeometryValue::LineString { coordinates }) => Ok(vec![coordinates]),
        Some(GeometryValue::MultiLineString { coordinates }) => Ok(coordinates.iter().collect()),
        Some(_) => Err("a street or waterway must be a LineString or MultiLineString".into()),
        None => Ok(Vec::new()),
    }
}

/// Reads street centre lines with OSM-style properties into `builder`.
pub fn read_streets(path: &Path, builder: &mut CityBuilder) -> InputResult<()> {
    let fc = load(path)?;
    // Interior points get unique ids from the bottom of the i64 range (below any coordinate id).
    let mut interior_id = i64::MIN;
    for (i, f) in fc.features.iter().enumerate() {
        street(path, i, f, builder, &mut interior_id)?;
    }
    Ok(())
}

fn street(path: &Path, i: usize, f: &Feature, builder: &mut CityBuilder, interior_id: &mut i64) -> InputResult<()> {
    {
        let err = |m: String| InputError::new(path, feature_place(i, f), m);
        let classes = prop_list(f, "highway");
        let Some(class) = tags::best_class(classes.iter().map(String::as_str)) else {
            builder.report.drop("street without a highway class Machi routes on");
            return Ok(());
        };
        let osm_id = prop(f, "osmid").and_then(|v| v.parse::<i64>().ok()).unwrap_or(-(i as i64) - 1);
        let u = prop(f, "u").and_then(|v| v.parse::<i64>().ok());
        let v = prop(f, "v").and_then(|v| v.parse::<i64>().ok());
        let lines = lines_of(f).map_err(&err)?;
        let single = lines.len() == 1;
        for l in lines {
            let pts = line(l).map_err(&err)?;
            let n = pts.len();
            let nodes = pts
                .iter()
                .enumerate()
                .map(|(k, &p)| {
                    let id = match (k, single) {
                        (0, true) => u.unwrap_or_else(|| coordinate_node_id(p)),
                        (k, true) if k == n - 1 => v.unwrap_or_else(|| coordinate_node_id(p)),
                        (k, _) if k == 0 || k == n - 1 => coordinate_node_id(p),
                        _ => {
                            *interior_id += 1;
                            *interior_id
                        }
                    };
                    (id, p.0, p.1)
                })
                .collect();
            let get = |k: &str| prop(f, k);
            let owned: Vec<(&str, Option<String>)> = [
                "oneway",
                "junction",
                "lanes",
                "lanes:forward",
                "lanes:backward",
                "foot",
                "sidewalk",
                "sidewalk:both",
                "access",
                "motor_vehicle",
                "maxspeed",
                "name",
            ]
            .iter()
            .map(|k| (*k, get(k)))
            .collect();
            let lookup = |k: &str| owned.iter().find(|(key, _)| *key == k).and_then(|(_, v)| v.as_deref());
            builder.ways.push(interpret_way(osm_id, nodes, class, &lookup));
        }
    }
    Ok(())
}

/// Reads watercourse centre lines into `builder` (kind from `waterway`, default `river`).
pub fn read_waterways(path: &Path, builder: &mut CityBuilder) -> InputResult<()> {
    let fc = load(path)?;
    for (i, f) in fc.features.iter().enumerate() {
        waterway(path, i, f, builder)?;
    }
    Ok(())
}

fn waterway(path: &Path, i: usize, f: &Feature, builder: &mut CityBuilder) -> InputResult<()> {
    {
        let err = |m: String| InputError::new(path, feature_place(i, f), m);
        let id = prop(f, "osmid").and_then(|v| v.parse::<i64>().ok()).unwrap_or(i as i64);
        let kind = prop(f, "waterway").unwrap_or_else(|| "river".into());
        let covered = matches!(prop(f, "tunnel").as_deref(), Some("yes" | "culvert"));
        for l in lines_of(f).map_err(&err)? {
            builder.waterways.push(RawWaterway {
                source_id: id,
                kind: kind.clone(),
                name: prop(f, "name"),
                covered,
                line: line(l).map_err(&err)?,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::tags::TagDefaults;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn invalid_geometry_names_the_feature() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "b.geojson",
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","id":"ok","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[0.001,0],[0.001,0.001],[0,0]]]}},
               {"type":"Feature","id":"bad","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[200,0],[0.001,0.001],[0,0]]]}}]}"#,
        );
        let mut b = CityBuilder::new("t", TagDefaults::default());
        let e = read_buildings(&p, &mut b).unwrap_err();
        assert!(e.place.contains("feature 1") && e.place.contains("bad"), "{e}");
        assert!(e.to_string().contains("b.geojson"));
        let p = write(
            &dir,
            "s.geojson",
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"highway":"residential"},"geometry":{"type":"LineString","coordinates":[[0,0]]}}]}"#,
        );
        let e = read_streets(&p, &mut b).unwrap_err();
        assert!(e.message.contains("at least 2"), "{e}");
        let p = write(&dir, "x.geojson", "{\"type\":\n\"FeatureCollection\", \"features\": [1]}");
        let e = read_streets(&p, &mut b).unwrap_err();
        assert!(e.place.starts_with("line 2"), "{e}");
    }

    #[test]
    fn streets_join_by_u_v_and_by_coordinates() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "s.geojson",
            r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{"highway":["footway","residential"],"oneway":true,"lanes":"2"},"geometry":{"type":"LineString","coordinates":[[0,0],[0.001,0]]}},
            {"type":"Feature","properties":{"highway":"residential","oneway":false},"geometry":{"type":"LineString","coordinates":[[0.001,0],[0.001,0.0005],[0.001,0.001]]}}]}"#,
        );
        let mut b = CityBuilder::new("t", TagDefaults::default());
        read_streets(&p, &mut b).unwrap();
        assert_eq!(b.ways[0].lanes_forward, 2);
        assert_eq!(b.ways[0].lanes_backward, 0);
        assert_eq!(b.ways[0].nodes[1].0, b.ways[1].nodes[0].0, "shared end joined by coordinate");
        let city = b.build().unwrap();
        // 1 one-way link + 2 directions of the second street; the middle point is not a junction.
        assert_eq!(city.roads.links().len(), 3);
        assert_eq!(city.roads.nodes().len(), 3);
    }
}
