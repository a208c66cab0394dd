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

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::cell::RefCell;
use std::sync::Arc;

/// Kernels with at least this many taps (kh x kw) are applied by FFT in the fused kernels: with real
/// transforms the FFT beats the direct loop from about 9x9 on an 80x80 image (`infer bench`, figures in
/// docs/performance.md).
pub const FFT_MIN_TAPS: usize = 9 * 9;

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
///
/// Real-to-complex transforms along rows (only the rows that hold data), complex transforms along the
/// Q/2 + 1 non-redundant columns, stored column-major so all columns go through one batched call; the
/// inverse transforms back only the rows that are kept. About 2.2x fewer 1-D transforms than a full
/// complex 2-D FFT of the padded array.
#[derive(Clone)]
pub struct FftConv {
    h: usize,
    w: usize,
    rh: usize,
    rw: usize,
    p: usize,
    q: usize,
    /// Q/2 + 1 non-redundant columns of the row transforms.
    qh: usize,
    /// Kernel transform, column-major `[qh][p]`, with 1/(P Q) folded in.
    kernel_hat: Vec<Complex32>,
    row_fwd: Arc<dyn RealToComplex<f32>>,
    row_inv: Arc<dyn ComplexToReal<f32>>,
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

/// Per-thread work buffers (the fused kernels call the convolution from rayon workers).
#[derive(Default)]
struct Work {
    /// Column-major spectrum `[qh][p]`.
    spec: Vec<Complex32>,
    row_real: Vec<f32>,
    row_spec: Vec<Complex32>,
    scratch_c: Vec<Complex32>,
    scratch_r: Vec<Complex32>,
}

thread_local! {
    static WORK: RefCell<Work> = RefCell::new(Work::default());
}

fn resize<T: Clone + Default>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.clear();
        v.resize(n, T::default());
    }
}

impl FftConv {
    /// Prepares the odd `kh` x `kw` kernel `k` (row-major) for `h` x `w` images.
    pub fn new(k: &[f32], kh: usize, kw: usize, h: usize, w: usize) -> Self {
        assert!(kh % 2 == 1 && kw % 2 == 1 && k.len() == kh * kw);
        let (p, q) = (smooth_size(h + kh - 1), smooth_size(w + kw - 1));
        let mut real = RealFftPlanner::<f32>::new();
        let mut cplx = FftPlanner::<f32>::new();
        let mut c = Self {
            h,
            w,
            rh: kh / 2,
            rw: kw / 2,
            p,
            q,
            qh: q / 2 + 1,
            kernel_hat: Vec::new(),
            row_fwd: real.plan_fft_forward(q),
            row_inv: real.plan_fft_inverse(q),
            col_fwd: cplx.plan_fft_forward(p),
            col_inv: cplx.plan_fft_inverse(p),
        };
        // The kernel's transform: rows 0..kh of the padded array hold it at columns 0..kw.
        let mut hat = Vec::new();
        c.with_work(|c, wk| {
            c.forward(wk, 0, kh, |i, row| {
                row[..kw].copy_from_slice(&k[i * kw..(i + 1) * kw])
            });
            hat = wk.spec.clone();
        });
        let s = 1.0 / (p * q) as f32;
        hat.iter_mut().for_each(|v| *v *= s);
        c.kernel_hat = hat;
        c
    }

    fn with_work<R>(&self, f: impl FnOnce(&Self, &mut Work) -> R) -> R {
        WORK.with(|w| {
            let mut w = w.borrow_mut();
            resize(&mut w.spec, self.qh * self.p);
            resize(&mut w.row_real, self.q);
            resize(&mut w.row_spec, self.qh);
            let n_c = self
                .col_fwd
                .get_inplace_scratch_len()
                .max(self.col_inv.get_inplace_scratch_len());
            resize(&mut w.scratch_c, n_c);
            let n_r = self
                .row_fwd
                .get_scratch_len()
                .max(self.row_inv.get_scratch_len());
            resize(&mut w.scratch_r, n_r);
            f(self, &mut w)
        })
    }

