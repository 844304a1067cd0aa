//! The grid domain in the World: the `[grid]` scenario section, the city's synthesised distribution grid
//! stepping through the day ([`super::timeseries::GridSeries`]), substation outages, and the grid's time
//! series and KPIs.
//!
//! Every building with demand is a consumer: its annual consumption is its floor area times a specific
//! consumption by use ([`ConsumptionParams`]), spread over the day by the BDEW profile of its use. A share
//! of the buildings (drawn from the seed) gets rooftop PV on its footprint, and a share of those a battery
//! sized to the PV. Chargers (scenario sites) draw what the other domains write into [`ChargerDemand`];
//! electric cars arriving home start charging sessions there ([`GridState::ev_arrived`], called by the
//! coupling), each drawing up to `[grid.ev] charger_kw` until its energy is in; a charger without supply
//! waits.
//!
//! Outages: every substation site (MV/LV substations and the primary substation) has a flood depth written
//! into [`GridState::site_depth_m`] by the coupling (`crate::coupling`). Water above `flood_trip_depth_m`
//! trips the site (its transformer, or for the primary every branch leaving it); once the water is back
//! under the threshold the site returns to service after `repair_delay`.

use super::network::{Injection, InjectionKind};
use super::profiles::{day_of_year, month_lengths, BdewProfiles};
use super::solar::RooftopPv;
use super::synthesis::{synthesise, SiteKind, SynthesisParams, SynthesisedGrid};
use super::timeseries::{
    Battery, Charger, Consumer, Dispatch, GridSeries, SeriesParams, StepInputs, StepReport, StepTime, Storage,
};
use crate::city::City;
use crate::error::{InputError, InputResult};
use crate::import::tags::BuildingUse;
use crate::rng::{stream, Purpose};
use crate::scenario::check::{self, CheckError};
use crate::scenario::duration_ms;
use crate::sim::{register_domain, DomainTick, Finalize, Kpis, Observe, SimClock, TimeSeries};
use bevy_app::{App, Plugin};
use bevy_ecs::prelude::*;
use glam::Vec2;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The domain's name: schedule label and KPI section.
pub const DOMAIN: &str = "grid";

/// Annual electricity consumption per m² of floor area by building use, and the BDEW profile of each use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumptionParams {
    /// Dwellings (kWh/m²·a): 30, i.e. 2 700 kWh/a for 90 m², the consumption of a two- to three-person
    /// household without electric heating or hot water (BDEW, "Stromverbrauch im Haushalt", 2021: 2 500–
    /// 3 500 kWh/a). Profile H0.
    pub residential_kwh_per_m2: f64,
    /// Offices, education, health, public buildings (kWh/m²·a): 50, the order of the German benchmark for
    /// office electricity (BMWi/BMUB, "Vergleichswerte für den Energieverbrauch von Nichtwohngebäuden",
    /// 2015). Profile G1 (weekdays 8–18 h).
    pub commercial_kwh_per_m2: f64,
    /// Shops (kWh/m²·a): 100 (same source: retail lighting and refrigeration). Profile G4.
    pub retail_kwh_per_m2: f64,
    /// Hospitality (kWh/m²·a): 100, as retail. Profile G2 (evening business).
    pub hospitality_kwh_per_m2: f64,
    /// Industry (kWh/m²·a): 40. Profile G3 (continuous business).
    pub industrial_kwh_per_m2: f64,
    /// Parking and anything else (kWh/m²·a): 10 (lighting, ventilation). Profile G0.
    pub other_kwh_per_m2: f64,
}

impl Default for ConsumptionParams {
    fn default() -> Self {
        ConsumptionParams {
            residential_kwh_per_m2: 30.0,
            commercial_kwh_per_m2: 50.0,
            retail_kwh_per_m2: 100.0,
            hospitality_kwh_per_m2: 100.0,
            industrial_kwh_per_m2: 40.0,
            other_kwh_per_m2: 10.0,
        }
    }
}

impl ConsumptionParams {
    /// Annual consumption (kWh/m²·a) and BDEW profile of a use.
    pub fn of(&self, building_use: BuildingUse) -> (f64, &'static str) {
        match building_use {
            BuildingUse::Residential => (self.residential_kwh_per_m2, "H0"),
            BuildingUse::Office | BuildingUse::Education | BuildingUse::Health | BuildingUse::Public => {
                (self.commercial_kwh_per_m2, "G1")
            }
            BuildingUse::Retail => (self.retail_kwh_per_m2, "G4"),
            BuildingUse::Hospitality => (self.hospitality_kwh_per_m2, "G2"),
            BuildingUse::Industrial => (self.industrial_kwh_per_m2, "G3"),
            BuildingUse::Parking | BuildingUse::Other | BuildingUse::Unknown => (self.other_kwh_per_m2, "G0"),
        }
    }

