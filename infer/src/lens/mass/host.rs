//! A registered profile ([`crate::lens::profile`]) on the tensor path: its deflection and exact
//! parameter derivatives are evaluated on the host by the profile's own formulas, then joined to
//! the autodiff graph as
//!
//!   alpha = alpha_0 + sum_k (p_k - stopgrad(p_k)) d alpha / d p_k,
//!
//! whose value is alpha_0 and whose gradient with respect to p_k is the profile's d alpha / d p_k.
//! So a new profile needs no burn-tensor twin. Ray positions are constants (the image grid).

use burn::tensor::Tensor;
use rayon::prelude::*;

use crate::lens::col;
use crate::lens::host::{host_columns, stack_part};
use crate::lens::profile::{Mass, MassKind};
use crate::math::complex::C;

/// A batch of one registered profile; `params` are `[B]` tensors in [`MassKind::keys`] order.
#[derive(Clone, Debug)]
pub struct HostProfile {
    pub kind: MassKind,
    pub params: Vec<Tensor<1>>,
}

impl HostProfile {
    /// Deflection at `x`, `y` (`[1, N]` or `[B, N]`), each `[B, N]`.
    pub fn deflection(&self, x: &Tensor<2>, y: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let cols = host_columns(&self.params);
        let b = cols.first().map_or(1, Vec::len);
        let [bx, n] = x.dims();
        let xs: Vec<f32> = x.clone().into_data().iter::<f32>().collect();
        let ys: Vec<f32> = y.clone().into_data().iter::<f32>().collect();
        let np = self.params.len();
        // Per sample: alpha (2 n) then d alpha / d p_k (2 n each), real parts first.
        let rows: Vec<Vec<f32>> = (0..b)
            .into_par_iter()
            .map(|s| {
                let p: Vec<f64> = cols.iter().map(|c| c[s]).collect();
                let m = Mass::new(self.kind, &p);
                let at = if bx == 1 { 0 } else { s * n };
                let mut out = vec![0.0f32; 2 * n * (1 + np)];
                let mut d = vec![C::new(0.0f32, 0.0f32); np];
                for r in 0..n {
                    let a = m.deflection_with_grad(xs[at + r], ys[at + r], &mut d);
                    out[r] = a.re;
                    out[n + r] = a.im;
                    for (k, dk) in d.iter().enumerate() {
                        out[2 * n * (k + 1) + r] = dk.re;
                        out[2 * n * (k + 1) + n + r] = dk.im;
                    }
                }
                out
            })
            .collect();
        let device = x.device();
        let part = |j: usize| stack_part(&rows, j, n, &device);
        let (mut ax, mut ay) = (part(0), part(1));
        for (k, p) in self.params.iter().enumerate() {
            let delta = col(p) - col(p).detach();
            ax = ax + delta.clone() * part(2 * (k + 1));
            ay = ay + delta * part(2 * (k + 1) + 1);
        }
        (ax, ay)
    }
}
