//! Ablation: training runs grouped by a config key, with per group the best and mean
//! best-validation ELBO, test chi^2 per pixel, epochs and seconds per epoch (from `summary.json`).
//! Runs of a `train-vae sweep` group by sweep ([`super::sweep`]), other runs by latent dimension.

use super::sweep::{self, SWEEP_KEY};
use crate::format;
use crate::store::{Catalog, RunEntry};
use arclight_core::record::RunKind;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The grouping key of runs outside a sweep (Chianese et al. 2020 vary the VAE's latent
/// dimension).
pub const DEFAULT_KEY: &str = "latent_dim";

/// Where train-vae records the config a run was resumed with: a copy of the config keys, not
/// settings of their own, so runs are grouped by the config they started with.
const RESUMED_PREFIX: &str = "resumed_with.";

/// Figures of one group of training runs.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Group {
    /// The config value shared by the group.
    pub value: String,
    /// Run ids in the group.
    pub runs: Vec<String>,
    /// Runs without a readable summary (still running, failed or interrupted).
    pub without_summary: usize,
    /// Largest best-validation ELBO of the group (the ELBO is maximised).
    pub best_val_elbo: Option<f64>,
    /// Run that reached it.
    pub best_run: Option<String>,
    pub mean_val_elbo: Option<f64>,
    /// Mean test reconstruction chi^2 per pixel.
    pub test_chi2_per_pixel: Option<f64>,
    /// Mean epochs trained.
    pub epochs: Option<f64>,
    /// Mean wall time per epoch in seconds.
    pub s_per_epoch: Option<f64>,
}

impl Group {
    /// The run count, with the runs still open: `3 (1 open)`.
    pub fn runs_text(&self) -> String {
        if self.without_summary > 0 {
            format!("{} ({} open)", self.runs.len(), self.without_summary)
        } else {
            self.runs.len().to_string()
        }
    }
}

fn train_runs(catalog: &Catalog) -> impl Iterator<Item = &RunEntry> {
    catalog
        .runs()
        .iter()
        .filter(|r| !r.gone && r.kind() == Some(RunKind::Train))
}

/// Flattened config values of `runs` per key, without the `resumed_with.` copy.
fn config_values<'a>(
    runs: impl Iterator<Item = &'a RunEntry>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for info in runs.filter_map(|r| r.info.as_ref()) {
        for (k, v) in format::flatten(&info.config) {
            if !k.starts_with(RESUMED_PREFIX) {
                values.entry(k).or_default().insert(v);
            }
        }
    }
    values
}

/// The key holding the latent dimension, wherever the config nests it (train-vae:
/// `architecture.latent_dim`).
fn latent_key(values: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    values.keys().find(|k| is_key(k, DEFAULT_KEY)).cloned()
}

/// Config keys to group by: the sweep (`sweep.id`) if a training run has one, the latent
/// dimension (if any run has it), then every flattened config key with two or more distinct
/// values among the training runs.
pub fn group_keys(catalog: &Catalog) -> Vec<String> {
    let values = config_values(train_runs(catalog));
    let mut keys: Vec<String> = Vec::new();
    if values.contains_key(SWEEP_KEY) {
        keys.push(SWEEP_KEY.into());
    }
    keys.extend(latent_key(&values));
    for (k, v) in &values {
        if v.len() > 1 && !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    if keys.is_empty() {
        keys.extend(values.keys().cloned());
    }
    keys
}

/// The grouping without a user's pick: the first of [`group_keys`].
pub fn default_key(catalog: &Catalog) -> String {
    group_keys(catalog)
        .into_iter()
        .next()
        .unwrap_or_else(|| DEFAULT_KEY.into())
}

/// Whether a flattened config key is `name` itself or ends in `.name`.
fn is_key(flat: &str, name: &str) -> bool {
    flat == name || flat.strip_suffix(name).is_some_and(|p| p.ends_with('.'))
}

/// The flattened config key a user's `--by` names: itself, `sweep.id` for `sweep`, else the
/// unique key ending in `.<name>` (`latent_dim` -> `architecture.latent_dim`). An unknown or
/// ambiguous name is an error listing the keys (it would put every run in group `-`).
pub fn resolve_key(catalog: &Catalog, name: &str) -> Result<String, String> {
    let values = config_values(train_runs(catalog));
    if values.is_empty() {
        // no training run with a config: nothing to group, whatever the key
        return Ok(name.to_string());
    }
    if name == "sweep" && values.contains_key(SWEEP_KEY) {
        return Ok(SWEEP_KEY.into());
    }
    // a `resumed_with.` key still works when given in full
    if values.contains_key(name) || train_runs(catalog).any(|r| has_key(r, name)) {
        return Ok(name.to_string());
    }
    let hits: Vec<&str> = values
        .keys()
        .filter(|k| is_key(k, name))
        .map(String::as_str)
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!(
            "no training run has the config key '{name}'; available keys (closest first): {}",
            closest_first(name, values.keys()).join(", ")
        )),
        many => Err(format!(
            "'{name}' names several config keys ({}); give one in full",
            many.join(", ")
        )),
    }
}

