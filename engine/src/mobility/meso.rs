//! The mesoscopic queue model (`[mobility] model = "meso"`), for whole regions and a million trips: every
//! link is a first-in-first-out queue, as in the queue model of Gawron (1998, "An iterative algorithm to
//! determine the dynamic user equilibrium in a traffic simulation", Int. J. Mod. Phys. C 9(3)) and the MATSim
//! QSim (Cetin, Burri & Nagel 2003, "A large-scale agent-based traffic microsimulation based on queue
//! model", STRC; Horni, Nagel & Axhausen 2016, *The Multi-Agent Transport Simulation MATSim*, ch. 1.4).
//!
//! - **Free-flow time**: a vehicle that enters a link at time t leaves it no earlier than t + L / v (length
//!   over the speed limit times its class's speed factor).
//! - **Flow capacity**: at most C·Δt vehicles leave a link per step, C = lanes × the capacity per lane of its
//!   road class ([`LaneCapacities`], MATSim's OpenStreetMap defaults), times
//!   [`QueueParams::flow_capacity_factor`]; unused fractions carry over to the next step, up to one step's
//!   worth (or one vehicle).
//! - **Storage capacity**: a link holds at most L × lanes / [`QueueParams::vehicle_cell_m`] vehicles (times
//!   [`QueueParams::storage_capacity_factor`], and never less than one step's flow); a vehicle moves on only
//!   when the next link has room, so queues spill back upstream.
//! - **Junctions** are not modelled one by one: signals and priority rules are in the per-class capacities,
//!   which stand for a whole link with its junction (as in MATSim). A link whose movement onto the next link
//!   is signalised adds the mean wait of vehicles arriving uniformly over the cycle, r²/(2C) for a red time
//!   r in a cycle C, to its free-flow time (SUMO's mesoscopic "TLS penalty", `--meso-tls-penalty 1`; the
//!   first, uniform-delay term of Webster's 1958 formula at low saturation), when
//!   [`QueueParams::signal_delay`] is on and the plans are given ([`QueueTraffic::set_signal_delays`]).
//!   In each step the links whose first
//!   vehicle may leave are served node by node in node order, and the incoming links of one node first come
//!   first served at the stop line: the link whose first vehicle has been ready to leave longest goes first
//!   (MATSim draws the order at random, weighted by capacity); so results are deterministic, queued
//!   approaches take turns like a zipper merge, and none is starved.
//! - **Arrivals** leave from the front of the queue when their free-flow time is up, without using flow
//!   capacity (as in MATSim).
//! - **Gridlock**: a vehicle that has waited [`QueueParams::teleport_after_s`] at the front of its link for room
//!   on the next one is teleported as SUMO does: it finishes its trip after the free-flow time of the rest of
//!   its route, and is counted.
//! - **Closures**: no vehicle enters a closed link; vehicles whose remaining route uses one re-route over the
//!   open links at the next step (the rule the microscopic model uses, [`super::rerouting::detour`]).
//! - **Re-routing on travel times** (`[mobility.rerouting]`): each vehicle's time on each link it leaves is
//!   measured, and vehicles re-plan at departure and every period ([`super::rerouting`]).
//!
//! Vehicles cross link ends at continuous times (a vehicle whose free-flow time ends within a step crosses at
//! that instant; one held back crosses at the start of the step that lets it go), so free-flow trips take
//! exactly their free-flow time whatever the step. The model is event-driven: a link is looked at only in a
//! step when its first vehicle may leave (a ring of wake-up lists), so a step costs what moves, not the size
//! of the network. It runs on one thread; it is sequential by design and fast enough that a day of a million
//! trips takes seconds.

use super::idm::DriverParams;
use super::junctions::Junctions;
use super::rerouting::{
    plan_detours, plan_faster_routes, take_new_route, wait_elsewhere, NewRoute, ReroutingParams, TravelTimes,
};
use super::vehicles::{
    check_stops, StopEvent, StopHold, StopPlan, Trip, TripResult, VehicleLedger, VehicleModel, VehiclePosition,
    TIME_TOLERANCE_S,
};
use crate::city::control::Light;
use crate::city::graph::{Graph, LinkId};
use crate::import::tags::WayClass;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// Flow capacity per lane (veh/h) by road class: MATSim's defaults for OpenStreetMap networks
/// (`OsmNetworkReader`, "highway defaults"). Service roads and tracks are not in that table; they get the
/// living-street value (an assumption).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaneCapacities {
    /// Motorways: 2000 veh/h/lane.
    pub motorway: f64,
    /// Trunk roads: 2000 veh/h/lane.
    pub trunk: f64,
    /// Primary roads: 1500 veh/h/lane.
    pub primary: f64,
    /// Secondary roads: 1000 veh/h/lane.
    pub secondary: f64,
    /// Tertiary roads: 600 veh/h/lane.
    pub tertiary: f64,
    /// Unclassified and residential streets: 600 veh/h/lane.
    pub minor: f64,
    /// Living streets: 300 veh/h/lane.
    pub living_street: f64,
    /// Service roads, tracks and any other class: 300 veh/h/lane (an assumption: the living-street value).
    pub service: f64,
}

impl Default for LaneCapacities {
    fn default() -> Self {
        LaneCapacities {
            motorway: 2000.0,
            trunk: 2000.0,
            primary: 1500.0,
            secondary: 1000.0,
            tertiary: 600.0,
            minor: 600.0,
            living_street: 300.0,
            service: 300.0,
        }
    }
}

impl LaneCapacities {
    /// Capacity per lane (veh/h) of a road class.
    pub fn of(&self, class: WayClass) -> f64 {
        match class {
            WayClass::Motorway => self.motorway,
            WayClass::Trunk => self.trunk,
            WayClass::Primary => self.primary,
            WayClass::Secondary => self.secondary,
            WayClass::Tertiary => self.tertiary,
            WayClass::Unclassified | WayClass::Residential => self.minor,
            WayClass::LivingStreet => self.living_street,
            _ => self.service,
        }
    }

    /// Every value with its key, for validation.
    pub fn values(&self) -> [(&'static str, f64); 8] {
        [
            ("motorway", self.motorway),
            ("trunk", self.trunk),
            ("primary", self.primary),
            ("secondary", self.secondary),
            ("tertiary", self.tertiary),
            ("minor", self.minor),
            ("living_street", self.living_street),
            ("service", self.service),
        ]
    }
}

/// Parameters of the queue model (`[mobility.meso]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueParams {
    /// Time step (s): 1 s, the MATSim QSim's default.
    pub step_s: f64,
    /// Road length one vehicle takes in a queue (m): 7.5 m, MATSim's `effectiveCellSize`.
    pub vehicle_cell_m: f64,
    /// A vehicle waiting this long at the front of its link for room beyond is teleported (s): 300 s,
    /// SUMO's `--time-to-teleport` default (the microscopic model's too).
    pub teleport_after_s: f64,
    /// Scales every flow capacity: 1; below 1 for a sample of the demand (MATSim's `flowCapacityFactor`,
    /// e.g. 0.1 for a 10 % sample).
    pub flow_capacity_factor: f64,
    /// Scales every storage capacity: 1 (MATSim's `storageCapacityFactor`).
    pub storage_capacity_factor: f64,
    /// Flow capacity per lane by road class (veh/h).
    pub capacity: LaneCapacities,
    /// Whether signalised movements add their mean red wait, r²/(2C), to the link's time: on.
    pub signal_delay: bool,
}

