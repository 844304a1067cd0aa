//! The flood raster made from the City: bed elevation from the terrain, buildings burned in as blocked cells,
//! land cover (road, green, water) with its Manning roughness.
//!
//! Manning's n by land cover (Chow 1959, "Open-Channel Hydraulics", table 5-6): asphalt and concrete streets
//! 0.015 (0.013–0.016); urban green and gardens 0.035 (short grass 0.030–0.035, with shrubs higher); the river
//! channel 0.035 (clean natural stream with stones and weeds, 0.030–0.040). Scenarios override them.

use crate::city::City;
use crate::geo::shapes;
use glam::Vec2;
use serde::{Deserialize, Serialize};

/// Manning's n by land cover (s/m^{1/3}).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManningTable {
    /// Streets (asphalt): 0.015.
    pub road: f64,
    /// Everything not street, building or water (gardens, slopes, open ground): 0.035.
    pub green: f64,
    /// The river channel: 0.035.
    pub water: f64,
}

impl Default for ManningTable {
    fn default() -> Self {
        ManningTable { road: 0.015, green: 0.035, water: 0.035 }
    }
}

/// Land cover of a flood cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LandCover {
    /// Open ground.
    Green = 0,
    /// A street.
    Road = 1,
    /// The river channel.
    Water = 2,
    /// A building (blocked to flow).
    Building = 3,
    /// Outside the terrain data (blocked).
    NoData = 4,
}

/// Width (m) given to a river centre line when rasterising and carving the channel (the Gran Valira through
/// Andorra la Vella is 10–20 m wide). Every waterway line is painted, tunnel-tagged ones too: in OSMnx-merged files the
/// `tunnel` value of a merged line is that of one of its parts, so it cannot be trusted per segment.
pub const RIVER_WIDTH_M: f32 = 12.0;

/// The raster the solver runs on.
#[derive(Clone, Debug)]
pub struct FloodGrid {
    /// Columns and rows.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Cell size (m).
    pub cell_m: f32,
    /// Lower-left corner in the local frame (m).
    pub origin: Vec2,
    /// Bed elevation (m); NoData cells carry the lowest valid elevation (they are blocked anyway).
    pub z_m: Vec<f64>,
    /// Land cover per cell.
    pub cover: Vec<LandCover>,
    /// How far the bed was lowered below the terrain by [`FloodGrid::carve_channels`] (m; 0 off the river).
    /// Water in a carved channel counts as flooding only above the banks: see [`FloodGrid::above_ground`].
    pub carved_m: Vec<f32>,
}

impl FloodGrid {
    /// Builds the raster at `cell_m` over the City's terrain. `None` if the City has no terrain.
    pub fn from_city(city: &City, cell_m: f32) -> Option<FloodGrid> {
        let terrain = city.terrain.as_ref()?;
        let (lo, hi) = terrain.extent();
        let nx = ((hi.x - lo.x) / cell_m).floor() as usize;
        let ny = ((hi.y - lo.y) / cell_m).floor() as usize;
        let mut grid = FloodGrid {
            nx,
            ny,
            cell_m,
            origin: lo,
            z_m: vec![0.0; nx * ny],
            cover: vec![LandCover::Green; nx * ny],
            carved_m: vec![0.0; nx * ny],
        };
        let mut lowest = f64::INFINITY;
        for c in 0..nx * ny {
            match terrain.sample(grid.centre(c)) {
                Some(z) => {
                    grid.z_m[c] = z as f64;
                    lowest = lowest.min(z as f64);
                }
                None => grid.cover[c] = LandCover::NoData,
            }
        }
        for c in 0..nx * ny {
            if grid.cover[c] == LandCover::NoData {
                grid.z_m[c] = if lowest.is_finite() { lowest } else { 0.0 };
            }
        }
        for w in &city.waterways {
            for seg in w.line.windows(2) {
                grid.paint_segment(seg[0], seg[1], RIVER_WIDTH_M / 2.0, LandCover::Water);
            }
        }
        for l in city.roads.links() {
            let half = l.lanes as f32 * city.defaults.lane_width_m / 2.0;
            for seg in l.geometry.windows(2) {
                grid.paint_segment(seg[0], seg[1], half, LandCover::Road);
            }
        }
        for b in &city.buildings {
            grid.paint_polygon(&b.footprint, LandCover::Building);
        }
        Some(grid)
    }

