//! Shortest paths on a [`Graph`]: A* (Hart, Nilsson, Raphael 1968) point to point, and Dijkstra (1959)
//! one-to-all trees, both *link-based* (the search state is the link just travelled) so turn restrictions
//! are honoured exactly.
//!
//! Weights are free-flow travel time (s) or length (m). The A* heuristic is the straight-line distance,
//! divided by the graph's highest speed for time weights; both are admissible and consistent, so A* returns
//! the same optimum as Dijkstra. A [`Router`] owns its scratch arrays and reuses them between queries
//! (a generation stamp avoids clearing), which is what makes 10^5 queries cheap; use one router per thread.

use super::graph::{Graph, LinkId, NodeId};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// What a route minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    /// Free-flow travel time (s): length / speed.
    TravelTime,
    /// Length (m).
    Length,
}

impl Weight {
    /// The weight of `link` (s or m).
    pub fn of(self, graph: &Graph, link: LinkId) -> f32 {
        let l = graph.link(link);
        match self {
            Weight::TravelTime => l.length_m / l.speed_mps,
            Weight::Length => l.length_m,
        }
    }
}

/// The link costs a search adds up: a [`Weight`], or a table of travel times (s per link, indexed by link)
/// in which each is at least the link's free-flow time (congested times, say), so the A* heuristic by the
/// highest speed stays admissible.
#[derive(Clone, Copy, Debug)]
pub enum LinkCosts<'c> {
    /// Free-flow time or length.
    Weight(Weight),
    /// Travel time (s) of each link, none below its free-flow time.
    TravelTimes(&'c [f32]),
}

impl LinkCosts<'_> {
    fn of(self, graph: &Graph, link: LinkId) -> f32 {
        match self {
            LinkCosts::Weight(w) => w.of(graph, link),
            LinkCosts::TravelTimes(t) => t[link.0 as usize],
        }
    }

    /// The weight the A* heuristic estimates (time or length).
    fn heuristic_weight(self) -> Weight {
        match self {
            LinkCosts::Weight(w) => w,
            LinkCosts::TravelTimes(_) => Weight::TravelTime,
        }
    }
}

/// A route: the links in order, and its totals.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// Links in travel order.
    pub links: Vec<LinkId>,
    /// Total of the weight the route was searched by (s or m).
    pub cost: f32,
    /// Length (m).
    pub length_m: f32,
    /// Free-flow travel time (s).
    pub time_s: f32,
}

#[derive(Clone, Copy, PartialEq)]
struct Entry {
    key: f32,
    link: u32,
}

impl Eq for Entry {}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Min-heap on key; ties broken by link id so the result never depends on heap internals.
        other.key.total_cmp(&self.key).then_with(|| other.link.cmp(&self.link))
    }
}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Reusable shortest-path searcher for one graph.
pub struct Router<'g> {
    graph: &'g Graph,
    /// Best cost to the end of each link found so far in the current search.
    cost: Vec<f32>,
    /// Length (m) of the best path to the end of each link, tracked alongside its cost.
    length: Vec<f32>,
    parent: Vec<u32>,
    stamp: Vec<u32>,
    done: Vec<u32>,
    generation: u32,
    heap: BinaryHeap<Entry>,
    inv_max_speed: f32,
}

const NO_PARENT: u32 = u32::MAX;

impl<'g> Router<'g> {
    /// A router over `graph`.
    pub fn new(graph: &'g Graph) -> Router<'g> {
        let n = graph.links().len();
        let max_speed = graph.max_speed_mps();
        Router {
            graph,
            cost: vec![0.0; n],
            length: vec![0.0; n],
            parent: vec![NO_PARENT; n],
            stamp: vec![0; n],
            done: vec![0; n],
            generation: 0,
            heap: BinaryHeap::new(),
            inv_max_speed: if max_speed > 0.0 { 1.0 / max_speed } else { 0.0 },
        }
    }

    fn start(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.done.fill(0);
            self.generation = 1;
        }
        self.heap.clear();
    }

