//! Shared by the end-to-end recovery tests: run `infer study` on a shipped model file and read its
//! records.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shipped model files.
pub fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A finished `infer study` of one model file: its run directory, summary and printed table.
pub struct Study {
    /// Keeps the experiments root alive while the test reads it.
    _root: tempfile::TempDir,
    pub run: PathBuf,
    pub summary: Value,
    pub stdout: String,
    pub stderr: String,
}

impl Study {
    /// The summary.json of fitted system `i`.
    pub fn fit(&self, i: usize) -> Value {
        read_json(&self.run.join(format!("systems/{i:06}/fit/summary.json")))
    }
}

/// Run `infer study --model models/<model> --n <n> --seed <seed>` with `settings` (from the
/// repository root, so the default checkpoint is found), into a temporary study directory.
/// Panics with the output when it fails.
pub fn run_study(model: &str, n: usize, seed: u64, settings: &[&str]) -> Study {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_infer"))
        .env("ARCLIGHT_QUIET", "1")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["study", "--model"])
        .arg(models().join(model))
        .args(["--n", &n.to_string(), "--seed", &seed.to_string()])
        .arg("--out")
        .arg(root.path().join("study"))
        .args(settings)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "study failed:\n{stdout}\n{stderr}");
    let run = root.path().join("study");
    let summary = read_json(&run.join("summary.json"));
    Study {
        _root: root,
        run,
        summary,
        stdout,
        stderr,
    }
}
