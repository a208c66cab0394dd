//! `train-vae train`: command-line options and their resolution into a [`TrainConfig`].

use super::config::{ADAM_EPSILON, DEFAULT_LR, PAPER_BATCH, PAPER_BETAS, SweepTag, TrainConfig};
use super::state::ResumeState;
use super::trainer::{TrainOutcome, train};
use anyhow::{Result, bail, ensure};
use arclight_core::DeviceChoice;
use arclight_vae::checkpoint;
use arclight_vae::dataset::read_provenance;
use arclight_vae::model::VaeConfig;
use arclight_vae::model::config::{
    PAPER_HEAD_WIDTH, PAPER_LATENT_DIM, PAPER_SIGMA_D, PAPER_WIDTHS,
};
use arclight_vae::prior::PAPER_PRIOR_SCALE;
use std::path::{Path, PathBuf};

/// Default maximum number of epochs (early stopping usually ends a run before).
pub const DEFAULT_EPOCHS: usize = 100;
/// Default early-stopping patience (epochs).
pub const DEFAULT_PATIENCE: usize = 10;
/// Reparametrised samples per image unless `--samples` says otherwise.
pub const DEFAULT_SAMPLES: usize = 1;

/// Options of `train-vae train`.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// HDF5 data set made by `train-vae prepare` or `synth`. With --resume: optional (the
    /// stored one), or the current path of that data set if it moved (its provenance must match).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Checkpoint directory to write (e.g. checkpoints/my-prior).
    #[arg(long)]
    pub out: PathBuf,
    /// Maximum number of epochs [default: 100].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Latent dimension D [default: 64, the paper's].
    #[arg(long)]
    pub latent_dim: Option<usize>,
    /// Channel widths of the four strided encoder blocks, mirrored in the decoder
    /// [default: 64,128,256,512, Table D1].
    #[arg(long)]
    pub widths: Option<String>,
    /// Channels of the last 4x4 encoder convolution [default: 4096].
    #[arg(long)]
    pub head_width: Option<usize>,
    /// Decoder standard deviation sigma_d, eq. (1) [default: 0.02 = 1/50].
    #[arg(long)]
    pub sigma_d: Option<f64>,
    /// Adam learning rate [default: 1e-5; the paper used 1e-6; 1e-4 diverges on the paper's network]. With --resume it replaces the
    /// stored one (e.g. to continue with a smaller rate after a NaN loss).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Minibatch size [default: 32]. Fixed when a run starts (refused with a different value on --resume).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Reparametrised samples M per image (eq. C3; the paper used 10) [default: 1]. Fixed when a run starts.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Early-stopping patience in epochs [default: 10].
    #[arg(long)]
    pub patience: Option<usize>,
    /// Seed for initialisation, shuffling and noise [default: 0]. Fixed when a run starts.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Factor applied to the covariance of the encoded means for the latent prior [default: 9, the
    /// paper's]. Fixed when a run starts.
    #[arg(long)]
    pub prior_scale: Option<f64>,
    /// Compute device: flex (default) or tch (needs the `tch` cargo feature).
    #[arg(long, default_value = "flex")]
    pub device: DeviceChoice,
    /// Root folder of experiment records.
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    /// Write a "step" metrics line every N optimiser steps.
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    /// Start from the weights (and architecture) of an existing full checkpoint.
    #[arg(long, conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// Continue the interrupted run in --out from its last complete epoch.
    #[arg(long)]
    pub resume: bool,
    /// Keep only the decoder and the prior in the final checkpoint (small, for shipping).
    #[arg(long)]
    pub decoder_only: bool,
}

/// Run `train-vae train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let outcome = train_with(args, None)?;
    println!(
        "trained: best epoch {} of {} (validation ELBO {:.2} nats/image{}){}",
        outcome.best_epoch,
        outcome.epochs_completed,
        outcome.best_val_elbo,
        if outcome.stopped_early {
            ", stopped early"
        } else {
            ""
        },
        outcome
            .test
            .as_ref()
            .map(|t| format!(", test ELBO {:.2}", t.elbo))
            .unwrap_or_default()
    );
    println!("checkpoint: {}", outcome.checkpoint.display());
    println!("run record: {}", outcome.run_dir.display());
    Ok(())
}

/// Train (or with `args.resume` continue) as `train-vae train` does, the run tagged as one setting
/// of a sweep when `sweep` is given (a resumed run keeps the tag it was started with).
pub fn train_with(args: TrainArgs, sweep: Option<SweepTag>) -> Result<TrainOutcome> {
    if args.resume {
        resume(args)
    } else {
        fresh(args, sweep)
    }
}

