//! Sparse LU with the pivot sequence kept between factorisations: the refactorisation of KLU (T. A. Davis
//! and E. Palamadai Natarajan 2010, "Algorithm 907: KLU, a direct sparse solver for circuit simulation
//! problems", ACM Trans. Math. Software 37(3)).
//!
//! Newton–Raphson factorises a Jacobian of fixed pattern at every iteration of every time step. As KLU
//! does, the pattern is ordered once by approximate minimum degree on A + Aᵀ (a power-flow Jacobian is
//! structurally symmetric) and the pivots are first taken on the diagonal, so that L and U have the
//! pattern of the Cholesky factor of that ordering (faer's AMD and symbolic Cholesky). Every factorisation
//! then only recomputes values: no graph search, no pivot search, no allocation. faer does not offer that
//! step, which is why this module exists; everything else is faer's.
//!
//! A pivot that is small against the rest of its column (below [`PIVOT_TOLERANCE`] times the column's
//! largest entry, KLU's default threshold) makes the refactorisation give up; faer then factorises afresh
//! with partial pivoting (left-looking Gilbert–Peierls), and its pivots and patterns are kept instead.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::sparse::linalg::cholesky::{
    factorize_symbolic_cholesky, CholeskySymbolicParams, SymbolicCholeskyRaw, SymmetricOrdering,
};
use faer::sparse::linalg::lu::simplicial::{
    factorize_simplicial_numeric_lu, factorize_simplicial_numeric_lu_scratch, SimplicialLu,
};
use faer::sparse::linalg::SupernodalThreshold;
use faer::sparse::{SparseColMatRef, SymbolicSparseColMatRef};
use faer::Side;

/// Smallest pivot accepted by a refactorisation, relative to the largest entry of its column of L (before
/// the division by the pivot): 0.001, KLU's default `tol`.
pub const PIVOT_TOLERANCE: f64 = 1e-3;

/// Why a matrix could not be factorised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct LuError(pub String);

/// LU factors P·A·Q = L·U of a square sparse matrix of fixed pattern, refactorised in place.
#[derive(Debug)]
pub struct RefactorLu {
    n: usize,
    /// The matrix's pattern, compressed sparse columns (values are passed in this order).
    col_start: Vec<usize>,
    row_idx: Vec<usize>,
    /// Column `j` of the factors is column `col_perm[j]` of A.
    col_perm: Vec<usize>,
    /// Pivot position of each row of A, and the row of A at each pivot position.
    pivot_of_row: Vec<usize>,
    row_at_pivot: Vec<usize>,
    /// Strictly lower part of L by column (unit diagonal implied), rows as pivot positions.
    l_start: Vec<usize>,
    l_row: Vec<u32>,
    l_val: Vec<f64>,
    /// Strictly upper part of U by column, rows ascending, and U's diagonal.
    u_start: Vec<usize>,
    u_row: Vec<u32>,
    u_val: Vec<f64>,
    u_diag: Vec<f64>,
    /// Dense work vector (zero between uses).
    work: Vec<f64>,
    /// Whether the pivots and patterns are usable.
    has_pivots: bool,
    /// Fresh factorisations with partial pivoting done (each time a kept pivot became too small).
    pub fresh_factorisations: usize,
}

impl RefactorLu {
    /// Prepares the factorisation of n×n matrices with the pattern `col_start`/`row_idx` (compressed sparse
    /// columns, rows sorted and unique within each column): computes the fill-reducing column order.
    pub fn new(n: usize, col_start: Vec<usize>, row_idx: Vec<usize>) -> Result<RefactorLu, LuError> {
        let DiagonalPivots { perm, perm_inv, l_start, l_row, u_start, u_row } =
            diagonal_pivots(n, &col_start, &row_idx)?;
        Ok(RefactorLu {
            n,
            col_start,
            row_idx,
            col_perm: perm.clone(),
            pivot_of_row: perm_inv,
            row_at_pivot: perm,
            l_val: vec![0.0; l_row.len()],
            l_start,
            l_row,
            u_val: vec![0.0; u_row.len()],
            u_start,
            u_row,
            u_diag: vec![0.0; n],
            work: vec![0.0; n],
            has_pivots: true,
            fresh_factorisations: 0,
        })
    }

    /// Number of nonzeros in L and U together (fill included, unit diagonal of L excluded).
    pub fn factor_nonzeros(&self) -> usize {
        self.l_row.len() + self.u_row.len() + self.n
    }

