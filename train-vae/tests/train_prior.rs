//! The latent prior of Sec. 2.1: a Gaussian fitted to the encoded means, covariance x 9, with a
//! checked Cholesky factor.

use arclight_vae::prior::{LatentPrior, PAPER_PRIOR_SCALE, cholesky};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

fn correlated_samples(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n * d);
    for _ in 0..n {
        let e: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        // z_k = k + e_k + 0.5 e_{k-1}: non-zero mean, correlated neighbours.
        for k in 0..d {
            out.push(k as f64 + e[k] + if k > 0 { 0.5 * e[k - 1] } else { 0.0 });
        }
    }
    out
}

#[test]
fn covariance_is_nine_times_the_sample_covariance_and_factor_checks() {
    let (n, d) = (500, 5);
    let z = correlated_samples(n, d, 1);
    let prior = LatentPrior::fit(&z, n, d, PAPER_PRIOR_SCALE).unwrap();
    let unit = LatentPrior::fit(&z, n, d, 1.0).unwrap();
    // Sample mean and unbiased covariance by hand.
    let mean: Vec<f64> = (0..d)
        .map(|k| (0..n).map(|i| z[i * d + k]).sum::<f64>() / n as f64)
        .collect();
    for i in 0..d {
        assert!((prior.mean[i] - mean[i]).abs() < 1e-12);
        for j in 0..d {
            let c: f64 = (0..n)
                .map(|s| (z[s * d + i] - mean[i]) * (z[s * d + j] - mean[j]))
                .sum::<f64>()
                / (n as f64 - 1.0);
            assert!((unit.cov[i * d + j] - c).abs() < 1e-10, "cov[{i},{j}]");
            assert!(
                (prior.cov[i * d + j] - 9.0 * c).abs() < 1e-9,
                "9 x cov[{i},{j}]"
            );
        }
    }
    assert_eq!(prior.scale, 9.0);
    assert_eq!(prior.jitter, 0.0);
    assert_eq!(prior.n_images, n);
    prior.validate().unwrap();
    // L L^T reproduces the scaled covariance.
    for i in 0..d {
        for j in 0..d {
            let llt: f64 = (0..d)
                .map(|k| prior.chol[i * d + k] * prior.chol[j * d + k])
                .sum();
            assert!((llt - prior.cov[i * d + j]).abs() < 1e-10);
        }
    }
    // The x9 prior is 3x wider: log density at mean + 3 sigma-units of the x9 prior equals that
    // of the x1 prior at mean + 1 unit, up to the normalisation log(3^d).
    let eps = [1.0, -0.5, 0.2, 0.0, 0.3];
    let z9 = prior.transform(&eps);
    let z1 = unit.transform(&eps);
    let diff = prior.log_prob(&z9) - unit.log_prob(&z1);
    assert!((diff + d as f64 * 3f64.ln()).abs() < 1e-9, "{diff}");
}

#[test]
fn round_trips_through_json_and_rejects_a_corrupt_factor() {
    let (n, d) = (50, 3);
    let prior = LatentPrior::fit(&correlated_samples(n, d, 2), n, d, 9.0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prior.json");
    arclight_core::write_json_atomic(&path, &prior).unwrap();
    // serde_json's default float parser may be 1 ulp off (no `float_roundtrip` feature).
    let back = LatentPrior::load(&path).unwrap();
    let near = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 4.0 * f64::EPSILON * y.abs())
    };
    assert!(
        near(&back.mean, &prior.mean)
            && near(&back.cov, &prior.cov)
            && near(&back.chol, &prior.chol)
    );
    assert_eq!((back.latent_dim, back.scale, back.n_images), (d, 9.0, n));
    let mut bad = prior.clone();
    bad.chol[0] *= 1.01;
    arclight_core::write_json_atomic(&path, &bad).unwrap();
    let e = format!("{:#}", LatentPrior::load(&path).unwrap_err());
    assert!(
        e.contains("prior.json") && e.contains("chol does not factor cov"),
        "{e}"
    );
}

#[test]
fn too_few_images_get_a_recorded_jitter_and_collapsed_encoders_fail() {
    // 3 images in 5 dimensions: the sample covariance has rank 2.
    let (n, d) = (3, 5);
    let prior = LatentPrior::fit(&correlated_samples(n, d, 3), n, d, 9.0).unwrap();
    assert!(prior.jitter > 0.0);
    prior.validate().unwrap();
    // Identical means: zero covariance, an error that says what happened.
    let e = LatentPrior::fit(&[0.5; 4 * 2], 4, 2, 9.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("collapsed"), "{e}");
    assert!(LatentPrior::fit(&[1.0, 2.0], 1, 2, 9.0).is_err());
    assert!(cholesky(&[1.0, 0.0, 0.0, -1.0], 2).is_none());
}
