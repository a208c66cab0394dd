//! A tiny VAE checkpoint for CLI tests: a randomly initialised narrow decoder (Table D2 layer stack,
//! widths 4-16) and a latent prior fitted to `n_images` seeded random latent vectors, written in the
//! `train-vae` checkpoint layout, so a fit with a VAE source runs in well under a second.
#![allow(dead_code)]

use arclight_vae::checkpoint::{
    CheckpointMeta, DECODER_FILE, DataInfo, FileList, LatentPrior, META_FILE, PRIOR_FILE,
    PriorInfo, TrainingInfo, save_weights,
};
use arclight_vae::model::{Decoder, VaeConfig};
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use std::path::{Path, PathBuf};

/// Write a checkpoint with latent dimension `latent_dim` whose prior is fitted to `n_images`
/// latent vectors (fewer than `latent_dim + 1` gives a rank-deficient covariance and a jitter) into
/// `dir/name`; returns its path.
pub fn tiny_checkpoint(dir: &Path, name: &str, latent_dim: usize, n_images: usize) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    let arch = VaeConfig {
        latent_dim,
        widths: [4, 8, 8, 16],
        head_width: 32,
        ..VaeConfig::default()
    };
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(latent_dim as u64);
    let decoder = Decoder::new(&arch, &mut rng, &device);
    save_weights(&decoder, &out.join(DECODER_FILE)).unwrap();
    let means: Vec<f64> = (0..n_images * latent_dim)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let prior = LatentPrior::fit(&means, n_images, latent_dim, 9.0).unwrap();
    std::fs::write(out.join(PRIOR_FILE), serde_json::to_string(&prior).unwrap()).unwrap();
    let meta = CheckpointMeta {
        format_version: arclight_vae::checkpoint::FORMAT_VERSION,
        architecture: arch,
        data: DataInfo {
            normalisation: "max".into(),
            path: "(none: test checkpoint)".into(),
            provenance: serde_json::json!({}),
        },
        prior: Some(PriorInfo {
            scale: 9.0,
            n_images,
        }),
        training: TrainingInfo {
            run_id: "test".into(),
            best_epoch: 1,
            best_val_elbo: 0.0,
            epochs_completed: 1,
            finished: true,
        },
        files: FileList {
            decoder: DECODER_FILE.into(),
            encoder: None,
            prior: Some(PRIOR_FILE.into()),
        },
    };
    std::fs::write(out.join(META_FILE), serde_json::to_string(&meta).unwrap()).unwrap();
    out
}
