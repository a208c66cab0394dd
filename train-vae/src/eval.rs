//! `train-vae eval`: how well a trained VAE models held-out galaxies (Sec. 2.3).
//!
//! Writes into `--out`:
//! - `metrics.json` (written last): ELBO (eq. 4) and its terms on the chosen split (default `test`),
//!   the reconstruction chi^2 per pixel, both with sigma_d and with each image's own noise sigma,
//!   the KL and activity per latent dimension with the number of active dimensions
//!   (`train::latent_usage`), and the latent prior's log-volume;
//! - `reconstructions.png` (Fig. 2): inputs on the top row, reconstructions mu_d(z),
//!   z ~ N(mu_e(x), sigma_e(x)), on the bottom row;
//! - `rotation.png` (Fig. 3): one galaxy rotated counter-clockwise by several angles with the
//!   new pixels filled with Gaussian noise of the image's noise sigma (top), the VAE
//!   reconstructions (middle) and those rotated back (bottom), one colour scale for all panels.
//!
//! and a run record `experiments/eval-<time>-<checkpoint name>/` (`arclight_core::record`):
//! `config` = the options with absolute paths, `summary.json` = `metrics.json` plus `out` and
//! `figures`. Bad options, a missing checkpoint or data set fail before the record is created;
//! a failure after that marks it failed.

use crate::train::batches::images_tensor;
use crate::train::config::SweepTag;
use crate::train::evaluate::{SetMetrics, evaluate_set};
use crate::train::latent_usage::{ACTIVE_THRESHOLD, LatentUsage, latent_usage};
use anyhow::{Context, Result, ensure};
use arclight_core::DeviceChoice;
use arclight_core::plot::{GridOptions, Panel, image_grid};
use arclight_core::record::{Run, RunKind, RunSpec};
use arclight_vae::checkpoint;
use arclight_vae::dataset::{GalaxySet, Split, read_split};
use arclight_vae::model::Vae;
use arclight_vae::model::vae::standard_normal;
use arclight_vae::prior::LatentPrior;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Options of `train-vae eval`.
#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// Checkpoint directory with encoder and decoder (a full checkpoint).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// HDF5 data set to evaluate on.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder for metrics.json and the figures.
    #[arg(long)]
    pub out: PathBuf,
    /// Split to evaluate: train, validation or test.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Reparametrised samples per image for the ELBO.
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    /// Galaxies shown in the reconstruction figure.
    #[arg(long, default_value_t = 8)]
    pub show: usize,
    /// Index (within the split) of the galaxy of the rotation figure.
    #[arg(long, default_value_t = 0)]
    pub rotate_index: usize,
    /// Rotation angles in degrees, comma-separated.
    #[arg(long, default_value = "0,60,120,180,240,300")]
    pub angles: String,
    /// Seed of the sampling noise and of the fill noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute device: flex or tch.
    #[arg(long, default_value = "flex")]
    pub device: DeviceChoice,
    /// Root folder of experiment records.
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
}

/// Contents of `metrics.json`.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub checkpoint: String,
    pub data: String,
    pub split: String,
    pub samples: usize,
    pub sigma_d: f64,
    /// Mean ELBO etc. over the split (nats per image), chi^2 per pixel.
    #[serde(flatten)]
    pub metrics: SetMetrics,
    pub latent_dim: usize,
    /// KL and activity per latent dimension, active dimensions.
    #[serde(flatten)]
    pub usage: LatentUsage,
    /// 1/2 log det of the checkpoint's latent-prior covariance (`None`: no prior saved).
    pub prior_log_volume: Option<f64>,
}

/// Run `train-vae eval`, with a run record.
pub fn run(args: EvalArgs) -> Result<()> {
    run_with(&args, None).map(|_| ())
}

