//! The fused kernel's ray loop on blocks of [`L`] rays ([`Lanes`]): the generic per-ray formulas
//! of [`super::ray`] instantiated on lanes, which the compiler vectorises.

use crate::lens::profile::{Deflector, Light, MAX_LIGHT_PARAMS};
use crate::math::complex::C;
use crate::math::real::{L, Lanes};

/// Constants of one sample: the deflector, the lens light and the source components.
pub struct SampleModel<'a> {
    pub mass: &'a Deflector,
    pub lights: &'a [Light],
    pub sources: &'a [Light],
}

/// Brightness of a block of rays (value only).
#[inline(always)]
pub fn block_value(m: &SampleModel, xs: &[f32; L], ys: &[f32; L], out: &mut [f32; L]) {
    let (x, y) = (Lanes(*xs), Lanes(*ys));
    let (bx, by) = m.mass.ray_shoot(x, y);
    let mut acc = Lanes([0.0; L]);
    for s in m.sources {
        acc = acc + s.brightness(bx, by);
    }
    for l in m.lights {
        acc = acc + l.brightness(x, y);
    }
    *out = acc.0;
}

/// Brightness of a block of rays and its derivatives with respect to every parameter, in the
/// kernel's order (mass, lens light, source). `dm` and `d` are work space for the mass derivatives
/// (at least the deflector's parameter count) and one light component's.
#[inline(always)]
pub fn block_with_grad(
    m: &SampleModel,
    xs: &[f32; L],
    ys: &[f32; L],
    out: &mut [f32; L],
    jac: &mut [[f32; L]],
    dm: &mut [C<Lanes>],
    d: &mut [Lanes; MAX_LIGHT_PARAMS],
) {
    let (x, y) = (Lanes(*xs), Lanes(*ys));
    let pm = m.mass.num_params();
    let (bx, by) = m.mass.ray_shoot_with_grad(x, y, dm);
    let zero = Lanes([0.0; L]);
    let (mut acc, mut gx, mut gy) = (zero, zero, zero);
    let n_light: usize = m.lights.iter().map(Light::num_params).sum();
    let mut at = pm + n_light;
    for s in m.sources {
        let n = s.num_params();
        let (is, sx, sy) = s.brightness_with_grad(bx, by, &mut d[..n]);
        acc = acc + is;
        // dI_s/dalpha = -dI_s/dbeta
        gx = gx + sx;
        gy = gy + sy;
        for (j, dq) in jac[at..at + n].iter_mut().zip(d.iter()) {
            *j = dq.0;
        }
        at += n;
    }
    let mut at = pm;
    for l in m.lights {
        let n = l.num_params();
        let (il, _, _) = l.brightness_with_grad(x, y, &mut d[..n]);
        acc = acc + il;
        for (j, dq) in jac[at..at + n].iter_mut().zip(d.iter()) {
            *j = dq.0;
        }
        at += n;
    }
    *out = acc.0;
    for q in 0..pm {
        jac[q] = (-(gx * dm[q].re + gy * dm[q].im)).0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lens::profile::epl::{epl_value, epl_with_grad};
    use crate::lens::profile::sersic::{SersicProfile, sersic_value, sersic_with_grad};
    use crate::lens::profile::{Mass, MassKind};

    #[test]
    fn lanes_equal_the_scalar_instantiation() {
        let mass = Deflector::new(
            &[MassKind::Epl, MassKind::Shear],
            &[1.1, 2.2, 0.15, -0.1, 0.03, -0.02, 0.02, -0.01],
        );
        let Mass::Epl(epl) = Mass::new(MassKind::Epl, &[1.1, 2.2, 0.15, -0.1, 0.03, -0.02]) else {
            unreachable!()
        };
        let (lens, coef) = (epl.lens, epl.coef);
        let light = SersicProfile::new(3.0, 0.8, 3.5, 0.05, 0.02, 0.01, 0.0);
        let source = SersicProfile::new(5.0, 0.2, 1.2, -0.1, 0.07, 0.05, 0.1);
        let (lights, sources) = ([Light::Sersic(light)], [Light::Sersic(source)]);
        let m = SampleModel {
            mass: &mass,
            lights: &lights,
            sources: &sources,
        };
        let xs: [f32; L] = std::array::from_fn(|l| -1.3 + 0.033 * l as f32);
        let ys: [f32; L] = std::array::from_fn(|l| 0.9 - 0.021 * l as f32);
        let mut out = [0.0; L];
        let mut jac = [[0.0; L]; 22];
        let mut dm = [C::new(Lanes([0.0; L]), Lanes([0.0; L])); 8];
        let mut d = [Lanes([0.0; L]); MAX_LIGHT_PARAMS];
        block_with_grad(&m, &xs, &ys, &mut out, &mut jac, &mut dm, &mut d);
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
