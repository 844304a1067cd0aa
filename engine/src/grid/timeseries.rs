//! Quasi-static time series of a distribution grid: at every step each consumer's load comes from its
//! standard load profile ([`super::profiles`]), its rooftop PV from the clear-sky irradiance of the hour
//! ([`super::solar`]) times a cloud factor, its battery follows a dispatch rule, chargers draw what the
//! other domains ask of them, tripped branches are taken out, and the AC power flow is solved from the
//! previous step's voltages ([`super::powerflow::PowerFlow::solve_warm`]). The step's energies are summed
//! into [`SeriesTotals`], from which the grid's KPIs come.
//!
//! Battery dispatch rules (the two a planner compares, as in the self-consumption and peak-shaving
//! strategies of Weniger, Tjaden & Quaschning 2014, "Sizing of residential PV battery systems", Energy
//! Procedia 46):
//! - **self-consumption**: a PV surplus charges the battery, a deficit discharges it;
//! - **peak shaving**: the battery discharges what the consumer's draw exceeds a limit, and recharges from
//!   PV surplus only (batteries recharging from the grid all at once would make a coincident peak of
//!   their own).
//!
//! Energy bookkeeping (per step of length Δt): PV self-consumption = PV − export; grid import and export are
//! the slack's positive and negative power; energy not served is the load of consumers on de-energised
//! buses; customer-minutes count each interrupted supply point (a consumer) for the step's minutes.

use super::network::{BranchKind, InjectionKind, Network};
use super::powerflow::{PowerFlow, PowerFlowError, PowerFlowOptions, Solution, Unsupplied};
use super::profiles::BdewProfiles;
use super::solar::{clear_sky_ghi, cos_zenith, RooftopPv};
use serde::{Deserialize, Serialize};

/// Quarter hours in a day: the resolution of the standard load profiles.
const QUARTERS_PER_DAY: usize = 96;

/// How a battery is dispatched.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dispatch {
    /// Store PV surplus, cover deficits (see the module doc).
    SelfConsumption,
    /// Keep the consumer's grid draw at or under `limit_kw` where the battery can; recharge from PV surplus.
    PeakShaving {
        /// Draw limit (kW).
        limit_kw: f64,
    },
}

/// Energy storage: what a battery holds and how fast it can move energy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Storage {
    /// Usable capacity (kWh).
    pub capacity_kwh: f64,
    /// Largest charge or discharge power at the terminals (kW).
    pub power_kw: f64,
    /// Round-trip efficiency, split evenly between charging and discharging (√η each way).
    pub round_trip_efficiency: f64,
    /// Energy stored (kWh).
    pub soc_kwh: f64,
}

impl Storage {
    /// Moves up to `request_kw` (positive: charge, negative: discharge; at the terminals) for `dt_h` hours,
    /// within the power rating, the energy stored, and (charging) the room up to `fill_to_kwh`; updates the
    /// state of charge and returns the power moved (kW).
    pub fn exchange(&mut self, request_kw: f64, dt_h: f64, fill_to_kwh: f64) -> f64 {
        let eta = self.round_trip_efficiency.sqrt();
        let kw = if request_kw > 0.0 {
            request_kw.min(self.power_kw).min((fill_to_kwh - self.soc_kwh).max(0.0) / (eta * dt_h))
        } else if request_kw < 0.0 {
            -(-request_kw).min(self.power_kw).min(self.soc_kwh.max(0.0) * eta / dt_h)
        } else {
            0.0
        };
        let stored = if kw > 0.0 { kw * eta * dt_h } else { kw / eta * dt_h };
        self.soc_kwh = (self.soc_kwh + stored).clamp(0.0, self.capacity_kwh);
        kw
    }
}

/// A battery behind a consumer's meter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Battery {
    /// Its storage.
    pub storage: Storage,
    /// The dispatch rule.
    pub dispatch: Dispatch,
}

