//! The balanced network model every importer produces and the power flow reads: buses, branches (lines and
//! transformers as one general π branch in per unit), power injections and shunts.
//!
//! Per unit on the system base `base_mva` and each bus's nominal voltage. A branch is the general π model
//! of MATPOWER's manual (Zimmerman & Murillo-Sánchez, MATPOWER User's Manual, §3.2): a series admittance
//! y_s between an ideal transformer of complex ratio τ = t·e^{jθ} on the from side and the to bus, with
//! shunt admittances on both sides (equal halves of the charging for a line; a transformer's magnetising
//! branch where its model puts it).

use num_complex::Complex64;
use serde::Serialize;

/// What a bus holds fixed in the power flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BusKind {
    /// Active and reactive injection given (a load bus).
    Pq,
    /// Active injection and voltage magnitude given (a generator controlling its voltage).
    Pv,
    /// Voltage magnitude and angle given (the slack: an external grid or reference generator).
    Slack,
}

/// A bus (node).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bus {
    /// Identifier in the source (MATPOWER bus number, pandapower bus index).
    pub id: i64,
    /// Name, if the source gives one.
    pub name: Option<String>,
    /// Nominal voltage (kV).
    pub vn_kv: f64,
    /// Out-of-service buses are left out of the power flow.
    pub in_service: bool,
}

/// What a branch is in the source (for results and ratings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BranchKind {
    /// A line or cable.
    Line,
    /// A two-winding transformer.
    Transformer,
}

/// A branch in per unit (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Branch {
    /// Line or transformer.
    pub kind: BranchKind,
    /// Index of the element in the source's own table (line or transformer index).
    pub source_index: usize,
    /// From bus (index into `Network::buses`).
    pub from: usize,
    /// To bus.
    pub to: usize,
    /// Series admittance (pu).
    #[serde(skip)]
    pub y_series: Complex64,
    /// Shunt admittance at the from end, on the from side of the ideal transformer (pu).
    #[serde(skip)]
    pub y_from: Complex64,
    /// Shunt admittance at the to end (pu).
    #[serde(skip)]
    pub y_to: Complex64,
    /// Off-nominal turns ratio t (1 for a line).
    pub ratio: f64,
    /// Phase shift θ (degrees).
    pub shift_deg: f64,
    /// Thermal limit: maximum current (kA) at the from end, or apparent power (MVA).
    pub rating: Rating,
    /// Whether the branch is connected.
    pub in_service: bool,
}

impl Branch {
    /// The branch's two-port admittances (pu) `[y_ff, y_ft, y_tf, y_tt]`: the currents into it are
    /// I_f = y_ff·V_f + y_ft·V_t and I_t = y_tf·V_f + y_tt·V_t, with the ideal transformer τ = t·e^{jθ} at
    /// the from end (MATPOWER's branch model).
    pub fn two_port(&self) -> [Complex64; 4] {
        let tau = Complex64::from_polar(self.ratio, self.shift_deg.to_radians());
        let ys = self.y_series;
        [(ys + self.y_from) / (tau * tau.conj()), -ys / tau.conj(), -ys / tau, ys + self.y_to]
    }
}

/// A branch's thermal limit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Rating {
    /// No limit given.
    None,
    /// Maximum current (kA), pandapower lines (`max_i_ka`, times parallel lines and derating).
    CurrentKa(f64),
    /// Maximum apparent power (MVA) through either end: MATPOWER `rateA`.
    Mva(f64),
    /// A transformer's rating as pandapower loads it: the larger of each side's current over its rated
    /// current sn/(√3·vn) at the winding's rated voltage.
    Transformer {
        /// Rated power (MVA), times parallel units and derating.
        sn_mva: f64,
        /// Rated HV voltage (kV).
        vn_hv_kv: f64,
        /// Rated LV voltage (kV).
        vn_lv_kv: f64,
    },
}

/// What an injection is in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum InjectionKind {
    /// A load (consumes).
    Load,
    /// A static generator (PV, wind: injects at fixed P, Q).
    StaticGen,
    /// A voltage-controlling generator.
    Gen,
    /// A battery (positive: charging, i.e. consuming, as pandapower).
    Storage,
    /// An external grid or slack generator.
    ExternalGrid,
}

