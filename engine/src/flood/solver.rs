//! The 2D local-inertial shallow-water solver: Bates, Horritt & Fewtrell (2010), "A simple inertial
//! formulation of the shallow water equations for efficient two-dimensional flood inundation modelling"
//! (J. Hydrol. 387), the LISFLOOD-FP "ACC" scheme, with the q-centred stabilisation of de Almeida, Bates,
//! Freer & Souvignet (2012, Water Resour. Res. 48).
//!
//! Staggered grid: depths `h` at cell centres, unit-width discharges `qx`, `qy` (m²/s) on cell faces. Each
//! step (length Δt under the CFL limit Δt = α·Δx/√(g·h_max), Bates 2010 eq. 13) updates
//!
//! ```text
//! q⁺ = (q̄ − g·h_f·Δt·∂η/∂x) / (1 + g·Δt·n²·|q|/h_f^{7/3})        (Bates 2010 eq. 11)
//! q̄  = θ·q + (1−θ)/2·(q_left + q_right)                          (de Almeida 2012 eq. 8)
//! h⁺ = h + Δt/Δx·(q_in − q_out) + Δt·(sources − losses)           (continuity)
//! ```
//!
//! where η = h + z is the water surface, h_f = max(η) − max(z) across the face (the flow depth), n Manning's
//! coefficient. Faces with h_f below `min_flow_depth_m` carry no flow (wetting and drying). A face touching a
//! blocked cell (a building) carries no flow. Before continuity, each cell's outgoing volume is limited to
//! the water it holds (outflows are scaled by the donor cell's factor), which keeps depths non-negative and
//! conserves mass exactly: every face flux leaves one cell and enters its neighbour, and every source, loss
//! and boundary exchange is booked in f64 in [`MassBalance`].
//!
//! A step is two passes over the rows, each parallel over bands of rows on the engine's task pool:
//! momentum (every face flux, then each cell's limiting factor as soon as its four faces are known) and
//! continuity (faces scaled by their donor's factor, then depths, sources and losses). Each cell and face is
//! written by exactly one task (a band recomputes the one face row it shares with its neighbour into
//! scratch), and per-band sums are added in band order, so the result does not depend on the thread count.
//! The row kernels are written without branches so they vectorise, and are compiled twice, for the baseline
//! CPU and for AVX2 (picked at run time); both do the same IEEE operations in the same order, so results are
//! bit-identical on any x86-64 CPU.

use super::real::Real;
use crate::sim::{run_pieces, with_team};
use std::ops::Range;

/// Numerical parameters with their sources.
#[derive(Clone, Debug, PartialEq)]
pub struct SolverParams {
    /// Gravitational acceleration (m/s²).
    pub g: f64,
    /// CFL coefficient α in Δt = α·Δx/√(g·h_max): 0.7, the value Bates et al. (2010) recommend for stability.
    pub cfl_alpha: f64,
    /// q-centred weighting θ of de Almeida et al. (2012): 1 is the original Bates scheme; 0.7–0.9 damps
    /// checkerboard oscillations at low friction. 0.8.
    pub theta: f64,
    /// Flow depth below which a face carries no flow (m): LISFLOOD-FP's default depth threshold, 1 mm.
    pub min_flow_depth_m: f64,
    /// Upper bound on the time step (s), for dry or nearly dry domains.
    pub max_dt_s: f64,
}

impl Default for SolverParams {
    fn default() -> Self {
        SolverParams { g: 9.81, cfl_alpha: 0.7, theta: 0.8, min_flow_depth_m: 1e-3, max_dt_s: 10.0 }
    }
}

/// What happens at one edge of the domain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Boundary {
    /// No flow.
    Closed,
    /// Water leaves freely: the face flux follows the momentum equation against a ghost cell whose surface
    /// is the edge cell's surface lowered by `slope`·Δx (a normal-depth condition); water never enters.
    FreeOutflow {
        /// Water-surface slope assumed beyond the edge (m/m).
        slope: f64,
    },
    /// The water level beyond the edge is held at `level_m` (m above datum); water may enter or leave.
    FixedLevel {
        /// Water surface elevation (m).
        level_m: f64,
    },
}

/// Boundaries of the four edges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Boundaries {
    /// x = 0 edge.
    pub west: Boundary,
    /// x = max edge.
    pub east: Boundary,
    /// y = 0 edge.
    pub south: Boundary,
    /// y = max edge.
    pub north: Boundary,
}

impl Boundaries {
    /// The same condition on every edge.
    pub fn all(b: Boundary) -> Boundaries {
        Boundaries { west: b, east: b, south: b, north: b }
    }
}

/// Water volumes booked since the start (m³), all in f64.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MassBalance {
    /// Volume in the domain at the start.
    pub initial_m3: f64,
    /// Added by distributed sources (rain).
    pub sources_m3: f64,
    /// Added by point inflows.
    pub inflows_m3: f64,
    /// Removed by losses (infiltration, drainage, pumps).
    pub losses_m3: f64,
    /// Entered through the boundaries.
    pub boundary_in_m3: f64,
    /// Left through the boundaries.
    pub boundary_out_m3: f64,
}

impl MassBalance {
    /// The volume the domain should hold: initial + in − out.
    pub fn expected_m3(&self) -> f64 {
        self.initial_m3 + self.sources_m3 + self.inflows_m3 + self.boundary_in_m3
            - self.losses_m3
            - self.boundary_out_m3
    }
}

