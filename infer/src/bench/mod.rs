//! `infer bench`: the speed figures of the inference issue, printed with the anchors measured on
//! this machine (GIGA-Lens 2.0.1 on JAX CPU: 31-147 ms per sample value+gradient at batch 300;
//! lenstronomy: 8-13 ms per forward image without gradient) and the bars.
//!
//! - GIGA-Lens reference model (EPL + shear + Sersic lens light + Sersic source, 80x80, k = 2,
//!   13x13 PSF): value + gradient per sample, fused kernel and burn tensors, batch 300 and 1
//!   (bar: <= 3 ms per sample at batch 300);
//! - VAE-source model of Chianese et al. (256x256, Gaussian PSF, decoder of
//!   `checkpoints/default`, else a randomly initialised decoder of the paper's width: the cost
//!   does not depend on the weights): value + gradient at batch 1 through [`ModelLikelihood`],
//!   exactly what `infer fit` runs (bar: <= 20 ms);
//! - the full pipeline (mock, then `infer fit` with defaults) on the GIGA-Lens reference mock
//!   (`gigalens2022.toml`, seed 4): wall time against GIGA-Lens's 105 s on four A100s (bar: <= 30 s).

use anyhow::Result;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub mod lens;

use crate::model::likelihood::ModelLikelihood;
use crate::model::observation::Observation;
use crate::model::spec::ModelSpec;
use crate::pipeline::problem::Problem;
use crate::prob::{LogLikelihood, MvNormal};
use crate::source::folded_decoder::FoldedDecoder;
use crate::source::vae::Decode;
use arclight_vae::model::{Decoder, VaeConfig};
use lens::{Timing, run_all};

/// GIGA-Lens on JAX/CPU, value + gradient per sample at batch 300, measured here (ms): low end.
pub const GIGALENS_MS_PER_SAMPLE: (f64, f64) = (31.0, 147.0);

/// GIGA-Lens's full pipeline on one system, four A100 GPUs (Gu et al. 2022, Sec. 4), seconds.
pub const GIGALENS_PIPELINE_S: f64 = 105.0;

