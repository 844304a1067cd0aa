//! Junction control: who may enter a junction when — fixed-time traffic signals and priority (yield) rules.
//!
//! Every road link ends in one of four controls, which the microscopic model asks before a vehicle crosses:
//! - **free**: a node where at most two streets meet (a bend, a change of tags): nothing to yield to;
//! - **major** or **minor** at a priority junction (three or more streets, no signal): the straightest pair
//!   of the highest-class approaches has priority (SUMO's `priority` junction type; StVO §8 / Vienna
//!   Convention art. 18 for signed major roads); a vehicle on a minor approach enters only when no vehicle on
//!   a major approach would reach the junction within the critical gap; where a roundabout's carriageway
//!   arrives ([`crate::city::graph::Link::roundabout`]), it is the major approach whatever the classes
//!   (entering traffic gives way to circulating traffic, as the give-way signs at the entries of nearly
//!   every European roundabout say, and as SUMO's netconvert ranks roundabout edges);
//! - **signal**: a fixed-time plan (the common kind in European towns, and SUMO's default `static` program).
//!
//! OSM maps signals as `highway=traffic_signals` nodes, often one on each approach a few metres before the
//! junction. Signal nodes within [`SignalParams::cluster_radius_m`] of each other form one *controller* with
//! one plan, so the approaches of one junction are coordinated as the real controller does. Where no plan is
//! given (OSM has none), one is generated as SUMO's netconvert does for a `static` program: approaches are
//! split by direction into two groups (the axis of the most important approach, and the cross axis), each
//! gets its green share of the cycle in proportion to its lanes, separated by yellow and all-red; a
//! signal with a single axis (a mid-block pedestrian crossing) gets a walk phase instead of the cross
//! traffic's green. Imported networks (SUMO) bring their own plans, per movement.
//!
//! A turn across oncoming traffic at a green light (a *permissive* left turn, or right turn where traffic
//! keeps left) yields to the oncoming approach of the same controller: it enters only when no vehicle
//! there that has green or yellow and goes on straight or turns the other way would reach the junction
//! within [`SignalParams::permissive_gap_s`]. A turner still waiting at the line when the green ends may
//! clear in its yellow or the all-red right after once the oncoming traffic has stopped (HCM 2010's
//! "sneakers", one or two a cycle); since junctions are points, it still has to reach the line from where it
//! stopped before the clearance ends, so in the model this happens less often than in a real junction. The turn is read from the route: from the approach's direction at its signal towards
//! the route's first node beyond [`SignalParams::cluster_radius_m`], so it is seen where OSM puts the
//! signals a few metres up the approaches.
//! Simplifications, documented: other movements that both have green do not yield to each other, and two
//! major approaches of a priority junction do not conflict.

use crate::city::control::{Light, MovementSignal, Phase, SignalPlan, TrafficControl};
use crate::city::graph::{Graph, LinkId, NodeId};
use serde::{Deserialize, Serialize};
use std::f32::consts::PI;

/// Parameters of generated signal plans and of priority rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalParams {
    /// Cycle length (s): 90 s, netconvert's default `--tls.cycle.time`.
    pub cycle_s: f64,
    /// Yellow after each green (s): 3 s, the ITE minimum and netconvert's value for 50 km/h approaches.
    pub yellow_s: f64,
    /// All-red clearance after each yellow (s): 2 s (ITE recommended practice for urban junctions).
    pub all_red_s: f64,
    /// Shortest green of a group (s): 10 s (HCM 2010 minimum green for a through movement).
    pub min_green_s: f64,
    /// Walk phase of a signal on a single axis (a pedestrian crossing) (s): 15 s, a 12 m crossing at
    /// 1.2 m/s (HCM 2010 design walking speed) plus 5 s to start.
    pub crossing_walk_s: f64,
    /// Signal nodes this close form one controller (m): 30 m, about the size of an urban junction with
    /// its stop lines.
    pub cluster_radius_m: f32,
    /// Critical gap a vehicle on a minor approach needs before the next major vehicle arrives (s): 6.2 s,
    /// the HCM 2010 base critical gap for a right turn from a minor road (Exhibit 19-10).
    pub critical_gap_s: f64,
    /// Critical gap of a turn across oncoming traffic that has green too (a permissive left turn) (s):
    /// 4.1 s, the HCM 2010 base critical headway for a left turn from the major street (Exhibit 19-10).
    pub permissive_gap_s: f64,
    /// Traffic keeps left (Japan, the United Kingdom, Australia): the turn across oncoming traffic is then
    /// the right turn. Default: keeps right.
    pub drive_on_left: bool,
}

