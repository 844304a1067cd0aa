//! The delivery-robot domain: parcel orders ([`orders`]), the fleet's day ([`fleet`]: depots, batteries,
//! dispatch rounds, deliveries, charging) with the robots walking in the sidewalk crowd ([`crate::crowd`]),
//! the domain in the World ([`plugin`]: `[robots]`, KPIs),
//! and the dispatcher: capacitated vehicle routing ([`dispatch`]) on instances in the CVRPLIB format
//! ([`vrp`]), which `machi dispatch` solves so it can be measured against OR-Tools
//! (`benches/peers/ortools_cvrp.py`).

pub mod dispatch;
pub mod fleet;
pub mod orders;
pub mod plugin;
pub mod vrp;
