//! The Adam update (Kingma & Ba 2015) on a flat f64 vector, used by multistart MAP (GIGA-Lens Sec. 2.3,
//! one independent optimiser state per start, all stored in one vector) and by VI (Sec. 2.4).

use serde::{Deserialize, Serialize};

/// Adam hyper-parameters (the learning rate comes from the schedule).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamConfig {
    /// The defaults of Kingma & Ba and of optax/TensorFlow.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// First and second moment estimates of `n` parameters.
#[derive(Clone, Debug)]
pub struct Adam {
    pub config: AdamConfig,
    pub m: Vec<f64>,
    pub v: Vec<f64>,
    /// Number of updates taken (for the bias correction).
    pub t: u64,
}

impl Adam {
    pub fn new(config: AdamConfig, n: usize) -> Self {
        Self {
            config,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// Advances the step counter; call once per iteration before the `update_range` calls of that iteration.
    pub fn tick(&mut self) {
        self.t += 1;
    }

    /// Descends on a loss: `params[i] -= lr * m_hat / (sqrt(v_hat) + eps)` for the indices in `range`, with
    /// `grad` the gradient of the LOSS for those indices.
    pub fn update_range(
        &mut self,
        params: &mut [f64],
        grad: &[f64],
        lr: f64,
        range: std::ops::Range<usize>,
    ) {
        let AdamConfig { beta1, beta2, eps } = self.config;
        let t = self.t.max(1) as i32;
        let c1 = 1.0 - beta1.powi(t);
        let c2 = 1.0 - beta2.powi(t);
        for (k, i) in range.enumerate() {
            let g = grad[k];
            self.m[i] = beta1 * self.m[i] + (1.0 - beta1) * g;
            self.v[i] = beta2 * self.v[i] + (1.0 - beta2) * g * g;
            let m_hat = self.m[i] / c1;
            let v_hat = self.v[i] / c2;
            params[k] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
    }

    /// One full step on all parameters.
    pub fn step(&mut self, params: &mut [f64], grad: &[f64], lr: f64) {
        self.tick();
        let n = params.len();
        self.update_range(params, grad, lr, 0..n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first Adam step has magnitude lr in every coordinate (m_hat / sqrt(v_hat) = sign(g)), and Adam
    /// minimises a badly scaled quadratic.
    #[test]
    fn first_step_and_convergence() {
        let mut a = Adam::new(AdamConfig::default(), 2);
        let mut x = vec![1.0, -3.0];
        a.step(&mut x, &[200.0, -0.01], 0.1);
        assert!((x[0] - 0.9).abs() < 1e-9 && (x[1] + 2.9).abs() < 1e-6);
        for _ in 0..3000 {
            let g = [100.0 * (x[0] - 2.0), 0.01 * (x[1] + 1.0)];
            a.step(&mut x, &g, 0.01);
        }
        assert!(
            (x[0] - 2.0).abs() < 1e-2 && (x[1] + 1.0).abs() < 1e-2,
            "{x:?}"
        );
    }
}
