//! `infer study --source-images`: each system lenses a real galaxy of a prepared data set's split,
//! the next of a permutation seeded by the study's seed (no repeats), and the mock's true source is that image; the sources enter the
//! study's identity.

mod tiny_vae;

use arclight_vae::dataset::{Split, read_split, write_sets};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use train_vae::data::synth::{SynthConfig, generate_range};

fn infer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_infer"));
    c.env("ARCLIGHT_QUIET", "1");
    c
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A data set of synthetic galaxies: 6 train, 2 validation, 5 test images.
fn data_set(dir: &Path) -> PathBuf {
    let cfg = SynthConfig::default();
    let path = dir.join("galaxies.h5");
    write_sets(
        &path,
        &[
            (Split::Train, &generate_range(5, 0..6, &cfg)),
            (Split::Validation, &generate_range(5, 6..8, &cfg)),
            (Split::Test, &generate_range(5, 8..13, &cfg)),
        ],
        serde_json::json!({"test": "real-source study"}),
    )
    .unwrap();
    path
}

/// `img` (`n` x `n`, row 0 on top) bilinearly interpolated at continuous pixel coordinates (u along
/// columns, v along rows, pixel centres at integers), zero beyond one pixel outside: the placement
/// of Chianese et al. eq. 17 written out independently of `infer`.
fn bilerp(img: &[f32], n: usize, u: f64, v: f64) -> f64 {
    let at = |r: i64, c: i64| {
        if r < 0 || c < 0 || r >= n as i64 || c >= n as i64 {
            0.0
        } else {
            img[r as usize * n + c as usize] as f64
        }
    };
    let (u0, v0) = (u.floor(), v.floor());
    let (fu, fv) = (u - u0, v - v0);
    let (c, r) = (u0 as i64, v0 as i64);
    (1.0 - fv) * ((1.0 - fu) * at(r, c) + fu * at(r, c + 1))
        + fv * ((1.0 - fu) * at(r + 1, c) + fu * at(r + 1, c + 1))
}

