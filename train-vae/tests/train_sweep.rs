//! `train-vae sweep` end to end through the binary on a tiny synthetic set: one checkpoint and one
//! test-split evaluation per latent dimension, tagged run records, the summary's schema; a sweep
//! killed mid-training that the same command completes without retraining what was done; a
//! different plan in the same folder refused.

mod train_support;

use arclight_core::record::RunInfo;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use train_support::{hdf5_guard, tiny_data};

fn sweep_cmd(data: &Path, out: &Path, experiments: &Path, dims: &str, epochs: usize) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_train-vae"));
    c.env("ARCLIGHT_QUIET", "1");
    c.args([
        "sweep",
        "--latent-dims",
        dims,
        "--widths",
        "4,8,8,16",
        "--head-width",
        "32",
    ])
    .args([
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--patience",
        "50",
        "--seed",
        "3",
    ])
    .arg("--epochs")
    .arg(epochs.to_string())
    .arg("--data")
    .arg(data)
    .arg("--out")
    .arg(out)
    .arg("--experiments")
    .arg(experiments);
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Run records under `experiments` of `kind` with their `config.sweep.setting`.
fn tagged_runs(experiments: &Path, kind: &str) -> Vec<(PathBuf, String, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(experiments).unwrap() {
        let dir = e.unwrap().path();
        let Ok(info) = RunInfo::load(&dir) else {
            continue;
        };
        if info.kind.as_str() != kind {
            continue;
        }
        let sweep = &info.config["sweep"];
        v.push((
            dir,
            sweep["id"].as_str().unwrap_or("").to_string(),
            sweep["setting"].as_str().unwrap_or("").to_string(),
        ));
    }
    v.sort_by(|a, b| a.2.cmp(&b.2));
    v
}

#[test]
fn sweep_trains_and_evaluates_every_latent_dimension() {
    let _h = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 24, 8, 6);
    let (out, exp) = (dir.path().join("abl"), dir.path().join("experiments"));
    let o = sweep_cmd(&data, &out, &exp, "2,4", 1).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let plan = read_json(&out.join("sweep.json"));
    let id = plan["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 16);
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["sweep"], id.as_str());
    let rows = summary["settings"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, d) in rows.iter().zip([2usize, 4]) {
        assert_eq!(row["setting"]["name"], format!("ld{d}"));
        assert_eq!(row["setting"]["latent_dim"], d);
        assert_eq!(row["epochs_completed"], 1);
        let t = &row["test"];
        assert_eq!(t["split"], "test");
        assert_eq!(t["n"], 6);
        assert_eq!(t["latent_dim"], d);
        let kl: Vec<f64> = t["kl_per_dim"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(kl.len(), d);
        assert!(kl.iter().all(|k| k.is_finite() && *k >= 0.0), "{kl:?}");
        // the KL term of the ELBO is the sum of the per-dimension KLs
        let total = t["kl"].as_f64().unwrap();
        assert!(
            (kl.iter().sum::<f64>() - total).abs() < 1e-3 * total.max(1.0),
            "{kl:?} vs {total}"
        );
        let active = t["active_dims"].as_u64().unwrap() as usize;
        let activity = t["activity_per_dim"].as_array().unwrap();
        assert_eq!(activity.len(), d);
        assert_eq!(
            active,
            activity
                .iter()
                .filter(|a| a.as_f64().unwrap() > 0.01)
                .count()
        );
        assert!(t["prior_log_volume"].as_f64().unwrap().is_finite());
        assert!(t["elbo"].as_f64().unwrap().is_finite());
        assert!(
            Path::new(row["checkpoint"].as_str().unwrap())
                .join("eval/metrics.json")
                .is_file()
        );
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("ld2") && stdout.contains("ld4") && stdout.contains("active"),
        "{stdout}"
    );
    // every training and evaluation record is tagged with the sweep and its setting
    for kind in ["train", "eval"] {
        let runs = tagged_runs(&exp, kind);
        let tags: Vec<(&str, &str)> = runs.iter().map(|r| (r.1.as_str(), r.2.as_str())).collect();
        assert_eq!(
            tags,
            vec![(id.as_str(), "ld2"), (id.as_str(), "ld4")],
            "{kind}"
        );
    }
    // the same command again has nothing left to do
    let again = sweep_cmd(&data, &out, &exp, "2,4", 1).output().unwrap();
    let t = text(&again);
    assert!(again.status.success(), "{t}");
    assert!(
        t.contains("ld2 is trained") && t.contains("ld4 is evaluated"),
        "{t}"
    );
    assert_eq!(tagged_runs(&exp, "train").len(), 2);
    // another plan in the same folder is refused, naming the difference
    let other = sweep_cmd(&data, &out, &exp, "2,8", 1).output().unwrap();
    let t = text(&other);
    assert!(!other.status.success(), "{t}");
    assert!(
        t.contains("another sweep") && t.contains("settings: ld2,ld4 vs ld2,ld8"),
        "{t}"
    );
}

