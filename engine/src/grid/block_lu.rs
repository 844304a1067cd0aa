//! Sparse LU of matrices made of 2×2 blocks, refactorised in place: the power-flow Jacobian bus by bus.
//!
//! A power-flow Jacobian has, for each pair of connected buses, the four derivatives of the active and
//! reactive mismatches (P, Q) of one bus by the angle and magnitude (θ, |V|) of the other. Taken as one 2×2
//! block per bus pair, its pattern is the admittance matrix's, four times smaller than the scalar pattern,
//! and the factorisation touches one index per four values: block sparse elimination (as in circuit and
//! power-system solvers since W. F. Tinney and J. W. Walker 1967, "Direct solutions of sparse network
//! equations by optimally ordered triangular factorization", Proc. IEEE 55(11), who order and factorise
//! the Jacobian in 2×2 blocks).
//!
//! The order and the patterns of L and U come from the same symmetric analysis as
//! [`super::sparse_lu::RefactorLu`]'s (approximate minimum degree on the block pattern, pivots on the
//! diagonal blocks), and each factorisation only recomputes values, left-looking by block column. A
//! diagonal block is inverted (2×2, explicitly); it is accepted while no block of L exceeds
//! 1/[`PIVOT_TOLERANCE`] in any entry, the threshold test of KLU taken block-wise. When a diagonal block
//! fails it (or is singular), the matrix is handed to [`RefactorLu`] as a scalar matrix, whose partial
//! pivoting takes over from then on.

use super::sparse_lu::{diagonal_pivots, DiagonalPivots, LuError, RefactorLu, PIVOT_TOLERANCE};
use glam::{DMat2, DVec2};
use std::ops::Range;

/// The blocks of a matrix to factorise, by position in [`BlockLu::entry_order`]. Made on demand, so that a
/// caller's blocks (the power-flow Jacobian's) go straight into the elimination, never through memory.
pub trait BlockSource {
    /// The block at position `q`.
    fn block(&self, q: usize) -> DMat2;

    /// Writes the blocks at `positions` (one block column of A, in order) into the work column `x`, the
    /// block at position q into `x[rows[q − positions.start]]`. The elimination takes its blocks this way,
    /// the scalar fallback by [`BlockSource::block`]; a source with work shared by a column's blocks
    /// overrides it to do that work once, and must write exactly what `block` gives.
    #[inline(always)]
    fn scatter_column(&self, positions: Range<usize>, rows: &[u32], x: &mut [DMat2]) {
        for (q, &p) in positions.zip(rows) {
            x[p as usize] = self.block(q);
        }
    }
}

/// Blocks from a function of the position.
impl<F: Fn(usize) -> DMat2> BlockSource for F {
    #[inline(always)]
    fn block(&self, q: usize) -> DMat2 {
        self(q)
    }
}

/// The fixed part of a [`BlockLu`]: A's pattern, the pivot order, and the patterns of L and U.
#[derive(Debug)]
struct Pattern {
    /// Blocks per side.
    n: usize,
    /// The matrix's block pattern, compressed sparse columns.
    col_start: Vec<usize>,
    row_idx: Vec<usize>,
    /// The order of the values given to a factorisation: A's columns in pivot order, each as in the
    /// pattern. Position q holds the block of pattern entry `entry_order[q]`; pivot j's column is
    /// `value_start[j]..value_start[j + 1]`, and `pivot_row[q]` is position q's row as a pivot.
    entry_order: Vec<usize>,
    value_start: Vec<usize>,
    pivot_row: Vec<u32>,
    /// Pivot `j` is block row and column `perm[j]` of A.
    perm: Vec<usize>,
    /// Strictly lower blocks of L by block column (unit diagonal blocks implied), rows as pivot positions.
    l_start: Vec<usize>,
    l_row: Vec<u32>,
    /// Strictly upper blocks of U by block column, rows ascending (a topological order).
    u_start: Vec<usize>,
    u_row: Vec<u32>,
}

