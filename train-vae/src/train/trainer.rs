//! The training loop (Sec. 2.2): Adam on the negative ELBO over shuffled minibatches, validation
//! ELBO every epoch, early stopping, the best epoch kept as the checkpoint, resume state written
//! every epoch, and at the end the latent prior fitted on the training set (Sec. 2.1).
//!
//! Run record (`experiments/<run-id>/`, format of `arclight_core::record`):
//! - `run.json`: `config` is the full [`TrainConfig`]; progress stage `"epoch k/E"`.
//! - `metrics.jsonl`, `kind: "step"` every `log_every` steps:
//!   `{step, epoch, loss, rec, kl, lr, images_per_s}` (loss = -ELBO of the minibatch, nats/image);
//!   `kind: "epoch"` after each epoch: `{epoch, step, train_elbo, val_elbo, val_rec, val_kl,
//!   val_chi2_per_pixel, best_epoch, best_val_elbo, patience_left, epoch_s, images_per_s}`;
//!   `kind: "prior"` once: `{n_images, scale, jitter}`. ELBO values are nats per image, higher
//!   is better (the loss is its negative). After `--resume`, the lines of the interrupted epoch
//!   are written again by the repeated epoch: readers keep the last line per step / epoch.
//! - `summary.json` at the end: `{best_val_elbo, best_epoch, epochs, stopped_early, test_elbo,
//!   test_chi2_per_pixel, time_s, checkpoint, prior_scale}` (`test_*` null without test images).
//! - On a NaN/infinite loss or any other error: status `failed` with the message; the checkpoint
//!   directory keeps the best epoch and the last complete epoch's resume state.
//!
//! Console: a progress bar on a terminal; when stdout or stderr is not a terminal (a batch job's
//! log), plain lines on stdout instead (`arclight_core::progress::LogLines`): one per epoch and
//! one every `ARCLIGHT_LOG_INTERVAL_S` seconds (default 30) within an epoch, with epoch, step,
//! loss, ELBO, images/s and ETA.

use super::adam::{AdamParams, FusedAdam};
use super::batches::shuffled_loader;
use super::config::TrainConfig;
use super::early_stopping::{EarlyStopping, Verdict};
use super::elbo::negative_elbo;
use super::evaluate::{SetMetrics, encode_means, evaluate_set};
use super::state::{OPTIMIZER_FILE, ResumeState, STATE_FILE, STATE_VERSION, VAE_FILE};
use anyhow::{Context, Result, anyhow, bail, ensure};
use arclight_core::progress::{LogLines, short_duration};
use arclight_core::record::{Run, RunKind, RunSpec};
use arclight_core::write_json_atomic;
use arclight_vae::checkpoint::{
    self, CheckpointMeta, DECODER_FILE, DataInfo, ENCODER_FILE, FileList, META_FILE, PRIOR_FILE,
    PriorInfo, Staging, TRAINING_DIR, TrainingInfo,
};
use arclight_vae::dataset::{GalaxySet, Split, read_provenance, read_split};
use arclight_vae::model::Vae;
use arclight_vae::model::vae::standard_normal;
use arclight_vae::prior::LatentPrior;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Random streams derived from the run seed (see [`super::state`]).
#[derive(Clone, Copy)]
enum Stream {
    Shuffle = 1,
    Noise = 2,
    Validation = 3,
}

