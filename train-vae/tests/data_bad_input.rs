//! Bad input to `train-vae prepare` / the data-set reader: each a clear error naming the file or
//! flag, a non-zero exit, and nothing left behind (an existing output stays untouched).

mod data_support;

use arclight_vae::dataset::{Split, read_split};
use data_support::*;
use std::path::Path;

/// Run `prepare --catalog cat --out out extra...`; returns (success, stdout, stderr).
fn prepare(cat: &Path, out: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "prepare",
        "--catalog",
        cat.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    (o.status.success(), stdout(&o), stderr(&o))
}

/// A tempdir with a 3-galaxy catalog `cat.fits` over `gals.fits` (128x128 blobs, S/N ~ 25).
fn small_set(variances: [f64; 3], nan_in: Option<usize>, hdus: [i32; 3]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut images: Vec<_> = (0..3).map(|_| blob(128, 1.0, 12.0)).collect();
    if let Some(i) = nan_in {
        images[i].2[5000] = f32::NAN;
    }
    write_images(&dir.path().join("gals.fits"), &images);
    let rows: Vec<Row> = (0..3)
        .map(|i| Row {
            ident: 10 + i as i32,
            file: "gals.fits",
            hdu: hdus[i],
            noise_variance: variances[i],
        })
        .collect();
    write_catalog(&dir.path().join("cat.fits"), &rows);
    dir
}

const OK_VAR: f64 = 0.04 * 0.04;

#[test]
fn a_good_small_set_works() {
    let d = small_set([OK_VAR; 3], None, [0, 1, 2]);
    let out = d.path().join("out/set.h5");
    let (ok, so, se) = prepare(&d.path().join("cat.fits"), &out, &["--split", "1,1,1"]);
    assert!(ok, "{se}");
    assert!(
        so.contains("kept 3 -> train 1, validation 1, test 1"),
        "{so}"
    );
    assert_eq!(entries(&d.path().join("out")), vec!["set.h5"]);
}

#[test]
fn missing_catalog_file() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("x.h5");
    let (ok, _, se) = prepare(&d.path().join("nope.fits"), &out, &[]);
    assert!(!ok);
    assert!(se.contains("nope.fits") && se.contains("not found"), "{se}");
    assert!(entries(d.path()).is_empty());
}

#[test]
fn truncated_catalog() {
    let d = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(shipped(PALTAS)).unwrap();
    let cat = d.path().join("real_galaxy_catalog_23.5.fits");
    std::fs::write(&cat, &bytes[..2880 + 1000]).unwrap();
    let (ok, _, se) = prepare(&cat, &d.path().join("x.h5"), &[]);
    assert!(!ok);
    assert!(se.contains("real_galaxy_catalog_23.5.fits"), "{se}");
    assert_eq!(entries(d.path()), vec!["real_galaxy_catalog_23.5.fits"]);
}

#[test]
fn truncated_image_file() {
    let d = tempfile::tempdir().unwrap();
    for f in [
        "real_galaxy_catalog_23.5.fits",
        "real_galaxy_catalog_23.5_fits.fits",
    ] {
        std::fs::copy(
            shipped(&format!("paltas_23.5_trimmed/{f}")),
            d.path().join(f),
        )
        .unwrap();
    }
    let img = std::fs::read(shipped(
        "paltas_23.5_trimmed/real_galaxy_images_23.5_n1.fits",
    ))
    .unwrap();
    std::fs::write(
        d.path().join("real_galaxy_images_23.5_n1.fits"),
        &img[..img.len() / 3],
    )
    .unwrap();
    let out = d.path().join("x.h5");
    // An existing output must survive a failed run unchanged.
    std::fs::write(&out, b"previous data set").unwrap();
    let (ok, _, se) = prepare(&d.path().join("real_galaxy_catalog_23.5.fits"), &out, &[]);
    assert!(!ok);
    assert!(se.contains("real_galaxy_images_23.5_n1.fits"), "{se}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous data set");
    assert_eq!(entries(d.path()).len(), 4, "{:?}", entries(d.path()));
}

#[test]
fn missing_hdu() {
    let d = small_set([OK_VAR; 3], None, [0, 1, 7]);
    let (ok, _, se) = prepare(&d.path().join("cat.fits"), &d.path().join("x.h5"), &[]);
    assert!(!ok);
    assert!(
        se.contains("gals.fits") && se.contains("HDU 7 does not exist"),
        "{se}"
    );
    assert!(!d.path().join("x.h5").exists());
    assert_eq!(entries(d.path()), vec!["cat.fits", "gals.fits"]);
}

#[test]
fn nan_pixels_error_or_counted() {
    let d = small_set([OK_VAR; 3], Some(1), [0, 1, 2]);
    let cat = d.path().join("cat.fits");
    let out = d.path().join("x.h5");
    let (ok, _, se) = prepare(&cat, &out, &[]);
    assert!(!ok);
    assert!(
        se.contains("gals.fits[HDU 1]") && se.contains("NaN") && se.contains("IDENT 11"),
        "{se}"
    );
    assert_eq!(entries(d.path()), vec!["cat.fits", "gals.fits"]);
    let (ok, so, se) = prepare(&cat, &out, &["--skip-bad-stamps"]);
    assert!(ok, "{se}");
    assert!(so.contains("non_finite_pixels        1"), "{so}");
    // The NaN stamp never reaches the data set.
    let s = read_split(&out, Split::Train).unwrap();
    assert!(!s.ident.contains(&11) && s.images.iter().all(|v| v.is_finite()));
}

