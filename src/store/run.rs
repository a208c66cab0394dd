//! One run directory as the tracker sees it: `run.json`, `summary.json` and (on demand) the
//! tailed `metrics.jsonl`, each reloaded only when its file changed.
//!
//! Everything that could not be read is remembered as a human-readable problem instead of an
//! error: the views show it, the rest of the run stays visible.

use super::metrics::RunMetrics;
use arclight_core::record::{MetricsTail, RunInfo, RunKind, Status, parse_utc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Bytes read from a metrics file per slice (bounded memory per poll).
pub const SLICE_BYTES: u64 = 4 << 20;

/// Identity of a file version: a changed length or modification time means "reload".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSig {
    len: u64,
    mtime: Option<SystemTime>,
}

impl FileSig {
    /// Signature of the file at `path`, `None` if it does not exist.
    pub fn of(path: &Path) -> Option<FileSig> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileSig {
            len: m.len(),
            mtime: m.modified().ok(),
        })
    }
}

/// The tailed metrics of a run.
#[derive(Debug)]
pub struct MetricsFeed {
    tail: MetricsTail,
    /// Digest of all complete lines read so far.
    pub metrics: RunMetrics,
    /// Last read error (e.g. the file vanished), cleared by a successful read.
    pub error: Option<String>,
}

impl MetricsFeed {
    fn new(dir: &Path) -> MetricsFeed {
        MetricsFeed {
            tail: MetricsTail::new(dir.join("metrics.jsonl")),
            metrics: RunMetrics::default(),
            error: None,
        }
    }

    /// Read at most one slice of new bytes. Returns whether anything changed.
    pub fn pump(&mut self) -> bool {
        match self.tail.poll_limited(SLICE_BYTES) {
            Ok((lines, reset)) => {
                self.error = None;
                if reset {
                    self.metrics = RunMetrics::default();
                }
                let changed = reset || !lines.is_empty();
                for line in lines {
                    self.metrics.ingest(line);
                }
                changed
            }
            Err(e) => {
                let msg = if e.kind() == std::io::ErrorKind::NotFound {
                    "metrics.jsonl missing".to_string()
                } else {
                    format!("metrics.jsonl unreadable: {e}")
                };
                let changed = self.error.as_deref() != Some(msg.as_str());
                self.error = Some(msg);
                changed
            }
        }
    }

    /// Bytes of the file not read yet.
    pub fn behind(&self) -> u64 {
        self.tail.behind()
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.tail.offset()
    }

    /// Lines that were not JSON objects.
    pub fn bad_lines(&self) -> usize {
        self.tail.bad_lines
    }
}

/// A run directory and what could be read from it.
#[derive(Debug)]
pub struct RunEntry {
    /// The run directory.
    pub dir: PathBuf,
    /// Directory name (equals `info.id` for well-formed records).
    pub id: String,
    /// Last successfully read `run.json`.
    pub info: Option<RunInfo>,
    /// Why `run.json` could not be read (the last good `info` is kept).
    pub info_error: Option<String>,
    /// Status with dead processes shown as interrupted, refreshed on every scan.
    pub status: Option<Status>,
    /// Last successfully read `summary.json`.
    pub summary: Option<Value>,
    /// Why `summary.json` could not be read.
    pub summary_error: Option<String>,
    /// The directory disappeared while the tracker was running.
    pub gone: bool,
    /// Tailed metrics, created on first demand.
    pub feed: Option<MetricsFeed>,
    /// Best validation ELBO (and epoch) found in the metrics, kept when the digest is dropped.
    pub metrics_best: Option<(f64, Option<f64>)>,
    run_sig: Option<FileSig>,
    summary_sig: Option<FileSig>,
}

impl RunEntry {
    /// Read a run directory.
    pub fn open(dir: &Path) -> RunEntry {
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::open_as(dir, id)
    }

    /// [`Self::open`] under another id (a run nested in a folder: `study-x/shard-1-of-4`).
    pub fn open_as(dir: &Path, id: String) -> RunEntry {
        let mut e = RunEntry {
            dir: dir.to_path_buf(),
            id,
            info: None,
            info_error: None,
            status: None,
            summary: None,
            summary_error: None,
            gone: false,
            feed: None,
            metrics_best: None,
            run_sig: None,
            summary_sig: None,
        };
        e.refresh();
        e
    }

