//! The synthetic population every domain shares: who lives where, who works or studies where, and what
//! each person does during the day.
//!
//! Method (a standard floor-area allocation, as in the UrbanSim / MATSim "synthetic population from
//! buildings" recipes):
//! 1. Floor area by use: residential buildings house residents at `floor_m2_per_resident`; other uses hold
//!    jobs at a density per use ([`JobDensities`]); buildings without a use tag are split by
//!    `unknown_residential_share`.
//! 2. Each resident is a worker, a student or neither, drawn with `worker_share` and `student_share`.
//!    Workers choose a workplace among job buildings with probability ∝ jobs × exp(−d / L) (a gravity model
//!    with exponential deterrence, Wilson 1967), L = `destination_distance_scale_m`; students go to the
//!    nearest education building.
//! 3. Activity chains: worker home–work(–shop)–home, student home–school–home, others home(–errand)–home,
//!    with departure times and durations drawn from normal distributions (Box–Muller, truncated at ±2.5σ).
//!
//! All draws come from [`crate::rng::stream`] keyed by the person's id, so the population is a pure function
//! of the City, the parameters and the seed.

use crate::city::{BuildingId, City};
use crate::import::tags::BuildingUse;
use crate::rng::{stream, Purpose};
use crate::scenario::{check, duration_ms};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Jobs density by building use: gross floor area per job (m²). Values from the HCA Employment Density
/// Guide, 3rd ed. (Homes & Communities Agency, 2015), mid-range, with its net areas used as gross (so job
/// counts are on the low side); parking holds no jobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobDensities {
    /// Offices (and the non-residential share of untagged buildings): 12 m² per job.
    pub office_m2: f32,
    /// Shops: 20 m² per job.
    pub retail_m2: f32,
    /// Industry and warehouses: 40 m² per job.
    pub industrial_m2: f32,
    /// Schools and universities (staff): 30 m² per job.
    pub education_m2: f32,
    /// Clinics and hospitals: 25 m² per job.
    pub health_m2: f32,
    /// Civic and religious buildings: 30 m² per job.
    pub public_m2: f32,
    /// Hotels, restaurants: 30 m² per job.
    pub hospitality_m2: f32,
    /// Other tagged uses: 50 m² per job.
    pub other_m2: f32,
}

impl Default for JobDensities {
    fn default() -> Self {
        JobDensities {
            office_m2: 12.0,
            retail_m2: 20.0,
            industrial_m2: 40.0,
            education_m2: 30.0,
            health_m2: 25.0,
            public_m2: 30.0,
            hospitality_m2: 30.0,
            other_m2: 50.0,
        }
    }
}

impl JobDensities {
    /// m² per job for a use; `None` for uses without jobs (residential, parking).
    pub fn m2_per_job(&self, u: BuildingUse) -> Option<f32> {
        use BuildingUse::*;
        match u {
            Office | Unknown => Some(self.office_m2),
            Retail => Some(self.retail_m2),
            Industrial => Some(self.industrial_m2),
            Education => Some(self.education_m2),
            Health => Some(self.health_m2),
            Public => Some(self.public_m2),
            Hospitality => Some(self.hospitality_m2),
            Other => Some(self.other_m2),
            Residential | Parking => None,
        }
    }
}

