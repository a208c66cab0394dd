//! What an HMC run keeps: the draws `[chain][draw][param]` in unconstrained space, their log-densities,
//! per-draw acceptance probabilities, divergence flags and leapfrog step counts, and the burn-in trace of
//! the step size.
//! Serialisable so a caller can checkpoint a finished stage.

use serde::{Deserialize, Serialize};

/// Burn-in statistics (one entry per burn-in iteration).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WarmupTrace {
    /// Step size used in each burn-in iteration.
    pub step_size: Vec<f64>,
    /// Mean acceptance probability over the chains in each burn-in iteration.
    pub mean_accept: Vec<f64>,
    /// Divergent transitions during burn-in (all chains).
    pub n_divergent: usize,
    /// Times the mass matrix was re-estimated from the pooled chains.
    #[serde(default)]
    pub mass_updates: usize,
}

/// Draws of the sampling phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HmcDraws {
    pub n_chains: usize,
    pub n_draws: usize,
    pub dim: usize,
    /// `[chain][draw][param]`, row-major.
    pub draws: Vec<f64>,
    /// log p~ of every draw, `[chain][draw]`.
    pub logp: Vec<f64>,
    /// Acceptance probability min(1, exp(-dH)) of the transition that produced each draw (0 if divergent).
    pub accept_prob: Vec<f64>,
    /// Whether the transition that produced each draw diverged (and was rejected).
    pub divergent: Vec<bool>,
    /// Leapfrog steps the transition that produced each draw integrated, `[chain][draw]` (the jittered
    /// trajectory length; a divergent trajectory stops at the step that diverged). Empty for draws
    /// stored before it was recorded.
    #[serde(default)]
    pub n_steps: Vec<usize>,
    /// Step size used for each sampling iteration, `[draw]` (constant after adaptation).
    pub step_size: Vec<f64>,
    /// The adapted step size eps_bar.
    pub adapted_step_size: f64,
    /// The adapted maximum trajectory length T of ChEES (whitened units; None with a fixed L).
    #[serde(default)]
    pub adapted_trajectory: Option<f64>,
    pub warmup: WarmupTrace,
    /// Density evaluations (value + gradient, each for all chains at once) over the whole run.
    pub n_evaluations: usize,
    /// Every sampling round, the kept (last) one included; earlier ones missed the convergence targets
    /// and became warm-up (see `retry`). Empty for draws stored before rounds existed.
    #[serde(default)]
    pub rounds: Vec<RoundRecord>,
}

