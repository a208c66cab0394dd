//! Direct "same" 2-D convolution (zero padding) and its adjoint, on f32 row-major images, with
//! the inner loop over contiguous columns so it vectorises.
//!
//! Forward:  out[i, j] = sum_{a,b} K[a, b] in[i - (a - rh), j - (b - rw)]      (true convolution)
//! Adjoint:  g_in[p, q] = sum_{a,b} K[a, b] g_out[p + (a - rh), q + (b - rw)]

/// `out = K * img` for an `h` x `w` image and an odd `kh` x `kw` kernel.
pub fn convolve(img: &[f32], h: usize, w: usize, k: &[f32], kh: usize, kw: usize, out: &mut [f32]) {
    correlate_shifted(img, h, w, k, kh, kw, out, -1);
}

/// Adjoint of [`convolve`]: `g_in = K^T g_out`.
pub fn convolve_adjoint(
    g_out: &[f32],
    h: usize,
    w: usize,
    k: &[f32],
    kh: usize,
    kw: usize,
    g_in: &mut [f32],
) {
    correlate_shifted(g_out, h, w, k, kh, kw, g_in, 1);
}

/// out[i, j] = sum_{a,b} K[a,b] src[i + sign (a - rh), j + sign (b - rw)], zero outside.
#[allow(clippy::too_many_arguments)]
fn correlate_shifted(
    src: &[f32],
    h: usize,
    w: usize,
    k: &[f32],
    kh: usize,
    kw: usize,
    out: &mut [f32],
    sign: i64,
) {
    out.iter_mut().for_each(|v| *v = 0.0);
    let (rh, rw) = ((kh / 2) as i64, (kw / 2) as i64);
    for i in 0..h as i64 {
        let orow = &mut out[i as usize * w..(i as usize + 1) * w];
        for a in 0..kh as i64 {
            let si = i + sign * (a - rh);
            if si < 0 || si >= h as i64 {
                continue;
            }
            let srow = &src[si as usize * w..(si as usize + 1) * w];
            for b in 0..kw as i64 {
                let kv = k[(a * kw as i64 + b) as usize];
                let off = sign * (b - rw); // src column = j + off
                let j0 = (-off).max(0) as usize;
                let j1 = (w as i64 - off).min(w as i64).max(0) as usize;
                if j0 >= j1 {
                    continue;
                }
                let s0 = (j0 as i64 + off) as usize;
                let n = j1 - j0;
                for (o, s) in orow[j0..j1].iter_mut().zip(&srow[s0..s0 + n]) {
                    *o += kv * s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjoint_identity() {
        // <K x, y> = <x, K^T y> for an asymmetric kernel and non-square image.
        let (h, w, kh, kw) = (7, 9, 3, 5);
        let k: Vec<f32> = (0..kh * kw).map(|i| (i as f32 * 0.37).sin()).collect();
        let x: Vec<f32> = (0..h * w).map(|i| (i as f32 * 0.11).cos()).collect();
        let y: Vec<f32> = (0..h * w).map(|i| (i as f32 * 0.23).sin()).collect();
        let mut kx = vec![0.0; h * w];
        let mut kty = vec![0.0; h * w];
        convolve(&x, h, w, &k, kh, kw, &mut kx);
        convolve_adjoint(&y, h, w, &k, kh, kw, &mut kty);
        let a: f64 = kx
            .iter()
            .zip(&y)
            .map(|(p, q)| (*p as f64) * (*q as f64))
            .sum();
        let b: f64 = x
            .iter()
            .zip(&kty)
            .map(|(p, q)| (*p as f64) * (*q as f64))
            .sum();
        assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "{a} {b}");
    }

    #[test]
    fn delta_gives_kernel() {
        let (h, w) = (5, 5);
        let k: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut x = vec![0.0; 25];
        x[12] = 1.0;
        let mut out = vec![0.0; 25];
        convolve(&x, h, w, &k, 3, 3, &mut out);
        for a in 0..3 {
            for b in 0..3 {
                assert_eq!(out[(a + 1) * 5 + b + 1], k[a * 3 + b]);
            }
        }
    }
}

/// A PSF kernel in the form the fused kernels apply it: two 1-D passes for a separable
/// (Gaussian) PSF, one direct 2-D pass for a small pixelated kernel, FFT for a large one.
#[derive(Clone, Debug)]
pub enum Kernel {
    /// 1-D kernel applied along rows then columns.
    Separable(Vec<f32>),
    /// Full 2-D kernel `[kh, kw]`.
    Full(usize, usize, Vec<f32>),
    /// Full 2-D kernel of at least [`super::fft::FFT_MIN_TAPS`] taps, prepared for FFT.
    Fft(Box<super::fft::FftConv>),
}

impl Kernel {
    /// The kernel of a PSF, for images of `h` x `w` pixels.
    pub fn of(psf: &crate::lens::psf::Psf, h: usize, w: usize) -> Self {
        match psf {
            crate::lens::psf::Psf::Gaussian { kernel_1d, .. } => {
                Kernel::Separable(kernel_1d.iter().map(|&v| v as f32).collect())
            }
            other => {
                let (kh, kw, k) = other.kernel_2d();
                let k: Vec<f32> = k.into_iter().map(|v| v as f32).collect();
                if kh * kw >= super::fft::FFT_MIN_TAPS {
                    Kernel::Fft(Box::new(super::fft::FftConv::new(&k, kh, kw, h, w)))
                } else {
                    Kernel::Full(kh, kw, k)
                }
            }
        }
    }

    /// `out = K * img` (`tmp` is scratch of the same size).
    pub fn apply(&self, img: &[f32], h: usize, w: usize, tmp: &mut [f32], out: &mut [f32]) {
        match self {
            Kernel::Separable(k) => {
                convolve(img, h, w, k, 1, k.len(), tmp);
                convolve(tmp, h, w, k, k.len(), 1, out);
            }
            Kernel::Full(kh, kw, k) => convolve(img, h, w, k, *kh, *kw, out),
            Kernel::Fft(f) => f.convolve(img, out),
        }
    }

    /// `g_in = K^T g_out` (`tmp` is scratch of the same size).
    pub fn adjoint(&self, g_out: &[f32], h: usize, w: usize, tmp: &mut [f32], g_in: &mut [f32]) {
        match self {
            Kernel::Separable(k) => {
                convolve_adjoint(g_out, h, w, k, k.len(), 1, tmp);
                convolve_adjoint(tmp, h, w, k, 1, k.len(), g_in);
            }
            Kernel::Full(kh, kw, k) => convolve_adjoint(g_out, h, w, k, *kh, *kw, g_in),
            Kernel::Fft(f) => f.adjoint(g_out, g_in),
        }
    }
}
