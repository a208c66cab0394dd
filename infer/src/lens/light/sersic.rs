//! Elliptical Sersic profile (Sersic 1963; GIGA-Lens eq. 4), lenstronomy's `SERSIC_ELLIPSE`:
//!
//!   I = amp * exp( -b_n ( (R / R_sersic)^(1/n) - 1 ) ),    b_n = 1.9992 n - 0.3271,
//!   R = sqrt(q x'^2 + y'^2 / q)   in the frame rotated by phi (major axis along x').
//!
//! `amp` is the intensity at elliptical radius R = R_sersic (on the major axis that is the point
//! x' = R_sersic / sqrt(q)). As for the EPL, R^2 is written with the complex ellipticity
//! eps = e1 + i e2 only (no q, no phi):
//!
//!   R^2 = [ (1 + |eps|^2)(x^2 + y^2) - 2 e1 (x^2 - y^2) - 4 e2 x y ] / (1 - |eps|^2),
//!
//! smooth at e1 = e2 = 0. As in lenstronomy, R is floored at 1e-5 arcsec (R^2 at 1e-10) so the
//! cusp at the centre gives a finite value and a zero, not NaN, gradient there; b_n is floored at
//! 1e-5 like lenstronomy's `b_n`.

use burn::tensor::Tensor;

use super::SurfaceBrightness;
use crate::lens::col;

/// Floor on R^2 (arcsec^2): lenstronomy's `_smoothing` = 1e-5 arcsec, squared.
pub const R2_FLOOR: f64 = 1e-10;

/// b_n of the Sersic profile (Ciotti & Bertin approximation used by lenstronomy and GIGA-Lens).
pub fn b_n(n: f64) -> f64 {
    (1.9992 * n - 0.3271).max(1e-5)
}

/// A batch of elliptical Sersic profiles; every field is a `[B]` tensor.
#[derive(Clone, Debug)]
pub struct Sersic {
    /// Intensity at R = R_sersic.
    pub amp: Tensor<1>,
    /// Half-light (effective) radius R_sersic, arcsec.
    pub r_sersic: Tensor<1>,
    /// Sersic index n.
    pub n_sersic: Tensor<1>,
    /// Ellipticity component e1.
    pub e1: Tensor<1>,
    /// Ellipticity component e2.
    pub e2: Tensor<1>,
    /// Centre x, arcsec.
    pub center_x: Tensor<1>,
    /// Centre y, arcsec.
    pub center_y: Tensor<1>,
}

impl Sersic {
    /// Squared elliptical radius R^2 (floored) at `x`, `y`, `[B, N]`.
    pub fn radius2(&self, x: &Tensor<2>, y: &Tensor<2>) -> Tensor<2> {
        let e1 = col(&self.e1);
        let e2 = col(&self.e2);
        let dx = x.clone() - col(&self.center_x);
        let dy = y.clone() - col(&self.center_y);
        let c2 = e1.clone().powi_scalar(2) + e2.clone().powi_scalar(2);
        let x2 = dx.clone().powi_scalar(2);
        let y2 = dy.clone().powi_scalar(2);
        let num = (x2.clone() + y2.clone()) * c2.clone().add_scalar(1.0)
            - (x2 - y2) * e1.mul_scalar(2.0)
            - dx * dy * e2.mul_scalar(4.0);
        (num / c2.neg().add_scalar(1.0)).clamp_min(R2_FLOOR)
    }
}

impl SurfaceBrightness for Sersic {
    fn brightness(&self, x: &Tensor<2>, y: &Tensor<2>) -> Tensor<2> {
        let n = col(&self.n_sersic);
        let bn = n
            .clone()
            .mul_scalar(1.9992)
            .sub_scalar(0.3271)
            .clamp_min(1e-5);
        // (R / R_s)^(1/n) = exp( (ln R^2 / 2 - ln R_s) / n )
        let log_ratio = self.radius2(x, y).log().mul_scalar(0.5) - col(&self.r_sersic).log();
        let pow = (log_ratio / n).exp();
        col(&self.amp) * (bn.neg() * pow.sub_scalar(1.0)).exp()
    }
}
