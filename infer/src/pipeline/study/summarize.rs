//! The study summary: per parameter the GIGA-Lens Table 2 columns (mean error, mean and sd of z,
//! mean/max R-hat, mean/min ESS) and what neither paper reports: coverage of the 50/68/90/95% central
//! intervals with binomial errors (a calibration curve), the z-scores against N(0, 1), and the ranks of
//! the truths among thinned posterior draws (simulation-based calibration, Talts et al. 2018); time per
//! system and the flagged systems. Written as `summary.json`, `artifacts/table.csv`,
//! `artifacts/systems.csv` and the figures of [`super::figures`].

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::config::FORMAT;
use super::flags::thresholds;
use super::merge::Merged;
use super::result::{LEVELS, RANK_DRAWS, StageStatus, SystemResult, level_key};
use crate::prob::special::ndtr;

/// Bins of the rank histograms (each of the 100 ranks among 99 draws falls in one of 10 bins of 10).
pub const RANK_BINS: usize = 10;
/// Edges of the z-score histograms: -4 to 4 in steps of 0.5 (values outside are counted apart).
pub const Z_LIMIT: f64 = 4.0;
pub const Z_STEP: f64 = 0.5;

/// Coverage of one central interval level.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coverage {
    pub level: f64,
    /// Systems with this interval and a truth.
    pub n: usize,
    /// Of those, the systems whose truth lies inside the interval.
    pub inside: usize,
    pub fraction: f64,
    /// Binomial standard error of the fraction if the posteriors were calibrated: sqrt(p (1 - p) / n)
    /// with p the level (the band a calibrated study falls in 68% of the time).
    pub se: f64,
}

/// A histogram with its expectation under calibration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Histogram {
    /// Bin edges (bins + 1 values).
    pub edges: Vec<f64>,
    pub counts: Vec<usize>,
    /// Expected count per bin for calibrated posteriors.
    pub expected: Vec<f64>,
    /// Values below the first and above the last edge.
    pub below: usize,
    pub above: usize,
}

/// One row of the table: a parameter across systems.
#[derive(Clone, Debug, Serialize)]
pub struct ParamRow {
    /// Systems with a finite z for this parameter.
    pub n: usize,
    /// Mean of (posterior mean - truth).
    pub mean_error: f64,
    pub mu_z: f64,
    /// Sample standard deviation of z (NaN, written null, with one system).
    pub sd_z: f64,
    pub rhat_mean: Option<f64>,
    pub rhat_max: Option<f64>,
    /// Bulk ESS, as in Table 2.
    pub ess_mean: Option<f64>,
    pub ess_min: Option<f64>,
    pub ess_tail_min: Option<f64>,
    pub coverage: BTreeMap<String, Coverage>,
    pub z_histogram: Histogram,
    pub rank_histogram: Histogram,
}

/// A flagged system and why.
#[derive(Clone, Debug, Serialize)]
pub struct FlaggedSystem {
    pub index: usize,
    pub seed: u64,
    pub reasons: Vec<String>,
}

/// Time per system, seconds.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    pub max: f64,
    /// Sum over systems (wall seconds of one process each).
    pub total: f64,
    /// Mean per stage (`mock`, `map`, `vi`, `hmc`) over the systems where it ran.
    pub stages: BTreeMap<String, f64>,
    /// Thread counts the systems ran with.
    pub threads: Vec<usize>,
}

/// How well the fits reconstructed real-galaxy sources (`infer study --source-images`): the relative
/// squared error of each system's source at the posterior mean ([`super::sources::source_residual`]).
#[derive(Clone, Debug, Serialize)]
pub struct ResidualStats {
    pub n: usize,
    pub median: f64,
    pub mean: f64,
    pub max: f64,
}

/// The whole summary (`summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct StudySummary {
    pub format: u32,
    pub study_id: String,
    pub identity: Value,
    pub model: PathBuf,
    pub inputs: Vec<PathBuf>,
    /// Systems the study asked for.
    pub systems: usize,
    /// Systems with a result.
    pub results: usize,
    /// Systems whose every requested stage ended.
    pub fits: usize,
    /// Systems with a failed stage.
    pub failed: Vec<usize>,
    pub missing: Vec<usize>,
    pub duplicates: Vec<(usize, Vec<PathBuf>)>,
    /// Whether every expected system has a result.
    pub complete: bool,
    pub flagged: Vec<FlaggedSystem>,
    pub flag_thresholds: Value,
    pub table: BTreeMap<String, ParamRow>,
    /// Coverage pooled over parameters and systems, per level (the calibration curve).
    pub calibration: Vec<Coverage>,
    /// z-scores pooled over parameters and systems.
    pub z_histogram: Histogram,
    /// Ranks pooled over parameters and systems.
    pub rank_histogram: Histogram,
    pub rank_draws: usize,
    pub time_per_system_s: Option<Timing>,
    /// Systems by the number of HMC sampling rounds they needed (`{"1": 80, "2": 15, "3": 5}`).
    pub hmc_rounds: BTreeMap<usize, usize>,
    /// Systems whose HMC chains were continued past a round's draws (`RetryOptions::extend`).
    #[serde(default)]
    pub hmc_extended: usize,
    /// Headline figures (the tracker shows `bias`).
    pub bias: BTreeMap<String, f64>,
    pub mu_z: BTreeMap<String, f64>,
    /// Worst R-hat and bulk ESS over every sampled parameter of every system (with or without a truth).
    pub rhat_max: Option<f64>,
    pub ess_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_residual: Option<ResidualStats>,
    pub plots: Vec<PathBuf>,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The median of sorted, non-empty values (the mean of the middle two for an even count).
fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn opt_fold(v: &[f64], f: fn(f64, f64) -> f64) -> Option<f64> {
    v.iter().copied().reduce(f)
}

/// z histogram with `N(0, 1)` expectations.
pub fn z_histogram(z: &[f64]) -> Histogram {
    let bins = (2.0 * Z_LIMIT / Z_STEP).round() as usize;
    let edges: Vec<f64> = (0..=bins).map(|k| -Z_LIMIT + k as f64 * Z_STEP).collect();
    let mut counts = vec![0; bins];
    let (mut below, mut above) = (0, 0);
    for &v in z {
        if v < -Z_LIMIT {
            below += 1;
        } else if v >= Z_LIMIT {
            above += 1;
        } else {
            counts[(((v + Z_LIMIT) / Z_STEP) as usize).min(bins - 1)] += 1;
        }
    }
    let n = z.len() as f64;
    let expected = edges
        .windows(2)
        .map(|w| n * (ndtr(w[1]) - ndtr(w[0])))
        .collect();
    Histogram {
        edges,
        counts,
        expected,
        below,
        above,
    }
}

/// Rank histogram in [`RANK_BINS`] bins of the normalised rank `rank / (draws + 1)`, uniform
/// expectation. `ranks` holds (rank, draws) pairs.
pub fn rank_histogram(ranks: &[(usize, usize)]) -> Histogram {
    let mut counts = vec![0; RANK_BINS];
    for &(r, l) in ranks {
        counts[(r * RANK_BINS / (l + 1)).min(RANK_BINS - 1)] += 1;
    }
    let edges = (0..=RANK_BINS)
        .map(|k| k as f64 / RANK_BINS as f64)
        .collect();
    Histogram {
        edges,
        counts,
        expected: vec![ranks.len() as f64 / RANK_BINS as f64; RANK_BINS],
        below: 0,
        above: 0,
    }
}

fn coverage(level: f64, inside: usize, n: usize) -> Coverage {
    Coverage {
        level,
        n,
        inside,
        fraction: if n > 0 {
            inside as f64 / n as f64
        } else {
            f64::NAN
        },
        se: (level * (1.0 - level) / n.max(1) as f64).sqrt(),
    }
}