    /// Factorises the matrix with `values` (in the pattern's order): a refactorisation with the kept pivots
    /// when they exist and stay large enough, a fresh factorisation otherwise.
    pub fn factorise(&mut self, values: &[f64]) -> Result<(), LuError> {
        assert_eq!(values.len(), self.row_idx.len(), "values match the pattern");
        if self.has_pivots && self.refactorise(values) {
            return Ok(());
        }
        self.factorise_fresh(values)
    }

    /// Recomputes L and U with the kept pivots and patterns; false (factors invalid) if a pivot is too small.
    fn refactorise(&mut self, values: &[f64]) -> bool {
        let x = &mut self.work;
        for j in 0..self.n {
            let c = self.col_perm[j];
            let column = self.col_start[c]..self.col_start[c + 1];
            for (&r, &a) in self.row_idx[column.clone()].iter().zip(&values[column]) {
                x[self.pivot_of_row[r]] = a;
            }
            // Left-looking: apply the columns of L that U's column j names, in ascending (topological) order.
            let upper = self.u_start[j]..self.u_start[j + 1];
            for (&k, u_out) in self.u_row[upper.clone()].iter().zip(&mut self.u_val[upper]) {
                let k = k as usize;
                let u = x[k];
                x[k] = 0.0;
                *u_out = u;
                let lower = self.l_start[k]..self.l_start[k + 1];
                for (&i, &l) in self.l_row[lower.clone()].iter().zip(&self.l_val[lower]) {
                    x[i as usize] -= l * u;
                }
            }
            let pivot = x[j];
            x[j] = 0.0;
            self.u_diag[j] = pivot;
            let lower = self.l_start[j]..self.l_start[j + 1];
            let mut largest = 0.0f64;
            let inverse = 1.0 / pivot;
            for (&i, l_out) in self.l_row[lower.clone()].iter().zip(&mut self.l_val[lower]) {
                let i = i as usize;
                largest = largest.max(x[i].abs());
                *l_out = x[i] * inverse;
                x[i] = 0.0;
            }
            if !(pivot.abs() > 0.0 && pivot.is_finite()) || pivot.abs() < PIVOT_TOLERANCE * largest {
                x.iter_mut().for_each(|v| *v = 0.0);
                return false;
            }
        }
        true
    }

    /// A fresh factorisation by faer (partial pivoting), whose pivots and patterns are kept.
    fn factorise_fresh(&mut self, values: &[f64]) -> Result<(), LuError> {
        let n = self.n;
        let a = SparseColMatRef::new(
            SymbolicSparseColMatRef::new_checked(n, n, &self.col_start, None, &self.row_idx),
            values,
        );
        let inverse = {
            let mut inv = vec![0; n];
            for (j, &c) in self.col_perm.iter().enumerate() {
                inv[c] = j;
            }
            inv
        };
        let col_perm = faer::perm::PermRef::new_checked(&self.col_perm, &inverse, n);
        let mut lu = SimplicialLu::<usize, f64>::new();
        let mut buffer = MemBuffer::new(factorize_simplicial_numeric_lu_scratch::<usize, f64>(n, n));
        factorize_simplicial_numeric_lu(
            &mut self.row_at_pivot,
            &mut self.pivot_of_row,
            &mut lu,
            a,
            col_perm,
            MemStack::new(&mut buffer),
        )
        .map_err(|e| LuError(format!("{e:?}")))?;
        let (l, u) = (lu.l_factor_unsorted(), lu.u_factor_unsorted());
        (self.l_start, self.l_row, self.l_val) = (vec![0], Vec::new(), Vec::new());
        (self.u_start, self.u_row, self.u_val) = (vec![0], Vec::new(), Vec::new());
        for j in 0..n {
            for (&i, &v) in l.row_idx_of_col_raw(j).iter().zip(l.val_of_col(j)) {
                if i != j {
                    self.l_row.push(i as u32);
                    self.l_val.push(v);
                }
            }
            self.l_start.push(self.l_row.len());
            let mut column: Vec<(usize, f64)> =
                u.row_idx_of_col_raw(j).iter().zip(u.val_of_col(j)).map(|(&i, &v)| (i, v)).collect();
            column.sort_unstable_by_key(|e| e.0);
            for (i, v) in column {
                if i == j {
                    self.u_diag[j] = v;
                } else {
                    self.u_row.push(i as u32);
                    self.u_val.push(v);
                }
            }
            self.u_start.push(self.u_row.len());
        }
        self.fresh_factorisations += 1;

        if let Some(j) = self.u_diag.iter().position(|d| !(d.abs() > 0.0 && d.is_finite())) {
            self.has_pivots = false;
            return Err(LuError(format!("the matrix is numerically singular (zero pivot at step {j} of {n})")));
        }
        self.has_pivots = true;
        Ok(())
    }

