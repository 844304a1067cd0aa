//! Mobility → robots: where the footpaths cross roads, and the traffic there before every crowd step.
//!
//! **Set-up** ([`find_crossings`]). A footpath node is a crossing when it is a road node too (the same source
//! node, at the same place) and walkers cross a road there: a road junction (three or more neighbouring road
//! nodes), a signal node, or a footway meeting the road (more footpath neighbours than road neighbours).
//! A bend or a change of tags along one street is none. Its approaches are the road links into that node;
//! but within a signal controller's cluster radius of the controller's centre, the controller's approaches
//! (OSM maps signals on the approaches, a few metres before the junction: the crossing at the centre obeys
//! their lights). Each approach carries the direction its vehicles arrive in, its road's width (its lanes and
//! the opposite direction's, times the city's lane width) and what controls it.
//!
//! **Every crowd step** ([`traffic_at_crossings`]). A signalised approach's vehicles may go on green and
//! yellow (its plan at the clock time, the same plans the vehicle models run). Where no signal controls
//! an approach (or its signal is off), its next vehicle comes from the vehicle model's forecasts
//! ([`ArrivalWatch`](crate::mobility::traffic::ArrivalWatch)): the earliest of the approach link's own forecast and those of the links feeding it
//! plus the approach's free-flow time. Without a vehicle model (teleported car trips) no vehicle is known,
//! and only lights hold walkers.

use crate::city::control::{Light, SignalPlan};
use crate::city::graph::{Graph, LinkId, NodeId};
use crate::city::City;
use crate::crowd::crossings::{Approach, ApproachTraffic, CrossingParams, Crossings};
use crate::mobility::junctions::{Control, Junctions, SignalParams};
use crate::mobility::traffic::TrafficState;
use crate::robots::plugin::RobotsState;
use crate::sim::SimClock;
use bevy_ecs::prelude::*;
use glam::Vec2;
use std::collections::HashMap;

/// A footpath node and a road node with the same source id are one place only within this distance (m):
/// networks from different sources (a SUMO net beside OSM footpaths) may reuse ids.
const SAME_PLACE_M: f32 = 1.0;

/// What controls a crossing's approach.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ApproachControl {
    /// Signal `index` of controller `controller`.
    Signal { controller: u32, index: u16 },
    /// No signal: walkers wait for a gap.
    Gap,
}

/// The road side of the crossings, for the coupling's rule each step: the approaches' controls, the signal
/// plans, and which watched road links feed each approach.
#[derive(Resource, Clone, Debug, Default)]
pub struct CrossingTraffic {
    /// Per approach, in the crowd's order.
    controls: Vec<ApproachControl>,
    plans: Vec<SignalPlan>,
    /// The road links the vehicle model forecasts arrivals for (slot order).
    watched: Vec<LinkId>,
    /// `feeds[feed_start[k]..feed_start[k + 1]]`: approach `k`'s watched slots and the time (s) from their
    /// link's end to the crossing.
    feed_start: Vec<u32>,
    feeds: Vec<(u32, f64)>,
}

impl CrossingTraffic {
    /// The road links whose arrivals the vehicle model must forecast, in slot order.
    pub fn watched(&self) -> &[LinkId] {
        &self.watched
    }
}

/// The crossings of `city` with its signal plans (as the vehicle models generate them from `signals`).
pub fn crossings_of(city: &City, signals: &SignalParams, params: CrossingParams) -> (Crossings, CrossingTraffic) {
    let junctions = Junctions::from_control(&city.roads, &city.traffic_control, signals);
    find_crossings(
        &city.roads,
        &city.footpaths,
        &junctions,
        city.defaults.lane_width_m,
        signals.cluster_radius_m,
        params,
    )
}

