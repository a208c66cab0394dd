//! Writing a run: create or resume its folder, append metrics, record stages, finish.

use crate::atomic::{write_atomic, write_json_atomic};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::FORMAT;
use super::info::{
    InputFile, Progress, RunInfo, RunKind, StageOutcome, StageStatus, Status, host_name,
    writer_alive,
};
use super::time::{format_utc, utc_now};

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
            host: host_name(),
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
            resumed_git_revs: Vec::new(),
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
    /// Refused while the process recorded as writing it is still alive: two writers would mix
    /// their files.
    pub fn resume(dir: &Path) -> Result<Run> {
        let mut info = RunInfo::load(dir)?;
        if writer_alive(&info) {
            bail!(
                "{}: the run is still being written by process {}{} (run.json: running); stop that process or let it finish before resuming",
                dir.display(),
                info.pid,
                info.host
                    .as_deref()
                    .map(|h| format!(" on {h}"))
                    .unwrap_or_default()
            );
        }
        let metrics_path = dir.join("metrics.jsonl");
        let t_offset = last_time(&metrics_path).unwrap_or(0.0);
        truncate_partial_last_line(&metrics_path)?;
        info.status = Status::Running;
        info.pid = std::process::id();
        info.host = host_name();
        info.ended = None;
        info.error = None;
        info.resumed += 1;
        info.resumed_git_revs.push(git_revision());
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
    use crate::record::{MAX_LINE_BYTES, MetricsTail};
    use serde_json::json;

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
        // a run written on another host (a cluster node) cannot be checked from here
        let mut elsewhere = RunInfo::load(&dir).unwrap();
        elsewhere.host = Some("another-node".into());
        assert_eq!(elsewhere.effective_status(), Status::Running);
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
        let info = RunInfo::load(&dir).unwrap();
        assert_eq!(info.resumed, 1);
        // the resume's git revision is kept beside the first invocation's
        assert_eq!(info.resumed_git_revs, vec![git_revision()]);
    }

    /// A run whose recorded writer is alive is not resumed by another process (two writers would
    /// mix their files); a dead writer, a pid that started after the record's last update (reused),
    /// a zombie or another host's pid do not block it.
    #[test]
    fn resume_is_refused_while_the_writer_lives() {
        let root = tempfile::tempdir().unwrap();
        let run = Run::create(
            root.path(),
            RunSpec {
                kind: RunKind::Study,
                name: "x",
                config: json!({}),
                device: "flex".into(),
                seed: None,
            },
        )
        .unwrap();
        let dir = run.dir().to_path_buf();
        drop(run);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let write = |pid: u32, updated: &str, host: Option<String>| {
            let mut info = RunInfo::load(&dir).unwrap();
            info.status = Status::Running;
            info.pid = pid;
            info.updated = updated.into();
            info.host = host;
            write_json_atomic(&dir.join("run.json"), &info).unwrap();
        };
        // a live writer on this host, started before the record's last update
        write(child.id(), &utc_now(), host_name());
        assert_eq!(
            RunInfo::load(&dir).unwrap().effective_status(),
            Status::Running
        );
        let e = Run::resume(&dir).err().expect("refused").to_string();
        assert!(
            e.contains(&format!("still being written by process {}", child.id())),
            "{e}"
        );
        // the same pid but a record last updated before the process started: a reused pid
        write(child.id(), "2000-01-01T00:00:00Z", host_name());
        // (readers show it as interrupted, not as running forever)
        assert_eq!(
            RunInfo::load(&dir).unwrap().effective_status(),
            Status::Interrupted
        );
        drop(Run::resume(&dir).unwrap());
        // another host's pid cannot be checked
        write(child.id(), &utc_now(), Some("another-node".into()));
        drop(Run::resume(&dir).unwrap());
        // a killed writer (a zombie until reaped, then gone)
        child.kill().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        write(child.id(), &utc_now(), host_name());
        drop(Run::resume(&dir).unwrap());
        child.wait().unwrap();
        drop(Run::resume(&dir).unwrap());
    }

    /// A new fit run under `root` with an empty config.
    fn fit_run(root: &Path) -> Run {
        Run::create(
            root,
            RunSpec {
                kind: RunKind::Fit,
                name: "x",
                config: json!({}),
                device: "flex".into(),
                seed: None,
            },
        )
        .unwrap()
    }

    /// A later stage's failure marks that stage failed and leaves the finished ones done; a stage
    /// left running by a dead process reads as interrupted on resume, and running it again
    /// replaces only its own entry.
    #[test]
    fn stage_outcomes_are_separate() {
        let root = tempfile::tempdir().unwrap();
        let mut run = fit_run(root.path());
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

    /// A status or stage state written by a newer program: a reader lists the record and says what it
    /// does not understand; a writer refuses it rather than rewrite what it cannot interpret.
    #[test]
    fn unknown_states_are_read_but_not_resumed() {
        let root = tempfile::tempdir().unwrap();
        let mut run = fit_run(root.path());
        run.begin_stage("map").unwrap();
        run.end_stage("map").unwrap();
        run.finish(json!({})).unwrap();
        let dir = run.dir().to_path_buf();
        drop(run);
        let path = dir.join("run.json");
        let original = std::fs::read_to_string(&path).unwrap();
        for (key, problem) in [
            ("status", "a run status this program does not know"),
            (
                "stage",
                "stage \"map\" has a state this program does not know",
            ),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
            if key == "status" {
                v["status"] = "paused".into();
            } else {
                v["stages"][0]["status"] = "queued".into();
            }
            std::fs::write(&path, v.to_string()).unwrap();
            let info = RunInfo::read(&dir).unwrap();
            assert!(
                info.unknown_parts().iter().any(|p| p.contains(problem)),
                "{:?}",
                info.unknown_parts()
            );
            let e = format!("{:#}", RunInfo::load(&dir).unwrap_err());
            assert!(e.contains(problem), "{e}");
            assert!(Run::resume(&dir).is_err());
            // nothing was rewritten
            assert_eq!(std::fs::read_to_string(&path).unwrap(), v.to_string());
        }
        assert_eq!(
            RunInfo::read(&dir).unwrap().status,
            Status::Done,
            "only the stage was unknown in the last case"
        );
    }
}
