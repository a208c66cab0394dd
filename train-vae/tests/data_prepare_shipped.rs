//! `prepare` on the three shipped real sets (datasets/cosmos-example): the exact per-cut counts.
//!
//! The counts were checked by hand once, with an independent pure-Python reader of the FITS
//! headers and pixels (crop, area-average, block-average by 4, divide by sqrt(NOISE_VARIANCE)):
//! - GalSim example: 100 rows, all pointing at the absent `real_galaxy_images.fits`;
//! - BTK extension: 100 square stamps, 18 with side >= 64; of those, 6 have
//!   15 <= S/N <= 50 (IDENT 12, 24, 29, 38, 42, 48), 12 fall below 15, none above 50;
//! - paltas: 10 stamps, 8 with both sides >= 64; all Sersic fits succeed with sane parameters;
//!   2 pass the S/N window (IDENT 110283 at 15.80 and 29162 at 38.59; 9205 just misses at
//!   14.995), 6 fall below 15.
//!
//! The stamp-size part is re-derived below from the FITS headers alone.

mod data_support;

use arclight_vae::dataset::{Split, read_provenance, read_split};
use data_support::*;
use fitsio::hdu::HduInfo;
use std::collections::BTreeSet;
use train_vae::data::cuts::{Cut, CutConfig, SnrNoise};
use train_vae::data::prepare::{PrepareConfig, prepare};

fn config(cuts: CutConfig) -> PrepareConfig {
    PrepareConfig {
        catalogs: vec![shipped(BTK), shipped(PALTAS), shipped(EXAMPLE)],
        cuts,
        ..PrepareConfig::default()
    }
}

