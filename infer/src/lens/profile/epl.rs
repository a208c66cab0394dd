//! Elliptical power law (EPL / SPLE; lenstronomy `EPL`, GIGA-Lens eq. 1, Chianese eqs. 11-12) for one
//! sample, by the Tessore & Metcalf (2015) series in the complex-ellipticity form derived in
//! `lens/mass/epl.rs` (the burn-tensor twin, kept as the autodiff reference); derivatives by hand
//! (`lens/README.md` "Fused kernel"). SIE and SIS are its gamma = 2 and e = 0 special cases.

use super::MassProfile;
use crate::lens::mass::epl::{SERIES_TOLERANCE, series_terms};
use crate::math::complex::C;
use crate::math::real::Real;
use std::ops::{Add, Mul, Sub};

/// Per-lens constants of the EPL series: the coefficients a_n and their t-derivatives.
#[derive(Clone, Debug)]
pub struct EplCoefficients {
    /// a_0..a_N (a_0 = 1).
    pub a: Vec<f32>,
    /// d a_n / d t.
    pub da: Vec<f32>,
    /// n a_n (S' = sum_{n>=1} n a_n s^(n-1)).
    pub na: Vec<f32>,
}

impl EplCoefficients {
    /// Coefficients for slope t = gamma - 1 and `n_terms` terms beyond the leading one
    /// (recursions a_n = a_{n-1} r_n, r_n = (2n-2+t)/(2n+2-t), dr_n/dt = 4n/(2n+2-t)^2, in f64).
    pub fn new(t: f64, n_terms: usize) -> Self {
        let mut a = vec![1.0f64];
        let mut da = vec![0.0f64];
        for n in 1..=n_terms {
            let nf = n as f64;
            let den = 2.0 * nf + 2.0 - t;
            let r = (2.0 * nf - 2.0 + t) / den;
            let dr = 4.0 * nf / (den * den);
            let (ap, dap) = (a[n - 1], da[n - 1]);
            a.push(ap * r);
            da.push(dap * r + ap * dr);
        }
        let na = a
            .iter()
            .enumerate()
            .map(|(n, v)| (n as f64 * v) as f32)
            .collect();
        Self {
            a: a.into_iter().map(|v| v as f32).collect(),
            da: da.into_iter().map(|v| v as f32).collect(),
            na,
        }
    }
}

/// Per-lens scalars of the EPL (computed once per sample).
#[derive(Clone, Copy, Debug)]
pub struct EplLens {
    pub t: f32,
    pub e1: f32,
    pub e2: f32,
    pub cx: f32,
    pub cy: f32,
    pub inv_theta_e: f32,
    /// ln theta_e + 0.5 ln(1 - |eps|^2)
    pub log_pref: f32,
    /// 1 / (1 - |eps|^2)
    pub inv_d: f32,
}

impl EplLens {
    pub fn new(theta_e: f64, gamma: f64, e1: f64, e2: f64, cx: f64, cy: f64) -> Self {
        let dd = 1.0 - e1 * e1 - e2 * e2;
        Self {
            t: (gamma - 1.0) as f32,
            e1: e1 as f32,
            e2: e2 as f32,
            cx: cx as f32,
            cy: cy as f32,
            inv_theta_e: (1.0 / theta_e) as f32,
            log_pref: (theta_e.ln() + 0.5 * dd.ln()) as f32,
            inv_d: (1.0 / dd) as f32,
        }
    }
}

/// Squared softening of |v| (as `mass::epl::EPS2`, in f32 range).
const EPS2: f32 = 1e-20;

/// Per-ray quantities of the EPL: offsets, v, |v|^2, u = v/|v|, u^2, s = -conj(eps) u^2.
#[derive(Clone, Copy, Debug)]
pub struct EplGeometry<T> {
    pub dx: T,
    pub dy: T,
    pub v: C<T>,
    pub r2: T,
    pub inv_r2: T,
    pub inv_r: T,
    pub u: C<T>,
    pub u2: C<T>,
    pub s: C<T>,
}