/// The values of the factors: blocks of L and U (in their patterns' order) and the inverses of U's
/// diagonal blocks.
#[derive(Debug)]
struct Factors {
    l: Vec<DMat2>,
    u: Vec<DMat2>,
    d_inv: Vec<DMat2>,
}

/// LU factors P·A·Pᵀ = L·U of a sparse matrix of 2×2 blocks with a fixed, structurally symmetric pattern.
#[derive(Debug)]
pub struct BlockLu {
    pattern: Pattern,
    factors: Factors,
    /// Dense work column (zero between uses).
    work: Vec<DMat2>,
    /// Dense work vector of the solves, in pivot order (overwritten by each solve).
    work_vec: Vec<DVec2>,
    /// The scalar factorisation that took over after a diagonal block failed.
    scalar: Option<ScalarFallback>,
}

/// The scalar LU that takes over from [`BlockLu`], and its buffers (kept, so that a factorisation or a solve
/// allocates nothing).
#[derive(Debug)]
struct ScalarFallback {
    lu: RefactorLu,
    /// The blocks in the pattern's order, and the scalar values of [`scalar_matrix`]'s pattern.
    blocks: Vec<DMat2>,
    values: Vec<f64>,
    /// A right-hand side as scalars.
    rhs: Vec<f64>,
}

impl BlockLu {
    /// Prepares the factorisation of matrices of n×n blocks with the block pattern `col_start`/`row_idx`
    /// (compressed sparse columns, rows sorted and unique within each column, every diagonal block present).
    pub fn new(n: usize, col_start: Vec<usize>, row_idx: Vec<usize>) -> Result<BlockLu, LuError> {
        let DiagonalPivots { perm, perm_inv, l_start, l_row, u_start, u_row } =
            diagonal_pivots(n, &col_start, &row_idx)?;
        let mut value_start = vec![0];
        let mut entry_order = Vec::with_capacity(row_idx.len());
        for &c in &perm {
            entry_order.extend(col_start[c]..col_start[c + 1]);
            value_start.push(entry_order.len());
        }
        let pivot_row = entry_order.iter().map(|&e| perm_inv[row_idx[e]] as u32).collect();
        Ok(BlockLu {
            factors: Factors {
                l: vec![DMat2::ZERO; l_row.len()],
                u: vec![DMat2::ZERO; u_row.len()],
                d_inv: vec![DMat2::ZERO; n],
            },
            work: vec![DMat2::ZERO; n],
            work_vec: vec![DVec2::ZERO; n],
            scalar: None,
            pattern: Pattern {
                n,
                col_start,
                row_idx,
                entry_order,
                value_start,
                pivot_row,
                perm,
                l_start,
                l_row,
                u_start,
                u_row,
            },
        })
    }

    /// Whether the scalar factorisation with partial pivoting has taken over (a diagonal block failed).
    pub fn is_scalar(&self) -> bool {
        self.scalar.is_some()
    }

    /// The order in which [`BlockLu::factorise`] takes the blocks: position q holds the block of pattern
    /// entry `entry_order()[q]` (the pattern's columns in pivot order, so that a factorisation reads them
    /// in sequence).
    pub fn entry_order(&self) -> &[usize] {
        &self.pattern.entry_order
    }

    /// Factorises the matrix whose block at position q of [`BlockLu::entry_order`] is `block(q)`.
    pub fn factorise(&mut self, block: impl BlockSource) -> Result<(), LuError> {
        if self.scalar.is_none() && self.pattern.eliminate(&mut self.factors, &mut self.work, &block, &mut []) {
            return Ok(());
        }
        self.factorise_scalar(&block)
    }

    /// Factorises like [`BlockLu::factorise`] and solves A·x = b in place (`b` becomes x): the forward
    /// substitution runs inside the elimination, each block column of L applied while it is at hand.
    pub fn factorise_solve(&mut self, block: impl BlockSource, b: &mut [DVec2]) -> Result<(), LuError> {
        if self.scalar.is_none() {
            let p = &self.pattern;
            let y = &mut self.work_vec;
            for (j, &r) in p.perm.iter().enumerate() {
                y[j] = b[r];
            }
            if p.eliminate(&mut self.factors, &mut self.work, &block, y) {
                self.back_substitute(b);
                return Ok(());
            }
        }
        self.factorise_scalar(&block)?;
        self.solve_in_place(b);
        Ok(())
    }

