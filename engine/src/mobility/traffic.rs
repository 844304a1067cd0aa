//! The mobility domain with a vehicle model: the microscopic model (`[mobility] model = "micro"`,
//! [`super::micro`]) or the mesoscopic queue model (`model = "meso"`, [`super::meso`]). The population's car
//! trips drive as vehicles on the road graph, so congestion, signals (micro) or link capacities (meso) and
//! closures set their travel times; walking legs keep the free-flow model ([`super::teleport`]). SUMO demand
//! (`[mobility] sumo_routes`) runs on a SUMO network (`[city] sumo_net`) as vehicles without persons. With
//! `[mobility.rerouting]`, vehicles re-plan on the travel times they meet ([`super::rerouting`]).
//!
//! Each tick: persons' events up to the tick's end are processed in person order (a car trip that starts
//! gets its route — A* by free-flow time over the open links — and enters the model), the model steps to
//! the tick's end, and vehicles that arrived hand their persons back (arrival plus the walk from the road
//! to the door). Everything runs in a fixed order, so the result does not depend on the thread count; the
//! model's own phases are parallel and deterministic.

use super::idm::DriverParams;
use super::junctions::{Junctions, SignalParams};
use super::meso::{QueueParams, QueueTraffic};
use super::micro::{MicroParams, Traffic};
use super::od::OdSection;
use super::rerouting::ReroutingParams;
use super::riders::{RiderArrival, Riders};
use super::teleport::{self, Itinerary, LegStart, Mode, PersonId, PersonState, PlannedTrip, TripLog, DOMAIN};
use super::transit::{BusService, TransitParams};
use super::vehicles::{Trip, TripResult, VehicleModel};
use crate::city::graph::{LinkId, NodeId};
use crate::city::routing::{Router, Weight};
use crate::city::City;
use crate::error::{InputError, InputResult};
use crate::import::tags::WayClass;
use crate::sim::{register_domain, CityRes, Finalize, Kpis, Observe, SimClock, TimeSeries};
use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which mobility model a scenario runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MobilityModel {
    /// Every trip at its free-flow time ([`super::teleport`]).
    #[default]
    FreeFlow,
    /// Car trips as vehicles in the microscopic model.
    Micro,
    /// Car trips as vehicles in the mesoscopic queue model.
    Meso,
}

/// `[mobility]`: the mobility model and its parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobilitySection {
    /// `"free_flow"` (default), `"micro"` or `"meso"`.
    #[serde(default)]
    pub model: MobilityModel,
    /// SUMO demand (`.rou.xml`) to run on the SUMO network of `[city] sumo_net` (with `"meso"` in the queue
    /// model, otherwise in the microscopic model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sumo_routes: Option<PathBuf>,
    /// The microscopic model's parameters (step, teleport time, lane changes).
    #[serde(default)]
    pub micro: MicroParams,
    /// The queue model's parameters (step, capacities, storage, teleport time).
    #[serde(default)]
    pub meso: QueueParams,
    /// Generated signal plans and priority rules.
    #[serde(default)]
    pub signals: SignalParams,
    /// CO₂ emitted per vehicle-km (kg/km): 0.168, the UK DESNZ 2023 greenhouse-gas conversion factor of an
    /// average car of unknown fuel (kg CO₂e per km).
    #[serde(default = "default_co2_kg_per_km")]
    pub co2_kg_per_km: f64,
    /// Road closures: a street (by name) or the road nearest a point, closed for a time window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closures: Vec<RoadClosure>,
    /// Scheduled buses from the city's GTFS feed (`[city] gtfs`), driven in the vehicle model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit: Option<TransitParams>,
    /// Car trips from an origin–destination matrix over zones, driven besides the population's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub od: Option<OdSection>,
    /// Car trips listed one by one with their departures and the road nodes they pass (CSV
    /// `id,depart,via`, [`super::routes`]), driven besides the population's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<PathBuf>,
    /// Vehicles re-plan their routes on the link travel times they meet (off without the section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerouting: Option<ReroutingParams>,
}

/// `[[mobility.closures]]`: a road closed to vehicles for a time (works, an event, an intervention).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoadClosure {
    /// Every road link of the street with this name (both directions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    /// Or the road link nearest this point [x, y] (m, local frame), both directions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<[f32; 2]>,
    /// Clock time it closes (`"08:00"`); default: the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Clock time it re-opens; default: never within the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A closure resolved to links and clock times (ms).
#[derive(Clone, Debug, PartialEq)]
struct ActiveClosure {
    links: Vec<LinkId>,
    from_ms: u64,
    until_ms: u64,
}

/// The links a closure names; an error names its key.
fn closure_links(city: &City, c: &RoadClosure, key: &str, path: &Path) -> InputResult<ActiveClosure> {
    let err = |m: String| InputError::new(path, format!("key {key}"), m);
    let roads = &city.roads;
    let mut links: Vec<LinkId> = match (&c.street, c.at) {
        (Some(name), None) => (0..roads.links().len() as u32)
            .map(LinkId)
            .filter(|&l| roads.link(l).name.as_deref() == Some(name.as_str()))
            .collect(),
        (None, Some([x, y])) => {
            let (near, _) =
                city.nearest_road(glam::Vec2::new(x, y)).ok_or_else(|| err("the city has no roads".into()))?;
            let l = roads.link(near);
            // Both directions of that street segment.
            (0..roads.links().len() as u32)
                .map(LinkId)
                .filter(|&k| {
                    let o = roads.link(k);
                    (o.from, o.to) == (l.from, l.to) || (o.from, o.to) == (l.to, l.from)
                })
                .collect()
        }
        _ => return Err(err("give either `street` or `at`".into())),
    };
    links.sort_unstable();
    if links.is_empty() {
        return Err(err(format!("no road is named {:?}", c.street.as_deref().unwrap_or_default())));
    }
    let clock = |v: &Option<String>, default: u64, what: &str| -> InputResult<u64> {
        match v {
            Some(t) => crate::scenario::duration_ms(t).map_err(|m| err(format!("{what}: {m}"))),
            None => Ok(default),
        }
    };
    let (from_ms, until_ms) = (clock(&c.from, 0, "from")?, clock(&c.until, u64::MAX, "until")?);
    if until_ms <= from_ms {
        return Err(err("`until` must be after `from`".into()));
    }
    Ok(ActiveClosure { links, from_ms, until_ms })
}

