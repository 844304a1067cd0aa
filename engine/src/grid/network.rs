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

/// A branch's thermal limit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Rating {
    /// No limit given.
    None,
    /// Maximum current (kA), pandapower lines (`max_i_ka`, times parallel lines and derating).
    CurrentKa(f64),
    /// Maximum apparent power (MVA) through either end: MATPOWER `rateA`, pandapower transformer `sn_mva`.
    Mva(f64),
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
