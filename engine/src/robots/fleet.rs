//! The delivery-robot fleet: depots, robots with batteries, orders, dispatch and the day's operation.
//!
//! Every `dispatch_interval_s` each depot's waiting orders go to the dispatcher ([`super::dispatch`]) as a
//! CVRP on footpath distances (Dijkstra from every stop), with the robot's payload as capacity; its tours go
//! to the depot's idle robots with enough charge, oldest orders first; the rest wait for the next round.
//! Robots walk the footpaths in the sidewalk crowd ([`crate::crowd`]), so they meet pedestrians and each
//! other; routes are A* on the footpaths that are open. At each door the robot stands for the hand-over
//! time; a stop it cannot reach (closed footpaths) fails and counts, as flooding when a closure is the
//! cause. After its tour, or when its charge would not cover the rest of the tour and the way back with the
//! reserve, a robot returns to its depot and charges at the charger's power; the charging power is what the
//! grid sees.
//!
//! Energy: the battery drains by `consumption_wh_per_km` for every kilometre walked. A remote operator
//! watches `robots_per_operator` robots while they are out.

use super::dispatch::{self, DispatchParams};
use super::orders::Order;
use super::vrp::Cvrp;
use crate::city::graph::NodeId;
use crate::city::routing::{Router, Weight};
use crate::city::City;
use crate::crowd::{AgentId, AgentSpec, Crowd};
use glam::Vec2;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A robot's fleet parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RobotParams {
    /// Top speed (m/s): 6 km/h, [`crate::crowd::ROBOT_SPEED_LIMIT_MPS`].
    pub speed_mps: f32,
    /// Parcels carried at once: 4, an assumption for multi-compartment robots; set it per fleet.
    pub payload_parcels: u32,
    /// Battery (Wh): 1 000 Wh, an assumption (vendors do not publish it); set it from the data sheet.
    pub battery_wh: f32,
    /// Consumption (Wh/km): the battery over the range, 1 000 Wh / 4.8 km ≈ 210 Wh/km, from the 2–2.5 h
    /// and "about 3 miles" Starship gave for its robot (Financial Times, 2016).
    pub consumption_wh_per_km: f32,
    /// Charger power at the depot (kW): 0.5 kW, an assumption (a 2 h full charge).
    pub charger_kw: f32,
    /// Charge kept in reserve (share of the battery): 0.2.
    pub reserve_share: f32,
    /// A robot leaves the depot only with at least this share of charge: 0.5.
    pub dispatch_share: f32,
    /// Time at each door to hand the parcel over (s): 60 s, an assumption.
    pub handover_s: f64,
    /// A robot standing still this long (s) on its way re-plans around the footpath it is blocked on (its
    /// remote operator's call): 120 s, an assumption.
    pub replan_after_s: f64,
}

impl Default for RobotParams {
    fn default() -> Self {
        RobotParams {
            speed_mps: crate::crowd::ROBOT_SPEED_LIMIT_MPS,
            payload_parcels: 4,
            battery_wh: 1000.0,
            consumption_wh_per_km: 1000.0 / 4.8,
            charger_kw: 0.5,
            reserve_share: 0.2,
            dispatch_share: 0.5,
            handover_s: 60.0,
            replan_after_s: 120.0,
        }
    }
}

/// The fleet's costs, for the cost per parcel. All are assumptions to be replaced by the operator's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostParams {
    /// Purchase price of a robot: 5 500 (currency units).
    pub robot_capex: f64,
    /// Years a robot is written off over: 5.
    pub robot_life_years: f64,
    /// Operator cost per hour: 25.
    pub operator_per_h: f64,
    /// Energy price per kWh: 0.25.
    pub energy_per_kwh: f64,
}

impl Default for CostParams {
    fn default() -> Self {
        CostParams { robot_capex: 5500.0, robot_life_years: 5.0, operator_per_h: 25.0, energy_per_kwh: 0.25 }
    }
}

/// A depot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Depot {
    /// Where it is (m, local frame).
    pub at: [f32; 2],
    /// Robots based there.
    pub robots: u32,
}

/// How the fleet operates.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetParams {
    /// Depots.
    pub depots: Vec<Depot>,
    /// The robots.
    pub robot: RobotParams,
    /// Costs.
    pub costs: CostParams,
    /// Time between dispatch rounds (s): 300 s.
    pub dispatch_interval_s: f64,
    /// The dispatcher's settings (fewer ruin-and-recreate rounds than for benchmark instances: a round is
    /// solved every few minutes).
    pub dispatch: DispatchParams,
    /// Robots one remote operator watches: 4, as in Japan's remote-operation trials; an assumption.
    pub robots_per_operator: f64,
}

