//! Sidewalk crowds: pedestrians and delivery robots walking routes on the footpath graph among buildings.
//!
//! Each agent is a disc that follows the walk line of its route ([`scene`]) and avoids the others and the
//! buildings with ORCA ([`orca`], van den Berg et al. 2011). A step of `step_s`:
//!
//! 1. agents waiting to enter the sidewalk (at a door, a depot) enter where no one stands;
//! 2. *plan*, in parallel: every walking agent reads the state at the start of the step (neighbours from a
//!    uniform grid, the nearest `max_neighbours` within `neighbour_range_m`, looked for first only as far as
//!    last step's neighbours can now be; buildings near its link) and chooses its velocity; a move that would
//!    end closer to a building than the agent's radius is halved until it does not (or dropped). It also
//!    notes its *contacts*: the agents near enough to overlap it after the step, the only ones the resolve
//!    step looks at;
//! 3. *resolve*: a move that would end overlapping another agent (closer than the sum of radii, and closer
//!    than they were) is halved, together with its partner's, and halved again while the conflict lasts;
//!    after three halvings it is undone. Undone moves only return agents to places that did not overlap, so
//!    no agent ever overlaps another, whatever ORCA did; the counts of shortened and undone moves say how
//!    often ORCA alone was not enough. ORCA itself keeps pairs a small margin apart
//!    ([`CrowdParams::orca_margin_m`]), so that this step seldom has to act;
//!    pedestrians jammed for `jam_time_s` squeeze through the other pedestrians (never through robots or
//!    buildings) until they are clear, as SUMO's striping model lets them (`pedestrian.striping.jamtime`):
//!    discs cannot gridlock a crowd for good;
//! 4. *commit*, in parallel: positions, waypoints, arrivals.
//!
//! Where a route crosses a road ([`crossings`]), a walker waits on the kerb until the light and the gap in
//! traffic let it cross; the coupling sets the traffic there before each step.
//!
//! Every phase writes only its own agent from the previous state, so results are bit-identical at any
//! number of threads.
//!
//! Memory: the agents are stored in the grid's order (walking ones first, sorted by cell), re-sorted at
//! every step, which moves few of them; each phase then reads its agents in the order they lie in memory,
//! and neighbours lie near each other, as particle codes sort particles by cell.

pub mod crossings;
mod neighbours;
pub mod orca;
pub mod scene;
pub mod wander;

