//! Analytic solutions of the 1D shallow-water equations used to validate the solver: the dam break on a
//! dry bed (Ritter 1892) and on a wet bed (Stoker 1957), frictionless, horizontal bed, dam at x = 0 — and
//! the solver's run of the same problem ([`dam_break`]), shared by the tests and the ANUGA comparison.

use super::solver::{Boundaries, Boundary, FloodSolver};

/// The solver's dam break beside the analytic one.
#[derive(Clone, Debug)]
pub struct DamBreak {
    /// Cell centres (m, dam at 0).
    pub x_m: Vec<f64>,
    /// The solver's depths (m).
    pub depth_m: Vec<f64>,
    /// Ritter's (`h1` = 0) or Stoker's depths (m).
    pub exact_m: Vec<f64>,
    /// Solver steps taken.
    pub steps: u64,
}

impl DamBreak {
    /// Relative L1 depth error Σ|h − h_exact| / Σ h_exact.
    pub fn l1(&self) -> f64 {
        self.depth_m.iter().zip(&self.exact_m).map(|(a, b)| (a - b).abs()).sum::<f64>()
            / self.exact_m.iter().sum::<f64>()
    }
}

/// Runs the 1D dam break in the solver (f64): a frictionless horizontal channel `length_m` long and one
/// cell wide, closed ends, `h0` upstream of the dam at its middle and `h1` downstream, to time `t_s`.
pub fn dam_break(h0: f64, h1: f64, length_m: f64, dx_m: f64, t_s: f64) -> DamBreak {
    let nx = (length_m / dx_m).round() as usize;
    let g = super::solver::SolverParams::default().g;
    let mut s = FloodSolver::<f64>::new(
        nx,
        1,
        dx_m,
        &vec![0.0; nx],
        &vec![0.0; nx],
        vec![false; nx],
        Boundaries::all(Boundary::Closed),
    );
    let x_m: Vec<f64> = (0..nx).map(|i| (i as f64 + 0.5) * dx_m - length_m / 2.0).collect();
    s.set_depths(&x_m.iter().map(|&x| if x < 0.0 { h0 } else { h1 }).collect::<Vec<_>>());
    s.advance_to(t_s);
    let exact_m = x_m
        .iter()
        .map(|&x| if h1 > 0.0 { stoker_depth(h0, h1, g, x, t_s) } else { ritter_depth(h0, g, x, t_s) })
        .collect();
    DamBreak { depth_m: s.depths().to_vec(), exact_m, x_m, steps: s.steps }
}

/// Ritter's dry-bed dam break: depth (m) at `x` (m, dam at 0) and `t` (s) for an initial depth `h0` (m)
/// upstream and a dry bed downstream.
pub fn ritter_depth(h0: f64, g: f64, x: f64, t: f64) -> f64 {
    let c0 = (g * h0).sqrt();
    if t <= 0.0 {
        return if x < 0.0 { h0 } else { 0.0 };
    }
    if x <= -c0 * t {
        h0
    } else if x >= 2.0 * c0 * t {
        0.0
    } else {
        let c = (2.0 * c0 - x / t) / 3.0;
        c * c / g
    }
}

/// Stoker's wet-bed dam break: depth (m) at `x`, `t` for depths `h0` upstream and `h1` < `h0` downstream.
/// The intermediate state comes from the rarefaction invariant u = 2(c0 − c) and the shock relations
/// (bore moving at speed s into still water of depth h1), solved for s by bisection.
pub fn stoker_depth(h0: f64, h1: f64, g: f64, x: f64, t: f64) -> f64 {
    let (c0, c1) = ((g * h0).sqrt(), (g * h1).sqrt());
    let hm_of = |s: f64| 0.5 * h1 * ((1.0 + 8.0 * s * s / (g * h1)).sqrt() - 1.0);
    // f(s) = u from the rarefaction − u behind the shock; decreasing in s.
    let f = |s: f64| {
        let hm = hm_of(s);
        2.0 * (c0 - (g * hm).sqrt()) - s * (1.0 - h1 / hm)
    };
    let (mut lo, mut hi) = (c1, 2.0 * c0 + c1);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let s = 0.5 * (lo + hi);
    let hm = hm_of(s);
    let cm = (g * hm).sqrt();
    let um = 2.0 * (c0 - cm);
    if t <= 0.0 {
        return if x < 0.0 { h0 } else { h1 };
    }
    if x <= -c0 * t {
        h0
    } else if x <= (um - cm) * t {
        let c = (2.0 * c0 - x / t) / 3.0;
        c * c / g
    } else if x <= s * t {
        hm
    } else {
        h1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ritter_conserves_volume_and_matches_its_closed_form() {
        let (h0, g, t) = (10.0, 9.81, 20.0);
        // Volume between x = -L and +∞ stays h0·L for L beyond the rarefaction head.
        let l = 1000.0;
        let dx = 0.01;
        let v: f64 = (0..((l + 2.0 * 9.905 * t * 1.1) / dx) as usize)
            .map(|k| ritter_depth(h0, g, -l + k as f64 * dx, t) * dx)
            .sum();
        assert!((v - h0 * l).abs() / (h0 * l) < 1e-4, "{v}");
        assert!((ritter_depth(h0, g, 0.0, t) - 4.0 / 9.0 * h0).abs() < 1e-12, "depth at the dam is 4/9 h0");
    }

    #[test]
    fn stoker_tends_to_ritter_and_conserves_volume() {
        let (h0, g, t) = (10.0, 9.81, 20.0);
        assert!((stoker_depth(h0, 1e-9, g, 50.0, t) - ritter_depth(h0, g, 50.0, t)).abs() < 1e-3);
        let (l, dx, h1) = (1000.0, 0.01, 2.0);
        let n = (2.0 * l / dx) as usize;
        let v: f64 = (0..n).map(|k| stoker_depth(h0, h1, g, -l + k as f64 * dx, t) * dx).sum();
        assert!((v - (h0 + h1) * l).abs() / ((h0 + h1) * l) < 1e-4, "{v}");
    }
}
