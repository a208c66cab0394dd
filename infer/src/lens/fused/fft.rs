//! "Same" 2-D convolution (zero padding) by FFT, and its adjoint, for PSF kernels too large for the
//! direct loop of [`super::conv`] (issue: "convolved by FFT where the kernel is large"). Exactly the
//! operator of `conv::convolve` / `conv::convolve_adjoint`, up to f32 round-off.
//!
//! The image (h x w) is zero-padded to P x Q >= (h + kh - 1) x (w + kw - 1) (sizes with prime factors
//! 2, 3, 5 only), so the circular convolution equals the linear one; the kernel's transform is computed
//! once. Forward: `out = crop_{rh,rw}( IFFT( FFT(pad(img)) . K^ ) )`. Adjoint (a correlation): place
//! `g_out` at offset (rh, rw), multiply by conj(K^), keep the top-left h x w block; no wrap-around reaches
//! that block because P >= h + kh - 1.
//!
//! Cost ~ 2 complex 2-D FFTs of P x Q per image against h w kh kw multiply-adds for the direct loop; the
//! crossover measured by `infer bench` is where [`FFT_MIN_TAPS`] sits.

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Kernels with at least this many taps (kh x kw) are applied by FFT in the fused kernels. Measured by
/// `infer bench` (convolution + adjoint per image, direct / FFT, ms): 80x80: 13x13 0.28 / 0.21, 17x17
/// 0.45 / 0.21, 41x41 2.36 / 0.34; 256x256: 13x13 2.30 / 2.01, 17x17 3.80 / 2.15, 41x41 21.4 / 5.2. The
/// crossover is near 13x13, which keeps the direct loop (exact summation order, the GIGA-Lens PSF);
/// from 15x15 on FFT.
pub const FFT_MIN_TAPS: usize = 15 * 15;

/// Smallest n' >= n whose prime factors are 2, 3 and 5.
fn smooth_size(n: usize) -> usize {
    (n.max(1)..)
        .find(|&m| {
            let mut m = m;
            for p in [2, 3, 5] {
                while m % p == 0 {
                    m /= p;
                }
            }
            m == 1
        })
        .expect("a 5-smooth number exists above any n")
}

/// A kernel prepared for FFT convolution of h x w images.
#[derive(Clone)]
pub struct FftConv {
    h: usize,
    w: usize,
    rh: usize,
    rw: usize,
    p: usize,
    q: usize,
    kernel_hat: Vec<Complex32>,
    row_fwd: Arc<dyn Fft<f32>>,
    row_inv: Arc<dyn Fft<f32>>,
    col_fwd: Arc<dyn Fft<f32>>,
    col_inv: Arc<dyn Fft<f32>>,
}

impl std::fmt::Debug for FftConv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FftConv {{ image {}x{}, padded {}x{} }}",
            self.h, self.w, self.p, self.q
        )
    }
}

impl FftConv {
    /// Prepares the odd `kh` x `kw` kernel `k` (row-major) for `h` x `w` images.
    pub fn new(k: &[f32], kh: usize, kw: usize, h: usize, w: usize) -> Self {
        assert!(kh % 2 == 1 && kw % 2 == 1 && k.len() == kh * kw);
        let (p, q) = (smooth_size(h + kh - 1), smooth_size(w + kw - 1));
        let mut planner = FftPlanner::<f32>::new();
        let mut c = Self {
            h,
            w,
            rh: kh / 2,
            rw: kw / 2,
            p,
            q,
            kernel_hat: vec![Complex32::new(0.0, 0.0); p * q],
            row_fwd: planner.plan_fft_forward(q),
            row_inv: planner.plan_fft_inverse(q),
            col_fwd: planner.plan_fft_forward(p),
            col_inv: planner.plan_fft_inverse(p),
        };
        for a in 0..kh {
            for b in 0..kw {
                c.kernel_hat[a * q + b] = Complex32::new(k[a * kw + b], 0.0);
            }
        }
        let mut kh_buf = std::mem::take(&mut c.kernel_hat);
        c.fft2(&mut kh_buf, false);
        // Fold the 1/(P Q) of the inverse transform into the kernel.
        let s = 1.0 / (p * q) as f32;
        kh_buf.iter_mut().for_each(|v| *v *= s);
        c.kernel_hat = kh_buf;
        c
    }

