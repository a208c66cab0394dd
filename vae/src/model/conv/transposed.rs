//! A transposed convolution (square kernel, no dilation, groups 1) on channel-major activations
//! `[C, B, H, W]`, the layout a decoder keeps between layers when it runs at small batch on the host
//! (infer's folded decoder): one GEMM `cols = W^T a` ([`super::kernels::matmul`]) then [`scatter`] of
//! the k^2 taps onto the strided output grid; the input gradient is [`gather`] (the adjoint) then one
//! GEMM with W. The training layers (`super`) use the row-per-pixel layout of [`super::kernels`]
//! instead, where the batch is large.

use rayon::prelude::*;

/// Geometry of one transposed convolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransposedGeom {
    pub c_in: usize,
    pub c_out: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    /// Input spatial size.
    pub h_in: usize,
    pub w_in: usize,
    /// Output spatial size, (h_in - 1) stride - 2 pad + k.
    pub h_out: usize,
    pub w_out: usize,
}

impl TransposedGeom {
    /// The geometry of a layer on square `side x side` inputs, or `None` if the padding leaves no output.
    pub fn square(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        side: usize,
    ) -> Option<Self> {
        let out = side.checked_sub(1)? * stride + k;
        (out > 2 * pad).then(|| TransposedGeom {
            c_in,
            c_out,
            k,
            stride,
            pad,
            h_in: side,
            w_in: side,
            h_out: out - 2 * pad,
            w_out: out - 2 * pad,
        })
    }

    /// Rows of the GEMM columns, c_out k^2.
    pub fn m(&self) -> usize {
        self.c_out * self.k * self.k
    }
}

/// Output rows reached by kernel row `kh` from input rows `0..h_in`: (first input, first output,
/// count), with output = input * stride + kh - pad.
fn tap_range(
    h_in: usize,
    h_out: usize,
    stride: usize,
    kh: usize,
    pad: usize,
) -> (usize, usize, usize) {
    // smallest i with i * stride + kh >= pad
    let i0 = if kh >= pad {
        0
    } else {
        (pad - kh).div_ceil(stride)
    };
    if i0 >= h_in {
        return (0, 0, 0);
    }
    let o0 = i0 * stride + kh - pad;
    if o0 >= h_out {
        return (0, 0, 0);
    }
    let count = ((h_out - 1 - o0) / stride + 1).min(h_in - i0);
    (i0, o0, count)
}

/// For each kernel tap (kh, kw), row-major, the runs of one image it connects: (offset in the
/// input plane, offset in the output plane, length), input pixels consecutive, output pixels
/// `stride` apart. Shared by [`scatter`] and its adjoint [`gather`].
fn tap_runs(layer: &TransposedGeom) -> Vec<Vec<(usize, usize, usize)>> {
    let (k, s, p) = (layer.k, layer.stride, layer.pad);
    let mut taps = Vec::with_capacity(k * k);
    for kh in 0..k {
        let (iy0, oy0, ny) = tap_range(layer.h_in, layer.h_out, s, kh, p);
        for kw in 0..k {
            let (ix0, ox0, nx) = tap_range(layer.w_in, layer.w_out, s, kw, p);
            let runs = (0..ny)
                .filter(|_| nx > 0)
                .map(|t| {
                    (
                        (iy0 + t) * layer.w_in + ix0,
                        (oy0 + t * s) * layer.w_out + ox0,
                        nx,
                    )
                })
                .collect();
            taps.push(runs);
        }
    }
    taps
}

