//! Trajectory-length adaptation by ChEES (Hoffman, Radul & Sountsov 2021, Algorithm 1), the adaptation
//! GIGA-Lens' TFP sampler uses: every iteration integrates for a jittered time `t = u T` (u uniform on
//! (0, 1), shared by all chains; `ceil(t / eps)` leapfrog steps), and during warm-up the maximum length T
//! follows the gradient of the change in expected squared jumped distance,
//! `ChEES(T) = E[(|x' - E x'|^2 - |x - E x|^2)^2] / 4`,
//! estimated across chains, with Adam on log T. Distances are measured in the metric's whitened
//! coordinates, so T is in posterior widths whatever the parameters' units.
//!
//! Why: a fixed number of steps L makes the trajectory length eps L follow the step size: with a good
//! metric L integrates longer than mixing needs, with a poor one a short L is a random walk. ChEES sets
//! the length from the chains.

use serde::{Deserialize, Serialize};

use super::mass_matrix::MassMatrix;

/// Constants of the ChEES adaptation: Adam as in TFP's `GradientBasedTrajectoryLengthAdaptation`
/// (learning rate 0.025, beta2 0.95); the averaged T uses dual averaging's weights (TFP averages with
/// t^-0.5 and jitters by a Halton sequence; here u is uniform from the seeded generator).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChEESConfig {
    /// Adam learning rate on log T (0.025).
    pub learning_rate: f64,
    /// Adam's second-moment decay (0.95; the first moment is not averaged, beta1 = 0).
    pub beta2: f64,
    /// Decay of the averaged log T used once adaptation stops (0.75, as in dual averaging).
    pub kappa: f64,
}

impl ChEESConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.learning_rate > 0.0
                && (0.0..1.0).contains(&self.beta2)
                && self.kappa > 0.5
                && self.kappa <= 1.0,
            "HMC: ChEES needs learning_rate > 0, beta2 in [0, 1) and kappa in (0.5, 1], got {self:?}"
        );
        Ok(())
    }
}

impl Default for ChEESConfig {
    fn default() -> Self {
        Self {
            learning_rate: 0.025,
            beta2: 0.95,
            kappa: 0.75,
        }
    }
}

/// State of the adaptation: the current and averaged maximum trajectory length T.
#[derive(Clone, Debug, PartialEq)]
pub struct ChEES {
    config: ChEESConfig,
    log_t: f64,
    log_t_bar: f64,
    /// Adam's second moment of the gradient in log T.
    v: f64,
    m: u64,
}

impl ChEES {
    /// Starts from maximum trajectory length `t0` (whitened units).
    pub fn new(t0: f64, config: ChEESConfig) -> Self {
        Self {
            config,
            log_t: t0.ln(),
            log_t_bar: t0.ln(),
            v: 0.0,
            m: 0,
        }
    }

    /// The maximum trajectory length T to use in the next adaptation iteration.
    pub fn current(&self) -> f64 {
        self.log_t.exp()
    }

    /// The averaged T, used once adaptation stops.
    pub fn final_length(&self) -> f64 {
        self.log_t_bar.exp()
    }

    /// Keeps T (current and averaged) at least `t_min`.
    pub fn floor(&mut self, t_min: f64) {
        if t_min.is_finite() && t_min > 0.0 {
            let l = t_min.ln();
            self.log_t = self.log_t.max(l);
            self.log_t_bar = self.log_t_bar.max(l);
        }
    }

    /// Restarts the average from the current T: after the metric is re-estimated the whitened units
    /// change, and T measured before no longer applies (dual averaging restarts at the same point).
    pub fn restart_average(&mut self) {
        self.log_t_bar = self.log_t;
        self.m = 0;
        self.v = 0.0;
    }

    /// Keeps T (current and averaged) at most `t_max`: beyond `max_leapfrog` steps of the current
    /// step size a longer T changes nothing, its gradient is meaningless, and T would grow without
    /// bound (TFP clips the same way).
    pub fn limit(&mut self, t_max: f64) {
        if t_max.is_finite() && t_max > 0.0 {
            let l = t_max.ln();
            self.log_t = self.log_t.min(l);
            self.log_t_bar = self.log_t_bar.min(l);
        }
    }

