//! The image likelihood of GIGA-Lens eq. (6), on tensors, and the batched [`LogLikelihood`] of a
//! lens model that the inference algorithms consume.
//!
//!   ln L = -1/2 sum_pixels [ (I_obs - I_model)^2 / sigma_tot^2 + ln(2 pi sigma_tot^2) ],
//!   sigma_tot^2 = sigma_bkg^2 + max(I_model, 0) / (G t_exp),
//!
//! with the Poisson term only when an exposure time is given (Chianese eq. 9 is the case without
//! it), sigma_bkg replaced by a per-pixel noise map when one is given, and the sum over the
//! unmasked pixels. The normalisation term is kept in full: it depends on the model through the
//! Poisson variance, and the reported chi^2 and evidence need it.

use anyhow::{Result, ensure};
use burn::tensor::{Device, Tensor, TensorData};

use super::forward::ForwardModel;
use super::observation::Observation;
use crate::prob::LogLikelihood;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Observation-side tensors of eq. (6) on one device.
#[derive(Clone, Debug)]
pub struct GaussianImageLikelihood {
    obs: Tensor<3>,
    mask: Tensor<3>,
    var_bkg: Tensor<3>,
    /// 1 / (G t_exp), if the Poisson term is on.
    poisson: Option<f64>,
    n_used: usize,
}

impl GaussianImageLikelihood {
    pub fn new(
        obs: &Observation,
        sigma_bkg: f64,
        exposure_time: Option<f64>,
        gain: f64,
        device: &Device,
    ) -> Self {
        let shape = [1, obs.ny, obs.nx];
        let data = Tensor::<3>::from_data(TensorData::new(obs.data.clone(), shape), device);
        let mask: Vec<f32> = obs
            .mask
            .iter()
            .map(|&m| if m { 1.0 } else { 0.0 })
            .collect();
        let var: Vec<f32> = match &obs.noise_map {
            Some(nm) => nm.iter().map(|s| s * s).collect(),
            None => vec![(sigma_bkg * sigma_bkg) as f32; obs.ny * obs.nx],
        };
        GaussianImageLikelihood {
            obs: data,
            mask: Tensor::from_data(TensorData::new(mask, shape), device),
            var_bkg: Tensor::from_data(TensorData::new(var, shape), device),
            // a noise map is the total sigma: no Poisson term on top
            poisson: exposure_time
                .filter(|_| obs.noise_map.is_none())
                .map(|t| 1.0 / (gain * t)),
            n_used: obs.n_used(),
        }
    }

    /// Pixels in the sum.
    pub fn n_used(&self) -> usize {
        self.n_used
    }

    /// Total variance sigma_tot^2 `[B, H, W]` for a model image.
    pub fn variance(&self, model: &Tensor<3>) -> Tensor<3> {
        match self.poisson {
            Some(p) => self.var_bkg.clone() + model.clone().clamp_min(0.0).mul_scalar(p),
            None => self.var_bkg.clone() + model.zeros_like(),
        }
    }

    /// ln L per batch member, `[B]`, for model images `[B, H, W]`.
    pub fn log_likelihood(&self, model: Tensor<3>) -> Tensor<1> {
        let b = model.dims()[0];
        let var = self.variance(&model);
        let r2 = (self.obs.clone() - model).powi_scalar(2) / var.clone();
        let terms = (r2 + var.log().add_scalar(LN_2PI)) * self.mask.clone();
        terms
            .reshape([b as i32, -1])
            .sum_dim(1)
            .reshape([b])
            .mul_scalar(-0.5)
    }

    /// chi^2 = sum (I_obs - I_model)^2 / sigma_tot^2 over used pixels, `[B]`.
    pub fn chi2(&self, model: Tensor<3>) -> Tensor<1> {
        let b = model.dims()[0];
        let var = self.variance(&model);
        let r2 = (self.obs.clone() - model).powi_scalar(2) / var * self.mask.clone();
        r2.reshape([b as i32, -1]).sum_dim(1).reshape([b])
    }
}

