//! The replay observer: writes the static city and the population into the replay when the run starts, then
//! an agent frame at every frame interval — every person away from home, at their building or on their way
//! (a straight line between the two buildings, as the free-flow model has no route positions). Persons at
//! home are not repeated in frames: the population table gives their home.
//!
//! Streams: 0 = city (JSON), 1 = population (JSON), 2 = person frames, 6 = vehicle frames of the microscopic
//! model, 7 = robots and pedestrians on the sidewalks, 8 = ground elevation (the others: flood and grid, see the constants). Writing runs on the replay sink's
//! own thread ([`crate::replay::ReplaySink`]), so the tick never waits on compression or disk.

use crate::city::City;
use crate::error::InputError;
use crate::flood::plugin::FloodState;
use crate::grid::plugin::{GridState, SiteState};
use crate::mobility::teleport::{Itinerary, Mode, PersonId, PersonState};
use crate::mobility::traffic::TrafficState;
use crate::population::Population;
use crate::replay::{encode_raster, RasterFrame};
use crate::replay::{
    AgentFrame, AgentState, ReplayError, ReplayHeader, ReplayMessage, ReplaySink, ReplaySummary, ReplayWriter,
};
use crate::robots::fleet::RobotState;
use crate::robots::plugin::{RobotsState, SidewalkState};
use crate::scenario::Scenario;
use crate::sim::{Observe, SimClock};
use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use serde_json::json;
use std::path::Path;

/// Stream of the static city (JSON).
pub const STREAM_CITY: u16 = 0;
/// Stream of the population table (JSON).
pub const STREAM_POPULATION: u16 = 1;
/// Stream of person frames.
pub const STREAM_PERSONS: u16 = 2;
/// Stream of flood depth rasters (m).
pub const STREAM_FLOOD_DEPTH: u16 = 3;
/// Static stream of the grid (JSON: the synthesised grid as GeoJSON and its flood sites).
pub const STREAM_GRID_NETWORK: u16 = 4;
/// Custom stream of grid states, one chunk per power flow: see [`encode_grid_frame`].
pub const STREAM_GRID: u16 = 5;
/// Stream of vehicle frames of the microscopic model (agent kind 1), every `[output] vehicle_frame_interval`.
pub const STREAM_VEHICLES: u16 = 6;

/// Stream of the sidewalk agents of the robot domain (agent kinds 2 robot and 3 pedestrian), every
/// `[output] sidewalk_frame_interval`.
pub const STREAM_SIDEWALK: u16 = 7;

/// Static stream of the ground elevation the city was imported with (a raster payload, see
/// [`crate::replay::encode_raster`]: m above the terrain model's datum, NaN where there is no data). Written
/// only when the city has terrain; the viewer draws the terrain and sets buildings and water on it.
pub const STREAM_TERRAIN: u16 = 8;

/// Custom stream of closed links: a chunk whenever the set of road links closed to vehicles (by the scenario
/// or by flooding) or of footpaths closed by flooding changes, and one at the start; see
/// [`encode_closures`].
pub const STREAM_CLOSURES: u16 = 9;

/// Agent kind of a car (a vehicle of the vehicle models that is not a bus).
pub const AGENT_KIND_VEHICLE: u8 = 1;
/// Agent kind of a scheduled bus.
pub const AGENT_KIND_BUS: u8 = 4;
/// Agent kind of a delivery robot.
pub const KIND_ROBOT: u8 = 2;
/// Agent kind of a pedestrian of the robot domain's crowd.
pub const KIND_PEDESTRIAN: u8 = 3;

/// Agent state code of a moving vehicle.
pub const VEHICLE_MOVING: u8 = 0;
/// Agent state code of a standing (queued) vehicle.
pub const VEHICLE_STANDING: u8 = 1;

/// Agent state code of a robot waiting on a kerb to cross a road (on its way out or back).
pub const ROBOT_WAITING_TO_CROSS: u8 = 6;
/// Agent state code of a sidewalk pedestrian waiting on a kerb to cross a road.
pub const PEDESTRIAN_WAITING_TO_CROSS: u8 = 2;

