//! A system's result read back from its mock and fit folders once its fit has ended, successfully or
//! not: posterior summaries from the samples, stage outcomes from the artefacts the fit left, flags.

use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

use super::config::FORMAT;
use super::flags::check;
use super::result::{
    LEVELS, ParamResult, RANK_DRAWS, StageOutcome, StageStatus, SystemResult, level_key,
};
use crate::math::periodic::nearest_equivalent;
use crate::pipeline::fit::Stages;
use crate::pipeline::mock::read_truths;
use crate::pipeline::samples::read_sample_columns;

/// What the study knows about one system after running it.
pub struct SystemRun<'a> {
    pub study_id: &'a str,
    pub index: usize,
    pub seed: u64,
    pub mock_dir: &'a Path,
    pub fit_dir: &'a Path,
    pub mock: StageOutcome,
    /// The fit's error, if it returned one.
    pub fit_error: Option<String>,
    pub stages: Stages,
    pub wall_s: f64,
    pub threads: usize,
    /// The period of an angle-like parameter by full name (the model's [`period_of`]).
    ///
    /// [`period_of`]: crate::model::spec::ModelSpec::period_of
    pub period_of: &'a dyn Fn(&str) -> Option<f64>,
}

/// Assemble a system's result from its mock and fit folders, and flag it.
pub fn collect(run: &SystemRun) -> Result<SystemResult> {
    let art = run.fit_dir.join("artifacts");
    let summary = read_opt_json(&run.fit_dir.join("summary.json"))?;
    let map = read_opt_json(&art.join("map.json"))?;
    let vi = read_opt_json(&art.join("vi.json"))?;
    let samples_path = art.join("samples.h5");
    let num =
        |v: &Option<Value>, k: &str| v.as_ref().and_then(|v| v.get(k)).and_then(Value::as_f64);

    // ---- stage outcomes: an artifact means the stage ended; the first requested stage without one
    // failed if the fit returned an error, the later ones were not reached
    let mut stages = BTreeMap::new();
    stages.insert("mock".to_string(), run.mock.clone());
    let mock_ok = run.mock.status == StageStatus::Ok;
    let hmc_time = summary
        .as_ref()
        .and_then(|s| s.pointer("/timings/hmc_s"))
        .and_then(Value::as_f64);
    let done = [
        ("map", run.stages.map, map.is_some(), num(&map, "time_s")),
        ("vi", run.stages.vi, vi.is_some(), num(&vi, "time_s")),
        ("hmc", run.stages.hmc, samples_path.exists(), hmc_time),
    ];
    let mut error = run.fit_error.clone().filter(|_| mock_ok);
    for (name, requested, exists, time_s) in done {
        let outcome = if exists {
            StageOutcome::ok(time_s)
        } else if !requested {
            StageOutcome::of(StageStatus::Skipped)
        } else if let Some(e) = error.take() {
            StageOutcome::failed(e, None)
        } else {
            StageOutcome::of(StageStatus::NotReached)
        };
        stages.insert(name.to_string(), outcome);
    }
    if mock_ok {
        // an error left after every requested stage ended belongs to the diagnostics/figures step
        stages.insert(
            "summary".to_string(),
            match error {
                Some(e) => StageOutcome::failed(e, None),
                None if summary.is_some() => StageOutcome::ok(None),
                None => StageOutcome::of(StageStatus::NotReached),
            },
        );
    } else {
        stages.insert(
            "summary".to_string(),
            StageOutcome::of(StageStatus::NotReached),
        );
    }

    // ---- posterior summaries against the truths
    let mut params = BTreeMap::new();
    let (mut divergences, mut transitions, mut n_chains, mut rank_draws) = (None, None, None, None);
    let truths_path = run.mock_dir.join("truths.json");
    let truths = if truths_path.exists() {
        Some(read_truths(&truths_path)?)
    } else {
        None
    };
    let truth_of = |name: &str| crate::pipeline::mock::truth_of(truths.as_ref(), name);
    let diag = |name: &str, key: &str| -> Option<f64> {
        summary
            .as_ref()?
            .get("params")?
            .get(name)?
            .get(key)?
            .as_f64()
            .filter(|v| v.is_finite())
    };
    if samples_path.exists() {
        let cols = read_sample_columns(&samples_path)?;
        let n = cols.n_chains * cols.n_draws;
        divergences = Some(cols.divergent.iter().filter(|&&d| d).count());
        transitions = Some(n);
        n_chains = Some(cols.n_chains);
        let l = RANK_DRAWS.min(n);
        rank_draws = Some(l);
        for (name, col) in cols.names.iter().zip(&cols.columns) {
            // every sampled parameter is judged for convergence; only those with a truth get z and rank
            let mut p = posterior_of(col, truth_of(name), (run.period_of)(name), l);
            p.latent = is_latent(name);
            p.rhat = diag(name, "rhat");
            p.ess_bulk = diag(name, "ess_bulk");
            p.ess_tail = diag(name, "ess_tail");
            p.split = crate::inference::diagnostics::chain_split(col, cols.n_chains);
            params.insert(name.clone(), p);
        }
    } else if let Some(ps) = summary
        .as_ref()
        .and_then(|s| s.get("params"))
        .and_then(Value::as_object)
    {
        // no HMC draws (e.g. `--stages map,vi`): the fit's VI summary, with its 68% interval only
        for (name, v) in ps {
            let f = |k: &str| v.get(k).and_then(Value::as_f64);
            let (Some(mean), Some(sd)) = (f("mean"), f("std")) else {
                continue;
            };
            let drawn = truth_of(name);
            let centre = f("q50").unwrap_or(mean);
            let truth = drawn.map(|t| nearest_equivalent(t, centre, (run.period_of)(name)));
            let mut intervals = BTreeMap::new();
            if let (Some(lo), Some(hi)) = (f("q16"), f("q84")) {
                intervals.insert(level_key(0.68), [lo, hi]);
            }
            params.insert(
                name.clone(),
                ParamResult {
                    truth,
                    truth_drawn: drawn.filter(|&d| Some(d) != truth),
                    mean,
                    sd,
                    median: f("q50"),
                    intervals,
                    z: truth.and_then(|t| z_score(mean, sd, t)),
                    rank: None,
                    rhat: None,
                    ess_bulk: None,
                    ess_tail: None,
                    latent: is_latent(name),
                    split: None,
                },
            );
        }
    }
    let fold = |f: &dyn Fn(&ParamResult) -> Option<f64>, max: bool| -> Option<f64> {
        let v: Vec<f64> = params.values().filter_map(f).collect();
        if v.is_empty() {
            return None;
        }
        Some(if max {
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        } else {
            v.iter().copied().fold(f64::INFINITY, f64::min)
        })
    };
    let chi2 = num(&map, "chi2");
    let dof = map
        .as_ref()
        .and_then(|m| m.get("dof"))
        .and_then(Value::as_u64)
        .map(|d| d as usize);
    let mut r = SystemResult {
        format: FORMAT,
        study_id: run.study_id.to_string(),
        index: run.index,
        seed: run.seed,
        stages,
        chi2_dof: chi2.zip(dof).map(|(c, d)| c / d.max(1) as f64),
        dof,
        rhat_max: fold(&|p| p.rhat, true),
        ess_bulk_min: fold(&|p| p.ess_bulk, false),
        ess_tail_min: fold(&|p| p.ess_tail, false),
        divergences,
        transitions,
        n_chains,
        hmc_rounds: summary
            .as_ref()
            .and_then(|s| s.get("hmc_rounds"))
            .and_then(Value::as_array)
            .map(|r| r.len())
            .filter(|&n| n > 0),
        hmc_extended: summary
            .as_ref()
            .and_then(|s| s.get("hmc_rounds"))
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|k| k.get("extended").and_then(Value::as_u64))
                    .sum::<u64>() as usize
            })
            .filter(|&n| n > 0),
        rank_draws,
        params,
        flags: Vec::new(),
        wall_s: run.wall_s,
        threads: run.threads,
        source_residual: None,
    };
    r.flags = check(&r, run.stages.hmc);
    Ok(r)
}

