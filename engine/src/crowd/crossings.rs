//! Crossings: footpath nodes where walkers cross roads, and when a walker may step onto the road.
//!
//! The coupling finds the crossings (footpath nodes at road junctions, signals and footway crossings;
//! `crate::coupling::crossings`) and, before every crowd step, tells each road *approach* that meets there
//! whether its vehicles may go (a green or yellow light) and when its next vehicle arrives. The crowd knows
//! no roads: only these approaches, each with the direction in which its vehicles arrive and the width of
//! its road.
//!
//! A walker keeps to its side of the street (the right where people keep right). Arriving at a crossing on
//! one road *arm* and leaving on another, it goes round the junction from corner to corner the way that
//! crosses fewer arms: walking straight on, it crosses the side street on its side; turning towards its own
//! side, nothing; turning across, the arms between (either way round, whichever is open first when both
//! cross as many). An arm within 30° of the way it arrives or leaves is that way's arm. An arm's crossing
//! conflicts with the vehicles arriving on that arm and those driving straight into it (from the opposite
//! arm, within 45°: the axis split of generated signal plans). The walker steps onto the road only when every
//! approach in conflict with its way
//! - shows its vehicles red, where a signal controls it (walkers cross with the parallel traffic's green), and
//! - has no vehicle arriving within the walker's critical gap, the time to cross that road at the walker's own
//!   speed plus a start-up and clearance time: t_c = L / S_p + t_s (HCM 2010, ch. 19, pedestrian critical
//!   headway at uncontrolled crossings, t_s = 3 s).
//!
//! Otherwise it waits on the kerb: half the widest crossed road's width plus its own radius before the node.
//! A walker already on the road goes on. Simplifications: the walker crosses all the arms of its way in one
//! go (it does not wait again on an island or a far corner); vehicles turning into a crossed arm are not
//! waited for (only straight ones), nor is an arm only vehicles leave by (one way out); vehicles do not
//! yield to walkers (the coupling is one-way: the vehicle models never see the crowd), which is what a
//! delivery robot, bound not to obstruct traffic, and a cautious pedestrian do.

use crate::city::graph::{Graph, LinkId, NodeId};
use glam::Vec2;

/// Parameters of the crossing rule.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossingParams {
    /// Start-up and clearance time added to the time to cross (s): 3 s, HCM 2010's t_s in the pedestrian
    /// critical headway t_c = L / S_p + t_s (ch. 19).
    pub start_up_s: f32,
    /// A road arm within this angle (rad) of the way a walker arrives or leaves is that way's arm: π/6.
    pub same_arm_rad: f32,
    /// Vehicles heading within this angle (rad) of an arm's direction drive straight into it: π/4, the axis
    /// split of generated signal plans.
    pub straight_rad: f32,
}

impl Default for CrossingParams {
    fn default() -> Self {
        CrossingParams {
            start_up_s: 3.0,
            same_arm_rad: std::f32::consts::FRAC_PI_6,
            straight_rad: std::f32::consts::FRAC_PI_4,
        }
    }
}

