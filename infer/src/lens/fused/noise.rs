//! The per-pixel Gaussian likelihood of GIGA-Lens eq. 6 with its derivative with respect to the
//! model image, shared by the fused kernels:
//!
//!   log L = -1/2 sum_used [ (d - M)^2 / sigma^2 + ln(2 pi sigma^2) ],  sigma^2 = sigma_bkg^2 + M p,
//!   dlogL/dM = (d - M)/sigma^2 + p/2 ((d - M)^2/sigma^4 - 1/sigma^2),
//!
//! with p = 1/(gain t_exp) when Poisson noise is modelled (else 0).

use anyhow::{Result, ensure};

/// Observation-side constants of the likelihood.
#[derive(Clone, Debug)]
pub struct PixelNoise {
    obs: Vec<f32>,
    bkg_var: Vec<f32>,
    weight: Vec<f32>,
    poisson: f32,
}

impl PixelNoise {
    /// Checked constants for `n` pixels.
    pub fn new(
        n: usize,
        obs: &[f64],
        bkg_var: &[f64],
        poisson: Option<f64>,
        mask: Option<&[bool]>,
    ) -> Result<Self> {
        ensure!(
            obs.len() == n,
            "fused model: observation has {} pixels, grid has {n}",
            obs.len()
        );
        ensure!(
            bkg_var.len() == n,
            "fused model: background variance has {} pixels, grid has {n}",
            bkg_var.len()
        );
        ensure!(
            bkg_var.iter().all(|v| v.is_finite() && *v > 0.0),
            "fused model: background variance must be positive and finite"
        );
        if let Some(p) = poisson {
            ensure!(
                p.is_finite() && p >= 0.0,
                "fused model: 1/(gain t_exp) = {p} must be >= 0"
            );
        }
        let weight: Vec<f32> = match mask {
            Some(m) => {
                ensure!(
                    m.len() == n,
                    "fused model: mask has {} pixels, grid has {n}",
                    m.len()
                );
                m.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect()
            }
            None => vec![1.0; n],
        };
        Ok(Self {
            obs: obs.iter().map(|&v| v as f32).collect(),
            bkg_var: bkg_var.iter().map(|&v| v as f32).collect(),
            weight,
            poisson: poisson.unwrap_or(0.0) as f32,
        })
    }

    /// log L of a model image, and dlogL/dM into `g_model` when given.
    pub fn eval(&self, model: &[f32], g_model: Option<&mut [f32]>) -> f64 {
        let ln2pi = (2.0 * std::f64::consts::PI).ln();
        let pz = self.poisson;
        let mut ll = 0.0f64;
        match g_model {
            None => {
                for i in 0..model.len() {
                    if self.weight[i] == 0.0 {
                        continue;
                    }
                    let var = self.bkg_var[i] + model[i] * pz;
                    let r = self.obs[i] - model[i];
                    ll += (r * r / var) as f64 + (var as f64).ln() + ln2pi;
                }
            }
            Some(g) => {
                for i in 0..model.len() {
                    if self.weight[i] == 0.0 {
                        g[i] = 0.0;
                        continue;
                    }
                    let var = self.bkg_var[i] + model[i] * pz;
                    let r = self.obs[i] - model[i];
                    let iv = 1.0 / var;
                    ll += (r * r * iv) as f64 + (var as f64).ln() + ln2pi;
                    g[i] = r * iv + 0.5 * pz * (r * r * iv * iv - iv);
                }
            }
        }
        -0.5 * ll
    }
}
