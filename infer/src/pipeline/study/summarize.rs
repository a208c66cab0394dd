//! The study summary: per parameter the GIGA-Lens Table 2 columns (mean error, mean and sd of z,
//! mean/max R-hat, mean/min ESS) and what neither paper reports: coverage of the 50/68/90/95% central
//! intervals with binomial errors (a calibration curve), the z-scores against N(0, 1), and the ranks of
//! the truths among thinned posterior draws (simulation-based calibration, Talts et al. 2018); time per
//! system and the flagged systems. Written out by [`super::report`].

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::config::FORMAT;
use super::flags::thresholds;
use super::merge::Merged;
use super::result::{LEVELS, RANK_DRAWS, StageStatus, SystemResult, level_key};
use crate::math::special::ndtr;

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

pub(super) fn mean(v: &[f64]) -> f64 {
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

pub(super) fn opt_fold(v: &[f64], f: fn(f64, f64) -> f64) -> Option<f64> {
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