/// Per-band sums of one continuity pass.
#[derive(Clone, Copy, Default)]
struct BandSums {
    sources: f64,
    losses: f64,
    boundary_in: f64,
    boundary_out: f64,
    max_depth: f64,
    /// Any cell of the row deeper than the minimum flow depth.
    active: bool,
}

/// The solver state on an `nx` × `ny` grid of square cells, row-major from the south-west corner.
pub struct FloodSolver<T: Real> {
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Cell size (m).
    pub dx: f64,
    /// Numerical parameters.
    pub params: SolverParams,
    /// Edge conditions.
    pub boundaries: Boundaries,
    /// Bed elevation (m).
    z: Vec<T>,
    /// Manning's n squared (s²/m^{2/3}).
    n2: Vec<T>,
    /// Cells water cannot enter (buildings).
    blocked: Vec<bool>,
    /// Depth (m).
    h: Vec<T>,
    /// Discharge per unit width on x faces, (nx + 1) per row (m²/s), positive towards +x.
    qx: Vec<T>,
    /// Discharge per unit width on y faces, nx per face row, ny + 1 face rows (m²/s), positive towards +y.
    qy: Vec<T>,
    qx_next: Vec<T>,
    qy_next: Vec<T>,
    /// Outflow limiting factor per cell, in [0, 1].
    limit: Vec<T>,
    /// Source rate per cell (m/s), e.g. rain; applied each step.
    source_mps: Vec<T>,
    /// Loss capacity per cell (m/s): infiltration and drainage, removed up to the water present.
    loss_mps: Vec<T>,
    /// Per row: some cell has a source or a loss (rows without skip that part of continuity); `None` after
    /// the rates were handed out for writing, recomputed at the next step.
    rows_with_sources: Option<Vec<bool>>,
    /// Point inflows: (cell index, discharge m³/s); negative values withdraw up to the water present.
    pub point_flows: Vec<(usize, f64)>,
    /// Pumps: each step they take up to their capacity from the water in their sump.
    pub pumps: Vec<GridPump>,
    /// Volume each pump has moved (m³).
    pub pumped_m3: Vec<f64>,
    /// Simulated time (s).
    pub time_s: f64,
    /// Steps taken.
    pub steps: u64,
    /// Volumes booked.
    pub balance: MassBalance,
    /// Per row: any cell deeper than the minimum flow depth (updated by continuity).
    active_rows: Vec<bool>,
    /// Per row: the columns `start..end` holding every cell whose outflow limiting factor is below 1 this
    /// step (empty when none). `limit` is 1 everywhere outside these ranges.
    limited_rows: Vec<Range<usize>>,
    /// Bands of rows worked on in parallel (default: the task pool's threads). Results do not depend on it.
    pub bands: usize,
    h_max: f64,
}

impl<T: Real> FloodSolver<T> {
    /// A dry solver on bed `z_m` (row-major, `nx` × `ny`), with Manning's `n` per cell and blocked cells.
    pub fn new(
        nx: usize,
        ny: usize,
        dx: f64,
        z_m: &[f64],
        manning_n: &[f64],
        blocked: Vec<bool>,
        boundaries: Boundaries,
    ) -> Self {
        let cells = nx * ny;
        assert!(
            z_m.len() == cells && manning_n.len() == cells && blocked.len() == cells,
            "grid arrays must be nx × ny"
        );
        FloodSolver {
            nx,
            ny,
            dx,
            params: SolverParams::default(),
            boundaries,
            z: z_m.iter().map(|&v| T::of(v)).collect(),
            n2: manning_n.iter().map(|&n| T::of(n * n)).collect(),
            blocked,
            h: vec![T::default(); cells],
            qx: vec![T::default(); (nx + 1) * ny],
            qy: vec![T::default(); nx * (ny + 1)],
            qx_next: vec![T::default(); (nx + 1) * ny],
            qy_next: vec![T::default(); nx * (ny + 1)],
            limit: vec![T::of(1.0); cells],
            source_mps: vec![T::default(); cells],
            loss_mps: vec![T::default(); cells],
            rows_with_sources: None,
            point_flows: Vec::new(),
            pumps: Vec::new(),
            pumped_m3: Vec::new(),
            time_s: 0.0,
            steps: 0,
            balance: MassBalance::default(),
            active_rows: vec![false; ny],
            limited_rows: vec![0..0; ny],
            bands: crate::sim::pool_threads(),
            h_max: 0.0,
        }
    }

    /// Sets the initial depths (m); blocked cells stay dry. Resets the mass balance to this volume.
    pub fn set_depths(&mut self, depth_m: &[f64]) {
        for (i, (h, &d)) in self.h.iter_mut().zip(depth_m).enumerate() {
            *h = if self.blocked[i] { T::default() } else { T::of(d.max(0.0)) };
        }
        self.h_max = self.h.iter().map(|h| h.f64()).fold(0.0, f64::max);
        self.balance = MassBalance { initial_m3: self.volume_m3(), ..MassBalance::default() };
        let min_h = T::of(self.params.min_flow_depth_m);
        self.active_rows = self.h.chunks(self.nx).map(|row| row.iter().any(|&h| h > min_h)).collect();
    }

    /// Source rates per cell (m/s), e.g. rain, applied each step (row-major).
    pub fn source_rates(&self) -> &[T] {
        &self.source_mps
    }

    /// Source rates for writing.
    pub fn source_rates_mut(&mut self) -> &mut [T] {
        self.rows_with_sources = None;
        &mut self.source_mps
    }

    /// Loss capacities per cell (m/s): infiltration and drainage, removed each step up to the water present.
    pub fn loss_rates(&self) -> &[T] {
        &self.loss_mps
    }

