//! Machi (町): a digital twin of a city.
//!
//! Data flows one way (see `ARCHITECTURE.md`):
//! `import` (files → [`city::City`]) → [`scenario`] (TOML → `Scenario`) → [`sim`] (bevy_ecs World ticked by
//! domain plugins) → [`observe`] (KPIs, time series) and [`replay`] (the replay container) → viewer, reports.

#![warn(missing_docs)]

pub mod city;
pub mod coupling;
pub mod crowd;
pub mod error;
pub mod flood;
pub mod geo;
pub mod grid;
pub mod import;
pub mod mobility;
pub mod observe;
pub mod output;
pub mod population;
pub mod replay;
pub mod rng;
pub mod robots;
pub mod run;
pub mod scenario;
pub mod sim;