/// The batched log-likelihood of a lens model and an observation: theta (physical) -> ln L and
/// d ln L / d theta, by burn autodiff, in chunks of rows to bound memory.
#[derive(Clone)]
pub struct LensLikelihood {
    pub forward: ForwardModel,
    pub forward_values: ForwardModel,
    lik: GaussianImageLikelihood,
    lik_values: GaussianImageLikelihood,
    dim: usize,
    /// Rows per autodiff pass.
    pub chunk: usize,
}

impl LensLikelihood {
    /// `forward` must live on an autodiff device; values-only evaluations use its inner device.
    pub fn new(forward: ForwardModel, obs: &Observation) -> Result<Self> {
        let spec = &forward.spec;
        ensure!(
            (obs.ny, obs.nx) == (spec.grid.ny, spec.grid.nx),
            "{}: observation {}x{} vs model grid {}x{}",
            obs.path.display(),
            obs.ny,
            obs.nx,
            spec.grid.ny,
            spec.grid.nx
        );
        let ad = forward.device().clone();
        let inner = ad.clone().inner();
        let n = &spec.noise;
        let lik = GaussianImageLikelihood::new(obs, n.sigma_bkg, n.exposure_time, n.gain, &ad);
        let lik_values =
            GaussianImageLikelihood::new(obs, n.sigma_bkg, n.exposure_time, n.gain, &inner);
        let forward_values = forward.to_device(&inner);
        let dim = forward.slots.dim;
        // Autodiff memory grows with rays x batch: aim at ~2e6 rays per pass.
        let rays = forward.grid().num_rays().max(1);
        let chunk = (2_000_000 / rays).clamp(1, 512);
        Ok(LensLikelihood {
            forward,
            forward_values,
            lik,
            lik_values,
            dim,
            chunk,
        })
    }

    pub fn image_likelihood(&self) -> &GaussianImageLikelihood {
        &self.lik_values
    }

    /// Model images for theta rows (values only), row-major `[batch, H, W]` as f32.
    pub fn model_images(&self, theta: &[f64], batch: usize) -> Result<Vec<f32>> {
        let t = to_tensor(theta, batch, self.dim, self.forward_values.device());
        let img = self.forward_values.render(&t)?;
        Ok(img.into_data().iter::<f32>().collect())
    }

    /// chi^2 of each theta row (values only).
    pub fn chi2(&self, theta: &[f64], batch: usize) -> Result<Vec<f64>> {
        let t = to_tensor(theta, batch, self.dim, self.forward_values.device());
        let img = self.forward_values.render(&t)?;
        Ok(self
            .lik_values
            .chi2(img)
            .into_data()
            .iter::<f64>()
            .collect())
    }
}

fn to_tensor(theta: &[f64], batch: usize, dim: usize, device: &Device) -> Tensor<2> {
    // f64 data is converted to the device's float type (f32 on the hot path, f64 in reference tests).
    Tensor::from_data(TensorData::new(theta.to_vec(), [batch, dim]), device)
}

impl LogLikelihood for LensLikelihood {
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
        let d = self.dim;
        for start in (0..batch).step_by(self.chunk) {
            let end = (start + self.chunk).min(batch);
            let rows = end - start;
            let t = to_tensor(&theta[start * d..end * d], rows, d, self.forward.device())
                .require_grad();
            let ll = self.lik.log_likelihood(self.forward.render(&t)?);
            let grads = ll.clone().sum().backward();
            let g = t
                .grad(&grads)
                .ok_or_else(|| anyhow::anyhow!("no gradient reached the parameters"))?;
            for (o, v) in loglike[start..end]
                .iter_mut()
                .zip(ll.inner().into_data().iter::<f64>())
            {
                *o = v;
            }
            for (o, v) in grad[start * d..end * d]
                .iter_mut()
                .zip(g.into_data().iter::<f64>())
            {
                *o = v;
            }
        }
        Ok(())
    }

    fn value(&self, theta: &[f64], batch: usize, loglike: &mut [f64]) -> Result<()> {
        let d = self.dim;
        let chunk = self.chunk * 4;
        for start in (0..batch).step_by(chunk) {
            let end = (start + chunk).min(batch);
            let t = to_tensor(
                &theta[start * d..end * d],
                end - start,
                d,
                self.forward_values.device(),
            );
            let ll = self
                .lik_values
                .log_likelihood(self.forward_values.render(&t)?);
            for (o, v) in loglike[start..end]
                .iter_mut()
                .zip(ll.into_data().iter::<f64>())
            {
                *o = v;
            }
        }
        Ok(())
    }
}

