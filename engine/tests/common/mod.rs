//! Helpers shared by the integration tests: paths to the shipped data and scenarios.
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
