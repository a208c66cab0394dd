//! The fused-kernel likelihood of the VAE-source model of Chianese et al. 2020: when a model file
//! has any sum of registered mass profiles (the paper's: EPL + external shear), no lens light and
//! one VAE source (eq. 17), the lensing part of ln L (GIGA-Lens eq. 6) and its gradient come from
//! the hand-written kernel [`FusedPlacedImage`], and only the decoder d(z) is a neural network.
//!
//! One value + gradient evaluation:
//! 1. decode the latent columns z into images `[B, 64, 64]`;
//! 2. the kernel gives ln L, d ln L / d(lens and placement parameters) and
//!    G = d ln L / d(source pixel) for those images;
//! 3. d ln L / dz = d/dz sum(d(z) * G), the decoder's vector-Jacobian product.
//!
//! Steps 1 and 3 run on the folded host decoder ([`FoldedDecoder`]: BatchNorm folded, GEMM +
//! col2im, hand-written VJP, ~2x faster than burn-flex autodiff) when the device is burn-flex and
//! the decoder has one; otherwise (e.g. `--device tch`) z goes on the autodiff device with
//! `require_grad` and one burn backward pass through the decoder gives step 3.
//!
//! Same physics and conventions as the tensor path (`ForwardModel` + `PlacedImage`: the image
//! spans [x_src - s, x_src + s], row 0 at the top, bilinear, zero outside), at a fraction of the
//! cost: the 256 x 256 lens model through burn autodiff takes ~39 ms, the kernel ~3 ms.
//!
//! Ellipticities given as (q, phi) (Chianese eqs. 19-20) are turned into (e1, e2) and the gradient
//! is chained back exactly ([`super::kernel_params`]).

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Tensor, TensorData};
use std::sync::Arc;

use super::forward::{grid_of, psf_of};
use super::kernel_params::KernelParams;
use super::layout::Slots;
use super::observation::Observation;
use super::spec::ModelSpec;
use crate::lens::fused::placed::FusedPlacedImage;
use crate::prob::LogLikelihood;
use crate::source::folded_decoder::FoldedDecoder;
use crate::source::vae::Decode;

/// Rows per decoder autodiff pass (bounds the memory of the decoder's activations).
const DECODE_CHUNK: usize = 64;

/// The fused lens kernel + burn decoder likelihood over a model file's free parameters.
#[derive(Clone)]
pub struct FusedVaeLikelihood {
    kernel: FusedPlacedImage,
    decoder: Arc<dyn Decode>,
    /// The kernel's lens and placement parameters from theta.
    params: KernelParams,
    /// Columns of the latent z.
    latent: std::ops::Range<usize>,
    dim: usize,
    /// Autodiff device (gradients) and its inner device (values).
    device: Device,
    inner: Device,
    /// Decode on the host with [`FoldedDecoder`] (burn-flex devices with a folded checkpoint).
    folded_decoder: bool,
}

/// Whether `decoder` has a folded host twin of the shape the kernel was built for.
fn folded_fits(decoder: &dyn Decode, latent_dim: usize, (hs, ws): (usize, usize)) -> bool {
    decoder
        .folded()
        .is_some_and(|f| f.latent_dim() == latent_dim && f.image_size() == hs && hs == ws)
}

/// Observation-side inputs of the fused kernels: data, background variance per pixel (noise map
/// or sigma_bkg^2), and 1/(gain t_exp) when the Poisson term is on (GIGA-Lens eq. 6; off with a
/// noise map, which is the total sigma).
pub(crate) fn noise_inputs(
    spec: &ModelSpec,
    obs: &Observation,
) -> (Vec<f64>, Vec<f64>, Option<f64>) {
    let n = obs.ny * obs.nx;
    let bkg_var: Vec<f64> = match &obs.noise_map {
        Some(nm) => nm.iter().map(|s| (*s as f64).powi(2)).collect(),
        None => vec![spec.noise.sigma_bkg.powi(2); n],
    };
    let data: Vec<f64> = obs.data.iter().map(|&v| v as f64).collect();
    let poisson = spec
        .noise
        .exposure_time
        .filter(|_| obs.noise_map.is_none())
        .map(|t| 1.0 / (spec.noise.gain * t));
    (data, bkg_var, poisson)
}

