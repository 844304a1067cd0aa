//! Standard electrical load profiles of the BDEW (VDEW/BDEW 1999, "Repräsentative VDEW-Lastprofile",
//! M-28/99): H0 households, G0–G6 commerce, L0–L2 agriculture, as year series of average power per quarter
//! hour for an annual consumption, generated the way demandlib (oemof) does:
//!
//! - seasons: winter 1 Jan–20 Mar and 1 Nov–31 Dec, summer 15 May–14 Sep, transition the rest;
//! - day types: the standard day of each weekday; holidays count as Sundays;
//! - each profile's year series is normalised to one, then scaled to the annual energy;
//! - H0 is "dynamised" after normalisation by the BDEW's fourth-order polynomial of the day of the year
//!   F(t) = −3.916649251·10⁻¹⁰·t⁴ + 3.2·10⁻⁷·t³ − 7.02·10⁻⁵·t² + 2.1·10⁻³·t + 1.24, with t the fractional
//!   day from the start of the year (demandlib's normalisation-adjusted leading coefficient; the BDEW
//!   gives −3.92·10⁻¹⁰).
//!
//! The quarter-hour data ship in `data/profiles/bdew-slp.csv` (see `data/ATTRIBUTION.md`).

use crate::error::{InputError, InputResult};
use std::collections::HashMap;
use std::path::Path;

/// Quarter hours in a day.
const QUARTERS: usize = 96;

/// The profiles by name (`H0`, `G0`, …): per season (winter, summer, transition) and weekday (Monday
/// first), the 96 quarter-hour values of the standard day.
#[derive(Clone, Debug)]
pub struct BdewProfiles {
    profiles: HashMap<String, Vec<f64>>,
}

/// Season index in the table.
fn season_index(name: &str) -> Option<usize> {
    ["winter", "summer", "transition"].iter().position(|s| *s == name)
}

/// Days in each month of `year` (Gregorian).
pub(crate) fn month_lengths(year: i32) -> [u32; 12] {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
}

/// Days from 1 January of `year` to `month`/`day` (0-based).
pub(crate) fn day_of_year(year: i32, month: u32, day: u32) -> usize {
    month_lengths(year)[..(month - 1) as usize].iter().sum::<u32>() as usize + (day - 1) as usize
}

/// Weekday of 1 January of `year`, 0 = Monday (Gauss's algorithm).
fn weekday_of_new_year(year: i32) -> usize {
    let y = year - 1;
    ((1 + 5 * (y % 4) + 4 * (y % 100) + 6 * (y % 400)) % 7 + 6) as usize % 7
}

impl BdewProfiles {
    /// Reads `bdew-slp.csv` (columns `season,weekday,minute,H0,…`). Errors name the file and line.
    pub fn read(path: &Path) -> InputResult<BdewProfiles> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError::new(path, "file", e.to_string()))?;
        BdewProfiles::parse(&text, path)
    }

    /// The profiles shipped in `data/profiles/bdew-slp.csv`, compiled into the program.
    pub fn shipped() -> BdewProfiles {
        const SHIPPED: &str = include_str!("../../../data/profiles/bdew-slp.csv");
        BdewProfiles::parse(SHIPPED, Path::new("data/profiles/bdew-slp.csv")).expect("the shipped profiles parse")
    }

    /// Parses the text of a profile table; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> InputResult<BdewProfiles> {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        if header.len() < 4 || header[..3] != ["season", "weekday", "minute"] {
            return Err(InputError::new(path, "line 1", "expected the header season,weekday,minute,H0,…"));
        }
        let mut profiles: HashMap<String, Vec<f64>> =
            header[3..].iter().map(|n| (n.to_string(), vec![f64::NAN; 3 * 7 * QUARTERS])).collect();
        for (k, line) in lines.enumerate() {
            let err = |m: String| InputError::new(path, format!("line {}", k + 2), m);
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != header.len() {
                return Err(err(format!("{} fields, the header has {}", f.len(), header.len())));
            }
            let season = season_index(f[0]).ok_or_else(|| err(format!("unknown season {:?}", f[0])))?;
            let weekday: usize =
                f[1].parse().ok().filter(|d| (1..=7).contains(d)).ok_or_else(|| err(format!("weekday {:?}", f[1])))?;
            let minute: usize = f[2]
                .parse()
                .ok()
                .filter(|m| m % 15 == 0 && *m < 1440)
                .ok_or_else(|| err(format!("minute {:?}", f[2])))?;
            let slot = (season * 7 + weekday - 1) * QUARTERS + minute / 15;
            for (name, v) in header[3..].iter().zip(&f[3..]) {
                let v: f64 = v.parse().map_err(|_| err(format!("{v:?} is not a number")))?;
                profiles.get_mut(*name).expect("a header column")[slot] = v;
            }
        }
        if let Some((name, _)) = profiles.iter().find(|(_, v)| v.iter().any(|x| x.is_nan())) {
            return Err(InputError::new(path, name.as_str(), "some season, weekday or quarter hour is missing"));
        }
        Ok(BdewProfiles { profiles })
    }

    /// The names of the profiles in the table.
    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }

    /// Average power (kW) per quarter hour of `year` (from 1 January 00:00 local time) for a consumer of
    /// `annual_kwh` on profile `name` (`H0` is dynamised); `holidays` are (month, day) dates that count as
    /// Sundays. None for an unknown profile.
    pub fn year_kw(&self, name: &str, year: i32, annual_kwh: f64, holidays: &[(u32, u32)]) -> Option<Vec<f64>> {
        let table = self.profiles.get(name)?;
        let days = day_of_year(year, 12, 31) + 1;
        let winter_end = day_of_year(year, 3, 20);
        let (summer_start, summer_end) = (day_of_year(year, 5, 15), day_of_year(year, 9, 14));
        let winter_again = day_of_year(year, 11, 1);
        let holiday_days: Vec<usize> = holidays.iter().map(|&(m, d)| day_of_year(year, m, d)).collect();
        let first = weekday_of_new_year(year);
        let mut series = Vec::with_capacity(days * QUARTERS);
        for day in 0..days {
            let season = if day <= winter_end || day >= winter_again {
                0
            } else if (summer_start..=summer_end).contains(&day) {
                1
            } else {
                2
            };
            let weekday = if holiday_days.contains(&day) { 6 } else { (first + day) % 7 };
            let slot = (season * 7 + weekday) * QUARTERS;
            series.extend_from_slice(&table[slot..slot + QUARTERS]);
        }
        let total: f64 = series.iter().sum();
        let dynamised = name == "H0";
        Some(
            series
                .iter()
                .enumerate()
                .map(|(q, v)| {
                    let share = v / total;
                    let share = if dynamised { share * dynamisation((q + 1) as f64 / QUARTERS as f64) } else { share };
                    share * annual_kwh * 4.0
                })
                .collect(),
        )
    }
}

