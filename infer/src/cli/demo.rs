//! `infer demo`: mock a lens with the shipped prior and fit it (the README's main job).

use anyhow::Result;
use burn::tensor::Device;
use clap::Args;
use std::path::PathBuf;

use crate::out;
use crate::pipeline::demo::{DemoOptions, run_demo};
use crate::pipeline::fit_report::render_fit;

#[derive(Args)]
pub struct DemoArgs {
    /// Model file (default: infer/models/demo.toml of this checkout).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    /// Folder the mock observation is written to.
    #[arg(long, default_value = "datasets/mocks")]
    pub mocks: PathBuf,
    /// Fewer iterations everywhere (seconds, for smoke tests).
    #[arg(long)]
    pub quick: bool,
}

/// Run `infer demo`.
pub fn run(a: DemoArgs, device: &Device) -> Result<()> {
    let out = run_demo(
        &DemoOptions {
            model: a.model.unwrap_or_else(|| {
                crate::pipeline::problem::resolve_shipped("infer/models/demo.toml")
            }),
            checkpoint: a.checkpoint,
            seed: a.seed,
            experiments: a.experiments,
            mocks: a.mocks,
            quick: a.quick,
        },
        device,
    )?;
    out!("{}", render_fit(&out).trim_end());
    Ok(())
}
