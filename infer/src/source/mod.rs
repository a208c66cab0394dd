//! Source-plane surface-brightness models, evaluated at ray-traced positions beta (Chianese
//! eq. 8). Every source implements [`SurfaceBrightness`]:
//! - [`sersic`]: an elliptical Sersic profile (GIGA-Lens eq. 4);
//! - [`pixelated`]: a fixed image (e.g. a real COSMOS stamp) placed on the sky, for mocks;
//! - the VAE source of Chianese eq. 17 (decoder image placed at (x_src, y_src) with scale s and
//!   intensity i) lives in its own adapter and reuses [`bilinear::sample`].

pub mod bilinear;
pub mod folded_decoder;
pub mod pixelated;
pub mod placed;
pub mod sersic;
pub mod vae;

pub use crate::lens::light::SurfaceBrightness;
