//! The leapfrog integrator, batched over chains: every step makes ONE `value_and_grad` call for all chains
//! (GIGA-Lens' many chains in lockstep sharing one forward pass).
//!
//! One step of size eps (Neal 2011, eq. 5.18-5.20): `p += eps/2 grad log p(x)`, `x += eps M^{-1} p`,
//! `p += eps/2 grad log p(x)`; the half kicks of consecutive steps are written separately for clarity.
//!
//! A chain diverges when its log-density or gradient turns non-finite or when its energy error
//! `H(x, p) - H0` exceeds `max_energy_error` (1000, Stan's threshold). It is then frozen at its last finite
//! point for the rest of the trajectory (so the batch never feeds NaN back into the model) and the
//! sampler rejects its proposal.

use anyhow::Result;

use super::mass_matrix::MassMatrix;
use crate::density::{LogDensity, eval_checked};

/// Positions, log-densities and gradients of a batch of chains (row-major `n x dim`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChainStates {
    pub n: usize,
    pub dim: usize,
    pub x: Vec<f64>,
    pub logp: Vec<f64>,
    pub grad: Vec<f64>,
}

impl ChainStates {
    /// Evaluates the density at `x` (row-major `n x dim`); rows that are not finite keep `logp = -inf`.
    pub fn evaluate<D: LogDensity + ?Sized>(density: &D, x: Vec<f64>) -> Result<Self> {
        let dim = density.dim();
        let n = x.len() / dim;
        let mut logp = vec![0.0; n];
        let mut grad = vec![0.0; n * dim];
        eval_checked(density, &x, n, &mut logp, &mut grad)?;
        Ok(Self {
            n,
            dim,
            x,
            logp,
            grad,
        })
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
}

/// Integrates `n_steps` leapfrog steps of size `eps` for all chains. `p` holds the momenta (updated in
/// place), `h0[i]` the initial energy of chain i, and `divergent[i]` is set for chains that diverge (chains
/// already marked divergent are not moved). `steps[i]` receives the number of steps chain i integrated (the
/// step that diverged counts, later ones do not). Returns the number of density evaluations made (one per step).
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
pub fn leapfrog<D: LogDensity + ?Sized>(
    density: &D,
    mass: &MassMatrix,
    eps: f64,
    n_steps: usize,
    state: &mut ChainStates,
    p: &mut [f64],
    h0: &[f64],
    max_energy_error: f64,
    divergent: &mut [bool],
    steps: &mut [usize],
) -> Result<usize> {
    let (n, d) = (state.n, state.dim);
    steps.fill(0);
    let mut x_new = state.x.clone();
    let mut logp_new = vec![0.0; n];
    let mut grad_new = vec![0.0; n * d];
    let mut v = vec![0.0; d];
    for _ in 0..n_steps {
        for i in 0..n {
            let r = i * d..(i + 1) * d;
            if divergent[i] {
                x_new[r.clone()].copy_from_slice(&state.x[r]);
                continue;
            }
            steps[i] += 1;
            for (pk, gk) in p[r.clone()].iter_mut().zip(&state.grad[r.clone()]) {
                *pk += 0.5 * eps * gk;
            }
            mass.velocity(&p[r.clone()], &mut v);
            for ((xn, x), vk) in x_new[r.clone()].iter_mut().zip(&state.x[r]).zip(&v) {
                *xn = x + eps * vk;
            }
        }
        eval_checked(density, &x_new, n, &mut logp_new, &mut grad_new)?;
        for i in 0..n {
            if divergent[i] {
                continue;
            }
            let r = i * d..(i + 1) * d;
            if !logp_new[i].is_finite() || x_new[r.clone()].iter().any(|v| !v.is_finite()) {
                divergent[i] = true;
                continue;
            }
            state.x[r.clone()].copy_from_slice(&x_new[r.clone()]);
            state.grad[r.clone()].copy_from_slice(&grad_new[r.clone()]);
            state.logp[i] = logp_new[i];
            for (pk, gk) in p[r.clone()].iter_mut().zip(&state.grad[r.clone()]) {
                *pk += 0.5 * eps * gk;
            }
            let h = -state.logp[i] + mass.kinetic(&p[r]);
            let dh = h - h0[i];
            if dh.is_nan() || dh > max_energy_error {
                divergent[i] = true;
            }
        }
    }
    Ok(n_steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::test_densities::{normal_nan_where, std_normal};

    /// Leapfrog is symplectic and time-reversible: energy error O(eps^2) and reversing the momentum
    /// retraces the path exactly.
    #[test]
    fn energy_error_is_second_order_and_path_is_reversible() {
        let mass = MassMatrix::Identity;
        let x0 = vec![1.0, -0.5, 0.3, 2.0];
        let p0 = vec![0.2, 0.9, -1.1, 0.4];
        let mut errs = Vec::new();
        for eps in [0.1, 0.05] {
            let mut s = ChainStates::evaluate(&std_normal(2), x0.clone()).unwrap();
            let mut p = p0.clone();
            let h0: Vec<f64> = (0..2)
                .map(|i| -s.logp[i] + mass.kinetic(&p[2 * i..2 * i + 2]))
                .collect();
            let mut div = vec![false; 2];
            let mut taken = vec![0; 2];
            let steps = (1.0 / eps) as usize;
            leapfrog(
                &std_normal(2),
                &mass,
                eps,
                steps,
                &mut s,
                &mut p,
                &h0,
                1000.0,
                &mut div,
                &mut taken,
            )
            .unwrap();
            assert_eq!(taken, vec![steps; 2]);
            let h1 = -s.logp[0] + mass.kinetic(&p[0..2]);
            errs.push((h1 - h0[0]).abs());
            // Reverse.
            for v in p.iter_mut() {
                *v = -*v;
            }
            leapfrog(
                &std_normal(2),
                &mass,
                eps,
                steps,
                &mut s,
                &mut p,
                &h0,
                1000.0,
                &mut div,
                &mut taken,
            )
            .unwrap();
            for k in 0..4 {
                assert!((s.x[k] - x0[k]).abs() < 1e-12 && (p[k] + p0[k]).abs() < 1e-12);
            }
        }
        let ratio = errs[0] / errs[1];
        assert!(
            ratio > 3.5 && ratio < 4.5,
            "energy error ratio {ratio} (expected ~4 for a 2nd-order scheme)"
        );
    }

    /// A standard normal that is undefined (NaN) for x_0 > 1: a wall to diverge at.
    fn cliff() -> impl LogDensity {
        normal_nan_where(vec![0.0; 2], |x| x[0] > 1.0)
    }

    /// A chain that hits the wall is frozen there: its step count stops at the step that diverged,
    /// while the other chain integrates the whole trajectory.
    #[test]
    fn step_counts_stop_at_the_divergent_step() {
        let mass = MassMatrix::Identity;
        // chain 0 starts at x_0 = 0.5 with momentum 2: with eps = 0.2 it reaches x_0 = 0.89 after one
        // step and 1.24 after two; chain 1 sits at the origin with no momentum and stays finite
        let mut s = ChainStates::evaluate(&cliff(), vec![0.5, 0.0, 0.0, 0.0]).unwrap();
        let mut p = vec![2.0, 0.0, 0.0, 0.0];
        let h0: Vec<f64> = (0..2)
            .map(|i| -s.logp[i] + mass.kinetic(&p[2 * i..2 * i + 2]))
            .collect();
        let mut div = vec![false; 2];
        let mut taken = vec![0; 2];
        let evals = leapfrog(
            &cliff(),
            &mass,
            0.2,
            8,
            &mut s,
            &mut p,
            &h0,
            1000.0,
            &mut div,
            &mut taken,
        )
        .unwrap();
        assert_eq!(evals, 8);
        assert_eq!(div, vec![true, false]);
        assert_eq!(taken, vec![2, 8]);
        assert!(
            s.x[0] <= 1.0,
            "the divergent chain keeps its last finite point"
        );
    }
}
