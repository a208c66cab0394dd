//! The fused-kernel likelihood of the VAE-source model of Chianese et al. 2020: when a model file
//! has one EPL (or SIE, gamma = 2) and one external shear, no lens light and one VAE source
//! (eq. 17), the lensing part of ln L (GIGA-Lens eq. 6) and its gradient come from the
//! hand-written kernel [`FusedPlacedImage`], and only the decoder d(z) is a neural network.
//!
//! One value + gradient evaluation:
//! 1. decode the latent columns z into images `[B, 64, 64]`;
//! 2. the kernel gives ln L, d ln L / d(12 lens and placement parameters) and
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
//! Ellipticities given as (q, phi) (Chianese eqs. 19-20) are turned into
//! (e1, e2) = (1-q)/(1+q) (cos 2phi, sin 2phi) and the gradient is chained back exactly.

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Tensor, TensorData};
use std::sync::Arc;

use super::forward::{grid_of, psf_of};
use super::layout::{Slot, Slots};
use super::observation::Observation;
use super::spec::{Component, ComponentKind, ModelSpec};
use crate::lens::fused::placed::{FusedPlacedImage, NUM_PLACED_PARAMS};
use crate::prob::LogLikelihood;
use crate::source::folded_decoder::FoldedDecoder;
use crate::source::vae::Decode;

/// Kernel slots of the EPL ellipticity (e1, e2) in [`crate::lens::fused::placed::PLACED_PARAM_NAMES`].
const E1: usize = 2;
const E2: usize = 3;

/// Rows per decoder autodiff pass (bounds the memory of the decoder's activations).
const DECODE_CHUNK: usize = 64;

/// How the EPL ellipticity is parameterised in theta.
#[derive(Clone, Copy, Debug)]
enum Ellipticity {
    /// (e1, e2) directly: kernel slots 2 and 3 of the map.
    E1E2,
    /// (q, phi), Chianese eqs. 19-20.
    QPhi { q: Slot, phi: Slot },
}

/// The fused lens kernel + burn decoder likelihood over a model file's free parameters.
#[derive(Clone)]
pub struct FusedVaeLikelihood {
    kernel: FusedPlacedImage,
    decoder: Arc<dyn Decode>,
    /// For each of the 12 kernel parameters: a theta column or a constant (slots 2 and 3 are
    /// unused when the ellipticity is (q, phi)).
    map: [Slot; NUM_PLACED_PARAMS],
    ellipticity: Ellipticity,
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

fn value_of(s: Slot, row: &[f64]) -> f64 {
    match s {
        Slot::Column(j) => row[j],
        Slot::Fixed(v) => v,
    }
}

/// (e1, e2) from (q, phi), eqs. 19-20, and the Jacobian d(e1, e2)/d(q, phi) as
/// [[de1/dq, de1/dphi], [de2/dq, de2/dphi]].
fn e_of_q_phi(q: f64, phi: f64) -> ([f64; 2], [[f64; 2]; 2]) {
    let e = (1.0 - q) / (1.0 + q);
    let de_dq = -2.0 / ((1.0 + q) * (1.0 + q));
    let (s2, c2) = (2.0 * phi).sin_cos();
    (
        [e * c2, e * s2],
        [[de_dq * c2, -2.0 * e * s2], [de_dq * s2, 2.0 * e * c2]],
    )
}

/// Observed data, background variance per pixel and Poisson factor 1/(G t_exp) of eq. (6), as
/// the fused kernels take them.
/// Observation-side inputs of the fused kernels: data, background variance per pixel (noise map
/// or sigma_bkg^2), and 1/(gain t_exp) when the Poisson term is on (GIGA-Lens eq. 6).
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
        .map(|t| 1.0 / (spec.noise.gain * t));
    (data, bkg_var, poisson)
}