impl FusedVaeLikelihood {
    /// `Ok(Ok(_))` when `spec` has one VAE source and no lens light, else `Ok(Err(reason))`: the
    /// tensor path evaluates the model and `reason` says why. `device` is the autodiff device the
    /// decoder's gradients use.
    pub fn try_new(
        spec: &ModelSpec,
        slots: &Slots,
        obs: &Observation,
        decoder: Arc<dyn Decode>,
        device: &Device,
    ) -> Result<Result<Self, String>> {
        let Some(latent) = slots.latent.clone() else {
            return Ok(Err("the model has no latent parameters".into()));
        };
        // The fused placed-image kernel convolves on the pixel grid only: a supersampled grid
        // convolved on its sub-pixels takes the tensor path.
        let subgrid_psf = spec.grid.supersample > 1
            && !matches!(spec.psf, super::spec::PsfSpec::None)
            && matches!(spec.psf_order, crate::lens::psf::PsfOrder::SubGrid { .. });
        if subgrid_psf {
            return Ok(Err(
                "the fused VAE-source kernel convolves on image pixels, and [psf] convolution is on the sub-grid"
                    .into(),
            ));
        }
        if !spec.lens_light.is_empty() || spec.source.len() != 1 {
            return Ok(Err(
                "the fused VAE-source kernel takes one VAE source and no lens light".into(),
            ));
        }
        let src = &spec.source[0];
        let mut params = KernelParams::new(slots);
        let mass = params.push_mass(slots, spec)?;
        params.push(slots, src, &["x_src", "y_src", "s", "i"], ("", 1.0))?;
        ensure!(
            latent.len() == decoder.latent_dim(),
            "{}: {} latent columns but the decoder takes {}",
            spec.path.display(),
            latent.len(),
            decoder.latent_dim()
        );
        // The source image shape: decode one latent vector (values only).
        let inner = device.clone().inner();
        let probe = decoder.decode(Tensor::<2>::zeros([1, latent.len()], &inner));
        let [_, hs, ws] = probe.dims();
        let (data, bkg_var, poisson) = noise_inputs(spec, obs);
        let kernel = FusedPlacedImage::with_mass(
            mass,
            grid_of(spec)?,
            &psf_of(spec)?,
            (hs, ws),
            &data,
            &bkg_var,
            poisson,
            Some(&obs.mask),
        )
        .with_context(|| format!("{}: fused VAE-source likelihood", obs.path.display()))?;
        let folded_decoder =
            folded_fits(decoder.as_ref(), latent.len(), (hs, ws)) && inner == Device::flex();
        Ok(Ok(FusedVaeLikelihood {
            kernel,
            params,
            latent,
            dim: slots.dim,
            device: device.clone(),
            folded_decoder,
            decoder,
            inner,
        }))
    }

    /// The kernel parameters of each theta row, `[batch x P]`.
    fn expand(&self, theta: &[f64], batch: usize) -> Vec<f64> {
        self.params.expand(theta, batch)
    }

    /// The latent columns of theta rows as a `[rows, D]` tensor on `device`.
    fn latents(&self, theta: &[f64], rows: usize, device: &Device) -> Tensor<2> {
        let d = self.latent.len();
        let mut z = Vec::with_capacity(rows * d);
        for row in theta.chunks(self.dim).take(rows) {
            z.extend_from_slice(&row[self.latent.clone()]);
        }
        Tensor::from_data(TensorData::new(z, [rows, d]), device)
    }

    /// Decoded source images of theta rows (values only), row-major `[batch, H, W]`.
    pub fn source_images(&self, theta: &[f64], batch: usize) -> Vec<f32> {
        if let Some(folded) = self.host_decoder() {
            // in chunks, as value_and_grad: the activations of a whole batch can be large
            let mut out = Vec::new();
            for start in (0..batch).step_by(DECODE_CHUNK) {
                let rows = (start + DECODE_CHUNK).min(batch) - start;
                let th = &theta[start * self.dim..];
                out.extend(folded.decode(&self.latents_f32(th, rows), rows));
            }
            return out;
        }
        let z = self.latents(theta, batch, &self.inner);
        self.decoder.decode(z).into_data().iter::<f32>().collect()
    }

    /// Noise-free model images, row-major `[batch, H, W]`.
    pub fn model_images(&self, theta: &[f64], batch: usize) -> Vec<f32> {
        let p = self.expand(theta, batch);
        let images = self.source_images(theta, batch);
        let (hs, ws) = self.kernel.source_shape();
        p.chunks(self.params.len())
            .zip(images.chunks(hs * ws))
            .flat_map(|(row, img)| self.kernel.render(row, img))
            .map(|v| v as f32)
            .collect()
    }

