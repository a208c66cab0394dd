//! End-to-end: the real `arclight` binary in a detached tmux session of fixed size (its own
//! tmux server socket), driven with send-keys and read with capture-pane, on a copy of the
//! fixture records. Checks that runs appear live, the views open, and that after `q` the
//! terminal is back to normal (alternate screen left, raw mode off).
//!
//! tmux is required (CI installs it); without it this test fails with instructions.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A private tmux server, killed on drop (also when an assertion fails).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, command: &str) -> Tmux {
        match Command::new("tmux").arg("-V").output() {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "this end-to-end test needs tmux on PATH: install it (apt-get install -y tmux) and rerun"
            ),
        }
        let t = Tmux {
            socket: format!("arclight-e2e-{}", std::process::id()),
        };
        let out = t.run(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
        // give the program time to read each key on its own (a lone Esc must not merge
        // with the next key into an Alt sequence)
        std::thread::sleep(Duration::from_millis(150));
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }

    /// Wait until the screen shows every needle (10 s at most).
    fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {needles:?}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn drive_the_real_binary_in_tmux() {
    let root = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/experiments");
    copy_dir(&fixtures, root.path());
    let state = root.path().join("stty.txt");
    let command = format!(
        "'{}' --root '{}'; echo EXITED=$?; stty -a > '{}'; echo STTY-SAVED; sleep 60",
        env!("CARGO_BIN_EXE_arclight"),
        root.path().display(),
        state.display()
    );
    let tmux = Tmux::start(100, 30, &command);

    let s = tmux.wait_for(&["10 runs, 0 running", "train-20261120T131500-ld32"]);
    assert!(s.contains("interrupted") && s.contains("unreadable"), "{s}");
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "e2e", "#{alternate_on}"])
            .stdout,
        b"1\n",
        "TUI should use the alternate screen"
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
        &fixtures.join("train-20261120T101500-ld16"),
        &root.path().join("train-20261122T000000-fresh"),
    );
    tmux.wait_for(&["11 runs", "train-20261122T000000-fresh"]);

    tmux.keys(&["q"]);
    let s = tmux.wait_for(&["EXITED=0", "STTY-SAVED"]);
    assert!(
        !s.contains("arclight ·"),
        "the interface should be gone after q:\n{s}"
    );
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "e2e", "#{alternate_on}"])
            .stdout,
        b"0\n",
        "alternate screen not left"
    );
    let stty = std::fs::read_to_string(&state).unwrap();
    let flags: Vec<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig"] {
        assert!(
            flags.contains(&flag),
            "terminal left in raw mode ({flag} off):\n{stty}"
        );
    }
}
