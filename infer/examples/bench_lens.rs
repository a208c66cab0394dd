//! Timings of the lensing forward model (GIGA-Lens reference system, value + gradient):
//! `cargo run -p infer --example bench_lens [reps]`. See `infer::lens::bench`.

fn main() -> anyhow::Result<()> {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    println!(
        "{:<42} {:>6} {:>14} {:>12}",
        "benchmark", "batch", "ms/sample", "ms/call"
    );
    for t in infer::lens::bench::run_all(reps)? {
        println!(
            "{:<42} {:>6} {:>14.3} {:>12.1}",
            t.name, t.batch, t.ms_per_sample, t.ms_per_call
        );
    }
    Ok(())
}
