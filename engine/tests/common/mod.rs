//! Helpers shared by the integration tests: paths to the shipped data and scenarios, running a scenario.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn data(rel: &str) -> PathBuf {
    root().join("data").join(rel)
}

pub fn scenario(rel: &str) -> PathBuf {
    root().join("scenarios").join(rel)
}

/// Runs `machi run SCENARIO --threads T --out OUT` (the scenario relative to `scenarios/`) and asserts it
/// succeeded.
pub fn run_scenario(scenario: &str, threads: &str, out: &std::path::Path) {
    run_scenario_file(&self::scenario(scenario), threads, out);
}

/// Runs `machi run FILE --threads T --out OUT` in its own process (so the thread pool has that size) and
/// asserts it succeeded.
pub fn run_scenario_file(file: &std::path::Path, threads: &str, out: &std::path::Path) {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_machi"))
        .args(["run", file.to_str().unwrap(), "--threads", threads, "--out", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success(), "{}", file.display());
}
