//! The contents of `run.json`: what produced a run, its state, its inputs and the outcome of each stage.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

use super::FORMAT;

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
    /// A kind this program does not know (written by a newer one): listed, never resumed.
    #[serde(other)]
    Other,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Train => "train",
            RunKind::Fit => "fit",
            RunKind::Study => "study",
            RunKind::Prepare => "prepare",
            RunKind::Eval => "eval",
            RunKind::Other => "other",
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
    /// A status this program does not know (written by a newer one): listed, never resumed.
    #[serde(other)]
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
            Status::Unknown => "unknown",
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
    /// A stage state this program does not know (written by a newer one).
    #[serde(other)]
    Unknown,
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
    /// The machine `pid` runs on (a cluster's nodes share the folder, not their process tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
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
    /// The git revision each resume ran in, in order (`git_rev` is the first invocation's): a
    /// long run resumed over several sessions says which build computed which part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_git_revs: Vec<Option<String>>,
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

    /// The status a reader should show: `running` with a vanished process is `interrupted`. A run
    /// recorded on another host (a cluster node writing to a shared folder) cannot be checked here
    /// and stays `running`.
    pub fn effective_status(&self) -> Status {
        let here = self.host.is_none() || self.host == host_name();
        if self.status == Status::Running && here && !recorded_process_alive(self) {
            Status::Interrupted
        } else {
            self.status
        }
    }

    /// Read `run.json` from a run directory, for a program that writes to the run: a record of a newer
    /// format or of a kind this program does not know is refused (rewriting it would lose what it says).
    pub fn load(dir: &Path) -> Result<RunInfo> {
        let info = Self::read(dir)?;
        let path = dir.join("run.json");
        if info.kind == RunKind::Other {
            bail!(
                "{}: a kind of run this program does not know (written by a newer one?)",
                path.display()
            );
        }
        if info.format > FORMAT {
            bail!(
                "{}: run-record format {} is newer than this program's {}",
                path.display(),
                info.format,
                FORMAT
            );
        }
        if let Some(what) = info.unknown_states().first() {
            bail!("{}: {what} (written by a newer program?)", path.display());
        }
        Ok(info)
    }

    /// Read `run.json` as far as this program understands it, for a reader (the tracker): a newer
    /// format and an unknown kind ([`RunKind::Other`]) are accepted; see [`RunInfo::unknown_parts`].
    pub fn read(dir: &Path) -> Result<RunInfo> {
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid run record", path.display()))
    }

    /// What of this record a reader cannot interpret, one sentence each (empty for this program's own).
    pub fn unknown_parts(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.format > FORMAT {
            out.push(format!(
                "run.json format {} is newer than this program's {FORMAT}: shown as far as it is understood",
                self.format
            ));
        }
        if self.kind == RunKind::Other {
            out.push("run.json names a kind of run this program does not know".to_string());
        }
        out.extend(
            self.unknown_states()
                .into_iter()
                .map(|w| format!("run.json: {w}")),
        );
        out
    }

    /// The run's or its stages' states this program does not know, one phrase each.
    fn unknown_states(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.status == Status::Unknown {
            out.push("a run status this program does not know".to_string());
        }
        for st in self
            .stages
            .iter()
            .filter(|s| s.status == StageStatus::Unknown)
        {
            out.push(format!(
                "stage {:?} has a state this program does not know",
                st.stage
            ));
        }
        out
    }
}

/// This machine's name (Linux `/proc`, read once; `None` elsewhere).
pub fn host_name() -> Option<String> {
    static HOST: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .clone()
}

/// Whether the process recorded as writing `info` (status running) is alive on this machine: its
/// pid exists, is not a zombie, and started no later than the record's last update, so a pid reused
/// after a reboot is not taken for the writer. A record from another host cannot be checked
/// (`false`).
pub fn writer_alive(info: &RunInfo) -> bool {
    if info.status != Status::Running || info.pid == std::process::id() {
        return false;
    }
    if info.host.is_some() && info.host != host_name() {
        return false;
    }
    recorded_process_alive(info)
}

/// Whether `info.pid` is alive on this machine as the process that wrote `info`: it exists, is not a
/// zombie, and did not start after the record's last update (a reused pid).
fn recorded_process_alive(info: &RunInfo) -> bool {
    if !pid_alive(info.pid) {
        return false;
    }
    match proc_stat(info.pid) {
        Some((state, _)) if state == 'Z' || state == 'X' => false,
        Some((_, Some(started))) => {
            super::time::parse_utc(&info.updated).is_none_or(|updated| started <= updated + 1)
        }
        _ => true,
    }
}

/// State letter and start time (Unix seconds) of process `pid` from Linux `/proc`: the start is
/// boot time plus ticks of 1/100 s (the kernel's fixed USER_HZ).
fn proc_stat(pid: u32) -> Option<(char, Option<u64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ticks: Option<u64> = fields.nth(18).and_then(|t| t.parse().ok());
    let boot: Option<u64> = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
    });
    Some((state, ticks.zip(boot).map(|(t, b)| b + t / 100)))
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
