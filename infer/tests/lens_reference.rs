//! Reference tests of the lensing library in f64 (this test binary configures the flex device
//! for f64 once, which is process-wide, so it lives in its own test executable).
//!
//! - EPL deflection (Tessore & Metcalf series) against the closed-form SIE (gamma = 2) and
//!   against direct numerical integration of the elliptical-profile deflection integrals
//!   (Schramm 1990; Keeton 2001 eq. 4 form of Chianese eqs. A1-A2), to 1e-5 relative;
//! - series truncation below 1e-7 at q = 0.2;
//! - no NaN values or gradients at the lens centre and at q = 1;
//! - every gradient against central finite differences (EPL, shear, Sersic, bilinear sampling,
//!   PSF convolution, full render);
//! - the Sersic amplitude convention (lenstronomy: I(R_sersic) = amp).

use std::sync::OnceLock;

use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use infer::lens::ellipticity::{e_from_q_phi, q_phi_from_e, to_major_axis_frame};
use infer::lens::grid::Grid;
use infer::lens::light::{Sersic, SurfaceBrightness};
use infer::lens::mass::epl::{self, Epl, SERIES_TOLERANCE, series_terms};
use infer::lens::mass::sie::sie_deflection;
use infer::lens::mass::{MassComponent, MassModel, Shear};
use infer::lens::psf::{Psf, PsfOrder};
use infer::lens::render::Renderer;
use infer::source::bilinear;
use infer::source::pixelated::PixelatedSource;

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

fn ad_device() -> Device {
    f64_device().autodiff()
}

fn t1(v: &[f64], d: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), d)
}

fn t2(v: &[f64], rows: usize, d: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [rows, v.len() / rows]), d)
}

fn host(t: Tensor<2>) -> Vec<f64> {
    let data = t.into_data();
    assert_eq!(
        data.dtype(),
        burn::tensor::DType::F64,
        "tests must run in f64"
    );
    data.iter::<f64>().collect()
}

fn host_any<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

// ---------------------------------------------------------------- numerical integration

/// Composite 5-point Gauss-Legendre quadrature of `f` over [0, 1] with `panels` panels.
fn gauss_legendre(f: impl Fn(f64) -> f64, panels: usize) -> f64 {
    let a = (5.0f64 - 2.0 * (10.0f64 / 7.0).sqrt()).sqrt() / 3.0;
    let b = (5.0f64 + 2.0 * (10.0f64 / 7.0).sqrt()).sqrt() / 3.0;
    let wa = (322.0 + 13.0 * 70f64.sqrt()) / 900.0;
    let wb = (322.0 - 13.0 * 70f64.sqrt()) / 900.0;
    let nodes = [(0.0, 128.0 / 225.0), (a, wa), (-a, wa), (b, wb), (-b, wb)];
    let h = 1.0 / panels as f64;
    let mut s = 0.0;
    for p in 0..panels {
        let mid = (p as f64 + 0.5) * h;
        for &(x, w) in &nodes {
            s += w * f(mid + 0.5 * h * x);
        }
    }
    0.5 * h * s
}

/// Deflection of the power-law ellipsoid by direct integration (f64, host):
/// in the major-axis frame, with xi^2 = x^2 + y^2/q^2 and kappa(xi) = (2-t)/2 (b/(q xi))^t,
///   alpha_x = q x J_0, alpha_y = q y J_1,
///   J_n = int_0^1 kappa(xi(u)) / (1 - (1-q^2) u)^(n + 1/2) du,  xi(u)^2 = u (x^2 + y^2/(1-(1-q^2)u)).
/// The u^(-t/2) endpoint singularity is removed with u = s^p, p = 2/(2-t).
fn epl_by_integration(x: f64, y: f64, theta_e: f64, gamma: f64, e1: f64, e2: f64) -> (f64, f64) {
    let (q, phi) = q_phi_from_e(e1, e2);
    let (xp, yp) = to_major_axis_frame(x, y, phi);
    let t = gamma - 1.0;
    let b = theta_e * q.sqrt();
    let k0 = (2.0 - t) / 2.0 * (b / q).powf(t);
    let p = 2.0 / (2.0 - t);
    let j = |n: f64| {
        gauss_legendre(
            |s| {
                let u = s.powf(p);
                let dd = 1.0 - (1.0 - q * q) * u;
                k0 * p * (xp * xp + yp * yp / dd).powf(-t / 2.0) * dd.powf(-(n + 0.5))
            },
            4000,
        )
    };
    let ax = q * xp * j(0.0);
    let ay = q * yp * j(1.0);
    let (sn, cs) = phi.sin_cos();
    (cs * ax - sn * ay, sn * ax + cs * ay)
}

fn epl_tensor(xs: &[f64], ys: &[f64], p: [f64; 6], n_terms: Option<usize>) -> (Vec<f64>, Vec<f64>) {
    let d = f64_device();
    let m = Epl {
        theta_e: t1(&[p[0]], &d),
        gamma: t1(&[p[1]], &d),
        e1: t1(&[p[2]], &d),
        e2: t1(&[p[3]], &d),
        center_x: t1(&[p[4]], &d),
        center_y: t1(&[p[5]], &d),
    };
    let x = t2(xs, 1, &d);
    let y = t2(ys, 1, &d);
    let (ax, ay) = match n_terms {
        Some(n) => m.deflection_with_terms(&x, &y, n),
        None => m.deflection(&x, &y),
    };
    (host(ax), host(ay))
}