use crate::city::graph::LinkId;
use crate::geo::shapes;
use crate::sim::{par_chunks_mut, par_map_ranges};
use crossings::{CrossingWalker, Crossings};
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
/// Top speed of a delivery robot on the sidewalk (m/s): 6 km/h, the limit for remote-operated delivery
/// robots in Japan (Road Traffic Act as amended in 2023).
pub const ROBOT_SPEED_LIMIT_MPS: f32 = 6.0 / 3.6;
/// How much of each avoidance a robot takes against a pedestrian, as a weight (pedestrians weigh 1): 3 gives
/// the robot 75 %. Japan's rules for remote-operated delivery robots (Road Traffic Act as amended in 2023)
/// require them not to obstruct pedestrians.
pub const ROBOT_AVOIDANCE_WEIGHT: f32 = 3.0;
/// Movement (m) in a step under which an agent counts as standing still.
const STILL_M: f32 = 0.01;
/// A waypoint the agent has passed (beyond it along the route) counts as reached within this many reach
/// radii: agents pushed sideways need not walk back to it.
const PASSED_REACH_FACTOR: f32 = 3.0;
/// A walker this much closer to a crossing's node than its kerb point (m) is already on the road and goes on.
const ON_ROAD_M: f32 = 0.1;
/// Times a move in conflict with another agent's is halved before it is undone.
const CONFLICT_HALVINGS: u8 = 3;
/// The plan phase runs in this many pieces per parallel chunk, taken by the threads as they come free: plans
/// cost more where the crowd is dense, and with one piece per thread one often waited for the other (the
/// phase ran 1.56 times as fast on two threads as on one; 1.76 times with 8 pieces a thread, in one run of
/// `crowd_city 120`).
const PLAN_PIECES_PER_CHUNK: usize = 8;
/// Tolerance (m) in the overlap and clearance tests, for floating-point round-off.
const OVERLAP_TOLERANCE_M: f32 = 1e-4;
/// Smallest neighbour-grid cell (m), for crowds of slow, small agents.
const MIN_CELL_M: f32 = 1.0;
/// Shares of the keep-right offset tried, largest first, until the aim has room.
const KEEP_RIGHT_SHARES: [f32; 3] = [1.0, 0.5, 0.25];
/// Room (m) beyond its radius an agent's aim keeps from buildings.
const KEEP_RIGHT_ROOM_M: f32 = 0.1;
/// Slides along a building tried before a move that would end too close to it is halved.
const BUILDING_SLIDES: usize = 2;
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
    /// Neighbours farther than this (m) are ignored: 5 m, so that two robots closing at 3.3 m/s (6 km/h each)
    /// are seen 1.5 s before contact.
    pub neighbour_range_m: f32,
    /// At most this many nearest neighbours are considered (RVO2's default, 10).
    pub max_neighbours: usize,
    /// A waypoint counts as reached within this distance (m).
    pub waypoint_reach_m: f32,
    /// A waypoint at a junction (the end of a link) counts as reached within this distance (m): people round
    /// a corner rather than step on the node, and a crowd crossing a junction does not funnel into one point.
    pub junction_reach_m: f32,
    /// The destination counts as reached within this distance (m).
    pub arrival_m: f32,

    /// A robot passing a pedestrian closer than this, edge to edge (m), makes a close pass: Hall's (1966)
    /// intimate distance, 0.45 m.
    pub close_pass_m: f32,
    /// Agents walk this far (m) to the right of the walk line (negative: to the left), so that opposite
    /// streams form lanes as people do: Moussaïd et al. (2009, Proc. R. Soc. B 276) measured a preference
    /// for the right in France; use a negative value where people keep left.
    pub keep_right_m: f32,
    /// A pedestrian standing still this long (s) squeezes through the other pedestrians until clear of
    /// them: 300 s, the default of SUMO's `pedestrian.striping.jamtime`; infinite: never.
    pub jam_time_s: f32,
    /// ORCA keeps two agents this much farther apart (m, the pair together) than their bodies need: 0.02 m.
    /// Without it, a dense crowd freezes: ORCA's velocities, which assume each neighbour takes its share of
    /// the avoidance, often bring touching agents a hair closer; the resolve step cuts every such move, and
    /// a whole cluster stands still step after step. Measured with `benches/examples/crowd_city.rs` (1,000
    /// robots and 10,000 pedestrians on Andorra's footpaths, 600 s): agents standing still for over a minute
    /// fell from 5,860 without a margin to 52 with 0.02 m (and to 1 with 0.05 m, which slows the crowded
    /// corridor test to 2.3 times its clearing time, against none with 0.02 m).
    pub orca_margin_m: f32,
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
            junction_reach_m: 2.5,
            arrival_m: 0.3,
            close_pass_m: 0.45,
            keep_right_m: 0.75,
            jam_time_s: 300.0,
            orca_margin_m: 0.02,
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
    /// Moves shortened (halved, up to three times) so as not to overlap another agent.
    pub shortened_moves: u64,
    /// Moves shortened or dropped at a building.
    pub building_stops: u64,
    /// Times a robot came within the close-pass distance of a pedestrian (counted when it starts).
    pub close_passes: u64,
    /// Routes completed.
    pub arrivals: u64,
    /// Times a jammed pedestrian started squeezing through the other pedestrians.
    pub jam_squeezes: u64,
    /// Times a walker (robot or pedestrian) stopped on a kerb to wait for a light or a gap in traffic.
    pub crossing_waits: u64,
    /// Time walkers spent waiting on kerbs (agent-seconds).
    pub crossing_wait_s: f64,
    /// Times a robot stopped on a kerb to wait for a light or a gap in traffic.
    pub robot_crossing_waits: u64,
    /// Time robots spent waiting on kerbs (robot-seconds).
    pub robot_crossing_wait_s: f64,
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
    id: AgentId,
    spec: AgentSpec,
    status: AgentStatus,
    pos: Vec2,
    vel: Vec2,
    route: Vec<LinkId>,
    leg: usize,
    point: usize,
    /// Where the agent is headed, kept from the route so the step touches it only at waypoints.
    target: Target,
    walked_m: f64,
    still_s: f32,
    near_pedestrian: bool,
    /// Distance (m) of the farthest of the neighbours its last plan kept, infinite if it kept fewer than
    /// `max_neighbours`: where this plan's search for neighbours may stop.
    neighbour_reach_m: f32,
    /// A jammed pedestrian squeezing through the other pedestrians.
    squeezing: bool,
    /// Waiting on a kerb to cross a road.
    waiting_to_cross: bool,
}

/// An agent's current waypoint, from its route.
#[derive(Clone, Copy, Debug, Default)]
struct Target {
    /// The link walked.
    link: LinkId,
    /// The waypoint on the walk line (m).
    goal: Vec2,
    /// The point walked to: the waypoint moved to the right (m).
    aim: Vec2,
    /// The waypoint after it, if any (m).
    next: Option<Vec2>,
}

/// A walking agent as the step sees it, in grid order.
#[derive(Clone, Copy, Debug)]
struct Slot {
    id: u32,
    disc: Disc,
    weight: f32,
    kind: AgentKind,
    squeezing: bool,
}

impl Slot {
    /// Whether this agent and `other` pass through each other: two pedestrians of whom one squeezes.
    fn passes_through(&self, other: &Slot) -> bool {
        (self.squeezing || other.squeezing) && self.kind == AgentKind::Pedestrian && other.kind == AgentKind::Pedestrian
    }
}

/// What an agent's plan decided.
#[derive(Clone, Copy, Debug, Default)]
struct Plan {
    next_pos: Vec2,
    next_vel: Vec2,
    infeasible: bool,
    building_stop: bool,
    near_pedestrian: bool,
    /// Distance (m) of the farthest neighbour kept, infinite if fewer than `max_neighbours` were.
    neighbour_reach_m: f32,
    /// Within another agent's disc at the start of the step (a squeezing pedestrian in a jam).
    overlapping: bool,
    /// Held on a kerb before a crossing it may not take yet.
    held: bool,
}

