//! Sidewalk crowds: pedestrians and delivery robots walking routes on the footpath graph among buildings.
//!
//! Each agent is a disc that follows the walk line of its route ([`scene`]) and avoids the others and the
//! buildings with ORCA ([`orca`], van den Berg et al. 2011). A step of `step_s`:
//!
//! 1. agents waiting to enter the sidewalk (at a door, a depot) enter where no one stands;
//! 2. *plan*, in parallel: every walking agent reads the state at the start of the step (neighbours from a
//!    hashed grid, the nearest `max_neighbours` within `neighbour_range_m`; buildings near its link) and
//!    chooses its velocity; a move that would end closer to a building than the agent's radius is halved
//!    until it does not (or dropped);
//! 3. *resolve*: a move that would end overlapping another agent (closer than the sum of radii, and closer
//!    than they were) is undone, together with its partner, until no such pair is left. Undone moves only
//!    return agents to places that did not overlap, so no agent ever overlaps another, whatever ORCA did;
//!    the count of undone moves says how often ORCA alone was not enough;
//! 4. *commit*, in parallel: positions, waypoints, arrivals.
//!
//! Every phase writes only its own agent from the previous state, so results are bit-identical at any
//! number of threads.

mod neighbours;
pub mod orca;
pub mod scene;
pub mod wander;

use crate::city::graph::LinkId;
use crate::sim::{par_chunks_mut, par_map_ranges};
use glam::Vec2;
use neighbours::CellGrid;
use orca::{Disc, HalfPlane, Solver};
pub use scene::{SceneParams, SceneReport, SidewalkScene};
use serde::Serialize;
use std::sync::Arc;

/// Pedestrian body radius (m): Helbing, Farkas & Vicsek (2000) use 0.25–0.35 m; the smaller value, as
/// Fruin's (1971) body ellipse of 0.61 m × 0.46 m is narrower than it is deep.
pub const PEDESTRIAN_RADIUS_M: f32 = 0.25;
/// A pedestrian's top speed as a multiple of their preferred speed (Helbing, Farkas & Vicsek 2000: 1.3).
pub const PEDESTRIAN_MAX_SPEED_FACTOR: f32 = 1.3;
/// Delivery-robot radius (m): a Starship-class robot is 0.68 m × 0.57 m (manufacturer's published size);
/// the circle around it has a radius of 0.44 m, rounded up.
pub const ROBOT_RADIUS_M: f32 = 0.45;
/// How much of each avoidance a robot takes against a pedestrian, as a weight (pedestrians weigh 1): 3 gives
/// the robot 75 %. Japan's rules for remote-operated delivery robots (Road Traffic Act as amended in 2023)
/// require them not to obstruct pedestrians.
pub const ROBOT_AVOIDANCE_WEIGHT: f32 = 3.0;
/// Movement (m) in a step under which an agent counts as standing still.
const STILL_M: f32 = 0.01;
/// A waypoint the agent has passed (beyond it along the route) counts as reached within this many reach
/// radii: agents pushed sideways need not walk back to it.
const PASSED_REACH_FACTOR: f32 = 3.0;
/// Tolerance (m) in the overlap and clearance tests, for floating-point round-off.
const OVERLAP_TOLERANCE_M: f32 = 1e-4;
/// Smallest neighbour-grid cell (m), for crowds of slow, small agents.
const MIN_CELL_M: f32 = 1.0;
/// Halvings of a move that would end too close to a building before it is dropped.
const BUILDING_HALVINGS: usize = 3;

/// What kind of agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// A person on foot.
    Pedestrian,
    /// A sidewalk delivery robot.
    Robot,
}

/// Body and gait of an agent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgentSpec {
    /// Pedestrian or robot.
    pub kind: AgentKind,
    /// Radius of the disc the agent occupies (m).
    pub radius_m: f32,
    /// Preferred speed (m/s).
    pub speed_mps: f32,
    /// Highest speed while avoiding others (m/s).
    pub max_speed_mps: f32,
    /// Share of avoidance against others, as a weight: of two agents, each takes its weight over the sum.
    pub avoidance_weight: f32,
}

impl AgentSpec {
    /// A pedestrian with a preferred speed (m/s).
    pub fn pedestrian(speed_mps: f32) -> AgentSpec {
        AgentSpec {
            kind: AgentKind::Pedestrian,
            radius_m: PEDESTRIAN_RADIUS_M,
            speed_mps,
            max_speed_mps: speed_mps * PEDESTRIAN_MAX_SPEED_FACTOR,
            avoidance_weight: 1.0,
        }
    }

