//! The source prior's network and files, shared by the two programs: the VAE of Chianese et al. 2020
//! (encoder and decoder of Tables D1/D2, `model`, with its GEMM convolution kernels in `model::conv`), the
//! latent prior fitted to the encoded means (Sec. 2.1, `prior`), the checkpoint folder (`checkpoint`) and the
//! HDF5 data set of 64x64 stamps (`dataset`). `train-vae` writes them; `infer` reads them.

pub mod checkpoint;
pub mod dataset;
pub mod model;
pub mod prior;
