//! The fleet's dispatcher: capacitated vehicle routing by construction and local search.
//!
//! 1. **Construction**: the parallel savings algorithm of Clarke & Wright (1964, "Scheduling of vehicles
//!    from a central depot to a number of delivery points", Operations Research 12(4)), over the savings of
//!    each stop with its nearest neighbours.
//! 2. **Local search** to a local optimum of the classic neighbourhoods: relocate a stop, swap two stops,
//!    2-opt within a route and 2-opt* between routes (Potvin & Rousseau 1995), each stop tried only with its
//!    `neighbours` nearest stops (granular neighbourhoods, Toth & Vigo 2003); a queue of stops whose routes
//!    changed drives it.
//! 3. **Ruin and recreate** (Schrimpf et al. 2000, "Record breaking optimization results using the ruin and
//!    recreate principle", J. Computational Physics 159): for `rounds` rounds, remove a stop and its nearest
//!    neighbours, put them back where each costs least, search locally again, and keep the result when it
//!    is within a shrinking threshold of the best (record-to-record acceptance, Dueck 1993).
//!
//! Deterministic: the only randomness is a ChaCha8 stream of `seed`; no time limits.

use super::vrp::Cvrp;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// Settings of the dispatcher.
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchParams {
    /// Nearest stops each stop is tried with in the local search: 30.
    pub neighbours: usize,
    /// Ruin-and-recreate rounds: 3 000.
    pub rounds: usize,
    /// Stops removed per ruin: between 5 and 30 (uniform), following Schrimpf et al.'s radial ruin.
    pub ruin_stops: (usize, usize),
    /// Record-to-record threshold at the first round, as a share of the best distance: 0.01, shrinking
    /// linearly to 0 at the last round.
    pub threshold: f64,
    /// Seed of the random choices.
    pub seed: u64,
}

impl Default for DispatchParams {
    fn default() -> Self {
        DispatchParams { neighbours: 30, rounds: 3000, ruin_stops: (5, 30), threshold: 0.01, seed: 1 }
    }
}

/// Routes: each a sequence of customer nodes (the depot at both ends implied), and their total distance.
#[derive(Clone, Debug, PartialEq)]
pub struct Routes {
    /// Customer nodes per route, in visiting order.
    pub routes: Vec<Vec<usize>>,
    /// Total distance.
    pub distance: u64,
}

/// Solves `p`; every customer is on exactly one route and no route exceeds the capacity.
pub fn solve(p: &Cvrp, params: &DispatchParams) -> Routes {
    let n = p.len();
    if n <= 1 {
        return Routes { routes: Vec::new(), distance: 0 };
    }
    let near = nearest(p, params.neighbours);
    let mut current = State::savings(p, &near);
    current.local_search(&near, (1..n).collect());
    let mut best = current.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    for round in 0..params.rounds {
        let mut trial = current.clone();
        let removed = trial.ruin(&near, &mut rng, params.ruin_stops);
        let touched = trial.recreate(&removed, &mut rng);
        trial.local_search(&near, touched);
        let threshold = params.threshold * (1.0 - round as f64 / params.rounds as f64);
        if (trial.total() as f64) < best.total() as f64 * (1.0 + threshold) {
            current = trial;
            if current.total() < best.total() {
                best = current.clone();
            }
        }
    }
    best.routes.retain(|r| !r.is_empty());
    Routes {
        distance: best.total(),
        routes: best.routes.iter().map(|r| r.iter().map(|&c| c as usize).collect()).collect(),
    }
}

/// The total distance of `routes` on `p`.
pub fn distance(p: &Cvrp, routes: &[Vec<usize>]) -> u64 {
    routes
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| {
            let inner: u64 = r.windows(2).map(|w| p.d(w[0], w[1]) as u64).sum();
            p.d(0, r[0]) as u64 + inner + p.d(r[r.len() - 1], 0) as u64
        })
        .sum()
}

/// Each customer's `k` nearest customers, nearest first (ties by node number).
fn nearest(p: &Cvrp, k: usize) -> Vec<Vec<u32>> {
    let n = p.len();
    let mut near = vec![Vec::new(); n];
    for (c, list) in near.iter_mut().enumerate().skip(1) {
        let mut others: Vec<u32> = (1..n as u32).filter(|&o| o as usize != c).collect();
        let k = k.min(others.len());
        if k == 0 {
            continue;
        }
        others.select_nth_unstable_by_key(k - 1, |&o| (p.d(c, o as usize), o));
        others.truncate(k);
        others.sort_unstable_by_key(|&o| (p.d(c, o as usize), o));
        *list = others;
    }
    near
}

#[derive(Clone)]
struct State<'a> {
    p: &'a Cvrp,
    routes: Vec<Vec<u32>>,
    load: Vec<u32>,
    cost: Vec<u64>,
    route_of: Vec<u32>,
    pos: Vec<u32>,
}

