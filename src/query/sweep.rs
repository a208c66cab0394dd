//! Sweeps of `train-vae sweep`: its training and test-split evaluation runs carry
//! `config.sweep = {id, setting, dir}`. One [`Sweep`] per id, one [`SettingRow`] per setting,
//! putting the training outcome beside the figures of the setting's newest finished evaluation.
//! Pure data from the store, shared by the CLI and the TUI.

use crate::format;
use crate::store::headline::best_val_elbo;
use crate::store::{Catalog, RunEntry};
use arclight_core::record::{RunKind, Status};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The flattened config key of a run's sweep id: grouping by it means "by sweep".
pub const SWEEP_KEY: &str = "sweep.id";

/// One setting of a sweep: its training run and its evaluation on the test split.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SettingRow {
    /// Setting name (`ld16`, `ld16-w32.64.128.256`).
    pub setting: String,
    pub latent_dim: Option<u64>,
    /// Encoder widths.
    pub widths: Option<Vec<u64>>,
    /// The setting's training run (the newest finished one if it has several).
    pub train_run: Option<String>,
    pub train_status: Option<&'static str>,
    /// Best validation ELBO (from the summary, or the metrics while training).
    pub best_val_elbo: Option<f64>,
    pub best_epoch: Option<f64>,
    /// Epochs trained.
    pub epochs: Option<f64>,
    /// The setting's newest finished evaluation run, whose figures follow.
    pub eval_run: Option<String>,
    pub test_elbo: Option<f64>,
    pub test_chi2_per_pixel: Option<f64>,
    pub test_kl: Option<f64>,
    /// Latent dimensions in use (activity above train-vae's threshold).
    pub active_dims: Option<u64>,
    /// 1/2 log det of the latent prior covariance.
    pub prior_log_volume: Option<f64>,
}

/// The settings of one sweep, ordered by latent dimension, widths, then name.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Sweep {
    pub id: String,
    /// The sweep folder (`sweep.dir` of its runs).
    pub dir: Option<String>,
    pub settings: Vec<SettingRow>,
}

/// A run's sweep tag `(id, setting, dir)`; `None` outside a sweep (no or null `config.sweep`).
/// The tag the run started with counts, not a `resumed_with` copy.
pub fn tag(r: &RunEntry) -> Option<(String, String, Option<String>)> {
    let s = r.config_at("sweep")?;
    let text = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_string);
    Some((
        text("id")?,
        text("setting").unwrap_or_default(),
        text("dir"),
    ))
}

/// Whether a run belongs to a sweep.
pub fn in_sweep(r: &RunEntry) -> bool {
    tag(r).is_some()
}

/// Runs of one setting, by kind.
#[derive(Default)]
struct Members<'a> {
    train: Vec<&'a RunEntry>,
    eval: Vec<&'a RunEntry>,
}

/// Every sweep of the catalog, oldest first (by the earliest start of its runs).
pub fn sweeps(catalog: &Catalog) -> Vec<Sweep> {
    let mut by: BTreeMap<String, (Option<String>, BTreeMap<String, Members>)> = BTreeMap::new();
    for r in catalog.runs().iter().filter(|r| !r.gone) {
        let kind = r.kind();
        if !matches!(kind, Some(RunKind::Train | RunKind::Eval)) {
            continue;
        }
        let Some((id, setting, dir)) = tag(r) else {
            continue;
        };
        let (d, settings) = by.entry(id).or_default();
        if d.is_none() {
            *d = dir;
        }
        let m = settings.entry(setting).or_default();
        if kind == Some(RunKind::Train) {
            m.train.push(r);
        } else {
            m.eval.push(r);
        }
    }
    let mut out: Vec<(Option<u64>, Sweep)> = by
        .into_iter()
        .map(|(id, (dir, settings))| {
            let first = settings
                .values()
                .flat_map(|m| m.train.iter().chain(&m.eval))
                .filter_map(|r| r.started_secs())
                .min();
            let mut rows: Vec<SettingRow> = settings
                .into_iter()
                .map(|(name, m)| setting_row(name, &m))
                .collect();
            rows.sort_by(|a, b| {
                (a.latent_dim.is_none(), a.latent_dim, &a.widths, &a.setting).cmp(&(
                    b.latent_dim.is_none(),
                    b.latent_dim,
                    &b.widths,
                    &b.setting,
                ))
            });
            let sweep = Sweep {
                id,
                dir,
                settings: rows,
            };
            (first, sweep)
        })
        .collect();
    out.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
    out.into_iter().map(|(_, s)| s).collect()
}

