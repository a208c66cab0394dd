//! The registered profiles `nfw`, `multipole` (mass) and `gaussian` (light) (issue 12.1) against
//! lenstronomy 1.14.2: deflections and surface brightness at 80 points from 1e-3 to 6 arcsec of the
//! centre, to 1e-5 relative; their derivatives against central finite differences of lenstronomy's;
//! noise-free images of whole models (NFW + shear, EPL + m = 4 multipole + shear with Sersic light and
//! source; EPL + shear with Gaussian light and source; supersampled) from both the fused kernel and
//! the tensor path, to 1e-5 of the image maximum; and models mixing profiles evaluated by the fused
//! kernels, equal to the tensor path in value and gradient.
//!
//! `infer/tests/data/profile_reference.json` was written by this script (in a venv with
//! `pip install lenstronomy==1.14.2`), run as `python script.py infer/tests/data/profile_reference.json`:
//! ```text
//! import json, sys
//! import numpy as np
//! from lenstronomy.LensModel.lens_model import LensModel
//! from lenstronomy.Data.imaging_data import ImageData
//! from lenstronomy.Data.psf import PSF
//! from lenstronomy.ImSim.image_model import ImageModel
//! from lenstronomy.LightModel.light_model import LightModel
//!
//! rng = np.random.default_rng(14)
//! # points: a ring of radii from 1e-3 to 6 arcsec around the origin, plus random ones
//! r = np.concatenate([np.geomspace(1e-3, 6.0, 40), rng.uniform(0.01, 4.0, 40)])
//! t = rng.uniform(-np.pi, np.pi, r.size)
//! # centres and points exactly representable in f32 (the fused kernels' precision), so the
//! # comparison measures the formulas, not the rounding of the inputs
//! f32 = lambda v: np.asarray(v, dtype=np.float32).astype(np.float64)
//! x, y = f32(r * np.cos(t) + 0.0703125), f32(r * np.sin(t) - 0.0400390625)
//! cases = {
//!     "nfw": [dict(Rs=0.8, alpha_Rs=0.9, center_x=0.0703125, center_y=-0.0400390625),
//!             dict(Rs=5.0, alpha_Rs=1.6, center_x=0.125, center_y=0.1875),
//!             dict(Rs=0.15, alpha_Rs=0.3, center_x=-0.296875, center_y=0.0)],
//!     "multipole": [dict(m=4, a_m=0.05, phi_m=0.3, center_x=0.0703125, center_y=-0.0400390625, r_E=1.0),
//!                   dict(m=3, a_m=0.02, phi_m=-1.1, center_x=0.0, center_y=0.09375, r_E=1.0),
//!                   dict(m=2, a_m=0.08, phi_m=2.0, center_x=0.0703125, center_y=-0.0400390625, r_E=1.0),
//!                   dict(m=1, a_m=0.03, phi_m=0.7, center_x=0.1875, center_y=-0.09375, r_E=1.3),
//!                   dict(m=6, a_m=0.01, phi_m=0.1, center_x=0.0703125, center_y=-0.0400390625, r_E=1.0)],
//! }
//! keys = {"nfw": ["Rs", "alpha_Rs", "center_x", "center_y"],
//!         "multipole": ["m", "a_m", "phi_m", "center_x", "center_y", "r_E"]}
//! out = {"x": x.tolist(), "y": y.tolist()}
//! h = 1e-6
//! for name, kws in cases.items():
//!     lm = LensModel([name.upper()])
//!     res = []
//!     for kw in kws:
//!         ax, ay = lm.alpha(x, y, [kw])
//!         grads = []
//!         for k in keys[name]:
//!             if k == "m":
//!                 grads.append([[0.0] * x.size, [0.0] * x.size])
//!                 continue
//!             kp, km = dict(kw), dict(kw)
//!             kp[k] += h; km[k] -= h
//!             pxp, pyp = lm.alpha(x, y, [kp]); pxm, pym = lm.alpha(x, y, [km])
//!             grads.append([((pxp - pxm) / (2 * h)).tolist(), ((pyp - pym) / (2 * h)).tolist()])
//!         res.append(dict(params=[kw[k] for k in keys[name]], alpha_x=ax.tolist(), alpha_y=ay.tolist(), grad=grads))
//!     out[name] = res
//!
//! # light profiles: surface brightness and its derivatives (parameters, then x and y)
//! light_cases = {"gaussian": ("GAUSSIAN_ELLIPSE", ["amp", "sigma", "e1", "e2", "center_x", "center_y"],
//!                             [dict(amp=12.0, sigma=0.3, e1=0.1, e2=-0.15, center_x=0.0703125, center_y=-0.0400390625),
//!                              dict(amp=3.0, sigma=1.1, e1=-0.2, e2=0.05, center_x=0.125, center_y=0.1875)])}
//! for name, (ltype, lkeys, kws) in light_cases.items():
//!     lm = LightModel([ltype])
//!     res = []
//!     for kw in kws:
//!         val = lm.surface_brightness(x, y, [kw])
//!         grads = []
//!         for k in lkeys:
//!             kp, km = dict(kw), dict(kw)
//!             kp[k] += h; km[k] -= h
//!             grads.append(((lm.surface_brightness(x, y, [kp]) - lm.surface_brightness(x, y, [km])) / (2 * h)).tolist())
//!         gx = (lm.surface_brightness(x + h, y, [kw]) - lm.surface_brightness(x - h, y, [kw])) / (2 * h)
//!         gy = (lm.surface_brightness(x, y + h, [kw]) - lm.surface_brightness(x, y - h, [kw])) / (2 * h)
//!         res.append(dict(params=[kw[k] for k in lkeys], value=val.tolist(), grad=grads, grad_x=gx.tolist(), grad_y=gy.tolist()))
//!     out[name] = res
//!
//! # images: noise-free, no PSF, 40 x 40 pixels of 0.065", supersampling 2 (averaged)
//! n, pix, ss = 40, 0.065, 2
//! data = ImageData(image_data=np.zeros((n, n)), transform_pix2angle=np.eye(2) * pix,
//!                  ra_at_xy_0=-(n - 1) / 2 * pix, dec_at_xy_0=-(n - 1) / 2 * pix)
//! psf = PSF(psf_type='NONE')
//! src = [dict(amp=150.0, R_sersic=0.15, n_sersic=1.5, e1=0.1, e2=-0.2, center_x=0.08, center_y=0.05)]
//! ll = [dict(amp=300.0, R_sersic=1.2, n_sersic=3.0, e1=0.05, e2=0.02, center_x=0.01, center_y=0.0)]
//! models = {
//!     "nfw_shear": (["NFW", "SHEAR"], [dict(Rs=2.0, alpha_Rs=1.1, center_x=0.02, center_y=-0.01),
//!                                       dict(gamma1=0.03, gamma2=-0.02)]),
//!     "epl_multipole_shear": (["EPL", "MULTIPOLE", "SHEAR"],
//!                             [dict(theta_E=1.05, gamma=2.1, e1=0.08, e2=-0.05, center_x=0.02, center_y=-0.01),
//!                              dict(m=4, a_m=0.04, phi_m=0.4, center_x=0.02, center_y=-0.01, r_E=1.0),
//!                              dict(gamma1=0.03, gamma2=-0.02)]),
//! }
//! for name, (lens_names, kw_lens) in models.items():
//!     m = ImageModel(data, psf, LensModel(lens_names), LightModel(['SERSIC_ELLIPSE']), LightModel(['SERSIC_ELLIPSE']),
//!                    kwargs_numerics=dict(supersampling_factor=ss))
//!     out["image_" + name] = m.image(kw_lens, src, ll).ravel().tolist()
//! # Gaussian source and lens light (amp: total flux, counts/s) behind EPL + shear
//! g_src = [dict(amp=4.0, sigma=0.12, e1=0.1, e2=-0.2, center_x=0.08, center_y=0.05)]
//! g_ll = [dict(amp=60.0, sigma=0.8, e1=0.05, e2=0.02, center_x=0.01, center_y=0.0)]
//! m = ImageModel(data, psf, LensModel(["EPL", "SHEAR"]), LightModel(['GAUSSIAN_ELLIPSE']), LightModel(['GAUSSIAN_ELLIPSE']),
//!                kwargs_numerics=dict(supersampling_factor=ss))
//! out["image_epl_shear_gaussian"] = m.image(models["epl_multipole_shear"][1][:1] + models["epl_multipole_shear"][1][2:],
//!                                           g_src, g_ll).ravel().tolist()
//! json.dump(out, open(sys.argv[1], "w"))
//! ```
//! lenstronomy's image rows run upwards (row 0 = lowest y); ours run downwards.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use infer::lens::fused::{FusedLayout, FusedLens};
use infer::lens::grid::Grid;
use infer::lens::profile::{Light, LightKind, Mass, MassKind};
use infer::lens::psf::{Psf, PsfOrder};
use infer::math::complex::C;
use infer::math::real::{L, Lanes};
use infer::model::forward::ForwardModel;
use infer::model::layout;
use infer::model::likelihood::ModelLikelihood;
use infer::model::observation::Observation;
use infer::model::spec::ModelSpec;
use infer::prob::LogLikelihood;
use rand::SeedableRng;
use serde_json::Value;

