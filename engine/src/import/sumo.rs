//! SUMO networks (`.net.xml`) and demand (`.rou.xml`), read with `roxmltree`, so SUMO users can run their
//! work in Machi and the two can be compared on the same input (SUMO documentation, "Networks/SUMO Road
//! Networks" and "Definition of Vehicles, Vehicle Types, and Routes").
//!
//! **Network**: every normal edge with at least one lane open to passenger cars becomes a link (its lane
//! count, the fastest lane's speed, lane 0's shape); junctions become nodes. Machi treats a junction as a
//! point, so the length of the internal lanes a connection drives through (`via`) is added to the incoming
//! edge (the mean over its connections), keeping route lengths as SUMO drives them, and the internal lane's
//! speed becomes the movement's turn speed. Connections become the allowed turns (an edge's connections are
//! the only turns from it); lane-level connections are not kept (any lane may take any allowed turn).
//! Traffic-light programs (`tlLogic`, the first program of each; actuated ones run at their phase durations)
//! give each connection's signal by `linkIndex`; the edges of a `roundabout` element carry the circulating
//! traffic, which has priority. Coordinates stay in the network's own metric frame.
//!
//! **Demand**: `vType` (accel, decel, tau, minGap, length, speedFactor; IDM's delta; defaults by `vClass`),
//! `route`, `vehicle` (with a route id or an embedded route), `trip` (from/to edges, routed here by
//! shortest free-flow time), and `flow` (begin/end with `period`, `vehsPerHour` or `number`). Departure
//! times must be numbers of seconds. What Machi cannot honour (random `probability` flows, `depart`
//! values such as `triggered`) is refused with the element's line.

use crate::city::control::{Light, MovementSignal, Phase, SignalPlan, TrafficControl};
use crate::city::graph::{Graph, GraphBuilder, Link, LinkId, NodeId};
use crate::error::{InputError, InputResult};
use crate::import::tags::WayClass;
use crate::mobility::idm::DriverParams;
use glam::Vec2;
use std::collections::HashMap;
use std::path::Path;

/// A SUMO network as Machi's road graph.
#[derive(Clone, Debug)]
pub struct SumoNetwork {
    /// The road graph (links are the drivable edges).
    pub graph: Graph,
    /// Signal programs and turn speeds.
    pub control: TrafficControl,
    /// SUMO edge id of every link, indexed by [`LinkId`].
    pub edge_ids: Vec<String>,
    /// Link of every kept SUMO edge id.
    pub edge_index: HashMap<String, LinkId>,
    /// Geographic reference (`projParameter`), if the network has one.
    pub projection: Option<String>,
    /// `netOffset` (m) the network's coordinates were shifted by.
    pub net_offset: (f64, f64),
}

/// A vehicle of SUMO demand.
#[derive(Clone, Debug, PartialEq)]
pub struct SumoVehicle {
    /// SUMO vehicle id.
    pub id: String,
    /// Departure (s).
    pub depart_s: f64,
    /// Index into [`SumoDemand::types`].
    pub vtype: u8,
    /// Links driven, in order.
    pub route: Vec<LinkId>,
}

/// SUMO demand on a network.
#[derive(Clone, Debug)]
pub struct SumoDemand {
    /// Vehicle types: SUMO id and driving parameters. The first is `DEFAULT_VEHTYPE` (a passenger car).
    pub types: Vec<(String, DriverParams)>,
    /// Vehicles by departure time (stable for equal times).
    pub vehicles: Vec<SumoVehicle>,
}

/// Line of a node in its document, for errors.
fn line(doc: &roxmltree::Document, node: roxmltree::Node) -> String {
    format!("line {}", doc.text_pos_at(node.range().start).row)
}

fn parse_doc<'a>(path: &Path, text: &'a str) -> InputResult<roxmltree::Document<'a>> {
    roxmltree::Document::parse_with_options(text, roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() })
        .map_err(|e| InputError::new(path, format!("line {}", e.pos().row), format!("not well-formed XML: {e}")))
}

fn read_text(path: &Path) -> InputResult<String> {
    let bytes = crate::error::read_file(path)?;
    String::from_utf8(bytes).map_err(|e| InputError::file(path, format!("not UTF-8 text: {e}")))
}

