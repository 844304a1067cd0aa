//! Passengers on the scheduled buses: persons without a car who ride the day's bus runs
//! ([`super::transit::BusService`]) where a bus serves their trip, walking to and from the stops.
//!
//! - **Who rides.** A share of persons has no car (`no_car_share`, drawn per person from the seed); their
//!   trips too long to walk (the population's mode choice) go by bus when a bus gets them there sooner than
//!   walking, and on foot otherwise. Car owners drive: a captive-rider model, without a mode choice between
//!   car and bus.
//! - **Journey planning** at departure, on the timetable: walk in a straight line times `walk_circuity` to a
//!   stop within `max_access_m` of the origin, take the first run that leaves it at or after the walker
//!   reaches it and calls later at a stop within `max_access_m` of the destination, ride, walk on. Every
//!   such pair of stops of every line is tried; the earliest scheduled arrival at the door wins. Direct
//!   journeys only (no transfers).
//! - **Boarding**, at the stops the buses make in the vehicle model ([`super::vehicles::StopEvent`]): those
//!   aboard for this stop get off; then those waiting here board, first come first served, any bus that
//!   goes on to their stop — whichever line, the "common lines" rule (Chriqui & Robillard 1975, "Common bus
//!   lines", Transportation Science 9(2)) — while it has room (`bus_capacity`). A passenger left behind by a
//!   full bus is counted and waits for the next. A passenger still waiting `patience_s` after the bus they
//!   planned for was due walks on from the stop (decided once no bus stands at the stop, since a stop is
//!   reported when the bus leaves; such a trip counts as walked); one still aboard when the bus ends its run
//!   (its stop was skipped, or the bus was teleported) gets off there and walks on. Both are counted.
//! - **Where a stop is**: where the buses stop in the vehicle model, the end of the stop's road link; walks
//!   are measured from there, and lines share a stop when they stop on the same link.
//!
//! Everything happens in the order of the vehicle model's stop events and of person ids, so the result
//! does not depend on the thread count.

use super::teleport::{LegStart, Mode};
use super::transit::{BusService, TransitParams};
use super::vehicles::StopEvent;
use crate::city::graph::{Graph, LinkId};
use glam::Vec2;
use std::collections::HashMap;

/// A journey by bus as planned at departure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Journey {
    /// Where the passenger boards (stop index).
    pub board: u32,
    /// Where they get off (stop index).
    pub alight: u32,
    /// When they reach the boarding stop (s, simulation clock).
    pub at_stop_s: f64,
    /// Scheduled departure from the boarding stop of the run they plan for (s).
    pub due_s: f64,
    /// Scheduled door-to-door arrival (s).
    pub expected_arrive_s: f64,
    /// Walk to the boarding stop (m).
    pub access_m: f32,
    /// Walk from the alighting stop (m).
    pub egress_m: f32,
    /// Distance ridden, as scheduled (m).
    pub ride_m: f32,
}

/// Where a passenger is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Where {
    /// Walking to, or standing at, the boarding stop.
    Waiting,
    /// On a bus, boarded at this distance along its route (m).
    Aboard { at_m: f32 },
    /// Arrived (or walked on).
    Done,
}

/// A passenger's trip.
#[derive(Clone, Copy, Debug)]
struct Rider {
    person: u32,
    journey: Journey,
    destination: Vec2,
    at: Where,
}

/// A person's trip by bus that has ended (at the door).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RiderArrival {
    /// The person's id.
    pub person: u32,
    /// Arrival at the door (s, simulation clock).
    pub arrive_s: f64,
    /// Door-to-door length (m): the walks and the distance ridden.
    pub length_m: f32,
    /// How the trip was made in the end: by bus, or on foot by a passenger who gave up waiting.
    pub mode: Mode,
}

/// Counters of the passengers' day.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RiderStats {
    /// Trips that set off by bus.
    pub journeys: u64,
    /// Passengers who boarded.
    pub boardings: u64,
    /// Sum of waits at the stop, from reaching it to boarding (s).
    pub wait_s: f64,
    /// Times a waiting passenger was left behind by a full bus.
    pub left_behind: u64,
    /// Passengers who gave up waiting and walked on.
    pub gave_up: u64,
    /// Passengers still aboard when their bus ended its run.
    pub overcarried: u64,
    /// Passenger-km ridden.
    pub passenger_km: f64,
    /// Trips of persons without a car made on foot: no bus served them sooner than walking.
    pub walked_instead: u64,
}

