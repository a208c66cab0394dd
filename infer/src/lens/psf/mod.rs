//! Point-spread function and its convolution with model images (Chianese eq. 9, GIGA-Lens
//! Sec. 2.1.1).
//!
//! - `Psf::Gaussian`: a circular Gaussian of standard deviation sigma (arcsec), sampled at pixel
//!   centres out to `ceil(truncate * sigma / pixel_scale)` pixels and normalised to unit sum.
//!   It is separable, so it is applied as two 1-D passes (a column and a row convolution), which
//!   costs 2K instead of K^2 multiply-adds per pixel and keeps flex's slow conv backward small.
//! - `Psf::Pixelated`: an odd-sized kernel (e.g. from FITS), normalised to unit sum, applied by
//!   direct 2-D convolution.
//!
//! Convolution is the mathematical one (the kernel is flipped before burn's cross-correlation),
//! with zero padding and output the size of the input ("same"), like scipy's
//! `fftconvolve(mode="same")` that lenstronomy uses. Kernels are used in the array orientation
//! they are given in: a kernel read from FITS is stored in the same row order as an observation
//! read from FITS, so the two stay consistent whatever the display convention.

use std::path::Path;

pub mod subgrid;

use anyhow::{Context, Result, ensure};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

/// Where the PSF acts on a supersampled grid (model file `[psf] convolution`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsfOrder {
    /// Convolve the supersampled image with the kernel re-sampled to the sub-pixel grid, then
    /// average sub-pixels (the GIGA-Lens simulator; lenstronomy `supersampling_convolution=True`).
    /// A pixelated kernel is re-sampled by lenstronomy's `subgrid_kernel` with `iterations`
    /// corrections (GIGA-Lens: 100, lenstronomy's `PSF` class: 5).
    SubGrid { iterations: usize },
    /// Average sub-pixels first, then convolve on the image grid (lenstronomy's default, cheaper;
    /// exact only when the image is smooth on the pixel scale).
    Pixel,
}

impl Default for PsfOrder {
    fn default() -> Self {
        PsfOrder::SubGrid {
            iterations: subgrid::GIGALENS_ITERATIONS,
        }
    }
}

/// A point-spread function.
#[derive(Clone, Debug, PartialEq)]
pub enum Psf {
    /// No blurring.
    None,
    /// Separable Gaussian: the normalised 1-D kernel (odd length) applied along x then y.
    Gaussian {
        /// Standard deviation in arcsec.
        sigma: f64,
        /// Truncation radius in units of sigma.
        truncate: f64,
        /// Normalised 1-D kernel, odd length, centre in the middle.
        kernel_1d: Vec<f64>,
    },
    /// Pixelated kernel, odd sizes, normalised to unit sum, row-major `[ny, nx]`.
    Pixelated {
        /// Kernel rows.
        ny: usize,
        /// Kernel columns.
        nx: usize,
        /// Kernel values, row-major.
        kernel: Vec<f64>,
    },
}

impl Psf {
    /// Gaussian PSF of standard deviation `sigma` arcsec on pixels of `pixel_scale` arcsec,
    /// truncated at `truncate` sigma (4 is scipy's `gaussian_filter` default).
    pub fn gaussian(sigma: f64, pixel_scale: f64, truncate: f64) -> Result<Self> {
        ensure!(
            sigma.is_finite() && sigma > 0.0,
            "PSF: Gaussian sigma {sigma} must be positive"
        );
        ensure!(
            pixel_scale > 0.0,
            "PSF: pixel scale {pixel_scale} must be positive"
        );
        ensure!(
            truncate > 0.0,
            "PSF: truncation {truncate} must be positive"
        );
        let r = (truncate * sigma / pixel_scale).ceil() as i64;
        let mut k: Vec<f64> = (-r..=r)
            .map(|i| {
                let d = i as f64 * pixel_scale / sigma;
                (-0.5 * d * d).exp()
            })
            .collect();
        let s: f64 = k.iter().sum();
        k.iter_mut().for_each(|v| *v /= s);
        Ok(Psf::Gaussian {
            sigma,
            truncate,
            kernel_1d: k,
        })
    }

    /// A pixelated kernel from values (row-major `[ny, nx]`), checked and normalised.
    pub fn pixelated(ny: usize, nx: usize, kernel: Vec<f64>) -> Result<Self> {
        ensure!(
            kernel.len() == ny * nx,
            "PSF: kernel has {} values, expected {ny}x{nx}",
            kernel.len()
        );
        ensure!(
            ny % 2 == 1 && nx % 2 == 1,
            "PSF: kernel size {ny}x{nx} must be odd in both axes"
        );
        ensure!(
            kernel.iter().all(|v| v.is_finite()),
            "PSF: kernel has non-finite values"
        );
        let s: f64 = kernel.iter().sum();
        ensure!(s > 0.0, "PSF: kernel sums to {s}, must be positive");
        Ok(Psf::Pixelated {
            ny,
            nx,
            kernel: kernel.into_iter().map(|v| v / s).collect(),
        })
    }

