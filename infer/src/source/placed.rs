//! An image placed on the source plane with a free position, scale and intensity: the source
//! model of Chianese et al. 2020 eq. (17),
//!
//!   I_src(theta) = i * d( (theta_1 - x_src) / s, (theta_2 - y_src) / s ),
//!
//! where d is a 64x64 image (the VAE decoder output, or a real galaxy stamp for mocks) addressed in
//! normalised coordinates: the image spans [-1, 1] on both axes, so it covers
//! [x_src - s, x_src + s] x [y_src - s, y_src + s] arcsec and `s` is its half-width (the paper's
//! prior s ~ N(5, 1) then makes the 64-pixel decoder image about 10" across, the size of its
//! 256x256 field). Pixel centres sit at the centres of 64 equal cells (PyTorch `grid_sample` with
//! `align_corners=False`, which the paper's Pyro implementation used), row 0 at the top (largest y),
//! bilinear interpolation in between and zero outside ([`super::bilinear::sample`]).

use burn::tensor::Tensor;

use super::bilinear;
use crate::lens::col;
use crate::lens::light::SurfaceBrightness;

/// A batch of images `[1 or B, H, W]` placed at (x_src, y_src) with half-width s and intensity i.
#[derive(Clone, Debug)]
pub struct PlacedImage {
    /// `[1, H, W]` (shared) or `[B, H, W]`.
    pub image: Tensor<3>,
    /// Centre x, `[B]`, arcsec.
    pub x_src: Tensor<1>,
    /// Centre y, `[B]`, arcsec.
    pub y_src: Tensor<1>,
    /// Half-width of the image on the sky, `[B]`, arcsec.
    pub s: Tensor<1>,
    /// Intensity factor, `[B]`.
    pub i: Tensor<1>,
}

impl SurfaceBrightness for PlacedImage {
    fn brightness(&self, x: &Tensor<2>, y: &Tensor<2>) -> Tensor<2> {
        let [_, h, w] = self.image.dims();
        let inv_s = col(&self.s).recip();
        // Normalised coordinate t in [-1, 1] -> pixel coordinate (t + 1) / 2 * size - 1/2.
        let u = ((x.clone() - col(&self.x_src)) * inv_s.clone())
            .add_scalar(1.0)
            .mul_scalar(w as f64 / 2.0)
            .sub_scalar(0.5);
        let v = ((y.clone() - col(&self.y_src)) * inv_s)
            .neg()
            .add_scalar(1.0)
            .mul_scalar(h as f64 / 2.0)
            .sub_scalar(0.5);
        bilinear::sample(&self.image, &u, &v) * col(&self.i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t1(v: &[f32], d: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), d)
    }

    #[test]
    fn pixel_centres_land_on_their_values_and_orientation_is_kept() {
        let d = Device::flex();
        // 2x2 image, row 0 on top: [[1, 2], [3, 4]].
        let img = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 2., 3., 4.], [1, 2, 2]), &d);
        let src = PlacedImage {
            image: img,
            x_src: t1(&[0.1], &d),
            y_src: t1(&[-0.2], &d),
            s: t1(&[1.0], &d),
            i: t1(&[2.0], &d),
        };
        // Pixel centres at normalised +-0.5: (x, y) = (x_src -+ 0.5, y_src +- 0.5).
        let xs = Tensor::<2>::from_data(
            TensorData::new(vec![-0.4f32, 0.6, -0.4, 0.6, 5.0], [1, 5]),
            &d,
        );
        let ys = Tensor::<2>::from_data(
            TensorData::new(vec![0.3f32, 0.3, -0.7, -0.7, 0.0], [1, 5]),
            &d,
        );
        let v: Vec<f32> = src.brightness(&xs, &ys).into_data().iter::<f32>().collect();
        let want = [2.0, 4.0, 6.0, 8.0, 0.0];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{v:?}");
        }
    }
}
