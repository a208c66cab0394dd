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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_equal_the_scalar_instantiation() {
        let lens = EplLens::new(1.1, 2.2, 0.15, -0.1, 0.03, -0.02);
        let coef = EplCoefficients::new(1.2, 12);
        let light = SersicProfile::new(3.0, 0.8, 3.5, 0.05, 0.02, 0.01, 0.0);
        let source = SersicProfile::new(5.0, 0.2, 1.2, -0.1, 0.07, 0.05, 0.1);
        let m = SampleModel {
            lens: &lens,
            coef: &coef,
            shear: [0.02, -0.01],
            light: &light,
            source: &source,
        };
        let xs: [f32; L] = std::array::from_fn(|l| -1.3 + 0.033 * l as f32);
        let ys: [f32; L] = std::array::from_fn(|l| 0.9 - 0.021 * l as f32);
        let mut out = [0.0; L];
        let mut jac = [[0.0; L]; NUM_PARAMS];
        block_with_grad(&m, &xs, &ys, &mut out, &mut jac);
        let mut val = [0.0; L];
        block_value(&m, &xs, &ys, &mut val);
        for l in 0..L {
            let (x, y) = (xs[l], ys[l]);
            let e = epl_with_grad(&lens, &coef, x, y);
            let bx = x - e.alpha.re - (0.02 * x - 0.01 * y);
            let by = y - e.alpha.im - (-0.01 * x - 0.02 * y);
            let (is, ds) = sersic_with_grad(&source, bx, by);
            let (il, dl) = sersic_with_grad(&light, x, y);
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * b.abs().max(1e-2);
            assert!(
                close(out[l], is + il) && close(val[l], is + il),
                "lane {l}: {} {} {}",
                out[l],
                val[l],
                is + il
            );
            for q in 0..7 {
                assert!(
                    close(jac[8 + q][l], dl[q]) && close(jac[15 + q][l], ds[q]),
                    "lane {l} q {q}"
                );
            }
            for q in 0..6 {
                let want = ds[5] * e.d[q].re + ds[6] * e.d[q].im;
                assert!(
                    close(jac[q][l], want),
                    "lane {l} lens q {q}: {} vs {want}",
                    jac[q][l]
                );
            }
            // the value-only path agrees with the gradient path
            let _ = sersic_value(&light, x, y);
            let a = epl_value(&lens, &coef, x, y);
            assert!(close(a.re, e.alpha.re) && close(a.im, e.alpha.im));
        }
    }
}
