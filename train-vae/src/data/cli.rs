//! Command-line front ends of `train-vae prepare` and `train-vae synth`.

use super::cuts::{Cut, CutConfig, SnrNoise};
use super::prepare::{
    PrepareConfig, SynthInput, load_inputs, prepare_inputs, split_sizes, summary_line,
};
use super::synth::{SynthConfig, generate_range, split_of};
use anyhow::{Result, bail, ensure};
use arclight_core::record::{Run, RunKind, RunSpec};
use arclight_vae::dataset::write_dataset;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

/// Parse `a,b,c` split proportions.
fn parse_split(s: &str) -> Result<[f64; 3], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .map_err(|e| format!("'{x}' is not a number ({e})"))
        })
        .collect::<Result<_, _>>()?;
    if v.len() != 3 {
        return Err(format!(
            "expected three comma-separated proportions train,validation,test, got {}",
            v.len()
        ));
    }
    if v.iter().any(|p| !p.is_finite() || *p < 0.0) || v.iter().sum::<f64>() <= 0.0 {
        return Err("proportions must be non-negative with a positive sum".into());
    }
    Ok([v[0], v[1], v[2]])
}

/// `train-vae prepare`: COSMOS/GREAT3 catalogs and/or folders of cutouts -> HDF5 data set with
/// the cuts of Chianese et al. 2020, Sec. 2.2 (defaults are the paper's).
#[derive(Args, Debug, Clone)]
pub struct PrepareArgs {
    /// A GalSim/GREAT3 real-galaxy catalog (repeatable); stamps are read from its folder.
    #[arg(long = "catalog", value_name = "FITS")]
    pub catalogs: Vec<PathBuf>,
    /// A folder of FITS/PNG cutouts, one galaxy per file (repeatable); noise from the border.
    #[arg(long = "folder", value_name = "DIR")]
    pub folders: Vec<PathBuf>,
    /// Fixed pixel-noise sigma for --folder cutouts instead of the border estimate.
    #[arg(long, value_name = "SIGMA")]
    pub noise_sigma: Option<f64>,
    /// Output HDF5 data set (written atomically; replaced if present).
    #[arg(long, value_name = "H5")]
    pub out: PathBuf,
    /// Seed of the train/validation/test assignment.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Split proportions train,validation,test (paper: 15500,1543,500).
    #[arg(long, value_parser = parse_split, default_value = "15500,1543,500")]
    pub split: [f64; 3],
    /// Drop stamps with a side shorter than this (native pixels; paper: 64).
    #[arg(long, default_value_t = 64)]
    pub min_size: usize,
    /// Keep only the centred N x N native pixels of each stamp before downscaling to 64x64 (for small
    /// galaxies in large stamps; default: the whole stamp, as in the paper).
    #[arg(long, value_name = "N")]
    pub crop: Option<usize>,
    /// Keep max(I_1/4)/sigma_noise >= this (paper: 15).
    #[arg(long, default_value_t = 15.0, allow_negative_numbers = true)]
    pub snr_min: f64,
    /// Keep max(I_1/4)/sigma_noise <= this (paper: 50; `inf` disables).
    #[arg(long, default_value_t = 50.0)]
    pub snr_max: f64,
    /// Which noise sigma the S/N divides by (paper: native = sqrt(NOISE_VARIANCE)).
    #[arg(long, value_enum, default_value_t = SnrNoise::Native)]
    pub snr_noise: SnrNoise,
    /// Block-averaging factor of I_1/4 (paper: 4; must divide 64).
    #[arg(long, default_value_t = 4)]
    pub snr_block: usize,
    /// Keep galaxies with failed or unphysical Sersic fits.
    #[arg(long)]
    pub no_fit_cut: bool,
    /// Count stamps with NaN pixels or invalid NOISE_VARIANCE as cuts instead of failing.
    #[arg(long)]
    pub skip_bad_stamps: bool,
    /// Also add N synthetic galaxies (as `train-vae synth`; no cuts; ident -(i+1)).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub synth: usize,
    /// Seed of the added synthetic galaxies.
    #[arg(long, default_value_t = 0)]
    pub synth_seed: u64,
    /// Root folder of experiment records.
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
}

impl PrepareArgs {
    /// The pipeline configuration these flags describe.
    pub fn config(&self) -> PrepareConfig {
        PrepareConfig {
            catalogs: self.catalogs.clone(),
            folders: self.folders.clone(),
            folder_noise_sigma: self.noise_sigma,
            cuts: CutConfig {
                fit_cut: !self.no_fit_cut,
                min_size: self.min_size,
                snr_min: self.snr_min,
                snr_max: self.snr_max,
                snr_noise: self.snr_noise,
                snr_block: self.snr_block,
                skip_bad_stamps: self.skip_bad_stamps,
                crop: self.crop,
            },
            seed: self.seed,
            split: self.split,
            synth: (self.synth > 0).then(|| SynthInput {
                n: self.synth,
                seed: self.synth_seed,
                config: SynthConfig::default(),
            }),
        }
    }
}