/// Mock the GIGA-Lens reference system (seed 4) and fit it with `infer fit`'s defaults in a temporary
/// directory; prints the wall time per stage and the convergence figures the 30 s bar is judged with.
pub fn bench_reference_fit(device: &Device) -> Result<()> {
    use crate::pipeline::fit::{FitConfig, RunTarget, run_fit};
    use crate::pipeline::mock::{MockOptions, run_mock};
    let model = crate::pipeline::problem::resolve_shipped("infer/models/gigalens2022.toml");
    let dir = std::env::temp_dir().join(format!("arclight-bench-{}", std::process::id()));
    let result = (|| -> Result<()> {
        run_mock(
            &MockOptions {
                model: model.clone(),
                seed: 4,
                out: dir.join("mock"),
                checkpoint: None,
                sigma_noise: None,
                source_image: None,
                source_half_width: None,
            },
            device,
        )?;
        let cfg = FitConfig::new(dir.join("mock").join("obs.fits"), model.clone());
        let t = Instant::now();
        let out = run_fit(&cfg, RunTarget::At(dir.join("fit")), device)?;
        let wall = t.elapsed().as_secs_f64();
        let stage = |k: &str| out.timings.get(k).copied().unwrap_or(f64::NAN);
        let rounds = out.hmc_rounds.len();
        let divergent: usize = out.hmc_rounds.last().map_or(0, |r| r.divergent);
        println!(
            "full pipeline, GIGA-Lens reference mock (seed 4), infer fit defaults: {wall:.1} s \
             (MAP {:.1}, VI {:.1}, HMC {:.1} in {rounds} round(s)); max R-hat {:.4}, min ESS {:.0}, \
             {divergent} divergent; GIGA-Lens on 4 A100s {GIGALENS_PIPELINE_S:.0} s: x{:.1} (bar <= 30 s)",
            stage("map_s"),
            stage("vi_s"),
            stage("hmc_s"),
            out.rhat_max.unwrap_or(f64::NAN),
            out.ess_min.unwrap_or(f64::NAN),
            GIGALENS_PIPELINE_S / wall,
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A decoder of the paper's architecture (Table D2, D = 64) with seeded random weights, for
/// timing when no trained checkpoint is at hand.
struct RandomPaperDecoder(Decoder, FoldedDecoder);

impl Decode for RandomPaperDecoder {
    fn latent_dim(&self) -> usize {
        self.0.latent_dim
    }
    fn decode(&self, z: Tensor<2>) -> Tensor<3> {
        let b = z.dims()[0];
        let n = VaeConfig::default().image_size;
        self.0.forward(z).reshape([b, n, n])
    }
    fn folded(&self) -> Option<&FoldedDecoder> {
        Some(&self.1)
    }
}

/// Which implementation a VAE-model timing uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VaePath {
    /// What `infer fit` runs on flex: the fused lens kernel and the folded host decoder.
    Folded,
    /// The fused lens kernel with the decoder on burn autodiff (what `--device tch` runs).
    BurnDecoder,
    /// Everything on burn autodiff.
    Autodiff,
}

/// Time value + gradient of the VAE-source model at batch `batch` (median ms per call), through
/// [`ModelLikelihood`] (the fused path when the model has its shape, as in `infer fit`).
/// `checkpoint`: the trained prior to decode with; `None` for a random paper-width decoder.
/// `path` picks the implementation: the default (fused kernel + folded host decoder), the fused
/// kernel with the decoder on burn autodiff, or the all-autodiff tensor path (for comparison).
pub fn bench_vae_model(
    model: &Path,
    checkpoint: Option<&Path>,
    batch: usize,
    reps: usize,
    path: VaePath,
    device: &Device,
) -> Result<Timing> {
    let device = device.clone();
    let problem = match checkpoint {
        Some(ck) => Problem::load(model, Some(ck), &device)?,
        None => {
            let config = VaeConfig::default();
            let mut rng = rand::rngs::StdRng::seed_from_u64(17);
            let net = Decoder::new(&config, &mut rng, &device).valid();
            let d = config.latent_dim;
            let mut eye = vec![0.0; d * d];
            (0..d).for_each(|k| eye[k * d + k] = 1.0);
            let vae = (
                Arc::new(RandomPaperDecoder(
                    net.clone(),
                    FoldedDecoder::from_decoder(&net, config.image_size)?,
                )) as Arc<dyn Decode>,
                MvNormal::new(vec![0.0; d], &eye)?,
                PathBuf::from("(random paper-width decoder)"),
            );
            let spec = ModelSpec::load(model)?;
            let images = vec![None; spec.source.len()];
            Problem {
                spec,
                vae: Some(vae),
                images,
                warnings: Vec::new(),
            }
        }
    };
    let (layout, slots) = problem.layout()?;
    let (ny, nx) = (problem.spec.grid.ny, problem.spec.grid.nx);
    let obs = Observation::new(Path::new("bench"), ny, nx, vec![0.1; ny * nx], None, None)?;
    let lik = ModelLikelihood::new(
        problem.forward(slots, &device.clone().autodiff())?,
        &obs,
        path != VaePath::Autodiff,
    )?
    .with_folded_decoder(path == VaePath::Folded);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let theta = layout.sample_prior_physical(&mut rng, batch);
    let d = layout.dim();
    let mut ll = vec![0.0; batch];
    let mut g = vec![0.0; batch * d];
    lik.value_and_grad(&theta, batch, &mut ll, &mut g)?;
    let mut times = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        lik.value_and_grad(&theta, batch, &mut ll, &mut g)?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let ms = times[times.len() / 2];
    Ok(Timing {
        name: format!("VAE model {ny}x{nx} value+grad, {}", lik.backend()),
        batch,
        ms_per_sample: ms / batch as f64,
        ms_per_call: ms,
    })
}

/// PyTorch 2.9 CPU on this machine, decoder forward + backward w.r.t. z (the `train-vae bench`
/// workloads W2 at batch 1 and W3 at batch 64), ms; from the shared reference measurements.
pub const PYTORCH_DECODER_MS: [(usize, f64); 2] = [(1, 8.5), (64, 209.0)];

/// Time the folded host decoder ([`FoldedDecoder`]) of the paper's architecture (random weights:
/// same cost) on the `train-vae bench` W2/W3 workload: forward, then the VJP of sum(d(z)^2)
/// (G = 2 d(z)). Median ms per call.
pub fn bench_folded_decoder(batch: usize, reps: usize) -> Result<Timing> {
    let config = VaeConfig::default();
    let device = Device::flex();
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let net = Decoder::new(&config, &mut rng, &device).valid();
    let folded = FoldedDecoder::from_decoder(&net, config.image_size)?;
    let z: Vec<f32> = (0..batch * config.latent_dim)
        .map(|i| ((i as f32) * 0.37).sin())
        .collect();
    let mut times = Vec::new();
    for rep in 0..reps + 2 {
        let t0 = Instant::now();
        let tape = folded.forward(&z, batch);
        let g: Vec<f32> = tape.images().iter().map(|v| 2.0 * v).collect();
        let gz = folded.vjp(&tape, &g);
        std::hint::black_box(gz);
        if rep >= 2 {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let ms = times[times.len() / 2];
    Ok(Timing {
        name: "decoder forward + VJP, folded host decoder".into(),
        batch,
        ms_per_sample: ms / batch as f64,
        ms_per_call: ms,
    })
}

/// Print every figure.
/// All figures; the VAE-model rows decode on `device` (the lensing kernels are host code).
pub fn run(reps: usize, device: &Device) -> Result<()> {
    println!(
        "infer bench (median of {reps} repetitions; {} worker threads)",
        rayon::current_num_threads()
    );
    println!(
        "{:<52} {:>6} {:>12} {:>12} {:>22}",
        "figure", "batch", "ms/sample", "ms/call", "vs GIGA-Lens JAX CPU"
    );
    let mut rows = run_all(reps)?;
    let ck = crate::pipeline::problem::default_checkpoint();
    let model = crate::pipeline::problem::resolve_shipped("infer/models/chianese2020.toml");
    let trained = ck.join("prior.json").exists();
    if trained {
        println!(
            "(VAE-model figures: chianese2020.toml, decoder of {})",
            ck.display()
        );
    } else {
        println!(
            "(VAE-model figures: chianese2020.toml; no trained prior at {}, so a random \
             paper-width decoder: same cost)",
            ck.display()
        );
    }
    let ck = trained.then_some(ck.as_path());
    for path in [VaePath::Folded, VaePath::BurnDecoder, VaePath::Autodiff] {
        rows.push(bench_vae_model(&model, ck, 1, reps, path, device)?);
    }
    // the batched calls of multistart MAP and many-chain HMC
    for batch in [16, 64] {
        rows.push(bench_vae_model(
            &model,
            ck,
            batch,
            reps,
            VaePath::Folded,
            device,
        )?);
    }
    for t in rows {
        let vs = if t.name.contains("VAE") {
            String::new()
        } else {
            format!(
                "{:.0}-{:.0}x faster",
                GIGALENS_MS_PER_SAMPLE.0 / t.ms_per_sample,
                GIGALENS_MS_PER_SAMPLE.1 / t.ms_per_sample
            )
        };
        println!(
            "{:<52} {:>6} {:>12.3} {:>12.2} {:>22}",
            t.name, t.batch, t.ms_per_sample, t.ms_per_call, vs
        );
    }
    println!("bars: GIGA-Lens model <= 3 ms/sample at batch 300; VAE model <= 20 ms at batch 1");
    for (batch, torch_ms) in PYTORCH_DECODER_MS {
        let t = bench_folded_decoder(batch, reps.max(10))?;
        println!(
            "{:<52} {:>6} {:>12.3} {:>12.2} {:>22}",
            t.name,
            t.batch,
            t.ms_per_sample,
            t.ms_per_call,
            format!("PyTorch {torch_ms} ms: x{:.2}", t.ms_per_call / torch_ms)
        );
    }
    registered_profiles(reps)?;
    psf_crossover(reps);
    bench_reference_fit(device)
}

/// The fused kernel with other mass profiles than the reference EPL + shear (same grid, PSF,
/// light and source), as a ratio to EPL + shear measured in the same run.
fn registered_profiles(reps: usize) -> Result<()> {
    let sys = lens::ReferenceSystem::new(1)?;
    let rows = lens::bench_profiles(&sys, 64, reps)?;
    let base = rows[0].1.timing.ms_per_sample;
    for (_, t) in &rows {
        println!(
            "{:<52} {:>6} {:>12.3} {:>12.2} {:>22}",
            t.timing.name,
            t.timing.batch,
            t.timing.ms_per_sample,
            t.timing.ms_per_call,
            format!("x{:.2} of EPL + shear", t.timing.ms_per_sample / base)
        );
    }
    Ok(())
}

/// PSF convolution + adjoint per image in the fused kernels, direct loop against FFT, for square
/// kernels of growing size on the two papers' grids: where `fft::FFT_MIN_TAPS` comes from.
fn psf_crossover(reps: usize) {
    use crate::lens::fused::conv::{convolve, convolve_adjoint};
    use crate::lens::fused::fft::{FFT_MIN_TAPS, FftConv};
    println!(
        "PSF convolution + adjoint per image (fused kernels), ms: direct / FFT (FFT used from {} taps)",
        FFT_MIN_TAPS
    );
    for n in [80usize, 160, 256] {
        let mut line = format!("  {n}x{n}:");
        for kn in [7usize, 9, 13, 17, 25, 41] {
            let k: Vec<f32> = (0..kn * kn).map(|i| 1.0 + (i as f32 * 0.3).sin()).collect();
            let x: Vec<f32> = (0..n * n).map(|i| (i as f32 * 0.01).cos()).collect();
            let (mut a, mut b) = (vec![0.0; n * n], vec![0.0; n * n]);
            let time = |f: &mut dyn FnMut()| {
                let mut v: Vec<f64> = (0..reps.max(3))
                    .map(|_| {
                        let t = Instant::now();
                        f();
                        t.elapsed().as_secs_f64() * 1e3
                    })
                    .collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let direct = time(&mut || {
                convolve(&x, n, n, &k, kn, kn, &mut a);
                convolve_adjoint(&a, n, n, &k, kn, kn, &mut b);
            });
            let fc = FftConv::new(&k, kn, kn, n, n);
            let fft = time(&mut || {
                fc.convolve(&x, &mut a);
                fc.adjoint(&a, &mut b);
            });
            line.push_str(&format!("  {kn}x{kn} {direct:.2}/{fft:.2}"));
        }
        println!("{line}");
    }
}