    fn validate(&self) -> Result<(), CheckError> {
        for (k, v) in [
            ("residential_kwh_per_m2", self.residential_kwh_per_m2),
            ("commercial_kwh_per_m2", self.commercial_kwh_per_m2),
            ("retail_kwh_per_m2", self.retail_kwh_per_m2),
            ("hospitality_kwh_per_m2", self.hospitality_kwh_per_m2),
            ("industrial_kwh_per_m2", self.industrial_kwh_per_m2),
            ("other_kwh_per_m2", self.other_kwh_per_m2),
        ] {
            check::non_negative(&format!("consumption.{k}"), v)?;
        }
        Ok(())
    }
}

/// How batteries are dispatched (scenario spelling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchRule {
    /// See [`Dispatch::SelfConsumption`].
    SelfConsumption,
    /// See [`Dispatch::PeakShaving`]; the limit is `peak_shaving_share` of the building's profile peak.
    PeakShaving,
}

/// `[grid.battery]`: home batteries beside rooftop PV.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatteryParams {
    /// Share of the buildings with PV that also get a battery: 0.
    pub share: f64,
    /// Usable capacity per kWp of PV (kWh/kWp): 1.0, the economic sizing rule for home storage found by
    /// Weniger, Tjaden & Quaschning (2014, Energy Procedia 46).
    pub kwh_per_kwp: f64,
    /// Power per kWh of capacity (kW/kWh): 0.5, a typical home battery's continuous rating (C/2).
    pub kw_per_kwh: f64,
    /// Round-trip efficiency: 0.85, as NREL's Annual Technology Baseline (2023) takes for lithium-ion
    /// battery storage.
    pub round_trip_efficiency: f64,
    /// Dispatch rule.
    pub dispatch: DispatchRule,
    /// Peak shaving keeps the draw under this share of the building's highest quarter-hour load of the
    /// year (its annual consumption on its profile): 0.5.
    pub peak_shaving_share: f64,
}

impl Default for BatteryParams {
    fn default() -> Self {
        BatteryParams {
            share: 0.0,
            kwh_per_kwp: 1.0,
            kw_per_kwh: 0.5,
            round_trip_efficiency: 0.85,
            dispatch: DispatchRule::SelfConsumption,
            peak_shaving_share: 0.5,
        }
    }
}

/// `[grid.ev]`: electric cars charging at home after their trips.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvParams {
    /// Share of the persons who drive whose car is electric (drawn from the seed): 0.
    pub share: f64,
    /// Energy per km driven (kWh/km): 0.18, the real-world consumption of current compact battery-electric
    /// cars (ADAC Ecotest: about 15–20 kWh per 100 km).
    pub kwh_per_km: f64,
    /// Home charger power (kW): 11, the three-phase 16 A wallbox that is the usual home installation in
    /// Europe.
    pub charger_kw: f64,
}

impl Default for EvParams {
    fn default() -> Self {
        EvParams { share: 0.0, kwh_per_km: 0.18, charger_kw: 11.0 }
    }
}

/// `[grid.substation_battery]`: community batteries at the substations' LV busbars, shaving the peaks each
/// transformer carries (draw and PV back-feed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubstationBatteryParams {
    /// Share of the substations that get one (drawn from the seed): 0.
    pub share: f64,
    /// Capacity per kVA of transformer rating (kWh/kVA): 0.5, i.e. 315 kWh at a 630 kVA substation (the
    /// order of the community batteries German and British DSOs trial at secondary substations).
    pub kwh_per_kva: f64,
    /// Power per kWh of capacity (kW/kWh): 0.5 (C/2).
    pub kw_per_kwh: f64,
    /// Round-trip efficiency: 0.85 (NREL Annual Technology Baseline 2023, lithium-ion).
    pub round_trip_efficiency: f64,
    /// Act while the district's draw or back-feed exceeds this share of the transformer's rating: 0.4.
    pub limit_share: f64,
    /// Recharge from the grid while the draw is under this share of the rating: 0.25.
    pub recharge_below_share: f64,
    /// Recharge from the grid only up to this share of the capacity, keeping the rest free to absorb PV
    /// back-feed: 0.5.
    pub recharge_to_share: f64,
}

impl Default for SubstationBatteryParams {
    fn default() -> Self {
        SubstationBatteryParams {
            share: 0.0,
            kwh_per_kva: 0.5,
            kw_per_kwh: 0.5,
            round_trip_efficiency: 0.85,
            limit_share: 0.4,
            recharge_below_share: 0.25,
            recharge_to_share: 0.5,
        }
    }
}

