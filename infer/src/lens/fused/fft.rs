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

/// The transforms of a P x Q padded array for h x w images and kernels up to kh x kw.
///
/// Real-to-complex transforms along rows (only the rows that hold data), complex transforms along the
/// Q/2 + 1 non-redundant columns, stored column-major so all columns go through one batched call; the
/// inverse transforms back only the rows that are kept. About 2.2x fewer 1-D transforms than a full
/// complex 2-D FFT of the padded array.
#[derive(Clone)]
struct FftPlan {
    h: usize,
    w: usize,
    p: usize,
    q: usize,
    /// Q/2 + 1 non-redundant columns of the row transforms.
    qh: usize,
    row_fwd: Arc<dyn RealToComplex<f32>>,
    row_inv: Arc<dyn ComplexToReal<f32>>,
    col_fwd: Arc<dyn Fft<f32>>,
    col_inv: Arc<dyn Fft<f32>>,
}

/// Per-thread work buffers (the fused kernels call the convolution from rayon workers).
#[derive(Default)]
struct Work {
    /// Column-major spectrum `[qh][p]`.
    spec: Vec<Complex32>,
    /// A second spectrum: the sum over phases, or the saved transform of the adjoint's input.
    acc: Vec<Complex32>,
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

impl FftPlan {
    fn new(h: usize, w: usize, kh: usize, kw: usize) -> Self {
        let (p, q) = (smooth_size(h + kh - 1), smooth_size(w + kw - 1));
        let mut real = RealFftPlanner::<f32>::new();
        let mut cplx = FftPlanner::<f32>::new();
        Self {
            h,
            w,
            p,
            q,
            qh: q / 2 + 1,
            row_fwd: real.plan_fft_forward(q),
            row_inv: real.plan_fft_inverse(q),
            col_fwd: cplx.plan_fft_forward(p),
            col_inv: cplx.plan_fft_inverse(p),
        }
    }

    /// The transform of the odd `kh` x `kw` kernel `k` placed at the origin, with 1/(P Q) folded in.
    fn kernel_spectrum(&self, k: &[f32], kh: usize, kw: usize) -> Vec<Complex32> {
        assert!(kh % 2 == 1 && kw % 2 == 1 && k.len() == kh * kw);
        assert!(kh + self.h - 1 <= self.p && kw + self.w - 1 <= self.q);
        let mut hat = self.with_work(|c, wk| {
            c.forward(wk, 0, kh, |i, row| {
                row[..kw].copy_from_slice(&k[i * kw..(i + 1) * kw])
            });
            wk.spec.clone()
        });
        let s = 1.0 / (self.p * self.q) as f32;
        hat.iter_mut().for_each(|v| *v *= s);
        hat
    }

    fn with_work<R>(&self, f: impl FnOnce(&Self, &mut Work) -> R) -> R {
        WORK.with(|w| {
            let mut w = w.borrow_mut();
            resize(&mut w.spec, self.qh * self.p);
            resize(&mut w.acc, self.qh * self.p);
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

    /// Transforms `wk.spec` back and hands rows `first..first + rows` of the real P x Q result to
    /// `take(k, row)`.
    fn inverse(
        &self,
        wk: &mut Work,
        first: usize,
        rows: usize,
        mut take: impl FnMut(usize, &[f32]),
    ) {
        let p = self.p;
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
}

/// A kernel prepared for FFT convolution of h x w images.
#[derive(Clone)]
pub struct FftConv {
    plan: FftPlan,
    rh: usize,
    rw: usize,
    /// Kernel transform, column-major `[qh][p]`, with 1/(P Q) folded in.
    kernel_hat: Vec<Complex32>,
}

impl std::fmt::Debug for FftConv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FftConv {{ image {}x{}, padded {}x{} }}",
            self.plan.h, self.plan.w, self.plan.p, self.plan.q
        )
    }
}

impl FftConv {
    /// Prepares the odd `kh` x `kw` kernel `k` (row-major) for `h` x `w` images.
    pub fn new(k: &[f32], kh: usize, kw: usize, h: usize, w: usize) -> Self {
        let plan = FftPlan::new(h, w, kh, kw);
        let kernel_hat = plan.kernel_spectrum(k, kh, kw);
        Self {
            plan,
            rh: kh / 2,
            rw: kw / 2,
            kernel_hat,
        }
    }