/// One sampling round: its budget, adaptation and what its draws reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    pub n_burn: usize,
    /// Mean leapfrog steps L of the round (with ChEES: over its sampling iterations, rounded).
    pub n_leapfrog: usize,
    /// The adapted maximum trajectory length T of ChEES (None with a fixed L).
    #[serde(default)]
    pub trajectory: Option<f64>,
    pub n_samples: usize,
    /// The adapted step size eps_bar.
    pub step_size: f64,
    /// Target acceptance of the step-size adaptation.
    pub target_accept: f64,
    /// Largest split R-hat and smallest bulk/tail ESS of the round's draws.
    pub max_rhat: f64,
    pub min_ess_bulk: f64,
    pub min_ess_tail: f64,
    /// Divergent transitions while sampling.
    pub divergent: usize,
    /// Density evaluations of the round (all chains at once).
    pub evaluations: usize,
    /// What the round missed (empty: converged). With `with_previous`, what the joined draws missed.
    pub misses: Vec<String>,
    /// Its draws were kept joined to the previous round's: the round alone missed, both together passed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_previous: bool,
    /// Draws per chain added after the round's `n_samples` by continuing its chains (`RetryOptions::extend`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub extended: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl HmcDraws {
    pub(crate) fn new(n_chains: usize, n_draws: usize, dim: usize) -> Self {
        Self {
            n_chains,
            n_draws,
            dim,
            draws: vec![0.0; n_chains * n_draws * dim],
            logp: vec![0.0; n_chains * n_draws],
            accept_prob: vec![0.0; n_chains * n_draws],
            divergent: vec![false; n_chains * n_draws],
            n_steps: vec![0; n_chains * n_draws],
            step_size: Vec::with_capacity(n_draws),
            adapted_step_size: f64::NAN,
            adapted_trajectory: None,
            warmup: WarmupTrace::default(),
            n_evaluations: 0,
            rounds: Vec::new(),
        }
    }

    /// Stores draw `t` of chain `c`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &mut self,
        c: usize,
        t: usize,
        x: &[f64],
        logp: f64,
        accept: f64,
        divergent: bool,
        n_steps: usize,
    ) {
        let k = c * self.n_draws + t;
        self.draws[k * self.dim..(k + 1) * self.dim].copy_from_slice(x);
        self.logp[k] = logp;
        self.accept_prob[k] = accept;
        self.divergent[k] = divergent;
        self.n_steps[k] = n_steps;
    }

    /// Each chain's draws of `self` followed by the same chain's draws of `later` (a later round of the
    /// same chains); the adapted step and trajectory are `later`'s, the warm-up trace `self`'s.
    pub fn joined(&self, later: &HmcDraws) -> HmcDraws {
        assert!(
            self.n_chains == later.n_chains && self.dim == later.dim,
            "joining draws of different chains"
        );
        let (a, b) = (self.n_draws, later.n_draws);
        let mut out = HmcDraws::new(self.n_chains, a + b, self.dim);
        for c in 0..self.n_chains {
            for (src, t0, n) in [(self, 0, a), (later, a, b)] {
                for t in 0..n {
                    let k = c * n + t;
                    out.record(
                        c,
                        t0 + t,
                        src.draw(c, t),
                        src.logp[k],
                        src.accept_prob[k],
                        src.divergent[k],
                        src.n_steps.get(k).copied().unwrap_or(0),
                    );
                }
            }
        }
        out.step_size = [self.step_size.as_slice(), later.step_size.as_slice()].concat();
        out.adapted_step_size = later.adapted_step_size;
        out.adapted_trajectory = later.adapted_trajectory;
        out.warmup = self.warmup.clone();
        out.n_evaluations = self.n_evaluations + later.n_evaluations;
        out.rounds = later.rounds.clone();
        out
    }

    /// Draw `t` of chain `c`.
    pub fn draw(&self, c: usize, t: usize) -> &[f64] {
        let k = c * self.n_draws + t;
        &self.draws[k * self.dim..(k + 1) * self.dim]
    }

    /// Parameter `k` of every draw, `[chain][draw]` contiguous: the layout the diagnostics take.
    pub fn param(&self, k: usize) -> Vec<f64> {
        (0..self.n_chains * self.n_draws)
            .map(|i| self.draws[i * self.dim + k])
            .collect()
    }

    /// Divergent transitions in the sampling phase.
    pub fn n_divergent(&self) -> usize {
        self.divergent.iter().filter(|d| **d).count()
    }

    /// Fraction of the sampling transitions that diverged.
    pub fn divergent_fraction(&self) -> f64 {
        self.n_divergent() as f64 / self.divergent.len().max(1) as f64
    }

    /// Mean acceptance probability of the sampling phase.
    pub fn mean_accept(&self) -> f64 {
        self.accept_prob.iter().sum::<f64>() / self.accept_prob.len().max(1) as f64
    }

    /// Mean of each parameter over all chains and draws.
    pub fn mean(&self) -> Vec<f64> {
        let n = (self.n_chains * self.n_draws) as f64;
        let mut m = vec![0.0; self.dim];
        for row in self.draws.chunks(self.dim) {
            for (mk, v) in m.iter_mut().zip(row) {
                *mk += v / n;
            }
        }
        m
    }

    /// Sample covariance (row-major `dim x dim`, denominator N - 1) over all chains and draws.
    pub fn covariance(&self) -> Vec<f64> {
        let d = self.dim;
        let m = self.mean();
        let n = (self.n_chains * self.n_draws) as f64;
        let mut c = vec![0.0; d * d];
        for row in self.draws.chunks(d) {
            for i in 0..d {
                let di = row[i] - m[i];
                for j in 0..=i {
                    c[i * d + j] += di * (row[j] - m[j]);
                }
            }
        }
        for i in 0..d {
            for j in 0..=i {
                c[i * d + j] /= n - 1.0;
                c[j * d + i] = c[i * d + j];
            }
        }
        c
    }
}
