//! `infer`: thin command-line front end of the lens-modelling library.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use infer::inference::MapOptions;
use infer::pipeline::demo::{DemoOptions, run_demo};
use infer::pipeline::fit::{FitConfig, RunTarget, Stages, run_fit};
use infer::pipeline::fit_report::render_fit;
use infer::pipeline::mock::{MockOptions, run_mock};
use infer::pipeline::study::{
    Shard, SourceImages, StudyConfig, quick_settings, render_text, run_study, run_summarize,
};
use std::path::PathBuf;

/// `println!` that stops quietly when stdout is closed (e.g. piped into `head`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "infer",
    version,
    about = "Strong-lens inference with a learned VAE source prior (Chianese et al. 2020; GIGA-Lens)"
)]
struct Cli {
    /// Compute device: flex (default, pure Rust) or tch (needs the `tch` feature).
    #[arg(long, global = true, default_value = "flex")]
    device: String,
    /// Worker threads (default: one per core). Pins every parallel kernel, e.g. to a cluster task's
    /// cores (`--threads $SLURM_CPUS_PER_TASK`).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate an observation from a model file's simulation distributions.
    Mock(MockArgs),
    /// Fit an observation: multistart MAP -> full-rank VI -> preconditioned HMC.
    Fit(FitArgs),
    /// Mock a lens with the shipped prior and fit it (the README's main job).
    Demo(DemoArgs),
    /// Recovery study: mock n systems from the model's simulation distributions and fit each
    /// (GIGA-Lens Sec. 3, Table 2), in shards that resume; `study summarize` merges them.
    Study(StudyArgs),
    /// Speed figures of the lens model (value + gradient per sample).
    Bench(BenchArgs),
}

#[derive(Args)]
struct MockArgs {
    /// Model file (e.g. infer/models/chianese2020.toml).
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (obs.fits, model.fits, noise.fits, mask.fits, source.fits, truths.json).
    #[arg(long)]
    out: PathBuf,
    /// VAE checkpoint for a vae source (default: the model file's, else checkpoints/default).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Background noise sigma, overriding the model file (paper: 0.333, 0.1, 0.0333).
    #[arg(long)]
    sigma_noise: Option<f64>,
    /// Use image INDEX of a prepared data set (.h5) or a FITS image as the source (paper Sec. 5.1).
    #[arg(long, value_name = "FILE")]
    source_image: Option<PathBuf>,
    #[arg(long, default_value_t = 0, requires = "source_image")]
    index: usize,
}

#[derive(Args)]
struct FitArgs {
    /// Observation FITS (primary HDU).
    #[arg(long)]
    obs: PathBuf,
    /// Model file (grid, PSF, noise, components, priors).
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Per-pixel noise sigma (FITS), replacing the model file's background term.
    #[arg(long)]
    noise_map: Option<PathBuf>,
    /// Mask (FITS, non-zero = use the pixel).
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Truths JSON (default: truths.json beside the observation, written by `infer mock`).
    #[arg(long)]
    truths: Option<PathBuf>,
    /// Run directory (default: <experiments>/fit-<time>-<name>).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the interrupted run in this directory.
    #[arg(long)]
    resume: Option<PathBuf>,
    #[arg(long, default_value = "experiments")]
    experiments: PathBuf,
    #[arg(long, default_value = "fit")]
    name: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    settings: FitSettings,
}

