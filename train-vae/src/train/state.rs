//! Resume state of a training run, kept in `<checkpoint>/training/` and rewritten (as part of
//! the checkpoint directory swap) at the end of every epoch:
//!
//! ```text
//! training/vae.bpk         encoder + decoder of the last complete epoch (burnpack, with the
//!                          parameter ids the optimizer state is keyed by)
//! training/optimizer.bin   Adam state (moments and step count per parameter id), train::adam
//! training/state.json      ResumeState: epochs completed, global step, early-stopping state,
//!                          run id, the full resolved training config
//! ```
//!
//! Random state: every random stream of epoch k (minibatch shuffling, the reparametrisation
//! noise eps) is seeded from (seed, k), and the validation noise from the seed alone, so
//! "seed + epochs completed" is the whole RNG state: a resumed run continues exactly as an
//! uninterrupted one would.

use super::config::TrainConfig;
use super::early_stopping::EarlyStopping;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of `state.json`.
pub const STATE_VERSION: u32 = 1;
pub const STATE_FILE: &str = "state.json";
pub const VAE_FILE: &str = "vae.bpk";
pub const OPTIMIZER_FILE: &str = "optimizer.bin";

/// Contents of `training/state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    pub format_version: u32,
    /// Epochs fully completed (the weights in `vae.bpk` are those after this epoch).
    pub epochs_completed: usize,
    /// Optimiser steps taken so far.
    pub global_step: u64,
    pub early_stopping: EarlyStopping,
    /// Run id of the experiment record under `config.experiments`.
    pub run_id: String,
    /// Wall-clock seconds spent in training so far.
    pub elapsed_s: f64,
    /// The resolved configuration of the run.
    pub config: TrainConfig,
}

impl ResumeState {
    /// Read `training/state.json` of checkpoint `dir`.
    pub fn load(dir: &Path) -> Result<ResumeState> {
        let path = dir
            .join(arclight_vae::checkpoint::TRAINING_DIR)
            .join(STATE_FILE);
        if !path.is_file() {
            bail!(
                "--resume: {} has no training state ({} missing); start a new run without --resume",
                dir.display(),
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", path.display()))?;
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == STATE_VERSION as u64 => {}
            other => bail!(
                "{}: training-state format_version {other:?}, this build reads {STATE_VERSION}",
                path.display()
            ),
        }
        serde_json::from_value(value)
            .with_context(|| format!("{}: malformed training state", path.display()))
    }
}
