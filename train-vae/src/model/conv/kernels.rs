//! Host kernels of a 2-D convolution as one GEMM over the whole mini-batch: im2col, col2im,
//! the NCHW <-> row-matrix transposes, and the GEMM call itself (the `gemm` crate burn-flex
//! also uses, with its AVX-512 kernels).
//!
//! Notation, for a convolution `x [B, C, H, W] -> y [B, C_out, H_out, W_out]` with weight
//! `[C_out, C, K, K]`: `P = H_out W_out` output pixels per image, the im2col matrix
//! `cols [B P, C K K]` has one row per output pixel (row `b P + p`) holding the input patch in
//! the weight's `(c, kh, kw)` order, so that `y_rows [B P, C_out] = cols W_flat^T`.

use rayon::prelude::*;

/// Shape of a 2-D convolution with a square kernel and the same stride and zero padding on
/// both axes (all that Tables D1/D2 use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub batch: usize,
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub h_out: usize,
    pub w_out: usize,
}

impl ConvGeom {
    /// The geometry of `x [batch, c_in, h_in, w_in]` convolved with a `[c_out, c_in, k, k]`
    /// kernel, or `None` when the kernel does not fit the padded image.
    pub fn new(
        [batch, c_in, h_in, w_in]: [usize; 4],
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Option<ConvGeom> {
        if k == 0 || stride == 0 || h_in + 2 * pad < k || w_in + 2 * pad < k {
            return None;
        }
        Some(ConvGeom {
            batch,
            c_in,
            h_in,
            w_in,
            c_out,
            k,
            stride,
            pad,
            h_out: (h_in + 2 * pad - k) / stride + 1,
            w_out: (w_in + 2 * pad - k) / stride + 1,
        })
    }

    /// Output pixels per image, `P`.
    pub fn pixels(&self) -> usize {
        self.h_out * self.w_out
    }

    /// Rows of the im2col matrix, `B P`.
    pub fn rows(&self) -> usize {
        self.batch * self.pixels()
    }

    /// Columns of the im2col matrix, `C K K`.
    pub fn patch(&self) -> usize {
        self.c_in * self.k * self.k
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h_in * self.w_in
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.pixels()
    }

    pub fn weight_len(&self) -> usize {
        self.c_out * self.patch()
    }

    /// Input coordinate of output coordinate `o` and kernel tap `t`, if inside the image.
    #[inline]
    fn source(&self, o: usize, t: usize, size: usize) -> Option<usize> {
        (o * self.stride + t)
            .checked_sub(self.pad)
            .filter(|&i| i < size)
    }

    /// For every output pixel `p = oy W_out + ox`, the kernel taps that fall inside the image,
    /// as pairs (tap index `kh K + kw`, pixel index `iy W + ix` within a plane).
    fn tap_table(&self) -> Vec<Vec<(usize, usize)>> {
        let mut table = Vec::with_capacity(self.pixels());
        for oy in 0..self.h_out {
            for ox in 0..self.w_out {
                let mut taps = Vec::with_capacity(self.k * self.k);
                for kh in 0..self.k {
                    let Some(iy) = self.source(oy, kh, self.h_in) else {
                        continue;
                    };
                    for kw in 0..self.k {
                        if let Some(ix) = self.source(ox, kw, self.w_in) {
                            taps.push((kh * self.k + kw, iy * self.w_in + ix));
                        }
                    }
                }
                table.push(taps);
            }
        }
        table
    }
}

/// The im2col matrix `[B P, C K K]` of `x [B, C, H, W]` (zeros where a patch leaves the image).
pub fn im2col(g: &ConvGeom, x: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len(), "im2col: input length");
    let (patch, kk, plane) = (g.patch(), g.k * g.k, g.h_in * g.w_in);
    let mut cols = vec![0.0f32; g.rows() * patch];
    if cols.is_empty() {
        return cols;
    }
    let table = g.tap_table();
    // One chunk per output row (b, oy): its w_out patches.
    cols.par_chunks_mut(g.w_out * patch)
        .enumerate()
        .for_each(|(r, chunk)| {
            let (b, oy) = (r / g.h_out, r % g.h_out);
            let image = &x[b * g.c_in * plane..(b + 1) * g.c_in * plane];
            for (ox, row) in chunk.chunks_exact_mut(patch).enumerate() {
                let taps = &table[oy * g.w_out + ox];
                for c in 0..g.c_in {
                    let (dst, src) = (&mut row[c * kk..(c + 1) * kk], &image[c * plane..]);
                    for &(t, i) in taps {
                        dst[t] = src[i];
                    }
                }
            }
        });
    cols
}