    fn relax(&mut self, link: LinkId, cost: f32, length: f32, parent: u32, h: f32) {
        let i = link.0 as usize;
        if self.stamp[i] != self.generation || cost < self.cost[i] {
            self.stamp[i] = self.generation;
            self.cost[i] = cost;
            self.length[i] = length;
            self.parent[i] = parent;
            self.heap.push(Entry { key: cost + h, link: link.0 });
        }
    }

    fn heuristic(&self, weight: Weight, node: NodeId, target: NodeId) -> f32 {
        let d = self.graph.node(node).pos.distance(self.graph.node(target).pos);
        match weight {
            Weight::Length => d,
            Weight::TravelTime => d * self.inv_max_speed,
        }
    }

    /// The search both queries share: settles links in order of cost (+ heuristic towards `target`), calling
    /// `settle(link, end node, cost, length)` for each; stops when `settle` returns true, giving that link.
    /// With `after`, the search starts at the end of that link (`from` is its end) and its first link must
    /// be a turn allowed from it.
    #[allow(clippy::too_many_arguments)]
    fn search(
        &mut self,
        from: NodeId,
        after: Option<LinkId>,
        costs: LinkCosts,
        target: Option<NodeId>,
        usable: impl Fn(LinkId) -> bool,
        mut settle: impl FnMut(u32, NodeId, f32, f32) -> bool,
    ) -> Option<u32> {
        self.start();
        let g = self.graph;
        let weight = costs.heuristic_weight();
        let h = |r: &Self, n: NodeId| target.map_or(0.0, |t| r.heuristic(weight, n, t));
        for &l in g.out_links(from) {
            if !usable(l) || after.is_some_and(|a| !g.turn_allowed(a, l)) {
                continue;
            }
            let hl = h(self, g.link(l).to);
            self.relax(l, costs.of(g, l), g.link(l).length_m, NO_PARENT, hl);
        }
        while let Some(Entry { link, .. }) = self.heap.pop() {
            let li = link as usize;
            if self.done[li] == self.generation {
                continue;
            }
            self.done[li] = self.generation;
            let end = g.links()[li].to;
            let (base, base_len) = (self.cost[li], self.length[li]);
            if settle(link, end, base, base_len) {
                return Some(link);
            }
            for &next in g.out_links(end) {
                if self.done[next.0 as usize] == self.generation || !g.turn_allowed(LinkId(link), next) || !usable(next)
                {
                    continue;
                }
                let hn = h(self, g.link(next).to);
                self.relax(next, base + costs.of(g, next), base_len + g.link(next).length_m, link, hn);
            }
        }
        None
    }

    /// Best route from `from` to `to`, or `None` if unreachable. `from == to` gives an empty route.
    pub fn route(&mut self, from: NodeId, to: NodeId, weight: Weight) -> Option<Route> {
        self.route_avoiding(from, to, weight, |_| true)
    }

    /// Best route from `from` to `to` over the links `usable` accepts (closed links excluded), or `None`.
    pub fn route_avoiding(
        &mut self,
        from: NodeId,
        to: NodeId,
        weight: Weight,
        usable: impl Fn(LinkId) -> bool,
    ) -> Option<Route> {
        self.route_on(from, None, to, LinkCosts::Weight(weight), usable)
    }

    /// Best route by `costs` from `from` to `to` over the links `usable` accepts, or `None`. With `after`
    /// (a link ending at `from`: where a vehicle is), the route's first link is a turn allowed from it.
    /// `from == to` gives an empty route.
    pub fn route_on(
        &mut self,
        from: NodeId,
        after: Option<LinkId>,
        to: NodeId,
        costs: LinkCosts,
        usable: impl Fn(LinkId) -> bool,
    ) -> Option<Route> {
        debug_assert!(after.is_none_or(|a| self.graph.link(a).to == from), "`after` must end at `from`");
        if from == to {
            return Some(Route { links: Vec::new(), cost: 0.0, length_m: 0.0, time_s: 0.0 });
        }
        let last = self.search(from, after, costs, Some(to), usable, |_, end, _, _| end == to)?;
        Some(self.unwind(last))
    }