fn test_points() -> (Vec<f64>, Vec<f64>) {
    let pts = [
        (1.3, 0.4),
        (-0.7, 0.9),
        (0.05, -0.02),
        (-1.9, -1.1),
        (0.0, 0.8),
        (1.1, 0.0),
        (0.3, -2.2),
        (2.5, 2.5),
    ];
    (
        pts.iter().map(|p| p.0).collect(),
        pts.iter().map(|p| p.1).collect(),
    )
}

fn rel_err(a: (f64, f64), b: (f64, f64)) -> f64 {
    let d = ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    d / (b.0 * b.0 + b.1 * b.1).sqrt().max(1e-12)
}

#[test]
fn epl_at_gamma_2_matches_closed_form_sie() {
    let (xs, ys) = test_points();
    for &q in &[0.2, 0.35, 0.5, 0.7, 0.9, 0.99, 1.0] {
        for &phi in &[0.0, 0.4, -1.1, 2.0] {
            let (e1, e2) = e_from_q_phi(q, phi);
            let (cx, cy) = (0.07, -0.12);
            let (ax, ay) = epl_tensor(&xs, &ys, [1.2, 2.0, e1, e2, cx, cy], None);
            for i in 0..xs.len() {
                let r = sie_deflection(xs[i], ys[i], 1.2, e1, e2, cx, cy);
                let err = rel_err((ax[i], ay[i]), r);
                assert!(
                    err < 1e-5,
                    "q={q} phi={phi} point {i}: EPL {:?} SIE {r:?} rel {err:e}",
                    (ax[i], ay[i])
                );
            }
        }
    }
}

#[test]
fn closed_form_sie_matches_integration() {
    // Validates the two independent references against each other.
    let (xs, ys) = test_points();
    for &q in &[0.2, 0.5, 0.9] {
        let (e1, e2) = e_from_q_phi(q, 0.6);
        for i in 0..xs.len() {
            let a = sie_deflection(xs[i], ys[i], 0.9, e1, e2, 0.0, 0.0);
            let b = epl_by_integration(xs[i], ys[i], 0.9, 2.0, e1, e2);
            assert!(rel_err(a, b) < 1e-8, "q={q} point {i}: {a:?} vs {b:?}");
        }
    }
}

#[test]
fn epl_matches_numerical_integration() {
    let (xs, ys) = test_points();
    for &gamma in &[1.6, 2.0, 2.4] {
        for &q in &[0.2, 0.5, 0.9, 1.0] {
            for &phi in &[0.3, -0.9] {
                let (e1, e2) = e_from_q_phi(q, phi);
                let (ax, ay) = epl_tensor(&xs, &ys, [1.1, gamma, e1, e2, 0.0, 0.0], None);
                for i in 0..xs.len() {
                    let r = epl_by_integration(xs[i], ys[i], 1.1, gamma, e1, e2);
                    let err = rel_err((ax[i], ay[i]), r);
                    assert!(
                        err < 1e-5,
                        "gamma={gamma} q={q} phi={phi} point {i}: series {:?} integral {r:?} rel {err:e}",
                        (ax[i], ay[i])
                    );
                }
            }
        }
    }
}

#[test]
fn series_truncation_below_tolerance_at_q_0_2() {
    let (xs, ys) = test_points();
    let (e1, e2) = e_from_q_phi(0.2, 0.7);
    let n = series_terms((e1 * e1 + e2 * e2).sqrt(), SERIES_TOLERANCE);
    assert!(n <= 50, "q = 0.2 should need at most 50 terms, got {n}");
    for &gamma in &[1.2, 1.6, 2.0, 2.4, 2.8] {
        let p = [1.0, gamma, e1, e2, 0.0, 0.0];
        let (ax, ay) = epl_tensor(&xs, &ys, p, None);
        let (bx, by) = epl_tensor(&xs, &ys, p, Some(epl::MAX_TERMS));
        for i in 0..xs.len() {
            let err = rel_err((ax[i], ay[i]), (bx[i], by[i]));
            assert!(
                err < 1e-7,
                "gamma={gamma} point {i}: truncation {err:e} with {n} terms"
            );
        }
    }
}

// ---------------------------------------------------------------- gradients

/// Scalar objective sum_i w_i f_i with fixed pseudo-random weights, for gradient checks.
fn weights(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 * 0.754_877_666).fract() - 0.5) * 2.0)
        .collect()
}