#[test]
fn systems_lens_test_split_galaxies_drawn_by_seed() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_vae::tiny_checkpoint(dir.path(), "ck4", 4, 40);
    let data = data_set(dir.path());
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo.toml");
    let out = dir.path().join("study");
    let o = infer()
        .args(["study", "--model"])
        .arg(&model)
        .arg("--checkpoint")
        .arg(&ck)
        .args([
            "--n", "3", "--seed", "11", "--quick", "--stages", "map", "--out",
        ])
        .arg(&out)
        .arg("--source-images")
        .arg(&data)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    let study = read_json(&out.join("study.json"));
    let id = &study["identity"]["source_images"];
    assert_eq!(id["split"], "test");
    assert_eq!(id["sha256"].as_str().unwrap().len(), 64);
    let test = read_split(&data, Split::Test).unwrap();
    let mut indices = Vec::new();
    for i in 0..3 {
        let mock = out.join(format!("systems/{i:06}/mock"));
        let truths = read_json(&mock.join("truths.json"));
        assert_eq!(truths["source"]["kind"], "image", "{truths}");
        let k = truths["source"]["index"].as_u64().unwrap() as usize;
        // the test split comes first in the data set's index order
        assert!(
            k < test.n,
            "system {i}: index {k} is outside the test split"
        );
        indices.push(k);
        // the placement is the stamp's frame, not a truth for the fitted source model's parameters
        assert!(
            !truths["params"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with("src.")),
            "{truths}"
        );
        // the true source written by the mock is that galaxy, placed by eq. 17:
        // I(x, y) = i d((x - x_src)/s, (y - y_src)/s) on the 64x64 grid of half-width HALFWID
        let p = &truths["source"]["placement"];
        let (xs, ys, s, amp) = (
            p["src.x_src"].as_f64().unwrap(),
            p["src.y_src"].as_f64().unwrap(),
            p["src.s"].as_f64().unwrap(),
            p["src.i"].as_f64().unwrap(),
        );
        let half = truths["source_half_width"].as_f64().unwrap();
        let src = arclight_core::fits::read_image_f32(&mock.join("source.fits"), 0).unwrap();
        let px = test.size * test.size;
        let img = &test.images[k * px..(k + 1) * px];
        let (n, step) = (64usize, 2.0 * half / 64.0);
        let (mut worst, mut peak) = (0.0f64, 0.0f64);
        for r in 0..n {
            for c in 0..n {
                let x = -half + (c as f64 + 0.5) * step;
                let y = half - (r as f64 + 0.5) * step;
                let u = ((x - xs) / s + 1.0) * test.size as f64 / 2.0 - 0.5;
                let v = (1.0 - (y - ys) / s) * test.size as f64 / 2.0 - 0.5;
                let want = amp * bilerp(img, test.size, u, v);
                // FITS rows run bottom to top (sky orientation): row r from the top is n - 1 - r
                worst = worst.max((src.data[(n - 1 - r) * n + c] as f64 - want).abs());
                peak = peak.max(want.abs());
            }
        }
        assert!(
            peak > 0.0,
            "system {i}: the galaxy is not in the source-plane figure"
        );
        let res = read_json(&out.join(format!("results/system-{i:06}.json")));
        let resid = res["source_residual"].as_f64().unwrap();
        for (k, v) in res["params"].as_object().unwrap() {
            assert!(
                !k.starts_with("src.") || v["z"].is_null(),
                "system {i}: {k} judged against a placement truth: {v}"
            );
        }
        assert!(resid.is_finite() && resid >= 0.0, "system {i}: {res}");
        assert!(
            worst < 1e-4 * peak,
            "system {i}: source.fits vs test image {k}: max |diff| {worst} of peak {peak}"
        );
    }
    // a permutation: 3 systems from 5 test images lens 3 different galaxies
    let mut distinct = indices.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "a galaxy repeated: {indices:?}");
    // seeded: the same study again picks the same galaxies
    let again = dir.path().join("again");
    let o = infer()
        .args(["study", "--model"])
        .arg(&model)
        .arg("--checkpoint")
        .arg(&ck)
        .args([
            "--n", "3", "--seed", "11", "--quick", "--stages", "map", "--out",
        ])
        .arg(&again)
        .arg("--source-images")
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success());
    for (i, k) in indices.iter().enumerate() {
        let t = read_json(&again.join(format!("systems/{i:06}/mock/truths.json")));
        assert_eq!(t["source"]["index"].as_u64().unwrap() as usize, *k);
    }
    // resuming with the model's own sources is another study: refused
    let o = infer()
        .args(["study", "--model"])
        .arg(&model)
        .arg("--checkpoint")
        .arg(&ck)
        .args([
            "--n", "3", "--seed", "11", "--quick", "--stages", "map", "--resume", "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a study without --source-images resumed one with them"
    );
}