    /// Best routes from `from` to each of `targets` (in their order; repeats allowed), by one Dijkstra
    /// search that stops once every target is reached: the way to route many trips that leave one origin.
    /// `None` where a target is unreachable; an empty route where it is `from`.
    pub fn routes_from(&mut self, from: NodeId, targets: &[NodeId], weight: Weight) -> Vec<Option<Route>> {
        let nodes = self.graph.nodes().len();
        let mut wanted = vec![false; nodes];
        let mut remaining = 0usize;
        for &t in targets {
            if t != from && !wanted[t.0 as usize] {
                wanted[t.0 as usize] = true;
                remaining += 1;
            }
        }
        let mut reached_by = vec![NO_PARENT; nodes];
        if remaining > 0 {
            self.search(
                from,
                None,
                LinkCosts::Weight(weight),
                None,
                |_| true,
                |link, end, _, _| {
                    let e = end.0 as usize;
                    if wanted[e] && reached_by[e] == NO_PARENT {
                        reached_by[e] = link;
                        remaining -= 1;
                    }
                    remaining == 0
                },
            );
        }
        targets
            .iter()
            .map(|&t| match reached_by[t.0 as usize] {
                _ if t == from => Some(Route { links: Vec::new(), cost: 0.0, length_m: 0.0, time_s: 0.0 }),
                NO_PARENT => None,
                last => Some(self.unwind(last)),
            })
            .collect()
    }

    fn unwind(&self, last: u32) -> Route {
        let mut links = Vec::new();
        let mut cur = last;
        while cur != NO_PARENT {
            links.push(LinkId(cur));
            cur = self.parent[cur as usize];
        }
        links.reverse();
        let g = self.graph;
        let length_m = links.iter().map(|&l| g.link(l).length_m).sum();
        let time_s = links.iter().map(|&l| g.link(l).free_flow_time_s()).sum();
        Route { cost: self.cost[last as usize], links, length_m, time_s }
    }

    /// One-to-all Dijkstra from `from`: the cost (s or m) to reach every node, `f32::INFINITY` where
    /// unreachable; `out[from] = 0`. `out` is resized to the node count.
    pub fn tree(&mut self, from: NodeId, weight: Weight, out: &mut Vec<f32>) {
        let mut lengths = Vec::new();
        self.tree_with_lengths(from, weight, out, &mut lengths);
    }

    /// As [`Router::tree`], also giving the length (m) of each best path in `lengths`.
    pub fn tree_with_lengths(&mut self, from: NodeId, weight: Weight, out: &mut Vec<f32>, lengths: &mut Vec<f32>) {
        let n = self.graph.nodes().len();
        out.clear();
        out.resize(n, f32::INFINITY);
        out[from.0 as usize] = 0.0;
        lengths.clear();
        lengths.resize(n, f32::INFINITY);
        lengths[from.0 as usize] = 0.0;
        self.search(
            from,
            None,
            LinkCosts::Weight(weight),
            None,
            |_| true,
            |_, end, cost, length| {
                let e = end.0 as usize;
                if cost < out[e] {
                    out[e] = cost;
                    lengths[e] = length;
                }
                false
            },
        );
    }
}

/// Link costs in integer units for [`ContractedRouter`]: milliseconds or millimetres.
const CH_UNITS_PER_WEIGHT: f32 = 1000.0;

/// Point-to-point routes by contraction hierarchies (Geisberger, Sanders, Schultes & Delling 2008,
/// "Contraction hierarchies: faster and simpler hierarchical routing in road networks", WEA), prepared once
/// per weighting by the `fast_paths` crate. The hierarchy is built over the *link* graph — a vertex per
/// link, an edge per allowed turn, weighted by the cost of the link turned into — so turn restrictions hold
/// exactly, as in [`Router`]. Costs are rounded to whole ms (or mm) per link, so where two routes tie to
/// within that, either may be returned. Rebuild it when link costs change (closures, congestion).
pub struct ContractedRouter<'g> {
    graph: &'g Graph,
    weight: Weight,
    fast: fast_paths::FastGraph,
    /// Links into each node.
    into: Vec<Vec<LinkId>>,
}