/// Agent state code of a sidewalk agent (robot: 0 idle, 1 charging, 2 delivering, 3 handing over, 4
/// returning, 5 plugged in without supply, 6 waiting to cross; pedestrian: 0 walking, 1 standing, 2 waiting
/// to cross).
pub fn sidewalk_code(state: SidewalkState) -> (u8, u8) {
    match state {
        SidewalkState::Robot(s) => (
            KIND_ROBOT,
            match s {
                RobotState::Idle => 0,
                RobotState::Charging => 1,
                RobotState::Delivering => 2,
                RobotState::HandingOver => 3,
                RobotState::Returning => 4,
            },
        ),
        SidewalkState::RobotWithoutSupply => (KIND_ROBOT, 5),
        SidewalkState::RobotWaitingToCross => (KIND_ROBOT, ROBOT_WAITING_TO_CROSS),
        SidewalkState::PedestrianWaitingToCross => (KIND_PEDESTRIAN, PEDESTRIAN_WAITING_TO_CROSS),
        SidewalkState::PedestrianWalking => (KIND_PEDESTRIAN, 0),
        SidewalkState::PedestrianStanding => (KIND_PEDESTRIAN, 1),
    }
}

/// Agent state code of a person driving. Persons at an activity carry `ActivityKind as u8` (0 home, 1 work,
/// 2 school, 3 shop).
pub const STATE_DRIVING: u8 = 4;
/// Agent state code of a person walking.
pub const STATE_WALKING: u8 = 5;
/// Agent state code of a person making a trip by bus (walking to the stop, waiting, riding, walking on).
pub const STATE_BY_BUS: u8 = 6;

/// The open replay and its frame interval.
#[derive(Resource)]
pub struct ReplaySettings {
    sink: Option<ReplaySink>,
    /// Interval between frames (ms).
    pub frame_interval_ms: u64,
    error: Option<ReplayError>,
    /// Start (ms) of the last grid step written.
    grid_written_ms: Option<u64>,
    /// The closed road links and footpaths last written.
    closures_written: Option<(Vec<u32>, Vec<u32>)>,
}

fn round2(v: f32) -> f64 {
    (v as f64 * 100.0).round() / 100.0
}

/// The static city as JSON: frame origin, buildings, road and footpath links, waterways, bus stops.
pub fn city_json(city: &City) -> serde_json::Value {
    let line = |pts: &[glam::Vec2]| pts.iter().map(|p| [round2(p.x), round2(p.y)]).collect::<Vec<_>>();
    let (lon, lat) = city.frame.origin_lon_lat();
    json!({
        "name": city.name,
        "origin_lon_lat": [lon, lat],
        "buildings": city.buildings.iter().map(|b| json!({
            "id": b.source_id, "height_m": round2(b.height_m), "use": b.building_use,
            "footprint": line(&b.footprint),
        })).collect::<Vec<_>>(),
        "roads": city.roads.links().iter().map(|l| json!({
            "from": l.from.0, "to": l.to.0, "lanes": l.lanes, "class": l.class,
            "speed_mps": round2(l.speed_mps), "geometry": line(&l.geometry),
        })).collect::<Vec<_>>(),
        "signals": city.roads.nodes().iter().filter(|n| n.signal).map(|n| [round2(n.pos.x), round2(n.pos.y)]).collect::<Vec<_>>(),
        "footpaths": city.footpaths.links().iter().step_by(2).map(|l| line(&l.geometry)).collect::<Vec<_>>(),
        "waterways": city.waterways.iter().map(|w| json!({"kind": w.kind, "covered": w.covered, "line": line(&w.line)})).collect::<Vec<_>>(),
        "bus_stops": city.bus_stops.iter().map(|s| [round2(s.pos.x), round2(s.pos.y)]).collect::<Vec<_>>(),
    })
}

