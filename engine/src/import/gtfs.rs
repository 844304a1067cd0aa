//! GTFS static feeds (the General Transit Feed Specification, <https://gtfs.org/schedule/reference/>),
//! read with the `gtfs-structures` crate and reduced to what the simulation runs: the stops, and the bus
//! trips of one service day with their stop calls in seconds after that day's midnight.
//!
//! A feed can also give a city its roads: [`Feed::shape_ways`] turns the trips' shapes into road ways
//! (shapes of a feed share their vertices where routes share a street, so the union of the shapes is the
//! bus network), for a feed whose city has no other road data.
//!
//! Rules, as the reference states them:
//! - a trip runs on a date when its service's calendar covers the date and weekday, unless
//!   `calendar_dates.txt` removes the date; or when `calendar_dates.txt` adds the date;
//! - frequency-based trips (`frequencies.txt`) run once per headway from `start_time` up to, not including,
//!   `end_time`, each with the trip's stop-time offsets from its first departure;
//! - stop times without times (stops that are not timepoints) are interpolated linearly in straight-line
//!   distance between the timed stops around them;
//! - only routes of `route_type` 3 (bus) and the extended bus types (700–799) drive on roads here; trips of
//!   other modes are counted and left out.

use crate::city::{CityBuilder, RawWay};
use crate::error::{InputError, InputResult};
use crate::import::tags::WayClass;
use gtfs_structures::{Exception, Gtfs, RouteType};
use jiff::civil::Date;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// A shape vertex within this distance (m) of a stop, the nearest one, ends a road link, so that the stop
/// is at a link's end where vehicle models let buses stop.
const STOP_SPLIT_RADIUS_M: f64 = 60.0;

/// Days after the feed's first service date searched for the busiest day when no date is given.
const BUSIEST_DAY_SEARCH_DAYS: i64 = 14;

/// A stop (WGS84).
#[derive(Clone, Debug, PartialEq)]
pub struct TransitStop {
    /// `stop_id`.
    pub id: String,
    /// `stop_name`.
    pub name: Option<String>,
    /// Longitude (°).
    pub lon: f64,
    /// Latitude (°).
    pub lat: f64,
}

/// A trip's call at a stop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StopCall {
    /// Index into [`Timetable::stops`].
    pub stop: u32,
    /// Arrival (s after the service day's midnight; may pass 86 400).
    pub arrive_s: f64,
    /// Departure (s after the service day's midnight).
    pub depart_s: f64,
    /// Whether the times are the timetable's own and exact (`timepoint` not 0), rather than approximate
    /// or interpolated.
    pub timepoint: bool,
}

/// One run of a bus trip on the service day.
#[derive(Clone, Debug, PartialEq)]
pub struct TransitTrip {
    /// `trip_id` (with `@HH:MM:SS` of its first departure for a frequency-based trip's runs).
    pub id: String,
    /// The route's short name (or its id when it has none).
    pub route: String,
    /// `shape_id`.
    pub shape_id: Option<String>,
    /// Stop calls in order (at least two).
    pub calls: Vec<StopCall>,
}

/// The bus trips of one service day.
#[derive(Clone, Debug, PartialEq)]
pub struct Timetable {
    /// The service day: the feed's (none for a timetable made from headways, as for OSM bus routes).
    pub date: Option<Date>,
    /// Every stop of the feed (stations and entrances excluded), ordered by `stop_id` (OSM stops: by node
    /// id).
    pub stops: Vec<TransitStop>,
    /// Trips running that day, ordered by first departure then id.
    pub trips: Vec<TransitTrip>,
    /// Trips that run that day on a mode other than bus.
    pub skipped_other_modes: usize,
}

/// `[city.gtfs_roads]`: the road class, speed limit and lane count given to roads made from shapes,
/// which carry none of them.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShapeRoads {
    /// Road class of every way (an OSM `highway` value): `"tertiary"`, a town's through streets.
    pub class: WayClass,
    /// Speed limit (km/h): 50, the default urban limit in Queensland (Queensland Transport Operations
    /// (Road Use Management) Regulation) and most of Europe.
    pub speed_kmh: f32,
    /// Lanes per direction: 1.
    pub lanes: u8,
}