impl Default for SignalParams {
    fn default() -> Self {
        SignalParams {
            cycle_s: 90.0,
            yellow_s: 3.0,
            all_red_s: 2.0,
            min_green_s: 10.0,
            crossing_walk_s: 15.0,
            cluster_radius_m: 30.0,
            critical_gap_s: 6.2,
            permissive_gap_s: 4.1,
            drive_on_left: false,
        }
    }
}

/// How a link's end is controlled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Nothing to yield to.
    Free,
    /// Priority approach of a priority junction.
    Major,
    /// Yields to the major approaches of its end node.
    Minor,
    /// Signal index `index` of controller `controller` (for every movement out of the link, unless
    /// [`Junctions::movement_signals`] says otherwise for one).
    Signal {
        /// Index into [`Junctions::plans`].
        controller: u32,
        /// Signal index in the plan's phases.
        index: u16,
    },
}

/// Control of every link end, and the signal plans.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Junctions {
    /// Control at the end of each link, indexed by [`LinkId`].
    pub control: Vec<Control>,
    /// Per-movement signal indices that override the link's (imported plans), sorted by (from, to).
    pub movement_signals: Vec<MovementSignal>,
    /// Speed limits of turning movements through the junction (from, to, m/s), sorted by (from, to).
    pub turn_speeds: Vec<(LinkId, LinkId, f32)>,
    /// Major approaches of each node, indexed by [`NodeId`] (empty where there are none).
    pub majors: Vec<Vec<LinkId>>,
    /// Signal plans, one per controller.
    pub plans: Vec<SignalPlan>,
    /// Critical gap of minor approaches (s), from [`SignalParams::critical_gap_s`].
    pub critical_gap_s: f64,
    /// Per link ending at a signal: the approach of the same controller arriving from the opposite side
    /// (u32::MAX where there is none), indexed by [`LinkId`].
    pub opposing: Vec<u32>,
    /// Critical gap of a turn across oncoming traffic (s), from [`SignalParams::permissive_gap_s`].
    pub permissive_gap_s: f64,
    /// From [`SignalParams::drive_on_left`].
    pub drive_on_left: bool,
    /// How far from its signal a route is followed to see which way it turns (m), from
    /// [`SignalParams::cluster_radius_m`]: past the junction and the signals on its other arms.
    pub turn_reach_m: f32,
}

/// Links of a route looked through to see which way a vehicle turns: a junction with signals up its
/// approaches is crossed in three links (to the centre, to the exit street's signal, beyond), and one
/// more for a split centre.
const TURN_LOOKAHEAD_LINKS: usize = 4;

/// No opposing approach.
const NO_OPPOSING: u32 = u32::MAX;

/// Direction (rad) in which a link arrives at its end node.
fn arrival_bearing(graph: &Graph, link: LinkId) -> f32 {
    let g = &graph.link(link).geometry;
    let d = g[g.len() - 1] - g[g.len() - 2];
    d.y.atan2(d.x)
}

/// For every signal approach (link, controller), the approach of the same controller arriving from the
/// most nearly opposite direction, if one does within π/4 of it (indexed by link; [`NO_OPPOSING`] else).
fn opposing_approaches(graph: &Graph, approaches: &[(LinkId, u32)]) -> Vec<u32> {
    let mut opposing = vec![NO_OPPOSING; graph.links().len()];
    for &(l, c) in approaches {
        let bearing = arrival_bearing(graph, l);
        let best = approaches
            .iter()
            .filter(|&&(m, d)| d == c && m != l)
            .map(|&(m, _)| (((arrival_bearing(graph, m) - bearing).rem_euclid(2.0 * PI) - PI).abs(), m))
            .filter(|&(off, _)| off < PI / 4.0)
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if let Some((_, m)) = best {
            opposing[l.0 as usize] = m.0;
        }
    }
    opposing
}

/// Smallest angle (rad, 0..π/2) between two axes (directions modulo π).
fn axis_difference(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(PI);
    d.min(PI - d)
}

