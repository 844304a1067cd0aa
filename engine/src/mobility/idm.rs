//! Microscopic vehicle dynamics: the Intelligent Driver Model for car following (Treiber, Hennecke &
//! Helbing 2000, "Congested traffic states in empirical observations and microscopic simulations", Phys.
//! Rev. E 62(2)), the MOBIL lane-change rule (Kesting, Treiber & Helbing 2007, "General lane-changing model
//! MOBIL for car-following models", Transportation Research Record 1999), and the ballistic position update
//! Treiber & Kanagaraj (2015, "Comparing numerical integration schemes for time-continuous car-following
//! models", Physica A 419) recommend for them.
//!
//! IDM: a = a_max·[1 − (v/v₀)^δ − (s*/s)²], with the desired gap s* = s₀ + max(0, v·T + v·Δv / (2√(a_max·b))),
//! s the bumper-to-bumper gap to the leader and Δv = v − v_leader. A red light or the end of a closed link is
//! a standing leader of zero length at the stop line.
//!
//! MOBIL: change lanes when the own advantage, less the politeness share of the disadvantage imposed on the
//! followers, exceeds a threshold — and only if the new follower need not brake harder than `b_safe`.

use serde::{Deserialize, Serialize};

/// Driving parameters of a vehicle class.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverParams {
    /// Desired speed as a share of the link's speed limit (drivers keep near the limit in town).
    pub speed_factor: f64,
    /// Desired time headway T (s).
    pub time_headway_s: f64,
    /// Minimum gap at standstill s₀ (m).
    pub min_gap_m: f64,
    /// Maximum acceleration a_max (m/s²).
    pub max_accel_mps2: f64,
    /// Comfortable deceleration b (m/s²).
    pub comfort_decel_mps2: f64,
    /// Acceleration exponent δ.
    pub delta: f64,
    /// Vehicle length (m).
    pub length_m: f64,
}

impl DriverParams {
    /// Passenger cars: SUMO's default passenger vehicle type (length 5 m, minGap 2.5 m, accel 2.6 m/s²,
    /// decel 4.5 m/s², tau 1.0 s; SUMO documentation, "Vehicle Type Parameter Defaults"), with δ = 4, so
    /// that a scenario run in both tools drives the same cars. A queue discharges from a green light at
    /// about 1 840 veh/h/lane with these (test below).
    pub const CAR: DriverParams = DriverParams {
        speed_factor: 1.0,
        time_headway_s: 1.0,
        min_gap_m: 2.5,
        max_accel_mps2: 2.6,
        comfort_decel_mps2: 4.5,
        delta: 4.0,
        length_m: 5.0,
    };
    /// Buses: SUMO's default bus (12 m, accel 1.2 m/s², decel 4.0 m/s²), with a 1.5 s headway (buses keep
    /// longer gaps: standing passengers).
    pub const BUS: DriverParams = DriverParams {
        speed_factor: 1.0,
        time_headway_s: 1.5,
        min_gap_m: 2.5,
        max_accel_mps2: 1.2,
        comfort_decel_mps2: 4.0,
        delta: 4.0,
        length_m: 12.0,
    };
    /// Trucks: SUMO's default truck (7.1 m, accel 1.3 m/s², decel 4.0 m/s²), with a 1.5 s headway.
    pub const TRUCK: DriverParams = DriverParams {
        speed_factor: 1.0,
        time_headway_s: 1.5,
        min_gap_m: 2.5,
        max_accel_mps2: 1.3,
        comfort_decel_mps2: 4.0,
        delta: 4.0,
        length_m: 7.1,
    };
    /// Emergency vehicles on a call: a passenger car allowed 30 % over the limit with a shorter headway (an
    /// assumption for blue-light driving; set per scenario).
    pub const EMERGENCY: DriverParams = DriverParams {
        speed_factor: 1.3,
        time_headway_s: 0.8,
        min_gap_m: 2.5,
        max_accel_mps2: 2.6,
        comfort_decel_mps2: 4.5,
        delta: 4.0,
        length_m: 6.5,
    };