/// Whether a run's flattened config has `key`.
fn has_key(r: &RunEntry, key: &str) -> bool {
    r.info
        .as_ref()
        .is_some_and(|i| format::flatten(&i.config).contains_key(key))
}

/// `keys` ordered by edit distance to `name` (each key's closest dotted tail counts:
/// `latent_dm` is 1 from `architecture.latent_dim`), ties alphabetically.
fn closest_first<'a>(name: &str, keys: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let dist = |k: &str| {
        std::iter::once(k)
            .chain(k.match_indices('.').map(|(i, _)| &k[i + 1..]))
            .map(|tail| edit_distance(name, tail))
            .min()
            .unwrap_or(usize::MAX)
    };
    let mut out: Vec<(usize, &str)> = keys.map(|k| (dist(k), k.as_str())).collect();
    out.sort();
    out.into_iter().map(|(_, k)| k).collect()
}

/// Levenshtein distance between two strings, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The key in use: the user's pick if still offered, else the first offered key.
pub fn current_key(pick: Option<&str>, keys: &[String]) -> String {
    match pick {
        Some(k) if keys.iter().any(|o| o == k) => k.to_string(),
        _ => keys.first().cloned().unwrap_or_else(|| DEFAULT_KEY.into()),
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Group the training runs by the flattened config `key` (missing values form group `-`),
/// sorted numerically when every value is a number.
pub fn groups(catalog: &Catalog, key: &str) -> Vec<Group> {
    groups_among(train_runs(catalog), key)
}

/// [`groups`] of the given training runs.
fn groups_among<'a>(runs: impl Iterator<Item = &'a RunEntry>, key: &str) -> Vec<Group> {
    let mut by: BTreeMap<String, Vec<&RunEntry>> = BTreeMap::new();
    for r in runs {
        let v = r
            .info
            .as_ref()
            .and_then(|i| format::flatten(&i.config).remove(key))
            .unwrap_or_else(|| "-".into());
        by.entry(v).or_default().push(r);
    }
    let mut out: Vec<Group> = by
        .into_iter()
        .map(|(value, runs)| {
            let mut elbos = Vec::new();
            let (mut chi2, mut epochs, mut spe) = (Vec::new(), Vec::new(), Vec::new());
            let mut best: Option<(f64, String)> = None;
            let mut without = 0;
            for r in &runs {
                if r.summary.is_none() {
                    without += 1;
                    continue;
                }
                if let Some(v) = r.summary_f64("best_val_elbo") {
                    elbos.push(v);
                    if best.as_ref().is_none_or(|(b, _)| v > *b) {
                        best = Some((v, r.id.clone()));
                    }
                }
                if let Some(c) = r.summary_f64("test_chi2_per_pixel") {
                    chi2.push(c);
                }
                let e = r.summary_f64("epochs");
                if let Some(e) = e {
                    epochs.push(e);
                }
                if let (Some(t), Some(e)) = (r.summary_f64("time_s"), e)
                    && e > 0.0
                {
                    spe.push(t / e);
                }
            }
            Group {
                value,
                runs: runs.iter().map(|r| r.id.clone()).collect(),
                without_summary: without,
                best_val_elbo: best.as_ref().map(|b| b.0),
                best_run: best.map(|b| b.1),
                mean_val_elbo: mean(&elbos),
                test_chi2_per_pixel: mean(&chi2),
                epochs: mean(&epochs),
                s_per_epoch: mean(&spe),
            }
        })
        .collect();
    if out.iter().all(|g| g.value.parse::<f64>().is_ok()) {
        out.sort_by(|a, b| {
            a.value
                .parse::<f64>()
                .unwrap_or(0.0)
                .total_cmp(&b.value.parse::<f64>().unwrap_or(0.0))
        });
    }
    out
}

/// Grouping by sweep: the sweeps, and the training runs outside any sweep grouped by their
/// latent dimension as they are without sweeps.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepView {
    pub sweeps: Vec<sweep::Sweep>,
    /// The key the runs outside a sweep are grouped by.
    pub others_by: String,
    pub others: Vec<Group>,
}