/// A charging site (`[[grid.chargers]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargerSite {
    /// Name, used in KPIs.
    pub name: String,
    /// Position in the local frame, metres east of the city origin.
    pub x_m: f32,
    /// Metres north of the city origin.
    pub y_m: f32,
    /// Rated power (kW).
    pub power_kw: f64,
}

/// `[grid]`: the electricity grid domain. Present = the domain runs on the city's synthesised grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GridSection {
    /// Step between power flows, e.g. `"15min"` (the profiles' resolution).
    pub step: String,
    /// Calendar date of the first simulated day (`YYYY-MM-DD`): weekday and season of the profiles, the
    /// sun's path. Default `2026-06-17`, a Wednesday in June.
    pub date: String,
    /// Local time minus UTC (h), for the sun: e.g. 2 for central European summer time.
    pub utc_offset_h: f64,
    /// Rules of the grid synthesis.
    pub synthesis: SynthesisParams,
    /// Consumption by use.
    pub consumption: ConsumptionParams,
    /// Share of the buildings with demand that get rooftop PV (drawn from the seed): 0.
    pub pv_share: f64,
    /// The PV modules.
    pub pv: RooftopPv,
    /// Share of clear-sky irradiance reaching the modules: one value, or 24 (one per hour of the day).
    pub cloud_factor: Vec<f64>,
    /// Home batteries.
    pub battery: BatteryParams,
    /// Emission factor of the electricity imported at the primary substation (g CO₂e/kWh): 251, the EU-27
    /// generation mix of 2022 (European Environment Agency indicator "Greenhouse gas emission intensity of
    /// electricity generation"); set your supplier's.
    pub co2_g_per_kwh: f64,
    /// Water above the ground at a substation site that trips it (m): 0.3, an assumption for the lowest
    /// live parts of compact secondary substations; set the network's own.
    pub flood_trip_depth_m: f64,
    /// Time from the water falling under the trip depth to the site's return to service, e.g. `"4h"`
    /// (inspection, drying, switching; an assumption to set per operator).
    pub repair_delay: String,
    /// Charging sites whose load the other domains drive.
    pub chargers: Vec<ChargerSite>,
    /// Electric cars charging at home.
    pub ev: EvParams,
    /// Community batteries at substations.
    pub substation_battery: SubstationBatteryParams,
}

impl Default for GridSection {
    fn default() -> Self {
        GridSection {
            step: "15min".into(),
            date: "2026-06-17".into(),
            utc_offset_h: 0.0,
            synthesis: SynthesisParams::default(),
            consumption: ConsumptionParams::default(),
            pv_share: 0.0,
            pv: RooftopPv::default(),
            cloud_factor: vec![1.0],
            battery: BatteryParams::default(),
            co2_g_per_kwh: 251.0,
            flood_trip_depth_m: 0.3,
            repair_delay: "4h".into(),
            chargers: Vec::new(),
            ev: EvParams::default(),
            substation_battery: SubstationBatteryParams::default(),
        }
    }
}

impl GridSection {
    /// Checks every value; errors name the key (relative to `[grid]`).
    pub fn validate(&self) -> Result<(), CheckError> {
        match duration_ms(&self.step) {
            Ok(0) | Err(_) => return Err(("step".into(), format!("{:?} is not a duration above zero", self.step))),
            Ok(_) => {}
        }
        duration_ms(&self.repair_delay).map_err(|e| ("repair_delay".to_string(), e))?;
        parse_date(&self.date).map_err(|e| ("date".to_string(), e))?;
        if !(-12.0..=14.0).contains(&self.utc_offset_h) {
            return Err(("utc_offset_h".into(), format!("{} h is not a UTC offset", self.utc_offset_h)));
        }
        self.consumption.validate()?;
        check::share("pv_share", self.pv_share)?;
        check::share("pv.roof_share", self.pv.roof_share)?;
        check::share("pv.module_efficiency", self.pv.module_efficiency)?;
        check::share("pv.performance_ratio", self.pv.performance_ratio)?;
        if self.cloud_factor.len() != 1 && self.cloud_factor.len() != 24 {
            return Err((
                "cloud_factor".into(),
                format!("{} values: give one, or 24 (one per hour)", self.cloud_factor.len()),
            ));
        }
        for v in &self.cloud_factor {
            check::share("cloud_factor", *v)?;
        }
        let b = &self.battery;
        check::share("battery.share", b.share)?;
        check::non_negative("battery.kwh_per_kwp", b.kwh_per_kwp)?;
        check::positive("battery.kw_per_kwh", b.kw_per_kwh)?;
        check::positive("battery.round_trip_efficiency", b.round_trip_efficiency)?;
        check::share("battery.round_trip_efficiency", b.round_trip_efficiency)?;
        check::share("battery.peak_shaving_share", b.peak_shaving_share)?;
        check::non_negative("co2_g_per_kwh", self.co2_g_per_kwh)?;
        check::positive("flood_trip_depth_m", self.flood_trip_depth_m)?;
        check::share("ev.share", self.ev.share)?;
        let sb = &self.substation_battery;
        check::share("substation_battery.share", sb.share)?;
        check::positive("substation_battery.kwh_per_kva", sb.kwh_per_kva)?;
        check::positive("substation_battery.kw_per_kwh", sb.kw_per_kwh)?;
        check::positive("substation_battery.round_trip_efficiency", sb.round_trip_efficiency)?;
        check::share("substation_battery.round_trip_efficiency", sb.round_trip_efficiency)?;
        check::share("substation_battery.limit_share", sb.limit_share)?;
        check::share("substation_battery.recharge_below_share", sb.recharge_below_share)?;
        check::share("substation_battery.recharge_to_share", sb.recharge_to_share)?;
        if sb.recharge_below_share > sb.limit_share {
            return Err((
                "substation_battery.recharge_below_share".into(),
                "must not exceed limit_share (the battery would recharge into its own peak)".into(),
            ));
        }
        check::positive("ev.kwh_per_km", self.ev.kwh_per_km)?;
        check::positive("ev.charger_kw", self.ev.charger_kw)?;
        for (k, c) in self.chargers.iter().enumerate() {
            check::positive(&format!("chargers[{k}].power_kw"), c.power_kw)?;
            if !(c.x_m.is_finite() && c.y_m.is_finite()) {
                return Err((format!("chargers[{k}]"), "x_m and y_m must be numbers".into()));
            }
        }
        Ok(())
    }
}

