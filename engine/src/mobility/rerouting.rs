//! Re-routing vehicles on their way, the rules both vehicle models share:
//!
//! - **around closed links** ([`detour`]): a vehicle whose remaining route uses a closed link takes the
//!   fastest free-flow route over the open links from the end of the link it is on;
//! - **by travel times** (`[mobility.rerouting]`, [`ReroutingParams`]): SUMO's rerouting device (SUMO
//!   documentation, "Demand/Automatic Routing": every vehicle re-computes its route every `period` on the
//!   current edge travel times, and at insertion), with link travel times measured as MATSim's
//!   `TravelTimeCalculator` measures them (Horni, Nagel & Axhausen 2016, *The Multi-Agent Transport
//!   Simulation MATSim*, ch. 4): the mean time vehicles that left a link in a time bin spent on it, the bin
//!   here being the re-routing period, free flow where none left. A link whose first vehicle has been on it
//!   longer than that counts at least that long, so a standing queue that lets no one out is seen as
//!   slow, not as free. A vehicle takes the new route only when it saves enough — a boundedly rational
//!   switching rule with a relative indifference band and an absolute minimum (Mahmassani & Jayakrishnan
//!   1991, "System performance and user response under real-time information in a congested traffic
//!   corridor", Transportation Research A 25(5)) — so routes do not flap between near-equal alternatives.
//!
//! [`TravelTimes`] keeps the measurements; the models feed it each vehicle's time on each link it leaves,
//! ask it when a period is over, and re-plan with [`faster_route`]. Buses (vehicles with stops) keep their
//! routes: only closures make them detour. New routes never take a turn banned from the link a vehicle is
//! on ([`Router::route_on`] with the current link).

use super::vehicles::{StopPlan, TIME_TOLERANCE_S};
use crate::city::graph::{Graph, LinkId, NodeId};
use crate::city::routing::{LinkCosts, Router, Weight};
use crate::scenario::check::{non_negative, positive, share, CheckError};
use crate::sim::{par_map_ranges, pool_threads};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// `[mobility.rerouting]`: vehicles re-plan their routes on the travel times they meet. Off unless the
/// section is given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReroutingParams {
    /// How often every vehicle on its way re-plans (s), also the window over which link travel times are
    /// measured: 300 s, the period SUMO's developers "often use in \[their\] own scenarios" (J. Erdmann,
    /// sumo-user list, 28 Sep 2018), longer than a signal cycle so the measurement smooths red and green.
    pub period_s: f64,
    /// A new route is taken only if it saves at least this share of the remaining route's expected time:
    /// 0.2, a relative indifference band in the range Mahmassani & Jayakrishnan (1991) studied.
    pub min_saving_share: f64,
    /// … and at least this much time (s): 60 s, their absolute minimum of one minute.
    pub min_saving_s: f64,
}

impl Default for ReroutingParams {
    fn default() -> Self {
        ReroutingParams { period_s: 300.0, min_saving_share: 0.2, min_saving_s: 60.0 }
    }
}

impl ReroutingParams {
    /// Checks ranges: the key at fault and why.
    pub fn validate(&self) -> Result<(), CheckError> {
        positive("period_s", self.period_s)?;
        share("min_saving_share", self.min_saving_share)?;
        non_negative("min_saving_s", self.min_saving_s)
    }
}

/// Link travel times as vehicles experience them, measured over each re-routing period.
#[derive(Clone, Debug)]
pub struct TravelTimes {
    params: ReroutingParams,
    /// Free-flow time of each link (s): length over speed limit.
    free_flow_s: Vec<f32>,
    /// Time on the link (s) of the vehicles that left it in the current period, summed, and their count.
    sum_s: Vec<f64>,
    count: Vec<u32>,
    /// The travel time (s) each link had over the last finished period (free flow before the first).
    estimate_s: Vec<f32>,
    /// When the current period ends (s); set by the first look at the clock.
    next_update_s: Option<f64>,
    /// Periods finished.
    updates: u64,
}

