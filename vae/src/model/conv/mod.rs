//! The convolutions of Tables D1/D2 as layer functions: on burn-flex each is one GEMM over the
//! whole mini-batch with a hand-written backward registered with burn's autodiff; on any other
//! backend (libtorch) they are burn's own `conv2d` / `conv_transpose2d`.
//!
//! Why: burn-flex 0.22 convolves one image at a time (an im2col tile and a GEMM per image; for
//! the weight gradient, a convolution per input channel). In the deep layers of this network an
//! image's product is tiny (encoder block 5: a 4096 x 8192 weight times one column), so the GEMM
//! spends its time packing the same weight again for each of the 32 images of a batch. Here
//! each product has the whole batch in its rows (`kernels`): `[B P, C K K] x [C K K, C_out]`.
//! A transposed convolution is the adjoint of a convolution, so both directions share the three
//! products of [`kernels::conv`] (forward, input gradient, weight gradient) with their roles
//! swapped. Parameters keep burn's layouts (`Conv2d`: `[C_out, C_in, K, K]`,
//! `ConvTranspose2d`: `[C_in, C_out, K, K]`), so checkpoints do not change; the results equal
//! burn's convolutions to f32 rounding (tests below: values and both gradients).

pub mod kernels;
pub mod transposed;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Autodiff, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::module::{conv_transpose2d as burn_conv_transpose2d, conv2d as burn_conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Bytes, DType, Shape, Tensor};
use kernels::{ConvGeom, conv};

/// Which map of a [`ConvGeom`] a layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// `x` at the geometry's input resolution -> output resolution.
    Conv,
    /// The adjoint: `x` at the output resolution -> input resolution (`ConvTranspose2d`).
    Transposed,
}

impl Direction {
    fn forward(self, g: &ConvGeom, x: &[f32], w: &[f32]) -> (Vec<f32>, [usize; 4]) {
        match self {
            Direction::Conv => (conv::forward(g, x, w), [g.batch, g.c_out, g.h_out, g.w_out]),
            Direction::Transposed => (conv::input_grad(g, x, w), [g.batch, g.c_in, g.h_in, g.w_in]),
        }
    }

    /// `dL/dx` of the layer from `dL/dout`.
    fn input_grad(self, g: &ConvGeom, dout: &[f32], w: &[f32]) -> (Vec<f32>, [usize; 4]) {
        match self {
            Direction::Conv => (
                conv::input_grad(g, dout, w),
                [g.batch, g.c_in, g.h_in, g.w_in],
            ),
            Direction::Transposed => (
                conv::forward(g, dout, w),
                [g.batch, g.c_out, g.h_out, g.w_out],
            ),
        }
    }

    /// `dL/dw` of the layer (the conv weight layout `[C_out, C_in, K, K]` of `g`, which is
    /// `ConvTranspose2d`'s `[C_in, C_out, K, K]` for the transposed direction).
    fn weight_grad(self, g: &ConvGeom, x: &[f32], dout: &[f32]) -> Vec<f32> {
        match self {
            Direction::Conv => conv::weight_grad(g, x, dout),
            Direction::Transposed => conv::weight_grad(g, dout, x),
        }
    }
}

/// `layer.forward(x)`, through [`conv2d`] when the layer is what Table D1 uses (square stride,
/// no or equal explicit padding on all sides, no dilation, groups or bias); burn's forward otherwise.
pub fn conv2d_layer(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [s, s2] = layer.stride;
    let pad = match layer.padding {
        PaddingConfig2d::Valid => Some(0),
        PaddingConfig2d::Explicit(p, p2, p3, p4) if [p2, p3, p4] == [p; 3] => Some(p),
        _ => None,
    };
    match pad {
        Some(p)
            if s == s2 && layer.dilation == [1, 1] && layer.groups == 1 && layer.bias.is_none() =>
        {
            conv2d(x, layer.weight.val(), s, p)
        }
        _ => layer.forward(x),
    }
}

/// `layer.forward(x)`, through [`conv_transpose2d`] when the layer is what Table D2 uses
/// (square stride and padding, no output padding, dilation, groups or bias); burn's otherwise.
pub fn conv_transpose2d_layer(layer: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    let ([s, s2], [p, p2]) = (layer.stride, layer.padding);
    if s == s2
        && p == p2
        && layer.padding_out == [0, 0]
        && layer.dilation == [1, 1]
        && layer.groups == 1
        && layer.bias.is_none()
    {
        conv_transpose2d(x, layer.weight.val(), s, p)
    } else {
        layer.forward(x)
    }
}