/// Compare the autodiff gradient of `f(params)` (a function of `np` scalar parameters returning a
/// `[1, N]` tensor) with central finite differences.
fn check_gradient(name: &str, p0: &[f64], h: f64, tol: f64, f: impl Fn(&[Tensor<1>]) -> Tensor<2>) {
    let ad = ad_device();
    let params: Vec<Tensor<1>> = p0.iter().map(|&v| t1(&[v], &ad).require_grad()).collect();
    let out = f(&params);
    let n = out.dims()[1];
    let w = t2(&weights(n), 1, &ad);
    let loss = (out * w).sum();
    let grads = loss.backward();
    let g: Vec<f64> = params
        .iter()
        .map(|p| host_any(p.grad(&grads).expect("parameter has a gradient"))[0])
        .collect();
    assert!(
        g.iter().all(|v| v.is_finite()),
        "{name}: non-finite gradient {g:?}"
    );
    let d = f64_device();
    let eval = |p: &[f64]| -> f64 {
        let ts: Vec<Tensor<1>> = p.iter().map(|&v| t1(&[v], &d)).collect();
        let out = host(f(&ts));
        out.iter().zip(weights(out.len())).map(|(a, b)| a * b).sum()
    };
    for k in 0..p0.len() {
        let mut pp = p0.to_vec();
        let mut pm = p0.to_vec();
        pp[k] += h;
        pm[k] -= h;
        let fd = (eval(&pp) - eval(&pm)) / (2.0 * h);
        let err = (g[k] - fd).abs() / fd.abs().max(1e-3);
        assert!(
            err < tol,
            "{name}: parameter {k}: autodiff {} vs finite difference {fd} (rel {err:e})",
            g[k]
        );
    }
}

fn grid_rays(d: &Device) -> (Tensor<2>, Tensor<2>) {
    Grid::new(7, 6, 0.3, 1).unwrap().super_coords(d)
}

#[test]
fn epl_gradients_match_finite_differences() {
    for &(q, gamma) in &[(0.45, 2.2), (0.8, 1.7), (1.0, 2.0)] {
        let (e1, e2) = if q == 1.0 {
            (0.0, 0.0)
        } else {
            e_from_q_phi(q, 0.5)
        };
        let p0 = [1.1, gamma, e1, e2, 0.05, -0.08];
        check_gradient(&format!("EPL q={q}"), &p0, 1e-6, 1e-6, |p| {
            let d = p[0].device();
            let (x, y) = grid_rays(&d);
            let m = Epl {
                theta_e: p[0].clone(),
                gamma: p[1].clone(),
                e1: p[2].clone(),
                e2: p[3].clone(),
                center_x: p[4].clone(),
                center_y: p[5].clone(),
            };
            let (ax, ay) = m.deflection_with_terms(&x, &y, 40);
            Tensor::cat(vec![ax, ay], 1)
        });
    }
}

#[test]
fn shear_gradients_match_finite_differences() {
    check_gradient("shear", &[0.03, -0.05], 1e-6, 1e-7, |p| {
        let (x, y) = grid_rays(&p[0].device());
        let s = Shear {
            gamma1: p[0].clone(),
            gamma2: p[1].clone(),
        };
        let (ax, ay) = s.deflection(&x, &y);
        Tensor::cat(vec![ax, ay], 1)
    });
}

fn sersic_from(p: &[Tensor<1>]) -> Sersic {
    Sersic {
        amp: p[0].clone(),
        r_sersic: p[1].clone(),
        n_sersic: p[2].clone(),
        e1: p[3].clone(),
        e2: p[4].clone(),
        center_x: p[5].clone(),
        center_y: p[6].clone(),
    }
}

#[test]
fn sersic_gradients_match_finite_differences() {
    for &(e1, e2) in &[(0.12, -0.07), (0.0, 0.0)] {
        check_gradient(
            "Sersic",
            &[2.0, 0.6, 1.7, e1, e2, 0.04, 0.1],
            1e-6,
            1e-6,
            |p| {
                let (x, y) = grid_rays(&p[0].device());
                sersic_from(p).brightness(&x, &y)
            },
        );
    }
}

#[test]
fn bilinear_gradients_match_finite_differences() {
    // Positions (through x_src, y_src, amp) and image values both receive gradients.
    let img: Vec<f64> = (0..5 * 4)
        .map(|i| ((i * 7 % 5) as f64 + 0.3) / 4.0)
        .collect();
    check_gradient("pixelated source", &[0.013, -0.021, 1.3], 1e-6, 1e-6, |p| {
        let d = p[0].device();
        let (x, y) = Grid::new(9, 8, 0.07, 1).unwrap().super_coords(&d);
        let src = PixelatedSource {
            image: Tensor::from_data(TensorData::new(img.clone(), [1, 5, 4]), &d),
            pixel_scale: 0.1,
            x_src: p[0].clone(),
            y_src: p[1].clone(),
            amp: p[2].clone(),
        };
        src.brightness(&x, &y)
    });
    // Gradient w.r.t. one image pixel value (as a [1] parameter scattered into the image).
    check_gradient("bilinear image value", &[0.7], 1e-6, 1e-7, |p| {
        let d = p[0].device();
        let base = Tensor::<3>::from_data(TensorData::new(img.clone(), [1, 5, 4]), &d);
        let mut mask = vec![0.0; 20];
        mask[6] = 1.0;
        let mask = Tensor::<3>::from_data(TensorData::new(mask, [1, 5, 4]), &d);
        let image = base + mask * p[0].clone().reshape([1, 1, 1]);
        let (u, v) = Grid::new(6, 6, 0.6, 1).unwrap().super_coords(&d);
        bilinear::sample(&image, &u.add_scalar(1.5), &v.add_scalar(2.0))
    });
}

