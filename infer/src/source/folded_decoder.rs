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
//! - each transposed convolution is one GEMM, cols = W'^T a (M = c_out k^2, K = c_in,
//!   N = B h w), then col2im (a scatter-add of the k^2 taps onto the strided output grid), bias and
//!   activation in the same pass;
//! - the backward pass needs only the input gradient (the weights are constants): im2col of the
//!   output gradient, then one GEMM with W' (the transpose of the forward product), times the
//!   ReLU mask of the layer input.
//!
//! Activations are stored channel-major, `[C, B, H, W]`, so every layer's GEMM covers the whole
//! batch at once. The result agrees with the burn decoder to float rounding (tests below).

use anyhow::{Result, ensure};
use burn::tensor::Tensor;
use rayon::prelude::*;
use train_vae::model::decoder::Decoder;

/// Activation after a layer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    Relu,
    Tanh,
}

/// One transposed convolution (square kernel, no dilation, groups 1) with its folded affine
/// BatchNorm and activation.
#[derive(Clone, Debug)]
struct Layer {
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    /// Input spatial size.
    h_in: usize,
    w_in: usize,
    /// Output spatial size, (h_in - 1) stride - 2 pad + k.
    h_out: usize,
    w_out: usize,
    /// W' as a row-major `[c_in, c_out k k]` matrix (burn's `[c_in, c_out, k, k]` layout).
    w: Vec<f32>,
    /// Per-output-channel shift.
    bias: Vec<f32>,
    act: Act,
}

