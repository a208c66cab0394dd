//! The fused-kernel likelihood of models with analytic light: any sum of registered mass profiles,
//! any registered light profiles as lens light and sources (the GIGA-Lens model is EPL + shear + one
//! Sersic of each); the
//! likelihood and its gradient come from the hand-written kernel [`crate::lens::fused::FusedLens`]
//! instead of burn autodiff: same physics, same eq. (6), much faster at the batch sizes of
//! multistart MAP, VI and many-chain HMC (`infer bench`; docs/performance.md).

use anyhow::Result;

use super::forward::{grid_of, psf_of, sersic_amp_scale};
use super::kernel_params::KernelParams;
use super::layout::Slots;
use super::observation::Observation;
use super::spec::{ComponentKind, ModelSpec};
use crate::lens::fused::{FusedLayout, FusedLens};
use crate::lens::profile::LightKind;
use crate::prob::LogLikelihood;

/// The fused likelihood over a model file's free parameters.
#[derive(Clone)]
pub struct FusedLikelihood {
    kernel: FusedLens,
    params: KernelParams,
    dim: usize,
}

impl FusedLikelihood {
    /// `Ok(Ok(_))` when every light and source component is a registered light profile, else `Ok(Err(reason))`: the
    /// tensor path evaluates the model and `reason` says why.
    pub fn try_new(
        spec: &ModelSpec,
        slots: &Slots,
        obs: &Observation,
    ) -> Result<Result<Self, String>> {
        let light_kind = |c: &super::spec::Component| match c.kind {
            ComponentKind::Light(k) => Ok(k),
            other => Err(format!(
                "the fused kernel takes registered light profiles as lens light and sources, not {} ({})",
                other.name(),
                c.label
            )),
        };
        let lights: Vec<LightKind> = match spec.lens_light.iter().map(light_kind).collect() {
            Ok(k) => k,
            Err(why) => return Ok(Err(why)),
        };
        let sources: Vec<LightKind> = match spec.source.iter().map(light_kind).collect() {
            Ok(k) => k,
            Err(why) => return Ok(Err(why)),
        };
        if sources.is_empty() {
            return Ok(Err("the model has no source".into()));
        }
        let mut params = KernelParams::new(slots);
        let mass = params.push_mass(slots, spec)?;
        let light_components = spec.lens_light.iter().chain(&spec.source);
        for (c, k) in light_components.zip(lights.iter().chain(&sources)) {
            params.push(slots, c, k.keys(), (k.amp_key(), sersic_amp_scale(spec)))?;
        }
        let layout = FusedLayout {
            mass,
            lights,
            sources,
        };
        let (data, bkg_var, poisson) = super::fused_vae::noise_inputs(spec, obs);
        let kernel = FusedLens::with_layout(
            layout,
            grid_of(spec)?,
            &psf_of(spec)?,
            spec.psf_order,
            &data,
            &bkg_var,
            poisson,
            Some(&obs.mask),
        )?;
        Ok(Ok(FusedLikelihood {
            kernel,
            params,
            dim: slots.dim,
        }))
    }

    /// Noise-free model images, row-major `[batch, H, W]`.
    pub fn model_images(&self, theta: &[f64], batch: usize) -> Vec<f32> {
        let p = self.params.expand(theta, batch);
        p.chunks(self.params.len())
            .flat_map(|row| self.kernel.render(row))
            .map(|v| v as f32)
            .collect()
    }
}

impl LogLikelihood for FusedLikelihood {
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
        let p = self.params.expand(theta, batch);
        let (values, gk) = self.kernel.value_and_grad(&p);
        loglike.copy_from_slice(&values);
        grad.iter_mut().for_each(|g| *g = 0.0);
        let n = self.params.len();
        for (b, g) in gk.chunks(n).enumerate() {
            let row = &theta[b * self.dim..(b + 1) * self.dim];
            self.params
                .chain(row, g, &mut grad[b * self.dim..(b + 1) * self.dim]);
        }
        Ok(())
    }

    fn value(&self, theta: &[f64], batch: usize, loglike: &mut [f64]) -> Result<()> {
        let p = self.params.expand(theta, batch);
        loglike.copy_from_slice(&self.kernel.log_likelihood(&p));
        Ok(())
    }
}