/// `YYYY-MM-DD` → (year, day of the year from 1).
fn parse_date(text: &str) -> Result<(i32, u32), String> {
    let bad = || format!("{text:?} is not a date YYYY-MM-DD");
    let parts: Vec<&str> = text.split('-').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let year: i32 = parts[0].parse().map_err(|_| bad())?;
    let month: u32 = parts[1].parse().map_err(|_| bad())?;
    let day: u32 = parts[2].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&month) || day == 0 || day > month_lengths(year)[month as usize - 1] {
        return Err(bad());
    }
    Ok((year, day_of_year(year, month, day) as u32 + 1))
}

/// A site that can flood: a substation and the branches that go out of service when it trips.
#[derive(Clone, Debug, Serialize)]
pub struct Site {
    /// Name (`primary`, `substation 12`).
    pub name: String,
    /// Position (local frame, m).
    pub pos: Vec2,
    /// Branches it takes out when tripped.
    pub branches: Vec<usize>,
    /// Supply points (consumers) it feeds.
    pub consumers: usize,
}

/// Where a site is in its outage cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub enum SiteState {
    /// Supplying.
    #[default]
    InService,
    /// Tripped by water above the threshold.
    Flooded,
    /// The water has gone; back in service at this time (ms since the start).
    Repairing {
        /// Return to service (ms since the run's start).
        until_ms: u64,
    },
}

impl SiteState {
    /// The state after a grid step at `now_ms` with the site `wet` (water above the trip depth) or not.
    pub fn next(self, wet: bool, now_ms: u64, repair_ms: u64) -> SiteState {
        match (self, wet) {
            (_, true) => SiteState::Flooded,
            (SiteState::Flooded, false) => SiteState::Repairing { until_ms: now_ms + repair_ms },
            (SiteState::Repairing { until_ms }, false) if now_ms >= until_ms => SiteState::InService,
            (s, false) => s,
        }
    }
}

/// Charging power per charger (kW), in `GridSection::chargers` order, written by the domains whose
/// vehicles and robots charge there.
#[derive(Resource, Clone, Debug, Default)]
pub struct ChargerDemand(pub Vec<f64>);

/// The grid domain's state.
#[derive(Resource)]
pub struct GridState {
    /// Settings.
    pub settings: GridSection,
    /// The synthesised grid (geometry for the replay and the sites).
    pub grid: SynthesisedGrid,
    /// The time series.
    pub series: GridSeries,
    /// The sites that can flood.
    pub sites: Vec<Site>,
    /// Water above the ground at each site (m), written by the coupling.
    pub site_depth_m: Vec<f64>,
    /// Each site's outage state.
    pub site_state: Vec<SiteState>,
    /// Sites ever tripped.
    pub sites_tripped: usize,
    /// The last step's report.
    pub last: Option<StepReport>,
    /// The last step's start (ms since the run's start), for the replay.
    pub last_step_ms: Option<u64>,
    /// Why the power flow failed, if it did (the run continues with the grid stopped).
    pub failure: Option<String>,
    /// Consumer of each building (index into the series' consumers), if it has demand.
    pub consumer_of_building: Vec<Option<usize>>,
    /// Electric cars charging: (consumer, energy still to charge kWh), in arrival order.
    pub ev_sessions: Vec<(usize, f64)>,
    /// Electric-car arrivals home that asked for a charge.
    pub ev_arrivals: u64,
    year: i32,
    first_day: u32,
    repair_ms: u64,
}

