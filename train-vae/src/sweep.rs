//! `train-vae sweep`: a latent-dimension (and optionally width) ablation as one command. One checkpoint
//! per setting under `--out`, trained one after the other as `train-vae train` would, each then
//! evaluated on the test split (`train-vae eval`); every run record is tagged with the sweep
//! ([`SweepTag`]) so `arclight` shows the settings side by side.
//!
//! Resumable: `--out/sweep.json` holds the plan (settings, shared training options, the data set's
//! provenance) and its id. Running the same command again skips finished settings (checkpoint with
//! a fitted prior, evaluation written), resumes an interrupted training from its last complete
//! epoch, and redoes an interrupted evaluation. A different plan in the same folder is refused.
//!
//! Writes `--out/summary.json` (one row per setting: training outcome and test-split figures) when
//! every setting is done.

use crate::eval::{EvalArgs, EvalReport};
use crate::train::cli::{DEFAULT_SAMPLES, TrainArgs, train_with};
use crate::train::config::{PAPER_BATCH, SweepTag};
use crate::train::state::ResumeState;
use anyhow::{Context, Result, bail, ensure};
use arclight_vae::checkpoint;
use arclight_vae::dataset::{read_provenance, split_sizes};
use arclight_vae::model::VaeConfig;
use arclight_vae::model::config::PAPER_WIDTHS;
use arclight_vae::prior::PAPER_PRIOR_SCALE;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Version of `sweep.json` and `summary.json`.
pub const FORMAT: u32 = 1;

/// Options of `train-vae sweep`: the settings to sweep plus every `train-vae train` option, shared by
/// all settings (`--out` is the sweep folder).
#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    /// Latent dimensions to train, comma-separated (e.g. 16,32,64,128).
    #[arg(long, required = true)]
    pub latent_dims: String,
    /// Encoder widths to sweep as well, settings separated by ';' (e.g. "32,64,128,256;64,128,256,512");
    /// every latent dimension is trained with each. Default: `--widths` (or Table D1's) only.
    #[arg(long)]
    pub widths_list: Option<String>,
    /// Reparametrised samples per image of the test-split evaluation.
    #[arg(long, default_value_t = 1)]
    pub eval_samples: usize,
    #[command(flatten)]
    pub train: TrainArgs,
}

/// One point of the sweep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// Folder name under the sweep folder, e.g. `ld16` or `ld16-w32.64.128.256`.
    pub name: String,
    pub latent_dim: usize,
    pub widths: [usize; 4],
}

/// `sweep.json`: what the sweep trains; `id` is the first 16 hex digits of the SHA-256 of the rest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    pub format: u32,
    pub id: String,
    pub settings: Vec<Setting>,
    /// The training options shared by every setting.
    pub train: Value,
    /// Provenance recorded in the data set (what `--resume` of a training run also checks).
    pub data_provenance: Value,
}

/// One row of `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SettingResult {
    pub setting: Setting,
    pub checkpoint: PathBuf,
    pub train_run: String,
    pub best_epoch: usize,
    pub best_val_elbo: f64,
    pub epochs_completed: usize,
    /// The test-split evaluation (`train-vae eval`'s `metrics.json`).
    pub test: Value,
}

/// Run `train-vae sweep`.
pub fn run(args: SweepArgs) -> Result<()> {
    let dir = args.train.out.clone();
    let plan = plan(&args)?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the sweep folder {}", dir.display()))?;
    let plan_path = dir.join("sweep.json");
    if plan_path.is_file() {
        let text = std::fs::read_to_string(&plan_path)
            .with_context(|| format!("cannot read {}", plan_path.display()))?;
        let old: SweepPlan = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a sweep plan", plan_path.display()))?;
        if old.id != plan.id {
            bail!(
                "{}: this folder holds another sweep ({}); differences: {}; continue it with its own \
                 options, or choose another --out",
                plan_path.display(),
                old.id,
                plan_differences(&old, &plan).join("; ")
            );
        }
        eprintln!("sweep {}: continuing in {}", plan.id, dir.display());
    } else {
        arclight_core::write_json_atomic(&plan_path, &plan)?;
        eprintln!(
            "sweep {}: {} settings in {}",
            plan.id,
            plan.settings.len(),
            dir.display()
        );
    }
    let abs_dir = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
    let mut rows = Vec::new();
    // a setting that fails (diverges, or a damaged folder) does not stop the others
    let mut failed: Vec<(String, String)> = Vec::new();
    for (k, s) in plan.settings.iter().enumerate() {
        let tag = SweepTag {
            id: plan.id.clone(),
            setting: s.name.clone(),
            dir: abs_dir.clone(),
        };
        eprintln!(
            "sweep {}: setting {} of {}: {} (latent_dim {}, widths {:?})",
            plan.id,
            k + 1,
            plan.settings.len(),
            s.name,
            s.latent_dim,
            s.widths
        );
        match run_setting(&args, s, &dir.join(&s.name), tag) {
            Ok(r) => rows.push(r),
            Err(e) => {
                eprintln!(
                    "sweep {}: setting {} failed: {e:#}; going on with the next",
                    plan.id, s.name
                );
                failed.push((s.name.clone(), format!("{e:#}")));
            }
        }
    }
    let failed_json: Vec<Value> = failed
        .iter()
        .map(|(name, error)| json!({"setting": name, "error": error}))
        .collect();
    arclight_core::write_json_atomic(
        &dir.join("summary.json"),
        &json!({"format": FORMAT, "sweep": plan.id, "settings": rows, "failed": failed_json}),
    )?;
    print_table(&rows);
    println!("summary: {}", dir.join("summary.json").display());
    if let Some((name, error)) = failed.first() {
        bail!(
            "{} of {} settings failed (first: {name}: {}); the others are in {}; the same command retries the failed ones after their cause is fixed",
            failed.len(),
            plan.settings.len(),
            error.lines().next().unwrap_or(""),
            dir.join("summary.json").display()
        );
    }
    Ok(())
}

