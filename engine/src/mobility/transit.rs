//! Scheduled buses: a GTFS service day ([`crate::import::gtfs::Timetable`]) turned into vehicle trips on
//! the city's road graph that stop at their stops ([`StopHold`]), and the schedule-adherence KPIs. A city
//! without a feed can run its OpenStreetMap bus routes on a headway timetable ([`OsmService`]).
//!
//! Map matching: each stop joins the road links within `stop_snap_m` of it (the nearest few, so both
//! directions of a two-way street are candidates). For each distinct stop sequence of the day, one
//! Viterbi-style pass picks the candidate link of every stop that makes the whole route cheapest: free-flow
//! time from the end of one stop's link to the start of the next one's, plus that link, plus each stop's
//! distance from its link at `offset_cost_s_per_m` — the way map matchers choose between road candidates
//! for a series of points (Newson & Krumm 2009, "Hidden Markov map matching through noise and sparseness",
//! with a linear offset cost in place of their Gaussian emission term). Consecutive stops that fall on the same
//! link are one stop (the later one's times kept). A stop with no road within reach is left out of its
//! trips; a trip with fewer than two stops left, or whose stops the network cannot connect, is not run —
//! both counted.
//!
//! A bus leaves its first stop at the scheduled departure, stands at least `min_dwell_s` at every stop and
//! never leaves a timepoint before its scheduled departure (holding, as operators do for regularity).

use super::vehicles::{StopEvent, StopHold, Trip};
use crate::city::graph::{Graph, LinkId};
use crate::city::routing::{Router, Weight};
use crate::city::{BusRoute, City};
use crate::import::gtfs::{StopCall, Timetable, TransitStop, TransitTrip};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `[mobility.transit]`: scheduled buses from the city's GTFS feed (`[city] gtfs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransitParams {
    /// Service day (`"YYYY-MM-DD"`); default: the feed's busiest day in its first two weeks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Least time a bus stands at a stop (s): 20 s, a stop with a few boardings (TCQSM 3rd ed., TCRP
    /// Report 165, ch. 6, gives dwell times of this order at lightly used stops).
    pub min_dwell_s: f64,
    /// How far from a stop its road may be (m).
    pub stop_snap_m: f32,
    /// Road links considered per stop (nearest first).
    pub candidates_per_stop: usize,
    /// What a metre between a stop and a candidate link costs in the matching (s/m): 1, about the time a
    /// passenger walks it, so a nearer road wins unless the farther one saves more driving.
    pub offset_cost_s_per_m: f64,
    /// A departure this much before its schedule (s) or less counts as on time: 60 s.
    pub on_time_early_s: f64,
    /// A departure this much after its schedule (s) or less counts as on time: 300 s. The 1 min early to
    /// 5 min late window is the one TCQSM (3rd ed.) reports as the most common among US agencies.
    pub on_time_late_s: f64,
    /// Share of persons without a car, who ride the buses ([`super::riders`]) or walk: 0.22, the share of
    /// households in England without a car or van in 2022 (DfT National Travel Survey, table NTS0205), a
    /// stand-in: set it from the city's own statistics. Persons are without a car only in scenarios with
    /// buses, so compare runs with and without buses at `no_car_share = 0` to see the buses' effect alone.
    pub no_car_share: f64,
    /// Passengers a bus carries, seated and standing: 70, a 12 m city bus (TCQSM 3rd ed., ch. 6, gives
    /// some 60–80 for standard buses at planning loads).
    pub bus_capacity: u32,
    /// Farthest a passenger walks to or from a stop, in a straight line (m): 400 m, the walking distance
    /// TCQSM (3rd ed., ch. 5) takes as a bus stop's catchment.
    pub max_access_m: f32,
    /// Walking distance over straight-line distance to and from stops: 1.3 (Levinson & El-Geneidy 2009,
    /// "The minimum circuity frontier and the journey to work", measure circuities of 1.2–1.3 in US
    /// metropolitan areas).
    pub walk_circuity: f32,
    /// How long after their bus was due a waiting passenger gives up and walks on (s): 900, an assumption
    /// (a bus a quarter of an hour late), without a survey behind it.
    pub patience_s: f64,
    /// A timetable for the city's OpenStreetMap bus routes, run when the city has no GTFS feed.
    pub osm_service: OsmService,
}