    /// Loss capacities for writing.
    pub fn loss_rates_mut(&mut self) -> &mut [T] {
        self.rows_with_sources = None;
        &mut self.loss_mps
    }

    /// Depths (m), row-major.
    pub fn depths(&self) -> &[T] {
        &self.h
    }

    /// Bed elevations (m), row-major.
    pub fn bed(&self) -> &[T] {
        &self.z
    }

    /// Whether a cell is blocked.
    pub fn is_blocked(&self, cell: usize) -> bool {
        self.blocked[cell]
    }

    /// Water volume in the domain (m³), summed in f64.
    pub fn volume_m3(&self) -> f64 {
        self.h.iter().map(|h| h.f64()).sum::<f64>() * self.dx * self.dx
    }

    /// Speed (m/s) at a cell centre from the mean face discharges, 0 where (nearly) dry.
    pub fn speed_mps(&self, cell: usize) -> f64 {
        let (i, j) = (cell % self.nx, cell / self.nx);
        let h = self.h[cell].f64();
        if h < self.params.min_flow_depth_m {
            return 0.0;
        }
        let qx = 0.5 * (self.qx[j * (self.nx + 1) + i].f64() + self.qx[j * (self.nx + 1) + i + 1].f64());
        let qy = 0.5 * (self.qy[j * self.nx + i].f64() + self.qy[(j + 1) * self.nx + i].f64());
        (qx * qx + qy * qy).sqrt() / h
    }

    /// The stable time step now (s): α·Δx/√(g·h_max), at most `max_dt_s`.
    pub fn stable_dt(&self) -> f64 {
        let p = &self.params;
        let h = self.h_max.max(self.boundary_depth_max()).max(p.min_flow_depth_m);
        (p.cfl_alpha * self.dx / (p.g * h).sqrt()).min(p.max_dt_s)
    }

    /// Deepest water a fixed-level edge can push onto its cells (m): the CFL limit must hold for the depth
    /// that flows in, not only for the depth already there.
    fn boundary_depth_max(&self) -> f64 {
        let (nx, ny) = (self.nx, self.ny);
        let b = &self.boundaries;
        let edges: [(Boundary, Box<dyn Iterator<Item = usize>>); 4] = [
            (b.west, Box::new((0..ny).map(move |j| j * nx))),
            (b.east, Box::new((0..ny).map(move |j| j * nx + nx - 1))),
            (b.south, Box::new(0..nx)),
            (b.north, Box::new((0..nx).map(move |i| (ny - 1) * nx + i))),
        ];
        edges
            .into_iter()
            .filter_map(|(b, cells)| match b {
                Boundary::FixedLevel { level_m } => Some(cells.map(|c| level_m - self.z[c].f64()).fold(0.0, f64::max)),
                _ => None,
            })
            .fold(0.0, f64::max)
    }

    /// Advances to `t_end_s` with adaptive steps (the last one shortened to land exactly). Returns steps taken.
    pub fn advance_to(&mut self, t_end_s: f64) -> u64 {
        // Many short steps in a row: one team for all of them (see `sim::fork_join`).
        with_team(self.bands > 1, || {
            let mut n = 0;
            while self.time_s < t_end_s {
                let dt = self.stable_dt().min(t_end_s - self.time_s);
                self.step(dt);
                n += 1;
            }
            n
        })
    }

    /// One step of `dt` seconds.
    pub fn step(&mut self, dt: f64) {
        self.momentum_and_limits(dt);
        self.continuity(dt);
        std::mem::swap(&mut self.qx, &mut self.qx_next);
        std::mem::swap(&mut self.qy, &mut self.qy_next);
        self.time_s += dt;
        self.steps += 1;
    }

    /// Constants of the momentum update for a step of `dt` seconds.
    fn face_consts(&self, dt: f64) -> FaceConsts<T> {
        let p = &self.params;
        FaceConsts {
            g_dt: T::of(p.g * dt),
            g_dt_over_dx: T::of(p.g * dt / self.dx),
            min_h: T::of(p.min_flow_depth_m),
            theta: T::of(p.theta),
            half_rest: T::of(0.5 * (1.0 - p.theta)),
        }
    }

