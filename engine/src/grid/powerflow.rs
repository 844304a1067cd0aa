//! AC power flow: Newton–Raphson in polar coordinates (Tinney & Hart 1967, "Power flow solution by
//! Newton's method", IEEE Trans. PAS 86) with the complex-matrix derivatives of MATPOWER (Zimmerman,
//! "AC power flows, generalized OPF costs and their derivatives using complex matrix notation", MATPOWER
//! Technical Note 2, 2010), on a sparse Jacobian of 2×2 blocks ([`super::block_lu`]).
//!
//! Unknowns: the voltage angle and magnitude of every PV and PQ bus. Equations: the active and reactive
//! power mismatches ΔS = V·conj(Y·V) − S_spec of every PQ bus; at a PV bus, the active mismatch and
//! Δ|V| = 0 (its magnitude is held), so each bus pair contributes one 2×2 block and the Jacobian's block
//! pattern is the admittance matrix's. That pattern follows the topology only, so its fill-reducing order
//! and the patterns of L and U are computed once in [`PowerFlow::new`], and every iteration and
//! [`PowerFlow::solve`] only refactorises values (a time series changes injections, not topology).
//! [`PowerFlow::solve_warm`] starts from the last solution. Islands without a slack are either refused
//! ([`Unsupplied::Error`]) or de-energised ([`Unsupplied::Deenergise`], for outages).

use super::block_lu::{BlockLu, BlockSource};
use super::network::{BusKind, Network, Rating};
use super::phasor::unit_phasor;
use glam::{DMat2, DVec2};
use num_complex::Complex64;
use serde::Serialize;
use std::f64::consts::PI;
use std::ops::Range;

/// What to do with buses no slack can reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupplied {
    /// Refuse the case (a file with an island and no slack is usually a data error).
    Error,
    /// Leave them out: de-energised (voltage 0), their load unserved (outages).
    Deenergise,
}

/// How the power flow is solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Newton–Raphson (any topology, PV buses).
    Newton,
    /// Backward/forward sweep (Shirmohammadi, Hong, Semlyen & Luo 1988, "A compensation-based power flow
    /// method for weakly meshed distribution and transmission networks", IEEE Trans. Power Systems 3(2)),
    /// for radial feeders fed by one slack, without PV buses: branch currents summed from the leaves up,
    /// voltages from the slack down, each branch through its two-port admittances.
    Sweep,
}

/// Convergence control.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PowerFlowOptions {
    /// Solution method.
    pub algorithm: Algorithm,
    /// Largest power mismatch accepted at any bus (MVA): 1e-8, pandapower's default `tolerance_mva`.
    pub tolerance_mva: f64,
    /// Iterations before giving up: 10, MATPOWER's default `pf.nr.max_it`.
    pub max_iterations: usize,
    /// Islands without a slack.
    pub unsupplied: Unsupplied,
}

impl Default for PowerFlowOptions {
    fn default() -> Self {
        PowerFlowOptions {
            algorithm: Algorithm::Newton,
            tolerance_mva: 1e-8,
            max_iterations: 10,
            unsupplied: Unsupplied::Error,
        }
    }
}

/// Why a power flow has no solution.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PowerFlowError {
    /// Buses carrying load or generation that no slack reaches.
    #[error("{count} bus(es) with load or generation are not connected to any slack (external grid or reference generator), e.g. bus ids {examples:?}")]
    IslandWithoutSlack {
        /// How many buses.
        count: usize,
        /// Up to five of their source ids.
        examples: Vec<i64>,
    },
    /// The network has no slack at all.
    #[error("the network has no slack bus (external grid or reference generator)")]
    NoSlack,
    /// Newton–Raphson did not reach the tolerance.
    #[error("the power flow did not converge in {iterations} iterations (largest mismatch {mismatch_mva:.3e} MVA at bus id {bus}); the case may be infeasible (too much load) or badly conditioned")]
    Diverged {
        /// Iterations taken.
        iterations: usize,
        /// Largest mismatch left (MVA).
        mismatch_mva: f64,
        /// Source id of the bus with that mismatch.
        bus: i64,
    },
    /// The sweep needs a radial network fed by one slack, without PV buses.
    #[error("the backward/forward sweep needs a radial network with one slack and no PV bus: {0}")]
    NotRadial(String),
    /// The Jacobian could not be factorised (a singular network: e.g. a bus connected only through zero
    /// impedance, or voltage collapse).
    #[error("the Jacobian is singular at iteration {iteration}: {message}")]
    Singular {
        /// Iteration.
        iteration: usize,
        /// The factorisation's message.
        message: String,
    },
}

/// Results, in the network's bus and branch order; NaN where a bus or branch is out of service or
/// de-energised.
#[derive(Clone, Debug, Serialize)]
pub struct Solution {
    /// Iterations taken.
    pub iterations: usize,
    /// Largest remaining mismatch (MVA).
    pub mismatch_mva: f64,
    /// Voltage magnitude per bus (pu).
    pub vm_pu: Vec<f64>,
    /// Voltage angle per bus (degrees).
    pub va_deg: Vec<f64>,
    /// Net injection per bus, generator convention (MW): what flows from the bus into the branches.
    pub p_mw: Vec<f64>,
    /// Net reactive injection per bus (Mvar).
    pub q_mvar: Vec<f64>,
    /// Per branch: active power entering at the from end (MW).
    pub p_from_mw: Vec<f64>,
    /// Per branch: reactive power entering at the from end (Mvar).
    pub q_from_mvar: Vec<f64>,
    /// Per branch: active power entering at the to end (MW).
    pub p_to_mw: Vec<f64>,
    /// Per branch: reactive power entering at the to end (Mvar).
    pub q_to_mvar: Vec<f64>,
    /// Per branch: current magnitude at the from end (kA).
    pub i_from_ka: Vec<f64>,
    /// Per branch: current magnitude at the to end (kA).
    pub i_to_ka: Vec<f64>,
    /// Per branch: loading against its rating (%): the larger end current over `max_i_ka`, or the larger
    /// end apparent power over the MVA rating; NaN without a rating.
    pub loading_percent: Vec<f64>,
    /// Active losses in the branches (MW).
    pub losses_mw: f64,
    /// Whether each bus is energised.
    pub energised: Vec<bool>,
}

