//! The fit's stage results in `artifacts/`: `map.json` and `vi.json` (each written atomically as its
//! stage ends, reloaded on `--resume`). A non-finite value is written as null and read back as NaN.

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
    #[serde(deserialize_with = "arclight_core::json_nan::vec")]
    pub best_u: Vec<f64>,
    #[serde(deserialize_with = "arclight_core::json_nan::f64")]
    pub best_logp: f64,
    #[serde(deserialize_with = "arclight_core::json_nan::f64")]
    pub chi2: f64,
    pub dof: usize,
    pub n_reverted: usize,
    pub n_dead_starts: usize,
    pub time_s: f64,
    /// Batches of starts that ran (1 + retries; see [`FitConfig::map_retries`]).
    #[serde(default = "one")]
    pub attempts: usize,
    /// The MAP point in physical units, by parameter name.
    #[serde(default, deserialize_with = "arclight_core::json_nan::map")]
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
    #[serde(deserialize_with = "arclight_core::json_nan::vec")]
    pub mean: Vec<f64>,
    #[serde(deserialize_with = "arclight_core::json_nan::vec")]
    pub chol: Vec<f64>,
    #[serde(deserialize_with = "arclight_core::json_nan::f64")]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stage whose ELBO or chi^2 went non-finite is written with nulls; `--resume` reads it back
    /// (it was a "corrupt stage result" that blocked the resume).
    #[test]
    fn stage_results_with_non_finite_values_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let vi = ViArtifact {
            mean: vec![0.5, f64::NAN],
            chol: vec![1.0, 0.0, 0.2, 1.0],
            elbo_final: f64::NEG_INFINITY,
            time_s: 1.0,
            latent_coordinates: None,
        };
        let path = dir.path().join("vi.json");
        arclight_core::write_json_atomic(&path, &vi).unwrap();
        let back: ViArtifact = read_json(&path).unwrap();
        assert!(back.elbo_final.is_nan() && back.mean[1].is_nan());
        assert_eq!(back.chol, vi.chol);
        let map = MapArtifact {
            best_u: vec![0.1],
            best_logp: f64::NAN,
            chi2: f64::NAN,
            dof: 10,
            n_reverted: 0,
            n_dead_starts: 0,
            time_s: 2.0,
            attempts: 1,
            params: [("lens.theta_e".to_string(), f64::NAN)].into(),
            laplace_std: BTreeMap::new(),
            laplace_ridge: None,
            latent_coordinates: None,
        };
        let path = dir.path().join("map.json");
        arclight_core::write_json_atomic(&path, &map).unwrap();
        let back: MapArtifact = read_json(&path).unwrap();
        assert!(
            back.chi2.is_nan() && back.best_logp.is_nan() && back.params["lens.theta_e"].is_nan()
        );
        assert_eq!(back.best_u, vec![0.1]);
    }
}
