//! An observed image with its noise map and mask, checked against the model file's grid.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

use super::spec::ModelSpec;

/// An observation: image (counts/s), optional per-pixel noise sigma, and the pixels to use.
#[derive(Clone, Debug)]
pub struct Observation {
    pub path: PathBuf,
    pub ny: usize,
    pub nx: usize,
    /// Row-major, row 0 = top. Masked pixels hold 0.
    pub data: Vec<f32>,
    /// Per-pixel noise sigma replacing the model file's background term, if given.
    pub noise_map: Option<Vec<f32>>,
    /// `true` where the pixel enters the likelihood.
    pub mask: Vec<bool>,
    /// Human-readable notes (e.g. NaN pixels that were masked).
    pub warnings: Vec<String>,
}

impl Observation {
    /// Read the observation FITS (primary HDU), and optionally a noise-map FITS (sigma per pixel)
    /// and a mask FITS (non-zero = use), checking every size against `spec`'s grid.
    pub fn load(
        path: &Path,
        noise_map: Option<&Path>,
        mask: Option<&Path>,
        spec: &ModelSpec,
    ) -> Result<Self> {
        let img = arclight_core::fits::read_sky_f32(path, 0).context("reading the observation")?;
        let (ny, nx) = (img.ny, img.nx);
        if (ny, nx) != (spec.grid.ny, spec.grid.nx) {
            bail!(
                "{}: the observation is {ny}x{nx} pixels but the model file {} has a {}x{} grid (grid.ny x grid.nx)",
                path.display(),
                spec.path.display(),
                spec.grid.ny,
                spec.grid.nx
            );
        }
        let mut obs = Observation::new(path, ny, nx, img.data, None, None)?;
        if let Some(p) = noise_map {
            let nm = arclight_core::fits::read_sky_f32(p, 0).context("reading the noise map")?;
            if (nm.ny, nm.nx) != (ny, nx) {
                bail!(
                    "{}: noise map is {}x{}, the observation {ny}x{nx}",
                    p.display(),
                    nm.ny,
                    nm.nx
                );
            }
            if let Some(i) = nm.data.iter().position(|s| !(*s > 0.0 && s.is_finite())) {
                bail!(
                    "{}: noise sigma must be positive and finite everywhere ({} is {})",
                    p.display(),
                    arclight_core::pixel::in_sky_order(i, ny, nx),
                    nm.data[i]
                );
            }
            obs.noise_map = Some(nm.data);
        }
        if let Some(p) = mask {
            let m = arclight_core::fits::read_sky_f32(p, 0).context("reading the mask")?;
            if (m.ny, m.nx) != (ny, nx) {
                bail!(
                    "{}: mask is {}x{}, the observation {ny}x{nx}",
                    p.display(),
                    m.ny,
                    m.nx
                );
            }
            for (use_px, v) in obs.mask.iter_mut().zip(&m.data) {
                *use_px &= *v != 0.0 && v.is_finite();
            }
            if !obs.mask.iter().any(|&b| b) {
                bail!("{}: the mask excludes every pixel", p.display());
            }
        }
        Ok(obs)
    }

    /// An in-memory observation; NaN/inf pixels are masked with a warning, all-NaN is an error.
    pub fn new(
        path: &Path,
        ny: usize,
        nx: usize,
        mut data: Vec<f32>,
        noise_map: Option<Vec<f32>>,
        mask: Option<Vec<bool>>,
    ) -> Result<Self> {
        if data.len() != ny * nx {
            bail!(
                "{}: {} pixels for a {ny}x{nx} image",
                path.display(),
                data.len()
            );
        }
        let mut mask = mask.unwrap_or_else(|| vec![true; ny * nx]);
        let mut bad = 0;
        for (v, m) in data.iter_mut().zip(mask.iter_mut()) {
            if !v.is_finite() {
                *v = 0.0;
                *m = false;
                bad += 1;
            }
        }
        let mut warnings = Vec::new();
        if bad == ny * nx {
            bail!("{}: every pixel is NaN or infinite", path.display());
        }
        if bad > 0 {
            let w = format!("{}: {bad} NaN/infinite pixels are masked", path.display());
            eprintln!("warning: {w}");
            warnings.push(w);
        }
        Ok(Observation {
            path: path.to_path_buf(),
            ny,
            nx,
            data,
            noise_map,
            mask,
            warnings,
        })
    }

    /// Number of pixels in the likelihood.
    pub fn n_used(&self) -> usize {
        self.mask.iter().filter(|&&m| m).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bad noise-map pixel is named where a user finds it: astropy's `noise[10, 10]` is FITS
    /// pixel (x=11, y=11), not "row 69" of the flipped in-memory image.
    #[test]
    fn bad_noise_pixel_is_named_in_file_coordinates() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ModelSpec::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml"),
        )
        .unwrap();
        let (ny, nx) = (spec.grid.ny, spec.grid.nx);
        assert_eq!((ny, nx), (80, 80));
        let obs = dir.path().join("obs.fits");
        arclight_core::fits::write_image_f32(&obs, ny, nx, &vec![0.5; ny * nx], &[]).unwrap();
        // the file's order, as numpy sees it: row 10, column 10
        let mut noise = vec![0.2f32; ny * nx];
        noise[10 * nx + 10] = 0.0;
        let nm = dir.path().join("noise.fits");
        arclight_core::fits::write_image_f32(&nm, ny, nx, &noise, &[]).unwrap();
        let e = format!(
            "{:#}",
            Observation::load(&obs, Some(&nm), None, &spec).unwrap_err()
        );
        assert!(
            e.contains("noise.fits")
                && e.contains(
                    "pixel (x=11, y=11) (FITS, 1-based) = [10, 10] (numpy [row, col]) is 0"
                ),
            "{e}"
        );
    }
}
