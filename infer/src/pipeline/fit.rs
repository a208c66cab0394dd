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

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::inference_data::{Provenance, write_posterior_nc};
use super::inputs::{fit_inputs, input_differences};
use super::mock::read_truths;
use super::problem::Problem;
use super::summary::{ParamSummary, physical_draws, summarize, summarize_map, write_samples};
use crate::inference::diagnostics::diagnose_rows;
use crate::inference::hmc::{HmcDraws, HmcOptions, MassMatrix, RetryOptions, sample_hmc_judged};
use crate::inference::{
    LbfgsOptions, MapOptions, MapResult, NewtonOptions, ViOptions, fit_vi, lbfgs_ascent,
    lbfgs_ascent_preconditioned, multistart_map, newton_polish,
};
use crate::model::likelihood::ModelLikelihood;
use crate::model::observation::Observation;
use crate::prob::{MvNormal, ParamLayout, Posterior};
use arclight_core::record::{InputFile, Run, RunInfo, RunKind, RunSpec};

/// Which stages to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stages {
    pub map: bool,
    pub vi: bool,
    pub hmc: bool,
}

impl Stages {
    pub const ALL: Stages = Stages {
        map: true,
        vi: true,
        hmc: true,
    };

    /// Parse `map,vi,hmc` (any subset, any order).
    pub fn parse(s: &str) -> Result<Stages> {
        let mut st = Stages {
            map: false,
            vi: false,
            hmc: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "map" => st.map = true,
                "vi" => st.vi = true,
                "hmc" => st.hmc = true,
                other => bail!("--stages: unknown stage {other:?} (choose from map, vi, hmc)"),
            }
        }
        if !(st.map || st.vi || st.hmc) {
            bail!("--stages: name at least one of map, vi, hmc");
        }
        Ok(st)
    }
}

/// Random streams of a fit, each the fit's seed XOR a constant, so the stages draw independently
/// and a run is reproducible from its recorded seed: HMC's starting draws from q ("HMC" in ASCII).
const HMC_START_STREAM: u64 = 0x48_4d43;
/// The draws of q that summarise a fit ending with VI ("VI").
const VI_DRAWS_STREAM: u64 = 0x5649;
/// The prior draws of VI's start without MAP: a fixed seed, the same start for every fit.
const PRIOR_MEAN_STREAM: u64 = 0;

/// A MAP chi^2/dof passes within this many standard deviations (sqrt(2 / dof)) of 1.
pub const CHI2_SIGMAS: f64 = 5.0;

/// Half-width of the accepted band of MAP chi^2/dof around 1 (+-0.089 on the 80x80 GIGA-Lens grid).
pub fn chi2_tolerance(dof: usize) -> f64 {
    CHI2_SIGMAS * (2.0 / dof.max(1) as f64).sqrt()
}

/// Everything `infer fit` needs; serialised into the run record as its config.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitConfig {
    pub obs: PathBuf,
    pub model: PathBuf,
    pub checkpoint: Option<PathBuf>,
    pub noise_map: Option<PathBuf>,
    pub mask: Option<PathBuf>,
    /// Truths (`truths.json` of `infer mock`); default: the one beside the observation, if any.
    pub truths: Option<PathBuf>,
    pub seed: u64,
    pub stages: Stages,
    /// Number of MAP starts n_MAP (GIGA-Lens: 300).
    pub map_starts: usize,
    /// While the best MAP's chi^2/dof exceeds 1 by more than [`chi2_tolerance`] (a wrong mode, or a
    /// wrong model), run the multistart again with this many more batches of fresh starts at most, keeping
    /// the best (0: never). A chi^2/dof below the band is not retried: no other mode can raise it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub map_retries: usize,
    pub map: MapOptions,
    /// Run the first 2/3 of the multistart's iterations on the model without supersampling (one ray per
    /// pixel, PSF on the pixels: ~4x cheaper), the rest and the polish on the full model (false: on a
    /// bright system the coarse model's modes lay in another basin of the full model). No effect when the
    /// model has `supersample = 1`.
    #[serde(default = "yes")]
    pub map_coarse: bool,
    pub vi: ViOptions,
    /// Newton-polish the best this-many MAP starts (0 = Table 1's Adam result as is).
    #[serde(default = "default_polish")]
    pub polish_starts: usize,
    /// The Newton stage of the polish (absent in older runs' configs: 30 steps, as they ran).
    #[serde(default)]
    pub newton: NewtonOptions,
    /// The L-BFGS stage of the polish.
    #[serde(default)]
    pub lbfgs: LbfgsOptions,
    /// Number of HMC chains n_HMC (GIGA-Lens: 50).
    pub hmc_chains: usize,
    pub hmc: HmcOptions,
    pub device: String,
    /// Use the fused kernel when the model has the GIGA-Lens shape (same numbers, faster).
    #[serde(default = "yes")]
    pub fused: bool,
}

