//! Crossings: footpath nodes where walkers cross roads, and when a walker may step onto the road.
//!
//! The coupling finds the crossings (footpath nodes at road junctions, signals and footway crossings;
//! `crate::coupling::crossings`) and, before every crowd step, tells each road *approach* that meets there
//! whether its vehicles may go (a green or yellow light) and when its next vehicle arrives. The crowd knows
//! no roads: only these approaches, each with the direction in which its vehicles arrive and the width of
//! its road.
//!
//! A walker heading for a crossing crosses the approaches that run across its heading (more than 45° from
//! it, the split junctions use to group approaches into axes; `crate::mobility::junctions`). It steps onto the
//! road only when every one of them
//! - shows its vehicles red, where a signal controls it (walkers cross with the parallel traffic's green), and
//! - has no vehicle arriving within the walker's critical gap, the time to cross that road at the walker's own
//!   speed plus a start-up and clearance time: t_c = L / S_p + t_s (HCM 2010, ch. 19, pedestrian critical
//!   headway at uncontrolled crossings, t_s = 3 s).
//!
//! Otherwise it waits on the kerb: half the widest crossed road's width plus its own radius before the node.
//! A walker already on the road goes on. Vehicles do not yield to walkers in this model (it is one-way: the
//! vehicle models never see the crowd), so the rule is what a delivery robot does, which must not obstruct
//! traffic, and a cautious pedestrian.

use crate::city::graph::{Graph, LinkId, NodeId};
use glam::Vec2;

/// Parameters of the crossing rule.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossingParams {
    /// Start-up and clearance time added to the time to cross (s): 3 s, HCM 2010's t_s in the pedestrian
    /// critical headway t_c = L / S_p + t_s (ch. 19).
    pub start_up_s: f32,
    /// An approach more than this far from the walker's heading (rad) runs across it: π/4, the axis split of
    /// generated signal plans.
    pub across_angle_rad: f32,
}

impl Default for CrossingParams {
    fn default() -> Self {
        CrossingParams { start_up_s: 3.0, across_angle_rad: std::f32::consts::FRAC_PI_4 }
    }
}

/// A road approach at a crossing, as the crowd sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Approach {
    /// Direction in which its vehicles arrive (unit vector, local frame).
    pub heading: Vec2,
    /// Width of its road, both directions (m).
    pub width_m: f32,
}

/// The traffic on an approach now, as the coupling last set it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ApproachTraffic {
    /// Its vehicles may go: a green or yellow light. Walkers across it wait.
    pub vehicles_go: bool,
    /// Time until its next moving vehicle reaches the crossing (s); infinite when none is coming.
    pub next_vehicle_s: f32,
}

impl ApproachTraffic {
    /// No light against the walker and no vehicle coming.
    pub const CLEAR: ApproachTraffic = ApproachTraffic { vehicles_go: false, next_vehicle_s: f32::INFINITY };
}

/// No crossing at this node or link end.
const NONE: u32 = u32::MAX;

/// The crossings of a footpath graph and the traffic at them.
#[derive(Clone, Debug, Default)]
pub struct Crossings {
    params: CrossingParams,
    /// The crossing at each footpath link's end (`NONE`: none).
    at_link_end: Vec<u32>,
    /// The node of each crossing.
    nodes: Vec<NodeId>,
    /// `approaches[start[k]..start[k + 1]]` meet at crossing `k`.
    start: Vec<u32>,
    approaches: Vec<Approach>,
    traffic: Vec<ApproachTraffic>,
}

impl Crossings {
    /// The crossings `sites` (a footpath node and the approaches that meet there) of `footpaths`; traffic
    /// clear on every approach until set. A node listed twice keeps its first entry.
    pub fn new(footpaths: &Graph, sites: Vec<(NodeId, Vec<Approach>)>, params: CrossingParams) -> Crossings {
        let mut at_node = vec![NONE; footpaths.nodes().len()];
        let mut c = Crossings { params, start: vec![0], ..Crossings::default() };
        for (node, approaches) in sites {
            if approaches.is_empty() || at_node[node.0 as usize] != NONE {
                continue;
            }
            at_node[node.0 as usize] = c.nodes.len() as u32;
            c.nodes.push(node);
            c.approaches.extend(approaches);
            c.start.push(c.approaches.len() as u32);
        }
        c.at_link_end = footpaths.links().iter().map(|l| at_node[l.to.0 as usize]).collect();
        c.traffic = vec![ApproachTraffic::CLEAR; c.approaches.len()];
        c
    }

    /// Number of crossings.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The footpath node of crossing `k`.
    pub fn node(&self, k: usize) -> NodeId {
        self.nodes[k]
    }

    /// The approaches of crossing `k`.
    pub fn approaches(&self, k: usize) -> &[Approach] {
        &self.approaches[self.start[k] as usize..self.start[k + 1] as usize]
    }