/// `train-vae eval` with its run record tagged as one setting of a sweep when `sweep` is given;
/// returns the report and the record's folder.
pub fn run_with(args: &EvalArgs, sweep: Option<&SweepTag>) -> Result<(EvalReport, PathBuf)> {
    let inputs = EvalInputs::load(args)?;
    let name = args
        .checkpoint
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vae".into());
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut record = Run::create(
        &args.experiments,
        RunSpec {
            kind: RunKind::Eval,
            name: &name,
            config: json!({
                "checkpoint": abs(&args.checkpoint), "data": abs(&args.data), "out": abs(&args.out),
                "split": inputs.split.name(), "samples": args.samples, "show": args.show,
                "rotate_index": args.rotate_index, "angles": inputs.angles, "seed": args.seed,
                "device": args.device.to_string(), "sweep": sweep,
            }),
            device: args.device.to_string(),
            seed: Some(args.seed),
        },
    )?;
    let report = match inputs.evaluate(args) {
        Ok(r) => r,
        Err(e) => {
            let _ = record.fail(&format!("{e:#}"));
            return Err(e);
        }
    };
    let mut summary = serde_json::to_value(&report)?;
    summary["out"] = json!(abs(&args.out));
    summary["figures"] = json!(["reconstructions.png", "rotation.png"]);
    record.finish(summary)?;
    println!(
        "{} split of {}: {} images, ELBO {:.2} nats/image (rec {:.2}, KL {:.2}), chi2/pixel {:.3} (sigma_d), {:.3} (noise)",
        report.split,
        report.data,
        report.metrics.n,
        report.metrics.elbo,
        report.metrics.rec,
        report.metrics.kl,
        report.metrics.chi2_per_pixel,
        report.metrics.chi2_per_pixel_noise
    );
    println!(
        "latent use: {} of {} dimensions active (activity > {ACTIVE_THRESHOLD}){}",
        report.usage.active_dims,
        report.latent_dim,
        report
            .prior_log_volume
            .map(|v| format!(", prior log-volume {v:.2}"))
            .unwrap_or_default()
    );
    println!("wrote {}", args.out.display());
    println!("run record: {}", record.dir().display());
    Ok((report, record.dir().to_path_buf()))
}

/// Evaluate and write `metrics.json`, `reconstructions.png`, `rotation.png` into `args.out`
/// (no run record).
pub fn evaluate(args: &EvalArgs) -> Result<EvalReport> {
    EvalInputs::load(args)?.evaluate(args)
}

/// Everything `eval` reads, checked: options, the checkpoint, the split.
struct EvalInputs {
    split: Split,
    angles: Vec<f64>,
    device: Device,
    vae: Vae,
    sigma_d: f64,
    set: GalaxySet,
}

impl EvalInputs {
    fn load(args: &EvalArgs) -> Result<EvalInputs> {
        let split: Split = args
            .split
            .parse()
            .with_context(|| format!("--split {}", args.split))?;
        ensure!(args.samples >= 1, "--samples must be at least 1");
        ensure!(args.show >= 1, "--show must be at least 1");
        let angles = parse_angles(&args.angles)?;
        let device = args.device.device()?;
        let (vae, meta) = checkpoint::load_vae(&args.checkpoint, &device)?;
        let vae = vae.valid();
        let set = read_split(&args.data, split)?;
        ensure!(
            !set.is_empty(),
            "--data {}: the {split} split has no images",
            args.data.display()
        );
        ensure!(
            args.rotate_index < set.n,
            "--rotate-index {} is out of range: the {split} split has {} images",
            args.rotate_index,
            set.n
        );
        Ok(EvalInputs {
            split,
            angles,
            device,
            vae,
            sigma_d: meta.architecture.sigma_d,
            set,
        })
    }