impl GridState {
    /// Synthesises the city's grid and places consumers, PV, batteries and chargers. Errors name the
    /// scenario file.
    pub fn new(city: &City, settings: &GridSection, seed: u64, scenario: &Path) -> InputResult<GridState> {
        let err = |key: &str, m: String| InputError::new(scenario, format!("key grid.{key}"), m);
        let grid = synthesise(city, &settings.synthesis)
            .ok_or_else(|| err("synthesis", "the city has no streets or no building with demand".into()))?;
        let (year, first_day) = parse_date(&settings.date).map_err(|m| err("date", m))?;
        let repair_ms = duration_ms(&settings.repair_delay).map_err(|m| err("repair_delay", m))?;
        let mut network = grid.network.clone();
        let mut consumers = Vec::with_capacity(grid.load_building.len());
        // Highest quarter-hour load of the year per kWh/a, per profile (for peak-shaving limits).
        let profiles = BdewProfiles::shipped();
        let mut profile_peak: Vec<(&str, f64)> = Vec::new();
        for &(injection, b) in &grid.load_building {
            let building = &city.buildings[b];
            let (kwh_per_m2, profile) = settings.consumption.of(building.building_use);
            let mut rng = stream(seed, Purpose::GridAssets, b as u64, 0);
            let has_pv = rng.random::<f64>() < settings.pv_share;
            let has_battery = has_pv && rng.random::<f64>() < settings.battery.share;
            let pv_roof_m2 = if has_pv { building.footprint_m2 as f64 } else { 0.0 };
            let annual_kwh = kwh_per_m2 * building.floor_area_m2 as f64;
            let per_kwh_peak = match profile_peak.iter().find(|(p, _)| *p == profile) {
                Some(&(_, peak)) => peak,
                None => {
                    let series = profiles.year_kw(profile, year, 1.0, &[]).unwrap_or_default();
                    let peak = series.iter().copied().fold(0.0, f64::max);
                    profile_peak.push((profile, peak));
                    peak
                }
            };
            let battery = has_battery.then(|| {
                let b = &settings.battery;
                let capacity_kwh = settings.pv.peak_kw(pv_roof_m2) * b.kwh_per_kwp;
                let peak_kw = annual_kwh * per_kwh_peak;
                Battery {
                    storage: Storage {
                        capacity_kwh,
                        power_kw: capacity_kwh * b.kw_per_kwh,
                        round_trip_efficiency: b.round_trip_efficiency,
                        soc_kwh: capacity_kwh * INITIAL_SOC_SHARE,
                    },
                    dispatch: match b.dispatch {
                        DispatchRule::SelfConsumption => Dispatch::SelfConsumption,
                        DispatchRule::PeakShaving => Dispatch::PeakShaving { limit_kw: peak_kw * b.peak_shaving_share },
                    },
                }
            });
            consumers.push(Consumer { injection, profile: profile.into(), annual_kwh, pv_roof_m2, battery });
        }
        // Chargers: a load at the LV bus (building connection or LV junction) nearest each site.
        let mut chargers = Vec::new();
        for site in &settings.chargers {
            let at = Vec2::new(site.x_m, site.y_m);
            let bus = (0..network.buses.len())
                .filter(|&i| matches!(grid.bus_kind[i], SiteKind::Building | SiteKind::LvJunction))
                .min_by(|&a, &b| grid.bus_pos[a].distance(at).total_cmp(&grid.bus_pos[b].distance(at)))
                .ok_or_else(|| err("chargers", "the grid has no LV bus".into()))?;
            network.injections.push(Injection {
                kind: InjectionKind::Load,
                source_index: chargers.len(),
                bus,
                p_mw: 0.0,
                q_mvar: 0.0,
                in_service: true,
            });
            chargers.push(Charger {
                name: site.name.clone(),
                injection: network.injections.len() - 1,
                rated_kw: site.power_kw,
            });
        }
        let sites = flood_sites(&grid);
        let mut consumer_of_building = vec![None; city.buildings.len()];
        for (k, &(_, b)) in grid.load_building.iter().enumerate() {
            consumer_of_building[b] = Some(k);
        }
        let params = SeriesParams {
            lat_lon_deg: {
                let (lon, lat) = city.frame.origin_lon_lat();
                (lat, lon)
            },
            cloud_factor: settings.cloud_factor.clone(),
            pv: settings.pv.clone(),
            power_factor: settings.synthesis.power_factor,
            co2_g_per_kwh: settings.co2_g_per_kwh,
            voltage_band_pu: EN50160_BAND_PU,
            holidays: Vec::new(),
        };
        // Community batteries: a storage injection at the LV busbar of a seeded share of the substations.
        let mut feeder = Vec::new();
        let sb = &settings.substation_battery;
        for (d, &(lv_bus, trafo)) in grid.substations.iter().enumerate() {
            if stream(seed, Purpose::SubstationAssets, d as u64, 0).random::<f64>() >= sb.share {
                continue;
            }
            let kva = match grid.network.branches[trafo].rating {
                super::network::Rating::Transformer { sn_mva, .. } | super::network::Rating::Mva(sn_mva) => {
                    sn_mva * 1000.0
                }
                _ => continue,
            };
            let kw_rating = kva * settings.synthesis.power_factor;
            network.injections.push(Injection {
                kind: InjectionKind::Storage,
                source_index: d,
                bus: lv_bus,
                p_mw: 0.0,
                q_mvar: 0.0,
                in_service: true,
            });
            let members = grid
                .load_building
                .iter()
                .enumerate()
                .filter(|(_, (_, b))| grid.building_district[*b] == Some(d))
                .map(|(k, _)| k)
                .collect();
            let capacity_kwh = kva * sb.kwh_per_kva;
            feeder.push(super::timeseries::FeederBattery {
                injection: network.injections.len() - 1,
                members,
                limit_kw: sb.limit_share * kw_rating,
                recharge_below_kw: sb.recharge_below_share * kw_rating,
                recharge_to_kwh: sb.recharge_to_share * capacity_kwh,
                storage: Storage {
                    capacity_kwh,
                    power_kw: capacity_kwh * sb.kw_per_kwh,
                    round_trip_efficiency: sb.round_trip_efficiency,
                    soc_kwh: capacity_kwh * INITIAL_SOC_SHARE,
                },
            });
        }
        let mut series =
            GridSeries::new(network, consumers, chargers, profiles, params).map_err(|m| err("consumption", m))?;
        series.feeder_batteries = feeder;
        let n_sites = sites.len();
        Ok(GridState {
            settings: settings.clone(),
            grid,
            series,
            sites,
            site_depth_m: vec![0.0; n_sites],
            site_state: vec![SiteState::InService; n_sites],
            sites_tripped: 0,
            last: None,
            last_step_ms: None,
            failure: None,
            consumer_of_building,
            ev_sessions: Vec::new(),
            ev_arrivals: 0,
            year,
            first_day,
            repair_ms,
        })
    }

