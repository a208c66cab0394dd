//! External shear (Chianese et al. 2020 eq. 13, GIGA-Lens eq. 3), lenstronomy's `SHEAR` with its
//! expansion point at the origin: alpha = (gamma1 x + gamma2 y, gamma2 x - gamma1 y).

use burn::tensor::Tensor;

use crate::lens::col;

/// A batch of external shears; fields are `[B]` tensors.
#[derive(Clone, Debug)]
pub struct Shear {
    /// Shear component gamma1.
    pub gamma1: Tensor<1>,
    /// Shear component gamma2.
    pub gamma2: Tensor<1>,
}

impl Shear {
    /// Deflection at `x`, `y` (`[1, N]` or `[B, N]`), each `[B, N]`.
    pub fn deflection(&self, x: &Tensor<2>, y: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let g1 = col(&self.gamma1);
        let g2 = col(&self.gamma2);
        let ax = x.clone() * g1.clone() + y.clone() * g2.clone();
        let ay = x.clone() * g2 - y.clone() * g1;
        (ax, ay)
    }
}
