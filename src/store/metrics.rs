//! In-memory digest of a run's `metrics.jsonl`: one downsampled [`Series`] per (line kind,
//! group, numeric key), plus the last line of every kind.
//!
//! Nothing here hard-codes the names the binaries log: every numeric field of every line kind
//! becomes a series, so a view (or the user, with the arrow keys) can plot any of them, and every
//! numeric array field (e.g. infer's `map_trace` loss trajectory of one start) becomes a series
//! over its index. The x coordinate of a line is chosen by [`x_of`]: `epoch` for `"epoch"` lines,
//! else `draw`, else the line's ordinal for `"hmc"` lines (infer restarts `step` at 0 when
//! warm-up ends), else `step`, else `t`, else the ordinal. Lines that carry a `start` or `chain`
//! field (multistart MAP, several HMC chains) are split into one series per group.
//!
//! When `epoch` or `step` goes back (a resumed run repeats the interrupted epoch, a restarted
//! stage starts again at step 0), the later lines replace the earlier ones from that x on:
//! readers keep the last line per step / epoch, as train-vae's record format asks.

use super::series::Series;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Upper bound on distinct series per run, so a file with ever-new keys cannot exhaust memory.
pub const MAX_SERIES: usize = 512;
/// Upper bound on remembered stage transitions.
const MAX_STAGES: usize = 64;

/// Fields that split a kind's lines into separate traces.
pub const GROUP_FIELDS: [&str; 2] = ["start", "chain"];

/// Identity of one series.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// Line kind (`"step"`, `"epoch"`, `"map"`, ...).
    pub kind: String,
    /// Value of the grouping field (`start`/`chain`), if the line had one.
    pub group: Option<String>,
    /// Numeric field name.
    pub name: String,
}

/// Digest of all metric lines read so far.
#[derive(Clone, Debug, Default)]
pub struct RunMetrics {
    series: BTreeMap<SeriesKey, Series>,
    last: BTreeMap<String, Map<String, Value>>,
    counts: BTreeMap<String, u64>,
    stages: Vec<(f64, String)>,
    lines: u64,
    /// Lines without a string `kind` field (kept under kind `""`).
    pub untyped_lines: u64,
    /// Series not created because [`MAX_SERIES`] was reached.
    pub dropped_series: u64,
    last_t: Option<f64>,
    /// Last x per (kind, group), to notice restarts.
    last_x: BTreeMap<(String, Option<String>), f64>,
}

/// The x coordinate of a line of the given kind (see module docs); `ordinal` is its index.
pub fn x_of(kind: &str, line: &Map<String, Value>, ordinal: u64) -> (f64, &'static str) {
    let num = |k: &str| line.get(k).and_then(Value::as_f64);
    if kind == "epoch"
        && let Some(e) = num("epoch")
    {
        return (e, "epoch");
    }
    if let Some(d) = num("draw") {
        return (d, "draw");
    }
    if kind == "hmc" {
        return (ordinal as f64, "line");
    }
    for key in ["step", "t"] {
        if let Some(v) = num(key) {
            return (v, key);
        }
    }
    (ordinal as f64, "line")
}

