//! `train-vae train --resume` from another working directory: paths are stored absolute, older
//! records with relative paths are resolved against the directory the run started from, and a
//! data set that moved is named with `--resume --data` (refused unless its provenance matches).

use arclight_core::record::{RunInfo, Status};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// `train-vae args` run in `cwd`; returns the output.
fn run_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train-vae"))
        .args(args)
        .current_dir(cwd)
        .env("ARCLIGHT_QUIET", "1")
        .output()
        .unwrap()
}

fn ok(o: Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{what} failed:\n{text}");
    text
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Rewrite the stored config of `ck`'s resume state as a run recorded before paths were stored
/// absolute would have it.
fn make_paths_relative(ck: &Path, data: &str, out: &str, experiments: &str) {
    let path = ck.join("training/state.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["config"]["data"] = data.into();
    v["config"]["out"] = out.into();
    v["config"]["experiments"] = experiments.into();
    std::fs::write(&path, v.to_string()).unwrap();
}

#[test]
fn resume_from_another_directory_finds_the_data() {
    let a = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir(a.path().join("datasets")).unwrap();
    ok(
        run_in(
            a.path(),
            &[
                "synth",
                "--n",
                "24",
                "--seed",
                "5",
                "--split",
                "16,4,4",
                "--out",
                "datasets/synth.h5",
            ],
        ),
        "synth",
    );
    // started in A with relative paths
    let mut args = vec![
        "train",
        "--data",
        "datasets/synth.h5",
        "--out",
        "ck",
        "--epochs",
        "1",
        "--experiments",
        "exp",
    ];
    args.extend(TINY);
    ok(run_in(a.path(), &args), "train");
    let ck: PathBuf = a.path().join("ck");
    let runs: Vec<PathBuf> = std::fs::read_dir(a.path().join("exp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);

    // resumed from elsewhere: the stored paths are absolute
    let text = ok(
        run_in(
            elsewhere.path(),
            &["train", "--resume", "--out", s(&ck), "--epochs", "2"],
        ),
        "resume from elsewhere",
    );
    assert!(text.contains("best epoch"), "{text}");
    let info = RunInfo::load(&runs[0]).unwrap();
    assert_eq!((info.status, info.resumed), (Status::Done, 1));
    assert!(
        !elsewhere.path().join("experiments").exists(),
        "the record must be continued, not started anew elsewhere"
    );

    // a run recorded with relative paths (before they were stored absolute): found through
    // the directory it started from (--out now minus the stored relative --out)
    make_paths_relative(&ck, "datasets/synth.h5", "ck", "exp");
    ok(
        run_in(
            elsewhere.path(),
            &["train", "--resume", "--out", s(&ck), "--epochs", "3"],
        ),
        "resume of a relative record",
    );
    assert_eq!(RunInfo::load(&runs[0]).unwrap().resumed, 2);

    // the data set moved: the error says how to point at it
    let moved = a.path().join("moved.h5");
    std::fs::rename(a.path().join("datasets/synth.h5"), &moved).unwrap();
    make_paths_relative(&ck, "datasets/synth.h5", "ck", "exp");
    let o = run_in(
        elsewhere.path(),
        &["train", "--resume", "--out", s(&ck), "--epochs", "4"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("datasets/synth.h5, is not found")
            && err.contains("--resume --data PATH"),
        "{err}"
    );
    // another data set is refused, the moved one accepted
    ok(
        run_in(
            a.path(),
            &[
                "synth", "--n", "24", "--seed", "6", "--split", "16,4,4", "--out", "other.h5",
            ],
        ),
        "synth other",
    );
    let o = run_in(
        elsewhere.path(),
        &[
            "train",
            "--resume",
            "--out",
            s(&ck),
            "--epochs",
            "4",
            "--data",
            s(&a.path().join("other.h5")),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("provenance differs"),
        "{err}"
    );
    ok(
        run_in(
            elsewhere.path(),
            &[
                "train",
                "--resume",
                "--out",
                s(&ck),
                "--epochs",
                "4",
                "--data",
                s(&moved),
            ],
        ),
        "resume with the moved data set",
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("training/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["config"]["data"], moved.display().to_string());
    assert_eq!(state["epochs_completed"], 4);
}

#[test]
fn resume_refuses_a_data_set_remade_at_its_path() {
    let a = tempfile::tempdir().unwrap();
    let synth = |seed: &str| {
        ok(
            run_in(
                a.path(),
                &[
                    "synth", "--n", "24", "--seed", seed, "--split", "16,4,4", "--out", "synth.h5",
                ],
            ),
            "synth",
        )
    };
    synth("5");
    let mut args = vec![
        "train",
        "--data",
        "synth.h5",
        "--out",
        "ck",
        "--epochs",
        "1",
        "--experiments",
        "exp",
    ];
    args.extend(TINY);
    ok(run_in(a.path(), &args), "train");
    let resume = ["train", "--resume", "--out", "ck", "--epochs", "2"];

    // another data set written to the same path: refused, naming both files
    synth("6");
    let o = run_in(a.path(), &resume);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("synth.h5 has changed")
            && err.contains("ck/checkpoint.json")
            && err.contains("provenance differs")
            && err.contains("--resume --data PATH"),
        "{err}"
    );
    // the same data set made again: resumed
    synth("5");
    ok(
        run_in(a.path(), &resume),
        "resume with the original data set",
    );
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(a.path().join("ck/training/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["epochs_completed"], 2);
}