/// A walker arriving at a crossing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossingWalker {
    /// Direction it arrives in (unit vector).
    pub arrive: Vec2,
    /// Direction it leaves in (unit vector).
    pub leave: Vec2,
    /// Its walking speed (m/s).
    pub speed_mps: f32,
    /// Its body radius (m).
    pub radius_m: f32,
    /// Whether it keeps to the right of the street (else to the left).
    pub keeps_right: bool,
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

    /// Where `walker` must wait before crossing `k`: its distance from the node (m), or `None` when it may
    /// cross now (or crosses no road there).
    pub fn wait_before(&self, k: usize, walker: &CrossingWalker) -> Option<f32> {
        let range = self.start[k] as usize..self.start[k + 1] as usize;
        let (approaches, traffic) = (&self.approaches[range.clone()], &self.traffic[range]);
        let holds = |a: &Approach, t: &ApproachTraffic| {
            t.vehicles_go || t.next_vehicle_s < a.width_m / walker.speed_mps.max(f32::EPSILON) + self.params.start_up_s
        };
        // Most of the time nothing at the crossing holds anyone.
        if !approaches.iter().zip(traffic).any(|(a, t)| holds(a, t)) {
            return None;
        }
        // Bearings counter-clockwise from the arm the walker arrives on (rad, 0..2π).
        let from = (-walker.arrive).to_angle();
        let tau = std::f32::consts::TAU;
        let turn = |v: Vec2| (v.to_angle() - from).rem_euclid(tau);
        let leave = turn(walker.leave);
        let near = |a: f32, b: f32| {
            let d = (a - b).rem_euclid(tau);
            d.min(tau - d) < self.params.same_arm_rad
        };
        // Way 0: the arms strictly between the arrival's corner and the leaving corner going round on the
        // walker's side; way 1, the other way round, crosses the rest (its own two arms included).
        let way_of = |a: &Approach| {
            let arm = turn(-a.heading);
            let between = !near(arm, 0.0) && !near(arm, leave) && ((arm < leave) == walker.keeps_right);
            (!between) as usize
        };
        let straight_cos = self.params.straight_rad.cos();
        let mut ways = [Way::default(), Way::default()];
        for a in approaches {
            let way = &mut ways[way_of(a)];
            way.arms += 1;
            way.widest_m = way.widest_m.max(a.width_m);
        }
        // An arm's crossing is held by its own approach and by the vehicles driving straight into it.
        for (a, t) in approaches.iter().zip(traffic) {
            if !holds(a, t) {
                continue;
            }
            ways[way_of(a)].blocked = true;
            for b in approaches {
                if a.heading.dot(-b.heading) >= straight_cos {
                    ways[way_of(b)].blocked = true;
                }
            }
        }
        let [short, long] = ways;
        let wait = |w: &Way| w.widest_m / 2.0 + walker.radius_m;
        match short.arms.cmp(&long.arms) {
            std::cmp::Ordering::Less => short.blocked.then(|| wait(&short)),
            std::cmp::Ordering::Greater => long.blocked.then(|| wait(&long)),
            std::cmp::Ordering::Equal => {
                (short.arms > 0 && short.blocked && long.blocked).then(|| wait(&short).max(wait(&long)))
            }
        }
    }
}

/// One way round a junction: the arms crossed, the widest of them (m), whether any holds the walker.
#[derive(Clone, Copy, Debug, Default)]
struct Way {
    arms: usize,
    widest_m: f32,
    blocked: bool,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::city::graph::GraphBuilder;
    use crate::import::tags::WayClass;

    /// A footpath from `arm_m` west (link 0) to a crossing node at the origin and on to `arm_m` east
    /// (link 1); the crossing has a north–south road (7 m wide, one approach from each side).
    pub(crate) fn crossing(arm_m: f32) -> (Graph, Crossings) {
        let mut g = GraphBuilder::new();
        let w = g.node(1, Vec2::new(-arm_m, 0.0), false);
        let c = g.node(2, Vec2::ZERO, false);
        let e = g.node(3, Vec2::new(arm_m, 0.0), false);
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
        let (graph, crossings) = crossing(20.0);
        assert_eq!(crossings.len(), 1);
        let into: Vec<usize> =
            (0..graph.links().len()).filter_map(|l| crossings.at_link_end(LinkId(l as u32))).collect();
        assert_eq!(into, vec![0]);
        assert_eq!(crossings.at_link_end(LinkId(1)), None);
        assert_eq!(crossings.approaches(0).len(), 2);
    }

    fn walker(arrive: Vec2, leave: Vec2, speed_mps: f32, radius_m: f32) -> CrossingWalker {
        CrossingWalker { arrive, leave, speed_mps, radius_m, keeps_right: true }
    }

