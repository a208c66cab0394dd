//! Priors compared by what they are for (issue: "which prior recovers lenses and sources better?"):
//! the same study (same mocks, same seeds; real-galaxy sources with `--source-images`) fitted once
//! with every checkpoint of one or more `train-vae sweep`s and of single checkpoints (a baseline), then one
//! table and figure against latent dimension (against the priors' order when two share one):
//! lens-parameter bias, sd(z) and 68% coverage, MAP chi^2/dof, the source reconstruction residual,
//! R-hat/ESS and wall time per fit.
//!
//! `--out` holds one study folder per setting (`<out>/<setting>/`, an ordinary study that resumes)
//! and `comparison.json`, `comparison.csv`, `comparison.png`. Sharded (`--shard K/M`, one job per
//! shard), each setting's shard goes to `<out>/<setting>/shard-K-of-M/` and [`merge_comparison`]
//! (`infer study compare`) writes the comparison once every shard is in.

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::{Shard, StudyConfig};
use super::merge::{merge, read_results};
use super::result::SystemResult;
use super::run::{Continue, run_study};
use super::summarize::{StudySummary, summarize};
use arclight_core::plot::{ChartOptions, Series, Style, line_chart};

/// One prior's figures over the study.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PriorRow {
    pub setting: String,
    pub latent_dim: usize,
    pub checkpoint: PathBuf,
    pub systems: usize,
    pub fits: usize,
    pub flagged: usize,
    /// Mean over the lens parameters (not `src.*`) of |mean z| (bias in posterior sd units).
    pub lens_abs_mu_z: f64,
    /// Mean over the lens parameters of sd(z) (1 when the widths are right).
    pub lens_sd_z: f64,
    /// Fraction of lens-parameter truths inside their 68% central intervals, pooled, and its
    /// binomial standard error.
    pub lens_coverage_68: f64,
    pub lens_coverage_68_se: f64,
    /// Median MAP chi^2/dof over the systems.
    pub chi2_dof_median: Option<f64>,
    /// Median relative squared error of the reconstructed source (real-galaxy sources only).
    pub source_residual_median: Option<f64>,
    pub rhat_max: Option<f64>,
    pub ess_min: Option<f64>,
    /// Mean wall seconds per system.
    pub time_mean_s: Option<f64>,
    /// Per lens parameter: mean error, mean z, sd z.
    pub params: BTreeMap<String, [f64; 3]>,
}

/// The priors to compare, in the order given: every setting of each `train-vae sweep` folder (its
/// `sweep.json`) and each checkpoint folder given itself (a baseline such as `checkpoints/default`, named
/// by its folder), with latent dimension and checkpoint folder. Names must differ: they name the studies.
pub fn prior_settings(sources: &[PathBuf]) -> Result<Vec<(String, usize, PathBuf)>> {
    use arclight_vae::checkpoint::{META_FILE, PRIOR_FILE, read_meta};
    if sources.is_empty() {
        bail!("--priors-from: name at least one train-vae sweep or checkpoint folder");
    }
    let mut out: Vec<(String, usize, PathBuf)> = Vec::new();
    for src in sources {
        if src.join("sweep.json").is_file() {
            out.extend(sweep_settings(src)?);
        } else if src.join(META_FILE).is_file() {
            let meta = read_meta(src)?;
            if meta.prior.is_none() || !src.join(PRIOR_FILE).is_file() {
                bail!(
                    "--priors-from {}: the checkpoint has no fitted latent prior yet (training unfinished?)",
                    src.display()
                );
            }
            let name = std::fs::canonicalize(src)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .with_context(|| {
                    format!("--priors-from {}: a folder without a name", src.display())
                })?;
            out.push((name, meta.architecture.latent_dim, src.clone()));
        } else {
            bail!(
                "--priors-from {}: neither a train-vae sweep (no sweep.json) nor a checkpoint (no {META_FILE})",
                src.display()
            );
        }
    }
    for (i, (name, _, ck)) in out.iter().enumerate() {
        if let Some((_, _, other)) = out[..i].iter().find(|(n, _, _)| n == name) {
            bail!(
                "--priors-from: two priors are named {name:?} ({} and {}): their studies would share a folder; \
                 copy or link one under another name",
                other.display(),
                ck.display()
            );
        }
    }
    Ok(out)
}

/// The settings of the sweep in `sweep_dir` (from its `sweep.json`) with their checkpoint folders.
pub fn sweep_settings(sweep_dir: &Path) -> Result<Vec<(String, usize, PathBuf)>> {
    let path = sweep_dir.join("sweep.json");
    let plan: Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .with_context(|| format!("--priors-from: cannot read {}", path.display()))?,
    )
    .with_context(|| format!("{}: not JSON", path.display()))?;
    let Some(settings) = plan["settings"].as_array() else {
        bail!(
            "{}: no settings (not a train-vae sweep plan)",
            path.display()
        )
    };
    let mut out = Vec::new();
    for s in settings {
        let (Some(name), Some(d)) = (s["name"].as_str(), s["latent_dim"].as_u64()) else {
            bail!("{}: a setting without name or latent_dim", path.display())
        };
        let ck = sweep_dir.join(name);
        if !ck.join(arclight_vae::checkpoint::PRIOR_FILE).is_file() {
            bail!(
                "{}: setting {name} has no trained prior yet; finish the sweep first (run its command again)",
                ck.display()
            );
        }
        out.push((name.to_string(), d as usize, ck));
    }
    Ok(out)
}

