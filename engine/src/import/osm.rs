//! OpenStreetMap PBF importer (decoding by the `osmpbf` crate): roads, footpaths, buildings, turn
//! restrictions, traffic signals, bus stops and waterways into a [`CityBuilder`].
//!
//! What is taken (OSM wiki definitions):
//! - roads: `highway=*` ways of drivable classes, unless `access`/`motor_vehicle` forbid cars; one-way and
//!   lanes per direction from `oneway`, `junction=roundabout`, `lanes`, `lanes:forward|backward`; speed from
//!   `maxspeed` or the class default ([`super::tags::default_speed_kmh`]);
//! - footpaths: footways, paths, steps, pedestrian and living streets, tracks, cycleways (walkable unless
//!   `foot=no`), and streets with sidewalks (`sidewalk=*` other than `no`/`none`, or by class default);
//! - buildings: closed ways and `type=multipolygon` relations with `building=*` (not `building:part`), outer
//!   ring from joined outer members, inner rings subtracted from the area; height from `height`, floors from
//!   `building:levels`;
//! - turn restrictions: `type=restriction` relations with a from way, a via node and a to way (`no_*`,
//!   `only_*`); restrictions with a via way are reported as dropped;
//! - signals: nodes `highway=traffic_signals`; bus stops: `highway=bus_stop` nodes;
//! - bus routes: `type=route` relations with `route=bus|trolleybus` (public transport schema version 2):
//!   their node members with role `stop`, `stop_entry_only` or `stop_exit_only`, in order (the
//!   `platform*` nodes when a relation has no stop nodes), those inside the extract; the line's `ref`,
//!   `name`, and `interval` (minutes, or `HH:MM`/`HH:MM:SS`) when tagged. Routes with fewer than two stops
//!   in the data are dropped;
//! - waterways: `waterway=river|stream|canal|drain|ditch` ways.

use super::tags::{self, BuildingUse, Oneway, WayClass};
use crate::city::graph::TurnRule;
use crate::city::{BusRoute, CityBuilder, RawBuilding, RawRestriction, RawWaterway, RawWay};
use crate::error::{InputError, InputResult};
use osmpbf::{BlobDecode, BlobReader, Element, RelMemberType};
use std::collections::HashMap;
use std::path::Path;

type Tags = Vec<(String, String)>;

fn tag<'a>(tags: &'a Tags, key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

struct RawOsmWay {
    id: i64,
    refs: Vec<i64>,
    tags: Tags,
}

struct RawRelation {
    id: i64,
    members: Vec<(RelMemberType, i64, String)>,
    tags: Tags,
}

/// Everything of interest decoded from a PBF, before interpretation.
#[derive(Default)]
struct Decoded {
    nodes: HashMap<i64, (f64, f64)>,
    tagged_nodes: Vec<(i64, Tags)>,
    ways: Vec<RawOsmWay>,
    relations: Vec<RawRelation>,
}

fn keep_way(tags: &Tags) -> bool {
    tags.iter().any(|(k, _)| k == "highway" || k == "building" || k == "waterway")
}