impl Layer {
    fn m(&self) -> usize {
        self.c_out * self.k * self.k
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

/// dst `[m, n]` (row-major) = lhs `[m, k]` * rhs `[k, n]` (row-major), lhs given by its row and
/// column strides. Large products use the rayon pool.
fn matmul(
    (m, n, k): (usize, usize, usize),
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    dst: &mut [f32],
) {
    assert!(dst.len() >= m * n && rhs.len() >= k * n);
    assert!(m == 0 || k == 0 || (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len());
    let par = if m * n * k >= 1 << 18 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index of the three strided matrices in bounds;
    // dst does not alias lhs or rhs (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
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
            let out = (side - 1) * stride + k;
            ensure!(out > 2 * pad, "decoder layer {c_in}->{c_out}: output size");
            let out = out - 2 * pad;
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
                c_in,
                c_out,
                k,
                stride,
                pad,
                h_in: side,
                w_in: side,
                h_out: out,
                w_out: out,
                w,
                bias,
                act: if bn.is_some() { Act::Relu } else { Act::Tanh },
            });
            side = out;
        }
        ensure!(
            layers.last().is_some_and(|l| l.c_out == 1),
            "decoder's last layer has more than one output channel: not an image decoder"
        );
        ensure!(
            side == image_size,
            "decoder produces {side}x{side} images, the checkpoint says {image_size}"
        );
        Ok(FoldedDecoder {
            latent_dim: layers[0].c_in,
            layers,
        })
    }

    /// Latent dimension D.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    /// Output image side.
    pub fn image_size(&self) -> usize {
        self.layers.last().map_or(0, |l| l.h_out)
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
            let a = acts.last().expect("z is on the tape");
            let n = batch * layer.h_in * layer.w_in;
            cols.resize(layer.m() * n, 0.0);
            // cols = W'^T a: W' is [c_in, m] row-major, so W'^T has row stride 1, column stride m.
            matmul(
                (layer.m(), n, layer.c_in),
                &layer.w,
                (1, layer.m()),
                a,
                &mut cols,
            );
            acts.push(col2im(layer, &cols, batch));
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
            let n = batch * layer.h_in * layer.w_in;
            gcols.resize(layer.m() * n, 0.0);
            im2col(layer, &grad, batch, &mut gcols);
            let mut g_in = vec![0.0; layer.c_in * n];
            // g_in = W' gcols: W' is [c_in, m] row-major.
            matmul(
                (layer.c_in, n, layer.m()),
                &layer.w,
                (layer.m(), 1),
                &gcols,
                &mut g_in,
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

/// Output rows reached by kernel row `kh` from input rows `0..h_in`: (first input, first output,
/// count), with output = input * stride + kh - pad.
fn tap_range(
    h_in: usize,
    h_out: usize,
    stride: usize,
    kh: usize,
    pad: usize,
) -> (usize, usize, usize) {
    // smallest i with i * stride + kh >= pad
    let i0 = if kh >= pad {
        0
    } else {
        (pad - kh).div_ceil(stride)
    };
    if i0 >= h_in {
        return (0, 0, 0);
    }
    let o0 = i0 * stride + kh - pad;
    if o0 >= h_out {
        return (0, 0, 0);
    }
    let count = ((h_out - 1 - o0) / stride + 1).min(h_in - i0);
    (i0, o0, count)
}

/// For each kernel tap (kh, kw), row-major, the runs of one image it connects: (offset in the
/// input plane, offset in the output plane, length), input pixels consecutive, output pixels
/// `stride` apart. Shared by the scatter ([`col2im`]) and its adjoint ([`im2col`]).
fn tap_runs(layer: &Layer) -> Vec<Vec<(usize, usize, usize)>> {
    let (k, s, p) = (layer.k, layer.stride, layer.pad);
    let mut taps = Vec::with_capacity(k * k);
    for kh in 0..k {
        let (iy0, oy0, ny) = tap_range(layer.h_in, layer.h_out, s, kh, p);
        for kw in 0..k {
            let (ix0, ox0, nx) = tap_range(layer.w_in, layer.w_out, s, kw, p);
            let runs = (0..ny)
                .filter(|_| nx > 0)
                .map(|t| {
                    (
                        (iy0 + t) * layer.w_in + ix0,
                        (oy0 + t * s) * layer.w_out + ox0,
                        nx,
                    )
                })
                .collect();
            taps.push(runs);
        }
    }
    taps
}

/// The layer output `[c_out, B, h_out, w_out]` from its GEMM columns
/// `[c_out k k, B h_in w_in]`: scatter-add the taps, add the bias, apply the activation.
fn col2im(layer: &Layer, cols: &[f32], batch: usize) -> Vec<f32> {
    let (in_plane, out_plane, s) = (
        layer.h_in * layer.w_in,
        layer.h_out * layer.w_out,
        layer.stride,
    );
    let n = batch * in_plane;
    let taps = tap_runs(layer);
    let mut out = vec![0.0f32; layer.c_out * batch * out_plane];
    out.par_chunks_mut(batch * out_plane)
        .enumerate()
        .for_each(|(co, dst)| {
            dst.iter_mut().for_each(|v| *v = layer.bias[co]);
            for (tap, runs) in taps.iter().enumerate() {
                let row = &cols[(co * taps.len() + tap) * n..][..n];
                for b in 0..batch {
                    for &(i0, o0, len) in runs {
                        let src = &row[b * in_plane + i0..][..len];
                        let dst = &mut dst[b * out_plane + o0..];
                        for (u, v) in src.iter().enumerate() {
                            dst[u * s] += v;
                        }
                    }
                }
            }
            match layer.act {
                // NaN stays NaN (f32::max would turn it into 0 and hide a non-finite input)
                Act::Relu => dst.iter_mut().for_each(|v| {
                    if *v < 0.0 {
                        *v = 0.0
                    }
                }),
                Act::Tanh => dst.iter_mut().for_each(|v| *v = v.tanh()),
            }
        });
    out
}

/// The adjoint of the tap scatter: `gcols[(co, kh, kw), (b, iy, ix)]` = the output gradient at
/// the pixel tap (kh, kw) of input pixel (iy, ix) reaches, zero where it falls outside.
fn im2col(layer: &Layer, grad: &[f32], batch: usize, gcols: &mut [f32]) {
    let (in_plane, out_plane, s) = (
        layer.h_in * layer.w_in,
        layer.h_out * layer.w_out,
        layer.stride,
    );
    let n = batch * in_plane;
    let taps = tap_runs(layer);
    gcols[..layer.m() * n]
        .par_chunks_mut(taps.len() * n)
        .enumerate()
        .for_each(|(co, rows)| {
            let src = &grad[co * batch * out_plane..][..batch * out_plane];
            for (tap, runs) in taps.iter().enumerate() {
                let row = &mut rows[tap * n..][..n];
                row.iter_mut().for_each(|v| *v = 0.0);
                for b in 0..batch {
                    for &(i0, o0, len) in runs {
                        let from = &src[b * out_plane + o0..];
                        for (u, v) in row[b * in_plane + i0..][..len].iter_mut().enumerate() {
                            *v = from[u * s];
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use train_vae::model::config::VaeConfig;

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
    fn tap_ranges_cover_the_strided_grid() {
        // stride 2, pad 1, k 4, 4 -> 8: kernel row 0 reaches outputs 1, 3, 5 from inputs 1, 2, 3
        assert_eq!(tap_range(4, 8, 2, 0, 1), (1, 1, 3));
        assert_eq!(tap_range(4, 8, 2, 1, 1), (0, 0, 4));
        assert_eq!(tap_range(4, 8, 2, 3, 1), (0, 2, 3));
        // stride 1, pad 0 from 1x1: each kernel row reaches its own output row
        assert_eq!(tap_range(1, 4, 1, 2, 0), (0, 2, 1));
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
