//! Shared helpers for the criterion benches: paths to the shipped data and scenarios.

use std::path::PathBuf;

/// The workspace root (benches run with the package folder as the working directory).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A path under `data/`.
pub fn data(rel: &str) -> PathBuf {
    workspace().join("data").join(rel)
}

/// A path under `scenarios/`.
pub fn scenario(rel: &str) -> PathBuf {
    workspace().join("scenarios").join(rel)
}
