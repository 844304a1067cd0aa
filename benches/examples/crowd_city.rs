//! The sidewalk crowd's load test (issue 6's target): 1,000 delivery robots and 10,000 pedestrians walking
//! random routes on Andorra la Vella's footpaths, each starting a new walk when it arrives. Runs once on one
//! piece and once split for two threads (or only one of them), prints the speed against real time and checks
//! both runs agree. `cargo run --release -p machi-benches --example crowd_city -- [simulated s] [robots]
//! [pedestrians] [1|2]` (default 8 h, 1000, 10000, both).

use machi::city::routing::{ContractedRouter, Weight};
use machi::crowd::wander::Wanderers;
use machi::crowd::{AgentId, AgentSpec, Crowd, CrowdParams, SceneParams, SidewalkScene, ROBOT_SPEED_LIMIT_MPS};
use machi::scenario::Scenario;
use std::sync::Arc;
use std::time::Instant;

/// Agents standing still longer than this (s) at the end are reported as stuck, with where they stand.
const STUCK_S: f32 = 60.0;

fn main() {
    let args: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let duration_s = args.first().copied().unwrap_or(8.0 * 3600.0);
    let robots = args.get(1).copied().unwrap_or(1000.0) as u32;
    let pedestrians = args.get(2).copied().unwrap_or(10_000.0) as u32;
    let only = args.get(3).map(|&v| v as usize);
    machi::sim::init_thread_pool(2);
    let scenario = Scenario::load(&machi_benches::scenario("andorra/baseline.toml")).expect("scenario loads");
    let city = machi::run::load_city(&scenario).expect("city imports");
    let started = Instant::now();
    let footprints = city.buildings.iter().map(|b| b.footprint.clone()).collect();
    let scene = Arc::new(SidewalkScene::new(footprints, &city.footpaths, &SceneParams::default()));
    println!("scene: {:?} in {:.2} s", scene.report(), started.elapsed().as_secs_f64());
    let started = Instant::now();
    let router = ContractedRouter::new(&city.footpaths, Weight::Length);
    println!("footpath hierarchy in {:.2} s", started.elapsed().as_secs_f64());
    let wanderers = Wanderers::new(&city.footpaths, 1);
    let mut finals = Vec::new();
    for chunks in [1, 2].into_iter().filter(|c| only.is_none_or(|o| o == *c)) {
        let mut params = CrowdParams::default();
        // CROWD_TAU, CROWD_JREACH and CROWD_JAM override the ORCA time horizon against agents (s), the
        // junction reach (m) and the jam time (s), for experiments.
        if let Some(tau) = std::env::var("CROWD_TAU").ok().and_then(|v| v.parse().ok()) {
            params.agent_horizon_s = tau;
        }
        if let Some(v) = std::env::var("CROWD_JREACH").ok().and_then(|v| v.parse().ok()) {
            params.junction_reach_m = v;
        }
        if let Some(v) = std::env::var("CROWD_JAM").ok().and_then(|v| v.parse().ok()) {
            params.jam_time_s = v;
        }
        let mut crowd = Crowd::new(scene.clone(), params);
        crowd.set_parallel_chunks(chunks);
        let mut calc = router.calculator();
        let mut trips = vec![0u64; (robots + pedestrians) as usize];
        let mut routes_s = 0.0;
        for k in 0..robots + pedestrians {
            let spec = if k < robots {
                AgentSpec::robot(ROBOT_SPEED_LIMIT_MPS)
            } else {
                AgentSpec::pedestrian(wanderers.speed_mps(k))
            };
            let id = crowd.add(spec);
            let route = wanderers.route(&router, &mut calc, k, 0, wanderers.start(k)).expect("a route");
            crowd.send(id, route).expect("non-empty");
        }
        let steps = (duration_s / crowd.params().step_s as f64).round() as u64;
        let started = Instant::now();
        for _ in 0..steps {
            let arrived = crowd.step();
            let t = Instant::now();
            for id in arrived {
                let k = id.0;
                trips[k as usize] += 1;
                let here = city.footpaths.link(*crowd.route(id).last().expect("walked a route")).to;
                if let Some(route) = wanderers.route(&router, &mut calc, k, trips[k as usize], here) {
                    crowd.send(id, route).expect("non-empty");
                }
            }
            routes_s += t.elapsed().as_secs_f64();
        }
        let wall = started.elapsed().as_secs_f64();
        let st = crowd.stats();
        let stuck: Vec<u32> = (0..crowd.len() as u32).filter(|&i| crowd.still_s(AgentId(i)) > STUCK_S).collect();
        let stuck_robots = stuck.iter().filter(|&&i| i < robots).count();
        let waiting = stuck.iter().filter(|&&i| crowd.waiting_to_cross(AgentId(i))).count();
        println!(
            "standing still for more than {STUCK_S} s at the end: {} ({stuck_robots} robots; {waiting} waiting to cross a road)",
            stuck.len()
        );
        {
            let mut spots = std::collections::BTreeMap::new();
            for &i in &stuck {
                let p = crowd.position(AgentId(i));
                *spots.entry(((p.x / 20.0).round() as i32 * 20, (p.y / 20.0).round() as i32 * 20)).or_insert(0) += 1;
            }
            let mut v: Vec<_> = spots.into_iter().collect();
            v.sort_by_key(|x| std::cmp::Reverse(x.1));
            println!("where they stand (20 m squares, most first): {} squares, {:?}", v.len(), &v[..v.len().min(8)]);
        }
        println!(
            "{} chunk(s): {robots} robots + {pedestrians} pedestrians for {duration_s:.0} s: {:.1} s wall ({routes_s:.1} s routing), {:.0}x real time, {:.2} M agent-steps/s; {} walks done; {st:?}",
            chunks,
            wall,
            duration_s / wall,
            st.agent_steps as f64 / wall / 1e6,
            st.arrivals,
        );
        finals.push((0..crowd.len()).map(|i| crowd.position(AgentId(i as u32))).collect::<Vec<_>>());
    }
    if finals.len() == 2 {
        assert_eq!(finals[0], finals[1], "the two runs agree");
        println!("both runs end in bit-identical positions");
    }
}
