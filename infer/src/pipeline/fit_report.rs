//! The text `infer fit` prints when a fit ends.

use crate::prob::layout::vector_block;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::fit::{Estimate, FitOutcome};

/// `writeln!` into a String (which cannot fail).
macro_rules! w {
    ($s:expr, $($arg:tt)*) => {{
        let _ = writeln!($s, $($arg)*);
    }};
}

/// The console report of a fit: run folder, MAP chi^2/dof, every HMC round, the parameter table
/// (vector blocks such as the VAE latent summarised in one line each), figures and stage times.
pub fn render_fit(out: &FitOutcome) -> String {
    let mut s = String::new();
    w!(s, "run record: {}", out.run_dir.display());
    if let Some(c) = out.chi2_dof {
        w!(s, "MAP chi^2/dof = {c:.3}");
    }
    if let (Some(r), Some(e)) = (out.rhat_max, out.ess_min) {
        w!(s, "HMC: max R-hat {r:.4}, min ESS {e:.0}");
    }
    let n_rounds = out.hmc_rounds.len();
    for (k, r) in out.hmc_rounds.iter().enumerate() {
        let what = if r.misses.is_empty() {
            "converged".to_string()
        } else {
            format!("missed {}", r.misses.join(", "))
        };
        let kept = match (k + 1 == n_rounds, r.with_previous) {
            (true, true) => format!(" (kept with round {k}'s draws)"),
            (true, false) => " (kept)".to_string(),
            _ => String::new(),
        };
        let extended = if r.extended > 0 {
            format!(" (+{} continued)", r.extended)
        } else {
            String::new()
        };
        let trajectory = r
            .trajectory
            .map(|t| format!(" (ChEES T {t:.2})"))
            .unwrap_or_default();
        w!(
            s,
            "HMC round {}{kept}: {} + {}{extended} iterations, step {:.3}, mean L {}{trajectory}, target acceptance \
             {:.2}, ESS bulk {:.0} / tail {:.0}, {} divergent: {what}",
            k + 1,
            r.n_burn,
            r.n_samples,
            r.step_size,
            r.n_leapfrog,
            r.target_accept,
            r.min_ess_bulk,
            r.min_ess_tail,
            r.divergent
        );
    }
    // R-hat needs two chains, ESS one: after MAP or VI alone neither exists
    let has_rhat = out.params.iter().any(|p| p.rhat.is_finite());
    let has_ess = out.params.iter().any(|p| p.ess_bulk.is_finite());
    // vector blocks (the VAE latent z) are summarised in one line each, not row by row
    let mut blocks: BTreeMap<&str, (usize, f64, f64)> = BTreeMap::new();
    for (p, name) in out
        .params
        .iter()
        .filter_map(|p| vector_block(&p.name).map(|b| (p, b)))
    {
        let b = blocks
            .entry(name)
            .or_insert((0, f64::NEG_INFINITY, f64::INFINITY));
        b.0 += 1;
        // NaN (a component without a usable diagnostic) stays NaN: never shown as converged
        b.1 = if p.rhat.is_nan() || b.1.is_nan() {
            f64::NAN
        } else {
            b.1.max(p.rhat)
        };
        b.2 = if p.ess_bulk.is_nan() || b.2.is_nan() {
            f64::NAN
        } else {
            b.2.min(p.ess_bulk)
        };
    }
    // after MAP alone the table holds the MAP values and their Laplace widths
    let is_map = out.estimate == Some(Estimate::Map);
    if is_map {
        w!(
            s,
            "MAP point (sd: Laplace approximation; - where the Hessian does not determine it)"
        );
    }
    w!(
        s,
        "{:<18} {:>10} {:>10} {:>10} {:>8} {:>8} {:>7}",
        "parameter",
        if is_map { "MAP" } else { "mean" },
        if is_map { "sd" } else { "std" },
        "truth",
        "z",
        "R-hat",
        "ESS"
    );
    let opt = |v: Option<f64>, w: usize, prec: usize| {
        v.filter(|v| v.is_finite())
            .map(|v| format!("{v:>w$.prec$}"))
            .unwrap_or_else(|| format!("{:>w$}", "-"))
    };
    for p in out
        .params
        .iter()
        .filter(|p| vector_block(&p.name).is_none())
    {
        w!(
            s,
            "{:<18} {:>10.4} {} {} {} {} {}",
            p.name,
            p.mean,
            opt(Some(p.std), 10, 4),
            opt(p.truth, 10, 4),
            opt(p.z, 8, 2),
            opt(has_rhat.then_some(p.rhat), 8, 3),
            opt(has_ess.then_some(p.ess_bulk), 7, 0)
        );
    }
    for (name, (n, rhat, ess)) in &blocks {
        if has_ess {
            let rhat = if has_rhat {
                format!("max R-hat {rhat:.3}, ")
            } else {
                String::new()
            };
            w!(s, "{name} ({n} components): {rhat}min bulk ESS {ess:.0}");
        } else if is_map {
            w!(s, "{name} ({n} components): MAP values in summary.json");
        }
    }
    // chains in two groups: more draws of the same chains will not bring R-hat down
    let split: Vec<_> = out
        .params
        .iter()
        .filter_map(|p| p.split.map(|c| (p, c)))
        .collect();
    if !split.is_empty() {
        w!(
            s,
            "chains apart (a multimodal posterior or stuck chains; more draws will not join them):"
        );
        let (latent, scalar): (Vec<_>, Vec<_>) = split
            .iter()
            .partition(|(p, _)| vector_block(&p.name).is_some());
        for (p, c) in scalar {
            w!(s, "  {}: {c}", p.name);
        }
        if let Some((p, c)) = latent
            .iter()
            .max_by(|a, b| a.1.gap_sd.total_cmp(&b.1.gap_sd))
        {
            w!(
                s,
                "  {} latent components, most apart {}: {c}",
                latent.len(),
                p.name
            );
        }
    }
    for p in &out.plots {
        w!(s, "figure: {}", p.display());
    }
    for (k, v) in &out.timings {
        w!(s, "{k}: {v:.1}");
    }
    s
}