/// `[population]` parameters. Every value has a unit and a source; a scenario overrides any of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopulationParams {
    /// Gross residential floor area per resident (m²): the EEA's average useful floor area per person in
    /// the EU (about 40 m², EEA indicator "Average floor area per person", 2018 data) × 1.1 for walls and
    /// circulation.
    pub floor_m2_per_resident: f32,
    /// Share of floor area of buildings without a use tag that is residential (the rest is offices): an
    /// assumption for mixed European centres; set it from local land-use data when known.
    pub unknown_residential_share: f32,
    /// Floor area per job by use.
    pub jobs: JobDensities,
    /// Share of residents who work (Eurostat 2022: employed persons ≈ 47% of the EU population).
    pub worker_share: f32,
    /// Share of residents in school or university (EU pupils and students ≈ 17% of the population).
    pub student_share: f32,
    /// Distance scale L (m) of the gravity model for workplaces and shops.
    pub destination_distance_scale_m: f32,
    /// Mean and spread (1σ) of the time workers leave home, clock times/durations like `"08:00"`, `"1h"`.
    pub work_departure: String,
    /// 1σ of the work departure time (`"45min"`).
    pub work_departure_spread: String,
    /// Mean time spent at work (`"8h30min"`).
    pub work_duration: String,
    /// 1σ of the time at work.
    pub work_duration_spread: String,
    /// Probability that a worker shops on the way home.
    pub shop_after_work_probability: f32,
    /// Mean duration of a shopping or errand stop.
    pub shop_duration: String,
    /// 1σ of a shopping or errand stop.
    pub shop_duration_spread: String,
    /// Mean time students leave home (`"07:40"`).
    pub school_departure: String,
    /// 1σ of the school departure time.
    pub school_departure_spread: String,
    /// Time at school (`"7h"`).
    pub school_duration: String,
    /// Probability that a resident who neither works nor studies makes an errand trip; its departure is
    /// uniform between the two clock times.
    pub errand_probability: f32,
    /// Earliest errand departure (clock time).
    pub errand_window_start: String,
    /// Latest errand departure (clock time).
    pub errand_window_end: String,
    /// Trips whose walking route is at most this long (m) are walked; longer ones go by car. 1 km: the
    /// distance under which walking dominates in European travel surveys (e.g. Mobilität in Deutschland 2017).
    pub walk_max_m: f32,
    /// Step of the free-flow trip model (`"10s"`): how often persons' states are updated.
    pub step: String,
}

impl Default for PopulationParams {
    fn default() -> Self {
        PopulationParams {
            floor_m2_per_resident: 44.0,
            unknown_residential_share: 0.75,
            jobs: JobDensities::default(),
            worker_share: 0.47,
            student_share: 0.17,
            destination_distance_scale_m: 2000.0,
            work_departure: "07:45".into(),
            work_departure_spread: "45min".into(),
            work_duration: "8h30min".into(),
            work_duration_spread: "1h".into(),
            shop_after_work_probability: 0.3,
            shop_duration: "30min".into(),
            shop_duration_spread: "10min".into(),
            school_departure: "07:40".into(),
            school_departure_spread: "15min".into(),
            school_duration: "7h".into(),
            errand_probability: 0.5,
            errand_window_start: "09:30".into(),
            errand_window_end: "18:00".into(),
            walk_max_m: 1000.0,
            step: "10s".into(),
        }
    }
}

/// Parameters with the durations parsed (ms).
#[derive(Clone, Copy, Debug)]
struct Times {
    work_dep: f64,
    work_dep_sd: f64,
    work_dur: f64,
    work_dur_sd: f64,
    shop_dur: f64,
    shop_dur_sd: f64,
    school_dep: f64,
    school_dep_sd: f64,
    school_dur: f64,
    errand_start: f64,
    errand_end: f64,
}