    /// Forward 2-D transform into `wk.spec` of a P x Q array whose rows `first..first + rows` are
    /// written by `fill(k, row)` (row `first + k`, zeroed, length Q) and whose other rows are zero.
    fn forward(
        &self,
        wk: &mut Work,
        first: usize,
        rows: usize,
        mut fill: impl FnMut(usize, &mut [f32]),
    ) {
        let p = self.p;
        wk.spec
            .iter_mut()
            .for_each(|v| *v = Complex32::new(0.0, 0.0));
        for k in 0..rows {
            let i = first + k;
            wk.row_real.iter_mut().for_each(|v| *v = 0.0);
            fill(k, &mut wk.row_real);
            self.row_fwd
                .process_with_scratch(&mut wk.row_real, &mut wk.row_spec, &mut wk.scratch_r)
                .expect("row FFT buffers have the planned sizes");
            for (j, v) in wk.row_spec.iter().enumerate() {
                wk.spec[j * p + i] = *v;
            }
        }
        self.col_fwd
            .process_with_scratch(&mut wk.spec, &mut wk.scratch_c);
    }

    /// Multiplies the spectrum by the kernel's (or its conjugate), transforms back and hands rows
    /// `first..first + rows` of the real P x Q result to `take(k, row)`.
    fn inverse(
        &self,
        wk: &mut Work,
        conj: bool,
        first: usize,
        rows: usize,
        mut take: impl FnMut(usize, &[f32]),
    ) {
        let p = self.p;
        if conj {
            wk.spec
                .iter_mut()
                .zip(&self.kernel_hat)
                .for_each(|(x, k)| *x *= k.conj());
        } else {
            wk.spec
                .iter_mut()
                .zip(&self.kernel_hat)
                .for_each(|(x, k)| *x *= k);
        }
        self.col_inv
            .process_with_scratch(&mut wk.spec, &mut wk.scratch_c);
        let last = self.qh - 1;
        for k in 0..rows {
            let i = first + k;
            for (j, v) in wk.row_spec.iter_mut().enumerate() {
                *v = wk.spec[j * p + i];
            }
            // The result is real: the DC (and, for even Q, Nyquist) bins' imaginary parts are
            // round-off, which the real inverse transform refuses.
            wk.row_spec[0].im = 0.0;
            if self.q.is_multiple_of(2) {
                wk.row_spec[last].im = 0.0;
            }
            self.row_inv
                .process_with_scratch(&mut wk.row_spec, &mut wk.row_real, &mut wk.scratch_r)
                .expect("row FFT buffers have the planned sizes");
            take(k, &wk.row_real);
        }
    }

    /// `out = K * img` (true convolution, "same" size).
    pub fn convolve(&self, img: &[f32], out: &mut [f32]) {
        let (h, w, rw) = (self.h, self.w, self.rw);
        self.with_work(|c, wk| {
            c.forward(wk, 0, h, |i, row| {
                row[..w].copy_from_slice(&img[i * w..(i + 1) * w])
            });
            c.inverse(wk, false, c.rh, h, |k, row| {
                out[k * w..(k + 1) * w].copy_from_slice(&row[rw..rw + w])
            });
        });
    }

    /// `g_in = K^T g_out`.
    pub fn adjoint(&self, g_out: &[f32], g_in: &mut [f32]) {
        let (h, w, rh, rw) = (self.h, self.w, self.rh, self.rw);
        self.with_work(|c, wk| {
            c.forward(wk, rh, h, |r, row| {
                row[rw..rw + w].copy_from_slice(&g_out[r * w..(r + 1) * w])
            });
            c.inverse(wk, true, 0, h, |k, row| {
                g_in[k * w..(k + 1) * w].copy_from_slice(&row[..w])
            });
        });
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
        // padded 48 x 60 (even Q) and 27 x 27 (odd P and Q: no Nyquist column)
        for (h, w, kh, kw) in [(37, 50, 11, 7), (19, 21, 9, 7)] {
            check_against_direct(h, w, kh, kw);
        }
    }

    fn check_against_direct(h: usize, w: usize, kh: usize, kw: usize) {
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
