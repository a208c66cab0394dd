//! Bilinear interpolation of a pixel image at continuous positions, differentiable with respect
//! to the image values and to the positions (Chianese Sec. 3.3: "bilinear interpolation to
//! allow the right-hand side of [eq. 17] to be evaluated between adjacent pixels").
//!
//! Positions are continuous pixel coordinates: `u` along columns, `v` along rows, with the
//! centre of pixel (row r, column c) at (u, v) = (c, r). The image is treated as zero outside:
//! it is padded with one ring of zeros, so the interpolant falls linearly to zero between an edge
//! pixel centre and one pixel beyond it, and is exactly zero further out.
//!
//! Implemented by gather (`select` on the flattened padded image): gradients reach the image
//! through select's scatter-add and the positions through the interpolation weights. The
//! reference measurements found this 2.4x faster than `grid_sample_2d`'s autodiff fallback.

use burn::tensor::ops::PadMode;
use burn::tensor::{Int, Tensor};

/// Sample `image` (`[1, Hs, Ws]` shared by all, or `[B, Hs, Ws]` one per batch member) at pixel
/// coordinates `u` (column), `v` (row), each `[B, N]` (or `[1, N]`, broadcast); returns `[B, N]`.
pub fn sample(image: &Tensor<3>, u: &Tensor<2>, v: &Tensor<2>) -> Tensor<2> {
    let [bi, hs, ws] = image.dims();
    let [bu, n] = u.dims();
    let b = bi.max(bu);
    assert!(
        bi == 1 || bi == b,
        "bilinear::sample: image batch {bi} vs positions batch {bu}"
    );
    assert!(
        bu == 1 || bu == b,
        "bilinear::sample: positions batch {bu} vs image batch {bi}"
    );
    assert_eq!(
        v.dims(),
        u.dims(),
        "bilinear::sample: u and v shapes differ"
    );
    let (hp, wp) = (hs + 2, ws + 2);
    let device = image.device();
    let flat = image
        .clone()
        .pad([(0, 0), (1, 1), (1, 1)], PadMode::Constant(0.0))
        .reshape([bi * hp * wp]);

    let (u, v) = if bu < b {
        (u.clone().expand([b, n]), v.clone().expand([b, n]))
    } else {
        (u.clone(), v.clone())
    };
    // Coordinates in the padded image; floors clamped to [-1, size] before the integer cast so
    // that far-away positions land in the zero ring instead of overflowing.
    let up = u.add_scalar(1.0);
    let vp = v.add_scalar(1.0);
    let u0 = up.clone().detach().floor().clamp(-1.0, wp as f64);
    let v0 = vp.clone().detach().floor().clamp(-1.0, hp as f64);
    let fu = up - u0.clone();
    let fv = vp - v0.clone();
    let u0i = u0.int();
    let v0i = v0.int();
    let iu0 = u0i.clone().clamp(0, wp as i64 - 1);
    let iu1 = u0i.add_scalar(1).clamp(0, wp as i64 - 1);
    let iv0 = v0i.clone().clamp(0, hp as i64 - 1).mul_scalar(wp as i64);
    let iv1 = v0i
        .add_scalar(1)
        .clamp(0, hp as i64 - 1)
        .mul_scalar(wp as i64);
    let base: Tensor<2, Int> = if bi == 1 {
        Tensor::<2, Int>::zeros([1, 1], &device)
    } else {
        Tensor::<1, Int>::arange(0..b as i64, &device)
            .mul_scalar((hp * wp) as i64)
            .unsqueeze_dim(1)
    };
    let gather = |iv: &Tensor<2, Int>, iu: &Tensor<2, Int>| -> Tensor<2> {
        let idx = (iv.clone() + iu.clone() + base.clone()).reshape([b * n]);
        flat.clone().select(0, idx).reshape([b, n])
    };
    let i00 = gather(&iv0, &iu0);
    let i01 = gather(&iv0, &iu1);
    let i10 = gather(&iv1, &iu0);
    let i11 = gather(&iv1, &iu1);
    let gu = fu.clone().neg().add_scalar(1.0);
    let gv = fv.clone().neg().add_scalar(1.0);
    (i00 * gu.clone() + i01 * fu.clone()) * gv + (i10 * gu + i11 * fu) * fv
}
