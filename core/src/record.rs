//! Run records: the one channel between the binaries and the `arclight` tracker.
//!
//! Layout of `experiments/<run-id>/` (format version [`FORMAT`]):
//!
//! ```text
//! run.json        RunInfo: id, kind, name, status, pid, started/updated/ended (UTC, RFC 3339),
//!                 argv, full resolved config, device, seed, git revision, progress, error,
//!                 inputs (role -> path, SHA-256 and size of every input file read),
//!                 stages (one outcome per pipeline stage that ran; see [`StageOutcome`]),
//!                 warnings (what the run warned about on the console, e.g. a degenerate prior).
//!                 Rewritten atomically (temp file + rename) whenever status or progress changes.
//! metrics.jsonl   Append-only, one JSON object per line: {"t": seconds since start,
//!                 "kind": "step"|"epoch"|"stage"|..., "step": n, ...named values}.
//!                 A reader must tolerate a half-written last line.
//! summary.json    Final figures, written atomically once the run ends (absent while running).
//! artifacts/      Figures, samples, checkpoints written by the run.
//! ```
//!
//! `run-id = <kind>-<UTC yyyymmddThhmmss>-<name>`. A run whose `status` is `running` but whose
//! `pid` no longer exists is shown as `interrupted` by readers ([`RunInfo::effective_status`]).

use crate::atomic::{write_atomic, write_json_atomic};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Version of the run-record format written by this code.
pub const FORMAT: u32 = 1;

/// What produced a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// `train-vae train`.
    Train,
    /// `infer fit` / `infer demo`.
    Fit,
    /// A recovery or ablation study over many fits.
    Study,
    /// Data preparation (`train-vae prepare` / `synth`).
    Prepare,
    /// Model evaluation (`train-vae eval`).
    Eval,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Train => "train",
            RunKind::Fit => "fit",
            RunKind::Study => "study",
            RunKind::Prepare => "prepare",
            RunKind::Eval => "eval",
        }
    }
}

/// Life-cycle state stored in `run.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Done,
    Failed,
    /// Never written by a run itself: a reader's verdict on a `running` run whose process is gone.
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }
}

/// Coarse progress of a run, for list views.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Fraction of the planned work done, in [0, 1].
    pub fraction: f64,
    /// Current stage (e.g. `"epoch 12/100"`, `"map"`, `"hmc"`).
    #[serde(default)]
    pub stage: String,
    /// Estimated seconds left, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_s: Option<f64>,
}

/// State of one stage of a run's pipeline (e.g. a fit's `map`, `vi`, `hmc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    Running,
    Done,
    Failed,
    /// Was running when the process ended without a verdict (found so on resume).
    Interrupted,
}