    /// Face fluxes of the step on every x and y face, and the outflow limiting factors of every cell, in one
    /// pass over the rows. The task holding cell rows `j0..j1` writes their x faces, the y faces on their
    /// south sides (the last task also the domain's north edge) and their factors; the factors of row
    /// `j1 − 1` need face row `j1`, which the task computes again into scratch (the same numbers its owner
    /// writes). Factors are only stored over the span of a row's cells with a factor below 1 (`limited_rows`).
    fn momentum_and_limits(&mut self, dt: f64) {
        let (nx, ny) = (self.nx, self.ny);
        let k = self.face_consts(dt);
        let r = T::of(dt / self.dx);
        let simd = Simd::detect();
        let mut qx_out = std::mem::take(&mut self.qx_next);
        let mut qy_out = std::mem::take(&mut self.qy_next);
        let mut limit = std::mem::take(&mut self.limit);
        let this = &*self;
        let band = |j0: usize, qx: &mut [T], qy: &mut [T], limit: &mut [T]| -> Vec<Range<usize>> {
            {
                let rows = qx.len() / (nx + 1);
                let mut factors = vec![T::default(); nx];
                let mut scratch = vec![T::default(); nx];
                let mut limited = vec![0..0; rows];
                for k_row in 0..=rows {
                    let j = j0 + k_row;
                    if k_row < rows {
                        this.x_faces(&k, simd, j, &mut qx[k_row * (nx + 1)..(k_row + 1) * (nx + 1)]);
                    }
                    // Face row j: this band's own (the last band owns the north edge too), else scratch.
                    let own = (k_row + 1) * nx <= qy.len();
                    if own {
                        this.y_faces(&k, simd, j, &mut qy[k_row * nx..(k_row + 1) * nx]);
                    } else {
                        this.y_faces(&k, simd, j, &mut scratch);
                    }
                    if k_row == 0 {
                        continue;
                    }
                    // Cell row j − 1 now has all four sides.
                    let below = k_row - 1;
                    let north = if own { &qy[k_row * nx..(k_row + 1) * nx] } else { &scratch[..] };
                    let x_row = &qx[below * (nx + 1)..k_row * (nx + 1)];
                    let h = &this.h[(j - 1) * nx..j * nx];
                    let south = &qy[below * nx..k_row * nx];
                    if simd_outflow_factors(simd, &mut factors, h, &x_row[..nx], &x_row[1..], south, north, r) {
                        let one = T::of(1.0);
                        let start = factors.iter().position(|&f| f < one).unwrap_or(0);
                        let end = factors.iter().rposition(|&f| f < one).map_or(0, |i| i + 1);
                        let row = below * nx;
                        limit[row + start..row + end].copy_from_slice(&factors[start..end]);
                        limited[below] = start..end;
                    }
                }
                limited
            }
        };
        let bands = this.bands.max(1).min(ny.max(1));
        let per = ny.div_ceil(bands);
        let limited: Vec<Range<usize>> = if bands <= 1 {
            band(0, &mut qx_out, &mut qy_out, &mut limit)
        } else {
            let band = &band;
            let mut pieces = Vec::with_capacity(bands);
            let (mut qx_rest, mut qy_rest, mut lim_rest) = (&mut qx_out[..], &mut qy_out[..], &mut limit[..]);
            let mut j0 = 0;
            while j0 < ny {
                let rows = per.min(ny - j0);
                let face_rows = if j0 + rows == ny { rows + 1 } else { rows };
                let (qx_b, qx_r) = std::mem::take(&mut qx_rest).split_at_mut(rows * (nx + 1));
                let (qy_b, qy_r) = std::mem::take(&mut qy_rest).split_at_mut(face_rows * nx);
                let (lim_b, lim_r) = std::mem::take(&mut lim_rest).split_at_mut(rows * nx);
                (qx_rest, qy_rest, lim_rest) = (qx_r, qy_r, lim_r);
                let start = j0;
                pieces.push(move || band(start, qx_b, qy_b, lim_b));
                j0 += rows;
            }
            run_pieces(pieces).into_iter().flatten().collect()
        };
        self.qx_next = qx_out;
        self.qy_next = qy_out;
        self.limit = limit;
        self.limited_rows = limited;
    }

