//! Navarro-Frenk-White halo, lenstronomy's `NFW` (Golse & Kneib 2002; Keeton 2001 eq. 54):
//! keys (Rs, alpha_Rs, center_x, center_y), with Rs the scale radius and alpha_Rs the deflection
//! at R = Rs, both in arcsec. With X = R / Rs,
//!
//!   alpha = alpha_Rs / ((1 + ln 1/2) Rs) * h(X) (x - center_x, y - center_y),   h = g(X) / X^2,
//!   g(X) = ln(X/2) + f(X),   f = atanh(w)/w (X < 1) or atan(w)/w (X > 1),   w = sqrt|1 - X^2|,
//!
//! and dg/dX = X F(X), F = (f - 1)/(1 - X^2) the convergence shape (kappa = 2 rho0 Rs F). h and F
//! are evaluated per ray in f64 (series where the closed forms cancel: near X = 1 and X -> 0);
//! like lenstronomy, X is floored at 1e-6.

use super::MassProfile;
use crate::math::complex::C;
use crate::math::real::Real;

/// 1 + ln(1/2), lenstronomy's `alpha2rho0` normalisation.
const NORM: f64 = 1.0 - std::f64::consts::LN_2;
/// lenstronomy's floor on X = R / Rs (`_g`).
const X_MIN: f64 = 1e-6;

/// (h(X), F(X) - 2 h(X)) with h = g/X^2: the deflection's radial factor and X dh/dX.
pub fn h_and_slope(x: f64) -> (f64, f64) {
    let x = x.max(X_MIN);
    let u = 1.0 - x * x;
    // f and (f - 1)/u: one power series in u near X = 1, sum_k u^k / (2k + 1).
    let (f, f_minus_1_over_u) = if u.abs() < 0.05 {
        let (mut pk, mut tail) = (1.0, 0.0);
        for k in 1..14 {
            tail += pk / (2 * k + 1) as f64;
            pk *= u;
        }
        (1.0 + u * tail, tail)
    } else {
        let w = u.abs().sqrt();
        let f = if u > 0.0 {
            ((1.0 + w) / x).ln() / w
        } else {
            w.atan() / w
        };
        (f, (f - 1.0) / u)
    };
    let h = if x < 1e-3 {
        // g = -ln(X/2)(X^2/2 + 3X^4/8) - X^2/4 - 7X^4/32 + O(X^6 ln X): no cancellation.
        let l = (0.5 * x).ln();
        -l * (0.5 + 0.375 * x * x) - 0.25 - 7.0 / 32.0 * x * x
    } else {
        ((0.5 * x).ln() + f) / (x * x)
    };
    (h, f_minus_1_over_u - 2.0 * h)
}

/// The NFW of one sample.
#[derive(Clone, Debug)]
pub struct Nfw {
    inv_rs: f32,
    /// alpha_Rs / ((1 + ln 1/2) Rs) and 1 / ((1 + ln 1/2) Rs).
    amp: f32,
    d_amp: f32,
    cx: f32,
    cy: f32,
}

/// Floor on R^2 (lenstronomy floors R at 1e-8 in `nfw_alpha`).
const R2_MIN: f32 = 1e-16;

impl Nfw {
    /// Offsets, 1/R^2, h and X h'.
    #[inline(always)]
    fn radial<T: Real>(&self, x: T, y: T) -> (T, T, T, T, T) {
        let dx = x - T::splat(self.cx);
        let dy = y - T::splat(self.cy);
        let r2 = (dx * dx + dy * dy).max_s(R2_MIN);
        let inv_rs = self.inv_rs as f64;
        let (h, xh) = r2.map2(|r2| {
            let (h, xh) = h_and_slope((r2 as f64).sqrt() * inv_rs);
            (h as f32, xh as f32)
        });
        (dx, dy, T::splat(1.0) / r2, h, xh)
    }
}

impl MassProfile for Nfw {
    const KEYS: &'static [&'static str] = &["Rs", "alpha_Rs", "center_x", "center_y"];

    fn new(p: &[f64]) -> Self {
        let rs = p[0].max(1e-7);
        Self {
            inv_rs: (1.0 / rs) as f32,
            amp: (p[1] / (NORM * rs)) as f32,
            d_amp: (1.0 / (NORM * rs)) as f32,
            cx: p[2] as f32,
            cy: p[3] as f32,
        }
    }

    #[inline(always)]
    fn deflection<T: Real>(&self, x: T, y: T) -> C<T> {
        let (dx, dy, _, h, _) = self.radial(x, y);
        let a = T::splat(self.amp) * h;
        C::new(a * dx, a * dy)
    }

    #[inline(always)]
    fn deflection_with_grad<T: Real>(&self, x: T, y: T, d: &mut [C<T>]) -> C<T> {
        let sp = T::splat;
        let (dx, dy, inv_r2, h, xh) = self.radial(x, y);
        let a = sp(self.amp) * h;
        // A = alpha_Rs k h(R/Rs): dA/dRs = -(A + alpha_Rs k X h') / Rs, R dA/dR = alpha_Rs k X h'.
        let a_xh = sp(self.amp) * xh;
        let d_rs = -(a + a_xh) * sp(self.inv_rs);
        let b = a_xh * inv_r2; // (dA/dR) / R
        d[0] = C::new(d_rs * dx, d_rs * dy);
        let k = sp(self.d_amp) * h;
        d[1] = C::new(k * dx, k * dy);
        let bxy = b * dx * dy;
        d[2] = C::new(-a - b * dx * dx, -bxy);
        d[3] = C::new(-bxy, -a - b * dy * dy);
        C::new(a * dx, a * dy)
    }
}
