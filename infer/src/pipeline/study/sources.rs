//! Real-galaxy sources for a study (Chianese et al. Sec. 5 lenses held-out COSMOS galaxies, not draws of
//! the prior under test): system i lenses image k of one split of a prepared data set, k drawn from the
//! system's seed, in place of the model's VAE source (as `infer mock --source-image`).

use anyhow::{Context, Result, ensure};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use train_vae::data::store::{Split, split_sizes};

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

    /// The image of the system with `seed`, as the index `infer mock --source-image` takes (the
    /// test split first, then validation, then train).
    pub fn index_for(&self, seed: u64) -> Result<usize> {
        let sp: Split = self.split.parse()?;
        let [train, val, test] = split_sizes(&self.file)?;
        let (offset, n) = match sp {
            Split::Test => (0, test),
            Split::Validation => (test, val),
            Split::Train => (test + val, train),
        };
        ensure!(n > 0, "{}: the {} split has no images", self.file.display(), self.split);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x0053_5243_5f49_4d47);
        Ok(offset + rng.random_range(0..n))
    }
}
