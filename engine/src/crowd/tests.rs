use super::*;
use crate::city::graph::{Graph, GraphBuilder};
use crate::import::tags::WayClass;

/// Corridor half-width (m) between the two buildings.
const HALF_WIDTH: f32 = 2.0;
/// Corridor length (m).
const LENGTH: f32 = 50.0;

fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Vec<Vec2> {
    vec![Vec2::new(x0, y0), Vec2::new(x1, y0), Vec2::new(x1, y1), Vec2::new(x0, y1)]
}

/// Distance from `p` to an axis-aligned rectangle (0 inside), computed without the scene.
fn rect_distance(r: &[Vec2], p: Vec2) -> f32 {
    let d = (r[0] - p).max(p - r[2]).max(Vec2::ZERO);
    d.length()
}

/// A corridor 4 m wide and 50 m long between two buildings, with its footpath along the middle: link 0 runs
/// east, link 1 west.
fn corridor() -> (Graph, Vec<Vec<Vec2>>) {
    let mut g = GraphBuilder::new();
    let west = g.node(1, Vec2::new(0.0, 0.0), false);
    let east = g.node(2, Vec2::new(LENGTH, 0.0), false);
    g.straight(west, east, 1.3, 1, WayClass::Footway);
    g.straight(east, west, 1.3, 1, WayClass::Footway);
    let walls = vec![rect(-5.0, HALF_WIDTH, LENGTH + 5.0, 10.0), rect(-5.0, -10.0, LENGTH + 5.0, -HALF_WIDTH)];
    (g.build(), walls)
}

fn scene_params() -> SceneParams {
    SceneParams { clearance_m: ROBOT_RADIUS_M + 0.1, obstacle_range_m: 3.0, waypoint_spacing_m: 1.0 }
}

/// Robots eastwards and pedestrians westwards, sent a few per second; runs until all arrive (or 900 s),
/// checking after every step that no two agents overlap and no agent overlaps a wall. Returns the crowd and
/// the positions after every step.
fn run_corridor(robots: usize, pedestrians: usize, per_second: usize, chunks: usize) -> (Crowd, Vec<Vec<Vec2>>) {
    let (graph, walls) = corridor();
    let scene = Arc::new(SidewalkScene::new(walls.clone(), &graph, &scene_params()));
    let mut crowd = Crowd::new(scene, CrowdParams::default());
    crowd.set_parallel_chunks(chunks);
    let mut pending = Vec::new();
    for k in 0..robots.max(pedestrians) {
        if k < robots {
            pending.push((crowd.add(AgentSpec::robot(ROBOT_SPEED_LIMIT_MPS)), LinkId(0)));
        }
        if k < pedestrians {
            let speed = 1.1 + 0.05 * (k % 9) as f32;
            pending.push((crowd.add(AgentSpec::pedestrian(speed)), LinkId(1)));
        }
    }
    let mut trace = Vec::new();
    let steps_per_second = (1.0 / crowd.params().step_s) as usize;
    for step in 0..(900 * steps_per_second) {
        // `per_second` agents a second set off (each waits at its entry until there is room).
        if step % steps_per_second == 0 {
            for _ in 0..per_second.min(pending.len()) {
                let (id, link) = pending.remove(0);
                crowd.send(id, vec![link]).unwrap();
            }
        }
        crowd.step();
        let pos: Vec<Vec2> = (0..crowd.len()).map(|i| crowd.position(AgentId(i as u32))).collect();
        let on_walk: Vec<usize> =
            (0..crowd.len()).filter(|&i| crowd.status(AgentId(i as u32)) == AgentStatus::Walking).collect();
        for (x, &i) in on_walk.iter().enumerate() {
            let ri = crowd.spec(AgentId(i as u32)).radius_m;
            for wall in &walls {
                assert!(rect_distance(wall, pos[i]) >= ri - 1e-3, "agent {i} overlaps a wall at step {step}");
            }
            for &j in &on_walk[x + 1..] {
                let rj = crowd.spec(AgentId(j as u32)).radius_m;
                let d = pos[i].distance(pos[j]);
                assert!(d >= ri + rj - 1e-3, "agents {i} and {j} overlap at step {step}: {d} m apart");
            }
        }
        trace.push(pos);
        if pending.is_empty() && (0..crowd.len()).all(|i| crowd.status(AgentId(i as u32)) == AgentStatus::Arrived) {
            break;
        }
    }
    (crowd, trace)
}

