//! The delivery-robot domain. So far its dispatcher: capacitated vehicle routing ([`dispatch`]) on
//! instances in the CVRPLIB format ([`vrp`]), which `machi dispatch` solves so the dispatcher can be measured
//! against OR-Tools (`benches/peers/ortools_cvrp.py`). The fleet, its motion and charging come next.

pub mod dispatch;
pub mod vrp;