    /// Solves A·x = b in place (`b` becomes x), with the factors of the last [`RefactorLu::factorise`].
    pub fn solve_in_place(&mut self, b: &mut [f64]) {
        let y = &mut self.work;
        for (p, &r) in self.row_at_pivot.iter().enumerate() {
            y[p] = b[r];
        }
        for j in 0..self.n {
            let yj = y[j];
            if yj != 0.0 {
                for f in self.l_start[j]..self.l_start[j + 1] {
                    y[self.l_row[f] as usize] -= self.l_val[f] * yj;
                }
            }
        }
        for j in (0..self.n).rev() {
            let yj = y[j] / self.u_diag[j];
            y[j] = yj;
            if yj != 0.0 {
                for e in self.u_start[j]..self.u_start[j + 1] {
                    y[self.u_row[e] as usize] -= self.u_val[e] * yj;
                }
            }
        }
        for (j, &c) in self.col_perm.iter().enumerate() {
            b[c] = y[j];
            y[j] = 0.0;
        }
    }
}

/// The symmetric analysis shared by [`RefactorLu`] and [`super::block_lu::BlockLu`]: a fill-reducing order
/// (approximate minimum degree on A + Aᵀ) and, for pivots taken on the diagonal in that order, the patterns
/// of L and U (those of the Cholesky factor of the reordered A + Aᵀ, and its transpose).
#[derive(Debug)]
pub(crate) struct DiagonalPivots {
    /// Pivot `j` is row and column `perm[j]` of A; `perm_inv` is the inverse.
    pub perm: Vec<usize>,
    pub perm_inv: Vec<usize>,
    /// Strictly lower part of L by column, rows as pivot positions (ascending).
    pub l_start: Vec<usize>,
    pub l_row: Vec<u32>,
    /// Strictly upper part of U by column, rows as pivot positions (ascending, a topological order).
    pub u_start: Vec<usize>,
    pub u_row: Vec<u32>,
}

