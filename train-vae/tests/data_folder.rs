//! `prepare --folder`: a folder of FITS/PNG cutouts, noise from the stamp border.

mod data_support;

use arclight_vae::dataset::{Split, read_provenance, read_split};
use data_support::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

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

/// A noisy blob on a sky of 0.3 (so the noise is not clipped at black), in [0, 1].
fn png_pixels(n: usize, seed: u64) -> Vec<f32> {
    noisy_blob(n, 0.6, 0.04, seed)
        .into_iter()
        .map(|v| (v + 0.3).clamp(0.0, 1.0))
        .collect()
}

#[test]
fn catalog_and_folders_mixed_get_unique_idents_sources_and_stated_conversions() {
    let d = tempfile::tempdir().unwrap();
    // a catalog of IDENT 10, 11, 12 (S/N ~ 25)
    let images: Vec<_> = (0..3).map(|_| blob(128, 1.0, 12.0)).collect();
    write_images(&d.path().join("gals.fits"), &images);
    let rows: Vec<Row> = (0..3)
        .map(|i| Row {
            ident: 10 + i,
            file: "gals.fits",
            hdu: i,
            noise_variance: 0.04 * 0.04,
        })
        .collect();
    write_catalog(&d.path().join("cat.fits"), &rows);
    // a folder of two FITS cutouts (their idents used to be 0 and 1 in every folder)
    let fits_dir = d.path().join("fits");
    std::fs::create_dir(&fits_dir).unwrap();
    for i in 0..2 {
        let img = noisy_blob(128, 1.0, 0.04, 20 + i);
        arclight_core::fits::write_image_f32(
            &fits_dir.join(format!("c{i}.fits")),
            128,
            128,
            &img,
            &[],
        )
        .unwrap();
    }
    // a folder of an RGB PNG and a 16-bit grey PNG
    let png_dir = d.path().join("png");
    std::fs::create_dir(&png_dir).unwrap();
    let n = 128;
    let rgb: Vec<u8> = png_pixels(n, 30)
        .iter()
        .flat_map(|v| {
            let g = (v * 255.0).round() as u8;
            [g, g, g]
        })
        .collect();
    image::RgbImage::from_raw(n as u32, n as u32, rgb)
        .unwrap()
        .save(png_dir.join("a_rgb.png"))
        .unwrap();
    let l16: Vec<u16> = png_pixels(n, 31)
        .iter()
        .map(|v| (v * 65535.0).round() as u16)
        .collect();
    image::ImageBuffer::<image::Luma<u16>, _>::from_raw(n as u32, n as u32, l16)
        .unwrap()
        .save(png_dir.join("b_grey16.png"))
        .unwrap();

    let out = d.path().join("mixed.h5");
    let o = run(&[
        "prepare",
        "--catalog",
        d.path().join("cat.fits").to_str().unwrap(),
        "--folder",
        fits_dir.to_str().unwrap(),
        "--folder",
        png_dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--split",
        "1,0,0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("kept 7"), "{}", stdout(&o));
    let se = stderr(&o);
    assert!(
        se.contains("png: 1 PNG cutout(s) are not 8-bit grey and were converted: 8-bit Rgb8: RGB converted to luminance")
            && se.contains("(e.g. a_rgb.png)")
            && se.contains("16-bit L16: 16-bit values scaled to [0, 1] by 1/65535 (e.g. b_grey16.png)"),
        "{se}"
    );

    let s = read_split(&out, Split::Train).unwrap();
    let mut pairs: Vec<(i64, String)> = s.ident.iter().copied().zip(s.source.clone()).collect();
    pairs.sort();
    let gals = d.path().join("gals.fits").display().to_string();
    let expect: Vec<(i64, String)> = vec![
        (10, format!("{gals}[HDU 0]")),
        (11, format!("{gals}[HDU 1]")),
        (12, format!("{gals}[HDU 2]")),
        (13, fits_dir.join("c0.fits").display().to_string()),
        (14, fits_dir.join("c1.fits").display().to_string()),
        (15, png_dir.join("a_rgb.png").display().to_string()),
        (16, png_dir.join("b_grey16.png").display().to_string()),
    ];
    assert_eq!(pairs, expect);

    let p = read_provenance(&out).unwrap();
    assert_eq!(p["folder_files"][0]["first_ident"], 13);
    assert_eq!(p["folder_files"][1]["first_ident"], 15);
    let conv = p["folder_files"][1]["png_conversions"].as_object().unwrap();
    assert_eq!(conv.len(), 2, "{conv:?}");
    assert!(
        conv.iter()
            .any(|(k, v)| k.contains("luminance") && v[0] == "a_rgb.png")
    );
    assert!(
        conv.iter()
            .any(|(k, v)| k.contains("1/65535") && v[0] == "b_grey16.png")
    );
    assert_eq!(p["duplicate_idents"], serde_json::json!([]));
}

/// A new galaxy set as `../shared/data/hst-f814w-201` ships one: gzip-compressed FITS, a small galaxy in a
/// large stamp with masked (zero) sky. `.fits.gz` files are read as they are, and `--crop N` keeps the
/// centred N x N native pixels before the 64x64 area averaging.
#[test]
fn gzip_fits_cutouts_cropped_around_the_galaxy() {
    use std::io::Write;
    let d = tempfile::tempdir().unwrap();
    let cut = d.path().join("cutouts");
    std::fs::create_dir(&cut).unwrap();
    let n = 300;
    // a blob of sigma 6 px in the centre of a 300 px stamp, exact zeros elsewhere (masked)
    let img: Vec<f32> = (0..n * n)
        .map(|k| {
            let (y, x) = ((k / n) as f32 - 149.5, (k % n) as f32 - 149.5);
            let r2 = x * x + y * y;
            if r2 < 40.0 * 40.0 {
                (-r2 / 72.0).exp()
            } else {
                0.0
            }
        })
        .collect();
    let plain = d.path().join("g.fits");
    arclight_core::fits::write_image_f32(&plain, n, n, &img, &[]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(cut.join("g0.fits.gz")).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    gz.finish().unwrap();
    let out = d.path().join("f.h5");
    let o = run(&[
        "prepare",
        "--folder",
        cut.to_str().unwrap(),
        "--noise-sigma",
        "0.01",
        "--crop",
        "64",
        "--snr-min",
        "0",
        "--snr-max",
        "inf",
        "--out",
        out.to_str().unwrap(),
        "--split",
        "1,0,0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let set = read_split(&out, Split::Train).unwrap();
    assert_eq!(set.n, 1);
    // crop 64 of 300 then 64 -> 64: the pixels are the centred 64x64 of the stamp over its maximum
    let o0 = (n - 64) / 2;
    let peak = (0..64)
        .flat_map(|r| (0..64).map(move |c| (r, c)))
        .map(|(r, c)| img[(o0 + r) * n + o0 + c])
        .fold(0f32, f32::max);
    for r in 0..64 {
        for c in 0..64 {
            let want = img[(o0 + r) * n + o0 + c] / peak;
            let got = set.images[r * 64 + c];
            assert!(
                (got - want).abs() < 1e-6,
                "pixel ({r}, {c}): {got} vs {want}"
            );
        }
    }
    assert!(
        read_provenance(&out)
            .unwrap()
            .to_string()
            .contains("\"crop\":64")
    );
}
