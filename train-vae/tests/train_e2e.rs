//! End to end through the binary: prepare the shipped real COSMOS stamps -> train (tiny) ->
//! eval; and a training process killed with SIGKILL that `--resume` completes.

use arclight_core::record::{RunInfo, Status};
use burn::tensor::Device;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const TINY: [&str; 8] = [
    "--widths",
    "4,8,8,16",
    "--head-width",
    "32",
    "--latent-dim",
    "4",
    "--batch-size",
    "4",
];

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_train-vae"));
    c.env("ARCLIGHT_QUIET", "1");
    c
}

fn ok(out: Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

fn shipped(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/cosmos-example")
        .join(rel)
}

fn only_run(experiments: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(experiments)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

#[test]
fn prepare_train_eval_on_the_shipped_real_data() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("real.h5");
    let records = dir.path().join("records");
    let out = bin()
        .args(["prepare", "--split", "5,2,1", "--out"])
        .arg(&h5)
        .arg("--experiments")
        .arg(&records)
        .arg("--catalog")
        .arg(shipped("real_galaxy_catalog_23.5_example.fits"))
        .arg("--catalog")
        .arg(shipped(
            "btk_26_extension/real_galaxy_catalog_26_extension_example.fits",
        ))
        .arg("--catalog")
        .arg(shipped("paltas_23.5_trimmed/real_galaxy_catalog_23.5.fits"))
        .output()
        .unwrap();
    ok(out, "prepare");

    let ck = dir.path().join("ck");
    let exp = dir.path().join("exp");
    let out = bin()
        .args(["train", "--epochs", "2", "--data"])
        .arg(&h5)
        .arg("--out")
        .arg(&ck)
        .arg("--experiments")
        .arg(&exp)
        .args(TINY)
        .output()
        .unwrap();
    let text = ok(out, "train");
    assert!(text.contains("checkpoint:"), "{text}");
    let run = only_run(&exp);
    assert_eq!(RunInfo::load(&run).unwrap().status, Status::Done);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["epochs"], 2);
    assert!(summary["best_val_elbo"].as_f64().unwrap().is_finite());
    let loaded = arclight_vae::checkpoint::load_decoder(&ck, &Device::flex()).unwrap();
    assert_eq!(loaded.latent_dim, 4);
    assert!(loaded.meta.data.provenance.is_object());

    let ev = dir.path().join("eval");
    let out = bin()
        .args(["eval", "--checkpoint"])
        .arg(&ck)
        .arg("--data")
        .arg(&h5)
        .arg("--out")
        .arg(&ev)
        .arg("--experiments")
        .arg(&records)
        .output()
        .unwrap();
    ok(out, "eval");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["split"], "test");
    assert!(m["n"].as_u64().unwrap() >= 1);
    for k in ["elbo", "chi2_per_pixel", "chi2_per_pixel_noise"] {
        assert!(m[k].as_f64().unwrap().is_finite(), "{k}: {m}");
    }
    for png in ["reconstructions.png", "rotation.png"] {
        let (h, w, _) = arclight_core::png::read_grey(&ev.join(png)).unwrap();
        assert!(h > 200 && w > 100, "{png}: {w}x{h}");
    }

    // A second training run into the same --out is refused (use --resume), nothing touched.
    let out = bin()
        .args(["train", "--data"])
        .arg(&h5)
        .arg("--out")
        .arg(&ck)
        .arg("--experiments")
        .arg(&exp)
        .args(TINY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    // Unknown options and bad values name the flag.
    let out = bin()
        .args(["train", "--data"])
        .arg(&h5)
        .arg("--out")
        .arg(dir.path().join("x"))
        .args(["--widths", "4,8"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--widths"));
    let out = bin()
        .args(["eval", "--checkpoint"])
        .arg(&ck)
        .arg("--data")
        .arg(&h5)
        .arg("--out")
        .arg(&ev)
        .args(["--split", "dev"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--split dev"));
    let out = bin()
        .args(["train", "--latent-dim", "8", "--data"])
        .arg(&h5)
        .arg("--out")
        .arg(dir.path().join("y"))
        .arg("--init-from")
        .arg(&ck)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--latent-dim 8 conflicts with --init-from")
    );
    let out = bin()
        .args(["train", "--out"])
        .arg(dir.path().join("z"))
        .args(["--data", "/nonexistent.h5"])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent.h5")
    );
    assert!(!dir.path().join("z").exists());
    let out = bin().args(["train", "--bogus"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn killed_training_resumes_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("synth.h5");
    ok(
        bin()
            .args([
                "synth", "--n", "60", "--seed", "5", "--split", "40,12,8", "--out",
            ])
            .arg(&h5)
            .output()
            .unwrap(),
        "synth",
    );
    let ck = dir.path().join("ck");
    let exp = dir.path().join("exp");
    let mut child = bin()
        .args(["train", "--epochs", "1000", "--patience", "1000", "--data"])
        .arg(&h5)
        .arg("--out")
        .arg(&ck)
        .arg("--experiments")
        .arg(&exp)
        .args(TINY)
        .spawn()
        .unwrap();
    let state = ck.join("training/state.json");
    let t0 = Instant::now();
    while !state.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no checkpoint after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let it run into a later epoch (and maybe a checkpoint swap), then SIGKILL.
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    let run = only_run(&exp);
    assert_eq!(
        RunInfo::load(&run).unwrap().effective_status(),
        Status::Interrupted
    );

    let out = bin()
        .args(["train", "--resume", "--epochs", "3", "--out"])
        .arg(&ck)
        .arg("--experiments")
        .arg(&exp)
        .output()
        .unwrap();
    let text = ok(out, "resume");
    let info = RunInfo::load(&run).unwrap();
    assert_eq!(info.status, Status::Done, "{text}");
    assert_eq!(info.resumed, 1);
    let loaded = arclight_vae::checkpoint::load_decoder(&ck, &Device::flex()).unwrap();
    assert!(loaded.meta.training.finished);
    assert!(loaded.meta.training.epochs_completed >= 1);
    // No staging or set-aside directories left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".ck")), "{names:?}");
}