impl Junctions {
    /// Controls derived from the graph: priority junctions by road class and geometry, signal controllers
    /// from signal nodes with generated plans.
    pub fn generate(graph: &Graph, params: &SignalParams) -> Junctions {
        let n = graph.nodes().len();
        let into = graph.links_into();
        let neighbours = graph.neighbour_counts();
        let mut j = Junctions {
            control: vec![Control::Free; graph.links().len()],
            movement_signals: Vec::new(),
            turn_speeds: Vec::new(),
            majors: vec![Vec::new(); n],
            plans: Vec::new(),
            critical_gap_s: params.critical_gap_s,
            opposing: Vec::new(),
            permissive_gap_s: params.permissive_gap_s,
            drive_on_left: params.drive_on_left,
            turn_reach_m: params.cluster_radius_m,
        };
        // Signal controllers: clusters of signal nodes.
        let cluster = signal_clusters(graph, params.cluster_radius_m);
        let mut members: Vec<Vec<NodeId>> = Vec::new();
        for (node, c) in cluster.iter().enumerate() {
            if let Some(c) = *c {
                if members.len() <= c as usize {
                    members.resize(c as usize + 1, Vec::new());
                }
                members[c as usize].push(NodeId(node as u32));
            }
        }
        for (c, nodes) in members.iter().enumerate() {
            // Approaches: links into a member from outside that head towards the junction's centre (a link
            // leaving the junction through a signal node on the far side is not one).
            let centre = nodes.iter().map(|m| graph.node(*m).pos).sum::<glam::Vec2>() / nodes.len() as f32;
            let approaches: Vec<LinkId> = nodes
                .iter()
                .flat_map(|m| into[m.0 as usize].iter().copied())
                .filter(|&l| {
                    let link = graph.link(l);
                    cluster[link.from.0 as usize] != Some(c as u32)
                        && graph.node(link.from).pos.distance(centre) > graph.node(link.to).pos.distance(centre)
                })
                .collect();
            if approaches.is_empty() {
                continue;
            }
            let rank = |l: LinkId| (graph.link(l).class, std::cmp::Reverse(graph.link(l).lanes), l);
            let lead = *approaches.iter().min_by_key(|&&l| rank(l)).expect("not empty");
            let axis = arrival_bearing(graph, lead);
            let mut lanes = [0u32; 2];
            let mut groups = Vec::with_capacity(approaches.len());
            for &l in &approaches {
                let g = (axis_difference(arrival_bearing(graph, l), axis) > PI / 4.0) as usize;
                lanes[g] += graph.link(l).lanes as u32;
                groups.push((l, g as u16));
            }
            let controller = j.plans.len() as u32;
            j.plans.push(generated_plan(params, lanes));
            for (l, g) in groups {
                j.control[l.0 as usize] = Control::Signal { controller, index: g };
            }
        }
        // Priority junctions.
        for node in 0..n {
            if cluster[node].is_some() || neighbours[node] < 3 || into[node].len() < 2 {
                continue;
            }
            let ins = &into[node];
            let circulating: Vec<LinkId> = ins.iter().copied().filter(|&l| graph.link(l).roundabout).collect();
            if !circulating.is_empty() {
                for &l in ins {
                    j.control[l.0 as usize] = if graph.link(l).roundabout { Control::Major } else { Control::Minor };
                }
                j.majors[node] = circulating;
                continue;
            }
            let best_class = ins.iter().map(|&l| graph.link(l).class).min().expect("not empty");
            let top: Vec<LinkId> = ins.iter().copied().filter(|&l| graph.link(l).class == best_class).collect();
            // The straightest pair: approaches arriving from opposite sides (bearings nearest π apart),
            // at least one of them of the best class.
            let mut best: Option<(f32, LinkId, LinkId)> = None;
            for &a in &top {
                for &b in ins {
                    if a == b || graph.link(a).from == graph.link(b).from {
                        continue;
                    }
                    let d = (arrival_bearing(graph, a) - arrival_bearing(graph, b)).rem_euclid(2.0 * PI);
                    let straightness = (d - PI).abs() + if graph.link(b).class == best_class { 0.0 } else { PI };
                    if best.is_none_or(|(s, _, _)| straightness < s) {
                        best = Some((straightness, a, b));
                    }
                }
            }
            let majors: Vec<LinkId> = match best {
                Some((_, a, b)) => {
                    let mut m = vec![a.min(b), a.max(b)];
                    m.dedup();
                    m
                }
                None => top.clone(),
            };
            for &l in ins {
                j.control[l.0 as usize] = if majors.contains(&l) { Control::Major } else { Control::Minor };
            }
            j.majors[node] = majors;
        }
        j.opposing = opposing_approaches(graph, &j.signal_approaches());
        j
    }