impl Default for ShapeRoads {
    fn default() -> Self {
        ShapeRoads { class: WayClass::Tertiary, speed_kmh: 50.0, lanes: 1 }
    }
}

/// A feed read into memory.
pub struct Feed {
    gtfs: Gtfs,
    path: PathBuf,
}

impl Feed {
    /// Reads a feed (a `.zip` or a folder). Errors name the file and what is missing or malformed.
    pub fn read(path: &Path) -> InputResult<Feed> {
        if !path.exists() {
            return Err(InputError::file(path, "file not found"));
        }
        let gtfs = Gtfs::from_path(path).map_err(|e| {
            let mut message = format!("not a readable GTFS feed: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            InputError::file(path, message)
        })?;
        Ok(Feed { gtfs, path: path.to_path_buf() })
    }

    /// Whether service `service_id` runs on `date`.
    fn runs_on(&self, service_id: &str, date: Date) -> bool {
        let exception = self
            .gtfs
            .calendar_dates
            .get(service_id)
            .and_then(|days| days.iter().find(|d| d.date == date))
            .map(|d| d.exception_type);
        match exception {
            Some(Exception::Added) => true,
            Some(Exception::Deleted) => false,
            None => self
                .gtfs
                .calendar
                .get(service_id)
                .is_some_and(|c| c.start_date <= date && date <= c.end_date && c.valid_weekday(date)),
        }
    }

    /// The first date any service runs (calendar start or added date).
    fn first_service_date(&self) -> Option<Date> {
        let starts = self.gtfs.calendar.values().map(|c| c.start_date);
        let added = self.gtfs.calendar_dates.values().flatten().filter(|d| d.exception_type == Exception::Added);
        starts.chain(added.map(|d| d.date)).min()
    }

    /// The day with the most trips among the first two weeks of service (the earliest such day on a tie);
    /// `None` for a feed without a calendar.
    pub fn busiest_day(&self) -> Option<Date> {
        let first = self.first_service_date()?;
        let mut best: Option<(usize, Date)> = None;
        for offset in 0..BUSIEST_DAY_SEARCH_DAYS {
            let Ok(date) = first.checked_add(jiff::Span::new().days(offset)) else { break };
            let trips = self.gtfs.trips.values().filter(|t| self.runs_on(&t.service_id, date)).count();
            if best.is_none_or(|(n, _)| trips > n) {
                best = Some((trips, date));
            }
        }
        best.map(|(_, d)| d)
    }

    /// The bus trips of `date` (`"YYYY-MM-DD"`; default: [`Feed::busiest_day`]); `place` names the
    /// scenario key the date came from in errors.
    pub fn timetable(&self, date: Option<&str>, scenario: &Path, place: &str) -> InputResult<Timetable> {
        let date = match date {
            Some(text) => text
                .parse::<Date>()
                .map_err(|e| InputError::new(scenario, place, format!("{text:?} is not a date (YYYY-MM-DD): {e}")))?,
            None => self.busiest_day().ok_or_else(|| {
                InputError::file(&self.path, "the feed has no calendar.txt or calendar_dates.txt service days")
            })?,
        };
        let mut stop_ids: Vec<&String> = self
            .gtfs
            .stops
            .iter()
            .filter(|(_, s)| {
                matches!(s.location_type, gtfs_structures::LocationType::StopPoint)
                    && s.latitude.is_some()
                    && s.longitude.is_some()
            })
            .map(|(id, _)| id)
            .collect();
        stop_ids.sort();
        let index: HashMap<&str, u32> = stop_ids.iter().enumerate().map(|(k, id)| (id.as_str(), k as u32)).collect();
        let stops: Vec<TransitStop> = stop_ids
            .iter()
            .map(|id| {
                let s = &self.gtfs.stops[*id];
                TransitStop {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    lon: s.longitude.unwrap_or_default(),
                    lat: s.latitude.unwrap_or_default(),
                }
            })
            .collect();
        let mut trips = Vec::new();
        let mut skipped_other_modes = 0;
        let mut ids: Vec<&String> = self.gtfs.trips.keys().collect();
        ids.sort();
        for id in ids {
            let trip = &self.gtfs.trips[id];
            if !self.runs_on(&trip.service_id, date) {
                continue;
            }
            let route = self.gtfs.routes.get(&trip.route_id).ok_or_else(|| {
                InputError::new(
                    &self.path,
                    format!("trips.txt, trip {id}"),
                    format!("unknown route_id {}", trip.route_id),
                )
            })?;
            if !is_bus(route.route_type) {
                skipped_other_modes += 1;
                continue;
            }
            let calls = self.calls(trip, &index, &stops)?;
            let name = route.short_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| route.id.clone());
            if trip.frequencies.is_empty() {
                trips.push(TransitTrip { id: id.clone(), route: name, shape_id: trip.shape_id.clone(), calls });
                continue;
            }
            let first = calls[0].depart_s;
            for f in &trip.frequencies {
                if f.headway_secs == 0 {
                    return Err(InputError::new(
                        &self.path,
                        format!("frequencies.txt, trip {id}"),
                        "headway_secs is 0",
                    ));
                }
                for start in (f.start_time..f.end_time).step_by(f.headway_secs as usize) {
                    let shift = start as f64 - first;
                    let run = calls
                        .iter()
                        .map(|c| StopCall { arrive_s: c.arrive_s + shift, depart_s: c.depart_s + shift, ..*c })
                        .collect();
                    trips.push(TransitTrip {
                        id: format!("{id}@{}", crate::scenario::format_duration(start as u64 * 1000)),
                        route: name.clone(),
                        shape_id: trip.shape_id.clone(),
                        calls: run,
                    });
                }
            }
        }
        trips.sort_by(|a, b| a.calls[0].depart_s.total_cmp(&b.calls[0].depart_s).then_with(|| a.id.cmp(&b.id)));
        Ok(Timetable { date: Some(date), stops, trips, skipped_other_modes })
    }

