//! Forward-only evaluation of a VAE on a whole data split: the mean negative ELBO (eq. 4) and
//! its terms, the reconstruction chi^2 per pixel, and the encoded means for the latent prior.
//!
//! The model must be in validation mode on a plain (non-autodiff) device (`vae.valid()`), so that
//! BatchNorm uses its running statistics and no autodiff graph is built.

use super::batches::{chunks, images_tensor};
use super::elbo::negative_elbo_per_image;
use arclight_vae::dataset::GalaxySet;
use arclight_vae::model::Vae;
use arclight_vae::model::vae::standard_normal;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

/// Images per forward pass during evaluation.
pub const EVAL_BATCH: usize = 64;

/// Mean figures of a split (nats per image unless stated).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetMetrics {
    /// Number of images evaluated.
    pub n: usize,
    /// Mean ELBO (higher is better) = -(rec + kl).
    pub elbo: f64,
    /// Mean E[-log d(x|z)].
    pub rec: f64,
    /// Mean KL[e(z|x) || N(0, I)].
    pub kl: f64,
    /// Mean over images of sum_p (x_p - mu_d(z)_p)^2 / sigma_d^2 divided by the pixel count.
    pub chi2_per_pixel: f64,
    /// The same with each image's own pixel-noise sigma (from the data set) instead of sigma_d:
    /// about 1 when reconstructions are as close to the data as its noise allows.
    pub chi2_per_pixel_noise: f64,
}

/// Evaluate `vae` (validation mode) on every image of `set`, with `samples` reparametrised
/// samples per image drawn from `StdRng::seed_from_u64(seed)` (a fixed seed makes the figures of
/// successive epochs comparable).
pub fn evaluate_set(
    vae: &Vae,
    set: &GalaxySet,
    samples: usize,
    sigma_d: f64,
    seed: u64,
    device: &Device,
) -> SetMetrics {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = vae.decoder.latent_dim;
    let pixels = (set.size * set.size) as f64;
    let (mut rec, mut kl, mut chi2, mut chi2_noise) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (s, e) in chunks(set.n, EVAL_BATCH) {
        let idx: Vec<usize> = (s..e).collect();
        let x = images_tensor(set, &idx, device);
        let eps = standard_normal(&mut rng, samples * idx.len(), d, device);
        let out = vae.forward(x.clone(), eps);
        let p = negative_elbo_per_image(
            x,
            out.reconstruction,
            out.encoding.mu,
            out.encoding.log_sigma,
            sigma_d,
        );
        rec += p.rec.sum().into_scalar::<f32>() as f64;
        kl += p.kl.sum().into_scalar::<f32>() as f64;
        let per_image: Vec<f32> = p.chi2.into_data().try_to_vec().expect("chi2 is f32");
        for (i, c) in idx.iter().zip(per_image) {
            chi2 += c as f64;
            let noise = set.noise_sigma[*i] as f64;
            chi2_noise += c as f64 * (sigma_d * sigma_d) / (noise * noise);
        }
    }
    let n = set.n.max(1) as f64;
    SetMetrics {
        n: set.n,
        elbo: -(rec + kl) / n,
        rec: rec / n,
        kl: kl / n,
        chi2_per_pixel: chi2 / n / pixels,
        chi2_per_pixel_noise: chi2_noise / n / pixels,
    }
}

/// The encoded means mu_e(x) of every image of `set` (row-major `n x D`, f64), for the prior fit.
pub fn encode_means(vae: &Vae, set: &GalaxySet, device: &Device) -> Vec<f64> {
    let mut out = Vec::with_capacity(set.n * vae.decoder.latent_dim);
    for (s, e) in chunks(set.n, EVAL_BATCH) {
        let idx: Vec<usize> = (s..e).collect();
        let enc = vae.encoder.forward(images_tensor(set, &idx, device));
        let v: Vec<f32> = enc
            .mu
            .into_data()
            .try_to_vec()
            .expect("encoder output is f32");
        out.extend(v.into_iter().map(f64::from));
    }
    out
}
