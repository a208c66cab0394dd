//! The on-disk checkpoint: a directory `checkpoints/<name>/` that `infer` loads its source model
//! from. Format version [`FORMAT_VERSION`]:
//!
//! ```text
//! checkpoint.json   CheckpointMeta: format_version, architecture {latent_dim, widths, head_width,
//!                   image_size, sigma_d}, data {normalisation: "max", path, provenance (from the
//!                   HDF5 data set)}, prior {scale, n_images} (null until training finished),
//!                   training {run_id, best_epoch, best_val_elbo, epochs_completed, finished},
//!                   files {decoder, encoder?, prior?}
//! decoder.bpk       decoder weights of the best epoch (burnpack, burn-store 0.22), BatchNorm
//!                   running statistics included
//! encoder.bpk       encoder weights of the best epoch (absent in a --decoder-only export)
//! prior.json        LatentPrior: mean, covariance x scale, Cholesky factor (f64), see `prior`
//! training/         resume state of the last complete epoch (see train::state); absent in a
//!                   --decoder-only export
//! ```
//!
//! The whole directory is replaced at once: a new version is assembled in a hidden sibling
//! (`.<name>.staging-<pid>`), files that did not change are hard-linked from the current version,
//! and [`arclight_core::atomic::replace_dir`] swaps it in. A `kill -9` leaves either the old or
//! the new directory (or, between the two renames of the swap, the old one under
//! `.<name>.old-<pid>`, which [`recover_interrupted_swap`] moves back).
//!
//! # Public API for `infer`
//!
//! ```ignore
//! let loaded = arclight_vae::checkpoint::load_decoder(Path::new("checkpoints/default"), &device)?;
//! let image: Tensor<4> = loaded.decoder.forward(z);   // z: Tensor<2> [B, D] -> [B, 1, 64, 64]
//! loaded.prior.mean / .cov / .chol                    // f64, D and D x D row-major
//! ```

use crate::model::{Decoder, Encoder, Vae, VaeConfig};
pub use crate::prior::LatentPrior;
use anyhow::{Context, Result, anyhow, bail, ensure};
use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the checkpoint layout written by this code; loaders refuse any other.
pub const FORMAT_VERSION: u32 = 1;

/// File names inside a checkpoint directory.
pub const META_FILE: &str = "checkpoint.json";
pub const DECODER_FILE: &str = "decoder.bpk";
pub const ENCODER_FILE: &str = "encoder.bpk";
pub const PRIOR_FILE: &str = "prior.json";
/// Sub-directory with the resume state of the last complete epoch.
pub const TRAINING_DIR: &str = "training";

/// Where the training images came from and how they were normalised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// Pixel normalisation of the training images: `"max"` (each image divided by its maximum
    /// pixel, Sec. 2.2). A source image given to the decoder's likelihood should be on this scale.
    pub normalisation: String,
    /// The HDF5 data set the model was trained on.
    pub path: String,
    /// The data set's provenance attribute (inputs, cuts, counts, seed).
    pub provenance: serde_json::Value,
}

/// How the latent prior was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriorInfo {
    /// Covariance factor (paper: 9).
    pub scale: f64,
    /// Training images encoded for the fit.
    pub n_images: usize,
}

/// Which training run produced the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Run id under `experiments/`.
    pub run_id: String,
    /// Epoch (1-based) whose weights these are.
    pub best_epoch: usize,
    /// Validation ELBO of that epoch (nats per image, higher is better).
    pub best_val_elbo: f64,
    /// Epochs completed when the checkpoint was written.
    pub epochs_completed: usize,
    /// True once training ended and the prior was fitted.
    pub finished: bool,
}

/// Files present in the directory (relative names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileList {
    pub decoder: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<String>,
}

/// Contents of `checkpoint.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format_version: u32,
    pub architecture: VaeConfig,
    pub data: DataInfo,
    /// `None` while training is still running (no prior fitted yet).
    pub prior: Option<PriorInfo>,
    pub training: TrainingInfo,
    pub files: FileList,
}

/// A decoder ready for inference, with its latent prior. Returned by [`load_decoder`].
#[derive(Clone, Debug)]
pub struct LoadedDecoder {
    /// mu_d(z), in validation mode (BatchNorm uses its running statistics), on the inner
    /// (non-autodiff) device. For gradients w.r.t. z, put z on the autodiff device with
    /// `require_grad()`; the weights stay constants.
    pub decoder: Decoder,
    /// The latent prior p(z) (Sec. 2.1; covariance already scaled).
    pub prior: LatentPrior,
    /// Latent dimension D (= decoder input width = prior dimension).
    pub latent_dim: usize,
    /// Everything in `checkpoint.json`.
    pub meta: CheckpointMeta,
}