impl PopulationParams {
    /// Checks ranges; on error returns (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let share = |k: &str, v: f32| check::share(k, v as f64);
        let positive = |k: &str, v: f32| check::positive(k, v as f64);
        share("worker_share", self.worker_share)?;
        share("student_share", self.student_share)?;
        share("unknown_residential_share", self.unknown_residential_share)?;
        share("shop_after_work_probability", self.shop_after_work_probability)?;
        share("errand_probability", self.errand_probability)?;
        if self.worker_share + self.student_share > 1.0 {
            return Err(("student_share".into(), "worker_share + student_share exceeds 1".into()));
        }
        positive("floor_m2_per_resident", self.floor_m2_per_resident)?;
        positive("destination_distance_scale_m", self.destination_distance_scale_m)?;
        positive("walk_max_m", self.walk_max_m)?;
        let j = &self.jobs;
        for (k, v) in [
            ("jobs.office_m2", j.office_m2),
            ("jobs.retail_m2", j.retail_m2),
            ("jobs.industrial_m2", j.industrial_m2),
            ("jobs.education_m2", j.education_m2),
            ("jobs.health_m2", j.health_m2),
            ("jobs.public_m2", j.public_m2),
            ("jobs.hospitality_m2", j.hospitality_m2),
            ("jobs.other_m2", j.other_m2),
        ] {
            positive(k, v)?;
        }
        self.times()?;
        if self.step_ms()? == 0 {
            return Err(("step".into(), "must be longer than zero".into()));
        }
        Ok(())
    }

    /// The trip model's step (ms).
    pub fn step_ms(&self) -> Result<u64, (String, String)> {
        duration_ms(&self.step).map_err(|m| ("step".to_string(), m))
    }

    fn times(&self) -> Result<Times, (String, String)> {
        let d = |k: &str, v: &str| duration_ms(v).map(|ms| ms as f64).map_err(|m| (k.to_string(), m));
        let t = Times {
            work_dep: d("work_departure", &self.work_departure)?,
            work_dep_sd: d("work_departure_spread", &self.work_departure_spread)?,
            work_dur: d("work_duration", &self.work_duration)?,
            work_dur_sd: d("work_duration_spread", &self.work_duration_spread)?,
            shop_dur: d("shop_duration", &self.shop_duration)?,
            shop_dur_sd: d("shop_duration_spread", &self.shop_duration_spread)?,
            school_dep: d("school_departure", &self.school_departure)?,
            school_dep_sd: d("school_departure_spread", &self.school_departure_spread)?,
            school_dur: d("school_duration", &self.school_duration)?,
            errand_start: d("errand_window_start", &self.errand_window_start)?,
            errand_end: d("errand_window_end", &self.errand_window_end)?,
        };
        if t.errand_end < t.errand_start {
            return Err(("errand_window_end".into(), "is before errand_window_start".into()));
        }
        Ok(t)
    }
}

/// What a person does at a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ActivityKind {
    /// At home.
    Home = 0,
    /// At the workplace.
    Work = 1,
    /// At school or university.
    School = 2,
    /// Shopping or an errand.
    Shop = 3,
}

/// A person's role in the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Has a workplace.
    Worker,
    /// Goes to school or university.
    Student,
    /// Neither (children under school age, retired, not employed).
    Other,
}

/// When a leg departs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Departure {
    /// At a clock time (ms after midnight of day 0).
    At(u64),
    /// This long (ms) after arriving at the previous activity.
    After(u64),
}

/// One trip of the plan: leave the current place and go to `to` for `purpose`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    /// Destination building.
    pub to: BuildingId,
    /// What the person does there.
    pub purpose: ActivityKind,
    /// When the leg starts.
    pub departure: Departure,
}

/// A synthetic person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Index in the population.
    pub id: u32,
    /// Home building.
    pub home: BuildingId,
    /// Worker, student or neither.
    pub role: Role,
    /// Workplace or school, if any.
    pub workplace: Option<BuildingId>,
    /// The day's legs, in order, starting from home.
    pub plan: Vec<Leg>,
}

/// The population of a city.
#[derive(Clone, Debug, Default)]
pub struct Population {
    /// Everyone, indexed by id.
    pub persons: Vec<Person>,
    /// Residents per building (index = building id).
    pub residents: Vec<u32>,
    /// Jobs per building.
    pub jobs: Vec<u32>,
}

impl Population {
    /// Workers, students and others.
    pub fn role_counts(&self) -> (usize, usize, usize) {
        let c = |r| self.persons.iter().filter(|p| p.role == r).count();
        (c(Role::Worker), c(Role::Student), c(Role::Other))
    }