fn fresh(a: TrainArgs, sweep: Option<SweepTag>) -> Result<TrainOutcome> {
    let Some(data) = a.data.clone() else {
        bail!("--data <h5> is required (except with --resume)")
    };
    checkpoint::recover_interrupted_swap(&a.out)?;
    if a.out.join(checkpoint::META_FILE).exists() {
        bail!(
            "--out {}: a checkpoint already exists there; continue it with --resume, or choose another --out",
            a.out.display()
        );
    }
    let arch = match &a.init_from {
        Some(dir) => {
            let meta = checkpoint::read_meta(dir)?;
            let m = meta.architecture;
            for (flag, given, have) in [
                (
                    "--latent-dim",
                    a.latent_dim.map(|v| v.to_string()),
                    m.latent_dim.to_string(),
                ),
                (
                    "--head-width",
                    a.head_width.map(|v| v.to_string()),
                    m.head_width.to_string(),
                ),
                (
                    "--widths",
                    a.widths
                        .as_deref()
                        .map(|w| VaeConfig::parse_widths(w).map(|w| format!("{w:?}")))
                        .transpose()?,
                    format!("{:?}", m.widths),
                ),
            ] {
                if let Some(g) = given {
                    ensure!(
                        g == have,
                        "{flag} {g} conflicts with --init-from {}, whose architecture has {have}",
                        dir.display()
                    );
                }
            }
            VaeConfig {
                sigma_d: a.sigma_d.unwrap_or(m.sigma_d),
                ..m
            }
        }
        None => VaeConfig {
            latent_dim: a.latent_dim.unwrap_or(PAPER_LATENT_DIM),
            widths: match &a.widths {
                Some(w) => VaeConfig::parse_widths(w)?,
                None => PAPER_WIDTHS,
            },
            head_width: a.head_width.unwrap_or(PAPER_HEAD_WIDTH),
            image_size: arclight_vae::model::config::IMAGE_SIZE,
            sigma_d: a.sigma_d.unwrap_or(PAPER_SIGMA_D),
        },
    };
    // Paths are stored absolute, so `--resume` works from any working directory.
    let config = TrainConfig {
        data: absolute(&data),
        out: a.out,
        architecture: arch,
        epochs: a.epochs.unwrap_or(DEFAULT_EPOCHS),
        batch_size: a.batch_size.unwrap_or(PAPER_BATCH),
        lr: a.lr.unwrap_or(DEFAULT_LR),
        betas: PAPER_BETAS,
        adam_epsilon: ADAM_EPSILON,
        samples: a.samples.unwrap_or(DEFAULT_SAMPLES),
        patience: a.patience.unwrap_or(DEFAULT_PATIENCE),
        seed: a.seed.unwrap_or(0),
        prior_scale: a.prior_scale.unwrap_or(PAPER_PRIOR_SCALE),
        log_every: a.log_every,
        init_from: a.init_from.as_deref().map(absolute),
        decoder_only: a.decoder_only,
        device: a.device,
        experiments: absolute(&a.experiments),
        sweep,
    };
    train(config, None)
}

fn resume(a: TrainArgs) -> Result<TrainOutcome> {
    if checkpoint::recover_interrupted_swap(&a.out)? {
        eprintln!(
            "train-vae: restored {} from an interrupted checkpoint swap",
            a.out.display()
        );
    }
    let state = ResumeState::load(&a.out)?;
    let mut config = state.config.clone();
    let origins = origins(&a.out, &config.out);
    config.data = resume_data(&a, &config.data, &origins)?;
    config.experiments = resume_experiments(&config.experiments, &state.run_id, &origins);
    let stored = &config.architecture;
    if a.latent_dim.is_some_and(|d| d != stored.latent_dim)
        || a.head_width.is_some_and(|h| h != stored.head_width)
        || a.sigma_d.is_some_and(|s| s != stored.sigma_d)
        || a.widths
            .as_deref()
            .map(VaeConfig::parse_widths)
            .transpose()?
            .is_some_and(|w| w != stored.widths)
    {
        bail!(
            "--resume: architecture options differ from the run being resumed ({stored:?}); drop them"
        );
    }
    // what is fixed when a run starts: a different value would be silently ignored
    let mut fixed = Vec::new();
    if let Some(v) = a.batch_size.filter(|&v| v != config.batch_size) {
        fixed.push(format!(
            "--batch-size {v} (the run's: {})",
            config.batch_size
        ));
    }
    if let Some(v) = a.samples.filter(|&v| v != config.samples) {
        fixed.push(format!("--samples {v} (the run's: {})", config.samples));
    }
    if let Some(v) = a.seed.filter(|&v| v != config.seed) {
        fixed.push(format!("--seed {v} (the run's: {})", config.seed));
    }
    if let Some(v) = a.prior_scale.filter(|&v| v != config.prior_scale) {
        fixed.push(format!(
            "--prior-scale {v} (the run's: {})",
            config.prior_scale
        ));
    }
    if !fixed.is_empty() {
        bail!(
            "--resume: {} differ from the run in {}, and are fixed when a run starts; drop them (only --epochs, --patience, --lr, --data, --device and --decoder-only may change on resume), or start a new run with another --out",
            fixed.join(", "),
            a.out.display()
        );
    }
    // the final checkpoint may still be made decoder-only
    config.decoder_only |= a.decoder_only;
    config.out = a.out;
    config.device = a.device;
    config.log_every = a.log_every;
    if let Some(e) = a.epochs {
        config.epochs = e;
    }
    if let Some(p) = a.patience {
        config.patience = p;
    }
    if let Some(lr) = a.lr {
        config.lr = lr;
    }
    let mut state = state;
    state.early_stopping.patience = config.patience;
    // A run that ended (early or after its last epoch) but was interrupted before its latent
    // prior was fitted is not refused: `train` skips to fitting the prior.
    let finished = checkpoint::read_meta(&config.out)
        .map(|m| m.prior.is_some())
        .unwrap_or(false);
    if finished && state.early_stopping.stopped() {
        bail!(
            "--resume: the run in {} already stopped early at epoch {} (best epoch {}); raise --patience to continue",
            config.out.display(),
            state.epochs_completed,
            state.early_stopping.best_epoch
        );
    }
    if finished && state.epochs_completed >= config.epochs {
        bail!(
            "--resume: the run in {} already completed its {} epochs; pass a larger --epochs to continue",
            config.out.display(),
            state.epochs_completed
        );
    }
    train(config, Some(state))
}

