//! `infer fit`: the GIGA-Lens pipeline (Sec. 2.3-2.5, Table 1) on one observation,
//! multistart MAP -> full-rank VI -> preconditioned HMC -> diagnostics, with a run record.
//!
//! Each stage writes its result into the run's `artifacts/` as soon as it ends (`map.json`,
//! `vi.json`, `samples.h5`, plus `posterior.nc`, the HMC draws for ArviZ); `--resume <run dir>`
//! reloads finished stages and continues with the first unfinished one, after checking that every
//! input file (observation, noise map, mask, model file, checkpoint, truths: [`super::inputs`]) has
//! the contents recorded when the run started.
//! Stages can be skipped (`--stages map,vi`): a later stage then starts from
//! the best available earlier result (HMC without VI is preconditioned by, and starts from draws
//! of, the Laplace approximation at the MAP point; a small diagonal around it if that fails).

mod artifacts;
mod checks;
mod config;
mod estimate;
mod finish;
mod hmc;
mod map;
mod progress;
mod vi;

pub use config::{CHI2_SIGMAS, FitConfig, Stages, chi2_tolerance};

use anyhow::{Result, bail};
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::inference_data::{Provenance, write_posterior_nc};
use super::inputs::fit_inputs;
use super::mock::read_truths;
use super::problem::Problem;
use super::samples::{read_samples, write_samples};
use super::summary::{ParamSummary, physical_draws, summarize, summarize_map};
use crate::inference::diagnostics::diagnose_rows;
use crate::inference::hmc::{HmcDraws, MassMatrix, sample_hmc_judged};
use crate::inference::{
    MapOptions, MapResult, fit_vi, lbfgs_ascent, lbfgs_ascent_preconditioned, multistart_map,
    newton_polish,
};
use crate::model::likelihood::ModelLikelihood;
use crate::model::observation::Observation;
use crate::prob::{MvNormal, ParamLayout, Posterior};
use arclight_core::record::{Run, RunInfo, RunKind, RunSpec};
use artifacts::{MapArtifact, ViArtifact, latent_coordinates, read_json};
use checks::{
    Truths, check_hdus, check_resumable, check_stage_results, check_truths, truth_near,
    unused_checkpoint,
};
use config::{HMC_START_STREAM, PRIOR_MEAN_STREAM, VI_DRAWS_STREAM};
use estimate::Summaries;
use hmc::HmcOutcome;
use progress::StageProgress;

/// Where the run record goes.
#[derive(Clone, Debug)]
pub enum RunTarget {
    /// A new run `<root>/fit-<time>-<name>`.
    New { root: PathBuf, name: String },
    /// A new run in exactly this directory.
    At(PathBuf),
    /// Continue the run in this directory.
    Resume(PathBuf),
}

/// What the parameter summaries of a fit describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Estimate {
    /// HMC draws.
    Hmc,
    /// Draws of the VI posterior q (no HMC).
    Vi,
    /// The MAP point with Laplace widths (neither VI nor HMC): see [`summarize_map`].
    Map,
}

impl Estimate {
    pub fn as_str(self) -> &'static str {
        match self {
            Estimate::Hmc => "hmc",
            Estimate::Vi => "vi",
            Estimate::Map => "map",
        }
    }
}

/// The outcome of a fit.
pub struct FitOutcome {
    pub run_dir: PathBuf,
    /// What `params` summarises (none when no stage left a result).
    pub estimate: Option<Estimate>,
    pub params: Vec<ParamSummary>,
    pub chi2_dof: Option<f64>,
    pub rhat_max: Option<f64>,
    pub ess_min: Option<f64>,
    /// The HMC sampling rounds of this invocation (empty when HMC did not run now).
    pub hmc_rounds: Vec<crate::inference::hmc::RoundRecord>,
    pub plots: Vec<PathBuf>,
    pub timings: BTreeMap<String, f64>,
}