/// `[mobility.transit.osm_service]`: a timetable made from headways for the bus routes mapped in
/// OpenStreetMap ([`crate::city::BusRoute`]), which carry stops in order but no times. Every route (one
/// direction of a line) leaves its first stop every `headway_s` (or at the relation's own `interval`) from
/// `first_departure` to `last_departure`; the times at later stops assume `scheduled_speed_kmh` over the
/// straight lines between stops. Only the first stop holds to the timetable. An assumption to replace
/// with the operator's timetable (a GTFS feed) when there is one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OsmService {
    /// Time between departures of a route (s): 900 (15 min), a common daytime frequency of city bus lines;
    /// at least 60.
    pub headway_s: f64,
    /// First departure of each route from its first stop (clock time, `"06:00"`).
    pub first_departure: String,
    /// Last departure (clock time, `"21:00"`).
    pub last_departure: String,
    /// Scheduled speed between stops, stops included, over straight-line distance (km/h): 15, a typical
    /// commercial speed of buses in European city centres.
    pub scheduled_speed_kmh: f64,
}

impl Default for OsmService {
    fn default() -> Self {
        OsmService {
            headway_s: 900.0,
            first_departure: "06:00".into(),
            last_departure: "21:00".into(),
            scheduled_speed_kmh: 15.0,
        }
    }
}

impl OsmService {
    /// First and last departures (s after midnight); an error names the key.
    fn window_s(&self) -> Result<(f64, f64), crate::scenario::check::CheckError> {
        let clock = |key: &str, v: &str| {
            crate::scenario::duration_ms(v).map(|ms| ms as f64 / 1000.0).map_err(|m| (format!("osm_service.{key}"), m))
        };
        let (first, last) =
            (clock("first_departure", &self.first_departure)?, clock("last_departure", &self.last_departure)?);
        if last < first {
            return Err(("osm_service.last_departure".into(), "before first_departure".into()));
        }
        Ok((first, last))
    }

    /// The day's trips of `routes`: every route from its first stop each headway. Stops are shared by
    /// OSM node id.
    pub fn timetable(&self, routes: &[BusRoute]) -> Result<Timetable, crate::scenario::check::CheckError> {
        let (first, last) = self.window_s()?;
        let by_id: std::collections::BTreeMap<i64, &(i64, Option<String>, f64, f64)> =
            routes.iter().flat_map(|r| r.stops.iter().map(|s| (s.0, s))).collect();
        let index: HashMap<i64, u32> = by_id.keys().enumerate().map(|(k, &id)| (id, k as u32)).collect();
        let stops: Vec<TransitStop> = by_id
            .values()
            .map(|s| TransitStop { id: s.0.to_string(), name: s.1.clone(), lon: s.2, lat: s.3 })
            .collect();
        let speed_mps = self.scheduled_speed_kmh / 3.6;
        let mut trips = Vec::new();
        for r in routes {
            // Offsets from the first departure (s), by great-circle distance between consecutive stops.
            let mut offsets = vec![0.0];
            for w in r.stops.windows(2) {
                let d = crate::import::gtfs::approx_distance_m(w[0].2, w[0].3, w[1].2, w[1].3);
                offsets.push(offsets.last().unwrap_or(&0.0) + d / speed_mps);
            }
            let headway = r.interval_s.unwrap_or(self.headway_s);
            let mut t = first;
            while t <= last {
                let calls = r
                    .stops
                    .iter()
                    .zip(&offsets)
                    .enumerate()
                    .map(|(k, (s, off))| StopCall {
                        stop: index[&s.0],
                        arrive_s: t + off,
                        depart_s: t + off,
                        timepoint: k == 0,
                    })
                    .collect();
                let id = format!("osm-r{}@{}", r.source_id, crate::scenario::format_duration((t * 1000.0) as u64));
                trips.push(TransitTrip { id, route: r.line.clone(), shape_id: None, calls });
                t += headway;
            }
        }
        trips.sort_by(|a, b| a.calls[0].depart_s.total_cmp(&b.calls[0].depart_s).then_with(|| a.id.cmp(&b.id)));
        Ok(Timetable { date: None, stops, trips, skipped_other_modes: 0 })
    }
}

impl Default for TransitParams {
    fn default() -> Self {
        TransitParams {
            date: None,
            min_dwell_s: 20.0,
            stop_snap_m: 50.0,
            candidates_per_stop: 4,
            offset_cost_s_per_m: 1.0,
            on_time_early_s: 60.0,
            on_time_late_s: 300.0,
            osm_service: OsmService::default(),
            no_car_share: 0.22,
            bus_capacity: 70,
            max_access_m: 400.0,
            walk_circuity: 1.3,
            patience_s: 900.0,
        }
    }
}

