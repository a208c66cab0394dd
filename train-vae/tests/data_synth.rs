//! The synthetic galaxy generator: determinism per seed, morphological variety, noise level
//! about 1/50 of the peak, and the `synth` subcommand's output.

mod data_support;

use arclight_vae::dataset::{IMAGE_SIZE, Split, read_provenance, read_split};
use data_support::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use train_vae::data::preprocess::border_sigma;
use train_vae::data::synth::{
    Arms, Bulge, Disk, GalaxyParams, SynthConfig, galaxy, generate, generate_range, render_galaxy,
    render_noiseless,
};

#[test]
fn deterministic_per_seed_and_independent_of_chunking() {
    let cfg = SynthConfig::default();
    let a = generate(24, 7, &cfg);
    assert_eq!(a, generate(24, 7, &cfg));
    let b = generate(24, 8, &cfg);
    assert_ne!(a.images, b.images);
    // Galaxy i does not depend on how the range is cut.
    let tail = generate_range(7, 10..24, &cfg);
    assert_eq!(tail.images[..], a.images[10 * IMAGE_SIZE * IMAGE_SIZE..]);
    assert_eq!(tail.ident, (10..24).collect::<Vec<i64>>());
}

#[test]
fn every_image_is_normalised_and_finite() {
    let s = generate(64, 3, &SynthConfig::default());
    assert_eq!((s.n, s.size), (64, IMAGE_SIZE));
    for i in 0..s.n {
        let im = s.image(i);
        assert!(im.iter().all(|v| v.is_finite()));
        assert_eq!(im.iter().cloned().fold(f32::MIN, f32::max), 1.0);
    }
}

