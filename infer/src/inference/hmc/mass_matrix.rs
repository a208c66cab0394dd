//! The HMC mass matrix M, stored through the Cholesky factor of its inverse: M^{-1} = Sigma = L L^T.
//! GIGA-Lens Sec. 2.5.1 sets M = (Sigma*_VI)^{-1}, the inverse of the VI covariance ("preconditioned HMC",
//! Neal 2011), so L is exactly the VI Cholesky factor and no inverse is ever formed:
//!
//! - momentum  p ~ N(0, M):        p = L^{-T} xi, xi ~ N(0, I)      (Cov = L^{-T} L^{-1} = Sigma^{-1})
//! - kinetic   K(p) = p^T M^{-1} p / 2 = |L^T p|^2 / 2
//! - velocity  dx/dt = M^{-1} p = L (L^T p)
//!
//! This is equivalent to running identity-mass HMC on whitened coordinates y = L^{-1}(x - mu).

use anyhow::{Result, ensure};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use crate::math::linalg;

/// Mass matrix M, via the factor of M^{-1}.
#[derive(Clone, Debug, PartialEq)]
pub enum MassMatrix {
    /// M = I.
    Identity,
    /// M^{-1} = diag(scale^2): `scale` holds posterior standard deviations.
    Diagonal { scale: Vec<f64> },
    /// M^{-1} = L L^T with lower-triangular `chol` (row-major).
    Dense { dim: usize, chol: Vec<f64> },
}

impl MassMatrix {
    /// From a covariance estimate Sigma (row-major), e.g. the VI covariance.
    pub fn from_covariance(cov: &[f64], dim: usize) -> Result<Self> {
        let chol = linalg::cholesky(cov, dim)
            .map_err(|e| anyhow::anyhow!("HMC mass matrix from covariance: {e}"))?;
        Self::from_cholesky(chol, dim)
    }

    /// From the Cholesky factor L of Sigma = M^{-1} (e.g. `ViResult::chol`).
    pub fn from_cholesky(chol: Vec<f64>, dim: usize) -> Result<Self> {
        ensure!(
            chol.len() == dim * dim,
            "HMC mass matrix: factor has {} entries, expected {dim}x{dim}",
            chol.len()
        );
        for i in 0..dim {
            let v = chol[i * dim + i];
            ensure!(
                v.is_finite() && v > 0.0,
                "HMC mass matrix: Cholesky diagonal {i} is {v} (must be > 0)"
            );
        }
        ensure!(
            chol.iter().all(|v| v.is_finite()),
            "HMC mass matrix: Cholesky factor is not finite"
        );
        let mut chol = chol;
        for i in 0..dim {
            for j in i + 1..dim {
                chol[i * dim + j] = 0.0;
            }
        }
        Ok(Self::Dense { dim, chol })
    }

    /// Sigma = M^{-1} as a dense row-major `dim x dim` matrix.
    pub fn covariance(&self, dim: usize) -> Vec<f64> {
        let mut cov = vec![0.0; dim * dim];
        match self {
            MassMatrix::Identity => (0..dim).for_each(|i| cov[i * dim + i] = 1.0),
            MassMatrix::Diagonal { scale } => {
                (0..dim).for_each(|i| cov[i * dim + i] = scale[i] * scale[i])
            }
            MassMatrix::Dense { chol, .. } => cov = linalg::lower_outer(chol, dim),
        }
        cov
    }

    /// From per-parameter standard deviations.
    pub fn from_scales(scale: Vec<f64>) -> Result<Self> {
        ensure!(
            scale.iter().all(|s| s.is_finite() && *s > 0.0),
            "HMC mass matrix: scales must be positive and finite"
        );
        Ok(Self::Diagonal { scale })
    }

