//! The microscopic traffic model: every vehicle on a lane of the road graph, following the one ahead by the
//! Intelligent Driver Model, changing lanes by MOBIL ([`super::idm`]), crossing junctions when their signal
//! or the priority rules let it ([`super::junctions`]).
//!
//! Vehicles are kept per lane, front first, with their position (m, front bumper from the lane's start) and
//! speed (m/s). A time step (the SUMO default is 1 s; ours [`MicroParams::step_s`]) runs in phases:
//! 1. **insertion**: vehicles due to depart enter their first link at its start, standing, when the lane
//!    with most room has room for them (else they wait, and the delay counts in their trip time);
//! 2. **lane changes** (parallel over lanes, read-only, then applied in lane order): MOBIL with the
//!    accelerations the IDM gives before and after, never into a gap that would overlap;
//! 3. **gates** (parallel, read-only): for each lane's front vehicle, whether it may cross its link's end
//!    this step — a closed next link, a red light, a yellow it can stop for, a major vehicle within the
//!    critical gap, or no room beyond the junction ("keep clear") all close the gate — and which lane of
//!    the next link it takes (the one with most room). At most one vehicle enters a lane per step;
//!    contested lanes go to the higher-priority approach, then the lower lane index;
//! 4. **moves** (parallel over lanes, each lane writes only itself): accelerations from the state at the
//!    step's start — the front vehicle follows the last vehicle of its next lane, and a closed gate adds a
//!    standing obstacle at the stop line — then the ballistic update; no vehicle ever overlaps the one ahead
//!    in its lane (a clamp, counted, catches what the discrete step would let through);
//! 5. **transfers** (in lane order): vehicles past their link's end enter the next lane or arrive; a
//!    vehicle standing at the front of its lane for [`MicroParams::teleport_after_s`] is teleported as SUMO
//!    does (here: it finishes its trip after the free-flow time of the rest of its route), and counted.
//!
//! Every parallel phase writes only its own lane and the sequential ones go in lane order, so results are
//! bit-identical on any number of threads. Closing a link makes every vehicle whose remaining route uses it
//! re-route (A* over the open links); vehicles already on it drive off it, and are counted. With
//! `[mobility.rerouting]`, vehicles re-plan on the link travel times measured as they drive
//! ([`super::rerouting`]).

use super::idm::{ballistic, DriverParams, LaneChangeAccels, MobilParams};
use super::junctions::{Control, Junctions};
use super::rerouting::{
    plan_detours, plan_faster_routes, take_new_route, wait_elsewhere, NewRoute, ReroutingParams, TravelTimes,
};
use super::vehicles::{
    check_stops, StopEvent, StopHold, StopPlan, Trip, TripResult, VehicleLedger, VehicleModel, VehiclePosition,
    TIME_TOLERANCE_S,
};
use crate::city::control::Light;
use crate::city::graph::{Graph, LinkId};
use crate::sim::{par_chunks_mut, par_map_ranges, pool_threads, with_team};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// Parameters of the microscopic model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MicroParams {
    /// Time step (s): 0.5 s. Treiber & Kanagaraj (2015) find the ballistic IDM accurate up to about 1 s;
    /// SUMO's default is 1 s.
    pub step_s: f64,
    /// A vehicle standing at the front of its lane this long is teleported (s): 300 s, SUMO's
    /// `--time-to-teleport` default.
    pub teleport_after_s: f64,
    /// Below this speed a vehicle is standing (m/s): 0.1 m/s, SUMO's halting threshold.
    pub standing_speed_mps: f64,
    /// MOBIL lane changes.
    pub lane_change: MobilParams,
    /// How far ahead (s) a driver anticipates the exit of a junction clearing before entering it: 2 s, about
    /// the queue discharge headway at a green light (a driver moves up as the one ahead does).
    pub keep_clear_horizon_s: f64,
}

impl Default for MicroParams {
    fn default() -> Self {
        MicroParams {
            step_s: 0.5,
            teleport_after_s: 300.0,
            standing_speed_mps: 0.1,
            lane_change: MobilParams::default(),
            keep_clear_horizon_s: 2.0,
        }
    }
}

/// A vehicle on a lane.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Veh {
    /// Index into `Traffic::vehicles`.
    id: u32,
    /// Front bumper from the lane's start (m).
    pos: f64,
    /// Speed (m/s).
    speed: f64,
    /// Time standing without interruption (s).
    wait_s: f64,
    /// Index of the current link in the route.
    route_pos: u32,
    /// The next link of the route (`NO_LINK` on the last), kept here so the hot loops need not read the
    /// route.
    next: u32,
    /// Vehicle class.
    class: u8,
    /// Vehicle length (m), copied from its class.
    length: f64,
}

/// One lane of one link.
#[derive(Clone, Debug)]
struct Lane {
    link: u32,
    /// Index within the link, rightmost 0.
    index: u8,
    length: f64,
    speed_limit: f64,
    /// Front first.
    vehicles: VecDeque<Veh>,
    /// Vehicles that passed the end this step, with the share of the step at which they did.
    leaving: Vec<(Veh, f64)>,
    /// A vehicle removed this step to be teleported.
    teleport: Option<Veh>,
}

/// A vehicle's trip and progress.
#[derive(Clone, Debug)]
struct Vehicle {
    trip_id: u64,
    class: u8,
    depart_s: f64,
    inserted_s: f64,
    route: Vec<LinkId>,
    reroutes: u32,
    /// Stops to make (buses), the route index of each (`None`: no longer on the route) and the next one.
    stops: StopPlan,
    /// When it came to a stand at its next stop (s; NaN while it has not).
    at_stop_since_s: f64,
    /// When it entered the link it is on (s).
    link_entered_s: f64,
}

/// The front vehicle's permission to cross its link's end this step.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Gate {
    /// Lane of the next link it would enter (`NO_LANE` when its route ends here, or the lane is empty).
    target: u32,
    open: bool,
    /// Lower goes first when two front vehicles want the same lane in the same step.
    priority: u8,
    /// Whether it can reach the end within this step.
    reaches: bool,
    /// Speed limit of the movement through the junction (m/s; infinite when none is known).
    turn_speed: f64,
}

const NO_LANE: u32 = u32::MAX;
const NO_LINK: u32 = u32::MAX;
/// Where on a lane shorter than a vehicle the vehicle is inserted (share of the length): just short of
/// the end, so it is on the lane.
const ALMOST_WHOLE_LANE: f64 = 0.999;
const NO_PHASE: u16 = u16::MAX;

/// Whether a vehicle of `class` at `speed_mps`, `dist_m` from its stop line, is committed: too close to stop
/// there at its comfortable deceleration (so it goes on in the yellow).
fn too_close_to_stop(class: &DriverParams, speed_mps: f64, dist_m: f64) -> bool {
    dist_m < speed_mps * speed_mps / (2.0 * class.comfort_decel_mps2)
}
/// No lane changes within this many vehicle lengths of a link's end (m per m): the last stretch before a
/// junction is where the gate chooses the next lane; a change there would only be undone.
const NO_LANE_CHANGE_LENGTHS: f64 = 2.0;
/// How far before the stop line (m) a vehicle that may not cross is held by the no-overlap clamp.
const STOP_LINE_CLEARANCE_M: f64 = 1e-3;
/// A vehicle whose front is within its minimum gap plus this (m) of the stop line, standing, has reached a
/// stop at the link's end (IDM holds it its minimum gap short of the line, as at a red light).
const STOP_REACHED_TOLERANCE_M: f64 = 1.0;
/// Below this many vehicles on the network a step runs on one thread (task hand-off would cost more).
const PARALLEL_FROM_VEHICLES: usize = 2000;
/// Pieces per thread the parallel phases split the lanes into (some balance for uneven lanes).
const CHUNKS_PER_THREAD: usize = 4;
const CLOSED_GATE: Gate =
    Gate { target: NO_LANE, open: false, priority: u8::MAX, reaches: false, turn_speed: f64::INFINITY };

/// A lane at the start of a step: its front vehicle's gate and its last vehicle.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Snapshot {
    gate: Gate,
    tail: Option<Tail>,
}

