//! The scriptable view: `arclight runs list|show|compare|ablation`, as tables and as JSON, run
//! as the real binary on the fixture records.

mod support;

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

/// Records of a 2-setting `train-vae sweep` (ld8, ld16) beside plain and resumed training runs:
/// tests/fixtures/ablation-experiments (see make_fixtures.py, `ablation_main`).
fn ablation_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ablation-experiments")
}

/// The cells of the table line starting with `first` (columns are two or more spaces apart).
fn cells<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    let line = text
        .lines()
        .find(|l| l.split("  ").next() == Some(first))
        .unwrap_or_else(|| panic!("no line for {first} in\n{text}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn ablation_groups_a_sweep_with_its_evaluations() {
    let root = ablation_fixtures();
    let out = arclight_in(&root, &["runs", "ablation"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("sweep 8c41d2f09a7be356 in /data/sweeps/latent: 2 settings\n"),
        "{text}"
    );
    let header = cells(&text, "setting");
    assert_eq!(
        header,
        [
            "setting",
            "latent dim",
            "widths",
            "best val ELBO",
            "test ELBO",
            "test chi2/px",
            "test KL",
            "active",
            "prior log-vol",
            "train run",
            "eval run"
        ]
    );
    // ld8 was evaluated twice: the newer evaluation's figures count
    assert_eq!(
        cells(&text, "ld8"),
        [
            "ld8",
            "8",
            "32,64,128,256",
            "-1249.1",
            "-1252.3",
            "1.305",
            "17.84",
            "7/8",
            "8.412",
            "train-20261123T080000-ld8",
            "eval-20261123T093000-ld8"
        ]
    );
    // ld16's training was resumed once; its newest evaluation was interrupted: the done one counts
    assert_eq!(
        cells(&text, "ld16"),
        [
            "ld16",
            "16",
            "32,64,128,256",
            "-1233.1",
            "-1236.2",
            "1.236",
            "27.36",
            "11/16",
            "16.93",
            "train-20261123T083000-ld16",
            "eval-20261123T091500-ld16"
        ]
    );
    // the runs outside the sweep are grouped by latent dimension as before, below
    assert!(
        text.contains("\ntraining runs without a sweep, by architecture.latent_dim\n"),
        "{text}"
    );
    assert_eq!(cells(&text, "32")[..3], ["32", "2", "-1165"]);
    assert_eq!(cells(&text, "64")[..3], ["64", "1", "-1137.1"]);

    let v = json_in(&root, &["runs", "ablation", "--json"]);
    assert_eq!(v["by"], "sweep.id");
    let sweeps = v["sweeps"].as_array().unwrap();
    assert_eq!(sweeps.len(), 1);
    assert_eq!(sweeps[0]["id"], "8c41d2f09a7be356");
    let s = sweeps[0]["settings"].as_array().unwrap();
    let names: Vec<&str> = s.iter().map(|r| r["setting"].as_str().unwrap()).collect();
    assert_eq!(names, ["ld8", "ld16"]);
    assert_eq!(s[0]["test_elbo"], -1252.31);
    assert_eq!(s[0]["test_kl"], 17.84);
    assert_eq!(s[0]["active_dims"], 7);
    assert_eq!(s[0]["latent_dim"], 8);
    assert_eq!(s[0]["widths"], serde_json::json!([32, 64, 128, 256]));
    assert_eq!(s[0]["best_val_elbo"], -1249.0783893556038);
    assert_eq!(s[1]["prior_log_volume"], 16.93);
    assert_eq!(s[1]["test_chi2_per_pixel"], 1.236);
    assert_eq!(s[1]["train_status"], "done");
    assert_eq!(v["others"]["by"], "architecture.latent_dim");
    let others: Vec<&str> = v["others"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(others, ["32", "64"]);
    // `--by sweep` names the same grouping; any other key still groups every training run
    assert_eq!(
        json_in(&root, &["runs", "ablation", "--by", "sweep", "--json"]),
        v
    );
    let by_setting = json_in(
        &root,
        &["runs", "ablation", "--by", "sweep.setting", "--json"],
    );
    let values: Vec<&str> = by_setting["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["-", "ld16", "ld8"]);
}

/// A resumed training run records its config twice (`resumed_with` holds the one it was resumed
/// with): `latent_dim` used to match both copies, fell back to itself, and put every run in `-`.
#[test]
fn a_resumed_run_does_not_break_the_latent_dim_grouping() {
    let root = ablation_fixtures();
    let v = json_in(&root, &["runs", "ablation", "--by", "latent_dim", "--json"]);
    assert_eq!(v["by"], "architecture.latent_dim");
    let groups = v["groups"].as_array().unwrap();
    let values: Vec<&str> = groups
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["8", "16", "32", "64"]);
    assert_eq!(
        groups[2]["runs"],
        serde_json::json!([
            "train-20261122T100000-ld32",
            "train-20261122T110000-ld32-resumed"
        ])
    );
    assert_eq!(groups[2]["best_run"], "train-20261122T110000-ld32-resumed");
    assert_eq!(groups[2]["best_val_elbo"], -1164.9979659791056);
    // the resume's copy is not a key of its own, but still usable when named in full
    let by_lr = json_in(&root, &["runs", "ablation", "--by", "lr", "--json"]);
    assert_eq!(by_lr["groups"].as_array().unwrap().len(), 1);
    assert_eq!(by_lr["groups"][0]["value"], "1.000e-5");
    let resumed_lr = json_in(
        &root,
        &["runs", "ablation", "--by", "resumed_with.lr", "--json"],
    );
    let values: Vec<&str> = resumed_lr["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["-", "1.000e-5", "5.000e-6"]);

    // the situation reported: the usual records plus one resumed training run
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixtures()).unwrap() {
        let e = e.unwrap();
        support::copy_dir(&e.path(), &tmp.path().join(e.file_name()));
    }
    support::copy_dir(
        &root.join("train-20261122T110000-ld32-resumed"),
        &tmp.path().join("train-20261122T110000-ld32-resumed"),
    );
    let v = json_in(tmp.path(), &["runs", "ablation", "--json"]);
    assert_eq!(v["by"], "architecture.latent_dim");
    let groups = v["groups"].as_array().unwrap();
    let values: Vec<&str> = groups
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["16", "32", "64"]);
    assert_eq!(groups[1]["runs"].as_array().unwrap().len(), 3);
}

#[test]
fn a_misspelt_by_key_is_an_error_listing_the_keys() {
    let out = arclight_in(
        &ablation_fixtures(),
        &["runs", "ablation", "--by", "latent_dm"],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    let (head, list) = err
        .split_once("available keys (closest first): ")
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        head,
        "arclight: --by latent_dm: no training run has the config key 'latent_dm'; "
    );
    let keys: Vec<&str> = list.trim_end().split(", ").collect();
    assert_eq!(keys[0], "architecture.latent_dim", "{err}");
    for k in ["lr", "sweep.id", "architecture.widths", "seed"] {
        assert!(keys.contains(&k), "{k} missing: {err}");
    }
    // the resume's copy of the config is not offered
    assert!(!list.contains("resumed_with"), "{err}");
    // on the plain records too (no sweep): a typo no longer groups everything under `-`
    let out = arclight(&["runs", "ablation", "--by", "sed", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--by sed: no training run has the config key 'sed'"),
        "{err}"
    );
    assert!(err.contains("(closest first): seed, "), "{err}");
}

fn json_in(root: &std::path::Path, args: &[&str]) -> Value {
    let out = arclight_in(root, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
}

/// A sweep whose second setting is still training (here: its process died mid-way): the row
/// shows the best validation ELBO so far from the metrics and the training's status, no test
/// figures from an older evaluation of another setting.
#[test]
fn a_sweep_setting_without_summary_shows_its_progress() {
    let tmp = tempfile::tempdir().unwrap();
    support::copy_dir(&ablation_fixtures(), tmp.path());
    let ld16 = tmp.path().join("train-20261123T083000-ld16");
    std::fs::remove_file(ld16.join("summary.json")).unwrap();
    let mut info: Value =
        serde_json::from_str(&std::fs::read_to_string(ld16.join("run.json")).unwrap()).unwrap();
    info["status"] = "running".into();
    std::fs::write(ld16.join("run.json"), info.to_string()).unwrap();
    for id in ["eval-20261123T091500-ld16", "eval-20261123T094000-ld16"] {
        std::fs::remove_dir_all(tmp.path().join(id)).unwrap();
    }
    let out = arclight_in(tmp.path(), &["runs", "ablation"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        cells(&text, "ld16"),
        [
            "ld16",
            "16",
            "32,64,128,256",
            "-1233.1",
            "train-20261123T083000-ld16 (interrupted)"
        ]
    );
    assert_eq!(cells(&text, "ld8")[4], "-1252.3");
}

/// A study's shards are run records one folder down (`study-x/shard-1-of-2/run.json`): they are
/// listed under that id, not the study folder as an unreadable run, and `show` finds them. A folder
/// of results without a run (a sweep's) is not listed; a record from a newer program is.
#[test]
fn runs_nested_one_folder_down_are_listed() {
    let root = tempfile::tempdir().unwrap();
    run_named(root.path(), "train-20261122T000000-top", "top", 1e-3);
    run_named(root.path(), "study-x/shard-1-of-2", "s1", 1e-3);
    run_named(root.path(), "study-x/shard-2-of-2", "s2", 2e-3);
    // a sweep's results folder as committed beside its README: files, but no run in it
    let sweep = root.path().join("sweep-x");
    std::fs::create_dir_all(&sweep).unwrap();
    std::fs::write(sweep.join("sweep.json"), "{}").unwrap();
    std::fs::write(sweep.join("summary.json"), "{}").unwrap();
    std::fs::write(sweep.join("README.md"), "notes").unwrap();
    // a run from a newer program: another kind, a newer format; listed, its unknown parts said
    run_named(root.path(), "simulate-20261122T000000-new", "new", 1e-3);
    let rec = root.path().join("simulate-20261122T000000-new/run.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&rec).unwrap()).unwrap();
    v["kind"] = "simulate".into();
    v["format"] = 99.into();
    v["status"] = "paused".into();
    std::fs::write(&rec, v.to_string()).unwrap();
    let out = arclight_in(root.path(), &["runs", "list", "--json", "--sort", "id"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "simulate-20261122T000000-new",
            "study-x/shard-1-of-2",
            "study-x/shard-2-of-2",
            "train-20261122T000000-top"
        ],
        "{v}"
    );
    let new = &v[0];
    assert_eq!(new["kind"], "other", "{new}");
    assert_eq!(new["status"], "unknown", "{new}");
    let problems = new["problems"].to_string();
    assert!(
        problems.contains("format 99 is newer")
            && problems.contains("kind of run")
            && problems.contains("run status this program does not know"),
        "{problems}"
    );
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] != "unreadable"),
        "{v}"
    );
    let out = arclight_in(root.path(), &["runs", "show", "study-x/shard-2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("id        study-x/shard-2-of-2"),
        "{text}"
    );
}
