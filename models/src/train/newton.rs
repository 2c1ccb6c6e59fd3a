//! One Newton pass (loss, gradient and Hessian over the rows, in fixed chunks) and the
//! Newton system's solve (faer's dense Cholesky, sequential).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::{factor, solve};
use faer::{Mat, Par};

use super::set::TRAIN_CHUNK_ROWS;
use crate::logistic;

/// A Cholesky pivot `L[k][k]²` at most this fraction of its diagonal entry `H[k][k]` means
/// the Hessian is singular up to rounding: the elimination cancelled every significant digit
/// of the pivot (the rounding error of a Schur complement is about `(d+1)·ε·H[k][k]`), so
/// the Newton step along that direction would be noise.
const PIVOT_RELATIVE_FLOOR: f64 = 1e-13;

/// `ln(1 + eᵘ)` without overflow or loss of precision for large `|u|`.
fn softplus(u: f64) -> f64 {
    u.max(0.0) + (-u.abs()).exp().ln_1p()
}

/// The margin of one row: `b + Σ wⱼ·xⱼ` from the intercept, left to right — the order of
/// [`crate::LinearModel::margin`], so the model's scores equal the trainer's bit for bit.
pub(crate) fn margin(beta: &[f64], x: &[f64]) -> f64 {
    let mut z = beta[0];
    for (w, v) in beta[1..].iter().zip(&x[1..]) {
        z += w * v;
    }
    z
}

/// Loss, gradient and Hessian (upper triangle, row-major, index 0 the intercept) of the
/// unpenalised objective at one point, summed row by row into a chunk and chunk by chunk
/// into the totals. The order of every addition depends only on the row order, so cutting a
/// pass into steps anywhere gives bit-identical totals.
#[derive(Debug, Clone)]
pub(crate) struct Accumulator {
    /// d + 1: the intercept and one coefficient per input.
    n: usize,
    rows_in_chunk: usize,
    chunk_loss: f64,
    chunk_gradient: Vec<f64>,
    chunk_hessian: Vec<f64>,
    pub loss: f64,
    pub gradient: Vec<f64>,
    pub hessian: Vec<f64>,
}

impl Accumulator {
    pub fn new(n: usize) -> Accumulator {
        Accumulator {
            n,
            rows_in_chunk: 0,
            chunk_loss: 0.0,
            chunk_gradient: vec![0.0; n],
            chunk_hessian: vec![0.0; n * n],
            loss: 0.0,
            gradient: vec![0.0; n],
            hessian: vec![0.0; n * n],
        }
    }

    /// Zeroes everything: a new pass.
    pub fn reset(&mut self) {
        self.rows_in_chunk = 0;
        self.chunk_loss = 0.0;
        self.loss = 0.0;
        for v in [
            &mut self.chunk_gradient,
            &mut self.chunk_hessian,
            &mut self.gradient,
            &mut self.hessian,
        ] {
            v.fill(0.0);
        }
    }

    /// Adds one row: `x` with `x[0] = 1` (the intercept), margin `z`, label `y`, weight `s`.
    /// Loss `s·logloss(y, σ(z))`, gradient `s·(p − y)·x`, Hessian `s·p·(1 − p)·x·xᵀ`, with
    /// `1 − p` computed as `σ(−z)` so it keeps its precision when `p` is near 1.
    pub fn add_row(&mut self, x: &[f64], z: f64, y: f64, s: f64) {
        debug_assert_eq!(x.len(), self.n);
        let p = logistic(z);
        self.chunk_loss += s * if y == 1.0 { softplus(-z) } else { softplus(z) };
        let residual = s * (p - y);
        let curvature = s * p * logistic(-z);
        for (a, &xa) in x.iter().enumerate() {
            self.chunk_gradient[a] += residual * xa;
            let va = curvature * xa;
            let row = &mut self.chunk_hessian[a * self.n..(a + 1) * self.n];
            for (h, &xb) in row[a..].iter_mut().zip(&x[a..]) {
                *h += va * xb;
            }
        }
        self.rows_in_chunk += 1;
        if self.rows_in_chunk == TRAIN_CHUNK_ROWS {
            self.end_chunk();
        }
    }

    /// Adds the open chunk to the totals (at every full chunk, and once at the end of a pass).
    pub fn end_chunk(&mut self) {
        self.loss += self.chunk_loss;
        self.chunk_loss = 0.0;
        for (t, c) in self.gradient.iter_mut().zip(&mut self.chunk_gradient) {
            *t += *c;
            *c = 0.0;
        }
        for (t, c) in self.hessian.iter_mut().zip(&mut self.chunk_hessian) {
            *t += *c;
            *c = 0.0;
        }
        self.rows_in_chunk = 0;
    }

    /// Adds the penalty `(λ/2)·‖w‖²` (never on the intercept, index 0) to the totals.
    pub fn add_penalty(&mut self, l2: f64, beta: &[f64]) {
        let squares: f64 = beta[1..].iter().map(|w| w * w).sum();
        self.loss += 0.5 * l2 * squares;
        for (j, w) in beta.iter().enumerate().skip(1) {
            self.gradient[j] += l2 * w;
            self.hessian[j * self.n + j] += l2;
        }
    }

