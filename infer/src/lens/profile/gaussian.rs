//! Elliptical Gaussian light, lenstronomy's `GAUSSIAN_ELLIPSE`: keys (amp, sigma, e1, e2, center_x,
//! center_y), `amp` the total flux (counts/s; the surface brightness integrates to it),
//!
//!   I = amp / (2 pi sigma^2) exp(-R^2 / (2 sigma^2)),
//!
//! with R^2 = q x'^2 + y'^2 / q the product-average elliptical radius of the Sersic, written with
//! (e1, e2) as there: R^2 = ((1 + c^2)(x^2 + y^2) - 2 e1 (x^2 - y^2) - 4 e2 x y) / (1 - c^2),
//! c^2 = e1^2 + e2^2 (lenstronomy's `transform_e1e2_product_average`).

use super::LightProfile;
use crate::math::real::Real;

/// The Gaussian of one sample.
#[derive(Clone, Debug)]
pub struct Gaussian {
    /// amp / (2 pi sigma^2) and 1 / (2 pi sigma^2).
    peak: f32,
    d_peak: f32,
    inv_2s2: f32,
    inv_sigma: f32,
    e1: f32,
    e2: f32,
    cx: f32,
    cy: f32,
    one_plus_c2: f32,
    inv_d: f32,
}

impl LightProfile for Gaussian {
    const KEYS: &'static [&'static str] = &["amp", "sigma", "e1", "e2", "center_x", "center_y"];

    fn new(p: &[f64]) -> Self {
        let (amp, sigma, e1, e2) = (p[0], p[1], p[2], p[3]);
        let norm = 1.0 / (2.0 * std::f64::consts::PI * sigma * sigma);
        let c2 = e1 * e1 + e2 * e2;
        Self {
            peak: (amp * norm) as f32,
            d_peak: norm as f32,
            inv_2s2: (0.5 / (sigma * sigma)) as f32,
            inv_sigma: (1.0 / sigma) as f32,
            e1: e1 as f32,
            e2: e2 as f32,
            cx: p[4] as f32,
            cy: p[5] as f32,
            one_plus_c2: (1.0 + c2) as f32,
            inv_d: (1.0 / (1.0 - c2)) as f32,
        }
    }

    #[inline(always)]
    fn brightness<T: Real>(&self, x: T, y: T) -> T {
        let sp = T::splat;
        let (dx, dy) = (x - sp(self.cx), y - sp(self.cy));
        let (x2, y2) = (dx * dx, dy * dy);
        let num = sp(self.one_plus_c2) * (x2 + y2)
            - sp(2.0 * self.e1) * (x2 - y2)
            - sp(4.0 * self.e2) * dx * dy;
        let r2 = num * sp(self.inv_d);
        sp(self.peak) * (-(r2 * sp(self.inv_2s2))).exp()
    }

    #[inline(always)]
    fn brightness_with_grad<T: Real>(&self, x: T, y: T, d: &mut [T]) -> (T, T, T) {
        let sp = T::splat;
        let (dx, dy) = (x - sp(self.cx), y - sp(self.cy));
        let (x2, y2) = (dx * dx, dy * dy);
        let num = sp(self.one_plus_c2) * (x2 + y2)
            - sp(2.0 * self.e1) * (x2 - y2)
            - sp(4.0 * self.e2) * dx * dy;
        let r2 = num * sp(self.inv_d);
        let e = (-(r2 * sp(self.inv_2s2))).exp();
        let i = sp(self.peak) * e;
        // dI/dR^2 = -I / (2 sigma^2); R^2 = num / (1 - c^2)
        let g = -(i * sp(self.inv_2s2));
        let gd = g * sp(self.inv_d);
        let r2xy = x2 + y2;
        let dr2_dx = sp(2.0 * self.one_plus_c2 - 4.0 * self.e1) * dx - sp(4.0 * self.e2) * dy;
        let dr2_dy = sp(2.0 * self.one_plus_c2 + 4.0 * self.e1) * dy - sp(4.0 * self.e2) * dx;
        let dr2_de1 = sp(2.0 * self.e1) * (r2xy + r2) - sp(2.0) * (x2 - y2);
        let dr2_de2 = sp(2.0 * self.e2) * (r2xy + r2) - sp(4.0) * dx * dy;
        let (gx, gy) = (gd * dr2_dx, gd * dr2_dy);
        d[0] = sp(self.d_peak) * e;
        // I = amp/(2 pi s^2) exp(-R^2/(2 s^2)): dI/ds = I (R^2/s^2 - 2)/s
        d[1] = i * (r2 * sp(2.0 * self.inv_2s2) - sp(2.0)) * sp(self.inv_sigma);
        d[2] = gd * dr2_de1;
        d[3] = gd * dr2_de2;
        d[4] = -gx;
        d[5] = -gy;
        (i, gx, gy)
    }
}
