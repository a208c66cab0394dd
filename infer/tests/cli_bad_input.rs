//! Bad input to the `infer` binary: each case exits non-zero with an error naming the file or
//! field, and leaves no run directory (or other output) behind.

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

/// A GIGA-Lens mock in `dir` (fast: fused kernel model, values only).
fn mock(dir: &Path) -> PathBuf {
    let out = dir.join("mock");
    let (ok, err) = run(infer()
        .args(["mock", "--model"])
        .arg(models().join("gigalens2022.toml"))
        .args(["--seed", "2", "--out"])
        .arg(&out));
    assert!(ok, "mock failed: {err}");
    out
}

fn fit(obs: &Path, model: &Path, exp: &Path) -> Command {
    let mut c = infer();
    c.args(["fit", "--obs"])
        .arg(obs)
        .arg("--model")
        .arg(model)
        .arg("--experiments")
        .arg(exp);
    c.args(["--map-starts", "2", "--map-steps", "2", "--stages", "map"]);
    c
}

fn assert_no_runs(exp: &Path) {
    let n = std::fs::read_dir(exp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        n,
        0,
        "bad input must not leave a run record in {}",
        exp.display()
    );
}

#[test]
fn missing_and_corrupt_observation() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("exp");
    let model = models().join("gigalens2022.toml");
    let (ok, err) = run(&mut fit(&dir.path().join("nope.fits"), &model, &exp));
    assert!(
        !ok && err.contains("nope.fits") && err.contains("not found"),
        "{err}"
    );
    let m = mock(dir.path());
    let bytes = std::fs::read(m.join("obs.fits")).unwrap();
    let cut = dir.path().join("cut.fits");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, err) = run(&mut fit(&cut, &model, &exp));
    assert!(!ok && err.contains("cut.fits"), "{err}");
    let junk = dir.path().join("junk.fits");
    std::fs::write(&junk, b"this is not FITS").unwrap();
    let (ok, err) = run(&mut fit(&junk, &model, &exp));
    assert!(!ok && err.contains("junk.fits"), "{err}");
    assert_no_runs(&exp);
}

#[test]
fn wrong_size_nan_pixels_and_noise_map() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("exp");
    let m = mock(dir.path());
    // The chianese grid is 256x256: an 80x80 observation does not fit it.
    let (ok, err) = run(&mut fit(
        &m.join("obs.fits"),
        &models().join("chianese2020.toml"),
        &exp,
    ));
    assert!(
        !ok && err.contains("80x80")
            && err.contains("256x256")
            && err.contains("chianese2020.toml"),
        "{err}"
    );
    // All-NaN observation: error; a few NaN pixels: masked with a warning, the fit runs.
    let nan = dir.path().join("nan.fits");
    arclight_core::fits::write_image_f32(&nan, 80, 80, &vec![f32::NAN; 6400], &[]).unwrap();
    let (ok, err) = run(&mut fit(&nan, &models().join("gigalens2022.toml"), &exp));
    assert!(
        !ok && err.contains("nan.fits") && err.contains("every pixel"),
        "{err}"
    );
    let mut img = arclight_core::fits::read_image_f32(&m.join("obs.fits"), 0).unwrap();
    img.data[10] = f32::NAN;
    img.data[20] = f32::NAN;
    let some = dir.path().join("some_nan.fits");
    arclight_core::fits::write_image_f32(&some, 80, 80, &img.data, &[]).unwrap();
    let (ok, err) = run(&mut fit(&some, &models().join("gigalens2022.toml"), &exp));
    assert!(
        ok && err.contains("2 NaN/infinite pixels are masked"),
        "{err}"
    );
    let exp2 = dir.path().join("exp2");
    // A noise map without a usable sigma: error naming it (a few bad pixels are masked with a
    // warning: `observation::tests`).
    let noise = vec![0.0f32; 6400];
    let nm = dir.path().join("noise.fits");
    arclight_core::fits::write_image_f32(&nm, 80, 80, &noise, &[]).unwrap();
    let (ok, err) = run(fit(
        &m.join("obs.fits"),
        &models().join("gigalens2022.toml"),
        &exp2,
    )
    .arg("--noise-map")
    .arg(&nm));
    assert!(
        !ok && err.contains("noise.fits") && err.contains("positive"),
        "{err}"
    );
    assert_no_runs(&exp2);
    // Non-positive noise on the command line.
    let (ok, err) = run(infer()
        .args(["mock", "--model"])
        .arg(models().join("gigalens2022.toml"))
        .args(["--sigma-noise=-1", "--out"])
        .arg(dir.path().join("m2")));
    assert!(!ok && err.contains("--sigma-noise"), "{err}");
    assert!(!dir.path().join("m2").exists());
}