/// The BDEW dynamisation factor of H0 at fractional day `t` of the year (see the module doc).
pub fn dynamisation(t: f64) -> f64 {
    -3.916649251e-10 * t.powi(4) + 3.2e-7 * t.powi(3) - 7.02e-5 * t * t + 2.1e-3 * t + 1.24
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(rel)
    }

    #[test]
    fn year_profiles_match_demandlib() {
        let p = BdewProfiles::read(&data("profiles/bdew-slp.csv")).unwrap();
        assert_eq!(p.names(), ["G0", "G1", "G2", "G3", "G4", "G5", "G6", "H0", "L0", "L1", "L2"]);
        let h0 = p.year_kw("H0", 2026, 1000.0, &[]).unwrap();
        let g0 = p.year_kw("G0", 2026, 1000.0, &[]).unwrap();
        assert_eq!(h0.len(), 365 * 96);
        // Energy over the year: 1000 kWh (G0 exactly; H0 to within its dynamisation's normalisation).
        let energy = |s: &[f64]| s.iter().sum::<f64>() / 4.0;
        assert!((energy(&g0) - 1000.0).abs() < 1e-9);
        assert!((energy(&h0) - 1000.0).abs() < 5.0, "{}", energy(&h0));
        // demandlib 0.2.2's own series on three days (benches/peers/bdew_profiles.py).
        let text = std::fs::read_to_string(data("profiles/reference/bdew-2026-1000kwh.csv")).unwrap();
        let mut worst: f64 = 0.0;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let (date, time) = f[0].split_once(' ').unwrap();
            let (m, d): (u32, u32) = (date[5..7].parse().unwrap(), date[8..10].parse().unwrap());
            let (hh, mm): (usize, usize) = (time[0..2].parse().unwrap(), time[3..5].parse().unwrap());
            let q = day_of_year(2026, m, d) * 96 + hh * 4 + mm / 15;
            let (rh, rg): (f64, f64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            worst = worst.max((h0[q] - rh).abs() / rh).max((g0[q] - rg).abs() / rg);
        }
        assert!(worst < 1e-9, "largest relative difference {worst}");
    }

    #[test]
    fn holidays_are_sundays_and_weekdays_fall_right() {
        assert_eq!(weekday_of_new_year(2026), 3); // Thursday
        assert_eq!(weekday_of_new_year(2024), 0); // Monday
        let p = BdewProfiles::read(&data("profiles/bdew-slp.csv")).unwrap();
        let plain = p.year_kw("G0", 2026, 1000.0, &[]).unwrap();
        let christmas = p.year_kw("G0", 2026, 1000.0, &[(12, 25)]).unwrap();
        let day = day_of_year(2026, 12, 25) * 96;
        // 25 Dec 2026 is a Friday: as a holiday it takes Sunday's shape (shops closed: less at noon).
        let noon = day + 48;
        assert!(christmas[noon] < plain[noon]);
        let sunday = day_of_year(2026, 12, 27) * 96 + 48;
        let ratio = christmas[noon] / christmas[sunday];
        assert!((ratio - 1.0).abs() < 1e-12, "{ratio}");
    }
}