    /// Checks that the matrix fits a `dim`-dimensional target.
    pub fn check_dim(&self, dim: usize) -> Result<()> {
        match self {
            MassMatrix::Identity => Ok(()),
            MassMatrix::Diagonal { scale } => {
                ensure!(
                    scale.len() == dim,
                    "HMC mass matrix has {} scales, the target has dimension {dim}",
                    scale.len()
                );
                Ok(())
            }
            MassMatrix::Dense { dim: n, .. } => {
                ensure!(
                    *n == dim,
                    "HMC mass matrix is {n}x{n}, the target has dimension {dim}"
                );
                Ok(())
            }
        }
    }

    /// Draws p ~ N(0, M) into `p` (one chain).
    pub fn sample_momentum<R: Rng + ?Sized>(&self, rng: &mut R, p: &mut [f64]) {
        for v in p.iter_mut() {
            *v = rng.sample(StandardNormal);
        }
        match self {
            MassMatrix::Identity => {}
            MassMatrix::Diagonal { scale } => {
                for (v, s) in p.iter_mut().zip(scale) {
                    *v /= s;
                }
            }
            MassMatrix::Dense { dim, chol } => linalg::lower_t_solve(chol, *dim, p),
        }
    }

    /// K(p) = p^T M^{-1} p / 2 (one chain).
    pub fn kinetic(&self, p: &[f64]) -> f64 {
        match self {
            MassMatrix::Identity => 0.5 * p.iter().map(|v| v * v).sum::<f64>(),
            MassMatrix::Diagonal { scale } => {
                0.5 * p
                    .iter()
                    .zip(scale)
                    .map(|(v, s)| (v * s).powi(2))
                    .sum::<f64>()
            }
            MassMatrix::Dense { dim, chol } => {
                let mut w = vec![0.0; *dim];
                linalg::lower_t_mul(chol, *dim, p, &mut w);
                0.5 * w.iter().map(|v| v * v).sum::<f64>()
            }
        }
    }

    /// v = M^{-1} p (one chain).
    pub fn velocity(&self, p: &[f64], v: &mut [f64]) {
        match self {
            MassMatrix::Identity => v.copy_from_slice(p),
            MassMatrix::Diagonal { scale } => {
                for ((vi, pi), s) in v.iter_mut().zip(p).zip(scale) {
                    *vi = pi * s * s;
                }
            }
            MassMatrix::Dense { dim, chol } => {
                let mut w = vec![0.0; *dim];
                linalg::lower_t_mul(chol, *dim, p, &mut w);
                linalg::lower_mul(chol, *dim, &w, v);
            }
        }
    }
}

impl MassMatrix {
    /// The lower factor L of M^{-1} = L L^T as a dense row-major matrix.
    pub fn factor(&self, dim: usize) -> Vec<f64> {
        match self {
            MassMatrix::Dense { chol, .. } => chol.clone(),
            _ => {
                let cov = self.covariance(dim);
                let mut l = vec![0.0; dim * dim];
                (0..dim).for_each(|i| l[i * dim + i] = cov[i * dim + i].sqrt());
                l
            }
        }
    }

    /// `h = L^T g`: a gradient of log p in x as a gradient in the whitened `z = L^{-1} x`.
    pub fn whiten_gradient(&self, g: &[f64], h: &mut [f64]) {
        match self {
            MassMatrix::Identity => h.copy_from_slice(g),
            MassMatrix::Diagonal { scale } => {
                for ((hk, gk), s) in h.iter_mut().zip(g).zip(scale) {
                    *hk = gk * s;
                }
            }
            MassMatrix::Dense { dim, chol } => linalg::lower_t_mul(chol, *dim, g, h),
        }
    }

    /// `z = L^{-1} x` for `M^{-1} = L L^T`: `x` in units of the metric's widths (|z|^2 = x^T M x).
    pub fn whiten(&self, x: &[f64], z: &mut [f64]) {
        match self {
            MassMatrix::Identity => z.copy_from_slice(x),
            MassMatrix::Diagonal { scale } => {
                for ((zk, xk), s) in z.iter_mut().zip(x).zip(scale) {
                    *zk = xk / s;
                }
            }
            MassMatrix::Dense { dim, chol } => {
                z.copy_from_slice(x);
                linalg::lower_solve(chol, *dim, z);
            }
        }
    }
}

