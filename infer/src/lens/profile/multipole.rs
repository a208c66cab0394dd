//! Circular multipole of order m, lenstronomy's `MULTIPOLE` (Xu et al. 2013 eq. B12; Van de Vyvere
//! et al. 2022): keys (m, a_m, phi_m, center_x, center_y, r_E), m a fixed integer >= 1. With polar
//! coordinates (r, phi) about the centre and psi = m (phi - phi_m),
//!
//!   m >= 2: potential r a_m / (1 - m^2) cos psi,
//!           alpha = a_m / (1 - m^2) (cos phi cos psi + m sin phi sin psi,
//!                                    sin phi cos psi - m cos phi sin psi);
//!   m = 1:  potential a_m / 2 r ln(r / r_E) cos(phi - phi_m),
//!           alpha = a_m / 2 (cos phi_m ln(r/r_E) + cos(phi - phi_m) cos phi,
//!                            sin phi_m ln(r/r_E) + cos(phi - phi_m) sin phi).
//!
//! e^{i psi} is (cos phi + i sin phi)^m e^{-i m phi_m}, so no trigonometric function is evaluated
//! per ray. The centre derivatives are minus lenstronomy's Hessian.

use super::MassProfile;
use crate::math::complex::C;
use crate::math::real::Real;

/// The multipole of one sample.
#[derive(Clone, Debug)]
pub struct Multipole {
    m: u32,
    a_m: f32,
    /// a_m / (1 - m^2) and 1 / (1 - m^2) (m >= 2).
    k: f32,
    k1: f32,
    /// e^{-i m phi_m}, and (cos phi_m, sin phi_m) for m = 1.
    rot: (f32, f32),
    cx: f32,
    cy: f32,
    ln_r_e: f32,
    inv_r_e: f32,
}

/// Floor on r^2 (lenstronomy floors r at 1e-6 for m = 1).
const R2_MIN: f32 = 1e-12;

impl Multipole {
    /// Offsets, 1/r, cos phi, sin phi.
    #[inline(always)]
    fn polar<T: Real>(&self, x: T, y: T) -> (T, T, T) {
        let dx = x - T::splat(self.cx);
        let dy = y - T::splat(self.cy);
        let r2 = (dx * dx + dy * dy).max_s(R2_MIN);
        let inv_r = T::splat(1.0) / r2.sqrt();
        (inv_r, dx * inv_r, dy * inv_r)
    }

    /// (cos psi, sin psi) from (cos phi, sin phi).
    #[inline(always)]
    fn phase<T: Real>(&self, c: T, s: T) -> (T, T) {
        let u = C::new(c, s);
        let mut z = u;
        for _ in 1..self.m {
            z = z * u;
        }
        let z = z * C::new(T::splat(self.rot.0), T::splat(self.rot.1));
        (z.re, z.im)
    }

    /// Deflection and, when `d` is given, its derivatives.
    #[inline(always)]
    fn eval<T: Real>(&self, x: T, y: T, d: Option<&mut [C<T>]>) -> C<T> {
        let sp = T::splat;
        let (inv_r, c, s) = self.polar(x, y);
        if self.m == 1 {
            let (cm, sm) = self.rot;
            let l = (sp(1.0) / inv_r).ln() - sp(self.ln_r_e);
            let cos_d = c * sp(cm) + s * sp(sm);
            let half = sp(0.5 * self.a_m);
            let fx = sp(cm) * l + cos_d * c;
            let fy = sp(sm) * l + cos_d * s;
            if let Some(d) = d {
                let sin_d = s * sp(cm) - c * sp(sm);
                d[0] = C::new(sp(0.0), sp(0.0));
                d[1] = C::new(sp(0.5) * fx, sp(0.5) * fy);
                d[2] = C::new(
                    half * (-sp(sm) * l + sin_d * c),
                    half * (sp(cm) * l + sin_d * s),
                );
                let hr = half * inv_r;
                let (c2, s2) = (c * c - s * s, sp(2.0) * c * s);
                let fxx = hr * (sp(2.0 * cm) * c - cos_d * c2);
                let fyy = hr * (sp(2.0 * sm) * s + cos_d * c2);
                let fxy = hr * ((s * sp(cm) + c * sp(sm)) - cos_d * s2);
                d[3] = C::new(-fxx, -fxy);
                d[4] = C::new(-fxy, -fyy);
                let g = -(half * sp(self.inv_r_e));
                d[5] = C::new(g * sp(cm), g * sp(sm));
            }
            return C::new(half * fx, half * fy);
        }
        let (cp, spsi) = self.phase(c, s);
        let m = sp(self.m as f32);
        let ux = c * cp + m * s * spsi;
        let uy = s * cp - m * c * spsi;
        if let Some(d) = d {
            let km = sp(self.k * self.m as f32);
            d[0] = C::new(sp(0.0), sp(0.0));
            d[1] = C::new(sp(self.k1) * ux, sp(self.k1) * uy);
            d[2] = C::new(km * (c * spsi - m * s * cp), km * (s * spsi + m * c * cp));
            let ar = sp(self.a_m) * inv_r * cp;
            let fxx = ar * s * s;
            let fyy = ar * c * c;
            let fxy = -(ar * c * s);
            d[3] = C::new(-fxx, -fxy);
            d[4] = C::new(-fxy, -fyy);
            d[5] = C::new(sp(0.0), sp(0.0));
        }
        C::new(sp(self.k) * ux, sp(self.k) * uy)
    }
}

impl MassProfile for Multipole {
    const KEYS: &'static [&'static str] = &["m", "a_m", "phi_m", "center_x", "center_y", "r_E"];

    fn check_fixed(key: &str, value: f64) -> Option<Result<(), String>> {
        (key == "m").then(|| {
            if value >= 1.0 && value.fract() == 0.0 && value <= 64.0 {
                Ok(())
            } else {
                Err(format!(
                    "m = {value}: the order must be an integer from 1 to 64"
                ))
            }
        })
    }

    /// phi_m enters only as m phi_m: period 2 pi / m.
    fn period_of(key: &str, fixed: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
        let m = fixed("m")?.round();
        (key == "phi_m" && m >= 1.0).then(|| std::f64::consts::TAU / m)
    }

    fn default_of(key: &str) -> Option<f64> {
        match key {
            "center_x" | "center_y" => Some(0.0),
            "r_E" => Some(1.0),
            _ => None,
        }
    }

    fn new(p: &[f64]) -> Self {
        let m = p[0].round().max(1.0) as u32;
        let (a_m, phi_m, r_e) = (p[1], p[2], p[5]);
        let mf = m as f64;
        let rot = if m == 1 {
            (phi_m.cos(), phi_m.sin())
        } else {
            ((mf * phi_m).cos(), -(mf * phi_m).sin())
        };
        let k1 = if m == 1 { 0.0 } else { 1.0 / (1.0 - mf * mf) };
        Self {
            m,
            a_m: a_m as f32,
            k: (a_m * k1) as f32,
            k1: k1 as f32,
            rot: (rot.0 as f32, rot.1 as f32),
            cx: p[3] as f32,
            cy: p[4] as f32,
            ln_r_e: r_e.ln() as f32,
            inv_r_e: (1.0 / r_e) as f32,
        }
    }

    #[inline(always)]
    fn deflection<T: Real>(&self, x: T, y: T) -> C<T> {
        self.eval(x, y, None)
    }

    #[inline(always)]
    fn deflection_with_grad<T: Real>(&self, x: T, y: T, d: &mut [C<T>]) -> C<T> {
        self.eval(x, y, Some(d))
    }
}
