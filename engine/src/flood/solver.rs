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
    pub source_mps: Vec<T>,
    /// Loss capacity per cell (m/s): infiltration and drainage, removed up to the water present.
    pub loss_mps: Vec<T>,
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
            pumps: Vec::new(),
            pumped_m3: Vec::new(),
            time_s: 0.0,
            steps: 0,
            balance: MassBalance::default(),
            active_rows: vec![false; ny],
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
        let min_h = T::of(self.params.min_flow_depth_m);
        self.active_rows = self.h.chunks(self.nx).map(|row| row.iter().any(|&h| h > min_h)).collect();
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

    /// Whether row `j` holds any water deep enough to flow (faces of dry rows carry nothing).
    fn row_active(&self, j: usize) -> bool {
        self.active_rows[j]
    }

    fn momentum_x(&mut self, dt: f64) {
        let nx = self.nx;
        let k = self.face_consts(dt);
        let mut out = std::mem::take(&mut self.qx_next);
        let this = &*self;
        par_rows(&mut out, nx + 1, this.bands, |j, row| {
            let q = &this.qx[j * (nx + 1)..(j + 1) * (nx + 1)];
            let c = j * nx;
            let (h, z, n2, blocked) =
                (&this.h[c..c + nx], &this.z[c..c + nx], &this.n2[c..c + nx], &this.blocked[c..c + nx]);
            row[0] = this.boundary_flux(&k, this.boundaries.west, q[0], c, T::of(-1.0));
            row[nx] = this.boundary_flux(&k, this.boundaries.east, q[nx], c + nx - 1, T::of(1.0));
            if !this.row_active(j) {
                row[1..nx].fill(T::default());
                return;
            }
            for i in 1..nx {
                row[i] = if blocked[i - 1] || blocked[i] {
                    T::default()
                } else {
                    let q_avg =
                        if i >= 2 && i + 1 < nx { k.theta * q[i] + k.half_rest * (q[i - 1] + q[i + 1]) } else { q[i] };
                    face_flux(&k, q[i], q_avg, h[i - 1], z[i - 1], h[i], z[i], (n2[i - 1] + n2[i]) * T::of(0.5))
                };
            }
        });
        self.qx_next = out;
    }

    fn momentum_y(&mut self, dt: f64) {
        let (nx, ny) = (self.nx, self.ny);
        let k = self.face_consts(dt);
        let mut out = std::mem::take(&mut self.qy_next);
        let this = &*self;
        par_rows(&mut out, nx, this.bands, |j, row| {
            if j == 0 || j == ny {
                let (base, outward, b) = if j == 0 {
                    (0, T::of(-1.0), this.boundaries.south)
                } else {
                    ((ny - 1) * nx, T::of(1.0), this.boundaries.north)
                };
                for (i, out) in row.iter_mut().enumerate() {
                    *out = this.boundary_flux(&k, b, this.qy[j * nx + i], base + i, outward);
                }
                return;
            }
            if !this.row_active(j - 1) && !this.row_active(j) {
                row.fill(T::default());
                return;
            }
            let (a0, b0) = ((j - 1) * nx, j * nx);
            let q = &this.qy[j * nx..(j + 1) * nx];
            let below = (j >= 2).then(|| &this.qy[(j - 1) * nx..j * nx]);
            let above = (j + 1 < ny).then(|| &this.qy[(j + 1) * nx..(j + 2) * nx]);
            let (ha, za, na, ba) =
                (&this.h[a0..a0 + nx], &this.z[a0..a0 + nx], &this.n2[a0..a0 + nx], &this.blocked[a0..a0 + nx]);
            let (hb, zb, nb, bb) =
                (&this.h[b0..b0 + nx], &this.z[b0..b0 + nx], &this.n2[b0..b0 + nx], &this.blocked[b0..b0 + nx]);
            for i in 0..nx {
                row[i] = if ba[i] || bb[i] {
                    T::default()
                } else {
                    let q_avg = match (below, above) {
                        (Some(lo), Some(hi)) => k.theta * q[i] + k.half_rest * (lo[i] + hi[i]),
                        _ => q[i],
                    };
                    face_flux(&k, q[i], q_avg, ha[i], za[i], hb[i], zb[i], (na[i] + nb[i]) * T::of(0.5))
                };
            }
        });
        self.qy_next = out;
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

    /// Scales the outflows of every cell so it never sends out more water than it holds (plus what it
    /// receives is ignored: a conservative, order-free bound).
    fn limit_outflows(&mut self, dt: f64) {
        let nx = self.nx;
        let r = T::of(dt / self.dx);
        let mut limit = std::mem::take(&mut self.limit);
        let this = &*self;
        let limited = par_rows(&mut limit, nx, this.bands, |j, row| {
            let mut any = false;
            let zero = T::default();
            let qx = &this.qx_next[j * (nx + 1)..(j + 1) * (nx + 1)];
            let (south, north) = (&this.qy_next[j * nx..(j + 1) * nx], &this.qy_next[(j + 1) * nx..(j + 2) * nx]);
            let h = &this.h[j * nx..(j + 1) * nx];
            for (i, f) in row.iter_mut().enumerate() {
                let out = ((-qx[i]).max(zero) + qx[i + 1].max(zero) + (-south[i]).max(zero) + north[i].max(zero)) * r;
                *f = if out > h[i] && out > zero {
                    any = true;
                    h[i].max(zero) / out
                } else {
                    T::of(1.0)
                };
            }
            any
        });
        self.limit = limit;
        if !limited.contains(&true) {
            return; // every factor is 1: nothing to scale
        }
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

    fn continuity(&mut self, dt: f64) {
        let (nx, ny, dx) = (self.nx, self.ny, self.dx);
        let area = dx * dx;
        let r = T::of(dt / dx);
        let dt_t = T::of(dt);
        let min_h = T::of(self.params.min_flow_depth_m);
        // Point flows are applied serially (few of them), booked exactly from the depth change.
        let mut h = std::mem::take(&mut self.h);
        let this = &*self;
        let sums = par_rows(&mut h, nx, this.bands, |j, row| {
            let mut s = BandSums::default();
            let zero = T::default();
            let mut row_max = zero;
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
                let (src, cap) = (this.source_mps[c], this.loss_mps[c]);
                if (src > zero || cap > zero) && !this.blocked[c] {
                    let with_src = next + src * dt_t;
                    s.sources += (with_src - next).f64() * area;
                    next = with_src;
                    let loss = (cap * dt_t).min(next.max(zero));
                    let after = next - loss;
                    s.losses += (next - after).f64() * area;
                    next = after;
                }
                // Round-off may leave a tiny negative depth after the limiter: it is kept (water owed),
                // never silently clipped, so the books stay exact.
                *h = next;
                row_max = row_max.max(next);
            }
            s.max_depth = row_max.f64();
            s.active = row_max > min_h;
            s
        });
        self.h = h;
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

/// Flux across a face between a cell (`ha`, `za`) and its + direction neighbour (`hb`, `zb`) by the
/// local-inertial momentum equation (Bates 2010 eq. 11), written with one division:
/// q⁺ = (q̄ − g·h_f·Δt·Δη/Δx)·h_f^{7/3} / (h_f^{7/3} + g·Δt·n²·|q|).
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the two cells' depth and bed, the face's q, q̄ and n²: all needed
fn face_flux<T: Real>(k: &FaceConsts<T>, q: T, q_avg: T, ha: T, za: T, hb: T, zb: T, n2: T) -> T {
    let (ea, eb) = (ha + za, hb + zb);
    let hf = ea.max(eb) - za.max(zb);
    if hf <= k.min_h {
        return T::default();
    }
    let h73 = hf * hf * hf.cbrt();
    (q_avg - k.g_dt_over_dx * hf * (eb - ea)) * h73 / (h73 + k.g_dt * n2 * q.abs())
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
