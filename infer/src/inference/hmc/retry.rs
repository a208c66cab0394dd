//! Sampling until converged: a round whose draws miss the targets (split R-hat, bulk and tail ESS,
//! divergences) becomes warm-up for another. The next round starts the chains where they stopped, with
//! the dense mass matrix re-estimated from all of that round's draws (chains x draws of them, far more
//! than a burn-in window holds; where chains disagree, the between-chain spread widens the metric along
//! the direction they disagree on), the step size re-adapted by dual averaging over `n_burn` iterations,
//! trajectories lengthened where the last step was small (mean length kept at least `trajectory`
//! whitened units, with ChEES or a fixed L; at most `max_leapfrog_factor` L steps: with a fixed L = 10 a step of 0.08 moves the chains
//! 0.8 posterior widths per transition, a random walk) and, if more than `max_divergent` of the transitions diverged, the target acceptance moved halfway
//! to 1 (Stan's remedy for divergences: smaller steps). The last round's draws are kept, joined to
//! the previous round's when the round alone misses but the two together pass: every round runs a
//! fixed kernel from the previous one's end, so a round that had reached the posterior is a valid
//! sample too, and split R-hat over the joined chains compares the two rounds (a round that had not is
//! caught there). A round that misses only by its length is continued instead, when one round's draws
//! suffice (on the last round, up to `extend` x its draws): its chains run on with the kernel they ended
//! with, sized from R-hat - 1 ~ 1/n and ESS ~ n. Earlier rounds are warm-up. GIGA-Lens runs a fixed budget; a study of many systems needs each one
//! converged or flagged, and most converge in the first round.

use anyhow::Result;

use super::mass_matrix::{CovarianceEstimator, MassMatrix};
use super::sampler::{HmcOptions, sample_round, start};
use super::storage::{HmcDraws, RoundRecord};
use crate::density::LogDensity;
use crate::inference::diagnostics::{self, ParamDiagnostics};
use crate::inference::progress::Progress;

/// Runs HMC from `init` (row-major `n_chains x dim`, e.g. draws of the VI surrogate), in rounds until
/// the draws converge (see the module doc), judging them by [`diagnostics::diagnose`] of the
/// unconstrained draws. Every chain must start at a finite log-density.
pub fn sample_hmc<D, F>(
    density: &D,
    init: &[f64],
    mass: &MassMatrix,
    opts: &HmcOptions,
    progress: F,
) -> Result<HmcDraws>
where
    D: LogDensity + ?Sized,
    F: FnMut(&Progress) -> Result<()>,
{
    sample_hmc_judged(
        density,
        init,
        mass,
        opts,
        &diagnostics::diagnose,
        &[],
        progress,
    )
}