fn default_co2_kg_per_km() -> f64 {
    0.168
}

impl MobilitySection {
    /// The vehicle model that runs, if any: the one named, or the microscopic model for SUMO demand.
    pub fn vehicle_model(&self) -> Option<MobilityModel> {
        match (self.model, &self.sumo_routes) {
            (MobilityModel::FreeFlow, None) => None,
            (MobilityModel::FreeFlow, Some(_)) => Some(MobilityModel::Micro),
            (m, _) => Some(m),
        }
    }

    /// Checks ranges; errors name the key.
    pub fn validate(&self, path: &Path) -> InputResult<()> {
        use crate::scenario::check::{non_negative, positive};
        let m = &self.micro;
        let s = &self.signals;
        let checks = [
            positive("micro.step_s", m.step_s),
            positive("micro.teleport_after_s", m.teleport_after_s),
            positive("meso.step_s", self.meso.step_s),
            positive("meso.vehicle_cell_m", self.meso.vehicle_cell_m),
            positive("meso.teleport_after_s", self.meso.teleport_after_s),
            positive("meso.flow_capacity_factor", self.meso.flow_capacity_factor),
            positive("meso.storage_capacity_factor", self.meso.storage_capacity_factor),
            non_negative("micro.keep_clear_horizon_s", m.keep_clear_horizon_s),
            positive("signals.cycle_s", s.cycle_s),
            non_negative("signals.critical_gap_s", s.critical_gap_s),
            non_negative("co2_kg_per_km", self.co2_kg_per_km),
        ];
        for c in checks {
            c.map_err(|(key, msg)| InputError::new(path, format!("key mobility.{key}"), msg))?;
        }
        let bad = |key: &str, msg: String| Err(InputError::new(path, format!("key mobility.{key}"), msg));
        if m.step_s > 2.0 || (m.step_s * 1000.0).fract() != 0.0 {
            return bad("micro.step_s", format!("{} s: must be a whole number of ms up to 2 s", m.step_s));
        }
        for (key, v) in self.meso.capacity.values() {
            positive(key, v)
                .map_err(|(_, msg)| InputError::new(path, format!("key mobility.meso.capacity.{key}"), msg))?;
        }
        let q = &self.meso;
        if q.step_s > 60.0 || (q.step_s * 1000.0).fract() != 0.0 {
            return bad("meso.step_s", format!("{} s: must be a whole number of ms up to 60 s", q.step_s));
        }
        if let Some(r) = &self.rerouting {
            r.validate().map_err(|(key, msg)| InputError::new(path, format!("key mobility.rerouting.{key}"), msg))?;
            if self.vehicle_model().is_none() {
                return bad("rerouting", "re-routing needs vehicles: set model = \"micro\" or \"meso\"".into());
            }
        }
        if let Some(t) = &self.transit {
            t.validate().map_err(|(key, msg)| InputError::new(path, format!("key mobility.transit.{key}"), msg))?;
            if self.vehicle_model().is_none() {
                return bad("transit", "buses drive as vehicles: they need model = \"micro\" or \"meso\"".into());
            }
            if self.sumo_routes.is_some() {
                return bad("transit", "buses run with the population's demand, not with SUMO routes".into());
            }
        }
        if self.od.is_some() && (self.vehicle_model().is_none() || self.sumo_routes.is_some()) {
            return bad(
                "od",
                "OD trips drive as vehicles beside the population: model = \"micro\" or \"meso\", no SUMO routes"
                    .into(),
            );
        }
        if self.routes.is_some() && (self.vehicle_model().is_none() || self.sumo_routes.is_some()) {
            return bad(
                "routes",
                "listed routes drive as vehicles beside the population: model = \"micro\" or \"meso\", no SUMO \
                 routes (SUMO's own route files go in sumo_routes)"
                    .into(),
            );
        }
        if !self.closures.is_empty() && self.vehicle_model().is_none() {
            return bad("closures", "road closures act on vehicles: they need model = \"micro\" or \"meso\"".into());
        }
        if s.cycle_s <= 2.0 * (s.yellow_s + s.all_red_s + s.min_green_s) {
            return bad("signals.cycle_s", format!("{} s leaves no minimum green after clearance times", s.cycle_s));
        }
        Ok(())
    }
}

/// Bits of a vehicle's trip id that hold the trip's index in its person's itinerary.
const TRIP_INDEX_BITS: u32 = 16;
/// Trip ids of buses: this plus the run's index (persons' trip ids stay far below).
const BUS_TRIP_ID_BASE: u64 = 1 << 62;
/// Trip ids of OD-matrix trips: this plus the trip's index (below the buses').
const OD_TRIP_ID_BASE: u64 = 1 << 61;
/// Trip ids of a route file's trips: this plus the row's index (below the OD trips', above the persons').
const LISTED_TRIP_ID_BASE: u64 = 1 << 60;
/// The vehicle class of buses (after the car, class 0).
const BUS_CLASS: u8 = 1;

/// Whether a vehicle trip id is a bus run's.
fn is_bus_trip(id: u64) -> bool {
    id >= BUS_TRIP_ID_BASE
}

/// Whether a vehicle trip id is a person's car trip (not a bus, an OD trip or a listed trip).
fn is_person_trip(id: u64) -> bool {
    id < LISTED_TRIP_ID_BASE
}

/// Whether a vehicle trip id is an OD-matrix trip's.
fn is_od_trip(id: u64) -> bool {
    (OD_TRIP_ID_BASE..BUS_TRIP_ID_BASE).contains(&id)
}

/// Whether a vehicle trip id is a route file's.
fn is_listed_trip(id: u64) -> bool {
    (LISTED_TRIP_ID_BASE..OD_TRIP_ID_BASE).contains(&id)
}
/// Arrival time of a car trip still driving (its vehicle has not arrived).
pub const PENDING_ARRIVAL: u64 = u64::MAX;

/// Who a vehicle carries.
#[derive(Clone, Debug)]
enum Demand {
    /// The population's car trips: persons by id, and where each building joins the road graph.
    Population { persons: Vec<Entity>, attach: Vec<Option<(NodeId, f32)>> },
    /// SUMO vehicles (their ids by trip id).
    Sumo { ids: Vec<String> },
}

