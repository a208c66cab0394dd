//! Posterior summaries and the samples file of `infer fit`.
//!
//! `samples.h5` layout (format 1): one dataset per scalar parameter, named by its full name
//! (`lens.theta_e`), shape `[n_chains, n_draws]`, f64, physical units; latent blocks as
//! `[n_chains, n_draws, D]`; `logp`, `accept_prob` `[n_chains, n_draws]`, `divergent` (u8) and
//! `n_steps` (i64, leapfrog steps of each transition; absent in files of older runs), `step_size`
//! `[n_draws]` (likewise); root attributes `format`, `n_chains`, `n_draws`, `parameters` (JSON list of
//! names). The same draws go to `posterior.nc` for ArviZ (`inference_data`).

use serde::Serialize;

use crate::inference::diagnostics::{ParamDiagnostics, quantile};
use crate::inference::hmc::HmcDraws;
use crate::inference::laplace::Laplace;
use crate::prob::{BlockPrior, ParamLayout};

/// Summary of one scalar parameter's posterior (after a MAP-only fit: the MAP value as `mean` and
/// `q50`, with Laplace widths, see [`summarize_map`]).
#[derive(Clone, Debug, Serialize)]
pub struct ParamSummary {
    pub name: String,
    pub mean: f64,
    pub std: f64,
    pub q16: f64,
    pub q50: f64,
    pub q84: f64,
    pub rhat: f64,
    pub ess_bulk: f64,
    pub ess_tail: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<f64>,
    /// (mean - truth) / std.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z: Option<f64>,
    /// Chains apart in two groups (multimodal posterior or stuck chains), if they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<crate::inference::diagnostics::ChainSplit>,
}

/// Draws mapped to physical units, chain-major `[chain][draw][param]`.
pub fn physical_draws(layout: &ParamLayout, draws: &HmcDraws) -> Vec<f64> {
    let mut out = vec![0.0; draws.draws.len()];
    layout.to_physical(&draws.draws, &mut out);
    out
}

/// Per-column summaries of physical draws (`n x dim`, row-major) with their diagnostics `diag`
/// (taken on the same physical values: `diagnostics::diagnose_rows`).
pub fn summarize(
    names: &[String],
    physical: &[f64],
    dim: usize,
    diag: &[ParamDiagnostics],
    truths: crate::pipeline::mock::TruthNear,
) -> Vec<ParamSummary> {
    let n = physical.len() / dim;
    (0..dim)
        .map(|k| {
            let col: Vec<f64> = (0..n).map(|i| physical[i * dim + k]).collect();
            let mean = col.iter().sum::<f64>() / n as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
            let std = var.sqrt();
            let q50 = quantile(&col, 0.5);
            let truth = truths(&names[k], q50);
            ParamSummary {
                name: names[k].clone(),
                mean,
                std,
                q16: quantile(&col, 0.16),
                q50,
                q84: quantile(&col, 0.84),
                rhat: diag[k].rhat,
                ess_bulk: diag[k].ess_bulk,
                ess_tail: diag[k].ess_tail,
                split: diag[k].split,
                truth,
                z: truth.map(|t| {
                    if std > 0.0 {
                        (mean - t) / std
                    } else {
                        f64::NAN
                    }
                }),
            }
        })
        .collect()
}

/// Largest relative change of a variance by the Laplace ridge for which [`summarize_map`] still
/// reports a standard deviation: `r |H_kk| Sigma_kk <= 0.01` (the relative ridge `r |diag H|` added
/// to `-H` changes `Sigma_kk` by a factor of about `1 + r |H_kk| Sigma_kk`).
pub const LAPLACE_RIDGE_TOLERANCE: f64 = 0.01;

