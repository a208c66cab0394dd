//! Image-plane pixel grids (regular and supersampled).
//!
//! Convention (see `lens/README.md`): the grid is centred on the origin, x grows to the right,
//! y grows upwards, coordinates are in arcsec. Images are stored row-major with **row 0 the top
//! row** (largest y), column 0 the left column (smallest x). Pixel (i, j) therefore has its centre
//! at `x = (j - (nx-1)/2) * pixel_scale`, `y = ((ny-1)/2 - i) * pixel_scale`.
//!
//! A supersampled grid with factor k splits every pixel into k x k sub-pixels whose centres sit
//! at offsets `((a + 1/2)/k - 1/2) * pixel_scale` from the pixel centre (a = 0..k-1), the same
//! sub-pixel layout as lenstronomy's `supersampling_factor`. The supersampled image is itself a
//! regular (ny*k) x (nx*k) grid of pitch `pixel_scale / k`, row 0 at the top, so averaging k x k
//! blocks (GIGA-Lens Sec. 2.1.1) gives back the image grid.

use anyhow::{Result, ensure};
use burn::tensor::{Device, Tensor, TensorData};

/// A rectangular pixel grid of `ny` rows by `nx` columns with square pixels, sampled `k` x `k`
/// times per pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Number of pixel rows (the y direction).
    pub ny: usize,
    /// Number of pixel columns (the x direction).
    pub nx: usize,
    /// Pixel side in arcsec.
    pub pixel_scale: f64,
    /// Supersampling factor k (1 = one ray per pixel).
    pub supersampling: usize,
}

impl Grid {
    /// A grid of `ny` x `nx` pixels of `pixel_scale` arcsec, supersampled `k` times per axis.
    pub fn new(ny: usize, nx: usize, pixel_scale: f64, supersampling: usize) -> Result<Self> {
        ensure!(ny > 0 && nx > 0, "grid: size {ny}x{nx} must be positive");
        ensure!(
            pixel_scale.is_finite() && pixel_scale > 0.0,
            "grid: pixel scale {pixel_scale} must be positive and finite"
        );
        ensure!(
            supersampling >= 1,
            "grid: supersampling factor must be at least 1"
        );
        Ok(Self {
            ny,
            nx,
            pixel_scale,
            supersampling,
        })
    }

    /// Number of image pixels, `ny * nx`.
    pub fn num_pixels(&self) -> usize {
        self.ny * self.nx
    }

    /// Rows and columns of the supersampled grid, `(ny*k, nx*k)`.
    pub fn super_shape(&self) -> (usize, usize) {
        (self.ny * self.supersampling, self.nx * self.supersampling)
    }

    /// Number of rays traced per image, `ny * nx * k^2`.
    pub fn num_rays(&self) -> usize {
        let (h, w) = self.super_shape();
        h * w
    }

    /// Host copy of the supersampled ray positions, row-major over the (ny*k, nx*k) grid.
    pub fn super_coords_host(&self) -> (Vec<f64>, Vec<f64>) {
        let k = self.supersampling;
        Self::regular(self.ny * k, self.nx * k, self.pixel_scale / k as f64)
    }

    /// Host copy of the image pixel centres, row-major over (ny, nx).
    pub fn pixel_coords_host(&self) -> (Vec<f64>, Vec<f64>) {
        Self::regular(self.ny, self.nx, self.pixel_scale)
    }

    /// Centres of a regular `h` x `w` grid of pitch `d`, centred on 0, row 0 at the top.
    fn regular(h: usize, w: usize, d: f64) -> (Vec<f64>, Vec<f64>) {
        let mut xs = Vec::with_capacity(h * w);
        let mut ys = Vec::with_capacity(h * w);
        let cx = (w as f64 - 1.0) / 2.0;
        let cy = (h as f64 - 1.0) / 2.0;
        for i in 0..h {
            for j in 0..w {
                xs.push((j as f64 - cx) * d);
                ys.push((cy - i as f64) * d);
            }
        }
        (xs, ys)
    }

