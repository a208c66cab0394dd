//! The latent prior p(z) used for inference (Sec. 2.1): a multivariate normal fitted to the
//! encoded means {mu_e(x_i)} of the training set, with its covariance multiplied by 9 so that
//! it "roughly confines the latent variable to realistic regions of the latent space while
//! remaining diffuse enough that the likelihood drives MAP estimates".
//!
//! Stored in the checkpoint as `prior.json` in f64: mean (D), covariance (D x D, row-major,
//! already scaled), its lower Cholesky factor L (L L^T = cov + jitter I), the scale, and the
//! jitter. The jitter is 0 unless the scaled covariance is not numerically positive definite
//! (e.g. fewer training images than latent dimensions); then the smallest of
//! 1e-10, 1e-9, ..., 1e-6 times the mean diagonal variance that makes the factorisation succeed
//! is added to the diagonal, and recorded. Larger defects are an error.

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The paper's covariance factor ("rescaling its covariance matrix by a factor of 9").
pub const PAPER_PRIOR_SCALE: f64 = 9.0;

/// N(mean, cov) over the latent space, with a checked Cholesky factor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatentPrior {
    /// Latent dimension D.
    pub latent_dim: usize,
    /// Mean of the encoded means, length D.
    pub mean: Vec<f64>,
    /// Covariance of the encoded means times `scale`, D x D row-major (symmetric).
    pub cov: Vec<f64>,
    /// Lower-triangular L, D x D row-major, with L L^T = cov + jitter I.
    pub chol: Vec<f64>,
    /// Factor the sample covariance was multiplied by (paper: 9).
    pub scale: f64,
    /// Diagonal jitter added before factorising (0 when none was needed).
    #[serde(default)]
    pub jitter: f64,
    /// Number of encoded images the fit used.
    #[serde(default)]
    pub n_images: usize,
}

/// Lower Cholesky factor of a symmetric D x D row-major matrix; `None` if not positive definite.
pub fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if !(s > 0.0) || !s.is_finite() {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Some(l)
}

