//! `train-vae`: galaxy data sets and the convolutional VAE source prior of Chianese et al. 2020.
//!
//! Domains, one folder each, dependencies pointing one way (`data` <- `train` -> `model`):
//! - [`data`]: COSMOS/GREAT3 catalog reader, paper cuts and 64x64 preprocessing, folders of
//!   cutouts, the synthetic galaxy generator (written to the data set of `arclight_vae::dataset`).
//! - `train`: the ELBO (eq. 4, C2-C3), training loop, early stopping, resume, the latent prior fit (x9).
//!
//! The network, the checkpoint folder and the data-set format are `arclight_vae`'s, shared with `infer`.
//! - `sweep`: a latent-dimension ablation as one command (trains and evaluates every setting).

pub mod bench;
pub mod data;
pub mod eval;
pub mod sweep;
pub mod train;
