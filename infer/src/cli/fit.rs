//! `infer fit` and the pipeline settings it shares with `infer study`.

use anyhow::Result;
use burn::tensor::Device;
use clap::Args;
use std::path::PathBuf;

use crate::inference::MapOptions;
use crate::out;
use crate::pipeline::fit::{FitConfig, RunTarget, Stages, run_fit};
use crate::pipeline::fit_report::render_fit;

#[derive(Args)]
pub struct FitArgs {
    /// Observation FITS (the primary HDU, or the first image extension when the primary is empty).
    #[arg(long)]
    pub obs: PathBuf,
    /// Read the observation from this HDU (0-based: 1 is the first extension, e.g. SCI of an HST file).
    #[arg(long)]
    pub obs_hdu: Option<usize>,
    /// Model file (grid, PSF, noise, components, priors).
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Per-pixel noise sigma (FITS), replacing the model file's background term.
    #[arg(long)]
    pub noise_map: Option<PathBuf>,
    /// Read the noise map from this HDU (0-based; e.g. 2 for the ERR extension of an HST _flt file).
    #[arg(long, requires = "noise_map")]
    pub noise_hdu: Option<usize>,
    /// Mask (FITS, non-zero = use the pixel).
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Read the mask from this HDU (0-based).
    #[arg(long, requires = "mask")]
    pub mask_hdu: Option<usize>,
    /// Truths JSON (default: truths.json beside the observation, written by `infer mock`).
    #[arg(long)]
    pub truths: Option<PathBuf>,
    /// Run directory (default: <experiments>/fit-<time>-<name>).
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the interrupted run in this directory.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    #[arg(long, default_value = "fit")]
    pub name: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub settings: FitSettings,
}

