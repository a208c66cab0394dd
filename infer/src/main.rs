//! `infer`: thin command-line front end of the lens-modelling library.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use infer::inference::MapOptions;
use infer::pipeline::demo::{DemoOptions, run_demo};
use infer::pipeline::fit::{Estimate, FitConfig, FitOutcome, RunTarget, Stages, run_fit};
use infer::pipeline::mock::{MockOptions, run_mock};
use infer::pipeline::study::{StudyConfig, StudyTarget, run_study};
use std::collections::BTreeMap;
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
    /// (GIGA-Lens Sec. 3, Table 2).
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
    /// Start from these settings: `arclight` (default: Laplace-started VI of 300 x 100 draws, HMC with
    /// warm-up mass-matrix adaptation and L = 10) or `table1` (GIGA-Lens Table 1 exactly: VI from 1e-6 I, 1000 x
    /// 500 draws; HMC preconditioned by VI alone). The flags below override either.
    #[arg(long, default_value = "arclight", value_parser = ["arclight", "table1"])]
    preset: String,
    /// MAP starts n_MAP (GIGA-Lens Table 1: 300).
    #[arg(long, default_value_t = 300)]
    map_starts: usize,
    /// MAP Adam iterations K_MAP (300).
    #[arg(long)]
    map_steps: Option<usize>,
    /// Successive-halving rounds of the MAP starts (0: off, as in GIGA-Lens). With R rounds the worse half of
    /// the running starts stops after each of the first R of R + 1 equal segments: 2N starts cost about what N
    /// cost without halving.
    #[arg(long)]
    map_halving: Option<usize>,
    /// Newton-polish the best N MAP starts (5; table1: 0).
    #[arg(long)]
    polish_starts: Option<usize>,
    /// Maximum L-BFGS iterations of the polish, per start (2000).
    #[arg(long)]
    polish_iters: Option<usize>,
    /// VI iterations K_VI (300; Table 1: 1000).
    #[arg(long)]
    vi_steps: Option<usize>,
    /// VI draws per iteration n_VI (100; Table 1: 500).
    #[arg(long)]
    vi_samples: Option<usize>,
    /// HMC chains n_HMC (50).
    #[arg(long, default_value_t = 50)]
    hmc_chains: usize,
    /// HMC burn-in n_burn (250).
    #[arg(long)]
    hmc_burn: Option<usize>,
    /// HMC recorded draws n_sample (750).
    #[arg(long)]
    hmc_samples: Option<usize>,
    /// Mean leapfrog steps L (10; table1: 5).
    #[arg(long)]
    hmc_leapfrog: Option<usize>,
}

impl FitSettings {
    fn apply(&self, cfg: &mut FitConfig) -> Result<()> {
        cfg.stages = Stages::parse(&self.stages)?;
        if self.preset == "table1" {
            cfg.vi = infer::inference::ViOptions::gigalens_table1();
            cfg.hmc.adapt_mass = false;
            cfg.hmc.n_leapfrog = 5;
            cfg.polish_starts = 0;
        }
        cfg.map_starts = self.map_starts;
        if let Some(s) = self.map_steps {
            cfg.map = MapOptions {
                keep_traces: cfg.map.keep_traces,
                ..MapOptions::with_steps(s)
            };
        }
        if let Some(r) = self.map_halving {
            cfg.map.halving_rounds = r;
        }
        if let Some(s) = self.polish_starts {
            cfg.polish_starts = s;
        }
        if let Some(n) = self.polish_iters {
            cfg.lbfgs.max_iter = n;
        }
        if let Some(s) = self.vi_steps {
            cfg.vi = cfg.vi.clone().with_steps(s);
        }
        if let Some(s) = self.vi_samples {
            cfg.vi.n_samples = s;
        }
        cfg.hmc_chains = self.hmc_chains;
        if let Some(s) = self.hmc_burn {
            cfg.hmc.n_burn = s;
        }
        if let Some(s) = self.hmc_samples {
            cfg.hmc.n_samples = s;
        }
        if let Some(s) = self.hmc_leapfrog {
            cfg.hmc.n_leapfrog = s;
        }
        Ok(())
    }
}