    /// ln L, d ln L / d(kernel parameters) and d ln L / dz of `rows` theta rows with the
    /// decoder on burn autodiff: d ln L / dz = d/dz sum(d(z) * G), G a constant for burn.
    fn burn_value_and_grad(
        &self,
        th: &[f64],
        rows: usize,
        p: &[f64],
        (hs, ws): (usize, usize),
    ) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let z = self.latents(th, rows, &self.device).require_grad();
        let images = self.decoder.decode(z.clone());
        ensure!(
            images.dims() == [rows, hs, ws],
            "decoder returned images {:?}, expected [{rows}, {hs}, {ws}]",
            images.dims()
        );
        let host: Vec<f32> = images.clone().inner().into_data().iter::<f32>().collect();
        let (values, g12, g_pixels) = self.kernel.value_and_grad(p, &host);
        let g = Tensor::<3>::from_data(TensorData::new(g_pixels, [rows, hs, ws]), &self.device);
        let grads = (images * g).sum().backward();
        let gz: Vec<f64> = z
            .grad(&grads)
            .context("no gradient reached the latent z through the decoder")?
            .into_data()
            .iter::<f64>()
            .collect();
        Ok((values, g12, gz))
    }

    /// The host decoder, when the checkpoint has one and the device is burn-flex (on other
    /// devices the decoder stays on that device).
    fn host_decoder(&self) -> Option<&FoldedDecoder> {
        if self.folded_decoder {
            self.decoder.folded()
        } else {
            None
        }
    }

    /// `on = false`: decode with burn autodiff even where the host decoder would be used (for
    /// comparisons and benches); `on = true` restores the default choice (flex device, a folded
    /// decoder of the right shape).
    pub fn with_folded_decoder(mut self, on: bool) -> Self {
        let (hs, ws) = self.kernel.source_shape();
        self.folded_decoder = on
            && self.inner == Device::flex()
            && folded_fits(self.decoder.as_ref(), self.latent.len(), (hs, ws));
        self
    }

    /// Whether the decoder runs folded on the host ([`FoldedDecoder`]) or on burn autodiff.
    pub fn decoder_path(&self) -> &'static str {
        if self.host_decoder().is_some() {
            "folded host decoder"
        } else {
            "burn autodiff decoder"
        }
    }

    /// The latent columns of theta rows, row-major `[rows, D]` in f32.
    fn latents_f32(&self, theta: &[f64], rows: usize) -> Vec<f32> {
        theta
            .chunks(self.dim)
            .take(rows)
            .flat_map(|row| row[self.latent.clone()].iter().map(|&v| v as f32))
            .collect()
    }
}

impl LogLikelihood for FusedVaeLikelihood {
    fn dim(&self) -> usize {
        self.dim
    }

    fn value_and_grad(
        &self,
        theta: &[f64],
        batch: usize,
        loglike: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        let dim = self.dim;
        let (hs, ws) = self.kernel.source_shape();
        grad[..batch * dim].iter_mut().for_each(|g| *g = 0.0);
        for start in (0..batch).step_by(DECODE_CHUNK) {
            let end = (start + DECODE_CHUNK).min(batch);
            let rows = end - start;
            let th = &theta[start * dim..end * dim];
            let p = self.expand(th, rows);
            let (values, g12, gz) = match self.host_decoder() {
                Some(folded) => {
                    // host decoder: forward with a tape, kernel, hand-written VJP
                    let tape = folded.forward(&self.latents_f32(th, rows), rows);
                    let (values, g12, g_pixels) = self.kernel.value_and_grad(&p, tape.images());
                    let gz = folded.vjp(&tape, &g_pixels);
                    (values, g12, gz.into_iter().map(f64::from).collect())
                }
                None => self.burn_value_and_grad(th, rows, &p, (hs, ws))?,
            };
            loglike[start..end].copy_from_slice(&values);
            let d = self.latent.len();
            for r in 0..rows {
                let out = &mut grad[(start + r) * dim..(start + r + 1) * dim];
                let np = self.params.len();
                self.params
                    .chain(&th[r * dim..(r + 1) * dim], &g12[r * np..(r + 1) * np], out);
                for (o, v) in out[self.latent.clone()]
                    .iter_mut()
                    .zip(&gz[r * d..(r + 1) * d])
                {
                    *o += v;
                }
            }
        }
        Ok(())
    }

    fn value(&self, theta: &[f64], batch: usize, loglike: &mut [f64]) -> Result<()> {
        let p = self.expand(theta, batch);
        let images = self.source_images(theta, batch);
        loglike[..batch].copy_from_slice(&self.kernel.log_likelihood(&p, &images));
        Ok(())
    }
}
