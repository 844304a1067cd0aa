//! The robot domain in the World: the `[robots]` scenario section, [`RobotsState`] (the sidewalk crowd with
//! the fleet's robots and wandering pedestrians, and the fleet), [`RobotsPlugin`] (one crowd step per tick)
//! and the robot KPIs. Closed footpaths come from the coupling (`crate::coupling`) in
//! [`RobotsState::closed`].

use super::fleet::{CostParams, Depot, Fleet, FleetParams, FleetStats, RobotParams, RobotState};
use super::orders::{household_orders, read_orders_csv, OrderParams};
use crate::city::graph::NodeId;
use crate::city::routing::{Router, Weight};
use crate::city::City;
use crate::crowd::wander::Wanderers;
use crate::crowd::{AgentId, AgentSpec, AgentStatus, Crowd, CrowdParams, SceneParams, SidewalkScene};
use crate::error::{InputError, InputResult};
use crate::population::Population;
use crate::scenario::duration_ms;
use crate::sim::{register_domain, CityRes, DomainTick, Finalize, Kpis, SimClock};
use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use glam::Vec2;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// The domain's name (its tick, KPIs).
pub const DOMAIN: &str = "robots";

/// `[robots]`: a delivery-robot fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotsSection {
    /// Depots: `{ at = [x, y] (m, local frame), robots = n }`.
    pub depots: Vec<Depot>,
    /// The robots (speed, payload, battery…).
    #[serde(default)]
    pub robot: RobotParams,
    /// Costs for the cost per parcel.
    #[serde(default)]
    pub costs: CostParams,
    /// Household orders (used when no `orders_csv` is given).
    #[serde(default)]
    pub orders: OrderParams,
    /// Orders from a file instead (`time_s,building[,due_s]`), relative to the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders_csv: Option<String>,
    /// Time between dispatch rounds: `"5min"`.
    #[serde(default = "default_dispatch_interval")]
    pub dispatch_interval: String,
    /// Robots one remote operator watches: 4.
    #[serde(default = "default_robots_per_operator")]
    pub robots_per_operator: f64,
    /// Pedestrians walking the sidewalks (random walks) whom the robots meet: 0.
    #[serde(default)]
    pub pedestrians: u32,
    /// The crowd model's step: `"0.25s"`.
    #[serde(default = "default_step")]
    pub step: String,
    /// A pedestrian standing still this long squeezes through the other pedestrians until clear:
    /// `"300s"` ([`CrowdParams::jam_time_s`], SUMO's `pedestrian.striping.jamtime` default).
    #[serde(default = "default_pedestrian_jam_time")]
    pub pedestrian_jam_time: String,
}

fn default_dispatch_interval() -> String {
    "5min".into()
}
fn default_robots_per_operator() -> f64 {
    4.0
}
fn default_step() -> String {
    "0.25s".into()
}
/// The crowd model's jam time, as a duration (one source for the number: [`CrowdParams`]).
fn default_pedestrian_jam_time() -> String {
    format!("{}s", CrowdParams::default().jam_time_s)
}

