//! The scriptable view: `arclight runs list|show|compare|ablation`, as tables and as JSON, run
//! as the real binary on the fixture records.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/experiments")
}

fn arclight(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arclight"))
        .arg("--root")
        .arg(fixtures())
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = arclight(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
}

#[test]
fn list_prints_a_table_newest_first() {
    let out = ok(&["runs", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("id") && lines[0].contains("status") && lines[0].contains("headline"),
        "{out}"
    );
    assert_eq!(lines.len(), 11, "{out}");
    assert!(lines[1].starts_with("study-20261121T150000-recovery"));
    let ld32 = lines
        .iter()
        .find(|l| l.starts_with("train-20261120T131500-ld32"))
        .unwrap();
    assert!(
        ld32.contains("done")
            && ld32.contains("30m00s")
            && ld32.contains("val ELBO -1154.8 @ep 30"),
        "{ld32}"
    );
    let j1 = lines
        .iter()
        .find(|l| l.starts_with("fit-20261121T110000-hst-j1"))
        .unwrap();
    assert!(j1.contains("interrupted") && j1.contains("55%"), "{j1}");
}

#[test]
fn list_json_has_every_run_with_problems() {
    let v = json(&["runs", "list", "--json"]);
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 10);
    let corrupt = runs
        .iter()
        .find(|r| r["id"] == "train-20261121T120000-corrupt")
        .unwrap();
    assert_eq!(corrupt["status"], "unreadable");
    assert!(
        corrupt["problems"][0]
            .as_str()
            .unwrap()
            .contains("not a valid run record")
    );
    let fit = runs
        .iter()
        .find(|r| r["id"] == "fit-20261121T100000-mock-sie")
        .unwrap();
    assert_eq!(fit["kind"], "fit");
    assert_eq!(fit["duration_s"], 80);
    assert_eq!(fit["headline"], "R-hat 1.004  ESS 787");

    let fits = json(&["runs", "list", "--json", "--kind", "fit", "--sort", "id"]);
    let ids: Vec<&str> = fits
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["fit-20261121T100000-mock-sie", "fit-20261121T110000-hst-j1"]
    );
    let interrupted = json(&["runs", "list", "--json", "--status", "interrupted"]);
    assert_eq!(interrupted.as_array().unwrap().len(), 2);
    let text = json(&["runs", "list", "--json", "--filter", "RECOVERY"]);
    assert_eq!(text[0]["headline"], "bias gamma -0.013, theta_e 0.0021");
}

#[test]
fn show_prints_record_config_summary_and_metrics() {
    let out = ok(&["runs", "show", "mock-sie"]);
    for needle in [
        "fit-20261121T100000-mock-sie",
        "config",
        "map_starts",
        "summary",
        "params.theta_e.mean",
        "metrics",
        "hmc",
        "150",
    ] {
        assert!(out.contains(needle), "missing {needle} in\n{out}");
    }
    let v = json(&["runs", "show", "fit-20261121T100000", "--json"]);
    assert_eq!(v["info"]["kind"], "fit");
    assert_eq!(v["summary"]["rhat_max"], 1.0045);
    assert_eq!(v["metrics"]["kinds"]["hmc"]["count"], 150);
    assert_eq!(v["metrics"]["kinds"]["stage"]["last"]["stage"], "done");
    let j1 = json(&["runs", "show", "hst-j1", "--json"]);
    assert_eq!(j1["metrics"]["bad_lines"], 1);
    assert_eq!(j1["status"], "interrupted");
}

#[test]
fn compare_marks_differing_keys() {
    let out = ok(&[
        "runs",
        "compare",
        "train-20261120T101500",
        "train-20261120T131500",
    ]);
    assert!(
        out.contains("* architecture.latent_dim") && out.contains("  batch_size"),
        "{out}"
    );
    assert!(out.contains("keys differ"), "{out}");
    let v = json(&[
        "runs",
        "compare",
        "train-20261120T101500",
        "train-20261120T131500",
        "--json",
        "--only-diff",
    ]);
    let differing: Vec<&str> = v["differing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        differing.contains(&"architecture.latent_dim")
            && differing.contains(&"summary.best_val_elbo"),
        "{differing:?}"
    );
    assert!(!differing.contains(&"batch_size"));
    assert_eq!(
        v["keys"]["architecture.latent_dim"],
        serde_json::json!([16, 32])
    );
    assert!(v["keys"].get("batch_size").is_none());
}

#[test]
fn ablation_groups_by_latent_dim() {
    let v = json(&["runs", "ablation", "--json"]);
    // `latent_dim` names train-vae's nested architecture.latent_dim
    assert_eq!(v["by"], "architecture.latent_dim");
    let groups = v["groups"].as_array().unwrap();
    let values: Vec<&str> = groups
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["16", "32", "64"]);
    assert_eq!(groups[1]["runs"].as_array().unwrap().len(), 2);
    assert_eq!(groups[1]["best_run"], "train-20261120T131500-ld32");
    assert_eq!(groups[2]["without_summary"], 1);
    let by_seed = ok(&["runs", "ablation", "--by", "seed"]);
    assert!(
        by_seed.lines().next().unwrap().starts_with("seed"),
        "{by_seed}"
    );
}

