//! Mobility: how the population moves between its activities.
//!
//! Until the microscopic model lands, [`teleport`] is the mobility domain: every trip takes its free-flow
//! travel time on the road or footpath graph, as MATSim "teleports" modes it does not simulate. [`idm`]
//! holds the microscopic model's vehicle dynamics (IDM car following, MOBIL lane changes, vehicle classes),
//! validated on their own before vehicles run on the road graph.

pub mod idm;
pub mod teleport;