/// The layer output `[c_out, B, h_out, w_out]` from its GEMM columns `[c_out k k, B h_in w_in]`:
/// each channel starts at `bias[co]`, gets the taps scatter-added, then `finish` (the activation)
/// runs on its `B h_out w_out` values while they are in cache.
pub fn scatter<F>(
    layer: &TransposedGeom,
    cols: &[f32],
    batch: usize,
    bias: &[f32],
    finish: F,
) -> Vec<f32>
where
    F: Fn(&mut [f32]) + Sync,
{
    let (in_plane, out_plane, s) = (
        layer.h_in * layer.w_in,
        layer.h_out * layer.w_out,
        layer.stride,
    );
    let n = batch * in_plane;
    let taps = tap_runs(layer);
    let mut out = vec![0.0f32; layer.c_out * batch * out_plane];
    out.par_chunks_mut(batch * out_plane)
        .enumerate()
        .for_each(|(co, dst)| {
            dst.iter_mut().for_each(|v| *v = bias[co]);
            for (tap, runs) in taps.iter().enumerate() {
                let row = &cols[(co * taps.len() + tap) * n..][..n];
                for b in 0..batch {
                    for &(i0, o0, len) in runs {
                        let src = &row[b * in_plane + i0..][..len];
                        let dst = &mut dst[b * out_plane + o0..];
                        for (u, v) in src.iter().enumerate() {
                            dst[u * s] += v;
                        }
                    }
                }
            }
            finish(dst);
        });
    out
}

/// The adjoint of [`scatter`]: `gcols[(co, kh, kw), (b, iy, ix)]` = the output gradient at the pixel
/// tap (kh, kw) of input pixel (iy, ix) reaches, zero where it falls outside.
pub fn gather(layer: &TransposedGeom, grad: &[f32], batch: usize, gcols: &mut [f32]) {
    let (in_plane, out_plane, s) = (
        layer.h_in * layer.w_in,
        layer.h_out * layer.w_out,
        layer.stride,
    );
    let n = batch * in_plane;
    let taps = tap_runs(layer);
    gcols[..layer.m() * n]
        .par_chunks_mut(taps.len() * n)
        .enumerate()
        .for_each(|(co, rows)| {
            let src = &grad[co * batch * out_plane..][..batch * out_plane];
            for (tap, runs) in taps.iter().enumerate() {
                let row = &mut rows[tap * n..][..n];
                row.iter_mut().for_each(|v| *v = 0.0);
                for b in 0..batch {
                    for &(i0, o0, len) in runs {
                        let from = &src[b * out_plane + o0..];
                        for (u, v) in row[b * in_plane + i0..][..len].iter_mut().enumerate() {
                            *v = from[u * s];
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// <scatter(cols), y> = <cols, gather(y)> for the decoder's geometries: the input gradient is
    /// exact.
    #[test]
    fn gather_is_the_adjoint_of_scatter() {
        let mut rng = StdRng::seed_from_u64(3);
        for (k, stride, pad, side) in [(4, 2, 1, 4), (4, 1, 0, 1), (3, 2, 1, 5), (5, 2, 2, 3)] {
            let g = TransposedGeom::square(3, 2, k, stride, pad, side).unwrap();
            let batch = 2;
            let n = batch * g.h_in * g.w_in;
            let cols: Vec<f32> = (0..g.m() * n).map(|_| rng.random::<f32>() - 0.5).collect();
            let y: Vec<f32> = (0..g.c_out * batch * g.h_out * g.w_out)
                .map(|_| rng.random::<f32>() - 0.5)
                .collect();
            let out = scatter(&g, &cols, batch, &[0.0; 2], |_| {});
            let mut gcols = vec![0.0; g.m() * n];
            gather(&g, &y, batch, &mut gcols);
            let dot =
                |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>();
            let (lhs, rhs) = (dot(&out, &y), dot(&cols, &gcols));
            assert!(
                (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
                "{k} {stride} {pad}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn tap_ranges_cover_the_strided_grid() {
        // stride 2, pad 1, k 4, 4 -> 8: kernel row 0 reaches outputs 1, 3, 5 from inputs 1, 2, 3
        assert_eq!(tap_range(4, 8, 2, 0, 1), (1, 1, 3));
        assert_eq!(tap_range(4, 8, 2, 1, 1), (0, 0, 4));
        assert_eq!(tap_range(4, 8, 2, 3, 1), (0, 2, 3));
        // stride 1, pad 0 from 1x1: each kernel row reaches its own output row
        assert_eq!(tap_range(1, 4, 1, 2, 0), (0, 2, 1));
    }
}