    /// A delivery robot with a top speed (m/s), which it also prefers.
    pub fn robot(speed_mps: f32) -> AgentSpec {
        AgentSpec {
            kind: AgentKind::Robot,
            radius_m: ROBOT_RADIUS_M,
            speed_mps,
            max_speed_mps: speed_mps,
            avoidance_weight: ROBOT_AVOIDANCE_WEIGHT,
        }
    }
}

/// Parameters of the crowd model.
#[derive(Clone, Debug, PartialEq)]
pub struct CrowdParams {
    /// Time step (s). The design gives robots 0.1–0.5 s.
    pub step_s: f32,
    /// ORCA time horizon against other agents (s): 2 s, shorter than the ≈3 s interaction horizon
    /// Karamouzas, Skinner & Guy (2014) measured, so dense corridors stay feasible.
    pub agent_horizon_s: f32,
    /// ORCA time horizon against buildings (s); at least the step.
    pub obstacle_horizon_s: f32,
    /// Neighbours farther than this (m) are ignored.
    pub neighbour_range_m: f32,
    /// At most this many nearest neighbours are considered (RVO2's default, 10).
    pub max_neighbours: usize,
    /// A waypoint counts as reached within this distance (m).
    pub waypoint_reach_m: f32,
    /// The destination counts as reached within this distance (m).
    pub arrival_m: f32,
    /// A robot passing a pedestrian closer than this, edge to edge (m), makes a close pass: Hall's (1966)
    /// intimate distance, 0.45 m.
    pub close_pass_m: f32,
    /// Agents walk this far (m) to the right of the walk line (negative: to the left), so that opposite
    /// streams form lanes as people do: Moussaïd et al. (2009, Proc. R. Soc. B 276) measured a preference
    /// for the right in France; use a negative value where people keep left.
    pub keep_right_m: f32,
}

impl Default for CrowdParams {
    fn default() -> CrowdParams {
        CrowdParams {
            step_s: 0.25,
            agent_horizon_s: 2.0,
            obstacle_horizon_s: 1.0,
            neighbour_range_m: 5.0,
            max_neighbours: 10,
            waypoint_reach_m: 1.0,
            arrival_m: 0.3,
            close_pass_m: 0.45,
            keep_right_m: 0.75,
        }
    }
}

/// An agent of a [`Crowd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentId(pub u32);

/// Where an agent is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Not on the sidewalk (parked, indoors, not yet out).
    Idle,
    /// Has a route and waits for room to step onto the sidewalk at its position.
    Entering,
    /// Walking its route.
    Walking,
    /// Reached the end of its route; off the sidewalk until sent again.
    Arrived,
}

/// What the crowd has counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CrowdStats {
    /// Steps taken.
    pub steps: u64,
    /// Agent-steps of walking agents.
    pub agent_steps: u64,
    /// Plans where ORCA found no velocity keeping every half-plane (the least-violating one was used).
    pub infeasible_plans: u64,
    /// Moves undone because they would have overlapped another agent.
    pub undone_moves: u64,
    /// Moves shortened or dropped at a building.
    pub building_stops: u64,
    /// Times a robot came within the close-pass distance of a pedestrian (counted when it starts).
    pub close_passes: u64,
    /// Routes completed.
    pub arrivals: u64,
}

/// Errors of the crowd's API.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CrowdError {
    /// A route must have at least one link.
    #[error("agent {0}: empty route")]
    EmptyRoute(u32),
}

#[derive(Clone, Debug)]
struct Agent {
    spec: AgentSpec,
    status: AgentStatus,
    pos: Vec2,
    vel: Vec2,
    route: Vec<LinkId>,
    leg: usize,
    point: usize,
    next_pos: Vec2,
    next_vel: Vec2,
    walked_m: f64,
    still_s: f32,
    near_pedestrian: bool,
    infeasible: bool,
    building_stop: bool,
    close_pass: bool,
}

/// Pedestrians and robots on the sidewalks.
pub struct Crowd {
    scene: Arc<SidewalkScene>,
    params: CrowdParams,
    agents: Vec<Agent>,
    chunks: usize,
    grid: CellGrid,
    stats: CrowdStats,
    discs: Vec<Disc>,
    weights: Vec<f32>,
    kinds: Vec<AgentKind>,
    walking: Vec<u32>,
    tentative: Vec<Vec2>,
    undone: Vec<bool>,
    max_reach_m: f32,
}