/// Pipeline settings shared by `fit` and `study`.
#[derive(Args)]
struct FitSettings {
    /// Stages to run, comma-separated subset of map,vi,hmc.
    #[arg(long, default_value = "map,vi,hmc")]
    stages: String,
    /// Start from these settings: `arclight` (default: 100 annealed MAP starts x 300 steps halved twice,
    /// retried up to twice while chi^2/dof is off,
    /// Laplace-started VI of 150 x 50 draws, 8 HMC chains x (150 + 600) with warm-up mass-matrix adaptation
    /// and L = 10, sampling again up to twice while unconverged) or `table1` (GIGA-Lens Table 1 exactly: MAP on the full model, VI from 1e-6 I, 1000 x 500
    /// draws; 50 chains x (250 + 750) preconditioned by VI alone, L = 5). The flags below override either.
    #[arg(long, default_value = "arclight", value_parser = ["arclight", "table1"])]
    preset: String,
    /// MAP starts n_MAP (100; table1: 300, GIGA-Lens Table 1).
    #[arg(long)]
    map_starts: Option<usize>,
    /// Further batches of n_MAP fresh starts while the best MAP's chi^2/dof is more than 5 sigma from 1
    /// (2; table1: 0).
    #[arg(long)]
    map_retries: Option<usize>,
    /// MAP Adam iterations K_MAP (300).
    #[arg(long)]
    map_steps: Option<usize>,
    /// Successive-halving rounds of the MAP starts (2; 0: off, as in GIGA-Lens and table1). With R rounds the
    /// worse half of the running starts stops after each of the first R of R + 1 equal segments: 300 starts
    /// with R = 2 cost what 175 cost without halving.
    #[arg(long)]
    map_halving: Option<usize>,
    /// Anneal the MAP: the log-likelihood enters with weight beta rising geometrically from this value to
    /// 1 over the first segment, so the early steps lean on the prior (1e-3; 1: off, as in table1).
    #[arg(long)]
    map_temper: Option<f64>,
    /// Model the MAP starts run on: `full` (default: the model as written, as in GIGA-Lens) or `coarse` (the
    /// first 2/3 of the steps without supersampling, one ray per pixel: ~1.7x faster, but on 1 of 61 study
    /// systems it led every start into a wrong mode)
    #[arg(long, value_parser = ["coarse", "full"])]
    map_model: Option<String>,
    /// Newton-polish the best N MAP starts (5; table1: 0).
    #[arg(long)]
    polish_starts: Option<usize>,
    /// Maximum L-BFGS iterations of the polish, per start (2000).
    #[arg(long)]
    polish_iters: Option<usize>,
    /// Levenberg-Marquardt Newton iterations of the polish, per start, before its L-BFGS (0: one Hessian,
    /// no step, only the L-BFGS preconditioner)
    #[arg(long)]
    polish_newton: Option<usize>,
    /// L-BFGS of the polish: `preconditioned` (default: in coordinates whitened by the Newton stage's
    /// Hessian) or `plain`
    #[arg(long, value_parser = ["preconditioned", "plain"])]
    polish_lbfgs: Option<String>,
    /// VI iterations K_VI (150; Table 1: 1000).
    #[arg(long)]
    vi_steps: Option<usize>,
    /// VI draws per iteration n_VI (50; Table 1: 500).
    #[arg(long)]
    vi_samples: Option<usize>,
    /// HMC chains n_HMC (8; Table 1: 50).
    #[arg(long)]
    hmc_chains: Option<usize>,
    /// HMC burn-in n_burn (150; Table 1: 250).
    #[arg(long)]
    hmc_burn: Option<usize>,
    /// HMC recorded draws n_sample per chain (600; Table 1: 750).
    #[arg(long)]
    hmc_samples: Option<usize>,
    /// Target acceptance of the HMC step-size adaptation (0.9; Table 1: 0.75); higher means smaller steps
    /// (Stan's adapt_delta: the remedy for divergences in heavy-tailed posteriors)
    #[arg(long)]
    hmc_target_accept: Option<f64>,
    /// HMC trajectory length: `chees` (default: adapted during warm-up by ChEES, as GIGA-Lens' TFP
    /// sampler does) or `fixed` (L leapfrog steps on average, jittered; table1)
    #[arg(long, value_parser = ["chees", "fixed"])]
    hmc_trajectory: Option<String>,
    /// Mean leapfrog steps L with a fixed trajectory (10; table1: 5); with ChEES, L eps0 is the initial
    /// maximum trajectory length
    #[arg(long)]
    hmc_leapfrog: Option<usize>,
    /// HMC sampling rounds at most (3; table1: 1): while the draws miss R-hat < 1.01, bulk and tail
    /// ESS >= 400 or <= 1% divergences, they become warm-up and the chains sample again, with the mass
    /// matrix re-estimated from them (and a higher target acceptance after divergences)
    #[arg(long)]
    hmc_rounds: Option<usize>,
    /// Most draws per chain a round short of draws adds by continuing its chains, as a multiple of
    /// --hmc-samples (3; table1: 0): sized from its R-hat and ESS; a round that is not the last
    /// continues only if one round's draws suffice
    #[arg(long)]
    hmc_extend: Option<f64>,
}