    /// The depth, bed, friction and blocking of cells `start..start + len`.
    #[inline(always)]
    fn cells(&self, start: usize, len: usize) -> CellRun<'_, T> {
        let r = start..start + len;
        CellRun { h: &self.h[r.clone()], z: &self.z[r.clone()], n2: &self.n2[r.clone()], blocked: &self.blocked[r] }
    }

    /// Fluxes on the x faces of cell row `j` (`row` holds its nx + 1 faces, west edge first).
    #[inline(always)]
    fn x_faces(&self, k: &FaceConsts<T>, simd: Simd, j: usize, row: &mut [T]) {
        let nx = self.nx;
        let q = &self.qx[j * (nx + 1)..(j + 1) * (nx + 1)];
        let c = j * nx;
        row[0] = self.boundary_flux(k, self.boundaries.west, q[0], c, T::of(-1.0));
        row[nx] = self.boundary_flux(k, self.boundaries.east, q[nx], c + nx - 1, T::of(1.0));
        if !self.active_rows[j] {
            row[1..nx].fill(T::default());
            return;
        }
        // Face i lies between cells i − 1 and i. Faces next to an edge face take no q-centred average.
        for i in [1, nx - 1] {
            if i >= 1 && i < nx {
                let (a, b) = (self.cells(c + i - 1, 1), self.cells(c + i, 1));
                faces::<T, false>(k, &mut row[i..i + 1], &q[i..i + 1], &[], &[], a, b);
            }
        }
        if nx > 3 {
            let n = nx - 3; // faces 2 ..= nx − 2
            let (a, b) = (self.cells(c + 1, n), self.cells(c + 2, n));
            simd_faces_centred(simd, k, &mut row[2..nx - 1], &q[2..nx - 1], &q[1..nx - 2], &q[3..nx], a, b);
        }
    }

    /// Fluxes on face row `j` of the y faces (between cell rows j − 1 and j; 0 and ny are the edges).
    #[inline(always)]
    fn y_faces(&self, k: &FaceConsts<T>, simd: Simd, j: usize, row: &mut [T]) {
        let (nx, ny) = (self.nx, self.ny);
        let q = &self.qy[j * nx..(j + 1) * nx];
        if j == 0 || j == ny {
            let (base, outward, b) = if j == 0 {
                (0, T::of(-1.0), self.boundaries.south)
            } else {
                ((ny - 1) * nx, T::of(1.0), self.boundaries.north)
            };
            for (i, out) in row.iter_mut().enumerate() {
                *out = self.boundary_flux(k, b, q[i], base + i, outward);
            }
            return;
        }
        if !self.active_rows[j - 1] && !self.active_rows[j] {
            row.fill(T::default());
            return;
        }
        let (a, b) = (self.cells((j - 1) * nx, nx), self.cells(j * nx, nx));
        if j >= 2 && j + 1 < ny {
            let (below, above) = (&self.qy[(j - 1) * nx..j * nx], &self.qy[(j + 1) * nx..(j + 2) * nx]);
            simd_faces_centred(simd, k, row, q, below, above, a, b);
        } else {
            simd_faces_plain(simd, k, row, q, a, b);
        }
    }

    /// Flux on a boundary face of `cell`; `outward` is +1 when leaving the domain is the + direction.
    fn boundary_flux(&self, k: &FaceConsts<T>, b: Boundary, q: T, cell: usize, outward: T) -> T {
        if self.blocked[cell] {
            return T::default();
        }
        let (h, z, n2) = (self.h[cell], self.z[cell], self.n2[cell]);
        let dx = self.dx;
        match b {
            Boundary::Closed => T::default(),
            Boundary::FreeOutflow { slope } => {
                // Ghost cell beyond the edge: same bed lowered by slope·Δx, holding the same depth.
                let drop = T::of(slope * dx);
                let q_out = q * outward; // discharge in the outward direction
                let f = face_flux(k, q_out, q_out, h, z, h, z - drop, n2);
                f.max(T::default()) * outward
            }
            Boundary::FixedLevel { level_m } => {
                let level = T::of(level_m);
                let hg = (level - z).max(T::default());
                let q_out = q * outward;
                face_flux(k, q_out, q_out, h, z, hg, z, n2) * outward
            }
        }
    }

    /// Continuity of cell row `j` (`row` its depths) from its x faces and its south and north y faces, then
    /// its sources and losses (when `sources`); returns what the row booked.
    #[allow(clippy::too_many_arguments)] // the row, its four sides and the step: all needed
    #[inline(always)]
    fn continuity_row(
        &self,
        simd: Simd,
        dt: f64,
        j: usize,
        row: &mut [T],
        qx: &[T],
        south: &[T],
        north: &[T],
        sources: bool,
    ) -> BandSums {
        let (nx, ny, dx) = (self.nx, self.ny, self.dx);
        let area = dx * dx;
        let (zero, dt_t, min_h) = (T::default(), T::of(dt), T::of(self.params.min_flow_depth_m));
        let mut s = BandSums::default();
        simd_add_flux_divergence(simd, row, &qx[..nx], &qx[1..], south, north, T::of(dt / dx));
        // Boundary exchanges, in m³ (exactly what the edge cells' depth changes book).
        let mut exchange = |q: T, sign: f64| {
            let v = q.f64() * sign * dt * dx; // positive: into the domain
            if v >= 0.0 {
                s.boundary_in += v;
            } else {
                s.boundary_out -= v;
            }
        };
        exchange(qx[0], 1.0);
        exchange(qx[nx], -1.0);
        if j == 0 {
            south.iter().for_each(|&q| exchange(q, 1.0));
        }
        if j == ny - 1 {
            north.iter().for_each(|&q| exchange(q, -1.0));
        }
        if sources {
            let c0 = j * nx;
            let (src, cap, blocked) =
                (&self.source_mps[c0..c0 + nx], &self.loss_mps[c0..c0 + nx], &self.blocked[c0..c0 + nx]);
            for i in 0..nx {
                if (src[i] > zero || cap[i] > zero) && !blocked[i] {
                    let next = row[i];
                    let with_src = next + src[i] * dt_t;
                    s.sources += (with_src - next).f64() * area;
                    let loss = (cap[i] * dt_t).min(with_src.max(zero));
                    let after = with_src - loss;
                    s.losses += (with_src - after).f64() * area;
                    // Round-off may leave a tiny negative depth after the limiter: it is kept (water owed),
                    // never silently clipped, so the books stay exact.
                    row[i] = after;
                }
            }
        }
        let row_max = simd_max_of(simd, row);
        s.max_depth = row_max.f64();
        s.active = row_max > min_h;
        s
    }

    /// Each pump takes min(capacity·Δt, water in its sump) from its sump cells, in proportion to their depth,
    /// and puts it at its outlet or books it as leaving the domain.
    fn run_pumps(&mut self, dt: f64) {
        if self.pumped_m3.len() != self.pumps.len() {
            self.pumped_m3 = vec![0.0; self.pumps.len()];
        }
        let area = self.dx * self.dx;
        let zero = T::default();
        for (k, p) in self.pumps.iter().enumerate() {
            let available: f64 = p.sump.iter().map(|&c| self.h[c].max(zero).f64()).sum::<f64>() * area;
            let take = (p.capacity_m3_per_s * dt).min(available);
            if take <= 0.0 {
                continue;
            }
            let fraction = take / available;
            let mut removed = 0.0;
            for &c in &p.sump {
                let before = self.h[c];
                let after = before - T::of(before.max(zero).f64() * fraction);
                self.h[c] = after;
                removed += (before - after).f64() * area;
            }
            self.pumped_m3[k] += removed;
            match p.outlet {
                Some(o) => {
                    let before = self.h[o];
                    let after = before + T::of(removed / area);
                    self.h[o] = after;
                    self.active_rows[o / self.nx] |= after.f64() > self.params.min_flow_depth_m;
                    self.h_max = self.h_max.max(after.f64());
                    // An internal transfer: only the rounding difference is booked.
                    self.balance.losses_m3 += removed - (after - before).f64() * area;
                }
                None => self.balance.losses_m3 += removed,
            }
        }
    }

    /// Continuity, h⁺ = h + Δt/Δx·(Σ q_in − Σ q_out) + Δt·(sources − losses), with the outflow limiting of
    /// [`Self::momentum_and_limits`] applied on the way: each face's flux is scaled in place by the factor of
    /// the cell the flow leaves (the next step starts from the scaled fluxes). Face rows on band edges are
    /// read by two tasks, so they are scaled first, serially; every other face row is scaled by the task
    /// that owns it, one row ahead of the continuity that reads it. Then point flows and pumps, serially.
    fn continuity(&mut self, dt: f64) {
        let (nx, ny, dx) = (self.nx, self.ny, self.dx);
        let area = dx * dx;
        let min_h = T::of(self.params.min_flow_depth_m);
        let simd = Simd::detect();
        let zero = T::default();
        let rows_with_sources = match self.rows_with_sources.take() {
            Some(rows) => rows,
            None => (0..ny)
                .map(|j| {
                    let r = j * nx..(j + 1) * nx;
                    self.source_mps[r.clone()].iter().chain(&self.loss_mps[r]).any(|&v| v > zero)
                })
                .collect(),
        };
        let (limited, mut limit) = (std::mem::take(&mut self.limited_rows), std::mem::take(&mut self.limit));
        let any_limited = limited.iter().any(|r| !r.is_empty());
        let factors = |j: usize| &limit[j * nx..(j + 1) * nx];
        // Only faces next to a limited cell change (every other factor is 1). x faces of cell row j (face i
        // lies between cells i − 1 and i):
        let scale_x = |j: usize, row: &mut [T]| {
            let Range { start, end } = limited[j].clone();
            if start >= end {
                return;
            }
            let cells = factors(j);
            let (lo, hi) = (start.max(1), end.min(nx - 1));
            if lo <= hi {
                simd_scale_by_donor(simd, &mut row[lo..=hi], &cells[lo - 1..hi], &cells[lo..=hi]);
            }
            let (w, e) = (row[0], row[nx]);
            row[0] = if w > zero { w } else { w * cells[0] };
            row[nx] = if e > zero { e * cells[nx - 1] } else { e };
        };
        // y faces of face row j (between cell rows j − 1 and j):
        let scale_y = |j: usize, row: &mut [T]| {
            let span = |r: &Range<usize>| (!r.is_empty()).then(|| r.clone());
            let (below, above) = (if j > 0 { span(&limited[j - 1]) } else { None }, limited.get(j).and_then(span));
            let Some(Range { start, end }) =
                below.into_iter().chain(above).reduce(|a, b| a.start.min(b.start)..a.end.max(b.end))
            else {
                return;
            };
            let one = T::of(1.0);
            let row = &mut row[start..end];
            match j {
                0 => row
                    .iter_mut()
                    .zip(&factors(0)[start..end])
                    .for_each(|(q, &f)| *q = *q * if *q > zero { one } else { f }),
                j if j == ny => row
                    .iter_mut()
                    .zip(&factors(ny - 1)[start..end])
                    .for_each(|(q, &f)| *q = *q * if *q > zero { f } else { one }),
                j => simd_scale_by_donor(simd, row, &factors(j - 1)[start..end], &factors(j)[start..end]),
            }
        };
        let bands = self.bands.max(1).min(ny.max(1));
        let per = ny.div_ceil(bands);
        let mut qy = std::mem::take(&mut self.qy_next);
        if any_limited {
            for e in (0..ny).step_by(per).chain([ny]) {
                scale_y(e, &mut qy[e * nx..(e + 1) * nx]);
            }
        }
        let mut qx = std::mem::take(&mut self.qx_next);
        let mut h = std::mem::take(&mut self.h);
        let this = &*self;
        let band = |j0: usize, h: &mut [T], qx: &mut [T], south_edge: &[T], inner: &mut [T], north_edge: &[T]| {
            let rows = h.len() / nx;
            let mut sums = Vec::with_capacity(rows);
            for k in 0..rows {
                let j = j0 + k;
                let qx_row = &mut qx[k * (nx + 1)..(k + 1) * (nx + 1)];
                if any_limited {
                    scale_x(j, qx_row);
                    if k + 1 < rows {
                        scale_y(j + 1, &mut inner[k * nx..(k + 1) * nx]);
                    }
                }
                let south = if k == 0 { south_edge } else { &inner[(k - 1) * nx..k * nx] };
                let north = if k + 1 == rows { north_edge } else { &inner[k * nx..(k + 1) * nx] };
                let row = &mut h[k * nx..(k + 1) * nx];
                sums.push(this.continuity_row(simd, dt, j, row, qx_row, south, north, rows_with_sources[j]));
            }
            sums
        };
        // Face rows: [edge 0][inner rows of band 0][edge per][inner rows of band 1] … [edge ny].
        let mut edges: Vec<&[T]> = Vec::with_capacity(bands + 1);
        let mut inners: Vec<&mut [T]> = Vec::with_capacity(bands);
        let mut rest: &mut [T] = &mut qy;
        let mut j0 = 0;
        loop {
            let (edge, after) = std::mem::take(&mut rest).split_at_mut(nx);
            edges.push(edge);
            if j0 == ny {
                break;
            }
            let rows = per.min(ny - j0);
            let (inner, after) = after.split_at_mut((rows - 1) * nx);
            inners.push(inner);
            rest = after;
            j0 += rows;
        }
        let sums: Vec<BandSums> = if bands <= 1 {
            band(0, &mut h, &mut qx, edges[0], &mut *inners.pop().expect("one band"), edges[1])
        } else {
            let (band, edges) = (&band, &edges);
            let work = h.chunks_mut(per * nx).zip(qx.chunks_mut(per * (nx + 1))).zip(inners).enumerate();
            let pieces: Vec<_> =
                work.map(|(b, ((h, qx), inner))| move || band(b * per, h, qx, edges[b], inner, edges[b + 1])).collect();
            run_pieces(pieces).into_iter().flatten().collect()
        };
        self.h = h;
        self.qx_next = qx;
        self.qy_next = qy;
        // Every factor back to 1 for the next step.
        for (j, r) in limited.iter().enumerate() {
            limit[j * nx + r.start..j * nx + r.end].fill(T::of(1.0));
        }
        self.limit = limit;
        self.limited_rows = limited;
        self.rows_with_sources = Some(rows_with_sources);
        let mut total = BandSums::default();
        for (j, s) in sums.iter().enumerate() {
            self.active_rows[j] = s.active;
            total.sources += s.sources;
            total.losses += s.losses;
            total.boundary_in += s.boundary_in;
            total.boundary_out += s.boundary_out;
            total.max_depth = total.max_depth.max(s.max_depth);
        }
        for &(cell, q) in &self.point_flows {
            if self.blocked[cell] {
                continue;
            }
            let before = self.h[cell];
            let dh = T::of(q * dt / area);
            let after = (before + dh).max(T::default());
            self.h[cell] = after;
            self.active_rows[cell / nx] |= after > min_h;
            let v = (after - before).f64() * area;
            if v >= 0.0 {
                self.balance.inflows_m3 += v;
            } else {
                self.balance.losses_m3 -= v;
            }
            total.max_depth = total.max_depth.max(after.f64());
        }
        self.run_pumps(dt);
        self.balance.sources_m3 += total.sources;
        self.balance.losses_m3 += total.losses;
        self.balance.boundary_in_m3 += total.boundary_in;
        self.balance.boundary_out_m3 += total.boundary_out;
        self.h_max = total.max_depth;
    }
}