impl Crowd {
    /// An empty crowd in `scene`.
    pub fn new(scene: Arc<SidewalkScene>, params: CrowdParams) -> Crowd {
        Crowd {
            scene,
            params,
            agents: Vec::new(),
            chunks: 1,
            grid: CellGrid::default(),
            stats: CrowdStats::default(),
            discs: Vec::new(),
            weights: Vec::new(),
            kinds: Vec::new(),
            walking: Vec::new(),
            tentative: Vec::new(),
            undone: Vec::new(),
            max_reach_m: 0.0,
        }
    }

    /// Splits the parallel phases into this many chunks (results do not depend on it).
    pub fn set_parallel_chunks(&mut self, chunks: usize) {
        self.chunks = chunks.max(1);
    }

    /// The scene the crowd walks in.
    pub fn scene(&self) -> &SidewalkScene {
        &self.scene
    }

    /// The model's parameters.
    pub fn params(&self) -> &CrowdParams {
        &self.params
    }

    /// Adds an idle agent.
    pub fn add(&mut self, spec: AgentSpec) -> AgentId {
        let id = AgentId(self.agents.len() as u32);
        // An agent interacts with others within two radii plus two moves; the grid's cells must cover that.
        self.max_reach_m = self.max_reach_m.max(2.0 * (spec.radius_m + spec.max_speed_mps * self.params.step_s));
        self.agents.push(Agent {
            spec,
            status: AgentStatus::Idle,
            pos: Vec2::ZERO,
            vel: Vec2::ZERO,
            route: Vec::new(),
            leg: 0,
            point: 0,
            next_pos: Vec2::ZERO,
            next_vel: Vec2::ZERO,
            walked_m: 0.0,
            still_s: 0.0,
            near_pedestrian: false,
            infeasible: false,
            building_stop: false,
            close_pass: false,
        });
        id
    }

    /// Sends an agent along `route` (footpath links in order). An idle agent enters at the start of the
    /// route; one that is walking or has arrived goes on from where it is.
    pub fn send(&mut self, id: AgentId, route: Vec<LinkId>) -> Result<(), CrowdError> {
        if route.is_empty() {
            return Err(CrowdError::EmptyRoute(id.0));
        }
        let start = self.scene.walk_line(route[0])[0];
        let a = &mut self.agents[id.0 as usize];
        match a.status {
            AgentStatus::Idle => {
                a.pos = start;
                a.status = AgentStatus::Entering;
            }
            AgentStatus::Arrived => a.status = AgentStatus::Entering,
            AgentStatus::Entering | AgentStatus::Walking => {}
        }
        a.route = route;
        a.leg = 0;
        a.point = 0;
        a.still_s = 0.0;
        Ok(())
    }

