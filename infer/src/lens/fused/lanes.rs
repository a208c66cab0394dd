//! The fused kernel's ray loop on blocks of [`L`] rays ([`Lanes`]): the generic per-ray formulas
//! of [`super::ray`] instantiated on lanes, which the compiler vectorises.

use super::NUM_PARAMS;
use super::ray::{
    EplCoefficients, EplLens, SersicProfile, epl_value, epl_with_grad, sersic_value,
    sersic_with_grad,
};
use super::real::{L, Lanes};

/// Constants of one sample.
pub struct SampleModel<'a> {
    pub lens: &'a EplLens,
    pub coef: &'a EplCoefficients,
    pub shear: [f32; 2],
    pub light: &'a SersicProfile,
    pub source: &'a SersicProfile,
}

/// Brightness of a block of rays (value only).
#[inline(always)]
pub fn block_value(m: &SampleModel, xs: &[f32; L], ys: &[f32; L], out: &mut [f32; L]) {
    let (x, y) = (Lanes(*xs), Lanes(*ys));
    let (g1, g2) = (Lanes([m.shear[0]; L]), Lanes([m.shear[1]; L]));
    let al = epl_value(m.lens, m.coef, x, y);
    let bx = x - al.re - (g1 * x + g2 * y);
    let by = y - al.im - (g2 * x - g1 * y);
    *out = (sersic_value(m.source, bx, by) + sersic_value(m.light, x, y)).0;
}

/// Brightness of a block of rays and its derivatives with respect to the 22 parameters.
#[inline(always)]
pub fn block_with_grad(
    m: &SampleModel,
    xs: &[f32; L],
    ys: &[f32; L],
    out: &mut [f32; L],
    jac: &mut [[f32; L]; NUM_PARAMS],
) {
    let (x, y) = (Lanes(*xs), Lanes(*ys));
    let (g1, g2) = (Lanes([m.shear[0]; L]), Lanes([m.shear[1]; L]));
    let e = epl_with_grad(m.lens, m.coef, x, y);
    let bx = x - e.alpha.re - (g1 * x + g2 * y);
    let by = y - e.alpha.im - (g2 * x - g1 * y);
    let (is, ds) = sersic_with_grad(m.source, bx, by);
    let (il, dl) = sersic_with_grad(m.light, x, y);
    *out = (is + il).0;
    // dI_s/dalpha = -dI_s/dbeta = +dI_s/dcenter
    let (gx, gy) = (ds[5], ds[6]);
    for q in 0..6 {
        jac[q] = (gx * e.d[q].re + gy * e.d[q].im).0;
    }
    jac[6] = (gx * x - gy * y).0;
    jac[7] = (gx * y + gy * x).0;
    for q in 0..7 {
        jac[8 + q] = dl[q].0;
        jac[15 + q] = ds[q].0;
    }
}
