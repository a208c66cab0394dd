//! Hamiltonian Monte Carlo with many chains in lockstep (GIGA-Lens Sec. 2.5, Table 1): n_HMC chains started
//! from draws of the VI surrogate, a mass matrix from the VI covariance, L leapfrog steps per transition,
//! one shared step size adapted by dual averaging during the first 80% of the n_burn burn-in iterations and
//! frozen afterwards, then n_sample recorded iterations.
//!
//! Beyond Table 1, the dense mass matrix is re-estimated during burn-in (on by default, `adapt_mass`):
//! the pooled draws of all chains over two windows of the adaptation phase, `[0.1, 0.3)` and
//! `[0.3, 0.65)` of it, each replace M^{-1} by their (shrunk) covariance, pooled with the current
//! metric when a window holds fewer than 10 dim draws (see `CovarianceEstimator`), or with `mass_gradients`
//! by the geometric mean of the draws' and the inverse gradients' covariances (`gradient_metric`), and dual averaging restarts
//! from the current step size; the last 35% adapts the step size alone (a shorter final phase left the
//! averaged step visibly below the target acceptance). GIGA-Lens relies on the VI
//! covariance alone (Sec. 2.5.1 mentions on-the-fly adaptation, Sountsov & Hoffman 2021, as future work);
//! when VI misjudges a width, a mass matrix off by a factor k in scale costs a factor ~k in trajectory
//! length, and on the reference system it was the difference between R-hat 1.58 and converged chains.
//!
//! Each transition: draw p ~ N(0, M), integrate, accept with probability min(1, exp(H0 - H1)). Divergent
//! trajectories (non-finite density or energy error above `max_energy_error`) are rejected and counted;
//! they feed an acceptance of 0 to the step-size adaptation, which shrinks the step. Nothing in a
//! trajectory can panic: the worst case is a chain that keeps rejecting.

use anyhow::{Result, bail, ensure};
use rand::RngExt;
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use super::gradient_metric::GradientMetricEstimator;
use super::leapfrog::{ChainStates, leapfrog};
use super::mass_matrix::{CovarianceEstimator, MassMatrix};
use super::step_size::{DualAveraging, DualAveragingConfig};
use super::storage::HmcDraws;
use super::trajectory::{self, ChEES, ChEESConfig};
use super::verdict::RetryOptions;
use crate::density::{LogDensity, check_batch};
use crate::inference::progress::Progress;

/// Options of the HMC stage. Defaults: GIGA-Lens Table 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HmcOptions {
    /// Burn-in iterations n_burn (250).
    pub n_burn: usize,
    /// Recorded iterations n_sample (750).
    pub n_samples: usize,
    /// Mean leapfrog steps per transition L (10; Table 1's TFP run adapts it by ChEES, and its
    /// `table1` preset here uses 5). On the reference system L = 5 left max R-hat at 1.012, L = 10 gave
    /// 1.008 with a 1.15x larger minimum ESS for twice the gradient evaluations.
    pub n_leapfrog: usize,
    /// Initial step size eps (0.3).
    pub step_size: f64,
    /// Fraction of burn-in with step-size adaptation (0.8).
    pub adapt_fraction: f64,
    pub dual_averaging: DualAveragingConfig,
    /// Draw the number of leapfrog steps of each iteration uniformly from {1, ..., 2L - 1} (mean L, shared by
    /// all chains) instead of always taking L (true). A fixed trajectory length L eps resonates with the
    /// periods of a near-Gaussian posterior: on a whitened target the adapted eps ~ 1.2 gives L eps ~ 2 pi,
    /// the chains nearly return to their start and the ESS collapses. GIGA-Lens avoids this by adapting the
    /// trajectory length (ChEES, Hoffman et al. 2021, which also jitters it uniformly); this is that jitter
    /// without the adaptation.
    pub jitter_leapfrog: bool,
    /// Adapt the trajectory length by ChEES during the step-size adaptation (see `trajectory`) instead
    /// of taking `n_leapfrog` steps on average (false, as in the `table1` preset; the pipeline's default
    /// turns it on). Each iteration then integrates for a time `u T`, u uniform on (0, 1).
    pub adapt_trajectory: bool,
    /// Initial maximum trajectory length T of ChEES, in whitened units (None: `n_leapfrog step_size`).
    pub trajectory_length: Option<f64>,
    /// Most leapfrog steps of one ChEES iteration (64): bounds the cost of a step size that collapses.
    pub max_leapfrog: usize,
    /// Least maximum trajectory length T of ChEES (None: no floor). Set by later rounds (`retry`), never
    /// by a user's settings, so it is not serialised when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_trajectory: Option<f64>,
    pub chees: ChEESConfig,
    /// Re-estimate the dense mass matrix from the pooled chains in two burn-in windows (true).
    pub adapt_mass: bool,
    /// Re-estimate it from the windows' draws and their gradients (`gradient_metric`) instead of the
    /// draws alone. None is the draws' metric, the behaviour before the option existed; the fit pipeline
    /// chooses it from the model (`FitConfig::choose_for_model`). Recorded only when on, so the records and
    /// study identities of the draws' metric read as they did before.
    #[serde(default, skip_serializing_if = "not_gradients")]
    pub mass_gradients: Option<bool>,
    /// Energy error above which a trajectory counts as divergent (1000).
    pub max_energy_error: f64,
    /// Sampling rounds that re-adapt and sample again while the draws are not converged (one round,
    /// as in Table 1; the pipeline's default allows three).
    pub retry: RetryOptions,
    pub seed: u64,
}