    /// Takes an agent off the sidewalk (it keeps its position).
    pub fn park(&mut self, id: AgentId) {
        let a = &mut self.agents[id.0 as usize];
        a.status = AgentStatus::Idle;
        a.vel = Vec2::ZERO;
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// True when the crowd has no agents.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Position (m).
    pub fn position(&self, id: AgentId) -> Vec2 {
        self.agents[id.0 as usize].pos
    }

    /// Velocity (m/s) in the last step.
    pub fn velocity(&self, id: AgentId) -> Vec2 {
        self.agents[id.0 as usize].vel
    }

    /// Status.
    pub fn status(&self, id: AgentId) -> AgentStatus {
        self.agents[id.0 as usize].status
    }

    /// Body and gait.
    pub fn spec(&self, id: AgentId) -> &AgentSpec {
        &self.agents[id.0 as usize].spec
    }

    /// The route last sent (footpath links).
    pub fn route(&self, id: AgentId) -> &[LinkId] {
        &self.agents[id.0 as usize].route
    }

    /// Distance walked so far (m).
    pub fn walked_m(&self, id: AgentId) -> f64 {
        self.agents[id.0 as usize].walked_m
    }

    /// How long the agent has been standing still (s).
    pub fn still_s(&self, id: AgentId) -> f32 {
        self.agents[id.0 as usize].still_s
    }

    /// What the crowd has counted.
    pub fn stats(&self) -> &CrowdStats {
        &self.stats
    }

    /// Agents currently walking.
    pub fn walking(&self) -> usize {
        self.agents.iter().filter(|a| a.status == AgentStatus::Walking).count()
    }

    /// Advances one step; returns the agents that arrived in it, in id order.
    pub fn step(&mut self) -> Vec<AgentId> {
        let dt = self.params.step_s;
        self.snapshot();
        // Cells as large as the farthest two agents can interact within a step: conflicts and entries look
        // one ring out, neighbour searches as far as they must.
        let cell = self.max_reach_m.max(MIN_CELL_M);
        self.grid.rebuild(cell, &self.tentative, &self.walking);
        if self.enter() {
            self.snapshot();
            self.grid.rebuild(cell, &self.tentative, &self.walking);
        }
        self.plan();
        self.resolve();
        // Commit.
        let scene = &*self.scene;
        let params = &self.params;
        let undone = &self.undone;
        let arrived: Vec<Vec<AgentId>> = par_chunks_mut(&mut self.agents, self.chunks, |first, chunk| {
            let mut arrived = Vec::new();
            for (k, a) in chunk.iter_mut().enumerate() {
                if a.status != AgentStatus::Walking {
                    continue;
                }
                let i = first + k;
                if undone[i] {
                    a.next_pos = a.pos;
                    a.next_vel = Vec2::ZERO;
                }
                let moved = a.pos.distance(a.next_pos);
                a.walked_m += moved as f64;
                a.still_s = if moved < STILL_M { a.still_s + dt } else { 0.0 };
                a.pos = a.next_pos;
                a.vel = a.next_vel;
                if advance_waypoints(a, scene, params) {
                    a.status = AgentStatus::Arrived;
                    a.vel = Vec2::ZERO;
                    arrived.push(AgentId(i as u32));
                }
            }
            arrived
        });
        let arrived: Vec<AgentId> = arrived.into_iter().flatten().collect();
        let walking = &self.walking;
        let agents = &self.agents;
        self.stats.steps += 1;
        self.stats.agent_steps += walking.len() as u64;
        self.stats.infeasible_plans += walking.iter().filter(|&&i| agents[i as usize].infeasible).count() as u64;
        self.stats.building_stops += walking.iter().filter(|&&i| agents[i as usize].building_stop).count() as u64;
        self.stats.close_passes += walking.iter().filter(|&&i| agents[i as usize].close_pass).count() as u64;
        self.stats.undone_moves += self.undone.iter().filter(|&&u| u).count() as u64;
        self.stats.arrivals += arrived.len() as u64;
        arrived
    }

    /// Copies the state every agent reads during the step, and lists the walking agents.
    fn snapshot(&mut self) {
        let n = self.agents.len();
        self.discs.clear();
        self.weights.clear();
        self.kinds.clear();
        self.tentative.clear();
        self.walking.clear();
        for (i, a) in self.agents.iter().enumerate() {
            self.discs.push(Disc { pos: a.pos, vel: a.vel, radius: a.spec.radius_m });
            self.weights.push(a.spec.avoidance_weight);
            self.kinds.push(a.spec.kind);
            self.tentative.push(a.pos);
            if a.status == AgentStatus::Walking {
                self.walking.push(i as u32);
            }
        }
        self.undone.clear();
        self.undone.resize(n, false);
    }

    /// Lets entering agents onto the sidewalk where no one overlaps them, in id order. True if any entered.
    fn enter(&mut self) -> bool {
        let mut entered: Vec<u32> = Vec::new();
        for i in 0..self.agents.len() {
            if self.agents[i].status != AgentStatus::Entering {
                continue;
            }
            let (p, r) = (self.agents[i].pos, self.agents[i].spec.radius_m);
            let mut free = entered.iter().all(|&j| {
                let o = &self.agents[j as usize];
                o.pos.distance(p) >= o.spec.radius_m + r
            });
            if free {
                self.grid.for_each_near(p, |j, q| {
                    if q.distance(p) < self.discs[j as usize].radius + r {
                        free = false;
                    }
                });
            }
            if free {
                self.agents[i].status = AgentStatus::Walking;
                entered.push(i as u32);
            }
        }
        !entered.is_empty()
    }

    /// Every walking agent chooses its velocity and tentative position.
    fn plan(&mut self) {
        let scene = &*self.scene;
        let params = &self.params;
        let view = View { discs: &self.discs, weights: &self.weights, kinds: &self.kinds, grid: &self.grid };
        par_chunks_mut(&mut self.agents, self.chunks, |first, chunk| {
            let mut scratch = PlanScratch::default();
            for (k, a) in chunk.iter_mut().enumerate() {
                if a.status == AgentStatus::Walking {
                    plan_agent(first + k, a, scene, params, &view, &mut scratch);
                }
            }
        });
        for &i in &self.walking {
            self.tentative[i as usize] = self.agents[i as usize].next_pos;
        }
    }

    /// Undoes moves that would overlap, with their partners, until none is left.
    fn resolve(&mut self) {
        let view = View { discs: &self.discs, weights: &self.weights, kinds: &self.kinds, grid: &self.grid };
        let tentative = &self.tentative;
        let walking = &self.walking;
        let mut conflicts: Vec<u32> = par_map_ranges(walking.len(), self.chunks, |range| {
            let mut out = Vec::new();
            for &i in &walking[range] {
                if in_conflict(i, tentative, &view) {
                    out.push(i);
                }
            }
            out
        })
        .into_iter()
        .flatten()
        .collect();
        while !conflicts.is_empty() {
            for &i in &conflicts {
                self.undone[i as usize] = true;
                self.tentative[i as usize] = self.discs[i as usize].pos;
            }
            // Only the neighbours of agents just sent back can have a new conflict.
            let mut candidates = Vec::new();
            for &i in &conflicts {
                view.grid.for_each_near(self.discs[i as usize].pos, |j, _| {
                    if !self.undone[j as usize] {
                        candidates.push(j);
                    }
                });
            }
            candidates.sort_unstable();
            candidates.dedup();
            conflicts = candidates.into_iter().filter(|&j| in_conflict(j, &self.tentative, &view)).collect();
        }
    }
}

/// The step's read-only state.
struct View<'a> {
    discs: &'a [Disc],
    weights: &'a [f32],
    kinds: &'a [AgentKind],
    grid: &'a CellGrid,
}