    /// Carves the river channels into the bed ("stream burning", as in Hutchinson's ANUDEM drainage
    /// enforcement, 1989): a terrain model at 25–30 m has no channel, so a river fed into it spreads over the
    /// valley floor. Each waterway line is oriented downhill by the terrain at its two ends (lines from
    /// OSMnx graphs come in both directions), sampled every half cell, and the cells within `width_m / 2`
    /// of each sample get their bed lowered to the lowest terrain met so far along the centre line, less
    /// `depth_m`, so the channel never climbs and is at least `depth_m` deep (a little more on steep reaches,
    /// where a cell also takes the bed of samples just downstream of it). Cells outside the terrain are left
    /// alone. `depth_m` ≤ 0 carves nothing.
    pub fn carve_channels<'a>(&mut self, lines: impl IntoIterator<Item = &'a [Vec2]>, width_m: f32, depth_m: f64) {
        if depth_m <= 0.0 {
            return;
        }
        let terrain = self.z_m.clone();
        let half = width_m / 2.0;
        let step = self.cell_m / 2.0;
        for line in lines {
            let mut samples: Vec<Vec2> = Vec::new();
            for seg in line.windows(2) {
                let n = (seg[0].distance(seg[1]) / step).ceil().max(1.0) as usize;
                samples.extend((0..n).map(|k| seg[0].lerp(seg[1], k as f32 / n as f32)));
            }
            samples.extend(line.last().copied());
            // The terrain under the centre line, where there is terrain.
            let mut profile: Vec<(Vec2, f64)> = samples
                .iter()
                .filter_map(|&p| {
                    self.cell_at(p).filter(|&c| self.cover[c] != LandCover::NoData).map(|c| (p, terrain[c]))
                })
                .collect();
            if let (Some(first), Some(last)) = (profile.first(), profile.last()) {
                if first.1 < last.1 {
                    profile.reverse();
                }
            }
            let mut lowest = f64::INFINITY;
            for (p, z) in profile {
                lowest = lowest.min(z);
                let bed = lowest - depth_m;
                let (cols, rows) = self.cells_in(p - half, p + half);
                for j in rows {
                    for i in cols.clone() {
                        let c = j * self.nx + i;
                        if self.cover[c] != LandCover::NoData && self.centre(c).distance(p) <= half {
                            self.z_m[c] = self.z_m[c].min(bed);
                            self.carved_m[c] = (terrain[c] - self.z_m[c]) as f32;
                        }
                    }
                }
            }
        }
    }

    /// Depth of water above the terrain (m) for a depth `h_m` on cell `c`: the depth itself off the river,
    /// the depth over the banks in a carved channel (a river in its bed floods nothing; bridges and banks
    /// go under only when it overtops).
    pub fn above_ground(&self, c: usize, h_m: f32) -> f32 {
        (h_m - self.carved_m[c]).max(0.0)
    }

    /// Centre of cell `c` (m).
    pub fn centre(&self, c: usize) -> Vec2 {
        self.origin + Vec2::new(((c % self.nx) as f32 + 0.5) * self.cell_m, ((c / self.nx) as f32 + 0.5) * self.cell_m)
    }

    /// The cell containing `p`, if inside the grid.
    pub fn cell_at(&self, p: Vec2) -> Option<usize> {
        let f = (p - self.origin) / self.cell_m;
        let (i, j) = (f.x.floor(), f.y.floor());
        (i >= 0.0 && j >= 0.0 && (i as usize) < self.nx && (j as usize) < self.ny)
            .then(|| j as usize * self.nx + i as usize)
    }

    /// Cells whose centres lie in the box `lo`–`hi` (m), as index ranges (columns, rows).
    fn cells_in(&self, lo: Vec2, hi: Vec2) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let a = ((lo - self.origin) / self.cell_m - 0.5).ceil().max(Vec2::ZERO);
        let b = ((hi - self.origin) / self.cell_m - 0.5).floor() + 1.0;
        let cols = a.x as usize..(b.x.max(0.0) as usize).min(self.nx);
        let rows = a.y as usize..(b.y.max(0.0) as usize).min(self.ny);
        (cols, rows)
    }

    fn paint_segment(&mut self, a: Vec2, b: Vec2, half_width: f32, cover: LandCover) {
        let (cols, rows) = self.cells_in(a.min(b) - half_width, a.max(b) + half_width);
        for j in rows {
            for i in cols.clone() {
                let c = j * self.nx + i;
                if self.cover[c] == LandCover::NoData {
                    continue;
                }
                let (p, _) = shapes::closest_on_segment(a, b, self.centre(c));
                if p.distance(self.centre(c)) <= half_width {
                    self.cover[c] = cover;
                }
            }
        }
    }

    fn paint_polygon(&mut self, ring: &[Vec2], cover: LandCover) {
        let Some((lo, hi)) = shapes::bounds(ring.iter().copied()) else { return };
        let (cols, rows) = self.cells_in(lo, hi);
        for j in rows {
            for i in cols.clone() {
                let c = j * self.nx + i;
                if self.cover[c] != LandCover::NoData && shapes::contains(ring, self.centre(c)) {
                    self.cover[c] = cover;
                }
            }
        }
    }

    /// Cells touched by a building footprint or adjacent to it (its walls' outside), for "water at the
    /// building" KPIs.
    pub fn cells_around(&self, ring: &[Vec2]) -> Vec<usize> {
        let Some((lo, hi)) = shapes::bounds(ring.iter().copied()) else { return Vec::new() };
        let margin = self.cell_m * 1.5;
        let (cols, rows) = self.cells_in(lo - margin, hi + margin);
        let mut ring_closed = ring.to_vec();
        ring_closed.push(ring[0]);
        let mut out = Vec::new();
        for j in rows {
            for i in cols.clone() {
                let c = j * self.nx + i;
                let p = self.centre(c);
                if self.cover[c] != LandCover::Building
                    && shapes::distance2_to_polyline(&ring_closed, p) <= margin * margin
                {
                    out.push(c);
                }
            }
        }
        out
    }

    /// Manning's n per cell from the table (blocked cells get the green value; they carry no flow).
    pub fn manning(&self, table: &ManningTable) -> Vec<f64> {
        self.cover
            .iter()
            .map(|c| match c {
                LandCover::Road => table.road,
                LandCover::Water => table.water,
                _ => table.green,
            })
            .collect()
    }

    /// Whether cell `c` is blocked to flow (a building, or no terrain data).
    pub fn is_blocked(&self, c: usize) -> bool {
        matches!(self.cover[c], LandCover::Building | LandCover::NoData)
    }

    /// Whether each cell is blocked.
    pub fn blocked(&self) -> Vec<bool> {
        (0..self.cover.len()).map(|c| self.is_blocked(c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valley falling 1 m per 10 m towards +x with a 3 m hump at x = 100 m (a terrain artefact, a
    /// bridge deck in the model), 5 m cells.
    fn valley() -> FloodGrid {
        let (nx, ny) = (60, 10);
        let z_m = (0..nx * ny)
            .map(|c| {
                let x = ((c % nx) as f64 + 0.5) * 5.0;
                100.0 - 0.1 * x + if (95.0..110.0).contains(&x) { 3.0 } else { 0.0 }
            })
            .collect();
        FloodGrid {
            nx,
            ny,
            cell_m: 5.0,
            origin: Vec2::ZERO,
            z_m,
            cover: vec![LandCover::Green; nx * ny],
            carved_m: vec![0.0; nx * ny],
        }
    }

    #[test]
    fn carved_channels_never_climb_and_follow_the_terrain_downhill_whatever_the_line_direction() {
        let along = |g: &FloodGrid| (0..g.nx).map(|i| g.z_m[5 * g.nx + i]).collect::<Vec<_>>();
        let terrain = valley();
        // Drawn uphill (against the flow), as half of an OSMnx graph's lines are.
        let line = [Vec2::new(297.0, 27.5), Vec2::new(3.0, 27.5)];
        let mut g = valley();
        g.carve_channels([&line[..]], 12.0, 2.0);
        let bed = along(&g);
        assert!(bed.windows(2).all(|w| w[1] <= w[0]), "the bed never climbs downstream: {bed:?}");
        let ground = along(&terrain);
        assert!(bed.iter().zip(&ground).all(|(b, z)| b <= &(z - 2.0 + 1e-9)), "at least 2 m below the terrain");
        // Across the hump the channel stays at the level reached upstream of it, less 2 m.
        let before_hump = ground[18];
        assert!((bed[20] - (before_hump - 2.0)).abs() < 1e-9, "{} vs {}", bed[20], before_hump - 2.0);
        assert_eq!(g.carved_m[5 * g.nx + 20], (ground[20] - bed[20]) as f32);
        // Off the channel (more than 6 m from its centre line) nothing changes.
        assert_eq!(g.z_m[0..g.nx], terrain.z_m[0..g.nx]);
        let c = 5 * g.nx + 30;
        let bank = g.carved_m[c];
        assert!(bank >= 2.0, "{bank}");
        assert_eq!(g.above_ground(c, bank - 0.5), 0.0, "a river in its bed floods nothing");
        assert_eq!(g.above_ground(c, bank + 0.5), 0.5);
        // Depth 0 carves nothing.
        let mut flat = valley();
        flat.carve_channels([&line[..]], 12.0, 0.0);
        assert_eq!(flat.z_m, terrain.z_m);
    }
}