impl LatentPrior {
    /// Fit N(mean, scale * cov) to `n` latent vectors `means` (row-major `n x d`), with the
    /// unbiased sample covariance.
    pub fn fit(means: &[f64], n: usize, d: usize, scale: f64) -> Result<LatentPrior> {
        ensure!(d >= 1, "latent prior: latent dimension must be at least 1");
        ensure!(
            means.len() == n * d,
            "latent prior: {} values for {n} vectors of dimension {d}",
            means.len()
        );
        ensure!(
            n >= 2,
            "latent prior: need at least 2 encoded training images to fit a covariance, got {n}"
        );
        ensure!(
            scale.is_finite() && scale > 0.0,
            "--prior-scale must be a positive number (got {scale})"
        );
        ensure!(
            means.iter().all(|v| v.is_finite()),
            "latent prior: the encoded means contain NaN or infinite values"
        );
        let mut mean = vec![0.0; d];
        for row in means.chunks(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0.0; d * d];
        for row in means.chunks(d) {
            for i in 0..d {
                let di = row[i] - mean[i];
                for j in 0..=i {
                    cov[i * d + j] += di * (row[j] - mean[j]);
                }
            }
        }
        let norm = scale / (n as f64 - 1.0);
        for i in 0..d {
            for j in 0..=i {
                let v = cov[i * d + j] * norm;
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
        }
        let (chol, jitter) = factor_with_jitter(&cov, d)?;
        Ok(LatentPrior {
            latent_dim: d,
            mean,
            cov,
            chol,
            scale,
            jitter,
            n_images: n,
        })
    }

    /// Check lengths, finiteness, symmetry, and that `chol` is lower triangular with
    /// L L^T = cov + jitter I to 1e-8 relative accuracy.
    pub fn validate(&self) -> Result<()> {
        let d = self.latent_dim;
        ensure!(d >= 1, "latent_dim is 0");
        ensure!(
            self.mean.len() == d,
            "mean has {} entries, latent_dim is {d}",
            self.mean.len()
        );
        ensure!(
            self.cov.len() == d * d,
            "cov has {} entries, expected {d}x{d}",
            self.cov.len()
        );
        ensure!(
            self.chol.len() == d * d,
            "chol has {} entries, expected {d}x{d}",
            self.chol.len()
        );
        ensure!(
            self.mean
                .iter()
                .chain(&self.cov)
                .chain(&self.chol)
                .all(|v| v.is_finite()),
            "mean, cov or chol contain NaN or infinite values"
        );
        let tr: f64 = (0..d).map(|i| self.cov[i * d + i]).sum::<f64>() / d as f64;
        let tol = 1e-8 * tr.abs().max(f64::MIN_POSITIVE);
        for i in 0..d {
            for j in 0..d {
                ensure!(
                    (self.cov[i * d + j] - self.cov[j * d + i]).abs() <= tol,
                    "cov is not symmetric at ({i},{j})"
                );
                if j > i {
                    ensure!(
                        self.chol[i * d + j] == 0.0,
                        "chol is not lower triangular at ({i},{j})"
                    );
                } else {
                    let llt: f64 = (0..=j)
                        .map(|k| self.chol[i * d + k] * self.chol[j * d + k])
                        .sum();
                    let target = self.cov[i * d + j] + if i == j { self.jitter } else { 0.0 };
                    ensure!(
                        (llt - target).abs() <= tol.max(1e-12),
                        "chol does not factor cov at ({i},{j}): L L^T = {llt}, cov = {target}"
                    );
                }
            }
            ensure!(
                self.chol[i * d + i] > 0.0,
                "chol has a non-positive diagonal at {i}"
            );
        }
        Ok(())
    }

    /// log N(z | mean, cov + jitter I).
    /// 1/2 log det of the covariance (with its jitter): the log of the prior's volume relative to
    /// N(0, I), comparable across priors of the same dimension.
    pub fn log_volume(&self) -> f64 {
        let d = self.latent_dim;
        (0..d).map(|i| self.chol[i * d + i].ln()).sum()
    }

    pub fn log_prob(&self, z: &[f64]) -> f64 {
        let d = self.latent_dim;
        // Solve L y = z - mean.
        let mut y = vec![0.0; d];
        for i in 0..d {
            let mut s = z[i] - self.mean[i];
            for k in 0..i {
                s -= self.chol[i * d + k] * y[k];
            }
            y[i] = s / self.chol[i * d + i];
        }
        let log_det: f64 = (0..d).map(|i| self.chol[i * d + i].ln()).sum();
        -0.5 * y.iter().map(|v| v * v).sum::<f64>()
            - log_det
            - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln()
    }

    /// z = mean + L eps for a standard-normal `eps` (length D): a draw from the prior.
    pub fn transform(&self, eps: &[f64]) -> Vec<f64> {
        let d = self.latent_dim;
        (0..d)
            .map(|i| self.mean[i] + (0..=i).map(|k| self.chol[i * d + k] * eps[k]).sum::<f64>())
            .collect()
    }

    /// Read and validate `prior.json`.
    pub fn load(path: &Path) -> Result<LatentPrior> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let p: LatentPrior = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid latent prior", path.display()))?;
        p.validate()
            .with_context(|| format!("{}: invalid latent prior", path.display()))?;
        Ok(p)
    }
}

/// Cholesky factor of `cov`, adding the smallest diagonal jitter from the documented ladder if
/// needed. Returns the factor and the jitter used.
fn factor_with_jitter(cov: &[f64], d: usize) -> Result<(Vec<f64>, f64)> {
    if let Some(l) = cholesky(cov, d) {
        return Ok((l, 0.0));
    }
    let mean_var = (0..d).map(|i| cov[i * d + i]).sum::<f64>() / d as f64;
    if !(mean_var > 0.0) || !mean_var.is_finite() {
        bail!(
            "latent prior: the covariance of the encoded means is zero or not finite (mean variance {mean_var}); the encoder collapsed"
        );
    }
    for exp in [-10, -9, -8, -7, -6] {
        let jitter = mean_var * 10f64.powi(exp);
        let mut a = cov.to_vec();
        for i in 0..d {
            a[i * d + i] += jitter;
        }
        if let Some(l) = cholesky(&a, d) {
            return Ok((l, jitter));
        }
    }
    bail!(
        "latent prior: the covariance of the encoded means is not positive definite even with a \
         diagonal jitter of 1e-6 x its mean variance; too few training images for {d} latent dimensions?"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_of_known_matrix() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let l = cholesky(&a, 2).unwrap();
        assert_eq!(l, vec![2.0, 0.0, 1.0, 2f64.sqrt()]);
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }
}
