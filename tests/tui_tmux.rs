//! End-to-end: the real `arclight` binary in a detached tmux session of fixed size (its own
//! tmux server socket), driven with send-keys and read with capture-pane, on a copy of the
//! fixture records. Checks that runs appear live, the views open, and that after `q` the
//! terminal is back to normal (alternate screen left, raw mode off).
//!
//! Also that the interface ends with its terminal: `tmux kill-session` (a hang-up) and SIGTERM
//! end it within a second or two, and idle it costs no CPU.
//!
//! tmux is required (CI installs it); without it this test fails with instructions.

mod support;

use arclight_core::record::{Run, RunKind, RunSpec};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
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

/// SIGTERM ends the interface with the terminal restored and exit code 143.
#[test]
fn sigterm_restores_the_terminal() {
    let (cmd, _root, state) = pane_command("echo $$ > \"$ARCLIGHT_PID_FILE\";");
    let pid_file = state.with_file_name("pid");
    let cmd = cmd.replace("$ARCLIGHT_PID_FILE", &pid_file.display().to_string());
    // the pane's shell writes its pid, then runs arclight as its child: arclight is the child
    // of that shell whose command line names this test's unique --root
    let tmux = Tmux::start(100, 30, &cmd);
    tmux.wait_for(&["train-"]);
    let shell = read_pid(&pid_file);
    let pid = Proc(child_of(shell));
    let t = Instant::now();
    assert!(kill(pid.0, libc::SIGTERM));
    // exit 128 + SIGTERM, as the shell reports a process the signal killed (it was 0)
    let s = tmux.wait_for(&["EXITED=143", "STTY-SAVED"]);
    assert!(s.contains("EXITED=143"), "{s}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "SIGTERM took {:?}",
        t.elapsed()
    );
    assert_restored(&tmux, &state);
}

/// A process this test started, killed (SIGKILL) on drop if it is still there, so a failing
/// test leaves no orphan behind.
struct Proc(u32);

impl Drop for Proc {
    fn drop(&mut self) {
        if alive(self.0) {
            kill(self.0, libc::SIGKILL);
        }
    }
}

fn kill(pid: u32, sig: i32) -> bool {
    unsafe { libc::kill(pid as i32, sig) == 0 }
}

/// `/proc/<pid>/stat` fields after the command name (state is the first).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Running (a zombie waiting for its parent counts as gone).
fn alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f[0] != "Z" && f[0] != "X")
}

/// CPU time used so far (user + system), in seconds; `None` once the process is reaped.
fn try_cpu_seconds(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    let ticks: u64 = f[11].parse::<u64>().ok()? + f[12].parse::<u64>().ok()?;
    Some(ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64)
}

/// CPU time of a process the test keeps alive.
fn cpu_seconds(pid: u32) -> f64 {
    try_cpu_seconds(pid).expect("process gone")
}