    /// Builds the population of `city` (parameters must have passed `validate`).
    pub fn generate(city: &City, params: &PopulationParams, seed: u64) -> Population {
        let times = params.times().unwrap_or_else(|_| PopulationParams::default().times().expect("defaults are valid"));
        let n = city.buildings.len();
        let mut residents = vec![0u32; n];
        let mut jobs = vec![0u32; n];
        for (i, b) in city.buildings.iter().enumerate() {
            let res_share = match b.building_use {
                BuildingUse::Residential => 1.0,
                BuildingUse::Unknown => params.unknown_residential_share,
                _ => 0.0,
            };
            residents[i] = (b.floor_area_m2 * res_share / params.floor_m2_per_resident).round() as u32;
            if let Some(m2) = params.jobs.m2_per_job(b.building_use) {
                jobs[i] = (b.floor_area_m2 * (1.0 - res_share) / m2).round() as u32;
            }
        }
        let job_sites: Vec<u32> = (0..n as u32).filter(|&i| jobs[i as usize] > 0).collect();
        let shop_sites: Vec<u32> = (0..n as u32)
            .filter(|&i| {
                jobs[i as usize] > 0
                    && matches!(city.buildings[i as usize].building_use, BuildingUse::Retail | BuildingUse::Hospitality)
            })
            .collect();
        // Without tagged shops (e.g. footprints without use), errands go to any job site.
        let shop_sites = if shop_sites.is_empty() { job_sites.clone() } else { shop_sites };
        let schools: Vec<u32> = (0..n as u32)
            .filter(|&i| jobs[i as usize] > 0 && city.buildings[i as usize].building_use == BuildingUse::Education)
            .collect();

        let mut persons = Vec::with_capacity(residents.iter().map(|&r| r as usize).sum());
        for (home, &count) in residents.iter().enumerate() {
            for _ in 0..count {
                let id = persons.len() as u32;
                persons.push(plan_person(
                    city,
                    params,
                    &times,
                    seed,
                    id,
                    home as u32,
                    &jobs,
                    &job_sites,
                    &shop_sites,
                    &schools,
                ));
            }
        }
        Population { persons, residents, jobs }
    }
}

/// Gravity-model choice among `sites` (other than `origin` itself): weight jobs × exp(−d/L).
fn choose(city: &City, jobs: &[u32], sites: &[u32], origin: BuildingId, scale_m: f32, u: f64) -> Option<BuildingId> {
    let o = city.buildings[origin as usize].centroid;
    let weight = |s: u32| {
        if s == origin {
            return 0.0;
        }
        let d = city.buildings[s as usize].centroid.distance(o);
        jobs[s as usize] as f64 * (-(d / scale_m) as f64).exp()
    };
    let total: f64 = sites.iter().map(|&s| weight(s)).sum();
    if total <= 0.0 {
        return None;
    }
    let mut target = u * total;
    for &s in sites {
        target -= weight(s);
        if target <= 0.0 {
            return Some(s);
        }
    }
    sites.last().copied()
}

fn draw(rng: &mut impl Rng, mean: f64, sd: f64) -> u64 {
    (mean + sd * crate::rng::standard_normal(rng)).max(0.0).round() as u64
}