/// One line's runs that call at the same stops in the same order.
#[derive(Clone, Debug)]
struct Pattern {
    /// Stops in call order.
    stops: Vec<u32>,
    /// Its runs, by scheduled departure from the first stop.
    runs: Vec<u32>,
}

/// The bus stops, the runs' calls and the passengers.
#[derive(Clone, Debug)]
pub struct Riders {
    params: TransitParams,
    walk_speed_mps: f32,
    /// Position of each stop (the end of its road link, m).
    stops: Vec<Vec2>,
    /// The stop at the end of each road link that has one.
    stop_of_link: HashMap<LinkId, u32>,
    /// Per run: the stop of each of its calls, the distance along its route there (m) and the scheduled
    /// departure (s).
    run_stops: Vec<Vec<u32>>,
    run_at_m: Vec<Vec<f32>>,
    run_scheduled_s: Vec<Vec<f64>>,
    patterns: Vec<Pattern>,
    /// Per stop: (pattern, call index) of every call of every pattern there.
    calls_at: Vec<Vec<(u32, u32)>>,
    riders: Vec<Rider>,
    /// Per stop: riders waiting (indices, in the order they came).
    waiting: Vec<Vec<u32>>,
    /// Per run: riders aboard.
    aboard: Vec<Vec<u32>>,
    arrivals: Vec<RiderArrival>,
    /// The day's counters so far.
    pub stats: RiderStats,
}

impl Riders {
    /// The stops and calls of `service`'s runs on `roads`. A stop is the end of a road link where some run
    /// stops.
    pub fn new(service: &BusService, roads: &Graph, params: &TransitParams, walk_speed_mps: f32) -> Riders {
        let mut stop_of: HashMap<LinkId, u32> = HashMap::new();
        let mut stops: Vec<Vec2> = Vec::new();
        let mut run_stops = Vec::with_capacity(service.runs.len());
        let mut run_at_m = Vec::with_capacity(service.runs.len());
        for run in &service.runs {
            let mut calls = Vec::with_capacity(run.holds.len());
            let mut at_m = Vec::with_capacity(run.holds.len());
            let (mut k, mut along) = (0usize, 0.0f32);
            for hold in &run.holds {
                // The hold's link after the previous one's in the route (holds are in route order, each on
                // its own passage, as `check_stops` requires).
                while k < run.links.len() && run.links[k] != hold.link {
                    along += roads.link(run.links[k]).length_m;
                    k += 1;
                }
                let end = along + run.links.get(k).map_or(0.0, |&l| roads.link(l).length_m);
                (along, k) = (end, k + 1);
                let next = stop_of.len() as u32;
                let stop = *stop_of.entry(hold.link).or_insert_with(|| {
                    stops.push(roads.node(roads.link(hold.link).to).pos);
                    next
                });
                calls.push(stop);
                at_m.push(end);
            }
            run_stops.push(calls);
            run_at_m.push(at_m);
        }
        let mut pattern_of: HashMap<&[u32], u32> = HashMap::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        for (r, calls) in run_stops.iter().enumerate() {
            let next = patterns.len() as u32;
            let p = *pattern_of.entry(calls.as_slice()).or_insert_with(|| {
                patterns.push(Pattern { stops: calls.clone(), runs: Vec::new() });
                next
            });
            patterns[p as usize].runs.push(r as u32);
        }
        let run_scheduled_s: Vec<Vec<f64>> = service.runs.iter().map(|r| r.scheduled_depart_s.clone()).collect();
        for p in &mut patterns {
            p.runs.sort_by(|&a, &b| run_scheduled_s[a as usize][0].total_cmp(&run_scheduled_s[b as usize][0]));
        }
        let mut calls_at = vec![Vec::new(); stops.len()];
        for (p, pattern) in patterns.iter().enumerate() {
            for (i, &s) in pattern.stops.iter().enumerate() {
                calls_at[s as usize].push((p as u32, i as u32));
            }
        }
        Riders {
            stop_of_link: stop_of,
            params: params.clone(),
            walk_speed_mps,
            waiting: vec![Vec::new(); stops.len()],
            aboard: vec![Vec::new(); service.runs.len()],
            stops,
            run_stops,
            run_at_m,
            run_scheduled_s,
            patterns,
            calls_at,
            riders: Vec::new(),
            arrivals: Vec::new(),
            stats: RiderStats::default(),
        }
    }

