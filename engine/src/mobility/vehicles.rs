//! What the mobility domain asks of a vehicle model, whichever it is: trips in, results and positions out,
//! links opened and closed. The microscopic model ([`super::micro`]) and the queue model ([`super::meso`])
//! both implement [`VehicleModel`], so the domain ([`super::traffic`]), the replay and the KPIs do not
//! depend on which one a scenario runs (the re-routing rules they share are in [`super::rerouting`]). Also
//! here: the stops buses make ([`StopPlan`]), what the models record ([`VehicleLedger`]) and
//! random demand for tests and benchmarks ([`random_trips`]).

use super::rerouting::ReroutingParams;
use crate::city::graph::{Graph, LinkId, NodeId};
use crate::city::routing::{Router, Weight};

/// Two clock times closer than this (s) are the same instant (steps are whole milliseconds).
pub const TIME_TOLERANCE_S: f64 = 1e-9;

/// A trip to drive: a route of consecutive links, from the start of the first to the end of the last.
#[derive(Clone, Debug, PartialEq)]
pub struct Trip {
    /// The caller's identifier, returned in the result.
    pub id: u64,
    /// Desired departure (s, simulation clock).
    pub depart_s: f64,
    /// Links in order; each starts where the previous ends.
    pub route: Vec<LinkId>,
    /// Index into the vehicle classes.
    pub class: u8,
}

/// A stop a vehicle makes on its trip (a bus at a bus stop): at the end of one of its route's links it
/// stands at least `dwell_s` and does not leave before `not_before_s` (a timetable's departure).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StopHold {
    /// The route link at whose end it stops (it matches the link, so re-routing keeps the stop where the
    /// new route still passes it).
    pub link: LinkId,
    /// Least time standing (s).
    pub dwell_s: f64,
    /// Earliest departure (s, simulation clock).
    pub not_before_s: f64,
}

/// A stop as it was made.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StopEvent {
    /// The trip's identifier.
    pub trip_id: u64,
    /// Index of the stop in the trip's stops as given.
    pub stop: u32,
    /// When the vehicle reached the stop (s).
    pub arrive_s: f64,
    /// When it left (s).
    pub depart_s: f64,
}

/// Checks a trip's stops: each at a link of the route, in route order, with a finite dwell of at least 0.
pub fn check_stops(t: &Trip, stops: &[StopHold]) -> Result<(), String> {
    let mut at = 0usize;
    for (k, s) in stops.iter().enumerate() {
        if !(s.dwell_s >= 0.0 && s.dwell_s.is_finite()) || s.not_before_s.is_nan() {
            return Err(format!(
                "trip {}: stop {k} has dwell {} s, earliest departure {} s",
                t.id, s.dwell_s, s.not_before_s
            ));
        }
        match t.route[at..].iter().position(|&l| l == s.link) {
            Some(p) => at += p + 1,
            None => {
                return Err(format!("trip {}: stop {k} is at link {}, not on the rest of its route", t.id, s.link.0))
            }
        }
    }
    Ok(())
}

/// A vehicle's stops and how far through them it is, kept the same way by every model.
#[derive(Clone, Debug, Default)]
pub struct StopPlan {
    stops: Vec<StopHold>,
    /// Route index of each stop's link (`None`: the route no longer passes it).
    at: Vec<Option<u32>>,
    /// The next stop to make.
    next: u32,
}

impl StopPlan {
    /// The plan of `stops` on `route` (checked with [`check_stops`]).
    pub fn new(route: &[LinkId], stops: Vec<StopHold>) -> StopPlan {
        StopPlan { at: stop_positions(route, &stops, 0), stops, next: 0 }
    }

    /// Whether the vehicle has no stops at all.
    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
    }

    /// Passes over the next stops while the route no longer passes them; returns how many.
    pub fn skip_dropped(&mut self) -> u64 {
        let mut skipped = 0;
        while self.at.get(self.next as usize).is_some_and(|p| p.is_none()) {
            self.next += 1;
            skipped += 1;
        }
        skipped
    }

    /// The next stop, if it is at the end of route index `route_pos`.
    pub fn due_at(&self, route_pos: usize) -> Option<StopHold> {
        let k = self.next as usize;
        (self.at.get(k).copied().flatten() == Some(route_pos as u32)).then(|| self.stops[k])
    }

    /// Marks the next stop made; returns its index among the stops as given.
    pub fn made(&mut self) -> u32 {
        self.next += 1;
        self.next - 1
    }

    /// After a re-routing that kept the route's first `keep` links: where the stops not yet made fall now.
    pub fn realign(&mut self, route: &[LinkId], keep: usize) {
        if self.stops.is_empty() {
            return;
        }
        let next = self.next as usize;
        let positions = stop_positions(route, &self.stops[next..], keep.saturating_sub(1));
        self.at.truncate(next);
        self.at.extend(positions);
    }
}

