//! `train-vae bench --only prep`: `prepare` at survey scale. A synthetic GalSim-layout catalog of
//! 20,000 rows over 20 image files of 1,000 float32 stamps of 141 x 141 pixels each (1.6 GB,
//! generated once, seeded, under `target/bench-data/`) is prepared by a child `train-vae prepare`
//! process; the figures are rows per second, the child's peak resident memory, and the time the
//! full 87,798-row COSMOS sample would take at that rate.

use anyhow::{Context, Result, bail};
use fitsio::FitsFile;
use fitsio::images::{ImageDescription, ImageType};
use fitsio::tables::{ColumnDataType, ColumnDescription};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Rows of the full COSMOS 25.2 sample, for the extrapolation.
pub const FULL_SAMPLE_ROWS: usize = 87_798;
const FILES: usize = 20;
const PER_FILE: usize = 1_000;
const STAMP: usize = 141;
const NOISE_SIGMA: f32 = 0.04;

/// The `prepare` figures.
#[derive(Clone, Debug, Serialize)]
pub struct PrepareTiming {
    pub rows: usize,
    pub image_bytes: u64,
    pub wall_s: f64,
    pub rows_per_s: f64,
    pub peak_rss_mb: f64,
    pub full_sample_s: f64,
}

/// Write (once) the synthetic catalog under `dir`; returns the catalog path.
fn catalog(dir: &Path) -> Result<PathBuf> {
    let cat = dir.join("real_galaxy_catalog_bench.fits");
    if cat.exists() {
        return Ok(cat);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let noise = Normal::new(0.0f32, NOISE_SIGMA)?;
    let c = (STAMP as f32 - 1.0) / 2.0;
    for f in 0..FILES {
        let path = dir.join(format!("real_galaxy_images_bench_n{}.fits", f + 1));
        let _ = std::fs::remove_file(&path);
        let desc = ImageDescription {
            data_type: ImageType::Float,
            dimensions: &[STAMP, STAMP],
        };
        let mut file = FitsFile::create(&path)
            .with_custom_primary(&desc)
            .open()
            .with_context(|| format!("creating {}", path.display()))?;
        let mut rng = StdRng::seed_from_u64(f as u64);
        for s in 0..PER_FILE {
            let width = 4.0 + (s % 9) as f32;
            let pixels: Vec<f32> = (0..STAMP * STAMP)
                .map(|i| {
                    let (y, x) = ((i / STAMP) as f32 - c, (i % STAMP) as f32 - c);
                    (-(x * x + y * y) / (2.0 * width * width)).exp() + noise.sample(&mut rng)
                })
                .collect();
            let hdu = if s == 0 {
                file.primary_hdu()?
            } else {
                file.create_image(format!("GAL{s}"), &desc)?
            };
            hdu.write_image(&mut file, &pixels)?;
        }
    }
    let tmp = dir.join("catalog.tmp.fits");
    let _ = std::fs::remove_file(&tmp);
    let mut f = FitsFile::create(&tmp).open()?;
    let col = |name: &str, t: ColumnDataType, repeat: usize| {
        ColumnDescription::new(name)
            .with_type(t)
            .that_repeats(repeat)
            .create()
    };
    let cols = [
        col("IDENT", ColumnDataType::Int, 1)?,
        col("GAL_FILENAME", ColumnDataType::String, 40)?,
        col("GAL_HDU", ColumnDataType::Int, 1)?,
        col("PIXEL_SCALE", ColumnDataType::Double, 1)?,
        col("NOISE_VARIANCE", ColumnDataType::Double, 1)?,
    ];
    let hdu = f.create_table("CATALOG", &cols)?;
    let n = FILES * PER_FILE;
    let ident: Vec<i32> = (0..n as i32).map(|i| 100_000 + i).collect();
    let names: Vec<String> = (0..n)
        .map(|i| format!("real_galaxy_images_bench_n{}.fits", i / PER_FILE + 1))
        .collect();
    let hdus: Vec<i32> = (0..n).map(|i| (i % PER_FILE) as i32).collect();
    hdu.write_col(&mut f, "IDENT", &ident)?;
    hdu.write_col(&mut f, "GAL_FILENAME", &names)?;
    hdu.write_col(&mut f, "GAL_HDU", &hdus)?;
    hdu.write_col(&mut f, "PIXEL_SCALE", &vec![0.03f64; n])?;
    hdu.write_col(
        &mut f,
        "NOISE_VARIANCE",
        &vec![(NOISE_SIGMA * NOISE_SIGMA) as f64; n],
    )?;
    drop(f);
    std::fs::rename(&tmp, &cat)?;
    Ok(cat)
}

/// Peak resident memory of the largest finished child process, MB.
fn children_peak_rss_mb() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    u.ru_maxrss as f64 / 1024.0
}

/// Prepare the synthetic 20,000-row catalog in a child process and time it.
pub fn bench_prepare(data_dir: &Path) -> Result<PrepareTiming> {
    let t = Instant::now();
    let cat = catalog(data_dir)?;
    let made = t.elapsed().as_secs_f64();
    if made > 1.0 {
        println!(
            "prep: wrote the synthetic catalog in {made:.0} s ({})",
            data_dir.display()
        );
    }
    let image_bytes: u64 = std::fs::read_dir(data_dir)?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("real_galaxy_images_")
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let work = tempfile::tempdir()?;
    let t = Instant::now();
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("prepare")
        .arg("--catalog")
        .arg(&cat)
        .arg("--out")
        .arg(work.path().join("bench.h5"))
        .arg("--experiments")
        .arg(work.path().join("experiments"))
        .env("ARCLIGHT_QUIET", "1")
        .output()?;
    let wall_s = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "prep: train-vae prepare failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rows = FILES * PER_FILE;
    let rows_per_s = rows as f64 / wall_s;
    Ok(PrepareTiming {
        rows,
        image_bytes,
        wall_s,
        rows_per_s,
        peak_rss_mb: children_peak_rss_mb(),
        full_sample_s: FULL_SAMPLE_ROWS as f64 / rows_per_s,
    })
}
