//! The [`City`]: everything static about a place, built once from imported files and immutable after.
//!
//! Importers hand their features to a [`CityBuilder`] in WGS84; `build` chooses the local frame (the centre
//! of the vector data unless an origin is given), projects everything into it, splits ways into links at
//! junctions and signals, applies turn restrictions, and builds the spatial indexes. The [`ImportReport`]
//! records what was imported and what was dropped and why.

pub mod control;
pub mod graph;
pub mod index;
pub mod routing;

use crate::error::{InputError, InputResult};
use crate::geo::{shapes, LocalFrame};
use crate::import::tags::{BuildingUse, TagDefaults, WayClass};
use crate::import::terrain::{resample_to_local, Raster, TerrainGrid};
use glam::Vec2;
use graph::{Graph, GraphBuilder, Link, LinkId, NodeId, TurnRestriction, TurnRule};
use index::{BuildingIndex, LinkIndex, PointIndex, PointKind};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Index of a building in `City::buildings`.
pub type BuildingId = u32;

/// Where a building's height came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeightSource {
    /// A `height` tag or attribute.
    Tagged,
    /// `building:levels` / `num_floors` × storey height.
    Levels,
    /// Neither: `TagDefaults::default_levels` × storey height.
    Default,
}

/// A building.
#[derive(Clone, Debug, Serialize)]
pub struct Building {
    /// Identifier in the source (`w123`/`r45` for OSM ways/relations, the feature id in GeoJSON).
    pub source_id: String,
    /// Outer ring in the local frame (m), counter-clockwise, first point not repeated.
    pub footprint: Vec<Vec2>,
    /// Area centroid of the footprint (m).
    pub centroid: Vec2,
    /// Footprint area (m²).
    pub footprint_m2: f32,
    /// Height above ground to the roof (m).
    pub height_m: f32,
    /// Where `height_m` came from.
    pub height_source: HeightSource,
    /// Floors above ground (from tags, or height / storey height, at least 1).
    pub levels: f32,
    /// Gross floor area (m²): footprint × floors.
    pub floor_area_m2: f32,
    /// Use from tags (residential, office, retail, …).
    pub building_use: BuildingUse,
}

/// A public-transport stop.
#[derive(Clone, Debug, Serialize)]
pub struct BusStop {
    /// OSM node id.
    pub source_id: i64,
    /// Stop name, if tagged.
    pub name: Option<String>,
    /// Position in the local frame (m).
    pub pos: Vec2,
}

/// One direction of one bus line as OpenStreetMap maps it: a `type=route` relation (public transport
/// schema version 2) with its stops in order. The stops are kept in WGS84, as a GTFS feed's are, since the
/// timetable made from them is matched onto the roads the same way ([`crate::mobility::transit`]).
#[derive(Clone, Debug, PartialEq)]
pub struct BusRoute {
    /// OSM relation id.
    pub source_id: i64,
    /// The line (`ref`, or the relation id when untagged).
    pub line: String,
    /// `name`, if tagged.
    pub name: Option<String>,
    /// The stops in order: (OSM node id, name, lon°, lat°), those inside the extract.
    pub stops: Vec<(i64, Option<String>, f64, f64)>,
    /// Time between departures the relation states (`interval`, s), if it does.
    pub interval_s: Option<f64>,
}

/// A watercourse centre line.
#[derive(Clone, Debug, Serialize)]
pub struct Waterway {
    /// OSM way id (or feature index).
    pub source_id: i64,
    /// `river`, `stream`, `canal`, `drain`, `ditch`.
    pub kind: String,
    /// Name, if tagged.
    pub name: Option<String>,
    /// Whether this stretch runs in a tunnel or culvert.
    pub covered: bool,
    /// Centre line in the local frame (m).
    pub line: Vec<Vec2>,
}

