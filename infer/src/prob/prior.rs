//! Prior distributions of physical parameters (GIGA-Lens eq. 8; Chianese et al. 2020 eqs. 18-23): normal,
//! lognormal, truncated normal and uniform for scalars, and a multivariate normal (mean + Cholesky factor)
//! for block parameters such as the VAE latent `z`, whose prior is the Gaussian fitted to the encoded
//! training set.
//!
//! Every density is fully normalised (the log-evidence and the chi^2 reports rely on it), has an analytic
//! gradient, can be sampled with a seeded generator, and names the bijector that maps R onto its support
//! (GIGA-Lens Sec. 2.2).

use anyhow::{Result, bail};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::bijector::Bijector;
use crate::density::LogDensity;
use crate::math::linalg;
use crate::math::special::{HALF_LN_2PI, log_ndtr_diff, ndtr, ndtri};

/// A scalar prior. Serialised as `{ kind = "normal", mu = 0.0, sigma = 0.1 }` etc.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Prior {
    /// N(mu, sigma).
    Normal { mu: f64, sigma: f64 },
    /// exp(N(mu, sigma)): `mu` and `sigma` are those of ln x (GIGA-Lens writes exp(N(ln 1.25, 0.25))).
    LogNormal { mu: f64, sigma: f64 },
    /// N(mu, sigma) restricted to [lo, hi] and renormalised; either bound may be infinite.
    TruncatedNormal {
        mu: f64,
        sigma: f64,
        lo: f64,
        hi: f64,
    },
    /// U(lo, hi).
    Uniform { lo: f64, hi: f64 },
}

