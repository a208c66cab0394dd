//! Elliptical Sersic light (lenstronomy `SERSIC_ELLIPSE`, GIGA-Lens eq. 8): keys (amp, r_sersic,
//! n_sersic, e1, e2, center_x, center_y), `amp` the surface brightness at R_sersic, b_n = 1.9992 n -
//! 0.3271, R the product-average elliptical radius. Value and exact derivatives by hand (checked
//! against the burn-tensor twin `lens/light/sersic.rs` in the tests).

use super::LightProfile;
use crate::math::real::Real;

/// Per-profile scalars of an elliptical Sersic (computed once per sample).
#[derive(Clone, Copy, Debug)]
pub struct SersicProfile {
    pub amp: f32,
    pub inv_n: f32,
    pub bn: f32,
    /// d b_n / d n (0 where b_n is floored)
    pub dbn: f32,
    pub log_r: f32,
    pub inv_r: f32,
    pub e1: f32,
    pub e2: f32,
    pub cx: f32,
    pub cy: f32,
    pub one_plus_c2: f32,
    pub inv_d: f32,
}

impl SersicProfile {
    pub fn new(amp: f64, r: f64, n: f64, e1: f64, e2: f64, cx: f64, cy: f64) -> Self {
        let raw = 1.9992 * n - 0.3271;
        let c2 = e1 * e1 + e2 * e2;
        Self {
            amp: amp as f32,
            inv_n: (1.0 / n) as f32,
            bn: raw.max(1e-5) as f32,
            dbn: if raw > 1e-5 { 1.9992 } else { 0.0 },
            log_r: r.ln() as f32,
            inv_r: (1.0 / r) as f32,
            e1: e1 as f32,
            e2: e2 as f32,
            cx: cx as f32,
            cy: cy as f32,
            one_plus_c2: (1.0 + c2) as f32,
            inv_d: (1.0 / (1.0 - c2)) as f32,
        }
    }
}

/// Floor on R^2 (as `light::sersic::R2_FLOOR`).
const R2_FLOOR: f32 = 1e-10;

/// Sersic value only.
#[inline(always)]
pub fn sersic_value<T: Real>(p: &SersicProfile, x: T, y: T) -> T {
    let sp = T::splat;
    let dx = x - sp(p.cx);
    let dy = y - sp(p.cy);
    let (x2, y2) = (dx * dx, dy * dy);
    let num = sp(p.one_plus_c2) * (x2 + y2) - sp(2.0 * p.e1) * (x2 - y2) - sp(4.0 * p.e2) * dx * dy;
    let r2 = (num * sp(p.inv_d)).max_s(R2_FLOOR);
    let l = sp(0.5) * r2.ln() - sp(p.log_r);
    let pw = (l * sp(p.inv_n)).exp();
    sp(p.amp) * (sp(-p.bn) * (pw - sp(1.0))).exp()
}

/// Sersic value and derivatives with respect to
/// (amp, R_sersic, n_sersic, e1, e2, center_x, center_y); the derivative with respect to the
/// evaluation point (x, y) is minus the centre derivatives.
#[inline(always)]
pub fn sersic_with_grad<T: Real>(p: &SersicProfile, x: T, y: T) -> (T, [T; 7]) {
    let sp = T::splat;
    let dx = x - sp(p.cx);
    let dy = y - sp(p.cy);
    let (x2, y2) = (dx * dx, dy * dy);
    let num = sp(p.one_plus_c2) * (x2 + y2) - sp(2.0 * p.e1) * (x2 - y2) - sp(4.0 * p.e2) * dx * dy;
    let r2raw = num * sp(p.inv_d);
    let keep = r2raw.step(R2_FLOOR); // 0 where R^2 is floored: no gradient through R^2
    let r2 = r2raw.max_s(R2_FLOOR);
    let l = sp(0.5) * r2.ln() - sp(p.log_r);
    let pw = (l * sp(p.inv_n)).exp();
    let e = (sp(-p.bn) * (pw - sp(1.0))).exp();
    let i = sp(p.amp) * e;
    // dI/dL = -I b_n p / n
    let di_dl = -i * sp(p.bn * p.inv_n) * pw;
    let d_r = -di_dl * sp(p.inv_r);
    let d_n = -i * (sp(p.dbn) * (pw - sp(1.0)) - sp(p.bn * p.inv_n * p.inv_n) * pw * l);
    let g = keep * di_dl * sp(0.5) / r2; // dI/dR^2
    let gd = g * sp(p.inv_d);
    let r2xy = x2 + y2;
    let dr2_dx = sp(2.0 * p.one_plus_c2 - 4.0 * p.e1) * dx - sp(4.0 * p.e2) * dy;
    let dr2_dy = sp(2.0 * p.one_plus_c2 + 4.0 * p.e1) * dy - sp(4.0 * p.e2) * dx;
    let dr2_de1 = sp(2.0 * p.e1) * (r2xy + r2) - sp(2.0) * (x2 - y2);
    let dr2_de2 = sp(2.0 * p.e2) * (r2xy + r2) - sp(4.0) * dx * dy;
    (
        i,
        [
            e,
            d_r,
            d_n,
            gd * dr2_de1,
            gd * dr2_de2,
            -gd * dr2_dx,
            -gd * dr2_dy,
        ],
    )
}

impl LightProfile for SersicProfile {
    const KEYS: &'static [&'static str] = &[
        "amp", "r_sersic", "n_sersic", "e1", "e2", "center_x", "center_y",
    ];

    fn new(p: &[f64]) -> Self {
        SersicProfile::new(p[0], p[1], p[2], p[3], p[4], p[5], p[6])
    }

    #[inline(always)]
    fn brightness<T: Real>(&self, x: T, y: T) -> T {
        sersic_value(self, x, y)
    }

    #[inline(always)]
    fn brightness_with_grad<T: Real>(&self, x: T, y: T, d: &mut [T]) -> (T, T, T) {
        let (i, g) = sersic_with_grad(self, x, y);
        d[..7].copy_from_slice(&g);
        (i, -g[5], -g[6])
    }
}
