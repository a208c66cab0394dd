//! Inference machinery on plain f64 data, independent of the physics and of the tensor backend: the
//! GIGA-Lens pipeline (Sec. 2.3-2.5, Table 1) of multistart MAP -> full-rank VI -> preconditioned HMC, and
//! the convergence diagnostics of Vehtari et al. (2021). Every algorithm works on a batched
//! [`LogDensity`], takes a seed (MAP's randomness is in its prior draws) and reports each step to a
//! progress callback.

pub mod adam;
pub mod diagnostics;
pub mod hmc;
pub mod laplace;
pub mod lbfgs;
pub mod map;
pub mod newton;
pub mod progress;
pub mod schedule;
pub mod vi;

#[cfg(test)]
pub(crate) mod test_densities;

pub use crate::density::LogDensity;
pub use adam::AdamConfig;
pub use diagnostics::{ParamDiagnostics, diagnose};
pub use hmc::{HmcDraws, HmcOptions, MassMatrix, sample_hmc};
pub use lbfgs::{LbfgsOptions, LbfgsResult, lbfgs_ascent, lbfgs_ascent_preconditioned};
pub use map::{LossTrace, MapOptions, MapResult, multistart_map};
pub use newton::{NewtonOptions, newton_polish};
pub use progress::{Progress, no_progress};
pub use schedule::{LrSchedule, Ramp};
pub use vi::{ViInit, ViOptions, ViResult, fit_vi};

/// The whole GIGA-Lens pipeline (prior draws -> MAP -> VI -> HMC preconditioned by the VI covariance ->
/// diagnostics) on targets whose answer is known.
#[cfg(test)]
mod pipeline_tests {
    use super::*;
    use crate::prob::{LogLikelihood, ParamLayout, Posterior, Prior, prior::MvNormal};
    use anyhow::Result;
    use rand::{SeedableRng, rngs::StdRng};

    /// Three independent "lens" parameters with GIGA-Lens-style priors (eq. 8) and a Gaussian likelihood in
    /// physical space centred on `truth` with widths `w`.
    struct GaussLike {
        truth: [f64; 3],
        w: [f64; 3],
    }
    impl LogLikelihood for GaussLike {
        fn dim(&self) -> usize {
            3
        }
        fn value_and_grad(
            &self,
            t: &[f64],
            batch: usize,
            ll: &mut [f64],
            grad: &mut [f64],
        ) -> Result<()> {
            for r in 0..batch {
                ll[r] = 0.0;
                for k in 0..3 {
                    let z = (t[3 * r + k] - self.truth[k]) / self.w[k];
                    ll[r] -= 0.5 * z * z;
                    grad[3 * r + k] = -z / self.w[k];
                }
            }
            Ok(())
        }
    }

    fn layout() -> ParamLayout {
        let mut l = ParamLayout::new();
        l.add_scalar(
            "theta_e",
            Prior::LogNormal {
                mu: 1.25f64.ln(),
                sigma: 0.4,
            },
            None,
        )
        .unwrap();
        l.add_scalar(
            "gamma",
            Prior::TruncatedNormal {
                mu: 2.0,
                sigma: 0.5,
                lo: 1.0,
                hi: 3.0,
            },
            None,
        )
        .unwrap();
        l.add_scalar(
            "e1",
            Prior::Normal {
                mu: 0.0,
                sigma: 0.2,
            },
            None,
        )
        .unwrap();
        l
    }

    /// Posterior mean and sd of one parameter, prior(x) N(x; truth, w), by quadrature on a fine grid.
    fn exact_moments(prior: &Prior, truth: f64, w: f64) -> (f64, f64) {
        let (n, lo, hi) = (200_000, truth - 12.0 * w, truth + 12.0 * w);
        let h = (hi - lo) / n as f64;
        let (mut z, mut m1, mut m2) = (0.0, 0.0, 0.0);
        for i in 0..=n {
            let x = lo + i as f64 * h;
            let p = (prior.log_prob(x) - 0.5 * ((x - truth) / w).powi(2)).exp();
            z += p;
            m1 += p * x;
            m2 += p * x * x;
        }
        let m = m1 / z;
        (m, (m2 / z - m * m).sqrt())
    }