#[test]
fn bilinear_interpolates_and_is_zero_outside() {
    let d = f64_device();
    let img = Tensor::<3>::from_data(TensorData::new(vec![1.0, 2.0, 3.0, 4.0], [1, 2, 2]), &d);
    let u = t2(&[0.0, 1.0, 0.5, 0.5, -1.0, 3.0, -0.5, 0.25], 1, &d);
    let v = t2(&[0.0, 1.0, 0.5, 0.0, 0.0, 0.5, 0.0, 7.0], 1, &d);
    let out = host(bilinear::sample(&img, &u, &v));
    let want = [1.0, 4.0, 2.5, 1.5, 0.0, 0.0, 0.5, 0.0];
    for (o, w) in out.iter().zip(want) {
        assert!((o - w).abs() < 1e-12, "{out:?} vs {want:?}");
    }
}

#[test]
fn psf_convolution_gradient_matches_finite_differences() {
    for psf in [
        Psf::gaussian(0.1, 0.07, 3.0).unwrap(),
        Psf::pixelated(3, 3, vec![0.1, 0.5, 0.2, 0.0, 1.0, 0.3, 0.05, 0.2, 0.4]).unwrap(),
    ] {
        check_gradient("PSF", &[0.8, 0.3], 1e-6, 1e-7, |p| {
            let d = p[0].device();
            let (x, y) = Grid::new(8, 9, 0.07, 1).unwrap().super_coords(&d);
            // an image depending on two parameters through a Gaussian blob
            let r2 = (x - p[1].clone().unsqueeze_dim(1)).powi_scalar(2) + y.powi_scalar(2);
            let img = (r2.neg().div_scalar(0.02).exp() * p[0].clone().unsqueeze_dim(1))
                .reshape([1, 8, 9]);
            psf.convolve(img).reshape([1, 72])
        });
    }
}

fn render_from(p: &[Tensor<1>], renderer: &Renderer) -> Tensor<2> {
    let mass = MassModel::new(vec![
        MassComponent::Epl(Epl {
            theta_e: p[0].clone(),
            gamma: p[1].clone(),
            e1: p[2].clone(),
            e2: p[3].clone(),
            center_x: p[4].clone(),
            center_y: p[5].clone(),
        }),
        MassComponent::Shear(Shear {
            gamma1: p[6].clone(),
            gamma2: p[7].clone(),
        }),
    ]);
    let light = sersic_from(&p[8..15]);
    let source = sersic_from(&p[15..22]);
    let img = renderer.render(&mass, &source, Some(&light));
    let [b, h, w] = img.dims();
    img.reshape([b, h * w])
}

const GIGA_PARAMS: [f64; 22] = [
    1.1, 2.05, 0.08, -0.05, 0.02, -0.03, 0.02, -0.01, // EPL, shear
    3.0, 0.9, 3.2, 0.05, 0.02, 0.01, 0.0, // lens light: amp, R, n, e1, e2, x, y
    5.0, 0.18, 1.3, -0.1, 0.07, 0.05, 0.1, // source
];

#[test]
fn render_gradients_match_finite_differences() {
    let grid = Grid::new(12, 12, 0.2, 2).unwrap();
    let psf = Psf::gaussian(0.15, 0.2, 3.0).unwrap();
    check_gradient("render", &GIGA_PARAMS, 1e-6, 1e-6, |p| {
        let r = Renderer::new(grid.clone(), psf.clone(), &p[0].device());
        render_from(p, &r)
    });
}

#[test]
fn no_nan_at_lens_centre_or_round_lens() {
    // A ray exactly on the centre, with e1 = e2 = 0 (q = 1) and with an elliptical lens.
    let ad = ad_device();
    for &(e1, e2, gamma) in &[
        (0.0, 0.0, 2.0),
        (0.0, 0.0, 2.4),
        (0.1, -0.2, 1.7),
        (0.1, 0.0, 2.3),
    ] {
        let p: Vec<Tensor<1>> = [1.0, gamma, e1, e2, 0.1, -0.2]
            .iter()
            .map(|&v| t1(&[v], &ad).require_grad())
            .collect();
        let m = Epl {
            theta_e: p[0].clone(),
            gamma: p[1].clone(),
            e1: p[2].clone(),
            e2: p[3].clone(),
            center_x: p[4].clone(),
            center_y: p[5].clone(),
        };
        let x = t2(&[0.1, 0.5, -0.3], 1, &ad);
        let y = t2(&[-0.2, 0.2, 0.4], 1, &ad);
        let (ax, ay) = m.deflection(&x, &y);
        let vals = [host_any(ax.clone()), host_any(ay.clone())].concat();
        assert!(vals.iter().all(|v| v.is_finite()), "values {vals:?}");
        assert!(
            vals[0].abs() < 1e-6 && vals[3].abs() < 1e-6,
            "deflection at the centre {vals:?}"
        );
        let grads = (ax + ay).sum().backward();
        for (k, t) in p.iter().enumerate() {
            let g = host_any(t.grad(&grads).unwrap())[0];
            assert!(
                g.is_finite(),
                "e=({e1},{e2}) gamma={gamma}: gradient {k} is {g}"
            );
        }
        // The Sersic profile at its own centre, round and elliptical.
        let s: Vec<Tensor<1>> = [1.0, 0.5, 4.0, e1, e2, 0.1, -0.2]
            .iter()
            .map(|&v| t1(&[v], &ad).require_grad())
            .collect();
        let i = sersic_from(&s).brightness(&x, &y);
        assert!(host_any(i.clone()).iter().all(|v| v.is_finite()));
        let grads = i.sum().backward();
        for t in &s {
            assert!(host_any(t.grad(&grads).unwrap())[0].is_finite());
        }
    }
}