impl TravelTimes {
    /// Measurements over `graph`'s links; the first period starts at the first [`TravelTimes::due`].
    pub fn new(graph: &Graph, params: ReroutingParams) -> TravelTimes {
        let n = graph.links().len();
        let free_flow_s: Vec<f32> = (0..n as u32).map(|l| Weight::TravelTime.of(graph, LinkId(l))).collect();
        TravelTimes {
            next_update_s: None,
            params,
            estimate_s: free_flow_s.clone(),
            free_flow_s,
            sum_s: vec![0.0; n],
            count: vec![0; n],
            updates: 0,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &ReroutingParams {
        &self.params
    }

    /// A vehicle left `link` after `time_s` on it.
    pub fn record(&mut self, link: LinkId, time_s: f64) {
        let l = link.0 as usize;
        self.sum_s[l] += time_s.max(0.0);
        self.count[l] += 1;
    }

    /// Whether the current period is over at clock time `now_s` (the first call starts the first period).
    pub fn due(&mut self, now_s: f64) -> bool {
        let end = *self.next_update_s.get_or_insert(now_s + self.params.period_s);
        now_s + TIME_TOLERANCE_S >= end
    }

    /// Ends the period at `now_s`: each link's travel time becomes the mean of the times recorded on it,
    /// free flow where none was, and at least the time its longest-present vehicle has been on it
    /// (`occupied`: link and since when, any number per link); never below free flow. Starts the next
    /// period.
    pub fn update(&mut self, now_s: f64, occupied: impl IntoIterator<Item = (LinkId, f64)>) {
        for l in 0..self.estimate_s.len() {
            let ff = self.free_flow_s[l];
            self.estimate_s[l] = match self.count[l] {
                0 => ff,
                n => ((self.sum_s[l] / n as f64) as f32).max(ff),
            };
        }
        for (link, since_s) in occupied {
            let e = &mut self.estimate_s[link.0 as usize];
            *e = e.max((now_s - since_s) as f32);
        }
        self.sum_s.fill(0.0);
        self.count.fill(0);
        let mut end = self.next_update_s.unwrap_or(now_s);
        while end <= now_s + TIME_TOLERANCE_S {
            end += self.params.period_s;
        }
        self.next_update_s = Some(end);
        self.updates += 1;
    }

    /// Periods measured so far (no vehicle re-plans on travel times before the first).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The travel time (s) of `link` over the last period.
    pub fn estimate_s(&self, link: LinkId) -> f32 {
        self.estimate_s[link.0 as usize]
    }

    /// Free-flow time (s) of `link`.
    pub fn free_flow_s(&self, link: LinkId) -> f32 {
        self.free_flow_s[link.0 as usize]
    }
}

/// The route from the end of link `keep − 1` of `route` (from the start of its first link when `keep` is
/// 0) to the end of its last link, and the link the vehicle is on there (none before it entered).
fn rest_start(graph: &Graph, route: &[LinkId], keep: usize) -> (NodeId, Option<LinkId>, NodeId) {
    let destination = graph.link(*route.last().expect("routes are not empty")).to;
    match keep {
        0 => (graph.link(route[0]).from, None, destination),
        k => (graph.link(route[k - 1]).to, Some(route[k - 1]), destination),
    }
}

/// Re-routes the rest of a route around closed links: when a link after the first `keep` of `route` is
/// closed, gives the fastest free-flow route over the open links from the end of link `keep − 1` (from the
/// start of the first link when `keep` is 0, with no turn banned from the link the vehicle is on) to the end
/// of the last link, to replace `route[keep..]`. `None` when nothing on the rest is closed, when there is no
/// open way, and when nothing would be left to drive.
pub fn detour(
    graph: &Graph,
    router: &mut Router,
    route: &[LinkId],
    keep: usize,
    closed: &[bool],
) -> Option<Vec<LinkId>> {
    if !route[keep..].iter().any(|&l| closed[l.0 as usize]) {
        return None;
    }
    let (from, after, to) = rest_start(graph, route, keep);
    let free_flow = LinkCosts::Weight(Weight::TravelTime);
    let new = router.route_on(from, after, to, free_flow, |l| !closed[l.0 as usize])?;
    (!(new.links.is_empty() && keep == 0)).then_some(new.links)
}

/// Re-plans the rest of a route by the measured travel times: the fastest route over the open links from
/// where [`detour`] would start, to replace `route[keep..]`, when it saves at least
/// [`ReroutingParams::min_saving_share`] of the rest's expected time and [`ReroutingParams::min_saving_s`].
/// `None` otherwise, before the first measured period, on the last link, and when the rest uses a closed
/// link (that is [`detour`]'s case). A rest whose expected time exceeds its free-flow time by less than the
/// thresholds is not searched: for a route planned on free-flow times no other route could save enough.
pub fn faster_route(
    graph: &Graph,
    router: &mut Router,
    times: &TravelTimes,
    route: &[LinkId],
    keep: usize,
    closed: &[bool],
) -> Option<Vec<LinkId>> {
    let rest = route.get(keep..).filter(|r| !r.is_empty())?;
    if times.updates == 0 || rest.iter().any(|&l| closed[l.0 as usize]) {
        return None;
    }
    let expected: f64 = rest.iter().map(|&l| times.estimate_s(l) as f64).sum();
    let free: f64 = rest.iter().map(|&l| times.free_flow_s(l) as f64).sum();
    let p = &times.params;
    let enough = |saving: f64| saving >= p.min_saving_s && saving >= p.min_saving_share * expected;
    if !enough(expected - free) {
        return None;
    }
    let (from, after, to) = rest_start(graph, route, keep);
    let new = router.route_on(from, after, to, LinkCosts::TravelTimes(&times.estimate_s), |l| !closed[l.0 as usize])?;
    if new.links.is_empty() && keep == 0 {
        return None;
    }
    enough(expected - new.cost as f64).then_some(new.links)
}

/// Below this many vehicles to re-plan, re-planning runs on one thread.
const PARALLEL_FROM_VEHICLES: usize = 64;

/// A new rest of route for a vehicle: (vehicle index, links of the old route kept, the links after them).
pub type NewRoute = (u32, usize, Vec<LinkId>);

/// [`faster_route`] for many vehicles — `todo` lists (vehicle index, links kept), `route_of` gives a
/// vehicle's route — on the compute pool, one router per piece; the new routes in `todo`'s order, so the
/// result does not depend on the number of threads.
pub fn plan_faster_routes<'v>(
    graph: &Graph,
    times: &TravelTimes,
    closed: &[bool],
    todo: &[(u32, usize)],
    route_of: impl Fn(u32) -> &'v [LinkId] + Sync,
) -> Vec<NewRoute> {
    let chunks = if todo.len() < PARALLEL_FROM_VEHICLES { 1 } else { pool_threads() * CHUNKS_PER_THREAD };
    par_map_ranges(todo.len(), chunks, |range| {
        let mut router = Router::new(graph);
        todo[range]
            .iter()
            .filter_map(|&(id, keep)| {
                faster_route(graph, &mut router, times, route_of(id), keep, closed).map(|rest| (id, keep, rest))
            })
            .collect::<Vec<NewRoute>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// [`detour`] for many vehicles — `todo` lists (vehicle index, links kept), `route_of` gives a vehicle's
/// route — in `todo`'s order.
pub fn plan_detours<'v>(
    graph: &Graph,
    closed: &[bool],
    todo: &[(u32, usize)],
    route_of: impl Fn(u32) -> &'v [LinkId],
) -> Vec<NewRoute> {
    let mut router = Router::new(graph);
    todo.iter()
        .filter_map(|&(id, keep)| detour(graph, &mut router, route_of(id), keep, closed).map(|rest| (id, keep, rest)))
        .collect()
}

/// Puts `rest` in place of `route[keep..]` and re-aligns the vehicle's stops to it; returns the route's
/// first link before (a vehicle waiting to enter whose first link changed waits elsewhere now).
pub fn take_new_route(route: &mut Vec<LinkId>, stops: &mut StopPlan, keep: usize, rest: Vec<LinkId>) -> LinkId {
    let first = route[0];
    route.truncate(keep);
    route.extend(rest);
    stops.realign(route, keep);
    first
}

/// Moves vehicle `id` from the waiting list of link `from` to that of `to`; whether it was waiting there.
pub fn wait_elsewhere(pending: &mut [VecDeque<u32>], id: u32, from: LinkId, to: LinkId) -> bool {
    let queue = &mut pending[from.0 as usize];
    let Some(i) = queue.iter().position(|&q| q == id) else { return false };
    queue.remove(i);
    pending[to.0 as usize].push_back(id);
    true
}

/// Pieces per thread re-planning is split into (some balance for uneven searches).
const CHUNKS_PER_THREAD: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::graph::tests::grid3;

    fn find(g: &Graph, a: u32, b: u32) -> LinkId {
        LinkId(g.links().iter().position(|l| l.from == NodeId(a) && l.to == NodeId(b)).unwrap() as u32)
    }

    #[test]
    fn a_period_averages_the_times_recorded_and_a_standing_queue_counts_as_slow() {
        let g = grid3();
        let (l01, l12, l34) = (find(&g, 0, 1), find(&g, 1, 2), find(&g, 3, 4));
        let mut t = TravelTimes::new(&g, ReroutingParams::default());
        assert!(!t.due(0.0) && !t.due(299.0) && t.due(300.0));
        t.record(l01, 30.0);
        t.record(l01, 50.0);
        t.record(l34, 1.0); // faster than free flow (10 s) is free flow
        t.update(300.0, [(l12, 100.0), (l12, 250.0)]);
        assert_eq!(t.updates(), 1);
        assert_eq!(t.estimate_s(l01), 40.0);
        assert_eq!(t.estimate_s(l34), 10.0);
        assert_eq!(t.estimate_s(l12), 200.0, "on it since 100 s");
        assert_eq!(t.estimate_s(find(&g, 4, 5)), 10.0);
        assert!(!t.due(599.0) && t.due(600.0));
        // The next period starts afresh.
        t.update(600.0, []);
        assert_eq!(t.estimate_s(l01), 10.0);
        assert_eq!(t.estimate_s(l12), 10.0);
    }

    #[test]
    fn a_vehicle_takes_a_faster_route_only_when_it_saves_enough() {
        let g = grid3();
        let closed = vec![false; g.links().len()];
        let mut router = Router::new(&g);
        // 0→1→2→5→8 (40 s at free flow).
        let route = vec![find(&g, 0, 1), find(&g, 1, 2), find(&g, 2, 5), find(&g, 5, 8)];
        let mut t = TravelTimes::new(&g, ReroutingParams::default());
        assert_eq!(faster_route(&g, &mut router, &t, &route, 1, &closed), None, "nothing measured yet");
        // 2→5 takes 150 s: the rest 1→2→5→8 expects 170 s; 1→4→5→8 takes 30 s.
        t.record(find(&g, 2, 5), 150.0);
        t.update(300.0, []);
        let new = faster_route(&g, &mut router, &t, &route, 1, &closed).expect("saves 140 s");
        assert_eq!(new, vec![find(&g, 1, 4), find(&g, 4, 5), find(&g, 5, 8)]);
        // Past the slow link there is nothing to gain; on the last link nothing to re-plan.
        assert_eq!(faster_route(&g, &mut router, &t, &route, 3, &closed), None);
        assert_eq!(faster_route(&g, &mut router, &t, &route, 4, &closed), None);
        // A 50 s saving is below the one-minute minimum.
        let mut t = TravelTimes::new(&g, ReroutingParams::default());
        t.record(find(&g, 2, 5), 60.0);
        t.update(300.0, []);
        assert_eq!(faster_route(&g, &mut router, &t, &route, 1, &closed), None);
        // With a lower minimum it is taken.
        let params = ReroutingParams { min_saving_s: 30.0, ..ReroutingParams::default() };
        let mut t = TravelTimes::new(&g, params);
        t.record(find(&g, 2, 5), 60.0);
        t.update(300.0, []);
        assert!(faster_route(&g, &mut router, &t, &route, 1, &closed).is_some());
        // A closed link on the rest is left to the closure rule.
        let mut shut = closed.clone();
        shut[find(&g, 5, 8).0 as usize] = true;
        assert_eq!(faster_route(&g, &mut router, &t, &route, 1, &shut), None);
        let around = detour(&g, &mut router, &route, 1, &shut).expect("a way round");
        assert!(!around.contains(&find(&g, 5, 8)) && g.link(*around.last().unwrap()).to == NodeId(8));
    }

    #[test]
    fn bad_parameters_are_refused_by_key() {
        let bad = ReroutingParams { min_saving_share: 1.5, ..ReroutingParams::default() };
        assert_eq!(bad.validate().unwrap_err().0, "min_saving_share");
        let bad = ReroutingParams { period_s: 0.0, ..ReroutingParams::default() };
        assert_eq!(bad.validate().unwrap_err().0, "period_s");
        let bad = ReroutingParams { min_saving_s: -1.0, ..ReroutingParams::default() };
        assert_eq!(bad.validate().unwrap_err().0, "min_saving_s");
        assert!(ReroutingParams::default().validate().is_ok());
    }
}
