//! Flood interventions and extra water, as scenario data applied when the flood raster is built — never as
//! special cases inside the solver's loops:
//! - **levee** (`[[flood.levees]]`): cells along a polyline raised to a crest `height_m` above the ground;
//! - **retention basin** (`[[flood.basins]]`): the bed inside a polygon lowered so it stores `volume_m3`
//!   below the original ground;
//! - **permeable paving** (`[[flood.permeable]]`) and **drainage upgrade** (`[[flood.drainage]]`): a loss
//!   capacity (mm/h) inside a polygon;
//! - **pump** (`[[flood.pumps]]`): takes up to `capacity_m3_per_s` from the water in a sump polygon and
//!   discharges it at a point or out of the domain (booked as a loss);
//! - **inflow** (`[[flood.inflows]]`): a hydrograph (CSV `time_s,discharge_m3_per_s`, time since the run's
//!   start, linear between rows) entering at a point, e.g. the river where it enters the domain.

use super::grid::FloodGrid;
use crate::error::{InputError, InputResult};
use crate::geo::shapes;
use glam::Vec2;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A point in the local frame, `[x_m, y_m]`.
pub type Point = [f32; 2];

fn v(p: &Point) -> Vec2 {
    Vec2::new(p[0], p[1])
}

/// `[[flood.levees]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Levee {
    /// Crest line, local-frame points (m).
    pub line: Vec<Point>,
    /// Crest height above the ground (m).
    pub height_m: f32,
}

/// `[[flood.basins]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Basin {
    /// Outline (m).
    pub polygon: Vec<Point>,
    /// Storage below the original ground (m³).
    pub volume_m3: f32,
}

/// `[[flood.permeable]]` and `[[flood.drainage]]`: a loss capacity inside a polygon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossArea {
    /// Outline (m).
    pub polygon: Vec<Point>,
    /// Infiltration or drainage capacity (mm/h); replaces a lower capacity, never lowers one.
    pub mm_per_h: f64,
}

/// `[[flood.pumps]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pump {
    /// Name, for KPIs.
    pub name: String,
    /// Sump outline (m).
    pub sump: Vec<Point>,
    /// Pump capacity (m³/s).
    pub capacity_m3_per_s: f64,
    /// Where the water goes; absent: out of the domain (a sewer, the river downstream).
    #[serde(default)]
    pub outlet: Option<Point>,
}

/// `[[flood.inflows]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inflow {
    /// Name, for KPIs.
    pub name: String,
    /// Where the water enters (m).
    pub at: Point,
    /// CSV file `time_s,discharge_m3_per_s` (path relative to the scenario file).
    pub hydrograph: PathBuf,
}

/// A hydrograph: (time since start s, discharge m³/s), increasing times.
#[derive(Clone, Debug, PartialEq)]
pub struct Hydrograph(pub Vec<(f64, f64)>);

impl Hydrograph {
    /// Reads `time_s,discharge_m3_per_s` rows (a header line is allowed); errors name the file and line.
    pub fn read(path: &Path) -> InputResult<Hydrograph> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError::io(path, e))?;
        let mut rows = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || (n == 0 && line.chars().next().is_some_and(|c| c.is_alphabetic())) {
                continue;
            }
            let place = format!("line {}", n + 1);
            let mut cols = line.split(',').map(str::trim);
            let (Some(t), Some(q), None) = (cols.next(), cols.next(), cols.next()) else {
                return Err(InputError::new(path, place, "expected two columns: time_s,discharge_m3_per_s"));
            };
            let parse = |s: &str, what: &str| {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| InputError::new(path, &place, format!("{what} {s:?} is not a number")))
            };
            let (t, q) = (parse(t, "time")?, parse(q, "discharge")?);
            if q < 0.0 {
                return Err(InputError::new(path, place, format!("discharge {q} m³/s is negative")));
            }
            if rows.last().is_some_and(|&(prev, _)| t <= prev) {
                return Err(InputError::new(path, place, "times must increase"));
            }
            rows.push((t, q));
        }
        if rows.is_empty() {
            return Err(InputError::file(path, "no hydrograph rows"));
        }
        Ok(Hydrograph(rows))
    }

    /// Discharge (m³/s) at `t_s`, linear between rows, 0 before the first and after the last.
    pub fn at(&self, t_s: f64) -> f64 {
        let r = &self.0;
        let k = r.partition_point(|&(t, _)| t <= t_s);
        match (k.checked_sub(1).map(|i| r[i]), r.get(k)) {
            (Some((t0, q0)), Some(&(t1, q1))) => q0 + (q1 - q0) * (t_s - t0) / (t1 - t0),
            (Some((t0, q0)), None) if t_s == t0 => q0,
            _ => 0.0,
        }
    }

    /// Volume (m³) between `a` and `b` seconds (trapezoids on the piecewise-linear series).
    pub fn volume(&self, a: f64, b: f64) -> f64 {
        let mut ts: Vec<f64> = self.0.iter().map(|r| r.0).filter(|&t| t > a && t < b).collect();
        ts.insert(0, a);
        ts.push(b);
        ts.windows(2).map(|w| 0.5 * (self.at(w[0]) + self.at(w[1])) * (w[1] - w[0])).sum()
    }
}