/// Width of a lane (m), to place vehicles on their lane: 3.2 m, SUMO's default lane width.
const LANE_WIDTH_M: f32 = 3.2;

/// A vehicle as the replay shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VehicleSample {
    /// The vehicle's index (stable over the run).
    pub id: u32,
    /// Position in the local frame (m), on its lane.
    pub x_m: f32,
    /// North (m).
    pub y_m: f32,
    /// Standing (queued, or at a stop) rather than moving.
    pub standing: bool,
    /// A scheduled bus rather than a car.
    pub bus: bool,
}

/// Vehicles at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct VehicleFrame {
    /// Run time (ms since the run's start).
    pub t_ms: u64,
    /// Every vehicle on the network.
    pub vehicles: Vec<VehicleSample>,
}

/// The vehicle model in the World.
#[derive(Resource)]
pub struct TrafficState {
    /// The model.
    pub traffic: Box<dyn VehicleModel>,
    demand: Demand,
    /// Results already handed back.
    handed: usize,
    co2_kg_per_km: f64,
    walk_speed_mps: f32,
    /// Interval of vehicle frames (ms of run time).
    frame_interval_ms: u64,
    /// Run time of the next frame (ms).
    next_frame_ms: u64,
    /// Frames taken since the replay observer last collected them.
    pub frames: Vec<VehicleFrame>,
    /// Whether link geometries are lane 0's (SUMO) rather than the road's centre line (OSM).
    geometry_is_lane0: bool,
    /// The scenario's road closures.
    closures: Vec<ActiveClosure>,
    /// Road links under water, as the coupling last set them (indexed by link).
    pub flooded: Vec<bool>,
    /// The day's buses, when the scenario runs them.
    buses: Option<Buses>,
    /// When the next vehicle reaches the end of each road link another domain watches (the coupling's
    /// crossings), forecast at every model step.
    pub arrivals: ArrivalWatch,
    /// OD-matrix trips: (drawn, left out: no second junction in a one-zone trip or no route).
    od_trips: Option<(usize, usize)>,
    /// The route file's trips, when the scenario lists some.
    listed_trips: Option<usize>,
    /// The run's seed (who has a car).
    seed: u64,
}

/// The day's buses: the runs, the timetable's trip count, the transit parameters and the passengers.
struct Buses {
    service: BusService,
    scheduled: usize,
    params: TransitParams,
    riders: Riders,
    /// Stop events already handed to the passengers.
    stops_handed: usize,
}

impl Buses {
    /// Whether person `person` has no car (drawn once per person from the seed).
    fn carless(&self, seed: u64, person: u32) -> bool {
        use rand::Rng;
        self.params.no_car_share > 0.0
            && crate::rng::stream(seed, crate::rng::Purpose::CarOwnership, person as u64, 0).random::<f64>()
                < self.params.no_car_share
    }
}

impl TrafficState {
    /// The model for a city and its section; SUMO demand when the section names it (the city's road
    /// graph must then be the SUMO network it refers to); GTFS buses and OD-matrix trips (drawn from
    /// `seed`) when the section asks for them.
    pub fn new(
        city: &City,
        section: &MobilitySection,
        frame_interval_ms: u64,
        scenario_path: &Path,
        seed: u64,
    ) -> InputResult<TrafficState> {
        section.validate(scenario_path)?;
        let bad = |e: String| InputError::new(scenario_path, "key mobility", e);
        let meso = section.vehicle_model() == Some(MobilityModel::Meso);
        let (traffic, demand): (Box<dyn VehicleModel>, Demand) = match &section.sumo_routes {
            Some(path) => {
                let net = city.sumo_network.as_ref().ok_or_else(|| {
                    InputError::new(
                        scenario_path,
                        "key mobility.sumo_routes",
                        "needs a SUMO network: set [city] sumo_net",
                    )
                })?;
                let d = crate::import::sumo::read_routes(path, net)?;
                let traffic: Box<dyn VehicleModel> = match meso {
                    true => {
                        Box::new(QueueTraffic::from_sumo(net, &d, &section.signals, section.meso.clone()).map_err(bad)?)
                    }
                    false => {
                        Box::new(Traffic::from_sumo(net, &d, &section.signals, section.micro.clone()).map_err(bad)?)
                    }
                };
                (traffic, Demand::Sumo { ids: d.vehicles.into_iter().map(|v| v.id).collect() })
            }
            None => {
                let graph = Arc::new(city.roads.clone());
                let attach =
                    city.buildings.iter().map(|b| teleport::attach(city, &city.roads, false, b.centroid)).collect();
                let classes = vec![DriverParams::CAR, DriverParams::BUS];
                let traffic: Box<dyn VehicleModel> = match meso {
                    true => {
                        let mut model =
                            QueueTraffic::new(graph.clone(), classes, section.meso.clone(), Vec::new(), 0.0)
                                .map_err(bad)?;
                        let junctions = Junctions::from_control(&graph, &city.traffic_control, &section.signals);
                        model.set_signal_delays(&junctions).map_err(bad)?;
                        Box::new(model)
                    }
                    false => {
                        let junctions = Junctions::from_control(&graph, &city.traffic_control, &section.signals);
                        Box::new(
                            Traffic::new(graph, junctions, classes, section.micro.clone(), Vec::new(), 0.0)
                                .map_err(bad)?,
                        )
                    }
                };
                (traffic, Demand::Population { persons: Vec::new(), attach })
            }
        };
        let mut traffic = traffic;
        if let Some(params) = &section.rerouting {
            traffic.enable_rerouting(params.clone());
        }
        TrafficState {
            traffic,
            demand,
            handed: 0,
            co2_kg_per_km: section.co2_kg_per_km,
            walk_speed_mps: city.defaults.walk_speed_mps,
            frame_interval_ms: frame_interval_ms.max(1),
            next_frame_ms: 0,
            frames: Vec::new(),
            arrivals: ArrivalWatch::default(),
            geometry_is_lane0: city.sumo_network.is_some(),
            closures: section
                .closures
                .iter()
                .enumerate()
                .map(|(k, c)| closure_links(city, c, &format!("mobility.closures[{k}]"), scenario_path))
                .collect::<InputResult<_>>()?,
            flooded: Vec::new(),
            buses: None,
            od_trips: None,
            listed_trips: None,
            seed,
        }
        .with_buses(city, section, scenario_path)?
        .with_od_trips(city, section, seed)?
        .with_listed_trips(city, section)
    }

