//! The static scene sidewalk agents move through: buildings as rapier3d colliders (each footprint a closed
//! polyline at ground level), the walk line of every footpath link, and the buildings near each link.
//!
//! Footpath geometry from OpenStreetMap often runs closer to a façade than a robot is wide (street centre
//! lines in old towns, mapping offsets). Each link's walk line is therefore densified and pushed away from
//! buildings until it keeps a clearance (the largest agent radius plus a margin). A building the line runs
//! *through* (an arcade, a passage, a mapping error) or that it cannot clear is a *passage* for that link:
//! agents on the link ignore it, and the count is reported. Every other building near a link is an obstacle
//! the motion model keeps clear of.
//!
//! rapier3d does the geometry: its BVH finds the buildings within range of each link segment (capsule
//! intersection queries), and its point projection gives an agent's closest point on a building.

use crate::city::graph::{Graph, LinkId};
use crate::geo::shapes;
use glam::Vec2;
use rapier3d::geometry::{BroadPhaseBvh, ColliderBuilder, ColliderHandle, ColliderSet};
use rapier3d::math::{Pose, Vector};
use rapier3d::parry::query::DefaultQueryDispatcher;
use rapier3d::parry::shape::Capsule;
use rapier3d::pipeline::QueryFilter;
use rapier3d::prelude::{IntegrationParameters, RigidBodySet};
use serde::Serialize;

/// Pushes of a walk line away from buildings before a building is declared a passage.
const PUSH_ITERATIONS: usize = 4;
/// Extra distance (m) a pushed point is moved beyond the clearance, so round-off keeps it outside.
const PUSH_SLACK_M: f32 = 1e-3;

/// How the scene is prepared.
#[derive(Clone, Debug)]
pub struct SceneParams {
    /// Distance (m) walk lines keep from buildings: the largest agent radius plus a margin.
    pub clearance_m: f32,
    /// Buildings within this distance (m) of a link's walk line are its obstacles.
    pub obstacle_range_m: f32,
    /// Walk lines are densified to points at most this far apart (m) before pushing.
    pub waypoint_spacing_m: f32,
}

impl Default for SceneParams {
    /// Clearance for the widest agent (a robot, [`super::ROBOT_RADIUS_M`]) plus 0.1 m; obstacles within 3 m
    /// (farther than an agent at 1.7 m/s reaches within the 1 s obstacle horizon); waypoints every metre.
    fn default() -> SceneParams {
        SceneParams { clearance_m: super::ROBOT_RADIUS_M + 0.1, obstacle_range_m: 3.0, waypoint_spacing_m: 1.0 }
    }
}

/// What preparing the scene found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SceneReport {
    /// Buildings in the scene.
    pub buildings: usize,
    /// Footpath links with a walk line.
    pub links: usize,
    /// (link, building) pairs where the link runs through or too close to the building to clear it.
    pub passages: usize,
    /// Walk-line points moved away from a building.
    pub pushed_points: usize,
}

/// Buildings as colliders, walk lines and per-link obstacles.
pub struct SidewalkScene {
    colliders: ColliderSet,
    handles: Vec<ColliderHandle>,
    footprints: Vec<Vec<Vec2>>,
    boxes: Vec<(Vec2, Vec2)>,
    walk_lines: Vec<Vec<Vec2>>,
    obstacles: Vec<Vec<u32>>,
    report: SceneReport,
}

fn v3(p: Vec2) -> Vector {
    Vector::new(p.x, p.y, 0.0)
}

impl SidewalkScene {
    /// Prepares the scene for `footpaths` among buildings with the given footprints (outer rings, m).
    pub fn new(footprints: Vec<Vec<Vec2>>, footpaths: &Graph, params: &SceneParams) -> SidewalkScene {
        let mut colliders = ColliderSet::new();
        let mut handles = Vec::with_capacity(footprints.len());
        let mut boxes = Vec::with_capacity(footprints.len());
        for (i, ring) in footprints.iter().enumerate() {
            let n = ring.len() as u32;
            let vertices = ring.iter().map(|&p| v3(p)).collect();
            let indices = (0..n).map(|k| [k, (k + 1) % n]).collect();
            let collider = ColliderBuilder::polyline(vertices, Some(indices)).user_data(i as u128).build();
            handles.push(colliders.insert(collider));
            boxes.push(shapes::bounds(ring.iter().copied()).unwrap_or((Vec2::ZERO, Vec2::ZERO)));
        }
        let mut broad_phase = BroadPhaseBvh::new();
        let bodies = RigidBodySet::new();
        broad_phase.update(&IntegrationParameters::default(), &colliders, &bodies, &handles, &[], &mut Vec::new());
        let mut scene = SidewalkScene {
            colliders,
            handles,
            footprints,
            boxes,
            walk_lines: Vec::with_capacity(footpaths.links().len()),
            obstacles: Vec::with_capacity(footpaths.links().len()),
            report: SceneReport::default(),
        };
        let dispatcher = DefaultQueryDispatcher;
        let query = broad_phase.as_query_pipeline(&dispatcher, &bodies, &scene.colliders, QueryFilter::default());
        let mut near = Vec::new();
        let mut passage = Vec::new();
        for link in footpaths.links() {
            // Buildings within reach of the link: pushing moves points at most the clearance.
            near.clear();
            let reach = params.obstacle_range_m + params.clearance_m;
            for w in link.geometry.windows(2) {
                let capsule = Capsule::new(v3(w[0]), v3(w[1]), reach);
                near.extend(query.intersect_shape(Pose::IDENTITY, &capsule).map(|(_, c)| c.user_data as u32));
            }
            near.sort_unstable();
            near.dedup();
            let mut line = densify(&link.geometry, params.waypoint_spacing_m);
            passage.clear();
            for _ in 0..PUSH_ITERATIONS {
                let mut moved = false;
                for p in line.iter_mut() {
                    for &b in near.iter() {
                        if passage.contains(&b) {
                            continue;
                        }
                        if shapes::contains(&scene.footprints[b as usize], *p) {
                            passage.push(b);
                            continue;
                        }
                        let q = scene.closest_point(b, *p);
                        let d = p.distance(q);
                        if d < params.clearance_m && d > 0.0 {
                            *p += (*p - q) / d * (params.clearance_m - d + PUSH_SLACK_M);
                            scene.report.pushed_points += 1;
                            moved = true;
                        }
                    }
                }
                if !moved {
                    break;
                }
            }
            // What could not be cleared is a passage too.
            for p in &line {
                for &b in near.iter() {
                    if !passage.contains(&b) && scene.clearance(b, *p) < params.clearance_m - PUSH_SLACK_M {
                        passage.push(b);
                    }
                }
            }
            scene.report.passages += passage.len();
            let mut obstacles: Vec<u32> = near.iter().copied().filter(|b| !passage.contains(b)).collect();
            obstacles.shrink_to_fit();
            scene.walk_lines.push(line);
            scene.obstacles.push(obstacles);
        }
        scene.report.buildings = scene.footprints.len();
        scene.report.links = scene.walk_lines.len();
        scene
    }