/// Read and check `checkpoint.json` of the checkpoint directory `dir`.
pub fn read_meta(dir: &Path) -> Result<CheckpointMeta> {
    if !dir.is_dir() {
        bail!("{}: checkpoint directory not found", dir.display());
    }
    let path = dir.join(META_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: cannot read (is {} a checkpoint directory?)",
            path.display(),
            dir.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let version = value.get("format_version").and_then(|v| v.as_u64());
    match version {
        Some(v) if v == FORMAT_VERSION as u64 => {}
        Some(v) => bail!(
            "{}: checkpoint format_version {v}, this build reads version {FORMAT_VERSION}",
            path.display()
        ),
        None => bail!(
            "{}: no format_version: not an arclight checkpoint",
            path.display()
        ),
    }
    let meta: CheckpointMeta = serde_json::from_value(value)
        .with_context(|| format!("{}: malformed checkpoint metadata", path.display()))?;
    meta.architecture
        .validate()
        .with_context(|| format!("{}: invalid architecture", path.display()))?;
    Ok(meta)
}

/// Load the decoder and latent prior of checkpoint `dir` (the encoder is not needed).
///
/// Errors name the file and the mismatch: unknown format version, missing files, weight shapes
/// that do not match the architecture, a prior whose dimension differs from the latent size.
pub fn load_decoder(dir: &Path, device: &Device) -> Result<LoadedDecoder> {
    let meta = read_meta(dir)?;
    let arch = &meta.architecture;
    let prior_name = meta.files.prior.clone().ok_or_else(|| {
        anyhow!(
            "{}: the checkpoint has no latent prior yet (training has not finished; resume it with \
             `train-vae train --resume`)",
            dir.join(META_FILE).display()
        )
    })?;
    let prior_path = dir.join(&prior_name);
    let prior = LatentPrior::load(&prior_path)?;
    ensure!(
        prior.latent_dim == arch.latent_dim,
        "{}: latent prior has dimension {}, but the architecture in {} has latent_dim {}",
        prior_path.display(),
        prior.latent_dim,
        dir.join(META_FILE).display(),
        arch.latent_dim
    );
    let decoder = load_decoder_weights(dir, &meta, device)?;
    Ok(LoadedDecoder {
        decoder: decoder.valid(),
        latent_dim: arch.latent_dim,
        prior,
        meta,
    })
}

/// The decoder of checkpoint `dir` in training mode (on `device`), for further training.
pub fn load_decoder_weights(dir: &Path, meta: &CheckpointMeta, device: &Device) -> Result<Decoder> {
    let mut decoder = Decoder::placeholder(&meta.architecture, device);
    load_weights(
        &mut decoder,
        &dir.join(&meta.files.decoder),
        &meta.architecture,
    )?;
    Ok(decoder)
}

/// Load the whole VAE (encoder + decoder) of checkpoint `dir` on `device`, in training mode.
pub fn load_vae(dir: &Path, device: &Device) -> Result<(Vae, CheckpointMeta)> {
    let meta = read_meta(dir)?;
    let enc_name = meta.files.encoder.clone().ok_or_else(|| {
        anyhow!(
            "{}: this is a decoder-only checkpoint (no encoder weights); training from it or \
             evaluating reconstructions needs a full checkpoint",
            dir.display()
        )
    })?;
    let decoder = load_decoder_weights(dir, &meta, device)?;
    let mut encoder = Encoder::placeholder(&meta.architecture, device);
    load_weights(&mut encoder, &dir.join(enc_name), &meta.architecture)?;
    Ok((Vae { encoder, decoder }, meta))
}

/// Write `module`'s weights (with parameter ids) to `path` as burnpack, replacing any file there.
pub fn save_weights<M: Module>(module: &M, path: &Path) -> Result<()> {
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .overwrite(true);
    module
        .save_into(&mut store)
        .map_err(|e| anyhow!("{}: cannot write weights ({e})", path.display()))
}

/// Load weights saved by [`save_weights`] into `module`, which must have the same structure.
/// A shape mismatch or a missing tensor is an error that names the file and the architecture.
pub fn load_weights<M: Module>(module: &mut M, path: &Path, arch: &VaeConfig) -> Result<()> {
    if !path.is_file() {
        bail!("{}: weight file not found", path.display());
    }
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    let result = module.load_from(&mut store).map_err(|e| {
        anyhow!(
            "{}: cannot load the weights (a damaged or truncated file, or weights that do not match the architecture: latent_dim {}, widths {:?}, head_width {}): {e}",
            path.display(),
            arch.latent_dim,
            arch.widths,
            arch.head_width
        )
    })?;
    ensure!(
        result.unused.is_empty(),
        "{}: weights do not match the architecture: unexpected tensors {:?}",
        path.display(),
        result.unused
    );
    Ok(())
}

/// A new version of a checkpoint directory being assembled next to it.
///
/// Dropped without [`Staging::commit`], it removes itself and the current version is untouched.
pub struct Staging {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staging {
    /// Start a new version of `target`.
    pub fn new(target: &Path) -> Result<Staging> {
        let name = target
            .file_name()
            .ok_or_else(|| {
                anyhow!(
                    "{}: not a usable checkpoint directory name",
                    target.display()
                )
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let tmp = parent.join(format!(".{name}.staging-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)
                .with_context(|| format!("cannot clear {}", tmp.display()))?;
        }
        std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(Staging {
            tmp,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// The directory being filled.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Carry `rel` (a file or a directory) over unchanged from the current version, by hard link
    /// (copy where links are not possible). Returns false if the current version lacks it.
    pub fn keep(&self, rel: &str) -> Result<bool> {
        let src = self.target.join(rel);
        if !src.exists() {
            return Ok(false);
        }
        link_tree(&src, &self.tmp.join(rel))?;
        Ok(true)
    }

    /// Swap the new version in (see the module docs).
    pub fn commit(mut self) -> Result<()> {
        sync_tree(&self.tmp)?;
        arclight_core::atomic::replace_dir(&self.tmp, &self.target).with_context(|| {
            format!(
                "cannot install the new checkpoint at {}",
                self.target.display()
            )
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

fn link_tree(src: &Path, dst: &Path) -> Result<()> {
    if src.is_dir() {
        std::fs::create_dir_all(dst).with_context(|| format!("cannot create {}", dst.display()))?;
        for entry in
            std::fs::read_dir(src).with_context(|| format!("cannot list {}", src.display()))?
        {
            let entry = entry?;
            link_tree(&entry.path(), &dst.join(entry.file_name()))?;
        }
        return Ok(());
    }
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst)
            .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
    }
    Ok(())
}

/// fsync every file of a directory tree so the swap never exposes unwritten data after a crash.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = entry?.path();
        if p.is_dir() {
            sync_tree(&p)?;
        } else {
            std::fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot sync {}", p.display()))?;
        }
    }
    Ok(())
}

/// If a process was killed between the two renames of a directory swap, `target` is missing and
/// its previous version sits at `.<name>.old-<pid>`: move it back. Also removes stale staging
/// directories. Returns true if something was recovered.
pub fn recover_interrupted_swap(target: &Path) -> Result<bool> {
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(false);
    };
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&parent) else {
        return Ok(false);
    };
    let old_prefix = format!(".{name}.old-");
    let staging_prefix = format!(".{name}.staging-");
    let mut recovered = false;
    for entry in entries.flatten() {
        let fname = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if fname.starts_with(&old_prefix) {
            if !target.exists() {
                std::fs::rename(&path, target).with_context(|| {
                    format!("cannot restore {} to {}", path.display(), target.display())
                })?;
                recovered = true;
            } else {
                let _ = std::fs::remove_dir_all(&path);
            }
        } else if fname.starts_with(&staging_prefix) {
            let pid: Option<u32> = fname[staging_prefix.len()..].parse().ok();
            if pid.is_none_or(|p| p != std::process::id() && !arclight_core::record::pid_alive(p)) {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_commit_and_abort() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("ck");
        let s = Staging::new(&target).unwrap();
        std::fs::write(s.path().join("a"), b"1").unwrap();
        s.commit().unwrap();
        assert_eq!(std::fs::read(target.join("a")).unwrap(), b"1");
        {
            let s = Staging::new(&target).unwrap();
            assert!(s.keep("a").unwrap());
            assert!(!s.keep("missing").unwrap());
            std::fs::write(s.path().join("b"), b"2").unwrap();
            // dropped without commit
        }
        assert!(!target.join("b").exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
        let s = Staging::new(&target).unwrap();
        s.keep("a").unwrap();
        std::fs::write(s.path().join("b"), b"2").unwrap();
        s.commit().unwrap();
        assert_eq!(std::fs::read(target.join("a")).unwrap(), b"1");
        assert_eq!(std::fs::read(target.join("b")).unwrap(), b"2");
        // A swap interrupted between its renames is recovered.
        std::fs::rename(&target, root.path().join(".ck.old-4242")).unwrap();
        assert!(recover_interrupted_swap(&target).unwrap());
        assert_eq!(std::fs::read(target.join("b")).unwrap(), b"2");
    }
}