impl Battery {
    /// Grid draw (kW, positive = import) after the battery acts on a draw of `net_kw` for `dt_h` hours;
    /// updates the state of charge. It discharges what the draw exceeds the rule's target by, and charges
    /// from PV surplus only (a fleet of batteries recharging from the grid at once would make a new peak of
    /// its own).
    pub fn dispatch(&mut self, net_kw: f64, dt_h: f64) -> f64 {
        let target_kw = match self.dispatch {
            Dispatch::SelfConsumption => 0.0,
            Dispatch::PeakShaving { limit_kw } => limit_kw,
        };
        let request_kw = if net_kw > target_kw {
            -(net_kw - target_kw)
        } else if net_kw < 0.0 {
            -net_kw
        } else {
            0.0
        };
        let capacity = self.storage.capacity_kwh;
        net_kw + self.storage.exchange(request_kw, dt_h, capacity)
    }
}

/// A battery at a substation's LV busbar that shaves the peaks its transformer carries, both ways: it
/// discharges what the district's draw exceeds `limit_kw` by, absorbs what a PV back-feed exceeds it by,
/// and recharges from the grid while the draw is under `recharge_below_kw`, never lifting it over and only
/// up to `recharge_to_kwh` (the room above is kept for back-feed).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeederBattery {
    /// Its storage injection in the network (generator convention: negative while charging).
    pub injection: usize,
    /// The consumers its transformer supplies (indices into the series' consumers).
    pub members: Vec<usize>,
    /// Draw or back-feed (kW) beyond which it acts.
    pub limit_kw: f64,
    /// Draw (kW) under which it recharges from the grid.
    pub recharge_below_kw: f64,
    /// Energy (kWh) up to which it recharges from the grid.
    pub recharge_to_kwh: f64,
    /// Its storage.
    pub storage: Storage,
}

impl FeederBattery {
    /// The battery's power (kW, positive charging) for a district draw of `district_kw` (negative:
    /// back-feed) over `dt_h` hours; updates the state of charge.
    pub fn dispatch(&mut self, district_kw: f64, dt_h: f64) -> f64 {
        let capacity = self.storage.capacity_kwh;
        if district_kw > self.limit_kw {
            self.storage.exchange(-(district_kw - self.limit_kw), dt_h, capacity)
        } else if district_kw < -self.limit_kw {
            self.storage.exchange(-self.limit_kw - district_kw, dt_h, capacity)
        } else if district_kw < self.recharge_below_kw {
            self.storage.exchange(self.recharge_below_kw - district_kw, dt_h, self.recharge_to_kwh)
        } else {
            0.0
        }
    }
}

/// One consumer: a building, or a load of an imported network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Consumer {
    /// Its load injection in the network (overwritten at every step).
    pub injection: usize,
    /// Its standard load profile (`H0`, `G1`, …).
    pub profile: String,
    /// Annual consumption (kWh/a).
    pub annual_kwh: f64,
    /// Roof area covered by the PV programme (m²); 0 without PV.
    pub pv_roof_m2: f64,
    /// Its battery, if any.
    pub battery: Option<Battery>,
}

impl Consumer {
    /// Every in-service load of an imported network as a consumer of `annual_kwh` on `profile`, without PV
    /// or battery (for networks that come without consumption data, like the IEEE European LV feeder).
    pub fn from_loads(network: &Network, profile: &str, annual_kwh: f64) -> Vec<Consumer> {
        network
            .injections
            .iter()
            .enumerate()
            .filter(|(_, i)| i.kind == InjectionKind::Load && i.in_service)
            .map(|(injection, _)| Consumer {
                injection,
                profile: profile.into(),
                annual_kwh,
                pv_roof_m2: 0.0,
                battery: None,
            })
            .collect()
    }
}

/// A charging point whose power the other domains set at every step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Charger {
    /// Name (from the scenario).
    pub name: String,
    /// Its load injection in the network.
    pub injection: usize,
    /// Rated power (kW): the most it draws.
    pub rated_kw: f64,
}

/// What the other domains ask of the grid in a step.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepInputs<'a> {
    /// Power per charger (kW, clamped to its rating), in the series' charger order.
    pub charger_kw: &'a [f64],
    /// Extra load per consumer (kW), in consumer order (e.g. electric cars charging at home).
    pub consumer_extra_kw: &'a [f64],
    /// Branches out of service for outages (indices into the network's branches).
    pub tripped: &'a [usize],
}

