//! Reader for the GalSim / GREAT3 "real galaxy" catalog layout (COSMOS F814W stamps).
//!
//! A catalog `NAME.fits` has an empty primary HDU and a binary table in HDU 1 with one row per
//! galaxy (IDENT, GAL_FILENAME, GAL_HDU, NOISE_VARIANCE, PIXEL_SCALE, ...). Stamps live in the
//! catalog's folder: file GAL_FILENAME, 0-based HDU GAL_HDU, float32 or float64, any size.
//! The optional companion `NAME_fits.fits` (same folder, `.fits` -> `_fits.fits`) holds the
//! Sersic fits with lower-case column names (`sersicfit` 8 values, `fit_status` 5,
//! `viable_sersic`, `hlr` 3). See `datasets/cosmos-example/README.md`.
//!
//! Only table columns are read here, through `arclight_core::fits::table` (whole columns: array
//! columns come back flattened, rows x repeat; buffers sized from cfitsio's column description); stamps are read by the `prepare` pipeline, one open file per GAL_FILENAME.

use super::cuts::SersicFit;
use anyhow::{Context, Result, bail};
use arclight_core::fits::table::Table;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One catalog row (the columns the pipeline needs).
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogRow {
    /// 0-based row in the catalog table.
    pub row: usize,
    pub ident: i64,
    /// Image file name, relative to the catalog's folder (trailing blanks/NULs removed).
    pub gal_filename: String,
    /// 0-based HDU of the stamp in that file.
    pub gal_hdu: usize,
    /// Per-pixel noise variance of the stamp (native pixels).
    pub noise_variance: f64,
    /// Arcsec per pixel (0.03 for COSMOS).
    pub pixel_scale: f64,
}

/// What the `_fits.fits` companion offers for the Sersic-fit cut.
#[derive(Clone, Debug, PartialEq)]
pub enum FitInfo {
    /// No companion file next to the catalog.
    NoFile,
    /// A companion without the Sersic columns (e.g. the BTK extension: flux_radius, HSC
    /// magnitudes); the fit cut does not apply.
    NoSersicColumns(PathBuf),
    /// Sersic fits, one entry per catalog row (`None`: no fit row with that IDENT).
    Sersic(PathBuf, Vec<Option<SersicFit>>),
}

impl FitInfo {
    /// Companion path, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            FitInfo::NoFile => None,
            FitInfo::NoSersicColumns(p) | FitInfo::Sersic(p, _) => Some(p),
        }
    }
}

/// A real-galaxy catalog with its optional Sersic fits.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub path: PathBuf,
    /// Folder the image files are looked up in.
    pub dir: PathBuf,
    pub rows: Vec<CatalogRow>,
    pub fits: FitInfo,
}

impl Catalog {
    /// Full path of a row's image file.
    pub fn image_path(&self, row: &CatalogRow) -> PathBuf {
        self.dir.join(&row.gal_filename)
    }
}

/// The companion fit-file name GalSim uses: `NAME.fits` -> `NAME_fits.fits`.
pub fn companion_fits_path(catalog: &Path) -> Option<PathBuf> {
    let name = catalog.file_name()?.to_str()?;
    let stem = name.strip_suffix(".fits")?;
    Some(catalog.with_file_name(format!("{stem}_fits.fits")))
}

/// Open HDU 1 of `path`, the catalog table.
fn open_table(path: &Path) -> Result<Table> {
    let mut f = arclight_core::fits::open(path)?;
    let n = arclight_core::fits::num_hdus(&mut f, path)?;
    if n < 2 {
        bail!(
            "{}: no table in HDU 1 (the file has {n} HDU): truncated, or not a GalSim catalog",
            path.display()
        );
    }
    drop(f);
    Table::open(path, 1).with_context(|| format!("{}: not a GalSim catalog", path.display()))
}