fn not_gradients(m: &Option<bool>) -> bool {
    *m != Some(true)
}

impl Default for HmcOptions {
    fn default() -> Self {
        Self {
            n_burn: 250,
            n_samples: 750,
            n_leapfrog: 10,
            step_size: 0.3,
            adapt_fraction: 0.8,
            dual_averaging: DualAveragingConfig::default(),
            jitter_leapfrog: true,
            adapt_trajectory: false,
            trajectory_length: None,
            max_leapfrog: 64,
            min_trajectory: None,
            chees: ChEESConfig::default(),
            adapt_mass: true,
            mass_gradients: None,
            max_energy_error: 1000.0,
            retry: RetryOptions::single(),
            seed: 0,
        }
    }
}

impl HmcOptions {
    pub fn validate(&self) -> Result<()> {
        ensure!(self.n_samples > 0, "HMC: n_samples must be at least 1");
        ensure!(self.n_leapfrog > 0, "HMC: n_leapfrog must be at least 1");
        ensure!(
            self.step_size.is_finite() && self.step_size > 0.0,
            "HMC: step_size must be > 0, got {}",
            self.step_size
        );
        ensure!(
            (0.0..=1.0).contains(&self.adapt_fraction),
            "HMC: adapt_fraction must be in [0, 1], got {}",
            self.adapt_fraction
        );
        let t = self.dual_averaging.target_accept;
        ensure!(
            t > 0.0 && t < 1.0,
            "HMC: target acceptance must be in (0, 1), got {t}"
        );
        ensure!(
            self.max_energy_error > 0.0,
            "HMC: max_energy_error must be > 0"
        );
        ensure!(
            self.max_leapfrog >= 1,
            "HMC: max_leapfrog must be at least 1"
        );
        self.chees.validate()?;
        if let Some(t) = self.trajectory_length {
            ensure!(
                t.is_finite() && t > 0.0,
                "HMC: trajectory_length must be > 0, got {t}"
            );
        }
        self.retry.validate()
    }

    /// Number of burn-in iterations with step-size adaptation.
    pub fn n_adapt(&self) -> usize {
        (self.n_burn as f64 * self.adapt_fraction).floor() as usize
    }

    /// The burn-in windows `[start, end)` whose pooled draws re-estimate the mass matrix (empty unless
    /// `adapt_mass`).
    pub fn mass_windows(&self) -> Vec<(usize, usize)> {
        if !self.adapt_mass {
            return Vec::new();
        }
        let n = self.n_adapt() as f64;
        let at = |f: f64| (f * n).round() as usize;
        [(at(0.1), at(0.3)), (at(0.3), at(0.65))]
            .into_iter()
            .filter(|(a, b)| b > a)
            .collect()
    }
}

