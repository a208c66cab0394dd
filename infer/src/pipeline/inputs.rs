//! The input files of `infer fit` with their content hashes (SHA-256, [`arclight_core::hash`]):
//! recorded in `run.json` when a run starts, and compared on `--resume` so that a run is never
//! continued on other data than it was started with (HMC would sample a new image from the old
//! MAP/VI results while the record still names the old files).
//!
//! Roles: `obs`, `noise_map`, `mask`, `model`, `psf` (a pixelated PSF named by the model file),
//! `source[i]` (the image file of pixelated source `i`), `checkpoint/<file>` (the files of the VAE
//! checkpoint the source model loads: `checkpoint.json`, the decoder weights and the prior) and
//! `truths`.

use anyhow::Result;
use arclight_core::record::InputFile;
use std::collections::BTreeMap;
use std::path::Path;

use super::problem::Problem;
use crate::model::spec::{ComponentKind, PsfSpec};

/// Hash every input file of a fit: the observation, optional noise map and mask, the model file and
/// the files it names, the VAE checkpoint's files (if the model has a VAE source) and the truths.
pub fn fit_inputs(
    obs: &Path,
    noise_map: Option<&Path>,
    mask: Option<&Path>,
    problem: &Problem,
    truths: Option<&Path>,
) -> Result<BTreeMap<String, InputFile>> {
    let mut out = BTreeMap::new();
    out.insert("obs".to_string(), InputFile::hash(obs)?);
    if let Some(p) = noise_map {
        out.insert("noise_map".into(), InputFile::hash(p)?);
    }
    if let Some(p) = mask {
        out.insert("mask".into(), InputFile::hash(p)?);
    }
    out.insert("model".into(), InputFile::hash(&problem.spec.path)?);
    if let PsfSpec::Pixelated { file, .. } = &problem.spec.psf {
        out.insert("psf".into(), InputFile::hash(file)?);
    }
    for (i, c) in problem.spec.source.iter().enumerate() {
        if let (ComponentKind::Pixelated, Some(file)) = (c.kind, &c.file) {
            out.insert(format!("source[{i}]"), InputFile::hash(file)?);
        }
    }
    if let Some((_, _, dir)) = &problem.vae {
        let meta = arclight_vae::checkpoint::read_meta(dir)?;
        let mut files = vec![
            arclight_vae::checkpoint::META_FILE.to_string(),
            meta.files.decoder.clone(),
        ];
        files.extend(meta.files.prior.clone());
        for f in files {
            out.insert(format!("checkpoint/{f}"), InputFile::hash(&dir.join(&f))?);
        }
    }
    if let Some(p) = truths {
        out.insert("truths".into(), InputFile::hash(p)?);
    }
    Ok(out)
}

/// One line per input whose contents differ between `old` (the run record) and `new` (this
/// invocation), naming the role, both paths and the first 16 hex digits of both hashes. An input
/// present on one side only also differs. Empty when the contents agree (paths may differ).
pub fn input_differences(
    old: &BTreeMap<String, InputFile>,
    new: &BTreeMap<String, InputFile>,
) -> Vec<String> {
    let show = |f: Option<&InputFile>| match f {
        Some(f) => format!(
            "{} (sha256 {}…)",
            f.path,
            &f.sha256[..16.min(f.sha256.len())]
        ),
        None => "none".to_string(),
    };
    let mut roles: Vec<&String> = old.keys().chain(new.keys()).collect();
    roles.sort();
    roles.dedup();
    roles
        .into_iter()
        .filter_map(|role| {
            let (a, b) = (old.get(role), new.get(role));
            let same = matches!((a, b), (Some(a), Some(b)) if a.sha256 == b.sha256);
            (!same).then(|| format!("{role}: was {}, now {}", show(a), show(b)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, sha: &str) -> InputFile {
        InputFile {
            path: path.into(),
            sha256: sha.into(),
            bytes: 1,
        }
    }

    #[test]
    fn differences_name_role_paths_and_hashes() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let mut old = BTreeMap::new();
        old.insert("obs".to_string(), file("x/obs.fits", &a));
        old.insert("model".to_string(), file("m.toml", &a));
        old.insert("mask".to_string(), file("mask.fits", &a));
        let mut new = BTreeMap::new();
        // moved but identical: not a difference
        new.insert("obs".to_string(), file("y/obs.fits", &a));
        new.insert("model".to_string(), file("m.toml", &b));
        new.insert("noise_map".to_string(), file("n.fits", &b));
        let d = input_differences(&old, &new);
        assert_eq!(
            d,
            vec![
                format!("mask: was mask.fits (sha256 {}…), now none", &a[..16]),
                format!(
                    "model: was m.toml (sha256 {}…), now m.toml (sha256 {}…)",
                    &a[..16],
                    &b[..16]
                ),
                format!("noise_map: was none, now n.fits (sha256 {}…)", &b[..16]),
            ]
        );
        assert!(input_differences(&old, &old).is_empty());
    }
}
