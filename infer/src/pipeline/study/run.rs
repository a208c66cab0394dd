//! Running a study shard: each system of the shard is mocked and fitted in its own folder and
//! ends as one result file written atomically. A killed shard resumes where it stopped (`--resume`):
//! systems with a result are kept (failed ones are run again with `retry_failed`), a partial system
//! is restarted from scratch, and resuming with another model, seed, n, settings or shard is
//! refused. The set-up (model, checkpoint, source images) is checked before any system runs, and a
//! shard whose every system failed is an error. `summarize` merges shard directories.

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::collect::{SystemRun, collect};
use super::config::{Shard, StudyConfig, StudyFile, json_diff};
use super::merge::{Merged, merge};
use super::report::{render_text, write_summary};
use super::result::{StageOutcome, SystemResult};
use super::summarize::StudySummary;
use crate::model::spec::ModelSpec;
use crate::pipeline::fit::{RunTarget, run_fit};
use crate::pipeline::mock::{MockOptions, run_mock};
use arclight_core::record::{Run, RunInfo, RunKind, RunSpec};

/// What a shard did.
pub struct ShardOutcome {
    pub dir: PathBuf,
    pub summary: StudySummary,
    /// Systems fitted by this process, and systems whose result was already there.
    pub ran: usize,
    pub kept: usize,
}

/// How a shard treats what an earlier run of it left.
#[derive(Clone, Copy, Debug, Default)]
pub struct Continue {
    /// Continue the study in `out` (keep finished systems).
    pub resume: bool,
    /// Run the systems whose kept result has a failed stage again (after fixing its cause).
    pub retry_failed: bool,
}

/// Run (or, with `resume`, continue) shard `shard` of the study `cfg` in `out`.
pub fn run_study(
    cfg: &StudyConfig,
    out: &Path,
    shard: Shard,
    cont: Continue,
    device: &Device,
) -> Result<ShardOutcome> {
    let resume = cont.resume;
    if cfg.n_systems == 0 {
        bail!("--n: a study needs at least one system");
    }
    let Some(first) = shard.systems(cfg.n_systems).next() else {
        bail!(
            "--shard {shard} of --n {}: this shard holds no system (shard K of M holds the systems i with i mod M = K - 1); use at most {} shards",
            cfg.n_systems,
            cfg.n_systems
        );
    };
    // check the model file, the checkpoint and the source images before creating anything
    let spec = ModelSpec::load(&cfg.model)?;
    // the settings every fit runs with, recorded in the identity (`run_fit` would fill them the same way)
    let mut cfg = cfg.clone();
    if resume
        && let Ok(have) = StudyFile::load(out)
        && cfg.fit.keep_recorded_metric(&have.identity["settings"])
        && spec.vae_source().is_some()
    {
        eprintln!(
            "study: resuming with the draws' HMC metric the study was started with (a VAE source's default \
             is now the gradients'; --hmc-metric chooses)"
        );
    }
    cfg.fit.choose_for_model(&spec);
    let cfg = &cfg;
    let checkpoint = preflight(cfg, &spec, first, device).with_context(|| {
        format!("study set-up (checked on system {first} before any system runs)")
    })?;
    let mut want = StudyFile::new(cfg, shard)?;
    want.checkpoint_sha256 = match &checkpoint {
        Some(dir) => Some(super::config::checkpoint_sha256(dir)?),
        None => None,
    };
    let study_path = StudyFile::path(out);
    let mut run = if study_path.exists() {
        if !resume {
            bail!(
                "{}: already holds a study (study.json); add --resume to continue it, or choose another --out",
                out.display()
            );
        }
        let have = StudyFile::load(out)?;
        let diff = json_diff(&have.identity, &want.identity, 8);
        if !diff.is_empty() {
            bail!(
                "{}: refusing to resume with different settings ({}); rerun with the settings it was started with, or choose another --out",
                study_path.display(),
                diff.join("; ")
            );
        }
        if let (Some(h), Some(w)) = (&have.checkpoint_sha256, &want.checkpoint_sha256)
            && h != w
        {
            bail!(
                "{}: the VAE checkpoint {} is not the one this study started with (its decoder or prior changed: retrained in place?); put that one back, or start a new study in another --out",
                study_path.display(),
                checkpoint.as_deref().unwrap_or(Path::new("?")).display()
            );
        }
        if have.shard != shard {
            bail!(
                "{}: this directory holds shard {}, not {shard}",
                study_path.display(),
                have.shard
            );
        }
        Run::resume(out)?
    } else {
        let empty = std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true);
        // killed between creating the record and writing study.json: nothing ran yet
        let just_created = RunInfo::load(out)
            .is_ok_and(|i| i.kind == RunKind::Study && i.config.get("summarize").is_none())
            && !out.join("results").exists()
            && !out.join("systems").exists();
        let run = if empty {
            Run::create_at(
                out,
                RunSpec {
                    kind: RunKind::Study,
                    name: &format!("{}-shard{}of{}", spec.name, shard.k, shard.m),
                    config: serde_json::to_value(&want)?,
                    device: cfg.fit.device.clone(),
                    seed: Some(cfg.seed),
                },
            )?
        } else if just_created {
            Run::resume(out)?
        } else {
            bail!(
                "{}: not empty and not a study directory (no study.json); choose another --out",
                out.display()
            );
        };
        arclight_core::write_json_atomic(&study_path, &want)?;
        run
    };
    // the pool of this invocation (each system's result records its own)
    run.set_threads(rayon::current_num_threads())?;
    match shard_loop(cfg, &want, &spec, out, &mut run, cont.retry_failed, device) {
        Ok(o) => Ok(o),
        Err(e) => {
            let _ = run.fail(&format!("{e:#}"));
            Err(e)
        }
    }
}