/// `p` made absolute against the working directory (not resolving symlinks; `p` unchanged if
/// the working directory is unknown).
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Where a relative path stored by a run could be relative to: the working directory now and,
/// when the stored `--out` was relative, the directory the run was started from (`--out` now,
/// absolute, minus the stored relative `--out`: `/x/checkpoints/ck` minus `checkpoints/ck`).
fn origins(out_now: &Path, out_stored: &Path) -> Vec<PathBuf> {
    let mut v = vec![PathBuf::new()];
    if out_stored.is_relative() {
        let now = absolute(out_now);
        let n = out_stored.components().count();
        if now.ends_with(out_stored) {
            let start: PathBuf = now
                .components()
                .take(now.components().count() - n)
                .collect();
            v.push(start);
        }
    }
    v
}

/// The data set of a resumed run: the stored path (absolute since it was recorded so; older
/// runs stored it as given, tried against [`origins`]), or `--data` when it names the same data
/// set (a moved copy). Either way its provenance must be the one recorded in the checkpoint, so
/// a data set re-made at the same path is not trained on silently.
fn resume_data(a: &TrainArgs, stored: &Path, origins: &[PathBuf]) -> Result<PathBuf> {
    let found: Option<PathBuf> = if stored.is_absolute() {
        Some(stored.to_path_buf()).filter(|p| p.is_file())
    } else {
        origins.iter().map(|o| o.join(stored)).find(|p| p.is_file())
    };
    let (path, moved) = match (&a.data, &found) {
        (Some(given), _) => {
            let same_file = found.as_ref().is_some_and(|f| {
                matches!(
                    (std::fs::canonicalize(f), std::fs::canonicalize(given)),
                    (Ok(x), Ok(y)) if x == y
                )
            });
            (absolute(given), !same_file)
        }
        (None, Some(p)) => (absolute(p), false),
        (None, None) => bail!(
            "--resume: the data set of the run in {}, {}, is not found{}; if it moved, give its current path with --resume --data PATH",
            a.out.display(),
            stored.display(),
            if stored.is_relative() {
                format!(
                    " (looked in {})",
                    origins
                        .iter()
                        .map(|o| absolute(&o.join(stored)).display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                String::new()
            }
        ),
    };
    let recorded = checkpoint::read_meta(&a.out)?.data.provenance;
    if read_provenance(&path)? != recorded {
        let meta = a.out.join(checkpoint::META_FILE);
        if moved {
            bail!(
                "--data {} is not the data set of the run being resumed ({}): its provenance differs from the one recorded in {}; give the moved copy of that data set, or resume without --data if it is still at {}",
                path.display(),
                stored.display(),
                meta.display(),
                stored.display()
            );
        }
        bail!(
            "--resume: the data set {} has changed since the run in {} started: its provenance differs from the one recorded in {} (re-made by `prepare` or `synth`?); put the original data set back at that path, give its current path with --resume --data PATH, or start a new run with another --out",
            path.display(),
            a.out.display(),
            meta.display()
        );
    }
    Ok(path)
}

/// The experiments folder of a resumed run: the stored one, or (stored relative) the first of
/// [`origins`] under which the run's record exists.
fn resume_experiments(stored: &Path, run_id: &str, origins: &[PathBuf]) -> PathBuf {
    if stored.is_absolute() {
        return stored.to_path_buf();
    }
    origins
        .iter()
        .map(|o| o.join(stored))
        .find(|p| p.join(run_id).join("run.json").is_file())
        .map_or_else(|| absolute(stored), |p| absolute(&p))
}