    /// For a pixelated kernel with negative pixels (an empirical PSF's noise or a bad background
    /// subtraction): their number, the most negative value and their share of the absolute sum.
    pub fn negative_pixels(&self) -> Option<(usize, f64, f64)> {
        let Psf::Pixelated { kernel, .. } = self else {
            return None;
        };
        let neg: Vec<f64> = kernel.iter().copied().filter(|v| *v < 0.0).collect();
        if neg.is_empty() {
            return None;
        }
        let abs: f64 = kernel.iter().map(|v| v.abs()).sum();
        let min = neg.iter().copied().fold(0.0, f64::min);
        Some((neg.len(), min, -neg.iter().sum::<f64>() / abs))
    }

    /// A pixelated kernel read from the primary image of a FITS file (normalised).
    pub fn from_fits(path: &Path) -> Result<Self> {
        let img = arclight_core::fits::read_image_f64(path, 0)
            .with_context(|| format!("reading PSF kernel {}", path.display()))?;
        Self::pixelated(img.ny, img.nx, img.data)
            .with_context(|| format!("PSF kernel {}", path.display()))
    }

    /// The kernel on a grid `k` times finer than `pixel_scale` (unit sum): a Gaussian sampled at
    /// the sub-pixel centres with the same truncation, a pixelated kernel re-sampled by
    /// [`subgrid::subgrid_kernel`].
    pub fn on_subgrid(&self, k: usize, pixel_scale: f64, iterations: usize) -> Psf {
        if k <= 1 {
            return self.clone();
        }
        match self {
            Psf::None => Psf::None,
            Psf::Gaussian {
                sigma, truncate, ..
            } => Psf::gaussian(*sigma, pixel_scale / k as f64, *truncate)
                .expect("a valid Gaussian stays valid on a finer grid"),
            Psf::Pixelated { ny, nx, kernel } => {
                // lenstronomy's algorithm takes square kernels: pad a non-square one with zeros
                // (the same PSF) to its larger side.
                let n = (*ny).max(*nx);
                let (oy, ox) = ((n - ny) / 2, (n - nx) / 2);
                let mut square = vec![0.0; n * n];
                for i in 0..*ny {
                    square[(i + oy) * n + ox..(i + oy) * n + ox + nx]
                        .copy_from_slice(&kernel[i * nx..(i + 1) * nx]);
                }
                let sub = subgrid::subgrid_kernel(
                    &subgrid::KernelGrid {
                        ny: n,
                        nx: n,
                        values: square,
                    },
                    k,
                    iterations,
                );
                Psf::pixelated(sub.ny, sub.nx, sub.values)
                    .expect("the sub-grid kernel is odd-sized, finite and sums to 1")
            }
        }
    }

    /// The full 2-D kernel, row-major, with its shape (a Gaussian as the outer product).
    pub fn kernel_2d(&self) -> (usize, usize, Vec<f64>) {
        match self {
            Psf::None => (1, 1, vec![1.0]),
            Psf::Gaussian { kernel_1d, .. } => {
                let n = kernel_1d.len();
                let mut k = Vec::with_capacity(n * n);
                for a in kernel_1d {
                    for b in kernel_1d {
                        k.push(a * b);
                    }
                }
                (n, n, k)
            }
            Psf::Pixelated { ny, nx, kernel } => (*ny, *nx, kernel.clone()),
        }
    }

    /// Convolve `[B, H, W]` images with the PSF ("same" size, zero padding).
    pub fn convolve(&self, image: Tensor<3>) -> Tensor<3> {
        match self {
            Psf::None => image,
            Psf::Gaussian { kernel_1d, .. } => {
                let n = kernel_1d.len();
                let x = image.unsqueeze_dim::<4>(1);
                let x = conv_direct(x, 1, n, kernel_1d);
                let x = conv_direct(x, n, 1, kernel_1d);
                x.squeeze_dim::<3>(1)
            }
            Psf::Pixelated { ny, nx, kernel } => {
                conv_direct(image.unsqueeze_dim::<4>(1), *ny, *nx, kernel).squeeze_dim::<3>(1)
            }
        }
    }
}

