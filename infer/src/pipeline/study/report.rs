//! A study summary written out: `artifacts/table.csv`, `artifacts/systems.csv`, the figures of
//! [`super::figures`], and the text the console and `infer study summarize` print.

use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::merge::Merged;
use super::result::{LEVELS, SystemResult, level_key};
use super::summarize::{ParamRow, StudySummary, mean, opt_fold, summarize};

/// Summarise and write `artifacts/` (CSV tables and figures) into `dir`; returns the summary, whose
/// JSON the caller stores as the run's `summary.json`.
pub fn write_summary(dir: &Path, m: &Merged) -> Result<StudySummary> {
    let mut s = summarize(m);
    let art = dir.join("artifacts");
    arclight_core::write_atomic(&art.join("table.csv"), table_csv(&s).as_bytes())?;
    arclight_core::write_atomic(&art.join("systems.csv"), systems_csv(&m.results).as_bytes())?;
    s.plots = super::figures::write_all(&art, &s, &m.results)?;
    Ok(s)
}

fn csv_num(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v}"))
        .unwrap_or_default()
}

/// `table.csv`: one line per parameter.
pub fn table_csv(s: &StudySummary) -> String {
    let mut out = String::from(
        "parameter,n,mean_error,mu_z,sd_z,rhat_mean,rhat_max,ess_mean,ess_min,ess_tail_min",
    );
    for l in LEVELS {
        let k = level_key(l);
        let _ = write!(out, ",cov{k},cov{k}_se");
    }
    out.push('\n');
    for (name, r) in &s.table {
        let _ = write!(
            out,
            "{name},{},{},{},{},{},{},{},{},{}",
            r.n,
            csv_num(Some(r.mean_error)),
            csv_num(Some(r.mu_z)),
            csv_num(Some(r.sd_z)),
            csv_num(r.rhat_mean),
            csv_num(r.rhat_max),
            csv_num(r.ess_mean),
            csv_num(r.ess_min),
            csv_num(r.ess_tail_min)
        );
        for l in LEVELS {
            let c = &r.coverage[&level_key(l)];
            let _ = write!(
                out,
                ",{},{}",
                csv_num(Some(c.fraction)),
                csv_num(Some(c.se))
            );
        }
        out.push('\n');
    }
    out
}

/// `systems.csv`: one line per system with its diagnostics, times and flags.
pub fn systems_csv(results: &[SystemResult]) -> String {
    let mut out = String::from(
        "index,seed,flagged,flags,chi2_dof,rhat_max,ess_bulk_min,ess_tail_min,divergences,transitions,wall_s,mock_s,map_s,vi_s,hmc_s,threads,hmc_rounds,hmc_extended,source_residual\n",
    );
    for r in results {
        let t = |k: &str| csv_num(r.stages.get(k).and_then(|s| s.time_s));
        let flags: Vec<&str> = r.flags.iter().map(|f| f.message.as_str()).collect();
        let _ = writeln!(
            out,
            "{},{},{},\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.index,
            r.seed,
            r.is_flagged(),
            flags.join("; ").replace('"', "'"),
            csv_num(r.chi2_dof),
            csv_num(r.rhat_max),
            csv_num(r.ess_bulk_min),
            csv_num(r.ess_tail_min),
            r.divergences.map(|d| d.to_string()).unwrap_or_default(),
            r.transitions.map(|d| d.to_string()).unwrap_or_default(),
            csv_num(Some(r.wall_s)),
            t("mock"),
            t("map"),
            t("vi"),
            t("hmc"),
            r.threads,
            r.hmc_rounds.map(|d| d.to_string()).unwrap_or_default(),
            r.hmc_extended.map(|d| d.to_string()).unwrap_or_default(),
            csv_num(r.source_residual)
        );
    }
    out
}

