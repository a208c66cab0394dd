//! Reader for the GalSim / GREAT3 "real galaxy" catalog layout (COSMOS F814W stamps).
//!
//! A catalog `NAME.fits` has an empty primary HDU and a binary table in HDU 1 with one row per
//! galaxy (IDENT, GAL_FILENAME, GAL_HDU, NOISE_VARIANCE, PIXEL_SCALE, ...). Stamps live in the
//! catalog's folder: file GAL_FILENAME, 0-based HDU GAL_HDU, float32 or float64, any size.
//! The optional companion `NAME_fits.fits` (same folder, `.fits` -> `_fits.fits`) holds the
//! Sersic fits with lower-case column names (`sersicfit` 8 values, `fit_status` 5,
//! `viable_sersic`, `hlr` 3). See `datasets/cosmos-example/README.md`.
//!
//! Only table columns are read here (whole columns: array columns come back flattened,
//! rows x repeat); stamps are read by the `prepare` pipeline, one open file per GAL_FILENAME.

use super::cuts::SersicFit;
use anyhow::{Context, Result, anyhow, bail};
use fitsio::FitsFile;
use fitsio::hdu::{FitsHdu, HduInfo};
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

/// Open HDU 1 of `path` as a binary table: the file handle, HDU, column names and row count.
fn open_table(path: &Path) -> Result<(FitsFile, FitsHdu, Vec<String>, usize)> {
    let mut f = arclight_core::fits::open(path)?;
    let n = f
        .num_hdus()
        .map_err(|e| anyhow!("{}: cannot count HDUs ({e})", path.display()))?;
    if n < 2 {
        bail!(
            "{}: no table in HDU 1 (the file has {n} HDU): truncated, or not a GalSim catalog",
            path.display()
        );
    }
    let hdu = f
        .hdu(1)
        .map_err(|e| anyhow!("{}: cannot open HDU 1 ({e})", path.display()))?;
    let (cols, rows) = match &hdu.info {
        HduInfo::TableInfo {
            column_descriptions,
            num_rows,
        } => (
            column_descriptions.iter().map(|c| c.name.clone()).collect(),
            *num_rows,
        ),
        _ => bail!(
            "{}: HDU 1 is not a table, not a GalSim catalog",
            path.display()
        ),
    };
    Ok((f, hdu, cols, rows))
}

/// The actual spelling of column `name` (case-insensitive), if present.
fn find_col<'a>(cols: &'a [String], name: &str) -> Option<&'a str> {
    cols.iter()
        .find(|c| c.eq_ignore_ascii_case(name))
        .map(|s| s.as_str())
}

/// Read a whole numeric column; `repeat` values per row (array columns come back flat).
fn read_num<T: fitsio::tables::ReadsCol + Clone>(
    f: &mut FitsFile,
    hdu: &FitsHdu,
    path: &Path,
    cols: &[String],
    name: &str,
    rows: usize,
    repeat: usize,
) -> Result<Vec<T>> {
    let real = find_col(cols, name)
        .ok_or_else(|| anyhow!("{}: column {name} is missing", path.display()))?;
    let v: Vec<T> = hdu.read_col(f, real).map_err(|e| {
        anyhow!(
            "{}: cannot read column {name}, file truncated or corrupt? ({e})",
            path.display()
        )
    })?;
    if v.len() != rows * repeat {
        bail!(
            "{}: column {name} has {} values, expected {rows} rows x {repeat}",
            path.display(),
            v.len()
        );
    }
    Ok(v)
}

/// Read a catalog and its companion fit file (when present).
pub fn read_catalog(path: &Path) -> Result<Catalog> {
    let (mut f, hdu, cols, n) = open_table(path)?;
    let ident: Vec<i64> = read_num(&mut f, &hdu, path, &cols, "IDENT", n, 1)?;
    let gal_hdu: Vec<i64> = read_num(&mut f, &hdu, path, &cols, "GAL_HDU", n, 1)?;
    let noise_variance: Vec<f64> = read_num(&mut f, &hdu, path, &cols, "NOISE_VARIANCE", n, 1)?;
    let pixel_scale: Vec<f64> = match find_col(&cols, "PIXEL_SCALE") {
        Some(_) => read_num(&mut f, &hdu, path, &cols, "PIXEL_SCALE", n, 1)?,
        None => vec![0.03; n],
    };
    let fname_col = find_col(&cols, "GAL_FILENAME")
        .ok_or_else(|| anyhow!("{}: column GAL_FILENAME is missing", path.display()))?;
    let names: Vec<String> = hdu
        .read_col(&mut f, fname_col)
        .map_err(|e| anyhow!("{}: cannot read column GAL_FILENAME ({e})", path.display()))?;
    if names.len() != n {
        bail!(
            "{}: column GAL_FILENAME has {} values, expected {n}",
            path.display(),
            names.len()
        );
    }
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
    drop(f);
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
    let (mut f, hdu, cols, n) = open_table(path)?;
    if find_col(&cols, "sersicfit").is_none() || find_col(&cols, "fit_status").is_none() {
        return Ok(FitInfo::NoSersicColumns(path.to_path_buf()));
    }
    let ident: Vec<i64> = read_num(&mut f, &hdu, path, &cols, "IDENT", n, 1)?;
    let status: Vec<i64> = read_num(&mut f, &hdu, path, &cols, "fit_status", n, 5)?;
    let params: Vec<f64> = read_num(&mut f, &hdu, path, &cols, "sersicfit", n, 8)?;
    let viable: Option<Vec<i64>> = match find_col(&cols, "viable_sersic") {
        Some(_) => Some(read_num(&mut f, &hdu, path, &cols, "viable_sersic", n, 1)?),
        None => None,
    };
    let hlr: Option<Vec<f64>> = match find_col(&cols, "hlr") {
        Some(_) => Some(read_num(&mut f, &hdu, path, &cols, "hlr", n, 3)?),
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