/// The last vehicle of a lane: rear bumper position (m) and speed (m/s).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tail {
    rear: f64,
    speed: f64,
}

/// The state of the microscopic model.
pub struct Traffic {
    graph: Arc<Graph>,
    junctions: Junctions,
    classes: Vec<DriverParams>,
    params: MicroParams,
    /// `lanes[first_lane[l]..first_lane[l + 1]]` are link `l`'s lanes, rightmost first.
    first_lane: Vec<u32>,
    lanes: Vec<Lane>,
    vehicles: Vec<Vehicle>,
    /// Trips not yet due, by departure (reverse order: the next is last).
    schedule: Vec<u32>,
    /// Due vehicles waiting to enter each link.
    pending: Vec<VecDeque<u32>>,
    pending_links: BTreeSet<u32>,
    closed: Vec<bool>,
    reroute_due: bool,
    /// Vehicles that entered each link.
    /// Finished trips, counters, link entries and stops made.
    ledger: VehicleLedger,
    steps: u64,
    start_s: f64,
    /// Pieces the parallel phases split the lanes into (default: by the number of vehicles).
    chunks: Option<usize>,
    /// Vehicles on the network.
    active: usize,
    /// The phase of every signal plan in this step (`NO_PHASE` for a plan without time) and the clock
    /// time it ends.
    phases_now: Vec<(u16, f64)>,
    /// Gates and tails of the current step (kept to reuse the allocation).
    snapshot: Vec<Snapshot>,
    /// The step (plus one) in which a vehicle last entered each lane.
    entered_at_step: Vec<u64>,
    /// Vehicles with stops were added (the stop pass runs only then).
    any_stops: bool,
    /// Measured link travel times, when vehicles re-plan on them (`[mobility.rerouting]`).
    travel_times: Option<TravelTimes>,
}

impl Traffic {
    /// A model of `graph` with its junction controls, vehicle classes and trips; the clock starts at
    /// `start_s`. Fails on a route whose links do not connect or a class index out of range.
    pub fn new(
        graph: Arc<Graph>,
        junctions: Junctions,
        classes: Vec<DriverParams>,
        params: MicroParams,
        trips: Vec<Trip>,
        start_s: f64,
    ) -> Result<Traffic, String> {
        if !(params.step_s > 0.0 && params.step_s <= 2.0) {
            return Err(format!("time step {} s: must be in (0, 2] s", params.step_s));
        }
        let links = graph.links();
        if junctions.control.len() != links.len() {
            return Err("junction controls do not match the network".into());
        }
        let mut first_lane = Vec::with_capacity(links.len() + 1);
        let mut lanes = Vec::new();
        for (k, l) in links.iter().enumerate() {
            first_lane.push(lanes.len() as u32);
            for index in 0..l.lanes.max(1) {
                lanes.push(Lane {
                    link: k as u32,
                    index,
                    length: l.length_m as f64,
                    speed_limit: l.speed_mps as f64,
                    vehicles: VecDeque::new(),
                    leaving: Vec::new(),
                    teleport: None,
                });
            }
        }
        first_lane.push(lanes.len() as u32);
        let lane_count = lanes.len();
        let mut vehicles = Vec::with_capacity(trips.len());
        for t in trips {
            super::vehicles::check_trip(&graph, classes.len(), &t)?;
            vehicles.push(Vehicle::new(t, Vec::new()));
        }
        let mut schedule: Vec<u32> = (0..vehicles.len() as u32).collect();
        schedule
            .sort_by(|&a, &b| vehicles[b as usize].depart_s.total_cmp(&vehicles[a as usize].depart_s).then(b.cmp(&a)));
        Ok(Traffic {
            pending: vec![VecDeque::new(); links.len()],
            pending_links: BTreeSet::new(),
            closed: vec![false; links.len()],
            reroute_due: false,
            ledger: VehicleLedger { entries: vec![0; links.len()], ..VehicleLedger::default() },
            graph,
            junctions,
            classes,
            params,
            first_lane,
            lanes,
            vehicles,
            schedule,
            steps: 0,
            start_s,
            chunks: None,
            active: 0,
            phases_now: Vec::new(),
            snapshot: Vec::new(),
            entered_at_step: vec![0; lane_count],
            any_stops: false,
            travel_times: None,
        })
    }

    /// SUMO demand on its SUMO network: the network's signal programs (priority rules elsewhere, by
    /// `signals`), its vehicle types, every vehicle a trip (trip id = the vehicle's index in the demand).
    pub fn from_sumo(
        net: &crate::import::sumo::SumoNetwork,
        demand: &crate::import::sumo::SumoDemand,
        signals: &super::junctions::SignalParams,
        params: MicroParams,
    ) -> Result<Traffic, String> {
        let junctions = Junctions::from_control(&net.graph, &net.control, signals);
        let trips = demand
            .vehicles
            .iter()
            .enumerate()
            .map(|(k, v)| Trip { id: k as u64, depart_s: v.depart_s, route: v.route.clone(), class: v.vtype })
            .collect();
        let classes = demand.types.iter().map(|(_, p)| *p).collect();
        Traffic::new(Arc::new(net.graph.clone()), junctions, classes, params, trips, 0.0)
    }

    /// Splits the parallel phases into `chunks` pieces (results do not depend on it; tests vary it).
    pub fn set_parallel_chunks(&mut self, chunks: usize) {
        self.chunks = Some(chunks.max(1));
    }

    /// The model's parameters.
    pub fn params(&self) -> &MicroParams {
        &self.params
    }

    /// Brings every signal plan's current phase up to clock time `t` (a plan is looked at again only when
    /// its phase ends).
    fn advance_signals(&mut self, t: f64) {
        if self.phases_now.len() != self.junctions.plans.len() {
            self.phases_now = vec![(NO_PHASE, f64::NEG_INFINITY); self.junctions.plans.len()];
        }
        for (plan, now) in self.junctions.plans.iter().zip(&mut self.phases_now) {
            if t < now.1 {
                continue;
            }
            *now = match plan.phase_at(t) {
                None => (NO_PHASE, f64::INFINITY),
                Some(k) => {
                    // The phase's end: the time into the cycle at which it ends, from this cycle's start.
                    let cycle = plan.cycle_s();
                    let into = (t - plan.offset_s).rem_euclid(cycle);
                    let ends_into: f64 = plan.phases[..=k].iter().map(|p| p.duration_s).sum();
                    (k as u16, t + (ends_into - into))
                }
            };
        }
    }