fn yes() -> bool {
    true
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn one() -> usize {
    1
}

fn default_polish() -> usize {
    5
}

/// The polish's Newton stage: one Hessian, no step. It preconditions the L-BFGS that follows, which reaches
/// the same mode sooner than Newton steps would: each costs 4P gradients, and through an f32 decoder its
/// finite-difference Hessian is too noisy to step on (docs/performance.md, session 11).
fn polish_newton() -> NewtonOptions {
    NewtonOptions {
        max_iter: 0,
        ..NewtonOptions::default()
    }
}

impl FitConfig {
    /// The default pipeline for `obs` and `model`: GIGA-Lens's stages (multistart MAP, full-rank VI,
    /// preconditioned HMC) with budgets chosen from measured effective samples per gradient evaluation on
    /// a CPU (docs/performance.md): 100 annealed MAP starts (likelihood weight 1e-3 -> 1 over the first
    /// 100 of 300 steps) halved twice (100, 50, 25 starts over three segments), up to two more batches
    /// of 100 while the best chi^2/dof is off,
    /// Laplace-started VI of 150 x 50 draws, 8 chains x (150 + 600) with the trajectory length adapted
    /// by ChEES and warm-up mass adaptation, target acceptance 0.9, and up to two more rounds of
    /// (100 + 600) while the draws miss
    /// R-hat < 1.01 (VAE latent: 1.05), ESS >= 400 or <= 1% divergences. [`FitConfig::table1`] is GIGA-Lens Table 1.
    pub fn new(obs: PathBuf, model: PathBuf) -> Self {
        let mut hmc = HmcOptions {
            n_burn: 150,
            n_samples: 600,
            adapt_trajectory: true,
            retry: RetryOptions::default(),
            ..HmcOptions::default()
        };
        hmc.dual_averaging.target_accept = 0.9;
        let table1 = Self::table1(obs, model);
        FitConfig {
            map_starts: 100,
            map_retries: 2,
            map: MapOptions {
                halving_rounds: 2,
                temper_from: Some(1e-3),
                ..table1.map.clone()
            },
            vi: ViOptions {
                n_samples: 50,
                ..ViOptions::default().with_steps(150)
            },
            hmc_chains: 8,
            hmc,
            map_coarse: false,
            ..table1
        }
    }

    /// GIGA-Lens Table 1 stage budgets (300 x 300 MAP on the full model, 50 chains x (250 + 750)), with this
    /// project's Laplace-started VI and L = 10 unless `--preset table1` also sets those.
    pub fn table1(obs: PathBuf, model: PathBuf) -> Self {
        FitConfig {
            obs,
            model,
            checkpoint: None,
            noise_map: None,
            mask: None,
            truths: None,
            seed: 0,
            stages: Stages::ALL,
            map_starts: 300,
            map_retries: 0,
            map: MapOptions::default(),
            map_coarse: false,
            vi: ViOptions::default(),
            polish_starts: default_polish(),
            newton: polish_newton(),
            lbfgs: LbfgsOptions::default(),
            hmc_chains: 50,
            hmc: HmcOptions::default(),
            device: "flex".into(),
            fused: true,
        }
    }
}

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

#[derive(Serialize, Deserialize)]
struct MapArtifact {
    best_u: Vec<f64>,
    best_logp: f64,
    chi2: f64,
    dof: usize,
    n_reverted: usize,
    n_dead_starts: usize,
    time_s: f64,
    /// Batches of starts that ran (1 + retries; see [`FitConfig::map_retries`]).
    #[serde(default = "one")]
    attempts: usize,
    /// The MAP point in physical units, by parameter name.
    #[serde(default)]
    params: BTreeMap<String, f64>,
    /// Laplace standard deviations in physical units where the Hessian determines them, else null
    /// (see [`summarize_map`]).
    #[serde(default)]
    laplace_std: BTreeMap<String, Option<f64>>,
    /// The ridge the Laplace approximation needed (null: it failed).
    #[serde(default)]
    laplace_ridge: Option<f64>,
    /// See [`latent_coordinates`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    latent_coordinates: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ViArtifact {
    mean: Vec<f64>,
    chol: Vec<f64>,
    elbo_final: f64,
    time_s: f64,
    /// See [`latent_coordinates`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    latent_coordinates: Option<String>,
}

/// How the stage artefacts store a latent block, for a model that has one: "whitened" (u = L^{-1}(z - mu),
/// see `prob::params`). Artefacts without it hold the raw z of an earlier version and cannot be resumed.
fn latent_coordinates(layout: &ParamLayout) -> Option<String> {
    layout
        .blocks()
        .iter()
        .any(|b| matches!(b.prior, crate::prob::BlockPrior::MvNormal(_)))
        .then(|| "whitened".to_string())
}

/// Run the pipeline. `device` is the inner device; gradients use its autodiff twin.
pub fn run_fit(cfg: &FitConfig, target: RunTarget, device: &Device) -> Result<FitOutcome> {
    // Load and check everything before creating a run, so bad input leaves nothing behind.
    let spec = crate::model::spec::ModelSpec::load(&cfg.model)?;
    let obs = Observation::load(
        &cfg.obs,
        cfg.noise_map.as_deref(),
        cfg.mask.as_deref(),
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
    if let RunTarget::Resume(dir) = &target {
        check_resumable(dir, &inputs)?;
        check_stage_results(dir, &layout)?;
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
fn check_resumable(dir: &Path, inputs: &BTreeMap<String, InputFile>) -> Result<()> {
    let info = RunInfo::load(dir)?;
    if info.kind != RunKind::Fit {
        bail!(
            "{}: cannot resume: this is a {} run, not a fit",
            dir.display(),
            info.kind.as_str()
        );
    }
    let diffs = input_differences(&info.inputs, inputs);
    if !info.inputs.is_empty() && !diffs.is_empty() {
        bail!(
            "{}: cannot resume: {} input{} differ{} from the run's record (run.json):\n  {}\n\
             resume with the files the run was started with, or start a new run without --resume",
            dir.display(),
            diffs.len(),
            if diffs.len() == 1 { "" } else { "s" },
            if diffs.len() == 1 { "s" } else { "" },
            diffs.join("\n  ")
        );
    }
    Ok(())
}

/// The stage results already in run `dir` must have this invocation's dimension (`layout`): a run
/// started with another model or checkpoint (recorded before input hashes were kept) would else
/// fail deep inside a later stage or be misread. Checked before the run is touched.
fn check_stage_results(dir: &Path, layout: &ParamLayout) -> Result<()> {
    let d = layout.dim();
    let art = dir.join("artifacts");
    let vectors: Vec<String> = layout
        .blocks()
        .iter()
        .filter(|b| b.dim > 1)
        .map(|b| format!("{} has {}", b.name, b.dim))
        .collect();
    let this = if vectors.is_empty() {
        format!("this model has {d} free parameters")
    } else {
        format!(
            "this model has {d} free parameters ({})",
            vectors.join(", ")
        )
    };
    let hint = "the run was started with another model file or checkpoint: resume with those, or \
                start a new run without --resume";
    let map_path = art.join("map.json");
    if map_path.exists() {
        let m: MapArtifact = read_json(&map_path)?;
        check_latent_coordinates(&map_path, m.latent_coordinates.as_deref(), layout)?;
        if m.best_u.len() != d {
            bail!(
                "{}: the MAP point has {} values, but {this}; {hint}",
                map_path.display(),
                m.best_u.len()
            );
        }
    }
    let vi_path = art.join("vi.json");
    if vi_path.exists() {
        let v: ViArtifact = read_json(&vi_path)?;
        check_latent_coordinates(&vi_path, v.latent_coordinates.as_deref(), layout)?;
        if v.mean.len() != d || v.chol.len() != d * d {
            bail!(
                "{}: the VI mean has {} values, but {this}; {hint}",
                vi_path.display(),
                v.mean.len()
            );
        }
    }
    let samples = art.join("samples.h5");
    if samples.exists() {
        let f = hdf5::File::open(&samples)
            .with_context(|| format!("{}: cannot open samples", samples.display()))?;
        for b in layout.blocks() {
            let width = f.dataset(&b.name).ok().map(|ds| {
                if b.dim == 1 {
                    1
                } else {
                    *ds.shape().get(2).unwrap_or(&0)
                }
            });
            if width != Some(b.dim) {
                bail!(
                    "{}: the draws of {} {}, but {this}; {hint}",
                    samples.display(),
                    b.name,
                    match width {
                        Some(w) => format!("have {w} components"),
                        None => "are missing".to_string(),
                    }
                );
            }
        }
    }
    Ok(())
}

fn check_latent_coordinates(path: &Path, found: Option<&str>, layout: &ParamLayout) -> Result<()> {
    let want = latent_coordinates(layout);
    if found != want.as_deref() {
        bail!(
            "{}: the latent block is stored in {} coordinates, this version uses {}: the run was made by \
             an earlier version; start a new run without --resume",
            path.display(),
            found.unwrap_or("raw"),
            want.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}

type Truths = (BTreeMap<String, f64>, Option<Vec<f64>>);

/// Truths that do not belong to this model: latent values of another length than its latent block
/// (a mock made with another checkpoint: component i of another latent space is no truth for this
/// one), latent values without a VAE source, or parameter names the model does not have. The
/// latent values are then dropped so no z-score is computed against them. Returns the warnings.
fn check_truths(
    truths: &mut Truths,
    path: &Path,
    layout: &ParamLayout,
    problem: &Problem,
) -> Vec<String> {
    let mut out = Vec::new();
    let latent_blocks: Vec<(&str, usize)> = layout
        .blocks()
        .iter()
        .filter(|b| matches!(b.prior, crate::prob::BlockPrior::MvNormal(_)))
        .map(|b| (b.name.as_str(), b.dim))
        .collect();
    if let Some(latent) = &truths.1 {
        let mismatch = match latent_blocks.as_slice() {
            [] => Some(format!(
                "{}: {} latent truth values, but the model has no VAE source",
                path.display(),
                latent.len()
            )),
            [(name, d)] if *d != latent.len() => Some(format!(
                "{}: {} latent truth values, but the model's {name} has {d} components (checkpoint {}): \
                 the mock was made with another latent prior",
                path.display(),
                latent.len(),
                problem
                    .vae
                    .as_ref()
                    .map(|v| v.2.display().to_string())
                    .unwrap_or_default()
            )),
            _ => None,
        };
        if let Some(m) = mismatch {
            out.push(format!("{m}; the latent truths are not used"));
            truths.1 = None;
        }
    }
    let known: Vec<String> = layout.names();
    let unknown: Vec<&String> = truths.0.keys().filter(|k| !known.contains(k)).collect();
    if !unknown.is_empty() {
        let shown: Vec<&str> = unknown.iter().take(6).map(|s| s.as_str()).collect();
        out.push(format!(
            "{}: {} truth value(s) name parameters this model does not have ({}{}): not used",
            path.display(),
            unknown.len(),
            shown.join(", "),
            if unknown.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        ));
    }
    out
}

fn truth_of(truths: Option<&Truths>, name: &str) -> Option<f64> {
    let (params, latent) = truths?;
    if let Some(v) = params.get(name) {
        return Some(*v);
    }
    // Latent columns are named `src.z[i]`.
    let open = name.find('[')?;
    let i: usize = name[open + 1..name.len() - 1].parse().ok()?;
    latent.as_ref()?.get(i).copied()
}

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
    let dim = layout.dim();
    let art = run.artifacts();
    let mut timings = BTreeMap::new();
    let n_pix = obs.n_used();
    let dof = n_pix.saturating_sub(dim).max(1);
    let lik = &post.likelihood().tensor;
    let mut map_estimate: Option<Vec<ParamSummary>> = None;

    // ---- 1. multistart MAP ------------------------------------------------------------------
    let map_path = art.join("map.json");
    let map: Option<MapArtifact> = if map_path.exists() {
        Some(read_json(&map_path)?)
    } else if cfg.stages.map {
        run.begin_stage("map")?;
        run.log("stage", json!({"stage": "map"}))?;
        let t0 = Instant::now();
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let tol = chi2_tolerance(dof);
        // (point, log p, chi^2, multistart result) of the best attempt so far
        let mut kept: Option<(Vec<f64>, f64, f64, MapResult)> = None;
        let mut attempts = 0;
        for attempt in 0..=cfg.map_retries {
            let starts = layout.sample_prior(&mut rng, cfg.map_starts);
            let pb = arclight_core::progress::bar(cfg.map.steps as u64, "MAP");
            let total = cfg.map.steps;
            // With a coarse model the first 2/3 of the iterations run on it and the rest, from where each
            // start got to, on the full model: the coarse model brings the starts into basins cheaply, the
            // full one ranks and finishes them (ranking on the coarse model alone picked a wrong mode).
            let split = match coarse {
                Some(_) => (2 * cfg.map.steps / 3).max(1),
                None => 0,
            };
            if coarse.is_some() {
                run.log(
                "map_model",
                json!({"coarse_steps": split, "full_steps": cfg.map.steps - split, "coarse_supersample": 1}),
            )?;
            }
            let mut report = |p: &crate::inference::Progress, offset: usize| -> Result<()> {
                let step = p.step + offset;
                pb.set_position(step as u64 + 1);
                let best = p
                    .metrics
                    .iter()
                    .find(|m| m.0 == "best_loss")
                    .map(|m| m.1)
                    .unwrap_or(f64::NAN);
                pb.set_message(format!("best -log p {best:.1}"));
                let mut line = p.to_json();
                line.insert("step".into(), json!(step));
                if attempt > 0 {
                    line.insert("attempt".into(), json!(attempt + 1));
                }
                line.insert("loss_best".into(), json!(finite(best)));
                if offset > 0 || split > 0 {
                    line.insert(
                        "model".into(),
                        json!(if offset == 0 { "coarse" } else { "full" }),
                    );
                }
                run.log("map", Value::Object(line))?;
                run.progress(
                    stage_fraction(0, step + 1, total, cfg.stages),
                    "map",
                    None,
                    false,
                )
            };
            let res = match coarse {
                Some(c) => {
                    let first = MapOptions {
                        steps: split,
                        ..cfg.map.clone()
                    };
                    let r1 = multistart_map(c, &starts, &first, |p| report(p, 0))?;
                    let second = MapOptions {
                        steps: cfg.map.steps - split,
                        schedule: cfg.map.schedule.shifted(split),
                        // the annealing belongs to the start of the run, on the coarse model
                        temper_from: None,
                        ..cfg.map.clone()
                    };
                    multistart_map(post, &r1.points, &second, |p| report(p, split))?
                }
                None => multistart_map(post, &starts, &cfg.map, |p| report(p, 0))?,
            };
            pb.finish_and_clear();
            // Polish of the best few starts: the Hessian (and optional Levenberg-Marquardt Newton steps),
            // then L-BFGS preconditioned by it (inference::newton, inference::lbfgs).
            let mut best_u = res.best().to_vec();
            let mut best_logp = res.best_logp();
            let adam_logp = best_logp;
            let mut newton_best = f64::NEG_INFINITY;
            let mut lbfgs_iters = Vec::new();
            let t_polish = Instant::now();
            // the starts are polished in parallel (each evaluates one point at a time), then ranked in
            // their MAP order, so the result does not depend on the thread count
            let chosen: Vec<usize> = res
                .order
                .iter()
                .take(cfg.polish_starts)
                .copied()
                .filter(|&i| res.logp[i].is_finite())
                .collect();
            let polished: Vec<Result<(f64, Value, crate::inference::LbfgsResult)>> = {
                use rayon::prelude::*;
                chosen
                    .par_iter()
                    .map(|&i| {
                        let t = Instant::now();
                        let p = newton_polish(post, res.point(i), &cfg.newton)?;
                        let newton_s = t.elapsed().as_secs_f64();
                        let t = Instant::now();
                        let l = match p.covariance_chol {
                            Some(c) if cfg.lbfgs.precondition => {
                                lbfgs_ascent_preconditioned(post, &p.x, c, &cfg.lbfgs)?
                            }
                            _ => lbfgs_ascent(post, &p.x, &cfg.lbfgs)?,
                        };
                        let record = json!({"start": i, "adam_logp": finite(res.logp[i]),
                            "newton_logp": finite(p.logp), "newton_hessians": p.iterations,
                            "newton_s": newton_s, "lbfgs_logp": finite(l.logp),
                            "lbfgs_iterations": l.iterations, "lbfgs_evaluations": l.evaluations,
                            "lbfgs_s": t.elapsed().as_secs_f64(),
                            // the climb at iterations 0, 25, 50, 100, 200, ...
                            "lbfgs_trace": trace_points(&l.trace)});
                        Ok((p.logp, record, l))
                    })
                    .collect()
            };
            let mut records = Vec::new();
            for r in polished {
                let (newton_logp, record, p) = r?;
                newton_best = newton_best.max(newton_logp);
                lbfgs_iters.push(p.iterations);
                records.push(record);
                if p.logp > best_logp {
                    best_logp = p.logp;
                    best_u = p.x;
                }
            }
            if cfg.polish_starts > 0 {
                run.log(
                    "map_polish",
                    json!({"adam_logp": finite(adam_logp), "newton_logp": finite(newton_best),
                       "polished_logp": finite(best_logp), "starts": cfg.polish_starts,
                       "lbfgs_iterations": lbfgs_iters,
                       "lbfgs_preconditioned": cfg.lbfgs.precondition, "per_start": records,
                       "time_s": t_polish.elapsed().as_secs_f64(), "attempt": attempt + 1}),
                )?;
            }
            let chi2 = lik.chi2(&to_physical(layout, &best_u), 1)?[0];
            let better = kept.as_ref().is_none_or(|k| best_logp > k.1);
            if better {
                kept = Some((best_u, best_logp, chi2, res));
            }
            let (_, kept_logp, kept_chi2, _) = kept.as_ref().expect("an attempt was kept");
            attempts = attempt + 1;
            if kept_chi2 / dof as f64 <= 1.0 + tol || attempt == cfg.map_retries {
                break;
            }
            let msg = format!(
                "MAP chi^2/dof {:.3} is above 1 + {tol:.3}: a wrong mode or a wrong model; trying {} more starts \
             (attempt {} of {})",
                kept_chi2 / dof as f64,
                cfg.map_starts,
                attempt + 2,
                cfg.map_retries + 1
            );
            eprintln!("fit: {msg}");
            run.log(
            "map_retry",
            json!({"attempt": attempt + 1, "chi2_dof": kept_chi2 / dof as f64, "logp": finite(*kept_logp)}),
        )?;
        }
        let (best_u, best_logp, chi2, res) = kept.expect("at least one MAP attempt ran");
        for tr in &res.traces {
            run.log("map_trace", json!({"start": tr.start, "loss": tr.loss}))?;
        }
        // named physical values with Laplace widths, for map.json and a MAP-only summary
        let lap = crate::inference::laplace::laplace(post, &best_u);
        if let Err(e) = &lap {
            run.log("map_laplace", json!({"error": format!("{e:#}")}))?;
        }
        let est = summarize_map(layout, names, &best_u, lap.as_ref().ok(), &|n| {
            truth_of(truths, n)
        });
        let a = MapArtifact {
            params: est.iter().map(|p| (p.name.clone(), p.mean)).collect(),
            laplace_std: est
                .iter()
                .map(|p| (p.name.clone(), p.std.is_finite().then_some(p.std)))
                .collect(),
            laplace_ridge: lap.as_ref().ok().map(|l| l.ridge),
            best_u,
            best_logp,
            chi2,
            dof,
            n_reverted: res.n_reverted,
            n_dead_starts: res.n_dead_starts,
            time_s: t0.elapsed().as_secs_f64(),
            attempts,
            latent_coordinates: latent_coordinates(layout),
        };
        arclight_core::write_json_atomic(&map_path, &a)?;
        run.end_stage("map")?;
        map_estimate = Some(est);
        Some(a)
    } else {
        None
    };
    if let Some(m) = &map {
        timings.insert("map_s".into(), m.time_s);
    }

    // ---- 2. full-rank VI ----------------------------------------------------------------------
    let vi_path = art.join("vi.json");
    let vi: Option<ViArtifact> = if vi_path.exists() {
        Some(read_json(&vi_path)?)
    } else if cfg.stages.vi {
        let init = match &map {
            Some(m) => m.best_u.clone(),
            None => prior_mean_u(layout)?,
        };
        run.begin_stage("vi")?;
        run.log("stage", json!({"stage": "vi"}))?;
        let t0 = Instant::now();
        let total = cfg.vi.steps;
        let pb = arclight_core::progress::bar(total as u64, "VI");
        let res = fit_vi(post, &init, &cfg.vi, |p| {
            pb.set_position(p.step as u64 + 1);
            let elbo = p
                .metrics
                .iter()
                .find(|m| m.0 == "elbo")
                .map(|m| m.1)
                .unwrap_or(f64::NAN);
            pb.set_message(format!("ELBO {elbo:.1}"));
            run.log("vi", Value::Object(p.to_json()))?;
            run.progress(
                stage_fraction(1, p.step + 1, total, cfg.stages),
                "vi",
                None,
                false,
            )
        })?;
        pb.finish_and_clear();
        let a = ViArtifact {
            mean: res.mean.clone(),
            chol: res.chol.clone(),
            elbo_final: res.elbo.last().copied().unwrap_or(f64::NAN),
            time_s: t0.elapsed().as_secs_f64(),
            latent_coordinates: latent_coordinates(layout),
        };
        arclight_core::write_json_atomic(&vi_path, &a)?;
        run.end_stage("vi")?;
        Some(a)
    } else {
        None
    };
    if let Some(v) = &vi {
        timings.insert("vi_s".into(), v.time_s);
    }

    // ---- 3. preconditioned HMC --------------------------------------------------------------
    let samples_path = art.join("samples.h5");
    let mut summaries = Vec::new();
    let mut estimate = None;
    let (mut rhat_max, mut ess_min) = (None, None);
    let mut hmc_cost: Option<(usize, f64)> = None;
    let mut hmc_rounds: Option<Value> = None;
    let mut rounds_now = Vec::new();
    let mut draws_for_plots: Option<(HmcDraws, Vec<f64>)> = None;
    if cfg.stages.hmc && !samples_path.exists() {
        run.begin_stage("hmc")?;
        run.log("stage", json!({"stage": "hmc"}))?;
        let t0 = Instant::now();
        let mut rng = StdRng::seed_from_u64(cfg.seed ^ HMC_START_STREAM);
        let (mass, init) = match (&vi, &map) {
            (Some(v), _) => {
                let q = MvNormal::from_cholesky(v.mean.clone(), v.chol.clone())?;
                let mut init = vec![0.0; cfg.hmc_chains * dim];
                for row in init.chunks_mut(dim) {
                    q.sample_into(&mut rng, row);
                }
                let redrawn =
                    finite_starts(post, &mut init, &v.mean, |row| q.sample_into(&mut rng, row))?;
                if redrawn > 0 {
                    run.log("hmc_init", json!({"redrawn": redrawn}))?;
                }
                (MassMatrix::from_cholesky(v.chol.clone(), dim)?, init)
            }
            (None, Some(m)) => {
                // no VI: the Laplace approximation at the MAP point preconditions and seeds (with
                // the ridge it needed: with a VAE source the f32 finite-difference Hessian is never
                // quite negative definite, and the ridged one still whitens well: step ~1.4,
                // acceptance ~0.85 on the 256x256 mocks); if it fails outright (not finite), a
                // small diagonal around the MAP point
                let laplace = crate::inference::laplace::laplace(post, &m.best_u).ok();
                run.log(
                    "hmc_init",
                    json!({"from": if laplace.is_some() { "laplace" } else { "map_diagonal" },
                           "laplace_ridge": laplace.as_ref().map(|l| l.ridge)}),
                )?;
                match laplace {
                    Some(lap) => {
                        let q = MvNormal::from_cholesky(m.best_u.clone(), lap.chol.clone())?;
                        let mut init = vec![0.0; cfg.hmc_chains * dim];
                        for row in init.chunks_mut(dim) {
                            q.sample_into(&mut rng, row);
                        }
                        let redrawn = finite_starts(post, &mut init, &m.best_u, |row| {
                            q.sample_into(&mut rng, row)
                        })?;
                        if redrawn > 0 {
                            run.log("hmc_init", json!({"redrawn": redrawn}))?;
                        }
                        (MassMatrix::from_cholesky(lap.chol, dim)?, init)
                    }
                    None => {
                        let mut init = Vec::with_capacity(cfg.hmc_chains * dim);
                        for _ in 0..cfg.hmc_chains {
                            init.extend(m.best_u.iter().map(|u| {
                                u + 1e-3
                                    * rand_distr::Distribution::<f64>::sample(
                                        &rand_distr::StandardNormal,
                                        &mut rng,
                                    )
                            }));
                        }
                        (MassMatrix::from_scales(vec![1e-2; dim])?, init)
                    }
                }
            }
            (None, None) => bail!("HMC needs a starting point: run the map or vi stage first"),
        };
        let first = cfg.hmc.n_burn + cfg.hmc.n_samples;
        let later = cfg.hmc.retry.n_burn + cfg.hmc.n_samples;
        // iterations before round r (1-based) starts
        let before = |r: usize| if r <= 1 { 0 } else { first + (r - 2) * later };
        let pb = arclight_core::progress::bar(first as u64, "HMC");
        let mut hmc_opts = cfg.hmc.clone();
        hmc_opts.seed ^= cfg.seed;
        // rounds are judged on the physical values, as the summary reports them
        // (the last round's diagnostics are kept to name its worst parameters in the round's log line)
        let judged = std::sync::Mutex::new(Vec::new());
        let judge = |d: &HmcDraws| {
            let diag = diagnose_rows(&physical_draws(layout, d), d.n_chains, d.dim);
            *judged.lock().expect("not poisoned") = diag.clone();
            diag
        };
        // the VAE latent (a multivariate normal block) is judged by retry.latent_rhat
        let latent: Vec<bool> = layout
            .blocks()
            .iter()
            .flat_map(|b| {
                std::iter::repeat_n(
                    matches!(b.prior, crate::prob::BlockPrior::MvNormal(_)),
                    b.dim,
                )
            })
            .collect();
        let draws = sample_hmc_judged(post, &init, &mass, &hmc_opts, &judge, &latent, |p| {
            if p.stage == "hmc_round" {
                let mut line = p.to_json();
                let diag = judged.lock().expect("not poisoned");
                // the three parameters with the highest R-hat and the lowest min(bulk, tail) ESS
                let worst = |value: &dyn Fn(&crate::inference::ParamDiagnostics) -> f64,
                             high: bool| {
                    let mut k: Vec<usize> = (0..diag.len()).collect();
                    k.sort_by(|&a, &b| value(&diag[a]).total_cmp(&value(&diag[b])));
                    if high {
                        k.reverse();
                    }
                    k.iter()
                        .take(3)
                        .map(|&i| json!([names[i], finite(value(&diag[i]))]))
                        .collect::<Vec<_>>()
                };
                line.insert("worst_rhat".into(), json!(worst(&|d| d.rhat, true)));
                let ess = |d: &crate::inference::ParamDiagnostics| d.ess_bulk.min(d.ess_tail);
                line.insert("worst_ess".into(), json!(worst(&ess, false)));
                return run.log("hmc_round_checked", Value::Object(line));
            }
            let metric = |name: &str| {
                p.metrics
                    .iter()
                    .find(|m| m.0 == name)
                    .map(|m| m.1)
                    .unwrap_or(f64::NAN)
            };
            let round = metric("round").max(1.0) as usize;
            let n_burn = if round == 1 {
                cfg.hmc.n_burn
            } else {
                cfg.hmc.retry.n_burn
            };
            let in_round = if p.stage == "hmc_sample" {
                n_burn + p.step + 1
            } else {
                p.step + 1
            };
            let step = before(round) + in_round;
            if round > 1 {
                pb.set_length((before(round) + later) as u64);
            }
            pb.set_position(step as u64);
            let acc = metric("accept");
            if round > 1 {
                pb.set_message(format!("round {round}, accept {acc:.2}"));
            } else {
                pb.set_message(format!("accept {acc:.2}"));
            }
            let mut line = p.to_json();
            line.insert(
                "phase".into(),
                json!(if p.stage == "hmc_sample" {
                    "sampling"
                } else {
                    "warmup"
                }),
            );
            run.log("hmc", Value::Object(line))?;
            // the bar's fraction of the stage: rounds beyond the first extend it
            run.progress(
                stage_fraction(
                    2,
                    step,
                    before(round) + n_burn + cfg.hmc.n_samples,
                    cfg.stages,
                ),
                "hmc",
                None,
                false,
            )
        })?;
        for (k, r) in draws.rounds.iter().enumerate() {
            run.log(
                "hmc_round",
                json!({"round": k + 1, "n_burn": r.n_burn, "n_leapfrog": r.n_leapfrog,
                       "step_size": r.step_size, "trajectory": r.trajectory,
                       "target_accept": r.target_accept, "max_rhat": r.max_rhat,
                       "min_ess_bulk": r.min_ess_bulk, "min_ess_tail": r.min_ess_tail,
                       "divergent": r.divergent, "misses": r.misses,
                       "kept": k + 1 == draws.rounds.len(), "with_previous": r.with_previous}),
            )?;
        }
        pb.finish_and_clear();
        let physical = physical_draws(layout, &draws);
        write_samples(&samples_path, layout, &draws, &physical)?;
        run.end_stage("hmc")?;
        let hmc_s = t0.elapsed().as_secs_f64();
        timings.insert("hmc_s".into(), hmc_s);
        // Cost of the sampler in gradient evaluations (one per chain per leapfrog step).
        let evals = draws.n_evaluations * draws.n_chains;
        hmc_cost = Some((evals, hmc_s));
        hmc_rounds = Some(serde_json::to_value(&draws.rounds)?);
        rounds_now = draws.rounds.clone();
        draws_for_plots = Some((draws, physical));
    } else if samples_path.exists() {
        draws_for_plots = Some(read_samples(&samples_path, layout)?);
    }
    // the same draws for ArviZ; on resume, written if an earlier run stopped before it
    let nc_path = art.join("posterior.nc");
    if let Some((draws, physical)) = &draws_for_plots
        && !nc_path.exists()
    {
        let prov = Provenance {
            model_file: cfg.model.display().to_string(),
            // the checkpoint actually loaded (--checkpoint, the model file's, or the default)
            checkpoint: problem.vae.as_ref().map(|v| v.2.display().to_string()),
            observation: cfg.obs.display().to_string(),
            run: run.id().to_string(),
        };
        if let Err(e) = write_posterior_nc(&nc_path, layout, draws, physical, &prov) {
            eprintln!("warning: {e:#}");
            run.log("warning", json!({"posterior_nc": format!("{e:#}")}))?;
        }
    }
    if let Some((draws, physical)) = &draws_for_plots {
        // on the physical values, as ArviZ computes them from posterior.nc
        let diag = diagnose_rows(physical, draws.n_chains, draws.dim);
        summaries = summarize(names, physical, dim, &diag, &|n| truth_of(truths, n));
        estimate = Some(Estimate::Hmc);
        // R-hat needs at least two (split) chains: with one chain it is NaN and reported as absent.
        let r = diag
            .iter()
            .map(|d| d.rhat)
            .fold(f64::NEG_INFINITY, f64::max);
        rhat_max = r.is_finite().then_some(r);
        let e = diag
            .iter()
            .map(|d| d.ess_bulk.min(d.ess_tail))
            .fold(f64::INFINITY, f64::min);
        ess_min = e.is_finite().then_some(e);
        run.log(
            "hmc_done",
            json!({"divergences": draws.n_divergent(), "accept": draws.mean_accept(), "step_size": draws.adapted_step_size,
                   "rhat_max": rhat_max, "ess_min": ess_min}),
        )?;
    } else if let Some(v) = &vi {
        // Without HMC, summarise the VI posterior from draws of q.
        let q = MvNormal::from_cholesky(v.mean.clone(), v.chol.clone())?;
        let mut rng = StdRng::seed_from_u64(cfg.seed ^ VI_DRAWS_STREAM);
        let n = 4000;
        let mut u = vec![0.0; n * dim];
        for row in u.chunks_mut(dim) {
            q.sample_into(&mut rng, row);
        }
        let physical = to_physical(layout, &u);
        let nan = vec![
            crate::inference::ParamDiagnostics {
                rhat: f64::NAN,
                ess_bulk: f64::NAN,
                ess_tail: f64::NAN
            };
            dim
        ];
        summaries = summarize(names, &physical, dim, &nan, &|n| truth_of(truths, n));
        estimate = Some(Estimate::Vi);
    } else if let Some(m) = &map {
        // MAP only: the named physical MAP values with Laplace widths
        summaries = match map_estimate.take() {
            Some(s) => s,
            None => {
                let lap = crate::inference::laplace::laplace(post, &m.best_u).ok();
                summarize_map(layout, names, &m.best_u, lap.as_ref(), &|n| {
                    truth_of(truths, n)
                })
            }
        };
        estimate = Some(Estimate::Map);
    }

    // ---- 4. figures and summary -----------------------------------------------------------
    run.log("stage", json!({"stage": "done"}))?;
    let best_u = map
        .as_ref()
        .map(|m| m.best_u.clone())
        .or_else(|| vi.as_ref().map(|v| v.mean.clone()));
    let mut plots = Vec::new();
    if let Some(u) = &best_u {
        let theta = to_physical(layout, u);
        match super::figures::fit_figure(&art.join("fit.png"), problem, lik, obs, &theta, truths) {
            Ok(p) => plots.push(p),
            Err(e) => eprintln!("warning: fit figure not written: {e:#}"),
        }
    }
    if let Some((draws, physical)) = &draws_for_plots {
        match super::figures::corner_figure(
            &art.join("corner.png"),
            layout,
            names,
            physical,
            draws.dim,
            vi.as_ref().map(|v| (&v.mean[..], &v.chol[..])),
            truths,
        ) {
            Ok(p) => plots.push(p),
            Err(e) => eprintln!("warning: corner plot not written: {e:#}"),
        }
    }
    let chi2_dof = map.as_ref().map(|m| m.chi2 / m.dof as f64);
    let params_json: serde_json::Map<String, Value> = summaries
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                serde_json::to_value(s).unwrap_or(Value::Null),
            )
        })
        .collect();
    let summary = json!({
        "estimate": estimate.map(Estimate::as_str),
        "params": params_json,
        "rhat_max": rhat_max,
        "ess_min": ess_min,
        "chi2_dof": chi2_dof,
        "map": map.as_ref().map(|m| json!({"best_logp": m.best_logp, "chi2": m.chi2, "dof": m.dof,
                                            "laplace_ridge": m.laplace_ridge})),
        "vi": vi.as_ref().map(|v| json!({"elbo": v.elbo_final})),
        "plots": plots,
        "timings": timings,
        "hmc_efficiency": hmc_cost.map(|(evals, secs)| json!({
            "gradient_evaluations": evals,
            "ms_per_gradient": 1e3 * secs / evals.max(1) as f64,
            "evaluations_per_effective_sample": ess_min.map(|e| evals as f64 / e),
        })),
        // every HMC sampling round; all but the last missed the convergence targets (warm-up)
        "hmc_rounds": hmc_rounds,
        "backend": post.likelihood().backend(),
        "backend_fallback": post.likelihood().fallback,
        "n_pixels": n_pix,
        "warnings": run.info().warnings,
    });
    run.finish(summary)?;
    Ok(FitOutcome {
        run_dir: run.dir().to_path_buf(),
        estimate,
        params: summaries,
        chi2_dof,
        rhat_max,
        ess_min,
        hmc_rounds: rounds_now,
        plots,
        timings,
    })
}

/// Chains must start where the log-density is finite: a draw of the VI surrogate can land outside
/// (its Gaussian tails reach where the model breaks down). Such rows are redrawn up to 20 times, then
/// set to `fallback` (the VI mean). Returns how many rows needed a redraw.
fn finite_starts<D: crate::density::LogDensity + ?Sized>(
    density: &D,
    x: &mut [f64],
    fallback: &[f64],
    mut redraw: impl FnMut(&mut [f64]),
) -> Result<usize> {
    let d = density.dim();
    let n = x.len() / d;
    let mut logp = vec![0.0; n];
    let mut grad = vec![0.0; n * d];
    let mut redrawn = 0;
    for attempt in 0..=20 {
        // eval_checked sets logp = -inf on every row whose value or gradient is not finite.
        crate::density::eval_checked(density, x, n, &mut logp, &mut grad)?;
        let bad: Vec<usize> = (0..n).filter(|&r| !logp[r].is_finite()).collect();
        if bad.is_empty() {
            break;
        }
        if attempt == 0 {
            redrawn = bad.len();
        }
        for r in bad {
            let row = &mut x[r * d..(r + 1) * d];
            if attempt < 20 {
                redraw(row);
            } else {
                row.copy_from_slice(fallback);
            }
        }
    }
    Ok(redrawn)
}

/// `trace` at indices 0, 25, 50, 100, 200, ... and its last value.
fn trace_points(trace: &[f64]) -> Vec<(usize, f64)> {
    let mut out = vec![];
    let mut k = 0;
    while k < trace.len() {
        out.push((k, trace[k]));
        k = if k == 0 { 25 } else { 2 * k };
    }
    if let Some(&v) = trace.last() {
        out.push((trace.len() - 1, v));
    }
    out
}

fn finite(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// Overall progress: the enabled stages share [0, 1] equally.
fn stage_fraction(stage: usize, step: usize, total: usize, st: Stages) -> f64 {
    let on = [st.map, st.vi, st.hmc];
    let n = on.iter().filter(|&&b| b).count().max(1) as f64;
    let before = on[..stage].iter().filter(|&&b| b).count() as f64;
    (before + step as f64 / total.max(1) as f64) / n
}

fn to_physical(layout: &ParamLayout, u: &[f64]) -> Vec<f64> {
    let mut x = vec![0.0; u.len()];
    layout.to_physical(u, &mut x);
    x
}

/// VI's start when MAP is skipped: the mean of 256 prior draws in unconstrained space (close to the
/// bijectors' centres and the latent prior's mean), the same for every fit of a model.
fn prior_mean_u(layout: &ParamLayout) -> Result<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(PRIOR_MEAN_STREAM);
    let draws = layout.sample_prior(&mut rng, 256);
    let d = layout.dim();
    let mut m = vec![0.0; d];
    for row in draws.chunks(d) {
        for (a, b) in m.iter_mut().zip(row) {
            *a += b / 256.0;
        }
    }
    Ok(m)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: corrupt stage result", path.display()))
}

fn read_samples(path: &Path, layout: &ParamLayout) -> Result<(HmcDraws, Vec<f64>)> {
    let f = hdf5::File::open(path)
        .with_context(|| format!("{}: cannot open samples", path.display()))?;
    let c = f.attr("n_chains")?.read_scalar::<i64>()? as usize;
    let t = f.attr("n_draws")?.read_scalar::<i64>()? as usize;
    let d = layout.dim();
    let mut physical = vec![0.0; c * t * d];
    for b in layout.blocks() {
        let v: Vec<f64> = f.dataset(&b.name)?.read_raw()?;
        for (i, chunk) in v.chunks(b.dim).enumerate() {
            physical[i * d + b.offset..i * d + b.offset + b.dim].copy_from_slice(chunk);
        }
    }
    let mut u = vec![0.0; physical.len()];
    layout.from_physical(&physical, &mut u)?;
    let logp: Vec<f64> = f.dataset("logp")?.read_raw()?;
    let accept: Vec<f64> = f.dataset("accept_prob")?.read_raw()?;
    let div: Vec<u8> = f.dataset("divergent")?.read_raw()?;
    // per-draw step counts and step sizes: absent in samples of runs that predate them
    let n_steps: Vec<usize> = if f.link_exists("n_steps") {
        let v: Vec<i64> = f.dataset("n_steps")?.read_raw()?;
        v.into_iter().map(|s| s.max(0) as usize).collect()
    } else {
        Vec::new()
    };
    let step_size: Vec<f64> = if f.link_exists("step_size") {
        f.dataset("step_size")?.read_raw()?
    } else {
        Vec::new()
    };
    let draws = HmcDraws {
        n_chains: c,
        n_draws: t,
        dim: d,
        draws: u,
        logp,
        accept_prob: accept,
        divergent: div.into_iter().map(|b| b != 0).collect(),
        n_steps,
        step_size,
        adapted_step_size: f64::NAN,
        adapted_trajectory: None,
        warmup: Default::default(),
        n_evaluations: 0,
        rounds: Vec::new(),
    };
    Ok((draws, physical))
}