impl FitSettings {
    fn apply(&self, cfg: &mut FitConfig) -> Result<()> {
        cfg.stages = Stages::parse(&self.stages)?;
        if self.preset == "table1" {
            let defaults = FitConfig::table1(cfg.obs.clone(), cfg.model.clone());
            cfg.map_starts = defaults.map_starts;
            cfg.map_retries = defaults.map_retries;
            cfg.map = defaults.map;
            cfg.map_coarse = false;
            cfg.map.halving_rounds = 0;
            cfg.hmc_chains = defaults.hmc_chains;
            cfg.hmc = infer::inference::HmcOptions {
                seed: cfg.hmc.seed,
                ..defaults.hmc
            };
            cfg.vi = infer::inference::ViOptions::gigalens_table1();
            cfg.hmc.adapt_mass = false;
            cfg.hmc.n_leapfrog = 5;
            cfg.hmc.retry = infer::inference::hmc::RetryOptions::single();
            cfg.polish_starts = 0;
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

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct StudyArgs {
    #[command(subcommand)]
    action: Option<StudyAction>,
    /// Model file whose simulation distributions the mocks are drawn from.
    #[arg(long, required = true)]
    model: Option<PathBuf>,
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Number of mock systems (GIGA-Lens: 100).
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// System i uses seed + i for its mock and its fit.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Study directory of this shard (study.json, results/, systems/, its run record).
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    /// Run shard K of M: the systems i with i mod M = K - 1.
    #[arg(long, value_name = "K/M", default_value = "1/1")]
    shard: String,
    /// Continue the study in --out (skip systems with a result, restart a partial one); starts it
    /// if --out is new. Refused if the model, seed, n, settings or shard differ from the recorded ones.
    #[arg(long)]
    resume: bool,
    /// Lens real galaxies: each system's source is an image of this prepared data set (`train-vae
    /// prepare`), in a permutation of the split seeded by --seed (no repeats until all are used), in place of the model's VAE source (as `infer mock
    /// --source-image`). The fit still uses the model's source prior.
    #[arg(long)]
    source_images: Option<PathBuf>,
    /// Compare the priors of a `train-vae sweep` (its folder): the same study (same mocks, same seeds) is
    /// run with every setting's checkpoint into `--out/<setting>/`, then `--out/comparison.{json,csv,png}`
    /// tabulate lens bias, sd(z), 68% coverage, chi^2/dof, R-hat/ESS and time against latent dimension.
    /// Use with --source-images so the sources are real galaxies, not draws of one of the priors.
    #[arg(long, conflicts_with = "checkpoint")]
    priors_from: Option<PathBuf>,
    /// Split of --source-images the galaxies come from (test: galaxies the prior was not trained on).
    #[arg(long, default_value = "test")]
    source_split: String,
    /// Smoke settings (16 MAP starts, VI 40 x 8, 4 chains x (40 + 40) HMC) to try the machinery: far
    /// too short for calibration, so systems come out flagged (ESS). Flags below override them.
    #[arg(long)]
    quick: bool,
    #[command(flatten)]
    settings: FitSettings,
}

#[derive(Subcommand)]
enum StudyAction {
    /// Merge the results of study directories (shards) into one summary: Table 2, interval coverage,
    /// z-score and SBC rank histograms, times, flagged systems (JSON, CSV, PNG).
    Summarize(SummarizeArgs),
}

#[derive(Args)]
struct SummarizeArgs {
    /// Study directories (the --out of each shard).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Folder for summary.json, artifacts/table.csv, artifacts/systems.csv and the figures.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct DemoArgs {
    /// Model file (default: infer/models/demo.toml of this checkout).
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "experiments")]
    experiments: PathBuf,
    /// Folder the mock observation is written to.
    #[arg(long, default_value = "datasets/mocks")]
    mocks: PathBuf,
    /// Fewer iterations everywhere (seconds, for smoke tests).
    #[arg(long)]
    quick: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// Timed repetitions per figure.
    #[arg(long, default_value_t = 5)]
    reps: usize,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("infer: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        infer::threads::pin_threads(n)?;
    }
    let device_choice: arclight_core::DeviceChoice = cli.device.parse()?;
    let device = device_choice.device()?;
    match cli.command {
        Command::Mock(a) => {
            let r = run_mock(
                &MockOptions {
                    model: a.model,
                    seed: a.seed,
                    out: a.out,
                    checkpoint: a.checkpoint,
                    sigma_noise: a.sigma_noise,
                    source_image: a.source_image.map(|f| (f, a.index)),
                    source_half_width: None,
                },
                &device,
            )?;
            out!(
                "mock written to {} ({}x{}, S/N {:.1}, sigma_noise {})",
                r.out.display(),
                r.ny,
                r.nx,
                r.snr,
                r.sigma_noise
            );
            for (k, v) in &r.truths {
                out!("  {k:<18} {v:>10.4}");
            }
        }
        Command::Fit(a) => {
            let mut cfg = FitConfig::new(a.obs, a.model);
            cfg.checkpoint = a.checkpoint;
            cfg.noise_map = a.noise_map;
            cfg.mask = a.mask;
            cfg.truths = a.truths;
            cfg.seed = a.seed;
            a.settings.apply(&mut cfg)?;
            cfg.device = device_choice.to_string();
            let target = match (a.resume, a.out) {
                (Some(dir), _) => RunTarget::Resume(dir),
                (None, Some(dir)) => RunTarget::At(dir),
                (None, None) => RunTarget::New {
                    root: a.experiments,
                    name: a.name,
                },
            };
            let out = run_fit(&cfg, target, &device)?;
            out!("{}", render_fit(&out).trim_end());
        }
        Command::Demo(a) => {
            let out = run_demo(
                &DemoOptions {
                    model: a.model.unwrap_or_else(|| {
                        infer::pipeline::problem::resolve_shipped("infer/models/demo.toml")
                    }),
                    checkpoint: a.checkpoint,
                    seed: a.seed,
                    experiments: a.experiments,
                    mocks: a.mocks,
                    quick: a.quick,
                },
                &device,
            )?;
            out!("{}", render_fit(&out).trim_end());
        }
        Command::Study(a) => match a.action {
            Some(StudyAction::Summarize(b)) => {
                let (_, text) = run_summarize(&b.dirs, &b.out)?;
                out!("{text}");
                out!("summary: {}", b.out.join("summary.json").display());
            }
            None => {
                let (Some(model), Some(dir)) = (a.model, a.out) else {
                    anyhow::bail!("study: --model and --out are required");
                };
                let mut fit = FitConfig::new(PathBuf::new(), model.clone());
                if a.quick {
                    quick_settings(&mut fit);
                }
                a.settings.apply(&mut fit)?;
                fit.device = device_choice.to_string();
                let cfg = StudyConfig {
                    model,
                    checkpoint: a.checkpoint,
                    n_systems: a.n,
                    seed: a.seed,
                    fit,
                    quick: a.quick,
                    source_images: match &a.source_images {
                        Some(f) => Some(SourceImages::new(f, &a.source_split)?),
                        None => None,
                    },
                };
                let shard = Shard::parse(&a.shard)?;
                if let Some(sweep) = &a.priors_from {
                    let rows = infer::pipeline::study::priors::compare_priors(
                        &cfg, sweep, &dir, shard, &device,
                    )?;
                    out!(
                        "{}",
                        infer::pipeline::study::priors::render_comparison(&rows)
                    );
                    out!("comparison: {}", dir.join("comparison.json").display());
                    return Ok(());
                }
                let o = run_study(&cfg, &dir, shard, a.resume, &device)?;
                out!(
                    "study shard {shard} in {}: {} systems fitted now, {} kept from before",
                    o.dir.display(),
                    o.ran,
                    o.kept
                );
                out!("{}", render_text(&o.summary));
            }
        },
        Command::Bench(a) => infer::bench::run(a.reps, &device)?,
    }
    Ok(())
}