impl RobotsSection {
    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        use crate::scenario::check::{non_negative, positive, share};
        if self.depots.is_empty() {
            return Err(("depots".into(), "a fleet needs at least one depot".into()));
        }
        for (k, d) in self.depots.iter().enumerate() {
            if d.robots == 0 {
                return Err((format!("depots[{k}].robots"), "must be at least 1".into()));
            }
        }
        let r = &self.robot;
        let o = &self.orders;
        let checks = [
            positive("robot.speed_mps", r.speed_mps as f64),
            positive("robot.payload_parcels", r.payload_parcels as f64),
            positive("robot.battery_wh", r.battery_wh as f64),
            positive("robot.consumption_wh_per_km", r.consumption_wh_per_km as f64),
            positive("robot.charger_kw", r.charger_kw as f64),
            share("robot.reserve_share", r.reserve_share as f64),
            share("robot.dispatch_share", r.dispatch_share as f64),
            non_negative("robot.handover_s", r.handover_s),
            positive("robot.replan_after_s", r.replan_after_s),
            non_negative("costs.robot_capex", self.costs.robot_capex),
            positive("costs.robot_life_years", self.costs.robot_life_years),
            non_negative("costs.operator_per_h", self.costs.operator_per_h),
            non_negative("costs.energy_per_kwh", self.costs.energy_per_kwh),
            non_negative("orders.rate_per_household_day", o.rate_per_household_day),
            positive("orders.household_size", o.household_size),
            positive("orders.promise_s", o.promise_s),
            positive("robots_per_operator", self.robots_per_operator),
        ];
        for c in checks {
            c.map_err(|(key, msg)| (key.to_string(), msg))?;
        }
        if r.reserve_share >= r.dispatch_share {
            return Err(("robot.reserve_share".into(), "must be below robot.dispatch_share".into()));
        }
        for (key, text) in [
            ("dispatch_interval", &self.dispatch_interval),
            ("step", &self.step),
            ("pedestrian_jam_time", &self.pedestrian_jam_time),
        ] {
            let ms = duration_ms(text).map_err(|e| (key.to_string(), e))?;
            if ms == 0 {
                return Err((key.into(), "must be longer than zero".into()));
            }
        }
        let step_ms = duration_ms(&self.step).unwrap_or(0);
        if step_ms > MAX_STEP_MS {
            return Err(("step".into(), format!("{step_ms} ms: the crowd model takes steps of at most 0.5 s")));
        }
        Ok(())
    }
}

/// Longest crowd step (ms): the design gives robots 0.1–0.5 s.
const MAX_STEP_MS: u64 = 500;

/// What a sidewalk agent is doing, as the replay shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SidewalkState {
    /// A robot of the fleet, in this state.
    Robot(RobotState),
    /// A robot plugged in at a depot whose chargers have no supply (a grid outage).
    RobotWithoutSupply,
    /// A robot on its way, waiting on a kerb for a light or a gap in traffic.
    RobotWaitingToCross,
    /// A pedestrian waiting on a kerb for a light or a gap in traffic.
    PedestrianWaitingToCross,
    /// A pedestrian walking.
    PedestrianWalking,
    /// A pedestrian standing (held up by others, or waiting to step onto the sidewalk).
    PedestrianStanding,
}

/// One sidewalk agent in a frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SidewalkAgent {
    /// The crowd agent's id (stable over the run).
    pub id: u32,
    /// What it is doing.
    pub state: SidewalkState,
    /// Position (m, local frame).
    pub pos: Vec2,
}

/// The sidewalk agents at one time, for the replay.
#[derive(Clone, Debug, PartialEq)]
pub struct SidewalkFrame {
    /// Time (ms since the run's start).
    pub t_ms: u64,
    /// Robots (all of them, at their depots too) and the pedestrians on the sidewalk, by id.
    pub agents: Vec<SidewalkAgent>,
}

/// The robot domain's state.
#[derive(Resource)]
pub struct RobotsState {
    /// Robots and pedestrians on the sidewalks.
    pub crowd: Crowd,
    /// The fleet.
    pub fleet: Fleet,
    /// Footpath links closed now (written by the coupling).
    pub closed: Vec<bool>,
    wanderers: Wanderers,
    /// Wandering pedestrians: crowd agent, walks done.
    walkers: Vec<(AgentId, u64)>,
    step_ms: u64,
    /// Frames taken since the replay observer last took them (every `[output] sidewalk_frame_interval`).
    pub frames: Vec<SidewalkFrame>,
    frame_interval_ms: u64,
    next_frame_ms: u64,
}