    /// One Adam step of log T along `grad` (the ChEES gradient in T, from [`chees_gradient`]); a
    /// non-finite gradient (no chain accepted) leaves T alone. Returns the new T.
    pub fn update(&mut self, grad: f64) -> f64 {
        if !grad.is_finite() {
            return self.current();
        }
        let c = &self.config;
        self.m += 1;
        // the chain rule to log T
        let g = grad * self.current();
        self.v = c.beta2 * self.v + (1.0 - c.beta2) * g * g;
        let v_hat = self.v / (1.0 - c.beta2.powi(self.m.min(i32::MAX as u64) as i32));
        if v_hat > 0.0 {
            // a step of at most ~learning_rate in log T per iteration
            self.log_t += c.learning_rate * g / (v_hat.sqrt() + 1e-12);
        }
        let eta = (self.m as f64).powf(-c.kappa);
        self.log_t_bar = eta * self.log_t + (1.0 - eta) * self.log_t_bar;
        self.current()
    }
}

/// Leapfrog steps for trajectory time `jitter * t_max` at step size `eps`: at least 1, at most `most`.
pub fn n_steps(t_max: f64, jitter: f64, eps: f64, most: usize) -> usize {
    let n = (jitter * t_max / eps).ceil();
    if n.is_finite() && n >= 1.0 {
        (n as usize).min(most.max(1))
    } else {
        1
    }
}