impl Default for FleetParams {
    fn default() -> Self {
        FleetParams {
            depots: Vec::new(),
            robot: RobotParams::default(),
            costs: CostParams::default(),
            dispatch_interval_s: 300.0,
            dispatch: DispatchParams { rounds: 300, ..DispatchParams::default() },
            robots_per_operator: 4.0,
        }
    }
}

/// What a robot is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RobotState {
    /// At its depot, ready.
    Idle,
    /// At its depot, charging.
    Charging,
    /// Walking to a door.
    Delivering,
    /// Handing a parcel over at a door.
    HandingOver,
    /// Walking back to the depot.
    Returning,
}

/// Why a delivery failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The door could not be reached on open footpaths because some are closed (flooding).
    Flooded,
    /// The door is not reachable at all from the robot's depot.
    Unreachable,
}

/// What happened to an order.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not yet placed, or waiting for a robot.
    Waiting,
    /// On a robot.
    Assigned,
    /// Delivered at this time (s since midnight).
    Delivered(f64),
    /// Failed.
    Failed(Failure),
}

struct Robot {
    agent: AgentId,
    depot: usize,
    state: RobotState,
    battery_wh: f64,
    tour: VecDeque<u32>,
    /// Node the robot is at or last passed.
    node: NodeId,
    walked_m: f64,
    handover_until_s: f64,
    /// Standing time (s) at which a blocked robot next tries a detour.
    next_replan_still_s: f64,
}

/// Totals of the fleet's day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FleetStats {
    /// Robots in the fleet.
    pub robots: usize,
    /// Orders placed so far.
    pub orders: usize,
    /// Parcels delivered.
    pub delivered: usize,
    /// Of those, delivered by their due time.
    pub on_time: usize,
    /// Deliveries failed, and of those because of flooding.
    pub failed: usize,
    /// Deliveries failed because closed (flooded) footpaths cut the way.
    pub failed_flooded: usize,
    /// Mean time from order to delivery (s).
    pub mean_delivery_s: f64,
    /// Distance robots walked (km).
    pub robot_km: f64,
    /// Energy charged at the depots (kWh).
    pub charged_kwh: f64,
    /// Robot-hours plugged in at a depot without supply (a grid outage), not charging.
    pub robot_hours_without_supply: f64,
    /// Energy the robots used walking (kWh).
    pub used_kwh: f64,
    /// Robot-hours out of the depot.
    pub robot_hours_out: f64,
    /// Operator-hours: robot-hours out / robots per operator.
    pub operator_hours: f64,
    /// Cost per delivered parcel (currency units): robots written off per day, operators, energy used.
    pub cost_per_parcel: f64,
    /// Energy used per delivered parcel (kWh).
    pub kwh_per_parcel: f64,
    /// Dispatch rounds run.
    pub dispatch_rounds: usize,
    /// Robots blocked on a footpath (standing still `replan_after_s`) sent round it.
    pub replans_when_blocked: usize,
}

/// Errors setting up a fleet.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FleetError {
    /// A depot is not near any footpath.
    #[error("depot {0} at ({1}, {2}) m is not near a footpath")]
    DepotOffNetwork(usize, f32, f32),
    /// An order's building is not near any footpath.
    #[error("order {0}: building {1} is not near a footpath")]
    OrderOffNetwork(u32, u32),
}

/// The fleet in the crowd.
pub struct Fleet {
    params: FleetParams,
    depot_nodes: Vec<NodeId>,
    robots: Vec<Robot>,
    orders: Vec<Order>,
    order_nodes: Vec<NodeId>,
    order_depot: Vec<usize>,
    outcomes: Vec<Outcome>,
    /// Index of the first order not yet placed.
    next_order: usize,
    waiting: Vec<u32>,
    closed: Vec<bool>,
    /// Whether each depot's chargers have supply (written by the coupling from the grid).
    depot_supplied: Vec<bool>,
    /// Energy charged at each depot (kWh).
    depot_charged_kwh: Vec<f64>,
    next_dispatch_s: f64,
    stats: FleetStats,
    delivery_s_sum: f64,
}