/// The outcome of one stage. A stage's entry is written only by that stage: a later stage's
/// failure never rewrites an earlier stage's outcome, and a stage run again (after a resume)
/// replaces only its own entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageOutcome {
    pub stage: String,
    pub status: StageStatus,
    /// Which invocation ran it: 0 the one that created the run, n the n-th resume.
    #[serde(default)]
    pub invocation: u32,
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One input file of a run: where it was read from and a hash of its bytes ([`crate::hash`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// The path as the run was given it.
    pub path: String,
    /// SHA-256 of the contents, lower-case hex (what `sha256sum` prints).
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

impl InputFile {
    /// Hash the file at `path`.
    pub fn hash(path: &Path) -> Result<InputFile> {
        let (sha256, bytes) = crate::hash::sha256_file(path)?;
        Ok(InputFile {
            path: path.display().to_string(),
            sha256,
            bytes,
        })
    }
}

/// Contents of `run.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub format: u32,
    pub id: String,
    pub kind: RunKind,
    #[serde(default)]
    pub name: String,
    pub status: Status,
    #[serde(default)]
    pub pid: u32,
    pub started: String,
    pub updated: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    #[serde(default)]
    pub argv: Vec<String>,
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub device: String,
    /// Size of the worker pool the run computed on: floating-point reductions split by thread, so
    /// results are reproducible to the last bit at the same count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_rev: Option<String>,
    #[serde(default)]
    pub progress: Progress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Number of times the run was resumed.
    #[serde(default)]
    pub resumed: u32,
    /// Why a run's results should not be trusted as they are (e.g. a study system whose chains did not
    /// converge): a `done` run with flags is shown as `flagged`, never as plainly done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Every input file the run read, by role (`obs`, `model`, `checkpoint/decoder.bpk`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, InputFile>,
    /// Outcomes of the pipeline stages that ran, in the order they first ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageOutcome>,
    /// Warnings the run printed (each once), so a record read later says what was doubtful.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl RunInfo {
    /// Whether the run ended `done` but carries flags (results to be looked at, not trusted blindly).
    pub fn is_flagged(&self) -> bool {
        self.status == Status::Done && !self.flags.is_empty()
    }

    /// The status a reader should show: `running` with a vanished process is `interrupted`.
    pub fn effective_status(&self) -> Status {
        if self.status == Status::Running && !pid_alive(self.pid) {
            Status::Interrupted
        } else {
            self.status
        }
    }

    /// Read `run.json` from a run directory.
    pub fn load(dir: &Path) -> Result<RunInfo> {
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let info: RunInfo = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid run record", path.display()))?;
        if info.format > FORMAT {
            bail!(
                "{}: run-record format {} is newer than this program's {}",
                path.display(),
                info.format,
                FORMAT
            );
        }
        Ok(info)
    }
}

/// Whether a process with this pid exists on this machine (Linux `/proc`; `true` elsewhere).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let proc = Path::new("/proc");
    if !proc.exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// Current UTC time as RFC 3339 (`2026-11-22T01:26:02Z`).
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs, true)
}

/// Format seconds since the Unix epoch as UTC, RFC 3339 (`pretty`) or compact (`20261122T012602`).
pub fn format_utc(secs: u64, pretty: bool) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    if pretty {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}{s:02}")
    }
}

/// Parse the RFC 3339 UTC timestamps this module writes back into Unix seconds.
pub fn parse_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = days * 86_400 + h * 3600 + mi * 60 + se;
    (t >= 0).then_some(t as u64)
}

/// Best-effort git revision of the working tree the binary runs in.
pub fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A run being written. Create one with [`Run::create`] (new) or [`Run::resume`] (existing).
pub struct Run {
    dir: PathBuf,
    info: RunInfo,
    metrics: std::fs::File,
    clock: Instant,
    t_offset: f64,
    last_progress_write: Option<Instant>,
}

/// Options describing a new run.
pub struct RunSpec<'a> {
    pub kind: RunKind,
    pub name: &'a str,
    pub config: Value,
    pub device: String,
    pub seed: Option<u64>,
}

