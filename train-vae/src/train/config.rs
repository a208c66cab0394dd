//! The resolved configuration of a training run (stored in `run.json` and the resume state).

use arclight_core::DeviceChoice;
use arclight_vae::model::VaeConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Paper's Adam momentum parameters (Sec. 2.2).
pub const PAPER_BETAS: (f64, f64) = (0.5, 0.999);
/// PyTorch's Adam epsilon (burn's default is 1e-5).
pub const ADAM_EPSILON: f64 = 1e-8;
/// Paper's minibatch size (Sec. 2.2).
pub const PAPER_BATCH: usize = 32;
/// Paper's learning rate (Sec. 2.2).
pub const PAPER_LR: f64 = 1e-6;
/// Our default learning rate (paper: 1e-6 over ~450 epochs). With Adam every weight moves by
/// about lr per step, and the 8192-input last encoder convolution and the 4096-input Linear heads
/// add thousands of such moves coherently: at 1e-4 log sigma_e runs away (KL spikes of 1e7-1e9
/// nats per image on the paper's network), at 1e-5 and 3e-5 the first epoch stays stable
/// (validation KL ~11-13). A narrower network tolerates 1e-4 and more. Table and runs in
/// checkpoints/README.md.
pub const DEFAULT_LR: f64 = 1e-5;

/// Everything that determines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// HDF5 data set (train / validation / test splits).
    pub data: PathBuf,
    /// Checkpoint directory written by the run.
    pub out: PathBuf,
    /// Network shape and sigma_d.
    pub architecture: VaeConfig,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam (beta_1, beta_2).
    pub betas: (f64, f64),
    /// Adam epsilon.
    pub adam_epsilon: f64,
    /// Reparametrised samples M per image (eq. C3).
    pub samples: usize,
    /// Early-stopping patience in epochs.
    pub patience: usize,
    /// Seed of the initialisation, shuffling and noise.
    pub seed: u64,
    /// Latent-prior covariance factor (paper: 9).
    pub prior_scale: f64,
    /// Write a "step" metrics line every this many steps.
    pub log_every: usize,
    /// Checkpoint whose weights initialise the run, if any.
    pub init_from: Option<PathBuf>,
    /// Keep only decoder + prior in the final checkpoint.
    pub decoder_only: bool,
    /// Compute device.
    pub device: DeviceChoice,
    /// Root of the experiment records.
    pub experiments: PathBuf,
    /// The `train-vae sweep` this run is one setting of (recorded in its run record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepTag>,
}

/// Marks a run as one setting of a `train-vae sweep`: `arclight` groups runs by `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepTag {
    /// 16 hex digits of the SHA-256 of the sweep's plan.
    pub id: String,
    /// The setting's name, e.g. `ld16`.
    pub setting: String,
    /// The sweep folder (absolute).
    pub dir: PathBuf,
}
