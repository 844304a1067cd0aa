//! Where the sun is, for daylight that follows the replay's time of day: solar declination by Cooper (1969),
//! `δ = 23.45° · sin(360° · (284 + n) / 365)`, and the hour angle from the clock taken as local solar time
//! (15° per hour from noon). Elevation `sin α = sin φ sin δ + cos φ cos δ cos h`; azimuth from north
//! clockwise. Good to a few degrees, which is what shadows on a screen need.

use bevy::math::Vec3;

/// Day of the year the viewer lights the city for when the replay does not say (21 June, long days).
pub const DEFAULT_DAY_OF_YEAR: u32 = 172;

/// Solar declination on day `n` of the year, radians (Cooper 1969).
pub fn declination(day_of_year: u32) -> f64 {
    (23.45f64).to_radians() * (2.0 * std::f64::consts::PI * (284.0 + day_of_year as f64) / 365.0).sin()
}

/// Unit vector towards the sun in world axes (x east, y up, −z north) at latitude `lat_deg` and `hour`
/// of local solar time (12 = noon). Below the horizon at night (`y < 0`).
pub fn direction(lat_deg: f64, day_of_year: u32, hour: f64) -> Vec3 {
    let (phi, delta) = (lat_deg.to_radians(), declination(day_of_year));
    let h = ((hour - 12.0) * 15.0).to_radians();
    // East, north and up components of the sun vector in the horizon frame.
    let up = phi.sin() * delta.sin() + phi.cos() * delta.cos() * h.cos();
    let east = -delta.cos() * h.sin();
    let north = phi.cos() * delta.sin() - phi.sin() * delta.cos() * h.cos();
    Vec3::new(east as f32, up as f32, -north as f32).normalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noon_in_andorra_at_midsummer_is_high_in_the_south() {
        let d = direction(42.5, 172, 12.0);
        let elevation = d.y.asin().to_degrees();
        assert!((elevation - (90.0 - 42.5 + 23.45)).abs() < 0.1, "{elevation}");
        assert!(d.z > 0.0, "south is +z");
        assert!(d.x.abs() < 1e-6);
    }

    #[test]
    fn the_sun_rises_in_the_east_and_sets_in_the_west() {
        let morning = direction(42.5, 172, 8.0);
        let evening = direction(42.5, 172, 16.0);
        assert!(morning.x > 0.0 && evening.x < 0.0);
        assert!((morning.y - evening.y).abs() < 1e-5, "symmetric about noon");
        assert!(direction(42.5, 172, 0.0).y < 0.0, "night");
    }
}
