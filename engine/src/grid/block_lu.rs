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

/// LU factors P·A·Pᵀ = L·U of a sparse matrix of 2×2 blocks with a fixed, structurally symmetric pattern.
#[derive(Debug)]
pub struct BlockLu {
    /// Blocks per side.
    n: usize,
    /// The matrix's block pattern, compressed sparse columns (values are passed in this order).
    col_start: Vec<usize>,
    row_idx: Vec<usize>,
    /// Pivot `j` is block row and column `perm[j]` of A; `perm_inv` is its inverse.
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    /// Strictly lower blocks of L by block column (unit diagonal blocks implied), rows as pivot positions.
    l_start: Vec<usize>,
    l_row: Vec<u32>,
    l_val: Vec<DMat2>,
    /// Strictly upper blocks of U by block column, rows ascending, and the inverses of U's diagonal blocks.
    u_start: Vec<usize>,
    u_row: Vec<u32>,
    u_val: Vec<DMat2>,
    d_inv: Vec<DMat2>,
    /// Dense work column (zero between uses).
    work: Vec<DMat2>,
    work_vec: Vec<DVec2>,
    /// The scalar factorisation that took over after a diagonal block failed, with the scalar values.
    scalar: Option<(RefactorLu, Vec<f64>)>,
}

impl BlockLu {
    /// Prepares the factorisation of matrices of n×n blocks with the block pattern `col_start`/`row_idx`
    /// (compressed sparse columns, rows sorted and unique within each column, every diagonal block present).
    pub fn new(n: usize, col_start: Vec<usize>, row_idx: Vec<usize>) -> Result<BlockLu, LuError> {
        let DiagonalPivots { perm, perm_inv, l_start, l_row, u_start, u_row } =
            diagonal_pivots(n, &col_start, &row_idx)?;
        Ok(BlockLu {
            n,
            col_start,
            row_idx,
            perm,
            perm_inv,
            l_val: vec![DMat2::ZERO; l_row.len()],
            l_start,
            l_row,
            u_val: vec![DMat2::ZERO; u_row.len()],
            u_start,
            u_row,
            d_inv: vec![DMat2::ZERO; n],
            work: vec![DMat2::ZERO; n],
            work_vec: vec![DVec2::ZERO; n],
            scalar: None,
        })
    }

    /// Whether the scalar factorisation with partial pivoting has taken over (a diagonal block failed).
    pub fn is_scalar(&self) -> bool {
        self.scalar.is_some()
    }

    /// Factorises the matrix with the blocks `values` (in the pattern's order).
    pub fn factorise(&mut self, values: &[DMat2]) -> Result<(), LuError> {
        assert_eq!(values.len(), self.row_idx.len(), "values match the pattern");
        if self.scalar.is_none() && self.factorise_blocks(values) {
            return Ok(());
        }
        let (lu, scalar_values) = match &mut self.scalar {
            Some(s) => s,
            None => self.scalar.insert(scalar_matrix(self.n, &self.col_start, &self.row_idx)?),
        };
        scatter_scalar(self.n, &self.col_start, &self.row_idx, values, scalar_values);
        lu.factorise(scalar_values)
    }

    /// Block elimination with the kept pivots; false (factors invalid) if a diagonal block fails.
    fn factorise_blocks(&mut self, values: &[DMat2]) -> bool {
        let x = &mut self.work;
        for j in 0..self.n {
            let c = self.perm[j];
            let column = self.col_start[c]..self.col_start[c + 1];
            for (&r, a) in self.row_idx[column.clone()].iter().zip(&values[column]) {
                x[self.perm_inv[r]] = *a;
            }
            // Left-looking: apply the block columns of L that U's block column j names, in ascending order.
            let upper = self.u_start[j]..self.u_start[j + 1];
            for (&k, u_out) in self.u_row[upper.clone()].iter().zip(&mut self.u_val[upper]) {
                let k = k as usize;
                let u = std::mem::replace(&mut x[k], DMat2::ZERO);
                *u_out = u;
                let lower = self.l_start[k]..self.l_start[k + 1];
                for (&i, l) in self.l_row[lower.clone()].iter().zip(&self.l_val[lower]) {
                    x[i as usize] -= *l * u;
                }
            }
            let pivot = std::mem::replace(&mut x[j], DMat2::ZERO);
            let det = pivot.determinant();
            let mut usable = det != 0.0 && det.is_finite();
            let inverse = pivot.inverse();
            self.d_inv[j] = inverse;
            let lower = self.l_start[j]..self.l_start[j + 1];
            let mut largest = 0.0f64;
            for (&i, l_out) in self.l_row[lower.clone()].iter().zip(&mut self.l_val[lower]) {
                let l = std::mem::replace(&mut x[i as usize], DMat2::ZERO) * inverse;
                largest = largest.max(l.abs().to_cols_array().into_iter().fold(0.0, f64::max));
                *l_out = l;
            }
            // NaN fails too.
            usable &= largest * PIVOT_TOLERANCE <= 1.0;
            if !usable {
                x.iter_mut().for_each(|v| *v = DMat2::ZERO);
                return false;
            }
        }
        true
    }