#[test]
fn round_limit_gradient_is_continuous() {
    // At q = 1 the gradient w.r.t. e1 must equal the limit from small ellipticities.
    let g_at = |e1: f64| -> f64 {
        let ad = ad_device();
        let e = t1(&[e1], &ad).require_grad();
        let d = ad.clone();
        let m = Epl {
            theta_e: t1(&[1.0], &d),
            gamma: t1(&[2.1], &d),
            e1: e.clone(),
            e2: t1(&[0.0], &d),
            center_x: t1(&[0.0], &d),
            center_y: t1(&[0.0], &d),
        };
        let (ax, ay) = m.deflection(&t2(&[0.7, -0.2], 1, &d), &t2(&[0.4, 0.9], 1, &d));
        let g = (ax + ay.mul_scalar(0.5)).sum().backward();
        host_any(e.grad(&g).unwrap())[0]
    };
    let g0 = g_at(0.0);
    let gp = g_at(1e-6);
    let gm = g_at(-1e-6);
    assert!(
        (g0 - gp).abs() < 1e-5 && (g0 - gm).abs() < 1e-5,
        "{gm} {g0} {gp}"
    );
}

#[test]
fn sersic_amplitude_is_intensity_at_r_sersic() {
    let d = f64_device();
    let (q, phi) = (0.6, 0.4);
    let (e1, e2) = e_from_q_phi(q, phi);
    let (r_s, n, amp) = (0.7, 2.5, 3.0);
    let s = Sersic {
        amp: t1(&[amp], &d),
        r_sersic: t1(&[r_s], &d),
        n_sersic: t1(&[n], &d),
        e1: t1(&[e1], &d),
        e2: t1(&[e2], &d),
        center_x: t1(&[0.2], &d),
        center_y: t1(&[-0.1], &d),
    };
    // On the major axis at x' = R_sersic / sqrt(q), on the minor axis at y' = R_sersic sqrt(q).
    let (sn, cs) = phi.sin_cos();
    let a = r_s / q.sqrt();
    let b = r_s * q.sqrt();
    let xs = [0.2 + a * cs, 0.2 - b * sn, 0.2 + 1.3 * cs - 0.4 * sn];
    let ys = [-0.1 + a * sn, -0.1 + b * cs, -0.1 + 1.3 * sn + 0.4 * cs];
    let out = host(s.brightness(&t2(&xs, 1, &d), &t2(&ys, 1, &d)));
    assert!((out[0] - amp).abs() < 1e-12, "{out:?}");
    assert!((out[1] - amp).abs() < 1e-12, "{out:?}");
    // A generic point against lenstronomy's rotated-frame formula.
    let (xp, yp) = to_major_axis_frame(1.3 * cs - 0.4 * sn, 1.3 * sn + 0.4 * cs, phi);
    let r = (q * xp * xp + yp * yp / q).sqrt();
    let bn = 1.9992 * n - 0.3271;
    let want = amp * (-bn * ((r / r_s).powf(1.0 / n) - 1.0)).exp();
    assert!(
        (out[2] - want).abs() < 1e-12 * want.max(1.0),
        "{} vs {want}",
        out[2]
    );
}

#[test]
fn render_of_constant_source_without_lensing_is_constant() {
    // Supersampling + pooling of a constant equals the constant; the PSF keeps the interior.
    let d = f64_device();
    let grid = Grid::new(10, 10, 0.1, 3).unwrap();
    let r = Renderer::new(grid, Psf::gaussian(0.1, 0.1, 2.0).unwrap(), &d);
    let flat = Sersic {
        amp: t1(&[2.0], &d),
        r_sersic: t1(&[1.0], &d),
        n_sersic: t1(&[0.16362], &d), // b_n = 0: constant profile
        e1: t1(&[0.0], &d),
        e2: t1(&[0.0], &d),
        center_x: t1(&[0.0], &d),
        center_y: t1(&[0.0], &d),
    };
    let img = host_any(r.render(&MassModel::default(), &flat, None));
    for i in 2..8 {
        for j in 2..8 {
            assert!((img[i * 10 + j] - 2.0).abs() < 1e-4, "{}", img[i * 10 + j]);
        }
    }
}

// ---------------------------------------------------------------- fused kernel

/// Gaussian log-likelihood of GIGA-Lens eq. 6 on burn tensors (reference for the fused kernel).
fn burn_log_likelihood(
    model: Tensor<2>,
    obs: &Tensor<2>,
    bkg_var: &Tensor<2>,
    poisson: f64,
    w: &Tensor<2>,
) -> Tensor<1> {
    let var = bkg_var.clone() + model.clone().mul_scalar(poisson);
    let r2 = (obs.clone() - model).powi_scalar(2);
    let terms = r2 / var.clone() + var.log().add_scalar((2.0 * std::f64::consts::PI).ln());
    (terms * w.clone())
        .sum_dim(1)
        .squeeze_dim::<1>(1)
        .mul_scalar(-0.5)
}