    /// A trip's stop calls, times interpolated where missing.
    fn calls(
        &self,
        trip: &gtfs_structures::Trip,
        index: &HashMap<&str, u32>,
        stops: &[TransitStop],
    ) -> InputResult<Vec<StopCall>> {
        let place = || format!("stop_times.txt, trip {}", trip.id);
        if trip.stop_times.len() < 2 {
            return Err(InputError::new(&self.path, place(), "a trip needs at least two stop times"));
        }
        let mut times: Vec<(u32, Option<f64>, Option<f64>, bool)> = Vec::with_capacity(trip.stop_times.len());
        for st in &trip.stop_times {
            let stop = *index.get(st.stop.id.as_str()).ok_or_else(|| {
                InputError::new(&self.path, place(), format!("stop {} is not a stop point with a position", st.stop.id))
            })?;
            let arrive = st.arrival_time.or(st.departure_time).map(f64::from);
            let depart = st.departure_time.or(st.arrival_time).map(f64::from);
            let exact = st.timepoint != gtfs_structures::TimepointType::Approximate;
            times.push((stop, arrive, depart, exact));
        }
        let (first, last) = (times[0], times[times.len() - 1]);
        if first.2.is_none() || last.1.is_none() {
            return Err(InputError::new(&self.path, place(), "the first and last stop times must have times"));
        }
        // Straight-line distance along the stops, for interpolation.
        let mut along = vec![0.0f64; times.len()];
        for k in 1..times.len() {
            let (a, b) = (&stops[times[k - 1].0 as usize], &stops[times[k].0 as usize]);
            along[k] = along[k - 1] + approx_distance_m(a.lon, a.lat, b.lon, b.lat);
        }
        let mut calls = Vec::with_capacity(times.len());
        let mut last_known = 0usize;
        for k in 0..times.len() {
            let (stop, arrive, depart, exact) = times[k];
            let (arrive_s, depart_s, timepoint) = match (arrive, depart) {
                (Some(a), Some(d)) => {
                    last_known = k;
                    (a, d, exact)
                }
                _ => {
                    let next = (k + 1..times.len()).find(|&j| times[j].1.is_some()).unwrap_or(times.len() - 1);
                    let (t0, t1) = (times[last_known].2.unwrap_or_default(), times[next].1.unwrap_or_default());
                    let span = along[next] - along[last_known];
                    let share = if span > 0.0 {
                        (along[k] - along[last_known]) / span
                    } else {
                        (k - last_known) as f64 / (next - last_known) as f64
                    };
                    let t = t0 + (t1 - t0) * share;
                    (t, t, false)
                }
            };
            if depart_s < arrive_s || calls.last().is_some_and(|c: &StopCall| arrive_s < c.depart_s) {
                return Err(InputError::new(
                    &self.path,
                    place(),
                    format!("stop sequence {}: times go backwards", trip.stop_times[k].stop_sequence),
                ));
            }
            calls.push(StopCall { stop, arrive_s, depart_s, timepoint });
        }
        Ok(calls)
    }

