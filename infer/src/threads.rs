//! `--threads N`: pin the worker pool to N threads, e.g. a cluster task's allocated cores. Every parallel
//! kernel of the program (burn-flex tensor ops and its GEMM, the fused lens kernels, the folded decoder)
//! runs on rayon's global pool, so sizing that pool before any work starts pins them all. libtorch
//! (`--device tch`) sizes its own pool from `OMP_NUM_THREADS` when it starts: set here too, unless the
//! environment already says.

use anyhow::{Result, bail};

/// Size rayon's global pool to `n` threads. Must run before the first parallel call; fails if the
/// pool already exists with another size.
pub fn pin_threads(n: usize) -> Result<()> {
    if n == 0 {
        bail!("--threads: needs at least 1 thread");
    }
    if std::env::var_os("OMP_NUM_THREADS").is_none() {
        // SAFETY: called from `main` before any thread of this process starts.
        unsafe { std::env::set_var("OMP_NUM_THREADS", n.to_string()) };
    }
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("worker-{i}"))
        .build_global()
        && rayon::current_num_threads() != n
    {
        bail!("--threads {n}: cannot size the worker pool: {e}");
    }
    Ok(())
}