    /// Hands the matrix to the scalar LU with partial pivoting (kept from then on) and factorises it there.
    fn factorise_scalar(&mut self, block: &impl BlockSource) -> Result<(), LuError> {
        let p = &self.pattern;
        let fallback = match &mut self.scalar {
            Some(s) => s,
            None => self.scalar.insert(scalar_matrix(p.n, &p.col_start, &p.row_idx)?),
        };
        for (q, &e) in p.entry_order.iter().enumerate() {
            fallback.blocks[e] = block.block(q);
        }
        scatter_scalar(p.n, &p.col_start, &p.row_idx, &fallback.blocks, &mut fallback.values);
        fallback.lu.factorise(&fallback.values)
    }

    /// Solves A·x = b in place (`b` becomes x, one 2-vector per block), with the factors of the last
    /// successful factorisation.
    pub fn solve_in_place(&mut self, b: &mut [DVec2]) {
        if let Some(fallback) = &mut self.scalar {
            let flat = &mut fallback.rhs;
            flat.clear();
            flat.extend(b.iter().flat_map(|v| [v.x, v.y]));
            fallback.lu.solve_in_place(flat);
            for (v, pair) in b.iter_mut().zip(flat.chunks_exact(2)) {
                *v = DVec2::new(pair[0], pair[1]);
            }
            return;
        }
        let p = &self.pattern;
        let y = &mut self.work_vec;
        for (j, &r) in p.perm.iter().enumerate() {
            y[j] = b[r];
        }
        for j in 0..p.n {
            let yj = y[j];
            let lower = p.l_start[j]..p.l_start[j + 1];
            for (&i, l) in p.l_row[lower.clone()].iter().zip(&self.factors.l[lower]) {
                y[i as usize] -= *l * yj;
            }
        }
        self.back_substitute(b);
    }

    /// The backward substitution U·x = y of a solve, y in the work vector (pivot order), x into `b`, in AVX2
    /// where the CPU has it ([`super::cpu`]).
    fn back_substitute(&mut self, b: &mut [DVec2]) {
        #[cfg(target_arch = "x86_64")]
        if super::cpu::has_avx2() {
            // SAFETY: the CPU has AVX2 (checked on the line above), the one requirement of the call.
            return unsafe { self.back_substitute_avx2(b) };
        }
        self.back_substitute_any_cpu(b)
    }

    /// [`BlockLu::back_substitute_any_cpu`] compiled with AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn back_substitute_avx2(&mut self, b: &mut [DVec2]) {
        self.back_substitute_any_cpu(b)
    }

    /// The backward substitution, inlined into each of [`BlockLu::back_substitute`]'s builds.
    #[inline(always)]
    fn back_substitute_any_cpu(&mut self, b: &mut [DVec2]) {
        let p = &self.pattern;
        let y = &mut self.work_vec;
        for j in (0..p.n).rev() {
            let yj = self.factors.d_inv[j] * y[j];
            y[j] = yj;
            let upper = p.u_start[j]..p.u_start[j + 1];
            for (&k, u) in p.u_row[upper.clone()].iter().zip(&self.factors.u[upper]) {
                y[k as usize] -= *u * yj;
            }
        }
        for (j, &c) in p.perm.iter().enumerate() {
            b[c] = y[j];
        }
    }
}

impl Pattern {
    /// Eliminates left-looking with the kept pivots, writing the factors into `out`; false (factors
    /// invalid) if a diagonal block fails. `x` is a dense work column (left zero); `block` gives A's block
    /// columns ([`BlockSource::scatter_column`], positions in [`Pattern::entry_order`]). A non-empty `y` (a
    /// right-hand side in pivot order) is carried through the forward substitution L·y' = y on the way.
    ///
    /// Runs in AVX2 where the CPU has it ([`super::cpu`]).
    fn eliminate(&self, out: &mut Factors, x: &mut [DMat2], block: &impl BlockSource, y: &mut [DVec2]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if super::cpu::has_avx2() {
            // SAFETY: the CPU has AVX2 (checked on the line above), the one requirement of the call.
            return unsafe { self.eliminate_avx2(out, x, block, y) };
        }
        self.eliminate_any_cpu(out, x, block, y)
    }

