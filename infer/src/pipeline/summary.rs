//! Posterior summaries and the samples file of `infer fit`.
//!
//! `samples.h5` layout (format 1): one dataset per scalar parameter, named by its full name
//! (`lens.theta_e`), shape `[n_chains, n_draws]`, f64, physical units; latent blocks as
//! `[n_chains, n_draws, D]`; `logp`, `accept_prob` `[n_chains, n_draws]`, `divergent` (u8) and
//! `n_steps` (i64, leapfrog steps of each transition; absent in files of older runs), `step_size`
//! `[n_draws]` (likewise); root attributes `format`, `n_chains`, `n_draws`, `parameters` (JSON list of
//! names). The same draws go to `posterior.nc` for ArviZ (`inference_data`).

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

use crate::inference::diagnostics::{ParamDiagnostics, quantile};
use crate::inference::hmc::HmcDraws;
use crate::prob::ParamLayout;

/// Summary of one scalar parameter's posterior.
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
    truths: &dyn Fn(&str) -> Option<f64>,
) -> Vec<ParamSummary> {
    let n = physical.len() / dim;
    (0..dim)
        .map(|k| {
            let col: Vec<f64> = (0..n).map(|i| physical[i * dim + k]).collect();
            let mean = col.iter().sum::<f64>() / n as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
            let std = var.sqrt();
            let truth = truths(&names[k]);
            ParamSummary {
                name: names[k].clone(),
                mean,
                std,
                q16: quantile(&col, 0.16),
                q50: quantile(&col, 0.5),
                q84: quantile(&col, 0.84),
                rhat: diag[k].rhat,
                ess_bulk: diag[k].ess_bulk,
                ess_tail: diag[k].ess_tail,
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

/// Write `samples.h5` atomically.
pub fn write_samples(
    path: &Path,
    layout: &ParamLayout,
    draws: &HmcDraws,
    physical: &[f64],
) -> Result<()> {
    let (c, t, d) = (draws.n_chains, draws.n_draws, draws.dim);
    arclight_core::atomic::write_atomic_with(path, |tmp| {
        let f =
            hdf5::File::create(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        for b in layout.blocks() {
            let mut v = Vec::with_capacity(c * t * b.dim);
            for row in physical.chunks(d) {
                v.extend_from_slice(&row[b.range()]);
            }
            let ds = if b.dim == 1 {
                f.new_dataset::<f64>()
                    .shape([c, t])
                    .create(b.name.as_str())?
            } else {
                f.new_dataset::<f64>()
                    .shape([c, t, b.dim])
                    .create(b.name.as_str())?
            };
            ds.write_raw(&v)?;
        }
        f.new_dataset::<f64>()
            .shape([c, t])
            .create("logp")?
            .write_raw(&draws.logp)?;
        f.new_dataset::<f64>()
            .shape([c, t])
            .create("accept_prob")?
            .write_raw(&draws.accept_prob)?;
        let div: Vec<u8> = draws.divergent.iter().map(|&b| b as u8).collect();
        f.new_dataset::<u8>()
            .shape([c, t])
            .create("divergent")?
            .write_raw(&div)?;
        if draws.n_steps.len() == c * t {
            let steps: Vec<i64> = draws.n_steps.iter().map(|&s| s as i64).collect();
            f.new_dataset::<i64>()
                .shape([c, t])
                .create("n_steps")?
                .write_raw(&steps)?;
        }
        if draws.step_size.len() == t {
            f.new_dataset::<f64>()
                .shape([t])
                .create("step_size")?
                .write_raw(&draws.step_size)?;
        }
        let attr = |name: &str, v: i64| -> Result<()> {
            f.new_attr::<i64>().create(name)?.write_scalar(&v)?;
            Ok(())
        };
        attr("format", 1)?;
        attr("n_chains", c as i64)?;
        attr("n_draws", t as i64)?;
        let names = serde_json::to_string(&layout.names())?;
        let s: hdf5::types::VarLenUnicode = names.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        f.new_attr::<hdf5::types::VarLenUnicode>()
            .create("parameters")?
            .write_scalar(&s)?;
        Ok(())
    })
}
