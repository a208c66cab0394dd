//! The strong-lensing forward model: image grid, lens mass (EPL + external shear), light
//! profiles, PSF and image formation, all batched over B parameter vectors on burn tensors.
//!
//! Conventions (lenstronomy's, so results can be compared; details in `lens/README.md`):
//! - angles in arcsec, the image grid centred on 0, x to the right, y up; image arrays are
//!   row-major with row 0 the **top** row (largest y);
//! - ellipticities (e1, e2) = (1-q)/(1+q) (cos 2phi, sin 2phi);
//! - EPL: kappa = (3-gamma)/2 (theta_e / sqrt(q x^2 + y^2/q))^(gamma-1), i.e. b = theta_e sqrt(q);
//! - shear: alpha = (gamma1 x + gamma2 y, gamma2 x - gamma1 y);
//! - Sersic: amp is the intensity at elliptical radius R_sersic, R = sqrt(q x^2 + y^2/q),
//!   b_n = 1.9992 n - 0.3271.
//!
//! Parameters travel as `[B]` tensors per component; ray positions as `[1, N]` or `[B, N]`;
//! images as `[B, H, W]`. Everything works on an autodiff device (gradients w.r.t. every
//! parameter) and on a flex device configured for f64 (reference tests).

pub mod ellipticity;
pub mod fused;
pub mod grid;
pub mod host;
pub mod light;
pub mod mass;
pub mod profile;
pub mod psf;
pub mod render;

use burn::tensor::Tensor;

/// A `[B]` parameter as a `[B, 1]` column, to broadcast against `[1 or B, N]` positions.
pub fn col(t: &Tensor<1>) -> Tensor<2> {
    t.clone().unsqueeze_dim(1)
}