    /// Links ending at a signal, with their controller (the first of their movements' for imported plans).
    fn signal_approaches(&self) -> Vec<(LinkId, u32)> {
        let mut approaches: Vec<(LinkId, u32)> = self
            .control
            .iter()
            .enumerate()
            .filter_map(|(l, c)| match c {
                Control::Signal { controller, .. } => Some((LinkId(l as u32), *controller)),
                _ => None,
            })
            .collect();
        approaches.extend(self.movement_signals.iter().map(|m| (m.from, m.controller)));
        approaches.sort_unstable();
        approaches.dedup_by_key(|a| a.0);
        approaches
    }

    /// The opposing approach a vehicle crosses when it comes in on `from`, which ends at a signal, and goes
    /// on along `ahead` (its route from the next link) turning towards the oncoming side: more than π/4 to
    /// the left (to the right where traffic keeps left), from `from`'s direction at the signal to the
    /// direction from the signal to the first node of the route farther than [`Junctions::turn_reach_m`]
    /// (or the last one looked at). That turn yields to the oncoming traffic that has green too.
    pub fn crosses_oncoming(&self, graph: &Graph, from: LinkId, ahead: &[LinkId]) -> Option<LinkId> {
        let opposing = *self.opposing.get(from.0 as usize).filter(|&&o| o != NO_OPPOSING)?;
        let origin = graph.node(graph.link(from).to).pos;
        let mut way_out = None;
        for &l in ahead.iter().take(TURN_LOOKAHEAD_LINKS) {
            let offset = graph.node(graph.link(l).to).pos - origin;
            way_out = Some(offset);
            if offset.length() > self.turn_reach_m {
                break;
            }
        }
        let way_out = way_out.filter(|w| w.length() > 0.0)?;
        let turn = (way_out.y.atan2(way_out.x) - arrival_bearing(graph, from) + PI).rem_euclid(2.0 * PI) - PI;
        let across = if self.drive_on_left { turn < -PI / 4.0 } else { turn > PI / 4.0 };
        across.then_some(LinkId(opposing))
    }

    /// Controls of an imported network: its signal programs and turn speeds where it has them, priority
    /// rules (as [`Junctions::generate`]) at its other junctions.
    pub fn from_control(graph: &Graph, imported: &TrafficControl, params: &SignalParams) -> Junctions {
        let mut j = Junctions::generate(graph, params);
        if imported.plans.is_empty() {
            j.turn_speeds = imported.turn_speeds.clone();
            j.turn_speeds.sort_by_key(|t| (t.0, t.1));
            return j;
        }
        let offset = j.plans.len() as u32;
        j.plans.extend(imported.plans.iter().cloned());
        let mut movements: Vec<MovementSignal> =
            imported.movements.iter().map(|m| MovementSignal { controller: m.controller + offset, ..*m }).collect();
        movements.sort_by_key(|m| (m.from, m.to));
        movements.dedup_by_key(|m| (m.from, m.to));
        for m in &movements {
            if !matches!(j.control[m.from.0 as usize], Control::Signal { .. }) {
                j.control[m.from.0 as usize] = Control::Signal { controller: m.controller, index: m.index };
                let node = graph.link(m.from).to.0 as usize;
                j.majors[node].retain(|&l| l != m.from);
            }
        }
        j.movement_signals = movements;
        j.turn_speeds = imported.turn_speeds.clone();
        j.turn_speeds.sort_by_key(|t| (t.0, t.1));
        j.opposing = opposing_approaches(graph, &j.signal_approaches());
        j
    }

    /// Speed limit (m/s) through the junction of the movement from `from` onto `to`, if one is known.
    pub fn turn_speed(&self, from: LinkId, to: LinkId) -> Option<f32> {
        let k = self.turn_speeds.partition_point(|t| (t.0, t.1) < (from, to));
        self.turn_speeds.get(k).filter(|t| t.0 == from && t.1 == to).map(|t| t.2)
    }