impl ReplaySettings {
    /// Creates the replay at `path` and writes the static streams.
    pub fn open(
        path: &Path,
        scenario: &Scenario,
        seed: u64,
        city: &City,
        population: &Population,
    ) -> Result<ReplaySettings, ReplayError> {
        let header = ReplayHeader {
            city: city.name.clone(),
            scenario: scenario.name().to_string(),
            scenario_hash: format!("{:016x}", scenario.hash()),
            seed,
            start_ms: 0,
            end_ms: scenario.duration_ms,
            units: [
                ("x_m", "m east of the city origin (local transverse Mercator frame)"),
                ("y_m", "m north of the city origin"),
                ("t_ms", "ms since the run's start"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            frame_interval_ms: scenario.frame_interval_ms,
            agent_kinds: vec!["person".into(), "vehicle".into(), "robot".into(), "pedestrian".into(), "bus".into()],
            extra: json!({
                "start_of_day_ms": scenario.start_ms,
                "streams": {"0": "city (JSON)", "1": "population (JSON)", "2": "persons away from home", "3": "flood depth (m)",
                            "4": "grid network (JSON)", "5": "grid state per power flow (custom, see docs/replay-format.md)",
                            "6": "vehicles of the microscopic model", "7": "delivery robots and pedestrians on the sidewalks",
                            "8": "ground elevation (m, static raster)",
                            "9": "closed road links and footpaths (custom, see docs/replay-format.md)"},
                "person_states": {"1": "at work", "2": "at school", "3": "shopping", "4": "driving", "5": "walking",
                                  "6": "by bus"},
                "vehicle_states": {"0": "moving", "1": "standing"},
                "robot_states": {"0": "idle", "1": "charging", "2": "delivering", "3": "handing over", "4": "returning",
                                 "5": "plugged in without supply"},
                "pedestrian_states": {"0": "walking", "1": "standing"},
            }),
        };
        let writer = ReplayWriter::create(path, &header)?;
        let sink = ReplaySink::spawn(writer);
        let persons: Vec<_> = population.persons.iter().map(|p| json!([p.home, p.workplace, p.role])).collect();
        sink.send(ReplayMessage::Static {
            stream: STREAM_CITY,
            payload: serde_json::to_vec(&city_json(city)).unwrap_or_default(),
        })?;
        let pop = json!({"columns": ["home_building", "workplace_building", "role"], "persons": persons});
        sink.send(ReplayMessage::Static {
            stream: STREAM_POPULATION,
            payload: serde_json::to_vec(&pop).unwrap_or_default(),
        })?;
        if let Some(terrain) = &city.terrain {
            let raster = RasterFrame {
                t_ms: 0,
                width: terrain.width as u32,
                height: terrain.height as u32,
                origin_x_m: terrain.origin.x,
                origin_y_m: terrain.origin.y,
                cell_m: terrain.cell_m,
                values: terrain.elevation_m.clone(),
            };
            let payload = encode_raster(&raster).map_err(|message| ReplayError::Sink { message })?;
            sink.send(ReplayMessage::Static { stream: STREAM_TERRAIN, payload })?;
        }
        Ok(ReplaySettings {
            sink: Some(sink),
            frame_interval_ms: scenario.frame_interval_ms,
            error: None,
            grid_written_ms: None,
            closures_written: None,
        })
    }

    /// Closes the replay (index, checksum, rename into place) and reports what it holds.
    pub fn finish(&mut self) -> Result<ReplaySummary, ReplayError> {
        let sink = self.sink.take().ok_or_else(|| ReplayError::Sink { message: "replay already finished".into() })?;
        let summary = sink.finish();
        match self.error.take() {
            Some(e) => Err(e),
            None => summary,
        }
    }

    fn send(&mut self, message: ReplayMessage) {
        if self.error.is_some() {
            return;
        }
        if let Some(sink) = &self.sink {
            if let Err(e) = sink.send(message) {
                self.error = Some(e);
            }
        }
    }
}

impl From<InputError> for ReplayError {
    fn from(e: InputError) -> Self {
        ReplayError::Sink { message: e.to_string() }
    }
}

/// Adds the frame-writing observer.
pub struct ReplayObserverPlugin;

impl Plugin for ReplayObserverPlugin {
    fn build(&self, app: &mut App) {
        // One fixed order: the writer's chunks depend on the order messages reach it, and the replay must be
        // the same at any thread count.
        app.add_systems(
            Observe,
            (record_persons, record_flood, record_grid, record_vehicles, record_sidewalk, record_closures).chain(),
        );
    }
}

fn record_persons(
    clock: Res<SimClock>,
    mut replay: ResMut<ReplaySettings>,
    city: Res<crate::sim::CityRes>,
    persons: Query<(&PersonId, &PersonState, &Itinerary)>,
) {
    let now = clock.now_ms;
    if !now.is_multiple_of(replay.frame_interval_ms.max(1)) && now != clock.end_ms {
        return;
    }
    let clock_now = clock.clock_ms();
    let buildings = &city.0.buildings;
    let mut agents: Vec<AgentState> = persons
        .iter()
        .filter_map(|(id, s, itinerary)| {
            let (pos, state) = match s.travelling {
                Some((dep, arr)) => {
                    let trip = &itinerary.0[s.next_trip as usize];
                    // While a vehicle carries the person, the arrival is not known yet: a driver is placed by
                    // the trip's planned free-flow time (at the destination once that is up); a passenger by
                    // bus stays at the origin (the bus they ride is in the vehicle stream).
                    let pending = arr == crate::mobility::traffic::PENDING_ARRIVAL;
                    let arr = if pending && s.mode == Mode::Car { dep + trip.time_ms } else { arr };
                    let f = if arr > dep { (clock_now.saturating_sub(dep)) as f32 / (arr - dep) as f32 } else { 1.0 };
                    let a = buildings[trip.from as usize].centroid;
                    let b = buildings[trip.to as usize].centroid;
                    let state = match s.mode {
                        Mode::Car => STATE_DRIVING,
                        Mode::Bus => STATE_BY_BUS,
                        _ => STATE_WALKING,
                    };
                    (a.lerp(b, f.clamp(0.0, 1.0)), state)
                }
                None if s.activity == crate::population::ActivityKind::Home => return None,
                None => (buildings[s.at as usize].centroid, s.activity as u8),
            };
            Some(AgentState { id: id.0, kind: 0, state, x_m: pos.x, y_m: pos.y })
        })
        .collect();
    agents.sort_by_key(|a| a.id);
    replay.send(ReplayMessage::AgentFrame { stream: STREAM_PERSONS, frame: AgentFrame { t_ms: now, agents } });
}

/// Writes the vehicle frames the microscopic model took since the last observation (it buffers them at its
/// own frame interval, finer than the observers' sync points); the buffer is handed over, so emptied here.
fn record_vehicles(mut replay: ResMut<ReplaySettings>, traffic: Option<ResMut<TrafficState>>) {
    let Some(mut traffic) = traffic else { return };
    for frame in std::mem::take(&mut traffic.frames) {
        let mut agents: Vec<AgentState> = frame
            .vehicles
            .iter()
            .map(|v| AgentState {
                id: v.id,
                kind: if v.bus { AGENT_KIND_BUS } else { AGENT_KIND_VEHICLE },
                state: if v.standing { VEHICLE_STANDING } else { VEHICLE_MOVING },
                x_m: v.x_m,
                y_m: v.y_m,
            })
            .collect();
        // By id, as the replay's position coding expects (the models give them lane by lane).
        agents.sort_by_key(|a| a.id);
        replay.send(ReplayMessage::AgentFrame {
            stream: STREAM_VEHICLES,
            frame: AgentFrame { t_ms: frame.t_ms, agents },
        });
    }
}

/// Writes the sidewalk frames the robot domain took since the last observation (handed over, so emptied
/// here).
fn record_sidewalk(mut replay: ResMut<ReplaySettings>, robots: Option<ResMut<RobotsState>>) {
    let Some(mut robots) = robots else { return };
    for frame in std::mem::take(&mut robots.frames) {
        let mut agents: Vec<AgentState> = frame
            .agents
            .iter()
            .map(|a| {
                let (kind, state) = sidewalk_code(a.state);
                AgentState { id: a.id, kind, state, x_m: a.pos.x, y_m: a.pos.y }
            })
            .collect();
        agents.sort_by_key(|a| a.id);
        replay.send(ReplayMessage::AgentFrame {
            stream: STREAM_SIDEWALK,
            frame: AgentFrame { t_ms: frame.t_ms, agents },
        });
    }
}

fn record_flood(clock: Res<SimClock>, mut replay: ResMut<ReplaySettings>, flood: Option<Res<FloodState>>) {
    let Some(flood) = flood else { return };
    let now = clock.now_ms;
    if !now.is_multiple_of(flood.raster_interval_ms) && now != clock.end_ms {
        return;
    }
    let g = &flood.grid;
    let raster = RasterFrame {
        t_ms: now,
        width: g.nx as u32,
        height: g.ny as u32,
        origin_x_m: g.origin.x,
        origin_y_m: g.origin.y,
        cell_m: g.cell_m,
        // Water above the terrain the replay's city carries (over the banks in a carved river channel).
        values: flood.solver.depths().iter().enumerate().map(|(c, &h)| g.above_ground(c, h)).collect(),
    };
    replay.send(ReplayMessage::Raster { stream: STREAM_FLOOD_DEPTH, raster });
}

/// Writes the closed road links (closed to vehicles by the scenario or by the flood) and the footpaths closed
/// by the flood, when they change. Footpaths are numbered as in the city stream (one per pair of directions).
fn record_closures(
    clock: Res<SimClock>,
    mut replay: ResMut<ReplaySettings>,
    flooded: Option<Res<crate::flood::plugin::FloodedLinks>>,
    traffic: Option<Res<TrafficState>>,
) {
    if flooded.is_none() && traffic.is_none() {
        return;
    }
    let mut roads = Vec::new();
    let n_roads = flooded
        .as_ref()
        .map_or(0, |f| f.roads.len())
        .max(traffic.as_ref().map_or(0, |t| t.traffic.graph().links().len()));
    for k in 0..n_roads {
        let by_flood = flooded.as_ref().is_some_and(|f| f.roads.get(k).copied().unwrap_or(false));
        let by_traffic = traffic.as_ref().is_some_and(|t| t.traffic.is_closed(crate::city::graph::LinkId(k as u32)));
        if by_flood || by_traffic {
            roads.push(k as u32);
        }
    }
    let footpaths: Vec<u32> = match &flooded {
        Some(f) => (0..f.footpaths.len().div_ceil(2))
            .filter(|&k| f.footpaths[2 * k] || f.footpaths.get(2 * k + 1).copied().unwrap_or(false))
            .map(|k| k as u32)
            .collect(),
        None => Vec::new(),
    };
    let now = (roads, footpaths);
    if replay.closures_written.as_ref() == Some(&now) {
        return;
    }
    let payload = encode_closures(&now.0, &now.1);
    replay.send(ReplayMessage::Custom {
        stream: STREAM_CLOSURES,
        t_first_ms: clock.now_ms,
        t_last_ms: clock.now_ms,
        payload,
    });
    replay.closures_written = Some(now);
}

/// A closures payload (stream 9), little-endian: `u32` R, R `u32` closed road link indices (the city stream's
/// road order), `u32` F, F `u32` closed footpath indices (the city stream's footpath order).
pub fn encode_closures(roads: &[u32], footpaths: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 4 * (roads.len() + footpaths.len()));
    for list in [roads, footpaths] {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        out.extend(list.iter().flat_map(|v| v.to_le_bytes()));
    }
    out
}

/// Decodes a payload of [`STREAM_CLOSURES`]: (closed road links, closed footpaths).
pub fn decode_closures(payload: &[u8]) -> Result<(Vec<u32>, Vec<u32>), String> {
    let mut words = payload.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if !payload.len().is_multiple_of(4) {
        return Err(format!("a closures payload of {} bytes is not whole u32 words", payload.len()));
    }
    let mut list = |what: &str| -> Result<Vec<u32>, String> {
        let n = words.next().ok_or_else(|| format!("the closures payload ends before its {what} count"))? as usize;
        let v: Vec<u32> = words.by_ref().take(n).collect();
        if v.len() != n {
            return Err(format!("the closures payload announces {n} {what} but holds {}", v.len()));
        }
        Ok(v)
    };
    let roads = list("road links")?;
    let footpaths = list("footpaths")?;
    if words.next().is_some() {
        return Err("the closures payload is longer than its counts say".into());
    }
    Ok((roads, footpaths))
}

/// A grid frame: `u32` bus count B, `u32` branch count R, `u32` site count S (little-endian), then B `f32`
/// bus voltages (pu; NaN where de-energised), R `f32` branch loadings (%; NaN without a rating or out of
/// service), S `u8` site states (0 in service, 1 flooded, 2 repairing).
pub fn encode_grid_frame(vm_pu: &[f64], loading_percent: &[f64], sites: &[SiteState]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + 4 * (vm_pu.len() + loading_percent.len()) + sites.len());
    for n in [vm_pu.len(), loading_percent.len(), sites.len()] {
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
    for &v in vm_pu.iter().chain(loading_percent) {
        out.extend_from_slice(&(v as f32).to_le_bytes());
    }
    out.extend(sites.iter().map(|s| match s {
        SiteState::InService => 0u8,
        SiteState::Flooded => 1,
        SiteState::Repairing { .. } => 2,
    }));
    out
}

/// A decoded grid frame (see [`encode_grid_frame`]).
#[derive(Clone, Debug, PartialEq)]
pub struct GridFrame {
    /// Bus voltages (pu; NaN where de-energised).
    pub vm_pu: Vec<f32>,
    /// Branch loadings (%; NaN without a rating or out of service).
    pub loading_percent: Vec<f32>,
    /// Site states: 0 in service, 1 flooded, 2 repairing.
    pub sites: Vec<u8>,
}

/// Decodes a payload of [`STREAM_GRID`]; the error says what is wrong.
pub fn decode_grid_frame(payload: &[u8]) -> Result<GridFrame, String> {
    let word = |k: usize| -> Result<usize, String> {
        payload
            .get(4 * k..4 * k + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| "a grid frame shorter than its header".to_string())
    };
    let (buses, branches, sites) = (word(0)?, word(1)?, word(2)?);
    if payload.len() != 12 + 4 * (buses + branches) + sites {
        return Err(format!(
            "a grid frame of {} bytes for {buses} buses, {branches} branches, {sites} sites",
            payload.len()
        ));
    }
    let floats: Vec<f32> = payload[12..12 + 4 * (buses + branches)]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(GridFrame {
        vm_pu: floats[..buses].to_vec(),
        loading_percent: floats[buses..].to_vec(),
        sites: payload[12 + 4 * (buses + branches)..].to_vec(),
    })
}

fn record_grid(mut replay: ResMut<ReplaySettings>, city: Res<crate::sim::CityRes>, grid: Option<Res<GridState>>) {
    let Some(grid) = grid else { return };
    let (Some(step_ms), Some(report)) = (grid.last_step_ms, &grid.last) else { return };
    if replay.grid_written_ms == Some(step_ms) {
        return;
    }
    if replay.grid_written_ms.is_none() {
        let sites: Vec<_> = grid
            .sites
            .iter()
            .map(|s| json!({"name": s.name, "x_m": round2(s.pos.x), "y_m": round2(s.pos.y), "consumers": s.consumers}))
            .collect();
        let doc = json!({"geojson": grid.grid.to_geojson(&city.0), "sites": sites});
        replay.send(ReplayMessage::Static {
            stream: STREAM_GRID_NETWORK,
            payload: serde_json::to_vec(&doc).unwrap_or_default(),
        });
    }
    let payload = encode_grid_frame(&report.solution.vm_pu, &report.solution.loading_percent, &grid.site_state);
    replay.send(ReplayMessage::Custom { stream: STREAM_GRID, t_first_ms: step_ms, t_last_ms: step_ms, payload });
    replay.grid_written_ms = Some(step_ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closures_round_trip_and_bad_payloads_are_named() {
        let payload = encode_closures(&[3, 17, 4000], &[9]);
        assert_eq!(payload.len(), 4 * (2 + 3 + 1));
        assert_eq!(decode_closures(&payload).unwrap(), (vec![3, 17, 4000], vec![9]));
        assert_eq!(decode_closures(&encode_closures(&[], &[])).unwrap(), (vec![], vec![]));
        assert!(decode_closures(&payload[..payload.len() - 4]).unwrap_err().contains("announces"));
        assert!(decode_closures(&payload[..3]).unwrap_err().contains("whole u32"));
        let mut longer = payload.clone();
        longer.extend_from_slice(&[0; 4]);
        assert!(decode_closures(&longer).unwrap_err().contains("longer"));
    }
}
