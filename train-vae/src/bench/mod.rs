//! `train-vae bench`: timings of the paper's VAE on one device, in the three workloads of the
//! reference measurements (`shared/reference/README.md`, `vae_pytorch_reference.py`):
//!
//! - W1: one training step at batch 32 (forward, negative ELBO, backward, Adam step),
//! - W2: decoder in validation mode, forward + backward of sum(mu_d(z)^2) w.r.t. z at batch 1
//!   (the inner loop of lens inference),
//! - W3: the same at batch 64.
//!
//! Each is warmed up, then timed `iters` times (W2: 5x as often); the median is printed with its
//! ratio to PyTorch 2.9 CPU measured on the same machine (1038 / 8.5 / 209 ms).

use crate::train::adam::{AdamParams, FusedAdam};
use crate::train::config::{ADAM_EPSILON, DEFAULT_LR, PAPER_BATCH, PAPER_BETAS};
use crate::train::elbo::negative_elbo;
use anyhow::{Result, ensure};
use arclight_core::DeviceChoice;
use arclight_vae::model::vae::standard_normal;
use arclight_vae::model::{Vae, VaeConfig};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::time::Instant;

pub mod prepare;

/// PyTorch 2.9.0 CPU reference on this machine, ms: (W1, W2, W3).
pub const PYTORCH_MS: (f64, f64, f64) = (1038.0, 8.5, 209.0);

/// Options of `train-vae bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Compute device: flex or tch.
    #[arg(long, default_value = "flex")]
    pub device: DeviceChoice,
    /// Timed repetitions per workload (W2 uses 5x as many).
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Workloads to run: any of w1, w2, w3, prep (prepare a 20,000-row catalog), comma-separated.
    #[arg(long, default_value = "w1,w2,w3,prep")]
    pub only: String,
    /// Write the figures as JSON to this file too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// One timed workload.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    pub name: String,
    pub batch: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub runs: usize,
    pub images_per_s: f64,
    pub pytorch_ms: f64,
    pub ratio_to_pytorch: f64,
}

fn time<F: FnMut()>(warm: usize, n: usize, mut f: F) -> (f64, f64) {
    for _ in 0..warm {
        f();
    }
    let mut ts: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ts.sort_by(f64::total_cmp);
    (ts[ts.len() / 2], ts[0])
}

fn timing(
    name: &str,
    batch: usize,
    (median_ms, min_ms): (f64, f64),
    runs: usize,
    pytorch_ms: f64,
) -> Timing {
    Timing {
        name: name.into(),
        batch,
        median_ms,
        min_ms,
        runs,
        images_per_s: batch as f64 / (median_ms / 1e3),
        pytorch_ms,
        ratio_to_pytorch: median_ms / pytorch_ms,
    }
}

fn uniform(rng: &mut StdRng, shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// W1: median time of a batch-32 training step of the paper's VAE.
pub fn bench_train_step(device: DeviceChoice, iters: usize) -> Result<Timing> {
    let ad = device.autodiff()?;
    let cfg = VaeConfig::default();
    let mut vae = Some(Vae::new(&cfg, 42, &ad));
    let mut optim = FusedAdam::new(AdamParams {
        beta_1: PAPER_BETAS.0 as f32,
        beta_2: PAPER_BETAS.1 as f32,
        epsilon: ADAM_EPSILON as f32,
    });
    let mut rng = StdRng::seed_from_u64(1);
    let x = uniform(&mut rng, [PAPER_BATCH, 1, 64, 64], &ad);
    // Per phase (forward + loss, backward, Adam), each ended by reading a value back.
    let mut phases = [Vec::new(), Vec::new(), Vec::new()];
    let t = time(2, iters, || {
        let t0 = Instant::now();
        let eps = standard_normal(&mut rng, PAPER_BATCH, cfg.latent_dim, &ad);
        let model = vae.take().expect("model present");
        let out = model.forward(x.clone(), eps);
        let terms = negative_elbo(
            x.clone(),
            out.reconstruction,
            out.encoding.mu,
            out.encoding.log_sigma,
            cfg.sigma_d,
        );
        let _ = terms.loss.clone().into_scalar::<f32>();
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(terms.loss.backward(), &model);
        let t2 = Instant::now();
        // Moved, not cloned: the optimizer can then update parameters without copying them.
        let model = optim.step(DEFAULT_LR, model, grads);
        let _ = model
            .decoder
            .deconv5
            .weight
            .val()
            .sum()
            .into_scalar::<f32>();
        vae = Some(model);
        let t3 = Instant::now();
        for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3)].into_iter().enumerate() {
            phases[k].push((b - a).as_secs_f64() * 1e3);
        }
    });
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "  W1 phases (median over warm-up + timed runs): forward+ELBO {:.0} ms, backward {:.0} ms, Adam {:.0} ms",
        median(&mut phases[0]),
        median(&mut phases[1]),
        median(&mut phases[2])
    );
    Ok(timing("W1 train step", PAPER_BATCH, t, iters, PYTORCH_MS.0))
}