impl TransitParams {
    /// Checks ranges: the key at fault and why.
    pub fn validate(&self) -> Result<(), crate::scenario::check::CheckError> {
        use crate::scenario::check::{non_negative, positive};
        non_negative("min_dwell_s", self.min_dwell_s)?;
        positive("stop_snap_m", self.stop_snap_m as f64)?;
        positive("candidates_per_stop", self.candidates_per_stop as f64)?;
        non_negative("offset_cost_s_per_m", self.offset_cost_s_per_m)?;
        non_negative("on_time_early_s", self.on_time_early_s)?;
        non_negative("on_time_late_s", self.on_time_late_s)?;
        crate::scenario::check::share("no_car_share", self.no_car_share)?;
        positive("bus_capacity", self.bus_capacity as f64)?;
        non_negative("max_access_m", self.max_access_m as f64)?;
        positive("walk_circuity", self.walk_circuity as f64)?;
        non_negative("patience_s", self.patience_s)?;
        let headway = self.osm_service.headway_s;
        if headway.is_nan() || headway < MIN_HEADWAY_S {
            return Err((
                "osm_service.headway_s".into(),
                format!("{headway} s: at least {MIN_HEADWAY_S} s between buses of a route"),
            ));
        }
        positive("osm_service.scheduled_speed_kmh", self.osm_service.scheduled_speed_kmh)?;
        self.osm_service.window_s()?;
        if self.walk_circuity < 1.0 {
            return Err((
                "walk_circuity".into(),
                format!("{}: a walk is never shorter than the straight line", self.walk_circuity),
            ));
        }
        Ok(())
    }
}

/// Shortest headway of the OSM timetable (s): a bus a minute on one route is already more than any street
/// carries; below it a typo would make millions of runs.
const MIN_HEADWAY_S: f64 = 60.0;

/// One bus run, ready to drive.
#[derive(Clone, Debug, PartialEq)]
pub struct BusRun {
    /// The GTFS trip id.
    pub trip_id: String,
    /// The route's short name.
    pub route: String,
    /// The vehicle trip (class and id set by the caller).
    pub links: Vec<LinkId>,
    /// When it sets off towards its first stop (s, simulation clock).
    pub depart_s: f64,
    /// Its stops on the road graph.
    pub holds: Vec<StopHold>,
    /// Scheduled departure from each of those stops (s, simulation clock).
    pub scheduled_depart_s: Vec<f64>,
}

impl BusRun {
    /// The vehicle trip of this run.
    pub fn trip(&self, id: u64, class: u8) -> Trip {
        Trip { id, depart_s: self.depart_s, route: self.links.clone(), class }
    }
}

/// The day's bus runs and what could not be mapped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BusService {
    /// Runs, by first departure.
    pub runs: Vec<BusRun>,
    /// Trips of the day not run (too few stops near a road, or stops the network cannot connect).
    pub trips_not_mapped: usize,
    /// Stops left out for want of a road within `stop_snap_m`.
    pub stops_without_road: usize,
    /// Stop calls merged into the one before (same road link).
    pub calls_merged: usize,
}