    /// Controller and signal index of the movement from `from` onto `to`, if signalised.
    pub fn signal_of(&self, from: LinkId, to: LinkId) -> Option<(u32, u16)> {
        if !self.movement_signals.is_empty() {
            let k = self.movement_signals.partition_point(|m| (m.from, m.to) < (from, to));
            if let Some(m) = self.movement_signals.get(k).filter(|m| m.from == from && m.to == to) {
                return Some((m.controller, m.index));
            }
        }
        match self.control[from.0 as usize] {
            Control::Signal { controller, index } => Some((controller, index)),
            _ => None,
        }
    }

    /// Number of signal controllers.
    pub fn signal_count(&self) -> usize {
        self.plans.len()
    }
}

/// The plan for a controller whose approaches split into two direction groups with `lanes` lanes each
/// (group 1 may have none: a crossing on one axis).
fn generated_plan(p: &SignalParams, lanes: [u32; 2]) -> SignalPlan {
    use Light::*;
    let clear = p.yellow_s + p.all_red_s;
    let phase = |duration_s: f64, lights: [Light; 2]| Phase { duration_s, lights: lights.to_vec() };
    if lanes[1] == 0 {
        let green = (p.cycle_s - p.crossing_walk_s - clear).max(p.min_green_s);
        return SignalPlan {
            offset_s: 0.0,
            phases: vec![
                phase(green, [Green, Red]),
                phase(p.yellow_s, [Yellow, Red]),
                phase(p.all_red_s + p.crossing_walk_s, [Red, Red]),
            ],
        };
    }
    let available = (p.cycle_s - 2.0 * clear).max(2.0 * p.min_green_s);
    let share = lanes[0] as f64 / (lanes[0] + lanes[1]) as f64;
    let g0 = (available * share).clamp(p.min_green_s, available - p.min_green_s);
    let g1 = available - g0;
    SignalPlan {
        offset_s: 0.0,
        phases: vec![
            phase(g0, [Green, Red]),
            phase(p.yellow_s, [Yellow, Red]),
            phase(p.all_red_s, [Red, Red]),
            phase(g1, [Red, Green]),
            phase(p.yellow_s, [Red, Yellow]),
            phase(p.all_red_s, [Red, Red]),
        ],
    }
}