/// What was imported, and what was dropped and why — printed by `machi import`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    /// Buildings imported.
    pub buildings: usize,
    /// … of which with a tagged height.
    pub buildings_with_height: usize,
    /// … with floors but no height.
    pub buildings_with_levels: usize,
    /// … with neither (default height).
    pub buildings_with_default_height: usize,
    /// Buildings by use.
    pub buildings_by_use: BTreeMap<String, usize>,
    /// Length of drivable street centre lines (km), each street once whatever its directions.
    pub road_km: f64,
    /// Length of lanes (km): centre line × lanes in both directions.
    pub lane_km: f64,
    /// Directed road links.
    pub road_links: usize,
    /// Walkable length (km), each footpath or sidewalk street once.
    pub footpath_km: f64,
    /// Directed footpath links (two per walkable segment).
    pub footpath_links: usize,
    /// Road nodes where three or more streets meet.
    pub junctions: usize,
    /// Signalised road nodes.
    pub signals: usize,
    /// Turn restrictions applied.
    pub turn_restrictions: usize,
    /// Bus stops.
    pub bus_stops: usize,
    /// Bus routes (one direction of a line each) with at least two stops in the data.
    pub bus_routes: usize,
    /// Waterway lines.
    pub waterways: usize,
    /// Waterway length (km).
    pub waterway_km: f64,
    /// `width x height @ cell m` of the terrain grid, if any.
    pub terrain: Option<String>,
    /// Reason → count of features not imported.
    pub dropped: BTreeMap<String, usize>,
}

impl ImportReport {
    /// Counts one dropped feature under `reason`.
    pub fn drop(&mut self, reason: &str) {
        *self.dropped.entry(reason.to_string()).or_insert(0) += 1;
    }
}

/// A road or path way as an importer read it (WGS84), before splitting into links.
#[derive(Clone, Debug)]
pub struct RawWay {
    /// OSM way id (or feature id).
    pub source_id: i64,
    /// (node id, lon°, lat°) in order. Node ids identify shared junctions between ways.
    pub nodes: Vec<(i64, f64, f64)>,
    /// Highway class.
    pub class: WayClass,
    /// Street name.
    pub name: Option<String>,
    /// Cars may drive it (class and access permit).
    pub drivable: bool,
    /// People may walk it (a walkway, or a street with sidewalks).
    pub walkable: bool,
    /// Lanes forward (along node order) and backward; backward 0 = one-way forward, forward 0 = one-way back.
    pub lanes_forward: u8,
    /// Lanes against the node order.
    pub lanes_backward: u8,
    /// Vehicle speed limit (km/h).
    pub speed_kmh: f32,
    /// A roundabout's carriageway (`junction=roundabout`).
    pub roundabout: bool,
}

/// A building as an importer read it (WGS84).
#[derive(Clone, Debug)]
pub struct RawBuilding {
    /// Identifier in the source.
    pub source_id: String,
    /// Outer ring, (lon°, lat°).
    pub outer: Vec<(f64, f64)>,
    /// Inner rings (courtyards), (lon°, lat°); their area is subtracted from the footprint area.
    pub inner: Vec<Vec<(f64, f64)>>,
    /// Tagged height (m).
    pub height_m: Option<f32>,
    /// Tagged floors.
    pub levels: Option<f32>,
    /// Use from tags.
    pub building_use: BuildingUse,
}

/// A watercourse as an importer read it (WGS84).
#[derive(Clone, Debug)]
pub struct RawWaterway {
    /// OSM way id (or feature id).
    pub source_id: i64,
    /// `river`, `stream`, `canal`, `drain`, `ditch`.
    pub kind: String,
    /// Name, if tagged.
    pub name: Option<String>,
    /// In a tunnel or culvert.
    pub covered: bool,
    /// Centre line, (lon°, lat°).
    pub line: Vec<(f64, f64)>,
}

/// A turn restriction as tagged: from way, via node, to way.
#[derive(Clone, Copy, Debug)]
pub struct RawRestriction {
    /// Way arriving at the via node.
    pub from_way: i64,
    /// The junction node.
    pub via_node: i64,
    /// Way leaving the via node.
    pub to_way: i64,
    /// Banned or only.
    pub rule: TurnRule,
}