#[test]
fn crowded_corridor_everyone_arrives_and_no_one_overlaps() {
    let (crowd, trace) = run_corridor(30, 120, 4, 1);
    let stuck: Vec<usize> =
        (0..crowd.len()).filter(|&i| crowd.status(AgentId(i as u32)) != AgentStatus::Arrived).collect();
    assert!(stuck.is_empty(), "not arrived after {} s: {stuck:?}", trace.len() as f32 * 0.25);
    let stats = crowd.stats();
    assert_eq!(stats.arrivals, 150);
    // Robots and pedestrians met: the corridor was really crowded.
    assert!(stats.close_passes > 0, "{stats:?}");
    // Each walked about the corridor's length, no long detours.
    for i in 0..crowd.len() {
        let walked = crowd.walked_m(AgentId(i as u32));
        assert!(walked >= LENGTH as f64 - 0.5 && walked < LENGTH as f64 * 1.3, "agent {i} walked {walked} m");
    }
}

#[test]
fn results_do_not_depend_on_the_number_of_chunks() {
    let (a, trace_a) = run_corridor(6, 18, 2, 1);
    let (b, trace_b) = run_corridor(6, 18, 2, 3);
    assert_eq!(trace_a, trace_b);
    assert_eq!(a.stats(), b.stats());
}

#[test]
fn a_lone_walker_follows_a_two_link_route_at_its_speed() {
    // An L-shaped path: 30 m east, then 20 m north, no buildings.
    let mut g = GraphBuilder::new();
    let a = g.node(1, Vec2::new(0.0, 0.0), false);
    let b = g.node(2, Vec2::new(30.0, 0.0), false);
    let c = g.node(3, Vec2::new(30.0, 20.0), false);
    let ab = g.straight(a, b, 1.3, 1, WayClass::Footway);
    let bc = g.straight(b, c, 1.3, 1, WayClass::Footway);
    let scene = Arc::new(SidewalkScene::new(Vec::new(), &g.build(), &scene_params()));
    let mut crowd = Crowd::new(scene, CrowdParams::default());
    let id = crowd.add(AgentSpec::pedestrian(1.25));
    crowd.send(id, vec![ab, bc]).unwrap();
    let mut steps = 0;
    while crowd.status(id) != AgentStatus::Arrived {
        crowd.step();
        steps += 1;
        assert!(steps < 400, "still walking at {:?}", crowd.position(id));
    }
    // 50 m at 1.25 m/s is 40 s, give or take the corner it cuts (waypoints count as reached within 1 m) and
    // the step to the right of the line (keep right) and back to the destination.
    let t = steps as f32 * 0.25;
    assert!((38.0..=41.0).contains(&t), "took {t} s");
    assert!(crowd.position(id).distance(Vec2::new(30.0, 20.0)) <= 0.3);
    assert!((48.0..=51.5).contains(&crowd.walked_m(id)), "walked {}", crowd.walked_m(id));
    assert_eq!(crowd.send(id, Vec::new()), Err(CrowdError::EmptyRoute(0)));
}

#[test]
fn a_robot_rounds_a_building_corner_close_to_the_wall() {
    // A path 0.7 m west of a building, then along its north side 0.7 m away: keeping right would put the
    // robot into the wall, so it keeps right only as far as there is room, and slides round the corner.
    let building = rect(0.0, 0.0, 10.0, 10.0);
    let mut g = GraphBuilder::new();
    let a = g.node(1, Vec2::new(-0.7, 1.0), false);
    let b = g.node(2, Vec2::new(-0.7, 10.7), false);
    let c = g.node(3, Vec2::new(9.0, 10.7), false);
    let ab = g.straight(a, b, 1.3, 1, WayClass::Footway);
    let bc = g.straight(b, c, 1.3, 1, WayClass::Footway);
    let scene = Arc::new(SidewalkScene::new(vec![building.clone()], &g.build(), &scene_params()));
    let mut crowd = Crowd::new(scene, CrowdParams::default());
    let id = crowd.add(AgentSpec::robot(ROBOT_SPEED_LIMIT_MPS));
    crowd.send(id, vec![ab, bc]).unwrap();
    let mut steps = 0;
    while crowd.status(id) != AgentStatus::Arrived {
        crowd.step();
        steps += 1;
        assert!(rect_distance(&building, crowd.position(id)) >= ROBOT_RADIUS_M - 1e-3, "overlaps the building");
        assert!(steps < 200, "stuck at {:?}", crowd.position(id));
    }
    assert!(crowd.stats().building_stops < 10, "{:?}", crowd.stats());
}