/// One round of HMC from the chain states `state`: burn-in (step size by dual averaging, and the mass
/// matrix re-estimated in the `mass_windows` when `adapt_mass`), then `n_samples` recorded iterations.
/// Returns the draws, the chains' final states and the mass matrix the draws were made with.
///
/// Calls `progress` after every iteration with stage "hmc_burn" or "hmc_sample" and metrics `round`,
/// `step_size`, `accept` (mean acceptance probability of this iteration), `accept_avg` (mean over the
/// stage so far), `divergent` (divergences in the stage so far) and `logp_mean`.
#[allow(clippy::needless_range_loop)]
pub(super) fn sample_round<D, F>(
    density: &D,
    mut state: ChainStates,
    mass: &MassMatrix,
    opts: &HmcOptions,
    round: usize,
    progress: &mut F,
) -> Result<(HmcDraws, ChainStates, MassMatrix)>
where
    D: LogDensity + ?Sized,
    F: FnMut(&Progress) -> Result<()>,
{
    let d = state.dim;
    let n = state.n;
    let mut mass = mass.clone();
    let windows = opts.mass_windows();
    let mut pooled = CovarianceEstimator::new(d);
    let mut with_gradients =
        (opts.mass_gradients == Some(true)).then(|| GradientMetricEstimator::new(&mass, d));

    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut da = DualAveraging::new(opts.step_size, opts.dual_averaging);
    let n_adapt = opts.n_adapt();
    let mut out = HmcDraws::new(n, opts.n_samples, d);
    out.n_evaluations = 0;

    let mut p = vec![0.0; n * d];
    let mut h0 = vec![0.0; n];
    let mut divergent = vec![false; n];
    let mut steps = vec![0usize; n];
    let mut accept = vec![0.0; n];
    let mut stage_accept_sum = 0.0;
    let mut stage_divergent = 0usize;
    let mut adapted = if n_adapt == 0 {
        opts.step_size
    } else {
        f64::NAN
    };
    let t0 = opts
        .trajectory_length
        .unwrap_or(opts.n_leapfrog as f64 * opts.step_size);
    let t0 = t0.max(opts.min_trajectory.unwrap_or(0.0));
    let mut chees = ChEES::new(t0, opts.chees);
    let mut t_adapted = if n_adapt == 0 { t0 } else { f64::NAN };
    let mut x_before = vec![0.0; n * d];

    for it in 0..opts.n_burn + opts.n_samples {
        let burn = it < opts.n_burn;
        if it == opts.n_burn {
            stage_accept_sum = 0.0;
            stage_divergent = 0;
        }
        let eps = if it < n_adapt {
            da.current()
        } else {
            if adapted.is_nan() {
                adapted = da.final_step_size();
            }
            adapted
        };
        // ChEES: the time u T, u uniform on (0, 1), shared by the chains
        let mut jitter = 1.0;
        let mut t_max = f64::NAN;
        let n_steps = if opts.adapt_trajectory {
            jitter = rng.random::<f64>();
            t_max = if it < n_adapt {
                chees.current()
            } else {
                if t_adapted.is_nan() {
                    t_adapted = chees.final_length();
                }
                t_adapted
            };
            trajectory::n_steps(t_max, jitter, eps, opts.max_leapfrog)
        } else if opts.jitter_leapfrog {
            rng.random_range(1..2 * opts.n_leapfrog)
        } else {
            opts.n_leapfrog
        };

        // Momenta and initial energies.
        for i in 0..n {
            let r = i * d..(i + 1) * d;
            mass.sample_momentum(&mut rng, &mut p[r.clone()]);
            h0[i] = -state.logp[i] + mass.kinetic(&p[r]);
        }
        let mut proposal = state.clone();
        divergent.fill(false);
        out.n_evaluations += leapfrog(
            density,
            &mass,
            eps,
            n_steps,
            &mut proposal,
            &mut p,
            &h0,
            opts.max_energy_error,
            &mut divergent,
            &mut steps,
        )?;

        // Metropolis correction.
        for i in 0..n {
            let r = i * d..(i + 1) * d;
            accept[i] = if divergent[i] {
                0.0
            } else {
                let h1 = -proposal.logp[i] + mass.kinetic(&p[r.clone()]);
                (h0[i] - h1).exp().min(1.0)
            };
        }
        if opts.adapt_trajectory && it < n_adapt {
            x_before.copy_from_slice(&state.x);
        }
        for i in 0..n {
            let r = i * d..(i + 1) * d;
            let u: f64 = rng.random();
            if !divergent[i] && u < accept[i] {
                state.x[r.clone()].copy_from_slice(&proposal.x[r.clone()]);
                state.grad[r.clone()].copy_from_slice(&proposal.grad[r]);
                state.logp[i] = proposal.logp[i];
            }
        }
        let mean_accept = accept.iter().sum::<f64>() / n as f64;
        let n_div = divergent.iter().filter(|v| **v).count();
        if it < n_adapt {
            da.update(mean_accept);
            if opts.adapt_trajectory {
                let g = trajectory::chees_gradient(
                    &mass,
                    &x_before,
                    &proposal.x,
                    &p,
                    &accept,
                    jitter,
                    d,
                );
                chees.update(g);
                chees.limit(opts.max_leapfrog as f64 * da.current());
                if let Some(t) = opts.min_trajectory {
                    chees.floor(t);
                }
            }
        }
        let mut mass_update = 0.0;
        if let Some(&(_, end)) = windows.iter().find(|(a, b)| (*a..*b).contains(&it)) {
            for i in 0..n {
                match &mut with_gradients {
                    Some(w) => w.add(state.row(i), &state.grad[i * d..(i + 1) * d]),
                    None => pooled.add(state.row(i)),
                }
            }
            if it + 1 == end {
                let estimate = match &with_gradients {
                    Some(w) => w.mass_matrix(),
                    None => pooled.mass_matrix(&mass),
                };
                if let Some(m) = estimate {
                    mass = m;
                    da = DualAveraging::new(da.current(), opts.dual_averaging);
                    chees.restart_average();
                    out.warmup.mass_updates += 1;
                    mass_update = 1.0;
                }
                pooled.reset();
                if let Some(w) = &mut with_gradients {
                    *w = GradientMetricEstimator::new(&mass, d);
                }
            }
        }

        let step;
        if burn {
            step = it;
            out.warmup.step_size.push(eps);
            out.warmup.mean_accept.push(mean_accept);
            out.warmup.n_divergent += n_div;
        } else {
            step = it - opts.n_burn;
            out.step_size.push(eps);
            for i in 0..n {
                out.record(
                    i,
                    step,
                    state.row(i),
                    state.logp[i],
                    accept[i],
                    divergent[i],
                    steps[i],
                );
            }
        }
        stage_accept_sum += mean_accept;
        stage_divergent += n_div;
        let logp_mean = state.logp.iter().sum::<f64>() / n as f64;
        let mut metrics = vec![
            ("round", round as f64),
            ("step_size", eps),
            ("n_leapfrog", n_steps as f64),
            ("accept", mean_accept),
            ("accept_avg", stage_accept_sum / (step + 1) as f64),
            ("divergent", stage_divergent as f64),
            ("logp_mean", logp_mean),
            ("mass_update", mass_update),
        ];
        if opts.adapt_trajectory {
            metrics.push(("trajectory", t_max));
        }
        let (stage, total) = if burn {
            ("hmc_burn", opts.n_burn)
        } else {
            ("hmc_sample", opts.n_samples)
        };
        progress(&Progress {
            stage,
            step,
            total,
            metrics: &metrics,
        })?;
    }
    out.adapted_step_size = adapted;
    if opts.adapt_trajectory {
        if t_adapted.is_nan() {
            t_adapted = chees.final_length();
        }
        out.adapted_trajectory = Some(t_adapted);
    }
    Ok((out, state, mass))
}

/// Checks the options and evaluates the starting points `init` (row-major `n_chains x dim`), every one
/// of which must have a finite log-density.
pub(super) fn start<D: LogDensity + ?Sized>(
    density: &D,
    init: &[f64],
    mass: &MassMatrix,
    opts: &HmcOptions,
) -> Result<ChainStates> {
    opts.validate()?;
    let d = density.dim();
    let n = check_batch(d, init.len(), "HMC initial positions")?;
    mass.check_dim(d)?;
    let state = ChainStates::evaluate(density, init.to_vec())?;
    let bad = state.logp.iter().filter(|l| !l.is_finite()).count();
    if bad > 0 {
        bail!("HMC: {bad} of {n} initial positions have a non-finite log-density or gradient");
    }
    Ok(state)
}