/// A power injection at a bus, generator convention: positive P and Q flow into the network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Injection {
    /// What it is.
    pub kind: InjectionKind,
    /// Index in the source's own table.
    pub source_index: usize,
    /// Bus index.
    pub bus: usize,
    /// Active power injected (MW).
    pub p_mw: f64,
    /// Reactive power injected (Mvar).
    pub q_mvar: f64,
    /// Whether it is connected.
    pub in_service: bool,
}

/// A voltage set point: a generator's (PV bus) or a slack's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VoltageControl {
    /// Bus index.
    pub bus: usize,
    /// Voltage magnitude (pu).
    pub vm_pu: f64,
    /// Voltage angle (degrees), used where the bus is a slack.
    pub va_deg: f64,
    /// Slack (angle reference) or PV.
    pub slack: bool,
    /// Whether it is connected.
    pub in_service: bool,
}

/// A shunt at a bus: admittance in MW and Mvar consumed at 1 pu (MATPOWER's Gs, Bs with B's sign
/// reversed: positive `q_mvar` absorbs reactive power, as pandapower's shunt table).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shunt {
    /// Bus index.
    pub bus: usize,
    /// Active power consumed at 1 pu voltage (MW).
    pub p_mw: f64,
    /// Reactive power consumed at 1 pu voltage (Mvar).
    pub q_mvar: f64,
    /// Whether it is connected.
    pub in_service: bool,
}

/// A balanced network.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Network {
    /// Name (file stem or the source's).
    pub name: String,
    /// System base (MVA).
    pub base_mva: f64,
    /// Frequency (Hz).
    pub f_hz: f64,
    /// Buses.
    pub buses: Vec<Bus>,
    /// Lines and transformers.
    pub branches: Vec<Branch>,
    /// Loads, generators, storage, external grids.
    pub injections: Vec<Injection>,
    /// Voltage set points of slacks and PV generators.
    pub controls: Vec<VoltageControl>,
    /// Shunts.
    pub shunts: Vec<Shunt>,
    /// Buses joined to another by a closed bus–bus switch, as (bus, the bus it was merged into): the
    /// merged bus is out of the power flow and reports the voltage of the bus it was merged into.
    pub merged_buses: Vec<(usize, usize)>,
}

impl Network {
    /// Index of the bus with source identifier `id`.
    pub fn bus_index(&self, id: i64) -> Option<usize> {
        self.buses.iter().position(|b| b.id == id)
    }

    /// Total load (MW) of the in-service loads.
    pub fn total_load_mw(&self) -> f64 {
        self.injections.iter().filter(|i| i.in_service && i.kind == InjectionKind::Load).map(|i| -i.p_mw).sum()
    }
}

/// A cable or overhead line type, per km (pandapower's line table and standard types).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineType {
    /// Name (e.g. pandapower's standard type `NAYY 4x150 SE`).
    pub name: String,
    /// Series resistance (Ω/km).
    pub r_ohm_per_km: f64,
    /// Series reactance (Ω/km).
    pub x_ohm_per_km: f64,
    /// Capacitance (nF/km).
    pub c_nf_per_km: f64,
    /// Dielectric conductance (µS/km).
    pub g_us_per_km: f64,
    /// Thermal current limit (kA).
    pub max_i_ka: f64,
}

/// A two-winding transformer type (pandapower's trafo table and standard types).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrafoType {
    /// Name (e.g. `0.63 MVA 20/0.4 kV`).
    pub name: String,
    /// Rated power (MVA).
    pub sn_mva: f64,
    /// Rated HV voltage (kV).
    pub vn_hv_kv: f64,
    /// Rated LV voltage (kV).
    pub vn_lv_kv: f64,
    /// Short-circuit voltage (% of rated).
    pub vk_percent: f64,
    /// Its resistive part (%).
    pub vkr_percent: f64,
    /// Iron losses (kW).
    pub pfe_kw: f64,
    /// No-load current (% of rated).
    pub i0_percent: f64,
    /// Phase shift of the vector group (degrees).
    pub shift_degree: f64,
}