/// The console report: the table (vector blocks such as the VAE latent in one line each), the
/// calibration, times, and every flagged, missing or duplicate system.
pub fn render_text(s: &StudySummary) -> String {
    let mut o = String::new();
    let f = |v: Option<f64>, w: usize, p: usize| match v.filter(|v| v.is_finite()) {
        Some(v) => format!("{v:>w$.p$}"),
        None => format!("{:>w$}", "-"),
    };
    let _ = writeln!(
        o,
        "study {}: {} of {} systems have results ({} fitted, {} failed, {} flagged)",
        s.study_id,
        s.results,
        s.systems,
        s.fits,
        s.failed.len(),
        s.flagged.len()
    );
    let _ = writeln!(
        o,
        "{:<18} {:>10} {:>6} {:>5} {:>7} {:>7} {:>6} {:>6} {:>5} {:>5} {:>5} {:>5}",
        "parameter",
        "mean error",
        "mu_z",
        "sd_z",
        "<R-hat>",
        "max R",
        "<ESS>",
        "minESS",
        "cov50",
        "cov68",
        "cov90",
        "cov95"
    );
    let mut blocks: BTreeMap<&str, Vec<&ParamRow>> = BTreeMap::new();
    for (k, r) in &s.table {
        if let Some(block) = crate::prob::layout::vector_block(k) {
            blocks.entry(block).or_default().push(r);
            continue;
        }
        let c = |l: f64| f(Some(r.coverage[&level_key(l)].fraction), 5, 2);
        let _ = writeln!(
            o,
            "{k:<18} {:>10.4} {} {} {} {} {} {} {} {} {} {}",
            r.mean_error,
            f(Some(r.mu_z), 6, 2),
            f(Some(r.sd_z), 5, 2),
            f(r.rhat_mean, 7, 4),
            f(r.rhat_max, 7, 4),
            f(r.ess_mean, 6, 0),
            f(r.ess_min, 6, 0),
            c(0.5),
            c(0.68),
            c(0.9),
            c(0.95)
        );
    }
    for (block, rows) in blocks {
        let cov68 = mean(
            &rows
                .iter()
                .map(|r| r.coverage[&level_key(0.68)].fraction)
                .collect::<Vec<_>>(),
        );
        let mu = rows.iter().map(|r| r.mu_z.abs()).fold(0.0, f64::max);
        // a component without diagnostics makes the block's figure absent, never converged
        let rhat = rows
            .iter()
            .map(|r| r.rhat_max)
            .collect::<Option<Vec<_>>>()
            .and_then(|v| opt_fold(&v, f64::max));
        let ess = rows
            .iter()
            .map(|r| r.ess_min)
            .collect::<Option<Vec<_>>>()
            .and_then(|v| opt_fold(&v, f64::min));
        let _ = writeln!(
            o,
            "{block} ({} components): cov68 {cov68:.2}, max |mu_z| {mu:.2}, max R-hat {}, min ESS {}",
            rows.len(),
            f(rhat, 0, 4).trim(),
            f(ess, 0, 0).trim()
        );
    }
    let cal: Vec<String> = s
        .calibration
        .iter()
        .map(|c| {
            format!(
                "{}% {}",
                level_key(c.level),
                f(Some(c.fraction), 0, 3).trim()
            )
        })
        .collect();
    let _ = writeln!(o, "coverage pooled over parameters: {}", cal.join(", "));
    if let Some(t) = &s.time_per_system_s {
        let stages: Vec<String> = t
            .stages
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect();
        let _ = writeln!(
            o,
            "time per system: mean {:.1} s, median {:.1} s, max {:.1} s ({}; threads {:?})",
            t.mean,
            t.median,
            t.max,
            stages.join(", "),
            t.threads
        );
    }
    if s.hmc_rounds.keys().any(|&k| k > 1) {
        let r: Vec<String> = s
            .hmc_rounds
            .iter()
            .map(|(k, n)| format!("{n} in {k}"))
            .collect();
        let _ = writeln!(o, "HMC rounds (systems): {}", r.join(", "));
    }
    if s.hmc_extended > 0 {
        let _ = writeln!(
            o,
            "HMC chains continued past a round's draws: {} systems",
            s.hmc_extended
        );
    }
    if let Some(r) = &s.source_residual {
        let _ = writeln!(
            o,
            "source residual sum (fit - true)^2 / sum true^2 over {} real galaxies: median {:.3}, mean {:.3}, max {:.3}",
            r.n, r.median, r.mean, r.max
        );
    }
    if !s.missing.is_empty() {
        let _ = writeln!(
            o,
            "missing: {} system(s): {}",
            s.missing.len(),
            list(&s.missing)
        );
    }
    for (i, dirs) in &s.duplicates {
        let d: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let _ = writeln!(
            o,
            "duplicate: system {i} in {} (the first is used)",
            d.join(", ")
        );
    }
    for fl in &s.flagged {
        let _ = writeln!(
            o,
            "FLAGGED system {} (seed {}): {}",
            fl.index,
            fl.seed,
            fl.reasons.join("; ")
        );
    }
    o
}

/// `0, 1, 5, ...` with at most 20 entries.
fn list(v: &[usize]) -> String {
    let mut s: Vec<String> = v.iter().take(20).map(|i| i.to_string()).collect();
    if v.len() > 20 {
        s.push(format!("... ({} more)", v.len() - 20));
    }
    s.join(", ")
}