fn collect<'a>(it: impl Iterator<Item = (&'a str, &'a str)>) -> Tags {
    it.map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn decode(path: &Path) -> InputResult<Decoded> {
    let reader = BlobReader::seekable_from_path(path).map_err(|e| match e.kind() {
        osmpbf::ErrorKind::Io(io) => InputError::io(path, std::io::Error::new(io.kind(), io.to_string())),
        _ => InputError::file(path, format!("not an OSM PBF file: {e}")),
    })?;
    let mut out = Decoded::default();
    let mut blobs = 0usize;
    for (index, blob) in reader.enumerate() {
        let place = |offset: Option<osmpbf::ByteOffset>| match offset {
            Some(o) => format!("blob {index} at byte {}", o.0),
            None => format!("blob {index}"),
        };
        let blob =
            blob.map_err(|e| InputError::new(path, format!("blob {index}"), format!("truncated or corrupt PBF: {e}")))?;
        let offset = blob.offset();
        // The decoder panics on some malformed protobuf enums; a corrupt file must be an error, not a crash.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<(), String> {
            match blob.decode().map_err(|e| e.to_string())? {
                BlobDecode::OsmHeader(h) => {
                    if let Some(f) =
                        h.required_features().iter().find(|f| !matches!(f.as_str(), "OsmSchema-V0.6" | "DenseNodes"))
                    {
                        return Err(format!("requires unsupported feature {f:?}"));
                    }
                }
                BlobDecode::OsmData(block) => block.for_each_element(|el| match el {
                    Element::Node(n) => {
                        out.nodes.insert(n.id(), (n.lon(), n.lat()));
                        if n.tags().next().is_some() {
                            out.tagged_nodes.push((n.id(), collect(n.tags())));
                        }
                    }
                    Element::DenseNode(n) => {
                        out.nodes.insert(n.id(), (n.lon(), n.lat()));
                        let tags = collect(n.tags());
                        if !tags.is_empty() {
                            out.tagged_nodes.push((n.id(), tags));
                        }
                    }
                    Element::Way(w) => {
                        let tags = collect(w.tags());
                        if keep_way(&tags) {
                            out.ways.push(RawOsmWay { id: w.id(), refs: w.refs().collect(), tags });
                        } else {
                            // Outer members of building multipolygons are often untagged ways.
                            out.ways.push(RawOsmWay { id: w.id(), refs: w.refs().collect(), tags: Vec::new() });
                        }
                    }
                    Element::Relation(r) => {
                        let tags = collect(r.tags());
                        let kind = tag(&tags, "type");
                        let bus_route =
                            kind == Some("route") && matches!(tag(&tags, "route"), Some("bus" | "trolleybus"));
                        if bus_route || matches!(kind, Some("restriction" | "multipolygon")) {
                            let members = r
                                .members()
                                .map(|m| (m.member_type.clone(), m.member_id, m.role().unwrap_or("").to_string()))
                                .collect();
                            out.relations.push(RawRelation { id: r.id(), members, tags });
                        }
                    }
                }),
                BlobDecode::Unknown(_) => {}
            }
            Ok(())
        }));
        match decoded {
            Ok(Ok(())) => blobs += 1,
            Ok(Err(msg)) => return Err(InputError::new(path, place(offset), format!("corrupt PBF block: {msg}"))),
            Err(_) => return Err(InputError::new(path, place(offset), "corrupt PBF block (the decoder failed)")),
        }
    }
    if blobs == 0 {
        return Err(InputError::file(path, "empty file: no OSM PBF blocks"));
    }
    Ok(out)
}