/// The row of every parameter that has a finite z in at least one system.
pub fn table(results: &[SystemResult]) -> BTreeMap<String, ParamRow> {
    let mut names: Vec<&String> = results.iter().flat_map(|r| r.params.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = BTreeMap::new();
    for name in names {
        let ps: Vec<_> = results
            .iter()
            .filter_map(|r| r.params.get(name).map(|p| (r, p)))
            .filter(|(_, p)| p.z.is_some_and(f64::is_finite))
            .collect();
        if ps.is_empty() {
            continue;
        }
        let z: Vec<f64> = ps.iter().map(|(_, p)| p.z.unwrap_or(f64::NAN)).collect();
        let err: Vec<f64> = ps
            .iter()
            .filter_map(|(_, p)| p.truth.map(|t| p.mean - t))
            .collect();
        let n = ps.len();
        let mu_z = mean(&z);
        let sd_z = if n > 1 {
            (z.iter().map(|v| (v - mu_z).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            f64::NAN
        };
        let col = |f: &dyn Fn(&super::result::ParamResult) -> Option<f64>| -> Vec<f64> {
            ps.iter()
                .filter_map(|(_, p)| f(p))
                .filter(|v| v.is_finite())
                .collect()
        };
        let rhat = col(&|p| p.rhat);
        let ess = col(&|p| p.ess_bulk);
        let ess_tail = col(&|p| p.ess_tail);
        let cov = LEVELS
            .iter()
            .map(|&level| {
                let key = level_key(level);
                let with: Vec<bool> = ps
                    .iter()
                    .filter_map(|(_, p)| {
                        let t = p.truth?;
                        p.intervals.get(&key).map(|[lo, hi]| *lo <= t && t <= *hi)
                    })
                    .collect();
                let inside = with.iter().filter(|&&b| b).count();
                (key, coverage(level, inside, with.len()))
            })
            .collect();
        let ranks: Vec<(usize, usize)> = ps
            .iter()
            .filter_map(|(r, p)| p.rank.zip(r.rank_draws))
            .collect();
        out.insert(
            name.clone(),
            ParamRow {
                n,
                mean_error: mean(&err),
                mu_z,
                sd_z,
                rhat_mean: (!rhat.is_empty()).then(|| mean(&rhat)),
                rhat_max: opt_fold(&rhat, f64::max),
                ess_mean: (!ess.is_empty()).then(|| mean(&ess)),
                ess_min: opt_fold(&ess, f64::min),
                ess_tail_min: opt_fold(&ess_tail, f64::min),
                coverage: cov,
                z_histogram: z_histogram(&z),
                rank_histogram: rank_histogram(&ranks),
            },
        );
    }
    out
}

fn timing(results: &[SystemResult]) -> Option<Timing> {
    if results.is_empty() {
        return None;
    }
    let mut w: Vec<f64> = results.iter().map(|r| r.wall_s).collect();
    w.sort_by(f64::total_cmp);
    let n = w.len();
    let median = median_sorted(&w);
    let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in results {
        for (k, s) in &r.stages {
            if let Some(t) = s.time_s {
                stages.entry(k.clone()).or_default().push(t);
            }
        }
    }
    let mut threads: Vec<usize> = results.iter().map(|r| r.threads).collect();
    threads.sort();
    threads.dedup();
    Some(Timing {
        n,
        mean: mean(&w),
        median,
        max: w[n - 1],
        total: w.iter().sum(),
        stages: stages.into_iter().map(|(k, v)| (k, mean(&v))).collect(),
        threads,
    })
}

/// Summarise merged results (without writing anything; `plots` is left empty).
pub fn summarize(m: &Merged) -> StudySummary {
    let results = &m.results;
    let tab = table(results);
    let failed: Vec<usize> = results
        .iter()
        .filter(|r| r.stages.values().any(|s| s.status == StageStatus::Failed))
        .map(|r| r.index)
        .collect();
    let flagged = results
        .iter()
        .filter(|r| r.is_flagged())
        .map(|r| FlaggedSystem {
            index: r.index,
            seed: r.seed,
            reasons: r.flags.iter().map(|f| f.message.clone()).collect(),
        })
        .collect();
    let calibration = LEVELS
        .iter()
        .map(|&level| {
            let key = level_key(level);
            let (inside, n) = tab.values().fold((0, 0), |(i, n), row| {
                (i + row.coverage[&key].inside, n + row.coverage[&key].n)
            });
            coverage(level, inside, n)
        })
        .collect();
    let all_z: Vec<f64> = results
        .iter()
        .flat_map(|r| r.params.values())
        .filter_map(|p| p.z)
        .filter(|z| z.is_finite())
        .collect();
    let all_ranks: Vec<(usize, usize)> = results
        .iter()
        .flat_map(|r| {
            r.params
                .values()
                .filter_map(move |p| p.rank.zip(r.rank_draws))
        })
        .collect();
    let rank_draws = results
        .iter()
        .filter_map(|r| r.rank_draws)
        .max()
        .unwrap_or(RANK_DRAWS);
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    let rhat: Vec<f64> = results.iter().filter_map(|r| finite(r.rhat_max)).collect();
    let ess: Vec<f64> = results
        .iter()
        .filter_map(|r| finite(r.ess_bulk_min))
        .collect();
    let mut resid: Vec<f64> = results
        .iter()
        .filter_map(|r| finite(r.source_residual))
        .collect();
    resid.sort_by(f64::total_cmp);
    let source_residual = (!resid.is_empty()).then(|| ResidualStats {
        n: resid.len(),
        median: median_sorted(&resid),
        mean: mean(&resid),
        max: resid[resid.len() - 1],
    });
    StudySummary {
        format: FORMAT,
        study_id: m.study.study_id.clone(),
        identity: m.study.identity.clone(),
        model: m.study.config.model.clone(),
        inputs: m.inputs.clone(),
        systems: m.study.config.n_systems,
        results: results.len(),
        fits: results.len() - failed.len(),
        failed,
        missing: m.missing.clone(),
        duplicates: m.duplicates.clone(),
        complete: m.missing.is_empty(),
        flagged,
        flag_thresholds: thresholds(),
        calibration,
        z_histogram: z_histogram(&all_z),
        rank_histogram: rank_histogram(&all_ranks),
        rank_draws,
        time_per_system_s: timing(results),
        hmc_rounds: results.iter().filter_map(|r| r.hmc_rounds).fold(
            BTreeMap::new(),
            |mut m, k| {
                *m.entry(k).or_insert(0) += 1;
                m
            },
        ),
        hmc_extended: results.iter().filter(|r| r.hmc_extended.is_some()).count(),
        bias: tab.iter().map(|(k, r)| (k.clone(), r.mean_error)).collect(),
        mu_z: tab.iter().map(|(k, r)| (k.clone(), r.mu_z)).collect(),
        rhat_max: opt_fold(&rhat, f64::max),
        ess_min: opt_fold(&ess, f64::min),
        source_residual,
        table: tab,
        plots: Vec::new(),
    }
}

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
        if let Some((block, _)) = k.split_once('[') {
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
