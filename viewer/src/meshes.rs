//! Triangle meshes of the scene, built on the CPU as plain arrays: the terrain surface, every building merged
//! into one mesh (walls extruded from the footprint, roof triangulated by ear clipping, `earcutr`), ribbons for
//! roads, footpaths, rivers and power lines, and the flood water surface of one depth raster.
//!
//! World axes are Bevy's (y up): local east `x` → world `x`, local north `y` → world `−z`, elevation above
//! the scene's datum (its lowest ground) → world `y`. A polygon counter-clockwise on the map is then
//! counter-clockwise seen from above, Bevy's front face.

use crate::data::{Ribbon, SceneData, Terrain};
use crate::palette::{self, Rgba};
use bevy::color::{ColorToComponents, LinearRgba, Srgba};
use bevy::math::Vec2;
use machi::replay::RasterFrame;

/// A mesh as arrays, ready to hand to the renderer: positions (m), unit normals, linear RGBA vertex colours
/// and triangle indices.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeshData {
    /// Vertex positions, world axes, m.
    pub positions: Vec<[f32; 3]>,
    /// Vertex normals (unit).
    pub normals: Vec<[f32; 3]>,
    /// Vertex colours, linear RGBA.
    pub colors: Vec<[f32; 4]>,
    /// Triangles, three vertex indices each, counter-clockwise seen from the front.
    pub indices: Vec<u32>,
}

/// Longest straight piece a ribbon is drawn with before it is split to follow the ground, m.
pub const RIBBON_STEP_M: f32 = 10.0;
/// How far ribbons float over the ground so the terrain does not hide them, m.
pub const RIBBON_LIFT_M: f32 = 0.6;
/// How deep a building's walls reach below the lowest ground under its footprint, m (so no gap shows on a
/// slope).
pub const BUILDING_FOOTING_M: f32 = 1.0;
/// Water shallower than this is not drawn, m (the flooded threshold of the flood KPIs).
pub const WATER_MIN_DEPTH_M: f32 = 0.1;
/// Most terrain vertices along one side; larger rasters are drawn every n-th cell.
pub const TERRAIN_MAX_SIDE: usize = 1024;

/// World position of local point `p` at elevation `z` above the datum.
pub fn world(p: Vec2, z: f32) -> [f32; 3] {
    [p.x, z, -p.y]
}

/// Linear RGBA of an sRGB palette colour (vertex colours are linear).
pub fn linear(c: Rgba) -> [f32; 4] {
    LinearRgba::from(Srgba::new(c[0], c[1], c[2], c[3])).to_f32_array()
}

impl MeshData {
    /// Number of triangles.
    pub fn triangles(&self) -> usize {
        self.indices.len() / 3
    }

    fn vertex(&mut self, position: [f32; 3], normal: [f32; 3], color: [f32; 4]) -> u32 {
        self.positions.push(position);
        self.normals.push(normal);
        self.colors.push(color);
        (self.positions.len() - 1) as u32
    }

    /// A flat quad `a b c d` (counter-clockwise from the front) with one normal and colour.
    fn quad(&mut self, corners: [[f32; 3]; 4], normal: [f32; 3], color: [f32; 4]) {
        let i = corners.map(|c| self.vertex(c, normal, color));
        self.indices.extend_from_slice(&[i[0], i[1], i[2], i[0], i[2], i[3]]);
    }
}

/// Twice the signed area of a ring (positive when counter-clockwise), m².
fn signed_area2(ring: &[Vec2]) -> f32 {
    ring.iter().zip(ring.iter().cycle().skip(1)).map(|(a, b)| a.perp_dot(*b)).sum()
}

/// The terrain surface: one vertex per cell centre (every n-th cell for large rasters), coloured by height.
pub fn terrain(t: &Terrain, datum_m: f32) -> MeshData {
    let r = &t.raster;
    let (w, h) = (r.width as usize, r.height as usize);
    let mut mesh = MeshData::default();
    if w < 2 || h < 2 {
        return mesh;
    }
    let step = w.max(h).div_ceil(TERRAIN_MAX_SIDE).max(1);
    let cols: Vec<usize> = (0..w).step_by(step).collect();
    let rows: Vec<usize> = (0..h).step_by(step).collect();
    let z = |ix: usize, iy: usize| {
        let v = r.values[iy.min(h - 1) * w + ix.min(w - 1)];
        if v.is_finite() {
            v - datum_m
        } else {
            0.0
        }
    };
    let centre = |ix: usize, iy: usize| {
        Vec2::new(r.origin_x_m + (ix as f32 + 0.5) * r.cell_m, r.origin_y_m + (iy as f32 + 0.5) * r.cell_m)
    };
    for &iy in &rows {
        for &ix in &cols {
            // Normal from central differences of the surface (east and north slopes).
            let (xl, xr) = (ix.saturating_sub(step), (ix + step).min(w - 1));
            let (yl, yr) = (iy.saturating_sub(step), (iy + step).min(h - 1));
            let dzdx = (z(xr, iy) - z(xl, iy)) / (((xr - xl).max(1)) as f32 * r.cell_m);
            let dzdy = (z(ix, yr) - z(ix, yl)) / (((yr - yl).max(1)) as f32 * r.cell_m);
            let n = bevy::math::Vec3::new(-dzdx, 1.0, dzdy).normalize();
            let height = z(ix, iy);
            mesh.vertex(world(centre(ix, iy), height), n.to_array(), linear(palette::terrain(height)));
        }
    }
    // Triangles only between vertices with data (nodata cells leave a hole, not a spike).
    let valid: Vec<bool> =
        rows.iter().flat_map(|&iy| cols.iter().map(move |&ix| r.values[iy * w + ix].is_finite())).collect();
    let nc = cols.len() as u32;
    for j in 0..rows.len() as u32 - 1 {
        for i in 0..nc - 1 {
            let (a, b, c, d) = (j * nc + i, j * nc + i + 1, (j + 1) * nc + i + 1, (j + 1) * nc + i);
            for tri in [[a, b, c], [a, c, d]] {
                if tri.iter().all(|&v| valid[v as usize]) {
                    mesh.indices.extend_from_slice(&tri);
                }
            }
        }
    }
    mesh
}

