//! The assembled lens model in f64 (this test binary configures the flex device for f64 before
//! any tensor exists): the likelihood of GIGA-Lens eq. (6) against a hand computation, and the
//! gradient of the full posterior (model file -> forward model -> likelihood -> priors ->
//! bijectors) against central finite differences.

use std::path::Path;
use std::sync::OnceLock;

use burn::tensor::{Device, FloatDType};
use infer::inference::LogDensity;
use infer::model::forward::ForwardModel;
use infer::model::layout;
use infer::model::likelihood::{GaussianImageLikelihood, LensLikelihood};
use infer::model::observation::Observation;
use infer::model::spec::ModelSpec;
use infer::prob::{LogLikelihood, Posterior};
use rand::SeedableRng;

fn f64_device() -> Device {
    static DEV: OnceLock<Device> = OnceLock::new();
    DEV.get_or_init(|| {
        let mut d = Device::flex();
        d.configure(FloatDType::F64)
            .expect("configure flex for f64 before any tensor exists");
        d
    })
    .clone()
}

const MODEL: &str = r#"
name = "small"
[grid]
n = 24
pixel_scale = 0.1
supersample = 2
[psf]
type = "gaussian"
sigma = 0.08
[noise]
sigma_bkg = 0.3
exposure_time = 50.0
[[mass]]
type = "epl"
theta_e = "lognormal(ln 0.8, 0.2)"
gamma = "truncnormal(2, 0.2, 1.5, 2.5)"
e1 = "normal(0, 0.1)"
e2 = "normal(0, 0.1)"
center_x = "normal(0, 0.05)"
center_y = "normal(0, 0.05)"
[[mass]]
type = "shear"
gamma1 = "normal(0, 0.05)"
gamma2 = "normal(0, 0.05)"
[[lens_light]]
type = "sersic"
amp = "lognormal(ln 2000, 0.3)"
r_sersic = "lognormal(ln 0.6, 0.2)"
n_sersic = "uniform(1, 5)"
q = "truncnormal(0.8, 0.1, 0.5, 1)"
phi = "normal(0.3, 0.5)"
[[source]]
type = "sersic"
amp = "lognormal(ln 1500, 0.3)"
r_sersic = "lognormal(ln 0.2, 0.2)"
n_sersic = "uniform(0.5, 3)"
e1 = "truncnormal(0, 0.2, -0.5, 0.5)"
e2 = "truncnormal(0, 0.2, -0.5, 0.5)"
center_x = "normal(0.05, 0.1)"
center_y = "normal(-0.05, 0.1)"
"#;

fn setup() -> (ModelSpec, Posterior<LensLikelihood>, Vec<f64>) {
    let dev = f64_device();
    let spec = ModelSpec::parse(MODEL, Path::new("small.toml")).unwrap();
    let (lay, slots) = layout::build(&spec, None).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // The observation: the model at a prior draw plus deterministic pseudo-noise.
    let truth = lay.sample_prior_physical(&mut rng, 1);
    let fwd = ForwardModel::new(spec.clone(), slots, &dev.clone().autodiff(), None, &[]).unwrap();
    let tmp = Observation::new(Path::new("mem"), 24, 24, vec![0.0; 576], None, None).unwrap();
    let lik = LensLikelihood::new(fwd.clone(), &tmp).unwrap();
    let clean = lik.model_images(&truth, 1).unwrap();
    let noisy: Vec<f32> = clean
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.3 * ((i as f32 * 0.7).sin()))
        .collect();
    let obs = Observation::new(Path::new("mem"), 24, 24, noisy, None, None).unwrap();
    let lik = LensLikelihood::new(fwd, &obs).unwrap();
    (spec, Posterior::new(lay, lik).unwrap(), truth)
}

#[test]
fn eq6_matches_a_hand_computation() {
    let dev = f64_device();
    let obs =
        Observation::new(Path::new("mem"), 1, 3, vec![1.0, 2.0, f32::NAN], None, None).unwrap();
    assert_eq!(obs.n_used(), 2, "the NaN pixel is masked");
    let lik = GaussianImageLikelihood::new(&obs, 0.5, Some(10.0), 2.0, &dev);
    let model = burn::tensor::Tensor::<3>::from_data(
        burn::tensor::TensorData::new(vec![1.5f64, -1.0, 7.0], [1, 1, 3]),
        &dev,
    );
    let got: f64 = lik
        .log_likelihood(model)
        .into_data()
        .iter::<f64>()
        .next()
        .unwrap();
    // sigma^2 = 0.25 + max(m, 0)/(2 * 10); masked pixel excluded.
    let v1 = 0.25 + 1.5 / 20.0;
    let v2 = 0.25;
    let want = -0.5
        * ((0.5f64.powi(2) / v1 + (2.0 * std::f64::consts::PI * v1).ln())
            + (3.0f64.powi(2) / v2 + (2.0 * std::f64::consts::PI * v2).ln()));
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

#[test]
fn posterior_gradient_matches_finite_differences() {
    let (_spec, post, truth) = setup();
    let d = post.dim();
    assert_eq!(
        d,
        22 - 2 + 2 - 2,
        "EPL 6 + shear 2 + lens light 5 (centre fixed) + source 7"
    );
    let mut u = vec![0.0; d];
    post.layout().from_physical(&truth, &mut u).unwrap();
    // A point a little away from the truth so the gradient is not ~0.
    for (k, x) in u.iter_mut().enumerate() {
        *x += 0.05 * ((k as f64 * 1.3).cos());
    }
    let mut lp = [0.0];
    let mut g = vec![0.0; d];
    post.value_and_grad(&u, 1, &mut lp, &mut g).unwrap();
    let mut lp_value = [0.0];
    post.value(&u, 1, &mut lp_value).unwrap();
    assert!(
        (lp[0] - lp_value[0]).abs() < 1e-9 * lp[0].abs().max(1.0),
        "value paths agree"
    );
    let names = post.layout().column_names();
    for k in 0..d {
        let h = 1e-5;
        let mut up = u.clone();
        let mut um = u.clone();
        up[k] += h;
        um[k] -= h;
        let (mut a, mut b) = ([0.0], [0.0]);
        post.value(&up, 1, &mut a).unwrap();
        post.value(&um, 1, &mut b).unwrap();
        let fd = (a[0] - b[0]) / (2.0 * h);
        let tol = 1e-5 * fd.abs().max(g[k].abs()).max(1.0);
        assert!(
            (fd - g[k]).abs() < tol,
            "{}: autodiff {} vs finite difference {fd}",
            names[k],
            g[k]
        );
    }
}

#[test]
fn batched_rows_equal_single_rows() {
    let (_spec, post, truth) = setup();
    let lik = post.likelihood();
    let d = lik.dim();
    let mut theta = truth.clone();
    let mut second = truth.clone();
    second[0] *= 1.1;
    theta.extend_from_slice(&second);
    let mut both = [0.0; 2];
    let mut g2 = vec![0.0; 2 * d];
    lik.value_and_grad(&theta, 2, &mut both, &mut g2).unwrap();
    let mut one = [0.0];
    let mut g1 = vec![0.0; d];
    lik.value_and_grad(&second, 1, &mut one, &mut g1).unwrap();
    assert!((both[1] - one[0]).abs() < 1e-9 * one[0].abs());
    for k in 0..d {
        assert!((g2[d + k] - g1[k]).abs() < 1e-8 * g1[k].abs().max(1.0));
    }
}
