//! From theta to a fused kernel's parameter vector, by name: each kernel parameter is a theta
//! column or a constant, times a unit factor (Sersic `amp`, see [`super::forward::sersic_amp_scale`]);
//! components given as (q, phi) (Chianese eqs. 19-20) fill the kernel's (e1, e2) and their gradient
//! is chained back exactly. Shared by both fused likelihoods.

use anyhow::Result;

use super::layout::{Slot, Slots};
use super::spec::{Component, ComponentKind, ModelSpec};
use crate::lens::profile::MassKind;

/// (e1, e2) from (q, phi), eqs. 19-20, and the Jacobian d(e1, e2)/d(q, phi) as
/// [[de1/dq, de1/dphi], [de2/dq, de2/dphi]].
pub fn e_of_q_phi(q: f64, phi: f64) -> ([f64; 2], [[f64; 2]; 2]) {
    let e = (1.0 - q) / (1.0 + q);
    let de_dq = -2.0 / ((1.0 + q) * (1.0 + q));
    let (s2, c2) = (2.0 * phi).sin_cos();
    (
        [e * c2, e * s2],
        [[de_dq * c2, -2.0 * e * s2], [de_dq * s2, 2.0 * e * c2]],
    )
}

fn value_of(s: Slot, row: &[f64]) -> f64 {
    match s {
        Slot::Column(j) => row[j],
        Slot::Fixed(v) => v,
    }
}

/// A component given as (q, phi): its kernel indices of e1 and e2 and the slots of q and phi.
#[derive(Clone, Copy, Debug)]
struct QPhi {
    e1: usize,
    q: Slot,
    phi: Slot,
}

/// How the kernel's parameters are filled from a theta row.
#[derive(Clone, Debug)]
pub struct KernelParams {
    /// Per kernel parameter: its source and unit factor (`None` for an (e1, e2) filled from q, phi).
    map: Vec<Option<(Slot, f64)>>,
    q_phi: Vec<QPhi>,
    dim: usize,
}

impl KernelParams {
    /// An empty map over theta rows of `slots.dim` columns.
    pub fn new(slots: &Slots) -> Self {
        Self {
            map: Vec::new(),
            q_phi: Vec::new(),
            dim: slots.dim,
        }
    }

    /// Append component `c`'s parameters `keys` (the kernel's order), multiplying `scaled` keys by
    /// `factor`.
    pub fn push(
        &mut self,
        slots: &Slots,
        c: &Component,
        keys: &[&str],
        scaled: (&str, f64),
    ) -> Result<()> {
        let get = |key: &str| slots.get(&format!("{}.{key}", c.label));
        let at = self.map.len();
        for key in keys {
            let from_q_phi = c.q_phi && matches!(*key, "e1" | "e2");
            let factor = if *key == scaled.0 { scaled.1 } else { 1.0 };
            self.map.push(
                (!from_q_phi)
                    .then(|| get(key).map(|s| (s, factor)))
                    .transpose()?,
            );
        }
        if c.q_phi
            && let Some(e1) = keys.iter().position(|k| *k == "e1")
        {
            self.q_phi.push(QPhi {
                e1: at + e1,
                q: get("q")?,
                phi: get("phi")?,
            });
        }
        Ok(())
    }

    /// Append every `[[mass]]` component of `spec` (the kernels' mass part, in file order) and
    /// return their kinds.
    pub fn push_mass(&mut self, slots: &Slots, spec: &ModelSpec) -> Result<Vec<MassKind>> {
        let mut kinds = Vec::with_capacity(spec.mass.len());
        for c in &spec.mass {
            let ComponentKind::Mass(k) = c.kind else {
                unreachable!("the parser puts only mass profiles under [[mass]]")
            };
            self.push(slots, c, k.keys(), ("", 1.0))?;
            kinds.push(k);
        }
        Ok(kinds)
    }

    /// Kernel parameters per sample.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no parameter was pushed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The kernel parameters of the first `batch` theta rows, `[batch x len]`.
    pub fn expand(&self, theta: &[f64], batch: usize) -> Vec<f64> {
        let n = self.len();
        let mut p = vec![0.0; batch * n];
        for (row, out) in theta.chunks(self.dim).take(batch).zip(p.chunks_mut(n)) {
            for (o, m) in out.iter_mut().zip(&self.map) {
                if let Some((s, f)) = m {
                    *o = f * value_of(*s, row);
                }
            }
            for e in &self.q_phi {
                let ([e1, e2], _) = e_of_q_phi(value_of(e.q, row), value_of(e.phi, row));
                out[e.e1] = e1;
                out[e.e1 + 1] = e2;
            }
        }
        p
    }

    /// Add the kernel gradient `g` of one theta `row` to that row's gradient `out`.
    pub fn chain(&self, row: &[f64], g: &[f64], out: &mut [f64]) {
        for (gk, m) in g.iter().zip(&self.map) {
            if let Some((Slot::Column(j), f)) = m {
                out[*j] += gk * f;
            }
        }
        for e in &self.q_phi {
            let (_, jac) = e_of_q_phi(value_of(e.q, row), value_of(e.phi, row));
            let (ge1, ge2) = (g[e.e1], g[e.e1 + 1]);
            if let Slot::Column(j) = e.q {
                out[j] += ge1 * jac[0][0] + ge2 * jac[1][0];
            }
            if let Slot::Column(j) = e.phi {
                out[j] += ge1 * jac[0][1] + ge2 * jac[1][1];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::e_of_q_phi;

    #[test]
    fn q_phi_jacobian_matches_finite_differences() {
        for (q, phi) in [(0.5, 0.3), (0.9, -1.2), (0.25, 2.0)] {
            let (_, jac) = e_of_q_phi(q, phi);
            let h = 1e-6;
            for (k, (dq, dp)) in [(h, 0.0), (0.0, h)].into_iter().enumerate() {
                let (a, _) = e_of_q_phi(q + dq, phi + dp);
                let (b, _) = e_of_q_phi(q - dq, phi - dp);
                for i in 0..2 {
                    let fd = (a[i] - b[i]) / (2.0 * h);
                    assert!(
                        (fd - jac[i][k]).abs() < 1e-8,
                        "q={q} phi={phi}: d e{}/d{} fd {fd} vs {}",
                        i + 1,
                        ["q", "phi"][k],
                        jac[i][k]
                    );
                }
            }
        }
    }
}
