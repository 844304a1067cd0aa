//! The rules that carry one domain's state into another, all in one place: no domain reads another's
//! state itself. Each rule is a system that runs in the receiving domain's tick, before that domain's own
//! step, and reads the other domain's last published state.
//!
//! Rules so far:
//! - **flood → grid sites**: the water above the ground at each substation site (the flood raster's cell
//!   under the site, over the banks in a river channel) becomes [`GridState::site_depth_m`]; the grid trips
//!   and restores its sites from it (`crate::grid::plugin`).

use crate::flood::plugin::FloodState;
use crate::grid::plugin::{GridState, GridSystems, DOMAIN as GRID};
use crate::sim::DomainTick;
use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;

/// Adds the coupling rules of the domains present. Add it after the domains' plugins.
pub struct CouplingPlugin;

impl Plugin for CouplingPlugin {
    fn build(&self, app: &mut App) {
        if app.world().contains_resource::<GridState>() {
            app.add_systems(DomainTick(GRID), flood_depth_at_grid_sites.before(GridSystems::Advance));
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