impl RobotsState {
    /// The fleet and its crowd for `city`; orders from the population's households or the section's file;
    /// a replay frame every `frame_interval_ms`.
    pub fn new(
        city: &City,
        population: &Population,
        section: &RobotsSection,
        seed: u64,
        start_s: f64,
        frame_interval_ms: u64,
        scenario_path: &Path,
    ) -> InputResult<RobotsState> {
        let orders = match &section.orders_csv {
            Some(file) => {
                let path = scenario_path.parent().unwrap_or(Path::new(".")).join(file);
                read_orders_csv(&path, city.buildings.len(), section.orders.promise_s)?
            }
            None => household_orders(&population.residents, &section.orders, seed),
        };
        let step_ms = duration_ms(&section.step).map_err(|e| InputError::new(scenario_path, "key robots.step", e))?;
        let interval_ms = duration_ms(&section.dispatch_interval)
            .map_err(|e| InputError::new(scenario_path, "key robots.dispatch_interval", e))?;
        let footprints = city.buildings.iter().map(|b| b.footprint.clone()).collect();
        let scene = Arc::new(SidewalkScene::new(footprints, &city.footpaths, &SceneParams::default()));
        let jam_ms = duration_ms(&section.pedestrian_jam_time)
            .map_err(|e| InputError::new(scenario_path, "key robots.pedestrian_jam_time", e))?;
        let params = CrowdParams {
            step_s: step_ms as f32 / 1000.0,
            jam_time_s: jam_ms as f32 / 1000.0,
            ..CrowdParams::default()
        };
        let mut crowd = Crowd::new(scene, params);
        crowd.set_parallel_chunks(crate::sim::pool_threads());
        let fleet_params = FleetParams {
            depots: section.depots.clone(),
            robot: section.robot.clone(),
            costs: section.costs.clone(),
            dispatch_interval_s: interval_ms as f64 / 1000.0,
            robots_per_operator: section.robots_per_operator,
            ..FleetParams::default()
        };
        let fleet = Fleet::new(city, &mut crowd, fleet_params, orders, start_s)
            .map_err(|e| InputError::new(scenario_path, "key robots", e.to_string()))?;
        let wanderers = Wanderers::new(&city.footpaths, seed);
        let mut router = Router::new(&city.footpaths);
        let mut walkers = Vec::new();
        for k in 0..section.pedestrians {
            let id = crowd.add(AgentSpec::pedestrian(wanderers.speed_mps(k)));
            let route = wanderers
                .route_with(k, 0, wanderers.start(k), |a, b| router.route(a, b, Weight::Length).map(|r| r.links));
            if let Some(route) = route {
                crowd.send(id, route).expect("a route with links");
            }
            walkers.push((id, 0));
        }
        Ok(RobotsState {
            crowd,
            fleet,
            closed: vec![false; city.footpaths.links().len()],
            wanderers,
            walkers,
            step_ms,
            frames: Vec::new(),
            frame_interval_ms: frame_interval_ms.max(1),
            next_frame_ms: 0,
        })
    }

    /// The robots and the pedestrians on the sidewalk now, at `t_ms` (ms since the run's start).
    pub fn frame(&self, t_ms: u64) -> SidewalkFrame {
        let crowd = &self.crowd;
        let mut agents: Vec<SidewalkAgent> = self
            .fleet
            .robots()
            .map(|(id, state, depot, _)| SidewalkAgent {
                id: id.0,
                state: match state {
                    RobotState::Charging if !self.fleet.depot_supplied(depot) => SidewalkState::RobotWithoutSupply,
                    _ if crowd.waiting_to_cross(id) => SidewalkState::RobotWaitingToCross,
                    s => SidewalkState::Robot(s),
                },
                pos: crowd.position(id),
            })
            .collect();
        for &(id, _) in &self.walkers {
            let state = match crowd.status(id) {
                AgentStatus::Walking if crowd.waiting_to_cross(id) => SidewalkState::PedestrianWaitingToCross,
                AgentStatus::Walking if crowd.still_s(id) > 0.0 => SidewalkState::PedestrianStanding,
                AgentStatus::Walking => SidewalkState::PedestrianWalking,
                AgentStatus::Entering => SidewalkState::PedestrianStanding,
                AgentStatus::Idle | AgentStatus::Arrived => continue,
            };
            agents.push(SidewalkAgent { id: id.0, state, pos: crowd.position(id) });
        }
        agents.sort_by_key(|a| a.id);
        SidewalkFrame { t_ms, agents }
    }

    /// One crowd step ending at `clock_s` (s since midnight): the fleet's events, the pedestrians' next
    /// walks.
    fn step(&mut self, city: &City, clock_s: f64) {
        let dt = self.step_ms as f64 / 1000.0;
        let arrived = self.crowd.step();
        let mut router: Option<Router> = None;
        for &id in &arrived {
            let Some(k) = self.walkers.iter().position(|w| w.0 == id) else { continue };
            self.walkers[k].1 += 1;
            let here: NodeId = city.footpaths.link(*self.crowd.route(id).last().expect("walked a route")).to;
            let router = router.get_or_insert_with(|| Router::new(&city.footpaths));
            let closed = &self.closed;
            let route = self.wanderers.route_with(k as u32, self.walkers[k].1, here, |a, b| {
                router.route_avoiding(a, b, Weight::Length, |l| !closed[l.0 as usize]).map(|r| r.links)
            });
            if let Some(route) = route {
                self.crowd.send(id, route).expect("a route with links");
            }
        }
        self.fleet.set_closed(&self.closed);
        self.fleet.advance(city, &mut self.crowd, &arrived, clock_s, dt);
    }
}

