//! `infer study`: a mock-lens recovery study (GIGA-Lens Sec. 3, Table 2 and Fig. 11). For each of n
//! systems, a mock is drawn from the model file's simulation distribution (seed `seed + i`) and fitted by
//! the full pipeline with the same settings; the study then tabulates, per parameter, the mean error
//! (posterior mean - truth), the mean and spread of the z-scores `z = (E[p] - truth) / sd[p]`, the
//! fraction of truths inside the 68% interval, and the convergence diagnostics (mean and max R-hat,
//! mean and min ESS) across systems.
//!
//! Layout of a study run `experiments/study-<time>-<name>/`:
//! `systems/NNN/mock/` (the observation, as `infer mock` writes it), `systems/NNN/fit/` (a complete fit
//! run record), `metrics.jsonl` with one `system` line per finished fit, and `summary.json` with the
//! table. `--resume` skips systems whose fit is done and resumes an interrupted one.

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::fit::{FitConfig, RunTarget, run_fit};
use super::mock::{MockOptions, run_mock};
use arclight_core::plot::chart::{ChartOptions, Series, Style, render_chart};
use arclight_core::record::{Run, RunKind, RunSpec, Status};

/// Everything `infer study` needs; stored as the run's config.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StudyConfig {
    pub model: PathBuf,
    pub checkpoint: Option<PathBuf>,
    /// Number of mock systems (GIGA-Lens: 100).
    pub n_systems: usize,
    /// System i is mocked with seed `seed + i` and fitted with seed `seed + i`.
    pub seed: u64,
    /// Fit settings shared by every system (`obs` and `truths` are set per system).
    pub fit: FitConfig,
}

/// Where the study's record goes.
#[derive(Clone, Debug)]
pub enum StudyTarget {
    New { root: PathBuf, name: String },
    Resume(PathBuf),
}

/// One system's result, from its fit summary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SystemResult {
    pub index: usize,
    pub chi2_dof: Option<f64>,
    pub rhat_max: Option<f64>,
    pub ess_min: Option<f64>,
    /// Per parameter: (mean, sd, q16, q84, truth, rhat, ess_bulk).
    pub params: BTreeMap<String, ParamRecovery>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParamRecovery {
    pub mean: f64,
    pub sd: f64,
    pub q16: f64,
    pub q84: f64,
    pub truth: f64,
    pub rhat: f64,
    pub ess_bulk: f64,
}

impl ParamRecovery {
    pub fn z(&self) -> f64 {
        (self.mean - self.truth) / self.sd
    }
}

/// One row of Table 2.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TableRow {
    pub mean_error: f64,
    pub mu_z: f64,
    pub sd_z: f64,
    /// Fraction of systems whose truth lies in [q16, q84] (0.68 for calibrated posteriors).
    pub coverage_68: f64,
    /// Fraction with |z| < 2 (0.95 for Gaussian, calibrated posteriors).
    pub coverage_95: f64,
    pub rhat_mean: f64,
    pub rhat_max: f64,
    pub ess_mean: f64,
    pub ess_min: f64,
    pub n: usize,
}

