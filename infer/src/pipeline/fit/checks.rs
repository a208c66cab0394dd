//! Checks before a fit touches anything: a resumed run's inputs and stage results against this
//! invocation, and truths against the model.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;

use super::artifacts::{MapArtifact, ViArtifact, latent_coordinates, read_json};
use crate::pipeline::inputs::input_differences;
use crate::pipeline::problem::Problem;
use crate::prob::ParamLayout;
use arclight_core::record::{InputFile, RunInfo, RunKind};

/// `--checkpoint` given for a model without a VAE source: nothing uses it.
pub(super) fn unused_checkpoint(checkpoint: Option<&Path>, problem: &Problem) -> Option<String> {
    let c = checkpoint.filter(|_| problem.vae.is_none())?;
    Some(format!(
        "{}: the model has no VAE source, so --checkpoint {} is not used",
        problem.spec.path.display(),
        c.display()
    ))
}

/// The HDUs this invocation read (`{"obs": h, "noise_map": h|null, "mask": h|null}`) against those the
/// run recorded: the same file read from another HDU is other data. A run recorded before HDUs were
/// kept read every file from its primary HDU.
pub(super) fn check_hdus(dir: &Path, now: &serde_json::Value) -> Result<()> {
    let info = RunInfo::load(dir)?;
    for key in ["obs", "noise_map", "mask"] {
        let Some(h) = now[key].as_u64() else {
            continue;
        };
        let before = match info.config.get("hdus") {
            Some(r) => r[key].as_u64(),
            None => Some(0),
        };
        if let Some(b) = before.filter(|&b| b != h) {
            bail!(
                "{}: cannot resume: the {key} file was read from HDU {b} and would now be read from HDU {h}; \
                 resume with the run's HDU (see its config) or start a new run without --resume",
                dir.display()
            );
        }
    }
    Ok(())
}

pub(super) fn check_resumable(dir: &Path, inputs: &BTreeMap<String, InputFile>) -> Result<()> {
    let info = RunInfo::load(dir)?;
    if info.kind != RunKind::Fit {
        bail!(
            "{}: cannot resume: this is a {} run, not a fit",
            dir.display(),
            info.kind.as_str()
        );
    }
    let diffs = input_differences(&info.inputs, inputs);
    if !info.inputs.is_empty() && !diffs.is_empty() {
        bail!(
            "{}: cannot resume: {} input{} differ{} from the run's record (run.json):\n  {}\n\
             resume with the files the run was started with, or start a new run without --resume",
            dir.display(),
            diffs.len(),
            if diffs.len() == 1 { "" } else { "s" },
            if diffs.len() == 1 { "s" } else { "" },
            diffs.join("\n  ")
        );
    }
    Ok(())
}

/// The stage results already in run `dir` must have this invocation's dimension (`layout`): a run
/// started with another model or checkpoint (recorded before input hashes were kept) would else
/// fail deep inside a later stage or be misread. Checked before the run is touched.
pub(super) fn check_stage_results(dir: &Path, layout: &ParamLayout) -> Result<()> {
    let d = layout.dim();
    let art = dir.join("artifacts");
    let vectors: Vec<String> = layout
        .blocks()
        .iter()
        .filter(|b| b.dim > 1)
        .map(|b| format!("{} has {}", b.name, b.dim))
        .collect();
    let this = if vectors.is_empty() {
        format!("this model has {d} free parameters")
    } else {
        format!(
            "this model has {d} free parameters ({})",
            vectors.join(", ")
        )
    };
    let hint = "the run was started with another model file or checkpoint: resume with those, or \
                start a new run without --resume";
    let map_path = art.join("map.json");
    if map_path.exists() {
        let m: MapArtifact = read_json(&map_path)?;
        check_latent_coordinates(&map_path, m.latent_coordinates.as_deref(), layout)?;
        if m.best_u.len() != d {
            bail!(
                "{}: the MAP point has {} values, but {this}; {hint}",
                map_path.display(),
                m.best_u.len()
            );
        }
    }
    let vi_path = art.join("vi.json");
    if vi_path.exists() {
        let v: ViArtifact = read_json(&vi_path)?;
        check_latent_coordinates(&vi_path, v.latent_coordinates.as_deref(), layout)?;
        if v.mean.len() != d || v.chol.len() != d * d {
            bail!(
                "{}: the VI mean has {} values, but {this}; {hint}",
                vi_path.display(),
                v.mean.len()
            );
        }
    }
    let samples = art.join("samples.h5");
    if samples.exists() {
        let f = hdf5::File::open(&samples)
            .with_context(|| format!("{}: cannot open samples", samples.display()))?;
        for b in layout.blocks() {
            let width = f.dataset(&b.name).ok().map(|ds| {
                if b.dim == 1 {
                    1
                } else {
                    *ds.shape().get(2).unwrap_or(&0)
                }
            });
            if width != Some(b.dim) {
                bail!(
                    "{}: the draws of {} {}, but {this}; {hint}",
                    samples.display(),
                    b.name,
                    match width {
                        Some(w) => format!("have {w} components"),
                        None => "are missing".to_string(),
                    }
                );
            }
        }
    }
    Ok(())
}