/// First stage of the EPL at one ray (or block).
#[inline(always)]
pub fn epl_geometry<T: Real>(l: &EplLens, x: T, y: T) -> EplGeometry<T> {
    let sp = T::splat;
    let dx = x - sp(l.cx);
    let dy = y - sp(l.cy);
    let v = C::new(
        sp(1.0 - l.e1) * dx - sp(l.e2) * dy,
        sp(1.0 + l.e1) * dy - sp(l.e2) * dx,
    );
    let r2 = v.re * v.re + v.im * v.im + sp(EPS2);
    let inv_r2 = sp(1.0) / r2;
    let inv_r = inv_r2.sqrt();
    let u = v.scale(inv_r);
    let u2 = u.mul(u);
    let s = C::new(sp(-l.e1), sp(l.e2)).mul(u2);
    EplGeometry {
        dx,
        dy,
        v,
        r2,
        inv_r2,
        inv_r,
        u,
        u2,
        s,
    }
}

/// Horner evaluation of sum_{k <= n} coefs[k] s^k.
#[inline(always)]
pub fn horner<T: Real>(coefs: &[f32], n: usize, s: C<T>) -> C<T> {
    let mut acc = C::new(T::splat(coefs[n]), T::splat(0.0));
    for k in (0..n).rev() {
        acc = acc.mul(s);
        acc.re = acc.re + T::splat(coefs[k]);
    }
    acc
}

/// EPL deflection (value only).
#[inline(always)]
pub fn epl_value<T: Real>(l: &EplLens, c: &EplCoefficients, x: T, y: T) -> C<T> {
    let g = epl_geometry(l, x, y);
    let sv = horner(&c.a, c.a.len() - 1, g.s);
    let pref = (T::splat(l.t) * (T::splat(l.log_pref) - T::splat(0.5) * g.r2.ln())).exp();
    g.v.mul(sv).scale(pref)
}

/// EPL deflection and its derivatives with respect to
/// (theta_e, gamma, e1, e2, center_x, center_y), each complex (d alpha_x + i d alpha_y).
#[derive(Clone, Copy, Debug)]
pub struct EplRay<T> {
    pub alpha: C<T>,
    pub d: [C<T>; 6],
}

/// Value and derivatives.
#[inline(always)]
pub fn epl_with_grad<T: Real>(l: &EplLens, c: &EplCoefficients, x: T, y: T) -> EplRay<T> {
    let g = epl_geometry(l, x, y);
    let n = c.a.len() - 1;
    let sv = horner(&c.a, n, g.s);
    let st = horner(&c.da, n, g.s);
    let spp = if n >= 1 {
        horner(&c.na[1..], n - 1, g.s)
    } else {
        C::new(T::splat(0.0), T::splat(0.0))
    };
    let sp = T::splat;
    let (e1, e2, t) = (sp(l.e1), sp(l.e2), sp(l.t));
    let (v, u, u2, inv_r, inv_r2) = (g.v, g.u, g.u2, g.inv_r, g.inv_r2);
    let (dx, dy) = (g.dx, g.dy);
    let ebar = C::new(e1, -e2);
    let log_r2 = g.r2.ln();
    let log_core = sp(l.log_pref) - sp(0.5) * log_r2;
    let a_pref = (t * log_core).exp();
    let alpha = v.mul(sv).scale(a_pref);
    let avsp = v.mul(spp).scale(a_pref); // A v S'
    // d alpha / d v_re and d v_im
    let m2eu = ebar.mul(u).scale(sp(-2.0) * inv_r); // -2 conj(eps) u / |v|
    let ds_re = m2eu.mul(C::new(sp(1.0), sp(0.0)).sub(v.scale(v.re * inv_r2)));
    let ds_im = m2eu.mul(C::new(sp(0.0), sp(1.0)).sub(v.scale(v.im * inv_r2)));
    let a_s = sv.scale(a_pref);
    let d_vre = alpha
        .scale(-t * v.re * inv_r2)
        .add(a_s)
        .add(avsp.mul(ds_re));
    let d_vim = alpha
        .scale(-t * v.im * inv_r2)
        .add(a_s.times_i())
        .add(avsp.mul(ds_im));
    let d_x = d_vre.scale(sp(1.0 - l.e1)).sub(d_vim.scale(e2));
    let d_y = d_vim.scale(sp(1.0 + l.e1)).sub(d_vre.scale(e2));
    let d_theta = alpha.scale(sp(l.t * l.inv_theta_e));
    let d_t = alpha.scale(log_core).add(v.mul(st).scale(a_pref));
    let d_e1 = d_vim
        .scale(dy)
        .sub(d_vre.scale(dx))
        .add(alpha.scale(sp(-l.t * l.e1 * l.inv_d)))
        .sub(avsp.mul(u2));
    let d_e2 = d_vre
        .scale(-dy)
        .sub(d_vim.scale(dx))
        .add(alpha.scale(sp(-l.t * l.e2 * l.inv_d)))
        .add(avsp.mul(u2.times_i()));
    let m1 = sp(-1.0);
    EplRay {
        alpha,
        d: [d_theta, d_t, d_e1, d_e2, d_x.scale(m1), d_y.scale(m1)],
    }
}