/// Pedestrians and robots on the sidewalks.
pub struct Crowd {
    scene: Arc<SidewalkScene>,
    params: CrowdParams,
    /// The agents, the walking ones first in grid order (a walking agent's place is its slot), then the others
    /// in id order: each phase of a step visits them in the order they are stored, not all over memory.
    /// Reordered at every snapshot.
    agents: Vec<Agent>,
    /// Each agent's place in `agents`, by id, and the id of each place.
    place: Vec<u32>,
    stored: Vec<u32>,
    /// Scratch for the reordering: each agent's place to be, by id.
    rank: Vec<u32>,
    chunks: usize,
    grid: CellGrid,
    stats: CrowdStats,
    /// Every agent's position at the start of the step, by id.
    positions: Vec<Vec2>,
    /// Walking agents' ids.
    walking: Vec<u32>,
    /// Walking agents in grid order: what their neighbours read of them.
    slots: Vec<Slot>,
    /// Per slot: the plan, the position it leads to, how often its move was halved (above
    /// [`CONFLICT_HALVINGS`]: undone).
    plans: Vec<Plan>,
    tentative: Vec<Vec2>,
    /// Per slot, the agents it could overlap after the step.
    contacts: Contacts,
    cuts: Vec<u8>,
    max_reach_m: f32,
    /// Farthest (m) any agent moves in a step.
    max_move_m: f32,
    crossings: Crossings,
    aims: AimTable,
}

/// The aims of the waypoints of every link an agent has been sent along, per body radius: a waypoint's aim
/// depends only on its link, its place on the walk line and the radius (the first waypoint of a route
/// excepted, whose aim depends on where the agent stands), and finding room for it queries the buildings,
/// so it is worked out once, when an agent is first sent along the link.
#[derive(Default)]
struct AimTable {
    /// The radii (m) aims are known for, as bits (a radius is a key here, not a number).
    radii: Vec<u32>,
    /// Per radius, per link: the aim of each waypoint of the link's walk line (the first one's unused).
    links: Vec<Vec<Option<Box<[Vec2]>>>>,
}

impl AimTable {
    /// Works out the aims of `link`'s waypoints for agents of `radius_m`, unless known.
    fn add(&mut self, link: LinkId, radius_m: f32, scene: &SidewalkScene, keep_right_m: f32) {
        let class = match self.radii.iter().position(|&r| r == radius_m.to_bits()) {
            Some(class) => class,
            None => {
                self.radii.push(radius_m.to_bits());
                self.links.push(vec![None; scene.link_count()]);
                self.radii.len() - 1
            }
        };
        self.links[class][link.0 as usize].get_or_insert_with(|| {
            let line = scene.walk_line(link);
            (0..line.len())
                .map(|k| match k {
                    0 => line[0],
                    _ => aim_aside(line[k], line[k] - line[k - 1], keep_right_m, link, radius_m, scene)
                        .unwrap_or(line[k]),
                })
                .collect()
        });
    }

    /// The aim of waypoint `point` (not the first) of `link` for agents of `radius_m`; known for every link of
    /// every route sent.
    fn aim(&self, link: LinkId, point: usize, radius_m: f32) -> Vec2 {
        let class = self
            .radii
            .iter()
            .position(|&r| r == radius_m.to_bits())
            .expect("aims are worked out when an agent is sent");
        self.links[class][link.0 as usize].as_ref().expect("aims are worked out for every link of a route sent")[point]
    }
}

impl Crowd {
    /// An empty crowd in `scene`.
    pub fn new(scene: Arc<SidewalkScene>, params: CrowdParams) -> Crowd {
        Crowd {
            scene,
            params,
            agents: Vec::new(),
            place: Vec::new(),
            stored: Vec::new(),
            rank: Vec::new(),
            chunks: 1,
            grid: CellGrid::default(),
            stats: CrowdStats::default(),
            positions: Vec::new(),
            walking: Vec::new(),
            slots: Vec::new(),
            plans: Vec::new(),
            tentative: Vec::new(),
            contacts: Contacts::default(),
            cuts: Vec::new(),
            max_reach_m: 0.0,
            max_move_m: 0.0,
            crossings: Crossings::default(),
            aims: AimTable::default(),
        }
    }

    /// Sets where routes cross roads (replacing any set before).
    pub fn set_crossings(&mut self, crossings: Crossings) {
        self.crossings = crossings;
    }

    /// Where routes cross roads.
    pub fn crossings(&self) -> &Crossings {
        &self.crossings
    }