/// A prepared power flow: admittance matrix, bus types, Jacobian pattern and its symbolic factorisation.
pub struct PowerFlow {
    options: PowerFlowOptions,
    /// Bus → position among the energised buses (usize::MAX: not in the power flow).
    pos: Vec<usize>,
    /// Energised buses in power-flow order (network bus indices).
    buses: Vec<usize>,
    kind: Vec<BusKind>,
    /// Admittance matrix, CSR over power-flow positions.
    y_start: Vec<usize>,
    y_col: Vec<u32>,
    y_val: Vec<Complex64>,
    /// Bus shunt admittance per power-flow bus (pu).
    shunt_y: Vec<Complex64>,
    /// The buses with unknowns (PV and PQ), as power-flow positions, in the Jacobian's block order.
    unknown_buses: Vec<usize>,
    /// Per power-flow bus: 1 at PQ buses (magnitude unknown, reactive mismatch an equation), 0 elsewhere.
    pq_mask: Vec<f64>,
    /// The Jacobian's 2×2 blocks in the order the LU takes them ([`BlockLu::entry_order`]): which
    /// admittance entry each one derives from.
    jac_entries: Vec<JacobianEntry>,
    /// The LU of the Jacobian blocks (rows: P and Q mismatch of the row bus; columns: angle and magnitude of
    /// the column bus).
    lu: BlockLu,
    /// Per network branch: what its results are made of.
    terminals: Vec<BranchTerminals>,
    /// The flat start ([`PowerFlow::solve`]; angles from [`PowerFlow::initial_angles`]).
    flat: Voltages,
    /// The last converged voltages, the start of [`PowerFlow::solve_warm`].
    last: Option<Voltages>,
    /// Set points: voltage magnitude (pu) and angle (rad) per power-flow bus (slack and PV).
    vm_set: Vec<f64>,
    va_set: Vec<f64>,
    /// For the sweep: buses in breadth-first order from the slack, each with its parent and the two-port
    /// admittances of the branch to it.
    tree: Option<Vec<TreeEdge>>,
}

/// Bus voltages in polar form, magnitude (pu) and angle (rad), with e^{jθ} beside them so that neither form
/// is recomputed from the other.
#[derive(Clone, Debug, Default)]
struct Voltages {
    vm: Vec<f64>,
    va: Vec<f64>,
    unit: Vec<Complex64>,
}

impl Voltages {
    fn new(vm: Vec<f64>, va: Vec<f64>) -> Voltages {
        let unit = va.iter().map(|&a| unit_phasor(a)).collect();
        Voltages { vm, va, unit }
    }

    fn from_complex(v: &[Complex64]) -> Voltages {
        Voltages::new(v.iter().map(|x| x.norm()).collect(), v.iter().map(|x| x.arg()).collect())
    }

    /// V = |V|·e^{jθ} per bus (pu).
    fn complex(&self) -> Vec<Complex64> {
        self.unit.iter().zip(&self.vm).map(|(u, m)| u * m).collect()
    }
}

/// What a branch's results need, prepared with the power flow: its ends, two-port and base currents, and
/// how its loading is read.
#[derive(Clone, Copy, Debug)]
struct BranchTerminals {
    /// Power-flow positions of the from and to buses; `None` for a branch out of service or de-energised.
    ends: Option<[u32; 2]>,
    /// Whether the branch is in service (an energised branch's results are numbers; a de-energised one's
    /// zero; an out-of-service one's NaN).
    in_service: bool,
    /// The two-port admittances ([`super::network::Branch::two_port`]).
    two_port: [Complex64; 4],
    /// The base current at the from and to ends (kA per pu), S_base / (√3·V_n).
    current_base_ka: [f64; 2],
    /// How the loading is read from the results.
    loading: LoadingScale,
}

/// A branch's loading (%) from its results, by [`Rating`].
#[derive(Clone, Copy, Debug)]
enum LoadingScale {
    /// No rating: NaN.
    None,
    /// The larger of the end currents (kA) times these factors (% per kA): 100/I_max for a line, and
    /// 100·√3·V_n/S_n per winding for a transformer.
    Current([f64; 2]),
    /// The larger end apparent power (MVA) times this factor (% per MVA), 100/S_max.
    Power(f64),
}

impl BranchTerminals {
    fn new(net: &Network, branch: &super::network::Branch, pos: &[usize]) -> BranchTerminals {
        let (f, t) = (pos[branch.from], pos[branch.to]);
        let percent = 100.0;
        BranchTerminals {
            ends: (branch.in_service && f != NONE && t != NONE).then_some([f as u32, t as u32]),
            in_service: branch.in_service,
            two_port: branch.two_port(),
            current_base_ka: [branch.from, branch.to].map(|bus| net.base_mva / (3f64.sqrt() * net.buses[bus].vn_kv)),
            loading: match branch.rating {
                Rating::None => LoadingScale::None,
                Rating::CurrentKa(max) => LoadingScale::Current([percent / max; 2]),
                Rating::Mva(max) => LoadingScale::Power(percent / max),
                Rating::Transformer { sn_mva, vn_hv_kv, vn_lv_kv } => {
                    LoadingScale::Current([vn_hv_kv, vn_lv_kv].map(|vn| percent * 3f64.sqrt() * vn / sn_mva))
                }
            },
        }
    }
}

/// A bus of the radial tree and the branch that feeds it: currents into the branch at the parent (p) and
/// child (c) ends are I_p = y_pp·V_p + y_pc·V_c and I_c = y_cp·V_p + y_cc·V_c.
#[derive(Clone, Copy, Debug)]
struct TreeEdge {
    bus: usize,
    parent: usize,
    y_pp: Complex64,
    y_pc: Complex64,
    y_cp: Complex64,
    y_cc: Complex64,
}