/// Every building on the terrain in one mesh: walls from the lowest ground under the footprint (less a
/// footing) to the roof, and a flat roof at the lowest ground plus the building's height.
pub fn buildings(scene: &SceneData) -> MeshData {
    let datum = scene.datum_m();
    let color = linear(palette::BUILDING);
    let mut mesh = MeshData::default();
    for b in &scene.buildings {
        if !b.footprint.iter().all(|&p| scene.on_terrain(p)) {
            continue;
        }
        let mut ring = b.footprint.clone();
        if signed_area2(&ring) < 0.0 {
            ring.reverse();
        }
        let ground = ring.iter().map(|&p| scene.ground(p)).fold(f32::INFINITY, f32::min) - datum;
        let (bottom, top) = (ground - BUILDING_FOOTING_M, ground + b.height_m);
        for (&p, &q) in ring.iter().zip(ring.iter().cycle().skip(1)) {
            let d = q - p;
            let Some(out) = Vec2::new(d.y, -d.x).try_normalize() else { continue };
            let normal = [out.x, 0.0, -out.y];
            mesh.quad([world(p, bottom), world(q, bottom), world(q, top), world(p, top)], normal, color);
        }
        let flat: Vec<f64> = ring.iter().flat_map(|p| [p.x as f64, p.y as f64]).collect();
        let Ok(triangles) = earcutr::earcut(&flat, &[], 2) else { continue };
        let base = mesh.positions.len() as u32;
        for &p in &ring {
            mesh.vertex(world(p, top), [0.0, 1.0, 0.0], color);
        }
        for t in triangles.chunks_exact(3) {
            let (a, b, c) = (ring[t[0]], ring[t[1]], ring[t[2]]);
            let ccw = (b - a).perp_dot(c - a) >= 0.0;
            let (i, j) = if ccw { (t[1], t[2]) } else { (t[2], t[1]) };
            mesh.indices.extend_from_slice(&[base + t[0] as u32, base + i as u32, base + j as u32]);
        }
    }
    mesh
}

/// Flat ribbons along `ribbons` on the ground (lifted by [`RIBBON_LIFT_M`]), `width_scale` times their
/// width, split every [`RIBBON_STEP_M`] so they follow the terrain (pieces off the terrain are left out);
/// `color_of(i)` colours ribbon `i`.
pub fn ribbons(scene: &SceneData, ribbons: &[Ribbon], width_scale: f32, color_of: impl Fn(usize) -> Rgba) -> MeshData {
    let datum = scene.datum_m();
    let mut mesh = MeshData::default();
    for (k, r) in ribbons.iter().enumerate() {
        let color = linear(color_of(k));
        let half = 0.5 * r.width_m * width_scale;
        for seg in r.points.windows(2) {
            let (p, q) = (seg[0], seg[1]);
            let Some(dir) = (q - p).try_normalize() else { continue };
            let side = dir.perp() * half;
            let pieces = ((q - p).length() / RIBBON_STEP_M).ceil().max(1.0) as usize;
            for s in 0..pieces {
                let a = p.lerp(q, s as f32 / pieces as f32);
                let b = p.lerp(q, (s + 1) as f32 / pieces as f32);
                if !(scene.on_terrain(a) && scene.on_terrain(b)) {
                    continue;
                }
                let (za, zb) = (scene.ground(a) - datum + RIBBON_LIFT_M, scene.ground(b) - datum + RIBBON_LIFT_M);
                // Right side first: a-right, b-right, b-left, a-left is counter-clockwise from above.
                mesh.quad(
                    [world(a - side, za), world(b - side, zb), world(b + side, zb), world(a + side, za)],
                    [0.0, 1.0, 0.0],
                    color,
                );
            }
        }
    }
    mesh
}

