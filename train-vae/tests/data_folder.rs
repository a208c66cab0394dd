//! `prepare --folder`: a folder of FITS/PNG cutouts, noise from the stamp border.

mod data_support;

use data_support::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use train_vae::data::store::{Split, read_provenance, read_split};

/// A `n x n` blob of peak `peak` plus Gaussian sky noise of `sigma`.
fn noisy_blob(n: usize, peak: f32, sigma: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let g = Normal::new(0.0f32, sigma).unwrap();
    blob(n, peak, n as f32 / 10.0)
        .2
        .into_iter()
        .map(|v| v + g.sample(&mut rng))
        .collect()
}

#[test]
fn fits_cutouts_with_border_noise() {
    let d = tempfile::tempdir().unwrap();
    let cut = d.path().join("cutouts");
    std::fs::create_dir(&cut).unwrap();
    // 128 px blobs of peak 1 and sky sigma 0.04: S/N ~ 1 / 0.04 = 25 (inside 15-50);
    // one at sigma 0.005 (S/N ~ 200, above 50), one of 40 px (too small).
    for (i, sigma) in [0.04f32, 0.04, 0.04, 0.005].iter().enumerate() {
        let img = noisy_blob(128, 1.0, *sigma, i as u64);
        arclight_core::fits::write_image_f32(&cut.join(format!("g{i}.fits")), 128, 128, &img, &[])
            .unwrap();
    }
    let small = noisy_blob(40, 1.0, 0.04, 9);
    arclight_core::fits::write_image_f32(&cut.join("h_small.fits"), 40, 40, &small, &[]).unwrap();
    std::fs::write(cut.join("README.txt"), "not a cutout").unwrap();
    let out = d.path().join("f.h5");
    let o = run(&[
        "prepare",
        "--folder",
        cut.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--split",
        "1,0,0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let so = stdout(&o);
    assert!(
        so.contains("5 rows, kept 3; removed: too_small=1, snr_above_max=1"),
        "{so}"
    );
    let s = read_split(&out, Split::Train).unwrap();
    assert_eq!(s.ident, vec![0, 1, 2]);
    for i in 0..3 {
        // Border MAD estimate of 0.04, through 128 -> 64 (x 1/2), over a peak near 1.
        let sig = s.noise_sigma[i];
        assert!((sig - 0.02).abs() < 0.004, "{sig}");
    }
    let p = read_provenance(&out).unwrap();
    let files = &p["folder_files"][0]["files_in_ident_order"];
    assert_eq!(files[0], "g0.fits");
    assert_eq!(files[4], "h_small.fits");
    assert_eq!(
        p["inputs"][0]["fit_cut"],
        "not applicable: folder of cutouts"
    );
}

#[test]
fn png_cutouts_need_a_noise_estimate() {
    let d = tempfile::tempdir().unwrap();
    let cut = d.path().join("png");
    std::fs::create_dir(&cut).unwrap();
    // A clean blob on a black sky: border MAD = 0, so the noise estimate is invalid.
    let (n, _, img) = blob(96, 1.0, 10.0);
    let mut c = arclight_core::png::Canvas::new(n, n, [0, 0, 0]);
    for (i, v) in img.iter().enumerate() {
        let g = (v * 255.0).round() as u8;
        c.set(i % n, i / n, [g, g, g]);
    }
    c.save(&cut.join("a.png")).unwrap();
    let out = d.path().join("p.h5");
    let o = run(&[
        "prepare",
        "--folder",
        cut.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let se = stderr(&o);
    // the remedy for a clipped sky is a given sigma (--skip-bad-stamps would only drop it)
    assert!(
        se.contains("a.png")
            && se.contains("noise sigma estimated from the stamp border")
            && se.contains("give the pixel noise with --noise-sigma SIGMA"),
        "{se}"
    );
    assert!(!out.exists());
    // With a fixed sigma it is accepted: S/N = max(I_1/4) / 0.03 ~ 1 / 0.03 = 33.
    let o = run(&[
        "prepare",
        "--folder",
        cut.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--noise-sigma",
        "0.03",
        "--split",
        "1,0,0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = read_split(&out, Split::Train).unwrap();
    assert_eq!(s.n, 1);
    let o = run(&[
        "prepare",
        "--folder",
        d.path().join("none").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("not a directory"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_nan_pixel_in_a_folder_cutout_is_named_as_such() {
    let d = tempfile::tempdir().unwrap();
    let cut = d.path().join("cutouts");
    std::fs::create_dir(&cut).unwrap();
    let mut img = noisy_blob(128, 1.0, 0.04, 1);
    // numpy [3, 7] of the file (astropy's view), FITS pixel (x=8, y=4)
    img[3 * 128 + 7] = f32::NAN;
    arclight_core::fits::write_image_f32(&cut.join("g0.fits"), 128, 128, &img, &[]).unwrap();
    let out = d.path().join("f.h5");
    let o = run(&[
        "prepare",
        "--folder",
        cut.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let se = stderr(&o);
    assert!(
        se.contains("g0.fits")
            && se.contains("pixel (x=8, y=4) (FITS, 1-based) = [3, 7] (numpy [row, col]) is NaN")
            && !se.contains("noise sigma"),
        "{se}"
    );
    assert!(!out.exists());
    let o = run(&[
        "prepare",
        "--folder",
        cut.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--skip-bad-stamps",
        "--synth",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("non_finite_pixels        1"),
        "{}",
        stdout(&o)
    );
}
