//! `infer fit --resume`: a run continues only on the inputs it was started with, and its record
//! keeps one outcome per stage that ran.

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

/// The quickest fit of `obs` with `model` running `stages`.
fn fit_stages(obs: &Path, model: &Path, stages: &str) -> Command {
    fit_budget(obs, model, stages, "2")
}

/// [`fit_stages`] with `vi_steps` VI iterations.
fn fit_budget(obs: &Path, model: &Path, stages: &str, vi_steps: &str) -> Command {
    let mut c = infer();
    c.args(["fit", "--obs"]).arg(obs).arg("--model").arg(model);
    c.args([
        "--map-starts",
        "2",
        "--map-steps",
        "2",
        "--polish-starts",
        "0",
        "--vi-steps",
        vi_steps,
        "--vi-samples",
        "2",
        "--stages",
        stages,
    ]);
    c
}

/// The quickest MAP-only fit of `obs` with `model`.
fn fit(obs: &Path, model: &Path) -> Command {
    fit_stages(obs, model, "map")
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

/// `(stage, status, invocation)` of each stage outcome in a run record.
fn stage_outcomes(run_dir: &Path) -> Vec<(String, String, u64)> {
    let info = read_json(&run_dir.join("run.json"));
    info["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("no stage outcomes in {info}"))
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
                s["invocation"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A checkpoint of another latent size on resume is refused before any stage runs (here in a run
/// recorded before input hashes were kept, so only the dimension check can catch it), naming the
/// stage result and both sizes; the finished MAP stage stays done and the run is untouched.
/// `--resume --stages vi` then records that VI ran, beside the MAP outcome. HMC alone on a new run
/// has nothing to start from: refused before a run is created.
#[test]
fn resume_checks_dimensions_and_keeps_stage_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let ck4 = tiny_vae::tiny_checkpoint(dir.path(), "ck4", 4, 40);
    let ck8 = tiny_vae::tiny_checkpoint(dir.path(), "ck8", 8, 40);
    let model = models().join("demo.toml");
    let m = dir.path().join("m");
    let (ok, err) = run(infer()
        .args(["mock", "--model"])
        .arg(&model)
        .arg("--checkpoint")
        .arg(&ck4)
        .args(["--seed", "1", "--out"])
        .arg(&m));
    assert!(ok, "{err}");
    let obs = m.join("obs.fits");
    let run_dir = dir.path().join("run");
    let (ok, err) = run(fit(&obs, &model)
        .arg("--checkpoint")
        .arg(&ck4)
        .arg("--out")
        .arg(&run_dir));
    assert!(ok, "{err}");
    assert_eq!(
        stage_outcomes(&run_dir),
        vec![("map".into(), "done".into(), 0)]
    );
    // a record from before input hashes
    let mut info = read_json(&run_dir.join("run.json"));
    info.as_object_mut().unwrap().remove("inputs");
    std::fs::write(
        run_dir.join("run.json"),
        serde_json::to_string(&info).unwrap(),
    )
    .unwrap();
    let before = snapshot(&run_dir);

    let (ok, err) = run(fit_stages(&obs, &model, "vi")
        .arg("--checkpoint")
        .arg(&ck8)
        .arg("--resume")
        .arg(&run_dir));
    assert!(
        !ok,
        "resume with a latent-8 checkpoint of a latent-4 run must fail"
    );
    assert!(
        err.contains("map.json")
            && err.contains("the MAP point has 16 values")
            && err.contains("20 free parameters")
            && err.contains("has 8")
            && err.contains("another model file or checkpoint")
            && !err.contains("VI:"),
        "{err}"
    );
    assert_eq!(
        snapshot(&run_dir),
        before,
        "a refused resume must not touch the run"
    );

    let (ok, err) = run(fit_stages(&obs, &model, "vi")
        .arg("--checkpoint")
        .arg(&ck4)
        .arg("--resume")
        .arg(&run_dir));
    assert!(ok, "{err}");
    assert_eq!(
        stage_outcomes(&run_dir),
        vec![
            ("map".into(), "done".into(), 0),
            ("vi".into(), "done".into(), 1)
        ]
    );
    assert!(run_dir.join("artifacts/vi.json").exists());
    assert!(!err.contains("resumed with settings"), "{err}");
    // a resume with another budget runs it, and says so: on the console, in run.json and metrics.jsonl
    let mut c = fit_budget(&obs, &model, "vi", "3");
    c.arg("--checkpoint")
        .arg(&ck4)
        .arg("--resume")
        .arg(&run_dir);
    let (ok, err) = run(&mut c);
    assert!(ok, "{err}");
    assert!(
        err.contains("resumed with settings that differ") && err.contains("2 vs 3"),
        "{err}"
    );
    let info = read_json(&run_dir.join("run.json"));
    assert!(
        info["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("2 vs 3")),
        "{info}"
    );
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let last: Value = serde_json::from_str(
        metrics
            .lines()
            .rfind(|l| l.contains("\"resume_config\""))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["invocation"], 2);
    assert!(!last["changed"].as_array().unwrap().is_empty(), "{last}");
    // the worker pool's size is recorded, and a resume on another says so
    let recorded = info["threads"].as_u64().expect("run.json records threads");
    let other = if recorded == 1 { 2 } else { 1 };
    let mut c = fit_budget(&obs, &model, "vi", "3");
    c.arg("--checkpoint")
        .arg(&ck4)
        .arg("--resume")
        .arg(&run_dir)
        .arg("--threads")
        .arg(other.to_string());
    let (ok, err) = run(&mut c);
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!(
            "resumed with {other} worker threads where the run started with {recorded}"
        )),
        "{err}"
    );
    assert_eq!(read_json(&run_dir.join("run.json"))["threads"], other);

    let exp = dir.path().join("exp");
    let (ok, err) = run(fit_stages(&obs, &model, "hmc")
        .arg("--checkpoint")
        .arg(&ck4)
        .arg("--experiments")
        .arg(&exp));
    assert!(
        !ok && err.contains("--stages hmc") && err.contains("map,hmc"),
        "{err}"
    );
    assert!(!exp.exists(), "a refused fit must not leave a run");
}

/// A run begun with `--stages vi` (VI from the prior) and resumed with the MAP stage keeps its VI
/// result, and says that the MAP now run does not start it and how to rerun VI from the MAP.
#[test]
fn a_vi_made_without_map_kept_on_resume_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(dir.path(), "m", 2);
    let obs = m.join("obs.fits");
    let model = models().join("gigalens2022.toml");
    let run_dir = dir.path().join("run");
    let (ok, err) = run(fit_stages(&obs, &model, "vi").arg("--out").arg(&run_dir));
    assert!(ok, "{err}");
    assert!(!err.contains("without a MAP start"), "{err}");
    let (ok, err) = run(fit_stages(&obs, &model, "map,vi")
        .arg("--resume")
        .arg(&run_dir));
    assert!(ok, "{err}");
    assert!(
        err.contains("vi.json") && err.contains("without a MAP start") && err.contains("delete it"),
        "{err}"
    );
    let info = read_json(&run_dir.join("run.json"));
    assert!(
        info["warnings"].to_string().contains("without a MAP start"),
        "{info}"
    );
}

/// The same file read from another HDU is other data: a resume that would read the observation from
/// another HDU than the run did is refused before anything runs; the HDU the run read (here chosen
/// because the primary is empty) is recorded in its config.
#[test]
fn a_resume_reading_another_hdu_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(dir.path(), "m", 3);
    let img = arclight_core::fits::read_image_f32(&m.join("obs.fits"), 0).unwrap();
    let mef = dir.path().join("mef.fits");
    arclight_core::fits::write_extensions_f32(
        &mef,
        &[
            ("SCI", img.ny, img.nx, &img.data),
            ("SCI2", img.ny, img.nx, &img.data),
        ],
    )
    .unwrap();
    let model = models().join("gigalens2022.toml");
    let run_dir = dir.path().join("run");
    let (ok, err) = run(fit(&mef, &model).arg("--out").arg(&run_dir));
    assert!(ok, "{err}");
    let info = read_json(&run_dir.join("run.json"));
    assert_eq!(info["config"]["hdus"]["obs"], 1, "{info}");
    let before = snapshot(&run_dir);
    let (ok, err) = run(fit(&mef, &model)
        .args(["--obs-hdu", "2", "--resume"])
        .arg(&run_dir));
    assert!(!ok, "a resume on another HDU must be refused");
    assert!(
        err.contains("read from HDU 1 and would now be read from HDU 2"),
        "{err}"
    );
    assert_eq!(
        snapshot(&run_dir),
        before,
        "a refused resume must not touch the run"
    );
    let (ok, err) = run(fit(&mef, &model)
        .args(["--obs-hdu", "1", "--resume"])
        .arg(&run_dir));
    assert!(ok, "{err}");
}