    /// Adds the route file's car trips, when `[mobility] routes` names one.
    fn with_listed_trips(mut self, city: &City, section: &MobilitySection) -> InputResult<Self> {
        let Some(path) = &section.routes else { return Ok(self) };
        let mut router = Router::new(&city.roads);
        let listed = super::routes::read_routes(path, &city.roads, |a, b| {
            router.route(a, b, Weight::TravelTime).map(|r| r.links)
        })?;
        self.listed_trips = Some(listed.len());
        for (k, t) in listed.into_iter().enumerate() {
            let trip = Trip { id: LISTED_TRIP_ID_BASE + k as u64, depart_s: t.depart_s, route: t.route, class: 0 };
            self.traffic
                .add_trip(trip)
                .map_err(|e| InputError::new(path, format!("vehicle {}", t.id), format!("cannot be driven: {e}")))?;
        }
        Ok(self)
    }

    /// Adds the OD matrix's car trips, each on its fastest free-flow route, when `[mobility.od]` names one.
    fn with_od_trips(mut self, city: &City, section: &MobilitySection, seed: u64) -> InputResult<Self> {
        let Some(od) = &section.od else { return Ok(self) };
        let zones = super::od::read_zones(&od.zones, city)?;
        let rows = super::od::read_matrix(&od.matrix, &zones)?;
        let mut router = Router::new(&city.roads);
        let (trips, left_out) =
            super::od::draw_trips(&zones, &rows, seed, |a, b| router.route(a, b, Weight::TravelTime).map(|r| r.links));
        let drawn = trips.len() + left_out;
        for (k, t) in trips.into_iter().enumerate() {
            let trip = Trip { id: OD_TRIP_ID_BASE + k as u64, depart_s: t.depart_s, route: t.route, class: 0 };
            self.traffic.add_trip(trip).map_err(|e| InputError::new(&od.matrix, "trips", e))?;
        }
        self.od_trips = Some((drawn, left_out));
        Ok(self)
    }

    /// Adds the day's bus runs, when `[mobility.transit]` asks for them: the city's GTFS feed's, or
    /// without one the city's OpenStreetMap bus routes on the headway timetable of
    /// `[mobility.transit.osm_service]`. The clock's midnight (0 s) is the service day's.
    fn with_buses(mut self, city: &City, section: &MobilitySection, scenario_path: &Path) -> InputResult<Self> {
        let Some(params) = &section.transit else { return Ok(self) };
        let (timetable, source) = match &city.gtfs_feed {
            Some(feed_path) => {
                let feed = crate::import::gtfs::Feed::read(feed_path)?;
                (feed.timetable(params.date.as_deref(), scenario_path, "key mobility.transit.date")?, feed_path.clone())
            }
            None if !city.bus_routes.is_empty() => {
                let timetable = params
                    .osm_service
                    .timetable(&city.bus_routes)
                    .map_err(|(key, m)| InputError::new(scenario_path, format!("key mobility.transit.{key}"), m))?;
                (timetable, scenario_path.to_path_buf())
            }
            None => {
                return Err(InputError::new(
                    scenario_path,
                    "key mobility.transit",
                    "buses need a timetable: set [city] gtfs, or a city whose OpenStreetMap data maps bus routes",
                ))
            }
        };
        let service = super::transit::build(city, &timetable, params, 0.0);
        for (k, run) in service.runs.iter().enumerate() {
            let trip = run.trip(BUS_TRIP_ID_BASE + k as u64, BUS_CLASS);
            self.traffic.add_trip_with_stops(trip, run.holds.clone()).map_err(|e| {
                InputError::new(&source, format!("trip {}", run.trip_id), format!("cannot be driven: {e}"))
            })?;
        }
        let riders = Riders::new(&service, &city.roads, params, city.defaults.walk_speed_mps);
        self.buses =
            Some(Buses { service, scheduled: timetable.trips.len(), params: params.clone(), riders, stops_handed: 0 });
        Ok(self)
    }

    /// Closes every link a scenario closure or the flood closes at clock time `t_ms`, re-opens the others.
    fn apply_closures(&mut self, t_ms: u64) {
        let n = self.traffic.graph().links().len();
        let mut closed = self.flooded.clone();
        closed.resize(n, false);
        for c in self.closures.iter().filter(|c| (c.from_ms..c.until_ms).contains(&t_ms)) {
            for l in &c.links {
                closed[l.0 as usize] = true;
            }
        }
        for (k, c) in closed.into_iter().enumerate() {
            self.traffic.set_closed(LinkId(k as u32), c);
        }
    }

    /// Steps the model to clock time `t_end_ms`, taking a vehicle frame at every frame time passed.
    fn run_to(&mut self, t_end_ms: u64, start_of_day_ms: u64, graph: &crate::city::graph::Graph) {
        let clock_ms = |t: &dyn VehicleModel| (t.now_s() * 1000.0).round() as u64;
        while clock_ms(self.traffic.as_ref()) < t_end_ms {
            let run_ms = clock_ms(self.traffic.as_ref()).saturating_sub(start_of_day_ms);
            if run_ms >= self.next_frame_ms {
                self.frames.push(self.frame(run_ms, graph));
                self.next_frame_ms = run_ms - run_ms % self.frame_interval_ms + self.frame_interval_ms;
            }
            self.traffic.step();
            self.arrivals.forecast(self.traffic.as_ref());
        }
    }

    /// Every vehicle's position on its lane now.
    fn frame(&self, t_ms: u64, graph: &crate::city::graph::Graph) -> VehicleFrame {
        let base = if self.geometry_is_lane0 { 0.0 } else { 0.5 };
        let vehicles = self
            .traffic
            .positions()
            .map(|p| {
                let link = graph.link(p.link);
                let share = (p.pos_m / link.length_m as f64) as f32;
                let (at, dir) = crate::geo::shapes::point_along(&link.geometry, share);
                // Right-hand traffic: lanes to the right of the direction of travel.
                let right = glam::Vec2::new(dir.y, -dir.x) * (p.lane as f32 + base) * LANE_WIDTH_M;
                let xy = at + right;
                VehicleSample {
                    id: p.vehicle,
                    x_m: xy.x,
                    y_m: xy.y,
                    standing: p.standing_s > 0.0,
                    bus: self.buses.is_some() && p.class == BUS_CLASS,
                }
            })
            .collect();
        VehicleFrame { t_ms, vehicles }
    }
}