/// One 2×2 block of the Jacobian: the derivatives of bus `row`'s mismatches by bus `col`'s voltage, which
/// come from the admittance `y` = Y[row, col] (power-flow positions).
#[derive(Clone, Copy, Debug)]
struct JacobianEntry {
    row: u32,
    col: u32,
    y: Complex64,
}

const NONE: usize = usize::MAX;

/// What a converged solve hands to [`PowerFlow::solution`]: the voltages in both forms, the current
/// injections I = Y·V, the iterations taken and the largest mismatch left (pu).
struct Converged {
    voltages: Voltages,
    v: Vec<Complex64>,
    current: Vec<Complex64>,
    iterations: usize,
    mismatch: f64,
}

/// The Jacobian at the current voltages, a block column at a time ([`BlockSource::scatter_column`]; single
/// blocks for the scalar fallback): position q holds the block of `entries[q]`, the derivatives of its row
/// bus's active and reactive mismatch (rows) by its column bus's angle and magnitude (columns), MATPOWER's
/// dSbus_dV in polar form.
struct Jacobian<'a> {
    entries: &'a [JacobianEntry],
    v: &'a [Complex64],
    unit: &'a [Complex64],
    vm: &'a [f64],
    current: &'a [Complex64],
    pq_mask: &'a [f64],
}

impl Jacobian<'_> {
    /// The block of entry `e` in the column of bus k, whose unit phasor, magnitude and PQ mask are given.
    #[inline(always)]
    fn block_in_column(&self, e: &JacobianEntry, k: usize, unit_k: Complex64, vm_k: f64, col_pq: f64) -> DMat2 {
        let i = e.row as usize;
        let v = self.v;
        // V_i·conj(Y_ik·e^{jθ_k}); dS/dVa = −j·|V_k|·that (the diagonal terms below aside).
        let mut ds_dvm = v[i] * (e.y * unit_k).conj();
        let mut ds_dva = Complex64::new(ds_dvm.im, -ds_dvm.re) * vm_k;
        if k == i {
            let current = self.current[i].conj();
            ds_dva += Complex64::i() * v[i] * current;
            ds_dvm += current * self.unit[i];
        }
        // Rows of PV buses keep only the active mismatch, columns only the angle; a PV bus's own block
        // holds Δ|V| = 0.
        let row_pq = self.pq_mask[i];
        let held = if i == k { 1.0 - row_pq } else { 0.0 };
        DMat2::from_cols(
            DVec2::new(ds_dva.re, ds_dva.im * row_pq),
            DVec2::new(ds_dvm.re * col_pq, ds_dvm.im * row_pq * col_pq + held),
        )
    }
}

impl BlockSource for Jacobian<'_> {
    /// One block, for the scalar fallback (the elimination takes whole columns).
    fn block(&self, q: usize) -> DMat2 {
        let e = &self.entries[q];
        let k = e.col as usize;
        self.block_in_column(e, k, self.unit[k], self.vm[k], self.pq_mask[k])
    }

    /// A column's blocks, with the column bus's phasor, magnitude and mask read once; inlined into the
    /// elimination, where the blocks are wanted (a call per block cost more than the block).
    #[inline(always)]
    fn scatter_column(&self, positions: Range<usize>, rows: &[u32], x: &mut [DMat2]) {
        let entries = &self.entries[positions];
        let Some(first) = entries.first() else { return };
        let k = first.col as usize;
        let (unit_k, vm_k, col_pq) = (self.unit[k], self.vm[k], self.pq_mask[k]);
        for (e, &p) in entries.iter().zip(rows) {
            debug_assert_eq!(e.col as usize, k, "the positions are one column's");
            x[p as usize] = self.block_in_column(e, k, unit_k, vm_k, col_pq);
        }
    }
}

/// |z| as √(re² + im²): per-unit currents and powers are far from overflow, so `hypot`'s rescaling (8 % of
/// a case2869pegase solve in a profile, before this) buys nothing here.
fn magnitude(z: Complex64) -> f64 {
    z.norm_sqr().sqrt()
}