/// When a step is, for profiles and the sun.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepTime {
    /// Year (for weekdays and seasons).
    pub year: i32,
    /// Day of the year at the step's start, 1 = 1 January.
    pub day_of_year: u32,
    /// Local clock time at the step's start (h, 0–24).
    pub local_hours: f64,
    /// Local time minus UTC (h).
    pub utc_offset_h: f64,
}

/// Settings of the time series, each with its source.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesParams {
    /// Latitude and longitude of the grid (degrees) for the sun.
    pub lat_lon_deg: (f64, f64),
    /// Share of the clear-sky irradiance that reaches the modules, per hour of the day or one value.
    pub cloud_factor: Vec<f64>,
    /// The PV modules.
    pub pv: RooftopPv,
    /// Power factor of loads and chargers (inductive).
    pub power_factor: f64,
    /// Emission factor of imported electricity (g CO₂ per kWh).
    pub co2_g_per_kwh: f64,
    /// Voltage band of EN 50160 (pu): ±10 % of nominal.
    pub voltage_band_pu: (f64, f64),
    /// Public holidays (month, day) that count as Sundays in the profiles.
    pub holidays: Vec<(u32, u32)>,
}

/// Sums over the steps so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SeriesTotals {
    /// Steps solved.
    pub steps: u64,
    /// Consumers' load (kWh), served or not.
    pub load_kwh: f64,
    /// Energy not served: load on de-energised buses (kWh).
    pub energy_not_served_kwh: f64,
    /// Supply points interrupted × minutes.
    pub customer_minutes_interrupted: f64,
    /// PV generation (kWh).
    pub pv_kwh: f64,
    /// PV used behind the meter (in the building or its battery): PV − export (kWh).
    pub pv_self_consumed_kwh: f64,
    /// Energy drawn by chargers (kWh).
    pub charger_kwh: f64,
    /// Energy into substation batteries (kWh, at their terminals).
    pub feeder_battery_charged_kwh: f64,
    /// Energy out of substation batteries (kWh).
    pub feeder_battery_discharged_kwh: f64,
    /// Extra load placed on consumers by other domains, e.g. home charging of electric cars (kWh; part of
    /// `load_kwh`).
    pub consumer_extra_kwh: f64,
    /// Import from the external grid (kWh).
    pub import_kwh: f64,
    /// Export to the external grid (kWh).
    pub export_kwh: f64,
    /// Losses in lines and transformers (kWh).
    pub losses_kwh: f64,
    /// Lowest voltage at an energised consumer bus (pu).
    pub min_voltage_pu: f64,
    /// Highest voltage at an energised consumer bus (pu).
    pub max_voltage_pu: f64,
    /// Consumer bus × steps outside the EN 50160 band.
    pub voltage_violation_bus_steps: u64,
    /// Highest transformer loading (%).
    pub peak_transformer_loading_percent: f64,
    /// Highest line loading (%).
    pub peak_line_loading_percent: f64,
    /// Highest import (kW).
    pub peak_import_kw: f64,
    /// Largest |generation − load − losses − shunts| of any step (kW): the solver's energy balance.
    pub max_balance_error_kw: f64,
    /// Newton–Raphson iterations, all steps together.
    pub iterations: u64,
}

/// What one step did.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// The power flow's solution.
    pub solution: Solution,
    /// Consumers without supply.
    pub consumers_interrupted: usize,
    /// Total consumer load this step (kW) and PV (kW).
    pub load_kw: f64,
    /// PV output (kW).
    pub pv_kw: f64,
    /// Import from the external grid (kW; negative: export).
    pub import_kw: f64,
}

/// A grid stepping through time.
pub struct GridSeries {
    /// The network; its load, PV and charger injections are rewritten at every step.
    pub network: Network,
    /// The consumers.
    pub consumers: Vec<Consumer>,
    /// The chargers.
    pub chargers: Vec<Charger>,
    /// Batteries at substations.
    pub feeder_batteries: Vec<FeederBattery>,
    /// Settings.
    pub params: SeriesParams,
    /// Sums so far.
    pub totals: SeriesTotals,
    /// Per consumer bus: steps outside the voltage band, and steps energised (for the 95 % test).
    pub bus_violations: Vec<(u64, u64)>,
    /// Unit year series per profile (kW per kWh/a, per quarter hour), computed on first use.
    unit_profiles: Vec<(String, i32, Vec<f64>)>,
    profiles: BdewProfiles,
    /// The power flow of the current topology, and the branches tripped when it was built.
    flow: Option<(Vec<usize>, PowerFlow)>,
    options: PowerFlowOptions,
    /// PV injection per consumer with PV (static generator), and the consumer's bus.
    pv_injection: Vec<Option<usize>>,
    in_service: Vec<bool>,
}