/// A hand-written fast path for a model file's likelihood.
#[derive(Clone)]
pub enum FusedPath {
    /// Sersic light and sources (the GIGA-Lens shape), entirely in the fused kernel ([`super::fused`]).
    Sersic(super::fused::FusedLikelihood),
    /// A VAE source: the fused placed-image kernel for the lensing, the
    /// decoder folded on the host or on burn autodiff ([`super::fused_vae`]).
    Vae(super::fused_vae::FusedVaeLikelihood),
}

impl FusedPath {
    fn lik(&self) -> &dyn LogLikelihood {
        match self {
            FusedPath::Sersic(f) => f,
            FusedPath::Vae(f) => f,
        }
    }
}

/// The likelihood `infer fit` uses: a fused kernel when the model file has Sersic light and
/// sources (see [`super::fused`]) or one VAE source (see [`super::fused_vae`]), with any
/// registered mass profiles, else burn autodiff; the tensor model is always kept for figures and
/// chi^2.
#[derive(Clone)]
pub struct ModelLikelihood {
    pub tensor: LensLikelihood,
    pub fused: Option<FusedPath>,
    /// Why the tensor path evaluates the likelihood, when it does.
    pub fallback: Option<String>,
}

impl ModelLikelihood {
    /// Build both paths; `allow_fused = false` forces the tensor path.
    pub fn new(forward: ForwardModel, obs: &Observation, allow_fused: bool) -> Result<Self> {
        // The tensor path first: it checks the observation against the model grid.
        let tensor = LensLikelihood::new(forward, obs)?;
        let fwd = &tensor.forward;
        let fused = if !allow_fused {
            Err("the fused kernels are switched off".to_string())
        } else if let Some(dec) = fwd.decoder() {
            super::fused_vae::FusedVaeLikelihood::try_new(
                &fwd.spec,
                &fwd.slots,
                obs,
                dec.clone(),
                fwd.device(),
            )?
            .map(FusedPath::Vae)
        } else {
            super::fused::FusedLikelihood::try_new(&fwd.spec, &fwd.slots, obs)?
                .map(FusedPath::Sersic)
        };
        let (fused, fallback) = match fused {
            Ok(f) => (Some(f), None),
            Err(reason) => (None, Some(reason)),
        };
        Ok(ModelLikelihood {
            tensor,
            fused,
            fallback,
        })
    }

    /// Which implementation evaluates gradients: "fused" (all in the kernel),
    /// "fused+folded decoder" (lensing in the kernel, the VAE decoder folded on the host),
    /// "fused+burn decoder" (the decoder by burn autodiff) or "autodiff".
    pub fn backend(&self) -> &'static str {
        match &self.fused {
            Some(FusedPath::Sersic(_)) => "fused",
            Some(FusedPath::Vae(f)) if f.decoder_path().starts_with("folded") => {
                "fused+folded decoder"
            }
            Some(FusedPath::Vae(_)) => "fused+burn decoder",
            None => "autodiff",
        }
    }

    /// Keep the VAE decoder on burn autodiff even where the folded host decoder would be used
    /// (`on = false`), for comparisons.
    pub fn with_folded_decoder(mut self, on: bool) -> Self {
        if let Some(FusedPath::Vae(f)) = self.fused.take() {
            self.fused = Some(FusedPath::Vae(f.with_folded_decoder(on)));
        }
        self
    }
}

impl LogLikelihood for ModelLikelihood {
    fn dim(&self) -> usize {
        self.tensor.dim()
    }
    fn value_and_grad(
        &self,
        theta: &[f64],
        batch: usize,
        loglike: &mut [f64],
        grad: &mut [f64],
    ) -> Result<()> {
        match &self.fused {
            Some(f) => f.lik().value_and_grad(theta, batch, loglike, grad),
            None => self.tensor.value_and_grad(theta, batch, loglike, grad),
        }
    }
    fn value(&self, theta: &[f64], batch: usize, loglike: &mut [f64]) -> Result<()> {
        match &self.fused {
            Some(f) => f.lik().value(theta, batch, loglike),
            None => self.tensor.value(theta, batch, loglike),
        }
    }
}