/// 2-D convolution `x [B, C, H, W]`, weight `[C_out, C, K, K]`, no bias (Table D1).
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, stride: usize, pad: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [co, ci, k, k2] = weight.dims();
    let geom = (ci == c && k == k2)
        .then(|| ConvGeom::new([b, c, h, w], co, k, stride, pad))
        .flatten();
    if let Some(g) = geom
        && let Some(out) = on_flex(&x, &weight, g, Direction::Conv)
    {
        return out;
    }
    burn_conv2d(
        x,
        weight,
        None,
        ConvOptions::new([stride, stride], [pad, pad], [1, 1], 1),
    )
}

/// Transposed 2-D convolution `x [B, C_in, H, W]`, weight `[C_in, C_out, K, K]`, no bias, no
/// output padding: `[B, C_out, (H - 1) s - 2 p + K, ...]` (Table D2).
pub fn conv_transpose2d(x: Tensor<4>, weight: Tensor<4>, stride: usize, pad: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [ci, co, k, k2] = weight.dims();
    // The convolution this layer is the adjoint of maps [B, C_out, H_o, W_o] to x's shape.
    let size = |n: usize| ((n.max(1) - 1) * stride + k).checked_sub(2 * pad);
    let geom = match (size(h), size(w)) {
        (Some(ho), Some(wo)) if ci == c && k == k2 && h > 0 && w > 0 => {
            ConvGeom::new([b, co, ho, wo], c, k, stride, pad)
                .filter(|g| g.h_out == h && g.w_out == w)
        }
        _ => None,
    };
    if let Some(g) = geom
        && let Some(out) = on_flex(&x, &weight, g, Direction::Transposed)
    {
        return out;
    }
    burn_conv_transpose2d(
        x,
        weight,
        None,
        ConvTransposeOptions::new([stride, stride], [pad, pad], [0, 0], [1, 1], 1),
    )
}

/// The layer with the batched-GEMM kernels when both tensors live on burn-flex (with or
/// without autodiff) as f32; `None` otherwise.
fn on_flex(x: &Tensor<4>, w: &Tensor<4>, g: ConvGeom, dir: Direction) -> Option<Tensor<4>> {
    let autodiff = |t: &Tensor<4>| t.clone().try_into_primitive::<Autodiff<Flex>>().is_ok();
    let plain = |t: &Tensor<4>| t.clone().try_into_primitive::<Flex>().is_ok();
    // One autodiff input and one plain flex input (e.g. a decoder loaded without autodiff fed
    // a tracked z): the plain one enters the graph as a constant.
    let lift = |t: &Tensor<4>| match plain(t) {
        true => t.clone().autodiff(),
        false => t.clone(),
    };
    let (x, w) = match (autodiff(x), autodiff(w)) {
        (true, false) | (false, true) => (lift(x), lift(w)),
        _ => (x.clone(), w.clone()),
    };
    if let (Ok(xa), Ok(wa)) = (
        x.clone().try_into_primitive::<Autodiff<Flex>>(),
        w.clone().try_into_primitive::<Autodiff<Flex>>(),
    ) {
        let (xp, wp) = (xa.primitive().clone(), wa.primitive().clone());
        let out = flex_forward(&xp, &wp, &g, dir)?;
        let out = match LayerBackward
            .prepare::<NoCheckpointing>([xa.node(), wa.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                LayerState {
                    x: xp,
                    w: wp,
                    geom: g,
                    dir,
                },
                out,
            ),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        return Some(Tensor::from_primitive::<Autodiff<Flex>>(out));
    }
    if let (Ok(xf), Ok(wf)) = (
        x.clone().try_into_primitive::<Flex>(),
        w.clone().try_into_primitive::<Flex>(),
    ) {
        let out = flex_forward(&xf, &wf, &g, dir)?;
        return Some(Tensor::from_primitive::<Flex>(out));
    }
    None
}

/// The tensor as contiguous f32 (copied only when strided); `None` for other dtypes.
fn contiguous_f32(t: &FlexTensor) -> Option<FlexTensor> {
    (t.dtype() == DType::F32).then(|| t.to_contiguous())
}

fn flex_tensor(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::from(shape.to_vec())),
        DType::F32,
    )
}