impl GridSeries {
    /// Prepares the series: adds a PV generator beside every consumer with a roof share. The consumers'
    /// and chargers' injections must be loads of `network`. Errs on a consumer whose profile the table lacks
    /// or whose injection the network lacks.
    pub fn new(
        mut network: Network,
        consumers: Vec<Consumer>,
        chargers: Vec<Charger>,
        profiles: BdewProfiles,
        params: SeriesParams,
    ) -> Result<GridSeries, String> {
        let names = profiles.names();
        for (k, c) in consumers.iter().enumerate() {
            if !names.contains(&c.profile.as_str()) {
                return Err(format!(
                    "consumer {k}: unknown load profile {:?}; the table has {}",
                    c.profile,
                    names.join(", ")
                ));
            }
            if c.injection >= network.injections.len() {
                return Err(format!("consumer {k}: the network has no injection {}", c.injection));
            }
        }
        if let Some(ch) = chargers.iter().find(|c| c.injection >= network.injections.len()) {
            return Err(format!("charger {}: the network has no injection {}", ch.name, ch.injection));
        }
        let pv_injection = consumers
            .iter()
            .map(|c| {
                (c.pv_roof_m2 > 0.0).then(|| {
                    let bus = network.injections[c.injection].bus;
                    network.injections.push(super::network::Injection {
                        kind: InjectionKind::StaticGen,
                        source_index: c.injection,
                        bus,
                        p_mw: 0.0,
                        q_mvar: 0.0,
                        in_service: true,
                    });
                    network.injections.len() - 1
                })
            })
            .collect();
        let in_service = network.branches.iter().map(|b| b.in_service).collect();
        let buses = network.buses.len();
        Ok(GridSeries {
            network,
            consumers,
            chargers,
            feeder_batteries: Vec::new(),
            params,
            totals: SeriesTotals { min_voltage_pu: f64::INFINITY, ..SeriesTotals::default() },
            bus_violations: vec![(0, 0); buses],
            unit_profiles: Vec::new(),
            profiles,
            flow: None,
            options: PowerFlowOptions { unsupplied: Unsupplied::Deenergise, ..PowerFlowOptions::default() },
            pv_injection,
            in_service,
        })
    }

    /// Mean load (kW per kWh/a) of `profile` over the quarter hours of [start, start + dt_h).
    fn unit_load(&mut self, profile: &str, time: &StepTime, dt_h: f64) -> f64 {
        let k = match self.unit_profiles.iter().position(|(p, y, _)| p == profile && *y == time.year) {
            Some(k) => k,
            None => {
                let series = self
                    .profiles
                    .year_kw(profile, time.year, 1.0, &self.params.holidays)
                    .expect("profiles are checked in GridSeries::new");
                self.unit_profiles.push((profile.to_string(), time.year, series));
                self.unit_profiles.len() - 1
            }
        };
        let series = &self.unit_profiles[k].2;
        let first = (time.day_of_year as usize - 1) * QUARTERS_PER_DAY + (time.local_hours * 4.0).floor() as usize;
        let quarters = ((dt_h * 4.0).round() as usize).max(1);
        (first..first + quarters).map(|q| series[q % series.len()]).sum::<f64>() / quarters as f64
    }

    /// Clear-sky irradiance × cloud factor (W/m²) at the middle of the step.
    fn irradiance(&self, time: &StepTime, dt_h: f64) -> f64 {
        let mid_local = time.local_hours + dt_h / 2.0;
        let (lat, lon) = self.params.lat_lon_deg;
        let ghi = clear_sky_ghi(cos_zenith(lat, lon, time.day_of_year, mid_local - time.utc_offset_h));
        let cf = &self.params.cloud_factor;
        let cloud = match cf.len() {
            0 => 1.0,
            1 => cf[0],
            n => cf[(mid_local.floor() as usize).min(n - 1)],
        };
        ghi * cloud
    }

