//! The encoder e_phi(z|x) = N(z | mu_e(x), sigma_e(x)) of eq. (2), layer by layer as Table D1.
//!
//! ```text
//! x [B,1,64,64]
//!  Conv2d(1,   w1, 4,2,1)              LeakyReLU(0.2)   -> [B,w1,32,32]
//!  Conv2d(w1,  w2, 4,2,1) BatchNorm2d  LeakyReLU(0.2)   -> [B,w2,16,16]
//!  Conv2d(w2,  w3, 4,2,1) BatchNorm2d  LeakyReLU(0.2)   -> [B,w3, 8, 8]
//!  Conv2d(w3,  w4, 4,2,1) BatchNorm2d  LeakyReLU(0.2)   -> [B,w4, 4, 4]
//!  Conv2d(w4,  H,  4,1,0)              LeakyReLU(0.2)   -> [B,H, 1, 1] -> flatten [B,H]
//!  Linear(H, D) -> mu_e(x)        Linear(H, D) -> log sigma_e(x), sigma_e = exp(.)
//! ```
//! Paper widths (w1..w4, H) = (64, 128, 256, 512, 4096), D = 64. All convolutions are unbiased.
//! The second head outputs log sigma_e (the "Exp" row of Table D1 is applied by the caller),
//! which the analytic KL term needs anyway (eq. 4) and which keeps sigma_e positive.

use super::config::VaeConfig;
use super::conv::conv2d_layer as block;
use super::init::{INIT_STD, WeightSource, constant_param, normal_param};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;

/// Negative slope of every LeakyReLU of Table D1.
pub const LEAKY_SLOPE: f64 = 0.2;

/// The convolutional encoder of Table D1.
#[derive(Module, Debug)]
pub struct Encoder {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub conv4: Conv2d,
    pub bn4: BatchNorm,
    pub conv5: Conv2d,
    /// Head giving mu_e(x).
    pub mu: Linear,
    /// Head giving log sigma_e(x).
    pub log_sigma: Linear,
}

/// Parameters of the encoding distribution for a batch: both `[B, D]`.
#[derive(Debug, Clone)]
pub struct Encoding {
    pub mu: Tensor<2>,
    pub log_sigma: Tensor<2>,
}

impl Encoding {
    /// sigma_e(x) = exp(log sigma_e(x)).
    pub fn sigma(&self) -> Tensor<2> {
        self.log_sigma.clone().exp()
    }
}

/// An unbiased `k x k` convolution with the given stride and symmetric padding, weights N(0, 0.02).
pub(crate) fn conv(
    rng: &mut WeightSource<'_>,
    c_in: usize,
    c_out: usize,
    stride: usize,
    pad: usize,
    device: &Device,
) -> Conv2d {
    let mut c = Conv2dConfig::new([c_in, c_out], [4, 4])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(Initializer::Zeros)
        .init(device);
    c.weight = normal_param(rng, [c_out, c_in, 4, 4], 0.0, INIT_STD, device);
    c
}

/// BatchNorm2d with PyTorch's defaults (eps 1e-5, momentum 0.1), gamma ~ N(1, 0.02), beta = 0.
pub(crate) fn batch_norm(
    rng: &mut WeightSource<'_>,
    channels: usize,
    device: &Device,
) -> BatchNorm {
    let mut bn = BatchNormConfig::new(channels).init(device);
    bn.gamma = normal_param(rng, [channels], 1.0, INIT_STD, device);
    bn.beta = constant_param([channels], 0.0, device);
    bn
}

fn head(rng: &mut WeightSource<'_>, d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut l = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Zeros)
        .init(device);
    // burn stores Linear weights as [d_input, d_output] (y = x W + b).
    l.weight = normal_param(rng, [d_in, d_out], 0.0, INIT_STD, device);
    l.bias = Some(constant_param([d_out], 0.0, device));
    l
}

impl Encoder {
    /// A freshly initialised encoder (Appendix D initialisation, see [`super::init`]).
    pub fn new(config: &VaeConfig, rng: &mut StdRng, device: &Device) -> Encoder {
        Self::build(config, &mut WeightSource::Random(rng), device)
    }

    /// An encoder of the right shape whose weights are placeholders, to load a checkpoint into.
    pub fn placeholder(config: &VaeConfig, device: &Device) -> Encoder {
        Self::build(config, &mut WeightSource::Placeholder, device)
    }

    fn build(config: &VaeConfig, rng: &mut WeightSource<'_>, device: &Device) -> Encoder {
        let [w1, w2, w3, w4] = config.widths;
        Encoder {
            conv1: conv(rng, 1, w1, 2, 1, device),
            conv2: conv(rng, w1, w2, 2, 1, device),
            bn2: batch_norm(rng, w2, device),
            conv3: conv(rng, w2, w3, 2, 1, device),
            bn3: batch_norm(rng, w3, device),
            conv4: conv(rng, w3, w4, 2, 1, device),
            bn4: batch_norm(rng, w4, device),
            conv5: conv(rng, w4, config.head_width, 1, 0, device),
            mu: head(rng, config.head_width, config.latent_dim, device),
            log_sigma: head(rng, config.head_width, config.latent_dim, device),
        }
    }

    /// mu_e(x) and log sigma_e(x) for images `x` of shape `[B, 1, 64, 64]`.
    pub fn forward(&self, x: Tensor<4>) -> Encoding {
        let h = leaky_relu(block(&self.conv1, x), LEAKY_SLOPE);
        let h = leaky_relu(self.bn2.forward(block(&self.conv2, h)), LEAKY_SLOPE);
        let h = leaky_relu(self.bn3.forward(block(&self.conv3, h)), LEAKY_SLOPE);
        let h = leaky_relu(self.bn4.forward(block(&self.conv4, h)), LEAKY_SLOPE);
        let h = leaky_relu(block(&self.conv5, h), LEAKY_SLOPE);
        let [b, c, _, _] = h.dims();
        let h: Tensor<2> = h.reshape([b, c]);
        Encoding {
            mu: self.mu.forward(h.clone()),
            log_sigma: self.log_sigma.forward(h),
        }
    }
}