/// Direct "same" convolution of `[B, 1, H, W]` with an odd `kh` x `kw` kernel (row-major).
fn conv_direct(x: Tensor<4>, kh: usize, kw: usize, kernel: &[f64]) -> Tensor<4> {
    // burn's conv2d is a cross-correlation: flip the kernel to convolve.
    let flipped: Vec<f64> = kernel.iter().rev().copied().collect();
    let w = Tensor::<4>::from_data(TensorData::new(flipped, [1, 1, kh, kw]), &x.device());
    conv2d(
        x,
        w,
        None,
        ConvOptions::new([1, 1], [kh / 2, kw / 2], [1, 1], 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn gaussian_kernel_is_normalised_and_symmetric() {
        let p = Psf::gaussian(0.05, 0.04, 4.0).unwrap();
        let (ny, nx, k) = p.kernel_2d();
        assert_eq!((ny, nx), (11, 11));
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for i in 0..ny {
            for j in 0..nx {
                assert!((k[i * nx + j] - k[(ny - 1 - i) * nx + (nx - 1 - j)]).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn pixelated_kernel_is_normalised_and_checked() {
        let p = Psf::pixelated(3, 3, vec![1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]).unwrap();
        let (_, _, k) = p.kernel_2d();
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(Psf::pixelated(2, 2, vec![1.0; 4]).is_err());
        assert!(Psf::pixelated(3, 3, vec![0.0; 9]).is_err());
        assert!(Psf::pixelated(1, 1, vec![f64::NAN]).is_err());
        assert_eq!(p.negative_pixels(), None);
        // an empirical kernel with noise below zero: two pixels, -0.5 of a sum of 25.5 (26.5 absolute)
        let noisy = vec![-0.25, 2.0, 1.0, 2.0, 16.0, 2.0, 1.0, 2.0, -0.25];
        let (n, min, share) = Psf::pixelated(3, 3, noisy)
            .unwrap()
            .negative_pixels()
            .unwrap();
        assert_eq!(n, 2);
        assert!((min + 0.25 / 25.5).abs() < 1e-12, "{min}");
        assert!((share - 0.5 / 26.5).abs() < 1e-12, "{share}");
    }

    #[test]
    fn convolving_a_delta_gives_the_kernel_in_place() {
        // An asymmetric kernel checks that the convolution is not a correlation.
        let device = Device::flex();
        let kernel = vec![0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 5.0];
        let p = Psf::pixelated(3, 3, kernel.clone()).unwrap();
        let mut img = vec![0.0f32; 25];
        img[2 * 5 + 2] = 1.0;
        let t = Tensor::<3>::from_data(TensorData::new(img, [1, 5, 5]), &device);
        let out: Vec<f64> = p.convolve(t).into_data().iter::<f64>().collect();
        for i in 0..3 {
            for j in 0..3 {
                let got = out[(i + 1) * 5 + (j + 1)];
                assert!(
                    (got - kernel[i * 3 + j] / 8.0).abs() < 1e-6,
                    "({i},{j}) {got}"
                );
            }
        }
        assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn separable_gaussian_equals_the_full_kernel() {
        let device = Device::flex();
        let g = Psf::gaussian(0.08, 0.05, 3.0).unwrap();
        let (ny, nx, k) = g.kernel_2d();
        let full = Psf::pixelated(ny, nx, k).unwrap();
        let img: Vec<f32> = (0..12 * 10).map(|i| ((i * 37 % 11) as f32) / 7.0).collect();
        let t = Tensor::<3>::from_data(TensorData::new(img, [1, 12, 10]), &device);
        let a: Vec<f64> = g.convolve(t.clone()).into_data().iter::<f64>().collect();
        let b: Vec<f64> = full.convolve(t).into_data().iter::<f64>().collect();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{x} {y}");
        }
    }
}

#[cfg(test)]
mod fits_tests {
    use super::*;

    #[test]
    fn kernel_from_fits_is_normalised_and_bad_kernels_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("psf.fits");
        let k: Vec<f32> = (0..25).map(|i| 1.0 + (i % 5) as f32).collect();
        arclight_core::fits::write_image_f32(&good, 5, 5, &k, &[]).unwrap();
        let p = Psf::from_fits(&good).unwrap();
        let (ny, nx, kk) = p.kernel_2d();
        assert_eq!((ny, nx), (5, 5));
        assert!((kk.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((kk[1] / kk[0] - 2.0).abs() < 1e-6, "row-major order kept");
        let even = dir.path().join("even.fits");
        arclight_core::fits::write_image_f32(&even, 4, 4, &[1.0; 16], &[]).unwrap();
        let err = format!("{:#}", Psf::from_fits(&even).unwrap_err());
        assert!(err.contains("even.fits") && err.contains("odd"), "{err}");
        let missing = format!(
            "{:#}",
            Psf::from_fits(&dir.path().join("nope.fits")).unwrap_err()
        );
        assert!(missing.contains("nope.fits"), "{missing}");
    }
}
