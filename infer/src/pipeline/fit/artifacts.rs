//! The fit's stage results in `artifacts/`: `map.json` and `vi.json` (each written atomically as its
//! stage ends, reloaded on `--resume`).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

use crate::prob::ParamLayout;

fn one() -> usize {
    1
}

#[derive(Serialize, Deserialize)]
pub(super) struct MapArtifact {
    pub best_u: Vec<f64>,
    pub best_logp: f64,
    pub chi2: f64,
    pub dof: usize,
    pub n_reverted: usize,
    pub n_dead_starts: usize,
    pub time_s: f64,
    /// Batches of starts that ran (1 + retries; see [`FitConfig::map_retries`]).
    #[serde(default = "one")]
    pub attempts: usize,
    /// The MAP point in physical units, by parameter name.
    #[serde(default)]
    pub params: BTreeMap<String, f64>,
    /// Laplace standard deviations in physical units where the Hessian determines them, else null
    /// (see [`summarize_map`]).
    #[serde(default)]
    pub laplace_std: BTreeMap<String, Option<f64>>,
    /// The ridge the Laplace approximation needed (null: it failed).
    #[serde(default)]
    pub laplace_ridge: Option<f64>,
    /// See [`latent_coordinates`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent_coordinates: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct ViArtifact {
    pub mean: Vec<f64>,
    pub chol: Vec<f64>,
    pub elbo_final: f64,
    pub time_s: f64,
    /// See [`latent_coordinates`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent_coordinates: Option<String>,
}

/// How the stage artefacts store a latent block, for a model that has one: "whitened" (u = L^{-1}(z - mu),
/// see `prob::layout`). Artefacts without it hold the raw z of an earlier version and cannot be resumed.
pub(super) fn latent_coordinates(layout: &ParamLayout) -> Option<String> {
    layout
        .blocks()
        .iter()
        .any(|b| matches!(b.prior, crate::prob::BlockPrior::MvNormal(_)))
        .then(|| "whitened".to_string())
}

/// Read a stage result.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: corrupt stage result", path.display()))
}