    /// Advances every site's outage state with the depths now, at `now_ms`.
    fn update_sites(&mut self, now_ms: u64) {
        let trip = self.settings.flood_trip_depth_m;
        for (k, state) in self.site_state.iter_mut().enumerate() {
            let next = state.next(self.site_depth_m[k] > trip, now_ms, self.repair_ms);
            if *state == SiteState::InService && next == SiteState::Flooded {
                self.sites_tripped += 1;
            }
            *state = next;
        }
    }

    /// An electric car arrived home at `building` needing `kwh`: a charging session starts there.
    pub fn ev_arrived(&mut self, building: usize, kwh: f64) {
        if let Some(Some(consumer)) = self.consumer_of_building.get(building) {
            self.ev_sessions.push((*consumer, kwh));
            self.ev_arrivals += 1;
        }
    }

    /// Whether charger `k` (in `GridSection::chargers` order) had supply at the last power flow: its bus
    /// energised. True before the first power flow and when the grid has stopped on a failed one.
    pub fn charger_supplied(&self, k: usize) -> bool {
        match (&self.last, self.failure.is_some(), self.series.chargers.get(k)) {
            (Some(report), false, Some(charger)) => {
                report.solution.energised[self.series.network.injections[charger.injection].bus]
            }
            _ => true,
        }
    }

    /// Home-charging power per consumer over the next `dt_h` hours (kW); takes the energy off the sessions
    /// and ends those that are full. Chargers at de-energised buses do not charge (their energy waits).
    fn ev_charging_kw(&mut self, dt_h: f64, energised: Option<&[bool]>) -> Vec<f64> {
        let mut kw = vec![0.0; self.series.consumers.len()];
        let charger = self.settings.ev.charger_kw;
        for (consumer, remaining) in &mut self.ev_sessions {
            let bus = self.series.network.injections[self.series.consumers[*consumer].injection].bus;
            if energised.is_some_and(|e| !e[bus]) {
                continue;
            }
            let p = charger.min(*remaining / dt_h);
            kw[*consumer] += p;
            *remaining -= p * dt_h;
        }
        self.ev_sessions.retain(|(_, r)| *r > 1e-9);
        kw
    }

