//! `infer study` in shards: the summary of hand-made result files (known coverage, z and ranks),
//! sharded and single-process runs agreeing system by system, a killed study resumed to the same merged
//! result, refusals (other settings, other studies), and the Slurm scripts of `examples/slurm/` run
//! locally on a 4-system `--quick` study in two shards.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn infer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_infer"));
    c.env("ARCLIGHT_QUIET", "1");
    c
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml")
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?} failed:\n{}", text(&o));
    text(&o)
}

fn fails(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(!o.status.success(), "{c:?} should fail:\n{}", text(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

/// `infer/tests/fixtures/study/`: five systems in two shards with two parameters, truths 1 and 2, sd
/// 0.1 (system 4's HMC failed: no parameters). By hand, from the files:
///
/// | system | theta_e mean, z, rank | 50 68 90 95 in? | gamma mean, z, rank | 50 68 90 95 in? |
/// |---|---|---|---|---|
/// | 0 | 1.00, 0, 50   | y y y y | 2.0, 0, 60  | y y y y |
/// | 1 | 1.15, 1.5, 3  | n n y y | 2.3, 3, 0   | n n n n |
/// | 2 | 0.80, -2, 97  | n n n y (truth on the edge) | 2.0, 0, 40 | y y y y |
/// | 3 | 1.05, 0.5, 25 | y y y y | 1.9, -1, 80 | n y y y |
///
/// theta_e: mean error 0, mu_z 0, sd_z sqrt(6.5 / 3), coverage 2/4, 2/4, 3/4, 4/4, R-hat mean 1.0065 max
/// 1.02, bulk ESS mean 837.5 min 350; gamma: mean error 0.05, mu_z 0.5, sd_z sqrt(3), coverage 2/4, 3/4,
/// 3/4, 3/4. Pooled: 4/8, 5/8, 6/8, 7/8 with se sqrt(p (1 - p) / 8). Rank bins (rank * 10 / 100):
/// theta 5, 0, 9, 2 and gamma 6, 0, 4, 8. z bins (z + 4) / 0.5: theta 8, 11, 4, 9 and gamma 8, 14, 8, 6.
/// Wall times 10, 20, 30, 40, 5 s: mean 21, median 20, max 40. Source residuals 0.1 (system 0), 0.3 (1).
#[test]
fn summarize_fixture_results_by_hand() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/study");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("summary");
    let printed = ok(infer()
        .args(["study", "summarize"])
        .arg(fx.join("shard-1-of-2"))
        .arg(fx.join("shard-2-of-2"))
        .arg("--out")
        .arg(&out));
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["systems"], 5);
    assert_eq!(s["results"], 5);
    assert_eq!(s["fits"], 4);
    assert_eq!(s["failed"], serde_json::json!([4]));
    assert_eq!(s["complete"], true);
    assert!(s["missing"].as_array().unwrap().is_empty());
    // systems 0 and 1 carry source residuals 0.1 and 0.3 (real-galaxy sources)
    let r = &s["source_residual"];
    assert_eq!(r["n"], 2, "{r}");
    assert!(close(&r["median"], 0.2) && close(&r["mean"], 0.2) && close(&r["max"], 0.3));
    assert!(s["duplicates"].as_array().unwrap().is_empty());

    let t = &s["table"]["lens.theta_e"];
    assert_eq!(t["n"], 4);
    assert!(close(&t["mean_error"], 0.0), "{t}");
    assert!(close(&t["mu_z"], 0.0));
    assert!(close(&t["sd_z"], (6.5f64 / 3.0).sqrt()));
    assert!(close(&t["rhat_mean"], 1.0065) && close(&t["rhat_max"], 1.02));
    assert!(close(&t["ess_mean"], 837.5) && close(&t["ess_min"], 350.0));
    let cov = |row: &Value, k: &str| row["coverage"][k]["fraction"].as_f64().unwrap();
    assert_eq!(
        ["50", "68", "90", "95"].map(|k| cov(t, k)),
        [0.5, 0.5, 0.75, 1.0]
    );
    assert!(close(
        &t["coverage"]["68"]["se"],
        (0.68f64 * 0.32 / 4.0).sqrt()
    ));
    let g = &s["table"]["lens.gamma"];
    assert!(close(&g["mean_error"], 0.05) && close(&g["mu_z"], 0.5));
    assert!(close(&g["sd_z"], 3f64.sqrt()));
    assert_eq!(
        ["50", "68", "90", "95"].map(|k| cov(g, k)),
        [0.5, 0.75, 0.75, 0.75]
    );
    // the calibration curve pools both parameters
    let cal: Vec<f64> = s["calibration"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fraction"].as_f64().unwrap())
        .collect();
    assert_eq!(cal, [0.5, 0.625, 0.75, 0.875]);
    assert!(close(&s["calibration"][0]["se"], (0.25f64 / 8.0).sqrt()));
    // SBC ranks and z-scores
    let counts = |v: &Value| -> Vec<u64> {
        v["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect()
    };
    assert_eq!(counts(&t["rank_histogram"]), [1, 0, 1, 0, 0, 1, 0, 0, 0, 1]);
    assert_eq!(counts(&s["rank_histogram"]), [2, 0, 1, 0, 1, 1, 1, 0, 1, 1]);
    let mut z = vec![0; 16];
    for b in [8, 11, 4, 9, 8, 14, 8, 6] {
        z[b] += 1;
    }
    assert_eq!(counts(&s["z_histogram"]), z);
    assert!(close(
        &s["z_histogram"]["expected"][8],
        8.0 * 0.19146246127401312
    ));
    // times and flags
    let tm = &s["time_per_system_s"];
    assert!(close(&tm["mean"], 21.0) && close(&tm["median"], 20.0) && close(&tm["max"], 40.0));
    let flagged: Vec<u64> = s["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["index"].as_u64().unwrap())
        .collect();
    assert_eq!(flagged, [3, 4]);
    assert!(printed.contains("FLAGGED system 3 (seed 103): R-hat 1.020 >= 1.01 (lens.theta_e)"));
    assert!(printed.contains("FLAGGED system 4 (seed 104): stage hmc failed"));
    // CSV and figures
    let csv = std::fs::read_to_string(out.join("artifacts/table.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("lens.theta_e,4,") && l.contains(",0.5,0.25,0.5,")),
        "{csv}"
    );
    let systems = std::fs::read_to_string(out.join("artifacts/systems.csv")).unwrap();
    assert_eq!(systems.lines().count(), 6);
    for png in ["calibration", "z_hist", "ranks", "z_scores"] {
        assert!(out.join(format!("artifacts/{png}.png")).exists(), "{png}");
    }
    // the summary is a run record the tracker lists as flagged
    let run = read_json(&out.join("run.json"));
    assert_eq!(
        (run["kind"].as_str(), run["status"].as_str()),
        (Some("study"), Some("done"))
    );
    assert!(
        run["flags"][0]
            .as_str()
            .unwrap()
            .starts_with("2 of 5 systems flagged: 3 (R-hat")
    );
    // summarizing again into the same folder rewrites it; a foreign non-empty folder is refused
    ok(infer()
        .args(["study", "summarize"])
        .arg(fx.join("shard-1-of-2"))
        .arg("--out")
        .arg(&out));
    assert_eq!(
        read_json(&out.join("summary.json"))["missing"],
        serde_json::json!([1, 3])
    );
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let err = fails(
        infer()
            .args(["study", "summarize"])
            .arg(fx.join("shard-1-of-2"))
            .arg("--out")
            .arg(&foreign),
    );
    assert!(err.contains("not empty"), "{err}");
}

/// Settings small enough for seconds per system; still every stage of the pipeline.
const TINY: [&str; 11] = [
    "--quick",
    "--map-starts",
    "4",
    "--map-steps",
    "30",
    "--polish-iters",
    "50",
    "--vi-steps",
    "10",
    "--hmc-burn",
    "10",
];

fn study(out: &Path, extra: &[&str]) -> Command {
    study_seed(out, 5, extra)
}

fn study_seed(out: &Path, seed: u64, extra: &[&str]) -> Command {
    let mut c = infer();
    c.current_dir(repo())
        .args(["study", "--model"])
        .arg(model())
        .args(["--n", "3", "--seed", &seed.to_string(), "--out"])
        .arg(out)
        .args(TINY)
        .args(["--hmc-samples", "10"])
        .args(extra);
    c
}

/// Results of a study directory by file name, without what depends on the machine (timings, threads).
fn results(dirs: &[&Path]) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    for d in dirs {
        for e in std::fs::read_dir(d.join("results")).unwrap() {
            let p = e.unwrap().path();
            let mut v = read_json(&p);
            v["wall_s"] = Value::from(0);
            v["threads"] = Value::from(0);
            for s in v["stages"].as_object_mut().unwrap().values_mut() {
                s.as_object_mut().unwrap().remove("time_s");
            }
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(out.insert(name, v).is_none());
        }
    }
    out
}

/// The summary without what depends on the inputs' paths, the machine or the figures.
fn merged_figures(dir: &Path) -> Value {
    let mut s = read_json(&dir.join("summary.json"));
    for k in ["inputs", "time_per_system_s", "plots"] {
        s.as_object_mut().unwrap().remove(k);
    }
    s
}

/// Each system depends on its seed alone: two shards (one of them on one thread) give the single
/// process's results; a study killed inside its second system resumes (the partial system restarts)
/// to the same results and merged summary; resuming with another seed, reusing the folder without
/// --resume, and merging another study are refused; duplicates and missing systems are reported.
#[test]
fn shards_and_a_killed_study_agree_with_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b1, b2, c) = (
        tmp.path().join("a"),
        tmp.path().join("b1"),
        tmp.path().join("b2"),
        tmp.path().join("c"),
    );
    ok(&mut study(&a, &[]));
    ok(&mut study(&b1, &["--shard", "1/2"]));
    ok(&mut study(&b2, &["--shard", "2/2", "--threads", "1"]));
    let single = results(&[&a]);
    assert_eq!(single.len(), 3);
    assert_eq!(results(&[&b1, &b2]), single);
    assert_eq!(
        read_json(&b2.join("results/system-000001.json"))["threads"],
        1
    );

    // kill the study while system 1 runs
    let mut child = study(&c, &[]).spawn().unwrap();
    let t0 = Instant::now();
    while !c.join("systems/000001").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "system 1 never started"
        );
        if child.try_wait().unwrap().is_some() {
            panic!("the study ended before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(c.join("results/system-000000.json").exists());
    assert!(!c.join("results/system-000001.json").exists());
    // not without --resume, not with another seed
    let err = fails(&mut study(&c, &[]));
    assert!(err.contains("--resume"), "{err}");
    let err = fails(&mut study_seed(&c, 6, &["--resume"]));
    assert!(
        err.contains("different settings") && err.contains("seed: 5 vs 6"),
        "{err}"
    );
    let printed = ok(&mut study(&c, &["--resume"]));
    assert!(
        printed.contains("2 systems fitted now, 1 kept from before"),
        "{printed}"
    );
    assert_eq!(results(&[&c]), single);
    assert_eq!(read_json(&c.join("run.json"))["resumed"], 1);

    // the merged summaries of the shards and of the resumed study are the same
    let (m1, m2) = (tmp.path().join("m1"), tmp.path().join("m2"));
    ok(infer()
        .args(["study", "summarize"])
        .arg(&b1)
        .arg(&b2)
        .arg("--out")
        .arg(&m1));
    ok(infer()
        .args(["study", "summarize"])
        .arg(&c)
        .arg("--out")
        .arg(&m2));
    assert_eq!(merged_figures(&m1), merged_figures(&m2));
    assert_eq!(merged_figures(&m1)["results"], 3);

    // duplicates and missing systems are reported, not hidden
    let m3 = tmp.path().join("m3");
    let printed = ok(infer()
        .args(["study", "summarize"])
        .arg(&a)
        .arg(&b1)
        .arg("--out")
        .arg(&m3));
    let dup: Vec<u64> = read_json(&m3.join("summary.json"))["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[0].as_u64().unwrap())
        .collect();
    assert_eq!(dup, [0, 2]);
    assert!(printed.contains("duplicate: system 0 in"), "{printed}");
    let m4 = tmp.path().join("m4");
    let printed = ok(infer()
        .args(["study", "summarize"])
        .arg(&b1)
        .arg("--out")
        .arg(&m4));
    assert_eq!(
        read_json(&m4.join("summary.json"))["missing"],
        serde_json::json!([1])
    );
    assert!(printed.contains("missing: 1 system(s): 1"), "{printed}");

    // a shard of another study (here: its recorded seed edited) is refused, nothing written
    let d = tmp.path().join("d");
    std::fs::create_dir_all(d.join("results")).unwrap();
    let mut sf = read_json(&b2.join("study.json"));
    sf["identity"]["seed"] = Value::from(6);
    std::fs::write(d.join("study.json"), sf.to_string()).unwrap();
    let m5 = tmp.path().join("m5");
    let err = fails(
        infer()
            .args(["study", "summarize"])
            .arg(&b1)
            .arg(&d)
            .arg("--out")
            .arg(&m5),
    );
    assert!(
        err.contains("different studies") && err.contains("seed: 5 vs 6"),
        "{err}"
    );
    assert!(!m5.exists());
}

/// `examples/slurm/`: the array script run locally as tasks 0 and 1 of a 2-shard, 4-system `--quick`
/// study (concurrently, one thread each, as two array tasks would), then the summary script; and
/// `submit.sh` against a stand-in `sbatch` that records its arguments.
#[test]
fn slurm_scripts_run_a_quick_two_shard_study() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("study");
    let scripts = repo().join("examples/slurm");
    let env = |c: &mut Command| {
        c.current_dir(repo())
            .env("ARCLIGHT_QUIET", "1")
            .env("STUDY_DIR", &dir)
            .env("MODEL", model())
            .env("NSYS", "4")
            .env("NSHARDS", "2")
            .env("SEED", "0")
            .env("STUDY_ARGS", "--quick")
            .env("INFER", env!("CARGO_BIN_EXE_infer"))
            .env("SLURM_CPUS_PER_TASK", "1");
    };
    let tasks: Vec<_> = (0..2)
        .map(|t| {
            let mut c = Command::new("bash");
            c.arg(scripts.join("study-array.sbatch"))
                .env("SLURM_ARRAY_TASK_ID", t.to_string());
            env(&mut c);
            c.spawn().unwrap()
        })
        .collect();
    for mut t in tasks {
        assert!(t.wait().unwrap().success());
    }
    let mut c = Command::new("bash");
    c.arg(scripts.join("summarize.sbatch"));
    env(&mut c);
    let printed = ok(&mut c);

    let s = read_json(&dir.join("summary/summary.json"));
    assert_eq!(
        (s["results"].as_u64(), s["complete"].as_bool()),
        (Some(4), Some(true))
    );
    assert_eq!(s["table"].as_object().unwrap().len(), 22);
    assert_eq!(s["identity"]["quick"], true);
    for (k, i) in [(1, 0), (2, 1), (1, 2), (2, 3)] {
        let r = read_json(&dir.join(format!("shard-{k}-of-2/results/system-{i:06}.json")));
        assert_eq!(
            (r["seed"].as_u64(), r["threads"].as_u64()),
            (Some(i), Some(1))
        );
        // 4 chains x 40 draws cannot reach ESS 400: a quick system is never silently done
        let flags = r["flags"].as_array().unwrap();
        assert!(flags.iter().any(|f| f["check"] == "ess"), "{r}");
        // the system's own fit record carries the flags too
        let fit = read_json(&dir.join(format!("shard-{k}-of-2/systems/{i:06}/fit/run.json")));
        assert_eq!(fit["flags"].as_array().unwrap().len(), flags.len());
    }
    assert_eq!(s["flagged"].as_array().unwrap().len(), 4);
    assert!(printed.contains("FLAGGED system 0 (seed 0)"), "{printed}");
    let shard = read_json(&dir.join("shard-1-of-2/run.json"));
    assert!(
        shard["flags"][0]
            .as_str()
            .unwrap()
            .starts_with("2 of 2 systems flagged")
    );
    for png in ["calibration", "z_hist", "ranks", "z_scores"] {
        assert!(dir.join(format!("summary/artifacts/{png}.png")).exists());
    }

    // submit.sh: the array spans the shards, the summary waits for all of them (afterok)
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = tmp.path().join("sbatch.log");
    std::fs::write(
        bin.join("sbatch"),
        format!(
            "#!/usr/bin/env bash\necho \"$*\" >> {}\nif [[ \"$*\" == *--array* ]]; then echo 4242; else echo 4243; fi\n",
            log.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(bin.join("sbatch"))
        .status()
        .unwrap();
    let mut c = Command::new("bash");
    c.arg(scripts.join("submit.sh"))
        .arg("--cpus-per-task=8")
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        );
    env(&mut c);
    let printed = ok(&mut c);
    assert!(
        printed.contains("array job 4242 (2 shards), summary job 4243"),
        "{printed}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls[0].contains("--array=0-1")
            && calls[0].contains("--cpus-per-task=8")
            && calls[0].ends_with("study-array.sbatch"),
        "{}",
        calls[0]
    );
    assert!(
        calls[1].contains("--dependency=afterok:4242") && calls[1].ends_with("summarize.sbatch"),
        "{}",
        calls[1]
    );
}

/// What a user hits when the set-up is wrong or a study is run twice: a missing checkpoint stops the
/// shard before anything is written (`study_real_sources` does the same for images); a shard with no systems
/// and a summary folder as `--out` are refused; a shard whose every system failed exits non-zero
/// and `--resume --retry-failed` runs those systems again; a second process resuming a shard that is
/// still being written is refused.
#[test]
fn set_up_errors_failed_systems_and_a_second_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let paper = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/chianese2020.toml");
    // a checkpoint that does not exist: nothing is created
    let out = tmp.path().join("no-checkpoint");
    let mut c = infer();
    c.args(["study", "--model"])
        .arg(&paper)
        .args(["--n", "2", "--quick", "--checkpoint"])
        .arg(tmp.path().join("absent"))
        .arg("--out")
        .arg(&out);
    let err = fails(&mut c);
    assert!(
        err.contains("study set-up") && err.contains("absent"),
        "{err}"
    );
    assert!(!out.exists());
    // a shard that holds no system
    let err = fails(
        infer()
            .current_dir(repo())
            .args(["study", "--model"])
            .arg(model())
            .args(["--n", "1", "--shard", "2/2", "--quick", "--out"])
            .arg(tmp.path().join("empty-shard")),
    );
    assert!(err.contains("holds no system"), "{err}");

    // a study of MAP only (seconds), its results then marked failed by hand
    let out = tmp.path().join("s");
    ok(&mut study(&out, &["--stages", "map"]));
    for i in 0..3 {
        let p = out.join(format!("results/system-{i:06}.json"));
        let mut r = read_json(&p);
        r["stages"]["map"] = serde_json::json!({"status": "failed", "error": "disk vanished"});
        std::fs::write(&p, serde_json::to_string(&r).unwrap()).unwrap();
    }
    let err = fails(&mut study(&out, &["--stages", "map", "--resume"]));
    assert!(
        err.contains("3 of 3 systems of shard 1/1 failed")
            && err.contains("disk vanished")
            && err.contains("--retry-failed"),
        "{err}"
    );
    assert_eq!(read_json(&out.join("run.json"))["status"], "failed");
    let said = ok(&mut study(
        &out,
        &["--stages", "map", "--resume", "--retry-failed"],
    ));
    assert!(said.contains("3 systems fitted now, 0 kept"), "{said}");
    for i in 0..3 {
        let r = read_json(&out.join(format!("results/system-{i:06}.json")));
        assert_eq!(r["stages"]["map"]["status"], "ok");
    }

    // the study's summary folder is not taken over by a study
    let summary = tmp.path().join("summary");
    ok(infer()
        .args(["study", "summarize"])
        .arg(&out)
        .arg("--out")
        .arg(&summary));
    let err = fails(&mut study(&summary, &["--stages", "map"]));
    assert!(err.contains("not a study directory"), "{err}");

    // a second process on a shard that is still being written
    let busy = tmp.path().join("busy");
    let mut first = study(&busy, &["--stages", "map"]).spawn().unwrap();
    let t0 = Instant::now();
    while !busy.join("study.json").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the first study never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = study(&busy, &["--stages", "map", "--resume"])
        .output()
        .unwrap();
    let finished_first = first.try_wait().unwrap().is_some();
    if !finished_first {
        assert!(!second.status.success(), "{}", text(&second));
        assert!(
            text(&second).contains("still being written by process"),
            "{}",
            text(&second)
        );
    }
    assert!(first.wait().unwrap().success());
}
