//! One progress adapter for the three stages: a bar on the terminal, the stage's line in the run's
//! `metrics.jsonl` and the run's overall fraction (read by the TUI), updated together.

use anyhow::Result;
use serde_json::{Map, Value};

use super::Stages;
use arclight_core::record::Run;

/// A stage of the pipeline, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    Map,
    Vi,
    Hmc,
}

impl Stage {
    /// Its name in the run record.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Map => "map",
            Stage::Vi => "vi",
            Stage::Hmc => "hmc",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn label(self) -> &'static str {
        match self {
            Stage::Map => "MAP",
            Stage::Vi => "VI",
            Stage::Hmc => "HMC",
        }
    }
}

/// Overall progress: the enabled stages share [0, 1] equally.
pub(super) fn stage_fraction(stage: usize, step: usize, total: usize, st: Stages) -> f64 {
    let on = [st.map, st.vi, st.hmc];
    let n = on.iter().filter(|&&b| b).count().max(1) as f64;
    let before = on[..stage].iter().filter(|&&b| b).count() as f64;
    (before + step as f64 / total.max(1) as f64) / n
}

/// The progress of one running stage.
pub(super) struct StageProgress {
    stage: Stage,
    stages: Stages,
    bar: arclight_core::progress::ProgressBar,
}

impl StageProgress {
    /// A stage of `steps` steps (the bar's length).
    pub fn new(stage: Stage, steps: usize, stages: Stages) -> Self {
        Self {
            stage,
            stages,
            bar: arclight_core::progress::bar(steps as u64, stage.label()),
        }
    }

    /// Lengthen the bar (HMC rounds beyond the first).
    pub fn set_length(&self, steps: usize) {
        self.bar.set_length(steps as u64);
    }

    /// Step `done` of the stage's `total` (the fraction's denominator): the bar shows `message`, the
    /// record gets `line` under the stage's name.
    pub fn report(
        &self,
        run: &mut Run,
        done: usize,
        total: usize,
        message: String,
        line: Map<String, Value>,
    ) -> Result<()> {
        self.bar.set_position(done as u64);
        self.bar.set_message(message);
        run.log(self.stage.name(), Value::Object(line))?;
        run.progress(
            stage_fraction(self.stage.index(), done, total, self.stages),
            self.stage.name(),
            None,
            false,
        )
    }

    /// Clear the bar.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
