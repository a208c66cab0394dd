//! A dense metric from the draws *and* the gradients of a warm-up window (the adaptation of nutpie,
//! Seyboldt et al.). For a Gaussian N(mu, Sigma), grad log p = -Sigma^{-1} (x - mu), so on any set of
//! draws the sample covariances obey S_g = Sigma^{-1} S_x Sigma^{-1} exactly, and Sigma is their SPD
//! geometric mean S_x # S_g^{-1} (the unique SPD Sigma with Sigma S_g Sigma = S_x) from as few as d + 1
//! draws however correlated; the draws' covariance alone needs many independent ones to resolve a thin
//! direction (a ridge of condition number 1e4 in the paper-grid fits, docs/performance.md).
//!
//! Everything is computed in the coordinates whitened by the window's metric, z = L^{-1} x with
//! gradient L^T g (the geometric mean is congruence-invariant, so this changes only the rounding).

use super::mass_matrix::{CovarianceEstimator, MassMatrix};
use crate::math::linalg;

/// Whitened draws and gradients of one warm-up window.
#[derive(Clone, Debug)]
pub struct GradientMetricEstimator {
    metric: MassMatrix,
    dim: usize,
    draws: CovarianceEstimator,
    grads: CovarianceEstimator,
    z: Vec<f64>,
    h: Vec<f64>,
}

impl GradientMetricEstimator {
    /// An empty window whose draws are whitened by `metric` (the one the chains move with).
    pub fn new(metric: &MassMatrix, dim: usize) -> Self {
        Self {
            metric: metric.clone(),
            dim,
            draws: CovarianceEstimator::new(dim),
            grads: CovarianceEstimator::new(dim),
            z: vec![0.0; dim],
            h: vec![0.0; dim],
        }
    }

    pub fn count(&self) -> usize {
        self.draws.count()
    }

    /// Adds one draw `x` with its gradient of log p.
    pub fn add(&mut self, x: &[f64], grad: &[f64]) {
        self.metric.whiten(x, &mut self.z);
        self.metric.whiten_gradient(grad, &mut self.h);
        self.draws.add(&self.z);
        self.grads.add(&self.h);
    }