/// A pump on the grid: sump cells, capacity, outlet cell (None: out of the domain).
#[derive(Clone, Debug, PartialEq)]
pub struct GridPump {
    /// Cells the pump draws from.
    pub sump: Vec<usize>,
    /// Capacity (m³/s).
    pub capacity_m3_per_s: f64,
    /// Where the water goes; None: out of the domain (booked as a loss).
    pub outlet: Option<usize>,
}

/// Constants of one step's momentum update.
struct FaceConsts<T> {
    /// g·Δt (m/s).
    g_dt: T,
    /// g·Δt/Δx (1/s).
    g_dt_over_dx: T,
    /// Minimum flow depth (m).
    min_h: T,
    /// θ of the q-centred average.
    theta: T,
    /// (1 − θ)/2.
    half_rest: T,
}

/// Outflow limiting factors of one row of cells (depth `h`, x faces `west`/`east`, y faces `south`/`north`
/// with `r` = Δt/Δx): h / outflow where the outflow would exceed the depth, else 1. Returns whether any
/// factor is below 1.
#[inline(always)]
fn outflow_factors<T: Real>(f: &mut [T], h: &[T], west: &[T], east: &[T], south: &[T], north: &[T], r: T) -> bool {
    let n = f.len();
    let (h, west, east, south, north) = (&h[..n], &west[..n], &east[..n], &south[..n], &north[..n]);
    let (zero, one) = (T::default(), T::of(1.0));
    let mut any = false;
    for i in 0..n {
        let out = ((-west[i]).max(zero) + east[i].max(zero) + (-south[i]).max(zero) + north[i].max(zero)) * r;
        let limited = out > h[i] && out > zero;
        let factor = h[i].max(zero) / out;
        f[i] = if limited { factor } else { one };
        any |= limited;
    }
    any
}

