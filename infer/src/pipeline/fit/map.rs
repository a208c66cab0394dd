//! Stage 1, multistart MAP (GIGA-Lens Sec. 2.3, Table 1): annealed Adam from prior draws, the best
//! starts polished (a Hessian, then L-BFGS preconditioned by it), and fresh batches of starts while
//! the best chi^2/dof is off the band of [`chi2_tolerance`].

use std::time::Instant;

use super::progress::Stage;
use super::*;

/// Reload `map.json`, or run the stage when enabled. Returns the artefact and, when it ran now, its
/// named summary (the MAP point with Laplace widths).
pub(super) fn stage(
    cx: &Ctx<'_>,
    run: &mut Run,
) -> Result<(Option<MapArtifact>, Option<Vec<ParamSummary>>)> {
    let Ctx {
        cfg,
        problem,
        post,
        coarse,
        names,
        truths,
        layout,
        lik,
        art,
        dof,
        ..
    } = *cx;
    let mut map_estimate = None;
    let map_path = art.join("map.json");
    let map: Option<MapArtifact> = if map_path.exists() {
        Some(read_json(&map_path)?)
    } else if cfg.stages.map {
        run.begin_stage("map")?;
        run.log("stage", json!({"stage": "map"}))?;
        let t0 = Instant::now();
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let tol = chi2_tolerance(dof);
        // (point, log p, chi^2, multistart result) of the best attempt so far
        let mut kept: Option<(Vec<f64>, f64, f64, MapResult)> = None;
        let mut attempts = 0;
        for attempt in 0..=cfg.map_retries {
            let starts = layout.sample_prior(&mut rng, cfg.map_starts);
            let bar = StageProgress::new(Stage::Map, cfg.map.steps, cfg.stages);
            let total = cfg.map.steps;
            // With a coarse model the first 2/3 of the iterations run on it and the rest, from where each
            // start got to, on the full model: the coarse model brings the starts into basins cheaply, the
            // full one ranks and finishes them (ranking on the coarse model alone picked a wrong mode).
            let split = match coarse {
                Some(_) => (2 * cfg.map.steps / 3).max(1),
                None => 0,
            };
            if coarse.is_some() {
                run.log(
                    "map_model",
                    json!({"coarse_steps": split, "full_steps": cfg.map.steps - split, "coarse_supersample": 1}),
                )?;
            }
            let mut report = |p: &crate::inference::Progress, offset: usize| -> Result<()> {
                let step = p.step + offset;
                let best = p.metric("best_loss");
                let mut line = p.to_json();
                line.insert("step".into(), json!(step));
                if attempt > 0 {
                    line.insert("attempt".into(), json!(attempt + 1));
                }
                line.insert("loss_best".into(), json!(finite(best)));
                if offset > 0 || split > 0 {
                    line.insert(
                        "model".into(),
                        json!(if offset == 0 { "coarse" } else { "full" }),
                    );
                }
                bar.report(run, step + 1, total, format!("best -log p {best:.1}"), line)
            };
            let res = match coarse {
                Some(c) => {
                    let first = MapOptions {
                        steps: split,
                        ..cfg.map.clone()
                    };
                    let r1 = multistart_map(c, &starts, &first, |p| report(p, 0))?;
                    let second = MapOptions {
                        steps: cfg.map.steps - split,
                        schedule: cfg.map.schedule.shifted(split),
                        // the annealing belongs to the start of the run, on the coarse model
                        temper_from: None,
                        ..cfg.map.clone()
                    };
                    multistart_map(post, &r1.points, &second, |p| report(p, split))?
                }
                None => multistart_map(post, &starts, &cfg.map, |p| report(p, 0))?,
            };
            bar.finish();
            // Polish of the best few starts: the Hessian (and optional Levenberg-Marquardt Newton steps),
            // then L-BFGS preconditioned by it (inference::newton, inference::lbfgs).
            let mut best_u = res.best().to_vec();
            let mut best_logp = res.best_logp();
            let adam_logp = best_logp;
            let mut newton_best = f64::NEG_INFINITY;
            let mut lbfgs_iters = Vec::new();
            let t_polish = Instant::now();
            // the starts are polished in parallel (each evaluates one point at a time), then ranked in
            // their MAP order, so the result does not depend on the thread count
            let chosen: Vec<usize> = res
                .order
                .iter()
                .take(cfg.polish_starts)
                .copied()
                .filter(|&i| res.logp[i].is_finite())
                .collect();
            let polished: Vec<Result<(f64, Value, crate::inference::LbfgsResult)>> = {
                use rayon::prelude::*;
                chosen
                    .par_iter()
                    .map(|&i| {
                        let t = Instant::now();
                        let p = newton_polish(post, res.point(i), &cfg.newton)?;
                        let newton_s = t.elapsed().as_secs_f64();
                        let t = Instant::now();
                        let l = match p.covariance_chol {
                            Some(c) if cfg.lbfgs.precondition => {
                                lbfgs_ascent_preconditioned(post, &p.x, c, &cfg.lbfgs)?
                            }
                            _ => lbfgs_ascent(post, &p.x, &cfg.lbfgs)?,
                        };
                        let record = json!({"start": i, "adam_logp": finite(res.logp[i]),
                            "newton_logp": finite(p.logp), "newton_hessians": p.iterations,
                            "newton_s": newton_s, "lbfgs_logp": finite(l.logp),
                            "lbfgs_iterations": l.iterations, "lbfgs_evaluations": l.evaluations,
                            "lbfgs_s": t.elapsed().as_secs_f64(),
                            // the climb at iterations 0, 25, 50, 100, 200, ...
                            "lbfgs_trace": trace_points(&l.trace)});
                        Ok((p.logp, record, l))
                    })
                    .collect()
            };
            let mut records = Vec::new();
            for r in polished {
                let (newton_logp, record, p) = r?;
                newton_best = newton_best.max(newton_logp);
                lbfgs_iters.push(p.iterations);
                records.push(record);
                if p.logp > best_logp {
                    best_logp = p.logp;
                    best_u = p.x;
                }
            }
            if cfg.polish_starts > 0 {
                run.log(
                    "map_polish",
                    json!({"adam_logp": finite(adam_logp), "newton_logp": finite(newton_best),
                       "polished_logp": finite(best_logp), "starts": cfg.polish_starts,
                       "lbfgs_iterations": lbfgs_iters,
                       "lbfgs_preconditioned": cfg.lbfgs.precondition, "per_start": records,
                       "time_s": t_polish.elapsed().as_secs_f64(), "attempt": attempt + 1}),
                )?;
            }
            let chi2 = lik.chi2(&to_physical(layout, &best_u), 1)?[0];
            let better = kept.as_ref().is_none_or(|k| best_logp > k.1);
            if better {
                kept = Some((best_u, best_logp, chi2, res));
            }
            let (_, kept_logp, kept_chi2, _) = kept.as_ref().expect("an attempt was kept");
            attempts = attempt + 1;
            if kept_chi2 / dof as f64 <= 1.0 + tol || attempt == cfg.map_retries {
                break;
            }
            let msg = format!(
                "MAP chi^2/dof {:.3} is above 1 + {tol:.3}: a wrong mode or a wrong model; trying {} more starts \
             (attempt {} of {})",
                kept_chi2 / dof as f64,
                cfg.map_starts,
                attempt + 2,
                cfg.map_retries + 1
            );
            eprintln!("fit: {msg}");
            run.log(
            "map_retry",
            json!({"attempt": attempt + 1, "chi2_dof": kept_chi2 / dof as f64, "logp": finite(*kept_logp)}),
        )?;
        }
        let (best_u, best_logp, chi2, res) = kept.expect("at least one MAP attempt ran");
        if let Some(w) = low_chi2_warning(chi2, dof) {
            eprintln!("warning: {w}");
            run.warn(&w)?;
        }
        for tr in &res.traces {
            run.log("map_trace", json!({"start": tr.start, "loss": tr.loss}))?;
        }
        // named physical values with Laplace widths, for map.json and a MAP-only summary
        let lap = crate::inference::laplace::laplace(post, &best_u);
        if let Err(e) = &lap {
            run.log("map_laplace", json!({"error": format!("{e:#}")}))?;
        }
        let est = summarize_map(layout, names, &best_u, lap.as_ref().ok(), &|n, c| {
            truth_near(truths, &problem.spec, n, c)
        });
        let a = MapArtifact {
            params: est.iter().map(|p| (p.name.clone(), p.mean)).collect(),
            laplace_std: est
                .iter()
                .map(|p| (p.name.clone(), p.std.is_finite().then_some(p.std)))
                .collect(),
            laplace_ridge: lap.as_ref().ok().map(|l| l.ridge),
            best_u,
            best_logp,
            chi2,
            dof,
            n_reverted: res.n_reverted,
            n_dead_starts: res.n_dead_starts,
            time_s: t0.elapsed().as_secs_f64(),
            attempts,
            latent_coordinates: latent_coordinates(layout),
        };
        arclight_core::write_json_atomic(&map_path, &a)?;
        run.end_stage("map")?;
        map_estimate = Some(est);
        Some(a)
    } else {
        None
    };
    Ok((map, map_estimate))
}

