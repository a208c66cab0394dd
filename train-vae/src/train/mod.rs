//! Training the VAE (Sec. 2.2, Appendix C) and fitting its latent prior (Sec. 2.1).
//!
//! - [`elbo`]: the negative ELBO of eq. (4) with M reparametrised samples (eqs. C2-C3),
//! - [`adam`]: Adam in one fused pass per parameter,
//! - [`batches`]: shuffled minibatches through burn's data loader,
//! - [`evaluate`]: ELBO / chi^2 over a whole split, encoded means,
//! - [`early_stopping`]: patience on the validation ELBO,
//! - [`prior`]: the multivariate normal fitted to the encoded means, covariance x 9,
//! - [`config`], [`state`]: the run configuration and the resume state,
//! - [`trainer`]: the loop, checkpoints and the run record; [`cli`]: `train-vae train`.

pub mod adam;
pub mod batches;
pub mod cli;
pub mod config;
pub mod early_stopping;
pub mod elbo;
pub mod evaluate;
pub mod latent_usage;
pub mod state;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{TrainOutcome, train};