    fn evaluate(self, args: &EvalArgs) -> Result<EvalReport> {
        let EvalInputs {
            split,
            angles,
            device,
            vae,
            sigma_d,
            set,
        } = self;
        let metrics = evaluate_set(&vae, &set, args.samples, sigma_d, args.seed, &device);
        let usage = latent_usage(&vae, &set, &device);
        let prior_file = args.checkpoint.join(checkpoint::PRIOR_FILE);
        let prior_log_volume = if prior_file.is_file() {
            Some(LatentPrior::load(&prior_file)?.log_volume())
        } else {
            None
        };
        let report = EvalReport {
            latent_dim: vae.decoder.latent_dim,
            usage,
            prior_log_volume,
            checkpoint: args.checkpoint.display().to_string(),
            data: args.data.display().to_string(),
            split: split.to_string(),
            samples: args.samples,
            sigma_d,
            metrics,
        };
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create --out {}", args.out.display()))?;
        let mut rng = StdRng::seed_from_u64(args.seed);
        reconstruction_figure(
            &vae,
            &set,
            args.show.min(set.n),
            &mut rng,
            &device,
            &args.out.join("reconstructions.png"),
        )?;
        rotation_figure(
            &vae,
            &set,
            args.rotate_index,
            &angles,
            &mut rng,
            &device,
            &args.out.join("rotation.png"),
        )?;
        // last, so that its presence means the evaluation completed
        arclight_core::write_json_atomic(&args.out.join("metrics.json"), &report)?;
        Ok(report)
    }
}

fn parse_angles(s: &str) -> Result<Vec<f64>> {
    let v: Result<Vec<f64>> = s
        .split(',')
        .map(|a| {
            a.trim()
                .parse::<f64>()
                .with_context(|| format!("--angles {s}: '{a}' is not a number of degrees"))
        })
        .collect();
    let v = v?;
    ensure!(
        !v.is_empty() && v.iter().all(|a| a.is_finite()),
        "--angles {s}: give finite angles in degrees"
    );
    Ok(v)
}

/// Reconstruct images `[N, 1, S, S]` as in Fig. 2: z ~ N(mu_e(x), sigma_e(x)), x_hat = mu_d(z).
fn reconstruct(vae: &Vae, x: Tensor<4>, rng: &mut StdRng, device: &Device) -> Vec<f32> {
    let n = x.dims()[0];
    let eps = standard_normal(rng, n, vae.decoder.latent_dim, device);
    vae.forward(x, eps)
        .reconstruction
        .into_data()
        .try_to_vec()
        .expect("f32 output")
}

fn reconstruction_figure(
    vae: &Vae,
    set: &GalaxySet,
    n: usize,
    rng: &mut StdRng,
    device: &Device,
    path: &Path,
) -> Result<()> {
    let idx: Vec<usize> = (0..n).collect();
    let recon = reconstruct(vae, images_tensor(set, &idx, device), rng, device);
    let s = set.size;
    let p = s * s;
    let (mut top, mut bottom) = (Vec::new(), Vec::new());
    for i in 0..n {
        let input = set.image(i).to_vec();
        let (lo, hi) = (
            0.0f32,
            input.iter().cloned().fold(f32::MIN, f32::max).max(1e-6),
        );
        top.push(
            Panel::new(
                &format!("ident {}", set.ident[i]),
                input,
                s,
                s,
                arclight_core::png::viridis,
            )
            .with_limits(lo, hi),
        );
        bottom.push(
            Panel::new(
                "",
                recon[i * p..(i + 1) * p].to_vec(),
                s,
                s,
                arclight_core::png::viridis,
            )
            .with_limits(lo, hi),
        );
    }
    let opts = GridOptions {
        title: "VAE reconstructions of held-out galaxies (top: input, bottom: reconstruction)"
            .into(),
        row_labels: vec!["input".into(), "reconstruction".into()],
        panel_px: 128,
        font_px: 13.0,
    };
    image_grid(path, vec![top, bottom], &opts)
}