#[test]
fn killed_sweep_continues_where_it_stopped() {
    let _h = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 24, 8, 6);
    let (out, exp) = (dir.path().join("abl"), dir.path().join("experiments"));
    let epochs = 40;
    let mut child = sweep_cmd(&data, &out, &exp, "2,4", epochs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // kill once the second setting has completed an epoch (the first is then trained and evaluated)
    let state = out.join("ld4/training/state.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !state.is_file() {
        assert!(
            Instant::now() < deadline,
            "the second setting never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.join("summary.json").exists());
    let first_run = tagged_runs(&exp, "train")[0].0.clone();

    let o = sweep_cmd(&data, &out, &exp, "2,4", epochs)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("ld2 is trained") && t.contains("resuming the interrupted training of ld4"),
        "{t}"
    );
    // one training record per setting: ld2 was not trained again, ld4's run was continued
    let train = tagged_runs(&exp, "train");
    assert_eq!(train.len(), 2, "{train:?}");
    assert_eq!(train[0].0, first_run);
    assert!(RunInfo::load(&train[1].0).unwrap().resumed >= 1);
    let rows = read_json(&out.join("summary.json"))["settings"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["epochs_completed"], epochs);
}

#[test]
fn decoder_only_is_refused_before_training() {
    let _h = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 24, 8, 6);
    let (out, exp) = (dir.path().join("abl"), dir.path().join("experiments"));
    let o = sweep_cmd(&data, &out, &exp, "2", 1)
        .arg("--decoder-only")
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("--decoder-only") && t.contains("encoder"), "{t}");
    assert!(!out.exists() && !exp.exists());
}

#[test]
fn too_small_splits_are_refused_before_training() {
    let _h = hdf5_guard();
    for (sizes, said) in [
        ((24, 8, 0), "test 0"),
        ((24, 0, 6), "validation 0"),
        ((1, 8, 6), "train 1"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path(), sizes.0, sizes.1, sizes.2);
        let (out, exp) = (dir.path().join("abl"), dir.path().join("experiments"));
        let o = sweep_cmd(&data, &out, &exp, "2", 1).output().unwrap();
        let t = text(&o);
        assert!(!o.status.success(), "{t}");
        assert!(
            t.contains(data.to_str().unwrap()) && t.contains(said),
            "{sizes:?}: {t}"
        );
        assert!(!out.exists() && !exp.exists(), "{sizes:?}");
    }
}

#[test]
fn unreadable_training_state_is_reported() {
    let _h = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 24, 8, 6);
    let (out, exp) = (dir.path().join("abl"), dir.path().join("experiments"));
    // a setting whose training state is from another build
    let training = out.join("ld2/training");
    std::fs::create_dir_all(&training).unwrap();
    std::fs::write(training.join("state.json"), r#"{"format_version": 99}"#).unwrap();
    let o = sweep_cmd(&data, &out, &exp, "2,3", 1).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("ld2/training/state.json")
            && t.contains("format_version")
            && t.contains("cannot be loaded"),
        "{t}"
    );
    // nothing was trained in its place, and the failure did not stop the next setting
    let trained: Vec<String> = tagged_runs(&exp, "train")
        .into_iter()
        .map(|(_, _, s)| s)
        .collect();
    assert_eq!(trained, ["ld3"], "{t}");
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["settings"].as_array().unwrap().len(), 1);
    assert_eq!(summary["failed"][0]["setting"], "ld2");
    assert!(t.contains("1 of 2 settings failed (first: ld2"), "{t}");
}

#[test]
fn setting_left_aside_by_a_killed_swap_is_recovered() {
    let _h = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 24, 8, 6);
    let (out, exp) = (dir.path().join("abl"), dir.path().join("experiments"));
    let o = sweep_cmd(&data, &out, &exp, "2", 1).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // killed between the two renames of a checkpoint swap: the folder sits at .<name>.old-<pid>
    std::fs::rename(out.join("ld2"), out.join(".ld2.old-4242")).unwrap();
    let o = sweep_cmd(&data, &out, &exp, "2", 1).output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("ld2 is trained"), "{t}");
    assert!(out.join("ld2/eval/metrics.json").is_file());
}