    /// Number of stops.
    pub fn stop_count(&self) -> usize {
        self.stops.len()
    }

    /// Walking distance (m) between two points: the straight line times the circuity.
    fn walk_m(&self, a: Vec2, b: Vec2) -> f32 {
        a.distance(b) * self.params.walk_circuity
    }

    /// Stops within reach of a point on foot, with the walking distance (m).
    fn stops_near(&self, p: Vec2) -> Vec<(u32, f32)> {
        let reach = self.params.max_access_m;
        let mut near: Vec<(u32, f32)> = (0..self.stops.len() as u32)
            .filter_map(|s| {
                let d = self.stops[s as usize].distance(p);
                (d <= reach).then_some((s, d * self.params.walk_circuity))
            })
            .collect();
        near.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        near
    }

    /// The direct journey from `from` to `to` (m) setting off at `depart_s` that arrives first at the door
    /// by the timetable; `None` when no run serves the two.
    pub fn plan(&self, from: Vec2, to: Vec2, depart_s: f64) -> Option<Journey> {
        let speed = self.walk_speed_mps as f64;
        let origins = self.stops_near(from);
        let destinations = self.stops_near(to);
        if origins.is_empty() || destinations.is_empty() {
            return None;
        }
        let mut best: Option<Journey> = None;
        for &(o, access_m) in &origins {
            let at_stop_s = depart_s + access_m as f64 / speed;
            for &(p, i) in &self.calls_at[o as usize] {
                let pattern = &self.patterns[p as usize];
                let i = i as usize;
                // The first run of the line to leave this stop once the walker is there.
                let Some(&run) =
                    pattern.runs.iter().filter(|&&r| self.run_scheduled_s[r as usize][i] >= at_stop_s).min_by(
                        |&&a, &&b| self.run_scheduled_s[a as usize][i].total_cmp(&self.run_scheduled_s[b as usize][i]),
                    )
                else {
                    continue;
                };
                let (sched, at_m) = (&self.run_scheduled_s[run as usize], &self.run_at_m[run as usize]);
                for (j, &s) in pattern.stops.iter().enumerate().skip(i + 1) {
                    let Some(&(_, egress_m)) = destinations.iter().find(|d| d.0 == s) else { continue };
                    let arrive = sched[j] + egress_m as f64 / speed;
                    if best.is_none_or(|b| arrive < b.expected_arrive_s) {
                        best = Some(Journey {
                            board: o,
                            alight: s,
                            at_stop_s,
                            due_s: sched[i],
                            expected_arrive_s: arrive,
                            access_m,
                            egress_m,
                            ride_m: at_m[j] - at_m[i],
                        });
                    }
                }
            }
        }
        best
    }

    /// How person `person`, who has no car, makes a trip from `from` to `to` (m) setting off at `depart_s`
    /// (s) whose walking route is `walk_m` long (infinite: none; then the straight line times the
    /// circuity): by bus when the timetable gets them to the door sooner than walking (they set off on the
    /// journey), else on foot (counted).
    pub fn start_trip(&mut self, person: u32, from: Vec2, to: Vec2, depart_s: f64, walk_m: f32) -> LegStart {
        let walk_m = if walk_m.is_finite() { walk_m } else { self.walk_m(from, to) };
        let walk_s = walk_m as f64 / self.walk_speed_mps as f64;
        match self.plan(from, to, depart_s) {
            Some(j) if j.expected_arrive_s - depart_s < walk_s => {
                self.depart(person, j, to);
                LegStart::Carried { mode: Mode::Bus, length_m: j.access_m + j.ride_m + j.egress_m }
            }
            _ => {
                self.stats.walked_instead += 1;
                LegStart::Walked { time_ms: (walk_s * 1000.0).round() as u64, length_m: walk_m }
            }
        }
    }

    /// A person sets off on `journey` to the point `destination`.
    pub fn depart(&mut self, person: u32, journey: Journey, destination: Vec2) {
        let k = self.riders.len() as u32;
        self.riders.push(Rider { person, journey, destination, at: Where::Waiting });
        // In the order they reach the stop (then by person), for first come first served.
        let queue = &mut self.waiting[journey.board as usize];
        let riders = &self.riders;
        let key = |id: u32| {
            let r = &riders[id as usize];
            (r.journey.at_stop_s, r.person)
        };
        let me = key(k);
        let at = queue.partition_point(|&q| key(q) <= me);
        queue.insert(at, k);
        self.stats.journeys += 1;
    }