/// Table 2 over the systems, per parameter that has a truth. Parameters whose posterior sd is zero or
/// not finite in a system are left out of that system's z-scores.
pub fn table(systems: &[SystemResult]) -> BTreeMap<String, TableRow> {
    let mut by_param: BTreeMap<&str, Vec<&ParamRecovery>> = BTreeMap::new();
    for s in systems {
        for (k, p) in &s.params {
            if p.truth.is_finite() && p.sd.is_finite() && p.sd > 0.0 {
                by_param.entry(k).or_default().push(p);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    by_param
        .into_iter()
        .map(|(k, ps)| {
            let n = ps.len();
            let err: Vec<f64> = ps.iter().map(|p| p.mean - p.truth).collect();
            let z: Vec<f64> = ps.iter().map(|p| p.z()).collect();
            let mu_z = mean(&z);
            let sd_z = if n > 1 {
                (z.iter().map(|v| (v - mu_z).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else {
                f64::NAN
            };
            let inside = ps
                .iter()
                .filter(|p| p.q16 <= p.truth && p.truth <= p.q84)
                .count();
            let rhat: Vec<f64> = ps.iter().map(|p| p.rhat).collect();
            let ess: Vec<f64> = ps.iter().map(|p| p.ess_bulk).collect();
            (
                k.to_string(),
                TableRow {
                    mean_error: mean(&err),
                    mu_z,
                    sd_z,
                    coverage_68: inside as f64 / n as f64,
                    coverage_95: z.iter().filter(|v| v.abs() < 2.0).count() as f64 / n as f64,
                    rhat_mean: mean(&rhat),
                    rhat_max: rhat.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    ess_mean: mean(&ess),
                    ess_min: ess.iter().copied().fold(f64::INFINITY, f64::min),
                    n,
                },
            )
        })
        .collect()
}

/// Reads a finished fit's `summary.json` into a [`SystemResult`].
pub fn read_system(index: usize, fit_dir: &Path) -> Result<SystemResult> {
    let path = fit_dir.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let num = |o: &Value, k: &str| o.get(k).and_then(Value::as_f64);
    let mut params = BTreeMap::new();
    if let Some(ps) = v.get("params").and_then(Value::as_object) {
        for (k, p) in ps {
            let (Some(mean), Some(sd), Some(truth)) =
                (num(p, "mean"), num(p, "std"), num(p, "truth"))
            else {
                continue;
            };
            params.insert(
                k.clone(),
                ParamRecovery {
                    mean,
                    sd,
                    q16: num(p, "q16").unwrap_or(f64::NAN),
                    q84: num(p, "q84").unwrap_or(f64::NAN),
                    truth,
                    rhat: num(p, "rhat").unwrap_or(f64::NAN),
                    ess_bulk: num(p, "ess_bulk").unwrap_or(f64::NAN),
                },
            );
        }
    }
    if params.is_empty() {
        bail!(
            "{}: no parameter has a posterior mean, std and truth",
            path.display()
        );
    }
    Ok(SystemResult {
        index,
        chi2_dof: num(&v, "chi2_dof"),
        rhat_max: num(&v, "rhat_max"),
        ess_min: num(&v, "ess_min"),
        params,
    })
}

fn fit_done(fit_dir: &Path) -> bool {
    arclight_core::record::RunInfo::load(fit_dir)
        .map(|i| i.status == Status::Done)
        .unwrap_or(false)
        && fit_dir.join("summary.json").exists()
}

/// The outcome of a study.
pub struct StudyOutcome {
    pub run_dir: PathBuf,
    pub systems: Vec<SystemResult>,
    pub table: BTreeMap<String, TableRow>,
    pub n_failed: usize,
}

/// Runs (or resumes) a study.
pub fn run_study(cfg: &StudyConfig, target: StudyTarget, device: &Device) -> Result<StudyOutcome> {
    if cfg.n_systems == 0 {
        bail!("--n: a study needs at least one system");
    }
    // Check the model file before creating anything.
    crate::model::spec::ModelSpec::load(&cfg.model)?;
    // A resumed study continues with its recorded settings; read them before touching the record.
    let cfg: StudyConfig = match &target {
        StudyTarget::New { .. } => cfg.clone(),
        StudyTarget::Resume(dir) => {
            let info = arclight_core::record::RunInfo::load(dir)?;
            serde_json::from_value(info.config).with_context(|| {
                format!("{}: run.json config is not a study config", dir.display())
            })?
        }
    };
    let mut run = match &target {
        StudyTarget::New { root, name } => Run::create(
            root,
            RunSpec {
                kind: RunKind::Study,
                name,
                config: serde_json::to_value(&cfg)?,
                device: cfg.fit.device.clone(),
                seed: Some(cfg.seed),
            },
        )?,
        StudyTarget::Resume(dir) => Run::resume(dir)?,
    };
    match systems_loop(&cfg, &mut run, device) {
        Ok(out) => Ok(out),
        Err(e) => {
            let _ = run.fail(&format!("{e:#}"));
            Err(e)
        }
    }
}

fn systems_loop(cfg: &StudyConfig, run: &mut Run, device: &Device) -> Result<StudyOutcome> {
    let n = cfg.n_systems;
    let mut systems = Vec::with_capacity(n);
    let mut failed = Vec::new();
    let pb = arclight_core::progress::bar(n as u64, "study");
    for i in 0..n {
        let sys_dir = run.dir().join("systems").join(format!("{i:03}"));
        let mock_dir = sys_dir.join("mock");
        let fit_dir = sys_dir.join("fit");
        let seed = cfg.seed + i as u64;
        if !fit_done(&fit_dir) {
            if !mock_dir.join("truths.json").exists() {
                run_mock(
                    &MockOptions {
                        model: cfg.model.clone(),
                        seed,
                        out: mock_dir.clone(),
                        checkpoint: cfg.checkpoint.clone(),
                        sigma_noise: None,
                        source_image: None,
                        source_half_width: None,
                    },
                    device,
                )
                .with_context(|| format!("study system {i}: mock"))?;
            }
            let mut fit = cfg.fit.clone();
            fit.obs = mock_dir.join("obs.fits");
            fit.truths = Some(mock_dir.join("truths.json"));
            fit.model = cfg.model.clone();
            fit.checkpoint = cfg.checkpoint.clone();
            fit.seed = seed;
            let target = if fit_dir.join("run.json").exists() {
                RunTarget::Resume(fit_dir.clone())
            } else {
                RunTarget::At(fit_dir.clone())
            };
            if let Err(e) = run_fit(&fit, target, device) {
                // One failed fit is a result of the study, not the end of it.
                eprintln!("study: system {i} failed: {e:#}");
                run.log("system", json!({"step": i, "failed": format!("{e:#}")}))?;
                failed.push(i);
                pb.inc(1);
                continue;
            }
        }
        let s = read_system(i, &fit_dir)?;
        let mut line = Map::new();
        line.insert("step".into(), json!(i));
        line.insert("rhat_max".into(), json!(s.rhat_max));
        line.insert("ess_min".into(), json!(s.ess_min));
        line.insert("chi2_dof".into(), json!(s.chi2_dof));
        for (k, p) in &s.params {
            line.insert(format!("{k}_err"), json!(p.mean - p.truth));
            line.insert(format!("{k}_z"), json!(p.z()));
        }
        run.log("system", Value::Object(line))?;
        systems.push(s);
        pb.inc(1);
        run.progress((i + 1) as f64 / n as f64, "fit", None, false)?;
    }
    pb.finish_and_clear();
    if systems.is_empty() {
        bail!("study: every one of the {n} fits failed");
    }
    let tab = table(&systems);
    let plot = run.artifacts().join("z_scores.png");
    z_score_figure(&plot, &systems, &tab)?;
    let summary = json!({
        "systems": n,
        "fits": systems.len(),
        "failed": failed,
        "bias": tab.iter().map(|(k, r)| (k.clone(), json!(r.mean_error))).collect::<Map<_, _>>(),
        "mu_z": tab.iter().map(|(k, r)| (k.clone(), json!(r.mu_z))).collect::<Map<_, _>>(),
        "coverage": tab.iter().map(|(k, r)| (k.clone(), json!(r.coverage_68))).collect::<Map<_, _>>(),
        "rhat_max": tab.values().map(|r| r.rhat_max).fold(f64::NEG_INFINITY, f64::max),
        "ess_min": tab.values().map(|r| r.ess_min).fold(f64::INFINITY, f64::min),
        "table": tab,
        "plots": [plot],
    });
    run.finish(summary)?;
    Ok(StudyOutcome {
        run_dir: run.dir().to_path_buf(),
        systems,
        table: tab,
        n_failed: failed.len(),
    })
}

/// Fig. 11 in z-score form: every system's z for every parameter (x = parameter index), with the
/// +-1 band a calibrated posterior fills 68% of the time.
fn z_score_figure(
    path: &Path,
    systems: &[SystemResult],
    tab: &BTreeMap<String, TableRow>,
) -> Result<()> {
    let names: Vec<&String> = tab.keys().collect();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for s in systems {
        for (k, name) in names.iter().enumerate() {
            if let Some(p) = s.params.get(*name) {
                let z = p.z();
                if z.is_finite() {
                    // Spread the systems across the column so they do not overlap.
                    let jitter = (s.index as f64 * 0.618_034).fract() * 0.5 - 0.25;
                    xs.push(k as f64 + jitter);
                    ys.push(z.clamp(-5.0, 5.0));
                }
            }
        }
    }
    let mu_x: Vec<f64> = (0..names.len()).map(|k| k as f64).collect();
    let mu_y: Vec<f64> = tab.values().map(|r| r.mu_z).collect();
    let band =
        |v: f64| -> (Vec<f64>, Vec<f64>) { (vec![-0.5, names.len() as f64 - 0.5], vec![v, v]) };
    let (bx, by_hi) = band(1.0);
    let (_, by_lo) = band(-1.0);
    let series = [
        Series {
            label: "z of each system",
            colour: [70, 110, 200],
            xs: &xs,
            ys: &ys,
            style: Style::Points,
        },
        Series {
            label: "mean z",
            colour: [220, 60, 40],
            xs: &mu_x,
            ys: &mu_y,
            style: Style::LineAndPoints,
        },
        Series {
            label: "+-1",
            colour: [150, 150, 150],
            xs: &bx,
            ys: &by_hi,
            style: Style::Line,
        },
        Series {
            label: "",
            colour: [150, 150, 150],
            xs: &bx,
            ys: &by_lo,
            style: Style::Line,
        },
    ];
    let legend: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(k, n)| format!("{k}:{n}"))
        .collect();
    let canvas = render_chart(
        &series,
        &ChartOptions {
            title: format!(
                "recovery of {} systems: z = (mean - truth) / sd",
                systems.len()
            ),
            xlabel: format!("parameter  ({})", legend.join(" ")),
            ylabel: "z".into(),
            width: 900,
            height: 420,
            ..Default::default()
        },
    )?;
    canvas.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys(index: usize, mean: f64, sd: f64, truth: f64) -> SystemResult {
        SystemResult {
            index,
            chi2_dof: Some(1.0),
            rhat_max: Some(1.0),
            ess_min: Some(1000.0),
            params: [(
                "lens.theta_e".to_string(),
                ParamRecovery {
                    mean,
                    sd,
                    q16: mean - sd,
                    q84: mean + sd,
                    truth,
                    rhat: 1.0 + index as f64 * 1e-3,
                    ess_bulk: 1000.0 + index as f64,
                },
            )]
            .into(),
        }
    }

    /// Table 2 columns by hand: errors 0.01, -0.03, 0.02 with sd 0.01 -> z = 1, -3, 2.
    #[test]
    fn table_matches_a_hand_computation() {
        let s = [
            sys(0, 1.01, 0.01, 1.0),
            sys(1, 1.17, 0.01, 1.2),
            sys(2, 1.32, 0.01, 1.3),
        ];
        let t = table(&s);
        let r = &t["lens.theta_e"];
        assert_eq!(r.n, 3);
        assert!((r.mean_error - 0.0).abs() < 1e-12, "{}", r.mean_error);
        assert!((r.mu_z - 0.0).abs() < 1e-9);
        // sample sd of (1, -3, 2) = sqrt((1 + 9 + 4) / 2) = sqrt(7)
        assert!((r.sd_z - 7f64.sqrt()).abs() < 1e-9);
        // only system 0 has |z| <= 1 -> inside [q16, q84]
        assert!((r.coverage_68 - 1.0 / 3.0).abs() < 1e-12);
        assert!((r.coverage_95 - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.rhat_max, 1.002);
        assert_eq!(r.ess_min, 1000.0);
    }
}