/// `trace` at indices 0, 25, 50, 100, 200, ... and its last value.
fn trace_points(trace: &[f64]) -> Vec<(usize, f64)> {
    let mut out = vec![];
    let mut k = 0;
    while k < trace.len() {
        out.push((k, trace[k]));
        k = if k == 0 { 25 } else { 2 * k };
    }
    if let Some(&v) = trace.last() {
        out.push((trace.len() - 1, v));
    }
    out
}

/// A MAP chi^2/dof below the band of [`chi2_tolerance`]: the residuals are smaller than the noise says,
/// so the noise is overestimated (or the model absorbs noise) and the posteriors come out too wide.
fn low_chi2_warning(chi2: f64, dof: usize) -> Option<String> {
    let tol = chi2_tolerance(dof);
    let c = chi2 / dof.max(1) as f64;
    (c < 1.0 - tol).then(|| {
        format!(
            "MAP chi^2/dof {c:.3} is below 1 - {tol:.3}: the residuals are smaller than the noise model \
             says (sigma_bkg, exposure_time or the noise map too large, or data already smoothed), so \
             the posteriors will be too wide"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Overestimated noise (chi^2/dof well below 1) is said; chi^2/dof within the band, above it (the
    /// retry's business) or non-finite is not.
    #[test]
    fn low_chi2_is_said() {
        let dof = 6400;
        let w = low_chi2_warning(0.6 * dof as f64, dof).expect("0.6 is below the band");
        assert!(w.contains("0.600") && w.contains("too wide"), "{w}");
        assert!(low_chi2_warning(0.95 * dof as f64, dof).is_none());
        assert!(low_chi2_warning(1.5 * dof as f64, dof).is_none());
        assert!(low_chi2_warning(f64::NAN, dof).is_none());
    }
}