/// One road link's row of the link-volume outputs.
#[derive(Serialize)]
struct LinkVolume<'a> {
    /// Index of the link in the road graph.
    link: u32,
    /// The OSM way (or other source feature) it was made from.
    source_id: i64,
    /// Street name (empty when untagged).
    name: &'a str,
    /// Road class.
    class: WayClass,
    /// Lanes in its direction.
    lanes: u8,
    /// Length (m).
    length_m: f32,
    /// Speed limit (km/h).
    speed_limit_kmh: f64,
    /// Vehicles that entered the link over the run (buses included).
    vehicles: u32,
}

impl TrafficState {
    /// Every road link's row, in link order.
    fn link_volumes(&self) -> impl Iterator<Item = LinkVolume<'_>> {
        self.traffic.graph().links().iter().zip(self.traffic.link_entries()).enumerate().map(|(k, (l, &vehicles))| {
            LinkVolume {
                link: k as u32,
                source_id: l.source_id,
                name: l.name.as_deref().unwrap_or(""),
                class: l.class,
                lanes: l.lanes,
                length_m: l.length_m,
                // To 0.1 km/h: the limits are whole km/h (or mph) stored in m/s.
                speed_limit_kmh: (l.speed_mps as f64 * 36.0).round() / 10.0,
                vehicles,
            }
        })
    }

    /// `link_volumes.csv`: every road link with the vehicles that entered it over the run
    /// (`link,source_id,name,class,lanes,length_m,speed_limit_kmh,vehicles`).
    pub fn link_volumes_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in self.link_volumes() {
            // Writing into memory cannot fail; a row that could not be serialised would be a bug.
            let _ = w.serialize(row);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// `link_volumes.geojson`: the links vehicles used, as lines in longitude/latitude with the columns
    /// of [`Self::link_volumes_csv`], for QGIS; `None` on a SUMO network, whose coordinates are not
    /// georeferenced here.
    pub fn link_volumes_geojson(&self, city: &City) -> Option<serde_json::Value> {
        if self.geometry_is_lane0 {
            return None;
        }
        let graph = self.traffic.graph();
        let features: Vec<serde_json::Value> = self
            .link_volumes()
            .filter(|v| v.vehicles > 0)
            // A link whose geometry does not project (outside the frame's domain) is left out.
            .filter_map(|v| {
                let line: Vec<[f64; 2]> = graph
                    .link(LinkId(v.link))
                    .geometry
                    .iter()
                    .filter_map(|p| city.frame.to_lon_lat(p.x as f64, p.y as f64).ok())
                    .map(|(lon, lat)| [lon, lat])
                    .collect();
                (line.len() >= 2).then(|| {
                    serde_json::json!({
                        "type": "Feature",
                        "geometry": {"type": "LineString", "coordinates": line},
                        "properties": v,
                    })
                })
            })
            .collect();
        Some(serde_json::json!({"type": "FeatureCollection", "features": features}))
    }
}

/// Forecasts, at every step of the vehicle model, of when the next moving vehicle reaches the end of each
/// watched road link: its distance to the end over its current speed. Vehicles standing (queued, yielding)
/// are not counted. Another domain reads them through the coupling; nothing is forecast until links are
/// watched.
#[derive(Clone, Debug, Default)]
pub struct ArrivalWatch {
    /// The watched slot of each road link (`u32::MAX`: not watched).
    slot_of: Vec<u32>,
    slots: usize,
    /// Forecasts, oldest first: the model's clock time (s) and, per slot, the clock time (s) at which the
    /// next moving vehicle reaches the link's end (infinite: none on the link).
    forecasts: std::collections::VecDeque<(f64, Vec<f64>)>,
}

impl ArrivalWatch {
    /// Watches `links` (in this order: slot k is `links[k]`) of a graph with `link_count` links.
    pub fn watch(&mut self, links: &[LinkId], link_count: usize) {
        self.slot_of = vec![u32::MAX; link_count];
        for (k, l) in links.iter().enumerate() {
            self.slot_of[l.0 as usize] = k as u32;
        }
        self.slots = links.len();
        self.forecasts.clear();
    }

    /// Adds the forecast of the model's state now.
    fn forecast(&mut self, model: &dyn VehicleModel) {
        if self.slots == 0 {
            return;
        }
        let now = model.now_s();
        let graph = model.graph();
        let mut arrive = vec![f64::INFINITY; self.slots];
        for p in model.positions() {
            let slot = self.slot_of.get(p.link.0 as usize).copied().unwrap_or(u32::MAX);
            if slot == u32::MAX || p.standing_s > 0.0 || p.speed_mps <= 0.0 {
                continue;
            }
            let left_m = (graph.link(p.link).length_m as f64 - p.pos_m).max(0.0);
            let at = &mut arrive[slot as usize];
            *at = at.min(now + left_m / p.speed_mps);
        }
        self.forecasts.push_back((now, arrive));
    }

    /// The latest forecast made at or before clock time `t_s` (s), dropping the ones before it; `None` when
    /// there is none yet.
    pub fn latest_at(&mut self, t_s: f64) -> Option<&[f64]> {
        while self.forecasts.len() > 1 && self.forecasts[1].0 <= t_s {
            self.forecasts.pop_front();
        }
        self.forecasts.front().filter(|f| f.0 <= t_s).map(|f| f.1.as_slice())
    }
}

/// The vehicle model's systems, for ordering the coupling rules before them.
#[derive(SystemSet, Clone, Debug, PartialEq, Eq, Hash)]
pub enum TrafficSystems {
    /// Persons' departures, the model's steps, arrivals.
    Advance,
}

/// The plugin: persons (if the demand is the population), the vehicle model's tick, observers and KPIs.
pub struct VehicleMobilityPlugin;

