//! Unit phasors e^{jθ}: the cosine and sine of bus voltage angles, which Newton–Raphson needs for every bus
//! at every iteration.
//!
//! The library `sin_cos` takes any angle, with a general argument reduction and a call per angle. Power-flow
//! angles are a few radians at most, so [`unit_phasor`] reduces the angle by multiples of π/2 with π/2 held
//! in three parts (W. J. Cody and W. Waite 1980, *Software Manual for the Elementary Functions*, ch. 8:
//! each part times the multiple is exact or nearly so), sums the Taylor series of cos and sin on |r| ≤ π/4
//! by Horner's rule, and inlines into the caller's loop; angles beyond [`REDUCTION_LIMIT_RAD`] go to the
//! library.

use num_complex::Complex64;
use std::f64::consts::{FRAC_2_PI, FRAC_PI_2};

/// The largest |θ| (rad) reduced here: below it the multiple k of π/2 has at most 17 bits, so k times the
/// leading part of π/2 (26 significant bits) is exact.
pub const REDUCTION_LIMIT_RAD: f64 = 1.0e5;

/// Bits of `FRAC_PI_2`'s mantissa cleared to make the leading part of π/2.
const LEADING_PART_CLEARED_BITS: u32 = 27;

/// π/2 = [`PI_2_LEADING`] + [`PI_2_MIDDLE`] + [`PI_2_TRAILING`]: the f64 nearest π/2 split into a leading
/// part with its low mantissa bits cleared and the (exact) rest, plus what that f64 misses of π/2
/// (π/2 − fl(π/2) = 6.123233995736766e-17, half of the well-known π − fl(π)).
const PI_2_LEADING: f64 = f64::from_bits(FRAC_PI_2.to_bits() & !((1u64 << LEADING_PART_CLEARED_BITS) - 1));
const PI_2_MIDDLE: f64 = FRAC_PI_2 - PI_2_LEADING;
const PI_2_TRAILING: f64 = 6.123_233_995_736_766e-17;

/// 1.5·2⁵²: a float of magnitude below 2⁵¹ added to it is rounded to an integer (to nearest, ties even),
/// which taking it away again leaves exact.
const ROUNDING_SHIFT: f64 = 6_755_399_441_055_744.0;

/// Terms of the series: cos to r¹⁸ and sin to r¹⁹. On |r| ≤ π/4 the first terms left out, r²⁰/20! and
/// r²¹/21!, are below 4·10⁻²¹, far under an f64's resolution at 1.
const SERIES_TERMS: usize = 20;

/// 1/k! for k = 0, 1, …, N − 1.
const fn inverse_factorials<const N: usize>() -> [f64; N] {
    let mut out = [1.0; N];
    let mut k = 1;
    while k < N {
        out[k] = out[k - 1] / k as f64;
        k += 1;
    }
    out
}

/// e^{jθ} = cos θ + j·sin θ (θ in rad), within 4 ε (absolute) of the library's `sin_cos` (measured over
/// ±34 rad in the tests).
#[inline]
pub fn unit_phasor(theta: f64) -> Complex64 {
    const C: [f64; SERIES_TERMS] = inverse_factorials::<SERIES_TERMS>();
    // NaN and infinities too.
    if theta.is_nan() || theta.abs() > REDUCTION_LIMIT_RAD {
        let (sin, cos) = theta.sin_cos();
        return Complex64::new(cos, sin);
    }
    // The nearest multiple of π/2 by the round-to-nearest of adding and taking away 1.5·2⁵² (a call to
    // `round` costs more than all the rest on x86-64 without SSE4.1).
    let k = (theta * FRAC_2_PI + ROUNDING_SHIFT) - ROUNDING_SHIFT;
    let r = ((theta - k * PI_2_LEADING) - k * PI_2_MIDDLE) - k * PI_2_TRAILING;
    let r2 = r * r;
    // Horner from the highest term: cos r = Σ (−1)^i r^{2i}/(2i)!, sin r = r·Σ (−1)^i r^{2i}/(2i+1)!.
    let (mut cos, mut sin) = (C[SERIES_TERMS - 2], C[SERIES_TERMS - 1]);
    for i in (0..SERIES_TERMS / 2 - 1).rev() {
        cos = C[2 * i] - r2 * cos;
        sin = C[2 * i + 1] - r2 * sin;
    }
    let sin = r * sin;
    // Back to θ = r + k·π/2: a quarter turn maps (cos, sin) to (−sin, cos).
    let quadrant = k as i64;
    let (c, s) = if quadrant & 1 == 0 { (cos, sin) } else { (-sin, cos) };
    let sign = if quadrant & 2 == 0 { 1.0 } else { -1.0 };
    Complex64::new(sign * c, sign * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_phasors_match_the_library_sin_and_cos() {
        let mut worst = 0.0f64;
        for k in -200_000..=200_000 {
            let theta = k as f64 * 1.7e-4; // ±34 rad, every quadrant many times
            let (sin, cos) = theta.sin_cos();
            let error = (unit_phasor(theta) - Complex64::new(cos, sin)).norm();
            worst = worst.max(error);
        }
        assert!(worst <= 4.0 * f64::EPSILON, "largest difference {worst:e}");
        // Quadrant boundaries and exact values.
        assert_eq!(unit_phasor(0.0), Complex64::new(1.0, 0.0));
        assert!((unit_phasor(FRAC_PI_2) - Complex64::new(0.0, 1.0)).norm() < 1e-16);
        assert!((unit_phasor(-3.0 * FRAC_PI_2) - Complex64::new(0.0, 1.0)).norm() < 1e-15);
    }

    #[test]
    fn angles_beyond_the_reduction_go_to_the_library() {
        for theta in [2.0e5, -7.5e7, f64::NAN, f64::INFINITY] {
            let (sin, cos) = theta.sin_cos();
            let z = unit_phasor(theta);
            assert!(z.re.to_bits() == cos.to_bits() && z.im.to_bits() == sin.to_bits(), "{theta}");
        }
    }
}