const DEPOT: usize = 0;

impl<'a> State<'a> {
    fn d(&self, a: usize, b: usize) -> i64 {
        self.p.d(a, b) as i64
    }

    fn total(&self) -> u64 {
        self.cost.iter().sum()
    }

    /// Recomputes positions, load and cost of route `r`.
    fn refresh(&mut self, r: usize) {
        let route = &self.routes[r];
        let mut load = 0;
        for (k, &c) in route.iter().enumerate() {
            self.route_of[c as usize] = r as u32;
            self.pos[c as usize] = k as u32;
            load += self.p.demand[c as usize];
        }
        self.load[r] = load;
        let c: Vec<usize> = route.iter().map(|&c| c as usize).collect();
        self.cost[r] = distance(self.p, std::slice::from_ref(&c));
    }

    fn prev(&self, c: usize) -> usize {
        let (r, k) = (self.route_of[c] as usize, self.pos[c] as usize);
        if k == 0 {
            DEPOT
        } else {
            self.routes[r][k - 1] as usize
        }
    }

    fn next(&self, c: usize) -> usize {
        let (r, k) = (self.route_of[c] as usize, self.pos[c] as usize);
        self.routes[r].get(k + 1).map_or(DEPOT, |&x| x as usize)
    }

    /// Clarke and Wright's parallel savings over neighbour pairs.
    fn savings(p: &'a Cvrp, near: &[Vec<u32>]) -> State<'a> {
        let n = p.len();
        let mut s = State {
            p,
            routes: (1..n as u32).map(|c| vec![c]).collect(),
            load: vec![0; n - 1],
            cost: vec![0; n - 1],
            route_of: vec![0; n],
            pos: vec![0; n],
        };
        for r in 0..n - 1 {
            s.refresh(r);
        }
        let mut pairs: Vec<(i64, u32, u32)> = Vec::new();
        for (i, list) in near.iter().enumerate().skip(1) {
            for &j in list {
                if (i as u32) < j {
                    let saving = s.d(DEPOT, i) + s.d(DEPOT, j as usize) - s.d(i, j as usize);
                    pairs.push((-saving, i as u32, j));
                }
            }
        }
        pairs.sort_unstable();
        for (_, i, j) in pairs {
            let (i, j) = (i as usize, j as usize);
            let (ri, rj) = (s.route_of[i] as usize, s.route_of[j] as usize);
            if ri == rj || s.load[ri] + s.load[rj] > p.capacity {
                continue;
            }
            let at_end = |s: &State, c: usize, r: usize| s.pos[c] == 0 || s.pos[c] as usize == s.routes[r].len() - 1;
            if !at_end(&s, i, ri) || !at_end(&s, j, rj) {
                continue;
            }
            // Orient: i last in its route, j first in its route, then append.
            if s.pos[i] == 0 && s.routes[ri].len() > 1 {
                s.routes[ri].reverse();
            }
            if s.pos[j] != 0 {
                s.routes[rj].reverse();
            }
            let tail = std::mem::take(&mut s.routes[rj]);
            s.routes[ri].extend(tail);
            s.refresh(ri);
            s.refresh(rj);
        }
        s.compact();
        s
    }

    /// Drops empty routes.
    fn compact(&mut self) {
        self.routes.retain(|r| !r.is_empty());
        self.load = vec![0; self.routes.len()];
        self.cost = vec![0; self.routes.len()];
        for r in 0..self.routes.len() {
            self.refresh(r);
        }
    }

    fn load_prefix(&self, r: usize, upto: usize) -> u32 {
        self.routes[r][..upto].iter().map(|&c| self.p.demand[c as usize]).sum()
    }

    /// First-improvement local search from the stops in `queue`; returns when no move improves.
    fn local_search(&mut self, near: &[Vec<u32>], queue: Vec<usize>) {
        let n = self.p.len();
        let mut active = vec![false; n];
        let mut queue: VecDeque<usize> =
            queue.into_iter().filter(|&c| !std::mem::replace(&mut active[c], true)).collect();
        while let Some(u) = queue.pop_front() {
            active[u] = false;
            let mut changed: Option<(usize, usize)> = None;
            for &v in &near[u] {
                let v = v as usize;
                if let Some(routes) = self.try_moves(u, v) {
                    changed = Some(routes);
                    break;
                }
            }
            if let Some((a, b)) = changed {
                for r in [a, b] {
                    for &c in &self.routes[r] {
                        if !std::mem::replace(&mut active[c as usize], true) {
                            queue.push_back(c as usize);
                        }
                    }
                }
                if !std::mem::replace(&mut active[u], true) {
                    queue.push_back(u);
                }
            }
        }
        self.compact();
    }

    /// Applies the first improving move between `u` and its neighbour `v`; returns the routes changed.
    fn try_moves(&mut self, u: usize, v: usize) -> Option<(usize, usize)> {
        let cap = self.p.capacity;
        let (ru, rv) = (self.route_of[u] as usize, self.route_of[v] as usize);
        let (pu, nu, pv, nv) = (self.prev(u), self.next(u), self.prev(v), self.next(v));
        let du = self.p.demand[u];
        let removal = self.d(pu, u) + self.d(u, nu) - self.d(pu, nu);
        let fits = ru == rv || self.load[rv] + du <= cap;
        // Relocate u right after v, or right before v.
        if fits && v != pu {
            let gain = removal - (self.d(v, u) + self.d(u, nv) - self.d(v, nv));
            if gain > 0 && nv != u {
                self.relocate(u, v, true);
                return Some((ru, rv));
            }
        }
        if fits && v != nu {
            let gain = removal - (self.d(pv, u) + self.d(u, v) - self.d(pv, v));
            if gain > 0 && pv != u {
                self.relocate(u, v, false);
                return Some((ru, rv));
            }
        }
        if ru != rv {
            let dv = self.p.demand[v];
            // Swap u and v.
            if self.load[ru] - du + dv <= cap && self.load[rv] - dv + du <= cap {
                let before = self.d(pu, u) + self.d(u, nu) + self.d(pv, v) + self.d(v, nv);
                let after = self.d(pu, v) + self.d(v, nu) + self.d(pv, u) + self.d(u, nv);
                if after < before {
                    let (iu, iv) = (self.pos[u] as usize, self.pos[v] as usize);
                    self.routes[ru][iu] = v as u32;
                    self.routes[rv][iv] = u as u32;
                    self.refresh(ru);
                    self.refresh(rv);
                    return Some((ru, rv));
                }
            }
            // 2-opt*: exchange the tails after u and after v ...
            let (iu, iv) = (self.pos[u] as usize + 1, self.pos[v] as usize + 1);
            let (head_u, head_v) = (self.load_prefix(ru, iu), self.load_prefix(rv, iv));
            let (tail_u, tail_v) = (self.load[ru] - head_u, self.load[rv] - head_v);
            let removed = self.d(u, nu) + self.d(v, nv);
            if head_u + tail_v <= cap && head_v + tail_u <= cap && self.d(u, nv) + self.d(v, nu) < removed {
                let tu: Vec<u32> = self.routes[ru].split_off(iu);
                let tv: Vec<u32> = self.routes[rv].split_off(iv);
                self.routes[ru].extend(tv);
                self.routes[rv].extend(tu);
                self.refresh(ru);
                self.refresh(rv);
                return Some((ru, rv));
            }
            // ... or join u to v: head of u + reversed head of v, reversed tail of u + tail of v.
            if head_u + head_v <= cap && tail_u + tail_v <= cap && self.d(u, v) + self.d(nu, nv) < removed {
                let tu: Vec<u32> = self.routes[ru].split_off(iu);
                let tv: Vec<u32> = self.routes[rv].split_off(iv);
                let mut hv = std::mem::take(&mut self.routes[rv]);
                hv.reverse();
                self.routes[ru].extend(hv);
                let mut new_v: Vec<u32> = tu.into_iter().rev().collect();
                new_v.extend(tv);
                self.routes[rv] = new_v;
                self.refresh(ru);
                self.refresh(rv);
                return Some((ru, rv));
            }
        } else {
            // 2-opt within the route: edges (a, next a) and (b, next b) become (a, b) and (next a, next b).
            let (a, b) = if self.pos[u] < self.pos[v] { (u, v) } else { (v, u) };
            let (na, nb) = (self.next(a), self.next(b));
            if na != b && self.d(a, b) + self.d(na, nb) < self.d(a, na) + self.d(b, nb) {
                let (i, j) = (self.pos[a] as usize + 1, self.pos[b] as usize);
                self.routes[ru][i..=j].reverse();
                self.refresh(ru);
                return Some((ru, ru));
            }
        }
        None
    }

    /// Moves `u` next to `v` (after it if `after`).
    fn relocate(&mut self, u: usize, v: usize, after: bool) {
        let ru = self.route_of[u] as usize;
        self.routes[ru].remove(self.pos[u] as usize);
        self.refresh(ru);
        let rv = self.route_of[v] as usize;
        let at = self.pos[v] as usize + after as usize;
        self.routes[rv].insert(at, u as u32);
        self.refresh(rv);
    }

    /// Removes a random stop and its nearest neighbours; returns them.
    fn ruin(&mut self, near: &[Vec<u32>], rng: &mut ChaCha8Rng, (lo, hi): (usize, usize)) -> Vec<usize> {
        let n = self.p.len();
        let seed = rng.random_range(1..n);
        let count = rng.random_range(lo..=hi.max(lo)).min(n - 1);
        let mut removed = vec![seed];
        removed.extend(near[seed].iter().take(count.saturating_sub(1)).map(|&c| c as usize));
        let mut routes: Vec<usize> = removed.iter().map(|&c| self.route_of[c] as usize).collect();
        routes.sort_unstable();
        routes.dedup();
        let mut gone = vec![false; n];
        for &c in &removed {
            gone[c] = true;
        }
        for &r in &routes {
            self.routes[r].retain(|&c| !gone[c as usize]);
            self.refresh(r);
        }
        removed
    }

    /// Puts `removed` back, in random order, each where it adds least distance (a new route if it fits
    /// nowhere); returns the stops of the routes that received them.
    fn recreate(&mut self, removed: &[usize], rng: &mut ChaCha8Rng) -> Vec<usize> {
        let mut order = removed.to_vec();
        order.shuffle(rng);
        let mut touched_routes = Vec::new();
        for c in order {
            let dc = self.p.demand[c];
            let mut best: Option<(i64, usize, usize)> = None;
            for r in 0..self.routes.len() {
                if self.load[r] + dc > self.p.capacity {
                    continue;
                }
                let route = &self.routes[r];
                for k in 0..=route.len() {
                    let a = if k == 0 { DEPOT } else { route[k - 1] as usize };
                    let b = route.get(k).map_or(DEPOT, |&x| x as usize);
                    let add = self.d(a, c) + self.d(c, b) - self.d(a, b);
                    if best.is_none_or(|(bst, _, _)| add < bst) {
                        best = Some((add, r, k));
                    }
                }
            }
            let r = match best {
                Some((_, r, k)) => {
                    self.routes[r].insert(k, c as u32);
                    r
                }
                None => {
                    self.routes.push(vec![c as u32]);
                    self.load.push(0);
                    self.cost.push(0);
                    self.routes.len() - 1
                }
            };
            self.refresh(r);
            touched_routes.push(r);
        }
        touched_routes.sort_unstable();
        touched_routes.dedup();
        touched_routes.iter().flat_map(|&r| self.routes[r].iter().map(|&c| c as usize)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, capacity: u32, seed: u64) -> Cvrp {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut coords = vec![(500.0, 500.0)];
        let mut demand = vec![0];
        for _ in 0..n {
            coords.push((rng.random_range(0..=1000) as f64, rng.random_range(0..=1000) as f64));
            demand.push(rng.random_range(1..=10));
        }
        Cvrp::euclidean("random", coords, demand, capacity)
    }

    fn check_feasible(p: &Cvrp, r: &Routes) {
        let mut seen = vec![0; p.len()];
        for route in &r.routes {
            assert!(!route.is_empty());
            let load: u32 = route.iter().map(|&c| p.demand[c]).sum();
            assert!(load <= p.capacity, "route load {load} over {}", p.capacity);
            for &c in route {
                seen[c] += 1;
            }
        }
        assert!(seen[1..].iter().all(|&s| s == 1), "every customer exactly once");
        assert_eq!(seen[0], 0);
        assert_eq!(r.distance, distance(p, &r.routes));
    }

    #[test]
    fn routes_are_feasible_and_better_than_the_savings() {
        let p = random(200, 55, 3);
        let near = nearest(&p, 30);
        let savings = State::savings(&p, &near).total();
        let r = solve(&p, &DispatchParams { rounds: 300, ..DispatchParams::default() });
        check_feasible(&p, &r);
        assert!(r.distance < savings, "{} vs savings {savings}", r.distance);
        // Deterministic for a seed.
        assert_eq!(r, solve(&p, &DispatchParams { rounds: 300, ..DispatchParams::default() }));
    }

    #[test]
    fn a_circle_of_stops_is_served_as_a_circle() {
        // 12 stops on a circle of radius 100 around the depot, capacity for all: the optimal tour is the
        // 12-gon, perimeter 12 · 2 · 100 · sin(15°) ≈ 621, plus 2 × 100 to reach it and come back.
        let mut coords = vec![(0.0, 0.0)];
        for k in 0..12 {
            let a = k as f64 * std::f64::consts::PI / 6.0;
            coords.push((100.0 * a.cos(), 100.0 * a.sin()));
        }
        let p = Cvrp::euclidean("circle", coords, [0].into_iter().chain([1; 12]).collect(), 100);
        let r = solve(&p, &DispatchParams { rounds: 50, ..DispatchParams::default() });
        check_feasible(&p, &r);
        assert_eq!(r.routes.len(), 1);
        // 11 chords of nint(51.76) = 52 plus two spokes of 100.
        assert_eq!(r.distance, 11 * 52 + 200);
    }
}