#[test]
fn zero_or_negative_noise_variance() {
    for bad in [0.0, -1e-5] {
        let d = small_set([OK_VAR, bad, OK_VAR], None, [0, 1, 2]);
        let cat = d.path().join("cat.fits");
        let out = d.path().join("x.h5");
        let (ok, _, se) = prepare(&cat, &out, &[]);
        assert!(!ok);
        assert!(
            se.contains("cat.fits") && se.contains("NOISE_VARIANCE") && se.contains("IDENT 11"),
            "{se}"
        );
        assert!(!out.exists());
        let (ok, so, se) = prepare(&cat, &out, &["--skip-bad-stamps"]);
        assert!(ok, "{se}");
        assert!(
            so.contains("noise_variance_invalid   1") && so.contains("kept 2"),
            "{so}"
        );
    }
}

#[test]
fn empty_after_cuts_names_the_cut() {
    let d = small_set([OK_VAR; 3], None, [0, 1, 2]);
    let out = d.path().join("x.h5");
    let (ok, _, se) = prepare(
        &d.path().join("cat.fits"),
        &out,
        &["--snr-min", "1000", "--snr-max", "2000"],
    );
    assert!(!ok);
    assert!(
        se.contains("empty after the cuts")
            && se.contains("snr_below_min")
            && se.contains("--snr-min"),
        "{se}"
    );
    let (ok, _, se) = prepare(&d.path().join("cat.fits"), &out, &["--min-size", "200"]);
    assert!(!ok);
    assert!(
        se.contains("too_small") && se.contains("--min-size"),
        "{se}"
    );
    assert_eq!(entries(d.path()), vec!["cat.fits", "gals.fits"]);
}

#[test]
fn bad_flags() {
    let d = small_set([OK_VAR; 3], None, [0, 1, 2]);
    let cat = d.path().join("cat.fits");
    let out = d.path().join("x.h5");
    let (ok, _, se) = prepare(&cat, &out, &["--snr-minimum", "3"]);
    assert!(!ok && se.contains("--snr-minimum"), "{se}");
    let (ok, _, se) = prepare(&cat, &out, &["--split", "1,2"]);
    assert!(!ok && se.contains("--split"), "{se}");
    let (ok, _, se) = prepare(&cat, &out, &["--snr-block", "5"]);
    assert!(!ok && se.contains("--snr-block"), "{se}");
    let o = run(&["prepare", "--out", out.to_str().unwrap()]);
    assert!(
        !o.status.success() && stderr(&o).contains("--catalog"),
        "{}",
        stderr(&o)
    );
    assert_eq!(entries(d.path()), vec!["cat.fits", "gals.fits"]);
}

#[test]
fn crop_zero_is_refused_before_the_run_record() {
    let d = small_set([OK_VAR; 3], None, [0, 1, 2]);
    let cat = d.path().join("cat.fits");
    let out = d.path().join("x.h5");
    let exp = d.path().join("exp");
    let (ok, _, se) = prepare(
        &cat,
        &out,
        &["--crop", "0", "--experiments", exp.to_str().unwrap()],
    );
    assert!(
        !ok && se.contains("--crop 0") && !se.contains("panicked"),
        "{se}"
    );
    // refused before any stamp work: no run record left "running", no output
    assert_eq!(entries(d.path()), vec!["cat.fits", "gals.fits"]);
}

#[test]
fn corrupt_hdf5_is_named() {
    let d = tempfile::tempdir().unwrap();
    // A real data set, truncated in the middle.
    let good = d.path().join("good.h5");
    let o = run(&[
        "synth",
        "--n",
        "40",
        "--seed",
        "1",
        "--out",
        good.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&good).unwrap();
    let bad = d.path().join("broken.h5");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let e = format!("{:#}", read_split(&bad, Split::Train).unwrap_err());
    assert!(e.contains("broken.h5"), "{e}");
    let junk = d.path().join("junk.h5");
    std::fs::write(&junk, b"not an HDF5 file at all").unwrap();
    let e = format!("{:#}", read_split(&junk, Split::Test).unwrap_err());
    assert!(
        e.contains("junk.h5") && e.contains("not a readable HDF5"),
        "{e}"
    );
}

/// A `prepare` killed before its clean-up leaves its scratch file (1.4 GB for the full COSMOS
/// sample) and a half-written output beside the output; the next `prepare` to that output removes
/// them (their process is gone) and says so, and leaves a live process's files alone.
#[test]
fn a_killed_run_s_leftovers_are_removed_by_the_next() {
    let d = small_set([OK_VAR; 3], None, [0, 1, 2]);
    let cat = d.path().join("cat.fits");
    let out = d.path().join("x.h5");
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let live = std::process::id();
    for f in [
        format!(".x.h5.scratch-{dead}"),
        format!(".x.h5.tmp-{dead}"),
        format!(".x.h5.tmp-{live}"),
    ] {
        std::fs::write(d.path().join(f), b"partial").unwrap();
    }
    let exp = d.path().join("exp");
    let (ok, _, se) = prepare(
        &cat,
        &out,
        &["--split", "1,1,1", "--experiments", exp.to_str().unwrap()],
    );
    assert!(ok, "{se}");
    assert!(
        se.contains(&format!(".x.h5.scratch-{dead}, left by an interrupted run")),
        "{se}"
    );
    let left = entries(d.path());
    assert!(
        left.contains(&format!(".x.h5.tmp-{live}"))
            && !left.iter().any(|f| f.ends_with(&format!("-{dead}"))),
        "{left:?}"
    );
}
