//! `prepare` and `eval` write run records (`experiments/README.md`): kind, status, the resolved
//! settings with absolute paths, a summary; bad options leave no record, a failure after the
//! start leaves a failed one.

mod data_support;
mod train_support;

use arclight_core::record::{RunInfo, RunKind, Status};
use data_support::{run, stderr};
use std::path::{Path, PathBuf};

/// The run directories under `exp` (none if it does not exist).
fn runs(exp: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(exp)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn prepare_writes_a_run_record() {
    let d = tempfile::tempdir().unwrap();
    let exp = d.path().join("exp");
    let out = d.path().join("mix.h5");
    let exp_s = exp.to_str().unwrap();
    // bad flags: an error and no record
    let o = run(&[
        "prepare",
        "--synth",
        "6",
        "--out",
        out.to_str().unwrap(),
        "--snr-block",
        "5",
        "--experiments",
        exp_s,
    ]);
    assert!(!o.status.success() && stderr(&o).contains("--snr-block 5"));
    assert!(runs(&exp).is_empty());

    let o = run(&[
        "prepare",
        "--synth",
        "6",
        "--split",
        "4,1,1",
        "--out",
        out.to_str().unwrap(),
        "--experiments",
        exp_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let [r] = &runs(&exp)[..] else {
        panic!("one record expected: {:?}", runs(&exp))
    };
    let info = RunInfo::load(r).unwrap();
    assert_eq!((info.kind, info.status), (RunKind::Prepare, Status::Done));
    assert_eq!(info.name, "mix");
    assert_eq!(info.config["out"], out.display().to_string());
    assert_eq!(info.config["synth"], 6);
    assert_eq!(info.config["cuts"]["snr_min"], 15.0);
    let s = summary(r);
    assert_eq!(s["kept"], 6);
    assert_eq!(
        s["split_sizes"],
        serde_json::json!({"train": 4, "validation": 1, "test": 1})
    );

    // a stamp that fails after the start (a NaN pixel): the record says so
    let cut = d.path().join("cutouts");
    std::fs::create_dir(&cut).unwrap();
    let mut img = vec![0.1f32; 128 * 128];
    img[77] = f32::NAN;
    arclight_core::fits::write_image_f32(&cut.join("g.fits"), 128, 128, &img, &[]).unwrap();
    let o = run(&[
        "prepare",
        "--folder",
        cut.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--experiments",
        exp_s,
    ]);
    assert!(!o.status.success());
    let failed: Vec<RunInfo> = runs(&exp)
        .iter()
        .map(|r| RunInfo::load(r).unwrap())
        .filter(|i| i.status == Status::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].error.as_deref().unwrap().contains("is NaN"),
        "{:?}",
        failed[0].error
    );
}

#[test]
fn eval_writes_a_run_record() {
    let _g = train_support::hdf5_guard();
    train_support::quiet();
    let d = tempfile::tempdir().unwrap();
    let data = train_support::tiny_data(d.path(), 16, 4, 4);
    train_vae::train::train(train_support::tiny_config(d.path(), &data, 1), None).unwrap();
    let ck = d.path().join("ckpt");
    let exp = d.path().join("records");
    let ev = d.path().join("eval");
    let args = |split: &str| {
        vec![
            "eval".to_string(),
            "--checkpoint".into(),
            ck.display().to_string(),
            "--data".into(),
            data.display().to_string(),
            "--out".into(),
            ev.display().to_string(),
            "--split".into(),
            split.into(),
            "--show".into(),
            "2".into(),
            "--experiments".into(),
            exp.display().to_string(),
        ]
    };
    let bad: Vec<String> = args("dev");
    let o = run(&bad.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success() && stderr(&o).contains("--split dev"));
    assert!(runs(&exp).is_empty(), "bad options must leave no record");
    let good = args("test");
    let o = run(&good.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let [r] = &runs(&exp)[..] else {
        panic!("one record expected: {:?}", runs(&exp))
    };
    let info = RunInfo::load(r).unwrap();
    assert_eq!((info.kind, info.status), (RunKind::Eval, Status::Done));
    assert_eq!(info.name, "ckpt");
    assert_eq!(info.config["checkpoint"], ck.display().to_string());
    assert_eq!(info.config["split"], "test");
    let s = summary(r);
    assert_eq!(s["n"], 4);
    assert!(s["elbo"].as_f64().unwrap().is_finite(), "{s}");
    assert!(s["chi2_per_pixel"].as_f64().unwrap().is_finite(), "{s}");
    assert_eq!(s["out"], ev.display().to_string());
    assert!(ev.join("metrics.json").is_file() && ev.join("rotation.png").is_file());
}