/// Cells whose centres lie in a polygon.
pub fn cells_in_polygon(grid: &FloodGrid, polygon: &[Point]) -> Vec<usize> {
    let ring: Vec<Vec2> = polygon.iter().map(v).collect();
    (0..grid.nx * grid.ny).filter(|&c| !grid.is_blocked(c) && shapes::contains(&ring, grid.centre(c))).collect()
}

/// Raises the bed along each levee to its crest (cells within half a cell of the line, so the crest is
/// continuous on the raster).
pub fn apply_levees(grid: &mut FloodGrid, levees: &[Levee]) {
    for l in levees {
        let line: Vec<Vec2> = l.line.iter().map(v).collect();
        let reach = grid.cell_m * std::f32::consts::FRAC_1_SQRT_2 + 1e-3;
        for c in 0..grid.nx * grid.ny {
            if shapes::distance2_to_polyline(&line, grid.centre(c)) <= reach * reach {
                grid.z_m[c] += l.height_m as f64;
            }
        }
    }
}

/// Lowers the bed inside each basin by volume / area.
pub fn apply_basins(grid: &mut FloodGrid, basins: &[Basin]) {
    let area = (grid.cell_m as f64).powi(2);
    for b in basins {
        let cells = cells_in_polygon(grid, &b.polygon);
        if cells.is_empty() {
            continue;
        }
        let depth = b.volume_m3 as f64 / (cells.len() as f64 * area);
        for c in cells {
            grid.z_m[c] -= depth;
        }
    }
}

/// A pump placed on the grid.
#[derive(Clone, Debug)]
pub struct PlacedPump {
    /// Sump cells.
    pub sump: Vec<usize>,
    /// Capacity (m³/s).
    pub capacity_m3_per_s: f64,
    /// Outlet cell, or None for out of the domain.
    pub outlet: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::super::grid::LandCover;
    use super::super::solver::{Boundaries, Boundary, FloodSolver, GridPump};
    use super::*;

    /// A flat 40 × 20 grid of 5 m cells at 100 m elevation, all open ground.
    fn flat() -> FloodGrid {
        let (nx, ny) = (40, 20);
        FloodGrid {
            nx,
            ny,
            cell_m: 5.0,
            origin: Vec2::ZERO,
            z_m: vec![100.0; nx * ny],
            cover: vec![LandCover::Green; nx * ny],
            carved_m: vec![0.0; nx * ny],
        }
    }

    fn solver(grid: &FloodGrid, b: Boundaries) -> FloodSolver<f64> {
        let mut s = FloodSolver::new(
            grid.nx,
            grid.ny,
            grid.cell_m as f64,
            &grid.z_m,
            &vec![0.03; grid.nx * grid.ny],
            grid.blocked(),
            b,
        );
        s.set_depths(&vec![0.0; grid.nx * grid.ny]);
        s
    }

    /// Share of the cells east of x = 100 m that are wet after the west edge is held at 1 m of water.
    fn east_wet_share(levee: Option<Levee>) -> f64 {
        let mut grid = flat();
        if let Some(l) = levee {
            apply_levees(&mut grid, &[l]);
        }
        let b = Boundaries { west: Boundary::FixedLevel { level_m: 101.0 }, ..Boundaries::all(Boundary::Closed) };
        let mut s = solver(&grid, b);
        s.advance_to(1800.0);
        let east: Vec<usize> = (0..grid.nx * grid.ny).filter(|&c| grid.centre(c).x > 110.0).collect();
        east.iter().filter(|&&c| s.depths()[c] > 0.01).count() as f64 / east.len() as f64
    }

