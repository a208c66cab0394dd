//! Shared helpers of the `train_*` integration tests: a tiny synthetic data set and a tiny VAE
//! configuration so that every test trains in seconds.
#![allow(dead_code)]

use arclight_core::DeviceChoice;
use arclight_vae::dataset::{Split, write_sets};
use arclight_vae::model::VaeConfig;
use std::path::{Path, PathBuf};
use train_vae::data::synth::{SynthConfig, generate_range};
use train_vae::train::TrainConfig;
use train_vae::train::config::{ADAM_EPSILON, PAPER_BETAS};

/// A small network: same layer stack as Tables D1/D2, narrow channels.
pub fn tiny_arch() -> VaeConfig {
    VaeConfig {
        latent_dim: 4,
        widths: [4, 8, 8, 16],
        head_width: 32,
        ..VaeConfig::default()
    }
}

/// Write a synthetic data set with `n_train` / `n_val` / `n_test` images to `dir/data.h5`.
pub fn tiny_data(dir: &Path, n_train: usize, n_val: usize, n_test: usize) -> PathBuf {
    let cfg = SynthConfig::default();
    let (a, b, c) = (
        n_train as u64,
        (n_train + n_val) as u64,
        (n_train + n_val + n_test) as u64,
    );
    let train = generate_range(11, 0..a, &cfg);
    let val = generate_range(11, a..b, &cfg);
    let test = generate_range(11, b..c, &cfg);
    let path = dir.join("data.h5");
    write_sets(
        &path,
        &[
            (Split::Train, &train),
            (Split::Validation, &val),
            (Split::Test, &test),
        ],
        serde_json::json!({"test": "tiny synthetic set"}),
    )
    .unwrap();
    path
}

/// A training configuration for the tiny network writing into `dir`.
pub fn tiny_config(dir: &Path, data: &Path, epochs: usize) -> TrainConfig {
    TrainConfig {
        data: data.to_path_buf(),
        out: dir.join("ckpt"),
        architecture: tiny_arch(),
        epochs,
        batch_size: 8,
        lr: 1e-3,
        betas: PAPER_BETAS,
        adam_epsilon: ADAM_EPSILON,
        samples: 1,
        patience: 5,
        seed: 3,
        prior_scale: 9.0,
        log_every: 2,
        init_from: None,
        decoder_only: false,
        device: DeviceChoice::Flex,
        experiments: dir.join("experiments"),
        sweep: None,
    }
}

/// Serialises the tests of one test binary that read or write HDF5 files.
///
/// HDF5 (1.10, through hdf5-metno) opens files without close-on-exec and locks them with
/// `flock`. When another test thread spawns a process (a run record runs `git rev-parse`) while
/// a data set is open, the child inherits the descriptor and keeps the lock after the parent
/// closed the file; the next open then fails with `unable to lock file, errno = 11`. Holding
/// this guard for the whole test keeps such tests apart.
pub fn hdf5_guard() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keep progress bars out of test output.
pub fn quiet() {
    // SAFETY: tests only set this constant value; no thread reads a torn value.
    unsafe { std::env::set_var("ARCLIGHT_QUIET", "1") };
}
