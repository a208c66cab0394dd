//! Step-size adaptation by dual averaging (Hoffman & Gelman 2014, Sec. 3.2.1 and Algorithm 5), as used by
//! GIGA-Lens through TensorFlow Probability's `DualAveragingStepSizeAdaptation` (Sec. 2.5.1): during the
//! first 80% of burn-in the log step size follows
//!
//! `H_m = (1 - 1/(m + t0)) H_{m-1} + (delta - alpha_m)/(m + t0)`,
//! `log eps_m = mu - sqrt(m)/gamma H_m`,
//! `log eps_bar_m = m^{-kappa} log eps_m + (1 - m^{-kappa}) log eps_bar_{m-1}`,
//!
//! with `delta` the target acceptance (0.75 in GIGA-Lens), `alpha_m` the acceptance probability of
//! iteration m, `mu = log(10 eps_0)`; afterwards the step size is frozen at `eps_bar`. With many chains in
//! lockstep there is one shared step size and `alpha_m` is the mean acceptance probability over the chains
//! (TFP's default `reduce_logmeanexp` of the log acceptance ratios).

use serde::{Deserialize, Serialize};

/// Constants of dual averaging; defaults of Hoffman & Gelman (and TFP / Stan).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DualAveragingConfig {
    /// Target acceptance probability delta (GIGA-Lens: 0.75).
    pub target_accept: f64,
    /// Shrinkage gamma (0.05).
    pub gamma: f64,
    /// Iteration offset t0 (10).
    pub t0: f64,
    /// Averaging decay kappa (0.75).
    pub kappa: f64,
}

impl Default for DualAveragingConfig {
    fn default() -> Self {
        Self {
            target_accept: 0.75,
            gamma: 0.05,
            t0: 10.0,
            kappa: 0.75,
        }
    }
}

/// State of the dual-averaging recursion.
#[derive(Clone, Debug, PartialEq)]
pub struct DualAveraging {
    config: DualAveragingConfig,
    mu: f64,
    h_bar: f64,
    log_eps: f64,
    log_eps_bar: f64,
    m: u64,
}

impl DualAveraging {
    /// Starts from step size `eps0` (GIGA-Lens Table 1: 0.3).
    pub fn new(eps0: f64, config: DualAveragingConfig) -> Self {
        Self {
            config,
            mu: (10.0 * eps0).ln(),
            h_bar: 0.0,
            log_eps: eps0.ln(),
            log_eps_bar: eps0.ln(),
            m: 0,
        }
    }

    /// Step size to use in the next adaptation iteration.
    pub fn current(&self) -> f64 {
        self.log_eps.exp()
    }

    /// The averaged step size eps_bar, used once adaptation stops.
    pub fn final_step_size(&self) -> f64 {
        self.log_eps_bar.exp()
    }

    /// Number of updates so far.
    pub fn iterations(&self) -> u64 {
        self.m
    }

    /// Feeds the acceptance probability of the iteration just run (non-finite counts as 0, a divergence).
    pub fn update(&mut self, accept_prob: f64) {
        let alpha = if accept_prob.is_finite() {
            accept_prob.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let c = &self.config;
        self.m += 1;
        let m = self.m as f64;
        let w = 1.0 / (m + c.t0);
        self.h_bar = (1.0 - w) * self.h_bar + w * (c.target_accept - alpha);
        self.log_eps = self.mu - m.sqrt() / c.gamma * self.h_bar;
        let eta = m.powf(-c.kappa);
        self.log_eps_bar = eta * self.log_eps + (1.0 - eta) * self.log_eps_bar;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a model acceptance curve alpha(eps) = exp(-(eps/0.5)^2) (smooth, decreasing), dual averaging must
    /// settle where alpha = 0.75, i.e. eps* = 0.5 sqrt(-ln 0.75) = 0.26820, from far-off starts.
    #[test]
    fn converges_to_the_target_acceptance() {
        let alpha = |eps: f64| (-(eps / 0.5).powi(2)).exp();
        let want = 0.5 * (-(0.75f64).ln()).sqrt();
        for eps0 in [1e-3, 0.3, 5.0] {
            let mut da = DualAveraging::new(eps0, DualAveragingConfig::default());
            for _ in 0..2000 {
                let a = alpha(da.current());
                da.update(a);
            }
            let got = da.final_step_size();
            assert!(
                (got / want - 1.0).abs() < 0.02,
                "eps0 = {eps0}: eps_bar = {got}, want {want}"
            );
        }
    }

    #[test]
    fn divergences_shrink_the_step() {
        let mut da = DualAveraging::new(1.0, DualAveragingConfig::default());
        for _ in 0..20 {
            da.update(f64::NAN);
        }
        assert!(da.current() < 0.1 && da.final_step_size() < 1.0);
    }
}
