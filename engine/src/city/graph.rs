//! Directed network graphs (roads, footpaths) in compressed sparse row form.
//!
//! A [`Graph`] has nodes (junctions, with position and whether they carry a traffic signal) and directed
//! links (one per direction of travel, with length, speed, lanes, class and the way's geometry). Outgoing
//! links of each node are contiguous (CSR), so routing and simulation walk them without hashing. Turn
//! restrictions (OSM `type=restriction`) are kept as banned and mandatory link-to-link turns. Graphs are
//! built once by [`GraphBuilder`] and immutable after.

use crate::import::tags::WayClass;
use glam::Vec2;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Index of a node in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

/// Index of a directed link in its graph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LinkId(pub u32);

/// A junction or way end.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    /// Position in the local frame (m).
    pub pos: Vec2,
    /// Identifier in the source data (OSM node id), for reports and round trips.
    pub source_id: i64,
    /// Whether the node carries a traffic signal (`highway=traffic_signals`, or `crossing=traffic_signals`).
    pub signal: bool,
}

/// One direction of travel along a way between two junctions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Link {
    /// Node the link leaves.
    pub from: NodeId,
    /// Node the link enters.
    pub to: NodeId,
    /// Length along the geometry (m).
    pub length_m: f32,
    /// Speed limit for vehicles, or walking speed on footpaths (m/s).
    pub speed_mps: f32,
    /// Lanes in this direction (1 on footpaths).
    pub lanes: u8,
    /// Road class of the way.
    pub class: WayClass,
    /// Geometry from `from` to `to` in the local frame (m), at least two points.
    pub geometry: Vec<Vec2>,
    /// Identifier of the source way (OSM way id, or the GeoJSON feature index).
    pub source_id: i64,
    /// Street name, if tagged.
    pub name: Option<String>,
    /// Part of a roundabout's circulating carriageway (OSM `junction=roundabout`, the edges of a SUMO
    /// `<roundabout>`): traffic on it has priority over traffic entering.
    #[serde(default)]
    pub roundabout: bool,
}

impl Link {
    /// Free-flow travel time (s).
    pub fn free_flow_time_s(&self) -> f32 {
        self.length_m / self.speed_mps
    }
}

/// Kind of a turn restriction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TurnRule {
    /// `no_*`: this turn is forbidden.
    Banned,
    /// `only_*`: from this link, this is the only allowed turn.
    Only,
}

/// A turn restriction from one link onto another at their shared node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnRestriction {
    /// Link arriving at the junction.
    pub from: LinkId,
    /// Link leaving the junction.
    pub to: LinkId,
    /// Banned, or the only allowed turn.
    pub rule: TurnRule,
}

/// A directed graph in CSR form.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Graph {
    nodes: Vec<Node>,
    links: Vec<Link>,
    /// `out_links[out_start[n]..out_start[n + 1]]` are the links leaving node `n`.
    out_start: Vec<u32>,
    out_links: Vec<LinkId>,
    /// Sorted by `from`; `restricted[l]` says whether link `l` has any.
    restrictions: Vec<TurnRestriction>,
    restricted: Vec<bool>,
}