/// Reads an OSM PBF file into `builder`; what is skipped is counted in `builder.report.dropped`.
pub fn read_pbf(path: &Path, builder: &mut CityBuilder) -> InputResult<()> {
    let decoded = decode(path)?;
    let Decoded { nodes, tagged_nodes, ways, relations } = decoded;
    let report = &mut builder.report;

    for (id, tags) in &tagged_nodes {
        let (lon, lat) = nodes[id];
        match tag(tags, "highway") {
            Some("traffic_signals") => builder.signal_nodes.push(*id),
            Some("bus_stop") => builder.bus_stops.push((*id, tag(tags, "name").map(str::to_string), lon, lat)),
            _ => {}
        }
    }

    let way_refs: HashMap<i64, &Vec<i64>> = ways.iter().map(|w| (w.id, &w.refs)).collect();
    let node_tags: HashMap<i64, &Tags> = tagged_nodes.iter().map(|(id, t)| (*id, t)).collect();
    let locate = |refs: &[i64]| -> Option<Vec<(i64, f64, f64)>> {
        refs.iter().map(|r| nodes.get(r).map(|&(x, y)| (*r, x, y))).collect()
    };

    for w in &ways {
        if w.tags.is_empty() {
            continue;
        }
        if tag(&w.tags, "building").is_some_and(|b| b != "no") {
            let closed = w.refs.len() >= 4 && w.refs.first() == w.refs.last();
            match locate(&w.refs) {
                _ if !closed => report.drop("building way that is not a closed ring"),
                None => report.drop("building way with nodes missing from the file"),
                Some(pts) => {
                    let ring = pts.iter().map(|p| (p.1, p.2)).collect();
                    builder.buildings.push(raw_building(format!("w{}", w.id), ring, Vec::new(), &w.tags));
                }
            }
            // A way may be a building and a highway at once (a covered passage): keep both readings.
            if tag(&w.tags, "highway").is_none() {
                continue;
            }
        }
        if let Some(kind) = tag(&w.tags, "waterway") {
            if matches!(kind, "river" | "stream" | "canal" | "drain" | "ditch") {
                match locate(&w.refs) {
                    Some(pts) if pts.len() >= 2 => {
                        let covered = matches!(tag(&w.tags, "tunnel"), Some("yes" | "culvert"));
                        builder.waterways.push(RawWaterway {
                            source_id: w.id,
                            kind: kind.to_string(),
                            name: tag(&w.tags, "name").map(str::to_string),
                            covered,
                            line: pts.iter().map(|p| (p.1, p.2)).collect(),
                        });
                    }
                    _ => report.drop("waterway with fewer than 2 located nodes"),
                }
            }
            continue;
        }
        let Some(highway) = tag(&w.tags, "highway") else { continue };
        let Some(class) = WayClass::from_highway(highway) else {
            report.drop("highway of a class Machi does not route on (construction, proposed, …)");
            continue;
        };
        if tag(&w.tags, "area") == Some("yes") {
            report.drop("highway area (a square, not a line)");
            continue;
        }
        let Some(pts) = locate(&w.refs) else {
            report.drop("highway with nodes missing from the file");
            continue;
        };
        if pts.len() < 2 {
            report.drop("highway with fewer than 2 nodes");
            continue;
        }
        builder.ways.push(interpret_way(w.id, pts, class, &|k| tag(&w.tags, k)));
    }

    for r in &relations {
        match tag(&r.tags, "type") {
            Some("restriction") => match restriction(r) {
                Ok(rr) => builder.restrictions.push(rr),
                Err(reason) => report.drop(reason),
            },
            Some("multipolygon") if tag(&r.tags, "building").is_some_and(|b| b != "no") => {
                let ring_of = |role: &str| -> Option<Vec<Vec<(f64, f64)>>> {
                    let parts: Vec<Vec<i64>> = r
                        .members
                        .iter()
                        .filter(|(t, _, ro)| *t == RelMemberType::Way && ro == role)
                        .map(|(_, id, _)| way_refs.get(id).map(|v| v.to_vec()))
                        .collect::<Option<_>>()?;
                    assemble_rings(parts)
                        .into_iter()
                        .map(|ring| locate(&ring).map(|p| p.iter().map(|q| (q.1, q.2)).collect()))
                        .collect()
                };
                let (Some(mut outers), Some(inners)) = (ring_of("outer"), ring_of("inner")) else {
                    report.drop("building multipolygon with members missing from the file");
                    continue;
                };
                if outers.is_empty() {
                    report.drop("building multipolygon without a closed outer ring");
                    continue;
                }
                // One building per relation: its largest outer ring (extra outer rings are rare).
                outers.sort_by(|a, b| ring_area_deg(b).total_cmp(&ring_area_deg(a)));
                let outer = outers.swap_remove(0);
                builder.buildings.push(raw_building(format!("r{}", r.id), outer, inners, &r.tags));
            }
            Some("route") => {
                let route = bus_route(r, |id| {
                    let (lon, lat) = *nodes.get(&id)?;
                    Some((node_tags.get(&id).and_then(|t| tag(t, "name")).map(str::to_string), lon, lat))
                });
                match route {
                    Some(route) => builder.bus_routes.push(route),
                    None => report.drop("bus route with fewer than 2 stops in the file"),
                }
            }
            _ => {}
        }
    }
    builder.bus_routes.sort_by_key(|r| r.source_id);
    // The same relation from overlapping extracts runs once.
    builder.bus_routes.dedup_by_key(|r| r.source_id);
    Ok(())
}

