//! A fixed pixelated source (e.g. a real COSMOS stamp) placed on the source plane, for mocks:
//!
//!   I(beta) = amp * S( (beta_x - x_src)/d + (Ws-1)/2,  (Hs-1)/2 - (beta_y - y_src)/d ),
//!
//! where S is the image bilinearly interpolated at (column, row) pixel coordinates
//! ([`super::bilinear::sample`]), zero outside, and d is the source pixel size in arcsec. The
//! image follows the image-grid convention (row 0 = top = largest y), and its centre is the
//! midpoint of the pixel array. Values are surface brightness per unit area as in the image, so
//! a stamp in counts/s per pixel should be divided by d^2 by the caller if flux is to be kept.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Tensor, TensorData};

use super::bilinear;
use crate::lens::col;
use crate::lens::light::SurfaceBrightness;

/// A pixelated source image at position (x_src, y_src) with pixel size `pixel_scale` arcsec.
#[derive(Clone, Debug)]
pub struct PixelatedSource {
    /// `[1, Hs, Ws]` (shared) or `[B, Hs, Ws]`.
    pub image: Tensor<3>,
    /// Source pixel size, arcsec.
    pub pixel_scale: f64,
    /// Image centre x, `[B]`, arcsec.
    pub x_src: Tensor<1>,
    /// Image centre y, `[B]`, arcsec.
    pub y_src: Tensor<1>,
    /// Intensity factor, `[B]`.
    pub amp: Tensor<1>,
}

impl PixelatedSource {
    /// Read the primary image of a FITS file as a `[1, Hs, Ws]` tensor on `device`.
    pub fn image_from_fits(path: &Path, device: &Device) -> Result<Tensor<3>> {
        let img = arclight_core::fits::read_image_f64(path, 0)
            .with_context(|| format!("reading source image {}", path.display()))?;
        ensure!(
            img.data.iter().all(|v| v.is_finite()),
            "source image {}: contains non-finite pixels",
            path.display()
        );
        Ok(Tensor::from_data(
            TensorData::new(img.data, [1, img.ny, img.nx]),
            device,
        ))
    }
}

impl SurfaceBrightness for PixelatedSource {
    fn brightness(&self, x: &Tensor<2>, y: &Tensor<2>) -> Tensor<2> {
        let [_, hs, ws] = self.image.dims();
        let inv = 1.0 / self.pixel_scale;
        let u = (x.clone() - col(&self.x_src))
            .mul_scalar(inv)
            .add_scalar((ws as f64 - 1.0) / 2.0);
        let v = (y.clone() - col(&self.y_src))
            .mul_scalar(-inv)
            .add_scalar((hs as f64 - 1.0) / 2.0);
        bilinear::sample(&self.image, &u, &v) * col(&self.amp)
    }
}