/// Scales faces between cells `lo[i]` and `hi[i]` (the + side) by the factor of the cell the flow leaves.
#[inline(always)]
fn scale_by_donor<T: Real>(q: &mut [T], lo: &[T], hi: &[T]) {
    let n = q.len();
    let (lo, hi) = (&lo[..n], &hi[..n]);
    for i in 0..n {
        q[i] = q[i] * if q[i] > T::default() { lo[i] } else { hi[i] };
    }
}

/// Continuity without sources: h += Δt/Δx·((west − east) + (south − north)) over one row.
#[inline(always)]
fn add_flux_divergence<T: Real>(h: &mut [T], west: &[T], east: &[T], south: &[T], north: &[T], r: T) {
    let n = h.len();
    let (west, east, south, north) = (&west[..n], &east[..n], &south[..n], &north[..n]);
    for i in 0..n {
        h[i] += r * ((west[i] - east[i]) + (south[i] - north[i]));
    }
}

/// A run of consecutive cells' state.
#[derive(Clone, Copy)]
struct CellRun<'a, T> {
    h: &'a [T],
    z: &'a [T],
    n2: &'a [T],
    blocked: &'a [bool],
}

/// Fluxes on a run of faces, face `i` between cell `a[i]` and its + direction neighbour `b[i]`. With
/// `CENTRED`, q̄ averages each face with its neighbours `q_lo[i]`, `q_hi[i]` (de Almeida 2012); otherwise
/// q̄ = q. Written without branches so the compiler vectorises it.
#[inline(always)]
fn faces<T: Real, const CENTRED: bool>(
    k: &FaceConsts<T>,
    out: &mut [T],
    q: &[T],
    q_lo: &[T],
    q_hi: &[T],
    a: CellRun<'_, T>,
    b: CellRun<'_, T>,
) {
    let n = out.len();
    let q = &q[..n];
    let (q_lo, q_hi) = if CENTRED { (&q_lo[..n], &q_hi[..n]) } else { (q, q) };
    let (ha, za, na, ba) = (&a.h[..n], &a.z[..n], &a.n2[..n], &a.blocked[..n]);
    let (hb, zb, nb, bb) = (&b.h[..n], &b.z[..n], &b.n2[..n], &b.blocked[..n]);
    let half = T::of(0.5);
    for i in 0..n {
        let q_avg = if CENTRED { k.theta * q[i] + k.half_rest * (q_lo[i] + q_hi[i]) } else { q[i] };
        let f = face_flux_unchecked(k, q[i], q_avg, ha[i], za[i], hb[i], zb[i], (na[i] + nb[i]) * half);
        out[i] = if ba[i] | bb[i] { T::default() } else { f };
    }
}