    /// [`Pattern::eliminate_any_cpu`] compiled with AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn eliminate_avx2(&self, out: &mut Factors, x: &mut [DMat2], block: &impl BlockSource, y: &mut [DVec2]) -> bool {
        self.eliminate_any_cpu(out, x, block, y)
    }

    /// The elimination, inlined into each of [`Pattern::eliminate`]'s builds.
    #[inline(always)]
    fn eliminate_any_cpu(&self, out: &mut Factors, x: &mut [DMat2], block: &impl BlockSource, y: &mut [DVec2]) -> bool {
        let forward = !y.is_empty();
        for j in 0..self.n {
            let column = self.value_start[j]..self.value_start[j + 1];
            block.scatter_column(column.clone(), &self.pivot_row[column], x);
            // Apply the block columns of L that U's block column j names, in ascending (topological) order.
            let upper = self.u_start[j]..self.u_start[j + 1];
            for (&k, u_out) in self.u_row[upper.clone()].iter().zip(&mut out.u[upper]) {
                let k = k as usize;
                let u = std::mem::replace(&mut x[k], DMat2::ZERO);
                *u_out = u;
                let lower = self.l_start[k]..self.l_start[k + 1];
                for (&i, l) in self.l_row[lower.clone()].iter().zip(&out.l[lower]) {
                    x[i as usize] -= *l * u;
                }
            }
            let pivot = std::mem::replace(&mut x[j], DMat2::ZERO);
            let det = pivot.determinant();
            let mut usable = det != 0.0 && det.is_finite();
            let inverse = pivot.inverse();
            out.d_inv[j] = inverse;
            let lower = self.l_start[j]..self.l_start[j + 1];
            // The largest |entry| of each row of the column's L blocks, kept by compares and selects: an entry
            // that is NaN compares false and is passed over (see below).
            let mut largest = DVec2::ZERO;
            let yj = if forward { y[j] } else { DVec2::ZERO };
            for (&i, l_out) in self.l_row[lower.clone()].iter().zip(&mut out.l[lower]) {
                let i = i as usize;
                let l = std::mem::replace(&mut x[i], DMat2::ZERO) * inverse;
                let size = l.abs();
                largest = DVec2::select(size.x_axis.cmpgt(largest), size.x_axis, largest);
                largest = DVec2::select(size.y_axis.cmpgt(largest), size.y_axis, largest);
                if forward {
                    y[i] -= l * yj;
                }
                *l_out = l;
            }
            // A NaN in L passes here but reaches a later pivot, whose determinant is then NaN.
            usable &= largest.max_element() * PIVOT_TOLERANCE <= 1.0;
            if !usable {
                x.fill(DMat2::ZERO);
                return false;
            }
        }
        true
    }
}

/// The scalar pattern of a block pattern (block (r, c) becomes rows 2r, 2r+1 of columns 2c, 2c+1), its
/// [`RefactorLu`], and room for its values.
fn scalar_matrix(n: usize, col_start: &[usize], row_idx: &[usize]) -> Result<ScalarFallback, LuError> {
    let (mut start, mut rows) = (vec![0], Vec::with_capacity(4 * row_idx.len()));
    for c in 0..n {
        for _ in 0..2 {
            rows.extend(row_idx[col_start[c]..col_start[c + 1]].iter().flat_map(|&r| [2 * r, 2 * r + 1]));
            start.push(rows.len());
        }
    }
    let len = rows.len();
    Ok(ScalarFallback {
        lu: RefactorLu::new(2 * n, start, rows)?,
        blocks: vec![DMat2::ZERO; row_idx.len()],
        values: vec![0.0; len],
        rhs: Vec::with_capacity(2 * n),
    })
}