/// Two agents sent head-on along a lane too narrow to pass in (0.96 m between walls: room for a robot, not
/// for two people side by side): returns whether each arrived within `limit_s`, the crowd's stats, and the
/// closest the two came (m).
fn head_on_in_a_passage(
    first: AgentSpec,
    second: AgentSpec,
    jam_time_s: f32,
    limit_s: f32,
) -> ([bool; 2], CrowdStats, f32) {
    let mut g = GraphBuilder::new();
    let west = g.node(1, Vec2::new(0.0, 0.0), false);
    let east = g.node(2, Vec2::new(20.0, 0.0), false);
    g.straight(west, east, 1.3, 1, WayClass::Footway);
    g.straight(east, west, 1.3, 1, WayClass::Footway);
    let walls = vec![rect(-5.0, 0.48, 25.0, 5.0), rect(-5.0, -5.0, 25.0, -0.48)];
    // The walk line stays in the middle (a clearance the lane has, so it is no passage through a building).
    let params = SceneParams { clearance_m: 0.3, ..scene_params() };
    let scene = Arc::new(SidewalkScene::new(walls, &g.build(), &params));
    let mut crowd = Crowd::new(scene, CrowdParams { jam_time_s, ..CrowdParams::default() });
    let (a, b) = (crowd.add(first), crowd.add(second));
    crowd.send(a, vec![LinkId(0)]).unwrap();
    crowd.send(b, vec![LinkId(1)]).unwrap();
    let mut arrived = [false; 2];
    let mut closest = f32::INFINITY;
    for _ in 0..(limit_s / crowd.params().step_s) as usize {
        for id in crowd.step() {
            arrived[id.0 as usize] = true;
        }
        if crowd.status(a) == AgentStatus::Walking && crowd.status(b) == AgentStatus::Walking {
            closest = closest.min(crowd.position(a).distance(crowd.position(b)));
        }
    }
    (arrived, crowd.stats().clone(), closest)
}

#[test]
fn jammed_pedestrians_squeeze_past_each_other_and_robots_give_way() {
    let walker = AgentSpec::pedestrian(1.3);
    // Without squeezing, two people meeting in the passage stand there for good.
    let (arrived, _, closest) = head_on_in_a_passage(walker, walker, f32::INFINITY, 120.0);
    assert_eq!(arrived, [false, false]);
    assert!(closest >= 2.0 * PEDESTRIAN_RADIUS_M - 1e-3);
    // Jammed for 5 s, they squeeze past each other and both get through.
    let (arrived, stats, _) = head_on_in_a_passage(walker, walker, 5.0, 120.0);
    assert_eq!(arrived, [true, true], "{stats:?}");
    assert!(stats.jam_squeezes >= 1);
    // A robot is never squeezed past: it backs out of the lane before the person (it takes most of the
    // avoidance), never overlapping them, and then goes through.
    let (arrived, stats, closest) = head_on_in_a_passage(AgentSpec::robot(ROBOT_SPEED_LIMIT_MPS), walker, 5.0, 120.0);
    assert_eq!(arrived, [true, true], "{stats:?}");
    assert!(closest >= ROBOT_RADIUS_M + PEDESTRIAN_RADIUS_M - 1e-3, "{closest}");
}

/// A footpath from (-30, 0) east to a crossing node at the origin and on to (30, 0), no buildings; the
/// crossing has a north–south road 7 m wide. Returns the crowd and the agent sent along the whole path.
fn crossing_walk(kind: AgentKind) -> (Crowd, AgentId) {
    let (graph, crossings) = crossings::tests::crossing(30.0);
    let scene = Arc::new(SidewalkScene::new(Vec::new(), &graph, &scene_params()));
    let mut crowd = Crowd::new(scene, CrowdParams::default());
    crowd.set_crossings(crossings);
    let spec = match kind {
        AgentKind::Robot => AgentSpec::robot(ROBOT_SPEED_LIMIT_MPS),
        AgentKind::Pedestrian => AgentSpec::pedestrian(1.3),
    };
    let id = crowd.add(spec);
    crowd.send(id, vec![LinkId(0), LinkId(1)]).unwrap();
    (crowd, id)
}