impl Plugin for VehicleMobilityPlugin {
    fn build(&self, app: &mut App) {
        // The domain ticks at the population's step; the model takes its own steps within each tick.
        let settings = app.world().resource::<teleport::TeleportSettings>().clone();
        let step_ms = settings.params.step_ms().unwrap_or(10_000);
        let start_s = {
            let clock = app.world().resource::<SimClock>();
            clock.start_of_day_ms as f64 / 1000.0
        };
        app.world_mut().resource_mut::<TrafficState>().traffic.set_start(start_s);
        let population_demand = matches!(app.world().resource::<TrafficState>().demand, Demand::Population { .. });
        if population_demand {
            let entities = teleport::spawn_persons(app, &settings);
            if let Demand::Population { persons, .. } = &mut app.world_mut().resource_mut::<TrafficState>().demand {
                *persons = entities;
            }
            app.add_systems(Observe, teleport::sample_states);
            app.add_systems(Finalize, teleport::trip_kpis);
        }
        register_domain(app, DOMAIN, step_ms);
        app.add_systems(crate::sim::DomainTick(DOMAIN), advance_traffic.in_set(TrafficSystems::Advance));
        app.add_systems(Observe, sample_traffic);
        app.add_systems(Finalize, traffic_kpis);
    }
}

type PersonQuery<'w, 's> =
    Query<'w, 's, (&'static PersonId, &'static Itinerary, &'static mut PersonState, &'static mut TripLog)>;

/// One tick: persons' departures into the model, the model's steps (with vehicle frames), arrivals back to
/// the persons.
fn advance_traffic(
    clock: Res<SimClock>,
    city: Res<CityRes>,
    mut state: ResMut<TrafficState>,
    mut persons: PersonQuery,
) {
    let t_end = clock.start_of_day_ms + clock.now_ms + clock.step_ms;
    state.apply_closures(clock.start_of_day_ms + clock.now_ms);
    let city = &city.0;
    if matches!(state.demand, Demand::Population { .. }) {
        person_events(&mut state, city, t_end, &mut persons, Arrived::Nobody);
    }
    state.run_to(t_end, clock.start_of_day_ms, &city.roads);
    let finished: Vec<TripResult> = state.traffic.finished()[state.handed..].to_vec();
    state.handed = state.traffic.finished().len();
    let riders = state.passengers_on_and_off(&finished, t_end);
    if matches!(state.demand, Demand::Population { .. }) {
        person_events(&mut state, city, t_end, &mut persons, Arrived::Vehicles(&finished));
        person_events(&mut state, city, t_end, &mut persons, Arrived::Riders(&riders));
    }
}

impl TrafficState {
    /// Passengers get off and on at the stops the buses made in the model's last steps, off at the end of
    /// runs that finished (`finished`), and give up waiting by clock time `t_end_ms`; the trips by bus that
    /// ended, by person id.
    fn passengers_on_and_off(&mut self, finished: &[TripResult], t_end_ms: u64) -> Vec<RiderArrival> {
        let Some(buses) = &mut self.buses else { return Vec::new() };
        let events = &self.traffic.stop_events()[buses.stops_handed..];
        buses.stops_handed += events.len();
        for e in events.iter().filter(|e| is_bus_trip(e.trip_id)) {
            buses.riders.on_stop((e.trip_id - BUS_TRIP_ID_BASE) as u32, e);
        }
        for r in finished.iter().filter(|r| is_bus_trip(r.id)) {
            buses.riders.on_run_end((r.id - BUS_TRIP_ID_BASE) as u32, r.arrive_s);
        }
        let now_s = t_end_ms as f64 / 1000.0;
        if buses.riders.someone_gives_up_by(now_s) {
            // Stops with a bus standing on their link: it may have come in time, and reports the stop when it
            // leaves.
            let mut standing = vec![false; buses.riders.stop_count()];
            for p in self.traffic.positions().filter(|p| p.class == BUS_CLASS && p.standing_s > 0.0) {
                if let Some(s) = buses.riders.stop_at(p.link) {
                    standing[s as usize] = true;
                }
            }
            buses.riders.give_up_waiting(now_s, |s| standing[s as usize]);
        }
        buses.riders.take_arrivals()
    }
}

