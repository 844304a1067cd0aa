//! Which vector instructions the power-flow kernels may use on this CPU.
//!
//! The hot loops of a solve (the block elimination with the forward substitution fused into it, the back
//! substitution, the current injections I = Y·V) work on 2×2 blocks and complex numbers of f64: four and
//! two lanes. Built for the baseline x86-64 they get 128-bit SSE2 vectors; where the CPU has AVX2 a second
//! build of each loop (`#[target_feature(enable = "avx2")]` around the same `#[inline(always)]` body, called
//! after [`has_avx2`]), holds a whole 2×2 block in one 256-bit register and needs fewer instructions. Both builds do the same IEEE
//! operations in the same order (Rust never fuses a multiply and an add unless told to), so their answers
//! are bit-identical: the choice changes speed, never results.

/// Whether this CPU runs the AVX2 builds of the power-flow loops (false off x86-64). The answer is cached
/// by the standard library after the first call.
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// For the tests that compare a loop's two builds: whether the AVX2 build can run here; if not, says so on
/// stderr (only the baseline build exists on this CPU, and there is nothing to compare).
#[cfg(test)]
pub(crate) fn avx2_build_runs_here() -> bool {
    let runs = has_avx2();
    if !runs {
        eprintln!("this CPU has no AVX2: only the baseline build runs here");
    }
    runs
}
