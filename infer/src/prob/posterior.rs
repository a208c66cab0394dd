//! The `Posterior` adapter: a batched log-likelihood of physical parameters turned into the log-density on
//! unconstrained space that MAP, VI and HMC work with (GIGA-Lens eq. 13):
//!
//! `log p~(u | I_obs) = log L(I_obs | g(u)) + log p(g(u)) + sum_i log|g_i'(u_i)|`.

use anyhow::{Result, ensure};

use super::layout::ParamLayout;
use crate::density::LogDensity;

/// A batched log-likelihood of PHYSICAL parameters, log L(I_obs | theta) (GIGA-Lens eq. 6), with its gradient
/// w.r.t. the physical parameters. Same calling convention as [`LogDensity`]: `theta` is row-major
/// `batch x dim`; non-finite values are allowed (treated as -inf), errors are reserved for real failures.
pub trait LogLikelihood: Sync {
    fn dim(&self) -> usize;
    fn value_and_grad(
        &self,
        theta: &[f64],
        batch: usize,
        loglike: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()>;
    fn value(&self, theta: &[f64], batch: usize, loglike: &mut [f64]) -> Result<()> {
        let mut grad = vec![0.0; batch * self.dim()];
        self.value_and_grad(theta, batch, loglike, &mut grad)
    }
}

/// Posterior on unconstrained space: likelihood at g(u) plus prior plus log-Jacobian (eq. 13), with the
/// gradient pulled back through the bijectors.
pub struct Posterior<L> {
    layout: ParamLayout,
    likelihood: L,
}

impl<L: LogLikelihood> Posterior<L> {
    pub fn new(layout: ParamLayout, likelihood: L) -> Result<Self> {
        ensure!(layout.dim() > 0, "posterior: the parameter layout is empty");
        ensure!(
            layout.dim() == likelihood.dim(),
            "posterior: the parameter layout has {} columns but the likelihood expects {}",
            layout.dim(),
            likelihood.dim()
        );
        Ok(Self { layout, likelihood })
    }
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }
    pub fn likelihood(&self) -> &L {
        &self.likelihood
    }
    pub fn into_parts(self) -> (ParamLayout, L) {
        (self.layout, self.likelihood)
    }
}

impl<L: LogLikelihood> LogDensity for Posterior<L> {
    fn dim(&self) -> usize {
        self.layout.dim()
    }

    fn value_and_grad(
        &self,
        u: &[f64],
        batch: usize,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        self.value_and_grad_tempered(u, batch, 1.0, logp, grad)
    }

    fn value_and_grad_tempered(
        &self,
        u: &[f64],
        batch: usize,
        beta: f64,
        logp: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        let d = self.layout.dim();
        let mut theta = vec![0.0; batch * d];
        self.layout.to_physical(u, &mut theta);
        let mut grad_theta = vec![0.0; batch * d];
        self.likelihood
            .value_and_grad(&theta, batch, logp, &mut grad_theta)?;
        if beta != 1.0 {
            logp.iter_mut().for_each(|l| *l *= beta);
            grad_theta.iter_mut().for_each(|g| *g *= beta);
        }
        self.layout.pullback_gradient(u, &grad_theta, grad);
        let mut lp = vec![0.0; batch];
        let mut gp = vec![0.0; batch * d];
        self.layout.log_prior_plus_logdet(u, &mut lp, Some(&mut gp));
        for (l, p) in logp.iter_mut().zip(&lp) {
            *l += p;
        }
        for (g, p) in grad.iter_mut().zip(&gp) {
            *g += p;
        }
        Ok(())
    }

    fn value(&self, u: &[f64], batch: usize, logp: &mut [f64]) -> Result<()> {
        let d = self.layout.dim();
        let mut theta = vec![0.0; batch * d];
        self.layout.to_physical(u, &mut theta);
        self.likelihood.value(&theta, batch, logp)?;
        let mut lp = vec![0.0; batch];
        self.layout.log_prior_plus_logdet(u, &mut lp, None);
        for (l, p) in logp.iter_mut().zip(&lp) {
            *l += p;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prob::layout::tests::layout;
    use rand::{SeedableRng, rngs::StdRng};

    /// A Gaussian "image" likelihood in physical space: sum_k -(m_k(theta) - d_k)^2 / 2 with a nonlinear model.
    struct ToyLikelihood;
    impl ToyLikelihood {
        fn model(t: &[f64]) -> [f64; 3] {
            [
                t[0] * t[1] + t[5],
                t[2] * t[3].sqrt() - t[4],
                (t[0] - t[3]).sin() + t[4] * t[5],
            ]
        }
    }
    impl LogLikelihood for ToyLikelihood {
        fn dim(&self) -> usize {
            6
        }
        fn value_and_grad(
            &self,
            theta: &[f64],
            batch: usize,
            ll: &mut [f64],
            grad: &mut [f64],
        ) -> Result<()> {
            let data = [2.0, 0.5, -0.3];
            for r in 0..batch {
                let t = &theta[r * 6..(r + 1) * 6];
                let m = Self::model(t);
                let res: Vec<f64> = m.iter().zip(&data).map(|(a, b)| a - b).collect();
                ll[r] = -0.5 * res.iter().map(|v| v * v).sum::<f64>();
                let c = (t[0] - t[3]).cos();
                let g = &mut grad[r * 6..(r + 1) * 6];
                g[0] = -(res[0] * t[1] + res[2] * c);
                g[1] = -res[0] * t[0];
                g[2] = -res[1] * t[3].sqrt();
                g[3] = -(res[1] * t[2] * 0.5 / t[3].sqrt() - res[2] * c);
                g[4] = -(-res[1] + res[2] * t[5]);
                g[5] = -(res[0] + res[2] * t[4]);
            }
            Ok(())
        }
    }

    #[test]
    fn posterior_gradient_matches_finite_differences() {
        let post = Posterior::new(layout(), ToyLikelihood).unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        let u = post.layout().sample_prior(&mut rng, 4);
        let mut lp = vec![0.0; 4];
        let mut g = vec![0.0; 24];
        post.value_and_grad(&u, 4, &mut lp, &mut g).unwrap();
        let mut lp_only = vec![0.0; 4];
        post.value(&u, 4, &mut lp_only).unwrap();
        let h = 1e-6;
        for r in 0..4 {
            assert!((lp[r] - lp_only[r]).abs() < 1e-12);
            for c in 0..6 {
                let (mut a, mut b) = (
                    u[r * 6..(r + 1) * 6].to_vec(),
                    u[r * 6..(r + 1) * 6].to_vec(),
                );
                a[c] += h;
                b[c] -= h;
                let (mut fa, mut fb) = ([0.0], [0.0]);
                post.value(&a, 1, &mut fa).unwrap();
                post.value(&b, 1, &mut fb).unwrap();
                let fd = (fa[0] - fb[0]) / (2.0 * h);
                let got = g[r * 6 + c];
                assert!(
                    (got - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                    "row {r} col {c}: {got} vs {fd}"
                );
            }
        }
    }
}