    /// Supersampled ray positions as `[1, ny*k*nx*k]` tensors (x, y) on `device`, in the
    /// device's default float type (built in f64 on the host first).
    pub fn super_coords(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let (xs, ys) = self.super_coords_host();
        (row_tensor(xs, device), row_tensor(ys, device))
    }

    /// Image pixel centres as `[1, ny*nx]` tensors (x, y).
    pub fn pixel_coords(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let (xs, ys) = self.pixel_coords_host();
        (row_tensor(xs, device), row_tensor(ys, device))
    }
}

fn row_tensor(v: Vec<f64>, device: &Device) -> Tensor<2> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [1, n]), device)
}

/// Average k x k blocks of a supersampled image `[B, ny*k * nx*k]` (flattened row-major) into
/// `[B, ny, nx]`. Implemented as reshape + sum, which the reference measurements found faster
/// than `avg_pool2d` on flex (and it has a cheap backward: a broadcast).
pub fn pool(image: Tensor<2>, grid: &Grid) -> Tensor<3> {
    let k = grid.supersampling;
    let b = image.dims()[0];
    if k == 1 {
        return image.reshape([b, grid.ny, grid.nx]);
    }
    image
        .reshape([b * grid.ny, k, grid.nx, k])
        .sum_dim(3)
        .sum_dim(1)
        .reshape([b, grid.ny, grid.nx])
        .div_scalar((k * k) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_centres_follow_the_convention() {
        let g = Grid::new(2, 3, 0.5, 1).unwrap();
        let (x, y) = g.pixel_coords_host();
        assert_eq!(x, vec![-0.5, 0.0, 0.5, -0.5, 0.0, 0.5]);
        assert_eq!(y, vec![0.25, 0.25, 0.25, -0.25, -0.25, -0.25]);
    }

    #[test]
    fn subpixels_average_to_pixel_centres() {
        let g = Grid::new(3, 4, 0.1, 3).unwrap();
        let (sx, sy) = g.super_coords_host();
        let (px, py) = g.pixel_coords_host();
        let (h, w) = g.super_shape();
        for i in 0..g.ny {
            for j in 0..g.nx {
                let (mut mx, mut my) = (0.0, 0.0);
                for a in 0..3 {
                    for c in 0..3 {
                        let idx = (i * 3 + a) * w + j * 3 + c;
                        mx += sx[idx] / 9.0;
                        my += sy[idx] / 9.0;
                    }
                }
                assert!((mx - px[i * g.nx + j]).abs() < 1e-12);
                assert!((my - py[i * g.nx + j]).abs() < 1e-12);
            }
        }
        assert_eq!(h * w, g.num_rays());
    }

    #[test]
    fn pooling_a_constant_gives_the_constant() {
        let device = Device::flex();
        let g = Grid::new(5, 4, 0.1, 2).unwrap();
        let img = Tensor::<2>::full([3, g.num_rays()], 2.5, &device);
        let pooled = pool(img, &g);
        assert_eq!(pooled.dims(), [3, 5, 4]);
        let v: Vec<f64> = pooled.into_data().iter::<f64>().collect();
        assert!(v.iter().all(|&p| (p - 2.5).abs() < 1e-6));
    }

    #[test]
    fn pooling_averages_the_right_blocks() {
        let device = Device::flex();
        let g = Grid::new(1, 2, 1.0, 2).unwrap();
        // supersampled 2x4 image, row-major: left block {1,2,5,6}, right block {3,4,7,8}.
        let img = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2., 3., 4., 5., 6., 7., 8.], [1, 8]),
            &device,
        );
        let v: Vec<f64> = pool(img, &g).into_data().iter::<f64>().collect();
        assert!(
            (v[0] - 3.5).abs() < 1e-6 && (v[1] - 5.5).abs() < 1e-6,
            "{v:?}"
        );
    }
}
