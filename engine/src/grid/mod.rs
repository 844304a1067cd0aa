//! The electricity grid domain: a balanced (positive-sequence) network model, importers for MATPOWER case
//! files and pandapower JSON networks, and the AC power flow (Newton–Raphson in polar form on a sparse
//! Jacobian, Tinney & Hart 1967; the formulation of MATPOWER, Zimmerman, Murillo-Sánchez & Thomas 2011).
//!
//! Data flows one way: a file → [`network::Network`] (physical data, per-unit branches) →
//! [`powerflow::PowerFlow`] (admittance matrix, bus types, reused symbolic factorisation) → [`powerflow::Solution`]
//! (bus voltages, branch flows, losses).

pub mod block_lu;
pub mod cpu;
pub mod matpower;
pub mod network;
pub mod pandapower;
pub mod phasor;
pub mod plugin;
pub mod powerflow;
pub mod profiles;
pub mod solar;
pub mod sparse_lu;
pub mod synthesis;
pub mod timeseries;

pub use network::Network;
pub use powerflow::{Algorithm, PowerFlow, PowerFlowError, PowerFlowOptions, Solution, Unsupplied};

use crate::error::{InputError, InputResult};
use std::path::Path;

/// Reads a network file by its extension: MATPOWER `.m` or pandapower `.json`.
pub fn read_case(path: &Path) -> InputResult<Network> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("m") => matpower::read(path),
        Some("json") => pandapower::read(path),
        _ => Err(InputError::new(
            path,
            "file name",
            "unknown network format: expected a MATPOWER case (.m) or a pandapower network (.json)",
        )),
    }
}