impl Default for QueueParams {
    fn default() -> Self {
        QueueParams {
            step_s: 1.0,
            vehicle_cell_m: 7.5,
            teleport_after_s: 300.0,
            flow_capacity_factor: 1.0,
            storage_capacity_factor: 1.0,
            capacity: LaneCapacities::default(),
            signal_delay: true,
        }
    }
}

/// No step: a link not scheduled to be looked at.
const NEVER: u64 = u64::MAX;

/// One link's queue.
#[derive(Clone, Debug)]
struct QueueLink {
    /// Vehicles on the link, first to leave first.
    queue: VecDeque<u32>,
    /// Vehicles that may leave per step (flow capacity × step).
    capacity_per_step: f64,
    /// Vehicles the link holds at most.
    storage: f64,
    /// Flow capacity not yet used (vehicles), as of step `accumulated_step`.
    accumulated: f64,
    accumulated_step: u64,
    /// When the vehicle now first in the queue became first (s): the time the one before it left.
    front_since_s: f64,
}

impl QueueLink {
    /// Brings the unused flow capacity up to step `step`: it grows by the capacity per step while below one
    /// vehicle, and stops growing at the step it reaches one (MATSim's rule: no capacity is lost to
    /// rounding, and an idle link saves up at most one step's worth beyond a vehicle).
    fn refill(&mut self, step: u64) {
        let idle = (step - self.accumulated_step) as f64;
        self.accumulated_step = step;
        if self.accumulated < 1.0 {
            let needed = ((1.0 - self.accumulated) / self.capacity_per_step).ceil();
            self.accumulated += self.capacity_per_step * idle.min(needed);
        }
    }
}

/// A vehicle's trip and progress.
#[derive(Clone, Debug)]
struct QueueVehicle {
    trip_id: u64,
    class: u8,
    depart_s: f64,
    inserted_s: f64,
    route: Vec<LinkId>,
    /// Index of the current link in the route.
    route_pos: u32,
    /// When it entered its current link (s).
    enter_s: f64,
    /// When its free-flow time on the current link is up (s).
    exit_s: f64,
    /// Since when it has waited at the front of its link for room beyond (s; NaN when not waiting).
    blocked_since_s: f64,
    /// The step in which it last moved (it moves at most once per step).
    moved_step: u64,
    reroutes: u32,
    /// Stops to make (buses), the route index of each (`None`: no longer on the route) and the next one.
    stops: StopPlan,
}

/// A vehicle standing at a stop, out of its link's queue (in a bay), until `release_s`.
#[derive(Clone, Copy, Debug)]
struct AtStop {
    vehicle: u32,
    link: u32,
    arrive_s: f64,
    release_s: f64,
}

/// The state of the queue model.
pub struct QueueTraffic {
    graph: Arc<Graph>,
    classes: Vec<DriverParams>,
    params: QueueParams,
    links: Vec<QueueLink>,
    vehicles: Vec<QueueVehicle>,
    /// Trips not yet due, by departure (reverse order: the next is last) when `schedule_sorted`.
    schedule: Vec<u32>,
    /// Whether `schedule` is in order (trips added since the last step are not).
    schedule_sorted: bool,
    /// Due vehicles waiting for room on their first link.
    pending: Vec<VecDeque<u32>>,
    pending_links: BTreeSet<u32>,
    closed: Vec<bool>,
    reroute_due: bool,
    /// Finished trips, counters, link entries and stops made.
    ledger: VehicleLedger,
    steps: u64,
    start_s: f64,
    active: usize,
    /// `wake[s % wake.len()]`: links to look at in step `s`.
    wake: Vec<Vec<u32>>,
    /// The step each link is next looked at (`NEVER`).
    wake_step: Vec<u64>,
    /// Scratch: the links served in a step with their sort keys (node, ready time, link).
    order: Vec<(u32, f64, u32)>,
    /// Signal delay (s) of each link's signalised movements: (next link, mean red wait).
    movement_delay: Vec<Vec<(u32, f64)>>,
    /// Vehicles standing at stops.
    at_stops: Vec<AtStop>,
    /// Measured link travel times, when vehicles re-plan on them (`[mobility.rerouting]`).
    travel_times: Option<TravelTimes>,
}

impl QueueTraffic {
    /// A model of `graph` with vehicle classes (only their speed factors matter here) and trips; the clock
    /// starts at `start_s`. Fails on bad parameters, a route whose links do not connect or a class index
    /// out of range.
    pub fn new(
        graph: Arc<Graph>,
        classes: Vec<DriverParams>,
        params: QueueParams,
        trips: Vec<Trip>,
        start_s: f64,
    ) -> Result<QueueTraffic, String> {
        if !(params.step_s > 0.0 && params.step_s <= 60.0) {
            return Err(format!("time step {} s: must be in (0, 60] s", params.step_s));
        }
        let positive = [
            ("vehicle_cell_m", params.vehicle_cell_m),
            ("teleport_after_s", params.teleport_after_s),
            ("flow_capacity_factor", params.flow_capacity_factor),
            ("storage_capacity_factor", params.storage_capacity_factor),
        ];
        for (key, v) in positive.into_iter().chain(params.capacity.values()) {
            if !(v > 0.0 && v.is_finite()) {
                return Err(format!("{key} = {v}: must be positive"));
            }
        }
        let dt = params.step_s;
        let slowest = classes.iter().map(|c| c.speed_factor).fold(f64::INFINITY, f64::min);
        if slowest.is_nan() || slowest <= 0.0 {
            return Err("every vehicle class needs a positive speed factor".into());
        }
        let mut links = Vec::with_capacity(graph.links().len());
        let mut horizon_steps = 1.0f64;
        for l in graph.links() {
            let lanes = l.lanes.max(1) as f64;
            let capacity_per_step = lanes * params.capacity.of(l.class) / 3600.0 * dt * params.flow_capacity_factor;
            let free_flow_s = l.length_m as f64 / (l.speed_mps as f64 * slowest);
            // MATSim's rule: room for at least one step's flow and for the flow of a free-flow traversal.
            let storage = (l.length_m as f64 * lanes / params.vehicle_cell_m * params.storage_capacity_factor)
                .max(capacity_per_step)
                .max(capacity_per_step * free_flow_s / dt)
                .max(1.0);
            horizon_steps = horizon_steps.max(free_flow_s / dt).max(1.0 / capacity_per_step);
            links.push(QueueLink {
                queue: VecDeque::new(),
                capacity_per_step,
                storage,
                accumulated: capacity_per_step.max(1.0),
                accumulated_step: 0,
                front_since_s: f64::NEG_INFINITY,
            });
        }
        let mut model = QueueTraffic {
            pending: vec![VecDeque::new(); links.len()],
            pending_links: BTreeSet::new(),
            closed: vec![false; links.len()],
            reroute_due: false,
            ledger: VehicleLedger { entries: vec![0; links.len()], ..VehicleLedger::default() },
            wake: vec![Vec::new(); horizon_steps.ceil() as usize + 3],
            wake_step: vec![NEVER; links.len()],
            order: Vec::new(),
            movement_delay: Vec::new(),
            at_stops: Vec::new(),
            travel_times: None,
            links,
            graph,
            classes,
            params,
            vehicles: Vec::new(),
            schedule: Vec::new(),
            schedule_sorted: true,
            steps: 0,
            start_s,
            active: 0,
        };
        for t in trips {
            model.add_trip(t)?;
        }
        model.sort_schedule();
        Ok(model)
    }