impl RunMetrics {
    /// Fold one metrics line into the digest.
    pub fn ingest(&mut self, line: Map<String, Value>) {
        self.lines += 1;
        let kind = match line.get("kind").and_then(Value::as_str) {
            Some(k) => k.to_string(),
            None => {
                self.untyped_lines += 1;
                String::new()
            }
        };
        let ordinal = {
            let c = self.counts.entry(kind.clone()).or_insert(0);
            *c += 1;
            *c - 1
        };
        if let Some(t) = line.get("t").and_then(Value::as_f64) {
            self.last_t = Some(t);
        }
        if kind == "stage"
            && let Some(stage) = line.get("stage").and_then(Value::as_str)
            && self.stages.len() < MAX_STAGES
        {
            let t = line.get("t").and_then(Value::as_f64).unwrap_or(f64::NAN);
            self.stages.push((t, stage.to_string()));
        }
        let (x, x_key) = x_of(&kind, &line, ordinal);
        let group = GROUP_FIELDS.iter().find_map(|g| {
            line.get(*g).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        });
        if matches!(x_key, "epoch" | "step") {
            let slot = (kind.clone(), group.clone());
            if self.last_x.get(&slot).is_some_and(|&last| x <= last) {
                for (k, s) in self.series.iter_mut() {
                    if k.kind == kind && k.group == group {
                        s.truncate_from(x);
                    }
                }
            }
            self.last_x.insert(slot, x);
        }
        for (name, value) in &line {
            if name == "kind" || name == x_key || GROUP_FIELDS.contains(&name.as_str()) {
                continue;
            }
            let key = SeriesKey {
                kind: kind.clone(),
                group: group.clone(),
                name: name.clone(),
            };
            match value {
                Value::Array(items) => {
                    // a whole trajectory in one line: it replaces any earlier one
                    if let Some(s) = self.series_mut(key) {
                        s.truncate_from(f64::NEG_INFINITY);
                        for (i, v) in items.iter().enumerate() {
                            if let Some(y) = v.as_f64() {
                                s.push(i as f64, y);
                            }
                        }
                    }
                }
                other => {
                    if let Some(y) = other.as_f64()
                        && let Some(s) = self.series_mut(key)
                    {
                        s.push(x, y);
                    }
                }
            }
        }
        self.last.insert(kind, line);
    }

    /// The series of `key`, created if the [`MAX_SERIES`] budget allows.
    fn series_mut(&mut self, key: SeriesKey) -> Option<&mut Series> {
        let room = self.series.len() < MAX_SERIES;
        if !room && !self.series.contains_key(&key) {
            self.dropped_series += 1;
            return None;
        }
        Some(self.series.entry(key).or_default())
    }