/// Where each stop falls on a route: the route index of its link, each after the one before, from route
/// index `from`. Stops whose link the route no longer passes get `None` (they are skipped).
fn stop_positions(route: &[LinkId], stops: &[StopHold], from: usize) -> Vec<Option<u32>> {
    let mut at = from;
    stops
        .iter()
        .map(|s| {
            let p = route.get(at..)?.iter().position(|&l| l == s.link)? + at;
            at = p + 1;
            Some(p as u32)
        })
        .collect()
}

/// What became of a trip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripResult {
    /// The trip's identifier.
    pub id: u64,
    /// Desired departure (s).
    pub depart_s: f64,
    /// When it entered the network (s); later than `depart_s` when its first lane was full.
    pub inserted_s: f64,
    /// Arrival at the end of its route (s).
    pub arrive_s: f64,
    /// Length of the route driven (m), after any re-routing.
    pub length_m: f64,
    /// Free-flow time of that route (s) at the vehicle's desired speeds.
    pub free_flow_s: f64,
    /// Whether it was teleported out of a jam.
    pub teleported: bool,
    /// How many times it was re-routed (around closed links or to a faster route).
    pub reroutes: u32,
}

impl TripResult {
    /// A trip that needs no driving (its ends join the road at the same node), finished at its departure.
    pub fn empty(id: u64, depart_s: f64) -> TripResult {
        TripResult {
            id,
            depart_s,
            inserted_s: depart_s,
            arrive_s: depart_s,
            length_m: 0.0,
            free_flow_s: 0.0,
            teleported: false,
            reroutes: 0,
        }
    }
}

/// Where a vehicle is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VehiclePosition {
    /// The vehicle's index (stable over the run; trips in the order given, then as added).
    pub vehicle: u32,
    /// Its link.
    pub link: LinkId,
    /// Its lane within the link (0 rightmost).
    pub lane: u8,
    /// Front bumper from the link's start (m).
    pub pos_m: f64,
    /// Speed (m/s).
    pub speed_mps: f64,
    /// Time standing without interruption (s).
    pub standing_s: f64,
    /// Its vehicle class (index into the model's classes).
    pub class: u8,
}

/// Counters of the run so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VehicleStats {
    /// Vehicle updates: one per vehicle per step in the microscopic model, one per link a vehicle leaves in
    /// the queue model (which moves vehicles only at link ends).
    pub vehicle_updates: u64,
    /// Lane changes made.
    pub lane_changes: u64,
    /// Vehicles teleported out of jams.
    pub teleports: u64,
    /// Times the no-overlap clamp had to act (the discrete step would have let a vehicle touch the one ahead).
    pub clamps: u64,
    /// Vehicles that were on a link when it closed.
    pub caught_on_closed_links: u64,
    /// Re-routings around closed links.
    pub reroutes: u64,
    /// Re-routings to a faster route on the measured travel times (`[mobility.rerouting]`).
    pub reroutes_for_travel_time: u64,
    /// Stops not made because a re-routed vehicle no longer passed them.
    pub stops_skipped: u64,
}

/// What a vehicle model records as it runs, kept the same way by every model.
#[derive(Clone, Debug, Default)]
pub struct VehicleLedger {
    /// Finished trips, in the order they finished.
    pub finished: Vec<TripResult>,
    /// Counters so far.
    pub stats: VehicleStats,
    /// Vehicles that entered each link so far (indexed by link).
    pub entries: Vec<u32>,
    /// Stops made (buses), in the order they were left.
    pub stop_events: Vec<StopEvent>,
}