    #[test]
    fn walkers_across_a_road_wait_for_the_light_of_both_its_directions() {
        let (_, mut c) = crossing(20.0);
        let east = walker(Vec2::X, Vec2::X, 1.3, 0.25);
        assert_eq!(c.wait_before(0, &east), None, "clear road");
        for (k, other) in [(0, 1), (1, 0)] {
            c.traffic_mut()[k].vehicles_go = true;
            c.traffic_mut()[other].vehicles_go = false;
            assert_eq!(c.wait_before(0, &east), Some(3.5 + 0.25), "green for approach {k}");
            let west = walker(-Vec2::X, -Vec2::X, 1.3, 0.25);
            assert_eq!(c.wait_before(0, &west), Some(3.5 + 0.25), "green for approach {k}, walking west");
        }
        // Walking along the road, nothing is crossed.
        assert_eq!(c.wait_before(0, &walker(Vec2::Y, Vec2::Y, 1.3, 0.25)), None);
    }

    #[test]
    fn walkers_take_a_gap_as_long_as_their_crossing_time_plus_start_up() {
        let (_, mut c) = crossing(20.0);
        // 7 m at 1.4 m/s = 5 s, plus 3 s: a vehicle 8.1 s away leaves room, one 7.9 s away does not.
        c.traffic_mut()[0].next_vehicle_s = 8.1;
        let slow = walker(-Vec2::X, -Vec2::X, 1.4, 0.45);
        assert_eq!(c.wait_before(0, &slow), None);
        c.traffic_mut()[0].next_vehicle_s = 7.9;
        assert_eq!(c.wait_before(0, &slow), Some(3.5 + 0.45));
        // A faster walker needs less: 7 m at 7/4.8 m/s = 4.8 s, plus 3 s = 7.8 s.
        assert_eq!(c.wait_before(0, &walker(-Vec2::X, -Vec2::X, 7.0 / 4.8, 0.45)), None);
    }

    /// A four-arm junction: one approach per arm, arriving from the west, south, east and north (headings
    /// east, north, west, south); 7 m wide roads.
    fn four_arms() -> Crossings {
        let mut g = GraphBuilder::new();
        let c = g.node(0, Vec2::ZERO, false);
        let w = g.node(1, Vec2::new(-20.0, 0.0), false);
        g.straight(w, c, 1.3, 1, WayClass::Footway);
        let graph = g.build();
        let road = |heading: Vec2| Approach { heading, width_m: 7.0 };
        let approaches = vec![road(Vec2::X), road(Vec2::Y), road(-Vec2::X), road(-Vec2::Y)];
        Crossings::new(&graph, vec![(c, approaches)], CrossingParams::default())
    }

    #[test]
    fn at_a_junction_a_walker_crosses_the_arms_between_its_corners() {
        let mut c = four_arms();
        // Only the south arm's vehicles (arriving northwards) have green.
        c.traffic_mut()[1].vehicles_go = true;
        let from_west = |leave: Vec2, keeps_right: bool| CrossingWalker {
            arrive: Vec2::X,
            leave,
            speed_mps: 1.3,
            radius_m: 0.25,
            keeps_right,
        };
        // Keeping right, a walker from the west is on the south side: straight on or turning right (south)
        // it crosses the south arm; turning left (north), the south and east arms or the west and north ones
        // (the north arm held by the south arm's straight traffic): held either way.
        assert!(c.wait_before(0, &from_west(Vec2::X, true)).is_some(), "straight on");
        assert_eq!(c.wait_before(0, &from_west(-Vec2::Y, true)), None, "turning right crosses nothing");
        assert!(c.wait_before(0, &from_west(Vec2::Y, true)).is_some(), "turning left");
        // Keeping left, on the north side: straight on it crosses the north arm, held by the vehicles
        // driving north into it; turning left (north) crosses nothing.
        assert!(c.wait_before(0, &from_west(Vec2::X, false)).is_some());
        assert_eq!(c.wait_before(0, &from_west(Vec2::Y, false)), None);
        // Green for the east–west street instead: straight on along it (on either side) crosses only arms
        // whose traffic is red.
        c.traffic_mut()[1].vehicles_go = false;
        c.traffic_mut()[0].vehicles_go = true;
        c.traffic_mut()[2].vehicles_go = true;
        assert_eq!(c.wait_before(0, &from_west(Vec2::X, true)), None);
        assert_eq!(c.wait_before(0, &from_west(Vec2::X, false)), None);
        // Turning left across the east–west traffic is held.
        assert!(c.wait_before(0, &from_west(Vec2::Y, true)).is_some());
    }
}
