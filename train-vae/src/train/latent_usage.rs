//! How an encoder uses its latent space, for comparing latent dimensions: the KL of e(z|x) to
//! N(0, I) per dimension averaged over a split (the KL term of eq. 4 split by dimension), and each
//! dimension's activity Cov_x(mu_e(x)_u); a dimension is active when its activity exceeds 0.01
//! (Burda, Grosse & Salakhutdinov 2016, "active units").

use super::batches::{chunks, images_tensor};
use super::evaluate::EVAL_BATCH;
use arclight_vae::dataset::GalaxySet;
use arclight_vae::model::Vae;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Activity above which a latent dimension counts as active.
pub const ACTIVE_THRESHOLD: f64 = 0.01;

/// Per-dimension use of the latent space over a split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatentUsage {
    /// Mean over images of KL[e(z_u|x) || N(0, 1)], nats, per dimension u.
    pub kl_per_dim: Vec<f64>,
    /// Variance over images of the encoded mean mu_e(x)_u, per dimension u.
    pub activity_per_dim: Vec<f64>,
    /// Dimensions with activity > [`ACTIVE_THRESHOLD`].
    pub active_dims: usize,
}

/// [`LatentUsage`] of `vae` (validation mode) on every image of `set`.
pub fn latent_usage(vae: &Vae, set: &GalaxySet, device: &Device) -> LatentUsage {
    let d = vae.decoder.latent_dim;
    let mut kl = vec![0.0f64; d];
    let (mut sum, mut sum2) = (vec![0.0f64; d], vec![0.0f64; d]);
    for (s, e) in chunks(set.n, EVAL_BATCH) {
        let idx: Vec<usize> = (s..e).collect();
        let enc = vae.encoder.forward(images_tensor(set, &idx, device));
        let mu: Vec<f32> = enc
            .mu
            .into_data()
            .try_to_vec()
            .expect("encoder output is f32");
        let ls: Vec<f32> = enc
            .log_sigma
            .into_data()
            .try_to_vec()
            .expect("encoder output is f32");
        for (row_mu, row_ls) in mu.chunks(d).zip(ls.chunks(d)) {
            for u in 0..d {
                let (m, l) = (row_mu[u] as f64, row_ls[u] as f64);
                kl[u] += 0.5 * (m * m + (2.0 * l).exp() - 1.0 - 2.0 * l);
                sum[u] += m;
                sum2[u] += m * m;
            }
        }
    }
    let n = set.n.max(1) as f64;
    let activity: Vec<f64> = (0..d)
        .map(|u| {
            let mean = sum[u] / n;
            (sum2[u] / n - mean * mean).max(0.0)
        })
        .collect();
    LatentUsage {
        kl_per_dim: kl.iter().map(|k| k / n).collect(),
        active_dims: activity.iter().filter(|a| **a > ACTIVE_THRESHOLD).count(),
        activity_per_dim: activity,
    }
}