    /// Moves due trips into their first link's queue and inserts at most one vehicle per link per step.
    fn insert(&mut self, t: f64) {
        let mut due = Vec::new();
        while let Some(&v) = self.schedule.last() {
            if self.vehicles[v as usize].depart_s > t + TIME_TOLERANCE_S {
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
        let links: Vec<u32> = self.pending_links.iter().copied().collect();
        for link in links {
            let l = link as usize;
            if self.closed[l] {
                continue;
            }
            let v = *self.pending[l].front().expect("pending links have vehicles");
            let class_index = self.vehicles[v as usize].class;
            let class = self.classes[class_index as usize];
            let next = self.vehicles[v as usize].route.get(1).map_or(NO_LINK, |l| l.0);
            let Some((lane, room)) = self.roomiest_lane(link) else { continue };
            // Room for the vehicle and its gap — on a lane shorter than that, an empty lane.
            let lane_length = self.lanes[lane as usize].length;
            if room < (class.length_m + class.min_gap_m).min(lane_length) {
                continue;
            }
            self.pending[l].pop_front();
            if self.pending[l].is_empty() {
                self.pending_links.remove(&link);
            }
            self.vehicles[v as usize].inserted_s = t;
            self.vehicles[v as usize].link_entered_s = t;
            self.ledger.entries[l] += 1;
            self.active += 1;
            let pos = class.length_m.min(lane_length * ALMOST_WHOLE_LANE);
            self.lanes[lane as usize].vehicles.push_back(Veh {
                id: v,
                pos,
                speed: 0.0,
                wait_s: 0.0,
                route_pos: 0,
                next,
                class: class_index,
                length: class.length_m,
            });
        }
    }

    /// The lane of `link` with most room at its start (distance to the last vehicle's rear), lowest index
    /// on ties.
    fn roomiest_lane(&self, link: u32) -> Option<(u32, f64)> {
        let range = self.first_lane[link as usize]..self.first_lane[link as usize + 1];
        range
            .map(|k| {
                let lane = &self.lanes[k as usize];
                (k, lane_tail(lane).map_or(lane.length, |t| t.rear))
            })
            .fold(None, |best: Option<(u32, f64)>, (k, room)| match best {
                Some((_, r)) if r >= room => best,
                _ => Some((k, room)),
            })
    }

    /// Gates of every lane's front vehicle, with one entry per target lane per step.
    fn gates(&mut self, chunks: usize) -> Vec<Snapshot> {
        let dt = self.params.step_s;
        // Every entry is written below, in the parallel pass: the buffer is only sized here.
        let mut snap = std::mem::take(&mut self.snapshot);
        snap.resize(self.lanes.len(), Snapshot { gate: CLOSED_GATE, tail: None });
        let this = &*self;
        let wanting: Vec<Vec<(u8, u32)>> = par_chunks_mut(&mut snap, chunks, |first, out| {
            let mut wanting = Vec::new();
            for (k, s) in out.iter_mut().enumerate() {
                let lane = &this.lanes[first + k];
                if lane.vehicles.is_empty() {
                    *s = Snapshot { gate: CLOSED_GATE, tail: None };
                    continue;
                }
                s.tail = lane_tail(lane);
                s.gate = this.gate(first + k, dt);
                if s.gate.open && s.gate.reaches && s.gate.target != NO_LANE {
                    wanting.push((s.gate.priority, (first + k) as u32));
                }
            }
            wanting
        });
        // Arbitration: one entry per target lane per step, higher priority first, then lower lane index.
        let mut wanting: Vec<(u8, u32)> = wanting.into_iter().flatten().collect();
        wanting.sort_unstable();
        let stamp = self.steps + 1;
        for (_, k) in wanting {
            let g = &mut snap[k as usize].gate;
            let taken = &mut self.entered_at_step[g.target as usize];
            if *taken == stamp {
                g.open = false;
            } else {
                *taken = stamp;
            }
        }
        snap
    }

    /// The gate of lane `k`'s front vehicle in this step (signal phases as `advance_signals` left them).
    fn gate(&self, k: usize, dt: f64) -> Gate {
        let lane = &self.lanes[k];
        let Some(front) = lane.vehicles.front() else { return CLOSED_GATE };
        let class = &self.classes[front.class as usize];
        let dist = lane.length - front.pos;
        let reaches = front.pos + front.speed * dt + 0.5 * class.max_accel_mps2 * dt * dt >= lane.length;
        if front.next == NO_LINK {
            return Gate { target: NO_LANE, open: true, priority: 0, reaches, turn_speed: f64::INFINITY };
        }
        let next = LinkId(front.next);
        let (target, room) = self.roomiest_lane(next.0).expect("every link has a lane");
        let here = LinkId(lane.link);
        let turn_speed = self.junctions.turn_speed(here, next).map_or(f64::INFINITY, f64::from);
        let mut gate = Gate { target, open: !self.closed[next.0 as usize], priority: 0, reaches, turn_speed };
        let committed = too_close_to_stop(class, front.speed, dist);
        let control = self.junctions.control[lane.link as usize];
        let mut yields = control == Control::Minor;
        if let Some(light) = self.movement_light(here, next) {
            match light {
                Light::Green => {
                    if let Some(opposing) = self.junctions.crosses_oncoming(&self.graph, here, self.route_ahead(front))
                    {
                        gate.priority = 1;
                        if !committed && self.oncoming_within_gap(opposing) {
                            gate.open = false;
                        }
                    }
                }
                Light::Yellow | Light::Red => {
                    // A turner across oncoming traffic still waiting at the line when its green ends clears
                    // the junction in the yellow or the all-red once the oncoming traffic has stopped (the
                    // "sneakers" of HCM 2010).
                    let clearing = light == Light::Yellow || self.in_clearance(here, next);
                    let sneaks = clearing
                        && front.speed <= self.params.standing_speed_mps
                        && self
                            .junctions
                            .crosses_oncoming(&self.graph, here, self.route_ahead(front))
                            .is_some_and(|opposing| !self.oncoming_within_gap(opposing));
                    if sneaks {
                        gate.priority = 1;
                    }
                    gate.open &= sneaks || (light == Light::Yellow && committed);
                }
                Light::Off => {
                    let node = self.graph.link(here).to;
                    yields = !self.junctions.majors[node.0 as usize].is_empty()
                        && !self.junctions.majors[node.0 as usize].contains(&here);
                }
            }
        }
        if yields {
            gate.priority = 1;
            if !committed && self.major_approaching(here) {
                gate.open = false;
            }
        }
        // A stop at this link's end: stand at the line until the time there is up.
        if !self.released_from_stop(front.id, front.route_pos) {
            gate.open = false;
        }
        // Keep the junction clear: at a junction, enter only if there will be room beyond it for the whole
        // vehicle — the room now, plus what the last vehicle there clears within the anticipation horizon.
        if control != Control::Free {
            let tail_speed = self.lanes[target as usize].vehicles.back().map_or(0.0, |v| v.speed);
            let target_length = self.lanes[target as usize].length;
            if room + tail_speed * self.params.keep_clear_horizon_s
                < (front.length + class.min_gap_m).min(target_length)
            {
                gate.open = false;
            }
        }
        gate
    }

    /// The stop vehicle `id` makes at the end of route index `route_pos`, if its next stop is there.
    fn stop_at_end(&self, id: u32, route_pos: u32) -> Option<StopHold> {
        self.vehicles[id as usize].stops.due_at(route_pos as usize)
    }

    /// Whether vehicle `id` may leave the end of route index `route_pos` as far as its stops go: it has no
    /// stop there, or it has stood there its dwell time and its earliest departure has come.
    fn released_from_stop(&self, id: u32, route_pos: u32) -> bool {
        let Some(hold) = self.stop_at_end(id, route_pos) else { return true };
        let since = self.vehicles[id as usize].at_stop_since_s;
        !since.is_nan() && self.now_s() + TIME_TOLERANCE_S >= (since + hold.dwell_s).max(hold.not_before_s)
    }

    /// Front vehicles that have come to a stand at their stop's line start their dwell (standing at a stop
    /// is not being stuck, so it does not count towards teleporting); stops the route no longer passes
    /// are skipped and counted.
    fn mark_arrivals_at_stops(&mut self, t_end: f64) {
        for lane in &mut self.lanes {
            let Some(front) = lane.vehicles.front_mut() else { continue };
            let vehicle = &mut self.vehicles[front.id as usize];
            if vehicle.stops.is_empty() {
                continue;
            }
            self.ledger.stats.stops_skipped += vehicle.stops.skip_dropped();
            if vehicle.stops.due_at(front.route_pos as usize).is_none() {
                continue;
            }
            if vehicle.at_stop_since_s.is_nan() {
                let min_gap = self.classes[vehicle.class as usize].min_gap_m;
                if lane.length - front.pos <= min_gap + STOP_REACHED_TOLERANCE_M
                    && front.speed < self.params.standing_speed_mps
                {
                    vehicle.at_stop_since_s = t_end;
                }
            }
            if !vehicle.at_stop_since_s.is_nan() {
                front.wait_s = 0.0;
            }
        }
    }

    /// Logs the stop vehicle `id` leaves (or, at the end of its route, reaches) at `t_s`, if it had one at
    /// the end of route index `route_pos`.
    fn leave_stop(&mut self, id: u32, route_pos: u32, t_s: f64) {
        if self.stop_at_end(id, route_pos).is_none() {
            return;
        }
        let v = &mut self.vehicles[id as usize];
        let arrive_s = if v.at_stop_since_s.is_nan() { t_s } else { v.at_stop_since_s };
        let stop = v.stops.made();
        self.ledger.stop_events.push(StopEvent { trip_id: v.trip_id, stop, arrive_s, depart_s: t_s });
        v.at_stop_since_s = f64::NAN;
    }

    /// Whether the controller of the movement from `from` onto `to` is in the all-red clearance that ends
    /// this movement's own green (the phase before showed it green or yellow).
    fn in_clearance(&self, from: LinkId, to: LinkId) -> bool {
        let Some((c, i)) = self.junctions.signal_of(from, to) else { return false };
        let k = self.phases_now[c as usize].0;
        if k == NO_PHASE {
            return false;
        }
        let plan = &self.junctions.plans[c as usize];
        let previous = (k as usize + plan.phases.len() - 1) % plan.phases.len();
        plan.phases[k as usize].lights.iter().all(|&l| l == Light::Red)
            && matches!(plan.light_in(previous, i), Light::Green | Light::Yellow)
    }

    /// The rest of a vehicle's route from its next link on.
    fn route_ahead(&self, v: &Veh) -> &[LinkId] {
        self.vehicles[v.id as usize].route.get(v.route_pos as usize + 1..).unwrap_or(&[])
    }

    /// The light of the movement from `from` onto `to` now, if it is signalised.
    fn movement_light(&self, from: LinkId, to: LinkId) -> Option<Light> {
        let (c, i) = self.junctions.signal_of(from, to)?;
        Some(match self.phases_now[c as usize].0 {
            NO_PHASE => Light::Off,
            k => self.junctions.plans[c as usize].light_in(k as usize, i),
        })
    }

    /// Whether a moving front vehicle on the `opposing` approach that goes on (green, or yellow and too close
    /// to stop), and does not itself turn across (two such turns pass each other), would reach the junction
    /// within the permissive gap.
    fn oncoming_within_gap(&self, opposing: LinkId) -> bool {
        let gap = self.junctions.permissive_gap_s;
        let lanes = self.first_lane[opposing.0 as usize] as usize..self.first_lane[opposing.0 as usize + 1] as usize;
        self.lanes[lanes].iter().any(|lane| {
            lane.vehicles.front().is_some_and(|v| {
                let dist = lane.length - v.pos;
                let arriving = v.speed > self.params.standing_speed_mps && dist / v.speed < gap;
                if !arriving || v.next == NO_LINK {
                    return false;
                }
                let next = LinkId(v.next);
                // In the yellow, only a vehicle too close to stop comfortably goes on.
                let goes = match self.movement_light(opposing, next) {
                    Some(Light::Green) => true,
                    Some(Light::Yellow) => too_close_to_stop(&self.classes[v.class as usize], v.speed, dist),
                    _ => false,
                };
                goes && self.junctions.crosses_oncoming(&self.graph, opposing, self.route_ahead(v)).is_none()
            })
        })
    }

    /// Whether a moving vehicle on a major approach of `link`'s end node would reach it within the critical
    /// gap.
    fn major_approaching(&self, link: LinkId) -> bool {
        let node = self.graph.link(link).to;
        let gap = self.junctions.critical_gap_s;
        self.junctions.majors[node.0 as usize].iter().any(|&m| {
            let lanes = self.first_lane[m.0 as usize] as usize..self.first_lane[m.0 as usize + 1] as usize;
            self.lanes[lanes].iter().any(|lane| {
                lane.vehicles
                    .front()
                    .is_some_and(|v| v.speed > self.params.standing_speed_mps && (lane.length - v.pos) / v.speed < gap)
            })
        })
    }

    /// MOBIL lane changes on multi-lane links: decided in parallel from the step's start, applied in lane
    /// order where the gap is still free.
    fn change_lanes(&mut self, chunks: usize) {
        let this = &*self;
        let decisions: Vec<Vec<(u32, u32, u32)>> = par_map_ranges(self.lanes.len(), chunks, |range| {
            let mut out = Vec::new();
            for k in range {
                this.lane_change_decisions(k, &mut out);
            }
            out
        });
        for list in decisions {
            for (from, vid, to) in list {
                let from = from as usize;
                let Some(i) = self.lanes[from].vehicles.iter().position(|v| v.id == vid) else { continue };
                let v = self.lanes[from].vehicles[i];
                let target = &self.lanes[to as usize].vehicles;
                let at = target.partition_point(|o| o.pos > v.pos);
                let leader_ok = at == 0 || target[at - 1].pos - target[at - 1].length > v.pos;
                let follower_ok = target.get(at).is_none_or(|o| v.pos - v.length > o.pos);
                if leader_ok && follower_ok {
                    self.lanes[from].vehicles.remove(i);
                    self.lanes[to as usize].vehicles.insert(at, v);
                    self.ledger.stats.lane_changes += 1;
                }
            }
        }
    }

    /// Appends the lane changes lane `k`'s vehicles want: (lane, vehicle id, target lane).
    fn lane_change_decisions(&self, k: usize, out: &mut Vec<(u32, u32, u32)>) {
        let lane = &self.lanes[k];
        let link = lane.link as usize;
        let (lo, hi) = (self.first_lane[link] as usize, self.first_lane[link + 1] as usize);
        if hi - lo < 2 || lane.vehicles.is_empty() {
            return;
        }
        let mobil = &self.params.lane_change;
        let limit = lane.speed_limit;
        let accel = |v: &Veh, leader: Option<&Veh>| -> f64 {
            let p = &self.classes[v.class as usize];
            p.accel(v.speed, limit, leader.map(|l| (l.pos - l.length - v.pos, l.speed)))
        };
        for (i, v) in lane.vehicles.iter().enumerate() {
            // Not in the last stretch before the junction, where the lane is chosen by the gate.
            if lane.length - v.pos < NO_LANE_CHANGE_LENGTHS * v.length {
                continue;
            }
            let leader = i.checked_sub(1).map(|j| &lane.vehicles[j]);
            let follower = lane.vehicles.get(i + 1);
            let own_now = accel(v, leader);
            let old_follower = follower.map_or((0.0, 0.0), |f| (accel(f, Some(v)), accel(f, leader)));
            let mut best: Option<(f64, u32)> = None;
            for side in [k.checked_sub(1), Some(k + 1)].into_iter().flatten() {
                if side < lo || side >= hi {
                    continue;
                }
                let target = &self.lanes[side].vehicles;
                let at = target.partition_point(|o| o.pos > v.pos);
                let new_leader = at.checked_sub(1).map(|j| &target[j]);
                let new_follower = target.get(at);
                if new_leader.is_some_and(|l| l.pos - l.length <= v.pos)
                    || new_follower.is_some_and(|f| v.pos - v.length <= f.pos)
                {
                    continue;
                }
                let accels = LaneChangeAccels {
                    own: (own_now, accel(v, new_leader)),
                    old_follower,
                    new_follower: new_follower.map_or((0.0, 0.0), |f| (accel(f, new_leader), accel(f, Some(v)))),
                };
                if mobil.changes(&accels, false) {
                    let gain = accels.own.1 - accels.own.0;
                    if best.is_none_or(|(g, _)| gain > g) {
                        best = Some((gain, side as u32));
                    }
                }
            }
            if let Some((_, side)) = best {
                out.push((k as u32, v.id, side));
            }
        }
    }

    /// Moves vehicles past their link's end into the next lane, records arrivals and teleports.
    fn transfer(&mut self, t: f64, snap: &[Snapshot], leavers: &[u32]) {
        let dt = self.params.step_s;
        for &k in leavers {
            let k = k as usize;
            let gate = snap[k].gate;
            let mut leaving = std::mem::take(&mut self.lanes[k].leaving);
            let length = self.lanes[k].length;
            for (mut v, frac) in leaving.drain(..) {
                let cross_s = t + frac * dt;
                if self.any_stops {
                    self.leave_stop(v.id, v.route_pos, cross_s);
                }
                self.record_link_time(v.id, self.lanes[k].link, cross_s);
                if v.next == NO_LINK {
                    self.finish(v.id, cross_s, false);
                    continue;
                }
                let target = gate.target as usize;
                let next_link = self.lanes[target].link as usize;
                v.pos -= length;
                v.route_pos += 1;
                v.next = self.vehicles[v.id as usize].route.get(v.route_pos as usize + 1).map_or(NO_LINK, |l| l.0);
                if let Some(tail) = self.lanes[target].vehicles.back() {
                    let max_pos = tail.pos - tail.length;
                    if v.pos > max_pos {
                        v.pos = max_pos;
                        v.speed = v.speed.min(tail.speed);
                        self.ledger.stats.clamps += 1;
                    }
                }
                self.ledger.entries[next_link] += 1;
                self.lanes[target].vehicles.push_back(v);
            }
            self.lanes[k].leaving = leaving;
            if let Some(v) = self.lanes[k].teleport.take() {
                self.record_link_time(v.id, self.lanes[k].link, t + dt);
                // The rest of the route after this link, at free flow.
                let vehicle = &self.vehicles[v.id as usize];
                let class = &self.classes[vehicle.class as usize];
                let rest: f64 = vehicle.route[v.route_pos as usize + 1..]
                    .iter()
                    .map(|&l| {
                        let link = self.graph.link(l);
                        link.length_m as f64 / (link.speed_mps as f64 * class.speed_factor)
                    })
                    .sum();
                self.ledger.stats.teleports += 1;
                self.finish(v.id, t + dt + rest, true);
            }
        }
    }

    fn finish(&mut self, id: u32, arrive_s: f64, teleported: bool) {
        self.active -= 1;
        let v = &self.vehicles[id as usize];
        let class = &self.classes[v.class as usize];
        let (mut length_m, mut free_flow_s) = (0.0, 0.0);
        for &l in &v.route {
            let link = self.graph.link(l);
            length_m += link.length_m as f64;
            free_flow_s += link.length_m as f64 / (link.speed_mps as f64 * class.speed_factor);
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

    /// A vehicle (not a bus: their times include their stops) left `link` at `at_s`: its time on the link
    /// is a travel-time measurement; it is on the next link from then.
    fn record_link_time(&mut self, id: u32, link: u32, at_s: f64) {
        let vehicle = &mut self.vehicles[id as usize];
        let on_link_s = at_s - vehicle.link_entered_s;
        vehicle.link_entered_s = at_s;
        if let Some(times) = &mut self.travel_times {
            if vehicle.stops.is_empty() {
                times.record(LinkId(link), on_link_s);
            }
        }
    }

    /// Vehicles that may re-route: (vehicle, links of its route kept — those driven and the one it is on;
    /// 0 when not yet on the road), in vehicle order; with `scheduled`, also trips not yet due.
    fn reroute_candidates(&self, scheduled: bool) -> Vec<(u32, usize)> {
        let mut todo: Vec<(u32, usize)> = Vec::new();
        for lane in &self.lanes {
            todo.extend(lane.vehicles.iter().map(|v| (v.id, v.route_pos as usize + 1)));
        }
        for queue in &self.pending {
            todo.extend(queue.iter().map(|&v| (v, 0)));
        }
        if scheduled {
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

    /// Ends a travel-time period: measures the links (a lane's front vehicle has been on its link since it
    /// entered) and lets every vehicle on its way or waiting to enter, buses aside, re-plan.
    fn reroute_for_travel_times(&mut self, t: f64) {
        let Some(times) = &mut self.travel_times else { return };
        let vehicles = &self.vehicles;
        let fronts = self.lanes.iter().filter_map(|lane| {
            lane.vehicles.front().map(|v| (LinkId(lane.link), vehicles[v.id as usize].link_entered_s))
        });
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
        if routes.is_empty() {
            return;
        }
        let (mut moved_start, mut on_the_road) = (false, false);
        for (id, keep, rest) in routes {
            on_the_road |= keep > 0;
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
        if on_the_road {
            for lane in &mut self.lanes {
                for v in &mut lane.vehicles {
                    v.next = self.vehicles[v.id as usize].route.get(v.route_pos as usize + 1).map_or(NO_LINK, |l| l.0);
                }
            }
        }
    }

    /// One step, its parallel phases split in `chunks` pieces: re-routing when due, insertion, lane changes,
    /// signals, gates, moves, transfers.
    fn step_phases(&mut self, chunks: usize) {
        let t = self.now_s();
        if self.reroute_due {
            self.reroute();
            self.reroute_due = false;
        }
        if self.travel_times.as_mut().is_some_and(|times| times.due(t)) {
            self.reroute_for_travel_times(t);
        }
        self.insert(t);
        self.change_lanes(chunks);
        self.advance_signals(t);
        let snap = self.gates(chunks);
        let dt = self.params.step_s;
        let (classes, params) = (&self.classes, &self.params);
        let snap_ref = &snap;
        let moved: Vec<(u64, u64, Vec<u32>)> = par_chunks_mut(&mut self.lanes, chunks, |first, lanes| {
            let mut scratch = Vec::new();
            let (mut updates, mut clamps, mut leavers) = (0u64, 0u64, Vec::new());
            for (k, lane) in lanes.iter_mut().enumerate() {
                if lane.vehicles.is_empty() {
                    continue;
                }
                let gate = snap_ref[first + k].gate;
                let target_tail = (gate.target != NO_LANE).then(|| snap_ref[gate.target as usize].tail).flatten();
                updates += lane.vehicles.len() as u64;
                clamps += move_lane(lane, gate, target_tail, classes, params, dt, &mut scratch);
                if !lane.leaving.is_empty() || lane.teleport.is_some() {
                    leavers.push((first + k) as u32);
                }
            }
            (updates, clamps, leavers)
        });
        let mut leavers = Vec::new();
        for (u, c, l) in moved {
            self.ledger.stats.vehicle_updates += u;
            self.ledger.stats.clamps += c;
            leavers.extend(l);
        }
        self.transfer(t, &snap, &leavers);
        if self.any_stops {
            self.mark_arrivals_at_stops(t + dt);
        }
        self.snapshot = snap;
        self.steps += 1;
    }
}

impl VehicleModel for Traffic {
    fn ledger(&self) -> &VehicleLedger {
        &self.ledger
    }

    fn ledger_mut(&mut self) -> &mut VehicleLedger {
        &mut self.ledger
    }

    /// Sets the clock's start (s); only before the first step.
    fn set_start(&mut self, start_s: f64) {
        if self.steps == 0 {
            self.start_s = start_s;
        }
    }

    /// Adds a trip that stops on its way: at each stop it comes to a stand at the link's end (in its lane,
    /// as at a kerbside stop) and stays until its dwell is over and its earliest departure has come.
    fn add_trip_with_stops(&mut self, trip: Trip, stops: Vec<StopHold>) -> Result<(), String> {
        super::vehicles::check_trip(&self.graph, self.classes.len(), &trip)?;
        check_stops(&trip, &stops)?;
        self.any_stops |= !stops.is_empty();
        let id = self.vehicles.len() as u32;
        let depart = trip.depart_s;
        self.vehicles.push(Vehicle::new(trip, stops));
        // The schedule runs from the latest departure to the next (last); among equal times, lower ids last.
        let at = self.schedule.partition_point(|&v| self.vehicles[v as usize].depart_s > depart);
        self.schedule.insert(at, id);
        Ok(())
    }

    /// Clock time (s).
    fn now_s(&self) -> f64 {
        self.start_s + self.steps as f64 * self.params.step_s
    }

    /// The network.
    fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Vehicles on the network now.
    fn on_network(&self) -> usize {
        self.active
    }

    /// Vehicles due to depart that wait to enter their first link.
    fn waiting_to_enter(&self) -> usize {
        self.pending.iter().map(|p| p.len()).sum()
    }

    /// Trips not yet due.
    fn not_yet_departed(&self) -> usize {
        self.schedule.len()
    }

    /// Whether every trip has finished.
    fn is_done(&self) -> bool {
        self.schedule.is_empty() && self.pending_links.is_empty() && self.on_network() == 0
    }

    /// Every vehicle on the network, in lane order.
    fn positions(&self) -> Box<dyn Iterator<Item = VehiclePosition> + '_> {
        Box::new(self.lanes.iter().flat_map(move |lane| {
            lane.vehicles.iter().map(move |v| VehiclePosition {
                vehicle: v.id,
                link: LinkId(lane.link),
                lane: lane.index,
                pos_m: v.pos,
                speed_mps: v.speed,
                standing_s: v.wait_s,
                class: v.class,
            })
        }))
    }

    /// Opens or closes a link. Closing makes vehicles whose remaining route uses it re-route at the next step;
    /// no vehicle enters a closed link.
    fn set_closed(&mut self, link: LinkId, closed: bool) {
        let l = link.0 as usize;
        if self.closed[l] == closed {
            return;
        }
        self.closed[l] = closed;
        if closed {
            let lanes = self.first_lane[l] as usize..self.first_lane[l + 1] as usize;
            self.ledger.stats.caught_on_closed_links +=
                self.lanes[lanes].iter().map(|ln| ln.vehicles.len() as u64).sum::<u64>();
            self.reroute_due = true;
        }
    }

    /// Whether a link is closed.
    fn is_closed(&self, link: LinkId) -> bool {
        self.closed[link.0 as usize]
    }

    fn enable_rerouting(&mut self, params: ReroutingParams) {
        if self.steps == 0 {
            self.travel_times = Some(TravelTimes::new(&self.graph, params));
        }
    }

    /// Advances one step.
    fn step(&mut self) {
        // Parallel phases pay off from some thousand vehicles; below, one piece runs inline.
        let chunks = self.chunks.unwrap_or_else(|| {
            if self.active < PARALLEL_FROM_VEHICLES {
                1
            } else {
                pool_threads() * CHUNKS_PER_THREAD
            }
        });
        // Three short parallel phases per step: one team for all of them (see `sim::fork_join`).
        with_team(chunks > 1, || self.step_phases(chunks));
    }
}

impl Vehicle {
    fn new(t: Trip, stops: Vec<StopHold>) -> Vehicle {
        Vehicle {
            trip_id: t.id,
            class: t.class,
            depart_s: t.depart_s,
            inserted_s: f64::NAN,
            stops: StopPlan::new(&t.route, stops),
            route: t.route,
            reroutes: 0,
            at_stop_since_s: f64::NAN,
            link_entered_s: f64::NAN,
        }
    }
}

/// The last vehicle of a lane.
fn lane_tail(lane: &Lane) -> Option<Tail> {
    lane.vehicles.back().map(|v| Tail { rear: v.pos - v.length, speed: v.speed })
}

/// Moves one lane's vehicles one step; returns how often the no-overlap clamp acted.
#[allow(clippy::too_many_arguments)]
fn move_lane(
    lane: &mut Lane,
    gate: Gate,
    target_tail: Option<Tail>,
    classes: &[DriverParams],
    params: &MicroParams,
    dt: f64,
    accel: &mut Vec<f64>,
) -> u64 {
    let n = lane.vehicles.len();
    accel.clear();
    for i in 0..n {
        let v = &lane.vehicles[i];
        let p = &classes[v.class as usize];
        let a = if i == 0 {
            let dist = lane.length - v.pos;
            let follow = target_tail.map(|t| (dist + t.rear, t.speed));
            // Slowing for a turn: the speed from which comfortable braking reaches the turn speed at the line.
            let limit = if gate.turn_speed.is_finite() {
                let cap = (gate.turn_speed * gate.turn_speed + 2.0 * p.comfort_decel_mps2 * dist).sqrt();
                lane.speed_limit.min(cap / p.speed_factor)
            } else {
                lane.speed_limit
            };
            let mut a = p.accel(v.speed, limit, follow);
            if !gate.open {
                a = a.min(p.accel(v.speed, limit, Some((dist, 0.0))));
            }
            a
        } else {
            let l = &lane.vehicles[i - 1];
            p.accel(v.speed, lane.speed_limit, Some((l.pos - l.length - v.pos, l.speed)))
        };
        accel.push(a);
    }
    let mut clamps = 0;
    let mut ahead_rear = f64::INFINITY;
    let mut ahead_speed = f64::INFINITY;
    for (i, v) in lane.vehicles.iter_mut().enumerate() {
        let (speed, dx) = ballistic(v.speed, accel[i], dt);
        let old = v.pos;
        let mut pos = old + dx;
        let mut speed = speed;
        if pos > ahead_rear {
            pos = ahead_rear.max(old);
            speed = speed.min(ahead_speed);
            clamps += 1;
        }
        let route_ends = v.next == NO_LINK;
        let may_cross = route_ends || (i == 0 && gate.open);
        if pos >= lane.length && !may_cross {
            pos = (lane.length - STOP_LINE_CLEARANCE_M).max(old);
            clamps += 1;
        }
        // Share of the step at which the front crossed the end (linear in position).
        accel[i] = if pos >= lane.length && pos > old { (lane.length - old) / (pos - old) } else { 1.0 };
        v.pos = pos;
        v.speed = speed;
        v.wait_s = if speed < params.standing_speed_mps { v.wait_s + dt } else { 0.0 };
        ahead_rear = pos - v.length;
        ahead_speed = speed;
    }
    // Vehicles past the end leave (they are at the front).
    let mut i = 0;
    while lane.vehicles.front().is_some_and(|v| v.pos >= lane.length) {
        let v = lane.vehicles.pop_front().expect("checked");
        lane.leaving.push((v, accel[i]));
        i += 1;
    }
    if let Some(front) = lane.vehicles.front() {
        if front.wait_s >= params.teleport_after_s {
            lane.teleport = lane.vehicles.pop_front();
        }
    }
    clamps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::control::{Phase, SignalPlan};
    use crate::city::graph::{GraphBuilder, NodeId};
    use crate::city::routing::Router;
    use crate::city::routing::Weight;
    use crate::import::tags::WayClass;
    use crate::mobility::junctions::SignalParams;
    use crate::mobility::vehicles::random_trips;
    use glam::Vec2;

    impl Traffic {
        /// No vehicle overlaps the one ahead in its lane, and every one is within its lane.
        fn assert_no_overlap(&self) {
            for lane in &self.lanes {
                for w in lane.vehicles.iter().collect::<Vec<_>>().windows(2) {
                    assert!(w[1].pos <= w[0].pos - w[0].length + 1e-9, "overlap on link {}: {:?}", lane.link, w);
                }
                for v in &lane.vehicles {
                    assert!(v.pos < lane.length && v.speed >= 0.0, "{v:?} on a lane of {} m", lane.length);
                }
            }
        }
    }

    /// The link from the node with source id `from` to the one with `to`.
    fn link_between(g: &Graph, from: i64, to: i64) -> LinkId {
        let at = g.links().iter().position(|l| g.node(l.from).source_id == from && g.node(l.to).source_id == to);
        LinkId(at.expect("link exists") as u32)
    }

    fn ring(links: usize, link_m: f32, speed_mps: f32) -> Graph {
        let mut b = GraphBuilder::new();
        let radius = links as f32 * link_m / (2.0 * std::f32::consts::PI);
        let nodes: Vec<NodeId> = (0..links)
            .map(|k| {
                let a = k as f32 / links as f32 * 2.0 * std::f32::consts::PI;
                b.node(k as i64, Vec2::new(a.cos(), a.sin()) * radius, false)
            })
            .collect();
        for k in 0..links {
            b.straight(nodes[k], nodes[(k + 1) % links], speed_mps, 1, WayClass::Secondary);
        }
        b.build()
    }

    /// IDM equilibrium speed (m/s) at bumper-to-bumper gap `s` (m): the root of
    /// 1 − (v/v₀)^δ − (s*(v)/s)² = 0, by bisection.
    fn equilibrium_speed(p: &DriverParams, v0: f64, s: f64) -> f64 {
        let (mut lo, mut hi) = (0.0, v0);
        for _ in 0..200 {
            let v = 0.5 * (lo + hi);
            if p.accel(v, v0, Some((s, v))) > 0.0 {
                lo = v;
            } else {
                hi = v;
            }
        }
        0.5 * (lo + hi)
    }

    #[test]
    fn a_single_lane_ring_follows_the_idm_fundamental_diagram() {
        // 2 km ring of 20 links; vehicles enter standing and settle; the flow past a point over 20 minutes
        // after 30 minutes of settling is compared with the equilibrium flow q = v_e(s) / spacing.
        let links = 20;
        let g = Arc::new(ring(links, 100.0, 50.0 / 3.6));
        let circumference: f64 = g.links().iter().map(|l| l.length_m as f64).sum();
        let p = DriverParams::CAR;
        let junctions = Junctions::generate(&g, &SignalParams::default());
        for vehicles in [25usize, 50, 80, 130, 200] {
            let laps = 60;
            let trips: Vec<Trip> = (0..vehicles)
                .map(|k| {
                    let start = (k * links / vehicles) as u32;
                    let route = (0..laps * links).map(|j| LinkId(((start as usize + j) % links) as u32)).collect();
                    Trip { id: k as u64, depart_s: 0.0, route, class: 0 }
                })
                .collect();
            let mut t =
                Traffic::new(g.clone(), junctions.clone(), vec![p], MicroParams::default(), trips, 0.0).unwrap();
            t.run_until(1800.0);
            assert_eq!(t.on_network(), vehicles, "all entered");
            let before = t.link_entries()[0];
            t.run_until(3000.0);
            let flow = (t.link_entries()[0] - before) as f64 / 1200.0;
            let spacing = circumference / vehicles as f64;
            let v_e = equilibrium_speed(&p, 50.0 / 3.6, spacing - p.length_m);
            let q_e = v_e / spacing;
            eprintln!("{vehicles} vehicles: flow {:.0} veh/h, equilibrium {:.0} veh/h", flow * 3600.0, q_e * 3600.0);
            assert!((flow - q_e).abs() <= 0.02 * q_e, "{vehicles} vehicles: {flow} vs {q_e}");
            t.assert_no_overlap();
        }
    }

    /// A straight road: a 1 km link into a signal, then 300 m on.
    fn signalised_approach(green_s: f64, red_s: f64) -> (Arc<Graph>, Junctions) {
        let mut b = GraphBuilder::new();
        let n: Vec<NodeId> = [(-1000.0, false), (0.0, true), (300.0, false)]
            .iter()
            .enumerate()
            .map(|(k, &(x, s))| b.node(k as i64, Vec2::new(x, 0.0), s))
            .collect();
        b.straight(n[0], n[1], 50.0 / 3.6, 1, WayClass::Secondary);
        b.straight(n[1], n[2], 50.0 / 3.6, 1, WayClass::Secondary);
        let g = b.build();
        let plan = SignalPlan {
            offset_s: 0.0,
            phases: vec![
                Phase { duration_s: red_s, lights: vec![Light::Red] },
                Phase { duration_s: green_s, lights: vec![Light::Green] },
            ],
        };
        let j = Junctions {
            control: vec![Control::Signal { controller: 0, index: 0 }, Control::Free],
            movement_signals: Vec::new(),
            turn_speeds: Vec::new(),
            majors: vec![Vec::new(); 3],
            plans: vec![plan],
            critical_gap_s: SignalParams::default().critical_gap_s,
            ..Junctions::default()
        };
        (Arc::new(g), j)
    }

    #[test]
    fn a_bus_stands_at_its_stop_for_its_dwell_and_its_timetable() {
        let mut b = GraphBuilder::new();
        let n: Vec<NodeId> = (0..4).map(|k| b.node(k, Vec2::new(k as f32 * 400.0, 0.0), false)).collect();
        for k in 0..3 {
            b.straight(n[k], n[k + 1], 50.0 / 3.6, 1, WayClass::Secondary);
        }
        let g = Arc::new(b.build());
        let junctions = Junctions::from_control(&g, &Default::default(), &SignalParams::default());
        let classes = vec![DriverParams::CAR, DriverParams::BUS];
        let mut t = Traffic::new(g, junctions, classes, MicroParams::default(), Vec::new(), 0.0).unwrap();
        let route = vec![LinkId(0), LinkId(1), LinkId(2)];
        let stops = vec![
            StopHold { link: LinkId(0), dwell_s: 25.0, not_before_s: 0.0 },
            StopHold { link: LinkId(1), dwell_s: 10.0, not_before_s: 150.0 },
            StopHold { link: LinkId(2), dwell_s: 10.0, not_before_s: 0.0 },
        ];
        t.add_trip_with_stops(Trip { id: 9, depart_s: 0.0, route: route.clone(), class: 1 }, stops).unwrap();
        // A car behind it on the one lane waits behind it at the stop.
        t.add_trip(Trip { id: 10, depart_s: 5.0, route, class: 0 }).unwrap();
        t.run_until(600.0);
        let e = t.stop_events().to_vec();
        assert_eq!(e.iter().map(|x| (x.trip_id, x.stop)).collect::<Vec<_>>(), vec![(9, 0), (9, 1), (9, 2)]);
        // 400 m at 13.9 m/s from a standing start (about 29 s + accelerating and braking).
        assert!(e[0].arrive_s > 29.0 && e[0].arrive_s < 60.0, "{e:?}");
        assert!(e[0].depart_s >= e[0].arrive_s + 25.0 - 1e-9 && e[0].depart_s < e[0].arrive_s + 30.0, "{e:?}");
        assert!(e[1].depart_s >= 150.0 - 1e-9 && e[1].depart_s < 155.0, "held to 150 s: {e:?}");
        assert_eq!(e[2].arrive_s, e[2].depart_s);
        let bus = t.finished().iter().find(|r| r.id == 9).unwrap();
        let car = t.finished().iter().find(|r| r.id == 10).unwrap();
        assert!(!bus.teleported && !car.teleported);
        assert!(car.arrive_s > bus.arrive_s, "the car cannot pass on one lane");
        assert!((bus.arrive_s - e[2].arrive_s).abs() < 1e-9);
    }

    #[test]
    fn a_signalised_approach_discharges_at_the_saturation_flow() {
        let (g, j) = signalised_approach(60.0, 150.0);
        let trips: Vec<Trip> =
            (0..120).map(|k| Trip { id: k, depart_s: k as f64, route: vec![LinkId(0), LinkId(1)], class: 0 }).collect();
        let mut t = Traffic::new(g, j, vec![DriverParams::CAR], MicroParams::default(), trips, 0.0).unwrap();
        // Red for 150 s: a queue builds; then green: record the times vehicles cross the stop line (to the
        // step: ±0.5 s on 20 headways).
        let mut crossings = Vec::new();
        let mut last = 0;
        while t.now_s() < 210.0 {
            t.step();
            let e = t.link_entries()[1];
            for _ in last..e {
                crossings.push(t.now_s());
            }
            last = e;
            t.assert_no_overlap();
        }
        assert!(crossings.iter().all(|&c| c > 150.0), "nobody crosses at red");
        assert!(crossings.len() >= 26, "queue discharged: {} at {:?}", crossings.len(), crossings);
        let headway = (crossings[25] - crossings[5]) / 20.0;
        let flow = 3600.0 / headway;
        eprintln!("discharge {flow:.0} veh/h/lane of green; first after {:.1} s", crossings[0] - 150.0);
        assert!((1800.0..=2000.0).contains(&flow), "{flow}");
    }

    #[test]
    fn a_signalised_grid_is_deterministic_at_any_split_and_never_overlaps() {
        let g = Arc::new(Graph::grid(5, 200.0, 2, 50.0 / 3.6));
        let j = Junctions::generate(&g, &SignalParams::default());
        assert_eq!(j.signal_count(), 21, "every junction of 3 or 4 streets");
        let trips = random_trips(&g, 600, 1200.0, 7);
        let run = |chunks: usize| {
            let mut t =
                Traffic::new(g.clone(), j.clone(), vec![DriverParams::CAR], MicroParams::default(), trips.clone(), 0.0)
                    .unwrap();
            t.set_parallel_chunks(chunks);
            while t.now_s() < 3600.0 && !t.is_done() {
                t.step();
                t.assert_no_overlap();
            }
            t
        };
        let one = run(1);
        let many = run(7);
        assert_eq!(one.finished(), many.finished());
        assert_eq!(one.stats(), many.stats());
        assert!(one.is_done(), "all 600 trips arrive within the hour");
        assert_eq!(one.stats().teleports, 0);
        assert!(one.stats().lane_changes > 0, "two-lane streets see lane changes");
        for r in one.finished() {
            assert!(r.arrive_s - r.inserted_s >= r.free_flow_s * 0.999, "{r:?}");
        }
        let mean_delay: f64 = one.finished().iter().map(|r| r.arrive_s - r.depart_s - r.free_flow_s).sum::<f64>()
            / one.finished().len() as f64;
        eprintln!("mean delay {mean_delay:.1} s, clamps {}", one.stats().clamps);
        assert!(mean_delay > 5.0 && mean_delay < 120.0, "signals cost some time: {mean_delay}");
    }

    #[test]
    fn minor_approaches_yield_to_the_major_road() {
        let g = Arc::new(crate::mobility::junctions::tests::cross(300.0, false));
        let j = Junctions::generate(&g, &SignalParams::default());
        let by_ends = |from: i64, to: i64| link_between(&g, from, to);
        // A major stream west → east every 4 s, a minor stream south → north every 10 s.
        let mut trips = Vec::new();
        for k in 0..150 {
            trips.push(Trip { id: k, depart_s: k as f64 * 4.0, route: vec![by_ends(1, 0), by_ends(0, 2)], class: 0 });
        }
        for k in 0..60 {
            trips.push(Trip {
                id: 1000 + k,
                depart_s: k as f64 * 10.0,
                route: vec![by_ends(3, 0), by_ends(0, 4)],
                class: 0,
            });
        }
        let mut t = Traffic::new(g, j, vec![DriverParams::CAR], MicroParams::default(), trips, 0.0).unwrap();
        while !t.is_done() && t.now_s() < 3600.0 {
            t.step();
            t.assert_no_overlap();
        }
        assert!(t.is_done());
        let delay = |major: bool| {
            let rs: Vec<&TripResult> = t.finished().iter().filter(|r| (r.id < 1000) == major).collect();
            rs.iter().map(|r| r.arrive_s - r.depart_s - r.free_flow_s).sum::<f64>() / rs.len() as f64
        };
        let (major, minor) = (delay(true), delay(false));
        eprintln!("mean delay major {major:.1} s, minor {minor:.1} s");
        assert!(major < 15.0 && minor > major + 5.0, "major {major}, minor {minor}");
    }

    #[test]
    fn a_left_turn_at_a_green_light_waits_for_a_gap_in_the_oncoming_traffic() {
        // The signalised cross: west and east approaches share a green. Cars from the west turn left
        // (north) every 20 s; from the east, a dense stream drives straight on (west) every 2.5 s, or none.
        let g = Arc::new(crate::mobility::junctions::tests::cross(300.0, true));
        let by_ends = |from: i64, to: i64| link_between(&g, from, to);
        let left_turn_delay = |oncoming: bool, drive_on_left: bool| {
            let params = SignalParams { drive_on_left, ..SignalParams::default() };
            let j = Junctions::generate(&g, &params);
            assert_eq!(j.crosses_oncoming(&g, by_ends(1, 0), &[by_ends(0, 4)]).is_some(), !drive_on_left);
            let mut trips: Vec<Trip> = (0..15)
                .map(|k| Trip { id: k, depart_s: k as f64 * 20.0, route: vec![by_ends(1, 0), by_ends(0, 4)], class: 0 })
                .collect();
            if oncoming {
                trips.extend((0..120).map(|k| Trip {
                    id: 1000 + k,
                    depart_s: k as f64 * 2.5,
                    route: vec![by_ends(2, 0), by_ends(0, 1)],
                    class: 0,
                }));
            }
            let mut t =
                Traffic::new(g.clone(), j, vec![DriverParams::CAR], MicroParams::default(), trips, 0.0).unwrap();
            while !t.is_done() && t.now_s() < 3600.0 {
                t.step();
                t.assert_no_overlap();
            }
            assert!(t.is_done());
            let turning: Vec<&TripResult> = t.finished().iter().filter(|r| r.id < 1000).collect();
            let delay =
                turning.iter().map(|r| r.arrive_s - r.depart_s - r.free_flow_s).sum::<f64>() / turning.len() as f64;
            // Turners through while the stream still flows (its last car passes the junction after 300 s).
            (delay, turning.iter().filter(|r| r.arrive_s < 300.0).count())
        };
        let ((free, _), (blocked, through)) = (left_turn_delay(false, false), left_turn_delay(true, false));
        // Where traffic keeps left, the same turn does not cross the oncoming stream.
        let (left_hand, _) = left_turn_delay(true, true);
        eprintln!(
            "mean left-turn delay: {free:.1} s alone, {blocked:.1} s against the stream ({through} through while \
             it flows), {left_hand:.1} s keeping left"
        );
        assert!(blocked > free + 30.0, "alone {free}, against the stream {blocked}");
        // The stream has no 4.1 s gap: only a few turners get through while it flows (at a green's start,
        // before the oncoming queue is moving, or at its end).
        assert!(through < 8, "{through} turners through during the stream");
        assert!((left_hand - free).abs() < 10.0, "alone {free}, keeping left {left_hand}");
    }

    #[test]
    fn closing_a_link_reroutes_and_nothing_enters_it() {
        let g = Arc::new(Graph::grid(4, 200.0, 1, 50.0 / 3.6));
        let j = Junctions::generate(&g, &SignalParams::default());
        // Trips from the south-west to the north-east corner; the direct streets get closed at 120 s.
        let mut router = Router::new(&g);
        let route = router.route(NodeId(0), NodeId(15), Weight::TravelTime).unwrap().links;
        let trips: Vec<Trip> =
            (0..80).map(|k| Trip { id: k, depart_s: k as f64 * 5.0, route: route.clone(), class: 0 }).collect();
        let mut t = Traffic::new(g.clone(), j, vec![DriverParams::CAR], MicroParams::default(), trips, 0.0).unwrap();
        t.run_until(120.0);
        let closed = route[2];
        t.set_closed(closed, true);
        let entered = t.link_entries()[closed.0 as usize];
        while !t.is_done() && t.now_s() < 3600.0 {
            t.step();
            t.assert_no_overlap();
        }
        assert!(t.is_done(), "everyone arrives by another way");
        assert_eq!(t.link_entries()[closed.0 as usize], entered, "nobody enters the closed link");
        assert!(t.stats().reroutes > 0);
        assert_eq!(t.finished().iter().map(|r| r.reroutes as u64).sum::<u64>(), t.stats().reroutes);
    }

    #[test]
    fn a_vehicle_with_no_way_on_is_teleported_and_counted() {
        // One street of two links; the second closes and there is no other way.
        let (g, mut j) = signalised_approach(60.0, 0.0);
        j.control[0] = Control::Free;
        let trips = vec![Trip { id: 1, depart_s: 0.0, route: vec![LinkId(0), LinkId(1)], class: 0 }];
        let mut t = Traffic::new(g, j, vec![DriverParams::CAR], MicroParams::default(), trips, 0.0).unwrap();
        t.set_closed(LinkId(1), true);
        t.run_until(1200.0);
        assert!(t.is_done());
        assert_eq!(t.stats().teleports, 1);
        let r = t.finished()[0];
        assert!(r.teleported);
        // It waited at the stop line for the teleport time before going.
        assert!(r.arrive_s > 300.0, "{r:?}");
    }

    #[test]
    fn bad_trips_are_refused_with_their_id() {
        let (g, j) = signalised_approach(60.0, 30.0);
        let bad = vec![Trip { id: 42, depart_s: 0.0, route: vec![LinkId(1), LinkId(0)], class: 0 }];
        let err = Traffic::new(g.clone(), j.clone(), vec![DriverParams::CAR], MicroParams::default(), bad, 0.0)
            .err()
            .unwrap();
        assert!(err.contains("trip 42"), "{err}");
        let class = vec![Trip { id: 7, depart_s: 0.0, route: vec![LinkId(0)], class: 3 }];
        assert!(Traffic::new(g, j, vec![DriverParams::CAR], MicroParams::default(), class, 0.0).is_err());
    }
}