impl PowerFlow {
    /// Prepares the power flow of `net`: finds the energised buses and their types, builds the admittance
    /// matrix and the Jacobian's pattern, and factorises that pattern symbolically.
    pub fn new(net: &Network, options: PowerFlowOptions) -> Result<PowerFlow, PowerFlowError> {
        let nb = net.buses.len();
        // Bus types from the voltage controls: a slack wins over PV.
        let mut kind = vec![BusKind::Pq; nb];
        let mut vm_set = vec![1.0; nb];
        let mut va_set = vec![0.0; nb];
        for c in net.controls.iter().filter(|c| c.in_service && net.buses[c.bus].in_service) {
            match (c.slack, kind[c.bus]) {
                (true, BusKind::Slack) => {}
                (true, _) => {
                    kind[c.bus] = BusKind::Slack;
                    vm_set[c.bus] = c.vm_pu;
                    va_set[c.bus] = c.va_deg * PI / 180.0;
                }
                (false, BusKind::Pq) => {
                    kind[c.bus] = BusKind::Pv;
                    vm_set[c.bus] = c.vm_pu;
                }
                (false, _) => {}
            }
        }
        if !kind.contains(&BusKind::Slack) {
            return Err(PowerFlowError::NoSlack);
        }
        // Islands: breadth-first from the slacks over in-service branches.
        let mut adjacency: Vec<Vec<usize>> = vec![Vec::new(); nb];
        for b in net.branches.iter().filter(|b| b.in_service) {
            if net.buses[b.from].in_service && net.buses[b.to].in_service {
                adjacency[b.from].push(b.to);
                adjacency[b.to].push(b.from);
            }
        }
        let mut energised = vec![false; nb];
        let mut queue: Vec<usize> = (0..nb).filter(|&i| kind[i] == BusKind::Slack).collect();
        for &s in &queue {
            energised[s] = true;
        }
        while let Some(i) = queue.pop() {
            for &k in &adjacency[i] {
                if !energised[k] {
                    energised[k] = true;
                    queue.push(k);
                }
            }
        }
        if options.unsupplied == Unsupplied::Error {
            let mut active = vec![false; nb];
            for inj in net.injections.iter().filter(|i| i.in_service && (i.p_mw != 0.0 || i.q_mvar != 0.0)) {
                active[inj.bus] = true;
            }
            let stranded: Vec<usize> =
                (0..nb).filter(|&i| net.buses[i].in_service && !energised[i] && active[i]).collect();
            if !stranded.is_empty() {
                return Err(PowerFlowError::IslandWithoutSlack {
                    count: stranded.len(),
                    examples: stranded.iter().take(5).map(|&i| net.buses[i].id).collect(),
                });
            }
        }
        let buses: Vec<usize> = (0..nb).filter(|&i| energised[i]).collect();
        let mut pos = vec![NONE; nb];
        for (p, &i) in buses.iter().enumerate() {
            pos[i] = p;
        }
        let n = buses.len();
        // Admittance matrix (Y = Yf/Yt stamps per branch, MATPOWER makeYbus), summed per (row, column).
        let mut rows: Vec<Vec<(usize, Complex64)>> = vec![Vec::new(); n];
        let mut stamp = |r: usize, c: usize, y: Complex64| rows[r].push((c, y));
        for b in net.branches.iter().filter(|b| b.in_service) {
            let (f, t) = (pos[b.from], pos[b.to]);
            if f == NONE || t == NONE {
                continue;
            }
            let [yff, yft, ytf, ytt] = b.two_port();
            stamp(f, f, yff);
            stamp(f, t, yft);
            stamp(t, f, ytf);
            stamp(t, t, ytt);
        }
        let mut shunt_y = vec![Complex64::new(0.0, 0.0); n];
        for s in net.shunts.iter().filter(|s| s.in_service) {
            let p = pos[s.bus];
            if p != NONE {
                // Consumed S = V²·conj(Y) at 1 pu ⇒ Y = (P − jQ)/base.
                let y = Complex64::new(s.p_mw, -s.q_mvar) / net.base_mva;
                shunt_y[p] += y;
                stamp(p, p, y);
            }
        }
        for (p, row) in rows.iter_mut().enumerate() {
            row.push((p, Complex64::new(0.0, 0.0))); // a structural diagonal
        }
        let (mut y_start, mut y_col, mut y_val) = (vec![0], Vec::new(), Vec::new());
        for mut row in rows {
            row.sort_by_key(|e| e.0);
            for (c, y) in row {
                if y_col.len() > *y_start.last().unwrap() && *y_col.last().unwrap() == c as u32 {
                    *y_val.last_mut().unwrap() += y;
                } else {
                    y_col.push(c as u32);
                    y_val.push(y);
                }
            }
            y_start.push(y_col.len());
        }
        let kind: Vec<BusKind> = buses.iter().map(|&i| kind[i]).collect();
        // One unknown block (angle, magnitude) per PV or PQ bus; at a PV bus the magnitude is held by the
        // equation Δ|V| = 0 in place of the reactive mismatch, so every block is 2×2.
        let pq_mask: Vec<f64> = kind.iter().map(|&k| if k == BusKind::Pq { 1.0 } else { 0.0 }).collect();
        let unknown_buses: Vec<usize> = (0..n).filter(|&p| kind[p] != BusKind::Slack).collect();
        let mut block = vec![NONE; n];
        for (b, &p) in unknown_buses.iter().enumerate() {
            block[p] = b;
        }
        // The Jacobian's block pattern is the admittance matrix's between those buses. Y is structurally
        // symmetric (every branch stamps both ways), so row k of Y lists the rows of block column k.
        let (mut col_start, mut row_idx, mut jac_entries) = (vec![0], Vec::new(), Vec::new());
        for &k in &unknown_buses {
            for &i in &y_col[y_start[k]..y_start[k + 1]] {
                let i = i as usize;
                if block[i] == NONE {
                    continue;
                }
                let row_i = y_start[i]..y_start[i + 1];
                let Ok(at) = y_col[row_i.clone()].binary_search(&(k as u32)) else {
                    unreachable!("the admittance pattern is symmetric");
                };
                jac_entries.push(JacobianEntry { row: i as u32, col: k as u32, y: y_val[row_i.start + at] });
                row_idx.push(block[i]);
            }
            col_start.push(row_idx.len());
        }
        let lu = BlockLu::new(unknown_buses.len(), col_start, row_idx)
            .map_err(|e| PowerFlowError::Singular { iteration: 0, message: e.0 })?;
        let jac_entries: Vec<JacobianEntry> = lu.entry_order().iter().map(|&e| jac_entries[e]).collect();
        let tree = match options.algorithm {
            Algorithm::Newton => None,
            Algorithm::Sweep => Some(radial_tree(net, &pos, &kind, n)?),
        };
        let vm_set = buses.iter().map(|&i| vm_set[i]).collect();
        let va_set = buses.iter().map(|&i| va_set[i]).collect();
        let terminals = net.branches.iter().map(|b| BranchTerminals::new(net, b, &pos)).collect();
        let mut pf = PowerFlow {
            options,
            terminals,
            pos,
            buses,
            kind,
            y_start,
            y_col,
            y_val,
            shunt_y,
            unknown_buses,
            pq_mask,
            jac_entries,
            lu,
            flat: Voltages::default(),
            last: None,
            vm_set,
            va_set,
            tree,
        };
        let va = pf.initial_angles(net);
        let vm = (0..pf.buses.len()).map(|p| if pf.kind[p] == BusKind::Pq { 1.0 } else { pf.vm_set[p] }).collect();
        pf.flat = Voltages::new(vm, va);
        Ok(pf)
    }