impl<'g> ContractedRouter<'g> {
    /// Prepares the hierarchy of `graph` for `weight`.
    pub fn new(graph: &'g Graph, weight: Weight) -> ContractedRouter<'g> {
        let units = |l: LinkId| ((weight.of(graph, l) * CH_UNITS_PER_WEIGHT).round() as usize).max(1);
        let mut input = fast_paths::InputGraph::new();
        let mut into = vec![Vec::new(); graph.nodes().len()];
        for (k, link) in graph.links().iter().enumerate() {
            let a = LinkId(k as u32);
            into[link.to.0 as usize].push(a);
            for &b in graph.out_links(link.to) {
                if graph.turn_allowed(a, b) {
                    input.add_edge(k, b.0 as usize, units(b));
                }
            }
        }
        input.freeze();
        let fast = fast_paths::prepare(&input);
        ContractedRouter { graph, weight, fast, into }
    }

    /// A query workspace; one per thread.
    pub fn calculator(&self) -> fast_paths::PathCalculator {
        fast_paths::create_calculator(&self.fast)
    }

    /// Best route from `from` to `to` (as [`Router::route`]), or `None` if unreachable.
    pub fn route(&self, calc: &mut fast_paths::PathCalculator, from: NodeId, to: NodeId) -> Option<Route> {
        if from == to {
            return Some(Route { links: Vec::new(), cost: 0.0, length_m: 0.0, time_s: 0.0 });
        }
        let g = self.graph;
        let units = |l: LinkId| ((self.weight.of(g, l) * CH_UNITS_PER_WEIGHT).round() as usize).max(1);
        let sources: Vec<(usize, usize)> = g.out_links(from).iter().map(|&l| (l.0 as usize, units(l))).collect();
        let targets: Vec<(usize, usize)> = self.into[to.0 as usize].iter().map(|&l| (l.0 as usize, 0)).collect();
        if sources.is_empty() || targets.is_empty() {
            return None;
        }
        let path = calc.calc_path_multiple_sources_and_targets(&self.fast, sources, targets)?;
        let links: Vec<LinkId> = path.get_nodes().iter().map(|&l| LinkId(l as u32)).collect();
        let cost = links.iter().map(|&l| self.weight.of(g, l)).sum();
        let length_m = links.iter().map(|&l| g.link(l).length_m).sum();
        let time_s = links.iter().map(|&l| g.link(l).free_flow_time_s()).sum();
        Some(Route { links, cost, length_m, time_s })
    }
}

#[cfg(test)]
mod tests {
    use super::super::graph::tests::grid3;
    use super::super::graph::{GraphBuilder, TurnRestriction, TurnRule};
    use super::*;

    #[test]
    fn astar_matches_dijkstra_on_the_grid() {
        let g = grid3();
        let mut r = Router::new(&g);
        let route = r.route(NodeId(0), NodeId(8), Weight::TravelTime).unwrap();
        assert_eq!(route.links.len(), 4);
        assert!((route.time_s - 40.0).abs() < 1e-4);
        assert!((route.length_m - 400.0).abs() < 1e-3);
        let mut tree = Vec::new();
        r.tree(NodeId(0), Weight::Length, &mut tree);
        for (n, &d) in tree.iter().enumerate() {
            let via_astar = r.route(NodeId(0), NodeId(n as u32), Weight::Length).unwrap().cost;
            assert!((d - via_astar).abs() < 1e-3, "node {n}: {d} vs {via_astar}");
        }
        assert_eq!(r.route(NodeId(3), NodeId(3), Weight::Length).unwrap().links, vec![]);
    }