    /// SUMO demand on its SUMO network (its vehicle types' speed factors; trip id = the vehicle's index).
    pub fn from_sumo(
        net: &crate::import::sumo::SumoNetwork,
        demand: &crate::import::sumo::SumoDemand,
        signals: &super::junctions::SignalParams,
        params: QueueParams,
    ) -> Result<QueueTraffic, String> {
        let trips = demand
            .vehicles
            .iter()
            .enumerate()
            .map(|(k, v)| Trip { id: k as u64, depart_s: v.depart_s, route: v.route.clone(), class: v.vtype })
            .collect();
        let classes = demand.types.iter().map(|(_, p)| *p).collect();
        let mut model = QueueTraffic::new(Arc::new(net.graph.clone()), classes, params, trips, 0.0)?;
        model.set_signal_delays(&Junctions::from_control(&net.graph, &net.control, signals))?;
        Ok(model)
    }

    /// Gives signalised movements their delay from the junctions' signal plans: for each movement, the red
    /// time r of its signal (the cycle less its green phases) in the cycle C makes r²/(2C). Only before the
    /// first step; nothing when [`QueueParams::signal_delay`] is off.
    pub fn set_signal_delays(&mut self, junctions: &Junctions) -> Result<(), String> {
        if !self.params.signal_delay {
            return Ok(());
        }
        if self.steps > 0 {
            return Err("signal delays are set before the first step".into());
        }
        let graph = Arc::clone(&self.graph);
        let mut delays = vec![Vec::new(); graph.links().len()];
        let mut longest = 0.0f64;
        for (k, link) in graph.links().iter().enumerate() {
            let from = LinkId(k as u32);
            for &next in graph.out_links(link.to) {
                let Some((controller, index)) = junctions.signal_of(from, next) else { continue };
                let plan = &junctions.plans[controller as usize];
                let cycle = plan.cycle_s();
                if cycle <= 0.0 {
                    continue;
                }
                let green: f64 = (0..plan.phases.len())
                    .filter(|&p| plan.light_in(p, index) == Light::Green)
                    .map(|p| plan.phases[p].duration_s)
                    .sum();
                let red = (cycle - green).max(0.0);
                let delay = red * red / (2.0 * cycle);
                longest = longest.max(delay);
                delays[k].push((next.0, delay));
            }
        }
        // Room in the wake ring for the longest link time plus its delay.
        let extra_steps = (longest / self.params.step_s).ceil() as usize;
        self.wake.resize(self.wake.len() + extra_steps, Vec::new());
        self.movement_delay = delays;
        Ok(())
    }

    /// The signal delay (s) of vehicle `v` on `link`, towards the next link of its route.
    fn signal_delay_s(&self, v: u32, link: LinkId) -> f64 {
        let Some(movements) = self.movement_delay.get(link.0 as usize) else { return 0.0 };
        if movements.is_empty() {
            return 0.0;
        }
        let vehicle = &self.vehicles[v as usize];
        let at = vehicle.route_pos as usize;
        debug_assert_eq!(vehicle.route.get(at), Some(&link));
        let Some(next) = vehicle.route.get(at + 1) else { return 0.0 };
        movements.iter().find(|m| m.0 == next.0).map_or(0.0, |m| m.1)
    }

    /// The model's parameters.
    pub fn params(&self) -> &QueueParams {
        &self.params
    }

    /// Vehicles link `link` holds at most.
    pub fn storage(&self, link: LinkId) -> f64 {
        self.links[link.0 as usize].storage
    }

    /// Vehicles on link `link` now.
    pub fn occupancy(&self, link: LinkId) -> usize {
        self.links[link.0 as usize].queue.len()
    }

    /// Free-flow time (s) of link `link` for a vehicle of class `class`.
    fn free_flow_s(&self, link: LinkId, class: u8) -> f64 {
        let l = self.graph.link(link);
        l.length_m as f64 / (l.speed_mps as f64 * self.classes[class as usize].speed_factor)
    }

    /// The step in which an event at clock time `t_s` is handled: the one whose end is the first at or
    /// after it, and never before `after` + 1.
    fn step_of(&self, t_s: f64, after: u64) -> u64 {
        let k = ((t_s - self.start_s) / self.params.step_s - TIME_TOLERANCE_S).ceil() - 1.0;
        (k.max(0.0) as u64).max(after + 1)
    }

    /// Looks at `link` in step `step` (unless it is looked at earlier already).
    fn schedule_link(&mut self, link: u32, step: u64) {
        let at = self.wake_step[link as usize];
        if at != NEVER && at <= step {
            return;
        }
        self.wake_step[link as usize] = step;
        let ring = self.wake.len() as u64;
        debug_assert!(step - self.steps < ring, "a wake-up beyond the ring");
        self.wake[(step % ring) as usize].push(link);
    }

    /// Vehicle `v` enters `link` at clock time `at_s`, in step `step`.
    fn enter(&mut self, v: u32, link: LinkId, at_s: f64, step: u64) {
        let class = self.vehicles[v as usize].class;
        let exit_s = at_s + self.free_flow_s(link, class) + self.signal_delay_s(v, link);
        let vehicle = &mut self.vehicles[v as usize];
        vehicle.enter_s = at_s;
        vehicle.exit_s = exit_s;
        vehicle.blocked_since_s = f64::NAN;
        vehicle.moved_step = step;
        let l = link.0 as usize;
        self.ledger.entries[l] += 1;
        self.links[l].queue.push_back(v);
        if self.links[l].queue.len() == 1 {
            let wake = self.step_of(exit_s, step);
            self.schedule_link(link.0, wake);
        }
    }

