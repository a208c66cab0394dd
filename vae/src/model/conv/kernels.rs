//! Host kernels of a 2-D convolution as GEMMs over the whole mini-batch: im2col, col2im,
//! the NCHW <-> channel-major permutations, and the GEMM call itself (the `gemm` crate
//! burn-flex also uses, with its AVX-512 kernels).
//!
//! Notation, for a convolution `x [B, C, H, W] -> y [B, C_out, H_out, W_out]` with weight
//! `[C_out, C, K, K]`: `P = H_out W_out` output pixels per image, the im2col matrix
//! `cols [B P, C K K]` has one row per output pixel (row `b P + p`) holding the input patch in
//! the weight's `(c, kh, kw)` order, so that `y_cbp [C_out, B P] = W_flat cols^T`, where
//! `y_cbp` is `y` channel-major ([`nchw_to_cbp`]).

use rayon::prelude::*;
use std::ops::Range;

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
    let mut cols = vec![0.0f32; g.rows() * g.patch()];
    im2col_into(g, x, 0..g.batch, &mut cols);
    cols
}

/// The rows of images `images` of the im2col matrix, written into `cols` (`[n P, C K K]` for
/// `n` images). Only entries inside the image are written: a buffer reused for chunks of the
/// same geometry keeps the zeros of the padding from its first fill.
pub fn im2col_into(g: &ConvGeom, x: &[f32], images: Range<usize>, cols: &mut [f32]) {
    assert_eq!(x.len(), g.input_len(), "im2col: input length");
    let (patch, kk, plane) = (g.patch(), g.k * g.k, g.h_in * g.w_in);
    let cols = &mut cols[..images.len() * g.pixels() * patch];
    if cols.is_empty() {
        return;
    }
    let table = g.tap_table();
    // One chunk per output row (b, oy): its w_out patches.
    cols.par_chunks_mut(g.w_out * patch)
        .enumerate()
        .for_each(|(r, chunk)| {
            let (b, oy) = (images.start + r / g.h_out, r % g.h_out);
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
}

/// The transposed im2col matrix of images `images`, `[C K K, n P]` row-major (one row per
/// input channel and kernel tap), written into `cols_t`; every entry is written (padding as 0).
/// As the right-hand side of `W_flat [C_out, C K K] x cols_t` it packs faster than a transposed
/// view of [`im2col`] (measured 28 vs 37 ms for encoder block 2 at batch 32).
pub fn im2col_t_into(g: &ConvGeom, x: &[f32], images: Range<usize>, cols_t: &mut [f32]) {
    assert_eq!(x.len(), g.input_len(), "im2col: input length");
    let (kk, plane, pix) = (g.k * g.k, g.h_in * g.w_in, g.pixels());
    let n = images.len() * pix;
    let cols_t = &mut cols_t[..g.patch() * n];
    if cols_t.is_empty() {
        return;
    }
    // source[t * P + p]: the in-plane index tap t of output pixel p reads, or None (padding).
    let mut source = vec![None; kk * pix];
    for (p, taps) in g.tap_table().iter().enumerate() {
        for &(t, i) in taps {
            source[t * pix + p] = Some(i);
        }
    }
    // One chunk per input channel: its K K rows.
    cols_t
        .par_chunks_mut(kk * n)
        .enumerate()
        .for_each(|(c, rows)| {
            for (t, row) in rows.chunks_exact_mut(n).enumerate() {
                let src = &source[t * pix..(t + 1) * pix];
                for (j, b) in images.clone().enumerate() {
                    let plane_x = &x[(b * g.c_in + c) * plane..(b * g.c_in + c + 1) * plane];
                    for (dst, s) in row[j * pix..(j + 1) * pix].iter_mut().zip(src) {
                        *dst = s.map_or(0.0, |i| plane_x[i]);
                    }
                }
            }
        });
}

/// The adjoint of [`im2col`]: `dx [B, C, H, W]` with every entry of the im2col-shaped matrix
/// `cols` (`[B P, C K K]`, given by its strides) added to the input pixel it was read from.
pub fn col2im(g: &ConvGeom, cols: MatRef<'_>) -> Vec<f32> {
    let mut dx = vec![0.0f32; g.input_len()];
    col2im_add(g, cols, 0..g.batch, &mut dx);
    dx
}

/// [`col2im`] of the rows of images `images` (`cols` holds `[n P, C K K]` for those `n`
/// images), added to `dx`, the whole batch's input gradient.
pub fn col2im_add(g: &ConvGeom, cols: MatRef<'_>, images: Range<usize>, dx: &mut [f32]) {
    assert!(
        cols.fits(images.len() * g.pixels(), g.patch()),
        "col2im: matrix size"
    );
    assert_eq!(dx.len(), g.input_len(), "col2im: gradient length");
    let (kk, plane) = (g.k * g.k, g.h_in * g.w_in);
    let dx = &mut dx[images.start * g.c_in * plane..images.end * g.c_in * plane];
    if dx.is_empty() {
        return;
    }
    let table = g.tap_table();
    // One chunk per input plane (b, c): it gathers from that channel's columns of its image's rows.
    dx.par_chunks_mut(plane).enumerate().for_each(|(bc, dst)| {
        let (b, c) = (bc / g.c_in, bc % g.c_in);
        for (p, taps) in table.iter().enumerate() {
            let base = (b * g.pixels() + p) * cols.rs + c * kk * cols.cs;
            for &(t, i) in taps {
                dst[i] += cols.data[base + t * cols.cs];
            }
        }
    });
}

/// `[B, C, P]` (NCHW with the pixels flattened) -> `[C, B P]` (channel-major: one row per
/// channel, the batch's pixels along it), the layout of the GEMM side of every product.
pub fn nchw_to_cbp(x: &[f32], batch: usize, channels: usize, pixels: usize) -> Vec<f32> {
    assert_eq!(x.len(), batch * channels * pixels);
    let mut y = vec![0.0f32; x.len()];
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(batch * pixels)
        .enumerate()
        .for_each(|(c, row)| {
            for (b, dst) in row.chunks_exact_mut(pixels).enumerate() {
                let src = (b * channels + c) * pixels;
                dst.copy_from_slice(&x[src..src + pixels]);
            }
        });
    y
}

/// `[C, B P]` -> `[B, C, P]`, the inverse of [`nchw_to_cbp`].
pub fn cbp_to_nchw(y: &[f32], batch: usize, channels: usize, pixels: usize) -> Vec<f32> {
    assert_eq!(y.len(), batch * channels * pixels);
    let mut x = vec![0.0f32; y.len()];
    if x.is_empty() {
        return x;
    }
    x.par_chunks_mut(channels * pixels)
        .enumerate()
        .for_each(|(b, image)| {
            for (c, dst) in image.chunks_exact_mut(pixels).enumerate() {
                let src = (c * batch + b) * pixels;
                dst.copy_from_slice(&y[src..src + pixels]);
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

    fn fits(&self, r: usize, c: usize) -> bool {
        r == 0 || c == 0 || (r - 1) * self.rs + (c - 1) * self.cs < self.data.len()
    }
}

/// A row-major destination block: element `(i, j)` is `data[i * rs + j]`.
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rs: usize,
}

impl<'a> MatMut<'a> {
    /// Row-major `[rows, cols]`.
    pub fn rows(data: &'a mut [f32], cols: usize) -> Self {
        MatMut { data, rs: cols }
    }
}

/// `dst [m, n] = a [m, k] * b [k, n]`, or `dst += a b` with `accumulate`.
///
/// Orientation matters to the `gemm` crate: it packs the right-hand side panel by panel, so a
/// product with a 32-row destination spends most of its time packing (measured:
/// `[32, 8192] x [8192, 4096]` 88 ms, the same product as `[4096, 8192] x [8192, 32]` 20 ms),
/// and a right-hand side stored row-major packs fastest. Callers lay out their products so.
pub fn matmul(
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_>,
    b: MatRef<'_>,
    dst: MatMut<'_>,
    accumulate: bool,
) {
    assert!(a.fits(m, k) && b.fits(k, n), "matmul: operand sizes");
    assert!(
        m == 0 || n == 0 || (n <= dst.rs && (m - 1) * dst.rs + n <= dst.data.len()),
        "matmul: destination size"
    );
    if m * n == 0 || (k == 0 && accumulate) {
        return;
    }
    if k == 0 {
        for i in 0..m {
            dst.data[i * dst.rs..i * dst.rs + n].fill(0.0);
        }
        return;
    }
    let par = if m * n * k >= 1 << 18 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `fits` above keeps every strided index of a and b in bounds and the destination
    // check keeps (i, j) -> i rs + j inside dst.data; dst does not alias a or b (distinct
    // borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// The three products of a convolution, on host slices (NCHW tensors, weight `[C_out, C, K, K]`).
///
/// The GEMM side of each keeps the output channels as rows (`[C_out, B P]`, [`nchw_to_cbp`]),
/// which puts the long side first in every layer of Tables D1/D2 (encoder block 5: 4096 x 32).
/// The batch is processed in chunks of images whose im2col block holds at most
/// [`conv::CHUNK_ELEMS`] floats: one scratch buffer per call, reused and warm in cache, where a
/// whole-batch im2col matrix (33 MB for encoder block 2) is a fresh mapping whose page faults
/// cost about as much as filling it.
pub mod conv {
    use super::*;

    /// Scratch size of one im2col chunk, floats (8 MB).
    pub const CHUNK_ELEMS: usize = 1 << 21;

    /// The image ranges of the chunks.
    fn chunks(g: &ConvGeom) -> impl Iterator<Item = Range<usize>> + use<> {
        let per = (CHUNK_ELEMS / (g.pixels() * g.patch()).max(1)).clamp(1, g.batch.max(1));
        let batch = g.batch;
        (0..batch.div_ceil(per)).map(move |i| i * per..((i + 1) * per).min(batch))
    }

    /// `y [B, C_out, H_out, W_out] = conv(x, w)`: `y_cbp = w_flat cols^T` (with `cols^T` built
    /// directly, [`im2col_t_into`]).
    pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f32> {
        assert_eq!(w.len(), g.weight_len(), "conv forward: weight length");
        let (rows, patch, pix) = (g.rows(), g.patch(), g.pixels());
        let mut y = vec![0.0f32; g.output_len()];
        let mut cols_t = Vec::new();
        for images in chunks(g) {
            let n = images.len() * pix;
            cols_t.resize(n * patch, 0.0);
            im2col_t_into(g, x, images.clone(), &mut cols_t);
            let dst = MatMut {
                data: &mut y[images.start * pix..],
                rs: rows,
            };
            let (a, b) = (MatRef::rows(w, patch), MatRef::rows(&cols_t, n));
            matmul((g.c_out, n, patch), a, b, dst, false);
        }
        cbp_to_nchw(&y, g.batch, g.c_out, pix)
    }

    /// `dL/dx [B, C, H, W]` from `dy [B, C_out, H_out, W_out]`: `col2im(dy_rows w_flat)`, the
    /// im2col-shaped product computed with its long side first, both operands row-major.
    pub fn input_grad(g: &ConvGeom, dy: &[f32], w: &[f32]) -> Vec<f32> {
        assert_eq!(
            dy.len(),
            g.output_len(),
            "conv input grad: output-gradient length"
        );
        assert_eq!(w.len(), g.weight_len(), "conv input grad: weight length");
        let (patch, pix, co) = (g.patch(), g.pixels(), g.c_out);
        let mut dx = vec![0.0f32; g.input_len()];
        let (mut dcols, mut block) = (Vec::new(), Vec::new());
        for images in chunks(g) {
            let n = images.len() * pix;
            dcols.resize(n * patch, 0.0);
            block.resize(n * co, 0.0);
            let dy_images = &dy[images.start * co * pix..images.end * co * pix];
            if n >= patch {
                // [n, C K K] = dy_rows w_flat, dy_rows [n, C_out] (one row per output pixel)
                for (j, image) in dy_images.chunks_exact(co * pix).enumerate() {
                    for (o, plane) in image.chunks_exact(pix).enumerate() {
                        for (p, v) in plane.iter().enumerate() {
                            block[(j * pix + p) * co + o] = *v;
                        }
                    }
                }
                let dst = MatMut::rows(&mut dcols, patch);
                let (a, b) = (MatRef::rows(&block, co), MatRef::rows(w, patch));
                matmul((n, patch, co), a, b, dst, false);
                col2im_add(g, MatRef::rows(&dcols, patch), images, &mut dx);
            } else {
                // [C K K, n] = w_flat^T dy_cbp, dy_cbp [C_out, n] (channel-major)
                let cbp = nchw_to_cbp(dy_images, images.len(), co, pix);
                let dst = MatMut::rows(&mut dcols, n);
                let (a, b) = (MatRef::transposed(w, patch), MatRef::rows(&cbp, n));
                matmul((patch, n, co), a, b, dst, false);
                col2im_add(g, MatRef::transposed(&dcols, n), images, &mut dx);
            }
        }
        dx
    }

    /// `dL/dw [C_out, C, K, K] = dy_cbp cols(x)`, summed over the chunks.
    pub fn weight_grad(g: &ConvGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
        assert_eq!(
            dy.len(),
            g.output_len(),
            "conv weight grad: output-gradient length"
        );
        let dy = nchw_to_cbp(dy, g.batch, g.c_out, g.pixels());
        let (rows, patch, pix) = (g.rows(), g.patch(), g.pixels());
        let mut dw = vec![0.0f32; g.weight_len()];
        let mut cols = Vec::new();
        for (i, images) in chunks(g).enumerate() {
            let n = images.len() * pix;
            cols.resize(n * patch, 0.0);
            im2col_into(g, x, images.clone(), &mut cols);
            let a = MatRef {
                data: &dy[images.start * pix..],
                rs: rows,
                cs: 1,
            };
            let dst = MatMut::rows(&mut dw, patch);
            matmul(
                (g.c_out, patch, n),
                a,
                MatRef::rows(&cols, patch),
                dst,
                i > 0,
            );
        }
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

    /// Shapes of Tables D1/D2 (narrowed) plus odd ones: non-square, stride 1, thin products,
    /// several chunks.
    fn geometries() -> Vec<ConvGeom> {
        [
            ([3, 2, 8, 8], 5, 4, 2, 1),
            ([2, 3, 4, 4], 7, 4, 1, 0),
            ([1, 4, 6, 10], 3, 4, 2, 1),
            ([2, 3, 5, 7], 2, 3, 1, 1),
            ([70, 3, 4, 4], 80, 4, 1, 0),
            ([3, 6, 4, 4], 90, 4, 1, 0),
            // Two chunks (8 images of 256 x 1024, then 1), the input gradient in both
            // orientations (2048 rows >= 1024 columns, then 256 < 1024).
            ([9, 64, 32, 32], 2, 4, 2, 1),
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
    fn transposed_im2col_is_the_transpose() {
        let mut rng = StdRng::seed_from_u64(6);
        for g in geometries() {
            let x = random(&mut rng, g.input_len());
            let cols = im2col(&g, &x);
            // Images 1.. only (a chunk not starting at 0), into a buffer of garbage.
            let images = 1.min(g.batch)..g.batch;
            let n = images.len() * g.pixels();
            let mut cols_t = vec![f32::NAN; g.patch() * n];
            im2col_t_into(&g, &x, images.clone(), &mut cols_t);
            for r in 0..n {
                for j in 0..g.patch() {
                    let want = cols[(images.start * g.pixels() + r) * g.patch() + j];
                    assert_eq!(cols_t[j * n + r], want, "{g:?}: row {r}, column {j}");
                }
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        let mut rng = StdRng::seed_from_u64(3);
        for g in geometries() {
            let x = random(&mut rng, g.input_len());
            let c = random(&mut rng, g.rows() * g.patch());
            let lhs = dot(&im2col(&g, &x), &c);
            let rhs = dot(&x, &col2im(&g, MatRef::rows(&c, g.patch())));
            // The same matrix stored transposed.
            let ct: Vec<f32> = (0..c.len())
                .map(|i| c[(i % g.rows()) * g.patch() + i / g.rows()])
                .collect();
            let rhs_t = dot(&x, &col2im(&g, MatRef::transposed(&ct, g.rows())));
            assert!((rhs - rhs_t).abs() < 1e-3, "{g:?}: transposed storage");
            assert!((lhs - rhs).abs() < 1e-3, "{g:?}: {lhs} vs {rhs}");
        }
    }

    #[test]
    fn products_of_strided_operands() {
        let mut rng = StdRng::seed_from_u64(4);
        for (m, n, k) in [
            (3, 200, 17),
            (200, 3, 17),
            (40, 40, 5),
            (1, 1, 300),
            (4, 5, 0),
        ] {
            let a = random(&mut rng, m * k);
            let b = random(&mut rng, k * n);
            let want: Vec<f32> = (0..m * n)
                .map(|ij| {
                    (0..k)
                        .map(|l| a[(ij / n) * k + l] * b[l * n + ij % n])
                        .sum()
                })
                .collect();
            let mut got = vec![1.0; m * n];
            let (ar, br) = (MatRef::rows(&a, k), MatRef::rows(&b, n));
            matmul((m, n, k), ar, br, MatMut::rows(&mut got, n), false);
            close(&got, &want, 1e-5);
            // The same operands stored transposed.
            let at: Vec<f32> = (0..m * k).map(|i| a[(i % m) * k + i / m]).collect();
            let bt: Vec<f32> = (0..k * n).map(|i| b[(i % k) * n + i / k]).collect();
            let mut got = vec![1.0; m * n];
            let (atr, btr) = (MatRef::transposed(&at, m), MatRef::transposed(&bt, k));
            matmul((m, n, k), atr, btr, MatMut::rows(&mut got, n), false);
            close(&got, &want, 1e-5);
            // Accumulating into a block of a wider destination (row stride n + 3).
            let mut wide = vec![1.0; m * (n + 3)];
            let dst = MatMut {
                data: &mut wide,
                rs: n + 3,
            };
            matmul((m, n, k), ar, br, dst, true);
            for i in 0..m {
                let row = &wide[i * (n + 3)..(i + 1) * (n + 3)];
                let want_row: Vec<f32> = want[i * n..(i + 1) * n].iter().map(|v| v + 1.0).collect();
                close(&row[..n], &want_row, 1e-5);
                assert!(row[n..].iter().all(|v| *v == 1.0), "outside the block");
            }
        }
    }

    #[test]
    fn layout_transposes_invert_each_other() {
        let mut rng = StdRng::seed_from_u64(5);
        let x = random(&mut rng, 3 * 4 * 5);
        // [B = 3, C = 4, P = 5]: element (b 1, c 3, p 2).
        let y = nchw_to_cbp(&x, 3, 4, 5);
        assert_eq!(y[(3 * 3 + 1) * 5 + 2], x[(4 + 3) * 5 + 2]);
        assert_eq!(cbp_to_nchw(&y, 3, 4, 5), x);
    }
}