/// The settings and identity of the sweep `args` describes.
pub fn plan(args: &SweepArgs) -> Result<SweepPlan> {
    let t = &args.train;
    if t.latent_dim.is_some() {
        bail!("--latent-dim: a sweep takes its latent dimensions from --latent-dims");
    }
    if t.resume {
        bail!("--resume: a sweep always continues what is in --out; run the same command again");
    }
    if t.init_from.is_some() {
        bail!("--init-from: not available in a sweep (every setting has its own architecture)");
    }
    if args.widths_list.is_some() && t.widths.is_some() {
        bail!("--widths and --widths-list: give one of them");
    }
    if t.decoder_only {
        bail!(
            "--decoder-only: not available in a sweep (every setting is evaluated on the test split, \
             which needs the encoder); sweep without it, then train the chosen setting with \
             `train-vae train --decoder-only`"
        );
    }
    let Some(data) = &t.data else {
        bail!("--data <h5> is required")
    };
    ensure!(args.eval_samples >= 1, "--eval-samples must be at least 1");
    // Checked here, not after the first setting has trained: training needs 2 train images and a
    // validation image, each setting's evaluation a test image.
    let [n_train, n_val, n_test] = split_sizes(data)?;
    ensure!(
        n_train >= 2 && n_val >= 1 && n_test >= 1,
        "--data {}: the splits hold train {n_train}, validation {n_val}, test {n_test} images; a sweep \
         needs at least 2 train, 1 validation and 1 test image (every setting is evaluated on the \
         test split); prepare the data set again with a --split that leaves every split non-empty",
        data.display()
    );
    let dims = parse_list(&args.latent_dims, "--latent-dims")?;
    let widths: Vec<[usize; 4]> = match (&args.widths_list, &t.widths) {
        (Some(l), _) => l
            .split(';')
            .map(|w| VaeConfig::parse_widths(w.trim()))
            .collect::<Result<_>>()
            .context("--widths-list")?,
        (None, Some(w)) => vec![VaeConfig::parse_widths(w)?],
        (None, None) => vec![PAPER_WIDTHS],
    };
    let name_widths = widths.len() > 1;
    let mut settings = Vec::new();
    for &d in &dims {
        for w in &widths {
            let name = if name_widths {
                format!(
                    "ld{d}-w{}",
                    w.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(".")
                )
            } else {
                format!("ld{d}")
            };
            ensure!(
                !settings.iter().any(|s: &Setting| s.name == name),
                "setting {name} appears twice"
            );
            settings.push(Setting {
                name,
                latent_dim: d,
                widths: *w,
            });
        }
    }
    let shared = json!({
        "epochs": t.epochs, "head_width": t.head_width, "sigma_d": t.sigma_d, "lr": t.lr,
        "batch_size": t.batch_size.unwrap_or(PAPER_BATCH),
        "samples": t.samples.unwrap_or(DEFAULT_SAMPLES), "patience": t.patience,
        "seed": t.seed.unwrap_or(0),
        "prior_scale": t.prior_scale.unwrap_or(PAPER_PRIOR_SCALE), "decoder_only": t.decoder_only, "eval_samples": args.eval_samples,
    });
    let data_provenance = read_provenance(data)?;
    let body = json!({"settings": settings, "train": shared, "data_provenance": data_provenance});
    let id =
        arclight_core::hash::sha256_hex(serde_json::to_string(&body)?.as_bytes())[..16].to_string();
    Ok(SweepPlan {
        format: FORMAT,
        id,
        settings,
        train: shared,
        data_provenance,
    })
}

