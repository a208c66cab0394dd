//! Everything a command needs to evaluate a lens model: the model file, the VAE source (if the
//! model has one), the parameter layout and the forward model on a device.

use anyhow::{Context, Result};
use burn::tensor::Device;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::forward::{FixedImage, ForwardModel};
use crate::model::layout::{self, Slots};
use crate::model::spec::{ComponentKind, ModelSpec};
use crate::prob::{MvNormal, ParamLayout};
use crate::source::vae::{Decode, VaeCheckpoint};

/// Default checkpoint of the shipped prior, relative to the working directory.
pub const DEFAULT_CHECKPOINT: &str = "checkpoints/default";

/// The shipped prior: `checkpoints/default` under the working directory, else the one of the
/// source tree this binary was built from (so commands work from any folder of a checkout).
pub fn default_checkpoint() -> PathBuf {
    resolve_shipped(DEFAULT_CHECKPOINT)
}

/// `rel` (a path relative to the repository root) if it exists from the working directory, else
/// the same path in the source tree this binary was built from.
pub fn resolve_shipped(rel: &str) -> PathBuf {
    let here = PathBuf::from(rel);
    if here.exists() {
        return here;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    if built.exists() { built } else { here }
}

/// A model file resolved into everything needed to render it.
pub struct Problem {
    pub spec: ModelSpec,
    /// The VAE decoder and latent prior, when the model has a VAE source.
    pub vae: Option<(Arc<dyn Decode>, MvNormal, PathBuf)>,
    /// Images of `pixelated` sources (by `[[source]]` index).
    pub images: Vec<Option<FixedImage>>,
    /// Warnings about the inputs (printed when loading), e.g. a degenerate latent prior.
    pub warnings: Vec<String>,
}

impl Problem {
    /// Load `model` and, if it has a VAE source, the checkpoint (`checkpoint`, else the one the
    /// model file names, else [`DEFAULT_CHECKPOINT`]).
    pub fn load(model: &Path, checkpoint: Option<&Path>, device: &Device) -> Result<Problem> {
        let spec = ModelSpec::load(model)?;
        Self::from_spec(spec, checkpoint, device)
    }

    pub fn from_spec(
        spec: ModelSpec,
        checkpoint: Option<&Path>,
        device: &Device,
    ) -> Result<Problem> {
        let mut warnings = Vec::new();
        let vae = match spec.vae_source() {
            Some(c) => {
                let dir = checkpoint
                    .map(Path::to_path_buf)
                    .or_else(|| c.file.clone())
                    .unwrap_or_else(default_checkpoint);
                let ck = VaeCheckpoint::load(&dir, device).with_context(|| {
                    format!("loading the VAE source of {}", spec.path.display())
                })?;
                let prior = ck.prior()?;
                if let Some(w) = prior_warning(&dir, ck.latent_prior()) {
                    eprintln!("warning: {w}");
                    warnings.push(w);
                }
                Some((Arc::new(ck) as Arc<dyn Decode>, prior, dir))
            }
            None => None,
        };
        if let Some((n, min, share)) = crate::model::forward::psf_of(&spec)?.negative_pixels() {
            let w = format!(
                "{}: the PSF kernel has {n} negative pixel(s) (most negative {min:.3e} of the unit-sum \
                 kernel, {:.2}% of its absolute sum): the model image can ring below zero; clip or \
                 model them if they are noise",
                spec.path.display(),
                100.0 * share
            );
            eprintln!("warning: {w}");
            warnings.push(w);
        }
        let mut images = Vec::new();
        for c in &spec.source {
            images.push(match c.kind {
                ComponentKind::Pixelated => {
                    let file = c.file.as_ref().context("pixelated source without a file")?;
                    Some(load_source_image(file, c.index)?)
                }
                _ => None,
            });
        }
        Ok(Problem {
            spec,
            vae,
            images,
            warnings,
        })
    }

    /// Priors/bijectors and slots of the modelling prior.
    pub fn layout(&self) -> Result<(ParamLayout, Slots)> {
        layout::build(&self.spec, self.vae.as_ref().map(|v| v.1.clone()))
    }

    /// Layout of the simulation distributions (for mock truths).
    pub fn sim_layout(&self) -> Result<(ParamLayout, Slots)> {
        layout::build_sim(&self.spec, self.vae.as_ref().map(|v| v.1.clone()))
    }

    /// The forward model for `slots` on `device`.
    pub fn forward(&self, slots: Slots, device: &Device) -> Result<ForwardModel> {
        ForwardModel::new(
            self.spec.clone(),
            slots,
            device,
            self.vae.as_ref().map(|v| v.0.clone()),
            &self.images,
        )
    }
}

/// Why the latent prior of checkpoint `dir` is degenerate, if it is: fitted from no more images
/// than it has dimensions (the sample covariance of n vectors has rank at most n - 1), or needing a
/// diagonal jitter to factorise. Such a p(z) confines the latent vector to a subspace (plus the
/// jitter's width), so a fit with it cannot explore the other directions.
pub fn prior_warning(dir: &Path, p: &arclight_vae::checkpoint::LatentPrior) -> Option<String> {
    let d = p.latent_dim;
    let file = dir.join(arclight_vae::checkpoint::PRIOR_FILE);
    if p.n_images > 0 && p.n_images <= d {
        Some(format!(
            "{}: the latent prior has {d} dimensions but was fitted from {} training images: its covariance \
             has rank at most {} (diagonal jitter {:.1e}), so p(z) is degenerate in {} directions; train \
             on more images than latent dimensions, or with a smaller latent_dim",
            file.display(),
            p.n_images,
            p.n_images - 1,
            p.jitter,
            d + 1 - p.n_images
        ))
    } else if p.jitter > 0.0 {
        Some(format!(
            "{}: the latent prior's covariance is numerically rank-deficient (a diagonal jitter of {:.1e} was \
             needed to factorise it{}): p(z) is nearly degenerate",
            file.display(),
            p.jitter,
            if p.n_images > 0 {
                format!("; fitted from {} images for {d} dimensions", p.n_images)
            } else {
                String::new()
            }
        ))
    } else {
        None
    }
}

/// A source image for a `pixelated` source: image `index` of a prepared data set (`.h5`, test split
/// first, then validation and train) or the primary HDU of a FITS file.
pub fn load_source_image(file: &Path, index: usize) -> Result<FixedImage> {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "fits" || ext == "fit" {
        // sky orientation, as the observation and the PSF: FITS row 1 is the bottom of the image
        let im = arclight_core::fits::read_sky_f32(file, 0)?;
        if let Some(i) = im.data.iter().position(|v| !v.is_finite()) {
            anyhow::bail!(
                "{}: the source image has a non-finite pixel ({} is {})",
                file.display(),
                arclight_core::pixel::in_sky_order(i, im.ny, im.nx),
                im.data[i]
            );
        }
        return Ok(FixedImage {
            ny: im.ny,
            nx: im.nx,
            data: im.data,
        });
    }
    use arclight_vae::dataset::{Split, read_split};
    let mut seen = 0;
    for split in [Split::Test, Split::Validation, Split::Train] {
        let set = read_split(file, split)?;
        if index < seen + set.n {
            let k = index - seen;
            let px = set.size * set.size;
            return Ok(FixedImage {
                ny: set.size,
                nx: set.size,
                data: set.images[k * px..(k + 1) * px].to_vec(),
            });
        }
        seen += set.n;
    }
    anyhow::bail!(
        "{}: image index {index} is out of range (the data set has {seen} images)",
        file.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FITS source image is read in sky orientation, as the observation and the PSF are: the
    /// file's last row (numpy's last row, the top of the sky) is row 0 in memory, so the source is
    /// not mirrored; a non-finite pixel is an error naming the file.
    #[test]
    fn a_fits_source_image_is_read_sky_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("src.fits");
        let (ny, nx) = (4, 3);
        let mut file_order = vec![0.0f32; ny * nx];
        file_order[(ny - 1) * nx + 1] = 1.0; // last row of the file: the top of the sky
        arclight_core::fits::write_image_f32(&p, ny, nx, &file_order, &[]).unwrap();
        let im = load_source_image(&p, 0).unwrap();
        assert_eq!((im.ny, im.nx), (ny, nx));
        assert_eq!(im.data[1], 1.0, "{:?}", im.data);
        file_order[0] = f32::NAN;
        arclight_core::fits::write_image_f32(&p, ny, nx, &file_order, &[]).unwrap();
        let e = format!("{:#}", load_source_image(&p, 0).unwrap_err());
        assert!(e.contains("src.fits") && e.contains("non-finite"), "{e}");
    }

    /// A pixelated PSF with negative pixels is said; the shipped GIGA-Lens model's PSF is not.
    #[test]
    fn a_negative_psf_is_said() {
        let device = Device::flex();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml");
        let p = Problem::load(&shipped, None, &device).unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let dir = tempfile::tempdir().unwrap();
        let psf = dir.path().join("psf.fits");
        let mut k = vec![0.01f32; 25];
        k[12] = 1.0;
        k[0] = -0.02;
        arclight_core::fits::write_image_f32(&psf, 5, 5, &k, &[]).unwrap();
        let text = std::fs::read_to_string(&shipped)
            .unwrap()
            .replace("psf/moffat_fwhm0.1_13x13.fits", "psf.fits");
        let model = dir.path().join("m.toml");
        std::fs::write(&model, text).unwrap();
        let p = Problem::load(&model, None, &device).unwrap();
        let w = p.warnings.join("\n");
        assert!(
            w.contains("1 negative pixel(s)") && w.contains("m.toml"),
            "{w}"
        );
    }
}
