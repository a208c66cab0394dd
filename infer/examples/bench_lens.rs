//! Timings of the lensing forward model (GIGA-Lens reference system, value + gradient):
//! `cargo run -p infer --example bench_lens [reps] [fused|hmc|placed|profiles|tensor|psf]` (default: all).
//! See `infer::bench::lens`.

use infer::bench::lens as bench;

fn main() -> anyhow::Result<()> {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    let only = std::env::args().nth(2);
    let rows = match only.as_deref() {
        None => bench::run_all_cpu(reps)?,
        Some("fused") => {
            let sys = bench::ReferenceSystem::new(1)?;
            vec![
                bench::bench_fused(&sys, 300, reps)?,
                bench::bench_fused(&sys, 8, reps * 10)?,
                bench::bench_fused(&sys, 1, reps * 10)?,
            ]
        }
        Some("hmc") => {
            // the batch of an 8-chain HMC step
            let sys = bench::ReferenceSystem::new(1)?;
            vec![
                bench::bench_fused(&sys, 8, reps)?,
                bench::bench_fused_value(&sys, 8, reps)?,
            ]
        }
        Some("placed") => vec![bench::bench_fused_placed(1, reps)?],
        Some("profiles") => {
            let sys = bench::ReferenceSystem::new(1)?;
            bench::bench_profiles(&sys, 64, reps)?
                .into_iter()
                .map(|(_, t)| t)
                .collect()
        }
        Some("tensor") => {
            let sys = bench::ReferenceSystem::new(1)?;
            vec![
                bench::bench_tensor(&sys, 1, reps)?,
                bench::bench_tensor(&sys, 300, reps.min(3))?,
            ]
        }
        Some("psf") => {
            let sys = bench::ReferenceSystem::new(1)?;
            let g = infer::lens::psf::Psf::gaussian(0.08, 0.065, 4.0)?;
            vec![
                bench::bench_psf(
                    &sys,
                    &sys.psf,
                    "PSF 13x13 direct conv2d value+grad",
                    300,
                    reps,
                ),
                bench::bench_psf(&sys, &g, "PSF Gaussian separable value+grad", 300, reps),
            ]
        }
        Some("pixelated") => vec![
            bench::bench_pixelated_source(1, reps)?,
            bench::bench_fused_placed(1, reps * 4)?,
            bench::bench_fused_placed(16, reps)?,
        ],
        Some(other) => anyhow::bail!("unknown benchmark group {other:?} (fused, tensor, psf)"),
    };
    println!(
        "{:<42} {:>6} {:>10} {:>10} {:>14}",
        "benchmark", "batch", "ms/sample", "ms/call", "cpu ms/sample"
    );
    for c in rows {
        let t = &c.timing;
        println!(
            "{:<42} {:>6} {:>10.3} {:>10.1} {:>14.3}",
            t.name, t.batch, t.ms_per_sample, t.ms_per_call, c.cpu_ms_per_sample
        );
    }
    Ok(())
}
