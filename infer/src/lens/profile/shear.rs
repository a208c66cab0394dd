//! External shear (Chianese et al. 2020 eq. 13, GIGA-Lens eq. 3), lenstronomy's `SHEAR` with its
//! expansion point at the origin: alpha = (gamma1 x + gamma2 y, gamma2 x - gamma1 y).

use super::MassProfile;
use crate::math::complex::C;
use crate::math::real::Real;

/// The shear of one sample: keys (gamma1, gamma2).
#[derive(Clone, Debug)]
pub struct Shear {
    pub gamma1: f32,
    pub gamma2: f32,
}

impl MassProfile for Shear {
    const KEYS: &'static [&'static str] = &["gamma1", "gamma2"];

    fn new(p: &[f64]) -> Self {
        Self {
            gamma1: p[0] as f32,
            gamma2: p[1] as f32,
        }
    }

    #[inline(always)]
    fn deflection<T: Real>(&self, x: T, y: T) -> C<T> {
        let (g1, g2) = (T::splat(self.gamma1), T::splat(self.gamma2));
        C::new(g1 * x + g2 * y, g2 * x - g1 * y)
    }

    #[inline(always)]
    fn deflection_with_grad<T: Real>(&self, x: T, y: T, d: &mut [C<T>]) -> C<T> {
        d[0] = C::new(x, -y);
        d[1] = C::new(y, x);
        self.deflection(x, y)
    }
}