fn reference() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/profile_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn values(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// One reference case: parameters, alpha_x, alpha_y, and d alpha / d p (x, y parts) by key.
type Case = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<[Vec<f64>; 2]>);

/// Every case of `kind` in the reference.
fn cases(r: &Value, kind: &str) -> Vec<Case> {
    r[kind]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let grad = c["grad"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| [values(&g[0]), values(&g[1])])
                .collect();
            (
                values(&c["params"]),
                values(&c["alpha_x"]),
                values(&c["alpha_y"]),
                grad,
            )
        })
        .collect()
}

const KINDS: [(&str, MassKind); 2] = [("nfw", MassKind::Nfw), ("multipole", MassKind::Multipole)];

#[test]
fn deflections_match_lenstronomy_to_1e_5() {
    let r = reference();
    let (xs, ys) = (values(&r["x"]), values(&r["y"]));
    for (name, kind) in KINDS {
        let mut worst = 0.0f64;
        for (p, ax, ay, _) in cases(&r, name) {
            let m = Mass::new(kind, &p);
            // the same formulas on a block of lanes, as the fused kernels run them
            let lanes =
                |v: &[f64], at: usize| Lanes(std::array::from_fn(|l| v[(at + l) % v.len()] as f32));
            let block = m.deflection(lanes(&xs, 0), lanes(&ys, 0));
            for i in 0..xs.len() {
                let a = m.deflection(xs[i] as f32, ys[i] as f32);
                let want = (ax[i], ay[i]);
                let err = ((a.re as f64 - want.0).powi(2) + (a.im as f64 - want.1).powi(2)).sqrt();
                let norm = (want.0.powi(2) + want.1.powi(2)).sqrt();
                let rel = err / norm;
                worst = worst.max(rel);
                assert!(
                    rel < 1e-5,
                    "{name} {p:?} at ({}, {}): ({}, {}) vs lenstronomy {want:?}: {rel:.2e} relative",
                    xs[i],
                    ys[i],
                    a.re,
                    a.im
                );
                if i < L {
                    assert_eq!((block.re.0[i], block.im.0[i]), (a.re, a.im), "lane {i}");
                }
            }
        }
        eprintln!("{name}: worst relative deflection error {worst:.2e}");
    }
}