/// The EPL of one sample: keys (theta_e, gamma, e1, e2, center_x, center_y).
#[derive(Clone, Debug)]
pub struct Epl {
    pub lens: EplLens,
    pub coef: EplCoefficients,
}

impl Epl {
    fn of(theta_e: f64, gamma: f64, e1: f64, e2: f64, cx: f64, cy: f64) -> Self {
        let f = (e1 * e1 + e2 * e2).sqrt();
        Self {
            lens: EplLens::new(theta_e, gamma, e1, e2, cx, cy),
            coef: EplCoefficients::new(gamma - 1.0, series_terms(f, SERIES_TOLERANCE)),
        }
    }
}

impl MassProfile for Epl {
    const KEYS: &'static [&'static str] = &["theta_e", "gamma", "e1", "e2", "center_x", "center_y"];

    fn new(p: &[f64]) -> Self {
        Self::of(p[0], p[1], p[2], p[3], p[4], p[5])
    }

    #[inline(always)]
    fn deflection<T: Real>(&self, x: T, y: T) -> C<T> {
        epl_value(&self.lens, &self.coef, x, y)
    }

    #[inline(always)]
    fn deflection_with_grad<T: Real>(&self, x: T, y: T, d: &mut [C<T>]) -> C<T> {
        let r = epl_with_grad(&self.lens, &self.coef, x, y);
        d[..6].copy_from_slice(&r.d);
        r.alpha
    }
}

/// Singular isothermal ellipsoid: the EPL at gamma = 2; keys (theta_e, e1, e2, center_x, center_y).
#[derive(Clone, Debug)]
pub struct Sie(Epl);

impl MassProfile for Sie {
    const KEYS: &'static [&'static str] = &["theta_e", "e1", "e2", "center_x", "center_y"];

    fn new(p: &[f64]) -> Self {
        Sie(Epl::of(p[0], 2.0, p[1], p[2], p[3], p[4]))
    }

    #[inline(always)]
    fn deflection<T: Real>(&self, x: T, y: T) -> C<T> {
        self.0.deflection(x, y)
    }

    #[inline(always)]
    fn deflection_with_grad<T: Real>(&self, x: T, y: T, d: &mut [C<T>]) -> C<T> {
        let r = epl_with_grad(&self.0.lens, &self.0.coef, x, y);
        d[0] = r.d[0];
        d[1..5].copy_from_slice(&r.d[2..6]);
        r.alpha
    }
}

/// Singular isothermal sphere: the SIE at e1 = e2 = 0; keys (theta_e, center_x, center_y).
#[derive(Clone, Debug)]
pub struct Sis(Epl);

impl MassProfile for Sis {
    const KEYS: &'static [&'static str] = &["theta_e", "center_x", "center_y"];

    fn new(p: &[f64]) -> Self {
        Sis(Epl::of(p[0], 2.0, 0.0, 0.0, p[1], p[2]))
    }

    #[inline(always)]
    fn deflection<T: Real>(&self, x: T, y: T) -> C<T> {
        self.0.deflection(x, y)
    }

    #[inline(always)]
    fn deflection_with_grad<T: Real>(&self, x: T, y: T, d: &mut [C<T>]) -> C<T> {
        let r = epl_with_grad(&self.0.lens, &self.0.coef, x, y);
        d[0] = r.d[0];
        d[1] = r.d[4];
        d[2] = r.d[5];
        r.alpha
    }
}