    #[test]
    fn banned_turn_forces_a_detour_and_only_turn_restricts() {
        let base = grid3();
        // Links 0→1 and 1→2 along the bottom row.
        let find = |g: &Graph, a: u32, b: u32| {
            LinkId(g.links().iter().position(|l| l.from == NodeId(a) && l.to == NodeId(b)).unwrap() as u32)
        };
        let (l01, l12) = (find(&base, 0, 1), find(&base, 1, 2));
        let mut b = GraphBuilder::new();
        for n in base.nodes() {
            b.node(n.source_id, n.pos, n.signal);
        }
        for l in base.links() {
            b.link(l.clone());
        }
        b.restriction(TurnRestriction { from: l01, to: l12, rule: TurnRule::Banned });
        let g = b.build();
        assert!(!g.turn_allowed(l01, l12));
        let mut r = Router::new(&g);
        let route = r.route(NodeId(0), NodeId(2), Weight::Length).unwrap();
        // 0→1→2 is banned; best is 0→3→4→5→2 or 0→1→4→5→2: 400 m instead of 200 m.
        assert!((route.length_m - 400.0).abs() < 1e-3, "{route:?}");
        let mut b = GraphBuilder::new();
        for n in base.nodes() {
            b.node(n.source_id, n.pos, n.signal);
        }
        for l in base.links() {
            b.link(l.clone());
        }
        let l14 = find(&base, 1, 4);
        b.restriction(TurnRestriction { from: l01, to: l14, rule: TurnRule::Only });
        let g = b.build();
        assert!(g.turn_allowed(l01, l14) && !g.turn_allowed(l01, l12));
        // Starting where a vehicle is: at the end of 0→1, the banned turn is not taken either.
        let mut r = Router::new(&g);
        let free = LinkCosts::Weight(Weight::TravelTime);
        let on = r.route_on(NodeId(1), Some(l01), NodeId(2), free, |_| true).unwrap();
        assert_eq!(on.links.first(), Some(&l14), "{on:?}");
        let anywhere = r.route_on(NodeId(1), None, NodeId(2), free, |_| true).unwrap();
        assert_eq!(anywhere.links, vec![l12]);
    }

    #[test]
    fn travel_time_tables_route_round_slow_links_as_dijkstra_would() {
        let g = grid3();
        let find = |a: u32, b: u32| {
            LinkId(g.links().iter().position(|l| l.from == NodeId(a) && l.to == NodeId(b)).unwrap() as u32)
        };
        let mut times: Vec<f32> = (0..g.links().len() as u32).map(|l| Weight::TravelTime.of(&g, LinkId(l))).collect();
        let mut r = Router::new(&g);
        let free = r.route_on(NodeId(0), None, NodeId(2), LinkCosts::TravelTimes(&times), |_| true).unwrap();
        assert_eq!(free.links, vec![find(0, 1), find(1, 2)]);
        assert!((free.cost - 20.0).abs() < 1e-4);
        // 1→2 congested to 100 s: the way round by 4 and 5 (40 s) is faster than 10 + 100 s.
        times[find(1, 2).0 as usize] = 100.0;
        let round = r.route_on(NodeId(0), None, NodeId(2), LinkCosts::TravelTimes(&times), |_| true).unwrap();
        assert!((round.cost - 40.0).abs() < 1e-4, "{round:?}");
        assert!((round.time_s - 40.0).abs() < 1e-4);
        assert!(!round.links.contains(&find(1, 2)));
        // The same optimum as a one-to-all search over the same costs (checked by brute force over paths of
        // up to four links from node 0).
        let mut best = f32::INFINITY;
        for &a in g.out_links(NodeId(0)) {
            for &b in g.out_links(g.link(a).to) {
                for &c in g.out_links(g.link(b).to) {
                    for &d in g.out_links(g.link(c).to) {
                        if g.link(d).to == NodeId(2) {
                            let cost: f32 = [a, b, c, d].iter().map(|l| times[l.0 as usize]).sum();
                            best = best.min(cost);
                        }
                    }
                }
            }
        }
        assert!((round.cost - best).abs() < 1e-4);
    }
    /// Every pair of nodes: the contracted router finds a route of the cost A* finds, along allowed turns.
    fn contracted_matches_astar(g: &Graph) {
        let ch = ContractedRouter::new(g, Weight::TravelTime);
        let mut calc = ch.calculator();
        let mut astar = Router::new(g);
        let n = g.nodes().len() as u32;
        for a in 0..n {
            for z in 0..n {
                let x = astar.route(NodeId(a), NodeId(z), Weight::TravelTime);
                let y = ch.route(&mut calc, NodeId(a), NodeId(z));
                let (Some(x), Some(y)) = (&x, &y) else {
                    assert!(x.is_none() && y.is_none(), "{a}→{z}: A* {x:?} vs CH {y:?}");
                    continue;
                };
                assert!((x.cost - y.cost).abs() <= 1e-3 * y.links.len().max(1) as f32, "{a}→{z}: {x:?} vs {y:?}");
                if let (Some(f), Some(l)) = (y.links.first(), y.links.last()) {
                    assert_eq!((g.link(*f).from, g.link(*l).to), (NodeId(a), NodeId(z)));
                }
                for w in y.links.windows(2) {
                    assert_eq!(g.link(w[0]).to, g.link(w[1]).from);
                    assert!(g.turn_allowed(w[0], w[1]), "{a}→{z} takes a banned turn");
                }
            }
        }
    }