    /// The crossing at the end of footpath link `link`, if any.
    pub fn at_link_end(&self, link: LinkId) -> Option<usize> {
        self.at_link_end.get(link.0 as usize).copied().filter(|&k| k != NONE).map(|k| k as usize)
    }

    /// The traffic of every approach, crossing by crossing, in the order of [`Crossings::approaches`]: the
    /// coupling writes it before each step.
    pub fn traffic_mut(&mut self) -> &mut [ApproachTraffic] {
        &mut self.traffic
    }

    /// Where a walker arriving at crossing `k` with unit heading `heading`, speed `speed_mps` (m/s) and
    /// body radius `radius_m` (m) must wait: its distance from the node (m), or `None` when it may cross now
    /// (or crosses no road there).
    pub fn wait_before(&self, k: usize, heading: Vec2, speed_mps: f32, radius_m: f32) -> Option<f32> {
        let range = self.start[k] as usize..self.start[k + 1] as usize;
        let across_cos = self.params.across_angle_rad.cos();
        let mut widest: Option<f32> = None;
        let mut blocked = false;
        for (a, t) in self.approaches[range.clone()].iter().zip(&self.traffic[range]) {
            if a.heading.dot(heading).abs() >= across_cos {
                continue;
            }
            widest = Some(widest.map_or(a.width_m, |w| w.max(a.width_m)));
            let critical_gap_s = a.width_m / speed_mps.max(f32::EPSILON) + self.params.start_up_s;
            blocked |= t.vehicles_go || t.next_vehicle_s < critical_gap_s;
        }
        match (blocked, widest) {
            (true, Some(w)) => Some(w / 2.0 + radius_m),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::graph::GraphBuilder;
    use crate::import::tags::WayClass;

    /// A footpath from the west to a crossing node at the origin and on to the east; the crossing has a
    /// north–south road (7 m wide, one approach from each side).
    fn crossing() -> (Graph, Crossings) {
        let mut g = GraphBuilder::new();
        let w = g.node(1, Vec2::new(-20.0, 0.0), false);
        let c = g.node(2, Vec2::ZERO, false);
        let e = g.node(3, Vec2::new(20.0, 0.0), false);
        g.straight(w, c, 1.3, 1, WayClass::Footway);
        g.straight(c, e, 1.3, 1, WayClass::Footway);
        let graph = g.build();
        let road = |heading: Vec2| Approach { heading, width_m: 7.0 };
        let crossings =
            Crossings::new(&graph, vec![(c, vec![road(Vec2::Y), road(-Vec2::Y)])], CrossingParams::default());
        (graph, crossings)
    }

    #[test]
    fn a_crossing_is_found_at_the_end_of_the_links_into_its_node() {
        let (graph, crossings) = crossing();
        assert_eq!(crossings.len(), 1);
        let into: Vec<usize> =
            (0..graph.links().len()).filter_map(|l| crossings.at_link_end(LinkId(l as u32))).collect();
        assert_eq!(into, vec![0]);
        assert_eq!(crossings.at_link_end(LinkId(1)), None);
        assert_eq!(crossings.approaches(0).len(), 2);
    }

    #[test]
    fn walkers_wait_for_the_light_of_the_road_across_them_only() {
        let (_, mut c) = crossing();
        assert_eq!(c.wait_before(0, Vec2::X, 1.3, 0.25), None, "clear road");
        c.traffic_mut()[1].vehicles_go = true;
        assert_eq!(c.wait_before(0, Vec2::X, 1.3, 0.25), Some(3.5 + 0.25), "green for the road across");
        // Walking along the road, nothing is crossed.
        assert_eq!(c.wait_before(0, Vec2::Y, 1.3, 0.25), None);
        assert_eq!(c.wait_before(0, Vec2::new(0.6, 0.8), 1.3, 0.25), None, "37° off the road: along it");
        assert!(c.wait_before(0, Vec2::new(0.8, 0.6), 1.3, 0.25).is_some(), "53° off the road: across it");
    }

    #[test]
    fn walkers_take_a_gap_as_long_as_their_crossing_time_plus_start_up() {
        let (_, mut c) = crossing();
        // 7 m at 1.4 m/s = 5 s, plus 3 s: a vehicle 8.1 s away leaves room, one 7.9 s away does not.
        c.traffic_mut()[0].next_vehicle_s = 8.1;
        assert_eq!(c.wait_before(0, -Vec2::X, 1.4, 0.45), None);
        c.traffic_mut()[0].next_vehicle_s = 7.9;
        assert_eq!(c.wait_before(0, -Vec2::X, 1.4, 0.45), Some(3.5 + 0.45));
        // A faster walker needs less: 7 m at 7/4.8 m/s = 4.8 s, plus 3 s = 7.8 s.
        assert_eq!(c.wait_before(0, -Vec2::X, 7.0 / 4.8, 0.45), None);
    }
}