impl Run {
    /// Create `root/<kind>-<timestamp>-<name>/` with `run.json` (status running) and an empty
    /// `metrics.jsonl`. A numeric suffix keeps ids unique when two runs start in one second.
    pub fn create(root: &Path, spec: RunSpec<'_>) -> Result<Run> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = sanitize(spec.name);
        let base = format!(
            "{}-{}-{}",
            spec.kind.as_str(),
            format_utc(secs, false),
            name
        );
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create experiments folder {}", root.display()))?;
        let mut id = base.clone();
        let mut n = 1;
        let dir = loop {
            let dir = root.join(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    n += 1;
                    id = format!("{base}-{n}");
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", dir.display()));
                }
            }
        };
        Self::start_in(dir, id, name, spec)
    }

    /// Create a run in exactly `dir` (which must not exist or be empty); its id is the folder name.
    pub fn create_at(dir: &Path, spec: RunSpec<'_>) -> Result<Run> {
        if dir.exists()
            && std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            bail!(
                "{}: run directory already exists and is not empty (use --resume to continue it, or choose another --out)",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        let name = sanitize(spec.name);
        Self::start_in(dir.to_path_buf(), id, name, spec)
    }

    fn start_in(dir: PathBuf, id: String, name: String, spec: RunSpec<'_>) -> Result<Run> {
        std::fs::create_dir_all(dir.join("artifacts"))?;
        let now = utc_now();
        let info = RunInfo {
            format: FORMAT,
            id,
            kind: spec.kind,
            name,
            status: Status::Running,
            pid: std::process::id(),
            started: now.clone(),
            updated: now,
            ended: None,
            argv: std::env::args().collect(),
            config: spec.config,
            device: spec.device,
            threads: None,
            seed: spec.seed,
            git_rev: git_revision(),
            progress: Progress::default(),
            error: None,
            resumed: 0,
            flags: Vec::new(),
            inputs: BTreeMap::new(),
            stages: Vec::new(),
            warnings: Vec::new(),
        };
        let metrics = open_append(&dir.join("metrics.jsonl"))?;
        let run = Run {
            dir,
            info,
            metrics,
            clock: Instant::now(),
            t_offset: 0.0,
            last_progress_write: None,
        };
        run.write_info()?;
        Ok(run)
    }

    /// Reopen an existing run directory to continue it (after an interruption). The status goes
    /// back to `running`, the pid is updated, and metric times continue from the last line.
    pub fn resume(dir: &Path) -> Result<Run> {
        let mut info = RunInfo::load(dir)?;
        let metrics_path = dir.join("metrics.jsonl");
        let t_offset = last_time(&metrics_path).unwrap_or(0.0);
        truncate_partial_last_line(&metrics_path)?;
        info.status = Status::Running;
        info.pid = std::process::id();
        info.ended = None;
        info.error = None;
        info.resumed += 1;
        info.updated = utc_now();
        for s in &mut info.stages {
            if s.status == StageStatus::Running {
                s.status = StageStatus::Interrupted;
            }
        }
        std::fs::create_dir_all(dir.join("artifacts"))?;
        let metrics = open_append(&metrics_path)?;
        let run = Run {
            dir: dir.to_path_buf(),
            info,
            metrics,
            clock: Instant::now(),
            t_offset,
            last_progress_write: None,
        };
        run.write_info()?;
        Ok(run)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn id(&self) -> &str {
        &self.info.id
    }
    pub fn info(&self) -> &RunInfo {
        &self.info
    }
    /// `artifacts/` inside the run directory.
    pub fn artifacts(&self) -> PathBuf {
        self.dir.join("artifacts")
    }
    /// Seconds since the run started (continuing across resumes).
    pub fn elapsed(&self) -> f64 {
        self.t_offset + self.clock.elapsed().as_secs_f64()
    }

    /// Append one metrics line. `fields` must be a JSON object; `t` (seconds) and `kind` are added.
    pub fn log(&mut self, kind: &str, fields: Value) -> Result<()> {
        let mut obj = match fields {
            Value::Object(m) => m,
            other => bail!("metrics line must be a JSON object, got {other}"),
        };
        obj.insert(
            "t".into(),
            Value::from((self.elapsed() * 1000.0).round() / 1000.0),
        );
        obj.insert("kind".into(), Value::from(kind));
        let mut line = serde_json::to_vec(&Value::Object(obj))?;
        line.push(b'\n');
        // One write call per line: concurrent readers see whole lines or a partial tail.
        self.metrics.write_all(&line).with_context(|| {
            format!(
                "cannot append to {}",
                self.dir.join("metrics.jsonl").display()
            )
        })?;
        Ok(())
    }

    /// Update the progress shown in list views. Writes `run.json` at most once a second unless
    /// `force` is set.
    pub fn progress(
        &mut self,
        fraction: f64,
        stage: &str,
        eta_s: Option<f64>,
        force: bool,
    ) -> Result<()> {
        self.info.progress = Progress {
            fraction: fraction.clamp(0.0, 1.0),
            stage: stage.to_string(),
            eta_s,
        };
        let due = self
            .last_progress_write
            .is_none_or(|t| t.elapsed().as_secs_f64() >= 1.0);
        if force || due {
            self.last_progress_write = Some(Instant::now());
            self.info.updated = utc_now();
            self.write_info()?;
        }
        Ok(())
    }

    /// Record the run's input files (see [`RunInfo::inputs`]).
    pub fn set_inputs(&mut self, inputs: BTreeMap<String, InputFile>) -> Result<()> {
        self.info.inputs = inputs;
        self.write_info()
    }

    /// A stage starts: its outcome becomes `running` (replacing the entry of an earlier attempt
    /// of the same stage, keeping its place; other stages' entries are left as they are).
    pub fn begin_stage(&mut self, stage: &str) -> Result<()> {
        let entry = StageOutcome {
            stage: stage.to_string(),
            status: StageStatus::Running,
            invocation: self.info.resumed,
            started: utc_now(),
            ended: None,
            error: None,
        };
        match self.info.stages.iter_mut().find(|s| s.stage == stage) {
            Some(s) => *s = entry,
            None => self.info.stages.push(entry),
        }
        self.info.updated = utc_now();
        self.write_info()
    }

    /// The running stage `stage` finished successfully.
    pub fn end_stage(&mut self, stage: &str) -> Result<()> {
        let now = utc_now();
        if let Some(s) = self.info.stages.iter_mut().find(|s| s.stage == stage) {
            s.status = StageStatus::Done;
            s.ended = Some(now.clone());
        }
        self.info.updated = now;
        self.write_info()
    }

    /// Record a warning (already shown to the user) in `run.json`; a message already recorded
    /// (e.g. by an earlier invocation of a resumed run) is not repeated.
    pub fn warn(&mut self, message: &str) -> Result<()> {
        if self.info.warnings.iter().any(|w| w == message) {
            return Ok(());
        }
        self.info.warnings.push(message.to_string());
        self.write_info()
    }

    /// Merge extra keys into the stored config (e.g. values resolved after start).
    pub fn update_config(&mut self, key: &str, value: Value) -> Result<()> {
        if let Value::Object(m) = &mut self.info.config {
            m.insert(key.to_string(), value);
        }
        self.write_info()
    }

    /// Record the worker pool's size (see [`RunInfo::threads`]) and rewrite `run.json`.
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.info.threads = Some(threads);
        self.write_info()
    }

    /// Replace the run's flags (see [`RunInfo::flags`]) and rewrite `run.json`.
    pub fn set_flags(&mut self, flags: Vec<String>) -> Result<()> {
        self.info.flags = flags;
        self.write_info()
    }

    /// Finish successfully: write `summary.json`, then mark `run.json` done.
    pub fn finish(&mut self, summary: Value) -> Result<()> {
        self.metrics.flush().ok();
        write_json_atomic(&self.dir.join("summary.json"), &summary)?;
        self.info.status = Status::Done;
        self.info.progress.fraction = 1.0;
        self.end()
    }

    /// Mark the run failed with a message (the summary, if any, is left as it was), and with it
    /// the stage that was running, if any; finished stages keep their outcome.
    pub fn fail(&mut self, error: &str) -> Result<()> {
        self.metrics.flush().ok();
        self.info.status = Status::Failed;
        self.info.error = Some(error.to_string());
        let now = utc_now();
        for s in &mut self.info.stages {
            if s.status == StageStatus::Running {
                s.status = StageStatus::Failed;
                s.ended = Some(now.clone());
                s.error = Some(error.to_string());
            }
        }
        self.end()
    }

    fn end(&mut self) -> Result<()> {
        let now = utc_now();
        self.info.updated = now.clone();
        self.info.ended = Some(now);
        self.write_info()
    }

    fn write_info(&self) -> Result<()> {
        write_json_atomic(&self.dir.join("run.json"), &self.info)
    }
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() { "run".into() } else { s }
}