/// A component of the VAE latent (the only vector block a model has).
fn is_latent(name: &str) -> bool {
    crate::prob::layout::vector_block(name).is_some()
}

fn z_score(mean: f64, sd: f64, truth: f64) -> Option<f64> {
    let z = (mean - truth) / sd;
    (sd > 0.0 && z.is_finite()).then_some(z)
}

/// Mean, sd, median, central intervals, z and the rank of `truth` among `l` draws thinned evenly
/// from `col` (draws `floor(j n / l)`, j = 0..l); z and rank are None without a truth. With a
/// `period`, the truth judged is its equivalent nearest the median.
pub fn posterior_of(col: &[f64], drawn: Option<f64>, period: Option<f64>, l: usize) -> ParamResult {
    let n = col.len();
    let mean = col.iter().sum::<f64>() / n as f64;
    let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64).sqrt();
    let mut sorted = col.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let h = (n - 1) as f64 * p;
        let lo = h.floor() as usize;
        let hi = (lo + 1).min(n - 1);
        sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
    };
    let intervals = LEVELS
        .iter()
        .map(|&p| (level_key(p), [q((1.0 - p) / 2.0), q((1.0 + p) / 2.0)]))
        .collect();
    let truth = drawn.map(|t| nearest_equivalent(t, q(0.5), period));
    let rank = truth
        .filter(|_| l > 0)
        .map(|t| (0..l).filter(|&j| col[j * n / l] < t).count());
    ParamResult {
        truth,
        truth_drawn: drawn.filter(|&d| Some(d) != truth),
        mean,
        sd,
        median: Some(q(0.5)),
        intervals,
        z: truth.and_then(|t| z_score(mean, sd, t)),
        rank,
        rhat: None,
        ess_bulk: None,
        ess_tail: None,
        latent: false,
        split: None,
    }
}