    /// IDM acceleration (m/s²) at speed `v` (m/s) under speed limit `limit_mps`, behind a leader `gap_m`
    /// ahead (bumper to bumper) driving at `v_lead`; `None` for a free road.
    pub fn accel(&self, v: f64, limit_mps: f64, leader: Option<(f64, f64)>) -> f64 {
        let v0 = (self.speed_factor * limit_mps).max(0.1);
        let x = v / v0;
        // δ = 4 (the usual choice) without a `powf`: the car-following hot path.
        let free = 1.0 - if self.delta == 4.0 { (x * x) * (x * x) } else { x.powf(self.delta) };
        match leader {
            None => self.max_accel_mps2 * free,
            Some((gap_m, v_lead)) => {
                let dv = v - v_lead;
                let s_star = self.min_gap_m
                    + (v * self.time_headway_s
                        + v * dv / (2.0 * (self.max_accel_mps2 * self.comfort_decel_mps2).sqrt()))
                    .max(0.0);
                let s = gap_m.max(0.01);
                self.max_accel_mps2 * (free - (s_star / s).powi(2))
            }
        }
    }
}

/// Advances speed and position over `dt_s` with acceleration `a` (ballistic update, no reversing):
/// returns (new speed m/s, distance travelled m).
pub fn ballistic(v: f64, a: f64, dt_s: f64) -> (f64, f64) {
    let v_new = v + a * dt_s;
    if v_new >= 0.0 {
        (v_new, v * dt_s + 0.5 * a * dt_s * dt_s)
    } else {
        // Stops within the step: travels v²/(2|a|) and stands.
        (0.0, -0.5 * v * v / a)
    }
}

/// Parameters of MOBIL.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobilParams {
    /// Politeness p: weight of the followers' disadvantage: 0.2 (Kesting et al. 2007 use 0–0.5).
    pub politeness: f64,
    /// Threshold Δa_th (m/s²) the net advantage must exceed: 0.1 (Kesting et al. 2007).
    pub threshold_mps2: f64,
    /// Safe deceleration b_safe (m/s²) no new follower may be forced to exceed: 4 (Kesting et al. 2007).
    pub safe_decel_mps2: f64,
    /// Bias towards the lane the route needs (m/s²), added to the incentive of changes towards it.
    pub route_bias_mps2: f64,
}

impl Default for MobilParams {
    fn default() -> Self {
        MobilParams { politeness: 0.2, threshold_mps2: 0.1, safe_decel_mps2: 4.0, route_bias_mps2: 0.0 }
    }
}

/// The accelerations MOBIL weighs for one candidate change, each computed with the IDM: the changer now
/// and after, the old follower now and after (when the changer has left), the new follower now and after.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LaneChangeAccels {
    /// Changer: in its lane now, and in the target lane.
    pub own: (f64, f64),
    /// Follower in the current lane: now, and once the changer has gone (0, 0 if none).
    pub old_follower: (f64, f64),
    /// Follower in the target lane: now, and with the changer in front (0, 0 if none).
    pub new_follower: (f64, f64),
}

