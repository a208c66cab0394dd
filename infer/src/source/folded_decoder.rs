//! The checkpoint's decoder mu_d(z) (Chianese et al. 2020, Table D2) evaluated on the host for
//! inference, with its vector-Jacobian product written by hand.
//!
//! Lens inference needs two things from the decoder, for many latent vectors z at small batch:
//! the images d(z) and d/dz sum(G * d(z)) for a pixel weight G (the lens kernel's
//! d ln L / d pixel). Through burn autodiff this costs ~18-22 ms at batch 1 on burn-flex (graph
//! construction, separate BatchNorm / ReLU passes, weight-shaped work the constant weights do not
//! need). Here:
//! - BatchNorm in inference mode is an affine map per channel, folded once into the transposed
//!   convolution before it: W'[ci, co] = W[ci, co] gamma_co / sqrt(var_co + eps), bias
//!   beta_co - mean_co gamma_co / sqrt(var_co + eps);
//! - each transposed convolution is the shared channel-major kernel of
//!   `arclight_vae::model::conv::transposed` (one GEMM, then the tap scatter with bias and activation
//!   in the same pass), whole batch at once;
//! - the backward pass needs only the input gradient (the weights are constants): the adjoint gather
//!   of the output gradient, then one GEMM with W', times the activation's derivative.
//!
//! The result agrees with the burn decoder to float rounding (tests below).

use anyhow::{Result, ensure};
use arclight_vae::model::conv::kernels::{MatMut, MatRef, matmul};
use arclight_vae::model::conv::transposed::{TransposedGeom, gather, scatter};
use arclight_vae::model::decoder::Decoder;
use burn::tensor::Tensor;

/// Activation after a layer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    Relu,
    Tanh,
}

/// One transposed convolution with its folded affine BatchNorm and activation.
#[derive(Clone, Debug)]
struct Layer {
    geom: TransposedGeom,
    /// W' as a row-major `[c_in, c_out k k]` matrix (burn's `[c_in, c_out, k, k]` layout).
    w: Vec<f32>,
    /// Per-output-channel shift.
    bias: Vec<f32>,
    act: Act,
}

impl Act {
    /// Applies the activation in place; NaN stays NaN (f32::max would turn it into 0 and hide a
    /// non-finite input).
    fn apply(self, v: &mut [f32]) {
        match self {
            Act::Relu => v.iter_mut().for_each(|v| {
                if *v < 0.0 {
                    *v = 0.0
                }
            }),
            Act::Tanh => v.iter_mut().for_each(|v| *v = v.tanh()),
        }
    }
}

/// The decoder as folded host layers.
#[derive(Clone, Debug)]
pub struct FoldedDecoder {
    layers: Vec<Layer>,
    latent_dim: usize,
}

/// Saved activations of one forward pass (post-activation outputs of every layer,
/// channel-major), for [`FoldedDecoder::vjp`].
pub struct Tape {
    batch: usize,
    /// `acts[0]` = z as `[D, B]`; `acts[l + 1]` = output of layer l, `[C, B, H, W]`.
    acts: Vec<Vec<f32>>,
}

impl Tape {
    /// The decoded images, row-major `[B, H, W]` (the last layer has one channel).
    pub fn images(&self) -> &[f32] {
        self.acts.last().expect("a tape holds at least z")
    }

    /// Batch size B.
    pub fn batch(&self) -> usize {
        self.batch
    }
}