#[test]
fn a_walker_waits_on_the_kerb_while_the_road_across_has_green_and_crosses_on_red() {
    for kind in [AgentKind::Robot, AgentKind::Pedestrian] {
        let (mut crowd, id) = crossing_walk(kind);
        let radius = crowd.spec(id).radius_m;
        crowd.crossings_mut().traffic_mut()[0].vehicles_go = true;
        // 30 m at 1.3–1.67 m/s: on the kerb well within 60 s, and held there.
        for _ in 0..240 {
            crowd.step();
            assert!(crowd.position(id).x <= -(3.5 + radius) + 1e-3, "{kind:?} stepped onto the road on green");
        }
        assert!(crowd.waiting_to_cross(id));
        assert!(crowd.position(id).x > -(3.5 + radius) - 0.05, "{kind:?} waits on the kerb, not short of it");
        assert_eq!(crowd.stats().crossing_waits, 1);
        let held_s = crowd.stats().crossing_wait_s;
        assert!(held_s > 30.0 && held_s < 60.0, "{held_s} s held");
        assert_eq!(crowd.stats().robot_crossing_waits, (kind == AgentKind::Robot) as u64);
        // Red for the road: it crosses and arrives.
        crowd.crossings_mut().traffic_mut()[0].vehicles_go = false;
        let mut arrived = false;
        for _ in 0..240 {
            arrived |= crowd.step().contains(&id);
        }
        assert!(arrived, "{kind:?} did not arrive after the light changed");
        assert!(!crowd.waiting_to_cross(id));
        assert_eq!(crowd.stats().crossing_waits, 1);
    }
}

#[test]
fn a_walker_on_the_road_goes_on_when_the_gap_closes_behind_it() {
    let (mut crowd, id) = crossing_walk(AgentKind::Pedestrian);
    // Walk until on the road (past the kerb, 3.75 m before the node).
    while crowd.position(id).x < -2.0 {
        crowd.step();
    }
    // A vehicle 2 s away: too close to start crossing, but the walker is already crossing.
    crowd.crossings_mut().traffic_mut()[1].next_vehicle_s = 2.0;
    let before = crowd.position(id).x;
    for _ in 0..8 {
        crowd.step();
    }
    assert!(crowd.position(id).x > before + 1.0, "a walker on the road stopped");
    assert_eq!(crowd.stats().crossing_waits, 0);
}

/// A neighbour search inside a window that certifies itself (it kept `max_neighbours`, the farthest inside the
/// window) finds exactly what the search over the whole range finds, and every search finds every contact.
#[test]
fn a_windowed_neighbour_search_that_certifies_itself_matches_the_whole_search() {
    // A dense cluster (about 4 agents per m²) inside a sparse fringe, placed by fixed low-discrepancy sequences.
    let pos: Vec<Vec2> = (0..600)
        .map(|k| {
            let (u, v) = ((k as f32 * 0.618_034).fract(), (k as f32 * 0.754_878).fract());
            if k % 2 == 0 {
                Vec2::new(u * 8.0, v * 8.0)
            } else {
                Vec2::new(u * 40.0 - 16.0, v * 40.0 - 16.0)
            }
        })
        .collect();
    let members: Vec<u32> = (0..pos.len() as u32).collect();
    let reach_m = 2.0 * (ROBOT_RADIUS_M + ROBOT_SPEED_LIMIT_MPS * 0.25);
    let mut grid = CellGrid::default();
    grid.rebuild(reach_m, &pos, &members);
    let slots: Vec<Slot> = grid
        .ids()
        .map(|id| Slot {
            id,
            disc: Disc { pos: pos[id as usize], vel: Vec2::ZERO, radius: PEDESTRIAN_RADIUS_M },
            weight: 1.0,
            kind: AgentKind::Pedestrian,
            squeezing: false,
        })
        .collect();
    let crossings = Crossings::default();
    let view = View { slots: &slots, grid: &grid, crossings: &crossings, reach_m, move_m: 0.4 };
    let params = CrowdParams::default();
    let range_m = params.neighbour_range_m;
    let (mut whole, mut windowed) = (PlanScratch::default(), PlanScratch::default());
    let (mut certified, mut not_certified) = (0, 0);
    for slot in 0..slots.len() {
        let mut whole_contacts = Vec::new();
        find_neighbours(slot, range_m, &params, &view, &mut whole, &mut whole_contacts);
        whole_contacts.sort_unstable();
        for window_m in [reach_m, 1.2 * reach_m, 2.0 * reach_m] {
            let mut contacts = Vec::new();
            find_neighbours(slot, window_m, &params, &view, &mut windowed, &mut contacts);
            contacts.sort_unstable();
            assert_eq!(contacts, whole_contacts, "slot {slot}, window {window_m} m: the contacts");
            let farthest = windowed.near.last().map(|n| n.0);
            if windowed.near.len() >= params.max_neighbours && farthest.is_some_and(|d2| d2 < window_m * window_m) {
                certified += 1;
                assert_eq!(windowed.near, whole.near, "slot {slot}, window {window_m} m: the neighbours");
            } else {
                not_certified += 1;
            }
        }
    }
    // Both cases occur, so both branches were tested.
    assert!(certified > 100 && not_certified > 100, "{certified} certified, {not_certified} not");
}
