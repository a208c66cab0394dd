//! Training output in a batch job's log (stdout not a terminal): plain progress lines with
//! epoch, step, loss, ELBO, images/s and ETA while it runs, not only the final lines.

use std::path::Path;
use std::process::{Command, Output};

fn train(dir: &Path, quiet: bool) -> Output {
    let data = dir.join("synth.h5");
    if !data.exists() {
        let o = Command::new(env!("CARGO_BIN_EXE_train-vae"))
            .args([
                "synth", "--n", "24", "--seed", "5", "--split", "16,4,4", "--out",
            ])
            .arg(&data)
            .env("ARCLIGHT_QUIET", "1")
            .output()
            .unwrap();
        assert!(o.status.success());
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_train-vae"));
    c.args(["train", "--epochs", "2", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.join(if quiet { "ck-quiet" } else { "ck" }))
        .arg("--experiments")
        .arg(dir.join("exp"))
        .args([
            "--widths",
            "4,8,8,16",
            "--head-width",
            "32",
            "--latent-dim",
            "4",
            "--batch-size",
            "4",
        ])
        // a line at every step, so that a test of seconds sees the periodic ones
        .env("ARCLIGHT_LOG_INTERVAL_S", "0")
        .env_remove("ARCLIGHT_QUIET");
    if quiet {
        c.env("ARCLIGHT_QUIET", "1");
    }
    c.output().unwrap()
}

#[test]
fn training_prints_plain_progress_lines_into_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let o = train(dir.path(), false);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let steps: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("train: epoch ") && l.contains(" step "))
        .collect();
    // 16 images in batches of 4: 4 steps per epoch, 2 epochs
    assert!(steps.len() >= 8, "{out}");
    assert!(
        steps[0].starts_with("train: epoch 1/2 step 1 (batch 1/4) loss ")
            && steps[0].contains(" images/s ETA "),
        "{out}"
    );
    let epochs: Vec<&str> = out.lines().filter(|l| l.contains(" done, step ")).collect();
    assert_eq!(epochs.len(), 2, "{out}");
    assert!(
        epochs[0].starts_with("train: epoch 1/2 done, step 4: train ELBO ")
            && epochs[0].contains("val ELBO")
            && epochs[0].contains("images/s, ETA "),
        "{out}"
    );
    // the lines come before the final summary
    let last_epoch = out.find("train: epoch 2/2 done").unwrap();
    assert!(
        last_epoch < out.find("trained: best epoch").unwrap(),
        "{out}"
    );

    // ARCLIGHT_QUIET (tests, CI) keeps the log to the final lines
    let o = train(dir.path(), true);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(!out.contains("train: epoch"), "{out}");
}