fn host(t: Tensor<1>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

impl FoldedDecoder {
    /// Fold a burn decoder (its weights and BatchNorm running statistics) into host layers.
    /// `image_size` is the output side (64 for the paper's architecture).
    pub fn from_decoder(dec: &Decoder, image_size: usize) -> Result<Self> {
        let deconvs = [
            &dec.deconv1,
            &dec.deconv2,
            &dec.deconv3,
            &dec.deconv4,
            &dec.deconv5,
        ];
        let norms = [
            Some(&dec.bn1),
            Some(&dec.bn2),
            Some(&dec.bn3),
            Some(&dec.bn4),
            None,
        ];
        let mut layers = Vec::new();
        let mut side = 1;
        for (conv, bn) in deconvs.into_iter().zip(norms) {
            let [c_in, c_out, kh, kw] = conv.weight.val().dims();
            ensure!(
                kh == kw
                    && conv.stride[0] == conv.stride[1]
                    && conv.padding[0] == conv.padding[1]
                    && conv.dilation == [1, 1]
                    && conv.groups == 1
                    && conv.padding_out == [0, 0],
                "decoder layer {c_in}->{c_out}: only square, undilated, ungrouped transposed \
                 convolutions can be folded"
            );
            let (k, stride, pad) = (kh, conv.stride[0], conv.padding[0]);
            let geom = TransposedGeom::square(c_in, c_out, k, stride, pad, side)
                .ok_or_else(|| anyhow::anyhow!("decoder layer {c_in}->{c_out}: output size"))?;
            let mut w = host(conv.weight.val().reshape([c_in * c_out * k * k]));
            let mut bias = match &conv.bias {
                Some(b) => host(b.val()),
                None => vec![0.0; c_out],
            };
            if let Some(bn) = bn {
                let gamma = host(bn.gamma.val());
                let beta = host(bn.beta.val());
                let mean = host(bn.running_mean.value());
                let var = host(bn.running_var.value());
                let kk = k * k;
                for co in 0..c_out {
                    let scale = gamma[co] / (var[co] + bn.epsilon as f32).sqrt();
                    bias[co] = beta[co] + (bias[co] - mean[co]) * scale;
                    for ci in 0..c_in {
                        let at = (ci * c_out + co) * kk;
                        w[at..at + kk].iter_mut().for_each(|v| *v *= scale);
                    }
                }
            }
            layers.push(Layer {
                geom,
                w,
                bias,
                act: if bn.is_some() { Act::Relu } else { Act::Tanh },
            });
            side = geom.h_out;
        }
        ensure!(
            layers.last().is_some_and(|l| l.geom.c_out == 1),
            "decoder's last layer has more than one output channel: not an image decoder"
        );
        ensure!(
            side == image_size,
            "decoder produces {side}x{side} images, the checkpoint says {image_size}"
        );
        Ok(FoldedDecoder {
            latent_dim: layers[0].geom.c_in,
            layers,
        })
    }

    /// Latent dimension D.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    /// Output image side.
    pub fn image_size(&self) -> usize {
        self.layers.last().map_or(0, |l| l.geom.h_out)
    }

    /// Decode `z` (row-major `[B, D]`), keeping every activation for [`Self::vjp`].
    pub fn forward(&self, z: &[f32], batch: usize) -> Tape {
        let d = self.latent_dim;
        assert_eq!(z.len(), batch * d, "z must be [B, D]");
        if batch == 0 {
            let acts = std::iter::once(Vec::new())
                .chain(self.layers.iter().map(|_| Vec::new()))
                .collect();
            return Tape { batch, acts };
        }
        let mut zt = vec![0.0; d * batch];
        for b in 0..batch {
            for j in 0..d {
                zt[j * batch + b] = z[b * d + j];
            }
        }
        let mut acts = vec![zt];
        let mut cols = Vec::new();
        for layer in &self.layers {
            let (g, a) = (&layer.geom, acts.last().expect("z is on the tape"));
            let n = batch * g.h_in * g.w_in;
            cols.resize(g.m() * n, 0.0);
            // cols = W'^T a: W' is [c_in, m] row-major.
            matmul(
                (g.m(), n, g.c_in),
                MatRef::transposed(&layer.w, g.m()),
                MatRef::rows(a, n),
                MatMut::rows(&mut cols, n),
                false,
            );
            let act = layer.act;
            acts.push(scatter(g, &cols, batch, &layer.bias, |v| act.apply(v)));
        }
        Tape { batch, acts }
    }

    /// Decoded images of `z` (`[B, D]`), row-major `[B, H, W]`.
    pub fn decode(&self, z: &[f32], batch: usize) -> Vec<f32> {
        let mut tape = self.forward(z, batch);
        tape.acts.pop().unwrap_or_default()
    }

    /// d/dz sum(G * d(z)) for the pixel weights `g` (`[B, H, W]`), row-major `[B, D]`.
    pub fn vjp(&self, tape: &Tape, g: &[f32]) -> Vec<f32> {
        let batch = tape.batch;
        assert_eq!(g.len(), tape.images().len(), "G must match the images");
        if batch == 0 {
            return Vec::new();
        }
        let mut grad = g.to_vec();
        let mut gcols = Vec::new();
        for (l, layer) in self.layers.iter().enumerate().rev() {
            // gradient w.r.t. the pre-activation output
            let out = &tape.acts[l + 1];
            match layer.act {
                Act::Tanh => grad
                    .iter_mut()
                    .zip(out)
                    .for_each(|(g, y)| *g *= 1.0 - y * y),
                Act::Relu => grad
                    .iter_mut()
                    .zip(out)
                    .for_each(|(g, y)| *g = if *y > 0.0 { *g } else { 0.0 }),
            }
            let g = &layer.geom;
            let n = batch * g.h_in * g.w_in;
            gcols.resize(g.m() * n, 0.0);
            gather(g, &grad, batch, &mut gcols);
            let mut g_in = vec![0.0; g.c_in * n];
            // g_in = W' gcols: W' is [c_in, m] row-major.
            matmul(
                (g.c_in, n, g.m()),
                MatRef::rows(&layer.w, g.m()),
                MatRef::rows(&gcols, n),
                MatMut::rows(&mut g_in, n),
                false,
            );
            grad = g_in;
        }
        // grad is [D, B]: back to [B, D]
        let d = self.latent_dim;
        let mut gz = vec![0.0; batch * d];
        for j in 0..d {
            for b in 0..batch {
                gz[b * d + j] = grad[j * batch + b];
            }
        }
        gz
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arclight_vae::model::config::VaeConfig;
    use burn::tensor::{Device, TensorData};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// A decoder of small widths with random weights and non-trivial BatchNorm statistics.
    fn decoder(device: &Device) -> (Decoder, VaeConfig) {
        let config = VaeConfig {
            latent_dim: 6,
            widths: [5, 7, 6, 8],
            ..VaeConfig::default()
        };
        let mut rng = StdRng::seed_from_u64(8);
        let mut dec = Decoder::new(&config, &mut rng, device);
        let mut r = StdRng::seed_from_u64(9);
        let mut rand_vec = |n: usize, lo: f32, hi: f32| {
            Tensor::<1>::from_data(
                TensorData::new(
                    (0..n).map(|_| r.random_range(lo..hi)).collect::<Vec<f32>>(),
                    [n],
                ),
                device,
            )
        };
        for bn in [&mut dec.bn1, &mut dec.bn2, &mut dec.bn3, &mut dec.bn4] {
            let c = bn.gamma.val().dims()[0];
            bn.gamma = burn::module::Param::from_tensor(rand_vec(c, 0.5, 1.5));
            bn.beta = burn::module::Param::from_tensor(rand_vec(c, -0.1, 0.1));
            bn.running_mean = burn::module::RunningState::new(rand_vec(c, -0.01, 0.01));
            bn.running_var = burn::module::RunningState::new(rand_vec(c, 0.5, 2.0));
        }
        // larger weights than the Appendix D init, so activations are O(1) and tanh is curved
        for conv in [
            &mut dec.deconv1,
            &mut dec.deconv2,
            &mut dec.deconv3,
            &mut dec.deconv4,
            &mut dec.deconv5,
        ] {
            conv.weight = burn::module::Param::from_tensor(conv.weight.val() * 10.0);
        }
        (burn::module::Module::valid(&dec), config)
    }

    fn latents(batch: usize, d: usize) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(3);
        (0..batch * d)
            .map(|_| rng.random_range(-1.5..1.5))
            .collect()
    }

    #[test]
    fn forward_matches_the_burn_decoder() {
        let device = Device::default();
        let (dec, config) = decoder(&device);
        let folded = FoldedDecoder::from_decoder(&dec, config.image_size).unwrap();
        let batch = 3;
        let z = latents(batch, config.latent_dim);
        let ours = folded.decode(&z, batch);
        let zt = Tensor::<2>::from_data(TensorData::new(z, [batch, config.latent_dim]), &device);
        let theirs: Vec<f32> = dec.forward(zt).into_data().iter::<f32>().collect();
        assert_eq!(ours.len(), theirs.len());
        let max_abs = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max_abs > 0.3, "test decoder too flat: max |d| = {max_abs}");
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 2e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn vjp_matches_burn_autodiff_and_finite_differences() {
        let device = Device::default();
        let ad = device.clone().autodiff();
        let (dec, config) = decoder(&device);
        let folded = FoldedDecoder::from_decoder(&dec, config.image_size).unwrap();
        let (batch, d, n) = (2, config.latent_dim, config.image_size);
        let z = latents(batch, d);
        let mut rng = StdRng::seed_from_u64(5);
        let g: Vec<f32> = (0..batch * n * n)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let tape = folded.forward(&z, batch);
        let ours = folded.vjp(&tape, &g);

        // burn autodiff through the same (valid-mode) decoder, weights as constants
        let zt = Tensor::<2>::from_data(TensorData::new(z.clone(), [batch, d]), &ad).require_grad();
        let gt = Tensor::<4>::from_data(TensorData::new(g.clone(), [batch, 1, n, n]), &ad);
        let grads = (dec.forward(zt.clone()) * gt).sum().backward();
        let theirs: Vec<f32> = zt.grad(&grads).unwrap().into_data().iter::<f32>().collect();
        let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-4 * scale, "{a} vs {b} (scale {scale})");
        }

        // central differences of sum(G d(z)) in f64 accumulation
        let objective = |z: &[f32]| -> f64 {
            folded
                .decode(z, batch)
                .iter()
                .zip(&g)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum()
        };
        let h = 2e-3f32;
        for j in [0, 3, d + 1, 2 * d - 1] {
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[j] += h;
            zm[j] -= h;
            let fd = (objective(&zp) - objective(&zm)) / (2.0 * h as f64);
            assert!(
                (fd - ours[j] as f64).abs() < 2e-2 * scale as f64,
                "z[{j}]: fd {fd} vs vjp {}",
                ours[j]
            );
        }
    }

    #[test]
    fn empty_batches_and_non_finite_latents() {
        let device = Device::default();
        let (dec, config) = decoder(&device);
        let folded = FoldedDecoder::from_decoder(&dec, config.image_size).unwrap();
        assert!(folded.decode(&[], 0).is_empty());
        let tape = folded.forward(&[], 0);
        assert!(folded.vjp(&tape, &[]).is_empty());
        // a NaN latent must not come out as a finite image (ReLU keeps NaN)
        let mut z = latents(1, config.latent_dim);
        z[0] = f32::NAN;
        let img = folded.decode(&z, 1);
        assert!(img.iter().any(|v| v.is_nan()));
    }
}
