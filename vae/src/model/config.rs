//! Architecture hyper-parameters of the VAE (Chianese et al. 2020, Appendix D, Tables D1/D2).
//!
//! The paper's network is the default; latent size and channel widths are options so that the
//! ablations of Appendix D (32 / 128 latent dimensions) and tiny test networks use the same code.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

/// Side of the square images the network reads and writes. Fixed by the layer stack: four
/// stride-2 convolutions take 64 -> 4, the last 4x4 convolution takes 4 -> 1 (Table D1).
pub const IMAGE_SIZE: usize = 64;

/// The paper's encoder widths of the four strided blocks (Table D1); the decoder mirrors them.
pub const PAPER_WIDTHS: [usize; 4] = [64, 128, 256, 512];

/// The paper's width of the last 4x4 encoder convolution, the input of the two Linear heads.
pub const PAPER_HEAD_WIDTH: usize = 4096;

/// The paper's latent dimension (Sec. 2.1, "We used 64 latent-space dimensions").
pub const PAPER_LATENT_DIM: usize = 64;

/// The paper's decoder standard deviation sigma_d (Sec. 2.1, eq. 1): the noise level of the data.
pub const PAPER_SIGMA_D: f64 = 1.0 / 50.0;

/// Shape of the VAE. Serialised verbatim into `checkpoint.json` (`architecture`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    /// Dimension D of the latent vector z.
    pub latent_dim: usize,
    /// Output channels of the four stride-2 encoder convolutions (paper: 64, 128, 256, 512).
    /// The decoder uses them in reverse order (512, 256, 128, 64), Table D2.
    pub widths: [usize; 4],
    /// Output channels of the final 4x4 encoder convolution (paper: 4096).
    pub head_width: usize,
    /// Image side (always [`IMAGE_SIZE`]; stored so a loader can check it).
    pub image_size: usize,
    /// Standard deviation sigma_d of the Gaussian decoder d(x|z) = N(x | mu_d(z), sigma_d), eq. (1).
    /// Part of the model (it defines the likelihood the ELBO is computed with).
    pub sigma_d: f64,
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig {
            latent_dim: PAPER_LATENT_DIM,
            widths: PAPER_WIDTHS,
            head_width: PAPER_HEAD_WIDTH,
            image_size: IMAGE_SIZE,
            sigma_d: PAPER_SIGMA_D,
        }
    }
}

impl VaeConfig {
    /// Check that the numbers describe a network this code can build.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.latent_dim >= 1,
            "--latent-dim must be at least 1 (got {})",
            self.latent_dim
        );
        ensure!(
            self.widths.iter().all(|&w| w >= 1),
            "--widths must be four positive channel counts (got {:?})",
            self.widths
        );
        ensure!(
            self.head_width >= 1,
            "--head-width must be at least 1 (got {})",
            self.head_width
        );
        ensure!(
            self.image_size == IMAGE_SIZE,
            "image size {} is not supported: the network of Tables D1/D2 maps {IMAGE_SIZE}x{IMAGE_SIZE} images",
            self.image_size
        );
        ensure!(
            self.sigma_d.is_finite() && self.sigma_d > 0.0,
            "--sigma-d must be a positive number (got {})",
            self.sigma_d
        );
        Ok(())
    }

    /// Parse `--widths 64,128,256,512`.
    pub fn parse_widths(s: &str) -> Result<[usize; 4]> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        ensure!(
            parts.len() == 4,
            "--widths {s}: expected four comma-separated channel counts, e.g. 64,128,256,512"
        );
        let mut w = [0usize; 4];
        for (k, p) in parts.iter().enumerate() {
            w[k] = p
                .parse()
                .map_err(|_| anyhow::anyhow!("--widths {s}: '{p}' is not a positive integer"))?;
            ensure!(w[k] >= 1, "--widths {s}: channel counts must be positive");
        }
        Ok(w)
    }

    /// Number of trainable parameters of the decoder (transposed convolutions + BatchNorm affine).
    pub fn decoder_parameters(&self) -> usize {
        let [w1, w2, w3, w4] = self.widths;
        let chans = [self.latent_dim, w4, w3, w2, w1, 1];
        let conv: usize = chans.windows(2).map(|c| c[0] * c[1] * 16).sum();
        conv + 2 * (w4 + w3 + w2 + w1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_default_is_valid_and_widths_parse() {
        VaeConfig::default().validate().unwrap();
        assert_eq!(
            VaeConfig::parse_widths("64, 128,256,512").unwrap(),
            PAPER_WIDTHS
        );
        assert!(VaeConfig::parse_widths("64,128").is_err());
        assert!(VaeConfig::parse_widths("64,0,1,1").is_err());
        // Table D2: 64*512*16 + 512*256*16 + 256*128*16 + 128*64*16 + 64*16 weights + BN affine.
        assert_eq!(VaeConfig::default().decoder_parameters(), 3_279_744);
    }
}