#[derive(Args)]
struct StudyArgs {
    /// Model file whose simulation distributions the mocks are drawn from.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Number of mock systems (GIGA-Lens: 100).
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// System i uses seed + i for its mock and its fit.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue the interrupted study in this directory.
    #[arg(long)]
    resume: Option<PathBuf>,
    #[arg(long, default_value = "experiments")]
    experiments: PathBuf,
    #[arg(long, default_value = "recovery")]
    name: String,
    #[command(flatten)]
    settings: FitSettings,
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
            print_outcome(&out);
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
            print_outcome(&out);
        }
        Command::Study(a) => {
            let mut fit = FitConfig::new(PathBuf::new(), a.model.clone());
            a.settings.apply(&mut fit)?;
            fit.device = device_choice.to_string();
            let cfg = StudyConfig {
                model: a.model,
                checkpoint: a.checkpoint,
                n_systems: a.n,
                seed: a.seed,
                fit,
            };
            let target = match a.resume {
                Some(dir) => StudyTarget::Resume(dir),
                None => StudyTarget::New {
                    root: a.experiments,
                    name: a.name,
                },
            };
            let out = run_study(&cfg, target, &device)?;
            out!("study record: {}", out.run_dir.display());
            out!(
                "{} systems fitted, {} failed",
                out.systems.len(),
                out.n_failed
            );
            out!(
                "{:<18} {:>11} {:>7} {:>6} {:>6} {:>7} {:>7} {:>8} {:>8}",
                "parameter",
                "mean error",
                "mu_z",
                "sd_z",
                "cov68",
                "<R-hat>",
                "max R",
                "<ESS>",
                "min ESS"
            );
            // vector blocks (the VAE latent z) in one line each; every row is in summary.json
            let mut blocks: BTreeMap<&str, Vec<&infer::pipeline::study::TableRow>> =
                BTreeMap::new();
            for (k, r) in &out.table {
                if let Some((block, _)) = k.split_once('[') {
                    blocks.entry(block).or_default().push(r);
                    continue;
                }
                out!(
                    "{k:<18} {:>11.4} {:>7.2} {:>6.2} {:>6.2} {:>7.4} {:>7.4} {:>8.0} {:>8.0}",
                    r.mean_error,
                    r.mu_z,
                    r.sd_z,
                    r.coverage_68,
                    r.rhat_mean,
                    r.rhat_max,
                    r.ess_mean,
                    r.ess_min
                );
            }
            for (block, rows) in blocks {
                let n = rows.len() as f64;
                let cov68 = rows.iter().map(|r| r.coverage_68).sum::<f64>() / n;
                let mu_z = rows.iter().map(|r| r.mu_z.abs()).fold(0.0, f64::max);
                // a non-finite diagnostic anywhere (no usable draws) shows as NaN, never as converged
                let all_finite = |v: &dyn Fn(&&infer::pipeline::study::TableRow) -> f64| {
                    rows.iter().map(v).all(f64::is_finite)
                };
                let rhat = if all_finite(&|r| r.rhat_max) {
                    rows.iter()
                        .map(|r| r.rhat_max)
                        .fold(f64::NEG_INFINITY, f64::max)
                } else {
                    f64::NAN
                };
                let ess = if all_finite(&|r| r.ess_min) {
                    rows.iter().map(|r| r.ess_min).fold(f64::INFINITY, f64::min)
                } else {
                    f64::NAN
                };
                out!(
                    "{block} ({} components): cov68 {cov68:.2}, max |mu_z| {mu_z:.2}, max R-hat {rhat:.4}, min ESS {ess:.0}",
                    rows.len()
                );
            }
        }
        Command::Bench(a) => infer::bench::run(a.reps, &device)?,
    }
    Ok(())
}

fn print_outcome(out: &FitOutcome) {
    out!("run record: {}", out.run_dir.display());
    if let Some(c) = out.chi2_dof {
        out!("MAP chi^2/dof = {c:.3}");
    }
    if let (Some(r), Some(e)) = (out.rhat_max, out.ess_min) {
        out!("HMC: max R-hat {r:.4}, min ESS {e:.0}");
    }
    // R-hat needs two chains, ESS one: after MAP or VI alone neither exists
    let has_rhat = out.params.iter().any(|p| p.rhat.is_finite());
    let has_ess = out.params.iter().any(|p| p.ess_bulk.is_finite());
    // vector blocks (the VAE latent z) are summarised in one line each, not row by row
    let mut blocks: BTreeMap<&str, (usize, f64, f64)> = BTreeMap::new();
    for p in out.params.iter().filter(|p| p.name.contains('[')) {
        let name = p.name.split('[').next().unwrap_or(&p.name);
        let b = blocks
            .entry(name)
            .or_insert((0, f64::NEG_INFINITY, f64::INFINITY));
        b.0 += 1;
        // NaN (a component without a usable diagnostic) stays NaN: never shown as converged
        b.1 = if p.rhat.is_nan() || b.1.is_nan() {
            f64::NAN
        } else {
            b.1.max(p.rhat)
        };
        b.2 = if p.ess_bulk.is_nan() || b.2.is_nan() {
            f64::NAN
        } else {
            b.2.min(p.ess_bulk)
        };
    }
    // after MAP alone the table holds the MAP values and their Laplace widths
    let is_map = out.estimate == Some(Estimate::Map);
    if is_map {
        out!("MAP point (sd: Laplace approximation; - where the Hessian does not determine it)");
    }
    out!(
        "{:<18} {:>10} {:>10} {:>10} {:>8} {:>8} {:>7}",
        "parameter",
        if is_map { "MAP" } else { "mean" },
        if is_map { "sd" } else { "std" },
        "truth",
        "z",
        "R-hat",
        "ESS"
    );
    let opt = |v: Option<f64>, w: usize, prec: usize| {
        v.filter(|v| v.is_finite())
            .map(|v| format!("{v:>w$.prec$}"))
            .unwrap_or_else(|| format!("{:>w$}", "-"))
    };
    for p in out.params.iter().filter(|p| !p.name.contains('[')) {
        out!(
            "{:<18} {:>10.4} {} {} {} {} {}",
            p.name,
            p.mean,
            opt(Some(p.std), 10, 4),
            opt(p.truth, 10, 4),
            opt(p.z, 8, 2),
            opt(has_rhat.then_some(p.rhat), 8, 3),
            opt(has_ess.then_some(p.ess_bulk), 7, 0)
        );
    }
    for (name, (n, rhat, ess)) in &blocks {
        if has_ess {
            let rhat = if has_rhat {
                format!("max R-hat {rhat:.3}, ")
            } else {
                String::new()
            };
            out!("{name} ({n} components): {rhat}min bulk ESS {ess:.0}");
        } else if is_map {
            out!("{name} ({n} components): MAP values in summary.json");
        }
    }
    for p in &out.plots {
        out!("figure: {}", p.display());
    }
    for (k, v) in &out.timings {
        out!("{k}: {v:.1}");
    }
}