#[allow(clippy::too_many_arguments)]
fn plan_person(
    city: &City,
    p: &PopulationParams,
    t: &Times,
    seed: u64,
    id: u32,
    home: BuildingId,
    jobs: &[u32],
    job_sites: &[u32],
    shop_sites: &[u32],
    schools: &[u32],
) -> Person {
    let mut assign = stream(seed, Purpose::PopulationAssignment, id as u64, 0);
    let mut plan_rng = stream(seed, Purpose::ActivityPlan, id as u64, 0);
    let u: f64 = assign.random();
    let l = p.destination_distance_scale_m;
    let nearest_school = || {
        let h = city.buildings[home as usize].centroid;
        schools.iter().copied().min_by(|&a, &b| {
            let da = city.buildings[a as usize].centroid.distance_squared(h);
            let db = city.buildings[b as usize].centroid.distance_squared(h);
            da.total_cmp(&db).then(a.cmp(&b))
        })
    };
    let (role, workplace) = if u < p.worker_share as f64 {
        match choose(city, jobs, job_sites, home, l, assign.random()) {
            Some(w) => (Role::Worker, Some(w)),
            None => (Role::Other, None),
        }
    } else if u < (p.worker_share + p.student_share) as f64 {
        match nearest_school() {
            Some(s) => (Role::Student, Some(s)),
            None => (Role::Other, None),
        }
    } else {
        (Role::Other, None)
    };
    let mut plan = Vec::new();
    let rng = &mut plan_rng;
    match (role, workplace) {
        (Role::Worker, Some(w)) => {
            plan.push(Leg {
                to: w,
                purpose: ActivityKind::Work,
                departure: Departure::At(draw(rng, t.work_dep, t.work_dep_sd)),
            });
            let work = Departure::After(draw(rng, t.work_dur, t.work_dur_sd));
            let shop = rng.random::<f32>() < p.shop_after_work_probability;
            match choose(city, jobs, shop_sites, w, l, rng.random()).filter(|_| shop) {
                Some(s) => {
                    plan.push(Leg { to: s, purpose: ActivityKind::Shop, departure: work });
                    let stay = Departure::After(draw(rng, t.shop_dur, t.shop_dur_sd));
                    plan.push(Leg { to: home, purpose: ActivityKind::Home, departure: stay });
                }
                None => plan.push(Leg { to: home, purpose: ActivityKind::Home, departure: work }),
            }
        }
        (Role::Student, Some(s)) => {
            let dep = draw(rng, t.school_dep, t.school_dep_sd);
            plan.push(Leg { to: s, purpose: ActivityKind::School, departure: Departure::At(dep) });
            plan.push(Leg { to: home, purpose: ActivityKind::Home, departure: Departure::After(t.school_dur as u64) });
        }
        _ => {
            if rng.random::<f32>() < p.errand_probability {
                let dep = t.errand_start + rng.random::<f64>() * (t.errand_end - t.errand_start);
                if let Some(s) = choose(city, jobs, shop_sites, home, l, rng.random()) {
                    plan.push(Leg { to: s, purpose: ActivityKind::Shop, departure: Departure::At(dep.round() as u64) });
                    let stay = Departure::After(draw(rng, t.shop_dur, t.shop_dur_sd));
                    plan.push(Leg { to: home, purpose: ActivityKind::Home, departure: stay });
                }
            }
        }
    }
    Person { id, home, role, workplace, plan }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::city::{CityBuilder, RawBuilding, RawWay};
    use crate::import::tags::{TagDefaults, WayClass};

    /// Metres → degrees near the equator (1° ≈ 111 320 m), for building synthetic test cities.
    const M: f64 = 1.0 / 111_320.0;

    /// A synthetic town: a 5 × 5 street grid (200 m blocks) with one building per block: residential,
    /// offices, shops and a school.
    pub fn town() -> City {
        let mut b = CityBuilder::new("town", TagDefaults::default());
        let id = |x: i64, y: i64| y * 10 + x + 1;
        for y in 0..5 {
            for x in 0..5 {
                for (dx, dy) in [(1, 0), (0, 1)] {
                    if x + dx >= 5 || y + dy >= 5 {
                        continue;
                    }
                    let p = |x: i64, y: i64| (id(x, y), x as f64 * 200.0 * M, y as f64 * 200.0 * M);
                    b.ways.push(RawWay {
                        source_id: id(x, y) * 2 + dx,
                        nodes: vec![p(x, y), p(x + dx, y + dy)],
                        class: WayClass::Residential,
                        name: None,
                        drivable: true,
                        walkable: true,
                        lanes_forward: 1,
                        lanes_backward: 1,
                        speed_kmh: 36.0,
                        roundabout: false,
                    });
                }
            }
        }
        for y in 0..4 {
            for x in 0..4 {
                let (x0, y0) = (x as f64 * 200.0 + 50.0, y as f64 * 200.0 + 50.0);
                let ring = [(x0, y0), (x0 + 60.0, y0), (x0 + 60.0, y0 + 60.0), (x0, y0 + 60.0), (x0, y0)];
                let building_use = match (x, y) {
                    (0, 0) => BuildingUse::Education,
                    (3, 3) | (3, 2) => BuildingUse::Office,
                    (2, 3) => BuildingUse::Retail,
                    _ => BuildingUse::Residential,
                };
                b.buildings.push(RawBuilding {
                    source_id: format!("b{x}{y}"),
                    outer: ring.iter().map(|&(x, y)| (x * M, y * M)).collect(),
                    inner: Vec::new(),
                    height_m: None,
                    levels: Some(4.0),
                    building_use,
                });
            }
        }
        b.build().unwrap()
    }

    #[test]
    fn population_follows_floor_area_and_shares_and_is_deterministic() {
        let city = town();
        let params = PopulationParams::default();
        let pop = Population::generate(&city, &params, 7);
        // 12 residential buildings of about 60 × 60 m × 4 floors at 44 m² per resident.
        let expected: usize = city
            .buildings
            .iter()
            .filter(|b| b.building_use == BuildingUse::Residential)
            .map(|b| (b.floor_area_m2 / 44.0).round() as usize)
            .sum();
        assert_eq!(pop.persons.len(), expected);
        assert!((3800..4000).contains(&expected), "{expected}");
        let (w, s, o) = pop.role_counts();
        let n = pop.persons.len() as f64;
        assert!((w as f64 / n - 0.47).abs() < 0.06, "worker share {}", w as f64 / n);
        assert!((s as f64 / n - 0.17).abs() < 0.05, "student share {}", s as f64 / n);
        assert_eq!(w + s + o, pop.persons.len());
        for p in &pop.persons {
            assert_eq!(city.buildings[p.home as usize].building_use, BuildingUse::Residential);
            if let Some(last) = p.plan.last() {
                assert_eq!(last.to, p.home, "every plan ends at home");
            }
            match p.role {
                Role::Worker => assert!(pop.jobs[p.workplace.unwrap() as usize] > 0),
                Role::Student => {
                    assert_eq!(city.buildings[p.workplace.unwrap() as usize].building_use, BuildingUse::Education)
                }
                Role::Other => assert!(p.workplace.is_none()),
            }
        }
        assert_eq!(Population::generate(&city, &params, 7).persons, pop.persons);
        assert_ne!(Population::generate(&city, &params, 8).persons, pop.persons);
    }

    #[test]
    fn departures_follow_the_parameters() {
        let city = town();
        let params = PopulationParams::default();
        let pop = Population::generate(&city, &params, 1);
        let deps: Vec<f64> = pop
            .persons
            .iter()
            .filter(|p| p.role == Role::Worker)
            .filter_map(|p| match p.plan[0].departure {
                Departure::At(ms) => Some(ms as f64 / 3.6e6),
                Departure::After(_) => None,
            })
            .collect();
        let mean = deps.iter().sum::<f64>() / deps.len() as f64;
        assert!((mean - 7.75).abs() < 0.1, "mean work departure {mean} h");
        assert!(deps.iter().all(|&h| (7.75 - 2.5 * 0.75 - 1e-9..=7.75 + 2.5 * 0.75 + 1e-9).contains(&h)));
        let bad = PopulationParams { worker_share: 0.9, student_share: 0.2, ..params };
        assert_eq!(bad.validate().unwrap_err().0, "student_share");
    }
}