impl FusedVaeLikelihood {
    /// `Some` when `spec` is EPL/SIE + shear with one VAE source and no lens light, else `None`
    /// (use the tensor path). `device` is the autodiff device the decoder's gradients use.
    pub fn try_new(
        spec: &ModelSpec,
        slots: &Slots,
        obs: &Observation,
        decoder: Arc<dyn Decode>,
        device: &Device,
    ) -> Result<Option<Self>> {
        let find = |pred: &dyn Fn(ComponentKind) -> bool| -> Option<&Component> {
            let mut it = spec.mass.iter().filter(|c| pred(c.kind));
            let first = it.next()?;
            it.next().is_none().then_some(first)
        };
        let lens = find(&|k| matches!(k, ComponentKind::Epl | ComponentKind::Sie));
        let shear = find(&|k| k == ComponentKind::Shear);
        let (Some(lens), Some(shear), Some(latent)) = (lens, shear, slots.latent.clone()) else {
            return Ok(None);
        };
        // The fused placed-image kernel convolves on the pixel grid only: a supersampled grid
        // convolved on its sub-pixels takes the tensor path (the fit summary names the backend).
        let subgrid_psf = spec.grid.supersample > 1
            && !matches!(spec.psf, super::spec::PsfSpec::None)
            && matches!(spec.psf_order, crate::lens::psf::PsfOrder::SubGrid { .. });
        let shape_ok = !subgrid_psf
            && spec.mass.len() == 2
            && spec.lens_light.is_empty()
            && spec.source.len() == 1
            && spec.source[0].kind == ComponentKind::Vae;
        if !shape_ok {
            return Ok(None);
        }
        let src = &spec.source[0];
        let get = |c: &Component, key: &str| slots.get(&format!("{}.{key}", c.label));
        let mut map = [Slot::Fixed(0.0); NUM_PLACED_PARAMS];
        map[0] = get(lens, "theta_e")?;
        map[1] = if lens.kind == ComponentKind::Epl {
            get(lens, "gamma")?
        } else {
            Slot::Fixed(2.0)
        };
        let ellipticity = if lens.q_phi {
            Ellipticity::QPhi {
                q: get(lens, "q")?,
                phi: get(lens, "phi")?,
            }
        } else {
            map[E1] = get(lens, "e1")?;
            map[E2] = get(lens, "e2")?;
            Ellipticity::E1E2
        };
        map[4] = get(lens, "center_x")?;
        map[5] = get(lens, "center_y")?;
        map[6] = get(shear, "gamma1")?;
        map[7] = get(shear, "gamma2")?;
        for (k, key) in ["x_src", "y_src", "s", "i"].iter().enumerate() {
            map[8 + k] = get(src, key)?;
        }
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
        let kernel = FusedPlacedImage::new(
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
        Ok(Some(FusedVaeLikelihood {
            kernel,
            map,
            ellipticity,
            latent,
            dim: slots.dim,
            device: device.clone(),
            folded_decoder,
            decoder,
            inner,
        }))
    }

    /// The 12 kernel parameters of each theta row, `[batch x 12]`.
    fn expand(&self, theta: &[f64], batch: usize) -> Vec<f64> {
        let mut p = vec![0.0; batch * NUM_PLACED_PARAMS];
        for (row, out) in theta
            .chunks(self.dim)
            .take(batch)
            .zip(p.chunks_mut(NUM_PLACED_PARAMS))
        {
            for (o, s) in out.iter_mut().zip(&self.map) {
                *o = value_of(*s, row);
            }
            if let Ellipticity::QPhi { q, phi } = self.ellipticity {
                let ([e1, e2], _) = e_of_q_phi(value_of(q, row), value_of(phi, row));
                out[E1] = e1;
                out[E2] = e2;
            }
        }
        p
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
        p.chunks(NUM_PLACED_PARAMS)
            .zip(images.chunks(hs * ws))
            .flat_map(|(row, img)| self.kernel.render(row, img))
            .map(|v| v as f32)
            .collect()
    }

    /// Add d ln L / d(12 kernel parameters) of one row to its theta gradient row.
    fn scatter(&self, row: &[f64], g12: &[f64], out: &mut [f64]) {
        for (k, s) in self.map.iter().enumerate() {
            let ellip = matches!(k, E1 | E2);
            if let (Slot::Column(j), false) = (*s, ellip && self.is_q_phi()) {
                out[j] += g12[k];
            }
        }
        if let Ellipticity::QPhi { q, phi } = self.ellipticity {
            let (_, jac) = e_of_q_phi(value_of(q, row), value_of(phi, row));
            let (ge1, ge2) = (g12[E1], g12[E2]);
            if let Slot::Column(j) = q {
                out[j] += ge1 * jac[0][0] + ge2 * jac[1][0];
            }
            if let Slot::Column(j) = phi {
                out[j] += ge1 * jac[0][1] + ge2 * jac[1][1];
            }
        }
    }

    /// ln L, d ln L / d(12 kernel parameters) and d ln L / dz of `rows` theta rows with the
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

    fn is_q_phi(&self) -> bool {
        matches!(self.ellipticity, Ellipticity::QPhi { .. })
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
                self.scatter(
                    &th[r * dim..(r + 1) * dim],
                    &g12[r * NUM_PLACED_PARAMS..(r + 1) * NUM_PLACED_PARAMS],
                    out,
                );
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

#[cfg(test)]
mod tests {
    use super::e_of_q_phi;

    #[test]
    fn q_phi_jacobian_matches_finite_differences() {
        for (q, phi) in [(0.5, 0.3), (0.9, -1.2), (0.25, 2.0)] {
            let (_, jac) = e_of_q_phi(q, phi);
            let h = 1e-6;
            for (k, (dq, dp)) in [(h, 0.0), (0.0, h)].into_iter().enumerate() {
                let (a, _) = e_of_q_phi(q + dq, phi + dp);
                let (b, _) = e_of_q_phi(q - dq, phi - dp);
                for i in 0..2 {
                    let fd = (a[i] - b[i]) / (2.0 * h);
                    assert!(
                        (fd - jac[i][k]).abs() < 1e-8,
                        "q={q} phi={phi}: d e{}/d{} fd {fd} vs {}",
                        i + 1,
                        ["q", "phi"][k],
                        jac[i][k]
                    );
                }
            }
        }
    }
}
