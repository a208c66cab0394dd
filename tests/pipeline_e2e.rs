//! The whole pipeline through the real binaries, on the shipped real COSMOS stamps:
//! `train-vae prepare` -> `train-vae train` (tiny network, 2 epochs) -> `train-vae eval` ->
//! `infer mock` + `infer fit` with that checkpoint as the VAE source -> `arclight runs` and the
//! TUI in tmux on the records those runs wrote.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::Tmux;

/// A binary of the workspace, next to this test's own `deps/` folder.
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo test --workspace` (it builds every binary) or `cargo build --workspace`",
        p.display()
    );
    p
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.env("ARCLIGHT_QUIET", "1").output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn prepare_train_eval_mock_fit_and_track() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let exp = t.join("experiments");
    let cosmos = repo().join("datasets/cosmos-example");

    // 1. Real stamps (cuts relaxed so the few shipped stamps survive) plus synthetic galaxies.
    let h5 = t.join("set.h5");
    let out = run(Command::new(bin("train-vae"))
        .arg("prepare")
        .arg("--catalog")
        .arg(cosmos.join("btk_26_extension/real_galaxy_catalog_26_extension_example.fits"))
        .arg("--catalog")
        .arg(cosmos.join("paltas_23.5_trimmed/real_galaxy_catalog_23.5.fits"))
        .args([
            "--snr-min",
            "0",
            "--snr-max",
            "inf",
            "--synth",
            "120",
            "--split",
            "8,1,1",
            "--out",
        ])
        .arg(&h5)
        .arg("--experiments")
        .arg(&exp));
    assert!(out.contains("kept"), "{out}");

    // 2. A tiny VAE, 2 epochs, with a run record.
    let ck = t.join("ck");
    run(Command::new(bin("train-vae"))
        .args(["train", "--data"])
        .arg(&h5)
        .arg("--out")
        .arg(&ck)
        .args([
            "--epochs",
            "2",
            "--widths",
            "8,16,32,64",
            "--head-width",
            "64",
            "--latent-dim",
            "8",
            "--lr",
            "3e-4",
        ])
        .arg("--experiments")
        .arg(&exp));
    assert!(ck.join("prior.json").exists() && ck.join("decoder.bpk").exists());

    // 3. Evaluation: metrics and the two figures.
    let ev = t.join("eval");
    run(Command::new(bin("train-vae"))
        .args(["eval", "--checkpoint"])
        .arg(&ck)
        .arg("--data")
        .arg(&h5)
        .arg("--out")
        .arg(&ev)
        .arg("--experiments")
        .arg(&exp));
    for f in ["metrics.json", "reconstructions.png", "rotation.png"] {
        assert!(ev.join(f).exists(), "eval did not write {f}");
    }

    // 4. A lens with that checkpoint as its source, and a short fit of it.
    let mock = t.join("mock");
    run(Command::new(bin("infer"))
        .args(["mock", "--model"])
        .arg(repo().join("infer/models/demo.toml"))
        .arg("--checkpoint")
        .arg(&ck)
        .args(["--seed", "4", "--out"])
        .arg(&mock));
    let fit = run(Command::new(bin("infer"))
        .args(["fit", "--obs"])
        .arg(mock.join("obs.fits"))
        .arg("--model")
        .arg(repo().join("infer/models/demo.toml"))
        .arg("--checkpoint")
        .arg(&ck)
        .arg("--experiments")
        .arg(&exp)
        .args([
            "--map-starts",
            "4",
            "--map-steps",
            "20",
            "--vi-steps",
            "10",
            "--vi-samples",
            "4",
        ])
        .args(["--hmc-chains", "4", "--hmc-burn", "6", "--hmc-samples", "6"]));
    assert!(
        fit.contains("lens.theta_e") && fit.contains("figure:"),
        "{fit}"
    );

    // 5. The tracker sees both runs, as tables and as JSON.
    let list = run(Command::new(bin("arclight"))
        .args(["runs", "list", "--json", "--root"])
        .arg(&exp));
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    let runs = v
        .as_array()
        .or_else(|| v.get("runs").and_then(|r| r.as_array()))
        .expect("a list of runs");
    let kinds: Vec<String> = runs
        .iter()
        .filter_map(|r| r.get("kind").and_then(|k| k.as_str()).map(String::from))
        .collect();
    // every step keeps its record under --experiments (none leaks into the repository's tracker)
    for kind in ["prepare", "train", "eval", "fit"] {
        assert!(kinds.contains(&kind.into()), "no {kind} run: {list}");
    }
    assert!(
        runs.iter()
            .all(|r| r.get("status").and_then(|s| s.as_str()) == Some("done")),
        "{list}"
    );

    // 6. The TUI on those records: list, the training view (its val ELBO chart), back, quit.
    let cmd = format!(
        "'{}' --root '{}'; echo EXITED=$?; sleep 30",
        bin("arclight").display(),
        exp.display()
    );
    let tmux = Tmux::start(100, 30, &cmd);
    let screen = tmux.wait_for(&["train-", "fit-", "done"]);
    assert!(
        screen.contains("ck") || screen.contains("train"),
        "{screen}"
    );
    // Sort puts the newest first; find the training run with the text filter, then open it.
    tmux.keys(&["/"]);
    tmux.keys(&["t", "r", "a", "i", "n", "Enter"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["ELBO"]);
    tmux.keys(&["q"]);
    tmux.wait_for(&["EXITED=0"]);
    assert_eq!(tmux.flag("alternate_on"), "0", "alternate screen not left");
}
