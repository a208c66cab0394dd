//! The training objective: the negative evidence lower bound of eq. (4),
//!
//! ```text
//! -ELBO(x) = E_{e(z|x)}[-log d(x|z)] + KL[e(z|x) || N(0, I)]
//! ```
//!
//! - Reconstruction term, Gaussian decoder d(x|z) = N(x | mu_d(z), sigma_d) (eq. 1) over the P
//!   pixels, Monte-Carlo estimated with M reparametrised samples z^(j) = mu_e + eps^(j) sigma_e
//!   (eqs. C2-C3):
//!   `(1/M) sum_j sum_p (x_p - mu_d(z^(j))_p)^2 / (2 sigma_d^2)  +  P log(sigma_d sqrt(2 pi))`.
//!   The constant makes the value a true bound on -log p(x) in nats, comparable across sigma_d;
//!   it has no gradient.
//! - KL term, analytic for a diagonal Gaussian against N(0, I):
//!   `(1/2) sum_k (sigma_k^2 + mu_k^2 - 1 - 2 log sigma_k)`.
//!
//! Both are summed over pixels / latent dimensions and averaged over the batch, so the loss is in
//! nats per image. The paper takes M = 10 (Appendix C); the default here is M = 1, the usual
//! choice, because the cost of a step grows linearly with M (option `--samples`).

use burn::tensor::Tensor;

/// ln(sqrt(2 pi)).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_7;

/// Batch-mean terms of the negative ELBO, each a one-element tensor (differentiable).
#[derive(Debug, Clone)]
pub struct ElboTerms {
    /// -ELBO = rec + kl, nats per image.
    pub loss: Tensor<1>,
    /// Expected negative log-likelihood E[-log d(x|z)], nats per image.
    pub rec: Tensor<1>,
    /// KL[e(z|x) || N(0,I)], nats per image.
    pub kl: Tensor<1>,
}

/// Per-image terms of the negative ELBO, each `[B]`.
#[derive(Debug, Clone)]
pub struct ElboPerImage {
    pub loss: Tensor<1>,
    pub rec: Tensor<1>,
    pub kl: Tensor<1>,
    /// Mean over samples of sum_p (x_p - mu_d,p)^2 / sigma_d^2, i.e. chi^2 of the reconstruction.
    pub chi2: Tensor<1>,
}

/// Negative ELBO of each image in the batch.
///
/// - `x`: data `[B, 1, H, W]`,
/// - `reconstruction`: mu_d(z^(j)) `[M*B, 1, H, W]`, sample-major (see [`arclight_vae::model::VaeOutput`]),
/// - `mu`, `log_sigma`: the encoding `[B, D]`,
/// - `sigma_d`: decoder standard deviation (eq. 1).
pub fn negative_elbo_per_image(
    x: Tensor<4>,
    reconstruction: Tensor<4>,
    mu: Tensor<2>,
    log_sigma: Tensor<2>,
    sigma_d: f64,
) -> ElboPerImage {
    let [b, c, h, w] = x.dims();
    let [mb, _, _, _] = reconstruction.dims();
    assert!(
        b > 0 && mb % b == 0,
        "reconstruction has {mb} rows, not a multiple of the batch size {b}"
    );
    let m = mb / b;
    let pixels = c * h * w;
    let x_rep = x.repeat_dim(0, m);
    // sum over pixels of the squared residual, per sample and image: [M, B]
    let sq: Tensor<2> = (x_rep - reconstruction)
        .square()
        .reshape([m, b, pixels])
        .sum_dim(2)
        .reshape([m, b]);
    // mean over the M samples (eq. C3): [B]
    let sq_mean: Tensor<1> = sq.mean_dim(0).reshape([b]);
    let inv_var = 1.0 / (sigma_d * sigma_d);
    let chi2 = sq_mean.clone().mul_scalar(inv_var);
    let rec = sq_mean
        .mul_scalar(0.5 * inv_var)
        .add_scalar(pixels as f64 * (sigma_d.ln() + LN_SQRT_2PI));
    let sigma2 = log_sigma.clone().mul_scalar(2.0).exp();
    let kl_terms = sigma2 + mu.square() - log_sigma.mul_scalar(2.0);
    let kl_terms = kl_terms.sub_scalar(1.0);
    let kl: Tensor<1> = kl_terms.sum_dim(1).mul_scalar(0.5).reshape([b]);
    ElboPerImage {
        loss: rec.clone() + kl.clone(),
        rec,
        kl,
        chi2,
    }
}

/// Batch mean of the negative ELBO (the training loss), see [`negative_elbo_per_image`].
pub fn negative_elbo(
    x: Tensor<4>,
    reconstruction: Tensor<4>,
    mu: Tensor<2>,
    log_sigma: Tensor<2>,
    sigma_d: f64,
) -> ElboTerms {
    let p = negative_elbo_per_image(x, reconstruction, mu, log_sigma, sigma_d);
    ElboTerms {
        loss: p.loss.mean(),
        rec: p.rec.mean(),
        kl: p.kl.mean(),
    }
}