    /// Due trips join their first link's waiting list; waiting vehicles enter while their link has room.
    fn insert(&mut self, t0: f64, t1: f64, step: u64) {
        let mut due = Vec::new();
        while let Some(&v) = self.schedule.last() {
            if self.vehicles[v as usize].depart_s > t1 + TIME_TOLERANCE_S {
                break;
            }
            self.schedule.pop();
            due.push(v);
        }
        if self.travel_times.is_some() && !due.is_empty() {
            // Departing vehicles re-plan on the travel times measured (SUMO's rerouting device does at
            // insertion).
            let todo: Vec<(u32, usize)> =
                due.iter().filter(|&&v| self.vehicles[v as usize].stops.is_empty()).map(|&v| (v, 0)).collect();
            let routes = self.plan_faster_routes(&todo);
            self.apply_new_routes(routes, true);
        }
        for v in due {
            let first = self.vehicles[v as usize].route[0].0;
            self.pending[first as usize].push_back(v);
            self.pending_links.insert(first);
        }
        let waiting: Vec<u32> = self.pending_links.iter().copied().collect();
        for link in waiting {
            let l = link as usize;
            while !self.closed[l] && (self.links[l].queue.len() as f64) < self.links[l].storage {
                let Some(v) = self.pending[l].pop_front() else { break };
                let at_s = self.vehicles[v as usize].depart_s.max(t0);
                self.vehicles[v as usize].inserted_s = at_s;
                self.active += 1;
                self.enter(v, LinkId(link), at_s, step);
            }
            if self.pending[l].is_empty() {
                self.pending_links.remove(&link);
            }
        }
    }

    /// Lets the vehicles at the front of `link` go as far as their free-flow times, the flow capacity, the
    /// room beyond and closures allow, in step `step` = [t0, t1).
    fn serve(&mut self, link: u32, step: u64, t0: f64, t1: f64) {
        let l = link as usize;
        while let Some(&v) = self.links[l].queue.front() {
            let (exit_s, moved_step, route_pos) = {
                let x = &self.vehicles[v as usize];
                (x.exit_s, x.moved_step, x.route_pos as usize)
            };
            if exit_s > t1 + TIME_TOLERANCE_S {
                let wake = self.step_of(exit_s, step);
                self.schedule_link(link, wake);
                return;
            }
            if moved_step == step {
                self.schedule_link(link, step + 1);
                return;
            }
            let cross_s = exit_s.max(t0);
            let last = route_pos + 1 == self.vehicles[v as usize].route.len();
            if let Some(hold) = self.stop_here(v, route_pos) {
                if last {
                    // The terminus: the trip ends on arrival.
                    let vehicle = &mut self.vehicles[v as usize];
                    let stop = vehicle.stops.made();
                    let trip_id = vehicle.trip_id;
                    self.ledger.stop_events.push(StopEvent { trip_id, stop, arrive_s: cross_s, depart_s: cross_s });
                    self.links[l].queue.pop_front();
                    self.links[l].front_since_s = cross_s;
                    self.finish(v, cross_s, false);
                    continue;
                }
                // Into the stop's bay: the vehicles behind carry on.
                self.links[l].queue.pop_front();
                self.links[l].front_since_s = cross_s;
                let release_s = (cross_s + hold.dwell_s).max(hold.not_before_s);
                self.at_stops.push(AtStop { vehicle: v, link, arrive_s: cross_s, release_s });
                continue;
            }
            let Some(&next) = self.vehicles[v as usize].route.get(route_pos + 1) else {
                self.links[l].queue.pop_front();
                self.links[l].front_since_s = cross_s;
                self.record_link_time(v, link, cross_s);
                self.finish(v, cross_s, false);
                continue;
            };
            self.links[l].refill(step);
            let q = &self.links[l];
            if q.accumulated < 1.0 {
                let wait = ((1.0 - q.accumulated) / q.capacity_per_step).ceil().max(1.0);
                self.schedule_link(link, step + wait as u64);
                return;
            }
            let n = next.0 as usize;
            if self.closed[n] || self.links[n].queue.len() as f64 >= self.links[n].storage {
                let vehicle = &mut self.vehicles[v as usize];
                if vehicle.blocked_since_s.is_nan() {
                    vehicle.blocked_since_s = cross_s;
                }
                if t1 - vehicle.blocked_since_s + TIME_TOLERANCE_S >= self.params.teleport_after_s {
                    self.links[l].queue.pop_front();
                    self.links[l].front_since_s = t1;
                    self.record_link_time(v, link, t1);
                    let v_ref = &self.vehicles[v as usize];
                    let rest: f64 =
                        v_ref.route[route_pos + 1..].iter().map(|&r| self.free_flow_s(r, v_ref.class)).sum();
                    self.ledger.stats.teleports += 1;
                    self.finish(v, t1 + rest, true);
                    continue;
                }
                self.schedule_link(link, step + 1);
                return;
            }
            self.links[l].queue.pop_front();
            self.links[l].front_since_s = cross_s;
            self.links[l].accumulated -= 1.0;
            self.record_link_time(v, link, cross_s);
            self.vehicles[v as usize].route_pos += 1;
            self.ledger.stats.vehicle_updates += 1;
            self.enter(v, next, cross_s, step);
        }
    }

    /// The stop vehicle `v` makes at the end of route index `route_pos` now, if any (stops its route no
    /// longer passes are skipped and counted).
    fn stop_here(&mut self, v: u32, route_pos: usize) -> Option<StopHold> {
        let stops = &mut self.vehicles[v as usize].stops;
        self.ledger.stats.stops_skipped += stops.skip_dropped();
        stops.due_at(route_pos)
    }

    /// Vehicles whose time at a stop is up by the end of this step return to the front of their link's
    /// queue (the earliest first), to leave it in this step.
    fn release_stopped(&mut self, step: u64, t1: f64) {
        if self.at_stops.is_empty() {
            return;
        }
        let mut ready: Vec<AtStop> = Vec::new();
        self.at_stops.retain(|a| {
            let due = a.release_s <= t1 + TIME_TOLERANCE_S;
            if due {
                ready.push(*a);
            }
            !due
        });
        ready.sort_by(|a, b| b.release_s.total_cmp(&a.release_s).then(b.vehicle.cmp(&a.vehicle)));
        for a in ready {
            let vehicle = &mut self.vehicles[a.vehicle as usize];
            let stop = vehicle.stops.made();
            self.ledger.stop_events.push(StopEvent {
                trip_id: vehicle.trip_id,
                stop,
                arrive_s: a.arrive_s,
                depart_s: a.release_s,
            });
            vehicle.exit_s = a.release_s;
            vehicle.moved_step = NEVER;
            self.links[a.link as usize].queue.push_front(a.vehicle);
            self.schedule_link(a.link, step);
        }
    }

    fn finish(&mut self, id: u32, arrive_s: f64, teleported: bool) {
        self.active -= 1;
        let v = &self.vehicles[id as usize];
        let (mut length_m, mut free_flow_s) = (0.0, 0.0);
        for &l in &v.route {
            length_m += self.graph.link(l).length_m as f64;
            free_flow_s += self.free_flow_s(l, v.class);
        }
        self.ledger.finished.push(TripResult {
            id: v.trip_id,
            depart_s: v.depart_s,
            inserted_s: v.inserted_s,
            arrive_s,
            length_m,
            free_flow_s,
            teleported,
            reroutes: v.reroutes,
        });
    }