/// A required attribute, or an error naming the element's line.
fn attr<'a>(path: &Path, doc: &roxmltree::Document, n: roxmltree::Node<'a, '_>, name: &str) -> InputResult<&'a str> {
    n.attribute(name).ok_or_else(|| {
        InputError::new(path, line(doc, n), format!("<{}> has no `{name}` attribute", n.tag_name().name()))
    })
}

/// An optional number attribute; an error if present and not a finite number.
fn number(path: &Path, doc: &roxmltree::Document, n: roxmltree::Node, name: &str) -> InputResult<Option<f64>> {
    match n.attribute(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| InputError::new(path, line(doc, n), format!("`{name}` = \"{v}\" is not a number"))),
    }
}

/// A shape `"x,y x,y …"`.
fn shape(path: &Path, doc: &roxmltree::Document, n: roxmltree::Node, text: &str) -> InputResult<Vec<Vec2>> {
    text.split_whitespace()
        .map(|p| {
            let mut it = p.split(',').map(|c| c.parse::<f32>());
            match (it.next(), it.next()) {
                (Some(Ok(x)), Some(Ok(y))) => Ok(Vec2::new(x, y)),
                _ => Err(InputError::new(path, line(doc, n), format!("bad shape point \"{p}\""))),
            }
        })
        .collect()
}

/// Whether a lane is open to passenger cars (`allow`/`disallow` lists of vehicle classes).
fn passenger_lane(lane: roxmltree::Node) -> bool {
    let has =
        |list: Option<&str>, class: &str| list.is_some_and(|l| l.split_whitespace().any(|c| c == class || c == "all"));
    match lane.attribute("allow") {
        Some(_) => has(lane.attribute("allow"), "passenger"),
        None => !has(lane.attribute("disallow"), "passenger"),
    }
}

/// Road class of an edge: from its `type` (`highway.primary` …) when it names an OSM class, else by its
/// `priority` among the network's priorities (highest → primary, then secondary, tertiary, residential).
fn edge_class(edge: roxmltree::Node, priorities: &[i64]) -> WayClass {
    if let Some(class) =
        edge.attribute("type").and_then(|t| t.strip_prefix("highway.")).and_then(WayClass::from_highway)
    {
        return class;
    }
    let p = edge.attribute("priority").and_then(|p| p.parse::<i64>().ok()).unwrap_or(0);
    match priorities.iter().position(|&q| q == p).unwrap_or(usize::MAX) {
        0 => WayClass::Primary,
        1 => WayClass::Secondary,
        2 => WayClass::Tertiary,
        _ => WayClass::Residential,
    }
}

