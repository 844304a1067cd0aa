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
    /// Absolute value.
    fn abs(self) -> Self;
    /// The larger of two values.
    fn max(self, o: Self) -> Self;
    /// The smaller of two values.
    fn min(self, o: Self) -> Self;
}

macro_rules! real {
    ($t:ty) => {
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
                <$t>::cbrt(self)
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

real!(f32);
real!(f64);
