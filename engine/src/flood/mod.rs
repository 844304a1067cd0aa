//! Flood: 2D surface flooding on the city's terrain.
//!
//! [`solver`] is the local-inertial shallow-water scheme (Bates, Horritt, Fewtrell 2010, with de Almeida
//! et al. 2012's q-centred stabilisation) on a raster, generic over `f32`/`f64` ([`real`]). The validation
//! against analytic solutions is in `flood::validation` (tests) and the scripts under `benches/`.

pub mod analytic;
pub mod grid;
pub mod interventions;
pub mod output;
pub mod plugin;
pub mod real;
pub mod solver;

#[cfg(test)]
mod validation;