fn read_opt_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{}: not valid JSON", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fit that ended with an error after its MAP: the MAP stage is ok (its chi^2/dof is kept), VI
    /// failed with the error, HMC and the summary were not reached, and the system is flagged for it.
    /// A failed mock reaches no fit stage at all.
    #[test]
    fn stage_outcomes_from_the_artifacts_a_fit_left() {
        let dir = tempfile::tempdir().unwrap();
        let (mock, fit) = (dir.path().join("mock"), dir.path().join("fit"));
        std::fs::create_dir_all(fit.join("artifacts")).unwrap();
        std::fs::write(
            fit.join("artifacts/map.json"),
            r#"{"chi2": 200.0, "dof": 100, "time_s": 2.5}"#,
        )
        .unwrap();
        let run = |mock_outcome: StageOutcome, err: Option<&str>| {
            collect(&SystemRun {
                study_id: "s",
                index: 2,
                seed: 9,
                mock_dir: &mock,
                fit_dir: &fit,
                mock: mock_outcome,
                fit_error: err.map(String::from),
                stages: Stages::ALL,
                wall_s: 3.0,
                threads: 1,
                period_of: &|_| None,
            })
            .unwrap()
        };
        let r = run(StageOutcome::ok(Some(0.1)), Some("VI: ELBO is NaN"));
        let st = |k: &str| r.stages[k].status;
        assert_eq!(
            [st("mock"), st("map"), st("vi"), st("hmc"), st("summary")],
            [
                StageStatus::Ok,
                StageStatus::Ok,
                StageStatus::Failed,
                StageStatus::NotReached,
                StageStatus::NotReached
            ]
        );
        assert_eq!(r.stages["map"].time_s, Some(2.5));
        assert_eq!(r.chi2_dof, Some(2.0));
        let why: Vec<&str> = r.flags.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(why[0], "stage vi failed: VI: ELBO is NaN");
        assert!(
            why[1].starts_with("MAP chi^2/dof 2.000 outside 1 +- 0.707"),
            "{why:?}"
        );
        let r = run(StageOutcome::failed("no such PSF".into(), None), None);
        assert_eq!(r.stages["mock"].status, StageStatus::Failed);
        assert_eq!(r.stages["vi"].status, StageStatus::NotReached);
        assert_eq!(r.flags[0].message, "stage mock failed: no such PSF");
    }

    /// Draws 0, 1, ..., 9 against truth 6.5: mean 4.5, sd sqrt(110/12), median 4.5, 50% interval
    /// [q(0.25), q(0.75)] = [2.25, 6.75]; thinned to 5 draws (0, 2, 4, 6, 8) the truth ranks 4th.
    #[test]
    fn posterior_summary_by_hand() {
        let col: Vec<f64> = (0..10).map(f64::from).collect();
        let p = posterior_of(&col, Some(6.5), None, 5);
        assert_eq!(p.mean, 4.5);
        assert!((p.sd - (110.0f64 / 12.0).sqrt()).abs() < 1e-12);
        assert_eq!(p.median, Some(4.5));
        assert_eq!(p.intervals["50"], [2.25, 6.75]);
        let [lo, hi] = p.intervals["95"];
        assert!((lo - 0.225).abs() < 1e-12 && (hi - 8.775).abs() < 1e-12);
        assert_eq!(p.rank, Some(4));
        assert!((p.z.unwrap() - (4.5 - 6.5) / p.sd).abs() < 1e-12);
        assert_eq!(posterior_of(&col, Some(-1.0), None, 10).rank, Some(0));
        assert_eq!(posterior_of(&col, Some(100.0), None, 10).rank, Some(10));
        // no truth (a real galaxy's latent): the summary without z or rank
        let p = posterior_of(&col, None, None, 5);
        assert_eq!((p.z, p.rank, p.mean), (None, None, 4.5));
        assert_eq!(level_key(0.68), "68");
    }

    /// A position angle (period pi) drawn at -2.32 against draws about 0.8 (real-galaxy study system
    /// 10): judged as its equivalent -2.32 + pi, inside the intervals with a middling rank, and the
    /// drawn value kept; without the period it would be z ~ -7 and rank 0.
    #[test]
    fn an_angle_is_judged_by_its_equivalent_nearest_the_posterior() {
        let pi = std::f64::consts::PI;
        let col: Vec<f64> = (0..200)
            .map(|j| 0.8 + 0.4 * ((j as f64 + 0.5) / 200.0 - 0.5))
            .collect();
        let drawn = -2.32;
        let p = posterior_of(&col, Some(drawn), Some(pi), 99);
        let t = p.truth.unwrap();
        assert!((t - (drawn + pi)).abs() < 1e-12);
        assert_eq!(p.truth_drawn, Some(drawn));
        assert!(p.z.unwrap().abs() < 0.2, "{:?}", p.z);
        let [lo, hi] = p.intervals["68"];
        assert!(lo < t && t < hi);
        let rank = p.rank.unwrap();
        assert!((40..60).contains(&rank), "{rank}");
        let raw = posterior_of(&col, Some(drawn), None, 99);
        assert_eq!(
            (raw.truth, raw.truth_drawn, raw.rank),
            (Some(drawn), None, Some(0))
        );
        // an angle already nearest the posterior keeps its value, with no drawn copy
        let p = posterior_of(&col, Some(0.85), Some(pi), 99);
        assert_eq!((p.truth, p.truth_drawn), (Some(0.85), None));
    }
}