/// Summaries of a MAP point `u` (unconstrained) when nothing else was sampled: `mean` and `q50` are
/// the MAP values in physical units; `std`, `q16` and `q84` come from the Laplace approximation
/// N(u, Sigma) mapped through the (component-wise, monotone) bijectors g: marginal quantiles
/// g(u_k -/+ sigma_k) and the delta-method standard deviation |g'(u_k)| sigma_k. They are NaN where
/// the Hessian does not determine them: without a Laplace approximation, or where its ridge changed
/// the variance by more than [`LAPLACE_RIDGE_TOLERANCE`]. R-hat and ESS are NaN.
pub fn summarize_map(
    layout: &ParamLayout,
    names: &[String],
    u: &[f64],
    laplace: Option<&Laplace>,
    truths: crate::pipeline::mock::TruthNear,
) -> Vec<ParamSummary> {
    let d = u.len();
    let mut x = vec![0.0; d];
    layout.to_physical(u, &mut x);
    // sigma_k of the unconstrained marginal, where the Hessian determines it
    let sigma: Vec<Option<f64>> = (0..d)
        .map(|k| {
            let lap = laplace?;
            let var: f64 = lap.chol[k * d..k * d + k + 1].iter().map(|l| l * l).sum();
            (var.is_finite() && var > 0.0 && lap.ridge_effect(k, var) <= LAPLACE_RIDGE_TOLERANCE)
                .then(|| var.sqrt())
        })
        .collect();
    // rows: u - sigma_k e_k, u + sigma_k e_k, u -/+ h_k e_k (h_k = 1e-4 sigma_k), for every k
    let mut shifted = Vec::with_capacity(4 * d * d);
    for (k, s) in sigma.iter().enumerate() {
        let s = s.unwrap_or(0.0);
        for step in [-s, s, -1e-4 * s, 1e-4 * s] {
            let mut row = u.to_vec();
            row[k] += step;
            shifted.extend_from_slice(&row);
        }
    }
    let mut xs = vec![0.0; shifted.len()];
    layout.to_physical(&shifted, &mut xs);
    let at = |k: usize, j: usize| xs[(4 * k + j) * d + k];
    // a whitened multivariate normal block is linear, x = mean + L_p u: std of x_k = |row k of L_p C|
    // over the block's rows of the Laplace factor C
    let mut linear: Vec<Option<(f64, f64, f64)>> = vec![None; d];
    for b in layout.blocks() {
        if let BlockPrior::MvNormal(m) = &b.prior {
            let (lp, n) = (m.cholesky(), b.dim);
            for i in 0..n {
                let known = (0..=i).all(|j| lp[i * n + j] == 0.0 || sigma[b.offset + j].is_some());
                let std = match (laplace, known) {
                    (Some(lap), true) => {
                        let mut v = vec![0.0; d];
                        for j in 0..=i {
                            let row = &lap.chol[(b.offset + j) * d..(b.offset + j + 1) * d];
                            v.iter_mut()
                                .zip(row)
                                .for_each(|(a, c)| *a += lp[i * n + j] * c);
                        }
                        v.iter().map(|a| a * a).sum::<f64>().sqrt()
                    }
                    _ => f64::NAN,
                };
                let xk = x[b.offset + i];
                linear[b.offset + i] = Some((std, xk - std, xk + std));
            }
        }
    }
    (0..d)
        .map(|k| {
            let (std, q16, q84) = match (linear[k], sigma[k]) {
                (Some(l), _) => l,
                (None, Some(s)) => {
                    let slope = (at(k, 3) - at(k, 2)) / (2e-4 * s);
                    (slope.abs() * s, at(k, 0), at(k, 1))
                }
                (None, None) => (f64::NAN, f64::NAN, f64::NAN),
            };
            let truth = truths(&names[k], x[k]);
            ParamSummary {
                name: names[k].clone(),
                mean: x[k],
                std,
                q16,
                q50: x[k],
                q84,
                rhat: f64::NAN,
                ess_bulk: f64::NAN,
                ess_tail: f64::NAN,
                split: None,
                truth,
                z: truth.map(|t| {
                    if std > 0.0 {
                        (x[k] - t) / std
                    } else {
                        f64::NAN
                    }
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prob::prior::Prior;

    /// MAP values in physical units with the Laplace widths mapped through the bijectors (exp for
    /// a log-normal prior, identity for a normal one); NaN where the ridge dominates a variance
    /// or there is no Laplace approximation.
    /// The truth is looked up near the posterior median (where an angle's equivalent is taken) and z
    /// is judged against what the lookup returns.
    #[test]
    fn draws_summary_asks_for_the_truth_near_the_median() {
        let physical: Vec<f64> = (0..101).map(|j| 0.3 + 0.01 * j as f64).collect();
        let diag = vec![
            ParamDiagnostics {
                rhat: 1.0,
                ess_bulk: 100.0,
                ess_tail: 100.0,
                split: None,
            };
            1
        ];
        let pi = std::f64::consts::PI;
        let near = |_: &str, c: f64| {
            Some(crate::math::periodic::nearest_equivalent(
                -2.32,
                c,
                Some(pi),
            ))
        };
        let s = summarize(&["lens.phi".to_string()], &physical, 1, &diag, &near);
        assert!((s[0].q50 - 0.8).abs() < 1e-12);
        assert!((s[0].truth.unwrap() - (pi - 2.32)).abs() < 1e-12);
        assert!(s[0].z.unwrap().abs() < 0.1, "{:?}", s[0].z);
    }

    #[test]
    fn map_summary_maps_laplace_widths_through_the_bijectors() {
        let mut layout = ParamLayout::new();
        layout
            .add_scalar(
                "a",
                Prior::LogNormal {
                    mu: 0.0,
                    sigma: 1.0,
                },
                None,
            )
            .unwrap();
        layout
            .add_scalar(
                "b",
                Prior::Normal {
                    mu: 0.0,
                    sigma: 1.0,
                },
                None,
            )
            .unwrap();
        let names = layout.column_names();
        let u = [2f64.ln(), 1.0];
        let mut lap = Laplace {
            dim: 2,
            precision: vec![100.0, 0.0, 0.0, 4.0],
            chol: vec![0.1, 0.0, 0.0, 0.5],
            ridge: 0.0,
        };
        let truth = |n: &str, _: f64| (n == "a").then_some(2.1);
        let s = summarize_map(&layout, &names, &u, Some(&lap), &truth);
        assert!((s[0].mean - 2.0).abs() < 1e-12 && s[0].q50 == s[0].mean);
        assert!((s[0].std - 0.2).abs() < 1e-8, "{}", s[0].std);
        assert!((s[0].q16 - 2.0 * (-0.1f64).exp()).abs() < 1e-12);
        assert!((s[0].q84 - 2.0 * 0.1f64.exp()).abs() < 1e-12);
        assert!((s[0].z.unwrap() + 0.5).abs() < 1e-6);
        assert!((s[1].mean - 1.0).abs() < 1e-12 && (s[1].std - 0.5).abs() < 1e-8);
        assert!(s[1].truth.is_none() && s[1].rhat.is_nan());
        // a relative ridge of 0.005 changes both variances by 0.5% (kept), one of 0.05 by 5% (dropped)
        lap.ridge = 0.005;
        let s = summarize_map(&layout, &names, &u, Some(&lap), &truth);
        assert!(s[0].std.is_finite() && s[1].std.is_finite());
        lap.ridge = 0.05;
        let s = summarize_map(&layout, &names, &u, Some(&lap), &truth);
        assert!(s[0].std.is_nan() && s[1].std.is_nan() && s[1].q84.is_nan());
        assert_eq!(s[1].mean, 1.0);
        let s = summarize_map(&layout, &names, &u, None, &truth);
        assert!(s.iter().all(|p| p.std.is_nan()) && (s[0].mean - 2.0).abs() < 1e-12);
    }

    /// A latent block is whitened (z = mean + L_p u): its MAP value and widths are those of L_p times the
    /// Laplace covariance in u, std(z_i) = sqrt((L_p C C^T L_p^T)_ii).
    #[test]
    fn map_summary_unwhitens_a_latent_block() {
        let mut layout = ParamLayout::new();
        let prior = crate::prob::MvNormal::new(vec![1.0, -1.0], &[4.0, 2.0, 2.0, 2.0]).unwrap();
        layout.add_mvnormal("z", prior).unwrap();
        let names = layout.column_names();
        // L_p = [[2, 0], [1, 1]]; Laplace factor C = diag(0.1, 0.3)
        let lap = Laplace {
            dim: 2,
            precision: vec![100.0, 0.0, 0.0, 11.0],
            chol: vec![0.1, 0.0, 0.0, 0.3],
            ridge: 0.0,
        };
        let s = summarize_map(&layout, &names, &[0.5, 1.0], Some(&lap), &|_, _| None);
        assert!((s[0].mean - 2.0).abs() < 1e-12 && (s[1].mean - 0.5).abs() < 1e-12);
        assert!((s[0].std - 0.2).abs() < 1e-12, "{}", s[0].std);
        assert!(
            (s[1].std - (0.01f64 + 0.09).sqrt()).abs() < 1e-12,
            "{}",
            s[1].std
        );
        assert!((s[1].q84 - s[1].mean - s[1].std).abs() < 1e-12);
    }
}