#[test]
fn fused_kernel_matches_burn_autodiff_psf_on_subgrid() {
    fused_kernel_matches_burn_autodiff(PsfOrder::default());
}

#[test]
fn fused_kernel_matches_burn_autodiff_psf_on_pixels() {
    fused_kernel_matches_burn_autodiff(PsfOrder::Pixel);
}

/// The fused kernel against the tensor library under burn autodiff, with the PSF applied at
/// `order` (an asymmetric, non-square pixelated kernel on a supersampled grid).
fn fused_kernel_matches_burn_autodiff(order: PsfOrder) {
    use infer::lens::fused::{FusedLens, NUM_PARAMS};
    let grid = Grid::new(20, 18, 0.13, 2).unwrap();
    let psf = Psf::pixelated(
        5,
        3,
        vec![
            0.01, 0.02, 0.0, 0.05, 0.2, 0.04, 0.1, 0.6, 0.15, 0.03, 0.3, 0.02, 0.0, 0.05, 0.01,
        ],
    )
    .unwrap();
    let d = f64_device();
    let n = grid.num_pixels();
    // Observation: the truth rendered by the tensor library plus a fixed pseudo-noise pattern.
    let truth: Vec<Tensor<1>> = GIGA_PARAMS.iter().map(|&v| t1(&[v], &d)).collect();
    let clean = host(render_from(
        &truth,
        &Renderer::with_order(grid.clone(), psf.clone(), order, &d),
    ));
    let obs: Vec<f64> = clean
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.3 * weights(n)[i])
        .collect();
    let bkg: Vec<f64> = (0..n).map(|i| 0.04 + 0.01 * ((i % 7) as f64)).collect();
    let mask: Vec<bool> = (0..n).map(|i| i % 11 != 3).collect();
    let poisson = 0.01;
    let fused = FusedLens::new(
        grid.clone(),
        &psf,
        order,
        &obs,
        &bkg,
        Some(poisson),
        Some(&mask),
    )
    .unwrap();

    // Three parameter vectors: perturbed truth, a round lens (e1 = e2 = 0), a flattened one.
    let mut batch = Vec::new();
    for (k, delta) in [0.03, -0.02, 0.05].iter().enumerate() {
        let mut p = GIGA_PARAMS;
        for (i, v) in p.iter_mut().enumerate() {
            *v += delta * v.abs().max(0.05) * ((i as f64 * 0.61).sin());
        }
        if k == 1 {
            p[2] = 0.0;
            p[3] = 0.0;
        }
        if k == 2 {
            p[2] = 0.35;
            p[3] = -0.2;
        }
        batch.extend_from_slice(&p);
    }
    let (vals, grads) = fused.value_and_grad(&batch);
    let vals_only = fused.log_likelihood(&batch);

    let ad = ad_device();
    let b = batch.len() / NUM_PARAMS;
    let cols: Vec<Tensor<1>> = (0..NUM_PARAMS)
        .map(|q| {
            t1(
                &(0..b)
                    .map(|s| batch[s * NUM_PARAMS + q])
                    .collect::<Vec<_>>(),
                &ad,
            )
            .require_grad()
        })
        .collect();
    let model = render_from(
        &cols,
        &Renderer::with_order(grid.clone(), psf.clone(), order, &ad),
    );
    let ll = burn_log_likelihood(
        model,
        &t2(&obs, 1, &ad),
        &t2(&bkg, 1, &ad),
        poisson,
        &t2(
            &mask
                .iter()
                .map(|&m| if m { 1.0 } else { 0.0 })
                .collect::<Vec<_>>(),
            1,
            &ad,
        ),
    );
    let ref_vals = host_any(ll.clone());
    let g = ll.sum().backward();
    let ref_grads: Vec<Vec<f64>> = cols.iter().map(|c| host_any(c.grad(&g).unwrap())).collect();
    for s in 0..b {
        let rel = (vals[s] - ref_vals[s]).abs() / ref_vals[s].abs();
        assert!(
            rel < 1e-5,
            "sample {s}: fused log L {} vs burn {} (rel {rel:e})",
            vals[s],
            ref_vals[s]
        );
        assert!(
            (vals[s] - vals_only[s]).abs() < 1e-6 * vals[s].abs(),
            "value-only path differs"
        );
        let scale = (0..NUM_PARAMS)
            .map(|q| ref_grads[q][s].abs())
            .fold(0.0, f64::max);
        for q in 0..NUM_PARAMS {
            let (a, r) = (grads[s * NUM_PARAMS + q], ref_grads[q][s]);
            assert!(
                (a - r).abs() <= 1e-4 * r.abs() + 1e-5 * scale,
                "sample {s} parameter {q}: fused {a} vs autodiff {r}"
            );
        }
    }
    // The fused forward image equals the tensor render.
    let img = fused.render(&GIGA_PARAMS);
    for (a, r) in img.iter().zip(&clean) {
        assert!((a - r).abs() < 1e-5 * r.abs().max(1.0), "{a} vs {r}");
    }
}

