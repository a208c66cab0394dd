//! Closed-form targets the inference tests share: a log-density written for one row
//! ([`PerRow`]), and the standard normal with a region where it is undefined
//! ([`normal_nan_where`]), the wall or slab the non-finite handling is tested on.

use crate::density::LogDensity;
use anyhow::Result;

/// A batched log-density from its one-row form: `f(x, grad)` returns log p(x) and writes its
/// gradient into `grad`.
pub struct PerRow<F> {
    dim: usize,
    f: F,
}

/// [`PerRow`] of `f` in `dim` dimensions.
pub fn per_row<F>(dim: usize, f: F) -> PerRow<F>
where
    F: Fn(&[f64], &mut [f64]) -> f64 + Sync,
{
    PerRow { dim, f }
}

impl<F> LogDensity for PerRow<F>
where
    F: Fn(&[f64], &mut [f64]) -> f64 + Sync,
{
    fn dim(&self) -> usize {
        self.dim
    }

    fn value_and_grad(
        &self,
        x: &[f64],
        batch: usize,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        let d = self.dim;
        for r in 0..batch {
            logp[r] = (self.f)(&x[r * d..(r + 1) * d], &mut grad[r * d..(r + 1) * d]);
        }
        Ok(())
    }
}

/// N(`mean`, I), with value and gradient NaN wherever `nan(x)` holds.
pub fn normal_nan_where<N>(
    mean: Vec<f64>,
    nan: N,
) -> PerRow<impl Fn(&[f64], &mut [f64]) -> f64 + Sync>
where
    N: Fn(&[f64]) -> bool + Sync,
{
    per_row(mean.len(), move |x: &[f64], g: &mut [f64]| {
        if nan(x) {
            g.fill(f64::NAN);
            return f64::NAN;
        }
        let mut lp = 0.0;
        for ((g, x), m) in g.iter_mut().zip(x).zip(&mean) {
            lp -= 0.5 * (x - m) * (x - m);
            *g = -(x - m);
        }
        lp
    })
}

/// N(0, I) in `dim` dimensions.
pub fn std_normal(dim: usize) -> PerRow<impl Fn(&[f64], &mut [f64]) -> f64 + Sync> {
    normal_nan_where(vec![0.0; dim], |_| false)
}