    #[test]
    fn a_levee_keeps_water_out_of_its_protected_side() {
        let without = east_wet_share(None);
        let levee = Levee { line: vec![[100.0, -10.0], [100.0, 110.0]], height_m: 2.0 };
        let with = east_wet_share(Some(levee));
        assert!(without > 0.9, "without the levee the east floods: {without}");
        assert_eq!(with, 0.0, "the 2 m levee holds back 1 m of water");
    }

    #[test]
    fn a_pump_lowers_the_water_in_its_sump_and_the_books_close() {
        let grid = flat();
        let run = |pump: bool| {
            let mut s = solver(&grid, Boundaries::all(Boundary::Closed));
            s.source_rates_mut().fill(50.0 / 3.6e6); // 50 mm/h
            if pump {
                let sump = cells_in_polygon(&grid, &[[0.0, 0.0], [200.0, 0.0], [200.0, 100.0], [0.0, 100.0]]);
                s.pumps = vec![GridPump { sump, capacity_m3_per_s: 0.2, outlet: None }];
            }
            s.advance_to(3600.0);
            let err = (s.volume_m3() - s.balance.expected_m3()).abs() / s.balance.sources_m3;
            assert!(err < 1e-9, "balance error {err}");
            (s.volume_m3(), s.pumped_m3.first().copied().unwrap_or(0.0))
        };
        let (dry_volume, pumped) = run(true);
        let (wet_volume, _) = run(false);
        // 50 mm on 200 × 100 m = 1000 m³; the pump can move 0.2 m³/s × 3600 s = 720 m³.
        assert!((wet_volume - 1000.0).abs() < 1e-6, "{wet_volume}");
        assert!((pumped - 720.0).abs() < 1.0, "pumped {pumped}");
        assert!((dry_volume - (wet_volume - pumped)).abs() < 1e-6);
    }

    #[test]
    fn a_basin_stores_water_and_shrinks_the_flooded_area() {
        let flooded = |basin: bool| {
            let mut grid = flat();
            if basin {
                apply_basins(
                    &mut grid,
                    &[Basin {
                        polygon: vec![[40.0, 30.0], [80.0, 30.0], [80.0, 70.0], [40.0, 70.0]],
                        volume_m3: 800.0,
                    }],
                );
            }
            let mut s = solver(&grid, Boundaries::all(Boundary::Closed));
            let inlet = grid.cell_at(Vec2::new(60.0, 50.0)).unwrap();
            s.point_flows = vec![(inlet, 0.5)];
            s.advance_to(1800.0); // 900 m³ in
                                  // Wet cells outside the basin's outline.
            let outside = |c: usize| {
                let p = grid.centre(c);
                !(40.0..80.0).contains(&p.x) || !(30.0..70.0).contains(&p.y)
            };
            (0..grid.nx * grid.ny).filter(|&c| outside(c) && s.depths()[c] > 0.01).count()
        };
        let (with, without) = (flooded(true), flooded(false));
        assert!(with * 2 < without, "wet cells around a basin: {with}, without it: {without}");
    }

    #[test]
    fn hydrographs_interpolate_and_integrate_and_bad_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.csv");
        std::fs::write(&p, "time_s,discharge_m3_per_s\n0,0\n600,10\n1200,0\n").unwrap();
        let h = Hydrograph::read(&p).unwrap();
        assert_eq!(h.at(300.0), 5.0);
        assert_eq!(h.at(5000.0), 0.0);
        assert!((h.volume(0.0, 1200.0) - 6000.0).abs() < 1e-9);
        assert!((h.volume(300.0, 900.0) - 4500.0).abs() < 1e-9);
        std::fs::write(&p, "0,0\n600,ten\n").unwrap();
        let e = Hydrograph::read(&p).unwrap_err();
        assert_eq!(e.place, "line 2");
        std::fs::write(&p, "0,1\n0,2\n").unwrap();
        assert!(Hydrograph::read(&p).unwrap_err().message.contains("increase"));
    }
}