#[test]
fn fused_placed_image_matches_burn_autodiff() {
    use infer::lens::fused::placed::{FusedPlacedImage, NUM_PLACED_PARAMS};
    use infer::source::placed::PlacedImage;
    let (hs, ws) = (10, 8);
    // 19 columns: 1672 rays per chunk, not a multiple of the kernel's lane count (the last block
    // of rays is partial)
    let grid = Grid::new(22, 19, 0.1, 2).unwrap();
    let n = grid.num_pixels();
    let src: Vec<f64> = (0..2 * hs * ws)
        .map(|i| {
            let (s, r, c) = (i / (hs * ws), (i / ws) % hs, i % ws);
            let (dr, dc) = (r as f64 - 4.5, c as f64 - 3.0 - s as f64);
            (-(dr * dr + 0.7 * dc * dc) / 6.0).exp() + 0.05 * ((i * 13 % 7) as f64)
        })
        .collect();
    let obs: Vec<f64> = (0..n).map(|i| 0.2 + 0.3 * weights(n)[i]).collect();
    let bkg: Vec<f64> = vec![0.05; n];
    let mask: Vec<bool> = (0..n).map(|i| i % 13 != 5).collect();
    let batch: Vec<f64> = vec![
        0.9, 2.1, 0.1, -0.05, 0.03, -0.02, 0.02, -0.01, 0.05, -0.08, 0.6, 1.3, // sample 0
        1.0, 1.9, 0.0, 0.0, -0.04, 0.01, -0.03, 0.02, -0.1, 0.04, 0.8,
        0.7, // sample 1 (q = 1)
    ];
    let b = 2;
    for (psf, poisson) in [
        (Psf::gaussian(0.12, 0.1, 3.0).unwrap(), None),
        (
            Psf::pixelated(3, 3, vec![0.1, 0.5, 0.2, 0.0, 1.0, 0.3, 0.05, 0.2, 0.4]).unwrap(),
            Some(0.02),
        ),
    ] {
        let fused = FusedPlacedImage::new(
            grid.clone(),
            &psf,
            (hs, ws),
            &obs,
            &bkg,
            poisson,
            Some(&mask),
        )
        .unwrap();
        let src32: Vec<f32> = src.iter().map(|&v| v as f32).collect();
        let (vals, grads, g_img) = fused.value_and_grad(&batch, &src32);
        let vals_only = fused.log_likelihood(&batch, &src32);

        let ad = ad_device();
        let cols: Vec<Tensor<1>> = (0..NUM_PLACED_PARAMS)
            .map(|q| {
                t1(
                    &(0..b)
                        .map(|s| batch[s * NUM_PLACED_PARAMS + q])
                        .collect::<Vec<_>>(),
                    &ad,
                )
                .require_grad()
            })
            .collect();
        let image =
            Tensor::<3>::from_data(TensorData::new(src.clone(), [b, hs, ws]), &ad).require_grad();
        let p = |i: usize| cols[i].clone();
        let mass = MassModel::new(vec![
            MassComponent::Epl(Epl {
                theta_e: p(0),
                gamma: p(1),
                e1: p(2),
                e2: p(3),
                center_x: p(4),
                center_y: p(5),
            }),
            MassComponent::Shear(Shear {
                gamma1: p(6),
                gamma2: p(7),
            }),
        ]);
        let source = PlacedImage {
            image: image.clone(),
            x_src: p(8),
            y_src: p(9),
            s: p(10),
            i: p(11),
        };
        let model = Renderer::with_order(grid.clone(), psf.clone(), PsfOrder::Pixel, &ad)
            .render(&mass, &source, None)
            .reshape([b, n]);
        let ll = burn_log_likelihood(
            model,
            &t2(&obs, 1, &ad),
            &t2(&bkg, 1, &ad),
            poisson.unwrap_or(0.0),
            &t2(
                &mask
                    .iter()
                    .map(|&m| if m { 1.0 } else { 0.0 })
                    .collect::<Vec<_>>(),
                1,
                &ad,
            ),
        );
        let ref_vals = host_any(ll.clone());
        let g = ll.sum().backward();
        let ref_img = host_any(image.grad(&g).unwrap());
        for s in 0..b {
            let rel = (vals[s] - ref_vals[s]).abs() / ref_vals[s].abs();
            assert!(
                rel < 1e-5,
                "sample {s}: fused {} vs burn {}",
                vals[s],
                ref_vals[s]
            );
            assert!((vals[s] - vals_only[s]).abs() < 1e-6 * vals[s].abs());
            let scale = (0..NUM_PLACED_PARAMS)
                .map(|q| host_any(cols[q].grad(&g).unwrap())[s].abs())
                .fold(0.0, f64::max);
            for q in 0..NUM_PLACED_PARAMS {
                let r = host_any(cols[q].grad(&g).unwrap())[s];
                let a = grads[s * NUM_PLACED_PARAMS + q];
                assert!(
                    (a - r).abs() <= 1e-4 * r.abs() + 1e-5 * scale,
                    "sample {s} parameter {q}: fused {a} vs autodiff {r}"
                );
            }
        }
        let img_scale = ref_img.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(img_scale > 0.0);
        for (i, (a, r)) in g_img.iter().zip(&ref_img).enumerate() {
            assert!(
                (*a as f64 - r).abs() <= 1e-4 * r.abs() + 1e-5 * img_scale,
                "image pixel {i}: fused {a} vs autodiff {r}"
            );
        }
        // The forward image equals the tensor render.
        let d = f64_device();
        let one: Vec<Tensor<1>> = batch[..NUM_PLACED_PARAMS]
            .iter()
            .map(|&v| t1(&[v], &d))
            .collect();
        let q = |i: usize| one[i].clone();
        let mass = MassModel::new(vec![
            MassComponent::Epl(Epl {
                theta_e: q(0),
                gamma: q(1),
                e1: q(2),
                e2: q(3),
                center_x: q(4),
                center_y: q(5),
            }),
            MassComponent::Shear(Shear {
                gamma1: q(6),
                gamma2: q(7),
            }),
        ]);
        let img0 =
            Tensor::<3>::from_data(TensorData::new(src[..hs * ws].to_vec(), [1, hs, ws]), &d);
        let source = PlacedImage {
            image: img0,
            x_src: q(8),
            y_src: q(9),
            s: q(10),
            i: q(11),
        };
        let want = host_any(
            Renderer::with_order(grid.clone(), psf.clone(), PsfOrder::Pixel, &d)
                .render(&mass, &source, None),
        );
        let got = fused.render(&batch[..NUM_PLACED_PARAMS], &src32[..hs * ws]);
        for (a, r) in got.iter().zip(&want) {
            assert!((a - r).abs() < 1e-5 * r.abs().max(1.0), "{a} vs {r}");
        }
    }
}