/// The flood water surface of `depth` (m above the ground): a flat quad per cell deeper than
/// [`WATER_MIN_DEPTH_M`], at the ground under the cell's centre plus its depth, coloured by depth.
pub fn water(scene: &SceneData, depth: &RasterFrame) -> MeshData {
    let datum = scene.datum_m();
    let mut mesh = MeshData::default();
    let c = depth.cell_m;
    for row in 0..depth.height as usize {
        for col in 0..depth.width as usize {
            let d = depth.values[row * depth.width as usize + col];
            if d.is_nan() || d < WATER_MIN_DEPTH_M {
                continue;
            }
            let lo = Vec2::new(depth.origin_x_m + col as f32 * c, depth.origin_y_m + row as f32 * c);
            let z = scene.ground(lo + Vec2::splat(0.5 * c)) - datum + d;
            let corners =
                [lo, lo + Vec2::new(c, 0.0), lo + Vec2::splat(c), lo + Vec2::new(0.0, c)].map(|p| world(p, z));
            mesh.quad(corners, [0.0, 1.0, 0.0], linear(palette::water(d)));
        }
    }
    mesh
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Building;

    fn scene(buildings: Vec<Building>) -> SceneData {
        SceneData {
            city: "test".into(),
            scenario: "test".into(),
            buildings,
            roads: Vec::new(),
            footpaths: Vec::new(),
            rivers: Vec::new(),
            terrain: None,
            grid: None,
            extent: (Vec2::ZERO, Vec2::splat(10.0)),
            start_of_day_ms: 0,
            end_ms: 0,
            origin_lon_lat: (0.0, 0.0),
        }
    }

    fn normal_of(m: &MeshData, t: usize) -> bevy::math::Vec3 {
        let p = |k: usize| bevy::math::Vec3::from(m.positions[m.indices[3 * t + k] as usize]);
        (p(1) - p(0)).cross(p(2) - p(0))
    }

    #[test]
    fn a_building_is_a_closed_box_facing_outwards() {
        // An L-shaped footprint given clockwise: the builder turns it around.
        let l = vec![
            Vec2::new(0.0, 0.0),
            Vec2::new(0.0, 10.0),
            Vec2::new(5.0, 10.0),
            Vec2::new(5.0, 5.0),
            Vec2::new(10.0, 5.0),
            Vec2::new(10.0, 0.0),
        ];
        let m = buildings(&scene(vec![Building {
            footprint: l,
            height_m: 12.0,
            source_id: "w1".into(),
            building_use: "residential".into(),
        }]));
        // Six walls (two triangles each) and a roof of four triangles.
        assert_eq!(m.triangles(), 6 * 2 + 4);
        let top = m.positions.iter().map(|p| p[1]).fold(f32::MIN, f32::max);
        assert_eq!(top, 12.0);
        // Every triangle faces the way its stored normal says (front faces outwards), and the roof covers the
        // footprint's 75 m².
        let mut roof = 0.0;
        for t in 0..m.triangles() {
            let n = normal_of(&m, t);
            let stored = bevy::math::Vec3::from(m.normals[m.indices[3 * t] as usize]);
            assert!(n.dot(stored) > 0.0, "triangle {t} faces away from its normal");
            if stored.y > 0.5 {
                roof += 0.5 * n.length();
            }
        }
        assert!((roof - 75.0).abs() < 1e-3, "{roof}");
    }

    #[test]
    fn water_is_drawn_where_deep_enough_at_ground_plus_depth() {
        let s = scene(Vec::new());
        let depth = RasterFrame {
            t_ms: 0,
            width: 3,
            height: 1,
            origin_x_m: 0.0,
            origin_y_m: 0.0,
            cell_m: 5.0,
            values: vec![0.05, 0.5, 2.0],
        };
        let m = water(&s, &depth);
        assert_eq!(m.triangles(), 4);
        assert!(m.positions[..4].iter().all(|p| p[1] == 0.5));
        assert!(m.positions[4..].iter().all(|p| p[1] == 2.0));
        // Deeper water is darker.
        assert!(m.colors[4][2] < m.colors[0][2]);
        for t in 0..m.triangles() {
            assert!(normal_of(&m, t).y > 0.0);
        }
    }

    #[test]
    fn ribbons_follow_the_line_and_face_up() {
        let s = scene(Vec::new());
        let road = Ribbon { points: vec![Vec2::ZERO, Vec2::new(25.0, 0.0)], width_m: 6.4 };
        let m = ribbons(&s, &[road], 1.0, |_| palette::ROAD);
        // 25 m in pieces of at most 10 m: three quads.
        assert_eq!(m.triangles(), 6);
        for t in 0..m.triangles() {
            assert!(normal_of(&m, t).y > 0.0);
        }
        let zs: Vec<f32> = m.positions.iter().map(|p| p[2]).collect();
        assert_eq!(zs.iter().copied().fold(f32::MIN, f32::max), 3.2);
    }
}
