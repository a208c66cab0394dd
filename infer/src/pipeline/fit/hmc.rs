//! Stage 3, preconditioned HMC (GIGA-Lens Sec. 2.5): chains started from draws of q (or of the
//! Laplace approximation at the MAP point), the mass matrix q's covariance, rounds continued or
//! restarted until R-hat, ESS and divergences pass; the draws go to `samples.h5`.

use std::time::Instant;

use super::progress::Stage;
use super::*;

/// What the HMC stage leaves: the draws (unconstrained and physical), and when it ran now its cost
/// and rounds.
#[derive(Default)]
pub(super) struct HmcOutcome {
    pub draws: Option<(HmcDraws, Vec<f64>)>,
    /// (gradient evaluations, seconds).
    pub cost: Option<(usize, f64)>,
    pub rounds: Option<Value>,
    pub rounds_now: Vec<crate::inference::hmc::RoundRecord>,
    pub time_s: Option<f64>,
}

/// Reload `samples.h5`, or run the stage when enabled.
pub(super) fn stage(
    cx: &Ctx<'_>,
    run: &mut Run,
    map: Option<&MapArtifact>,
    vi: Option<&ViArtifact>,
) -> Result<HmcOutcome> {
    let Ctx {
        cfg,
        post,
        names,
        layout,
        art,
        dim,
        ..
    } = *cx;
    let mut out = HmcOutcome::default();
    let samples_path = art.join("samples.h5");
    if cfg.stages.hmc && !samples_path.exists() {
        run.begin_stage("hmc")?;
        run.log("stage", json!({"stage": "hmc"}))?;
        let t0 = Instant::now();
        let mut rng = StdRng::seed_from_u64(cfg.seed ^ HMC_START_STREAM);
        let (mass, init) = match (vi, map) {
            (Some(v), _) => {
                let q = MvNormal::from_cholesky(v.mean.clone(), v.chol.clone())?;
                let mut init = vec![0.0; cfg.hmc_chains * dim];
                for row in init.chunks_mut(dim) {
                    q.sample_into(&mut rng, row);
                }
                let redrawn =
                    finite_starts(post, &mut init, &v.mean, |row| q.sample_into(&mut rng, row))?;
                if redrawn > 0 {
                    run.log("hmc_init", json!({"redrawn": redrawn}))?;
                }
                (MassMatrix::from_cholesky(v.chol.clone(), dim)?, init)
            }
            (None, Some(m)) => {
                // no VI: the Laplace approximation at the MAP point preconditions and seeds (with
                // the ridge it needed: with a VAE source the f32 finite-difference Hessian is never
                // quite negative definite, and the ridged one still whitens well: step ~1.4,
                // acceptance ~0.85 on the 256x256 mocks); if it fails outright (not finite), a
                // small diagonal around the MAP point
                let laplace = crate::inference::laplace::laplace(post, &m.best_u).ok();
                run.log(
                    "hmc_init",
                    json!({"from": if laplace.is_some() { "laplace" } else { "map_diagonal" },
                           "laplace_ridge": laplace.as_ref().map(|l| l.ridge)}),
                )?;
                match laplace {
                    Some(lap) => {
                        let q = MvNormal::from_cholesky(m.best_u.clone(), lap.chol.clone())?;
                        let mut init = vec![0.0; cfg.hmc_chains * dim];
                        for row in init.chunks_mut(dim) {
                            q.sample_into(&mut rng, row);
                        }
                        let redrawn = finite_starts(post, &mut init, &m.best_u, |row| {
                            q.sample_into(&mut rng, row)
                        })?;
                        if redrawn > 0 {
                            run.log("hmc_init", json!({"redrawn": redrawn}))?;
                        }
                        (MassMatrix::from_cholesky(lap.chol, dim)?, init)
                    }
                    None => {
                        let mut init = Vec::with_capacity(cfg.hmc_chains * dim);
                        for _ in 0..cfg.hmc_chains {
                            init.extend(m.best_u.iter().map(|u| {
                                u + 1e-3
                                    * rand_distr::Distribution::<f64>::sample(
                                        &rand_distr::StandardNormal,
                                        &mut rng,
                                    )
                            }));
                        }
                        (MassMatrix::from_scales(vec![1e-2; dim])?, init)
                    }
                }
            }
            (None, None) => bail!("HMC needs a starting point: run the map or vi stage first"),
        };
        let first = cfg.hmc.n_burn + cfg.hmc.n_samples;
        let later = cfg.hmc.retry.n_burn + cfg.hmc.n_samples;
        // iterations before round r (1-based) starts
        let before = |r: usize| if r <= 1 { 0 } else { first + (r - 2) * later };
        let bar = StageProgress::new(Stage::Hmc, first, cfg.stages);
        let mut hmc_opts = cfg.hmc.clone();
        hmc_opts.seed ^= cfg.seed;
        // rounds are judged on the physical values, as the summary reports them
        // (the last round's diagnostics are kept to name its worst parameters in the round's log line)
        let judged = std::sync::Mutex::new(Vec::new());
        let judge = |d: &HmcDraws| {
            let diag = diagnose_rows(&physical_draws(layout, d), d.n_chains, d.dim);
            *judged.lock().expect("not poisoned") = diag.clone();
            diag
        };
        // the VAE latent (a multivariate normal block) is judged by retry.latent_rhat
        let latent: Vec<bool> = layout
            .blocks()
            .iter()
            .flat_map(|b| {
                std::iter::repeat_n(
                    matches!(b.prior, crate::prob::BlockPrior::MvNormal(_)),
                    b.dim,
                )
            })
            .collect();
        let draws = sample_hmc_judged(post, &init, &mass, &hmc_opts, &judge, &latent, |p| {
            if p.stage == "hmc_round" {
                let mut line = p.to_json();
                let diag = judged.lock().expect("not poisoned");
                // the three parameters with the highest R-hat and the lowest min(bulk, tail) ESS
                let worst = |value: &dyn Fn(&crate::inference::ParamDiagnostics) -> f64,
                             high: bool| {
                    let mut k: Vec<usize> = (0..diag.len()).collect();
                    k.sort_by(|&a, &b| value(&diag[a]).total_cmp(&value(&diag[b])));
                    if high {
                        k.reverse();
                    }
                    k.iter()
                        .take(3)
                        .map(|&i| json!([names[i], finite(value(&diag[i]))]))
                        .collect::<Vec<_>>()
                };
                line.insert("worst_rhat".into(), json!(worst(&|d| d.rhat, true)));
                let ess = |d: &crate::inference::ParamDiagnostics| d.ess_bulk.min(d.ess_tail);
                line.insert("worst_ess".into(), json!(worst(&ess, false)));
                return run.log("hmc_round_checked", Value::Object(line));
            }
            let round = p.metric("round").max(1.0) as usize;
            let n_burn = if round == 1 {
                cfg.hmc.n_burn
            } else {
                cfg.hmc.retry.n_burn
            };
            let in_round = if p.stage == "hmc_sample" {
                n_burn + p.step + 1
            } else {
                p.step + 1
            };
            let step = before(round) + in_round;
            if round > 1 {
                bar.set_length(before(round) + later);
            }
            let acc = p.metric("accept");
            let message = if round > 1 {
                format!("round {round}, accept {acc:.2}")
            } else {
                format!("accept {acc:.2}")
            };
            let mut line = p.to_json();
            let phase = if p.stage == "hmc_sample" {
                "sampling"
            } else {
                "warmup"
            };
            line.insert("phase".into(), json!(phase));
            // the stage's fraction: rounds beyond the first extend it
            let total = before(round) + n_burn + cfg.hmc.n_samples;
            bar.report(run, step, total, message, line)
        })?;
        for (k, r) in draws.rounds.iter().enumerate() {
            run.log(
                "hmc_round",
                json!({"round": k + 1, "n_burn": r.n_burn, "n_leapfrog": r.n_leapfrog,
                       "step_size": r.step_size, "trajectory": r.trajectory,
                       "target_accept": r.target_accept, "max_rhat": r.max_rhat,
                       "min_ess_bulk": r.min_ess_bulk, "min_ess_tail": r.min_ess_tail,
                       "divergent": r.divergent, "misses": r.misses,
                       "kept": k + 1 == draws.rounds.len(), "with_previous": r.with_previous}),
            )?;
        }
        bar.finish();
        let physical = physical_draws(layout, &draws);
        write_samples(&samples_path, layout, &draws, &physical)?;
        run.end_stage("hmc")?;
        let hmc_s = t0.elapsed().as_secs_f64();
        out.time_s = Some(hmc_s);
        // Cost of the sampler in gradient evaluations (one per chain per leapfrog step).
        let evals = draws.n_evaluations * draws.n_chains;
        out.cost = Some((evals, hmc_s));
        out.rounds = Some(serde_json::to_value(&draws.rounds)?);
        out.rounds_now = draws.rounds.clone();
        out.draws = Some((draws, physical));
    } else if samples_path.exists() {
        out.draws = Some(read_samples(&samples_path, layout)?);
    }
    Ok(out)
}

