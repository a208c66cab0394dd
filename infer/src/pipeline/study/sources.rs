//! Real-galaxy sources for a study (Chianese et al. Sec. 5 lenses held-out COSMOS galaxies, not draws of
//! the prior under test): system i lenses image k of one split of a prepared data set in place of the
//! model's VAE source (as `infer mock --source-image`), k the i-th entry of a permutation of the split
//! seeded by the study's seed, so no galaxy repeats before every one has been lensed.

use anyhow::{Context, Result, ensure};
use arclight_vae::dataset::{Split, split_sizes};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The data set and split the sources come from; `sha256` identifies the file's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceImages {
    pub file: PathBuf,
    pub split: String,
    pub sha256: String,
}

impl SourceImages {
    /// Checks that `split` of `file` has images, and hashes the file.
    pub fn new(file: &Path, split: &str) -> Result<Self> {
        let sp: Split = split
            .parse()
            .with_context(|| format!("--source-split {split}"))?;
        let sizes = split_sizes(file)?;
        ensure!(
            sizes[sp.index()] > 0,
            "--source-images {}: the {split} split has no images",
            file.display()
        );
        let (sha256, _) = arclight_core::hash::sha256_file(file)?;
        Ok(Self {
            file: std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()),
            split: sp.name().to_string(),
            sha256,
        })
    }

    /// The image of system `i` of a study with `seed`, as the index `infer mock --source-image` takes
    /// (the test split first, then validation, then train): entry `i mod n` of a permutation of the
    /// split's n images seeded by `seed` (depends on the system, not on the shard that runs it).
    pub fn index_for(&self, seed: u64, i: usize) -> Result<usize> {
        let sp: Split = self.split.parse()?;
        let [train, val, test] = split_sizes(&self.file)?;
        let (offset, n) = match sp {
            Split::Test => (0, test),
            Split::Validation => (test, val),
            Split::Train => (test + val, train),
        };
        ensure!(
            n > 0,
            "{}: the {} split has no images",
            self.file.display(),
            self.split
        );
        Ok(offset + permutation(n, seed)[i % n])
    }
}

/// A seeded permutation of 0..n (Fisher-Yates).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0053_5243_5f49_4d47);
    let mut p: Vec<usize> = (0..n).collect();
    for k in (1..n).rev() {
        p.swap(k, rng.random_range(0..=k));
    }
    p
}

/// How well a fit reconstructed the real galaxy it lensed: on the mock's 64x64 source-plane grid
/// (`source.fits`, half-width `source_half_width` of `truths.json`), the relative squared error
/// sum (I_fit - I_true)^2 / sum I_true^2 of the source at the posterior means (HMC, else VI or MAP
/// as the fit's summary has them) against the true one. 0 is perfect; 1 is no better than a blank.
pub fn source_residual(
    cfg: &super::StudyConfig,
    mock_dir: &Path,
    fit_dir: &Path,
    device: &burn::tensor::Device,
) -> Result<f64> {
    use burn::tensor::{Tensor, TensorData};
    let problem =
        crate::pipeline::problem::Problem::load(&cfg.model, cfg.checkpoint.as_deref(), device)?;
    let (layout, slots) = problem.layout()?;
    let fwd = problem.forward(slots, device)?;
    let read = |p: &Path| -> Result<serde_json::Value> {
        serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )
        .with_context(|| format!("{}: not JSON", p.display()))
    };
    let summary = read(&fit_dir.join("summary.json"))?;
    let truths = read(&mock_dir.join("truths.json"))?;
    let theta: Vec<f32> = layout
        .column_names()
        .iter()
        .map(|n| {
            summary["params"][n]["mean"]
                .as_f64()
                .map(|v| v as f32)
                .with_context(|| format!("{}: no posterior mean of {n}", fit_dir.display()))
        })
        .collect::<Result<_>>()?;
    let half = truths["source_half_width"]
        .as_f64()
        .context("truths.json: no source_half_width")?;
    let t = Tensor::<2>::from_data(TensorData::new(theta.clone(), [1, theta.len()]), device);
    let fit: Vec<f32> = fwd
        .source_plane(&t, 64, half)?
        .into_data()
        .iter::<f32>()
        .collect();
    let truth = arclight_core::fits::read_image_f32(&mock_dir.join("source.fits"), 0)?;
    ensure!(
        truth.data.len() == fit.len(),
        "{}: expected a 64x64 source plane",
        mock_dir.join("source.fits").display()
    );
    let n = 64;
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for r in 0..n {
        for c in 0..n {
            // FITS rows run bottom to top
            let tv = truth.data[(n - 1 - r) * n + c] as f64;
            let d = fit[r * n + c] as f64 - tv;
            num += d * d;
            den += tv * tv;
        }
    }
    ensure!(
        den > 0.0,
        "{}: the true source is blank",
        mock_dir.display()
    );
    Ok(num / den)
}
