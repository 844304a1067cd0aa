//! The rules that carry one domain's state into another, all in one place: no domain reads another's
//! state itself. Each rule is a system that runs in the receiving domain's tick, before that domain's own
//! step, and reads the other domain's last published state.
//!
//! Rules so far:
//! - **flood → grid sites**: the water above the ground at each substation site (the flood raster's cell
//!   under the site, over the banks in a river channel) becomes [`GridState::site_depth_m`]; the grid trips
//!   and restores its sites from it (`crate::grid::plugin`).
//! - **mobility → grid home charging**: when a person whose car is electric (a `[grid.ev] share` of the
//!   drivers, drawn from the seed) arrives home by car, the energy of the car legs since they last left home
//!   (length × `kwh_per_km`) becomes a charging session at their home's grid connection
//!   ([`GridState::ev_arrived`]).
//! - **flood → road closures**: a road link the flood publishes as under water (deeper than `[flood]
//!   road_closure_depth_m` somewhere along it, [`FloodedLinks`]) is closed in the microscopic model: no
//!   vehicle enters it, vehicles whose route uses it re-route, vehicles on it drive off and are counted; it
//!   re-opens when the water recedes.
//! - **flood → footpath closures**: footpaths under water (deeper than `[flood] footpath_closure_depth_m`)
//!   are closed to the robot domain's robots and pedestrians: they re-route, and doors they cut off fail as
//!   flooded deliveries.
//! - **robots → grid charging**: every robot depot is a grid charger ([`robot_depot_chargers`]: at the
//!   depot, rated for all its robots charging at once, connected to the nearest LV bus). Each grid step
//!   draws the depot's mean charging power over the previous grid step (the energy the fleet charged there
//!   divided by the step), so the grid sees the fleet's charging energy one grid step late and none is lost
//!   or invented.
//! - **grid → robot depots**: a depot whose charger bus was de-energised at the last power flow (a tripped
//!   substation upstream) has no supply: its plugged-in robots do not charge until supply returns.
//! - **mobility → robots and pedestrians at crossings** ([`crossings`]): where a footpath crosses a road,
//!   the crowd learns before every step whether each road's vehicles have a green light and when the next
//!   vehicle arrives (from the vehicle model's forecasts); walkers wait on the kerb for a red light and a
//!   gap as long as their crossing time plus a start-up time.

pub mod crossings;

use crate::flood::plugin::{FloodState, FloodedLinks};
use crate::grid::plugin::{ChargerDemand, ChargerSite, GridSection, GridState, GridSystems, DOMAIN as GRID};
use crate::mobility::teleport::DOMAIN as MOBILITY;
use crate::mobility::teleport::{Mode, PersonId, TripLog};
use crate::mobility::traffic::{TrafficState, TrafficSystems};
use crate::population::ActivityKind;
use crate::rng::{stream, Purpose};
use crate::robots::plugin::{RobotsSection, RobotsState, RobotsSystems, DOMAIN as ROBOTS};
use crate::sim::{DomainTick, PopulationRes, SimClock};
use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use rand::Rng;

/// Adds the coupling rules of the domains present. Add it after the domains' plugins.
pub struct CouplingPlugin;

impl Plugin for CouplingPlugin {
    fn build(&self, app: &mut App) {
        if app.world().contains_resource::<TrafficState>() && app.world().contains_resource::<FloodedLinks>() {
            app.add_systems(DomainTick(MOBILITY), flooded_roads_closed.before(TrafficSystems::Advance));
        }
        if app.world().contains_resource::<RobotsState>() && app.world().contains_resource::<FloodedLinks>() {
            app.add_systems(DomainTick(ROBOTS), flooded_footpaths_closed.before(RobotsSystems::Advance));
        }
        if app.world().contains_resource::<GridState>() {
            app.add_systems(
                DomainTick(GRID),
                (flood_depth_at_grid_sites, ev_arrivals_to_home_charging).before(GridSystems::Advance),
            );
        }
        if app.world().contains_resource::<RobotsState>()
            && app.world().contains_resource::<crossings::CrossingTraffic>()
        {
            app.add_systems(DomainTick(ROBOTS), crossings::traffic_at_crossings.before(RobotsSystems::Advance));
        }
        if app.world().contains_resource::<DepotChargers>() {
            app.add_systems(DomainTick(GRID), robot_charging_to_grid.before(GridSystems::Advance));
            app.add_systems(DomainTick(ROBOTS), grid_supply_to_depots.before(RobotsSystems::Advance));
        }
    }
}

/// Flood → grid: the depth above the ground at each grid site; 0 where the site is off the flood raster.
pub fn flood_depth_at_grid_sites(flood: Option<Res<FloodState>>, mut grid: ResMut<GridState>) {
    let Some(flood) = flood else { return };
    let depths = flood.solver.depths();
    let grid = &mut *grid;
    for (depth, site) in grid.site_depth_m.iter_mut().zip(&grid.sites) {
        *depth = match flood.grid.cell_at(site.pos) {
            Some(c) => flood.grid.above_ground(c, depths[c]) as f64,
            None => 0.0,
        };
    }
}

