//! Observers: turn the World's state into outputs without changing it. Time series and KPIs are resources
//! of the core ([`crate::sim::TimeSeries`], [`crate::sim::Kpis`]) filled by each domain's observer systems;
//! [`replay`] streams the static city, the population and agent frames into the replay container.

pub mod replay;
