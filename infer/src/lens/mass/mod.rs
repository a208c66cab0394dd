//! Lens mass models on burn tensors: the main halo (EPL) and the external shear (the autodiff
//! twins of `lens::profile`), any other registered profile through [`host`], summed into one deflection
//! field (Chianese et al. 2020 eq. 10, alpha = alpha_mh + alpha_ext), and the lens equation
//! beta = theta - alpha(theta) (eq. 6).

pub mod epl;
pub mod host;
pub mod shear;
pub mod sie;

use burn::tensor::Tensor;

pub use epl::Epl;
pub use host::HostProfile;
pub use shear::Shear;

/// One deflecting component.
// A handful exist per model, built once: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum MassComponent {
    /// Elliptical power law (SIE / SIS as special cases).
    Epl(Epl),
    /// External shear.
    Shear(Shear),
    /// Any registered profile, by its own formulas on the host ([`host`]).
    Host(HostProfile),
}

impl MassComponent {
    /// Deflection of this component at `x`, `y` (`[1, N]` or `[B, N]`) as `[B, N]` tensors.
    pub fn deflection(&self, x: &Tensor<2>, y: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        match self {
            MassComponent::Epl(m) => m.deflection(x, y),
            MassComponent::Shear(m) => m.deflection(x, y),
            MassComponent::Host(m) => m.deflection(x, y),
        }
    }
}

/// A composite lens: the deflection is the sum of its components' deflections.
#[derive(Clone, Debug, Default)]
pub struct MassModel {
    /// Components, summed.
    pub components: Vec<MassComponent>,
}

impl MassModel {
    /// A model from its components.
    pub fn new(components: Vec<MassComponent>) -> Self {
        Self { components }
    }

    /// Total deflection (alpha_x, alpha_y), `[B, N]` each. An empty model deflects nothing
    /// (returns zeros shaped like `x`).
    pub fn deflection(&self, x: &Tensor<2>, y: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let mut total: Option<(Tensor<2>, Tensor<2>)> = None;
        for c in &self.components {
            let (ax, ay) = c.deflection(x, y);
            total = Some(match total {
                None => (ax, ay),
                Some((tx, ty)) => (tx + ax, ty + ay),
            });
        }
        total.unwrap_or_else(|| (x.zeros_like(), y.zeros_like()))
    }

    /// Source-plane positions beta = theta - alpha(theta) (Chianese eq. 6).
    pub fn ray_shoot(&self, x: &Tensor<2>, y: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let (ax, ay) = self.deflection(x, y);
        (x.clone() - ax, y.clone() - ay)
    }
}