/// Run the pipeline. `device` is the inner device; gradients use its autodiff twin.
pub fn run_fit(cfg: &FitConfig, target: RunTarget, device: &Device) -> Result<FitOutcome> {
    // Load and check everything before creating a run, so bad input leaves nothing behind.
    let spec = crate::model::spec::ModelSpec::load(&cfg.model)?;
    let mut cfg = cfg.clone();
    if let RunTarget::Resume(dir) = &target
        && let Ok(info) = RunInfo::read(dir)
        && cfg.keep_recorded_metric(&info.config)
        && spec.vae_source().is_some()
    {
        eprintln!(
            "fit: resuming with the draws' HMC metric the run was started with (a VAE source's default is \
             now the gradients'; --hmc-metric chooses)"
        );
    }
    cfg.choose_for_model(&spec);
    let cfg = &cfg;
    let obs = Observation::load_hdus(
        &cfg.obs,
        cfg.noise_map.as_deref(),
        cfg.mask.as_deref(),
        crate::model::observation::Hdus {
            obs: cfg.obs_hdu,
            noise_map: cfg.noise_hdu,
            mask: cfg.mask_hdu,
        },
        &spec,
    )?;
    let problem = Problem::from_spec(spec, cfg.checkpoint.as_deref(), device)?;
    let truths_path = cfg.truths.clone().or_else(|| {
        let p = cfg
            .obs
            .parent()
            .unwrap_or(Path::new("."))
            .join("truths.json");
        p.exists().then_some(p)
    });
    let mut truths = match &truths_path {
        Some(p) => Some(read_truths(p)?),
        None => None,
    };
    let (layout, slots) = problem.layout()?;
    let mut warnings = obs.warnings.clone();
    warnings.extend(problem.warnings.iter().cloned());
    if let Some(w) = unused_checkpoint(cfg.checkpoint.as_deref(), &problem) {
        eprintln!("warning: {w}");
        warnings.push(w);
    }
    if let (Some(t), Some(p)) = (truths.as_mut(), &truths_path) {
        for w in check_truths(t, p, &layout, &problem) {
            eprintln!("warning: {w}");
            warnings.push(w);
        }
    }
    let forward = problem.forward(slots, &device.clone().autodiff())?;
    let likelihood = ModelLikelihood::new(forward, &obs, cfg.fused)?;
    eprintln!(
        "fit: {} free parameters, gradients by {}",
        layout.dim(),
        likelihood.backend()
    );
    if let Some(why) = &likelihood.fallback {
        let w = format!("burn autodiff evaluates the likelihood (slower): {why}");
        eprintln!("warning: {w}");
        warnings.push(w);
    }
    let posterior = Posterior::new(layout.clone(), likelihood)?;
    let coarse = if cfg.map_coarse && cfg.stages.map {
        coarse_posterior(&problem, &obs, &layout, device, cfg.fused)?
    } else {
        None
    };
    let names = layout.column_names();

    let inputs = fit_inputs(
        &cfg.obs,
        cfg.noise_map.as_deref(),
        cfg.mask.as_deref(),
        &problem,
        truths_path.as_deref(),
    )?;
    let hdus_read =
        json!({"obs": obs.hdus.obs, "noise_map": obs.hdus.noise_map, "mask": obs.hdus.mask});
    if let RunTarget::Resume(dir) = &target {
        check_resumable(dir, &inputs)?;
        check_hdus(dir, &hdus_read)?;
        check_stage_results(dir, &layout)?;
        let art = dir.join("artifacts");
        if cfg.stages.map
            && cfg.stages.vi
            && !art.join("map.json").exists()
            && art.join("vi.json").exists()
        {
            let w = format!(
                "{}: the run's VI result was made without a MAP start (the run began without the map \
                 stage) and is kept: the MAP now run does not start it; delete it to run VI from the MAP",
                art.join("vi.json").display()
            );
            eprintln!("warning: {w}");
            warnings.push(w);
        }
    }
    if cfg.stages.hmc && !cfg.stages.map && !cfg.stages.vi {
        let art = match &target {
            RunTarget::Resume(dir) => Some(dir.join("artifacts")),
            _ => None,
        };
        let has_start =
            art.is_some_and(|a| a.join("map.json").exists() || a.join("vi.json").exists());
        if !has_start {
            bail!(
                "--stages hmc: HMC starts from a MAP or VI result and there is none: add the map or vi \
                 stage (--stages map,hmc), or --resume a run that has one"
            );
        }
    }

    let config_json = serde_json::to_value(cfg)?;
    // read back through FitConfig so settings added since the run was recorded get their defaults
    let recorded_config = match &target {
        RunTarget::Resume(dir) => {
            let c = RunInfo::load(dir)?.config;
            Some(
                serde_json::from_value::<FitConfig>(c.clone())
                    .ok()
                    .and_then(|c| serde_json::to_value(c).ok())
                    .unwrap_or(c),
            )
        }
        _ => None,
    };
    let mut run = match &target {
        RunTarget::New { root, name } => Run::create(
            root,
            RunSpec {
                kind: RunKind::Fit,
                name,
                config: config_json,
                device: cfg.device.clone(),
                seed: Some(cfg.seed),
            },
        )?,
        RunTarget::At(dir) => Run::create_at(
            dir,
            RunSpec {
                kind: RunKind::Fit,
                name: &problem.spec.name,
                config: config_json,
                device: cfg.device.clone(),
                seed: Some(cfg.seed),
            },
        )?,
        RunTarget::Resume(dir) => Run::resume(dir)?,
    };
    if run.info().inputs.is_empty() {
        // a new run, or one recorded before input hashes were kept
        run.set_inputs(inputs)?;
    }
    // the HDUs the files were read from: part of what a resume must read again
    run.update_config("hdus", hdus_read)?;
    let threads = rayon::current_num_threads();
    if let Some(before) = run.info().threads.filter(|&b| b != threads) {
        let w = format!(
            "resumed with {threads} worker threads where the run started with {before}: later stages \
             can differ in the last digits from an uninterrupted run"
        );
        eprintln!("warning: {w}");
        warnings.push(w);
    }
    run.set_threads(threads)?;
    if let Some(recorded) = &recorded_config {
        // the record keeps the first invocation's settings; a resume with other flags says so
        let mut changed =
            super::json_diff::json_diff(recorded, &serde_json::to_value(cfg)?, usize::MAX);
        // the stages may differ by design; input files are compared by content (check_resumable)
        let skip = [
            "stages",
            "obs",
            "model",
            "checkpoint",
            "noise_map",
            "mask",
            "truths",
        ];
        changed.retain(|c| {
            !skip
                .iter()
                .any(|k| c.starts_with(&format!("{k}:")) || c.starts_with(&format!("{k}.")))
        });
        if !changed.is_empty() {
            let w = format!(
                "resumed with settings that differ from the run's recorded config (this invocation's \
                 are in metrics.jsonl, kind resume_config): {}",
                changed.join(", ")
            );
            eprintln!("warning: {w}");
            warnings.push(w);
        }
        let invocation = run.info().resumed;
        run.log(
            "resume_config",
            json!({"invocation": invocation, "changed": changed, "config": serde_json::to_value(cfg)?}),
        )?;
    }
    for w in &warnings {
        run.warn(w)?;
    }
    let result = stages(
        cfg,
        &mut run,
        &problem,
        &obs,
        &posterior,
        coarse.as_ref(),
        &names,
        truths.as_ref(),
    );
    match result {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            let _ = run.fail(&format!("{e:#}"));
            Err(e)
        }
    }
}