    /// In-place 2-D transform of a P x Q array: rows, then columns.
    fn fft2(&self, a: &mut [Complex32], inverse: bool) {
        let (row, col) = if inverse {
            (&self.row_inv, &self.col_inv)
        } else {
            (&self.row_fwd, &self.col_fwd)
        };
        row.process(a);
        let mut column = vec![Complex32::new(0.0, 0.0); self.p];
        for j in 0..self.q {
            for i in 0..self.p {
                column[i] = a[i * self.q + j];
            }
            col.process(&mut column);
            for i in 0..self.p {
                a[i * self.q + j] = column[i];
            }
        }
    }

    /// `out = K * img` (true convolution, "same" size).
    pub fn convolve(&self, img: &[f32], out: &mut [f32]) {
        let (h, w, q) = (self.h, self.w, self.q);
        let mut a = vec![Complex32::new(0.0, 0.0); self.p * q];
        for i in 0..h {
            for j in 0..w {
                a[i * q + j].re = img[i * w + j];
            }
        }
        self.fft2(&mut a, false);
        a.iter_mut()
            .zip(&self.kernel_hat)
            .for_each(|(x, k)| *x *= k);
        self.fft2(&mut a, true);
        for i in 0..h {
            for j in 0..w {
                out[i * w + j] = a[(i + self.rh) * q + j + self.rw].re;
            }
        }
    }

    /// `g_in = K^T g_out`.
    pub fn adjoint(&self, g_out: &[f32], g_in: &mut [f32]) {
        let (h, w, q) = (self.h, self.w, self.q);
        let mut a = vec![Complex32::new(0.0, 0.0); self.p * q];
        for i in 0..h {
            for j in 0..w {
                a[(i + self.rh) * q + j + self.rw].re = g_out[i * w + j];
            }
        }
        self.fft2(&mut a, false);
        a.iter_mut()
            .zip(&self.kernel_hat)
            .for_each(|(x, k)| *x *= k.conj());
        self.fft2(&mut a, true);
        for i in 0..h {
            for j in 0..w {
                g_in[i * w + j] = a[i * q + j].re;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv::{convolve, convolve_adjoint};
    use super::*;

    #[test]
    fn smooth_sizes() {
        assert_eq!(smooth_size(1), 1);
        assert_eq!(smooth_size(7), 8);
        assert_eq!(smooth_size(101), 108);
        assert_eq!(smooth_size(120), 120);
    }

    /// FFT and direct convolution agree (forward and adjoint) for an asymmetric kernel on a
    /// non-square image, to f32 round-off relative to the output scale.
    #[test]
    fn matches_the_direct_convolution_and_its_adjoint() {
        let (h, w, kh, kw) = (37, 50, 11, 7);
        let k: Vec<f32> = (0..kh * kw)
            .map(|i| (i as f32 * 0.37).sin() + 0.3)
            .collect();
        let x: Vec<f32> = (0..h * w).map(|i| (i as f32 * 0.11).cos()).collect();
        let fc = FftConv::new(&k, kh, kw, h, w);
        let (mut d, mut f) = (vec![0.0; h * w], vec![0.0; h * w]);
        convolve(&x, h, w, &k, kh, kw, &mut d);
        fc.convolve(&x, &mut f);
        let scale = d.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in d.iter().zip(&f) {
            assert!((a - b).abs() < 2e-5 * scale, "{a} vs {b}");
        }
        convolve_adjoint(&x, h, w, &k, kh, kw, &mut d);
        fc.adjoint(&x, &mut f);
        for (a, b) in d.iter().zip(&f) {
            assert!((a - b).abs() < 2e-5 * scale, "adjoint {a} vs {b}");
        }
    }
}