/// Collects imported features; [`CityBuilder::build`] makes the [`City`].
#[derive(Default)]
pub struct CityBuilder {
    /// City name.
    pub name: String,
    /// Defaults for untagged features.
    pub defaults: TagDefaults,
    /// Origin of the local frame (lon°, lat°); default: centre of the vector data.
    pub origin_lon_lat: Option<(f64, f64)>,
    /// Roads and paths.
    pub ways: Vec<RawWay>,
    /// Building footprints.
    pub buildings: Vec<RawBuilding>,
    /// Turn restrictions.
    pub restrictions: Vec<RawRestriction>,
    /// OSM node ids carrying traffic signals.
    pub signal_nodes: Vec<i64>,
    /// (source id, name, lon°, lat°).
    pub bus_stops: Vec<(i64, Option<String>, f64, f64)>,
    /// Bus routes with their stops.
    pub bus_routes: Vec<BusRoute>,
    /// Watercourses.
    pub waterways: Vec<RawWaterway>,
    /// What importers dropped so far; completed by `build`.
    pub report: ImportReport,
    /// Terrain raster to resample into the local frame: (file, raster, cell size m or the file's own).
    pub terrain: Option<(PathBuf, Raster, Option<f32>)>,
    /// Files read so far (named in errors found while building).
    pub sources: Vec<PathBuf>,
    /// A road network read whole (a SUMO network): replaces the roads built from ways.
    pub road_network: Option<crate::import::sumo::SumoNetwork>,
    /// The GTFS feed the bus stops came from.
    pub gtfs_feed: Option<PathBuf>,
}

/// The static city.
pub struct City {
    /// City name.
    pub name: String,
    /// The tag defaults the city was imported with (storey height, walking speed…).
    pub defaults: TagDefaults,
    /// The local metric frame every coordinate is in.
    pub frame: LocalFrame,
    /// Drivable road network (directed links, lanes, speed limits, signals, turn rules).
    pub roads: Graph,
    /// Walkable network (both directions of every footpath and sidewalk street).
    pub footpaths: Graph,
    /// Buildings, indexed by [`BuildingId`].
    pub buildings: Vec<Building>,
    /// Bus stops.
    pub bus_stops: Vec<BusStop>,
    /// Bus routes mapped in OpenStreetMap (their stops in order), which scheduled buses can run when there
    /// is no GTFS feed.
    pub bus_routes: Vec<BusRoute>,
    /// Watercourses.
    pub waterways: Vec<Waterway>,
    /// Terrain resampled into the local frame, if a terrain file was given.
    pub terrain: Option<TerrainGrid>,
    /// Index over road link segments.
    pub road_index: LinkIndex,
    /// Index over footpath link segments.
    pub footpath_index: LinkIndex,
    /// Index over building footprints.
    pub building_index: BuildingIndex,
    /// Index over bus stops and signals.
    pub point_index: PointIndex,
    /// What was imported and dropped.
    pub report: ImportReport,
    /// Imported signal programs and turn speeds of the road network (empty for OSM data).
    pub traffic_control: control::TrafficControl,
    /// The SUMO network the roads came from, if they did (its edge ids, for SUMO demand).
    pub sumo_network: Option<crate::import::sumo::SumoNetwork>,
    /// The GTFS feed whose stops are the bus stops, if one was given (its timetable drives the buses).
    pub gtfs_feed: Option<std::path::PathBuf>,
}

impl City {
    /// Buildings whose footprint comes within `radius_m` of `point`.
    pub fn buildings_within(&self, point: Vec2, radius_m: f32) -> Vec<BuildingId> {
        self.building_index.within_distance(&self.buildings, point, radius_m)
    }

    /// Buildings whose centroid lies in `polygon` (local frame).
    pub fn buildings_in_polygon(&self, polygon: &[Vec2]) -> Vec<BuildingId> {
        self.building_index.within_polygon(&self.buildings, polygon)
    }

    /// Nearest road link to `point` and its distance (m).
    pub fn nearest_road(&self, point: Vec2) -> Option<(LinkId, f32)> {
        self.road_index.nearest(point)
    }

    /// Nearest footpath link to `point` and its distance (m).
    pub fn nearest_footpath(&self, point: Vec2) -> Option<(LinkId, f32)> {
        self.footpath_index.nearest(point)
    }

    /// Bounds of the city's vector data in the local frame (m).
    pub fn bounds(&self) -> Option<(Vec2, Vec2)> {
        let pts = self.buildings.iter().flat_map(|b| b.footprint.iter().copied());
        let pts = pts.chain(self.roads.nodes().iter().map(|n| n.pos));
        shapes::bounds(pts.chain(self.footpaths.nodes().iter().map(|n| n.pos)))
    }
}

