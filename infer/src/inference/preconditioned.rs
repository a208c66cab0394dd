//! A log-density in affine coordinates `x = x0 + C^{-T} y`, with `C` the lower Cholesky factor of an
//! estimate `A = C C^T` of the precision `-H`: in `y` the Hessian is `C^{-1} H C^{-T}`, close to `-I`, so a
//! gradient method no longer sees the posterior's condition number (~1e6 with a VAE source).

use anyhow::{Result, ensure};

use super::density::LogDensity;
use crate::prob::linalg;

/// `density` seen through `x = x0 + C^{-T} y` (gradient `C^{-1} grad_x`).
pub struct Preconditioned<'a, D: LogDensity + ?Sized> {
    density: &'a D,
    x0: Vec<f64>,
    chol: Vec<f64>,
}

impl<'a, D: LogDensity + ?Sized> Preconditioned<'a, D> {
    /// `chol` is the row-major lower Cholesky factor of the precision estimate at (or near) `x0`.
    pub fn new(density: &'a D, x0: &[f64], chol: Vec<f64>) -> Result<Self> {
        let d = density.dim();
        ensure!(
            x0.len() == d && chol.len() == d * d,
            "preconditioner: point has {} values and factor {}, the log-density has dimension {d}",
            x0.len(),
            chol.len()
        );
        ensure!(
            (0..d).all(|i| chol[i * d + i].is_finite() && chol[i * d + i] > 0.0),
            "preconditioner: the Cholesky factor has a non-positive diagonal"
        );
        Ok(Self {
            density,
            x0: x0.to_vec(),
            chol,
        })
    }

    /// The original coordinates of the point `y`.
    pub fn to_x(&self, y: &[f64]) -> Vec<f64> {
        let d = self.x0.len();
        let mut w = y.to_vec();
        linalg::lower_t_solve(&self.chol, d, &mut w);
        w.iter().zip(&self.x0).map(|(a, b)| a + b).collect()
    }
}

impl<D: LogDensity + ?Sized> LogDensity for Preconditioned<'_, D> {
    fn dim(&self) -> usize {
        self.x0.len()
    }

    fn value_and_grad(
        &self,
        y: &[f64],
        batch: usize,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        let d = self.x0.len();
        let x: Vec<f64> = y.chunks(d).take(batch).flat_map(|r| self.to_x(r)).collect();
        self.density.value_and_grad(&x, batch, logp, grad)?;
        for g in grad.chunks_mut(d).take(batch) {
            linalg::lower_solve(&self.chol, d, g);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prob::prior::MvNormal;

    /// With the exact precision of a Gaussian, the preconditioned density is a standard normal in y: its
    /// gradient at y is -y, and y = 0 maps to x0.
    #[test]
    fn exact_precision_gives_a_standard_normal() {
        let cov = vec![4.0, 0.01, 0.0, 0.01, 1e-4, 0.0, 0.0, 0.0, 9e2];
        let mean = vec![1.0, -2.0, 30.0];
        let target = MvNormal::new(mean.clone(), &cov).unwrap();
        let prec = {
            // inverse of cov by columns
            let c = linalg::cholesky(&cov, 3).unwrap();
            let mut inv = vec![0.0; 9];
            for j in 0..3 {
                let mut e = vec![0.0; 3];
                e[j] = 1.0;
                linalg::lower_solve(&c, 3, &mut e);
                linalg::lower_t_solve(&c, 3, &mut e);
                for i in 0..3 {
                    inv[i * 3 + j] = e[i];
                }
            }
            inv
        };
        let chol = linalg::cholesky(&prec, 3).unwrap();
        let pre = Preconditioned::new(&target, &mean, chol).unwrap();
        assert_eq!(pre.to_x(&[0.0; 3]), mean);
        let y = [0.3, -1.2, 2.0, 0.0, 0.5, -0.7];
        let (mut lp, mut g) = ([0.0; 2], [0.0; 6]);
        pre.value_and_grad(&y, 2, &mut lp, &mut g).unwrap();
        for k in 0..6 {
            assert!(
                (g[k] + y[k]).abs() < 1e-8,
                "grad {k}: {} vs {}",
                g[k],
                -y[k]
            );
        }
        // log p differs from -|y|^2/2 by the same constant in both rows
        let c0 = lp[0] + 0.5 * y[..3].iter().map(|v| v * v).sum::<f64>();
        let c1 = lp[1] + 0.5 * y[3..].iter().map(|v| v * v).sum::<f64>();
        assert!((c0 - c1).abs() < 1e-8);
    }
}