    /// Solves A·x = b in place (`b` becomes x, one 2-vector per block), with the factors of the last
    /// successful [`BlockLu::factorise`].
    pub fn solve_in_place(&mut self, b: &mut [DVec2]) {
        if let Some((lu, _)) = &mut self.scalar {
            let mut flat: Vec<f64> = b.iter().flat_map(|v| [v.x, v.y]).collect();
            lu.solve_in_place(&mut flat);
            for (v, pair) in b.iter_mut().zip(flat.chunks_exact(2)) {
                *v = DVec2::new(pair[0], pair[1]);
            }
            return;
        }
        let y = &mut self.work_vec;
        for (p, &r) in self.perm.iter().enumerate() {
            y[p] = b[r];
        }
        for j in 0..self.n {
            let yj = y[j];
            let lower = self.l_start[j]..self.l_start[j + 1];
            for (&i, l) in self.l_row[lower.clone()].iter().zip(&self.l_val[lower]) {
                y[i as usize] -= *l * yj;
            }
        }
        for j in (0..self.n).rev() {
            let yj = self.d_inv[j] * y[j];
            y[j] = yj;
            let upper = self.u_start[j]..self.u_start[j + 1];
            for (&k, u) in self.u_row[upper.clone()].iter().zip(&self.u_val[upper]) {
                y[k as usize] -= *u * yj;
            }
        }
        for (j, &c) in self.perm.iter().enumerate() {
            b[c] = std::mem::replace(&mut y[j], DVec2::ZERO);
        }
    }
}

/// The scalar pattern of a block pattern (block (r, c) becomes rows 2r, 2r+1 of columns 2c, 2c+1), its
/// [`RefactorLu`], and room for its values.
fn scalar_matrix(n: usize, col_start: &[usize], row_idx: &[usize]) -> Result<(RefactorLu, Vec<f64>), LuError> {
    let (mut start, mut rows) = (vec![0], Vec::with_capacity(4 * row_idx.len()));
    for c in 0..n {
        for _ in 0..2 {
            rows.extend(row_idx[col_start[c]..col_start[c + 1]].iter().flat_map(|&r| [2 * r, 2 * r + 1]));
            start.push(rows.len());
        }
    }
    let len = rows.len();
    Ok((RefactorLu::new(2 * n, start, rows)?, vec![0.0; len]))
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

    fn rhs(n: usize) -> Vec<DVec2> {
        (0..n).map(|i| DVec2::new(i as f64 - 3.0, 1.0 / (i as f64 + 1.0))).collect()
    }

    #[test]
    fn block_factors_solve_a_changed_matrix_of_the_same_pattern() {
        let n = 80;
        let (dense, start, rows, mut values) = random_blocks(n, 3, 7);
        let mut lu = BlockLu::new(n, start.clone(), rows.clone()).unwrap();
        for round in 0..2 {
            lu.factorise(&values).unwrap();
            assert!(!lu.is_scalar(), "diagonally dominant blocks keep the block pivots");
            let b = rhs(n);
            let mut x = b.clone();
            lu.solve_in_place(&mut x);
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
        let mut lu = BlockLu::new(n, start, rows).unwrap();
        lu.factorise(&values).unwrap();
        assert!(lu.is_scalar());
        let b = rhs(n);
        let mut x = b.clone();
        lu.solve_in_place(&mut x);
        assert!(residual(&dense, &x, &b) < 1e-9, "residual {}", residual(&dense, &x, &b));
    }

    #[test]
    fn a_singular_block_matrix_is_an_error() {
        let n = 3;
        let start = vec![0, 1, 2, 3];
        let rows = vec![0, 1, 2];
        let values = vec![DMat2::IDENTITY, DMat2::from_cols_array(&[1.0, 2.0, 2.0, 4.0]), DMat2::IDENTITY];
        let mut lu = BlockLu::new(n, start, rows).unwrap();
        assert!(lu.factorise(&values).is_err());
    }
}
