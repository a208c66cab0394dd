//! The lens model assembled from a model file: the TOML spec, the parameter layout (priors,
//! bijectors, slots), the forward model (theta -> image), the observation and the likelihood.

pub mod forward;
pub mod fused;
pub mod fused_vae;
pub mod kernel_params;
pub mod layout;
pub mod likelihood;
pub mod observation;
pub mod spec;