impl Graph {
    /// All nodes, indexed by [`NodeId`].
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    /// All directed links, indexed by [`LinkId`].
    pub fn links(&self) -> &[Link] {
        &self.links
    }
    /// Every node by its source id (OSM node id), for resolving what other data names.
    pub fn nodes_by_source(&self) -> HashMap<i64, NodeId> {
        self.nodes.iter().enumerate().map(|(k, n)| (n.source_id, NodeId(k as u32))).collect()
    }
    /// One node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }
    /// One link.
    pub fn link(&self, id: LinkId) -> &Link {
        &self.links[id.0 as usize]
    }
    /// Links leaving `node`.
    pub fn out_links(&self, node: NodeId) -> &[LinkId] {
        let n = node.0 as usize;
        &self.out_links[self.out_start[n] as usize..self.out_start[n + 1] as usize]
    }
    /// All turn restrictions, sorted by the link they start from.
    pub fn restrictions(&self) -> &[TurnRestriction] {
        &self.restrictions
    }
    /// Whether turning from link `from` onto link `to` (which must start where `from` ends) is allowed.
    pub fn turn_allowed(&self, from: LinkId, to: LinkId) -> bool {
        if !self.restricted[from.0 as usize] {
            return true;
        }
        let start = self.restrictions.partition_point(|r| r.from < from);
        let rules = self.restrictions[start..].iter().take_while(|r| r.from == from);
        let mut has_only = false;
        for r in rules {
            match r.rule {
                TurnRule::Banned if r.to == to => return false,
                TurnRule::Only if r.to == to => return true,
                TurnRule::Only => has_only = true,
                TurnRule::Banned => {}
            }
        }
        !has_only
    }
    /// Total length of all links (m); a two-way street counts once per direction.
    pub fn total_link_length_m(&self) -> f64 {
        self.links.iter().map(|l| l.length_m as f64).sum()
    }
    /// A grid network as SUMO's `netgenerate --grid` makes: `n`×`n` junctions `block_m` apart, two-way
    /// streets of `lanes` lanes per direction at `speed_mps`, signals at every junction of three or more
    /// streets. Node source ids are `y·n + x`. For tests, benchmarks and comparisons.
    pub fn grid(n: usize, block_m: f32, lanes: u8, speed_mps: f32) -> Graph {
        let mut b = GraphBuilder::new();
        let id = |x: usize, y: usize| (y * n + x) as i64;
        for y in 0..n {
            for x in 0..n {
                let streets = (x > 0) as u8 + (x + 1 < n) as u8 + (y > 0) as u8 + (y + 1 < n) as u8;
                b.node(id(x, y), Vec2::new(x as f32, y as f32) * block_m, streets >= 3);
            }
        }
        for y in 0..n {
            for x in 0..n {
                let a = NodeId(id(x, y) as u32);
                for (dx, dy) in [(1, 0), (0, 1)] {
                    if x + dx < n && y + dy < n {
                        let c = NodeId(id(x + dx, y + dy) as u32);
                        b.straight(a, c, speed_mps, lanes, WayClass::Secondary);
                        b.straight(c, a, speed_mps, lanes, WayClass::Secondary);
                    }
                }
            }
        }
        b.build()
    }

    /// Highest link speed (m/s), used as the A* heuristic's bound.
    pub fn max_speed_mps(&self) -> f32 {
        self.links.iter().map(|l| l.speed_mps).fold(0.0, f32::max)
    }
    /// Number of nodes where three or more ways meet (in- plus out-degree over two directions ≥ 3 streets).
    pub fn junction_count(&self) -> usize {
        self.neighbour_counts().into_iter().filter(|&streets| streets >= 3).count()
    }

    /// Distinct neighbouring nodes of every node (linked either way), indexed by [`NodeId`].
    pub fn neighbour_counts(&self) -> Vec<usize> {
        let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); self.nodes.len()];
        for l in &self.links {
            neighbours[l.from.0 as usize].push(l.to.0);
            neighbours[l.to.0 as usize].push(l.from.0);
        }
        neighbours
            .into_iter()
            .map(|mut n| {
                n.sort_unstable();
                n.dedup();
                n.len()
            })
            .collect()
    }

    /// The links entering every node, in link order, indexed by [`NodeId`].
    pub fn links_into(&self) -> Vec<Vec<LinkId>> {
        let mut into: Vec<Vec<LinkId>> = vec![Vec::new(); self.nodes.len()];
        for (k, l) in self.links.iter().enumerate() {
            into[l.to.0 as usize].push(LinkId(k as u32));
        }
        into
    }
}