    /// Runs one step of `dt_s` seconds at `time` with what the other domains ask of the grid.
    pub fn step(&mut self, time: &StepTime, dt_s: f64, inputs: &StepInputs) -> Result<StepReport, PowerFlowError> {
        let StepInputs { charger_kw, consumer_extra_kw, tripped } = *inputs;
        let dt_h = dt_s / 3600.0;
        let tan_phi = (1.0 / (self.params.power_factor * self.params.power_factor) - 1.0).sqrt();
        let ghi = self.irradiance(time, dt_h);
        let (mut load_kw, mut pv_kw, mut export_kw, mut extra_kw) = (0.0, 0.0, 0.0, 0.0);
        let mut consumer_load = Vec::with_capacity(self.consumers.len());
        let mut draws = Vec::with_capacity(self.consumers.len());
        // The step's load per kWh/a of each profile in use (a handful), then each consumer's.
        let mut unit: Vec<(String, f64)> = Vec::new();
        for c in 0..self.consumers.len() {
            if !unit.iter().any(|(p, _)| *p == self.consumers[c].profile) {
                let profile = self.consumers[c].profile.clone();
                let u = self.unit_load(&profile, time, dt_h);
                unit.push((profile, u));
            }
        }
        for c in 0..self.consumers.len() {
            let consumer = &mut self.consumers[c];
            let per_kwh = unit.iter().find(|(p, _)| *p == consumer.profile).map_or(0.0, |u| u.1);
            let extra = consumer_extra_kw.get(c).copied().unwrap_or(0.0).max(0.0);
            extra_kw += extra;
            let load = consumer.annual_kwh * per_kwh + extra;
            let pv = self.params.pv.output_kw(consumer.pv_roof_m2, ghi, 1.0);
            let draw = match &mut consumer.battery {
                Some(b) => b.dispatch(load - pv, dt_h),
                None => load - pv,
            };
            // The load keeps its power factor; PV and battery exchange active power only.
            let inj = &mut self.network.injections[consumer.injection];
            inj.p_mw = -(draw + pv) / 1000.0;
            inj.q_mvar = -load * tan_phi / 1000.0;
            if let Some(k) = self.pv_injection[c] {
                self.network.injections[k].p_mw = pv / 1000.0;
            }
            load_kw += load;
            pv_kw += pv;
            export_kw += (-draw).max(0.0);
            draws.push(draw);
            consumer_load.push((consumer.injection, load));
        }
        for f in &mut self.feeder_batteries {
            let district_kw: f64 = f.members.iter().map(|&c| draws[c]).sum();
            let kw = f.dispatch(district_kw, dt_h);
            self.network.injections[f.injection].p_mw = -kw / 1000.0;
            self.totals.feeder_battery_charged_kwh += kw.max(0.0) * dt_h;
            self.totals.feeder_battery_discharged_kwh += (-kw).max(0.0) * dt_h;
        }
        let mut charging_kw = 0.0;
        for (k, ch) in self.chargers.iter().enumerate() {
            let kw = charger_kw.get(k).copied().unwrap_or(0.0).clamp(0.0, ch.rated_kw);
            let inj = &mut self.network.injections[ch.injection];
            inj.p_mw = -kw / 1000.0;
            inj.q_mvar = -kw * tan_phi / 1000.0;
            charging_kw += kw;
        }
        // Topology: rebuild the power flow when the set of tripped branches changes.
        let mut tripped: Vec<usize> = tripped.to_vec();
        tripped.sort_unstable();
        tripped.dedup();
        if self.flow.as_ref().is_none_or(|(t, _)| *t != tripped) {
            for (b, on) in self.network.branches.iter_mut().zip(&self.in_service) {
                b.in_service = *on;
            }
            for &b in &tripped {
                if let Some(branch) = self.network.branches.get_mut(b) {
                    branch.in_service = false;
                }
            }
            let pf = PowerFlow::new(&self.network, self.options)?;
            self.flow = Some((tripped, pf));
        }
        let pf = &mut self.flow.as_mut().expect("built above").1;
        let solution = pf.solve_warm(&self.network)?;
        self.totals.consumer_extra_kwh += extra_kw * dt_h;
        self.account(&solution, &consumer_load, dt_h, load_kw, pv_kw, export_kw, charging_kw)
    }