/// Run `train-vae prepare`: print the per-cut counts and write a run record
/// (`experiments/prepare-<time>-<output name>/`: the resolved settings as `config`, the counts
/// as `summary.json`). Bad flags and unreadable catalogs fail before the record exists; a
/// failure while reading stamps marks it failed.
pub fn prepare(args: PrepareArgs) -> Result<()> {
    if args.catalogs.is_empty() && args.folders.is_empty() && args.synth == 0 {
        bail!("give at least one --catalog FITS, --folder DIR or --synth N");
    }
    let cfg = args.config();
    let inputs = load_inputs(&cfg)?;
    let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    let name = args
        .out
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    let mut record = Run::create(
        &args.experiments,
        RunSpec {
            kind: RunKind::Prepare,
            name: &name,
            config: json!({
                "catalogs": args.catalogs.iter().map(abs).collect::<Vec<_>>(),
                "folders": args.folders.iter().map(abs).collect::<Vec<_>>(),
                "noise_sigma": args.noise_sigma,
                "out": abs(&args.out),
                "seed": args.seed,
                "split": args.split,
                "cuts": cfg.cuts,
                "synth": args.synth,
                "synth_seed": args.synth_seed,
            }),
            device: "cpu".into(),
            seed: Some(args.seed),
        },
    )?;
    let r = match prepare_inputs(&cfg, &inputs, &args.out) {
        Ok(r) => r,
        Err(e) => {
            let _ = record.fail(&format!("{e:#}"));
            return Err(e);
        }
    };
    record.finish(json!({
        "out": abs(&args.out),
        "rows": r.rows,
        "kept": r.kept,
        "removed": r.removed.to_json(),
        "split_sizes": {"train": r.split_sizes[0], "validation": r.split_sizes[1], "test": r.split_sizes[2]},
        "inputs": r.inputs.iter().map(|i| json!({
            "path": abs(&i.path), "rows": i.rows, "kept": i.kept, "removed": i.removed.to_json(),
        })).collect::<Vec<_>>(),
    }))?;
    println!("prepare: {} rows from {} input(s)", r.rows, r.inputs.len());
    for i in &r.inputs {
        println!(
            "  {}: {} rows, kept {}; removed: {}",
            i.path.display(),
            i.rows,
            i.kept,
            summary_line(&i.removed)
        );
        println!("    Sersic-fit cut: {}", i.fit_cut);
    }
    println!("removed by cut (all inputs, in the order applied):");
    for c in Cut::ALL {
        println!("  {:<24} {}", c.name(), r.removed.get(c));
    }
    println!(
        "kept {} -> train {}, validation {}, test {}",
        r.kept, r.split_sizes[0], r.split_sizes[1], r.split_sizes[2]
    );
    println!("wrote {}", args.out.display());
    println!("run record: {}", record.dir().display());
    Ok(())
}

/// `train-vae synth`: a synthetic galaxy data set (Sersic bulge + exponential disk with spiral
/// arms and star-forming clumps, Gaussian PSF, noise ~1/50 of the peak) in the prepared layout.
#[derive(Args, Debug, Clone)]
pub struct SynthArgs {
    /// Number of galaxies.
    #[arg(long)]
    pub n: usize,
    /// Seed (galaxy i uses its own stream derived from seed and i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output HDF5 data set (written atomically; replaced if present).
    #[arg(long, value_name = "H5")]
    pub out: PathBuf,
    /// Gaussian PSF FWHM in pixels of the 64x64 image.
    #[arg(long, default_value_t = 2.0)]
    pub psf_fwhm: f64,
    /// Pixel-noise sigma as a fraction of the noiseless peak.
    #[arg(long, default_value_t = 0.02)]
    pub noise: f64,
    /// Split proportions train,validation,test (contiguous blocks of i.i.d. galaxies).
    #[arg(long, value_parser = parse_split, default_value = "15500,1543,500")]
    pub split: [f64; 3],
}

/// Galaxies rendered per parallel chunk.
const SYNTH_CHUNK: u64 = 256;

/// Run `train-vae synth`.
pub fn synth(args: SynthArgs) -> Result<()> {
    ensure!(args.n > 0, "--n must be at least 1");
    ensure!(
        args.psf_fwhm.is_finite() && args.psf_fwhm >= 0.0,
        "--psf-fwhm {} must be >= 0",
        args.psf_fwhm
    );
    ensure!(
        args.noise.is_finite() && args.noise > 0.0,
        "--noise {} must be positive",
        args.noise
    );
    let cfg = SynthConfig {
        psf_fwhm: args.psf_fwhm,
        noise: args.noise,
        ..SynthConfig::default()
    };
    let sizes = split_sizes(args.n, args.split)?;
    let bar = arclight_core::progress::bar(args.n as u64, "synth");
    let provenance = serde_json::json!({
        "created_by": format!("train-vae synth {}", env!("CARGO_PKG_VERSION")),
        "generator": {
            "kind": "synthetic: Sersic bulge + exponential disk with logarithmic spiral arms and star-forming clumps, Gaussian PSF, Gaussian pixel noise",
            "config": cfg,
            "distributions": super::synth::DISTRIBUTIONS,
            "per_galaxy_seed": "SplitMix64(seed, index)",
        },
        "n": args.n,
        "seed": args.seed,
        "split_proportions": { "train": args.split[0], "validation": args.split[1], "test": args.split[2] },
        "normalisation": "each image divided by its maximum pixel; noise_sigma = noise * noiseless peak / max",
    });
    write_dataset(&args.out, |w| {
        let mut start = 0u64;
        while start < args.n as u64 {
            let end = (start + SYNTH_CHUNK).min(args.n as u64);
            let set = generate_range(args.seed, start..end, &cfg);
            for k in 0..set.n {
                let i = start as usize + k;
                w.push(
                    split_of(i, sizes),
                    set.image(k),
                    set.ident[k],
                    set.noise_sigma[k],
                    &set.source[k],
                )?;
            }
            bar.inc(end - start);
            start = end;
        }
        Ok(provenance)
    })?;
    bar.finish_and_clear();
    println!(
        "synth: {} galaxies (seed {}) -> train {}, validation {}, test {}; wrote {}",
        args.n,
        args.seed,
        sizes[0],
        sizes[1],
        sizes[2],
        args.out.display()
    );
    Ok(())
}