/// The ablation end to end: a tiny `train-vae sweep` (two latent dimensions, one epoch, synthetic
/// galaxies), then the same 2-system quick study with each of its priors, compared.
#[test]
fn a_sweep_s_priors_are_compared_on_the_same_mocks() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_set(dir.path());
    let sweep = dir.path().join("sweep");
    // SAFETY: set once before any thread of this test reads the environment.
    unsafe { std::env::set_var("ARCLIGHT_QUIET", "1") };
    train_vae::sweep::run(train_vae::sweep::SweepArgs {
        latent_dims: "2,4".into(),
        widths_list: None,
        eval_samples: 1,
        train: train_vae::train::cli::TrainArgs {
            data: Some(data.clone()),
            out: sweep.clone(),
            epochs: Some(1),
            latent_dim: None,
            widths: Some("4,8,8,16".into()),
            head_width: Some(32),
            sigma_d: None,
            lr: Some(1e-3),
            batch_size: Some(4),
            samples: Some(1),
            patience: None,
            seed: Some(1),
            prior_scale: Some(9.0),
            device: arclight_core::DeviceChoice::Flex,
            experiments: dir.path().join("experiments"),
            log_every: 10,
            init_from: None,
            resume: false,
            decoder_only: false,
        },
    })
    .unwrap();
    // a single checkpoint beside the sweep (a baseline prior): here a copy of ld2 under another name
    let base = dir.path().join("base2");
    std::fs::create_dir(&base).unwrap();
    for f in std::fs::read_dir(sweep.join("ld2")).unwrap().flatten() {
        if f.path().is_file() {
            std::fs::copy(f.path(), base.join(f.file_name())).unwrap();
        }
    }
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo.toml");
    let out = dir.path().join("compare");
    // two priors of one name would share a folder; a folder that is neither sweep nor checkpoint
    for (bad, says) in [
        (sweep.join("ld2"), "two priors are named \"ld2\""),
        (dir.path().to_path_buf(), "neither a train-vae sweep"),
    ] {
        let o = infer()
            .args(["study", "--model"])
            .arg(&model)
            .arg("--priors-from")
            .arg(&sweep)
            .arg(&bad)
            .args(["--n", "2", "--quick", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{err}");
        assert!(!out.exists());
    }
    let o = infer()
        .args(["study", "--model"])
        .arg(&model)
        .arg("--priors-from")
        .arg(&sweep)
        .arg(&base)
        .arg("--source-images")
        .arg(&data)
        .args(["--n", "2", "--seed", "3", "--quick", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    let rows = read_json(&out.join("comparison.json"));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for (r, (name, d)) in rows.iter().zip([("ld2", 2), ("ld4", 4), ("base2", 2)]) {
        assert_eq!(r["setting"], name);
        assert_eq!(r["latent_dim"], d);
        assert_eq!(r["systems"], 2);
        assert_eq!(r["fits"], 2, "{r}");
        let cov = r["lens_coverage_68"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&cov), "{r}");
        assert!(r["lens_sd_z"].as_f64().unwrap() > 0.0);
        assert!(r["chi2_dof_median"].as_f64().unwrap() > 0.0);
        let resid = r["source_residual_median"].as_f64().unwrap();
        assert!(resid.is_finite() && resid >= 0.0, "{r}");
        // the lens parameters of the demo model, and no source parameter
        let params = r["params"].as_object().unwrap();
        assert!(
            params.contains_key("lens.theta_e") && !params.keys().any(|k| k.starts_with("src."))
        );
    }
    // the same mocks for every prior: identical observations, system by system
    for i in 0..2 {
        let a = std::fs::read(out.join(format!("ld2/systems/{i:06}/mock/obs.fits"))).unwrap();
        let b = std::fs::read(out.join(format!("ld4/systems/{i:06}/mock/obs.fits"))).unwrap();
        assert!(
            a == b,
            "system {i}: the priors were not given the same mock"
        );
    }
    // a VAE source: the study's identity and each fit's record hold the gradients' metric it ran with
    let study = read_json(&out.join("ld2/study.json"));
    assert_eq!(
        study["identity"]["settings"]["hmc"]["mass_gradients"], true,
        "{study}"
    );
    let fit = read_json(&out.join("ld2/systems/000000/fit/run.json"));
    assert_eq!(fit["config"]["hmc"]["mass_gradients"], true);
    // the baseline is ld2's checkpoint under another name: the same fits, so the same figures
    for key in [
        "lens_abs_mu_z",
        "lens_sd_z",
        "lens_coverage_68",
        "chi2_dof_median",
    ] {
        assert_eq!(rows[0][key], rows[2][key], "{key}");
    }
    let csv = std::fs::read_to_string(out.join("comparison.csv")).unwrap();
    assert!(
        csv.starts_with("setting,latent_dim,") && csv.lines().count() == 4,
        "{csv}"
    );
    assert!(out.join("comparison.png").is_file());
    assert!(text.contains("ld2") && text.contains("cov68"), "{text}");

    // the same comparison in two shards, run by the Slurm scripts of examples/slurm as array tasks 1
    // and 0, then merged by the summary script: the same rows
    let sharded = dir.path().join("compare-sharded");
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/slurm");
    let script = |name: &str, task: Option<usize>| {
        let mut c = Command::new("bash");
        c.arg(scripts.join(name))
            .env("ARCLIGHT_QUIET", "1")
            .env("STUDY_DIR", &sharded)
            .env("MODEL", &model)
            .env("NSYS", "2")
            .env("NSHARDS", "2")
            .env("SEED", "3")
            .env(
                "PRIORS_FROM",
                format!("{} {}", sweep.display(), base.display()),
            )
            .env(
                "STUDY_ARGS",
                format!("--quick --source-images {}", data.display()),
            )
            .env("INFER", env!("CARGO_BIN_EXE_infer"))
            .env("SLURM_CPUS_PER_TASK", "1");
        if let Some(t) = task {
            c.env("SLURM_ARRAY_TASK_ID", t.to_string());
        }
        c.output().unwrap()
    };
    let o = script("study-array.sbatch", Some(1));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("infer study compare"));
    assert!(!sharded.join("comparison.json").exists());
    // a merge before every shard is in is refused, naming the missing system
    let o = script("summarize.sbatch", None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("1 of 2 systems have no result"),
        "{err}"
    );
    let o = script("study-array.sbatch", Some(0));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        sharded
            .join("ld4/shard-1-of-2/results/system-000000.json")
            .is_file()
    );
    let o = script("summarize.sbatch", None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let merged = read_json(&sharded.join("comparison.json"));
    assert_eq!(merged.as_array().unwrap().len(), 3);
    for (a, b) in rows.iter().zip(merged.as_array().unwrap()) {
        for key in [
            "setting",
            "fits",
            "flagged",
            "lens_abs_mu_z",
            "lens_sd_z",
            "lens_coverage_68",
            "chi2_dof_median",
            "source_residual_median",
        ] {
            assert_eq!(a[key], b[key], "{key}: one process {a} vs shards {b}");
        }
    }
}

/// Real-galaxy sources need a model whose source can take an image (VAE or pixelated): with a Sersic
/// source the study stops at its set-up check, before any folder is made, naming the model file.
#[test]
fn images_for_a_model_without_an_image_source_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_set(dir.path());
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml");
    let out = dir.path().join("study");
    let o = infer()
        .args(["study", "--model"])
        .arg(&model)
        .args(["--n", "2", "--quick", "--out"])
        .arg(&out)
        .arg("--source-images")
        .arg(&data)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("study set-up") && err.contains("gigalens2022.toml"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A study's VAE checkpoint is identified by its content: resuming with the same checkpoint spelled
/// another way continues the study; resuming after the checkpoint was retrained in place (its prior
/// changed) is refused, naming the checkpoint.
#[test]
fn the_checkpoint_is_identified_by_content_not_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_vae::tiny_checkpoint(dir.path(), "ck4", 4, 40);
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo.toml");
    let out = dir.path().join("study");
    let run = |ck: &Path, resume: bool| {
        let mut c = infer();
        c.args(["study", "--model"])
            .arg(&model)
            .arg("--checkpoint")
            .arg(ck)
            .args(["--n", "1", "--quick", "--stages", "map", "--out"])
            .arg(&out);
        if resume {
            c.arg("--resume");
        }
        let o = c.output().unwrap();
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let (ok, text) = run(&ck, false);
    assert!(ok, "{text}");
    let study = read_json(&out.join("study.json"));
    assert_eq!(study["checkpoint_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(study["identity"]["checkpoint"], study["checkpoint_sha256"]);
    let (ok, text) = run(&dir.path().join(".").join("ck4"), true);
    assert!(
        ok && text.contains("0 systems fitted now, 1 kept"),
        "{text}"
    );
    let prior = ck.join(arclight_vae::checkpoint::PRIOR_FILE);
    let mut p = std::fs::read_to_string(&prior).unwrap();
    p.push('\n');
    std::fs::write(&prior, p).unwrap();
    let (ok, text) = run(&ck, true);
    assert!(!ok && text.contains("checkpoint"), "{text}");
}