impl Prior {
    /// Checks the constants; the error names the distribution and the bad field.
    pub fn validate(&self) -> Result<()> {
        let check_sigma = |mu: f64, sigma: f64, name: &str| -> Result<()> {
            if !mu.is_finite() {
                bail!("{name} prior: mu must be finite, got {mu}");
            }
            if !(sigma.is_finite() && sigma > 0.0) {
                bail!("{name} prior: sigma must be positive and finite, got {sigma}");
            }
            Ok(())
        };
        match *self {
            Prior::Normal { mu, sigma } => check_sigma(mu, sigma, "normal")?,
            Prior::LogNormal { mu, sigma } => check_sigma(mu, sigma, "lognormal")?,
            Prior::TruncatedNormal { mu, sigma, lo, hi } => {
                check_sigma(mu, sigma, "truncated_normal")?;
                if lo.is_nan() || hi.is_nan() || lo >= hi {
                    bail!("truncated_normal prior: needs lo < hi, got lo = {lo}, hi = {hi}");
                }
                if !log_ndtr_diff((lo - mu) / sigma, (hi - mu) / sigma).is_finite() {
                    bail!(
                        "truncated_normal prior: [{lo}, {hi}] holds no probability mass of N({mu}, {sigma})"
                    );
                }
            }
            Prior::Uniform { lo, hi } => {
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    bail!("uniform prior: needs finite lo < hi, got lo = {lo}, hi = {hi}");
                }
            }
        }
        Ok(())
    }

    /// Name used in messages and in the model file.
    pub fn name(&self) -> &'static str {
        match self {
            Prior::Normal { .. } => "normal",
            Prior::LogNormal { .. } => "lognormal",
            Prior::TruncatedNormal { .. } => "truncated_normal",
            Prior::Uniform { .. } => "uniform",
        }
    }

    /// Support `(lo, hi)`; the density is evaluated on the closed interval so that a bijector saturating to a
    /// bound in floating point (sigmoid at |u| > 37) still gets a finite value.
    pub fn support(&self) -> (f64, f64) {
        match *self {
            Prior::Normal { .. } => (f64::NEG_INFINITY, f64::INFINITY),
            Prior::LogNormal { .. } => (0.0, f64::INFINITY),
            Prior::TruncatedNormal { lo, hi, .. } | Prior::Uniform { lo, hi } => (lo, hi),
        }
    }

    /// The bijector from R onto the support: identity, exp (eq. 9), sigmoid (eq. 10) for bounded truncated
    /// normals, the normal CDF for uniform priors, or a one-sided exp for half-bounded truncated normals.
    pub fn default_bijector(&self) -> Bijector {
        let (lo, hi) = self.support();
        match (lo.is_finite(), hi.is_finite()) {
            (false, false) => Bijector::Identity,
            // a uniform prior becomes N(0, 1) in u (see `Bijector::NormalCdf`)
            (true, true) if matches!(self, Prior::Uniform { .. }) => Bijector::NormalCdf { lo, hi },
            (true, true) => Bijector::Sigmoid { lo, hi },
            (true, false) if lo == 0.0 => Bijector::Exp,
            (true, false) => Bijector::LowerBound { lo },
            (false, true) => Bijector::UpperBound { hi },
        }
    }

    /// log p(x), normalised; -inf outside the support.
    pub fn log_prob(&self, x: f64) -> f64 {
        match *self {
            Prior::Normal { mu, sigma } => {
                let z = (x - mu) / sigma;
                -0.5 * z * z - sigma.ln() - HALF_LN_2PI
            }
            Prior::LogNormal { mu, sigma } => {
                if x.is_nan() {
                    return f64::NAN;
                }
                if x <= 0.0 {
                    return f64::NEG_INFINITY;
                }
                let lx = x.ln();
                let z = (lx - mu) / sigma;
                -lx - 0.5 * z * z - sigma.ln() - HALF_LN_2PI
            }
            Prior::TruncatedNormal { mu, sigma, lo, hi } => {
                if x.is_nan() {
                    return f64::NAN;
                }
                if x < lo || x > hi {
                    return f64::NEG_INFINITY;
                }
                let z = (x - mu) / sigma;
                -0.5 * z * z
                    - sigma.ln()
                    - HALF_LN_2PI
                    - log_ndtr_diff((lo - mu) / sigma, (hi - mu) / sigma)
            }
            Prior::Uniform { lo, hi } => {
                if x.is_nan() {
                    return f64::NAN;
                }
                if x < lo || x > hi {
                    f64::NEG_INFINITY
                } else {
                    -(hi - lo).ln()
                }
            }
        }
    }

    /// d log p / dx inside the support (0 outside, where the value is -inf anyway).
    pub fn grad_log_prob(&self, x: f64) -> f64 {
        match *self {
            Prior::Normal { mu, sigma } => -(x - mu) / (sigma * sigma),
            Prior::LogNormal { mu, sigma } => {
                if x > 0.0 {
                    -(1.0 + (x.ln() - mu) / (sigma * sigma)) / x
                } else {
                    0.0
                }
            }
            Prior::TruncatedNormal { mu, sigma, lo, hi } => {
                if x >= lo && x <= hi {
                    -(x - mu) / (sigma * sigma)
                } else {
                    0.0
                }
            }
            Prior::Uniform { .. } => 0.0,
        }
    }

    /// One draw. Truncated normals use the inverse CDF on the side of the mean where the tail is thin, so
    /// draws stay accurate even for bounds many sigma away.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match *self {
            Prior::Normal { mu, sigma } => mu + sigma * rng.sample::<f64, _>(StandardNormal),
            Prior::LogNormal { mu, sigma } => {
                (mu + sigma * rng.sample::<f64, _>(StandardNormal)).exp()
            }
            Prior::TruncatedNormal { mu, sigma, lo, hi } => {
                let a = (lo - mu) / sigma;
                let b = (hi - mu) / sigma;
                let u = open_unit(rng);
                let z = if a > 0.0 {
                    // Upper tail: reflect so the CDF values are small and accurate.
                    let (pa, pb) = (ndtr(-b), ndtr(-a));
                    -ndtri(pa + u * (pb - pa))
                } else {
                    let (pa, pb) = (ndtr(a), ndtr(b));
                    ndtri(pa + u * (pb - pa))
                };
                (mu + sigma * z.clamp(a, b)).clamp(lo, hi)
            }
            Prior::Uniform { lo, hi } => lo + (hi - lo) * open_unit(rng),
        }
    }
}

/// A uniform draw in the open interval (0, 1): never exactly 0, so bounded priors never produce a bound
/// (whose unconstrained image would be infinite).
pub fn open_unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    loop {
        let u: f64 = rng.random();
        if u > 0.0 {
            return u;
        }
    }
}

/// Multivariate normal N(mean, L L^T) with lower Cholesky factor `L` (row-major), e.g. the latent prior of
/// the VAE (the Gaussian fitted to the encoded training set, Chianese et al. 2020 Sec. 3).
#[derive(Clone, Debug, PartialEq)]
pub struct MvNormal {
    mean: Vec<f64>,
    chol: Vec<f64>,
    log_norm: f64,
}