/// The run-record flag of a shard or summary with flagged systems (the tracker shows it).
fn record_flags(flagged: &[(usize, String)], of: usize) -> Vec<String> {
    if flagged.is_empty() {
        return Vec::new();
    }
    let first: Vec<String> = flagged
        .iter()
        .take(3)
        .map(|(i, why)| format!("{i} ({why})"))
        .collect();
    vec![format!(
        "{} of {of} systems flagged: {}{}",
        flagged.len(),
        first.join(", "),
        if flagged.len() > 3 { ", ..." } else { "" }
    )]
}

/// Build what the mocks and the fits of the study need (the model with the first system's source
/// image, the checkpoint, the parameter layouts), so a set-up error stops the shard at once instead
/// of failing every system. Returns the fits' VAE checkpoint, if the model has a VAE source.
fn preflight(
    cfg: &StudyConfig,
    spec: &ModelSpec,
    first: usize,
    device: &Device,
) -> Result<Option<PathBuf>> {
    use crate::pipeline::problem::Problem;
    let mock_spec = match &cfg.source_images {
        Some(s) => {
            let index = s.index_for(cfg.seed, first)?;
            crate::pipeline::mock::with_image_source(spec, &s.file, index)?
        }
        None => spec.clone(),
    };
    Problem::from_spec(mock_spec, cfg.checkpoint.as_deref(), device)?.sim_layout()?;
    let fit = Problem::from_spec(spec.clone(), cfg.checkpoint.as_deref(), device)?;
    fit.layout()?;
    Ok(fit.vae.map(|(_, _, dir)| dir))
}

#[allow(clippy::too_many_arguments)]
fn shard_loop(
    cfg: &StudyConfig,
    study: &StudyFile,
    spec: &ModelSpec,
    out: &Path,
    run: &mut Run,
    retry_failed: bool,
    device: &Device,
) -> Result<ShardOutcome> {
    let shard = study.shard;
    let systems: Vec<usize> = shard.systems(cfg.n_systems).collect();
    let total = systems.len();
    let (mut ran, mut kept) = (0, 0);
    let mut flagged = Vec::new();
    let mut failed: Vec<(usize, String)> = Vec::new();
    run.set_flags(Vec::new())?;
    for (done, &i) in systems.iter().enumerate() {
        let path = SystemResult::path(out, i);
        let earlier = if path.exists() {
            let r = SystemResult::load(&path)?;
            if r.study_id != study.study_id || r.index != i {
                bail!(
                    "{}: result of another study or system (study {}, system {})",
                    path.display(),
                    r.study_id,
                    r.index
                );
            }
            Some(r).filter(|r| !(retry_failed && r.failed_stage().is_some()))
        } else {
            None
        };
        let r = if let Some(r) = earlier {
            kept += 1;
            r
        } else {
            let r = run_system(cfg, study, out, i, spec, device)?;
            arclight_core::write_json_atomic(&path, &r)?;
            ran += 1;
            let what = if r.is_flagged() {
                let why: Vec<&str> = r.flags.iter().map(|f| f.message.as_str()).collect();
                format!("FLAGGED: {}", why.join("; "))
            } else {
                "ok".into()
            };
            eprintln!(
                "study: system {i} (seed {}) done in {:.1} s: {what}",
                r.seed, r.wall_s
            );
            run.log("system", system_line(&r))?;
            r
        };
        if let Some((stage, error)) = r.failed_stage() {
            failed.push((i, format!("{stage}: {error}")));
        }
        if r.is_flagged() {
            flagged.push((i, r.flags[0].message.clone()));
            run.set_flags(record_flags(&flagged, total))?;
        }
        run.progress(
            (done + 1) as f64 / total.max(1) as f64,
            &format!("system {}/{total}", done + 1),
            None,
            true,
        )?;
    }
    let mut merged: Merged = merge(&[out.to_path_buf()])?;
    merged.missing.retain(|&i| shard.contains(i));
    let summary = write_summary(out, &merged)?;
    run.set_flags(record_flags(&flagged, total))?;
    if let Some((i, why)) = failed.first() {
        let what = format!(
            "{} of {total} systems of shard {shard} failed (first: system {i}, {why}); fix the cause, then rerun with --resume --retry-failed",
            failed.len()
        );
        if failed.len() == total {
            bail!("{what}");
        }
        eprintln!("study: {what}");
    }
    run.finish(serde_json::to_value(&summary)?)?;
    Ok(ShardOutcome {
        dir: out.to_path_buf(),
        summary,
        ran,
        kept,
    })
}