/// Read a catalog and its companion fit file (when present).
pub fn read_catalog(path: &Path) -> Result<Catalog> {
    let mut t = open_table(path)?;
    let n = t.num_rows;
    let ident = t.read_i64("IDENT", 1)?;
    let gal_hdu = t.read_i64("GAL_HDU", 1)?;
    let noise_variance = t.read_f64("NOISE_VARIANCE", 1)?;
    let pixel_scale = match t.column("PIXEL_SCALE") {
        Some(_) => t.read_f64("PIXEL_SCALE", 1)?,
        None => vec![0.03; n],
    };
    let names = t.read_strings("GAL_FILENAME")?;
    drop(t);
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let name = names[i]
            .trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_string();
        if name.is_empty() {
            bail!(
                "{}: row {i} (IDENT {}): GAL_FILENAME is empty",
                path.display(),
                ident[i]
            );
        }
        if gal_hdu[i] < 0 {
            bail!(
                "{}: row {i} (IDENT {}): GAL_HDU is {}",
                path.display(),
                ident[i],
                gal_hdu[i]
            );
        }
        rows.push(CatalogRow {
            row: i,
            ident: ident[i],
            gal_filename: name,
            gal_hdu: gal_hdu[i] as usize,
            noise_variance: noise_variance[i],
            pixel_scale: pixel_scale[i],
        });
    }
    let fits = match companion_fits_path(path) {
        Some(p) if p.exists() => read_fit_file(&p, &rows)?,
        _ => FitInfo::NoFile,
    };
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Catalog {
        path: path.to_path_buf(),
        dir,
        rows,
        fits,
    })
}

/// Read the Sersic fits of a `_fits.fits` companion, matched to catalog rows by IDENT.
pub fn read_fit_file(path: &Path, rows: &[CatalogRow]) -> Result<FitInfo> {
    let mut t = open_table(path)?;
    if t.column("sersicfit").is_none() || t.column("fit_status").is_none() {
        return Ok(FitInfo::NoSersicColumns(path.to_path_buf()));
    }
    let ident = t.read_i64("IDENT", 1)?;
    let status = t.read_i64("fit_status", 5)?;
    let params = t.read_f64("sersicfit", 8)?;
    let viable = match t.column("viable_sersic") {
        Some(_) => Some(t.read_i64("viable_sersic", 1)?),
        None => None,
    };
    let hlr = match t.column("hlr") {
        Some(_) => Some(t.read_f64("hlr", 3)?),
        None => None,
    };
    let by_ident: HashMap<i64, usize> = ident.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let fits = rows
        .iter()
        .map(|r| {
            by_ident.get(&r.ident).map(|&i| {
                let mut p = [0.0; 8];
                p.copy_from_slice(&params[i * 8..i * 8 + 8]);
                SersicFit {
                    status: status[i * 5 + 4],
                    viable: viable.as_ref().map(|v| v[i] != 0),
                    params: p,
                    hlr_arcsec: hlr.as_ref().map(|h| h[i * 3]),
                }
            })
        })
        .collect();
    Ok(FitInfo::Sersic(path.to_path_buf(), fits))
}

/// Read a catalog with a context line naming it (for the CLI).
pub fn read_catalog_ctx(path: &Path) -> Result<Catalog> {
    read_catalog(path).with_context(|| format!("reading catalog {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../datasets/cosmos-example")
            .join(rel)
    }

    #[test]
    fn reads_the_three_shipped_catalogs() {
        let c = read_catalog(&example("real_galaxy_catalog_23.5_example.fits")).unwrap();
        assert_eq!(c.rows.len(), 100);
        assert_eq!(c.rows[0].ident, 100027);
        assert_eq!(c.rows[0].gal_filename, "real_galaxy_images.fits");
        assert!(matches!(&c.fits, FitInfo::Sersic(_, v) if v.iter().all(Option::is_some)));
        let c = read_catalog(&example(
            "paltas_23.5_trimmed/real_galaxy_catalog_23.5.fits",
        ))
        .unwrap();
        assert_eq!(c.rows.len(), 10);
        assert_eq!((c.rows[2].ident, c.rows[2].gal_hdu), (93315, 2));
        assert_eq!(c.rows[0].gal_filename, "real_galaxy_images_23.5_n1.fits");
        assert!((c.rows[0].noise_variance - 6.502109954453772e-06).abs() < 1e-18);
        let FitInfo::Sersic(_, fits) = &c.fits else {
            panic!("{:?}", c.fits)
        };
        let f = fits[0].as_ref().unwrap();
        assert_eq!((f.status, f.viable), (1, Some(true)));
        assert!((f.params[1] - 41.391).abs() < 1e-3 && (f.params[2] - 1.145).abs() < 1e-3);
        let c = read_catalog(&example(
            "btk_26_extension/real_galaxy_catalog_26_extension_example.fits",
        ))
        .unwrap();
        assert_eq!(c.rows.len(), 100);
        assert!(matches!(c.fits, FitInfo::NoSersicColumns(_)));
    }

    #[test]
    fn companion_name() {
        assert_eq!(
            companion_fits_path(Path::new("a/real_galaxy_catalog_25.2.fits")).unwrap(),
            Path::new("a/real_galaxy_catalog_25.2_fits.fits")
        );
        assert!(companion_fits_path(Path::new("a/cat.fit")).is_none());
    }
}
