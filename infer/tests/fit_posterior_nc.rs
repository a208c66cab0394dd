//! `infer fit` writes its HMC draws as an ArviZ InferenceData file (`artifacts/posterior.nc`) beside
//! `samples.h5`, reports R-hat and ESS as ArviZ computes them from that file (on the physical values),
//! and writes it again on `--resume` when an earlier run stopped before it. A seconds-long fit of a
//! GIGA-Lens mock (4 chains of 12 draws, unconverged: there the folded R-hat of `light.amp`, an
//! exp-mapped parameter, is 1.739 on the physical values and 1.645 on the unconstrained ones); ArviZ's own reading of such files is checked by the unit tests
//! of `pipeline::inference_data` and by hand (README, "The posterior in Python").

use std::path::{Path, PathBuf};
use std::process::Command;

use infer::inference::diagnostics::diagnose_rows;

fn infer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_infer"));
    c.env("ARCLIGHT_QUIET", "1");
    c
}

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run infer");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "infer failed: {err}");
    err
}

const SETTINGS: [&str; 26] = [
    "--map-starts",
    "2",
    "--map-steps",
    "5",
    "--polish-starts",
    "0",
    "--vi-steps",
    "5",
    "--vi-samples",
    "10",
    "--hmc-chains",
    "4",
    "--hmc-burn",
    "10",
    "--hmc-samples",
    "12",
    // a fixed L = 3: every transition takes 1..=5 steps (checked below)
    "--hmc-trajectory",
    "fixed",
    "--hmc-leapfrog",
    "3",
    // one round, not continued: 12 draws never converge, later rounds lengthen the trajectories and
    // continued chains would change the draw count checked below
    "--hmc-rounds",
    "1",
    "--hmc-extend",
    "0",
    "--seed",
    "1",
];

/// Every variable of a group: name, shape and values (as f64).
fn read_group(f: &hdf5::File, g: &str) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let grp = f.group(g).unwrap();
    let mut out = Vec::new();
    for name in grp.member_names().unwrap() {
        let ds = grp.dataset(&name).unwrap();
        let v: Vec<f64> = if name == "diverging" {
            ds.read_raw::<i8>()
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect()
        } else if ["chain", "draw", "n_steps"].contains(&name.as_str()) || name.ends_with("_dim") {
            ds.read_raw::<i64>()
                .unwrap()
                .into_iter()
                .map(|x| x as f64)
                .collect()
        } else {
            ds.read_raw::<f64>().unwrap()
        };
        out.push((name, ds.shape(), v));
    }
    out
}

#[test]
fn fit_writes_posterior_nc_and_reports_its_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    let mock = tmp.path().join("mock");
    run(infer()
        .args(["mock", "--model"])
        .arg(models().join("gigalens2022.toml"))
        .args(["--seed", "3", "--out"])
        .arg(&mock));
    let dir = tmp.path().join("run");
    run(infer()
        .args(["fit", "--obs"])
        .arg(mock.join("obs.fits"))
        .arg("--model")
        .arg(models().join("gigalens2022.toml"))
        .arg("--out")
        .arg(&dir)
        .args(SETTINGS));
    let nc = dir.join("artifacts/posterior.nc");
    assert!(nc.exists() && dir.join("artifacts/samples.h5").exists());

    let f = hdf5::File::open(&nc).unwrap();
    let post = read_group(&f, "posterior");
    let stats = read_group(&f, "sample_stats");
    let names: Vec<&str> = stats.iter().map(|v| v.0.as_str()).collect();
    for want in [
        "chain",
        "draw",
        "lp",
        "diverging",
        "acceptance_rate",
        "step_size",
        "n_steps",
    ] {
        assert!(
            names.contains(&want),
            "sample_stats lacks {want}: {names:?}"
        );
    }
    let n_steps = &stats.iter().find(|v| v.0 == "n_steps").unwrap().2;
    assert!(
        n_steps.iter().all(|&s| (1.0..=5.0).contains(&s)),
        "{n_steps:?}"
    );
    let model =
        infer::pipeline::netcdf::read_string_attr(&f.group("posterior").unwrap(), "model_file")
            .unwrap()
            .0;
    assert!(model.ends_with("gigalens2022.toml"), "{model}");

    // the reported R-hat and ESS are those of the physical draws in the file (not of the unconstrained
    // draws, whose folded R-hat differs)
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let params = summary["params"].as_object().unwrap();
    let scalars: Vec<&(String, Vec<usize>, Vec<f64>)> =
        post.iter().filter(|v| v.1 == [4, 12]).collect();
    assert_eq!(scalars.len(), params.len(), "one variable per parameter");
    let dim = scalars.len();
    let mut rows = vec![0.0; 4 * 12 * dim];
    for (k, v) in scalars.iter().enumerate() {
        for (i, x) in v.2.iter().enumerate() {
            rows[i * dim + k] = *x;
        }
    }
    let diag = diagnose_rows(&rows, 4, dim);
    for (k, v) in scalars.iter().enumerate() {
        let p = &params[&v.0];
        let mean = v.2.iter().sum::<f64>() / 48.0;
        assert!((p["mean"].as_f64().unwrap() - mean).abs() <= 1e-12 * mean.abs().max(1.0));
        // to rounding: the binary and this test are separate compilations of the FFT-based ESS
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
        assert!(close(p["rhat"].as_f64().unwrap(), diag[k].rhat), "{}", v.0);
        assert!(
            close(p["ess_bulk"].as_f64().unwrap(), diag[k].ess_bulk),
            "{}",
            v.0
        );
        assert!(
            close(p["ess_tail"].as_f64().unwrap(), diag[k].ess_tail),
            "{}",
            v.0
        );
    }
    drop(f);

    // a run that stopped between samples.h5 and posterior.nc gets the same file on --resume
    let first = hdf5::File::open(&nc)
        .map(|f| read_group(&f, "sample_stats"))
        .unwrap();
    std::fs::remove_file(&nc).unwrap();
    run(infer()
        .args(["fit", "--obs"])
        .arg(mock.join("obs.fits"))
        .arg("--model")
        .arg(models().join("gigalens2022.toml"))
        .arg("--resume")
        .arg(&dir)
        .args(SETTINGS));
    assert!(nc.exists());
    let f = hdf5::File::open(&nc).unwrap();
    assert_eq!(read_group(&f, "posterior"), post);
    assert_eq!(read_group(&f, "sample_stats"), first);
}
