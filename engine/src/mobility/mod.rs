//! Mobility: how the population moves between its activities.
//!
//! [`teleport`] is the free-flow trip model: every trip takes its free-flow travel time on the road or
//! footpath graph, as MATSim "teleports" modes it does not simulate. [`micro`] is the microscopic model:
//! vehicles following each other on the lanes of the road graph ([`idm`]: IDM car following, MOBIL lane
//! changes, vehicle classes) through junctions controlled by signals and priority rules ([`junctions`]).
//! [`meso`] is the mesoscopic queue model for whole regions: every link a queue with a free-flow time, a
//! flow capacity and a storage capacity. Both are [`vehicles::VehicleModel`]s; [`traffic`] runs either as
//! the mobility domain. Beside the population's trips, vehicles can come from an origin–destination matrix
//! ([`od`]) or be listed one by one with their routes ([`routes`]). Scheduled buses ([`transit`]) carry the
//! persons without a car ([`riders`]).

pub mod idm;
pub mod junctions;
pub mod meso;
pub mod micro;
pub mod od;
pub mod rerouting;
pub mod riders;
pub mod routes;
pub mod teleport;
pub mod traffic;
pub mod transit;
pub mod vehicles;