/// The crossings of `footpaths` over `roads` (module doc): the crowd's side and the coupling's.
pub fn find_crossings(
    roads: &Graph,
    footpaths: &Graph,
    junctions: &Junctions,
    lane_width_m: f32,
    cluster_radius_m: f32,
    params: CrossingParams,
) -> (Crossings, CrossingTraffic) {
    let road_at = roads.nodes_by_source();
    let (road_nb, foot_nb) = (roads.neighbour_counts(), footpaths.neighbour_counts());
    let into = roads.links_into();
    // Signal controllers: their approaches and centre.
    let mut controlled: Vec<Vec<LinkId>> = vec![Vec::new(); junctions.plans.len()];
    for (k, c) in junctions.control.iter().enumerate() {
        if let Control::Signal { controller, .. } = *c {
            controlled[controller as usize].push(LinkId(k as u32));
        }
    }
    let centres: Vec<Option<Vec2>> = controlled
        .iter()
        .map(|links| {
            let ends = links.iter().map(|&l| roads.node(roads.link(l).to).pos);
            (!links.is_empty()).then(|| ends.sum::<Vec2>() / links.len() as f32)
        })
        .collect();
    let mut slot_of: HashMap<LinkId, u32> = HashMap::new();
    let mut traffic = CrossingTraffic { plans: junctions.plans.clone(), feed_start: vec![0], ..Default::default() };
    let mut sites = Vec::new();
    for (f, node) in footpaths.nodes().iter().enumerate() {
        let Some(&r) = road_at.get(&node.source_id) else { continue };
        if roads.node(r).pos.distance(node.pos) > SAME_PLACE_M {
            continue;
        }
        let controller = centres
            .iter()
            .enumerate()
            .filter_map(|(c, centre)| centre.map(|p| (p.distance(node.pos), c)))
            .filter(|&(d, _)| d <= cluster_radius_m)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| c);
        let ru = r.0 as usize;
        let crosses = road_nb[ru] >= 3 || roads.node(r).signal || foot_nb[f] > road_nb[ru] || controller.is_some();
        if !crosses {
            continue;
        }
        let links = match controller {
            Some(c) => &controlled[c],
            None => &into[ru],
        };
        let mut approaches = Vec::with_capacity(links.len());
        for &l in links {
            let link = roads.link(l);
            let g = &link.geometry;
            let heading = (g[g.len() - 1] - g[g.len() - 2]).normalize_or_zero();
            let opposite = roads.out_links(link.to).iter().map(|&o| roads.link(o)).find(|o| o.to == link.from);
            let lanes = link.lanes as f32 + opposite.map_or(0.0, |o| o.lanes as f32);
            approaches.push(Approach { heading, width_m: lanes * lane_width_m });
            traffic.controls.push(match junctions.control[l.0 as usize] {
                Control::Signal { controller, index } => ApproachControl::Signal { controller, index },
                _ => ApproachControl::Gap,
            });
            // Its own vehicles, and those on the links feeding it (a U-turn excepted).
            let mut slot = |l: LinkId| {
                let next = slot_of.len() as u32;
                *slot_of.entry(l).or_insert_with(|| {
                    traffic.watched.push(l);
                    next
                })
            };
            traffic.feeds.push((slot(l), 0.0));
            for &p in &into[link.from.0 as usize] {
                if roads.link(p).from != link.to {
                    traffic.feeds.push((slot(p), link.free_flow_time_s() as f64));
                }
            }
            traffic.feed_start.push(traffic.feeds.len() as u32);
        }
        sites.push((NodeId(f as u32), approaches));
    }
    (Crossings::new(footpaths, sites, params), traffic)
}

/// Mobility → robots: the lights and the next vehicles at every crossing, for the crowd's next step.
pub fn traffic_at_crossings(
    clock: Res<SimClock>,
    crossing: Res<CrossingTraffic>,
    mut traffic: Option<ResMut<TrafficState>>,
    mut robots: ResMut<RobotsState>,
) {
    let t = (clock.start_of_day_ms + clock.now_ms) as f64 / 1000.0;
    let forecast = traffic.as_mut().and_then(|tr| tr.arrivals.latest_at(t));
    set_approach_traffic(&crossing, forecast, t, robots.crowd.crossings_mut().traffic_mut());
}