/// Whose trips ended, for [`person_events`].
#[derive(Clone, Copy)]
enum Arrived<'a> {
    /// Nobody's: every person's departures.
    Nobody,
    /// Those of the vehicles that finished.
    Vehicles(&'a [TripResult]),
    /// Those of the passengers who reached the door.
    Riders(&'a [RiderArrival]),
}

/// What a person reached when a carrier hands them back.
#[derive(Clone, Copy)]
enum Reached {
    /// Nothing yet (a person's own events).
    Nothing,
    /// The road node by their destination, at the end of trip `trip` of their itinerary (s); the walk to
    /// the door follows.
    Road { trip: usize, arrive_s: f64 },
    /// The door (clock ms), after a trip of `length_m` (m) made by `mode` in the end.
    Door { arrive_ms: u64, length_m: f32, mode: Mode },
}

/// Persons' events before `t_end`: every person's ([`Arrived::Nobody`]), or — after the model's steps —
/// those of the persons whose vehicles arrived, who reach the door (plus the walk from the road), or whose
/// trips by bus ended, and carry on.
/// A car trip that starts gets its route over the open links from the road node nearest the origin to the
/// one nearest the destination (around closed links when there is a way) and departs after the walk to the
/// road; only a trip the road graph cannot connect at all is not driven (it stays a free-flow trip). The
/// car trip of a person without a car goes by bus when the timetable gets them there sooner than walking
/// ([`Riders::plan`]), else on foot.
fn person_events(state: &mut TrafficState, city: &City, t_end: u64, persons: &mut PersonQuery, arrived: Arrived) {
    let TrafficState { traffic, demand, walk_speed_mps, buses, seed, .. } = state;
    let Demand::Population { persons: entities, attach } = demand else { return };
    let walk = *walk_speed_mps as f64;
    let roads = &city.roads;
    let seed = *seed;
    // The router and the closed links are made at the first car departure of the call (most ticks have
    // none, and both cost a pass over every link).
    let mut routing: Option<(Router, Vec<bool>)> = None;
    let mut drive = |traffic: &mut dyn VehicleModel,
                     buses: &mut Option<Buses>,
                     person: u32,
                     k: usize,
                     trip: &PlannedTrip,
                     dep: u64|
     -> LegStart {
        if let Some(b) = buses.as_mut().filter(|b| b.carless(seed, person)) {
            let (from, to) = (city.buildings[trip.from as usize].centroid, city.buildings[trip.to as usize].centroid);
            return b.riders.start_trip(person, from, to, dep as f64 / 1000.0, trip.walk_m);
        }
        let car = LegStart::Carried { mode: Mode::Car, length_m: trip.length_m };
        let (Some((from, access)), Some((to, _))) = (attach[trip.from as usize], attach[trip.to as usize]) else {
            return LegStart::AsPlanned;
        };
        let (router, closed) = routing.get_or_insert_with(|| {
            let closed = (0..roads.links().len()).map(|l| traffic.is_closed(LinkId(l as u32))).collect();
            (Router::new(roads), closed)
        });
        // Around closed links if possible; else the usual route, to wait at the closure (or be teleported
        // after the model's patience, counted) — the trip is never silently made at free flow.
        let open = router.route_avoiding(from, to, Weight::TravelTime, |l| !closed[l.0 as usize]);
        let Some(route) = open.or_else(|| router.route(from, to, Weight::TravelTime)) else {
            return LegStart::AsPlanned;
        };
        let depart_s = dep as f64 / 1000.0 + access as f64 / walk;
        let id = ((person as u64) << TRIP_INDEX_BITS) | k as u64;
        if route.links.is_empty() {
            traffic.record_empty_trip(id, depart_s);
            return car;
        }
        match traffic.add_trip(Trip { id, depart_s, route: route.links, class: 0 }) {
            Ok(()) => car,
            Err(_) => LegStart::AsPlanned,
        }
    };
    // Hands a person their arrival and carries on with their day.
    let mut advance = |traffic: &mut dyn VehicleModel, buses: &mut Option<Buses>, e: Entity, arrival: Reached| {
        let Ok((id, itinerary, mut person, mut log)) = persons.get_mut(e) else { return };
        let arrived = match arrival {
            Reached::Nothing => None,
            Reached::Road { trip, arrive_s } => {
                let to = itinerary.0[trip].to;
                let egress = attach[to as usize].map_or(0.0, |(_, d)| d as f64 / walk);
                Some(((arrive_s + egress) * 1000.0).round() as u64)
            }
            Reached::Door { arrive_ms, length_m, mode } => {
                person.length_m = length_m;
                person.mode = mode;
                Some(arrive_ms)
            }
        };
        if let (Some(arrive), Some((dep, _))) = (arrived, person.travelling) {
            person.travelling = Some((dep, arrive.max(dep)));
        }
        let pid = id.0;
        teleport::advance_with(&itinerary.0, &mut person, &mut log.0, t_end, |k, trip, dep| {
            drive(traffic, buses, pid, k, trip, dep)
        });
    };
    match arrived {
        Arrived::Nobody => entities.iter().for_each(|&e| advance(traffic.as_mut(), buses, e, Reached::Nothing)),
        Arrived::Vehicles(results) => {
            for r in results.iter().filter(|r| is_person_trip(r.id)) {
                let e = entities[(r.id >> TRIP_INDEX_BITS) as usize];
                let trip = (r.id & ((1 << TRIP_INDEX_BITS) - 1)) as usize;
                advance(traffic.as_mut(), buses, e, Reached::Road { trip, arrive_s: r.arrive_s });
            }
        }
        Arrived::Riders(done) => {
            for r in done {
                let arrive_ms = (r.arrive_s * 1000.0).round() as u64;
                let reached = Reached::Door { arrive_ms, length_m: r.length_m, mode: r.mode };
                advance(traffic.as_mut(), buses, entities[r.person as usize], reached);
            }
        }
    }
}

/// Time series: vehicles on the network and waiting to enter, trips finished.
fn sample_traffic(clock: Res<SimClock>, mut series: ResMut<TimeSeries>, state: Res<TrafficState>) {
    let now = clock.now_ms;
    if !series.due(now, clock.end_ms) {
        return;
    }
    series.record(now, "vehicles_on_network", state.traffic.on_network() as f64);
    series.record(now, "vehicles_waiting_to_enter", state.traffic.waiting_to_enter() as f64);
    series.record(now, "vehicle_trips_finished", state.traffic.finished().len() as f64);
}

/// Bus KPIs: runs scheduled, mapped and completed, schedule adherence at the stops, bus-km.
fn bus_kpis(kpis: &mut Kpis, t: &dyn VehicleModel, buses: &Buses) {
    let d = DOMAIN;
    let service = &buses.service;
    let done: Vec<&TripResult> = t.finished().iter().filter(|r| is_bus_trip(r.id)).collect();
    kpis.set(d, "bus_trips_scheduled", buses.scheduled as f64);
    kpis.set(d, "bus_trips_not_mapped", service.trips_not_mapped as f64);
    kpis.set(d, "bus_stops_without_road", service.stops_without_road as f64);
    kpis.set(d, "bus_trips_run", service.runs.len() as f64);
    kpis.set(d, "bus_trips_completed", done.iter().filter(|r| !r.teleported).count() as f64);
    kpis.set(d, "bus_trips_teleported", done.iter().filter(|r| r.teleported).count() as f64);
    kpis.set(d, "bus_stops_made", t.stop_events().len() as f64);
    kpis.set(d, "bus_stops_skipped", t.stats().stops_skipped as f64);
    kpis.set(d, "bus_stop_calls_merged", service.calls_merged as f64);
    let (mean, p95, on_time) =
        super::transit::adherence(t.stop_events(), &service.runs, BUS_TRIP_ID_BASE, &buses.params);
    kpis.set(d, "bus_mean_delay_s", mean);
    kpis.set(d, "bus_p95_delay_s", p95);
    kpis.set(d, "bus_on_time_share", on_time);
    kpis.set(d, "bus_km_driven", done.iter().map(|r| r.length_m).sum::<f64>() / 1000.0);
    let p = &buses.riders.stats;
    kpis.set(d, "bus_journeys_started", p.journeys as f64);
    kpis.set(d, "bus_boardings", p.boardings as f64);
    kpis.set(d, "bus_mean_wait_s", if p.boardings == 0 { 0.0 } else { p.wait_s / p.boardings as f64 });
    kpis.set(d, "bus_passengers_left_behind", p.left_behind as f64);
    kpis.set(d, "bus_passengers_gave_up", p.gave_up as f64);
    kpis.set(d, "bus_passengers_overcarried", p.overcarried as f64);
    kpis.set(d, "bus_passenger_km_ridden", p.passenger_km);
    kpis.set(d, "carless_trips_walked", p.walked_instead as f64);
    let (waiting, aboard) = buses.riders.under_way();
    kpis.set(d, "bus_passengers_under_way_at_end", (waiting + aboard) as f64);
    let km = done.iter().map(|r| r.length_m).sum::<f64>() / 1000.0;
    kpis.set(d, "bus_mean_load", if km > 0.0 { p.passenger_km / km } else { 0.0 });
}

/// Vehicle KPIs: trips completed, teleported and stuck, trip times, delay against free flow, vehicle-km,
/// CO₂, the busiest links.
fn traffic_kpis(mut kpis: ResMut<Kpis>, state: Res<TrafficState>) {
    let t = &state.traffic;
    let d = DOMAIN;
    if let Some(buses) = &state.buses {
        bus_kpis(&mut kpis, t.as_ref(), buses);
    }
    if let Some((drawn, left_out)) = state.od_trips {
        kpis.set(d, "od_trips_drawn", drawn as f64);
        kpis.set(d, "od_trips_left_out", left_out as f64);
        let done = t.finished().iter().filter(|r| is_od_trip(r.id));
        kpis.set(d, "od_trips_completed", done.filter(|r| !r.teleported).count() as f64);
    }
    if let Some(listed) = state.listed_trips {
        kpis.set(d, "listed_trips", listed as f64);
        let done: Vec<&TripResult> = t.finished().iter().filter(|r| is_listed_trip(r.id)).collect();
        kpis.set(d, "listed_trips_completed", done.iter().filter(|r| !r.teleported).count() as f64);
        kpis.set(d, "listed_trips_teleported", done.iter().filter(|r| r.teleported).count() as f64);
    }
    // Cars: every vehicle trip but the buses'.
    let done: Vec<TripResult> = t.finished().iter().filter(|r| !is_bus_trip(r.id)).copied().collect();
    let completed = done.iter().filter(|r| !r.teleported).count();
    kpis.set(d, "vehicle_trips_completed", completed as f64);
    kpis.set(d, "vehicle_trips_teleported", done.iter().filter(|r| r.teleported).count() as f64);
    kpis.set(d, "vehicle_trips_stuck_at_end", (t.on_network() + t.waiting_to_enter()) as f64);
    kpis.set(d, "vehicle_trips_not_started", t.not_yet_departed() as f64);
    let mut times: Vec<f64> = done.iter().map(|r| r.arrive_s - r.depart_s).collect();
    times.sort_by(f64::total_cmp);
    let mean = if times.is_empty() { 0.0 } else { times.iter().sum::<f64>() / times.len() as f64 };
    kpis.set(d, "mean_vehicle_trip_time_s", mean);
    kpis.set(d, "p95_vehicle_trip_time_s", teleport::percentile(&times, 0.95));
    let delay_h = done.iter().map(|r| (r.arrive_s - r.depart_s - r.free_flow_s).max(0.0)).sum::<f64>() / 3600.0;
    kpis.set(d, "total_delay_veh_h", delay_h);
    let km = done.iter().map(|r| r.length_m).sum::<f64>() / 1000.0;
    kpis.set(d, "vehicle_km_driven", km);
    kpis.set(d, "co2_t", km * state.co2_kg_per_km / 1000.0);
    kpis.set(d, "lane_changes", t.stats().lane_changes as f64);
    kpis.set(d, "reroutes", t.stats().reroutes as f64);
    kpis.set(d, "reroutes_for_travel_time", t.stats().reroutes_for_travel_time as f64);
    kpis.set(d, "vehicles_caught_on_closed_links", t.stats().caught_on_closed_links as f64);
    let entries = t.link_entries();
    kpis.set(d, "max_link_volume_veh", entries.iter().copied().max().unwrap_or(0) as f64);
    kpis.set(d, "links_used", entries.iter().filter(|&&e| e > 0).count() as f64);
    if let Demand::Sumo { ids } = &state.demand {
        kpis.set(d, "sumo_vehicles", ids.len() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobility::junctions::tests::cross;

    #[test]
    fn arrivals_are_forecast_for_the_watched_links_from_each_moving_vehicle() {
        let g = Arc::new(cross(300.0, false));
        let junctions = Junctions::generate(&g, &SignalParams::default());
        // From the west arm into the centre, then east.
        let west_in = (0..g.links().len()).map(|k| LinkId(k as u32)).find(|&l| g.link(l).geometry[0].x < -1.0).unwrap();
        let east_out = g.out_links(NodeId(0)).iter().copied().find(|&l| g.link(l).geometry[1].x > 1.0).unwrap();
        let trip = Trip { id: 0, depart_s: 0.0, route: vec![west_in, east_out], class: 0 };
        let mut model =
            Traffic::new(g.clone(), junctions, vec![DriverParams::CAR], MicroParams::default(), vec![trip], 0.0)
                .unwrap();
        let mut watch = ArrivalWatch::default();
        watch.watch(&[east_out, west_in], g.links().len());
        assert_eq!(watch.latest_at(1e9), None, "nothing forecast yet");
        for _ in 0..10 {
            model.step();
            watch.forecast(&model);
        }
        let p = model.positions().next().expect("on the network");
        assert_eq!(p.link, west_in);
        let now = model.now_s();
        let expected = now + (g.link(west_in).length_m as f64 - p.pos_m) / p.speed_mps;
        let latest = watch.latest_at(now).unwrap().to_vec();
        assert_eq!(latest[1], expected);
        assert_eq!(latest[0], f64::INFINITY, "no vehicle on the link out");
        // Only the latest forecast at or before a time is kept; earlier ones are dropped.
        assert_eq!(watch.forecasts.len(), 1);
        assert_eq!(watch.latest_at(now - 100.0), None);
    }
}