/// Running mean and covariance of pooled draws (all chains of a warm-up window), for re-estimating a
/// dense mass matrix during burn-in (Stan's windowed adaptation; with many chains in lockstep one window
/// already holds chains x iterations draws). Welford's update keeps it stable.
#[derive(Clone, Debug)]
pub struct CovarianceEstimator {
    dim: usize,
    n: usize,
    mean: Vec<f64>,
    /// Sum of outer products of deviations, row-major.
    m2: Vec<f64>,
    delta: Vec<f64>,
}

impl CovarianceEstimator {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            n: 0,
            mean: vec![0.0; dim],
            m2: vec![0.0; dim * dim],
            delta: vec![0.0; dim],
        }
    }

    pub fn count(&self) -> usize {
        self.n
    }

    pub fn add(&mut self, x: &[f64]) {
        let d = self.dim;
        self.n += 1;
        let w = 1.0 / self.n as f64;
        for i in 0..d {
            self.delta[i] = x[i] - self.mean[i];
            self.mean[i] += w * self.delta[i];
        }
        for i in 0..d {
            let after_i = x[i] - self.mean[i];
            for j in 0..=i {
                self.m2[i * d + j] += after_i * self.delta[j];
            }
        }
    }

    /// The sample covariance with Stan's regularisation on each parameter's own scale,
    /// `(n Sigma + 5e-3 diag Sigma) / (n + 5)` (Stan adds 1e-3 I; widths here span 1e-4 to 1e1), as a
    /// dense mass matrix. Shrinking the off-diagonal towards 0 instead would widen the narrow
    /// direction of every strong correlation (GIGA-Lens posteriors reach 0.997), and with it shrink
    /// the step size.
    ///
    /// With fewer than `10 dim` draws a dense estimate alone is noisier than the metric it would
    /// replace, so it is pooled with the current metric `prior` (its covariance counted as
    /// `10 dim - n` pseudo-draws, a conjugate inverse-Wishart-style update): `Sigma_new =
    /// (n Sigma + (10 dim - n) Sigma_current) / (10 dim)`. The between-chain spread the draws carry
    /// still widens directions the current metric has too narrow (the 76-parameter VAE model with
    /// 8 chains: 168 pooled draws per window). `None` with fewer than `dim + 1` draws or if the result
    /// is not positive definite.
    pub fn mass_matrix(&self, prior: &MassMatrix) -> Option<MassMatrix> {
        let d = self.dim;
        if self.n <= d {
            return None;
        }
        let n = self.n as f64;
        let full = (10 * d) as f64;
        let (w_sample, prior_cov) = if n >= full {
            (1.0, None)
        } else {
            (n / full, Some(prior.covariance(d)))
        };
        let mut cov = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                let c = self.m2[i * d + j] / (n - 1.0);
                let shrunk = if i == j {
                    (n * c + 5e-3 * c) / (n + 5.0)
                } else {
                    n * c / (n + 5.0)
                };
                let v = match &prior_cov {
                    Some(p) => w_sample * shrunk + (1.0 - w_sample) * p[i * d + j],
                    None => shrunk,
                };
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
        }
        MassMatrix::from_covariance(&cov, d).ok()
    }

    /// The plain sample covariance (denominator n - 1, row-major), `None` with fewer than two draws.
    pub fn covariance(&self) -> Option<Vec<f64>> {
        let d = self.dim;
        if self.n < 2 {
            return None;
        }
        let mut cov = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                let c = self.m2[i * d + j] / (self.n - 1) as f64;
                cov[i * d + j] = c;
                cov[j * d + i] = c;
            }
        }
        Some(cov)
    }

    pub fn reset(&mut self) {
        *self = Self::new(self.dim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    /// Momenta have covariance M = Sigma^{-1}, and K(p) = p^T Sigma p / 2, v = Sigma p.
    #[test]
    fn momentum_kinetic_and_velocity_are_consistent() {
        let cov = [2.0, 0.6, 0.6, 0.5];
        let m = MassMatrix::from_covariance(&cov, 2).unwrap();
        // Sigma^{-1} = [0.5, -0.6; -0.6, 2.0] / (1.0 - 0.36)
        let det = 2.0 * 0.5 - 0.36;
        let minv: [f64; 4] = [0.5 / det, -0.6 / det, -0.6 / det, 2.0 / det];
        let mut rng = StdRng::seed_from_u64(9);
        let n = 100_000;
        let mut acc = [0.0; 4];
        let mut p = [0.0; 2];
        for _ in 0..n {
            m.sample_momentum(&mut rng, &mut p);
            acc[0] += p[0] * p[0];
            acc[1] += p[0] * p[1];
            acc[3] += p[1] * p[1];
        }
        acc[2] = acc[1];
        for k in 0..4 {
            // Standard error of a second moment ~ sqrt(2/n) * scale.
            let tol = 5.0 * (2.0 / n as f64).sqrt() * (minv[0] * minv[3]).sqrt();
            assert!(
                (acc[k] / n as f64 - minv[k]).abs() < tol,
                "entry {k}: {} vs {}",
                acc[k] / n as f64,
                minv[k]
            );
        }
        let p = [0.7, -1.3];
        let want_k = 0.5 * (p[0] * (2.0 * p[0] + 0.6 * p[1]) + p[1] * (0.6 * p[0] + 0.5 * p[1]));
        assert!((m.kinetic(&p) - want_k).abs() < 1e-12);
        let mut v = [0.0; 2];
        m.velocity(&p, &mut v);
        assert!(
            (v[0] - (2.0 * 0.7 - 0.6 * 1.3)).abs() < 1e-12
                && (v[1] - (0.6 * 0.7 - 0.5 * 1.3)).abs() < 1e-12
        );
        let d = MassMatrix::from_scales(vec![2.0, 0.5]).unwrap();
        assert!((d.kinetic(&p) - 0.5 * (4.0 * 0.49 + 0.25 * 1.69)).abs() < 1e-12);
        assert!(m.check_dim(3).is_err());
        assert!(MassMatrix::from_covariance(&[1.0, 2.0, 2.0, 1.0], 2).is_err());
    }

    /// The pooled estimator recovers a known covariance from draws (up to the documented
    /// regularisation, a common factor ~n / (n + 5)).
    #[test]
    fn estimator_recovers_covariance() {
        let cov = [4.0, 0.03, 0.03, 0.0004];
        let m = MassMatrix::from_covariance(&cov, 2).unwrap();
        let MassMatrix::Dense { chol, .. } = &m else {
            unreachable!()
        };
        let mut rng = StdRng::seed_from_u64(3);
        let mut est = CovarianceEstimator::new(2);
        assert!(est.mass_matrix(&MassMatrix::Identity).is_none());
        let n = 50_000;
        for _ in 0..n {
            let z: [f64; 2] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
            let mut x = [0.0; 2];
            linalg::lower_mul(chol, 2, &z, &mut x);
            est.add(&[x[0] + 10.0, x[1] - 1.0]);
        }
        let Some(MassMatrix::Dense { chol: got, .. }) = est.mass_matrix(&MassMatrix::Identity)
        else {
            panic!("no estimate")
        };
        let back = linalg::lower_outer(&got, 2);
        for k in 0..4 {
            let tol = 5.0 * (2.0 / n as f64).sqrt() * (cov[0] * cov[3]).sqrt().max(cov[k].abs());
            assert!(
                (back[k] - cov[k]).abs() < tol,
                "entry {k}: {} vs {}",
                back[k],
                cov[k]
            );
        }
        est.reset();
        assert_eq!(est.count(), 0);
    }

    /// With fewer than 10 dim draws the estimate is pooled with the current metric, which counts as
    /// 10 dim - n pseudo-draws: with n = 5 dim the result is halfway between the two.
    #[test]
    fn few_draws_are_pooled_with_the_current_metric() {
        let d = 3;
        let mut est = CovarianceEstimator::new(d);
        let mut rng = StdRng::seed_from_u64(4);
        let draws: Vec<[f64; 3]> = (0..5 * d)
            .map(|_| {
                [
                    3.0 * rng.sample::<f64, _>(StandardNormal),
                    0.1 * rng.sample::<f64, _>(StandardNormal),
                    rng.sample::<f64, _>(StandardNormal),
                ]
            })
            .collect();
        for x in &draws {
            est.add(x);
        }
        let n = draws.len() as f64;
        let mean: Vec<f64> = (0..d)
            .map(|k| draws.iter().map(|x| x[k]).sum::<f64>() / n)
            .collect();
        let var =
            |k: usize| draws.iter().map(|x| (x[k] - mean[k]).powi(2)).sum::<f64>() / (n - 1.0);
        let prior = MassMatrix::from_scales(vec![1.0, 1.0, 2.0]).unwrap();
        let got = est.mass_matrix(&prior).unwrap().covariance(d);
        for (k, p) in [1.0, 1.0, 4.0].iter().enumerate() {
            let want = 0.5 * var(k) * (n + 5e-3) / (n + 5.0) + 0.5 * p;
            assert!(
                (got[k * d + k] - want).abs() < 1e-12,
                "{k}: {} vs {want}",
                got[k * d + k]
            );
        }
        // enough draws: the sample alone
        let mut many = CovarianceEstimator::new(d);
        for _ in 0..10 {
            for x in &draws {
                many.add(x);
            }
        }
        let alone = many.mass_matrix(&prior).unwrap().covariance(d);
        let big = 10.0 * n;
        let sample = var(0) * (n - 1.0) / n * big / (big - 1.0);
        assert!((alone[0] - sample * (big + 5e-3) / (big + 5.0)).abs() < 1e-9);
        // too few draws for a dense estimate
        let mut two = CovarianceEstimator::new(d);
        two.add(&draws[0]);
        two.add(&draws[1]);
        assert!(two.mass_matrix(&prior).is_none());
    }
    /// A correlation of 0.997 survives the regularisation: the estimate's variance along the narrow
    /// direction stays within 10% of the truth with 400 draws (shrinking the off-diagonal by
    /// n / (n + 5) made it ~5x too wide).
    #[test]
    fn strong_correlations_keep_their_narrow_direction() {
        let rho: f64 = 0.997;
        let cov = [1.0, rho * 0.01, rho * 0.01, 1e-4];
        let m = MassMatrix::from_covariance(&cov, 2).unwrap();
        let MassMatrix::Dense { chol, .. } = &m else {
            unreachable!()
        };
        let mut rng = StdRng::seed_from_u64(5);
        let mut est = CovarianceEstimator::new(2);
        for _ in 0..400 {
            let z: [f64; 2] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
            let mut x = [0.0; 2];
            linalg::lower_mul(chol, 2, &z, &mut x);
            est.add(&x);
        }
        let got = est
            .mass_matrix(&MassMatrix::Identity)
            .unwrap()
            .covariance(2);
        // the narrow direction of the truth is x0 - 100 x1, with variance 2 (1 - rho)
        let v = [1.0, -100.0];
        let along = |c: &[f64]| v[0] * v[0] * c[0] + 2.0 * v[0] * v[1] * c[1] + v[1] * v[1] * c[3];
        let ratio = along(&got) / along(&cov);
        assert!(
            (0.8..1.25).contains(&ratio),
            "narrow-direction variance ratio {ratio}"
        );
    }
}