    /// What preparing the scene found.
    pub fn report(&self) -> &SceneReport {
        &self.report
    }

    /// The walk line of a footpath link (m), from its start to its end.
    pub fn walk_line(&self, link: LinkId) -> &[Vec2] {
        &self.walk_lines[link.0 as usize]
    }

    /// Number of footpath links (each has a walk line).
    pub fn link_count(&self) -> usize {
        self.walk_lines.len()
    }

    /// The buildings an agent on `link` keeps clear of.
    pub fn obstacles(&self, link: LinkId) -> &[u32] {
        &self.obstacles[link.0 as usize]
    }

    /// Distance (m) from `p` to the bounding box of building `b` (0 inside it).
    pub fn box_distance(&self, b: u32, p: Vec2) -> f32 {
        let (lo, hi) = self.boxes[b as usize];
        let d = (lo - p).max(p - hi).max(Vec2::ZERO);
        d.length()
    }

    /// The closest point (m) of building `b`'s outline to `p` (rapier's point projection).
    pub fn closest_point(&self, b: u32, p: Vec2) -> Vec2 {
        let collider = &self.colliders[self.handles[b as usize]];
        let proj = collider.shape().project_point(collider.position(), v3(p), false);
        Vec2::new(proj.point.x, proj.point.y)
    }

    /// Signed clearance (m) from `p` to building `b`: the distance to its outline, negative inside it.
    pub fn clearance(&self, b: u32, p: Vec2) -> f32 {
        let d = p.distance(self.closest_point(b, p));
        if shapes::contains(&self.footprints[b as usize], p) {
            -d
        } else {
            d
        }
    }

    /// The footprint (outer ring, m) of building `b`.
    pub fn footprint(&self, b: u32) -> &[Vec2] {
        &self.footprints[b as usize]
    }
}

/// `line` with extra points so that no two consecutive points are more than `spacing` apart.
fn densify(line: &[Vec2], spacing: f32) -> Vec<Vec2> {
    let mut out = Vec::with_capacity(line.len());
    for w in line.windows(2) {
        let pieces = (w[0].distance(w[1]) / spacing).ceil().max(1.0) as usize;
        for k in 0..pieces {
            out.push(w[0].lerp(w[1], k as f32 / pieces as f32));
        }
    }
    out.extend(line.last());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::graph::GraphBuilder;
    use crate::import::tags::WayClass;

    fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Vec<Vec2> {
        vec![Vec2::new(x0, y0), Vec2::new(x1, y0), Vec2::new(x1, y1), Vec2::new(x0, y1)]
    }

    fn params() -> SceneParams {
        SceneParams { clearance_m: 0.5, obstacle_range_m: 3.0, waypoint_spacing_m: 1.0 }
    }

    #[test]
    fn walk_line_is_pushed_clear_of_a_facade_and_passages_are_found() {
        // A path along y = 0 from x = 0 to 20; a façade 0.2 m north of it, and a building it runs through.
        let mut g = GraphBuilder::new();
        let a = g.node(1, Vec2::new(0.0, 0.0), false);
        let b = g.node(2, Vec2::new(20.0, 0.0), false);
        g.straight(a, b, 1.3, 1, WayClass::Footway);
        let graph = g.build();
        let footprints = vec![rect(2.0, 0.2, 8.0, 6.0), rect(12.0, -2.0, 14.0, 2.0), rect(0.0, 30.0, 5.0, 35.0)];
        let scene = SidewalkScene::new(footprints, &graph, &params());
        let line = scene.walk_line(LinkId(0));
        assert!(line.len() >= 21, "densified to 1 m: {}", line.len());
        for p in line {
            assert!(scene.clearance(0, *p) >= 0.5 - 1e-4, "{p} too close to the façade");
        }
        assert_eq!(scene.obstacles(LinkId(0)), &[0], "the far building is out of range, the crossed one a passage");
        assert_eq!(scene.report().passages, 1);
        assert!(scene.report().pushed_points > 0);
        // rapier's projection agrees with the geometry.
        assert!((scene.closest_point(0, Vec2::new(5.0, -1.0)) - Vec2::new(5.0, 0.2)).length() < 1e-5);
        assert!(scene.clearance(1, Vec2::new(13.0, 0.0)) < 0.0);
        assert_eq!(scene.box_distance(2, Vec2::new(2.0, 27.0)), 3.0);
    }
}
