//! Weight initialisation of Appendix D, drawn from a seeded host RNG.
//!
//! The paper says "All weights were initialized to 0.02. The biases in the final linear layers of
//! the encoder were initialized to 0." Read literally (every weight equal to 0.02) a network
//! could not break the symmetry between channels, so we read it, as the PyTorch DCGAN code the
//! architecture follows (Radford, Metz & Chintala 2015, cited in Sec. 2.1) does, as:
//! - convolution / transposed-convolution weights ~ N(0, 0.02),
//! - BatchNorm scale gamma ~ N(1, 0.02), BatchNorm shift beta = 0,
//! - weights of the two Linear heads (mu_e, log sigma_e) ~ N(0, 0.02), their biases = 0.
//!
//! Values come from a `StdRng` seeded by the caller, so a training run is reproducible and does
//! not depend on a backend's random-number generator (burn's own initialisers are lazy and draw
//! from the device RNG in first-use order).

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

/// Standard deviation of the DCGAN initialisation ("0.02", Appendix D).
pub const INIT_STD: f64 = 0.02;

/// Where the initial weights of a new network come from.
pub enum WeightSource<'a> {
    /// The Appendix D initialisation, drawn from this RNG.
    Random(&'a mut StdRng),
    /// Placeholders (each distribution's mean, no random draws) for a network whose weights are
    /// about to be loaded from a checkpoint.
    Placeholder,
}

/// A trainable parameter of `shape` with entries `mean + std * N(0, 1)` (or `mean` for a
/// placeholder).
pub fn normal_param<const D: usize>(
    src: &mut WeightSource<'_>,
    shape: [usize; D],
    mean: f64,
    std: f64,
    device: &Device,
) -> Param<Tensor<D>> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = match src {
        WeightSource::Random(rng) => (0..n)
            .map(|_| (mean + std * rng.sample::<f64, _>(StandardNormal)) as f32)
            .collect(),
        WeightSource::Placeholder => vec![mean as f32; n],
    };
    Param::from_data(TensorData::new(values, shape), device)
}

/// A trainable parameter of `shape` filled with `value`.
pub fn constant_param<const D: usize>(
    shape: [usize; D],
    value: f32,
    device: &Device,
) -> Param<Tensor<D>> {
    let n: usize = shape.iter().product();
    Param::from_data(TensorData::new(vec![value; n], shape), device)
}
