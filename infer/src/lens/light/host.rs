//! A registered light profile ([`crate::lens::profile`]) on the tensor path: brightness, parameter
//! derivatives and the gradient in position are evaluated on the host by the profile's own
//! formulas, then joined to the autodiff graph as
//!
//!   I = I_0 + sum_k (p_k - stopgrad(p_k)) dI/dp_k + (x - stopgrad(x)) dI/dx + (y - stopgrad(y)) dI/dy,
//!
//! whose value is I_0 and whose gradients are the profile's. The position terms carry the
//! gradient of a source through the ray-traced positions to the lens parameters.

use burn::tensor::Tensor;
use rayon::prelude::*;

use super::SurfaceBrightness;
use crate::lens::col;
use crate::lens::host::{host_columns, stack_part};
use crate::lens::profile::{Light, LightKind};

/// A batch of one registered light profile; `params` are `[B]` tensors in [`LightKind::keys`]
/// order, in the renderer's units (the amplitude already scaled by the pixel area).
#[derive(Clone, Debug)]
pub struct HostLight {
    pub kind: LightKind,
    pub params: Vec<Tensor<1>>,
}

impl SurfaceBrightness for HostLight {
    fn brightness(&self, x: &Tensor<2>, y: &Tensor<2>) -> Tensor<2> {
        let cols = host_columns(&self.params);
        let b = cols.first().map_or(1, Vec::len).max(x.dims()[0]);
        let [bx, n] = x.dims();
        let xs: Vec<f32> = x.clone().into_data().iter::<f32>().collect();
        let ys: Vec<f32> = y.clone().into_data().iter::<f32>().collect();
        let np = self.params.len();
        // Per sample, n values each of: I, dI/dx, dI/dy, then dI/dp_k.
        let rows: Vec<Vec<f32>> = (0..b)
            .into_par_iter()
            .map(|s| {
                let p: Vec<f64> = cols.iter().map(|c| c[s.min(c.len() - 1)]).collect();
                let m = Light::new(self.kind, &p);
                let at = if bx == 1 { 0 } else { s * n };
                let mut out = vec![0.0f32; n * (3 + np)];
                let mut d = vec![0.0f32; np];
                for r in 0..n {
                    let (i, gx, gy) = m.brightness_with_grad(xs[at + r], ys[at + r], &mut d);
                    out[r] = i;
                    out[n + r] = gx;
                    out[2 * n + r] = gy;
                    for (k, dk) in d.iter().enumerate() {
                        out[(3 + k) * n + r] = *dk;
                    }
                }
                out
            })
            .collect();
        let device = x.device();
        let part = |j: usize| stack_part(&rows, j, n, &device);
        let mut out = part(0)
            + (x.clone() - x.clone().detach()) * part(1)
            + (y.clone() - y.clone().detach()) * part(2);
        for (k, p) in self.params.iter().enumerate() {
            out = out + (col(p) - col(p).detach()) * part(3 + k);
        }
        out
    }
}
