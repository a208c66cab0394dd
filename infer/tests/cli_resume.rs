//! `infer fit --resume`: a run continues only on the inputs it was started with, and its record
//! keeps one outcome per stage that ran.

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

/// Run and return (success, stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run infer");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A GIGA-Lens mock (no VAE: fast) with `seed` in `dir/<name>`.
fn mock(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let out = dir.join(name);
    let (ok, err) = run(infer()
        .args(["mock", "--model"])
        .arg(models().join("gigalens2022.toml"))
        .args(["--seed", &seed.to_string(), "--out"])
        .arg(&out));
    assert!(ok, "mock failed: {err}");
    out
}

/// The quickest MAP-only fit of `obs` with `model`.
fn fit(obs: &Path, model: &Path) -> Command {
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
    ]);
    c
}

/// Every file of a run directory with its bytes, to show a refused resume changed nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A resume with another observation, noise map, mask or model file is refused with the
/// differing inputs named (old and new path and hash); the run is left exactly as it was. The
/// same files (even under another path) resume.
#[test]
fn resume_refuses_other_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let a = mock(dir.path(), "a", 2);
    let b = mock(dir.path(), "b", 3);
    let model = models().join("gigalens2022.toml");
    let run_dir = dir.path().join("run");
    let (ok, err) = run(fit(&a.join("obs.fits"), &model)
        .arg("--noise-map")
        .arg(a.join("noise.fits"))
        .arg("--out")
        .arg(&run_dir));
    assert!(ok, "{err}");
    let info = read_json(&run_dir.join("run.json"));
    let inputs = &info["inputs"];
    for role in ["obs", "noise_map", "model", "psf", "truths"] {
        let sha = inputs[role]["sha256"]
            .as_str()
            .unwrap_or_else(|| panic!("{role}: {info}"));
        assert_eq!(sha.len(), 64, "{role}");
    }
    let before = snapshot(&run_dir);
    let resume = |obs: &Path, model: &Path| {
        let mut c = fit(obs, model);
        c.arg("--resume").arg(&run_dir);
        c
    };

    // another observation (and so its truths.json beside it)
    let (ok, err) = run(resume(&b.join("obs.fits"), &model)
        .arg("--noise-map")
        .arg(a.join("noise.fits")));
    let old_sha = inputs["obs"]["sha256"].as_str().unwrap();
    assert!(!ok, "resume with another observation must fail");
    assert!(
        err.contains("cannot resume")
            && err.contains("obs: was ")
            && err.contains(&a.join("obs.fits").display().to_string())
            && err.contains(&b.join("obs.fits").display().to_string())
            && err.contains(&old_sha[..16])
            && err.contains("truths: was")
            && !err.contains("model: was"),
        "{err}"
    );
    // another noise map; a mask the run did not have
    let mask = dir.path().join("mask.fits");
    arclight_core::fits::write_image_f32(&mask, 80, 80, &vec![1.0; 6400], &[]).unwrap();
    let (ok, err) = run(resume(&a.join("obs.fits"), &model)
        .arg("--noise-map")
        .arg(b.join("noise.fits"))
        .arg("--mask")
        .arg(&mask));
    assert!(!ok, "{err}");
    assert!(
        err.contains("noise_map: was")
            && err.contains("mask: was none, now")
            && !err.contains("obs: was"),
        "{err}"
    );
    // no noise map at all
    let (ok, err) = run(&mut resume(&a.join("obs.fits"), &model));
    assert!(
        !ok && err.contains("noise_map: was") && err.contains("now none"),
        "{err}"
    );
    // a model file with other contents
    let other_model = dir.path().join("other.toml");
    let text = std::fs::read_to_string(&model).unwrap();
    std::fs::write(
        &other_model,
        text.replace("sigma_bkg = 0.2", "sigma_bkg = 0.25").replace(
            "file = \"psf/",
            &format!("file = \"{}/psf/", models().display()),
        ),
    )
    .unwrap();
    let (ok, err) = run(resume(&a.join("obs.fits"), &other_model)
        .arg("--noise-map")
        .arg(a.join("noise.fits")));
    assert!(
        !ok && err.contains("model: was") && err.contains("other.toml"),
        "{err}"
    );
    assert_eq!(
        snapshot(&run_dir),
        before,
        "a refused resume must not touch the run"
    );

    // the same contents under another path resume
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for f in ["obs.fits", "noise.fits", "truths.json"] {
        std::fs::copy(a.join(f), copy.join(f)).unwrap();
    }
    let (ok, err) = run(resume(&copy.join("obs.fits"), &model)
        .arg("--noise-map")
        .arg(copy.join("noise.fits")));
    assert!(ok, "{err}");
    assert_eq!(read_json(&run_dir.join("run.json"))["status"], "done");
}