impl MobilParams {
    /// Whether MOBIL changes lanes; `towards_route` adds the route bias.
    pub fn changes(&self, a: &LaneChangeAccels, towards_route: bool) -> bool {
        if a.new_follower.1 < -self.safe_decel_mps2 {
            return false;
        }
        let own = a.own.1 - a.own.0;
        let others = (a.new_follower.1 - a.new_follower.0) + (a.old_follower.1 - a.old_follower.0);
        let bias = if towards_route { self.route_bias_mps2 } else { 0.0 };
        own + self.politeness * others + bias > self.threshold_mps2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue of `n` cars standing at a red light turns green: the times their fronts cross the stop line.
    fn discharge(params: DriverParams, limit_mps: f64, n: usize, dt: f64) -> Vec<f64> {
        // Front positions (m, stop line at 0), standing at s₀ apart.
        let mut x: Vec<f64> = (0..n).map(|k| -(k as f64) * (params.length_m + params.min_gap_m) - 0.5).collect();
        let mut v = vec![0.0; n];
        let mut crossed = vec![f64::NAN; n];
        let mut t = 0.0;
        while crossed.iter().any(|c| c.is_nan()) && t < 600.0 {
            let acc: Vec<f64> = (0..n)
                .map(|k| {
                    let leader = (k > 0).then(|| (x[k - 1] - params.length_m - x[k], v[k - 1]));
                    params.accel(v[k], limit_mps, leader)
                })
                .collect();
            for k in 0..n {
                let (nv, dx) = ballistic(v[k], acc[k], dt);
                if x[k] < 0.0 && x[k] + dx >= 0.0 {
                    crossed[k] = t + dt * (-x[k] / dx);
                }
                v[k] = nv;
                x[k] += dx;
            }
            t += dt;
        }
        crossed
    }

    #[test]
    fn a_green_light_discharges_at_the_saturation_flow() {
        // Highway Capacity Manual base saturation flow: 1 900 pc/h/lane; the issue asks 1 800–2 000 at a
        // green light. Measured over the 5th to 25th cars (after the start-up lost time).
        let crossed = discharge(DriverParams::CAR, 50.0 / 3.6, 30, 0.1);
        let headway = (crossed[24] - crossed[4]) / 20.0;
        let flow = 3600.0 / headway;
        eprintln!("saturation flow {flow:.0} veh/h/lane (headway {headway:.2} s); first car after {:.1} s", crossed[0]);
        assert!((1800.0..=2000.0).contains(&flow), "{flow}");
        // Halving the time step changes the result by little (the ballistic scheme is consistent).
        let fine = discharge(DriverParams::CAR, 50.0 / 3.6, 30, 0.05);
        let fine_flow = 3600.0 * 20.0 / (fine[24] - fine[4]);
        assert!((fine_flow - flow).abs() < 0.02 * flow, "{fine_flow} vs {flow}");
    }

    #[test]
    fn a_follower_settles_at_the_desired_gap_and_never_collides() {
        // A leader at 10 m/s; a follower from far behind at the limit closes in and settles.
        let p = DriverParams::CAR;
        let (mut xl, mut xf, mut vf) = (200.0, 0.0, 50.0 / 3.6);
        let mut min_gap = f64::INFINITY;
        for _ in 0..3000 {
            let gap = xl - p.length_m - xf;
            min_gap = min_gap.min(gap);
            let a = p.accel(vf, 50.0 / 3.6, Some((gap, 10.0)));
            let (nv, dx) = ballistic(vf, a, 0.1);
            vf = nv;
            xf += dx;
            xl += 1.0;
        }
        let gap = xl - p.length_m - xf;
        // Equilibrium gap: s = s*(v) / √(1 − (v/v₀)^δ) at v = 10 m/s.
        let v0: f64 = 50.0 / 3.6;
        let s_eq = (p.min_gap_m + 10.0 * p.time_headway_s) / (1.0 - (10.0 / v0).powi(4)).sqrt();
        assert!((vf - 10.0).abs() < 1e-3 && (gap - s_eq).abs() < 0.05, "v {vf}, gap {gap} vs {s_eq}");
        assert!(min_gap > p.min_gap_m, "closest gap {min_gap}");
    }

    #[test]
    fn a_red_light_stops_a_car_before_the_line() {
        let p = DriverParams::CAR;
        let (mut x, mut v) = (-100.0, 50.0 / 3.6);
        for _ in 0..1200 {
            let a = p.accel(v, 50.0 / 3.6, Some((-x, 0.0)));
            let (nv, dx) = ballistic(v, a, 0.1);
            v = nv;
            x += dx;
        }
        assert!(v < 1e-6 && x < 0.0 && x > -p.min_gap_m - 0.5, "stands before the line: x {x}, v {v}");
    }

    #[test]
    fn mobil_changes_for_a_real_advantage_and_never_unsafely() {
        let m = MobilParams::default();
        // Stuck behind a slow leader, the target lane free: change.
        let gain = LaneChangeAccels { own: (-1.0, 0.8), old_follower: (0.0, 0.3), new_follower: (0.0, 0.0) };
        assert!(m.changes(&gain, false));
        // The same, but the new follower would have to brake at 5 m/s²: no.
        let unsafe_gap = LaneChangeAccels { new_follower: (0.2, -5.0), ..gain };
        assert!(!m.changes(&unsafe_gap, false));
        // A tiny advantage under the threshold: stay.
        let small = LaneChangeAccels { own: (0.0, 0.05), old_follower: (0.0, 0.0), new_follower: (0.0, 0.0) };
        assert!(!m.changes(&small, false));
        // A route bias makes a needed change happen.
        let needed = MobilParams { route_bias_mps2: 1.0, ..m };
        assert!(needed.changes(&small, true) && !needed.changes(&small, false));
    }
}