#[derive(Default)]
struct PlanScratch {
    solver: Solver,
    planes: Vec<HalfPlane>,
    near: Vec<(f32, u32)>,
}

/// The point an agent walks to (its waypoint, moved `keep_right_m` to the right of the walk line), and
/// whether it is its destination (which is not moved).
fn target(a: &Agent, scene: &SidewalkScene, keep_right_m: f32) -> (Vec2, bool) {
    let line = scene.walk_line(a.route[a.leg]);
    let goal = line[a.point];
    if a.leg + 1 == a.route.len() && a.point + 1 == line.len() {
        return (goal, true);
    }
    let from = if a.point > 0 { line[a.point - 1] } else { a.pos };
    let along = (goal - from).normalize_or_zero();
    (goal + Vec2::new(along.y, -along.x) * keep_right_m, false)
}

/// ORCA for agent `i`: preferred velocity towards its waypoint, half-planes for buildings then the nearest
/// agents; then the building check on the resulting move.
fn plan_agent(i: usize, a: &mut Agent, scene: &SidewalkScene, params: &CrowdParams, view: &View, s: &mut PlanScratch) {
    let dt = params.step_s;
    let (goal, last) = target(a, scene, params.keep_right_m);
    let to = goal - a.pos;
    let dist = to.length();
    let speed = if last { a.spec.speed_mps.min(dist / dt) } else { a.spec.speed_mps };
    let preferred = if dist > f32::EPSILON { to / dist * speed } else { Vec2::ZERO };
    s.planes.clear();
    let obstacles = scene.obstacles(a.route[a.leg]);
    let reach = a.spec.radius_m + a.spec.max_speed_mps * params.obstacle_horizon_s;
    for &b in obstacles {
        if scene.box_distance(b, a.pos) > reach {
            continue;
        }
        let q = scene.closest_point(b, a.pos);
        if q.distance(a.pos) <= reach {
            s.planes.extend(orca::obstacle_half_plane(a.pos, a.spec.radius_m, q, params.obstacle_horizon_s));
        }
    }
    let n_obstacles = s.planes.len();
    s.near.clear();
    let range_sq = params.neighbour_range_m * params.neighbour_range_m;
    let me = Disc { pos: a.pos, vel: a.vel, radius: a.spec.radius_m };
    // The nearest `max_neighbours` within range: the 3 × 3 cells around the agent hold them when the crowd is
    // dense; otherwise look as far as the range.
    let cell = view.grid.cell_m();
    let rings = (params.neighbour_range_m / cell).ceil() as i64;
    for k in [1, rings.max(1)] {
        s.near.clear();
        view.grid.for_each_within(a.pos, k, |j, q| {
            if j as usize == i {
                return;
            }
            let d2 = q.distance_squared(a.pos);
            if d2 < range_sq {
                let at = s.near.partition_point(|&(e, m)| (e, m) < (d2, j));
                if at < params.max_neighbours {
                    s.near.insert(at, (d2, j));
                    s.near.truncate(params.max_neighbours);
                }
            }
        });
        let covered = k as f32 * cell;
        if k == rings || (s.near.len() == params.max_neighbours && s.near[s.near.len() - 1].0 <= covered * covered) {
            break;
        }
    }
    let mut near_pedestrian = false;
    for &(d2, j) in &s.near {
        let other = &view.discs[j as usize];
        let w = view.weights[j as usize];
        let share = a.spec.avoidance_weight / (a.spec.avoidance_weight + w);
        s.planes.push(orca::agent_half_plane(&me, other, share, params.agent_horizon_s, dt));
        if a.spec.kind == AgentKind::Robot
            && view.kinds[j as usize] == AgentKind::Pedestrian
            && d2.sqrt() - me.radius - other.radius < params.close_pass_m
        {
            near_pedestrian = true;
        }
    }
    a.close_pass = near_pedestrian && !a.near_pedestrian;
    a.near_pedestrian = near_pedestrian;
    let (mut v, feasible) = if s.planes.is_empty() {
        (preferred.clamp_length_max(a.spec.max_speed_mps), true)
    } else {
        s.solver.solve(&s.planes, n_obstacles, a.spec.max_speed_mps, preferred)
    };
    a.infeasible = !feasible;
    a.building_stop = false;
    let mut halvings = 0;
    while !clear_of_buildings(a.pos, a.pos + v * dt, a.spec.radius_m, obstacles, scene) {
        a.building_stop = true;
        halvings += 1;
        if halvings > BUILDING_HALVINGS {
            v = Vec2::ZERO;
            break;
        }
        v *= 0.5;
    }
    a.next_vel = v;
    a.next_pos = a.pos + v * dt;
}