    /// Passengers get off and on at a stop a run made (`run`: its index in the service).
    pub fn on_stop(&mut self, run: u32, event: &StopEvent) {
        let r = run as usize;
        let call = event.stop as usize;
        let Some(&stop) = self.run_stops.get(r).and_then(|c| c.get(call)) else { return };
        let here_m = self.run_at_m[r][call];
        // Off first.
        let mut k = 0;
        while k < self.aboard[r].len() {
            let id = self.aboard[r][k];
            if self.riders[id as usize].journey.alight == stop {
                self.aboard[r].remove(k);
                let egress_m = self.riders[id as usize].journey.egress_m;
                self.alight(id, event.arrive_s, here_m, egress_m);
            } else {
                k += 1;
            }
        }
        // Then on, in the order they came, while there is room.
        let later = &self.run_stops[r][call + 1..];
        let mut k = 0;
        while k < self.waiting[stop as usize].len() {
            let id = self.waiting[stop as usize][k];
            let rider = &self.riders[id as usize];
            let goes_there = later.contains(&rider.journey.alight);
            let gave_up = self.gives_up_at(rider) < event.arrive_s;
            if !goes_there || gave_up || rider.journey.at_stop_s > event.depart_s {
                k += 1;
                continue;
            }
            if self.aboard[r].len() >= self.params.bus_capacity as usize {
                self.stats.left_behind += 1;
                k += 1;
                continue;
            }
            self.waiting[stop as usize].remove(k);
            let since_s = event.arrive_s.max(rider.journey.at_stop_s);
            self.stats.boardings += 1;
            self.stats.wait_s += since_s - rider.journey.at_stop_s;
            self.riders[id as usize].at = Where::Aboard { at_m: here_m };
            self.aboard[r].push(id);
        }
    }

    /// A run ended at clock time `arrive_s`: whoever is still aboard gets off at its last stop and walks on.
    pub fn on_run_end(&mut self, run: u32, arrive_s: f64) {
        let r = run as usize;
        let Some(&last) = self.run_stops.get(r).and_then(|c| c.last()) else { return };
        let end_m = *self.run_at_m[r].last().unwrap_or(&0.0);
        for id in std::mem::take(&mut self.aboard[r]) {
            let destination = self.riders[id as usize].destination;
            let walk = self.walk_m(self.stops[last as usize], destination);
            self.stats.overcarried += 1;
            self.alight(id, arrive_s, end_m, walk);
        }
    }

    /// When a waiting passenger gives up (s): `patience_s` after their bus was due.
    fn gives_up_at(&self, rider: &Rider) -> f64 {
        rider.journey.due_s.max(rider.journey.at_stop_s) + self.params.patience_s
    }

    /// The stop at the end of road link `link`, if buses stop there.
    pub fn stop_at(&self, link: LinkId) -> Option<u32> {
        self.stop_of_link.get(&link).copied()
    }

    /// Whether some passenger waits past their patience by clock time `now_s`.
    pub fn someone_gives_up_by(&self, now_s: f64) -> bool {
        self.waiting.iter().flatten().any(|&id| self.gives_up_at(&self.riders[id as usize]) <= now_s)
    }

    /// Passengers still waiting `patience_s` after their bus was due, by clock time `now_s`, walk on; except
    /// at the stops where `bus_standing(stop)`: a bus there may have come in time, and its stop is reported
    /// when it leaves.
    pub fn give_up_waiting(&mut self, now_s: f64, bus_standing: impl Fn(u32) -> bool) {
        for stop in 0..self.waiting.len() {
            if bus_standing(stop as u32) {
                continue;
            }
            let (gone, stay): (Vec<u32>, Vec<u32>) =
                self.waiting[stop].iter().partition(|&&id| self.gives_up_at(&self.riders[id as usize]) <= now_s);
            if gone.is_empty() {
                continue;
            }
            self.waiting[stop] = stay;
            for id in gone {
                let rider = self.riders[id as usize];
                let walk = self.walk_m(self.stops[stop], rider.destination);
                let left_s = self.gives_up_at(&rider);
                self.stats.gave_up += 1;
                self.riders[id as usize].at = Where::Done;
                self.arrivals.push(RiderArrival {
                    person: rider.person,
                    arrive_s: left_s + walk as f64 / self.walk_speed_mps as f64,
                    length_m: rider.journey.access_m + walk,
                    mode: Mode::Walk,
                });
            }
        }
    }