    /// Branches out of service now.
    fn tripped_branches(&self) -> Vec<usize> {
        self.site_state
            .iter()
            .zip(&self.sites)
            .filter(|(s, _)| **s != SiteState::InService)
            .flat_map(|(_, site)| site.branches.iter().copied())
            .collect()
    }

    /// The calendar of the step starting at clock time `clock_ms` (ms after midnight of the first day).
    fn step_time(&self, clock_ms: u64) -> StepTime {
        let day = clock_ms / 86_400_000;
        let days_in_year = day_of_year(self.year, 12, 31) as u64 + 1;
        StepTime {
            year: self.year,
            day_of_year: ((self.first_day as u64 - 1 + day) % days_in_year) as u32 + 1,
            local_hours: (clock_ms % 86_400_000) as f64 / 3_600_000.0,
            utc_offset_h: self.settings.utc_offset_h,
        }
    }
}

/// State of charge every battery starts the run with, as a share of its capacity: half full (an
/// assumption; a run starting at midnight knows nothing of the day before).
pub const INITIAL_SOC_SHARE: f64 = 0.5;

/// The voltage band of EN 50160 for 10-minute means at the supply point: nominal ± 10 %.
pub const EN50160_BAND_PU: (f64, f64) = (0.9, 1.1);

/// The primary substation and every MV/LV substation, with the branches each takes out when it trips.
fn flood_sites(grid: &SynthesisedGrid) -> Vec<Site> {
    let net = &grid.network;
    let mut sites = Vec::new();
    if let Some(primary) = grid.bus_kind.iter().position(|k| *k == SiteKind::Primary) {
        let branches = (0..net.branches.len())
            .filter(|&k| net.branches[k].from == primary || net.branches[k].to == primary)
            .collect();
        sites.push(Site {
            name: "primary".into(),
            pos: grid.bus_pos[primary],
            branches,
            consumers: grid.load_building.len(),
        });
    }
    for (d, &(lv_bus, trafo)) in grid.substations.iter().enumerate() {
        let consumers = grid.building_district.iter().filter(|x| **x == Some(d)).count();
        sites.push(Site {
            name: format!("substation {d}"),
            pos: grid.bus_pos[lv_bus],
            branches: vec![trafo],
            consumers,
        });
    }
    sites
}

/// The grid's systems, for ordering: the coupling writes site depths before [`GridSystems::Advance`].
#[derive(SystemSet, Clone, Debug, PartialEq, Eq, Hash)]
pub enum GridSystems {
    /// The power flow of the step.
    Advance,
}

/// The plugin: needs a [`GridState`] resource inserted by the caller.
pub struct GridPlugin;

impl Plugin for GridPlugin {
    fn build(&self, app: &mut App) {
        let step = app.world().resource::<GridState>().settings.step.clone();
        register_domain(app, DOMAIN, duration_ms(&step).unwrap_or(900_000));
        app.init_resource::<ChargerDemand>();
        app.add_systems(DomainTick(DOMAIN), advance_grid.in_set(GridSystems::Advance));
        app.add_systems(Observe, observe_grid);
        app.add_systems(Finalize, grid_kpis);
    }
}

fn advance_grid(clock: Res<SimClock>, demand: Res<ChargerDemand>, mut state: ResMut<GridState>) {
    if state.failure.is_some() {
        return;
    }
    let now = clock.now_ms;
    state.update_sites(now);
    let tripped = state.tripped_branches();
    let time = state.step_time(clock.clock_ms());
    let dt_s = clock.step_ms as f64 / 1000.0;
    // Supply as of the last step decides which home chargers can charge now.
    let energised = state.last.as_ref().map(|r| r.solution.energised.clone());
    let ev_kw = state.ev_charging_kw(dt_s / 3600.0, energised.as_deref());
    let inputs = StepInputs { charger_kw: &demand.0, consumer_extra_kw: &ev_kw, tripped: &tripped };
    match state.series.step(&time, dt_s, &inputs) {
        Ok(report) => {
            state.last = Some(report);
            state.last_step_ms = Some(now);
        }
        Err(e) => state.failure = Some(format!("at {} s: {e}", now / 1000)),
    }
}

