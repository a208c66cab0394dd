//! `train-vae`: thin command-line front end; the work lives in the library.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "train-vae",
    version,
    about = "Prepare galaxy data sets and train the VAE source prior (Chianese et al. 2020)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read COSMOS/GREAT3 catalogs or a folder of cutouts, apply the paper's cuts, write an HDF5 data set.
    Prepare(train_vae::data::cli::PrepareArgs),
    /// Generate a synthetic galaxy data set (same HDF5 layout).
    Synth(train_vae::data::cli::SynthArgs),
    /// Train the VAE on a data set and fit its latent prior; writes a checkpoint directory.
    Train(train_vae::train::cli::TrainArgs),
    /// Train one checkpoint per latent dimension (and widths), evaluate each on the test split, side by
    /// side; resumable (run the same command again).
    Sweep(train_vae::sweep::SweepArgs),
    /// Evaluate a checkpoint on a data split: ELBO, chi^2/pixel, reconstruction and rotation figures.
    Eval(train_vae::eval::EvalArgs),
    /// Time the paper's VAE: training step (batch 32), decoder gradient w.r.t. z (batch 1, 64).
    Bench(train_vae::bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prepare(a) => train_vae::data::cli::prepare(a),
        Command::Synth(a) => train_vae::data::cli::synth(a),
        Command::Train(a) => train_vae::train::cli::run(a),
        Command::Sweep(a) => train_vae::sweep::run(a),
        Command::Eval(a) => train_vae::eval::run(a),
        Command::Bench(a) => train_vae::bench::run(a),
    };
    if let Err(e) = result {
        eprintln!("train-vae: error: {e:#}");
        std::process::exit(1);
    }
}
