//! Surface-brightness profiles. Lens light is evaluated on the image plane (theta), sources on
//! the source plane (beta = theta - alpha(theta)); both implement [`SurfaceBrightness`].

pub mod host;
pub mod sersic;

use burn::tensor::Tensor;

pub use host::HostLight;
pub use sersic::Sersic;

/// A batched surface-brightness distribution I(x, y) (counts/s per unit area on the sky).
///
/// `x`, `y` are `[1, N]` (one grid for every batch member) or `[B, N]` (e.g. ray-traced source
/// positions); the result is `[B, N]`. Implemented by the Sersic profile, the pixelated source
/// and the VAE source adapter (Chianese eq. 17).
pub trait SurfaceBrightness {
    /// Brightness at the given positions.
    fn brightness(&self, x: &Tensor<2>, y: &Tensor<2>) -> Tensor<2>;
}