    #[allow(clippy::too_many_arguments)]
    fn account(
        &mut self,
        solution: &Solution,
        consumer_load: &[(usize, f64)],
        dt_h: f64,
        load_kw: f64,
        pv_kw: f64,
        export_kw: f64,
        charging_kw: f64,
    ) -> Result<StepReport, PowerFlowError> {
        let net = &self.network;
        let t = &mut self.totals;
        t.steps += 1;
        t.iterations += solution.iterations as u64;
        t.load_kwh += load_kw * dt_h;
        t.pv_kwh += pv_kw * dt_h;
        t.pv_self_consumed_kwh += (pv_kw - export_kw).max(0.0) * dt_h;
        t.charger_kwh += charging_kw * dt_h;
        t.losses_kwh += solution.losses_mw * 1000.0 * dt_h;
        let mut interrupted = 0;
        for &(inj, load) in consumer_load {
            let bus = net.injections[inj].bus;
            if solution.energised[bus] {
                let v = solution.vm_pu[bus];
                t.min_voltage_pu = t.min_voltage_pu.min(v);
                t.max_voltage_pu = t.max_voltage_pu.max(v);
                let outside = v < self.params.voltage_band_pu.0 || v > self.params.voltage_band_pu.1;
                t.voltage_violation_bus_steps += outside as u64;
                let entry = &mut self.bus_violations[bus];
                entry.0 += outside as u64;
                entry.1 += 1;
            } else {
                interrupted += 1;
                t.energy_not_served_kwh += load * dt_h;
                t.customer_minutes_interrupted += dt_h * 60.0;
            }
        }
        // Import: what the slacks inject; the energy balance of the step from the same solution.
        let mut import_kw = 0.0;
        let mut specified_kw = 0.0;
        for inj in net.injections.iter().filter(|i| i.in_service && solution.energised[i.bus]) {
            match inj.kind {
                InjectionKind::ExternalGrid => {}
                _ => specified_kw += inj.p_mw * 1000.0,
            }
        }
        let mut slack_buses: Vec<usize> = net
            .injections
            .iter()
            .filter(|i| i.in_service && i.kind == InjectionKind::ExternalGrid)
            .map(|i| i.bus)
            .chain(net.controls.iter().filter(|c| c.in_service && c.slack).map(|c| c.bus))
            .collect();
        slack_buses.sort_unstable();
        slack_buses.dedup();
        for &b in &slack_buses {
            if solution.energised[b] {
                // The slack bus's net injection, less whatever specified injections sit on it.
                let at_bus: f64 = net
                    .injections
                    .iter()
                    .filter(|i| i.in_service && i.bus == b && i.kind != InjectionKind::ExternalGrid)
                    .map(|i| i.p_mw * 1000.0)
                    .sum();
                import_kw += solution.p_mw[b] * 1000.0 - at_bus;
            }
        }
        let shunt_kw: f64 = net
            .shunts
            .iter()
            .filter(|s| s.in_service && solution.energised[s.bus])
            .map(|s| s.p_mw * 1000.0 * solution.vm_pu[s.bus].powi(2))
            .sum();
        let balance = import_kw + specified_kw - solution.losses_mw * 1000.0 - shunt_kw;
        t.max_balance_error_kw = t.max_balance_error_kw.max(balance.abs());
        t.import_kwh += import_kw.max(0.0) * dt_h;
        t.export_kwh += (-import_kw).max(0.0) * dt_h;
        t.peak_import_kw = t.peak_import_kw.max(import_kw);
        for (k, b) in net.branches.iter().enumerate() {
            let l = solution.loading_percent[k];
            if l.is_finite() {
                match b.kind {
                    BranchKind::Transformer => {
                        t.peak_transformer_loading_percent = t.peak_transformer_loading_percent.max(l)
                    }
                    BranchKind::Line => t.peak_line_loading_percent = t.peak_line_loading_percent.max(l),
                }
            }
        }
        Ok(StepReport { solution: solution.clone(), consumers_interrupted: interrupted, load_kw, pv_kw, import_kw })
    }