/// Cluster of every signal node (`None` for nodes without a signal): signal nodes within `radius_m` of
/// each other, transitively, share a cluster. Clusters are numbered in order of their first node.
fn signal_clusters(graph: &Graph, radius_m: f32) -> Vec<Option<u32>> {
    let nodes = graph.nodes();
    let mut signals: Vec<u32> = (0..nodes.len() as u32).filter(|&k| nodes[k as usize].signal).collect();
    let mut parent: Vec<u32> = (0..nodes.len() as u32).collect();
    fn find(parent: &mut [u32], mut a: u32) -> u32 {
        while parent[a as usize] != a {
            parent[a as usize] = parent[parent[a as usize] as usize];
            a = parent[a as usize];
        }
        a
    }
    // Sweep along x: only pairs closer than the radius in x can join.
    signals.sort_by(|&a, &b| nodes[a as usize].pos.x.total_cmp(&nodes[b as usize].pos.x).then(a.cmp(&b)));
    for (i, &a) in signals.iter().enumerate() {
        let pa = nodes[a as usize].pos;
        for &b in &signals[i + 1..] {
            let pb = nodes[b as usize].pos;
            if pb.x - pa.x > radius_m {
                break;
            }
            if pa.distance(pb) <= radius_m {
                let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                let (lo, hi) = (ra.min(rb), ra.max(rb));
                parent[hi as usize] = lo;
            }
        }
    }
    let mut number: Vec<Option<u32>> = vec![None; nodes.len()];
    let mut out = vec![None; nodes.len()];
    let mut next = 0u32;
    for k in 0..nodes.len() as u32 {
        if !nodes[k as usize].signal {
            continue;
        }
        let root = find(&mut parent, k) as usize;
        let id = *number[root].get_or_insert_with(|| {
            next += 1;
            next - 1
        });
        out[k as usize] = Some(id);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::city::graph::GraphBuilder;
    use crate::import::tags::WayClass;
    use glam::Vec2;

    /// A cross of two two-way streets meeting at node 0: a primary one west–east, a residential one
    /// south–north, arms of `arm_m`; `signal` puts a signal on the centre.
    pub(crate) fn cross(arm_m: f32, signal: bool) -> Graph {
        let mut b = GraphBuilder::new();
        let c = b.node(0, Vec2::ZERO, signal);
        let arms = [
            (1, Vec2::new(-arm_m, 0.0)),
            (2, Vec2::new(arm_m, 0.0)),
            (3, Vec2::new(0.0, -arm_m)),
            (4, Vec2::new(0.0, arm_m)),
        ];
        for (id, p) in arms {
            let n = b.node(id, p, false);
            let class = if id <= 2 { WayClass::Primary } else { WayClass::Residential };
            b.straight(n, c, 50.0 / 3.6, 1, class);
            b.straight(c, n, 50.0 / 3.6, 1, class);
        }
        b.build()
    }

    /// A one-way residential ring of four nodes (0 east, then anticlockwise), tagged as a roundabout or
    /// not, and a primary road entering and leaving at node 0 from the east; the entry link and the ring's
    /// links, the last arriving at node 0.
    fn roundabout(tagged: bool) -> (Graph, LinkId, Vec<LinkId>) {
        let mut b = GraphBuilder::new();
        let ring: Vec<NodeId> = [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)]
            .iter()
            .enumerate()
            .map(|(k, &(x, y))| b.node(k as i64, Vec2::new(x, y) * 20.0, false))
            .collect();
        let circle = (0..4)
            .map(|k| {
                let (from, to) = (ring[k], ring[(k + 1) % 4]);
                let geometry = vec![b.node_pos(from), b.node_pos(to)];
                b.link(crate::city::graph::Link {
                    from,
                    to,
                    length_m: geometry[0].distance(geometry[1]),
                    speed_mps: 30.0 / 3.6,
                    lanes: 1,
                    class: WayClass::Residential,
                    geometry,
                    source_id: 0,
                    name: None,
                    roundabout: tagged,
                })
            })
            .collect();
        let outside = b.node(10, Vec2::new(120.0, 0.0), false);
        let entry = b.straight(outside, ring[0], 50.0 / 3.6, 1, WayClass::Primary);
        b.straight(ring[0], outside, 50.0 / 3.6, 1, WayClass::Primary);
        (b.build(), entry, circle)
    }

    #[test]
    fn a_left_turn_is_seen_where_the_signals_stand_up_the_approaches() {
        // An untagged centre (node 0), a signal 5 m up each arm (nodes 11..14), arms ending 300 m out
        // (nodes 1..4: west, east, south, north).
        let mut b = GraphBuilder::new();
        let centre = b.node(0, Vec2::ZERO, false);
        let mut link_of = std::collections::HashMap::new();
        for (k, dir) in [Vec2::NEG_X, Vec2::X, Vec2::NEG_Y, Vec2::Y].into_iter().enumerate() {
            let signal = b.node(11 + k as i64, dir * 5.0, true);
            let end = b.node(1 + k as i64, dir * 300.0, false);
            for (from, to) in [(end, signal), (signal, centre), (centre, signal), (signal, end)] {
                link_of.insert((from, to), b.straight(from, to, 50.0 / 3.6, 1, WayClass::Secondary));
            }
        }
        let graph = b.build();
        let j = Junctions::generate(&graph, &SignalParams::default());
        let node = |source: i64| NodeId(graph.nodes().iter().position(|n| n.source_id == source).unwrap() as u32);
        let path =
            |nodes: &[i64]| -> Vec<LinkId> { nodes.windows(2).map(|w| link_of[&(node(w[0]), node(w[1]))]).collect() };
        // From the west: in to the west signal, then on through the centre.
        let approach = path(&[1, 11])[0];
        assert!(j.crosses_oncoming(&graph, approach, &path(&[11, 0, 14, 4])).is_some(), "left, to the north");
        assert!(j.crosses_oncoming(&graph, approach, &path(&[11, 0, 12, 2])).is_none(), "straight on");
        assert!(j.crosses_oncoming(&graph, approach, &path(&[11, 0, 13, 3])).is_none(), "right, to the south");
    }

    #[test]
    fn circulating_traffic_has_priority_at_a_roundabout_whatever_the_classes() {
        // Untagged, the ring is a residential street and the primary road has priority.
        let (graph, entry, _) = roundabout(false);
        let j = Junctions::generate(&graph, &SignalParams::default());
        assert_eq!(j.control[entry.0 as usize], Control::Major);
        // Tagged, the traffic arriving round the ring has it.
        let (graph, entry, circle) = roundabout(true);
        let j = Junctions::generate(&graph, &SignalParams::default());
        assert_eq!(j.control[circle[3].0 as usize], Control::Major);
        assert_eq!(j.control[entry.0 as usize], Control::Minor);
        assert_eq!(j.majors[0], vec![circle[3]]);
    }

    #[test]
    fn a_plan_cycles_through_its_phases() {
        let plan = generated_plan(&SignalParams::default(), [2, 2]);
        assert!((plan.cycle_s() - 90.0).abs() < 1e-9);
        // Equal lanes: 40 s of green each.
        assert_eq!(plan.light(0, 0.0), Light::Green);
        assert_eq!(plan.light(0, 39.9), Light::Green);
        assert_eq!(plan.light(0, 40.5), Light::Yellow);
        assert_eq!(plan.light(0, 44.0), Light::Red);
        assert_eq!(plan.light(1, 44.0), Light::Red);
        assert_eq!(plan.light(1, 45.5), Light::Green);
        assert_eq!(plan.light(0, 90.0 + 1.0), Light::Green);
        // Never green for both groups at once.
        for k in 0..900 {
            let t = k as f64 * 0.1;
            assert!(!(plan.light(0, t) == Light::Green && plan.light(1, t) == Light::Green), "{t}");
        }
        // More lanes, more green; a crossing gets a walk phase.
        let uneven = generated_plan(&SignalParams::default(), [3, 1]);
        assert!((uneven.phases[0].duration_s - 60.0).abs() < 1e-9, "{:?}", uneven.phases[0]);
        let crossing = generated_plan(&SignalParams::default(), [2, 0]);
        assert!((crossing.cycle_s() - 90.0).abs() < 1e-9);
        assert_eq!(crossing.light(0, 80.0), Light::Red);
    }

    #[test]
    fn a_cross_is_a_priority_junction_for_the_primary_street() {
        let g = cross(100.0, false);
        let j = Junctions::generate(&g, &SignalParams::default());
        assert_eq!(j.signal_count(), 0);
        for (k, l) in g.links().iter().enumerate() {
            let expected = if l.to != NodeId(0) {
                Control::Free
            } else if l.class == WayClass::Primary {
                Control::Major
            } else {
                Control::Minor
            };
            assert_eq!(j.control[k], expected, "link {k}");
        }
        assert_eq!(j.majors[0].len(), 2);
    }

    #[test]
    fn a_signalised_cross_gets_two_groups_by_axis() {
        let g = cross(100.0, true);
        let j = Junctions::generate(&g, &SignalParams::default());
        assert_eq!(j.signal_count(), 1);
        let mut groups = [Vec::new(), Vec::new()];
        for (k, l) in g.links().iter().enumerate() {
            if let Control::Signal { index, .. } = j.control[k] {
                groups[index as usize].push(l.class);
            } else {
                assert_ne!(l.to, NodeId(0));
            }
        }
        assert_eq!(groups[0], vec![WayClass::Primary; 2]);
        assert_eq!(groups[1], vec![WayClass::Residential; 2]);
    }

    #[test]
    fn signals_on_the_approaches_form_one_controller() {
        // A west–east street with signal nodes 10 m either side of a junction with a side street.
        let mut b = GraphBuilder::new();
        let pts = [(1, -200.0, false), (2, -10.0, true), (3, 0.0, false), (4, 10.0, true), (5, 200.0, false)];
        let ids: Vec<NodeId> = pts.iter().map(|&(id, x, s)| b.node(id, Vec2::new(x, 0.0), s)).collect();
        for w in ids.windows(2) {
            b.straight(w[0], w[1], 13.9, 1, WayClass::Secondary);
            b.straight(w[1], w[0], 13.9, 1, WayClass::Secondary);
        }
        let side = b.node(6, Vec2::new(0.0, 150.0), false);
        b.straight(side, ids[2], 13.9, 1, WayClass::Residential);
        let g = b.build();
        let j = Junctions::generate(&g, &SignalParams::default());
        assert_eq!(j.signal_count(), 1);
        // The approaches from outside the cluster are signalised; the links inside it are not.
        let signalised: Vec<(i64, i64)> = g
            .links()
            .iter()
            .enumerate()
            .filter(|(k, _)| matches!(j.control[*k], Control::Signal { .. }))
            .map(|(_, l)| (g.node(l.from).source_id, g.node(l.to).source_id))
            .collect();
        assert_eq!(signalised, vec![(1, 2), (5, 4)]);
        // Both on one axis: a crossing-style plan.
        assert_eq!(j.plans[0].phases.len(), 3);
    }
}