/// Reads a SUMO network file.
pub fn read_net(path: &Path) -> InputResult<SumoNetwork> {
    let text = read_text(path)?;
    let doc = parse_doc(path, &text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "net" {
        return Err(InputError::file(path, format!("root element is <{}>, not <net>", root.tag_name().name())));
    }
    let mut projection = None;
    let mut net_offset = (0.0, 0.0);
    let mut builder = GraphBuilder::new();
    let mut junction_nodes: HashMap<&str, NodeId> = HashMap::new();
    // Internal lanes: id → (length m, speed m/s).
    let mut internal: HashMap<&str, (f64, f64)> = HashMap::new();
    let elements: Vec<roxmltree::Node> = root.children().filter(|n| n.is_element()).collect();
    for &n in &elements {
        match n.tag_name().name() {
            "location" => {
                if let Some(p) = n.attribute("projParameter").filter(|p| *p != "!") {
                    projection = Some(p.to_string());
                }
                if let Some(o) = n.attribute("netOffset") {
                    let pts = shape(path, &doc, n, o)?;
                    if let Some(p) = pts.first() {
                        net_offset = (p.x as f64, p.y as f64);
                    }
                }
            }
            "junction" if n.attribute("type") != Some("internal") => {
                let id = attr(path, &doc, n, "id")?;
                let x = number(path, &doc, n, "x")?.unwrap_or(0.0);
                let y = number(path, &doc, n, "y")?.unwrap_or(0.0);
                let source = junction_nodes.len() as i64;
                let node = builder.node(source, Vec2::new(x as f32, y as f32), false);
                junction_nodes.insert(id, node);
            }
            "edge" if n.attribute("function") == Some("internal") => {
                for lane in n.children().filter(|c| c.has_tag_name("lane")) {
                    let id = attr(path, &doc, lane, "id")?;
                    let length = number(path, &doc, lane, "length")?.unwrap_or(0.0);
                    let speed = number(path, &doc, lane, "speed")?.unwrap_or(f64::INFINITY);
                    internal.insert(id, (length, speed));
                }
            }
            _ => {}
        }
    }
    let mut priorities: Vec<i64> = elements
        .iter()
        .filter(|n| n.has_tag_name("edge") && n.attribute("function").is_none())
        .filter_map(|n| n.attribute("priority").and_then(|p| p.parse().ok()))
        .collect();
    priorities.sort_unstable_by(|a, b| b.cmp(a));
    priorities.dedup();
    // Normal edges with a passenger lane.
    let mut edge_ids = Vec::new();
    let mut edge_index: HashMap<String, LinkId> = HashMap::new();
    let mut links: Vec<Link> = Vec::new();
    for &n in elements.iter().filter(|n| n.has_tag_name("edge")) {
        if n.attribute("function").is_some_and(|f| f != "normal") {
            continue;
        }
        let id = attr(path, &doc, n, "id")?;
        let lanes: Vec<roxmltree::Node> =
            n.children().filter(|c| c.has_tag_name("lane") && passenger_lane(*c)).collect();
        if lanes.is_empty() {
            continue;
        }
        let node_of = |key: &str| -> InputResult<NodeId> {
            let j = attr(path, &doc, n, key)?;
            junction_nodes.get(j).copied().ok_or_else(|| {
                InputError::new(path, line(&doc, n), format!("edge \"{id}\": junction \"{j}\" does not exist"))
            })
        };
        let (from, to) = (node_of("from")?, node_of("to")?);
        let mut speed: f64 = 0.0;
        let mut length = f64::NAN;
        for &lane in &lanes {
            speed = speed.max(number(path, &doc, lane, "speed")?.unwrap_or(13.89));
            if length.is_nan() {
                length = number(path, &doc, lane, "length")?
                    .ok_or_else(|| InputError::new(path, line(&doc, lane), "lane has no `length`"))?;
            }
        }
        if !(speed > 0.0 && length >= 0.0) {
            return Err(InputError::new(
                path,
                line(&doc, n),
                format!("edge \"{id}\": speed {speed} m/s, length {length} m"),
            ));
        }
        let mut geometry = match lanes[0].attribute("shape") {
            Some(s) => shape(path, &doc, lanes[0], s)?,
            None => Vec::new(),
        };
        if geometry.len() < 2 {
            geometry = vec![builder.node_pos(from), builder.node_pos(to)];
        }
        edge_index.insert(id.to_string(), LinkId(links.len() as u32));
        edge_ids.push(id.to_string());
        links.push(Link {
            from,
            to,
            length_m: length as f32,
            speed_mps: speed as f32,
            lanes: lanes.len().min(u8::MAX as usize) as u8,
            class: edge_class(n, &priorities),
            geometry,
            source_id: links.len() as i64,
            name: n.attribute("name").map(str::to_string),
            roundabout: false,
        });
    }
    // Roundabouts: their edges carry the circulating traffic, which has priority.
    for &n in elements.iter().filter(|n| n.has_tag_name("roundabout")) {
        for edge in attr(path, &doc, n, "edges")?.split_whitespace() {
            if let Some(&LinkId(k)) = edge_index.get(edge) {
                links[k as usize].roundabout = true;
            }
        }
    }
    // Traffic-light programs: the first program of each.
    let mut plans: Vec<SignalPlan> = Vec::new();
    let mut plan_of: HashMap<&str, u32> = HashMap::new();
    for &n in elements.iter().filter(|n| n.has_tag_name("tlLogic")) {
        let id = attr(path, &doc, n, "id")?;
        if plan_of.contains_key(id) {
            continue;
        }
        let mut phases = Vec::new();
        for p in n.children().filter(|c| c.has_tag_name("phase")) {
            let duration_s = number(path, &doc, p, "duration")?
                .filter(|d| *d >= 0.0)
                .ok_or_else(|| InputError::new(path, line(&doc, p), "phase has no valid `duration`"))?;
            let state = attr(path, &doc, p, "state")?;
            let lights = state
                .chars()
                .map(|c| {
                    Light::from_sumo(c).ok_or_else(|| {
                        InputError::new(path, line(&doc, p), format!("unknown signal state '{c}' in \"{state}\""))
                    })
                })
                .collect::<InputResult<Vec<Light>>>()?;
            phases.push(Phase { duration_s, lights });
        }
        let offset_s = number(path, &doc, n, "offset")?.unwrap_or(0.0);
        plan_of.insert(id, plans.len() as u32);
        plans.push(SignalPlan { offset_s, phases });
    }
    // Connections: allowed turns, signals, internal lengths and turn speeds.
    let mut movements = Vec::new();
    let mut turn_speeds = Vec::new();
    let mut allowed: Vec<Vec<LinkId>> = vec![Vec::new(); links.len()];
    let mut via_length: Vec<(f64, u32)> = vec![(0.0, 0); links.len()];
    for &n in elements.iter().filter(|n| n.has_tag_name("connection")) {
        let (Some(&from), Some(&to)) =
            (edge_index.get(attr(path, &doc, n, "from")?), edge_index.get(attr(path, &doc, n, "to")?))
        else {
            continue; // internal, pedestrian or non-passenger edges
        };
        if !allowed[from.0 as usize].contains(&to) {
            allowed[from.0 as usize].push(to);
            if let Some(&(length, speed)) = n.attribute("via").and_then(|v| internal.get(v)) {
                via_length[from.0 as usize].0 += length;
                via_length[from.0 as usize].1 += 1;
                if speed.is_finite() {
                    turn_speeds.push((from, to, speed as f32));
                }
            }
            if let (Some(tl), Some(index)) = (n.attribute("tl"), number(path, &doc, n, "linkIndex")?) {
                let controller = *plan_of.get(tl).ok_or_else(|| {
                    InputError::new(
                        path,
                        line(&doc, n),
                        format!("connection names traffic light \"{tl}\", which has no program"),
                    )
                })?;
                movements.push(MovementSignal { from, to, controller, index: index as u16 });
            }
        }
    }
    for (k, link) in links.iter_mut().enumerate() {
        let (total, count) = via_length[k];
        if count > 0 {
            link.length_m += (total / count as f64) as f32;
        }
        builder.link(link.clone());
    }
    for (k, to) in allowed.iter().enumerate() {
        for &t in to {
            builder.restriction(crate::city::graph::TurnRestriction {
                from: LinkId(k as u32),
                to: t,
                rule: crate::city::graph::TurnRule::Only,
            });
        }
    }
    Ok(SumoNetwork {
        graph: builder.build(),
        control: TrafficControl { plans, movements, turn_speeds },
        edge_ids,
        edge_index,
        projection,
        net_offset,
    })
}

/// Driving parameters of a SUMO `vType`: its `vClass` defaults, then its own attributes.
fn vtype_params(path: &Path, doc: &roxmltree::Document, n: roxmltree::Node) -> InputResult<DriverParams> {
    let mut p = match n.attribute("vClass") {
        Some("bus" | "coach") => DriverParams::BUS,
        Some("truck" | "trailer" | "delivery") => DriverParams::TRUCK,
        Some("emergency") => DriverParams::EMERGENCY,
        _ => DriverParams::CAR,
    };
    let fields: [(&str, &mut f64); 6] = [
        ("accel", &mut p.max_accel_mps2),
        ("decel", &mut p.comfort_decel_mps2),
        ("tau", &mut p.time_headway_s),
        ("minGap", &mut p.min_gap_m),
        ("length", &mut p.length_m),
        ("speedFactor", &mut p.speed_factor),
    ];
    for (name, field) in fields {
        if let Some(v) = number(path, doc, n, name)? {
            if v <= 0.0 && name != "minGap" || v < 0.0 {
                return Err(InputError::new(path, line(doc, n), format!("`{name}` = {v} must be positive")));
            }
            *field = v;
        }
    }
    if let Some(d) = number(path, doc, n, "delta")? {
        p.delta = d;
    }
    Ok(p)
}

/// Reads SUMO demand for `net`; `trip`s are routed on it by free-flow time.
pub fn read_routes(path: &Path, net: &SumoNetwork) -> InputResult<SumoDemand> {
    let text = read_text(path)?;
    let doc = parse_doc(path, &text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "routes" {
        return Err(InputError::file(path, format!("root element is <{}>, not <routes>", root.tag_name().name())));
    }
    let mut types: Vec<(String, DriverParams)> = vec![("DEFAULT_VEHTYPE".into(), DriverParams::CAR)];
    let mut routes: HashMap<&str, Vec<LinkId>> = HashMap::new();
    let mut vehicles: Vec<SumoVehicle> = Vec::new();
    let mut router = crate::city::routing::Router::new(&net.graph);
    let edges = |n: roxmltree::Node, list: &str| -> InputResult<Vec<LinkId>> {
        let links = list
            .split_whitespace()
            .map(|e| {
                net.edge_index.get(e).copied().ok_or_else(|| {
                    InputError::new(path, line(&doc, n), format!("edge \"{e}\" is not a drivable edge of the network"))
                })
            })
            .collect::<InputResult<Vec<LinkId>>>()?;
        if links.is_empty() {
            return Err(InputError::new(path, line(&doc, n), "empty route"));
        }
        for w in links.windows(2) {
            if !net.graph.out_links(net.graph.link(w[0]).to).contains(&w[1]) {
                return Err(InputError::new(
                    path,
                    line(&doc, n),
                    format!(
                        "edges \"{}\" and \"{}\" do not connect",
                        net.edge_ids[w[0].0 as usize], net.edge_ids[w[1].0 as usize]
                    ),
                ));
            }
        }
        Ok(links)
    };
    for n in root.children().filter(|n| n.is_element()) {
        let tag = n.tag_name().name();
        let vtype = |types: &[(String, DriverParams)]| -> InputResult<u8> {
            let name = n.attribute("type").unwrap_or("DEFAULT_VEHTYPE");
            types.iter().position(|(t, _)| t == name).map(|k| k as u8).ok_or_else(|| {
                InputError::new(path, line(&doc, n), format!("vehicle type \"{name}\" is not defined before use"))
            })
        };
        let depart = |key: &str| -> InputResult<f64> {
            let v = attr(path, &doc, n, key)?;
            v.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| {
                InputError::new(
                    path,
                    line(&doc, n),
                    format!("`{key}` = \"{v}\": only departure times in seconds are supported"),
                )
            })
        };
        // The route of a vehicle or flow: a `route` attribute naming one, an embedded <route>, or from/to.
        let route_of = |router: &mut crate::city::routing::Router| -> InputResult<Vec<LinkId>> {
            if let Some(r) = n.attribute("route") {
                return routes.get(r).cloned().ok_or_else(|| {
                    InputError::new(path, line(&doc, n), format!("route \"{r}\" is not defined before use"))
                });
            }
            if let Some(r) = n.children().find(|c| c.has_tag_name("route")) {
                return edges(r, attr(path, &doc, r, "edges")?);
            }
            let (from, to) = (attr(path, &doc, n, "from")?, attr(path, &doc, n, "to")?);
            let (a, b) = (edges(n, from)?[0], edges(n, to)?[0]);
            if a == b {
                return Ok(vec![a]);
            }
            let g = &net.graph;
            let mut route = router
                .route(g.link(a).to, g.link(b).from, crate::city::routing::Weight::TravelTime)
                .filter(|r| r.links.first().is_none_or(|&f| g.turn_allowed(a, f)))
                .ok_or_else(|| {
                    InputError::new(path, line(&doc, n), format!("no route from edge \"{from}\" to edge \"{to}\""))
                })?
                .links;
            route.insert(0, a);
            route.push(b);
            Ok(route)
        };
        match tag {
            "vType" => {
                let id = attr(path, &doc, n, "id")?;
                let params = vtype_params(path, &doc, n)?;
                match types.iter_mut().find(|(t, _)| t == id) {
                    Some(existing) => existing.1 = params,
                    None => types.push((id.to_string(), params)),
                }
                if types.len() > u8::MAX as usize {
                    return Err(InputError::new(path, line(&doc, n), "more than 255 vehicle types"));
                }
            }
            "route" => {
                let id = attr(path, &doc, n, "id")?;
                let links = edges(n, attr(path, &doc, n, "edges")?)?;
                routes.insert(id, links);
            }
            "vehicle" | "trip" => {
                let id = attr(path, &doc, n, "id")?.to_string();
                let depart_s = depart("depart")?;
                let vtype = vtype(&types)?;
                let route = route_of(&mut router)?;
                vehicles.push(SumoVehicle { id, depart_s, vtype, route });
            }
            "flow" => {
                let id = attr(path, &doc, n, "id")?;
                let begin = depart("begin")?;
                let end = number(path, &doc, n, "end")?.unwrap_or(86_400.0);
                let period = if let Some(p) = number(path, &doc, n, "period")? {
                    p
                } else if let Some(vph) = number(path, &doc, n, "vehsPerHour")? {
                    3600.0 / vph
                } else if let Some(count) = number(path, &doc, n, "number")? {
                    (end - begin) / count
                } else {
                    return Err(InputError::new(
                        path,
                        line(&doc, n),
                        "flow needs `period`, `vehsPerHour` or `number` (random `probability` flows are not supported)",
                    ));
                };
                if !(period > 0.0 && period.is_finite()) {
                    return Err(InputError::new(
                        path,
                        line(&doc, n),
                        format!("flow period {period} s is not positive"),
                    ));
                }
                let vtype = vtype(&types)?;
                let route = route_of(&mut router)?;
                let mut k = 0u64;
                while begin + k as f64 * period < end {
                    vehicles.push(SumoVehicle {
                        id: format!("{id}.{k}"),
                        depart_s: begin + k as f64 * period,
                        vtype,
                        route: route.clone(),
                    });
                    k += 1;
                }
            }
            "person" | "personFlow" | "container" | "containerFlow" => {
                return Err(InputError::new(path, line(&doc, n), format!("<{tag}> demand is not supported yet")));
            }
            _ => {}
        }
    }
    vehicles.sort_by(|a, b| a.depart_s.total_cmp(&b.depart_s));
    Ok(SumoDemand { types, vehicles })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<net version="1.20">
    <location netOffset="0.00,0.00" convBoundary="0,0,400,0" origBoundary="0,0,400,0" projParameter="!"/>
    <edge id=":B_0" function="internal">
        <lane id=":B_0_0" index="0" speed="13.89" length="8.00" shape="195,0 205,0"/>
    </edge>
    <edge id="AB" from="A" to="B" priority="2">
        <lane id="AB_0" index="0" speed="13.89" length="195.00" shape="0,0 195,0"/>
        <lane id="AB_1" index="1" speed="13.89" length="195.00" shape="0,3 195,3"/>
        <lane id="AB_2" index="2" allow="pedestrian" speed="1.0" length="195.00" shape="0,6 195,6"/>
    </edge>
    <edge id="BC" from="B" to="C" priority="2">
        <lane id="BC_0" index="0" speed="13.89" length="195.00" shape="205,0 400,0"/>
    </edge>
    <edge id="walk" from="A" to="C" priority="1">
        <lane id="walk_0" index="0" allow="pedestrian" speed="1.0" length="400.00" shape="0,9 400,9"/>
    </edge>
    <tlLogic id="B" type="static" programID="0" offset="5">
        <phase duration="30" state="G"/>
        <phase duration="3" state="y"/>
        <phase duration="27" state="r"/>
    </tlLogic>
    <junction id="A" type="dead_end" x="0.00" y="0.00"/>
    <junction id="B" type="traffic_light" x="200.00" y="0.00"/>
    <junction id="C" type="dead_end" x="400.00" y="0.00"/>
    <connection from="AB" to="BC" fromLane="0" toLane="0" via=":B_0_0" tl="B" linkIndex="0" dir="s" state="O"/>
    <connection from=":B_0" to="BC" fromLane="0" toLane="0" dir="s" state="M"/>
</net>
"#;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_network_becomes_links_with_signals_and_internal_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let net = read_net(&write(&dir, "n.net.xml", NET)).unwrap();
        assert_eq!(net.edge_ids, vec!["AB", "BC"], "the pedestrian edge is not drivable");
        let ab = net.graph.link(LinkId(0));
        assert_eq!(ab.lanes, 2);
        assert!((ab.length_m - 203.0).abs() < 1e-3, "195 m + the 8 m internal lane: {}", ab.length_m);
        assert_eq!(net.control.plans.len(), 1);
        assert_eq!(net.control.plans[0].offset_s, 5.0);
        assert_eq!(net.control.plans[0].light(0, 5.0 + 31.0), Light::Yellow);
        assert_eq!(
            net.control.movements,
            vec![MovementSignal { from: LinkId(0), to: LinkId(1), controller: 0, index: 0 }]
        );
        assert_eq!(net.control.turn_speeds, vec![(LinkId(0), LinkId(1), 13.89)]);
        assert!(net.graph.turn_allowed(LinkId(0), LinkId(1)));
    }

    #[test]
    fn demand_expands_flows_routes_trips_and_types() {
        let dir = tempfile::tempdir().unwrap();
        let net = read_net(&write(&dir, "n.net.xml", NET)).unwrap();
        let rou = r#"<routes>
            <vType id="idm" carFollowModel="IDM" accel="2.0" decel="4.0" tau="1.2" minGap="2.0" length="4.5" delta="4"/>
            <route id="r" edges="AB BC"/>
            <vehicle id="v1" type="idm" depart="3" route="r"/>
            <vehicle id="v0" depart="1.5"><route edges="AB"/></vehicle>
            <trip id="t" depart="10" from="AB" to="BC"/>
            <flow id="f" begin="0" end="60" period="20" route="r"/>
        </routes>"#;
        let d = read_routes(&write(&dir, "d.rou.xml", rou), &net).unwrap();
        assert_eq!(d.types.len(), 2);
        assert_eq!(d.types[1].1.time_headway_s, 1.2);
        let ids: Vec<&str> = d.vehicles.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, vec!["f.0", "v0", "v1", "t", "f.1", "f.2"]);
        assert!(d.vehicles.iter().filter(|v| v.id != "v0").all(|v| v.route == vec![LinkId(0), LinkId(1)]));
        assert_eq!(d.vehicles[2].vtype, 1);
    }

    #[test]
    fn bad_demand_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let net = read_net(&write(&dir, "n.net.xml", NET)).unwrap();
        for (text, needle) in [
            ("<routes>\n<vehicle id=\"a\" depart=\"0\"><route edges=\"AB nowhere\"/></vehicle></routes>", "line 2"),
            ("<routes>\n\n<vehicle id=\"a\" depart=\"triggered\"><route edges=\"AB\"/></vehicle></routes>", "line 3"),
            (
                "<routes>\n<vehicle id=\"a\" depart=\"0\" type=\"bus\"><route edges=\"AB\"/></vehicle></routes>",
                "not defined",
            ),
            ("<routes>\n<vehicle id=\"a\" depart=\"0\"><route edges=\"BC AB\"/></vehicle></routes>", "do not connect"),
            ("<routes><flow id=\"f\" begin=\"0\" probability=\"0.1\" route=\"r\"/></routes>", "probability"),
            ("<routes><vehicle id=\"a\"", "not well-formed"),
        ] {
            let err = read_routes(&write(&dir, "bad.rou.xml", text), &net).unwrap_err().to_string();
            assert!(err.contains("bad.rou.xml") && err.contains(needle), "{err} (wanted {needle})");
        }
        let err = read_net(&write(&dir, "bad.net.xml", "<routes/>")).unwrap_err().to_string();
        assert!(err.contains("not <net>"), "{err}");
    }
}