/// True when a move from `from` to `to` keeps a disc of `radius` clear of the buildings, or at least does
/// not bring it closer to one it already touches.
fn clear_of_buildings(from: Vec2, to: Vec2, radius: f32, obstacles: &[u32], scene: &SidewalkScene) -> bool {
    obstacles.iter().all(|&b| {
        if scene.box_distance(b, to) >= radius {
            return true;
        }
        let after = scene.clearance(b, to);
        after >= radius - OVERLAP_TOLERANCE_M || after >= scene.clearance(b, from)
    })
}

/// True when agent `i`'s tentative position overlaps another's and is closer to it than before.
fn in_conflict(i: u32, tentative: &[Vec2], view: &View) -> bool {
    let me = &view.discs[i as usize];
    let p = tentative[i as usize];
    let mut conflict = false;
    view.grid.for_each_near(me.pos, |j, _| {
        if j == i || conflict {
            return;
        }
        let other = &view.discs[j as usize];
        let q = tentative[j as usize];
        let d = p.distance(q);
        if d < me.radius + other.radius - OVERLAP_TOLERANCE_M && d < me.pos.distance(other.pos) {
            conflict = true;
        }
    });
    conflict
}

/// Moves the agent's waypoint on past the ones it has reached; true when it has arrived.
fn advance_waypoints(a: &mut Agent, scene: &SidewalkScene, params: &CrowdParams) -> bool {
    loop {
        let line = scene.walk_line(a.route[a.leg]);
        let goal = line[a.point];
        let d = a.pos.distance(goal);
        let last_point = a.point + 1 == line.len();
        if last_point && a.leg + 1 == a.route.len() {
            return d <= params.arrival_m;
        }
        let next = if last_point {
            let following = scene.walk_line(a.route[a.leg + 1]);
            following[1.min(following.len() - 1)]
        } else {
            line[a.point + 1]
        };
        let passed = (next - goal).dot(a.pos - goal) > 0.0;
        let reached = d <= params.waypoint_reach_m || (passed && d <= PASSED_REACH_FACTOR * params.waypoint_reach_m);
        if !reached {
            return false;
        }
        if last_point {
            a.leg += 1;
            a.point = 1.min(scene.walk_line(a.route[a.leg]).len() - 1);
        } else {
            a.point += 1;
        }
    }
}

#[cfg(test)]
mod tests;
