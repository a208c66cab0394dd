//! Merging shards: the result files of several study directories, refused unless every directory
//! belongs to the same study (same model content, seed, n and settings), with the systems that are
//! missing and those found more than once.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::{StudyFile, json_diff};
use super::result::SystemResult;

/// The systems of a study gathered from its shard directories.
pub struct Merged {
    /// `study.json` of the first directory (identity and config; its shard is that directory's).
    pub study: StudyFile,
    pub inputs: Vec<PathBuf>,
    /// One result per system found, by index.
    pub results: Vec<SystemResult>,
    /// Indices in `0..n` without a result in any directory.
    pub missing: Vec<usize>,
    /// Indices with a result in more than one directory (the first directory's is used).
    pub duplicates: Vec<(usize, Vec<PathBuf>)>,
}

/// Read every result of `dirs` and check that they belong together.
pub fn merge(dirs: &[PathBuf]) -> Result<Merged> {
    if dirs.is_empty() {
        bail!("summarize: name at least one study directory");
    }
    let mut seen_dirs = Vec::new();
    for d in dirs {
        let canon = d
            .canonicalize()
            .with_context(|| format!("{}: no such study directory", d.display()))?;
        if seen_dirs.contains(&canon) {
            bail!("{}: study directory given twice", d.display());
        }
        seen_dirs.push(canon);
    }
    let first = StudyFile::load(&dirs[0])?;
    let mut found: BTreeMap<usize, Vec<(PathBuf, SystemResult)>> = BTreeMap::new();
    for d in dirs {
        let f = StudyFile::load(d)?;
        if f.study_id != first.study_id || f.identity != first.identity {
            let diff = json_diff(&first.identity, &f.identity, 8);
            bail!(
                "refusing to merge {} and {}: they are different studies ({})",
                dirs[0].display(),
                d.display(),
                if diff.is_empty() {
                    format!("study id {} vs {}", first.study_id, f.study_id)
                } else {
                    diff.join("; ")
                }
            );
        }
        if let (Some(a), Some(b)) = (&first.checkpoint_sha256, &f.checkpoint_sha256)
            && a != b
        {
            bail!(
                "refusing to merge {} and {}: their fits used different VAE checkpoints (checkpoint_sha256 in study.json)",
                dirs[0].display(),
                d.display()
            );
        }
        for r in read_results(d)? {
            let path = SystemResult::path(d, r.index);
            if r.study_id != first.study_id {
                bail!(
                    "{}: result of study {}, not of this study {}",
                    path.display(),
                    r.study_id,
                    first.study_id
                );
            }
            if r.index >= first.config.n_systems {
                bail!(
                    "{}: system {} is outside the study's {} systems",
                    path.display(),
                    r.index,
                    first.config.n_systems
                );
            }
            found.entry(r.index).or_default().push((d.clone(), r));
        }
    }
    let n = first.config.n_systems;
    let missing = (0..n).filter(|i| !found.contains_key(i)).collect();
    let mut duplicates = Vec::new();
    let mut results = Vec::new();
    for (i, mut v) in found {
        if v.len() > 1 {
            duplicates.push((i, v.iter().map(|(d, _)| d.clone()).collect()));
        }
        results.push(v.swap_remove(0).1);
    }
    Ok(Merged {
        study: first,
        inputs: dirs.to_vec(),
        results,
        missing,
        duplicates,
    })
}

/// Every `results/system-*.json` of a study directory, in index order. A file whose name does not
/// match its content is an error (results are never renamed by hand safely).
pub fn read_results(dir: &Path) -> Result<Vec<SystemResult>> {
    let rdir = dir.join("results");
    if !rdir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(&rdir).with_context(|| format!("cannot list {}", rdir.display()))? {
        let path = e?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !(name.starts_with("system-") && name.ends_with(".json")) {
            continue; // temporaries of an interrupted write, or foreign files
        }
        let r = SystemResult::load(&path)?;
        if *name != SystemResult::file_name(r.index) {
            bail!(
                "{}: holds system {}, not the one its name says",
                path.display(),
                r.index
            );
        }
        out.push(r);
    }
    out.sort_by_key(|r| r.index);
    Ok(out)
}
