//! The viewer's colours, in one table: what each layer and agent state looks like. Colours are sRGB
//! (0–1) chosen so a layer is told apart by hue in a screenshot: buildings pale and unsaturated,
//! terrain olive, water saturated blue, vehicles orange, robots magenta, pedestrians yellow. The render test
//! classifies pixels by these hues (see `viewer/tests/render.rs`), so change both together.

use crate::data::AgentLook;

/// An sRGB colour with alpha, components 0–1.
pub type Rgba = [f32; 4];

/// Walls and roofs.
pub const BUILDING: Rgba = [0.88, 0.86, 0.82, 1.0];
/// Low ground (valley floor).
pub const TERRAIN_LOW: Rgba = [0.36, 0.50, 0.24, 1.0];
/// High ground (slopes, rock).
pub const TERRAIN_HIGH: Rgba = [0.52, 0.46, 0.34, 1.0];
/// Height over the lowest ground at which the terrain reaches [`TERRAIN_HIGH`], m.
pub const TERRAIN_COLOUR_RANGE_M: f32 = 600.0;
/// Roads.
pub const ROAD: Rgba = [0.28, 0.28, 0.30, 1.0];
/// Footpaths.
pub const FOOTPATH: Rgba = [0.72, 0.62, 0.44, 1.0];
/// Rivers (the channel, as mapped; flood water is drawn from the depth frames).
pub const RIVER: Rgba = [0.20, 0.42, 0.48, 1.0];
/// Shallow flood water (at the flooded threshold).
pub const WATER_SHALLOW: Rgba = [0.30, 0.55, 0.95, 0.6];
/// Deep flood water.
pub const WATER_DEEP: Rgba = [0.04, 0.16, 0.65, 0.85];
/// Depth at which water is drawn as [`WATER_DEEP`], m.
pub const WATER_DEEP_M: f32 = 1.5;
/// The sky behind the scene (pale, so it is not taken for water).
pub const SKY: Rgba = [0.74, 0.82, 0.90, 1.0];
/// A road or footpath closed (by the scenario or by flooding).
pub const CLOSED: Rgba = [0.90, 0.05, 0.55, 1.0];
/// A substation in service.
pub const SITE_IN_SERVICE: Rgba = [0.15, 0.75, 0.35, 1.0];
/// A substation tripped by flooding.
pub const SITE_FLOODED: Rgba = [0.95, 0.05, 0.05, 1.0];
/// A substation under repair.
pub const SITE_REPAIRING: Rgba = [0.95, 0.75, 0.05, 1.0];
/// A power line out of service or de-energised.
pub const LINE_DEAD: Rgba = [0.15, 0.15, 0.15, 1.0];

/// The colour of an agent look.
pub fn agent(look: AgentLook) -> Rgba {
    match look {
        AgentLook::CarMoving => [1.0, 0.50, 0.0, 1.0],
        AgentLook::CarQueued => [0.90, 0.08, 0.08, 1.0],
        AgentLook::BusMoving => [0.10, 0.45, 1.0, 1.0],
        AgentLook::BusStanding => [0.05, 0.20, 0.60, 1.0],
        AgentLook::PedestrianWalking => [1.0, 0.92, 0.15, 1.0],
        AgentLook::PedestrianStanding => [0.80, 0.70, 0.10, 1.0],
        AgentLook::RobotIdle => [0.75, 0.65, 0.95, 1.0],
        AgentLook::RobotCharging => [0.10, 0.90, 0.80, 1.0],
        AgentLook::RobotDelivering => [0.95, 0.15, 0.90, 1.0],
        AgentLook::RobotReturning => [0.55, 0.20, 0.85, 1.0],
        AgentLook::RobotStranded => [0.45, 0.0, 0.0, 1.0],
        AgentLook::RobotWaitingToCross => [1.0, 0.55, 0.75, 1.0],
    }
}

/// Linear blend of two colours, `w` in 0–1.
pub fn mix(a: Rgba, b: Rgba, w: f32) -> Rgba {
    let w = w.clamp(0.0, 1.0);
    [0, 1, 2, 3].map(|i| a[i] + (b[i] - a[i]) * w)
}

/// Flood water of `depth_m`.
pub fn water(depth_m: f32) -> Rgba {
    mix(WATER_SHALLOW, WATER_DEEP, depth_m / WATER_DEEP_M)
}

/// Ground `above_datum_m` over the lowest terrain.
pub fn terrain(above_datum_m: f32) -> Rgba {
    mix(TERRAIN_LOW, TERRAIN_HIGH, above_datum_m / TERRAIN_COLOUR_RANGE_M)
}

/// A power line at `loading_percent` of its rating: green when lightly loaded, yellow at 50%, red at 100% and
/// over; dark when de-energised (NaN).
pub fn line_loading(loading_percent: f32) -> Rgba {
    if !loading_percent.is_finite() {
        return LINE_DEAD;
    }
    let (green, yellow, red) = ([0.1, 0.8, 0.2, 1.0], [0.95, 0.85, 0.1, 1.0], [0.95, 0.1, 0.05, 1.0]);
    if loading_percent < 50.0 {
        mix(green, yellow, loading_percent / 50.0)
    } else {
        mix(yellow, red, (loading_percent - 50.0) / 50.0)
    }
}

/// A substation by its site state code (0 in service, 1 flooded, 2 repairing).
pub fn site(state: u8) -> Rgba {
    match state {
        0 => SITE_IN_SERVICE,
        1 => SITE_FLOODED,
        _ => SITE_REPAIRING,
    }
}