/// Each approach's traffic at clock time `t_s` (s) from its control and the latest arrival forecast.
fn set_approach_traffic(crossing: &CrossingTraffic, forecast: Option<&[f64]>, t_s: f64, out: &mut [ApproachTraffic]) {
    for (k, (out, control)) in out.iter_mut().zip(&crossing.controls).enumerate() {
        let (vehicles_go, gaps) = match *control {
            ApproachControl::Signal { controller, index } => {
                match crossing.plans[controller as usize].light(index, t_s) {
                    Light::Green | Light::Yellow => (true, false),
                    Light::Red => (false, false),
                    Light::Off => (false, true),
                }
            }
            ApproachControl::Gap => (false, true),
        };
        let mut next = f64::INFINITY;
        if let (true, Some(arrive)) = (gaps, forecast) {
            let feeds = &crossing.feeds[crossing.feed_start[k] as usize..crossing.feed_start[k + 1] as usize];
            for &(slot, extra_s) in feeds {
                next = next.min(arrive[slot as usize] + extra_s - t_s);
            }
        }
        *out = ApproachTraffic { vehicles_go, next_vehicle_s: next.max(0.0) as f32 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crowd::crossings::CrossingWalker;
    use crate::mobility::junctions::tests::cross;

    /// The crossings of a cross of streets whose footpaths are the streets themselves.
    fn cross_crossings(signal: bool) -> (Graph, Crossings, CrossingTraffic) {
        let roads = cross(100.0, signal);
        let junctions = Junctions::generate(&roads, &SignalParams::default());
        let (crossings, traffic) = find_crossings(
            &roads,
            &roads,
            &junctions,
            3.5,
            SignalParams::default().cluster_radius_m,
            CrossingParams::default(),
        );
        (roads, crossings, traffic)
    }

    /// A pedestrian keeping right, walking straight on in direction `d`.
    fn straight_on(d: Vec2) -> CrossingWalker {
        CrossingWalker { arrive: d, leave: d, speed_mps: 1.3, radius_m: 0.25, keeps_right: true }
    }

    #[test]
    fn the_junction_is_a_crossing_and_the_street_ends_are_not() {
        let (roads, crossings, traffic) = cross_crossings(false);
        assert_eq!(crossings.len(), 1);
        assert_eq!(crossings.node(0), NodeId(0));
        let approaches = crossings.approaches(0);
        assert_eq!(approaches.len(), 4);
        for a in approaches {
            assert_eq!(a.width_m, 7.0, "one lane each way");
            assert!((a.heading.length() - 1.0).abs() < 1e-6);
        }
        // Each approach link watched once; nothing feeds the arms but the U-turn from the centre.
        assert_eq!(traffic.watched().len(), 4);
        assert!(traffic.watched().iter().all(|&l| roads.link(l).to == NodeId(0)));
        assert_eq!(traffic.controls, vec![ApproachControl::Gap; 4]);
    }

    #[test]
    fn a_vehicle_forecast_sets_the_gap_of_its_approach_only() {
        let (roads, mut crossings, traffic) = cross_crossings(false);
        let t = 100.0;
        let mut arrive = vec![f64::INFINITY; traffic.watched().len()];
        // A vehicle on the approach from the west reaches the junction 4 s from now.
        let west = traffic.watched().iter().position(|&l| roads.link(l).geometry[0].x < -1.0).unwrap();
        arrive[west] = t + 4.0;
        set_approach_traffic(&traffic, Some(&arrive), t, crossings.traffic_mut());
        let heading_of_west = crossings.approaches(0)[west].heading;
        assert!(heading_of_west.x > 0.99);
        // Walking north across the junction on the east side crosses the east arm, into which the vehicle
        // drives: it waits. Walking east along the west–east street does not.
        assert!(crossings.wait_before(0, &straight_on(Vec2::Y)).is_some());
        assert_eq!(crossings.wait_before(0, &straight_on(Vec2::X)), None);
        // Without a forecast (no vehicle model), nothing holds walkers at a junction without signals.
        set_approach_traffic(&traffic, None, t, crossings.traffic_mut());
        assert_eq!(crossings.wait_before(0, &straight_on(Vec2::Y)), None);
    }

    #[test]
    fn walkers_cross_with_the_green_of_the_parallel_street() {
        let (_, mut crossings, traffic) = cross_crossings(true);
        assert_eq!(crossings.len(), 1);
        assert!(traffic.controls.iter().all(|c| matches!(c, ApproachControl::Signal { .. })));
        let plan = &traffic.plans[0];
        let cycle = plan.cycle_s();
        let (mut along_primary, mut across_primary, mut both) = (0, 0, 0);
        let steps = 900;
        for k in 0..steps {
            let t = k as f64 * cycle / steps as f64;
            set_approach_traffic(&traffic, None, t, crossings.traffic_mut());
            let east = crossings.wait_before(0, &straight_on(Vec2::X)).is_none();
            let north = crossings.wait_before(0, &straight_on(Vec2::Y)).is_none();
            along_primary += east as usize;
            across_primary += north as usize;
            both += (east && north) as usize;
        }
        // Each axis has 40 s of green and 3 s of yellow in the 90 s cycle, then 2 s of all-red. Walking along
        // the primary street waits through the side street's 43 s, and across it through the primary's;
        // only in the two all-red intervals may both go.
        let share = |n: usize| n as f64 / steps as f64;
        assert!((share(along_primary) - 47.0 / 90.0).abs() < 0.01, "{}", share(along_primary));
        assert!((share(across_primary) - 47.0 / 90.0).abs() < 0.01, "{}", share(across_primary));
        assert!((share(both) - 4.0 / 90.0).abs() < 0.01, "{}", share(both));
    }
}