impl MvNormal {
    /// From a mean and a covariance matrix (row-major `d x d`); errors if the covariance is not symmetric
    /// positive definite or the sizes disagree.
    pub fn new(mean: Vec<f64>, cov: &[f64]) -> Result<Self> {
        let d = mean.len();
        if cov.len() != d * d {
            bail!(
                "multivariate normal: covariance has {} entries, expected {d}x{d}",
                cov.len()
            );
        }
        for i in 0..d {
            for j in 0..i {
                let (a, b) = (cov[i * d + j], cov[j * d + i]);
                if (a - b).abs() > 1e-10 * (a.abs() + b.abs()).max(1e-300) {
                    bail!(
                        "multivariate normal: covariance is not symmetric at ({i}, {j}): {a} vs {b}"
                    );
                }
            }
        }
        let chol = linalg::cholesky(cov, d)
            .map_err(|e| anyhow::anyhow!("multivariate normal covariance: {e}"))?;
        Self::from_cholesky(mean, chol)
    }

    /// From a mean and a lower Cholesky factor with a positive diagonal.
    pub fn from_cholesky(mean: Vec<f64>, chol: Vec<f64>) -> Result<Self> {
        let d = mean.len();
        if d == 0 {
            bail!("multivariate normal: dimension must be at least 1");
        }
        if chol.len() != d * d {
            bail!(
                "multivariate normal: Cholesky factor has {} entries, expected {d}x{d}",
                chol.len()
            );
        }
        if mean.iter().any(|m| !m.is_finite()) || chol.iter().any(|c| !c.is_finite()) {
            bail!("multivariate normal: mean and Cholesky factor must be finite");
        }
        for i in 0..d {
            if chol[i * d + i] <= 0.0 {
                bail!(
                    "multivariate normal: Cholesky diagonal entry {i} is {} (must be > 0)",
                    chol[i * d + i]
                );
            }
        }
        let mut chol = chol;
        for i in 0..d {
            for j in i + 1..d {
                chol[i * d + j] = 0.0;
            }
        }
        let log_norm = -0.5 * linalg::log_det_from_cholesky(&chol, d) - d as f64 * HALF_LN_2PI;
        Ok(Self {
            mean,
            chol,
            log_norm,
        })
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }
    /// Lower Cholesky factor, row-major.
    pub fn cholesky(&self) -> &[f64] {
        &self.chol
    }
    /// Covariance L L^T, row-major.
    pub fn covariance(&self) -> Vec<f64> {
        linalg::lower_outer(&self.chol, self.dim())
    }

    /// Whitened residual w = L^{-1}(x - mean): the non-centred coordinates in which this prior is N(0, I).
    pub fn whiten(&self, x: &[f64]) -> Vec<f64> {
        let mut w: Vec<f64> = x.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
        linalg::lower_solve(&self.chol, self.dim(), &mut w);
        w
    }

    /// log N(x; mean, L L^T), normalised.
    pub fn log_prob(&self, x: &[f64]) -> f64 {
        let w = self.whiten(x);
        self.log_norm - 0.5 * w.iter().map(|v| v * v).sum::<f64>()
    }

    /// Writes log N(x) and its gradient -Sigma^{-1}(x - mean) = -L^{-T} L^{-1} (x - mean) into `grad`.
    pub fn log_prob_and_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let w = self.whiten(x);
        let lp = self.log_norm - 0.5 * w.iter().map(|v| v * v).sum::<f64>();
        grad[..w.len()].copy_from_slice(&w);
        linalg::lower_t_solve(&self.chol, self.dim(), &mut grad[..w.len()]);
        for g in grad[..w.len()].iter_mut() {
            *g = -*g;
        }
        lp
    }

    /// x = mean + L w, the inverse of [`MvNormal::whiten`], written into `out`.
    pub fn unwhiten(&self, w: &[f64], out: &mut [f64]) {
        linalg::lower_mul(&self.chol, self.dim(), w, out);
        for (o, m) in out.iter_mut().zip(&self.mean) {
            *o += m;
        }
    }

    /// Gradient w.r.t. the whitened coordinates of a function whose gradient w.r.t. x is `grad_x`:
    /// L^T grad_x, written into `out`.
    pub fn pullback_white(&self, grad_x: &[f64], out: &mut [f64]) {
        linalg::lower_t_mul(&self.chol, self.dim(), grad_x, out);
    }

    /// One draw mean + L xi, xi ~ N(0, I), written into `out`.
    pub fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        let d = self.dim();
        let xi: Vec<f64> = (0..d)
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect();
        linalg::lower_mul(&self.chol, d, &xi, out);
        for (o, m) in out.iter_mut().zip(&self.mean) {
            *o += m;
        }
    }
}

