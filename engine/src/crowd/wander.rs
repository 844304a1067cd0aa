//! Wandering pedestrians: agents that walk from one footpath node to another chosen at random, again and
//! again. They are the crowd's load in benches and tests, and the people robots meet on the sidewalk when a
//! scenario asks for ambient pedestrians.
//!
//! Free walking speeds follow Weidmann (1993, "Transporttechnik der Fussgänger", ETH Zürich): normal with a
//! mean of 1.34 m/s and a standard deviation of 0.26 m/s (truncated at ±2.5σ).

use crate::city::graph::{Graph, LinkId, NodeId};
use crate::city::routing::ContractedRouter;
use crate::rng::{standard_normal, stream, Purpose};
use rand::Rng;

/// Mean free walking speed (m/s), Weidmann (1993).
pub const WALK_SPEED_MEAN_MPS: f64 = 1.34;
/// Standard deviation of free walking speeds (m/s), Weidmann (1993).
pub const WALK_SPEED_SD_MPS: f64 = 0.26;
/// Destinations drawn before a wanderer gives up finding a route (the graph is connected, so one draw
/// almost always does).
const DRAWS: u64 = 8;

/// Random destinations on the footpath graph's largest connected part.
pub struct Wanderers {
    nodes: Vec<NodeId>,
    seed: u64,
}

impl Wanderers {
    /// Wanderers on `graph` (footpaths, both directions of every path), drawn from `seed`.
    pub fn new(graph: &Graph, seed: u64) -> Wanderers {
        Wanderers { nodes: largest_component(graph), seed }
    }

    /// Nodes wanderers go between.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Free walking speed of wanderer `agent` (m/s).
    pub fn speed_mps(&self, agent: u32) -> f32 {
        let mut rng = stream(self.seed, Purpose::Wandering, agent as u64, 0);
        (WALK_SPEED_MEAN_MPS + WALK_SPEED_SD_MPS * standard_normal(&mut rng)) as f32
    }

    /// Where wanderer `agent` starts.
    pub fn start(&self, agent: u32) -> NodeId {
        let mut rng = stream(self.seed, Purpose::Wandering, agent as u64, 1);
        self.nodes[rng.random_range(0..self.nodes.len())]
    }

    /// The route of wanderer `agent`'s `trip`-th walk from `from` to a random node, found by `route` (None
    /// when no draw is reachable).
    pub fn route_with(
        &self,
        agent: u32,
        trip: u64,
        from: NodeId,
        mut route: impl FnMut(NodeId, NodeId) -> Option<Vec<LinkId>>,
    ) -> Option<Vec<LinkId>> {
        let mut rng = stream(self.seed, Purpose::Wandering, agent as u64, 2 + trip);
        for _ in 0..DRAWS {
            let to = self.nodes[rng.random_range(0..self.nodes.len())];
            if to == from {
                continue;
            }
            if let Some(links) = route(from, to) {
                if !links.is_empty() {
                    return Some(links);
                }
            }
        }
        None
    }

    /// As [`Wanderers::route_with`], by contraction hierarchies.
    pub fn route(
        &self,
        router: &ContractedRouter,
        calc: &mut fast_paths::PathCalculator,
        agent: u32,
        trip: u64,
        from: NodeId,
    ) -> Option<Vec<LinkId>> {
        self.route_with(agent, trip, from, |a, b| router.route(calc, a, b).map(|r| r.links))
    }
}

/// The nodes of the largest set connected by links (in link direction; footpaths go both ways).
fn largest_component(graph: &Graph) -> Vec<NodeId> {
    let n = graph.nodes().len();
    let mut label = vec![u32::MAX; n];
    let mut best: Vec<NodeId> = Vec::new();
    let mut stack = Vec::new();
    for start in 0..n {
        if label[start] != u32::MAX {
            continue;
        }
        let mut members = vec![NodeId(start as u32)];
        label[start] = start as u32;
        stack.push(NodeId(start as u32));
        while let Some(node) = stack.pop() {
            for &l in graph.out_links(node) {
                let to = graph.link(l).to;
                if label[to.0 as usize] == u32::MAX {
                    label[to.0 as usize] = start as u32;
                    members.push(to);
                    stack.push(to);
                }
            }
        }
        if members.len() > best.len() {
            best = members;
        }
    }
    best.sort_unstable();
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::graph::GraphBuilder;
    use crate::city::routing::Weight;
    use crate::import::tags::WayClass;
    use glam::Vec2;

    #[test]
    fn wanderers_stay_on_the_largest_part_and_are_reproducible() {
        // A 3-node path and a separate 2-node path.
        let mut g = GraphBuilder::new();
        let p: Vec<NodeId> = (0..5).map(|k| g.node(k, Vec2::new(k as f32 * 10.0, 0.0), false)).collect();
        for (a, b) in [(0, 1), (1, 2), (3, 4)] {
            g.straight(p[a], p[b], 1.3, 1, WayClass::Footway);
            g.straight(p[b], p[a], 1.3, 1, WayClass::Footway);
        }
        let graph = g.build();
        let w = Wanderers::new(&graph, 7);
        assert_eq!(w.nodes(), &p[..3]);
        let router = ContractedRouter::new(&graph, Weight::Length);
        let mut calc = router.calculator();
        for agent in 0..20 {
            let from = w.start(agent);
            assert!(w.nodes().contains(&from));
            let route = w.route(&router, &mut calc, agent, 0, from).expect("reachable");
            assert_eq!(graph.link(route[0]).from, from);
            assert_eq!(route, w.route(&router, &mut calc, agent, 0, from).unwrap(), "same draw");
            let v = w.speed_mps(agent);
            assert!((0.68..=2.0).contains(&v), "{v}");
        }
    }
}