#[test]
fn derivatives_match_finite_differences_of_lenstronomy() {
    let r = reference();
    let (xs, ys) = (values(&r["x"]), values(&r["y"]));
    for (name, kind) in KINDS {
        let keys = kind.keys();
        for (p, _, _, fd) in cases(&r, name) {
            let m = Mass::new(kind, &p);
            // the scale of each derivative: its largest value over the points
            let scale: Vec<f64> = fd
                .iter()
                .map(|g| g[0].iter().chain(&g[1]).fold(0.0f64, |a, v| a.max(v.abs())))
                .collect();
            for i in 0..xs.len() {
                let mut d = vec![C::new(0.0f32, 0.0f32); keys.len()];
                m.deflection_with_grad(xs[i] as f32, ys[i] as f32, &mut d);
                for (k, key) in keys.iter().enumerate() {
                    for (got, want) in [(d[k].re, fd[k][0][i]), (d[k].im, fd[k][1][i])] {
                        let tol = 1e-4 * want.abs() + 1e-5 * scale[k] + 1e-9;
                        assert!(
                            (got as f64 - want).abs() <= tol,
                            "{name} {p:?} d/d{key} at ({}, {}): {got} vs finite differences {want}",
                            xs[i],
                            ys[i]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn gaussian_light_matches_lenstronomy() {
    let r = reference();
    let (xs, ys) = (values(&r["x"]), values(&r["y"]));
    for c in r["gaussian"].as_array().unwrap() {
        let p = values(&c["params"]);
        let (want, gx, gy) = (
            values(&c["value"]),
            values(&c["grad_x"]),
            values(&c["grad_y"]),
        );
        let fd: Vec<Vec<f64>> = c["grad"].as_array().unwrap().iter().map(values).collect();
        let g = Light::new(LightKind::Gaussian, &p);
        let peak = want.iter().fold(0.0f64, |a, v| a.max(*v));
        let scale: Vec<f64> = fd
            .iter()
            .map(|v| v.iter().fold(0.0f64, |a, x| a.max(x.abs())))
            .collect();
        for i in 0..xs.len() {
            let mut d = vec![0.0f32; 6];
            let (v, dx, dy) = g.brightness_with_grad(xs[i] as f32, ys[i] as f32, &mut d);
            assert_eq!(v, g.brightness(xs[i] as f32, ys[i] as f32));
            // relative where the profile is not negligible (f32 has no more than ~40 e-folds of range)
            let tol = 1e-5 * want[i] + 1e-9 * peak;
            assert!(
                (v as f64 - want[i]).abs() <= tol,
                "{p:?} at ({}, {}): {v} vs lenstronomy {}",
                xs[i],
                ys[i],
                want[i]
            );
            let gscale = gx.iter().chain(&gy).fold(0.0f64, |a, v| a.max(v.abs()));
            for (got, want) in [(dx, gx[i]), (dy, gy[i])] {
                assert!(
                    (got as f64 - want).abs() <= 1e-4 * want.abs() + 1e-5 * gscale,
                    "{p:?} dI/dx, dI/dy at ({}, {}): {got} vs {want}",
                    xs[i],
                    ys[i]
                );
            }
            for (k, key) in LightKind::Gaussian.keys().iter().enumerate() {
                let want = fd[k][i];
                assert!(
                    (d[k] as f64 - want).abs() <= 1e-4 * want.abs() + 1e-5 * scale[k],
                    "{p:?} d/d{key} at ({}, {}): {} vs finite differences {want}",
                    xs[i],
                    ys[i],
                    d[k]
                );
            }
        }
    }
}

const N: usize = 40;
const PIX: f64 = 0.065;
const LIGHT: [f64; 7] = [300.0, 1.2, 3.0, 0.05, 0.02, 0.01, 0.0];
const SOURCE: [f64; 7] = [150.0, 0.15, 1.5, 0.1, -0.2, 0.08, 0.05];

/// A reference model: name, mass components with their parameters, model-file `[[mass]]` tables.
type ImageModel = (&'static str, Vec<(MassKind, Vec<f64>)>, &'static str);

fn image_models() -> Vec<ImageModel> {
    vec![
        (
            "nfw_shear",
            vec![
                (MassKind::Nfw, vec![2.0, 1.1, 0.02, -0.01]),
                (MassKind::Shear, vec![0.03, -0.02]),
            ],
            r#"
[[mass]]
type = "nfw"
Rs = 2.0
alpha_Rs = 1.1
center_x = 0.02
center_y = -0.01
[[mass]]
type = "shear"
gamma1 = "normal(0.03, 0.01)"
gamma2 = -0.02
"#,
        ),
        (
            "epl_multipole_shear",
            vec![
                (MassKind::Epl, vec![1.05, 2.1, 0.08, -0.05, 0.02, -0.01]),
                (MassKind::Multipole, vec![4.0, 0.04, 0.4, 0.02, -0.01, 1.0]),
                (MassKind::Shear, vec![0.03, -0.02]),
            ],
            r#"
[[mass]]
type = "epl"
theta_e = 1.05
gamma = 2.1
e1 = 0.08
e2 = -0.05
center_x = 0.02
center_y = -0.01
[[mass]]
type = "multipole"
m = 4
a_m = 0.04
phi_m = 0.4
center_x = 0.02
center_y = -0.01
[[mass]]
type = "shear"
gamma1 = "normal(0.03, 0.01)"
gamma2 = -0.02
"#,
        ),
    ]
}

fn sersic_table(kind: &str, p: &[f64; 7]) -> String {
    format!(
        "[[{kind}]]\ntype = \"sersic\"\namp = {}\nr_sersic = {}\nn_sersic = {}\ne1 = {}\ne2 = {}\ncenter_x = {}\ncenter_y = {}\n",
        p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    )
}

fn model_file(mass: &str) -> String {
    format!(
        "name = \"reference\"\n[grid]\nn = {N}\npixel_scale = {PIX}\nsupersample = 2\n[psf]\ntype = \"none\"\n[noise]\nsigma_bkg = 1.0\n{mass}\n{}\n{}",
        sersic_table("lens_light", &LIGHT),
        sersic_table("source", &SOURCE)
    )
}

/// lenstronomy's image with rows flipped to ours (row 0 = top).
fn lenstronomy_image(r: &Value, name: &str) -> Vec<f64> {
    let v = values(&r[format!("image_{name}")]);
    (0..N)
        .rev()
        .flat_map(|row| v[row * N..(row + 1) * N].to_vec())
        .collect()
}

fn assert_close_image(got: &[f64], want: &[f64], what: &str) {
    let peak = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    eprintln!("{what}: max |diff| / peak = {:.2e}", worst / peak);
    assert!(
        worst <= 1e-5 * peak,
        "{what}: max |diff| {worst} > 1e-5 of the peak {peak}"
    );
}

/// The tensor path's noise-free image of a model file whose one free parameter is shear.gamma1
/// (a model file must have one), at gamma1 = 0.03. Registered profiles without a tensor twin go
/// through the host bridges.
fn tensor_render(text: &str, name: &str) -> Vec<f64> {
    let spec = ModelSpec::parse(text, Path::new(name)).unwrap();
    let (_, slots) = layout::build(&spec, None).unwrap();
    let dev = Device::flex();
    let fwd = ForwardModel::new(spec, slots, &dev, None, &[]).unwrap();
    let theta = Tensor::<2>::from_data(TensorData::new(vec![0.03f32], [1, 1]), &dev);
    fwd.render(&theta)
        .unwrap()
        .into_data()
        .iter::<f64>()
        .collect()
}

/// A 24 x 24 observation of `fwd` at `truth` with deterministic pseudo-noise of amplitude 0.3.
fn pseudo_noisy_observation(fwd: &ForwardModel, truth: &[f64]) -> Vec<f32> {
    let blank = Observation::new(Path::new("mem"), 24, 24, vec![0.0; 576], None, None).unwrap();
    let clean = ModelLikelihood::new(fwd.clone(), &blank, false)
        .unwrap()
        .tensor
        .model_images(truth, 1)
        .unwrap();
    clean
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.3 * ((i as f32 * 0.7).sin()))
        .collect()
}

#[test]
fn images_match_lenstronomy_on_both_paths() {
    let r = reference();
    let grid = Grid::new(N, N, PIX, 2).unwrap();
    for (name, mass, tables) in image_models() {
        let want = lenstronomy_image(&r, name);
        // the fused kernel, amplitudes in counts per pixel (x pixel area)
        let layout = FusedLayout {
            mass: mass.iter().map(|(k, _)| *k).collect(),
            lights: vec![LightKind::Sersic],
            sources: vec![LightKind::Sersic],
        };
        let zeros = vec![0.0; N * N];
        let ones = vec![1.0; N * N];
        let fused = FusedLens::with_layout(
            layout,
            grid.clone(),
            &Psf::None,
            PsfOrder::Pixel,
            &zeros,
            &ones,
            None,
            None,
        )
        .unwrap();
        let mut p: Vec<f64> = mass.iter().flat_map(|(_, v)| v.clone()).collect();
        for s in [LIGHT, SOURCE] {
            let mut s = s;
            s[0] *= PIX * PIX;
            p.extend(s);
        }
        assert_close_image(&fused.render(&p), &want, &format!("{name}, fused kernel"));
        // the tensor path of a model file (registered profiles without a tensor twin go through
        // the host bridge)
        let img = tensor_render(&model_file(tables), "reference.toml");
        assert_close_image(&img, &want, &format!("{name}, tensor path"));
    }
}

#[test]
fn gaussian_light_images_match_lenstronomy_on_both_paths() {
    let r = reference();
    let want = lenstronomy_image(&r, "epl_shear_gaussian");
    let (light, source) = (
        [60.0, 0.8, 0.05, 0.02, 0.01, 0.0],
        [4.0, 0.12, 0.1, -0.2, 0.08, 0.05],
    );
    let mass = [1.05, 2.1, 0.08, -0.05, 0.02, -0.01, 0.03, -0.02];
    let fused = FusedLens::with_layout(
        FusedLayout {
            mass: vec![MassKind::Epl, MassKind::Shear],
            lights: vec![LightKind::Gaussian],
            sources: vec![LightKind::Gaussian],
        },
        Grid::new(N, N, PIX, 2).unwrap(),
        &Psf::None,
        PsfOrder::Pixel,
        &vec![0.0; N * N],
        &vec![1.0; N * N],
        None,
        None,
    )
    .unwrap();
    let mut p = mass.to_vec();
    for s in [light, source] {
        let mut s = s;
        s[0] *= PIX * PIX;
        p.extend(s);
    }
    assert_close_image(&fused.render(&p), &want, "epl_shear_gaussian, fused kernel");
    let g = |kind: &str, v: &[f64; 6]| {
        format!(
            "[[{kind}]]\ntype = \"gaussian\"\namp = {}\nsigma = {}\ne1 = {}\ne2 = {}\ncenter_x = {}\ncenter_y = {}\n",
            v[0], v[1], v[2], v[3], v[4], v[5]
        )
    };
    let text = format!(
        "name = \"g\"\n[grid]\nn = {N}\npixel_scale = {PIX}\nsupersample = 2\n[psf]\ntype = \"none\"\n[noise]\nsigma_bkg = 1.0\n\
         [[mass]]\ntype = \"epl\"\ntheta_e = 1.05\ngamma = 2.1\ne1 = 0.08\ne2 = -0.05\ncenter_x = 0.02\ncenter_y = -0.01\n\
         [[mass]]\ntype = \"shear\"\ngamma1 = \"normal(0.03, 0.01)\"\ngamma2 = -0.02\n{}{}",
        g("lens_light", &light),
        g("source", &source)
    );
    let img = tensor_render(&text, "g.toml");
    assert_close_image(&img, &want, "epl_shear_gaussian, tensor path");
}

const MIXED: &str = r#"
name = "mixed"
[grid]
n = 24
pixel_scale = 0.1
supersample = 2
[psf]
type = "gaussian"
sigma = 0.08
[noise]
sigma_bkg = 0.3
[[mass]]
type = "epl"
theta_e = "lognormal(ln 0.8, 0.2)"
gamma = "truncnormal(2, 0.2, 1.5, 2.5)"
q = "uniform(0.6, 1)"
phi = "uniform(-1.5, 1.5)"
center_x = "normal(0, 0.05)"
center_y = "normal(0, 0.05)"
[[mass]]
type = "multipole"
m = 4
a_m = "normal(0, 0.02)"
phi_m = "uniform(-0.7, 0.7)"
center_x = "normal(0, 0.05)"
center_y = "normal(0, 0.05)"
[[mass]]
type = "nfw"
Rs = "lognormal(ln 3, 0.2)"
alpha_Rs = "lognormal(ln 0.3, 0.2)"
center_x = "normal(0.3, 0.05)"
center_y = "normal(-0.2, 0.05)"
[[mass]]
type = "shear"
gamma1 = "normal(0, 0.05)"
gamma2 = "normal(0, 0.05)"
[[lens_light]]
type = "sersic"
amp = "lognormal(ln 2000, 0.3)"
r_sersic = "lognormal(ln 0.6, 0.2)"
n_sersic = "uniform(1, 5)"
e1 = "normal(0, 0.1)"
e2 = "normal(0, 0.1)"
[[source]]
type = "sersic"
amp = "lognormal(ln 1500, 0.3)"
r_sersic = "lognormal(ln 0.2, 0.2)"
n_sersic = "uniform(0.5, 3)"
e1 = "normal(0, 0.1)"
e2 = "normal(0, 0.1)"
center_x = "normal(0.05, 0.1)"
center_y = "normal(-0.05, 0.1)"
[[source]]
type = "gaussian"
amp = "lognormal(ln 30, 0.3)"
sigma = "lognormal(ln 0.1, 0.2)"
q = "uniform(0.6, 1)"
phi = "uniform(-1.5, 1.5)"
center_x = "normal(-0.1, 0.1)"
center_y = "normal(0.1, 0.1)"
"#;

#[test]
fn any_combination_takes_the_fused_path_and_equals_the_tensor_path() {
    let spec = ModelSpec::parse(MIXED, Path::new("mixed.toml")).unwrap();
    let (lay, slots) = layout::build(&spec, None).unwrap();
    let dev = Device::flex();
    let fwd = ForwardModel::new(spec, slots, &dev.clone().autodiff(), None, &[]).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let truth = lay.sample_prior_physical(&mut rng, 1);
    let noisy = pseudo_noisy_observation(&fwd, &truth);
    let obs = Observation::new(Path::new("mem"), 24, 24, noisy, None, None).unwrap();
    let fused = ModelLikelihood::new(fwd.clone(), &obs, true).unwrap();
    assert_eq!(fused.backend(), "fused", "{:?}", fused.fallback);
    assert!(fused.fallback.is_none());
    let tensor = ModelLikelihood::new(fwd, &obs, false).unwrap();
    assert_eq!(tensor.backend(), "autodiff");
    let d = lay.dim();
    // three points around the truth
    let b = 3;
    let theta: Vec<f64> = (0..b)
        .flat_map(|s| {
            truth
                .iter()
                .enumerate()
                .map(move |(k, v)| v * (1.0 + 0.02 * ((k + 7 * s) as f64 * 1.3).sin()))
        })
        .collect();
    let (mut lf, mut gf) = (vec![0.0; b], vec![0.0; b * d]);
    let (mut lt, mut gt) = (vec![0.0; b], vec![0.0; b * d]);
    fused.value_and_grad(&theta, b, &mut lf, &mut gf).unwrap();
    tensor.value_and_grad(&theta, b, &mut lt, &mut gt).unwrap();
    let names = lay.column_names();
    for s in 0..b {
        assert!(
            (lf[s] - lt[s]).abs() < 1e-3 * lt[s].abs().max(1.0),
            "sample {s}: ln L fused {} vs tensor {}",
            lf[s],
            lt[s]
        );
        let row = |g: &[f64]| g[s * d..(s + 1) * d].to_vec();
        let (a, t) = (row(&gf), row(&gt));
        let scale = t.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for k in 0..d {
            assert!(
                (a[k] - t[k]).abs() < 2e-3 * t[k].abs() + 1e-4 * scale,
                "sample {s} d/d{}: fused {} vs tensor {}",
                names[k],
                a[k],
                t[k]
            );
        }
    }
}

#[test]
fn model_files_check_the_multipole_order() {
    let bad = |m: &str| {
        let text = model_file(&format!(
            "[[mass]]\ntype = \"multipole\"\nm = {m}\na_m = 0.01\nphi_m = 0.0\n"
        ));
        ModelSpec::parse(&text, Path::new("bad.toml"))
            .unwrap_err()
            .to_string()
    };
    let e = bad("2.5");
    assert!(
        e.contains("bad.toml") && e.contains(".m") && e.contains("integer"),
        "{e}"
    );
    let e = bad("\"uniform(2, 4)\"");
    assert!(
        e.contains("bad.toml") && e.contains("must be a fixed number"),
        "{e}"
    );
}

const PLACED: &str = r#"
name = "placed"
[grid]
n = 24
pixel_scale = 0.1
supersample = 2
[psf]
type = "gaussian"
sigma = 0.08
convolution = "pixel"
[noise]
sigma_bkg = 0.3
[[mass]]
type = "nfw"
Rs = "lognormal(ln 2, 0.2)"
alpha_Rs = "lognormal(ln 0.9, 0.2)"
center_x = "normal(0, 0.05)"
center_y = "normal(0, 0.05)"
[[mass]]
type = "multipole"
m = 3
a_m = "normal(0, 0.02)"
phi_m = "uniform(-1, 1)"
center_x = "normal(0, 0.05)"
center_y = "normal(0, 0.05)"
[[mass]]
type = "shear"
gamma1 = "normal(0, 0.05)"
gamma2 = "normal(0, 0.05)"
[[source]]
type = "pixelated"
file = "unused.h5"
x_src = "normal(0, 0.05)"
y_src = "normal(0, 0.05)"
s = "lognormal(ln 0.4, 0.1)"
i = "lognormal(ln 20, 0.1)"
"#;

#[test]
fn the_placed_image_kernel_takes_registered_profiles() {
    use infer::lens::fused::placed::FusedPlacedImage;
    use infer::model::forward::FixedImage;
    let spec = ModelSpec::parse(PLACED, Path::new("placed.toml")).unwrap();
    let (lay, slots) = layout::build(&spec, None).unwrap();
    let dev = Device::flex();
    let (hs, ws) = (16, 16);
    let image: Vec<f32> = (0..hs * ws)
        .map(|k| {
            let (r, c) = ((k / ws) as f32 - 7.5, (k % ws) as f32 - 7.5);
            (-(r * r + 0.5 * c * c) / 12.0).exp() + 0.2 * (-((r - 3.0).powi(2) + c * c) / 3.0).exp()
        })
        .collect();
    let fixed = FixedImage {
        ny: hs,
        nx: ws,
        data: image.clone(),
    };
    let fwd = ForwardModel::new(
        spec.clone(),
        slots,
        &dev.clone().autodiff(),
        None,
        &[Some(fixed)],
    )
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let truth = lay.sample_prior_physical(&mut rng, 1);
    let noisy: Vec<f64> = pseudo_noisy_observation(&fwd, &truth)
        .into_iter()
        .map(f64::from)
        .collect();
    let obs = Observation::new(
        Path::new("mem"),
        24,
        24,
        noisy.iter().map(|&v| v as f32).collect(),
        None,
        None,
    )
    .unwrap();
    let tensor = ModelLikelihood::new(fwd, &obs, true).unwrap();
    assert_eq!(
        tensor.backend(),
        "autodiff",
        "a fixed image takes the tensor path"
    );
    let kernel = FusedPlacedImage::with_mass(
        vec![MassKind::Nfw, MassKind::Multipole, MassKind::Shear],
        Grid::new(24, 24, 0.1, 2).unwrap(),
        &infer::model::forward::psf_of(&spec).unwrap(),
        (hs, ws),
        &noisy,
        &vec![0.09; 576],
        None,
        None,
    )
    .unwrap();
    // theta columns -> kernel order (every mass parameter but m is free; the placement follows)
    let names = lay.column_names();
    let col = |n: &str| truth[names.iter().position(|c| c == n).unwrap()];
    let p: Vec<f64> = [
        "lens.Rs",
        "lens.alpha_Rs",
        "lens.center_x",
        "lens.center_y",
        "-",
        "lens2.a_m",
        "lens2.phi_m",
        "lens2.center_x",
        "lens2.center_y",
        "+",
        "shear.gamma1",
        "shear.gamma2",
        "src.x_src",
        "src.y_src",
        "src.s",
        "src.i",
    ]
    .iter()
    .map(|n| match *n {
        "-" => 3.0,
        "+" => 1.0,
        n => col(n),
    })
    .collect();
    let (lk, gk, _) = kernel.value_and_grad(&p, &image);
    let (mut lt, mut gt) = ([0.0], vec![0.0; lay.dim()]);
    tensor.value_and_grad(&truth, 1, &mut lt, &mut gt).unwrap();
    assert!(
        (lk[0] - lt[0]).abs() < 1e-3 * lt[0].abs(),
        "ln L kernel {} vs tensor {}",
        lk[0],
        lt[0]
    );
    let scale = gt.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (k, n) in names.iter().enumerate() {
        let at = [
            "lens.Rs",
            "lens.alpha_Rs",
            "lens.center_x",
            "lens.center_y",
            "lens2.m",
            "lens2.a_m",
            "lens2.phi_m",
            "lens2.center_x",
            "lens2.center_y",
            "lens2.r_E",
            "shear.gamma1",
            "shear.gamma2",
            "src.x_src",
            "src.y_src",
            "src.s",
            "src.i",
        ]
        .iter()
        .position(|c| c == n)
        .unwrap();
        assert!(
            (gk[at] - gt[k]).abs() < 2e-3 * gt[k].abs() + 1e-4 * scale,
            "d/d{n}: kernel {} vs tensor {}",
            gk[at],
            gt[k]
        );
    }
}