/// A bus route relation's stops in order, as far as the file holds them; `None` with fewer than two.
/// `node(id)` gives a node's name and position, `None` for a node outside the file.
fn bus_route(r: &RawRelation, node: impl Fn(i64) -> Option<(Option<String>, f64, f64)>) -> Option<BusRoute> {
    let members_with = |roles: &[&str]| -> Vec<i64> {
        r.members
            .iter()
            .filter(|(t, _, role)| *t == RelMemberType::Node && roles.contains(&role.as_str()))
            .map(|(_, id, _)| *id)
            .collect()
    };
    let mut ids = members_with(&["stop", "stop_entry_only", "stop_exit_only"]);
    if ids.is_empty() {
        ids = members_with(&["platform", "platform_entry_only", "platform_exit_only"]);
    }
    let stops: Vec<(i64, Option<String>, f64, f64)> =
        ids.into_iter().filter_map(|id| node(id).map(|(name, lon, lat)| (id, name, lon, lat))).collect();
    (stops.len() >= 2).then(|| BusRoute {
        source_id: r.id,
        line: tag(&r.tags, "ref").map_or_else(|| r.id.to_string(), str::to_string),
        name: tag(&r.tags, "name").map(str::to_string),
        stops,
        interval_s: tag(&r.tags, "interval").and_then(interval_s),
    })
}

/// An OSM `interval` value in seconds: minutes (`"10"`), `HH:MM` or `HH:MM:SS`; `None` for anything else
/// (ranges, conditional values), which the timetable's default headway then replaces.
fn interval_s(v: &str) -> Option<f64> {
    let parts: Vec<f64> = v.trim().split(':').map(|p| p.parse::<u32>().ok().map(f64::from)).collect::<Option<_>>()?;
    let s = match parts.as_slice() {
        [m] => m * 60.0,
        [h, m] => h * 3600.0 + m * 60.0,
        [h, m, s] => h * 3600.0 + m * 60.0 + s,
        _ => return None,
    };
    (s > 0.0).then_some(s)
}

fn ring_area_deg(ring: &[(f64, f64)]) -> f64 {
    let mut a = 0.0;
    for i in 0..ring.len() {
        let (p, q) = (ring[i], ring[(i + 1) % ring.len()]);
        a += p.0 * q.1 - q.0 * p.1;
    }
    a.abs() / 2.0
}

/// Joins open ways end to end into closed rings (node id sequences). Unclosable pieces are discarded.
fn assemble_rings(mut parts: Vec<Vec<i64>>) -> Vec<Vec<i64>> {
    let mut rings = Vec::new();
    while let Some(mut ring) = parts.pop() {
        loop {
            if ring.len() >= 4 && ring.first() == ring.last() {
                rings.push(ring);
                break;
            }
            let end = *ring.last().unwrap_or(&0);
            let Some(i) = parts.iter().position(|p| p.first() == Some(&end) || p.last() == Some(&end)) else {
                break;
            };
            let mut next = parts.swap_remove(i);
            if next.first() != Some(&end) {
                next.reverse();
            }
            ring.extend_from_slice(&next[1..]);
        }
    }
    rings
}

fn raw_building(source_id: String, outer: Vec<(f64, f64)>, inner: Vec<Vec<(f64, f64)>>, tags: &Tags) -> RawBuilding {
    let t = |k: &str| tag(tags, k);
    let levels = t("building:levels")
        .and_then(|v| v.split(';').next()?.trim().replace(',', ".").parse::<f32>().ok())
        .filter(|l| *l > 0.0 && *l < 300.0);
    RawBuilding {
        source_id,
        outer,
        inner,
        height_m: t("height").and_then(tags::parse_height_m),
        levels,
        building_use: BuildingUse::from_tags(t("building"), t("amenity"), t("shop"), t("office"), t("tourism")),
    }
}

