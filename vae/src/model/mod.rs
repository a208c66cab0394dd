//! The convolutional VAE of Chianese et al. 2020 (Sec. 2.1, Appendix D, Tables D1/D2).
//!
//! - [`config`]: architecture hyper-parameters (latent size, widths, sigma_d),
//! - [`init`]: the Appendix D weight initialisation from a seeded RNG,
//! - [`encoder`] / [`decoder`]: Tables D1 / D2,
//! - [`vae`]: both together with the reparametrisation of eq. (C2).

pub mod config;
pub mod conv;
pub mod decoder;
pub mod encoder;
pub mod init;
pub mod vae;

pub use config::VaeConfig;
pub use decoder::Decoder;
pub use encoder::{Encoder, Encoding};
pub use vae::{Vae, VaeOutput};