    /// Road ways made from the union of the feed's shapes: a junction wherever shapes meet, part or change
    /// between one- and two-way; a way between junctions, two-way where shapes run both directions. Node
    /// ids are the shape vertices' indices (negative, so they never meet OSM ids); returns the number of
    /// ways added.
    pub fn shape_ways(&self, roads: ShapeRoads, builder: &mut CityBuilder) -> usize {
        let mut vertex: HashMap<(u64, u64), u32> = HashMap::new();
        let mut coords: Vec<(f64, f64)> = Vec::new();
        let mut directed: BTreeSet<(u32, u32)> = BTreeSet::new();
        let mut shape_ids: Vec<&String> = self.gtfs.shapes.keys().collect();
        shape_ids.sort();
        for id in shape_ids {
            let mut points = self.gtfs.shapes[id].clone();
            points.sort_by_key(|p| p.sequence);
            let mut previous: Option<u32> = None;
            for p in points {
                let key = (p.longitude.to_bits(), p.latitude.to_bits());
                let next = coords.len() as u32;
                let v = *vertex.entry(key).or_insert(next);
                if v == next {
                    coords.push((p.longitude, p.latitude));
                }
                if let Some(u) = previous.filter(|&u| u != v) {
                    directed.insert((u, v));
                }
                previous = Some(v);
            }
        }
        // Undirected segments: both directions, or one-way as stored.
        let mut segments: BTreeMap<(u32, u32), Direction> = BTreeMap::new();
        for &(u, v) in &directed {
            let key = (u.min(v), u.max(v));
            let d = if directed.contains(&(v, u)) { Direction::Both } else { Direction::From(u) };
            segments.insert(key, d);
        }
        // The shape vertex nearest each stop ends a link.
        let mut at_stop = vec![false; coords.len()];
        for stop in self.gtfs.stops.values() {
            let (Some(lon), Some(lat)) = (stop.longitude, stop.latitude) else { continue };
            let nearest = coords
                .iter()
                .enumerate()
                .map(|(v, &(x, y))| (approx_distance_m(lon, lat, x, y), v))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((_, v)) = nearest.filter(|(d, _)| *d <= STOP_SPLIT_RADIUS_M) {
                at_stop[v] = true;
            }
        }
        let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); coords.len()];
        for &(a, b) in segments.keys() {
            neighbours[a as usize].push(b);
            neighbours[b as usize].push(a);
        }
        let seg = |a: u32, b: u32| segments[&(a.min(b), a.max(b))];
        // A vertex continues a way if it joins exactly two segments that agree: both two-way, or one-way in
        // and one-way out.
        let through = |v: u32| {
            let n = &neighbours[v as usize];
            !at_stop[v as usize]
                && n.len() == 2
                && match (seg(v, n[0]), seg(v, n[1])) {
                    (Direction::Both, Direction::Both) => true,
                    (Direction::From(x), Direction::From(y)) => (x == v) != (y == v),
                    _ => false,
                }
        };
        let mut visited: BTreeSet<(u32, u32)> = BTreeSet::new();
        let mut chains: Vec<Vec<u32>> = Vec::new();
        let walk = |start: u32, first: u32, visited: &mut BTreeSet<(u32, u32)>| {
            let mut chain = vec![start, first];
            visited.insert((start.min(first), start.max(first)));
            let (mut prev, mut cur) = (start, first);
            while cur != start && through(cur) {
                let n = &neighbours[cur as usize];
                let next = if n[0] == prev { n[1] } else { n[0] };
                if !visited.insert((cur.min(next), cur.max(next))) {
                    break;
                }
                chain.push(next);
                (prev, cur) = (cur, next);
            }
            chain
        };
        for v in 0..coords.len() as u32 {
            if through(v) {
                continue;
            }
            for &n in &neighbours[v as usize] {
                if !visited.contains(&(v.min(n), v.max(n))) {
                    chains.push(walk(v, n, &mut visited));
                }
            }
        }
        // Loops with no junction on them.
        for &(a, b) in segments.keys() {
            if !visited.contains(&(a, b)) {
                chains.push(walk(a, b, &mut visited));
            }
        }
        let mut added = 0;
        for mut chain in chains {
            let (forward, backward) = match seg(chain[0], chain[1]) {
                Direction::Both => (roads.lanes, roads.lanes),
                Direction::From(x) => {
                    if x != chain[0] {
                        chain.reverse();
                    }
                    (roads.lanes, 0)
                }
            };
            builder.ways.push(RawWay {
                source_id: -(added as i64) - 1,
                nodes: chain.iter().map(|&v| (-(v as i64) - 1, coords[v as usize].0, coords[v as usize].1)).collect(),
                class: roads.class,
                name: None,
                drivable: true,
                walkable: false,
                lanes_forward: forward,
                lanes_backward: backward,
                speed_kmh: roads.speed_kmh,
                roundabout: false,
            });
            added += 1;
        }
        added
    }

    /// Every stop point as a bus stop of the city (ids are the stops' indices in [`Timetable::stops`]
    /// order).
    pub fn add_stops(&self, builder: &mut CityBuilder) {
        let mut stops: Vec<_> = self
            .gtfs
            .stops
            .values()
            .filter(|s| matches!(s.location_type, gtfs_structures::LocationType::StopPoint))
            .filter_map(|s| Some((s.id.clone(), s.name.clone(), s.longitude?, s.latitude?)))
            .collect();
        stops.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, (_, name, lon, lat)) in stops.into_iter().enumerate() {
            builder.bus_stops.push((k as i64, name, lon, lat));
        }
    }
}

