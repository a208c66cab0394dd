//! The decoder mean mu_d(z) of d_theta(x|z) = N(x | mu_d(z), sigma_d), eq. (1), as Table D2.
//!
//! ```text
//! z [B,D] -> reshape [B,D,1,1]
//!  ConvTranspose2d(D,  w4, 4,1,0) BatchNorm2d ReLU   -> [B,w4, 4, 4]
//!  ConvTranspose2d(w4, w3, 4,2,1) BatchNorm2d ReLU   -> [B,w3, 8, 8]
//!  ConvTranspose2d(w3, w2, 4,2,1) BatchNorm2d ReLU   -> [B,w2,16,16]
//!  ConvTranspose2d(w2, w1, 4,2,1) BatchNorm2d ReLU   -> [B,w1,32,32]
//!  ConvTranspose2d(w1, 1,  4,2,1)             Tanh   -> [B,1, 64,64]
//! ```
//! Paper widths (w4, w3, w2, w1) = (512, 256, 128, 64), D = 64; all transposed convolutions
//! unbiased. The output lies in [-1, 1] (tanh), the data in [0, 1] (max-normalised).
//!
//! This is the only part of the VAE the lens model (`infer`) needs: it is loaded on its own by
//! [`crate::checkpoint::load_decoder`]. For inference, call [`Module::valid`] first so the
//! BatchNorm layers use their running statistics (and not the statistics of a batch of z).

use super::config::VaeConfig;
use super::conv::conv_transpose2d_layer as block;
use super::encoder::batch_norm;
use super::init::{INIT_STD, WeightSource, normal_param};
use burn::module::Module;
use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, Initializer};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;

/// The transposed-convolution decoder of Table D2.
#[derive(Module, Debug)]
pub struct Decoder {
    pub deconv1: ConvTranspose2d,
    pub bn1: BatchNorm,
    pub deconv2: ConvTranspose2d,
    pub bn2: BatchNorm,
    pub deconv3: ConvTranspose2d,
    pub bn3: BatchNorm,
    pub deconv4: ConvTranspose2d,
    pub bn4: BatchNorm,
    pub deconv5: ConvTranspose2d,
    /// Latent dimension D (the input width).
    pub latent_dim: usize,
}

fn deconv(
    rng: &mut WeightSource<'_>,
    c_in: usize,
    c_out: usize,
    stride: usize,
    pad: usize,
    device: &Device,
) -> ConvTranspose2d {
    let mut c = ConvTranspose2dConfig::new([c_in, c_out], [4, 4])
        .with_stride([stride, stride])
        .with_padding([pad, pad])
        .with_bias(false)
        .with_initializer(Initializer::Zeros)
        .init(device);
    // burn (like PyTorch) stores transposed-convolution weights as [c_in, c_out, k, k].
    c.weight = normal_param(rng, [c_in, c_out, 4, 4], 0.0, INIT_STD, device);
    c
}

impl Decoder {
    /// A freshly initialised decoder (Appendix D initialisation, see [`super::init`]).
    pub fn new(config: &VaeConfig, rng: &mut StdRng, device: &Device) -> Decoder {
        Self::build(config, &mut WeightSource::Random(rng), device)
    }

    /// A decoder of the right shape whose weights are placeholders, to load a checkpoint into.
    pub fn placeholder(config: &VaeConfig, device: &Device) -> Decoder {
        Self::build(config, &mut WeightSource::Placeholder, device)
    }

    fn build(config: &VaeConfig, rng: &mut WeightSource<'_>, device: &Device) -> Decoder {
        let [w1, w2, w3, w4] = config.widths;
        Decoder {
            deconv1: deconv(rng, config.latent_dim, w4, 1, 0, device),
            bn1: batch_norm(rng, w4, device),
            deconv2: deconv(rng, w4, w3, 2, 1, device),
            bn2: batch_norm(rng, w3, device),
            deconv3: deconv(rng, w3, w2, 2, 1, device),
            bn3: batch_norm(rng, w2, device),
            deconv4: deconv(rng, w2, w1, 2, 1, device),
            bn4: batch_norm(rng, w1, device),
            deconv5: deconv(rng, w1, 1, 2, 1, device),
            latent_dim: config.latent_dim,
        }
    }

    /// mu_d(z): latent vectors `z` of shape `[B, D]` to images `[B, 1, 64, 64]` in [-1, 1].
    ///
    /// Panics if the second axis of `z` is not the latent dimension.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [_, d] = z.dims();
        assert_eq!(
            d, self.latent_dim,
            "decoder input has {d} latent dimensions, the decoder expects {}",
            self.latent_dim
        );
        let [b, _] = z.dims();
        let h: Tensor<4> = z.reshape([b, d, 1, 1]);
        let h = relu(self.bn1.forward(block(&self.deconv1, h)));
        let h = relu(self.bn2.forward(block(&self.deconv2, h)));
        let h = relu(self.bn3.forward(block(&self.deconv3, h)));
        let h = relu(self.bn4.forward(block(&self.deconv4, h)));
        block(&self.deconv5, h).tanh()
    }
}
