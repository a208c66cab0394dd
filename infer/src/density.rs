//! The target of every inference algorithm: a batched log-density on unconstrained space R^P, on plain f64
//! data so the samplers stay independent of the tensor backend (the lens posterior implements it on burn
//! autodiff or on a fused kernel; tests implement it in closed form).

use anyhow::{Result, ensure};

/// A batched log-density on unconstrained space R^P (already including priors and log|J|, GIGA-Lens eq. 13).
///
/// `x` is row-major `batch x dim`. Implementations write `logp[batch]` and `grad[batch * dim]`. Non-finite
/// values (NaN, +-inf) are allowed and mean "outside the support / numerically broken here": MAP reverts the
/// step, VI drops the sample, HMC counts a divergence and rejects. They must never panic for finite or
/// non-finite input; `Err` is reserved for real failures (device error, shape bug) and aborts the run.
pub trait LogDensity: Sync {
    /// Number of unconstrained parameters P.
    fn dim(&self) -> usize;

    /// Log-density and its gradient for every row of `x`.
    fn value_and_grad(
        &self,
        x: &[f64],
        batch: usize,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()>;

    /// Log-density only (implementations may override with a cheaper forward pass).
    fn value(&self, x: &[f64], batch: usize, logp: &mut [f64]) -> Result<()> {
        let mut grad = vec![0.0; batch * self.dim()];
        self.value_and_grad(x, batch, logp, &mut grad)
    }

    /// log prior + `beta` log likelihood (0 < beta <= 1) and its gradient: the tempered target of an
    /// annealed optimiser. Densities that do not separate the two support only beta = 1.
    fn value_and_grad_tempered(
        &self,
        x: &[f64],
        batch: usize,
        beta: f64,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        anyhow::ensure!(
            beta == 1.0,
            "this log-density does not separate prior and likelihood, so it cannot be tempered"
        );
        self.value_and_grad(x, batch, logp, grad)
    }
}

impl<T: LogDensity + ?Sized> LogDensity for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn value_and_grad(
        &self,
        x: &[f64],
        batch: usize,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        (**self).value_and_grad(x, batch, logp, grad)
    }
    fn value(&self, x: &[f64], batch: usize, logp: &mut [f64]) -> Result<()> {
        (**self).value(x, batch, logp)
    }
    fn value_and_grad_tempered(
        &self,
        x: &[f64],
        batch: usize,
        beta: f64,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        (**self).value_and_grad_tempered(x, batch, beta, logp, grad)
    }
}

/// `density` seen through the affine map `x = shift + L y` (L lower triangular): same log-density (the
/// Jacobian is constant), gradient `L^T grad_x`. With L a Cholesky factor of a covariance estimate this
/// whitens the target, so optimisers with one learning rate treat every direction alike.
pub struct Affine<'a, D: ?Sized> {
    inner: &'a D,
    shift: Vec<f64>,
    chol: Vec<f64>,
}

impl<'a, D: LogDensity + ?Sized> Affine<'a, D> {
    pub fn new(inner: &'a D, shift: Vec<f64>, chol: Vec<f64>) -> Result<Self> {
        let d = inner.dim();
        ensure!(
            shift.len() == d && chol.len() == d * d,
            "affine map: shift has {} values and factor {} entries for dimension {d}",
            shift.len(),
            chol.len()
        );
        Ok(Self { inner, shift, chol })
    }

    /// `shift + L y`.
    pub fn to_outer(&self, y: &[f64]) -> Vec<f64> {
        let d = self.shift.len();
        let mut x = vec![0.0; d];
        crate::math::linalg::lower_mul(&self.chol, d, y, &mut x);
        for (xi, s) in x.iter_mut().zip(&self.shift) {
            *xi += s;
        }
        x
    }
}

impl<D: LogDensity + ?Sized> LogDensity for Affine<'_, D> {
    fn dim(&self) -> usize {
        self.shift.len()
    }
    fn value_and_grad(
        &self,
        y: &[f64],
        batch: usize,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        self.value_and_grad_tempered(y, batch, 1.0, logp, grad)
    }

    fn value_and_grad_tempered(
        &self,
        y: &[f64],
        batch: usize,
        beta: f64,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        let d = self.shift.len();
        let x: Vec<f64> = y
            .chunks(d)
            .take(batch)
            .flat_map(|r| self.to_outer(r))
            .collect();
        let mut gx = vec![0.0; batch * d];
        self.inner
            .value_and_grad_tempered(&x, batch, beta, logp, &mut gx)?;
        for r in 0..batch {
            crate::math::linalg::lower_t_mul(
                &self.chol,
                d,
                &gx[r * d..(r + 1) * d],
                &mut grad[r * d..(r + 1) * d],
            );
        }
        Ok(())
    }
}

/// Shape check shared by the algorithms: `x` must hold `batch` rows of `density.dim()` finite-or-not values.
pub(crate) fn check_batch(dim: usize, x_len: usize, what: &str) -> Result<usize> {
    ensure!(dim > 0, "{what}: the log-density has dimension 0");
    ensure!(
        x_len > 0 && x_len.is_multiple_of(dim),
        "{what}: got {x_len} values, expected a non-empty multiple of the dimension {dim}"
    );
    Ok(x_len / dim)
}

/// Evaluates value and gradient and replaces any row whose value or gradient is not finite by
/// `logp = -inf` (the gradient of such rows is left as returned and must not be used).
/// Returns the number of non-finite rows.
pub(crate) fn eval_checked<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    batch: usize,
    logp: &mut [f64],
    grad: &mut [f64],
) -> Result<usize> {
    eval_checked_tempered(density, x, batch, 1.0, logp, grad)
}

/// [`eval_checked`] of the tempered target (see [`LogDensity::value_and_grad_tempered`]).
pub(crate) fn eval_checked_tempered<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    batch: usize,
    beta: f64,
    logp: &mut [f64],
    grad: &mut [f64],
) -> Result<usize> {
    if beta == 1.0 {
        density.value_and_grad(x, batch, logp, grad)?;
    } else {
        density.value_and_grad_tempered(x, batch, beta, logp, grad)?;
    }
    let d = density.dim();
    let mut bad = 0;
    for r in 0..batch {
        if !(logp[r].is_finite() && grad[r * d..(r + 1) * d].iter().all(|g| g.is_finite())) {
            logp[r] = f64::NEG_INFINITY;
            bad += 1;
        }
    }
    Ok(bad)
}