    /// Reload `run.json` / `summary.json` if they changed and recompute the status.
    /// Returns whether anything visible changed.
    pub fn refresh(&mut self) -> bool {
        let mut changed = false;
        if !self.dir.is_dir() {
            if !self.gone {
                self.gone = true;
                changed = true;
            }
            return changed;
        }
        if self.gone {
            self.gone = false;
            changed = true;
        }
        let run_path = self.dir.join("run.json");
        let sig = FileSig::of(&run_path);
        if sig != self.run_sig || (sig.is_none() && self.info_error.is_none()) {
            self.run_sig = sig;
            changed = true;
            match RunInfo::read(&self.dir) {
                Ok(info) => {
                    self.info = Some(info);
                    self.info_error = None;
                }
                Err(e) => self.info_error = Some(short_error(&e, &self.dir)),
            }
        }
        let sum_path = self.dir.join("summary.json");
        let sig = FileSig::of(&sum_path);
        if sig != self.summary_sig {
            self.summary_sig = sig;
            changed = true;
            if sig.is_none() {
                self.summary = None;
                self.summary_error = None;
            } else {
                match std::fs::read_to_string(&sum_path)
                    .map_err(|e| format!("summary.json unreadable: {e}"))
                    .and_then(|t| {
                        serde_json::from_str::<Value>(&t)
                            .map_err(|e| format!("summary.json is not valid JSON: {e}"))
                    }) {
                    Ok(v) => {
                        self.summary = Some(v);
                        self.summary_error = None;
                    }
                    Err(e) => self.summary_error = Some(e),
                }
            }
        }
        let status = self.info.as_ref().map(RunInfo::effective_status);
        if status != self.status {
            self.status = status;
            changed = true;
        }
        changed
    }

    /// Start tailing the metrics if not done yet, and read one slice. Returns whether the
    /// digest changed.
    pub fn pump_metrics(&mut self) -> bool {
        if self.gone {
            return false;
        }
        let dir = self.dir.clone();
        let feed = self.feed.get_or_insert_with(|| MetricsFeed::new(&dir));
        let changed = feed.pump();
        if changed {
            self.metrics_best = feed.metrics.best_val_elbo();
        }
        changed
    }

    /// The metrics digest, if tailing has started.
    pub fn metrics(&self) -> Option<&RunMetrics> {
        self.feed.as_ref().map(|f| &f.metrics)
    }

    /// Whether the metrics file still has unread bytes.
    pub fn loading(&self) -> bool {
        self.feed.as_ref().is_some_and(|f| f.behind() > 0)
    }

    pub fn kind(&self) -> Option<RunKind> {
        self.info.as_ref().map(|i| i.kind)
    }

    /// Label for the status column: `deleted`, `unreadable`, `flagged` (done, but with flags: see
    /// [`RunInfo::flags`]), or the effective status.
    pub fn status_label(&self) -> &'static str {
        if self.gone {
            "deleted"
        } else {
            match self.status {
                Some(Status::Done) if self.info.as_ref().is_some_and(RunInfo::is_flagged) => {
                    "flagged"
                }
                Some(s) => s.as_str(),
                None => "unreadable",
            }
        }
    }

    /// Start time in Unix seconds.
    pub fn started_secs(&self) -> Option<u64> {
        parse_utc(&self.info.as_ref()?.started)
    }

    /// Wall-clock duration in seconds: until `ended`, until now for a live run, or until the last
    /// update for an interrupted one.
    pub fn duration_s(&self, now: u64) -> Option<u64> {
        let info = self.info.as_ref()?;
        let start = parse_utc(&info.started)?;
        let end = match (&info.ended, self.status) {
            (Some(e), _) => parse_utc(e)?,
            (None, Some(Status::Running)) => now,
            _ => parse_utc(&info.updated)?,
        };
        Some(end.saturating_sub(start))
    }

    /// Progress fraction in [0, 1] (1 for finished runs).
    pub fn progress(&self) -> f64 {
        match (self.status, &self.info) {
            (Some(Status::Done), _) => 1.0,
            (_, Some(i)) if i.progress.fraction.is_finite() => i.progress.fraction.clamp(0.0, 1.0),
            _ => 0.0,
        }
    }

    /// Everything about this run that could not be read, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.gone {
            out.push(format!("run directory {} was deleted", self.dir.display()));
        }
        if let Some(e) = &self.info_error {
            out.push(e.clone());
        }
        if let Some(i) = &self.info {
            out.extend(i.unknown_parts());
        }
        if let Some(e) = &self.summary_error {
            out.push(e.clone());
        }
        if let Some(f) = &self.feed {
            if let Some(e) = &f.error {
                out.push(e.clone());
            }
            if f.bad_lines() > 0 {
                out.push(format!(
                    "{} unreadable line(s) in metrics.jsonl skipped",
                    f.bad_lines()
                ));
            }
            if f.metrics.dropped_series > 0 {
                out.push(format!(
                    "too many metric keys: {} values not charted",
                    f.metrics.dropped_series
                ));
            }
        }
        out
    }

    /// A value from the summary at a dotted path (`"params.theta_e.mean"`).
    pub fn summary_at(&self, path: &str) -> Option<&Value> {
        let mut v = self.summary.as_ref()?;
        for part in path.split('.') {
            v = v.get(part)?;
        }
        Some(v)
    }

    /// A numeric summary value.
    pub fn summary_f64(&self, path: &str) -> Option<f64> {
        self.summary_at(path)?.as_f64()
    }

    /// A value from the run's config.
    pub fn config_at(&self, key: &str) -> Option<&Value> {
        self.info.as_ref()?.config.get(key)
    }
}

/// The error chain on one line, with the run directory's path shortened to the file name.
fn short_error(e: &anyhow::Error, dir: &Path) -> String {
    let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    chain.join(": ").replace(&format!("{}/", dir.display()), "")
}