#[test]
fn paper_cuts_on_the_shipped_sets() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("real.h5");
    let r = prepare(&config(CutConfig::default()), &out).unwrap();
    assert_eq!(r.rows, 210);
    let [btk, paltas, example] = &r.inputs[..] else {
        panic!("three inputs")
    };

    assert_eq!((btk.rows, btk.kept), (100, 6));
    assert_eq!(btk.removed.get(Cut::TooSmall), 82);
    assert_eq!(btk.removed.get(Cut::SnrBelowMin), 12);
    assert_eq!(btk.removed.total(), 94);
    assert!(btk.fit_cut.contains("no Sersic columns"), "{}", btk.fit_cut);

    assert_eq!((paltas.rows, paltas.kept), (10, 2));
    assert_eq!(paltas.removed.get(Cut::TooSmall), 2);
    assert_eq!(paltas.removed.get(Cut::SnrBelowMin), 6);
    assert_eq!(
        paltas.removed.get(Cut::SersicFitFailed) + paltas.removed.get(Cut::SersicFitUnphysical),
        0
    );
    assert_eq!(paltas.removed.total(), 8);
    assert!(paltas.fit_cut.starts_with("applied"), "{}", paltas.fit_cut);

    assert_eq!((example.rows, example.kept), (100, 0));
    assert_eq!(example.removed.get(Cut::ImageFileMissing), 100);
    assert_eq!(example.removed.total(), 100);
    assert_eq!(example.missing_files.len(), 1);
    assert!(example.missing_files[0].ends_with("real_galaxy_images.fits"));

    assert_eq!(r.kept, 8);
    assert_eq!(r.split_sizes, [7, 1, 0]);
    assert_eq!(r.removed.get(Cut::SnrAboveMax), 0);

    // The file holds exactly the survivors, normalised, with their noise sigmas.
    let mut idents = BTreeSet::new();
    for split in Split::ALL {
        let s = read_split(&out, split).unwrap();
        assert_eq!(s.n, r.split_sizes[split.index()]);
        for i in 0..s.n {
            let im = s.image(i);
            assert!(im.iter().all(|v| v.is_finite()));
            assert_eq!(im.iter().cloned().fold(f32::MIN, f32::max), 1.0);
            assert!(
                s.noise_sigma[i] > 0.0 && s.noise_sigma[i] < 0.2,
                "{}",
                s.noise_sigma[i]
            );
            idents.insert(s.ident[i]);
        }
    }
    assert_eq!(
        idents,
        BTreeSet::from([12, 24, 29, 38, 42, 48, 29162, 110283])
    );
    let p = read_provenance(&out).unwrap();
    assert_eq!(p["removed"]["too_small"], 84);
    assert_eq!(p["removed"]["image_file_missing"], 100);
    assert_eq!(p["kept"], 8);
    assert_eq!(p["cuts"]["snr_min"], 15.0);
    assert_eq!(p["split_sizes"]["train"], 7);
    assert_eq!(
        p["inputs"][2]["missing_image_files"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Count stamps with both sides >= 64 from the FITS headers alone (independent of the reader
/// and the cuts).
fn large_stamps(images: &str) -> usize {
    let mut f = fitsio::FitsFile::open(shipped(images)).unwrap();
    let n = f.num_hdus().unwrap();
    (0..n)
        .filter(|&i| match &f.hdu(i).unwrap().info {
            HduInfo::ImageInfo { shape, .. } => {
                shape.len() == 2 && shape[0] >= 64 && shape[1] >= 64
            }
            _ => false,
        })
        .count()
}

#[test]
fn size_cut_matches_the_headers_and_relaxed_flags() {
    assert_eq!(
        large_stamps("btk_26_extension/real_galaxy_images_extension.fits"),
        18
    );
    assert_eq!(
        large_stamps("paltas_23.5_trimmed/real_galaxy_images_23.5_n1.fits"),
        8
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relaxed.h5");
    // No S/N window: every stamp that passes the size cut survives.
    let relaxed = CutConfig {
        snr_min: 0.0,
        snr_max: f64::INFINITY,
        ..CutConfig::default()
    };
    let r = prepare(&config(relaxed), &out).unwrap();
    assert_eq!(r.kept, 18 + 8);
    assert_eq!(r.removed.get(Cut::TooSmall), 84);
    assert_eq!(r.split_sizes, [23, 2, 1]);
    // S/N against the noise of a 64x64 pixel: 12 survive (9 below 15, 5 above 50).
    let image = CutConfig {
        snr_noise: SnrNoise::Image,
        ..CutConfig::default()
    };
    let r = prepare(&config(image), &out).unwrap();
    assert_eq!(
        (
            r.kept,
            r.removed.get(Cut::SnrBelowMin),
            r.removed.get(Cut::SnrAboveMax)
        ),
        (12, 9, 5)
    );
}

#[test]
fn split_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let relaxed = CutConfig {
        snr_min: 0.0,
        snr_max: f64::INFINITY,
        ..CutConfig::default()
    };
    let ids = |seed: u64, name: &str| {
        let out = dir.path().join(name);
        prepare(
            &PrepareConfig {
                seed,
                ..config(relaxed.clone())
            },
            &out,
        )
        .unwrap();
        read_split(&out, Split::Validation).unwrap().ident
    };
    assert_eq!(ids(1, "a.h5"), ids(1, "b.h5"));
    assert_ne!(ids(1, "a.h5"), ids(2, "c.h5"));
}

#[test]
fn cli_prints_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("real.h5");
    let (a, b, c) = (shipped(BTK), shipped(PALTAS), shipped(EXAMPLE));
    let o = run(&[
        "prepare",
        "--catalog",
        a.to_str().unwrap(),
        "--catalog",
        b.to_str().unwrap(),
        "--catalog",
        c.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let so = stdout(&o);
    assert!(
        so.contains("kept 8 -> train 7, validation 1, test 0"),
        "{so}"
    );
    assert!(so.contains("image_file_missing       100"), "{so}");
    assert!(so.contains("too_small                84"), "{so}");
    assert!(so.contains("snr_below_min            18"), "{so}");
    // The missing image file is named once.
    assert_eq!(
        stderr(&o)
            .matches("real_galaxy_images.fits not found")
            .count(),
        1,
        "{}",
        stderr(&o)
    );
    assert_eq!(entries(dir.path()), vec!["real.h5"]);
}

#[test]
fn synthetic_galaxies_mix_into_the_pool() {
    use train_vae::data::prepare::SynthInput;
    use train_vae::data::synth::{SynthConfig, generate};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mix.h5");
    let relaxed = CutConfig {
        snr_min: 0.0,
        snr_max: f64::INFINITY,
        ..CutConfig::default()
    };
    let synth = SynthInput {
        n: 30,
        seed: 2,
        config: SynthConfig::default(),
    };
    let r = prepare(
        &PrepareConfig {
            synth: Some(synth),
            ..config(relaxed)
        },
        &out,
    )
    .unwrap();
    assert_eq!(r.kept, 26 + 30);
    assert_eq!(r.inputs.len(), 4);
    assert_eq!((r.inputs[3].rows, r.inputs[3].kept), (30, 30));
    // Negative idents are synthetic galaxy -(ident) - 1, identical to `synth` output.
    let reference = generate(30, 2, &SynthConfig::default());
    let mut seen = 0;
    for split in Split::ALL {
        let s = read_split(&out, split).unwrap();
        for i in 0..s.n {
            if s.ident[i] < 0 {
                let g = (-s.ident[i] - 1) as usize;
                assert_eq!(s.image(i), reference.image(g));
                assert_eq!(s.noise_sigma[i], reference.noise_sigma[g]);
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 30);
    assert_eq!(read_provenance(&out).unwrap()["synthetic"]["n"], 30);
}
