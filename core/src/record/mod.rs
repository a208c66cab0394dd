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

mod info;
mod metrics_tail;
mod run;
mod time;

pub use info::{
    InputFile, Progress, RunInfo, RunKind, StageOutcome, StageStatus, Status, pid_alive,
};
pub use metrics_tail::{MAX_LINE_BYTES, MetricsTail};
pub use run::{Run, RunSpec, git_revision, set_flags, write_run_bytes, write_run_file};
pub use time::{format_utc, parse_utc, utc_now};

/// Version of the run-record format written by this code.
pub const FORMAT: u32 = 1;