/// Pipeline settings shared by `fit` and `study`.
#[derive(Args)]
pub struct FitSettings {
    /// Stages to run, comma-separated subset of map,vi,hmc.
    #[arg(long, default_value = "map,vi,hmc")]
    pub stages: String,
    /// Start from these settings: `arclight` (default: 100 annealed MAP starts x 300 steps halved twice,
    /// retried up to twice while chi^2/dof is off,
    /// Laplace-started VI of 150 x 50 draws, 8 HMC chains x (150 + 600) with warm-up mass-matrix adaptation
    /// and L = 10, sampling again up to twice while unconverged) or `table1` (GIGA-Lens Table 1 exactly: MAP on the full model, VI from 1e-6 I, 1000 x 500
    /// draws; 50 chains x (250 + 750) preconditioned by VI alone, L = 5). The flags below override either.
    #[arg(long, default_value = "arclight", value_parser = ["arclight", "table1"])]
    pub preset: String,
    /// MAP starts n_MAP (100; table1: 300, GIGA-Lens Table 1).
    #[arg(long)]
    pub map_starts: Option<usize>,
    /// Further batches of n_MAP fresh starts while the best MAP's chi^2/dof is more than 5 sigma from 1
    /// (2; table1: 0).
    #[arg(long)]
    pub map_retries: Option<usize>,
    /// MAP Adam iterations K_MAP (300).
    #[arg(long)]
    pub map_steps: Option<usize>,
    /// Successive-halving rounds of the MAP starts (2; 0: off, as in GIGA-Lens and table1). With R rounds the
    /// worse half of the running starts stops after each of the first R of R + 1 equal segments: 300 starts
    /// with R = 2 cost what 175 cost without halving.
    #[arg(long)]
    pub map_halving: Option<usize>,
    /// Anneal the MAP: the log-likelihood enters with weight beta rising geometrically from this value to
    /// 1 over the first segment, so the early steps lean on the prior (1e-3; 1: off, as in table1).
    #[arg(long)]
    pub map_temper: Option<f64>,
    /// Model the MAP starts run on: `full` (default: the model as written, as in GIGA-Lens) or `coarse` (the
    /// first 2/3 of the steps without supersampling, one ray per pixel: ~1.7x faster, but on 1 of 61 study
    /// systems it led every start into a wrong mode)
    #[arg(long, value_parser = ["coarse", "full"])]
    pub map_model: Option<String>,
    /// Newton-polish the best N MAP starts (5; table1: 0).
    #[arg(long)]
    pub polish_starts: Option<usize>,
    /// Maximum L-BFGS iterations of the polish, per start (2000).
    #[arg(long)]
    pub polish_iters: Option<usize>,
    /// Levenberg-Marquardt Newton iterations of the polish, per start, before its L-BFGS (0: one Hessian,
    /// no step, only the L-BFGS preconditioner)
    #[arg(long)]
    pub polish_newton: Option<usize>,
    /// L-BFGS of the polish: `preconditioned` (default: in coordinates whitened by the Newton stage's
    /// Hessian) or `plain`
    #[arg(long, value_parser = ["preconditioned", "plain"])]
    pub polish_lbfgs: Option<String>,
    /// VI iterations K_VI (150; Table 1: 1000).
    #[arg(long)]
    pub vi_steps: Option<usize>,
    /// VI draws per iteration n_VI (50; Table 1: 500).
    #[arg(long)]
    pub vi_samples: Option<usize>,
    /// HMC chains n_HMC (8; Table 1: 50).
    #[arg(long)]
    pub hmc_chains: Option<usize>,
    /// HMC burn-in n_burn (150; Table 1: 250).
    #[arg(long)]
    pub hmc_burn: Option<usize>,
    /// HMC recorded draws n_sample per chain (600; Table 1: 750).
    #[arg(long)]
    pub hmc_samples: Option<usize>,
    /// Target acceptance of the HMC step-size adaptation (0.9; Table 1: 0.75); higher means smaller steps
    /// (Stan's adapt_delta: the remedy for divergences in heavy-tailed posteriors)
    #[arg(long)]
    pub hmc_target_accept: Option<f64>,
    /// HMC trajectory length: `chees` (default: adapted during warm-up by ChEES, as GIGA-Lens' TFP
    /// sampler does) or `fixed` (L leapfrog steps on average, jittered; table1)
    #[arg(long, value_parser = ["chees", "fixed"])]
    pub hmc_trajectory: Option<String>,
    /// How warm-up re-estimates the dense mass matrix: `draws` (their covariance, pooled with the VI
    /// metric when few; the default without a VAE source) or `gradients` (the geometric mean of the
    /// draws' covariance and the inverse of their gradients' covariance: exact on a Gaussian from few
    /// correlated draws; the default with a VAE source)
    #[arg(long, value_parser = ["draws", "gradients"])]
    pub hmc_metric: Option<String>,
    /// Mean leapfrog steps L with a fixed trajectory (10; table1: 5); with ChEES, L eps0 is the initial
    /// maximum trajectory length
    #[arg(long)]
    pub hmc_leapfrog: Option<usize>,
    /// HMC sampling rounds at most (3; table1: 1): while the draws miss R-hat < 1.01, bulk and tail
    /// ESS >= 400 or <= 1% divergences, they become warm-up and the chains sample again, with the mass
    /// matrix re-estimated from them (and a higher target acceptance after divergences)
    #[arg(long)]
    pub hmc_rounds: Option<usize>,
    /// Most draws per chain a round short of draws adds by continuing its chains, as a multiple of
    /// --hmc-samples (3; table1: 0): sized from its R-hat and ESS; a round that is not the last
    /// continues only if one round's draws suffice
    #[arg(long)]
    pub hmc_extend: Option<f64>,
}