fn flex_forward(
    x: &FlexTensor,
    w: &FlexTensor,
    g: &ConvGeom,
    dir: Direction,
) -> Option<FlexTensor> {
    let (x, w) = (contiguous_f32(x)?, contiguous_f32(w)?);
    let (out, shape) = dir.forward(g, x.as_slice::<f32>()?, w.as_slice::<f32>()?);
    Some(flex_tensor(out, shape))
}

/// What the backward pass of a layer needs: its two inputs and its shape.
#[derive(Clone, Debug)]
struct LayerState {
    x: FlexTensor,
    w: FlexTensor,
    geom: ConvGeom,
    dir: Direction,
}

/// The backward step of a layer in burn's autodiff graph.
#[derive(Debug)]
struct LayerBackward;

impl Backward<Flex, 2> for LayerBackward {
    type State = LayerState;

    fn backward(self, ops: Ops<LayerState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let LayerState { x, w, geom, dir } = ops.state;
        let slice = |t: &FlexTensor| -> FlexTensor {
            contiguous_f32(t).expect("convolution tensors are f32 (checked in the forward pass)")
        };
        binary::<Flex, _, _>(
            ops.parents,
            ops.node,
            grads,
            |dout| {
                let (dout, w) = (slice(&dout), slice(&w));
                let (dx, shape) = dir.input_grad(
                    &geom,
                    dout.as_slice::<f32>().expect("contiguous"),
                    w.as_slice::<f32>().expect("contiguous"),
                );
                flex_tensor(dx, shape)
            },
            |dout| {
                let (dout, x) = (slice(&dout), slice(&x));
                let dw = dir.weight_grad(
                    &geom,
                    x.as_slice::<f32>().expect("contiguous"),
                    dout.as_slice::<f32>().expect("contiguous"),
                );
                let shape = w.layout().shape().clone();
                FlexTensor::new(Bytes::from_elems(dw), Layout::contiguous(shape), DType::F32)
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arclight_core::DeviceChoice;
    use burn::tensor::{Device, TensorData};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn random<const D: usize>(rng: &mut StdRng, shape: [usize; D], dev: &Device) -> Tensor<D> {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Tensor::from_data(TensorData::new(v, shape), dev)
    }

    fn max_rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let a: Vec<f32> = a.into_data().try_to_vec().unwrap();
        let b: Vec<f32> = b.into_data().try_to_vec().unwrap();
        let scale = b.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs() / scale))
    }

    type Layer = fn(Tensor<4>, Tensor<4>, usize, usize) -> Tensor<4>;

    /// `ours` against burn's functional op: the output, and the gradients of `sum(out * r)`
    /// (random r) with respect to input and weight, under autodiff and without.
    fn compare(ours: Layer, reference: Layer, x: [usize; 4], w: [usize; 4], s: usize, p: usize) {
        let mut rng = StdRng::seed_from_u64(x.iter().sum::<usize>() as u64);
        let ad = DeviceChoice::Flex.autodiff().unwrap();
        let xv = random(&mut rng, x, &ad).require_grad();
        let wv = random(&mut rng, w, &ad).require_grad();
        let a = ours(xv.clone(), wv.clone(), s, p);
        let b = reference(xv.clone(), wv.clone(), s, p);
        let r = random(&mut rng, a.dims(), &ad);
        assert!(max_rel_diff(a.clone(), b.clone()) < 1e-5, "{x:?}: values");
        let ga = (a * r.clone()).sum().backward();
        let gb = (b * r).sum().backward();
        let dx = max_rel_diff(xv.grad(&ga).unwrap(), xv.grad(&gb).unwrap());
        let dw = max_rel_diff(wv.grad(&ga).unwrap(), wv.grad(&gb).unwrap());
        assert!(
            dx < 1e-5 && dw < 1e-5,
            "{x:?}: gradients differ by {dx} (x), {dw} (w)"
        );
        // Without autodiff (the inference path).
        let plain = DeviceChoice::Flex.device().unwrap();
        let xv = random(&mut rng, x, &plain);
        let wv = random(&mut rng, w, &plain);
        let d = max_rel_diff(ours(xv.clone(), wv.clone(), s, p), reference(xv, wv, s, p));
        assert!(d < 1e-5, "{x:?}: values without autodiff differ by {d}");
    }

