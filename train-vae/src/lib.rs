//! `train-vae`: galaxy data sets and the convolutional VAE source prior of Chianese et al. 2020.
//!
//! Domains, one folder each, dependencies pointing one way (`data` <- `train` -> `model`):
//! - [`data`]: COSMOS/GREAT3 catalog reader, paper cuts and 64x64 preprocessing, folders of
//!   cutouts, the synthetic galaxy generator, the HDF5 data-set store.
//! - `model`: encoder / decoder (Tables D1, D2), the VAE, the ELBO (eq. 4, C2-C3).
//! - `train`: training loop, early stopping, resume, latent prior fit (x9).
//! - `checkpoint`: the on-disk checkpoint (decoder + prior load without the encoder).
//! - `sweep`: a latent-dimension ablation as one command (trains and evaluates every setting).

pub mod bench;
pub mod bench_prepare;
pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod model;
pub mod sweep;
pub mod train;