/// The ChEES gradient in T estimated from one iteration of `n` chains (row-major `n x dim`): positions
/// before (`x0`) and after the trajectory (`x1`, the proposals, with momenta `p1`), acceptance
/// probabilities `accept` and the jitter u of the trajectory time `u T`. Means are over chains (the
/// proposals' weighted by acceptance); distances whitened by `mass`. `NaN` when no chain accepted.
///
/// `d/dT (|z1 - z1bar|^2 - |z0 - z0bar|^2)^2 / 4 = u (|z1 - z1bar|^2 - |z0 - z0bar|^2) (x1 - x1bar) . p1`,
/// since the whitened velocity `dz1/dt` is `L^T p1` for `M^{-1} = L L^T`.
pub fn chees_gradient(
    mass: &MassMatrix,
    x0: &[f64],
    x1: &[f64],
    p1: &[f64],
    accept: &[f64],
    jitter: f64,
    dim: usize,
) -> f64 {
    let n = accept.len();
    let w_sum: f64 = accept.iter().filter(|a| a.is_finite()).sum();
    if n == 0 || !(w_sum > 0.0) {
        return f64::NAN;
    }
    let mut mean0 = vec![0.0; dim];
    let mut mean1 = vec![0.0; dim];
    for i in 0..n {
        let a = if accept[i].is_finite() {
            accept[i]
        } else {
            0.0
        };
        for k in 0..dim {
            mean0[k] += x0[i * dim + k] / n as f64;
            mean1[k] += a * x1[i * dim + k] / w_sum;
        }
    }
    let mut dx = vec![0.0; dim];
    let mut z = vec![0.0; dim];
    let mut g = 0.0;
    for i in 0..n {
        let a = if accept[i].is_finite() {
            accept[i]
        } else {
            0.0
        };
        if a == 0.0 {
            continue;
        }
        let r = i * dim..(i + 1) * dim;
        for (k, d) in dx.iter_mut().enumerate() {
            *d = x0[r.start + k] - mean0[k];
        }
        mass.whiten(&dx, &mut z);
        let before: f64 = z.iter().map(|v| v * v).sum();
        for (k, d) in dx.iter_mut().enumerate() {
            *d = x1[r.start + k] - mean1[k];
        }
        let along: f64 = dx.iter().zip(&p1[r.clone()]).map(|(d, p)| d * p).sum();
        mass.whiten(&dx, &mut z);
        let after: f64 = z.iter().map(|v| v * v).sum();
        g += a * jitter * (after - before) * along;
    }
    g / w_sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    use rand_distr::StandardNormal;

    /// Exact dynamics of a whitened Gaussian: x(t) = x0 cos t + p0 sin t, p(t) = -x0 sin t + p0 cos t.
    /// With chains drawn from the target, ChEES of time t is proportional to sin^2 t, so with the
    /// jittered time u T it is `1/2 - sin(2T) / (4T)`, whose first maximum is at tan 2T = 2T, T = 2.25.
    /// The adaptation must settle there from a short and from a long start.
    #[test]
    fn settles_at_the_same_length_from_short_and_long_starts() {
        let dim = 10;
        let n = 16;
        let mass = MassMatrix::Identity;
        let mut ends = Vec::new();
        for t0 in [0.2, 3.0] {
            let mut ch = ChEES::new(t0, ChEESConfig::default());
            let mut rng = StdRng::seed_from_u64(7);
            for _ in 0..3000 {
                let u: f64 = rng.random();
                let t = u * ch.current();
                let mut x0 = vec![0.0; n * dim];
                let mut x1 = vec![0.0; n * dim];
                let mut p1 = vec![0.0; n * dim];
                for k in 0..n * dim {
                    let a: f64 = rng.sample(StandardNormal);
                    let b: f64 = rng.sample(StandardNormal);
                    x0[k] = a;
                    x1[k] = a * t.cos() + b * t.sin();
                    p1[k] = -a * t.sin() + b * t.cos();
                }
                let g = chees_gradient(&mass, &x0, &x1, &p1, &vec![1.0; n], u, dim);
                ch.update(g);
            }
            ends.push(ch.final_length());
        }
        for t in &ends {
            assert!((*t - 2.25).abs() < 0.4, "adapted T = {t}, want 2.25");
        }
    }

    /// The gradient is measured in whitened units: scaling a coordinate and its metric together does not
    /// change it.
    #[test]
    fn gradient_is_invariant_to_units() {
        let x0 = [0.3, -1.0, 1.2, 0.4];
        let x1 = [0.5, -0.2, 0.7, 1.1];
        let p1 = [0.1, 0.8, -0.6, 0.2];
        let acc = [0.9, 0.6];
        let g = chees_gradient(&MassMatrix::Identity, &x0, &x1, &p1, &acc, 0.5, 2);
        // coordinate 1 in units 100x smaller: positions x100, momenta /100, metric widths x100
        let s = [1.0, 100.0];
        let scale = |v: &[f64], f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
            v.iter().enumerate().map(|(k, x)| f(*x, s[k % 2])).collect()
        };
        let m = MassMatrix::from_scales(s.to_vec()).unwrap();
        let g2 = chees_gradient(
            &m,
            &scale(&x0, &|x, s| x * s),
            &scale(&x1, &|x, s| x * s),
            &scale(&p1, &|p, s| p / s),
            &acc,
            0.5,
            2,
        );
        assert!((g - g2).abs() < 1e-12 * g.abs().max(1.0), "{g} vs {g2}");
        assert!(
            chees_gradient(&m, &x0, &x1, &p1, &[0.0, 0.0], 0.5, 2).is_nan(),
            "no accepted chain: no gradient"
        );
    }

    /// A T beyond the step cap is clipped, the averaged one too; a floor raises both.
    #[test]
    fn limit_clips_both_lengths() {
        let mut ch = ChEES::new(50.0, ChEESConfig::default());
        ch.limit(6.4);
        assert!((ch.current() - 6.4).abs() < 1e-12 && (ch.final_length() - 6.4).abs() < 1e-12);
        ch.limit(f64::NAN);
        assert!((ch.current() - 6.4).abs() < 1e-12);
        ch.floor(8.0);
        assert!((ch.current() - 8.0).abs() < 1e-12 && (ch.final_length() - 8.0).abs() < 1e-12);
        assert!(
            ChEESConfig {
                beta2: 1.0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn steps_are_bounded() {
        assert_eq!(n_steps(2.0, 0.5, 0.4, 100), 3);
        assert_eq!(n_steps(2.0, 0.0, 0.4, 100), 1);
        assert_eq!(n_steps(1e9, 1.0, 0.1, 40), 40);
        assert_eq!(n_steps(f64::NAN, 0.5, 0.1, 40), 1);
    }
}
