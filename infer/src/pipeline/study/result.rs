//! One system's result (`results/system-NNNNNN.json`): truths, posterior summaries per parameter (mean,
//! sd, median, the 50/68/90/95% central intervals, z-score, rank of the truth among thinned posterior
//! draws for simulation-based calibration), convergence diagnostics, divergences, MAP chi^2/dof, the
//! outcome and wall time of every stage, and the flags (see [`super::flags`]). Built by
//! [`super::collect`].

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::FORMAT;

/// Number of posterior draws the truth is ranked among (evenly thinned from all chains): ranks run
/// 0..=99, 100 equally likely values for a calibrated posterior (Talts et al. 2018).
pub const RANK_DRAWS: usize = 99;

/// Central interval levels whose coverage a study reports.
pub const LEVELS: [f64; 4] = [0.5, 0.68, 0.9, 0.95];

/// The key of a level in `intervals` and in the summary: `"68"` for 0.68.
pub fn level_key(level: f64) -> String {
    format!("{}", (level * 100.0).round() as i64)
}

/// Outcome of a stage of one system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Ok,
    Failed,
    /// Not requested (`--stages`).
    Skipped,
    /// Requested, but an earlier stage failed.
    NotReached,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageOutcome {
    pub status: StageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StageOutcome {
    pub fn ok(time_s: Option<f64>) -> Self {
        StageOutcome {
            status: StageStatus::Ok,
            time_s,
            error: None,
        }
    }
    pub fn of(status: StageStatus) -> Self {
        StageOutcome {
            status,
            time_s: None,
            error: None,
        }
    }
    pub fn failed(error: String, time_s: Option<f64>) -> Self {
        StageOutcome {
            status: StageStatus::Failed,
            time_s,
            error: Some(error),
        }
    }
}

/// The posterior of one parameter against its truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamResult {
    /// None where the mock has no truth to compare (a real galaxy's latent and placement). An angle's
    /// truth is its equivalent nearest the posterior median (a whole number of periods away from the
    /// drawn value, `truth_drawn`: the same lens), and z, the intervals and the rank judge that.
    #[serde(default)]
    pub truth: Option<f64>,
    /// The truth as the mock drew it, where `truth` is an equivalent of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth_drawn: Option<f64>,
    #[serde(deserialize_with = "arclight_core::json_nan::f64")]
    pub mean: f64,
    #[serde(deserialize_with = "arclight_core::json_nan::f64")]
    pub sd: f64,
    #[serde(default)]
    pub median: Option<f64>,
    /// Central credible intervals `[lower, upper]` by level key (`"50"`, `"68"`, `"90"`, `"95"`).
    #[serde(default, deserialize_with = "arclight_core::json_nan::pair_map")]
    pub intervals: BTreeMap<String, [f64; 2]>,
    /// (mean - truth) / sd.
    pub z: Option<f64>,
    /// Number of the `rank_draws` thinned posterior draws below the truth.
    #[serde(default)]
    pub rank: Option<usize>,
    #[serde(default)]
    pub rhat: Option<f64>,
    #[serde(default)]
    pub ess_bulk: Option<f64>,
    #[serde(default)]
    pub ess_tail: Option<f64>,
    /// A component of the VAE source's latent z (judged by R-hat < 1.05, see `flags`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub latent: bool,
    /// The chains parted in two groups (multimodal posterior or stuck chains), if they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<crate::inference::diagnostics::ChainSplit>,
}