/// Interprets a highway's tags (shared with the GeoJSON importer, whose streets carry OSM tags).
pub(crate) fn interpret_way<'a>(
    id: i64,
    nodes: Vec<(i64, f64, f64)>,
    class: WayClass,
    t: &dyn Fn(&str) -> Option<&'a str>,
) -> RawWay {
    let oneway = tags::parse_oneway(t("oneway"), t("junction"), class);
    let lanes = t("lanes").and_then(tags::parse_lanes);
    let (fwd, bwd) = tags::lanes_per_direction(
        class,
        oneway != Oneway::No,
        lanes,
        t("lanes:forward").and_then(tags::parse_lanes),
        t("lanes:backward").and_then(tags::parse_lanes),
    );
    let (lanes_forward, lanes_backward) = match oneway {
        Oneway::Backward => (0, fwd),
        _ => (fwd, bwd),
    };
    let foot_denied = matches!(t("foot"), Some("no" | "private"));
    let sidewalk = t("sidewalk").or(t("sidewalk:both"));
    let sidewalks = match sidewalk {
        Some("no" | "none" | "separate") => false,
        Some(_) => true,
        None => class.has_sidewalks_by_default(),
    };
    let walkable = !foot_denied && (class.is_walkway() || sidewalks || matches!(t("foot"), Some("yes" | "designated")));
    let drivable = class.drivable() && !tags::motor_access_denied(t("access"), t("motor_vehicle"));
    let speed_kmh = t("maxspeed").and_then(tags::parse_maxspeed_kmh).unwrap_or_else(|| tags::default_speed_kmh(class));
    RawWay {
        source_id: id,
        nodes,
        class,
        name: t("name").map(str::to_string),
        drivable,
        walkable,
        lanes_forward,
        lanes_backward,
        speed_kmh,
        roundabout: tags::is_roundabout(t("junction")),
    }
}

fn restriction(r: &RawRelation) -> Result<RawRestriction, &'static str> {
    let kind = tag(&r.tags, "restriction").or(tag(&r.tags, "restriction:motorcar"));
    let rule = match kind {
        Some(k) if k.starts_with("no_") => TurnRule::Banned,
        Some(k) if k.starts_with("only_") => TurnRule::Only,
        _ => return Err("turn restriction without a no_*/only_* restriction tag"),
    };
    let member = |role: &str, ty: RelMemberType| {
        r.members.iter().find(|(t, _, ro)| *t == ty && ro == role).map(|(_, id, _)| *id)
    };
    let (Some(from_way), Some(to_way)) = (member("from", RelMemberType::Way), member("to", RelMemberType::Way)) else {
        return Err("turn restriction without from and to ways");
    };
    let Some(via_node) = member("via", RelMemberType::Node) else {
        return Err("turn restriction with a via way (not supported yet)");
    };
    Ok(RawRestriction { from_way, via_node, to_way, rule })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_routes_keep_their_stops_in_order_and_read_intervals() {
        let member = |id, role: &str| (RelMemberType::Node, id, role.to_string());
        let r = RawRelation {
            id: 9,
            members: vec![
                member(1, "platform"),
                member(2, "stop"),
                (RelMemberType::Way, 100, String::new()),
                member(3, "stop_exit_only"),
                member(4, "stop"),
                member(5, "stop_entry_only"),
            ],
            tags: vec![("ref".into(), "5".into()), ("interval".into(), "00:12".into())],
        };
        // Node 4 lies outside the file.
        let node = |id: i64| (id != 4).then(|| (Some(format!("s{id}")), id as f64, 0.0));
        let route = bus_route(&r, node).unwrap();
        assert_eq!(route.stops.iter().map(|s| s.0).collect::<Vec<_>>(), vec![2, 3, 5]);
        assert_eq!((route.line.as_str(), route.interval_s), ("5", Some(720.0)));
        assert_eq!(route.stops[0].1.as_deref(), Some("s2"));
        // Platforms stand in for stops when there are none; one stop is not a route.
        let platforms = RawRelation { members: vec![member(1, "platform"), member(3, "platform")], ..r };
        assert_eq!(bus_route(&platforms, node).unwrap().stops.len(), 2);
        let one = RawRelation { id: 1, members: vec![member(2, "stop")], tags: Vec::new() };
        assert_eq!(bus_route(&one, node), None);
        assert_eq!(interval_s("10"), Some(600.0));
        assert_eq!(interval_s("01:00:30"), Some(3630.0));
        assert_eq!(interval_s("10-15"), None);
        assert_eq!(interval_s("0"), None);
    }

    #[test]
    fn rings_assemble_from_pieces_in_any_direction() {
        let rings = assemble_rings(vec![vec![1, 2, 3], vec![5, 4, 3], vec![5, 6, 1]]);
        assert_eq!(rings.len(), 1);
        assert_eq!(rings[0].len(), 7);
        assert_eq!(rings[0].first(), rings[0].last());
        assert!(assemble_rings(vec![vec![1, 2], vec![3, 4]]).is_empty());
    }
}