    /// Where routes cross roads, to set the traffic there before a step.
    pub fn crossings_mut(&mut self) -> &mut Crossings {
        &mut self.crossings
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
        // Two agents can overlap after a step only if they are within two radii plus two moves now: the reach of
        // contacts and entries.
        self.max_reach_m = self.max_reach_m.max(2.0 * (spec.radius_m + spec.max_speed_mps * self.params.step_s));
        self.max_move_m = self.max_move_m.max(spec.max_speed_mps * self.params.step_s);
        self.place.push(self.agents.len() as u32);
        self.stored.push(id.0);
        self.agents.push(Agent {
            id,
            spec,
            status: AgentStatus::Idle,
            pos: Vec2::ZERO,
            vel: Vec2::ZERO,
            route: Vec::new(),
            leg: 0,
            point: 0,
            target: Target::default(),
            walked_m: 0.0,
            still_s: 0.0,
            squeezing: false,
            near_pedestrian: false,
            neighbour_reach_m: f32::INFINITY,
            waiting_to_cross: false,
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
        let a = &mut self.agents[self.place[id.0 as usize] as usize];
        for &link in &route {
            self.aims.add(link, a.spec.radius_m, &self.scene, self.params.keep_right_m);
        }
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
        a.target = target(a, &self.scene, &self.aims, self.params.keep_right_m);
        Ok(())
    }

    /// Takes an agent off the sidewalk (it keeps its position).
    pub fn park(&mut self, id: AgentId) {
        let a = self.agent_mut(id);
        a.status = AgentStatus::Idle;
        a.vel = Vec2::ZERO;
    }

    fn agent(&self, id: AgentId) -> &Agent {
        &self.agents[self.place[id.0 as usize] as usize]
    }

    fn agent_mut(&mut self, id: AgentId) -> &mut Agent {
        &mut self.agents[self.place[id.0 as usize] as usize]
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
        self.agent(id).pos
    }

    /// Velocity (m/s) in the last step.
    pub fn velocity(&self, id: AgentId) -> Vec2 {
        self.agent(id).vel
    }

    /// Status.
    pub fn status(&self, id: AgentId) -> AgentStatus {
        self.agent(id).status
    }

    /// Body and gait.
    pub fn spec(&self, id: AgentId) -> &AgentSpec {
        &self.agent(id).spec
    }

    /// The route last sent (footpath links).
    pub fn route(&self, id: AgentId) -> &[LinkId] {
        &self.agent(id).route
    }

    /// The footpath link a walking agent is on (`None` when not walking).
    pub fn current_link(&self, id: AgentId) -> Option<LinkId> {
        let a = self.agent(id);
        (a.status == AgentStatus::Walking).then(|| a.route[a.leg])
    }

    /// Distance walked so far (m).
    pub fn walked_m(&self, id: AgentId) -> f64 {
        self.agent(id).walked_m
    }

    /// Whether the agent waits on a kerb to cross a road.
    pub fn waiting_to_cross(&self, id: AgentId) -> bool {
        self.agent(id).waiting_to_cross
    }

    /// How long the agent has been standing still (s).
    pub fn still_s(&self, id: AgentId) -> f32 {
        self.agent(id).still_s
    }

    /// What the crowd has counted.
    pub fn stats(&self) -> &CrowdStats {
        &self.stats
    }

    /// Advances one step; returns the agents that arrived in it, in id order.
    pub fn step(&mut self) -> Vec<AgentId> {
        let dt = self.params.step_s;
        self.snapshot();
        if self.enter() {
            self.snapshot();
        }
        self.plan();
        self.resolve();
        // Commit, in the order the agents are stored (arrivals are then sorted by id).
        let (scene, aims) = (&*self.scene, &self.aims);
        let params = &self.params;
        let (plans, cuts, tentative) = (&self.plans, &self.cuts, &self.tentative);
        let walking = self.slots.len();
        let arrived: Vec<(Vec<AgentId>, CommitCounts)> =
            par_chunks_mut(&mut self.agents, self.chunks, |first, chunk| {
                let mut arrived = Vec::new();
                let mut counts = CommitCounts::default();
                for (k, a) in chunk.iter_mut().enumerate() {
                    if a.status != AgentStatus::Walking {
                        a.waiting_to_cross = false;
                        continue;
                    }
                    // Walking agents are stored in slot order.
                    let slot = first + k;
                    debug_assert!(slot < walking);
                    let plan = &plans[slot];
                    let (next_pos, next_vel) = (tentative[slot], plan.next_vel * move_kept(cuts[slot]));
                    counts.close_passes += (plan.near_pedestrian && !a.near_pedestrian) as u64;
                    a.near_pedestrian = plan.near_pedestrian;
                    a.neighbour_reach_m = plan.neighbour_reach_m;
                    let moved = a.pos.distance(next_pos);
                    a.walked_m += moved as f64;
                    a.still_s = if moved < STILL_M { a.still_s + dt } else { 0.0 };
                    // Jammed pedestrians squeeze through until they move clear of everyone.
                    if a.squeezing && !plan.overlapping && moved >= STILL_M {
                        a.squeezing = false;
                    } else if !a.squeezing && a.spec.kind == AgentKind::Pedestrian && a.still_s >= params.jam_time_s {
                        a.squeezing = true;
                        a.still_s = 0.0;
                        counts.jam_squeezes += 1;
                    }
                    a.pos = next_pos;
                    a.vel = next_vel;
                    counts.count_wait(a, plan.held, dt);
                    a.waiting_to_cross = plan.held;
                    // A walker held on the kerb keeps its waypoint at the crossing, however near it stands.
                    if !plan.held && advance_waypoints(a, scene, aims, params) {
                        a.status = AgentStatus::Arrived;
                        a.vel = Vec2::ZERO;
                        arrived.push(a.id);
                    }
                }
                (arrived, counts)
            });
        for (_, counts) in &arrived {
            counts.add_to(&mut self.stats);
        }
        let mut arrived: Vec<AgentId> = arrived.into_iter().flat_map(|(a, _)| a).collect();
        arrived.sort_unstable();
        self.stats.steps += 1;
        self.stats.agent_steps += self.slots.len() as u64;
        self.stats.infeasible_plans += self.plans.iter().filter(|p| p.infeasible).count() as u64;
        self.stats.building_stops += self.plans.iter().filter(|p| p.building_stop).count() as u64;
        self.stats.undone_moves += self.cuts.iter().filter(|&&c| c > CONFLICT_HALVINGS).count() as u64;
        self.stats.shortened_moves +=
            self.cuts.iter().filter(|&&c| (1..=CONFLICT_HALVINGS).contains(&c)).count() as u64;
        self.stats.arrivals += arrived.len() as u64;
        arrived
    }

    /// Lists the walking agents, sorts them into the grid, stores them in its order and copies what their
    /// neighbours read.
    fn snapshot(&mut self) {
        self.positions.clear();
        self.positions.resize(self.agents.len(), Vec2::ZERO);
        self.walking.clear();
        for a in &self.agents {
            self.positions[a.id.0 as usize] = a.pos;
            if a.status == AgentStatus::Walking {
                self.walking.push(a.id.0);
            }
        }
        // Cells as large as the farthest two agents can interact within a step: a search of that reach looks
        // at 3 × 3 cells, and a search over the whole neighbour range at few more. (Searches take any size;
        // cells of this size measured better than of the neighbour range in dense crowds.)
        let cell = self.max_reach_m.max(MIN_CELL_M);
        self.grid.rebuild(cell, &self.positions, &self.walking);
        self.reorder();
        self.slots.clear();
        self.slots.extend(self.agents[..self.walking.len()].iter().map(|a| Slot {
            id: a.id.0,
            disc: Disc { pos: a.pos, vel: a.vel, radius: a.spec.radius_m },
            weight: a.spec.avoidance_weight,
            kind: a.spec.kind,
            squeezing: a.squeezing,
        }));
        self.cuts.clear();
        self.cuts.resize(self.slots.len(), 0);
    }

    /// Stores the walking agents first, in grid order, then the others in id order. Agents move little in a
    /// step, so the order is nearly the last one: insertion sort finishes it in about one pass (when many
    /// agents enter or arrive at once, each is moved straight to its place instead).
    fn reorder(&mut self) {
        let n = self.agents.len();
        self.rank.clear();
        self.rank.resize(n, u32::MAX);
        let walking = self.grid.ids().len() as u32;
        for (slot, id) in (0..).zip(self.grid.ids()) {
            self.rank[id as usize] = slot;
        }
        for (next, r) in (walking..).zip(self.rank.iter_mut().filter(|r| **r == u32::MAX)) {
            *r = next;
        }
        neighbours::order_by_rank(&mut self.agents, &mut self.stored, &self.rank);
        for (place, &id) in self.stored.iter().enumerate() {
            self.place[id as usize] = place as u32;
        }
    }

    /// Lets entering agents onto the sidewalk where no one overlaps them, in id order. True if any entered.
    fn enter(&mut self) -> bool {
        let mut entered: Vec<u32> = Vec::new();
        // The agents not walking are stored after the walking ones, in id order.
        for i in self.slots.len()..self.agents.len() {
            if self.agents[i].status != AgentStatus::Entering {
                continue;
            }
            let (p, r) = (self.agents[i].pos, self.agents[i].spec.radius_m);
            let mut free = entered.iter().all(|&j| {
                let o = &self.agents[j as usize];
                o.pos.distance(p) >= o.spec.radius_m + r
            });
            if free {
                self.grid.for_each_in_square(p, self.max_reach_m, |slot, q| {
                    if q.distance(p) < self.slots[slot].disc.radius + r {
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

    /// Every walking agent chooses its velocity and tentative position, in grid order.
    fn plan(&mut self) {
        let scene = &*self.scene;
        let params = &self.params;
        let agents = &self.agents;
        let view = View {
            slots: &self.slots,
            grid: &self.grid,
            crossings: &self.crossings,
            reach_m: self.max_reach_m,
            move_m: self.max_move_m,
        };
        let pieces = if self.chunks > 1 { self.chunks * PLAN_PIECES_PER_CHUNK } else { 1 };
        let ranges = par_map_ranges(self.slots.len(), pieces, |range| {
            let mut scratch = PlanScratch::default();
            let mut contacts = Contacts::default();
            let plans = range
                // Walking agents are stored in slot order.
                .map(|slot| {
                    let plan = plan_agent(slot, &agents[slot], scene, params, &view, &mut scratch, &mut contacts.of);
                    contacts.end.push(contacts.of.len() as u32);
                    plan
                })
                .collect::<Vec<_>>();
            (plans, contacts)
        });
        self.plans.clear();
        self.contacts.of.clear();
        self.contacts.end.clear();
        for (plans, contacts) in ranges {
            self.plans.extend(plans);
            let before = self.contacts.of.len() as u32;
            self.contacts.end.extend(contacts.end.iter().map(|&end| before + end));
            self.contacts.of.extend(contacts.of);
        }
        self.tentative.clear();
        self.tentative.extend(self.plans.iter().map(|p| p.next_pos));
    }

    /// Halves moves that would overlap, with their partners', until none is left; a move halved
    /// [`CONFLICT_HALVINGS`] times and still in conflict is undone.
    fn resolve(&mut self) {
        let (slots, contacts, tentative) = (&self.slots, &self.contacts, &self.tentative);
        let mut conflicts: Vec<usize> = par_map_ranges(self.slots.len(), self.chunks, |range| {
            range.filter(|&slot| in_conflict(slot, tentative, slots, contacts)).collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
        while !conflicts.is_empty() {
            for &slot in &conflicts {
                self.cuts[slot] += 1;
                let from = self.slots[slot].disc.pos;
                let to = from + (self.plans[slot].next_pos - from) * move_kept(self.cuts[slot]);
                // A shorter move ends elsewhere on the way, which may pass nearer a building than its ends.
                let a = &self.agents[slot];
                let obstacles = self.scene.obstacles(a.target.link);
                self.tentative[slot] = if blocking_building(from, to, a.spec.radius_m, obstacles, &self.scene).is_some()
                {
                    self.cuts[slot] = CONFLICT_HALVINGS + 1;
                    from
                } else {
                    to
                };
            }
            // Only the agents whose moves were cut and their contacts can have a new conflict; an undone move has
            // nothing left to give.
            let mut candidates = Vec::new();
            for &slot in &conflicts {
                let near = std::iter::once(slot).chain(self.contacts.of(slot).iter().map(|&other| other as usize));
                candidates.extend(near.filter(|&other| self.cuts[other] <= CONFLICT_HALVINGS));
            }
            candidates.sort_unstable();
            candidates.dedup();
            conflicts = candidates
                .into_iter()
                .filter(|&slot| in_conflict(slot, &self.tentative, &self.slots, &self.contacts))
                .collect();
        }
    }
}

/// Share of its planned move an agent keeps after `cuts` halvings (none past [`CONFLICT_HALVINGS`]).
fn move_kept(cuts: u8) -> f32 {
    if cuts > CONFLICT_HALVINGS {
        0.0
    } else {
        0.5f32.powi(cuts as i32)
    }
}

/// The step's read-only state.
struct View<'a> {
    slots: &'a [Slot],
    grid: &'a CellGrid,
    crossings: &'a Crossings,
    /// Farthest apart (m) two agents can be and still overlap after a step.
    reach_m: f32,
    /// Farthest (m) any agent moves in a step.
    move_m: f32,
}

/// Per slot, the other agents near enough to overlap it after the step (their slots), found by its plan:
/// only these can be in conflict with it. Pedestrians that pass through each other (one squeezes) are not
/// each other's contacts, as they are never in conflict.
#[derive(Default)]
struct Contacts {
    /// The contacts of every slot, slot after slot.
    of: Vec<u32>,
    /// Where each slot's contacts end in `of`.
    end: Vec<u32>,
}

impl Contacts {
    fn of(&self, slot: usize) -> &[u32] {
        let start = if slot == 0 { 0 } else { self.end[slot - 1] as usize };
        &self.of[start..self.end[slot] as usize]
    }
}

/// What a chunk of the commit counted.
#[derive(Clone, Copy, Debug, Default)]
struct CommitCounts {
    close_passes: u64,
    jam_squeezes: u64,
    waits: u64,
    wait_s: f64,
    robot_waits: u64,
    robot_wait_s: f64,
}

impl CommitCounts {
    /// Counts agent `a`'s step on a kerb: a wait starts when it is first held, and lasts `dt` (s) per step
    /// held.
    fn count_wait(&mut self, a: &Agent, held: bool, dt: f32) {
        if !held {
            return;
        }
        let (starts, secs) = ((!a.waiting_to_cross) as u64, dt as f64);
        self.waits += starts;
        self.wait_s += secs;
        if a.spec.kind == AgentKind::Robot {
            self.robot_waits += starts;
            self.robot_wait_s += secs;
        }
    }

    fn add_to(&self, stats: &mut CrowdStats) {
        stats.close_passes += self.close_passes;
        stats.jam_squeezes += self.jam_squeezes;
        stats.crossing_waits += self.waits;
        stats.crossing_wait_s += self.wait_s;
        stats.robot_crossing_waits += self.robot_waits;
        stats.robot_crossing_wait_s += self.robot_wait_s;
    }
}

#[derive(Default)]
struct PlanScratch {
    solver: Solver,
    planes: Vec<HalfPlane>,
    /// Nearest neighbours: squared distance, agent id (for ties), slot.
    near: Vec<(f32, u32, usize)>,
}

/// The target of an agent at its route's current waypoint: the waypoint moved `keep_right_m` to the right
/// of the walk line (the destination is not moved).
fn target(a: &Agent, scene: &SidewalkScene, aims: &AimTable, keep_right_m: f32) -> Target {
    let link = a.route[a.leg];
    let line = scene.walk_line(link);
    let goal = line[a.point];
    let next = if a.point + 1 < line.len() {
        Some(line[a.point + 1])
    } else if a.leg + 1 < a.route.len() {
        let following = scene.walk_line(a.route[a.leg + 1]);
        Some(following[1.min(following.len() - 1)])
    } else {
        None
    };
    // Keep right where there is room: the aim keeps the agent's clearance from the buildings, or it is moved
    // back towards the walk line (which keeps it).
    let aim = match (next, a.point) {
        (None, _) => goal,
        (Some(_), 0) => aim_aside(goal, goal - a.pos, keep_right_m, link, a.spec.radius_m, scene).unwrap_or(goal),
        (Some(_), point) => aims.aim(link, point, a.spec.radius_m),
    };
    Target { link, goal, aim, next }
}

/// `point` moved `offset_m` to the right of direction `along` (to the left if negative), or a share of that
/// ([`KEEP_RIGHT_SHARES`], largest first) where the buildings of `link` leave an agent of `radius_m` room;
/// `None` when none does.
fn aim_aside(
    point: Vec2,
    along: Vec2,
    offset_m: f32,
    link: LinkId,
    radius_m: f32,
    scene: &SidewalkScene,
) -> Option<Vec2> {
    let along = along.normalize_or_zero();
    let right = Vec2::new(along.y, -along.x) * offset_m;
    let room = radius_m + KEEP_RIGHT_ROOM_M;
    KEEP_RIGHT_SHARES.iter().map(|&share| point + right * share).find(|&candidate| {
        scene
            .obstacles(link)
            .iter()
            .all(|&b| scene.box_distance(b, candidate) >= room || scene.clearance(b, candidate) >= room)
    })
}

/// ORCA for the agent in `slot`: preferred velocity towards its target, half-planes for buildings then the
/// nearest agents; then the building check on the resulting move.
fn plan_agent(
    slot: usize,
    a: &Agent,
    scene: &SidewalkScene,
    params: &CrowdParams,
    view: &View,
    s: &mut PlanScratch,
    contacts: &mut Vec<u32>,
) -> Plan {
    let dt = params.step_s;
    let t = &a.target;
    // Held on a kerb, the agent walks to its kerb point and stops there; at its destination it stops too.
    let kerb = kerb_point(a, scene, view.crossings, params.keep_right_m >= 0.0);
    let (aim, stops) = match kerb {
        Some(k) => (k, true),
        None => (t.aim, t.next.is_none()),
    };
    let to = aim - a.pos;
    let dist = to.length();
    let speed = if stops { a.spec.speed_mps.min(dist / dt) } else { a.spec.speed_mps };
    let preferred = if dist > f32::EPSILON { to / dist * speed } else { Vec2::ZERO };
    s.planes.clear();
    let obstacles = scene.obstacles(t.link);
    let reach = a.spec.radius_m + a.spec.max_speed_mps * params.obstacle_horizon_s;
    for &b in obstacles {
        if scene.box_distance(b, a.pos) > reach {
            continue;
        }
        let q = scene.closest_point(b, a.pos);
        // An agent inside a building (a passage of the link it came from) gets no half-plane for it: it walks
        // out along its walk line, and the building check lets it only get farther in no more.
        if q.distance(a.pos) <= reach && !shapes::contains(scene.footprint(b), a.pos) {
            s.planes.extend(orca::obstacle_half_plane(a.pos, a.spec.radius_m, q, params.obstacle_horizon_s));
        }
    }
    let n_obstacles = s.planes.len();
    // The nearest `max_neighbours` within range. Agents move little in a step, so last step's neighbours are
    // still near: the search first looks only as far as the farthest of them can now be (the window), and
    // looks again over the whole range unless it kept `max_neighbours`, the farthest inside the window (then
    // no agent outside it can be nearer: the result is the whole search's, exactly).
    let me = view.slots[slot];
    let range_m = params.neighbour_range_m;
    // The whole search reaches the range and the contacts.
    let whole_m = range_m.max(view.reach_m);
    let window_m = (a.neighbour_reach_m + 2.0 * view.move_m).max(view.reach_m);
    let contacts_before = contacts.len();
    let mut overlapping = find_neighbours(slot, window_m.min(whole_m), params, view, s, contacts);
    let enough = |near: &[(f32, u32, usize)]| {
        near.len() >= params.max_neighbours && near.last().is_none_or(|n| n.0 < window_m * window_m)
    };
    if window_m < whole_m && !enough(&s.near) {
        contacts.truncate(contacts_before);
        overlapping = find_neighbours(slot, whole_m, params, view, s, contacts);
    }
    let neighbour_reach_m = match s.near.last() {
        _ if params.max_neighbours == 0 => 0.0,
        Some(&(d2, _, _)) if s.near.len() >= params.max_neighbours => d2.sqrt(),
        _ => f32::INFINITY,
    };
    let mut near_pedestrian = false;
    for &(d2, _, other) in &s.near {
        let o = &view.slots[other];
        let share = me.weight / (me.weight + o.weight);
        // ORCA keeps the pair a margin farther apart than their bodies need.
        let (mut mine, mut theirs) = (me.disc, o.disc);
        mine.radius += params.orca_margin_m / 2.0;
        theirs.radius += params.orca_margin_m / 2.0;
        s.planes.push(orca::agent_half_plane(&mine, &theirs, share, params.agent_horizon_s, dt));
        if me.kind == AgentKind::Robot
            && o.kind == AgentKind::Pedestrian
            && d2.sqrt() - me.disc.radius - o.disc.radius < params.close_pass_m
        {
            near_pedestrian = true;
        }
    }
    let (mut v, feasible) = if s.planes.is_empty() {
        (preferred.clamp_length_max(a.spec.max_speed_mps), true)
    } else {
        s.solver.solve(&s.planes, n_obstacles, a.spec.max_speed_mps, preferred)
    };
    // A move that would end too close to a building slides along it (its inward part is dropped), and if
    // that does not do, is halved.
    let mut building_stop = false;
    let (mut slides, mut halvings) = (0, 0);
    while let Some(b) = blocking_building(a.pos, a.pos + v * dt, a.spec.radius_m, obstacles, scene) {
        building_stop = true;
        if slides < BUILDING_SLIDES {
            slides += 1;
            let end = a.pos + v * dt;
            let outward = (end - scene.closest_point(b, end)).normalize_or_zero();
            v -= v.dot(outward).min(0.0) * outward;
            continue;
        }
        halvings += 1;
        if halvings > BUILDING_HALVINGS {
            v = Vec2::ZERO;
            break;
        }
        v *= 0.5;
    }
    Plan {
        next_pos: a.pos + v * dt,
        next_vel: v,
        infeasible: !feasible,
        building_stop,
        near_pedestrian,
        neighbour_reach_m,
        overlapping,
        held: kerb.is_some(),
    }
}

/// Finds the nearest `max_neighbours` agents within the neighbour range of the agent in `slot` among those in the
/// cells within `window_m` of it, into `s.near`, sorted by squared distance then id: the nearest of all when
/// `max_neighbours` were kept and the farthest is nearer than `window_m`. Pushes its contacts (the other
/// agents within the step's reach, which `window_m` must cover; not those it passes through). Returns
/// whether it overlaps a pedestrian it passes through (one of the two squeezes).
fn find_neighbours(
    slot: usize,
    window_m: f32,
    params: &CrowdParams,
    view: &View,
    s: &mut PlanScratch,
    contacts: &mut Vec<u32>,
) -> bool {
    s.near.clear();
    let me = &view.slots[slot];
    let range_sq = params.neighbour_range_m * params.neighbour_range_m;
    let contact_sq = view.reach_m * view.reach_m;
    // The squared distance of the farthest neighbour kept, once `max_neighbours` are.
    let mut worst = f32::INFINITY;
    let mut overlapping = false;
    // The square is widened by the round-off tolerance, so that no agent within `window_m` is missed.
    view.grid.for_each_in_square(me.disc.pos, window_m + OVERLAP_TOLERANCE_M, |other, q| {
        if other == slot {
            return;
        }
        let d2 = q.distance_squared(me.disc.pos);
        let o = &view.slots[other];
        if me.passes_through(o) {
            let touch = me.disc.radius + o.disc.radius;
            overlapping |= d2 < range_sq && d2 < touch * touch;
            return;
        }
        if d2 < contact_sq {
            contacts.push(other as u32);
        }
        if d2 >= range_sq || d2 > worst {
            return;
        }
        // Insertion into the short sorted list, in place.
        let entry = (d2, o.id, other);
        s.near.push(entry);
        let mut at = s.near.len() - 1;
        while at > 0 && (s.near[at - 1].0, s.near[at - 1].1) > (d2, entry.1) {
            s.near[at] = s.near[at - 1];
            at -= 1;
        }
        s.near[at] = entry;
        if s.near.len() >= params.max_neighbours {
            s.near.truncate(params.max_neighbours);
            worst = s.near.last().map_or(f32::NEG_INFINITY, |n| n.0);
        }
    });
    overlapping
}

/// Where the agent must stop before the crossing at the end of its link, if it may not cross now and has not
/// stepped onto the road yet: the kerb distance back along its walk line from the node, kept to the right as
/// its aim is. Looked at once the agent's next waypoint is closer to the node than the kerb.
fn kerb_point(a: &Agent, scene: &SidewalkScene, crossings: &Crossings, keeps_right: bool) -> Option<Vec2> {
    let t = &a.target;
    t.next?;
    let k = crossings.at_link_end(t.link)?;
    let line = scene.walk_line(t.link);
    let n = line.len();
    let heading = (line[n - 1] - line[n.checked_sub(2)?]).normalize_or_zero();
    let leave = (t.next? - t.goal).normalize_or_zero();
    if heading == Vec2::ZERO || leave == Vec2::ZERO {
        return None;
    }
    let walker =
        CrossingWalker { arrive: heading, leave, speed_mps: a.spec.speed_mps, radius_m: a.spec.radius_m, keeps_right };
    let setback = crossings.wait_before(k, &walker)?;
    // Along the walk line back from the node: the target waypoint's distance, then the kerb.
    let mut from_end = 0.0;
    for j in (a.point + 1..n).rev() {
        from_end += line[j].distance(line[j - 1]);
        if from_end > setback {
            return None;
        }
    }
    let target_from_end = from_end;
    let mut kerb = line[0];
    for j in (1..=a.point).rev() {
        let len = line[j].distance(line[j - 1]);
        if from_end + len >= setback {
            kerb = line[j] + (line[j - 1] - line[j]) * ((setback - from_end) / len.max(f32::EPSILON));
            break;
        }
        from_end += len;
    }
    if a.pos.distance(line[a.point]) + target_from_end < setback - ON_ROAD_M {
        return None;
    }
    Some(kerb + (t.aim - t.goal))
}

/// The first building a move from `from` to `to` brings a disc of `radius` too close to: closer than the
/// radius, and closer than it was.
fn blocking_building(from: Vec2, to: Vec2, radius: f32, obstacles: &[u32], scene: &SidewalkScene) -> Option<u32> {
    obstacles.iter().copied().find(|&b| {
        if scene.box_distance(b, to) >= radius {
            return false;
        }
        let after = scene.clearance(b, to);
        after < radius - OVERLAP_TOLERANCE_M && after < scene.clearance(b, from)
    })
}

/// True when the tentative position of the agent in `slot` overlaps another's and is closer to it than
/// before.
fn in_conflict(slot: usize, tentative: &[Vec2], slots: &[Slot], contacts: &Contacts) -> bool {
    let me = &slots[slot].disc;
    let p = tentative[slot];
    contacts.of(slot).iter().any(|&other| {
        let (other, theirs) = (other as usize, &slots[other as usize].disc);
        let d = p.distance(tentative[other]);
        d < me.radius + theirs.radius - OVERLAP_TOLERANCE_M && d < me.pos.distance(theirs.pos)
    })
}

/// Moves the agent's waypoint on past the ones it has reached; true when it has arrived.
fn advance_waypoints(a: &mut Agent, scene: &SidewalkScene, aims: &AimTable, params: &CrowdParams) -> bool {
    loop {
        let t = a.target;
        let d = a.pos.distance(t.goal);
        let Some(next) = t.next else {
            return d <= params.arrival_m;
        };
        let at_junction = a.point + 1 == scene.walk_line(t.link).len();
        let reach = if at_junction { params.junction_reach_m } else { params.waypoint_reach_m };
        let passed = (next - t.goal).dot(a.pos - t.goal) > 0.0;
        if !(d <= reach || (passed && d <= PASSED_REACH_FACTOR * reach)) {
            return false;
        }
        if at_junction {
            a.leg += 1;
            a.point = 1.min(scene.walk_line(a.route[a.leg]).len() - 1);
        } else {
            a.point += 1;
        }
        a.target = target(a, scene, aims, params.keep_right_m);
    }
}

#[cfg(test)]
mod tests;
