//! All runs under an experiments folder, discovered and refreshed incrementally.
//!
//! A refresh lists the folder once and stats two files per run: new run directories appear,
//! deleted ones are flagged (not dropped, so a view that shows one can say so), and only records
//! whose files changed are re-read. Metrics are tailed only for the runs a caller asks for, in
//! slices of bounded size within a time budget, so thousands of runs and metrics files of
//! millions of lines keep the interface responsive.

use super::run::RunEntry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The runs of one experiments folder.
#[derive(Debug)]
pub struct Catalog {
    root: PathBuf,
    runs: Vec<RunEntry>,
    index: HashMap<String, usize>,
    /// Why the folder itself could not be listed, if it could not.
    pub root_error: Option<String>,
}

impl Catalog {
    /// Scan `root` (which need not exist yet: runs appear when it does).
    pub fn open(root: &Path) -> Catalog {
        let mut c = Catalog {
            root: root.to_path_buf(),
            runs: Vec::new(),
            index: HashMap::new(),
            root_error: None,
        };
        c.refresh();
        c
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All runs, in discovery order.
    pub fn runs(&self) -> &[RunEntry] {
        &self.runs
    }

    pub fn get(&self, id: &str) -> Option<&RunEntry> {
        self.index.get(id).map(|&i| &self.runs[i])
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut RunEntry> {
        self.index.get(id).map(|&i| &mut self.runs[i])
    }

    /// Find a run by exact id, else by exact name, else by a unique prefix, else by a unique
    /// substring of its id: an exact match wins over looser ones (`kill` names the run called
    /// `kill`, not also `kill-2`).
    pub fn find(&self, query: &str) -> Result<&RunEntry, String> {
        if let Some(e) = self.get(query) {
            return Ok(e);
        }
        let matchers: [fn(&RunEntry, &str) -> bool; 3] = [
            |r, q| r.info.as_ref().is_some_and(|i| i.name == q),
            |r, q| r.id.starts_with(q),
            |r, q| r.id.contains(q),
        ];
        for matcher in matchers {
            let hits: Vec<&RunEntry> = self.runs.iter().filter(|r| matcher(r, query)).collect();
            match hits.len() {
                1 => return Ok(hits[0]),
                0 => continue,
                n => {
                    let names: Vec<&str> = hits.iter().take(5).map(|r| r.id.as_str()).collect();
                    return Err(format!(
                        "run id '{query}' is ambiguous ({n} matches: {}...)",
                        names.join(", ")
                    ));
                }
            }
        }
        Err(format!(
            "no run matching '{query}' in {}",
            self.root.display()
        ))
    }

    /// Re-list the folder and reload changed records. Returns whether anything changed.
    pub fn refresh(&mut self) -> bool {
        let mut changed = false;
        let listing = match std::fs::read_dir(&self.root) {
            Ok(rd) => {
                if self.root_error.take().is_some() {
                    changed = true;
                }
                rd
            }
            Err(e) => {
                let msg = format!("cannot list {}: {e}", self.root.display());
                if self.root_error.as_deref() != Some(msg.as_str()) {
                    self.root_error = Some(msg);
                    changed = true;
                }
                for r in &mut self.runs {
                    changed |= r.refresh();
                }
                return changed;
            }
        };
        for dent in listing.flatten() {
            let is_dir = dent.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let name = dent.file_name().to_string_lossy().into_owned();
            if !is_dir || name.starts_with('.') {
                continue;
            }
            let path = dent.path();
            // a folder of runs (a study's shards: `study-x/shard-1-of-4/run.json`) lists those
            let nested = if self.index.contains_key(&name) || path.join("run.json").exists() {
                Vec::new()
            } else {
                nested_runs(&path)
            };
            if nested.is_empty() {
                if !self.index.contains_key(&name) && !not_a_run(&path) {
                    self.index.insert(name, self.runs.len());
                    self.runs.push(RunEntry::open(&path));
                    changed = true;
                }
                continue;
            }
            for sub in nested {
                let id = format!("{name}/{sub}");
                if !self.index.contains_key(&id) {
                    self.index.insert(id.clone(), self.runs.len());
                    self.runs.push(RunEntry::open_as(&path.join(&sub), id));
                    changed = true;
                }
            }
        }
        for r in &mut self.runs {
            changed |= r.refresh();
        }
        changed
    }

    /// Tail the metrics of the given runs, one slice each in turn, until all are caught up or
    /// `budget` is spent. Returns whether any digest changed.
    pub fn pump_metrics(&mut self, ids: &[String], budget: Duration) -> bool {
        let start = Instant::now();
        let mut changed = false;
        loop {
            let mut pending = false;
            for id in ids {
                if let Some(&i) = self.index.get(id) {
                    let r = &mut self.runs[i];
                    changed |= r.pump_metrics();
                    pending |= r.loading();
                }
                if start.elapsed() >= budget {
                    return changed;
                }
            }
            if !pending {
                return changed;
            }
        }
    }

    /// Drop the metrics digests of runs not in `keep` once more than `max_loaded` are held.
    pub fn evict_metrics(&mut self, keep: &[String], max_loaded: usize) {
        let loaded = self.runs.iter().filter(|r| r.feed.is_some()).count();
        if loaded <= max_loaded {
            return;
        }
        for r in &mut self.runs {
            if r.feed.is_some() && !keep.contains(&r.id) {
                r.feed = None;
            }
        }
    }

    /// Whether any of the given runs still has unread metrics.
    pub fn loading(&self, ids: &[String]) -> bool {
        ids.iter()
            .any(|id| self.get(id).is_some_and(RunEntry::loading))
    }
}

/// A folder with files but neither a run's record nor its metrics, nor runs inside it: a sweep's
/// results kept with notes. Not listed (an empty folder, or one with a damaged run, is listed as
/// unreadable).
fn not_a_run(dir: &std::path::Path) -> bool {
    if dir.join("run.json").exists() || dir.join("metrics.jsonl").exists() {
        return false;
    }
    std::fs::read_dir(dir).is_ok_and(|mut rd| rd.next().is_some())
}

/// The subfolders of `dir` that hold a run record (`run.json`), sorted.
fn nested_runs(dir: &std::path::Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && dir.join(n).join("run.json").is_file())
        .collect();
    v.sort();
    v
}