impl CityBuilder {
    /// An empty builder for a city called `name`.
    pub fn new(name: impl Into<String>, defaults: TagDefaults) -> CityBuilder {
        CityBuilder { name: name.into(), defaults, ..CityBuilder::default() }
    }

    /// The origin of the local frame: the one given, or the centre of the bounding box of the vector data.
    pub fn origin(&self) -> Option<(f64, f64)> {
        if self.origin_lon_lat.is_some() {
            return self.origin_lon_lat;
        }
        let pts = self.ways.iter().flat_map(|w| w.nodes.iter().map(|&(_, x, y)| (x, y)));
        let pts = pts.chain(self.buildings.iter().flat_map(|b| b.outer.iter().copied()));
        let pts = pts.chain(self.bus_stops.iter().map(|s| (s.2, s.3)));
        let (mut lo, mut hi) = ((f64::INFINITY, f64::INFINITY), (f64::NEG_INFINITY, f64::NEG_INFINITY));
        for (x, y) in pts {
            lo = (lo.0.min(x), lo.1.min(y));
            hi = (hi.0.max(x), hi.1.max(y));
        }
        lo.0.is_finite().then(|| ((lo.0 + hi.0) / 2.0, (lo.1 + hi.1) / 2.0))
    }

    /// Sets the terrain raster read from `path`, to be resampled at `cell_m` (default: its own cell size).
    pub fn set_terrain(&mut self, path: &std::path::Path, raster: Raster, cell_m: Option<f32>) {
        self.terrain = Some((path.to_path_buf(), raster, cell_m));
    }

