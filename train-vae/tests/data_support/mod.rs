//! Shared helpers of the `data_*` integration tests: paths of the shipped example data, the
//! binary, and writers for small GalSim-layout catalogs and multi-HDU image files.
#![allow(dead_code)]

pub mod fits_bytes;

use fitsio::FitsFile;
use fitsio::images::{ImageDescription, ImageType};
use fitsio::tables::{ColumnDataType, ColumnDescription};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A file of the shipped `datasets/cosmos-example`.
pub fn shipped(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/cosmos-example")
        .join(rel)
}

pub const BTK: &str = "btk_26_extension/real_galaxy_catalog_26_extension_example.fits";
pub const PALTAS: &str = "paltas_23.5_trimmed/real_galaxy_catalog_23.5.fits";
pub const EXAMPLE: &str = "real_galaxy_catalog_23.5_example.fits";

/// Run `train-vae` with `args` (progress bars off), in a fresh working directory that is
/// removed afterwards: the run records `prepare` writes under `./experiments` go with it (the
/// arguments are absolute paths).
pub fn run(args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_train-vae"))
        .args(args)
        .current_dir(cwd.path())
        .env("ARCLIGHT_QUIET", "1")
        .output()
        .expect("train-vae runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Names of the entries of `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// One catalog row: IDENT, GAL_FILENAME, GAL_HDU, NOISE_VARIANCE.
pub struct Row<'a> {
    pub ident: i32,
    pub file: &'a str,
    pub hdu: i32,
    pub noise_variance: f64,
}

/// Write a GalSim-layout catalog (empty primary + binary table in HDU 1).
pub fn write_catalog(path: &Path, rows: &[Row]) {
    let mut f = FitsFile::create(path).overwrite().open().unwrap();
    let cols = [
        ColumnDescription::new("IDENT")
            .with_type(ColumnDataType::Int)
            .create()
            .unwrap(),
        ColumnDescription::new("GAL_FILENAME")
            .with_type(ColumnDataType::String)
            .that_repeats(32)
            .create()
            .unwrap(),
        ColumnDescription::new("GAL_HDU")
            .with_type(ColumnDataType::Int)
            .create()
            .unwrap(),
        ColumnDescription::new("PIXEL_SCALE")
            .with_type(ColumnDataType::Double)
            .create()
            .unwrap(),
        ColumnDescription::new("NOISE_VARIANCE")
            .with_type(ColumnDataType::Double)
            .create()
            .unwrap(),
    ];
    let hdu = f.create_table("CATALOG", &cols).unwrap();
    let ident: Vec<i32> = rows.iter().map(|r| r.ident).collect();
    let names: Vec<String> = rows.iter().map(|r| r.file.to_string()).collect();
    let hdus: Vec<i32> = rows.iter().map(|r| r.hdu).collect();
    let scale = vec![0.03f64; rows.len()];
    let var: Vec<f64> = rows.iter().map(|r| r.noise_variance).collect();
    hdu.write_col(&mut f, "IDENT", &ident).unwrap();
    hdu.write_col(&mut f, "GAL_FILENAME", &names).unwrap();
    hdu.write_col(&mut f, "GAL_HDU", &hdus).unwrap();
    hdu.write_col(&mut f, "PIXEL_SCALE", &scale).unwrap();
    hdu.write_col(&mut f, "NOISE_VARIANCE", &var).unwrap();
}

/// Write images (ny, nx, pixels) as consecutive HDUs, the first in the primary (GalSim layout).
pub fn write_images(path: &Path, images: &[(usize, usize, Vec<f32>)]) {
    let (ny, nx, d) = &images[0];
    let desc = ImageDescription {
        data_type: ImageType::Float,
        dimensions: &[*ny, *nx],
    };
    let mut f = FitsFile::create(path)
        .with_custom_primary(&desc)
        .overwrite()
        .open()
        .unwrap();
    f.primary_hdu().unwrap().write_image(&mut f, d).unwrap();
    for (i, (ny, nx, d)) in images.iter().enumerate().skip(1) {
        let desc = ImageDescription {
            data_type: ImageType::Float,
            dimensions: &[*ny, *nx],
        };
        let h = f.create_image(format!("GAL{i}"), &desc).unwrap();
        h.write_image(&mut f, d).unwrap();
    }
}

/// A `n x n` Gaussian blob of peak `peak` on a flat zero sky.
pub fn blob(n: usize, peak: f32, width: f32) -> (usize, usize, Vec<f32>) {
    let c = n as f32 / 2.0;
    let d = (0..n * n)
        .map(|i| {
            let (y, x) = ((i / n) as f32 + 0.5 - c, (i % n) as f32 + 0.5 - c);
            peak * (-(x * x + y * y) / (2.0 * width * width)).exp()
        })
        .collect();
    (n, n, d)
}
