//! The command line of `infer`: one file per command with its arguments (clap) and what it prints;
//! `src/main.rs` only parses and reports errors.

pub mod demo;
pub mod fit;
pub mod mock;
pub mod study;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

/// `println!` that stops quietly when stdout is closed (e.g. piped into `head`) instead of panicking.
#[macro_export]
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
pub struct Cli {
    /// Compute device: flex (default, pure Rust) or tch (needs the `tch` feature).
    #[arg(long, global = true, default_value = "flex")]
    pub device: String,
    /// Worker threads (default: one per core). Pins every parallel kernel, e.g. to a cluster task's
    /// cores (`--threads $SLURM_CPUS_PER_TASK`).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Simulate an observation from a model file's simulation distributions.
    Mock(mock::MockArgs),
    /// Fit an observation: multistart MAP -> full-rank VI -> preconditioned HMC.
    Fit(fit::FitArgs),
    /// Mock a lens with the shipped prior and fit it (the README's main job).
    Demo(demo::DemoArgs),
    /// Recovery study: mock n systems from the model's simulation distributions and fit each
    /// (GIGA-Lens Sec. 3, Table 2), in shards that resume; `study summarize` merges them.
    Study(study::StudyArgs),
    /// Speed figures of the lens model (value + gradient per sample).
    Bench(BenchArgs),
}

#[derive(Args)]
pub struct BenchArgs {
    /// Timed repetitions per figure.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        crate::threads::pin_threads(n)?;
    }
    let device_choice: arclight_core::DeviceChoice = cli.device.parse()?;
    let device = device_choice.device()?;
    match cli.command {
        Command::Mock(a) => mock::run(a, &device),
        Command::Fit(a) => fit::run(a, &device, device_choice.to_string()),
        Command::Demo(a) => demo::run(a, &device),
        Command::Study(a) => study::run(a, &device, device_choice.to_string()),
        Command::Bench(a) => crate::bench::run(a.reps, &device),
    }
}
