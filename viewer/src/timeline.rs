//! The playback clock: where in the replay the viewer is, whether it plays, and how fast. Pure logic (the
//! Bevy systems feed it wall-clock seconds and key presses), so seeking and speeds are tested directly.

/// Slowest playback speed (real time).
pub const MIN_SPEED: f64 = 1.0;
/// Fastest playback speed (an hour per second).
pub const MAX_SPEED: f64 = 3600.0;
/// Speed a replay opens with: a minute per second.
pub const DEFAULT_SPEED: f64 = 60.0;
/// The speeds the speed keys step through.
pub const SPEED_STEPS: [f64; 9] = [1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0];

/// Playback state over a replay of `end_ms` ms.
#[derive(Clone, Debug, PartialEq)]
pub struct Playback {
    /// Current time, ms since the replay's start (fractional while playing slowly).
    t_ms: f64,
    /// Last time of the replay, ms.
    end_ms: u64,
    /// Simulated seconds per wall-clock second.
    speed: f64,
    /// Whether time advances.
    playing: bool,
}

impl Playback {
    /// A paused playback at the replay's start.
    pub fn new(end_ms: u64) -> Playback {
        Playback { t_ms: 0.0, end_ms, speed: DEFAULT_SPEED, playing: false }
    }

    /// Current time, ms since the replay's start.
    pub fn t_ms(&self) -> u64 {
        self.t_ms as u64
    }

    /// Last time of the replay, ms.
    pub fn end_ms(&self) -> u64 {
        self.end_ms
    }

    /// Simulated seconds per wall-clock second.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Whether time advances.
    pub fn playing(&self) -> bool {
        self.playing
    }

    /// Jumps to `t_ms`, clamped to the replay.
    pub fn seek(&mut self, t_ms: u64) {
        self.t_ms = t_ms.min(self.end_ms) as f64;
    }

    /// Moves by `delta_s` simulated seconds (negative: back), clamped to the replay.
    pub fn step(&mut self, delta_s: f64) {
        self.t_ms = (self.t_ms + delta_s * 1000.0).clamp(0.0, self.end_ms as f64);
    }

    /// Starts or stops playing; playing from the end starts over.
    pub fn toggle(&mut self) {
        if !self.playing && self.t_ms() >= self.end_ms {
            self.t_ms = 0.0;
        }
        self.playing = !self.playing;
    }

    /// Sets the speed, clamped to [`MIN_SPEED`]..=[`MAX_SPEED`].
    pub fn set_speed(&mut self, speed: f64) {
        self.speed = speed.clamp(MIN_SPEED, MAX_SPEED);
    }

    /// The next faster (`up`) or slower speed of [`SPEED_STEPS`].
    pub fn change_speed(&mut self, up: bool) {
        let next = if up {
            SPEED_STEPS.iter().copied().find(|&s| s > self.speed).unwrap_or(MAX_SPEED)
        } else {
            SPEED_STEPS.iter().rev().copied().find(|&s| s < self.speed).unwrap_or(MIN_SPEED)
        };
        self.set_speed(next);
    }

    /// Advances by `wall_s` wall-clock seconds if playing; stops at the end.
    pub fn advance(&mut self, wall_s: f64) {
        if !self.playing {
            return;
        }
        self.step(wall_s * self.speed);
        if self.t_ms() >= self.end_ms {
            self.playing = false;
        }
    }

    /// `t_ms` as a time of day `HH:MM:SS`, given the time of day at the replay's start (ms).
    pub fn clock(&self, start_of_day_ms: u64) -> String {
        clock_of(start_of_day_ms + self.t_ms())
    }
}

/// A time of day `HH:MM:SS` from ms since midnight (wrapping past 24 h).
pub fn clock_of(ms_of_day: u64) -> String {
    let s = ms_of_day / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_at_speed_and_stops_at_the_end() {
        let mut p = Playback::new(3_600_000);
        p.advance(10.0);
        assert_eq!(p.t_ms(), 0, "paused");
        p.toggle();
        p.advance(10.0);
        assert_eq!(p.t_ms(), 600_000, "ten seconds at a minute per second");
        p.set_speed(1e9);
        assert_eq!(p.speed(), MAX_SPEED);
        p.advance(10.0);
        assert_eq!(p.t_ms(), 3_600_000);
        assert!(!p.playing());
        p.toggle();
        assert_eq!(p.t_ms(), 0, "playing from the end starts over");
    }

    #[test]
    fn seeks_and_steps_within_the_replay() {
        let mut p = Playback::new(86_400_000);
        p.seek(90_000_000);
        assert_eq!(p.t_ms(), 86_400_000);
        p.step(-3600.0);
        assert_eq!(p.t_ms(), 82_800_000);
        p.step(-1e9);
        assert_eq!(p.t_ms(), 0);
        p.seek(15 * 3_600_000 + 61_000);
        assert_eq!(p.clock(0), "15:01:01");
        assert_eq!(p.clock(23 * 3_600_000), "14:01:01", "wraps past midnight");
    }

    #[test]
    fn speed_keys_step_through_the_table() {
        let mut p = Playback::new(1);
        p.change_speed(true);
        assert_eq!(p.speed(), 120.0);
        p.change_speed(false);
        p.change_speed(false);
        assert_eq!(p.speed(), 30.0);
        for _ in 0..20 {
            p.change_speed(false);
        }
        assert_eq!(p.speed(), MIN_SPEED);
        for _ in 0..20 {
            p.change_speed(true);
        }
        assert_eq!(p.speed(), MAX_SPEED);
    }
}