    /// Initial angles (rad): each slack's angle carried through the branches, less each transformer's phase
    /// shift on the way from its from side to its to side (a Dyn5 transformer puts its LV side 150° behind):
    /// a flat start that ignored the shifts would start Newton–Raphson far from the solution.
    fn initial_angles(&self, net: &Network) -> Vec<f64> {
        let n = self.buses.len();
        let mut va = vec![f64::NAN; n];
        let mut adj: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
        for b in net.branches.iter().filter(|b| b.in_service) {
            let (f, t) = (self.pos[b.from], self.pos[b.to]);
            if f != NONE && t != NONE {
                let shift = b.shift_deg * PI / 180.0;
                adj[f].push((t, -shift));
                adj[t].push((f, shift));
            }
        }
        let mut queue: Vec<usize> = (0..n).filter(|&p| self.kind[p] == BusKind::Slack).collect();
        for &p in &queue {
            va[p] = self.va_set[p];
        }
        let mut head = 0;
        while head < queue.len() {
            let u = queue[head];
            head += 1;
            for &(v, d) in &adj[u] {
                if va[v].is_nan() {
                    va[v] = va[u] + d;
                    queue.push(v);
                }
            }
        }
        va.iter().map(|a| if a.is_nan() { 0.0 } else { *a }).collect()
    }

    /// Number of buses in the power flow (energised).
    pub fn bus_count(&self) -> usize {
        self.buses.len()
    }

    /// Current injections I = Y·V, into `out`, in AVX2 where the CPU has it ([`super::cpu`]).
    fn currents_into(&self, v: &[Complex64], out: &mut [Complex64]) {
        #[cfg(target_arch = "x86_64")]
        if super::cpu::has_avx2() {
            // SAFETY: the CPU has AVX2 (checked on the line above), the one requirement of the call.
            return unsafe { self.currents_into_avx2(v, out) };
        }
        self.currents_into_any_cpu(v, out)
    }