/// A vehicle model: the state of every vehicle trip on the road graph, advanced one step at a time.
pub trait VehicleModel: Send + Sync {
    /// Sets the clock's start (s); only before the first step.
    fn set_start(&mut self, start_s: f64);
    /// Adds a trip that stops on its way (a bus), refusing it as [`VehicleModel::add_trip`] does or when
    /// its stops are not on its route in order.
    fn add_trip_with_stops(&mut self, trip: Trip, stops: Vec<StopHold>) -> Result<(), String>;
    /// Adds a trip while running; it departs at its time (or at the next step if that has passed).
    fn add_trip(&mut self, trip: Trip) -> Result<(), String> {
        self.add_trip_with_stops(trip, Vec::new())
    }
    /// What the model has recorded.
    fn ledger(&self) -> &VehicleLedger;
    /// What the model has recorded, to add to.
    fn ledger_mut(&mut self) -> &mut VehicleLedger;
    /// The stops made so far, in the order they were left.
    fn stop_events(&self) -> &[StopEvent] {
        &self.ledger().stop_events
    }
    /// Records a trip that needs no driving (its ends join the road at the same node) as finished at its
    /// departure.
    fn record_empty_trip(&mut self, id: u64, depart_s: f64) {
        self.ledger_mut().finished.push(TripResult::empty(id, depart_s));
    }
    /// Clock time (s).
    fn now_s(&self) -> f64;
    /// The network.
    fn graph(&self) -> &Graph;
    /// Finished trips, in the order they finished.
    fn finished(&self) -> &[TripResult] {
        &self.ledger().finished
    }
    /// Counters so far.
    fn stats(&self) -> VehicleStats {
        self.ledger().stats
    }
    /// Vehicles that entered each link so far (indexed by link).
    fn link_entries(&self) -> &[u32] {
        &self.ledger().entries
    }
    /// Vehicles on the network now.
    fn on_network(&self) -> usize;
    /// Vehicles due to depart but waiting for room on their first link.
    fn waiting_to_enter(&self) -> usize;
    /// Trips whose departure time has not come.
    fn not_yet_departed(&self) -> usize;
    /// Whether every trip has finished.
    fn is_done(&self) -> bool;
    /// Every vehicle on the network.
    fn positions(&self) -> Box<dyn Iterator<Item = VehiclePosition> + '_>;
    /// Opens or closes a link. Closing makes vehicles whose remaining route uses it re-route at the next
    /// step; no vehicle enters a closed link.
    fn set_closed(&mut self, link: LinkId, closed: bool);
    /// Whether a link is closed.
    fn is_closed(&self, link: LinkId) -> bool;
    /// Lets vehicles re-plan their routes on the travel times they meet ([`super::rerouting`]): at
    /// departure and every period; only before the first step.
    fn enable_rerouting(&mut self, params: ReroutingParams);
    /// Advances one step.
    fn step(&mut self);
    /// Runs until `until_s` (clock) or until every trip has finished.
    fn run_until(&mut self, until_s: f64) {
        while self.now_s() + TIME_TOLERANCE_S < until_s && !self.is_done() {
            self.step();
        }
    }
}

/// `count` trips between uniformly drawn nodes of `graph`, departing uniformly over `0..horizon_s`, each on
/// its fastest free-flow route (pairs without a route are drawn again), sorted by departure — the demand
/// SUMO's `randomTrips.py` makes, for tests and benchmarks. Deterministic for a seed.
pub fn random_trips(graph: &Graph, count: usize, horizon_s: f64, seed: u64) -> Vec<Trip> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut router = Router::new(graph);
    let nodes = graph.nodes().len() as u32;
    let mut trips = Vec::with_capacity(count);
    while trips.len() < count && nodes > 1 {
        let (a, b) = (rng.random_range(0..nodes), rng.random_range(0..nodes));
        let depart_s = rng.random_range(0.0..horizon_s);
        if let Some(r) = router.route(NodeId(a), NodeId(b), Weight::TravelTime).filter(|r| !r.links.is_empty()) {
            trips.push(Trip { id: trips.len() as u64, depart_s, route: r.links, class: 0 });
        }
    }
    trips.sort_by(|a, b| a.depart_s.total_cmp(&b.depart_s).then(a.id.cmp(&b.id)));
    trips
}

/// Checks a trip against the network and the number of vehicle classes.
pub fn check_trip(graph: &Graph, classes: usize, t: &Trip) -> Result<(), String> {
    let links = graph.links();
    if t.class as usize >= classes {
        return Err(format!("trip {}: vehicle class {} does not exist", t.id, t.class));
    }
    if t.route.is_empty() {
        return Err(format!("trip {}: empty route", t.id));
    }
    if let Some(l) = t.route.iter().find(|l| l.0 as usize >= links.len()) {
        return Err(format!("trip {}: link {} does not exist", t.id, l.0));
    }
    for w in t.route.windows(2) {
        if links[w[0].0 as usize].to != links[w[1].0 as usize].from {
            return Err(format!("trip {}: links {} and {} do not connect", t.id, w[0].0, w[1].0));
        }
    }
    if !t.depart_s.is_finite() {
        return Err(format!("trip {}: departure {} s", t.id, t.depart_s));
    }
    Ok(())
}
