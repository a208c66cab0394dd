//! Sersic amplitude units and what they do to multistart MAP (GIGA-Lens Sec. 2.3).
//!
//! Model files give Sersic amplitudes in lenstronomy's convention (surface brightness at R_sersic in
//! counts/s per arcsec^2), and a pixel receives that times the pixel area
//! (`infer::model::forward::sersic_amp_scale`). Read as counts/s per pixel instead, the eq. (8)
//! amplitudes of `gigalens2022.toml` make images 1/0.065^2 ~ 237x too bright, the posterior far
//! sharper than the paper's, and MAP from starts 0.1 (unconstrained units) around the truth ends at
//! chi^2/n ~ 3 instead of ~ 1.

use std::path::Path;

use burn::tensor::Device;
use infer::inference::{LogDensity, MapOptions, multistart_map, no_progress};
use infer::model::forward::sersic_amp_scale;
use infer::model::likelihood::ModelLikelihood;
use infer::model::observation::Observation;
use infer::model::spec::ModelSpec;
use infer::pipeline::problem::Problem;
use infer::prob::Posterior;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// A round n = 1 Sersic lens light with every parameter fixed, no PSF and no supersampling, on a 21 x 21
/// grid of 0.1" pixels: the pixel centred at (0.5", 0) lies exactly at R = R_sersic = 0.5".
const UNITS_MODEL: &str = r#"
name = "units"
[grid]
n = 21
pixel_scale = 0.1
supersample = 1
[psf]
type = "none"
[noise]
sigma_bkg = 0.1
[[mass]]
type = "sis"
theta_e = 1.0
[[lens_light]]
type = "sersic"
amp = 100.0
r_sersic = 0.5
n_sersic = 1.0
center_x = 0.0
center_y = 0.0
[[source]]
type = "sersic"
amp = "lognormal(ln 1, 0.1)"
r_sersic = 0.1
n_sersic = 1.0
center_x = 5.0
center_y = 5.0
"#;

#[test]
fn sersic_amp_is_surface_brightness_per_square_arcsec() {
    let dev = Device::flex();
    let spec = ModelSpec::parse(UNITS_MODEL, Path::new("units.toml")).unwrap();
    assert!((sersic_amp_scale(&spec) - 0.01).abs() < 1e-15);
    let problem = Problem::from_spec(spec, None, &dev).unwrap();
    let (layout, slots) = problem.layout().unwrap();
    assert_eq!(
        layout.dim(),
        1,
        "only the (far away) source amplitude is free"
    );
    let fwd = problem.forward(slots, &dev).unwrap();
    let blank = Observation::new(Path::new("mem"), 21, 21, vec![0.0; 441], None, None).unwrap();
    let lik = ModelLikelihood::new(fwd, &blank, false).unwrap();
    let img = lik.tensor.model_images(&[1.0], 1).unwrap();
    // Row 10 is y = 0; column 15 is x = 0.5" = R_sersic: amp x pixel area = 100 x 0.01.
    let at_r_sersic = img[10 * 21 + 15] as f64;
    assert!(
        (at_r_sersic - 1.0).abs() < 1e-5,
        "pixel at R_sersic: {at_r_sersic}"
    );
    // b_n(1) = 1.6721: one pixel further out (R = 0.6") the profile has dropped by exp(-b_n / 5).
    let further = img[10 * 21 + 16] as f64;
    let want = (-1.6721f64 * (0.6 / 0.5 - 1.0)).exp();
    assert!((further - want).abs() < 1e-5, "{further} vs {want}");
}

#[test]
fn map_from_starts_near_the_truth_reaches_chi2_one_on_gigalens2022() {
    let dev = Device::flex();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml");
    let problem = Problem::load(&model, None, &dev).unwrap();
    let (layout, slots) = problem.layout().unwrap();
    let (sim_layout, _) = problem.sim_layout().unwrap();
    assert_eq!(sim_layout.column_names(), layout.column_names());
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let truth = sim_layout.sample_prior_physical(&mut rng, 1);
    let fwd = problem.forward(slots, &dev.clone().autodiff()).unwrap();

    // The mock: the model at the truth plus Gaussian noise of the eq. (6) variance
    // (sigma_bkg^2 + model / t_exp: background and the Gaussian limit of the Poisson term).
    let (n, sigma_bkg, t_exp) = (80, 0.2, 100.0);
    let blank = Observation::new(Path::new("mem"), n, n, vec![0.0; n * n], None, None).unwrap();
    let clean = ModelLikelihood::new(fwd.clone(), &blank, false)
        .unwrap()
        .tensor
        .model_images(&truth, 1)
        .unwrap();
    let peak = clean.iter().fold(0.0f32, |m, v| m.max(*v));
    assert!(
        peak > 5.0 && peak < 2000.0,
        "brightest pixel {peak} counts/s: eq. (8) amplitudes are per arcsec^2"
    );
    let data: Vec<f32> = clean
        .iter()
        .map(|&m| {
            let sd = (sigma_bkg * sigma_bkg + m.max(0.0) as f64 / t_exp).sqrt();
            let e: f64 = StandardNormal.sample(&mut rng);
            (m as f64 + sd * e) as f32
        })
        .collect();
    let obs = Observation::new(Path::new("mem"), n, n, data, None, None).unwrap();
    let lik = ModelLikelihood::new(fwd, &obs, true).unwrap();
    assert_eq!(lik.backend(), "fused");
    let post = Posterior::new(layout.clone(), lik).unwrap();
    let d = post.dim();
    let dof = (n * n) as f64;
    let chi2_truth = post.likelihood().tensor.chi2(&truth, 1).unwrap()[0] / dof;
    assert!(
        (chi2_truth - 1.0).abs() < 0.05,
        "chi2/n at the truth {chi2_truth}"
    );

    // 8 starts 0.1 around the truth in unconstrained space, GIGA-Lens Table 1 schedule.
    let mut u = vec![0.0; d];
    layout.from_physical(&truth, &mut u).unwrap();
    let mut starts = Vec::with_capacity(8 * d);
    for _ in 0..8 {
        for &uk in &u {
            let e: f64 = StandardNormal.sample(&mut rng);
            starts.push(uk + 0.1 * e);
        }
    }
    let res = multistart_map(&post, &starts, &MapOptions::default(), no_progress).unwrap();
    let mut best = vec![0.0; d];
    layout.to_physical(res.best(), &mut best);
    let chi2_best = post.likelihood().tensor.chi2(&best, 1).unwrap()[0] / dof;
    assert!(
        chi2_best < 1.1,
        "best MAP start ends at chi2/n = {chi2_best} (truth {chi2_truth})"
    );
    let k = layout.column("lens.theta_e").unwrap();
    let (te, te_true) = (best[k], truth[k]);
    assert!(
        (te / te_true - 1.0).abs() < 0.05,
        "theta_e {te} vs {te_true}"
    );
}
