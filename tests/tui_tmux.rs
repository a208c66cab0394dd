//! End-to-end: the real `arclight` binary in a detached tmux session of fixed size (its own
//! tmux server socket), driven with send-keys and read with capture-pane, on a copy of the
//! fixture records. Checks that runs appear live, the views open, and that after `q` the
//! terminal is back to normal (alternate screen left, raw mode off).
//!
//! tmux is required (CI installs it); without it this test fails with instructions.

mod support;

use arclight_core::record::{Run, RunKind, RunSpec};
use std::path::Path;
use std::process::Command;
use support::{Tmux, copy_dir};

/// The shell line run in the pane: arclight on a copy of the fixtures, then its exit code and
/// the terminal state (`stty -a`) once it has exited. Returns (pane command, root, stty file).
fn pane_command(env: &str) -> (String, tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    copy_dir(&fixtures(), root.path());
    let state = root.path().join("stty.txt");
    let cmd = format!(
        "{env} '{}' --root '{}'; echo EXITED=$?; stty -a > '{}'; echo STTY-SAVED; sleep 60",
        env!("CARGO_BIN_EXE_arclight"),
        root.path().display(),
        state.display()
    );
    (cmd, root, state)
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/experiments")
}

/// Alternate screen left, mouse reporting off, and the line discipline back in cooked mode.
fn assert_restored(tmux: &Tmux, stty_file: &Path) {
    assert_eq!(tmux.flag("alternate_on"), "0", "alternate screen not left");
    assert_eq!(tmux.flag("mouse_any_flag"), "0", "mouse reporting left on");
    let stty = std::fs::read_to_string(stty_file).unwrap();
    let flags: Vec<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig"] {
        assert!(
            flags.contains(&flag),
            "terminal left in raw mode ({flag} off):\n{stty}"
        );
    }
}

#[test]
fn drive_the_real_binary_in_tmux() {
    let (cmd, root, state) = pane_command("");
    let tmux = Tmux::start(100, 30, &cmd);

    // wait for every needle at once: a capture can land mid-redraw, so a needle found early
    // says nothing about the rows below it
    tmux.wait_for(&[
        "10 runs, 0 running",
        "train-20261120T131500-ld32",
        "interrupted",
        "unreadable",
    ]);
    assert_eq!(
        tmux.flag("alternate_on"),
        "1",
        "the interface should use the alternate screen"
    );
    assert_eq!(
        tmux.flag("mouse_any_flag"),
        "1",
        "the interface should ask for mouse events"
    );

    tmux.keys(&["?"]);
    tmux.wait_for(&["compare marked runs"]);
    tmux.keys(&["?"]);

    // open the finished fit through the text filter
    tmux.keys(&["/"]);
    tmux.keys(&["mock"]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["posterior (8 parameters)", "MAP loss (best / median start)"]);
    tmux.keys(&["Escape"]);
    tmux.keys(&["Escape"]); // back in the list: clear the filter

    // a training view, then ablation
    tmux.keys(&["/"]);
    tmux.keys(&["ld16"]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["ELBO (train / val)", "best epoch 19"]);
    tmux.keys(&["Escape"]);
    tmux.keys(&["Escape"]);
    tmux.keys(&["a"]);
    tmux.wait_for(&["group by ◀ architecture.latent_dim ▶"]);
    tmux.keys(&["Escape"]);

    // a run appearing while the interface is open shows up on the next refresh
    copy_dir(
        &fixtures().join("train-20261120T101500-ld16"),
        &root.path().join("train-20261122T000000-fresh"),
    );
    tmux.wait_for(&["11 runs", "train-20261122T000000-fresh"]);

    // a live run (this test process stands in for train-vae): lines appended while it is shown
    // appear within a refresh
    let spec = RunSpec {
        kind: RunKind::Train,
        name: "live",
        config: serde_json::json!({"epochs": 3, "patience": 2}),
        device: "flex".into(),
        seed: None,
    };
    let mut run = Run::create(root.path(), spec).unwrap();
    run.log(
        "epoch",
        serde_json::json!({"epoch": 1, "val_elbo": -901.5, "best_epoch": 1, "patience_left": 2}),
    )
    .unwrap();
    tmux.wait_for(&["12 runs, 1 running"]);
    tmux.keys(&["/"]);
    tmux.keys(&["live"]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["epoch 1/3", "-901.5"]);
    run.log(
        "epoch",
        serde_json::json!({"epoch": 2, "val_elbo": -777.5, "best_epoch": 2, "patience_left": 2}),
    )
    .unwrap();
    tmux.wait_for(&["epoch 2/3", "-777.5", "best epoch 2"]);
    run.finish(serde_json::json!({"best_val_elbo": -777.5, "best_epoch": 2, "epochs": 2}))
        .unwrap();
    tmux.wait_for(&["done", "0 running"]);

    tmux.keys(&["q"]);
    let s = tmux.wait_for(&["EXITED=0", "STTY-SAVED"]);
    assert!(
        !s.contains("arclight ·"),
        "the interface should be gone after q:\n{s}"
    );
    assert_restored(&tmux, &state);
}

#[test]
fn a_panic_restores_the_terminal_too() {
    let (cmd, _root, state) = pane_command(&format!("{}=1", arclight::tui::PANIC_ENV));
    let tmux = Tmux::start(100, 30, &cmd);
    // the panic message lands on the normal screen, then the shell carries on
    let s = tmux.wait_for(&["EXITED=101", "STTY-SAVED"]);
    assert!(s.contains("panicking after the first frame"), "{s}");
    assert_restored(&tmux, &state);
}

#[test]
fn sigterm_restores_the_terminal() {
    let (cmd, root, state) = pane_command("");
    let tmux = Tmux::start(100, 30, &cmd);
    tmux.wait_for(&["train-"]);
    // The arclight process of this pane: the one started with this test's unique --root.
    let pattern = format!("arclight.* {}", root.path().display());
    let out = Command::new("pkill")
        .args(["-TERM", "-f", &pattern])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pkill found no arclight process for {pattern}"
    );
    let s = tmux.wait_for(&["EXITED=0", "STTY-SAVED"]);
    assert!(s.contains("EXITED=0"), "{s}");
    assert_restored(&tmux, &state);
}