/// Writes the blocks `values` into the scalar pattern of [`scalar_matrix`].
fn scatter_scalar(n: usize, col_start: &[usize], row_idx: &[usize], values: &[DMat2], out: &mut [f64]) {
    let mut q = 0;
    for c in 0..n {
        let blocks = &values[col_start[c]..col_start[c + 1]];
        for side in 0..2 {
            for block in blocks {
                let column = block.col(side);
                out[q] = column.x;
                out[q + 1] = column.y;
                q += 2;
            }
        }
    }
    debug_assert_eq!(q, 4 * row_idx.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random matrix of n×n blocks (diagonal blocks plus `extra` off-diagonal blocks per block column,
    /// mirrored so the pattern is symmetric), as dense scalar rows, its block pattern and block values.
    #[allow(clippy::needless_range_loop)] // block column j writes to random rows: an index reads best
    fn random_blocks(n: usize, extra: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<usize>, Vec<usize>, Vec<DMat2>) {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        let mut present = vec![vec![false; n]; n];
        for j in 0..n {
            present[j][j] = true;
            for _ in 0..extra {
                let i = (next() * n as f64) as usize % n;
                present[i][j] = true;
                present[j][i] = true;
            }
        }
        let mut dense = vec![vec![0.0; 2 * n]; 2 * n];
        let (mut start, mut rows, mut values) = (vec![0], Vec::new(), Vec::new());
        for j in 0..n {
            for i in (0..n).filter(|&i| present[i][j]) {
                let mut block = [0.0; 4];
                for (e, v) in block.iter_mut().enumerate() {
                    *v = next() * 2.0 - 1.0 + if i == j && e % 3 == 0 { 4.0 } else { 0.0 };
                    dense[2 * i + e % 2][2 * j + e / 2] = *v;
                }
                rows.push(i);
                values.push(DMat2::from_cols_array(&block));
            }
            start.push(rows.len());
        }
        (dense, start, rows, values)
    }

    fn residual(dense: &[Vec<f64>], x: &[DVec2], b: &[DVec2]) -> f64 {
        let flat = |v: &[DVec2]| v.iter().flat_map(|v| [v.x, v.y]).collect::<Vec<f64>>();
        let (x, b) = (flat(x), flat(b));
        dense
            .iter()
            .zip(&b)
            .map(|(row, bi)| (row.iter().zip(&x).map(|(a, x)| a * x).sum::<f64>() - bi).abs())
            .fold(0.0, f64::max)
    }

    /// Blocks given in the pattern's order, taken in the order the factorisation asks for them.
    fn in_order<'a>(lu: &BlockLu, values: &'a [DMat2]) -> impl Fn(usize) -> DMat2 + 'a {
        let order = lu.entry_order().to_vec();
        move |q| values[order[q]]
    }

    fn rhs(n: usize) -> Vec<DVec2> {
        (0..n).map(|i| DVec2::new(i as f64 - 3.0, 1.0 / (i as f64 + 1.0))).collect()
    }

    #[test]
    fn block_factors_solve_a_changed_matrix_of_the_same_pattern() {
        let n = 80;
        let (dense, start, rows, mut values) = random_blocks(n, 3, 7);
        let mut lu = BlockLu::new(n, start.clone(), rows.clone()).unwrap();
        for round in 0..2 {
            // Round 0 factorises and then solves; round 1 solves inside the factorisation.
            let b = rhs(n);
            let mut x = b.clone();
            if round == 0 {
                lu.factorise(in_order(&lu, &values)).unwrap();
                lu.solve_in_place(&mut x);
            } else {
                lu.factorise_solve(in_order(&lu, &values), &mut x).unwrap();
            }
            assert!(!lu.is_scalar(), "diagonally dominant blocks keep the block pivots");
            let mut dense = dense.clone();
            if round == 1 {
                // The second round's values are the first's scaled by 1.5 column block by column block.
                dense.iter_mut().for_each(|row| row.iter_mut().for_each(|a| *a *= 1.5));
            }
            assert!(residual(&dense, &x, &b) < 1e-10, "round {round}: residual {}", residual(&dense, &x, &b));
            values.iter_mut().for_each(|v| *v *= 1.5);
        }
    }

    #[test]
    fn a_failing_diagonal_block_hands_over_to_scalar_pivoting() {
        let n = 40;
        let (mut dense, start, rows, mut values) = random_blocks(n, 3, 11);
        // Zero diagonal blocks: the first pivot is singular whatever the order, so only partial pivoting
        // across blocks can factorise the matrix.
        for j in 0..n {
            let diagonal = (start[j]..start[j + 1]).find(|&e| rows[e] == j).unwrap();
            values[diagonal] = DMat2::ZERO;
            for row in &mut dense[2 * j..2 * j + 2] {
                row[2 * j..2 * j + 2].fill(0.0);
            }
        }
        let mut lu = BlockLu::new(n, start.clone(), rows.clone()).unwrap();
        lu.factorise(in_order(&lu, &values)).unwrap();
        assert!(lu.is_scalar());
        let b = rhs(n);
        let mut x = b.clone();
        lu.solve_in_place(&mut x);
        assert!(residual(&dense, &x, &b) < 1e-9, "residual {}", residual(&dense, &x, &b));
        // Solving inside the factorisation: the block elimination fails part-way, the scalar LU starts
        // again from the untouched right-hand side.
        let mut lu = BlockLu::new(n, start, rows).unwrap();
        let mut x = b.clone();
        lu.factorise_solve(in_order(&lu, &values), &mut x).unwrap();
        assert!(lu.is_scalar());
        assert!(residual(&dense, &x, &b) < 1e-9, "residual {}", residual(&dense, &x, &b));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_builds_of_the_elimination_and_back_substitution_are_bit_identical() {
        if !crate::grid::cpu::avx2_build_runs_here() {
            return;
        }
        let n = 120;
        let (_, start, rows, values) = random_blocks(n, 4, 23);
        let bits = |m: &[DMat2]| m.iter().flat_map(|b| b.to_cols_array().map(f64::to_bits)).collect::<Vec<u64>>();
        let vector_bits = |v: &[DVec2]| v.iter().flat_map(|v| [v.x.to_bits(), v.y.to_bits()]).collect::<Vec<u64>>();
        let run = |avx2: bool| {
            let mut lu = BlockLu::new(n, start.clone(), rows.clone()).unwrap();
            let block = in_order(&lu, &values);
            // The elimination with the forward substitution of a right-hand side (pivot order) fused in.
            let mut y = rhs(n);
            let ok = if avx2 {
                // SAFETY: the CPU has AVX2 (checked above).
                unsafe { lu.pattern.eliminate_avx2(&mut lu.factors, &mut lu.work, &block, &mut y) }
            } else {
                lu.pattern.eliminate_any_cpu(&mut lu.factors, &mut lu.work, &block, &mut y)
            };
            assert!(ok);
            let forward = vector_bits(&y);
            lu.work_vec = y;
            let mut x = vec![DVec2::ZERO; n];
            if avx2 {
                // SAFETY: as above.
                unsafe { lu.back_substitute_avx2(&mut x) }
            } else {
                lu.back_substitute_any_cpu(&mut x)
            }
            let f = &lu.factors;
            (bits(&f.l), bits(&f.u), bits(&f.d_inv), forward, vector_bits(&x))
        };
        let (avx2, baseline) = (run(true), run(false));
        assert!(avx2.0 == baseline.0 && avx2.1 == baseline.1 && avx2.2 == baseline.2, "factors differ");
        assert!(avx2.3 == baseline.3, "forward substitutions differ");
        assert!(avx2.4 == baseline.4, "back substitutions differ");
    }

    #[test]
    fn a_singular_block_matrix_is_an_error() {
        let n = 3;
        let start = vec![0, 1, 2, 3];
        let rows = vec![0, 1, 2];
        let values = vec![DMat2::IDENTITY, DMat2::from_cols_array(&[1.0, 2.0, 2.0, 4.0]), DMat2::IDENTITY];
        let mut lu = BlockLu::new(n, start, rows).unwrap();
        assert!(lu.factorise(in_order(&lu, &values)).is_err());
    }
}