/// Values computed with lenstronomy 1.14.2 (pip, in a throw-away venv) by this script:
/// ```text
/// import numpy as np
/// from lenstronomy.LensModel.lens_model import LensModel
/// from lenstronomy.LightModel.light_model import LightModel
/// xs = np.array([1.3, -0.7, 0.05, -1.9, 0.3]); ys = np.array([0.4, 0.9, -0.02, -1.1, -2.2])
/// lm = LensModel(['EPL', 'SHEAR'])
/// kw = [dict(theta_E=1.1, gamma=2.3, e1=0.2, e2=-0.15, center_x=0.05, center_y=-0.1),
///       dict(gamma1=0.03, gamma2=-0.02)]
/// ax, ay = lm.alpha(xs, ys, kw)
/// lt = LightModel(['SERSIC_ELLIPSE'])
/// kwl = [dict(amp=3.0, R_sersic=0.7, n_sersic=2.5, e1=0.1, e2=0.2, center_x=0.2, center_y=-0.1)]
/// print(ax.tolist(), ay.tolist(), lt.surface_brightness(xs, ys, kwl).tolist())
/// ```
/// They check the parameter conventions (b = theta_E sqrt(q), e1/e2, shear signs, Sersic amp)
/// independently of this crate's own references.
#[test]
fn matches_lenstronomy_values() {
    let d = f64_device();
    let xs = [1.3, -0.7, 0.05, -1.9, 0.3];
    let ys = [0.4, 0.9, -0.02, -1.1, -2.2];
    let want_ax = [
        0.9233559791704212,
        -0.5481571085052281,
        0.1639748217048944,
        -0.7700641937310385,
        0.08214170477840994,
    ];
    let want_ay = [
        0.46295932733053535,
        0.8903903208797089,
        2.464535222244157,
        -0.43311124704365817,
        -0.8600511269797493,
    ];
    let want_i = [
        1.5512953847379998,
        0.42794959553104317,
        19.275751092773028,
        0.3169925456496343,
        0.14422283614878711,
    ];
    let mass = MassModel::new(vec![
        MassComponent::Epl(Epl {
            theta_e: t1(&[1.1], &d),
            gamma: t1(&[2.3], &d),
            e1: t1(&[0.2], &d),
            e2: t1(&[-0.15], &d),
            center_x: t1(&[0.05], &d),
            center_y: t1(&[-0.1], &d),
        }),
        MassComponent::Shear(Shear {
            gamma1: t1(&[0.03], &d),
            gamma2: t1(&[-0.02], &d),
        }),
    ]);
    let (x, y) = (t2(&xs, 1, &d), t2(&ys, 1, &d));
    let (ax, ay) = mass.deflection(&x, &y);
    let (ax, ay) = (host(ax), host(ay));
    let s = Sersic {
        amp: t1(&[3.0], &d),
        r_sersic: t1(&[0.7], &d),
        n_sersic: t1(&[2.5], &d),
        e1: t1(&[0.1], &d),
        e2: t1(&[0.2], &d),
        center_x: t1(&[0.2], &d),
        center_y: t1(&[-0.1], &d),
    };
    let i = host(s.brightness(&x, &y));
    for k in 0..xs.len() {
        assert!(
            rel_err((ax[k], ay[k]), (want_ax[k], want_ay[k])) < 1e-6,
            "point {k}: {:?} vs lenstronomy {:?}",
            (ax[k], ay[k]),
            (want_ax[k], want_ay[k])
        );
        assert!(
            (i[k] - want_i[k]).abs() < 1e-9 * want_i[k],
            "point {k}: Sersic {} vs lenstronomy {}",
            i[k],
            want_i[k]
        );
    }
}
