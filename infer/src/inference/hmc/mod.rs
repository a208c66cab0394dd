//! Hamiltonian Monte Carlo (GIGA-Lens Sec. 2.5), split by concern: the step-size adaptation
//! (`step_size`), the mass matrix (`mass_matrix`; its warm-up estimate from draws and gradients in
//! `gradient_metric`), the batched integrator (`leapfrog`), the chain loop
//! (`sampler`: one round of burn-in and sampling), the trajectory length (`trajectory`: ChEES), the rounds that repeat it until the draws converge
//! (`retry`), when a round counts as converged (`verdict`) and what a run keeps (`storage`).

pub mod gradient_metric;
pub mod leapfrog;
pub mod mass_matrix;
pub mod retry;
pub mod sampler;
pub mod step_size;
pub mod storage;
pub mod trajectory;
pub mod verdict;

pub use leapfrog::ChainStates;
pub use mass_matrix::MassMatrix;
pub use retry::{sample_hmc, sample_hmc_judged};
pub use sampler::HmcOptions;
pub use step_size::{DualAveraging, DualAveragingConfig};
pub use storage::{HmcDraws, RoundRecord, WarmupTrace};
pub use trajectory::{ChEES, ChEESConfig};
pub use verdict::RetryOptions;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::diagnostics;
    use crate::inference::progress::no_progress;
    use crate::inference::test_densities::normal_nan_where;
    use crate::prob::prior::MvNormal;
    use rand::{SeedableRng, rngs::StdRng};

    /// Correlated 4-D Gaussian with standard deviations `sd` and correlations up to 0.9.
    fn target(sd: [f64; 4]) -> MvNormal {
        let corr = [
            [1.0, 0.9, -0.3, 0.0],
            [0.9, 1.0, 0.0, 0.4],
            [-0.3, 0.0, 1.0, 0.5],
            [0.0, 0.4, 0.5, 1.0],
        ];
        let mut cov = vec![0.0; 16];
        for i in 0..4 {
            for j in 0..4 {
                cov[i * 4 + j] = corr[i][j] * sd[i] * sd[j];
            }
        }
        MvNormal::new(vec![1.0, -0.5, 3.0, 0.2], &cov).unwrap()
    }

    /// Starting points: a deliberately over-dispersed cloud (3 x the posterior scale) around the mean.
    fn starts(p: &MvNormal, n: usize, seed: u64) -> Vec<f64> {
        let wide = MvNormal::from_cholesky(
            p.mean().to_vec(),
            p.cholesky().iter().map(|v| 3.0 * v).collect(),
        )
        .unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x = vec![0.0; n * 4];
        for row in x.chunks_mut(4) {
            wide.sample_into(&mut rng, row);
        }
        x
    }

    /// Checks mean and covariance of the draws against the target within Monte-Carlo error: the error of a
    /// mean is sd / sqrt(ESS) and of a covariance entry about sd_i sd_j sqrt((1 + rho_ij^2) / ESS); allow
    /// 5 of those with the smallest bulk ESS of the run (for means) and the smallest bulk or tail ESS
    /// (for covariances: well-tuned HMC is antithetic, so the bulk ESS of a mean can exceed the number of
    /// draws while second moments gain no such bonus).
    fn check_recovery(draws: &HmcDraws, p: &MvNormal, what: &str) {
        let diag = diagnostics::diagnose(draws);
        let ess = diag
            .iter()
            .map(|d| d.ess_bulk)
            .fold(f64::INFINITY, f64::min);
        let ess2 = diag
            .iter()
            .map(|d| d.ess_bulk.min(d.ess_tail))
            .fold(f64::INFINITY, f64::min);
        eprintln!(
            "{what}: eps {} acc {} diag {:?}",
            draws.adapted_step_size,
            draws.mean_accept(),
            diag
        );
        assert!(ess > 400.0, "{what}: min bulk ESS {ess}");
        for (k, d) in diag.iter().enumerate() {
            assert!(d.rhat < 1.01, "{what}: R-hat of {k} is {}", d.rhat);
        }
        let cov = p.covariance();
        let m = draws.mean();
        let c = draws.covariance();
        for i in 0..4 {
            let si = cov[i * 4 + i].sqrt();
            assert!(
                (m[i] - p.mean()[i]).abs() < 5.0 * si / ess.sqrt(),
                "{what}: mean {i}: {} vs {}",
                m[i],
                p.mean()[i]
            );
            for j in 0..4 {
                let sj = cov[j * 4 + j].sqrt();
                let rho = cov[i * 4 + j] / (si * sj);
                let tol = 5.0 * si * sj * ((1.0 + rho * rho) / ess2).sqrt();
                assert!(
                    (c[i * 4 + j] - cov[i * 4 + j]).abs() < tol,
                    "{what}: cov ({i},{j}): {} vs {}",
                    c[i * 4 + j],
                    cov[i * 4 + j]
                );
            }
        }
    }

    /// Dual averaging holds the mean acceptance at the 0.75 target while it adapts (checked over the second
    /// half of the adaptation window, where the step size has settled); the averaged step size used
    /// afterwards is somewhat smaller, so the sampling-phase acceptance lies a little above the target.
    fn check_acceptance(draws: &HmcDraws) {
        let w = &draws.warmup.mean_accept;
        let n_adapt = (w.len() as f64 * 0.8) as usize;
        let adapt = &w[n_adapt / 2..n_adapt];
        let a = adapt.iter().sum::<f64>() / adapt.len() as f64;
        assert!((a - 0.75).abs() < 0.04, "acceptance while adapting {a}");
        let acc = draws.mean_accept();
        assert!(acc > 0.7 && acc < 0.92, "acceptance while sampling {acc}");
    }

    /// A diagonal mass matrix 10x too narrow in every width that ignores the correlations (what Table 1's
    /// VI gave on the reference system).
    fn too_narrow(p: &MvNormal) -> MassMatrix {
        let cov = p.covariance();
        MassMatrix::from_scales((0..4).map(|i| 0.1 * cov[i * 4 + i].sqrt()).collect()).unwrap()
    }

    fn opts(seed: u64) -> HmcOptions {
        HmcOptions {
            n_burn: 300,
            n_samples: 500,
            seed,
            ..Default::default()
        }
    }

    /// Preconditioned by the exact covariance (what VI provides), on a correlated Gaussian whose scales span
    /// a factor 1000: mean and covariance recovered, acceptance near the 0.75 target, no divergences.
    #[test]
    fn preconditioned_hmc_recovers_a_strongly_scaled_gaussian() {
        let p = target([1.0, 0.001, 0.3, 0.02]);
        let mass = MassMatrix::from_cholesky(p.cholesky().to_vec(), 4).unwrap();
        let init = starts(&p, 16, 1);
        let draws = sample_hmc(&p, &init, &mass, &opts(2), no_progress).unwrap();
        check_recovery(&draws, &p, "dense mass");
        check_acceptance(&draws);
        assert_eq!(draws.n_divergent(), 0);
        assert_eq!(draws.warmup.step_size.len(), 300);
        // Jittered trajectories: mean L leapfrog steps (one batched evaluation each) per iteration.
        let per_iter = (draws.n_evaluations - 1) as f64 / 800.0;
        let want = opts(2).n_leapfrog as f64;
        assert!(
            (per_iter - want).abs() < 0.06 * want,
            "{per_iter} evaluations per iteration"
        );
        // The recorded step counts: one jittered length in 1..=2L-1 per iteration, shared by all chains
        // (none diverged), mean L.
        let (c, t) = (draws.n_chains, draws.n_draws);
        assert_eq!(draws.n_steps.len(), c * t);
        for d in 0..t {
            let s = draws.n_steps[d];
            assert!(
                (1..2 * opts(2).n_leapfrog).contains(&s),
                "draw {d}: {s} steps"
            );
            assert!((0..c).all(|ch| draws.n_steps[ch * t + d] == s));
        }
        let mean = draws.n_steps.iter().sum::<usize>() as f64 / (c * t) as f64;
        assert!((mean - want).abs() < 0.1 * want, "mean steps {mean}");
    }

    /// Identity mass on a correlated, moderately scaled Gaussian: slower mixing, still correct.
    #[test]
    fn identity_mass_hmc_recovers_a_correlated_gaussian() {
        let p = target([1.0, 0.5, 0.8, 0.6]);
        let init = starts(&p, 16, 3);
        // Without preconditioning the step is set by the narrowest direction (sd ~ 0.1 here) and the chains
        // need longer trajectories and a longer burn-in to cross the widest one (sd ~ 1.4).
        let o = HmcOptions {
            n_leapfrog: 20,
            n_burn: 500,
            n_samples: 1000,
            adapt_mass: false,
            ..opts(4)
        };
        let draws = sample_hmc(&p, &init, &MassMatrix::Identity, &o, no_progress).unwrap();
        check_recovery(&draws, &p, "identity mass");
        check_acceptance(&draws);
    }

    /// A mass matrix from a VI fit that underestimated every width 10x and missed the correlations (what
    /// Table 1's VI gave on the reference system) is repaired by the warm-up re-estimation: the draws
    /// recover the target, with an ESS several times that of the same run without adaptation.
    #[test]
    fn warmup_mass_adaptation_repairs_a_bad_preconditioner() {
        let p = target([1.0, 0.001, 0.3, 0.02]);
        let bad = too_narrow(&p);
        let init = starts(&p, 32, 5);
        let o = HmcOptions {
            n_burn: 250,
            n_samples: 500,
            // Short trajectories, where the preconditioner matters most.
            n_leapfrog: 5,
            ..opts(6)
        };
        let adapted = sample_hmc(&p, &init, &bad, &o, no_progress).unwrap();
        assert_eq!(adapted.warmup.mass_updates, 2);
        check_recovery(&adapted, &p, "adapted mass");
        let fixed = HmcOptions {
            adapt_mass: false,
            ..o
        };
        let plain = sample_hmc(&p, &init, &bad, &fixed, no_progress).unwrap();
        let min_ess = |d: &HmcDraws| {
            diagnostics::diagnose(d)
                .iter()
                .map(|x| x.ess_bulk)
                .fold(f64::INFINITY, f64::min)
        };
        let (a, b) = (min_ess(&adapted), min_ess(&plain));
        assert!(a > 3.0 * b, "min ESS with adaptation {a}, without {b}");
    }

    /// ChEES sets the trajectory from the chains: with an exact metric (step ~1) a fixed L = 10 is far
    /// longer than mixing needs; ChEES started from T = L eps0 = 3 stays near the Gaussian optimum of
    /// the jittered length (2.25; the next local optimum is at 5.5), recovers the target, and reaches a
    /// larger ESS per evaluation.
    #[test]
    fn chees_shortens_an_overlong_trajectory() {
        let p = target([1.0, 0.001, 0.3, 0.02]);
        let exact = MassMatrix::from_covariance(&p.covariance(), 4).unwrap();
        let init = starts(&p, 16, 11);
        let fixed = HmcOptions {
            n_leapfrog: 10,
            ..opts(12)
        };
        let chees = HmcOptions {
            adapt_trajectory: true,
            ..fixed.clone()
        };
        let per_eval = |d: &HmcDraws| {
            let ess = diagnostics::diagnose(d)
                .iter()
                .map(|x| x.ess_bulk.min(x.ess_tail))
                .fold(f64::INFINITY, f64::min);
            ess / d.n_evaluations as f64
        };
        let a = sample_hmc(&p, &init, &exact, &chees, no_progress).unwrap();
        check_recovery(&a, &p, "chees");
        let t = a.adapted_trajectory.unwrap();
        assert!(t > 1.2 && t < 4.0, "adapted T = {t}");
        assert_eq!(a.rounds[0].trajectory, Some(t));
        let b = sample_hmc(&p, &init, &exact, &fixed, no_progress).unwrap();
        assert!(b.adapted_trajectory.is_none());
        let (ea, eb) = (per_eval(&a), per_eval(&b));
        assert!(ea > 2.0 * eb, "ESS per evaluation: ChEES {ea}, L = 10 {eb}");
    }

    /// The same bad preconditioner without warm-up adaptation and a short burn-in: the first round misses
    /// the targets, becomes warm-up, and the next round, with the metric re-estimated from its draws,
    /// converges and recovers the target. Only the kept round's draws are returned; the evaluations of
    /// every round are counted.
    #[test]
    fn unconverged_rounds_become_warmup_and_the_next_round_converges() {
        let p = target([1.0, 0.001, 0.3, 0.02]);
        let bad = too_narrow(&p);
        let init = starts(&p, 16, 7);
        let o = HmcOptions {
            n_burn: 100,
            n_samples: 400,
            n_leapfrog: 5,
            adapt_mass: false,
            retry: RetryOptions::default(),
            ..opts(8)
        };
        let draws = sample_hmc(&p, &init, &bad, &o, no_progress).unwrap();
        let r = &draws.rounds;
        assert!(r.len() >= 2, "{r:?}");
        assert!(
            !r[0].misses.is_empty() && r.last().unwrap().misses.is_empty(),
            "{r:?}"
        );
        assert_eq!((r[0].n_burn, r[1].n_burn), (100, 100));
        // a later round keeps eps L >= 2 with at most 4 L steps
        let want = ((2.0 / r[0].step_size).ceil() as usize).clamp(5, 20);
        assert_eq!((r[0].n_leapfrog, r[1].n_leapfrog), (5, want));
        assert_eq!(draws.n_draws, 400);
        assert_eq!(
            draws.n_evaluations,
            1 + r.iter().map(|x| x.evaluations).sum::<usize>()
        );
        assert_eq!(draws.warmup.mass_updates, r.len() - 1);
        assert_eq!(draws.warmup.step_size.len(), 100 * r.len());
        check_recovery(&draws, &p, "after retry");
        // one round only (Table 1): the same first round, kept as it is
        let once = HmcOptions {
            retry: RetryOptions::single(),
            ..o
        };
        let first = sample_hmc(&p, &init, &bad, &once, no_progress).unwrap();
        assert_eq!(first.rounds.len(), 1);
        assert_eq!(first.rounds[0], r[0]);
    }

    /// With ChEES, a later round keeps the mean trajectory at least `retry.trajectory` (T >= 4): the
    /// first round's T is whatever ChEES found, later ones start from it or the floor and stay above it.
    #[test]
    fn later_chees_rounds_keep_the_trajectory_floor() {
        let p = target([1.0, 0.001, 0.3, 0.02]);
        let bad = too_narrow(&p);
        let init = starts(&p, 16, 7);
        let o = HmcOptions {
            n_burn: 100,
            n_samples: 400,
            adapt_mass: false,
            adapt_trajectory: true,
            trajectory_length: Some(0.5),
            retry: RetryOptions::default(),
            ..opts(8)
        };
        let draws = sample_hmc(&p, &init, &bad, &o, no_progress).unwrap();
        let r = &draws.rounds;
        assert!(r.len() >= 2, "{r:?}");
        for later in &r[1..] {
            let t = later.trajectory.unwrap();
            assert!(t >= 4.0 - 1e-9, "round T {t}");
        }
        assert!(r.last().unwrap().misses.is_empty(), "{r:?}");
        check_recovery(&draws, &p, "chees rounds");
    }

    /// A density that is NaN on a slab cutting through the bulk: trajectories crossing it diverge; they
    /// must be counted, rejected, and never produce a draw inside the slab or a panic.
    #[test]
    fn divergences_are_counted_and_rejected() {
        let slab = normal_nan_where(vec![0.0; 2], |x| (0.5..0.7).contains(&x[0]));
        let init = vec![-1.0, 0.0, 1.5, 0.3, 0.0, 0.0, -0.2, 1.0];
        let o = HmcOptions {
            n_burn: 100,
            n_samples: 300,
            ..Default::default()
        };
        let draws = sample_hmc(&slab, &init, &MassMatrix::Identity, &o, no_progress).unwrap();
        assert!(draws.n_divergent() > 0 && draws.warmup.n_divergent > 0);
        let mut shorter = 0;
        for c in 0..4 {
            for t in 0..300 {
                let x = draws.draw(c, t);
                assert!(x.iter().all(|v| v.is_finite()) && !(0.5..0.7).contains(&x[0]));
                // a divergent trajectory stops early: never more steps than a chain that went through
                let full = (0..4)
                    .filter(|&o| !draws.divergent[o * 300 + t])
                    .map(|o| draws.n_steps[o * 300 + t])
                    .max();
                if let Some(full) = full {
                    assert!(draws.n_steps[c * 300 + t] <= full);
                    shorter += usize::from(draws.n_steps[c * 300 + t] < full);
                }
                assert!(draws.n_steps[c * 300 + t] >= 1);
                if draws.divergent[c * 300 + t] {
                    assert_eq!(draws.accept_prob[c * 300 + t], 0.0);
                    // A rejected transition repeats the previous draw.
                    if t > 0 {
                        assert_eq!(x, draws.draw(c, t - 1));
                    }
                }
            }
        }
        assert!(shorter > 0, "no divergent trajectory was cut short");
        // retried after divergences: each later round targets a higher acceptance (smaller steps)
        let retry = HmcOptions {
            retry: RetryOptions {
                max_rounds: 3,
                max_divergent: 0.0,
                ..RetryOptions::default()
            },
            ..o.clone()
        };
        let again = sample_hmc(&slab, &init, &MassMatrix::Identity, &retry, no_progress).unwrap();
        let t: Vec<f64> = again.rounds.iter().map(|r| r.target_accept).collect();
        let t0 = o.dual_averaging.target_accept;
        assert_eq!(t.len(), 3, "{:?}", again.rounds);
        assert!(
            (t[1] - (t0 + 1.0) / 2.0).abs() < 1e-12 && (t[2] - (t[1] + 1.0) / 2.0).abs() < 1e-12
        );
        assert!(again.rounds[2].step_size < again.rounds[0].step_size);
        // Non-finite starting points are a clear error, not a panic.
        let e = sample_hmc(&slab, &[0.6, 0.0], &MassMatrix::Identity, &o, no_progress).unwrap_err();
        assert!(e.to_string().contains("non-finite"), "{e}");
    }

    /// Rounds of 50 + 40 iterations, three at most, continued up to `extend` x 40 draws per chain.
    fn short_rounds(extend: f64) -> HmcOptions {
        HmcOptions {
            n_burn: 50,
            n_samples: 40,
            retry: RetryOptions {
                max_rounds: 3,
                extend,
                ..RetryOptions::default()
            },
            ..Default::default()
        }
    }

    /// Diagnostics that depend on the draws per chain n alone: `f(n)` = (R-hat, bulk = tail ESS).
    fn by_length(
        f: impl Fn(usize) -> (f64, f64),
    ) -> impl Fn(&HmcDraws) -> Vec<diagnostics::ParamDiagnostics> {
        move |d: &HmcDraws| {
            let (rhat, ess) = f(d.n_draws);
            (0..d.dim)
                .map(|_| diagnostics::ParamDiagnostics {
                    rhat,
                    ess_bulk: ess,
                    ess_tail: ess,
                    split: None,
                })
                .collect()
        }
    }

    /// A round that alone misses but passes joined to the previous round's draws keeps both: each
    /// returned chain is round 1's draws followed by round 2's. Judged here by the draw count alone
    /// (converged from `need` draws per chain).
    #[test]
    fn a_round_short_of_draws_is_kept_with_the_previous_one() {
        let p = target([1.0, 1.0, 1.0, 1.0]);
        let o = short_rounds(RetryOptions::default().extend);
        let judge = |need: usize| by_length(move |n| (if n >= need { 1.0 } else { 1.1 }, 1000.0));
        let init = starts(&p, 4, 0);
        let id = MassMatrix::Identity;
        let draws = sample_hmc_judged(&p, &init, &id, &o, &judge(80), &[], no_progress).unwrap();
        assert_eq!((draws.n_draws, draws.rounds.len()), (80, 2));
        assert!(!draws.rounds[0].with_previous && draws.rounds[1].with_previous);
        assert!(!draws.rounds[0].misses.is_empty() && draws.rounds[1].misses.is_empty());
        assert_eq!(draws.step_size.len(), 80);
        // each round's record counts its own density evaluations; the draws count the whole run's
        let per_round: usize = draws.rounds.iter().map(|r| r.evaluations).sum();
        assert!(per_round > 0 && per_round < draws.n_evaluations);
        let single = HmcOptions {
            retry: RetryOptions::single(),
            ..o.clone()
        };
        let first = sample_hmc(&p, &init, &id, &single, no_progress).unwrap();
        for c in 0..4 {
            for t in 0..40 {
                assert_eq!(draws.draw(c, t), first.draw(c, t), "chain {c} draw {t}");
            }
        }
        assert_ne!(draws.draw(0, 40), first.draw(0, 39));
        // joined rounds that still miss are not kept: the last round alone, as before (not continued)
        let o = short_rounds(0.0);
        let draws = sample_hmc_judged(&p, &init, &id, &o, &judge(120), &[], no_progress).unwrap();
        assert_eq!((draws.n_draws, draws.rounds.len()), (40, 3));
        assert!(draws.rounds.iter().all(|r| !r.with_previous));
    }

    /// A round short of draws continues its chains instead of warming up again: judged by the draw
    /// count (ESS = `per_draw` x draws per chain), the chains run on from where round 1 stopped.
    #[test]
    fn a_round_short_of_draws_continues_its_chains() {
        let p = target([1.0, 1.0, 1.0, 1.0]);
        let o = short_rounds(RetryOptions::default().extend);
        let judge = |per_draw: f64| by_length(move |n| (1.0, per_draw * n as f64));
        let init = starts(&p, 4, 0);
        let id = MassMatrix::Identity;
        // ESS 320 of 400: 1.2 x 1.25 x 40 draws wanted, 20 more (within one round's 40)
        let draws = sample_hmc_judged(&p, &init, &id, &o, &judge(8.0), &[], no_progress).unwrap();
        assert_eq!(
            (draws.n_draws, draws.rounds.len()),
            (60, 1),
            "{:?}",
            draws.rounds
        );
        assert_eq!(draws.rounds[0].extended, 20);
        assert!(draws.rounds[0].misses.is_empty());
        assert_eq!(draws.step_size.len(), 60);
        let single = HmcOptions {
            retry: RetryOptions::single(),
            ..o.clone()
        };
        let first = sample_hmc(&p, &init, &id, &single, no_progress).unwrap();
        assert_eq!(first.n_draws, 40);
        for c in 0..4 {
            for t in 0..40 {
                assert_eq!(draws.draw(c, t), first.draw(c, t), "chain {c} draw {t}");
            }
            // the continuation starts from the last draw: no warm-up jump (at most one leapfrog move)
            assert!(
                draws.step_size[40..]
                    .iter()
                    .all(|&e| e == draws.rounds[0].step_size)
            );
        }
        // ESS 40 of 400: more than one round's draws, so round 1 warms up round 2, and so on; the
        // last round continues up to its budget (3 x 40) and stays flagged
        let draws = sample_hmc_judged(&p, &init, &id, &o, &judge(1.0), &[], no_progress).unwrap();
        let extended: Vec<usize> = draws.rounds.iter().map(|r| r.extended).collect();
        assert_eq!(extended, [0, 0, 120]);
        assert_eq!(draws.n_draws, 160);
        assert!(!draws.rounds[2].misses.is_empty());
        // extend = 0: never continued; round 2 passes joined to round 1
        let never = short_rounds(0.0);
        let draws =
            sample_hmc_judged(&p, &init, &id, &never, &judge(8.0), &[], no_progress).unwrap();
        assert_eq!((draws.n_draws, draws.rounds.len()), (80, 2));
        assert!(draws.rounds.iter().all(|r| r.extended == 0) && draws.rounds[1].with_previous);
    }

    /// The progress callback sees every iteration of both stages and can abort the run.
    #[test]
    fn progress_reports_and_aborts() {
        let p = target([1.0, 1.0, 1.0, 1.0]);
        let o = HmcOptions {
            n_burn: 10,
            n_samples: 20,
            ..Default::default()
        };
        let mut seen = Vec::new();
        sample_hmc(&p, &starts(&p, 2, 0), &MassMatrix::Identity, &o, |pr| {
            seen.push((pr.stage.to_string(), pr.step, pr.total));
            Ok(())
        })
        .unwrap();
        // 30 iterations, then the round's verdict
        assert_eq!(seen.len(), 31);
        assert_eq!(seen[9], ("hmc_burn".to_string(), 9, 10));
        assert_eq!(seen[10], ("hmc_sample".to_string(), 0, 20));
        assert_eq!(seen[30].0, "hmc_round");
        let e = sample_hmc(&p, &starts(&p, 2, 0), &MassMatrix::Identity, &o, |pr| {
            anyhow::ensure!(pr.step < 5, "interrupted");
            Ok(())
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "interrupted");
    }

    /// A 40-D Gaussian shaped like the paper-grid posteriors (widths over 3 decades, one ridge 1e3 times
    /// thinner than its neighbours) sampled from a metric whose thin direction is 30x too wide and the
    /// rest off by up to 2x (what VI hands over on a ridge), with the pipeline's budget: 8 chains x
    /// (150 + 300), ChEES. Warm-up from the draws alone cannot resolve the ridge from 8 x 24 and 8 x 42
    /// correlated draws; from draws and gradients it does, and the ESS follows.
    #[test]
    fn gradient_metric_resolves_a_ridge_the_draws_cannot() {
        use rand::RngExt;
        let d = 40;
        let mut rng = StdRng::seed_from_u64(21);
        // a random orthogonal basis by Gram-Schmidt
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < d {
            let mut v: Vec<f64> = (0..d)
                .map(|_| rng.sample(rand_distr::StandardNormal))
                .collect();
            for u in &q {
                let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            q.push(v.iter().map(|a| a / norm).collect());
        }
        let sd: Vec<f64> = (0..d)
            .map(|k| {
                if k == 0 {
                    1e-5
                } else {
                    10f64.powf(-3.0 + 3.0 * k as f64 / d as f64)
                }
            })
            .collect();
        let build = |var: &dyn Fn(usize) -> f64| {
            let mut c = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..d {
                    c[i * d + j] = (0..d).map(|k| q[k][i] * var(k) * q[k][j]).sum();
                }
            }
            c
        };
        let cov = build(&|k| sd[k] * sd[k]);
        let p = MvNormal::new(vec![0.5; d], &cov).unwrap();
        let off: Vec<f64> = (0..d)
            .map(|_| 2f64.powf(rng.random_range(-1.0..1.0)))
            .collect();
        let vi = build(&|k| {
            let f = if k == 0 { 30.0 } else { off[k] };
            (f * sd[k]).powi(2)
        });
        let mass = MassMatrix::from_covariance(&vi, d).unwrap();
        let vi_p = MvNormal::new(vec![0.5; d], &vi).unwrap();
        let mut init = vec![0.0; 8 * d];
        for row in init.chunks_mut(d) {
            vi_p.sample_into(&mut rng, row);
        }
        let o = HmcOptions {
            n_burn: 150,
            n_samples: 300,
            adapt_trajectory: true,
            ..opts(22)
        };
        let min_ess = |x: &HmcDraws| {
            diagnostics::diagnose(x)
                .iter()
                .map(|v| v.ess_bulk.min(v.ess_tail))
                .fold(f64::INFINITY, f64::min)
        };
        let max_rhat = |x: &HmcDraws| {
            diagnostics::diagnose(x)
                .iter()
                .map(|v| v.rhat)
                .fold(0.0, f64::max)
        };
        let draws = sample_hmc(&p, &init, &mass, &o, no_progress).unwrap();
        let both = HmcOptions {
            mass_gradients: Some(true),
            ..o
        };
        let grads = sample_hmc(&p, &init, &mass, &both, no_progress).unwrap();
        // the draws' variance along the thin and the widest direction, within Monte-Carlo error
        let c = grads.covariance();
        for k in [0, d - 1] {
            let v: f64 = (0..d * d).map(|m| q[k][m / d] * c[m] * q[k][m % d]).sum();
            let ratio = v / (sd[k] * sd[k]);
            assert!(
                (ratio - 1.0).abs() < 0.25,
                "direction {k}: variance ratio {ratio}"
            );
        }
        let (a, b) = (min_ess(&grads), min_ess(&draws));
        // seed 22: 570 against 10, R-hat 1.02 against 2.4, with a quarter of the evaluations
        assert!(
            a > 200.0 && a > 10.0 * b,
            "min ESS: gradients {a}, draws {b}"
        );
        assert!(max_rhat(&grads) < 1.05 && max_rhat(&draws) > 1.2);
        assert!(grads.n_evaluations < draws.n_evaluations);
    }
}
