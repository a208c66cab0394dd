//! Progress reporting shared by MAP, VI and HMC: every algorithm calls a user callback once per step with
//! the stage name, the step, the total and a few scalar metrics, so the caller can drive progress bars and
//! append to the run record's metrics.jsonl. Returning `Err` from the callback aborts the algorithm cleanly
//! (e.g. on Ctrl-C or when the run record cannot be written).

use anyhow::Result;
use serde_json::{Map, Value};

/// One progress report.
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    /// "map", "vi", "hmc_burn", "hmc_sample" or "hmc_round" (a sampling round judged).
    pub stage: &'a str,
    /// 0-based step just completed.
    pub step: usize,
    /// Number of steps in this stage.
    pub total: usize,
    /// Named scalar metrics of this step (loss, learning rate, acceptance, ...).
    pub metrics: &'a [(&'static str, f64)],
}

impl Progress<'_> {
    /// The metric `name` of this step (NaN when absent).
    pub fn metric(&self, name: &str) -> f64 {
        self.metrics
            .iter()
            .find(|m| m.0 == name)
            .map_or(f64::NAN, |m| m.1)
    }

    /// The metrics as a JSON object `{stage, step, <name>: value, ...}` (non-finite values become null), the
    /// shape of a metrics.jsonl line.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("stage".into(), Value::from(self.stage));
        m.insert("step".into(), Value::from(self.step as u64));
        for (k, v) in self.metrics {
            m.insert(
                (*k).into(),
                serde_json::Number::from_f64(*v)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
            );
        }
        m
    }
}

/// A callback that ignores all reports.
pub fn no_progress(_: &Progress) -> Result<()> {
    Ok(())
}