/// Maps a timetable onto `city`'s roads. `day_start_s` is the clock time of the service day's midnight.
pub fn build(city: &City, timetable: &Timetable, params: &TransitParams, day_start_s: f64) -> BusService {
    let roads = &city.roads;
    let mut service = BusService::default();
    // Candidate links of every stop, nearest first, with the cost of their distance from it.
    let candidates: Vec<Vec<(LinkId, f64)>> = timetable
        .stops
        .iter()
        .map(|s| {
            let Ok((x, y)) = city.frame.from_lon_lat(s.lon, s.lat) else { return Vec::new() };
            let p = glam::Vec2::new(x as f32, y as f32);
            let mut near: Vec<(f32, LinkId)> = city
                .road_index
                .within(p, params.stop_snap_m)
                .into_iter()
                .map(|l| (crate::geo::shapes::distance2_to_polyline(&roads.link(l).geometry, p).sqrt(), l))
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            near.truncate(params.candidates_per_stop);
            near.into_iter().map(|(d, l)| (l, d as f64 * params.offset_cost_s_per_m)).collect()
        })
        .collect();
    service.stops_without_road = candidates.iter().filter(|c| c.is_empty()).count();
    let mut router = Router::new(roads);
    let mut matched: HashMap<Vec<u32>, Option<Matched>> = HashMap::new();
    for trip in &timetable.trips {
        let calls: Vec<_> = trip.calls.iter().filter(|c| !candidates[c.stop as usize].is_empty()).collect();
        let pattern: Vec<u32> = calls.iter().map(|c| c.stop).collect();
        let m = matched
            .entry(pattern.clone())
            .or_insert_with(|| match_stops(roads, &mut router, &pattern, &candidates))
            .clone();
        let Some(m) = m else {
            service.trips_not_mapped += 1;
            continue;
        };
        // Stops on the same link as the one before merge into it (the later departure kept).
        let mut holds: Vec<StopHold> = Vec::new();
        let mut scheduled: Vec<f64> = Vec::new();
        for (k, call) in calls.iter().enumerate() {
            let link = m.stop_links[k];
            let depart = day_start_s + call.depart_s;
            if k > 0 && m.stop_links[k - 1] == link && m.stop_route_index[k - 1] == m.stop_route_index[k] {
                let last = holds.len() - 1;
                if call.timepoint {
                    holds[last].not_before_s = holds[last].not_before_s.max(depart);
                }
                scheduled[last] = depart;
                service.calls_merged += 1;
                continue;
            }
            // Held to the timetable at timepoints (and always at the first stop).
            let not_before_s = if k == 0 || call.timepoint { depart } else { f64::NEG_INFINITY };
            holds.push(StopHold { link, dwell_s: params.min_dwell_s, not_before_s });
            scheduled.push(depart);
        }
        if holds.len() < 2 {
            service.trips_not_mapped += 1;
            continue;
        }
        // Off towards the first stop so as to reach it at its departure time.
        let first = roads.link(m.links[0]);
        let depart_s = day_start_s + calls[0].depart_s - first.free_flow_time_s() as f64;
        service.runs.push(BusRun {
            trip_id: trip.id.clone(),
            route: trip.route.clone(),
            links: m.links,
            depart_s,
            holds,
            scheduled_depart_s: scheduled,
        });
    }
    service.runs.sort_by(|a, b| a.depart_s.total_cmp(&b.depart_s).then_with(|| a.trip_id.cmp(&b.trip_id)));
    service
}

/// A stop sequence matched to the roads.
#[derive(Clone, Debug)]
struct Matched {
    /// The whole route.
    links: Vec<LinkId>,
    /// Each stop's link and its index in `links`.
    stop_links: Vec<LinkId>,
    stop_route_index: Vec<usize>,
}

/// The fastest chain of candidate links through a stop sequence, or `None` when there are fewer than two
/// stops or no candidate chain connects.
fn match_stops(
    graph: &Graph,
    router: &mut Router,
    stops: &[u32],
    candidates: &[Vec<(LinkId, f64)>],
) -> Option<Matched> {
    if stops.len() < 2 {
        return None;
    }
    let cost_of = |l: LinkId| graph.link(l).free_flow_time_s() as f64;
    // best[k][c]: (cost to the end of candidate c of stop k, the candidate before it, the path between);
    // the cost is the driving from the first stop plus every stop's offset from its link.
    type Step = (f64, usize, Vec<LinkId>);
    let first = &candidates[stops[0] as usize];
    let mut best: Vec<Vec<Step>> = vec![first.iter().map(|&(_, off)| (off, usize::MAX, Vec::new())).collect()];
    for k in 1..stops.len() {
        let here = &candidates[stops[k] as usize];
        let mut row: Vec<Step> = vec![(f64::INFINITY, usize::MAX, Vec::new()); here.len()];
        let before = &candidates[stops[k - 1] as usize];
        let targets: Vec<_> = here.iter().map(|&(l, _)| graph.link(l).from).collect();
        for (p, &(prev, _)) in before.iter().enumerate() {
            let base = best[k - 1][p].0;
            if !base.is_finite() {
                continue;
            }
            // Staying on the same link: the two stops are one.
            if let Some(c) = here.iter().position(|&(l, _)| l == prev) {
                let cost = base + here[c].1;
                if cost < row[c].0 {
                    row[c] = (cost, p, Vec::new());
                }
            }
            let routes = router.routes_from(graph.link(prev).to, &targets, Weight::TravelTime);
            for (c, route) in routes.into_iter().enumerate() {
                let Some(route) = route else { continue };
                let cost = base + route.cost as f64 + cost_of(here[c].0) + here[c].1;
                if cost < row[c].0 {
                    row[c] = (cost, p, route.links);
                }
            }
        }
        best.push(row);
    }
    let last = best.last()?;
    let (mut c, _) =
        last.iter().enumerate().filter(|(_, s)| s.0.is_finite()).min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))?;
    // Walk back, collecting each stop's link and the path before it.
    let mut chosen: Vec<(LinkId, Vec<LinkId>, bool)> = Vec::with_capacity(stops.len());
    for k in (0..stops.len()).rev() {
        let (_, p, path) = &best[k][c];
        let link = candidates[stops[k] as usize][c].0;
        let same = k > 0 && candidates[stops[k - 1] as usize][*p].0 == link && path.is_empty();
        chosen.push((link, path.clone(), same));
        c = *p;
    }
    chosen.reverse();
    let mut links = Vec::new();
    let (mut stop_links, mut stop_route_index) = (Vec::new(), Vec::new());
    for (link, path, same) in chosen {
        if !same {
            links.extend(path);
            links.push(link);
        }
        stop_links.push(link);
        stop_route_index.push(links.len() - 1);
    }
    Some(Matched { links, stop_links, stop_route_index })
}