    #[test]
    fn recovers_a_posterior_through_bijectors() {
        let like = GaussLike {
            truth: [1.4, 2.9, 0.05],
            w: [0.01, 0.08, 0.02],
        };
        let post = Posterior::new(layout(), like).unwrap();
        let mut rng = StdRng::seed_from_u64(42);
        let starts = post.layout().sample_prior(&mut rng, 64);
        let map = multistart_map(&post, &starts, &MapOptions::default(), no_progress).unwrap();
        let vi_opts = ViOptions {
            steps: 1500,
            n_samples: 64,
            schedule: LrSchedule::ramp(0.0, 2e-2, 200, 2.0).then(1e-3, 1300, 1.0),
            seed: 1,
            ..Default::default()
        };
        let vi = fit_vi(&post, map.best(), &vi_opts, no_progress).unwrap();
        let mass = MassMatrix::from_cholesky(vi.chol.clone(), 3).unwrap();
        let init = vi.sample(&mut rng, 16).unwrap();
        let hmc_opts = HmcOptions {
            n_burn: 300,
            n_samples: 600,
            seed: 3,
            ..Default::default()
        };
        let draws = sample_hmc(&post, &init, &mass, &hmc_opts, no_progress).unwrap();
        assert_eq!(draws.n_divergent(), 0);
        let diag = diagnose(&draws);
        let mut phys = vec![0.0; draws.draws.len()];
        post.layout().to_physical(&draws.draws, &mut phys);
        let n = (phys.len() / 3) as f64;
        for (k, b) in post.layout().blocks().iter().enumerate() {
            assert!(diag[k].rhat < 1.01, "{}: R-hat {}", b.name, diag[k].rhat);
            let crate::prob::BlockPrior::Iid(prior) = &b.prior else {
                unreachable!()
            };
            let (m_want, s_want) =
                exact_moments(prior, post.likelihood().truth[k], post.likelihood().w[k]);
            let xs: Vec<f64> = phys.iter().skip(k).step_by(3).copied().collect();
            let m = xs.iter().sum::<f64>() / n;
            let s = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            // Monte-Carlo error of the mean sd/sqrt(ESS), of the sd about sd/sqrt(2 ESS); 5 of each.
            let ess = diag[k].ess_bulk;
            assert!(
                (m - m_want).abs() < 5.0 * s_want / ess.sqrt(),
                "{}: mean {m} vs {m_want}",
                b.name
            );
            assert!(
                (s - s_want).abs() < 5.0 * s_want / (2.0 * ess).sqrt(),
                "{}: sd {s} vs {s_want}",
                b.name
            );
        }
        // gamma's truth 2.9 sits near the upper prior bound 3: its posterior is skewed, not Gaussian, and
        // the sigmoid bijector keeps every draw inside (1, 3).
        assert!(phys.iter().skip(1).step_by(3).all(|&g| g > 1.0 && g < 3.0));
    }

    /// A correlated Gaussian with scales from 1e-3 to 1: the MAP point and the VI covariance feed HMC, whose
    /// draws reproduce the exact mean and covariance within Monte-Carlo error.
    #[test]
    fn vi_preconditioned_hmc_on_a_strongly_scaled_gaussian() {
        let sd = [1e-3, 1.0, 0.05, 0.3, 0.01];
        let corr = |i: usize, j: usize| {
            if i == j {
                1.0
            } else {
                0.6f64.powi((i as i32 - j as i32).abs())
            }
        };
        let cov: Vec<f64> = (0..25)
            .map(|k| corr(k / 5, k % 5) * sd[k / 5] * sd[k % 5])
            .collect();
        let p = MvNormal::new(vec![0.5, -1.0, 2.0, 0.0, 0.1], &cov).unwrap();
        let target = p.clone();
        let mut rng = StdRng::seed_from_u64(8);
        let starts: Vec<f64> = (0..5 * 8)
            .map(|k| p.mean()[k % 5] + 0.5 * (rand::RngExt::random::<f64>(&mut rng) - 0.5))
            .collect();
        let map = multistart_map(
            &target,
            &starts,
            &MapOptions {
                steps: 1500,
                ..Default::default()
            },
            no_progress,
        )
        .unwrap();
        let vi_opts = ViOptions {
            steps: 2000,
            n_samples: 64,
            schedule: LrSchedule::ramp(0.0, 3e-2, 300, 2.0).then(1e-3, 1700, 1.0),
            seed: 2,
            ..Default::default()
        };
        let vi = fit_vi(&target, map.best(), &vi_opts, no_progress).unwrap();
        let vi_cov = vi.covariance();
        for i in 0..5 {
            let r = vi_cov[i * 5 + i].sqrt() / sd[i];
            assert!((r - 1.0).abs() < 0.1, "VI sd {i} off by a factor {r}");
        }
        let mass = MassMatrix::from_cholesky(vi.chol.clone(), 5).unwrap();
        let init = vi.sample(&mut rng, 16).unwrap();
        let draws = sample_hmc(
            &target,
            &init,
            &mass,
            &HmcOptions {
                n_burn: 200,
                n_samples: 500,
                seed: 4,
                ..Default::default()
            },
            no_progress,
        )
        .unwrap();
        let diag = diagnose(&draws);
        let ess = diag
            .iter()
            .map(|d| d.ess_bulk)
            .fold(f64::INFINITY, f64::min);
        assert!(ess > 1000.0, "min bulk ESS {ess}");
        let (m, c) = (draws.mean(), draws.covariance());
        for i in 0..5 {
            assert!(diag[i].rhat < 1.01);
            assert!(
                (m[i] - p.mean()[i]).abs() < 5.0 * sd[i] / ess.sqrt(),
                "mean {i}"
            );
            for j in 0..5 {
                let rho = corr(i, j);
                let tol = 5.0 * sd[i] * sd[j] * ((1.0 + rho * rho) / ess).sqrt();
                assert!(
                    (c[i * 5 + j] - cov[i * 5 + j]).abs() < tol,
                    "cov ({i},{j}): {} vs {}",
                    c[i * 5 + j],
                    cov[i * 5 + j]
                );
            }
        }
    }
}