#[test]
fn model_file_errors_name_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("exp");
    let m = mock(dir.path());
    let text = std::fs::read_to_string(models().join("gigalens2022.toml")).unwrap();
    let cases = [
        (
            text.replace("lognormal(ln 150, 0.9)", "cauchy(150, 0.9)"),
            "unknown prior \"cauchy\"",
        ),
        (
            text.replace(
                "r_sersic = { prior = \"lognormal(ln 1.6",
                "r_sersc = { prior = \"lognormal(ln 1.6",
            ),
            "unknown parameter \"r_sersc\"",
        ),
        (
            text.replace("sigma_bkg = 0.2", "sigma_bkg = 0.0"),
            "noise.sigma_bkg must be positive",
        ),
        (
            text.replace(
                "file = \"psf/moffat_fwhm0.1_13x13.fits\"",
                "file = \"psf/missing.fits\"",
            ),
            "missing.fits",
        ),
    ];
    for (i, (t, want)) in cases.iter().enumerate() {
        let p = models().join(format!(".bad_{i}_{}.toml", std::process::id()));
        std::fs::write(&p, t).unwrap();
        let (ok, err) = run(&mut fit(&m.join("obs.fits"), &p, &exp));
        std::fs::remove_file(&p).unwrap();
        assert!(
            !ok && err.contains(want) && err.contains(&format!(".bad_{i}_")),
            "case {i}: {err}"
        );
    }
    assert_no_runs(&exp);
}

#[test]
fn checkpoint_of_another_latent_size_or_missing() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("exp");
    // A VAE model with a checkpoint directory that is not one.
    let (ok, err) = run(infer()
        .args(["mock", "--model"])
        .arg(models().join("demo.toml"))
        .arg("--checkpoint")
        .arg(dir.path().join("no_ckpt"))
        .arg("--out")
        .arg(dir.path().join("m")));
    assert!(
        !ok && err.contains("no_ckpt") && err.contains("checkpoint directory not found"),
        "{err}"
    );
    // A checkpoint whose prior has another latent size than its architecture.
    let ck = dir.path().join("ck");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../checkpoints/default");
    if shipped.join("prior.json").exists() {
        std::fs::create_dir(&ck).unwrap();
        for f in ["checkpoint.json", "decoder.bpk"] {
            std::fs::copy(shipped.join(f), ck.join(f)).unwrap();
        }
        let mut prior: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(shipped.join("prior.json")).unwrap())
                .unwrap();
        prior["latent_dim"] = serde_json::json!(8);
        prior["mean"] = serde_json::json!(vec![0.0; 8]);
        let eye: Vec<f64> = (0..64)
            .map(|i| if i % 9 == 0 { 1.0 } else { 0.0 })
            .collect();
        prior["cov"] = serde_json::json!(eye);
        prior["chol"] = serde_json::json!(eye);
        std::fs::write(
            ck.join("prior.json"),
            serde_json::to_string(&prior).unwrap(),
        )
        .unwrap();
        let (ok, err) = run(infer()
            .args(["mock", "--model"])
            .arg(models().join("demo.toml"))
            .arg("--checkpoint")
            .arg(&ck)
            .arg("--out")
            .arg(dir.path().join("m")));
        assert!(
            !ok && err.contains("prior.json") && err.contains("latent_dim"),
            "{err}"
        );
    }
    assert!(!dir.path().join("m").exists());
    assert_no_runs(&exp);
}

#[test]
fn unknown_options_are_rejected() {
    let (ok, err) = run(infer().args(["fit", "--obs", "x.fits", "--model", "m.toml", "--bogus"]));
    assert!(!ok && err.contains("--bogus"), "{err}");
    let (ok, err) = run(infer().args([
        "fit", "--obs", "x.fits", "--model", "m.toml", "--stages", "map,mcmc",
    ]));
    assert!(!ok && err.contains("mcmc"), "{err}");
    let (ok, err) = run(infer().args(["--device", "cuda9", "bench"]));
    assert!(!ok && err.contains("cuda9"), "{err}");
}

/// `infer study`: no systems, a missing model file, a bad shard, or a study directory that holds
/// something else are clear errors that leave nothing behind (or the other record untouched).
#[test]
fn study_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("exp");
    let study = |extra: &[&str], model: &Path| {
        let mut c = infer();
        c.args(["study", "--model"])
            .arg(model)
            .arg("--out")
            .arg(exp.join("study"))
            .args(extra);
        c
    };
    let model = models().join("gigalens2022.toml");
    let (ok, err) = run(&mut study(&["--n", "0"], &model));
    assert!(!ok && err.contains("--n"), "{err}");
    let (ok, err) = run(&mut study(&["--n", "1"], &dir.path().join("none.toml")));
    assert!(!ok && err.contains("none.toml"), "{err}");
    let (ok, err) = run(&mut study(&["--n", "1", "--shard", "3/2"], &model));
    assert!(!ok && err.contains("--shard"), "{err}");
    assert_no_runs(&exp);
    // A fit record is not a study: refused without touching it.
    let fake = dir.path().join("fit-x");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("run.json"), "{}").unwrap();
    let (ok, err) = run(infer()
        .args(["study", "--resume", "--n", "1", "--model"])
        .arg(&model)
        .arg("--out")
        .arg(&fake));
    assert!(
        !ok && err.contains("fit-x") && err.contains("not a study"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(fake.join("run.json")).unwrap(),
        "{}"
    );
    // summarize: a folder without study.json
    let (ok, err) = run(infer()
        .args(["study", "summarize"])
        .arg(&fake)
        .arg("--out")
        .arg(dir.path().join("sum")));
    assert!(
        !ok && err.contains("fit-x") && err.contains("study.json"),
        "{err}"
    );
    assert!(!dir.path().join("sum").exists());
}