/// A multivariate normal is a log-density on R^D (the test target of every sampler, and the VI
/// surrogate's own density).
impl LogDensity for MvNormal {
    fn dim(&self) -> usize {
        MvNormal::dim(self)
    }

    fn value_and_grad(
        &self,
        x: &[f64],
        batch: usize,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        let d = LogDensity::dim(self);
        for r in 0..batch {
            logp[r] = self.log_prob_and_grad(&x[r * d..(r + 1) * d], &mut grad[r * d..(r + 1) * d]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn scalars() -> Vec<Prior> {
        vec![
            Prior::Normal {
                mu: 0.3,
                sigma: 0.2,
            },
            Prior::LogNormal {
                mu: 1.25f64.ln(),
                sigma: 0.4,
            },
            Prior::TruncatedNormal {
                mu: 2.0,
                sigma: 0.5,
                lo: 1.0,
                hi: 3.0,
            },
            Prior::TruncatedNormal {
                mu: 0.0,
                sigma: 1.0,
                lo: 2.5,
                hi: f64::INFINITY,
            },
            Prior::Uniform { lo: 0.5, hi: 8.0 },
        ]
    }

    /// Integral of exp(log_prob) over the support by the composite Simpson rule (on u = g^{-1}(x) through
    /// the default bijector, so infinite supports become finite in practice); must be 1.
    #[test]
    fn densities_are_normalised() {
        for p in scalars() {
            p.validate().unwrap();
            let b = p.default_bijector();
            let (n, lo, hi) = (20_000, -40.0, 40.0);
            let h = (hi - lo) / n as f64;
            let f = |u: f64| (p.log_prob(b.forward(u)) + b.log_det_jacobian(u)).exp();
            let mut s = f(lo) + f(hi);
            for i in 1..n {
                s += f(lo + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
            }
            let integral = s * h / 3.0;
            assert!(
                (integral - 1.0).abs() < 1e-8,
                "{p:?} integrates to {integral}"
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let h = 1e-6;
        for p in scalars() {
            let b = p.default_bijector();
            for &u in &[-1.5, -0.2, 0.4, 1.1] {
                let x = b.forward(u);
                let fd = (p.log_prob(x + h) - p.log_prob(x - h)) / (2.0 * h);
                assert!(
                    (p.grad_log_prob(x) - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                    "{p:?} at {x}"
                );
            }
        }
    }

    /// Sample mean and variance against the closed forms; tolerance 5 standard errors of 40 000 draws.
    #[test]
    fn samples_have_the_right_moments() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 40_000;
        // (prior, mean, variance) from the closed forms; truncated N(0,1) on [2.5, inf):
        // mean = phi(2.5)/Q(2.5), var = 1 + 2.5 mean - mean^2.
        let phi = (-0.5f64 * 6.25).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let m_tn = phi / ndtr(-2.5);
        let ln_mu = 1.25f64.ln();
        // Truncated N(2, 0.5) on [1, 3] (a = -2, b = 2): mean 2, var = sigma^2 (1 - 4 phi(2) / Z).
        let z2 = ndtr(2.0) - ndtr(-2.0);
        let phi2 = (-2.0f64).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let cases = [
            (scalars()[0], 0.3, 0.04),
            (scalars()[2], 2.0, 0.25 * (1.0 - 4.0 * phi2 / z2)),
            (
                scalars()[1],
                (ln_mu + 0.08).exp(),
                (0.16f64.exp() - 1.0) * (2.0 * ln_mu + 0.16).exp(),
            ),
            (scalars()[3], m_tn, 1.0 + 2.5 * m_tn - m_tn * m_tn),
            (scalars()[4], 4.25, 7.5 * 7.5 / 12.0),
        ];
        for (p, mean, var) in cases {
            let xs: Vec<f64> = (0..n).map(|_| p.sample(&mut rng)).collect();
            let (lo, hi) = p.support();
            assert!(
                xs.iter()
                    .all(|&x| x > lo && x < hi || (x >= lo && x <= hi && lo.is_finite())),
                "{p:?}"
            );
            let m = xs.iter().sum::<f64>() / n as f64;
            let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
            assert!(
                (m - mean).abs() < 5.0 * (var / n as f64).sqrt(),
                "{p:?}: mean {m} vs {mean}"
            );
            // Var of the sample variance ~ 2 var^2 / n for near-Gaussian; heavier tails get a factor 4 slack.
            assert!(
                (v - var).abs() < 5.0 * 4.0 * var * (2.0 / n as f64).sqrt(),
                "{p:?}: var {v} vs {var}"
            );
        }
    }

    #[test]
    fn bad_constants_are_errors() {
        assert!(
            Prior::Normal {
                mu: 0.0,
                sigma: 0.0
            }
            .validate()
            .is_err()
        );
        assert!(Prior::Uniform { lo: 1.0, hi: 1.0 }.validate().is_err());
        let e = Prior::TruncatedNormal {
            mu: 0.0,
            sigma: 1.0,
            lo: 50.0,
            hi: 60.0,
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("no probability mass"), "{e}");
        let e = toml::from_str::<Prior>("kind = \"gamma\"\nk = 1.0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("gamma"), "{e}");
        let e = toml::from_str::<Prior>("kind = \"normal\"\nmu = 0.0\nsigma = 1.0\nsgima = 2.0")
            .unwrap_err();
        assert!(e.to_string().contains("sgima"), "{e}");
        let p: Prior = toml::from_str(
            "kind = \"truncated_normal\"\nmu = 2.0\nsigma = 0.5\nlo = 1.0\nhi = 3.0",
        )
        .unwrap();
        assert_eq!(
            p,
            Prior::TruncatedNormal {
                mu: 2.0,
                sigma: 0.5,
                lo: 1.0,
                hi: 3.0
            }
        );
    }

    #[test]
    fn mvnormal_log_prob_gradient_and_samples() {
        let cov = [1.0, 0.6, 0.0, 0.6, 2.0, -0.3, 0.0, -0.3, 0.5];
        let mvn = MvNormal::new(vec![1.0, -2.0, 0.5], &cov).unwrap();
        // log N at the mean = -0.5 ln det(2 pi Sigma); det = 1*(1-0.09) - 0.6*(0.3) = 0.73.
        let want = -0.5 * (0.73f64.ln() + 3.0 * (2.0 * std::f64::consts::PI).ln());
        assert!((mvn.log_prob(&[1.0, -2.0, 0.5]) - want).abs() < 1e-12);
        let x = [0.3, -1.1, 0.9];
        let mut g = [0.0; 3];
        mvn.log_prob_and_grad(&x, &mut g);
        for i in 0..3 {
            let (mut a, mut b) = (x, x);
            a[i] += 1e-6;
            b[i] -= 1e-6;
            let fd = (mvn.log_prob(&a) - mvn.log_prob(&b)) / 2e-6;
            assert!((g[i] - fd).abs() < 1e-6, "component {i}: {} vs {fd}", g[i]);
        }
        let mut rng = StdRng::seed_from_u64(3);
        let n = 50_000;
        let mut s = [0.0; 3];
        let mut c01 = 0.0;
        let mut out = [0.0; 3];
        for _ in 0..n {
            mvn.sample_into(&mut rng, &mut out);
            for i in 0..3 {
                s[i] += out[i];
            }
            c01 += (out[0] - 1.0) * (out[1] + 2.0);
        }
        assert!((s[1] / n as f64 + 2.0).abs() < 5.0 * (2.0 / n as f64).sqrt());
        // Var of the product estimate = (s00 s11 + s01^2)/n = 2.36/n.
        assert!((c01 / n as f64 - 0.6).abs() < 5.0 * (2.36 / n as f64).sqrt());
        assert!(MvNormal::new(vec![0.0; 2], &[1.0, 2.0, 2.0, 1.0]).is_err());
        assert!(
            MvNormal::new(vec![0.0; 2], &[1.0, 0.5, 0.4, 1.0])
                .unwrap_err()
                .to_string()
                .contains("symmetric")
        );
    }
}
