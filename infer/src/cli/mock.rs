//! `infer mock`: simulate an observation from a model file's simulation distributions.

use anyhow::Result;
use burn::tensor::Device;
use clap::Args;
use std::path::PathBuf;

use crate::out;
use crate::pipeline::mock::{MockOptions, run_mock};

#[derive(Args)]
pub struct MockArgs {
    /// Model file (e.g. infer/models/chianese2020.toml).
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (obs.fits, model.fits, noise.fits, mask.fits, source.fits, truths.json).
    #[arg(long)]
    pub out: PathBuf,
    /// VAE checkpoint for a vae source (default: the model file's, else checkpoints/default).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Background noise sigma, overriding the model file (paper: 0.333, 0.1, 0.0333).
    #[arg(long)]
    pub sigma_noise: Option<f64>,
    /// Use image INDEX of a prepared data set (.h5) or a FITS image as the source (paper Sec. 5.1).
    #[arg(long, value_name = "FILE")]
    pub source_image: Option<PathBuf>,
    #[arg(long, default_value_t = 0, requires = "source_image")]
    pub index: usize,
}

/// Run `infer mock`.
pub fn run(a: MockArgs, device: &Device) -> Result<()> {
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
        device,
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
    Ok(())
}
