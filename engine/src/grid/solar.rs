//! Sun position and clear-sky irradiance for rooftop PV: the solar zenith from Spencer's (1971) Fourier
//! series for the declination and the equation of time (as NOAA's general solar position calculation
//! uses them), and the clear-sky global horizontal irradiance of Haurwitz (1945), GHI = 1098·cos z·
//! e^(−0.059 / cos z) W/m² (the constants of pvlib's `clearsky.haurwitz`). A cloud factor in [0, 1]
//! scales it for overcast hours.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Cosine of the solar zenith angle at latitude `lat_deg`, longitude `lon_deg` (east positive), on day
/// `day_of_year` (1 = 1 January) at `utc_hours` (0–24, UTC). Negative when the sun is below the horizon.
pub fn cos_zenith(lat_deg: f64, lon_deg: f64, day_of_year: u32, utc_hours: f64) -> f64 {
    let gamma = 2.0 * PI / 365.0 * (day_of_year as f64 - 1.0 + (utc_hours - 12.0) / 24.0);
    let eq_time_min = 229.18
        * (0.000075 + 0.001868 * gamma.cos()
            - 0.032077 * gamma.sin()
            - 0.014615 * (2.0 * gamma).cos()
            - 0.040849 * (2.0 * gamma).sin());
    let decl = 0.006918 - 0.399912 * gamma.cos() + 0.070257 * gamma.sin() - 0.006758 * (2.0 * gamma).cos()
        + 0.000907 * (2.0 * gamma).sin()
        - 0.002697 * (3.0 * gamma).cos()
        + 0.00148 * (3.0 * gamma).sin();
    let true_solar_min = utc_hours * 60.0 + eq_time_min + 4.0 * lon_deg;
    let hour_angle = (true_solar_min / 4.0 - 180.0).to_radians();
    let lat = lat_deg.to_radians();
    lat.sin() * decl.sin() + lat.cos() * decl.cos() * hour_angle.cos()
}

/// Clear-sky global horizontal irradiance (W/m²) for a solar zenith cosine (Haurwitz 1945); 0 at night.
pub fn clear_sky_ghi(cos_zenith: f64) -> f64 {
    if cos_zenith <= 0.0 {
        return 0.0;
    }
    1098.0 * cos_zenith * (-0.059 / cos_zenith).exp()
}

/// Rooftop PV as planners size it: a share of the roof covered with modules of an efficiency, and a
/// performance ratio for everything between the modules and the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RooftopPv {
    /// Share of a roof's area covered by modules: 0.4 (setbacks, shading, orientation; solar-cadastre
    /// practice for flat and pitched roofs alike).
    pub roof_share: f64,
    /// Module efficiency: 0.20, typical of current monocrystalline modules (IEA PVPS Trends 2023).
    pub module_efficiency: f64,
    /// Performance ratio (inverter, temperature, wiring, soiling losses): 0.80 (IEA PVPS Task 13).
    pub performance_ratio: f64,
}

impl Default for RooftopPv {
    fn default() -> Self {
        RooftopPv { roof_share: 0.4, module_efficiency: 0.20, performance_ratio: 0.80 }
    }
}

impl RooftopPv {
    /// AC output (kW) of a roof of `roof_m2` under global horizontal irradiance `ghi_w_m2` (modules taken
    /// as horizontal, the conservative case for a city-wide programme), scaled by `cloud_factor`.
    pub fn output_kw(&self, roof_m2: f64, ghi_w_m2: f64, cloud_factor: f64) -> f64 {
        roof_m2 * self.roof_share * self.module_efficiency * self.performance_ratio * ghi_w_m2 * cloud_factor / 1000.0
    }

    /// Peak capacity (kWp) of a roof: module area × efficiency at 1000 W/m².
    pub fn peak_kw(&self, roof_m2: f64) -> f64 {
        roof_m2 * self.roof_share * self.module_efficiency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sun_stands_where_it_should() {
        // Andorra la Vella (42.507 N, 1.522 E) at the June solstice: noon zenith 42.5° − 23.44° ≈ 19.1°,
        // solar noon near 11:53 UTC (longitude 1.5° east, equation of time −1.7 min).
        let (lat, lon) = (42.507, 1.522);
        let noon = (0..24 * 60)
            .map(|m| m as f64 / 60.0)
            .max_by(|a, b| cos_zenith(lat, lon, 172, *a).total_cmp(&cos_zenith(lat, lon, 172, *b)))
            .unwrap();
        let zenith = cos_zenith(lat, lon, 172, noon).acos().to_degrees();
        assert!((zenith - 19.07).abs() < 0.2, "noon zenith {zenith}°");
        assert!((noon - 11.93).abs() < 0.1, "solar noon at {noon} h UTC");
        // Night at midnight; at the December solstice the noon zenith is 42.5° + 23.44°.
        assert!(cos_zenith(lat, lon, 172, 0.0) < 0.0);
        let winter = cos_zenith(lat, lon, 355, noon).acos().to_degrees();
        assert!((winter - 65.94).abs() < 0.3, "{winter}");
        // Against pvlib 0.16's SPA and Haurwitz for 2026-03-20 08:00 UTC (day 79): zenith 68.694°,
        // GHI 339.16 W/m². Spencer's series is for a mean year: near an equinox, when the declination moves
        // 0.4° a day, the leap-year drift of the calendar costs up to about half a degree (measured 0.43°,
        // 2 % of irradiance).
        let cz = cos_zenith(lat, lon, 79, 8.0);
        assert!((cz.acos().to_degrees() - 68.694).abs() < 0.5, "{}", cz.acos().to_degrees());
        assert!((clear_sky_ghi(cz) / 339.16 - 1.0).abs() < 0.03, "{}", clear_sky_ghi(cz));
    }

    #[test]
    fn clear_sky_irradiance_and_pv_output() {
        // Sun overhead: 1098·e^(−0.059) ≈ 1035 W/m².
        assert!((clear_sky_ghi(1.0) - 1035.1).abs() < 0.5);
        assert_eq!(clear_sky_ghi(-0.2), 0.0);
        let pv = RooftopPv::default();
        // 100 m² of roof: 8 kWp; at 1000 W/m² under clear sky, 6.4 kW AC; half of it under clouds.
        assert!((pv.peak_kw(100.0) - 8.0).abs() < 1e-12);
        assert!((pv.output_kw(100.0, 1000.0, 1.0) - 6.4).abs() < 1e-12);
        assert!((pv.output_kw(100.0, 1000.0, 0.5) - 3.2).abs() < 1e-12);
    }
}
