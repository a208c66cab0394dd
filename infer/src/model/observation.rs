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
    /// Per-pixel total noise sigma (background and source Poisson noise, as an ERR map), replacing
    /// the model file's noise model, if given.
    pub noise_map: Option<Vec<f32>>,
    /// `true` where the pixel enters the likelihood.
    pub mask: Vec<bool>,
    /// Human-readable notes (e.g. NaN pixels that were masked).
    pub warnings: Vec<String>,
    /// The HDU each file was read from (`None` for a file not given).
    pub hdus: Hdus,
}

/// The HDU (0-based) each of an observation's files is read from; `None`: the primary, or the first
/// image extension when the primary is empty (see [`arclight_core::fits::image_hdu`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hdus {
    pub obs: Option<usize>,
    pub noise_map: Option<usize>,
    pub mask: Option<usize>,
}

/// A sky image from `path` at `hdu` (or the first one holding an image), with the HDU it came from.
/// A noise map or mask that would be read from the observation's own HDU is refused (an HST file's
/// first image is SCI: its ERR or DQ must be asked for).
fn read_sky(
    path: &Path,
    hdu: Option<usize>,
    what: &str,
    obs: Option<(&Path, usize)>,
) -> Result<(arclight_core::fits::Image<f32>, usize)> {
    let h =
        arclight_core::fits::image_hdu(path, hdu).with_context(|| format!("reading the {what}"))?;
    if let Some((obs_path, obs_hdu)) = obs
        && h == obs_hdu
        && same_file(path, obs_path)
    {
        let flag = if what == "mask" {
            "--mask-hdu"
        } else {
            "--noise-hdu"
        };
        bail!(
            "{}: the {what} would be read from HDU {h}, the observation's own image: choose its HDU with {flag}",
            path.display()
        );
    }
    let img = arclight_core::fits::read_sky_f32(path, h)
        .with_context(|| format!("reading the {what}"))?;
    Ok((img, h))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

impl Observation {
    /// Read the observation FITS, and optionally a noise-map FITS (sigma per pixel) and a mask FITS
    /// (non-zero = use), each from its primary HDU or first image extension, checking every size
    /// against `spec`'s grid.
    pub fn load(
        path: &Path,
        noise_map: Option<&Path>,
        mask: Option<&Path>,
        spec: &ModelSpec,
    ) -> Result<Self> {
        Self::load_hdus(path, noise_map, mask, Hdus::default(), spec)
    }

    /// [`Observation::load`] with the HDU of each file chosen.
    pub fn load_hdus(
        path: &Path,
        noise_map: Option<&Path>,
        mask: Option<&Path>,
        hdus: Hdus,
        spec: &ModelSpec,
    ) -> Result<Self> {
        let (img, obs_hdu) = read_sky(path, hdus.obs, "observation", None)?;
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
        obs.hdus.obs = Some(obs_hdu);
        // the pixel scale the file states (`infer mock` writes PIXSCALE, arcsec per pixel), in the
        // image's header or else the primary's (where multi-extension files keep shared keys)
        let pixscale = |h| {
            arclight_core::fits::read_key_f64(path, h, "PIXSCALE")
                .ok()
                .flatten()
        };
        if let Some(s) = pixscale(obs_hdu).or_else(|| (obs_hdu != 0).then(|| pixscale(0)).flatten())
            && (s / spec.grid.pixel_scale - 1.0).abs() > 1e-3
        {
            let w = format!(
                "{}: PIXSCALE {s} arcsec/pixel differs from the model file's grid.pixel_scale {}: angles would be fitted in the wrong units",
                path.display(),
                spec.grid.pixel_scale
            );
            eprintln!("warning: {w}");
            obs.warnings.push(w);
        }
        if let Some(p) = mask {
            let (m, h) = read_sky(p, hdus.mask, "mask", Some((path, obs_hdu)))?;
            obs.hdus.mask = Some(h);
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
        if let Some(p) = noise_map {
            let (mut nm, h) = read_sky(p, hdus.noise_map, "noise map", Some((path, obs_hdu)))?;
            obs.hdus.noise_map = Some(h);
            if (nm.ny, nm.nx) != (ny, nx) {
                bail!(
                    "{}: noise map is {}x{}, the observation {ny}x{nx}",
                    p.display(),
                    nm.ny,
                    nm.nx
                );
            }
            // only the pixels the likelihood uses need a sigma; a zero, negative or non-finite one
            // there means "no data" (as a zero weight does) and the pixel is masked
            let bad: Vec<usize> = (0..nm.data.len())
                .filter(|&i| obs.mask[i] && !(nm.data[i] > 0.0 && nm.data[i].is_finite()))
                .collect();
            if let Some(&i) = bad.first() {
                let w = format!(
                    "{}: {} used pixel(s) have a noise sigma that is not positive and finite (first: {} is {}); they are masked",
                    p.display(),
                    bad.len(),
                    arclight_core::pixel::in_sky_order(i, ny, nx),
                    nm.data[i]
                );
                eprintln!("warning: {w}");
                obs.warnings.push(w);
                for &i in &bad {
                    obs.mask[i] = false;
                }
                if !obs.mask.iter().any(|&b| b) {
                    bail!(
                        "{}: no pixel has a positive, finite noise sigma",
                        p.display()
                    );
                }
            }
            // unused pixels get a harmless sigma (their terms are multiplied by 0)
            for (s, &used) in nm.data.iter_mut().zip(&obs.mask) {
                if !used {
                    *s = 1.0;
                }
            }
            if spec.noise.exposure_time.is_some() {
                let w = format!(
                    "{}: a noise map is the total sigma of each pixel, so the Poisson term of the model file's exposure_time is not added to it",
                    p.display()
                );
                eprintln!("warning: {w}");
                obs.warnings.push(w);
            }
            obs.noise_map = Some(nm.data);
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
            hdus: Hdus::default(),
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
    /// pixel (x=11, y=11), not "row 69" of the flipped in-memory image; it is masked with a
    /// warning, and a bad sigma under the mask or under a NaN pixel of the data is no matter.
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
        let o = Observation::load(&obs, Some(&nm), None, &spec).unwrap();
        let w = o.warnings.join("\n");
        assert!(
            w.contains("noise.fits")
                && w.contains("1 used pixel(s)")
                && w.contains(
                    "pixel (x=11, y=11) (FITS, 1-based) = [10, 10] (numpy [row, col]) is 0"
                )
                && w.contains("masked"),
            "{w}"
        );
        // masked in memory (row 0 on top: file row 10 is memory row ny - 11)
        let at = (ny - 11) * nx + 10;
        assert!(!o.mask[at] && o.mask.iter().filter(|&&m| !m).count() == 1);
        assert!(o.noise_map.as_ref().unwrap().iter().all(|s| *s > 0.0));
        // the same bad sigma under a mask, or under a NaN pixel of the data: no warning
        let mask = dir.path().join("mask.fits");
        let mut m = vec![1.0f32; ny * nx];
        m[10 * nx + 10] = 0.0;
        arclight_core::fits::write_image_f32(&mask, ny, nx, &m, &[]).unwrap();
        let o = Observation::load(&obs, Some(&nm), Some(&mask), &spec).unwrap();
        assert!(
            o.warnings.iter().all(|w| !w.contains("used pixel")),
            "{:?}",
            o.warnings
        );
        let mut d = vec![0.5f32; ny * nx];
        d[10 * nx + 10] = f32::NAN;
        arclight_core::fits::write_image_f32(&obs, ny, nx, &d, &[]).unwrap();
        let o = Observation::load(&obs, Some(&nm), None, &spec).unwrap();
        assert!(
            o.warnings.iter().all(|w| !w.contains("used pixel")),
            "{:?}",
            o.warnings
        );
        // no usable sigma at all: an error naming the file
        arclight_core::fits::write_image_f32(&nm, ny, nx, &vec![0.0; ny * nx], &[]).unwrap();
        let e = format!(
            "{:#}",
            Observation::load(&obs, Some(&nm), None, &spec).unwrap_err()
        );
        assert!(e.contains("noise.fits") && e.contains("no pixel"), "{e}");
    }

    /// A noise map is the total sigma: with a model file that models Poisson noise (GIGA-Lens:
    /// exposure_time) the fit says the Poisson term is not added, and warns of a PIXSCALE that
    /// differs from the grid's.
    #[test]
    fn noise_map_with_poisson_and_a_pixel_scale_mismatch_are_said() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ModelSpec::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml"),
        )
        .unwrap();
        assert!(spec.noise.exposure_time.is_some());
        let (ny, nx) = (spec.grid.ny, spec.grid.nx);
        let obs = dir.path().join("obs.fits");
        let key = |s: f64| [arclight_core::fits::Key::F("PIXSCALE".into(), s)];
        arclight_core::fits::write_image_f32(
            &obs,
            ny,
            nx,
            &vec![0.5; ny * nx],
            &key(spec.grid.pixel_scale * 2.0),
        )
        .unwrap();
        let nm = dir.path().join("noise.fits");
        arclight_core::fits::write_image_f32(&nm, ny, nx, &vec![0.2; ny * nx], &[]).unwrap();
        let o = Observation::load(&obs, Some(&nm), None, &spec).unwrap();
        let w = o.warnings.join("\n");
        assert!(w.contains("Poisson term") && w.contains("PIXSCALE"), "{w}");
        arclight_core::fits::write_image_f32(
            &obs,
            ny,
            nx,
            &vec![0.5; ny * nx],
            &key(spec.grid.pixel_scale),
        )
        .unwrap();
        let o = Observation::load(&obs, None, None, &spec).unwrap();
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }

    /// An HST-style file (empty primary, SCI and ERR extensions): the data come from the first image
    /// extension by default, the noise from the HDU asked for; an HDU past the end names the file.
    #[test]
    fn data_and_noise_are_read_from_extensions() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ModelSpec::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml"),
        )
        .unwrap();
        let (ny, nx) = (spec.grid.ny, spec.grid.nx);
        let mef = dir.path().join("hst.fits");
        let (sci, err) = (vec![0.5f32; ny * nx], vec![0.2f32; ny * nx]);
        arclight_core::fits::write_extensions_f32(
            &mef,
            &[("SCI", ny, nx, &sci), ("ERR", ny, nx, &err)],
        )
        .unwrap();
        let hdus = Hdus {
            noise_map: Some(2),
            ..Hdus::default()
        };
        let o = Observation::load_hdus(&mef, Some(&mef), None, hdus, &spec).unwrap();
        assert!(o.data.iter().all(|&v| v == 0.5));
        assert_eq!(
            (o.hdus.obs, o.hdus.noise_map, o.hdus.mask),
            (Some(1), Some(2), None)
        );
        assert!(o.noise_map.unwrap().iter().all(|&s| s == 0.2));
        // the noise map left to the default would be SCI itself: refused, naming the flag
        let e = format!(
            "{:#}",
            Observation::load_hdus(&mef, Some(&mef), None, Hdus::default(), &spec).unwrap_err()
        );
        assert!(
            e.contains("observation's own image") && e.contains("--noise-hdu"),
            "{e}"
        );
        let hdus = Hdus {
            obs: Some(3),
            ..Hdus::default()
        };
        let e = format!(
            "{:#}",
            Observation::load_hdus(&mef, None, None, hdus, &spec).unwrap_err()
        );
        assert!(
            e.contains("hst.fits") && e.contains("HDU 3 does not exist"),
            "{e}"
        );
    }
}