/// Builds a [`Graph`]: nodes are deduplicated by source id, links appended in call order (so the result is
/// deterministic for a deterministic input order).
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<Node>,
    by_source: HashMap<i64, NodeId>,
    links: Vec<Link>,
    restrictions: Vec<TurnRestriction>,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    /// The node for `source_id`, created at `pos` if new. A later call with `signal = true` marks it.
    pub fn node(&mut self, source_id: i64, pos: Vec2, signal: bool) -> NodeId {
        if let Some(&id) = self.by_source.get(&source_id) {
            self.nodes[id.0 as usize].signal |= signal;
            return id;
        }
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(Node { pos, source_id, signal });
        self.by_source.insert(source_id, id);
        id
    }

    /// Position of a node already created (m).
    pub fn node_pos(&self, id: NodeId) -> Vec2 {
        self.nodes[id.0 as usize].pos
    }

    /// The node already created for a source id.
    pub fn node_by_source(&self, source_id: i64) -> Option<NodeId> {
        self.by_source.get(&source_id).copied()
    }

    /// Adds a directed link; returns its id. Zero-length links get a 0.1 m length so travel times stay
    /// positive (duplicate OSM nodes at one position exist in real data).
    pub fn link(&mut self, mut link: Link) -> LinkId {
        const MIN_LINK_LENGTH_M: f32 = 0.1;
        link.length_m = link.length_m.max(MIN_LINK_LENGTH_M);
        let id = LinkId(self.links.len() as u32);
        self.links.push(link);
        id
    }

    /// Adds a straight directed link between two nodes already created (length from their positions, no
    /// source way or name); returns its id.
    pub fn straight(&mut self, from: NodeId, to: NodeId, speed_mps: f32, lanes: u8, class: WayClass) -> LinkId {
        let (a, b) = (self.nodes[from.0 as usize].pos, self.nodes[to.0 as usize].pos);
        self.link(Link {
            from,
            to,
            length_m: a.distance(b),
            speed_mps,
            lanes,
            class,
            geometry: vec![a, b],
            source_id: 0,
            name: None,
            roundabout: false,
        })
    }

    /// Links added so far.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// Adds a turn restriction.
    pub fn restriction(&mut self, r: TurnRestriction) {
        self.restrictions.push(r);
    }

    /// Freezes the graph into CSR form.
    pub fn build(self) -> Graph {
        let n = self.nodes.len();
        let mut out_start = vec![0u32; n + 1];
        for l in &self.links {
            out_start[l.from.0 as usize + 1] += 1;
        }
        for i in 0..n {
            out_start[i + 1] += out_start[i];
        }
        let mut fill = out_start.clone();
        let mut out_links = vec![LinkId(0); self.links.len()];
        for (i, l) in self.links.iter().enumerate() {
            let slot = &mut fill[l.from.0 as usize];
            out_links[*slot as usize] = LinkId(i as u32);
            *slot += 1;
        }
        let mut restrictions = self.restrictions;
        restrictions.sort_by_key(|r| (r.from, r.to));
        restrictions.dedup();
        let mut restricted = vec![false; self.links.len()];
        for r in &restrictions {
            restricted[r.from.0 as usize] = true;
        }
        Graph { nodes: self.nodes, links: self.links, out_start, out_links, restrictions, restricted }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small test graph: a 3×3 grid of nodes 100 m apart, two-way links at 10 m/s.
    pub fn grid3() -> Graph {
        let mut b = GraphBuilder::new();
        for y in 0..3 {
            for x in 0..3 {
                b.node(y * 3 + x, Vec2::new(x as f32 * 100.0, y as f32 * 100.0), false);
            }
        }
        let add = |b: &mut GraphBuilder, a: i64, c: i64| {
            for (f, t) in [(a, c), (c, a)] {
                let (fp, tp) = (b.nodes[f as usize].pos, b.nodes[t as usize].pos);
                b.link(Link {
                    from: NodeId(f as u32),
                    to: NodeId(t as u32),
                    length_m: fp.distance(tp),
                    speed_mps: 10.0,
                    lanes: 1,
                    class: WayClass::Residential,
                    geometry: vec![fp, tp],
                    source_id: 0,
                    name: None,
                    roundabout: false,
                });
            }
        };
        for y in 0..3 {
            for x in 0..3 {
                let i = y * 3 + x;
                if x < 2 {
                    add(&mut b, i, i + 1);
                }
                if y < 2 {
                    add(&mut b, i, i + 3);
                }
            }
        }
        b.build()
    }

    #[test]
    fn csr_lists_out_links_and_restrictions_apply() {
        let g = grid3();
        assert_eq!(g.nodes().len(), 9);
        assert_eq!(g.links().len(), 24);
        assert_eq!(g.out_links(NodeId(4)).len(), 4);
        for (n, _) in g.nodes().iter().enumerate() {
            for &l in g.out_links(NodeId(n as u32)) {
                assert_eq!(g.link(l).from, NodeId(n as u32));
            }
        }
        assert_eq!(g.junction_count(), 5);
        let mut b = GraphBuilder::new();
        b.node(1, Vec2::ZERO, false);
        b.node(1, Vec2::ZERO, true);
        assert!(b.build().node(NodeId(0)).signal);
    }
}