/// The folder of one setting's study (or of its shard) under a comparison's `out`.
fn setting_dir(out: &Path, name: &str, shard: Shard) -> PathBuf {
    if shard == Shard::ALL {
        out.join(name)
    } else {
        out.join(name)
            .join(format!("shard-{}-of-{}", shard.k, shard.m))
    }
}

/// Run (or continue) the study `base` with every prior of `sources` ([`prior_settings`]) into
/// `out/<setting>/` (or shard `K/M` of each into `out/<setting>/shard-K-of-M/`). Unsharded, the
/// comparison is written and its rows returned; a shard returns `None` ([`merge_comparison`] writes it).
pub fn compare_priors(
    base: &StudyConfig,
    sources: &[PathBuf],
    out: &Path,
    shard: Shard,
    cont: Continue,
    device: &Device,
) -> Result<Option<Vec<PriorRow>>> {
    let settings = prior_settings(sources)?;
    let mut rows = Vec::new();
    for (name, d, ck) in settings {
        eprintln!("compare priors: {name} (latent_dim {d}), shard {shard}");
        let cfg = StudyConfig {
            checkpoint: Some(ck.clone()),
            ..base.clone()
        };
        let dir = setting_dir(out, &name, shard);
        // every setting's study continues, whatever the invocation's --resume
        let cont = Continue {
            resume: true,
            ..cont
        };
        let o = run_study(&cfg, &dir, shard, cont, device)?;
        if shard == Shard::ALL {
            rows.push(row(&name, d, &ck, &o.summary, &read_results(&dir)?));
        }
    }
    if shard != Shard::ALL {
        return Ok(None);
    }
    write_comparison(out, &rows)?;
    Ok(Some(rows))
}

/// The comparison of a sharded run of [`compare_priors`]: each setting's shards under
/// `out/<setting>/shard-*-of-*` (or its unsharded study in `out/<setting>/`) merged as `infer study
/// summarize` merges a study, then the table and figure written. Refused while a setting misses systems.
pub fn merge_comparison(sources: &[PathBuf], out: &Path) -> Result<Vec<PriorRow>> {
    let mut rows = Vec::new();
    for (name, d, ck) in prior_settings(sources)? {
        let dirs = study_dirs(&out.join(&name))?;
        let merged = merge(&dirs)?;
        if !merged.missing.is_empty() {
            bail!(
                "{}: {} of {} systems have no result yet (first: {}): run the missing shards (same command, \
                 --resume) first",
                out.join(&name).display(),
                merged.missing.len(),
                merged.study.config.n_systems,
                merged.missing[0]
            );
        }
        let summary = summarize(&merged);
        rows.push(row(&name, d, &ck, &summary, &merged.results));
    }
    write_comparison(out, &rows)?;
    Ok(rows)
}

/// A setting's study folders: itself when it is a study, else its `shard-*` subfolders that are.
fn study_dirs(setting: &Path) -> Result<Vec<PathBuf>> {
    if setting.join("study.json").is_file() {
        return Ok(vec![setting.to_path_buf()]);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(setting)
        .with_context(|| format!("{}: no study of this setting", setting.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("shard-"))
                && p.join("study.json").is_file()
        })
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "{}: no study shards (shard-K-of-M/study.json)",
            setting.display()
        );
    }
    Ok(dirs)
}

fn row(name: &str, d: usize, ck: &Path, s: &StudySummary, results: &[SystemResult]) -> PriorRow {
    let lens: Vec<(&String, &super::summarize::ParamRow)> = s
        .table
        .iter()
        .filter(|(k, _)| !k.starts_with("src."))
        .collect();
    // averages over the lens parameters with a finite value (none: NaN, not a perfect 0)
    let mean_of = |v: Vec<f64>| {
        let v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let (mut inside, mut total) = (0usize, 0usize);
    for (_, r) in &lens {
        if let Some(c) = r.coverage.get("68") {
            inside += c.inside;
            total += c.n;
        }
    }
    let frac = if total > 0 {
        inside as f64 / total as f64
    } else {
        f64::NAN
    };
    let (mut chi2, mut resid) = (Vec::new(), Vec::new());
    for r in results {
        chi2.extend(r.chi2_dof);
        resid.extend(r.source_residual);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2])
    };
    PriorRow {
        setting: name.to_string(),
        latent_dim: d,
        checkpoint: std::path::absolute(ck).unwrap_or_else(|_| ck.to_path_buf()),
        systems: s.systems,
        fits: s.fits,
        flagged: s.flagged.len(),
        lens_abs_mu_z: mean_of(lens.iter().map(|(_, r)| r.mu_z.abs()).collect()),
        lens_sd_z: mean_of(lens.iter().map(|(_, r)| r.sd_z).collect()),
        lens_coverage_68: frac,
        lens_coverage_68_se: if total > 0 {
            (frac * (1.0 - frac) / total as f64).sqrt()
        } else {
            f64::NAN
        },
        chi2_dof_median: median(chi2),
        source_residual_median: median(resid),
        rhat_max: s.rhat_max,
        ess_min: s.ess_min,
        time_mean_s: s.time_per_system_s.as_ref().map(|t| t.mean),
        params: lens
            .iter()
            .map(|(k, r)| ((*k).clone(), [r.mean_error, r.mu_z, r.sd_z]))
            .collect(),
    }
}

