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
//! Parallel over bands of rows on the engine's task pool; each cell and face is written by exactly one task
//! and per-band sums are added in band order, so the result does not depend on the thread count.

use super::real::Real;
use bevy_tasks::ComputeTaskPool;

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
    pub source_mps: Vec<T>,
    /// Loss capacity per cell (m/s): infiltration and drainage, removed up to the water present.
    pub loss_mps: Vec<T>,
    /// Point inflows: (cell index, discharge m³/s); negative values withdraw up to the water present.
    pub point_flows: Vec<(usize, f64)>,
    /// Simulated time (s).
    pub time_s: f64,
    /// Steps taken.
    pub steps: u64,
    /// Volumes booked.
    pub balance: MassBalance,
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
            point_flows: Vec::new(),
            time_s: 0.0,
            steps: 0,
            balance: MassBalance::default(),
            bands: ComputeTaskPool::get_or_init(bevy_tasks::TaskPool::default).thread_num().max(1),
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
        let h = self.h_max.max(p.min_flow_depth_m);
        (p.cfl_alpha * self.dx / (p.g * h).sqrt()).min(p.max_dt_s)
    }

    /// Advances to `t_end_s` with adaptive steps (the last one shortened to land exactly). Returns steps taken.
    pub fn advance_to(&mut self, t_end_s: f64) -> u64 {
        let mut n = 0;
        while self.time_s < t_end_s {
            let dt = self.stable_dt().min(t_end_s - self.time_s);
            self.step(dt);
            n += 1;
        }
        n
    }

    /// One step of `dt` seconds.
    pub fn step(&mut self, dt: f64) {
        self.momentum_x(dt);
        self.momentum_y(dt);
        self.limit_outflows(dt);
        self.continuity(dt);
        std::mem::swap(&mut self.qx, &mut self.qx_next);
        std::mem::swap(&mut self.qy, &mut self.qy_next);
        self.time_s += dt;
        self.steps += 1;
    }

    /// Flux across a face between a cell (`ha`, `za`) and its +direction neighbour (`hb`, `zb`) from the
    /// local-inertial momentum equation.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)] // the two cells' depth and bed, the face's q, n² and Δt: all needed
    fn face_flux(&self, q: T, q_avg: T, ha: T, za: T, hb: T, zb: T, n2: T, dt: T) -> T {
        let p = &self.params;
        let (ea, eb) = (ha + za, hb + zb);
        let hf = ea.max(eb) - za.max(zb);
        if hf.f64() <= p.min_flow_depth_m {
            return T::default();
        }
        let g = T::of(p.g);
        let slope = (eb - ea) / T::of(self.dx);
        let h73 = hf * hf * hf.cbrt(); // h^(7/3), without powf

        (q_avg - g * hf * dt * slope) / (T::of(1.0) + g * dt * n2 * q.abs() / h73)
    }

    fn momentum_x(&mut self, dt: f64) {
        let (nx, theta) = (self.nx, T::of(self.params.theta));
        let dt_t = T::of(dt);
        let mut out = std::mem::take(&mut self.qx_next);
        let this = &*self;
        par_rows(&mut out, nx + 1, this.bands, |j, row| {
            let q = &this.qx[j * (nx + 1)..(j + 1) * (nx + 1)];
            let c = j * nx;
            for (i, out) in row.iter_mut().enumerate() {
                *out = if i == 0 || i == nx {
                    let (cell, outward) = if i == 0 { (c, T::of(-1.0)) } else { (c + nx - 1, T::of(1.0)) };
                    let b = if i == 0 { this.boundaries.west } else { this.boundaries.east };
                    this.boundary_flux(b, q[i], cell, outward, dt_t)
                } else {
                    let (a, b) = (c + i - 1, c + i);
                    if this.blocked[a] || this.blocked[b] {
                        T::default()
                    } else {
                        let q_avg = if i >= 2 && i + 1 < nx {
                            theta * q[i] + (T::of(1.0) - theta) * T::of(0.5) * (q[i - 1] + q[i + 1])
                        } else {
                            q[i]
                        };
                        let n2 = (this.n2[a] + this.n2[b]) * T::of(0.5);
                        this.face_flux(q[i], q_avg, this.h[a], this.z[a], this.h[b], this.z[b], n2, dt_t)
                    }
                };
            }
        });
        self.qx_next = out;
    }

    fn momentum_y(&mut self, dt: f64) {
        let (nx, ny, theta) = (self.nx, self.ny, T::of(self.params.theta));
        let dt_t = T::of(dt);
        let mut out = std::mem::take(&mut self.qy_next);
        let this = &*self;
        par_rows(&mut out, nx, this.bands, |j, row| {
            for (i, out) in row.iter_mut().enumerate() {
                let q = this.qy[j * nx + i];
                *out = if j == 0 || j == ny {
                    let (cell, outward) = if j == 0 { (i, T::of(-1.0)) } else { ((ny - 1) * nx + i, T::of(1.0)) };
                    let b = if j == 0 { this.boundaries.south } else { this.boundaries.north };
                    this.boundary_flux(b, q, cell, outward, dt_t)
                } else {
                    let (a, b) = ((j - 1) * nx + i, j * nx + i);
                    if this.blocked[a] || this.blocked[b] {
                        T::default()
                    } else {
                        let q_avg = if j >= 2 && j + 1 < ny {
                            let (below, above) = (this.qy[(j - 1) * nx + i], this.qy[(j + 1) * nx + i]);
                            theta * q + (T::of(1.0) - theta) * T::of(0.5) * (below + above)
                        } else {
                            q
                        };
                        let n2 = (this.n2[a] + this.n2[b]) * T::of(0.5);
                        this.face_flux(q, q_avg, this.h[a], this.z[a], this.h[b], this.z[b], n2, dt_t)
                    }
                };
            }
        });
        self.qy_next = out;
    }

    /// Flux on a boundary face of `cell`; `outward` is +1 when leaving the domain is the + direction.
    fn boundary_flux(&self, b: Boundary, q: T, cell: usize, outward: T, dt: T) -> T {
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
                let f = self.face_flux(q_out, q_out, h, z, h, z - drop, n2, dt);
                f.max(T::default()) * outward
            }
            Boundary::FixedLevel { level_m } => {
                let level = T::of(level_m);
                let hg = (level - z).max(T::default());
                let q_out = q * outward;
                self.face_flux(q_out, q_out, h, z, hg, z, n2, dt) * outward
            }
        }
    }

    /// Scales the outflows of every cell so it never sends out more water than it holds (plus what it
    /// receives is ignored: a conservative, order-free bound).
    fn limit_outflows(&mut self, dt: f64) {
        let (nx, dx) = (self.nx, self.dx);
        let mut limit = std::mem::take(&mut self.limit);
        let this = &*self;
        par_rows(&mut limit, nx, this.bands, |j, row| {
            for (i, f) in row.iter_mut().enumerate() {
                let c = j * nx + i;
                let west = this.qx_next[j * (nx + 1) + i].f64();
                let east = this.qx_next[j * (nx + 1) + i + 1].f64();
                let south = this.qy_next[j * nx + i].f64();
                let north = this.qy_next[(j + 1) * nx + i].f64();
                let out = ((-west).max(0.0) + east.max(0.0) + (-south).max(0.0) + north.max(0.0)) * dt / dx;
                let h = this.h[c].f64();
                *f = T::of(if out > h && out > 0.0 { h / out } else { 1.0 });
            }
        });
        self.limit = limit;
        // Apply each face's donor factor.
        let limit = std::mem::take(&mut self.limit);
        let bands = self.bands;
        let mut qx = std::mem::take(&mut self.qx_next);
        par_rows(&mut qx, nx + 1, bands, |j, row| {
            for (i, q) in row.iter_mut().enumerate() {
                let donor = if q.f64() > 0.0 { (i > 0).then(|| j * nx + i - 1) } else { (i < nx).then(|| j * nx + i) };
                if let Some(d) = donor {
                    *q = *q * limit[d];
                }
            }
        });
        let ny = self.ny;
        let mut qy = std::mem::take(&mut self.qy_next);
        par_rows(&mut qy, nx, bands, |j, row| {
            for (i, q) in row.iter_mut().enumerate() {
                let donor =
                    if q.f64() > 0.0 { (j > 0).then(|| (j - 1) * nx + i) } else { (j < ny).then(|| j * nx + i) };
                if let Some(d) = donor {
                    *q = *q * limit[d];
                }
            }
        });
        self.qx_next = qx;
        self.qy_next = qy;
        self.limit = limit;
    }

    fn continuity(&mut self, dt: f64) {
        let (nx, ny, dx) = (self.nx, self.ny, self.dx);
        let area = dx * dx;
        let r = T::of(dt / dx);
        let dt_t = T::of(dt);
        // Point flows are applied serially (few of them), booked exactly from the depth change.
        let mut h = std::mem::take(&mut self.h);
        let this = &*self;
        let sums = par_rows(&mut h, nx, this.bands, |j, row| {
            let mut s = BandSums::default();
            let (qx, qy) = (&this.qx_next, &this.qy_next);
            for (i, h) in row.iter_mut().enumerate() {
                let c = j * nx + i;
                let (w, e) = (qx[j * (nx + 1) + i], qx[j * (nx + 1) + i + 1]);
                let (so, no) = (qy[j * nx + i], qy[(j + 1) * nx + i]);
                let before = *h;
                let mut next = before + r * ((w - e) + (so - no));
                // Boundary exchanges of this cell, in m³ (exactly what its depth change books).
                let mut exchange = |q: T, sign: f64| {
                    let v = q.f64() * sign * dt * dx; // positive: into the domain
                    if v >= 0.0 {
                        s.boundary_in += v;
                    } else {
                        s.boundary_out -= v;
                    }
                };
                if i == 0 {
                    exchange(w, 1.0);
                }
                if i == nx - 1 {
                    exchange(e, -1.0);
                }
                if j == 0 {
                    exchange(so, 1.0);
                }
                if j == ny - 1 {
                    exchange(no, -1.0);
                }
                if !this.blocked[c] {
                    let src = this.source_mps[c] * dt_t;
                    let with_src = next + src;
                    s.sources += (with_src - next).f64() * area;
                    next = with_src;
                    let loss = (this.loss_mps[c] * dt_t).min(next.max(T::default()));
                    let after = next - loss;
                    s.losses += (next - after).f64() * area;
                    next = after;
                }
                // Round-off may leave a tiny negative depth after the limiter; book it as a loss of zero by
                // keeping it (it is water owed), never silently clipping.
                *h = next;
                s.max_depth = s.max_depth.max(next.f64());
            }
            s
        });
        self.h = h;
        let mut total = BandSums::default();
        for s in sums {
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
            let v = (after - before).f64() * area;
            if v >= 0.0 {
                self.balance.inflows_m3 += v;
            } else {
                self.balance.losses_m3 -= v;
            }
            total.max_depth = total.max_depth.max(after.f64());
        }
        self.balance.sources_m3 += total.sources;
        self.balance.losses_m3 += total.losses;
        self.balance.boundary_in_m3 += total.boundary_in;
        self.balance.boundary_out_m3 += total.boundary_out;
        self.h_max = total.max_depth;
    }
}

/// Runs `f(row index, row)` over bands of rows of `data` (rows of `row_len`) on the engine's task pool;
/// returns the per-row results in row order.
fn par_rows<V: Send, R: Send + 'static>(
    data: &mut [V],
    row_len: usize,
    bands: usize,
    f: impl Fn(usize, &mut [V]) -> R + Sync,
) -> Vec<R> {
    let rows = data.len() / row_len.max(1);
    let pool = ComputeTaskPool::get_or_init(bevy_tasks::TaskPool::default);
    let bands = bands.max(1).min(rows.max(1));
    if bands <= 1 {
        return data.chunks_mut(row_len).enumerate().map(|(j, row)| f(j, row)).collect();
    }
    let per = rows.div_ceil(bands);
    let f = &f;
    let mut results: Vec<(usize, Vec<R>)> = pool.scope(|s| {
        for (b, band) in data.chunks_mut(per * row_len).enumerate() {
            s.spawn(
                async move { (b, band.chunks_mut(row_len).enumerate().map(|(k, row)| f(b * per + k, row)).collect()) },
            );
        }
    });
    results.sort_by_key(|(b, _)| *b);
    results.into_iter().flat_map(|(_, r)| r).collect()
}
