//! Analytic solutions of the 1D shallow-water equations used to validate the solver: the dam break on a
//! dry bed (Ritter 1892) and on a wet bed (Stoker 1957), frictionless, horizontal bed, dam at x = 0.

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