/// The node of `graph` nearest `p` along the nearest link.
fn nearest_node(city: &City, p: Vec2) -> Option<NodeId> {
    let (link, _) = city.nearest_footpath(p)?;
    let l = city.footpaths.link(link);
    let (a, b) = (l.from, l.to);
    Some(if city.footpaths.node(a).pos.distance(p) <= city.footpaths.node(b).pos.distance(p) { a } else { b })
}

impl Fleet {
    /// Places the robots at their depots (off the sidewalk, in `crowd`) and takes the day's `orders`.
    pub fn new(
        city: &City,
        crowd: &mut Crowd,
        params: FleetParams,
        orders: Vec<Order>,
        start_s: f64,
    ) -> Result<Fleet, FleetError> {
        let mut depot_nodes = Vec::new();
        for (k, d) in params.depots.iter().enumerate() {
            let p = Vec2::from(d.at);
            depot_nodes.push(nearest_node(city, p).ok_or(FleetError::DepotOffNetwork(k, p.x, p.y))?);
        }
        let mut robots = Vec::new();
        for (k, d) in params.depots.iter().enumerate() {
            for _ in 0..d.robots {
                let agent = crowd.add(AgentSpec::robot(params.robot.speed_mps));
                robots.push(Robot {
                    agent,
                    depot: k,
                    state: RobotState::Idle,
                    battery_wh: params.robot.battery_wh as f64,
                    tour: VecDeque::new(),
                    node: depot_nodes[k],
                    walked_m: 0.0,
                    handover_until_s: 0.0,
                    next_replan_still_s: params.robot.replan_after_s,
                });
            }
        }
        // Each order goes to the depot nearest its door on foot.
        let mut router = Router::new(&city.footpaths);
        let mut trees = Vec::new();
        for &n in &depot_nodes {
            let mut lengths = Vec::new();
            router.tree(n, Weight::Length, &mut lengths);
            trees.push(lengths);
        }
        let mut order_nodes = Vec::with_capacity(orders.len());
        let mut order_depot = Vec::with_capacity(orders.len());
        for o in &orders {
            let b = &city.buildings[o.building as usize];
            let node = nearest_node(city, b.centroid).ok_or(FleetError::OrderOffNetwork(o.id, o.building))?;
            order_nodes.push(node);
            let best =
                (0..depot_nodes.len()).min_by(|&x, &y| trees[x][node.0 as usize].total_cmp(&trees[y][node.0 as usize]));
            order_depot.push(best.unwrap_or(0));
        }
        let outcomes = vec![Outcome::Waiting; orders.len()];
        let stats = FleetStats { robots: robots.len(), ..FleetStats::default() };
        let depots = depot_nodes.len();
        Ok(Fleet {
            depot_nodes,
            params,
            robots,
            orders,
            order_nodes,
            order_depot,
            outcomes,
            next_order: 0,
            waiting: Vec::new(),
            closed: vec![false; city.footpaths.links().len()],
            depot_supplied: vec![true; depots],
            depot_charged_kwh: vec![0.0; depots],
            next_dispatch_s: start_s,
            stats,
            delivery_s_sum: 0.0,
        })
    }

    /// Closes or opens footpath links (flooding); robots on their way re-route at their next leg.
    pub fn set_closed(&mut self, closed: &[bool]) {
        self.closed.clear();
        self.closed.extend_from_slice(closed);
    }

    /// Gives or cuts the supply of each depot's chargers (a grid outage): robots plugged in at a depot
    /// without supply do not charge.
    pub fn set_depot_supply(&mut self, supplied: &[bool]) {
        for (s, &on) in self.depot_supplied.iter_mut().zip(supplied) {
            *s = on;
        }
    }

    /// Whether depot `depot`'s chargers have supply.
    pub fn depot_supplied(&self, depot: usize) -> bool {
        self.depot_supplied[depot]
    }

    /// Energy charged at each depot since the start (kWh).
    pub fn depot_charged_kwh(&self) -> &[f64] {
        &self.depot_charged_kwh
    }

