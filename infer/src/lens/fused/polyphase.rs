//! The PSF on the supersampled grid followed by k x k averaging (GIGA-Lens' simulator, lenstronomy's
//! `supersampling_convolution=True`), computed at pixel resolution as a sum over the k^2 sub-pixel
//! phases (a polyphase decomposition):
//!
//!   pool(K * S)[P] = sum_{c,d} (G_cd * S_cd)[P],   S_cd[M] = S[k M + (c, d)],
//!   G_cd[D] = 1/k^2 sum_{u,v < k} K[k D + (u, v) - (c, d) + r],
//!
//! with K the odd sub-grid kernel centred at r, "same" convolutions with zero padding on both sides.
//! The same operator as convolving the (k ny) x (k nx) image and averaging, with k^2 convolutions of
//! ny x nx images by kernels about k times narrower: for FFTs, one small forward transform per phase
//! and a single small inverse instead of a large forward and inverse. A separable (Gaussian) K gives
//! separable phase kernels, G_cd = g_c g_d^T.

use super::conv::{convolve, convolve_adjoint};
use super::fft::{FFT_MIN_TAPS, FftSum};
use crate::lens::psf::Psf;

/// The phase kernels of one sub-grid PSF.
#[derive(Clone, Debug)]
enum Phases {
    /// 1-D kernels g_c (c < k), each of odd length; phase (c, d) is g_c (rows) x g_d (columns).
    Separable(Vec<Vec<f32>>),
    /// Row-major n x n kernels, phase (c, d) at index c k + d.
    Full(usize, Vec<Vec<f32>>),
    /// The same kernels, prepared for FFT.
    Fft(Box<FftSum>),
}

/// Sub-grid PSF convolution plus k x k averaging on an `ny` x `nx` pixel grid.
#[derive(Clone, Debug)]
pub struct Polyphase {
    k: usize,
    ny: usize,
    nx: usize,
    phases: Phases,
}

/// 1-D phase kernels of the odd kernel `k1` for factor `k`: g_c[D] = 1/k sum_u k1[k D + u - c + r],
/// D in -R..=R with R = ceil(r / k) covering every tap.
fn phase_kernels_1d(k1: &[f64], k: usize) -> Vec<Vec<f64>> {
    let r = (k1.len() / 2) as i64;
    let kk = k as i64;
    let big_r = (r + kk - 1) / kk;
    (0..kk)
        .map(|c| {
            (-big_r..=big_r)
                .map(|d| {
                    (0..kk)
                        .filter_map(|u| {
                            let a = kk * d + u - c + r;
                            (0..k1.len() as i64).contains(&a).then(|| k1[a as usize])
                        })
                        .sum::<f64>()
                        / k as f64
                })
                .collect()
        })
        .collect()
}