/// The metrics line of a finished system.
fn system_line(r: &SystemResult) -> Value {
    let mut line = Map::new();
    line.insert("step".into(), json!(r.index));
    line.insert("seed".into(), json!(r.seed));
    line.insert("flagged".into(), json!(r.is_flagged()));
    line.insert(
        "flags".into(),
        json!(r.flags.iter().map(|f| &f.message).collect::<Vec<_>>()),
    );
    line.insert("rhat_max".into(), json!(r.rhat_max));
    line.insert("ess_min".into(), json!(r.ess_bulk_min));
    line.insert("chi2_dof".into(), json!(r.chi2_dof));
    line.insert("wall_s".into(), json!(r.wall_s));
    for (k, p) in &r.params {
        if let (None, Some(t)) = (crate::prob::layout::vector_block(k), p.truth) {
            line.insert(format!("{k}_err"), json!(p.mean - t));
            line.insert(format!("{k}_z"), json!(p.z));
        }
    }
    Value::Object(line)
}

/// Mock and fit system `i` from scratch (a partial earlier attempt is removed first). Failures of
/// the mock or the fit are results (flagged), not errors; errors are the study's own (IO).
fn run_system(
    cfg: &StudyConfig,
    study: &StudyFile,
    out: &Path,
    i: usize,
    spec: &ModelSpec,
    device: &Device,
) -> Result<SystemResult> {
    let sys_dir = out.join("systems").join(format!("{i:06}"));
    if sys_dir.exists() {
        std::fs::remove_dir_all(&sys_dir).with_context(|| {
            format!(
                "cannot remove the partial system folder {}",
                sys_dir.display()
            )
        })?;
    }
    let seed = cfg
        .seed
        .checked_add(i as u64)
        .with_context(|| format!("--seed {} + system {i} overflows", cfg.seed))?;
    let (mock_dir, fit_dir) = (sys_dir.join("mock"), sys_dir.join("fit"));
    let t0 = Instant::now();
    let mock = match guarded(|| {
        let source_image = match &cfg.source_images {
            Some(s) => Some((s.file.clone(), s.index_for(cfg.seed, i)?)),
            None => None,
        };
        run_mock(
            &MockOptions {
                model: cfg.model.clone(),
                seed,
                out: mock_dir.clone(),
                checkpoint: cfg.checkpoint.clone(),
                sigma_noise: None,
                source_image,
                source_half_width: None,
            },
            device,
        )
    }) {
        Ok(_) => StageOutcome::ok(Some(t0.elapsed().as_secs_f64())),
        Err(e) => StageOutcome::failed(format!("{e:#}"), Some(t0.elapsed().as_secs_f64())),
    };
    let fit_error = if mock.error.is_none() {
        let mut fit = cfg.fit.clone();
        fit.obs = mock_dir.join("obs.fits");
        fit.truths = Some(mock_dir.join("truths.json"));
        fit.model = cfg.model.clone();
        fit.checkpoint = cfg.checkpoint.clone();
        fit.seed = seed;
        guarded(|| run_fit(&fit, RunTarget::At(fit_dir.clone()), device))
            .err()
            .map(|e| format!("{e:#}"))
    } else {
        None
    };
    let threads = rayon::current_num_threads();
    // reading the fit back is guarded too: a damaged file fails this system, not the shard (which
    // would stop at it again on every resume)
    let mut r = match guarded(|| {
        collect(&SystemRun {
            study_id: &study.study_id,
            index: i,
            seed,
            mock_dir: &mock_dir,
            fit_dir: &fit_dir,
            mock: mock.clone(),
            fit_error: fit_error.clone(),
            stages: cfg.fit.stages,
            wall_s: t0.elapsed().as_secs_f64(),
            threads,
            period_of: &|name| spec.period_of(name),
        })
    }) {
        Ok(r) => r,
        Err(e) => SystemResult::unreadable(
            &study.study_id,
            i,
            seed,
            mock,
            format!("reading the fit back: {e:#}"),
            t0.elapsed().as_secs_f64(),
            threads,
        ),
    };
    if cfg.source_images.is_some() && fit_dir.join("summary.json").is_file() {
        match guarded(|| super::sources::source_residual(cfg, &mock_dir, &fit_dir, device)) {
            Ok(v) => r.source_residual = Some(v),
            Err(e) => eprintln!("study: system {i}: no source residual: {e:#}"),
        }
    }
    if fit_dir.join("run.json").exists() {
        // the system's own fit record carries its flags too
        arclight_core::record::set_flags(
            &fit_dir,
            r.flags.iter().map(|f| f.message.clone()).collect(),
        )?;
    }
    Ok(r)
}

