//! New galaxy sets: a folder of FITS or PNG cutouts, one galaxy per file.
//!
//! Files ending in `.fits`, `.fit`, `.fts` (also `.gz`-compressed; first 2-D image HDU with pixels) or `.png`
//! (grey level in [0, 1]; colour is converted to luminance and 16-bit values scaled, with a
//! warning and a note in the provenance) are taken in name order; the galaxy's IDENT is a first
//! IDENT (after every catalog IDENT, see `prepare`) plus its position in that order (the
//! provenance lists the files). Other files are ignored.
//!
//! Such cutouts carry no noise estimate, so sigma_noise is estimated from the stamp border: the
//! robust standard deviation `1.4826 MAD` of a ring `max(2, min(ny, nx) / 16)` pixels wide along
//! the edges (the galaxy should be centred and the border mostly sky). `--noise-sigma` overrides
//! it with one value for every file (for noiseless renders or clipped PNG backgrounds, whose
//! border MAD is zero).

use super::cuts::{RawStamp, SigmaFrom};
use super::preprocess::border_sigma;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Cutout kinds recognised by extension (FITS also gzip-compressed, which cfitsio reads as is).
fn kind(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let ext = Path::new(name).extension()?.to_str()?;
    if name.len() < path.file_name()?.len() && ext == "png" {
        return None;
    }
    match ext {
        "fits" | "fit" | "fts" => Some("fits"),
        "png" => Some("png"),
        _ => None,
    }
}

/// The cutout files of `dir`, sorted by name. Errors if the folder is missing or has none.
pub fn list_cutouts(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!("{}: --folder is not a directory", dir.display());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && kind(p).is_some())
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "{}: no .fits/.fit/.fts(.gz)/.png cutouts in this folder",
            dir.display()
        );
    }
    Ok(files)
}

/// Width of the border ring used for the noise estimate of a `ny x nx` stamp.
pub fn border_width(ny: usize, nx: usize) -> usize {
    (ny.min(nx) / 16).max(2)
}

/// One cutout read from a folder.
#[derive(Clone, Debug)]
pub struct Cutout {
    pub stamp: RawStamp,
    /// How a PNG's pixels became grey values when that was more than 8-bit grey / 255 (colour
    /// to luminance, 16-bit scaling, alpha dropped), for the warning and the provenance.
    pub conversion: Option<String>,
}

/// Read one cutout as a raw stamp; sigma from the border unless `noise_sigma` is given.
pub fn read_cutout(path: &Path, ident: i64, noise_sigma: Option<f64>) -> Result<Cutout> {
    let (ny, nx, data, conversion) = match kind(path) {
        Some("png") => {
            let (ny, nx, d, conv) = arclight_core::png::read_grey_described(path)?;
            (
                ny,
                nx,
                d.into_iter().map(f64::from).collect::<Vec<f64>>(),
                conv,
            )
        }
        Some(_) => {
            let (ny, nx, d) = read_first_image(path)?;
            (ny, nx, d, None)
        }
        None => bail!("{}: not a FITS or PNG cutout", path.display()),
    };
    let width = border_width(ny, nx);
    let (sigma, sigma_from) = match noise_sigma {
        Some(s) => (s, SigmaFrom::Given),
        None if data.iter().all(|v| v.is_finite()) => (
            border_sigma(ny, nx, &data, width),
            SigmaFrom::Border { width },
        ),
        // no estimate from non-finite pixels: the cuts report the first one with its position
        None => (f64::NAN, SigmaFrom::Border { width }),
    };
    Ok(Cutout {
        stamp: RawStamp {
            ident,
            ny,
            nx,
            data,
            sigma,
            sigma_from,
            origin: path.display().to_string(),
        },
        conversion,
    })
}

/// The first 2-D image HDU with pixels (HDU 0 is often an empty primary).
fn read_first_image(path: &Path) -> Result<(usize, usize, Vec<f64>)> {
    let mut f = arclight_core::fits::open(path)?;
    let n = arclight_core::fits::num_hdus(&mut f, path)?;
    for i in 0..n {
        if arclight_core::fits::image_shape(&mut f, path, i)?.is_some() {
            let im = arclight_core::fits::read_image_from(&mut f, path, i)?;
            return Ok((im.ny, im.nx, im.data));
        }
    }
    bail!("{}: no 2-D image HDU in this FITS file", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_reads_fits_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let n = 40;
        // Alternating +-0.5 sky (MAD 0.5 -> sigma 0.741) and a bright centre.
        let img: Vec<f32> = (0..n * n)
            .map(|i| {
                let (y, x) = (i / n, i % n);
                let r2 = (y as f32 - 20.0).powi(2) + (x as f32 - 20.0).powi(2);
                100.0 * (-r2 / 8.0).exp() + if (x + y) % 2 == 0 { 0.5 } else { -0.5 }
            })
            .collect();
        arclight_core::fits::write_image_f32(&dir.path().join("b.fits"), n, n, &img, &[]).unwrap();
        let mut c = arclight_core::png::Canvas::new(8, 6, [0, 0, 0]);
        c.set(3, 2, [255, 255, 255]);
        c.save(&dir.path().join("a.png")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let files = list_cutouts(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[0].ends_with("a.png"));
        let s = read_cutout(&files[1], 1, None).unwrap().stamp;
        assert_eq!((s.ny, s.nx, s.ident), (n, n, 1));
        assert!(
            (s.sigma - 0.5 * 1.482_602_218_505_602).abs() < 1e-6,
            "{}",
            s.sigma
        );
        let p = read_cutout(&files[0], 0, Some(0.01)).unwrap();
        // the canvas is saved as RGB: its conversion to grey is stated
        assert!(p.conversion.as_deref().unwrap().contains("luminance"));
        let p = p.stamp;
        assert_eq!((p.ny, p.nx, p.sigma), (6, 8, 0.01));
        assert!((p.data[2 * 8 + 3] - 1.0).abs() < 1e-6 && p.data[0] == 0.0);
        let e = list_cutouts(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("not a directory"), "{e}");
    }
}