    /// From every node to every node (each target twice, and the origin itself): one search per origin
    /// gives routes of the cost A* finds, that start at the origin, end at the target and turn legally.
    fn one_to_many_matches_astar(g: &Graph) {
        let mut many = Router::new(g);
        let mut astar = Router::new(g);
        let n = g.nodes().len() as u32;
        let targets: Vec<NodeId> = (0..n).chain((0..n).rev()).map(NodeId).collect();
        for a in 0..n {
            let routes = many.routes_from(NodeId(a), &targets, Weight::TravelTime);
            assert_eq!(routes.len(), targets.len());
            for (&z, y) in targets.iter().zip(&routes) {
                let x = astar.route(NodeId(a), z, Weight::TravelTime);
                let (Some(x), Some(y)) = (&x, y) else {
                    assert!(x.is_none() && y.is_none(), "{a}→{z:?}: A* {x:?} vs one-to-many {y:?}");
                    continue;
                };
                assert!((x.cost - y.cost).abs() <= 1e-3, "{a}→{z:?}: {x:?} vs {y:?}");
                if let (Some(f), Some(l)) = (y.links.first(), y.links.last()) {
                    assert_eq!((g.link(*f).from, g.link(*l).to), (NodeId(a), z));
                }
                for w in y.links.windows(2) {
                    assert!(g.turn_allowed(w[0], w[1]), "{a}→{z:?} takes a banned turn");
                }
            }
        }
    }

    #[test]
    fn one_search_routes_an_origin_to_many_targets_as_a_star_does() {
        one_to_many_matches_astar(&grid3());
    }

    #[test]
    fn contracted_routes_cost_what_a_star_finds_and_keep_turn_bans() {
        let base = grid3();
        contracted_matches_astar(&base);
        let find = |a: u32, b: u32| {
            LinkId(base.links().iter().position(|l| l.from == NodeId(a) && l.to == NodeId(b)).unwrap() as u32)
        };
        let mut b = GraphBuilder::new();
        for n in base.nodes() {
            b.node(n.source_id, n.pos, n.signal);
        }
        for l in base.links() {
            b.link(l.clone());
        }
        b.restriction(TurnRestriction { from: find(0, 1), to: find(1, 2), rule: TurnRule::Banned });
        let banned = b.build();
        contracted_matches_astar(&banned);
        one_to_many_matches_astar(&banned);
        let ch = ContractedRouter::new(&banned, Weight::Length);
        let route = ch.route(&mut ch.calculator(), NodeId(0), NodeId(2)).unwrap();
        assert!((route.length_m - 400.0).abs() < 1e-3, "the ban forces the 400 m detour: {route:?}");
    }
}
