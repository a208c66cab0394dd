//! The VAE of Fig. 1: encoder (Table D1) + reparametrised sampling (eq. C2) + decoder (Table D2).

use super::config::VaeConfig;
use super::decoder::Decoder;
use super::encoder::{Encoder, Encoding};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

/// Encoder and decoder trained together on the ELBO (eq. 4).
#[derive(Module, Debug)]
pub struct Vae {
    pub encoder: Encoder,
    pub decoder: Decoder,
}

/// One forward pass of the VAE on a batch.
#[derive(Debug, Clone)]
pub struct VaeOutput {
    /// mu_e(x), log sigma_e(x), each `[B, D]`.
    pub encoding: Encoding,
    /// mu_d(z^(j)) for the M reparametrised samples, `[M*B, 1, 64, 64]`, sample-major
    /// (rows `j*B .. (j+1)*B` hold sample j of every image).
    pub reconstruction: Tensor<4>,
    /// Number of samples M per image.
    pub samples: usize,
}

impl Vae {
    /// A freshly initialised VAE; all weights drawn from `StdRng::seed_from_u64(seed)`.
    pub fn new(config: &VaeConfig, seed: u64, device: &Device) -> Vae {
        let mut rng = StdRng::seed_from_u64(seed);
        let encoder = Encoder::new(config, &mut rng, device);
        let decoder = Decoder::new(config, &mut rng, device);
        Vae { encoder, decoder }
    }

    /// A VAE of the right shape whose weights are placeholders, to load a checkpoint into.
    pub fn placeholder(config: &VaeConfig, device: &Device) -> Vae {
        Vae {
            encoder: Encoder::placeholder(config, device),
            decoder: Decoder::placeholder(config, device),
        }
    }

    /// Encode `x` `[B,1,64,64]`, draw z^(j) = mu_e + eps^(j) sigma_e (eq. C2) with the given
    /// standard-normal `eps` `[M*B, D]` (sample-major), and decode every z^(j).
    pub fn forward(&self, x: Tensor<4>, eps: Tensor<2>) -> VaeOutput {
        let [b, _, _, _] = x.dims();
        let [mb, _] = eps.dims();
        assert!(
            b > 0 && mb % b == 0,
            "eps has {mb} rows, not a multiple of the batch size {b}"
        );
        let samples = mb / b;
        let encoding = self.encoder.forward(x);
        let mu = encoding.mu.clone().repeat_dim(0, samples);
        let sigma = encoding.sigma().repeat_dim(0, samples);
        let z = mu + eps * sigma;
        let reconstruction = self.decoder.forward(z);
        VaeOutput {
            encoding,
            reconstruction,
            samples,
        }
    }
}

/// Standard-normal noise eps `[rows, dim]` for eq. (C2), drawn on the host from `rng` so that a
/// run is reproducible on every backend and resumable from a saved seed.
pub fn standard_normal(rng: &mut StdRng, rows: usize, dim: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..rows * dim)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(values, [rows, dim]), device)
}