/// One system's result file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemResult {
    pub format: u32,
    pub study_id: String,
    pub index: usize,
    pub seed: u64,
    /// `mock`, `map`, `vi`, `hmc`, and `summary` (diagnostics and figures after the stages).
    pub stages: BTreeMap<String, StageOutcome>,
    pub chi2_dof: Option<f64>,
    pub dof: Option<usize>,
    pub rhat_max: Option<f64>,
    pub ess_bulk_min: Option<f64>,
    pub ess_tail_min: Option<f64>,
    /// Divergent transitions among the `transitions` recorded HMC transitions (chains x draws).
    pub divergences: Option<usize>,
    pub transitions: Option<usize>,
    pub n_chains: Option<usize>,
    /// HMC sampling rounds the fit needed (rounds after the first re-adapt and sample again while the
    /// draws miss the convergence targets; the last is kept, with the one before it when joined they pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmc_rounds: Option<usize>,
    /// Draws per chain the fit's rounds added by continuing their chains (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmc_extended: Option<usize>,
    /// Draws the ranks are taken among (`RANK_DRAWS`, fewer if the chains had fewer draws).
    pub rank_draws: Option<usize>,
    pub params: BTreeMap<String, ParamResult>,
    /// Why this system should not be trusted as it is; empty when it passed every check.
    pub flags: Vec<Flag>,
    /// Wall time of the whole system (mock + fit), seconds.
    pub wall_s: f64,
    /// Worker threads the system ran on.
    pub threads: usize,
    /// With real-galaxy sources: relative squared error of the source at the posterior means against
    /// the true one (`sources::source_residual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_residual: Option<f64>,
}

impl SystemResult {
    pub fn file_name(index: usize) -> String {
        format!("system-{index:06}.json")
    }

    pub fn path(dir: &Path, index: usize) -> PathBuf {
        dir.join("results").join(Self::file_name(index))
    }

    pub fn is_flagged(&self) -> bool {
        !self.flags.is_empty()
    }

    /// The result of a system whose fit folder could not be read back (damaged files): the mock's
    /// outcome and a failed `summary` stage with the error, flagged, so the shard goes on.
    pub fn unreadable(
        study_id: &str,
        index: usize,
        seed: u64,
        mock: StageOutcome,
        error: String,
        wall_s: f64,
        threads: usize,
    ) -> SystemResult {
        let mut stages = BTreeMap::new();
        stages.insert("mock".to_string(), mock);
        stages.insert("summary".to_string(), StageOutcome::failed(error, None));
        let mut r = SystemResult {
            format: FORMAT,
            study_id: study_id.to_string(),
            index,
            seed,
            stages,
            chi2_dof: None,
            dof: None,
            rhat_max: None,
            ess_bulk_min: None,
            ess_tail_min: None,
            divergences: None,
            transitions: None,
            n_chains: None,
            hmc_rounds: None,
            hmc_extended: None,
            rank_draws: None,
            params: BTreeMap::new(),
            flags: Vec::new(),
            wall_s,
            threads,
            source_residual: None,
        };
        r.flags = super::flags::check(&r, false);
        r
    }

    /// The first stage that failed (mock, a fit stage, or the summary) and its error.
    pub fn failed_stage(&self) -> Option<(&str, &str)> {
        self.stages.iter().find_map(|(name, s)| {
            (s.status == StageStatus::Failed)
                .then(|| (name.as_str(), s.error.as_deref().unwrap_or("")))
        })
    }

    /// Read a result file.
    pub fn load(path: &Path) -> Result<SystemResult> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let r: SystemResult = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid system result", path.display()))?;
        if r.format > FORMAT {
            bail!(
                "{}: result format {} is newer than this program's {}",
                path.display(),
                r.format,
                FORMAT
            );
        }
        Ok(r)
    }

    /// The result with its timings and thread count cleared: what must not depend on where, when or
    /// on how many threads the system ran.
    pub fn without_timings(&self) -> SystemResult {
        let mut r = self.clone();
        r.wall_s = 0.0;
        r.threads = 0;
        for s in r.stages.values_mut() {
            s.time_s = None;
        }
        r
    }
}

/// One reason to distrust a system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// `stage`, `rhat`, `ess`, `divergences`, `chi2` or `diagnostics`.
    pub check: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system whose fit could not be read back is a flagged result with its failed stage, which
    /// `--retry-failed` finds.
    #[test]
    fn an_unreadable_fit_is_a_failed_flagged_result() {
        let r = SystemResult::unreadable(
            "abc",
            7,
            12,
            StageOutcome::ok(Some(0.1)),
            "reading the fit back: samples.h5: truncated".into(),
            3.0,
            2,
        );
        assert_eq!(
            r.failed_stage(),
            Some(("summary", "reading the fit back: samples.h5: truncated"))
        );
        assert!(r.is_flagged());
        assert_eq!(r.flags[0].check, "stage");
        assert!(r.flags[0].message.contains("samples.h5: truncated"));
        let back: SystemResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