/// [`sample_hmc`] judging each round by `diagnose` (e.g. the diagnostics of the physical values,
/// which is what a run reports); `latent[i]` judges parameter i by `retry.latent_rhat`.
/// After each round `progress` also gets stage "hmc_round" with its verdict (`max_rhat`,
/// `min_ess_bulk`, `min_ess_tail`, `divergent_fraction`, `converged`).
pub fn sample_hmc_judged<D, F>(
    density: &D,
    init: &[f64],
    mass: &MassMatrix,
    opts: &HmcOptions,
    diagnose: &dyn Fn(&HmcDraws) -> Vec<ParamDiagnostics>,
    latent: &[bool],
    mut progress: F,
) -> Result<HmcDraws>
where
    D: LogDensity + ?Sized,
    F: FnMut(&Progress) -> Result<()>,
{
    let mut state = start(density, init, mass, opts)?;
    let d = state.dim;
    let mut evaluations = 1;
    let mut round_opts = opts.clone();
    let mut mass = mass.clone();
    let mut rounds = Vec::new();
    let mut warmup = super::storage::WarmupTrace::default();
    let max_rounds = opts.retry.max_rounds.max(1);
    let mut previous: Option<HmcDraws> = None;
    for round in 1..=max_rounds {
        let (alone, end, used) =
            sample_round(density, state, &mass, &round_opts, round, &mut progress)?;
        evaluations += alone.n_evaluations;
        let diag_alone = diagnose(&alone);
        let misses_alone = opts.retry.misses(&diag_alone, latent, &alone);
        let frac_alone = alone.divergent_fraction();
        let round_warmup = alone.warmup.clone();
        let round_evaluations = alone.n_evaluations;
        // The chains ran on from where the previous round stopped, so when this round alone misses but
        // both rounds' draws together pass (split R-hat then also compares the two rounds), both are
        // kept: a round that only lacked draws needs no third one.
        let joined = previous
            .as_ref()
            .filter(|_| !misses_alone.is_empty())
            .map(|prev| prev.joined(&alone))
            .map(|both| {
                let diag = diagnose(&both);
                let misses = opts.retry.misses(&diag, latent, &both);
                (both, diag, misses)
            })
            .filter(|(_, _, misses)| misses.is_empty());
        let with_previous = joined.is_some();
        let (mut draws, mut diag, mut misses) = match joined {
            Some(j) => j,
            None => (alone, diag_alone.clone(), misses_alone.clone()),
        };
        // A round short of draws continues its chains with the kernel it ended with (no new warm-up).
        let mut end = end;
        let mut extended = 0;
        let mut round_evaluations = round_evaluations;
        while !misses.is_empty() {
            let last = round == max_rounds;
            let n = round_opts.n_samples;
            let Some(more) = opts
                .retry
                .extension(&diag, latent, &draws, n, extended, last)
            else {
                break;
            };
            let cont = HmcOptions {
                n_burn: 0,
                n_samples: more,
                step_size: draws.adapted_step_size,
                trajectory_length: draws.adapted_trajectory,
                min_trajectory: None,
                adapt_mass: false,
                seed: round_opts.seed ^ (0x9e37_79b9 + extended as u64),
                ..round_opts.clone()
            };
            let (tail, after, _) = sample_round(density, end, &used, &cont, round, &mut progress)?;
            end = after;
            extended += more;
            evaluations += tail.n_evaluations;
            round_evaluations += tail.n_evaluations;
            draws = draws.joined(&tail);
            diag = diagnose(&draws);
            misses = opts.retry.misses(&diag, latent, &draws);
        }
        // the progress event reports the round's own draws (extended, if it was)
        let (diag_alone, frac_alone, converged_alone) = if with_previous {
            (diag_alone, frac_alone, misses_alone.is_empty())
        } else {
            (diag.clone(), draws.divergent_fraction(), misses.is_empty())
        };
        let frac = draws.divergent_fraction();
        let n_leapfrog = if round_opts.adapt_trajectory {
            let steps = &draws.n_steps;
            (steps.iter().sum::<usize>() as f64 / steps.len().max(1) as f64).round() as usize
        } else {
            round_opts.n_leapfrog
        };
        rounds.push(RoundRecord {
            n_burn: round_opts.n_burn,
            n_leapfrog,
            trajectory: draws.adapted_trajectory,
            n_samples: round_opts.n_samples,
            step_size: draws.adapted_step_size,
            target_accept: round_opts.dual_averaging.target_accept,
            max_rhat: diag
                .iter()
                .map(|d| d.rhat)
                .fold(f64::NEG_INFINITY, f64::max),
            min_ess_bulk: diag
                .iter()
                .map(|d| d.ess_bulk)
                .fold(f64::INFINITY, f64::min),
            min_ess_tail: diag
                .iter()
                .map(|d| d.ess_tail)
                .fold(f64::INFINITY, f64::min),
            divergent: draws.n_divergent(),
            evaluations: round_evaluations,
            misses: misses.clone(),
            with_previous,
            extended,
        });
        // the round's own verdict as it happens (a run stopped in a later round still knows why)
        let fold = |f: fn(&ParamDiagnostics) -> f64, init: f64, pick: fn(f64, f64) -> f64| {
            diag_alone.iter().map(f).fold(init, pick)
        };
        progress(&Progress {
            stage: "hmc_round",
            step: round - 1,
            total: max_rounds,
            metrics: &[
                ("round", round as f64),
                ("max_rhat", fold(|d| d.rhat, f64::NEG_INFINITY, f64::max)),
                (
                    "min_ess_bulk",
                    fold(|d| d.ess_bulk, f64::INFINITY, f64::min),
                ),
                (
                    "min_ess_tail",
                    fold(|d| d.ess_tail, f64::INFINITY, f64::min),
                ),
                ("divergent_fraction", frac_alone),
                ("step_size", draws.adapted_step_size),
                ("n_leapfrog", n_leapfrog as f64),
                ("converged", if converged_alone { 1.0 } else { 0.0 }),
                ("with_previous", if with_previous { 1.0 } else { 0.0 }),
                ("extended", extended as f64),
            ],
        })?;
        warmup.step_size.extend_from_slice(&round_warmup.step_size);
        warmup
            .mean_accept
            .extend_from_slice(&round_warmup.mean_accept);
        warmup.n_divergent += round_warmup.n_divergent;
        warmup.mass_updates += round_warmup.mass_updates;
        if with_previous {
            // the previous round's divergences are sampling ones again
            let kept = previous.as_ref().map_or(0, HmcDraws::n_divergent);
            warmup.n_divergent -= kept;
        }
        if misses.is_empty() || round == max_rounds {
            draws.warmup = warmup;
            draws.n_evaluations = evaluations;
            draws.rounds = rounds;
            return Ok(draws);
        }
        // the round is warm-up unless the next one keeps it: its draws give the metric
        warmup.n_divergent += draws.n_divergent();
        let mut pooled = CovarianceEstimator::new(d);
        for k in 0..draws.n_chains * draws.n_draws {
            pooled.add(&draws.draws[k * d..(k + 1) * d]);
        }
        mass = match pooled.mass_matrix(&used) {
            Some(m) => {
                warmup.mass_updates += 1;
                m
            }
            None => used,
        };
        state = end;
        round_opts.n_burn = opts.retry.n_burn;
        round_opts.adapt_fraction = 1.0;
        round_opts.adapt_mass = false;
        let eps = draws.adapted_step_size;
        if let Some(t) = draws
            .adapted_trajectory
            .filter(|t| t.is_finite() && *t > 0.0)
        {
            // ChEES goes on adapting from where it stopped, but a later round integrates at least
            // `trajectory` on average (T >= 2 trajectory, u T having mean T / 2): systems that need
            // rounds need longer trajectories than ChEES picks (docs/performance.md)
            let floor = 2.0 * opts.retry.trajectory;
            round_opts.trajectory_length = Some(t.max(floor));
            round_opts.min_trajectory = Some(floor);
        }
        if eps.is_finite() && eps > 0.0 {
            round_opts.step_size = eps;
            let most = opts.n_leapfrog * opts.retry.max_leapfrog_factor;
            let want = (opts.retry.trajectory / eps).ceil() as usize;
            round_opts.n_leapfrog = want.clamp(opts.n_leapfrog, most.max(opts.n_leapfrog));
        }
        if frac > opts.retry.max_divergent {
            let t = &mut round_opts.dual_averaging.target_accept;
            *t = 0.5 * (*t + 1.0);
        }
        round_opts.seed = opts.seed.wrapping_add(round as u64);
        previous = Some(draws);
    }
    unreachable!("the last round returns")
}