/// How a segment between two shape vertices may be driven.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Direction {
    Both,
    /// One-way, leaving this vertex.
    From(u32),
}

/// Whether a route type is a bus on roads.
fn is_bus(t: RouteType) -> bool {
    match t {
        RouteType::Bus => true,
        RouteType::Extended(e) => (700..800).contains(&(e as i16)),
        _ => false,
    }
}

/// Mean Earth radius (m), IUGG.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Straight-line distance (m) between two points (lon°, lat°), equirectangular (good to well under 0.1%
/// over the kilometres between stops).
pub(crate) fn approx_distance_m(lon_a: f64, lat_a: f64, lon_b: f64, lat_b: f64) -> f64 {
    let mid = ((lat_a + lat_b) / 2.0).to_radians();
    let dx = (lon_b - lon_a).to_radians() * mid.cos();
    let dy = (lat_b - lat_a).to_radians();
    EARTH_RADIUS_M * dx.hypot(dy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cairns() -> Feed {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/gtfs/cairns-gtfs.zip");
        Feed::read(&path).expect("the shipped feed reads")
    }

    #[test]
    fn the_cairns_weekday_timetable_has_every_weekday_trip_in_order() {
        let feed = cairns();
        let busiest = feed.busiest_day().unwrap();
        // Fridays run the weekday service and a Friday-only one (calendar.txt), from 2014-05-30.
        assert_eq!(busiest.to_string(), "2014-05-30");
        let scenario = Path::new("s.toml");
        let t = feed.timetable(Some("2014-06-10"), scenario, "mobility.gtfs_date").unwrap();
        assert_eq!(t.stops.len(), 416);
        assert_eq!(t.skipped_other_modes, 0);
        // Weekday trips (calendar.txt: Monday–Friday service; the Friday-only service does not run).
        let expected = feed.gtfs.trips.values().filter(|x| x.service_id == "CNS2014-CNS_MUL-Weekday-00").count();
        assert_eq!(t.trips.len(), expected);
        for w in t.trips.windows(2) {
            assert!(w[0].calls[0].depart_s <= w[1].calls[0].depart_s);
        }
        for trip in &t.trips {
            assert!(trip.calls.len() >= 2);
            for c in trip.calls.windows(2) {
                assert!(c[0].depart_s <= c[1].arrive_s && c[1].arrive_s <= c[1].depart_s, "{}", trip.id);
            }
        }
        // The first trip of the feed's stop_times.txt leaves stop 750337 at 05:50.
        let first = t.trips.iter().find(|x| x.id == "CNS2014-CNS_MUL-Weekday-00-4165878").unwrap();
        assert_eq!(t.stops[first.calls[0].stop as usize].id, "750337");
        assert_eq!(first.calls[0].depart_s, 5.0 * 3600.0 + 50.0 * 60.0);
        // Monday 2014-06-09 is a public holiday the calendar removes.
        let holiday = feed.timetable(Some("2014-06-09"), scenario, "mobility.gtfs_date").unwrap();
        assert!(holiday.trips.iter().all(|x| !x.id.contains("Weekday")));
        // A Sunday runs the Sunday service only.
        let sunday = feed.timetable(Some("2014-06-08"), scenario, "mobility.gtfs_date").unwrap();
        assert!(!sunday.trips.is_empty() && sunday.trips.iter().all(|x| x.id.contains("Sunday")));
    }

    #[test]
    fn shapes_make_one_connected_bus_network_with_shared_streets() {
        let feed = cairns();
        let mut builder = CityBuilder::new("cairns", Default::default());
        let roads = ShapeRoads { class: WayClass::Tertiary, speed_kmh: 50.0, lanes: 1 };
        let ways = feed.shape_ways(roads, &mut builder);
        feed.add_stops(&mut builder);
        assert!(ways > 50, "{ways} ways");
        let city = builder.build().unwrap();
        let g = &city.roads;
        // 4270 distinct vertices in 22 784 shape points: routes share streets, so the network is far
        // smaller than the shapes laid end to end.
        let km: f64 = g.links().iter().map(|l| l.length_m as f64).sum::<f64>() / 1000.0;
        assert!(km > 100.0 && km < 1000.0, "{km} km of links");
        // Every shape can be driven on it: consecutive vertices are joined by a path.
        let mut router = crate::city::routing::Router::new(g);
        let near = |lon: f64, lat: f64| {
            let (x, y) = city.frame.from_lon_lat(lon, lat).unwrap();
            let p = glam::Vec2::new(x as f32, y as f32);
            g.nodes().iter().enumerate().min_by(|a, b| a.1.pos.distance(p).total_cmp(&b.1.pos.distance(p))).unwrap().0
        };
        for shape in feed.gtfs.shapes.values() {
            let mut pts = shape.clone();
            pts.sort_by_key(|p| p.sequence);
            let (a, z) = (&pts[0], &pts[pts.len() - 1]);
            let (a, z) = (near(a.longitude, a.latitude), near(z.longitude, z.latitude));
            let route = router.route(
                crate::city::graph::NodeId(a as u32),
                crate::city::graph::NodeId(z as u32),
                crate::city::routing::Weight::Length,
            );
            assert!(route.is_some(), "shape {} is not drivable end to end", shape[0].id);
        }
        assert_eq!(city.bus_stops.len(), 416);
    }

    #[test]
    fn bad_feeds_and_dates_are_named() {
        let missing = Feed::read(Path::new("no/such/feed.zip")).err().unwrap();
        assert!(missing.to_string().contains("no/such/feed.zip"), "{missing}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.zip");
        std::fs::write(&junk, b"not a zip").unwrap();
        let e = Feed::read(&junk).err().unwrap();
        assert!(e.to_string().contains("junk.zip") && e.to_string().contains("GTFS"), "{e}");
        let feed = cairns();
        let e = feed.timetable(Some("10/06/2014"), Path::new("s.toml"), "key mobility.gtfs_date").unwrap_err();
        assert!(e.to_string().contains("mobility.gtfs_date") && e.to_string().contains("YYYY-MM-DD"), "{e}");
    }
}