/// Train (or resume, or skip) and evaluate one setting in `ck`.
fn run_setting(args: &SweepArgs, s: &Setting, ck: &Path, tag: SweepTag) -> Result<SettingResult> {
    // A kill during a checkpoint swap leaves the setting's folder aside; put it back first so it
    // is seen as trained or resumable.
    checkpoint::recover_interrupted_swap(ck)?;
    let finished = checkpoint::read_meta(ck)
        .map(|m| m.prior.is_some())
        .unwrap_or(false);
    if finished {
        eprintln!("sweep: {} is trained; not training again", s.name);
    } else {
        let training = ck.join(checkpoint::TRAINING_DIR);
        // A training state that exists but cannot be read is reported, not replaced by a fresh run.
        let resume = training.is_dir();
        if resume {
            ResumeState::load(ck).with_context(|| {
                format!(
                    "sweep setting {}: the training state in {} cannot be loaded; restore it, or \
                     remove {} to train this setting from scratch",
                    s.name,
                    training.display(),
                    ck.display()
                )
            })?;
        }
        let mut t = args.train.clone();
        t.out = ck.to_path_buf();
        t.latent_dim = (!resume).then_some(s.latent_dim);
        t.widths = (!resume).then(|| s.widths.map(|w| w.to_string()).join(","));
        t.resume = resume;
        if resume {
            eprintln!("sweep: resuming the interrupted training of {}", s.name);
            // the stored run knows its data set, architecture and options
            t.data = None;
            t.head_width = None;
            t.sigma_d = None;
        }
        train_with(t, Some(tag.clone())).with_context(|| format!("sweep setting {}", s.name))?;
    }
    let meta = checkpoint::read_meta(ck)?;
    ensure!(
        meta.prior.is_some(),
        "{}: training ended without a latent prior",
        ck.display()
    );
    let eval_dir = ck.join("eval");
    let metrics = eval_dir.join("metrics.json");
    if !metrics.is_file() {
        let data = args.train.data.clone().expect("checked in plan()");
        let e = EvalArgs {
            checkpoint: ck.to_path_buf(),
            data,
            out: eval_dir.clone(),
            split: "test".into(),
            samples: args.eval_samples,
            show: 8,
            rotate_index: 0,
            angles: "0,60,120,180,240,300".into(),
            seed: 0,
            device: args.train.device,
            experiments: args.train.experiments.clone(),
        };
        let _: (EvalReport, PathBuf) = crate::eval::run_with(&e, Some(&tag))
            .with_context(|| format!("sweep setting {}: test-split evaluation", s.name))?;
    } else {
        eprintln!("sweep: {} is evaluated; not evaluating again", s.name);
    }
    let test: Value = serde_json::from_str(
        &std::fs::read_to_string(&metrics)
            .with_context(|| format!("cannot read {}", metrics.display()))?,
    )
    .with_context(|| format!("{}: not JSON", metrics.display()))?;
    Ok(SettingResult {
        setting: s.clone(),
        checkpoint: std::path::absolute(ck).unwrap_or_else(|_| ck.to_path_buf()),
        train_run: meta.training.run_id.clone(),
        best_epoch: meta.training.best_epoch,
        best_val_elbo: meta.training.best_val_elbo,
        epochs_completed: meta.training.epochs_completed,
        test,
    })
}

fn parse_list(s: &str, flag: &str) -> Result<Vec<usize>> {
    let v: Vec<usize> = s
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .ok()
                .filter(|d| *d > 0)
                .with_context(|| format!("{flag} {s}: '{p}' is not a positive integer"))
        })
        .collect::<Result<_>>()?;
    ensure!(!v.is_empty(), "{flag}: give at least one value");
    Ok(v)
}

/// What differs between two plans, as `key: old vs new` lines.
fn plan_differences(old: &SweepPlan, new: &SweepPlan) -> Vec<String> {
    let mut out = Vec::new();
    let names = |p: &SweepPlan| {
        p.settings
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
            .join(",")
    };
    if old.settings != new.settings {
        out.push(format!("settings: {} vs {}", names(old), names(new)));
    }
    if let (Value::Object(a), Value::Object(b)) = (&old.train, &new.train) {
        for (k, v) in b {
            let was = a.get(k).cloned().unwrap_or(Value::Null);
            if &was != v {
                out.push(format!("{k}: {was} vs {v}"));
            }
        }
    }
    if old.data_provenance != new.data_provenance {
        out.push("the data set (its provenance differs)".into());
    }
    if out.is_empty() {
        out.push("format".into());
    }
    out
}

fn print_table(rows: &[SettingResult]) {
    println!(
        "{:<24} {:>6} {:>12} {:>12} {:>10} {:>9} {:>8} {:>12}",
        "setting", "D", "val ELBO", "test ELBO", "chi2/pix", "KL", "active", "prior logV"
    );
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    for r in rows {
        println!(
            "{:<24} {:>6} {:>12.2} {:>12.2} {:>10.3} {:>9.2} {:>8} {:>12.2}",
            r.setting.name,
            r.setting.latent_dim,
            r.best_val_elbo,
            f(&r.test, "elbo"),
            f(&r.test, "chi2_per_pixel"),
            f(&r.test, "kl"),
            format!(
                "{}/{}",
                r.test
                    .get("active_dims")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                r.setting.latent_dim
            ),
            f(&r.test, "prior_log_volume"),
        );
    }
}