    /// Consumer buses whose voltage was outside the band in more than 5 % of their energised steps (EN 50160
    /// asks 95 % of the 10-minute means within ±10 %).
    pub fn buses_failing_en50160(&self) -> usize {
        self.bus_violations.iter().filter(|(out, of)| *of > 0 && *out as f64 > 0.05 * *of as f64).count()
    }

    /// CO₂ of the imported energy so far (kg).
    pub fn co2_kg(&self) -> f64 {
        self.totals.import_kwh * self.params.co2_g_per_kwh / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn params() -> SeriesParams {
        SeriesParams {
            lat_lon_deg: (48.0, 11.0),
            cloud_factor: vec![1.0],
            pv: RooftopPv::default(),
            power_factor: 0.95,
            co2_g_per_kwh: 400.0,
            voltage_band_pu: (0.9, 1.1),
            holidays: Vec::new(),
        }
    }

    /// The IEEE European LV feeder, every load a household of `annual_kwh` on H0.
    fn feeder(annual_kwh: f64, pv_roof_m2: f64, battery: Option<Battery>) -> GridSeries {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/grid/ieee-european-lv.pandapower.json");
        let net = crate::grid::read_case(&path).unwrap();
        let consumers = Consumer::from_loads(&net, "H0", annual_kwh)
            .into_iter()
            .map(|c| Consumer { pv_roof_m2, battery: battery.clone(), ..c })
            .collect();
        GridSeries::new(net, consumers, Vec::new(), BdewProfiles::shipped(), params()).unwrap()
    }

    fn day(series: &mut GridSeries, day_of_year: u32, dt_s: f64) {
        let steps = (86_400.0 / dt_s) as usize;
        for s in 0..steps {
            let time = StepTime { year: 2026, day_of_year, local_hours: s as f64 * dt_s / 3600.0, utc_offset_h: 1.0 };
            series.step(&time, dt_s, &StepInputs::default()).unwrap();
        }
    }

    #[test]
    fn a_day_balances_and_meets_the_profile_energy() {
        let mut s = feeder(3500.0, 0.0, None);
        day(&mut s, 15, 900.0);
        let t = &s.totals;
        // A January Thursday of an H0 household of 3 500 kWh/a is near 1/365 of the year, dynamised up.
        let per_household = t.load_kwh / s.consumers.len() as f64;
        assert!((8.0..14.0).contains(&per_household), "{per_household} kWh per household");
        // Import covers load and losses; every step balances to the solver's tolerance.
        assert!((t.import_kwh - t.load_kwh - t.losses_kwh).abs() < 1e-6 * t.load_kwh);
        assert!(t.max_balance_error_kw < 1e-3, "balance error {} kW", t.max_balance_error_kw);
        assert_eq!(t.energy_not_served_kwh, 0.0);
        assert!(t.min_voltage_pu > 0.9 && t.min_voltage_pu < 1.05);
    }

    #[test]
    fn pv_in_june_exports_at_noon_and_batteries_keep_it_home() {
        let mut pv_only = feeder(3500.0, 40.0, None);
        day(&mut pv_only, 172, 900.0);
        let battery = Battery {
            storage: Storage { capacity_kwh: 5.0, power_kw: 2.5, round_trip_efficiency: 0.85, soc_kwh: 0.0 },
            dispatch: Dispatch::SelfConsumption,
        };
        let mut with_battery = feeder(3500.0, 40.0, Some(battery));
        day(&mut with_battery, 172, 900.0);
        let (a, b) = (&pv_only.totals, &with_battery.totals);
        assert!(a.pv_kwh > 0.0 && a.export_kwh > 0.0, "a sunny June day exports");
        assert!((a.pv_kwh - b.pv_kwh).abs() < 1e-9, "the same sun");
        assert!(b.pv_self_consumed_kwh > a.pv_self_consumed_kwh, "the battery keeps PV at home");
        assert!(b.import_kwh < a.import_kwh);
        assert!(b.max_balance_error_kw < 1e-3);
    }

    #[test]
    fn peak_shaving_keeps_the_draw_under_its_limit() {
        let mut b = Battery {
            storage: Storage { capacity_kwh: 10.0, power_kw: 3.0, round_trip_efficiency: 0.81, soc_kwh: 10.0 },
            dispatch: Dispatch::PeakShaving { limit_kw: 2.0 },
        };
        assert!((b.dispatch(4.0, 1.0) - 2.0).abs() < 1e-12, "2 kW shaved");
        assert!((b.storage.soc_kwh - (10.0 - 2.0 / 0.9)).abs() < 1e-12, "losses on the way out");
        let soc = b.storage.soc_kwh;
        assert_eq!(b.dispatch(1.0, 1.0), 1.0, "under the limit: no grid recharging");
        assert_eq!(b.storage.soc_kwh, soc);
        assert!(b.dispatch(-1.0, 1.0).abs() < 1e-12, "PV surplus recharges it");
        assert!((b.storage.soc_kwh - (soc + 0.9)).abs() < 1e-12, "losses on the way in");
        let mut empty = Battery { storage: Storage { soc_kwh: 0.0, ..b.storage.clone() }, ..b };
        assert_eq!(empty.dispatch(4.0, 1.0), 4.0, "an empty battery shaves nothing");
    }

    #[test]
    fn a_substation_battery_shaves_draw_and_back_feed_and_refills_to_its_target() {
        let storage = Storage { capacity_kwh: 100.0, power_kw: 50.0, round_trip_efficiency: 0.81, soc_kwh: 40.0 };
        let mut f = FeederBattery {
            injection: 0,
            members: Vec::new(),
            limit_kw: 100.0,
            recharge_below_kw: 60.0,
            recharge_to_kwh: 50.0,
            storage,
        };
        assert!((f.dispatch(130.0, 1.0) + 30.0).abs() < 1e-12, "30 kW over the limit discharged");
        assert!((f.storage.soc_kwh - (40.0 - 30.0 / 0.9)).abs() < 1e-9);
        let soc = f.storage.soc_kwh;
        assert!((f.dispatch(-120.0, 1.0) - 20.0).abs() < 1e-12, "20 kW of back-feed over the limit absorbed");
        assert!((f.storage.soc_kwh - (soc + 18.0)).abs() < 1e-9);
        assert_eq!(f.dispatch(80.0, 1.0), 0.0, "between the thresholds: idle");
        // Under the recharge threshold it refills from the grid, only up to its target.
        let kw = f.dispatch(10.0, 1.0);
        assert!(kw > 0.0 && (f.storage.soc_kwh - 50.0).abs() < 1e-9, "{kw} kW, soc {}", f.storage.soc_kwh);
        assert_eq!(f.dispatch(10.0, 1.0), 0.0, "at its target: no more grid charging");
    }

    #[test]
    fn an_unknown_profile_is_refused_by_name() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/grid/ieee-european-lv.pandapower.json");
        let net = crate::grid::read_case(&path).unwrap();
        let consumers = Consumer::from_loads(&net, "H1", 3500.0);
        let err = GridSeries::new(net, consumers, Vec::new(), BdewProfiles::shipped(), params()).err().unwrap();
        assert!(err.contains("\"H1\"") && err.contains("H0"), "{err}");
    }

    #[test]
    fn a_tripped_transformer_leaves_its_feeder_unserved() {
        let mut s = feeder(3500.0, 0.0, None);
        let trafo = s.network.branches.iter().position(|b| b.kind == BranchKind::Transformer).unwrap();
        let time = StepTime { year: 2026, day_of_year: 15, local_hours: 18.0, utc_offset_h: 1.0 };
        let report = s.step(&time, 900.0, &StepInputs { tripped: &[trafo], ..StepInputs::default() }).unwrap();
        assert_eq!(report.consumers_interrupted, s.consumers.len());
        assert!((s.totals.energy_not_served_kwh - report.load_kw * 0.25).abs() < 1e-9);
        assert!((s.totals.customer_minutes_interrupted - 15.0 * s.consumers.len() as f64).abs() < 1e-9);
        // Restored: the next step is supplied again.
        let later = StepTime { local_hours: 18.25, ..time };
        assert_eq!(s.step(&later, 900.0, &StepInputs::default()).unwrap().consumers_interrupted, 0);
    }
}
