//! What `infer fit` runs: the stages and their budgets (GIGA-Lens Table 1 and this project's
//! defaults), serialised into the run record.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::inference::hmc::{HmcOptions, RetryOptions};
use crate::inference::{LbfgsOptions, MapOptions, NewtonOptions, ViOptions};

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
pub(super) const HMC_START_STREAM: u64 = 0x48_4d43;
/// The draws of q that summarise a fit ending with VI ("VI").
pub(super) const VI_DRAWS_STREAM: u64 = 0x5649;
/// The prior draws of VI's start without MAP: a fixed seed, the same start for every fit.
pub(super) const PRIOR_MEAN_STREAM: u64 = 0;

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
    /// The HDU (0-based) of `obs`, `noise_map` and `mask` to read; none: the primary, or the first image
    /// extension when the primary is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obs_hdu: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_hdu: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_hdu: Option<usize>,
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

    /// Settings whose default depends on the model, filled where the user left them unset: with a VAE
    /// source, warm-up re-estimates the metric from the draws and their gradients (`--hmc-metric`; on the
    /// paper's grid it converges seed 2, which the draws' metric does not, and four of five seeds sooner:
    /// docs/performance.md, sessions 18-19). Without one the draws' metric stays, as the GIGA-Lens studies
    /// ran. Idempotent; `run_fit` and a study's identity apply it.
    pub fn choose_for_model(&mut self, spec: &crate::model::spec::ModelSpec) {
        if self.hmc.mass_gradients.is_none() && self.hmc.adapt_mass && spec.vae_source().is_some() {
            self.hmc.mass_gradients = Some(true);
        }
    }

    /// A resumed run (or study) whose invocation leaves `--hmc-metric` unset keeps the metric it was
    /// recorded with, `recorded` being its fit settings: a record without `mass_gradients` ran the draws'
    /// metric (every model's default before the choice by model), and a default that changed must not
    /// change a run half-way. Returns whether it set the draws' metric. Call before [`Self::choose_for_model`].
    pub fn keep_recorded_metric(&mut self, recorded: &serde_json::Value) -> bool {
        let hmc = &recorded["hmc"];
        if self.hmc.mass_gradients.is_none()
            && hmc.is_object()
            && hmc.get("mass_gradients").is_none()
        {
            self.hmc.mass_gradients = Some(false);
            return true;
        }
        false
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
            obs_hdu: None,
            noise_hdu: None,
            mask_hdu: None,
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