/// Schedule adherence of the stops made: (mean delay of departures against the timetable in s, 95th
/// percentile delay in s, share of departures on time). Early departures count as negative delay. `runs`
/// are indexed by trip id − `first_id`.
pub fn adherence(events: &[StopEvent], runs: &[BusRun], first_id: u64, params: &TransitParams) -> (f64, f64, f64) {
    let mut delays: Vec<f64> = events
        .iter()
        .filter_map(|e| {
            let run = runs.get(e.trip_id.checked_sub(first_id)? as usize)?;
            // The terminus has no departure: its arrival is compared with the scheduled time.
            Some(e.depart_s - run.scheduled_depart_s.get(e.stop as usize)?)
        })
        .collect();
    if delays.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let on_time = delays.iter().filter(|&&d| d >= -params.on_time_early_s && d <= params.on_time_late_s).count();
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    delays.sort_by(f64::total_cmp);
    let p95 = super::teleport::percentile(&delays, 0.95);
    (mean, p95, on_time as f64 / delays.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::{CityBuilder, RawWay};
    use crate::import::gtfs::{StopCall, TransitStop, TransitTrip};
    use crate::import::tags::WayClass;

    /// A two-way street of four 200 m blocks running east along the equator near lon 0 (nodes 1…5), and
    /// stops beside it 10 m north.
    fn street_city() -> City {
        let mut b = CityBuilder::new("street", Default::default());
        let deg_per_m = 1.0 / 111_195.0;
        let two_way = |source_id, nodes| RawWay {
            source_id,
            nodes,
            class: WayClass::Secondary,
            name: None,
            drivable: true,
            walkable: false,
            lanes_forward: 1,
            lanes_backward: 1,
            speed_kmh: 36.0,
            roundabout: false,
        };
        b.ways.push(two_way(1, (0..5).map(|k| (k as i64 + 1, k as f64 * 200.0 * deg_per_m, 0.0)).collect()));
        // Node 3 is shared with a side street so the street is split into links there.
        let side = vec![(3, 400.0 * deg_per_m, 0.0), (6, 400.0 * deg_per_m, 200.0 * deg_per_m)];
        b.ways.push(two_way(2, side));
        b.build().unwrap()
    }

    fn stop_at(id: &str, east_m: f64) -> TransitStop {
        let deg_per_m = 1.0 / 111_195.0;
        TransitStop { id: id.into(), name: None, lon: east_m * deg_per_m, lat: 10.0 * deg_per_m }
    }

    /// A trip of route 1 from stop `a` at `t` to stop `b` a minute later.
    fn trip(id: &str, a: u32, b: u32, t: f64) -> TransitTrip {
        let call = |stop, t| StopCall { stop, arrive_s: t, depart_s: t, timepoint: true };
        TransitTrip { id: id.into(), route: "1".into(), shape_id: None, calls: vec![call(a, t), call(b, t + 60.0)] }
    }

    fn timetable(stops: Vec<TransitStop>, trips: Vec<TransitTrip>) -> Timetable {
        Timetable { date: Some("2026-12-07".parse().unwrap()), stops, trips, skipped_other_modes: 0 }
    }

    #[test]
    fn stops_are_served_on_the_links_of_the_direction_of_travel() {
        let city = street_city();
        let roads = &city.roads;
        let timetable = timetable(
            vec![stop_at("west", 380.0), stop_at("east", 780.0)],
            vec![trip("eastbound", 0, 1, 3600.0), trip("westbound", 1, 0, 7200.0)],
        );
        let service = build(&city, &timetable, &TransitParams::default(), 0.0);
        assert_eq!((service.runs.len(), service.trips_not_mapped), (2, 0));
        for run in &service.runs {
            let east = run.trip_id == "eastbound";
            for &l in &run.links {
                let link = roads.link(l);
                let dx = roads.node(link.to).pos.x - roads.node(link.from).pos.x;
                assert_eq!(dx > 0.0, east, "{}: a link against the direction of travel", run.trip_id);
            }
            for w in run.links.windows(2) {
                assert_eq!(roads.link(w[0]).to, roads.link(w[1]).from);
            }
            assert_eq!(run.holds.len(), 2);
            assert_eq!(run.holds.last().unwrap().link, *run.links.last().unwrap());
            // It sets off so as to reach its first stop at the scheduled departure.
            let first = roads.link(run.links[0]).free_flow_time_s() as f64;
            assert!((run.depart_s + first - run.scheduled_depart_s[0]).abs() < 1e-6);
        }
        // Adherence: a departure 30 s late and one 400 s late; one of two on time.
        let runs = &service.runs;
        let events = [
            StopEvent { trip_id: 100, stop: 0, arrive_s: 3600.0, depart_s: runs[0].scheduled_depart_s[0] + 30.0 },
            StopEvent { trip_id: 101, stop: 1, arrive_s: 7000.0, depart_s: runs[1].scheduled_depart_s[1] + 400.0 },
        ];
        let (mean, _, on_time) = adherence(&events, runs, 100, &TransitParams::default());
        assert!((mean - 215.0).abs() < 1e-9 && (on_time - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_stop_far_from_every_road_is_left_out_and_a_trip_without_two_stops_is_not_run() {
        let city = street_city();
        let far = TransitStop { id: "far".into(), name: None, lon: 0.0, lat: 0.01 };
        let timetable = timetable(vec![stop_at("west", 380.0), far], vec![trip("t", 0, 1, 3600.0)]);
        let service = build(&city, &timetable, &TransitParams::default(), 0.0);
        assert_eq!((service.runs.len(), service.trips_not_mapped, service.stops_without_road), (0, 1, 1));
    }

    #[test]
    fn osm_routes_run_on_a_headway_timetable_matched_to_the_roads() {
        let city = street_city();
        let deg_per_m = 1.0 / 111_195.0;
        let stop = |id: i64, east_m: f64| (id, Some(format!("s{id}")), east_m * deg_per_m, 10.0 * deg_per_m);
        let route = |id, stops, interval_s| BusRoute { source_id: id, line: "1".into(), name: None, stops, interval_s };
        let routes = vec![
            route(20, vec![stop(5, 780.0), stop(3, 380.0)], None),
            route(10, vec![stop(3, 380.0), stop(4, 580.0), stop(5, 780.0)], Some(1800.0)),
        ];
        let service = OsmService {
            headway_s: 900.0,
            first_departure: "07:00".into(),
            last_departure: "08:00".into(),
            scheduled_speed_kmh: 18.0,
        };
        let t = service.timetable(&routes).unwrap();
        // Stops shared by node id, in id order.
        assert_eq!(t.stops.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["3", "4", "5"]);
        assert_eq!(t.date, None);
        // 07:00 to 08:00 inclusive: five runs at 15 min, three at the relation's own 30 min.
        assert_eq!(t.trips.iter().filter(|x| x.id.starts_with("osm-r20@")).count(), 5);
        assert_eq!(t.trips.iter().filter(|x| x.id.starts_with("osm-r10@")).count(), 3);
        assert_eq!(t.trips[0].calls[0].depart_s, 7.0 * 3600.0);
        let r10 = t.trips.iter().find(|x| x.id == "osm-r10@07:30:00").unwrap();
        // 200 m between stops at 5 m/s: 40 s; only the first stop is a timepoint.
        let times: Vec<f64> = r10.calls.iter().map(|c| c.depart_s - 27_000.0).collect();
        assert!(times.iter().zip([0.0, 40.0, 80.0]).all(|(a, b)| (a - b).abs() < 0.1), "{times:?}");
        assert_eq!(r10.calls.iter().map(|c| c.timepoint).collect::<Vec<_>>(), vec![true, false, false]);
        let mapped = build(&city, &t, &TransitParams::default(), 0.0);
        assert_eq!((mapped.runs.len(), mapped.trips_not_mapped), (8, 0));
        let late = OsmService { last_departure: "06:00".into(), ..service };
        assert_eq!(late.timetable(&routes).unwrap_err().0, "osm_service.last_departure");
    }
}