impl FitSettings {
    /// Set these settings on `cfg`.
    pub fn apply(&self, cfg: &mut FitConfig) -> Result<()> {
        cfg.stages = Stages::parse(&self.stages)?;
        if self.preset == "table1" {
            let defaults = FitConfig::table1(cfg.obs.clone(), cfg.model.clone());
            cfg.map_starts = defaults.map_starts;
            cfg.map_retries = defaults.map_retries;
            cfg.map = defaults.map;
            cfg.map_coarse = false;
            cfg.map.halving_rounds = 0;
            cfg.hmc_chains = defaults.hmc_chains;
            cfg.hmc = crate::inference::HmcOptions {
                seed: cfg.hmc.seed,
                ..defaults.hmc
            };
            cfg.vi = crate::inference::ViOptions::gigalens_table1();
            cfg.hmc.adapt_mass = false;
            cfg.hmc.n_leapfrog = 5;
            cfg.hmc.retry = crate::inference::hmc::RetryOptions::single();
            cfg.polish_starts = 0;
        }
        // a budget of zero would fail late (after the stages before it ran) with an unclear error
        for (flag, v) in [
            ("--map-starts", self.map_starts),
            ("--map-steps", self.map_steps),
            ("--vi-steps", self.vi_steps),
            ("--vi-samples", self.vi_samples),
            ("--hmc-chains", self.hmc_chains),
            ("--hmc-samples", self.hmc_samples),
        ] {
            anyhow::ensure!(v != Some(0), "{flag} must be at least 1");
        }
        if let Some(n) = self.map_starts {
            cfg.map_starts = n;
        }
        if let Some(n) = self.map_retries {
            cfg.map_retries = n;
        }
        if let Some(s) = self.map_steps {
            cfg.map = MapOptions {
                keep_traces: cfg.map.keep_traces,
                halving_rounds: cfg.map.halving_rounds,
                temper_from: cfg.map.temper_from,
                ..MapOptions::with_steps(s)
            };
        }
        if let Some(r) = self.map_halving {
            cfg.map.halving_rounds = r;
        }
        if let Some(b) = self.map_temper {
            cfg.map.temper_from = (b != 1.0).then_some(b);
        }
        if let Some(m) = &self.map_model {
            cfg.map_coarse = m == "coarse";
        }
        if let Some(s) = self.polish_starts {
            cfg.polish_starts = s;
        }
        if let Some(n) = self.polish_iters {
            cfg.lbfgs.max_iter = n;
        }
        if let Some(n) = self.polish_newton {
            cfg.newton.max_iter = n;
        }
        if let Some(m) = &self.polish_lbfgs {
            cfg.lbfgs.precondition = m == "preconditioned";
        }
        if let Some(s) = self.vi_steps {
            cfg.vi = cfg.vi.clone().with_steps(s);
        }
        if let Some(s) = self.vi_samples {
            cfg.vi.n_samples = s;
        }
        if let Some(n) = self.hmc_chains {
            cfg.hmc_chains = n;
        }
        if let Some(s) = self.hmc_burn {
            cfg.hmc.n_burn = s;
        }
        if let Some(s) = self.hmc_samples {
            cfg.hmc.n_samples = s;
        }
        if let Some(s) = self.hmc_leapfrog {
            cfg.hmc.n_leapfrog = s;
        }
        if let Some(a) = self.hmc_target_accept {
            anyhow::ensure!(
                a > 0.0 && a < 1.0,
                "--hmc-target-accept must be in (0, 1), got {a}"
            );
            cfg.hmc.dual_averaging.target_accept = a;
        }
        if let Some(m) = &self.hmc_metric {
            cfg.hmc.mass_gradients = Some(m == "gradients");
        }
        if let Some(t) = &self.hmc_trajectory {
            cfg.hmc.adapt_trajectory = t == "chees";
        }
        if let Some(r) = self.hmc_rounds {
            anyhow::ensure!(r >= 1, "--hmc-rounds must be at least 1");
            cfg.hmc.retry.max_rounds = r;
        }
        if let Some(x) = self.hmc_extend {
            anyhow::ensure!(
                x.is_finite() && x >= 0.0,
                "--hmc-extend must be a finite number >= 0"
            );
            cfg.hmc.retry.extend = x;
        }
        Ok(())
    }
}