fn open_append(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {} for appending", path.display()))
}

/// Cut a half-written last line (a crash mid-append) so appends start on a fresh line.
fn truncate_partial_last_line(path: &Path) -> Result<()> {
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    else {
        return Ok(());
    };
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    if buf.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = buf
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    f.set_len(keep as u64)?;
    Ok(())
}

fn last_time(path: &Path) -> Option<f64> {
    let f = std::fs::File::open(path).ok()?;
    let mut last = None;
    for line in std::io::BufReader::new(f).lines() {
        let Ok(line) = line else { break };
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && let Some(t) = v.get("t").and_then(Value::as_f64)
        {
            last = Some(t);
        }
    }
    last
}

/// Longest metrics line [`MetricsTail`] buffers while waiting for its newline; longer ones are
/// counted as unreadable and skipped, so junk without newlines cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Incremental reader of a growing `metrics.jsonl`: each [`MetricsTail::poll`] reads only the
/// bytes appended since the last call and returns the complete lines among them. A partial last
/// line is kept for the next poll; lines that are not JSON objects are counted, not fatal.
#[derive(Debug)]
pub struct MetricsTail {
    path: PathBuf,
    offset: u64,
    pending: Vec<u8>,
    len_seen: u64,
    /// Inside a line longer than [`MAX_LINE_BYTES`]: drop bytes up to its newline.
    skipping: bool,
    /// Lines that could not be parsed so far.
    pub bad_lines: usize,
}

