//! The fused-kernel likelihood: when a model file describes exactly the GIGA-Lens model (one EPL
//! and one external shear, one Sersic lens light, one Sersic source, ellipticities as e1/e2),
//! the likelihood and its gradient come from the hand-written kernel
//! [`crate::lens::fused::FusedGigaLens`] instead of burn autodiff: same physics, same eq. (6),
//! ~40x faster at the batch sizes of multistart MAP, VI and many-chain HMC.

use anyhow::Result;

use super::forward::{grid_of, psf_of, sersic_amp_scale};
use super::layout::{Slot, Slots};
use super::observation::Observation;
use super::spec::{ComponentKind, ModelSpec};
use crate::lens::fused::{FusedGigaLens, NUM_PARAMS};
use crate::prob::LogLikelihood;

/// Parameter keys in the fused layout, per component role.
const MASS: [&str; 6] = ["theta_e", "gamma", "e1", "e2", "center_x", "center_y"];
const SHEAR: [&str; 2] = ["gamma1", "gamma2"];
const SERSIC: [&str; 7] = [
    "amp", "r_sersic", "n_sersic", "e1", "e2", "center_x", "center_y",
];

/// The fused GIGA-Lens likelihood over a model file's free parameters.
#[derive(Clone)]
pub struct FusedLikelihood {
    kernel: FusedGigaLens,
    /// For each of the 22 kernel parameters: a theta column or a constant.
    map: [Slot; NUM_PARAMS],
    /// Factor from the model file's value to the kernel's, per kernel parameter: the Sersic
    /// amplitudes get [`sersic_amp_scale`] (surface brightness per arcsec^2 -> counts/s per
    /// pixel), exactly as the tensor path; 1 elsewhere.
    scale: [f64; NUM_PARAMS],
    dim: usize,
}

impl FusedLikelihood {
    /// `Some` when `spec` is the GIGA-Lens model shape, else `None` (use the tensor path).
    pub fn try_new(spec: &ModelSpec, slots: &Slots, obs: &Observation) -> Result<Option<Self>> {
        let kinds = |cs: &[super::spec::Component]| cs.iter().map(|c| c.kind).collect::<Vec<_>>();
        let shape_ok = kinds(&spec.mass) == [ComponentKind::Epl, ComponentKind::Shear]
            && kinds(&spec.lens_light) == [ComponentKind::Sersic]
            && kinds(&spec.source) == [ComponentKind::Sersic]
            && spec.components().all(|c| !c.q_phi)
            && slots.latent.is_none();
        if !shape_ok {
            return Ok(None);
        }
        let mut map = [Slot::Fixed(0.0); NUM_PARAMS];
        let mut scale = [1.0; NUM_PARAMS];
        let mut k = 0;
        let roles: [(&super::spec::Component, &[&str]); 4] = [
            (&spec.mass[0], &MASS),
            (&spec.mass[1], &SHEAR),
            (&spec.lens_light[0], &SERSIC),
            (&spec.source[0], &SERSIC),
        ];
        for (c, keys) in roles {
            for key in keys {
                map[k] = slots.get(&format!("{}.{key}", c.label))?;
                if *key == "amp" {
                    scale[k] = sersic_amp_scale(spec);
                }
                k += 1;
            }
        }
        let (data, bkg_var, poisson) = super::fused_vae::noise_inputs(spec, obs);
        let kernel = FusedGigaLens::new(
            grid_of(spec)?,
            &psf_of(spec)?,
            spec.psf_order,
            &data,
            &bkg_var,
            poisson,
            Some(&obs.mask),
        )?;
        Ok(Some(FusedLikelihood {
            kernel,
            map,
            scale,
            dim: slots.dim,
        }))
    }

    fn expand(&self, theta: &[f64], batch: usize) -> Vec<f64> {
        let mut p = vec![0.0; batch * NUM_PARAMS];
        for (row, out) in theta.chunks(self.dim).zip(p.chunks_mut(NUM_PARAMS)) {
            for ((o, s), f) in out.iter_mut().zip(&self.map).zip(&self.scale) {
                *o = f * match *s {
                    Slot::Column(j) => row[j],
                    Slot::Fixed(v) => v,
                };
            }
        }
        p
    }

    /// Noise-free model images, row-major `[batch, H, W]`.
    pub fn model_images(&self, theta: &[f64], batch: usize) -> Vec<f32> {
        let p = self.expand(theta, batch);
        p.chunks(NUM_PARAMS)
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
        let p = self.expand(theta, batch);
        let (values, g22) = self.kernel.value_and_grad(&p);
        loglike.copy_from_slice(&values);
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (b, gk) in g22.chunks(NUM_PARAMS).enumerate() {
            for (k, s) in self.map.iter().enumerate() {
                if let Slot::Column(j) = *s {
                    // Chain rule through the unit factor of `expand`.
                    grad[b * self.dim + j] += gk[k] * self.scale[k];
                }
            }
        }
        Ok(())
    }

    fn value(&self, theta: &[f64], batch: usize, loglike: &mut [f64]) -> Result<()> {
        let p = self.expand(theta, batch);
        loglike.copy_from_slice(&self.kernel.log_likelihood(&p));
        Ok(())
    }
}