/// The [`SweepView`] of a catalog.
pub fn sweep_view(catalog: &Catalog) -> SweepView {
    let others: Vec<&RunEntry> = train_runs(catalog)
        .filter(|r| !sweep::in_sweep(r))
        .collect();
    let by =
        latent_key(&config_values(others.iter().copied())).unwrap_or_else(|| DEFAULT_KEY.into());
    SweepView {
        sweeps: sweep::sweeps(catalog),
        others: groups_among(others.into_iter(), &by),
        others_by: by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("latent_dm", "latent_dim"), 1);
        assert_eq!(edit_distance("sed", "seed"), 1);
        assert_eq!(edit_distance("", "lr"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_current_key_is_the_pick_while_offered_else_the_first() {
        let keys: Vec<String> = ["sweep.id", "lr"].map(String::from).to_vec();
        assert_eq!(current_key(Some("lr"), &keys), "lr");
        assert_eq!(current_key(Some("seed"), &keys), "sweep.id");
        assert_eq!(current_key(None, &keys), "sweep.id");
        assert_eq!(current_key(None, &[]), DEFAULT_KEY);
    }

    #[test]
    fn closest_keys_come_first_by_their_dotted_tail() {
        let keys: Vec<String> = ["architecture.latent_dim", "lr", "seed", "sweep.id"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            closest_first("latnt_dim", keys.iter()),
            ["architecture.latent_dim", "lr", "seed", "sweep.id"]
        );
        assert_eq!(closest_first("id", keys.iter())[0], "sweep.id");
    }

    /// A training run record under `root` with the given config.
    fn train_run(root: &std::path::Path, id: &str, config: Value) {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let info = json!({
            "format": 1, "id": id, "kind": "train", "name": id, "status": "done", "pid": 0,
            "started": "2026-11-22T10:00:00Z", "updated": "2026-11-22T10:10:00Z",
            "argv": ["train-vae", "train"], "config": config, "device": "flex",
            "progress": {"fraction": 1.0, "stage": "done"}, "resumed": 0,
        });
        std::fs::write(dir.join("run.json"), info.to_string()).unwrap();
    }

    #[test]
    fn an_ambiguous_by_name_is_an_error_and_a_full_key_resolves() {
        let root = tempfile::tempdir().unwrap();
        train_run(
            root.path(),
            "train-a",
            json!({"enc": {"widths": [1]}, "dec": {"widths": [2]}}),
        );
        train_run(
            root.path(),
            "train-b",
            json!({"enc": {"widths": [3]}, "lr": 0.1}),
        );
        let catalog = Catalog::open(root.path());
        assert_eq!(
            resolve_key(&catalog, "widths").unwrap_err(),
            "'widths' names several config keys (dec.widths, enc.widths); give one in full"
        );
        assert_eq!(resolve_key(&catalog, "enc.widths").unwrap(), "enc.widths");
        assert_eq!(resolve_key(&catalog, "lr").unwrap(), "lr");
        // no sweep, no latent dimension: the varying keys, and `latent_dim` groups nothing
        assert_eq!(group_keys(&catalog), ["enc.widths"]);
        assert_eq!(default_key(&catalog), "enc.widths");
        assert!(resolve_key(&catalog, "sweep").is_err());
        // an empty folder groups nothing, whatever the key
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(resolve_key(&Catalog::open(empty.path()), "x").unwrap(), "x");
    }
}