/// SplitMix64 of (seed, epoch, stream): independent, reproducible seeds per epoch and purpose.
fn derive_seed(seed: u64, epoch: usize, stream: Stream) -> u64 {
    let mut z = seed
        .wrapping_add((epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add((stream as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a finished training run produced.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub checkpoint: PathBuf,
    pub best_epoch: usize,
    pub best_val_elbo: f64,
    pub epochs_completed: usize,
    pub stopped_early: bool,
    pub test: Option<SetMetrics>,
}

/// The three splits of the data set, read once.
struct Data {
    train: Arc<GalaxySet>,
    validation: GalaxySet,
    test: GalaxySet,
    provenance: serde_json::Value,
}

fn read_data(path: &Path) -> Result<Data> {
    let train = read_split(path, Split::Train)?;
    ensure!(
        train.n >= 2,
        "--data {}: the train split has {} image(s); training and the latent-prior fit need at least 2",
        path.display(),
        train.n
    );
    let validation = read_split(path, Split::Validation)?;
    ensure!(
        !validation.is_empty(),
        "--data {}: the validation split has no images (needed for the validation ELBO and early stopping)",
        path.display()
    );
    let test = read_split(path, Split::Test)?;
    let provenance = read_provenance(path)?;
    Ok(Data {
        train: Arc::new(train),
        validation,
        test,
        provenance,
    })
}

/// Check the hyper-parameters, with errors naming the flag.
pub fn validate_config(c: &TrainConfig) -> Result<()> {
    c.architecture.validate()?;
    ensure!(c.epochs >= 1, "--epochs must be at least 1");
    ensure!(c.batch_size >= 1, "--batch-size must be at least 1");
    ensure!(
        c.lr.is_finite() && c.lr > 0.0,
        "--lr must be a positive number (got {})",
        c.lr
    );
    ensure!(c.samples >= 1, "--samples must be at least 1");
    ensure!(c.patience >= 1, "--patience must be at least 1");
    ensure!(c.log_every >= 1, "--log-every must be at least 1");
    ensure!(
        c.prior_scale.is_finite() && c.prior_scale > 0.0,
        "--prior-scale must be a positive number"
    );
    let (b1, b2) = c.betas;
    ensure!(
        (0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2),
        "Adam betas must lie in [0, 1)"
    );
    Ok(())
}

fn adam_params(c: &TrainConfig) -> AdamParams {
    AdamParams {
        beta_1: c.betas.0 as f32,
        beta_2: c.betas.1 as f32,
        epsilon: c.adam_epsilon as f32,
    }
}

/// Train a VAE as configured. With `resume`, continue the run whose state was read from
/// `<out>/training/` (the config must be the stored one, with only `epochs`, `patience`,
/// `device`, `log_every`, `lr` possibly changed).
pub fn train(config: TrainConfig, resume: Option<ResumeState>) -> Result<TrainOutcome> {
    validate_config(&config)?;
    let data = read_data(&config.data)?;
    let ad = config.device.autodiff()?;
    let dev = config.device.device()?;

    let (vae, optim, progress) = match &resume {
        Some(st) => {
            let dir = config.out.join(TRAINING_DIR);
            let mut vae = Vae::placeholder(&config.architecture, &ad);
            checkpoint::load_weights(&mut vae, &dir.join(VAE_FILE), &config.architecture)
                .context("--resume: cannot restore the model of the last complete epoch")?;
            let opt_path = dir.join(OPTIMIZER_FILE);
            ensure!(
                opt_path.is_file(),
                "--resume: {} is missing",
                opt_path.display()
            );
            let optim = FusedAdam::load(&opt_path, adam_params(&config))
                .context("--resume: cannot restore the optimizer state")?;
            let p = Progress {
                epochs_completed: st.epochs_completed,
                step: st.global_step,
                early: st.early_stopping.clone(),
                elapsed_before: st.elapsed_s,
            };
            (vae, optim, p)
        }
        None => {
            let vae = match &config.init_from {
                Some(dir) => {
                    let (vae, meta) = checkpoint::load_vae(dir, &ad)
                        .with_context(|| format!("--init-from {}", dir.display()))?;
                    ensure!(
                        meta.architecture == config.architecture,
                        "--init-from {}: its architecture {:?} differs from the requested {:?}",
                        dir.display(),
                        meta.architecture,
                        config.architecture
                    );
                    vae
                }
                None => Vae::new(&config.architecture, config.seed, &ad),
            };
            let p = Progress {
                epochs_completed: 0,
                step: 0,
                early: EarlyStopping::new(config.patience),
                elapsed_before: 0.0,
            };
            (vae, FusedAdam::new(adam_params(&config)), p)
        }
    };

    let config_json = serde_json::to_value(&config)?;
    let mut run = match &resume {
        Some(st)
            if config
                .experiments
                .join(&st.run_id)
                .join("run.json")
                .is_file() =>
        {
            Run::resume(&config.experiments.join(&st.run_id))?
        }
        _ => Run::create(
            &config.experiments,
            RunSpec {
                kind: RunKind::Train,
                name: &checkpoint_name(&config.out),
                config: config_json.clone(),
                device: config.device.to_string(),
                seed: Some(config.seed),
            },
        )?,
    };
    if resume.is_some() {
        run.update_config("resumed_with", config_json)?;
    }
    let start_epochs = progress.epochs_completed;
    let mut trainer = Trainer {
        config,
        data,
        ad,
        dev,
        vae: Some(vae),
        optim,
        progress,
        start_epochs,
        run_id: run.id().to_string(),
        lines: LogLines::from_env(),
    };
    match trainer.run(&mut run) {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            let _ = run.fail(&format!("{e:#}"));
            Err(e)
        }
    }
}

fn checkpoint_name(out: &Path) -> String {
    out.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vae".into())
}

/// Counters that survive a resume.
struct Progress {
    epochs_completed: usize,
    step: u64,
    early: EarlyStopping,
    elapsed_before: f64,
}

struct Trainer {
    config: TrainConfig,
    data: Data,
    ad: Device,
    dev: Device,
    /// The model being trained (taken out only for the duration of an optimiser step).
    vae: Option<Vae>,
    optim: FusedAdam,
    progress: Progress,
    /// Epochs already completed when this process started (the ETA uses this process's rate).
    start_epochs: usize,
    run_id: String,
    /// Plain progress lines for logs.
    lines: LogLines,
}

impl Trainer {
    fn model(&self) -> &Vae {
        self.vae
            .as_ref()
            .expect("the model is present between steps")
    }

    fn run(&mut self, run: &mut Run) -> Result<TrainOutcome> {
        let c = self.config.clone();
        let start = Instant::now();
        let steps_per_epoch = c_div(self.data.train.n, c.batch_size);
        let first_epoch = self.progress.epochs_completed + 1;
        let stopped_before = self.progress.early.stopped();
        if !stopped_before && first_epoch <= c.epochs {
            let remaining = (c.epochs + 1 - first_epoch) * steps_per_epoch;
            let bar = arclight_core::progress::bar(remaining as u64, "train");
            for epoch in first_epoch..=c.epochs {
                let verdict = self.epoch(epoch, run, &bar, start)?;
                if verdict == Verdict::Stop {
                    break;
                }
            }
            bar.finish_and_clear();
        }
        self.finish(run, start)
    }

    /// One epoch: training steps, validation, early stopping, checkpoint.
    fn epoch(
        &mut self,
        epoch: usize,
        run: &mut Run,
        bar: &indicatif::ProgressBar,
        start: Instant,
    ) -> Result<Verdict> {
        let c = &self.config;
        let t0 = Instant::now();
        let d = c.architecture.latent_dim;
        let loader = shuffled_loader(
            self.data.train.clone(),
            c.batch_size,
            derive_seed(c.seed, epoch, Stream::Shuffle),
            &self.ad,
        );
        let mut noise = StdRng::seed_from_u64(derive_seed(c.seed, epoch, Stream::Noise));
        let (mut sum_loss, mut images) = (0.0f64, 0usize);
        let (mut window_t, mut window_images) = (Instant::now(), 0usize);
        for (k, batch) in loader.iter().enumerate() {
            let x = batch.map_err(|e| anyhow!("reading a minibatch failed: {e}"))?;
            let b = x.dims()[0];
            let eps = standard_normal(&mut noise, c.samples * b, d, &self.ad);
            let out = self.model().forward(x.clone(), eps);
            let terms = negative_elbo(
                x,
                out.reconstruction,
                out.encoding.mu,
                out.encoding.log_sigma,
                c.architecture.sigma_d,
            );
            let loss = terms.loss.clone().into_scalar::<f32>() as f64;
            self.progress.step += 1;
            if !loss.is_finite() {
                let kept = if self.progress.epochs_completed == 0 {
                    "No checkpoint was written (no epoch completed).".to_string()
                } else {
                    format!(
                        "The checkpoint at {} still holds the best epoch ({}) and the resume state of epoch {}.",
                        c.out.display(),
                        self.progress.early.best_epoch,
                        self.progress.epochs_completed
                    )
                };
                bail!(
                    "the training loss became {loss} at epoch {epoch}, step {} (batch {} of the epoch); \
                     try a smaller --lr (now {}). {kept}",
                    self.progress.step,
                    k + 1,
                    c.lr
                );
            }
            let grads = GradientsParams::from_grads(terms.loss.backward(), self.model());
            // Moved into the optimizer, not cloned, so it can update the weights in place.
            let vae = self.vae.take().expect("the model is present between steps");
            self.vae = Some(self.optim.step(c.lr, vae, grads));
            sum_loss += loss * b as f64;
            images += b;
            window_images += b;
            bar.inc(1);
            if self.progress.step.is_multiple_of(c.log_every as u64) {
                let rec = terms.rec.into_scalar::<f32>() as f64;
                let kl = terms.kl.into_scalar::<f32>() as f64;
                let ips = window_images as f64 / window_t.elapsed().as_secs_f64().max(1e-9);
                run.log(
                    "step",
                    json!({"step": self.progress.step, "epoch": epoch, "loss": loss, "rec": rec, "kl": kl,
                           "lr": c.lr, "images_per_s": ips}),
                )?;
                (window_t, window_images) = (Instant::now(), 0);
            }
            let epoch_ips = images as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "epoch {epoch}/{} loss {loss:.1} {epoch_ips:.1} img/s",
                c.epochs
            ));
            let steps_per_epoch = c_div(self.data.train.n, c.batch_size);
            let done = (epoch - 1) as f64 + (k + 1) as f64 / steps_per_epoch as f64;
            let eta = eta_seconds(
                start,
                done - self.start_epochs as f64,
                c.epochs as f64 - done,
            );
            if self.lines.due() {
                self.lines.print(&format!(
                    "train: epoch {epoch}/{} step {} (batch {}/{steps_per_epoch}) loss {loss:.2} \
                     (minibatch -ELBO, nats/image) {epoch_ips:.1} images/s ETA {}",
                    c.epochs,
                    self.progress.step,
                    k + 1,
                    eta.map_or("?".into(), short_duration)
                ));
            }
            run.progress(
                done / c.epochs as f64,
                &format!("epoch {epoch}/{}", c.epochs),
                eta,
                false,
            )?;
        }
        let train_elbo = -sum_loss / images.max(1) as f64;
        let valid = self.model().valid();
        let val = evaluate_set(
            &valid,
            &self.data.validation,
            c.samples,
            c.architecture.sigma_d,
            derive_seed(c.seed, 0, Stream::Validation),
            &self.dev,
        );
        if !val.elbo.is_finite() {
            bail!(
                "the validation ELBO became {} at epoch {epoch}; the checkpoint at {} still holds the best epoch ({})",
                val.elbo,
                c.out.display(),
                self.progress.early.best_epoch
            );
        }
        let verdict = self.progress.early.update(epoch, val.elbo);
        self.progress.epochs_completed = epoch;
        let epoch_s = t0.elapsed().as_secs_f64();
        // Logged before the checkpoint swap: a crash in between repeats this epoch on resume
        // (a reader keeps the last line per epoch) rather than leaving a gap.
        let es = &self.progress.early;
        run.log(
            "epoch",
            json!({"epoch": epoch, "step": self.progress.step, "train_elbo": train_elbo, "val_elbo": val.elbo,
                   "val_rec": val.rec, "val_kl": val.kl, "val_chi2_per_pixel": val.chi2_per_pixel,
                   "best_epoch": es.best_epoch, "best_val_elbo": es.best_val_elbo,
                   "patience_left": es.patience_left(), "epoch_s": epoch_s,
                   "images_per_s": images as f64 / epoch_s.max(1e-9)}),
        )?;
        self.write_epoch_checkpoint(verdict == Verdict::Improved, start)?;
        let es = &self.progress.early;
        let eta = eta_seconds(
            start,
            (epoch - self.start_epochs) as f64,
            c.epochs as f64 - epoch as f64,
        );
        let line = format!(
            "train: epoch {epoch}/{} done, step {}: train ELBO {train_elbo:.2}, val ELBO {:.2} \
             (best {:.2} at epoch {}, patience left {}), {epoch_s:.1} s, {:.1} images/s, ETA {}",
            c.epochs,
            self.progress.step,
            val.elbo,
            es.best_val_elbo.unwrap_or(f64::NAN),
            es.best_epoch,
            es.patience_left(),
            images as f64 / epoch_s.max(1e-9),
            if verdict == Verdict::Stop {
                "0s (early stop)".to_string()
            } else {
                eta.map_or("?".into(), short_duration)
            }
        );
        self.lines.print(&line);
        run.progress(
            epoch as f64 / c.epochs as f64,
            &format!("epoch {epoch}/{}", c.epochs),
            None,
            true,
        )?;
        Ok(verdict)
    }

    /// Replace the checkpoint directory: new best weights if `improved`, otherwise the previous
    /// best carried over, plus this epoch's resume state.
    fn write_epoch_checkpoint(&self, improved: bool, start: Instant) -> Result<()> {
        let c = &self.config;
        let staging = Staging::new(&c.out)?;
        let dir = staging.path();
        if improved {
            checkpoint::save_weights(&self.model().decoder, &dir.join(DECODER_FILE))?;
            checkpoint::save_weights(&self.model().encoder, &dir.join(ENCODER_FILE))?;
        } else {
            for f in [DECODER_FILE, ENCODER_FILE] {
                ensure!(
                    staging.keep(f)?,
                    "{}: the best epoch's {f} is missing",
                    c.out.display()
                );
            }
        }
        let tdir = dir.join(TRAINING_DIR);
        std::fs::create_dir_all(&tdir)?;
        checkpoint::save_weights(self.model(), &tdir.join(VAE_FILE))?;
        self.optim.save(&tdir.join(OPTIMIZER_FILE))?;
        let state = ResumeState {
            format_version: STATE_VERSION,
            epochs_completed: self.progress.epochs_completed,
            global_step: self.progress.step,
            early_stopping: self.progress.early.clone(),
            run_id: self.run_id.clone(),
            elapsed_s: self.progress.elapsed_before + start.elapsed().as_secs_f64(),
            config: c.clone(),
        };
        write_json_atomic(&tdir.join(STATE_FILE), &state)?;
        let meta = self.meta(None, true);
        write_json_atomic(&dir.join(META_FILE), &meta)?;
        staging.commit()
    }

    fn meta(&self, prior: Option<PriorInfo>, with_encoder: bool) -> CheckpointMeta {
        let es = &self.progress.early;
        CheckpointMeta {
            format_version: checkpoint::FORMAT_VERSION,
            architecture: self.config.architecture.clone(),
            data: DataInfo {
                normalisation: "max".into(),
                path: self.config.data.display().to_string(),
                provenance: self.data.provenance.clone(),
            },
            training: TrainingInfo {
                run_id: self.run_id.clone(),
                best_epoch: es.best_epoch,
                best_val_elbo: es.best_val_elbo.unwrap_or(f64::NAN),
                epochs_completed: self.progress.epochs_completed,
                finished: prior.is_some(),
            },
            files: FileList {
                decoder: DECODER_FILE.into(),
                encoder: with_encoder.then(|| ENCODER_FILE.into()),
                prior: prior.is_some().then(|| PRIOR_FILE.into()),
            },
            prior,
        }
    }

    /// After the last epoch: fit the latent prior with the best weights, evaluate the test split,
    /// write the final checkpoint and the run summary.
    fn finish(&mut self, run: &mut Run, start: Instant) -> Result<TrainOutcome> {
        let c = self.config.clone();
        run.progress(1.0, "latent prior", None, true)?;
        self.lines
            .print("train: fitting the latent prior and evaluating the test split");
        let (best, _) =
            checkpoint::load_vae(&c.out, &self.dev).context("reloading the best epoch")?;
        let best = best.valid();
        let means = encode_means(&best, &self.data.train, &self.dev);
        let prior = LatentPrior::fit(
            &means,
            self.data.train.n,
            c.architecture.latent_dim,
            c.prior_scale,
        )?;
        run.log(
            "prior",
            json!({"n_images": prior.n_images, "scale": prior.scale, "jitter": prior.jitter}),
        )?;
        let test = (!self.data.test.is_empty()).then(|| {
            evaluate_set(
                &best,
                &self.data.test,
                c.samples,
                c.architecture.sigma_d,
                derive_seed(c.seed, 0, Stream::Validation),
                &self.dev,
            )
        });
        let staging = Staging::new(&c.out)?;
        ensure!(
            staging.keep(DECODER_FILE)?,
            "{}: decoder weights missing",
            c.out.display()
        );
        if !c.decoder_only {
            staging.keep(ENCODER_FILE)?;
            staging.keep(TRAINING_DIR)?;
        }
        write_json_atomic(&staging.path().join(PRIOR_FILE), &prior)?;
        let meta = self.meta(
            Some(PriorInfo {
                scale: prior.scale,
                n_images: prior.n_images,
            }),
            !c.decoder_only,
        );
        write_json_atomic(&staging.path().join(META_FILE), &meta)?;
        staging.commit()?;
        let es = &self.progress.early;
        let best_val_elbo = es
            .best_val_elbo
            .ok_or_else(|| anyhow!("no epoch was completed"))?;
        let time_s = self.progress.elapsed_before + start.elapsed().as_secs_f64();
        run.finish(json!({
            "best_val_elbo": best_val_elbo,
            "best_epoch": es.best_epoch,
            "epochs": self.progress.epochs_completed,
            "stopped_early": es.stopped(),
            "test_elbo": test.as_ref().map(|t| t.elbo),
            "test_chi2_per_pixel": test.as_ref().map(|t| t.chi2_per_pixel),
            "time_s": time_s,
            "checkpoint": c.out.display().to_string(),
            "prior_scale": prior.scale,
        }))?;
        Ok(TrainOutcome {
            run_id: self.run_id.clone(),
            run_dir: run.dir().to_path_buf(),
            checkpoint: c.out.clone(),
            best_epoch: es.best_epoch,
            best_val_elbo,
            epochs_completed: self.progress.epochs_completed,
            stopped_early: es.stopped(),
            test,
        })
    }
}

fn c_div(a: usize, b: usize) -> usize {
    a.div_ceil(b.max(1))
}

fn eta_seconds(start: Instant, done_here: f64, left: f64) -> Option<f64> {
    let t = start.elapsed().as_secs_f64();
    (done_here > 0.0 && t > 0.0).then(|| t / done_here * left.max(0.0))
}