    /// A passenger gets off at clock time `at_s`, `here_m` along the route, and walks `walk_m` to the door.
    fn alight(&mut self, id: u32, at_s: f64, here_m: f32, walk_m: f32) {
        let rider = self.riders[id as usize];
        let Where::Aboard { at_m } = rider.at else { return };
        let ride_m = (here_m - at_m).max(0.0);
        self.stats.passenger_km += ride_m as f64 / 1000.0;
        self.riders[id as usize].at = Where::Done;
        self.arrivals.push(RiderArrival {
            person: rider.person,
            arrive_s: at_s + walk_m as f64 / self.walk_speed_mps as f64,
            length_m: rider.journey.access_m + ride_m + walk_m,
            mode: Mode::Bus,
        });
    }

    /// The trips that ended since the last call, by person id.
    pub fn take_arrivals(&mut self) -> Vec<RiderArrival> {
        let mut done = std::mem::take(&mut self.arrivals);
        done.sort_by(|a, b| a.person.cmp(&b.person).then(a.arrive_s.total_cmp(&b.arrive_s)));
        done
    }

    /// Passengers waiting at stops and aboard buses now.
    pub fn under_way(&self) -> (usize, usize) {
        (self.waiting.iter().map(Vec::len).sum(), self.aboard.iter().map(Vec::len).sum())
    }