/// W2/W3: median time of decoder forward + backward of sum(output^2) w.r.t. z at `batch`.
pub fn bench_decoder_grad(device: DeviceChoice, batch: usize, iters: usize) -> Result<Timing> {
    let ad = device.autodiff()?;
    let cfg = VaeConfig::default();
    let decoder = Vae::new(&cfg, 42, &ad).decoder.valid();
    let mut rng = StdRng::seed_from_u64(2);
    let z0: Vec<f32> = (0..batch * cfg.latent_dim)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let runs = if batch == 1 { iters * 5 } else { iters };
    let t = time(3, runs, || {
        let z = Tensor::<2>::from_data(TensorData::new(z0.clone(), [batch, cfg.latent_dim]), &ad)
            .require_grad();
        let out = decoder.forward(z.clone());
        let grads = out.square().sum().backward();
        let g = z.grad(&grads).expect("z requires a gradient");
        let _ = g.sum().into_scalar::<f32>();
    });
    let (name, reference) = if batch == 1 {
        ("W2 decoder grad", PYTORCH_MS.1)
    } else {
        ("W3 decoder grad", PYTORCH_MS.2)
    };
    Ok(timing(name, batch, t, runs, reference))
}

/// Run `train-vae bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    ensure!(args.iters >= 1, "--iters must be at least 1");
    let want: Vec<String> = args
        .only
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    for w in &want {
        ensure!(
            ["w1", "w2", "w3", "prep"].contains(&w.as_str()),
            "--only {}: unknown workload '{w}' (w1, w2, w3, prep)",
            args.only
        );
    }
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!(
        "device {} | paper VAE (D=64, widths 64..512, head 4096) | {} timed runs | RAYON_NUM_THREADS={threads} | {} cores",
        args.device,
        args.iters,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let mut out = Vec::new();
    let mut prep = None;
    for w in &want {
        if w == "prep" {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/bench-data/prepare");
            let p = prepare::bench_prepare(&dir)?;
            println!(
                "{:<16} {} rows, {:.2} GB of stamps: {:>7.1} s, {:>7.0} rows/s, peak memory {:.0} MB | full {}-row sample: ~{:.0} s",
                "prepare",
                p.rows,
                p.image_bytes as f64 / 1e9,
                p.wall_s,
                p.rows_per_s,
                p.peak_rss_mb,
                prepare::FULL_SAMPLE_ROWS,
                p.full_sample_s
            );
            prep = Some(p);
            continue;
        }
        let t = match w.as_str() {
            "w1" => bench_train_step(args.device, args.iters)?,
            "w2" => bench_decoder_grad(args.device, 1, args.iters)?,
            _ => bench_decoder_grad(args.device, 64, args.iters)?,
        };
        println!(
            "{:<16} batch {:>2}: median {:>9.2} ms (min {:>9.2}) {:>8.1} images/s | PyTorch {:>7.1} ms -> ratio {:.2}",
            t.name,
            t.batch,
            t.median_ms,
            t.min_ms,
            t.images_per_s,
            t.pytorch_ms,
            t.ratio_to_pytorch
        );
        out.push(t);
    }
    if let Some(p) = &args.json {
        arclight_core::write_json_atomic(
            p,
            &serde_json::json!({"device": args.device, "timings": out, "prepare": prep}),
        )?;
    }
    Ok(())
}