/// The posterior with the same layout on the model without supersampling (see
/// [`FitConfig::map_coarse`]); `None` when the model is not supersampled.
fn coarse_posterior(
    problem: &Problem,
    obs: &Observation,
    layout: &ParamLayout,
    device: &Device,
    fused: bool,
) -> Result<Option<Posterior<ModelLikelihood>>> {
    if problem.spec.grid.supersample <= 1 {
        return Ok(None);
    }
    let mut spec = problem.spec.clone();
    spec.grid.supersample = 1;
    let (_, slots) = crate::model::layout::build(&spec, problem.vae.as_ref().map(|v| v.1.clone()))?;
    let forward = crate::model::forward::ForwardModel::new(
        spec,
        slots,
        &device.clone().autodiff(),
        problem.vae.as_ref().map(|v| v.0.clone()),
        &problem.images,
    )?;
    let lik = ModelLikelihood::new(forward, obs, fused)?;
    Ok(Some(Posterior::new(layout.clone(), lik)?))
}

/// Refuse to resume `dir` unless it is a fit whose recorded input files have the same contents as
/// this invocation's (`inputs`): the run is left untouched and the error lists every difference.
/// Everything the stages share.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    cfg: &'a FitConfig,
    problem: &'a Problem,
    obs: &'a Observation,
    post: &'a Posterior<ModelLikelihood>,
    /// The same posterior without supersampling, for the multistart's first iterations.
    coarse: Option<&'a Posterior<ModelLikelihood>>,
    names: &'a [String],
    truths: Option<&'a Truths>,
    layout: &'a ParamLayout,
    /// The tensor path's likelihood (chi^2 and figures).
    lik: &'a crate::model::likelihood::LensLikelihood,
    /// The run's `artifacts/`.
    art: &'a Path,
    dim: usize,
    /// Unmasked pixels less free parameters.
    dof: usize,
    n_pix: usize,
}

/// The GIGA-Lens pipeline on a prepared posterior: each stage reloads its result when an earlier
/// invocation wrote it, else runs (if enabled) and saves it.
#[allow(clippy::too_many_arguments)]
fn stages(
    cfg: &FitConfig,
    run: &mut Run,
    problem: &Problem,
    obs: &Observation,
    post: &Posterior<ModelLikelihood>,
    coarse: Option<&Posterior<ModelLikelihood>>,
    names: &[String],
    truths: Option<&Truths>,
) -> Result<FitOutcome> {
    let layout = post.layout();
    let art = run.artifacts();
    let n_pix = obs.n_used();
    let cx = Ctx {
        cfg,
        problem,
        obs,
        post,
        coarse,
        names,
        truths,
        layout,
        lik: &post.likelihood().tensor,
        art: &art,
        dim: layout.dim(),
        dof: n_pix.saturating_sub(layout.dim()).max(1),
        n_pix,
    };
    let mut timings = BTreeMap::new();
    let (map, map_estimate) = map::stage(&cx, run)?;
    if let Some(m) = &map {
        timings.insert("map_s".into(), m.time_s);
    }
    let vi = vi::stage(&cx, run, map.as_ref())?;
    if let Some(v) = &vi {
        timings.insert("vi_s".into(), v.time_s);
    }
    let hmc = hmc::stage(&cx, run, map.as_ref(), vi.as_ref())?;
    if let Some(t) = hmc.time_s {
        timings.insert("hmc_s".into(), t);
    }
    let s = estimate::summaries(&cx, run, &hmc, vi.as_ref(), map.as_ref(), map_estimate)?;
    finish::finish(&cx, run, map.as_ref(), vi.as_ref(), hmc, s, timings)
}

fn finite(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

fn to_physical(layout: &ParamLayout, u: &[f64]) -> Vec<f64> {
    let mut x = vec![0.0; u.len()];
    layout.to_physical(u, &mut x);
    x
}