    /// Passengers aboard run `run` now (never more than `bus_capacity`).
    pub fn load(&self, run: u32) -> usize {
        self.aboard.get(run as usize).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::graph::NodeId;
    use crate::mobility::transit::BusRun;
    use crate::mobility::vehicles::StopHold;

    /// Scheduled time from one stop to the next (s).
    const HOP_S: f64 = 60.0;
    /// Walking speed in these tests (m/s).
    const WALK: f32 = 1.0;

    /// A 5×5 grid with 200 m blocks; the links through nodes `nodes` (source ids) in order.
    fn links(g: &Graph, nodes: &[u32]) -> Vec<LinkId> {
        nodes
            .windows(2)
            .map(|w| *g.out_links(NodeId(w[0])).iter().find(|&&l| g.link(l).to == NodeId(w[1])).unwrap())
            .collect()
    }

    /// A run through `nodes`, stopping at the end of every link, leaving its first stop at `first_s`.
    fn run(g: &Graph, nodes: &[u32], first_s: f64) -> BusRun {
        let links = links(g, nodes);
        let holds =
            links.iter().map(|&link| StopHold { link, dwell_s: 20.0, not_before_s: f64::NEG_INFINITY }).collect();
        let scheduled_depart_s = (0..links.len()).map(|k| first_s + k as f64 * HOP_S).collect();
        BusRun { trip_id: format!("{first_s}"), route: "r".into(), links, depart_s: first_s, holds, scheduled_depart_s }
    }

    /// Line A along the bottom row (stops at nodes 1, 2, 3, 4), at 1000 s and 1600 s; line B from node 1
    /// to 3 (stops at 2 and 3) at 1300 s. Runs: 0 = A 1000, 1 = B 1300, 2 = A 1600.
    fn setup(capacity: u32) -> (Graph, Riders) {
        let g = Graph::grid(5, 200.0, 1, 10.0);
        let a = [0, 1, 2, 3, 4];
        let service = BusService {
            runs: vec![run(&g, &a, 1000.0), run(&g, &[1, 2, 3], 1300.0), run(&g, &a, 1600.0)],
            ..BusService::default()
        };
        let params = TransitParams { bus_capacity: capacity, ..TransitParams::default() };
        let riders = Riders::new(&service, &g, &params, WALK);
        (g, riders)
    }

    fn at(x: f32) -> Vec2 {
        Vec2::new(x, 10.0)
    }

    fn event(stop: u32, t: f64) -> StopEvent {
        StopEvent { trip_id: 0, stop, arrive_s: t, depart_s: t + 20.0 }
    }

    #[test]
    fn the_planner_takes_the_first_run_that_serves_both_ends_in_its_direction() {
        let (_, riders) = setup(70);
        assert_eq!(riders.stop_count(), 4, "stops at nodes 1 to 4");
        // From beside node 1 to beside node 4: 10 m off the road, 13 m on foot each end.
        let j = riders.plan(at(200.0), at(800.0), 900.0).expect("line A serves both");
        assert_eq!(j.due_s, 1000.0);
        assert!((j.at_stop_s - 913.0).abs() < 1e-3);
        assert!((j.expected_arrive_s - (1000.0 + 3.0 * HOP_S + 13.0)).abs() < 1e-3, "{j:?}");
        assert_eq!((j.ride_m, j.access_m.round(), j.egress_m.round()), (600.0, 13.0, 13.0));
        // Too late for the 1000 s run: line B from node 2 (1300 s) to node 3 and the last 200 m on foot
        // (1360 s + 260 s) beat waiting for line A's 1600 s run (1793 s at the door).
        let j = riders.plan(at(200.0), at(800.0), 990.0).unwrap();
        assert_eq!((j.due_s, j.board, j.alight), (1300.0, 1, 2), "{j:?}");
        assert!((j.expected_arrive_s - (1360.0 + 200.0f64.hypot(10.0) * 1.3)).abs() < 1e-3, "{j:?}");
        // After the last run, against the direction of the lines, or far from any stop: nothing.
        assert_eq!(riders.plan(at(200.0), at(800.0), 1700.0), None);
        assert_eq!(riders.plan(at(800.0), at(200.0), 900.0), None);
        assert_eq!(riders.plan(Vec2::new(200.0, 800.0), at(800.0), 900.0), None);
    }

    #[test]
    fn a_person_without_a_car_rides_when_the_bus_beats_walking_and_walks_otherwise() {
        let (_, mut riders) = setup(70);
        // By bus: at the door 293 s after setting off; walking 600 m straight times 1.3 takes 780 s.
        let by_bus = riders.start_trip(1, at(200.0), at(800.0), 900.0, f32::INFINITY);
        assert!(matches!(by_bus, LegStart::Carried { mode: Mode::Bus, .. }), "{by_bus:?}");
        assert_eq!(riders.under_way(), (1, 0));
        // A 250 m footpath route beats the bus.
        let walked = riders.start_trip(2, at(200.0), at(800.0), 900.0, 250.0);
        assert_eq!(walked, LegStart::Walked { time_ms: 250_000, length_m: 250.0 });
        // After the last run, on foot.
        assert!(matches!(riders.start_trip(3, at(200.0), at(800.0), 1700.0, 900.0), LegStart::Walked { .. }));
        assert_eq!((riders.stats.journeys, riders.stats.walked_instead), (1, 2));
    }

    #[test]
    fn passengers_board_any_line_to_their_stop_and_get_off_there() {
        let (_, mut riders) = setup(70);
        // Planned for line A's 1000 s run from node 2 (due 1060 s) to node 3.
        let j = riders.plan(at(400.0), at(600.0), 1000.0).unwrap();
        assert_eq!(j.due_s, 1060.0);
        riders.depart(7, j, at(600.0));
        // Line B comes first (it also goes to node 3): they take it. Its calls: 0 at node 2, 1 at node 3.
        riders.on_stop(1, &event(0, 1040.0));
        assert_eq!(riders.under_way(), (0, 1));
        assert_eq!(riders.load(1), 1);
        // Line A's run passing node 3 does not concern them.
        riders.on_stop(0, &event(2, 1125.0));
        assert!(riders.take_arrivals().is_empty());
        riders.on_stop(1, &event(1, 1100.0));
        let done = riders.take_arrivals();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].person, 7);
        assert!((done[0].arrive_s - (1100.0 + 13.0)).abs() < 1e-3, "{done:?}");
        assert!((done[0].length_m - (13.0 + 200.0 + 13.0)).abs() < 1e-3);
        let s = riders.stats;
        assert_eq!((s.journeys, s.boardings, s.left_behind), (1, 1, 0));
        assert!((s.wait_s - (1040.0 - j.at_stop_s)).abs() < 1e-9);
        assert!((s.passenger_km - 0.2).abs() < 1e-6);
        assert_eq!(riders.under_way(), (0, 0));
    }

    #[test]
    fn a_full_bus_leaves_passengers_behind_for_the_next() {
        let (_, mut riders) = setup(1);
        for person in [1, 2] {
            let j = riders.plan(at(200.0), at(800.0), 900.0).unwrap();
            riders.depart(person, j, at(800.0));
        }
        riders.on_stop(0, &event(0, 1000.0));
        assert_eq!((riders.load(0), riders.stats.left_behind), (1, 1));
        // Line B does not go to node 4: nobody boards, nobody is left behind by it.
        riders.on_stop(1, &event(0, 1300.0));
        assert_eq!((riders.load(1), riders.stats.left_behind), (0, 1));
        riders.on_stop(2, &event(0, 1600.0));
        assert_eq!(riders.load(2), 1);
        riders.on_stop(0, &event(3, 1180.0));
        riders.on_stop(2, &event(3, 1780.0));
        let done = riders.take_arrivals();
        assert_eq!(done.iter().map(|a| a.person).collect::<Vec<_>>(), vec![1, 2], "by person id");
        assert!(done[1].arrive_s > 1780.0 && done[0].arrive_s < 1200.0);
    }

    #[test]
    fn a_loop_route_measures_each_passage_of_a_stop_on_its_own() {
        let g = Graph::grid(5, 200.0, 1, 10.0);
        // 0 → 1 → 2, round the block by 7 and 6, and 1 → 2 again: the stop at node 2 is called twice.
        let service = BusService { runs: vec![run(&g, &[0, 1, 2, 7, 6, 1, 2], 0.0)], ..BusService::default() };
        let riders = Riders::new(&service, &g, &TransitParams::default(), WALK);
        assert_eq!(riders.run_at_m[0], vec![200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0]);
        assert_eq!(riders.run_stops[0][1], riders.run_stops[0][5], "one stop, two calls");
    }

    #[test]
    fn the_first_at_the_stop_boards_first_whoever_set_off_first() {
        let (_, mut riders) = setup(1);
        // Person 1 sets off first but from farther away: they reach the stop at node 1 after person 2.
        let far = riders.plan(Vec2::new(200.0, 300.0), at(800.0), 500.0).unwrap();
        let near = riders.plan(at(200.0), at(800.0), 800.0).unwrap();
        assert!(far.at_stop_s > near.at_stop_s && far.board == near.board);
        riders.depart(1, far, at(800.0));
        riders.depart(2, near, at(800.0));
        riders.on_stop(0, &event(0, 1000.0));
        riders.on_stop(0, &event(3, 1180.0));
        let done = riders.take_arrivals();
        assert_eq!(done.iter().map(|a| a.person).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn passengers_give_up_after_their_patience_and_are_carried_on_when_their_stop_is_not_made() {
        let (_, mut riders) = setup(70);
        let patience = TransitParams::default().patience_s;
        let j = riders.plan(at(200.0), at(800.0), 900.0).unwrap();
        riders.depart(1, j, at(800.0));
        riders.give_up_waiting(j.due_s + patience - 1.0, |_| false);
        assert_eq!(riders.under_way(), (1, 0));
        assert!(!riders.someone_gives_up_by(j.due_s + patience - 1.0));
        assert!(riders.someone_gives_up_by(j.due_s + patience));
        // Not while a bus stands at their stop (it may have come in time).
        riders.give_up_waiting(j.due_s + patience + 5.0, |s| s == j.board);
        assert_eq!(riders.under_way(), (1, 0));
        // A bus after they gave up does not take them.
        riders.on_stop(2, &event(0, j.due_s + patience + 10.0));
        assert_eq!(riders.load(2), 0);
        riders.give_up_waiting(j.due_s + patience + 30.0, |_| false);
        let done = riders.take_arrivals();
        assert_eq!(riders.stats.gave_up, 1);
        assert_eq!(done[0].mode, Mode::Walk, "they never rode");
        let walk = 600.0f32.hypot(10.0) * 1.3;
        assert!((done[0].arrive_s - (j.due_s + patience + walk as f64)).abs() < 1e-3, "{done:?}");
        assert!((done[0].length_m - (j.access_m + walk)).abs() < 1e-3);
        // Aboard a run that ends before their stop (here: line A's 1600 s run, which never stops at 4).
        let j = riders.plan(at(200.0), at(800.0), 1500.0).unwrap();
        riders.depart(2, j, at(800.0));
        riders.on_stop(2, &event(0, 1600.0));
        riders.on_run_end(2, 1700.0);
        let done = riders.take_arrivals();
        assert_eq!((riders.stats.overcarried, done.len()), (1, 1));
        // Off at its last stop (node 4, 10 m from the door).
        assert!((done[0].arrive_s - (1700.0 + 13.0)).abs() < 1e-3, "{done:?}");
    }
}