    /// [`PowerFlow::currents_into_any_cpu`] compiled with AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn currents_into_avx2(&self, v: &[Complex64], out: &mut [Complex64]) {
        self.currents_into_any_cpu(v, out)
    }

    /// I = Y·V, inlined into each of [`PowerFlow::currents_into`]'s builds.
    #[inline(always)]
    fn currents_into_any_cpu(&self, v: &[Complex64], out: &mut [Complex64]) {
        for (o, row) in out.iter_mut().zip(self.y_start.windows(2)) {
            let mut sum = Complex64::new(0.0, 0.0);
            for (y, &c) in self.y_val[row[0]..row[1]].iter().zip(&self.y_col[row[0]..row[1]]) {
                sum += y * v[c as usize];
            }
            *o = sum;
        }
    }

    /// Current injections I = Y·V.
    fn currents(&self, v: &[Complex64]) -> Vec<Complex64> {
        let mut out = vec![Complex64::new(0.0, 0.0); v.len()];
        self.currents_into(v, &mut out);
        out
    }

    /// Solves for `net`'s current injections (its topology must be the one given to [`PowerFlow::new`]),
    /// from a flat start: set points at slack and PV buses, 1 pu elsewhere, the slack's angle carried
    /// through the transformers' phase shifts.
    pub fn solve(&mut self, net: &Network) -> Result<Solution, PowerFlowError> {
        let start = self.flat.clone();
        self.solve_from(net, start)
    }

    /// Like [`PowerFlow::solve`], but starting from the last converged solution (a flat start if there is
    /// none): the steps of a time series differ little, so Newton–Raphson needs fewer iterations.
    pub fn solve_warm(&mut self, net: &Network) -> Result<Solution, PowerFlowError> {
        let start = match self.last.take() {
            Some(v) => v,
            None => self.flat.clone(),
        };
        self.solve_from(net, start)
    }

    fn solve_from(&mut self, net: &Network, start: Voltages) -> Result<Solution, PowerFlowError> {
        let n = self.buses.len();
        let base = net.base_mva;
        // Specified injections (pu), generator convention.
        let mut s_spec = vec![Complex64::new(0.0, 0.0); n];
        for inj in net.injections.iter().filter(|i| i.in_service) {
            let p = self.pos[inj.bus];
            if p != NONE {
                s_spec[p] += Complex64::new(inj.p_mw, inj.q_mvar) / base;
            }
        }
        let tol = self.options.tolerance_mva / base;
        let converged = match self.tree.take() {
            Some(tree) => {
                let result = self.sweep(net, &tree, &s_spec, start.complex(), tol);
                self.tree = Some(tree);
                let (v, current, iterations, mismatch) = result?;
                Converged { voltages: Voltages::from_complex(&v), v, current, iterations, mismatch }
            }
            None => self.newton(net, &s_spec, start, tol)?,
        };
        let solution = self.solution(net, &converged, base);
        self.last = Some(converged.voltages);
        Ok(solution)
    }

    /// Newton–Raphson from `start`.
    fn newton(
        &mut self,
        net: &Network,
        s_spec: &[Complex64],
        start: Voltages,
        tol: f64,
    ) -> Result<Converged, PowerFlowError> {
        let n = self.buses.len();
        let base = net.base_mva;
        let mut v = start.complex();
        let Voltages { mut vm, mut va, mut unit } = start;
        let mut current = vec![Complex64::new(0.0, 0.0); n];
        let mut f = vec![DVec2::ZERO; self.unknown_buses.len()];
        let mut iterations = 0;
        loop {
            self.currents_into(&v, &mut current);
            let (mut worst, mut at) = (0.0f64, 0);
            for (fb, &p) in f.iter_mut().zip(&self.unknown_buses) {
                let mismatch = v[p] * current[p].conj() - s_spec[p];
                *fb = DVec2::new(mismatch.re, mismatch.im * self.pq_mask[p]);
                let largest = fb.abs().max_element();
                if largest > worst {
                    (worst, at) = (largest, p);
                }
            }
            if worst < tol {
                let voltages = Voltages { vm, va, unit };
                return Ok(Converged { voltages, v, current, iterations, mismatch: worst });
            }
            if iterations == self.options.max_iterations {
                return Err(PowerFlowError::Diverged {
                    iterations,
                    mismatch_mva: worst * base,
                    bus: net.buses[self.buses[at]].id,
                });
            }
            iterations += 1;
            // J·Δx = F, the Jacobian's blocks (dS/dVa and dS/dVm per admittance entry, MATPOWER dSbus_dV in
            // polar form) made as the factorisation takes them; then x −= Δx.
            let jacobian = Jacobian {
                entries: &self.jac_entries,
                v: &v,
                unit: &unit,
                vm: &vm,
                current: &current,
                pq_mask: &self.pq_mask,
            };
            self.lu
                .factorise_solve(jacobian, &mut f)
                .map_err(|e| PowerFlowError::Singular { iteration: iterations, message: e.0 })?;
            if f.iter().any(|x| !x.is_finite()) {
                return Err(PowerFlowError::Singular { iteration: iterations, message: "non-finite step".into() });
            }
            for (step, &p) in f.iter().zip(&self.unknown_buses) {
                va[p] -= step.x;
                vm[p] -= step.y * self.pq_mask[p];
                unit[p] = unit_phasor(va[p]);
                v[p] = unit[p] * vm[p];
            }
        }
    }

    /// The backward/forward sweep from `v`; converged when the power mismatch (as for Newton) is below
    /// `tol` (pu). Returns the voltages, the current injections, iterations and largest mismatch (pu).
    fn sweep(
        &self,
        net: &Network,
        tree: &[TreeEdge],
        s_spec: &[Complex64],
        mut v: Vec<Complex64>,
        tol: f64,
    ) -> Result<(Vec<Complex64>, Vec<Complex64>, usize, f64), PowerFlowError> {
        let n = self.buses.len();
        let mut i_child = vec![Complex64::new(0.0, 0.0); n]; // current from each bus into its parent branch
        let mut iterations = 0;
        loop {
            let current = self.currents(&v);
            let (worst, at) = (0..n)
                .filter(|&p| self.kind[p] != BusKind::Slack)
                .map(|p| ((v[p] * current[p].conj() - s_spec[p]).norm(), p))
                .fold((0.0f64, 0), |m, x| if x.0 > m.0 { x } else { m });
            if worst < tol {
                return Ok((v, current, iterations, worst));
            }
            if iterations == self.options.max_iterations {
                return Err(PowerFlowError::Diverged {
                    iterations,
                    mismatch_mva: worst * net.base_mva,
                    bus: net.buses[self.buses[at]].id,
                });
            }
            iterations += 1;
            // Net current each bus sends into the network: its injection, less what its shunts draw (the
            // bus-shunt part of Y's diagonal not belonging to a tree branch).
            let mut outflow: Vec<Complex64> =
                (0..n).map(|p| (s_spec[p] / v[p]).conj() - self.shunt_y[p] * v[p]).collect();
            // Backward: leaves first, each bus's surplus flows into its parent branch.
            for e in tree.iter().skip(1).rev() {
                i_child[e.bus] = outflow[e.bus];
                // At the parent's end: V_c from I_c and V_p, then I_p.
                let v_c = (i_child[e.bus] - e.y_cp * v[e.parent]) / e.y_cc;
                let i_p = e.y_pp * v[e.parent] + e.y_pc * v_c;
                outflow[e.parent] -= i_p;
            }
            // Forward: voltages from the slack down.
            for e in tree.iter().skip(1) {
                v[e.bus] = (i_child[e.bus] - e.y_cp * v[e.parent]) / e.y_cc;
            }
        }
    }

    /// The results of a converged solve, in the network's bus and branch order; `base` is the MVA base.
    fn solution(&self, net: &Network, converged: &Converged, base: f64) -> Solution {
        let Converged { voltages, v, current, iterations, mismatch } = converged;
        let (iterations, mismatch_mva) = (*iterations, mismatch * base);
        let nb = net.buses.len();
        let mut sol = Solution {
            iterations,
            mismatch_mva,
            vm_pu: vec![f64::NAN; nb],
            va_deg: vec![f64::NAN; nb],
            p_mw: vec![f64::NAN; nb],
            q_mvar: vec![f64::NAN; nb],
            p_from_mw: Vec::with_capacity(net.branches.len()),
            q_from_mvar: Vec::with_capacity(net.branches.len()),
            p_to_mw: Vec::with_capacity(net.branches.len()),
            q_to_mvar: Vec::with_capacity(net.branches.len()),
            i_from_ka: Vec::with_capacity(net.branches.len()),
            i_to_ka: Vec::with_capacity(net.branches.len()),
            loading_percent: Vec::with_capacity(net.branches.len()),
            losses_mw: 0.0,
            energised: self.pos.iter().map(|&p| p != NONE).collect(),
        };
        for (p, &i) in self.buses.iter().enumerate() {
            sol.vm_pu[i] = voltages.vm[p];
            sol.va_deg[i] = voltages.va[p].to_degrees();
            let s = v[p] * current[p].conj() * base;
            sol.p_mw[i] = s.re;
            sol.q_mvar[i] = s.im;
        }
        for &(merged, into) in &net.merged_buses {
            sol.vm_pu[merged] = sol.vm_pu[into];
            sol.va_deg[merged] = sol.va_deg[into];
            sol.energised[merged] = sol.energised[into];
            if sol.energised[merged] {
                (sol.p_mw[merged], sol.q_mvar[merged]) = (0.0, 0.0);
            }
        }
        debug_assert_eq!(net.branches.len(), self.terminals.len(), "the network this power flow was made for");
        for b in &self.terminals {
            let Some([f, t]) = b.ends else {
                let value = if b.in_service { 0.0 } else { f64::NAN };
                for list in [
                    &mut sol.p_from_mw,
                    &mut sol.q_from_mvar,
                    &mut sol.p_to_mw,
                    &mut sol.q_to_mvar,
                    &mut sol.i_from_ka,
                    &mut sol.i_to_ka,
                    &mut sol.loading_percent,
                ] {
                    list.push(value);
                }
                continue;
            };
            let (vf, vt) = (v[f as usize], v[t as usize]);
            let [yff, yft, ytf, ytt] = b.two_port;
            let i_f = yff * vf + yft * vt;
            let i_t = ytf * vf + ytt * vt;
            let (s_f, s_t) = (vf * i_f.conj() * base, vt * i_t.conj() * base);
            let [base_f, base_t] = b.current_base_ka;
            let (ia, ib) = (magnitude(i_f) * base_f, magnitude(i_t) * base_t);
            sol.p_from_mw.push(s_f.re);
            sol.q_from_mvar.push(s_f.im);
            sol.p_to_mw.push(s_t.re);
            sol.q_to_mvar.push(s_t.im);
            sol.i_from_ka.push(ia);
            sol.i_to_ka.push(ib);
            sol.losses_mw += s_f.re + s_t.re;
            sol.loading_percent.push(match b.loading {
                LoadingScale::None => f64::NAN,
                LoadingScale::Current([scale_f, scale_t]) => (ia * scale_f).max(ib * scale_t),
                LoadingScale::Power(scale) => magnitude(s_f).max(magnitude(s_t)) * scale,
            });
        }
        sol
    }
}