    fn burn_conv(x: Tensor<4>, w: Tensor<4>, s: usize, p: usize) -> Tensor<4> {
        burn_conv2d(x, w, None, ConvOptions::new([s, s], [p, p], [1, 1], 1))
    }

    fn burn_deconv(x: Tensor<4>, w: Tensor<4>, s: usize, p: usize) -> Tensor<4> {
        burn_conv_transpose2d(
            x,
            w,
            None,
            ConvTransposeOptions::new([s, s], [p, p], [0, 0], [1, 1], 1),
        )
    }

    #[test]
    fn convolutions_match_burn() {
        // Encoder blocks 1-4 and 5 of Table D1 (narrowed), a non-square image, a thin batch.
        compare(conv2d, burn_conv, [3, 1, 8, 8], [5, 1, 4, 4], 2, 1);
        compare(conv2d, burn_conv, [2, 6, 8, 8], [4, 6, 4, 4], 2, 1);
        compare(conv2d, burn_conv, [3, 5, 4, 4], [70, 5, 4, 4], 1, 0);
        compare(conv2d, burn_conv, [2, 3, 6, 10], [4, 3, 4, 4], 2, 1);
    }

    #[test]
    fn transposed_convolutions_match_burn() {
        // Decoder block 1 (1x1 -> 4x4) and blocks 2-5 of Table D2 (narrowed), non-square.
        compare(
            conv_transpose2d,
            burn_deconv,
            [3, 6, 1, 1],
            [6, 5, 4, 4],
            1,
            0,
        );
        compare(
            conv_transpose2d,
            burn_deconv,
            [3, 5, 4, 4],
            [5, 1, 4, 4],
            2,
            1,
        );
        compare(
            conv_transpose2d,
            burn_deconv,
            [2, 4, 2, 2],
            [4, 6, 4, 4],
            2,
            1,
        );
        compare(
            conv_transpose2d,
            burn_deconv,
            [2, 3, 3, 5],
            [3, 7, 4, 4],
            2,
            1,
        );
    }

    /// The comparisons above mean something only if the GEMM path ran: it must on flex, with
    /// and without autodiff.
    #[test]
    fn flex_tensors_take_the_gemm_path() {
        let mut rng = StdRng::seed_from_u64(8);
        let g = ConvGeom::new([2, 3, 8, 8], 4, 4, 2, 1).unwrap();
        for dev in [
            DeviceChoice::Flex.autodiff().unwrap(),
            DeviceChoice::Flex.device().unwrap(),
        ] {
            let x = random(&mut rng, [2, 3, 8, 8], &dev);
            let w = random(&mut rng, [4, 3, 4, 4], &dev);
            assert!(on_flex(&x, &w, g, Direction::Conv).is_some());
            let y = random(&mut rng, [2, 4, 4, 4], &dev);
            assert!(on_flex(&y, &w, g, Direction::Transposed).is_some());
        }
        // Mixed: a tracked input and a plain weight.
        let ad = DeviceChoice::Flex.autodiff().unwrap();
        let plain = DeviceChoice::Flex.device().unwrap();
        let x = random(&mut rng, [2, 3, 8, 8], &ad).require_grad();
        let w = random(&mut rng, [4, 3, 4, 4], &plain);
        let y = on_flex(&x, &w, g, Direction::Conv).expect("mixed inputs run on the GEMM path");
        let grad = x.grad(&y.sum().backward()).expect("x is tracked");
        let reference = x.grad(&burn_conv(x.clone(), w.autodiff(), 2, 1).sum().backward());
        assert!(max_rel_diff(grad, reference.unwrap()) < 1e-5);
    }

    #[test]
    fn untracked_inputs_get_no_gradient_work() {
        // Only the weight is tracked: the input gradient closure must not be needed.
        let ad = DeviceChoice::Flex.autodiff().unwrap();
        let mut rng = StdRng::seed_from_u64(9);
        let x = random(&mut rng, [2, 3, 8, 8], &ad);
        let w = random(&mut rng, [4, 3, 4, 4], &ad).require_grad();
        let g = conv2d(x.clone(), w.clone(), 2, 1).sum().backward();
        assert!(x.grad(&g).is_none());
        let gw = w.grad(&g).unwrap();
        let reference = burn_conv(x, w.clone(), 2, 1).sum().backward();
        assert!(max_rel_diff(gw, w.grad(&reference).unwrap()) < 1e-5);
    }
}
