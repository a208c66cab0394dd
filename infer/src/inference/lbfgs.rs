//! L-BFGS ascent of a log-density (Nocedal & Wright 2006, Alg. 7.4-7.5), the last stage of the MAP
//! polish.
//!
//! Why, after Adam and the Levenberg-Marquardt steps of [`super::newton`]: with a VAE source the
//! posterior has ~76 dimensions, many of them latent directions that are weakly and unevenly
//! constrained. The finite-difference Hessian of [`super::laplace`] is built from gradients that
//! pass through an f32 decoder, so its smallest curvatures are noise and Newton steps stall a few
//! hundred nats below the mode (measured on a 256x256 Chianese mock: HMC then spent its whole
//! warm-up climbing). L-BFGS needs gradients only, one evaluation per iteration, and learns the
//! curvature along the path it takes.
//!
//! Each iteration: direction by the two-loop recursion over the last `memory` pairs (initial
//! scaling s'y / y'y), backtracking line search from step 1 with the Armijo condition (c1 = 1e-4),
//! and the pair kept only if the curvature s'y > 0. It stops after `max_iter` iterations, when
//! `patience` iterations in a row gain less than `tol` in log-density, or when no step along the
//! direction (nor along the gradient) increases it.

use anyhow::Result;
use std::collections::VecDeque;

use crate::density::Affine;
use crate::density::LogDensity;

/// Options of the L-BFGS polish.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LbfgsOptions {
    /// Maximum iterations (2000).
    pub max_iter: usize,
    /// Number of (s, y) pairs kept (10).
    pub memory: usize,
    /// An iteration gaining less than this in log-density counts as stalled (1e-3).
    pub tol: f64,
    /// Stop after this many stalled iterations in a row (5).
    pub patience: usize,
    /// In the polish: run in the coordinates whitened by the Newton stage's Hessian (true).
    pub precondition: bool,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        Self {
            max_iter: 2000,
            memory: 10,
            tol: 1e-3,
            patience: 5,
            precondition: true,
        }
    }
}