/// The radial tree of the energised buses from the single slack, or why there is none.
fn radial_tree(net: &Network, pos: &[usize], kind: &[BusKind], n: usize) -> Result<Vec<TreeEdge>, PowerFlowError> {
    let slacks: Vec<usize> = (0..net.buses.len()).filter(|&i| pos[i] != NONE && kind[i] == BusKind::Slack).collect();
    if slacks.len() != 1 {
        return Err(PowerFlowError::NotRadial(format!("{} slacks", slacks.len())));
    }
    if let Some(i) = (0..net.buses.len()).find(|&i| pos[i] != NONE && kind[i] == BusKind::Pv) {
        return Err(PowerFlowError::NotRadial(format!("bus id {} is a PV bus", net.buses[i].id)));
    }
    let mut links: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n]; // (neighbour, branch)
    let mut count = 0;
    for (k, b) in net.branches.iter().enumerate().filter(|(_, b)| b.in_service) {
        let (f, t) = (pos[b.from], pos[b.to]);
        if f != NONE && t != NONE {
            links[f].push((t, k));
            links[t].push((f, k));
            count += 1;
        }
    }
    if count + 1 != n {
        return Err(PowerFlowError::NotRadial(format!("{count} branches connect {n} buses (a tree has {})", n - 1)));
    }
    let root = pos[slacks[0]];
    let zero = Complex64::new(0.0, 0.0);
    let mut tree = vec![TreeEdge { bus: root, parent: NONE, y_pp: zero, y_pc: zero, y_cp: zero, y_cc: zero }];
    let mut seen = vec![false; n];
    seen[root] = true;
    let mut head = 0;
    while head < tree.len() {
        let p = tree[head].bus;
        head += 1;
        for &(c, k) in &links[p] {
            if seen[c] {
                continue;
            }
            seen[c] = true;
            let b = &net.branches[k];
            let [yff, yft, ytf, ytt] = b.two_port();
            let edge = if pos[b.from] == p {
                TreeEdge { bus: c, parent: p, y_pp: yff, y_pc: yft, y_cp: ytf, y_cc: ytt }
            } else {
                TreeEdge { bus: c, parent: p, y_pp: ytt, y_pc: ytf, y_cp: yft, y_cc: yff }
            };
            tree.push(edge);
        }
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::matpower;
    use std::path::Path;

    fn wscc9() -> Network {
        matpower::parse(matpower::tests::CASE9, Path::new("case9.m")).unwrap()
    }

    fn lv_feeder(load_scale: f64) -> Network {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/grid/ieee-european-lv.pandapower.json");
        let mut net = crate::grid::pandapower::read(&path).unwrap();
        for inj in &mut net.injections {
            inj.p_mw *= load_scale;
            inj.q_mvar *= load_scale;
        }
        net
    }

    #[test]
    fn the_jacobian_gives_the_same_blocks_by_column_as_one_by_one() {
        // The elimination takes the Jacobian a column at a time, the scalar fallback block by block.
        for net in [wscc9(), lv_feeder(1.0)] {
            let pf = PowerFlow::new(&net, PowerFlowOptions::default()).unwrap();
            let v: Vec<Complex64> =
                (0..pf.bus_count()).map(|p| unit_phasor(0.02 * p as f64) * (1.0 - 1e-3 * p as f64)).collect();
            let current = pf.currents(&v);
            let vm: Vec<f64> = v.iter().map(|z| z.norm()).collect();
            let unit: Vec<Complex64> = v.iter().zip(&vm).map(|(z, m)| z / m).collect();
            let jacobian = Jacobian {
                entries: &pf.jac_entries,
                v: &v,
                unit: &unit,
                vm: &vm,
                current: &current,
                pq_mask: &pf.pq_mask,
            };
            let bits = |b: DMat2| b.to_cols_array().map(f64::to_bits);
            let (mut start, mut columns) = (0, 0);
            while start < pf.jac_entries.len() {
                let col = pf.jac_entries[start].col;
                let end = start + pf.jac_entries[start..].iter().take_while(|e| e.col == col).count();
                let rows: Vec<u32> = (0..(end - start) as u32).rev().collect();
                let mut x = vec![DMat2::ZERO; end - start];
                jacobian.scatter_column(start..end, &rows, &mut x);
                for (q, &r) in (start..end).zip(&rows) {
                    assert_eq!(bits(x[r as usize]), bits(jacobian.block(q)), "{}: block {q}", net.name);
                }
                (start, columns) = (end, columns + 1);
            }
            assert_eq!(columns, pf.unknown_buses.len(), "one run of entries per block column");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_build_of_the_current_injections_is_bit_identical() {
        if !crate::grid::cpu::avx2_build_runs_here() {
            return;
        }
        let net = lv_feeder(1.0);
        let pf = PowerFlow::new(&net, PowerFlowOptions::default()).unwrap();
        let v: Vec<Complex64> =
            (0..pf.bus_count()).map(|p| unit_phasor(0.01 * p as f64) * (1.0 - 1e-4 * p as f64)).collect();
        let (mut avx2, mut baseline) =
            (vec![Complex64::new(0.0, 0.0); v.len()], vec![Complex64::new(0.0, 0.0); v.len()]);
        // SAFETY: the CPU has AVX2 (checked above).
        unsafe { pf.currents_into_avx2(&v, &mut avx2) };
        pf.currents_into_any_cpu(&v, &mut baseline);
        let bits = |c: &[Complex64]| c.iter().flat_map(|z| [z.re.to_bits(), z.im.to_bits()]).collect::<Vec<u64>>();
        assert!(bits(&avx2) == bits(&baseline), "the AVX2 and baseline builds differ");
        assert!(baseline.iter().any(|i| i.norm() > 1e-3), "the injections are not all zero");
    }

    #[test]
    fn wscc_nine_bus_matches_the_textbook() {
        // Anderson & Fouad's load flow: the slack generates 71.6 MW beside 163 + 85 MW scheduled, against
        // 315 MW of load: 4.64 MW of losses. (The bus-by-bus comparison is against pandapower, on the
        // shipped cases.)
        let net = wscc9();
        let sol = PowerFlow::new(&net, PowerFlowOptions::default()).unwrap().solve(&net).unwrap();
        assert!(sol.iterations <= 5 && sol.mismatch_mva < 1e-8);
        assert!((sol.losses_mw - 4.641).abs() < 1e-3, "losses {}", sol.losses_mw);
        let slack_p = sol.p_mw[0];
        assert!((slack_p - 71.641).abs() < 1e-3, "slack {slack_p} MW");
        // Power balance: injections sum to the losses.
        let balance: f64 = sol.p_mw.iter().sum();
        assert!((balance - sol.losses_mw).abs() < 1e-9);
    }

    #[test]
    fn a_warm_start_reaches_the_same_solution_in_fewer_iterations() {
        let mut net = lv_feeder(100.0);
        let options = PowerFlowOptions { tolerance_mva: 1e-10, ..Default::default() };
        let mut pf = PowerFlow::new(&net, options).unwrap();
        let first = pf.solve_warm(&net).unwrap(); // no solution yet: a flat start
                                                  // The next step of a time series: loads 5 % higher.
        for inj in &mut net.injections {
            inj.p_mw *= 1.05;
            inj.q_mvar *= 1.05;
        }
        let flat = pf.solve(&net).unwrap();
        // Start from the previous step's solution (in power-flow order), as a time series does.
        let vm = pf.buses.iter().map(|&i| first.vm_pu[i]).collect();
        let va = pf.buses.iter().map(|&i| first.va_deg[i].to_radians()).collect();
        pf.last = Some(Voltages::new(vm, va));
        let warm = pf.solve_warm(&net).unwrap();
        assert!(warm.iterations < flat.iterations, "warm {} vs flat {}", warm.iterations, flat.iterations);
        let worst = flat.vm_pu.iter().zip(&warm.vm_pu).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-9, "largest |ΔV| {worst} pu");
    }

    #[test]
    fn the_sweep_and_newton_agree_on_a_radial_feeder() {
        // The IEEE European LV feeder with its off-peak loads scaled up 300× (about 1 MW): real drops.
        let net = lv_feeder(300.0);
        let tight = PowerFlowOptions { tolerance_mva: 1e-11, ..Default::default() };
        let newton = PowerFlow::new(&net, tight).unwrap().solve(&net).unwrap();
        let options = PowerFlowOptions { algorithm: Algorithm::Sweep, max_iterations: 50, ..tight };
        let sweep = PowerFlow::new(&net, options).unwrap().solve(&net).unwrap();
        let worst = newton
            .vm_pu
            .iter()
            .zip(&sweep.vm_pu)
            .filter(|(a, _)| a.is_finite())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let lowest = newton.vm_pu.iter().copied().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
        assert!(lowest < 1.0, "the scaled feeder has a real voltage drop: {lowest}");
        assert!(worst < 1e-9, "largest |ΔV| {worst} pu");
        assert!((newton.losses_mw - sweep.losses_mw).abs() < 1e-9);
        // The sweep refuses what it cannot do.
        let meshed = wscc9();
        assert!(matches!(PowerFlow::new(&meshed, options), Err(PowerFlowError::NotRadial(_))));
    }

    #[test]
    fn islands_without_a_slack_are_refused_or_de_energised() {
        let mut net = wscc9();
        // Cut bus 9 (125 MW) off: branches 8–9 and 9–4.
        for b in net.branches.iter_mut().filter(|b| b.from == 8 || b.to == 8) {
            b.in_service = false;
        }
        let err = PowerFlow::new(&net, PowerFlowOptions::default()).err().unwrap();
        assert_eq!(err, PowerFlowError::IslandWithoutSlack { count: 1, examples: vec![9] });
        let options = PowerFlowOptions { unsupplied: Unsupplied::Deenergise, ..Default::default() };
        let sol = PowerFlow::new(&net, options).unwrap().solve(&net).unwrap();
        assert!(!sol.energised[8] && sol.vm_pu[8].is_nan());
        assert!(sol.energised[0..8].iter().all(|&e| e));
        net.controls.retain(|c| !c.slack);
        assert_eq!(PowerFlow::new(&net, PowerFlowOptions::default()).err(), Some(PowerFlowError::NoSlack));
    }

    #[test]
    fn an_impossible_load_does_not_converge_and_says_so() {
        let mut net = wscc9();
        for inj in net.injections.iter_mut().filter(|i| i.kind == crate::grid::network::InjectionKind::Load) {
            inj.p_mw *= 40.0;
        }
        let err = PowerFlow::new(&net, PowerFlowOptions::default()).unwrap().solve(&net).unwrap_err();
        assert!(matches!(err, PowerFlowError::Diverged { .. } | PowerFlowError::Singular { .. }), "{err}");
    }
}