    /// Whether the gradient and Hessian totals are all finite.
    pub fn is_finite(&self) -> bool {
        self.gradient
            .iter()
            .chain(&self.hessian)
            .all(|v| v.is_finite())
    }
}

/// The Newton step `Δ` solving `H·Δ = g` by a dense Cholesky factorisation (LLT) of the
/// Hessian `hessian` (upper triangle, row-major, `n × n`), sequential (`Par::Seq`: no thread
/// is ever started). `Err(k)` when the Hessian is not positive definite, at pivot `k`
/// (refused by faer, or below [`PIVOT_RELATIVE_FLOOR`]).
pub(crate) fn newton_step(hessian: &[f64], gradient: &[f64]) -> Result<Vec<f64>, usize> {
    let n = gradient.len();
    assert_eq!(hessian.len(), n * n, "the Hessian is n × n");
    // faer reads the lower triangle: entry (i, j), i ≥ j, is the stored (j, i).
    let mut l = Mat::<f64>::from_fn(n, n, |i, j| if i >= j { hessian[j * n + i] } else { 0.0 });
    let scratch = factor::cholesky_in_place_scratch::<f64>(n, Par::Seq, Default::default());
    let mut memory = MemBuffer::new(scratch);
    factor::cholesky_in_place(
        l.as_mut(),
        Default::default(),
        Par::Seq,
        MemStack::new(&mut memory),
        Default::default(),
    )
    .map_err(|factor::LltError::NonPositivePivot { index }| index)?;
    for k in 0..n {
        let pivot = l[(k, k)];
        if pivot * pivot <= PIVOT_RELATIVE_FLOOR * hessian[k * n + k] {
            return Err(k);
        }
    }
    let mut rhs = Mat::<f64>::from_fn(n, 1, |i, _| gradient[i]);
    let mut memory = MemBuffer::new(solve::solve_in_place_scratch::<f64>(n, 1, Par::Seq));
    solve::solve_in_place(
        l.as_ref(),
        rhs.as_mut(),
        Par::Seq,
        MemStack::new(&mut memory),
    );
    Ok((0..n).map(|i| rhs[(i, 0)]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softplus_is_stable() {
        assert_eq!(softplus(0.0), 2f64.ln());
        assert_eq!(softplus(800.0), 800.0);
        assert!(softplus(-800.0) >= 0.0 && softplus(-800.0) < 1e-300);
        assert!((softplus(-30.0) - (-30f64).exp()).abs() < 1e-25);
        for u in [-5.0, -0.5, 0.5, 5.0] {
            assert!((softplus(u) - (1.0 + u.exp()).ln()).abs() < 1e-15, "{u}");
        }
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        // H = [[4, 2], [2, 3]] (upper triangle stored), g = [2, 1]: Δ = [0.5, 0].
        let hessian = [4.0, 2.0, f64::NAN, 3.0];
        let step = newton_step(&hessian, &[2.0, 1.0]).unwrap();
        assert!(
            (step[0] - 0.5).abs() < 1e-15 && step[1].abs() < 1e-15,
            "{step:?}"
        );
    }

    #[test]
    fn singular_and_indefinite_hessians_are_refused() {
        // Rank 1: [[1, 1], [1, 1]] — exactly singular; and [[1, 2], [2, 1]] — indefinite.
        assert_eq!(newton_step(&[1.0, 1.0, 0.0, 1.0], &[1.0, 1.0]), Err(1));
        assert_eq!(newton_step(&[1.0, 2.0, 0.0, 1.0], &[1.0, 1.0]), Err(1));
        // Singular up to rounding: the second pivot is 1e-16 of its diagonal.
        let h = [1.0, 1.0, 0.0, 1.0 + 1e-16 * 4.0];
        assert_eq!(newton_step(&h, &[1.0, 1.0]), Err(1));
    }

    #[test]
    fn accumulation_does_not_depend_on_where_chunks_are_closed_early() {
        // A pass that closes its last chunk at the end equals the same rows summed plainly
        // within one chunk (fewer rows than a chunk).
        let rows = [([1.0, 0.5], 0.3, 1.0, 2.0), ([1.0, -1.5], -0.7, 0.0, 1.0)];
        let mut acc = Accumulator::new(2);
        for (x, z, y, s) in rows {
            acc.add_row(&x, z, y, s);
        }
        acc.end_chunk();
        let p0 = logistic(0.3);
        let expected_g0 = 2.0 * (p0 - 1.0) + (logistic(-0.7) - 0.0);
        assert!((acc.gradient[0] - expected_g0).abs() < 1e-15);
        assert_eq!(acc.hessian[2], 0.0, "the lower triangle is never written");
        assert!(acc.is_finite() && acc.loss > 0.0);
    }
}