/// Rotate a row-major `s x s` image counter-clockwise (as displayed, row 0 on top) by `deg`
/// about its centre with bilinear interpolation; pixels whose source lies outside the image get
/// `fill()`.
pub fn rotate(image: &[f32], s: usize, deg: f64, mut fill: impl FnMut() -> f32) -> Vec<f32> {
    let (sin, cos) = deg.to_radians().sin_cos();
    let c = (s as f64 - 1.0) / 2.0;
    let mut out = vec![0.0f32; s * s];
    for iy in 0..s {
        for ix in 0..s {
            // Display coordinates with y up; the source point is the output point rotated by -deg.
            let (u, v) = (ix as f64 - c, c - iy as f64);
            let (us, vs) = (cos * u + sin * v, -sin * u + cos * v);
            let (fx, fy) = (c + us, c - vs);
            out[iy * s + ix] = if fx < 0.0 || fy < 0.0 || fx > (s - 1) as f64 || fy > (s - 1) as f64
            {
                fill()
            } else {
                let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(s - 1), (y0 + 1).min(s - 1));
                let (tx, ty) = ((fx - x0 as f64) as f32, (fy - y0 as f64) as f32);
                let at = |x: usize, y: usize| image[y * s + x];
                (1.0 - ty) * ((1.0 - tx) * at(x0, y0) + tx * at(x1, y0))
                    + ty * ((1.0 - tx) * at(x0, y1) + tx * at(x1, y1))
            };
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn rotation_figure(
    vae: &Vae,
    set: &GalaxySet,
    index: usize,
    angles: &[f64],
    rng: &mut StdRng,
    device: &Device,
    path: &Path,
) -> Result<()> {
    let s = set.size;
    let p = s * s;
    let noise = Normal::new(0.0f32, set.noise_sigma[index].max(0.0)).with_context(|| {
        format!(
            "image {index} has an invalid noise sigma {}",
            set.noise_sigma[index]
        )
    })?;
    let image = set.image(index);
    let mut rotated = Vec::with_capacity(angles.len() * p);
    for &a in angles {
        let mut fill_rng = StdRng::seed_from_u64(rng.next_u64());
        rotated.extend(rotate(image, s, a, || noise.sample(&mut fill_rng)));
    }
    let x = Tensor::<4>::from_data(
        TensorData::new(rotated.clone(), [angles.len(), 1, s, s]),
        device,
    );
    let recon = reconstruct(vae, x, rng, device);
    let mut all = rotated.clone();
    all.extend_from_slice(&recon);
    let lo = all.iter().cloned().fold(f32::MAX, f32::min).min(0.0);
    let hi = all.iter().cloned().fold(f32::MIN, f32::max).max(1e-6);
    let (mut r0, mut r1, mut r2) = (Vec::new(), Vec::new(), Vec::new());
    for (k, &a) in angles.iter().enumerate() {
        let rec = &recon[k * p..(k + 1) * p];
        let cm = arclight_core::png::viridis;
        r0.push(
            Panel::new(
                &format!("{a} deg"),
                rotated[k * p..(k + 1) * p].to_vec(),
                s,
                s,
                cm,
            )
            .with_limits(lo, hi),
        );
        r1.push(Panel::new("", rec.to_vec(), s, s, cm).with_limits(lo, hi));
        r2.push(Panel::new("", rotate(rec, s, -a, || 0.0), s, s, cm).with_limits(lo, hi));
    }
    let opts = GridOptions {
        title: format!(
            "Rotated galaxy (ident {}), reconstruction, derotated reconstruction",
            set.ident[index]
        ),
        row_labels: vec![
            "rotated".into(),
            "reconstruction".into(),
            "derotated".into(),
        ],
        panel_px: 128,
        font_px: 13.0,
    };
    image_grid(path, vec![r0, r1, r2], &opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_by_90_degrees_moves_right_to_top() {
        // 3x3 image with one bright pixel right of centre (row 1, col 2).
        let mut img = vec![0.0f32; 9];
        img[5] = 1.0;
        let r = rotate(&img, 3, 90.0, || -1.0);
        // Counter-clockwise by 90 deg: right of centre goes to above centre (row 0, col 1).
        assert!((r[1] - 1.0).abs() < 1e-6, "{r:?}");
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let back = rotate(&r, 3, -90.0, || -1.0);
        assert!((back[5] - 1.0).abs() < 1e-6);
        // 45 degrees leaves the corners without source: they get the fill value.
        let r45 = rotate(&[1.0; 9], 3, 45.0, || -1.0);
        assert_eq!(r45[0], -1.0);
        assert_eq!(r45[4], 1.0);
    }
}