/// Analyses the n×n pattern `col_start`/`row_idx` (compressed sparse columns) for diagonal pivots.
pub(crate) fn diagonal_pivots(n: usize, col_start: &[usize], row_idx: &[usize]) -> Result<DiagonalPivots, LuError> {
    if u32::try_from(n).is_err() {
        return Err(LuError(format!("{n} unknowns: more than the 32-bit indices of the factors hold")));
    }
    // The upper triangle of the pattern of A + Aᵀ, for the symmetric analysis.
    let mut upper: Vec<Vec<usize>> = vec![Vec::new(); n];
    for c in 0..n {
        for &r in &row_idx[col_start[c]..col_start[c + 1]] {
            upper[r.max(c)].push(r.min(c));
        }
    }
    let (mut sym_start, mut sym_row) = (vec![0], Vec::new());
    for mut column in upper {
        column.sort_unstable();
        column.dedup();
        sym_row.extend(column);
        sym_start.push(sym_row.len());
    }
    let pattern = SymbolicSparseColMatRef::new_checked(n, n, &sym_start, None, &sym_row);
    let params = CholeskySymbolicParams {
        supernodal_flop_ratio_threshold: SupernodalThreshold::FORCE_SIMPLICIAL,
        ..CholeskySymbolicParams::default()
    };
    let symbolic = factorize_symbolic_cholesky(pattern, Side::Upper, SymmetricOrdering::Amd, params)
        .map_err(|e| LuError(format!("{e:?}")))?;
    let (perm, perm_inv) = match symbolic.perm() {
        Some(p) => (p.arrays().0.to_vec(), p.arrays().1.to_vec()),
        None => ((0..n).collect(), (0..n).collect()),
    };
    let SymbolicCholeskyRaw::Simplicial(cholesky) = symbolic.raw() else {
        return Err(LuError("faer chose a supernodal analysis against the request".into()));
    };
    // Diagonal pivots: L takes the Cholesky factor's pattern, U its transpose (rows ascending).
    let factor = cholesky.factor();
    let (mut l_start, mut l_row) = (vec![0], Vec::new());
    let mut u_columns: Vec<Vec<u32>> = vec![Vec::new(); n];
    for j in 0..n {
        for &i in factor.row_idx_of_col_raw(j).iter().filter(|&&i| i != j) {
            l_row.push(i as u32);
            u_columns[i].push(j as u32);
        }
        l_start.push(l_row.len());
    }
    let (mut u_start, mut u_row) = (vec![0], Vec::new());
    for column in u_columns {
        u_row.extend(column);
        u_start.push(u_row.len());
    }
    Ok(DiagonalPivots { perm, perm_inv, l_start, l_row, u_start, u_row })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random sparse matrix (diagonal plus `extra` entries per column) as dense rows and its CSC pattern.
    #[allow(clippy::needless_range_loop)] // column j writes to random rows: an index reads best
    fn random_matrix(n: usize, extra: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<usize>, Vec<usize>) {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        let mut dense = vec![vec![0.0; n]; n];
        for j in 0..n {
            dense[j][j] = 1.0 + next();
            for _ in 0..extra {
                let i = (next() * n as f64) as usize % n;
                dense[i][j] = next() * 2.0 - 1.0;
            }
        }
        let (mut start, mut rows) = (vec![0], Vec::new());
        for j in 0..n {
            for (i, row) in dense.iter().enumerate() {
                if row[j] != 0.0 {
                    rows.push(i);
                }
            }
            start.push(rows.len());
        }
        (dense, start, rows)
    }

    fn values(dense: &[Vec<f64>], start: &[usize], rows: &[usize]) -> Vec<f64> {
        (0..dense.len()).flat_map(|j| rows[start[j]..start[j + 1]].iter().map(move |&i| dense[i][j])).collect()
    }

    fn residual(dense: &[Vec<f64>], x: &[f64], b: &[f64]) -> f64 {
        dense
            .iter()
            .zip(b)
            .map(|(row, bi)| (row.iter().zip(x).map(|(a, x)| a * x).sum::<f64>() - bi).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn refactorisation_solves_a_changed_matrix_of_the_same_pattern() {
        let n = 60;
        let (mut dense, start, rows) = random_matrix(n, 3, 7);
        let mut lu = RefactorLu::new(n, start.clone(), rows.clone()).unwrap();
        let b: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let mut fresh_after_first = 0;
        for round in 0..3 {
            lu.factorise(&values(&dense, &start, &rows)).unwrap();
            let mut x = b.clone();
            lu.solve_in_place(&mut x);
            assert!(residual(&dense, &x, &b) < 1e-10, "round {round}");
            if round == 0 {
                fresh_after_first = lu.fresh_factorisations;
            }
            // Perturb the values, not the pattern.
            for (j, row) in dense.iter_mut().enumerate() {
                row[j] *= 1.1;
            }
        }
        assert_eq!(lu.fresh_factorisations, fresh_after_first, "later rounds reuse the pivots");
    }

    #[test]
    fn a_vanishing_pivot_forces_fresh_pivots() {
        // [[a, 1], [1, a]]: with a = 2 the first pivot is a (in either column order); at a = 1e-9 it is
        // too small against the 1 below it, and the rows must swap.
        let (start, rows) = (vec![0, 2, 4], vec![0, 1, 0, 1]);
        let mut lu = RefactorLu::new(2, start, rows).unwrap();
        lu.factorise(&[2.0, 1.0, 1.0, 2.0]).unwrap();
        assert_eq!(lu.fresh_factorisations, 0, "diagonal pivots suffice");
        lu.factorise(&[1e-9, 1.0, 1.0, 1e-9]).unwrap();
        assert_eq!(lu.fresh_factorisations, 1);
        let mut x = vec![1.0, 2.0];
        lu.solve_in_place(&mut x);
        let dense = vec![vec![1e-9, 1.0], vec![1.0, 1e-9]];
        assert!(residual(&dense, &x, &[1.0, 2.0]) < 1e-12);
    }

    #[test]
    fn a_singular_matrix_is_an_error() {
        let (start, rows) = (vec![0, 2, 4], vec![0, 1, 0, 1]);
        let mut lu = RefactorLu::new(2, start, rows).unwrap();
        assert!(lu.factorise(&[1.0, 1.0, 1.0, 1.0]).is_err());
    }
}
