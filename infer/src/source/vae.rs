//! The VAE source adapter (Chianese et al. 2020 Sec. 3.3): the only place in the lensing library
//! that knows a neural decoder exists. The forward model sees a [`Decode`]: latent vectors
//! `z [B, D]` in, images `[B, 64, 64]` out, differentiable w.r.t. z on an autodiff device. The
//! decoded image is then placed on the source plane by [`super::placed::PlacedImage`] (eq. 17).

use super::folded_decoder::FoldedDecoder;
use burn::tensor::Tensor;

/// A differentiable map from latent vectors to source images.
pub trait Decode: Send + Sync {
    /// Latent dimension D.
    fn latent_dim(&self) -> usize;
    /// Images `[B, H, W]` (row 0 = top) for latents `z [B, D]`, on z's device.
    fn decode(&self, z: Tensor<2>) -> Tensor<3>;
    /// The same decoder folded for host evaluation with a hand-written vector-Jacobian product
    /// ([`FoldedDecoder`]), when it has one: the fused likelihood then skips burn autodiff.
    fn folded(&self) -> Option<&FoldedDecoder> {
        None
    }
}

/// A `train-vae` checkpoint as a source model: its decoder (weights constant, BatchNorm in
/// inference mode) and its fitted latent prior p(z) (covariance already scaled, x9 by default).
pub struct VaeCheckpoint {
    loaded: arclight_vae::checkpoint::LoadedDecoder,
    image_size: usize,
    folded: FoldedDecoder,
}

impl VaeCheckpoint {
    /// Load the decoder and prior of checkpoint `dir`. The weights live on the inner device of
    /// `device`; latents on the autodiff device get gradients through them.
    pub fn load(dir: &std::path::Path, device: &burn::tensor::Device) -> anyhow::Result<Self> {
        let loaded = arclight_vae::checkpoint::load_decoder(dir, &device.clone().inner())?;
        let image_size = loaded.meta.architecture.image_size;
        let folded = FoldedDecoder::from_decoder(&loaded.decoder, image_size)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        Ok(Self {
            loaded,
            image_size,
            folded,
        })
    }

    /// The latent prior as a multivariate normal (mean, Cholesky factor of the scaled covariance).
    pub fn prior(&self) -> anyhow::Result<crate::prob::MvNormal> {
        let p = &self.loaded.prior;
        crate::prob::MvNormal::from_cholesky(p.mean.clone(), p.chol.clone())
    }

    /// Metadata of the checkpoint (architecture, data provenance, training run).
    pub fn meta(&self) -> &arclight_vae::checkpoint::CheckpointMeta {
        &self.loaded.meta
    }

    /// The latent prior as stored (with the number of images it was fitted to and its jitter).
    pub fn latent_prior(&self) -> &arclight_vae::checkpoint::LatentPrior {
        &self.loaded.prior
    }
}

impl Decode for VaeCheckpoint {
    fn latent_dim(&self) -> usize {
        self.loaded.latent_dim
    }

    fn decode(&self, z: Tensor<2>) -> Tensor<3> {
        let b = z.dims()[0];
        self.loaded
            .decoder
            .forward(z)
            .reshape([b, self.image_size, self.image_size])
    }

    fn folded(&self) -> Option<&FoldedDecoder> {
        Some(&self.folded)
    }
}