impl Network {
    /// A line of `length_km` between buses `from` and `to` as a π branch in per unit: R, X per km ×
    /// length ÷ `parallel`, C and G × length × `parallel`, half the shunt at each end, on the from bus's
    /// nominal voltage; rated `max_i_ka · df · parallel` (pandapower's conventions).
    pub fn line_branch(&self, from: usize, to: usize, length_km: f64, t: &LineType, parallel: f64, df: f64) -> Branch {
        let r = t.r_ohm_per_km * length_km / parallel;
        let x = t.x_ohm_per_km * length_km / parallel;
        let b = 2.0 * std::f64::consts::PI * self.f_hz * t.c_nf_per_km * 1e-9 * length_km * parallel;
        let g = t.g_us_per_km * 1e-6 * length_km * parallel;
        let zb = self.buses[from].vn_kv * self.buses[from].vn_kv / self.base_mva;
        let half = Complex64::new(g, b) * zb / 2.0;
        Branch {
            kind: BranchKind::Line,
            source_index: self.branches.len(),
            from,
            to,
            y_series: Complex64::new(1.0, 0.0) / (Complex64::new(r, x) / zb),
            y_from: half,
            y_to: half,
            ratio: 1.0,
            shift_deg: 0.0,
            rating: Rating::CurrentKa(t.max_i_ka * df * parallel),
            in_service: true,
        }
    }

    /// A transformer from bus `hv` to bus `lv` in pandapower's T model (half the short-circuit impedance
    /// on each side of the magnetising branch), as the equivalent π branch. `ratio_hv_kv`/`ratio_lv_kv` are
    /// the winding voltages with the tap applied; `shift_deg` the vector group's shift plus any tap shift.
    #[allow(clippy::too_many_arguments)] // the type, the tapped ratio and the shift: all needed
    pub fn transformer_branch(
        &self,
        hv: usize,
        lv: usize,
        t: &TrafoType,
        ratio_hv_kv: f64,
        ratio_lv_kv: f64,
        shift_deg: f64,
        parallel: f64,
        df: f64,
    ) -> Branch {
        let (vb_hv, vb_lv) = (self.buses[hv].vn_kv, self.buses[lv].vn_kv);
        let ratio = (ratio_hv_kv / ratio_lv_kv) / (vb_hv / vb_lv);
        // Impedances on the system base, referred to the LV side's rated voltage against the LV bus.
        let to_system = (t.vn_lv_kv / vb_lv).powi(2) * self.base_mva / t.sn_mva;
        let (vk, vkr) = (t.vk_percent / 100.0, t.vkr_percent / 100.0);
        let z_sc = Complex64::new(vkr, (vk * vk - vkr * vkr).max(0.0).sqrt()) * to_system / parallel;
        let i0 = t.i0_percent / 100.0;
        let g_m = t.pfe_kw / 1000.0 / t.sn_mva;
        let b_m = (i0 * i0 - g_m * g_m).max(0.0).sqrt();
        let y_m = Complex64::new(g_m, -b_m) / to_system * parallel;
        let one = Complex64::new(1.0, 0.0);
        let (y_series, y_from, y_to) = if y_m.norm() == 0.0 {
            (one / z_sc, Complex64::new(0.0, 0.0), Complex64::new(0.0, 0.0))
        } else {
            // T (z/2, y_m, z/2) to π by the wye–delta transformation.
            let (z1, z2, zm) = (z_sc / 2.0, z_sc / 2.0, one / y_m);
            let sum = z1 * z2 + z2 * zm + zm * z1;
            (one / (sum / zm), one / (sum / z2), one / (sum / z1))
        };
        Branch {
            kind: BranchKind::Transformer,
            source_index: self.branches.len(),
            from: hv,
            to: lv,
            y_series,
            y_from,
            y_to,
            ratio,
            shift_deg,
            rating: Rating::Transformer {
                sn_mva: t.sn_mva * df * parallel,
                vn_hv_kv: t.vn_hv_kv,
                vn_lv_kv: t.vn_lv_kv,
            },
            in_service: true,
        }
    }
}