    /// Puts the trips not yet due in order: from the latest departure to the next (last); among equal
    /// departures, lower vehicle indices (added earlier) last.
    fn sort_schedule(&mut self) {
        if self.schedule_sorted {
            return;
        }
        let vehicles = &self.vehicles;
        self.schedule.sort_unstable_by(|&a, &b| {
            let (x, y) = (vehicles[a as usize].depart_s, vehicles[b as usize].depart_s);
            y.total_cmp(&x).then(b.cmp(&a))
        });
        self.schedule_sorted = true;
    }

    /// A vehicle (not a bus: their times include their stops) leaves `link` at `at_s`: its time on the
    /// link is a travel-time measurement.
    fn record_link_time(&mut self, v: u32, link: u32, at_s: f64) {
        if let Some(times) = &mut self.travel_times {
            let vehicle = &self.vehicles[v as usize];
            if vehicle.stops.is_empty() {
                times.record(LinkId(link), at_s - vehicle.enter_s);
            }
        }
    }

    /// Vehicles that may re-route: (vehicle, links of its route kept — those driven and the one it is on;
    /// 0 when not yet on the road), in vehicle order; with `scheduled`, also those at stops and trips not
    /// yet due.
    fn reroute_candidates(&self, scheduled: bool) -> Vec<(u32, usize)> {
        let kept = |v: u32| self.vehicles[v as usize].route_pos as usize + 1;
        let mut todo: Vec<(u32, usize)> = Vec::new();
        for q in &self.links {
            todo.extend(q.queue.iter().map(|&v| (v, kept(v))));
        }
        for queue in &self.pending {
            todo.extend(queue.iter().map(|&v| (v, 0)));
        }
        if scheduled {
            todo.extend(self.at_stops.iter().map(|a| (a.vehicle, kept(a.vehicle))));
            todo.extend(self.schedule.iter().map(|&v| (v, 0)));
        }
        todo.sort_unstable();
        todo
    }

    /// Re-routes every vehicle whose remaining route uses a closed link, from the end of its current link
    /// (or the start of its first link if it has not entered yet).
    fn reroute(&mut self) {
        let todo = self.reroute_candidates(true);
        let vehicles = &self.vehicles;
        let routes = plan_detours(&self.graph, &self.closed, &todo, |id| &vehicles[id as usize].route);
        self.apply_new_routes(routes, false);
    }

    /// Ends a travel-time period at `t`: measures the links (a queue's first vehicle has been on its link
    /// since it entered) and lets every vehicle on its way or waiting to enter, buses aside, re-plan.
    fn reroute_for_travel_times(&mut self, t: f64) {
        let Some(times) = &mut self.travel_times else { return };
        let vehicles = &self.vehicles;
        let fronts = self
            .links
            .iter()
            .enumerate()
            .filter_map(|(l, q)| q.queue.front().map(|&v| (LinkId(l as u32), vehicles[v as usize].enter_s)));
        times.update(t, fronts);
        let todo: Vec<(u32, usize)> = self
            .reroute_candidates(false)
            .into_iter()
            .filter(|&(id, _)| self.vehicles[id as usize].stops.is_empty())
            .collect();
        let routes = self.plan_faster_routes(&todo);
        self.apply_new_routes(routes, true);
    }

    /// [`plan_faster_routes`] over this model's vehicles.
    fn plan_faster_routes(&self, todo: &[(u32, usize)]) -> Vec<NewRoute> {
        let Some(times) = &self.travel_times else { return Vec::new() };
        let vehicles = &self.vehicles;
        plan_faster_routes(&self.graph, times, &self.closed, todo, |id| &vehicles[id as usize].route)
    }

    /// Gives vehicles their new routes (counted as re-routings for a faster route or round a closure);
    /// vehicles waiting to enter whose route now starts on another link wait there.
    fn apply_new_routes(&mut self, routes: Vec<NewRoute>, for_travel_time: bool) {
        let mut moved_start = false;
        for (id, keep, rest) in routes {
            let vehicle = &mut self.vehicles[id as usize];
            let first = take_new_route(&mut vehicle.route, &mut vehicle.stops, keep, rest);
            vehicle.reroutes += 1;
            if for_travel_time {
                self.ledger.stats.reroutes_for_travel_time += 1;
            } else {
                self.ledger.stats.reroutes += 1;
            }
            let now_first = vehicle.route[0];
            if keep == 0 && now_first != first {
                moved_start |= wait_elsewhere(&mut self.pending, id, first, now_first);
            }
        }
        if moved_start {
            self.pending_links =
                (0..self.pending.len() as u32).filter(|&l| !self.pending[l as usize].is_empty()).collect();
        }
    }
}

impl VehicleModel for QueueTraffic {
    fn ledger(&self) -> &VehicleLedger {
        &self.ledger
    }

    fn ledger_mut(&mut self) -> &mut VehicleLedger {
        &mut self.ledger
    }

    fn set_start(&mut self, start_s: f64) {
        if self.steps == 0 {
            self.start_s = start_s;
        }
    }

    fn add_trip_with_stops(&mut self, trip: Trip, stops: Vec<StopHold>) -> Result<(), String> {
        super::vehicles::check_trip(&self.graph, self.classes.len(), &trip)?;
        check_stops(&trip, &stops)?;
        let stops = StopPlan::new(&trip.route, stops);
        let id = self.vehicles.len() as u32;
        self.vehicles.push(QueueVehicle {
            trip_id: trip.id,
            class: trip.class,
            depart_s: trip.depart_s,
            inserted_s: f64::NAN,
            route: trip.route,
            route_pos: 0,
            enter_s: f64::NAN,
            exit_s: f64::NAN,
            blocked_since_s: f64::NAN,
            moved_step: NEVER,
            reroutes: 0,
            stops,
        });
        self.schedule.push(id);
        self.schedule_sorted = false;
        Ok(())
    }

    fn now_s(&self) -> f64 {
        self.start_s + self.steps as f64 * self.params.step_s
    }

    fn graph(&self) -> &Graph {
        &self.graph
    }

    fn on_network(&self) -> usize {
        self.active
    }

    fn waiting_to_enter(&self) -> usize {
        self.pending_links.iter().map(|&l| self.pending[l as usize].len()).sum()
    }

    fn not_yet_departed(&self) -> usize {
        self.schedule.len()
    }

    fn is_done(&self) -> bool {
        self.schedule.is_empty() && self.pending_links.is_empty() && self.active == 0
    }

