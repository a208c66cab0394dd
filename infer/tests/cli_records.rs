//! What `infer fit` reports and records: a MAP-only fit's named physical values (with Laplace widths
//! where the Hessian determines them) and only the stages that ran; warnings about the truths and
//! the latent prior on the console and in the record.

mod tiny_vae;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn infer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_infer"));
    c.env("ARCLIGHT_QUIET", "1");
    c
}

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Run and return (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run infer");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A mock of `model` (with `checkpoint` for a VAE model) in `dir/<name>`.
fn mock(dir: &Path, name: &str, model: &Path, checkpoint: Option<&Path>) -> PathBuf {
    let out = dir.join(name);
    let mut c = infer();
    c.args(["mock", "--model"]).arg(model);
    if let Some(ck) = checkpoint {
        c.arg("--checkpoint").arg(ck);
    }
    let (ok, _, err) = run(c.args(["--seed", "2", "--out"]).arg(&out));
    assert!(ok, "mock failed: {err}");
    out
}

/// The quickest MAP-only fit of `obs` into `out`.
fn fit_map(obs: &Path, model: &Path, out: &Path) -> Command {
    let mut c = infer();
    c.args(["fit", "--obs"]).arg(obs).arg("--model").arg(model);
    c.args([
        "--map-starts",
        "2",
        "--map-steps",
        "2",
        "--polish-starts",
        "0",
        "--stages",
        "map",
        "--out",
    ])
    .arg(out);
    c
}

/// `(stage, status)` of each stage outcome in a run record.
fn stages(run_dir: &Path) -> Vec<(String, String)> {
    read_json(&run_dir.join("run.json"))["stages"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["stage"].as_str().unwrap().to_string(),
                        s["status"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `--stages map`: the table, summary.json and map.json name every parameter with its physical
/// MAP value (latent components too), summary.json says it is a MAP estimate, every parameter
/// has a Laplace width entry (a number, or null where the Hessian does not determine it), and
/// the record lists the MAP stage alone.
#[test]
fn map_only_fit_reports_named_physical_values() {
    let dir = tempfile::tempdir().unwrap();
    let model = models().join("gigalens2022.toml");
    let m = mock(dir.path(), "m", &model, None);
    let run_dir = dir.path().join("run");
    let (ok, stdout, err) = run(&mut fit_map(&m.join("obs.fits"), &model, &run_dir));
    assert!(ok, "{err}");
    assert!(stdout.contains("MAP point"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("lens.theta_e"))
        .unwrap_or_else(|| panic!("no lens.theta_e row in\n{stdout}"));
    let summary = read_json(&run_dir.join("summary.json"));
    let map = read_json(&run_dir.join("artifacts/map.json"));
    assert_eq!(summary["estimate"], "map");
    let params = summary["params"].as_object().unwrap();
    assert_eq!(params.len(), 22, "{summary}");
    let theta = params["lens.theta_e"]["mean"].as_f64().unwrap();
    assert!(theta > 0.0 && theta.is_finite());
    assert_eq!(map["params"]["lens.theta_e"].as_f64(), Some(theta));
    assert!(row.contains(&format!("{theta:.4}")), "{row}");
    assert!(params["lens.theta_e"]["truth"].as_f64().is_some());
    for (name, p) in params {
        assert_eq!(map["params"][name].as_f64(), p["mean"].as_f64(), "{name}");
        assert_eq!(p["q50"], p["mean"], "{name}");
        let sd = &map["laplace_std"][name];
        assert!(
            sd.is_null() || sd.as_f64().is_some_and(|v| v > 0.0),
            "{name}: {sd}"
        );
        assert_eq!(&p["std"], sd, "{name}");
    }
    assert_eq!(stages(&run_dir), vec![("map".into(), "done".into())]);

    // a VAE source: the latent components are named too
    let ck = tiny_vae::tiny_checkpoint(dir.path(), "ck", 4, 40);
    let demo = models().join("demo.toml");
    let mv = mock(dir.path(), "mv", &demo, Some(&ck));
    let run_v = dir.path().join("run_v");
    let (ok, stdout, err) = run(fit_map(&mv.join("obs.fits"), &demo, &run_v)
        .arg("--checkpoint")
        .arg(&ck));
    assert!(ok, "{err}");
    assert!(
        stdout.contains("(4 components): MAP values in summary.json"),
        "{stdout}"
    );
    let summary = read_json(&run_v.join("summary.json"));
    let map = read_json(&run_v.join("artifacts/map.json"));
    for i in 0..4 {
        let name = format!("src.z[{i}]");
        let v = summary["params"][&name]["mean"].as_f64().unwrap();
        assert_eq!(map["params"][&name].as_f64(), Some(v), "{name}");
    }
}

/// The warnings a run record holds (run.json) and its summary.json repeats.
fn recorded_warnings(run_dir: &Path) -> (Vec<String>, Vec<String>) {
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    (
        list(&read_json(&run_dir.join("run.json"))["warnings"]),
        list(&read_json(&run_dir.join("summary.json"))["warnings"]),
    )
}

/// Truths with 16 latent values fitted with a latent-8 checkpoint: a warning on the console and
/// in the record, and no z-score against the other latent space's values; a truth outside its prior's
/// support is said too. A latent-64 prior
/// fitted from 7 images (rank-deficient covariance, jitter): a warning on the console (also from
/// `infer mock`) and in the record.
#[test]
fn mismatched_truths_and_degenerate_prior_warn_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let demo = models().join("demo.toml");
    let ck16 = tiny_vae::tiny_checkpoint(dir.path(), "ck16", 16, 40);
    let ck8 = tiny_vae::tiny_checkpoint(dir.path(), "ck8", 8, 40);
    let m16 = mock(dir.path(), "m16", &demo, Some(&ck16));
    // a truth the prior cannot draw (theta_e's prior is truncated to [0.4, 2.5])
    let mut t = read_json(&m16.join("truths.json"));
    t["params"]["lens.theta_e"] = serde_json::json!(3.0);
    std::fs::write(m16.join("truths.json"), t.to_string()).unwrap();
    let run_dir = dir.path().join("run");
    let (ok, _, err) = run(fit_map(&m16.join("obs.fits"), &demo, &run_dir)
        .arg("--checkpoint")
        .arg(&ck8));
    assert!(ok, "{err}");
    let want = "16 latent truth values, but the model's src.z has 8 components";
    assert!(
        err.contains(&format!("warning: {}", m16.join("truths.json").display()))
            && err.contains(want)
            && err.contains("not used"),
        "{err}"
    );
    let (record, summary) = recorded_warnings(&run_dir);
    assert!(record.iter().any(|w| w.contains(want)), "{record:?}");
    let outside = "the truth of lens.theta_e (3) is outside its prior's support [0.4, 2.5]";
    assert!(err.contains(outside), "{err}");
    assert!(record.iter().any(|w| w.contains(outside)), "{record:?}");
    assert_eq!(record, summary);
    let s = read_json(&run_dir.join("summary.json"));
    assert!(s["params"]["src.z[0]"]["truth"].is_null(), "{s}");
    assert!(s["params"]["lens.theta_e"]["truth"].as_f64().is_some());

    let ck = tiny_vae::tiny_checkpoint(dir.path(), "ck64", 64, 7);
    let prior = read_json(&ck.join("prior.json"));
    assert!(prior["jitter"].as_f64().unwrap() > 0.0);
    let out = dir.path().join("m64");
    let (ok, _, err) = run(infer()
        .args(["mock", "--model"])
        .arg(&demo)
        .arg("--checkpoint")
        .arg(&ck)
        .arg("--out")
        .arg(&out));
    let want = "has 64 dimensions but was fitted from 7 training images: its covariance has rank at most 6";
    assert!(
        ok && err.contains("warning: ") && err.contains(want),
        "{err}"
    );
    let run_dir = dir.path().join("run64");
    let (ok, _, err) = run(fit_map(&out.join("obs.fits"), &demo, &run_dir)
        .arg("--checkpoint")
        .arg(&ck));
    assert!(
        ok && err.contains(want) && err.contains("prior.json"),
        "{err}"
    );
    let (record, summary) = recorded_warnings(&run_dir);
    assert!(record.iter().any(|w| w.contains(want)), "{record:?}");
    assert_eq!(record, summary);
    // the full-rank prior of the first fit gave no prior warning (only the two truth warnings)
    let (record, _) = recorded_warnings(&dir.path().join("run"));
    assert_eq!(record.len(), 2, "{record:?}");
}
