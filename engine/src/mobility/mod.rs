//! Mobility: how the population moves between its activities.
//!
//! Until the microscopic model lands, [`teleport`] is the mobility domain: every trip takes its free-flow
//! travel time on the road or footpath graph, as MATSim "teleports" modes it does not simulate.

pub mod teleport;