    /// Projects, splits, indexes: the finished City. Errors when a coordinate cannot be projected or the
    /// terrain cannot be resampled, naming the file.
    pub fn build(mut self) -> InputResult<City> {
        let source = self.sources.first().cloned().unwrap_or_default();
        let (lon0, lat0) = match self.origin() {
            Some(o) => o,
            None => match &self.terrain {
                Some((path, raster, _)) => raster_centre_lon_lat(path, raster)?,
                None => (0.0, 0.0),
            },
        };
        let frame = LocalFrame::new(lon0, lat0);
        let project = |lon: f64, lat: f64| -> InputResult<Vec2> {
            let (x, y) =
                frame.from_lon_lat(lon, lat).map_err(|e| InputError::new(&source, "coordinates", e.to_string()))?;
            Ok(Vec2::new(x as f32, y as f32))
        };
        let mut report = std::mem::take(&mut self.report);

        // Buildings.
        let mut buildings = Vec::with_capacity(self.buildings.len());
        for raw in &self.buildings {
            let mut ring = raw.outer.iter().map(|&(x, y)| project(x, y)).collect::<Result<Vec<_>, _>>()?;
            ring.dedup();
            if ring.len() > 1 && ring.first() == ring.last() {
                ring.pop();
            }
            let signed = shapes::signed_area(&ring);
            if ring.len() < 3 || signed.abs() < MIN_BUILDING_AREA_M2 {
                report.drop("building with a degenerate footprint (fewer than 3 points or under 1 m²)");
                continue;
            }
            if signed < 0.0 {
                ring.reverse();
            }
            let d = &self.defaults;
            let (height_m, levels, source) = match (raw.height_m, raw.levels) {
                (Some(h), Some(l)) => (h, l.max(1.0), HeightSource::Tagged),
                (Some(h), None) => (h, (h / d.storey_height_m).round().max(1.0), HeightSource::Tagged),
                (None, Some(l)) => (l.max(1.0) * d.storey_height_m, l.max(1.0), HeightSource::Levels),
                (None, None) => (d.default_levels * d.storey_height_m, d.default_levels, HeightSource::Default),
            };
            let mut holes_m2 = 0.0;
            for inner in &raw.inner {
                let ring = inner.iter().map(|&(x, y)| project(x, y)).collect::<Result<Vec<_>, _>>()?;
                holes_m2 += shapes::area(&ring);
            }
            let footprint_m2 = (signed.abs() - holes_m2).max(MIN_BUILDING_AREA_M2) as f32;
            buildings.push(Building {
                source_id: raw.source_id.clone(),
                centroid: shapes::centroid(&ring),
                footprint: ring,
                footprint_m2,
                height_m,
                height_source: source,
                levels,
                floor_area_m2: footprint_m2 * levels,
                building_use: raw.building_use,
            });
        }

        // Split points: nodes used by two or more ways (or twice by one), way ends, signals.
        let mut use_count: HashMap<i64, u32> = HashMap::new();
        for w in &self.ways {
            for &(id, _, _) in &w.nodes {
                *use_count.entry(id).or_insert(0) += 1;
            }
        }
        let signals: std::collections::HashSet<i64> = self.signal_nodes.iter().copied().collect();
        let mut roads = GraphBuilder::new();
        let mut paths = GraphBuilder::new();
        let d = self.defaults.clone();
        let (mut road_centreline_m, mut lane_m) = (0.0f64, 0.0f64);
        for w in &self.ways {
            let pts = w.nodes.iter().map(|&(_, x, y)| project(x, y)).collect::<Result<Vec<_>, _>>()?;
            let mut start = 0;
            for i in 1..w.nodes.len() {
                let id = w.nodes[i].0;
                let last = i == w.nodes.len() - 1;
                if !(last || use_count[&id] > 1 || signals.contains(&id)) {
                    continue;
                }
                let piece = &pts[start..=i];
                let (a, b) = (w.nodes[start].0, id);
                let length = shapes::polyline_length(piece) as f32;
                if w.drivable && w.lanes_forward + w.lanes_backward > 0 {
                    road_centreline_m += length as f64;
                    lane_m += length as f64 * (w.lanes_forward + w.lanes_backward) as f64;
                }
                if w.drivable {
                    let na = roads.node(a, pts[start], signals.contains(&a));
                    let nb = roads.node(b, pts[i], signals.contains(&b));
                    let speed = w.speed_kmh / 3.6;
                    if w.lanes_forward > 0 {
                        roads.link(road_link(w, na, nb, piece.to_vec(), length, speed, w.lanes_forward));
                    }
                    if w.lanes_backward > 0 {
                        let rev: Vec<Vec2> = piece.iter().rev().copied().collect();
                        roads.link(road_link(w, nb, na, rev, length, speed, w.lanes_backward));
                    }
                }
                if w.walkable {
                    let na = paths.node(a, pts[start], false);
                    let nb = paths.node(b, pts[i], false);
                    let speed = d.walk_speed_mps * if w.class == WayClass::Steps { d.steps_speed_factor } else { 1.0 };
                    let rev: Vec<Vec2> = piece.iter().rev().copied().collect();
                    paths.link(road_link(w, na, nb, piece.to_vec(), length, speed, 1));
                    paths.link(road_link(w, nb, na, rev, length, speed, 1));
                }
                start = i;
            }
        }
        // Turn restrictions: from-way link ending at via, to-way link starting at via.
        let mut ending: HashMap<(i64, NodeId), Vec<LinkId>> = HashMap::new();
        let mut starting: HashMap<(i64, NodeId), Vec<LinkId>> = HashMap::new();
        for (i, l) in roads.links().iter().enumerate() {
            ending.entry((l.source_id, l.to)).or_default().push(LinkId(i as u32));
            starting.entry((l.source_id, l.from)).or_default().push(LinkId(i as u32));
        }
        let mut applied = 0;
        for r in &self.restrictions {
            let Some(via) = roads.node_by_source(r.via_node) else {
                report.drop("turn restriction whose via node is not on the road graph");
                continue;
            };
            let (Some(from), Some(to)) = (ending.get(&(r.from_way, via)), starting.get(&(r.to_way, via))) else {
                report.drop("turn restriction whose ways do not meet at its via node");
                continue;
            };
            for &f in from {
                for &t in to {
                    roads.restriction(TurnRestriction { from: f, to: t, rule: r.rule });
                }
            }
            applied += 1;
        }
        let mut roads = roads.build();
        let mut traffic_control = control::TrafficControl::default();
        if let Some(net) = &self.road_network {
            roads = net.graph.clone();
            traffic_control = net.control.clone();
        }
        let footpaths = paths.build();

        let bus_stops = self
            .bus_stops
            .iter()
            .map(|(id, name, x, y)| Ok(BusStop { source_id: *id, name: name.clone(), pos: project(*x, *y)? }))
            .collect::<InputResult<Vec<_>>>()?;
        let waterways = self
            .waterways
            .iter()
            .map(|w| {
                let line = w.line.iter().map(|&(x, y)| project(x, y)).collect::<Result<Vec<_>, _>>()?;
                Ok(Waterway {
                    source_id: w.source_id,
                    kind: w.kind.clone(),
                    name: w.name.clone(),
                    covered: w.covered,
                    line,
                })
            })
            .collect::<InputResult<Vec<_>>>()?;
        let terrain = match self.terrain.take() {
            Some((path, raster, cell)) => {
                let cell = cell.unwrap_or(raster.cell_x.min(raster.cell_y) as f32);
                Some(
                    resample_to_local(&raster, &frame, cell, None)
                        .map_err(|e| InputError::new(&path, "raster", e.to_string()))?,
                )
            }
            None => None,
        };

        report.buildings = buildings.len();
        report.buildings_with_height = buildings.iter().filter(|b| b.height_source == HeightSource::Tagged).count();
        report.buildings_with_levels = buildings.iter().filter(|b| b.height_source == HeightSource::Levels).count();
        report.buildings_with_default_height =
            buildings.iter().filter(|b| b.height_source == HeightSource::Default).count();
        report.buildings_by_use = BTreeMap::new();
        for b in &buildings {
            let key = serde_json::to_value(b.building_use).ok().and_then(|v| v.as_str().map(str::to_string));
            *report.buildings_by_use.entry(key.unwrap_or_default()).or_insert(0) += 1;
        }
        report.road_links = roads.links().len();
        report.road_km = road_centreline_m / 1000.0;
        report.lane_km = lane_m / 1000.0;
        report.footpath_links = footpaths.links().len();
        // Footpath links come in pairs (both directions): count the walkable length once.
        report.footpath_km = footpaths.total_link_length_m() / 2000.0;
        report.junctions = roads.junction_count();
        report.signals = roads.nodes().iter().filter(|n| n.signal).count();
        report.turn_restrictions = applied;
        report.bus_stops = bus_stops.len();
        report.bus_routes = self.bus_routes.len();
        report.waterways = waterways.len();
        report.waterway_km = waterways.iter().map(|w| shapes::polyline_length(&w.line)).sum::<f64>() / 1000.0;
        report.terrain = terrain.as_ref().map(|t| format!("{} x {} @ {} m", t.width, t.height, t.cell_m));

        let points = bus_stops.iter().enumerate().map(|(i, s)| (PointKind::BusStop, i as u32, s.pos));
        let signal_points = roads
            .nodes()
            .iter()
            .enumerate()
            .filter(|(_, n)| n.signal)
            .map(|(i, n)| (PointKind::Signal, i as u32, n.pos));
        Ok(City {
            name: self.name,
            defaults: self.defaults,
            road_index: LinkIndex::new(&roads),
            footpath_index: LinkIndex::new(&footpaths),
            building_index: BuildingIndex::new(&buildings),
            point_index: PointIndex::new(points.chain(signal_points).collect::<Vec<_>>()),
            frame,
            roads,
            footpaths,
            buildings,
            bus_stops,
            bus_routes: self.bus_routes,
            waterways,
            terrain,
            report,
            traffic_control,
            sumo_network: self.road_network,
            gtfs_feed: self.gtfs_feed,
        })
    }
}

/// Centre of a raster in WGS84 (used as the frame origin when a city has only terrain).
fn raster_centre_lon_lat(path: &std::path::Path, r: &Raster) -> InputResult<(f64, f64)> {
    let cx = r.origin_x + r.cell_x * r.width as f64 / 2.0;
    let cy = r.origin_y - r.cell_y * r.height as f64 / 2.0;
    r.crs.to_lon_lat(cx, cy).map_err(|e| InputError::new(path, "georeference", e.to_string()))
}

/// Footprints under this area (m²) are digitising slivers, not buildings.
const MIN_BUILDING_AREA_M2: f64 = 1.0;

fn road_link(
    w: &RawWay,
    from: NodeId,
    to: NodeId,
    geometry: Vec<Vec2>,
    length_m: f32,
    speed_mps: f32,
    lanes: u8,
) -> Link {
    Link {
        from,
        to,
        length_m,
        speed_mps,
        lanes,
        class: w.class,
        geometry,
        source_id: w.source_id,
        name: w.name.clone(),
        roundabout: w.roundabout,
    }
}