    /// Sigma = S_x # S_g^{-1} in whitened units, mapped back by L. With S_x = R R^T (Cholesky), the
    /// geometric mean is R (R^T S_g R)^{-1/2} R^T, whose one eigen-decomposition is of a matrix near the
    /// identity when the draws are near-Gaussian (R^T Sigma^{-1} R), so the thin directions keep their
    /// digits. No shrinkage: any regularisation of S_x alone would widen the thin direction it is there
    /// to find; each variance only grows by 1e-12 of itself, for rounding. A C with an eigenvalue below
    /// 1e-12 of its largest (S_g singular: a direction without curvature) gives `None`.
    /// `None` with at most `dim + 1` draws or if the result is not finite and positive definite.
    pub fn mass_matrix(&self) -> Option<MassMatrix> {
        let d = self.dim;
        if self.count() <= d + 1 {
            return None;
        }
        let regularised = |mut c: Vec<f64>| {
            (0..d).for_each(|i| c[i * d + i] *= 1.0 + 1e-12);
            c
        };
        let s_x = regularised(self.draws.covariance()?);
        let s_g = regularised(self.grads.covariance()?);
        if !s_x.iter().chain(&s_g).all(|v| v.is_finite()) {
            return None;
        }
        let r = linalg::cholesky(&s_x, d).ok()?;
        // C = R^T S_g R
        let mut rt = vec![0.0; d * d];
        (0..d).for_each(|i| (0..d).for_each(|j| rt[j * d + i] = r[i * d + j]));
        let c = linalg::matmul(&linalg::matmul(&rt, &s_g, d), &r, d);
        let (values, vectors) = linalg::symmetric_eigen(&c, d);
        let top = values.iter().copied().fold(0.0, f64::max);
        if !(values.iter().all(|&l| l > 1e-12 * top)) {
            return None;
        }
        let c_inv_half = linalg::eigen_function(&values, &vectors, d, |l| 1.0 / l.sqrt());
        // Sigma = K C^{-1/2} K^T with K = L R
        let k = linalg::lower_matmul(&self.metric.factor(d), &r, d);
        let kc = linalg::matmul(&k, &c_inv_half, d);
        let mut cov = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                let v: f64 = (0..d).map(|m| kc[i * d + m] * k[j * d + m]).sum();
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
        }
        if !cov.iter().all(|v| v.is_finite()) {
            return None;
        }
        MassMatrix::from_covariance(&cov, d).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};
    use rand_distr::{Distribution, StandardNormal};

    /// A 6-D Gaussian with scales from 0.1 to 10 and a ridge: x1 = x0 up to 1e-3 of its width
    /// (condition number ~1e8 in variance), as `A A^T` with a lower-triangular `A`.
    fn ridge_covariance(d: usize) -> Vec<f64> {
        let mut a = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                a[i * d + j] = if i == j {
                    10f64.powf(i as f64 * 0.4 - 1.0)
                } else {
                    0.3 * (j as f64 + 1.0)
                };
            }
        }
        a[d] = a[0];
        a[d + 1] = 1e-3 * a[0];
        linalg::lower_outer(&a, d)
    }

    /// On a Gaussian, few and strongly autocorrelated draws (an AR(1) walk, 3 effective draws per 100)
    /// give the exact covariance from draws and gradients, where their covariance alone is far off;
    /// the metric used for whitening (identity, a wrong diagonal) does not matter.
    #[test]
    fn draws_and_gradients_recover_a_gaussian_exactly() {
        let d = 6;
        let cov = ridge_covariance(d);
        let l = linalg::cholesky(&cov, d).unwrap();
        // precision via the factor: Sigma^{-1} v = L^{-T} L^{-1} v
        let mu: Vec<f64> = (0..d).map(|i| i as f64 - 2.0).collect();
        let mut rng = StdRng::seed_from_u64(3);
        for metric in [
            MassMatrix::Identity,
            MassMatrix::from_scales((0..d).map(|i| 0.3 + i as f64).collect()).unwrap(),
        ] {
            let mut est = GradientMetricEstimator::new(&metric, d);
            let mut plain = CovarianceEstimator::new(d);
            let mut xi = vec![0.0; d];
            for _ in 0..(d + 10) {
                for v in xi.iter_mut() {
                    let e: f64 = StandardNormal.sample(&mut rng);
                    *v = 0.97 * *v + (1.0 - 0.97f64 * 0.97).sqrt() * e;
                }
                let mut x = vec![0.0; d];
                linalg::lower_mul(&l, d, &xi, &mut x);
                let mut g: Vec<f64> = x.clone();
                linalg::lower_solve(&l, d, &mut g);
                linalg::lower_t_solve(&l, d, &mut g);
                let g: Vec<f64> = g.iter().map(|v| -v).collect();
                let x: Vec<f64> = x.iter().zip(&mu).map(|(a, m)| a + m).collect();
                est.add(&x, &g);
                plain.add(&x);
            }
            let got = est.mass_matrix().unwrap().covariance(d);
            let alone = plain.covariance().unwrap();
            let rel = |c: &[f64]| {
                (0..d * d)
                    .map(|k| {
                        let (i, j) = (k / d, k % d);
                        (c[k] - cov[k]).abs() / (cov[i * d + i] * cov[j * d + j]).sqrt()
                    })
                    .fold(0.0f64, f64::max)
            };
            // exact up to rounding at a condition number ~1e8 (2e-5 with the identity metric)
            assert!(rel(&got) < 1e-3, "draws and gradients: {}", rel(&got));
            assert!(
                rel(&alone) > 0.2,
                "draws alone should be far off: {}",
                rel(&alone)
            );
            // the thin direction's variance, along (1, -1) / sqrt 2, to a per cent
            let thin = |c: &[f64]| 0.5 * (c[0] + c[d + 1] - 2.0 * c[1]);
            assert!(
                (thin(&got) / thin(&cov) - 1.0).abs() < 1e-2,
                "{} vs {}",
                thin(&got),
                thin(&cov)
            );
        }
    }

    /// Too few draws, or non-finite ones, give no metric.
    #[test]
    fn too_few_or_bad_draws_give_none() {
        let d = 3;
        let mut est = GradientMetricEstimator::new(&MassMatrix::Identity, d);
        for k in 0..=d {
            est.add(
                &[k as f64, 0.5 * k as f64, -(k as f64).sqrt()],
                &[1.0, k as f64, 0.0],
            );
        }
        assert!(est.mass_matrix().is_none());
        est.add(&[f64::NAN, 0.0, 0.0], &[0.0, 0.0, 0.0]);
        assert!(est.mass_matrix().is_none());
    }
}