/// The adjoint of [`im2col`]: `dx [B, C, H, W]` with every entry of `cols [B P, C K K]` added
/// to the input pixel it was read from.
pub fn col2im(g: &ConvGeom, cols: &[f32]) -> Vec<f32> {
    assert_eq!(cols.len(), g.rows() * g.patch(), "col2im: matrix length");
    let (patch, kk, plane) = (g.patch(), g.k * g.k, g.h_in * g.w_in);
    let mut dx = vec![0.0f32; g.input_len()];
    if dx.is_empty() {
        return dx;
    }
    let table = g.tap_table();
    // One chunk per input plane (b, c): it gathers from that channel's columns of its image's rows.
    dx.par_chunks_mut(plane).enumerate().for_each(|(bc, dst)| {
        let (b, c) = (bc / g.c_in, bc % g.c_in);
        for (p, taps) in table.iter().enumerate() {
            let row = b * g.pixels() + p;
            let src = &cols[row * patch + c * kk..row * patch + (c + 1) * kk];
            for &(t, i) in taps {
                dst[i] += src[t];
            }
        }
    });
    dx
}

/// `[B, C, P]` (NCHW with the pixels flattened) -> `[B P, C]` (one row per pixel).
pub fn nchw_to_rows(x: &[f32], batch: usize, channels: usize, pixels: usize) -> Vec<f32> {
    assert_eq!(x.len(), batch * channels * pixels);
    let mut rows = vec![0.0f32; x.len()];
    if rows.is_empty() {
        return rows;
    }
    rows.par_chunks_mut(pixels * channels)
        .zip(x.par_chunks(pixels * channels))
        .for_each(|(dst, src)| {
            for c in 0..channels {
                for p in 0..pixels {
                    dst[p * channels + c] = src[c * pixels + p];
                }
            }
        });
    rows
}

/// `[B P, C]` -> `[B, C, P]`, the inverse of [`nchw_to_rows`].
pub fn rows_to_nchw(rows: &[f32], batch: usize, channels: usize, pixels: usize) -> Vec<f32> {
    assert_eq!(rows.len(), batch * channels * pixels);
    let mut x = vec![0.0f32; rows.len()];
    if x.is_empty() {
        return x;
    }
    x.par_chunks_mut(pixels * channels)
        .zip(rows.par_chunks(pixels * channels))
        .for_each(|(dst, src)| {
            for p in 0..pixels {
                for c in 0..channels {
                    dst[c * pixels + p] = src[p * channels + c];
                }
            }
        });
    x
}