/// Run one stage of a system, turning a panic into its error: one system that trips an assertion
/// deep in a kernel is a failed (flagged) result, not the end of a shard that would hit it again on
/// every resume.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            bail!("panicked: {msg}")
        }
    }
}

/// `infer study summarize`: merge the shard directories `dirs` into `out` (a run record of kind
/// study with `summary.json`, `artifacts/{table,systems}.csv` and the figures). `out` must be new,
/// empty, or an earlier summary (rewritten).
pub fn run_summarize(dirs: &[PathBuf], out: &Path) -> Result<(StudySummary, String)> {
    let merged = merge(dirs)?;
    let out_canon = out.canonicalize().ok();
    for d in dirs {
        if d.canonicalize().ok() == out_canon && out_canon.is_some() {
            bail!(
                "--out {}: is one of the study directories; choose a new folder",
                out.display()
            );
        }
    }
    let config = json!({"summarize": dirs, "study_id": merged.study.study_id});
    let mut run = if out.join("run.json").exists() {
        let info = RunInfo::load(out)?;
        if info.kind != RunKind::Study || info.config.get("summarize").is_none() {
            bail!(
                "--out {}: holds another run record, not a study summary; choose a new folder",
                out.display()
            );
        }
        let mut run = Run::resume(out)?;
        run.update_config("summarize", json!(dirs))?;
        run.update_config("study_id", json!(merged.study.study_id))?;
        run
    } else {
        let empty = std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true);
        if !empty {
            bail!(
                "--out {}: not empty and not a study summary; choose a new folder",
                out.display()
            );
        }
        Run::create_at(
            out,
            RunSpec {
                kind: RunKind::Study,
                name: "summary",
                config,
                device: merged.study.config.fit.device.clone(),
                seed: Some(merged.study.config.seed),
            },
        )?
    };
    let result = write_summary(out, &merged).and_then(|s| {
        let flagged: Vec<(usize, String)> = s
            .flagged
            .iter()
            .map(|f| (f.index, f.reasons.first().cloned().unwrap_or_default()))
            .collect();
        run.set_flags(record_flags(&flagged, s.results))?;
        run.finish(serde_json::to_value(&s)?)?;
        Ok(s)
    });
    match result {
        Ok(s) => {
            let text = render_text(&s);
            Ok((s, text))
        }
        Err(e) => {
            let _ = run.fail(&format!("{e:#}"));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_stage_is_an_error_of_that_stage() {
        let e = guarded::<()>(|| panic!("index 7 out of range")).unwrap_err();
        assert_eq!(e.to_string(), "panicked: index 7 out of range");
        let e = guarded::<()>(|| panic!("{} chains", 3)).unwrap_err();
        assert_eq!(e.to_string(), "panicked: 3 chains");
        assert_eq!(guarded(|| Ok(5)).unwrap(), 5);
        assert_eq!(
            record_flags(&[(3, "R-hat 1.02 >= 1.01 (a)".into())], 10),
            ["1 of 10 systems flagged: 3 (R-hat 1.02 >= 1.01 (a))"]
        );
        assert!(record_flags(&[], 10).is_empty());
    }
}