/// Flux across a face between a cell (`ha`, `za`) and its + direction neighbour (`hb`, `zb`) by the
/// local-inertial momentum equation (Bates 2010 eq. 11), written with one division:
/// q⁺ = (q̄ − g·h_f·Δt·Δη/Δx)·h_f^{7/3} / (h_f^{7/3} + g·Δt·n²·|q|); 0 where h_f is below the minimum flow
/// depth.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the two cells' depth and bed, the face's q, q̄ and n²: all needed
fn face_flux<T: Real>(k: &FaceConsts<T>, q: T, q_avg: T, ha: T, za: T, hb: T, zb: T, n2: T) -> T {
    face_flux_unchecked(k, q, q_avg, ha, za, hb, zb, n2)
}

/// [`face_flux`] without a branch: every term is computed (with h_f clamped to the minimum flow depth) and
/// the dry case selected at the end.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn face_flux_unchecked<T: Real>(k: &FaceConsts<T>, q: T, q_avg: T, ha: T, za: T, hb: T, zb: T, n2: T) -> T {
    let (ea, eb) = (ha + za, hb + zb);
    let hf = ea.max(eb) - za.max(zb);
    let wet = hf > k.min_h;
    let hf = hf.max(k.min_h);
    let h73 = hf * hf * hf.cbrt_pos();
    let f = (q_avg - k.g_dt_over_dx * hf * (eb - ea)) * h73 / (h73 + k.g_dt * n2 * q.abs());
    if wet {
        f
    } else {
        T::default()
    }
}

/// Whether the CPU has the wider vector instructions the row kernels are also compiled for. The kernels do
/// the same IEEE operations in the same order either way (no fused multiply-add), so results are
/// bit-identical with and without them.
#[derive(Clone, Copy)]
struct Simd {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    avx2: bool,
}

impl Simd {
    fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        return Simd { avx2: std::arch::is_x86_feature_detected!("avx2") };
        #[cfg(not(target_arch = "x86_64"))]
        Simd { avx2: false }
    }
}

/// Defines, for each row kernel, a function `simd_…(simd, args…)` that runs a copy of the kernel compiled
/// for AVX2 when the CPU has it and the baseline copy otherwise.
macro_rules! simd_kernels {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $kernel:expr;)*) => {$(
        $(#[$doc])*
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn $name<T: Real>(simd: Simd, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if simd.avx2 {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                fn avx2<T: Real>($($arg: $ty),*) $(-> $ret)? {
                    $kernel($($arg),*)
                }
                // SAFETY: the CPU supports AVX2 (detected at run time in `Simd::detect`).
                return unsafe { avx2($($arg),*) };
            }
            let _ = simd;
            $kernel($($arg),*)
        }
    )*};
}

simd_kernels! {
    /// [`faces`] with the q-centred average.
    fn simd_faces_centred(k: &FaceConsts<T>, out: &mut [T], q: &[T], q_lo: &[T], q_hi: &[T], a: CellRun<'_, T>,
        b: CellRun<'_, T>) = faces::<T, true>;
    /// [`faces`] without the q-centred average (next to an edge).
    fn simd_faces_plain(k: &FaceConsts<T>, out: &mut [T], q: &[T], a: CellRun<'_, T>, b: CellRun<'_, T>) =
        faces_plain;
    /// [`outflow_factors`].
    fn simd_outflow_factors(f: &mut [T], h: &[T], west: &[T], east: &[T], south: &[T], north: &[T], r: T) -> bool =
        outflow_factors;
    /// [`scale_by_donor`].
    fn simd_scale_by_donor(q: &mut [T], lo: &[T], hi: &[T]) = scale_by_donor;
    /// [`add_flux_divergence`].
    fn simd_add_flux_divergence(h: &mut [T], west: &[T], east: &[T], south: &[T], north: &[T], r: T) =
        add_flux_divergence;
    /// The largest value of a row (0 for an empty or all-negative row).
    fn simd_max_of(h: &[T]) -> T = max_of;
}

/// [`faces`] without the q-centred average.
#[inline(always)]
fn faces_plain<T: Real>(k: &FaceConsts<T>, out: &mut [T], q: &[T], a: CellRun<'_, T>, b: CellRun<'_, T>) {
    faces::<T, false>(k, out, q, &[], &[], a, b)
}

/// The largest value of a row, at least 0.
#[inline(always)]
fn max_of<T: Real>(h: &[T]) -> T {
    h.iter().fold(T::default(), |m, &v| m.max(v))
}