fn observe_grid(clock: Res<SimClock>, state: Res<GridState>, mut series: ResMut<TimeSeries>) {
    let Some(r) = &state.last else { return };
    let now = clock.now_ms;
    if !series.due(now, clock.end_ms) {
        return;
    }
    series.record(now, "grid_load_kw", r.load_kw);
    series.record(now, "grid_pv_kw", r.pv_kw);
    series.record(now, "grid_import_kw", r.import_kw);
    let vmin = state
        .series
        .consumers
        .iter()
        .map(|c| r.solution.vm_pu[state.series.network.injections[c.injection].bus])
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    series.record(now, "grid_min_voltage_pu", if vmin.is_finite() { vmin } else { 0.0 });
    series.record(now, "grid_consumers_interrupted", r.consumers_interrupted as f64);
    series.record(
        now,
        "grid_sites_out",
        state.site_state.iter().filter(|s| **s != SiteState::InService).count() as f64,
    );
}

fn grid_kpis(state: Res<GridState>, mut kpis: ResMut<Kpis>) {
    let d = DOMAIN;
    let t = &state.series.totals;
    kpis.set(d, "consumers", state.series.consumers.len() as f64);
    kpis.set(d, "substations", state.grid.substations.len() as f64);
    kpis.set(d, "steps", t.steps as f64);
    kpis.set(d, "load_kwh", t.load_kwh);
    kpis.set(d, "energy_not_served_kwh", t.energy_not_served_kwh);
    kpis.set(d, "customer_minutes_interrupted", t.customer_minutes_interrupted);
    kpis.set(d, "sites_tripped", state.sites_tripped as f64);
    kpis.set(d, "min_voltage_pu", if t.min_voltage_pu.is_finite() { t.min_voltage_pu } else { f64::NAN });
    kpis.set(d, "max_voltage_pu", t.max_voltage_pu);
    kpis.set(d, "voltage_violation_bus_steps", t.voltage_violation_bus_steps as f64);
    kpis.set(d, "buses_failing_en50160", state.series.buses_failing_en50160() as f64);
    kpis.set(d, "peak_transformer_loading_percent", t.peak_transformer_loading_percent);
    kpis.set(d, "peak_line_loading_percent", t.peak_line_loading_percent);
    kpis.set(d, "losses_kwh", t.losses_kwh);
    kpis.set(d, "import_kwh", t.import_kwh);
    kpis.set(d, "export_kwh", t.export_kwh);
    kpis.set(d, "peak_import_kw", t.peak_import_kw);
    kpis.set(d, "pv_kwh", t.pv_kwh);
    kpis.set(d, "pv_self_consumption_share", if t.pv_kwh > 0.0 { t.pv_self_consumed_kwh / t.pv_kwh } else { 0.0 });
    kpis.set(d, "charger_kwh", t.charger_kwh);
    kpis.set(d, "ev_home_charging_kwh", t.consumer_extra_kwh);
    kpis.set(d, "substation_batteries", state.series.feeder_batteries.len() as f64);
    kpis.set(d, "substation_battery_discharged_kwh", t.feeder_battery_discharged_kwh);
    kpis.set(d, "ev_arrivals_charging", state.ev_arrivals as f64);
    kpis.set(d, "co2_kg", state.series.co2_kg());
    kpis.set(d, "energy_balance_max_error_kw", t.max_balance_error_kw);
    kpis.set(d, "power_flow_iterations", t.iterations as f64);
    kpis.set(d, "power_flow_failed", state.failure.is_some() as u8 as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_trips_when_wet_and_returns_after_the_repair_delay() {
        let hour = 3_600_000;
        let mut s = SiteState::InService;
        let wet = [false, true, true, false, false, true, false, false, false];
        let mut states = Vec::new();
        for (k, &w) in wet.iter().enumerate() {
            s = s.next(w, k as u64 * hour, 2 * hour);
            states.push(s);
        }
        use SiteState::*;
        assert_eq!(
            states,
            [
                InService,
                Flooded,
                Flooded,
                Repairing { until_ms: 5 * hour },
                Repairing { until_ms: 5 * hour },
                Flooded, // wet again before the repair ended: the delay starts over once dry
                Repairing { until_ms: 8 * hour },
                Repairing { until_ms: 8 * hour },
                InService,
            ]
        );
    }

    #[test]
    fn dates_and_keys_are_checked() {
        assert_eq!(parse_date("2026-01-01"), Ok((2026, 1)));
        assert_eq!(parse_date("2024-12-31"), Ok((2024, 366)));
        assert!(parse_date("2026-02-29").is_err() && parse_date("17 June").is_err());
        let bad = GridSection { cloud_factor: vec![0.5, 0.5], ..GridSection::default() };
        assert_eq!(bad.validate().unwrap_err().0, "cloud_factor");
        let bad = GridSection { repair_delay: "soon".into(), ..GridSection::default() };
        assert_eq!(bad.validate().unwrap_err().0, "repair_delay");
        assert!(GridSection::default().validate().is_ok());
    }
}