impl MetricsTail {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        MetricsTail {
            path: path.into(),
            offset: 0,
            pending: Vec::new(),
            len_seen: 0,
            skipping: false,
            bad_lines: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes known to exist (file length at the last poll) but not read yet.
    pub fn behind(&self) -> u64 {
        self.len_seen.saturating_sub(self.offset)
    }

    /// Read what was appended since the last poll. A file that shrank (rewritten) is reread from
    /// the start: the returned flag is then `true` and callers should drop what they had.
    pub fn poll(&mut self) -> std::io::Result<(Vec<serde_json::Map<String, Value>>, bool)> {
        self.poll_limited(u64::MAX)
    }

    /// Like [`MetricsTail::poll`] but reads at most `max_bytes` new bytes, so a reader can work
    /// through a metrics file of millions of lines in bounded memory and time slices (call again
    /// while [`MetricsTail::behind`] is non-zero).
    pub fn poll_limited(
        &mut self,
        max_bytes: u64,
    ) -> std::io::Result<(Vec<serde_json::Map<String, Value>>, bool)> {
        let mut f = std::fs::File::open(&self.path)?;
        let len = f.metadata()?.len();
        let mut reset = false;
        if len < self.offset {
            self.offset = 0;
            self.pending.clear();
            self.skipping = false;
            self.bad_lines = 0;
            reset = true;
        }
        self.len_seen = len;
        f.seek(SeekFrom::Start(self.offset))?;
        let want = (len - self.offset).min(max_bytes);
        let mut buf = Vec::with_capacity(want as usize);
        f.take(want).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.pending.extend_from_slice(&buf);
        let mut out = Vec::new();
        let cut = match self.pending.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => {
                // A "line" with no end in sight (binary junk): count it once, keep no bytes.
                if self.pending.len() > MAX_LINE_BYTES {
                    self.pending.clear();
                    if !self.skipping {
                        self.bad_lines += 1;
                    }
                    self.skipping = true;
                }
                return Ok((out, reset));
            }
        };
        let complete: Vec<u8> = self.pending.drain(..cut).collect();
        for (k, line) in complete.split(|&b| b == b'\n').enumerate() {
            if k == 0 && self.skipping {
                // the end of an over-long line already counted
                self.skipping = false;
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Value>(line) {
                Ok(Value::Object(m)) => out.push(m),
                _ => self.bad_lines += 1,
            }
        }
        Ok((out, reset))
    }
}

/// Set the flags of a finished run in `dir` (rewrites its `run.json` atomically): for callers that judge
/// a run after it ended, as a study does with each system's fit.
pub fn set_flags(dir: &Path, flags: Vec<String>) -> Result<()> {
    let mut info = RunInfo::load(dir)?;
    info.flags = flags;
    write_json_atomic(&dir.join("run.json"), &info)
}

/// Write `value` as pretty JSON into a run's directory (atomic), e.g. an extra result file.
pub fn write_run_file(dir: &Path, name: &str, value: &Value) -> Result<()> {
    write_json_atomic(&dir.join(name), value)
}

/// Write raw bytes into a run's directory (atomic).
pub fn write_run_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    write_atomic(&dir.join(name), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn utc_round_trip() {
        for secs in [0u64, 951_782_400, 1_795_310_762, 4_102_444_800] {
            let s = format_utc(secs, true);
            assert_eq!(parse_utc(&s), Some(secs), "{s}");
        }
        assert_eq!(format_utc(951_782_400, true), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn create_log_finish_and_tail() {
        let root = tempfile::tempdir().unwrap();
        let mut run = Run::create(
            root.path(),
            RunSpec {
                kind: RunKind::Train,
                name: "tiny run",
                config: json!({"lr": 1e-3}),
                device: "flex".into(),
                seed: Some(7),
            },
        )
        .unwrap();
        assert!(run.id().starts_with("train-") && run.id().ends_with("-tiny-run"));
        let mut tail = MetricsTail::new(run.dir().join("metrics.jsonl"));
        run.log("step", json!({"step": 1, "loss": 2.5})).unwrap();
        let (lines, _) = tail.poll().unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["loss"], json!(2.5));
        assert_eq!(lines[0]["kind"], json!("step"));
        // A half-written line is held back until it is complete.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(run.dir().join("metrics.jsonl"))
            .unwrap();
        f.write_all(b"{\"kind\":\"step\",\"lo").unwrap();
        assert!(tail.poll().unwrap().0.is_empty());
        f.write_all(b"ss\":3}\nnot json\n").unwrap();
        let (lines, _) = tail.poll().unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(tail.bad_lines, 1);
        // A limited poll reads in slices and reports what is still behind.
        let mut sliced = MetricsTail::new(run.dir().join("metrics.jsonl"));
        let (first, _) = sliced.poll_limited(10).unwrap();
        assert!(first.is_empty() && sliced.behind() > 0);
        let mut n = 0;
        loop {
            n += sliced.poll_limited(10).unwrap().0.len();
            if sliced.behind() == 0 {
                break;
            }
        }
        assert_eq!(n, 2);
        // a newline-free run of junk longer than MAX_LINE_BYTES is dropped, not buffered
        let junk = run.dir().join("junk.jsonl");
        std::fs::write(&junk, vec![b'x'; MAX_LINE_BYTES + 10]).unwrap();
        let mut jt = MetricsTail::new(&junk);
        assert!(jt.poll().unwrap().0.is_empty());
        assert_eq!((jt.bad_lines, jt.pending.len()), (1, 0));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&junk)
            .unwrap();
        f.write_all(b"xxx\n{\"kind\":\"ok\"}\n").unwrap();
        let (lines, _) = jt.poll().unwrap();
        assert_eq!((lines.len(), jt.bad_lines), (1, 1));
        run.finish(json!({"best": 1})).unwrap();
        let info = RunInfo::load(run.dir()).unwrap();
        assert_eq!(info.status, Status::Done);
        assert_eq!(info.effective_status(), Status::Done);
    }

    /// Flags survive the round trip through `run.json`, make a done run `flagged`, and records
    /// without the field (older runs) read as unflagged.
    #[test]
    fn flags_mark_a_done_run() {
        let root = tempfile::tempdir().unwrap();
        let spec = || RunSpec {
            kind: RunKind::Study,
            name: "s",
            config: json!({}),
            device: "flex".into(),
            seed: None,
        };
        let mut run = Run::create(root.path(), spec()).unwrap();
        run.finish(json!({})).unwrap();
        let dir = run.dir().to_path_buf();
        let text = std::fs::read_to_string(dir.join("run.json")).unwrap();
        assert!(!text.contains("flags"), "empty flags are not written");
        assert!(!RunInfo::load(&dir).unwrap().is_flagged());
        set_flags(&dir, vec!["R-hat 1.05 >= 1.01".into()]).unwrap();
        let info = RunInfo::load(&dir).unwrap();
        assert!(info.is_flagged());
        assert_eq!(info.flags, ["R-hat 1.05 >= 1.01"]);
        assert_eq!(info.effective_status(), Status::Done);
        // a running run with flags is running, not flagged
        let mut live = Run::create(root.path(), spec()).unwrap();
        live.set_flags(vec!["x".into()]).unwrap();
        assert!(!RunInfo::load(live.dir()).unwrap().is_flagged());
    }

    #[test]
    fn dead_pid_reads_as_interrupted_and_resume_cuts_partial_line() {
        let root = tempfile::tempdir().unwrap();
        let mut run = Run::create(
            root.path(),
            RunSpec {
                kind: RunKind::Fit,
                name: "x",
                config: json!({}),
                device: "flex".into(),
                seed: None,
            },
        )
        .unwrap();
        run.log("step", json!({"step": 1})).unwrap();
        let dir = run.dir().to_path_buf();
        drop(run);
        let mut info = RunInfo::load(&dir).unwrap();
        info.pid = u32::MAX - 1;
        write_json_atomic(&dir.join("run.json"), &info).unwrap();
        assert_eq!(
            RunInfo::load(&dir).unwrap().effective_status(),
            Status::Interrupted
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("metrics.jsonl"))
            .unwrap();
        f.write_all(b"{\"half").unwrap();
        let mut run = Run::resume(&dir).unwrap();
        run.log("step", json!({"step": 2})).unwrap();
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<Value>(l).is_ok())
        );
        assert_eq!(RunInfo::load(&dir).unwrap().resumed, 1);
    }

    /// A later stage's failure marks that stage failed and leaves the finished ones done; a stage
    /// left running by a dead process reads as interrupted on resume, and running it again
    /// replaces only its own entry.
    #[test]
    fn stage_outcomes_are_separate() {
        let root = tempfile::tempdir().unwrap();
        let mut run = Run::create(
            root.path(),
            RunSpec {
                kind: RunKind::Fit,
                name: "x",
                config: json!({}),
                device: "flex".into(),
                seed: None,
            },
        )
        .unwrap();
        run.begin_stage("map").unwrap();
        run.end_stage("map").unwrap();
        run.begin_stage("vi").unwrap();
        run.fail("VI: boom").unwrap();
        let dir = run.dir().to_path_buf();
        let st = |dir: &Path| -> Vec<(String, StageStatus, u32)> {
            RunInfo::load(dir)
                .unwrap()
                .stages
                .iter()
                .map(|s| (s.stage.clone(), s.status, s.invocation))
                .collect()
        };
        assert_eq!(
            st(&dir),
            vec![
                ("map".into(), StageStatus::Done, 0),
                ("vi".into(), StageStatus::Failed, 0)
            ]
        );
        let info = RunInfo::load(&dir).unwrap();
        assert_eq!(info.stages[1].error.as_deref(), Some("VI: boom"));
        assert_eq!(info.status, Status::Failed);
        drop(run);
        let mut run = Run::resume(&dir).unwrap();
        run.begin_stage("vi").unwrap();
        run.end_stage("vi").unwrap();
        run.begin_stage("hmc").unwrap();
        drop(run); // killed while sampling
        let run = Run::resume(&dir).unwrap();
        assert_eq!(
            st(&dir),
            vec![
                ("map".into(), StageStatus::Done, 0),
                ("vi".into(), StageStatus::Done, 1),
                ("hmc".into(), StageStatus::Interrupted, 1)
            ]
        );
        assert_eq!(run.info().stages[1].error, None);
    }
}