/// The robot domain's systems, for ordering the coupling rules before them.
#[derive(SystemSet, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RobotsSystems {
    /// The crowd's step and the fleet's events.
    Advance,
}

/// The plugin: the domain's tick at the crowd's step, and its KPIs.
pub struct RobotsPlugin;

impl Plugin for RobotsPlugin {
    fn build(&self, app: &mut App) {
        let step_ms = app.world().resource::<RobotsState>().step_ms;
        register_domain(app, DOMAIN, step_ms);
        app.add_systems(DomainTick(DOMAIN), advance_robots.in_set(RobotsSystems::Advance));
        app.add_systems(Finalize, robot_kpis);
    }
}

fn advance_robots(clock: Res<SimClock>, city: Res<CityRes>, mut state: ResMut<RobotsState>) {
    if clock.now_ms >= state.next_frame_ms {
        let frame = state.frame(clock.now_ms);
        state.frames.push(frame);
        state.next_frame_ms = clock.now_ms - clock.now_ms % state.frame_interval_ms + state.frame_interval_ms;
    }
    let end_ms = clock.start_of_day_ms + clock.now_ms + clock.step_ms;
    state.step(&city.0, end_ms as f64 / 1000.0);
}

fn robot_kpis(state: Res<RobotsState>, mut kpis: ResMut<Kpis>) {
    let d = DOMAIN;
    let s: FleetStats = state.fleet.stats();
    let c = state.crowd.stats();
    kpis.set(d, "robots", s.robots as f64);
    kpis.set(d, "orders_placed", s.orders as f64);
    kpis.set(d, "parcels_delivered", s.delivered as f64);
    kpis.set(d, "on_time_share", if s.delivered > 0 { s.on_time as f64 / s.delivered as f64 } else { 0.0 });
    kpis.set(d, "mean_delivery_time_s", s.mean_delivery_s);
    kpis.set(d, "failed_deliveries", s.failed as f64);
    kpis.set(d, "failed_deliveries_flooding", s.failed_flooded as f64);
    kpis.set(d, "parcels_not_delivered_at_end", (s.orders - s.delivered - s.failed) as f64);
    kpis.set(d, "robot_km", s.robot_km);
    kpis.set(d, "energy_used_kwh", s.used_kwh);
    kpis.set(d, "energy_charged_kwh", s.charged_kwh);
    kpis.set(d, "robot_hours_without_supply", s.robot_hours_without_supply);
    kpis.set(d, "energy_per_parcel_kwh", s.kwh_per_parcel);
    kpis.set(d, "cost_per_parcel", s.cost_per_parcel);
    kpis.set(d, "operator_hours", s.operator_hours);
    kpis.set(d, "robot_hours_out", s.robot_hours_out);
    kpis.set(d, "close_passes_with_pedestrians", c.close_passes as f64);
    kpis.set(d, "crowd_moves_undone", c.undone_moves as f64);
    kpis.set(d, "pedestrian_jam_squeezes", c.jam_squeezes as f64);
    kpis.set(d, "robot_crossing_waits", c.robot_crossing_waits as f64);
    let mean_wait = |n: u64, secs: f64| if n > 0 { secs / n as f64 } else { 0.0 };
    kpis.set(d, "robot_crossing_wait_mean_s", mean_wait(c.robot_crossing_waits, c.robot_crossing_wait_s));
    kpis.set(d, "crossing_waits", c.crossing_waits as f64);
    kpis.set(d, "crossing_wait_mean_s", mean_wait(c.crossing_waits, c.crossing_wait_s));
    kpis.set(d, "crossings", state.crowd.crossings().len() as f64);
    kpis.set(d, "dispatch_rounds", s.dispatch_rounds as f64);
    kpis.set(d, "replans_when_blocked", s.replans_when_blocked as f64);
}