/// Flood → mobility: road links under water are closed to vehicles; links the water left re-open.
pub fn flooded_roads_closed(flooded: Res<FloodedLinks>, mut traffic: ResMut<TrafficState>) {
    traffic.flooded.clone_from(&flooded.roads);
}

/// Flood → robots: footpaths under water are closed to robots and pedestrians (they re-route; doors cut off
/// fail); footpaths the water left re-open.
pub fn flooded_footpaths_closed(flooded: Res<FloodedLinks>, mut robots: ResMut<RobotsState>) {
    if flooded.footpaths.len() == robots.closed.len() {
        robots.closed.clone_from(&flooded.footpaths);
    }
}

/// The grid chargers (indices in the grid section's `chargers`) that are the robot depots, in depot order.
#[derive(Resource, Clone, Debug, PartialEq)]
pub struct DepotChargers(pub Vec<usize>);

/// Robots → grid, at set-up: `grid` with one charger per robot depot appended (named `robot depot K`, at
/// the depot, rated for all its robots charging at once), and the indices of those chargers.
pub fn robot_depot_chargers(grid: &GridSection, robots: &RobotsSection) -> (GridSection, DepotChargers) {
    let mut grid = grid.clone();
    let mut indices = Vec::with_capacity(robots.depots.len());
    for (k, depot) in robots.depots.iter().enumerate() {
        indices.push(grid.chargers.len());
        grid.chargers.push(ChargerSite {
            name: format!("robot depot {k}"),
            x_m: depot.at[0],
            y_m: depot.at[1],
            power_kw: depot.robots as f64 * robots.robot.charger_kw as f64,
        });
    }
    (grid, DepotChargers(indices))
}

/// Robots → grid: each depot charger draws the depot's mean charging power over the previous grid step.
pub fn robot_charging_to_grid(
    clock: Res<SimClock>,
    robots: Res<RobotsState>,
    depots: Res<DepotChargers>,
    mut demand: ResMut<ChargerDemand>,
    mut previous: Local<Option<(u64, Vec<f64>)>>,
) {
    let charged = robots.fleet.depot_charged_kwh();
    let now = clock.now_ms;
    let needed = depots.0.iter().copied().max().map_or(0, |k| k + 1);
    if demand.0.len() < needed {
        demand.0.resize(needed, 0.0);
    }
    if let Some((since, before)) = previous.as_ref() {
        let hours = now.saturating_sub(*since) as f64 / 3_600_000.0;
        for ((&charger, &kwh), &kwh_before) in depots.0.iter().zip(charged).zip(before) {
            demand.0[charger] = if hours > 0.0 { (kwh - kwh_before) / hours } else { 0.0 };
        }
    }
    *previous = Some((now, charged.to_vec()));
}

/// Grid → robots: depots whose charger had no supply at the last power flow stop charging their robots.
pub fn grid_supply_to_depots(grid: Res<GridState>, depots: Res<DepotChargers>, mut robots: ResMut<RobotsState>) {
    let supplied: Vec<bool> = depots.0.iter().map(|&k| grid.charger_supplied(k)).collect();
    robots.fleet.set_depot_supply(&supplied);
}

/// The seed the run's random streams come from, for the coupling's own draws.
#[derive(Resource, Clone, Copy, Debug)]
pub struct CouplingSeed(pub u64);

/// Mobility → grid: electric cars that arrived home since the last grid step start charging there.
pub fn ev_arrivals_to_home_charging(
    clock: Res<SimClock>,
    seed: Option<Res<CouplingSeed>>,
    population: Option<Res<PopulationRes>>,
    persons: Query<(&PersonId, &TripLog)>,
    mut grid: ResMut<GridState>,
    mut scanned_to: Local<u64>,
) {
    let (Some(seed), Some(population)) = (seed, population) else { return };
    let ev = grid.settings.ev.clone();
    let now = clock.clock_ms();
    let since = *scanned_to;
    *scanned_to = now;
    if ev.share <= 0.0 {
        return;
    }
    let mut arrivals: Vec<(u64, u32, usize, f64)> = Vec::new();
    for (id, log) in &persons {
        for (k, r) in log.0.iter().enumerate() {
            if r.purpose != ActivityKind::Home || r.mode != Mode::Car || r.arrive_ms < since || r.arrive_ms >= now {
                continue;
            }
            if stream(seed.0, Purpose::EvOwnership, id.0 as u64, 0).random::<f64>() >= ev.share {
                continue;
            }
            // The car legs since the person last left home.
            let start = log.0[..k].iter().rposition(|x| x.purpose == ActivityKind::Home).map_or(0, |h| h + 1);
            let km: f64 =
                log.0[start..=k].iter().filter(|x| x.mode == Mode::Car).map(|x| x.length_m as f64 / 1000.0).sum();
            let home = population.0.persons[id.0 as usize].home as usize;
            arrivals.push((r.arrive_ms, id.0, home, km * ev.kwh_per_km));
        }
    }
    arrivals.sort_by_key(|a| (a.0, a.1));
    for (_, _, home, kwh) in arrivals {
        grid.ev_arrived(home, kwh);
    }
}
