//! Machi's 3D replay viewer, as a library (the `machi-viewer` binary is its command line). Stakeholders watch
//! a replay written by `machi run`: the city on its terrain, the flood water, traffic, pedestrians and robots,
//! the grid's loading and outages, in time, in an interactive window or rendered offscreen to PNG.
//!
//! Modules, from data to pixels: [`data`] reads the replay (scene and timed streams, interpolated);
//! [`meshes`] turns the scene into triangle arrays; [`palette`] holds every colour; [`timeline`] is the
//! playback clock; [`sun`] places the sun; [`camera`] is the orbit camera and its presets; [`scene`] is the
//! Bevy plugin that draws; [`ui`] is the window's overlay (KPI panel, timeline, selection); [`capture`] renders
//! offscreen for screenshots and video frames.

pub mod camera;
pub mod capture;
pub mod data;
pub mod meshes;
pub mod palette;
pub mod scene;
pub mod sun;
pub mod timeline;
pub mod ui;

/// Parses a replay time given on the command line: seconds since the replay's start (`3600`, `90.5`), or a
/// time of day `HH:MM[:SS]` that is converted with the replay's start of day (`start_of_day_ms`, ms since
/// midnight; a time of day before the start means the next day). Returns ms since the replay's start.
pub fn parse_time(text: &str, start_of_day_ms: u64) -> Result<u64, String> {
    let bad = || format!("'{text}' is not a time: give seconds since the replay's start (e.g. 3600) or HH:MM[:SS]");
    if text.contains(':') {
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() > 3 {
            return Err(bad());
        }
        let mut ms = 0u64;
        for (k, unit) in [3_600_000u64, 60_000, 1000].iter().enumerate() {
            let Some(p) = parts.get(k) else { break };
            let v: u64 = p.trim().parse().map_err(|_| bad())?;
            if (k == 0 && v > 23) || (k > 0 && v > 59) {
                return Err(bad());
            }
            ms += v * unit;
        }
        Ok((ms + 86_400_000 - start_of_day_ms % 86_400_000) % 86_400_000)
    } else {
        let s: f64 = text.trim().parse().map_err(|_| bad())?;
        if !(s.is_finite() && s >= 0.0) {
            return Err(bad());
        }
        Ok((s * 1000.0).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_seconds_or_clock_times() {
        assert_eq!(parse_time("3600", 0), Ok(3_600_000));
        assert_eq!(parse_time("90.5", 0), Ok(90_500));
        assert_eq!(parse_time("15:30", 0), Ok(55_800_000));
        assert_eq!(parse_time("15:30", 14 * 3_600_000 + 1_800_000), Ok(3_600_000));
        assert_eq!(parse_time("01:00:30", 23 * 3_600_000), Ok(2 * 3_600_000 + 30_000), "past midnight");
        for bad in ["-1", "soon", "25:00", "10:61", "1:2:3:4", "NaN"] {
            assert!(parse_time(bad, 0).is_err(), "{bad}");
        }
    }
}
