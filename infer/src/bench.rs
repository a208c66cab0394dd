//! `infer bench`: the speed figures of the inference issue, printed with the anchors measured on
//! this machine (GIGA-Lens 2.0.1 on JAX CPU: 31-147 ms per sample value+gradient at batch 300;
//! lenstronomy: 8-13 ms per forward image without gradient) and the bars.
//!
//! - GIGA-Lens reference model (EPL + shear + Sersic lens light + Sersic source, 80x80, k = 2,
//!   13x13 PSF): value + gradient per sample, fused kernel and burn tensors, batch 300 and 1
//!   (bar: <= 3 ms per sample at batch 300);
//! - VAE-source model of Chianese et al. (256x256, Gaussian PSF, decoder of
//!   `checkpoints/default`): value + gradient at batch 1 (bar: <= 20 ms).

use anyhow::Result;
use burn::tensor::Device;
use rand::SeedableRng;
use std::path::Path;
use std::time::Instant;

use crate::lens::bench::{Timing, run_all};
use crate::model::likelihood::LensLikelihood;
use crate::model::observation::Observation;
use crate::pipeline::problem::Problem;
use crate::prob::LogLikelihood;

/// GIGA-Lens on JAX/CPU, value + gradient per sample at batch 300, measured here (ms): low end.
pub const GIGALENS_MS_PER_SAMPLE: (f64, f64) = (31.0, 147.0);

/// Time value + gradient of the VAE-source model at batch `batch` (median ms per call).
pub fn bench_vae_model(
    model: &Path,
    checkpoint: Option<&Path>,
    batch: usize,
    reps: usize,
) -> Result<Timing> {
    let device = Device::flex();
    let problem = Problem::load(model, checkpoint, &device)?;
    let (layout, slots) = problem.layout()?;
    let (ny, nx) = (problem.spec.grid.ny, problem.spec.grid.nx);
    let obs = Observation::new(Path::new("bench"), ny, nx, vec![0.1; ny * nx], None, None)?;
    let lik = LensLikelihood::new(problem.forward(slots, &device.clone().autodiff())?, &obs)?;
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
        name: format!("VAE model {}x{} value+grad ({})", ny, nx, problem.spec.name),
        batch,
        ms_per_sample: ms / batch as f64,
        ms_per_call: ms,
    })
}

/// Print every figure.
pub fn run(reps: usize) -> Result<()> {
    println!(
        "infer bench (median of {reps} repetitions; RAYON_NUM_THREADS={})",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into())
    );
    println!(
        "{:<52} {:>6} {:>12} {:>12} {:>22}",
        "figure", "batch", "ms/sample", "ms/call", "vs GIGA-Lens JAX CPU"
    );
    let mut rows = run_all(reps)?;
    let ck = crate::pipeline::problem::default_checkpoint();
    if ck.join("prior.json").exists() {
        let model = crate::pipeline::problem::resolve_shipped("infer/models/chianese2020.toml");
        rows.push(bench_vae_model(&model, Some(&ck), 1, reps)?);
    } else {
        println!(
            "(no {} here: VAE-model figure skipped; run from the repository root)",
            ck.display()
        );
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
    Ok(())
}