    /// `out = K * img` (true convolution, "same" size).
    pub fn convolve(&self, img: &[f32], out: &mut [f32]) {
        let (h, w, rw) = (self.plan.h, self.plan.w, self.rw);
        self.plan.with_work(|c, wk| {
            c.forward(wk, 0, h, |i, row| {
                row[..w].copy_from_slice(&img[i * w..(i + 1) * w])
            });
            multiply(&mut wk.spec, &self.kernel_hat, false);
            c.inverse(wk, self.rh, h, |k, row| {
                out[k * w..(k + 1) * w].copy_from_slice(&row[rw..rw + w])
            });
        });
    }

    /// `g_in = K^T g_out`.
    pub fn adjoint(&self, g_out: &[f32], g_in: &mut [f32]) {
        let (h, w, rh, rw) = (self.plan.h, self.plan.w, self.rh, self.rw);
        self.plan.with_work(|c, wk| {
            c.forward(wk, rh, h, |r, row| {
                row[rw..rw + w].copy_from_slice(&g_out[r * w..(r + 1) * w])
            });
            multiply(&mut wk.spec, &self.kernel_hat, true);
            c.inverse(wk, 0, h, |k, row| {
                g_in[k * w..(k + 1) * w].copy_from_slice(&row[..w])
            });
        });
    }
}

/// `x *= k` (or `x *= conj(k)`), element-wise.
fn multiply(x: &mut [Complex32], k: &[Complex32], conj: bool) {
    if conj {
        x.iter_mut().zip(k).for_each(|(x, k)| *x *= k.conj());
    } else {
        x.iter_mut().zip(k).for_each(|(x, k)| *x *= k);
    }
}

/// A sum of "same" convolutions of several h x w images with their own odd kernels of one size,
/// `out = sum_t K_t * img_t`, and its adjoint `g_t = K_t^T g_out`: one forward transform per image
/// and a single inverse (the adjoint: one forward, one inverse per kernel). Used by
/// [`super::polyphase`] for the PSF on a supersampled grid.
#[derive(Clone)]
pub struct FftSum {
    plan: FftPlan,
    rh: usize,
    rw: usize,
    hats: Vec<Vec<Complex32>>,
}

impl std::fmt::Debug for FftSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FftSum {{ {} kernels, image {}x{}, padded {}x{} }}",
            self.hats.len(),
            self.plan.h,
            self.plan.w,
            self.plan.p,
            self.plan.q
        )
    }
}

impl FftSum {
    /// Prepares `kernels` (each odd `kh` x `kw`, row-major) for `h` x `w` images.
    pub fn new(kernels: &[Vec<f32>], kh: usize, kw: usize, h: usize, w: usize) -> Self {
        let plan = FftPlan::new(h, w, kh, kw);
        let hats = kernels
            .iter()
            .map(|k| plan.kernel_spectrum(k, kh, kw))
            .collect();
        Self {
            plan,
            rh: kh / 2,
            rw: kw / 2,
            hats,
        }
    }

    /// `out = sum_t K_t * img_t`, where `fill(t, i, row)` writes row `i` (length w) of image `t`.
    pub fn convolve_sum(&self, mut fill: impl FnMut(usize, usize, &mut [f32]), out: &mut [f32]) {
        let (h, w, rw) = (self.plan.h, self.plan.w, self.rw);
        self.plan.with_work(|c, wk| {
            wk.acc
                .iter_mut()
                .for_each(|v| *v = Complex32::new(0.0, 0.0));
            for (t, hat) in self.hats.iter().enumerate() {
                c.forward(wk, 0, h, |i, row| fill(t, i, &mut row[..w]));
                for ((a, x), k) in wk.acc.iter_mut().zip(&wk.spec).zip(hat) {
                    *a += x * k;
                }
            }
            std::mem::swap(&mut wk.spec, &mut wk.acc);
            c.inverse(wk, self.rh, h, |k, row| {
                out[k * w..(k + 1) * w].copy_from_slice(&row[rw..rw + w])
            });
        });
    }

    /// `g_t = K_t^T g_out` for every kernel t, handed over as `take(t, i, row)` (row `i` of `g_t`).
    pub fn adjoint_each(&self, g_out: &[f32], mut take: impl FnMut(usize, usize, &[f32])) {
        let (h, w, rh, rw) = (self.plan.h, self.plan.w, self.rh, self.rw);
        self.plan.with_work(|c, wk| {
            c.forward(wk, rh, h, |r, row| {
                row[rw..rw + w].copy_from_slice(&g_out[r * w..(r + 1) * w])
            });
            std::mem::swap(&mut wk.spec, &mut wk.acc);
            for (t, hat) in self.hats.iter().enumerate() {
                for ((x, a), k) in wk.spec.iter_mut().zip(&wk.acc).zip(hat) {
                    *x = a * k.conj();
                }
                c.inverse(wk, 0, h, |i, row| take(t, i, &row[..w]));
            }
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