/// A read-only strided matrix: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// Row-major `[rows, cols]`.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        MatRef {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major `[rows, cols]` matrix.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        MatRef {
            data,
            rs: 1,
            cs: cols,
        }
    }

    fn t(self) -> Self {
        MatRef {
            data: self.data,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn fits(&self, r: usize, c: usize) -> bool {
        r == 0 || c == 0 || (r - 1) * self.rs + (c - 1) * self.cs < self.data.len()
    }
}

/// Products whose smaller side is under this many rows run transposed: the `gemm` crate packs
/// the right-hand side panel by panel and a 32-row product spends most of its time packing
/// (measured: `[32, 8192] x [8192, 4096]` 23 GFLOP/s, its transpose 70-80 GFLOP/s).
const THIN: usize = 64;

/// Row-major `dst [m, n] = a [m, k] * b [k, n]`.
pub fn matmul(m: usize, n: usize, k: usize, a: MatRef<'_>, b: MatRef<'_>, dst: &mut [f32]) {
    assert!(
        a.fits(m, k) && b.fits(k, n) && dst.len() >= m * n,
        "matmul: operand sizes"
    );
    if m * n == 0 {
        return;
    }
    if k == 0 {
        dst[..m * n].fill(0.0);
        return;
    }
    // dst^T [n, m] = b^T a^T, written through swapped destination strides.
    let (m, n, a, b, dst_rs, dst_cs) = if m < THIN && n > m {
        (n, m, b.t(), a.t(), 1, n)
    } else {
        (m, n, a, b, n, 1)
    };
    let par = if m * n * k >= 1 << 18 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `fits` above keeps every strided index of a, b in bounds and dst holds m * n
    // elements addressed by (dst_rs, dst_cs) over the (possibly swapped) m x n; dst does not
    // alias a or b (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            false,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// The three products of a convolution, on host slices (NCHW tensors, weight `[C_out, C, K, K]`).
pub mod conv {
    use super::*;

    /// `y [B, C_out, H_out, W_out] = conv(x, w)`.
    pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f32> {
        assert_eq!(w.len(), g.weight_len(), "conv forward: weight length");
        let cols = im2col(g, x);
        let mut y_rows = vec![0.0f32; g.rows() * g.c_out];
        matmul(
            g.rows(),
            g.c_out,
            g.patch(),
            MatRef::rows(&cols, g.patch()),
            MatRef::transposed(w, g.patch()),
            &mut y_rows,
        );
        drop(cols);
        rows_to_nchw(&y_rows, g.batch, g.c_out, g.pixels())
    }

    /// `dL/dx [B, C, H, W]` from `dy [B, C_out, H_out, W_out]`: `col2im(dy_rows w_flat)`.
    pub fn input_grad(g: &ConvGeom, dy: &[f32], w: &[f32]) -> Vec<f32> {
        assert_eq!(
            dy.len(),
            g.output_len(),
            "conv input grad: output-gradient length"
        );
        assert_eq!(w.len(), g.weight_len(), "conv input grad: weight length");
        let dy_rows = nchw_to_rows(dy, g.batch, g.c_out, g.pixels());
        let mut dcols = vec![0.0f32; g.rows() * g.patch()];
        matmul(
            g.rows(),
            g.patch(),
            g.c_out,
            MatRef::rows(&dy_rows, g.c_out),
            MatRef::rows(w, g.patch()),
            &mut dcols,
        );
        col2im(g, &dcols)
    }

    /// `dL/dw [C_out, C, K, K] = dy_rows^T cols(x)`.
    pub fn weight_grad(g: &ConvGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
        assert_eq!(
            dy.len(),
            g.output_len(),
            "conv weight grad: output-gradient length"
        );
        let cols = im2col(g, x);
        let dy_rows = nchw_to_rows(dy, g.batch, g.c_out, g.pixels());
        let mut dw = vec![0.0f32; g.weight_len()];
        matmul(
            g.c_out,
            g.patch(),
            g.rows(),
            MatRef::transposed(&dy_rows, g.c_out),
            MatRef::rows(&cols, g.patch()),
            &mut dw,
        );
        dw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn random(rng: &mut StdRng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// Direct summation, the definition.
    fn conv_direct(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0f64; g.output_len()];
        for b in 0..g.batch {
            for o in 0..g.c_out {
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let mut s = 0.0f64;
                        for c in 0..g.c_in {
                            for kh in 0..g.k {
                                for kw in 0..g.k {
                                    let (iy, ix) = (
                                        (oy * g.stride + kh) as isize - g.pad as isize,
                                        (ox * g.stride + kw) as isize - g.pad as isize,
                                    );
                                    if iy < 0
                                        || ix < 0
                                        || iy >= g.h_in as isize
                                        || ix >= g.w_in as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((b * g.c_in + c) * g.h_in + iy as usize) * g.w_in
                                        + ix as usize;
                                    let wi = ((o * g.c_in + c) * g.k + kh) * g.k + kw;
                                    s += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        y[((b * g.c_out + o) * g.h_out + oy) * g.w_out + ox] = s;
                    }
                }
            }
        }
        y.into_iter().map(|v| v as f32).collect()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * scale, "entry {i}: {x} vs {y}");
        }
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    /// Shapes of Tables D1/D2 (narrowed) plus odd ones: non-square, stride 1, thin products.
    fn geometries() -> Vec<ConvGeom> {
        [
            ([3, 2, 8, 8], 5, 4, 2, 1),
            ([2, 3, 4, 4], 7, 4, 1, 0),
            ([1, 4, 6, 10], 3, 4, 2, 1),
            ([2, 3, 5, 7], 2, 3, 1, 1),
            ([70, 3, 4, 4], 80, 4, 1, 0),
        ]
        .into_iter()
        .map(|(s, co, k, st, p)| ConvGeom::new(s, co, k, st, p).unwrap())
        .collect()
    }

    #[test]
    fn forward_matches_direct_summation() {
        let mut rng = StdRng::seed_from_u64(1);
        for g in geometries() {
            let x = random(&mut rng, g.input_len());
            let w = random(&mut rng, g.weight_len());
            close(&conv::forward(&g, &x, &w), &conv_direct(&g, &x, &w), 1e-5);
        }
    }

    /// The gradients are the adjoints of the forward map: <dy, conv(x, w)> is bilinear, so
    /// <dx, x> = <dw, w> = <dy, y>.
    #[test]
    fn gradients_are_adjoints_of_the_forward_map() {
        let mut rng = StdRng::seed_from_u64(2);
        for g in geometries() {
            let x = random(&mut rng, g.input_len());
            let w = random(&mut rng, g.weight_len());
            let dy = random(&mut rng, g.output_len());
            let y = conv_direct(&g, &x, &w);
            let target = dot(&dy, &y);
            let dx = conv::input_grad(&g, &dy, &w);
            let dw = conv::weight_grad(&g, &x, &dy);
            let tol = 1e-4 * target.abs().max(1.0);
            assert!((dot(&dx, &x) - target).abs() < tol, "{g:?}: <dx, x>");
            assert!((dot(&dw, &w) - target).abs() < tol, "{g:?}: <dw, w>");
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        let mut rng = StdRng::seed_from_u64(3);
        for g in geometries() {
            let x = random(&mut rng, g.input_len());
            let c = random(&mut rng, g.rows() * g.patch());
            let lhs = dot(&im2col(&g, &x), &c);
            let rhs = dot(&x, &col2im(&g, &c));
            assert!((lhs - rhs).abs() < 1e-3, "{g:?}: {lhs} vs {rhs}");
        }
    }

    #[test]
    fn thin_products_match_either_orientation() {
        let mut rng = StdRng::seed_from_u64(4);
        for (m, n, k) in [(3, 200, 17), (200, 3, 17), (40, 40, 5), (1, 1, 300)] {
            let a = random(&mut rng, m * k);
            let b = random(&mut rng, k * n);
            let mut got = vec![0.0; m * n];
            matmul(m, n, k, MatRef::rows(&a, k), MatRef::rows(&b, n), &mut got);
            let want: Vec<f32> = (0..m * n)
                .map(|ij| {
                    (0..k)
                        .map(|l| a[(ij / n) * k + l] * b[l * n + ij % n])
                        .sum()
                })
                .collect();
            close(&got, &want, 1e-5);
        }
    }

    #[test]
    fn layout_transposes_invert_each_other() {
        let mut rng = StdRng::seed_from_u64(5);
        let x = random(&mut rng, 3 * 4 * 5);
        let rows = nchw_to_rows(&x, 3, 4, 5);
        assert_eq!(rows[(1 * 5 + 2) * 4 + 3], x[(1 * 4 + 3) * 5 + 2]);
        assert_eq!(rows_to_nchw(&rows, 3, 4, 5), x);
    }
}