/// Result of an L-BFGS ascent.
#[derive(Clone, Debug, PartialEq)]
pub struct LbfgsResult {
    pub x: Vec<f64>,
    pub logp: f64,
    /// Iterations taken.
    pub iterations: usize,
    /// Log-density evaluations made (line-search trials included).
    pub evaluations: usize,
    /// Log-density after each iteration (the start first).
    pub trace: Vec<f64>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Ascend `density` from `x0`. Never returns a worse point than `x0`; a non-finite value or
/// gradient at a trial point counts as "no increase" (the step is shortened).
pub fn lbfgs_ascent<D: LogDensity + ?Sized>(
    density: &D,
    x0: &[f64],
    opts: &LbfgsOptions,
) -> Result<LbfgsResult> {
    ascent(density, x0, opts, false)
}

/// [`lbfgs_ascent`] in the coordinates `y` of `x = x0 + L y` ([`Affine`]), `cov_chol` = L the lower
/// Cholesky factor of a covariance estimate at `x0` (the inverse of the polish's Hessian): there the curvature
/// is about the identity (the posterior's condition number, ~1e6 with a VAE source, is gone), so the first
/// step is the full Newton step and the memory only corrects the estimate.
pub fn lbfgs_ascent_preconditioned<D: LogDensity + ?Sized>(
    density: &D,
    x0: &[f64],
    cov_chol: Vec<f64>,
    opts: &LbfgsOptions,
) -> Result<LbfgsResult> {
    let white = Affine::new(density, x0.to_vec(), cov_chol)?;
    let r = ascent(&white, &vec![0.0; x0.len()], opts, true)?;
    Ok(LbfgsResult {
        x: white.to_outer(&r.x),
        ..r
    })
}

/// The ascent; `unit_curvature`: the first direction is the gradient itself (the Hessian is about -I), not
/// the gradient scaled to unit length.
fn ascent<D: LogDensity + ?Sized>(
    density: &D,
    x0: &[f64],
    opts: &LbfgsOptions,
    unit_curvature: bool,
) -> Result<LbfgsResult> {
    let d = density.dim();
    let mut x = x0.to_vec();
    let mut lp = [0.0];
    let mut g = vec![0.0; d];
    density.value_and_grad(&x, 1, &mut lp, &mut g)?;
    let mut evaluations = 1;
    let mut logp = lp[0];
    if !logp.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Ok(LbfgsResult {
            x,
            logp,
            iterations: 0,
            evaluations,
            trace: vec![logp],
        });
    }
    // pairs for f = -log p: s = x_{k+1} - x_k, y = grad f_{k+1} - grad f_k = -(g_{k+1} - g_k)
    let mut pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
    let (mut stalled, mut iterations) = (0, 0);
    let mut x_new = vec![0.0; d];
    let mut g_new = vec![0.0; d];
    let mut trace = vec![logp];
    while iterations < opts.max_iter && stalled < opts.patience {
        iterations += 1;
        // two-loop recursion: dir = H (grad log p), an ascent direction
        let mut q = g.clone();
        let mut alpha = Vec::with_capacity(pairs.len());
        for (s, y, rho) in pairs.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alpha.push(a);
        }
        let gamma = pairs.back().map_or_else(
            || {
                if unit_curvature {
                    1.0
                } else {
                    1.0 / dot(&g, &g).sqrt().max(1e-300)
                }
            },
            |(s, y, _)| dot(s, y) / dot(y, y),
        );
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in pairs.iter().zip(alpha.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let mut dir = q;
        let mut slope = dot(&g, &dir);
        if !(slope > 0.0) {
            // not an ascent direction (stale curvature): restart from the scaled gradient
            pairs.clear();
            let norm = dot(&g, &g).sqrt().max(1e-300);
            dir = g.iter().map(|v| v / norm).collect();
            slope = norm;
        }
        // backtracking line search with the Armijo condition
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            x_new
                .iter_mut()
                .zip(&x)
                .zip(&dir)
                .for_each(|((n, xi), di)| *n = xi + t * di);
            density.value_and_grad(&x_new, 1, &mut lp, &mut g_new)?;
            evaluations += 1;
            let finite = lp[0].is_finite() && g_new.iter().all(|v| v.is_finite());
            if finite && lp[0] >= logp + 1e-4 * t * slope {
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            if pairs.is_empty() {
                break; // not even a short gradient step helps: at the mode within rounding
            }
            // the curvature memory misled the search: retry along the gradient
            pairs.clear();
            continue;
        }
        let gain = lp[0] - logp;
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g.iter().zip(&g_new).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            if pairs.len() == opts.memory {
                pairs.pop_front();
            }
            pairs.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        logp = lp[0];
        trace.push(logp);
        stalled = if gain < opts.tol { stalled + 1 } else { 0 };
    }
    Ok(LbfgsResult {
        x,
        logp,
        iterations,
        evaluations,
        trace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::test_densities::per_row;

    /// -log p = sum_i (u_i - 1)^2 / (2 s_i^2), u a rotation mixing the coordinates pairwise, with
    /// scales s_i from 1e-2 to 1: a badly conditioned quadratic (condition number 1e4).
    struct Quadratic {
        scales: Vec<f64>,
    }
    impl Quadratic {
        fn rotate(x: &[f64]) -> Vec<f64> {
            let (c, s) = (0.8f64, 0.6f64);
            let mut out = x.to_vec();
            for k in (0..x.len() - 1).step_by(2) {
                out[k] = c * x[k] - s * x[k + 1];
                out[k + 1] = s * x[k] + c * x[k + 1];
            }
            out
        }
        fn rotate_t(v: &[f64]) -> Vec<f64> {
            let (c, s) = (0.8f64, 0.6f64);
            let mut out = v.to_vec();
            for k in (0..v.len() - 1).step_by(2) {
                out[k] = c * v[k] + s * v[k + 1];
                out[k + 1] = -s * v[k] + c * v[k + 1];
            }
            out
        }
    }
    impl LogDensity for Quadratic {
        fn dim(&self) -> usize {
            self.scales.len()
        }
        fn value_and_grad(&self, x: &[f64], b: usize, lp: &mut [f64], g: &mut [f64]) -> Result<()> {
            let d = self.dim();
            for r in 0..b {
                let u = Self::rotate(&x[r * d..(r + 1) * d]);
                let mut gu = vec![0.0; d];
                lp[r] = 0.0;
                for i in 0..d {
                    let z = (u[i] - 1.0) / self.scales[i];
                    lp[r] -= 0.5 * z * z;
                    gu[i] = -z / self.scales[i];
                }
                g[r * d..(r + 1) * d].copy_from_slice(&Self::rotate_t(&gu));
            }
            Ok(())
        }
    }

    #[test]
    fn climbs_a_badly_conditioned_quadratic_to_its_mode() {
        let d = 40;
        let scales: Vec<f64> = (0..d)
            .map(|i| 10f64.powf(-2.0 + 2.0 * i as f64 / (d - 1) as f64))
            .collect();
        let q = Quadratic { scales };
        let x0 = vec![0.0; d];
        let mut lp0 = [0.0];
        let mut g0 = vec![0.0; d];
        q.value_and_grad(&x0, 1, &mut lp0, &mut g0).unwrap();
        let opts = LbfgsOptions {
            max_iter: 2000,
            tol: 1e-12,
            ..Default::default()
        };
        let r = lbfgs_ascent(&q, &x0, &opts).unwrap();
        assert!(lp0[0] < -1e4, "start far from the mode: {}", lp0[0]);
        assert!(r.logp > -1e-6, "log p at the end {} ({r:?})", r.logp);
        // scipy's L-BFGS-B (maxcor 10) needs ~960 iterations to machine precision here
        assert!(r.iterations < 2000, "{} iterations", r.iterations);
        // the mode in x is rotate^T(1)
        let mode = Quadratic::rotate_t(&vec![1.0; d]);
        for (a, b) in r.x.iter().zip(&mode) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    /// With a preconditioner from a rough precision estimate (the exact one scaled by factors 0.5-2 per
    /// coordinate, as a noisy finite-difference Hessian would be), the quadratic that needs ~1000 plain
    /// iterations is solved in a few tens.
    #[test]
    fn preconditioning_removes_the_condition_number() {
        let d = 40;
        let scales: Vec<f64> = (0..d)
            .map(|i| 10f64.powf(-2.0 + 2.0 * i as f64 / (d - 1) as f64))
            .collect();
        let q = Quadratic {
            scales: scales.clone(),
        };
        let factor: Vec<f64> = (0..d)
            .map(|i| 2f64.powf(((i * 7) % 5) as f64 / 2.0 - 1.0))
            .collect();
        let mut prec = vec![0.0; d * d];
        for j in 0..d {
            let mut e = vec![0.0; d];
            e[j] = 1.0;
            let mut u = Quadratic::rotate(&e);
            u.iter_mut().zip(&scales).for_each(|(v, s)| *v /= s * s);
            let col = Quadratic::rotate_t(&u);
            for i in 0..d {
                prec[i * d + j] = factor[i] * col[i] * factor[j];
            }
        }
        let prec_chol = crate::math::linalg::cholesky(&prec, d).unwrap();
        let chol = crate::inference::laplace::covariance_cholesky(&prec_chol, d).unwrap();
        let opts = LbfgsOptions {
            max_iter: 2000,
            tol: 1e-12,
            ..Default::default()
        };
        let x0 = vec![0.0; d];
        let plain = lbfgs_ascent(&q, &x0, &opts).unwrap();
        let r = lbfgs_ascent_preconditioned(&q, &x0, chol, &opts).unwrap();
        assert!(r.logp > -1e-6, "log p at the end {} ({r:?})", r.logp);
        assert!(
            r.iterations < 60 && r.iterations * 10 < plain.iterations,
            "{} iterations preconditioned, {} plain",
            r.iterations,
            plain.iterations
        );
        let mode = Quadratic::rotate_t(&vec![1.0; d]);
        for (a, b) in r.x.iter().zip(&mode) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn never_returns_a_worse_point_and_survives_non_finite_regions() {
        // log p = -(x - 2)^2 for x < 3, NaN beyond: the first full step (to 4) lands in the hole
        let hole = per_row(1, |x: &[f64], g: &mut [f64]| {
            if x[0] > 3.0 {
                g[0] = f64::NAN;
                return f64::NAN;
            }
            g[0] = -2.0 * (x[0] - 2.0);
            -(x[0] - 2.0).powi(2)
        });
        let r = lbfgs_ascent(&hole, &[-2.0], &LbfgsOptions::default()).unwrap();
        assert!((r.x[0] - 2.0).abs() < 1e-3, "{r:?}");
        assert!(r.logp >= -16.0);
    }
}