/// Run `infer fit`; `device_name` is recorded in the run's config.
pub fn run(a: FitArgs, device: &Device, device_name: String) -> Result<()> {
    let mut cfg = FitConfig::new(a.obs, a.model);
    cfg.checkpoint = a.checkpoint;
    cfg.noise_map = a.noise_map;
    cfg.mask = a.mask;
    cfg.obs_hdu = a.obs_hdu;
    cfg.noise_hdu = a.noise_hdu;
    cfg.mask_hdu = a.mask_hdu;
    cfg.truths = a.truths;
    cfg.seed = a.seed;
    a.settings.apply(&mut cfg)?;
    cfg.device = device_name;
    let target = match (a.resume, a.out) {
        (Some(dir), _) => RunTarget::Resume(dir),
        (None, Some(dir)) => RunTarget::At(dir),
        (None, None) => RunTarget::New {
            root: a.experiments,
            name: a.name,
        },
    };
    let out = run_fit(&cfg, target, device)?;
    out!("{}", render_fit(&out).trim_end());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: FitSettings,
    }

    fn config(args: &[&str]) -> FitConfig {
        let cli = Cli::try_parse_from(std::iter::once("fit").chain(args.iter().copied())).unwrap();
        let mut cfg = FitConfig::new("obs.fits".into(), "model.toml".into());
        cli.settings.apply(&mut cfg).unwrap();
        cfg
    }

    /// A zero budget is refused up front, naming its flag (it failed late, after earlier stages ran).
    #[test]
    fn zero_budgets_are_refused_naming_the_flag() {
        for flag in [
            "--map-starts",
            "--map-steps",
            "--vi-steps",
            "--vi-samples",
            "--hmc-chains",
            "--hmc-samples",
        ] {
            let cli = Cli::try_parse_from(["fit", flag, "0"]).unwrap();
            let mut cfg = FitConfig::new("obs.fits".into(), "model.toml".into());
            let e = cli.settings.apply(&mut cfg).unwrap_err().to_string();
            assert_eq!(e, format!("{flag} must be at least 1"));
        }
    }

    /// `--hmc-metric` is applied; unset, it is left for the model to choose. Only the gradients' metric is
    /// recorded, so run records and study identities of the draws' metric match earlier ones.
    #[test]
    fn hmc_metric_flag_is_applied_and_only_the_gradients_metric_is_recorded() {
        let plain = config(&[]);
        assert_eq!(plain.hmc.mass_gradients, None);
        let json = serde_json::to_value(&plain.hmc).unwrap();
        assert!(json.get("mass_gradients").is_none(), "{json}");
        let both = config(&["--hmc-metric", "gradients"]);
        assert_eq!(both.hmc.mass_gradients, Some(true));
        let json = serde_json::to_value(&both.hmc).unwrap();
        assert_eq!(json["mass_gradients"], serde_json::json!(true));
        // chosen explicitly, the draws' metric is recorded as before the option existed
        let draws = config(&["--hmc-metric", "draws"]);
        assert_eq!(draws.hmc.mass_gradients, Some(false));
        let json = serde_json::to_value(&draws.hmc).unwrap();
        assert!(json.get("mass_gradients").is_none(), "{json}");
        assert!(Cli::try_parse_from(["fit", "--hmc-metric", "fisher"]).is_err());
        // a record without the field reads back as unset (the draws' metric when it ran)
        let back: crate::inference::HmcOptions =
            serde_json::from_value(serde_json::to_value(&plain.hmc).unwrap()).unwrap();
        assert_eq!(back.mass_gradients, None);
    }

    /// Unset, the metric is the gradients' for a model with a VAE source and stays the draws' without
    /// one; a choice on the command line is kept either way.
    #[test]
    fn the_metric_default_follows_the_model() {
        let spec = |f: &str| {
            crate::model::spec::ModelSpec::load(&crate::pipeline::problem::resolve_shipped(f))
                .unwrap()
        };
        let (vae, sersic) = (
            spec("infer/models/chianese2020.toml"),
            spec("infer/models/gigalens2022.toml"),
        );
        let chosen = |args: &[&str], s: &crate::model::spec::ModelSpec| {
            let mut c = config(args);
            c.choose_for_model(s);
            c.choose_for_model(s);
            c.hmc.mass_gradients
        };
        assert_eq!(chosen(&[], &vae), Some(true));
        assert_eq!(chosen(&[], &sersic), None);
        assert_eq!(chosen(&["--hmc-metric", "draws"], &vae), Some(false));
        assert_eq!(chosen(&["--hmc-metric", "gradients"], &sersic), Some(true));
        // Table 1 adapts no metric: nothing to choose
        assert_eq!(chosen(&["--preset", "table1"], &vae), None);
    }

    /// A resume that leaves the metric unset keeps the recorded one: a record without the field ran the
    /// draws' metric (before the choice by model), one with it the gradients'; a flag still decides.
    #[test]
    fn a_resume_keeps_the_recorded_metric() {
        let vae = crate::model::spec::ModelSpec::load(&crate::pipeline::problem::resolve_shipped(
            "infer/models/chianese2020.toml",
        ))
        .unwrap();
        let resumed = |args: &[&str], recorded: &FitConfig| {
            let recorded = serde_json::to_value(recorded).unwrap();
            let mut c = config(args);
            c.keep_recorded_metric(&recorded);
            c.choose_for_model(&vae);
            c.hmc.mass_gradients
        };
        let old = config(&[]); // recorded before the choice by model: no field
        let mut new = config(&[]);
        new.choose_for_model(&vae);
        assert_eq!(resumed(&[], &old), Some(false));
        assert_eq!(resumed(&[], &new), Some(true));
        assert_eq!(resumed(&["--hmc-metric", "gradients"], &old), Some(true));
        assert_eq!(resumed(&["--hmc-metric", "draws"], &new), Some(false));
        // not a fit config (no hmc settings): nothing kept
        let mut c = config(&[]);
        assert!(!c.keep_recorded_metric(&serde_json::json!({})));
    }
}