/// `comparison.json`, `comparison.csv` and `comparison.png` (bias, sd(z), 68% coverage against D, or
/// against the priors' order when two share a D).
fn write_comparison(out: &Path, rows: &[PriorRow]) -> Result<()> {
    arclight_core::write_json_atomic(&out.join("comparison.json"), &rows)?;
    let mut csv = String::from(
        "setting,latent_dim,systems,fits,flagged,lens_abs_mu_z,lens_sd_z,lens_coverage_68,lens_coverage_68_se,\
         chi2_dof_median,source_residual_median,rhat_max,ess_min,time_mean_s\n",
    );
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.setting,
            r.latent_dim,
            r.systems,
            r.fits,
            r.flagged,
            r.lens_abs_mu_z,
            r.lens_sd_z,
            r.lens_coverage_68,
            r.lens_coverage_68_se,
            opt(r.chi2_dof_median),
            opt(r.source_residual_median),
            opt(r.rhat_max),
            opt(r.ess_min),
            opt(r.time_mean_s)
        ));
    }
    arclight_core::write_atomic(&out.join("comparison.csv"), csv.as_bytes())?;
    let mut dims: Vec<usize> = rows.iter().map(|r| r.latent_dim).collect();
    dims.sort_unstable();
    dims.dedup();
    let by_dim = dims.len() == rows.len();
    // the points in order of D (a sweep and a baseline may come in any order), or as given
    let mut order: Vec<usize> = (0..rows.len()).collect();
    if by_dim {
        order.sort_by_key(|&i| rows[i].latent_dim);
    }
    let rows: Vec<&PriorRow> = order.iter().map(|&i| &rows[i]).collect();
    let xs: Vec<f64> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if by_dim {
                r.latent_dim as f64
            } else {
                (i + 1) as f64
            }
        })
        .collect();
    let xlabel = if by_dim {
        "latent dimension".to_string()
    } else {
        let names: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{} {} (D {})", i + 1, r.setting, r.latent_dim))
            .collect();
        format!("prior: {}", names.join(", "))
    };
    // priors in no order of their own are points, not a trend
    let style = if by_dim {
        Style::LineAndPoints
    } else {
        Style::Points
    };
    let mu: Vec<f64> = rows.iter().map(|r| r.lens_abs_mu_z).collect();
    let sd: Vec<f64> = rows.iter().map(|r| r.lens_sd_z).collect();
    let cov: Vec<f64> = rows.iter().map(|r| r.lens_coverage_68).collect();
    let series = [
        Series {
            label: "mean |z| (bias)",
            colour: [31, 119, 180],
            xs: &xs,
            ys: &mu,
            style,
        },
        Series {
            label: "sd(z) (1: right widths)",
            colour: [214, 39, 40],
            xs: &xs,
            ys: &sd,
            style,
        },
        Series {
            label: "68% coverage (0.68: calibrated)",
            colour: [44, 160, 44],
            xs: &xs,
            ys: &cov,
            style,
        },
    ];
    line_chart(
        &out.join("comparison.png"),
        &series,
        &ChartOptions {
            title: "priors compared by lens recovery (lens parameters)".into(),
            xlabel,
            ylabel: "".into(),
            ..ChartOptions::default()
        },
    )
}

/// The comparison as a text table.
pub fn render_comparison(rows: &[PriorRow]) -> String {
    let mut s = format!(
        "{:<20} {:>4} {:>6} {:>7} {:>9} {:>7} {:>12} {:>9} {:>9} {:>8} {:>7} {:>8}\n",
        "prior",
        "D",
        "fits",
        "flagged",
        "mean|z|",
        "sd(z)",
        "cov68",
        "chi2/dof",
        "src resid",
        "R-hat",
        "ESS",
        "s/fit"
    );
    let f = |v: Option<f64>, p: usize| v.map_or("-".into(), |x| format!("{x:.p$}"));
    for r in rows {
        s.push_str(&format!(
            "{:<20} {:>4} {:>6} {:>7} {:>9.2} {:>7.2} {:>6.2}+-{:<4.2} {:>9} {:>9} {:>8} {:>7} {:>8}\n",
            r.setting,
            r.latent_dim,
            r.fits,
            r.flagged,
            r.lens_abs_mu_z,
            r.lens_sd_z,
            r.lens_coverage_68,
            r.lens_coverage_68_se,
            f(r.chi2_dof_median, 3),
            f(r.source_residual_median, 3),
            f(r.rhat_max, 3),
            f(r.ess_min, 0),
            f(r.time_mean_s, 0)
        ));
    }
    s
}