/// 2-D phase kernels of the odd square-or-not kernel `kern` (`kh` x `kw`), all of one size n x n.
fn phase_kernels_2d(kern: &[f64], kh: usize, kw: usize, k: usize) -> (usize, Vec<Vec<f64>>) {
    let (rh, rw) = ((kh / 2) as i64, (kw / 2) as i64);
    let kk = k as i64;
    let big_r = ((rh.max(rw) + kk - 1) / kk) as usize;
    let n = 2 * big_r + 1;
    let at = |a: i64, b: i64| {
        if (0..kh as i64).contains(&a) && (0..kw as i64).contains(&b) {
            kern[a as usize * kw + b as usize]
        } else {
            0.0
        }
    };
    let mut out = Vec::with_capacity(k * k);
    for c in 0..kk {
        for d in 0..kk {
            let mut g = vec![0.0; n * n];
            for (i, dy) in (-(big_r as i64)..=big_r as i64).enumerate() {
                for (j, dx) in (-(big_r as i64)..=big_r as i64).enumerate() {
                    let mut acc = 0.0;
                    for u in 0..kk {
                        for v in 0..kk {
                            acc += at(kk * dy + u - c + rh, kk * dx + v - d + rw);
                        }
                    }
                    g[i * n + j] = acc / (k * k) as f64;
                }
            }
            out.push(g);
        }
    }
    (n, out)
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

impl Polyphase {
    /// The operator for the sub-grid kernel `sub_psf` (already on the sub-pixel grid), factor `k`,
    /// on `ny` x `nx` pixels.
    pub fn new(sub_psf: &Psf, k: usize, ny: usize, nx: usize) -> Self {
        let phases = match sub_psf {
            Psf::Gaussian { kernel_1d, .. } => Phases::Separable(
                phase_kernels_1d(kernel_1d, k)
                    .iter()
                    .map(|g| to_f32(g))
                    .collect(),
            ),
            other => {
                let (kh, kw, kern) = other.kernel_2d();
                let (n, g) = phase_kernels_2d(&kern, kh, kw, k);
                let g: Vec<Vec<f32>> = g.iter().map(|g| to_f32(g)).collect();
                if n * n >= FFT_MIN_TAPS {
                    Phases::Fft(Box::new(FftSum::new(&g, n, n, ny, nx)))
                } else {
                    Phases::Full(n, g)
                }
            }
        };
        Self { k, ny, nx, phases }
    }

    /// Length of the work buffer [`Self::apply`] and [`Self::adjoint`] need (none by FFT).
    pub fn work_len(&self) -> usize {
        match self.phases {
            Phases::Fft(_) => 0,
            _ => 4 * self.ny * self.nx,
        }
    }

    /// `model = pool(K * fine)` for the row-major (k ny) x (k nx) image `fine`.
    pub fn apply(&self, fine: &[f32], model: &mut [f32], work: &mut [f32]) {
        let (k, ny, nx) = (self.k, self.ny, self.nx);
        let wk = k * nx;
        let gather = |c: usize, d: usize, i: usize, row: &mut [f32]| {
            let src = &fine[(k * i + c) * wk..(k * i + c + 1) * wk];
            for (j, v) in row.iter_mut().enumerate() {
                *v = src[k * j + d];
            }
        };
        if let Phases::Fft(f) = &self.phases {
            f.convolve_sum(|t, i, row| gather(t / k, t % k, i, row), model);
            return;
        }
        let n = ny * nx;
        let (img, rest) = work.split_at_mut(n);
        let (out, rest) = rest.split_at_mut(n);
        let (tmp, rest) = rest.split_at_mut(n);
        let acc = &mut rest[..n];
        model.iter_mut().for_each(|v| *v = 0.0);
        for c in 0..k {
            // separable: the row passes of one phase row c are summed before its single column pass
            acc.iter_mut().for_each(|v| *v = 0.0);
            for d in 0..k {
                for i in 0..ny {
                    gather(c, d, i, &mut img[i * nx..(i + 1) * nx]);
                }
                match &self.phases {
                    Phases::Separable(g) => {
                        convolve(img, ny, nx, &g[d], 1, g[d].len(), tmp);
                        acc.iter_mut().zip(tmp.iter()).for_each(|(a, t)| *a += t);
                    }
                    Phases::Full(m, g) => {
                        convolve(img, ny, nx, &g[c * k + d], *m, *m, out);
                        model.iter_mut().zip(out.iter()).for_each(|(m, o)| *m += o);
                    }
                    Phases::Fft(_) => unreachable!("handled above"),
                }
            }
            if let Phases::Separable(g) = &self.phases {
                convolve(acc, ny, nx, &g[c], g[c].len(), 1, out);
                model.iter_mut().zip(out.iter()).for_each(|(m, o)| *m += o);
            }
        }
    }

    /// The adjoint of [`Self::apply`]: `g_fine = K^T pool^T g_model`.
    pub fn adjoint(&self, g_model: &[f32], g_fine: &mut [f32], work: &mut [f32]) {
        let (k, ny, nx) = (self.k, self.ny, self.nx);
        let wk = k * nx;
        let mut scatter = |c: usize, d: usize, i: usize, row: &[f32]| {
            let dst = &mut g_fine[(k * i + c) * wk..(k * i + c + 1) * wk];
            for (j, v) in row.iter().enumerate() {
                dst[k * j + d] = *v;
            }
        };
        if let Phases::Fft(f) = &self.phases {
            f.adjoint_each(g_model, |t, i, row| scatter(t / k, t % k, i, row));
            return;
        }
        let n = ny * nx;
        let (out, rest) = work.split_at_mut(n);
        let tmp = &mut rest[..n];
        for c in 0..k {
            if let Phases::Separable(g) = &self.phases {
                // the column pass of phase row c, shared by its k phases
                convolve_adjoint(g_model, ny, nx, &g[c], g[c].len(), 1, tmp);
            }
            for d in 0..k {
                match &self.phases {
                    Phases::Separable(g) => {
                        convolve_adjoint(tmp, ny, nx, &g[d], 1, g[d].len(), out);
                    }
                    Phases::Full(m, g) => {
                        convolve_adjoint(g_model, ny, nx, &g[c * k + d], *m, *m, out)
                    }
                    Phases::Fft(_) => unreachable!("handled above"),
                }
                for i in 0..ny {
                    scatter(c, d, i, &out[i * nx..(i + 1) * nx]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pool(K * S)` by the direct sub-grid convolution, the definition the phases must reproduce.
    fn reference(sub: &Psf, k: usize, ny: usize, nx: usize, fine: &[f32]) -> Vec<f32> {
        let (kh, kw, kern) = sub.kernel_2d();
        let kern = to_f32(&kern);
        let (h, w) = (k * ny, k * nx);
        let mut conv = vec![0.0; h * w];
        convolve(fine, h, w, &kern, kh, kw, &mut conv);
        let mut out = vec![0.0; ny * nx];
        for r in 0..h {
            for c in 0..w {
                out[(r / k) * nx + c / k] += conv[r * w + c] / (k * k) as f32;
            }
        }
        out
    }

    fn check(sub: &Psf, k: usize, ny: usize, nx: usize) {
        let op = Polyphase::new(sub, k, ny, nx);
        let m = k * k * ny * nx;
        let fine: Vec<f32> = (0..m).map(|i| (i as f32 * 0.173).sin() + 0.5).collect();
        let g: Vec<f32> = (0..ny * nx).map(|i| (i as f32 * 0.291).cos()).collect();
        let mut work = vec![0.0; op.work_len()];
        let mut model = vec![0.0; ny * nx];
        op.apply(&fine, &mut model, &mut work);
        let want = reference(sub, k, ny, nx, &fine);
        let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (a, b) in model.iter().zip(&want) {
            assert!((a - b).abs() < 3e-5 * scale, "{:?}: {a} vs {b}", op.phases);
        }
        // adjoint identity <A x, g> = <x, A^T g>
        let mut g_fine = vec![0.0; m];
        op.adjoint(&g, &mut g_fine, &mut work);
        let lhs: f64 = model
            .iter()
            .zip(&g)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        let rhs: f64 = fine
            .iter()
            .zip(&g_fine)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        assert!((lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0), "{lhs} {rhs}");
    }

    #[test]
    fn phases_equal_the_subgrid_convolution_and_its_adjoint() {
        // Gaussian (separable), a small pixelated kernel (direct) and a large one (FFT), k = 2 and 3,
        // non-square grids
        let gauss = Psf::gaussian(0.08, 0.065 / 2.0, 4.0).unwrap();
        check(&gauss, 2, 11, 14);
        let asym = |n: usize| {
            let k: Vec<f64> = (0..n * n)
                .map(|i| 1.0 + ((i * 7 % 13) as f64) * 0.1)
                .collect();
            Psf::pixelated(n, n, k).unwrap()
        };
        check(&asym(5), 2, 9, 12);
        check(&asym(7), 3, 10, 8);
        check(&asym(25), 2, 20, 23);
        let op = Polyphase::new(&asym(25), 2, 20, 23);
        assert!(matches!(op.phases, Phases::Fft(_)));
        let op = Polyphase::new(&asym(5), 2, 9, 12);
        assert!(matches!(op.phases, Phases::Full(..)));
    }
}