#[test]
fn noise_is_about_one_fiftieth_of_the_peak() {
    let s = generate(60, 11, &SynthConfig::default());
    let mut ratios = Vec::new();
    for i in 0..s.n {
        // Stored sigma = 0.02 * noiseless peak / noisy max: about 1/50.
        let sigma = s.noise_sigma[i] as f64;
        assert!(sigma > 0.015 && sigma < 0.022, "galaxy {i}: sigma {sigma}");
        // The border of the stamp is nearly pure noise: its robust scatter matches sigma.
        let px: Vec<f64> = s.image(i).iter().map(|&v| v as f64).collect();
        ratios.push(border_sigma(IMAGE_SIZE, IMAGE_SIZE, &px, 4) / sigma);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    assert!(
        (median - 1.0).abs() < 0.1,
        "median border sigma / stored sigma = {median}"
    );
}

#[test]
fn all_morphology_classes_occur() {
    let mut rng = StdRng::seed_from_u64(5);
    let (mut ell, mut pure_disk, mut mixed, mut arms, mut clumps) = (0, 0, 0, 0, 0);
    for _ in 0..400 {
        let p = GalaxyParams::sample(&mut rng);
        if p.bulge_fraction == 1.0 {
            ell += 1;
        } else if p.bulge_fraction == 0.0 {
            pure_disk += 1;
        } else {
            mixed += 1;
        }
        arms += p.disk.arms.is_some() as usize * (p.bulge_fraction < 1.0) as usize;
        clumps += (!p.clumps.is_empty()) as usize;
        assert!(p.bulge.q > 0.0 && p.bulge.q <= 1.0 && p.disk.q > 0.0 && p.disk.q <= 1.0);
    }
    // 10% / 25% / 65% classes; 60% of disks with arms, 65% with clumps (binomial slack).
    assert!((20..=65).contains(&ell), "{ell}");
    assert!((70..=135).contains(&pure_disk), "{pure_disk}");
    assert!((225..=295).contains(&mixed), "{mixed}");
    assert!(arms > 150 && clumps > 150, "arms {arms}, clumps {clumps}");
}

fn disk(arms: Option<Arms>) -> GalaxyParams {
    GalaxyParams {
        x0: 0.0,
        y0: 0.0,
        bulge_fraction: 0.0,
        bulge: Bulge {
            r_e: 2.0,
            n: 4.0,
            q: 1.0,
            phi: 0.0,
        },
        disk: Disk {
            r_d: 7.0,
            q: 1.0,
            phi: 0.0,
            arms,
        },
        clumps: Vec::new(),
    }
}

/// Fraction of light within radius `r` of the image centre.
fn inner_light(img: &[f64], r: f64) -> f64 {
    let c = IMAGE_SIZE as f64 / 2.0;
    let mut inner = 0.0;
    for (i, v) in img.iter().enumerate() {
        let (y, x) = (
            (i / IMAGE_SIZE) as f64 + 0.5 - c,
            (i % IMAGE_SIZE) as f64 + 0.5 - c,
        );
        if x.hypot(y) < r {
            inner += v;
        }
    }
    inner / img.iter().sum::<f64>()
}

#[test]
fn different_morphologies_give_different_images() {
    let cfg = SynthConfig::default();
    let smooth = render_noiseless(&disk(None), &cfg);
    let spiral = render_noiseless(
        &disk(Some(Arms {
            m: 2,
            pitch: 20f64.to_radians(),
            amplitude: 0.9,
            sharpness: 3.0,
            phase: 0.0,
        })),
        &cfg,
    );
    let mut elliptical = disk(None);
    elliptical.bulge_fraction = 1.0;
    let elliptical = render_noiseless(&elliptical, &cfg);
    // An n=4 spheroid of r_e = 2 px is far more concentrated than an r_d = 7 px disk.
    assert!(inner_light(&elliptical, 4.0) > 2.0 * inner_light(&smooth, 4.0));
    // Arms break the disk's rotational symmetry: compare with the image rotated by 90 degrees.
    let asym = |im: &[f64]| -> f64 {
        let n = IMAGE_SIZE;
        (0..n * n)
            .map(|i| (im[i] - im[(n - 1 - i % n) * n + i / n]).abs())
            .sum::<f64>()
            / im.iter().sum::<f64>()
    };
    assert!(asym(&smooth) < 1e-6, "{}", asym(&smooth));
    assert!(asym(&spiral) > 0.1, "{}", asym(&spiral));
    // Noise draws differ between calls, the underlying galaxy does not.
    let mut rng = StdRng::seed_from_u64(1);
    let (a, _) = render_galaxy(&disk(None), &cfg, &mut rng);
    let (b, _) = render_galaxy(&disk(None), &cfg, &mut rng);
    assert_ne!(a, b);
    assert_eq!(galaxy(9, 4, &cfg), galaxy(9, 4, &cfg));
    assert_ne!(galaxy(9, 4, &cfg).1, galaxy(9, 5, &cfg).1);
}

#[test]
fn synth_subcommand_writes_a_seeded_data_set() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.h5"), d.path().join("b.h5"));
    for out in [&a, &b] {
        let o = run(&[
            "synth",
            "--n",
            "50",
            "--seed",
            "4",
            "--out",
            out.to_str().unwrap(),
            "--split",
            "8,1,1",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o).contains("train 40, validation 5, test 5"),
            "{}",
            stdout(&o)
        );
    }
    for split in Split::ALL {
        let (x, y) = (
            read_split(&a, split).unwrap(),
            read_split(&b, split).unwrap(),
        );
        assert_eq!(x, y);
    }
    let train = read_split(&a, Split::Train).unwrap();
    assert_eq!(train, generate(40, 4, &SynthConfig::default()));
    let p = read_provenance(&a).unwrap();
    assert_eq!(p["seed"], 4);
    assert_eq!(p["generator"]["config"]["noise"], 0.02);
    assert_eq!(p["split_sizes"]["test"], 5);
    let o = run(&[
        "synth",
        "--n",
        "0",
        "--out",
        d.path().join("c.h5").to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--n"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "synth",
        "--n",
        "5",
        "--noise",
        "-1",
        "--out",
        d.path().join("c.h5").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert_eq!(entries(d.path()), vec!["a.h5", "b.h5"]);
}