fn read_pid(file: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one child process of `parent` (from /proc/<parent>/task/*/children).
fn child_of(parent: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        if let Some(pid) = kids.split_whitespace().next() {
            return pid.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no child of {parent}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// arclight as the pane's only process (`exec`, so the pid written is arclight's) on a copy of
/// the fixtures. Returns (tmux, root, pid).
fn exec_in_pane() -> (Tmux, tempfile::TempDir, Proc) {
    let root = tempfile::tempdir().unwrap();
    copy_dir(&fixtures(), root.path());
    let pid_file: PathBuf = root.path().join("pid");
    let cmd = format!(
        "echo $$ > '{}'; exec '{}' --root '{}'",
        pid_file.display(),
        env!("CARGO_BIN_EXE_arclight"),
        root.path().display()
    );
    let tmux = Tmux::start(100, 30, &cmd);
    tmux.wait_for(&["10 runs, 0 running", "train-20261120T131500-ld32"]);
    let pid = Proc(read_pid(&pid_file));
    assert!(alive(pid.0));
    (tmux, root, pid)
}

/// Wait until `pid` is gone; returns how long that took, or `None` after `limit`.
fn gone_within(pid: u32, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if !alive(pid) {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn the_interface_ends_with_its_tmux_session() {
    let (tmux, _root, pid) = exec_in_pane();
    let out = tmux.run(&["kill-session", "-t", "e2e"]);
    assert!(out.status.success());
    let took = gone_within(pid.0, Duration::from_secs(2));
    if took.is_none() {
        // Only for the message; the process may still end (and be reaped) while we measure.
        let cpu = try_cpu_seconds(pid.0).and_then(|c0| {
            std::thread::sleep(Duration::from_secs(1));
            try_cpu_seconds(pid.0).map(|c1| c1 - c0)
        });
        panic!(
            "arclight (pid {}) still runs 2 s after its terminal went away ({})",
            pid.0,
            cpu.map_or("ended while measured".to_string(), |c| format!(
                "using {:.0}% CPU",
                c * 100.0
            ))
        );
    }
    eprintln!("arclight gone {:?} after kill-session", took.unwrap());
}

#[test]
fn sigterm_ends_the_interface_within_a_second() {
    // (that it also restores the terminal is `sigterm_restores_the_terminal`: here the pane
    // closes with the process)
    let (_tmux, _root, pid) = exec_in_pane();
    assert!(kill(pid.0, libc::SIGTERM));
    let took = gone_within(pid.0, Duration::from_secs(1));
    assert!(took.is_some(), "arclight ignored SIGTERM for 1 s");
}

#[test]
fn idle_interface_does_not_spin() {
    let (tmux, _root, pid) = exec_in_pane();
    // let the first loads settle, then measure with nothing changing on disk
    std::thread::sleep(Duration::from_secs(1));
    let c0 = cpu_seconds(pid.0);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let share = (cpu_seconds(pid.0) - c0) / t.elapsed().as_secs_f64();
    eprintln!("idle CPU {:.2}%", share * 100.0);
    assert!(share < 0.02, "idle arclight uses {:.1}% CPU", share * 100.0);
    tmux.keys(&["q"]);
    assert!(gone_within(pid.0, Duration::from_secs(2)).is_some());
}

/// arclight's exit status after its tmux session is killed, run by a pane shell that first sets
/// `trap <action> HUP` (so the shell lives to record the status).
fn exit_status_after_hang_up(trap_action: &str) -> String {
    let root = tempfile::tempdir().unwrap();
    copy_dir(&fixtures(), root.path());
    let status = root.path().join("status");
    let cmd = format!(
        "trap '{trap_action}' HUP; '{}' --root '{}'; echo $? > '{}'",
        env!("CARGO_BIN_EXE_arclight"),
        root.path().display(),
        status.display()
    );
    let tmux = Tmux::start(100, 30, &cmd);
    tmux.wait_for(&["10 runs, 0 running", "train-20261120T131500-ld32"]);
    assert!(tmux.run(&["kill-session", "-t", "e2e"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !status.exists() || std::fs::read_to_string(&status).unwrap().trim().is_empty() {
        assert!(
            Instant::now() < deadline,
            "arclight did not end after the hang-up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(&status).unwrap().trim().to_string()
}

/// A hang-up the process survives (SIGHUP ignored, as under `nohup` or a shell's `trap "" HUP`):
/// the interface notices the terminal is gone and ends normally, exit code 0. It aborted (134):
/// ratatui's cursor restore failed with EIO, `eprintln!` panicked, and the panic hook panicked.
#[test]
fn a_hang_up_with_sighup_ignored_ends_cleanly() {
    assert_eq!(exit_status_after_hang_up(""), "0");
}

/// A hang-up the process does not ignore (the pane's shell catches SIGHUP itself, so it lives to
/// report; arclight starts with the default action): the interface ends with its terminal and
/// exits 129, as a process SIGHUP killed, whichever of the hang-up and the signal it saw first.
#[test]
fn a_hang_up_exits_as_sighup() {
    assert_eq!(exit_status_after_hang_up("true"), "129");
}