    /// Total lines ingested.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Lines seen of one kind.
    pub fn count(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    /// Line kinds seen, with counts.
    pub fn kinds(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts.iter().map(|(k, n)| (k.as_str(), *n))
    }

    /// The most recent line of a kind.
    pub fn last(&self, kind: &str) -> Option<&Map<String, Value>> {
        self.last.get(kind)
    }

    /// A numeric field of the most recent line of a kind.
    pub fn last_f64(&self, kind: &str, name: &str) -> Option<f64> {
        self.last(kind)?.get(name)?.as_f64()
    }

    /// A string field of the most recent line of a kind.
    pub fn last_str(&self, kind: &str, name: &str) -> Option<&str> {
        self.last(kind)?.get(name)?.as_str()
    }

    /// Time stamp (`t`, seconds since start) of the most recent line.
    pub fn last_t(&self) -> Option<f64> {
        self.last_t
    }

    /// Stage transitions `(t, stage)` in order of appearance.
    pub fn stages(&self) -> &[(f64, String)] {
        &self.stages
    }

    /// The ungrouped series of `name` in lines of `kind`.
    pub fn series(&self, kind: &str, name: &str) -> Option<&Series> {
        self.series.get(&SeriesKey {
            kind: kind.into(),
            group: None,
            name: name.into(),
        })
    }

    /// All series of `name` in lines of `kind`, grouped or not: `(group, series)`.
    pub fn groups(&self, kind: &str, name: &str) -> Vec<(Option<&str>, &Series)> {
        self.series
            .iter()
            .filter(|(k, _)| k.kind == kind && k.name == name)
            .map(|(k, s)| (k.group.as_deref(), s))
            .collect()
    }

    /// Distinct numeric field names seen in lines of `kind`, sorted.
    pub fn names(&self, kind: &str) -> Vec<String> {
        let set: std::collections::BTreeSet<&str> = self
            .series
            .keys()
            .filter(|k| k.kind == kind)
            .map(|k| k.name.as_str())
            .collect();
        set.into_iter().map(String::from).collect()
    }

    /// The y value at x == `x` of an exactly stored series (epoch series are short enough to be
    /// exact unless a run has more epochs than a series' capacity).
    pub fn value_at(&self, kind: &str, name: &str, x: f64) -> Option<f64> {
        let s = self.series(kind, name)?;
        s.points(usize::MAX)
            .into_iter()
            .find(|p| p.0 == x)
            .map(|p| p.1)
    }

    /// Best validation ELBO and its epoch: the `best_val_elbo` of the last `"epoch"` line, else
    /// the `val_elbo` at its `best_epoch`, else the largest `val_elbo` seen (the ELBO is maximised).
    pub fn best_val_elbo(&self) -> Option<(f64, Option<f64>)> {
        let best_epoch = self.last_f64("epoch", "best_epoch");
        // train-vae reports the running best directly
        if let Some(v) = self.last_f64("epoch", "best_val_elbo") {
            return Some((v, best_epoch));
        }
        if let Some(be) = best_epoch
            && let Some(v) = self.value_at("epoch", "val_elbo", be)
        {
            return Some((v, Some(be)));
        }
        self.series("epoch", "val_elbo")?
            .argmax()
            .map(|(x, y)| (y, Some(x)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_numeric_key_becomes_a_series() {
        let mut m = RunMetrics::default();
        for e in 1..=3 {
            m.ingest(obj(json!({"t": e as f64, "kind": "epoch", "epoch": e, "val_elbo": -100.0 + e as f64, "note": "x"})));
        }
        m.ingest(obj(
            json!({"t": 4.0, "kind": "map", "step": 1, "start": 2, "loss": 5.0}),
        ));
        m.ingest(obj(json!({"t": 5.0, "kind": "stage", "stage": "vi"})));
        assert_eq!(
            m.names("epoch"),
            vec!["t".to_string(), "val_elbo".to_string()]
        );
        assert_eq!(
            m.series("epoch", "val_elbo").unwrap().last(),
            Some((3.0, -97.0))
        );
        assert_eq!(m.groups("map", "loss")[0].0, Some("2"));
        assert_eq!(m.last_str("stage", "stage"), Some("vi"));
        assert_eq!(m.value_at("epoch", "val_elbo", 2.0), Some(-98.0));
        assert_eq!(m.count("epoch"), 3);
    }

    #[test]
    fn repeated_epochs_replace_earlier_lines_and_arrays_become_series() {
        let mut m = RunMetrics::default();
        for e in [1, 2, 3, 2, 3, 4] {
            m.ingest(obj(json!({"kind": "epoch", "epoch": e, "val_elbo": e as f64 * 10.0 + if e > 1 { 1.0 } else { 0.0 }})));
        }
        let s = m.series("epoch", "val_elbo").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            s.points(10).iter().map(|p| p.0).collect::<Vec<_>>(),
            [1.0, 2.0, 3.0, 4.0]
        );
        m.ingest(obj(
            json!({"kind": "map_trace", "start": 3, "loss": [9.0, 5.0, 4.0]}),
        ));
        let (group, trace) = m.groups("map_trace", "loss")[0];
        assert_eq!(group, Some("3"));
        assert_eq!(trace.points(10), vec![(0.0, 9.0), (1.0, 5.0), (2.0, 4.0)]);
        // HMC step restarts at 0 after warm-up: the ordinal keeps the trace continuous
        for (stage, step) in [("hmc_burn", 0), ("hmc_burn", 1), ("hmc_sample", 0)] {
            m.ingest(obj(
                json!({"kind": "hmc", "stage": stage, "step": step, "accept": 0.8}),
            ));
        }
        assert_eq!(m.series("hmc", "accept").unwrap().len(), 3);
        assert_eq!(m.series("hmc", "step").unwrap().last(), Some((2.0, 0.0)));
    }
}