    /// Vehicles move along a link at their free-flow speed and stand in its queue from the end, one
    /// [`QueueParams::vehicle_cell_m`] apart per lane, lanes filled in turn.
    fn positions(&self) -> Box<dyn Iterator<Item = VehiclePosition> + '_> {
        let now = self.now_s();
        let cell = self.params.vehicle_cell_m;
        let at_stops = self.at_stops.iter().map(move |a| VehiclePosition {
            vehicle: a.vehicle,
            link: LinkId(a.link),
            lane: 0,
            pos_m: self.graph.link(LinkId(a.link)).length_m as f64,
            speed_mps: 0.0,
            standing_s: (now - a.arrive_s).max(0.0),
            class: self.vehicles[a.vehicle as usize].class,
        });
        Box::new(at_stops.chain(self.links.iter().enumerate().flat_map(move |(k, q)| {
            let link = self.graph.link(LinkId(k as u32));
            let (length, lanes) = (link.length_m as f64, link.lanes.max(1) as usize);
            q.queue.iter().enumerate().map(move |(i, &v)| {
                let x = &self.vehicles[v as usize];
                let travel = (x.exit_s - x.enter_s).max(TIME_TOLERANCE_S);
                let free = length * ((now - x.enter_s) / travel).clamp(0.0, 1.0);
                let queued = (length - (i / lanes) as f64 * cell).max(0.0);
                let (pos_m, speed_mps, standing_s) = if free < queued {
                    (free, length / travel, 0.0)
                } else {
                    // Standing since it reached its place in the queue.
                    (queued, 0.0, (now - (x.enter_s + travel * queued / length.max(TIME_TOLERANCE_S))).max(0.0))
                };
                VehiclePosition {
                    vehicle: v,
                    link: LinkId(k as u32),
                    lane: (i % lanes) as u8,
                    pos_m,
                    speed_mps,
                    standing_s,
                    class: x.class,
                }
            })
        })))
    }

    fn set_closed(&mut self, link: LinkId, closed: bool) {
        let l = link.0 as usize;
        if self.closed[l] == closed {
            return;
        }
        self.closed[l] = closed;
        if closed {
            self.ledger.stats.caught_on_closed_links += self.links[l].queue.len() as u64;
            self.reroute_due = true;
        }
    }

    fn is_closed(&self, link: LinkId) -> bool {
        self.closed[link.0 as usize]
    }

    fn enable_rerouting(&mut self, params: ReroutingParams) {
        if self.steps == 0 {
            self.travel_times = Some(TravelTimes::new(&self.graph, params));
        }
    }

    fn step(&mut self) {
        let step = self.steps;
        let t0 = self.now_s();
        let t1 = t0 + self.params.step_s;
        self.sort_schedule();
        if self.reroute_due {
            self.reroute();
            self.reroute_due = false;
        }
        if self.travel_times.as_mut().is_some_and(|times| times.due(t0)) {
            self.reroute_for_travel_times(t0);
        }
        self.release_stopped(step, t1);
        let ring = self.wake.len() as u64;
        let mut due = std::mem::take(&mut self.wake[(step % ring) as usize]);
        due.retain(|&l| self.wake_step[l as usize] == step);
        // Node by node; at a node, first come first served at the stop line: the incoming link whose first
        // vehicle has been ready to leave longest goes first (a vehicle is ready when its free-flow time is up
        // and the one before it has gone), so queued approaches take turns like a zipper merge.
        due.sort_unstable();
        due.dedup();
        let mut order = std::mem::take(&mut self.order);
        order.extend(due.iter().map(|&l| {
            let q = &self.links[l as usize];
            let ready_s =
                q.queue.front().map_or(f64::INFINITY, |&v| self.vehicles[v as usize].exit_s.max(q.front_since_s));
            (self.graph.link(LinkId(l)).to.0, ready_s, l)
        }));
        order.sort_unstable_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)).then(x.2.cmp(&y.2)));
        for &l in &due {
            self.wake_step[l as usize] = NEVER;
        }
        for &(_, _, l) in &order {
            self.serve(l, step, t0, t1);
        }
        order.clear();
        self.order = order;
        due.clear();
        if self.wake[(step % ring) as usize].is_empty() {
            self.wake[(step % ring) as usize] = due;
        }
        self.insert(t0, t1, step);
        self.steps += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::graph::{GraphBuilder, NodeId};
    use crate::city::routing::Router;
    use crate::city::routing::Weight;
    use glam::Vec2;

    /// A straight road of `links` links of `link_m` metres: the middle one of class `bottleneck`, the others
    /// motorways of two lanes (so only the middle one limits the flow).
    fn corridor(links: usize, link_m: f32, bottleneck: WayClass) -> Graph {
        let mut b = GraphBuilder::new();
        let nodes: Vec<NodeId> =
            (0..=links).map(|k| b.node(k as i64, Vec2::new(k as f32 * link_m, 0.0), false)).collect();
        for k in 0..links {
            let (class, lanes) = if k == links / 2 { (bottleneck, 1) } else { (WayClass::Motorway, 2) };
            b.straight(nodes[k], nodes[k + 1], 15.0, lanes, class);
        }
        b.build()
    }

    fn through(graph: &Graph, count: usize, every_s: f64) -> Vec<Trip> {
        let route: Vec<LinkId> = (0..graph.links().len() as u32).map(LinkId).collect();
        (0..count)
            .map(|k| Trip { id: k as u64, depart_s: k as f64 * every_s, route: route.clone(), class: 0 })
            .collect()
    }

    fn model(graph: Graph, trips: Vec<Trip>, params: QueueParams) -> QueueTraffic {
        QueueTraffic::new(Arc::new(graph), vec![DriverParams::CAR], params, trips, 0.0).unwrap()
    }

    #[test]
    fn a_free_road_takes_exactly_the_free_flow_time_whatever_the_step() {
        for step_s in [1.0, 0.3, 7.0] {
            let g = corridor(5, 333.3, WayClass::Motorway);
            let free: f64 = g.links().iter().map(|l| l.length_m as f64 / l.speed_mps as f64).sum();
            let trips = vec![Trip { id: 7, depart_s: 12.25, route: (0..5).map(LinkId).collect(), class: 0 }];
            let mut m = model(g, trips, QueueParams { step_s, ..QueueParams::default() });
            m.run_until(1000.0);
            let r = m.finished()[0];
            assert_eq!((r.id, r.teleported), (7, false));
            assert!((r.arrive_s - 12.25 - free).abs() < 1e-9, "step {step_s}: {r:?}, free flow {free}");
            assert!((r.free_flow_s - free).abs() < 1e-9 && (r.length_m - 5.0 * 333.3).abs() < 1e-3);
        }
    }

    #[test]
    fn a_bus_dwells_at_its_stops_keeps_its_timetable_and_cars_pass_it() {
        let g = corridor(5, 300.0, WayClass::Motorway);
        let link_s = 300.0 / 15.0;
        let route: Vec<LinkId> = (0..5).map(LinkId).collect();
        let mut m = QueueTraffic::new(
            Arc::new(g),
            vec![DriverParams::CAR, DriverParams::BUS],
            QueueParams::default(),
            Vec::new(),
            0.0,
        )
        .unwrap();
        let stops = vec![
            StopHold { link: LinkId(1), dwell_s: 30.0, not_before_s: 0.0 },
            // Early at a timepoint: it waits for the timetable.
            StopHold { link: LinkId(3), dwell_s: 20.0, not_before_s: 200.0 },
            StopHold { link: LinkId(4), dwell_s: 20.0, not_before_s: 0.0 },
        ];
        m.add_trip_with_stops(Trip { id: 1, depart_s: 0.0, route: route.clone(), class: 1 }, stops).unwrap();
        // A car 10 s behind it.
        m.add_trip(Trip { id: 2, depart_s: 10.0, route, class: 0 }).unwrap();
        m.run_until(1000.0);
        let e = m.stop_events();
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].trip_id, e[0].stop), (1, 0));
        assert!((e[0].arrive_s - 2.0 * link_s).abs() < 1e-9 && (e[0].depart_s - e[0].arrive_s - 30.0).abs() < 1e-9);
        assert!((e[1].arrive_s - (e[0].depart_s + 2.0 * link_s)).abs() < 1e-9, "{e:?}");
        assert!((e[1].depart_s - 200.0).abs() < 1e-9, "held to its timetable: {e:?}");
        // The terminus ends the trip on arrival.
        assert!((e[2].arrive_s - (200.0 + link_s)).abs() < 1e-9 && e[2].depart_s == e[2].arrive_s);
        let bus = m.finished().iter().find(|r| r.id == 1).unwrap();
        let car = m.finished().iter().find(|r| r.id == 2).unwrap();
        assert!((bus.arrive_s - e[2].arrive_s).abs() < 1e-9);
        assert!((car.arrive_s - 10.0 - 5.0 * link_s).abs() < 1e-9, "the car passes the bus at its stops: {car:?}");
        assert_eq!(m.stats().stops_skipped, 0);
        // Stops off the route, or out of order, are refused.
        let off = vec![StopHold { link: LinkId(3), dwell_s: 0.0, not_before_s: 0.0 }];
        let trip = Trip { id: 5, depart_s: 0.0, route: vec![LinkId(0), LinkId(1)], class: 0 };
        assert!(m.add_trip_with_stops(trip, off).unwrap_err().contains("trip 5"));
    }

    #[test]
    fn a_signalised_movement_adds_its_mean_red_wait() {
        use crate::city::control::{Phase, SignalPlan};
        use crate::mobility::junctions::{Control, SignalParams};
        let g = corridor(3, 300.0, WayClass::Motorway);
        let free: f64 = g.links().iter().map(|l| l.length_m as f64 / l.speed_mps as f64).sum();
        // Link 1 ends at a signal: 60 s red, 30 s green.
        let plan = SignalPlan {
            offset_s: 0.0,
            phases: vec![
                Phase { duration_s: 60.0, lights: vec![Light::Red] },
                Phase { duration_s: 30.0, lights: vec![Light::Green] },
            ],
        };
        let junctions = Junctions {
            control: vec![Control::Free, Control::Signal { controller: 0, index: 0 }, Control::Free],
            movement_signals: Vec::new(),
            turn_speeds: Vec::new(),
            majors: vec![Vec::new(); 4],
            plans: vec![plan],
            critical_gap_s: SignalParams::default().critical_gap_s,
            ..Junctions::default()
        };
        for (on, expected) in [(true, 60.0 * 60.0 / (2.0 * 90.0)), (false, 0.0)] {
            let trips = vec![Trip { id: 1, depart_s: 0.0, route: (0..3).map(LinkId).collect(), class: 0 }];
            let params = QueueParams { signal_delay: on, ..QueueParams::default() };
            let mut m = model(g.clone(), trips, params);
            m.set_signal_delays(&junctions).unwrap();
            m.run_until(1000.0);
            let r = m.finished()[0];
            assert!((r.arrive_s - free - expected).abs() < 1e-9, "signal delay {on}: {r:?}");
        }
    }

    #[test]
    fn a_bottleneck_discharges_at_its_flow_capacity() {
        // 400 vehicles arriving at 1 per second (3600/h) meet a one-lane secondary road (1000 veh/h): they
        // leave it 3.6 s apart, and the queue spills back without any link ever over its storage.
        let g = corridor(5, 500.0, WayClass::Secondary);
        let trips = through(&g, 400, 1.0);
        let mut m = model(g, trips, QueueParams::default());
        let mut max_over = 0.0f64;
        let mut entered_after = Vec::new();
        let mut last_entries = 0;
        while !m.is_done() {
            m.step();
            for l in 0..5 {
                let link = LinkId(l);
                max_over = max_over.max(m.occupancy(link) as f64 - m.storage(link).ceil());
            }
            let e = m.link_entries()[3];
            if e > last_entries {
                entered_after.push((m.now_s(), e - last_entries));
                last_entries = e;
            }
        }
        assert!(max_over <= 0.0, "a link held more than its storage");
        assert_eq!(m.finished().len(), 400);
        // Over the saturated period (vehicles 50..350), the discharge rate.
        let times: Vec<f64> = entered_after.iter().flat_map(|&(t, n)| std::iter::repeat_n(t, n as usize)).collect();
        let rate = 300.0 / (times[349] - times[49]) * 3600.0;
        assert!((rate - 1000.0).abs() < 5.0, "{rate} veh/h");
        // The queue grew: later vehicles waited far longer than the first.
        let delay = |k: usize| m.finished()[k].arrive_s - m.finished()[k].depart_s - m.finished()[k].free_flow_s;
        assert!(delay(0) < 1e-9 && delay(399) > 600.0, "{} {}", delay(0), delay(399));
    }

    #[test]
    fn a_full_link_holds_its_upstream_queue_back() {
        // A closed exit: the link before it fills to its storage, then the one before that, and nothing
        // is lost; after re-opening everyone arrives.
        let g = corridor(3, 150.0, WayClass::Motorway);
        let trips = through(&g, 120, 0.5);
        let mut m = model(g, trips, QueueParams::default());
        m.set_closed(LinkId(2), true);
        m.run_until(200.0);
        assert_eq!(m.occupancy(LinkId(1)) as f64, m.storage(LinkId(1)).ceil());
        assert_eq!(m.occupancy(LinkId(0)) as f64, m.storage(LinkId(0)).ceil());
        let held = m.occupancy(LinkId(0)) + m.occupancy(LinkId(1));
        assert_eq!(held + m.waiting_to_enter(), 120);
        assert_eq!(m.link_entries()[2], 0, "nothing entered the closed link");
        m.set_closed(LinkId(2), false);
        m.run_until(2000.0);
        assert!(m.is_done());
        assert_eq!(m.finished().iter().filter(|r| !r.teleported).count(), 120);
    }

    #[test]
    fn a_busy_merge_serves_the_minor_approach_first_come_first_served() {
        // A main road (1 800 veh/h) and a side road (90 veh/h) merge into a short service lane (room for one
        // vehicle, 300 veh/h): the main road alone could fill it; the side road's vehicles still get their
        // turn and nobody waits out the teleport patience.
        let mut b = GraphBuilder::new();
        let main = b.node(0, Vec2::new(-150.0, 0.0), false);
        let side = b.node(1, Vec2::new(0.0, -150.0), false);
        let merge = b.node(2, Vec2::new(0.0, 0.0), false);
        let out = b.node(3, Vec2::new(7.0, 0.0), false);
        let from_main = b.straight(main, merge, 15.0, 2, WayClass::Primary);
        let from_side = b.straight(side, merge, 15.0, 1, WayClass::Residential);
        let beyond = b.node(4, Vec2::new(157.0, 0.0), false);
        let lane = b.straight(merge, out, 5.0, 1, WayClass::Service);
        let away = b.straight(out, beyond, 15.0, 2, WayClass::Primary);
        let g = b.build();
        let mut trips: Vec<Trip> = (0..300)
            .map(|k| Trip { id: k, depart_s: k as f64 * 2.0, route: vec![from_main, lane, away], class: 0 })
            .collect();
        trips.extend((0..30).map(|k| Trip {
            id: 1000 + k,
            depart_s: k as f64 * 40.0,
            route: vec![from_side, lane, away],
            class: 0,
        }));
        let mut m = model(g, trips, QueueParams::default());
        assert_eq!(m.storage(lane), 1.0);
        m.run_until(20_000.0);
        assert!(m.is_done());
        assert_eq!(m.stats().teleports, 0);
        let side_waits: Vec<f64> =
            m.finished().iter().filter(|r| r.id >= 1000).map(|r| r.arrive_s - r.depart_s - r.free_flow_s).collect();
        assert_eq!(side_waits.len(), 30);
        // Taking turns at the stop line, a side-road vehicle waits for about one main-road vehicle, not for
        // the main road's whole queue.
        let main_mean =
            m.finished().iter().filter(|r| r.id < 1000).map(|r| r.arrive_s - r.depart_s - r.free_flow_s).sum::<f64>()
                / 300.0;
        let side_mean = side_waits.iter().sum::<f64>() / 30.0;
        assert!(main_mean > 1000.0 && side_mean < 40.0, "side {side_mean:.0} s, main {main_mean:.0} s");
    }

    #[test]
    fn closing_a_link_reroutes_and_a_dead_end_teleports_after_the_patience() {
        let g = Graph::grid(4, 200.0, 1, 13.9);
        let mut router = Router::new(&g);
        let route = router.route(NodeId(0), NodeId(15), Weight::TravelTime).unwrap().links;
        let blocked = route[2];
        let trips = (0..20).map(|k| Trip { id: k, depart_s: k as f64 * 3.0, route: route.clone(), class: 0 }).collect();
        let mut m = model(g, trips, QueueParams::default());
        m.set_closed(blocked, true);
        m.run_until(3000.0);
        assert!(m.is_done());
        assert_eq!(m.link_entries()[blocked.0 as usize], 0);
        assert_eq!(m.stats().reroutes, 20);
        assert!(m.finished().iter().all(|r| !r.teleported && r.reroutes == 1));
        // A road whose only way on closes: the vehicle waits at the front for the patience, then is
        // teleported over the rest of its route, and counted.
        let g = corridor(3, 150.0, WayClass::Motorway);
        let trips = through(&g, 1, 1.0);
        let mut m = model(g, trips, QueueParams { teleport_after_s: 100.0, ..QueueParams::default() });
        m.set_closed(LinkId(2), true);
        m.run_until(1000.0);
        let r = m.finished()[0];
        assert!(r.teleported && m.stats().teleports == 1, "{r:?}");
        let waited_from = 300.0 / 15.0;
        assert!((r.arrive_s - (waited_from + 100.0 + 10.0)).abs() <= 1.0 + 1e-9, "{r:?}");
    }

    #[test]
    fn every_trip_of_a_congested_grid_is_accounted_for_and_runs_repeat_exactly() {
        let g = Graph::grid(5, 150.0, 1, 13.9);
        let trips = super::super::vehicles::random_trips(&g, 3000, 900.0, 5);
        let run = |params: QueueParams| {
            let mut m = model(g.clone(), trips.clone(), params);
            m.run_until(20_000.0);
            (m.finished().to_vec(), m.stats(), m.is_done())
        };
        let (a, stats, done) = run(QueueParams::default());
        assert!(done && a.len() == 3000);
        let slowest = a.iter().map(|r| (r.arrive_s - r.depart_s) / r.free_flow_s).fold(0.0, f64::max);
        eprintln!("slowest trip at {slowest:.1}× its free-flow time, {} teleported", stats.teleports);
        assert!(a.iter().all(|r| r.arrive_s >= r.depart_s + r.free_flow_s - 1e-9));
        assert!(a.iter().any(|r| r.arrive_s - r.depart_s > 2.0 * r.free_flow_s), "the grid is congested");
        let (b, _, _) = run(QueueParams::default());
        assert_eq!(a, b);
        // Half the flow capacity: slower.
        let (c, _, _) = run(QueueParams { flow_capacity_factor: 0.5, ..QueueParams::default() });
        let mean = |r: &[TripResult]| r.iter().map(|r| r.arrive_s - r.depart_s).sum::<f64>() / r.len() as f64;
        assert!(mean(&c) > mean(&a), "{} {}", mean(&c), mean(&a));
        assert!(stats.vehicle_updates > 3000);
    }

    #[test]
    fn positions_place_queued_vehicles_back_from_the_link_end() {
        // Link 0 has two lanes; the one after it is closed.
        let g = corridor(3, 150.0, WayClass::Motorway);
        let trips = through(&g, 10, 0.0);
        let mut m = model(g, trips, QueueParams::default());
        m.set_closed(LinkId(1), true);
        m.run_until(60.0);
        let on_link0: Vec<VehiclePosition> = m.positions().filter(|p| p.link == LinkId(0)).collect();
        assert_eq!(on_link0.len(), 10);
        for (i, p) in on_link0.iter().enumerate() {
            assert_eq!(p.lane as usize, i % 2);
            assert!((p.pos_m - (150.0 - (i / 2) as f64 * 7.5)).abs() < 1e-9 && p.speed_mps == 0.0, "{p:?}");
        }
    }

    #[test]
    fn bad_parameters_and_trips_are_refused() {
        let g = || Arc::new(corridor(3, 150.0, WayClass::Motorway));
        let bad = QueueParams { vehicle_cell_m: 0.0, ..QueueParams::default() };
        assert!(QueueTraffic::new(g(), vec![DriverParams::CAR], bad, Vec::new(), 0.0).is_err());
        let trip = Trip { id: 3, depart_s: 0.0, route: vec![LinkId(0), LinkId(2)], class: 0 };
        let e = QueueTraffic::new(g(), vec![DriverParams::CAR], QueueParams::default(), vec![trip], 0.0);
        assert!(e.err().unwrap().contains("trip 3"));
    }
}