/// Chains must start where the log-density is finite: a draw of the VI surrogate can land outside
/// (its Gaussian tails reach where the model breaks down). Such rows are redrawn up to 20 times, then
/// set to `fallback` (the VI mean). Returns how many rows needed a redraw.
fn finite_starts<D: crate::density::LogDensity + ?Sized>(
    density: &D,
    x: &mut [f64],
    fallback: &[f64],
    mut redraw: impl FnMut(&mut [f64]),
) -> Result<usize> {
    let d = density.dim();
    let n = x.len() / d;
    let mut logp = vec![0.0; n];
    let mut grad = vec![0.0; n * d];
    let mut redrawn = 0;
    for attempt in 0..=20 {
        // eval_checked sets logp = -inf on every row whose value or gradient is not finite.
        crate::density::eval_checked(density, x, n, &mut logp, &mut grad)?;
        let bad: Vec<usize> = (0..n).filter(|&r| !logp[r].is_finite()).collect();
        if bad.is_empty() {
            break;
        }
        if attempt == 0 {
            redrawn = bad.len();
        }
        for r in bad {
            let row = &mut x[r * d..(r + 1) * d];
            if attempt < 20 {
                redraw(row);
            } else {
                row.copy_from_slice(fallback);
            }
        }
    }
    Ok(redrawn)
}