/// The newest run: latest start, then largest id (records started the same second).
fn newest<'a>(runs: impl Iterator<Item = &'a RunEntry>) -> Option<&'a RunEntry> {
    runs.max_by(|a, b| (a.started_secs(), &a.id).cmp(&(b.started_secs(), &b.id)))
}

/// Finished with a summary (flagged runs included: their figures exist).
fn is_done(r: &RunEntry) -> bool {
    r.status == Some(Status::Done) && r.summary.is_some()
}

/// A training-config value, nested under `architecture` (train-vae) or at the top.
fn arch_value<'a>(r: &'a RunEntry, name: &str) -> Option<&'a Value> {
    r.config_at("architecture")
        .and_then(|a| a.get(name))
        .or_else(|| r.config_at(name))
}

/// The row of one setting from its training and evaluation runs.
fn setting_row(setting: String, m: &Members) -> SettingRow {
    // a setting trained again (its record lost) has two training runs: the finished one counts
    let train = newest(m.train.iter().copied().filter(|r| is_done(r)))
        .or_else(|| newest(m.train.iter().copied()));
    let eval = newest(m.eval.iter().copied().filter(|r| is_done(r)));
    let best = train.and_then(best_val_elbo);
    let test = |k: &str| eval.and_then(|e| e.summary_f64(k));
    let latent_dim = train
        .and_then(|t| arch_value(t, "latent_dim"))
        .and_then(Value::as_u64)
        .or_else(|| eval.and_then(|e| e.summary_at("latent_dim")?.as_u64()));
    let widths = train
        .and_then(|t| arch_value(t, "widths")?.as_array().cloned())
        .and_then(|a| a.iter().map(Value::as_u64).collect());
    SettingRow {
        setting,
        latent_dim,
        widths,
        train_run: train.map(|t| t.id.clone()),
        train_status: train.map(RunEntry::status_label),
        best_val_elbo: best.map(|b| b.0),
        best_epoch: best.and_then(|b| b.1),
        epochs: train.and_then(|t| t.summary_f64("epochs")),
        eval_run: eval.map(|e| e.id.clone()),
        test_elbo: test("elbo"),
        test_chi2_per_pixel: test("chi2_per_pixel"),
        test_kl: test("kl"),
        active_dims: eval.and_then(|e| e.summary_at("active_dims")?.as_u64()),
        prior_log_volume: test("prior_log_volume"),
    }
}

impl SettingRow {
    /// Widths as `32,64,128,256`.
    pub fn widths_text(&self) -> String {
        self.widths
            .as_ref()
            .map(|w| w.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    }

    /// Active dimensions out of the latent dimension, `7/8`.
    pub fn active_text(&self) -> String {
        match (self.active_dims, self.latent_dim) {
            (Some(a), Some(d)) => format!("{a}/{d}"),
            (Some(a), None) => a.to_string(),
            _ => String::new(),
        }
    }

    /// The figure cells, shared by the CLI table and the TUI: setting, latent dim, widths, best
    /// val ELBO, test ELBO, test chi2/px, test KL, active dims, prior log-volume.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.setting.clone(),
            self.latent_dim.map(|d| d.to_string()).unwrap_or_default(),
            self.widths_text(),
            format::opt(self.best_val_elbo),
            format::opt(self.test_elbo),
            format::opt(self.test_chi2_per_pixel),
            format::opt(self.test_kl),
            self.active_text(),
            format::opt(self.prior_log_volume),
        ]
    }
}

/// Headers of [`SettingRow::cells`].
pub const HEADER: [&str; 9] = [
    "setting",
    "latent dim",
    "widths",
    "best val ELBO",
    "test ELBO",
    "test chi2/px",
    "test KL",
    "active",
    "prior log-vol",
];