fn check_latent_coordinates(path: &Path, found: Option<&str>, layout: &ParamLayout) -> Result<()> {
    let want = latent_coordinates(layout);
    if found != want.as_deref() {
        bail!(
            "{}: the latent block is stored in {} coordinates, this version uses {}: the run was made by \
             an earlier version; start a new run without --resume",
            path.display(),
            found.unwrap_or("raw"),
            want.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}

pub(super) use crate::pipeline::mock::{Truths, truth_near};

/// Truths that do not belong to this model: latent values of another length than its latent block
/// (a mock made with another checkpoint: component i of another latent space is no truth for this
/// one), latent values without a VAE source, or parameter names the model does not have. The
/// latent values are then dropped so no z-score is computed against them. Returns the warnings.
pub(super) fn check_truths(
    truths: &mut Truths,
    path: &Path,
    layout: &ParamLayout,
    problem: &Problem,
) -> Vec<String> {
    let mut out = Vec::new();
    let latent_blocks: Vec<(&str, usize)> = layout
        .blocks()
        .iter()
        .filter(|b| matches!(b.prior, crate::prob::BlockPrior::MvNormal(_)))
        .map(|b| (b.name.as_str(), b.dim))
        .collect();
    if let Some(latent) = &truths.1 {
        let mismatch = match latent_blocks.as_slice() {
            [] => Some(format!(
                "{}: {} latent truth values, but the model has no VAE source",
                path.display(),
                latent.len()
            )),
            [(name, d)] if *d != latent.len() => Some(format!(
                "{}: {} latent truth values, but the model's {name} has {d} components (checkpoint {}): \
                 the mock was made with another latent prior",
                path.display(),
                latent.len(),
                problem
                    .vae
                    .as_ref()
                    .map(|v| v.2.display().to_string())
                    .unwrap_or_default()
            )),
            _ => None,
        };
        if let Some(m) = mismatch {
            out.push(format!("{m}; the latent truths are not used"));
            truths.1 = None;
        }
    }
    let known: Vec<String> = layout.names();
    let unknown: Vec<&String> = truths.0.keys().filter(|k| !known.contains(k)).collect();
    if !unknown.is_empty() {
        let shown: Vec<&str> = unknown.iter().take(6).map(|s| s.as_str()).collect();
        out.push(format!(
            "{}: {} truth value(s) name parameters this model does not have ({}{}): not used",
            path.display(),
            unknown.len(),
            shown.join(", "),
            if unknown.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        ));
    }
    // A truth the prior cannot draw: z-scores and coverage against it say nothing about the sampler
    // (an angle is judged by its equivalent nearest the posterior, so only non-periodic ones count).
    for b in layout.blocks() {
        let (crate::prob::BlockPrior::Iid(prior), 1) = (&b.prior, b.dim) else {
            continue;
        };
        let Some(&v) = truths.0.get(&b.name) else {
            continue;
        };
        if problem.spec.period_of(&b.name).is_some() {
            continue;
        }
        let (lo, hi) = prior.support();
        if !(lo..=hi).contains(&v) {
            out.push(format!(
                "{}: the truth of {} ({v}) is outside its prior's support [{lo}, {hi}] ({}): the \
                 posterior cannot cover it",
                path.display(),
                b.name,
                prior.name()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint given to a model without a VAE source is said; none given, nothing said.
    #[test]
    fn an_unused_checkpoint_is_said() {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml");
        let p = Problem::load(&model, None, &burn::tensor::Device::flex()).unwrap();
        let w = unused_checkpoint(Some(Path::new("checkpoints/x")), &p).unwrap();
        assert!(
            w.contains("no VAE source")
                && w.contains("checkpoints/x")
                && w.contains("gigalens2022.toml"),
            "{w}"
        );
        assert!(unused_checkpoint(None, &p).is_none());
    }
}