    /// What happened to each order.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// Each robot's crowd agent, state, depot and battery charge (Wh).
    pub fn robots(&self) -> impl Iterator<Item = (AgentId, RobotState, usize, f64)> + '_ {
        self.robots.iter().map(|r| (r.agent, r.state, r.depot, r.battery_wh))
    }

    /// The day's totals so far.
    pub fn stats(&self) -> FleetStats {
        let mut s = self.stats.clone();
        s.mean_delivery_s = if s.delivered > 0 { self.delivery_s_sum / s.delivered as f64 } else { 0.0 };
        s.operator_hours = s.robot_hours_out / self.params.robots_per_operator;
        let c = &self.params.costs;
        let capital_per_day = c.robot_capex / (c.robot_life_years * 365.0) * s.robots as f64;
        s.used_kwh = s.robot_km * self.params.robot.consumption_wh_per_km as f64 / 1000.0;
        let cost = capital_per_day + s.operator_hours * c.operator_per_h + s.used_kwh * c.energy_per_kwh;
        if s.delivered > 0 {
            s.cost_per_parcel = cost / s.delivered as f64;
            s.kwh_per_parcel = s.used_kwh / s.delivered as f64;
        }
        s
    }

    /// Advances the fleet to `now_s`, after the crowd's step that ended there (`arrived`: the agents that
    /// arrived in it) and over the step's `dt_s`.
    pub fn advance(&mut self, city: &City, crowd: &mut Crowd, arrived: &[AgentId], now_s: f64, dt_s: f64) {
        let p = self.params.robot.clone();
        // Orders placed by now.
        while self.next_order < self.orders.len() && self.orders[self.next_order].placed_s <= now_s {
            self.waiting.push(self.next_order as u32);
            self.next_order += 1;
            self.stats.orders += 1;
        }
        let graph = &city.footpaths;
        // The router (arrays over every link) is made only in a step that needs it.
        let mut router: Option<Router> = None;
        // Energy and time out.
        for r in &mut self.robots {
            let walked = crowd.walked_m(r.agent);
            r.battery_wh -= (walked - r.walked_m) / 1000.0 * p.consumption_wh_per_km as f64;
            self.stats.robot_km += (walked - r.walked_m) / 1000.0;
            r.walked_m = walked;
            match r.state {
                RobotState::Charging if !self.depot_supplied[r.depot] => {
                    self.stats.robot_hours_without_supply += dt_s / 3600.0;
                }
                RobotState::Charging => {
                    let add = (p.charger_kw as f64 * 1000.0 * dt_s / 3600.0).min(p.battery_wh as f64 - r.battery_wh);
                    r.battery_wh += add;
                    self.stats.charged_kwh += add / 1000.0;
                    self.depot_charged_kwh[r.depot] += add / 1000.0;
                    if r.battery_wh >= p.battery_wh as f64 - f64::EPSILON {
                        r.state = RobotState::Idle;
                    }
                }
                RobotState::Delivering | RobotState::HandingOver | RobotState::Returning => {
                    self.stats.robot_hours_out += dt_s / 3600.0;
                }
                RobotState::Idle => {}
            }
        }
        // Arrivals: at a door, or back at the depot.
        for &agent in arrived {
            let Some(k) = self.robots.iter().position(|r| r.agent == agent) else { continue };
            let r = &mut self.robots[k];
            if let Some(&last) = crowd.route(agent).last() {
                r.node = graph.link(last).to;
            }
            match r.state {
                RobotState::Delivering => {
                    r.state = RobotState::HandingOver;
                    r.handover_until_s = now_s + p.handover_s;
                }
                RobotState::Returning => {
                    crowd.park(agent);
                    r.state = if r.battery_wh < p.battery_wh as f64 { RobotState::Charging } else { RobotState::Idle };
                }
                _ => {}
            }
        }
        // Hand-overs done: deliver, then on to the next door or home.
        for k in 0..self.robots.len() {
            let r = &self.robots[k];
            if r.state != RobotState::HandingOver || r.handover_until_s > now_s {
                continue;
            }
            let order = self.robots[k].tour.pop_front().expect("a robot hands over a parcel of its tour") as usize;
            self.outcomes[order] = Outcome::Delivered(now_s);
            self.stats.delivered += 1;
            self.stats.on_time += (now_s <= self.orders[order].due_s) as usize;
            self.delivery_s_sum += now_s - self.orders[order].placed_s;
            self.go_on(k, router.get_or_insert_with(|| Router::new(graph)), crowd, now_s);
        }
        // Robots blocked on their way (a jam, an obstacle) re-plan round the footpath they stand on; waiting
        // on a kerb for a light or a gap is not being blocked.
        for k in 0..self.robots.len() {
            let agent = self.robots[k].agent;
            let still_s = if crowd.waiting_to_cross(agent) { 0.0 } else { crowd.still_s(agent) as f64 };
            let r = &mut self.robots[k];
            if still_s < p.replan_after_s {
                r.next_replan_still_s = p.replan_after_s;
            }
            if !matches!(r.state, RobotState::Delivering | RobotState::Returning) || still_s < r.next_replan_still_s {
                continue;
            }
            // Tried now; if no detour exists, again after as long again.
            r.next_replan_still_s = still_s + p.replan_after_s;
            let r = &self.robots[k];
            let Some(blocked) = crowd.current_link(r.agent) else { continue };
            let to = match r.state {
                RobotState::Delivering => {
                    self.order_nodes[*r.tour.front().expect("a robot delivering has a tour") as usize]
                }
                _ => self.depot_nodes[r.depot],
            };
            let from = graph.link(blocked).from;
            let closed = &self.closed;
            let router = router.get_or_insert_with(|| Router::new(graph));
            let detour = router.route_avoiding(from, to, Weight::Length, |l| l != blocked && !closed[l.0 as usize]);
            if let Some(route) = detour.filter(|r| !r.links.is_empty()) {
                crowd.send(self.robots[k].agent, route.links).expect("a route with links");
                self.stats.replans_when_blocked += 1;
            }
        }
        if now_s + CLOCK_TOLERANCE_S >= self.next_dispatch_s {
            self.next_dispatch_s += self.params.dispatch_interval_s;
            self.dispatch(router.get_or_insert_with(|| Router::new(graph)), crowd, now_s);
        }
    }

    /// Energy (Wh) to walk `m` metres.
    fn energy_wh(&self, m: f64) -> f64 {
        m / 1000.0 * self.params.robot.consumption_wh_per_km as f64
    }

    /// Sends robot `k` to its next reachable door, or home when its tour is done or its charge would not
    /// do; doors closed footpaths cut off wait (until due), doors the network cannot reach fail.
    fn go_on(&mut self, k: usize, router: &mut Router, crowd: &mut Crowd, now_s: f64) {
        let closed = &self.closed;
        let reserve = self.params.robot.reserve_share as f64 * self.params.robot.battery_wh as f64;
        while let Some(&order) = self.robots[k].tour.front() {
            let (from, to) = (self.robots[k].node, self.order_nodes[order as usize]);
            let depot = self.depot_nodes[self.robots[k].depot];
            let leg = router.route_avoiding(from, to, Weight::Length, |l| !closed[l.0 as usize]);
            match leg {
                Some(route) => {
                    let home = router.route_avoiding(to, depot, Weight::Length, |l| !closed[l.0 as usize]);
                    let need = self.energy_wh((route.length_m + home.map_or(0.0, |h| h.length_m)) as f64);
                    if self.robots[k].battery_wh - need < reserve {
                        break;
                    }
                    if route.links.is_empty() {
                        // Already at the door.
                        self.robots[k].state = RobotState::HandingOver;
                        self.robots[k].handover_until_s = f64::NEG_INFINITY;
                        return;
                    }
                    self.robots[k].state = RobotState::Delivering;
                    crowd.send(self.robots[k].agent, route.links).expect("a route with links");
                    return;
                }
                None => {
                    // Cut off by closed footpaths: the order waits for the water to recede until it is due,
                    // then fails as flooded; a door the network cannot reach at all fails now.
                    let flooded = router.route(from, to, Weight::Length).is_some();
                    let order = self.robots[k].tour.pop_front().expect("front exists");
                    if flooded && now_s < self.orders[order as usize].due_s {
                        self.outcomes[order as usize] = Outcome::Waiting;
                        self.waiting.push(order);
                    } else {
                        record_failure(&mut self.outcomes, &mut self.stats, order, flooded);
                    }
                }
            }
        }
        // Home: orders left on the tour go back to waiting.
        let left: Vec<u32> = self.robots[k].tour.drain(..).collect();
        for o in left {
            self.outcomes[o as usize] = Outcome::Waiting;
            self.waiting.push(o);
        }
        let (from, depot) = (self.robots[k].node, self.depot_nodes[self.robots[k].depot]);
        let route = router
            .route_avoiding(from, depot, Weight::Length, |l| !closed[l.0 as usize])
            .or_else(|| router.route(from, depot, Weight::Length));
        match route {
            Some(r) if !r.links.is_empty() => {
                self.robots[k].state = RobotState::Returning;
                crowd.send(self.robots[k].agent, r.links).expect("a route with links");
            }
            _ => {
                crowd.park(self.robots[k].agent);
                self.robots[k].state = RobotState::Charging;
            }
        }
    }

    /// One dispatch round: per depot, the waiting orders as a CVRP; tours to idle robots with charge.
    fn dispatch(&mut self, router: &mut Router, crowd: &mut Crowd, now_s: f64) {
        self.stats.dispatch_rounds += 1;
        let p = self.params.robot.clone();
        for depot in 0..self.depot_nodes.len() {
            let mut ready: Vec<usize> = (0..self.robots.len())
                .filter(|&k| {
                    let r = &self.robots[k];
                    r.depot == depot
                        && matches!(r.state, RobotState::Idle | RobotState::Charging)
                        && r.battery_wh >= p.dispatch_share as f64 * p.battery_wh as f64
                })
                .collect();
            let mut orders: Vec<u32> =
                self.waiting.iter().copied().filter(|&o| self.order_depot[o as usize] == depot).collect();
            if ready.is_empty() || orders.is_empty() {
                continue;
            }
            orders.sort_unstable();
            // Footpath distances between the depot and the doors (Dijkstra from each), rounded to metres.
            let mut nodes = vec![self.depot_nodes[depot]];
            nodes.extend(orders.iter().map(|&o| self.order_nodes[o as usize]));
            let n = nodes.len();
            let mut dist = vec![0u32; n * n];
            let mut tree = Vec::new();
            let mut unreachable = vec![false; n];
            for i in 0..n {
                router.tree(nodes[i], Weight::Length, &mut tree);
                for j in 0..n {
                    let d = tree[nodes[j].0 as usize];
                    if d.is_finite() {
                        dist[i * n + j] = d.round() as u32;
                    } else {
                        unreachable[j] = true;
                        dist[i * n + j] = UNREACHABLE_M;
                    }
                }
            }
            // Symmetrise (footpaths go both ways; round-off may differ).
            for i in 0..n {
                for j in 0..i {
                    let d = dist[i * n + j].max(dist[j * n + i]);
                    dist[i * n + j] = d;
                    dist[j * n + i] = d;
                }
            }
            // Doors the depot cannot reach fail now.
            let mut keep = vec![0usize];
            for (j, &o) in orders.iter().enumerate() {
                if unreachable[j + 1] {
                    self.waiting.retain(|&w| w != o);
                    record_failure(&mut self.outcomes, &mut self.stats, o, false);
                } else {
                    keep.push(j + 1);
                }
            }
            if keep.len() == 1 {
                continue;
            }
            let m = keep.len();
            let sub: Vec<u32> =
                keep.iter().flat_map(|&i| keep.iter().map(move |&j| (i, j))).map(|(i, j)| dist[i * n + j]).collect();
            let demand: Vec<u32> = (0..m).map(|i| (i > 0) as u32).collect();
            let problem = Cvrp::from_matrix("dispatch", sub, demand, p.payload_parcels);
            let solution = dispatch::solve(&problem, &self.params.dispatch);
            // Tours with the oldest order first.
            let mut tours: Vec<Vec<u32>> =
                solution.routes.iter().map(|route| route.iter().map(|&c| orders[keep[c] - 1]).collect()).collect();
            tours.sort_by_key(|t: &Vec<u32>| t.iter().copied().min());
            ready.sort_by(|&a, &b| self.robots[b].battery_wh.total_cmp(&self.robots[a].battery_wh).then(a.cmp(&b)));
            for (tour, k) in tours.into_iter().zip(ready) {
                for &o in &tour {
                    self.outcomes[o as usize] = Outcome::Assigned;
                }
                self.waiting.retain(|w| !tour.contains(w));
                self.robots[k].tour = tour.into();
                self.go_on(k, router, crowd, now_s);
            }
        }
    }
}

/// Marks `order` failed (because of flooding or not) and counts it.
fn record_failure(outcomes: &mut [Outcome], stats: &mut FleetStats, order: u32, flooded: bool) {
    outcomes[order as usize] = Outcome::Failed(if flooded { Failure::Flooded } else { Failure::Unreachable });
    stats.failed += 1;
    stats.failed_flooded += flooded as usize;
}

/// Tolerance (s) when comparing the clock with a due time: steps add up in floating point.
const CLOCK_TOLERANCE_S: f64 = 1e-9;

/// Distance standing in for "unreachable" in the dispatcher's matrix (m).
const UNREACHABLE_M: u32 = 10_000_000;