#[test]
fn bad_queries_fail_with_a_clear_message() {
    let out = arclight(&["runs", "show", "ld32"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ambiguous") && err.contains("train-20261120T131500-ld32"),
        "{err}"
    );
    let out = arclight(&["runs", "show", "no-such-run"]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("no run matching 'no-such-run'")
    );
    let out = arclight(&["runs", "list", "--kind", "banana"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--kind banana")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_arclight"))
        .args(["--root", "/nonexistent/arclight", "runs", "list"])
        .output()
        .unwrap();
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("cannot list /nonexistent/arclight")
    );
    // the interface refuses to start without a terminal instead of garbling a pipe
    let out = arclight(&[]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("needs a terminal")
    );
}

/// A done study whose `run.json` carries flags is listed as `flagged` (never plainly `done`), its
/// headline gives the first reason, and the status filter finds it.
#[test]
fn flagged_runs_are_listed_as_flagged() {
    let root = tempfile::tempdir().unwrap();
    let id = "study-20261121T150000-recovery";
    let dir = root.path().join(id);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["run.json", "summary.json"] {
        std::fs::copy(fixtures().join(id).join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("metrics.jsonl"), "").unwrap();
    let list = |extra: &[&str]| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_arclight"))
            .arg("--root")
            .arg(root.path())
            .args(["runs", "list", "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(list(&[])[0]["status"], "done");
    arclight_core::record::set_flags(
        &dir,
        vec![
            "2 of 20 systems flagged: 3 (R-hat 1.04 >= 1.01), 7 (stage hmc failed)".into(),
            "second".into(),
        ],
    )
    .unwrap();
    let v = list(&[]);
    assert_eq!(v[0]["status"], "flagged");
    assert_eq!(
        v[0]["headline"],
        "flagged: 2 of 20 systems flagged: 3 (R-hat 1.04 >= 1.01), 7 (stage hmc failed) (+1 more)"
    );
    assert_eq!(list(&["--status", "flagged"]).as_array().unwrap().len(), 1);
    assert!(list(&["--status", "done"]).as_array().unwrap().is_empty());
}

/// A copy of the fixture `ld16` training run as `<dir>/<id>` with run name `name` and learning
/// rate `lr`.
fn run_named(root: &std::path::Path, id: &str, name: &str, lr: f64) {
    let from = fixtures().join("train-20261120T101500-ld16");
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["metrics.jsonl", "summary.json"] {
        std::fs::copy(from.join(f), dir.join(f)).unwrap();
    }
    let mut info: Value =
        serde_json::from_str(&std::fs::read_to_string(from.join("run.json")).unwrap()).unwrap();
    info["id"] = id.into();
    info["name"] = name.into();
    info["config"]["lr"] = lr.into();
    std::fs::write(dir.join("run.json"), info.to_string()).unwrap();
}

fn arclight_in(root: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arclight"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn an_exact_name_wins_over_prefix_and_substring_matches() {
    let root = tempfile::tempdir().unwrap();
    run_named(root.path(), "train-20261122T000000-kill", "kill", 1e-3);
    run_named(root.path(), "train-20261122T010000-kill-2", "kill-2", 1e-3);
    run_named(root.path(), "train-20261122T020000-skill", "skill", 1e-3);
    let out = arclight_in(root.path(), &["runs", "show", "kill", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"], "train-20261122T000000-kill");
    // an exact id still wins, and a query matching no name stays ambiguous
    let out = arclight_in(
        root.path(),
        &["runs", "show", "train-20261122T010000-kill-2", "--json"],
    );
    assert!(out.status.success());
    let out = arclight_in(root.path(), &["runs", "show", "kil"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("ambiguous (3 matches"),
        "{err}"
    );
}

#[test]
fn compare_json_keeps_numbers_and_arrays() {
    let root = tempfile::tempdir().unwrap();
    run_named(root.path(), "train-20261122T000000-a", "a", 1e-8);
    run_named(root.path(), "train-20261122T010000-b", "b", 3e-4);
    let out = arclight_in(
        root.path(),
        &[
            "runs",
            "compare",
            "train-20261122T000000-a",
            "train-20261122T010000-b",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = &v["keys"];
    assert_eq!(keys["lr"], serde_json::json!([1e-8, 3e-4]), "{v:#}");
    assert_eq!(keys["batch_size"], serde_json::json!([64, 64]));
    assert_eq!(
        keys["architecture.widths"],
        serde_json::json!([[32, 64, 128], [32, 64, 128]])
    );
    assert_eq!(
        keys["summary.best_val_elbo"][0], -1243.4301496148423,
        "{v:#}"
    );
    // text stays text
    assert_eq!(keys["data"][0], "datasets/cosmos64.h5");
    assert_eq!(keys["status"], serde_json::json!(["done", "done"]));
    let differing: Vec<&str> = v["differing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(differing, ["lr"]);
}
