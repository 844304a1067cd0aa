//! The floating-point type of the flood state: `f32` for speed (the default), `f64` where accounting must
//! close to round-off (validation). The solver is generic over [`Real`].

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub, SubAssign};

/// A float the solver can run in.
pub trait Real:
    Copy
    + Send
    + Sync
    + Debug
    + PartialOrd
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + 'static
{
    /// Converts from f64 (rounding to nearest).
    fn of(v: f64) -> Self;
    /// Converts to f64 (exact).
    fn f64(self) -> f64;
    /// Square root.
    fn sqrt(self) -> Self;
    /// `self` raised to a real power.
    fn powf(self, e: Self) -> Self;
    /// Cube root.
    fn cbrt(self) -> Self;
    /// Cube root of a positive normal number, without special cases so that loops over it vectorise.
    fn cbrt_pos(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// The larger of two values.
    fn max(self, o: Self) -> Self;
    /// The smaller of two values.
    fn min(self, o: Self) -> Self;
}

macro_rules! real {
    ($t:ty, $cbrt:expr, $cbrt_pos:expr) => {
        impl Real for $t {
            #[inline(always)]
            fn of(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline(always)]
            fn cbrt(self) -> Self {
                $cbrt(self)
            }
            #[inline(always)]
            fn cbrt_pos(self) -> Self {
                $cbrt_pos(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn max(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
            #[inline(always)]
            fn min(self, o: Self) -> Self {
                <$t>::min(self, o)
            }
        }
    };
}

/// Cube root for f32 in a few nanoseconds: an exponent-thirding bit estimate (within 4%) refined by two
/// Newton steps y ← (2y + x/y²)/3, relative error below 2·10⁻⁶ for normal positive x (checked in the tests);
/// libm's `cbrtf` costs several times more and dominated the solver's friction term. Non-positive or
/// subnormal inputs fall back to libm.
#[inline(always)]
fn fast_cbrt_f32(x: f32) -> f32 {
    if x.is_nan() || x < f32::MIN_POSITIVE || x.is_infinite() {
        return x.cbrt();
    }
    cbrt_pos_f32(x)
}

/// The estimate and Newton steps of [`fast_cbrt_f32`] alone, for positive normal `x`.
#[inline(always)]
fn cbrt_pos_f32(x: f32) -> f32 {
    let mut y = f32::from_bits(x.to_bits() / 3 + 709_921_077);
    y = (2.0 * y + x / (y * y)) * (1.0 / 3.0);
    y = (2.0 * y + x / (y * y)) * (1.0 / 3.0);
    y
}

real!(f32, fast_cbrt_f32, cbrt_pos_f32);
real!(f64, f64::cbrt, f64::cbrt);

#[cfg(test)]
mod tests {
    #[test]
    fn fast_cbrt_is_accurate() {
        let mut worst: f64 = 0.0;
        let mut x = 1e-6f32;
        while x < 1e4 {
            let exact = (x as f64).cbrt();
            worst = worst.max(((super::fast_cbrt_f32(x) as f64) - exact).abs() / exact);
            x *= 1.0137;
        }
        assert!(worst < 2e-6, "worst relative error {worst}");
        assert_eq!(super::fast_cbrt_f32(0.0), 0.0);
        assert_eq!(super::fast_cbrt_f32(-8.0), -2.0);
    }
}
